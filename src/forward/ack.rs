//! Acks and resend deduplication (`shared/spec/fluent.md` §1.5, §8 items 1–2).
//!
//! An ack is the msgpack map `{"ack": <chunk id>}`, the id echoed byte for byte as a str
//! (fluentd's ids end with a newline; Fluent Bit compares length and bytes exactly).
//!
//! fluentd resends a whole chunk after `ack_response_timeout` or a lost connection, which
//! is where users' duplicates come from. kura remembers the ids it stored for a bounded
//! window (time and count); a resend of a remembered id is acked again without storing it.
//! The id is keyed together with the tag: Fluent Bit derives ids from the payload alone,
//! so equal payloads under two tags must not be mistaken for one chunk.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use super::msgpack;

/// Returns the ack for `chunk`: `81 A3 'ack' <str chunk>`, written in one call.
pub fn ack_bytes(chunk: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk.len() + 8);
    msgpack::put_map_len(&mut out, 1);
    msgpack::put_str(&mut out, b"ack");
    msgpack::put_str(&mut out, chunk);
    out
}

/// The chunk ids stored recently, with the write-stream offset their commands ended at
/// (a resend is acked once that offset is durable, like the original).
#[derive(Debug)]
pub struct Dedup {
    window_ms: i64,
    max: usize,
    offsets: HashMap<Bytes, u64, ahash::RandomState>,
    /// Ids in the order they were stored, with when: expiry walks from the front.
    order: VecDeque<(Bytes, i64)>,
}

/// Builds the key an id is remembered under: tag length, tag, id.
fn key(tag: &[u8], chunk: &[u8]) -> Bytes {
    let mut k = Vec::with_capacity(4 + tag.len() + chunk.len());
    k.extend_from_slice(&(tag.len() as u32).to_be_bytes());
    k.extend_from_slice(tag);
    k.extend_from_slice(chunk);
    Bytes::from(k)
}

impl Dedup {
    /// Remembers ids for `window_secs` seconds, at most `max` of them (0 for either
    /// disables deduplication).
    pub fn new(window_secs: u64, max: usize) -> Dedup {
        Dedup {
            window_ms: (window_secs as i64).saturating_mul(1000),
            max,
            offsets: HashMap::default(),
            order: VecDeque::new(),
        }
    }

    /// Reports whether deduplication is on.
    pub fn enabled(&self) -> bool {
        self.window_ms > 0 && self.max > 0
    }

    /// Returns the offset a remembered chunk was stored at, if `chunk` of `tag` was stored
    /// within the window.
    pub fn seen(&mut self, tag: &[u8], chunk: &[u8], now_ms: i64) -> Option<u64> {
        if !self.enabled() {
            return None;
        }
        self.expire(now_ms);
        self.offsets.get(&key(tag, chunk)[..]).copied()
    }

    /// Records that `chunk` of `tag` was stored, its commands ending at `offset`.
    pub fn remember(&mut self, tag: &[u8], chunk: &[u8], offset: u64, now_ms: i64) {
        if !self.enabled() {
            return;
        }
        let k = key(tag, chunk);
        if self.offsets.insert(k.clone(), offset).is_none() {
            self.order.push_back((k, now_ms));
        }
        while self.order.len() > self.max {
            self.forget_oldest();
        }
    }

    /// Returns how many ids are remembered.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Reports whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    fn expire(&mut self, now_ms: i64) {
        while let Some((_, at)) = self.order.front() {
            if now_ms - at < self.window_ms {
                break;
            }
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        if let Some((k, _)) = self.order.pop_front() {
            self.offsets.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_bytes_echo_the_id_exactly() {
        // fluentd: 25 bytes ending in a newline -> 81 A3 'ack' B9 <25 bytes>
        let id = b"p8n9gmxTQVC8/nh2wlKKeQ==\n";
        let mut want = b"\x81\xa3ack\xb9".to_vec();
        want.extend_from_slice(id);
        assert_eq!(ack_bytes(id), want);
        // Fluent Bit: 24 bytes -> B8
        assert_eq!(ack_bytes(&id[..24])[5], 0xb8);
    }

    #[test]
    fn remembers_within_the_window_and_the_count() {
        let mut d = Dedup::new(10, 2);
        d.remember(b"t", b"a", 5, 0);
        assert_eq!(d.seen(b"t", b"a", 9_999), Some(5));
        // Same id under another tag is another chunk.
        assert_eq!(d.seen(b"u", b"a", 0), None);
        assert_eq!(d.seen(b"t", b"a", 10_000), None, "expired after 10 s");
        d.remember(b"t", b"1", 1, 20_000);
        d.remember(b"t", b"2", 2, 20_000);
        d.remember(b"t", b"3", 3, 20_000);
        assert_eq!(d.len(), 2);
        assert_eq!(
            d.seen(b"t", b"1", 20_000),
            None,
            "oldest dropped at the cap"
        );
        assert_eq!(d.seen(b"t", b"3", 20_000), Some(3));
    }

    #[test]
    fn tag_and_id_boundaries_do_not_alias() {
        let mut d = Dedup::new(10, 10);
        d.remember(b"ab", b"c", 1, 0);
        assert_eq!(d.seen(b"a", b"bc", 0), None);
        let mut off = Dedup::new(0, 10);
        off.remember(b"t", b"a", 1, 0);
        assert_eq!(off.seen(b"t", b"a", 0), None);
    }
}
