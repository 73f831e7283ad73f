//! Pub/Sub and MONITOR over real sockets: each scenario runs against kura and, when it is
//! installed, against a real redis-server 7.0, and the bytes every client receives are
//! compared (MONITOR lines after removing the timestamp and the client port).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{need_program, Kura, Raw, RedisServer};

/// Reads `n` frames and returns them concatenated.
fn frames(c: &mut Raw, n: usize) -> String {
    (0..n)
        .map(|_| String::from_utf8_lossy(&c.read_reply()).into_owned())
        .collect()
}

/// Sends a command and returns its first `n` frames.
fn cmd_n(c: &mut Raw, args: &[&str], n: usize) -> String {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    c.send(&a);
    frames(c, n)
}

/// Switches to RESP3; the HELLO reply carries the client id, so it is not compared.
fn hello3(c: &mut Raw) {
    let r = c.cmd(&["HELLO", "3"]);
    assert!(r.starts_with("%7\r\n"), "{r}");
}

/// Runs `scenario` against kura and, if present, against redis-server; asserts both
/// transcripts are equal and returns kura's.
fn same_on_both(scenario: impl Fn(SocketAddr) -> String) -> String {
    let kura = Kura::start();
    let got = scenario(kura.addr);
    if let Some(redis) = RedisServer::start(&[]) {
        let want = scenario(redis.addr);
        assert_eq!(got, want, "kura (left) and redis (right) differ");
    }
    got
}

/// Polls `PUBSUB NUMSUB channel` until it reports `want` (a closed connection is cleaned
/// up asynchronously, on both servers).
fn wait_numsub(c: &mut Raw, channel: &str, want: usize) -> bool {
    let expect = format!("*2\r\n${}\r\n{channel}\r\n:{want}\r\n", channel.len());
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if c.cmd(&["PUBSUB", "NUMSUB", channel]) == expect {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn delivery(addr: SocketAddr, resp3: bool) -> String {
    let mut s = Raw::connect(addr);
    let mut p = Raw::connect(addr);
    if resp3 {
        hello3(&mut s);
    }
    let mut t = String::new();
    t += &cmd_n(&mut s, &["SUBSCRIBE", "a", "b", "a"], 3);
    t += &cmd_n(&mut s, &["PSUBSCRIBE", "x*", "y?"], 2);
    t += &p.cmd(&["PUBLISH", "a", "m1"]);
    t += &p.cmd(&["PUBLISH", "xy", "m2"]);
    t += &p.cmd(&["PUBLISH", "b", ""]);
    t += &p.cmd(&["PUBLISH", "zz", "m3"]);
    t += &p.cmd(&["PUBLISH", "yy", "bin\x00\r\n"]);
    t += &frames(&mut s, 4);
    t += &s.cmd(&["PING"]);
    t += &s.cmd(&["PING", "x"]);
    t += &s.cmd(&["GET", "k"]);
    t += &s.cmd(&["PUBSUB", "NUMPAT"]);
    t += &cmd_n(&mut s, &["UNSUBSCRIBE", "b", "nope"], 2);
    t += &s.cmd(&["UNSUBSCRIBE"]);
    t += &cmd_n(&mut s, &["PUNSUBSCRIBE"], 2);
    t += &s.cmd(&["PUNSUBSCRIBE"]);
    t += &p.cmd(&["PUBLISH", "a", "gone"]);
    t += &s.cmd(&["GET", "k"]);
    // Pipelined: confirmations come before the replies that follow them.
    let mut pipe = crate::support::encode_command(&[b"SUBSCRIBE", b"q1", b"q2"]);
    pipe.extend(crate::support::encode_command(&[b"GET", b"k"]));
    pipe.extend(crate::support::encode_command(&[b"UNSUBSCRIBE", b"q1"]));
    pipe.extend(crate::support::encode_command(&[b"PING"]));
    s.send_raw(&pipe);
    t += &frames(&mut s, 5);
    t
}

#[test]
fn delivery_resp2_matches_redis() {
    let t = same_on_both(|a| delivery(a, false));
    assert!(t.starts_with(
        "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
    ));
    assert!(t.contains("*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nm1\r\n"));
    assert!(t.contains("*4\r\n$8\r\npmessage\r\n$2\r\nx*\r\n$2\r\nxy\r\n$2\r\nm2\r\n"));
    assert!(t.contains("*2\r\n$4\r\npong\r\n$0\r\n\r\n"));
    assert!(t.contains("-ERR Can't execute 'get': only (P|S)SUBSCRIBE"));
    assert!(t.contains("-ERR Can't execute 'pubsub|numpat'"));
    assert!(t.contains("*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n"));
    assert!(t.contains("*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n"));
    assert!(t.contains(":0\r\n$-1\r\n*3\r\n$9\r\nsubscribe\r\n$2\r\nq1\r\n:1\r\n"));
    assert!(t.ends_with(
        "only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n\
         *3\r\n$11\r\nunsubscribe\r\n$2\r\nq1\r\n:1\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    ));
}

#[test]
fn delivery_resp3_matches_redis() {
    let t = same_on_both(|a| delivery(a, true));
    assert!(t.starts_with(">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"));
    assert!(t.contains(">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nm1\r\n"));
    assert!(t.contains(">4\r\n$8\r\npmessage\r\n$2\r\nx*\r\n$2\r\nxy\r\n$2\r\nm2\r\n"));
    // No pub/sub context in RESP3.
    assert!(t.contains("+PONG\r\n$1\r\nx\r\n_\r\n:2\r\n"));
    assert!(t.contains(">3\r\n$12\r\npunsubscribe\r\n_\r\n:0\r\n"));
}

/// A RESP3 client publishing to itself gets the message before PUBLISH's reply; inside a
/// transaction the pushes land inside the EXEC array, as in Redis 7.0.
fn self_publish(addr: SocketAddr) -> String {
    let mut c = Raw::connect(addr);
    let mut other = Raw::connect(addr);
    hello3(&mut c);
    let mut t = String::new();
    t += &c.cmd(&["SUBSCRIBE", "c"]);
    t += &c.cmd(&["PSUBSCRIBE", "c*"]);
    t += &cmd_n(&mut other, &["SUBSCRIBE", "c"], 1);
    t += &cmd_n(&mut c, &["PUBLISH", "c", "hi"], 3);
    t += &frames(&mut other, 1);
    t += &c.cmd(&["MULTI"]);
    t += &c.cmd(&["SUBSCRIBE", "d"]);
    t += &c.cmd(&["PUBLISH", "d", "x"]);
    // `*2`, the confirmation, the message, then PUBLISH's `:1`.
    t += &cmd_n(&mut c, &["EXEC"], 2);
    t += &c.cmd(&["PING"]);
    t
}

#[test]
fn self_publish_matches_redis() {
    let t = same_on_both(self_publish);
    assert!(t.contains(
        ">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n>4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$1\r\nc\r\n$2\r\nhi\r\n:3\r\n"
    ));
    assert!(t.contains(
        "*2\r\n>3\r\n$9\r\nsubscribe\r\n$1\r\nd\r\n:3\r\n>3\r\n$7\r\nmessage\r\n$1\r\nd\r\n$1\r\nx\r\n:1\r\n"
    ));
    assert!(t.ends_with("+PONG\r\n"));
}

fn shard_and_reset(addr: SocketAddr) -> String {
    let mut s = Raw::connect(addr);
    let mut p = Raw::connect(addr);
    let mut t = String::new();
    t += &cmd_n(&mut s, &["SSUBSCRIBE", "s1", "s2"], 2);
    t += &s.cmd(&["SUBSCRIBE", "c"]);
    t += &p.cmd(&["SPUBLISH", "s1", "m"]);
    t += &p.cmd(&["PUBLISH", "s1", "m"]);
    t += &frames(&mut s, 1);
    t += &s.cmd(&["UNSUBSCRIBE"]);
    // Still in subscribe mode: shard subscriptions count for the context, not for the
    // UNSUBSCRIBE count (Redis 7.0).
    t += &s.cmd(&["UNSUBSCRIBE"]);
    t += &s.cmd(&["GET", "k"]);
    t += &s.cmd(&["SUNSUBSCRIBE", "s9"]);
    t += &s.cmd(&["PSUBSCRIBE", "p*"]);
    t += &s.cmd(&["RESET"]);
    t += &s.cmd(&["GET", "k"]);
    t += &p.cmd(&["SPUBLISH", "s1", "m"]);
    t += &p.cmd(&["PUBLISH", "pp", "m"]);
    t += &p.cmd(&["PUBSUB", "NUMPAT"]);
    t += &p.cmd(&["PUBSUB", "SHARDNUMSUB", "s1", "s2"]);
    t
}

#[test]
fn shard_channels_and_reset_match_redis() {
    let t = same_on_both(shard_and_reset);
    assert!(t.contains("*3\r\n$8\r\nsmessage\r\n$2\r\ns1\r\n$1\r\nm\r\n"));
    assert!(t.contains("+RESET\r\n$-1\r\n:0\r\n:0\r\n:0\r\n"));
}

#[test]
fn disconnect_unsubscribes() {
    same_on_both(|addr| {
        let mut p = Raw::connect(addr);
        {
            let mut s = Raw::connect(addr);
            cmd_n(&mut s, &["SUBSCRIBE", "gone", "gone2"], 2);
            cmd_n(&mut s, &["PSUBSCRIBE", "g*"], 1);
            assert_eq!(p.cmd(&["PUBLISH", "gone", "x"]), ":2\r\n");
        }
        assert!(wait_numsub(&mut p, "gone", 0));
        let mut t = p.cmd(&["PUBLISH", "gone", "x"]);
        t += &p.cmd(&["PUBSUB", "NUMPAT"]);
        t += &p.cmd(&["PUBSUB", "CHANNELS"]);
        t
    });
}

#[test]
fn client_info_tracks_subscriptions() {
    let kura = Kura::start();
    let mut s = kura.client();
    cmd_n(&mut s, &["SUBSCRIBE", "a", "b"], 2);
    cmd_n(&mut s, &["PSUBSCRIBE", "p*"], 1);
    cmd_n(&mut s, &["SSUBSCRIBE", "s"], 1);
    let mut m = kura.client();
    assert_eq!(m.cmd(&["MONITOR"]), "+OK\r\n");
    let infos = kura.state.clients.list();
    let sub = infos
        .iter()
        .find(|i| i.sub.load(std::sync::atomic::Ordering::Relaxed) == 2);
    let sub = sub.expect("subscriber's info");
    assert_eq!(sub.psub.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(sub.ssub.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(*sub.flags.lock().unwrap(), "P");
    let flags: Vec<String> = infos
        .iter()
        .map(|i| i.flags.lock().unwrap().clone())
        .collect();
    assert!(flags.contains(&"O".to_string()), "{flags:?}");
    assert_eq!(m.cmd(&["RESET"]), "+RESET\r\n");
    assert_eq!(s.cmd(&["RESET"]), "+RESET\r\n");
    for i in kura.state.clients.list() {
        assert_eq!(*i.flags.lock().unwrap(), "N");
        assert_eq!(i.sub.load(std::sync::atomic::Ordering::Relaxed), 0);
    }
    let reg = kura.state.pubsub.lock().unwrap();
    assert_eq!(
        (
            reg.channel_count(),
            reg.pattern_count(),
            reg.shard_channel_count()
        ),
        (0, 0, 0)
    );
}

// ---- MONITOR ----

/// Replaces `<sec>.<usec>` and the port of `port` in a MONITOR line, checking their shape.
fn normalize_monitor(line: &str, port: u16) -> String {
    let rest = line.strip_prefix('+').expect("status line");
    let (ts, rest) = rest.split_once(' ').expect("timestamp");
    let (sec, usec) = ts.split_once('.').expect("sec.usec");
    assert!(
        sec.chars().all(|c| c.is_ascii_digit()) && !sec.is_empty(),
        "{line}"
    );
    assert!(
        usec.len() == 6 && usec.chars().all(|c| c.is_ascii_digit()),
        "{line}"
    );
    let addr = format!("127.0.0.1:{port}]");
    assert!(rest.contains(&addr), "{line} lacks {addr}");
    format!("+TS {}", rest.replace(&addr, "ADDR]"))
}

fn monitor_scenario(addr: SocketAddr) -> String {
    let mut m = Raw::connect(addr);
    let mut a = Raw::connect(addr);
    let mut b = Raw::connect(addr);
    let port = |c: &Raw| c.stream.local_addr().expect("local addr").port();
    let (mport, aport, bport) = (port(&m), port(&a), port(&b));
    let line =
        |m: &mut Raw, port: u16| normalize_monitor(&String::from_utf8_lossy(&m.read_reply()), port);
    let mut t = m.cmd(&["MONITOR"]);
    // Shown, in order.
    let shown: &[&[&str]] = &[
        &["SET", "k", "v\x01\"\\\n\r\t\x07\x08 \u{ff}"],
        &["SELECT", "1"],
        &["GET", "k"],
        &["SELECT", "0"],
        &["AUTH", "secret"],
        &["AUTH", "user", "secret"],
        &["AUTH", "a", "b", "c"],
        &["HELLO", "2", "AUTH", "default", "pw"],
        &["HELLO", "x", "AUTH", "default", "pw"],
        &["HELLO", "2", "SETNAME", "n", "AUTH", "u", "p", "BAD"],
    ];
    for args in shown {
        let r = a.cmd(args);
        // HELLO's reply carries the client id, which differs between servers.
        t += if r.starts_with("*14\r\n") {
            "HELLO-REPLY\r\n"
        } else {
            &r
        };
    }
    // Refused before running, or admin: not shown.
    t += &a.cmd(&["GET"]);
    t += &a.cmd(&["NOSUCHCOMMAND", "x"]);
    t += &a.cmd(&["PUBSUB", "NUMPAT", "x"]);
    t += &a.cmd(&["PUBSUB", "nosuch"]);
    t += &a.cmd(&["PUBSUB", "NUMPAT"]);
    for _ in shown {
        t += &line(&mut m, aport);
    }
    // PUBSUB NUMPAT is shown (not admin).
    t += &line(&mut m, aport);
    // Transactions: the queued commands are shown when EXEC runs them, before EXEC.
    t += &b.cmd(&["MULTI"]);
    t += &b.cmd(&["SET", "x", "1"]);
    t += &b.cmd(&["GET", "x"]);
    t += &cmd_n(&mut b, &["EXEC"], 1);
    t += &b.cmd(&["DEL", "x", "k"]);
    for _ in 0..5 {
        t += &line(&mut m, bport);
    }
    // A monitor is a replica to Redis: no keyspace access, refused before running.
    t += &m.cmd(&["GET", "k"]);
    // Its own command: the reply first, then its line.
    t += &m.cmd(&["PING"]);
    t += &line(&mut m, mport);
    // A second MONITOR has no reply at all: the next frame is PING's.
    m.send(&[b"MONITOR"]);
    t += &m.cmd(&["PING", "after"]);
    t += &line(&mut m, mport);
    // RESP3 does not change the line's type.
    hello3(&mut m);
    t += &line(&mut m, mport);
    t += &b.cmd(&["ECHO", "r3"]);
    t += &line(&mut m, bport);
    // RESET ends monitoring (and is not shown to itself): b's PING is not shown, so the
    // next frame m reads is its own PONG.
    t += &m.cmd(&["RESET"]);
    t += &b.cmd(&["PING"]);
    t += &m.cmd(&["PING"]);
    t
}

#[test]
fn monitor_matches_redis() {
    let t = same_on_both(monitor_scenario);
    assert!(t.starts_with("+OK\r\n"));
    assert!(t.contains(r#"+TS [0 ADDR] "SET" "k" "v\x01\"\\\n\r\t\a\b \xc3\xbf""#));
    assert!(t.contains(r#"+TS [1 ADDR] "SELECT" "1""#));
    assert!(t.contains(r#"+TS [1 ADDR] "GET" "k""#));
    assert!(t.contains(r#"+TS [0 ADDR] "AUTH" "(redacted)""#));
    assert!(t.contains(r#"+TS [0 ADDR] "AUTH" "(redacted)" "(redacted)""#));
    assert!(t.contains(r#"+TS [0 ADDR] "AUTH" "a" "b" "c""#));
    assert!(t.contains(r#""HELLO" "2" "AUTH" "(redacted)" "(redacted)""#));
    assert!(t.contains(r#""HELLO" "x" "AUTH" "default" "pw""#));
    assert!(t.contains(r#""HELLO" "2" "SETNAME" "n" "AUTH" "(redacted)" "(redacted)" "BAD""#));
    assert!(t.contains(r#"+TS [0 ADDR] "PUBSUB" "NUMPAT""#));
    assert!(t.contains("$5\r\nafter\r\n+TS [0 ADDR] \"PING\" \"after\"\r\n"));
    assert!(t.contains("-ERR Replica can't interact with the keyspace\r\n"));
    assert!(t.contains(r#"+TS [0 ADDR] "MULTI""#));
    assert!(t.contains(
        "+TS [0 ADDR] \"SET\" \"x\" \"1\"\r\n+TS [0 ADDR] \"GET\" \"x\"\r\n+TS [0 ADDR] \"EXEC\""
    ));
    assert!(!t.contains(r#""NOSUCHCOMMAND""#));
    assert!(!t.contains("\"MONITOR\""));
    assert!(t.ends_with("+RESET\r\n+PONG\r\n+PONG\r\n"));
}

// ---- OUTPUT BUFFER LIMIT ----

#[test]
fn subscriber_that_does_not_read_is_dropped() {
    same_on_both(|addr| {
        let mut s = Raw::connect(addr);
        let mut p = Raw::connect(addr);
        cmd_n(&mut s, &["SUBSCRIBE", "flood"], 1);
        let payload = "x".repeat(1024 * 1024);
        // 64mb queued for a client that never reads: over the 32mb hard limit even after
        // the kernel's socket buffers took their share.
        for _ in 0..64 {
            let r = p.cmd(&["PUBLISH", "flood", &payload]);
            if r == ":0\r\n" {
                break;
            }
        }
        assert!(wait_numsub(&mut p, "flood", 0), "subscriber still there");
        p.cmd(&["PUBLISH", "flood", "x"])
    });
}

// ---- redis-cli ----

/// Spawns `redis-cli -p PORT SUBSCRIBE news`, publishes, and returns what it printed.
fn redis_cli_tail(addr: SocketAddr) -> Option<String> {
    let cli = need_program("redis-cli")?;
    let mut child = Command::new(cli)
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args(["SUBSCRIBE", "news"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-cli");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut out = Vec::new();
    let next = || {
        rx.recv_timeout(Duration::from_secs(20))
            .expect("redis-cli printed a line")
    };
    for _ in 0..3 {
        out.push(next());
    }
    let mut p = Raw::connect(addr);
    assert_eq!(p.cmd(&["PUBLISH", "news", "hello world"]), ":1\r\n");
    assert_eq!(p.cmd(&["PUBLISH", "news", "second"]), ":1\r\n");
    for _ in 0..6 {
        out.push(next());
    }
    child.kill().ok();
    child.wait().ok();
    Some(out.join("\n"))
}

#[test]
fn redis_cli_subscribe_tails_messages() {
    let kura = Kura::start();
    let Some(got) = redis_cli_tail(kura.addr) else {
        return;
    };
    assert_eq!(
        got,
        "subscribe\nnews\n1\nmessage\nnews\nhello world\nmessage\nnews\nsecond"
    );
    if let Some(redis) = RedisServer::start(&[]) {
        assert_eq!(redis_cli_tail(redis.addr).as_deref(), Some(got.as_str()));
    }
}

// ---- CLIENT REPLY ----

fn reply_off(addr: SocketAddr) -> String {
    let mut c = Raw::connect(addr);
    let mut p = Raw::connect(addr);
    let mut m = Raw::connect(addr);
    let mut t = String::new();
    // RESP2: confirmations are sent even with replies off (CLIENT_PUSHING), errors are not.
    c.send(&[b"CLIENT", b"REPLY", b"OFF"]);
    c.send(&[b"SUBSCRIBE", b"x"]);
    c.send(&[b"GET", b"k"]);
    c.send(&[b"UNSUBSCRIBE", b"x"]);
    c.send(&[b"CLIENT", b"REPLY", b"ON"]);
    t += &frames(&mut c, 3);
    // RESP3: messages too.
    hello3(&mut c);
    c.send(&[b"CLIENT", b"REPLY", b"OFF"]);
    c.send(&[b"SUBSCRIBE", b"y"]);
    t += &frames(&mut c, 1);
    t += &p.cmd(&["PUBLISH", "y", "m"]);
    t += &frames(&mut c, 1);
    c.send(&[b"CLIENT", b"REPLY", b"SKIP"]);
    c.send(&[b"PUBLISH", b"y", b"self"]);
    c.send(&[b"CLIENT", b"REPLY", b"ON"]);
    t += &frames(&mut c, 2);
    // A monitor with replies off gets no lines.
    let mid = m.cmd(&["CLIENT", "ID"]);
    let mid = format!("id={} ", mid.trim_start_matches(':').trim_end());
    t += &m.cmd(&["MONITOR"]);
    m.send(&[b"CLIENT", b"REPLY", b"OFF"]);
    // The two connections are not ordered: wait until the monitor's CLIENT REPLY OFF ran
    // (its CLIENT LIST entry names it as the last command) before the command it must hide.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !p
        .cmd(&["CLIENT", "LIST"])
        .lines()
        .any(|l| l.contains(&mid) && l.contains(" cmd=client|reply "))
    {
        assert!(Instant::now() < deadline, "CLIENT REPLY OFF never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    t += &p.cmd(&["ECHO", "hidden"]);
    m.send(&[b"CLIENT", b"REPLY", b"ON"]);
    t += &String::from_utf8_lossy(&m.read_reply());
    t += &p.cmd(&["ECHO", "shown"]);
    let port = p.stream.local_addr().expect("local addr").port();
    let mport = m.stream.local_addr().expect("local addr").port();
    let next = normalize_monitor(&String::from_utf8_lossy(&m.read_reply()), mport);
    // CLIENT REPLY ON itself is shown (client|reply is not admin).
    t += &next;
    t += &normalize_monitor(&String::from_utf8_lossy(&m.read_reply()), port);
    t
}

#[test]
fn client_reply_off_still_gets_pushes() {
    let kura = Kura::start();
    if kura.client().cmd(&["CLIENT", "REPLY", "ON"]) != "+OK\r\n" {
        eprintln!("SKIPPED: kura has no CLIENT REPLY yet");
        return;
    }
    drop(kura);
    let t = same_on_both(reply_off);
    assert!(t.starts_with(
        "*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:1\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nx\r\n:0\r\n+OK\r\n"
    ));
    assert!(t.contains(">3\r\n$7\r\nmessage\r\n$1\r\ny\r\n$4\r\nself\r\n+OK\r\n"));
    assert!(!t.contains("hidden\""));
}
