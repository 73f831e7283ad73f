//! The AOF's writing side: Redis 7's multi-part layout that redis-check-aof and
//! redis-server accept, replies held until the AOF has the write, group commit, rewrites,
//! turning it on and off at run time, and forward acks held until the fsync.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use kura::config::AppendFsync;

use crate::forward::{chunk_id, entry, fluentd_chunk, Fwd};
use crate::persist::{contents, field, fill};
use crate::support::{need_program, wait_until, Kura, RedisServer};

fn aof_dir(k: &Kura) -> PathBuf {
    k.state.with_config(|c| c.dir.join(&c.appenddirname))
}

fn manifest(k: &Kura) -> String {
    std::fs::read_to_string(aof_dir(k).join("appendonly.aof.manifest")).unwrap()
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs redis-check-aof on the directory's manifest; `None` when the tool is absent.
fn check_aof(dir: &Path) -> Option<String> {
    let tool = need_program("redis-check-aof")?;
    let out = std::process::Command::new(tool)
        .arg(dir.join("appendonly.aof.manifest"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    Some(text)
}

fn wait_rewrite(k: &Kura) {
    let mut c = k.client();
    assert!(wait_until(Duration::from_secs(20), || {
        let info = c.cmd(&["INFO", "persistence"]);
        field(&info, "aof_rewrite_in_progress").as_deref() == Some("0")
            && field(&info, "aof_rewrite_scheduled").as_deref() == Some("0")
    }));
}

/// Copies the AOF directory for a real redis-server 7.0 with `appendonly yes` and checks it
/// holds what kura holds (skipped without redis-server).
fn redis_agrees(dir: &Path, k: &Kura, keys: Option<usize>) {
    let copy = tempfile::tempdir().unwrap();
    let their_dir = copy.path().join("appendonlydir");
    std::fs::create_dir(&their_dir).unwrap();
    for f in files(dir) {
        std::fs::copy(dir.join(&f), their_dir.join(&f)).unwrap();
    }
    let Some(redis) = RedisServer::start(&[
        "--dir",
        &copy.path().display().to_string(),
        "--appendonly",
        "yes",
    ]) else {
        return;
    };
    let theirs = contents(redis.client());
    if let Some(n) = keys {
        assert_eq!(theirs.len(), n, "{theirs:?}");
    }
    assert_eq!(theirs, contents(k.client()));
}

fn with_aof(policy: AppendFsync) -> Kura {
    Kura::start_with(|c| {
        c.appendonly = true;
        c.appendfsync = policy;
    })
}

#[test]
fn start_rewrite_and_redis_server_loads_the_directory() {
    let k = with_aof(AppendFsync::Everysec);
    let dir = aof_dir(&k);
    assert_eq!(
        manifest(&k),
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    fill(&k);
    let text = check_aof(&dir);
    if let Some(t) = &text {
        assert!(t.contains("All AOF files and manifest are valid"), "{t}");
    }
    let mut c = k.client();
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]),
        "+Background append only file rewriting started\r\n"
    );
    wait_rewrite(&k);
    assert_eq!(
        manifest(&k),
        "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
    );
    // The old base and increment are gone; the new increment holds what came after.
    assert_eq!(
        files(&dir),
        [
            "appendonly.aof.2.base.rdb",
            "appendonly.aof.2.incr.aof",
            "appendonly.aof.manifest"
        ]
    );
    c.cmd(&["SELECT", "3"]);
    c.cmd(&["HSET", "after", "f", "v"]);
    c.cmd(&["SELECT", "0"]);
    c.cmd(&["DEL", "s"]);
    let info = c.cmd(&["INFO", "persistence"]);
    assert_eq!(field(&info, "aof_rewrites").as_deref(), Some("1"));
    assert_eq!(
        field(&info, "aof_last_bgrewrite_status").as_deref(),
        Some("ok")
    );
    let base = std::fs::metadata(dir.join("appendonly.aof.2.base.rdb"))
        .unwrap()
        .len();
    let incr = std::fs::metadata(dir.join("appendonly.aof.2.incr.aof"))
        .unwrap()
        .len();
    assert_eq!(
        field(&info, "aof_current_size"),
        Some((base + incr).to_string())
    );
    assert_eq!(field(&info, "aof_base_size"), Some(base.to_string()));
    if check_aof(&dir).is_some() {
        redis_agrees(&dir, &k, Some(9));
    }
}

/// The last command in the increment on disk, right after its reply: replies wait until
/// the AOF has the write (fsynced too under `always`).
#[test]
fn a_reply_means_the_write_is_in_the_file() {
    for policy in [AppendFsync::Always, AppendFsync::Everysec, AppendFsync::No] {
        let k = with_aof(policy);
        let incr = aof_dir(&k).join("appendonly.aof.1.incr.aof");
        let mut c = k.client();
        for i in 0..50 {
            let v = format!("value-{i}");
            assert_eq!(c.cmd(&["SET", "k", &v]), "+OK\r\n");
            let on_disk = std::fs::read(&incr).unwrap();
            let tail = format!("$1\r\nk\r\n${}\r\n{v}\r\n", v.len());
            assert!(on_disk.ends_with(tail.as_bytes()), "{policy:?} {i}");
            if policy == AppendFsync::Always {
                assert_eq!(k.state.aof.fsynced(), k.state.aof.written(), "{i}");
            }
        }
        let offset = k.state.engine.lock().stream.aof_offset().unwrap();
        assert_eq!(k.state.aof.written(), offset);
    }
}

/// With `appendfsync always`, concurrent clients share fsyncs instead of each paying one.
#[test]
fn concurrent_writers_share_fsyncs() {
    let k = with_aof(AppendFsync::Always);
    let before = k
        .state
        .aof
        .shared
        .status
        .fsyncs
        .load(std::sync::atomic::Ordering::Relaxed);
    let (clients, each) = (16, 100);
    std::thread::scope(|s| {
        for t in 0..clients {
            let mut c = k.client();
            s.spawn(move || {
                for i in 0..each {
                    assert_eq!(
                        c.cmd(&["RPUSH", &format!("l{t}"), &i.to_string()]),
                        format!(":{}\r\n", i + 1)
                    );
                }
            });
        }
    });
    let fsyncs = k
        .state
        .aof
        .shared
        .status
        .fsyncs
        .load(std::sync::atomic::Ordering::Relaxed)
        - before;
    assert!(fsyncs > 0);
    assert!(
        fsyncs < clients * each,
        "{fsyncs} fsyncs for {} writes",
        clients * each
    );
    let incr = std::fs::read(aof_dir(&k).join("appendonly.aof.1.incr.aof")).unwrap();
    let pushes = incr.windows(9).filter(|w| w == b"$5\r\nRPUSH").count();
    assert_eq!(pushes as u64, clients * each);
}

#[test]
fn appendonly_turned_on_and_off_at_run_time() {
    let k = Kura::start();
    fill(&k);
    let mut c = k.client();
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]), "+OK\r\n");
    c.cmd(&["SET", "during", "1"]);
    wait_rewrite(&k);
    c.cmd(&["SET", "after", "2"]);
    let info = c.cmd(&["INFO", "persistence"]);
    assert_eq!(field(&info, "aof_enabled").as_deref(), Some("1"));
    let dir = aof_dir(&k);
    let m = manifest(&k);
    assert!(
        m.starts_with("file appendonly.aof.1.base.rdb seq 1 type b\n"),
        "{m}"
    );
    assert!(m.ends_with("type i\n"), "{m}");
    assert!(
        !files(&dir).iter().any(|f| f.starts_with("temp-")),
        "{:?}",
        files(&dir)
    );
    if check_aof(&dir).is_some() {
        redis_agrees(&dir, &k, None);
    }
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "no"]), "+OK\r\n");
    let sizes = |d: &Path| -> u64 {
        files(d)
            .iter()
            .map(|f| std::fs::metadata(d.join(f)).unwrap().len())
            .sum()
    };
    let frozen = sizes(&dir);
    c.cmd(&["SET", "not-logged", "x"]);
    assert_eq!(sizes(&dir), frozen);
    let info = c.cmd(&["INFO", "persistence"]);
    assert_eq!(field(&info, "aof_enabled").as_deref(), Some("0"));
    assert_eq!(field(&info, "aof_current_size"), None);
}

#[test]
fn bgrewriteaof_without_the_aof_leaves_a_base() {
    let k = Kura::start();
    fill(&k);
    let mut c = k.client();
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]),
        "+Background append only file rewriting started\r\n"
    );
    wait_rewrite(&k);
    assert_eq!(
        manifest(&k),
        "file appendonly.aof.1.base.rdb seq 1 type b\n"
    );
}

#[test]
fn base_as_commands_without_the_rdb_preamble() {
    let k = Kura::start_with(|c| {
        c.appendonly = true;
        c.aof_use_rdb_preamble = false;
    });
    fill(&k);
    let mut c = k.client();
    c.cmd(&["BGREWRITEAOF"]);
    wait_rewrite(&k);
    assert_eq!(
        manifest(&k),
        "file appendonly.aof.2.base.aof seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
    );
    let dir = aof_dir(&k);
    let base = std::fs::read(dir.join("appendonly.aof.2.base.aof")).unwrap();
    assert!(base.starts_with(b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n"));
    if check_aof(&dir).is_some() {
        redis_agrees(&dir, &k, None);
    }
}

/// `ack_after = "fsynced"`: the ack leaves only once the AOF is fsynced past the chunk.
#[test]
fn forward_acks_wait_for_the_fsync() {
    for policy in [AppendFsync::Everysec, AppendFsync::Always] {
        let k = Kura::start_with(|c| {
            c.appendonly = true;
            c.appendfsync = policy;
            c.forward.ack_after = kura::config::AckAfter::Fsynced;
        });
        let mut f = Fwd::connect(k.forward);
        for n in 0..3u8 {
            let id = chunk_id(n);
            let e = entry(1_700_000_000, 0, &[("msg", "hello")]);
            f.send(&fluentd_chunk("app.log", &e, 1, "text", Some(&id)));
            f.expect_ack(&id);
            let stored = k.state.engine.lock().stream.aof_offset().unwrap();
            assert!(
                k.state.aof.fsynced() >= stored,
                "{policy:?}: acked at fsynced {} < {stored}",
                k.state.aof.fsynced()
            );
        }
        assert_eq!(k.client().cmd(&["LLEN", "app.log"]), ":3\r\n");
    }
}

/// `auto-aof-rewrite-percentage` / `-min-size`: the cron rewrites once the AOF doubled over
/// its base and passed the minimum, and the log says why as Redis's does.
#[test]
fn the_aof_rewrites_itself_when_it_doubles() {
    let k = with_aof(AppendFsync::Everysec);
    let mut c = k.client();
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "auto-aof-rewrite-min-size", "4096"]),
        "+OK\r\n"
    );
    for i in 0..200 {
        c.cmd(&["SET", "k", &format!("{i:0100}")]);
    }
    assert!(wait_until(Duration::from_secs(10), || {
        field(&c.cmd(&["INFO", "persistence"]), "aof_rewrites").as_deref() == Some("1")
    }));
    wait_rewrite(&k);
    // One key left: the new base is small, the old increments are gone.
    let m = manifest(&k);
    assert!(
        m.starts_with("file appendonly.aof.2.base.rdb seq 2 type b\n"),
        "{m}"
    );
    let info = c.cmd(&["INFO", "persistence"]);
    let size: u64 = field(&info, "aof_current_size").unwrap().parse().unwrap();
    assert!(size < 4096, "{size}");
}
