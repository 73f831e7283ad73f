//! Memory accounting: what jemalloc has allocated, for INFO `used_memory` and `maxmemory`.
//!
//! Reading jemalloc's statistics needs an epoch advance (a few microseconds), so the server
//! cron refreshes a cached value every tick, as Redis samples `zmalloc_used_memory`.

use std::sync::atomic::Ordering;

use crate::state::ServerState;

/// Returns the bytes currently allocated by the process (jemalloc `stats.allocated`).
pub fn allocated() -> u64 {
    // Without an epoch advance the statistics are stale; a failure only means staler numbers.
    if tikv_jemalloc_ctl::epoch::advance().is_err() {
        return 0;
    }
    tikv_jemalloc_ctl::stats::allocated::read().map_or(0, |v| v as u64)
}

/// Returns the bytes jemalloc holds in physically resident pages (`stats.resident`).
pub fn resident() -> u64 {
    tikv_jemalloc_ctl::stats::resident::read().map_or(0, |v| v as u64)
}

/// Returns the process's resident set size from `/proc/self/statm` (0 when unavailable).
pub fn rss() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Refreshes the cached `used_memory` and its peak.
pub fn refresh(state: &ServerState) {
    let used = allocated();
    state.used_memory.store(used, Ordering::Relaxed);
    state.used_memory_peak.fetch_max(used, Ordering::Relaxed);
}
