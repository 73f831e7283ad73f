//! Crash tests: kill -9 at arbitrary moments. The previous dump always loads after a
//! BGSAVE is cut short, and with `appendfsync always` + `ack_after = "fsynced"` every record
//! whose chunk was acked is there after a restart (counted).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use crate::forward::{ack_of, entry, fluentd_chunk, Fwd};
use crate::support::{KuraProcess, Raw};

/// Starts kura on `dir` (flags after the base ones win).
fn start_on(dir: &Path, extra: &[&str]) -> KuraProcess {
    let d = dir.display().to_string();
    let mut args = vec!["--dir", d.as_str()];
    args.extend_from_slice(extra);
    KuraProcess::start(&args)
}

fn int(reply: &str) -> u64 {
    reply.trim().trim_start_matches(':').parse().unwrap()
}

fn kill9(k: &mut KuraProcess) {
    k.signal("KILL");
    assert!(k.wait_exit(Duration::from_secs(10)).is_some());
}

#[test]
fn a_bgsave_killed_at_any_moment_leaves_the_previous_dump_loadable() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::thread_rng();
    // Sizes of the datasets that were completely saved at some point.
    let mut saved: Vec<u64> = Vec::new();
    for round in 0..6u64 {
        let mut k = start_on(dir.path(), &[]);
        let mut c: Raw = k.client();
        let have = int(&c.cmd(&["DBSIZE"]));
        if round > 0 {
            assert!(
                saved.contains(&have),
                "round {round}: loaded {have} keys, saved {saved:?}"
            );
        }
        // Enough data that the save takes a while, different each round.
        for i in 0..20 {
            let key = format!("r{round}-{i}");
            let mut args: Vec<String> = vec!["RPUSH".into(), key];
            args.extend((0..2000).map(|j| {
                format!(
                    "{{\"round\":{round},\"j\":{j},\"pad\":\"{}\"}}",
                    "p".repeat(80)
                )
            }));
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            c.cmd(&refs);
        }
        let now = int(&c.cmd(&["DBSIZE"]));
        if round == 0 {
            assert_eq!(c.cmd(&["SAVE"]), "+OK\r\n");
            saved.push(now);
            kill9(&mut k);
            continue;
        }
        assert_eq!(c.cmd(&["BGSAVE"]), "+Background saving started\r\n");
        // Whether it completes or not, both states are valid outcomes.
        saved.push(now);
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..150)));
        kill9(&mut k);
    }
    let k = start_on(dir.path(), &[]);
    let have = int(&k.client().cmd(&["DBSIZE"]));
    assert!(saved.contains(&have), "{have} not in {saved:?}");
}

/// The forward address from kura's log.
fn forward_addr(k: &KuraProcess) -> SocketAddr {
    let log = k.log();
    let line = log
        .lines()
        .find(|l| l.contains("forward door listening"))
        .unwrap_or_else(|| panic!("no forward address in {log}"));
    let at = line.find("addr=").unwrap() + 5;
    line[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn every_acked_record_survives_kill_9_with_appendfsync_always() {
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--forward.ack_after",
        "fsynced",
    ];
    let mut k = start_on(dir.path(), &flags);
    let addr = forward_addr(&k);
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let per_chunk = 200u64;
    let senders: Vec<_> = (0..3u8)
        .map(|conn| {
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut f = Fwd::connect(addr);
                let mut entries = Vec::new();
                for i in 0..per_chunk {
                    entries.extend(entry(1_700_000_000, 0, &[("n", &i.to_string())]));
                }
                let mut in_flight = std::collections::VecDeque::new();
                for n in 0u32.. {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let id = format!("c{conn}-{n:020}\n").into_bytes();
                    let chunk = fluentd_chunk("crash", &entries, per_chunk, "text", Some(&id));
                    if std::io::Write::write_all(&mut f.s, &chunk).is_err() {
                        break;
                    }
                    in_flight.push_back(id);
                    if in_flight.len() >= 4 {
                        let id = in_flight.pop_front().unwrap();
                        let want = ack_of(&id);
                        let mut got = vec![0u8; want.len()];
                        if std::io::Read::read_exact(&mut f.s, &mut got).is_err() {
                            break;
                        }
                        assert_eq!(got, want);
                        acked.fetch_add(per_chunk, Ordering::AcqRel);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    kill9(&mut k);
    stop.store(true, Ordering::Release);
    for s in senders {
        s.join().unwrap();
    }
    let acked = acked.load(Ordering::Acquire);
    assert!(acked > 0, "nothing was acked before the kill");
    let k = start_on(dir.path(), &flags);
    let stored = int(&k.client().cmd(&["LLEN", "crash"]));
    assert!(
        stored >= acked,
        "{acked} records acked, {stored} after restart: {}",
        k.log()
    );
    // Only whole chunks: a chunk is one MULTI/EXEC in the AOF.
    assert_eq!(stored % per_chunk, 0, "{stored}");
}

/// With `appendfsync everysec` (the default) a reply still means the write is in the file:
/// killing the process (not the machine) loses nothing that was answered.
#[test]
fn answered_writes_survive_kill_9_with_everysec() {
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--appendonly", "yes"];
    let mut k = start_on(dir.path(), &flags);
    let mut c = k.client();
    for i in 0..3000 {
        c.cmd(&["INCR", "counter"]);
        c.cmd(&["RPUSH", "log", &format!("record {i}")]);
        if i % 1000 == 999 {
            // A rewrite in the middle: base + new increment must carry everything.
            c.cmd(&["BGREWRITEAOF"]);
        }
    }
    c.cmd(&["SELECT", "5"]);
    c.cmd(&["HSET", "h", "f", "v"]);
    kill9(&mut k);
    let k = start_on(dir.path(), &flags);
    let mut c = k.client();
    assert_eq!(c.cmd(&["GET", "counter"]), "$4\r\n3000\r\n");
    assert_eq!(c.cmd(&["LLEN", "log"]), ":3000\r\n");
    assert_eq!(c.cmd(&["LINDEX", "log", "-1"]), "$11\r\nrecord 2999\r\n");
    c.cmd(&["SELECT", "5"]);
    assert_eq!(c.cmd(&["HGET", "h", "f"]), "$1\r\nv\r\n");
}
