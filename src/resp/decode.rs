//! Incremental request decoder: multibulk (`*<n>\r\n$<len>\r\n…`) and inline commands.
//!
//! Bytes are consumed as soon as they are understood, and a partly received multibulk keeps
//! its state, so a command of a million arguments arriving in many reads is parsed once.
//! Error texts are Redis 7.0's (`networking.c`, `setProtocolError` callers).

use bytes::{Buf, Bytes, BytesMut};

use super::{Limits, UNAUTH_MAX_BULK, UNAUTH_MAX_MULTIBULK};

/// Why a request stream cannot be decoded; every variant closes the connection.
///
/// HTTP requests sent to the RESP port (`POST`, `Host:`) are not a decoding matter: Redis
/// recognises them by the first argument of a complete request, inline or multibulk, so the
/// connection loop checks for them (see `resp::conn`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// A protocol error: the text goes to the client as `-ERR Protocol error: <text>`.
    #[error("Protocol error: {0}")]
    Protocol(String),
    /// A multibulk argument not starting with `$`; the byte is echoed raw, as Redis's `%c`.
    #[error("Protocol error: expected '$', got '{}'", char::from(*.0))]
    ExpectedDollar(u8),
}

impl DecodeError {
    fn proto(text: &str) -> Self {
        DecodeError::Protocol(text.to_string())
    }

    /// Returns the exact error line Redis sends for this error, CRLF included.
    ///
    /// Bytes rather than text: the offending byte of `expected '$'` may be any byte, and
    /// Redis writes it as is (only `\r` and `\n` become spaces, as in every error reply).
    pub fn reply_bytes(&self) -> Vec<u8> {
        let mut out = b"-ERR Protocol error: ".to_vec();
        match self {
            DecodeError::Protocol(text) => out.extend_from_slice(text.as_bytes()),
            DecodeError::ExpectedDollar(b) => {
                out.extend_from_slice(b"expected '$', got '");
                out.push(if matches!(b, b'\r' | b'\n') { b' ' } else { *b });
                out.push(b'\'');
            }
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// Decoder state for one client connection.
#[derive(Debug, Default)]
pub struct RequestDecoder {
    /// Arguments of a multibulk still arriving, with how many are missing.
    pending: Option<Multibulk>,
}

#[derive(Debug)]
struct Multibulk {
    missing: usize,
    args: Vec<Bytes>,
    /// Length of the bulk whose header was read but whose payload has not arrived.
    bulk_len: Option<usize>,
}

impl RequestDecoder {
    /// Returns a new decoder with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reports whether part of a request is buffered in the decoder's state.
    pub fn in_progress(&self) -> bool {
        self.pending.is_some()
    }

    /// Decodes the next complete request from `buf`, consuming its bytes.
    ///
    /// Returns `Ok(None)` when more bytes are needed. Empty requests (`*0`, `*-1`, blank
    /// inline lines) are skipped, as Redis does.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
        authenticated: bool,
    ) -> Result<Option<Vec<Bytes>>, DecodeError> {
        loop {
            if self.pending.is_none() {
                if buf.is_empty() {
                    return Ok(None);
                }
                if authenticated {
                    if let Some(args) = decode_complete_multibulk(buf, limits) {
                        return Ok(Some(args));
                    }
                }
                if buf[0] != b'*' {
                    match decode_inline(buf, limits)? {
                        None => return Ok(None),
                        Some(args) if args.is_empty() => continue,
                        Some(args) => return Ok(Some(args)),
                    }
                }
                let Some(line) =
                    take_line(buf, limits.max_inline_len, "too big mbulk count string")?
                else {
                    return Ok(None);
                };
                let n = parse_i64(&line[1..])
                    .filter(|n| *n <= limits.max_multibulk_len)
                    .ok_or_else(|| DecodeError::proto("invalid multibulk length"))?;
                if !authenticated && n > UNAUTH_MAX_MULTIBULK {
                    return Err(DecodeError::proto("unauthenticated multibulk length"));
                }
                if n <= 0 {
                    continue;
                }
                let n = n as usize;
                self.pending = Some(Multibulk {
                    missing: n,
                    // Do not trust a huge count for preallocation (Redis caps it at 1024).
                    args: Vec::with_capacity(n.min(1024)),
                    bulk_len: None,
                });
            }
            let mb = self.pending.as_mut().expect("pending set above");
            while mb.missing > 0 {
                let len = match mb.bulk_len {
                    Some(len) => len,
                    None => {
                        // Redis reads the whole header line before it looks at its first byte.
                        let Some(line) =
                            take_line(buf, limits.max_inline_len, "too big bulk count string")?
                        else {
                            return Ok(None);
                        };
                        if line.first() != Some(&b'$') {
                            // An empty line means the byte Redis looked at was the '\r'.
                            return Err(DecodeError::ExpectedDollar(
                                line.first().copied().unwrap_or(b'\r'),
                            ));
                        }
                        let len = parse_i64(&line[1..])
                            .filter(|l| *l >= 0 && (*l as u64) <= limits.max_bulk_len as u64)
                            .ok_or_else(|| DecodeError::proto("invalid bulk length"))?
                            as usize;
                        if !authenticated && len > UNAUTH_MAX_BULK {
                            return Err(DecodeError::proto("unauthenticated bulk length"));
                        }
                        mb.bulk_len = Some(len);
                        len
                    }
                };
                // The payload's trailing CRLF is skipped, not checked, as in Redis.
                if buf.len() < len + 2 {
                    buf.reserve(len + 2 - buf.len());
                    return Ok(None);
                }
                let arg = buf.split_to(len).freeze();
                buf.advance(2);
                mb.args.push(arg);
                mb.bulk_len = None;
                mb.missing -= 1;
            }
            let done = self.pending.take().expect("pending set above");
            return Ok(Some(done.args));
        }
    }
}

/// Most arguments the fast path takes; longer commands go through the incremental path.
const FAST_MAX_ARGS: usize = 64;

/// Reads a positive decimal followed by `\r\n` at `pos`; `None` for anything else (zero,
/// signs, leading zeros, other bytes, or not all there yet), which the caller leaves to the
/// incremental path and its exact error texts.
fn fast_number(buf: &[u8], mut pos: usize) -> Option<(usize, usize)> {
    let start = pos;
    let mut n: usize = 0;
    while let Some(&c) = buf.get(pos) {
        if !c.is_ascii_digit() || pos - start >= 18 {
            break;
        }
        n = n * 10 + (c - b'0') as usize;
        pos += 1;
    }
    if pos == start || buf[start] == b'0' || buf.get(pos..pos + 2) != Some(b"\r\n") {
        return None;
    }
    Some((n, pos + 2))
}

/// Decodes a multibulk command that is wholly in `buf` with one split of the buffer and a
/// shared slice per argument — the common case of pipelined small commands. Returns `None`
/// (consuming nothing) when the command is incomplete, large or unusual in any way.
fn decode_complete_multibulk(buf: &mut BytesMut, limits: &Limits) -> Option<Vec<Bytes>> {
    if buf.first() != Some(&b'*') {
        return None;
    }
    let (argc, mut pos) = fast_number(buf, 1)?;
    if argc > FAST_MAX_ARGS {
        return None;
    }
    let mut ranges = [(0usize, 0usize); FAST_MAX_ARGS];
    for r in ranges.iter_mut().take(argc) {
        if buf.get(pos) != Some(&b'$') {
            return None;
        }
        let (len, start) = fast_number(buf, pos + 1).or_else(|| {
            // `$0` is a valid empty argument.
            (buf.get(pos + 1..pos + 4) == Some(b"0\r\n")).then_some((0, pos + 4))
        })?;
        if len > limits.max_bulk_len || buf.len() < start + len + 2 {
            return None;
        }
        *r = (start, start + len);
        pos = start + len + 2;
    }
    let frame = buf.split_to(pos).freeze();
    Some(
        ranges[..argc]
            .iter()
            .map(|&(s, e)| frame.slice(s..e))
            .collect(),
    )
}

/// Takes one `\r\n`-terminated header line (without the terminator) off `buf`.
fn take_line(
    buf: &mut BytesMut,
    max: usize,
    too_big: &str,
) -> Result<Option<BytesMut>, DecodeError> {
    match c_strchr(b'\r', buf) {
        Some(pos) => {
            // A line found past `max` is not "too big" for Redis: it fails to parse as a
            // number instead. Redis needs the '\n' too before it moves on.
            if buf.len() < pos + 2 {
                return Ok(None);
            }
            let line = buf.split_to(pos);
            buf.advance(2);
            Ok(Some(line))
        }
        None if buf.len() > max => Err(DecodeError::proto(too_big)),
        None => Ok(None),
    }
}

/// Finds `needle` the way C's `strchr` does on Redis's query buffer: the search stops at the
/// first NUL byte.
///
/// Redis 7.0 looks for the end of an inline request (`\n`) and of a `*`/`$` header (`\r`)
/// with `strchr`, so a NUL before the terminator hides it: the request stays incomplete until
/// the 64 KiB limit turns it into a "too big" protocol error. Bulk payloads are binary-safe
/// and never searched.
fn c_strchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter()
        .position(|b| *b == needle || *b == 0)
        .filter(|&i| hay[i] == needle)
}

/// Parses a decimal integer exactly as Redis's `string2ll` (no spaces, no `+`, no leading 0).
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Decodes one inline request: a line split like a shell (`sdssplitargs`).
fn decode_inline(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, DecodeError> {
    let Some(nl) = c_strchr(b'\n', buf) else {
        if buf.len() > limits.max_inline_len {
            return Err(DecodeError::proto("too big inline request"));
        }
        return Ok(None);
    };
    let mut line = buf.split_to(nl + 1);
    line.truncate(nl);
    if line.last() == Some(&b'\r') {
        line.truncate(nl - 1);
    }
    let args =
        split_args(&line).ok_or_else(|| DecodeError::proto("unbalanced quotes in request"))?;
    Ok(Some(args.into_iter().map(Bytes::from).collect()))
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

fn is_space(c: u8) -> bool {
    // C's isspace(): space, \t, \n, \v, \f, \r.
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Splits a line into arguments with Redis's `sdssplitargs` rules; `None` on bad quoting.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            let c = line.get(i).copied();
            if in_dq {
                match c {
                    None => return None,
                    Some(b'\\')
                        if line.get(i + 1) == Some(&b'x')
                            && line.get(i + 2).and_then(|c| hex_val(*c)).is_some()
                            && line.get(i + 3).and_then(|c| hex_val(*c)).is_some() =>
                    {
                        let hi = hex_val(line[i + 2])?;
                        let lo = hex_val(line[i + 3])?;
                        cur.push(hi * 16 + lo);
                        i += 3;
                    }
                    Some(b'\\') if i + 1 < line.len() => {
                        i += 1;
                        cur.push(match line[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        // The closing quote must be followed by a space or the end.
                        if let Some(n) = line.get(i + 1) {
                            if !is_space(*n) {
                                return None;
                            }
                        }
                        i += 1;
                        break;
                    }
                    Some(c) => cur.push(c),
                }
            } else if in_sq {
                match c {
                    None => return None,
                    Some(b'\\') if line.get(i + 1) == Some(&b'\'') => {
                        i += 1;
                        cur.push(b'\'');
                    }
                    Some(b'\'') => {
                        if let Some(n) = line.get(i + 1) {
                            if !is_space(*n) {
                                return None;
                            }
                        }
                        i += 1;
                        break;
                    }
                    Some(c) => cur.push(c),
                }
            } else {
                match c {
                    None => break,
                    Some(c) if is_space(c) => break,
                    Some(b'"') => in_dq = true,
                    Some(b'\'') => in_sq = true,
                    Some(c) => cur.push(c),
                }
            }
            i += 1;
        }
        args.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> (Vec<Vec<Bytes>>, Option<DecodeError>) {
        let mut dec = RequestDecoder::new();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match dec.decode(&mut buf, &Limits::default(), true) {
                Ok(Some(a)) => out.push(a),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn multibulk_and_inline() {
        // *2\r\n$3\r\nGET\r\n$1\r\nk\r\n  then inline "PING"
        let (cmds, err) = decode_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n");
        assert!(err.is_none());
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[0], vec![Bytes::from("GET"), Bytes::from("k")]);
        assert_eq!(cmds[1], vec![Bytes::from("PING")]);
    }

    #[test]
    fn empty_multibulk_is_skipped() {
        let (cmds, err) = decode_all(b"*0\r\n*-1\r\nPING\r\n");
        assert!(err.is_none());
        assert_eq!(cmds, vec![vec![Bytes::from("PING")]]);
    }

    #[test]
    fn byte_at_a_time() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        let mut dec = RequestDecoder::new();
        let mut buf = BytesMut::new();
        let mut got = None;
        for b in input {
            buf.extend_from_slice(&[*b]);
            if let Some(a) = dec.decode(&mut buf, &Limits::default(), true).unwrap() {
                got = Some(a);
            }
        }
        assert_eq!(got.unwrap()[2], Bytes::from("hello"));
    }

    #[test]
    fn protocol_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"*x\r\n", "invalid multibulk length"),
            (b"*1\r\n$-1\r\n", "invalid bulk length"),
            (b"*1\r\n$abc\r\n", "invalid bulk length"),
            (b"*3000000000\r\n", "invalid multibulk length"),
            (b"set \"a\r\n", "unbalanced quotes in request"),
            (b"set \"a\"b\r\n", "unbalanced quotes in request"),
        ];
        for (input, text) in cases {
            let (_, err) = decode_all(input);
            assert_eq!(
                err,
                Some(DecodeError::Protocol(text.to_string())),
                "{input:?}"
            );
        }
    }

    #[test]
    fn expected_dollar_after_the_whole_line() {
        // *1\r\nPING   (no CRLF yet: Redis waits for the line before judging it)
        let (cmds, err) = decode_all(b"*1\r\nPING");
        assert!(cmds.is_empty() && err.is_none());
        // *1\r\nx\r\n
        let (_, err) = decode_all(b"*1\r\nx\r\n");
        let err = err.unwrap();
        assert_eq!(err, DecodeError::ExpectedDollar(b'x'));
        assert_eq!(
            err.reply_bytes(),
            b"-ERR Protocol error: expected '$', got 'x'\r\n"
        );
        // *1\r\n\xff\r\n: the byte goes out raw
        let (_, err) = decode_all(b"*1\r\n\xff\r\n");
        assert_eq!(
            err.unwrap().reply_bytes(),
            b"-ERR Protocol error: expected '$', got '\xff'\r\n"
        );
        // *1\r\n\r\n: Redis looked at the '\r', which error replies turn into a space
        let (_, err) = decode_all(b"*1\r\n\r\n");
        assert_eq!(
            err.unwrap().reply_bytes(),
            b"-ERR Protocol error: expected '$', got ' '\r\n"
        );
    }

    #[test]
    fn nul_hides_the_line_end_like_strchr() {
        // get a\0b\r\n: strchr stops at the NUL, so the request never completes
        let (cmds, err) = decode_all(b"get a\x00b\r\nPING\r\n");
        assert!(cmds.is_empty() && err.is_none());
        // *1\0\r\n
        let (cmds, err) = decode_all(b"*1\x00\r\n$4\r\nPING\r\n");
        assert!(cmds.is_empty() && err.is_none());
        // ... until the 64 KiB limit makes it a protocol error
        let mut big = b"a\x00\n".to_vec();
        big.extend(vec![b'b'; 70 * 1024]);
        let (_, err) = decode_all(&big);
        assert_eq!(err, Some(DecodeError::proto("too big inline request")));
        // NULs inside a bulk payload are data
        let (cmds, _) = decode_all(b"*2\r\n$4\r\nECHO\r\n$3\r\na\x00b\r\n");
        assert_eq!(cmds[0][1], Bytes::from_static(b"a\x00b"));
    }

    #[test]
    fn inline_quotes_and_escapes() {
        assert_eq!(
            split_args(br#"set "a b" "c\x41d" 'it\'s'"#).unwrap(),
            vec![
                b"set".to_vec(),
                b"a b".to_vec(),
                b"cAd".to_vec(),
                b"it's".to_vec()
            ]
        );
        assert_eq!(split_args(b"  ").unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(split_args(b"\"\"").unwrap(), vec![Vec::<u8>::new()]);
    }

    #[test]
    fn oversized_lines() {
        let big = vec![b'a'; 70 * 1024];
        let (_, err) = decode_all(&big);
        assert_eq!(err, Some(DecodeError::proto("too big inline request")));
        let mut mb = b"*".to_vec();
        mb.extend(vec![b'1'; 70 * 1024]);
        let (_, err) = decode_all(&mb);
        assert_eq!(err, Some(DecodeError::proto("too big mbulk count string")));
    }

    #[test]
    fn unauthenticated_limits() {
        let mut dec = RequestDecoder::new();
        let mut buf = BytesMut::from(&b"*11\r\n"[..]);
        assert_eq!(
            dec.decode(&mut buf, &Limits::default(), false),
            Err(DecodeError::proto("unauthenticated multibulk length"))
        );
        let mut buf = BytesMut::from(&b"*1\r\n$16385\r\n"[..]);
        let mut dec = RequestDecoder::new();
        assert_eq!(
            dec.decode(&mut buf, &Limits::default(), false),
            Err(DecodeError::proto("unauthenticated bulk length"))
        );
    }

    #[test]
    fn string2ll_rules() {
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"01"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b" 1"), None);
    }

    #[test]
    fn random_splits_decode_the_same_and_garbage_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        for _ in 0..300 {
            // A random pipeline of valid commands, delivered in random pieces.
            let mut wire = Vec::new();
            let mut want = Vec::new();
            for _ in 0..rng.gen_range(1..20) {
                let argc = rng.gen_range(1..6);
                let args: Vec<Vec<u8>> = (0..argc)
                    .map(|_| (0..rng.gen_range(0..40)).map(|_| rng.gen()).collect())
                    .collect();
                wire.extend(format!("*{argc}\r\n").bytes());
                for a in &args {
                    wire.extend(format!("${}\r\n", a.len()).bytes());
                    wire.extend(a);
                    wire.extend(b"\r\n");
                }
                want.push(args);
            }
            let mut dec = RequestDecoder::new();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            let mut pos = 0;
            while pos < wire.len() {
                let n = rng
                    .gen_range(1..=wire.len() - pos)
                    .min(rng.gen_range(1..64));
                buf.extend_from_slice(&wire[pos..pos + n]);
                pos += n;
                while let Some(a) = dec.decode(&mut buf, &Limits::default(), true).unwrap() {
                    got.push(a.iter().map(|b| b.to_vec()).collect::<Vec<_>>());
                }
            }
            assert_eq!(got, want);
            // Garbage: any outcome but a panic.
            let junk: Vec<u8> = (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect();
            let mut dec = RequestDecoder::new();
            let mut buf = BytesMut::from(&junk[..]);
            while let Ok(Some(_)) = dec.decode(&mut buf, &Limits::default(), rng.gen()) {}
        }
    }
}
