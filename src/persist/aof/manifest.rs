//! Redis 7.0's multi-part AOF manifest (`shared/spec/redis.md` §4.4; Redis `aof.c`:
//! `aofLoadManifestFromFile`, `getAofManifestAsString`, `persistAofManifest`,
//! `getNewBaseFileNameAndMarkPreAsHistory`, `getNewIncrAofName`, `markRewrittenIncrAofAsHistory`).
//!
//! The manifest `<appenddirname>/<appendfilename>.manifest` lists the files that make up
//! the AOF, one line each: `file <name> seq <n> type <b|h|i>`. The base (at most one) is
//! written first, then the history files (awaiting deletion), then the incremental files in
//! replay order. Names that need it are written quoted, in `sdscatrepr` form.
//!
//! Parsing follows Redis byte for byte where it matters for compatibility: lines are read as
//! `fgets` reads them (1024 bytes at most), split with `sdssplitargs` semantics, `#` comment
//! lines are skipped, the three keys may come in any order (case-insensitively) and unknown
//! ones are ignored, and every refusal carries Redis's error text.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// The longest manifest line Redis reads (`MANIFEST_MAX_LINE`).
pub const MAX_LINE: usize = 1024;

/// Redis's refusals, word for word (`aofLoadManifestFromFile`).
pub mod reason {
    /// The file holds nothing at all.
    pub const EMPTY: &str = "Found an empty AOF manifest";
    /// A line longer than [`super::MAX_LINE`], or a last line without a newline.
    pub const TOO_LONG: &str = "The AOF manifest file contains too long line";
    /// A line that does not split into `key value` pairs with `file`, `seq` and `type`.
    pub const INVALID: &str = "Invalid AOF manifest file format";
    /// A file name holding a `/` or `\`.
    pub const PATH: &str = "File can't be a path, just a filename";
    /// A second `type b` line.
    pub const DUPLICATE_BASE: &str = "Found duplicate base file information";
    /// An incr whose seq is not above the previous incr's.
    pub const NON_MONOTONIC: &str = "Found a non-monotonic sequence number";
    /// A type other than `b`, `h` or `i`.
    pub const UNKNOWN_TYPE: &str = "Unknown AOF file type";
}

/// Why a manifest could not be read. kura then does not start, as Redis exits.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest exists but cannot be read.
    #[error("Fatal error: can't open the AOF manifest file {path} for reading: {source}")]
    Open {
        /// The manifest's path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The content breaks a rule; `reason` is one of [`reason`]'s texts.
    #[error("{reason}{}", context(*.line, .text.as_deref()))]
    Invalid {
        /// Redis's text for the refusal.
        reason: &'static str,
        /// The 1-based line number (0 when the error is about the whole file).
        line: usize,
        /// The offending line, trimmed, when Redis shows it.
        text: Option<String>,
    },
}

/// Formats the ` (line N: '...')` suffix of [`ManifestError::Invalid`].
fn context(line: usize, text: Option<&str>) -> String {
    match text {
        Some(t) => format!(" (manifest line {line}: '{t}')"),
        None => String::new(),
    }
}

impl ManifestError {
    /// Logs the error as Redis does before exiting (`*** FATAL AOF MANIFEST FILE ERROR ***`,
    /// the line number and text, then the reason).
    pub fn log(&self) {
        match self {
            ManifestError::Open { .. } => tracing::warn!("{self}"),
            ManifestError::Invalid { reason, line, text } => {
                tracing::warn!("*** FATAL AOF MANIFEST FILE ERROR ***");
                if let Some(t) = text {
                    tracing::warn!("Reading the manifest file, at line {line}");
                    tracing::warn!(">>> '{t}'");
                }
                tracing::warn!("{reason}");
            }
        }
    }

    /// Returns a stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ManifestError::Open { .. } => "open",
            ManifestError::Invalid { .. } => "invalid",
        }
    }
}

/// What a listed file is (`AOF_FILE_TYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AofFileType {
    /// The snapshot the increments apply to (`b`).
    Base,
    /// A file replaced by a rewrite, waiting to be deleted (`h`).
    History,
    /// Commands written after the base (`i`).
    Incr,
}

impl AofFileType {
    /// Returns the manifest's letter for the type.
    pub fn as_char(self) -> char {
        match self {
            AofFileType::Base => 'b',
            AofFileType::History => 'h',
            AofFileType::Incr => 'i',
        }
    }

    /// Returns the type a manifest letter names.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            b'b' => Some(AofFileType::Base),
            b'h' => Some(AofFileType::History),
            b'i' => Some(AofFileType::Incr),
            _ => None,
        }
    }
}

/// One manifest line: a file of the AOF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AofFile {
    /// The file name inside the AOF directory (never a path).
    pub name: String,
    /// Its sequence number (base and incr numbers grow independently).
    pub seq: u64,
    /// What it holds.
    pub kind: AofFileType,
}

/// The manifest: which files make up the AOF, and the sequence numbers used so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    /// The base file, if any (loaded first).
    pub base: Option<AofFile>,
    /// Incremental files, in replay order.
    pub incrs: Vec<AofFile>,
    /// Files awaiting deletion, newest rewrite's first.
    pub history: Vec<AofFile>,
    /// The highest base sequence number used (the next base gets one more).
    pub curr_base_seq: u64,
    /// The highest incr sequence number used (the next incr gets one more).
    pub curr_incr_seq: u64,
}

impl Manifest {
    /// Parses a manifest's bytes as Redis 7.0 does (`aofLoadManifestFromFile`).
    pub fn parse(text: &[u8]) -> Result<Manifest, ManifestError> {
        let mut m = Manifest::default();
        let mut maxseq: i64 = 0;
        let mut rest = text;
        let mut linenum = 0usize;
        let invalid = |reason, line, text: Option<&[u8]>| ManifestError::Invalid {
            reason,
            line,
            text: text.map(|t| String::from_utf8_lossy(t).into_owned()),
        };
        loop {
            if rest.is_empty() {
                if linenum == 0 {
                    return Err(invalid(reason::EMPTY, 0, None));
                }
                break;
            }
            // `fgets(buf, MAX_LINE + 1, fp)`: up to MAX_LINE bytes, through the newline.
            let window = &rest[..rest.len().min(MAX_LINE)];
            let take = window
                .iter()
                .position(|&b| b == b'\n')
                .map_or(window.len(), |i| i + 1);
            let chunk = &rest[..take];
            rest = &rest[take..];
            linenum += 1;
            // Redis works on the C string: a NUL ends it.
            let cstr = until_nul(chunk);
            if cstr.first() == Some(&b'#') {
                continue;
            }
            if !cstr.contains(&b'\n') {
                return Err(invalid(reason::TOO_LONG, linenum, None));
            }
            let line = trim(cstr);
            let bad = |reason| invalid(reason, linenum, Some(line));
            if line.is_empty() {
                return Err(bad(reason::INVALID));
            }
            let args = split_args(line).ok_or_else(|| bad(reason::INVALID))?;
            // `argc < 6` rather than `!= 6`: later versions may add keys.
            if args.len() < 6 || args.len() % 2 != 0 {
                return Err(bad(reason::INVALID));
            }
            let (mut name, mut seq, mut ty) = (None::<Vec<u8>>, 0i64, 0u8);
            for pair in args.chunks(2) {
                let key = until_nul(&pair[0]);
                let value = until_nul(&pair[1]);
                if key.eq_ignore_ascii_case(b"file") {
                    if value.contains(&b'/') || value.contains(&b'\\') {
                        return Err(bad(reason::PATH));
                    }
                    name = Some(value.to_vec());
                } else if key.eq_ignore_ascii_case(b"seq") {
                    seq = atoll(value);
                } else if key.eq_ignore_ascii_case(b"type") {
                    ty = value.first().copied().unwrap_or(0);
                }
            }
            // Redis keeps a seq as a signed number; a negative one never comes from Redis
            // and kura refuses it rather than carry it.
            let (Some(name), true, true) = (name, seq > 0, ty != 0) else {
                return Err(bad(reason::INVALID));
            };
            // kura's names are Rust strings; a name that is not UTF-8 cannot be one of ours.
            let name = String::from_utf8(name).map_err(|_| bad(reason::INVALID))?;
            let seq_u = seq as u64;
            match AofFileType::from_byte(ty) {
                Some(AofFileType::Base) => {
                    if m.base.is_some() {
                        return Err(bad(reason::DUPLICATE_BASE));
                    }
                    m.curr_base_seq = seq_u;
                    m.base = Some(AofFile {
                        name,
                        seq: seq_u,
                        kind: AofFileType::Base,
                    });
                }
                Some(AofFileType::History) => m.history.push(AofFile {
                    name,
                    seq: seq_u,
                    kind: AofFileType::History,
                }),
                Some(AofFileType::Incr) => {
                    if seq <= maxseq {
                        return Err(bad(reason::NON_MONOTONIC));
                    }
                    maxseq = seq;
                    m.curr_incr_seq = seq_u;
                    m.incrs.push(AofFile {
                        name,
                        seq: seq_u,
                        kind: AofFileType::Incr,
                    });
                }
                None => return Err(bad(reason::UNKNOWN_TYPE)),
            }
        }
        Ok(m)
    }

    /// Returns the manifest's text (`getAofManifestAsString`): the base line, the history
    /// lines, then the incr lines, each `file <name> seq <n> type <c>\n`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for f in self.base.iter().chain(&self.history).chain(&self.incrs) {
            out.extend_from_slice(b"file ");
            if needs_repr(f.name.as_bytes()) {
                repr(&mut out, f.name.as_bytes());
            } else {
                out.extend_from_slice(f.name.as_bytes());
            }
            out.extend_from_slice(format!(" seq {} type {}\n", f.seq, f.kind.as_char()).as_bytes());
        }
        out
    }

    /// Names a new base `<prefix>.<seq>.base.rdb` (`.base.aof` without the RDB preamble),
    /// moves the old base to the front of the history and returns the new name
    /// (`getNewBaseFileNameAndMarkPreAsHistory`).
    pub fn new_base(&mut self, prefix: &str, rdb_preamble: bool) -> String {
        if let Some(mut old) = self.base.take() {
            old.kind = AofFileType::History;
            self.history.insert(0, old);
        }
        self.curr_base_seq += 1;
        let format = if rdb_preamble { "rdb" } else { "aof" };
        let name = format!("{prefix}.{}.base.{format}", self.curr_base_seq);
        self.base = Some(AofFile {
            name: name.clone(),
            seq: self.curr_base_seq,
            kind: AofFileType::Base,
        });
        name
    }

    /// Names a new incr `<prefix>.<seq>.incr.aof`, appends it to the incrs and returns the
    /// name (`getNewIncrAofName`).
    pub fn new_incr(&mut self, prefix: &str) -> String {
        self.curr_incr_seq += 1;
        let name = format!("{prefix}.{}.incr.aof", self.curr_incr_seq);
        self.incrs.push(AofFile {
            name: name.clone(),
            seq: self.curr_incr_seq,
            kind: AofFileType::Incr,
        });
        name
    }

    /// After a rewrite while the AOF is on: every incr except the last (the one being
    /// written) becomes history (`markRewrittenIncrAofAsHistory` with `aof_fd != -1`).
    pub fn mark_rewritten_incrs_history(&mut self) {
        let keep = self.incrs.len().min(1);
        self.move_incrs_to_history(self.incrs.len() - keep);
    }

    /// After a rewrite while the AOF is off: every incr becomes history
    /// (`markRewrittenIncrAofAsHistory` with `aof_fd == -1`).
    pub fn mark_all_incrs_history(&mut self) {
        self.move_incrs_to_history(self.incrs.len());
    }

    /// Moves the first `n` incrs to the front of the history, keeping their order (Redis
    /// walks the incrs from the tail, adding each at the history's head).
    fn move_incrs_to_history(&mut self, n: usize) {
        let moved: Vec<AofFile> = self
            .incrs
            .drain(..n)
            .map(|mut f| {
                f.kind = AofFileType::History;
                f
            })
            .collect();
        self.history.splice(0..0, moved);
    }

    /// Returns every listed file: base, incrs, then history (for clean-up and size sums).
    pub fn files(&self) -> impl Iterator<Item = &AofFile> {
        self.base.iter().chain(&self.incrs).chain(&self.history)
    }

    /// Returns the names of every listed file (base, incrs, history).
    pub fn file_names(&self) -> Vec<String> {
        self.files().map(|f| f.name.clone()).collect()
    }

    /// Returns the files replayed at load, in order: the base, then the incrs.
    pub fn load_order(&self) -> impl Iterator<Item = &AofFile> {
        self.base.iter().chain(&self.incrs)
    }

    /// Returns the incr being written to (the last one), if any.
    pub fn last_incr(&self) -> Option<&AofFile> {
        self.incrs.last()
    }

    /// Reports whether the manifest lists no base and no incr (nothing to load).
    pub fn is_empty(&self) -> bool {
        self.base.is_none() && self.incrs.is_empty()
    }
}

/// Returns the manifest's file name for `appendfilename` (`getAofManifestFileName`).
pub fn manifest_name(appendfilename: &str) -> String {
    format!("{appendfilename}.manifest")
}

/// Reads `<aof_dir>/<appendfilename>.manifest`; `Ok(None)` when the directory or the
/// manifest does not exist (`aofLoadManifestFromDisk`: a server upgraded from 6.2 has
/// neither).
pub fn load_manifest(
    aof_dir: &Path,
    appendfilename: &str,
) -> Result<Option<Manifest>, ManifestError> {
    let path = aof_dir.join(manifest_name(appendfilename));
    let open_err = |source| ManifestError::Open {
        path: path.display().to_string(),
        source,
    };
    if !aof_dir.is_dir() {
        tracing::debug!("The AOF directory {} doesn't exist", aof_dir.display());
        return Ok(None);
    }
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!(
                "The AOF manifest file {} doesn't exist",
                manifest_name(appendfilename)
            );
            return Ok(None);
        }
        Err(e) => return Err(open_err(e)),
    };
    Manifest::parse(&text).map(Some)
}

/// Writes the manifest crash-safely (`writeAofManifestFile`): `temp-<filename>.manifest`,
/// fsync, rename over `<filename>.manifest`, fsync of the directory.
pub fn persist_manifest(aof_dir: &Path, appendfilename: &str, m: &Manifest) -> std::io::Result<()> {
    let name = manifest_name(appendfilename);
    let temp = aof_dir.join(format!("temp-{name}"));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        f.write_all(&m.to_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&temp, aof_dir.join(&name))?;
        // The rename (and any new file in the directory) is durable only with the entry.
        File::open(aof_dir)?.sync_all()
    })();
    if let Err(e) = &result {
        tracing::warn!(error = %e, "Error trying to write the AOF manifest file {name}");
    }
    result
}

// ---- SDS HELPERS (sds.c) ----

/// Returns `s` up to its first NUL, as C string functions see it.
fn until_nul(s: &[u8]) -> &[u8] {
    &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())]
}

/// `sdstrim(line, " \t\r\n")`.
fn trim(s: &[u8]) -> &[u8] {
    let set = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = s.iter().position(|b| !set(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !set(b)).map_or(start, |i| i + 1);
    &s[start..end]
}

/// C's `isspace` in the C locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// `atoll`: leading spaces, a sign, digits up to the first non-digit; saturates as glibc.
fn atoll(s: &[u8]) -> i64 {
    let mut i = s.iter().take_while(|&&b| is_space(b)).count();
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut v: i64 = 0;
    for &b in s[i..].iter().take_while(|b| b.is_ascii_digit()) {
        let d = (b - b'0') as i64;
        v = if neg {
            v.saturating_mul(10).saturating_sub(d)
        } else {
            v.saturating_mul(10).saturating_add(d)
        };
    }
    v
}

/// Splits a line as `sdssplitargs` does: blanks separate tokens, `"..."` with `\xHH`,
/// `\n`, `\r`, `\t`, `\b`, `\a` and `\<c>` escapes, `'...'` with only `\'`; a closing quote
/// must be followed by a blank or the end. Returns `None` where Redis returns NULL.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut out = Vec::new();
    let mut p = 0usize;
    loop {
        while at(p) != 0 && is_space(at(p)) {
            p += 1;
        }
        if at(p) == 0 {
            return Some(out);
        }
        let (mut inq, mut insq, mut done) = (false, false, false);
        let mut cur = Vec::new();
        while !done {
            let c = at(p);
            if inq {
                if c == b'\\'
                    && at(p + 1) == b'x'
                    && at(p + 2).is_ascii_hexdigit()
                    && at(p + 3).is_ascii_hexdigit()
                {
                    cur.push(hex(at(p + 2)) * 16 + hex(at(p + 3)));
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    cur.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => b'\x08',
                        b'a' => b'\x07',
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if c == 0 {
                    return None;
                } else {
                    cur.push(c);
                }
            } else if insq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if c == 0 {
                    return None;
                } else {
                    cur.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    _ => cur.push(c),
                }
            }
            if at(p) != 0 {
                p += 1;
            }
        }
        out.push(cur);
    }
}

/// The value of an ASCII hex digit (callers check `is_ascii_hexdigit`).
fn hex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// `sdsneedsrepr`, plus `'`: Redis writes a name holding a single quote bare and then
/// cannot read it back (`sdssplitargs` opens a quote there); quoted, both Redis and kura
/// read it.
fn needs_repr(s: &[u8]) -> bool {
    s.iter().any(|&c| {
        matches!(c, b'\\' | b'"' | b'\'' | b'\n' | b'\r' | b'\t' | 7 | 8)
            || !(0x20..=0x7e).contains(&c)
            || is_space(c)
    })
}

/// `sdscatrepr`: `"..."` with `\\`, `\"`, `\n`, `\r`, `\t`, `\a`, `\b` and `\xHH` escapes.
fn repr(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', c]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(c),
            _ => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests;
