//! The append-only file (`shared/spec/redis.md` §4.4): every applied write, as RESP commands,
//! in Redis 7's multi-part layout (a base, incremental files and a manifest in
//! `appenddirname`), fsynced by `appendfsync` with group commit, loaded at start, rewritten
//! from a snapshot so it stays proportional to the data.
//!
//! The pieces: the engine appends each write to a [`feed::Feed`] under the engine lock (one
//! order for data, replicas and AOF); a writer thread ([`writer`]) drains it into the current
//! incremental file and publishes how far it has written and fsynced; connections wait on
//! those marks before replying (`written`, or `fsynced` with `appendfsync always`) and the
//! forward door before acking (`ack_after = "fsynced"`). Rewrites ([`rewrite`]) serialise a
//! snapshot taken at the very write where a new incremental file begins.

pub mod feed;
pub mod load;
pub mod manifest;
pub mod parse;
pub mod rewrite;
pub mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::config::AppendFsync;
use manifest::Manifest;

/// Why an AOF operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AofError {
    /// A file or directory operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start the AOF {0} thread: {1}")]
    Thread(&'static str, std::io::Error),
}

impl AofError {
    /// Wraps an OS error with what was being done to which file.
    pub fn io(what: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.display().to_string();
        move |source| AofError::Io { what, path, source }
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (every guarded
/// structure here stays consistent between statements).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The facts INFO persistence reports about the AOF (`aof_*`), as atomics so INFO never
/// waits for the writer.
#[derive(Debug)]
pub struct AofStatus {
    /// A rewrite is running.
    pub rewrite_in_progress: AtomicBool,
    /// A rewrite waits for a BGSAVE to end (or to be retried).
    pub rewrite_scheduled: AtomicBool,
    /// Unix seconds the running rewrite started.
    pub rewrite_started: AtomicI64,
    /// Seconds the last rewrite took, -1 if none ran.
    pub last_rewrite_secs: AtomicI64,
    /// The last rewrite succeeded.
    pub last_rewrite_ok: AtomicBool,
    /// Rewrites that succeeded since start (`aof_rewrites`).
    pub rewrites: AtomicU64,
    /// Rewrites that failed in a row.
    pub consecutive_failures: AtomicU64,
    /// The last write or fsync succeeded (`aof_last_write_status`).
    pub last_write_ok: AtomicBool,
    /// The last write error, for MISCONF and logs.
    pub last_write_error: Mutex<String>,
    /// Bytes of the base and incremental files (`aof_current_size`).
    pub current_size: AtomicU64,
    /// Bytes of the base and incrementals at the last rewrite or load (`aof_base_size`).
    pub base_size: AtomicU64,
    /// An fsync is running in the background (`aof_pending_bio_fsync`).
    pub fsync_in_progress: AtomicBool,
    /// Writes that waited over 2 s behind a slow fsync (`aof_delayed_fsync`).
    pub delayed_fsync: AtomicU64,
    /// fsyncs done (group commit: one covers the writes of many clients).
    pub fsyncs: AtomicU64,
    /// The first rewrite after enabling has not completed: the incremental file is a
    /// temporary one, not yet in the manifest (Redis's `AOF_WAIT_REWRITE`).
    pub wait_rewrite: AtomicBool,
}

impl Default for AofStatus {
    fn default() -> Self {
        AofStatus {
            rewrite_in_progress: AtomicBool::new(false),
            rewrite_scheduled: AtomicBool::new(false),
            rewrite_started: AtomicI64::new(0),
            last_rewrite_secs: AtomicI64::new(-1),
            last_rewrite_ok: AtomicBool::new(true),
            rewrites: AtomicU64::new(0),
            consecutive_failures: AtomicU64::new(0),
            last_write_ok: AtomicBool::new(true),
            last_write_error: Mutex::new(String::new()),
            current_size: AtomicU64::new(0),
            base_size: AtomicU64::new(0),
            fsync_in_progress: AtomicBool::new(false),
            delayed_fsync: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            wait_rewrite: AtomicBool::new(false),
        }
    }
}

/// Bytes appended by the engine and not yet taken by the writer.
#[derive(Debug, Default)]
pub struct Pending {
    /// RESP-encoded commands.
    pub bytes: Vec<u8>,
    /// Positions in `bytes` where a new incremental file begins (a rewrite started there).
    pub rotations: Vec<usize>,
    /// The database the feed last selected.
    pub selected_db: Option<usize>,
    /// Bytes ever appended: the AOF offset at the end of `bytes`.
    pub appended: u64,
    /// The writer sleeps and must be woken for new bytes.
    pub idle: bool,
    /// The writer is to drain, fsync and exit.
    pub stop: bool,
}

/// Where the AOF lives and what its manifest lists; changed only under its lock.
#[derive(Debug, Default)]
pub(crate) struct Files {
    /// `<dir>/<appenddirname>`.
    pub dir: PathBuf,
    /// `appendfilename`: the prefix of every file name.
    pub prefix: String,
    /// The manifest as last persisted.
    pub manifest: Manifest,
    /// Rotations the writer has carried out (rewrites wait for theirs).
    pub rotations_done: u64,
    /// Rotations requested.
    pub rotations_asked: u64,
    /// The incremental file the writer appends to, and whether it is the temporary one of
    /// a first rewrite.
    pub current_incr: Option<String>,
}

/// State shared by the engine's feed, the writer and fsync threads, rewrites and waiters.
#[derive(Debug)]
pub struct Shared {
    /// What the engine appended and the writer has not taken yet.
    pub pending: Mutex<Pending>,
    pub(crate) wake: Condvar,
    /// End offset of what is written to the file (page cache).
    pub(crate) written: watch::Sender<u64>,
    /// End offset of what is fsynced.
    pub(crate) fsynced: watch::Sender<u64>,
    pub(crate) files: Mutex<Files>,
    /// The writing end, while the AOF is on.
    pub(crate) writer: Mutex<Option<writer::Writer>>,
    pub(crate) files_changed: Condvar,
    /// `appendfsync`, as [`policy_code`].
    pub(crate) policy: AtomicU8,
    /// `no-appendfsync-on-rewrite`.
    pub(crate) no_fsync_on_rewrite: AtomicBool,
    /// Clients waiting for a mark: the writer gathers a round until those it released
    /// last time are back (group commit, see `writer::gather`).
    pub(crate) waiting: std::sync::atomic::AtomicUsize,
    /// Bumped when the AOF stops: a rewrite started before discards its result.
    pub(crate) generation: AtomicU64,
    /// INFO facts.
    pub status: AofStatus,
}

/// Encodes `appendfsync` for an atomic.
fn policy_code(p: AppendFsync) -> u8 {
    match p {
        AppendFsync::Always => 0,
        AppendFsync::Everysec => 1,
        AppendFsync::No => 2,
    }
}

impl Shared {
    fn new(policy: AppendFsync) -> Self {
        Shared {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            written: watch::channel(0).0,
            fsynced: watch::channel(0).0,
            files: Mutex::new(Files::default()),
            writer: Mutex::new(None),
            files_changed: Condvar::new(),
            policy: AtomicU8::new(policy_code(policy)),
            no_fsync_on_rewrite: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            status: AofStatus::default(),
        }
    }

    /// Returns the fsync policy in force.
    pub fn policy(&self) -> AppendFsync {
        match self.policy.load(Ordering::Relaxed) {
            0 => AppendFsync::Always,
            1 => AppendFsync::Everysec,
            _ => AppendFsync::No,
        }
    }

    /// Wakes the writer if it sleeps.
    pub(crate) fn kick(&self) {
        let mut p = lock(&self.pending);
        if p.idle {
            p.idle = false;
            self.wake.notify_one();
        }
    }
}

/// The server's AOF: the shared state (one for the life of the process, so offsets only
/// grow) and the threads of the current enablement.
#[derive(Debug)]
pub struct Aof {
    /// Shared with the feed and the threads.
    pub shared: Arc<Shared>,
    pub(crate) threads: Mutex<Option<writer::Threads>>,
}

impl Aof {
    /// Returns an AOF that is off.
    pub fn new(policy: AppendFsync) -> Self {
        Aof {
            shared: Arc::new(Shared::new(policy)),
            threads: Mutex::new(None),
        }
    }

    /// Reports whether the AOF is on (its writer runs).
    pub fn is_on(&self) -> bool {
        lock(&self.threads).is_some()
    }

    /// Returns the AOF offset after everything appended so far, while the AOF is on.
    pub fn appended(&self) -> Option<u64> {
        self.is_on().then(|| lock(&self.shared.pending).appended)
    }

    /// Applies a new `appendfsync`.
    pub fn set_policy(&self, p: AppendFsync) {
        self.shared.policy.store(policy_code(p), Ordering::Relaxed);
        self.shared.kick();
    }

    /// Returns the offset written to the file so far.
    pub fn written(&self) -> u64 {
        *self.shared.written.borrow()
    }

    /// Returns the offset fsynced so far.
    pub fn fsynced(&self) -> u64 {
        *self.shared.fsynced.borrow()
    }

    /// Waits until the AOF holds everything up to `offset` as the reply policy requires:
    /// fsynced with `appendfsync always`, written to the file otherwise (what Redis
    /// guarantees before it sends a reply). Returns at once when already there.
    pub async fn wait_for_reply(&self, offset: u64) {
        let mark = match self.shared.policy() {
            AppendFsync::Always => &self.shared.fsynced,
            _ => {
                if *self.shared.written.borrow() < offset {
                    self.write_now();
                }
                &self.shared.written
            }
        };
        wait_mark(&self.shared, mark, offset).await;
    }

    /// Writes what the feed holds from the calling thread, unless another writer is busy
    /// (then it will, or the writer thread on its next tick) or the policy fsyncs each
    /// round (`always`: fsyncs belong on the writer thread). A `write` to the page cache is
    /// what Redis does in its event loop before replying; it spares a thread hand-off per
    /// reply.
    pub fn write_now(&self) {
        if self.shared.policy() == AppendFsync::Always {
            return;
        }
        let mut guard = match self.shared.writer.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                self.shared.kick();
                return;
            }
        };
        if let Some(w) = guard.as_mut().filter(|w| !w.failing()) {
            w.round(&self.shared, false);
        }
    }

    /// Waits until everything up to `offset` is fsynced (`ack_after = "fsynced"`); with
    /// `everysec` that is the next second's fsync.
    pub async fn wait_fsynced(&self, offset: u64) {
        wait_mark(&self.shared, &self.shared.fsynced, offset).await;
    }
}

/// Waits for `mark` to reach `offset`, waking the writer first.
async fn wait_mark(shared: &Shared, mark: &watch::Sender<u64>, offset: u64) {
    if *mark.borrow() >= offset {
        return;
    }
    let mut rx = mark.subscribe();
    shared.waiting.fetch_add(1, Ordering::AcqRel);
    shared.kick();
    // The sender lives as long as `shared`: this ends when the mark is reached.
    rx.wait_for(|&o| o >= offset).await.ok();
    shared.waiting.fetch_sub(1, Ordering::AcqRel);
}
