//! The one write path: every command from every door runs through [`execute`].
//!
//! `execute` does Redis's `processCommand` checks in Redis's order (unknown command, arity,
//! auth, transaction queueing, OOM, READONLY, Pub/Sub context), then runs the handler with the
//! engine locked and, if the command changed the dataset, appends its normalised form to the
//! write stream before the lock is released — so apply order and stream order are one order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::blocking::Blocked;
use super::reply::{c_str, CmdError, Reply};
use super::server::full_name;
use super::session::Session;
use super::table::{flags, lookup, CmdMap, CmdName, CommandSpec};
use super::{Argv, Origin};
use crate::replication::wait::NOREPLICAS;
use crate::replication::WriteStream;
use crate::state::ServerState;
use crate::store::{Db, Entry, Keyspace};

/// Per-command counters for `INFO commandstats`.
#[derive(Debug, Default, Clone)]
pub struct CmdStat {
    /// Calls that ran.
    pub calls: u64,
    /// Total microseconds spent.
    pub usec: u64,
    /// Calls refused before running (arity, auth, …).
    pub rejected: u64,
    /// Calls that ran and returned an error.
    pub failed: u64,
}

/// Counters kept under the engine lock.
#[derive(Debug, Default, Clone)]
pub struct EngineStats {
    /// Read lookups that found the key.
    pub keyspace_hits: u64,
    /// Read lookups that did not.
    pub keyspace_misses: u64,
    /// Keys removed because their time ran out.
    pub expired_keys: u64,
    /// Times the active cycle stopped on its time budget.
    pub expired_time_cap_reached_count: u64,
    /// Commands executed.
    pub total_commands_processed: u64,
    /// Error replies sent.
    pub total_error_replies: u64,
    /// Records RESP clients stored: list elements pushed and hashes written (what
    /// fluent-plugin-redis and list-mode outputs send), for the ingest rate by door.
    pub resp_records: u64,
}

/// The clients watching one key: (client id, its dirty flag).
pub type Watchers = Vec<(u64, Arc<AtomicBool>)>;

/// Everything guarded by the engine lock: the data, the write stream and what must change
/// in the same order as the data.
#[derive(Debug)]
pub struct EngineState {
    /// The data.
    pub ks: Keyspace,
    /// The ordered write stream (replication offset, AOF source).
    pub stream: WriteStream,
    /// Clients blocked on list keys.
    pub blocked: Blocked,
    /// WATCHed keys → the flags of the clients watching them.
    pub watched: HashMap<(usize, Bytes), Watchers>,
    /// Changes since the last save (`rdb_changes_since_last_save`).
    pub dirty: u64,
    /// Counters.
    pub stats: EngineStats,
    /// `INFO commandstats`, by full command name.
    pub cmdstats: CmdMap<CmdStat>,
    /// `INFO errorstats`, by error code.
    pub errorstats: HashMap<String, u64>,
    /// Whether this server follows a master (no own expiry, READONLY for clients).
    pub is_replica: bool,
    /// Per-command latency histograms and the instantaneous-rate samples.
    pub tracking: super::server::Tracking,
    /// Randomness for RANDOMKEY, SCAN-free sampling, HRANDFIELD.
    pub rng: SmallRng,
}

impl EngineState {
    /// Returns a fresh state with `databases` empty databases.
    pub fn new(databases: usize, backlog: usize) -> Self {
        EngineState {
            ks: Keyspace::new(databases),
            stream: WriteStream::new(backlog),
            blocked: Blocked::default(),
            watched: HashMap::new(),
            dirty: 0,
            stats: EngineStats::default(),
            cmdstats: Default::default(),
            errorstats: HashMap::new(),
            is_replica: false,
            tracking: Default::default(),
            rng: SmallRng::from_entropy(),
        }
    }

    /// Marks WATCHers of `key` as dirty (Redis's `signalModifiedKey` → `touchWatchedKey`).
    pub fn touch(&mut self, db: usize, key: &[u8]) {
        if self.watched.is_empty() {
            return;
        }
        if let Some(w) = self.watched.get(&(db, Bytes::copy_from_slice(key))) {
            for (_, flag) in w {
                flag.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Marks every WATCHer of a key in `db` as dirty (FLUSHDB, SWAPDB).
    pub fn touch_db(&mut self, db: usize) {
        for ((d, _), w) in &self.watched {
            if *d == db {
                for (_, flag) in w {
                    flag.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    /// Counts an error reply under its code (the first word of its text).
    pub fn count_error(&mut self, text: impl AsRef<[u8]>) {
        let text = text.as_ref();
        let code = text.split(|&b| b == b' ').next().unwrap_or(b"ERR");
        let code = String::from_utf8_lossy(code);
        match self.errorstats.get_mut(code.as_ref()) {
            Some(n) => *n += 1,
            None => {
                self.errorstats.insert(code.into_owned(), 1);
            }
        }
        self.stats.total_error_replies += 1;
    }
}

/// The engine: the lock around [`EngineState`].
#[derive(Debug)]
pub struct Engine {
    state: Mutex<EngineState>,
}

impl Engine {
    /// Returns an engine over empty databases.
    pub fn new(databases: usize, backlog: usize) -> Self {
        Engine {
            state: Mutex::new(EngineState::new(databases, backlog)),
        }
    }

    /// Locks the engine. Held only for CPU work, never across an `.await`.
    pub fn lock(&self) -> EngineGuard<'_> {
        // A panic while holding the lock poisons it; the data is still consistent per command,
        // so keep serving rather than take every client down.
        EngineGuard(self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The locked engine. Releasing it wakes whoever tails the write stream (replica feeders)
/// once for everything written meanwhile, whichever door wrote.
pub struct EngineGuard<'a>(MutexGuard<'a, EngineState>);

impl std::ops::Deref for EngineGuard<'_> {
    type Target = EngineState;

    fn deref(&self) -> &EngineState {
        &self.0
    }
}

impl std::ops::DerefMut for EngineGuard<'_> {
    fn deref_mut(&mut self) -> &mut EngineState {
        &mut self.0
    }
}

impl Drop for EngineGuard<'_> {
    fn drop(&mut self) {
        self.0.stream.wake_tailers();
    }
}

/// What a blocked command waits for; the connection awaits it after the lock is released.
#[derive(Debug)]
pub struct BlockRequest {
    /// Delivers the reply when another client's push serves this one.
    pub rx: tokio::sync::oneshot::Receiver<Reply>,
    /// The waiter's id in [`Blocked`], to withdraw it on timeout or disconnect.
    pub waiter: u64,
    /// How long to wait (`None` = forever).
    pub timeout: Option<Duration>,
    /// The reply on timeout (`*-1` or `$-1`, per command).
    pub timeout_reply: Reply,
    /// WAIT: the replica acks to wait for (the reply is the count reached, not
    /// `timeout_reply`); `None` for commands blocked on keys.
    pub acks: Option<crate::replication::wait::AckWait>,
}

/// The context a handler runs in.
pub struct Ctx<'a> {
    /// Engine state, locked.
    pub st: &'a mut EngineState,
    /// The calling client's session.
    pub sess: &'a mut Session,
    /// Server-wide state (config, clients, pub/sub, stats).
    pub srv: &'a ServerState,
    /// Unix ms at command start (Redis caches it per command, too).
    pub now: i64,
    /// Changes made by this command.
    pub dirty: u64,
    /// Normalised commands to log instead of the original argv.
    pub rewrite: Option<Vec<Argv>>,
    /// List keys that received elements (serve blocked clients afterwards).
    pub ready: Vec<(usize, Bytes)>,
    /// Set by a blocking command that found nothing.
    pub block: Option<BlockRequest>,
    /// False inside MULTI/EXEC and for non-client origins: blocking commands answer at once.
    pub may_block: bool,
    /// Set by WAIT: append `REPLCONF GETACK *` to the stream once the command is done (as
    /// Redis does from `beforeSleep`, so it is not part of the client's write offset).
    pub request_acks: bool,
}

impl<'a> Ctx<'a> {
    /// Returns the selected database.
    pub fn db(&mut self) -> &mut Db {
        &mut self.st.ks.dbs[self.sess.db]
    }

    /// Returns the index of the selected database.
    pub fn dbi(&self) -> usize {
        self.sess.db
    }

    /// Reports whether `key` in database `db` has expired; deletes it on a master
    /// (propagating `DEL`, as Redis's `expireIfNeeded`).
    pub fn expire_if_needed(&mut self, db: usize, key: &[u8]) -> bool {
        let Some(at) = self.st.ks.dbs[db].get(key).and_then(|e| e.expire_at()) else {
            return false;
        };
        if at > self.now {
            return false;
        }
        // Nothing expires while the AOF loads (Redis `keyIsExpired`: `if (server.loading)
        // return 0`): a later command of the file may still use the key, as it did when
        // the file was written. Expiry catches up once the load is done.
        if self.sess.origin == Origin::AofLoad {
            return false;
        }
        if self.st.is_replica {
            // A replica waits for its master's DEL; the master's own stream still sees the key.
            return self.sess.origin != Origin::Master;
        }
        self.st.ks.dbs[db].remove(key);
        self.st.stats.expired_keys += 1;
        let del = vec![Bytes::from_static(b"DEL"), Bytes::copy_from_slice(key)];
        self.st.stream.append(db, &del);
        self.st.touch(db, key);
        true
    }

    /// Looks a key up for reading (`lookupKeyRead`): expiry applied, hits/misses counted, and
    /// the access time (`OBJECT IDLETIME`) updated as Redis's LRU clock is.
    pub fn lookup_read(&mut self, key: &[u8]) -> Option<&Entry> {
        let db = self.sess.db;
        let Some(slot) = self.live_slot(db, key) else {
            self.st.stats.keyspace_misses += 1;
            return None;
        };
        self.st.stats.keyspace_hits += 1;
        let access = (self.now / 1000) as u32;
        self.st.ks.dbs[db].at_touched(slot, access)
    }

    /// Finds a key that has not expired with a single hash lookup, deleting it (through
    /// [`Ctx::expire_if_needed`]) when its time is up.
    fn live_slot(&mut self, db: usize, key: &[u8]) -> Option<crate::store::Slot> {
        let slot = self.st.ks.dbs[db].locate(key)?;
        let due = self.st.ks.dbs[db]
            .at(slot)
            .and_then(|e| e.expire_at())
            .is_some_and(|at| at <= self.now);
        if due && self.expire_if_needed(db, key) {
            return None;
        }
        Some(slot)
    }

    /// Looks a key up for reading without updating its access time (`LOOKUP_NOTOUCH`: EXISTS,
    /// TYPE, the TTL family, OBJECT, SCAN's TYPE filter); expiry applied, hits/misses counted.
    pub fn lookup_read_notouch(&mut self, key: &[u8]) -> Option<&Entry> {
        let db = self.sess.db;
        let Some(slot) = self.live_slot(db, key) else {
            self.st.stats.keyspace_misses += 1;
            return None;
        };
        self.st.stats.keyspace_hits += 1;
        self.st.ks.dbs[db].at(slot)
    }

    /// Looks a key up for writing (`lookupKeyWrite`): expiry applied, no hit counting, the
    /// access time updated.
    pub fn lookup_write(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let db = self.sess.db;
        let slot = self.live_slot(db, key)?;
        let access = (self.now / 1000) as u32;
        let e = self.st.ks.dbs[db].at_mut(slot)?;
        e.access = access;
        Some(e)
    }

    /// Reports whether a live key exists, without counting a hit or miss.
    pub fn exists(&mut self, key: &[u8]) -> bool {
        let db = self.sess.db;
        self.live_slot(db, key).is_some()
    }

    /// Records that the command changed the dataset `n` times.
    pub fn add_dirty(&mut self, n: u64) {
        self.dirty += n;
    }

    /// Replaces what is logged for this command with `argv` (may be called several times).
    pub fn propagate(&mut self, argv: Argv) {
        self.rewrite.get_or_insert_with(Vec::new).push(argv);
    }

    /// Signals that `key` in the selected database was modified (WATCH).
    pub fn touch(&mut self, key: &[u8]) {
        let db = self.sess.db;
        self.st.touch(db, key);
    }

    /// Signals that list `key` received elements, so blocked clients are served.
    pub fn signal_ready(&mut self, key: &[u8]) {
        if self.st.blocked.has_waiters(self.sess.db, key) {
            self.ready.push((self.sess.db, Bytes::copy_from_slice(key)));
        }
    }
}

/// The outcome of one command for the connection.
#[derive(Debug)]
pub struct Outcome {
    /// The reply (already counted in stats).
    pub reply: Reply,
    /// A block to await, for blocking commands.
    pub block: Option<BlockRequest>,
}

/// Redis's unknown-command error, arguments echoed as `processCommand` formats them: raw
/// bytes, each cut at its first NUL (`%s`), the name to 128 bytes and the quoted arguments
/// to about 128 bytes in all.
fn unknown_command(argv: &[Bytes]) -> Bytes {
    let mut args: Vec<u8> = Vec::new();
    for a in &argv[1..] {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        args.push(b'\'');
        args.extend_from_slice(c_str(a, room));
        args.extend_from_slice(b"' ");
    }
    let mut out = b"ERR unknown command '".to_vec();
    out.extend_from_slice(c_str(&argv[0], 128));
    out.extend_from_slice(b"', with args beginning with: ");
    out.extend_from_slice(&args);
    Bytes::from(out)
}

/// Reports whether `sess` may run DEBUG (`enable-debug-command`; `local` admits loopback
/// clients and the server's own sessions).
fn debug_allowed(srv: &ServerState, sess: &Session) -> bool {
    match srv.with_config(|c| c.enable_debug_command.clone()).as_str() {
        "yes" => true,
        "local" => sess.info.as_ref().is_none_or(|i| i.addr.ip().is_loopback()),
        _ => false,
    }
}

/// The reply to writes while RDB saving fails (`stop-writes-on-bgsave-error`).
const MISCONF: &[u8] = b"MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// Checks one command against Redis's `processCommand` rules; returns the spec or the error
/// reply (and whether it must abort a surrounding MULTI).
fn check(
    srv: &ServerState,
    sess: &mut Session,
    argv: &[Bytes],
) -> Result<&'static CommandSpec, (Bytes, bool)> {
    let Some(spec) = sess.lookup.lookup(&argv[0]) else {
        return Err((unknown_command(argv), true));
    };
    if !spec.arity_ok(argv.len()) {
        return Err((CmdError::Arity(spec.name.to_string()).into_bytes(), true));
    }
    // Subcommand existence and arity, protected commands: before auth, abort a MULTI.
    if let Err(e) = super::server::precheck(spec, argv, || debug_allowed(srv, sess)) {
        return Err((e.into_bytes(), true));
    }
    if sess.origin == Origin::Master || sess.origin == Origin::AofLoad {
        return Ok(spec);
    }
    if !sess.authenticated && !spec.has(flags::NO_AUTH) {
        return Err((CmdError::NoAuth.into_bytes(), false));
    }
    if sess.multi.is_some() && spec.has(flags::NO_MULTI) {
        return Err((
            Bytes::from_static(b"ERR Command not allowed inside a transaction"),
            true,
        ));
    }
    // An EXEC counts as a write (or as denied on OOM) when its queue holds one, and a refusal
    // then aborts the transaction: `EXECABORT Transaction discarded because of: <error>`
    // (Redis `processCommand`'s `is_write_command` / `is_denyoom_command`, `rejectCommand`
    // → `execCommandAbort`).
    let exec = spec.name == "exec";
    let refuse = |text: Bytes| {
        if exec {
            let why = String::from_utf8_lossy(&text);
            (Bytes::from(format!("{EXECABORT_BECAUSE}{why}")), true)
        } else {
            (text, true)
        }
    };
    // Inside MULTI every command but EXEC, DISCARD, QUIT and RESET is refused on OOM:
    // queueing could take unbounded memory.
    let queueing =
        sess.multi.is_some() && !matches!(spec.name, "exec" | "discard" | "quit" | "reset");
    let denyoom = spec.has(flags::DENYOOM) || queueing || (exec && queues(sess, flags::DENYOOM));
    if denyoom && srv.over_maxmemory() {
        return Err(refuse(CmdError::Oom.into_bytes()));
    }
    let write = spec.has(flags::WRITE) || (exec && queues(sess, flags::WRITE));
    // MISCONF after a failed background save, for writes and PING (Redis's order: after
    // OOM, before READONLY; spec §1.5).
    if write || spec.name == "ping" {
        if crate::persist::save::writes_denied(srv) {
            return Err(refuse(Bytes::from_static(MISCONF)));
        }
        if let Some(e) = crate::persist::aof::rewrite::write_error(srv) {
            let text = format!("MISCONF Errors writing to the AOF file: {e}");
            return Err(refuse(text.into()));
        }
    }
    // NOREPLICAS (`min-replicas-to-write`): after MISCONF, before READONLY.
    if write && !crate::replication::wait::enough_good_replicas(srv) {
        return Err(refuse(Bytes::from_static(NOREPLICAS.as_bytes())));
    }
    if write && srv.is_read_only_replica() {
        return Err(refuse(CmdError::ReadOnly.into_bytes()));
    }
    if sess.in_pubsub_context() && !spec.has(flags::PUBSUB_CONTEXT) {
        return Err((
            format!(
                "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                full_name(spec, argv)
            )
            .into(),
            false,
        ));
    }
    // A replica whose link is down, with `replica-serve-stale-data no`: only STALE-flagged
    // commands (INFO, REPLICAOF, ...); an EXEC only if everything it queued is STALE too.
    if srv
        .repl
        .master_down
        .load(std::sync::atomic::Ordering::Acquire)
        && denies_stale(spec, sess)
        && !srv.with_config(|c| c.replica_serve_stale_data)
    {
        return Err((
            Bytes::from_static(
                b"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
            ),
            true,
        ));
    }
    // The dataset is still being loaded: only LOADING-flagged commands (INFO, PING, ...).
    if srv.loading.load(std::sync::atomic::Ordering::Relaxed) && !spec.has(flags::LOADING) {
        return Err((
            Bytes::from_static(b"LOADING Redis is loading the dataset in memory"),
            true,
        ));
    }
    // A MONITOR is a replica to Redis (CLIENT_SLAVE): it may not touch the keyspace.
    if sess.monitor && spec.has(flags::WRITE | flags::READONLY | flags::MAY_REPLICATE) {
        return Err((
            Bytes::from_static(b"ERR Replica can't interact with the keyspace"),
            true,
        ));
    }
    Ok(spec)
}

/// The start of an EXEC refused as a whole (Redis `execCommandAbort`): the transaction is
/// discarded.
const EXECABORT_BECAUSE: &str = "EXECABORT Transaction discarded because of: ";

/// Reports whether the transaction `sess` queued holds a command with `flag` (Redis
/// `c->mstate.cmd_flags`).
fn queues(sess: &Session, flag: u32) -> bool {
    sess.multi.as_ref().is_some_and(|q| {
        q.iter()
            .any(|argv| lookup(&argv[0]).is_some_and(|s| s.has(flag)))
    })
}

/// Reports whether a command may not run on a replica serving no stale data (Redis
/// `is_denystale_command`: not STALE, or an EXEC with a queued command that is not).
fn denies_stale(spec: &CommandSpec, sess: &Session) -> bool {
    if !spec.has(flags::STALE) {
        return true;
    }
    spec.name == "exec"
        && sess.multi.as_ref().is_some_and(|q| {
            q.iter()
                .any(|argv| lookup(&argv[0]).is_some_and(|s| !s.has(flags::STALE)))
        })
}

/// Executes one command for `sess`: checks, MULTI queueing, the handler, propagation, stats.
pub fn execute(srv: &ServerState, sess: &mut Session, argv: Argv) -> Outcome {
    let mut st = srv.engine.lock();
    execute_locked(srv, &mut st, sess, argv)
}

/// [`execute`] with the engine already locked: a connection runs a whole read batch of
/// pipelined commands under one lock acquisition.
pub fn execute_locked(
    srv: &ServerState,
    st: &mut EngineState,
    sess: &mut Session,
    argv: Argv,
) -> Outcome {
    let spec = match check(srv, sess, &argv) {
        Ok(spec) => spec,
        Err((text, abort_multi)) => {
            if abort_multi && sess.multi.is_some() {
                sess.multi_error = true;
            }
            // An unknown subcommand has no command to count against (Redis: `c->cmd` NULL).
            let known = lookup(&argv[0]).filter(|spec| {
                spec.subcommands.is_empty() || argv.len() < 2 || full_name(spec, &argv) != spec.name
            });
            if let Some(spec) = known {
                st.cmdstats
                    .entry(CmdName(full_name(spec, &argv)))
                    .or_default()
                    .rejected += 1;
            }
            st.count_error(&text);
            if text.starts_with(EXECABORT_BECAUSE.as_bytes()) {
                super::txn::abort_transaction(st, sess);
            }
            return Outcome {
                reply: Reply::Error(text),
                block: None,
            };
        }
    };
    if sess.multi.is_some() && !spec.has(flags::TXN_CONTROL) {
        if let Some(q) = sess.multi.as_mut() {
            q.push(argv);
        }
        return Outcome {
            reply: Reply::Simple("QUEUED".into()),
            block: None,
        };
    }
    let may_block = sess.origin == Origin::Client;
    run_locked(srv, st, sess, spec, argv, may_block)
}

/// Runs a checked command with the lock held: handler, propagation, blocked-client service,
/// statistics. EXEC calls this for each queued command under a single lock.
pub fn run_locked(
    srv: &ServerState,
    st: &mut EngineState,
    sess: &mut Session,
    spec: &'static CommandSpec,
    argv: Argv,
    may_block: bool,
) -> Outcome {
    let start = sess.mark.unwrap_or_else(Instant::now);
    let now = match sess.batch_now_ms {
        0 => srv.clock.now_ms(),
        cached => cached,
    };
    let mut ctx = Ctx {
        st,
        sess,
        srv,
        now,
        dirty: 0,
        rewrite: None,
        ready: Vec::new(),
        block: None,
        may_block,
        request_acks: false,
    };
    let offset_before = ctx.st.stream.offset();
    let result = (spec.handler)(&mut ctx, &argv);
    let reply = match result {
        Ok(r) => r,
        Err(e) => e.into(),
    };
    let Ctx {
        st,
        sess,
        dirty,
        rewrite,
        ready,
        block,
        request_acks,
        ..
    } = ctx;
    if dirty > 0 {
        st.dirty += dirty;
        let db = sess.db;
        match rewrite {
            Some(cmds) => {
                for c in &cmds {
                    st.stream.append(db, c);
                }
            }
            None => st.stream.append(db, &argv),
        }
    }
    // Keys signalled inside an EXEC wait in `pending` until the EXEC itself completes.
    if !ready.is_empty() || st.blocked.has_pending() {
        super::blocking::serve_ready(srv, st, ready, now);
    }
    // Redis `call()`: the client's write offset is where the stream ended after its last
    // command that propagated anything (an EXEC's wrapped transaction included).
    if st.stream.offset() != offset_before {
        sess.woff = st.stream.offset();
    }
    if request_acks {
        crate::replication::wait::request_acks(&mut st.stream);
    }
    // Redis's loader calls the command's proc directly: no stats, latency, slowlog or
    // MONITOR for what the AOF replays.
    if sess.origin == Origin::AofLoad {
        return Outcome { reply, block };
    }
    let end = Instant::now();
    if sess.mark.is_some() {
        sess.mark = Some(end);
    }
    let took = end.saturating_duration_since(start);
    let usec = took.as_micros() as u64;
    st.stats.total_commands_processed += 1;
    let name = full_name(spec, &argv);
    if srv
        .hot
        .latency_tracking
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        st.tracking.record(name, took.as_nanos() as u64);
    }
    if sess.origin == Origin::Client && !matches!(reply, Reply::Error(_)) {
        st.stats.resp_records += records_in(spec, argv.len());
    }
    let stat = st.cmdstats.entry(CmdName(name)).or_default();
    stat.calls += 1;
    stat.usec += usec;
    if let Reply::Error(e) = &reply {
        stat.failed += 1;
        let e = e.clone();
        st.count_error(&e);
    }
    srv.after_command(sess, spec, &argv, name, usec);
    Outcome { reply, block }
}

/// Counts the log records a successful RESP write stored: one per pushed list element, one
/// per hash written. Other writes are not records of a log shipper.
fn records_in(spec: &CommandSpec, argc: usize) -> u64 {
    if spec.has(flags::RECORD_PER_VALUE) {
        argc.saturating_sub(2) as u64
    } else {
        u64::from(spec.has(flags::RECORD_ONE))
    }
}

/// What a batch from a non-client door did, and where it left the write stream and the
/// AOF: the marks callers wait on for durability.
#[derive(Debug)]
pub struct Applied {
    /// One reply per command.
    pub replies: Vec<Reply>,
    /// The replication offset after the batch.
    pub offset: u64,
    /// The AOF offset after the batch, while the AOF is on.
    pub aof: Option<u64>,
}

/// Executes a batch of commands from a non-client door (forward mapping, AOF replay, the
/// master's stream) under one lock acquisition.
///
/// With `request_acks` (the forward door's `ack_after = "replicated"`) the batch is followed
/// by a `REPLCONF GETACK *` (coalesced), so replicas ack it at once. The write stream is
/// started first if no replica attached yet: the batch's offset is then a real position in
/// the history, which a replica attaching later acks only once it has loaded a snapshot
/// taken after it (Redis would start its backlog only with the first replica).
pub fn execute_batch(
    srv: &ServerState,
    origin: Origin,
    db: usize,
    batch: Vec<Argv>,
    request_acks: bool,
) -> Applied {
    let mut sess = Session::internal(origin, db);
    let mut st = srv.engine.lock();
    if request_acks && !st.stream.is_proxy() {
        st.stream.activate();
    }
    let mut replies = Vec::with_capacity(batch.len());
    // A forward chunk reaches replicas and the AOF as one MULTI/EXEC, as Redis propagates
    // an EXEC: a replica never applies half a chunk, and an AOF cut by a crash inside one
    // loses the whole (unacked) chunk rather than storing part of it twice on resend.
    let atomic = origin == Origin::Forward && batch.len() > 1;
    if atomic {
        st.stream.begin_transaction();
    }
    for argv in batch {
        if argv.is_empty() {
            continue;
        }
        // A replica stores nothing from the forward door, even a writable one: the role may
        // have changed since the door checked it.
        if origin == Origin::Forward && st.is_replica {
            replies.push(Reply::Error(CmdError::ReadOnly.into_bytes()));
            continue;
        }
        match check(srv, &mut sess, &argv) {
            Ok(spec) => {
                let out = run_locked(srv, &mut st, &mut sess, spec, argv, false);
                replies.push(out.reply);
            }
            Err((text, _)) => replies.push(Reply::Error(text)),
        }
    }
    if atomic {
        st.stream.end_transaction();
        if st.blocked.has_pending() {
            let now = srv.clock.now_ms();
            super::blocking::serve_ready(srv, &mut st, Vec::new(), now);
        }
    }
    let offset = st.stream.offset();
    if request_acks {
        crate::replication::wait::request_acks(&mut st.stream);
    }
    Applied {
        replies,
        offset,
        aof: st.stream.aof_offset(),
    }
}

/// Replays one command read from the AOF with the engine locked (Redis's
/// `loadSingleAppendOnlyFile` and its fake client). `sess` is the load's one internal
/// session (`Origin::AofLoad`), so SELECT and MULTI/EXEC work across commands. Error replies
/// are the caller's to ignore, as Redis ignores them; nothing is counted in the stats.
///
/// Returns `None` when the command is unknown: Redis then stops the load.
pub fn replay(
    srv: &ServerState,
    st: &mut EngineState,
    sess: &mut Session,
    argv: Argv,
) -> Option<Reply> {
    debug_assert_eq!(sess.origin, Origin::AofLoad);
    lookup(argv.first()?)?;
    let spec = match check(srv, sess, &argv) {
        Ok(spec) => spec,
        Err((text, abort_multi)) => {
            if abort_multi && sess.multi.is_some() {
                sess.multi_error = true;
            }
            return Some(Reply::Error(text));
        }
    };
    if sess.multi.is_some() && !spec.has(flags::TXN_CONTROL) {
        if let Some(q) = sess.multi.as_mut() {
            q.push(argv);
        }
        return Some(Reply::Simple("QUEUED".into()));
    }
    Some(run_locked(srv, st, sess, spec, argv, false).reply)
}

/// Runs `f` with a handler context for `sess` (connection set-up and clean-up work that
/// must see the engine, such as dropping WATCHes and subscriptions on disconnect).
pub fn with_ctx<T>(srv: &ServerState, sess: &mut Session, f: impl FnOnce(&mut Ctx<'_>) -> T) -> T {
    let mut st = srv.engine.lock();
    let now = srv.clock.now_ms();
    let mut ctx = Ctx {
        st: &mut st,
        sess,
        srv,
        now,
        dirty: 0,
        rewrite: None,
        ready: Vec::new(),
        block: None,
        may_block: false,
        request_acks: false,
    };
    f(&mut ctx)
}
