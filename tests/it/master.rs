//! kura as a master (`shared/spec/redis.md` §2.3–2.4): a real redis-server 7.0 as its
//! replica (both framings, writes from both doors, partial resync after `CLIENT KILL TYPE
//! replica`), `redis-cli --rdb` / `--replica`, chains of kura replicas with a promotion, and
//! a replica that stops reading dropped at its output buffer limit.
//!
//! Every test skips (with a printed reason) when redis-server is missing, except under CI.

use std::io::{Read, Write};
use std::time::Duration;

use crate::forward::{entry, fluentd_chunk, Fwd};
use crate::replica::{dump_all, fill, info_field, stream_writes, wait_synced};
use crate::support::{need_program, ok, redis_check_rdb, wait_until, Kura, Raw, RedisServer};

/// Starts an in-process kura master that syncs at once.
fn kura_master(tweak: impl FnOnce(&mut kura::Config)) -> Kura {
    Kura::start_with(|c| {
        c.repl_diskless_sync_delay = 0;
        tweak(c);
    })
}

/// Starts a redis-server replica of `kura`.
fn redis_replica(kura: &Kura) -> Option<RedisServer> {
    let port = kura.addr.port().to_string();
    RedisServer::start(&["--replicaof", "127.0.0.1", &port])
}

fn stat(c: &mut Raw, name: &str) -> u64 {
    info_field(c, "stats", name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Full sync, then writes from the RESP and forward doors; the link killed and resumed.
fn redis_follows_kura(diskless: bool) {
    let kura = kura_master(|c| c.repl_diskless_sync = diskless);
    let mut k = kura.client();
    fill(&mut k, "pre:");
    let Some(redis) = redis_replica(&kura) else {
        return;
    };
    let mut r = redis.client();
    wait_synced(&mut r, &mut k);
    let ours = dump_all(&mut k);
    assert_eq!(ours.len(), 15, "{ours:?}");
    assert_eq!(dump_all(&mut r), ours, "after the full sync");
    assert_eq!(stat(&mut k, "sync_full"), 1);
    stream_writes(&mut k, "pre:");
    fill(&mut k, "post:");
    // The forward door: a chunk lands as one MULTI/EXEC in the stream.
    let mut f = Fwd::connect(kura.forward);
    let e = entry(1441588984, 0, &[("m", "from fluentd")]);
    f.send(&fluentd_chunk("app.log", &e, 1, "text", Some(b"YzE=")));
    f.expect_ack(b"YzE=");
    wait_synced(&mut r, &mut k);
    assert_eq!(dump_all(&mut r), dump_all(&mut k), "after the stream");
    ok(&mut r, &["SELECT", "0"]);
    assert_eq!(r.cmd(&["LLEN", "app.log"]), ":1\r\n");
    // Dropped link: the replica resumes with PSYNC and gets +CONTINUE.
    assert_eq!(k.cmd(&["CLIENT", "KILL", "TYPE", "replica"]), ":1\r\n");
    ok(&mut k, &["SELECT", "0"]);
    ok(&mut k, &["RPUSH", "after-kill", "x"]);
    assert!(wait_until(Duration::from_secs(10), || stat(
        &mut k,
        "sync_partial_ok"
    ) == 1));
    wait_synced(&mut r, &mut k);
    assert_eq!(
        dump_all(&mut r),
        dump_all(&mut k),
        "after the partial resync"
    );
    assert_eq!(stat(&mut k, "sync_full"), 1, "no second full sync");
    let role = k.cmd(&["ROLE"]);
    assert!(role.starts_with("*3\r\n$6\r\nmaster\r\n"), "{role}");
    assert!(role.contains("$9\r\n127.0.0.1\r\n"), "{role}");
}

#[test]
fn redis_follows_kura_with_eof_framing() {
    redis_follows_kura(true);
}

#[test]
fn redis_follows_kura_with_length_framing() {
    redis_follows_kura(false);
}

#[test]
fn redis_cli_rdb_and_replica() {
    let Some(cli) = need_program("redis-cli") else {
        return;
    };
    let kura = kura_master(|_| {});
    let mut k = kura.client();
    fill(&mut k, "x:");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cli.rdb");
    let port = kura.addr.port().to_string();
    let out = std::process::Command::new(&cli)
        .args(["-p", &port, "--rdb"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let Some(text) = redis_check_rdb(&file) else {
        return;
    };
    assert!(text.contains("keys read"), "{text}");
    // --replica: an empty snapshot, then the stream as it happens.
    let mut child = std::process::Command::new(&cli)
        .args(["-p", &port, "--replica"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        info_field(&mut k, "replication", "connected_slaves").as_deref() == Some("1")
            && k.cmd(&["INFO", "replication"]).contains("state=online")
    }));
    ok(&mut k, &["SET", "live", "tail-me"]);
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    let found = wait_until(Duration::from_secs(10), || {
        let mut buf = [0u8; 4096];
        if let Ok(n) = stdout.read(&mut buf) {
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        seen.contains("\"SET\",\"live\",\"tail-me\"")
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(found, "{seen}");
}

#[test]
fn kura_chain_and_promotion() {
    let master = kura_master(|_| {});
    let mut m = master.client();
    fill(&mut m, "a:");
    let mport = master.addr.port();
    let r1 = kura_master(|c| c.replicaof = Some(("127.0.0.1".into(), mport)));
    let r1port = r1.addr.port();
    let r2 = kura_master(|c| c.replicaof = Some(("127.0.0.1".into(), mport)));
    let r3 = kura_master(|c| c.replicaof = Some(("127.0.0.1".into(), r1port)));
    let (mut c1, mut c2, mut c3) = (r1.client(), r2.client(), r3.client());
    wait_synced(&mut c1, &mut m);
    wait_synced(&mut c2, &mut m);
    wait_synced(&mut c3, &mut c1);
    stream_writes(&mut m, "a:");
    wait_synced(&mut c1, &mut m);
    wait_synced(&mut c2, &mut m);
    wait_synced(&mut c3, &mut c1);
    let ours = dump_all(&mut m);
    assert_eq!(dump_all(&mut c1), ours);
    assert_eq!(dump_all(&mut c2), ours);
    assert_eq!(dump_all(&mut c3), ours, "the replica of a replica");
    // The sub-replica sees the top master's history and offsets.
    assert_eq!(
        info_field(&mut c3, "replication", "master_replid"),
        info_field(&mut m, "replication", "master_replid")
    );
    // Promote r1: its replica r3 continues partially through replid2.
    let old_id = info_field(&mut m, "replication", "master_replid");
    ok(&mut c1, &["REPLICAOF", "NO", "ONE"]);
    assert_eq!(info_field(&mut c1, "replication", "master_replid2"), old_id);
    ok(&mut c1, &["RPUSH", "promoted", "yes"]);
    assert!(wait_until(Duration::from_secs(10), || {
        c3.cmd(&["LRANGE", "promoted", "0", "-1"]) == "*1\r\n$3\r\nyes\r\n"
    }));
    assert_eq!(stat(&mut c1, "sync_partial_ok"), 1);
    assert_eq!(stat(&mut c1, "sync_full"), 1, "only r3's first sync");
    wait_synced(&mut c3, &mut c1);
    assert_eq!(dump_all(&mut c3), dump_all(&mut c1));
}

/// A replica that stops reading is dropped at `client-output-buffer-limit replica`, and the
/// master's buffered stream shrinks back.
#[test]
fn a_replica_that_stops_reading_is_dropped_at_its_limit() {
    let kura = kura_master(|c| {
        c.client_output_buffer_limit[1] = (4 * 1024 * 1024, 1024 * 1024, 1);
    });
    let mut k = kura.client();
    let mut slow = std::net::TcpStream::connect(kura.addr).unwrap();
    slow.write_all(b"REPLCONF capa eof\r\nPSYNC ? -1\r\n")
        .unwrap();
    // Read the handshake and the (empty) snapshot, then never read again.
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"$EOF") || got.len() < 100 {
        let n = slow.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    slow.write_all(b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$1\r\n0\r\n")
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        k.cmd(&["INFO", "replication"]).contains("state=online")
    }));
    let value = "v".repeat(64 * 1024);
    let mut dropped = false;
    for i in 0..400 {
        ok(&mut k, &["RPUSH", "big", &value]);
        if i % 20 == 0
            && info_field(&mut k, "replication", "connected_slaves").as_deref() == Some("0")
        {
            dropped = true;
            break;
        }
    }
    assert!(
        dropped
            || wait_until(Duration::from_secs(5), || {
                info_field(&mut k, "replication", "connected_slaves").as_deref() == Some("0")
            }),
        "{}",
        k.cmd(&["INFO", "replication"])
    );
    let buffers: u64 = info_field(&mut k, "memory", "mem_total_replication_buffers")
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(buffers <= 2 * 1024 * 1024, "{buffers}");
}

/// A replica's view of a full sync read off a raw socket: `PSYNC ? -1` without
/// `REPLCONF capa eof`, so the master sends a disk snapshot with `$<len>` framing.
struct RawSync {
    reader: std::io::BufReader<std::net::TcpStream>,
    offset: u64,
}

#[allow(clippy::unwrap_used)] // a test helper: a failed read is the test failing
impl RawSync {
    fn start(addr: std::net::SocketAddr) -> RawSync {
        use std::io::BufRead;
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"PSYNC ? -1\r\n").unwrap();
        let mut reader = std::io::BufReader::new(s);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let offset = line
            .trim_end()
            .strip_prefix("+FULLRESYNC ")
            .and_then(|rest| rest.split(' ').nth(1))
            .and_then(|o| o.parse().ok())
            .unwrap_or_else(|| panic!("not a full resync: {line:?}"));
        RawSync { reader, offset }
    }

    /// Skips the keepalive newlines, then reads the `$<len>` payload.
    fn payload(&mut self) -> Vec<u8> {
        use std::io::BufRead;
        let mut line = String::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line != "\n" {
                break;
            }
        }
        let len: usize = line.trim_end().strip_prefix('$').unwrap().parse().unwrap();
        let mut rdb = vec![0; len];
        self.reader.read_exact(&mut rdb).unwrap();
        rdb
    }

    /// Reads the stream until `needle` has come.
    fn stream_until(&mut self, needle: &str) -> String {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains(needle) {
            let n = self.reader.read(&mut buf).unwrap();
            assert!(n > 0, "stream ended: {:?}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    }
}

/// Replicas asking for a disk sync while one is being written join it, as Redis attaches
/// them to the running BGSAVE: one file, the same offset and bytes for both, then the same
/// stream from that offset; the file is gone afterwards.
#[test]
fn replicas_that_attach_together_share_one_disk_sync() {
    let kura = kura_master(|c| {
        c.repl_diskless_sync = false;
        // 50 ms a key: the save outlasts the second replica's attach.
        c.rdb_key_save_delay = 50_000;
    });
    let mut k = kura.client();
    for i in 0..20 {
        ok(&mut k, &["SET", &format!("k{i}"), "v"]);
    }
    let mut first = RawSync::start(kura.addr);
    // The master's offset moves past the first snapshot's before the second replica asks.
    ok(&mut k, &["SET", "between", "written-after-the-snapshot"]);
    let mut second = RawSync::start(kura.addr);
    assert_eq!(
        second.offset, first.offset,
        "the second joined the first's snapshot"
    );
    let dir = kura.state.with_config(|c| c.dir.clone());
    let temp_files = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with("temp-sync-")
            })
            .count()
    };
    assert_eq!(temp_files(), 1, "one file for both");
    let (a, b) = (first.payload(), second.payload());
    assert_eq!(a, b);
    assert!(a.starts_with(b"REDIS0010"));
    for sync in [&mut first, &mut second] {
        sync.stream_until("written-after-the-snapshot");
    }
    assert!(wait_until(Duration::from_secs(10), || temp_files() == 0));
    assert_eq!(stat(&mut k, "sync_full"), 2);
    // After the file is written, a third replica gets a snapshot of its own.
    ok(&mut k, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    let third = RawSync::start(kura.addr);
    assert!(third.offset > first.offset);
}

#[test]
fn shutdown_waits_for_a_lagging_replica_up_to_shutdown_timeout_unless_now() {
    use crate::support::KuraProcess;
    for now in [false, true] {
        let mut p = KuraProcess::start(&["--shutdown-timeout", "3", "--repl-diskless-sync", "no"]);
        let mut c = p.client();
        ok(&mut c, &["SET", "k", "v"]);
        // A replica that syncs, then never acks: always behind the master's offset.
        let mut lagging = RawSync::start(p.addr);
        lagging.payload();
        assert!(wait_until(Duration::from_secs(10), || c
            .cmd(&["INFO", "replication"])
            .contains("state=online")));
        ok(&mut c, &["SET", "k2", "v"]);
        let words: &[&[u8]] = match now {
            true => &[b"SHUTDOWN", b"NOSAVE", b"NOW"],
            false => &[b"SHUTDOWN", b"NOSAVE"],
        };
        let asked = std::time::Instant::now();
        c.send(words);
        assert!(
            p.wait_exit(Duration::from_secs(30)).is_some(),
            "{}",
            p.log()
        );
        let took = asked.elapsed();
        let log = p.log();
        assert!(log.contains("Lagging replica"), "{log}");
        assert!(
            log.contains("0 of 1 replicas are in sync when shutting down."),
            "{log}"
        );
        if now {
            assert!(
                took < Duration::from_millis(2500),
                "NOW waited {took:?}: {log}"
            );
            assert!(!log.contains("Waiting for replicas"), "{log}");
        } else {
            assert!(
                took >= Duration::from_millis(2500),
                "exited after {took:?}: {log}"
            );
            assert!(
                log.contains("Waiting for replicas before shutting down."),
                "{log}"
            );
        }
    }
}
