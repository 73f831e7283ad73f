//! Blocking list pops over real sockets: FIFO service, several keys, timeouts, BLMOVE chains,
//! MULTI, disconnects, and what the write stream records for served clients.

use std::time::{Duration, Instant};

use crate::support::{Kura, Raw, RedisServer};

/// Waits until exactly `n` clients are blocked (the server has parked the command).
fn wait_blocked(kura: &Kura, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now_blocked = kura.state.engine.lock().blocked.len();
        if now_blocked == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} blocked clients, have {now_blocked}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends a command without reading its reply.
fn send(c: &mut Raw, args: &[&str]) {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    c.send(&a);
}

fn reply(c: &mut Raw) -> String {
    String::from_utf8_lossy(&c.read_reply()).into_owned()
}

/// The whole write stream as text (commands are RESP arrays).
fn stream_text(kura: &Kura) -> String {
    let st = kura.state.engine.lock();
    let bytes = st
        .stream
        .read_from(st.stream.first_offset())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn pair(key: &str, v: &str) -> String {
    format!("*2\r\n${}\r\n{key}\r\n${}\r\n{v}\r\n", key.len(), v.len())
}

#[test]
fn clients_blocked_on_one_key_are_served_in_order() {
    let k = Kura::start();
    let mut waiters: Vec<Raw> = (0..3).map(|_| k.client()).collect();
    for (i, w) in waiters.iter_mut().enumerate() {
        send(w, &["BLPOP", "q", "0"]);
        wait_blocked(&k, i + 1);
    }
    let mut p = k.client();
    assert_eq!(p.cmd(&["RPUSH", "q", "a", "b", "c", "d"]), ":4\r\n");
    for (w, v) in waiters.iter_mut().zip(["a", "b", "c"]) {
        assert_eq!(reply(w), pair("q", v));
    }
    wait_blocked(&k, 0);
    assert_eq!(p.cmd(&["LRANGE", "q", "0", "-1"]), "*1\r\n$1\r\nd\r\n");
    // The blocked clients carry on normally afterwards.
    assert_eq!(waiters[0].cmd(&["LLEN", "q"]), ":1\r\n");
}

#[test]
fn one_push_serves_only_as_many_clients_as_elements() {
    let k = Kura::start();
    let mut a = k.client();
    let mut b = k.client();
    send(&mut a, &["BRPOP", "q", "0"]);
    wait_blocked(&k, 1);
    send(&mut b, &["BRPOP", "q", "0"]);
    wait_blocked(&k, 2);
    let mut p = k.client();
    assert_eq!(p.cmd(&["LPUSH", "q", "x"]), ":1\r\n");
    assert_eq!(reply(&mut a), pair("q", "x"));
    wait_blocked(&k, 1);
    assert_eq!(p.cmd(&["LLEN", "q"]), ":0\r\n");
    assert_eq!(p.cmd(&["RPUSH", "q", "y"]), ":1\r\n");
    assert_eq!(reply(&mut b), pair("q", "y"));
}

#[test]
fn blpop_on_several_keys_takes_the_first_that_fills() {
    let k = Kura::start();
    let mut w = k.client();
    let mut p = k.client();
    send(&mut w, &["BLPOP", "k1", "k2", "k3", "0"]);
    wait_blocked(&k, 1);
    assert_eq!(p.cmd(&["RPUSH", "k3", "v3"]), ":1\r\n");
    assert_eq!(reply(&mut w), pair("k3", "v3"));
    wait_blocked(&k, 0);
    // Served once: a later push to another key stays in place.
    assert_eq!(p.cmd(&["RPUSH", "k1", "v1"]), ":1\r\n");
    assert_eq!(p.cmd(&["LLEN", "k1"]), ":1\r\n");
    // Ready at once: the first non-empty key in argument order wins.
    p.cmd(&["RPUSH", "k2", "v2"]);
    assert_eq!(w.cmd(&["BLPOP", "k3", "k2", "k1", "0"]), pair("k2", "v2"));
}

#[test]
fn keys_readied_in_one_transaction_are_served_in_signal_order() {
    let k = Kura::start();
    let mut w = k.client();
    let mut p = k.client();
    send(&mut w, &["BLPOP", "k1", "k2", "0"]);
    wait_blocked(&k, 1);
    p.cmd(&["MULTI"]);
    p.cmd(&["RPUSH", "k2", "b"]);
    p.cmd(&["RPUSH", "k1", "a"]);
    assert_eq!(p.cmd(&["EXEC"]), "*2\r\n:1\r\n:1\r\n");
    assert_eq!(reply(&mut w), pair("k2", "b"));
}

#[test]
fn a_transaction_that_pushes_and_pops_leaves_waiters_blocked() {
    let k = Kura::start();
    let mut w = k.client();
    let mut p = k.client();
    send(&mut w, &["BLPOP", "q", "0"]);
    wait_blocked(&k, 1);
    p.cmd(&["MULTI"]);
    p.cmd(&["RPUSH", "q", "a"]);
    p.cmd(&["LPOP", "q"]);
    assert_eq!(p.cmd(&["EXEC"]), "*2\r\n:1\r\n$1\r\na\r\n");
    // Redis serves ready keys after EXEC, when the list is empty again.
    std::thread::sleep(Duration::from_millis(50));
    wait_blocked(&k, 1);
    assert_eq!(p.cmd(&["RPUSH", "q", "b"]), ":1\r\n");
    assert_eq!(reply(&mut w), pair("q", "b"));
}

#[test]
fn timeouts_answer_null_arrays() {
    let k = Kura::start();
    let mut c = k.client();
    let cases: &[&[&str]] = &[
        &["BLPOP", "nokey", "0.1"],
        &["BRPOP", "nokey", "other", "0.1"],
        &["BLMPOP", "0.1", "1", "nokey", "LEFT"],
        &["BLMOVE", "nokey", "dst", "LEFT", "RIGHT", "0.1"],
        &["BRPOPLPUSH", "nokey", "dst", "0.1"],
    ];
    for args in cases {
        let start = Instant::now();
        assert_eq!(c.cmd(args), "*-1\r\n", "{args:?}");
        assert!(start.elapsed() >= Duration::from_millis(100), "{args:?}");
    }
    wait_blocked(&k, 0);
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["BLPOP", "nokey", "0.05"]), "_\r\n");
    assert_eq!(
        c.cmd(&["BLMOVE", "nokey", "d", "LEFT", "LEFT", "0.05"]),
        "_\r\n"
    );
    // A waiter that timed out is gone: the next push stays in the list.
    assert_eq!(c.cmd(&["RPUSH", "nokey", "x"]), ":1\r\n");
    assert_eq!(c.cmd(&["LLEN", "nokey"]), ":1\r\n");
}

#[test]
fn timeout_replies_match_redis_in_both_protocols() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let k = Kura::start();
    let cases: &[&[&str]] = &[
        &["BLPOP", "nokey", "0.05"],
        &["BRPOP", "nokey", "0.05"],
        &[
            "BLMPOP", "0.05", "2", "nokey", "nokey2", "RIGHT", "COUNT", "3",
        ],
        &["BLMOVE", "nokey", "dst", "RIGHT", "LEFT", "0.05"],
        &["BRPOPLPUSH", "nokey", "dst", "0.05"],
    ];
    for proto in ["2", "3"] {
        let mut r = redis.client();
        let mut c = k.client();
        r.cmd(&["HELLO", proto]);
        c.cmd(&["HELLO", proto]);
        for args in cases {
            assert_eq!(c.cmd(args), r.cmd(args), "RESP{proto} {args:?}");
        }
    }
}

#[test]
fn blmove_chain_wakes_the_client_blocked_on_the_destination() {
    let k = Kura::start();
    k.record_writes();
    let mut on_dst = k.client();
    let mut mover = k.client();
    let mut p = k.client();
    send(&mut on_dst, &["BLPOP", "dst", "0"]);
    wait_blocked(&k, 1);
    send(&mut mover, &["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"]);
    wait_blocked(&k, 2);
    assert_eq!(p.cmd(&["RPUSH", "src", "x"]), ":1\r\n");
    assert_eq!(reply(&mut mover), "$1\r\nx\r\n");
    assert_eq!(reply(&mut on_dst), pair("dst", "x"));
    wait_blocked(&k, 0);
    assert_eq!(p.cmd(&["LLEN", "src"]), ":0\r\n");
    assert_eq!(p.cmd(&["LLEN", "dst"]), ":0\r\n");
    let s = stream_text(&k);
    let rpush = s.find("RPUSH").expect("RPUSH logged");
    let lmove = s
        .find("*5\r\n$5\r\nLMOVE\r\n$3\r\nsrc\r\n$3\r\ndst\r\n$4\r\nLEFT\r\n$5\r\nRIGHT\r\n")
        .expect("LMOVE logged");
    let lpop = s
        .find("*2\r\n$4\r\nLPOP\r\n$3\r\ndst\r\n")
        .expect("LPOP logged");
    assert!(rpush < lmove && lmove < lpop, "{s:?}");
    assert!(!s.contains("BL"), "{s:?}");
}

#[test]
fn blmove_to_a_key_of_another_type_fails_without_popping() {
    let k = Kura::start();
    let mut w = k.client();
    let mut p = k.client();
    send(&mut w, &["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"]);
    wait_blocked(&k, 1);
    p.cmd(&["SET", "dst", "string"]);
    p.cmd(&["RPUSH", "src", "x"]);
    assert_eq!(
        reply(&mut w),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    assert_eq!(p.cmd(&["LLEN", "src"]), ":1\r\n");
}

#[test]
fn blocking_commands_in_multi_do_not_block() {
    let k = Kura::start();
    let mut c = k.client();
    c.cmd(&["MULTI"]);
    for args in [
        &["BLPOP", "nokey", "0"][..],
        &["BRPOP", "nokey", "0"],
        &["BLMOVE", "nokey", "d", "LEFT", "RIGHT", "0"],
        &["BRPOPLPUSH", "nokey", "d", "0"],
        &["BLMPOP", "0", "1", "nokey", "LEFT"],
    ] {
        assert_eq!(c.cmd(args), "+QUEUED\r\n");
    }
    assert_eq!(
        c.cmd(&["EXEC"]),
        "*5\r\n*-1\r\n*-1\r\n$-1\r\n$-1\r\n*-1\r\n"
    );
    wait_blocked(&k, 0);
}

#[test]
fn a_disconnected_waiter_does_not_lose_the_next_element() {
    let k = Kura::start();
    let mut gone = k.client();
    send(&mut gone, &["BLPOP", "q", "0"]);
    wait_blocked(&k, 1);
    let mut next = k.client();
    send(&mut next, &["BLPOP", "q", "0"]);
    wait_blocked(&k, 2);
    drop(gone);
    wait_blocked(&k, 1);
    let mut p = k.client();
    p.cmd(&["RPUSH", "q", "a"]);
    assert_eq!(reply(&mut next), pair("q", "a"));
    // With nobody left waiting, pushed elements stay.
    let mut gone2 = k.client();
    send(&mut gone2, &["BRPOP", "q", "0"]);
    wait_blocked(&k, 1);
    drop(gone2);
    wait_blocked(&k, 0);
    p.cmd(&["RPUSH", "q", "b"]);
    assert_eq!(p.cmd(&["LRANGE", "q", "0", "-1"]), "*1\r\n$1\r\nb\r\n");
}

#[test]
fn served_pops_are_logged_as_their_non_blocking_forms() {
    let k = Kura::start();
    k.record_writes();
    let mut w = k.client();
    let mut p = k.client();
    // Served later.
    send(&mut w, &["BLPOP", "q", "0"]);
    wait_blocked(&k, 1);
    p.cmd(&["RPUSH", "q", "a"]);
    assert_eq!(reply(&mut w), pair("q", "a"));
    send(&mut w, &["BLMPOP", "0", "1", "m", "RIGHT", "COUNT", "5"]);
    wait_blocked(&k, 1);
    p.cmd(&["RPUSH", "m", "1", "2", "3"]);
    assert_eq!(
        reply(&mut w),
        "*2\r\n$1\r\nm\r\n*3\r\n$1\r\n3\r\n$1\r\n2\r\n$1\r\n1\r\n"
    );
    send(&mut w, &["BRPOPLPUSH", "s", "d", "0"]);
    wait_blocked(&k, 1);
    p.cmd(&["RPUSH", "s", "z"]);
    assert_eq!(reply(&mut w), "$1\r\nz\r\n");
    // Served at once.
    p.cmd(&["RPUSH", "q", "b", "c"]);
    assert_eq!(w.cmd(&["BRPOP", "q", "0"]), pair("q", "c"));
    assert_eq!(
        w.cmd(&["BLMOVE", "q", "d", "left", "right", "0"]),
        "$1\r\nb\r\n"
    );
    p.cmd(&["RPUSH", "q", "x", "y"]);
    w.cmd(&["LMPOP", "1", "q", "LEFT", "COUNT", "9"]);
    let s = stream_text(&k);
    for want in [
        "*2\r\n$4\r\nLPOP\r\n$1\r\nq\r\n",
        "*3\r\n$4\r\nRPOP\r\n$1\r\nm\r\n$1\r\n3\r\n",
        "*3\r\n$9\r\nRPOPLPUSH\r\n$1\r\ns\r\n$1\r\nd\r\n",
        "*2\r\n$4\r\nRPOP\r\n$1\r\nq\r\n",
        "*5\r\n$5\r\nLMOVE\r\n$1\r\nq\r\n$1\r\nd\r\n$4\r\nleft\r\n$5\r\nright\r\n",
        "*3\r\n$4\r\nLPOP\r\n$1\r\nq\r\n$1\r\n2\r\n",
    ] {
        assert!(s.contains(want), "missing {want:?} in {s:?}");
    }
    assert!(!s.contains("BLPOP") && !s.contains("BRPOP") && !s.contains("BLM"));
    assert!(!s.contains("LMPOP") && !s.contains("BRPOPLPUSH"));
}

#[test]
fn waiters_in_another_database_are_not_served() {
    let k = Kura::start();
    let mut w = k.client();
    let mut p = k.client();
    w.cmd(&["SELECT", "1"]);
    send(&mut w, &["BLPOP", "q", "0"]);
    wait_blocked(&k, 1);
    p.cmd(&["RPUSH", "q", "db0"]);
    std::thread::sleep(Duration::from_millis(50));
    wait_blocked(&k, 1);
    p.cmd(&["SELECT", "1"]);
    p.cmd(&["RPUSH", "q", "db1"]);
    assert_eq!(reply(&mut w), pair("q", "db1"));
}

/// Waits until `INFO clients` of the server at `addr` reports `n` blocked clients (works for
/// redis-server and kura alike).
fn wait_blocked_at(addr: std::net::SocketAddr, n: usize) {
    let mut c = Raw::connect(addr);
    let want = format!("blocked_clients:{n}\r\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !c.cmd(&["INFO", "clients"]).contains(&want) {
        assert!(Instant::now() < deadline, "{addr}: never {want:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A command that can create a list under `q` while a client blocks on it.
struct Door {
    name: &'static str,
    /// Run first, in database 0.
    setup: Vec<Vec<Vec<u8>>>,
    /// The database the waiter selects before `BLPOP q 0`.
    waiter_db: &'static str,
    /// The door itself, in database 0.
    cmd: Vec<Vec<u8>>,
}

fn argv(args: &[&str]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.as_bytes().to_vec()).collect()
}

/// Every command that can create a list under a key wakes the clients blocked on that key,
/// as Redis's `signalKeyAsReady` calls in RENAME, MOVE, COPY, RESTORE and SWAPDB do.
#[test]
fn blocked_clients_are_woken_by_every_door_that_creates_a_list() {
    let kura = Kura::start();
    let redis = RedisServer::start(&[]);
    let servers =
        std::iter::once(("kura", kura.addr)).chain(redis.as_ref().map(|r| ("redis", r.addr)));
    for (name, addr) in servers {
        let mut p = Raw::connect(addr);
        // RESTORE needs a payload: DUMP of a one-element list.
        p.cmd(&["RPUSH", "tmp", "a"]);
        p.send(&[b"DUMP", b"tmp"]);
        let dump = p.read_reply();
        let start = dump.iter().position(|&b| b == b'\n').expect("bulk") + 1;
        let payload = dump[start..dump.len() - 2].to_vec();
        let src = || vec![argv(&["RPUSH", "src", "a"])];
        let doors = [
            Door {
                name: "RENAME",
                setup: src(),
                waiter_db: "0",
                cmd: argv(&["RENAME", "src", "q"]),
            },
            Door {
                name: "RENAMENX",
                setup: src(),
                waiter_db: "0",
                cmd: argv(&["RENAMENX", "src", "q"]),
            },
            Door {
                name: "MOVE",
                setup: vec![argv(&["RPUSH", "q", "a"])],
                waiter_db: "1",
                cmd: argv(&["MOVE", "q", "1"]),
            },
            Door {
                name: "COPY",
                setup: src(),
                waiter_db: "0",
                cmd: argv(&["COPY", "src", "q"]),
            },
            Door {
                name: "COPY DB",
                setup: src(),
                waiter_db: "2",
                cmd: argv(&["COPY", "src", "q", "DB", "2"]),
            },
            Door {
                name: "RESTORE",
                setup: vec![],
                waiter_db: "0",
                cmd: vec![b"RESTORE".to_vec(), b"q".to_vec(), b"0".to_vec(), payload],
            },
            Door {
                name: "SWAPDB",
                setup: vec![
                    argv(&["SELECT", "3"]),
                    argv(&["RPUSH", "q", "a"]),
                    argv(&["SELECT", "0"]),
                ],
                waiter_db: "0",
                cmd: argv(&["SWAPDB", "0", "3"]),
            },
        ];
        let run = |p: &mut Raw, c: &[Vec<u8>]| {
            let args: Vec<&[u8]> = c.iter().map(|a| a.as_slice()).collect();
            p.send(&args);
            p.read_reply()
        };
        for door in doors {
            p.cmd(&["FLUSHALL"]);
            for c in &door.setup {
                run(&mut p, c);
            }
            let mut w = Raw::connect(addr);
            w.cmd(&["SELECT", door.waiter_db]);
            send(&mut w, &["BLPOP", "q", "0"]);
            wait_blocked_at(addr, 1);
            let r = run(&mut p, &door.cmd);
            assert!(!r.starts_with(b"-"), "{name} {}: {r:?}", door.name);
            assert_eq!(
                reply(&mut w),
                pair("q", "a"),
                "{name}: woken by {}",
                door.name
            );
            wait_blocked_at(addr, 0);
        }
    }
}

/// `clients_in_timeout_table` counts only the blocked clients that have a timeout.
#[test]
fn only_timed_waiters_are_in_the_timeout_table() {
    let kura = Kura::start();
    let redis = RedisServer::start(&[]);
    let servers =
        std::iter::once(("kura", kura.addr)).chain(redis.as_ref().map(|r| ("redis", r.addr)));
    for (name, addr) in servers {
        let mut forever = Raw::connect(addr);
        let mut timed = Raw::connect(addr);
        send(&mut forever, &["BLPOP", "q", "0"]);
        send(&mut timed, &["BRPOP", "q", "100"]);
        wait_blocked_at(addr, 2);
        let info = Raw::connect(addr).cmd(&["INFO", "clients"]);
        assert!(
            info.contains("\r\nclients_in_timeout_table:1\r\n"),
            "{name}: {info}"
        );
    }
}
