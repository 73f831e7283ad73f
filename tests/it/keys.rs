//! Key and string commands beyond the differential scripts: active and lazy expiry driven by
//! the injectable clock, SCAN over a changing keyspace, and the normalised write stream —
//! checked by itself and against what a real redis-server 7.0 sends its replicas.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{Kura, RedisServer};

/// Parses a stream of RESP arrays of bulk strings (the replication stream format).
fn parse_commands(mut data: &[u8]) -> Vec<Vec<String>> {
    fn line<'a>(data: &mut &'a [u8]) -> Option<&'a str> {
        let end = data.windows(2).position(|w| w == b"\r\n")?;
        let l = std::str::from_utf8(&data[..end]).ok()?;
        *data = &data[end + 2..];
        Some(l)
    }
    let mut out = Vec::new();
    while !data.is_empty() {
        let Some(header) = line(&mut data) else { break };
        let n: usize = header
            .trim_start_matches('*')
            .parse()
            .expect("array header");
        let mut cmd = Vec::with_capacity(n);
        for _ in 0..n {
            let len: usize = line(&mut data)
                .expect("bulk header")
                .trim_start_matches('$')
                .parse()
                .expect("bulk length");
            cmd.push(String::from_utf8_lossy(&data[..len]).into_owned());
            data = &data[len + 2..];
        }
        out.push(cmd);
    }
    out
}

/// Returns every command kura has written to its stream so far.
fn kura_stream(kura: &Kura) -> Vec<Vec<String>> {
    let bytes = kura
        .state
        .engine
        .lock()
        .stream
        .read_from(0)
        .expect("stream from 0");
    parse_commands(&bytes)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Waits up to `limit` for `cond`.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

#[test]
fn active_expiry_removes_keys_nobody_reads() {
    let kura = Kura::start();
    kura.record_writes();
    let mut c = kura.client();
    for i in 0..50 {
        assert_eq!(
            c.cmd(&["SET", &format!("t{i}"), "v", "PX", "1000"]),
            "+OK\r\n"
        );
    }
    assert_eq!(c.cmd(&["SET", "stays", "v"]), "+OK\r\n");
    assert_eq!(c.cmd(&["DBSIZE"]), ":51\r\n");
    kura.state.clock.advance(2000);
    // No command touches the keys: only the cron (hz 10) can remove them.
    let gone = wait_for(Duration::from_secs(5), || {
        kura.state.engine.lock().ks.dbs[0].len() == 1
    });
    assert!(gone, "active expiry did not remove the keys");
    assert_eq!(kura.state.engine.lock().stats.expired_keys, 50);
    let dels = kura_stream(&kura)
        .into_iter()
        .filter(|c| c[0] == "DEL")
        .count();
    assert_eq!(dels, 50, "each expired key is propagated as DEL");
    assert_eq!(c.cmd(&["DBSIZE"]), ":1\r\n");
    assert_eq!(c.cmd(&["GET", "stays"]), "$1\r\nv\r\n");
}

#[test]
fn lazy_expiry_deletes_on_access_and_propagates_del() {
    // hz 1: the active cycle rarely runs during the test; either way the key must be gone.
    let kura = Kura::start_with(|c| c.hz = 1);
    kura.record_writes();
    let mut c = kura.client();
    assert_eq!(c.cmd(&["SET", "k", "v", "EX", "10"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "j", "v", "PX", "500"]), "+OK\r\n");
    kura.state.clock.advance(11_000);
    assert_eq!(c.cmd(&["GET", "k"]), "$-1\r\n");
    assert_eq!(c.cmd(&["TTL", "j"]), ":-2\r\n");
    assert_eq!(c.cmd(&["EXISTS", "k", "j"]), ":0\r\n");
    assert_eq!(c.cmd(&["DBSIZE"]), ":0\r\n");
    let stream = kura_stream(&kura);
    assert!(stream.contains(&vec!["DEL".to_string(), "k".to_string()]));
    assert!(stream.contains(&vec!["DEL".to_string(), "j".to_string()]));
    assert_eq!(kura.state.engine.lock().stats.expired_keys, 2);
}

#[test]
fn replica_keeps_logically_expired_keys_until_its_master_deletes_them() {
    let kura = Kura::start_with(|c| c.hz = 1);
    kura.record_writes();
    let mut c = kura.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    kura.state.engine.lock().is_replica = true;
    // checkAlreadyExpired is false on a replica: the past time is stored, not a DEL.
    assert_eq!(c.cmd(&["EXPIRE", "k", "-1"]), ":1\r\n");
    assert!(kura.state.engine.lock().ks.dbs[0].get(b"k").is_some());
    assert_eq!(c.cmd(&["GET", "k"]), "$-1\r\n");
    assert_eq!(c.cmd(&["TTL", "k"]), ":-2\r\n");
    assert_eq!(c.cmd(&["KEYS", "*"]), "*0\r\n");
    assert_eq!(c.cmd(&["SCAN", "0"]), "*2\r\n$1\r\n0\r\n*0\r\n");
    assert_eq!(c.cmd(&["DBSIZE"]), ":1\r\n");
    let stream = kura_stream(&kura);
    assert!(!stream.iter().any(|c| c[0] == "DEL"), "{stream:?}");
    assert!(kura.state.engine.lock().ks.dbs[0].get(b"k").is_some());
}

#[test]
fn write_stream_holds_the_normalised_commands() {
    let kura = Kura::start();
    kura.record_writes();
    let mut c = kura.client();
    let t0 = now_ms();
    let script: &[&[&str]] = &[
        &["SET", "a", "1", "EX", "100"],
        &["SET", "b", "1", "PX", "5000", "GET"],
        &["SET", "c", "1", "PXAT", "4102444800000"],
        &["SET", "d", "1", "GET"],
        &["SET", "d", "2", "NX"],
        &["SETEX", "e", "100", "v"],
        &["PSETEX", "f", "100000", "v"],
        &["EXPIRE", "d", "100", "NX"],
        &["PEXPIRE", "d", "200000"],
        &["EXPIREAT", "d", "4102444800"],
        &["pexpireat", "d", "4102444801000"],
        &["EXPIRE", "d", "-1"],
        &["EXPIRE", "missing", "10"],
        &["GETEX", "a", "EX", "50"],
        &["GETEX", "a", "PERSIST"],
        &["GETEX", "a", "PERSIST"],
        &["GETEX", "a", "PXAT", "4102444800000"],
        &["GETEX", "a", "EXAT", "1"],
        &["INCRBYFLOAT", "g", "1.5"],
        &["GETSET", "g", "x"],
        &["GETDEL", "g"],
        &["GETDEL", "g"],
        &["INCR", "h"],
        &["PERSIST", "h"],
        &["RENAME", "h", "h"],
        &["COPY", "c", "c2", "DB", "1"],
        &["MOVE", "c", "2"],
        &["SWAPDB", "0", "1"],
        &["FLUSHDB"],
        &["FLUSHALL"],
    ];
    for cmd in script {
        let reply = c.cmd(cmd);
        assert!(!reply.starts_with('-'), "{cmd:?} failed: {reply}");
    }
    let t1 = now_ms();
    let mut got = kura_stream(&kura);
    // Relative times became absolute: check them against the wall clock, then blank them.
    let mut times = Vec::new();
    for cmd in got.iter_mut() {
        for arg in cmd.iter_mut().skip(2) {
            if let Ok(n) = arg.parse::<i64>() {
                if n > 1_000_000_000_000 && n < 4_000_000_000_000 {
                    times.push(n);
                    *arg = "<t>".into();
                }
            }
        }
    }
    let expect_rel = [100_000, 5_000, 100_000, 100_000, 100_000, 200_000, 50_000];
    assert_eq!(times.len(), expect_rel.len(), "{got:?}");
    for (t, rel) in times.iter().zip(expect_rel) {
        assert!(
            *t >= t0 + rel && *t <= t1 + rel,
            "absolute time {t} not within [{}, {}]",
            t0 + rel,
            t1 + rel
        );
    }
    let want: Vec<Vec<&str>> = vec![
        vec!["SELECT", "0"],
        vec!["SET", "a", "1", "PXAT", "<t>"],
        vec!["SET", "b", "1", "PXAT", "<t>"],
        vec!["SET", "c", "1", "PXAT", "4102444800000"],
        vec!["SET", "d", "1"],
        vec!["SET", "e", "v", "PXAT", "<t>"],
        vec!["SET", "f", "v", "PXAT", "<t>"],
        vec!["PEXPIREAT", "d", "<t>", "NX"],
        vec!["PEXPIREAT", "d", "<t>"],
        vec!["PEXPIREAT", "d", "4102444800000"],
        vec!["pexpireat", "d", "4102444801000"],
        vec!["DEL", "d"],
        vec!["PEXPIREAT", "a", "<t>"],
        vec!["PERSIST", "a"],
        vec!["PEXPIREAT", "a", "4102444800000"],
        vec!["DEL", "a"],
        vec!["SET", "g", "1.5", "KEEPTTL"],
        vec!["SET", "g", "x"],
        vec!["DEL", "g"],
        vec!["INCR", "h"],
        vec!["COPY", "c", "c2", "DB", "1"],
        vec!["MOVE", "c", "2"],
        vec!["SWAPDB", "0", "1"],
        vec!["FLUSHDB"],
        vec!["FLUSHALL"],
    ];
    assert_eq!(got, want);
}

/// A fake replica of a real redis-server: reads its replication stream.
struct ReplicaLink {
    reader: BufReader<TcpStream>,
}

impl ReplicaLink {
    fn connect(redis: &RedisServer) -> ReplicaLink {
        let mut s = TcpStream::connect(redis.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s.write_all(b"PSYNC ? -1\r\n").expect("psync");
        let mut reader = BufReader::new(s);
        let mut line = String::new();
        // +FULLRESYNC, then (after optional newline keepalives) the RDB as $<len>.
        loop {
            line.clear();
            reader.read_line(&mut line).expect("psync reply");
            if line.starts_with('$') {
                break;
            }
        }
        let len: usize = line[1..].trim().parse().expect("rdb length");
        let mut rdb = vec![0u8; len];
        reader.read_exact(&mut rdb).expect("rdb");
        ReplicaLink { reader }
    }

    /// Reads commands until one equals `last` (included), dropping the master's PINGs.
    fn read_until(&mut self, last: &[&str]) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        loop {
            let mut header = String::new();
            self.reader.read_line(&mut header).expect("stream");
            let n: usize = header
                .trim()
                .trim_start_matches('*')
                .parse()
                .expect("array");
            let mut cmd = Vec::new();
            for _ in 0..n {
                let mut h = String::new();
                self.reader.read_line(&mut h).expect("bulk");
                let len: usize = h.trim().trim_start_matches('$').parse().expect("len");
                let mut buf = vec![0u8; len + 2];
                self.reader.read_exact(&mut buf).expect("bulk data");
                buf.truncate(len);
                cmd.push(String::from_utf8_lossy(&buf).into_owned());
            }
            if cmd[0].eq_ignore_ascii_case("ping") {
                continue;
            }
            let done = cmd == last;
            out.push(cmd);
            if done {
                return out;
            }
        }
    }
}

/// Replaces absolute millisecond times by a placeholder, checking that the two servers'
/// values agree within `slack` ms.
fn blank_times(a: &mut [Vec<String>], b: &mut [Vec<String>], slack: i64) {
    for (ca, cb) in a.iter_mut().zip(b.iter_mut()) {
        for (x, y) in ca.iter_mut().zip(cb.iter_mut()) {
            if let (Ok(nx), Ok(ny)) = (x.parse::<i64>(), y.parse::<i64>()) {
                if nx > 1_000_000_000_000 && ny > 1_000_000_000_000 {
                    assert!((nx - ny).abs() <= slack, "times {nx} and {ny} differ");
                    *x = "<t>".into();
                    *y = "<t>".into();
                }
            }
        }
    }
}

#[test]
fn propagation_matches_redis_replication_stream() {
    let Some(redis) = RedisServer::start(&["--repl-diskless-sync", "no"]) else {
        return;
    };
    let mut link = ReplicaLink::connect(&redis);
    let kura = Kura::start();
    kura.record_writes();
    let script: &[&[&str]] = &[
        &["SET", "a", "1", "EX", "100"],
        &["SET", "b", "1", "PX", "5000", "GET"],
        &["SET", "b", "2", "PXAT", "4102444800000", "GET"],
        &["set", "b", "3", "exat", "4102444800", "xx", "get"],
        &["set", "b", "3", "exat", "4102444800", "nx", "get"],
        &["pexpireat", "b", "4102444801000", "nx"],
        &["pexpireat", "b", "4102444801000", "gt"],
        &["expireat", "b", "4102444802", "gt"],
        &["pexpire", "b", "1000000", "lt"],
        &["set", "c", "1", "get"],
        &["SET", "c", "1", "XX", "GET", "KEEPTTL"],
        &["SET", "c", "2", "NX"],
        &["SETNX", "n", "1"],
        &["SETEX", "e", "100", "v"],
        &["PSETEX", "f", "100000", "v"],
        &["EXPIRE", "f", "100", "XX"],
        &["expire", "f", "200", "gt"],
        &["PEXPIRE", "f", "300000", "LT"],
        &["PEXPIRE", "f", "50000", "lt"],
        &["EXPIREAT", "f", "4102444800"],
        &["PEXPIREAT", "f", "4102444801000"],
        &["EXPIRE", "f", "-1"],
        &["EXPIRE", "missing", "10"],
        &["PERSIST", "e"],
        &["GETEX", "a", "EX", "50"],
        &["GETEX", "a", "PX", "50000"],
        &["GETEX", "a", "EXAT", "4102444800"],
        &["GETEX", "a", "PERSIST"],
        &["GETEX", "a", "PERSIST"],
        &["GETEX", "a", "PXAT", "4102444800000"],
        &["GETEX", "a"],
        &["GETEX", "a", "PXAT", "1"],
        &["INCRBYFLOAT", "g", "1.5"],
        &["INCRBYFLOAT", "g", "0.1"],
        &["GETSET", "g", "x"],
        &["GETDEL", "g"],
        &["GETDEL", "g"],
        &["INCR", "h"],
        &["DECRBY", "h", "5"],
        &["APPEND", "h", "0"],
        &["SETRANGE", "h", "0", "9"],
        &["SETRANGE", "h", "0", ""],
        &["MSET", "m1", "a", "m2", "b"],
        &["MSETNX", "m1", "a", "m3", "b"],
        &["MSETNX", "m4", "a", "m5", "b"],
        &["DEL", "m1", "nope"],
        &["UNLINK", "m2"],
        &["DEL", "nope"],
        &["RENAME", "m4", "m6"],
        &["RENAMENX", "m6", "m5"],
        &["RENAMENX", "m6", "m7"],
        &["RENAME", "m7", "m7"],
        &["COPY", "m7", "m8"],
        &["COPY", "m7", "m8"],
        &["COPY", "m7", "m8", "REPLACE", "DB", "1"],
        &["MOVE", "m8", "2"],
        &["MOVE", "m7", "2"],
        &["SWAPDB", "0", "1"],
        &["SWAPDB", "3", "3"],
        &["SELECT", "1"],
        &["SET", "in1", "v"],
        &["FLUSHDB"],
        &["FLUSHDB"],
        &["SELECT", "0"],
        &["FLUSHALL", "ASYNC"],
        &["SET", "end", "1"],
    ];
    let mut r = redis.client();
    let mut k = kura.client();
    for cmd in script {
        let want = r.cmd(cmd);
        let got = k.cmd(cmd);
        assert_eq!(got, want, "reply to {cmd:?}");
    }
    let mut from_redis = link.read_until(&["SET", "end", "1"]);
    let mut from_kura = kura_stream(&kura);
    // Generous: the two servers run each command moments apart on a loaded machine.
    blank_times(&mut from_redis, &mut from_kura, 10_000);
    assert_eq!(from_kura, from_redis);
}

#[test]
fn scan_returns_every_key_present_for_the_whole_scan() {
    let kura = Kura::start();
    let mut c = kura.client();
    for chunk in (0..1000).collect::<Vec<_>>().chunks(100) {
        let mut args = vec!["MSET".to_string()];
        for i in chunk {
            args.push(format!("stable:{i}"));
            args.push("v".into());
        }
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        assert_eq!(c.cmd(&a), "+OK\r\n");
    }
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    let mut round = 0;
    loop {
        // Churn between calls: keys come and go, the stable ones must all be returned.
        let tmp = format!("tmp:{round}");
        c.cmd(&["SET", &tmp, "v"]);
        if round > 0 {
            c.cmd(&["DEL", &format!("tmp:{}", round - 1)]);
        }
        round += 1;
        let reply = c.cmd(&["SCAN", &cursor, "COUNT", "20", "MATCH", "stable:*"]);
        let lines: Vec<&str> = reply.split("\r\n").collect();
        cursor = lines[2].to_string();
        for w in lines.windows(2) {
            if w[0].starts_with('$') && w[1].starts_with("stable:") {
                seen.insert(w[1].to_string());
            }
        }
        if cursor == "0" {
            break;
        }
        assert!(round < 10_000, "SCAN does not terminate");
    }
    for i in 0..1000 {
        assert!(seen.contains(&format!("stable:{i}")), "stable:{i} missed");
    }
}

/// Which lookups refresh a key's access time (`OBJECT IDLETIME`), as observed on
/// redis-server 7.0.15: every read and write lookup does, except the `LOOKUP_NOTOUCH` ones
/// (EXISTS, TYPE, the TTL family, OBJECT, SCAN's TYPE filter) and KEYS, which looks nothing
/// up. Each case runs on its own key after the clock moved 5 s.
#[test]
fn reads_and_writes_refresh_the_access_time_like_redis() {
    let kura = Kura::start();
    let mut c = kura.client();
    // (key, command with `K` standing for the key, whether it touches)
    let cases: &[(&str, &[&str], bool)] = &[
        ("l", &["LRANGE", "K", "0", "-1"], true),
        ("l", &["LLEN", "K"], true),
        ("l", &["LINDEX", "K", "0"], true),
        ("l", &["LPOS", "K", "a"], true),
        ("l", &["LPUSH", "K", "z"], true),
        ("l", &["LINSERT", "K", "BEFORE", "nope", "x"], true),
        ("l", &["LREM", "K", "0", "nope"], true),
        ("h", &["HGET", "K", "f"], true),
        ("h", &["HGETALL", "K"], true),
        ("h", &["HLEN", "K"], true),
        ("h", &["HEXISTS", "K", "f"], true),
        ("h", &["HSCAN", "K", "0"], true),
        ("h", &["HRANDFIELD", "K"], true),
        ("h", &["HSET", "K", "f", "2"], true),
        ("h", &["HDEL", "K", "nope"], true),
        ("s", &["GET", "K"], true),
        ("s", &["STRLEN", "K"], true),
        ("s", &["MGET", "K"], true),
        // Fails (not an integer) after its write lookup.
        ("s", &["INCR", "K"], true),
        ("s", &["DUMP", "K"], true),
        ("s", &["TOUCH", "K"], true),
        ("s", &["COPY", "K", "copy"], true),
        ("s", &["EXPIRE", "K", "1000"], true),
        ("s", &["PERSIST", "K"], true),
        ("s", &["EXISTS", "K"], false),
        ("s", &["TYPE", "K"], false),
        ("s", &["TTL", "K"], false),
        ("s", &["PEXPIRETIME", "K"], false),
        ("s", &["OBJECT", "ENCODING", "K"], false),
        ("s", &["MEMORY", "USAGE", "K"], false),
        ("s", &["SCAN", "0", "MATCH", "K", "TYPE", "string"], false),
        ("s", &["KEYS", "K"], false),
    ];
    for (i, (kind, _, _)) in cases.iter().enumerate() {
        let key = format!("{kind}{i}");
        match *kind {
            "l" => c.cmd(&["RPUSH", &key, "a", "b"]),
            "h" => c.cmd(&["HSET", &key, "f", "1"]),
            _ => c.cmd(&["SET", &key, "value"]),
        };
    }
    kura.state.clock.advance(5_000);
    let mut wrong = Vec::new();
    for (i, (kind, cmd, touches)) in cases.iter().enumerate() {
        let key = format!("{kind}{i}");
        let args: Vec<&str> = cmd
            .iter()
            .map(|a| if *a == "K" { key.as_str() } else { *a })
            .collect();
        let r = c.cmd(&args);
        assert!(!r.starts_with('-') || args[0] == "INCR", "{args:?}: {r}");
        let idle = c.cmd(&["OBJECT", "IDLETIME", &key]);
        let want = if *touches { ":0\r\n" } else { ":5\r\n" };
        if idle != want {
            wrong.push(format!("{args:?}: idle {idle:?}, want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// FLUSHDB and FLUSHALL count one change per key removed and nothing more
/// (`rdb_changes_since_last_save` as redis-server 7.0.15 reports it), yet are propagated
/// even when there was nothing to remove (`forceCommandPropagation`).
#[test]
fn flushes_count_removed_keys_and_always_propagate() {
    let steps: &[&[&str]] = &[
        &["FLUSHDB"],
        &["FLUSHALL"],
        &["SET", "a", "1"],
        &["SET", "b", "1"],
        &["FLUSHDB"],
        &["FLUSHDB", "ASYNC"],
        &["SET", "a", "1"],
        &["SELECT", "1"],
        &["RPUSH", "l", "x", "y"],
        &["FLUSHALL"],
        &["FLUSHALL", "SYNC"],
    ];
    let changes = |c: &mut crate::support::Raw| -> String {
        let info = c.cmd(&["INFO", "persistence"]);
        info.lines()
            .find(|l| l.starts_with("rdb_changes_since_last_save:"))
            .unwrap_or_default()
            .to_string()
    };
    let kura = Kura::start();
    kura.record_writes();
    let redis = RedisServer::start(&[]);
    let mut seen = Vec::new();
    for addr in std::iter::once(kura.addr).chain(redis.as_ref().map(|r| r.addr)) {
        let mut c = crate::support::Raw::connect(addr);
        let mut counts = vec![changes(&mut c)];
        for s in steps {
            c.cmd(s);
            counts.push(changes(&mut c));
        }
        seen.push(counts);
    }
    assert_eq!(seen[0][seen[0].len() - 1], "rdb_changes_since_last_save:9");
    if let [k, r] = &seen[..] {
        assert_eq!(k, r, "kura, then redis-server");
    }
    let flushes: Vec<String> = kura_stream(&kura)
        .into_iter()
        .filter(|c| c[0].to_ascii_lowercase().starts_with("flush"))
        .map(|c| c.join(" "))
        .collect();
    assert_eq!(
        flushes,
        [
            "FLUSHDB",
            "FLUSHALL",
            "FLUSHDB",
            "FLUSHDB ASYNC",
            "FLUSHALL",
            "FLUSHALL SYNC"
        ]
    );
}
