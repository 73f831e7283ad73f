//! INFO: Redis 7.0.15's sections, field names and field order (`server.c`
//! `genRedisInfoString`; `shared/spec/redis.md` §5.3b, §4.3, §2.10), with kura's own values
//! wherever it has them and Redis's idle values (0, `ok`, -1) where it has no such thing
//! (forks, Lua, defragmentation, client tracking).
//!
//! redis_exporter, Sidekiq and dashboards parse this text, so names and order are exact.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::cmd::exec::Ctx;
use crate::cmd::reply::{CmdResult, Reply};

/// The sections of `INFO` / `INFO default` (Redis's `default_sections`).
const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "module_list",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Which sections a call asked for (`genInfoSectionDict`).
struct Wanted {
    names: Vec<String>,
    all: bool,
}

impl Wanted {
    fn from_args(args: &[Bytes]) -> Wanted {
        let mut w = Wanted {
            names: Vec::new(),
            all: false,
        };
        if args.is_empty() {
            w.names = DEFAULT.iter().map(|s| s.to_string()).collect();
        }
        for a in args {
            let s = String::from_utf8_lossy(a).to_ascii_lowercase();
            match s.as_str() {
                "default" => w.names.extend(DEFAULT.iter().map(|s| s.to_string())),
                "all" | "everything" => w.all = true,
                _ => w.names.push(s),
            }
        }
        w
    }

    fn has(&self, section: &str) -> bool {
        self.all || self.names.iter().any(|n| n == section)
    }
}

/// `INFO [section ...]`: verbatim text in RESP3, a bulk string in RESP2.
pub fn info_cmd(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    Ok(Reply::Verbatim(info_text(ctx, &argv[1..])))
}

/// Builds the INFO text for the sections `args` name.
pub fn info_text(ctx: &mut Ctx<'_>, args: &[Bytes]) -> String {
    let w = Wanted::from_args(args);
    let mut sections: Vec<String> = Vec::new();
    let mut add = |title: &str, body: String| sections.push(format!("# {title}\r\n{body}"));
    if w.has("server") {
        add("Server", server(ctx));
    }
    if w.has("clients") {
        add("Clients", clients(ctx));
    }
    if w.has("memory") {
        add("Memory", memory(ctx));
    }
    if w.has("persistence") {
        add("Persistence", persistence(ctx));
    }
    if w.has("stats") {
        add("Stats", stats(ctx));
    }
    if w.has("replication") {
        add("Replication", replication(ctx));
    }
    if w.has("cpu") {
        add("CPU", cpu());
    }
    if w.has("module_list") || w.has("modules") {
        add("Modules", String::new());
    }
    if w.has("commandstats") {
        add("Commandstats", commandstats(ctx));
    }
    if w.has("errorstats") {
        add("Errorstats", errorstats(ctx));
    }
    if w.has("latencystats") {
        add("Latencystats", latencystats(ctx));
    }
    if w.has("cluster") {
        add("Cluster", "cluster_enabled:0\r\n".into());
    }
    if w.has("keyspace") {
        add("Keyspace", keyspace(ctx));
    }
    sections.join("\r\n")
}

/// Appends `name:value\r\n` lines.
macro_rules! fields {
    ($out:expr, $($name:literal => $value:expr),* $(,)?) => {
        { $( $out.push_str(&format!(concat!($name, ":{}\r\n"), $value)); )* }
    };
}

/// Formats a byte count as Redis's `bytesToHuman` (`894.85K`, `1.00M`).
pub fn human(n: u64) -> String {
    const K: f64 = 1024.0;
    let d = n as f64;
    if n < 1024 {
        format!("{n}B")
    } else if d < K * K {
        format!("{:.2}K", d / K)
    } else if d < K * K * K {
        format!("{:.2}M", d / (K * K))
    } else if d < K * K * K * K {
        format!("{:.2}G", d / (K * K * K))
    } else if d < K * K * K * K * K {
        format!("{:.2}T", d / (K * K * K * K))
    } else if d < K * K * K * K * K * K {
        format!("{:.2}P", d / (K * K * K * K * K))
    } else {
        format!("{n}B")
    }
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The 16-hex-digit build id Redis derives from its build; kura's comes from its version.
fn build_id() -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in env!("CARGO_PKG_VERSION").bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{:x}", h >> 4)
}

// ---- SECTIONS ----

fn server(ctx: &Ctx<'_>) -> String {
    let srv = ctx.srv;
    let mut s = String::new();
    let uptime = srv.started.elapsed().as_secs();
    let (hz, config_file) = srv.with_config(|c| (c.hz, c.config_file.clone()));
    let config_file = srv
        .config_file
        .lock()
        .ok()
        .and_then(|p| p.clone())
        .or(config_file)
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let os = format!(
        "{} {} {}",
        read_trim("/proc/sys/kernel/ostype"),
        read_trim("/proc/sys/kernel/osrelease"),
        std::env::consts::ARCH
    );
    let executable = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    fields!(s,
        "redis_version" => crate::REDIS_VERSION,
        "redis_git_sha1" => "00000000",
        "redis_git_dirty" => 0,
        "redis_build_id" => build_id(),
        "redis_mode" => "standalone",
        "os" => os,
        "arch_bits" => usize::BITS,
        "monotonic_clock" => "POSIX clock_gettime",
        "multiplexing_api" => "epoll",
        "atomicvar_api" => "c11-builtin",
        "gcc_version" => "0.0.0",
        "process_id" => std::process::id(),
        "process_supervised" => "no",
        "run_id" => srv.run_id,
        "tcp_port" => srv.tcp_port.load(Ordering::Relaxed),
        "server_time_usec" => srv.clock.now_us(),
        "uptime_in_seconds" => uptime,
        "uptime_in_days" => uptime / 86400,
        "hz" => hz,
        "configured_hz" => hz,
        "lru_clock" => (ctx.now / 1000) & ((1 << 24) - 1),
        "executable" => executable,
        "config_file" => config_file,
        "io_threads_active" => 0,
    );
    s
}

fn clients(ctx: &Ctx<'_>) -> String {
    let list = ctx.srv.clients.list();
    let replicas = list
        .iter()
        .filter(|c| c.flags.lock().is_ok_and(|f| f.contains('S')))
        .count();
    let max_qbuf = list
        .iter()
        .map(|c| c.qbuf.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    let maxclients = ctx.srv.with_config(|c| c.maxclients);
    let mut s = String::new();
    fields!(s,
        "connected_clients" => list.len() - replicas,
        "cluster_connections" => 0,
        "maxclients" => maxclients,
        "client_recent_max_input_buffer" => max_qbuf,
        "client_recent_max_output_buffer" => 0,
        "blocked_clients" => ctx.st.blocked.len(),
        "tracking_clients" => 0,
        "clients_in_timeout_table" => ctx.st.blocked.timed_len(),
    );
    s
}

fn total_system_memory() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn memory(ctx: &Ctx<'_>) -> String {
    let srv = ctx.srv;
    crate::memory::refresh(srv);
    let used = srv.used_memory.load(Ordering::Relaxed);
    let peak = srv.used_memory_peak.load(Ordering::Relaxed).max(used);
    let startup = srv.used_memory_startup.load(Ordering::Relaxed);
    let rss = crate::memory::rss();
    let resident = crate::memory::resident();
    let clients = srv.clients.len() as u64;
    let backlog = ctx.st.stream.histlen() as u64;
    let mem_clients = clients * 1024
        + srv
            .clients
            .list()
            .iter()
            .map(|c| c.qbuf.load(Ordering::Relaxed) as u64)
            .sum::<u64>();
    let overhead = (startup + backlog + mem_clients).min(used);
    let dataset = used - overhead;
    let (maxmemory, policy) = srv.with_config(|c| (c.maxmemory, c.maxmemory_policy.clone()));
    let system = total_system_memory();
    let mut s = String::new();
    fields!(s,
        "used_memory" => used,
        "used_memory_human" => human(used),
        "used_memory_rss" => rss,
        "used_memory_rss_human" => human(rss),
        "used_memory_peak" => peak,
        "used_memory_peak_human" => human(peak),
        "used_memory_peak_perc" => format!("{:.2}%", ratio(used, peak) * 100.0),
        "used_memory_overhead" => overhead,
        "used_memory_startup" => startup,
        "used_memory_dataset" => dataset,
        "used_memory_dataset_perc" => format!(
            "{:.2}%",
            ratio(dataset, used.saturating_sub(startup)) * 100.0
        ),
        "allocator_allocated" => used,
        "allocator_active" => resident,
        "allocator_resident" => resident,
        "total_system_memory" => system,
        "total_system_memory_human" => human(system),
        "used_memory_lua" => 0,
        "used_memory_vm_eval" => 0,
        "used_memory_lua_human" => human(0),
        "used_memory_scripts_eval" => 0,
        "number_of_cached_scripts" => 0,
        "number_of_functions" => 0,
        "number_of_libraries" => 0,
        "used_memory_vm_functions" => 0,
        "used_memory_vm_total" => 0,
        "used_memory_vm_total_human" => human(0),
        "used_memory_functions" => 0,
        "used_memory_scripts" => 0,
        "used_memory_scripts_human" => human(0),
        "maxmemory" => maxmemory,
        "maxmemory_human" => human(maxmemory),
        "maxmemory_policy" => policy,
        "allocator_frag_ratio" => format!("{:.2}", ratio(resident, used)),
        "allocator_frag_bytes" => resident.saturating_sub(used),
        "allocator_rss_ratio" => format!("{:.2}", ratio(rss, resident)),
        "allocator_rss_bytes" => rss.saturating_sub(resident),
        "rss_overhead_ratio" => format!("{:.2}", ratio(rss, resident)),
        "rss_overhead_bytes" => rss.saturating_sub(resident),
        "mem_fragmentation_ratio" => format!("{:.2}", ratio(rss, used)),
        "mem_fragmentation_bytes" => rss as i64 - used as i64,
        "mem_not_counted_for_evict" => 0,
        "mem_replication_backlog" => backlog,
        "mem_total_replication_buffers" => ctx.st.stream.buffered(),
        "mem_clients_slaves" => 0,
        "mem_clients_normal" => mem_clients,
        "mem_cluster_links" => 0,
        "mem_aof_buffer" => 0,
        "mem_allocator" => "jemalloc-5.3.0",
        "active_defrag_running" => 0,
        "lazyfree_pending_objects" => 0,
        "lazyfreed_objects" => 0,
    );
    s
}

fn persistence(ctx: &Ctx<'_>) -> String {
    let aof = ctx.srv.with_config(|c| c.appendonly);
    let a = &ctx.srv.aof.shared.status;
    let rewriting = a.rewrite_in_progress.load(Ordering::Relaxed);
    let save = &ctx.srv.save;
    let bgsave = save.bgsave_in_progress.load(Ordering::Acquire);
    let mut s = String::new();
    fields!(s,
        "loading" => u8::from(ctx.srv.loading.load(Ordering::Relaxed)),
        "async_loading" => 0,
        "current_cow_peak" => 0,
        "current_cow_size" => 0,
        "current_cow_size_age" => 0,
        "current_fork_perc" => "0.00",
        "current_save_keys_processed" => 0,
        "current_save_keys_total" => 0,
        "rdb_changes_since_last_save" => ctx.st.dirty,
        "rdb_bgsave_in_progress" => u8::from(bgsave),
        "rdb_last_save_time" => ctx.srv.lastsave.load(Ordering::Relaxed),
        "rdb_last_bgsave_status" => ok_err(save.last_bgsave_ok.load(Ordering::Relaxed)),
        "rdb_last_bgsave_time_sec" => save.last_bgsave_secs.load(Ordering::Relaxed),
        "rdb_current_bgsave_time_sec" => if bgsave {
            ctx.srv.clock.now_ms() / 1000 - save.bgsave_started.load(Ordering::Relaxed)
        } else {
            -1
        },
        "rdb_saves" => save.saves.load(Ordering::Relaxed),
        "rdb_last_cow_size" => 0,
        "rdb_last_load_keys_expired" => save.last_load_expired.load(Ordering::Relaxed),
        "rdb_last_load_keys_loaded" => save.last_load_loaded.load(Ordering::Relaxed),
        "aof_enabled" => u8::from(aof),
        "aof_rewrite_in_progress" => u8::from(rewriting),
        "aof_rewrite_scheduled" => u8::from(a.rewrite_scheduled.load(Ordering::Relaxed)),
        "aof_last_rewrite_time_sec" => a.last_rewrite_secs.load(Ordering::Relaxed),
        "aof_current_rewrite_time_sec" => if rewriting {
            ctx.srv.clock.now_ms() / 1000 - a.rewrite_started.load(Ordering::Relaxed)
        } else {
            -1
        },
        "aof_last_bgrewrite_status" => ok_err(a.last_rewrite_ok.load(Ordering::Relaxed)),
        "aof_rewrites" => a.rewrites.load(Ordering::Relaxed),
        "aof_rewrites_consecutive_failures" => a.consecutive_failures.load(Ordering::Relaxed),
        "aof_last_write_status" => ok_err(a.last_write_ok.load(Ordering::Relaxed)),
        "aof_last_cow_size" => 0,
        "module_fork_in_progress" => 0,
        "module_fork_last_cow_size" => 0,
    );
    if aof {
        let pending = crate::persist::aof::lock(&ctx.srv.aof.shared.pending)
            .bytes
            .len();
        fields!(s,
            "aof_current_size" => a.current_size.load(Ordering::Relaxed),
            "aof_base_size" => a.base_size.load(Ordering::Relaxed),
            "aof_pending_rewrite" => 0,
            "aof_buffer_length" => pending,
            "aof_pending_bio_fsync" => u8::from(a.fsync_in_progress.load(Ordering::Relaxed)),
            "aof_delayed_fsync" => a.delayed_fsync.load(Ordering::Relaxed),
        );
    }
    s
}

/// INFO's words for a status flag.
fn ok_err(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "err"
    }
}

fn stats(ctx: &Ctx<'_>) -> String {
    let net = &ctx.srv.net;
    let st = &ctx.st.stats;
    let (ops, input, output) = ctx.st.tracking.rates();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let (channels, patterns, shard_channels) = ctx
        .srv
        .pubsub
        .lock()
        .map(|r| {
            (
                r.channel_count(),
                r.pattern_count(),
                r.shard_channel_count(),
            )
        })
        .unwrap_or_default();
    let mut s = String::new();
    fields!(s,
        "total_connections_received" => load(&net.total_connections_received),
        "total_commands_processed" => st.total_commands_processed,
        "instantaneous_ops_per_sec" => ops,
        "total_net_input_bytes" => load(&net.net_input_bytes),
        "total_net_output_bytes" => load(&net.net_output_bytes),
        "total_net_repl_input_bytes" => load(&ctx.srv.repl.stats.net_input_bytes),
        "total_net_repl_output_bytes" => load(&ctx.srv.repl.stats.net_output_bytes),
        "instantaneous_input_kbps" => format!("{:.2}", input as f64 / 1024.0),
        "instantaneous_output_kbps" => format!("{:.2}", output as f64 / 1024.0),
        "instantaneous_input_repl_kbps" => "0.00",
        "instantaneous_output_repl_kbps" => "0.00",
        "rejected_connections" => load(&net.rejected_connections),
        "sync_full" => load(&ctx.srv.repl.stats.sync_full),
        "sync_partial_ok" => load(&ctx.srv.repl.stats.sync_partial_ok),
        "sync_partial_err" => load(&ctx.srv.repl.stats.sync_partial_err),
        "expired_keys" => st.expired_keys,
        "expired_stale_perc" => "0.00",
        "expired_time_cap_reached_count" => st.expired_time_cap_reached_count,
        "expire_cycle_cpu_milliseconds" => 0,
        "evicted_keys" => 0,
        "evicted_clients" => 0,
        "total_eviction_exceeded_time" => 0,
        "current_eviction_exceeded_time" => 0,
        "keyspace_hits" => st.keyspace_hits,
        "keyspace_misses" => st.keyspace_misses,
        "pubsub_channels" => channels,
        "pubsub_patterns" => patterns,
        "pubsubshard_channels" => shard_channels,
        "latest_fork_usec" => 0,
        "total_forks" => 0,
        "migrate_cached_sockets" => 0,
        "slave_expires_tracked_keys" => 0,
        "active_defrag_hits" => 0,
        "active_defrag_misses" => 0,
        "active_defrag_key_hits" => 0,
        "active_defrag_key_misses" => 0,
        "total_active_defrag_time" => 0,
        "current_active_defrag_time" => 0,
        "tracking_total_keys" => 0,
        "tracking_total_items" => 0,
        "tracking_total_prefixes" => 0,
        "unexpected_error_replies" => 0,
        "total_error_replies" => st.total_error_replies,
        "dump_payload_sanitizations" => 0,
        "total_reads_processed" => load(&net.reads_processed),
        "total_writes_processed" => load(&net.writes_processed),
        "io_threaded_reads_processed" => 0,
        "io_threaded_writes_processed" => 0,
        "reply_buffer_shrinks" => 0,
        "reply_buffer_expands" => 0,
    );
    s
}

fn replication(ctx: &Ctx<'_>) -> String {
    use crate::replication::state::LinkState;
    let cfg = ctx.srv.with_config(|c| {
        (
            c.replica_read_only,
            c.repl_backlog_size,
            c.replica_priority,
            c.replica_announced,
            c.min_replicas_to_write,
            c.min_replicas_max_lag,
        )
    });
    let (read_only, backlog_size, priority, announced, min_to_write, max_lag) = cfg;
    let stream = &ctx.st.stream;
    let secs_since = |t: Option<std::time::Instant>| t.map_or(-1, |t| t.elapsed().as_secs() as i64);
    let mut s = String::new();
    match ctx.srv.repl.link() {
        Some(link) => {
            let up = link.state == LinkState::Connected;
            let has_master = ctx
                .srv
                .repl
                .follower
                .lock()
                .is_ok_and(|f| f.stream_db().is_some());
            fields!(s,
                "role" => "slave",
                "master_host" => link.host,
                "master_port" => link.port,
                "master_link_status" => if up { "up" } else { "down" },
                "master_last_io_seconds_ago" => secs_since(link.last_io),
                "master_sync_in_progress" => u8::from(link.state == LinkState::Sync),
                // Redis shows 1 without a master or cached master client (before the first
                // sync), else that client's offsets.
                "slave_read_repl_offset" => if has_master { link.read_offset.max(stream.offset()) } else { 1 },
                "slave_repl_offset" => if has_master { stream.offset() } else { 1 },
            );
            if link.state == LinkState::Sync {
                let total = link.sync_total;
                let perc = if total > 0 {
                    link.sync_read as f64 * 100.0 / total as f64
                } else {
                    0.0
                };
                fields!(s,
                    "master_sync_total_bytes" => total,
                    "master_sync_read_bytes" => link.sync_read,
                    "master_sync_left_bytes" => if total > 0 { total - link.sync_read as i64 } else { 0 },
                    "master_sync_perc" => format!("{perc:.2}"),
                    "master_sync_last_io_seconds_ago" => secs_since(link.sync_last_io),
                );
            }
            if !up {
                fields!(s, "master_link_down_since_seconds" => secs_since(link.down_since));
            }
            fields!(s,
                "slave_priority" => priority,
                "slave_read_only" => u8::from(read_only),
                "replica_announced" => u8::from(announced),
            );
        }
        None => {
            fields!(s, "role" => "master");
        }
    }
    let replicas = ctx.srv.repl.replicas();
    fields!(s, "connected_slaves" => replicas.len());
    let now = ctx.srv.clock.now_ms();
    if min_to_write > 0 && max_lag > 0 {
        fields!(s, "min_slaves_good_slaves" => ctx.srv.repl.good_replicas(now, max_lag));
    }
    for (i, r) in replicas.iter().enumerate() {
        use crate::replication::state::ReplicaState;
        use std::sync::atomic::Ordering;
        let state = r.state();
        let lag = if state == ReplicaState::Online {
            (now - r.ack_time_ms.load(Ordering::Relaxed)).max(0) / 1000
        } else {
            0
        };
        let ip = r.ip.lock().map(|ip| ip.to_string()).unwrap_or_default();
        s.push_str(&format!(
            "slave{i}:ip={ip},port={},state={},offset={},lag={lag}\r\n",
            r.listening_port.load(Ordering::Relaxed),
            state.word(),
            r.ack_offset.load(Ordering::Relaxed),
        ));
    }
    let ids = ctx.srv.repl.ids();
    let histlen = stream.histlen() as u64;
    fields!(s,
        "master_failover_state" => "no-failover",
        "master_replid" => ids.replid,
        "master_replid2" => ids.replid2,
        "master_repl_offset" => stream.offset(),
        "second_repl_offset" => ids.second_offset,
        "repl_backlog_active" => u8::from(stream.is_active()),
        "repl_backlog_size" => backlog_size,
        // Redis numbers backlog bytes from 1 (`repl_backlog->offset = master_repl_offset+1`),
        // and shows 0 while there is no backlog.
        "repl_backlog_first_byte_offset" => if stream.is_active() { stream.first_offset() + 1 } else { 0 },
        "repl_backlog_histlen" => histlen,
    );
    s
}

/// Reads user and system CPU seconds (utime, stime, cutime, cstime) from a `stat` file.
fn cpu_times(path: &str) -> [f64; 4] {
    // Fields after the command name, which is in parentheses and may contain spaces;
    // times are in clock ticks, 100 a second on Linux (`sysconf(_SC_CLK_TCK)`).
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|v| v.parse::<f64>().unwrap_or(0.0) / 100.0)
        .collect();
    let mut out = [0.0; 4];
    for (o, v) in out.iter_mut().zip(f) {
        *o = v;
    }
    out
}

fn cpu() -> String {
    let [utime, stime, cutime, cstime] = cpu_times("/proc/self/stat");
    let main = cpu_times(&format!("/proc/self/task/{}/stat", std::process::id()));
    let mut s = String::new();
    fields!(s,
        "used_cpu_sys" => format!("{stime:.6}"),
        "used_cpu_user" => format!("{utime:.6}"),
        "used_cpu_sys_children" => format!("{cstime:.6}"),
        "used_cpu_user_children" => format!("{cutime:.6}"),
        "used_cpu_sys_main_thread" => format!("{:.6}", main[1]),
        "used_cpu_user_main_thread" => format!("{:.6}", main[0]),
    );
    s
}

fn commandstats(ctx: &Ctx<'_>) -> String {
    let mut stats: Vec<_> = ctx.st.cmdstats.iter().collect();
    stats.sort_by_key(|(name, _)| name.0);
    let mut s = String::new();
    for (name, c) in stats {
        let name = name.0;
        if c.calls == 0 && c.failed == 0 && c.rejected == 0 {
            continue;
        }
        let per_call = if c.calls == 0 {
            0.0
        } else {
            c.usec as f64 / c.calls as f64
        };
        s.push_str(&format!(
            "cmdstat_{name}:calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
            c.calls, c.usec, c.rejected, c.failed
        ));
    }
    s
}

fn errorstats(ctx: &Ctx<'_>) -> String {
    let mut errs: Vec<(&String, &u64)> = ctx.st.errorstats.iter().collect();
    errs.sort();
    let mut s = String::new();
    for (code, n) in errs {
        s.push_str(&format!("errorstat_{code}:count={n}\r\n"));
    }
    s
}

fn latencystats(ctx: &Ctx<'_>) -> String {
    let mut s = String::new();
    if !ctx.srv.hot.latency_tracking.load(Ordering::Relaxed) {
        return s;
    }
    {
        let t = &ctx.st.tracking;
        for (name, h) in t.latencies() {
            let p = |q: f64| h.percentile(q) as f64 / 1000.0;
            s.push_str(&format!(
                "latency_percentiles_usec_{name}:p50={:.3},p99={:.3},p99.9={:.3}\r\n",
                p(50.0),
                p(99.0),
                p(99.9)
            ));
        }
    }
    s
}

fn keyspace(ctx: &mut Ctx<'_>) -> String {
    let now = ctx.now;
    let mut s = String::new();
    let Ctx { st, .. } = ctx;
    for (i, db) in st.ks.dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        // Redis reports an estimate from its expire cycle's samples; so does kura.
        let sample = db.sample_expiring(&mut st.rng, 64);
        let ttls: Vec<i64> = sample
            .iter()
            .filter_map(|k| db.get(k)?.expire_at())
            .map(|at| (at - now).max(0))
            .collect();
        let avg = if ttls.is_empty() {
            0
        } else {
            ttls.iter().sum::<i64>() / ttls.len() as i64
        };
        s.push_str(&format!(
            "db{i}:keys={},expires={},avg_ttl={avg}\r\n",
            db.len(),
            db.expires_len()
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_like_redis() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(1023), "1023B");
        assert_eq!(human(916328), "894.85K");
        assert_eq!(human(12288000), "11.72M");
        assert_eq!(human(25276502016), "23.54G");
    }

    #[test]
    fn cpu_times_parse_a_stat_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("stat");
        std::fs::write(
            &f,
            "12 (a b) R 1 1 1 0 -1 4194304 124 0 0 0 250 31 4 5 20 0 1\n",
        )
        .unwrap();
        assert_eq!(cpu_times(f.to_str().unwrap()), [2.5, 0.31, 0.04, 0.05]);
    }
}
