//! Hash values.
//!
//! Small hashes keep insertion order, like Redis's listpack encoding, so `HGETALL` answers in
//! the same order as redis-server; past `hash-max-listpack-entries` / `-value` the hash is
//! marked as a hashtable (order no longer promised), as Redis converts it.

use bytes::Bytes;
use indexmap::IndexMap;

/// Redis 7.0 default `hash-max-listpack-entries`.
pub const MAX_LISTPACK_ENTRIES: usize = 128;
/// Redis 7.0 default `hash-max-listpack-value`.
pub const MAX_LISTPACK_VALUE: usize = 64;

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

    /// Returns a field's value.
    pub fn get(&self, field: &[u8]) -> Option<&Bytes> {
        self.map.get(field)
    }

    /// Sets a field; returns true when the field is new.
    pub fn set(&mut self, field: Bytes, value: Bytes) -> bool {
        if field.len() > MAX_LISTPACK_VALUE || value.len() > MAX_LISTPACK_VALUE {
            self.table = true;
        }
        let new = self.map.insert(field, value).is_none();
        if self.map.len() > MAX_LISTPACK_ENTRIES {
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
