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
            // Redis 7.0 always holds lists as a quicklist (listpack lists came with 7.2).
            Value::List(_) => "quicklist",
            Value::Hash(h) => h.encoding(),
        }
    }

    /// Returns an estimate of the heap bytes the value holds.
    pub fn approx_bytes(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::List(l) => l.allocated() + 64,
            Value::Hash(h) => h.approx_bytes(),
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
    /// Absolute expiry time in unix milliseconds, or [`NO_EXPIRE`]: a plain `i64` is 8 bytes
    /// where `Option<i64>` takes 16, and every key pays for it. Read it with
    /// [`Entry::expire_at`]; only [`Entry::with_expire`] and `Db::set_expire` change it.
    expire: i64,
    /// Last access, in unix seconds (for `OBJECT IDLETIME`).
    pub access: u32,
    /// How a string value is held, when that differs from what its bytes imply.
    pub repr: StrRepr,
}

/// The `expire` of an entry without expiry. No real deadline can be this far in the past
/// ([`Entry::set_expire_at`] moves one that is to the next millisecond, expired all the same).
const NO_EXPIRE: i64 = i64::MIN;

/// How a string value is held (Redis's `robj.encoding` and sharing), for the few writes whose
/// result is not what `tryObjectEncoding` would pick from the bytes (`t_string.c`, `object.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StrRepr {
    /// As `tryObjectEncoding` picks from the content: `int`, `embstr` or `raw`; integers
    /// 0..9999 are the shared objects (refcount `INT_MAX`).
    #[default]
    Auto,
    /// Always `raw`: APPEND and SETRANGE leave an unshared sds.
    Raw,
    /// `embstr` or `raw` by length, never `int`: INCRBYFLOAT's `createStringObject`.
    NoInt,
    /// Like `Auto`, but never the shared integer: COPY's `dupStringObject`.
    Unshared,
}

impl Entry {
    /// Returns an entry without expiry.
    pub fn new(value: Value, now_ms: i64) -> Self {
        Entry {
            value,
            expire: NO_EXPIRE,
            access: (now_ms / 1000) as u32,
            repr: StrRepr::Auto,
        }
    }

    /// Returns this entry with an expiry (for a new entry, before it is inserted: `Db::insert`
    /// indexes it then).
    pub fn with_expire(mut self, at: Option<i64>) -> Self {
        self.set_expire_at(at);
        self
    }

    /// Returns the absolute expiry time in unix milliseconds, if any.
    #[inline]
    pub fn expire_at(&self) -> Option<i64> {
        (self.expire != NO_EXPIRE).then_some(self.expire)
    }

    /// Sets the expiry field only; the database's expiry index is `Db::set_expire`'s job, so
    /// only the keyspace and constructors call this.
    pub(crate) fn set_expire_at(&mut self, at: Option<i64>) {
        self.expire = match at {
            Some(NO_EXPIRE) => NO_EXPIRE + 1,
            Some(t) => t,
            None => NO_EXPIRE,
        };
    }

    /// Returns the encoding `OBJECT ENCODING` answers, as Redis 7.0 would.
    pub fn encoding(&self) -> &'static str {
        match (&self.value, self.repr) {
            (Value::Str(_), StrRepr::Raw) => "raw",
            (Value::Str(s), StrRepr::NoInt) if s.len() <= 44 => "embstr",
            (Value::Str(_), StrRepr::NoInt) => "raw",
            (v, _) => v.encoding(),
        }
    }

    /// Returns the count `OBJECT REFCOUNT` answers: `INT_MAX` for the shared integers 0..9999
    /// (`OBJ_SHARED_INTEGERS`, kura never evicts so they are always shared), else 1.
    pub fn refcount(&self) -> i64 {
        match (&self.value, self.repr) {
            (Value::Str(s), StrRepr::Auto) if s.len() <= 4 => {
                match crate::resp::decode::parse_i64(s) {
                    Some(n) if (0..10_000).contains(&n) => i32::MAX as i64,
                    _ => 1,
                }
            }
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_stays_small() {
        // Every key pays for an entry in its shard's table.
        assert!(std::mem::size_of::<Entry>() <= 56);
    }

    #[test]
    fn expiry_round_trips_through_the_sentinel() {
        let mut e = Entry::new(Value::Str(Bytes::new()), 0);
        assert_eq!(e.expire_at(), None);
        e.set_expire_at(Some(5));
        assert_eq!(e.expire_at(), Some(5));
        e.set_expire_at(Some(i64::MIN));
        assert_eq!(e.expire_at(), Some(i64::MIN + 1));
        e.set_expire_at(None);
        assert_eq!(e.expire_at(), None);
    }
}
