//! The AOF command stream (`shared/spec/redis.md` §4.4; Redis `aof.c`
//! `loadSingleAppendOnlyFile`, `redis-check-aof.c`).
//!
//! An AOF file (or the tail after an RDB preamble) is a sequence of commands, each
//! `*<n>\r\n` followed by n × `$<len>\r\n<bytes>\r\n`, with `#...` annotation lines (`#TS:`)
//! between commands. The reader here is zero-copy and incremental: [`next_command`] looks at
//! a byte buffer from an offset and returns one command as slices of the buffer, or says the
//! buffer ends inside one (the caller reads more, or — at the end of the file — calls it
//! truncated), or reports a format error at an offset. No length read from the file is
//! trusted before the bytes exist: nothing is allocated from a header.
//!
//! Where Redis's loader is lax (it takes `*3\n`, does not check the CRLF after a bulk), this
//! reader is as strict as `redis-check-aof`: Redis never writes such bytes, so seeing them
//! means corruption. [`Progress`] tracks what Redis's loader tracks to decide where a
//! damaged file may be cut: the end of the last complete command, and where an unclosed
//! MULTI began.

use std::fmt;

/// The longest annotation line Redis reads (`AOF_ANNOTATION_LINE_MAX_LEN`).
pub const MAX_ANNOTATION: usize = 1024;

/// The most arguments one command may have (Redis's `argc` is a C `int`).
pub const MAX_ARGC: u64 = i32::MAX as u64;

/// The longest argument accepted. Redis's lengths are C `long`s and the AOF client obeys no
/// `proto-max-bulk-len`; kura bounds them so offsets never overflow.
pub const MAX_BULK: u64 = 1 << 46;

/// The most digits a `*` or `$` number may have.
const MAX_DIGITS: usize = 19;

/// One command read from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    /// The arguments, as slices of the buffer (argv[0] is the command name).
    pub argv: Vec<&'a [u8]>,
    /// Where the command's `*` is.
    pub start: usize,
    /// The offset just past the command's last CRLF.
    pub end: usize,
}

/// What the buffer holds at an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next<'a> {
    /// A complete command.
    Command(Command<'a>),
    /// The buffer ends inside a command (or an annotation line) that starts at `start` and
    /// needs at least `need` bytes from there: read more, or at the end of the file it is a
    /// truncation.
    Incomplete {
        /// Where the unfinished item starts.
        start: usize,
        /// The fewest bytes from `start` it can take.
        need: usize,
    },
    /// Nothing but (possibly) annotations is left: a clean end.
    End,
}

/// What a malformed stream has where a command should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// A command must start with `*` (or a line with `#`).
    Star {
        /// The byte found.
        got: u8,
    },
    /// An argument must start with `$`.
    Dollar {
        /// The byte found.
        got: u8,
    },
    /// A line or a bulk must end with CRLF.
    Crlf {
        /// The two bytes found (fewer at the end of the buffer).
        got: Vec<u8>,
    },
    /// The `*` count is not a number from 1 to [`MAX_ARGC`].
    ArgCount,
    /// The `$` length is not a number from 0 to [`MAX_BULK`].
    BulkLen,
    /// An annotation line longer than [`MAX_ANNOTATION`].
    LongAnnotation,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Star { got } => {
                write!(
                    f,
                    "expected prefix '*', got: '{}'",
                    (*got as char).escape_default()
                )
            }
            Expected::Dollar { got } => {
                write!(
                    f,
                    "expected prefix '$', got: '{}'",
                    (*got as char).escape_default()
                )
            }
            Expected::Crlf { got } => {
                write!(f, "expected \\r\\n, got: ")?;
                got.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            Expected::ArgCount => write!(f, "invalid multibulk length"),
            Expected::BulkLen => write!(f, "invalid bulk length"),
            Expected::LongAnnotation => {
                write!(f, "annotation line longer than {MAX_ANNOTATION} bytes")
            }
        }
    }
}

/// A format error: what was wrong, and the offset of the offending byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at offset {offset}")]
pub struct FormatError {
    /// The offset (in the buffer given to [`next_command`]).
    pub offset: usize,
    /// What was expected there.
    pub what: Expected,
}

impl FormatError {
    /// Returns the error with its offset moved by `base` (buffer offset → file offset).
    pub fn shifted(self, base: usize) -> FormatError {
        FormatError {
            offset: self.offset + base,
            what: self.what,
        }
    }
}

/// One step of the cursor inside a command: a value, or "need more bytes".
enum Part<T> {
    Done(T),
    More(usize),
}

/// Reads `<prefix><digits>\r\n` at `p`; returns the number and the offset after the CRLF, or
/// the offset the buffer would need to reach to finish the line.
fn number(buf: &[u8], p: usize, bad: Expected) -> Result<Part<(u64, usize)>, FormatError> {
    let digits_at = p + 1;
    let mut q = digits_at;
    let mut v: u64 = 0;
    while let Some(&b) = buf.get(q) {
        if !b.is_ascii_digit() {
            break;
        }
        if q - digits_at == MAX_DIGITS {
            return Err(FormatError {
                offset: p,
                what: bad,
            });
        }
        v = v * 10 + (b - b'0') as u64;
        q += 1;
    }
    match buf.get(q) {
        None => return Ok(Part::More(q + 1)),
        Some(b'\r') if q > digits_at => {}
        Some(_) => {
            return Err(FormatError {
                offset: p,
                what: bad,
            })
        }
    }
    match buf.get(q + 1) {
        None => Ok(Part::More(q + 2)),
        Some(b'\n') => Ok(Part::Done((v, q + 2))),
        Some(&b) => Err(FormatError {
            offset: q,
            what: Expected::Crlf {
                got: vec![b'\r', b],
            },
        }),
    }
}

/// Reads what starts at `pos`: annotations are skipped, then one command.
///
/// `eof` says the buffer holds the rest of the file: an unterminated annotation line at
/// the very end is then a clean end (Redis's `fgets` returns it and the loop skips it).
pub fn next_command(buf: &[u8], pos: usize, eof: bool) -> Result<Next<'_>, FormatError> {
    let mut p = pos;
    // Annotations (`#TS:<unix time>`) between commands.
    while buf.get(p) == Some(&b'#') {
        let window = &buf[p..buf.len().min(p + MAX_ANNOTATION)];
        match window.iter().position(|&b| b == b'\n') {
            Some(i) => p += i + 1,
            None if window.len() == MAX_ANNOTATION => {
                return Err(FormatError {
                    offset: p,
                    what: Expected::LongAnnotation,
                })
            }
            None if eof => return Ok(Next::End),
            None => {
                return Ok(Next::Incomplete {
                    start: p,
                    need: window.len() + 1,
                })
            }
        }
    }
    let start = p;
    let Some(&first) = buf.get(p) else {
        return Ok(Next::End);
    };
    if first != b'*' {
        return Err(FormatError {
            offset: p,
            what: Expected::Star { got: first },
        });
    }
    let more = |until: usize| {
        Ok(Next::Incomplete {
            start,
            need: until - start,
        })
    };
    let (argc, mut p) = match number(buf, p, Expected::ArgCount)? {
        Part::Done(v) => v,
        Part::More(until) => return more(until),
    };
    if argc == 0 || argc > MAX_ARGC {
        return Err(FormatError {
            offset: start,
            what: Expected::ArgCount,
        });
    }
    // Every argument takes at least `$0\r\n\r\n`: never reserve more than the buffer holds.
    let cap = (argc as usize).min((buf.len() - p) / 6 + 1);
    let mut argv = Vec::with_capacity(cap);
    for _ in 0..argc {
        let Some(&b) = buf.get(p) else {
            // The rest needs at least 6 bytes per argument still missing.
            let missing = (argc as usize - argv.len()).saturating_mul(6);
            return more(p.saturating_add(missing));
        };
        if b != b'$' {
            return Err(FormatError {
                offset: p,
                what: Expected::Dollar { got: b },
            });
        }
        let (len, data) = match number(buf, p, Expected::BulkLen)? {
            Part::Done(v) => v,
            Part::More(until) => return more(until),
        };
        if len > MAX_BULK {
            return Err(FormatError {
                offset: p,
                what: Expected::BulkLen,
            });
        }
        let data_end = data + len as usize;
        if buf.len() < data_end + 2 {
            return more(data_end + 2);
        }
        if &buf[data_end..data_end + 2] != b"\r\n" {
            return Err(FormatError {
                offset: data_end,
                what: Expected::Crlf {
                    got: buf[data_end..data_end + 2].to_vec(),
                },
            });
        }
        argv.push(&buf[data..data_end]);
        p = data_end + 2;
    }
    Ok(Next::Command(Command {
        argv,
        start,
        end: p,
    }))
}

/// What Redis's loader remembers while it replays a file: where the last complete command
/// ends (`valid_up_to`), and where the open MULTI began (`valid_before_multi`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    valid_up_to: u64,
    before_multi: Option<u64>,
}

impl Progress {
    /// Starts tracking at `offset` (past an RDB preamble, or 0).
    pub fn starting_at(offset: u64) -> Self {
        Progress {
            valid_up_to: offset,
            before_multi: None,
        }
    }

    /// Records a complete command named `name` ending at `end`: a MULTI remembers where the
    /// file was valid before it, an EXEC closes it.
    pub fn command(&mut self, name: &[u8], end: u64) {
        if name.eq_ignore_ascii_case(b"multi") {
            self.before_multi = Some(self.valid_up_to);
        } else if name.eq_ignore_ascii_case(b"exec") {
            self.before_multi = None;
        }
        self.valid_up_to = end;
    }

    /// Returns the end of the last complete command.
    pub fn valid_up_to(&self) -> u64 {
        self.valid_up_to
    }

    /// Returns where the file was valid before a MULTI still waiting for its EXEC.
    pub fn open_multi(&self) -> Option<u64> {
        self.before_multi
    }
}

/// The verdict on a whole buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// Every byte belongs to a complete command or an annotation.
    Clean {
        /// Commands read.
        commands: usize,
    },
    /// The stream stops early: inside a command, or with a MULTI never closed. Cutting the
    /// file at `valid_up_to` leaves it clean.
    Truncated {
        /// Commands read completely (including those of an unclosed MULTI).
        commands: usize,
        /// Where the file may be cut.
        valid_up_to: u64,
        /// The cut removes an unclosed MULTI ("Revert incomplete MULTI/EXEC transaction").
        unclosed_multi: bool,
    },
    /// A byte that cannot be there.
    Bad(FormatError),
}

/// Reads a whole buffer (a complete file, or the tail after its RDB preamble starting at
/// `from`) and says whether it is clean, truncated or malformed, as Redis's loader would.
pub fn scan(buf: &[u8], from: usize) -> Scan {
    let mut progress = Progress::starting_at(from as u64);
    let mut pos = from;
    let mut commands = 0;
    loop {
        match next_command(buf, pos, true) {
            Ok(Next::Command(c)) => {
                progress.command(c.argv[0], c.end as u64);
                pos = c.end;
                commands += 1;
            }
            Ok(Next::Incomplete { .. }) => {
                return Scan::Truncated {
                    commands,
                    valid_up_to: progress.valid_up_to(),
                    unclosed_multi: false,
                }
            }
            Ok(Next::End) => {
                return match progress.open_multi() {
                    Some(valid_up_to) => Scan::Truncated {
                        commands,
                        valid_up_to,
                        unclosed_multi: true,
                    },
                    None => Scan::Clean { commands },
                }
            }
            Err(e) => return Scan::Bad(e),
        }
    }
}

#[cfg(test)]
mod tests;
