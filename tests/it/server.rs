//! Server and introspection commands end to end: INFO's layout against a real redis-server,
//! CONFIG round trips and their run-time effects, CLIENT across connections, CLIENT REPLY,
//! SLOWLOG, CONFIG REWRITE, redis-cli's interactive start-up, SHUTDOWN.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{need_program, Kura, Raw, RedisServer};

/// Returns the payload of a bulk or verbatim reply.
fn payload(reply: &str) -> String {
    let (_, rest) = reply.split_once("\r\n").expect("a bulk reply");
    let rest = rest.strip_suffix("\r\n").unwrap_or(rest);
    rest.strip_prefix("txt:").unwrap_or(rest).to_string()
}

/// Splits INFO text into sections: (title, field names in order).
fn sections(info: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in info.split("\r\n") {
        if let Some(title) = line.strip_prefix("# ") {
            out.push((title.to_string(), Vec::new()));
        } else if let Some((name, _)) = line.split_once(':') {
            if let Some(last) = out.last_mut() {
                last.1.push(name.to_string());
            }
        }
    }
    out
}

fn field(info: &str, name: &str) -> Option<String> {
    info.split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{name}:")).map(String::from))
}

// ---- INFO ----

#[test]
fn info_sections_and_fields_in_redis_order() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let kura = Kura::start();
    let mut r = redis.client();
    let mut k = kura.client();
    for args in [
        &["INFO"][..],
        &["INFO", "everything"],
        &["INFO", "default"],
        &["INFO", "all"],
    ] {
        let arg = args.join(" ");
        let want = sections(&payload(&r.cmd(args)));
        let got = sections(&payload(&k.cmd(args)));
        let titles =
            |s: &[(String, Vec<String>)]| s.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
        assert_eq!(titles(&got), titles(&want), "{arg} sections");
        for ((title, w), (_, g)) in want.iter().zip(&got) {
            // These list one line per command, error or database: contents differ by nature.
            if ["Commandstats", "Errorstats", "Latencystats", "Keyspace"].contains(&title.as_str())
            {
                continue;
            }
            assert_eq!(g, w, "{arg}: fields of # {title}");
        }
    }
    // With the AOF on, Redis adds its aof_* block; so does kura.
    for c in [&mut r, &mut k] {
        assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]), "+OK\r\n");
    }
    std::thread::sleep(Duration::from_millis(200));
    let want = sections(&payload(&r.cmd(&["INFO", "persistence"])));
    let got = sections(&payload(&k.cmd(&["INFO", "persistence"])));
    assert_eq!(got, want);
}

#[test]
fn info_reports_kuras_own_numbers() {
    let kura = Kura::start();
    let mut c = kura.client();
    let mut other = kura.client();
    assert_eq!(other.cmd(&["PING"]), "+PONG\r\n");
    c.cmd(&["SET", "a", "1"]);
    c.cmd(&["SET", "b", "2"]);
    c.cmd(&["GET", "a"]);
    c.cmd(&["GET", "missing"]);
    c.cmd(&["GET"]);
    c.cmd(&["CONFIG", "GET", "maxmemory"]);
    c.cmd(&["SELECT", "3"]);
    c.cmd(&["SET", "c", "3"]);
    let info = payload(&c.cmd(&["INFO", "everything"]));
    assert_eq!(field(&info, "connected_clients").as_deref(), Some("2"));
    assert_eq!(field(&info, "redis_version").as_deref(), Some("7.0.15"));
    assert_eq!(field(&info, "tcp_port"), Some(kura.addr.port().to_string()));
    assert_eq!(
        field(&info, "process_id"),
        Some(std::process::id().to_string())
    );
    assert_eq!(field(&info, "role").as_deref(), Some("master"));
    let replid = field(&info, "master_replid").unwrap();
    assert_eq!(replid.len(), 40);
    assert!(replid.bytes().all(|b| b.is_ascii_hexdigit()));
    // No replica ever attached: as redis-server, no backlog and the offset stays 0.
    assert_eq!(field(&info, "master_repl_offset").as_deref(), Some("0"));
    assert_eq!(field(&info, "repl_backlog_active").as_deref(), Some("0"));
    assert_eq!(
        field(&info, "repl_backlog_first_byte_offset").as_deref(),
        Some("0")
    );
    kura.record_writes();
    let mut rec = kura.client();
    rec.cmd(&["SET", "recorded", "1"]);
    rec.cmd(&["DEL", "recorded"]);
    let offset = kura.state.engine.lock().stream.offset();
    let repl = rec.cmd(&["INFO", "replication"]);
    assert_eq!(field(&repl, "master_repl_offset"), Some(offset.to_string()));
    assert_eq!(field(&repl, "repl_backlog_active").as_deref(), Some("1"));
    assert!(offset > 0);
    assert_eq!(
        field(&info, "db0").as_deref(),
        Some("keys=2,expires=0,avg_ttl=0")
    );
    assert_eq!(
        field(&info, "db3").as_deref(),
        Some("keys=1,expires=0,avg_ttl=0")
    );
    assert_eq!(field(&info, "db1"), None);
    assert_eq!(field(&info, "keyspace_hits").as_deref(), Some("1"));
    assert_eq!(field(&info, "keyspace_misses").as_deref(), Some("1"));
    assert_eq!(
        field(&info, "rdb_changes_since_last_save").as_deref(),
        Some("3")
    );
    let used: u64 = field(&info, "used_memory").unwrap().parse().unwrap();
    assert!(used > 0);
    let set = field(&info, "cmdstat_set").unwrap();
    assert!(
        set.starts_with("calls=3,usec=") && set.ends_with(",rejected_calls=0,failed_calls=0"),
        "{set}"
    );
    let per_call = set.split(',').nth(2).unwrap();
    assert!(per_call.starts_with("usec_per_call=") && per_call.contains('.'));
    assert_eq!(per_call.split('.').nth(1).unwrap().len(), 2, "{per_call}");
    assert!(field(&info, "cmdstat_get")
        .unwrap()
        .ends_with("rejected_calls=1,failed_calls=0"));
    assert!(field(&info, "cmdstat_config|get").is_some());
    assert_eq!(field(&info, "errorstat_ERR").as_deref(), Some("count=1"));
    let lat = field(&info, "latency_percentiles_usec_set").unwrap();
    assert!(lat.starts_with("p50=") && lat.contains(",p99=") && lat.contains(",p99.9="));
    assert!(field(&info, "used_cpu_user").unwrap().contains('.'));

    // RESETSTAT clears the counters.
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), "+OK\r\n");
    let info = payload(&c.cmd(&["INFO", "everything"]));
    assert_eq!(field(&info, "cmdstat_set"), None);
    assert_eq!(field(&info, "errorstat_ERR"), None);
    assert_eq!(field(&info, "latency_percentiles_usec_set"), None);
    assert_eq!(field(&info, "keyspace_hits").as_deref(), Some("0"));
    assert_eq!(field(&info, "total_error_replies").as_deref(), Some("0"));
    assert_eq!(
        field(&info, "total_connections_received").as_deref(),
        Some("0")
    );
    assert!(field(&info, "cmdstat_config|resetstat").is_some());
}

// ---- CONFIG ----

#[test]
fn config_set_get_round_trips_and_takes_effect() {
    let kura = Kura::start();
    let mut c = kura.client();
    for (name, value, shown) in [
        ("maxmemory", "10mb", "10485760"),
        ("maxmemory", "0", "0"),
        ("timeout", "300", "300"),
        ("timeout", "0", "0"),
        ("hz", "20", "20"),
        ("slowlog-max-len", "5", "5"),
        ("slowlog-log-slower-than", "-1", "-1"),
        ("appendonly", "YES", "yes"),
        ("save", "900 1 300 10", "900 1 300 10"),
        ("loglevel", "verbose", "verbose"),
        ("repl-backlog-size", "2mb", "2097152"),
        ("hash-max-ziplist-entries", "64", "64"),
        ("latency-tracking", "no", "no"),
    ] {
        assert_eq!(c.cmd(&["CONFIG", "SET", name, value]), "+OK\r\n", "{name}");
        let want = format!(
            "*2\r\n${}\r\n{name}\r\n${}\r\n{shown}\r\n",
            name.len(),
            shown.len()
        );
        assert_eq!(c.cmd(&["CONFIG", "GET", name]), want);
    }
    // Run-time effects.
    assert_eq!(
        kura.state.engine.lock().stream.capacity(),
        2 * 1024 * 1024,
        "repl-backlog-size resizes the backlog"
    );
    assert_eq!(kura.state.with_config(|c| c.hz), 20);
    // Atomic: one bad value leaves every setting as it was.
    assert!(c
        .cmd(&["CONFIG", "SET", "maxmemory", "5mb", "hz", "x"])
        .starts_with("-ERR CONFIG SET failed (possibly related to argument 'hz')"));
    assert_eq!(kura.state.with_config(|c| c.maxmemory), 0);

    // requirepass: new connections must authenticate, existing ones stay authenticated.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "requirepass", "s3cret"]),
        "+OK\r\n"
    );
    let mut fresh = kura.client();
    assert_eq!(
        fresh.cmd(&["GET", "x"]),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(fresh.cmd(&["AUTH", "s3cret"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "requirepass", ""]), "+OK\r\n");

    // maxclients: the next connection is refused.
    let n = kura.state.clients.len();
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxclients", &n.to_string()]),
        "+OK\r\n"
    );
    let mut refused = kura.client();
    assert_eq!(
        String::from_utf8_lossy(&refused.read_reply()),
        "-ERR max number of clients reached\r\n"
    );
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxclients", "10000"]), "+OK\r\n");

    // timeout: an idle client is closed.
    assert_eq!(c.cmd(&["CONFIG", "SET", "timeout", "1"]), "+OK\r\n");
    let mut idle = kura.client();
    assert_eq!(idle.cmd(&["PING"]), "+PONG\r\n");
    assert!(
        idle.is_closed(Duration::from_secs(10)),
        "idle client closed"
    );
}

#[test]
fn config_rewrite_keeps_the_file_and_writes_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kura.toml");
    std::fs::write(
        &path,
        "# my settings\nmaxmemory = 0 # none\ntimeout = 0\n\n[forward]\n# forward door\nport = 24224\n",
    )
    .unwrap();
    let kura = Kura::start_with(|c| c.config_file = Some(path.clone()));
    let mut c = kura.client();
    assert_eq!(
        c.cmd(&[
            "CONFIG",
            "SET",
            "maxmemory",
            "1mb",
            "hz",
            "25",
            "loglevel",
            "warning"
        ]),
        "+OK\r\n"
    );
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]), "+OK\r\n");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("# my settings\nmaxmemory = 1048576 # none\ntimeout = 0\n"),
        "{text}"
    );
    assert!(text.contains("hz = 25\n") && text.contains("loglevel = \"warning\"\n"));
    // The test server runs its forward door on port 0: the running value is written back.
    assert!(
        text.contains("[forward]\n# forward door\nport = 0\n"),
        "{text}"
    );
    let before_forward = text.split("[forward]").next().unwrap();
    assert!(
        before_forward.contains("hz = 25"),
        "top-level settings stay top level"
    );
    let mut cfg = kura::Config::default();
    cfg.apply_toml(&text).expect("the rewritten file loads");
    assert_eq!(cfg.maxmemory, 1024 * 1024);
    assert_eq!(cfg.hz, 25);
    assert_eq!(cfg.loglevel, "warning");
    let info = payload(&c.cmd(&["INFO", "server"]));
    assert_eq!(
        field(&info, "config_file"),
        Some(path.display().to_string())
    );

    let plain = Kura::start();
    assert_eq!(
        plain.client().cmd(&["CONFIG", "REWRITE"]),
        "-ERR The server is running without a config file\r\n"
    );
}

// ---- CLIENT ----

/// Reads `name=value` fields of a CLIENT LIST line.
fn client_fields(line: &str) -> Vec<(String, String)> {
    line.split(' ')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn client_list_has_redis_fields_in_order() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let kura = Kura::start();
    let names = |c: &mut Raw| -> Vec<String> {
        let list = payload(&c.cmd(&["CLIENT", "LIST"]));
        client_fields(list.lines().next().unwrap())
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    assert_eq!(names(&mut kura.client()), names(&mut redis.client()));
    let mut c = kura.client();
    c.cmd(&["HELLO", "3"]);
    let info = c.cmd(&["CLIENT", "INFO"]);
    assert!(info.starts_with('='), "verbatim in RESP3: {info}");
    let fields = client_fields(payload(&info).trim_end());
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("cmd").as_deref(), Some("client|info"));
    assert_eq!(get("resp").as_deref(), Some("3"));
    assert_eq!(get("flags").as_deref(), Some("N"));
    assert_eq!(get("user").as_deref(), Some("default"));
    assert!(get("fd").unwrap().parse::<i64>().unwrap() > 0);
}

#[test]
fn client_list_and_kill_across_connections() {
    let kura = Kura::start();
    let mut a = kura.client();
    let mut b = kura.client();
    assert_eq!(a.cmd(&["CLIENT", "SETNAME", "alpha"]), "+OK\r\n");
    assert_eq!(a.cmd(&["SELECT", "2"]), "+OK\r\n");
    a.cmd(&["MULTI"]);
    let a_id: u64 = a_id(&mut b, "alpha");
    let list = payload(&b.cmd(&["CLIENT", "LIST"]));
    let line = list.lines().find(|l| l.contains("name=alpha")).unwrap();
    let f = client_fields(line);
    let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("db"), Some("2"));
    assert_eq!(get("flags"), Some("x"));
    assert_eq!(get("multi"), Some("0"));
    assert_eq!(get("cmd"), Some("multi"));
    let a_addr = get("addr").unwrap().to_string();
    let by_id = payload(&b.cmd(&["CLIENT", "LIST", "ID", &a_id.to_string(), "999999"]));
    assert_eq!(by_id.lines().count(), 1);
    assert!(by_id.starts_with(&format!("id={a_id} ")) && by_id.contains(" name=alpha "));

    // The new form counts; the old form answers OK or "No such client".
    assert_eq!(
        b.cmd(&["CLIENT", "KILL", "ID", &a_id.to_string()]),
        ":1\r\n"
    );
    assert!(a.is_closed(Duration::from_secs(5)), "killed client closed");
    assert_eq!(
        b.cmd(&["CLIENT", "KILL", &a_addr]),
        "-ERR No such client\r\n"
    );
    let mut c = kura.client();
    let c_addr = {
        let info = payload(&c.cmd(&["CLIENT", "INFO"]));
        client_fields(info.trim_end())
            .into_iter()
            .find(|(k, _)| k == "addr")
            .unwrap()
            .1
    };
    assert_eq!(b.cmd(&["CLIENT", "KILL", &c_addr]), "+OK\r\n");
    assert!(c.is_closed(Duration::from_secs(5)));

    // SKIPME yes (the default) spares the caller; SKIPME no closes it after the reply.
    let mut d = kura.client();
    assert_eq!(d.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(b.cmd(&["CLIENT", "KILL", "TYPE", "normal"]), ":1\r\n");
    assert!(d.is_closed(Duration::from_secs(5)));
    assert_eq!(b.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(
        b.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no"]),
        ":1\r\n"
    );
    assert!(b.is_closed(Duration::from_secs(5)));
}

fn a_id(c: &mut Raw, name: &str) -> u64 {
    let list = payload(&c.cmd(&["CLIENT", "LIST"]));
    let line = list
        .lines()
        .find(|l| l.contains(&format!("name={name} ")))
        .expect("the client is listed");
    client_fields(line)
        .into_iter()
        .find(|(k, _)| k == "id")
        .expect("an id field")
        .1
        .parse()
        .expect("a numeric id")
}

/// Runs CLIENT UNBLOCK on a client blocked in BLPOP; returns what both clients saw.
fn unblock_scenario(addr: std::net::SocketAddr) -> Vec<String> {
    let mut a = Raw::connect(addr);
    let mut b = Raw::connect(addr);
    let id = a.cmd(&["CLIENT", "ID"]);
    let id = id.trim_start_matches(':').trim_end().to_string();
    let mut seen = Vec::new();
    for reason in ["TIMEOUT", "ERROR"] {
        a.send(&[b"BLPOP", b"unblock:nothing", b"0"]);
        // Wait until the server lists the client as blocked.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let list = payload(&b.cmd(&["CLIENT", "LIST", "ID", &id]));
            if list.contains(" flags=b ") {
                seen.push("listed as blocked, cmd=blpop".to_string());
                assert!(list.contains(" cmd=blpop "), "{list}");
                break;
            }
            assert!(Instant::now() < deadline, "never blocked: {list}");
            std::thread::sleep(Duration::from_millis(10));
        }
        seen.push(b.cmd(&["CLIENT", "UNBLOCK", &id, reason]));
        seen.push(String::from_utf8_lossy(&a.read_reply()).into_owned());
    }
    seen.push(b.cmd(&["CLIENT", "UNBLOCK", &id]));
    seen
}

#[test]
fn client_unblock_like_redis() {
    let kura = Kura::start();
    let got = unblock_scenario(kura.addr);
    assert_eq!(
        got,
        [
            "listed as blocked, cmd=blpop",
            ":1\r\n",
            "*-1\r\n",
            "listed as blocked, cmd=blpop",
            ":1\r\n",
            "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n",
            ":0\r\n",
        ]
    );
    if let Some(redis) = RedisServer::start(&[]) {
        assert_eq!(unblock_scenario(redis.addr), got);
    }
}

#[test]
fn client_reply_off_and_skip() {
    let kura = Kura::start();
    let mut c = kura.client();
    // OFF: nothing until ON, whose +OK is the next thing read.
    c.send(&[b"CLIENT", b"REPLY", b"OFF"]);
    c.send(&[b"SET", b"k", b"1"]);
    c.send(&[b"GET", b"k"]);
    c.send(&[b"CLIENT", b"REPLY", b"nonsense"]);
    assert_eq!(c.cmd(&["CLIENT", "REPLY", "ON"]), "+OK\r\n");
    // SKIP: only the next command's reply is dropped.
    c.send(&[b"CLIENT", b"REPLY", b"SKIP"]);
    c.send(&[b"SET", b"k", b"2"]);
    assert_eq!(c.cmd(&["GET", "k"]), "$1\r\n2\r\n");
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
}

// ---- SLOWLOG ----

#[test]
fn slowlog_records_like_redis() {
    let kura = Kura::start();
    let mut c = kura.client();
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "slowpoke"]), "+OK\r\n");
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]),
        "+OK\r\n"
    );
    assert_eq!(c.cmd(&["SLOWLOG", "RESET"]), "+OK\r\n");
    let long = "x".repeat(140);
    c.cmd(&["SET", "k", &long]);
    let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    let mut del: Vec<&str> = vec!["DEL"];
    del.extend(many.iter().map(|s| s.as_str()));
    c.cmd(&del);
    c.cmd(&["AUTH", "secret"]);
    c.cmd(&["CONFIG", "SET", "requirepass", ""]);
    c.cmd(&["MULTI"]);
    c.cmd(&["SET", "a", "b"]);
    c.cmd(&["EXEC"]);
    // The reply lists the newest first: SET a b (EXEC itself is not logged), MULTI,
    // CONFIG SET, AUTH, DEL, SET k, SLOWLOG RESET.
    let reply = c.cmd(&["SLOWLOG", "GET", "-1"]);
    let mut r = Raw::from_bytes(reply.as_bytes());
    assert_eq!(r.line(), "*7");
    let entry = |r: &mut crate::support::ReplyBytes<'_>| -> Vec<u8> { r.element() };
    let e = String::from_utf8(entry(&mut r)).unwrap();
    assert!(e.starts_with("*6\r\n:7\r\n:"), "{e}");
    assert!(
        e.contains("*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n"),
        "{e}"
    );
    assert!(e.ends_with("$8\r\nslowpoke\r\n"), "{e}");
    let addr = kura_client_addr(&mut c);
    assert!(e.contains(&format!("${}\r\n{addr}\r\n", addr.len())), "{e}");
    let e = String::from_utf8(entry(&mut r)).unwrap();
    assert!(e.contains("*1\r\n$5\r\nMULTI\r\n"), "{e}");
    let e = String::from_utf8(entry(&mut r)).unwrap();
    assert!(
        e.contains(
            "*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$11\r\nrequirepass\r\n$10\r\n(redacted)\r\n"
        ),
        "{e}"
    );
    let e = String::from_utf8(entry(&mut r)).unwrap();
    assert!(
        e.contains("*2\r\n$4\r\nAUTH\r\n$10\r\n(redacted)\r\n"),
        "{e}"
    );
    let e = String::from_utf8(entry(&mut r)).unwrap();
    assert!(e.contains("*32\r\n$3\r\nDEL\r\n$1\r\n0\r\n"), "{e}");
    assert!(e.contains("$23\r\n... (10 more arguments)\r\n"), "{e}");
    let e = String::from_utf8(entry(&mut r)).unwrap();
    let cut = format!("{}... (12 more bytes)", "x".repeat(128));
    assert!(e.contains(&format!("${}\r\n{cut}\r\n", cut.len())), "{e}");

    // The seven above, SLOWLOG GET and CLIENT INFO.
    assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), ":9\r\n");
    assert!(c.cmd(&["SLOWLOG", "GET", "2"]).starts_with("*2\r\n"));
    // slowlog-max-len bounds the log; -1 turns it off.
    assert_eq!(c.cmd(&["CONFIG", "SET", "slowlog-max-len", "3"]), "+OK\r\n");
    c.cmd(&["PING"]);
    assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), ":3\r\n");
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]),
        "+OK\r\n"
    );
    assert_eq!(c.cmd(&["SLOWLOG", "RESET"]), "+OK\r\n");
    c.cmd(&["PING"]);
    assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), ":0\r\n");
}

fn kura_client_addr(c: &mut Raw) -> String {
    let info = payload(&c.cmd(&["CLIENT", "INFO"]));
    client_fields(info.trim_end())
        .into_iter()
        .find(|(k, _)| k == "addr")
        .expect("an addr field")
        .1
}

// ---- TOOLS ----

/// `redis-cli` in interactive mode (on a terminal) asks `COMMAND DOCS` first to build its
/// hints; with kura it gets a well-formed answer, then works as usual.
#[test]
fn redis_cli_interactive_start_up() {
    let (Some(_), Some(_)) = (need_program("redis-cli"), need_program("script")) else {
        return;
    };
    let kura = Kura::start();
    let port = kura.addr.port();
    // `script` gives redis-cli a terminal; linenoise asks the terminal for the cursor
    // position (ESC [6n), which this test answers as a terminal would.
    let mut child = Command::new("script")
        .args(["-qfec", &format!("redis-cli -p {port}"), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn script");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let wait_for = |stdin: &mut std::process::ChildStdin, what: &[u8], seen: &mut Vec<u8>| {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut answered = 0;
        loop {
            let queries = seen.windows(4).filter(|w| w == b"\x1b[6n").count();
            while answered < queries {
                stdin.write_all(b"\x1b[1;1R").unwrap();
                answered += 1;
            }
            if seen.windows(what.len()).any(|w| w == what) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            if let Ok(d) = rx.recv_timeout(Duration::from_millis(100)) {
                seen.extend(d);
            }
        }
    };
    assert!(
        wait_for(
            &mut stdin,
            format!("127.0.0.1:{port}> ").as_bytes(),
            &mut seen
        ),
        "no prompt: {}",
        String::from_utf8_lossy(&seen)
    );
    stdin.write_all(b"ping\r").unwrap();
    let ok = wait_for(&mut stdin, b"PONG", &mut seen);
    child.kill().ok();
    child.wait().ok();
    let text = String::from_utf8_lossy(&seen).to_string();
    assert!(ok, "no PONG: {text}");
    assert!(!text.to_lowercase().contains("warning"), "{text}");
    assert!(!text.contains("ERR"), "{text}");
    let info = payload(&kura.client().cmd(&["INFO", "commandstats"]));
    let docs = field(&info, "cmdstat_command|docs").expect("redis-cli asked COMMAND DOCS");
    assert!(docs.ends_with("rejected_calls=0,failed_calls=0"), "{docs}");

    // Without a terminal, redis-cli reads commands from its input.
    let mut piped = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redis-cli");
    piped.stdin.take().unwrap().write_all(b"ping\n").unwrap();
    let out = piped.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "PONG\n");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// redis-benchmark reads `CONFIG GET save` and `appendonly` first and warns when it cannot.
#[test]
fn redis_benchmark_reads_the_config() {
    let Some(bench) = need_program("redis-benchmark") else {
        return;
    };
    let kura = Kura::start();
    let out = Command::new(bench)
        .args([
            "-p",
            &kura.addr.port().to_string(),
            "-t",
            "ping",
            "-n",
            "200",
            "-q",
        ])
        .output()
        .expect("run redis-benchmark");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("WARNING"), "{text}");
    assert!(
        text.contains("PING_INLINE") && text.contains("PING_MBULK"),
        "{text}"
    );
}

// ---- SHUTDOWN ----

#[test]
fn shutdown_force_exits_though_the_final_save_fails() {
    let kura = Kura::start();
    let blocker = kura.state.with_config(|c| c.dir.join("not-a-dir"));
    std::fs::write(&blocker, b"x").unwrap();
    kura.state.config.write().unwrap().dir = blocker;
    let mut c = kura.client();
    c.cmd(&["SET", "k", "v"]);
    // Without FORCE a failed save keeps the server up (Redis 7.0's reply).
    assert_eq!(
        c.cmd(&["SHUTDOWN", "SAVE"]),
        "-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
    );
    assert_eq!(c.cmd(&["GET", "k"]), "$1\r\nv\r\n");
    c.send(&[b"SHUTDOWN", b"SAVE", b"FORCE"]);
    assert!(
        c.try_read_reply().is_err(),
        "FORCE: no reply, the server goes"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(kura.addr).is_ok() {
        assert!(Instant::now() < deadline, "the listener is still open");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn shutdown_stops_the_server() {
    let kura = Kura::start();
    let mut c = kura.client();
    assert_eq!(
        c.cmd(&["SHUTDOWN", "ABORT"]),
        "-ERR No shutdown in progress.\r\n"
    );
    assert_eq!(
        c.cmd(&["SHUTDOWN", "SAVE", "NOSAVE"]),
        "-ERR syntax error\r\n"
    );
    c.cmd(&["MULTI"]);
    assert_eq!(
        c.cmd(&["SHUTDOWN"]),
        "-ERR Command not allowed inside a transaction\r\n"
    );
    c.cmd(&["DISCARD"]);
    let mut other = kura.client();
    assert_eq!(other.cmd(&["PING"]), "+PONG\r\n");
    c.send(&[b"SHUTDOWN", b"NOSAVE"]);
    // No reply: the connection just closes, as Redis exits.
    assert!(c.try_read_reply().is_err());
    assert!(other.is_closed(Duration::from_secs(5)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(kura.addr).is_ok() {
        assert!(Instant::now() < deadline, "the listener is still open");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An EXEC whose queue holds a write is refused like the write, and aborts the transaction,
/// when the server turned read-only or ran out of memory between MULTI and EXEC (Redis
/// `rejectCommand` → `execCommandAbort`): the same bytes from kura as from redis-server.
#[test]
fn exec_of_queued_writes_is_aborted_by_readonly_and_oom() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let kura = Kura::start();
    let nowhere = crate::support::free_port().to_string();
    let run = |a: &mut Raw, b: &mut Raw| {
        let mut out = Vec::new();
        for (change, undo) in [
            (
                vec!["REPLICAOF", "127.0.0.1", nowhere.as_str()],
                vec!["REPLICAOF", "NO", "ONE"],
            ),
            (
                vec!["CONFIG", "SET", "maxmemory", "1"],
                vec!["CONFIG", "SET", "maxmemory", "0"],
            ),
        ] {
            out.push(a.cmd(&["MULTI"]));
            out.push(a.cmd(&["RPUSH", "queued", "x"]));
            out.push(b.cmd(&change));
            out.push(a.cmd(&["EXEC"]));
            // The transaction is gone: EXEC again has no MULTI.
            out.push(a.cmd(&["EXEC"]));
            b.cmd(&undo);
            out.push(a.cmd(&["EXISTS", "queued"]));
        }
        out
    };
    let want = run(&mut redis.client(), &mut redis.client());
    let got = run(&mut kura.client(), &mut kura.client());
    assert_eq!(got, want);
    assert!(want[3].starts_with("-EXECABORT Transaction discarded because of: READONLY"));
    assert!(want[9].starts_with("-EXECABORT Transaction discarded because of: OOM"));
}
