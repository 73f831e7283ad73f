//! WAIT, `min-replicas-to-write` and the forward door's `ack_after = "replicated"`
//! (`shared/spec/redis.md` §2.4, §2.9, §1.5).
//!
//! Two kinds of peers: a real redis-server 7.0 started `--replicaof` kura (the end-to-end
//! behaviour), and replicas registered directly in the server's state whose ACKs the test
//! sends (`Repl::record_ack`), for the orderings a real replica makes hard to pin down (an
//! ACK exactly at a client's offset, a replica whose last ACK is too old). Error texts are
//! compared with a real redis-server's.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use kura::replication::state::{ReplicaInfo, ReplicaState};
use kura::replication::wait::GETACK;

use crate::forward::{chunk_id, entry, fluentd_chunk, Fwd};
use crate::support::{wait_until, Kura, Raw, RedisServer};

// ---- helpers ----

/// Registers an online replica that acks only when the test says so.
fn fake_replica(k: &Kura, id: u64) -> Arc<ReplicaInfo> {
    let now = k.state.clock.now_ms();
    let r = Arc::new(ReplicaInfo::new(id, "127.0.0.1".parse().unwrap(), 0, now));
    r.set_state(ReplicaState::Online);
    k.state.repl.replicas.lock().unwrap().insert(id, r.clone());
    r
}

fn ack(k: &Kura, id: u64, offset: u64) {
    let now = k.state.clock.now_ms();
    k.state.repl.record_ack(id, offset, now);
}

fn stream_offset(k: &Kura) -> u64 {
    k.state.engine.lock().stream.offset()
}

/// Reports whether the stream's last command is `REPLCONF GETACK *`.
fn ends_with_getack(k: &Kura) -> bool {
    let st = k.state.engine.lock();
    let end = st.stream.offset();
    end >= GETACK.len() as u64
        && st.stream.read_from(end - GETACK.len() as u64).as_deref() == Some(GETACK)
}

fn info_field(c: &mut Raw, section: &str, name: &str) -> Option<String> {
    let info = c.cmd(&["INFO", section]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::to_string))
}

fn blocked_clients(c: &mut Raw) -> u64 {
    info_field(c, "clients", "blocked_clients")
        .unwrap()
        .parse()
        .unwrap()
}

// ---- WAIT against replicas that ack on the test's word ----

/// WAIT counts the replicas whose ACK reached the client's own last write: it blocks until
/// then, one GETACK is in the stream for all the clients waiting, and a client that never
/// wrote is answered at once.
#[test]
fn wait_blocks_until_the_clients_last_write_is_acked() {
    let k = Kura::start();
    k.record_writes();
    fake_replica(&k, 900_001);
    let mut admin = k.client();
    let mut a = k.client();
    let mut b = k.client();
    assert_eq!(a.cmd(&["WAIT", "1", "0"]), ":1\r\n", "nothing written yet");
    assert_eq!(a.cmd(&["SET", "a", "1"]), "+OK\r\n");
    let a_end = stream_offset(&k);
    assert_eq!(b.cmd(&["SET", "b", "1"]), "+OK\r\n");
    let after_writes = stream_offset(&k);
    a.send(&[b"WAIT", b"1", b"0"]);
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(
        &mut admin
    ) == 1));
    b.send(&[b"WAIT", b"1", b"0"]);
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(
        &mut admin
    ) == 2));
    // One GETACK for both waiting clients, after their writes, not part of their offsets.
    assert_eq!(stream_offset(&k), after_writes + GETACK.len() as u64);
    assert!(ends_with_getack(&k));
    let list = admin.cmd(&["CLIENT", "LIST"]);
    assert_eq!(list.matches("flags=b").count(), 2, "{list}");
    assert!(list.contains("cmd=wait"), "{list}");
    // An ACK short of b's write releases a only.
    ack(&k, 900_001, a_end);
    assert_eq!(a.read_reply(), b":1\r\n");
    assert_eq!(blocked_clients(&mut admin), 1);
    // A replica's answer to the GETACK covers everything before it.
    ack(&k, 900_001, after_writes);
    assert_eq!(b.read_reply(), b":1\r\n");
    assert_eq!(blocked_clients(&mut admin), 0);
    // Already acked: at once, and no new GETACK.
    assert_eq!(b.cmd(&["WAIT", "1", "0"]), ":1\r\n");
    assert_eq!(stream_offset(&k), after_writes + GETACK.len() as u64);
}

/// WAIT replies with the count reached at its timeout; CLIENT UNBLOCK answers the same way
/// (or with -UNBLOCKED); a client leaving while it waits leaves nothing behind; inside
/// MULTI it answers at once.
#[test]
fn wait_times_out_with_the_count_reached() {
    let k = Kura::start();
    k.record_writes();
    fake_replica(&k, 900_011);
    fake_replica(&k, 900_012);
    let mut admin = k.client();
    let mut c = k.client();
    assert_eq!(c.cmd(&["RPUSH", "l", "x"]), ":1\r\n");
    let written = stream_offset(&k);
    ack(&k, 900_011, written);
    let t = Instant::now();
    assert_eq!(c.cmd(&["WAIT", "2", "300"]), ":1\r\n");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(
        info_field(&mut admin, "clients", "clients_in_timeout_table").as_deref(),
        Some("0")
    );

    // CLIENT UNBLOCK: the count now, or the error.
    let id = c.cmd(&["CLIENT", "ID"]);
    let id = id.trim_start_matches(':').trim().to_string();
    c.send(&[b"WAIT", b"2", b"0"]);
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(
        &mut admin
    ) == 1));
    assert_eq!(
        info_field(&mut admin, "clients", "clients_in_timeout_table").as_deref(),
        Some("0"),
        "WAIT 0 waits forever"
    );
    assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &id]), ":1\r\n");
    assert_eq!(c.read_reply(), b":1\r\n");
    c.send(&[b"WAIT", b"2", b"10000"]);
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(
        &mut admin
    ) == 1));
    assert_eq!(
        info_field(&mut admin, "clients", "clients_in_timeout_table").as_deref(),
        Some("1")
    );
    assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]), ":1\r\n");
    assert_eq!(
        c.read_reply(),
        b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
    );

    // Inside MULTI: the count at once.
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["WAIT", "2", "0"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["EXEC"]), "*1\r\n:1\r\n");

    // A waiting client that disconnects is withdrawn.
    let mut gone = k.client();
    gone.cmd(&["SET", "k", "v"]);
    gone.send(&[b"WAIT", b"2", b"0"]);
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(
        &mut admin
    ) == 1));
    drop(gone);
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(
        &mut admin
    ) == 0));
    assert_eq!(
        info_field(&mut admin, "clients", "connected_clients").as_deref(),
        Some("2")
    );

    // Both replicas ack: the next WAIT is answered by the ACK, well before its timeout.
    let mut w = k.client();
    w.cmd(&["SET", "k", "v2"]);
    let end = stream_offset(&k);
    w.send(&[b"WAIT", b"2", b"20000"]);
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(
        &mut admin
    ) == 1));
    let t = Instant::now();
    ack(&k, 900_011, end);
    ack(&k, 900_012, end);
    assert_eq!(w.read_reply(), b":2\r\n");
    assert!(t.elapsed() < Duration::from_secs(5));
}

/// A role change answers blocked clients (WAIT, a list pop) with -UNBLOCKED and closes
/// them, as Redis's `disconnectAllBlockedClients`.
#[test]
fn becoming_a_replica_unblocks_and_closes_blocked_clients() {
    let k = Kura::start();
    k.record_writes();
    fake_replica(&k, 900_021);
    let mut admin = k.client();
    let mut c = k.client();
    let mut popper = k.client();
    c.cmd(&["SET", "k", "v"]);
    c.send(&[b"WAIT", b"1", b"0"]);
    popper.send(&[b"BLPOP", b"nothing", b"0"]);
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(
        &mut admin
    ) == 2));
    let port = crate::support::free_port().to_string();
    assert_eq!(admin.cmd(&["REPLICAOF", "127.0.0.1", &port]), "+OK\r\n");
    for client in [&mut c, &mut popper] {
        assert_eq!(
            client.read_reply(),
            b"-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)\r\n"
        );
        assert!(client.is_closed(Duration::from_secs(5)));
    }
    assert_eq!(admin.cmd(&["PING"]), "+PONG\r\n");
}

// ---- error texts, against a real redis-server ----

/// WAIT on a replica, and an EXEC refused as a whole by min-replicas-to-write (set from
/// another connection after the write was queued), answered and counted as Redis does.
#[test]
fn wait_on_a_replica_and_exec_refused_for_replicas_match_redis() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let kura = Kura::start();
    let dead = crate::support::free_port().to_string();
    let mut got = Vec::new();
    for addr in [redis.addr, kura.addr] {
        let mut a = Raw::connect(addr);
        let mut b = Raw::connect(addr);
        let mut out = vec![
            a.cmd(&["CONFIG", "RESETSTAT"]),
            a.cmd(&["WATCH", "w"]),
            a.cmd(&["MULTI"]),
            a.cmd(&["SET", "x", "1"]),
            a.cmd(&["GET", "x"]),
            b.cmd(&["CONFIG", "SET", "min-replicas-to-write", "1"]),
            a.cmd(&["EXEC"]),
            // The transaction and its WATCH are gone.
            a.cmd(&["EXEC"]),
            b.cmd(&["CONFIG", "SET", "min-replicas-to-write", "0"]),
            // A WATCH still held would make this EXEC fail.
            b.cmd(&["SET", "w", "changed"]),
            a.cmd(&["MULTI"]),
            a.cmd(&["GET", "x"]),
            a.cmd(&["EXEC"]),
            a.cmd(&["INFO", "errorstats"]),
        ];
        let stats = a.cmd(&["INFO", "commandstats"]);
        let exec = stats
            .lines()
            .find(|l| l.starts_with("cmdstat_exec:"))
            .unwrap()
            .to_string();
        out.push(exec.split_once(",rejected").unwrap().1.to_string());
        // WAIT on a replica (its master need not be reachable).
        out.push(a.cmd(&["REPLICAOF", "127.0.0.1", &dead]));
        out.push(a.cmd(&["WAIT", "0", "0"]));
        out.push(a.cmd(&["WAIT", "x", "0"]));
        out.push(a.cmd(&["REPLICAOF", "NO", "ONE"]));
        out.push(a.cmd(&["WAIT", "0", "0"]));
        got.push(out);
    }
    assert_eq!(got[1], got[0], "kura (left) vs redis (right)");
    assert!(got[0][6].starts_with("-EXECABORT Transaction discarded because of: NOREPLICAS"));
    assert_eq!(got[0][12], "*1\r\n$-1\r\n");
}

// ---- min-replicas-to-write ----

/// Writes are refused while fewer replicas than `min-replicas-to-write` acked within
/// `min-replicas-max-lag` seconds, from both doors; reads and other commands go on.
#[test]
fn min_replicas_refuse_writes_from_both_doors_until_replicas_are_good() {
    let k = Kura::start();
    let mut c = k.client();
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "min-replicas-to-write", "1"]),
        "+OK\r\n"
    );
    assert_eq!(
        c.cmd(&["SET", "k", "v"]),
        "-NOREPLICAS Not enough good replicas to write.\r\n"
    );
    assert_eq!(c.cmd(&["GET", "k"]), "$-1\r\n");
    assert_eq!(
        info_field(&mut c, "replication", "min_slaves_good_slaves").as_deref(),
        Some("0")
    );
    let mut f = Fwd::connect(k.forward);
    let id = chunk_id(1);
    let e = entry(1_700_000_000, 0, &[("msg", "hello")]);
    f.send(&fluentd_chunk("app.log", &e, 1, "text", Some(&id)));
    assert!(
        f.silent(Duration::from_millis(300)),
        "no ack without replicas"
    );
    assert_eq!(c.cmd(&["LLEN", "app.log"]), ":0\r\n");
    assert!(k
        .state
        .metrics
        .registry
        .gather()
        .iter()
        .any(|m| m.get_name() == "kura_forward_chunks_rejected_total"
            && m.get_metric().iter().any(|x| x
                .get_label()
                .iter()
                .any(|l| l.get_value() == "noreplicas")
                && x.get_counter().get_value() == 1.0)));

    // A replica that acked just now is good.
    let r = fake_replica(&k, 900_031);
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    f.send(&fluentd_chunk("app.log", &e, 1, "text", Some(&id)));
    f.expect_ack(&id);
    assert_eq!(c.cmd(&["LLEN", "app.log"]), ":1\r\n");
    // Its last ACK older than min-replicas-max-lag: not good any more.
    r.ack_time_ms.store(
        k.state.clock.now_ms() - 11_000,
        std::sync::atomic::Ordering::Relaxed,
    );
    assert_eq!(
        c.cmd(&["DEL", "k"]),
        "-NOREPLICAS Not enough good replicas to write.\r\n"
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "min-replicas-max-lag", "20"]),
        "+OK\r\n"
    );
    assert_eq!(c.cmd(&["DEL", "k"]), ":1\r\n");
    let stats = c.cmd(&["INFO", "commandstats"]);
    for cmd in ["set", "del"] {
        let line = stats
            .lines()
            .find(|l| l.starts_with(&format!("cmdstat_{cmd}:")))
            .unwrap();
        assert!(
            line.starts_with(&format!("cmdstat_{cmd}:calls=1,")),
            "{line}"
        );
        assert!(line.ends_with("rejected_calls=1,failed_calls=0"), "{line}");
    }
    assert!(c
        .cmd(&["INFO", "errorstats"])
        .contains("errorstat_NOREPLICAS:count=2\r\n"));
}

// ---- forward ack_after = "replicated" ----

/// A chunk's ack waits for `ack_replicas` replicas to ack its end offset; the chunk is
/// followed by a GETACK so they do so at once; no replica, no ack.
#[test]
fn forward_acks_wait_for_replica_acks() {
    let k = Kura::start_with(|c| {
        c.forward.ack_after = kura::config::AckAfter::Replicated;
        c.forward.ack_replicas = 2;
    });
    let mut f = Fwd::connect(k.forward);
    let id = chunk_id(1);
    let e = entry(1_700_000_000, 0, &[("msg", "hello")]);
    f.send(&fluentd_chunk("app.log", &e, 1, "text", Some(&id)));
    assert!(f.silent(Duration::from_millis(300)), "no replica: no ack");
    assert_eq!(k.client().cmd(&["LLEN", "app.log"]), ":1\r\n", "stored");
    // The chunk is in the stream, followed by a GETACK.
    assert!(ends_with_getack(&k));
    let chunk_end = stream_offset(&k) - GETACK.len() as u64;
    assert!(chunk_end > 0);
    fake_replica(&k, 900_041);
    fake_replica(&k, 900_042);
    ack(&k, 900_041, chunk_end);
    assert!(f.silent(Duration::from_millis(200)), "one replica of two");
    ack(&k, 900_042, chunk_end - 1);
    assert!(
        f.silent(Duration::from_millis(200)),
        "short of the chunk's end"
    );
    ack(&k, 900_042, chunk_end);
    f.expect_ack(&id);

    // A resend is acked once replicas have the original (they do).
    f.send(&fluentd_chunk("app.log", &e, 1, "text", Some(&id)));
    f.expect_ack(&id);
    assert_eq!(k.client().cmd(&["LLEN", "app.log"]), ":1\r\n");

    // Acks stay in request order: the second chunk's ack waits behind the third's cause.
    let (id2, id3) = (chunk_id(2), chunk_id(3));
    f.send(&fluentd_chunk("app.log", &e, 1, "text", Some(&id2)));
    assert!(f.silent(Duration::from_millis(200)));
    let end2 = stream_offset(&k) - GETACK.len() as u64;
    f.send(&fluentd_chunk("app.log", &e, 1, "text", Some(&id3)));
    assert!(f.silent(Duration::from_millis(200)));
    let end3 = stream_offset(&k) - GETACK.len() as u64;
    assert!(end3 > end2);
    for r in [900_041, 900_042] {
        ack(&k, r, end3);
    }
    let mut want = crate::forward::ack_of(&id2);
    want.extend_from_slice(&crate::forward::ack_of(&id3));
    assert_eq!(f.read(want.len()), want);
}

// ---- a real redis-server replica of kura ----

/// Starts kura for a real replica: the diskless sync starts at once.
fn master_for_real_replicas(tweak: impl FnOnce(&mut kura::Config)) -> Kura {
    Kura::start_with(|c| {
        c.repl_diskless_sync_delay = 0;
        tweak(c);
    })
}

/// Starts `redis-server --replicaof kura`, or `None` (skip) without redis-server.
fn real_replica(k: &Kura) -> Option<RedisServer> {
    let port = k.addr.port().to_string();
    RedisServer::start(&["--replicaof", "127.0.0.1", &port])
}

/// Waits until kura lists `n` online replicas.
fn online_replicas(k: &Kura, n: usize) -> bool {
    wait_until(Duration::from_secs(20), || {
        k.state
            .repl
            .replicas()
            .iter()
            .filter(|r| r.state() == ReplicaState::Online)
            .count()
            == n
    })
}

/// WAIT 1 after a write returns 1 as soon as the replica acks it (GETACK, not the one
/// second tick); WAIT 2 with one replica returns 1 at its timeout.
#[test]
fn wait_with_a_real_replica() {
    let k = master_for_real_replicas(|_| {});
    let Some(replica) = real_replica(&k) else {
        return;
    };
    assert!(online_replicas(&k, 1), "the replica did not come online");
    let mut c = k.client();
    for i in 0..5 {
        let v = format!("v{i}");
        assert_eq!(c.cmd(&["SET", "k", &v]), "+OK\r\n");
        let t = Instant::now();
        assert_eq!(c.cmd(&["WAIT", "1", "5000"]), ":1\r\n");
        // Answered by the GETACK, well inside the replica's one-second ACK period.
        assert!(
            t.elapsed() < Duration::from_millis(900),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(
            replica.client().cmd(&["GET", "k"]),
            format!("$2\r\n{v}\r\n")
        );
    }
    assert_eq!(c.cmd(&["RPUSH", "l", "a", "b"]), ":2\r\n");
    let t = Instant::now();
    assert_eq!(c.cmd(&["WAIT", "2", "400"]), ":1\r\n");
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(replica.client().cmd(&["LLEN", "l"]), ":2\r\n");
}

/// min-replicas-to-write 1: writes get NOREPLICAS until a replica is online, then pass.
#[test]
fn noreplicas_until_a_real_replica_is_online() {
    let k = master_for_real_replicas(|c| c.min_replicas_to_write = 1);
    let mut c = k.client();
    assert_eq!(
        c.cmd(&["SET", "k", "v"]),
        "-NOREPLICAS Not enough good replicas to write.\r\n"
    );
    assert_eq!(c.cmd(&["GET", "k"]), "$-1\r\n");
    let Some(replica) = real_replica(&k) else {
        return;
    };
    assert!(online_replicas(&k, 1), "the replica did not come online");
    assert!(wait_until(Duration::from_secs(10), || c
        .cmd(&["SET", "k", "v"])
        == "+OK\r\n"));
    assert_eq!(
        info_field(&mut c, "replication", "min_slaves_good_slaves").as_deref(),
        Some("1")
    );
    assert_eq!(c.cmd(&["WAIT", "1", "5000"]), ":1\r\n");
    assert_eq!(replica.client().cmd(&["GET", "k"]), "$1\r\nv\r\n");
    // The replica goes away: writes are refused again once it is no longer online.
    drop(replica);
    assert!(wait_until(Duration::from_secs(20), || c
        .cmd(&["SET", "k", "w"])
        .starts_with("-NOREPLICAS")));
}

/// `ack_after = "replicated"`: no ack while no replica is attached; once one is, the chunk's
/// ack arrives and its records are on the replica by then.
#[test]
fn forward_ack_after_replicated_with_a_real_replica() {
    let k = master_for_real_replicas(|c| {
        c.forward.ack_after = kura::config::AckAfter::Replicated;
    });
    let mut f = Fwd::connect(k.forward);
    let id = chunk_id(1);
    let e = entry(1_700_000_000, 0, &[("msg", "first")]);
    f.send(&fluentd_chunk("app.log", &e, 1, "text", Some(&id)));
    assert!(
        f.silent(Duration::from_millis(500)),
        "acked without a replica"
    );
    let Some(replica) = real_replica(&k) else {
        return;
    };
    // The ack comes once the replica loaded a snapshot holding the chunk and acked.
    f.s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    f.expect_ack(&id);
    assert_eq!(replica.client().cmd(&["LLEN", "app.log"]), ":1\r\n");
    // Streaming: every ack finds its records on the replica, within the GETACK round trip.
    for n in 2..12u8 {
        let id = chunk_id(n);
        let e = entry(1_700_000_000, 0, &[("msg", "next")]);
        let t = Instant::now();
        f.send(&fluentd_chunk("app.log", &e, 1, "text", Some(&id)));
        f.expect_ack(&id);
        assert!(
            t.elapsed() < Duration::from_millis(900),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(
            replica.client().cmd(&["LLEN", "app.log"]),
            format!(":{n}\r\n")
        );
    }
}
