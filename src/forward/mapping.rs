//! A decoded chunk becomes a few commands (DESIGN.md "Forward -> store mapping", issue 3
//! point 6). No store access here: the commands run through `cmd::exec` like any other.
//!
//! - list mode: records grouped by rendered key, one `RPUSH key r1 … rN` per key per
//!   chunk, then `LTRIM key -maxlen -1` and `PEXPIREAT key <abs ms>` when configured;
//! - hash mode: fluent-plugin-redis's layout, one `HSET <key>.<seq> field value …` per
//!   record, where fluent-plugin-redis's `<index>` (restarted at 0 for every chunk, so a
//!   second chunk of the same minute overwrote the first, spec §5.1) is replaced by a
//!   sequence that never repeats: at least the wall clock in nanoseconds and always above
//!   the previous one, so it stays unique across chunks, connections and restarts;
//! - `publish`: `PUBLISH <key> <record>` per record, for live tailing (the hash-mode
//!   channel is the rendered key without the sequence).

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::message::{Entries, Entry, EntryError};
use super::msgpack;
use super::record::{to_fields, to_json, to_msgpack, TimeField, TimeValue};
use super::route::{CompiledRoute, RecordFormat, RouteMode};
use super::time::EventTime;
use crate::cmd::Argv;

/// The commands for one chunk and what they hold.
#[derive(Debug, Default)]
pub struct Mapped {
    /// Commands, in the order they must run.
    pub commands: Vec<Argv>,
    /// Records the commands store.
    pub records: u64,
    /// Events dropped as invalid.
    pub invalid: u64,
}

/// The hash-mode key sequence: unique per server run and across restarts (see module
/// docs). One per forward door.
#[derive(Debug, Default)]
pub struct Sequence(AtomicU64);

impl Sequence {
    /// Returns the next value: `max(previous + 1, now_ns)`.
    pub fn next(&self, now_ns: u64) -> u64 {
        let mut prev = self.0.load(Ordering::Relaxed);
        loop {
            let next = (prev + 1).max(now_ns);
            match self
                .0
                .compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(p) => prev = p,
            }
        }
    }
}

/// One hash-mode record, as byte ranges of the chunk's output buffer.
struct HashRecord {
    /// `<rendered key>.<seq>`.
    key: (usize, usize),
    /// The rendered key alone: the PUBLISH channel.
    channel: (usize, usize),
    /// Which field/value spans are this record's.
    fields: (usize, usize),
    /// The record as JSON, when published.
    json: Option<(usize, usize)>,
}

/// Records of one key, as byte ranges of the chunk's output buffer.
struct Group {
    key: Vec<u8>,
    records: Vec<(usize, usize)>,
}

/// Builds the commands storing `events` of `tag` under `route`.
///
/// `now_ms` stands in for absent times and anchors `ttl`; `events` yields the entries
/// (invalid ones as their error). Fails only when an entry stream turns out corrupt.
pub fn map_events<'a>(
    route: &CompiledRoute,
    tag: &[u8],
    events: impl Iterator<Item = Result<Entry<'a>, EntryError>>,
    now_ms: i64,
    seq: &Sequence,
) -> Mapped {
    let mut out = Vec::new();
    let mut mapped = Mapped::default();
    let mut groups: Vec<Group> = Vec::new();
    let mut hash_spans: Vec<(usize, usize)> = Vec::new();
    let mut hash_records: Vec<HashRecord> = Vec::new();
    let mut time_text = Vec::new();
    let mut last_time: Option<(i64, u32)> = None;
    let mut key_buf = Vec::new();
    let mut last_key_secs: Option<i64> = None;
    let now_ns = (now_ms.max(0) as u64).saturating_mul(1_000_000);
    for event in events {
        let entry = match event {
            Ok(e) => e,
            Err(_) => {
                mapped.invalid += 1;
                continue;
            }
        };
        let (secs, nanos) = entry.time.resolve(now_ms);
        // The time field's value, formatted once per distinct time.
        let time_value = match &route.time_format {
            Some(f) => {
                if last_time != Some((secs, nanos)) {
                    time_text.clear();
                    f.render(secs, nanos, route.utc_offset_secs, &mut time_text);
                    last_time = Some((secs, nanos));
                }
                TimeValue::Text(&time_text)
            }
            None => TimeValue::Float { secs, nanos },
        };
        let time = TimeField {
            key: &route.time_key,
            value: time_value,
        };
        let time = (!route.time_key.is_empty()).then_some(&time);
        // The key, rendered again only when the template has time parts and the second
        // changed.
        if last_key_secs.is_none() || (route.key.has_time() && last_key_secs != Some(secs)) {
            key_buf.clear();
            route.key.render(tag, secs, &mut key_buf);
            last_key_secs = Some(secs);
        }
        match route.mode {
            RouteMode::List => {
                let start = out.len();
                let ok = match route.format {
                    RecordFormat::Json => to_json(entry.record, time, &mut out),
                    RecordFormat::Msgpack => to_msgpack(entry.record, time, &mut out),
                };
                if ok.is_err() {
                    out.truncate(start);
                    mapped.invalid += 1;
                    continue;
                }
                let span = (start, out.len());
                match groups.iter_mut().rev().find(|g| g.key == key_buf) {
                    Some(g) => g.records.push(span),
                    None => groups.push(Group {
                        key: key_buf.clone(),
                        records: vec![span],
                    }),
                }
            }
            RouteMode::Hash => {
                let start = out.len();
                let first_span = hash_spans.len();
                if to_fields(entry.record, time, &mut out, &mut hash_spans).is_err()
                    || hash_spans.len() == first_span
                {
                    // Undecodable, or no field at all (HSET needs one).
                    out.truncate(start);
                    hash_spans.truncate(first_span);
                    mapped.invalid += 1;
                    continue;
                }
                let json = if route.publish {
                    let j = out.len();
                    if to_json(entry.record, time, &mut out).is_err() {
                        out.truncate(start);
                        hash_spans.truncate(first_span);
                        mapped.invalid += 1;
                        continue;
                    }
                    Some((j, out.len()))
                } else {
                    None
                };
                let channel = out.len();
                out.extend_from_slice(&key_buf);
                let channel_end = out.len();
                out.push(b'.');
                let mut num = [0u8; 20];
                let n = seq.next(now_ns);
                out.extend_from_slice(crate::persist::rdb::listpack::fmt_i64(
                    n.min(i64::MAX as u64) as i64,
                    &mut num,
                ));
                hash_records.push(HashRecord {
                    key: (channel, out.len()),
                    channel: (channel, channel_end),
                    fields: (first_span, hash_spans.len()),
                    json,
                });
            }
        }
        mapped.records += 1;
    }
    let out = Bytes::from(out);
    let piece = |(a, b): (usize, usize)| out.slice(a..b);
    let expire_at = (route.ttl > 0).then(|| {
        let at = now_ms.saturating_add((route.ttl as i64).saturating_mul(1000));
        Bytes::from(at.to_string())
    });
    match route.mode {
        RouteMode::List => {
            for g in &groups {
                let key = Bytes::copy_from_slice(&g.key);
                let mut push = Vec::with_capacity(g.records.len() + 2);
                push.push(Bytes::from_static(b"RPUSH"));
                push.push(key.clone());
                push.extend(g.records.iter().map(|&s| piece(s)));
                mapped.commands.push(push);
                if route.maxlen > 0 {
                    mapped.commands.push(vec![
                        Bytes::from_static(b"LTRIM"),
                        key.clone(),
                        Bytes::from(format!("-{}", route.maxlen)),
                        Bytes::from_static(b"-1"),
                    ]);
                }
                if let Some(at) = &expire_at {
                    mapped.commands.push(vec![
                        Bytes::from_static(b"PEXPIREAT"),
                        key.clone(),
                        at.clone(),
                    ]);
                }
                if route.publish {
                    for &s in &g.records {
                        mapped.commands.push(vec![
                            Bytes::from_static(b"PUBLISH"),
                            key.clone(),
                            piece(s),
                        ]);
                    }
                }
            }
        }
        RouteMode::Hash => {
            for r in &hash_records {
                let key = piece(r.key);
                let (from, to) = r.fields;
                let mut hset = Vec::with_capacity(2 + to - from);
                hset.push(Bytes::from_static(b"HSET"));
                hset.push(key.clone());
                hset.extend(hash_spans[from..to].iter().map(|&s| piece(s)));
                mapped.commands.push(hset);
                if let Some(at) = &expire_at {
                    mapped
                        .commands
                        .push(vec![Bytes::from_static(b"PEXPIREAT"), key, at.clone()]);
                }
                if let Some(j) = r.json {
                    mapped.commands.push(vec![
                        Bytes::from_static(b"PUBLISH"),
                        piece(r.channel),
                        piece(j),
                    ]);
                }
            }
        }
    }
    mapped
}

/// Returns the entries of a Message-mode request as a one-item run.
pub fn message_event(
    event: &Result<(EventTime, Bytes), EntryError>,
) -> impl Iterator<Item = Result<Entry<'_>, EntryError>> {
    std::iter::once(match event {
        Ok((time, record)) => Ok(Entry {
            time: *time,
            record,
        }),
        Err(e) => Err(*e),
    })
}

/// Returns the entries of a (decompressed) run, the corrupt tail reported through
/// `corrupt`.
pub fn stream_events<'a>(
    stream: &'a [u8],
    corrupt: &'a mut Option<msgpack::Error>,
) -> impl Iterator<Item = Result<Entry<'a>, EntryError>> + 'a {
    Entries::new(stream).map_while(move |e| match e {
        Ok(e) => Some(Ok(e)),
        Err(Ok(invalid)) => Some(Err(invalid)),
        Err(Err(c)) => {
            *corrupt = Some(c);
            None
        }
    })
}
