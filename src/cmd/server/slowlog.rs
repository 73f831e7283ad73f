//! What every command leaves behind for the introspection commands: SLOWLOG entries
//! (Redis `slowlog.c`), per-command latency histograms (`INFO latencystats`, Redis's
//! `updateCommandLatencyHistogram`) and the samples behind `instantaneous_ops_per_sec`
//! (`trackInstantaneousMetric`).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{help, subcommand};
use crate::cmd::args::int;
use crate::cmd::exec::Ctx;
use crate::cmd::reply::{CmdError, CmdResult, Reply};
use crate::cmd::session::Session;
use crate::cmd::table::{flags, CmdMap, CmdName, CommandSpec};
use crate::state::ServerState;

/// Most arguments an entry keeps (`SLOWLOG_ENTRY_MAX_ARGC`).
const MAX_ARGC: usize = 32;
/// Most bytes kept of each argument (`SLOWLOG_ENTRY_MAX_STRING`).
const MAX_STRING: usize = 128;

/// One SLOWLOG entry.
#[derive(Debug, Clone)]
struct Entry {
    id: u64,
    time: i64,
    usec: u64,
    args: Vec<Bytes>,
    peer: String,
    name: String,
}

/// SLOWLOG entries, newest first.
#[derive(Debug)]
pub struct SlowLog {
    entries: VecDeque<Entry>,
    next_id: u64,
    max_len: usize,
}

impl SlowLog {
    /// Returns an empty log keeping `max_len` entries.
    pub fn new(max_len: usize) -> Self {
        SlowLog {
            entries: VecDeque::new(),
            next_id: 0,
            max_len,
        }
    }

    /// Returns the capacity.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Returns the number of entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Reports whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Returns the newest entry's id and microseconds (what redis_exporter reads with
    /// `SLOWLOG GET 1`).
    pub fn newest(&self) -> Option<(u64, u64)> {
        self.entries.front().map(|e| (e.id, e.usec))
    }

    fn push(&mut self, mut e: Entry, max_len: usize) {
        self.max_len = max_len;
        e.id = self.next_id;
        self.next_id += 1;
        self.entries.push_front(e);
        self.entries.truncate(max_len);
    }
}

impl Tracking {
    /// Adds one call's latency to its command's histogram (`updateCommandLatencyHistogram`,
    /// in nanoseconds as Redis records them: sub-microsecond commands keep their values).
    pub fn record(&mut self, name: &'static str, ns: u64) {
        self.latency.entry(CmdName(name)).or_default().record(ns);
    }
}

/// Records a command in SLOWLOG when it ran at least `slowlog-log-slower-than` microseconds.
/// Called after every executed command, so the common case is one atomic load.
pub fn record_slowlog(
    srv: &ServerState,
    sess: &Session,
    spec: &CommandSpec,
    argv: &[Bytes],
    usec: u64,
) {
    let threshold = srv.hot.slowlog_threshold.load(Ordering::Relaxed);
    // EXEC is logged as the commands it ran (Redis `CMD_SKIP_SLOWLOG`).
    if threshold < 0 || usec < threshold as u64 || spec.has(flags::SKIP_SLOWLOG) {
        return;
    }
    let argc = argv.len().min(MAX_ARGC);
    let redacted = redacted_positions(spec, argv);
    let args = (0..argc)
        .map(|j| {
            if argc != argv.len() && j == argc - 1 {
                Bytes::from(format!("... ({} more arguments)", argv.len() - argc + 1))
            } else if redacted.contains(&j) {
                Bytes::from_static(b"(redacted)")
            } else if argv[j].len() > MAX_STRING {
                let mut s = argv[j][..MAX_STRING].to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", argv[j].len() - MAX_STRING).as_bytes(),
                );
                Bytes::from(s)
            } else {
                Bytes::copy_from_slice(&argv[j])
            }
        })
        .collect();
    let max_len = srv.with_config(|c| c.slowlog_max_len as usize);
    let (peer, name) = match &sess.info {
        Some(i) => (
            i.addr.to_string(),
            i.name.lock().map(|n| n.clone()).unwrap_or_default(),
        ),
        None => (String::new(), String::new()),
    };
    let entry = Entry {
        id: 0,
        time: srv.clock.now_ms() / 1000,
        usec,
        args,
        peer,
        name,
    };
    if let Ok(mut log) = srv.slowlog.lock() {
        log.push(entry, max_len);
    }
}

/// Returns the argument positions Redis 7.0 hides as `(redacted)` in SLOWLOG and MONITOR:
/// passwords of AUTH and HELLO, and values of sensitive settings in CONFIG SET.
pub fn redacted_positions(spec: &CommandSpec, argv: &[Bytes]) -> Vec<usize> {
    match spec.name {
        "auth" => (1..argv.len()).collect(),
        "hello" => {
            let mut out = Vec::new();
            let mut i = 2;
            while i < argv.len() {
                if argv[i].eq_ignore_ascii_case(b"auth") && i + 2 < argv.len() {
                    out.extend([i + 1, i + 2]);
                    i += 3;
                } else if argv[i].eq_ignore_ascii_case(b"setname") {
                    i += 2;
                } else {
                    i += 1;
                }
            }
            out
        }
        "config" if argv.len() > 3 && argv[1].eq_ignore_ascii_case(b"set") => (2..argv.len() - 1)
            .step_by(2)
            .filter(|&i| {
                crate::config::find_param(&String::from_utf8_lossy(&argv[i]))
                    .is_some_and(|p| p.sensitive)
            })
            .map(|i| i + 1)
            .collect(),
        _ => Vec::new(),
    }
}

// ---- SLOWLOG ----

/// SLOWLOG's subcommands.
pub const SUBS: &[&str] = &[
    "slowlog|get",
    "slowlog|help",
    "slowlog|len",
    "slowlog|reset",
];

const HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

/// `SLOWLOG GET [count] | LEN | RESET | HELP`.
pub fn slowlog_cmd(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let sub = subcommand("slowlog", argv, SUBS)?;
    match sub.as_str() {
        "help" => Ok(help(HELP)),
        "len" => Ok(Reply::Int(
            ctx.srv.slowlog.lock().map_or(0, |l| l.len()) as i64
        )),
        "reset" => {
            if let Ok(mut l) = ctx.srv.slowlog.lock() {
                l.entries.clear();
            }
            Ok(Reply::Ok)
        }
        "get" => {
            if argv.len() > 3 {
                return Err(CmdError::err(
                    "unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP.",
                ));
            }
            let count = match argv.get(2) {
                None => 10,
                Some(a) => match int(a) {
                    Ok(n) if n >= -1 => n,
                    _ => return Err(CmdError::err("count should be greater than or equal to -1")),
                },
            };
            let log = ctx
                .srv
                .slowlog
                .lock()
                .map_err(|_| CmdError::err("slowlog unavailable"))?;
            let n = if count == -1 {
                log.entries.len()
            } else {
                (count as usize).min(log.entries.len())
            };
            Ok(Reply::Array(
                log.entries
                    .iter()
                    .take(n)
                    .map(|e| {
                        Reply::Array(vec![
                            Reply::Int(e.id as i64),
                            Reply::Int(e.time),
                            Reply::Int(e.usec as i64),
                            Reply::bulks(e.args.iter().cloned()),
                            Reply::bulk(&e.peer),
                            Reply::bulk(&e.name),
                        ])
                    })
                    .collect(),
            ))
        }
        _ => Err(CmdError::Syntax),
    }
}

// ---- LATENCY HISTOGRAMS AND INSTANTANEOUS METRICS ----

/// Latencies of one command, bucketed like an HdrHistogram with 2 significant digits over
/// 1 ns ..= 1 s (Redis's `LATENCY_HISTOGRAM_*`), so percentiles print like Redis's
/// (`p50=7.007` for 7 µs).
#[derive(Debug, Default, Clone)]
pub struct Histogram {
    /// Counts by bucket index, in value order (see [`bucket_index`]); allocated on first use.
    counts: Vec<u64>,
    total: u64,
}

const SUB_BUCKET_BITS: u32 = 8;

impl Histogram {
    /// Records one latency in nanoseconds.
    pub fn record(&mut self, ns: u64) {
        let v = ns.clamp(1, 1_000_000_000);
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        self.counts[bucket_index(v)] += 1;
        self.total += 1;
    }

    /// Returns the value at `percentile` (0..=100), in nanoseconds, as HdrHistogram's
    /// `hdr_value_at_percentile` (the highest value equivalent to the bucket reached).
    pub fn percentile(&self, percentile: f64) -> u64 {
        let wanted = ((percentile / 100.0 * self.total as f64) + 0.5) as u64;
        let wanted = wanted.max(1);
        let mut seen = 0;
        for (low, n) in self.buckets() {
            seen += n;
            if seen >= wanted {
                return highest_equivalent(low);
            }
        }
        0
    }

    /// Returns how many values were recorded.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Returns how many recorded values were at most `ns` (to the bucket's resolution): the
    /// cumulative counts of a Prometheus histogram's `le` buckets.
    pub fn count_at_most(&self, ns: u64) -> u64 {
        self.buckets()
            .take_while(|(low, _)| highest_equivalent(*low) <= ns)
            .map(|(_, n)| n)
            .sum()
    }

    /// Iterates the non-empty buckets as (lowest value, count), in value order.
    fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (bucket_low(i), *n))
    }
}

/// Buckets: 256 exact values, then 128 per power of two up to 2^30 ns (> 1 s).
const BUCKETS: usize = 256 + 22 * 128;

/// Returns the bucket of `v` (1 ..= 1e9): a flat array index, so recording is O(1).
fn bucket_index(v: u64) -> usize {
    let s = bucket_shift(v);
    if s == 0 {
        v as usize
    } else {
        256 + (s as usize - 1) * 128 + ((v >> s) as usize - 128)
    }
}

/// Returns the lowest value of bucket `i` (the inverse of [`bucket_index`]).
fn bucket_low(i: usize) -> u64 {
    if i < 256 {
        i as u64
    } else {
        let s = (i - 256) / 128 + 1;
        (((i - 256) % 128 + 128) as u64) << s
    }
}

/// The bucket width at `v`: values below 256 are exact, above it keep 8 significant bits.
fn bucket_shift(v: u64) -> u32 {
    let bits = 64 - v.leading_zeros();
    bits.saturating_sub(SUB_BUCKET_BITS)
}

fn lowest_equivalent(v: u64) -> u64 {
    let s = bucket_shift(v);
    (v >> s) << s
}

fn highest_equivalent(low: u64) -> u64 {
    low + (1u64 << bucket_shift(low)) - 1
}

/// Samples of the rates shown as `instantaneous_*` (16 samples, one per 100 ms).
#[derive(Debug, Default)]
struct Rates {
    last_ms: i64,
    last_count: u64,
    samples: [u64; 16],
    idx: usize,
}

impl Rates {
    fn sample(&mut self, now_ms: i64, count: u64) {
        if self.last_ms == 0 {
            self.last_ms = now_ms;
            self.last_count = count;
            return;
        }
        let t = now_ms - self.last_ms;
        if t < 100 {
            return;
        }
        let per_sec = count.saturating_sub(self.last_count) * 1000 / t as u64;
        // Without a command for a while, Redis's cron would have taken a sample every
        // 100 ms; spread the rate over the periods that passed.
        for _ in 0..(t / 100).clamp(1, 16) {
            self.samples[self.idx] = per_sec;
            self.idx = (self.idx + 1) % self.samples.len();
        }
        self.last_ms = now_ms;
        self.last_count = count;
    }

    fn value(&self) -> u64 {
        self.samples.iter().sum::<u64>() / self.samples.len() as u64
    }
}

/// Per-command latencies and traffic rates, updated after every command.
#[derive(Debug, Default)]
pub struct Tracking {
    /// Latency histogram by full command name.
    latency: CmdMap<Histogram>,
    ops: Rates,
    input: Rates,
    output: Rates,
    ingest: Rates,
}

impl Tracking {
    /// Takes a rate sample if 100 ms passed since the last one; `records` counts the log
    /// records stored by every door.
    pub fn sample(
        &mut self,
        now_ms: i64,
        commands: u64,
        records: u64,
        net: &crate::state::NetStats,
    ) {
        self.ops.sample(now_ms, commands);
        self.ingest.sample(now_ms, records);
        self.input
            .sample(now_ms, net.net_input_bytes.load(Ordering::Relaxed));
        self.output
            .sample(now_ms, net.net_output_bytes.load(Ordering::Relaxed));
    }

    /// Returns (ops/sec, input bytes/sec, output bytes/sec).
    pub fn rates(&self) -> (u64, u64, u64) {
        (self.ops.value(), self.input.value(), self.output.value())
    }

    /// Returns the records stored per second, over the last 1.6 s.
    pub fn ingest_rate(&self) -> u64 {
        self.ingest.value()
    }

    /// Returns each command's latency histogram, by name.
    pub fn latencies(&self) -> Vec<(&str, &Histogram)> {
        let mut v: Vec<(&str, &Histogram)> = self.latency.iter().map(|(k, h)| (k.0, h)).collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// Forgets the histograms (CONFIG RESETSTAT).
    pub fn reset(&mut self) {
        self.latency.clear();
    }
}

// ---- LATENCY ----

/// LATENCY's subcommands. kura has no latency monitor events (Redis's
/// `latency-monitor-threshold` is 0 by default), so LATEST and HISTORY are empty; the
/// per-command histograms are real.
pub const LATENCY_SUBS: &[&str] = &[
    "latency|doctor",
    "latency|graph",
    "latency|help",
    "latency|histogram",
    "latency|history",
    "latency|latest",
    "latency|reset",
];

const LATENCY_HELP: &[&str] = &[
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
];

const DOCTOR: &str = "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n";

/// `LATENCY LATEST | HISTORY e | RESET [e ...] | GRAPH e | DOCTOR | HISTOGRAM [cmd ...] | HELP`.
pub fn latency_cmd(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let sub = subcommand("latency", argv, LATENCY_SUBS)?;
    match sub.as_str() {
        "help" => Ok(help(LATENCY_HELP)),
        "latest" | "history" => Ok(Reply::Array(vec![])),
        "reset" => Ok(Reply::Int(0)),
        "graph" => Err(CmdError::echo(
            "ERR No samples available for event '",
            &argv[2],
            "'",
        )),
        "doctor" => Ok(Reply::Verbatim(DOCTOR.into())),
        "histogram" => {
            let t = &ctx.st.tracking;
            let pairs = if argv.len() == 2 {
                t.latencies()
                    .into_iter()
                    .map(|(name, h)| (Reply::bulk(name), cdf(h)))
                    .collect()
            } else {
                argv[2..]
                    .iter()
                    .filter_map(|a| {
                        let name = String::from_utf8_lossy(a).to_ascii_lowercase();
                        let h = t.latency.iter().find(|(k, _)| k.0 == name)?.1;
                        Some((Reply::BulkStr(name), cdf(h)))
                    })
                    .collect()
            };
            Ok(Reply::Map(pairs))
        }
        _ => Err(CmdError::Syntax),
    }
}

/// One command's histogram as Redis's `fillCommandCDF`: calls, then cumulative counts at
/// power-of-two microsecond levels (HdrHistogram's log iterator from 1024 ns).
fn cdf(h: &Histogram) -> Reply {
    let mut points = Vec::new();
    let mut level: u64 = 1024;
    let mut previous = 0;
    loop {
        let low = lowest_equivalent(level);
        let cumulative: u64 = h
            .buckets()
            .take_while(|(l, _)| *l <= low)
            .map(|(_, n)| n)
            .sum();
        if cumulative > previous {
            points.push((
                Reply::Int((highest_equivalent(low) / 1000) as i64),
                Reply::Int(cumulative as i64),
            ));
        }
        previous = cumulative;
        if cumulative >= h.total || level >= 1 << 40 {
            break;
        }
        level *= 2;
    }
    Reply::Map(vec![
        (Reply::bulk("calls"), Reply::Int(h.total as i64)),
        (Reply::bulk("histogram_usec"), Reply::Map(points)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_index_is_monotonic_and_invertible() {
        let mut last = 0;
        for v in (1..5000u64)
            .chain((12..30).map(|b| (1u64 << b) + 12345))
            .chain([1_000_000_000])
        {
            let i = bucket_index(v);
            assert!(i >= last && i < BUCKETS, "{v}");
            assert_eq!(bucket_low(i), lowest_equivalent(v), "{v}");
            last = i;
        }
    }

    #[test]
    fn histogram_percentiles_match_hdr_rounding() {
        let mut h = Histogram::default();
        h.record(7000);
        assert_eq!(h.percentile(50.0), 7007);
        let mut h = Histogram::default();
        h.record(0);
        assert_eq!(h.percentile(99.9), 1);
        for v in [20_000u64, 93_000, 93_100] {
            h.record(v);
        }
        assert!(h.percentile(99.0) >= 93_000);
        assert_eq!(h.percentile(50.0), lowest_equivalent(20_000) + 127);
    }

    #[test]
    fn cdf_levels_like_redis() {
        let mut h = Histogram::default();
        for us in [1u64, 1, 1, 2, 2, 5, 30, 200] {
            h.record(us * 1000);
        }
        let Reply::Map(top) = cdf(&h) else { panic!() };
        let Reply::Map(points) = &top[1].1 else {
            panic!()
        };
        let got: Vec<(i64, i64)> = points
            .iter()
            .map(|(a, b)| match (a, b) {
                (Reply::Int(a), Reply::Int(b)) => (*a, *b),
                _ => panic!(),
            })
            .collect();
        assert_eq!(got, vec![(1, 3), (2, 5), (8, 6), (33, 7), (264, 8)]);
    }

    #[test]
    fn rates_average_the_last_samples() {
        let mut r = Rates::default();
        r.sample(1000, 0);
        r.sample(2600, 1600);
        assert_eq!(r.value(), 1000);
    }
}
