//! The forward handshake (`shared/spec/fluent.md` §1.6): HELO / PING / PONG with SHA-512
//! shared-key digests and optional user authentication, as fluentd's `in_forward` and
//! `out_forward` speak it.
//!
//! Pure code over bytes, no sockets: the server side ([`Handshake`]) builds HELO and turns
//! one complete PING value into a PONG; the client side ([`parse_helo`], [`ping`],
//! [`check_pong`]) is what fluentd's `out_forward` does, for the load generator and the
//! tests. Every value hashed is taken as the exact bytes received, whatever its msgpack type
//! (str or bin, UTF-8 or not): Fluent Bit sends its salt as 16 raw bytes typed str.

use rand::RngCore;
use sha2::{Digest, Sha512};

use super::msgpack::{self, Reader, Value};

/// Bytes of randomness in the nonce and in the auth salt: fluentd's `in_forward` uses 16
/// of each (§1.6), and so do we.
pub const SALT_LEN: usize = 16;

// ---- DIGESTS ----

/// Returns the lowercase hex SHA-512 of the concatenation of `parts`: the one digest form
/// the protocol uses (§1.6), 128 ASCII characters.
pub fn sha512_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(128);
    for b in h.finalize() {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0x0f) as usize] as char);
    }
    out
}

/// Returns `sha512_hex(salt ‖ hostname ‖ nonce ‖ shared_key)`: the PING digest (client
/// hostname) and the PONG digest (server hostname) alike, both keyed by the client's salt
/// and the server's nonce (§1.6).
pub fn shared_key_digest(salt: &[u8], hostname: &[u8], nonce: &[u8], shared_key: &[u8]) -> String {
    sha512_hex(&[salt, hostname, nonce, shared_key])
}

/// Returns `sha512_hex(auth ‖ username ‖ password)`: the PING password digest (§1.6).
pub fn password_digest(auth: &[u8], username: &[u8], password: &[u8]) -> String {
    sha512_hex(&[auth, username, password])
}

/// Compares without an early exit on the first differing byte, so the time taken says
/// nothing about how much of a guessed digest was right. Lengths are not secret (a digest
/// is always 128 characters), so a length mismatch may return at once.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

// ---- SERVER ----

/// Why a PING was refused; `Display` is fluentd's reason text, sent in PONG(false) (§1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PingError {
    /// Not an array of six str/bin values starting with "PING".
    #[error("invalid ping message")]
    Invalid,
    /// The shared-key digest does not match ours.
    #[error("shared_key mismatch")]
    SharedKey,
    /// Users are configured and no user matches the username and password digest.
    #[error("username/password mismatch")]
    UserPassword,
}

impl PingError {
    /// Returns a short fixed label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            PingError::Invalid => "invalid_ping",
            PingError::SharedKey => "shared_key_mismatch",
            PingError::UserPassword => "user_mismatch",
        }
    }
}

/// What to do with a PING: write `pong`, then carry on to transport if `accepted`, or
/// close the connection after the write if not (§1.6, "server must disconnect").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingOutcome {
    /// The client proved the shared key (and a user, when users are configured).
    pub accepted: bool,
    /// The PONG bytes, one msgpack array of five elements.
    pub pong: Vec<u8>,
    /// Empty on success, else fluentd's reason text (also inside `pong`).
    pub reason: String,
}

/// One connection's server side of the handshake: its nonce and auth salt, drawn once in
/// [`Handshake::new`], are used by HELO and by the PING check that follows it.
pub struct Handshake {
    shared_key: Vec<u8>,
    self_hostname: Vec<u8>,
    users: Vec<(Vec<u8>, Vec<u8>)>,
    keepalive: bool,
    nonce: [u8; SALT_LEN],
    auth: [u8; SALT_LEN],
}

impl Handshake {
    /// Draws a fresh nonce and auth salt (16 bytes each, as fluentd does) for one
    /// connection. User authentication is required only when `users` (username, password)
    /// is non-empty, but the auth salt is always sent, as fluentd always sends it.
    pub fn new(
        shared_key: &[u8],
        self_hostname: &[u8],
        users: &[(Vec<u8>, Vec<u8>)],
        keepalive: bool,
        rng: &mut impl RngCore,
    ) -> Handshake {
        let mut nonce = [0u8; SALT_LEN];
        let mut auth = [0u8; SALT_LEN];
        rng.fill_bytes(&mut nonce);
        rng.fill_bytes(&mut auth);
        Handshake {
            shared_key: shared_key.to_vec(),
            self_hostname: self_hostname.to_vec(),
            users: users.to_vec(),
            keepalive,
            nonce,
            auth,
        }
    }

    /// Returns the nonce sent in HELO (both digests use it).
    pub fn nonce(&self) -> &[u8] {
        &self.nonce
    }

    /// Returns the auth salt sent in HELO (the password digest uses it).
    pub fn auth(&self) -> &[u8] {
        &self.auth
    }

    /// Returns HELO exactly as fluentd writes it (§1.6): nonce and auth as bin 8, then
    /// `keepalive`: `92 A4 'HELO' 83 A5 'nonce' C4 10 <16> A4 'auth' C4 10 <16> A9
    /// 'keepalive' C3|C2`.
    pub fn helo(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        msgpack::put_array_len(&mut out, 2);
        msgpack::put_str(&mut out, b"HELO");
        msgpack::put_map_len(&mut out, 3);
        msgpack::put_str(&mut out, b"nonce");
        msgpack::put_bin(&mut out, &self.nonce);
        msgpack::put_str(&mut out, b"auth");
        msgpack::put_bin(&mut out, &self.auth);
        msgpack::put_str(&mut out, b"keepalive");
        msgpack::put_bool(&mut out, self.keepalive);
        out
    }

    /// Checks one complete PING value from `peer` (used only in the log line) and returns
    /// the PONG to send. Malformed input of any shape is `invalid ping message`.
    pub fn check_ping(&self, ping: &[u8], peer: &str) -> PingOutcome {
        match self.verify(ping) {
            Ok(salt) => {
                // The PONG digest uses the client's salt and our own hostname (§1.6).
                let digest =
                    shared_key_digest(salt, &self.self_hostname, &self.nonce, &self.shared_key);
                PingOutcome {
                    accepted: true,
                    pong: pong(true, b"", &self.self_hostname, digest.as_bytes()),
                    reason: String::new(),
                }
            }
            Err(e) => {
                tracing::debug!(peer, reason = e.kind(), "forward handshake refused");
                let reason = e.to_string();
                PingOutcome {
                    accepted: false,
                    pong: pong(false, reason.as_bytes(), b"", b""),
                    reason,
                }
            }
        }
    }

    /// Runs fluentd's `check_ping` steps in its order (shape, shared key, users) and
    /// returns the client's salt, which the PONG digest needs.
    fn verify<'a>(&self, ping: &'a [u8]) -> Result<&'a [u8], PingError> {
        let [kind, hostname, salt, key_digest, username, pass_digest] = ping_fields(ping)?;
        if kind != b"PING" {
            return Err(PingError::Invalid);
        }
        let expect = shared_key_digest(salt, hostname, &self.nonce, &self.shared_key);
        if !ct_eq(expect.as_bytes(), key_digest) {
            return Err(PingError::SharedKey);
        }
        if !self.users.is_empty() {
            // Every user is tried, with no early exit, as fluentd's `success ||=` loop does.
            let mut ok = false;
            for (name, password) in &self.users {
                let expect = password_digest(&self.auth, name, password);
                ok |= ct_eq(name, username) & ct_eq(expect.as_bytes(), pass_digest);
            }
            if !ok {
                return Err(PingError::UserPassword);
            }
        }
        Ok(salt)
    }
}

/// Splits a PING into its six str/bin fields; anything else (other types, other length,
/// trailing bytes, truncation) is `Invalid`.
fn ping_fields(ping: &[u8]) -> Result<[&[u8]; 6], PingError> {
    let mut r = Reader::new(ping);
    if r.next() != Ok(Value::Array(6)) {
        return Err(PingError::Invalid);
    }
    let mut fields: [&[u8]; 6] = [&[]; 6];
    for f in fields.iter_mut() {
        *f = r
            .next()
            .ok()
            .and_then(|v| v.bytes())
            .ok_or(PingError::Invalid)?;
    }
    if !r.is_empty() {
        return Err(PingError::Invalid);
    }
    Ok(fields)
}

/// Encodes `["PONG", ok, reason, hostname, digest]` (§1.6), all strings as str.
fn pong(ok: bool, reason: &[u8], hostname: &[u8], digest: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + reason.len() + hostname.len() + digest.len());
    msgpack::put_array_len(&mut out, 5);
    msgpack::put_str(&mut out, b"PONG");
    msgpack::put_bool(&mut out, ok);
    msgpack::put_str(&mut out, reason);
    msgpack::put_str(&mut out, hostname);
    msgpack::put_str(&mut out, digest);
    out
}

// ---- CLIENT ----

/// Why the client side of the handshake failed; texts follow fluentd's `out_forward`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The first server message is not `["HELO", {map}]`.
    #[error("invalid format for HELO message")]
    InvalidHelo,
    /// The reply is not a five-element PONG.
    #[error("invalid format for PONG message")]
    InvalidPong,
    /// The server refused us, with its reason.
    #[error("authentication failed: {0}")]
    Refused(String),
    /// The server claims our own hostname (fluentd's guard against forwarding to itself).
    #[error("same hostname between input and output: invalid configuration")]
    SameHostname,
    /// The server's digest is wrong: it does not know the shared key.
    #[error("shared key mismatch")]
    SharedKey,
}

/// The server's HELO options (§1.6). Both fluentd (bin) and Fluent Bit (str) forms parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Helo<'a> {
    /// The server's nonce, used in both digests.
    pub nonce: &'a [u8],
    /// The password-digest salt; empty when the server sent none.
    pub auth: &'a [u8],
    /// Whether the server allows long-lived connections (default true when absent).
    pub keepalive: bool,
}

/// Parses one complete HELO value; unknown option keys are ignored.
pub fn parse_helo(buf: &[u8]) -> Result<Helo<'_>, ClientError> {
    let mut r = Reader::new(buf);
    let bad = |_| ClientError::InvalidHelo;
    if r.next().map_err(bad)? != Value::Array(2)
        || r.next().map_err(bad)?.bytes() != Some(b"HELO".as_slice())
    {
        return Err(ClientError::InvalidHelo);
    }
    let Value::Map(n) = r.next().map_err(bad)? else {
        return Err(ClientError::InvalidHelo);
    };
    let mut helo = Helo {
        nonce: &[],
        auth: &[],
        keepalive: true,
    };
    let mut have_nonce = false;
    for _ in 0..n {
        let key = r.next().map_err(bad)?.bytes();
        let start = r.clone();
        let value = r.next().map_err(bad)?;
        if matches!(value, Value::Array(_) | Value::Map(_)) {
            // A container under an unknown key: skip what it holds.
            r = start;
            r.skip().map_err(bad)?;
        }
        match (key, value) {
            (Some(b"nonce"), v) => {
                helo.nonce = v.bytes().ok_or(ClientError::InvalidHelo)?;
                have_nonce = true;
            }
            (Some(b"auth"), v) => helo.auth = v.bytes().ok_or(ClientError::InvalidHelo)?,
            (Some(b"keepalive"), Value::Bool(b)) => helo.keepalive = b,
            _ => {}
        }
    }
    if !have_nonce || !r.is_empty() {
        return Err(ClientError::InvalidHelo);
    }
    Ok(helo)
}

/// Encodes PING as fluentd's `out_forward` does (§1.6): username and password digest when
/// HELO carried an auth salt, else two empty strings.
pub fn ping(
    helo: &Helo<'_>,
    client_hostname: &[u8],
    salt: &[u8],
    shared_key: &[u8],
    username: &[u8],
    password: &[u8],
) -> Vec<u8> {
    let digest = shared_key_digest(salt, client_hostname, helo.nonce, shared_key);
    let mut out = Vec::with_capacity(300);
    msgpack::put_array_len(&mut out, 6);
    msgpack::put_str(&mut out, b"PING");
    msgpack::put_str(&mut out, client_hostname);
    msgpack::put_str(&mut out, salt);
    msgpack::put_str(&mut out, digest.as_bytes());
    if helo.auth.is_empty() {
        msgpack::put_str(&mut out, b"");
        msgpack::put_str(&mut out, b"");
    } else {
        msgpack::put_str(&mut out, username);
        let pass = password_digest(helo.auth, username, password);
        msgpack::put_str(&mut out, pass.as_bytes());
    }
    out
}

/// Checks one complete PONG value as fluentd's `out_forward` does and returns the server's
/// hostname on success.
pub fn check_pong<'a>(
    pong: &'a [u8],
    helo: &Helo<'_>,
    client_hostname: &[u8],
    salt: &[u8],
    shared_key: &[u8],
) -> Result<&'a [u8], ClientError> {
    let mut r = Reader::new(pong);
    let bad = |_| ClientError::InvalidPong;
    if r.next().map_err(bad)? != Value::Array(5)
        || r.next().map_err(bad)?.bytes() != Some(b"PONG".as_slice())
    {
        return Err(ClientError::InvalidPong);
    }
    let Value::Bool(ok) = r.next().map_err(bad)? else {
        return Err(ClientError::InvalidPong);
    };
    let field = |r: &mut Reader<'a>| r.next().ok().and_then(|v| v.bytes());
    let (Some(reason), Some(hostname), Some(digest)) =
        (field(&mut r), field(&mut r), field(&mut r))
    else {
        return Err(ClientError::InvalidPong);
    };
    if !ok {
        return Err(ClientError::Refused(
            String::from_utf8_lossy(reason).into_owned(),
        ));
    }
    if hostname == client_hostname {
        return Err(ClientError::SameHostname);
    }
    let expect = shared_key_digest(salt, hostname, helo.nonce, shared_key);
    if !ct_eq(expect.as_bytes(), digest) {
        return Err(ClientError::SharedKey);
    }
    Ok(hostname)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Emits 0, 1, 2, …: the nonce is then 00..0f and the auth salt 10..1f, so digests
    /// can be checked against literals computed outside Rust.
    struct Counting(u8);

    impl RngCore for Counting {
        fn next_u32(&mut self) -> u32 {
            let mut b = [0; 4];
            self.fill_bytes(&mut b);
            u32::from_le_bytes(b)
        }
        fn next_u64(&mut self) -> u64 {
            let mut b = [0; 8];
            self.fill_bytes(&mut b);
            u64::from_le_bytes(b)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for d in dest {
                *d = self.0;
                self.0 = self.0.wrapping_add(1);
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    const SALT_HEX: &[u8] = b"0123456789abcdef0123456789abcdef";
    // python3: hashlib.sha512(SALT_HEX + b'client.example' + bytes(range(16)) + b'secret')
    const PING_DIGEST: &str = "3a680037d3979b4f789647cd22e7e55f2197791eb498799823c424e2213124ed\
                               63938d1c422f50e08ec02957ef44df338e46c77e8ea164b0dde6d64e171b30df";
    // python3: hashlib.sha512(SALT_HEX + b'kura.server' + bytes(range(16)) + b'secret')
    const PONG_DIGEST: &str = "c74ec545714793b6954435a9c048dd0d136f8707e1e054c4a00814e8af8604dd\
                               309b5c97788e998cb3392c5eabb313a119ff4ef6d2cb11c23893c7e59c611e34";
    // python3: hashlib.sha512(bytes(range(16, 32)) + b'' + b'')
    const EMPTY_USER_DIGEST: &str = "743ea02a3e4ce5c64fe19855f611fdc5897737c0e6ff65226126edbd97fa0b9f\
                                     67f4588b85662b8b3ec267eb787442fc04b49e0c7b1fcca0200ed774975472a0";
    // python3: hashlib.sha512(bytes(range(16, 32)) + b'alice' + b'wonder')
    const ALICE_DIGEST: &str = "28e426ad86ca78c8b421ca6d56454afb514c419e9d27042e1babc9220cfb3bd8\
                                bad8ad8e63b63237086a4cb77f864ab06adb150f9c50cd5003b2f3b97048fe25";

    fn literal_server(users: &[(Vec<u8>, Vec<u8>)]) -> Handshake {
        Handshake::new(b"secret", b"kura.server", users, true, &mut Counting(0))
    }

    /// `["PING", host, salt, digest, user, pass]` with every field as str.
    fn ping6(f: [&[u8]; 6]) -> Vec<u8> {
        let mut out = vec![0x96];
        for x in f {
            msgpack::put_str(&mut out, x);
        }
        out
    }

    fn alice() -> Vec<(Vec<u8>, Vec<u8>)> {
        vec![
            (b"bob".to_vec(), b"builder".to_vec()),
            (b"alice".to_vec(), b"wonder".to_vec()),
        ]
    }

    #[test]
    fn digest_matches_python_hashlib() {
        let nonce: Vec<u8> = (0..16).collect();
        let d = shared_key_digest(SALT_HEX, b"client.example", &nonce, b"secret");
        assert_eq!(d, PING_DIGEST);
        let auth: Vec<u8> = (16..32).collect();
        assert_eq!(password_digest(&auth, b"", b""), EMPTY_USER_DIGEST);
    }

    #[test]
    fn helo_is_fluentds_bytes() {
        let hs = literal_server(&[]);
        let mut want = vec![0x92, 0xa4];
        want.extend_from_slice(b"HELO");
        want.extend_from_slice(&[0x83, 0xa5]);
        want.extend_from_slice(b"nonce");
        want.extend_from_slice(&[0xc4, 0x10]);
        want.extend(0u8..16);
        want.push(0xa4);
        want.extend_from_slice(b"auth");
        want.extend_from_slice(&[0xc4, 0x10]);
        want.extend(16u8..32);
        want.push(0xa9);
        want.extend_from_slice(b"keepalive");
        want.push(0xc3);
        assert_eq!(hs.helo(), want);
        let no_keepalive = Handshake::new(b"k", b"h", &[], false, &mut Counting(0));
        assert_eq!(*no_keepalive.helo().last().unwrap(), 0xc2);
    }

    #[test]
    fn fluentd_ping_is_accepted_with_literal_pong() {
        // ["PING", "client.example", <32 hex chars>, <digest>, "", sha512(auth)], as
        // fluentd's out_forward sends it when HELO carried an auth salt.
        let hs = literal_server(&[]);
        let ping = ping6([
            b"PING",
            b"client.example",
            SALT_HEX,
            PING_DIGEST.as_bytes(),
            b"",
            EMPTY_USER_DIGEST.as_bytes(),
        ]);
        let out = hs.check_ping(&ping, "127.0.0.1:5000");
        assert!(out.accepted, "{}", out.reason);
        assert_eq!(out.reason, "");
        // 95 A4 'PONG' C3 A0 AB 'kura.server' D9 80 <digest>
        let mut want = vec![0x95, 0xa4];
        want.extend_from_slice(b"PONG");
        want.extend_from_slice(&[0xc3, 0xa0, 0xab]);
        want.extend_from_slice(b"kura.server");
        want.extend_from_slice(&[0xd9, 0x80]);
        want.extend_from_slice(PONG_DIGEST.as_bytes());
        assert_eq!(out.pong, want);
    }

    #[test]
    fn fluent_bit_raw_salt_as_str_is_hashed_as_is() {
        // Fluent Bit: salt = 16 raw random bytes typed str (not valid UTF-8 here).
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let hs = Handshake::new(b"secret", b"kura", &[], true, &mut rng);
        let salt: &[u8] = &[
            0xff, 0xfe, 0x00, 0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0xc1,
        ];
        let d = shared_key_digest(salt, b"fb-host", hs.nonce(), b"secret");
        let pass = password_digest(hs.auth(), b"", b"");
        let ping = ping6([
            b"PING",
            b"fb-host",
            salt,
            d.as_bytes(),
            b"",
            pass.as_bytes(),
        ]);
        let out = hs.check_ping(&ping, "peer");
        assert!(out.accepted, "{}", out.reason);
        let pong_digest = shared_key_digest(salt, b"kura", hs.nonce(), b"secret");
        assert!(out.pong.ends_with(pong_digest.as_bytes()));
    }

    #[test]
    fn bin_fields_hash_the_same_bytes() {
        let hs = literal_server(&[]);
        let mut ping = vec![0x96];
        for f in [
            b"PING".as_slice(),
            b"client.example",
            SALT_HEX,
            PING_DIGEST.as_bytes(),
            b"",
            b"",
        ] {
            msgpack::put_bin(&mut ping, f);
        }
        assert!(hs.check_ping(&ping, "peer").accepted);
    }

    #[test]
    fn wrong_key_gets_fluentds_refusal() {
        let hs = Handshake::new(b"other", b"kura.server", &[], true, &mut Counting(0));
        let ping = ping6([
            b"PING",
            b"client.example",
            SALT_HEX,
            PING_DIGEST.as_bytes(),
            b"",
            b"",
        ]);
        let out = hs.check_ping(&ping, "peer");
        assert!(!out.accepted);
        assert_eq!(out.reason, "shared_key mismatch");
        // ["PONG", false, "shared_key mismatch", "", ""]
        let mut want = vec![0x95, 0xa4];
        want.extend_from_slice(b"PONG");
        want.extend_from_slice(&[0xc2, 0xb3]);
        want.extend_from_slice(b"shared_key mismatch");
        want.extend_from_slice(&[0xa0, 0xa0]);
        assert_eq!(out.pong, want);
        // An uppercase digest is a mismatch too: fluentd compares the strings.
        let upper = PING_DIGEST.to_uppercase();
        let ping = ping6([
            b"PING",
            b"client.example",
            SALT_HEX,
            upper.as_bytes(),
            b"",
            b"",
        ]);
        assert_eq!(
            literal_server(&[]).check_ping(&ping, "p").reason,
            "shared_key mismatch"
        );
    }

    #[test]
    fn users_right_and_wrong() {
        let hs = literal_server(&alice());
        let base = |user: &[u8], pass: &[u8]| {
            ping6([
                b"PING",
                b"client.example",
                SALT_HEX,
                PING_DIGEST.as_bytes(),
                user,
                pass,
            ])
        };
        let ok = hs.check_ping(&base(b"alice", ALICE_DIGEST.as_bytes()), "p");
        assert!(ok.accepted, "{}", ok.reason);
        for (user, pass) in [
            (b"alice".as_slice(), EMPTY_USER_DIGEST.as_bytes()),
            (b"bob", ALICE_DIGEST.as_bytes()),
            (b"", EMPTY_USER_DIGEST.as_bytes()),
            (b"alice", b""),
        ] {
            let out = hs.check_ping(&base(user, pass), "p");
            assert!(!out.accepted);
            assert_eq!(out.reason, "username/password mismatch");
        }
        // The shared key is checked first, as in fluentd.
        let hs = Handshake::new(b"x", b"kura.server", &alice(), true, &mut Counting(0));
        let out = hs.check_ping(&base(b"alice", ALICE_DIGEST.as_bytes()), "p");
        assert_eq!(out.reason, "shared_key mismatch");
    }

    #[test]
    fn malformed_pings_are_invalid_never_a_panic() {
        let hs = literal_server(&[]);
        let good = ping6([
            b"PING",
            b"client.example",
            SALT_HEX,
            PING_DIGEST.as_bytes(),
            b"",
            b"",
        ]);
        let mut cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0xc0],                                     // nil
            vec![0x81, 0xa1, b'a', 0x01],                   // {"a": 1}
            ping6([b"PONG", b"h", b"s", b"d", b"", b""]),   // wrong type string
            vec![0x95, 0xa4, b'P', b'I', b'N', b'G', 0xa0], // short array, truncated too
            [&good[..], &[0xc0]].concat(),                  // trailing bytes
            good[..good.len() - 1].to_vec(),                // truncated
            vec![0xc1],                                     // reserved byte
        ];
        // Seven elements.
        let mut seven = good.clone();
        seven[0] = 0x97;
        seven.push(0xa0);
        cases.push(seven);
        // A non-string field: the salt as an int, then as a nested array.
        let mut int_salt = vec![0x96, 0xa4];
        int_salt.extend_from_slice(b"PING");
        int_salt.extend_from_slice(&[0xa1, b'h', 0x05, 0xa0, 0xa0, 0xa0]);
        cases.push(int_salt.clone());
        int_salt[7] = 0x90;
        cases.push(int_salt);
        // A str header announcing more bytes than exist.
        let mut huge = vec![0x96];
        huge.extend_from_slice(&[0xdb, 0x00, 0x01, 0x86, 0xa0, b'x']);
        cases.push(huge);
        for c in cases {
            let out = hs.check_ping(&c, "peer");
            assert!(!out.accepted, "{c:02x?}");
            assert_eq!(out.reason, "invalid ping message", "{c:02x?}");
            assert_eq!(PingError::Invalid.to_string(), out.reason);
        }
    }

    #[test]
    fn client_side_round_trips_against_the_server() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let hs = Handshake::new(b"k3y", b"srv", &alice(), true, &mut rng);
        let helo_bytes = hs.helo();
        let helo = parse_helo(&helo_bytes).unwrap();
        assert_eq!(
            (helo.nonce, helo.auth, helo.keepalive),
            (hs.nonce(), hs.auth(), true)
        );
        let salt = b"00112233445566778899aabbccddeeff";
        let p = ping(&helo, b"cli", salt, b"k3y", b"alice", b"wonder");
        let out = hs.check_ping(&p, "peer");
        assert!(out.accepted, "{}", out.reason);
        assert_eq!(
            check_pong(&out.pong, &helo, b"cli", salt, b"k3y"),
            Ok(&b"srv"[..])
        );
        // fluentd's client-side refusals.
        assert_eq!(
            check_pong(&out.pong, &helo, b"srv", salt, b"k3y"),
            Err(ClientError::SameHostname)
        );
        assert_eq!(
            check_pong(&out.pong, &helo, b"cli", salt, b"other"),
            Err(ClientError::SharedKey)
        );
        let bad = ping(&helo, b"cli", salt, b"k3y", b"alice", b"nope");
        let out = hs.check_ping(&bad, "peer");
        assert_eq!(
            check_pong(&out.pong, &helo, b"cli", salt, b"k3y"),
            Err(ClientError::Refused("username/password mismatch".into()))
        );
        assert_eq!(
            check_pong(&[0x90], &helo, b"cli", salt, b"k3y"),
            Err(ClientError::InvalidPong)
        );
    }

    #[test]
    fn fluent_bit_helo_parses() {
        // ["HELO", {"nonce": <str 16>, "auth": <str 16>}]: no keepalive key.
        let mut b = vec![0x92, 0xa4];
        b.extend_from_slice(b"HELO");
        b.push(0x82);
        msgpack::put_str(&mut b, b"nonce");
        msgpack::put_str(&mut b, &[0xff; 16]);
        msgpack::put_str(&mut b, b"auth");
        msgpack::put_str(&mut b, &[0x01; 16]);
        let helo = parse_helo(&b).unwrap();
        assert_eq!(helo.nonce, &[0xff; 16]);
        assert_eq!(helo.auth, &[0x01; 16]);
        assert!(helo.keepalive);
        assert_eq!(parse_helo(&[0x92, 0xa4]), Err(ClientError::InvalidHelo));
        // Unknown keys are skipped, containers included.
        let mut extra = b[..b.len() - 22].to_vec();
        extra[6] = 0x83;
        msgpack::put_str(&mut extra, b"x");
        extra.extend_from_slice(&[0x91, 0x81, 0xa1, b'y', 0x01]);
        extra.extend_from_slice(&b[b.len() - 22..]);
        assert_eq!(parse_helo(&extra).unwrap().auth, &[0x01; 16]);
        // Without auth the client sends two empty strings (fluentd's generate_ping).
        let no_auth = Helo {
            nonce: &[0; 16],
            auth: &[],
            keepalive: true,
        };
        let p = ping(&no_auth, b"c", b"s", b"k", b"user", b"pw");
        assert!(p.ends_with(&[0xa0, 0xa0]));
    }
}
