//! Loading the AOF at start (`shared/spec/redis.md` §4.4; Redis `aof.c`:
//! `loadAppendOnlyFiles`, `loadSingleAppendOnlyFile`, `aofUpgradePrepare`).
//!
//! The manifest names a base and incremental files; they are replayed in order. A file that
//! starts with `REDIS` is an RDB (a `.base.rdb`, or the preamble of a 6.2 single-file AOF)
//! and may be followed by commands; the rest is a command stream, read in chunks (a large
//! AOF is never held in memory whole) and replayed through the one write path with one
//! internal session, the engine locked per batch of commands so INFO still answers (every
//! other command gets `-LOADING`). A 6.2-style `<dir>/<appendfilename>` with no manifest is
//! first moved into the AOF directory as its base, as Redis 7.0 upgrades it.
//!
//! Damage is handled as Redis 7.0.15 handles it, with its log lines: a truncated last file
//! (or an unclosed MULTI at its end) is cut back to its last complete command when
//! `aof-load-truncated yes`, and fails the start otherwise; a malformed byte, an unknown
//! command or a missing file always fails it, and then no file is modified. Where Redis would
//! cut a file that is not the last (and then fail anyway), kura leaves it as it is.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tracing::{info, warn};

use super::manifest::ManifestError;
use super::manifest::{load_manifest, persist_manifest, AofFile, AofFileType, Manifest};
use super::parse::{next_command, FormatError, Next, Progress};
use crate::cmd::exec::replay;
use crate::cmd::session::Session;
use crate::cmd::Origin;
use crate::persist::rdb::load::{load_prefix, LoadError, LoadOpts};
use crate::state::ServerState;

/// Commands replayed per engine-lock acquisition: short enough for INFO to get in between,
/// long enough that locking costs nothing.
const BATCH: usize = 4096;

/// Bytes read from a command file at a time (more when one command is larger).
const CHUNK: usize = 4 << 20;

/// What the load found, for the AOF writer to carry on from.
#[derive(Debug, Clone, PartialEq)]
pub struct AofLoaded {
    /// The manifest as loaded (after a 6.2 upgrade, the one just written).
    pub manifest: Manifest,
    /// Keys in the dataset after the load.
    pub keys: u64,
    /// Bytes of the base file (`aof_base_size`, the rewrite-growth reference).
    pub base_size: u64,
    /// Bytes of the base and incr files after any truncation (`aof_current_size`).
    pub total_size: u64,
}

/// Why the AOF could not be loaded. kura then does not start; the texts are Redis's.
#[derive(Debug, thiserror::Error)]
pub enum AofLoadError {
    /// The manifest is unreadable or invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The AOF directory could not be created for a 6.2 upgrade.
    #[error("Can't open or create append-only dir {dir}: {source}")]
    CreateDir {
        /// The directory.
        dir: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The manifest of a 6.2 upgrade could not be written.
    #[error("Can't write the AOF manifest file in {dir}: {source}")]
    PersistManifest {
        /// The AOF directory.
        dir: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The 6.2 file could not be moved into the AOF directory.
    #[error("Error trying to move the old AOF file {file} into dir {dir}: {source}")]
    Upgrade {
        /// The old file's name.
        file: String,
        /// The AOF directory's name.
        dir: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file listed in the manifest is missing (or cannot be looked at).
    #[error("Unable to obtain the AOF file {name} length. stat: {source}")]
    Stat {
        /// The file.
        name: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file cannot be opened.
    #[error("Fatal error: can't open the append log file {name} for reading: {source}")]
    Open {
        /// The file.
        name: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file cannot be read.
    #[error("Unrecoverable error reading the append only file {name}: {source}")]
    Read {
        /// The file.
        name: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The RDB part of a file does not load.
    #[error("{}, AOF loading aborted: {source}", if *.preamble {
        format!("Error reading the RDB preamble of the AOF file {name}")
    } else {
        format!("Error reading the RDB base file {name}")
    })]
    Rdb {
        /// The file.
        name: String,
        /// A 6.2 single-file AOF's preamble, rather than a 7.0 base.
        preamble: bool,
        /// What is wrong with it.
        source: LoadError,
    },
    /// An RDB where the dataset is no longer empty (an incr file starting with `REDIS`).
    #[error("RDB data in the AOF file {name} after other files loaded data: refusing to merge")]
    RdbNotFirst {
        /// The file.
        name: String,
    },
    /// A byte that cannot be there (`fmterr`).
    #[error("Bad file format reading the append only file {name}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>")]
    BadFormat {
        /// The file.
        name: String,
        /// What and where (file offset).
        error: FormatError,
    },
    /// The last file ends early and `aof-load-truncated no` (or cutting it failed).
    #[error("Unexpected end of file reading the append only file {name}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server.")]
    Truncated {
        /// The file.
        name: String,
    },
    /// A file other than the last ends early.
    #[error("Fatal error: the truncated file is not the last file ({name})")]
    TruncatedNotLast {
        /// The file.
        name: String,
    },
    /// A command this server does not know.
    #[error("Unknown command '{command}' reading the append only file {name}")]
    UnknownCommand {
        /// The command name.
        command: String,
        /// The file.
        name: String,
    },
    /// `appendonly yes` found no AOF, and the `dump.rdb` kura loads instead failed.
    #[error(transparent)]
    Dump(#[from] crate::persist::save::LoadStartError),
}

impl AofLoadError {
    /// Returns a stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            AofLoadError::Manifest(_) => "manifest",
            AofLoadError::CreateDir { .. }
            | AofLoadError::PersistManifest { .. }
            | AofLoadError::Upgrade { .. } => "upgrade",
            AofLoadError::Stat { .. } => "missing_file",
            AofLoadError::Open { .. } | AofLoadError::Read { .. } => "io",
            AofLoadError::Rdb { .. } | AofLoadError::RdbNotFirst { .. } => "rdb",
            AofLoadError::BadFormat { .. } => "bad_format",
            AofLoadError::Truncated { .. } | AofLoadError::TruncatedNotLast { .. } => "truncated",
            AofLoadError::UnknownCommand { .. } => "unknown_command",
            AofLoadError::Dump(_) => "dump",
        }
    }
}

/// The settings a load reads, taken once.
struct Settings {
    dir: PathBuf,
    aof_dir: PathBuf,
    dirname: String,
    filename: String,
    load_truncated: bool,
    databases: usize,
    rdbchecksum: bool,
}

impl Settings {
    fn of(srv: &ServerState) -> Self {
        srv.with_config(|c| Settings {
            dir: c.dir.clone(),
            aof_dir: c.dir.join(&c.appenddirname),
            dirname: c.appenddirname.clone(),
            filename: c.appendfilename.clone(),
            load_truncated: c.aof_load_truncated,
            databases: c.databases,
            rdbchecksum: c.rdbchecksum,
        })
    }
}

// ---- START ----

/// Loads the data at start with `appendonly yes`: the AOF, or — when there is no AOF at all —
/// `dump.rdb` if it exists. Redis 7.0 would start empty there and its first rewrite would
/// then replace the data on disk with nothing; kura loads the dump and says so.
pub fn load_on_start(srv: &ServerState) -> Result<Option<AofLoaded>, AofLoadError> {
    if let Some(loaded) = load_at_start(srv)? {
        return Ok(Some(loaded));
    }
    let dump = crate::persist::save::dump_path(srv);
    if dump.is_file() {
        warn!(
            "appendonly is yes but there is no AOF: loading the RDB file {} instead (Redis 7.0 would start empty here)",
            dump.display()
        );
        crate::persist::save::load_dump(srv)?;
    }
    Ok(None)
}

/// Loads the AOF into the keyspace (`loadAppendOnlyFiles`). `Ok(None)` when there is no AOF:
/// no manifest (or one listing nothing) and no 6.2 single-file AOF.
pub fn load_at_start(srv: &ServerState) -> Result<Option<AofLoaded>, AofLoadError> {
    let started = Instant::now();
    let cfg = Settings::of(srv);
    let found = load_manifest(&cfg.aof_dir, &cfg.filename).inspect_err(|e| e.log())?;
    let mut m = found.unwrap_or_default();
    if needs_upgrade(&cfg, &m) {
        upgrade(&cfg, &mut m).inspect_err(|e| warn!("{e}"))?;
    }
    if m.is_empty() {
        return Ok(None);
    }
    let result = load_files(srv, &cfg, m);
    match &result {
        Ok(_) => info!(
            "DB loaded from append only file: {:.3} seconds",
            started.elapsed().as_secs_f64()
        ),
        Err(e) => {
            if let AofLoadError::BadFormat { error, .. } = e {
                warn!("AOF format error: {error}");
            }
            warn!("{e}");
        }
    }
    result.map(Some)
}

/// Reports whether a 6.2 single-file AOF must be moved in first (`loadAppendOnlyFiles`'s
/// three upgrade cases: no AOF directory; a manifest listing nothing; or a manifest listing
/// only that file as base while the directory does not hold it — a crash mid-upgrade).
fn needs_upgrade(cfg: &Settings, m: &Manifest) -> bool {
    if !cfg.dir.join(&cfg.filename).is_file() {
        return false;
    }
    let half_done = m.incrs.is_empty()
        && m.base.as_ref().is_some_and(|b| b.name == cfg.filename)
        && !cfg.aof_dir.join(&cfg.filename).is_file();
    !cfg.aof_dir.is_dir() || m.is_empty() || half_done
}

/// Moves `<dir>/<appendfilename>` into the AOF directory as its base (`aofUpgradePrepare`):
/// directory, then manifest, then the rename, so a crash anywhere is retried at next start.
fn upgrade(cfg: &Settings, m: &mut Manifest) -> Result<(), AofLoadError> {
    std::fs::create_dir_all(&cfg.aof_dir).map_err(|source| AofLoadError::CreateDir {
        dir: cfg.dirname.clone(),
        source,
    })?;
    m.base = Some(AofFile {
        name: cfg.filename.clone(),
        seq: 1,
        kind: AofFileType::Base,
    });
    m.curr_base_seq = 1;
    persist_manifest(&cfg.aof_dir, &cfg.filename, m).map_err(|source| {
        AofLoadError::PersistManifest {
            dir: cfg.dirname.clone(),
            source,
        }
    })?;
    std::fs::rename(cfg.dir.join(&cfg.filename), cfg.aof_dir.join(&cfg.filename)).map_err(
        |source| AofLoadError::Upgrade {
            file: cfg.filename.clone(),
            dir: cfg.dirname.clone(),
            source,
        },
    )?;
    info!(
        "Successfully migrated an old-style AOF file ({}) into the AOF directory ({}).",
        cfg.filename, cfg.dirname
    );
    Ok(())
}

/// Replays the base and the incrs in order.
fn load_files(srv: &ServerState, cfg: &Settings, m: Manifest) -> Result<AofLoaded, AofLoadError> {
    // Every listed file must exist before anything is loaded (`getBaseAndIncrAppendOnlyFilesSize`).
    let files: Vec<&AofFile> = m.load_order().collect();
    let mut sizes = Vec::with_capacity(files.len());
    for f in &files {
        let meta =
            std::fs::metadata(cfg.aof_dir.join(&f.name)).map_err(|source| AofLoadError::Stat {
                name: f.name.clone(),
                source,
            })?;
        sizes.push(meta.len());
    }
    let mut base_size = 0;
    let mut total_size = 0;
    if sizes.iter().sum::<u64>() > 0 {
        let mut sess = Session::internal(Origin::AofLoad, 0);
        for (i, f) in files.iter().enumerate() {
            let last = i + 1 == files.len();
            let started = Instant::now();
            // Redis gives every file a fresh client: each one starts in DB 0, outside MULTI.
            sess.db = 0;
            sess.multi = None;
            sess.multi_error = false;
            let size = load_file(srv, cfg, f, last, &mut sess)?;
            if sizes[i] > 0 {
                let what = if f.kind == AofFileType::Base {
                    "base"
                } else {
                    "incr"
                };
                info!(
                    "DB loaded from {what} file {}: {:.3} seconds",
                    f.name,
                    started.elapsed().as_secs_f64()
                );
            }
            if f.kind == AofFileType::Base {
                base_size = size;
            }
            total_size += size;
        }
    }
    let keys = srv
        .engine
        .lock()
        .ks
        .dbs
        .iter()
        .map(|d| d.len() as u64)
        .sum();
    Ok(AofLoaded {
        manifest: m,
        keys,
        base_size,
        total_size,
    })
}

// ---- ONE FILE ----

/// How a command stream ended.
enum End {
    /// At a command boundary, no MULTI open.
    Clean,
    /// Early: the file may be cut at `valid_up_to`.
    Short {
        valid_up_to: u64,
        unclosed_multi: bool,
    },
}

/// Loads one file (`loadSingleAppendOnlyFile`); returns its size after any truncation.
fn load_file(
    srv: &ServerState,
    cfg: &Settings,
    f: &AofFile,
    last: bool,
    sess: &mut Session,
) -> Result<u64, AofLoadError> {
    let name = &f.name;
    let path = cfg.aof_dir.join(name);
    let mut file = File::open(&path).map_err(|source| AofLoadError::Open {
        name: name.clone(),
        source,
    })?;
    let read_err = |source| AofLoadError::Read {
        name: name.clone(),
        source,
    };
    let len = file.metadata().map_err(read_err)?.len();
    if len == 0 {
        return Ok(0);
    }
    let mut head = [0u8; 5];
    let got = read_full(&mut file, &mut head).map_err(read_err)?;
    let mut stream = if got == 5 && &head == b"REDIS" {
        // An RDB: the whole file in memory (the RDB reader works on a buffer), commands may
        // follow it.
        let mut buf = Vec::with_capacity(len as usize);
        buf.extend_from_slice(&head);
        file.read_to_end(&mut buf).map_err(read_err)?;
        let buf = Bytes::from(buf);
        let rdb_end = load_rdb(srv, cfg, name, &buf)?;
        Stream::whole(buf, rdb_end)
    } else {
        Stream::new(file, len, head[..got].to_vec())
    };
    let end = replay_stream(srv, name, &mut stream, sess)?;
    let (valid_up_to, unclosed_multi) = match end {
        End::Clean => return Ok(len),
        End::Short {
            valid_up_to,
            unclosed_multi,
        } => (valid_up_to, unclosed_multi),
    };
    if unclosed_multi {
        warn!("Revert incomplete MULTI/EXEC transaction in AOF file {name}");
    }
    if !cfg.load_truncated {
        return Err(AofLoadError::Truncated { name: name.clone() });
    }
    warn!("!!! Warning: short read while loading the AOF file {name}!!!");
    if !last {
        // Redis cuts the file and then fails; kura fails without touching it.
        return Err(AofLoadError::TruncatedNotLast { name: name.clone() });
    }
    warn!("!!! Truncating the AOF {name} at offset {valid_up_to} !!!");
    let cut = OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(valid_up_to).and_then(|_| f.sync_all()));
    if let Err(e) = cut {
        warn!("Error truncating the AOF file {name}: {e}");
        return Err(AofLoadError::Truncated { name: name.clone() });
    }
    warn!("AOF {name} loaded anyway because aof-load-truncated is enabled");
    Ok(valid_up_to)
}

/// Loads the RDB at the start of `buf` into the (empty) keyspace; returns where it ends.
fn load_rdb(
    srv: &ServerState,
    cfg: &Settings,
    name: &str,
    buf: &[u8],
) -> Result<usize, AofLoadError> {
    // The file named `appendfilename` itself is a 6.2 AOF with an RDB preamble.
    let preamble = name == cfg.filename;
    if preamble {
        info!("Reading RDB preamble from AOF file...");
    } else {
        info!("Reading RDB base file on AOF loading...");
    }
    // Expired keys are kept, as with RDBFLAGS_AOF_PREAMBLE: the commands that follow may
    // still touch them, and expiry removes them after the load.
    let opts = LoadOpts {
        verify_checksum: cfg.rdbchecksum,
        drop_expired: false,
        now_ms: srv.clock.now_ms(),
    };
    let (loaded, end) =
        load_prefix(buf, cfg.databases, &opts).map_err(|source| AofLoadError::Rdb {
            name: name.to_string(),
            preamble,
            source,
        })?;
    srv.save.record_load(&loaded);
    {
        let mut st = srv.engine.lock();
        if st.ks.dbs.iter().any(|d| !d.is_empty()) {
            return Err(AofLoadError::RdbNotFirst {
                name: name.to_string(),
            });
        }
        st.ks = loaded.keyspace;
    }
    if preamble {
        info!("Reading the remaining AOF tail...");
    }
    Ok(end)
}

/// A window on a command file: the bytes read so far that are not yet replayed.
struct Stream {
    src: Option<File>,
    /// The unreplayed bytes (and possibly the start of an unfinished command).
    buf: Bytes,
    /// The file offset of `buf[0]`.
    buf_start: u64,
    /// Where replay stands in `buf`.
    pos: usize,
    /// Bytes of the file read so far.
    read: u64,
    /// The file's length.
    len: u64,
}

impl Stream {
    /// A stream over `file` of `len` bytes, `head` already read from its start.
    fn new(file: File, len: u64, head: Vec<u8>) -> Self {
        Stream {
            src: Some(file),
            read: head.len() as u64,
            buf: Bytes::from(head),
            buf_start: 0,
            pos: 0,
            len,
        }
    }

    /// A stream over a file already in memory, replay starting at `pos`.
    fn whole(buf: Bytes, pos: usize) -> Self {
        let len = buf.len() as u64;
        Stream {
            src: None,
            buf,
            buf_start: 0,
            pos,
            read: len,
            len,
        }
    }

    /// Reports whether the whole file is in the window.
    fn eof(&self) -> bool {
        self.src.is_none() || self.read >= self.len
    }

    /// Keeps `buf[from..]` and reads more after it: at least `need` bytes from `from` in all
    /// when the file has them. Returns false when the file cannot hold `need` bytes from
    /// there (it is truncated).
    fn refill(&mut self, from: usize, need: usize) -> std::io::Result<bool> {
        let keep = self.buf.len() - from;
        let file_left = self.len - self.read;
        if (keep as u64).saturating_add(file_left) < need as u64 {
            return Ok(false);
        }
        let want = (need.saturating_sub(keep))
            .max(CHUNK)
            .min(file_left as usize);
        let mut next = BytesMut::with_capacity(keep + want);
        next.extend_from_slice(&self.buf[from..]);
        next.resize(keep + want, 0);
        let mut filled = keep;
        if let Some(src) = self.src.as_mut() {
            while filled < next.len() {
                match src.read(&mut next[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if filled < next.len() {
            // The file shrank under us: what is there is all there is.
            self.len = self.read + (filled - keep) as u64;
        }
        next.truncate(filled);
        self.read += (filled - keep) as u64;
        self.buf_start += from as u64;
        self.buf = next.freeze();
        self.pos = 0;
        Ok(true)
    }
}

/// Replays the commands of `stream` from its position to the end of the file.
fn replay_stream(
    srv: &ServerState,
    name: &str,
    s: &mut Stream,
    sess: &mut Session,
) -> Result<End, AofLoadError> {
    let mut progress = Progress::starting_at(s.buf_start + s.pos as u64);
    loop {
        let eof = s.eof();
        // One batch under one lock acquisition.
        let mut st = srv.engine.lock();
        debug_assert!(
            !st.stream.is_active(),
            "replayed commands must not reach the write stream"
        );
        let mut replayed = 0;
        let stop = loop {
            let next = next_command(&s.buf, s.pos, eof).map_err(|e| AofLoadError::BadFormat {
                name: name.to_string(),
                error: e.shifted(s.buf_start as usize),
            })?;
            match next {
                Next::Command(c) => {
                    let argv: Vec<Bytes> = c.argv.iter().map(|a| s.buf.slice_ref(a)).collect();
                    let end = c.end;
                    let command = argv[0].clone();
                    if replay(srv, &mut st, sess, argv).is_none() {
                        return Err(AofLoadError::UnknownCommand {
                            command: String::from_utf8_lossy(crate::cmd::reply::c_str(
                                &command,
                                usize::MAX,
                            ))
                            .into_owned(),
                            name: name.to_string(),
                        });
                    }
                    progress.command(&command, s.buf_start + end as u64);
                    s.pos = end;
                    replayed += 1;
                    if replayed == BATCH {
                        break None;
                    }
                }
                Next::Incomplete { start, need } => break Some((start, need)),
                // Everything in the window is replayed (annotations at most remain).
                Next::End => break Some((s.buf.len(), 1)),
            }
        };
        drop(st);
        let Some((from, need)) = stop else {
            continue;
        };
        let at_end = from == s.buf.len() && eof;
        if at_end {
            return Ok(match progress.open_multi() {
                Some(valid_up_to) => End::Short {
                    valid_up_to,
                    unclosed_multi: true,
                },
                None => End::Clean,
            });
        }
        let more = !eof
            && s.refill(from, need).map_err(|source| AofLoadError::Read {
                name: name.to_string(),
                source,
            })?;
        if !more {
            // EOF inside a command (Redis's `readerr` at feof → `uxeof`).
            return Ok(End::Short {
                valid_up_to: progress.valid_up_to(),
                unclosed_multi: false,
            });
        }
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Returns the AOF directory for the current settings (`<dir>/<appenddirname>`).
pub fn aof_dir(srv: &ServerState) -> PathBuf {
    srv.with_config(|c| c.dir.join(&c.appenddirname))
}

#[cfg(test)]
mod tests;
