//! The real redis_exporter (Debian `prometheus-redis-exporter` 1.45) pointed at kura's RESP
//! port (`shared/spec/redis.md` §5.1–5.3, §6.3 item 5): shops that keep their exporter get
//! `redis_up 1` and its usual series from a kura master and a kura replica, and the same
//! metric families as from a real redis-server 7.0; kura's own `GET /metrics` serves every
//! `redis_*` family the exporter derives from it, so switching from the exporter loses none.
//!
//! The exporter sends CLIENT SETNAME, CONFIG GET *, INFO ALL, LATENCY LATEST, SLOWLOG LEN and
//! SLOWLOG GET 1 on every scrape; any of them failing shows up as a `level=error` line in its
//! log, which the tests check is empty.
//!
//! Every test skips (with a printed reason) when the exporter is missing, except under CI.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::forward::{entry, fluentd_chunk, Fwd};
use crate::replica::{info_field, wait_synced};
use crate::support::{
    free_port, http_get, need_program, ok, parse_exposition, wait_until, Kura, Raw, RedisServer,
    Sample,
};

/// A `prometheus-redis-exporter` process scraping one Redis-speaking server, killed on drop.
pub(crate) struct Exporter {
    /// Where it serves `/metrics`.
    pub(crate) addr: SocketAddr,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Exporter {
    /// Starts the exporter for the server at `target` on a free port, or returns `None`
    /// (skip) when it is not installed.
    pub(crate) fn start(target: SocketAddr) -> Option<Exporter> {
        let bin = need_program("prometheus-redis-exporter")?;
        // The port is free when chosen but may be taken before the exporter binds it; it
        // then exits, and we try another.
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let log = dir.path().join("exporter.log");
            let out = std::fs::File::create(&log).unwrap();
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let child = Command::new(&bin)
                .arg("--redis.addr")
                .arg(format!("redis://{target}"))
                .arg("--web.listen-address")
                .arg(addr.to_string())
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("spawn prometheus-redis-exporter");
            let mut ex = Exporter {
                addr,
                child,
                log,
                _dir: dir,
            };
            let serving = wait_until(Duration::from_secs(10), || {
                ex.exited()
                    || http_get(addr, "/")
                        .is_ok_and(|(s, body)| s == 200 && body.contains("Redis Exporter"))
            });
            if serving && !ex.exited() {
                return Some(ex);
            }
        }
        panic!("prometheus-redis-exporter did not start on a free port");
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Scrapes `/metrics` once (the exporter queries its target now).
    pub(crate) fn scrape(&self) -> Vec<Sample> {
        let (status, body) = http_get(self.addr, "/metrics").expect("scrape the exporter");
        assert_eq!(status, 200, "{body}");
        parse_exposition(&body)
    }

    /// Returns the exporter's log lines at level error or warning: a command it sent failed.
    pub(crate) fn complaints(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("level=error") || l.contains("level=warn"))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns the value of the one sample named `name` whose labels include `labels`.
pub(crate) fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(v)))
        .collect();
    assert!(found.len() <= 1, "{name}{labels:?} is ambiguous: {found:?}");
    found.first().map(|s| s.value)
}

/// Returns the sample's value, or fails with what was scraped.
fn must(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    value(samples, name, labels).unwrap_or_else(|| {
        let near: Vec<&Sample> = samples.iter().filter(|s| s.name == name).collect();
        panic!("no {name}{labels:?}; samples of that name: {near:?}")
    })
}

/// Writes from both doors and one BGSAVE; waits for the save to finish.
pub(crate) fn traffic(master: &Kura) {
    let mut c = master.client();
    for i in 0..10 {
        ok(&mut c, &["SET", &format!("s:{i}"), "v"]);
    }
    ok(&mut c, &["RPUSH", "logs", "a", "b", "c"]);
    ok(&mut c, &["HSET", "h", "f", "v"]);
    ok(&mut c, &["SET", "ttl", "v", "EX", "3600"]);
    ok(&mut c, &["GET", "s:1"]);
    ok(&mut c, &["GET", "missing"]);
    ok(&mut c, &["SELECT", "2"]);
    ok(&mut c, &["RPUSH", "other-db", "x"]);
    ok(&mut c, &["SELECT", "0"]);
    let mut f = Fwd::connect(master.forward);
    let e = entry(1441588984, 0, &[("message", "from fluentd")]);
    f.send(&fluentd_chunk(
        "app.log",
        &e,
        1,
        "text",
        Some(b"ZXhwb3J0ZXI="),
    ));
    f.expect_ack(b"ZXhwb3J0ZXI=");
    bgsave(&mut c);
}

/// Runs BGSAVE and waits until it finished with status ok.
pub(crate) fn bgsave(c: &mut Raw) {
    let saves = |c: &mut Raw| -> u64 {
        info_field(c, "persistence", "rdb_saves")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let before = saves(c);
    assert_eq!(c.cmd(&["BGSAVE"]), "+Background saving started\r\n");
    assert!(
        wait_until(Duration::from_secs(30), || saves(c) > before
            && info_field(c, "persistence", "rdb_bgsave_in_progress")
                .as_deref()
                == Some("0")),
        "BGSAVE did not finish: {}",
        c.cmd(&["INFO", "persistence"])
    );
    assert_eq!(
        info_field(c, "persistence", "rdb_last_bgsave_status").as_deref(),
        Some("ok")
    );
}

/// Starts a kura master (syncing at once) and a kura replica of it, in sync.
pub(crate) fn master_and_replica() -> (Kura, Kura) {
    let master = Kura::start_with(|c| c.repl_diskless_sync_delay = 0);
    let port = master.addr.port();
    let replica = Kura::start_with(|c| c.replicaof = Some(("127.0.0.1".into(), port)));
    wait_synced(&mut replica.client(), &mut master.client());
    (master, replica)
}

/// Waits until the master's replica acked everything (its `slave0:` offset in INFO is the
/// master's offset): replicas ack once a second.
pub(crate) fn wait_acked(master: &mut Raw) {
    let acked = wait_until(Duration::from_secs(10), || {
        let info = master.cmd(&["INFO", "replication"]);
        let offset = crate::replica::field(&info, "master_repl_offset").unwrap_or_default();
        crate::replica::field(&info, "slave0")
            .is_some_and(|s| s.contains(&format!(",offset={offset},")))
    });
    assert!(acked, "{}", master.cmd(&["INFO", "replication"]));
}

fn dbsize(c: &mut Raw) -> f64 {
    let r = c.cmd(&["DBSIZE"]);
    r.trim()
        .strip_prefix(':')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("DBSIZE: {r}"))
}

#[test]
fn the_real_exporter_reads_a_kura_master_and_replica() {
    let (master, replica) = master_and_replica();
    traffic(&master);
    let mut m = master.client();
    let mut r = replica.client();
    wait_synced(&mut r, &mut m);
    wait_acked(&mut m);
    let Some(mx) = Exporter::start(master.addr) else {
        return;
    };
    let Some(rx) = Exporter::start(replica.addr) else {
        return;
    };

    // ---- master ----
    let s = mx.scrape();
    assert_eq!(must(&s, "redis_up", &[]), 1.0);
    assert_eq!(
        must(&s, "redis_exporter_last_scrape_error", &[("err", "")]),
        0.0
    );
    let db0 = must(&s, "redis_db_keys", &[("db", "db0")]);
    assert_eq!(db0, dbsize(&mut m));
    assert_eq!(db0, 14.0, "10 strings, logs, h, ttl and the forward list");
    assert_eq!(must(&s, "redis_db_keys", &[("db", "db2")]), 1.0);
    assert_eq!(must(&s, "redis_db_keys_expiring", &[("db", "db0")]), 1.0);
    assert!(must(&s, "redis_commands_total", &[("cmd", "set")]) >= 11.0);
    assert!(
        must(
            &s,
            "redis_commands_duration_seconds_total",
            &[("cmd", "set")]
        ) > 0.0
    );
    assert!(must(&s, "redis_connected_clients", &[]) >= 1.0);
    assert!(must(&s, "redis_memory_used_bytes", &[]) > 0.0);
    assert_eq!(must(&s, "redis_rdb_last_bgsave_status", &[]), 1.0);
    assert!(must(&s, "redis_rdb_last_save_timestamp_seconds", &[]) > 1.6e9);
    assert_eq!(must(&s, "redis_keyspace_hits_total", &[]), 1.0);
    assert_eq!(must(&s, "redis_keyspace_misses_total", &[]), 1.0);
    assert_eq!(must(&s, "redis_connected_slaves", &[]), 1.0);
    let offset = must(&s, "redis_master_repl_offset", &[]);
    assert!(offset > 0.0);
    let replica_port = replica.addr.port().to_string();
    let online = [
        ("slave_ip", "127.0.0.1"),
        ("slave_port", replica_port.as_str()),
        ("slave_state", "online"),
    ];
    assert_eq!(
        must(&s, "redis_connected_slave_offset_bytes", &online),
        offset
    );
    must(&s, "redis_connected_slave_lag_seconds", &online);
    assert_eq!(
        must(&s, "redis_instance_info", &[("role", "master")]),
        1.0,
        "INFO server fields as labels"
    );

    // ---- replica ----
    let s = rx.scrape();
    assert_eq!(must(&s, "redis_up", &[]), 1.0);
    let master_port = master.addr.port().to_string();
    assert_eq!(
        must(
            &s,
            "redis_master_link_up",
            &[("master_host", "127.0.0.1"), ("master_port", &master_port)]
        ),
        1.0
    );
    assert_eq!(must(&s, "redis_db_keys", &[("db", "db0")]), db0);
    assert_eq!(must(&s, "redis_instance_info", &[("role", "slave")]), 1.0);
    assert_eq!(must(&s, "redis_slave_info", &[("read_only", "1")]), 1.0);
    assert!(
        must(
            &s,
            "redis_slave_repl_offset",
            &[("master_host", "127.0.0.1")]
        ) >= offset
    );

    // Every command of the scrape worked: nothing logged at error or warning level.
    let complaints: Vec<String> = mx.complaints().into_iter().chain(rx.complaints()).collect();
    assert!(complaints.is_empty(), "{complaints:#?}");
}

/// Returns the metric families (names, labels aside) in one scrape.
fn families(samples: &[Sample]) -> BTreeSet<String> {
    samples.iter().map(|s| s.name.clone()).collect()
}

#[test]
fn the_exporter_yields_the_same_families_for_kura_as_for_redis() {
    let kura = Kura::start();
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let scenario = |mut c: Raw| {
        ok(&mut c, &["SET", "a", "1", "EX", "100"]);
        ok(&mut c, &["RPUSH", "l", "x"]);
        ok(&mut c, &["GET", "a"]);
        bgsave(&mut c);
    };
    scenario(kura.client());
    scenario(redis.client());
    let Some(kx) = Exporter::start(kura.addr) else {
        return;
    };
    let Some(rx) = Exporter::start(redis.addr) else {
        return;
    };
    let ours = families(&kx.scrape());
    let theirs = families(&rx.scrape());
    let missing: Vec<&String> = theirs.difference(&ours).collect();
    let extra: Vec<&String> = ours.difference(&theirs).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "families only from redis-server: {missing:?}; only from kura: {extra:?}"
    );
    assert!(ours.len() > 100, "{} families", ours.len());
    let complaints = kx.complaints();
    assert!(complaints.is_empty(), "{complaints:#?}");
}

/// Families the exporter makes about itself, not from what the target answers: its key-group
/// scrape timing and its `/scrape` endpoint's errors.
const EXPORTER_ONLY: &[&str] = &[
    "redis_last_key_groups_scrape_duration_milliseconds",
    "redis_target_scrape_request_errors_total",
];

#[test]
fn kuras_own_metrics_have_every_family_the_exporter_derives_from_it() {
    let (master, replica) = master_and_replica();
    traffic(&master);
    wait_synced(&mut replica.client(), &mut master.client());
    wait_acked(&mut master.client());
    let mut gaps: Vec<String> = Vec::new();
    for (role, kura) in [("master", &master), ("replica", &replica)] {
        let Some(ex) = Exporter::start(kura.addr) else {
            return;
        };
        let theirs = families(&ex.scrape());
        assert!(
            theirs.contains("redis_up") && theirs.len() > 100,
            "{theirs:?}"
        );
        let (status, body) = http_get(kura.http.unwrap(), "/metrics").unwrap();
        assert_eq!(status, 200, "{body}");
        let ours = families(&parse_exposition(&body));
        for f in theirs.difference(&ours) {
            // go_* and process_* describe the exporter's own process.
            if f.starts_with("redis_")
                && !f.starts_with("redis_exporter_")
                && !EXPORTER_ONLY.contains(&f.as_str())
            {
                gaps.push(format!("{role}: {f}"));
            }
        }
    }
    assert!(
        gaps.is_empty(),
        "served by the exporter, not by kura: {gaps:#?}"
    );
}
