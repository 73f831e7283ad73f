//! The keyspace: numbered databases of key → [`Entry`], split into copy-on-write shards.
//!
//! Each database is a fixed number of shards, each an `Arc<ShardMap>`. A snapshot clones the
//! shard pointers (a few thousand `Arc` clones, whatever the data size); the first write to a
//! shard after a snapshot copies that shard's entry table — pointers to values, not the values
//! themselves, which are shared again one level down (see `value.rs`, `list.rs`).

use std::sync::Arc;

use bytes::Bytes;
use indexmap::IndexSet;
use rand::Rng;

use super::key::Key;
use super::shard::ShardMap;
use super::value::Entry;

/// Shards per database (a power of two; the low bits of a SCAN cursor).
pub const SHARDS: usize = 128;
const SHARD_BITS: u32 = SHARDS.trailing_zeros();

/// Keys [`Db::prefetch`] warms at most: a pipelined batch's worth.
const PREFETCH_MAX: usize = 32;

/// Databases smaller than this stay in the cache anyway: [`Db::prefetch`] would only hash
/// every key twice (measured: 2–3% more CPU for RPUSH to one list at -P16).
const PREFETCH_MIN_KEYS: usize = 1 << 14;

/// One shard of a database (see `shard.rs` for why it is not an `IndexMap`).
pub type Shard = ShardMap;

/// Picks a key's shard (FNV-1a; the shard maps themselves use a keyed hash against flooding).
fn shard_of(key: &[u8]) -> usize {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    (h ^ (h >> 32)) as usize & (SHARDS - 1)
}

/// Where a key's entry sits: its shard and its index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    shard: usize,
    index: usize,
}

/// One numbered database.
#[derive(Debug, Clone)]
pub struct Db {
    shards: Vec<Arc<Shard>>,
    len: usize,
    /// Keys that have an expiry: sampled by the active expire cycle, counted by INFO.
    expires: IndexSet<Key, ahash::RandomState>,
}

impl Default for Db {
    fn default() -> Self {
        Db {
            shards: (0..SHARDS).map(|_| Arc::new(Shard::default())).collect(),
            len: 0,
            expires: IndexSet::default(),
        }
    }
}

impl Db {
    /// Returns the number of keys (including expired ones not yet removed).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Reports whether the database holds no key.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Returns the number of keys with an expiry.
    pub fn expires_len(&self) -> usize {
        self.expires.len()
    }

    /// Returns a key's entry without any expiry check.
    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.shards[shard_of(key)].get(key)
    }

    /// Returns a key's entry for changing its value.
    ///
    /// Callers change `expire_at` only through [`Db::set_expire`], which keeps the expiry
    /// index right.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let shard = &mut self.shards[shard_of(key)];
        // Copy a shard shared with a snapshot only if the key is there to change.
        if Arc::get_mut(shard).is_none() && !shard.contains_key(key) {
            return None;
        }
        Arc::make_mut(shard).get_mut(key)
    }

    /// Warms the cache for a batch of lookups about to run (a pipelined batch, a run of the
    /// master's stream): on a keyspace larger than the cache a lookup is two dependent
    /// memory reads (slot, then entry), which one command at a time pays in full. Reading
    /// every key's slot first, then every entry, lets those reads overlap — the batch pays
    /// about two memory latencies instead of two per key (Redis 8 prefetches its dict the
    /// same way for batches of commands). Plain reads, not prefetch instructions, which are
    /// `unsafe` to call; only the first `PREFETCH_MAX` keys are read, and only in databases
    /// of at least `PREFETCH_MIN_KEYS` keys.
    pub fn prefetch<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) {
        if self.len < PREFETCH_MIN_KEYS {
            return;
        }
        // Three passes, so each pass's reads are independent of one another and overlap:
        // the hashes (no memory reads but the keys), the slots, the entries.
        let mut probes = [(0usize, 0u32, 0usize); PREFETCH_MAX];
        let mut n = 0;
        for (probe, key) in probes.iter_mut().zip(keys) {
            let shard = shard_of(key);
            let (hash, pos) = self.shards[shard].probe_start(key);
            *probe = (shard, hash, pos);
            n += 1;
        }
        let probes = &probes[..n];
        let mut warm = 0u64;
        for &(shard, _, pos) in probes {
            warm ^= self.shards[shard].slot_word(pos);
        }
        for &(shard, hash, pos) in probes {
            warm ^= self.shards[shard].touch_entry(hash, pos);
        }
        std::hint::black_box(warm);
    }

    /// Finds a key's slot: one hash lookup, after which [`Db::at`] and [`Db::at_mut`] reach
    /// the entry without hashing again (valid until the next insert or remove).
    pub fn locate(&self, key: &[u8]) -> Option<Slot> {
        let shard = shard_of(key);
        self.shards[shard]
            .get_index_of(key)
            .map(|index| Slot { shard, index })
    }

    /// Returns the entry at a slot from [`Db::locate`].
    pub fn at(&self, slot: Slot) -> Option<&Entry> {
        self.shards[slot.shard]
            .get_index(slot.index)
            .map(|(_, e)| e)
    }

    /// Returns the entry at a slot from [`Db::locate`] after recording a read access at
    /// `access` (unix seconds), the LRU clock `OBJECT IDLETIME` reads. Like Redis, which skips
    /// the update while a fork shares its pages, the access is not recorded when the shard is
    /// shared with a snapshot: a read never copies a shard.
    pub fn at_touched(&mut self, slot: Slot, access: u32) -> Option<&Entry> {
        let shard = &mut self.shards[slot.shard];
        if Arc::get_mut(shard).is_none() {
            return shard.get_index(slot.index).map(|(_, e)| e);
        }
        let (_, e) = Arc::make_mut(shard).get_index_mut(slot.index)?;
        e.access = access;
        Some(e)
    }

    /// Returns the entry at a slot for changing its value (same rules as [`Db::get_mut`]).
    pub fn at_mut(&mut self, slot: Slot) -> Option<&mut Entry> {
        // A copied shard keeps its order, so the index stays valid.
        Arc::make_mut(&mut self.shards[slot.shard])
            .get_index_mut(slot.index)
            .map(|(_, e)| e)
    }

    /// Inserts or replaces a key (copied in); returns the previous entry.
    pub fn insert(&mut self, key: impl AsRef<[u8]>, entry: Entry) -> Option<Entry> {
        let key = key.as_ref();
        let expires = entry.expire_at().is_some();
        if expires && !self.expires.contains(key) {
            self.expires.insert(Key::from(key));
        }
        let shard = Arc::make_mut(&mut self.shards[shard_of(key)]);
        let (at, old) = shard.insert_full(Key::from(key), entry);
        match &old {
            None => self.len += 1,
            Some(o) => {
                if o.expire_at().is_some() && !expires {
                    if let Some((k, _)) = shard.get_index(at) {
                        self.expires.swap_remove(k);
                    }
                }
            }
        }
        old
    }

    /// Removes a key; returns its entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let shard = &mut self.shards[shard_of(key)];
        if Arc::get_mut(shard).is_none() && !shard.contains_key(key) {
            return None;
        }
        let old = Arc::make_mut(shard).swap_remove(key);
        if let Some(o) = &old {
            self.len -= 1;
            if o.expire_at().is_some() {
                self.expires.swap_remove(key);
            }
        }
        old
    }

    /// Sets or clears a key's expiry; returns false when the key is missing.
    pub fn set_expire(&mut self, key: &[u8], at: Option<i64>) -> bool {
        let Some(e) = self.get_mut(key) else {
            return false;
        };
        e.set_expire_at(at);
        match at {
            Some(_) => {
                if !self.expires.contains(key) {
                    self.expires.insert(Key::from(key));
                }
            }
            None => {
                self.expires.swap_remove(key);
            }
        }
        true
    }

    /// Makes room for about `keys` more keys, `expires` of them with an expiry, so a bulk
    /// load (an RDB's RESIZEDB hint, Redis's `dictExpand`) does not rehash as it grows.
    /// Callers bound the numbers: they come from files.
    pub fn reserve(&mut self, keys: usize, expires: usize) {
        // Keys spread evenly over the shards; a little slack for the unevenness.
        let per_shard = keys / SHARDS + keys / (SHARDS * 8) + 1;
        for s in &mut self.shards {
            Arc::make_mut(s).reserve(per_shard);
        }
        self.expires.reserve(expires);
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        *self = Db::default();
    }

    /// Returns a uniformly chosen shard-then-key, or `None` when empty.
    pub fn random_key<R: Rng>(&self, rng: &mut R) -> Option<Bytes> {
        if self.len == 0 {
            return None;
        }
        // Pick by global index so the choice is uniform across shards.
        let mut i = rng.gen_range(0..self.len);
        for s in &self.shards {
            if i < s.len() {
                return s.get_index(i).map(|(k, _)| Bytes::copy_from_slice(k));
            }
            i -= s.len();
        }
        None
    }

    /// Returns up to `n` random keys that have an expiry (the active cycle's sample).
    pub fn sample_expiring<R: Rng>(&self, rng: &mut R, n: usize) -> Vec<Bytes> {
        let len = self.expires.len();
        if len == 0 {
            return Vec::new();
        }
        (0..n.min(len))
            .filter_map(|_| {
                self.expires
                    .get_index(rng.gen_range(0..len))
                    .map(|k| Bytes::copy_from_slice(k))
            })
            .collect()
    }

    /// Iterates all keys and entries (KEYS, snapshot serialisation).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.shards
            .iter()
            .flat_map(|s| s.iter().map(|(k, e)| (&**k, e)))
    }

    /// Visits about `count` entries from `cursor` on; returns the next cursor (0 when done).
    ///
    /// Each shard is walked from its last index down: a removal moves the last entry into the
    /// hole, and that entry was already visited, so every key present for the whole scan is
    /// returned at least once, the guarantee `SCAN` documents.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&[u8], &Entry)) -> u64 {
        let mut shard = (cursor & (SHARDS as u64 - 1)) as usize;
        // 0 means "shard not started"; otherwise the next index to visit is bound - 1.
        let mut bound_plus = cursor >> SHARD_BITS;
        let mut seen = 0;
        while shard < SHARDS {
            let s = &self.shards[shard];
            let mut bound = if bound_plus == 0 {
                s.len()
            } else {
                (bound_plus as usize - 1).min(s.len())
            };
            while bound > 0 && seen < count {
                bound -= 1;
                if let Some((k, e)) = s.get_index(bound) {
                    visit(k, e);
                }
                seen += 1;
            }
            if bound > 0 {
                return ((bound as u64 + 1) << SHARD_BITS) | shard as u64;
            }
            shard += 1;
            bound_plus = 0;
            if seen >= count {
                break;
            }
        }
        if shard >= SHARDS {
            0
        } else {
            shard as u64
        }
    }
}

/// All databases.
#[derive(Debug, Clone)]
pub struct Keyspace {
    /// The numbered databases (`databases`, default 16).
    pub dbs: Vec<Db>,
}

impl Keyspace {
    /// Returns `n` empty databases.
    pub fn new(n: usize) -> Self {
        Keyspace {
            dbs: (0..n).map(|_| Db::default()).collect(),
        }
    }

    /// Returns a point-in-time copy: one `Arc` clone per shard, whatever the data size.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            dbs: self.dbs.iter().map(|d| d.shards.clone()).collect(),
        }
    }
}

/// A point-in-time view of every database, for BGSAVE, full syncs and backups.
#[derive(Debug, Clone)]
pub struct Snapshot {
    dbs: Vec<Vec<Arc<Shard>>>,
}

impl Snapshot {
    /// Iterates the entries of database `db`.
    pub fn iter_db(&self, db: usize) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.dbs
            .get(db)
            .into_iter()
            .flat_map(|s| s.iter().flat_map(|m| m.iter().map(|(k, e)| (&**k, e))))
    }

    /// Returns the number of databases.
    pub fn db_count(&self) -> usize {
        self.dbs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::value::Value;

    #[test]
    fn prefetch_reads_any_batch_and_changes_nothing() {
        let mut db = Db::default();
        db.prefetch([&b"k"[..]].into_iter());
        for n in 0..PREFETCH_MIN_KEYS + 1000 {
            put(&mut db, &format!("k{n}"));
        }
        let keys: Vec<String> = (0..100).map(|n| format!("k{}", n * 7)).collect();
        db.prefetch(keys.iter().map(|k| k.as_bytes()));
        db.prefetch([&b""[..], &b"absent"[..]].into_iter());
        assert_eq!(db.len(), PREFETCH_MIN_KEYS + 1000);
        assert!(keys.iter().all(|k| db.get(k.as_bytes()).is_some()));
    }

    fn put(db: &mut Db, k: &str) {
        db.insert(
            Bytes::from(k.to_string()),
            Entry::new(Value::Str(Bytes::from("v").into()), 0),
        );
    }

    #[test]
    fn reads_record_access_unless_a_snapshot_shares_the_shard() {
        let mut ks = Keyspace::new(1);
        put(&mut ks.dbs[0], "k");
        let slot = ks.dbs[0].locate(b"k").expect("slot");
        assert_eq!(ks.dbs[0].at_touched(slot, 7).map(|e| e.access), Some(7));
        let snap = ks.snapshot();
        // Shared with the snapshot: answered, not recorded, not copied.
        assert_eq!(ks.dbs[0].at_touched(slot, 9).map(|e| e.access), Some(7));
        drop(snap);
        assert_eq!(ks.dbs[0].at_touched(slot, 9).map(|e| e.access), Some(9));
    }

    #[test]
    fn scan_visits_every_stable_key_despite_removals() {
        let mut db = Db::default();
        for i in 0..5000 {
            put(&mut db, &format!("k{i}"));
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = db.scan(cursor, 37, |k, _| {
                seen.insert(k.to_vec());
            });
            // Remove keys as we go; the ones never removed must all be seen.
            round += 1;
            db.remove(format!("k{}", round * 3).as_bytes());
            if cursor == 0 {
                break;
            }
        }
        for i in 0..5000 {
            if i % 3 != 0 || i / 3 > round {
                assert!(seen.contains(format!("k{i}").as_bytes()), "missed k{i}");
            }
        }
    }

    #[test]
    fn snapshot_is_isolated_from_later_writes() {
        let mut ks = Keyspace::new(2);
        put(&mut ks.dbs[0], "a");
        let snap = ks.snapshot();
        put(&mut ks.dbs[0], "b");
        ks.dbs[0].remove(b"a");
        let keys: Vec<_> = snap.iter_db(0).map(|(k, _)| k.to_vec()).collect();
        assert_eq!(keys, vec![b"a".to_vec()]);
    }

    #[test]
    fn expiry_index_follows_entries() {
        let mut db = Db::default();
        put(&mut db, "a");
        assert!(db.set_expire(b"a", Some(10)));
        assert_eq!(db.expires_len(), 1);
        put(&mut db, "a");
        assert_eq!(db.expires_len(), 0);
        db.set_expire(b"a", Some(10));
        db.remove(b"a");
        assert_eq!(db.expires_len(), 0);
    }
}
