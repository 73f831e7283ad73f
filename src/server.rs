//! Starts the listeners and the background tasks; owns shutdown.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::config::{Config, ShutdownFlags};
use crate::state::{ClientInfo, ServerState};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The dump could not be loaded.
    #[error(transparent)]
    Load(#[from] crate::persist::save::LoadStartError),
    /// The AOF (`appendonly yes`) could not be loaded.
    #[error(transparent)]
    Aof(#[from] crate::persist::aof::load::AofLoadError),
    /// The AOF could not be opened for appending after loading.
    #[error(transparent)]
    AofOpen(#[from] crate::persist::aof::AofError),
    /// The forward door could not start.
    #[error(transparent)]
    Forward(#[from] crate::forward::ForwardError),
    /// The HTTP door could not start.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The entry point for starting kura in-process.
pub struct Server;

/// A running server: its bound addresses and the handle that stops it.
pub struct RunningServer {
    /// Where the RESP door listens (first bind address).
    pub resp_addr: SocketAddr,
    /// Every RESP listener address.
    pub resp_addrs: Vec<SocketAddr>,
    /// Where the forward door listens (TCP, and UDP heartbeats on the same port);
    /// `None` when `[forward] bind` is empty.
    pub forward_addr: Option<SocketAddr>,
    /// Where the HTTP door listens; `None` when `[http] bind` is empty.
    pub http_addr: Option<SocketAddr>,
    /// Shared state, for tests and the other doors.
    pub state: Arc<ServerState>,
    shutdown_rx: watch::Receiver<bool>,
    /// Closed when every task holding a drain guard has ended.
    drain_rx: mpsc::Receiver<()>,
}

impl Server {
    /// Validates `config`, binds every listener (port 0 picks a free port), starts every task.
    pub async fn start(config: Config) -> Result<RunningServer, StartError> {
        config.validate()?;
        let state = Arc::new(ServerState::new(config.clone()));
        // A fresh state: the cell is empty, so setting it cannot fail.
        state.self_ref.get_or_init(|| Arc::downgrade(&state));
        // `replicaof` in the configuration: a replica from the first moment, before any
        // data is loaded.
        crate::replication::replica::prepare_at_start(&state);
        crate::memory::refresh(&state);
        state
            .used_memory_startup
            .store(state.used_memory.load(Ordering::Relaxed), Ordering::Relaxed);
        let (drain_tx, drain_rx) = mpsc::channel::<()>(1);
        // Clients may connect while the dump (or the AOF) loads; they get -LOADING until it
        // is in.
        let dump = crate::persist::save::dump_path(&state);
        let has_dump = dump.try_exists().unwrap_or(true);
        let appendonly = config.appendonly;
        state
            .loading
            .store(has_dump || appendonly, Ordering::Relaxed);
        let mut resp_addrs = Vec::new();
        for host in &config.bind {
            let host = host.trim_start_matches('-');
            let addr = host_port(host, config.port);
            let listener = listen(&addr).await.map_err(|source| StartError::Bind {
                addr: addr.clone(),
                source,
            })?;
            let local = listener
                .local_addr()
                .map_err(|source| StartError::Bind { addr, source })?;
            resp_addrs.push(local);
            tokio::spawn(accept_loop(state.clone(), listener, drain_tx.clone()));
        }
        if let Some(a) = resp_addrs.first() {
            state.tcp_port.store(a.port() as usize, Ordering::Relaxed);
        }
        let forward_addr =
            crate::forward::start(state.clone(), config.forward.clone(), drain_tx.clone()).await?;
        if let Some(addr) = forward_addr {
            info!(%addr, "forward door listening tcp and udp");
        }
        // Before the load: /healthz and /readyz answer while a large dump loads.
        let http_addr =
            crate::http::start(state.clone(), config.http.clone(), drain_tx.clone()).await?;
        if appendonly {
            // With `appendonly yes` the AOF is the data (Redis `loadDataFromDisk`); dump.rdb
            // is read only when there is no AOF at all.
            let loader = state.clone();
            let loaded = tokio::task::spawn_blocking(move || {
                crate::persist::aof::load::load_on_start(&loader)
            })
            .await;
            let loaded = match loaded {
                Ok(Ok(l)) => l,
                Ok(Err(e)) => return Err(refuse_start(&state, StartError::Aof(e))),
                Err(e) => {
                    let e = crate::persist::save::LoadStartError::Read {
                        path: config.dir.join(&config.appenddirname).display().to_string(),
                        source: std::io::Error::other(e.to_string()),
                    };
                    return Err(refuse_start(&state, StartError::Load(e)));
                }
            };
            // Writes wait (-LOADING) until the AOF is open too: none may miss it.
            let opener = state.clone();
            let opened = tokio::task::spawn_blocking(move || {
                crate::persist::aof::rewrite::open_on_start(&opener, loaded)
            })
            .await
            .unwrap_or_else(|e| {
                Err(crate::persist::aof::AofError::Thread(
                    "open",
                    std::io::Error::other(e.to_string()),
                ))
            });
            if let Err(e) = opened {
                return Err(refuse_start(&state, StartError::AofOpen(e)));
            }
            state.loading.store(false, Ordering::Relaxed);
        } else if has_dump {
            let loader = state.clone();
            let loaded =
                tokio::task::spawn_blocking(move || crate::persist::save::load_dump(&loader)).await;
            state.loading.store(false, Ordering::Relaxed);
            let failure = match loaded {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(StartError::Load(e)),
                Err(e) => Some(StartError::Load(
                    crate::persist::save::LoadStartError::Read {
                        path: dump.display().to_string(),
                        source: std::io::Error::other(e.to_string()),
                    },
                )),
            };
            if let Some(e) = failure {
                // Never start on half the data, and never overwrite the file on the way out.
                state.save.shutdown_settled.store(true, Ordering::Release);
                state.request_shutdown();
                return Err(e);
            }
        }
        crate::replication::replica::start_at_start(&state);
        tokio::spawn(crate::cron::run(state.clone(), drain_tx.clone()));
        info!(addrs = ?resp_addrs, "ready to accept connections tcp");
        let shutdown_rx = state.shutdown_tx.subscribe();
        Ok(RunningServer {
            resp_addr: resp_addrs[0],
            resp_addrs,
            forward_addr,
            http_addr,
            state,
            shutdown_rx,
            drain_rx,
        })
    }
}

impl RunningServer {
    /// Asks the server to stop (what SIGTERM and SHUTDOWN do).
    pub fn trigger_shutdown(&self) {
        self.state.request_shutdown();
    }

    /// Waits until shutdown is requested (SHUTDOWN command or [`trigger_shutdown`]).
    ///
    /// [`trigger_shutdown`]: RunningServer::trigger_shutdown
    pub async fn shutdown_requested(&mut self) {
        while !*self.shutdown_rx.borrow() {
            if self.shutdown_rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Stops accepting, lets connections finish the commands they are running (at most
    /// `DRAIN_WAIT`), lets lagging replicas catch up (at most `shutdown-timeout`, unless
    /// `flags` or SHUTDOWN say NOW), makes the final save `flags` ask for, and ends the
    /// replica links. `flags` are `shutdown-on-sigterm`/`-sigint` for a signal; a SHUTDOWN
    /// command has settled its own.
    pub async fn shutdown(mut self, flags: ShutdownFlags) {
        self.state.request_shutdown();
        if tokio::time::timeout(DRAIN_WAIT, self.drain_rx.recv())
            .await
            .is_err()
        {
            warn!(
                grace = ?DRAIN_WAIT,
                "connections still open after the shutdown grace period"
            );
        }
        // No client writes any more. As Redis 7.0's `prepareForShutdown` and
        // `finishShutdown`: the replicas catch up, the dump records the offset they hold
        // (so after a restart they continue with a partial resync), then their links end.
        let now = flags.now || self.state.save.shutdown_now.load(Ordering::Acquire);
        let limit = if now {
            Duration::ZERO
        } else {
            Duration::from_secs(u64::from(self.state.with_config(|c| c.shutdown_timeout)))
        };
        crate::replication::master::feed::settle_replicas(&self.state, limit).await;
        crate::persist::save::final_save(&self.state, flags);
        crate::replication::master::feed::release_replicas(&self.state, RELEASE_WAIT).await;
        crate::persist::aof::rewrite::stop(&self.state);
        info!("kura is now ready to exit, bye bye");
    }
}

/// How long shutdown waits for connections to finish the commands they are running.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// How long shutdown lets the replica links send their last bytes after the final save.
const RELEASE_WAIT: Duration = Duration::from_secs(2);

/// Stops a server whose data did not load: never start on half the data, and never
/// overwrite the files on the way out.
fn refuse_start(state: &Arc<ServerState>, e: StartError) -> StartError {
    state.save.shutdown_settled.store(true, Ordering::Release);
    state.request_shutdown();
    e
}

/// The listen backlog: Redis's `tcp-backlog` default. A short queue drops the SYNs of a
/// burst of connections (a pool opening at once), which then wait a second to retry.
const TCP_BACKLOG: u32 = 511;

/// Joins a bind host and a port as `listen` takes them (IPv6 literals in brackets).
pub(crate) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Binds `addr` (host:port, names resolved) with `SO_REUSEADDR`, as Redis's `anetTcpServer`.
pub(crate) async fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let mut last_err = None;
    for sa in tokio::net::lookup_host(addr).await? {
        let socket = if sa.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(sa).and_then(|_| socket.listen(TCP_BACKLOG)) {
            Ok(l) => return Ok(l),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "address resolves to nothing")
    }))
}

async fn accept_loop(state: Arc<ServerState>, listener: TcpListener, drain: mpsc::Sender<()>) {
    let mut shutdown = state.shutdown_tx.subscribe();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                accept_one(&state, stream, peer, &drain).await;
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn accept_one(
    state: &Arc<ServerState>,
    mut stream: TcpStream,
    peer: SocketAddr,
    drain: &mpsc::Sender<()>,
) {
    state
        .net
        .total_connections_received
        .fetch_add(1, Ordering::Relaxed);
    let (maxclients, keepalive) = state.with_config(|c| (c.maxclients, c.tcp_keepalive));
    if state.clients.len() >= maxclients {
        state
            .net
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        // Written from its own task so a peer that never reads cannot stall accepting.
        tokio::spawn(async move {
            let refuse = stream.write_all(b"-ERR max number of clients reached\r\n");
            if !matches!(
                tokio::time::timeout(Duration::from_secs(1), refuse).await,
                Ok(Ok(()))
            ) {
                debug!(%peer, "could not tell a refused client why");
            }
        });
        return;
    }
    // Both are optimisations; a socket that refuses them still works.
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    if keepalive > 0 {
        let ka = socket2::TcpKeepalive::new().with_time(Duration::from_secs(keepalive));
        if let Err(e) = socket2::SockRef::from(&stream).set_tcp_keepalive(&ka) {
            debug!(%peer, error = %e, "cannot set TCP keepalive");
        }
    }
    let laddr = stream.local_addr().unwrap_or(peer);
    let id = state.clients.next_id();
    let info = ClientInfo::new(id, peer, laddr, state.clock.now_ms());
    info.fd.store(
        std::os::fd::AsRawFd::as_raw_fd(&stream).into(),
        Ordering::Relaxed,
    );
    let info = Arc::new(info);
    state.clients.add(info.clone());
    let st = state.clone();
    let guard = drain.clone();
    let shutdown = state.shutdown_tx.subscribe();
    tokio::spawn(crate::resp::conn::serve(st, stream, info, shutdown, guard));
}
