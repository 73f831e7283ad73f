//! `GET /`: a small status page for a browser, rendered on the server (no JavaScript; it
//! reloads itself every 5 seconds).

use axum::extract::State;
use axum::response::Html;

use super::health::Replication;
use super::info::{pairs, Info};
use super::{off_runtime, ApiError, Door};
use crate::state::ServerState;

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2h 03m 04s` for a duration in seconds.
fn ago(secs: i64) -> String {
    if secs < 0 {
        return "never".into();
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// `GET /`.
pub async fn status_page(State(door): State<Door>) -> Result<Html<String>, ApiError> {
    off_runtime(&door.srv, |srv| render(srv)).await.map(Html)
}

/// Builds the page.
fn render(srv: &ServerState) -> String {
    let info = Info::read_sections(srv, &["default"]);
    let repl = Replication::from_info(&info);
    let now = srv.clock.now_ms() / 1000;
    let field = |k: &str| esc(info.get(k).unwrap_or(""));
    let mut rows: Vec<(String, String)> = vec![
        ("role".into(), esc(&repl.role)),
        (
            "version".into(),
            format!("kura (Redis {})", field("redis_version")),
        ),
        ("uptime".into(), ago(info.int("uptime_in_seconds"))),
        (
            "memory used".into(),
            format!(
                "{} (peak {})",
                field("used_memory_human"),
                field("used_memory_peak_human")
            ),
        ),
        ("clients".into(), field("connected_clients")),
        ("blocked clients".into(), field("blocked_clients")),
        ("ingest".into(), format!("{} records/s", info.ingest_rate)),
        (
            "forward connections".into(),
            srv.metrics.forward.connections.get().to_string(),
        ),
        (
            "commands".into(),
            format!("{} ops/s", field("instantaneous_ops_per_sec")),
        ),
    ];
    let last_save = info.int("rdb_last_save_time");
    rows.push((
        "last save".into(),
        format!(
            "{} ago, last bgsave {} ({} s){}",
            ago(if last_save > 0 { now - last_save } else { -1 }),
            field("rdb_last_bgsave_status"),
            field("rdb_last_bgsave_time_sec"),
            if info.int("rdb_bgsave_in_progress") == 1 {
                ", a bgsave is running"
            } else {
                ""
            }
        ),
    ));
    rows.push((
        "changes since last save".into(),
        field("rdb_changes_since_last_save"),
    ));
    rows.push((
        "append only file".into(),
        if info.int("aof_enabled") == 1 {
            "on".into()
        } else {
            "off".into()
        },
    ));
    if let Some(m) = &repl.master {
        rows.push((
            "master".into(),
            format!(
                "{}:{} link {} (last io {} s ago){}",
                esc(&m.host),
                m.port,
                if m.link_up { "up" } else { "down" },
                m.last_io_seconds_ago,
                if m.sync_in_progress {
                    ", full sync in progress"
                } else {
                    ""
                }
            ),
        ));
    }
    rows.push(("replication offset".into(), repl.offset.to_string()));

    let mut html = String::with_capacity(4096);
    html.push_str(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\"><title>kura</title>\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;\
         margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:left}\
         th{background:#f3f3f3}</style></head><body>\n",
    );
    html.push_str(&format!(
        "<h1>kura on port {}</h1>\n<table>\n",
        field("tcp_port")
    ));
    for (k, v) in &rows {
        html.push_str(&format!("<tr><th>{}</th><td>{v}</td></tr>\n", esc(k)));
    }
    html.push_str("</table>\n<h2>Keys per database</h2>\n<table>\n");
    html.push_str("<tr><th>db</th><th>keys</th><th>expiring</th></tr>\n");
    let keyspace = info.section("Keyspace");
    if keyspace.is_empty() {
        html.push_str("<tr><td colspan=\"3\">no keys</td></tr>\n");
    }
    for (db, v) in keyspace {
        let p = pairs(v);
        let get = |n: &str| {
            p.iter()
                .find(|(k, _)| *k == n)
                .map_or(String::new(), |(_, v)| esc(v))
        };
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(db),
            get("keys"),
            get("expires")
        ));
    }
    html.push_str("</table>\n<h2>Replicas</h2>\n<table>\n");
    html.push_str("<tr><th>address</th><th>state</th><th>acked offset</th><th>lag</th></tr>\n");
    if repl.replicas.is_empty() {
        html.push_str("<tr><td colspan=\"4\">none attached</td></tr>\n");
    }
    for r in &repl.replicas {
        html.push_str(&format!(
            "<tr><td>{}:{}</td><td>{}</td><td>{}</td><td>{} bytes, {} s</td></tr>\n",
            esc(&r.ip),
            r.port,
            esc(&r.state),
            r.offset,
            r.lag_bytes,
            r.lag_seconds.map_or("-".into(), |l| l.to_string())
        ));
    }
    html.push_str(
        "</table>\n<p><a href=\"/metrics\">metrics</a> · <a href=\"/bgsave\">bgsave status</a> \
         · <a href=\"/replication\">replication</a> · <a href=\"/backup\">download a backup</a> \
         · <a href=\"/readyz\">readiness</a></p>\n</body></html>\n",
    );
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_durations() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(ago(-1), "never");
        assert_eq!(ago(5), "5s");
        assert_eq!(ago(65), "1m 05s");
        assert_eq!(ago(7384), "2h 03m 04s");
    }
}
