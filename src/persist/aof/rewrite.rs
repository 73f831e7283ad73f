//! Opening, enabling, disabling and rewriting the AOF (Redis 7.0 aof.c:
//! `aofOpenIfNeededOnServerStart`, `startAppendOnly`, `stopAppendOnly`,
//! `rewriteAppendOnlyFileBackground`, `backgroundRewriteDoneHandler`).
//!
//! A rewrite needs no fork and no rewrite buffer: under the engine lock it takes a snapshot
//! and marks, at that very write, where a new incremental file begins. Writes before the mark
//! are in the snapshot, writes after it in the new file. The snapshot becomes the new base in
//! the background; then one manifest update makes base + new incremental the AOF, and the
//! old files are deleted.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tracing::{info, warn};

use super::feed::Feed;
use super::load::AofLoaded;
use super::manifest::{load_manifest, persist_manifest, Manifest};
use super::writer::{self, temp_incr_name, Current};
use super::{lock, Aof, AofError};
use crate::cmd::EngineState;
use crate::config::Config;
use crate::persist::save::{save_point, write_durably, SavePoint};
use crate::resp::encode::{put_array_header, put_bulk};
use crate::state::ServerState;
use crate::store::{Snapshot, Value};

/// Returns `<dir>/<appenddirname>`.
pub fn aof_dir(c: &Config) -> PathBuf {
    c.dir.join(&c.appenddirname)
}

/// Opens the AOF at start, after the data is loaded (from it, or from `dump.rdb`, or
/// nothing): appends to the last incremental file of a loaded AOF, or creates the first
/// base from the data in memory and an incremental file, as Redis 7.0 logs them.
pub fn open_on_start(srv: &Arc<ServerState>, loaded: Option<AofLoaded>) -> Result<(), AofError> {
    let cfg = srv.config();
    let dir = aof_dir(&cfg);
    std::fs::create_dir_all(&dir).map_err(AofError::io("cannot create", &dir))?;
    let prefix = cfg.appendfilename.clone();
    let aof = &srv.aof;
    let mut st = srv.engine.lock();
    let (mut manifest, base_size, total) = match loaded {
        Some(l) => (l.manifest, l.base_size, l.total_size),
        None => (Manifest::default(), 0, 0),
    };
    let mut sizes = (base_size, total);
    let mut changed = false;
    if manifest.base.is_none() && manifest.incrs.is_empty() {
        let name = manifest.new_base(&prefix, cfg.aof_use_rdb_preamble);
        let bytes = write_base(srv, &cfg, &dir.join(&name), &base_point(srv, &st))?;
        info!("Creating AOF base file {name} on server start");
        sizes = (bytes, bytes);
        changed = true;
    }
    let current = match manifest.incrs.last() {
        Some(last) => {
            info!("Opening AOF incr file {} on server start", last.name);
            Current::open(&dir, &last.name, false)?
        }
        None => {
            let name = manifest.new_incr(&prefix);
            info!("Creating AOF incr file {name} on server start");
            changed = true;
            Current::open(&dir, &name, true)?
        }
    };
    if changed {
        persist_manifest(&dir, &prefix, &manifest)
            .map_err(AofError::io("cannot persist the AOF manifest in", &dir))?;
    }
    aof.shared
        .status
        .base_size
        .store(sizes.0, Ordering::Relaxed);
    aof.shared
        .status
        .current_size
        .store(sizes.1, Ordering::Relaxed);
    aof.shared
        .status
        .wait_rewrite
        .store(false, Ordering::Release);
    {
        let mut f = lock(&aof.shared.files);
        f.dir = dir;
        f.prefix = prefix;
        f.manifest = manifest;
        f.current_incr = Some(current.name.clone());
    }
    start_threads(aof, &cfg, &mut st, Some(current))
}

/// Attaches the feed to the write stream and starts the writer.
fn start_threads(
    aof: &Aof,
    cfg: &Config,
    st: &mut EngineState,
    current: Option<Current>,
) -> Result<(), AofError> {
    aof.set_policy(cfg.appendfsync);
    aof.shared
        .no_fsync_on_rewrite
        .store(cfg.no_appendfsync_on_rewrite, Ordering::Relaxed);
    let threads = writer::spawn(aof.shared.clone(), current)?;
    *lock(&aof.threads) = Some(threads);
    st.stream.set_aof(Some(Feed::new(aof.shared.clone())));
    Ok(())
}

/// `CONFIG SET appendonly yes` (Redis's `startAppendOnly`): writes go at once to a temporary
/// incremental file while a rewrite makes the base; only when it completes does the manifest
/// name them, so a crash meanwhile loads the old AOF, never a mix.
pub fn enable(srv: &Arc<ServerState>, st: &mut EngineState, cfg: &Config) -> Result<(), AofError> {
    let aof = &srv.aof;
    if aof.is_on() {
        return Ok(());
    }
    let dir = aof_dir(cfg);
    std::fs::create_dir_all(&dir).map_err(AofError::io("cannot create", &dir))?;
    let manifest = load_manifest(&dir, &cfg.appendfilename)
        .map_err(|e| AofError::Io {
            what: "cannot read the AOF manifest in",
            path: dir.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?
        .unwrap_or_default();
    {
        let mut f = lock(&aof.shared.files);
        f.dir = dir;
        f.prefix = cfg.appendfilename.clone();
        f.manifest = manifest;
        f.current_incr = None;
    }
    aof.shared
        .status
        .wait_rewrite
        .store(true, Ordering::Release);
    aof.shared.status.current_size.store(0, Ordering::Relaxed);
    start_threads(aof, cfg, st, None)?;
    // Everything from here on goes to the temporary incremental file.
    if let Some(feed) = st.stream.aof_feed() {
        feed.rotate();
    }
    if srv.save.bgsave_in_progress.load(Ordering::Acquire)
        || aof
            .shared
            .status
            .rewrite_in_progress
            .load(Ordering::Acquire)
    {
        info!(
            "AOF was enabled but there is already another background operation. An AOF \
             background was scheduled to start when possible."
        );
        aof.shared
            .status
            .rewrite_scheduled
            .store(true, Ordering::Release);
        return Ok(());
    }
    start_rewrite(srv, st)
}

/// `CONFIG SET appendonly no` (Redis's `stopAppendOnly`): the writer drains and fsyncs what
/// it holds and stops; a rewrite running meanwhile will discard its result.
pub fn disable(srv: &ServerState, st: &mut EngineState) {
    st.stream.set_aof(None);
    stop(srv);
}

/// Stops the writer after it has written and fsynced everything (shutdown, disable).
pub fn stop(srv: &ServerState) {
    let threads = lock(&srv.aof.threads).take();
    if let Some(t) = threads {
        // First, so a rewrite still running discards its result (Redis kills the child).
        srv.aof.shared.generation.fetch_add(1, Ordering::AcqRel);
        info!("Calling fsync() on the AOF file.");
        t.stop(&srv.aof.shared);
    }
}

/// What BGREWRITEAOF answers.
#[derive(Debug, PartialEq, Eq)]
pub enum Started {
    /// `+Background append only file rewriting started`.
    Now,
    /// `+Background append only file rewriting scheduled` (a BGSAVE runs).
    Scheduled,
    /// `-ERR Background append only file rewriting already in progress`.
    AlreadyRunning,
    /// Could not start (logged).
    Failed,
}

/// `BGREWRITEAOF`, with the engine locked.
pub fn bgrewriteaof(srv: &Arc<ServerState>, st: &mut EngineState) -> Started {
    let status = &srv.aof.shared.status;
    if status.rewrite_in_progress.load(Ordering::Acquire) {
        return Started::AlreadyRunning;
    }
    if srv.save.bgsave_in_progress.load(Ordering::Acquire) {
        status.rewrite_scheduled.store(true, Ordering::Release);
        return Started::Scheduled;
    }
    match start_rewrite(srv, st) {
        Ok(()) => Started::Now,
        Err(e) => {
            warn!(error = %e, "Can't rewrite append only file in background");
            Started::Failed
        }
    }
}

/// The save point of a base: the data, with `aof-base 1` and no replication fields (what
/// Redis writes in an AOF base).
fn base_point(srv: &ServerState, st: &EngineState) -> SavePoint {
    let mut point = save_point(srv, st);
    point.aux.repl = None;
    point.aux.aof_base = true;
    point
}

/// Takes the snapshot and the rotation mark together and starts the background rewrite.
fn start_rewrite(srv: &Arc<ServerState>, st: &mut EngineState) -> Result<(), AofError> {
    let shared = &srv.aof.shared;
    let status = &shared.status;
    if status.rewrite_in_progress.swap(true, Ordering::AcqRel) {
        return Ok(());
    }
    status.rewrite_scheduled.store(false, Ordering::Release);
    status
        .rewrite_started
        .store(srv.clock.now_ms() / 1000, Ordering::Relaxed);
    let point = base_point(srv, st);
    let rotation = st.stream.aof_feed().map(|f| f.rotate());
    let generation = shared.generation.load(Ordering::Acquire);
    let worker = srv.clone();
    let spawned = std::thread::Builder::new()
        .name("kura-aof-rewrite".into())
        .spawn(move || run_rewrite(&worker, &point, rotation, generation));
    if let Err(e) = spawned {
        status.rewrite_in_progress.store(false, Ordering::Release);
        return Err(AofError::Thread("rewrite", e));
    }
    info!("Background append only file rewriting started");
    Ok(())
}

/// The rewrite thread: writes the base, waits for the writer to reach the rotation, then
/// swaps the manifest and deletes what it replaced.
fn run_rewrite(srv: &Arc<ServerState>, point: &SavePoint, rotation: Option<u64>, generation: u64) {
    let started = Instant::now();
    let result = rewrite(srv, point, rotation, generation);
    let status = &srv.aof.shared.status;
    status
        .last_rewrite_secs
        .store(started.elapsed().as_secs() as i64, Ordering::Relaxed);
    match result {
        Ok(()) => {
            status.last_rewrite_ok.store(true, Ordering::Relaxed);
            status.rewrites.fetch_add(1, Ordering::Relaxed);
            status.consecutive_failures.store(0, Ordering::Relaxed);
            info!("Background AOF rewrite finished successfully");
        }
        Err(e) => {
            status.last_rewrite_ok.store(false, Ordering::Relaxed);
            status.consecutive_failures.fetch_add(1, Ordering::Relaxed);
            warn!(error = %e, "Background AOF rewrite terminated with error");
            // Until a first rewrite succeeds, the AOF is not usable: try again.
            if srv.aof.is_on() && status.wait_rewrite.load(Ordering::Acquire) {
                status.rewrite_scheduled.store(true, Ordering::Release);
            }
        }
    }
    status.rewrite_in_progress.store(false, Ordering::Release);
}

/// Why a rewrite gave up without an I/O error.
fn cancelled() -> AofError {
    AofError::Io {
        what: "rewrite cancelled:",
        path: "the AOF was turned off or restarted meanwhile".into(),
        source: std::io::Error::other("cancelled"),
    }
}

fn rewrite(
    srv: &Arc<ServerState>,
    point: &SavePoint,
    rotation: Option<u64>,
    generation: u64,
) -> Result<(), AofError> {
    let shared = &srv.aof.shared;
    let cfg = srv.config();
    let (dir, prefix, base_name) = {
        let f = lock(&shared.files);
        let dir = if f.dir.as_os_str().is_empty() {
            aof_dir(&cfg)
        } else {
            f.dir.clone()
        };
        let prefix = if f.prefix.is_empty() {
            cfg.appendfilename.clone()
        } else {
            f.prefix.clone()
        };
        let mut m = f.manifest.clone();
        let name = m.new_base(&prefix, cfg.aof_use_rdb_preamble);
        (dir, prefix, name)
    };
    std::fs::create_dir_all(&dir).map_err(AofError::io("cannot create", &dir))?;
    // The base goes under its final name before the manifest names it: until then it is
    // an unlisted file that the next rewrite overwrites.
    let base_size = write_base(srv, &cfg, &dir.join(&base_name), point)?;
    info!("Successfully created the temporary AOF base file {base_name}");
    let mut files = lock(&shared.files);
    if let Some(n) = rotation {
        while files.rotations_done < n {
            if shared.generation.load(Ordering::Acquire) != generation {
                return Err(cancelled());
            }
            drop(files);
            shared.kick();
            files = lock(&shared.files);
            files = shared
                .files_changed
                .wait_timeout(files, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
    if shared.generation.load(Ordering::Acquire) != generation {
        return Err(cancelled());
    }
    let mut m = files.manifest.clone();
    let name = m.new_base(&prefix, cfg.aof_use_rdb_preamble);
    debug_assert_eq!(name, base_name);
    let on = srv.aof.is_on();
    if on && shared.status.wait_rewrite.load(Ordering::Acquire) {
        // The temporary incremental file becomes the first one the manifest names.
        let incr = m.new_incr(&prefix);
        let from = dir.join(temp_incr_name(&prefix));
        std::fs::rename(&from, dir.join(&incr)).map_err(AofError::io("cannot rename", &from))?;
        files.current_incr = Some(incr);
    }
    if on {
        m.mark_rewritten_incrs_history();
    } else {
        // Without an AOF running, no incremental file continues the new base.
        m.mark_all_incrs_history();
    }
    persist_manifest(&dir, &prefix, &m)
        .map_err(AofError::io("cannot persist the AOF manifest in", &dir))?;
    shared.status.wait_rewrite.store(false, Ordering::Release);
    // The AOF is now the new base and the new incremental file: delete the rest.
    for h in std::mem::take(&mut m.history) {
        info!("Removing the history file {} in the background", h.name);
        crate::persist::remove_leftover(&dir.join(&h.name), "an AOF history file");
    }
    persist_manifest(&dir, &prefix, &m)
        .map_err(AofError::io("cannot persist the AOF manifest in", &dir))?;
    let incr_size: u64 = m
        .incrs
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(&f.name)).ok())
        .map(|md| md.len())
        .sum();
    files.manifest = m;
    drop(files);
    shared.status.base_size.store(base_size, Ordering::Relaxed);
    shared
        .status
        .current_size
        .store(base_size + incr_size, Ordering::Relaxed);
    Ok(())
}

/// Writes a base file crash-safely: an RDB with `aof-base 1` (`aof-use-rdb-preamble yes`) or
/// the commands that rebuild the data. Returns its size.
fn write_base(
    srv: &ServerState,
    cfg: &Config,
    path: &Path,
    point: &SavePoint,
) -> Result<u64, AofError> {
    let incremental = cfg.aof_rewrite_incremental_fsync;
    let result = if cfg.aof_use_rdb_preamble {
        crate::persist::save::write_file(srv, path, point, false).map(|(bytes, _)| bytes)
    } else {
        let percent = cfg.snapshot_cpu_percent;
        write_durably(
            path,
            incremental,
            crate::persist::save::Mode::Here { percent },
            |w| write_commands(w, &point.snapshot),
        )
    };
    result.map_err(|e| AofError::Io {
        what: "cannot write the AOF base",
        path: path.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// Redis's `AOF_REWRITE_ITEMS_PER_CMD`: elements per RPUSH/HMSET in a rewritten AOF.
const ITEMS_PER_CMD: usize = 64;

/// Writes the commands that rebuild `snap` (Redis's `rewriteAppendOnlyFileRio`): `SELECT`
/// per database, `SET`, `RPUSH` and `HMSET` in batches of 64 elements, `PEXPIREAT`.
pub fn write_commands<W: std::io::Write>(mut w: W, snap: &Snapshot) -> std::io::Result<W> {
    let mut buf = BytesMut::new();
    for db in 0..snap.db_count() {
        let mut selected = false;
        for (key, entry) in snap.iter_db(db) {
            if !selected {
                put_array_header(&mut buf, 2);
                put_bulk(&mut buf, b"SELECT");
                put_bulk(&mut buf, db.to_string().as_bytes());
                selected = true;
            }
            match &entry.value {
                Value::Str(s) => {
                    put_array_header(&mut buf, 3);
                    put_bulk(&mut buf, b"SET");
                    put_bulk(&mut buf, key);
                    put_bulk(&mut buf, s);
                }
                Value::List(l) => {
                    let items: Vec<&[u8]> = l.iter().collect();
                    for part in items.chunks(ITEMS_PER_CMD) {
                        put_array_header(&mut buf, 2 + part.len());
                        put_bulk(&mut buf, b"RPUSH");
                        put_bulk(&mut buf, key);
                        for item in part {
                            put_bulk(&mut buf, item);
                        }
                        flush_if_big(&mut w, &mut buf)?;
                    }
                }
                Value::Hash(h) => {
                    let pairs: Vec<(&[u8], &[u8])> = h.iter().collect();
                    for part in pairs.chunks(ITEMS_PER_CMD) {
                        put_array_header(&mut buf, 2 + 2 * part.len());
                        put_bulk(&mut buf, b"HMSET");
                        put_bulk(&mut buf, key);
                        for (f, v) in part {
                            put_bulk(&mut buf, f);
                            put_bulk(&mut buf, v);
                        }
                        flush_if_big(&mut w, &mut buf)?;
                    }
                }
            }
            if let Some(at) = entry.expire_at() {
                put_array_header(&mut buf, 3);
                put_bulk(&mut buf, b"PEXPIREAT");
                put_bulk(&mut buf, key);
                put_bulk(&mut buf, at.to_string().as_bytes());
            }
            flush_if_big(&mut w, &mut buf)?;
        }
    }
    w.write_all(&buf)?;
    Ok(w)
}

fn flush_if_big<W: std::io::Write>(w: &mut W, buf: &mut BytesMut) -> std::io::Result<()> {
    if buf.len() >= 64 * 1024 {
        w.write_all(buf)?;
        buf.clear();
    }
    Ok(())
}

/// The cron's part: a scheduled rewrite once no BGSAVE runs, and the automatic rewrite when
/// the AOF grew `auto-aof-rewrite-percentage` over its base and passed
/// `auto-aof-rewrite-min-size` (Redis's serverCron).
pub fn cron(srv: &Arc<ServerState>) {
    let aof = &srv.aof;
    let status = &aof.shared.status;
    if status.rewrite_in_progress.load(Ordering::Acquire)
        || srv.save.bgsave_in_progress.load(Ordering::Acquire)
    {
        return;
    }
    let scheduled = status.rewrite_scheduled.load(Ordering::Acquire);
    let (perc, min) =
        srv.with_config(|c| (c.auto_aof_rewrite_percentage, c.auto_aof_rewrite_min_size));
    let mut due = scheduled;
    if !due && aof.is_on() && perc > 0 {
        let current = status.current_size.load(Ordering::Relaxed);
        let base = status.base_size.load(Ordering::Relaxed).max(1);
        if current > min {
            let growth = (current * 100 / base).saturating_sub(100);
            if growth >= perc {
                info!("Starting automatic rewriting of AOF on {growth}% growth");
                due = true;
            }
        }
    }
    if !due {
        return;
    }
    let mut st = srv.engine.lock();
    if let Err(e) = start_rewrite(srv, &mut st) {
        warn!(error = %e, "Can't rewrite append only file in background");
    }
}

/// Whether writes must be refused because the AOF cannot be written (Redis's
/// `writeCommandsDeniedByDiskError` → `-MISCONF Errors writing to the AOF file: …`).
pub fn write_error(srv: &ServerState) -> Option<String> {
    let st = &srv.aof.shared.status;
    if st.last_write_ok.load(Ordering::Relaxed) || !srv.aof.is_on() {
        return None;
    }
    Some(lock(&st.last_write_error).clone())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::store::{Entry, Keyspace};

    #[test]
    fn commands_rebuild_each_type_in_batches_of_64() {
        let mut ks = Keyspace::new(2);
        ks.dbs[1].insert(
            Bytes::from_static(b"s"),
            Entry::new(Value::Str(Bytes::from_static(b"v").into()), 0).with_expire(Some(42)),
        );
        let out = write_commands(Vec::new(), &ks.snapshot()).unwrap();
        assert_eq!(
            &out[..],
            b"*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n*3\r\n$3\r\nSET\r\n$1\r\ns\r\n$1\r\nv\r\n\
              *3\r\n$9\r\nPEXPIREAT\r\n$1\r\ns\r\n$2\r\n42\r\n"
        );
    }
}
