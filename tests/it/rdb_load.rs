//! RDB files written by a real redis-server 7.0 load into kura with identical content
//! (issue 4 "verified by" (b)): strings in every encoding, lists in every node shape
//! (listpack nodes, several nodes, LZF-compressed nodes, plain nodes, tiny fill), hashes as
//! listpack and hashtable, expiries, several databases. Every key, value and expiry read
//! back from the server is compared with what `persist::rdb::load::load` built.
//!
//! And the refusals a real file can trigger: a set stops the load naming the key, a file
//! saved with `rdbchecksum no` loads unchecked, an expired key is dropped by a master and
//! kept by a replica.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kura::persist::rdb::load::{load, Checksum, KeyName, LoadError, LoadOpts, Loaded};
use kura::store::Value;

use crate::support::{bulks, call, ok, Raw, RedisServer, Resp};

// ---- THE MODEL BOTH SIDES ARE COMPARED IN ----

/// A value as compared: hashes as sorted pairs (field order is an encoding detail).
#[derive(Debug, Clone, PartialEq)]
enum Model {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
}

type Db = BTreeMap<Vec<u8>, (Model, Option<i64>)>;

fn of_value(v: &Value) -> Model {
    match v {
        Value::Str(s) => Model::Str(s.to_vec()),
        Value::List(l) => Model::List(l.iter().map(|e| e.to_vec()).collect()),
        Value::Hash(h) => {
            let mut pairs: Vec<_> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
            pairs.sort();
            Model::Hash(pairs)
        }
    }
}

fn kura_db(l: &Loaded, db: usize) -> Db {
    l.keyspace.dbs[db]
        .iter()
        .map(|(k, e)| (k.to_vec(), (of_value(&e.value), e.expire_at())))
        .collect()
}

/// Reads database `db` of the server: every key's value and absolute expiry (PEXPIRETIME).
fn redis_db(c: &mut Raw, db: usize) -> Db {
    ok(c, &["SELECT", &db.to_string()]);
    let mut out = Db::new();
    for key in bulks(call(c, &[b"KEYS", b"*"])) {
        let ty = match call(c, &[b"TYPE", &key]) {
            Resp::Simple(t) => t,
            other => panic!("TYPE: {other:?}"),
        };
        let model = match ty.as_str() {
            "string" => match call(c, &[b"GET", &key]) {
                Resp::Bulk(Some(v)) => Model::Str(v),
                other => panic!("GET: {other:?}"),
            },
            "list" => Model::List(bulks(call(c, &[b"LRANGE", &key, b"0", b"-1"]))),
            "hash" => {
                let flat = bulks(call(c, &[b"HGETALL", &key]));
                let mut pairs: Vec<_> = flat
                    .chunks(2)
                    .map(|p| (p[0].clone(), p[1].clone()))
                    .collect();
                pairs.sort();
                Model::Hash(pairs)
            }
            other => panic!("unexpected type {other}"),
        };
        let expire = match call(c, &[b"PEXPIRETIME", &key]) {
            Resp::Int(-1) => None,
            Resp::Int(t) if t >= 0 => Some(t),
            other => panic!("PEXPIRETIME: {other:?}"),
        };
        out.insert(key, (model, expire));
    }
    out
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs SAVE and returns the bytes of `dump.rdb`.
fn save(c: &mut Raw, dir: &Path) -> Vec<u8> {
    assert_eq!(call(c, &[b"SAVE"]), Resp::Simple("OK".into()));
    std::fs::read(dir.join("dump.rdb")).expect("dump.rdb")
}

/// Starts redis-server with its files in `dir` (a later `--dir` overrides the support
/// default), DEBUG enabled and `extra` settings, or `None` to skip.
fn start(dir: &Path, extra: &[&str]) -> Option<RedisServer> {
    let dir = dir.to_str().expect("utf-8 temp path");
    let mut args = vec!["--dir", dir, "--enable-debug-command", "yes"];
    args.extend_from_slice(extra);
    RedisServer::start(&args)
}

// ---- THE DATASET ----

fn rpush(c: &mut Raw, key: &str, items: &[Vec<u8>]) {
    for batch in items.chunks(500) {
        let mut args: Vec<&[u8]> = vec![b"RPUSH", key.as_bytes()];
        args.extend(batch.iter().map(|v| v.as_slice()));
        assert!(matches!(call(c, &args), Resp::Int(_)));
    }
}

fn hset(c: &mut Raw, key: &str, pairs: &[(String, String)]) {
    let mut args: Vec<&[u8]> = vec![b"HSET", key.as_bytes()];
    for (f, v) in pairs {
        args.push(f.as_bytes());
        args.push(v.as_bytes());
    }
    assert!(matches!(call(c, &args), Resp::Int(_)));
}

/// Writes the dataset: every string, list and hash shape Redis 7.0 saves.
fn populate(c: &mut Raw) {
    // -- Strings: int encodings, beyond 32 bits, LZF, incompressible, binary, empty.
    for (k, v) in [
        ("s:small", "v"),
        ("s:int8", "-7"),
        ("s:int16", "12345"),
        ("s:int32", "-2147483648"),
        ("s:beyond32", "2147483648"),
        ("s:i64", "9223372036854775807"),
        ("s:leading-zero", "007"),
        ("s:empty", ""),
        ("12345", "a key stored as an integer"),
    ] {
        ok(c, &["SET", k, v]);
    }
    ok(c, &["SET", "s:lzf", &"abcdefgh".repeat(50)]);
    let noise: Vec<u8> = (0..300u32).map(|i| (i * 7919 % 251) as u8).collect();
    call(c, &[b"SET", b"s:noise", &noise]);
    let binary: Vec<u8> = (0..=255u8).collect();
    call(c, &[b"SET", b"bin\x00\xffkey", &binary]);
    ok(c, &["SET", "s:big", &"log line ".repeat(10_000)]);

    // -- Lists.
    let small: Vec<Vec<u8>> = ["a", "b", "c", "7", "-300", "70000", "4294967296", ""]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    rpush(c, "l:small", &small);
    // Several 8 KB nodes, LZF-compressed in the file.
    let records: Vec<Vec<u8>> = (0..5000)
        .map(|i| format!("{{\"n\":{i},\"msg\":\"GET /index.html 200 {}\"}}", i * 31).into_bytes())
        .collect();
    rpush(c, "l:many-nodes", &records);
    // An element over 8 KB: a node of its own, bigger than the fill limit.
    let mut mixed = records[..10].to_vec();
    mixed.push(vec![b'q'; 20_000]);
    mixed.extend_from_slice(&records[10..20]);
    rpush(c, "l:big-element", &mixed);
    // Plain nodes: elements above the packed threshold, lowered from 1 GB for the test.
    ok(c, &["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "1000"]);
    let mut plain = records[..5].to_vec();
    plain.push(vec![b'p'; 3000]);
    plain.push(b"between".to_vec());
    plain.push((0..5000u32).map(|i| (i % 256) as u8).collect());
    rpush(c, "l:plain-nodes", &plain);
    ok(c, &["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "1g"]);
    // Four elements per node; then nodes compressed in memory (written as LZF blobs).
    ok(c, &["CONFIG", "SET", "list-max-listpack-size", "4"]);
    rpush(c, "l:fill-4", &records[..103]);
    ok(c, &["CONFIG", "SET", "list-compress-depth", "1"]);
    rpush(c, "l:compressed", &records[..1000]);
    ok(c, &["CONFIG", "SET", "list-compress-depth", "0"]);
    ok(c, &["CONFIG", "SET", "list-max-listpack-size", "-2"]);

    // -- Hashes: listpack, hashtable by count, by value length, by a lowered limit.
    let pairs = |n: usize, vlen: usize| -> Vec<(String, String)> {
        (0..n)
            .map(|i| (format!("field:{i}"), format!("{i}{}", "v".repeat(vlen))))
            .collect()
    };
    hset(
        c,
        "h:small",
        &[("f".into(), "v".into()), ("n".into(), "42".into())],
    );
    hset(
        c,
        "h:ints",
        &[("a".into(), "-300".into()), ("b".into(), "70000".into())],
    );
    hset(c, "h:table", &pairs(1000, 10));
    hset(c, "h:long-value", &[("f".into(), "x".repeat(100))]);
    ok(c, &["CONFIG", "SET", "hash-max-listpack-entries", "4"]);
    hset(c, "h:low-limit", &pairs(10, 3));
    ok(c, &["CONFIG", "SET", "hash-max-listpack-entries", "128"]);
    hset(c, "h:listpack-200", &pairs(100, 20));

    // -- Expiries on each type.
    ok(c, &["SET", "e:str", "soon", "EX", "100000"]);
    rpush(c, "e:list", &small);
    ok(c, &["PEXPIRE", "e:list", "5000000"]);
    hset(c, "e:hash", &[("f".into(), "v".into())]);
    ok(c, &["EXPIREAT", "e:hash", "4102444800"]);

    // -- Other databases, one reusing names from DB 0.
    ok(c, &["SELECT", "1"]);
    ok(c, &["SET", "other", "x"]);
    ok(c, &["SELECT", "5"]);
    rpush(c, "l:small", &small[..3]);
    ok(c, &["SET", "s:small", "db5", "PX", "7777777"]);
    ok(c, &["SELECT", "15"]);
    hset(c, "h:small", &[("only".into(), "in 15".into())]);
    ok(c, &["SELECT", "0"]);
}

// ---- TESTS ----

#[test]
fn a_redis_7_dump_loads_with_identical_keys_values_and_expiries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(server) = start(dir.path(), &[]) else {
        return;
    };
    let mut c = server.client();
    populate(&mut c);
    let before = now_ms();
    let file = save(&mut c, dir.path());
    let l = load(&file, 16, &LoadOpts::master(now_ms())).expect("load");
    assert_eq!(l.version, 10);
    assert_eq!(l.checksum, Checksum::Verified);
    assert!(
        l.redis_ver().is_some_and(|v| v.starts_with("7.")),
        "{:?}",
        l.redis_ver()
    );
    let ctime = l.ctime().expect("ctime");
    assert!((ctime - before / 1000).abs() <= 5, "ctime {ctime}");
    assert_eq!(l.keys_expired, 0);
    let mut total = 0;
    for db in 0..16 {
        let want = redis_db(&mut c, db);
        let got = kura_db(&l, db);
        total += want.len();
        let want_keys: Vec<_> = want
            .keys()
            .map(|k| KeyName(k.clone()).to_string())
            .collect();
        let got_keys: Vec<_> = got.keys().map(|k| KeyName(k.clone()).to_string()).collect();
        assert_eq!(got_keys, want_keys, "keys of DB {db}");
        for (k, (model, expire)) in &want {
            let (gm, ge) = &got[k];
            assert_eq!(ge, expire, "expiry of {} in DB {db}", KeyName(k.clone()));
            assert!(gm == model, "value of {} in DB {db}", KeyName(k.clone()));
        }
    }
    assert_eq!(l.keys_loaded as usize, total);
    assert!(total > 30, "{total} keys");
    // The file really holds LZF-compressed packed nodes (container 2 then an LZF string).
    assert!(file.windows(2).any(|w| w == b"\x02\xc3"), "no LZF node");
    assert!(file.len() > 100_000);
}

#[test]
fn a_set_in_a_redis_dump_stops_the_load_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(server) = start(dir.path(), &[]) else {
        return;
    };
    let mut c = server.client();
    ok(&mut c, &["SET", "fine", "1"]);
    ok(&mut c, &["SELECT", "2"]);
    ok(&mut c, &["SADD", "my set", "a", "b"]);
    let file = save(&mut c, dir.path());
    let e = load(&file, 16, &LoadOpts::master(now_ms())).unwrap_err();
    match &e {
        LoadError::UnsupportedType { key, db, name, .. } => {
            assert_eq!((key, *db), (&KeyName(b"my set".to_vec()), 2));
            // Redis 7.0 writes a small set of strings as a plain set (type 2).
            assert_eq!(*name, "set");
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("key 'my set' in DB 2"), "{e}");
    // A set of integers (intset) and a sorted set are named the same way.
    ok(&mut c, &["FLUSHALL"]);
    ok(&mut c, &["SELECT", "0"]);
    ok(&mut c, &["SADD", "ints", "1", "2", "3"]);
    let file = save(&mut c, dir.path());
    let e = load(&file, 16, &LoadOpts::master(now_ms())).unwrap_err();
    assert!(e.to_string().contains("key 'ints' in DB 0"), "{e}");
    assert!(e.to_string().contains("set (intset)"), "{e}");
    ok(&mut c, &["FLUSHALL"]);
    ok(&mut c, &["ZADD", "scores", "1", "a"]);
    let file = save(&mut c, dir.path());
    let e = load(&file, 16, &LoadOpts::master(now_ms())).unwrap_err();
    assert!(
        e.to_string().contains("key 'scores' in DB 0 at offset"),
        "{e}"
    );
    assert!(e.to_string().contains("zset (listpack)"), "{e}");
}

#[test]
fn checksum_disabled_and_expired_keys_in_a_redis_dump() {
    let dir = tempfile::tempdir().expect("tempdir");
    // `rdbchecksum` cannot be changed at run time.
    let Some(server) = start(dir.path(), &["--rdbchecksum", "no"]) else {
        return;
    };
    let mut c = server.client();
    // A key saved after its expiry: Redis keeps it in memory until something deletes it,
    // and with active expiry off nothing does.
    ok(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    ok(&mut c, &["SET", "gone", "x", "PX", "30"]);
    ok(&mut c, &["SET", "stays", "y"]);
    std::thread::sleep(Duration::from_millis(100));
    let file = save(&mut c, dir.path());
    assert_eq!(&file[file.len() - 8..], &[0; 8]);
    let master = load(&file, 16, &LoadOpts::master(now_ms())).expect("load");
    assert_eq!(master.checksum, Checksum::Disabled);
    assert_eq!((master.keys_loaded, master.keys_expired), (1, 1));
    assert!(master.keyspace.dbs[0].get(b"gone").is_none());
    let replica = load(&file, 16, &LoadOpts::replica(now_ms())).expect("load");
    assert_eq!((replica.keys_loaded, replica.keys_expired), (2, 0));
    assert!(replica.keyspace.dbs[0]
        .get(b"gone")
        .and_then(|e| e.expire_at())
        .is_some_and(|t| t < now_ms()));
    // The same file cut short anywhere near its end is refused, never half-loaded.
    for cut in [file.len() - 1, file.len() - 9, file.len() / 2] {
        let e = load(&file[..cut], 16, &LoadOpts::master(now_ms())).unwrap_err();
        assert_eq!(e.kind(), "truncated", "{e}");
    }
}
