//! The `redis_*` families, named, typed and labelled exactly as redis_exporter 1.45 makes
//! them from a Redis 7.0 INFO (`shared/spec/redis.md` §5.2, §5.3), so dashboard 763, the
//! redis-mixin and alerts written for the exporter work against kura unchanged — lints of
//! the exporter's spelling included (`redis_connected_slaves` is a gauge without a unit).

use super::exposition::{Exposition, Kind};
use super::info::{pairs, Info};

/// INFO fields the exporter turns into gauges: (field, metric name without `redis_`).
const GAUGES: &[(&str, &str)] = &[
    // Server
    ("uptime_in_seconds", "uptime_in_seconds"),
    ("process_id", "process_id"),
    ("io_threads_active", "io_threads_active"),
    // Clients
    ("connected_clients", "connected_clients"),
    ("blocked_clients", "blocked_clients"),
    ("tracking_clients", "tracking_clients"),
    ("clients_in_timeout_table", "clients_in_timeout_table"),
    ("cluster_connections", "cluster_connections"),
    (
        "client_recent_max_output_buffer",
        "client_recent_max_output_buffer_bytes",
    ),
    (
        "client_recent_max_input_buffer",
        "client_recent_max_input_buffer_bytes",
    ),
    // Memory
    ("allocator_active", "allocator_active_bytes"),
    ("allocator_allocated", "allocator_allocated_bytes"),
    ("allocator_resident", "allocator_resident_bytes"),
    ("allocator_frag_ratio", "allocator_frag_ratio"),
    ("allocator_frag_bytes", "allocator_frag_bytes"),
    ("allocator_rss_ratio", "allocator_rss_ratio"),
    ("allocator_rss_bytes", "allocator_rss_bytes"),
    ("used_memory", "memory_used_bytes"),
    ("used_memory_rss", "memory_used_rss_bytes"),
    ("used_memory_peak", "memory_used_peak_bytes"),
    ("used_memory_lua", "memory_used_lua_bytes"),
    ("used_memory_overhead", "memory_used_overhead_bytes"),
    ("used_memory_startup", "memory_used_startup_bytes"),
    ("used_memory_dataset", "memory_used_dataset_bytes"),
    ("used_memory_scripts", "memory_used_scripts_bytes"),
    ("number_of_cached_scripts", "number_of_cached_scripts"),
    ("maxmemory", "memory_max_bytes"),
    ("mem_fragmentation_ratio", "mem_fragmentation_ratio"),
    ("mem_fragmentation_bytes", "mem_fragmentation_bytes"),
    ("mem_clients_slaves", "mem_clients_slaves"),
    ("mem_clients_normal", "mem_clients_normal"),
    (
        "mem_not_counted_for_evict",
        "mem_not_counted_for_eviction_bytes",
    ),
    ("lazyfree_pending_objects", "lazyfree_pending_objects"),
    ("active_defrag_running", "active_defrag_running"),
    // Persistence
    ("loading", "loading_dump_file"),
    ("rdb_changes_since_last_save", "rdb_changes_since_last_save"),
    ("rdb_bgsave_in_progress", "rdb_bgsave_in_progress"),
    ("rdb_last_save_time", "rdb_last_save_timestamp_seconds"),
    ("rdb_last_bgsave_status", "rdb_last_bgsave_status"),
    ("rdb_last_bgsave_time_sec", "rdb_last_bgsave_duration_sec"),
    (
        "rdb_current_bgsave_time_sec",
        "rdb_current_bgsave_duration_sec",
    ),
    ("rdb_last_cow_size", "rdb_last_cow_size_bytes"),
    ("aof_enabled", "aof_enabled"),
    ("aof_rewrite_in_progress", "aof_rewrite_in_progress"),
    ("aof_rewrite_scheduled", "aof_rewrite_scheduled"),
    ("aof_last_rewrite_time_sec", "aof_last_rewrite_duration_sec"),
    (
        "aof_current_rewrite_time_sec",
        "aof_current_rewrite_duration_sec",
    ),
    ("aof_last_cow_size", "aof_last_cow_size_bytes"),
    ("aof_current_size", "aof_current_size_bytes"),
    ("aof_base_size", "aof_base_size_bytes"),
    ("aof_pending_rewrite", "aof_pending_rewrite"),
    ("aof_buffer_length", "aof_buffer_length"),
    ("aof_rewrite_buffer_length", "aof_rewrite_buffer_length"),
    ("aof_pending_bio_fsync", "aof_pending_bio_fsync"),
    ("aof_delayed_fsync", "aof_delayed_fsync"),
    ("aof_last_bgrewrite_status", "aof_last_bgrewrite_status"),
    ("aof_last_write_status", "aof_last_write_status"),
    ("module_fork_in_progress", "module_fork_in_progress"),
    ("module_fork_last_cow_size", "module_fork_last_cow_size"),
    // Stats
    ("pubsub_channels", "pubsub_channels"),
    ("pubsub_patterns", "pubsub_patterns"),
    ("expired_stale_perc", "expired_stale_percentage"),
    (
        "expired_time_cap_reached_count",
        "expired_time_cap_reached_total",
    ),
    ("migrate_cached_sockets", "migrate_cached_sockets_total"),
    ("active_defrag_hits", "defrag_hits"),
    ("active_defrag_misses", "defrag_misses"),
    ("active_defrag_key_hits", "defrag_key_hits"),
    ("active_defrag_key_misses", "defrag_key_misses"),
    ("slave_expires_tracked_keys", "slave_expires_tracked_keys"),
    ("tracking_total_keys", "tracking_total_keys"),
    ("tracking_total_items", "tracking_total_items"),
    ("tracking_total_prefixes", "tracking_total_prefixes"),
    ("sync_full", "replica_resyncs_full"),
    ("sync_partial_ok", "replica_partial_resync_accepted"),
    ("sync_partial_err", "replica_partial_resync_denied"),
    // Replication
    ("connected_slaves", "connected_slaves"),
    ("repl_backlog_size", "replication_backlog_bytes"),
    ("repl_backlog_active", "repl_backlog_is_active"),
    (
        "repl_backlog_first_byte_offset",
        "repl_backlog_first_byte_offset",
    ),
    ("repl_backlog_histlen", "repl_backlog_history_bytes"),
    ("master_repl_offset", "master_repl_offset"),
    ("second_repl_offset", "second_repl_offset"),
    ("slave_priority", "slave_priority"),
    // Cluster
    ("cluster_enabled", "cluster_enabled"),
];

/// INFO fields the exporter turns into counters.
const COUNTERS: &[(&str, &str)] = &[
    ("total_connections_received", "connections_received_total"),
    ("total_commands_processed", "commands_processed_total"),
    ("rejected_connections", "rejected_connections_total"),
    ("total_net_input_bytes", "net_input_bytes_total"),
    ("total_net_output_bytes", "net_output_bytes_total"),
    ("expired_keys", "expired_keys_total"),
    ("evicted_keys", "evicted_keys_total"),
    ("keyspace_hits", "keyspace_hits_total"),
    ("keyspace_misses", "keyspace_misses_total"),
    ("used_cpu_sys", "cpu_sys_seconds_total"),
    ("used_cpu_user", "cpu_user_seconds_total"),
    ("used_cpu_sys_children", "cpu_sys_children_seconds_total"),
    ("used_cpu_user_children", "cpu_user_children_seconds_total"),
    (
        "used_cpu_sys_main_thread",
        "cpu_sys_main_thread_seconds_total",
    ),
    (
        "used_cpu_user_main_thread",
        "cpu_user_main_thread_seconds_total",
    ),
    ("unexpected_error_replies", "unexpected_error_replies"),
    ("total_error_replies", "total_error_replies"),
    ("dump_payload_sanitizations", "dump_payload_sanitizations"),
    ("total_reads_processed", "total_reads_processed"),
    ("total_writes_processed", "total_writes_processed"),
    ("io_threaded_reads_processed", "io_threaded_reads_processed"),
    (
        "io_threaded_writes_processed",
        "io_threaded_writes_processed",
    ),
];

/// The exporter's value rule: `ok`/`true` are 1, `err`/`fail`/`false` are 0, else a float
/// (`None`: not a number, no sample).
fn value(v: &str) -> Option<f64> {
    match v {
        "ok" | "true" => Some(1.0),
        "err" | "fail" | "false" => Some(0.0),
        _ => v.parse().ok(),
    }
}

/// Settings the exporter reads with `CONFIG GET *` on every scrape.
#[derive(Debug, Clone, Copy)]
pub struct ConfigFacts {
    /// `databases`: `redis_db_keys` is zero-padded for db0..databases-1.
    pub databases: usize,
    /// `maxmemory` (`redis_config_maxmemory`).
    pub maxmemory: u64,
    /// `maxclients` (`redis_config_maxclients`).
    pub maxclients: usize,
}

/// Writes every `redis_*` family the exporter would make from `info` and `cfg`;
/// `now_unix` gives `redis_start_time_seconds`.
pub fn write(out: &mut Exposition, info: &Info, cfg: ConfigFacts, now_unix: i64) {
    out.single(
        "redis_up",
        Kind::Gauge,
        "Information about the Redis instance",
        1.0,
    );
    for (_, fields) in &info.sections {
        for (k, v) in fields {
            if let Some((_, name)) = GAUGES.iter().find(|(f, _)| f == k) {
                if let Some(x) = value(v) {
                    let full = format!("redis_{name}");
                    out.single(&full, Kind::Gauge, name, x);
                }
            } else if let Some((_, name)) = COUNTERS.iter().find(|(f, _)| f == k) {
                if let Some(x) = value(v) {
                    let full = format!("redis_{name}");
                    out.single(&full, Kind::Counter, name, x);
                }
            } else if k == "latest_fork_usec" {
                if let Some(x) = value(v) {
                    out.single(
                        "redis_latest_fork_seconds",
                        Kind::Gauge,
                        "latest_fork_seconds",
                        x / 1e6,
                    );
                }
            }
        }
    }
    if let Some(up) = info.get("uptime_in_seconds").and_then(value) {
        out.single(
            "redis_start_time_seconds",
            Kind::Gauge,
            "Start time of the Redis instance since unix epoch in seconds.",
            now_unix as f64 - up,
        );
    }
    instance_info(out, info);
    replication(out, info);
    keyspace(out, info, cfg.databases);
    commands(out, info);
    errors(out, info);
    out.single(
        "redis_config_maxmemory",
        Kind::Gauge,
        "config_maxmemory",
        cfg.maxmemory as f64,
    );
    out.single(
        "redis_config_maxclients",
        Kind::Gauge,
        "config_maxclients",
        cfg.maxclients as f64,
    );
    out.single(
        "redis_config_io_threads",
        Kind::Gauge,
        "config_io_threads",
        1.0,
    );
}

/// `redis_instance_info{role, redis_version, …} 1`.
fn instance_info(out: &mut Exposition, info: &Info) {
    let field = |k: &str| info.get(k).unwrap_or("").to_string();
    let labels = [
        ("maxmemory_policy", field("maxmemory_policy")),
        ("os", field("os")),
        ("process_id", field("process_id")),
        ("redis_build_id", field("redis_build_id")),
        ("redis_mode", field("redis_mode")),
        ("redis_version", field("redis_version")),
        ("role", field("role")),
        ("run_id", field("run_id")),
        ("tcp_port", field("tcp_port")),
    ];
    let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    out.sample(
        "redis_instance_info",
        Kind::Gauge,
        "Information about the Redis instance",
        "",
        &labels,
        1.0,
    );
}

/// The replication section's labelled families.
fn replication(out: &mut Exposition, info: &Info) {
    for r in info.replicas() {
        let labels = [
            ("slave_ip", r.ip.as_str()),
            ("slave_port", r.port.as_str()),
            ("slave_state", r.state.as_str()),
        ];
        out.sample(
            "redis_connected_slave_offset_bytes",
            Kind::Gauge,
            "Offset of connected slave",
            "",
            &labels,
            r.offset as f64,
        );
        if let Some(lag) = r.lag {
            out.sample(
                "redis_connected_slave_lag_seconds",
                Kind::Gauge,
                "Lag of connected slave",
                "",
                &labels,
                lag as f64,
            );
        }
    }
    if info.get("role") != Some("slave") {
        return;
    }
    let host = info.get("master_host").unwrap_or("");
    let port = info.get("master_port").unwrap_or("");
    let labels = [("master_host", host), ("master_port", port)];
    let up = info.get("master_link_status") == Some("up");
    out.sample(
        "redis_master_link_up",
        Kind::Gauge,
        "master_link_up",
        "",
        &labels,
        f64::from(u8::from(up)),
    );
    for (field, help) in [
        ("master_last_io_seconds_ago", "master_last_io_seconds_ago"),
        ("master_sync_in_progress", "master_sync_in_progress"),
        ("slave_repl_offset", "slave_repl_offset"),
    ] {
        if let Some(x) = info.get(field).and_then(value) {
            out.sample(&format!("redis_{field}"), Kind::Gauge, help, "", &labels, x);
        }
    }
    let read_only = info.get("slave_read_only").unwrap_or("");
    out.sample(
        "redis_slave_info",
        Kind::Gauge,
        "Information about the Redis slave",
        "",
        &[
            ("master_host", host),
            ("master_port", port),
            ("read_only", read_only),
        ],
        1.0,
    );
}

/// `redis_db_keys{db="dbN"}` and friends; databases without keys report 0.
fn keyspace(out: &mut Exposition, info: &Info, databases: usize) {
    let listed = info.section("Keyspace");
    for n in 0..databases {
        let db = format!("db{n}");
        let found = listed.iter().find(|(k, _)| *k == db).map(|(_, v)| pairs(v));
        let get = |name: &str| {
            found
                .as_ref()
                .and_then(|p| p.iter().find(|(k, _)| *k == name))
                .and_then(|(_, v)| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let labels = [("db", db.as_str())];
        out.sample(
            "redis_db_keys",
            Kind::Gauge,
            "Total number of keys by DB",
            "",
            &labels,
            get("keys"),
        );
        out.sample(
            "redis_db_keys_expiring",
            Kind::Gauge,
            "Total number of expiring keys by DB",
            "",
            &labels,
            get("expires"),
        );
        if found.is_some() {
            out.sample(
                "redis_db_avg_ttl_seconds",
                Kind::Gauge,
                "Avg TTL in seconds",
                "",
                &labels,
                get("avg_ttl") / 1000.0,
            );
        }
    }
}

/// Commandstats and latencystats: `redis_commands_total{cmd}` and friends.
fn commands(out: &mut Exposition, info: &Info) {
    let mut calls_usec: Vec<(String, f64, f64)> = Vec::new();
    for (k, v) in info.section("Commandstats") {
        let Some(cmd) = k.strip_prefix("cmdstat_") else {
            continue;
        };
        let p = pairs(v);
        let get = |name: &str| {
            p.iter()
                .find(|(k, _)| *k == name)
                .and_then(|(_, v)| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let labels = [("cmd", cmd)];
        out.sample(
            "redis_commands_total",
            Kind::Counter,
            "Total number of calls per command",
            "",
            &labels,
            get("calls"),
        );
        out.sample(
            "redis_commands_duration_seconds_total",
            Kind::Counter,
            "Total amount of time in seconds spent per command",
            "",
            &labels,
            get("usec") / 1e6,
        );
        out.sample(
            "redis_commands_rejected_calls_total",
            Kind::Counter,
            "Total number of errors prior command execution per command",
            "",
            &labels,
            get("rejected_calls"),
        );
        out.sample(
            "redis_commands_failed_calls_total",
            Kind::Counter,
            "Total number of errors within command execution per command",
            "",
            &labels,
            get("failed_calls"),
        );
        calls_usec.push((cmd.to_string(), get("calls"), get("usec")));
    }
    for (k, v) in info.section("Latencystats") {
        let Some(cmd) = k.strip_prefix("latency_percentiles_usec_") else {
            continue;
        };
        for (q, x) in pairs(v) {
            let quantile = match q {
                "p50" => "0.5",
                "p99" => "0.99",
                "p99.9" => "0.999",
                _ => continue,
            };
            if let Ok(x) = x.parse::<f64>() {
                out.sample(
                    "redis_latency_percentiles_usec",
                    Kind::Summary,
                    "A summary of latency percentile distribution per command",
                    "",
                    &[("cmd", cmd), ("quantile", quantile)],
                    x,
                );
            }
        }
        if let Some((_, calls, usec)) = calls_usec.iter().find(|(c, _, _)| c == cmd) {
            let labels = [("cmd", cmd)];
            let help = "A summary of latency percentile distribution per command";
            out.sample(
                "redis_latency_percentiles_usec",
                Kind::Summary,
                help,
                "_sum",
                &labels,
                *usec,
            );
            out.sample(
                "redis_latency_percentiles_usec",
                Kind::Summary,
                help,
                "_count",
                &labels,
                *calls,
            );
        }
    }
}

/// Errorstats: `redis_errors_total{err="WRONGTYPE"}`.
fn errors(out: &mut Exposition, info: &Info) {
    for (k, v) in info.section("Errorstats") {
        let Some(err) = k.strip_prefix("errorstat_") else {
            continue;
        };
        let count = pairs(v)
            .iter()
            .find(|(k, _)| *k == "count")
            .and_then(|(_, v)| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        out.sample(
            "redis_errors_total",
            Kind::Counter,
            "Total number of errors per error type",
            "",
            &[("err", err)],
            count,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(info: &str) -> String {
        let mut e = Exposition::default();
        let cfg = ConfigFacts {
            databases: 2,
            maxmemory: 0,
            maxclients: 10000,
        };
        write(&mut e, &Info::parse(info), cfg, 1000);
        let mut out = String::new();
        e.render(&mut out);
        out
    }

    #[test]
    fn info_fields_become_the_exporters_series() {
        let out = render(
            "# Server\r\nuptime_in_seconds:264\r\nrole:master\r\n\r\n# Persistence\r\n\
             rdb_last_bgsave_status:ok\r\nrdb_last_save_time:1795528616\r\n\r\n\
             # Stats\r\nkeyspace_hits:6\r\nlatest_fork_usec:1500\r\n\r\n# Replication\r\n\
             role:master\r\nconnected_slaves:1\r\n\
             slave0:ip=127.0.0.1,port=6517,state=online,offset=466,lag=0\r\n\r\n\
             # Commandstats\r\n\
             cmdstat_set:calls=11,usec=67,usec_per_call=6.09,rejected_calls=0,failed_calls=0\r\n\
             cmdstat_config|get:calls=1,usec=5,usec_per_call=5.00,rejected_calls=0,failed_calls=0\r\n\
             \r\n# Errorstats\r\nerrorstat_WRONGTYPE:count=1\r\n\r\n# Keyspace\r\n\
             db0:keys=6,expires=1,avg_ttl=836262\r\n",
        );
        for line in [
            "redis_up 1\n",
            "# TYPE redis_uptime_in_seconds gauge\nredis_uptime_in_seconds 264\n",
            "redis_start_time_seconds 736\n",
            "redis_rdb_last_bgsave_status 1\n",
            "redis_rdb_last_save_timestamp_seconds 1795528616\n",
            "# TYPE redis_keyspace_hits_total counter\nredis_keyspace_hits_total 6\n",
            "redis_latest_fork_seconds 0.0015\n",
            "redis_connected_slave_offset_bytes{slave_ip=\"127.0.0.1\",slave_port=\"6517\",slave_state=\"online\"} 466\n",
            "redis_connected_slave_lag_seconds{slave_ip=\"127.0.0.1\",slave_port=\"6517\",slave_state=\"online\"} 0\n",
            "redis_commands_total{cmd=\"set\"} 11\n",
            "redis_commands_total{cmd=\"config|get\"} 1\n",
            "redis_commands_duration_seconds_total{cmd=\"set\"} 0.000067\n",
            "redis_errors_total{err=\"WRONGTYPE\"} 1\n",
            "redis_db_keys{db=\"db0\"} 6\n",
            "redis_db_keys{db=\"db1\"} 0\n",
            "redis_db_keys_expiring{db=\"db0\"} 1\n",
            "redis_db_avg_ttl_seconds{db=\"db0\"} 836.262\n",
            "redis_config_maxclients 10000\n",
        ] {
            assert!(out.contains(line), "missing {line:?} in\n{out}");
        }
        assert!(!out.contains("redis_master_link_up"));
        assert!(!out.contains("redis_db_avg_ttl_seconds{db=\"db1\"}"));
    }

    #[test]
    fn a_replica_reports_its_master_link() {
        let out = render(
            "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:6511\r\n\
             master_link_status:up\r\nmaster_last_io_seconds_ago:3\r\n\
             master_sync_in_progress:0\r\nslave_repl_offset:466\r\nslave_read_only:1\r\n",
        );
        for line in [
            "redis_master_link_up{master_host=\"127.0.0.1\",master_port=\"6511\"} 1\n",
            "redis_master_last_io_seconds_ago{master_host=\"127.0.0.1\",master_port=\"6511\"} 3\n",
            "redis_slave_repl_offset{master_host=\"127.0.0.1\",master_port=\"6511\"} 466\n",
            "redis_slave_info{master_host=\"127.0.0.1\",master_port=\"6511\",read_only=\"1\"} 1\n",
        ] {
            assert!(out.contains(line), "missing {line:?} in\n{out}");
        }
    }
}
