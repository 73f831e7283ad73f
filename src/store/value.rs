//! Stored values and keyspace entries.

use std::sync::Arc;

use bytes::Bytes;

use super::hash::Hash;
use super::list::List;

/// A value of one of the types kura holds.
///
/// Lists and hashes sit behind `Arc` so cloning a keyspace shard for a snapshot copies a
/// pointer per key; the first write after the snapshot copies only what it touches
/// (`Arc::make_mut`).
#[derive(Debug, Clone)]
pub enum Value {
    /// A string (binary-safe).
    Str(Bytes),
    /// A list.
    List(Arc<List>),
    /// A hash.
    Hash(Arc<Hash>),
}

impl Value {
    /// Returns the name `TYPE` answers.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
        }
    }

    /// Returns the encoding `OBJECT ENCODING` answers, as Redis 7.0 would.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => string_encoding(s),
            // Redis 7.0 always encodes lists as quicklists (listpack lists came in 7.2).
            Value::List(_) => "quicklist",
            Value::Hash(h) => h.encoding(),
        }
    }

    /// Returns an estimate of the heap bytes the value holds.
    pub fn approx_bytes(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::List(l) => l.allocated() + 64,
            Value::Hash(h) => h.payload_bytes() + 80 * h.len(),
        }
    }
}

/// Returns Redis's encoding for a string value: `int`, `embstr` (≤ 44 bytes) or `raw`.
pub fn string_encoding(s: &[u8]) -> &'static str {
    if s.len() <= 20 && crate::resp::decode::parse_i64(s).is_some() {
        "int"
    } else if s.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}

/// One key's value with its metadata.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// Absolute expiry time in unix milliseconds, if any.
    pub expire_at: Option<i64>,
    /// Last access, in unix seconds (for `OBJECT IDLETIME`).
    pub access: u32,
}

impl Entry {
    /// Returns an entry without expiry.
    pub fn new(value: Value, now_ms: i64) -> Self {
        Entry {
            value,
            expire_at: None,
            access: (now_ms / 1000) as u32,
        }
    }
}
