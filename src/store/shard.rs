//! One keyspace shard's table: key → [`Entry`], dense by index, found by hash in one probe.
//!
//! The entries live in a dense `Vec` (insertion order, `swap_remove` on delete), which gives
//! SCAN its stable cursors and RANDOMKEY its uniform pick, as an `IndexMap` would. The index
//! over them is a linear-probing table of 8-byte slots, each holding a 32-bit hash beside the
//! entry's position, so a lookup reads one cache line of slots and then the entry: a hit
//! costs two memory reads where a SwissTable index (control bytes, then the slot, then the
//! entry) costs three, and a GET on a keyspace larger than the cache is mostly those reads.
//!
//! Deletion shifts the following slots back (no tombstones), so probes stay short however
//! many keys come and go, as log keys with retention do.

use super::key::Key;
use super::value::Entry;

/// Grow when more than 3/4 of the slots are used: linear probing stays near one cache line.
const LOAD_NUM: usize = 3;
const LOAD_DEN: usize = 4;

/// Slots [`ShardMap::touch_entry`] looks through: one cache line.
const PROBE_TOUCH: usize = 8;

/// The smallest table once a key arrives.
const MIN_SLOTS: usize = 8;

/// A slot: the key's 32-bit hash in the high half, its entry's index + 1 in the low half;
/// 0 is empty. Positions and comparisons both use the 32-bit hash, so growing never rehashes
/// a key.
type Slot = u64;

fn slot(hash: u32, index: usize) -> Slot {
    (u64::from(hash) << 32) | (index as u64 + 1)
}

fn slot_hash(s: Slot) -> u32 {
    (s >> 32) as u32
}

fn slot_index(s: Slot) -> usize {
    ((s & u64::from(u32::MAX)) - 1) as usize
}

/// A shard's keys and entries.
#[derive(Clone)]
pub struct ShardMap {
    entries: Vec<(Key, Entry)>,
    slots: Vec<Slot>,
    /// Keyed per process (flooding-resistant, like Redis's SipHash seed); clones keep it.
    hasher: ahash::RandomState,
}

impl Default for ShardMap {
    fn default() -> Self {
        ShardMap {
            entries: Vec::new(),
            slots: Vec::new(),
            hasher: ahash::RandomState::new(),
        }
    }
}

impl std::fmt::Debug for ShardMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl ShardMap {
    /// Returns the number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Reports whether the shard holds no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn hash(&self, key: &[u8]) -> u32 {
        let h = self.hasher.hash_one(key);
        (h ^ (h >> 32)) as u32
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// Finds a key: its slot position and entry index.
    #[inline]
    fn find(&self, key: &[u8]) -> Option<(usize, usize)> {
        if self.entries.is_empty() {
            return None;
        }
        let hash = self.hash(key);
        let mask = self.mask();
        let mut pos = hash as usize & mask;
        loop {
            let s = self.slots[pos];
            if s == 0 {
                return None;
            }
            if slot_hash(s) == hash {
                let index = slot_index(s);
                if let Some((k, _)) = self.entries.get(index) {
                    if **k == *key {
                        return Some((pos, index));
                    }
                }
            }
            pos = (pos + 1) & mask;
        }
    }

    /// Returns the key's hash and the position of the slot its lookup reads first.
    #[inline]
    pub fn probe_start(&self, key: &[u8]) -> (u32, usize) {
        let hash = self.hash(key);
        (hash, hash as usize & self.mask())
    }

    /// Reads the slot at a position from [`ShardMap::probe_start`] (0 if the table is
    /// empty): a plain read that brings its cache line in, for
    /// [`crate::store::keyspace::Db::prefetch`].
    #[inline]
    pub fn slot_word(&self, pos: usize) -> u64 {
        self.slots.get(pos).copied().unwrap_or(0)
    }

    /// Reads a word of the entry the key with `hash` has, probing from `pos` (whose slot
    /// [`ShardMap::first_slot`] read) a few slots at most, bringing the entry in.
    #[inline]
    pub fn touch_entry(&self, hash: u32, pos: usize) -> u64 {
        let mask = self.mask();
        for i in 0..PROBE_TOUCH {
            let s = self.slots.get((pos + i) & mask).copied().unwrap_or(0);
            if s == 0 {
                return 0;
            }
            if slot_hash(s) == hash {
                return self.entries.get(slot_index(s)).map_or(0, |(k, e)| {
                    k.len() as u64 ^ e.expire_at().unwrap_or(0) as u64
                });
            }
        }
        0
    }

    /// Returns a key's index (valid until the next insert or remove).
    #[inline]
    pub fn get_index_of(&self, key: &[u8]) -> Option<usize> {
        self.find(key).map(|(_, i)| i)
    }

    /// Returns a key's entry.
    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.get_index_of(key)
            .and_then(|i| self.entries.get(i))
            .map(|(_, e)| e)
    }

    /// Returns a key's entry for changing it.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let i = self.get_index_of(key)?;
        self.entries.get_mut(i).map(|(_, e)| e)
    }

    /// Reports whether the key is present.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.find(key).is_some()
    }

    /// Returns the key and entry at an index.
    pub fn get_index(&self, index: usize) -> Option<(&Key, &Entry)> {
        self.entries.get(index).map(|(k, e)| (k, e))
    }

    /// Returns the key and entry at an index, the entry for changing.
    pub fn get_index_mut(&mut self, index: usize) -> Option<(&Key, &mut Entry)> {
        self.entries.get_mut(index).map(|(k, e)| (&*k, e))
    }

    /// Iterates keys and entries in index order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Entry)> {
        self.entries.iter().map(|(k, e)| (k, e))
    }

    /// Inserts or replaces; returns the key's index and the entry it replaced (the stored
    /// key is kept on a replace).
    pub fn insert_full(&mut self, key: Key, entry: Entry) -> (usize, Option<Entry>) {
        if let Some((_, i)) = self.find(&key) {
            if let Some((_, e)) = self.entries.get_mut(i) {
                return (i, Some(std::mem::replace(e, entry)));
            }
        }
        self.grow_for(self.entries.len() + 1);
        let hash = self.hash(&key);
        let index = self.entries.len();
        self.place(slot(hash, index));
        self.entries.push((key, entry));
        (index, None)
    }

    /// Removes a key; the last entry moves into its index (`Vec::swap_remove`).
    pub fn swap_remove(&mut self, key: &[u8]) -> Option<Entry> {
        let (pos, index) = self.find(key)?;
        self.clear_slot(pos);
        let last = self.entries.len() - 1;
        if index != last {
            // The last entry takes the removed one's index: repoint its slot.
            let moved = self.entries.get(last).map(|(k, _)| self.hash(k));
            if let Some(hash) = moved {
                let mask = self.mask();
                let mut p = hash as usize & mask;
                let from = slot(hash, last);
                while self.slots[p] != 0 {
                    if self.slots[p] == from {
                        self.slots[p] = slot(hash, index);
                        break;
                    }
                    p = (p + 1) & mask;
                }
            }
        }
        Some(self.entries.swap_remove(index).1)
    }

    /// Makes room for `additional` more keys without growing as they arrive.
    pub fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
        self.grow_for(self.entries.len().saturating_add(additional));
    }

    /// Grows the slots so `keys` keys stay within the load limit.
    fn grow_for(&mut self, keys: usize) {
        if keys.saturating_mul(LOAD_DEN) <= self.slots.len().saturating_mul(LOAD_NUM) {
            return;
        }
        let mut size = self.slots.len().max(MIN_SLOTS);
        while keys.saturating_mul(LOAD_DEN) > size.saturating_mul(LOAD_NUM) {
            size *= 2;
        }
        let old = std::mem::replace(&mut self.slots, vec![0; size]);
        for s in old.into_iter().filter(|&s| s != 0) {
            self.place(s);
        }
    }

    /// Puts a slot at the first free position of its probe sequence.
    fn place(&mut self, s: Slot) {
        let mask = self.mask();
        let mut pos = slot_hash(s) as usize & mask;
        while self.slots[pos] != 0 {
            pos = (pos + 1) & mask;
        }
        self.slots[pos] = s;
    }

    /// Empties a position, shifting back the slots after it that may move closer to their
    /// home (backward-shift deletion), so every probe still ends at the first empty slot.
    fn clear_slot(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut next = hole;
        loop {
            next = (next + 1) & mask;
            let s = self.slots[next];
            if s == 0 {
                break;
            }
            let home = slot_hash(s) as usize & mask;
            // `s` may fill the hole when the hole lies on its probe path, home..=next.
            if next.wrapping_sub(home) & mask >= next.wrapping_sub(hole) & mask {
                self.slots[hole] = s;
                hole = next;
            }
        }
        self.slots[hole] = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::value::{Str, Value};
    use rand::{Rng, SeedableRng};
    use std::collections::HashMap;

    fn entry(n: u64) -> Entry {
        Entry::new(Value::Str(Str::from(n as i64)), 0)
    }

    #[test]
    fn touch_entry_finds_most_keys_from_their_probe_start() {
        let mut m = ShardMap::default();
        for n in 0..5000u64 {
            m.insert_full(Key::from(format!("key:{n}").as_bytes()), entry(n));
        }
        // A present key's entry is read (its key length, no expiry) when it sits within a
        // cache line of slots from where its probe starts: nearly always below 3/4 load (the
        // hasher is seeded per process; at this load 1-3% of keys sit further).
        let found = (0..5000u64)
            .filter(|n| {
                let key = format!("key:{n}");
                let (hash, pos) = m.probe_start(key.as_bytes());
                m.slot_word(pos) != 0 && m.touch_entry(hash, pos) == key.len() as u64
            })
            .count();
        assert!(found > 4750, "{found} of 5000");
        let (hash, pos) = m.probe_start(b"absent");
        assert_eq!(m.touch_entry(hash, pos), 0);
        let empty = ShardMap::default();
        let (hash, pos) = empty.probe_start(b"k");
        assert_eq!((empty.slot_word(pos), empty.touch_entry(hash, pos)), (0, 0));
    }

    fn value(e: &Entry) -> Vec<u8> {
        match &e.value {
            Value::Str(s) => s.to_vec(),
            _ => Vec::new(),
        }
    }

    /// Every key is found at the index the entries hold it at, and nothing else is found.
    fn check(map: &ShardMap, model: &HashMap<Vec<u8>, u64>) {
        assert_eq!(map.len(), model.len());
        for (k, v) in model {
            let i = map.get_index_of(k).expect("present key found");
            let (key, e) = map.get_index(i).expect("index valid");
            assert_eq!(&**key, &k[..]);
            assert_eq!(value(e), v.to_string().into_bytes());
        }
        let used = map.slots.iter().filter(|&&s| s != 0).count();
        assert_eq!(used, map.len(), "one slot per key");
        assert!(map.len() * LOAD_DEN <= map.slots.len() * LOAD_NUM);
    }

    #[test]
    fn random_inserts_replaces_and_removes_match_a_model() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let mut map = ShardMap::default();
        let mut model = HashMap::new();
        for round in 0..20_000u64 {
            // A small key range so replaces and removes of present keys are common.
            let k = format!("k{}", rng.gen_range(0..600)).into_bytes();
            if rng.gen_bool(0.6) {
                let (i, old) = map.insert_full(Key::from(&k[..]), entry(round));
                assert_eq!(old.is_some(), model.insert(k.clone(), round).is_some());
                assert_eq!(map.get_index(i).map(|(key, _)| key.to_vec()), Some(k));
            } else {
                let old = map.swap_remove(&k);
                assert_eq!(
                    old.map(|e| value(&e)),
                    model.remove(&k).map(|v| v.to_string().into_bytes())
                );
            }
            if round % 997 == 0 {
                check(&map, &model);
            }
        }
        check(&map, &model);
        assert!(map.get(b"absent").is_none());
    }

    #[test]
    fn colliding_hashes_wrap_around_and_survive_removal() {
        // Force every key to one home position: the worst case for probing and shifting.
        let mut map = ShardMap::default();
        map.reserve(40);
        let mask = map.mask();
        let mut keys = Vec::new();
        let mut n = 0u64;
        while keys.len() < 30 {
            let k = format!("c{n}").into_bytes();
            if map.hash(&k) as usize & mask == mask {
                keys.push(k);
            }
            n += 1;
        }
        let mut model = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            map.insert_full(Key::from(&k[..]), entry(i as u64));
            model.insert(k.clone(), i as u64);
        }
        check(&map, &model);
        for k in keys.iter().step_by(3) {
            assert!(map.swap_remove(k).is_some());
            model.remove(k);
            check(&map, &model);
        }
    }

    #[test]
    fn clones_are_independent() {
        let mut map = ShardMap::default();
        map.insert_full(Key::from(&b"a"[..]), entry(1));
        let copy = map.clone();
        map.swap_remove(b"a");
        map.insert_full(Key::from(&b"b"[..]), entry(2));
        assert!(copy.contains_key(b"a") && !copy.contains_key(b"b"));
        assert!(!map.contains_key(b"a") && map.contains_key(b"b"));
    }
}
