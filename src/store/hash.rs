//! Hash values.
//!
//! Small hashes keep insertion order, like Redis's listpack encoding, so `HGETALL` answers in
//! the same order as redis-server; past `hash-max-listpack-entries` / `-value` the hash is
//! marked as a hashtable (order no longer promised), as Redis converts it (`t_hash.c`
//! `hashTypeTryConversion`, `hashTypeSet`). The conversion is one-way, as in Redis.

use bytes::Bytes;
use indexmap::IndexMap;

/// Redis 7.0 default `hash-max-listpack-entries`.
pub const MAX_LISTPACK_ENTRIES: usize = 512;
/// Redis 7.0 default `hash-max-listpack-value`.
pub const MAX_LISTPACK_VALUE: usize = 64;

/// The listpack limits in force (from the config), deciding when a hash converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `hash-max-listpack-entries`.
    pub entries: usize,
    /// `hash-max-listpack-value`.
    pub value: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            entries: MAX_LISTPACK_ENTRIES,
            value: MAX_LISTPACK_VALUE,
        }
    }
}

/// A hash value: field → value.
#[derive(Debug, Clone, Default)]
pub struct Hash {
    map: IndexMap<Bytes, Bytes>,
    /// Set once the hash outgrew the listpack limits (never reset, as in Redis).
    table: bool,
}

impl Hash {
    /// Returns an empty hash.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the number of fields.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Reports whether the hash has no field.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Returns Redis's encoding name for `OBJECT ENCODING`.
    pub fn encoding(&self) -> &'static str {
        if self.table {
            "hashtable"
        } else {
            "listpack"
        }
    }

    /// Reports whether the hash is in the listpack (small, ordered) form.
    pub fn is_listpack(&self) -> bool {
        !self.table
    }

    /// Converts to the hashtable form (Redis `hashTypeConvert`).
    pub fn convert(&mut self) {
        self.table = true;
    }

    /// Converts when one of `args` is longer than the listpack value limit, as Redis's
    /// `hashTypeTryConversion` does with HSET's arguments before setting any of them.
    pub fn try_conversion<'a>(&mut self, args: impl IntoIterator<Item = &'a [u8]>, lim: Limits) {
        if !self.table && args.into_iter().any(|a| a.len() > lim.value) {
            self.table = true;
        }
    }

    /// Returns a field's value.
    pub fn get(&self, field: &[u8]) -> Option<&Bytes> {
        self.map.get(field)
    }

    /// Sets a field with the default limits; returns true when the field is new.
    pub fn set(&mut self, field: Bytes, value: Bytes) -> bool {
        self.set_with(field, value, Limits::default())
    }

    /// Sets a field, converting past `lim`; returns true when the field is new.
    pub fn set_with(&mut self, field: Bytes, value: Bytes, lim: Limits) -> bool {
        if field.len() > lim.value || value.len() > lim.value {
            self.table = true;
        }
        let new = match self.map.get_mut(&field) {
            Some(v) => {
                *v = value;
                false
            }
            None => {
                self.map.insert(field, value);
                true
            }
        };
        if self.map.len() > lim.entries {
            self.table = true;
        }
        new
    }

    /// Sets a field without converting to the hashtable form, whatever the sizes; returns
    /// true when the field is new.
    ///
    /// Redis 7.0 loads listpack and ziplist hashes from RDB/RESTORE payloads as they are and
    /// converts them only on a later write, so restored data keeps its encoding (and its DUMP
    /// bytes) here too.
    pub fn set_keep_encoding(&mut self, field: Bytes, value: Bytes) -> bool {
        self.map.insert(field, value).is_none()
    }

    /// Removes a field; returns whether it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        if self.table {
            self.map.swap_remove(field).is_some()
        } else {
            // A listpack deletes in place: the other fields keep their order.
            self.map.shift_remove(field).is_some()
        }
    }

    /// Iterates field/value pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.map.iter()
    }

    /// Returns the pair at position `i` (for random sampling and cursors).
    pub fn get_index(&self, i: usize) -> Option<(&Bytes, &Bytes)> {
        self.map.get_index(i)
    }

    /// Returns the total bytes of fields and values.
    pub fn payload_bytes(&self) -> usize {
        self.map.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn converts_on_entries_and_value_length() {
        let lim = Limits {
            entries: 3,
            value: 8,
        };
        let mut h = Hash::new();
        for f in ["a", "b", "c"] {
            assert!(h.set_with(b(f), b("v"), lim));
        }
        assert_eq!(h.encoding(), "listpack");
        assert!(!h.set_with(b("a"), b("w"), lim));
        assert_eq!(h.encoding(), "listpack");
        h.set_with(b("d"), b("v"), lim);
        assert_eq!(h.encoding(), "hashtable");
        h.remove(b"d");
        assert_eq!(h.encoding(), "hashtable");

        let mut h = Hash::new();
        h.set_with(b("f"), b("123456789"), lim);
        assert_eq!(h.encoding(), "hashtable");
        let mut h = Hash::new();
        h.try_conversion([&b"123456789"[..]], lim);
        assert_eq!(h.encoding(), "hashtable");
    }

    #[test]
    fn listpack_keeps_order_through_updates_and_deletes() {
        let mut h = Hash::new();
        for f in ["a", "b", "c", "d"] {
            h.set(b(f), b(f));
        }
        h.set(b("b"), b("B"));
        h.remove(b"a");
        let order: Vec<&[u8]> = h.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(order, vec![&b"b"[..], b"c", b"d"]);
        assert_eq!(h.get(b"b"), Some(&b("B")));
    }
}
