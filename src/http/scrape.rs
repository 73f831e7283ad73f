//! `GET /metrics`: the redis_exporter families from INFO, then kura's own.
//!
//! kura's families (`kura_*`) follow Prometheus's naming rules (promtool clean): the
//! registry's forward and bgsave families, plus those built at scrape time from the same
//! INFO read: ingest by door, command latency histograms, replica lag in bytes. Labels are
//! bounded: doors, command names from the command table, attached replicas.

use super::exposition::{Exposition, Kind};
use super::info::{Info, LATENCY_BOUNDS_SECONDS};
use super::redis_metrics::{self, ConfigFacts};
use crate::state::ServerState;

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the whole `/metrics` body.
pub fn render(srv: &ServerState) -> String {
    let info = Info::read(srv);
    let cfg = srv.with_config(|c| ConfigFacts {
        databases: c.databases,
        maxmemory: c.maxmemory,
        maxclients: c.maxclients,
    });
    let mut e = Exposition::default();
    redis_metrics::write(&mut e, &info, cfg, srv.clock.now_ms() / 1000);
    slowlog(&mut e, srv);
    kura_families(&mut e, srv, &info);
    let mut out = String::with_capacity(16 * 1024);
    e.render(&mut out);
    let registry = prometheus::TextEncoder::new().encode_to_string(&srv.metrics.registry.gather());
    match registry {
        Ok(text) => out.push_str(&text),
        // The registry holds only families with valid names: a failure is a bug, shown
        // rather than hidden in an incomplete scrape.
        Err(e) => tracing::warn!(error = %e, "cannot encode the metric registry"),
    }
    out
}

/// What redis_exporter reads with `SLOWLOG LEN` and `SLOWLOG GET 1`.
fn slowlog(e: &mut Exposition, srv: &ServerState) {
    let (len, newest) = match srv.slowlog.lock() {
        Ok(log) => (log.len(), log.newest()),
        Err(_) => return,
    };
    let (id, usec) = newest.unwrap_or((0, 0));
    e.single(
        "redis_slowlog_length",
        Kind::Gauge,
        "Total slowlog",
        len as f64,
    );
    e.single(
        "redis_slowlog_last_id",
        Kind::Gauge,
        "Last id of slowlog",
        id as f64,
    );
    e.single(
        "redis_last_slow_execution_duration_seconds",
        Kind::Gauge,
        "The amount of time needed for last slow execution, in seconds",
        usec as f64 / 1e6,
    );
}

/// The `kura_*` families made at scrape time.
fn kura_families(e: &mut Exposition, srv: &ServerState, info: &Info) {
    let help = "Log records stored, by the door they came in (forward: Fluent Forward \
                records; resp: list elements pushed and hashes written by RESP clients).";
    let forward = srv.metrics.forward.records.get() as f64;
    let resp = info.resp_records as f64;
    e.sample(
        "kura_ingest_records_total",
        Kind::Counter,
        help,
        "",
        &[("door", "forward")],
        forward,
    );
    e.sample(
        "kura_ingest_records_total",
        Kind::Counter,
        help,
        "",
        &[("door", "resp")],
        resp,
    );
    command_latency(e, info);
    let master_offset = info.int("master_repl_offset");
    for r in info.replicas() {
        e.sample(
            "kura_replica_lag_bytes",
            Kind::Gauge,
            "Bytes of the write stream an attached replica has not acknowledged yet.",
            "",
            &[("slave_ip", r.ip.as_str()), ("slave_port", r.port.as_str())],
            (master_offset - r.offset).max(0) as f64,
        );
    }
}

/// `kura_command_duration_seconds{cmd}`: the latency-tracking histograms (the ones behind
/// INFO latencystats) as Prometheus buckets, for p50/p99 by command in PromQL.
fn command_latency(e: &mut Exposition, info: &Info) {
    let help = "Seconds commands took to run, by command (latency-tracking).";
    let name = "kura_command_duration_seconds";
    let usec_by_cmd: std::collections::HashMap<&str, f64> = info
        .section("Commandstats")
        .iter()
        .filter_map(|(k, v)| {
            let usec = super::info::pairs(v)
                .into_iter()
                .find(|(f, _)| *f == "usec")
                .and_then(|(_, n)| n.parse::<f64>().ok())?;
            Some((k.strip_prefix("cmdstat_")?, usec))
        })
        .collect();
    for l in &info.latencies {
        let cmd = [("cmd", l.name.as_str())];
        for (bound, n) in LATENCY_BOUNDS_SECONDS.iter().zip(&l.at_most) {
            let le = bound.to_string();
            e.sample(
                name,
                Kind::Histogram,
                help,
                "_bucket",
                &[("cmd", l.name.as_str()), ("le", &le)],
                *n as f64,
            );
        }
        e.sample(
            name,
            Kind::Histogram,
            help,
            "_bucket",
            &[("cmd", l.name.as_str()), ("le", "+Inf")],
            l.count as f64,
        );
        // The exact sum is INFO commandstats' usec for the same command.
        let usec = usec_by_cmd.get(l.name.as_str()).copied().unwrap_or(0.0);
        e.sample(name, Kind::Histogram, help, "_sum", &cmd, usec / 1e6);
        e.sample(name, Kind::Histogram, help, "_count", &cmd, l.count as f64);
    }
}
