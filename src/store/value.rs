//! Stored values and keyspace entries.

use std::sync::Arc;

use bytes::Bytes;

use super::hash::Hash;
use super::list::List;

/// A string value: 24 bytes in the entry where a `Bytes` took 32, which with the enum's
/// niche makes [`Value`] 24 bytes and [`Entry`] 40.
///
/// Short strings (counters, flags, small JSON fields) sit in the entry itself, as Redis's
/// `embstr` sits in its object: no allocation on SET, and a GET reads them from the cache
/// line the lookup already brought in instead of following one more pointer. The heap forms
/// are reference-counted, so a shard copied for a snapshot shares its strings. SET and
/// friends store an exact `Arc<[u8]>` (header and bytes in one allocation); APPEND and
/// SETRANGE turn it into an `Arc<Vec<u8>>` whose spare capacity makes repeated appends
/// amortised O(1), like the free space of Redis's sds (`sdsMakeRoomFor`).
#[derive(Clone)]
pub enum Str {
    /// Up to [`Str::INLINE`] bytes, held in place.
    Inline {
        /// How many bytes of `buf` are the string.
        len: u8,
        /// The bytes, zero-padded.
        buf: [u8; Str::INLINE],
    },
    /// Exact, as written by SET.
    Fixed(Arc<[u8]>),
    /// Growable, after APPEND or SETRANGE.
    Growable(Arc<Vec<u8>>),
}

impl Str {
    /// The longest string held in place: what fits beside the tag in the 24 bytes a heap
    /// form takes anyway.
    pub const INLINE: usize = 22;

    /// Values up to this size are copied into a reply; longer ones are shared with it.
    const COPY_MAX: usize = 256;

    /// Returns the bytes as a `Bytes` for a reply: a copy when short, else a shared view.
    pub fn to_bytes(&self) -> Bytes {
        if self.len() <= Self::COPY_MAX {
            Bytes::copy_from_slice(self)
        } else {
            Bytes::from_owner(self.clone())
        }
    }

    /// Returns the bytes for growing in place (copied first if a snapshot shares them).
    pub fn make_mut(&mut self) -> &mut Vec<u8> {
        if !matches!(self, Str::Growable(_)) {
            *self = Str::Growable(Arc::new(self.to_vec()));
        }
        match self {
            Str::Growable(v) => Arc::make_mut(v),
            Str::Inline { .. } | Str::Fixed(_) => unreachable!("made growable above"),
        }
    }
}

impl Default for Str {
    fn default() -> Self {
        Str::Inline {
            len: 0,
            buf: [0; Str::INLINE],
        }
    }
}

impl std::ops::Deref for Str {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Str::Inline { len, buf } => &buf[..*len as usize],
            Str::Fixed(a) => a,
            Str::Growable(v) => v,
        }
    }
}

impl AsRef<[u8]> for Str {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl std::fmt::Debug for Str {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", Bytes::copy_from_slice(self))
    }
}

impl From<&[u8]> for Str {
    fn from(b: &[u8]) -> Self {
        if b.len() <= Str::INLINE {
            let mut buf = [0; Str::INLINE];
            buf[..b.len()].copy_from_slice(b);
            Str::Inline {
                len: b.len() as u8,
                buf,
            }
        } else {
            Str::Fixed(Arc::from(b))
        }
    }
}

impl From<Bytes> for Str {
    fn from(b: Bytes) -> Self {
        Str::from(&b[..])
    }
}

/// An integer's decimal form, written in place (INCR and friends store one per call).
impl From<i64> for Str {
    fn from(n: i64) -> Self {
        // 20 bytes at most ("-9223372036854775808"), within `INLINE`.
        let mut digits = [0u8; 20];
        Str::from(crate::resp::encode::fmt_i64(n, &mut digits))
    }
}

impl From<Vec<u8>> for Str {
    fn from(v: Vec<u8>) -> Self {
        Str::Growable(Arc::new(v))
    }
}

/// A value of one of the types kura holds.
///
/// Lists and hashes sit behind `Arc` so cloning a keyspace shard for a snapshot copies a
/// pointer per key; the first write after the snapshot copies only what it touches
/// (`Arc::make_mut`).
#[derive(Debug, Clone)]
pub enum Value {
    /// A string (binary-safe).
    Str(Str),
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
        assert_eq!(std::mem::size_of::<Value>(), 24);
        assert!(std::mem::size_of::<Entry>() <= 40);
    }

    #[test]
    fn strings_keep_their_bytes_in_every_form() {
        for len in [0, 1, Str::INLINE - 1, Str::INLINE, Str::INLINE + 1, 300] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut s = Str::from(&bytes[..]);
            assert_eq!(&*s, &bytes[..]);
            assert_eq!(matches!(s, Str::Inline { .. }), len <= Str::INLINE);
            assert_eq!(&s.to_bytes()[..], &bytes[..]);
            let shared = s.clone();
            s.make_mut().push(b'!');
            assert_eq!(&s[..len], &bytes[..]);
            assert_eq!(s.len(), len + 1);
            assert_eq!(&*shared, &bytes[..]);
        }
    }

    #[test]
    fn integers_write_their_decimal_form() {
        for n in [0, 7, -7, 10, 9999, -10_000, i64::MAX, i64::MIN] {
            assert_eq!(&*Str::from(n), n.to_string().as_bytes());
        }
    }

    #[test]
    fn expiry_round_trips_through_the_sentinel() {
        let mut e = Entry::new(Value::Str(Str::default()), 0);
        assert_eq!(e.expire_at(), None);
        e.set_expire_at(Some(5));
        assert_eq!(e.expire_at(), Some(5));
        e.set_expire_at(Some(i64::MIN));
        assert_eq!(e.expire_at(), Some(i64::MIN + 1));
        e.set_expire_at(None);
        assert_eq!(e.expire_at(), None);
    }

    #[test]
    fn strings_grow_without_touching_a_shared_copy() {
        let mut s = Str::from(&b"ab"[..]);
        let snap = s.clone();
        s.make_mut().extend_from_slice(b"c");
        let shared = s.clone();
        s.make_mut().extend_from_slice(b"d");
        assert_eq!(
            (&*s, &*snap, &*shared),
            (&b"abcd"[..], &b"ab"[..], &b"abc"[..])
        );
        let long = Str::from(vec![7; 1000]);
        assert_eq!(long.to_bytes(), Bytes::from(vec![7; 1000]));
    }
}
