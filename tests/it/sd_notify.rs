//! systemd readiness (`Type=notify`, deploy/systemd/kura.service): the kura binary, run with
//! `NOTIFY_SOCKET` pointing at a datagram socket the test binds as systemd would, sends
//! `READY=1` once it serves and `STOPPING=1` when SIGTERM starts the shutdown.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::support::{KuraProcess, Raw};

/// Receives one notification datagram (at most 30 s).
fn recv(sock: &UnixDatagram) -> String {
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a notification from kura");
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

/// The value of `KEY=` in a notification.
fn field<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    msg.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn ready_once_serving_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let mut kura = KuraProcess::start_env(&[], &[("NOTIFY_SOCKET", path.to_str().unwrap())]);

    let ready = recv(&sock);
    assert_eq!(field(&ready, "READY"), Some("1"), "{ready:?}");
    // The status names the RESP door it serves, and that door answers.
    let status = field(&ready, "STATUS").unwrap();
    let resp: SocketAddr = status
        .strip_prefix("ready: resp ")
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("status {status:?}"))
        .parse()
        .unwrap();
    assert_eq!(resp, kura.addr);
    assert!(status.contains(", forward 127.0.0.1:"), "{status}");
    assert!(status.ends_with(", role master"), "{status}");
    assert_eq!(Raw::connect(resp).cmd(&["PING"]), "+PONG\r\n");

    // Nothing else is sent while kura runs.
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(sock.recv(&mut buf).is_err(), "a second notification");

    kura.signal("TERM");
    let stopping = recv(&sock);
    assert_eq!(field(&stopping, "STOPPING"), Some("1"), "{stopping:?}");
    let status = kura.wait_exit(Duration::from_secs(30)).expect("kura exits");
    assert!(status.success(), "{status:?}: {}", kura.log());
}

#[test]
fn abstract_socket_and_replica_role() {
    // `@name` is an abstract socket, as systemd passes it in some sandboxes.
    let name = format!("kura-it-notify-{}", std::process::id());
    let addr =
        <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(
            name.as_bytes(),
        )
        .unwrap();
    let sock = UnixDatagram::bind_addr(&addr).unwrap();
    // A replica of a master that is not there still serves (stale reads), so it is ready.
    let master = format!("127.0.0.1 {}", crate::support::free_port());
    let kura = KuraProcess::start_env(
        &["--replicaof", &master],
        &[("NOTIFY_SOCKET", &format!("@{name}"))],
    );
    let ready = recv(&sock);
    assert_eq!(field(&ready, "READY"), Some("1"), "{ready:?}");
    assert!(
        field(&ready, "STATUS").is_some_and(|s| s.ends_with(", role replica")),
        "{ready:?}"
    );
    assert_eq!(kura.client().cmd(&["PING"]), "+PONG\r\n");
}

#[test]
fn unreachable_notify_socket_is_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nobody-listens.sock");
    let kura = KuraProcess::start_env(&[], &[("NOTIFY_SOCKET", missing.to_str().unwrap())]);
    assert_eq!(kura.client().cmd(&["PING"]), "+PONG\r\n");
    assert!(
        crate::support::wait_until(Duration::from_secs(10), || kura
            .log()
            .contains("systemd notification not sent")),
        "{}",
        kura.log()
    );
}
