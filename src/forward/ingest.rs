//! One complete request, from bytes to a verdict: decode, map, deduplicate, store through
//! the one write path, and decide the ack (`shared/spec/fluent.md` §1.5, §1.9, §2.3–2.5).
//!
//! What happens to each kind of request:
//! - `nil`: a health check, ignored silently (fluentd, Vector);
//! - a non-array or malformed request: logged (rate-limited), counted, not acked; the
//!   connection continues because the framing is intact;
//! - invalid events inside a good request: dropped and counted (`skip_invalid_event`,
//!   fluentd's default since 1.19), the rest stored and the request acked;
//! - a resend of a chunk id stored within the dedup window: acked, not stored again;
//! - a store that refuses for now (memory limit): no ack, and the connection stops
//!   reading and retries the same request later (TCP back-pressure, not buffering);
//! - a replica: no ack, the connection closes so the sender fails over to the master;
//! - too few good replicas (`min-replicas-to-write`): not stored, no ack, logged; the sender
//!   resends after its ack timeout.
//!
//! When the ack goes out depends on `ack_after`: at once (`applied`), once the AOF is
//! fsynced past the chunk (`fsynced`), or once `ack_replicas` replicas acked a write-stream
//! offset at or past the chunk's end (`replicated`; the chunk is followed by a coalesced
//! `REPLCONF GETACK *` so replicas answer within milliseconds). `replicated` waits for the
//! replicas only, not for the local AOF as well: the records are then in the memory of
//! `ack_replicas` other machines, which is what the policy promises.

use bytes::Bytes;

use super::mapping::{map_events, Events, MapError, Mapped};
use super::message::{decode, decompress, Body, DecodeError};
use super::{ack, Forward};
use crate::cmd::exec::execute_batch;
use crate::cmd::{Origin, Reply};
use crate::config::AckAfter;

/// What the connection does after a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to write (no ack asked, or the request was dropped).
    Silent,
    /// Write this ack once its condition holds (in order behind earlier held acks).
    Ack(Vec<u8>, Due),
    /// Close the connection, logging why.
    Close(String),
}

/// What an ack waits for before it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing (`ack_after = "applied"`).
    Now,
    /// The AOF fsynced up to this AOF offset (`"fsynced"`).
    Fsynced(u64),
    /// `ack_replicas` online replicas acked this write-stream offset (`"replicated"`).
    Replicated(u64),
}

/// A request decoded and mapped, waiting for its turn to be stored: connections prepare
/// requests in parallel (the costly part) and commit them in order.
#[derive(Debug)]
pub struct Batch {
    tag: Bytes,
    chunk: Option<Bytes>,
    db: usize,
    mapped: Mapped,
    now_ms: i64,
}

/// The outcome of [`prepare`].
#[derive(Debug)]
pub enum Prepared {
    /// Decided without the store (ignored, malformed, dropped, or nothing to store).
    Settled(Verdict),
    /// To be stored by [`commit`].
    Store(Batch),
}

/// Decodes and maps one complete frame; touches no store state, so it may run on any
/// thread, in parallel with other requests of the same connection.
pub fn prepare(fwd: &Forward, frame: Bytes) -> Prepared {
    Prepared::Settled(match prepare_inner(fwd, frame) {
        Ok(batch) => return Prepared::Store(batch),
        Err(v) => v,
    })
}

fn prepare_inner(fwd: &Forward, frame: Bytes) -> Result<Batch, Verdict> {
    let m = &fwd.srv.metrics.forward;
    m.bytes.inc_by(frame.len() as u64);
    if frame.first() == Some(&0xc0) && frame.len() == 1 {
        return Err(Verdict::Silent);
    }
    let req = match decode(&frame) {
        Ok(r) => r,
        Err(e) => return Err(malformed(fwd, &e)),
    };
    m.chunks.inc();
    let ack = |chunk: &Option<Bytes>| match chunk {
        Some(id) => reply(fwd, Some(id), settled_due(fwd)),
        None => Verdict::Silent,
    };
    if req.options.fluent_signal != 0 {
        // Metrics, traces, blobs, profiles (v1.5): kura stores logs. Acked so the sender
        // does not resend forever; counted and logged so the loss is visible.
        m.rejected.with_label_values(&["unsupported_signal"]).inc();
        fwd.warn(
            "unsupported_signal",
            format_args!(
                "dropping a forward request with fluent_signal {}: kura stores logs only",
                req.options.fluent_signal
            ),
        );
        return Err(ack(&req.options.chunk));
    }
    let Some(route) = fwd.router.find(&req.tag) else {
        m.rejected.with_label_values(&["no_route"]).inc();
        fwd.warn(
            "no_route",
            format_args!(
                "no [[forward.route]] matches tag {:?}: events dropped",
                String::from_utf8_lossy(&req.tag)
            ),
        );
        return Err(ack(&req.options.chunk));
    };
    let now_ms = fwd.srv.clock.now_ms();
    let mapped = match &req.body {
        Body::Message(event) => map_events(
            route,
            &req.tag,
            Events::One(event),
            frame.len(),
            now_ms,
            &fwd.seq,
        ),
        Body::Entries {
            stream,
            compression,
        } => {
            let inflated;
            let raw: &[u8] = match *compression {
                super::message::Compression::None => stream,
                c => match decompress(stream, c, fwd.cfg.decompression_size_limit) {
                    Ok(v) => {
                        inflated = v;
                        &inflated
                    }
                    Err(e) => return Err(malformed(fwd, &e)),
                },
            };
            map_events(
                route,
                &req.tag,
                Events::Run(raw),
                raw.len(),
                now_ms,
                &fwd.seq,
            )
        }
    };
    let mapped: Mapped = match mapped {
        Ok(m) => m,
        Err(MapError::Corrupt(e)) => return Err(malformed(fwd, &DecodeError::Corrupt(e))),
        Err(e @ MapError::TooLarge(_)) => {
            return Err(malformed(fwd, &DecodeError::Oversized(e.to_string())))
        }
    };
    if mapped.invalid > 0 {
        m.invalid_events.inc_by(mapped.invalid);
        fwd.warn(
            "invalid_event",
            format_args!(
                "{} invalid event(s) in a request of tag {:?}{}",
                mapped.invalid,
                String::from_utf8_lossy(&req.tag),
                if fwd.cfg.skip_invalid_event {
                    ": dropped, the rest stored"
                } else {
                    ": request refused (skip_invalid_event is off)"
                }
            ),
        );
        if !fwd.cfg.skip_invalid_event {
            m.decode_errors.with_label_values(&["invalid_event"]).inc();
            return Err(Verdict::Silent);
        }
    }
    Ok(Batch {
        tag: req.tag,
        chunk: req.options.chunk,
        db: route.db,
        mapped,
        now_ms,
    })
}

/// Stores a prepared request (unless its chunk id was stored already) and decides the
/// ack. Gives the batch back when the store refuses for now (memory limit), so the
/// connection can hold it, stop reading and try again.
pub fn commit(fwd: &Forward, batch: Batch) -> Result<Verdict, Batch> {
    let m = &fwd.srv.metrics.forward;
    if fwd.srv.is_read_only_replica() || fwd.srv.repl.is_following() {
        m.rejected.with_label_values(&["readonly"]).inc();
        return Ok(Verdict::Close(
            "this server is a read-only replica: forward to the master instead".into(),
        ));
    }
    if fwd.srv.over_maxmemory() {
        m.rejected.with_label_values(&["oom"]).inc();
        return Err(batch);
    }
    // The dataset is still loading at start, or saving fails (MISCONF): hold the chunk
    // until it can be stored (DESIGN.md: a disk error means no ack, not a lost chunk).
    if fwd.srv.loading.load(std::sync::atomic::Ordering::Relaxed)
        || crate::persist::save::writes_denied(&fwd.srv)
    {
        return Err(batch);
    }
    // `min-replicas-to-write` (after MISCONF, as in Redis's checks): refused as RESP writes
    // get -NOREPLICAS.
    if !crate::replication::wait::enough_good_replicas(&fwd.srv) {
        return Ok(no_replicas(fwd, &batch.tag));
    }
    let Batch {
        tag,
        chunk,
        db,
        mapped,
        now_ms,
    } = batch;
    let tag = &tag[..];
    // Check, store and remember under one lock, so a resend racing its original on
    // another connection is either stored once or recognised.
    let mut dedup = match fwd.dedup.lock() {
        Ok(d) => d,
        Err(p) => p.into_inner(),
    };
    // Replicas are asked for an ack only for chunks that want one.
    let replicated = fwd.cfg.ack_after == AckAfter::Replicated && chunk.is_some();
    if let Some(id) = &chunk {
        if let Some(offset) = dedup.seen(tag, id, now_ms) {
            m.duplicates.inc();
            let due = match fwd.cfg.ack_after {
                // Stored before, maybe not yet fsynced: wait for everything appended so far.
                AckAfter::Fsynced => fsynced_due(fwd, fwd.srv.aof.appended()),
                // Stored before at `offset`: wait for the replicas to have it.
                AckAfter::Replicated => {
                    crate::replication::wait::request_acks(&mut fwd.srv.engine.lock().stream);
                    replicated_due(fwd, offset)
                }
                AckAfter::Applied => Some(Due::Now),
            };
            return Ok(reply(fwd, Some(id), due));
        }
    }
    let records = mapped.records;
    let applied = if mapped.commands.is_empty() {
        None
    } else {
        Some(execute_batch(
            &fwd.srv,
            Origin::Forward,
            db,
            mapped.commands,
            replicated,
        ))
    };
    let applied_any = applied.is_some();
    let (replies, offset, aof) = match applied {
        Some(a) => (a.replies, a.offset, a.aof),
        None => (Vec::new(), 0, None),
    };
    if let Some(err) = replies.iter().find_map(|r| match r {
        Reply::Error(e) => Some(e),
        _ => None,
    }) {
        drop(dedup);
        let text = String::from_utf8_lossy(err).into_owned();
        if text.starts_with("OOM") {
            // The limit was crossed after the check above: nothing to hold any more (the
            // commands are spent); no ack, so the sender resends.
            m.rejected.with_label_values(&["oom"]).inc();
            return Ok(Verdict::Silent);
        }
        if text.starts_with("READONLY") {
            m.rejected.with_label_values(&["readonly"]).inc();
            return Ok(Verdict::Close(text));
        }
        if text.starts_with("NOREPLICAS") {
            return Ok(no_replicas(fwd, tag));
        }
        m.rejected.with_label_values(&["store_error"]).inc();
        fwd.warn(
            "store_error",
            format_args!(
                "cannot store a chunk of tag {:?}: {text} (not acked)",
                String::from_utf8_lossy(tag)
            ),
        );
        return Ok(Verdict::Silent);
    }
    if let Some(id) = &chunk {
        dedup.remember(tag, id, offset, now_ms);
    }
    drop(dedup);
    m.records.inc_by(records);
    let Some(id) = chunk.as_deref() else {
        return Ok(Verdict::Silent);
    };
    let due = match (fwd.cfg.ack_after, applied_any) {
        (_, false) => settled_due(fwd),
        (AckAfter::Applied, true) => Some(Due::Now),
        (AckAfter::Fsynced, true) => fsynced_due(fwd, aof),
        (AckAfter::Replicated, true) => replicated_due(fwd, offset),
    };
    Ok(reply(fwd, Some(id), due))
}

/// Refuses a chunk while `min-replicas-to-write` is not met: counted, logged, no ack.
fn no_replicas(fwd: &Forward, tag: &[u8]) -> Verdict {
    fwd.srv
        .metrics
        .forward
        .rejected
        .with_label_values(&["noreplicas"])
        .inc();
    fwd.warn(
        "noreplicas",
        format_args!(
            "cannot store a chunk of tag {:?}: not enough good replicas to write \
             (min-replicas-to-write), not acked",
            String::from_utf8_lossy(tag)
        ),
    );
    Verdict::Silent
}

/// What the ack of a request that stored nothing new waits for: everything appended so far.
fn settled_due(fwd: &Forward) -> Option<Due> {
    match fwd.cfg.ack_after {
        AckAfter::Applied => Some(Due::Now),
        AckAfter::Fsynced => fsynced_due(fwd, fwd.srv.aof.appended()),
        AckAfter::Replicated => {
            let offset = {
                let mut st = fwd.srv.engine.lock();
                crate::replication::wait::request_acks(&mut st.stream);
                st.stream.offset()
            };
            replicated_due(fwd, offset)
        }
    }
}

/// `ack_after = "fsynced"`: waits for the AOF past `aof`. Without an AOF running there is
/// nothing to wait for that would make the chunk durable: no ack (`None`), so the sender
/// keeps it and resends.
fn fsynced_due(fwd: &Forward, aof: Option<u64>) -> Option<Due> {
    match aof {
        Some(o) => Some(Due::Fsynced(o)),
        None => {
            fwd.warn(
                "no_aof",
                format_args!("ack_after = \"fsynced\" but the AOF is off: chunk not acked"),
            );
            None
        }
    }
}

/// `ack_after = "replicated"`: waits for `ack_replicas` replicas to ack `offset`. With fewer
/// replicas online the ack waits all the same (the sender resends after its ack timeout, and
/// the resend is acked once replicas have the chunk); that is logged once until enough
/// replicas are back.
fn replicated_due(fwd: &Forward, offset: u64) -> Option<Due> {
    let online = fwd.srv.repl.acked_at_least(0);
    let short = online < fwd.cfg.ack_replicas;
    if short
        && !fwd
            .replicas_short
            .swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        tracing::warn!(
            "ack_after = \"replicated\" needs {} replica(s) online, {online} are: forward \
             acks wait until enough replicas have the chunks",
            fwd.cfg.ack_replicas
        );
    } else if !short {
        fwd.replicas_short
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }
    Some(Due::Replicated(offset))
}

/// The answer to a request that is done with: its ack (counted) when it asked for one,
/// held until `due`; no ack when there is nothing to wait for (`None`).
fn reply(fwd: &Forward, chunk: Option<&[u8]>, due: Option<Due>) -> Verdict {
    let (Some(id), Some(due)) = (chunk, due) else {
        return Verdict::Silent;
    };
    fwd.srv.metrics.forward.acks.inc();
    Verdict::Ack(ack::ack_bytes(id), due)
}

/// Counts and logs a request that cannot be stored; it gets no ack.
fn malformed(fwd: &Forward, e: &DecodeError) -> Verdict {
    fwd.srv
        .metrics
        .forward
        .decode_errors
        .with_label_values(&[e.kind()])
        .inc();
    if *e == DecodeError::NotArray {
        // fluentd's words for the same case (in_forward.rb).
        fwd.warn(e.kind(), format_args!("incoming chunk is broken: {e}"));
    } else {
        fwd.warn(
            e.kind(),
            format_args!("dropping a forward request: {e} (not acked)"),
        );
    }
    Verdict::Silent
}
