//! Server-wide state shared by every connection and task: config, the engine, clients,
//! pub/sub, counters. One `Arc<ServerState>` per running server, so in-process test servers
//! never share anything.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, watch, Notify};

use crate::clock::Clock;
use crate::cmd::exec::Engine;
use crate::cmd::pubsub::Registry;
use crate::cmd::server::SlowLog;
use crate::cmd::table::CommandSpec;
use crate::cmd::{Reply, Session};
use crate::config::Config;

/// Facts about one connected client that other clients may read (CLIENT LIST/KILL, INFO).
#[derive(Debug)]
pub struct ClientInfo {
    /// Client id.
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// Local address.
    pub laddr: SocketAddr,
    /// When it connected.
    pub created: Instant,
    /// Unix ms of the last command.
    pub last_active_ms: AtomicI64,
    /// CLIENT SETNAME.
    pub name: Mutex<String>,
    /// CLIENT SETINFO lib-name / lib-ver.
    pub lib: Mutex<(String, String)>,
    /// Selected database.
    pub db: AtomicUsize,
    /// Last command's full name (`client|list`).
    pub last_cmd: Mutex<&'static str>,
    /// Channel / pattern subscription counts.
    pub sub: AtomicUsize,
    /// Pattern subscription count.
    pub psub: AtomicUsize,
    /// Shard channel subscription count (`ssub=` in CLIENT LIST).
    pub ssub: AtomicUsize,
    /// Queued MULTI commands (-1 outside MULTI).
    pub multi: AtomicI64,
    /// RESP version.
    pub resp: AtomicUsize,
    /// Flags shown by CLIENT LIST, Redis's letters: `O` monitor, `S` replica, `M` master,
    /// `P` pubsub, `x` multi, `b` blocked, `e` no-evict; `N` for none.
    pub flags: Mutex<String>,
    /// The socket's file descriptor (CLIENT LIST `fd=`), -1 when unknown.
    pub fd: AtomicI64,
    /// Bytes waiting in the query buffer at the last read.
    pub qbuf: AtomicUsize,
    /// Set by CLIENT KILL; the connection closes.
    pub killed: AtomicBool,
    /// Wakes the connection when killed.
    pub kill_notify: Notify,
}

impl ClientInfo {
    /// Returns the info of a fresh connection.
    pub fn new(id: u64, addr: SocketAddr, laddr: SocketAddr, now_ms: i64) -> Self {
        ClientInfo {
            id,
            addr,
            laddr,
            created: Instant::now(),
            last_active_ms: AtomicI64::new(now_ms),
            name: Mutex::new(String::new()),
            lib: Mutex::new((String::new(), String::new())),
            db: AtomicUsize::new(0),
            last_cmd: Mutex::new("NULL"),
            sub: AtomicUsize::new(0),
            psub: AtomicUsize::new(0),
            ssub: AtomicUsize::new(0),
            multi: AtomicI64::new(-1),
            resp: AtomicUsize::new(2),
            flags: Mutex::new("N".into()),
            fd: AtomicI64::new(-1),
            qbuf: AtomicUsize::new(0),
            killed: AtomicBool::new(false),
            kill_notify: Notify::new(),
        }
    }

    /// Sets or clears one CLIENT LIST flag letter, keeping Redis's letter order
    /// (`networking.c` `getClientInfoString`) and `N` when no flag is set.
    pub fn set_flag(&self, flag: char, on: bool) {
        const ORDER: &str = "OSMPxbtRBdcuAUre";
        let Ok(mut flags) = self.flags.lock() else {
            return;
        };
        let mut set: Vec<char> = flags.chars().filter(|&c| c != 'N' && c != flag).collect();
        if on {
            set.push(flag);
        }
        set.sort_by_key(|c| ORDER.find(*c).unwrap_or(ORDER.len()));
        *flags = if set.is_empty() {
            "N".into()
        } else {
            set.into_iter().collect()
        };
    }

    /// Asks the connection to close.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Wakes the connection's waits (run loop and blocked command alike) so it rechecks the
    /// kill and shutdown flags; the stored permit covers a wait not yet armed.
    pub fn wake(&self) {
        self.kill_notify.notify_waiters();
        self.kill_notify.notify_one();
    }
}

/// The connected clients.
#[derive(Debug, Default)]
pub struct Clients {
    next_id: AtomicU64,
    /// Connected clients by id (ordered, as CLIENT LIST prints them).
    pub map: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
}

impl Clients {
    /// Returns a new client id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Returns the number of connected clients.
    pub fn len(&self) -> usize {
        self.map.lock().map_or(0, |m| m.len())
    }

    /// Reports whether no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers a connection.
    pub fn add(&self, info: Arc<ClientInfo>) {
        if let Ok(mut m) = self.map.lock() {
            m.insert(info.id, info);
        }
    }

    /// Unregisters a connection.
    pub fn remove(&self, id: u64) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(&id);
        }
    }

    /// Returns every client's info, by id.
    pub fn list(&self) -> Vec<Arc<ClientInfo>> {
        self.map
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// Connection and traffic counters (`INFO stats`).
#[derive(Debug, Default)]
pub struct NetStats {
    /// Connections accepted.
    pub total_connections_received: AtomicU64,
    /// Connections refused at `maxclients`.
    pub rejected_connections: AtomicU64,
    /// Bytes read from clients.
    pub net_input_bytes: AtomicU64,
    /// Bytes written to clients.
    pub net_output_bytes: AtomicU64,
    /// Socket reads.
    pub reads_processed: AtomicU64,
    /// Socket writes.
    pub writes_processed: AtomicU64,
}

/// Settings read on every command, mirrored from the configuration into atomics so the hot
/// path never takes the configuration lock (refreshed by [`ServerState::refresh_hot`]).
#[derive(Debug, Default)]
pub struct HotConfig {
    /// `maxmemory` (0 = none).
    pub maxmemory: AtomicU64,
    /// `replicaof` is set and `replica-read-only yes`.
    pub read_only_replica: AtomicBool,
    /// `slowlog-log-slower-than`.
    pub slowlog_threshold: AtomicI64,
    /// `latency-tracking`.
    pub latency_tracking: AtomicBool,
    /// `min-replicas-to-write` (checked before every write).
    pub min_replicas_to_write: AtomicU64,
    /// `min-replicas-max-lag`.
    pub min_replicas_max_lag: AtomicU64,
}

/// Everything a running server shares.
#[derive(Debug)]
pub struct ServerState {
    /// Hot copies of a few settings.
    pub hot: HotConfig,
    /// Number of MONITOR clients (skips the monitor feed when zero).
    pub monitor_count: AtomicUsize,
    /// Current configuration (CONFIG SET changes it).
    pub config: RwLock<Config>,
    /// The data and the write path.
    pub engine: Engine,
    /// This state's own `Arc`, for handlers that start work outliving the command (BGSAVE).
    pub self_ref: std::sync::OnceLock<std::sync::Weak<ServerState>>,
    /// The dataset is being loaded at start: commands without the LOADING flag get
    /// `-LOADING`, INFO shows `loading:1`.
    pub loading: AtomicBool,
    /// RDB save status (INFO persistence, LASTSAVE, BGSAVE).
    pub save: crate::persist::save::SaveStatus,
    /// The append-only file (off unless `appendonly`).
    pub aof: crate::persist::aof::Aof,
    /// Prometheus families, in a registry of this server's own.
    pub metrics: crate::metrics::Metrics,
    /// Time source.
    pub clock: Clock,
    /// Connected clients.
    pub clients: Clients,
    /// Channel and pattern subscribers.
    pub pubsub: Mutex<Registry>,
    /// MONITOR clients: id → where their lines go.
    pub monitors: Mutex<BTreeMap<u64, mpsc::UnboundedSender<Reply>>>,
    /// SLOWLOG entries.
    pub slowlog: Mutex<SlowLog>,
    /// Traffic counters.
    pub net: NetStats,
    /// Bytes allocated, refreshed by the server cron (INFO `used_memory`).
    pub used_memory: AtomicU64,
    /// Peak of `used_memory`.
    pub used_memory_peak: AtomicU64,
    /// Allocation at start (`used_memory_startup`).
    pub used_memory_startup: AtomicU64,
    /// When the server started.
    pub started: Instant,
    /// Unix seconds at start.
    pub started_unix: i64,
    /// 40 hex characters identifying this run.
    pub run_id: String,
    /// Replication: ids, the master link (on a replica), the attached replicas.
    pub repl: crate::replication::Repl,
    /// Port actually bound by the RESP door (0 before binding).
    pub tcp_port: AtomicUsize,
    /// Path of the config file, if any.
    pub config_file: Mutex<Option<std::path::PathBuf>>,
    /// Set to true to stop the server.
    pub shutdown_tx: watch::Sender<bool>,
    /// Unix seconds of the last successful save (LASTSAVE), start time until then.
    pub lastsave: AtomicI64,
}

impl ServerState {
    /// Returns the state of a server about to start with `config`.
    pub fn new(config: Config) -> Self {
        let appendfsync = config.appendfsync;
        let clock = Clock::default();
        let now = clock.now_ms();
        let engine = Engine::new(config.databases, config.repl_backlog_size as usize);
        let (shutdown_tx, _) = watch::channel(false);
        let hex40 = || -> String {
            use rand::Rng;
            let mut rng = rand::thread_rng();
            (0..40)
                .map(|_| format!("{:x}", rng.gen_range(0..16u8)))
                .collect()
        };
        let run_id = hex40();
        let config_file = Mutex::new(config.config_file.clone());
        let slowlog = SlowLog::new(config.slowlog_max_len as usize);
        let state = ServerState {
            hot: HotConfig::default(),
            monitor_count: AtomicUsize::new(0),
            config: RwLock::new(config),
            engine,
            metrics: crate::metrics::Metrics::new(),
            save: Default::default(),
            aof: crate::persist::aof::Aof::new(appendfsync),
            loading: AtomicBool::new(false),
            self_ref: std::sync::OnceLock::new(),
            clock,
            clients: Clients::default(),
            pubsub: Mutex::new(Registry::default()),
            monitors: Mutex::new(BTreeMap::new()),
            slowlog: Mutex::new(slowlog),
            net: NetStats::default(),
            used_memory: AtomicU64::new(0),
            used_memory_peak: AtomicU64::new(0),
            used_memory_startup: AtomicU64::new(0),
            started: Instant::now(),
            started_unix: now / 1000,
            run_id,
            repl: Default::default(),
            tcp_port: AtomicUsize::new(0),
            config_file,
            shutdown_tx,
            lastsave: AtomicI64::new(now / 1000),
        };
        state.refresh_hot();
        state
    }

    /// Copies the hot settings out of the configuration; call after every change to it.
    pub fn refresh_hot(&self) {
        let (max, ro, slow, lat, min_replicas) = self.with_config(|c| {
            (
                c.maxmemory,
                c.replicaof.is_some() && c.replica_read_only,
                c.slowlog_log_slower_than,
                c.latency_tracking,
                (c.min_replicas_to_write, c.min_replicas_max_lag),
            )
        });
        self.hot.maxmemory.store(max, Ordering::Relaxed);
        self.hot.read_only_replica.store(ro, Ordering::Relaxed);
        self.hot.slowlog_threshold.store(slow, Ordering::Relaxed);
        self.hot.latency_tracking.store(lat, Ordering::Relaxed);
        let (to_write, max_lag) = min_replicas;
        self.hot
            .min_replicas_to_write
            .store(to_write, Ordering::Relaxed);
        self.hot
            .min_replicas_max_lag
            .store(max_lag, Ordering::Relaxed);
    }

    /// Returns a copy of the configuration.
    pub fn config(&self) -> Config {
        self.config.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// Reads one value from the configuration without copying all of it.
    pub fn with_config<T>(&self, f: impl FnOnce(&Config) -> T) -> T {
        match self.config.read() {
            Ok(c) => f(&c),
            Err(p) => f(&p.into_inner()),
        }
    }

    /// Reports whether `maxmemory` is set and exceeded.
    pub fn over_maxmemory(&self) -> bool {
        let max = self.hot.maxmemory.load(Ordering::Relaxed);
        max > 0 && self.used_memory.load(Ordering::Relaxed) > max
    }

    /// Returns the `Arc` this state lives in (set by `Server::start`).
    pub fn arc(&self) -> Option<Arc<ServerState>> {
        self.self_ref.get().and_then(|w| w.upgrade())
    }

    /// Reports whether client writes must be refused with READONLY.
    pub fn is_read_only_replica(&self) -> bool {
        self.hot.read_only_replica.load(Ordering::Relaxed)
    }

    /// Asks the server to shut down.
    pub fn request_shutdown(&self) {
        self.shutdown_tx.send_replace(true);
        // Connections wait on their own notify only (cheaper than a watch per connection):
        // wake each so it sees the flag.
        for c in self.clients.list() {
            c.wake();
        }
    }

    /// Records what a command leaves behind outside the engine: client info, SLOWLOG,
    /// MONITOR feed.
    pub fn after_command(
        &self,
        sess: &mut Session,
        spec: &'static CommandSpec,
        argv: &[Bytes],
        name: &'static str,
        usec: u64,
    ) {
        if let Some(info) = &sess.info {
            // Only a change takes the lock: a client repeating one command (a pipeline, a
            // shipper) leaves the name CLIENT LIST shows as it is.
            if !std::ptr::eq(name, sess.shown_cmd) {
                if let Ok(mut c) = info.last_cmd.lock() {
                    *c = name;
                }
                sess.shown_cmd = name;
            }
            info.db.store(sess.db, Ordering::Relaxed);
        }
        crate::cmd::server::record_slowlog(self, sess, spec, argv, usec);
        if self.monitor_count.load(Ordering::Relaxed) > 0 {
            crate::cmd::monitor::feed_monitors(self, sess, spec, argv);
        }
    }
}
