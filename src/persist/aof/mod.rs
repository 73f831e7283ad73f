//! The append-only file (`shared/spec/redis.md` §4.4): every applied write, as RESP commands,
//! in Redis 7's multi-part layout (a base, incremental files and a manifest in
//! `appenddirname`), fsynced by `appendfsync` with group commit, loaded at start, rewritten
//! from a snapshot so it stays proportional to the data.

pub mod load;
pub mod manifest;
pub mod parse;

/// TEMPORARY STUB (aofload branch) so the start-up call compiles: the lead's AOF writer
/// replaces it with the real `open_on_start` (open the last incr, or create base + incr).
pub fn open_on_start(
    _srv: &std::sync::Arc<crate::state::ServerState>,
    _loaded: Option<load::AofLoaded>,
) {
}
