//! systemd's readiness protocol (`sd_notify(3)`), without libsystemd.
//!
//! With `Type=notify` (deploy/systemd/kura.service) systemd sets `NOTIFY_SOCKET` and counts
//! the service as started only when it receives `READY=1` on that datagram socket: units
//! ordered `After=kura.service` (a fluentd, a backup timer) then start against a kura that
//! has its data loaded and its listeners bound, not one still reading `dump.rdb`.
//! `STOPPING=1` tells systemd the shutdown is deliberate while the final save runs.
//!
//! The protocol is one datagram of newline-separated `KEY=value` lines to the socket named
//! by `NOTIFY_SOCKET`: a filesystem path, or `@name` for an abstract socket (systemd's own
//! `sd_notify` reads it the same way). Without `NOTIFY_SOCKET` nothing is sent. A failure
//! is logged and never stops kura: readiness is a courtesy to the supervisor, not a
//! condition for serving.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use crate::server::RunningServer;

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// The message sent when shutdown starts: systemd then waits (up to `TimeoutStopSec`) for
/// the final save instead of treating the exit as a crash.
pub const STOPPING: &str = "STOPPING=1\nSTATUS=shutting down: draining clients, final save";

/// Why a notification could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `NOTIFY_SOCKET` is neither an absolute path nor an `@abstract` name (systemd's
    /// `vsock:` addresses are for virtual machines and not supported).
    #[error("NOTIFY_SOCKET {0:?} is not an absolute path or an @abstract socket name")]
    Address(String),
    /// The socket could not be created or the datagram not sent.
    #[error("cannot notify systemd at {socket}: {source}")]
    Send {
        /// The `NOTIFY_SOCKET` value.
        socket: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Sends `message` to the socket `NOTIFY_SOCKET` names, if it is set; errors are logged.
pub fn notify(message: &str) {
    let Some(socket) = std::env::var_os(NOTIFY_SOCKET) else {
        return;
    };
    let socket = socket.to_string_lossy();
    match send_to(&socket, message) {
        Ok(()) => tracing::debug!(%socket, message, "notified systemd"),
        Err(e) => tracing::warn!(error = %e, "systemd notification not sent"),
    }
}

/// Tells systemd kura serves: called once `Server::start` returned (data loaded, every door
/// bound). The status line names the doors and the role, as `systemctl status` shows it.
pub fn ready(server: &RunningServer) {
    notify(&ready_message(server));
}

/// The `READY=1` datagram for `server`, with a `STATUS=` line like
/// `ready: resp 127.0.0.1:6379, forward 127.0.0.1:24224, role master`.
pub fn ready_message(server: &RunningServer) -> String {
    let mut status = format!("ready: resp {}", server.resp_addr);
    if let Some(forward) = server.forward_addr {
        status.push_str(&format!(", forward {forward}"));
    }
    if let Some(http) = server.http_addr {
        status.push_str(&format!(", http {http}"));
    }
    let role = if server.state.repl.is_following() {
        "replica"
    } else {
        "master"
    };
    status.push_str(&format!(", role {role}"));
    format!("READY=1\nSTATUS={status}")
}

/// Sends one datagram to `socket` (a `NOTIFY_SOCKET` value): a path, or `@name` for an
/// abstract socket.
pub fn send_to(socket: &str, message: &str) -> Result<(), NotifyError> {
    let send_err = |source| NotifyError::Send {
        socket: socket.to_string(),
        source,
    };
    let addr = if let Some(name) = socket.strip_prefix('@') {
        SocketAddr::from_abstract_name(name.as_bytes()).map_err(send_err)?
    } else if socket.starts_with('/') {
        SocketAddr::from_pathname(socket).map_err(send_err)?
    } else {
        return Err(NotifyError::Address(socket.to_string()));
    };
    let sock = UnixDatagram::unbound().map_err(send_err)?;
    let sent = sock
        .send_to_addr(message.as_bytes(), &addr)
        .map_err(send_err)?;
    if sent != message.len() {
        return Err(send_err(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            "datagram truncated",
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn recv(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        send_to(path.to_str().unwrap(), "READY=1\nSTATUS=x").unwrap();
        assert_eq!(recv(&sock), "READY=1\nSTATUS=x");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        let name = format!("kura-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        send_to(&format!("@{name}"), STOPPING).unwrap();
        assert_eq!(recv(&sock), STOPPING);
    }

    #[test]
    fn bad_addresses_are_errors_not_panics() {
        assert!(matches!(
            send_to("relative/notify.sock", "READY=1"),
            Err(NotifyError::Address(_))
        ));
        assert!(matches!(
            send_to("vsock:2:1234", "READY=1"),
            Err(NotifyError::Address(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nobody-listens");
        assert!(matches!(
            send_to(missing.to_str().unwrap(), "READY=1"),
            Err(NotifyError::Send { .. })
        ));
    }
}
