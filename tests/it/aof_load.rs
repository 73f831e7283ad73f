//! AOF directories written by a real redis-server 7.0 load into kura with identical content
//! (`appendonly yes`): a multi-part AOF with an RDB base, one with an AOF base
//! (`aof-use-rdb-preamble no`), and a 6.2 single-file AOF kura moves into the directory.
//! Every key of every database is compared: type, value and absolute expiry (PEXPIRETIME).
//!
//! Then the damaged files, against what redis-server 7.0.15 itself does with the same bytes:
//! a truncated last command is cut away (same size as Redis leaves it, same log lines) or,
//! with `aof-load-truncated no`, refuses the start; a bad byte, an unknown command or a
//! missing file refuse the start and leave every file byte-identical; an unclosed MULTI at
//! the end is reverted. redis-check-aof accepts the fixtures kura loaded.

// Helpers here run only under tests: a failed unwrap is a test failure at its line.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{bulks, call, need_program, ok, Kura, KuraProcess, Raw, RedisServer, Resp};

// ---- A SMALL RESP READER ----

// ---- THE DATASET, AS EITHER SERVER SHOWS IT ----

/// A key's type and value (hash fields sorted) and its absolute expiry.
type Keyspace = BTreeMap<(usize, Vec<u8>), (String, Vec<Vec<u8>>, Option<i64>)>;

/// Reads every key of every database through the protocol: the same walk on both servers.
fn dataset(c: &mut Raw) -> Keyspace {
    let mut out = Keyspace::new();
    for db in 0..16 {
        ok(c, &["SELECT", &db.to_string()]);
        for key in bulks(call(c, &[b"KEYS", b"*"])) {
            let ty = match call(c, &[b"TYPE", &key]) {
                Resp::Simple(t) => t,
                other => panic!("TYPE: {other:?}"),
            };
            let value = match ty.as_str() {
                "string" => match call(c, &[b"GET", &key]) {
                    Resp::Bulk(Some(v)) => vec![v],
                    other => panic!("GET: {other:?}"),
                },
                "list" => bulks(call(c, &[b"LRANGE", &key, b"0", b"-1"])),
                "hash" => {
                    let flat = bulks(call(c, &[b"HGETALL", &key]));
                    let mut pairs: Vec<Vec<u8>> = flat.chunks(2).map(|p| p.concat()).collect();
                    pairs.sort();
                    pairs
                }
                other => panic!("unexpected type {other}"),
            };
            let expire = match call(c, &[b"PEXPIRETIME", &key]) {
                Resp::Int(-1) => None,
                Resp::Int(t) if t >= 0 => Some(t),
                other => panic!("PEXPIRETIME: {other:?}"),
            };
            out.insert((db, key), (ty, value, expire));
        }
    }
    ok(c, &["SELECT", "0"]);
    out
}

fn info_field(c: &mut Raw, section: &str, field: &str) -> String {
    let info = c.cmd(&["INFO", section]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("INFO {section} has no {field}"))
        .trim()
        .to_string()
}

/// Writes strings of every encoding, lists of every node shape, both hash encodings,
/// expiries, several databases and a transaction.
fn before_rewrite(c: &mut Raw) {
    ok(c, &["SET", "int", "12345"]);
    ok(c, &["SET", "short", "hello"]);
    ok(c, &["SET", "long", &format!("{}b", "a".repeat(1000))]);
    assert!(matches!(
        call(c, &[b"SET", b"bin", b"\x00\xff\r\n"]),
        Resp::Simple(_)
    ));
    ok(c, &["RPUSH", "small", "a", "b", "c"]);
    for batch in (0..20_000).collect::<Vec<_>>().chunks(500) {
        let items: Vec<String> = batch.iter().map(|i| format!("item-{i}")).collect();
        let mut args = vec!["RPUSH", "big"];
        args.extend(items.iter().map(|s| s.as_str()));
        ok(c, &args);
    }
    ok(c, &["RPUSH", "plain", "x", &"p".repeat(9000), "y"]);
    ok(c, &["HSET", "hs", "f1", "v1", "f2", "v2"]);
    for i in 0..300 {
        ok(c, &["HSET", "hl", &format!("f{i}"), &format!("v{i}")]);
    }
    ok(c, &["HSET", "hl", &"k".repeat(100), "long field"]);
    ok(c, &["SET", "ex", "v", "EX", "100000"]);
    ok(c, &["PEXPIRE", "big", "500000000"]);
    ok(c, &["EXPIREAT", "hs", "4102444800"]);
    ok(c, &["SET", "gone", "soon", "PX", "1"]);
    ok(c, &["SELECT", "3"]);
    ok(c, &["SET", "d3", "x"]);
    ok(c, &["RPUSH", "l3", "1", "2", "3"]);
    ok(c, &["SELECT", "15"]);
    ok(c, &["HSET", "h15", "a", "b"]);
    ok(c, &["SELECT", "0"]);
    ok(c, &["MULTI"]);
    ok(c, &["INCR", "counter"]);
    ok(c, &["RPUSH", "small", "d"]);
    ok(c, &["HSET", "hs", "f3", "v3"]);
    ok(c, &["EXEC"]);
}

/// Writes what lands in the incr file after the rewrite: every kind of normalised write.
fn after_rewrite(c: &mut Raw) {
    ok(c, &["SET", "after", "1"]);
    ok(c, &["APPEND", "after", "2"]);
    ok(c, &["INCRBYFLOAT", "fl", "1.5"]);
    ok(c, &["LPOP", "big"]);
    ok(c, &["RPOP", "big", "2"]);
    ok(c, &["LTRIM", "small", "0", "2"]);
    ok(c, &["LSET", "small", "0", "z"]);
    ok(c, &["LINSERT", "small", "BEFORE", "z", "w"]);
    ok(c, &["LMOVE", "small", "moved", "LEFT", "RIGHT"]);
    ok(c, &["HDEL", "hl", "f0"]);
    ok(c, &["HINCRBY", "hs", "n", "5"]);
    ok(c, &["DEL", "short"]);
    ok(c, &["SETEX", "sx", "100000", "v"]);
    ok(c, &["GETEX", "int", "EX", "200000"]);
    ok(c, &["SET", "ex", "v2", "KEEPTTL"]);
    ok(c, &["PERSIST", "big"]);
    ok(c, &["RENAME", "long", "long2"]);
    ok(c, &["SELECT", "3"]);
    ok(c, &["EXPIRE", "d3", "100000"]);
    ok(c, &["MULTI"]);
    ok(c, &["RPUSH", "l3", "4"]);
    ok(c, &["SELECT", "7"]);
    ok(c, &["SET", "d7", "in-multi"]);
    ok(c, &["EXEC"]);
    ok(c, &["SELECT", "0"]);
}

// ---- FIXTURES FROM A REAL REDIS ----

/// A copy of a redis-server's AOF directory after it shut down, and the data it held.
struct Fixture {
    /// The copy's data dir (holds `appendonlydir/`, or the 6.2 `appendonly.aof`).
    dir: tempfile::TempDir,
    /// What redis-server held just before SHUTDOWN.
    expected: Keyspace,
}

impl Fixture {
    fn aof_dir(&self) -> PathBuf {
        self.dir.path().join("appendonlydir")
    }

    fn manifest(&self) -> String {
        std::fs::read_to_string(self.aof_dir().join("appendonly.aof.manifest")).unwrap()
    }

    /// Returns the name of the last incr file in the manifest.
    fn last_incr(&self) -> String {
        let m = self.manifest();
        let line = m.lines().rfind(|l| l.ends_with("type i")).expect("an incr");
        line.split(' ').nth(1).expect("name").to_string()
    }

    fn copy(&self) -> tempfile::TempDir {
        let to = tempfile::tempdir().unwrap();
        copy_tree(self.dir.path(), to.path());
        to
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &target);
        } else {
            std::fs::copy(&p, &target).unwrap();
        }
    }
}

/// Every file under `dir` with its bytes, to prove a refused start touched nothing.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(tree(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

/// Runs redis-server with `--appendonly yes` (and `extra`), writes the dataset with a
/// BGREWRITEAOF in the middle, shuts it down and keeps a copy of its directory.
fn redis_fixture(extra: &[&str]) -> Option<Fixture> {
    let work = tempfile::tempdir().unwrap();
    let d = work.path().to_str().expect("utf-8 path").to_string();
    let mut args = vec!["--dir", &d, "--appendonly", "yes"];
    args.extend_from_slice(extra);
    let server = RedisServer::start(&args)?;
    let mut c = server.client();
    before_rewrite(&mut c);
    ok(&mut c, &["BGREWRITEAOF"]);
    let rewritten = crate::support::wait_until(Duration::from_secs(30), || {
        info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
            && info_field(&mut c, "persistence", "aof_rewrite_scheduled") == "0"
            && std::fs::read_to_string(work.path().join("appendonlydir/appendonly.aof.manifest"))
                .is_ok_and(|m| m.contains("seq 2 type b"))
    });
    assert!(rewritten, "BGREWRITEAOF did not finish");
    after_rewrite(&mut c);
    std::thread::sleep(Duration::from_millis(5));
    let expected = dataset(&mut c);
    // The fixture is what it claims: every shape present, the expired key gone.
    assert!(!expected.contains_key(&(0, b"gone".to_vec())));
    assert_eq!(expected[&(0, b"big".to_vec())].1.len(), 19_997);
    assert_eq!(expected[&(0, b"plain".to_vec())].1[1].len(), 9000);
    assert_eq!(expected[&(0, b"hl".to_vec())].1.len(), 300);
    assert!(expected[&(0, b"ex".to_vec())].2.is_some());
    assert!(expected[&(3, b"d3".to_vec())].2.is_some());
    assert!(expected.contains_key(&(7, b"d7".to_vec())));
    assert!(expected.contains_key(&(15, b"h15".to_vec())));
    shutdown(&mut c, &server);
    let dir = tempfile::tempdir().unwrap();
    copy_tree(
        &work.path().join("appendonlydir"),
        &dir.path().join("appendonlydir"),
    );
    Some(Fixture { dir, expected })
}

/// SHUTDOWN, then waits until the port is closed (the AOF is flushed and fsynced by then).
fn shutdown(c: &mut Raw, server: &RedisServer) {
    c.send(&[b"SHUTDOWN"]);
    let _ = c.try_read_reply();
    let closed = crate::support::wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(server.addr).is_err()
    });
    assert!(closed, "redis-server did not exit");
}

/// Starts kura in-process on `dir` with `appendonly yes` and returns what it holds.
fn kura_dataset(dir: &Path, tweak: impl FnOnce(&mut kura::Config)) -> Keyspace {
    let dir = dir.to_path_buf();
    let kura = Kura::start_with(move |c| {
        c.dir = dir;
        c.appendonly = true;
        tweak(c);
    });
    let mut c = kura.client();
    dataset(&mut c)
}

/// A kura binary that was expected not to start: its exit status and everything it printed.
fn kura_refuses(dir: &Path, extra: &[&str]) -> String {
    let mut args = KuraProcess::base_args(0, dir);
    args.extend(["--appendonly".to_string(), "yes".to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut child = KuraProcess::spawn(&args);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kura did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(!status.success(), "kura started: {out}");
    assert!(!out.contains("ready to accept connections"), "{out}");
    out
}

/// Starts redis-server on `dir` (`appendonly yes`) and returns its log once it is ready, or
/// its log as the error when it refused to start.
fn redis_loads(dir: &Path, extra: &[&str]) -> Result<String, String> {
    let bin = need_program("redis-server").expect("checked by the caller");
    let log = dir.join("redis.log");
    let port = crate::support::free_port();
    let mut child = Command::new(bin)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "yes", "--dir"])
        .arg(dir)
        .arg("--logfile")
        .arg(&log)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(_status) = child.try_wait().expect("wait") {
            return Err(read_log());
        }
        let text = read_log();
        if text.contains("Ready to accept connections") {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&log);
            return Ok(text);
        }
        assert!(
            Instant::now() < deadline,
            "redis-server neither started nor exited"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---- LOADING WHAT REDIS WROTE ----

#[test]
fn multipart_aof_with_rdb_base_loads_identically() {
    let Some(fx) = redis_fixture(&[]) else { return };
    assert!(fx
        .manifest()
        .contains("appendonly.aof.2.base.rdb seq 2 type b"));
    let copy = fx.copy();
    assert_eq!(kura_dataset(copy.path(), |_| {}), fx.expected);
    // (f) The directory kura loaded is one redis-check-aof accepts, unchanged by the load.
    assert_eq!(
        tree(copy.path()),
        tree(fx.dir.path())
            .into_iter()
            .map(|(p, b)| { (copy.path().join(p.strip_prefix(fx.dir.path()).unwrap()), b) })
            .collect::<Vec<_>>()
    );
    check_aof(&copy.path().join("appendonlydir/appendonly.aof.manifest"));
}

#[test]
fn multipart_aof_with_aof_base_loads_identically() {
    let Some(fx) = redis_fixture(&["--aof-use-rdb-preamble", "no"]) else {
        return;
    };
    assert!(fx
        .manifest()
        .contains("appendonly.aof.2.base.aof seq 2 type b"));
    let copy = fx.copy();
    assert_eq!(kura_dataset(copy.path(), |_| {}), fx.expected);
    check_aof(&copy.path().join("appendonlydir/appendonly.aof.manifest"));
}

#[test]
fn old_single_file_aof_is_upgraded_and_loads_identically() {
    // A 6.2 AOF is an RDB preamble followed by commands: exactly a 7.0 base.rdb followed by
    // its incr file.
    let Some(fx) = redis_fixture(&[]) else { return };
    let base = std::fs::read(fx.aof_dir().join("appendonly.aof.2.base.rdb")).unwrap();
    let incr = std::fs::read(fx.aof_dir().join(fx.last_incr())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let old = [base, incr].concat();
    std::fs::write(dir.path().join("appendonly.aof"), &old).unwrap();
    let redis_dir = tempfile::tempdir().unwrap();
    copy_tree(dir.path(), redis_dir.path());

    let mut p = KuraProcess::start(&["--dir", dir.path().to_str().unwrap(), "--appendonly", "yes"]);
    let mut c = p.client();
    assert_eq!(dataset(&mut c), fx.expected);
    let log = p.log();
    assert!(
        log.contains("Successfully migrated an old-style AOF file (appendonly.aof) into the AOF directory (appendonlydir)."),
        "{log}"
    );
    assert!(
        log.contains("Reading RDB preamble from AOF file..."),
        "{log}"
    );
    assert!(log.contains("Reading the remaining AOF tail..."), "{log}");
    p.signal("TERM");
    p.wait_exit(Duration::from_secs(30));
    // The same layout as redis-server 7.0.15 makes of it.
    assert!(!dir.path().join("appendonly.aof").try_exists().unwrap());
    assert_eq!(
        std::fs::read(dir.path().join("appendonlydir/appendonly.aof")).unwrap(),
        old
    );
    let manifest =
        std::fs::read_to_string(dir.path().join("appendonlydir/appendonly.aof.manifest")).unwrap();
    assert!(
        manifest.starts_with("file appendonly.aof seq 1 type b\n"),
        "{manifest}"
    );
    let redis_log = redis_loads(redis_dir.path(), &[]).expect("redis-server loads it");
    assert!(
        redis_log.contains("Successfully migrated an old-style AOF file (appendonly.aof) into the AOF directory (appendonlydir)."),
        "{redis_log}"
    );
    let redis_manifest = std::fs::read_to_string(
        redis_dir
            .path()
            .join("appendonlydir/appendonly.aof.manifest"),
    )
    .unwrap();
    assert!(redis_manifest.starts_with("file appendonly.aof seq 1 type b\n"));

    // A 6.2 AOF without preamble (plain commands) too.
    let dir = tempfile::tempdir().unwrap();
    let plain = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n";
    std::fs::write(dir.path().join("appendonly.aof"), plain).unwrap();
    let data = kura_dataset(dir.path(), |_| {});
    assert_eq!(data.len(), 1);
    assert_eq!(data[&(0, b"k".to_vec())].1, vec![b"v".to_vec()]);
}

/// (f) redis-check-aof says the AOF is valid.
fn check_aof(manifest: &Path) {
    let Some(bin) = need_program("redis-check-aof") else {
        return;
    };
    let out = Command::new(bin)
        .arg(manifest)
        .output()
        .expect("redis-check-aof");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("All AOF files and manifest are valid"),
        "{text}"
    );
}

// ---- DAMAGED FILES ----

/// Appends `bytes` to the fixture copy's last incr file; returns the copy and the file.
fn damaged(fx: &Fixture, edit: impl FnOnce(&mut Vec<u8>)) -> (tempfile::TempDir, PathBuf) {
    let copy = fx.copy();
    let incr = copy.path().join("appendonlydir").join(fx.last_incr());
    let mut bytes = std::fs::read(&incr).unwrap();
    edit(&mut bytes);
    std::fs::write(&incr, &bytes).unwrap();
    (copy, incr)
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

#[test]
fn truncated_last_command_is_cut_as_redis_cuts_it() {
    let Some(fx) = redis_fixture(&[]) else { return };
    let name = fx.last_incr();
    let valid = size(&fx.aof_dir().join(&name));
    let cut = |b: &mut Vec<u8>| b.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$4\r\nlost\r\n$5\r\nval");
    // (b) aof-load-truncated yes (the default): loads, logs as Redis, cuts the file.
    let (copy, incr) = damaged(&fx, cut);
    let (redis_copy, redis_incr) = damaged(&fx, cut);
    let mut p = KuraProcess::start(&[
        "--dir",
        copy.path().to_str().unwrap(),
        "--appendonly",
        "yes",
    ]);
    let mut c = p.client();
    assert_eq!(dataset(&mut c), fx.expected);
    let log = p.log();
    for line in [
        format!("!!! Warning: short read while loading the AOF file {name}!!!"),
        format!("!!! Truncating the AOF {name} at offset {valid} !!!"),
        format!("AOF {name} loaded anyway because aof-load-truncated is enabled"),
        format!("DB loaded from incr file {name}: "),
        "DB loaded from append only file: ".to_string(),
    ] {
        assert!(log.contains(&line), "missing {line:?} in {log}");
    }
    p.signal("TERM");
    p.wait_exit(Duration::from_secs(30));
    assert_eq!(size(&incr), valid);
    // redis-server 7.0.15 leaves the same file.
    let redis_log = redis_loads(redis_copy.path(), &[]).expect("redis-server loads it");
    assert!(
        redis_log.contains(&format!(
            "!!! Truncating the AOF {name} at offset {valid} !!!"
        )),
        "{redis_log}"
    );
    assert_eq!(size(&redis_incr), valid);

    // With aof-load-truncated no: no start, no change.
    let (copy, _) = damaged(&fx, cut);
    let before = tree(copy.path());
    let out = kura_refuses(copy.path(), &["--aof-load-truncated", "no"]);
    assert!(
        out.contains(&format!("Unexpected end of file reading the append only file {name}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server.")),
        "{out}"
    );
    assert_eq!(tree(copy.path()), before);
}

#[test]
fn bad_byte_unknown_command_and_missing_file_refuse_the_start() {
    let Some(fx) = redis_fixture(&[]) else { return };
    let name = fx.last_incr();
    // (c) A bad byte in the middle of the last incr.
    let (copy, _) = damaged(&fx, |b| {
        let mid = b.len() / 2;
        let star = mid + b[mid..].iter().position(|&x| x == b'*').unwrap();
        b[star] = b'?';
    });
    let before = tree(copy.path());
    let out = kura_refuses(copy.path(), &[]);
    assert!(out.contains(&format!("Bad file format reading the append only file {name}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>")), "{out}");
    assert_eq!(tree(copy.path()), before);
    // redis-server 7.0.15 refuses it too.
    let redis_copy = tempfile::tempdir().unwrap();
    copy_tree(copy.path(), redis_copy.path());
    let redis_log = redis_loads(redis_copy.path(), &[]).expect_err("redis-server refuses it");
    assert!(
        redis_log.contains("Bad file format reading the append only file"),
        "{redis_log}"
    );

    // An unknown command.
    let (copy, _) = damaged(&fx, |b| {
        b.extend_from_slice(b"*2\r\n$5\r\nSADDX\r\n$1\r\nk\r\n")
    });
    let before = tree(copy.path());
    let out = kura_refuses(copy.path(), &[]);
    assert!(
        out.contains(&format!(
            "Unknown command 'SADDX' reading the append only file {name}"
        )),
        "{out}"
    );
    assert_eq!(tree(copy.path()), before);

    // (e) A file the manifest lists is missing.
    let copy = fx.copy();
    std::fs::remove_file(copy.path().join("appendonlydir").join(&name)).unwrap();
    let before = tree(copy.path());
    let out = kura_refuses(copy.path(), &[]);
    assert!(
        out.contains(&format!(
            "Unable to obtain the AOF file {name} length. stat: "
        )),
        "{out}"
    );
    assert_eq!(tree(copy.path()), before);
    let redis_log = redis_loads(copy.path(), &[]).expect_err("redis-server refuses it");
    assert!(
        redis_log.contains(&format!("Unable to obtain the AOF file {name} length")),
        "{redis_log}"
    );
}

#[test]
fn unclosed_multi_at_the_end_is_reverted() {
    let Some(fx) = redis_fixture(&[]) else { return };
    let valid = size(&fx.aof_dir().join(fx.last_incr()));
    // (d) MULTI, a write, then the file ends: the transaction never happened.
    let tail = |b: &mut Vec<u8>| {
        b.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$6\r\nunseen\r\n$1\r\n1\r\n")
    };
    let (copy, incr) = damaged(&fx, tail);
    let (redis_copy, redis_incr) = damaged(&fx, tail);
    let mut p = KuraProcess::start(&[
        "--dir",
        copy.path().to_str().unwrap(),
        "--appendonly",
        "yes",
    ]);
    let mut c = p.client();
    assert_eq!(dataset(&mut c), fx.expected);
    let log = p.log();
    assert!(
        log.contains(&format!(
            "Revert incomplete MULTI/EXEC transaction in AOF file {}",
            fx.last_incr()
        )),
        "{log}"
    );
    p.signal("TERM");
    p.wait_exit(Duration::from_secs(30));
    assert_eq!(size(&incr), valid);
    redis_loads(redis_copy.path(), &[]).expect("redis-server loads it");
    assert_eq!(size(&redis_incr), valid);
}
