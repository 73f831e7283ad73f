//! RDB files: SAVE/BGSAVE/LASTSAVE, save points, MISCONF, SHUTDOWN's final save, and files
//! that the real redis-check-rdb and redis-server accept with identical contents.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::support::{need_program, redis_check_rdb, wait_until, Kura, RedisServer};

fn dump_path(k: &Kura) -> std::path::PathBuf {
    k.state.with_config(|c| c.dir.join(&c.dbfilename))
}

pub(crate) fn field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
}

/// Writes a dataset with every encoding kura writes: int/raw/LZF strings, small and
/// multi-node lists, listpack and hashtable hashes, TTLs, two databases.
pub(crate) fn fill(k: &Kura) {
    let mut c = k.client();
    c.cmd(&["SET", "n", "12345"]);
    c.cmd(&["SET", "big", &"a".repeat(100)]);
    c.cmd(&["SET", "s", "hello"]);
    c.cmd(&["SET", "e", "1", "PX", "100000000"]);
    c.cmd(&["RPUSH", "small", "a", "b", "7", "-300", "70000"]);
    for i in 0..3000 {
        c.cmd(&[
            "RPUSH",
            "long",
            &format!("{{\"i\":{i},\"msg\":\"{}\"}}", "x".repeat(i % 50)),
        ]);
    }
    c.cmd(&["HSET", "h", "f", "v", "n", "42"]);
    for i in 0..300 {
        c.cmd(&["HSET", "bigh", &format!("f{i}"), &format!("value {i}")]);
    }
    c.cmd(&["SELECT", "3"]);
    c.cmd(&["RPUSH", "other", "x"]);
}

/// Every key of dbs 0 and 3 with its type, contents and PTTL bucket, via RESP.
pub(crate) fn contents(mut c: crate::support::Raw) -> Vec<String> {
    let mut out = Vec::new();
    for db in ["0", "3"] {
        c.cmd(&["SELECT", db]);
        let keys = c.cmd(&["KEYS", "*"]);
        let mut names: Vec<String> = keys
            .split("\r\n")
            .skip(1)
            .filter(|l| !l.starts_with('$') && !l.is_empty())
            .map(String::from)
            .collect();
        names.sort();
        for k in names {
            let ty = c.cmd(&["TYPE", &k]);
            let body = match ty.as_str() {
                "+string\r\n" => c.cmd(&["GET", &k]),
                "+list\r\n" => c.cmd(&["LRANGE", &k, "0", "-1"]),
                _ => {
                    let r = c.cmd(&["HGETALL", &k]);
                    let mut pairs: Vec<&str> = r.split("\r\n").collect();
                    pairs.sort();
                    pairs.join(",")
                }
            };
            let ttl = c.cmd(&["PTTL", &k]);
            let ttl = if ttl.starts_with(":-") {
                ttl
            } else {
                ":set".into()
            };
            out.push(format!("{db} {k} {ty} {ttl} {body}"));
        }
    }
    out
}

#[test]
fn save_writes_a_file_redis_check_rdb_and_redis_server_accept() {
    let k = Kura::start();
    fill(&k);
    let mut c = k.client();
    let before = c.cmd(&["LASTSAVE"]);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(c.cmd(&["SAVE"]), "+OK\r\n");
    assert_ne!(c.cmd(&["LASTSAVE"]), before);
    let info = c.cmd(&["INFO", "persistence"]);
    assert_eq!(
        field(&info, "rdb_changes_since_last_save").as_deref(),
        Some("0")
    );
    assert_eq!(field(&info, "rdb_saves").as_deref(), Some("1"));
    let path = dump_path(&k);
    assert!(path.try_exists().unwrap());
    let Some(text) = redis_check_rdb(&path) else {
        return;
    };
    assert!(text.contains("Checksum OK"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&path, dir.path().join("dump.rdb")).unwrap();
    let Some(redis) = RedisServer::start(&["--dir", &dir.path().display().to_string()]) else {
        return;
    };
    let theirs = contents(redis.client());
    assert_eq!(theirs.len(), 9, "{theirs:?}");
    assert_eq!(theirs, contents(k.client()));
}

#[test]
fn bgsave_saves_in_the_background_and_reports_status() {
    let k = Kura::start();
    fill(&k);
    let mut c = k.client();
    assert_eq!(c.cmd(&["BGSAVE"]), "+Background saving started\r\n");
    assert!(wait_until(Duration::from_secs(10), || {
        field(&c.cmd(&["INFO", "persistence"]), "rdb_bgsave_in_progress").as_deref() == Some("0")
    }));
    let info = c.cmd(&["INFO", "persistence"]);
    assert_eq!(
        field(&info, "rdb_last_bgsave_status").as_deref(),
        Some("ok")
    );
    assert_eq!(
        field(&info, "rdb_changes_since_last_save").as_deref(),
        Some("0")
    );
    assert_ne!(
        field(&info, "rdb_last_bgsave_time_sec").as_deref(),
        Some("-1")
    );
    assert!(dump_path(&k).try_exists().unwrap());
    assert_eq!(c.cmd(&["BGSAVE", "now"]), "-ERR syntax error\r\n");
    // Inside MULTI it is scheduled and the cron starts it.
    std::fs::remove_file(dump_path(&k)).unwrap();
    c.cmd(&["MULTI"]);
    c.cmd(&["BGSAVE"]);
    assert_eq!(c.cmd(&["EXEC"]), "*1\r\n+Background saving scheduled\r\n");
    assert!(wait_until(Duration::from_secs(10), || dump_path(&k)
        .try_exists()
        .unwrap()));
}

#[test]
fn save_points_trigger_a_background_save() {
    let k = Kura::start_with(|c| c.save = vec![(1, 2)]);
    let mut c = k.client();
    c.cmd(&["RPUSH", "l", "a"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !dump_path(&k).try_exists().unwrap(),
        "one change is below the save point"
    );
    c.cmd(&["RPUSH", "l", "b"]);
    assert!(wait_until(Duration::from_secs(10), || dump_path(&k)
        .try_exists()
        .unwrap()));
}

#[test]
fn a_failed_bgsave_turns_writes_and_ping_into_misconf() {
    let k = Kura::start_with(|c| {
        c.save = vec![(3600, 1)];
        c.dbfilename = "dump.rdb".into();
    });
    // A dir that is a file: the save cannot create its temp file (root ignores modes).
    let good_dir = k.state.with_config(|c| c.dir.clone());
    let blocker = k.state.with_config(|c| c.dir.join("not-a-dir"));
    std::fs::write(&blocker, b"x").unwrap();
    k.state.config.write().unwrap().dir = blocker;
    let mut c = k.client();
    c.cmd(&["SET", "a", "1"]);
    assert_eq!(c.cmd(&["BGSAVE"]), "+Background saving started\r\n");
    assert!(wait_until(Duration::from_secs(10), || {
        field(&c.cmd(&["INFO", "persistence"]), "rdb_last_bgsave_status").as_deref() == Some("err")
    }));
    let misconf = c.cmd(&["SET", "a", "2"]);
    assert!(
        misconf.starts_with("-MISCONF Redis is configured to save RDB snapshots"),
        "{misconf}"
    );
    assert!(c.cmd(&["PING"]).starts_with("-MISCONF"));
    assert_eq!(c.cmd(&["GET", "a"]), "$1\r\n1\r\n", "reads still work");
    assert_eq!(
        c.cmd(&["SAVE"]),
        "-ERR\r\n",
        "a failed SAVE answers a bare -ERR"
    );
    // The forward door holds chunks meanwhile: no ack until saving works again.
    use std::io::{Read, Write};
    let mut f = std::net::TcpStream::connect(k.forward).unwrap();
    // ["t", 1, {"m": "x"}, {"chunk": "c"}]
    f.write_all(b"\x94\xa1t\x01\x81\xa1m\xa1x\x81\xa5chunk\xa1c")
        .unwrap();
    f.set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let mut ack = [0u8; 7];
    assert!(f.read_exact(&mut ack).is_err(), "no ack while saves fail");
    k.state.config.write().unwrap().dir = good_dir;
    assert_eq!(c.cmd(&["BGSAVE"]), "+Background saving started\r\n");
    f.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    f.read_exact(&mut ack).unwrap();
    assert_eq!(&ack, b"\x81\xa3ack\xa1c");
    assert_eq!(c.cmd(&["LLEN", "t"]), ":1\r\n");
}

#[test]
fn sigterm_and_shutdown_save_when_save_points_are_set() {
    use crate::support::KuraProcess;
    // SIGTERM with save points: the final save happens before exit.
    let mut p = KuraProcess::start(&["--save", "3600 1"]);
    p.client().cmd(&["RPUSH", "l", "a", "b"]);
    p.signal("TERM");
    assert!(p
        .wait_exit(Duration::from_secs(30))
        .is_some_and(|s| s.success()));
    assert!(p.dir.path().join("dump.rdb").try_exists().unwrap());
    // SHUTDOWN NOSAVE: no file, even with save points.
    let mut p = KuraProcess::start(&["--save", "3600 1"]);
    let mut c = p.client();
    c.cmd(&["SET", "k", "v"]);
    c.send(&[b"SHUTDOWN", b"NOSAVE"]);
    assert!(
        p.wait_exit(Duration::from_secs(30)).is_some(),
        "{}",
        p.log()
    );
    assert!(!p.dir.path().join("dump.rdb").try_exists().unwrap());
    // SHUTDOWN SAVE without save points: saved.
    let mut p = KuraProcess::start(&[]);
    let mut c = p.client();
    c.cmd(&["SET", "k", "v"]);
    c.send(&[b"SHUTDOWN", b"SAVE"]);
    assert!(
        p.wait_exit(Duration::from_secs(30)).is_some(),
        "{}",
        p.log()
    );
    assert!(p.dir.path().join("dump.rdb").try_exists().unwrap());
}

#[test]
fn shutdown_on_sigterm_and_sigint_choose_the_final_save() {
    use crate::support::KuraProcess;
    // (flags flag, value, signal, save points, dump expected)
    let cases = [
        ("--shutdown-on-sigterm", "nosave", "TERM", "3600 1", false),
        ("--shutdown-on-sigterm", "save now", "TERM", "", true),
        ("--shutdown-on-sigint", "nosave", "INT", "3600 1", false),
        ("--shutdown-on-sigint", "default", "INT", "3600 1", true),
        // Set for the other signal only: this one keeps the default (no save points, no dump).
        ("--shutdown-on-sigint", "save", "TERM", "", false),
    ];
    for (flag, value, signal, points, dumped) in cases {
        let mut p = KuraProcess::start(&["--save", points, flag, value]);
        p.client().cmd(&["RPUSH", "l", "a"]);
        p.signal(signal);
        assert!(
            p.wait_exit(Duration::from_secs(30))
                .is_some_and(|s| s.success()),
            "{flag} {value} SIG{signal}: {}",
            p.log()
        );
        assert_eq!(
            p.dir.path().join("dump.rdb").try_exists().unwrap(),
            dumped,
            "{flag} {value} SIG{signal}: {}",
            p.log()
        );
    }
    // CONFIG SET applies to the next signal.
    let mut p = KuraProcess::start(&["--save", "3600 1"]);
    let mut c = p.client();
    c.cmd(&["RPUSH", "l", "a"]);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "shutdown-on-sigterm", "nosave"]),
        "+OK\r\n"
    );
    p.signal("TERM");
    assert!(
        p.wait_exit(Duration::from_secs(30)).is_some(),
        "{}",
        p.log()
    );
    assert!(!p.dir.path().join("dump.rdb").try_exists().unwrap());
}

#[test]
fn bgsave_is_one_point_in_time_while_writers_keep_going() {
    let k = Kura::start();
    let mut c = k.client();
    for i in 0..20_000 {
        c.send(&[b"RPUSH", b"a", i.to_string().as_bytes()]);
    }
    for _ in 0..20_000 {
        c.read_reply();
    }
    c.cmd(
        &["RPUSH", "b"]
            .iter()
            .copied()
            .chain(std::iter::repeat_n("x", 20_000))
            .collect::<Vec<_>>(),
    );
    // A writer keeps both lists the same length, one transaction at a time.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut w = k.client();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                w.cmd(&["MULTI"]);
                w.cmd(&["RPUSH", "a", "y"]);
                w.cmd(&["RPUSH", "b", "y"]);
                w.cmd(&["EXEC"]);
                n += 1;
            }
            n
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(c.cmd(&["BGSAVE"]), "+Background saving started\r\n");
    assert!(wait_until(Duration::from_secs(20), || {
        field(&c.cmd(&["INFO", "persistence"]), "rdb_bgsave_in_progress").as_deref() == Some("0")
    }));
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let transactions = writer.join().unwrap();
    assert!(transactions > 0, "the writer ran during the save");
    let Some(redis_dir) = need_program("redis-server").map(|_| tempfile::tempdir().unwrap()) else {
        return;
    };
    std::fs::copy(dump_path(&k), redis_dir.path().join("dump.rdb")).unwrap();
    let Some(redis) = RedisServer::start(&["--dir", &redis_dir.path().display().to_string()])
    else {
        return;
    };
    let mut r = redis.client();
    let (a, b) = (r.cmd(&["LLEN", "a"]), r.cmd(&["LLEN", "b"]));
    assert_eq!(a, b, "both lists from the same instant");
    let saved: u64 = a.trim_start_matches(':').trim().parse().unwrap();
    let now: u64 = c
        .cmd(&["LLEN", "a"])
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!(saved >= 20_000 && saved < now, "saved {saved}, now {now}");
}

#[test]
fn a_restart_loads_the_dump_and_a_corrupt_one_stops_the_start() {
    use crate::support::KuraProcess;
    let mut first = KuraProcess::start(&[]);
    let mut c = first.client();
    c.cmd(&["RPUSH", "l", "a", "b", "c"]);
    c.cmd(&["HSET", "h", "f", "v"]);
    c.cmd(&["SET", "t", "v", "EX", "1000"]);
    c.send(&[b"SHUTDOWN", b"SAVE"]);
    assert!(
        first.wait_exit(Duration::from_secs(30)).is_some(),
        "{}",
        first.log()
    );
    let dir = first.dir.path().display().to_string();
    let second = KuraProcess::start(&["--dir", &dir]);
    let mut c = second.client();
    assert_eq!(
        c.cmd(&["LRANGE", "l", "0", "-1"]),
        "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
    );
    assert_eq!(c.cmd(&["HGET", "h", "f"]), "$1\r\nv\r\n");
    assert!(c.cmd(&["TTL", "t"]).starts_with(":99"));
    let info = c.cmd(&["INFO", "persistence"]);
    assert_eq!(
        field(&info, "rdb_last_load_keys_loaded").as_deref(),
        Some("3")
    );
    assert!(second
        .log()
        .contains("Done loading RDB, keys loaded: 3, keys expired: 0."));
    drop(second);
    // Flip one byte: the checksum refuses it, kura does not start, the file is untouched.
    let path = first.dir.path().join("dump.rdb");
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kura"))
        .args(KuraProcess::base_args(0, first.dir.path()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot load") && err.contains("dump.rdb"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the file is left as it was"
    );
}

#[test]
fn kura_starts_on_a_dump_redis_server_wrote() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let mut r = redis.client();
    r.cmd(&["RPUSH", "l", "x", "y"]);
    r.cmd(&["HSET", "h", "a", "1"]);
    r.cmd(&["SELECT", "2"]);
    r.cmd(&["SET", "s", "v"]);
    assert_eq!(r.cmd(&["SAVE"]), "+OK\r\n");
    let dir = r.cmd(&["CONFIG", "GET", "dir"]);
    let dir = dir.split("\r\n").nth(4).unwrap().to_string();
    let k = Kura::start_with(|c| c.dir = dir.clone().into());
    let mut c = k.client();
    assert_eq!(
        c.cmd(&["LRANGE", "l", "0", "-1"]),
        "*2\r\n$1\r\nx\r\n$1\r\ny\r\n"
    );
    assert_eq!(c.cmd(&["HGET", "h", "a"]), "$1\r\n1\r\n");
    c.cmd(&["SELECT", "2"]);
    assert_eq!(c.cmd(&["GET", "s"]), "$1\r\nv\r\n");
}

#[test]
fn while_loading_commands_get_loading_but_info_answers() {
    let k = Kura::start();
    k.state
        .loading
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let mut c = k.client();
    assert_eq!(
        c.cmd(&["GET", "a"]),
        "-LOADING Redis is loading the dataset in memory\r\n"
    );
    let info = c.cmd(&["INFO", "persistence"]);
    assert_eq!(field(&info, "loading").as_deref(), Some("1"));
    k.state
        .loading
        .store(false, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(c.cmd(&["GET", "a"]), "$-1\r\n");
}

#[test]
fn debug_reload_when_enabled() {
    let k = Kura::start();
    let mut c = k.client();
    assert!(c
        .cmd(&["DEBUG", "RELOAD"])
        .starts_with("-ERR DEBUG command not allowed"));
    let k = Kura::start_with(|c| c.enable_debug_command = "local".into());
    let mut c = k.client();
    c.cmd(&["RPUSH", "l", "a", "b"]);
    assert_eq!(c.cmd(&["DEBUG", "RELOAD"]), "+OK\r\n");
    assert_eq!(
        c.cmd(&["LRANGE", "l", "0", "-1"]),
        "*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    // NOSAVE reloads the file as it is: a write since is gone.
    c.cmd(&["RPUSH", "l", "c"]);
    assert_eq!(c.cmd(&["DEBUG", "RELOAD", "NOSAVE"]), "+OK\r\n");
    assert_eq!(c.cmd(&["LLEN", "l"]), ":2\r\n");
    assert_eq!(
        c.cmd(&["DEBUG", "FOO"]),
        "-ERR unknown subcommand or wrong number of arguments for 'FOO'. Try DEBUG HELP.\r\n"
    );
}
