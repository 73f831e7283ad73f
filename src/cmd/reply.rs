//! Replies and command errors, with Redis 7.0's exact error texts in one place
//! (`server.c` `createSharedObjects`, `shared/spec/redis.md` §1.5).

use bytes::Bytes;

/// A command's reply, independent of the protocol version it is encoded in.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// A simple string (`+<text>`).
    Simple(String),
    /// An error line; the text includes the code (`ERR …`, `WRONGTYPE …`). Bytes, not text:
    /// Redis echoes client arguments into some errors verbatim (`unknown command '\xff'`).
    Error(Bytes),
    /// An integer.
    Int(i64),
    /// A bulk string.
    Bulk(Bytes),
    /// A bulk string built from text.
    BulkStr(String),
    /// The null bulk (`$-1`, RESP3 `_`).
    Nil,
    /// The null array (`*-1`, RESP3 `_`).
    NilArray,
    /// An array.
    Array(Vec<Reply>),
    /// A set (RESP3 `~`, RESP2 array).
    Set(Vec<Reply>),
    /// A map (RESP3 `%`, RESP2 flat array).
    Map(Vec<(Reply, Reply)>),
    /// A push message (RESP3 `>`, RESP2 array): pub/sub deliveries.
    Push(Vec<Reply>),
    /// A double (RESP3 `,`, RESP2 bulk).
    Double(f64),
    /// A boolean (RESP3 `#`, RESP2 integer).
    Bool(bool),
    /// Verbatim text (RESP3 `=…txt:`, RESP2 bulk): INFO, CLIENT LIST.
    Verbatim(String),
    /// Bytes already encoded, identical in both protocols (large bulk arrays).
    Raw(Bytes),
    /// Nothing is sent (CLIENT REPLY OFF/SKIP, SUBSCRIBE's own pushes).
    NoReply,
}

impl Reply {
    /// Returns a bulk reply holding a copy of `s`.
    pub fn bulk(s: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(s.as_ref()))
    }

    /// Returns a bulk reply for `Some`, the null bulk for `None`.
    pub fn opt_bulk(b: Option<Bytes>) -> Reply {
        b.map_or(Reply::Nil, Reply::Bulk)
    }

    /// Returns an array of bulks.
    pub fn bulks<I: IntoIterator<Item = Bytes>>(items: I) -> Reply {
        Reply::Array(items.into_iter().map(Reply::Bulk).collect())
    }

    /// Returns an error reply with the given full text (`ERR …`).
    pub fn err(text: impl Into<String>) -> Reply {
        Reply::Error(Bytes::from(text.into()))
    }

    /// Reports whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

/// A command failure; `Display` is the exact Redis error line without the leading `-`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdError {
    /// Operation on a key of another type.
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// An argument that must be an integer is not one.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// An argument that must be a float is not one.
    #[error("ERR value is not a valid float")]
    NotFloat,
    /// INCR family overflow.
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    /// Bad option combination.
    #[error("ERR syntax error")]
    Syntax,
    /// LSET/RENAME on a missing key.
    #[error("ERR no such key")]
    NoSuchKey,
    /// LSET index outside the list.
    #[error("ERR index out of range")]
    IndexOutOfRange,
    /// SELECT/MOVE with a bad database.
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    /// HINCRBY on a field that does not hold an integer.
    #[error("ERR hash value is not an integer")]
    HashNotInteger,
    /// HINCRBYFLOAT on a field that does not hold a float.
    #[error("ERR hash value is not a float")]
    HashNotFloat,
    /// Wrong argument count.
    #[error("ERR wrong number of arguments for '{0}' command")]
    Arity(String),
    /// A subcommand the command does not have.
    #[error(
        "ERR unknown subcommand '{}'. Try {cmd} HELP.",
        String::from_utf8_lossy(c_str(sub, 128))
    )]
    UnknownSubcommand {
        /// The subcommand as sent (echoed raw, as `%.128s`).
        sub: Bytes,
        /// The command, uppercase.
        cmd: String,
    },
    /// `maxmemory` reached.
    #[error("OOM command not allowed when used memory > 'maxmemory'.")]
    Oom,
    /// A write on a read-only replica.
    #[error("READONLY You can't write against a read only replica.")]
    ReadOnly,
    /// Not authenticated.
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    /// Bad credentials.
    #[error("WRONGPASS invalid username-password pair or user is disabled.")]
    WrongPass,
    /// RESTORE onto an existing key.
    #[error("BUSYKEY Target key name already exists.")]
    BusyKey,
    /// Any other error, full text with its code.
    #[error("{0}")]
    Other(String),
    /// An error line that echoes client bytes verbatim, as Redis's `%s` prints them; they
    /// need not be UTF-8 (`Display` shows them lossily, the reply carries them as sent).
    #[error("{}", String::from_utf8_lossy(.0))]
    Raw(Bytes),
}

impl CmdError {
    /// Returns an `ERR <text>` error.
    pub fn err(text: impl AsRef<str>) -> Self {
        CmdError::Other(format!("ERR {}", text.as_ref()))
    }

    /// Returns `<prefix><arg><suffix>` with `arg` as C's `%s` prints it (up to its first
    /// NUL), for the errors where Redis echoes an argument (`Unsupported option \xff`).
    pub fn echo(prefix: &str, arg: &[u8], suffix: &str) -> Self {
        let arg = c_str(arg, usize::MAX);
        let mut out = Vec::with_capacity(prefix.len() + arg.len() + suffix.len());
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(suffix.as_bytes());
        CmdError::Raw(Bytes::from(out))
    }

    /// Returns the error code (first word), the `INFO errorstats` key.
    pub fn code(&self) -> String {
        let s = self.to_string();
        s.split(' ').next().unwrap_or("ERR").to_string()
    }

    /// Returns the exact error line (without the leading `-`), echoed bytes included.
    pub fn into_bytes(self) -> Bytes {
        match self {
            CmdError::Raw(b) => b,
            CmdError::UnknownSubcommand { sub, cmd } => {
                let mut out = b"ERR unknown subcommand '".to_vec();
                out.extend_from_slice(c_str(&sub, 128));
                out.extend_from_slice(format!("'. Try {cmd} HELP.").as_bytes());
                Bytes::from(out)
            }
            other => Bytes::from(other.to_string()),
        }
    }
}

/// Returns `arg` as C's `%.<max>s` prints it: up to its first NUL byte, at most `max` bytes.
pub fn c_str(arg: &[u8], max: usize) -> &[u8] {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
    &arg[..end.min(max)]
}

impl From<CmdError> for Reply {
    fn from(e: CmdError) -> Self {
        Reply::Error(e.into_bytes())
    }
}

/// The result type of every command handler.
pub type CmdResult = Result<Reply, CmdError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_bytes_stay_raw_and_stop_at_nul() {
        assert_eq!(c_str(b"ab\0cd", 10), b"ab");
        assert_eq!(c_str(b"abcdef", 3), b"abc");
        let e = CmdError::echo("ERR Unsupported option ", b"\xff\x00x", "");
        assert_eq!(e.into_bytes(), &b"ERR Unsupported option \xff"[..]);
        let sub = CmdError::UnknownSubcommand {
            sub: Bytes::from(vec![0xffu8; 200]),
            cmd: "OBJECT".into(),
        };
        let line = sub.into_bytes();
        assert_eq!(
            line.len(),
            "ERR unknown subcommand ''. Try OBJECT HELP.".len() + 128
        );
        assert!(
            matches!(Reply::from(CmdError::Syntax), Reply::Error(b) if b == "ERR syntax error")
        );
    }
}
