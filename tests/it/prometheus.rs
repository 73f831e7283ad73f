//! The shipped dashboards against a real Prometheus (Debian `prometheus` 2.42) scraping a
//! kura master and a kura replica every second, after traffic on both doors and a BGSAVE:
//! every PromQL expression of every panel in every `dashboards/*.json` returns at least one
//! series, the 16 series dashboard 763 needs (`shared/spec/redis.md` §5.4) are there for each
//! kura, and `promtool check metrics` parses what kura serves with no lint on `kura_*`
//! families (the `redis_*` ones keep redis_exporter's names, lints and all).
//!
//! Also checks, with no external program, that each dashboard imports (`__inputs`) and
//! provisions (`dashboards/provisioning/`) with every panel on `${DS_PROMETHEUS}`.
//!
//! Tests needing prometheus or promtool skip (with a printed reason) when they are missing,
//! except under CI.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::exporter::{master_and_replica, traffic, wait_acked};
use crate::replica::wait_synced;
use crate::support::{free_port, http_get, need_program, url_encode, wait_until, Kura};

/// The series dashboard 763 ("Redis Dashboard for Prometheus Redis Exporter 1.x") queries.
const DASHBOARD_763: &[&str] = &[
    "redis_up",
    "redis_uptime_in_seconds",
    "redis_connected_clients",
    "redis_blocked_clients",
    "redis_memory_used_bytes",
    "redis_memory_max_bytes",
    "redis_commands_total",
    "redis_commands_duration_seconds_total",
    "redis_keyspace_hits_total",
    "redis_keyspace_misses_total",
    "redis_net_input_bytes_total",
    "redis_net_output_bytes_total",
    "redis_db_keys",
    "redis_db_keys_expiring",
    "redis_expired_keys_total",
    "redis_evicted_keys_total",
];

/// What Grafana's interval variables become in the queries run here (scrapes are 1 s apart,
/// so a 30 s window holds many samples).
const INTERVAL: &str = "30s";

// ---- A PROMETHEUS PROCESS ----

/// A `prometheus` process with its own config and TSDB directory, killed on drop.
struct Prometheus {
    addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` every second as job `kura`, or returns `None`
    /// (skip) when it is not installed.
    fn start(targets: &[SocketAddr]) -> Option<Prometheus> {
        let bin = need_program("prometheus")?;
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: kura\n    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        );
        // The port is free when chosen but may be taken before Prometheus binds it; it then
        // exits, and we try another.
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("prometheus.yml"), &config).unwrap();
            let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let child = Command::new(&bin)
                .arg(format!(
                    "--config.file={}",
                    dir.path().join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("spawn prometheus");
            let mut p = Prometheus { addr, child, dir };
            let ready = wait_until(Duration::from_secs(30), || {
                p.exited() || http_get(addr, "/-/ready").is_ok_and(|(s, _)| s == 200)
            });
            if ready && !p.exited() {
                return Some(p);
            }
            eprintln!("prometheus did not start on {addr}:\n{}", p.log());
        }
        panic!("prometheus did not start on a free port");
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Runs an instant query; returns the result's series (a scalar counts as one), or the
    /// error Prometheus gave.
    fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let path = format!("/api/v1/query?query={}", url_encode(expr));
        let (status, body) = http_get(self.addr, &path).map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if status != 200 || v["status"] != "success" {
            return Err(format!("HTTP {status}: {}", v["error"]));
        }
        match &v["data"]["result"] {
            Value::Array(series) => Ok(series.clone()),
            other => Ok(vec![other.clone()]),
        }
    }

    /// Returns the `instance` labels of the series `expr` returns.
    fn instances(&self, expr: &str) -> BTreeSet<String> {
        self.query(expr)
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s["metric"]["instance"].as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- THE SHIPPED DASHBOARDS ----

/// One query of one panel of one dashboard.
#[derive(Debug)]
struct PanelQuery {
    dashboard: String,
    panel: String,
    expr: String,
}

fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

/// Every `dashboards/*.json`, parsed.
fn dashboards() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dashboards_dir()).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((path.file_name().unwrap().to_string_lossy().into_owned(), v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no dashboards in {:?}", dashboards_dir());
    out
}

/// Every panel of a dashboard, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Every target expression of every panel of every shipped dashboard.
fn panel_queries() -> Vec<PanelQuery> {
    let mut out = Vec::new();
    for (name, d) in dashboards() {
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().unwrap_or_else(|| {
                    panic!("{name}: a target of {:?} has no PromQL expr", p["title"])
                });
                out.push(PanelQuery {
                    dashboard: name.clone(),
                    panel: p["title"].as_str().unwrap_or("?").to_string(),
                    expr: expr.to_string(),
                });
            }
        }
    }
    out
}

/// Replaces Grafana's variables as a dashboard showing every instance would, and fails on a
/// variable it does not know (so a new one cannot slip through unqueried).
fn substitute(expr: &str) -> String {
    let mut out = expr.to_string();
    for (var, with) in [
        ("${__rate_interval}", INTERVAL),
        ("$__rate_interval", INTERVAL),
        ("${__interval}", INTERVAL),
        ("$__interval", INTERVAL),
        ("${instance}", ".*"),
        ("$instance", ".*"),
    ] {
        out = out.replace(var, with);
    }
    let left = out
        .char_indices()
        .find(|&(i, c)| {
            c == '$'
                && out[i + 1..]
                    .chars()
                    .next()
                    .is_some_and(|n| n == '{' || n == '_' || n.is_ascii_alphabetic())
        })
        .map(|(i, _)| &out[i..]);
    assert!(left.is_none(), "unknown variable in {expr:?}: {left:?}");
    out
}

// ---- WHAT PROMETHEUS SCRAPES ----

/// Returns where `kura` serves `GET /metrics` (its HTTP door, on a free port in tests).
fn metrics_addr(kura: &Kura) -> SocketAddr {
    kura.http.expect("the test kura serves HTTP")
}

/// Returns `kura`'s `/metrics` body.
fn metrics_body(kura: &Kura) -> String {
    let (status, body) = http_get(metrics_addr(kura), "/metrics").unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

// ---- TESTS ----

/// A kura master and its kura replica after traffic on both doors and a BGSAVE, both
/// scraped every second by a real Prometheus whose targets are up.
struct Scraped {
    prom: Prometheus,
    /// The `instance` labels of the two kuras.
    want: BTreeSet<String>,
    _kuras: [Kura; 2],
}

impl Scraped {
    /// Sets it all up, or returns `None` (skip) when a program is missing.
    fn start() -> Option<Scraped> {
        let (master, replica) = master_and_replica();
        traffic(&master);
        wait_synced(&mut replica.client(), &mut master.client());
        wait_acked(&mut master.client());
        let targets = [metrics_addr(&master), metrics_addr(&replica)];
        let prom = Prometheus::start(&targets)?;
        let want: BTreeSet<String> = targets.iter().map(|a| a.to_string()).collect();
        assert!(
            wait_until(Duration::from_secs(30), || prom
                .instances("up{job=\"kura\"} == 1")
                == want),
            "targets not up: {:?}\n{}",
            prom.query("up"),
            prom.log()
        );
        Some(Scraped {
            prom,
            want,
            _kuras: [master, replica],
        })
    }
}

#[test]
fn dashboard_763_series_are_scraped_and_every_panel_query_parses() {
    let Some(s) = Scraped::start() else {
        return;
    };
    let mut missing = Vec::new();
    for name in DASHBOARD_763 {
        let got = s.prom.instances(&format!("{name}{{job=\"kura\"}}"));
        if got != s.want {
            missing.push(format!("{name}: from {got:?}, want {:?}", s.want));
        }
    }
    assert!(
        missing.is_empty(),
        "dashboard 763 series missing:\n  {}",
        missing.join("\n  ")
    );
    // Prometheus accepts every panel query (the next test wants series from each).
    let invalid: Vec<String> = panel_queries()
        .iter()
        .filter_map(|q| {
            let expr = substitute(&q.expr);
            let e = s.prom.query(&expr).err()?;
            Some(format!("{} / {}: {e}: {expr}", q.dashboard, q.panel))
        })
        .collect();
    assert!(invalid.is_empty(), "{invalid:#?}");
}

#[test]
fn every_dashboard_query_returns_series_from_a_scraped_kura() {
    let Some(s) = Scraped::start() else {
        return;
    };
    let (prom, want) = (&s.prom, &s.want);

    // Every panel query of every dashboard, retried until rate() has two samples in its
    // window; failures are reported together.
    let queries = panel_queries();
    assert!(queries.len() >= 20, "{} queries", queries.len());
    let deadline = Instant::now() + Duration::from_secs(30);
    let failures = loop {
        let failures: Vec<String> = queries
            .iter()
            .filter_map(|q| {
                let expr = substitute(&q.expr);
                match prom.query(&expr) {
                    Ok(series) if !series.is_empty() => None,
                    Ok(_) => Some(format!("{} / {}: no series: {expr}", q.dashboard, q.panel)),
                    Err(e) => Some(format!("{} / {}: {e}: {expr}", q.dashboard, q.panel)),
                }
            })
            .collect();
        if failures.is_empty() || Instant::now() > deadline {
            break failures;
        }
        std::thread::sleep(Duration::from_secs(1));
    };

    // The variables' label_values(metric, instance) queries find both kuras.
    let mut variables = Vec::new();
    for (name, d) in dashboards() {
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            let Some(def) = v["definition"].as_str() else {
                continue;
            };
            let inner = def
                .strip_prefix("label_values(")
                .and_then(|s| s.strip_suffix(')'))
                .unwrap_or_else(|| panic!("{name}: variable query {def:?}"));
            let (metric, label) = inner.split_once(',').unwrap();
            assert_eq!(label.trim(), "instance", "{name}: {def}");
            let got = prom.instances(metric.trim());
            if &got != want {
                variables.push(format!("{name}: {def} gives {got:?}, want {want:?}"));
            }
        }
    }

    assert!(
        failures.is_empty() && variables.is_empty(),
        "panel queries without series:\n  {}\nvariables:\n  {}",
        failures.join("\n  "),
        variables.join("\n  ")
    );
}

#[test]
fn promtool_finds_no_lint_in_kuras_own_families() {
    let kura = Kura::start();
    traffic(&kura);
    let Some(promtool) = need_program("promtool") else {
        return;
    };
    let body = metrics_body(&kura);
    assert!(
        body.contains("\nkura_forward_records_received_total 1\n"),
        "{body}"
    );
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Exit 0: clean; 3: lint problems (one "<metric> <problem>" line each); anything else
    // (1: a parse error) fails.
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "promtool: {:?}\n{stdout}{stderr}",
        out.status
    );
    assert!(!stderr.contains("error while linting"), "{stderr}");
    let ours: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| !l.trim().is_empty() && !l.starts_with("redis_"))
        .collect();
    assert!(ours.is_empty(), "promtool lints kura's families: {ours:#?}");
}

#[test]
fn dashboards_import_and_provision_on_ds_prometheus() {
    let ds = serde_json::json!({"type": "prometheus", "uid": "${DS_PROMETHEUS}"});
    for (name, d) in dashboards() {
        let inputs = d["__inputs"].as_array().unwrap();
        assert!(
            inputs
                .iter()
                .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
            "{name}: __inputs {inputs:?}"
        );
        assert!(d["schemaVersion"].as_u64().unwrap() >= 36, "{name}");
        assert!(d["uid"].is_string() && d["title"].is_string(), "{name}");
        assert!(
            d["id"].is_null(),
            "{name}: an id ties it to one Grafana database"
        );
        let vars = d["templating"]["list"].as_array().unwrap();
        // Provisioning does not fill in __inputs: a datasource variable of the same name
        // gives `${DS_PROMETHEUS}` a value there, defaulting to the provisioned Prometheus.
        assert!(
            vars.iter().any(|v| v["name"] == "DS_PROMETHEUS"
                && v["type"] == "datasource"
                && v["query"] == "prometheus"),
            "{name}: no DS_PROMETHEUS datasource variable"
        );
        let instance = vars.iter().find(|v| v["name"] == "instance").unwrap();
        assert_eq!(instance["datasource"], ds, "{name}");
        assert_eq!(
            instance["definition"], "label_values(redis_up, instance)",
            "{name}"
        );
        let mut ids = BTreeSet::new();
        for p in panels(&d) {
            let title = &p["title"];
            assert!(
                ids.insert(p["id"].as_u64().unwrap()),
                "{name}: id of {title}"
            );
            if p["type"] == "row" {
                continue;
            }
            assert_eq!(p["datasource"], ds, "{name}: {title}");
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{name}: {title} has no query");
            for t in targets {
                assert_eq!(t["datasource"], ds, "{name}: {title}");
                let expr = t["expr"].as_str().unwrap();
                assert!(
                    expr.contains("instance=~\"$instance\""),
                    "{name}: {title} ignores the instance variable: {expr}"
                );
            }
        }
    }

    // The provisioning files: a Prometheus datasource, and a file provider whose path is
    // where deploy/docker-compose.yml mounts the dashboards.
    let prov = dashboards_dir().join("provisioning");
    let datasources = std::fs::read_to_string(prov.join("datasources.yml")).unwrap();
    assert!(datasources.starts_with("# ") && datasources.contains("\napiVersion: 1\n"));
    assert!(
        datasources.contains("\n    type: prometheus\n"),
        "{datasources}"
    );
    assert!(datasources.contains("\n    url: http://prometheus:9090\n"));
    let providers = std::fs::read_to_string(prov.join("dashboards.yml")).unwrap();
    assert!(providers.contains("\napiVersion: 1\n") && providers.contains("\n    type: file\n"));
    let path = providers
        .lines()
        .find_map(|l| l.trim().strip_prefix("path: "))
        .unwrap();
    for line in datasources.lines().chain(providers.lines()) {
        assert!(!line.contains('\t'), "YAML has no tabs: {line:?}");
    }
    let compose = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/docker-compose.yml");
    if let Ok(compose) = std::fs::read_to_string(compose) {
        for (file, at) in [
            ("../dashboards/kura.json", format!("{path}/kura.json")),
            (
                "../dashboards/provisioning/datasources.yml",
                "/etc/grafana/provisioning/datasources/".into(),
            ),
            (
                "../dashboards/provisioning/dashboards.yml",
                "/etc/grafana/provisioning/dashboards/".into(),
            ),
        ] {
            assert!(
                compose
                    .lines()
                    .any(|l| l.contains(&format!("{file}:")) && l.contains(at.as_str())),
                "deploy/docker-compose.yml does not mount {file} at {at}"
            );
        }
    }
}
