//! Real client tools against kura: `redis-cli` (plain, `--raw`, `-3`, `-n`, `--pipe`), the
//! `redis` crate (sync and async, pipelines, transactions), and a deep pipeline written
//! without reading, as fluent-plugin-redis does.
//!
//! `redis-cli` runs against kura and, when present, against a real redis-server with the
//! same arguments: its output must be the same (`shared/spec/redis.md` §6.2).

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{encode_command, need_program, Kura, Raw, RedisServer};

/// What one `redis-cli` run printed.
#[derive(Debug, PartialEq, Eq)]
struct CliRun {
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

fn redis_cli(addr: SocketAddr, args: &[&str], stdin: Option<&std::path::Path>) -> CliRun {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match stdin {
        Some(path) => cmd.stdin(std::fs::File::open(path).expect("open stdin file")),
        None => cmd.stdin(Stdio::null()),
    };
    let out = cmd.output().expect("run redis-cli");
    CliRun {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code(),
    }
}

#[test]
fn redis_cli_prints_the_same_as_against_redis() {
    if need_program("redis-cli").is_none() {
        return;
    }
    let kura = Kura::start();
    let redis = RedisServer::start(&[]);
    // (arguments, what redis-cli prints on stdout; stdout is not a terminal, so raw output
    // is the default and --no-raw asks for the formatted one)
    let runs: &[(&[&str], &str)] = &[
        (&["PING"], "PONG\n"),
        (&["SET", "greeting", "hello world"], "OK\n"),
        (&["GET", "greeting"], "hello world\n"),
        (&["--raw", "GET", "greeting"], "hello world\n"),
        (&["--no-raw", "GET", "greeting"], "\"hello world\"\n"),
        (&["GET", "missing"], "\n"),
        (&["--no-raw", "GET", "missing"], "(nil)\n"),
        (
            &["--no-raw", "SET", "a"],
            "(error) ERR wrong number of arguments for 'set' command\n",
        ),
        // RESP3: redis-cli sends HELLO 3 first.
        (&["-3", "PING"], "PONG\n"),
        (&["-3", "--no-raw", "GET", "missing"], "(nil)\n"),
        (&["-3", "--no-raw", "GET", "greeting"], "\"hello world\"\n"),
        (&["-3", "HSET", "h", "f", "v"], "1\n"),
        (&["-3", "--no-raw", "HGETALL", "h"], "1# \"f\" => \"v\"\n"),
        (&["--no-raw", "HGETALL", "h"], "1) \"f\"\n2) \"v\"\n"),
        // -n sends SELECT first.
        (&["-n", "2", "SET", "indb2", "x"], "OK\n"),
        (&["-n", "2", "GET", "indb2"], "x\n"),
        (&["GET", "indb2"], "\n"),
        (&["-n", "2", "--no-raw", "DBSIZE"], "(integer) 1\n"),
        (&["-n", "99", "PING"], "PONG\n"),
    ];
    let mut failures = Vec::new();
    for (args, want) in runs {
        let got = redis_cli(kura.addr, args, None);
        if got.stdout != *want {
            failures.push(format!("kura {args:?}: want {want:?}, got {got:?}"));
        }
        if let Some(r) = &redis {
            let theirs = redis_cli(r.addr, args, None);
            if theirs.stdout != *want {
                failures.push(format!("redis {args:?}: want {want:?}, got {theirs:?}"));
            }
            if theirs != got {
                failures.push(format!("{args:?}: redis {theirs:?}\n  kura {got:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn redis_cli_pipe_of_a_million_commands() {
    if need_program("redis-cli").is_none() {
        return;
    }
    const N: usize = 1_000_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("commands.resp");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        for i in 0..N {
            let cmd = if i % 2 == 0 {
                let (k, v) = (format!("key:{i}"), format!("value-{i}"));
                encode_command(&[b"SET", k.as_bytes(), v.as_bytes()])
            } else {
                let (k, v) = (format!("list:{}", i % 10), format!("{{\"n\":{i}}}"));
                encode_command(&[b"RPUSH", k.as_bytes(), v.as_bytes()])
            };
            f.write_all(&cmd).expect("write");
        }
        f.flush().expect("flush");
    }
    let kura = Kura::start();
    let run = redis_cli(kura.addr, &["--pipe"], Some(&path));
    assert!(
        run.stdout.contains(&format!("errors: 0, replies: {N}")),
        "redis-cli --pipe: {run:?}"
    );
    assert_eq!(run.code, Some(0), "redis-cli --pipe: {run:?}");
    let mut c = kura.client();
    // 500,000 strings and the five lists list:1, :3, :5, :7, :9.
    assert_eq!(c.cmd(&["DBSIZE"]), format!(":{}\r\n", N / 2 + 5));
    for l in [1, 3, 5, 7, 9] {
        assert_eq!(
            c.cmd(&["LLEN", &format!("list:{l}")]),
            format!(":{}\r\n", N / 10)
        );
    }
    assert_eq!(c.cmd(&["GET", "key:999998"]), "$12\r\nvalue-999998\r\n");
    assert_eq!(
        c.cmd(&["LINDEX", "list:9", "-1"]),
        "$12\r\n{\"n\":999999}\r\n"
    );
}

#[test]
fn redis_crate_sync_and_async() {
    use redis::{AsyncCommands, Commands};

    let kura = Kura::start();
    let client = redis::Client::open(format!("redis://{}/", kura.addr)).expect("client");
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(10))
        .expect("connect");
    let _: () = con.set("a", "hello").expect("SET");
    let a: String = con.get("a").expect("GET");
    assert_eq!(a, "hello");
    let missing: Option<String> = con.get("missing").expect("GET missing");
    assert_eq!(missing, None);
    let n: i64 = con.incr("counter", 5).expect("INCRBY");
    assert_eq!(n, 5);
    let err = con.incr::<_, _, i64>("a", 1).expect_err("INCR on text");
    assert_eq!(err.code(), Some("ERR"));

    // A pipeline of 1000 commands in one write.
    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.set(format!("p:{i}"), i).ignore();
    }
    for i in 0..500 {
        pipe.get(format!("p:{i}"));
    }
    let values: Vec<i64> = pipe.query(&mut con).expect("pipeline");
    assert_eq!(values, (0..500).collect::<Vec<i64>>());

    // A transaction: MULTI … EXEC.
    let (x, y): (i64, i64) = redis::pipe()
        .atomic()
        .incr("tx", 1)
        .incr("tx", 1)
        .query(&mut con)
        .expect("MULTI/EXEC");
    assert_eq!((x, y), (1, 2));

    // The async multiplexed connection, with requests in flight together.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut con = client
            .get_multiplexed_tokio_connection()
            .await
            .expect("async connect");
        let writes = (0..100).map(|i| {
            let mut con = con.clone();
            async move { con.set::<_, _, ()>(format!("async:{i}"), i).await }
        });
        for r in futures_join_all(writes).await {
            r.expect("async SET");
        }
        let v: i64 = con.get("async:42").await.expect("async GET");
        assert_eq!(v, 42);
        let s: String = con.get("a").await.expect("async GET");
        assert_eq!(s, "hello");
    });
}

/// Awaits every future concurrently (the futures crate is not a dependency).
async fn futures_join_all<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

/// fluent-plugin-redis writes a whole chunk of `MULTI / HMSET / EXPIRE / EXEC` groups before
/// reading any reply. kura must go on reading while 400,000 replies pile up unread: if it
/// stopped reading when the client's receive window filled, both sides would wait forever.
#[test]
fn deep_pipeline_written_before_reading() {
    const GROUPS: usize = 100_000;
    let kura = Kura::start();
    let mut c = kura.client();
    // A deadlock shows up as a write timeout, not a hung test.
    c.stream
        .set_write_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let mut all = Vec::with_capacity(GROUPS * 130);
    for i in 0..GROUPS {
        let key = format!("tag:{}", i % 1000);
        let (t, msg) = (i.to_string(), format!("record {i}"));
        all.extend_from_slice(&encode_command(&[b"MULTI"]));
        all.extend_from_slice(&encode_command(&[
            b"HMSET",
            key.as_bytes(),
            b"time",
            t.as_bytes(),
            b"message",
            msg.as_bytes(),
        ]));
        all.extend_from_slice(&encode_command(&[b"EXPIRE", key.as_bytes(), b"3600"]));
        all.extend_from_slice(&encode_command(&[b"EXEC"]));
    }
    c.send_raw(&all);
    for i in 0..GROUPS {
        let group = [
            c.read_reply(),
            c.read_reply(),
            c.read_reply(),
            c.read_reply(),
        ]
        .concat();
        assert_eq!(
            String::from_utf8_lossy(&group),
            "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n:1\r\n",
            "group {i}"
        );
    }
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(
        c.cmd(&["HGET", "tag:7", "message"]),
        format!("$12\r\nrecord {}\r\n", GROUPS - 1000 + 7)
    );
    let ttl = c.cmd(&["TTL", "tag:7"]);
    assert!(ttl == ":3600\r\n" || ttl == ":3599\r\n", "TTL {ttl}");
    assert_eq!(c.cmd(&["DBSIZE"]), ":1000\r\n");
}

/// Two clients at once: one mid-way through a huge pipeline does not starve another.
#[test]
fn a_pipelining_client_does_not_block_others() {
    let kura = Kura::start();
    let mut bulk = kura.client();
    let mut all = Vec::new();
    for i in 0..50_000 {
        all.extend_from_slice(&encode_command(&[
            b"SET",
            format!("b:{i}").as_bytes(),
            b"x",
        ]));
    }
    bulk.send_raw(&all);
    // Replies to `bulk` stay unread; another client is served meanwhile.
    let mut other: Raw = kura.client();
    assert_eq!(other.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(other.cmd(&["SET", "o", "1"]), "+OK\r\n");
    for _ in 0..50_000 {
        assert_eq!(bulk.read_reply(), b"+OK\r\n");
    }
    assert_eq!(other.cmd(&["GET", "b:49999"]), "$1\r\nx\r\n");
}

/// A blocking command in the middle of a pipeline written before reading: while the client
/// waits, kura keeps reading the rest (as Redis does) instead of waiting for the client to
/// take the replies it owes, which the client does only after it has written everything.
#[test]
fn blocking_command_inside_a_deep_pipeline() {
    const AFTER: usize = 200_000;
    let kura = Kura::start();
    let mut c = kura.client();
    c.stream
        .set_write_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let mut all = Vec::new();
    for i in 0..50_000 {
        all.extend_from_slice(&encode_command(&[
            b"SET",
            format!("a:{i}").as_bytes(),
            b"x",
        ]));
    }
    all.extend_from_slice(&encode_command(&[b"BLPOP", b"nothing", b"1"]));
    for i in 0..AFTER {
        all.extend_from_slice(&encode_command(&[
            b"SET",
            format!("b:{i}").as_bytes(),
            b"y",
        ]));
    }
    c.send_raw(&all);
    for i in 0..50_000 {
        assert_eq!(c.read_reply(), b"+OK\r\n", "SET a:{i}");
    }
    assert_eq!(c.read_reply(), b"*-1\r\n", "BLPOP timing out");
    for i in 0..AFTER {
        assert_eq!(c.read_reply(), b"+OK\r\n", "SET b:{i}");
    }
    assert_eq!(c.cmd(&["GET", "b:199999"]), "$1\r\ny\r\n");
}
