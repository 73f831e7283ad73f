//! Stored keys: short keys inline in the table, longer ones in an exact heap copy.
//!
//! Most keys are short (`user:1000`, `nginx.access.1714000000.49`), so a key of up to
//! [`INLINE`] bytes sits in the shard table itself: no allocation, and a lookup compares it
//! without reaching into another cache line elsewhere on the heap. Longer keys are a
//! `Box<[u8]>`. Either way a key is 32 bytes in the table, where a `Bytes` took 32 plus its
//! heap copy, and a clone (a shard copied after a snapshot) of an inline key is a plain copy.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// The longest key held inline.
pub const INLINE: usize = 30;

/// A key's bytes, owned by the keyspace.
#[derive(Clone)]
pub struct Key(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl From<&[u8]> for Key {
    fn from(b: &[u8]) -> Self {
        if b.len() <= INLINE {
            let mut buf = [0; INLINE];
            buf[..b.len()].copy_from_slice(b);
            Key(Repr::Inline {
                len: b.len() as u8,
                buf,
            })
        } else {
            Key(Repr::Heap(Box::from(b)))
        }
    }
}

impl Deref for Key {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => &buf[..*len as usize],
            Repr::Heap(b) => b,
        }
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self
    }
}

// Hash and equality are the bytes', so maps keyed by `Key` are searched with a `&[u8]`
// (the `Borrow` contract).
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Key {}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", bytes::Bytes::copy_from_slice(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_keys_keep_their_bytes_and_hash_like_slices() {
        let s = ahash::RandomState::new();
        for len in [0, 1, INLINE - 1, INLINE, INLINE + 1, 200] {
            let bytes: Vec<u8> = (0..len as u8).collect();
            let k = Key::from(&bytes[..]);
            assert_eq!(&*k, &bytes[..]);
            assert_eq!(k.clone(), k);
            assert_eq!(s.hash_one(&k), s.hash_one(&bytes[..]));
        }
        assert_eq!(std::mem::size_of::<Key>(), 32);
    }
}
