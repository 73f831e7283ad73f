//! List values: a deque of shared, packed chunks, like Redis's quicklist of listpacks.
//!
//! Each chunk packs its elements into one byte buffer, listpack style: every entry is
//! `len · bytes · len`, the length written before the data (forward walks) and again after
//! it (backward walks, `RPOP`), in 1 byte below 254 bytes. A 200-byte log record thus costs
//! 202 bytes where a listpack entry costs 204, and a chunk holds up to [`CHUNK_BYTES`] —
//! one jemalloc small size class — so nothing is lost to rounding (Redis `quicklist.c`,
//! `listpack.c`; the memory budget is "no more than redis-server for the same records").
//!
//! Live entries sit at `buf[head..]`: popping from the front only moves `head`, and pushing
//! to the front fills that gap, so `LPOP`/`LPUSH` do not move the chunk's bytes each time.
//!
//! Chunks are `Arc`ed: cloning a list for a snapshot copies one pointer per chunk, and a
//! later write copies only the chunk it changes.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

/// Most encoded bytes per chunk: 14 KiB, jemalloc's largest *small* size class. From 16 KiB
/// on, jemalloc serves "large" extents padded by a page for cache-oblivious placement, which
/// measured as 25% of a list-heavy dataset lost between `used_memory` and RSS.
pub const CHUNK_BYTES: usize = 14 * 1024;
/// Most elements per chunk, to bound in-chunk walks for tiny elements.
pub const CHUNK_ENTRIES: usize = 1024;
/// Smallest buffer a chunk allocates.
const MIN_CAP: usize = 32;

// ---- ENTRY ENCODING ----

/// Bytes taken by one length field for an element of `n` bytes.
fn len_field(n: usize) -> usize {
    if n < 0xFE {
        1
    } else if n <= 0xFFFF {
        3
    } else {
        5
    }
}

/// Encoded size of an element of `n` bytes.
fn entry_size(n: usize) -> usize {
    n + 2 * len_field(n)
}

/// Writes the entry for `v` into `dst`, which is exactly `entry_size(v.len())` long.
fn write_entry(dst: &mut [u8], v: &[u8]) {
    let n = v.len();
    let h = len_field(n);
    let end = dst.len();
    match h {
        1 => {
            dst[0] = n as u8;
            dst[end - 1] = n as u8;
        }
        3 => {
            let b = (n as u16).to_le_bytes();
            dst[0] = 0xFE;
            dst[1..3].copy_from_slice(&b);
            dst[end - 3..end - 1].copy_from_slice(&b);
            dst[end - 1] = 0xFE;
        }
        _ => {
            let b = (n as u32).to_le_bytes();
            dst[0] = 0xFF;
            dst[1..5].copy_from_slice(&b);
            dst[end - 5..end - 1].copy_from_slice(&b);
            dst[end - 1] = 0xFF;
        }
    }
    dst[h..h + n].copy_from_slice(v);
}

/// Reads the length field at the start of an entry: (element length, field size).
fn read_prefix(data: &[u8], at: usize) -> (usize, usize) {
    match data[at] {
        0xFE => (u16::from_le_bytes([data[at + 1], data[at + 2]]) as usize, 3),
        0xFF => (
            u32::from_le_bytes([data[at + 1], data[at + 2], data[at + 3], data[at + 4]]) as usize,
            5,
        ),
        b => (b as usize, 1),
    }
}

/// Reads the length field that ends at `end` (exclusive): (element length, field size).
fn read_suffix(data: &[u8], end: usize) -> (usize, usize) {
    match data[end - 1] {
        0xFE => (
            u16::from_le_bytes([data[end - 3], data[end - 2]]) as usize,
            3,
        ),
        0xFF => (
            u32::from_le_bytes([data[end - 5], data[end - 4], data[end - 3], data[end - 2]])
                as usize,
            5,
        ),
        b => (b as usize, 1),
    }
}

/// Picks a new buffer capacity for `need` live bytes: doubling powers of two up to
/// [`CHUNK_BYTES`] (all exact jemalloc small classes), or exactly `need` for an oversized
/// element.
fn grow_target(cap: usize, need: usize) -> usize {
    if need > CHUNK_BYTES {
        return need;
    }
    need.next_power_of_two()
        .max(cap.saturating_mul(2))
        .clamp(MIN_CAP, CHUNK_BYTES)
}

// ---- CHUNK ----

/// A run of list elements packed into one buffer.
#[derive(Debug, Default)]
pub struct Chunk {
    /// Entries live in `buf[head..]`; `buf[..head]` is free room for front pushes.
    buf: Vec<u8>,
    head: u32,
    count: u32,
}

impl Clone for Chunk {
    /// Copies only the live entries (a snapshot's copy-on-write never carries free room).
    fn clone(&self) -> Self {
        Chunk {
            buf: self.live().to_vec(),
            head: 0,
            count: self.count,
        }
    }
}

/// Iterates a chunk's elements from either end.
#[derive(Debug, Clone)]
pub struct ChunkIter<'a> {
    data: &'a [u8],
    front: usize,
    back: usize,
    left: usize,
}

impl<'a> Iterator for ChunkIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let (n, h) = read_prefix(self.data, self.front);
        let s = self.front + h;
        self.front = s + n + h;
        self.left -= 1;
        Some(&self.data[s..s + n])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl DoubleEndedIterator for ChunkIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let (n, h) = read_suffix(self.data, self.back);
        let e = self.back - h;
        self.back = e - n - h;
        self.left -= 1;
        Some(&self.data[e - n..e])
    }
}

impl ExactSizeIterator for ChunkIter<'_> {}

impl Chunk {
    fn live(&self) -> &[u8] {
        &self.buf[self.head as usize..]
    }

    fn live_bytes(&self) -> usize {
        self.buf.len() - self.head as usize
    }

    /// Returns the number of elements.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Reports whether the chunk holds no element.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Returns the payload bytes held (element bytes, without length fields).
    pub fn bytes(&self) -> usize {
        self.iter().map(|e| e.len()).sum()
    }

    /// Returns the bytes the chunk's buffer occupies (for memory reports).
    pub fn allocated(&self) -> usize {
        self.buf.capacity()
    }

    /// Iterates the elements in order.
    pub fn iter(&self) -> ChunkIter<'_> {
        let data = self.live();
        ChunkIter {
            data,
            front: 0,
            back: data.len(),
            left: self.len(),
        }
    }

    /// Returns element `i`, walking from the nearer end.
    pub fn get(&self, i: usize) -> &[u8] {
        let (s, e) = self.span(i);
        let (n, h) = read_prefix(self.live(), s);
        debug_assert_eq!(s + n + 2 * h, e);
        &self.live()[s + h..s + h + n]
    }

    /// Returns the byte span (in `live()`) of entry `i`.
    fn span(&self, i: usize) -> (usize, usize) {
        debug_assert!(i < self.len());
        let data = self.live();
        if i <= self.len() / 2 {
            let mut at = 0;
            for _ in 0..i {
                let (n, h) = read_prefix(data, at);
                at += n + 2 * h;
            }
            let (n, h) = read_prefix(data, at);
            (at, at + n + 2 * h)
        } else {
            let mut end = data.len();
            for _ in 0..self.len() - 1 - i {
                let (n, h) = read_suffix(data, end);
                end -= n + 2 * h;
            }
            let (n, h) = read_suffix(data, end);
            (end - n - 2 * h, end)
        }
    }

    /// Byte offset in `live()` where entry `i` starts (`i == len` is the end).
    fn offset_of(&self, i: usize) -> usize {
        if i == self.len() {
            self.live_bytes()
        } else {
            self.span(i).0
        }
    }

    fn has_room(&self, add: usize) -> bool {
        self.is_empty() || (self.live_bytes() + add <= CHUNK_BYTES && self.len() < CHUNK_ENTRIES)
    }

    /// Makes room for `add` more bytes after the live data.
    fn reserve_back(&mut self, add: usize) {
        let len = self.buf.len();
        if len + add <= self.buf.capacity() {
            return;
        }
        let head = self.head as usize;
        let live = len - head;
        if head > 0 && live + add <= self.buf.capacity() {
            self.buf.copy_within(head.., 0);
            self.buf.truncate(live);
        } else {
            let mut nb = Vec::with_capacity(grow_target(self.buf.capacity(), live + add));
            nb.extend_from_slice(&self.buf[head..]);
            self.buf = nb;
        }
        self.head = 0;
    }

    /// Makes room for `add` more bytes before the live data.
    fn reserve_front(&mut self, add: usize) {
        let head = self.head as usize;
        if head >= add {
            return;
        }
        let live = self.buf.len() - head;
        let need = live + add;
        if need <= self.buf.capacity() {
            // Slide the live bytes to the end: all free room goes to the front.
            let cap = self.buf.capacity();
            let old_len = self.buf.len();
            self.buf.resize(cap, 0);
            self.buf.copy_within(head..old_len, cap - live);
            self.head = (cap - live) as u32;
        } else {
            let cap = grow_target(self.buf.capacity(), need);
            let mut nb = Vec::with_capacity(cap);
            nb.resize(cap - live, 0);
            nb.extend_from_slice(&self.buf[head..]);
            self.buf = nb;
            self.head = (cap - live) as u32;
        }
    }

    fn push_back(&mut self, v: &[u8]) {
        let n = entry_size(v.len());
        self.reserve_back(n);
        let at = self.buf.len();
        self.buf.resize(at + n, 0);
        write_entry(&mut self.buf[at..], v);
        self.count += 1;
    }

    fn push_front(&mut self, v: &[u8]) {
        let n = entry_size(v.len());
        self.reserve_front(n);
        let at = self.head as usize - n;
        write_entry(&mut self.buf[at..at + n], v);
        self.head = at as u32;
        self.count += 1;
    }

    fn pop_front(&mut self) -> Bytes {
        let head = self.head as usize;
        let (n, h) = read_prefix(&self.buf, head);
        let v = Bytes::copy_from_slice(&self.buf[head + h..head + h + n]);
        self.head = (head + n + 2 * h) as u32;
        self.count -= 1;
        if self.count == 0 {
            self.buf.clear();
            self.head = 0;
        }
        v
    }

    fn pop_back(&mut self) -> Bytes {
        let end = self.buf.len();
        let (n, h) = read_suffix(&self.buf, end);
        let v = Bytes::copy_from_slice(&self.buf[end - h - n..end - h]);
        self.buf.truncate(end - n - 2 * h);
        self.count -= 1;
        if self.count == 0 {
            self.buf.clear();
            self.head = 0;
        }
        v
    }

    /// Inserts `v` so that it becomes entry `i`.
    fn insert(&mut self, i: usize, v: &[u8]) {
        if i == 0 {
            return self.push_front(v);
        }
        if i == self.len() {
            return self.push_back(v);
        }
        let n = entry_size(v.len());
        let off = self.offset_of(i);
        self.reserve_back(n);
        let at = self.head as usize + off;
        let old_len = self.buf.len();
        self.buf.resize(old_len + n, 0);
        self.buf.copy_within(at..old_len, at + n);
        write_entry(&mut self.buf[at..at + n], v);
        self.count += 1;
    }

    /// Removes entry `i` and returns it.
    fn remove(&mut self, i: usize) -> Bytes {
        if i == 0 {
            return self.pop_front();
        }
        if i + 1 == self.len() {
            return self.pop_back();
        }
        let (s, e) = self.span(i);
        let head = self.head as usize;
        let (n, h) = read_prefix(self.live(), s);
        let v = Bytes::copy_from_slice(&self.live()[s + h..s + h + n]);
        self.buf.copy_within(head + e.., head + s);
        self.buf.truncate(self.buf.len() - (e - s));
        self.count -= 1;
        v
    }

    /// Replaces entry `i`; returns the old element's length.
    fn set(&mut self, i: usize, v: &[u8]) -> usize {
        let (s, e) = self.span(i);
        let head = self.head as usize;
        let (old, _) = read_prefix(self.live(), s);
        let n = entry_size(v.len());
        if n == e - s {
            write_entry(&mut self.buf[head + s..head + e], v);
            return old;
        }
        self.remove(i);
        self.insert(i, v);
        old
    }

    /// Drops the first `k` entries; returns their payload bytes.
    fn drop_front(&mut self, k: usize) -> usize {
        let mut at = 0;
        let mut payload = 0;
        let data = self.live();
        for _ in 0..k {
            let (n, h) = read_prefix(data, at);
            at += n + 2 * h;
            payload += n;
        }
        self.head += at as u32;
        self.count -= k as u32;
        payload
    }

    /// Drops the last `k` entries; returns their payload bytes.
    fn drop_back(&mut self, k: usize) -> usize {
        let data = self.live();
        let mut end = data.len();
        let mut payload = 0;
        for _ in 0..k {
            let (n, h) = read_suffix(data, end);
            end -= n + 2 * h;
            payload += n;
        }
        let head = self.head as usize;
        self.buf.truncate(head + end);
        self.count -= k as u32;
        payload
    }

    /// Moves entries `i..` into a new chunk.
    fn split_off(&mut self, i: usize) -> Chunk {
        let off = self.offset_of(i);
        let head = self.head as usize;
        let mut tail = Chunk {
            buf: Vec::with_capacity(grow_target(0, self.buf.len() - head - off)),
            head: 0,
            count: (self.len() - i) as u32,
        };
        tail.buf.extend_from_slice(&self.buf[head + off..]);
        self.buf.truncate(head + off);
        self.count = i as u32;
        tail
    }

    /// Removes up to `limit` entries equal to `v` (the last ones when `from_back`);
    /// returns how many were removed.
    fn remove_eq(&mut self, v: &[u8], limit: usize, from_back: bool) -> usize {
        let mut spans = Vec::new();
        {
            let data = self.live();
            let mut at = 0;
            for _ in 0..self.len() {
                let (n, h) = read_prefix(data, at);
                let e = at + n + 2 * h;
                if &data[at + h..at + h + n] == v {
                    spans.push((at, e));
                }
                at = e;
            }
        }
        if spans.len() > limit {
            if from_back {
                spans.drain(..spans.len() - limit);
            } else {
                spans.truncate(limit);
            }
        }
        if spans.is_empty() {
            return 0;
        }
        let removed: usize = spans.iter().map(|(s, e)| e - s).sum();
        let mut nb = Vec::with_capacity(grow_target(0, self.live_bytes() - removed));
        let data = self.live();
        let mut at = 0;
        for (s, e) in &spans {
            nb.extend_from_slice(&data[at..*s]);
            at = *e;
        }
        nb.extend_from_slice(&data[at..]);
        self.buf = nb;
        self.head = 0;
        self.count -= spans.len() as u32;
        spans.len()
    }

    /// Releases free room when the chunk will not grow any more (it is no longer at the end
    /// the list grows from) and the room is worth a reallocation.
    fn seal(&mut self) {
        let live = self.live_bytes();
        if self.buf.capacity() - live > self.buf.capacity() / 8 {
            let mut nb = Vec::with_capacity(live);
            nb.extend_from_slice(self.live());
            self.buf = nb;
            self.head = 0;
        }
    }
}

// ---- LIST ----

/// A list value.
#[derive(Debug, Clone, Default)]
pub struct List {
    chunks: VecDeque<Arc<Chunk>>,
    len: usize,
    bytes: usize,
}

impl List {
    /// Returns an empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Reports whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Returns the payload bytes held (for memory reports and encodings).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Returns the number of chunks (Redis's quicklist node count).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Returns the bytes allocated for the elements (for `MEMORY USAGE`-style reports).
    pub fn allocated(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| c.allocated() + std::mem::size_of::<Chunk>() + 16)
            .sum()
    }

    /// Iterates the chunks, for snapshot serialisation.
    pub fn chunks(&self) -> impl Iterator<Item = &Chunk> {
        self.chunks.iter().map(|c| c.as_ref())
    }

    /// Appends `v` at the tail.
    pub fn push_back(&mut self, v: &[u8]) {
        let n = entry_size(v.len());
        match self.chunks.back_mut() {
            Some(c) if c.has_room(n) => Arc::make_mut(c).push_back(v),
            last => {
                if let Some(c) = last.and_then(Arc::get_mut) {
                    c.seal();
                }
                let mut c = Chunk::default();
                c.push_back(v);
                self.chunks.push_back(Arc::new(c));
            }
        }
        self.len += 1;
        self.bytes += v.len();
    }

    /// Prepends `v` at the head.
    pub fn push_front(&mut self, v: &[u8]) {
        let n = entry_size(v.len());
        match self.chunks.front_mut() {
            Some(c) if c.has_room(n) => Arc::make_mut(c).push_front(v),
            first => {
                if let Some(c) = first.and_then(Arc::get_mut) {
                    c.seal();
                }
                let mut c = Chunk::default();
                c.push_front(v);
                self.chunks.push_front(Arc::new(c));
            }
        }
        self.len += 1;
        self.bytes += v.len();
    }

    /// Removes and returns the head element.
    pub fn pop_front(&mut self) -> Option<Bytes> {
        let c = self.chunks.front_mut()?;
        let c = Arc::make_mut(c);
        let v = c.pop_front();
        if c.is_empty() {
            self.chunks.pop_front();
        }
        self.len -= 1;
        self.bytes -= v.len();
        Some(v)
    }

    /// Removes and returns the tail element.
    pub fn pop_back(&mut self) -> Option<Bytes> {
        let c = self.chunks.back_mut()?;
        let c = Arc::make_mut(c);
        let v = c.pop_back();
        if c.is_empty() {
            self.chunks.pop_back();
        }
        self.len -= 1;
        self.bytes -= v.len();
        Some(v)
    }

    /// Finds the chunk holding element `index` and the position inside it.
    fn locate(&self, index: usize) -> Option<(usize, usize)> {
        if index >= self.len {
            return None;
        }
        // Walk from the nearer end, as quicklist does.
        if index < self.len / 2 {
            let mut i = index;
            for (ci, c) in self.chunks.iter().enumerate() {
                if i < c.len() {
                    return Some((ci, i));
                }
                i -= c.len();
            }
        } else {
            let mut from_end = self.len - 1 - index;
            for (ci, c) in self.chunks.iter().enumerate().rev() {
                if from_end < c.len() {
                    return Some((ci, c.len() - 1 - from_end));
                }
                from_end -= c.len();
            }
        }
        None
    }

    /// Returns element `index` (0-based from the head).
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let (ci, i) = self.locate(index)?;
        Some(self.chunks[ci].get(i))
    }

    /// Replaces element `index`; returns false when out of range.
    pub fn set(&mut self, index: usize, v: &[u8]) -> bool {
        let Some((ci, i)) = self.locate(index) else {
            return false;
        };
        let c = &self.chunks[ci];
        if c.len() > 1 && c.live_bytes() + entry_size(v.len()) > CHUNK_BYTES {
            // A bigger element that would overfill the chunk goes through the splitting path.
            self.remove(index);
            self.insert(index, v);
            return true;
        }
        let old = Arc::make_mut(&mut self.chunks[ci]).set(i, v);
        self.bytes = self.bytes - old + v.len();
        true
    }

    /// Inserts `v` so that it becomes element `index` (`index >= len` appends).
    pub fn insert(&mut self, index: usize, v: &[u8]) {
        if index == 0 {
            return self.push_front(v);
        }
        if index >= self.len {
            return self.push_back(v);
        }
        let Some((ci, i)) = self.locate(index) else {
            return self.push_back(v);
        };
        let n = entry_size(v.len());
        if self.chunks[ci].has_room(n) {
            Arc::make_mut(&mut self.chunks[ci]).insert(i, v);
        } else if i == 0 && ci > 0 && self.chunks[ci - 1].has_room(n) {
            // At a chunk boundary: the previous chunk's tail may have room.
            Arc::make_mut(&mut self.chunks[ci - 1]).push_back(v);
        } else {
            // Split the full chunk at `i`; `v` goes wherever it fits.
            let c = Arc::make_mut(&mut self.chunks[ci]);
            let mut tail = c.split_off(i);
            if c.has_room(n) {
                c.push_back(v);
                self.chunks.insert(ci + 1, Arc::new(tail));
            } else if tail.has_room(n) {
                tail.push_front(v);
                self.chunks.insert(ci + 1, Arc::new(tail));
            } else {
                let mut mid = Chunk::default();
                mid.push_back(v);
                self.chunks.insert(ci + 1, Arc::new(mid));
                self.chunks.insert(ci + 2, Arc::new(tail));
            }
        }
        self.len += 1;
        self.bytes += v.len();
    }

    /// Removes element `index` and returns it.
    pub fn remove(&mut self, index: usize) -> Option<Bytes> {
        let (ci, i) = self.locate(index)?;
        let c = Arc::make_mut(&mut self.chunks[ci]);
        let v = c.remove(i);
        if c.is_empty() {
            self.chunks.remove(ci);
        }
        self.len -= 1;
        self.bytes -= v.len();
        Some(v)
    }

    /// Removes up to `limit` elements equal to `v`, scanning from the head (or from the tail
    /// when `from_back`); returns how many were removed (Redis `LREM`).
    pub fn remove_eq(&mut self, v: &[u8], limit: usize, from_back: bool) -> usize {
        let mut removed = 0;
        let order: Vec<usize> = if from_back {
            (0..self.chunks.len()).rev().collect()
        } else {
            (0..self.chunks.len()).collect()
        };
        let mut emptied = Vec::new();
        for ci in order {
            if removed >= limit {
                break;
            }
            // Only chunks holding a match are written (and so copied if shared).
            if !self.chunks[ci].iter().any(|e| e == v) {
                continue;
            }
            let c = Arc::make_mut(&mut self.chunks[ci]);
            let k = c.remove_eq(v, limit - removed, from_back);
            removed += k;
            if c.is_empty() {
                emptied.push(ci);
            }
        }
        emptied.sort_unstable();
        for ci in emptied.into_iter().rev() {
            self.chunks.remove(ci);
        }
        self.len -= removed;
        self.bytes -= removed * v.len();
        removed
    }

    /// Iterates elements from the head.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// Iterates elements `start..=end` (already clamped to the list) from the head.
    pub fn range(&self, start: usize, end: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let (ci, i) = self.locate(start).unwrap_or((self.chunks.len(), 0));
        let count = if start <= end && end < self.len {
            end - start + 1
        } else {
            0
        };
        self.chunks
            .iter()
            .skip(ci)
            .enumerate()
            .flat_map(move |(k, c)| c.iter().skip(if k == 0 { i } else { 0 }))
            .take(count)
    }

    /// Iterates elements `end..=start` (already clamped) from `end` back towards the head.
    pub fn range_rev(&self, start: usize, end: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let (ci, i) = self.locate(end).unwrap_or((0, 0));
        let count = if start <= end && end < self.len {
            end - start + 1
        } else {
            0
        };
        let skip_chunks = self.chunks.len().saturating_sub(ci + 1);
        self.chunks
            .iter()
            .rev()
            .skip(skip_chunks)
            .enumerate()
            .flat_map(move |(k, c)| {
                let skip = if k == 0 { c.len() - 1 - i } else { 0 };
                c.iter().rev().skip(skip)
            })
            .take(count)
    }

    /// Keeps only elements `start..=end` (clamped); an empty range empties the list.
    pub fn trim(&mut self, start: usize, end: usize) {
        if start > end || start >= self.len {
            *self = List::new();
            return;
        }
        let end = end.min(self.len - 1);
        let mut drop_head = start;
        let mut drop_tail = self.len - 1 - end;
        // Whole chunks first, then the entries of the chunk at each end.
        while let Some(c) = self.chunks.front() {
            if c.len() > drop_head {
                break;
            }
            drop_head -= c.len();
            self.len -= c.len();
            self.bytes -= c.bytes();
            self.chunks.pop_front();
        }
        if drop_head > 0 {
            if let Some(c) = self.chunks.front_mut() {
                self.bytes -= Arc::make_mut(c).drop_front(drop_head);
                self.len -= drop_head;
            }
        }
        while let Some(c) = self.chunks.back() {
            if c.len() > drop_tail {
                break;
            }
            drop_tail -= c.len();
            self.len -= c.len();
            self.bytes -= c.bytes();
            self.chunks.pop_back();
        }
        if drop_tail > 0 {
            if let Some(c) = self.chunks.back_mut() {
                self.bytes -= Arc::make_mut(c).drop_back(drop_tail);
                self.len -= drop_tail;
            }
        }
    }

    /// Builds a list from elements in order.
    pub fn from_iter_bytes<'a, I: IntoIterator<Item = &'a [u8]>>(items: I) -> Self {
        let mut l = List::new();
        for v in items {
            l.push_back(v);
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_check(l: &List, m: &VecDeque<Vec<u8>>) {
        assert_eq!(l.len(), m.len());
        let got: Vec<Vec<u8>> = l.iter().map(|s| s.to_vec()).collect();
        let want: Vec<Vec<u8>> = m.iter().cloned().collect();
        assert_eq!(got, want);
        let back: Vec<Vec<u8>> = l.iter().rev().map(|s| s.to_vec()).collect();
        let want_back: Vec<Vec<u8>> = m.iter().rev().cloned().collect();
        assert_eq!(back, want_back);
        assert_eq!(l.bytes(), m.iter().map(|v| v.len()).sum::<usize>());
        assert_eq!(l.chunks().map(|c| c.len()).sum::<usize>(), m.len());
        assert!(l.chunks().all(|c| !c.is_empty()));
    }

    fn value(rng: &mut impl rand::Rng, step: usize) -> Vec<u8> {
        let n = match rng.gen_range(0..20) {
            0 => rng.gen_range(254..70_000),
            1..=3 => rng.gen_range(200..300),
            _ => rng.gen_range(0..40),
        };
        vec![b'a' + (step % 26) as u8; n]
    }

    #[test]
    fn entry_encoding_round_trips_at_every_width() {
        for n in [0, 1, 253, 254, 255, 65535, 65536, 100_000] {
            let v = vec![7u8; n];
            let mut buf = vec![0u8; entry_size(n)];
            write_entry(&mut buf, &v);
            assert_eq!(read_prefix(&buf, 0), (n, len_field(n)));
            assert_eq!(read_suffix(&buf, buf.len()), (n, len_field(n)));
        }
        assert_eq!(entry_size(200), 202);
    }

    #[test]
    fn behaves_like_a_deque() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut l = List::new();
        let mut m: VecDeque<Vec<u8>> = VecDeque::new();
        for step in 0..20_000 {
            let v = value(&mut rng, step);
            match rng.gen_range(0..10) {
                0 | 1 => {
                    l.push_back(&v);
                    m.push_back(v);
                }
                2 | 3 => {
                    l.push_front(&v);
                    m.push_front(v);
                }
                4 => assert_eq!(l.pop_front().map(|b| b.to_vec()), m.pop_front()),
                5 => assert_eq!(l.pop_back().map(|b| b.to_vec()), m.pop_back()),
                6 if !m.is_empty() => {
                    let i = rng.gen_range(0..=m.len());
                    l.insert(i, &v);
                    m.insert(i, v);
                }
                7 if !m.is_empty() => {
                    let i = rng.gen_range(0..m.len());
                    assert_eq!(l.remove(i).map(|b| b.to_vec()), m.remove(i));
                }
                8 if !m.is_empty() => {
                    let i = rng.gen_range(0..m.len());
                    assert!(l.set(i, &v));
                    m[i] = v;
                }
                9 if !m.is_empty() => {
                    let i = rng.gen_range(0..m.len());
                    assert_eq!(l.get(i), Some(m[i].as_slice()));
                }
                _ => {}
            }
            if step % 1000 == 0 {
                model_check(&l, &m);
            }
        }
        model_check(&l, &m);
        let n = m.len();
        let got: Vec<Vec<u8>> = l.range(3, n - 4).map(|s| s.to_vec()).collect();
        assert_eq!(
            got,
            m.iter().skip(3).take(n - 6).cloned().collect::<Vec<_>>()
        );
        let got: Vec<Vec<u8>> = l.range_rev(3, n - 4).map(|s| s.to_vec()).collect();
        assert_eq!(
            got,
            m.iter()
                .skip(3)
                .take(n - 6)
                .rev()
                .cloned()
                .collect::<Vec<_>>()
        );
        l.trim(5, n - 10);
        let m2: VecDeque<Vec<u8>> = m.iter().skip(5).take(n - 14).cloned().collect();
        model_check(&l, &m2);
    }

    #[test]
    fn remove_eq_counts_from_either_end() {
        let mut l = List::new();
        let mut m = VecDeque::new();
        for i in 0..5000 {
            let v = if i % 3 == 0 {
                b"x".to_vec()
            } else {
                format!("v{i}").into_bytes()
            };
            l.push_back(&v);
            m.push_back(v);
        }
        let total = m.iter().filter(|v| v.as_slice() == b"x").count();
        assert_eq!(l.remove_eq(b"x", 10, false), 10);
        let mut seen = 0;
        m.retain(|v| {
            if v.as_slice() == b"x" && seen < 10 {
                seen += 1;
                return false;
            }
            true
        });
        model_check(&l, &m);
        assert_eq!(l.remove_eq(b"x", 7, true), 7);
        let mut seen = 0;
        let mut v: Vec<Vec<u8>> = m.into_iter().collect();
        for i in (0..v.len()).rev() {
            if v[i].as_slice() == b"x" && seen < 7 {
                seen += 1;
                v.remove(i);
            }
        }
        let m: VecDeque<Vec<u8>> = v.into_iter().collect();
        model_check(&l, &m);
        assert_eq!(l.remove_eq(b"x", usize::MAX, false), total - 17);
        assert_eq!(l.len(), 5000 - total);
    }

    #[test]
    fn big_replacements_split_full_chunks() {
        let mut l = List::new();
        for i in 0..200 {
            l.push_back(format!("{i:0100}").as_bytes());
        }
        let big = vec![b'z'; 40_000];
        assert!(l.set(100, &big));
        assert_eq!(l.get(100), Some(&big[..]));
        assert_eq!(l.len(), 200);
        assert!(l
            .chunks()
            .all(|c| c.len() == 1 || c.allocated() <= CHUNK_BYTES));
        assert_eq!(l.get(99), Some(format!("{:0100}", 99).as_bytes()));
        assert_eq!(l.get(101), Some(format!("{:0100}", 101).as_bytes()));
    }

    #[test]
    fn records_pack_densely() {
        let mut l = List::new();
        let rec = [b'r'; 200];
        for _ in 0..10_000 {
            l.push_back(&rec);
        }
        // 70 records of 202 bytes fill a 14 KiB buffer; a listpack node holds 40.
        assert_eq!(l.chunks().next().map(|c| c.len()), Some(70));
        let per_record = l.allocated() as f64 / 10_000.0;
        // Redis 7.0: 204 bytes per listpack entry plus node overheads.
        assert!(per_record < 206.0, "{per_record} bytes per record");
    }

    #[test]
    fn clone_shares_chunks_until_written() {
        let mut l = List::new();
        for i in 0..10_000 {
            l.push_back(format!("record-{i}").as_bytes());
        }
        let snap = l.clone();
        l.push_back(b"new");
        let shared = l
            .chunks
            .iter()
            .zip(snap.chunks.iter())
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert_eq!(shared, snap.chunks.len() - 1);
        assert_eq!(snap.len(), 10_000);
        l.pop_front();
        assert_eq!(snap.get(0), Some(&b"record-0"[..]));
        assert_eq!(l.get(0), Some(&b"record-1"[..]));
    }
}
