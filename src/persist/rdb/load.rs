//! Loading a whole RDB file into a fresh [`Keyspace`] (`shared/spec/redis.md` §3.1 layout and
//! loader rules, §3.8 the annotated file, §3.9 CRC64; Redis 7.0 `rdb.c`
//! `rdbLoadRioWithLoadingCtx`).
//!
//! The file is in memory, the values are read by the DUMP/RESTORE codec ([`Reader`]), and keys
//! go straight into the keyspace's shards: nothing is staged in a second list of keys and
//! values, which would cost a copy of every key and a second pass. Large files have their
//! CRC64 computed on another thread while they are parsed, so verifying the checksum adds
//! no time on two cores.
//!
//! What kura refuses, it refuses loudly: a key of a type kura does not hold (set, sorted set,
//! stream, module) stops the load with an error naming the key and the type, as do module AUX
//! data and function libraries. Nothing is ever dropped silently; only empty aggregates are
//! skipped with a warning, as Redis does. Truncation, corruption and trailing bytes are errors
//! carrying the byte offset, never panics. Error and log texts reuse Redis's words, so an
//! operator who knows Redis's log recognises them.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use super::crc64::crc64;
use super::opcode;
use super::{types, RdbError, Reader, RDB_VERSION};
use crate::store::{Entry, Keyspace};

/// Files larger than this have their checksum computed on a second thread while they are
/// parsed; below it a thread costs more than it saves.
const PARALLEL_CRC_MIN: usize = 1 << 20;

/// Redis logs only the first few empty keys it skips (`empty_keys_skipped++ < 10`).
const EMPTY_KEYS_LOGGED: u64 = 10;

/// How to load: the server settings and role that change what a load does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOpts {
    /// Checks the trailing CRC64 (`rdbchecksum yes`); a stored 0 is never checked.
    pub verify_checksum: bool,
    /// Drops keys whose expiry is already past (a master). A replica keeps them: its master
    /// expires them and sends the DEL, so the replica's data matches the master's.
    pub drop_expired: bool,
    /// The current time in unix milliseconds, for expiries and access times.
    pub now_ms: i64,
}

impl LoadOpts {
    /// Returns the options of a master loading its own `dump.rdb` at start.
    pub fn master(now_ms: i64) -> Self {
        LoadOpts {
            verify_checksum: true,
            drop_expired: true,
            now_ms,
        }
    }

    /// Returns the options of a replica loading its master's snapshot (expired keys kept).
    pub fn replica(now_ms: i64) -> Self {
        LoadOpts {
            drop_expired: false,
            ..LoadOpts::master(now_ms)
        }
    }
}

/// What became of the trailing checksum, for the log and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// It matched the CRC64 of the file.
    Verified,
    /// The file stores 0: saved with `rdbchecksum no`, nothing to check.
    Disabled,
    /// Present but not checked (`LoadOpts::verify_checksum` off).
    NotChecked,
    /// RDB versions before 5 have none.
    Absent,
}

/// A loaded RDB file.
#[derive(Debug)]
pub struct Loaded {
    /// Every database, with the file's keys.
    pub keyspace: Keyspace,
    /// Every AUX field in file order (`redis-ver`, `ctime`, `repl-id`, …): the replication
    /// and persistence code read what they need through the typed accessors below.
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// Keys put into the keyspace (`keys loaded` in Redis's final log line).
    pub keys_loaded: u64,
    /// Keys dropped because their expiry had passed (`keys expired`).
    pub keys_expired: u64,
    /// Those keys, by database: a master restarted with its replication history sends a DEL
    /// for each to the replicas that continue from it (Redis `RDBFLAGS_FEED_REPL`).
    pub expired: Vec<(usize, Vec<u8>)>,
    /// Empty lists and hashes skipped, as Redis skips them.
    pub empty_keys_skipped: u64,
    /// The file's RDB version (1..=10).
    pub version: u32,
    /// What the checksum check found.
    pub checksum: Checksum,
}

impl Loaded {
    /// Returns the last value of AUX field `name` (matched case-insensitively, as Redis's
    /// `strcasecmp` does; a later field overrides an earlier one, as in Redis's loop).
    pub fn aux_field(&self, name: &str) -> Option<&[u8]> {
        self.aux
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }

    fn aux_i64(&self, name: &str) -> Option<i64> {
        std::str::from_utf8(self.aux_field(name)?)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Returns `repl-id`, the master's replication id, only when it is exactly 40 characters
    /// (`CONFIG_RUN_ID_SIZE`; Redis ignores any other length).
    pub fn repl_id(&self) -> Option<&str> {
        self.aux_field("repl-id")
            .filter(|v| v.len() == 40)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Returns `repl-offset`: the write-stream offset the snapshot was taken at.
    pub fn repl_offset(&self) -> Option<i64> {
        self.aux_i64("repl-offset")
    }

    /// Returns `repl-stream-db`: the database the master's stream last selected.
    pub fn repl_stream_db(&self) -> Option<i64> {
        self.aux_i64("repl-stream-db")
    }

    /// Returns `redis-ver`: the version of the server that wrote the file.
    pub fn redis_ver(&self) -> Option<&str> {
        self.aux_field("redis-ver")
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Returns `ctime`: when the file was written, in unix seconds.
    pub fn ctime(&self) -> Option<i64> {
        self.aux_i64("ctime")
    }

    /// Returns `used-mem`: the writer's memory use in bytes.
    pub fn used_mem(&self) -> Option<i64> {
        self.aux_i64("used-mem")
    }

    /// Reports whether `aof-base` is set: the file is the base of a multi-part AOF.
    pub fn aof_base(&self) -> bool {
        self.aux_i64("aof-base").is_some_and(|v| v != 0)
    }
}

// ---- ERRORS ----

/// A key named in an error: its bytes, shown escaped (`\xff`, `\'`) so binary keys stay
/// readable and unambiguous in a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(pub Vec<u8>);

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Cap what a log line shows of a huge key.
        const SHOWN: usize = 200;
        for b in self.0.iter().take(SHOWN) {
            write!(f, "{}", std::ascii::escape_default(*b))?;
        }
        if self.0.len() > SHOWN {
            write!(f, "...({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

/// Which key an error happened in, when it happened in one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCtx {
    /// The key.
    pub key: KeyName,
    /// Its database.
    pub db: usize,
}

fn key_ctx(k: &Option<KeyCtx>) -> String {
    match k {
        Some(c) => format!(", key '{}' in DB {}", c.key, c.db),
        None => String::new(),
    }
}

/// Why an RDB file could not be loaded. Every variant carries the byte offset (`at`) of the
/// opcode, key or field being read; the texts follow Redis's log words where Redis has them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The file does not start with `REDIS`.
    #[error("Wrong signature trying to load DB from file")]
    Signature,
    /// A version this reader does not know (Redis 7.0 reads 1..=10).
    #[error("Can't handle RDB format version {version}")]
    Version {
        /// The version the header declares (its leading digits, as `atoi` reads them).
        version: u32,
    },
    /// The file ends inside something (or a length points past its end).
    #[error("Unexpected EOF reading RDB file at offset {at} (doing {doing}{}): {source}", key_ctx(.key))]
    Truncated {
        /// Where the item being read starts.
        at: usize,
        /// What was being read, in redis-check-rdb's words (`read-type`, `read-object-value`).
        doing: &'static str,
        /// The key, when inside one.
        key: Option<KeyCtx>,
        /// The codec's report (with the exact offset).
        source: RdbError,
    },
    /// A malformed length, string, listpack, ziplist, quicklist or an unknown type byte.
    #[error("Internal error in RDB reading offset {at} (doing {doing}{}): {source}", key_ctx(.key))]
    Corrupt {
        /// Where the item being read starts.
        at: usize,
        /// What was being read.
        doing: &'static str,
        /// The key, when inside one.
        key: Option<KeyCtx>,
        /// The codec's report.
        source: RdbError,
    },
    /// A key of a type kura does not hold. The load stops: dropping it would lose data.
    #[error(
        "key '{key}' in DB {db} at offset {at} is a {name}{}, a type kura does not hold: refusing to load the RDB file",
        .module.as_ref().map(|m| format!(" of module '{m}'")).unwrap_or_default()
    )]
    UnsupportedType {
        /// The key.
        key: KeyName,
        /// Its database.
        db: usize,
        /// The value type byte.
        ty: u8,
        /// The type's name (`set`, `zset (listpack)`, `stream`, `module`).
        name: &'static str,
        /// For a module value, the module type's name as Redis prints it.
        module: Option<String>,
        /// Where the key's type byte is.
        at: usize,
    },
    /// Module data outside any key (opcode 0xF7): kura has no modules to hand it to.
    #[error("The RDB file contains AUX module data I can't load: no matching module '{module}' (offset {at})")]
    ModuleAux {
        /// The module type's name.
        module: String,
        /// Where the opcode is.
        at: usize,
    },
    /// A function library (opcode 0xF5, or 0xF6 from 7.0 release candidates): kura has no
    /// FUNCTION support, and dropping the library would lose it.
    #[error("Failed loading library{} at offset {at}: the RDB file holds Redis functions, which kura does not support", .library.as_ref().map(|l| format!(" '{l}'")).unwrap_or_default())]
    Function {
        /// The library's name from its `#!<engine> name=<name>` line, when readable.
        library: Option<String>,
        /// Where the opcode is.
        at: usize,
    },
    /// SELECTDB of a database this server does not have.
    #[error("FATAL: Data file was created with a Redis server configured to handle more than {databases} databases (SELECTDB {db} at offset {at})")]
    DbOutOfRange {
        /// The database selected.
        db: u64,
        /// The databases this server has.
        databases: usize,
        /// Where the opcode is.
        at: usize,
    },
    /// The same key twice in one database.
    #[error("RDB has duplicated key '{key}' in DB {db} (offset {at})")]
    DuplicateKey {
        /// The key.
        key: KeyName,
        /// Its database.
        db: usize,
        /// Where the second one's type byte is.
        at: usize,
    },
    /// The trailing CRC64 does not match the file. As in Redis's message, `expected` is the
    /// CRC computed over the file and `got` the one stored in it.
    #[error(
        "Wrong RDB checksum expected: ({expected:x}) but got ({got:x}) (checksum at offset {at})"
    )]
    Checksum {
        /// The CRC64 of every byte before the checksum.
        expected: u64,
        /// The CRC64 stored in the file.
        got: u64,
        /// Where the stored checksum is.
        at: usize,
    },
    /// Bytes after the end of the RDB data (after the checksum, or after EOF before v5).
    #[error("{len} bytes of trailing data after the end of the RDB file at offset {at}")]
    Trailing {
        /// Where they start.
        at: usize,
        /// How many.
        len: usize,
    },
}

impl LoadError {
    /// Returns a stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            LoadError::Signature => "signature",
            LoadError::Version { .. } => "version",
            LoadError::Truncated { .. } => "truncated",
            LoadError::Corrupt { .. } => "corrupt",
            LoadError::UnsupportedType { .. } => "unsupported_type",
            LoadError::ModuleAux { .. } => "module_aux",
            LoadError::Function { .. } => "function",
            LoadError::DbOutOfRange { .. } => "db_out_of_range",
            LoadError::DuplicateKey { .. } => "duplicate_key",
            LoadError::Checksum { .. } => "checksum",
            LoadError::Trailing { .. } => "trailing_data",
        }
    }

    /// Returns the byte offset the error is about (0 for the header).
    pub fn offset(&self) -> usize {
        match self {
            LoadError::Signature | LoadError::Version { .. } => 0,
            LoadError::Truncated { at, .. }
            | LoadError::Corrupt { at, .. }
            | LoadError::UnsupportedType { at, .. }
            | LoadError::ModuleAux { at, .. }
            | LoadError::Function { at, .. }
            | LoadError::DbOutOfRange { at, .. }
            | LoadError::DuplicateKey { at, .. }
            | LoadError::Checksum { at, .. }
            | LoadError::Trailing { at, .. } => *at,
        }
    }
}

/// Wraps a codec error with where it happened: running out of bytes (or a length pointing
/// past the end, which is what a cut file looks like) is a truncation, the rest corruption.
fn read_err(at: usize, doing: &'static str, key: Option<KeyCtx>, source: RdbError) -> LoadError {
    match source {
        RdbError::Eof(_) | RdbError::TooLong { .. } => LoadError::Truncated {
            at,
            doing,
            key,
            source,
        },
        _ => LoadError::Corrupt {
            at,
            doing,
            key,
            source,
        },
    }
}

// ---- LOADING ----

/// Loads a whole RDB file into `databases` fresh databases.
///
/// `buf` is the complete file, from `REDIS` to the CRC64. The result is all or nothing: on
/// any error the partly built keyspace is dropped, so a caller that swaps the result in
/// never serves half a file.
pub fn load(buf: &[u8], databases: usize, opts: &LoadOpts) -> Result<Loaded, LoadError> {
    load_inner(buf, databases, opts, false).map(|(loaded, _)| loaded)
}

/// Loads an RDB that other data may follow: the RDB part of an AOF (a `.base.rdb`, or the
/// preamble of an old single-file AOF), as Redis's `rdbLoadRio` with `RDBFLAGS_AOF_PREAMBLE`
/// reads it. Returns the load and the offset just past the RDB (after its checksum), where
/// the AOF commands begin.
pub fn load_prefix(
    buf: &[u8],
    databases: usize,
    opts: &LoadOpts,
) -> Result<(Loaded, usize), LoadError> {
    load_inner(buf, databases, opts, true)
}

/// [`load`] and [`load_prefix`]: `prefix` allows bytes after the RDB's end.
fn load_inner(
    buf: &[u8],
    databases: usize,
    opts: &LoadOpts,
    prefix: bool,
) -> Result<(Loaded, usize), LoadError> {
    let version = header(buf)?;
    // The checksum covers every byte before the last 8. For a big file a second thread
    // computes it while this one parses; when the data turns out to end elsewhere (trailing
    // bytes, truncation) the parse fails and the thread is told to stop. A prefix ends
    // where it ends: no second thread there.
    let parallel = !prefix && version >= 5 && opts.verify_checksum && buf.len() >= PARALLEL_CRC_MIN;
    let (parsed, precomputed) = if parallel {
        let body = &buf[..buf.len() - 8];
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let job = std::thread::Builder::new()
                .name("rdb-crc".into())
                .spawn_scoped(s, || crc_unless_stopped(body, &stop))
                .ok();
            let parsed = parse(buf, databases, opts, version, prefix);
            let wanted = matches!(&parsed, Ok(p) if p.body_len == body.len());
            if !wanted {
                stop.store(true, Ordering::Relaxed);
            }
            let crc = job.and_then(|j| j.join().ok().flatten());
            (parsed, crc.filter(|_| wanted))
        })
    } else {
        (parse(buf, databases, opts, version, prefix), None)
    };
    let Parsed {
        mut loaded,
        body_len,
        stored_crc,
        end,
    } = parsed?;
    loaded.checksum = match stored_crc {
        None => Checksum::Absent,
        Some(0) => {
            tracing::info!("RDB file was saved with checksum disabled: no check performed.");
            Checksum::Disabled
        }
        Some(_) if !opts.verify_checksum => Checksum::NotChecked,
        Some(got) => {
            let expected = precomputed.unwrap_or_else(|| crc64(0, &buf[..body_len]));
            if expected != got {
                return Err(LoadError::Checksum {
                    expected,
                    got,
                    at: body_len,
                });
            }
            Checksum::Verified
        }
    };
    tracing::info!(
        keys_loaded = loaded.keys_loaded,
        keys_expired = loaded.keys_expired,
        "Done loading RDB, keys loaded: {}, keys expired: {}.",
        loaded.keys_loaded,
        loaded.keys_expired
    );
    Ok((loaded, end))
}

/// Returns the CRC64 of `body`, or `None` once `stop` is set (checked every MiB).
fn crc_unless_stopped(body: &[u8], stop: &AtomicBool) -> Option<u64> {
    let mut crc = 0;
    for chunk in body.chunks(PARALLEL_CRC_MIN) {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        crc = crc64(crc, chunk);
    }
    Some(crc)
}

/// A file read to its end, checksum not yet compared.
struct Parsed {
    loaded: Loaded,
    /// Bytes covered by the checksum: everything up to and including the EOF opcode.
    body_len: usize,
    /// The stored CRC64 (version >= 5).
    stored_crc: Option<u64>,
    /// The offset just past the RDB data (and its checksum).
    end: usize,
}

/// Checks `REDIS` + 4 version digits (`rdbLoadRioWithLoadingCtx`'s first read).
fn header(buf: &[u8]) -> Result<u32, LoadError> {
    let Some(head) = buf.get(..9) else {
        // Redis's first read fails: EOF, before the signature is looked at.
        return Err(LoadError::Truncated {
            at: 0,
            doing: "start",
            key: None,
            source: RdbError::Eof(buf.len()),
        });
    };
    if &head[..5] != b"REDIS" {
        return Err(LoadError::Signature);
    }
    // `atoi(buf+5)`: the leading digits (none gives 0, refused below).
    let version = head[5..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u32, |v, b| v * 10 + (b - b'0') as u32);
    if !(1..=RDB_VERSION as u32).contains(&version) {
        return Err(LoadError::Version { version });
    }
    Ok(version)
}

/// The opcodes' effect on the next key (`expiretime`, `lru_idle`; reset after each key).
#[derive(Default)]
struct Pending {
    expire: Option<i64>,
    idle: Option<u64>,
}

/// The loader's state between opcodes.
struct Walk<'a> {
    r: Reader<'a>,
    out: Loaded,
    opts: &'a LoadOpts,
    /// `opts.now_ms` in seconds, for access times and the `ctime` log line.
    now_s: i64,
    /// The database SELECTDB chose (0 until one does, as in Redis).
    db: usize,
}

/// The main loop, after the header (`rdbLoadRioWithLoadingCtx`'s `while(1)`).
fn parse(
    buf: &[u8],
    databases: usize,
    opts: &LoadOpts,
    version: u32,
    prefix: bool,
) -> Result<Parsed, LoadError> {
    let mut r = Reader::new(buf);
    // The header was checked by `header`.
    r.read_bytes(9).map_err(|e| read_err(0, "start", None, e))?;
    let mut w = Walk {
        r,
        out: Loaded {
            keyspace: Keyspace::new(databases),
            aux: Vec::new(),
            keys_loaded: 0,
            keys_expired: 0,
            expired: Vec::new(),
            empty_keys_skipped: 0,
            version,
            checksum: Checksum::Absent,
        },
        opts,
        now_s: opts.now_ms.div_euclid(1000),
        db: 0,
    };
    let mut next = Pending::default();
    loop {
        let at = w.r.pos();
        let ty =
            w.r.read_u8()
                .map_err(|e| read_err(at, "read-type", None, e))?;
        if ty == opcode::EOF {
            break;
        }
        if ty < opcode::FUNCTION2 {
            // A value type: the key and value follow; the pending opcodes apply to it only.
            w.key(ty, at, std::mem::take(&mut next))?;
        } else {
            w.opcode(ty, at, &mut next)?;
        }
    }
    w.end(prefix)
}

impl Walk<'_> {
    /// Handles opcode `op` at `at` (everything from 0xF5 up but EOF).
    fn opcode(&mut self, op: u8, at: usize, next: &mut Pending) -> Result<(), LoadError> {
        let r = &mut self.r;
        match op {
            opcode::EXPIRETIME_MS => {
                // Little endian on every platform (Redis byte-swaps only on big-endian hosts).
                let b = r
                    .read_bytes(8)
                    .map_err(|e| read_err(at, "read-expire", None, e))?;
                next.expire = Some(i64::from_le_bytes(le8(b)));
            }
            opcode::EXPIRETIME => {
                let b = r
                    .read_bytes(4)
                    .map_err(|e| read_err(at, "read-expire", None, e))?;
                let secs = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                next.expire = Some(secs as i64 * 1000);
            }
            opcode::FREQ => {
                // kura has no LFU eviction: the counter is read and forgotten.
                r.read_u8()
                    .map_err(|e| read_err(at, "read-freq", None, e))?;
            }
            opcode::IDLE => {
                let idle = r
                    .read_length()
                    .map_err(|e| read_err(at, "read-idle", None, e))?;
                next.idle = Some(idle);
            }
            opcode::SELECTDB => {
                let n = r
                    .read_length()
                    .map_err(|e| read_err(at, "read-selectdb", None, e))?;
                let databases = self.out.keyspace.dbs.len();
                if n >= databases as u64 {
                    return Err(LoadError::DbOutOfRange {
                        db: n,
                        databases,
                        at,
                    });
                }
                self.db = n as usize;
            }
            opcode::RESIZEDB => {
                let keys = r
                    .read_length()
                    .map_err(|e| read_err(at, "read-resizedb", None, e))?;
                let expires = r
                    .read_length()
                    .map_err(|e| read_err(at, "read-resizedb", None, e))?;
                // Only a hint: bounded by what the rest of the file could hold (a key takes
                // at least 3 bytes), so a corrupt hint cannot ask for absurd memory.
                let cap = (r.remaining() / 3) as u64;
                if let Some(d) = self.out.keyspace.dbs.get_mut(self.db) {
                    d.reserve(keys.min(cap) as usize, expires.min(cap) as usize);
                }
            }
            opcode::AUX => {
                let k = r
                    .read_string()
                    .map_err(|e| read_err(at, "read-aux", None, e))?;
                let v = r
                    .read_string()
                    .map_err(|e| read_err(at, "read-aux", None, e))?;
                log_aux(&k, &v, self.now_s);
                self.out.aux.push((k.into_owned(), v.into_owned()));
            }
            opcode::MODULE_AUX => {
                let module = r.read_length().ok().map(module_name).unwrap_or_default();
                return Err(LoadError::ModuleAux { module, at });
            }
            // FUNCTION2, or FUNCTION from the 7.0 release candidates.
            _ => {
                let library = if op == opcode::FUNCTION2 {
                    r.read_string().ok().and_then(|code| library_name(&code))
                } else {
                    None
                };
                return Err(LoadError::Function { library, at });
            }
        }
        Ok(())
    }

    /// Reads one key and its value (type byte `ty` at `at`) into the selected database.
    fn key(&mut self, ty: u8, at: usize, next: Pending) -> Result<(), LoadError> {
        let (r, out, db) = (&mut self.r, &mut self.out, self.db);
        let key = r
            .read_string()
            .map_err(|e| read_err(at, "read-key", None, e))?;
        let value_at = r.pos();
        let value = match r.read_object(ty) {
            Ok(v) => v,
            Err(RdbError::Empty(what)) => {
                // `rdbLoadObject` reads the whole (empty) value before giving up, so the
                // reader is past it and loading goes on.
                out.empty_keys_skipped += 1;
                if out.empty_keys_skipped <= EMPTY_KEYS_LOGGED {
                    let key = KeyName(key.into_owned());
                    tracing::warn!(%key, db, what, "rdbLoadObject skipping empty key: {key}");
                }
                return Ok(());
            }
            Err(RdbError::UnsupportedType { ty, name }) => {
                let module = (ty == types::MODULE || ty == types::MODULE_2)
                    .then(|| r.clone().read_length().ok().map(module_name))
                    .flatten();
                return Err(LoadError::UnsupportedType {
                    key: KeyName(key.into_owned()),
                    db,
                    ty,
                    name,
                    module,
                    at,
                });
            }
            Err(e) => {
                let ctx = KeyCtx {
                    key: KeyName(key.into_owned()),
                    db,
                };
                return Err(read_err(value_at, "read-object-value", Some(ctx), e));
            }
        };
        // A master drops what has already expired (Redis: `expiretime < now`); a replica
        // keeps it for its master's DEL.
        if let Some(when) = next.expire {
            if self.opts.drop_expired && when < self.opts.now_ms {
                out.keys_expired += 1;
                out.expired.push((db, key.into_owned()));
                return Ok(());
            }
        }
        let Some(d) = out.keyspace.dbs.get_mut(db) else {
            // Only with 0 databases: keys before any SELECTDB go to DB 0.
            return Err(LoadError::DbOutOfRange {
                db: db as u64,
                databases: 0,
                at,
            });
        };
        let mut entry = Entry::new(value, self.opts.now_ms).with_expire(next.expire);
        if let Some(idle) = next.idle {
            // `objectSetLRUOrLFU`: last access = now - idle (OBJECT IDLETIME answers idle).
            let access = self.now_s.saturating_sub(idle.min(i64::MAX as u64) as i64);
            entry.access = access.clamp(0, u32::MAX as i64) as u32;
        }
        if d.insert(&key[..], entry).is_some() {
            return Err(LoadError::DuplicateKey {
                key: KeyName(key.into_owned()),
                db,
                at,
            });
        }
        out.keys_loaded += 1;
        Ok(())
    }

    /// After the EOF opcode: the checksum (version >= 5), and nothing else unless `prefix`.
    fn end(self, prefix: bool) -> Result<Parsed, LoadError> {
        let Walk {
            mut r, out: loaded, ..
        } = self;
        let body_len = r.pos();
        let stored_crc = if loaded.version >= 5 {
            let b = r
                .read_bytes(8)
                .map_err(|e| read_err(body_len, "check-sum", None, e))?;
            Some(u64::from_le_bytes(le8(b)))
        } else {
            None
        };
        if r.remaining() > 0 && !prefix {
            return Err(LoadError::Trailing {
                at: r.pos(),
                len: r.remaining(),
            });
        }
        Ok(Parsed {
            loaded,
            body_len,
            stored_crc,
            end: r.pos(),
        })
    }
}

/// Copies exactly 8 bytes (callers pass `read_bytes(8)`) into an array.
fn le8(b: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    a
}

/// Logs the AUX fields Redis logs, with its words (`rdbLoadRioWithLoadingCtx`).
fn log_aux(k: &[u8], v: &[u8], now_s: i64) {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let num = |b: &[u8]| -> i64 {
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    if k.first() == Some(&b'%') {
        tracing::info!("RDB '{}': {}", text(k), text(v));
    } else if k.eq_ignore_ascii_case(b"redis-ver") {
        tracing::info!("Loading RDB produced by version {}", text(v));
    } else if k.eq_ignore_ascii_case(b"ctime") {
        tracing::info!("RDB age {} seconds", (now_s - num(v)).max(0));
    } else if k.eq_ignore_ascii_case(b"used-mem") {
        tracing::info!(
            "RDB memory usage when created {:.2} Mb",
            num(v) as f64 / (1024.0 * 1024.0)
        );
    } else if k.eq_ignore_ascii_case(b"aof-preamble") && num(v) != 0 {
        tracing::info!("RDB has an AOF tail");
    } else if k.eq_ignore_ascii_case(b"aof-base") && num(v) != 0 {
        tracing::info!("RDB is base AOF");
    }
}

/// Returns a module type's 9-character name from its 64-bit id (`moduleTypeNameByID`: 9
/// six-bit characters above a 10-bit encoding version).
fn module_name(id: u64) -> String {
    const CSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = id >> 10;
    let mut name = [0u8; 9];
    for c in name.iter_mut().rev() {
        *c = CSET[(id & 63) as usize];
        id >>= 6;
    }
    String::from_utf8_lossy(&name).into_owned()
}

/// Returns a function library's name from its code's first line
/// (`#!lua name=mylib`, `functionExtractLibMetaData`).
fn library_name(code: &[u8]) -> Option<String> {
    let line = code.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    line.strip_prefix("#!")?
        .split_whitespace()
        .find_map(|part| part.strip_prefix("name="))
        .map(str::to_string)
}

#[cfg(test)]
mod tests;
