//! The kura binary as an operator runs it: flags, config files, protected mode, passwords,
//! and a clean exit on SIGTERM.
//!
//! Each test spawns `target/debug/kura` (`CARGO_BIN_EXE_kura`) on free ports with
//! `--save "" --dir <tmp>`; signals go through `kill(1)` because the crate forbids unsafe code.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::{free_port, KuraProcess};

/// Runs the binary with `args` on top of the base flags and expects it to exit by itself
/// within 30 s; returns the status and what it printed (stdout + stderr).
fn run_to_exit(args: &[&str]) -> (ExitStatus, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut all = KuraProcess::base_args(free_port(), dir.path());
    all.extend(args.iter().map(|s| s.to_string()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_kura"))
        .args(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kura");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kura {args:?} kept running; it was expected to refuse to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut text = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut text);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    (status, text)
}

fn manifest_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn starts_answers_and_exits_zero_on_sigterm() {
    let mut kura = KuraProcess::start(&[]);
    let mut c = kura.client();
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), "$1\r\nv\r\n");

    // A client pipelining ECHO 0, ECHO 1, … while SIGTERM arrives: every command kura took
    // is answered in full and in order, then the connection ends cleanly (no torn reply,
    // no reset), and the process exits 0.
    const N: usize = 100_000;
    let mut stream = TcpStream::connect(kura.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let feeder = std::thread::spawn(move || {
        let mut batch = Vec::new();
        for i in 0..N {
            let n = i.to_string();
            batch.extend_from_slice(&crate::support::encode_command(&[b"ECHO", n.as_bytes()]));
            if batch.len() > 64 * 1024 {
                if writer.write_all(&batch).is_err() {
                    return;
                }
                batch.clear();
            }
        }
        let _ = writer.write_all(&batch);
    });
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut signalled = false;
    let mut next = 0usize;
    let mut reset = None;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                reset = Some(e);
                break;
            }
        }
        // Check complete replies as they come; keep a torn tail for the next read.
        let mut pos = 0;
        while let Some(len) = complete_echo(&got[pos..], next) {
            pos += len;
            next += 1;
        }
        got.drain(..pos);
        if !signalled && next >= 1000 {
            kura.signal("TERM");
            signalled = true;
        }
    }
    assert!(
        signalled,
        "only {next} replies arrived before the connection ended"
    );
    assert!(
        reset.is_none(),
        "connection reset after {next} replies: {reset:?}"
    );
    assert!(
        got.is_empty(),
        "the stream ended inside a reply after {next} replies: {:?}",
        String::from_utf8_lossy(&got[..got.len().min(100)])
    );
    let _ = feeder.join();
    let status = kura.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "kura did not exit 0 after SIGTERM: {status:?} {}",
        kura.stderr()
    );
    // And it no longer listens, and says why it stopped.
    assert!(TcpStream::connect(kura.addr).is_err());
    assert!(
        crate::support::wait_until(Duration::from_secs(5), || kura
            .log()
            .contains("received SIGTERM")),
        "no SIGTERM line in the log:\n{}",
        kura.log()
    );
}

/// Returns the length of `ECHO <expected>`'s reply at the start of `data`, or `None` while
/// it is incomplete. Panics if the reply is anything else.
fn complete_echo(data: &[u8], expected: usize) -> Option<usize> {
    let want = expected.to_string();
    let reply = format!("${}\r\n{want}\r\n", want.len());
    let n = reply.len().min(data.len());
    assert_eq!(
        &data[..n],
        &reply.as_bytes()[..n],
        "reply {expected} is not ECHO {expected}'s"
    );
    (data.len() >= reply.len()).then_some(reply.len())
}

/// A client blocked in BLPOP when the server stops gets no reply, only the close (Redis
/// frees blocked clients at shutdown without answering them); the exit is still 0.
#[test]
fn sigterm_closes_blocked_clients_without_a_reply() {
    let mut kura = KuraProcess::start(&[]);
    let mut blocked = kura.client();
    blocked.send(&[b"BLPOP", b"queue", b"0"]);
    // Give the BLPOP time to block (a reply or a close now would be a failure below).
    assert!(!blocked.is_closed(Duration::from_millis(500)));
    // Another client's commands go through while it waits.
    assert_eq!(kura.client().cmd(&["PING"]), "+PONG\r\n");
    kura.signal("TERM");
    let mut rest = Vec::new();
    let end = blocked.reader.read_to_end(&mut rest);
    assert!(end.is_ok(), "blocked client: {end:?}");
    assert_eq!(
        String::from_utf8_lossy(&rest),
        "",
        "blocked client got a reply"
    );
    let status = kura.wait_exit(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[test]
fn sigint_also_exits_zero() {
    let mut kura = KuraProcess::start(&[]);
    assert_eq!(kura.client().cmd(&["PING"]), "+PONG\r\n");
    kura.signal("INT");
    let status = kura.wait_exit(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[test]
fn protected_mode_refuses_an_open_bind_without_password() {
    let (status, out) = run_to_exit(&["--bind", "0.0.0.0"]);
    assert!(
        !status.success(),
        "kura started on 0.0.0.0 without requirepass"
    );
    assert!(
        out.contains("protected-mode"),
        "the refusal does not name protected-mode: {out}"
    );
    // Turning protected mode off, or setting a password, lets it start.
    let kura = KuraProcess::start(&["--bind", "0.0.0.0", "--protected-mode", "no"]);
    assert_eq!(kura.client().cmd(&["PING"]), "+PONG\r\n");
    let kura = KuraProcess::start(&["--bind", "0.0.0.0", "--requirepass", "pw"]);
    assert_eq!(
        kura.client().cmd(&["PING"]),
        "-NOAUTH Authentication required.\r\n"
    );
}

#[test]
fn requirepass_gates_every_command() {
    let kura = KuraProcess::start(&["--requirepass", "s3cret"]);
    let mut c = kura.client();
    assert_eq!(c.cmd(&["GET", "k"]), "-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmd(&["PING"]), "-NOAUTH Authentication required.\r\n");
    assert_eq!(
        c.cmd(&["AUTH", "wrong"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        c.cmd(&["AUTH", "default", "wrong"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(c.cmd(&["GET", "k"]), "-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmd(&["AUTH", "s3cret"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), "$1\r\nv\r\n");
    // The two-argument form, on a new connection.
    let mut c2 = kura.client();
    assert_eq!(c2.cmd(&["AUTH", "default", "s3cret"]), "+OK\r\n");
    assert_eq!(c2.cmd(&["GET", "k"]), "$1\r\nv\r\n");
}

#[test]
fn unknown_settings_are_named_and_refused() {
    let (status, out) = run_to_exit(&["--no-such-setting", "1"]);
    assert!(!status.success(), "kura accepted --no-such-setting");
    assert!(
        out.contains("no-such-setting"),
        "error does not name the key: {out}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "port = 7000\nmaxmemroy = \"1gb\"\n").expect("write");
    let (status, out) = run_to_exit(&["--config", file.to_str().expect("utf-8 path")]);
    assert!(!status.success(), "kura accepted a file with maxmemroy");
    assert!(
        out.contains("maxmemroy"),
        "error does not name the key: {out}"
    );

    std::fs::write(&file, "[forward]\nprot = 24224\n").expect("write");
    let (status, out) = run_to_exit(&["--config", file.to_str().expect("utf-8 path")]);
    assert!(!status.success(), "kura accepted [forward] prot");
    assert!(
        out.contains("forward.prot"),
        "error does not name the key: {out}"
    );

    let (status, out) = run_to_exit(&["--port", "seventy"]);
    assert!(!status.success(), "kura accepted --port seventy");
    assert!(out.contains("port"), "error does not name the key: {out}");
}

#[test]
fn example_config_file_starts_the_server() {
    let example = manifest_path("deploy/kura.toml");
    let kura = KuraProcess::start(&["--config", example.to_str().expect("utf-8 path")]);
    let mut c = kura.client();
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(c.cmd(&["SET", "from", "deploy"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "from"]), "$6\r\ndeploy\r\n");
}

#[test]
fn version_and_help_exit_zero() {
    for flag in ["--version", "--help"] {
        let out = Command::new(env!("CARGO_BIN_EXE_kura"))
            .arg(flag)
            .output()
            .expect("run kura");
        assert!(out.status.success(), "{flag}: {:?}", out.status);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("kura"),
            "{flag}"
        );
    }
}
