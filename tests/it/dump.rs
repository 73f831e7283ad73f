//! DUMP / RESTORE against a real redis-server 7.0: payloads must be byte-identical for the
//! same logical value, and payloads must move in both directions (Redis → kura → Redis)
//! with the data intact.
//!
//! kura's own list and hash commands are not needed: values are put into kura's keyspace
//! directly and read back from it, so these tests exercise only DUMP, RESTORE and the codec.

use std::sync::Arc;

use bytes::Bytes;
use kura::persist::rdb::{dump_payload, WriteOpts};
use kura::store::{Entry, Hash, List, Value};

use crate::support::{Kura, Raw, RedisServer};

/// The logical content of a value, comparable across servers.
#[derive(Debug, Clone, PartialEq)]
enum Model {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    /// Field/value pairs in insertion order (compared as a set when not listpack-sized).
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
}

impl Model {
    fn to_value(&self) -> Value {
        match self {
            Model::Str(s) => Value::Str(Bytes::from(s.clone()).into()),
            Model::List(items) => Value::List(Arc::new(List::from_iter_bytes(
                items.iter().map(|v| v.as_slice()),
            ))),
            Model::Hash(pairs) => {
                let mut h = Hash::new();
                for (f, v) in pairs {
                    h.set(f, v);
                }
                Value::Hash(Arc::new(h))
            }
        }
    }

    fn of_value(v: &Value) -> Model {
        match v {
            Value::Str(s) => Model::Str(s.to_vec()),
            Value::List(l) => Model::List(l.iter().map(|e| e.to_vec()).collect()),
            Value::Hash(h) => {
                Model::Hash(h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect())
            }
        }
    }

    /// Compares, treating hash pairs as a set.
    fn same(&self, other: &Model) -> bool {
        match (self, other) {
            (Model::Hash(a), Model::Hash(b)) => {
                let mut a = a.clone();
                let mut b = b.clone();
                a.sort();
                b.sort();
                a == b
            }
            _ => self == other,
        }
    }
}

/// Sends a command of binary arguments and returns the exact reply bytes.
fn call(c: &mut Raw, args: &[&[u8]]) -> Vec<u8> {
    c.send(args);
    c.read_reply()
}

/// Returns the payload of a bulk reply.
fn bulk(reply: &[u8]) -> Vec<u8> {
    assert_eq!(
        reply[0],
        b'$',
        "not a bulk: {}",
        String::from_utf8_lossy(reply)
    );
    let nl = reply.iter().position(|b| *b == b'\n').expect("a line");
    let n: usize = String::from_utf8_lossy(&reply[1..nl - 1])
        .parse()
        .expect("a length");
    reply[nl + 1..nl + 1 + n].to_vec()
}

/// Creates `key` holding `m` on redis-server with ordinary commands (RPUSH / HSET in batches,
/// so lists are split into nodes as pushes split them).
fn redis_create(c: &mut Raw, key: &[u8], m: &Model) {
    call(c, &[b"DEL", key]);
    match m {
        Model::Str(s) => {
            assert_eq!(call(c, &[b"SET", key, s]), b"+OK\r\n");
        }
        Model::List(items) => {
            for chunk in items.chunks(1000) {
                let mut args: Vec<&[u8]> = vec![b"RPUSH", key];
                args.extend(chunk.iter().map(|v| v.as_slice()));
                assert_eq!(call(c, &args)[0], b':');
            }
        }
        Model::Hash(pairs) => {
            for chunk in pairs.chunks(500) {
                let mut args: Vec<&[u8]> = vec![b"HSET", key];
                for (f, v) in chunk {
                    args.push(f);
                    args.push(v);
                }
                assert_eq!(call(c, &args)[0], b':');
            }
        }
    }
}

/// Reads `key` back from redis-server.
fn redis_read(c: &mut Raw, key: &[u8]) -> Model {
    let ty = call(c, &[b"TYPE", key]);
    let elements = |reply: Vec<u8>| -> Vec<Vec<u8>> {
        let mut cur = Raw::from_bytes(&reply);
        let head = cur.line();
        let n: usize = head[1..].parse().expect("an array");
        (0..n).map(|_| bulk(&cur.element())).collect()
    };
    match ty.as_slice() {
        b"+string\r\n" => Model::Str(bulk(&call(c, &[b"GET", key]))),
        b"+list\r\n" => Model::List(elements(call(c, &[b"LRANGE", key, b"0", b"-1"]))),
        b"+hash\r\n" => {
            let flat = elements(call(c, &[b"HGETALL", key]));
            Model::Hash(
                flat.chunks(2)
                    .map(|p| (p[0].clone(), p[1].clone()))
                    .collect(),
            )
        }
        other => panic!("unexpected type {}", String::from_utf8_lossy(other)),
    }
}

/// Summarises a payload's layout for failure messages: size, and per quicklist node the
/// stored string's header (LZF or raw, lengths) and element count.
fn describe(p: &[u8]) -> String {
    describe_nodes(p).unwrap_or_else(|e| format!("{} bytes, undecodable: {e}", p.len()))
}

fn describe_nodes(p: &[u8]) -> Result<String, kura::persist::rdb::RdbError> {
    use kura::persist::rdb::decode::{Len, Reader};
    let mut out = format!("{} bytes, type {}", p.len(), p[0]);
    if p[0] != 18 {
        return Ok(out);
    }
    let mut r = Reader::new(&p[1..]);
    let nodes = r.read_length()?;
    out.push_str(&format!(", {nodes} nodes:"));
    for _ in 0..nodes {
        let c = r.read_length()?;
        let mut peek = r.clone();
        let head = match peek.read_len()? {
            Len::Encoded(3) => {
                let clen = peek.read_length()?;
                format!("lzf {clen}->{}", peek.read_length()?)
            }
            other => format!("{other:?}"),
        };
        let lp = r.read_string()?;
        let n = kura::persist::rdb::listpack::for_each(&lp, |_| Ok(())).unwrap_or(0);
        out.push_str(&format!(" [c{c} {head} n={n}]"));
    }
    Ok(out)
}

/// Puts `v` into kura's database 0 directly.
fn kura_put(k: &Kura, key: &[u8], v: Value) {
    let now = k.state.clock.now_ms();
    let mut st = k.state.engine.lock();
    st.ks.dbs[0].insert(Bytes::copy_from_slice(key), Entry::new(v, now));
}

/// Reads `key` from kura's database 0 directly.
fn kura_get(k: &Kura, key: &[u8]) -> Option<Model> {
    let st = k.state.engine.lock();
    st.ks.dbs[0].get(key).map(|e| Model::of_value(&e.value))
}

fn log_line(i: usize) -> Vec<u8> {
    format!(
        "{{\"time\":\"2024-05-01T12:{:02}:{:02}Z\",\"level\":\"info\",\"host\":\"web-{}\",\"msg\":\"GET /api/items/{} 200\",\"bytes\":{}}}",
        (i / 60) % 60,
        i % 60,
        i % 7,
        i * 31 % 1000,
        i * 17 % 5000
    )
    .into_bytes()
}

fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn s(v: &str) -> Vec<u8> {
    v.as_bytes().to_vec()
}

/// Values whose DUMP must be byte-identical on both servers (lists built by tail pushes,
/// hashes in listpack form).
fn exact_cases() -> Vec<(String, Model)> {
    let mut out: Vec<(String, Model)> = Vec::new();
    let strings: Vec<Vec<u8>> = vec![
        s(""),
        s("v"),
        s("0"),
        s("-0"),
        s("-1"),
        s("127"),
        s("128"),
        s("-128"),
        s("-129"),
        s("32767"),
        s("32768"),
        s("-32768"),
        s("-32769"),
        s("2147483647"),
        s("2147483648"),
        s("-2147483648"),
        s("-2147483649"),
        s("12345678901"),
        s("9223372036854775807"),
        s("-9223372036854775808"),
        s("9223372036854775808"),
        s("007"),
        s("+5"),
        s("1.5"),
        vec![b'a'; 20],
        vec![b'a'; 21],
        vec![b'a'; 24],
        vec![b'a'; 25],
        vec![b'a'; 52],
        b"abc".repeat(100),
        pseudo_random(100, 1),
        pseudo_random(5000, 2),
        log_line(1),
        (0..50).flat_map(log_line).collect(),
        vec![0u8; 100_000],
        (0..20_000).flat_map(log_line).collect(),
    ];
    for (i, v) in strings.into_iter().enumerate() {
        out.push((format!("str{i}"), Model::Str(v)));
    }
    let lists: Vec<Vec<Vec<u8>>> = vec![
        vec![s("a"), s("b"), s("c"), s("7"), s("-300"), s("70000")],
        [
            "0",
            "127",
            "128",
            "-1",
            "4095",
            "-4096",
            "4096",
            "-4097",
            "32767",
            "32768",
            "8388607",
            "8388608",
            "-8388608",
            "-8388609",
            "2147483647",
            "2147483648",
            "-2147483648",
            "9223372036854775807",
            "-9223372036854775808",
            "007",
            "-0",
            "",
        ]
        .iter()
        .map(|x| s(x))
        .collect(),
        (0..1000).map(log_line).collect(),
        (0..6000).map(|i| i.to_string().into_bytes()).collect(),
        (0..3000).map(|i| format!("k{i}").into_bytes()).collect(),
        (0..40).map(|i| vec![b'a' + (i % 26) as u8; 5000]).collect(),
        (0..10).map(|i| vec![b'a' + i as u8; 10_000]).collect(),
        (0..400).map(|i| vec![b'x'; 250 + i % 10]).collect(),
        (0..400).map(|i| vec![b'y'; 60 + i % 8]).collect(),
        (0..100)
            .map(|i| pseudo_random(16380 + i % 8, i as u64))
            .collect(),
        (0..3000)
            .map(|i| pseudo_random(1 + (i * 7919) % 700, i as u64))
            .collect(),
    ];
    for (i, l) in lists.into_iter().enumerate() {
        out.push((format!("list{i}"), Model::List(l)));
    }
    let hashes: Vec<Vec<(Vec<u8>, Vec<u8>)>> = vec![
        vec![(s("f"), s("v")), (s("n"), s("42"))],
        (0..128)
            .map(|i| {
                (
                    format!("field:{i}").into_bytes(),
                    (i * 1000 - 7).to_string().into_bytes(),
                )
            })
            .collect(),
        (0..20)
            .map(|i| (format!("f{i}").into_bytes(), vec![b'v'; 64]))
            .collect(),
        vec![(s("1"), s("-1")), (s("payload"), b"xyz".repeat(21))],
    ];
    for (i, h) in hashes.into_iter().enumerate() {
        out.push((format!("hash{i}"), Model::Hash(h)));
    }
    out
}

/// Values whose payloads differ by nature (hashtable order, head-pushed node splits) but
/// whose content must survive the trip.
fn content_cases() -> Vec<(String, Model)> {
    vec![
        (
            "bighash".into(),
            Model::Hash(
                (0..1000)
                    .map(|i| (format!("f{i}").into_bytes(), log_line(i)))
                    .collect(),
            ),
        ),
        (
            "widehash".into(),
            Model::Hash(vec![(s("a"), vec![b'w'; 65]), (s("b"), s("1"))]),
        ),
        (
            "longlist".into(),
            Model::List((0..20_000).map(log_line).collect()),
        ),
    ]
}

#[test]
fn dump_is_byte_identical_to_redis() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let kura = Kura::start();
    let mut r = redis.client();
    let mut k = kura.client();
    for (key, m) in exact_cases() {
        redis_create(&mut r, key.as_bytes(), &m);
        let want = call(&mut r, &[b"DUMP", key.as_bytes()]);
        // The codec alone…
        let ours = dump_payload(&m.to_value(), &WriteOpts::default());
        let theirs = bulk(&want);
        if ours != theirs {
            panic!(
                "payload of {key} differs: ours {} theirs {}",
                describe(&ours),
                describe(&theirs)
            );
        }
        // …and the command's reply.
        kura_put(&kura, key.as_bytes(), m.to_value());
        assert_eq!(call(&mut k, &[b"DUMP", key.as_bytes()]), want, "DUMP {key}");
    }
    assert_eq!(call(&mut k, &[b"DUMP", b"nosuchkey"]), b"$-1\r\n");
}

#[test]
fn redis_payloads_restore_into_kura() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let kura = Kura::start();
    let mut r = redis.client();
    let mut k = kura.client();
    let mut cases = exact_cases();
    cases.extend(content_cases());
    // A list built by head pushes has other node boundaries than kura would write.
    let lpushed: Vec<Vec<u8>> = (0..5000).map(log_line).collect();
    call(&mut r, &[b"DEL", b"lpushed"]);
    for chunk in lpushed.chunks(700) {
        let mut args: Vec<&[u8]> = vec![b"LPUSH", b"lpushed"];
        args.extend(chunk.iter().map(|v| v.as_slice()));
        call(&mut r, &args);
    }
    let lpushed_model = redis_read(&mut r, b"lpushed");
    cases.push(("lpushed".into(), lpushed_model));
    for (key, m) in &cases {
        if key != "lpushed" {
            redis_create(&mut r, key.as_bytes(), m);
        }
        let payload = bulk(&call(&mut r, &[b"DUMP", key.as_bytes()]));
        let reply = call(&mut k, &[b"RESTORE", key.as_bytes(), b"0", &payload]);
        assert_eq!(reply, b"+OK\r\n", "RESTORE {key}");
        let got = kura_get(&kura, key.as_bytes()).expect("restored");
        assert!(got.same(m), "content of {key} differs after RESTORE");
        // And back again: kura's payload restores into redis-server with the same content.
        let back = bulk(&call(&mut k, &[b"DUMP", key.as_bytes()]));
        let copy = format!("{key}:copy");
        let reply = call(
            &mut r,
            &[b"RESTORE", copy.as_bytes(), b"0", &back, b"REPLACE"],
        );
        assert_eq!(reply, b"+OK\r\n", "RESTORE {key} into redis");
        assert!(
            redis_read(&mut r, copy.as_bytes()).same(m),
            "{key} after the round trip"
        );
    }
    // Strings are readable through the command, too.
    assert_eq!(call(&mut k, &[b"GET", b"str2"]), b"$1\r\n0\r\n");
}

#[test]
fn kura_payloads_restore_into_redis() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let kura = Kura::start();
    let mut r = redis.client();
    let mut k = kura.client();
    let mut cases = exact_cases();
    cases.extend(content_cases());
    for (key, m) in &cases {
        kura_put(&kura, key.as_bytes(), m.to_value());
        let payload = bulk(&call(&mut k, &[b"DUMP", key.as_bytes()]));
        let reply = call(
            &mut r,
            &[b"RESTORE", key.as_bytes(), b"0", &payload, b"REPLACE"],
        );
        assert_eq!(reply, b"+OK\r\n", "RESTORE {key} into redis");
        assert!(redis_read(&mut r, key.as_bytes()).same(m), "{key} in redis");
    }
    // redis-server re-encodes big hashes as hashtables, small ones as listpacks.
    assert_eq!(
        call(&mut r, &[b"OBJECT", b"ENCODING", b"bighash"]),
        b"$9\r\nhashtable\r\n"
    );
    assert_eq!(
        call(&mut r, &[b"OBJECT", b"ENCODING", b"hash0"]),
        b"$8\r\nlistpack\r\n"
    );
}

#[test]
fn restore_ttl_replace_and_propagation() {
    let kura = Kura::start();
    kura.record_writes();
    let mut k = kura.client();
    let v = dump_payload(
        &Value::Str(Bytes::from_static(b"hello").into()),
        &WriteOpts::default(),
    );
    let now = kura.state.clock.now_ms();
    let offset = kura.state.engine.lock().stream.offset();

    // Relative TTL: stored absolute, propagated as an absolute time with ABSTTL.
    assert_eq!(call(&mut k, &[b"RESTORE", b"k", b"5000", &v]), b"+OK\r\n");
    let at = kura.state.engine.lock().ks.dbs[0]
        .get(b"k")
        .and_then(|e| e.expire_at())
        .expect("has a ttl");
    assert!((now + 5000..now + 60_000).contains(&at));
    let logged = kura.state.engine.lock().stream.read_from(offset).unwrap();
    let want = format!("${}\r\n{at}\r\n", at.to_string().len());
    assert!(
        logged.windows(want.len()).any(|w| w == want.as_bytes()),
        "absolute ttl not propagated: {}",
        String::from_utf8_lossy(&logged)
    );
    assert!(logged.ends_with(b"$6\r\nABSTTL\r\n"));

    // BUSYKEY unless REPLACE.
    assert_eq!(
        call(&mut k, &[b"RESTORE", b"k", b"0", &v]),
        b"-BUSYKEY Target key name already exists.\r\n"
    );
    assert_eq!(
        call(&mut k, &[b"RESTORE", b"k", b"0", &v, b"REPLACE"]),
        b"+OK\r\n"
    );
    assert_eq!(
        kura.state.engine.lock().ks.dbs[0]
            .get(b"k")
            .unwrap()
            .expire_at(),
        None
    );

    // An absolute TTL in the past deletes a replaced key (logged as DEL) and creates nothing.
    let offset = kura.state.engine.lock().stream.offset();
    let past = (now - 1000).to_string();
    assert_eq!(
        call(
            &mut k,
            &[b"RESTORE", b"k", past.as_bytes(), &v, b"REPLACE", b"ABSTTL"]
        ),
        b"+OK\r\n"
    );
    assert!(kura_get(&kura, b"k").is_none());
    let logged = kura.state.engine.lock().stream.read_from(offset).unwrap();
    assert!(logged.ends_with(b"*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n"));
    // Without a key to delete nothing is logged.
    let offset = kura.state.engine.lock().stream.offset();
    assert_eq!(
        call(&mut k, &[b"RESTORE", b"k", past.as_bytes(), &v, b"ABSTTL"]),
        b"+OK\r\n"
    );
    assert_eq!(kura.state.engine.lock().stream.offset(), offset);

    // A key that expired meanwhile does not block a RESTORE.
    assert_eq!(call(&mut k, &[b"RESTORE", b"e", b"100", &v]), b"+OK\r\n");
    kura.state.clock.advance(200);
    assert_eq!(call(&mut k, &[b"RESTORE", b"e", b"0", &v]), b"+OK\r\n");
    assert_eq!(kura_get(&kura, b"e"), Some(Model::Str(b"hello".to_vec())));

    // IDLETIME sets the access time back.
    assert_eq!(
        call(&mut k, &[b"RESTORE", b"i", b"0", &v, b"IDLETIME", b"1000"]),
        b"+OK\r\n"
    );
    let access = kura.state.engine.lock().ks.dbs[0].get(b"i").unwrap().access as i64;
    let now_s = kura.state.clock.now_ms() / 1000;
    assert!((now_s - 1001..=now_s - 999).contains(&access));
}

/// Strings of every compressibility, from barely compressible (the `len - 4` boundary of
/// `rdbSaveLzfStringObject`) to runs, so LZF output is compared on many shapes.
#[test]
fn lzf_output_matches_redis_on_many_strings() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let mut r = redis.client();
    let mut seed = 7u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut compressed = 0;
    for i in 0..600 {
        let len = match i % 4 {
            0 => 21 + (next() % 40) as usize,
            1 => 60 + (next() % 400) as usize,
            2 => 400 + (next() % 5000) as usize,
            _ => 9000 + (next() % 60_000) as usize,
        };
        // Alphabet size and repeat probability vary the compressibility.
        let (alphabet, repeat) = if i % 3 == 0 {
            // Nearly random: around the "saves at least 4 bytes" boundary.
            (200 + (next() % 56) as u8, next() % 3)
        } else {
            (2 + (next() % 254) as u8, next() % 100)
        };
        let mut v: Vec<u8> = Vec::with_capacity(len);
        while v.len() < len {
            if v.len() > 8 && next() % 100 < repeat {
                let back = 1 + (next() as usize % v.len().min(9000));
                let n = 1 + (next() as usize % 300);
                let start = v.len() - back;
                for j in 0..n {
                    let b = v[start + j % back];
                    v.push(b);
                }
            } else {
                v.push((next() % alphabet as u64) as u8);
            }
        }
        v.truncate(len);
        assert_eq!(call(&mut r, &[b"SET", b"s", &v]), b"+OK\r\n");
        let theirs = bulk(&call(&mut r, &[b"DUMP", b"s"]));
        let ours = dump_payload(
            &Value::Str(Bytes::from(v.clone()).into()),
            &WriteOpts::default(),
        );
        assert!(
            ours == theirs,
            "string {i} (len {len}, alphabet {alphabet}, repeat {repeat}%): ours {} bytes, theirs {}",
            ours.len(),
            theirs.len()
        );
        compressed += usize::from(ours[1] == 0xc3);
    }
    // Both outcomes of the "saves at least 4 bytes" rule are exercised.
    assert!(
        (100..550).contains(&compressed),
        "{compressed} of 600 compressed"
    );
}

/// Node splits follow `list-max-listpack-size` as 7.0's quicklist does, for byte limits and
/// element-count limits alike.
#[test]
fn list_node_splits_follow_the_fill_setting() {
    let items: Vec<Vec<u8>> = (0..2500)
        .map(|i| {
            let mut v = log_line(i);
            v.truncate(20 + (i * 37) % 150);
            v
        })
        .collect();
    for fill in ["-1", "-3", "-5", "1", "7", "128", "0"] {
        let Some(redis) = RedisServer::start(&["--list-max-listpack-size", fill]) else {
            return;
        };
        let mut r = redis.client();
        let m = Model::List(items.clone());
        redis_create(&mut r, b"l", &m);
        let theirs = bulk(&call(&mut r, &[b"DUMP", b"l"]));
        let opts = WriteOpts {
            compress: true,
            list_fill: fill.parse().expect("fill"),
            ..WriteOpts::default()
        };
        let ours = dump_payload(&m.to_value(), &opts);
        if ours != theirs {
            panic!(
                "fill {fill}: ours {} theirs {}",
                describe(&ours),
                describe(&theirs)
            );
        }
    }
}
