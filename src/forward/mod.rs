//! The Fluent Forward door (protocol v1 with v1.5's additions, `shared/spec/fluent.md`):
//! framing, modes, handshake, acks and heartbeats, and the mapping of chunks to commands
//! that run through the one write path.
//!
//! Flow: `conn` reads a connection into a buffer and cuts complete requests with the
//! resumable `msgpack::Scanner`; `ingest` decodes each (`message`, `time`), maps it to
//! commands (`mapping`, `record`, `route`), runs them with `cmd::exec::execute_batch`
//! and decides the ack (`ack`). The TCP port's UDP twin answers heartbeats.

pub mod ack;
pub mod conn;
pub mod handshake;
pub mod ingest;
pub mod mapping;
pub mod message;
pub mod msgpack;
pub mod pattern;
pub mod record;
pub mod route;
pub mod strftime;
pub mod template;
pub mod time;

#[cfg(test)]
mod tests_robust;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::config::ForwardConfig;
use crate::state::ServerState;
use ack::Dedup;
use mapping::Sequence;
use route::Router;

/// How often one kind of forward problem is logged at most (the rest are counted).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The door's shared state: settings fixed at start, the router, the dedup window.
pub struct Forward {
    /// The server the door stores into.
    pub srv: Arc<ServerState>,
    /// `[forward]` as it was at start.
    pub cfg: ForwardConfig,
    /// Compiled `[[forward.route]]`s.
    pub router: Router,
    /// Chunk ids stored recently.
    pub dedup: Mutex<Dedup>,
    /// Hash-mode key sequence.
    pub seq: Sequence,
    /// Open connections, for `max_connections`.
    conns: AtomicUsize,
    /// `ack_after = "replicated"` lacks replicas and that was logged (logged again once
    /// replicas came back and went).
    pub replicas_short: AtomicBool,
    /// When each kind of warning was last logged, and how many were held back since.
    log_times: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

/// Why the door could not start.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The routes do not compile (also caught by `Config::validate`).
    #[error("invalid [[forward.route]]: {0}")]
    Route(String),
    /// A socket could not be bound.
    #[error("cannot listen on {addr} for forward: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl Forward {
    /// Builds the door's state from the configuration.
    pub fn new(srv: Arc<ServerState>, cfg: ForwardConfig) -> Result<Forward, ForwardError> {
        let router = Router::new(&cfg.routes).map_err(|e| ForwardError::Route(e.to_string()))?;
        Ok(Forward {
            dedup: Mutex::new(Dedup::new(cfg.dedup_window, cfg.dedup_max_chunks)),
            router,
            seq: Sequence::default(),
            conns: AtomicUsize::new(0),
            replicas_short: AtomicBool::new(false),
            log_times: Mutex::new(HashMap::new()),
            srv,
            cfg,
        })
    }

    /// Logs a warning of kind `kind` unless one was logged in the last 10 s (a sender
    /// that repeats a mistake would otherwise flood the log, spec §8 item 2); the next
    /// one logged says how many were held back.
    pub fn warn(&self, kind: &'static str, msg: std::fmt::Arguments<'_>) {
        let now = Instant::now();
        let held = {
            let mut times = match self.log_times.lock() {
                Ok(t) => t,
                Err(p) => p.into_inner(),
            };
            let entry = times.entry(kind).or_insert((now - LOG_EVERY * 2, 0));
            if now.duration_since(entry.0) < LOG_EVERY {
                entry.1 += 1;
                return;
            }
            let held = entry.1;
            *entry = (now, 0);
            held
        };
        if held > 0 {
            warn!("{msg} ({held} more like this not logged)");
        } else {
            warn!("{msg}");
        }
    }
}

/// Holds one connection slot; releasing it on drop keeps the count right on every exit.
pub struct ConnSlot(Arc<Forward>);

impl ConnSlot {
    /// Takes a slot, or `None` at `max_connections`.
    pub fn take(fwd: &Arc<Forward>) -> Option<ConnSlot> {
        let max = fwd.cfg.max_connections.max(1);
        fwd.conns
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        fwd.srv.metrics.forward.connections.inc();
        Some(ConnSlot(fwd.clone()))
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.conns.fetch_sub(1, Ordering::AcqRel);
        self.0.srv.metrics.forward.connections.dec();
    }
}

/// Binds the forward TCP port and its UDP heartbeat twin, and starts serving; returns the
/// TCP address. An empty `bind` leaves the door closed (`None`).
pub async fn start(
    srv: Arc<ServerState>,
    cfg: ForwardConfig,
    drain: mpsc::Sender<()>,
) -> Result<Option<SocketAddr>, ForwardError> {
    let host = cfg.bind.trim();
    if host.is_empty() {
        return Ok(None);
    }
    let addr = crate::server::host_port(host, cfg.port);
    let bind_err = |source| ForwardError::Bind {
        addr: addr.clone(),
        source,
    };
    // Port 0 picks a free TCP port; its UDP twin may be taken by someone else, so retry.
    let mut attempt = 0;
    let (listener, udp) = loop {
        attempt += 1;
        let listener = crate::server::listen(&addr).await.map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        match UdpSocket::bind(local).await {
            Ok(u) => break (listener, u),
            Err(e) if cfg.port == 0 && attempt < 20 => {
                debug!(error = %e, "udp twin of forward port taken, retrying");
            }
            Err(e) => return Err(bind_err(e)),
        }
    };
    let local = listener.local_addr().map_err(bind_err)?;
    let fwd = Arc::new(Forward::new(srv.clone(), cfg)?);
    tokio::spawn(accept_loop(fwd.clone(), listener, drain.clone()));
    tokio::spawn(heartbeat_loop(fwd, udp, drain));
    Ok(Some(local))
}

async fn accept_loop(fwd: Arc<Forward>, listener: TcpListener, drain: mpsc::Sender<()>) {
    let mut shutdown = fwd.srv.shutdown_tx.subscribe();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "forward accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        fwd.srv.metrics.forward.connections_total.inc();
        let Some(slot) = ConnSlot::take(&fwd) else {
            fwd.warn(
                "max_connections",
                format_args!(
                    "forward connection from {peer} refused: max_connections ({}) reached",
                    fwd.cfg.max_connections
                ),
            );
            continue;
        };
        if let Err(e) = stream.set_nodelay(true) {
            debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        let guard = drain.clone();
        let shutdown = fwd.srv.shutdown_tx.subscribe();
        tokio::spawn(conn::serve(
            fwd.clone(),
            stream,
            peer,
            shutdown,
            slot,
            guard,
        ));
    }
}

/// Answers UDP heartbeats: any datagram (fluentd sends one `0x00` byte) gets `0x00` back
/// to its source (spec §1.8). The reply is never larger than the request.
async fn heartbeat_loop(fwd: Arc<Forward>, udp: UdpSocket, drain: mpsc::Sender<()>) {
    let mut shutdown = fwd.srv.shutdown_tx.subscribe();
    let mut buf = [0u8; 128];
    loop {
        let got = tokio::select! {
            r = udp.recv_from(&mut buf) => r,
            _ = shutdown.changed() => break,
        };
        match got {
            Ok((n, from)) if n > 0 => {
                if let Err(e) = udp.send_to(&[0x00], from).await {
                    debug!(%from, error = %e, "cannot answer a udp heartbeat");
                } else {
                    fwd.srv.metrics.forward.heartbeats.inc();
                }
            }
            Ok(_) => {}
            Err(e) => {
                debug!(error = %e, "udp heartbeat receive failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(drain);
}
