//! The writer and fsync threads: drain the feed into the current incremental file and
//! publish how far the file is written and fsynced.
//!
//! Group commit: the writer takes everything appended since its last round in one go, so
//! under load one `write` and (with `appendfsync always`) one fsync cover the writes of every
//! client that wrote meanwhile; each of them waits only for the mark to pass its offset.
//! With `everysec` a separate thread fsyncs once a second (Redis's bio fsync), so a slow disk
//! never holds up writing. A failed write keeps its bytes and is retried (the file is cut
//! back to its last good size first, as Redis does); meanwhile writes are refused with
//! MISCONF and nobody waiting is answered as if the data were safe.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{info, warn};

use super::manifest::persist_manifest;
use super::{lock, AofError, Shared};
use crate::config::AppendFsync;

/// The incremental file being appended to.
#[derive(Debug)]
pub struct Current {
    /// Open for appending.
    pub file: Arc<File>,
    /// Its name in the AOF directory (for logs).
    pub name: String,
    /// Bytes known good in it.
    pub size: u64,
}

impl Current {
    /// Opens `dir/name` for appending, creating it when `create` (truncating what a crashed
    /// rewrite may have left), and makes its directory entry durable.
    pub fn open(dir: &Path, name: &str, create: bool) -> Result<Current, AofError> {
        let path = dir.join(name);
        let mut opts = OpenOptions::new();
        if create {
            opts.write(true).create(true).truncate(true);
        } else {
            opts.append(true);
        }
        let file = opts
            .open(&path)
            .map_err(AofError::io("cannot open the AOF file", &path))?;
        let size = file
            .metadata()
            .map_err(AofError::io("cannot stat the AOF file", &path))?
            .len();
        if create {
            sync_dir(dir)?;
        }
        Ok(Current {
            file: Arc::new(file),
            name: name.to_string(),
            size,
        })
    }
}

/// fsyncs a directory, so renames and new files in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<(), AofError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(AofError::io("cannot fsync the AOF directory", dir))
}

/// The running threads of one enablement of the AOF.
#[derive(Debug)]
pub struct Threads {
    writer: JoinHandle<()>,
    fsyncer: JoinHandle<()>,
    fsync_stop: Arc<AtomicBool>,
}

/// The file the fsync thread syncs and the offset a sync of it covers.
type SyncTarget = Arc<Mutex<Option<(Arc<File>, u64)>>>;

/// Starts the writer (appending to `current`, if a file is open yet) and the fsync thread.
pub fn spawn(shared: Arc<Shared>, current: Option<Current>) -> Result<Threads, AofError> {
    {
        let mut p = lock(&shared.pending);
        p.stop = false;
    }
    let target: SyncTarget = Arc::new(Mutex::new(None));
    let fsync_stop = Arc::new(AtomicBool::new(false));
    *lock(&shared.writer) = Some(Writer::new(&shared, current, target.clone()));
    let s = shared.clone();
    let writer = std::thread::Builder::new()
        .name("kura-aof-write".into())
        .spawn(move || run_writer(&s))
        .map_err(|e| AofError::Thread("writer", e))?;
    let (s, stop) = (shared, fsync_stop.clone());
    let fsyncer = std::thread::Builder::new()
        .name("kura-aof-fsync".into())
        .spawn(move || run_fsyncer(&s, &target, &stop))
        .map_err(|e| AofError::Thread("fsync", e))?;
    Ok(Threads {
        writer,
        fsyncer,
        fsync_stop,
    })
}

impl Threads {
    /// Drains what is pending, fsyncs, and waits for both threads to end.
    pub fn stop(self, shared: &Shared) {
        {
            let mut p = lock(&shared.pending);
            p.stop = true;
            p.idle = false;
            shared.wake.notify_one();
        }
        if self.writer.join().is_err() {
            warn!("the AOF writer thread panicked");
        }
        self.fsync_stop.store(true, Ordering::Release);
        self.fsyncer.thread().unpark();
        if self.fsyncer.join().is_err() {
            warn!("the AOF fsync thread panicked");
        }
    }
}

/// How often the writer looks for bytes nobody asked it to write (with `everysec` and `no`
/// the feed does not wake it: connections write their own bytes before replying, and what
/// no one waits for — forward chunks acked on apply, expiry DELs — reaches the file
/// within this).
const WRITER_TICK: Duration = Duration::from_millis(10);

/// The writer thread: runs rounds when woken (`always`), on its tick, and to retry a
/// failed round; on stop, drains, fsyncs and leaves the writing end empty.
fn run_writer(shared: &Shared) {
    loop {
        let retrying = lock(&shared.writer).as_ref().is_some_and(Writer::failing);
        let stop = wait_for_work(shared, retrying);
        let mut guard = lock(&shared.writer);
        let Some(w) = guard.as_mut() else {
            return;
        };
        if !stop && shared.policy() == AppendFsync::Always {
            let most = (w.last_fsync * 2).clamp(MIN_GATHER, MAX_GATHER);
            let want = w.released;
            drop(guard);
            gather(shared, want, most);
            guard = lock(&shared.writer);
        }
        let Some(w) = guard.as_mut() else {
            return;
        };
        w.round(shared, stop);
        if stop && (w.todo.is_empty() || w.failures >= 3) {
            if !w.todo.is_empty() {
                warn!(
                    bytes = w.todo.len(),
                    "stopping the AOF with bytes it could not write"
                );
            }
            *guard = None;
            return;
        }
        let failures = w.failures;
        drop(guard);
        if failures > 0 {
            std::thread::sleep(Duration::from_millis(100 * u64::from(failures.min(10))));
        }
    }
}

/// The longest a round waits to gather writers before its fsync.
const MAX_GATHER: Duration = Duration::from_millis(2);
/// The shortest: enough for a wave of replies and requests to pass through the runtime.
const MIN_GATHER: Duration = Duration::from_micros(500);

/// Group commit with `always`: the clients the last fsync released come back with their
/// next writes within a round trip; a round that started on the first of them would fsync
/// for one client and make the rest wait a whole fsync more. So the round waits, at most as
/// long as an fsync takes, until as many clients wait as were released (Redis gets the same
/// effect from serving every ready client before its one fsync per event-loop turn). A lone
/// client is released alone and never waits.
fn gather(shared: &Shared, want: usize, most: Duration) {
    if want <= 1 {
        return;
    }
    let deadline = std::time::Instant::now() + most;
    let mut p = lock(&shared.pending);
    while shared.waiting.load(Ordering::Acquire) < want && !p.stop {
        let now = std::time::Instant::now();
        if now >= deadline {
            break;
        }
        p.idle = true;
        p = shared
            .wake
            .wait_timeout(p, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        p.idle = false;
    }
}

/// Waits until the feed holds something (or a tick passes, or a retry is due); returns
/// whether the writer is to stop.
fn wait_for_work(shared: &Shared, retrying: bool) -> bool {
    let mut p = lock(&shared.pending);
    if p.bytes.is_empty() && p.rotations.is_empty() && !p.stop && !retrying {
        p.idle = true;
        p = shared
            .wake
            .wait_timeout(p, WRITER_TICK)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        p.idle = false;
    }
    p.stop
}

/// Publishes a mark if it moved forward (marks never go back).
fn advance(mark: &tokio::sync::watch::Sender<u64>, to: u64) {
    mark.send_if_modified(|v| {
        if to > *v {
            *v = to;
            true
        } else {
            false
        }
    });
}

/// Whether fsyncs are skipped now (`no-appendfsync-on-rewrite` while a rewrite runs).
fn fsync_suppressed(shared: &Shared) -> bool {
    shared.no_fsync_on_rewrite.load(Ordering::Relaxed)
        && shared.status.rewrite_in_progress.load(Ordering::Relaxed)
}

/// fsyncs `file`, counting it; an error is recorded as a write error.
fn fsync(shared: &Shared, file: &File) -> std::io::Result<()> {
    shared
        .status
        .fsync_in_progress
        .store(true, Ordering::Relaxed);
    let r = file.sync_data();
    shared
        .status
        .fsync_in_progress
        .store(false, Ordering::Relaxed);
    shared.status.fsyncs.fetch_add(1, Ordering::Relaxed);
    r
}

/// Records the outcome of a write or fsync for INFO and MISCONF, logging changes once.
fn record(shared: &Shared, result: &std::io::Result<()>) {
    let st = &shared.status;
    match result {
        Ok(()) => {
            if !st.last_write_ok.swap(true, Ordering::AcqRel) {
                info!("AOF write error looks solved, Redis can write again.");
            }
        }
        Err(e) => {
            *lock(&st.last_write_error) = strerror(e);
            if st.last_write_ok.swap(false, Ordering::AcqRel) {
                warn!(error = %e, "Error writing to the AOF file");
            }
        }
    }
}

/// The OS's text for an error, as C's `strerror` gives it (Rust appends " (os error N)").
fn strerror(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// The writing end: the open file and what was taken from the feed but is not in a file
/// yet. Lives in [`Shared`] behind a lock, so the writer thread and, with `everysec` and
/// `no`, the connections themselves (as Redis writes its AOF buffer in the event loop
/// before replying) can run a round.
#[derive(Debug)]
pub struct Writer {
    current: Option<Current>,
    target: SyncTarget,
    /// Bytes taken from the feed and not yet in a file, and where new files begin in them.
    todo: Vec<u8>,
    todo_rotations: Vec<usize>,
    /// The AOF offset at the end of `todo`.
    todo_end: u64,
    /// Rounds that failed in a row.
    failures: u32,
    /// Clients waiting when the last fsync was published: they will be back.
    released: usize,
    /// How long the last fsync took.
    last_fsync: Duration,
}

impl Writer {
    fn new(shared: &Shared, current: Option<Current>, target: SyncTarget) -> Self {
        let end = lock(&shared.pending).appended;
        advance(&shared.written, end);
        advance(&shared.fsynced, end);
        Writer {
            current,
            target,
            todo: Vec::new(),
            todo_rotations: Vec::new(),
            todo_end: end,
            failures: 0,
            released: 0,
            last_fsync: Duration::ZERO,
        }
    }

    /// Reports whether the last round failed (callers other than the thread leave retries
    /// to it).
    pub fn failing(&self) -> bool {
        self.failures > 0
    }

    /// Takes what the feed holds, writes it, and fsyncs when the policy (or `last`) says.
    pub fn round(&mut self, shared: &Shared, last: bool) {
        self.take(shared);
        let mut result = self.write_todo(shared);
        let written = self.todo_end - self.todo.len() as u64;
        advance(&shared.written, written);
        if let Some(c) = &self.current {
            *lock(&self.target) = Some((c.file.clone(), written));
        }
        let always = shared.policy() == AppendFsync::Always;
        // The last round always fsyncs; `always` does unless a rewrite suppresses it.
        let due = last || (always && !fsync_suppressed(shared));
        if result.is_ok() && due {
            let started = std::time::Instant::now();
            self.released = shared.waiting.load(Ordering::Acquire);
            result = self.sync(shared, written);
            self.last_fsync = started.elapsed();
        }
        record(shared, &result);
        match result {
            Ok(()) => self.failures = 0,
            Err(_) => self.failures += 1,
        }
    }

    /// Moves what the feed holds behind anything a failed round left.
    fn take(&mut self, shared: &Shared) {
        let mut p = lock(&shared.pending);
        if self.todo.is_empty() {
            // The emptied buffer becomes the feed's next one: no allocation per round.
            std::mem::swap(&mut self.todo, &mut p.bytes);
            std::mem::swap(&mut self.todo_rotations, &mut p.rotations);
        } else {
            let base = self.todo.len();
            self.todo.extend_from_slice(&p.bytes);
            p.bytes.clear();
            let rotations = std::mem::take(&mut p.rotations);
            self.todo_rotations
                .extend(rotations.into_iter().map(|r| r + base));
        }
        self.todo_end = p.appended;
    }

    /// Writes `todo` into the files, rotating where asked; on error keeps what is left.
    fn write_todo(&mut self, shared: &Shared) -> std::io::Result<()> {
        let mut start = 0usize;
        let mut result = Ok(());
        let mut rotated = 0usize;
        let rotations = std::mem::take(&mut self.todo_rotations);
        for &at in &rotations {
            if let Err(e) = write_to(shared, &mut self.current, &self.todo[start..at]) {
                result = Err(e);
                break;
            }
            start = at;
            if let Err(e) = self.rotate(shared, at) {
                result = Err(std::io::Error::other(e.to_string()));
                break;
            }
            rotated += 1;
        }
        self.todo_rotations = rotations;
        if result.is_ok() {
            match write_to(shared, &mut self.current, &self.todo[start..]) {
                Ok(()) => start = self.todo.len(),
                Err(e) => result = Err(e),
            }
        }
        self.todo.drain(..start);
        self.todo_rotations.drain(..rotated);
        for r in &mut self.todo_rotations {
            *r -= start;
        }
        if self.todo.is_empty() && self.todo.capacity() > 64 << 20 {
            self.todo = Vec::new();
        }
        result
    }

    /// fsyncs the current file and publishes `upto` as fsynced.
    fn sync(&mut self, shared: &Shared, upto: u64) -> std::io::Result<()> {
        if let Some(c) = &self.current {
            fsync(shared, &c.file)?;
        }
        advance(&shared.fsynced, upto);
        Ok(())
    }

    /// Starts a new incremental file at `at` in `todo` (a rewrite's snapshot point): the old
    /// one is fsynced first, so no fsynced mark ever spans two files.
    fn rotate(&mut self, shared: &Shared, at: usize) -> Result<(), AofError> {
        let upto = self.todo_end - (self.todo.len() - at) as u64;
        if let Some(c) = &self.current {
            fsync(shared, &c.file).map_err(AofError::io("cannot fsync", Path::new(&c.name)))?;
        }
        advance(&shared.written, upto);
        advance(&shared.fsynced, upto);
        let mut files = lock(&shared.files);
        let temporary = shared.status.wait_rewrite.load(Ordering::Acquire);
        let mut manifest = files.manifest.clone();
        let name = if temporary {
            temp_incr_name(&files.prefix)
        } else {
            manifest.new_incr(&files.prefix)
        };
        let current = Current::open(&files.dir, &name, true)?;
        if !temporary {
            persist_manifest(&files.dir, &files.prefix, &manifest).map_err(AofError::io(
                "cannot persist the AOF manifest in",
                &files.dir,
            ))?;
            files.manifest = manifest;
        }
        info!("Creating AOF incr file {name} on background rewrite");
        files.current_incr = Some(name);
        files.rotations_done += 1;
        shared.files_changed.notify_all();
        drop(files);
        *lock(&self.target) = Some((current.file.clone(), upto));
        self.current = Some(current);
        Ok(())
    }
}

/// Appends `bytes` to the current file; a partial write is cut back (Redis's
/// `flushAppendOnlyFile` ftruncate), so the file never ends in half a command.
fn write_to(shared: &Shared, current: &mut Option<Current>, bytes: &[u8]) -> std::io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let Some(c) = current.as_mut() else {
        return Err(std::io::Error::other("no AOF file is open"));
    };
    match (&*c.file).write_all(bytes) {
        Ok(()) => {
            c.size += bytes.len() as u64;
            shared
                .status
                .current_size
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => {
            if let Err(t) = c.file.set_len(c.size) {
                warn!(error = %t, file = %c.name, "could not remove a partial AOF write");
            }
            Err(e)
        }
    }
}

/// The incremental file used until the first rewrite after enabling completes (Redis's
/// `getTempIncrAofName`): not in the manifest, so a crash meanwhile never loads it over a
/// stale base.
pub fn temp_incr_name(prefix: &str) -> String {
    format!("temp-{prefix}.incr")
}

/// The fsync thread: once a second with `everysec`, fsyncs what the writer has written.
fn run_fsyncer(shared: &Shared, target: &SyncTarget, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        std::thread::park_timeout(Duration::from_secs(1));
        if shared.policy() != AppendFsync::Everysec || fsync_suppressed(shared) {
            continue;
        }
        let Some((file, upto)) = lock(target).clone() else {
            continue;
        };
        if upto <= *shared.fsynced.borrow() {
            continue;
        }
        let r = fsync(shared, &file);
        if r.is_ok() {
            advance(&shared.fsynced, upto);
        }
        record(shared, &r);
    }
}
