//! The INFO facts every HTTP answer is built from.
//!
//! `/metrics`, `/bgsave`, `/replication` and the status page read one `INFO ALL` text, made
//! by the same code that answers the RESP command, then parsed as redis_exporter parses it
//! (`shared/spec/redis.md` §5.2): so the HTTP door can never tell a different story from
//! `redis-cli INFO`, and whatever INFO gains, the door gains.

use bytes::Bytes;

use crate::cmd::exec::with_ctx;
use crate::cmd::session::Session;
use crate::cmd::Origin;
use crate::state::ServerState;

/// One command's latency histogram, read under the same lock as the INFO text.
#[derive(Debug, Clone)]
pub struct CommandLatency {
    /// Full command name, lowercase (`config|get`).
    pub name: String,
    /// Cumulative counts at each of [`LATENCY_BOUNDS_SECONDS`].
    pub at_most: Vec<u64>,
    /// All recorded calls.
    pub count: u64,
}

/// Upper bounds of `kura_command_duration_seconds`' buckets: 10 µs to 1 s, where command
/// latencies of an in-memory store live.
pub const LATENCY_BOUNDS_SECONDS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 1.0,
];

/// `INFO ALL`, split into sections of `(field, value)` lines in INFO's order.
#[derive(Debug, Clone, Default)]
pub struct Info {
    /// `(section title as in "# Title", fields)`.
    pub sections: Vec<(String, Vec<(String, String)>)>,
    /// Per-command latency histograms (empty when `latency-tracking` is off).
    pub latencies: Vec<CommandLatency>,
    /// Records stored per second lately, by every door.
    pub ingest_rate: u64,
    /// Records RESP clients stored since start.
    pub resp_records: u64,
}

impl Info {
    /// Reads the server's INFO ALL and latency histograms under one engine lock.
    pub fn read(srv: &ServerState) -> Info {
        Info::read_sections(srv, &["all"])
    }

    /// Reads the INFO sections named (as `INFO a b`), with the latency histograms.
    pub fn read_sections(srv: &ServerState, sections: &[&str]) -> Info {
        let args: Vec<Bytes> = sections
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect();
        let mut sess = Session::internal(Origin::Http, 0);
        let (text, latencies, ingest_rate, resp_records) = with_ctx(srv, &mut sess, |ctx| {
            let text = crate::cmd::server::info::info_text(ctx, &args);
            let latencies = ctx
                .st
                .tracking
                .latencies()
                .into_iter()
                .map(|(name, h)| CommandLatency {
                    name: name.to_string(),
                    at_most: LATENCY_BOUNDS_SECONDS
                        .iter()
                        .map(|b| h.count_at_most((b * 1e9) as u64))
                        .collect(),
                    count: h.total(),
                })
                .collect::<Vec<_>>();
            let rates = ctx.st.tracking.ingest_rate();
            (text, latencies, rates, ctx.st.stats.resp_records)
        });
        let mut info = Info::parse(&text);
        info.latencies = latencies;
        info.ingest_rate = ingest_rate;
        info.resp_records = resp_records;
        info
    }

    /// Parses INFO text: `# Title` starts a section, `name:value` lines split at the first
    /// colon, anything else is skipped (redis_exporter's `extractInfoMetrics`).
    pub fn parse(text: &str) -> Info {
        let mut info = Info::default();
        for line in text.split('\n') {
            let line = line.trim();
            if let Some(title) = line.strip_prefix("# ") {
                info.sections.push((title.to_string(), Vec::new()));
            } else if let Some((k, v)) = line.split_once(':') {
                if info.sections.is_empty() {
                    info.sections.push((String::new(), Vec::new()));
                }
                if let Some((_, fields)) = info.sections.last_mut() {
                    fields.push((k.to_string(), v.to_string()));
                }
            }
        }
        info
    }

    /// Returns the fields of section `title` (empty if absent).
    pub fn section(&self, title: &str) -> &[(String, String)] {
        self.sections
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(title))
            .map_or(&[], |(_, f)| f.as_slice())
    }

    /// Returns the value of `field` in any section.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.sections
            .iter()
            .flat_map(|(_, f)| f.iter())
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.as_str())
    }

    /// Returns `field` as an integer, 0 if absent or not a number.
    pub fn int(&self, field: &str) -> i64 {
        self.get(field).and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

/// Splits INFO's `a=1,b=2` values (`slave0:`, `db0:`, `cmdstat_*:`) into pairs.
pub fn pairs(value: &str) -> Vec<(&str, &str)> {
    value
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

/// One `slaveN:` line of INFO replication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaLine {
    /// `ip=`.
    pub ip: String,
    /// `port=` (the replica's listening port).
    pub port: String,
    /// `state=` (`wait_bgsave`, `send_bulk`, `online`).
    pub state: String,
    /// `offset=`: the offset the replica last acknowledged.
    pub offset: i64,
    /// `lag=`: seconds since its last ack; `None` when the line has no `lag=`.
    pub lag: Option<i64>,
}

impl Info {
    /// Returns the attached replicas, in INFO's order.
    pub fn replicas(&self) -> Vec<ReplicaLine> {
        self.section("Replication")
            .iter()
            .filter(|(k, _)| {
                k.strip_prefix("slave")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|(_, v)| {
                let p = pairs(v);
                let get = |name: &str| {
                    p.iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, v)| v.to_string())
                };
                ReplicaLine {
                    ip: get("ip").unwrap_or_default(),
                    port: get("port").unwrap_or_default(),
                    state: get("state").unwrap_or_default(),
                    offset: get("offset").and_then(|v| v.parse().ok()).unwrap_or(0),
                    lag: get("lag").and_then(|v| v.parse().ok()),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_fields_and_replica_lines() {
        let text = "# Server\r\nredis_version:7.0.15\r\nrun_id:abc\r\n\r\n# Replication\r\n\
                    role:master\r\nconnected_slaves:1\r\n\
                    slave0:ip=127.0.0.1,port=6380,state=online,offset=42,lag=0\r\n\
                    master_repl_offset:42\r\n";
        let info = Info::parse(text);
        assert_eq!(info.sections.len(), 2);
        assert_eq!(info.get("redis_version"), Some("7.0.15"));
        assert_eq!(info.int("master_repl_offset"), 42);
        assert_eq!(info.int("missing"), 0);
        assert_eq!(
            info.replicas(),
            vec![ReplicaLine {
                ip: "127.0.0.1".into(),
                port: "6380".into(),
                state: "online".into(),
                offset: 42,
                lag: Some(0),
            }]
        );
        assert_eq!(info.section("replication").len(), 4);
    }

    #[test]
    fn values_keep_colons_after_the_first() {
        let info = Info::parse("# Server\r\nexecutable:/a:b\r\n");
        assert_eq!(info.get("executable"), Some("/a:b"));
    }
}
