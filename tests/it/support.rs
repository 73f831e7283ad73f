//! Test support: in-process kura servers, real redis-server processes, raw RESP clients.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kura::state::ServerState;
use kura::{Config, Server};

/// A kura server running in-process on its own runtime thread.
pub struct Kura {
    /// RESP address.
    pub addr: SocketAddr,
    /// Forward door address (TCP, and UDP heartbeats on the same port).
    pub forward: SocketAddr,
    /// HTTP door address (`None` when a test turned the door off).
    pub http: Option<SocketAddr>,
    /// Shared state (clock, engine) for white-box checks.
    pub state: Arc<ServerState>,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
}

impl Kura {
    /// Starts kura on a free port with `tweak` applied to a test config.
    pub fn start_with(tweak: impl FnOnce(&mut Config)) -> Kura {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = Config {
            port: 0,
            dir: dir.path().to_path_buf(),
            save: vec![],
            ..Config::default()
        };
        cfg.forward.port = 0;
        cfg.http.port = 0;
        tweak(&mut cfg);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let running = runtime.block_on(Server::start(cfg)).expect("kura starts");
        let addr = running.resp_addr;
        let forward = running.forward_addr.unwrap_or(addr);
        let http = running.http_addr;
        let state = running.state.clone();
        // Keep the handle alive inside the runtime so the drain channel stays open.
        runtime.spawn(async move {
            let mut running = running;
            running.shutdown_requested().await;
            running
                .shutdown(kura::config::ShutdownFlags::default())
                .await;
        });
        Kura {
            addr,
            forward,
            http,
            state,
            runtime: Some(runtime),
            _dir: dir,
        }
    }

    /// Starts kura with the test defaults.
    pub fn start() -> Kura {
        Kura::start_with(|_| {})
    }

    /// Opens a raw client.
    pub fn client(&self) -> Raw {
        Raw::connect(self.addr)
    }

    /// Starts recording the write stream, as a replica attaching would, so a test can read
    /// what kura propagates.
    pub fn record_writes(&self) {
        self.state.engine.lock().stream.activate();
    }
}

impl Drop for Kura {
    fn drop(&mut self) {
        self.state.request_shutdown();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// Reports whether tests run under CI, where missing peers are failures, not skips.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Finds an external program, or explains the skip (panics under CI).
pub fn need_program(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if under_ci() {
            panic!("{name} is required under CI but was not found on PATH");
        }
        eprintln!("SKIPPED: {name} not found on PATH (install it to run this test)");
    }
    found
}

/// Runs the real `redis-check-rdb` on `path`, asserts it accepts the file, and returns its
/// report; `None` (skip) when the program is absent.
pub fn redis_check_rdb(path: &std::path::Path) -> Option<String> {
    let check = need_program("redis-check-rdb")?;
    let out = Command::new(check)
        .arg(path)
        .output()
        .expect("run redis-check-rdb");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.contains("RDB looks OK"),
        "redis-check-rdb refuses {}: {text}",
        path.display()
    );
    Some(text)
}

/// Returns a free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A real redis-server started for a test, killed on drop.
pub struct RedisServer {
    /// Its address.
    pub addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis-server` on a free port with extra arguments, or `None` (skip) if absent.
    pub fn start(extra: &[&str]) -> Option<RedisServer> {
        let bin = need_program("redis-server")?;
        // The port is free when chosen but may be taken (by a kura binding port 0 in a
        // parallel test) before redis-server binds it: check that the server answering is
        // our child, and retry on another port otherwise.
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = free_port();
            let mut cmd = Command::new(&bin);
            cmd.args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--dir"])
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
            let child = cmd.spawn().expect("spawn redis-server");
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(addr).is_err() {
                assert!(Instant::now() < deadline, "redis-server did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
            let server = RedisServer {
                addr,
                child,
                _dir: dir,
            };
            let mut c = server.client();
            // With --requirepass, INFO needs AUTH first.
            if let Some(i) = extra.iter().position(|a| *a == "--requirepass") {
                if let Some(pw) = extra.get(i + 1) {
                    c.cmd(&["AUTH", pw]);
                }
            }
            let info = c.cmd(&["INFO", "server"]);
            drop(c);
            if info.contains(&format!("process_id:{}\r\n", server.child.id())) {
                return Some(server);
            }
        }
        panic!("redis-server did not start on a free port");
    }

    /// Opens a raw client.
    pub fn client(&self) -> Raw {
        Raw::connect(self.addr)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw RESP client that returns replies as the exact bytes received.
pub struct Raw {
    /// The socket's reading side.
    pub reader: BufReader<TcpStream>,
    /// The socket.
    pub stream: TcpStream,
}

impl Raw {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        Raw { reader, stream }
    }

    /// Sends one command as a multibulk.
    pub fn send(&mut self, args: &[&[u8]]) {
        self.stream.write_all(&encode_command(args)).expect("write");
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends a command and returns the reply's exact bytes.
    pub fn cmd(&mut self, args: &[&str]) -> String {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.send(&a);
        String::from_utf8_lossy(&self.read_reply()).into_owned()
    }

    /// Reads one complete reply and returns its exact bytes.
    pub fn read_reply(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.read_into(&mut out).expect("read reply");
        out
    }

    /// Reads one reply, or the I/O error (EOF shows as `UnexpectedEof`).
    pub fn try_read_reply(&mut self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_into(&mut out)?;
        Ok(out)
    }

    fn read_line(&mut self, out: &mut Vec<u8>) -> std::io::Result<String> {
        let mut line = Vec::new();
        let n = self.reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        out.extend_from_slice(&line);
        Ok(String::from_utf8_lossy(&line).trim_end().to_string())
    }

    fn read_into(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        let line = self.read_line(out)?;
        let (kind, rest) = line.split_at(1);
        let n: i64 = rest.parse().unwrap_or(0);
        match kind {
            "$" | "=" | "!" if n >= 0 => {
                let mut buf = vec![0u8; n as usize + 2];
                self.reader.read_exact(&mut buf)?;
                out.extend_from_slice(&buf);
            }
            "*" | "~" | ">" => {
                for _ in 0..n.max(0) {
                    self.read_into(out)?;
                }
            }
            "%" | "|" => {
                for _ in 0..n.max(0) * 2 {
                    self.read_into(out)?;
                }
                if kind == "|" {
                    self.read_into(out)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Returns INFO memory's `used_memory` (a test with no such field fails here).
    pub fn used_memory(&mut self) -> u64 {
        let info = self.cmd(&["INFO", "memory"]);
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("INFO memory has used_memory")
    }

    /// Reports whether the server closed the connection (reads EOF within `wait`).
    pub fn is_closed(&mut self, wait: Duration) -> bool {
        self.stream.set_read_timeout(Some(wait)).expect("timeout");
        let mut b = [0u8; 1];
        // A timeout means the connection is still open (and silent); data means open too.
        let closed = match self.reader.read(&mut b) {
            Ok(n) => n == 0,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        self.stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        closed
    }
}

/// Encodes a command as a RESP multibulk.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    kura::replication::replica::conn::command(args)
}

/// A cursor over reply bytes already read (for splitting arrays in comparisons).
pub struct ReplyBytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Raw {
    /// Returns a cursor over `data`.
    pub fn from_bytes(data: &[u8]) -> ReplyBytes<'_> {
        ReplyBytes { data, pos: 0 }
    }
}

impl ReplyBytes<'_> {
    /// Returns the next line without its CRLF.
    pub fn line(&mut self) -> String {
        let rest = &self.data[self.pos..];
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or(rest.len());
        self.pos += (end + 2).min(rest.len());
        String::from_utf8_lossy(&rest[..end]).into_owned()
    }

    /// Returns the bytes of the next complete element.
    pub fn element(&mut self) -> Vec<u8> {
        let start = self.pos;
        self.skip();
        self.data[start..self.pos].to_vec()
    }

    fn skip(&mut self) {
        let line = self.line();
        if line.is_empty() {
            return;
        }
        let (kind, rest) = line.split_at(1);
        let n: i64 = rest.parse().unwrap_or(0);
        match kind {
            "$" | "=" | "!" if n >= 0 => {
                self.pos = (self.pos + n as usize + 2).min(self.data.len())
            }
            "*" | "~" | ">" => (0..n.max(0)).for_each(|_| self.skip()),
            "%" => (0..n.max(0) * 2).for_each(|_| self.skip()),
            _ => {}
        }
    }
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until something accepts TCP connections on `addr` (at most `timeout`).
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) -> bool {
    wait_until(timeout, || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    })
}

/// Reads this process's open-file limits (soft, hard) from `/proc/self/limits`.
pub fn nofile_limits() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let mut nums = line["Max open files".len()..].split_whitespace().map(|w| {
        if w == "unlimited" {
            Some(u64::MAX)
        } else {
            w.parse().ok()
        }
    });
    Some((nums.next()??, nums.next()??))
}

/// Makes sure this process may open at least `want` files, raising the soft limit (and, when
/// allowed, the hard one) with `prlimit(1)` on our own pid: no unsafe code needed.
///
/// Returns the soft limit in force afterwards.
pub fn raise_nofile_limit(want: u64) -> u64 {
    let Some((soft, hard)) = nofile_limits() else {
        return 0;
    };
    if soft >= want {
        return soft;
    }
    let pid = std::process::id().to_string();
    // Root may raise the hard limit too; others can go up to the hard limit.
    for (s, h) in [(want, want.max(hard)), (hard.min(want), hard)] {
        let ok = Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={s}:{h}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|st| st.success());
        if ok && nofile_limits().is_some_and(|(s, _)| s >= want) {
            break;
        }
    }
    nofile_limits().map_or(soft, |(s, _)| s)
}

/// A kura binary started as its own process (`target/debug/kura`), killed on drop if still
/// running.
pub struct KuraProcess {
    /// The RESP address.
    pub addr: SocketAddr,
    /// The process.
    pub child: Child,
    /// Its data directory.
    pub dir: tempfile::TempDir,
    /// Its log (standard output), collected by a thread so the pipe never fills.
    log: Arc<std::sync::Mutex<String>>,
}

impl KuraProcess {
    /// The flags every test instance gets: the given RESP port, no saving, a private data
    /// dir, and port 0 (any free port) for the other doors.
    pub fn base_args(port: u16, dir: &std::path::Path) -> Vec<String> {
        vec![
            "--port".into(),
            port.to_string(),
            "--save".into(),
            String::new(),
            "--dir".into(),
            dir.display().to_string(),
            "--forward-port".into(),
            "0".into(),
            "--http-port".into(),
            "0".into(),
        ]
    }

    /// Spawns the kura binary with `args`, plain logs on piped stdout and stderr.
    pub fn spawn(args: &[String]) -> Child {
        Self::spawn_env(args, &[])
    }

    /// Spawns the kura binary with `args` and extra environment variables (`NOTIFY_SOCKET`).
    pub fn spawn_env(args: &[String], env: &[(&str, &str)]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_kura"))
            .args(args)
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kura")
    }

    /// Starts the binary with the base flags plus `extra`, and waits until it is ready.
    ///
    /// kura binds port 0 and the test reads the address from its "ready to accept
    /// connections" log line: a port picked here and bound there could be taken in between
    /// by a parallel test. Panics with the process's output if it exits or does not come up.
    pub fn start(extra: &[&str]) -> KuraProcess {
        Self::start_env(extra, &[])
    }

    /// [`KuraProcess::start`] with extra environment variables.
    pub fn start_env(extra: &[&str], env: &[(&str, &str)]) -> KuraProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut args = Self::base_args(0, dir.path());
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut child = Self::spawn_env(&args, env);
        let log = Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(addr) = ready_addr(&line) {
                        sent = tx.send(addr).is_ok();
                    }
                }
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                let out = log.lock().map(|l| l.clone()).unwrap_or_default();
                panic!("kura did not become ready ({status:?}): {out}{err}");
            }
        };
        KuraProcess {
            addr,
            child,
            dir,
            log,
        }
    }

    /// Returns what kura logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Opens a raw client.
    pub fn client(&self) -> Raw {
        Raw::connect(self.addr)
    }

    /// Sends a signal with `kill(1)` (the tests forbid unsafe code, so no libc::kill).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the process to exit (at most `timeout`) and returns its status, or `None`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Returns what the process wrote to stderr (call after it exited).
    pub fn stderr(&mut self) -> String {
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }
}

/// Parses the first RESP address from kura's "ready to accept connections" log line
/// (`… ready to accept connections tcp addrs=[127.0.0.1:41234]`); a wildcard address is
/// reached through loopback.
fn ready_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("ready to accept connections")?..];
    let list = &rest[rest.find('[')? + 1..rest.rfind(']')?];
    let first = list.split(", ").next()?;
    let mut addr: SocketAddr = first.parse().ok()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Some(addr)
}

impl Drop for KuraProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---- A SMALL RESP READER (for tests comparing whole datasets) ----

/// A parsed reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Resp {
    /// `+`
    Simple(String),
    /// `-`
    Error(String),
    /// `:`
    Int(i64),
    /// `$`, `None` for a nil bulk.
    Bulk(Option<Vec<u8>>),
    /// `*`
    Array(Vec<Resp>),
}

/// Parses exactly one reply.
pub fn parse(data: &[u8]) -> Resp {
    let (r, used) = parse_at(data, 0);
    assert_eq!(used, data.len(), "one reply expected");
    r
}

/// Parses the reply at `pos`; returns it and the position after it.
pub fn parse_at(data: &[u8], pos: usize) -> (Resp, usize) {
    let end = pos
        + data[pos..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("line");
    let line = String::from_utf8_lossy(&data[pos + 1..end]).into_owned();
    let next = end + 2;
    match data[pos] {
        b'+' => (Resp::Simple(line), next),
        b'-' => (Resp::Error(line), next),
        b':' => (Resp::Int(line.parse().expect("int")), next),
        b'$' => {
            let n: i64 = line.parse().expect("len");
            if n < 0 {
                return (Resp::Bulk(None), next);
            }
            let n = n as usize;
            (
                Resp::Bulk(Some(data[next..next + n].to_vec())),
                next + n + 2,
            )
        }
        b'*' => {
            let n: i64 = line.parse().expect("count");
            let mut items = Vec::new();
            let mut at = next;
            for _ in 0..n.max(0) {
                let (item, after) = parse_at(data, at);
                items.push(item);
                at = after;
            }
            (Resp::Array(items), at)
        }
        other => panic!("unexpected reply type {}", other as char),
    }
}

/// Sends a command and parses its reply.
pub fn call(c: &mut Raw, args: &[&[u8]]) -> Resp {
    c.send(args);
    parse(&c.read_reply())
}

/// Sends a command that must not fail.
pub fn ok(c: &mut Raw, args: &[&str]) {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    if let Resp::Error(e) = call(c, &a) {
        panic!("{args:?}: {e}");
    }
}

/// The bulks of an array reply.
pub fn bulks(r: Resp) -> Vec<Vec<u8>> {
    match r {
        Resp::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Resp::Bulk(Some(b)) => b,
                other => panic!("not a bulk: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

/// An HTTP answer read by [`http`].
#[derive(Debug)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// Header lines, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl HttpReply {
    /// Returns header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Returns the body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses the body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Sends one HTTP/1.0 request (the server closes after the answer, so the body is simply
/// everything until EOF, whatever its length or framing) and reads the answer.
pub fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpReply {
    try_http(addr, method, path, headers)
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"))
}

/// [`http`] that returns connection and framing errors instead of panicking.
pub fn try_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpReply> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let bad = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not HTTP: {}", String::from_utf8_lossy(&raw)),
        )
    };
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(bad)?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(HttpReply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

/// `GET path` with [`try_http`]: (status, body as text), for polling a process that may not
/// listen yet.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    try_http(addr, "GET", path, &[]).map(|r| (r.status, r.text()))
}

/// Percent-encodes a query-string value (everything but RFC 3986's unreserved characters).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One sample of a Prometheus text-format exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name (with `_bucket`/`_sum`/`_count` for histograms).
    pub name: String,
    /// Labels in the order written.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// Returns the value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the samples of a text-format exposition (comments skipped, label values
/// unescaped). Panics on a line it cannot read, so a malformed body fails the test.
pub fn parse_exposition(body: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in body.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("no value: {line}"));
        let name = line[..name_end].to_string();
        let mut labels = Vec::new();
        let mut rest = &line[name_end..];
        if let Some(mut l) = rest.strip_prefix('{') {
            loop {
                l = l.trim_start_matches([',', ' ']);
                if let Some(after) = l.strip_prefix('}') {
                    rest = after;
                    break;
                }
                let (key, v) = l
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("bad label in: {line}"));
                let mut value = String::new();
                let mut chars = v.char_indices();
                let end = loop {
                    match chars.next() {
                        Some((i, '"')) => break i,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c)) => value.push(c),
                            None => panic!("bad escape in: {line}"),
                        },
                        Some((_, c)) => value.push(c),
                        None => panic!("unterminated label value in: {line}"),
                    }
                };
                labels.push((key.trim().to_string(), value));
                l = &v[end + 1..];
            }
        }
        let value = rest
            .split_whitespace()
            .next()
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}
