//! Hash values.
//!
//! A small hash is *packed*, like Redis's listpack encoding: one boxed byte buffer holding
//! `field value field value …` in insertion order, each string written as a length prefix
//! (1 byte below 254 bytes) and its bytes. Lookups walk it linearly, as Redis's `lpFind`
//! does; a log record of 8 short fields thus costs its payload plus 16 bytes in a single
//! allocation, where a map costs an allocation per string and ~80 bytes per field.
//!
//! Past `hash-max-listpack-entries` fields, or with a field or value longer than
//! `hash-max-listpack-value`, the hash becomes a hashtable (order no longer promised), exactly
//! when Redis converts it (`t_hash.c` `hashTypeTryConversion`, `hashTypeSet`). The
//! conversion is one-way, as in Redis. The packed order is the listpack order, so `HGETALL`,
//! `HSCAN` and `HRANDFIELD` on small hashes answer like redis-server byte for byte.
//!
//! The hashtable encoding is what clients see, not a storage decision: a hashtable of a few
//! fields (a log record with one long message) keeps its packed buffer, and only a bigger one
//! gets a map (see [`SMALL_TABLE_ENTRIES`], [`SMALL_TABLE_BYTES`]).

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

/// A big hashtable: boxed slices (16 bytes a string, no spare capacity) keyed with aHash
/// like the keyspace.
type Map = IndexMap<Box<[u8]>, Box<[u8]>, ahash::RandomState>;

/// Most fields a hashtable-encoded hash keeps packed.
pub const SMALL_TABLE_ENTRIES: usize = 64;
/// Most bytes a hashtable-encoded hash keeps packed (bounds the bytes an update moves).
pub const SMALL_TABLE_BYTES: usize = 4096;

/// A hash value: field → value.
///
/// 16 bytes (the packed buffer's pointer doubles as the tag), so `Arc<Hash>` is one
/// 32-byte allocation, next to Redis's 16-byte `robj`.
#[derive(Debug, Clone)]
pub struct Hash {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    /// The listpack form: length-prefixed field/value strings, in insertion order.
    Packed(Box<[u8]>),
    /// The hashtable form.
    Table(Box<Table>),
}

/// The hashtable encoding's storage.
///
/// Encodings are what clients see (`OBJECT ENCODING`, DUMP, the order HRANDFIELD and HSCAN
/// promise), not a storage decision: a log record with one long field (a user agent, a
/// message) is a hashtable for Redis, yet still small, so it stays packed until it outgrows
/// [`SMALL_TABLE_ENTRIES`] or [`SMALL_TABLE_BYTES`]; only then does it pay for a map.
#[derive(Debug, Clone)]
enum Table {
    /// Few fields: a packed buffer, as the listpack form.
    Small(Box<[u8]>),
    /// A map (boxed, so the small case allocates 16 bytes here, not a map's size).
    Map(Box<Map>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash {
            repr: Repr::Packed(Box::default()),
        }
    }
}

// ---- PACKED ENCODING ----

/// Largest string the packed form holds (its 5-byte length prefix is a `u32`).
const MAX_PACKED_STRING: usize = u32::MAX as usize;

/// Bytes one string of `n` bytes takes in the packed buffer: prefix plus data.
fn enc_size(n: usize) -> usize {
    n + if n < 0xFE {
        1
    } else if n <= 0xFFFF {
        3
    } else {
        5
    }
}

/// Writes a string's prefix and bytes into `dst`, exactly `enc_size(s.len())` long.
fn write_str(dst: &mut [u8], s: &[u8]) {
    let n = s.len();
    let h = if n < 0xFE {
        dst[0] = n as u8;
        1
    } else if n <= 0xFFFF {
        dst[0] = 0xFE;
        dst[1..3].copy_from_slice(&(n as u16).to_le_bytes());
        3
    } else {
        dst[0] = 0xFF;
        dst[1..5].copy_from_slice(&(n as u32).to_le_bytes());
        5
    };
    dst[h..h + n].copy_from_slice(s);
}

/// Appends a string's prefix and bytes.
fn push_str(v: &mut Vec<u8>, s: &[u8]) {
    let at = v.len();
    v.resize(at + enc_size(s.len()), 0);
    write_str(&mut v[at..], s);
}

/// Reads the string whose prefix starts at `at`: (data start, data length).
#[inline]
fn read_str(buf: &[u8], at: usize) -> (usize, usize) {
    match buf[at] {
        0xFE => (
            at + 3,
            u16::from_le_bytes([buf[at + 1], buf[at + 2]]) as usize,
        ),
        0xFF => (
            at + 5,
            u32::from_le_bytes([buf[at + 1], buf[at + 2], buf[at + 3], buf[at + 4]]) as usize,
        ),
        b => (at + 1, b as usize),
    }
}

/// Where one field/value pair sits in the packed buffer.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Start of the field's prefix.
    start: usize,
    /// Field data start.
    field: usize,
    /// Field length.
    field_len: usize,
    /// Start of the value's prefix.
    value_at: usize,
    /// Value data start.
    value: usize,
    /// Value length.
    value_len: usize,
    /// End of the pair (start of the next one).
    end: usize,
}

impl Slot {
    /// Decodes the pair starting at `at`.
    #[inline]
    fn at(buf: &[u8], at: usize) -> Slot {
        let (field, field_len) = read_str(buf, at);
        let value_at = field + field_len;
        let (value, value_len) = read_str(buf, value_at);
        Slot {
            start: at,
            field,
            field_len,
            value_at,
            value,
            value_len,
            end: value + value_len,
        }
    }

    /// The pair's field and value bytes.
    #[inline]
    fn pair(self, buf: &[u8]) -> (&[u8], &[u8]) {
        (
            &buf[self.field..self.field + self.field_len],
            &buf[self.value..self.value + self.value_len],
        )
    }
}

/// Finds `field` (Redis `lpFind`, a linear walk): its slot, or the number of pairs walked.
fn find(buf: &[u8], field: &[u8]) -> Result<Slot, usize> {
    let mut at = 0;
    let mut count = 0;
    while at < buf.len() {
        let s = Slot::at(buf, at);
        if s.field_len == field.len() && &buf[s.field..s.field + s.field_len] == field {
            return Ok(s);
        }
        at = s.end;
        count += 1;
    }
    Err(count)
}

/// Counts the pairs of a packed buffer.
fn count(buf: &[u8]) -> usize {
    let mut at = 0;
    let mut n = 0;
    while at < buf.len() {
        at = Slot::at(buf, at).end;
        n += 1;
    }
    n
}

/// What [`packed_set`] did.
enum Set {
    /// Replaced the value of an existing field.
    Updated,
    /// Appended a new field; the hash now holds this many pairs.
    Inserted(usize),
}

/// Sets a field in a packed buffer: the value is replaced in place (the pair keeps its
/// position, as `lpReplace` does) or the pair is appended.
fn packed_set(v: &mut Vec<u8>, field: &[u8], value: &[u8]) -> Set {
    match find(v, field) {
        Ok(s) => {
            let old = s.end - s.value_at;
            let new = enc_size(value.len());
            if new > old {
                let grow = new - old;
                let len = v.len();
                v.reserve_exact(grow);
                v.resize(len + grow, 0);
                v.copy_within(s.end..len, s.end + grow);
            } else if new < old {
                let len = v.len();
                v.copy_within(s.end..len, s.value_at + new);
                v.truncate(len - (old - new));
            }
            write_str(&mut v[s.value_at..s.value_at + new], value);
            Set::Updated
        }
        Err(count) => {
            v.reserve_exact(enc_size(field.len()) + enc_size(value.len()));
            push_str(v, field);
            push_str(v, value);
            Set::Inserted(count + 1)
        }
    }
}

/// How far a packed buffer may grow before its hash changes form.
#[derive(Debug, Clone, Copy)]
struct Fit {
    /// Longest field or value.
    string: usize,
    /// Most pairs.
    entries: usize,
    /// Most buffer bytes.
    bytes: usize,
}

impl Fit {
    /// The listpack limits (the buffer's size is not one of them).
    fn listpack(lim: Limits) -> Fit {
        Fit {
            string: lim.value.min(MAX_PACKED_STRING),
            entries: lim.entries,
            bytes: usize::MAX,
        }
    }

    /// The limits of a packed hashtable.
    const SMALL_TABLE: Fit = Fit {
        string: SMALL_TABLE_BYTES,
        entries: SMALL_TABLE_ENTRIES,
        bytes: SMALL_TABLE_BYTES,
    };
}

/// What [`fill_packed`] did.
#[derive(Debug, Clone, Copy)]
struct Filled {
    /// Pairs set.
    done: usize,
    /// New fields among them.
    created: usize,
    /// The buffer outgrew its [`Fit`]: the hash must change form before the rest.
    overflow: bool,
}

/// Sets `field value …` pairs into a packed buffer in order, stopping once it outgrows
/// `fit`: before a pair with a string too long for it, or after a pair that makes it too
/// big. The length is checked after every set, an update included, as Redis's `hashTypeSet`
/// does, so a listpack loaded or built under larger limits converts on its next write.
fn fill_packed<S: AsRef<[u8]>>(buf: &mut Box<[u8]>, flat: &[S], fit: Fit) -> Filled {
    let mut out = Filled {
        done: 0,
        created: 0,
        overflow: false,
    };
    let mut v = std::mem::take(buf).into_vec();
    if v.is_empty() {
        // A new hash (HMSET of a record): one allocation for every pair. Otherwise each
        // insert grows the buffer exactly, as `lpInsert` reallocs, and an update in place
        // allocates nothing.
        v.reserve_exact(flat.iter().map(|s| enc_size(s.as_ref().len())).sum());
    }
    for pair in flat.chunks_exact(2) {
        let (f, val) = (pair[0].as_ref(), pair[1].as_ref());
        if f.len() > fit.string || val.len() > fit.string {
            out.overflow = true;
            break;
        }
        out.done += 1;
        let n = match packed_set(&mut v, f, val) {
            Set::Inserted(n) => {
                out.created += 1;
                n
            }
            // Every pair takes at least two bytes, so a short buffer needs no count.
            Set::Updated if v.len() / 2 <= fit.entries => 0,
            Set::Updated => count(&v),
        };
        if n > fit.entries || v.len() > fit.bytes {
            out.overflow = true;
            break;
        }
    }
    *buf = v.into_boxed_slice();
    out
}

/// Removes `field` from a packed buffer in place (the other pairs keep their order, as
/// `lpDelete` leaves them); returns whether it was there.
fn packed_remove(buf: &mut Box<[u8]>, field: &[u8]) -> bool {
    let Ok(s) = find(buf, field) else {
        return false;
    };
    let mut v = std::mem::take(buf).into_vec();
    let len = v.len();
    v.copy_within(s.end..len, s.start);
    v.truncate(len - (s.end - s.start));
    *buf = v.into_boxed_slice();
    true
}

/// Builds a map from a packed buffer's pairs, in their order.
fn map_of(buf: &[u8]) -> Box<Map> {
    let mut m = Map::with_capacity_and_hasher(count(buf), ahash::RandomState::new());
    let mut at = 0;
    while at < buf.len() {
        let s = Slot::at(buf, at);
        let (f, v) = s.pair(buf);
        m.insert(f.into(), v.into());
        at = s.end;
    }
    Box::new(m)
}

/// Iterates a hash's field/value pairs (listpack order for a packed hash).
#[derive(Debug, Clone)]
pub struct Iter<'a>(IterRepr<'a>);

#[derive(Debug, Clone)]
enum IterRepr<'a> {
    Packed { buf: &'a [u8], at: usize },
    Map(indexmap::map::Iter<'a, Box<[u8]>, Box<[u8]>>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::Packed { buf, at } => {
                if *at >= buf.len() {
                    return None;
                }
                let s = Slot::at(buf, *at);
                *at = s.end;
                Some(s.pair(buf))
            }
            IterRepr::Map(it) => it.next().map(|(k, v)| (&k[..], &v[..])),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            // Each pair takes at least two prefix bytes.
            IterRepr::Packed { buf, at } => {
                let left = buf.len() - *at;
                (usize::from(left > 0), Some(left / 2))
            }
            IterRepr::Map(it) => it.size_hint(),
        }
    }
}

/// Random access to a hash's pairs by position (HRANDFIELD): a packed hash is walked once
/// to note where each pair starts, rather than once per sample.
#[derive(Debug)]
pub struct Indexed<'a>(IndexedRepr<'a>);

#[derive(Debug)]
enum IndexedRepr<'a> {
    Packed { buf: &'a [u8], starts: Vec<usize> },
    Map(&'a Map),
}

impl<'a> Indexed<'a> {
    /// Returns the number of pairs.
    pub fn len(&self) -> usize {
        match &self.0 {
            IndexedRepr::Packed { starts, .. } => starts.len(),
            IndexedRepr::Map(m) => m.len(),
        }
    }

    /// Reports whether there is no pair.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the pair at position `i`.
    pub fn get(&self, i: usize) -> Option<(&'a [u8], &'a [u8])> {
        match &self.0 {
            IndexedRepr::Packed { buf, starts } => {
                starts.get(i).map(|&at| Slot::at(buf, at).pair(buf))
            }
            IndexedRepr::Map(m) => m.get_index(i).map(|(k, v)| (&k[..], &v[..])),
        }
    }
}

// ---- HASH ----

impl Hash {
    /// Returns an empty hash.
    pub fn new() -> Self {
        Self::default()
    }

    /// The packed buffer, in either encoding.
    #[inline]
    fn packed(&self) -> Option<&[u8]> {
        match &self.repr {
            Repr::Packed(buf) => Some(buf),
            Repr::Table(t) => match &**t {
                Table::Small(buf) => Some(buf),
                Table::Map(_) => None,
            },
        }
    }

    /// The map, once the hash has one.
    fn map(&self) -> Option<&Map> {
        match &self.repr {
            Repr::Table(t) => match &**t {
                Table::Map(m) => Some(m),
                Table::Small(_) => None,
            },
            Repr::Packed(_) => None,
        }
    }

    /// Returns the number of fields (a walk of the buffer for a packed hash).
    pub fn len(&self) -> usize {
        match (self.packed(), self.map()) {
            (Some(buf), _) => count(buf),
            (None, Some(m)) => m.len(),
            (None, None) => 0,
        }
    }

    /// Reports whether the hash has no field.
    pub fn is_empty(&self) -> bool {
        match (self.packed(), self.map()) {
            (Some(buf), _) => buf.is_empty(),
            (None, Some(m)) => m.is_empty(),
            (None, None) => true,
        }
    }

    /// Returns Redis's encoding name for `OBJECT ENCODING`.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Packed(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    /// Reports whether the hash is in the listpack (small, ordered) form.
    pub fn is_listpack(&self) -> bool {
        matches!(self.repr, Repr::Packed(_))
    }

    /// Converts to the hashtable encoding (Redis `hashTypeConvert`); a small hash keeps its
    /// buffer as it is, a bigger one gets a map filled in listpack order.
    pub fn convert(&mut self) {
        let Repr::Packed(buf) = &mut self.repr else {
            return;
        };
        let fit = Fit::SMALL_TABLE;
        let table = if buf.len() <= fit.bytes && count(buf) <= fit.entries {
            Table::Small(std::mem::take(buf))
        } else {
            Table::Map(map_of(buf))
        };
        self.repr = Repr::Table(Box::new(table));
    }

    /// Converts when one of `args` is longer than the listpack value limit, as Redis's
    /// `hashTypeTryConversion` does with HSET's arguments before setting any of them.
    pub fn try_conversion<'a>(&mut self, args: impl IntoIterator<Item = &'a [u8]>, lim: Limits) {
        if self.is_listpack() && args.into_iter().any(|a| a.len() > lim.value) {
            self.convert();
        }
    }

    /// Returns a field's value.
    #[inline]
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match (self.packed(), self.map()) {
            (Some(buf), _) => find(buf, field).ok().map(|s| s.pair(buf).1),
            (None, Some(m)) => m.get(field).map(|v| &v[..]),
            (None, None) => None,
        }
    }

    /// Sets a field with the default limits; returns true when the field is new.
    pub fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        self.set_with(field, value, Limits::default())
    }

    /// Sets a field, converting past `lim`; returns true when the field is new.
    pub fn set_with(&mut self, field: &[u8], value: &[u8], lim: Limits) -> bool {
        self.set_pairs(&[field, value], lim) == 1
    }

    /// Sets `field value field value …` in order, converting past `lim` as successive
    /// `hashTypeSet` calls would; returns how many fields were new.
    ///
    /// A new packed hash is allocated once for the whole batch (HMSET of a log record is one
    /// allocation, not one per field).
    pub fn set_pairs<S: AsRef<[u8]>>(&mut self, flat: &[S], lim: Limits) -> usize {
        let flat = &flat[..flat.len() & !1];
        let mut created = 0;
        // Pairs before `done` are set.
        let mut done = 0;
        if let Repr::Packed(buf) = &mut self.repr {
            let f = fill_packed(buf, flat, Fit::listpack(lim));
            if !f.overflow {
                return f.created;
            }
            (done, created) = (f.done, f.created);
            self.convert();
        }
        let Repr::Table(t) = &mut self.repr else {
            return created;
        };
        if let Table::Small(buf) = &mut **t {
            let f = fill_packed(buf, &flat[2 * done..], Fit::SMALL_TABLE);
            created += f.created;
            if !f.overflow {
                return created;
            }
            done += f.done;
            **t = Table::Map(map_of(buf));
        }
        if let Table::Map(m) = &mut **t {
            for pair in flat[2 * done..].chunks_exact(2) {
                let (f, val) = (pair[0].as_ref(), pair[1].as_ref());
                match m.get_mut(f) {
                    Some(old) => *old = val.into(),
                    None => {
                        m.insert(f.into(), val.into());
                        created += 1;
                    }
                }
            }
        }
        created
    }

    /// Sets a field without converting to the hashtable form, whatever the sizes; returns
    /// true when the field is new.
    ///
    /// Redis 7.0 loads listpack and ziplist hashes from RDB/RESTORE payloads as they are and
    /// converts them only on a later write, so restored data keeps its encoding (and its DUMP
    /// bytes) here too.
    pub fn set_keep_encoding(&mut self, field: &[u8], value: &[u8]) -> bool {
        if field.len() > MAX_PACKED_STRING || value.len() > MAX_PACKED_STRING {
            // Beyond any listpack (and any RDB string); only a map holds it.
            self.convert();
        }
        let unlimited = Limits {
            entries: usize::MAX,
            value: usize::MAX,
        };
        self.set_pairs(&[field, value], unlimited) == 1
    }

    /// Removes a field; returns whether it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Packed(buf) => packed_remove(buf, field),
            Repr::Table(t) => match &mut **t {
                Table::Small(buf) => packed_remove(buf, field),
                Table::Map(m) => m.swap_remove(field).is_some(),
            },
        }
    }

    /// Iterates field/value pairs.
    pub fn iter(&self) -> Iter<'_> {
        Iter(match (self.packed(), self.map()) {
            (Some(buf), _) => IterRepr::Packed { buf, at: 0 },
            (None, Some(m)) => IterRepr::Map(m.iter()),
            (None, None) => IterRepr::Packed { buf: &[], at: 0 },
        })
    }

    /// Returns the pair at position `i` (a walk for a packed hash; use [`Hash::indexed`]
    /// for many positions).
    pub fn get_index(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match self.map() {
            Some(m) => m.get_index(i).map(|(k, v)| (&k[..], &v[..])),
            None => self.iter().nth(i),
        }
    }

    /// Returns a view answering pairs by position in constant time.
    pub fn indexed(&self) -> Indexed<'_> {
        Indexed(match (self.packed(), self.map()) {
            (None, Some(m)) => IndexedRepr::Map(m),
            (buf, _) => {
                let buf = buf.unwrap_or_default();
                let mut starts = Vec::new();
                let mut at = 0;
                while at < buf.len() {
                    starts.push(at);
                    at = Slot::at(buf, at).end;
                }
                IndexedRepr::Packed { buf, starts }
            }
        })
    }

    /// Returns the total bytes of fields and values.
    pub fn payload_bytes(&self) -> usize {
        self.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Returns an estimate of the heap bytes the hash holds (`MEMORY USAGE`).
    pub fn approx_bytes(&self) -> usize {
        match (&self.repr, self.map()) {
            (Repr::Packed(buf), _) => buf.len(),
            // Per pair: the entry (two boxed slices and the hash), an index slot, and the
            // two allocations' rounding.
            (_, Some(m)) => self.payload_bytes() + m.capacity() * 56 + m.len() * 16,
            (_, None) => self.packed().map_or(0, |b| b.len()) + 16,
        }
    }
}

// ---- LOADING ----

/// Builds a listpack-form hash from a loaded listpack or ziplist (RDB, RESTORE) in linear
/// time, whatever its size: fields are appended in order, and a field is searched for only
/// when its hash was seen before (a probable duplicate).
#[derive(Debug, Default)]
pub struct Loader {
    buf: Vec<u8>,
    seen: std::collections::HashSet<u64, std::hash::BuildHasherDefault<IdHasher>>,
    hasher: ahash::RandomState,
}

/// Passes an already computed 64-bit hash through.
#[derive(Debug, Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Loader {
    /// Starts an empty hash.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a pair unless its field is already present (the first one wins); returns
    /// whether it was added. Strings come from listpack or ziplist entries, so are below
    /// 4 GiB, the packed form's limit.
    pub fn add(&mut self, field: &[u8], value: &[u8]) -> bool {
        if !self.seen.insert(self.hasher.hash_one(field)) && find(&self.buf, field).is_ok() {
            return false;
        }
        push_str(&mut self.buf, field);
        push_str(&mut self.buf, value);
        true
    }

    /// Returns the hash, in the listpack form (Redis 7.0 keeps a loaded listpack as it is).
    pub fn finish(self) -> Hash {
        Hash {
            repr: Repr::Packed(self.buf.into_boxed_slice()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(h: &Hash) -> Vec<(String, String)> {
        h.iter()
            .map(|(f, v)| {
                (
                    String::from_utf8_lossy(f).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_hash_is_two_words() {
        assert_eq!(std::mem::size_of::<Hash>(), 16);
    }

    #[test]
    fn converts_on_entries_and_value_length() {
        let lim = Limits {
            entries: 3,
            value: 8,
        };
        let mut h = Hash::new();
        for f in ["a", "b", "c"] {
            assert!(h.set_with(f.as_bytes(), b"v", lim));
        }
        assert_eq!(h.encoding(), "listpack");
        assert!(!h.set_with(b"a", b"w", lim));
        assert_eq!(h.encoding(), "listpack");
        h.set_with(b"d", b"v", lim);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 4);

        h.remove(b"d");
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"a"), Some(&b"w"[..]));

        let mut h = Hash::new();
        h.set_with(b"f", b"123456789", lim);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"f"), Some(&b"123456789"[..]));
        let mut h = Hash::new();
        h.try_conversion([&b"123456789"[..]], lim);
        assert_eq!(h.encoding(), "hashtable");

        // An update converts a listpack already past the limit (lowered, or loaded).
        let mut h = Hash::new();
        h.set_pairs(&["a", "1", "b", "2", "c", "3"], Limits::default());
        h.set_with(
            b"a",
            b"2",
            Limits {
                entries: 3,
                value: 8,
            },
        );
        assert!(h.is_listpack());
        h.set_with(
            b"a",
            b"3",
            Limits {
                entries: 2,
                value: 8,
            },
        );
        assert!(!h.is_listpack());
        assert_eq!(h.get(b"a"), Some(&b"3"[..]));
    }

    #[test]
    fn batches_convert_midway_like_successive_sets() {
        let lim = Limits {
            entries: 2,
            value: 8,
        };
        let mut h = Hash::new();
        assert_eq!(
            h.set_pairs(&["a", "1", "b", "2", "a", "3", "c", "4", "d", "5"], lim),
            4
        );
        assert!(!h.is_listpack());
        assert_eq!(h.len(), 4);
        assert_eq!(h.get(b"a"), Some(&b"3"[..]));
        // A long value mid-batch converts before it is set; earlier pairs stay.
        let mut h = Hash::new();
        let n = h.set_pairs(&["a", "1", "b", "123456789", "a", "2"], lim);
        assert_eq!(n, 2);
        assert!(!h.is_listpack());
        assert_eq!(h.get(b"a"), Some(&b"2"[..]));
        assert_eq!(h.get(b"b"), Some(&b"123456789"[..]));
    }

    #[test]
    fn listpack_keeps_order_through_updates_and_deletes() {
        let mut h = Hash::new();
        for f in ["a", "b", "c", "d"] {
            h.set(f.as_bytes(), f.as_bytes());
        }
        h.set(b"b", b"BBB");
        h.set(b"c", b"");
        h.remove(b"a");
        assert!(!h.remove(b"a"));
        assert_eq!(
            pairs(&h),
            [("b", "BBB"), ("c", ""), ("d", "d")].map(|(f, v)| (f.to_string(), v.to_string()))
        );
        assert_eq!(h.get(b"b"), Some(&b"BBB"[..]));
        assert_eq!(h.get_index(2), Some((&b"d"[..], &b"d"[..])));
        assert_eq!(h.get_index(3), None);
        let ix = h.indexed();
        assert_eq!(ix.len(), 3);
        assert_eq!(ix.get(1), Some((&b"c"[..], &b""[..])));
        for f in ["b", "c", "d"] {
            assert!(h.remove(f.as_bytes()));
        }
        assert!(h.is_empty());
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn small_hashtables_stay_packed_until_they_outgrow_it() {
        let lim = Limits {
            entries: 4,
            value: 8,
        };
        let mut h = Hash::new();
        h.set_pairs(&["a", "1", "b", "a long value"], lim);
        assert_eq!(h.encoding(), "hashtable");
        assert!(h.packed().is_some());
        assert_eq!(pairs(&h)[1], ("b".to_string(), "a long value".to_string()));
        // Fields past the small-table limit move the hash into a map, in the middle of a
        // batch; every pair stays.
        let flat: Vec<String> = (0..2 * SMALL_TABLE_ENTRIES)
            .map(|i| format!("x{}", i / 2))
            .collect();
        let n = h.set_pairs(&flat, lim);
        assert_eq!(n, SMALL_TABLE_ENTRIES);
        assert!(h.packed().is_none());
        assert_eq!(h.len(), SMALL_TABLE_ENTRIES + 2);
        assert_eq!(h.get(b"x7"), Some(&b"x7"[..]));
        assert_eq!(h.get(b"b"), Some(&b"a long value"[..]));
        assert!(h.remove(b"x7"));
        assert_eq!(h.len(), SMALL_TABLE_ENTRIES + 1);
        // So does one value longer than the small table's buffer.
        let mut h = Hash::new();
        h.set_pairs(&["a", "1", "b", "a long value"], lim);
        let big = vec![b'v'; SMALL_TABLE_BYTES + 1];
        assert!(h.set_with(b"c", &big, lim));
        assert!(h.packed().is_none());
        assert_eq!(h.get(b"c"), Some(&big[..]));
        assert_eq!(h.get(b"a"), Some(&b"1"[..]));
        // A packed table shrinks in place and keeps its encoding.
        let mut h = Hash::new();
        h.set_pairs(&["a", "1", "b", "a long value", "c", "3"], lim);
        assert!(h.remove(b"a"));
        assert!(!h.remove(b"a"));
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 2);
        assert_eq!(h.get_index(1), Some((&b"c"[..], &b"3"[..])));
        assert_eq!(h.indexed().get(0), Some((&b"b"[..], &b"a long value"[..])));
    }

    #[test]
    fn loader_keeps_the_first_of_duplicate_fields() {
        let mut l = Loader::new();
        assert!(l.add(b"a", b"1"));
        assert!(l.add(b"b", b"2"));
        assert!(!l.add(b"a", b"3"));
        for i in 0..2000 {
            assert!(l.add(format!("f{i}").as_bytes(), b"v"));
        }
        assert!(!l.add(b"f1999", b"w"));
        let h = l.finish();
        assert!(h.is_listpack());
        assert_eq!(h.len(), 2002);
        assert_eq!(h.get(b"a"), Some(&b"1"[..]));
        assert_eq!(h.get(b"f1999"), Some(&b"v"[..]));
    }

    #[test]
    fn long_strings_take_wider_prefixes() {
        let mut h = Hash::new();
        let mid = vec![b'm'; 300];
        let big = vec![b'b'; 70_000];
        h.set_keep_encoding(b"f", &mid);
        h.set_keep_encoding(&mid, &big);
        h.set_keep_encoding(b"g", b"x");
        assert!(h.is_listpack());
        assert_eq!(h.len(), 3);
        assert_eq!(h.get(&mid), Some(&big[..]));
        // Values change prefix width in place, in both directions.
        h.set_keep_encoding(b"f", b"short");
        h.set_keep_encoding(&mid, &mid);
        h.set_keep_encoding(b"g", &big);
        assert_eq!(h.get(b"f"), Some(&b"short"[..]));
        assert_eq!(h.get(&mid), Some(&mid[..]));
        assert_eq!(h.get(b"g"), Some(&big[..]));
        assert_eq!(h.payload_bytes(), 1 + 5 + 300 + 300 + 1 + 70_000);
        let c = h.clone();
        h.convert();
        assert_eq!(pairs(&h), pairs(&c));
    }
}
