//! Saving RDB files without stopping writers (`shared/spec/redis.md` §4.1–4.3; DESIGN.md
//! "Snapshots never stop writers").
//!
//! A save takes a snapshot under the engine lock (one `Arc` clone per shard: microseconds,
//! whatever the data size), notes the dirty counter and write-stream offset, and lets the
//! lock go. A background thread then serialises the snapshot with the one RDB writer; writers
//! meanwhile copy only the shards and chunks they touch. No fork, no doubled memory.
//!
//! The file is crash-safe as Redis makes it: `temp-<pid>-<n>.rdb` in `dir`, fsync, rename
//! over `dbfilename`, fsync of the directory. On any error the temp file is removed and the
//! previous dump is untouched.

use crate::config::ShutdownFlags;
use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn};

use super::offload::Offload;
use super::pace::Paced;
use super::rdb::crc64::Crc64Writer;
use super::rdb::encode::WriteOpts;
use super::rdb::writer::{write_rdb, write_rdb_unsummed, Aux, Written};
use crate::state::ServerState;
use crate::store::Snapshot;

/// Why a save failed.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// Writing, syncing or renaming the file failed.
    #[error("failed saving the rdb file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The facts INFO persistence, LASTSAVE and the HTTP door report (one struct, STYLE.md
/// data flow d).
#[derive(Debug)]
pub struct SaveStatus {
    /// A background save is running.
    pub bgsave_in_progress: AtomicBool,
    /// Unix seconds the running background save started.
    pub bgsave_started: AtomicI64,
    /// The last background save succeeded (`rdb_last_bgsave_status`).
    pub last_bgsave_ok: AtomicBool,
    /// Seconds the last background save took, -1 if none ran.
    pub last_bgsave_secs: AtomicI64,
    /// Unix seconds of the last background save attempt (retry delay after a failure).
    pub last_bgsave_try: AtomicI64,
    /// SAVE and BGSAVE attempts since start (`rdb_saves`).
    pub saves: AtomicU64,
    /// A BGSAVE SCHEDULE is waiting for the cron.
    pub scheduled: AtomicBool,
    /// Bytes of the last file written (for the HTTP door's status).
    pub last_bytes: AtomicU64,
    /// SHUTDOWN already decided about the final save (made it, or was told NOSAVE).
    pub shutdown_settled: AtomicBool,
    /// The write-stream offset SHUTDOWN's own save was made at (-1: it made none).
    pub shutdown_saved_at: AtomicI64,
    /// SHUTDOWN was given NOW: no wait for lagging replicas.
    pub shutdown_now: AtomicBool,
    /// Keys the last load put in (`rdb_last_load_keys_loaded`).
    pub last_load_loaded: AtomicU64,
    /// Keys the last load dropped as expired (`rdb_last_load_keys_expired`).
    pub last_load_expired: AtomicU64,
}

impl Default for SaveStatus {
    fn default() -> Self {
        SaveStatus {
            bgsave_in_progress: AtomicBool::new(false),
            bgsave_started: AtomicI64::new(0),
            last_bgsave_ok: AtomicBool::new(true),
            last_bgsave_secs: AtomicI64::new(-1),
            last_bgsave_try: AtomicI64::new(0),
            saves: AtomicU64::new(0),
            scheduled: AtomicBool::new(false),
            last_bytes: AtomicU64::new(0),
            shutdown_settled: AtomicBool::new(false),
            shutdown_saved_at: AtomicI64::new(-1),
            shutdown_now: AtomicBool::new(false),
            last_load_loaded: AtomicU64::new(0),
            last_load_expired: AtomicU64::new(0),
        }
    }
}

impl SaveStatus {
    /// Records what a load put in and dropped (`rdb_last_load_keys_loaded` / `_expired`).
    pub fn record_load(&self, loaded: &super::rdb::load::Loaded) {
        self.last_load_loaded
            .store(loaded.keys_loaded, Ordering::Relaxed);
        self.last_load_expired
            .store(loaded.keys_expired, Ordering::Relaxed);
    }
}

/// What a save works from: the snapshot and where the stream stood.
pub struct SavePoint {
    /// The data.
    pub snapshot: Snapshot,
    /// The dirty counter when it was taken (a successful BGSAVE subtracts it).
    pub dirty: u64,
    /// AUX fields, including the write-stream position.
    pub aux: Aux,
}

/// Takes a save point from the locked engine state.
pub fn save_point(srv: &ServerState, st: &crate::cmd::EngineState) -> SavePoint {
    let replid = srv.repl.replid();
    SavePoint {
        snapshot: st.ks.snapshot(),
        dirty: st.dirty,
        aux: Aux {
            redis_ver: crate::REDIS_VERSION.into(),
            ctime: srv.clock.now_ms() / 1000,
            used_mem: srv.used_memory.load(Ordering::Relaxed),
            // A replica records its master's history, and the database its master's stream
            // selected, while it has a master or a cached one (Redis `rdbPopulateSaveInfo`).
            repl: if st.is_replica {
                srv.repl
                    .follower
                    .lock()
                    .ok()
                    .and_then(|f| f.stream_db())
                    .map(|db| (db, replid, st.stream.offset()))
            } else {
                st.stream.is_active().then(|| {
                    (
                        st.stream.selected_db().unwrap_or(0),
                        replid,
                        st.stream.offset(),
                    )
                })
            },
            aof_base: false,
        },
    }
}

/// Returns where the dump lives (`dir`/`dbfilename`).
pub fn dump_path(srv: &ServerState) -> PathBuf {
    srv.with_config(|c| c.dir.join(&c.dbfilename))
}

/// Writes `point` to `path` crash-safely; returns the byte count and what was written.
/// `offload`: the file's writes and fsyncs run on a second thread (see [`Offload`]), for
/// saves that block the server anyway.
pub fn write_file(
    srv: &ServerState,
    path: &Path,
    point: &SavePoint,
    offload: bool,
) -> Result<(u64, Written), SaveError> {
    let (opts, checksum, incremental) = srv.with_config(|c| {
        (
            WriteOpts::from_config(c),
            c.rdbchecksum,
            c.rdb_save_incremental_fsync,
        )
    });
    let mut written = Written::default();
    let bytes = if offload {
        // The writer thread also computes the CRC64 and appends the trailer.
        write_durably(path, incremental, Mode::Thread { checksum }, |w| {
            let (w, n) = write_rdb_unsummed(w, &point.snapshot, &point.aux, &opts)?;
            written = n;
            Ok(w)
        })?
    } else {
        let percent = srv.with_config(|c| c.snapshot_cpu_percent);
        write_durably(path, incremental, Mode::Here { percent }, |w| {
            let (w, n) = write_rdb(w, &point.snapshot, &point.aux, &opts, checksum)?;
            written = n;
            Ok(w)
        })?
    };
    Ok((bytes, written))
}

/// Writes a file crash-safely, as Redis writes dumps and AOF bases: `body` fills
/// `temp-<pid>-<n>.rdb` beside `path`, which is fsynced (also every 4 MB on the way when
/// `incremental`, so the final fsync never has gigabytes to flush at once), renamed over
/// `path`, and the directory fsynced. On any error the temp file is removed and `path` is
/// untouched. Returns the file's size.
pub fn write_durably(
    path: &Path,
    incremental: bool,
    mode: Mode,
    body: impl FnOnce(BufWriter<Sink>) -> std::io::Result<BufWriter<Sink>>,
) -> Result<u64, SaveError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);
    let temp = dir.join(format!(
        "temp-{}-{}.rdb",
        std::process::id(),
        TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let io_err = |p: &Path| {
        let p = p.display().to_string();
        move |source| SaveError::Io { path: p, source }
    };
    let result = (|| -> std::io::Result<u64> {
        std::fs::create_dir_all(dir)?;
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        let every = incremental.then_some(INCREMENTAL_FSYNC_BYTES);
        let file = SyncEvery {
            file,
            every,
            since: 0,
        };
        let sink = match mode {
            Mode::Here { percent } => Sink::Here(Paced::new(file, percent)),
            Mode::Thread { checksum } => {
                Sink::Thread(Offload::new(Crc64Writer::new(file))?, checksum)
            }
        };
        let buf = body(BufWriter::with_capacity(1 << 20, sink))?;
        let file = buf.into_inner().map_err(|e| e.into_error())?.finish()?;
        file.sync_all()?;
        let bytes = file.metadata()?.len();
        drop(file);
        std::fs::rename(&temp, path)?;
        // The rename is durable only once the directory entry is.
        File::open(dir)?.sync_all()?;
        Ok(bytes)
    })();
    if result.is_err() {
        super::remove_leftover(&temp, "the temp rdb file");
    }
    result.map_err(io_err(path))
}

/// Redis's `REDIS_AUTOSYNC_BYTES`: 4 MB between fsyncs of an incrementally synced file.
const INCREMENTAL_FSYNC_BYTES: u64 = 4 * 1024 * 1024;

/// A file that fsyncs itself every so many bytes written (`rdb-save-incremental-fsync`,
/// `aof-rewrite-incremental-fsync`).
pub struct SyncEvery {
    file: File,
    every: Option<u64>,
    since: u64,
}

impl std::io::Write for SyncEvery {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        if let Some(every) = self.every {
            self.since += n as u64;
            if self.since >= every {
                self.file.sync_data()?;
                self.since = 0;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// How [`write_durably`] writes the file.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// On the caller's thread, exactly the bytes the body writes, working `percent` of the
    /// time (`snapshot-cpu-percent`; 100 for a save the server waits for).
    Here {
        /// Share of the time the thread works (see [`Paced`]).
        percent: u32,
    },
    /// On a writer thread ([`Offload`]), which also computes the CRC64 of what the body
    /// writes (an RDB without its trailer) and appends it as the trailer (zeros without
    /// `checksum`): a save that blocks the server spends its own thread only on encoding.
    Thread {
        /// Append the CRC64 (`rdbchecksum yes`) rather than zeros.
        checksum: bool,
    },
}

/// Where a crash-safe file's bytes go.
pub enum Sink {
    /// Written here, paced.
    Here(Paced<SyncEvery>),
    /// Checksummed and written by [`Offload`]'s thread; whether the trailer holds the CRC.
    Thread(Offload<Crc64Writer<SyncEvery>>, bool),
}

impl Sink {
    /// Waits for every byte to be written (and the trailer, for [`Mode::Thread`]); returns
    /// the file.
    fn finish(self) -> std::io::Result<File> {
        match self {
            Sink::Here(s) => Ok(s.into_inner().file),
            Sink::Thread(o, checksum) => {
                let summed = o.finish()?;
                let crc = if checksum { summed.crc() } else { 0 };
                let mut file = summed.into_inner();
                std::io::Write::write_all(&mut file, &crc.to_le_bytes())?;
                Ok(file.file)
            }
        }
    }
}

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Here(s) => s.write(buf),
            Sink::Thread(o, _) => o.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Here(s) => s.flush(),
            Sink::Thread(o, _) => o.flush(),
        }
    }
}

/// Records a finished save: LASTSAVE, the dirty counter (minus what it was at the start),
/// the byte count.
fn finish(srv: &ServerState, st: &mut crate::cmd::EngineState, point_dirty: u64, bytes: u64) {
    srv.lastsave
        .store(srv.clock.now_ms() / 1000, Ordering::Relaxed);
    srv.save.last_bytes.store(bytes, Ordering::Relaxed);
    st.dirty = st.dirty.saturating_sub(point_dirty);
}

/// `SAVE`: writes the dump now, with the caller holding the engine lock (Redis's SAVE
/// blocks every client too).
pub fn save_locked(srv: &ServerState, st: &mut crate::cmd::EngineState) -> Result<(), SaveError> {
    srv.save.saves.fetch_add(1, Ordering::Relaxed);
    let point = save_point(srv, st);
    // The server waits for this save: the disk's side runs beside the encoder.
    let (bytes, written) = write_file(srv, &dump_path(srv), &point, true)?;
    info!(keys = written.keys, "DB saved on disk");
    finish(srv, st, point.dirty, bytes);
    Ok(())
}

/// Starts a background save from a save point taken under the lock by the caller; returns
/// false if one is already running.
pub fn start_bgsave(srv: &Arc<ServerState>, point: SavePoint) -> bool {
    if srv.save.bgsave_in_progress.swap(true, Ordering::AcqRel) {
        return false;
    }
    let now = srv.clock.now_ms() / 1000;
    srv.save.bgsave_started.store(now, Ordering::Relaxed);
    srv.save.last_bgsave_try.store(now, Ordering::Relaxed);
    srv.save.saves.fetch_add(1, Ordering::Relaxed);
    info!("Background saving started");
    let worker = srv.clone();
    let spawned = std::thread::Builder::new()
        .name("kura-bgsave".into())
        .spawn(move || {
            let srv = worker;
            let started = Instant::now();
            let result = write_file(&srv, &dump_path(&srv), &point, false);
            let took = started.elapsed();
            srv.metrics.bgsave_duration.observe(took.as_secs_f64());
            let secs = took.as_secs() as i64;
            match result {
                Ok((bytes, written)) => {
                    finish(&srv, &mut srv.engine.lock(), point.dirty, bytes);
                    srv.save.last_bgsave_ok.store(true, Ordering::Relaxed);
                    info!(keys = written.keys, bytes, "DB saved on disk");
                    info!("Background saving terminated with success");
                }
                Err(e) => {
                    srv.save.last_bgsave_ok.store(false, Ordering::Relaxed);
                    warn!(error = %e, "Background saving error");
                }
            }
            srv.save.last_bgsave_secs.store(secs, Ordering::Relaxed);
            srv.save.bgsave_in_progress.store(false, Ordering::Release);
        });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start the background save thread");
        srv.save.last_bgsave_ok.store(false, Ordering::Relaxed);
        srv.save.bgsave_in_progress.store(false, Ordering::Release);
        return false;
    }
    true
}

/// Reports whether writes (and PING) must get MISCONF: save points are configured, the
/// last background save failed and `stop-writes-on-bgsave-error` is on (Redis's
/// `writeCommandsDeniedByDiskError`).
pub fn writes_denied(srv: &ServerState) -> bool {
    !srv.save.last_bgsave_ok.load(Ordering::Relaxed)
        && srv.with_config(|c| c.stop_writes_on_bgsave_error && !c.save.is_empty())
}

/// The cron's part (serverCron): a scheduled BGSAVE, or a save point whose time and change
/// count are both reached (`<changes> changes in <seconds> seconds. Saving...`). After a
/// failed BGSAVE, the next try waits 5 s (`CONFIG_BGSAVE_RETRY_DELAY`).
pub fn cron(srv: &Arc<ServerState>) {
    // One background job at a time, as Redis runs one child.
    if srv.save.bgsave_in_progress.load(Ordering::Acquire)
        || srv
            .aof
            .shared
            .status
            .rewrite_in_progress
            .load(Ordering::Acquire)
    {
        return;
    }
    let now = srv.clock.now_ms() / 1000;
    let scheduled = srv.save.scheduled.swap(false, Ordering::AcqRel);
    let points = srv.with_config(|c| c.save.clone());
    let st = srv.engine.lock();
    let lastsave = srv.lastsave.load(Ordering::Relaxed);
    let may_retry = srv.save.last_bgsave_ok.load(Ordering::Relaxed)
        || now - srv.save.last_bgsave_try.load(Ordering::Relaxed) > 5;
    let due = points
        .iter()
        .find(|&&(secs, changes)| st.dirty >= changes && now - lastsave > secs as i64);
    if let (Some(&(secs, changes)), true) = (due, may_retry) {
        info!("{changes} changes in {secs} seconds. Saving...");
    } else if !scheduled {
        return;
    }
    let point = save_point(srv, &st);
    drop(st);
    start_bgsave(srv, point);
}

/// The final save on the way out (SIGTERM, SIGINT, or SHUTDOWN's own decision): made when
/// save points are configured or `flags` say `save`, unless they say `nosave` or SHUTDOWN
/// settled it already, as Redis's `finishShutdown`.
pub fn final_save(srv: &ServerState, flags: ShutdownFlags) {
    if srv.save.shutdown_settled.swap(true, Ordering::AcqRel) {
        resave_after_shutdown(srv);
        return;
    }
    if !flags.saves(srv.with_config(|c| !c.save.is_empty())) {
        return;
    }
    info!("Saving the final RDB snapshot before exiting.");
    let mut st = srv.engine.lock();
    if let Err(e) = save_locked(srv, &mut st) {
        // Redis stays up when this fails without FORCE; kura has closed its doors by now
        // (the dump is made once no client can write), so it exits either way.
        warn!(error = %e, "Error trying to save the DB. Exit anyway.");
    }
}

/// SHUTDOWN saved in its handler (so a failure reaches its caller and the server stays up),
/// but other connections finish their last commands after it, and the replicas' settling
/// adds a `REPLCONF GETACK` to the stream. Redis saves only once writes are paused and its
/// replicas are in sync (`finishShutdown`), so its dump holds every acknowledged write and
/// records the offset the replicas reached; the dump is made again when anything followed.
fn resave_after_shutdown(srv: &ServerState) {
    let Ok(at) = u64::try_from(srv.save.shutdown_saved_at.load(Ordering::Acquire)) else {
        return;
    };
    let mut st = srv.engine.lock();
    if st.dirty == 0 && st.stream.offset() == at {
        return;
    }
    info!("Saving the final RDB snapshot before exiting.");
    if let Err(e) = save_locked(srv, &mut st) {
        warn!(error = %e, "Error trying to save the DB, can't exit.");
    }
}

/// Why the dump could not be loaded at start (kura then does not start, and the file is
/// left as it is).
#[derive(Debug, thiserror::Error)]
pub enum LoadStartError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a loadable RDB.
    #[error("cannot load {path}: {source}")]
    Load {
        /// The file.
        path: String,
        /// What is wrong with it.
        source: super::rdb::load::LoadError,
    },
}

/// Loads `dir`/`dbfilename` into the keyspace, if the file exists (Redis's
/// `loadDataFromDisk`). Returns the keys loaded.
pub fn load_dump(srv: &ServerState) -> Result<Option<u64>, LoadStartError> {
    let Some(loaded) = read_dump(srv)? else {
        return Ok(None);
    };
    let keys = loaded.keys_loaded;
    let repl = loaded
        .repl_id()
        .zip(loaded.repl_offset())
        .map(|(id, offset)| (id.to_string(), offset, loaded.repl_stream_db().unwrap_or(0)));
    let mut st = srv.engine.lock();
    st.ks = loaded.keyspace;
    // The replication id and offset survive the restart (spec §2.8).
    crate::replication::replica::restore_ids(srv, &mut st, repl);
    // Replicas that continue partially still hold the keys that expired while we were down:
    // the history carries their DELs, as Redis's `RDBFLAGS_FEED_REPL` load does.
    if st.stream.is_active() && !st.is_replica {
        for (db, key) in loaded.expired {
            st.stream
                .append(db, &[bytes::Bytes::from_static(b"DEL"), key.into()]);
        }
    }
    Ok(Some(keys))
}

/// DEBUG RELOAD's load: the dump replaces the dataset, with the engine already locked.
pub fn load_file_locked(
    srv: &ServerState,
    st: &mut crate::cmd::EngineState,
) -> Result<(), LoadStartError> {
    let Some(loaded) = read_dump(srv)? else {
        return Err(LoadStartError::Read {
            path: dump_path(srv).display().to_string(),
            source: std::io::ErrorKind::NotFound.into(),
        });
    };
    st.ks = loaded.keyspace;
    Ok(())
}

/// Reads and parses the dump; `None` when there is no file.
fn read_dump(srv: &ServerState) -> Result<Option<super::rdb::load::Loaded>, LoadStartError> {
    use super::rdb::load::{load, LoadOpts};
    let path = dump_path(srv);
    let shown = path.display().to_string();
    let buf = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LoadStartError::Read {
                path: shown,
                source,
            })
        }
    };
    let started = Instant::now();
    let now = srv.clock.now_ms();
    let (databases, replica) = srv.with_config(|c| (c.databases, c.replicaof.is_some()));
    let opts = if replica {
        LoadOpts::replica(now)
    } else {
        LoadOpts::master(now)
    };
    let loaded = load(&buf, databases, &opts).map_err(|source| LoadStartError::Load {
        path: shown.clone(),
        source,
    })?;
    info!(
        "DB loaded from disk: {:.3} seconds",
        started.elapsed().as_secs_f64()
    );
    srv.save.record_load(&loaded);
    Ok(Some(loaded))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Entry, Keyspace, List, Value};

    fn sample() -> Snapshot {
        let mut ks = Keyspace::new(2);
        for i in 0..300 {
            let key = format!("k{i}");
            let value = if i % 3 == 0 {
                let items: Vec<Vec<u8>> =
                    (0..200).map(|j| format!("{j:0100}").into_bytes()).collect();
                Value::List(Arc::new(List::from_iter_bytes(
                    items.iter().map(|v| v.as_slice()),
                )))
            } else {
                Value::Str(format!("value-{i}").repeat(i % 7 + 1).as_bytes().into())
            };
            ks.dbs[i % 2].insert(key, Entry::new(value, 0));
        }
        ks.snapshot()
    }

    /// The offloaded SAVE (writer thread computing the CRC) writes the very bytes the
    /// one-thread path writes, with and without `rdbchecksum`.
    #[test]
    fn offloaded_writes_match_direct_ones() {
        let dir = tempfile::tempdir().unwrap();
        let snap = sample();
        let aux = Aux {
            redis_ver: "7.0.15".into(),
            ctime: 1,
            used_mem: 2,
            repl: None,
            aof_base: false,
        };
        let opts = WriteOpts::default();
        for checksum in [true, false] {
            let here = dir.path().join(format!("here-{checksum}.rdb"));
            let thread = dir.path().join(format!("thread-{checksum}.rdb"));
            write_durably(&here, true, Mode::Here { percent: 100 }, |w| {
                write_rdb(w, &snap, &aux, &opts, checksum).map(|(w, _)| w)
            })
            .unwrap();
            write_durably(&thread, true, Mode::Thread { checksum }, |w| {
                write_rdb_unsummed(w, &snap, &aux, &opts).map(|(w, _)| w)
            })
            .unwrap();
            let (a, b) = (
                std::fs::read(&here).unwrap(),
                std::fs::read(&thread).unwrap(),
            );
            assert!(a.len() > 100_000);
            assert_eq!(a, b, "checksum {checksum}");
        }
    }
}
