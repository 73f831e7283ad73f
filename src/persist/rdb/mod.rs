//! Redis's RDB format (`shared/spec/redis.md` §3): the value codec shared by DUMP/RESTORE,
//! RDB files and replication full syncs.
//!
//! - [`encode`] writes values exactly as Redis 7.0's `rdbSaveObject` would (string int
//!   encodings, LZF, listpacks, quicklist node splits), generic over `io::Write`.
//! - [`decode`] reads every string, list and hash encoding Redis 7.0 or older may produce,
//!   as pure functions over `&[u8]`, bounds-checked so corrupt input never panics.
//! - [`payload`] adds the DUMP footer (RDB version + CRC64).
//! - [`load`] reads a whole RDB file (opcodes, AUX fields, databases, checksum) into a
//!   keyspace.
//! - [`crc64`], [`lzf`], [`listpack`], [`ziplist`] are the building blocks.

pub mod crc64;
pub mod decode;
pub mod encode;
pub mod listpack;
pub mod load;
pub mod lzf;
pub mod payload;
pub mod writer;
pub mod ziplist;

pub use decode::{read_object, read_value, Reader};
pub use encode::{value_type, write_length, write_object, write_string, write_value, WriteOpts};
pub use payload::{dump_payload, verify_payload};

/// The RDB version Redis 7.0 writes (`RDB_VERSION`), and the highest it reads.
pub const RDB_VERSION: u16 = 10;

/// Opcodes: bytes read where a value type would be (`RDB_OPCODE_*` in `rdb.h`, §3.1).
pub mod opcode {
    /// A function library (7.0 GA and later): one string holding the library's code.
    pub const FUNCTION2: u8 = 0xF5;
    /// A function library in the 7.0-rc1/rc2 format.
    pub const FUNCTION: u8 = 0xF6;
    /// Module data not tied to a key.
    pub const MODULE_AUX: u8 = 0xF7;
    /// The next key's LRU idle time in seconds (a length).
    pub const IDLE: u8 = 0xF8;
    /// The next key's LFU counter (one byte).
    pub const FREQ: u8 = 0xF9;
    /// An auxiliary field: two strings.
    pub const AUX: u8 = 0xFA;
    /// A hint of the selected database's size: two lengths.
    pub const RESIZEDB: u8 = 0xFB;
    /// The next key's expiry: 8 bytes LE, unix milliseconds.
    pub const EXPIRETIME_MS: u8 = 0xFC;
    /// The next key's expiry, legacy form: 4 bytes LE, unix seconds.
    pub const EXPIRETIME: u8 = 0xFD;
    /// Selects a database: a length.
    pub const SELECTDB: u8 = 0xFE;
    /// End of the data; the CRC64 follows (version >= 5).
    pub const EOF: u8 = 0xFF;
}

/// Value type bytes (`RDB_TYPE_*` in `rdb.h`).
pub mod types {
    /// A string.
    pub const STRING: u8 = 0;
    /// A list as a count + strings (Redis < 3.2).
    pub const LIST: u8 = 1;
    /// A set as a count + strings.
    pub const SET: u8 = 2;
    /// A sorted set with ASCII scores (Redis < 3.0).
    pub const ZSET: u8 = 3;
    /// A hash as a count + field/value strings.
    pub const HASH: u8 = 4;
    /// A sorted set with binary scores.
    pub const ZSET_2: u8 = 5;
    /// A module value (pre-4.0 format).
    pub const MODULE: u8 = 6;
    /// A module value.
    pub const MODULE_2: u8 = 7;
    /// A hash in a zipmap (Redis ≤ 2.4).
    pub const HASH_ZIPMAP: u8 = 9;
    /// A list in a ziplist (Redis ≤ 3.0).
    pub const LIST_ZIPLIST: u8 = 10;
    /// A set of integers in an intset.
    pub const SET_INTSET: u8 = 11;
    /// A sorted set in a ziplist (Redis ≤ 6.2).
    pub const ZSET_ZIPLIST: u8 = 12;
    /// A hash in a ziplist (Redis ≤ 6.2).
    pub const HASH_ZIPLIST: u8 = 13;
    /// A quicklist of ziplists (Redis 3.2 – 6.2).
    pub const LIST_QUICKLIST: u8 = 14;
    /// A stream (Redis 5.0 – 6.2).
    pub const STREAM_LISTPACKS: u8 = 15;
    /// A hash in a listpack (7.0).
    pub const HASH_LISTPACK: u8 = 16;
    /// A sorted set in a listpack (7.0).
    pub const ZSET_LISTPACK: u8 = 17;
    /// A quicklist of listpack or plain nodes (7.0: every list).
    pub const LIST_QUICKLIST_2: u8 = 18;
    /// A stream (7.0).
    pub const STREAM_LISTPACKS_2: u8 = 19;
}

/// Quicklist node containers in `LIST_QUICKLIST_2` (`QUICKLIST_NODE_CONTAINER_*`).
pub mod container {
    /// One raw element (elements of 1 GiB or more).
    pub const PLAIN: u64 = 1;
    /// A listpack of elements.
    pub const PACKED: u64 = 2;
}

/// Returns the name of a value type kura does not hold, for error messages.
pub fn unsupported_type_name(ty: u8) -> Option<&'static str> {
    use types::*;
    Some(match ty {
        SET => "set",
        ZSET | ZSET_2 => "zset",
        MODULE | MODULE_2 => "module",
        SET_INTSET => "set (intset)",
        ZSET_ZIPLIST => "zset (ziplist)",
        ZSET_LISTPACK => "zset (listpack)",
        STREAM_LISTPACKS | STREAM_LISTPACKS_2 => "stream",
        _ => return None,
    })
}

/// Why RDB data could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RdbError {
    /// The data ends inside a value.
    #[error("unexpected end of rdb data at offset {0}")]
    Eof(usize),
    /// A length prefix uses an encoding that does not exist (`10xxxxxx` other than 0x80/0x81).
    #[error("invalid length encoding 0x{byte:02x} at offset {at}")]
    BadLength {
        /// The first byte of the length.
        byte: u8,
        /// Where it was.
        at: usize,
    },
    /// A string uses an unknown special encoding (`11xxxxxx` above LZF).
    #[error("unknown string encoding {0}")]
    BadStringEncoding(u64),
    /// LZF data that does not decompress to the announced length.
    #[error("invalid lzf string: {0}")]
    Lzf(#[from] lzf::LzfError),
    /// A length larger than the data that could possibly follow it.
    #[error("length {len} at offset {at} exceeds the data")]
    TooLong {
        /// The length read.
        len: u64,
        /// Where it was.
        at: usize,
    },
    /// A value type Redis has but kura does not hold (sets, sorted sets, streams, modules).
    #[error("rdb value type {ty} ({name}) is not supported")]
    UnsupportedType {
        /// The type byte.
        ty: u8,
        /// The type's name.
        name: &'static str,
    },
    /// A byte that is no value type at all (or one newer than RDB version 10).
    #[error("unknown rdb value type {0}")]
    UnknownType(u8),
    /// A malformed listpack, ziplist, zipmap or quicklist.
    #[error("corrupt {what} at offset {at}")]
    Corrupt {
        /// Which structure.
        what: &'static str,
        /// Offset inside that structure.
        at: usize,
    },
    /// An aggregate with no element (Redis refuses to load empty keys).
    #[error("empty {0} value")]
    Empty(&'static str),
    /// A hash with the same field twice.
    #[error("duplicate hash field")]
    DuplicateField,
}

impl RdbError {
    /// Returns a stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            RdbError::Eof(_) => "eof",
            RdbError::BadLength { .. } => "bad_length",
            RdbError::BadStringEncoding(_) => "bad_string_encoding",
            RdbError::Lzf(_) => "lzf",
            RdbError::TooLong { .. } => "too_long",
            RdbError::UnsupportedType { .. } => "unsupported_type",
            RdbError::UnknownType(_) => "unknown_type",
            RdbError::Corrupt { .. } => "corrupt",
            RdbError::Empty(_) => "empty",
            RdbError::DuplicateField => "duplicate_field",
        }
    }
}
