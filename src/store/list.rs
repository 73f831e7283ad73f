//! List values: a deque of shared, packed chunks, like Redis's quicklist of listpacks.
//!
//! Each chunk packs its elements into one byte buffer (plus a `u32` offset per element), so
//! a 200-byte log record costs about 204 bytes. Chunks are `Arc`ed: cloning a list for a
//! snapshot copies one pointer per chunk, and a later write copies only the chunk it changes.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

/// Target payload bytes per chunk (Redis's `list-max-listpack-size -2`, 8 KiB).
pub const CHUNK_BYTES: usize = 8 * 1024;
/// Most elements per chunk, to bound the offset array and in-chunk moves.
pub const CHUNK_ENTRIES: usize = 512;

/// A run of list elements packed into one buffer.
#[derive(Debug, Clone, Default)]
pub struct Chunk {
    data: Vec<u8>,
    /// Start offset of each element in `data`; element `i` ends where `i + 1` starts.
    offs: Vec<u32>,
}

impl Chunk {
    fn with_capacity(bytes: usize) -> Self {
        Chunk {
            data: Vec::with_capacity(bytes),
            offs: Vec::new(),
        }
    }

    /// Returns the number of elements.
    pub fn len(&self) -> usize {
        self.offs.len()
    }

    /// Reports whether the chunk holds no element.
    pub fn is_empty(&self) -> bool {
        self.offs.is_empty()
    }

    /// Returns the payload bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    fn bounds(&self, i: usize) -> (usize, usize) {
        let start = self.offs[i] as usize;
        let end = self
            .offs
            .get(i + 1)
            .map_or(self.data.len(), |o| *o as usize);
        (start, end)
    }

    /// Returns element `i`.
    pub fn get(&self, i: usize) -> &[u8] {
        let (s, e) = self.bounds(i);
        &self.data[s..e]
    }

    /// Iterates the elements in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    fn has_room(&self, add: usize) -> bool {
        self.is_empty() || (self.data.len() + add <= CHUNK_BYTES && self.offs.len() < CHUNK_ENTRIES)
    }

    fn insert(&mut self, i: usize, v: &[u8]) {
        let at = if i == self.len() {
            self.data.len()
        } else {
            self.offs[i] as usize
        };
        self.data.splice(at..at, v.iter().copied());
        for o in &mut self.offs[i..] {
            *o += v.len() as u32;
        }
        self.offs.insert(i, at as u32);
    }

    fn remove(&mut self, i: usize) -> Bytes {
        let (s, e) = self.bounds(i);
        let out = Bytes::copy_from_slice(&self.data[s..e]);
        self.data.drain(s..e);
        self.offs.remove(i);
        let n = (e - s) as u32;
        for o in &mut self.offs[i..] {
            *o -= n;
        }
        out
    }
}

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

    /// Iterates the chunks, for snapshot serialisation.
    pub fn chunks(&self) -> impl Iterator<Item = &Chunk> {
        self.chunks.iter().map(|c| c.as_ref())
    }

    /// Appends `v` at the tail.
    pub fn push_back(&mut self, v: &[u8]) {
        match self.chunks.back_mut() {
            Some(c) if c.has_room(v.len()) => {
                let c = Arc::make_mut(c);
                let n = c.len();
                c.insert(n, v);
            }
            _ => {
                let mut c = Chunk::with_capacity(v.len().max(CHUNK_BYTES));
                c.insert(0, v);
                self.chunks.push_back(Arc::new(c));
            }
        }
        self.len += 1;
        self.bytes += v.len();
    }

    /// Prepends `v` at the head.
    pub fn push_front(&mut self, v: &[u8]) {
        match self.chunks.front_mut() {
            Some(c) if c.has_room(v.len()) => Arc::make_mut(c).insert(0, v),
            _ => {
                let mut c = Chunk::with_capacity(v.len().max(CHUNK_BYTES));
                c.insert(0, v);
                self.chunks.push_front(Arc::new(c));
            }
        }
        self.len += 1;
        self.bytes += v.len();
    }

    /// Removes and returns the head element.
    pub fn pop_front(&mut self) -> Option<Bytes> {
        let c = self.chunks.front_mut()?;
        let v = Arc::make_mut(c).remove(0);
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
        let last = c.len() - 1;
        let v = Arc::make_mut(c).remove(last);
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
        let c = Arc::make_mut(&mut self.chunks[ci]);
        let old = c.remove(i);
        c.insert(i, v);
        self.bytes = self.bytes - old.len() + v.len();
        true
    }

    /// Inserts `v` so that it becomes element `index` (`index == len` appends).
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
        if self.chunks[ci].has_room(v.len()) {
            Arc::make_mut(&mut self.chunks[ci]).insert(i, v);
        } else {
            // Split the chunk at `i` and put `v` at the head of the second half.
            let c = Arc::make_mut(&mut self.chunks[ci]);
            let mut tail = Chunk::with_capacity(CHUNK_BYTES);
            while c.len() > i {
                let last = c.len() - 1;
                let e = c.remove(last);
                tail.insert(0, &e);
            }
            tail.insert(0, v);
            self.chunks.insert(ci + 1, Arc::new(tail));
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

    /// Keeps only elements `start..=end` (clamped); an empty range empties the list.
    pub fn trim(&mut self, start: usize, end: usize) {
        if start > end || start >= self.len {
            *self = List::new();
            return;
        }
        let end = end.min(self.len - 1);
        let drop_tail = self.len - 1 - end;
        // Whole chunks first, then element by element.
        let mut drop_head = start;
        while let Some(c) = self.chunks.front() {
            if c.len() <= drop_head {
                drop_head -= c.len();
                self.len -= c.len();
                self.bytes -= c.bytes();
                self.chunks.pop_front();
            } else {
                break;
            }
        }
        for _ in 0..drop_head {
            self.pop_front();
        }
        let mut drop_tail = drop_tail;
        while let Some(c) = self.chunks.back() {
            if c.len() <= drop_tail {
                drop_tail -= c.len();
                self.len -= c.len();
                self.bytes -= c.bytes();
                self.chunks.pop_back();
            } else {
                break;
            }
        }
        for _ in 0..drop_tail {
            self.pop_back();
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
        assert_eq!(l.bytes(), m.iter().map(|v| v.len()).sum::<usize>());
    }

    #[test]
    fn behaves_like_a_deque() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut l = List::new();
        let mut m: VecDeque<Vec<u8>> = VecDeque::new();
        for step in 0..20_000 {
            let v = vec![b'a' + (step % 26) as u8; rng.gen_range(0..300)];
            match rng.gen_range(0..8) {
                0 | 1 => {
                    l.push_back(&v);
                    m.push_back(v);
                }
                2 => {
                    l.push_front(&v);
                    m.push_front(v);
                }
                3 => assert_eq!(l.pop_front().map(|b| b.to_vec()), m.pop_front()),
                4 => assert_eq!(l.pop_back().map(|b| b.to_vec()), m.pop_back()),
                5 if !m.is_empty() => {
                    let i = rng.gen_range(0..=m.len());
                    l.insert(i, &v);
                    m.insert(i, v);
                }
                6 if !m.is_empty() => {
                    let i = rng.gen_range(0..m.len());
                    assert_eq!(l.remove(i).map(|b| b.to_vec()), m.remove(i));
                }
                7 if !m.is_empty() => {
                    let i = rng.gen_range(0..m.len());
                    assert!(l.set(i, &v));
                    m[i] = v;
                }
                _ => {}
            }
        }
        model_check(&l, &m);
        let n = m.len();
        let got: Vec<Vec<u8>> = l.range(3, n - 4).map(|s| s.to_vec()).collect();
        assert_eq!(
            got,
            m.iter().skip(3).take(n - 6).cloned().collect::<Vec<_>>()
        );
        l.trim(5, n - 10);
        let m2: VecDeque<Vec<u8>> = m.iter().skip(5).take(n - 14).cloned().collect();
        model_check(&l, &m2);
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
    }
}
