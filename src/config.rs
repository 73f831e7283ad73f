//! One configuration tree: embedded defaults < TOML file < command-line flags, plus
//! `CONFIG GET/SET` at run time.
//!
//! Every setting Redis also has uses Redis's own name and value syntax (`port`, `save`,
//! `maxmemory 1gb`, `appendonly yes`, `replicaof "host port"`), in the file, on the command line
//! (`--port 6380`) and in `CONFIG`. All three go through one table of parameters, so a name means
//! the same thing everywhere and an unknown name is an error that says which. The forward
//! door's `[[forward.route]]` and `[[forward.user]]` arrays of tables are not parameters:
//! `forward::route` reads and writes them, and `validate` compiles the routes.

use std::path::{Path, PathBuf};

use crate::forward::route::{self, ForwardUser, Route, Router};

/// A configuration problem, naming the setting at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A name no parameter has.
    #[error("unknown setting '{0}'")]
    Unknown(String),
    /// A value the parameter does not accept.
    #[error("invalid value for '{name}': {reason}")]
    Invalid {
        /// The setting.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The file could not be read or is not TOML.
    #[error("cannot read config file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The whole configuration is inconsistent (checked by `validate`).
    #[error("{0}")]
    Validation(String),
}

/// How often the AOF is fsynced (`appendfsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendFsync {
    /// After every write.
    Always,
    /// Once a second.
    Everysec,
    /// Left to the OS.
    No,
}

/// What a shutdown does beyond the default (`shutdown-on-sigterm`, `shutdown-on-sigint`, and
/// SHUTDOWN's own options): save even without save points, skip the save, skip waiting for
/// replicas, exit even if the final save fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownFlags {
    /// Save the final dump even without save points (`save`).
    pub save: bool,
    /// Skip the final dump (`nosave`).
    pub nosave: bool,
    /// Do not wait for lagging replicas (`now`).
    pub now: bool,
    /// Exit even if the final dump fails (`force`).
    pub force: bool,
}

impl ShutdownFlags {
    /// Parses Redis's multi-word form (`default`, `save`, `nosave`, `now`, `force`; `default`
    /// adds nothing), with Redis 7.0's errors.
    pub fn parse(v: &str) -> Result<Self, String> {
        let mut f = ShutdownFlags::default();
        for word in v.split_whitespace() {
            if !word.eq_ignore_ascii_case("default") && !f.add(word.as_bytes()) {
                return Err(
                    "argument(s) must be one of the following: default, save, nosave, now, force"
                        .into(),
                );
            }
        }
        if f.save && f.nosave {
            return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
        }
        Ok(f)
    }

    /// Sets the flag a word names (`save`, `nosave`, `now`, `force`, any case), as the
    /// settings and SHUTDOWN's arguments spell them; false for any other word.
    pub fn add(&mut self, word: &[u8]) -> bool {
        let flag = match word.to_ascii_lowercase().as_slice() {
            b"save" => &mut self.save,
            b"nosave" => &mut self.nosave,
            b"now" => &mut self.now,
            b"force" => &mut self.force,
            _ => return false,
        };
        *flag = true;
        true
    }

    /// Whether the final dump is made: with save points unless `nosave`, always with `save`
    /// (Redis's `finishShutdown`).
    pub fn saves(self, save_points: bool) -> bool {
        self.save || (save_points && !self.nosave)
    }
}

impl std::fmt::Display for ShutdownFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let words: Vec<&str> = [
            (self.save, "save"),
            (self.nosave, "nosave"),
            (self.now, "now"),
            (self.force, "force"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, w)| *w)
        .collect();
        if words.is_empty() {
            f.write_str("default")
        } else {
            f.write_str(&words.join(" "))
        }
    }
}

/// When the forward door acks a chunk (`[forward] ack_after`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckAfter {
    /// Once the chunk's commands are applied.
    Applied,
    /// Once they are fsynced to the AOF.
    Fsynced,
    /// Once `ack_replicas` replicas have them.
    Replicated,
}

/// Forward-door settings, with fluentd's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardConfig {
    /// Address to listen on.
    pub bind: String,
    /// TCP and UDP port (fluentd's 24224).
    pub port: u16,
    /// Shared key for the handshake; empty disables it.
    pub shared_key: String,
    /// Hostname announced in HELO/PONG.
    pub self_hostname: String,
    /// Largest chunk accepted, in bytes.
    pub chunk_size_limit: u64,
    /// Ack policy.
    pub ack_after: AckAfter,
    /// With `ack_after = "replicated"`: how many replicas must have a chunk before its ack.
    pub ack_replicas: usize,
    /// Most simultaneous forward connections (fluentd has no limit; kura bounds memory).
    pub max_connections: usize,
    /// Close connections idle for this many seconds (0 = never).
    pub idle_timeout: u64,
    /// Largest decompressed size of one compressed chunk (fluentd's gzip/zstd bomb cap).
    pub decompression_size_limit: u64,
    /// Seconds an acked chunk id is remembered, so a resend is acked without storing twice
    /// (0 disables).
    pub dedup_window: u64,
    /// Most chunk ids remembered for deduplication.
    pub dedup_max_chunks: usize,
    /// Close each connection after its first message (fluentd's `deny_keepalive`).
    pub deny_keepalive: bool,
    /// Drop events with a bad time or record instead of refusing the chunk (fluentd's
    /// `skip_invalid_event`, default true since v1.19).
    pub skip_invalid_event: bool,
    /// `[[forward.route]]` tables, tried in order.
    pub routes: Vec<Route>,
    /// `[[forward.user]]` tables for the handshake's user auth.
    pub users: Vec<ForwardUser>,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            bind: "127.0.0.1".into(),
            port: 24224,
            shared_key: String::new(),
            self_hostname: "kura".into(),
            chunk_size_limit: 16 * 1024 * 1024,
            ack_after: AckAfter::Applied,
            ack_replicas: 1,
            max_connections: 1024,
            idle_timeout: 600,
            decompression_size_limit: 256 * 1024 * 1024,
            dedup_window: 600,
            dedup_max_chunks: 100_000,
            deny_keepalive: false,
            skip_invalid_event: true,
            routes: vec![Route::default()],
            users: Vec::new(),
        }
    }
}

/// HTTP-door settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Address to listen on.
    pub bind: String,
    /// Port (redis_exporter's 9121).
    pub port: u16,
    /// Bearer token; empty disables auth.
    pub token: String,
    /// Seconds a request may take to produce its response head (a `/backup` body then
    /// streams for as long as it needs).
    pub request_timeout: u64,
    /// Requests served at once; more wait their turn (a scraper storm cannot starve the
    /// store of CPU).
    pub max_concurrent_requests: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            bind: "127.0.0.1".into(),
            port: 9121,
            token: String::new(),
            request_timeout: 30,
            max_concurrent_requests: 64,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Addresses the RESP door binds (`bind`, space separated).
    pub bind: Vec<String>,
    /// RESP port.
    pub port: u16,
    /// Refuse non-loopback binds without a password.
    pub protected_mode: bool,
    /// Password for the default user; empty means none.
    pub requirepass: String,
    /// Number of databases.
    pub databases: usize,
    /// Most simultaneous clients.
    pub maxclients: usize,
    /// Idle client timeout in seconds (0 = never).
    pub timeout: u64,
    /// TCP keepalive period in seconds (0 = off).
    pub tcp_keepalive: u64,
    /// Data directory.
    pub dir: PathBuf,
    /// RDB file name.
    pub dbfilename: String,
    /// Save points: (seconds, changes).
    pub save: Vec<(u64, u64)>,
    /// LZF-compress strings in RDB files.
    pub rdbcompression: bool,
    /// Write and check the RDB CRC64.
    pub rdbchecksum: bool,
    /// Microseconds to sleep after each key an RDB save writes (Redis's `rdb-key-save-delay`,
    /// for throttling a save or testing what happens while one runs); negative: sleep 1 µs
    /// after one key in `-n`, on average.
    pub rdb_key_save_delay: i64,
    /// Share of one core, in percent, a background save (BGSAVE, AOF rewrite) works while it
    /// runs; it pauses the rest of the time so clients keep their latency (kura's own; 100: as
    /// fast as it can, as Redis's fork child).
    pub snapshot_cpu_percent: u32,
    /// Seconds a shutdown waits for lagging replicas before saving and exiting
    /// (`shutdown-timeout`; 0: no wait).
    pub shutdown_timeout: u32,
    /// What SIGTERM's shutdown does beyond the default (`shutdown-on-sigterm`).
    pub shutdown_on_sigterm: ShutdownFlags,
    /// What SIGINT's shutdown does beyond the default (`shutdown-on-sigint`).
    pub shutdown_on_sigint: ShutdownFlags,
    /// Refuse writes after a failed background save.
    pub stop_writes_on_bgsave_error: bool,
    /// Who may run DEBUG (`enable-debug-command`): `no` (Redis 7.0's default), `yes`, or
    /// `local` (loopback clients only).
    pub enable_debug_command: String,
    /// Keep an append-only file.
    pub appendonly: bool,
    /// AOF fsync policy.
    pub appendfsync: AppendFsync,
    /// AOF base name.
    pub appendfilename: String,
    /// AOF directory (inside `dir`).
    pub appenddirname: String,
    /// Load an AOF whose last command was cut short, dropping that command
    /// (`aof-load-truncated`).
    pub aof_load_truncated: bool,
    /// Write AOF bases as RDB (`aof-use-rdb-preamble`); otherwise as commands.
    pub aof_use_rdb_preamble: bool,
    /// Rewrite when the AOF grew by this percent over its base (0 = never automatically).
    pub auto_aof_rewrite_percentage: u64,
    /// No automatic rewrite below this many bytes.
    pub auto_aof_rewrite_min_size: u64,
    /// Skip fsyncs while a rewrite runs (`no-appendfsync-on-rewrite`).
    pub no_appendfsync_on_rewrite: bool,
    /// fsync the AOF every 4 MB written during a rewrite (`aof-rewrite-incremental-fsync`).
    pub aof_rewrite_incremental_fsync: bool,
    /// fsync the RDB every 4 MB written during a save (`rdb-save-incremental-fsync`).
    pub rdb_save_incremental_fsync: bool,
    /// Master to follow: (host, port).
    pub replicaof: Option<(String, u16)>,
    /// Password for the master.
    pub masterauth: String,
    /// User for the master.
    pub masteruser: String,
    /// Replicas refuse writes.
    pub replica_read_only: bool,
    /// Replication backlog bytes.
    pub repl_backlog_size: u64,
    /// Seconds without replicas after which a master frees its backlog (0 = never).
    pub repl_backlog_ttl: u64,
    /// Full syncs stream the snapshot straight to replica sockets (`$EOF:` framing for
    /// replicas that announce `capa eof`) instead of writing `dump.rdb` first.
    pub repl_diskless_sync: bool,
    /// Seconds a diskless full sync waits for more replicas to share its snapshot.
    pub repl_diskless_sync_delay: u64,
    /// Start a delayed diskless sync at once when this many replicas wait (0 = no limit).
    pub repl_diskless_sync_max_replicas: u64,
    /// How a replica loads its master's snapshot: `disabled` (through a file in `dir`),
    /// `on-empty-db` or `swapdb` (from the socket, no file).
    pub repl_diskless_load: String,
    /// Seconds between the master's PINGs to its replicas.
    pub repl_ping_replica_period: u64,
    /// Seconds of silence after which either side drops the link.
    pub repl_timeout: u64,
    /// Sets TCP_NODELAY off on replica links (fewer, larger packets).
    pub repl_disable_tcp_nodelay: bool,
    /// A replica answers reads while its link is down; `no` answers `-MASTERDOWN`.
    pub replica_serve_stale_data: bool,
    /// Writes need this many good replicas (0 = off).
    pub min_replicas_to_write: u64,
    /// A good replica acked within this many seconds.
    pub min_replicas_max_lag: u64,
    /// The address a replica reports to its master (empty: the peer address).
    pub replica_announce_ip: String,
    /// The port a replica reports to its master (0: `port`).
    pub replica_announce_port: u16,
    /// Sentinel's promotion priority, shown in INFO (`slave_priority`).
    pub replica_priority: u64,
    /// Whether Sentinel lists this replica (`replica_announced`).
    pub replica_announced: bool,
    /// `client-output-buffer-limit`: (hard, soft, soft seconds) for normal clients,
    /// replicas and Pub/Sub clients.
    pub client_output_buffer_limit: [(u64, u64, u64); 3],
    /// Memory limit in bytes (0 = none).
    pub maxmemory: u64,
    /// What to do at the memory limit (kura supports `noeviction`).
    pub maxmemory_policy: String,
    /// Largest bulk argument.
    pub proto_max_bulk_len: u64,
    /// Largest unparsed client input.
    pub client_query_buffer_limit: u64,
    /// Background task frequency.
    pub hz: u32,
    /// Threads serving client I/O (Redis's `io-threads`, default 1): the engine is one
    /// ordered write path, so extra threads mostly add scheduling cost.
    pub io_threads: usize,
    /// Log level (Redis names: debug, verbose, notice, warning).
    pub loglevel: String,
    /// Log file; empty for standard output.
    pub logfile: String,
    /// SLOWLOG threshold in microseconds (negative disables).
    pub slowlog_log_slower_than: i64,
    /// SLOWLOG length.
    pub slowlog_max_len: u64,
    /// Per-command latency percentiles in `INFO latencystats`.
    pub latency_tracking: bool,
    /// Hash listpack limit (entries).
    pub hash_max_listpack_entries: u64,
    /// Hash listpack limit (value bytes).
    pub hash_max_listpack_value: u64,
    /// List node size (`-2` = 8 KiB).
    pub list_max_listpack_size: i64,
    /// Forward door.
    pub forward: ForwardConfig,
    /// HTTP door.
    pub http: HttpConfig,
    /// The file the configuration was loaded from (`--config`), absolute: `CONFIG REWRITE`
    /// writes there and `INFO` shows it. Not a setting itself.
    pub config_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: vec!["127.0.0.1".into()],
            port: 6379,
            protected_mode: true,
            requirepass: String::new(),
            databases: 16,
            maxclients: 10000,
            timeout: 0,
            tcp_keepalive: 300,
            dir: PathBuf::from("./data"),
            dbfilename: "dump.rdb".into(),
            save: vec![(3600, 1), (300, 100), (60, 10000)],
            rdbcompression: true,
            rdbchecksum: true,
            rdb_key_save_delay: 0,
            snapshot_cpu_percent: 50,
            shutdown_timeout: 10,
            shutdown_on_sigterm: ShutdownFlags::default(),
            shutdown_on_sigint: ShutdownFlags::default(),
            stop_writes_on_bgsave_error: true,
            enable_debug_command: "no".into(),
            appendonly: false,
            appendfsync: AppendFsync::Everysec,
            appendfilename: "appendonly.aof".into(),
            appenddirname: "appendonlydir".into(),
            aof_load_truncated: true,
            aof_use_rdb_preamble: true,
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: 64 * 1024 * 1024,
            no_appendfsync_on_rewrite: false,
            aof_rewrite_incremental_fsync: true,
            rdb_save_incremental_fsync: true,
            replicaof: None,
            masterauth: String::new(),
            masteruser: String::new(),
            replica_read_only: true,
            repl_backlog_size: 1024 * 1024,
            repl_backlog_ttl: 3600,
            repl_diskless_sync: true,
            repl_diskless_sync_delay: 5,
            repl_diskless_sync_max_replicas: 0,
            repl_diskless_load: "disabled".into(),
            repl_ping_replica_period: 10,
            repl_timeout: 60,
            repl_disable_tcp_nodelay: false,
            replica_serve_stale_data: true,
            min_replicas_to_write: 0,
            min_replicas_max_lag: 10,
            replica_announce_ip: String::new(),
            replica_announce_port: 0,
            replica_priority: 100,
            replica_announced: true,
            client_output_buffer_limit: [
                (0, 0, 0),
                (256 * 1024 * 1024, 64 * 1024 * 1024, 60),
                (32 * 1024 * 1024, 8 * 1024 * 1024, 60),
            ],
            maxmemory: 0,
            maxmemory_policy: "noeviction".into(),
            proto_max_bulk_len: 512 * 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            hz: 10,
            io_threads: 1,
            loglevel: "notice".into(),
            logfile: String::new(),
            slowlog_log_slower_than: 10000,
            slowlog_max_len: 128,
            latency_tracking: true,
            // Redis 7.0's default (redis.conf and config.c agree on 512).
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            list_max_listpack_size: -2,
            forward: ForwardConfig::default(),
            http: HttpConfig::default(),
            config_file: None,
        }
    }
}

// ---- VALUE SYNTAX ----
//
// The texts of the errors below are Redis 7.0's (`config.c`): `CONFIG SET` shows them after
// "CONFIG SET failed (possibly related to argument '<name>') - ".

/// Parses Redis's booleans: `yes`/`no` (TOML `true`/`false` arrive as those words).
fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// Parses a memory size with Redis's units (`1k` = 1000, `1kb` = 1024, … `gb`), as
/// Redis's `memtoull`: no sign, no spaces, no fractions.
pub fn parse_memory(v: &str) -> Result<u64, String> {
    let lower = v.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return Err("argument must be a memory value".into()),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| "argument must be a memory value".to_string())?;
    n.checked_mul(mul)
        .ok_or_else(|| "argument must be a memory value".to_string())
}

/// Parses an integer with `string2ll` rules and checks it against Redis's bounds for the
/// setting.
fn int_in(v: &str, min: i64, max: i64) -> Result<i64, String> {
    let n = crate::resp::decode::parse_i64(v.as_bytes())
        .ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
    in_bounds(n as i128, min as i128, max as i128)?;
    Ok(n)
}

/// Parses a memory value and checks it against Redis's bounds for the setting.
fn memory_in(v: &str, min: u64, max: u64) -> Result<u64, String> {
    let n = parse_memory(v)?;
    in_bounds(n as i128, min as i128, max as i128)?;
    Ok(n)
}

fn in_bounds(n: i128, min: i128, max: i128) -> Result<(), String> {
    if n < min || n > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(())
}

/// Converts a checked value to the field's type (the bounds already guarantee it fits).
fn fit<T: TryFrom<i64>>(n: i64) -> Result<T, String> {
    T::try_from(n).map_err(|_| "argument couldn't be parsed into an integer".to_string())
}

const INT_MAX: i64 = i32::MAX as i64;
const LONG_MAX: i64 = i64::MAX;

fn parse_save(v: &str) -> Result<Vec<(u64, u64)>, String> {
    let words: Vec<&str> = v.split_whitespace().collect();
    if !words.len().is_multiple_of(2) {
        return Err("Invalid save parameters".into());
    }
    words
        .chunks(2)
        .map(|p| {
            let s = p[0]
                .parse()
                .map_err(|_| "Invalid save parameters".to_string())?;
            let c = p[1]
                .parse()
                .map_err(|_| "Invalid save parameters".to_string())?;
            Ok((s, c))
        })
        .collect()
}

/// The class names of `client-output-buffer-limit`, in Redis's order (and its aliases).
const OUTPUT_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

fn format_output_limits(l: &[(u64, u64, u64); 3]) -> String {
    OUTPUT_CLASSES
        .iter()
        .zip(l)
        .map(|(name, (h, s, secs))| format!("{name} {h} {s} {secs}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses `<class> <hard> <soft> <soft seconds>` groups as Redis's
/// `setConfigClientOutputBufferLimitOption`: classes not named keep their limits.
fn parse_output_limits(
    v: &str,
    mut cur: [(u64, u64, u64); 3],
) -> Result<[(u64, u64, u64); 3], String> {
    let words: Vec<&str> = v.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    for group in words.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let mem = |w: &str| {
            parse_memory(w).map_err(|_| {
                "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                    .to_string()
            })
        };
        let secs: u64 = group[3].parse().map_err(|_| {
            "Error in hard, soft or soft_seconds setting in buffer limit configuration.".to_string()
        })?;
        cur[class] = (mem(group[1])?, mem(group[2])?, secs);
    }
    Ok(cur)
}

fn parse_replicaof(v: &str) -> Result<Option<(String, u16)>, String> {
    let words: Vec<&str> = v.split_whitespace().collect();
    match words.as_slice() {
        [] => Ok(None),
        [no, one] if no.eq_ignore_ascii_case("no") && one.eq_ignore_ascii_case("one") => Ok(None),
        [host, port] => Ok(Some((
            host.to_string(),
            port.parse().map_err(|_| "bad port")?,
        ))),
        _ => Err("expected \"<host> <port>\"".into()),
    }
}

/// Redis 7.0's eviction policies, in the order its error message lists them.
const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

/// Smallest replication backlog Redis keeps (`CONFIG_REPL_BACKLOG_MIN_SIZE`, 16kb).
pub const REPL_BACKLOG_MIN_SIZE: u64 = 16 * 1024;

// ---- THE PARAMETER TABLE ----

type Getter = fn(&Config) -> String;
type Setter = fn(&mut Config, &str) -> Result<(), String>;

/// Whether and how `CONFIG SET` may change a setting on a running server (Redis's
/// `MODIFIABLE_CONFIG`, `IMMUTABLE_CONFIG`, `PROTECTED_CONFIG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `CONFIG SET` changes it.
    Mutable,
    /// Only the file and the command line set it ("can't set immutable config").
    Immutable,
    /// Refused while `enable-protected-configs` is `no`, Redis 7.0's default
    /// ("can't set protected config"): `dir`, `dbfilename`.
    Protected,
}

/// How a value is written back to the TOML file by `CONFIG REWRITE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `yes`/`no`, written as `true`/`false`.
    Bool,
    /// A number, written bare.
    Int,
    /// Anything else, written as a quoted string.
    Str,
}

/// One named setting: how to read it and how to set it from text.
pub struct Param {
    /// The name, as in Redis (or `forward.<fluentd name>` / `http.<name>`).
    pub name: &'static str,
    /// Reads the current value as `CONFIG GET` shows it.
    pub get: Getter,
    /// Sets it from text, with Redis's syntax.
    pub set: Setter,
    /// Whether `CONFIG SET` may change it on a running server.
    pub mode: Mode,
    /// The value's TOML type.
    pub kind: Kind,
    /// Whether its value is a secret: SLOWLOG and MONITOR show `(redacted)` instead
    /// (Redis's `SENSITIVE_CONFIG`).
    pub sensitive: bool,
}

macro_rules! param {
    ($name:literal, $mode:ident, $kind:ident, |$c:ident| $get:expr, |$cs:ident, $v:ident| $set:expr) => {
        param!(@ $name, $mode, $kind, false, |$c| $get, |$cs, $v| $set)
    };
    (secret $name:literal, $mode:ident, $kind:ident, |$c:ident| $get:expr, |$cs:ident, $v:ident| $set:expr) => {
        param!(@ $name, $mode, $kind, true, |$c| $get, |$cs, $v| $set)
    };
    (@ $name:literal, $mode:ident, $kind:ident, $secret:expr, |$c:ident| $get:expr, |$cs:ident, $v:ident| $set:expr) => {
        Param {
            name: $name,
            get: |$c: &Config| $get,
            set: |$cs: &mut Config, $v: &str| {
                $set;
                Ok(())
            },
            mode: Mode::$mode,
            kind: Kind::$kind,
            sensitive: $secret,
        }
    };
}

/// Every setting kura has, in `CONFIG GET *` order.
pub static PARAMS: &[Param] = &[
    param!("bind", Immutable, Str, |c| c.bind.join(" "), |c, v| c
        .bind =
        v.split_whitespace().map(String::from).collect()),
    param!("port", Immutable, Int, |c| c.port.to_string(), |c, v| c
        .port =
        fit(int_in(v, 0, 65535)?)?),
    param!(
        "protected-mode",
        Mutable,
        Bool,
        |c| yes_no(c.protected_mode),
        |c, v| c.protected_mode = parse_bool(v)?
    ),
    param!(secret "requirepass", Mutable, Str, |c| c.requirepass.clone(), |c, v| c
        .requirepass =
        v.to_string()),
    param!(
        "databases",
        Immutable,
        Int,
        |c| c.databases.to_string(),
        |c, v| c.databases = fit(int_in(v, 1, INT_MAX)?)?
    ),
    param!(
        "maxclients",
        Mutable,
        Int,
        |c| c.maxclients.to_string(),
        |c, v| c.maxclients = fit(int_in(v, 1, u32::MAX as i64)?)?
    ),
    param!(
        "timeout",
        Mutable,
        Int,
        |c| c.timeout.to_string(),
        |c, v| c.timeout = fit(int_in(v, 0, INT_MAX)?)?
    ),
    param!(
        "tcp-keepalive",
        Mutable,
        Int,
        |c| c.tcp_keepalive.to_string(),
        |c, v| c.tcp_keepalive = fit(int_in(v, 0, INT_MAX)?)?
    ),
    param!(
        "dir",
        Protected,
        Str,
        |c| c.dir.display().to_string(),
        |c, v| c.dir = PathBuf::from(v)
    ),
    param!(
        "dbfilename",
        Protected,
        Str,
        |c| c.dbfilename.clone(),
        |c, v| c.dbfilename = v.to_string()
    ),
    param!(
        "save",
        Mutable,
        Str,
        |c| c
            .save
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(" "),
        |c, v| c.save = parse_save(v)?
    ),
    param!(
        "rdbcompression",
        Mutable,
        Bool,
        |c| yes_no(c.rdbcompression),
        |c, v| c.rdbcompression = parse_bool(v)?
    ),
    param!(
        "rdbchecksum",
        Immutable,
        Bool,
        |c| yes_no(c.rdbchecksum),
        |c, v| c.rdbchecksum = parse_bool(v)?
    ),
    param!(
        "snapshot-cpu-percent",
        Mutable,
        Int,
        |c| c.snapshot_cpu_percent.to_string(),
        |c, v| c.snapshot_cpu_percent = fit(int_in(v, 1, 100)?)?
    ),
    param!(
        "rdb-key-save-delay",
        Mutable,
        Int,
        |c| c.rdb_key_save_delay.to_string(),
        |c, v| c.rdb_key_save_delay = int_in(v, i32::MIN as i64, i32::MAX as i64)?
    ),
    param!(
        "shutdown-timeout",
        Mutable,
        Int,
        |c| c.shutdown_timeout.to_string(),
        |c, v| c.shutdown_timeout = fit(int_in(v, 0, INT_MAX)?)?
    ),
    param!(
        "shutdown-on-sigterm",
        Mutable,
        Str,
        |c| c.shutdown_on_sigterm.to_string(),
        |c, v| c.shutdown_on_sigterm = ShutdownFlags::parse(v)?
    ),
    param!(
        "shutdown-on-sigint",
        Mutable,
        Str,
        |c| c.shutdown_on_sigint.to_string(),
        |c, v| c.shutdown_on_sigint = ShutdownFlags::parse(v)?
    ),
    param!(
        "enable-debug-command",
        Immutable,
        Str,
        |c| c.enable_debug_command.clone(),
        |c, v| c.enable_debug_command = match v.to_ascii_lowercase().as_str() {
            m @ ("yes" | "no" | "local") => m.to_string(),
            _ => return Err("argument(s) must be one of the following: no, yes, local".into()),
        }
    ),
    param!(
        "stop-writes-on-bgsave-error",
        Mutable,
        Bool,
        |c| yes_no(c.stop_writes_on_bgsave_error),
        |c, v| c.stop_writes_on_bgsave_error = parse_bool(v)?
    ),
    param!(
        "appendonly",
        Mutable,
        Bool,
        |c| yes_no(c.appendonly),
        |c, v| c.appendonly = parse_bool(v)?
    ),
    param!(
        "appendfsync",
        Mutable,
        Str,
        |c| match c.appendfsync {
            AppendFsync::Always => "always".into(),
            AppendFsync::Everysec => "everysec".into(),
            AppendFsync::No => "no".into(),
        },
        |c, v| c.appendfsync = match v.to_ascii_lowercase().as_str() {
            "always" => AppendFsync::Always,
            "everysec" => AppendFsync::Everysec,
            "no" => AppendFsync::No,
            _ =>
                return Err("argument(s) must be one of the following: everysec, always, no".into()),
        }
    ),
    param!(
        "appendfilename",
        Immutable,
        Str,
        |c| c.appendfilename.clone(),
        |c, v| c.appendfilename = v.to_string()
    ),
    param!(
        "appenddirname",
        Immutable,
        Str,
        |c| c.appenddirname.clone(),
        |c, v| c.appenddirname = v.to_string()
    ),
    param!(
        "aof-load-truncated",
        Mutable,
        Bool,
        |c| yes_no(c.aof_load_truncated),
        |c, v| c.aof_load_truncated = parse_bool(v)?
    ),
    param!(
        "aof-use-rdb-preamble",
        Mutable,
        Bool,
        |c| yes_no(c.aof_use_rdb_preamble),
        |c, v| c.aof_use_rdb_preamble = parse_bool(v)?
    ),
    param!(
        "auto-aof-rewrite-percentage",
        Mutable,
        Int,
        |c| c.auto_aof_rewrite_percentage.to_string(),
        |c, v| c.auto_aof_rewrite_percentage = fit(int_in(v, 0, INT_MAX)?)?
    ),
    param!(
        "auto-aof-rewrite-min-size",
        Mutable,
        Int,
        |c| c.auto_aof_rewrite_min_size.to_string(),
        |c, v| c.auto_aof_rewrite_min_size = memory_in(v, 0, LONG_MAX as u64)?
    ),
    param!(
        "no-appendfsync-on-rewrite",
        Mutable,
        Bool,
        |c| yes_no(c.no_appendfsync_on_rewrite),
        |c, v| c.no_appendfsync_on_rewrite = parse_bool(v)?
    ),
    param!(
        "aof-rewrite-incremental-fsync",
        Mutable,
        Bool,
        |c| yes_no(c.aof_rewrite_incremental_fsync),
        |c, v| c.aof_rewrite_incremental_fsync = parse_bool(v)?
    ),
    param!(
        "rdb-save-incremental-fsync",
        Mutable,
        Bool,
        |c| yes_no(c.rdb_save_incremental_fsync),
        |c, v| c.rdb_save_incremental_fsync = parse_bool(v)?
    ),
    param!(
        "replicaof",
        Immutable,
        Str,
        |c| c
            .replicaof
            .as_ref()
            .map(|(h, p)| format!("{h} {p}"))
            .unwrap_or_default(),
        |c, v| c.replicaof = parse_replicaof(v)?
    ),
    param!(secret "masterauth", Mutable, Str, |c| c.masterauth.clone(), |c, v| c
        .masterauth =
        v.to_string()),
    param!(secret "masteruser", Mutable, Str, |c| c.masteruser.clone(), |c, v| c
        .masteruser =
        v.to_string()),
    param!(
        "replica-read-only",
        Mutable,
        Bool,
        |c| yes_no(c.replica_read_only),
        |c, v| c.replica_read_only = parse_bool(v)?
    ),
    param!(
        "repl-backlog-size",
        Mutable,
        Int,
        |c| c.repl_backlog_size.to_string(),
        // Redis keeps at least 16kb (`resizeReplicationBacklog`) and shows the clamped value.
        |c, v| c.repl_backlog_size = memory_in(v, 1, LONG_MAX as u64)?.max(REPL_BACKLOG_MIN_SIZE)
    ),
    param!(
        "repl-backlog-ttl",
        Mutable,
        Int,
        |c| c.repl_backlog_ttl.to_string(),
        |c, v| c.repl_backlog_ttl = fit(int_in(v, 0, LONG_MAX)?)?
    ),
    param!(
        "repl-diskless-sync",
        Mutable,
        Bool,
        |c| yes_no(c.repl_diskless_sync),
        |c, v| c.repl_diskless_sync = parse_bool(v)?
    ),
    param!(
        "repl-diskless-sync-delay",
        Mutable,
        Int,
        |c| c.repl_diskless_sync_delay.to_string(),
        |c, v| c.repl_diskless_sync_delay = fit(int_in(v, 0, INT_MAX)?)?
    ),
    param!(
        "repl-diskless-sync-max-replicas",
        Mutable,
        Int,
        |c| c.repl_diskless_sync_max_replicas.to_string(),
        |c, v| c.repl_diskless_sync_max_replicas = fit(int_in(v, 0, INT_MAX)?)?
    ),
    param!(
        "repl-diskless-load",
        Mutable,
        Str,
        |c| c.repl_diskless_load.clone(),
        |c, v| c.repl_diskless_load = match v.to_ascii_lowercase().as_str() {
            m @ ("disabled" | "on-empty-db" | "swapdb") => m.to_string(),
            _ =>
                return Err(
                    "argument(s) must be one of the following: disabled, on-empty-db, swapdb"
                        .into()
                ),
        }
    ),
    param!(
        "repl-ping-replica-period",
        Mutable,
        Int,
        |c| c.repl_ping_replica_period.to_string(),
        |c, v| c.repl_ping_replica_period = fit(int_in(v, 1, INT_MAX)?)?
    ),
    param!(
        "repl-timeout",
        Mutable,
        Int,
        |c| c.repl_timeout.to_string(),
        |c, v| c.repl_timeout = fit(int_in(v, 1, INT_MAX)?)?
    ),
    param!(
        "repl-disable-tcp-nodelay",
        Mutable,
        Bool,
        |c| yes_no(c.repl_disable_tcp_nodelay),
        |c, v| c.repl_disable_tcp_nodelay = parse_bool(v)?
    ),
    param!(
        "replica-serve-stale-data",
        Mutable,
        Bool,
        |c| yes_no(c.replica_serve_stale_data),
        |c, v| c.replica_serve_stale_data = parse_bool(v)?
    ),
    param!(
        "min-replicas-to-write",
        Mutable,
        Int,
        |c| c.min_replicas_to_write.to_string(),
        |c, v| c.min_replicas_to_write = fit(int_in(v, 0, INT_MAX)?)?
    ),
    param!(
        "min-replicas-max-lag",
        Mutable,
        Int,
        |c| c.min_replicas_max_lag.to_string(),
        |c, v| c.min_replicas_max_lag = fit(int_in(v, 0, INT_MAX)?)?
    ),
    param!(
        "replica-announce-ip",
        Mutable,
        Str,
        |c| c.replica_announce_ip.clone(),
        |c, v| c.replica_announce_ip = v.to_string()
    ),
    param!(
        "replica-announce-port",
        Mutable,
        Int,
        |c| c.replica_announce_port.to_string(),
        |c, v| c.replica_announce_port = fit(int_in(v, 0, 65535)?)?
    ),
    param!(
        "replica-priority",
        Mutable,
        Int,
        |c| c.replica_priority.to_string(),
        |c, v| c.replica_priority = fit(int_in(v, 0, INT_MAX)?)?
    ),
    param!(
        "replica-announced",
        Mutable,
        Bool,
        |c| yes_no(c.replica_announced),
        |c, v| c.replica_announced = parse_bool(v)?
    ),
    param!(
        "client-output-buffer-limit",
        Mutable,
        Str,
        |c| format_output_limits(&c.client_output_buffer_limit),
        |c, v| c.client_output_buffer_limit = parse_output_limits(v, c.client_output_buffer_limit)?
    ),
    param!(
        "maxmemory",
        Mutable,
        Int,
        |c| c.maxmemory.to_string(),
        |c, v| c.maxmemory = parse_memory(v)?
    ),
    param!(
        "maxmemory-policy",
        Mutable,
        Str,
        |c| c.maxmemory_policy.clone(),
        |c, v| {
            let lower = v.to_ascii_lowercase();
            if !POLICIES.contains(&lower.as_str()) {
                return Err(format!(
                    "argument(s) must be one of the following: {}",
                    POLICIES.join(", ")
                ));
            }
            if lower != "noeviction" {
                return Err(
                    "kura supports only 'noeviction': a log store never drops records".into(),
                );
            }
            c.maxmemory_policy = lower
        }
    ),
    param!(
        "proto-max-bulk-len",
        Mutable,
        Int,
        |c| c.proto_max_bulk_len.to_string(),
        |c, v| c.proto_max_bulk_len = memory_in(v, 1024 * 1024, LONG_MAX as u64)?
    ),
    param!(
        "client-query-buffer-limit",
        Mutable,
        Int,
        |c| c.client_query_buffer_limit.to_string(),
        |c, v| c.client_query_buffer_limit = memory_in(v, 1024 * 1024, LONG_MAX as u64)?
    ),
    // Redis clamps hz to 1..=500 (`CONFIG_MIN_HZ`, `CONFIG_MAX_HZ`) and shows the clamped value.
    param!("hz", Mutable, Int, |c| c.hz.to_string(), |c, v| c.hz =
        fit::<u32>(int_in(v, 0, INT_MAX)?)?.clamp(1, 500)),
    param!(
        "io-threads",
        Immutable,
        Int,
        |c| c.io_threads.to_string(),
        |c, v| c.io_threads = fit::<usize>(int_in(v, 1, 128)?)?
    ),
    param!("loglevel", Mutable, Str, |c| c.loglevel.clone(), |c, v| {
        let l = v.to_ascii_lowercase();
        // "nothing" is accepted as in Redis 7.2; the error lists 7.0's levels.
        if !["debug", "verbose", "notice", "warning", "nothing"].contains(&l.as_str()) {
            return Err(
                "argument(s) must be one of the following: debug, verbose, notice, warning".into(),
            );
        }
        c.loglevel = l
    }),
    param!("logfile", Immutable, Str, |c| c.logfile.clone(), |c, v| c
        .logfile =
        v.to_string()),
    param!(
        "slowlog-log-slower-than",
        Mutable,
        Int,
        |c| c.slowlog_log_slower_than.to_string(),
        |c, v| c.slowlog_log_slower_than = int_in(v, -1, LONG_MAX)?
    ),
    param!(
        "slowlog-max-len",
        Mutable,
        Int,
        |c| c.slowlog_max_len.to_string(),
        |c, v| c.slowlog_max_len = fit(int_in(v, 0, LONG_MAX)?)?
    ),
    param!(
        "latency-tracking",
        Mutable,
        Bool,
        |c| yes_no(c.latency_tracking),
        |c, v| c.latency_tracking = parse_bool(v)?
    ),
    param!(
        "hash-max-listpack-entries",
        Mutable,
        Int,
        |c| c.hash_max_listpack_entries.to_string(),
        |c, v| c.hash_max_listpack_entries = fit(int_in(v, 0, LONG_MAX)?)?
    ),
    param!(
        "hash-max-listpack-value",
        Mutable,
        Int,
        |c| c.hash_max_listpack_value.to_string(),
        |c, v| c.hash_max_listpack_value = fit(int_in(v, 0, LONG_MAX)?)?
    ),
    param!(
        "list-max-listpack-size",
        Mutable,
        Int,
        |c| c.list_max_listpack_size.to_string(),
        |c, v| c.list_max_listpack_size = int_in(v, i32::MIN as i64, INT_MAX)?
    ),
    param!(
        "forward.bind",
        Immutable,
        Str,
        |c| c.forward.bind.clone(),
        |c, v| { c.forward.bind = v.to_string() }
    ),
    param!(
        "forward.port",
        Immutable,
        Int,
        |c| c.forward.port.to_string(),
        |c, v| c.forward.port = fit(int_in(v, 0, 65535)?)?
    ),
    param!(
        secret "forward.shared_key",
        Immutable,
        Str,
        |c| c.forward.shared_key.clone(),
        |c, v| c.forward.shared_key = v.to_string()
    ),
    param!(
        "forward.self_hostname",
        Immutable,
        Str,
        |c| c.forward.self_hostname.clone(),
        |c, v| c.forward.self_hostname = v.to_string()
    ),
    param!(
        "forward.chunk_size_limit",
        Immutable,
        Int,
        |c| c.forward.chunk_size_limit.to_string(),
        |c, v| c.forward.chunk_size_limit = parse_memory(v)?
    ),
    param!(
        "forward.ack_after",
        Immutable,
        Str,
        |c| match c.forward.ack_after {
            AckAfter::Applied => "applied".into(),
            AckAfter::Fsynced => "fsynced".into(),
            AckAfter::Replicated => "replicated".into(),
        },
        |c, v| c.forward.ack_after = match v {
            "applied" => AckAfter::Applied,
            "fsynced" => AckAfter::Fsynced,
            "replicated" => AckAfter::Replicated,
            _ => return Err("must be one of: applied, fsynced, replicated".into()),
        }
    ),
    param!(
        "forward.ack_replicas",
        Immutable,
        Int,
        |c| c.forward.ack_replicas.to_string(),
        |c, v| c.forward.ack_replicas = fit(int_in(v, 1, INT_MAX)?)?
    ),
    param!(
        "forward.max_connections",
        Immutable,
        Int,
        |c| c.forward.max_connections.to_string(),
        |c, v| c.forward.max_connections = fit(int_in(v, 1, INT_MAX)?)?
    ),
    param!(
        "forward.idle_timeout",
        Immutable,
        Int,
        |c| c.forward.idle_timeout.to_string(),
        |c, v| c.forward.idle_timeout = fit(int_in(v, 0, INT_MAX)?)?
    ),
    param!(
        "forward.decompression_size_limit",
        Immutable,
        Int,
        |c| c.forward.decompression_size_limit.to_string(),
        |c, v| c.forward.decompression_size_limit = memory_in(v, 1, LONG_MAX as u64)?
    ),
    param!(
        "forward.dedup_window",
        Immutable,
        Int,
        |c| c.forward.dedup_window.to_string(),
        |c, v| c.forward.dedup_window = fit(int_in(v, 0, INT_MAX)?)?
    ),
    param!(
        "forward.dedup_max_chunks",
        Immutable,
        Int,
        |c| c.forward.dedup_max_chunks.to_string(),
        |c, v| c.forward.dedup_max_chunks = fit(int_in(v, 0, INT_MAX)?)?
    ),
    param!(
        "forward.deny_keepalive",
        Immutable,
        Bool,
        |c| yes_no(c.forward.deny_keepalive),
        |c, v| c.forward.deny_keepalive = parse_bool(v)?
    ),
    param!(
        "forward.skip_invalid_event",
        Immutable,
        Bool,
        |c| yes_no(c.forward.skip_invalid_event),
        |c, v| c.forward.skip_invalid_event = parse_bool(v)?
    ),
    param!(
        "http.bind",
        Immutable,
        Str,
        |c| c.http.bind.clone(),
        |c, v| c.http.bind = v.to_string()
    ),
    param!(
        "http.port",
        Immutable,
        Int,
        |c| c.http.port.to_string(),
        |c, v| c.http.port = fit(int_in(v, 0, 65535)?)?
    ),
    param!(secret "http.token", Immutable, Str, |c| c.http.token.clone(), |c, v| c
        .http
        .token =
        v.to_string()),
    param!(
        "http.request_timeout",
        Immutable,
        Int,
        |c| c.http.request_timeout.to_string(),
        |c, v| c.http.request_timeout = fit(int_in(v, 1, INT_MAX)?)?
    ),
    param!(
        "http.max_concurrent_requests",
        Immutable,
        Int,
        |c| c.http.max_concurrent_requests.to_string(),
        |c, v| c.http.max_concurrent_requests = fit(int_in(v, 1, 65535)?)?
    ),
];

/// Old names Redis still accepts for a setting, each listed by `CONFIG GET *` as well
/// (Redis 7.0 `config.c` aliases): (alias, name).
pub static ALIASES: &[(&str, &str)] = &[
    ("slaveof", "replicaof"),
    ("slave-read-only", "replica-read-only"),
    ("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    ("hash-max-ziplist-value", "hash-max-listpack-value"),
    ("list-max-ziplist-size", "list-max-listpack-size"),
];

/// Finds a parameter by name or alias, ignoring ASCII case.
pub fn find_param(name: &str) -> Option<&'static Param> {
    let lower = name.to_ascii_lowercase();
    let canonical = ALIASES
        .iter()
        .find(|(alias, _)| *alias == lower)
        .map_or(lower.as_str(), |(_, n)| n);
    PARAMS.iter().find(|p| p.name == canonical)
}

impl Config {
    /// Sets one parameter from text, as a config file line, a flag or `CONFIG SET` would.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let p = find_param(name).ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
        (p.set)(self, value).map_err(|reason| ConfigError::Invalid {
            name: name.to_string(),
            reason,
        })
    }

    /// Reads one parameter as text.
    pub fn get(&self, name: &str) -> Option<String> {
        find_param(name).map(|p| (p.get)(self))
    }

    /// Renders the configuration as TOML for `CONFIG REWRITE`: `old` (the file's current
    /// text) is kept line by line, comments included; each `name = value` line of a known
    /// setting gets the current value, and settings that differ from their default but are
    /// missing from the file are appended to their table (as Redis's `rewriteConfig` keeps
    /// the file and appends what it lacks).
    pub fn rewrite_toml(&self, old: &str) -> String {
        let defaults = Config::default();
        let mut seen = std::collections::HashSet::new();
        let mut out: Vec<String> = Vec::new();
        let mut table = String::new();
        // Per table: the index in `out` after which missing settings go (its last setting,
        // else its header; `None` for the top level before any setting).
        let mut anchors: Vec<(String, Option<usize>)> = vec![(String::new(), None)];
        // Open brackets of a multi-line array being replaced: its lines are dropped.
        let mut depth = 0i32;
        // Open brackets of a multi-line value of a key that is not a setting (an inline
        // `route = [ … ]` array): its lines are kept, and nothing is inserted inside it.
        let mut kept = 0i32;
        for line in old.lines() {
            if depth > 0 {
                depth += scan_toml(line).0;
                continue;
            }
            if kept > 0 {
                kept += scan_toml(line).0;
                out.push(line.to_string());
                if let Some(a) = anchors.iter_mut().rev().find(|(t, _)| *t == table) {
                    a.1 = Some(out.len() - 1);
                }
                continue;
            }
            let trimmed = line.trim();
            if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                table = name.trim().to_string();
                out.push(line.to_string());
                anchors.push((table.clone(), Some(out.len() - 1)));
                continue;
            }
            let key = (!trimmed.starts_with('#'))
                .then(|| trimmed.split_once('='))
                .flatten()
                .map(|(k, _)| k.trim().trim_matches('"'));
            let Some(key) = key else {
                out.push(line.to_string());
                continue;
            };
            let full = if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            };
            match find_param(&full) {
                Some(p) => {
                    let indent = &line[..line.len() - line.trim_start().len()];
                    let value_part = trimmed.split_once('=').map_or("", |(_, v)| v);
                    let (open, comment) = scan_toml(value_part);
                    depth = open.max(0);
                    let comment = comment
                        .map(|c| format!(" {}", &value_part[c..]))
                        .unwrap_or_default();
                    out.push(format!(
                        "{indent}{key} = {}{comment}",
                        toml_value(p, &(p.get)(self))
                    ));
                    seen.insert(p.name);
                }
                None => {
                    let value_part = trimmed.split_once('=').map_or("", |(_, v)| v);
                    kept = scan_toml(value_part).0.max(0);
                    out.push(line.to_string());
                }
            }
            if let Some(a) = anchors.iter_mut().rev().find(|(t, _)| *t == table) {
                a.1 = Some(out.len() - 1);
            }
        }
        let mut inserts: Vec<(usize, String)> = Vec::new();
        let mut new_tables: Vec<(&str, Vec<String>)> = Vec::new();
        for p in PARAMS {
            let value = (p.get)(self);
            if seen.contains(p.name) || value == (p.get)(&defaults) {
                continue;
            }
            let (tname, key) = p.name.split_once('.').unwrap_or(("", p.name));
            let line = format!("{key} = {}", toml_value(p, &value));
            match anchors.iter().find(|(t, _)| t == tname) {
                Some((_, at)) => inserts.push((at.map_or(0, |i| i + 1), line)),
                None => match new_tables.iter_mut().find(|(t, _)| *t == tname) {
                    Some((_, lines)) => lines.push(line),
                    None => new_tables.push((tname, vec![line])),
                },
            }
        }
        // Insert from the bottom up so earlier positions stay valid; a stable sort keeps
        // the table order among lines for the same position.
        inserts.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
        let mut i = 0;
        while i < inserts.len() {
            let at = inserts[i].0;
            let mut j = i;
            while j < inserts.len() && inserts[j].0 == at {
                j += 1;
            }
            for (k, (_, line)) in inserts[i..j].iter().enumerate() {
                out.insert(at + k, line.clone());
            }
            i = j;
        }
        for (t, lines) in new_tables {
            out.push(String::new());
            out.push(format!("[{t}]"));
            out.extend(lines);
        }
        // Routes and users cannot change at run time, so the file's own tables (kept above
        // line by line, as unknown keys of the `[forward.route]` "table") are the running
        // ones. Only when the file lacks them (deleted, or loaded from elsewhere) are they
        // written out, after everything else: array tables may follow any table.
        let file_has = |what: &str| {
            old.parse::<toml::Table>()
                .ok()
                .and_then(|t| t.get("forward")?.get(what).map(|_| ()))
                .is_some()
        };
        if self.forward.routes != defaults.forward.routes && !file_has("route") {
            out.extend(route::routes_to_toml(&self.forward.routes));
        }
        if self.forward.users != defaults.forward.users && !file_has("user") {
            out.extend(route::users_to_toml(&self.forward.users));
        }
        let mut text = out.join("\n");
        text.push('\n');
        text
    }

    /// Applies a TOML document: top-level keys are Redis settings, `[forward]` and `[http]`
    /// tables hold those doors' settings. `[[forward.route]]` and `[[forward.user]]` tables,
    /// when given, replace the whole list (the default route included).
    pub fn apply_toml(&mut self, text: &str) -> Result<(), ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::File {
                path: String::new(),
                reason: e.to_string(),
            })?;
        for (key, value) in &table {
            match (key.as_str(), value) {
                ("forward" | "http", toml::Value::Table(t)) => {
                    for (k, v) in t {
                        match (key.as_str(), k.as_str()) {
                            ("forward", "route") => {
                                self.forward.routes = route::routes_from_toml(v)?;
                                continue;
                            }
                            ("forward", "user") => {
                                self.forward.users = route::users_from_toml(v)?;
                                continue;
                            }
                            _ => {}
                        }
                        self.set(
                            &format!("{key}.{k}"),
                            &toml_scalar(&format!("{key}.{k}"), v)?,
                        )?;
                    }
                }
                _ => self.set(key, &toml_scalar(key, value)?)?,
            }
        }
        Ok(())
    }

    /// Loads a TOML file over the current values.
    pub fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        self.apply_toml(&text).map_err(|e| match e {
            ConfigError::File { reason, .. } => ConfigError::File {
                path: path.display().to_string(),
                reason,
            },
            other => other,
        })
    }

    /// Builds a configuration from command-line arguments (without the program name):
    /// `--config FILE` first, then Redis-style `--name value` pairs over it.
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> Result<Config, ConfigError> {
        let args: Vec<String> = args.into_iter().collect();
        let mut file = None;
        let mut pairs = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            let Some(name) = a.strip_prefix("--") else {
                return Err(ConfigError::Validation(format!(
                    "unexpected argument '{a}': settings are given as --name value"
                )));
            };
            let value = args
                .get(i + 1)
                .cloned()
                .ok_or_else(|| ConfigError::Invalid {
                    name: name.to_string(),
                    reason: "missing value".into(),
                })?;
            match name {
                "config" => file = Some(PathBuf::from(value)),
                "forward-port" => pairs.push(("forward.port".to_string(), value)),
                "http-port" => pairs.push(("http.port".to_string(), value)),
                _ => pairs.push((name.to_string(), value)),
            }
            i += 2;
        }
        let mut cfg = Config::default();
        if let Some(f) = file {
            cfg.apply_file(&f)?;
            // Redis keeps the absolute path: CONFIG REWRITE must find the file after a chdir.
            cfg.config_file = Some(std::path::absolute(&f).unwrap_or(f));
        }
        for (k, v) in pairs {
            cfg.set(&k, &v)?;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the settings together, once they are all known.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.databases == 0 {
            return Err(ConfigError::Validation(
                "databases must be at least 1".into(),
            ));
        }
        if self.bind.is_empty() {
            return Err(ConfigError::Validation(
                "bind needs at least one address".into(),
            ));
        }
        if self.protected_mode && self.requirepass.is_empty() {
            if let Some(a) = self.bind.iter().find(|a| !is_loopback(a)) {
                return Err(ConfigError::Validation(format!(
                    "refusing to bind {a} without requirepass while protected-mode is yes: \
                     set requirepass, bind 127.0.0.1, or set protected-mode no"
                )));
            }
        }
        if self.proto_max_bulk_len < 1024 * 1024 {
            return Err(ConfigError::Validation(
                "proto-max-bulk-len must be at least 1mb".into(),
            ));
        }
        if self.client_query_buffer_limit < 1024 * 1024 {
            return Err(ConfigError::Validation(
                "client-query-buffer-limit must be at least 1mb".into(),
            ));
        }
        if self.hz == 0 || self.hz > 500 {
            return Err(ConfigError::Validation(
                "hz must be between 1 and 500".into(),
            ));
        }
        // The forward door's only credential is the shared key: the same protection as
        // RESP's, so an open log door is never exposed by accident.
        let fbind = self.forward.bind.trim();
        if self.protected_mode
            && self.forward.shared_key.is_empty()
            && !fbind.is_empty()
            && !is_loopback(fbind)
        {
            return Err(ConfigError::Validation(format!(
                "refusing to bind the forward door to {fbind} without forward.shared_key while \
                 protected-mode is yes: set shared_key, bind 127.0.0.1, or set protected-mode no"
            )));
        }
        match self.forward.ack_after {
            AckAfter::Applied => {}
            AckAfter::Fsynced if !self.appendonly || self.appendfsync == AppendFsync::No => {
                return Err(ConfigError::Validation(
                    "forward.ack_after = \"fsynced\" needs appendonly yes and appendfsync \
                     always or everysec: otherwise nothing is ever fsynced to ack after"
                        .into(),
                ));
            }
            AckAfter::Fsynced => {}
            AckAfter::Replicated => {}
        }
        self.validate_forward_tables()
    }

    /// Checks `[[forward.route]]` and `[[forward.user]]`: every route compiles (pattern, key
    /// template, time format, time zone) and names an existing database.
    fn validate_forward_tables(&self) -> Result<(), ConfigError> {
        let f = &self.forward;
        if f.routes.is_empty() {
            return Err(ConfigError::Validation(
                "forward.route is empty: every forwarded record would be dropped \
                 (keep a catch-all route with match = \"**\")"
                    .into(),
            ));
        }
        Router::new(&f.routes).map_err(|e| ConfigError::Validation(e.to_string()))?;
        if let Some((i, r)) = f
            .routes
            .iter()
            .enumerate()
            .find(|(_, r)| r.db >= self.databases)
        {
            return Err(ConfigError::Validation(format!(
                "forward.route[{}]: db {} is out of range (databases is {})",
                i + 1,
                r.db,
                self.databases
            )));
        }
        if !f.users.is_empty() && f.shared_key.is_empty() {
            return Err(ConfigError::Validation(
                "forward.user needs forward.shared_key: users authenticate inside the \
                 shared-key handshake"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Scans a piece of a TOML line outside strings: returns how many brackets it leaves open
/// and where a `#` comment starts.
fn scan_toml(text: &str) -> (i32, Option<usize>) {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '[' => depth += 1,
                ']' => depth -= 1,
                '#' => return (depth, Some(i)),
                _ => {}
            },
        }
    }
    (depth, None)
}

/// Formats a setting's value as a TOML value of its kind.
fn toml_value(p: &Param, value: &str) -> String {
    match p.kind {
        Kind::Bool => (value == "yes").to_string(),
        Kind::Int if crate::resp::decode::parse_i64(value.as_bytes()).is_some() => value.into(),
        _ => {
            let mut s = String::from("\"");
            for c in value.chars() {
                match c {
                    '"' => s.push_str("\\\""),
                    '\\' => s.push_str("\\\\"),
                    '\n' => s.push_str("\\n"),
                    c if c.is_control() => s.push_str(&format!("\\u{:04x}", c as u32)),
                    c => s.push(c),
                }
            }
            s.push('"');
            s
        }
    }
}

/// Returns the text of `deploy/kura.toml` with its marked example routes uncommented
/// (`# ` lines become TOML, `##` lines stay comments): how the shipped examples are parsed
/// and exercised by the tests.
pub fn uncomment_example_routes(text: &str) -> String {
    let begin = "# ---- BEGIN EXAMPLE ROUTES ----";
    let end = "# ---- END EXAMPLE ROUTES ----";
    let Some((head, rest)) = text.split_once(begin) else {
        return text.to_string();
    };
    let Some((block, tail)) = rest.split_once(end) else {
        return text.to_string();
    };
    let block: Vec<&str> = block
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(code) if !l.starts_with("##") => code,
            _ => l,
        })
        .collect();
    format!("{head}{}\n{tail}", block.join("\n"))
}

/// Reports whether a bind address only accepts local connections.
pub fn is_loopback(addr: &str) -> bool {
    let a = addr.trim_start_matches('-');
    a == "localhost"
        || a.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn toml_scalar(name: &str, v: &toml::Value) -> Result<String, ConfigError> {
    Ok(match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Boolean(b) => yes_no(*b),
        toml::Value::Array(items) => items
            .iter()
            .map(|i| toml_scalar(name, i))
            .collect::<Result<Vec<_>, _>>()?
            .join(" "),
        _ => {
            return Err(ConfigError::Invalid {
                name: name.to_string(),
                reason: "expected a string, number, boolean or list".into(),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_after_fsynced_needs_an_fsyncing_aof() {
        let refused = |cfg: &Config| matches!(cfg.validate(), Err(ConfigError::Validation(m)) if m.contains("ack_after"));
        let mut cfg = Config::default();
        cfg.set("forward.ack_after", "replicated").unwrap();
        assert!(cfg.validate().is_ok());
        let mut cfg = Config::default();
        cfg.set("forward.ack_after", "fsynced").unwrap();
        assert!(refused(&cfg), "without the AOF");
        cfg.set("appendonly", "yes").unwrap();
        assert!(cfg.validate().is_ok(), "everysec");
        cfg.set("appendfsync", "no").unwrap();
        assert!(refused(&cfg), "appendfsync no never fsyncs");
        cfg.set("appendfsync", "always").unwrap();
        assert!(cfg.validate().is_ok(), "always");
    }

    #[test]
    fn forward_door_on_a_public_address_needs_a_shared_key() {
        let mut cfg = Config::default();
        cfg.forward.bind = "0.0.0.0".into();
        assert!(
            matches!(cfg.validate(), Err(ConfigError::Validation(m)) if m.contains("shared_key"))
        );
        cfg.forward.shared_key = "k".into();
        assert_eq!(cfg.validate(), Ok(()));
        cfg.forward.shared_key.clear();
        cfg.protected_mode = false;
        assert_eq!(cfg.validate(), Ok(()));
        // An empty bind closes the door: nothing to protect.
        let mut cfg = Config::default();
        cfg.forward.bind = String::new();
        assert_eq!(cfg.validate(), Ok(()));
    }

    #[test]
    fn example_file_equals_defaults() {
        let text = include_str!("../deploy/kura.toml");
        let mut cfg = Config::default();
        cfg.apply_toml(text).expect("deploy/kura.toml parses");
        cfg.validate().expect("deploy/kura.toml validates");
        assert_eq!(cfg, Config::default());
    }

    /// Uncomments the `# ` lines between `# ---- BEGIN <marker> ----` and its END line.
    fn uncomment_block(text: &str, marker: &str) -> String {
        let begin = format!("# ---- BEGIN {marker} ----");
        let end = format!("# ---- END {marker} ----");
        let (head, rest) = text.split_once(&begin).unwrap();
        let (block, tail) = rest.split_once(&end).unwrap();
        let block: Vec<&str> = block
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(code) if !l.starts_with("##") => code,
                _ if l == "#" => "",
                _ => l,
            })
            .collect();
        format!("{head}{}\n{tail}", block.join("\n"))
    }

    /// The names (`forward.port` for a table's key) of the settings a TOML document sets.
    fn keys_set(text: &str) -> Vec<String> {
        let table: toml::Table = text.parse().unwrap();
        let mut keys = Vec::new();
        for (k, v) in &table {
            match v {
                toml::Value::Table(t) => keys.extend(t.keys().map(|sub| format!("{k}.{sub}"))),
                _ => keys.push(k.clone()),
            }
        }
        keys
    }

    #[test]
    fn replica_example_differs_from_defaults_only_in_replicaof() {
        let text = include_str!("../deploy/kura-replica.toml");
        for k in keys_set(text) {
            assert!(
                find_param(&k).is_some_and(|p| p.name == k),
                "{k} is not a setting's own name"
            );
        }
        let mut cfg = Config::default();
        cfg.apply_toml(text)
            .expect("deploy/kura-replica.toml parses");
        cfg.validate().expect("deploy/kura-replica.toml validates");
        // The other keys it sets document a replica's defaults; only the master is new.
        let mut expected = Config {
            replicaof: Some(("kura-master".into(), 6379)),
            ..Config::default()
        };
        assert_eq!(cfg, expected);

        // The same-host block, uncommented: another port for every door, nothing else.
        let same_host = uncomment_block(text, "SAME HOST");
        let mut cfg = Config::default();
        cfg.apply_toml(&same_host).unwrap();
        cfg.validate().unwrap();
        expected.port = 6380;
        expected.forward.port = 24225;
        expected.http.port = 9122;
        assert_eq!(cfg, expected);
    }

    #[test]
    fn example_file_names_every_setting() {
        let text = include_str!("../deploy/kura.toml");
        for p in PARAMS {
            let key = p.name.rsplit('.').next().unwrap_or(p.name);
            assert!(
                text.contains(&format!("{key} =")),
                "deploy/kura.toml lacks {}",
                p.name
            );
        }
    }

    /// README's configuration reference: one row per setting, in the order of `PARAMS`,
    /// with the default `CONFIG GET` shows and whether `CONFIG SET` may change it.
    #[test]
    fn readme_reference_lists_every_setting_with_its_default() {
        let readme = include_str!("../README.md");
        let table = readme
            .split("<!-- config-reference:start -->")
            .nth(1)
            .and_then(|t| t.split("<!-- config-reference:end -->").next())
            .expect("README has the config-reference markers");
        let rows: Vec<(String, String, String)> = table
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split(" | ").collect();
                let unquote = |c: &str| c.trim().trim_matches('`').to_string();
                (
                    unquote(cells[0]),
                    unquote(cells[1]),
                    cells[2].trim().to_string(),
                )
            })
            .collect();
        let defaults = Config::default();
        let expected: Vec<(String, String, String)> = PARAMS
            .iter()
            .map(|p| {
                let run_time = match p.mode {
                    Mode::Mutable => "yes",
                    Mode::Immutable | Mode::Protected => "no",
                };
                (p.name.to_string(), (p.get)(&defaults), run_time.to_string())
            })
            .collect();
        if rows != expected {
            let mut want = String::new();
            for (n, d, m) in &expected {
                want.push_str(&format!("| `{n}` | `{d}` | {m} | |\n"));
            }
            panic!(
                "README's configuration reference differs from the code; rows expected:\n{want}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let mut cfg = Config::default();
        assert_eq!(
            cfg.apply_toml("prot = 1"),
            Err(ConfigError::Unknown("prot".into()))
        );
        assert_eq!(
            cfg.apply_toml("[forward]\nportt = 1"),
            Err(ConfigError::Unknown("forward.portt".into()))
        );
    }

    #[test]
    fn flags_override_file_and_use_redis_syntax() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k.toml");
        std::fs::write(&f, "port = 7000\nmaxmemory = \"1gb\"\n").unwrap();
        let args = [
            "--config",
            f.to_str().unwrap(),
            "--port",
            "6380",
            "--replicaof",
            "h 7",
        ];
        let cfg = Config::from_args(args.iter().map(|s| s.to_string())).unwrap();
        assert_eq!(cfg.port, 6380);
        assert_eq!(cfg.maxmemory, 1 << 30);
        assert_eq!(cfg.replicaof, Some(("h".into(), 7)));
        let cfg = Config::from_args(["--forward-port", "1"].map(String::from)).unwrap();
        assert_eq!(cfg.forward.port, 1);
    }

    #[test]
    fn protected_mode_refuses_open_bind() {
        let mut cfg = Config::default();
        cfg.set("bind", "0.0.0.0").unwrap();
        assert!(matches!(cfg.validate(), Err(ConfigError::Validation(_))));
        cfg.set("requirepass", "x").unwrap();
        assert!(cfg.validate().is_ok());
        cfg.set("requirepass", "").unwrap();
        cfg.set("protected-mode", "no").unwrap();
        assert!(cfg.validate().is_ok());
    }

    #[test]
    fn rewrite_keeps_comments_and_replaces_arrays() {
        let mut cfg = Config::default();
        cfg.set("save", "60 5").unwrap();
        cfg.set("maxmemory", "1kb").unwrap();
        cfg.set("forward.port", "7000").unwrap();
        let old = "# top\nmaxmemory = 0 # \"none\" here\nsave = [\n  \"3600 1\",\n  \"300 100\",\n]\n\n[http]\nport = 9121\n";
        let new = cfg.rewrite_toml(old);
        assert_eq!(
            new,
            "# top\nmaxmemory = 1024 # \"none\" here\nsave = \"60 5\"\n\n[http]\nport = 9121\n\n[forward]\nport = 7000\n"
        );
        let mut back = Config::default();
        back.apply_toml(&new).unwrap();
        assert_eq!(back.save, vec![(60, 5)]);
        assert_eq!(back.forward.port, 7000);
    }

    #[test]
    fn example_routes_parse_and_route() {
        use crate::forward::route::{RecordFormat, RouteMode};
        let text = uncomment_example_routes(include_str!("../deploy/kura.toml"));
        let mut cfg = Config::default();
        cfg.apply_toml(&text).expect("the example routes parse");
        cfg.validate().expect("the example routes validate");
        let r = &cfg.forward.routes;
        assert_eq!(r.len(), 5, "four examples and the catch-all");
        assert_eq!(
            r[0],
            Route {
                pattern: "app.**".into(),
                key: "logs:${tag}:%Y%m%d".into(),
                maxlen: 1_000_000,
                ttl: 604_800,
                ..Route::default()
            }
        );
        assert_eq!(
            r[1],
            Route {
                pattern: "metrics.*".into(),
                mode: RouteMode::Hash,
                key: "${tag}.%s".into(),
                ..Route::default()
            }
        );
        assert_eq!(
            r[2],
            Route {
                pattern: "audit".into(),
                key: "audit".into(),
                format: RecordFormat::Msgpack,
                publish: true,
                db: 1,
                ..Route::default()
            }
        );
        assert_eq!(
            r[3],
            Route {
                pattern: "{nginx,apache}.access **.error".into(),
                key: "web:${tag_parts[0]}:%Y-%m-%d".into(),
                time_format: "%Y-%m-%dT%H:%M:%S.%L%:z".into(),
                timezone: "+09:00".into(),
                ..Route::default()
            }
        );
        assert_eq!(r[4], Route::default());
        // The examples route as their comments say (event time 2015-09-07T20:00:00Z).
        let router = Router::new(r).unwrap();
        let place = |tag: &str| {
            let route = router.find(tag.as_bytes()).unwrap();
            let mut key = Vec::new();
            route.key.render(tag.as_bytes(), 1_441_656_000, &mut key);
            (String::from_utf8(key).unwrap(), route.db)
        };
        assert_eq!(place("app.web"), ("logs:app.web:20150907".into(), 0));
        assert_eq!(place("metrics.cpu"), ("metrics.cpu.1441656000".into(), 0));
        assert_eq!(place("audit"), ("audit".into(), 1));
        assert_eq!(place("nginx.access"), ("web:nginx:2015-09-08".into(), 0));
        assert_eq!(place("db.main.error"), ("web:db:2015-09-08".into(), 0));
        assert_eq!(place("nginx.error.x"), ("nginx.error.x".into(), 0));
        assert_eq!(place("other"), ("other".into(), 0));
    }

    #[test]
    fn example_file_documents_routes() {
        let text = include_str!("../deploy/kura.toml");
        for key in route::ROUTE_KEYS {
            assert!(
                text.contains(&format!("\n{key} = ")) && text.contains(&format!("#   {key} ")),
                "deploy/kura.toml does not document route key {key}"
            );
        }
        // The users example is valid once uncommented (it needs a shared key).
        let users = text
            .split_once("# ---- users ----")
            .unwrap()
            .1
            .split("\n[")
            .next()
            .unwrap();
        let users: String = users
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.starts_with('[') || l.contains(" = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let mut cfg = Config::default();
        cfg.apply_toml(&format!("[forward]\nshared_key = \"k\"\n{users}"))
            .unwrap();
        cfg.validate().unwrap();
        assert_eq!(
            cfg.forward.users,
            vec![ForwardUser {
                username: "fluentd".into(),
                password: "change-me".into()
            }]
        );
    }

    #[test]
    fn forward_settings() {
        let mut cfg = Config::default();
        cfg.apply_toml(
            "[forward]\nmax_connections = 10\nidle_timeout = 0\n\
             decompression_size_limit = \"1mb\"\ndedup_window = 0\ndedup_max_chunks = 5\n\
             deny_keepalive = true\nskip_invalid_event = \"no\"\n",
        )
        .unwrap();
        let f = &cfg.forward;
        assert_eq!(
            (
                f.max_connections,
                f.idle_timeout,
                f.decompression_size_limit
            ),
            (10, 0, 1 << 20)
        );
        assert_eq!((f.dedup_window, f.dedup_max_chunks), (0, 5));
        assert!(f.deny_keepalive && !f.skip_invalid_event);
        assert_eq!(cfg.get("forward.deny_keepalive").as_deref(), Some("yes"));
        assert_eq!(
            Config::default()
                .get("forward.decompression_size_limit")
                .as_deref(),
            Some("268435456")
        );
        assert!(cfg.set("forward.max_connections", "0").is_err());
    }

    #[test]
    fn routes_replace_the_default_and_errors_are_named() {
        let mut cfg = Config::default();
        cfg.apply_toml("[[forward.route]]\nmatch = \"a.*\"\n")
            .unwrap();
        assert_eq!(cfg.forward.routes.len(), 1);
        assert_eq!(cfg.forward.routes[0].pattern, "a.*");
        assert_eq!(
            Config::default().apply_toml("[[forward.route]]\n[[forward.route]]\nmtch = 1\n"),
            Err(ConfigError::Unknown("forward.route[2].mtch".into()))
        );
        assert_eq!(
            Config::default()
                .apply_toml("[[forward.user]]\nusername = \"u\"\npassword = \"p\"\nuid = 1\n"),
            Err(ConfigError::Unknown("forward.user[1].uid".into()))
        );
        let invalid = |toml: &str| {
            let mut cfg = Config::default();
            cfg.apply_toml(toml).unwrap();
            match cfg.validate() {
                Err(ConfigError::Validation(m)) => m,
                other => panic!("{toml}: {other:?}"),
            }
        };
        assert_eq!(
            invalid("[[forward.route]]\n[[forward.route]]\ndb = 16\n"),
            "forward.route[2]: db 16 is out of range (databases is 16)"
        );
        assert!(invalid("[[forward.route]]\nkey = \"${host}\"\n")
            .starts_with("forward.route[1]: key \"${host}\": unknown placeholder '${host}'"));
        assert!(invalid("[[forward.route]]\ntimezone = \"Asia/Tokyo\"\n")
            .starts_with("forward.route[1]: timezone \"Asia/Tokyo\""));
        assert!(invalid("[[forward.route]]\nmode = \"hash\"\nmaxlen = 5\n")
            .contains("maxlen applies to list routes only"));
        assert!(invalid("[forward]\nroute = []\n").starts_with("forward.route is empty"));
        assert!(
            invalid("[[forward.user]]\nusername = \"u\"\npassword = \"p\"\n")
                .starts_with("forward.user needs forward.shared_key")
        );
        let mut cfg = Config::default();
        cfg.apply_toml("databases = 32\n[[forward.route]]\ndb = 31\n")
            .unwrap();
        cfg.validate().unwrap();
    }

    #[test]
    fn rewrite_keeps_route_and_user_tables() {
        let old = "port = 6379\n\n[forward]\n# door\nport = 24224\n\n\
                   # specific first\n[[forward.route]]\nmatch = \"app.{a,b}.**\"  # apps\n\
                   key = \"logs:${tag}:%Y%m%d\"\nmaxlen = 10\nport = 1\n\n\
                   [[forward.route]]\n\n[[forward.user]]\nusername = \"u\"\n\
                   password = \"p\"\n\n[http]\nport = 9121\n";
        let fixed = old.replace("maxlen = 10\nport = 1\n", "maxlen = 10\n");
        let mut cfg = Config::default();
        cfg.apply_toml(&fixed).unwrap();
        cfg.set("forward.idle_timeout", "5").unwrap();
        let mut moved = cfg.clone();
        moved.set("forward.port", "7000").unwrap();
        // Route and user lines are untouched, even a key named like a [forward] setting
        // (`port` here, which a route does not accept but rewrite must not touch).
        let new = moved.rewrite_toml(old);
        assert!(
            new.contains(
                "# specific first\n[[forward.route]]\nmatch = \"app.{a,b}.**\"  # apps\n\
                 key = \"logs:${tag}:%Y%m%d\"\nmaxlen = 10\nport = 1\n"
            ),
            "{new}"
        );
        assert!(
            new.contains("[forward]\n# door\nport = 7000\nidle_timeout = 5\n"),
            "{new}"
        );
        // An inline array of routes stays whole: the missing setting goes after it.
        let inline = "[forward]\nport = 24224\nroute = [\n  { match = \"a\", ttl = 5 },\n  \
                      { key = \"k\" },\n]\n";
        let mut cfg2 = Config::default();
        cfg2.apply_toml(inline).unwrap();
        cfg2.set("forward.idle_timeout", "5").unwrap();
        let new = cfg2.rewrite_toml(inline);
        assert_eq!(new, format!("{inline}idle_timeout = 5\n"));
        let mut back = Config::default();
        back.apply_toml(&new).unwrap();
        assert_eq!(back, cfg2);

        let new = cfg.rewrite_toml(&fixed);
        let mut back = Config::default();
        back.apply_toml(&new).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(
            cfg.rewrite_toml(&new),
            new,
            "rewriting again changes nothing"
        );

        // A file without the tables (deleted since start) gets them appended, after a new
        // [forward] table of settings, and reads back the same.
        for base in ["", "[forward]\nport = 24224\n", "[http]\nport = 1\n"] {
            let new = cfg.rewrite_toml(base);
            let mut back = Config::default();
            back.apply_toml(&new)
                .unwrap_or_else(|e| panic!("{e}\n{new}"));
            if base.starts_with("[http]") {
                back.http.port = 9121;
            }
            assert_eq!(back, cfg, "{new}");
        }
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1mb"), Ok(1 << 20));
        assert_eq!(parse_memory("1m"), Ok(1_000_000));
        assert_eq!(parse_memory("5"), Ok(5));
        assert!(parse_memory("x").is_err());
    }
}
