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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::message::{Entries, EntryError, Step};
use super::msgpack::{self, Reader};
use super::record::{
    put_float_time, put_u64, to_fields, to_json, to_json_from, to_msgpack, TimeField, TimeValue,
};
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

/// Where a request's events come from.
pub enum Events<'a> {
    /// Message mode: one event, already parsed (or invalid).
    One(&'a Result<(EventTime, Bytes), EntryError>),
    /// Forward / PackedForward: a run of encoded entries (decompressed).
    Run(&'a [u8]),
}

/// The per-chunk state records are added to.
struct Builder<'r> {
    route: &'r CompiledRoute,
    tag: &'r [u8],
    seq: &'r Sequence,
    now_ms: i64,
    now_ns: u64,
    out: Vec<u8>,
    groups: Vec<Group>,
    /// Index into `groups` by key.
    group_of: HashMap<Vec<u8>, usize>,
    current: Option<usize>,
    hash_spans: Vec<(usize, usize)>,
    hash_records: Vec<HashRecord>,
    time_text: Vec<u8>,
    last_time: Option<(i64, u32)>,
    key_buf: Vec<u8>,
    last_key_secs: Option<i64>,
    /// Bytes held by group keys outside `out`.
    key_bytes: usize,
}

/// Why a request's events cannot become commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The entry run is corrupt from some point on.
    #[error(transparent)]
    Corrupt(#[from] msgpack::Error),
    /// The commands would exceed [`output_budget`] bytes: a small request that maps to a
    /// huge one (a long tag copied into the key of each of many tiny records).
    #[error("mapped records would exceed {0} bytes")]
    TooLarge(usize),
}

/// The most bytes a request of `input_len` encoded bytes may map to. Honest records grow
/// a few times at most (JSON text, the time field, a key per hash record); this bounds
/// what a hostile one can make kura allocate.
pub fn output_budget(input_len: usize) -> usize {
    input_len.saturating_mul(16).saturating_add(1 << 20)
}

impl Builder<'_> {
    /// Adds one event whose record map starts at `r`, reading exactly the record.
    /// `Ok(false)`: the record cannot be stored (a hash record without fields);
    /// `Err`: the bytes end inside the record.
    fn add(&mut self, time: EventTime, r: &mut Reader<'_>) -> Result<bool, msgpack::Error> {
        let route = self.route;
        let (secs, nanos) = time.resolve(self.now_ms);
        // The time field's value, formatted once per distinct time.
        if self.last_time != Some((secs, nanos)) {
            self.time_text.clear();
            match &route.time_format {
                Some(f) => f.render(secs, nanos, route.utc_offset_secs, &mut self.time_text),
                None => put_float_time(&mut self.time_text, secs, nanos),
            }
            self.last_time = Some((secs, nanos));
        }
        let value = match route.time_format {
            Some(_) => TimeValue::Text(&self.time_text),
            None => TimeValue::Float {
                secs,
                nanos,
                decimal: &self.time_text,
            },
        };
        let field = TimeField {
            key: &route.time_key,
            value,
        };
        let time = (!route.time_key.is_empty()).then_some(&field);
        // The key, rendered again only when the template has time parts and the second
        // changed.
        let key_changed = self.last_key_secs.is_none()
            || (route.key.has_time() && self.last_key_secs != Some(secs));
        if key_changed {
            self.key_buf.clear();
            route.key.render(self.tag, secs, &mut self.key_buf);
            self.last_key_secs = Some(secs);
        }
        let out = &mut self.out;
        let start = out.len();
        match route.mode {
            RouteMode::List => {
                let done = match route.format {
                    RecordFormat::Json => to_json_from(r, time, out),
                    RecordFormat::Msgpack => to_msgpack(r.skip()?, time, out),
                };
                if let Err(e) = done {
                    out.truncate(start);
                    return Err(e);
                }
                let span = (start, out.len());
                // The group is looked up again only when the key was rendered anew.
                let g = match self.current {
                    Some(i) if !key_changed => i,
                    // By hash, not by scanning the groups: a chunk whose every event
                    // falls in another hour of a dated key makes as many groups as events.
                    _ => match self.group_of.get(&self.key_buf) {
                        Some(&i) => i,
                        None => {
                            self.key_bytes += 2 * self.key_buf.len();
                            self.groups.push(Group {
                                key: self.key_buf.clone(),
                                records: Vec::new(),
                            });
                            let i = self.groups.len() - 1;
                            self.group_of.insert(self.key_buf.clone(), i);
                            i
                        }
                    },
                };
                self.current = Some(g);
                self.groups[g].records.push(span);
            }
            RouteMode::Hash => {
                let record = r.skip()?;
                let first_span = self.hash_spans.len();
                if to_fields(record, time, out, &mut self.hash_spans).is_err()
                    || self.hash_spans.len() == first_span
                {
                    // No field at all: HSET needs one.
                    out.truncate(start);
                    self.hash_spans.truncate(first_span);
                    return Ok(false);
                }
                let json = if route.publish {
                    let j = out.len();
                    to_json(record, time, out)?;
                    Some((j, out.len()))
                } else {
                    None
                };
                let channel = out.len();
                out.extend_from_slice(&self.key_buf);
                let channel_end = out.len();
                out.push(b'.');
                put_u64(out, self.seq.next(self.now_ns));
                self.hash_records.push(HashRecord {
                    key: (channel, out.len()),
                    channel: (channel, channel_end),
                    fields: (first_span, self.hash_spans.len()),
                    json,
                });
            }
        }
        Ok(true)
    }
}

/// Builds the commands storing `events` of `tag` under `route`; fails only when an entry
/// run turns out corrupt (the request is then not stored at all).
///
/// `now_ms` stands in for absent times and anchors `ttl`; `input_len` is the size of the
/// encoded events, to size the output once.
pub fn map_events(
    route: &CompiledRoute,
    tag: &[u8],
    events: Events<'_>,
    input_len: usize,
    now_ms: i64,
    seq: &Sequence,
) -> Result<Mapped, MapError> {
    let mut b = Builder {
        route,
        tag,
        seq,
        now_ms,
        now_ns: (now_ms.max(0) as u64).saturating_mul(1_000_000),
        // JSON runs about a fifth longer than the msgpack it comes from, plus the time
        // field: sized once, the buffer is not copied as it grows.
        out: Vec::with_capacity(input_len + input_len / 4 + 64),
        groups: Vec::new(),
        group_of: HashMap::new(),
        current: None,
        hash_spans: Vec::new(),
        hash_records: Vec::new(),
        time_text: Vec::new(),
        last_time: None,
        key_buf: Vec::new(),
        last_key_secs: None,
        key_bytes: 0,
    };
    let budget = output_budget(input_len);
    let mut mapped = Mapped::default();
    let (mut run, mut one) = match events {
        Events::Run(s) => (Some(Entries::new(s)), None),
        Events::One(e) => (None, Some(e)),
    };
    loop {
        let step: Option<Step<bool>> = match (run.as_mut(), one.take()) {
            (Some(run), _) => run.next_with(|time, r| b.add(time, r)),
            (None, Some(Ok((time, record)))) => {
                Some(b.add(*time, &mut Reader::new(record)).map_err(Err))
            }
            (None, Some(Err(e))) => Some(Err(Ok(*e))),
            (None, None) => None,
        };
        match step {
            None => break,
            Some(Ok(true)) => mapped.records += 1,
            Some(Ok(false)) | Some(Err(Ok(_))) => mapped.invalid += 1,
            Some(Err(Err(e))) => return Err(MapError::Corrupt(e)),
        }
        if b.out.len() + b.key_bytes > budget {
            return Err(MapError::TooLarge(budget));
        }
    }
    let Builder {
        out,
        groups,
        hash_spans,
        hash_records,
        ..
    } = b;
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
    Ok(mapped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::route::{Route, Router};

    #[test]
    fn a_long_tag_on_many_tiny_records_is_refused_not_multiplied() {
        // 100 000 entries [1, {}] (3 bytes each) under a 64 KiB tag on a hash route would
        // copy the tag into 100 000 keys: about 6.5 GB from a 300 KB request.
        let router = Router::new(&[Route {
            mode: RouteMode::Hash,
            key: "${tag}.%s".into(),
            time_key: "t".into(),
            ..Route::default()
        }])
        .unwrap();
        let route = router.find(b"x").unwrap();
        let tag = vec![b'a'; 64 * 1024];
        let stream: Vec<u8> = std::iter::repeat_n([0x92, 0x01, 0x80], 100_000)
            .flatten()
            .collect();
        let seq = Sequence::default();
        let got = map_events(route, &tag, Events::Run(&stream), stream.len(), 0, &seq);
        assert_eq!(
            got.err(),
            Some(MapError::TooLarge(output_budget(stream.len())))
        );
        // The same records under a short tag map fine.
        let ok = map_events(route, b"app", Events::Run(&stream), stream.len(), 0, &seq).unwrap();
        assert_eq!(ok.records, 100_000);
    }
}
