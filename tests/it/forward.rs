//! The forward door over real sockets: byte streams built exactly as fluentd's and Fluent
//! Bit's `out_forward` write them (shared/spec/fluent.md §2b, §3), Python's fluent-logger
//! and msgpack, and what users complain about in §8 (duplicates, bad input, limits).

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use kura::forward::handshake;
use kura::forward::msgpack as mp;

use crate::support::{need_program, wait_until, Kura};

// ---- builders ----

/// `[EventTime(secs, nanos), {k: v, ...}]`
pub(crate) fn entry(secs: u32, nanos: u32, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    mp::put_array_len(&mut out, 2);
    mp::put_event_time(&mut out, secs, nanos);
    record_into(&mut out, fields);
    out
}

fn record_into(out: &mut Vec<u8>, fields: &[(&str, &str)]) {
    mp::put_map_len(out, fields.len() as u32);
    for (k, v) in fields {
        mp::put_str(out, k.as_bytes());
        mp::put_str(out, v.as_bytes());
    }
}

/// fluentd out_forward's PackedForward: `93`, tag, str32 entries, then
/// `{"size", "compressed", "chunk"}` in that order (spec §2b.2).
pub(crate) fn fluentd_chunk(
    tag: &str,
    entries: &[u8],
    size: u64,
    compressed: &str,
    chunk: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = vec![0x93];
    mp::put_str(&mut out, tag.as_bytes());
    out.push(0xdb);
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    out.extend_from_slice(entries);
    mp::put_map_len(&mut out, if chunk.is_some() { 3 } else { 2 });
    mp::put_str(&mut out, b"size");
    mp::put_uint(&mut out, size);
    mp::put_str(&mut out, b"compressed");
    mp::put_str(&mut out, compressed.as_bytes());
    if let Some(c) = chunk {
        mp::put_str(&mut out, b"chunk");
        mp::put_str(&mut out, c);
    }
    out
}

/// A fluentd-style chunk id: base64 of 16 bytes plus Ruby's trailing newline.
pub(crate) fn chunk_id(n: u8) -> Vec<u8> {
    let mut id = format!("AAAAAAAAAAAAAAAAAAAAA{:02}=", n % 100).into_bytes();
    id.truncate(24);
    id.push(b'\n');
    id
}

pub(crate) fn ack_of(chunk: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    mp::put_map_len(&mut out, 1);
    mp::put_str(&mut out, b"ack");
    mp::put_str(&mut out, chunk);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    g.write_all(data).unwrap();
    g.finish().unwrap()
}

pub(crate) struct Fwd {
    pub(crate) s: TcpStream,
}

impl Fwd {
    pub(crate) fn connect(addr: SocketAddr) -> Fwd {
        let s = TcpStream::connect(addr).expect("connect forward");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Fwd { s }
    }

    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write");
    }

    /// Reads exactly `n` bytes.
    pub(crate) fn read(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        self.s.read_exact(&mut buf).expect("read");
        buf
    }

    pub(crate) fn expect_ack(&mut self, chunk: &[u8]) {
        let want = ack_of(chunk);
        assert_eq!(self.read(want.len()), want);
    }

    /// Reports whether nothing arrives within `wait` (and the connection stays open).
    pub(crate) fn silent(&mut self, wait: Duration) -> bool {
        self.s.set_read_timeout(Some(wait)).unwrap();
        let mut b = [0u8; 1];
        let r = self.s.read(&mut b);
        self.s
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        matches!(r, Err(ref e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
    }

    /// Reports whether the server closed the connection within `wait`.
    pub(crate) fn closed(&mut self, wait: Duration) -> bool {
        self.s.set_read_timeout(Some(wait)).unwrap();
        let mut b = [0u8; 64];
        loop {
            match self.s.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) => {
                    return !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    )
                }
            }
        }
    }
}

fn lrange(k: &Kura, key: &str) -> Vec<serde_json::Value> {
    let mut c = k.client();
    let raw = c.cmd(&["LRANGE", key, "0", "-1"]);
    let mut items = Vec::new();
    let mut lines = raw.split("\r\n");
    while let Some(l) = lines.next() {
        if l.starts_with('$') {
            let v = lines.next().unwrap_or_default();
            items.push(serde_json::from_str(v).unwrap_or_else(|e| panic!("{v}: {e}")));
        }
    }
    items
}

fn llen(k: &Kura, key: &str) -> i64 {
    let r = k.client().cmd(&["LLEN", key]);
    r.trim_start_matches(':').trim().parse().unwrap()
}

fn metric(k: &Kura, name: &str, label: Option<&str>) -> f64 {
    for fam in k.state.metrics.registry.gather() {
        if fam.get_name() != name {
            continue;
        }
        for m in fam.get_metric() {
            let matches = match label {
                None => true,
                Some(l) => m.get_label().iter().any(|p| p.get_value() == l),
            };
            if matches {
                return match fam.get_field_type() {
                    prometheus::proto::MetricType::COUNTER => m.get_counter().get_value(),
                    prometheus::proto::MetricType::GAUGE => m.get_gauge().get_value(),
                    _ => m.get_histogram().get_sample_count() as f64,
                };
            }
        }
    }
    panic!("metric {name} {label:?} not found")
}

// ---- modes, times, acks ----

#[test]
fn fluentd_packed_forward_is_stored_as_json_and_acked_verbatim() {
    let k = Kura::start();
    let entries = [
        entry(1441588984, 0, &[("message", "hello"), ("level", "info")]),
        entry(1441588984, 500_000_000, &[("message", "world")]),
    ]
    .concat();
    let id = chunk_id(1);
    let mut f = Fwd::connect(k.forward);
    f.send(&fluentd_chunk("app.access", &entries, 2, "text", Some(&id)));
    // 81 A3 'ack' B9 <25 bytes ending in \n>: fluentd's id echoed byte for byte.
    let mut want = b"\x81\xa3ack\xb9".to_vec();
    want.extend_from_slice(&id);
    assert_eq!(f.read(want.len()), want);
    assert_eq!(
        lrange(&k, "app.access"),
        vec![
            serde_json::json!({"message": "hello", "level": "info", "time": 1441588984.0}),
            serde_json::json!({"message": "world", "time": 1441588984.5}),
        ]
    );
    assert_eq!(metric(&k, "kura_forward_records_received_total", None), 2.0);
    assert_eq!(metric(&k, "kura_forward_chunks_acked_total", None), 1.0);
    assert_eq!(metric(&k, "kura_forward_ack_latency_seconds", None), 1.0);
}

#[test]
fn message_and_forward_modes_with_every_time_form() {
    let k = Kura::start();
    let mut f = Fwd::connect(k.forward);
    // fluent-logger-golang: ["t", int64 1441588984 (D3), {"m": "a"}, {}]
    let mut m = vec![0x94, 0xa1, b't', 0xd3];
    m.extend_from_slice(&1441588984i64.to_be_bytes());
    record_into(&mut m, &[("m", "a")]);
    m.push(0x80);
    f.send(&m);
    // Fluent Bit v5 Forward mode: ["t", [[[EventTime, {}], {"m": "b"}]]]
    let mut fb = vec![0x92, 0xa1, b't', 0x91, 0x92, 0x92];
    mp::put_event_time(&mut fb, 1441588984, 1);
    fb.push(0x80);
    record_into(&mut fb, &[("m", "b")]);
    f.send(&fb);
    // ext 8 EventTime, Timestamp ext -1, float, uint32, signed int32; nil = now
    let mut fwd = vec![0x93, 0xa1, b't', 0x96];
    let times: Vec<Vec<u8>> = vec![
        vec![0xc7, 0x08, 0x00, 0x55, 0xec, 0xe6, 0xf8, 0, 0, 0, 2],
        vec![0xd6, 0xff, 0x55, 0xec, 0xe6, 0xf8],
        [
            vec![0xcb],
            1441588984.25f64.to_bits().to_be_bytes().to_vec(),
        ]
        .concat(),
        vec![0xce, 0x55, 0xec, 0xe6, 0xf8],
        vec![0xd2, 0x55, 0xec, 0xe6, 0xf8],
        vec![0xc0],
    ];
    for (i, t) in times.iter().enumerate() {
        fwd.push(0x92);
        fwd.extend_from_slice(t);
        record_into(&mut fwd, &[("i", &i.to_string())]);
    }
    fwd.push(0xc0); // nil option
    f.send(&fwd);
    assert!(wait_until(Duration::from_secs(5), || llen(&k, "t") == 8));
    let got = lrange(&k, "t");
    let times: Vec<f64> = got.iter().map(|v| v["time"].as_f64().unwrap()).collect();
    assert_eq!(
        &times[..7],
        &[
            1441588984.0,
            1441588984.000000001,
            1441588984.000000002,
            1441588984.0,
            1441588984.25,
            1441588984.0,
            1441588984.0
        ]
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (times[7] - now).abs() < 60.0,
        "nil time means now: {}",
        times[7]
    );
    assert!(
        f.silent(Duration::from_millis(200)),
        "no ack without a chunk option"
    );
}

#[test]
fn packed_forward_as_bin_and_gzip_members_and_zstd() {
    let k = Kura::start();
    let e = entry(1441588984, 0, &[("m", "x")]);
    let mut f = Fwd::connect(k.forward);
    // Fluent Bit compress gzip: bin entries, one member, chunk first in options.
    let z = gzip(&[e.clone(), e.clone()].concat());
    let mut fb = vec![0x93, 0xa2, b'g', b'z', 0xc4, z.len() as u8];
    fb.extend_from_slice(&z);
    mp::put_map_len(&mut fb, 4);
    mp::put_str(&mut fb, b"chunk");
    mp::put_str(&mut fb, b"QUJDREVGR0hJSktMTU5PUA==");
    mp::put_str(&mut fb, b"size");
    mp::put_uint(&mut fb, 2);
    mp::put_str(&mut fb, b"compressed");
    mp::put_str(&mut fb, b"gzip");
    mp::put_str(&mut fb, b"fluent_signal");
    mp::put_uint(&mut fb, 0);
    f.send(&fb);
    f.expect_ack(b"QUJDREVGR0hJSktMTU5PUA==");
    // fluentd compress gzip: str32 holding two concatenated members.
    let members = [gzip(&e), gzip(&e), gzip(&e)].concat();
    let id = chunk_id(2);
    f.send(&fluentd_chunk("gz", &members, 3, "gzip", Some(&id)));
    f.expect_ack(&id);
    // fluentd >= 1.19 compress zstd.
    let zs = zstd::encode_all(&[e.clone(), e][..].concat()[..], 1).unwrap();
    let id = chunk_id(3);
    f.send(&fluentd_chunk("gz", &zs, 2, "zstd", Some(&id)));
    f.expect_ack(&id);
    assert_eq!(llen(&k, "gz"), 7);
}

#[test]
fn tags_keys_and_values_are_bytes_not_utf8() {
    let k = Kura::start();
    let mut f = Fwd::connect(k.forward);
    // ["t\xff", [[1441588984, {bin "k\xfe": bin "v\x00\xff"}]], {"chunk": "c"}]
    let mut m = vec![
        0x93, 0xa2, b't', 0xff, 0x91, 0x92, 0xce, 0x55, 0xec, 0xe6, 0xf8, 0x81,
    ];
    mp::put_bin(&mut m, b"k\xfe");
    mp::put_bin(&mut m, b"v\x00\xff");
    m.extend_from_slice(b"\x81\xa5chunk\xa1c");
    f.send(&m);
    f.expect_ack(b"c");
    let mut c = k.client();
    c.send(&[b"LINDEX", b"t\xff", b"0"]);
    let reply = c.read_reply();
    let body = &reply[reply.iter().position(|&b| b == b'\n').unwrap() + 1..reply.len() - 2];
    assert_eq!(body, b"{\"k\xfe\":\"v\\u0000\xff\",\"time\":1441588984.0}");
}

#[test]
fn acks_come_in_request_order_for_pipelined_chunks() {
    let k = Kura::start();
    let mut f = Fwd::connect(k.forward);
    let e = entry(1441588984, 0, &[("m", "x")]);
    let mut all = Vec::new();
    let mut want = Vec::new();
    for i in 0..50u8 {
        let id = chunk_id(i);
        all.extend(fluentd_chunk("p", &e, 1, "text", Some(&id)));
        want.extend(ack_of(&id));
    }
    f.send(&all);
    assert_eq!(f.read(want.len()), want);
    assert_eq!(llen(&k, "p"), 50);
}

// ---- duplicates and faults ----

#[test]
fn a_resent_chunk_is_acked_again_but_stored_once() {
    let k = Kura::start();
    let e = [
        entry(1441588984, 0, &[("m", "a")]),
        entry(1441588984, 0, &[("m", "b")]),
    ]
    .concat();
    let id = chunk_id(7);
    let chunk = fluentd_chunk("dup", &e, 2, "text", Some(&id));
    let mut f = Fwd::connect(k.forward);
    f.send(&chunk);
    f.expect_ack(&id);
    // fluentd's resend after ack_response_timeout comes on a new connection.
    drop(f);
    let mut g = Fwd::connect(k.forward);
    g.send(&chunk);
    g.expect_ack(&id);
    assert_eq!(llen(&k, "dup"), 2);
    assert_eq!(metric(&k, "kura_forward_duplicate_chunks_total", None), 1.0);
    // The same id under another tag is another chunk (Fluent Bit ids hash the payload).
    g.send(&fluentd_chunk("dup2", &e, 2, "text", Some(&id)));
    g.expect_ack(&id);
    assert_eq!(llen(&k, "dup2"), 2);
}

#[test]
fn a_client_killed_mid_chunk_stores_nothing() {
    let k = Kura::start();
    let e = entry(1441588984, 0, &[("m", "x")]);
    let id = chunk_id(1);
    let chunk = fluentd_chunk("cut", &[e.clone(), e].concat(), 2, "text", Some(&id));
    let mut f = Fwd::connect(k.forward);
    f.send(&chunk[..chunk.len() - 3]);
    std::thread::sleep(Duration::from_millis(100));
    drop(f);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(llen(&k, "cut"), 0);
    // The server is fine: the whole chunk on a new connection is stored and acked.
    let mut g = Fwd::connect(k.forward);
    g.send(&chunk);
    g.expect_ack(&id);
    assert_eq!(llen(&k, "cut"), 2);
}

#[test]
fn garbage_closes_only_that_connection() {
    let k = Kura::start();
    let mut good = Fwd::connect(k.forward);
    let mut bad = Fwd::connect(k.forward);
    bad.send(b"\xc1\xc1\xc1 garbage");
    assert!(bad.closed(Duration::from_secs(5)));
    let e = entry(1441588984, 0, &[("m", "x")]);
    good.send(&fluentd_chunk("ok", &e, 1, "text", Some(b"id")));
    good.expect_ack(b"id");
    assert_eq!(
        metric(&k, "kura_forward_decode_errors_total", Some("framing")),
        1.0
    );
}

#[test]
fn malformed_requests_are_skipped_unacked_and_the_connection_continues() {
    let k = Kura::start();
    let mut f = Fwd::connect(k.forward);
    // nil (health check), a map (not an array), a request with an int tag, an unknown
    // compression: none acked, none stored.
    f.send(b"\xc0");
    f.send(b"\x81\xa1a\x01");
    f.send(b"\x93\x05\x90\x81\xa5chunk\xa1x");
    let e = entry(1441588984, 0, &[("m", "x")]);
    f.send(&fluentd_chunk("m", &e, 1, "lz4", Some(b"y")));
    // A chunk with one invalid event among good ones: the good one is stored and acked.
    let mut bad_event = vec![0x92, 0xa3, b'b', b'a', b'd'];
    record_into(&mut bad_event, &[("m", "no")]);
    f.send(&fluentd_chunk(
        "m",
        &[bad_event, e].concat(),
        2,
        "text",
        Some(b"z"),
    ));
    f.expect_ack(b"z");
    assert_eq!(llen(&k, "m"), 1);
    assert_eq!(
        metric(&k, "kura_forward_decode_errors_total", Some("not_array")),
        1.0
    );
    assert_eq!(
        metric(&k, "kura_forward_decode_errors_total", Some("bad_tag")),
        1.0
    );
    assert_eq!(
        metric(
            &k,
            "kura_forward_decode_errors_total",
            Some("unknown_compression")
        ),
        1.0
    );
    assert_eq!(metric(&k, "kura_forward_invalid_events_total", None), 1.0);
}

#[test]
fn a_gzip_bomb_is_refused_without_harm() {
    let k = Kura::start_with(|c| c.forward.decompression_size_limit = 1 << 20);
    let mut f = Fwd::connect(k.forward);
    let bomb = gzip(&vec![0u8; 32 << 20]);
    f.send(&fluentd_chunk("bomb", &bomb, 1, "gzip", Some(b"b")));
    assert!(f.silent(Duration::from_millis(500)), "no ack for a bomb");
    let e = entry(1441588984, 0, &[("m", "x")]);
    f.send(&fluentd_chunk("after", &e, 1, "text", Some(b"a")));
    f.expect_ack(b"a");
    assert_eq!(
        metric(
            &k,
            "kura_forward_decode_errors_total",
            Some("decompressed_too_large")
        ),
        1.0
    );
}

#[test]
fn a_chunk_over_the_limit_closes_the_connection_before_it_is_read() {
    let k = Kura::start_with(|c| c.forward.chunk_size_limit = 1 << 20);
    let mut f = Fwd::connect(k.forward);
    // Only the header announcing 8 MiB is sent: kura refuses without waiting for it.
    let mut head = vec![0x93, 0xa1, b't', 0xdb];
    head.extend_from_slice(&(8u32 << 20).to_be_bytes());
    f.send(&head);
    assert!(f.closed(Duration::from_secs(5)));
    assert_eq!(
        metric(&k, "kura_forward_decode_errors_total", Some("oversized")),
        1.0
    );
}

#[test]
fn large_chunks_in_many_reads_are_stored_whole() {
    let k = Kura::start();
    let mut entries = Vec::new();
    let n = 20_000;
    for i in 0..n {
        entries.extend(entry(
            1441588984,
            i,
            &[("message", &format!("line {i} {}", "x".repeat(100)))],
        ));
    }
    let id = chunk_id(9);
    let chunk = fluentd_chunk("big", &entries, n as u64, "text", Some(&id));
    let mut f = Fwd::connect(k.forward);
    for piece in chunk.chunks(7919) {
        f.send(piece);
    }
    f.expect_ack(&id);
    assert_eq!(llen(&k, "big"), n as i64);
}

// ---- handshake and heartbeats ----

fn read_value(f: &mut Fwd) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut scanner = mp::Scanner::new();
    loop {
        let mut b = [0u8; 1];
        f.s.read_exact(&mut b).expect("read handshake");
        buf.push(b[0]);
        if let Ok(mp::Scan::Complete(n)) = scanner.scan(&buf) {
            assert_eq!(n, buf.len());
            return buf;
        }
    }
}

#[test]
fn shared_key_handshake_right_and_wrong_key_and_users() {
    let k = Kura::start_with(|c| {
        c.forward.shared_key = "s3cret".into();
        c.forward.self_hostname = "kura-test".into();
    });
    // fluentd's client: 32-hex-char salt, empty user/password digest.
    let mut f = Fwd::connect(k.forward);
    let helo_bytes = read_value(&mut f);
    let helo = handshake::parse_helo(&helo_bytes).unwrap();
    let salt = b"0123456789abcdef0123456789abcdef";
    f.send(&handshake::ping(
        &helo,
        b"client-host",
        salt,
        b"s3cret",
        b"",
        b"",
    ));
    let pong = read_value(&mut f);
    assert_eq!(
        handshake::check_pong(&pong, &helo, b"client-host", salt, b"s3cret").unwrap(),
        b"kura-test"
    );
    let e = entry(1441588984, 0, &[("m", "x")]);
    f.send(&fluentd_chunk("auth", &e, 1, "text", Some(b"c1")));
    f.expect_ack(b"c1");
    // Fluent Bit's client: 16 raw bytes of salt sent as str; a wrong key.
    let mut g = Fwd::connect(k.forward);
    let helo_bytes = read_value(&mut g);
    let helo = handshake::parse_helo(&helo_bytes).unwrap();
    g.send(&handshake::ping(
        &helo,
        b"fb",
        b"\xff\x00raw-salt-bytes!",
        b"wrong",
        b"",
        b"",
    ));
    let pong = read_value(&mut g);
    // ["PONG", false, "shared_key mismatch", "", ""]
    assert_eq!(
        pong,
        b"\x95\xa4PONG\xc2\xb3shared_key mismatch\xa0\xa0".to_vec()
    );
    assert!(g.closed(Duration::from_secs(5)));
    assert_eq!(metric(&k, "kura_forward_auth_failures_total", None), 1.0);
    // Data before a handshake is not stored.
    let mut h = Fwd::connect(k.forward);
    let _helo = read_value(&mut h);
    h.send(&fluentd_chunk("auth", &e, 1, "text", Some(b"c2")));
    let pong = read_value(&mut h);
    assert_eq!(&pong[..7], b"\x95\xa4PONG\xc2");
    assert_eq!(llen(&k, "auth"), 1);
}

#[test]
fn handshake_with_users() {
    let k = Kura::start_with(|c| {
        c.forward.shared_key = "k".into();
        c.forward.users = vec![kura::forward::route::ForwardUser {
            username: "alice".into(),
            password: "pw".into(),
        }];
    });
    for (user, pass, ok) in [
        ("alice", "pw", true),
        ("alice", "nope", false),
        ("", "", false),
    ] {
        let mut f = Fwd::connect(k.forward);
        let helo_bytes = read_value(&mut f);
        let helo = handshake::parse_helo(&helo_bytes).unwrap();
        let salt = b"00112233445566778899aabbccddeeff";
        f.send(&handshake::ping(
            &helo,
            b"c",
            salt,
            b"k",
            user.as_bytes(),
            pass.as_bytes(),
        ));
        let pong = read_value(&mut f);
        assert_eq!(
            handshake::check_pong(&pong, &helo, b"c", salt, b"k").is_ok(),
            ok,
            "{user}/{pass}"
        );
    }
}

#[test]
fn udp_and_tcp_heartbeats() {
    let k = Kura::start();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    udp.send_to(&[0x00], k.forward).unwrap();
    let mut b = [9u8; 4];
    let (n, from) = udp.recv_from(&mut b).unwrap();
    assert_eq!((&b[..n], from), (&[0x00][..], k.forward));
    // fluentd's TCP heartbeat: connect, send nothing, close. Many of them, quietly.
    for _ in 0..20 {
        drop(TcpStream::connect(k.forward).unwrap());
    }
    let mut f = Fwd::connect(k.forward);
    let e = entry(1441588984, 0, &[("m", "x")]);
    f.send(&fluentd_chunk("hb", &e, 1, "text", Some(b"h")));
    f.expect_ack(b"h");
    assert!(wait_until(Duration::from_secs(5), || metric(
        &k,
        "kura_forward_connections",
        None
    ) == 1.0));
}

#[test]
fn deny_keepalive_closes_after_one_request_and_max_connections_refuses() {
    let k = Kura::start_with(|c| {
        c.forward.deny_keepalive = true;
        c.forward.max_connections = 2;
    });
    let e = entry(1441588984, 0, &[("m", "x")]);
    let mut f = Fwd::connect(k.forward);
    f.send(&fluentd_chunk("ka", &e, 1, "text", Some(b"1")));
    f.expect_ack(b"1");
    assert!(f.closed(Duration::from_secs(5)));
    let _a = Fwd::connect(k.forward);
    let _b = Fwd::connect(k.forward);
    assert!(wait_until(Duration::from_secs(5), || metric(
        &k,
        "kura_forward_connections",
        None
    ) == 2.0));
    let mut c = Fwd::connect(k.forward);
    assert!(c.closed(Duration::from_secs(5)), "third connection refused");
}

#[test]
fn a_replica_closes_forward_connections_without_acking() {
    let k = Kura::start();
    k.state
        .hot
        .read_only_replica
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let mut f = Fwd::connect(k.forward);
    let e = entry(1441588984, 0, &[("m", "x")]);
    f.send(&fluentd_chunk("r", &e, 1, "text", Some(b"1")));
    assert!(f.closed(Duration::from_secs(5)));
    k.state
        .hot
        .read_only_replica
        .store(false, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(llen(&k, "r"), 0);
}

#[test]
fn a_full_store_holds_the_chunk_and_stops_reading_until_it_fits() {
    let k = Kura::start();
    let mut c = k.client();
    let e = entry(1441588984, 0, &[("m", "x")]);
    c.cmd(&["CONFIG", "SET", "maxmemory", "1"]);
    assert!(wait_until(Duration::from_secs(5), || k
        .state
        .over_maxmemory()));
    let mut f = Fwd::connect(k.forward);
    f.send(&fluentd_chunk("oom", &e, 1, "text", Some(b"1")));
    assert!(
        f.silent(Duration::from_millis(400)),
        "no ack while the store refuses"
    );
    assert_eq!(llen(&k, "oom"), 0);
    assert!(metric(&k, "kura_forward_chunks_rejected_total", Some("oom")) >= 1.0);
    c.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
    // Held, not dropped: stored and acked once the store accepts again.
    f.expect_ack(b"1");
    assert_eq!(llen(&k, "oom"), 1);
}

// ---- mapping to the store ----

#[test]
fn routes_hash_mode_retention_ttl_publish_and_dbs() {
    let k = Kura::start_with(|c| {
        use kura::forward::route::{RecordFormat, Route, RouteMode};
        c.forward.routes = vec![
            Route {
                pattern: "app.{web,api}.**".into(),
                key: "logs:${tag_parts[1]}:%Y%m%d".into(),
                maxlen: 3,
                ttl: 3600,
                publish: true,
                ..Route::default()
            },
            Route {
                pattern: "metrics.*".into(),
                mode: RouteMode::Hash,
                key: "${tag}.%s".into(),
                db: 2,
                ..Route::default()
            },
            Route {
                pattern: "raw.**".into(),
                format: RecordFormat::Msgpack,
                time_key: String::new(),
                ..Route::default()
            },
            Route::default(),
        ];
    });
    let mut sub = k.client();
    sub.cmd(&["SUBSCRIBE", "logs:web:20150907"]);
    let mut f = Fwd::connect(k.forward);
    let entries: Vec<u8> = (0..5)
        .flat_map(|i| entry(1441588984, 0, &[("i", &i.to_string())]))
        .collect();
    f.send(&fluentd_chunk(
        "app.web.front",
        &entries,
        5,
        "text",
        Some(b"1"),
    ));
    f.expect_ack(b"1");
    // maxlen 3: the newest three kept (LTRIM key -3 -1); ttl set from arrival.
    let kept: Vec<String> = lrange(&k, "logs:web:20150907")
        .iter()
        .map(|v| v["i"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kept, vec!["2", "3", "4"]);
    let ttl: i64 = k
        .client()
        .cmd(&["TTL", "logs:web:20150907"])
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!((3590..=3600).contains(&ttl), "ttl {ttl}");
    // publish: every record reached the subscriber as it was stored.
    for i in 0..5 {
        let msg = String::from_utf8_lossy(&sub.read_reply()).into_owned();
        assert!(msg.contains(&format!("\"i\":\"{i}\"")), "{msg}");
    }
    // hash mode, db 2: one hash per record, never colliding, fluent-plugin-redis layout.
    let two = [
        entry(1441588984, 0, &[("cpu", "1")]),
        entry(1441588984, 0, &[("cpu", "2")]),
    ]
    .concat();
    f.send(&fluentd_chunk("metrics.host", &two, 2, "text", Some(b"2")));
    f.expect_ack(b"2");
    f.send(&fluentd_chunk("metrics.host", &two, 2, "text", Some(b"3")));
    f.expect_ack(b"3");
    let mut c = k.client();
    c.cmd(&["SELECT", "2"]);
    let keys = c.cmd(&["KEYS", "metrics.host.1441588984.*"]);
    assert!(keys.starts_with("*4\r\n"), "4 distinct hashes: {keys}");
    let first = keys.split("\r\n").nth(2).unwrap().to_string();
    let fields = c.cmd(&["HGETALL", &first]);
    assert!(
        fields.contains("$3\r\ncpu\r\n")
            && fields.contains("$4\r\ntime\r\n$12\r\n1441588984.0\r\n"),
        "{fields}"
    );
    // msgpack format without a time field: the record bytes as sent.
    let rec = entry(1441588984, 0, &[("m", "x")]);
    f.send(&fluentd_chunk("raw.x", &rec, 1, "text", Some(b"4")));
    f.expect_ack(b"4");
    let mut c = k.client();
    c.send(&[b"LINDEX", b"raw.x", b"0"]);
    assert_eq!(c.read_reply(), b"$5\r\n\x81\xa1m\xa1x\r\n".to_vec());
    // The default route catches the rest: key = tag.
    f.send(&fluentd_chunk("other", &rec, 1, "text", Some(b"5")));
    f.expect_ack(b"5");
    assert_eq!(llen(&k, "other"), 1);
}

#[test]
fn blpop_consumers_wake_on_forward_pushes() {
    let k = Kura::start();
    let mut waiter = k.client();
    waiter.send(&[b"BLPOP", b"queue", b"5"]);
    std::thread::sleep(Duration::from_millis(100));
    let mut f = Fwd::connect(k.forward);
    let e = entry(1441588984, 0, &[("m", "wake")]);
    f.send(&fluentd_chunk("queue", &e, 1, "text", Some(b"q")));
    f.expect_ack(b"q");
    let got = String::from_utf8_lossy(&waiter.read_reply()).into_owned();
    assert!(got.contains("\"m\":\"wake\""), "{got}");
}

// ---- real clients ----

/// Runs a Python script that exits 3 when its PyPI `package` is missing; returns false
/// (skip) in that case, except under CI where it fails. Any other failure fails the test.
pub(crate) fn run_python(script: &str, package: &str) -> bool {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    if out.status.code() == Some(3) {
        assert!(
            !crate::support::under_ci(),
            "python {package} missing under CI"
        );
        eprintln!("skipping: python3 has no {package} (pip install {package})");
        return false;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

#[test]
fn python_fluent_logger_events_arrive() {
    if need_program("python3").is_none() {
        return;
    }
    let k = Kura::start();
    let script = format!(
        r#"
import sys
try:
    from fluent import sender, event
except ImportError:
    sys.exit(3)
s = sender.FluentSender('py', host='127.0.0.1', port={port}, nanosecond_precision=True)
for i in range(100):
    assert s.emit('app', {{'i': i, 'msg': 'héllo', 'ok': True, 'nested': {{'a': [1, 2]}}}}), s.last_error
s.close()
"#,
        port = k.forward.port()
    );
    if !run_python(&script, "fluent-logger") {
        return;
    }
    assert!(wait_until(Duration::from_secs(5), || llen(&k, "py.app") == 100));
    let got = lrange(&k, "py.app");
    assert_eq!(got[7]["i"], 7);
    assert_eq!(got[7]["msg"], "héllo");
    assert_eq!(got[7]["nested"], serde_json::json!({"a": [1, 2]}));
    assert!(got[7]["time"].as_f64().unwrap() > 1.7e9);
}

#[test]
fn python_msgpack_out_forward_with_require_ack() {
    if need_program("python3").is_none() {
        return;
    }
    let k = Kura::start();
    // fluentd out_forward's wire behaviour rebuilt with python msgpack: PackedForward with
    // EventTime entries, then a blocking read of <= 512 bytes that must unpack to the ack.
    let script = format!(
        r#"
import socket, struct, sys, base64, os, gzip
try:
    import msgpack
except ImportError:
    sys.exit(3)
def et(s, ns): return msgpack.ExtType(0, struct.pack('>II', s, ns))
for compress in ('text', 'gzip'):
    entries = b''.join(msgpack.packb([et(1441588984, i), {{'n': i}}]) for i in range(1000))
    if compress == 'gzip':
        entries = gzip.compress(entries[:5000]) + gzip.compress(entries[5000:])
    chunk = base64.encodebytes(os.urandom(16)).decode()
    req = b'\x93' + msgpack.packb('py.fwd') + b'\xdb' + struct.pack('>I', len(entries)) + entries
    req += msgpack.packb({{'size': 1000, 'compressed': compress, 'chunk': chunk}})
    s = socket.create_connection(('127.0.0.1', {port}))
    s.sendall(req)
    res = msgpack.unpackb(s.recv(512), raw=False)
    assert res == {{'ack': chunk}}, res
    s.close()
"#,
        port = k.forward.port()
    );
    if !run_python(&script, "msgpack") {
        return;
    }
    assert_eq!(llen(&k, "py.fwd"), 2000);
}

#[test]
fn an_idle_connection_is_closed_after_idle_timeout() {
    let k = Kura::start_with(|c| c.forward.idle_timeout = 1);
    let mut f = Fwd::connect(k.forward);
    let e = entry(1441588984, 0, &[("m", "x")]);
    f.send(&fluentd_chunk("idle", &e, 1, "text", Some(b"i")));
    f.expect_ack(b"i");
    let started = std::time::Instant::now();
    assert!(f.closed(Duration::from_secs(5)));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn fluentd_without_acks_half_closes_and_everything_sent_is_stored() {
    let k = Kura::start();
    let e = entry(1441588984, 0, &[("m", "x")]);
    // fluentd out_forward without require_ack_response: write the chunk, close_write, close.
    let mut all = Vec::new();
    for _ in 0..30 {
        all.extend(fluentd_chunk(
            "half",
            &[e.clone(), e.clone()].concat(),
            2,
            "text",
            None,
        ));
    }
    let mut s = TcpStream::connect(k.forward).unwrap();
    s.write_all(&all).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    drop(s);
    assert!(wait_until(Duration::from_secs(5), || llen(&k, "half") == 60));
}

/// `deploy/kura.toml` with its marked example routes uncommented.
fn example_config() -> kura::Config {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kura.toml")).unwrap();
    let mut cfg = kura::Config::default();
    cfg.apply_toml(&kura::config::uncomment_example_routes(&text))
        .unwrap();
    cfg
}

#[test]
fn the_shipped_example_routes_store_where_they_say() {
    let example = example_config();
    let k = Kura::start_with(|c| c.forward.routes = example.forward.routes.clone());
    let mut f = Fwd::connect(k.forward);
    let e = entry(1441588984, 0, &[("m", "x")]);
    for (i, tag) in [
        "app.web",
        "metrics.cpu",
        "audit",
        "nginx.access",
        "db.error",
        "other",
    ]
    .iter()
    .enumerate()
    {
        let id = [b'0' + i as u8];
        f.send(&fluentd_chunk(tag, &e, 1, "text", Some(&id)));
        f.expect_ack(&id);
    }
    let mut c = k.client();
    // Daily list, capped and expiring.
    assert_eq!(llen(&k, "logs:app.web:20150907"), 1);
    let ttl = c.cmd(&["TTL", "logs:app.web:20150907"]);
    assert!(ttl.starts_with(":604"), "{ttl}");
    // fluent-plugin-redis layout.
    let keys = c.cmd(&["KEYS", "metrics.cpu.1441588984.*"]);
    assert!(keys.starts_with("*1\r\n"), "{keys}");
    // msgpack in db 1.
    c.cmd(&["SELECT", "1"]);
    c.send(&[b"LINDEX", b"audit", b"0"]);
    let rec = c.read_reply();
    assert!(
        rec.starts_with(b"$") && rec.windows(5).any(|w| w == b"\xa4time"),
        "{rec:?}"
    );
    // Tokyo time, ISO 8601, for web servers and errors.
    let web = lrange(&k, "web:nginx:2015-09-07");
    assert_eq!(web[0]["time"], "2015-09-07T10:23:04.000+09:00");
    assert_eq!(lrange(&k, "web:db:2015-09-07").len(), 1);
    // The catch-all.
    assert_eq!(llen(&k, "other"), 1);
}
