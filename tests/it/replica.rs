//! kura as a replica of a real redis-server 7.0 (`shared/spec/redis.md` §2.2–2.10): full
//! sync in both framings, the stream, partial resync after a dropped link and after a
//! restart, promotion, READONLY / MASTERDOWN, the forward door, INFO replication, expiry.
//!
//! Every test skips (with a printed reason) when redis-server is missing, except under CI.

use std::time::Duration;

use crate::forward::{entry, fluentd_chunk, Fwd};
use crate::support::{call, ok, wait_until, Kura, KuraProcess, Raw, RedisServer, Resp};

/// Returns INFO field `name`.
pub(crate) fn field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
}

/// Returns `field` of `INFO <section>` on `c`.
pub(crate) fn info_field(c: &mut Raw, section: &str, name: &str) -> Option<String> {
    field(&c.cmd(&["INFO", section]), name)
}

/// Starts a redis-server master that syncs at once (no diskless delay), with DEBUG on
/// (for plain quicklist nodes) and `extra` settings.
fn redis_master(extra: &[&str]) -> Option<RedisServer> {
    let mut args = vec![
        "--repl-diskless-sync-delay",
        "0",
        "--enable-debug-command",
        "yes",
    ];
    args.extend_from_slice(extra);
    RedisServer::start(&args)
}

/// Starts an in-process kura replica of `redis`.
fn kura_replica(redis: &RedisServer, tweak: impl FnOnce(&mut kura::Config)) -> Kura {
    let port = redis.addr.port();
    Kura::start_with(|c| {
        c.replicaof = Some(("127.0.0.1".into(), port));
        tweak(c);
    })
}

/// Waits until the replica's link is up and it applied everything the master has sent.
pub(crate) fn wait_synced(replica: &mut Raw, master: &mut Raw) {
    let ok = wait_until(Duration::from_secs(30), || {
        let r = replica.cmd(&["INFO", "replication"]);
        let m = master.cmd(&["INFO", "replication"]);
        field(&r, "master_link_status").as_deref() == Some("up")
            && field(&r, "slave_repl_offset") == field(&m, "master_repl_offset")
    });
    assert!(
        ok,
        "replica did not catch up: {}\nmaster: {}",
        replica.cmd(&["INFO", "replication"]),
        master.cmd(&["INFO", "replication"])
    );
}

/// Every key of every database: type, contents, absolute expiry (PEXPIRETIME), via RESP.
pub(crate) fn dump_all(c: &mut Raw) -> Vec<String> {
    let mut out = Vec::new();
    for db in 0..16 {
        ok(c, &["SELECT", &db.to_string()]);
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut cursor = "0".to_string();
        loop {
            let Resp::Array(r) = call(c, &[b"SCAN", cursor.as_bytes(), b"COUNT", b"1000"]) else {
                panic!("SCAN");
            };
            let (Resp::Bulk(Some(next)), Resp::Array(batch)) = (&r[0], &r[1]) else {
                panic!("SCAN reply");
            };
            for k in batch {
                if let Resp::Bulk(Some(k)) = k {
                    keys.push(k.clone());
                }
            }
            cursor = String::from_utf8_lossy(next).into_owned();
            if cursor == "0" {
                break;
            }
        }
        keys.sort();
        keys.dedup();
        for k in keys {
            let Resp::Simple(ty) = call(c, &[b"TYPE", &k]) else {
                panic!("TYPE");
            };
            let body = match ty.as_str() {
                "string" => call(c, &[b"GET", &k]),
                "list" => call(c, &[b"LRANGE", &k, b"0", b"-1"]),
                "hash" => {
                    let Resp::Array(flat) = call(c, &[b"HGETALL", &k]) else {
                        panic!("HGETALL");
                    };
                    let mut pairs: Vec<Vec<Resp>> = flat.chunks(2).map(|p| p.to_vec()).collect();
                    pairs.sort_by_key(|p| format!("{p:?}"));
                    Resp::Array(pairs.into_iter().flatten().collect())
                }
                other => panic!("unexpected type {other}"),
            };
            let expire = call(c, &[b"PEXPIRETIME", &k]);
            let body = format!("{body:?}");
            // Keep failures readable: long values are compared by length and a digest.
            let body = if body.len() > 200 {
                format!("{}.. len {} sum {}", &body[..80], body.len(), digest(&body))
            } else {
                body
            };
            out.push(format!(
                "db{db} {} {ty} {expire:?} {body}",
                String::from_utf8_lossy(&k)
            ));
        }
    }
    out
}

/// A cheap content digest for long values.
fn digest(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// Writes lists and hashes of every encoding, strings, expiries, in several databases.
pub(crate) fn fill(c: &mut Raw, p: &str) {
    let key = |s: &str| format!("{p}{s}");
    ok(c, &["SELECT", "0"]);
    // Small list (one listpack), big list (quicklist, several nodes).
    ok(c, &["RPUSH", &key("small"), "a", "b", "c", "1", "2", "-3"]);
    let items: Vec<String> = (0..3000)
        .map(|i| format!("element-{i:05}-xxxxxxxx"))
        .collect();
    let mut args = vec!["RPUSH".to_string(), key("big")];
    args.extend(items);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(c, &a);
    // Many small nodes (count-limited listpacks).
    ok(c, &["CONFIG", "SET", "list-max-listpack-size", "4"]);
    for i in 0..50 {
        ok(c, &["RPUSH", &key("nodes"), &i.to_string()]);
    }
    ok(c, &["CONFIG", "SET", "list-max-listpack-size", "-2"]);
    // Plain nodes: elements over the packed threshold.
    // Redis only (kura has no such DEBUG subcommand; its big elements are plain anyway).
    c.cmd(&["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "1000"]);
    let huge = "P".repeat(9000);
    ok(
        c,
        &["RPUSH", &key("plain"), "head", &huge, "mid", &huge, "tail"],
    );
    // Hashes: listpack, hashtable.
    ok(
        c,
        &["HSET", &key("hsmall"), "f1", "v1", "f2", "2", "f3", ""],
    );
    for chunk in 0..6 {
        let mut args = vec!["HSET".to_string(), key("hbig")];
        for i in 0..100 {
            args.push(format!("field-{chunk}-{i}"));
            args.push(format!("value-{}", i * chunk));
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(c, &a);
    }
    // Strings: integer, LZF-compressible, plain.
    ok(c, &["SET", &key("int"), "12345"]);
    ok(c, &["SET", &key("neg"), "-9000000000"]);
    ok(c, &["SET", &key("lzf"), &"abcabcabc".repeat(500)]);
    ok(c, &["SET", &key("raw"), "hello world"]);
    // Expiries.
    ok(c, &["SET", &key("ttl"), "v", "EX", "100000"]);
    ok(c, &["PEXPIRE", &key("big"), "50000000"]);
    ok(c, &["HSET", &key("httl"), "a", "1"]);
    ok(c, &["EXPIRE", &key("httl"), "7777"]);
    // Other databases.
    ok(c, &["SELECT", "3"]);
    ok(c, &["RPUSH", &key("l3"), "x", "y"]);
    ok(c, &["SET", &key("s3"), "three"]);
    ok(c, &["SELECT", "15"]);
    ok(c, &["HSET", &key("h15"), "k", "v"]);
    ok(c, &["SELECT", "0"]);
}

/// Writes after the attach: everything arrives through the stream.
pub(crate) fn stream_writes(c: &mut Raw, p: &str) {
    let key = |s: &str| format!("{p}{s}");
    ok(c, &["SELECT", "0"]);
    ok(c, &["RPUSH", &key("small"), "d", "e"]);
    ok(c, &["LPOP", &key("big")]);
    ok(c, &["LSET", &key("big"), "10", "changed"]);
    ok(c, &["LTRIM", &key("nodes"), "3", "-3"]);
    ok(c, &["RPUSH", &key("plain"), &"Q".repeat(12000)]);
    ok(c, &["HSET", &key("hsmall"), "f4", "four"]);
    ok(c, &["HDEL", &key("hbig"), "field-0-0", "field-1-1"]);
    ok(c, &["HINCRBY", &key("hsmall"), "f2", "40"]);
    ok(c, &["INCR", &key("int")]);
    ok(c, &["APPEND", &key("raw"), "!!"]);
    ok(c, &["SET", &key("ex"), "v", "EX", "5000"]);
    ok(c, &["SETEX", &key("setex"), "6000", "v"]);
    ok(c, &["EXPIRE", &key("raw"), "9000"]);
    ok(c, &["PERSIST", &key("ttl")]);
    ok(c, &["DEL", &key("lzf")]);
    ok(c, &["INCRBYFLOAT", &key("float"), "1.5"]);
    // A transaction across databases.
    ok(c, &["MULTI"]);
    c.cmd(&["RPUSH", &key("txn"), "1", "2"]);
    c.cmd(&["SELECT", "5"]);
    c.cmd(&["SET", &key("in5"), "five"]);
    c.cmd(&["HSET", &key("h5"), "a", "b"]);
    c.cmd(&["SELECT", "0"]);
    c.cmd(&["EXPIRE", &key("txn"), "1234"]);
    let exec = c.cmd(&["EXEC"]);
    assert!(exec.starts_with("*6\r\n"), "{exec}");
    ok(c, &["SELECT", "3"]);
    ok(c, &["DEL", &key("s3")]);
    ok(c, &["LPUSH", &key("l3"), "w"]);
    ok(c, &["SELECT", "0"]);
}

/// Full sync then stream from a real Redis master, compared key by key.
fn follows_redis(diskless_sync: &str, diskless_load: &str) {
    let Some(redis) = redis_master(&["--repl-diskless-sync", diskless_sync]) else {
        return;
    };
    let mut m = redis.client();
    fill(&mut m, "pre:");
    let load = diskless_load.to_string();
    let kura = kura_replica(&redis, move |c| c.repl_diskless_load = load);
    let mut k = kura.client();
    wait_synced(&mut k, &mut m);
    let theirs = dump_all(&mut m);
    assert_eq!(theirs.len(), 15, "{theirs:?}");
    assert_eq!(dump_all(&mut k), theirs, "after the full sync");
    stream_writes(&mut m, "pre:");
    fill(&mut m, "post:");
    wait_synced(&mut k, &mut m);
    assert_eq!(dump_all(&mut k), dump_all(&mut m), "after the stream");
    // The master's offset is ours; the master sees our ACKs.
    let master_offset =
        info_field(&mut m, "replication", "master_repl_offset").expect("master_repl_offset");
    assert_eq!(
        info_field(&mut k, "replication", "master_repl_offset"),
        Some(master_offset.clone())
    );
    assert!(wait_until(Duration::from_secs(5), || {
        m.cmd(&["INFO", "replication"])
            .contains(&format!(",offset={master_offset},"))
    }));
    // WAIT makes the master send REPLCONF GETACK: answered at once.
    ok(&mut m, &["SET", "waited", "1"]);
    assert_eq!(m.cmd(&["WAIT", "1", "5000"]), ":1\r\n");
    let role = k.cmd(&["ROLE"]);
    assert!(role.contains("$9\r\nconnected\r\n"), "{role}");
}

#[test]
fn follows_redis_with_eof_framing_loaded_from_disk() {
    follows_redis("yes", "disabled");
}

#[test]
fn follows_redis_with_length_framing_loaded_in_memory() {
    follows_redis("no", "swapdb");
}

#[test]
fn a_killed_link_resumes_with_a_partial_resync() {
    let Some(redis) = redis_master(&[]) else {
        return;
    };
    let mut m = redis.client();
    fill(&mut m, "a:");
    let port = redis.addr.port().to_string();
    let replicaof = format!("127.0.0.1 {port}");
    let kura = KuraProcess::start(&["--replicaof", &replicaof]);
    let mut k = kura.client();
    wait_synced(&mut k, &mut m);
    let before = info_field(&mut m, "stats", "sync_partial_ok").unwrap();
    assert_eq!(before, "0");
    // Writes while the link is down are in the master's backlog.
    assert_eq!(m.cmd(&["CLIENT", "KILL", "TYPE", "replica"]), ":1\r\n");
    stream_writes(&mut m, "a:");
    wait_synced(&mut k, &mut m);
    assert_eq!(
        info_field(&mut m, "stats", "sync_partial_ok").as_deref(),
        Some("1")
    );
    assert_eq!(
        info_field(&mut m, "stats", "sync_full").as_deref(),
        Some("1")
    );
    assert_eq!(dump_all(&mut k), dump_all(&mut m));
    let log = kura.log();
    for line in [
        "Connection with master lost.",
        "Caching the disconnected master state.",
        "Trying a partial resynchronization (request ",
        "Successful partial resynchronization with master.",
        "MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.",
    ] {
        assert!(log.contains(line), "missing {line:?} in:\n{log}");
    }
}

#[test]
fn a_restarted_replica_continues_where_it_stopped() {
    let Some(redis) = redis_master(&[]) else {
        return;
    };
    let mut m = redis.client();
    fill(&mut m, "r:");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let replicaof = format!("127.0.0.1 {}", redis.addr.port());
    let mut kura = KuraProcess::start(&["--dir", &d, "--replicaof", &replicaof]);
    let mut k = kura.client();
    wait_synced(&mut k, &mut m);
    // SELECT 3 last, so the restarted replica must know the stream's database.
    ok(&mut m, &["SELECT", "3"]);
    ok(&mut m, &["SET", "r:last3", "x"]);
    wait_synced(&mut k, &mut m);
    k.send(&[b"SHUTDOWN", b"SAVE"]);
    assert!(kura.wait_exit(Duration::from_secs(20)).is_some());
    // Writes while the replica is away, still in database 3 of the stream.
    ok(&mut m, &["SET", "r:while-away", "y"]);
    let kura = KuraProcess::start(&["--dir", &d, "--replicaof", &replicaof]);
    let mut k = kura.client();
    wait_synced(&mut k, &mut m);
    assert_eq!(
        info_field(&mut m, "stats", "sync_partial_ok").as_deref(),
        Some("1"),
        "{}",
        kura.log()
    );
    assert_eq!(
        info_field(&mut m, "stats", "sync_full").as_deref(),
        Some("1")
    );
    assert!(kura
        .log()
        .contains("Trying a partial resynchronization (request "));
    assert_eq!(dump_all(&mut k), dump_all(&mut m));
    ok(&mut k, &["SELECT", "3"]);
    assert_eq!(k.cmd(&["GET", "r:while-away"]), "$1\r\ny\r\n");
}

#[test]
fn promotion_keeps_the_old_history_as_replid2() {
    let Some(redis) = redis_master(&[]) else {
        return;
    };
    let mut m = redis.client();
    fill(&mut m, "p:");
    let kura = kura_replica(&redis, |_| {});
    let mut k = kura.client();
    wait_synced(&mut k, &mut m);
    let old_id = info_field(&mut m, "replication", "master_replid").unwrap();
    let offset: u64 = info_field(&mut k, "replication", "master_repl_offset")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        info_field(&mut k, "replication", "master_replid").as_deref(),
        Some(old_id.as_str())
    );
    assert_eq!(
        k.cmd(&["SET", "x", "1"]),
        "-READONLY You can't write against a read only replica.\r\n"
    );
    assert_eq!(k.cmd(&["REPLICAOF", "NO", "ONE"]), "+OK\r\n");
    let info = k.cmd(&["INFO", "replication"]);
    assert_eq!(field(&info, "role").as_deref(), Some("master"));
    assert_eq!(field(&info, "master_replid2"), Some(old_id.clone()));
    assert_ne!(field(&info, "master_replid"), Some(old_id));
    assert_eq!(
        field(&info, "second_repl_offset"),
        Some((offset + 1).to_string())
    );
    assert_eq!(k.cmd(&["SET", "x", "1"]), "+OK\r\n");
    assert_eq!(k.cmd(&["REPLICAOF", "NO", "ONE"]), "+OK\r\n");
    let hello = k.cmd(&["HELLO", "3"]);
    assert!(hello.contains("role\r\n$6\r\nmaster"), "{hello}");
    // Writes to the old master no longer arrive.
    ok(&mut m, &["SET", "p:after", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(k.cmd(&["EXISTS", "p:after"]), ":0\r\n");
}

#[test]
fn replicaof_replies_like_redis_and_switches_at_run_time() {
    let Some(redis) = redis_master(&[]) else {
        return;
    };
    let Some(other) = RedisServer::start(&[]) else {
        return;
    };
    let kura = Kura::start();
    let mut k = kura.client();
    let mut o = other.client();
    let port = redis.addr.port().to_string();
    // Error cases and no-ops, the same bytes on both.
    for cmd in [
        vec!["REPLICAOF", "127.0.0.1", "70000"],
        vec!["SLAVEOF", "127.0.0.1", "abc"],
        vec!["REPLICAOF", "127.0.0.1", "-1"],
        vec!["REPLICAOF", "no", "one"],
        vec!["REPLICAOF", "x"],
        vec!["SLAVEOF"],
    ] {
        assert_eq!(k.cmd(&cmd), o.cmd(&cmd), "{cmd:?}");
    }
    ok(&mut k, &["SET", "mine", "1"]);
    let mut m = redis.client();
    fill(&mut m, "s:");
    assert_eq!(k.cmd(&["REPLICAOF", "127.0.0.1", &port]), "+OK\r\n");
    assert_eq!(
        k.cmd(&["REPLICAOF", "127.0.0.1", &port]),
        "+OK Already connected to specified master\r\n"
    );
    assert_eq!(
        k.cmd(&["SLAVEOF", "127.0.0.1", &port]),
        "+OK Already connected to specified master\r\n"
    );
    wait_synced(&mut k, &mut m);
    assert_eq!(dump_all(&mut k), dump_all(&mut m));
    assert_eq!(
        k.cmd(&["CONFIG", "GET", "replicaof"]),
        format!(
            "*2\r\n$9\r\nreplicaof\r\n${}\r\n127.0.0.1 {port}\r\n",
            10 + port.len()
        )
    );
    let hello = k.cmd(&["HELLO", "3"]);
    assert!(hello.contains("role\r\n$7\r\nreplica"), "{hello}");
    // COMMAND INFO matches Redis's.
    ok(&mut k, &["HELLO", "2"]);
    assert_eq!(
        k.cmd(&["COMMAND", "INFO", "replicaof", "slaveof"]),
        o.cmd(&["COMMAND", "INFO", "replicaof", "slaveof"])
    );
    // Switching to another master: the cached state of the first one does not match its
    // history, so a full sync replaces the data.
    let mut o2 = other.client();
    ok(&mut o2, &["SET", "other", "data"]);
    let oport = other.addr.port().to_string();
    assert_eq!(k.cmd(&["REPLICAOF", "127.0.0.1", &oport]), "+OK\r\n");
    wait_synced(&mut k, &mut o2);
    assert_eq!(dump_all(&mut k), dump_all(&mut o2));
}

#[test]
fn writes_masterdown_and_the_forward_door_on_a_replica() {
    let Some(redis) = redis_master(&[]) else {
        return;
    };
    let mut m = redis.client();
    ok(&mut m, &["SET", "k", "v"]);
    let kura = kura_replica(&redis, |_| {});
    let mut k = kura.client();
    wait_synced(&mut k, &mut m);
    for cmd in [
        vec!["SET", "x", "1"],
        vec!["RPUSH", "l", "a"],
        vec!["HSET", "h", "f", "v"],
        vec!["DEL", "k"],
    ] {
        assert_eq!(
            k.cmd(&cmd),
            "-READONLY You can't write against a read only replica.\r\n",
            "{cmd:?}"
        );
    }
    assert_eq!(k.cmd(&["GET", "k"]), "$1\r\nv\r\n");
    // The forward door: closed without an ack, nothing stored.
    let mut f = Fwd::connect(kura.forward);
    let e = entry(1441588984, 0, &[("m", "x")]);
    f.send(&fluentd_chunk("fwd", &e, 1, "text", Some(b"1")));
    assert!(f.closed(Duration::from_secs(5)));
    assert_eq!(k.cmd(&["EXISTS", "fwd"]), ":0\r\n");
    // A writable replica does not take forward chunks either.
    ok(&mut k, &["CONFIG", "SET", "replica-read-only", "no"]);
    let mut f = Fwd::connect(kura.forward);
    f.send(&fluentd_chunk("fwd", &e, 1, "text", Some(b"2")));
    assert!(f.closed(Duration::from_secs(5)));
    assert_eq!(k.cmd(&["EXISTS", "fwd"]), ":0\r\n");
    ok(&mut k, &["CONFIG", "SET", "replica-read-only", "yes"]);
    // Master down, stale data refused.
    ok(&mut k, &["CONFIG", "SET", "replica-serve-stale-data", "no"]);
    assert_eq!(k.cmd(&["GET", "k"]), "$1\r\nv\r\n");
    drop(m);
    drop(redis);
    assert!(wait_until(Duration::from_secs(10), || {
        info_field(&mut k, "replication", "master_link_status").as_deref() == Some("down")
    }));
    let masterdown =
        "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n";
    assert_eq!(k.cmd(&["GET", "k"]), masterdown);
    assert_eq!(k.cmd(&["PING"]), masterdown);
    assert_eq!(
        k.cmd(&["SET", "x", "1"]),
        "-READONLY You can't write against a read only replica.\r\n"
    );
    assert!(k.cmd(&["INFO", "replication"]).contains("role:slave"));
    assert!(k.cmd(&["ROLE"]).starts_with("*5\r\n$5\r\nslave\r\n"));
    ok(
        &mut k,
        &["CONFIG", "SET", "replica-serve-stale-data", "yes"],
    );
    assert_eq!(k.cmd(&["GET", "k"]), "$1\r\nv\r\n");
}

#[test]
fn info_replication_has_redis_field_names_in_redis_order() {
    let Some(redis) = redis_master(&[]) else {
        return;
    };
    let mut m = redis.client();
    ok(&mut m, &["SET", "k", "v"]);
    let replicaof = format!("127.0.0.1 {}", redis.addr.port());
    let words: Vec<&str> = replicaof.split(' ').collect();
    let Some(real) = RedisServer::start(&["--replicaof", words[0], words[1]]) else {
        return;
    };
    let mut r = real.client();
    let kura = kura_replica(&redis, |_| {});
    let mut k = kura.client();
    wait_synced(&mut k, &mut m);
    wait_synced(&mut r, &mut m);
    let names = |info: String| -> Vec<String> {
        info.lines()
            .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_string()))
            .collect()
    };
    let ours = names(k.cmd(&["INFO", "replication"]));
    let theirs = names(r.cmd(&["INFO", "replication"]));
    assert_eq!(ours, theirs);
    // While the link is down too.
    drop(m);
    drop(redis);
    assert!(wait_until(Duration::from_secs(10), || {
        info_field(&mut k, "replication", "master_link_status").as_deref() == Some("down")
            && info_field(&mut r, "replication", "master_link_status").as_deref() == Some("down")
    }));
    let ours = names(k.cmd(&["INFO", "replication"]));
    let theirs = names(r.cmd(&["INFO", "replication"]));
    assert_eq!(ours, theirs);
}

#[test]
fn expired_keys_are_hidden_until_the_masters_del() {
    let Some(redis) = redis_master(&[]) else {
        return;
    };
    let mut m = redis.client();
    ok(&mut m, &["SET", "soon", "v", "EX", "1000"]);
    let kura = kura_replica(&redis, |_| {});
    let mut k = kura.client();
    wait_synced(&mut k, &mut m);
    assert_eq!(k.cmd(&["GET", "soon"]), "$1\r\nv\r\n");
    // Past the key's time on the replica's clock only: hidden, but still there.
    kura.state.clock.advance(2_000_000);
    assert_eq!(k.cmd(&["GET", "soon"]), "$-1\r\n");
    assert_eq!(k.cmd(&["EXISTS", "soon"]), ":0\r\n");
    assert_eq!(k.cmd(&["DBSIZE"]), ":1\r\n");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        k.cmd(&["DBSIZE"]),
        ":1\r\n",
        "a replica never expires keys itself"
    );
    // The master's DEL removes it.
    ok(&mut m, &["DEL", "soon"]);
    wait_synced(&mut k, &mut m);
    assert_eq!(k.cmd(&["DBSIZE"]), ":0\r\n");
}

#[test]
fn an_unloadable_snapshot_keeps_the_old_data_and_retries() {
    let Some(redis) = redis_master(&[]) else {
        return;
    };
    let mut m = redis.client();
    ok(&mut m, &["SET", "k", "v"]);
    ok(&mut m, &["SADD", "a-set", "x"]);
    let replicaof = format!("127.0.0.1 {}", redis.addr.port());
    let kura = KuraProcess::start(&["--replicaof", &replicaof]);
    let mut k = kura.client();
    assert!(wait_until(Duration::from_secs(20), || {
        kura.log().contains("a type kura does not hold")
    }));
    assert_eq!(
        info_field(&mut k, "replication", "master_link_status").as_deref(),
        Some("down")
    );
    assert_eq!(k.cmd(&["DBSIZE"]), ":0\r\n");
    // Once the master drops the set, a later attempt succeeds.
    ok(&mut m, &["DEL", "a-set"]);
    wait_synced(&mut k, &mut m);
    assert_eq!(k.cmd(&["GET", "k"]), "$1\r\nv\r\n");
    assert!(kura
        .log()
        .contains("Failed trying to load the MASTER synchronization DB from disk"));
}

#[test]
fn the_aof_of_a_replica_restarts_from_the_full_sync() {
    let Some(redis) = redis_master(&[]) else {
        return;
    };
    let mut m = redis.client();
    fill(&mut m, "aof:");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let replicaof = format!("127.0.0.1 {}", redis.addr.port());
    let mut kura = KuraProcess::start(&[
        "--dir",
        &d,
        "--appendonly",
        "yes",
        "--replicaof",
        &replicaof,
    ]);
    let mut k = kura.client();
    wait_synced(&mut k, &mut m);
    stream_writes(&mut m, "aof:");
    wait_synced(&mut k, &mut m);
    // The rewrite started by the sync must be complete for the AOF to name the new base.
    assert!(wait_until(Duration::from_secs(20), || {
        let p = k.cmd(&["INFO", "persistence"]);
        field(&p, "aof_rewrite_in_progress").as_deref() == Some("0")
            && field(&p, "aof_rewrite_scheduled").as_deref() == Some("0")
    }));
    let want = dump_all(&mut m);
    k.send(&[b"SHUTDOWN", b"NOSAVE"]);
    assert!(kura.wait_exit(Duration::from_secs(20)).is_some());
    // Restarted as a master on the AOF alone: the master's data.
    let kura = KuraProcess::start(&["--dir", &d, "--appendonly", "yes"]);
    let mut k = kura.client();
    assert_eq!(dump_all(&mut k), want, "{}", kura.log());
}

#[test]
fn a_master_restarting_from_a_dump_keeps_its_history_as_replid2() {
    let rdir = tempfile::tempdir().unwrap();
    let rd = rdir.path().to_str().unwrap().to_string();
    let Some(redis) = redis_master(&["--dir", &rd]) else {
        return;
    };
    let mut m = redis.client();
    // A replica attached: the master has a backlog, so its dump records its history.
    let Some(real) =
        RedisServer::start(&["--replicaof", "127.0.0.1", &redis.addr.port().to_string()])
    else {
        return;
    };
    ok(&mut m, &["SET", "k", "v"]);
    wait_synced(&mut real.client(), &mut m);
    ok(&mut m, &["SAVE"]);
    let id = info_field(&mut m, "replication", "master_replid").unwrap();
    let offset: u64 = info_field(&mut m, "replication", "master_repl_offset")
        .unwrap()
        .parse()
        .unwrap();
    assert!(offset > 0);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(rdir.path().join("dump.rdb"), dir.path().join("dump.rdb")).unwrap();
    let kura = KuraProcess::start(&["--dir", dir.path().to_str().unwrap()]);
    let mut k = kura.client();
    let info = k.cmd(&["INFO", "replication"]);
    assert_eq!(field(&info, "role").as_deref(), Some("master"));
    assert_eq!(field(&info, "master_replid2"), Some(id.clone()));
    assert_ne!(field(&info, "master_replid"), Some(id));
    assert_eq!(
        field(&info, "second_repl_offset"),
        Some((offset + 1).to_string())
    );
    assert_eq!(field(&info, "master_repl_offset"), Some(offset.to_string()));
    assert_eq!(k.cmd(&["GET", "k"]), "$1\r\nv\r\n");
}

#[test]
fn forward_connections_open_when_the_role_changes_are_closed_unacked() {
    let Some(redis) = redis_master(&[]) else {
        return;
    };
    let kura = Kura::start();
    let mut k = kura.client();
    let mut f = Fwd::connect(kura.forward);
    let e = entry(1441588984, 0, &[("m", "x")]);
    let one = crate::forward::chunk_id(1);
    f.send(&fluentd_chunk("fwd", &e, 1, "text", Some(&one)));
    f.expect_ack(&one);
    let port = redis.addr.port().to_string();
    assert_eq!(k.cmd(&["REPLICAOF", "127.0.0.1", &port]), "+OK\r\n");
    // The same connection's next chunk is refused: closed, no ack.
    let two = crate::forward::chunk_id(2);
    f.send(&fluentd_chunk("fwd", &e, 1, "text", Some(&two)));
    assert!(f.closed(Duration::from_secs(5)));
    // Promoted again: the door takes chunks.
    assert_eq!(k.cmd(&["REPLICAOF", "NO", "ONE"]), "+OK\r\n");
    let mut f = Fwd::connect(kura.forward);
    let three = crate::forward::chunk_id(3);
    f.send(&fluentd_chunk("fwd", &e, 1, "text", Some(&three)));
    f.expect_ack(&three);
}

#[test]
fn masterauth_and_the_announced_address() {
    let Some(redis) = redis_master(&["--requirepass", "s3cret"]) else {
        return;
    };
    let mut m = redis.client();
    ok(&mut m, &["AUTH", "s3cret"]);
    ok(&mut m, &["SET", "k", "v"]);
    let kura = kura_replica(&redis, |c| {
        c.masterauth = "s3cret".into();
        c.replica_announce_ip = "10.1.2.3".into();
        c.replica_announce_port = 7777;
    });
    let mut k = kura.client();
    wait_synced(&mut k, &mut m);
    assert_eq!(k.cmd(&["GET", "k"]), "$1\r\nv\r\n");
    // Redis marks a diskless replica online only once it has reaped the BGSAVE child (its
    // cron, up to 100 ms later), which can be after the replica has loaded and caught up.
    let online = wait_until(Duration::from_secs(10), || {
        m.cmd(&["INFO", "replication"])
            .contains("slave0:ip=10.1.2.3,port=7777,state=online")
    });
    assert!(online, "{}", m.cmd(&["INFO", "replication"]));
    // A wrong password never gets past the handshake.
    let bad = kura_replica(&redis, |c| c.masterauth = "wrong".into());
    let mut b = bad.client();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        info_field(&mut b, "replication", "master_link_status").as_deref(),
        Some("down")
    );
    assert_eq!(b.cmd(&["DBSIZE"]), ":0\r\n");
    assert_eq!(
        info_field(&mut m, "replication", "connected_slaves").as_deref(),
        Some("1")
    );
}
