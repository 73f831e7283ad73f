//! RESP2/RESP3 codec: request bytes in, reply bytes out. No commands live here.
//!
//! The wire rules follow Redis 7.0's `networking.c` (`processMultibulkBuffer`,
//! `processInlineBuffer`); `shared/spec/redis.md` §1 lists them with exact error texts.

pub mod conn;
pub mod decode;
pub mod encode;

pub use decode::{DecodeError, RequestDecoder};
pub use encode::Protocol;

/// Limits on what one client may send, with Redis 7.0's defaults.
///
/// Every length read from the wire is checked against these before anything is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `proto-max-bulk-len`: the largest single bulk argument.
    pub max_bulk_len: usize,
    /// `client-query-buffer-limit`: unparsed input a client may hold.
    pub query_buffer_limit: usize,
    /// Multibulk element count cap (Redis 7.0: `INT_MAX`).
    pub max_multibulk_len: i64,
    /// Longest inline request or `*`/`$` header line (`PROTO_INLINE_MAX_SIZE`).
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            query_buffer_limit: 1024 * 1024 * 1024,
            max_multibulk_len: i32::MAX as i64,
            max_inline_len: 64 * 1024,
        }
    }
}

/// Limits applied before a client has authenticated (hard-coded in Redis 7.0).
pub const UNAUTH_MAX_MULTIBULK: i64 = 10;
/// Largest bulk an unauthenticated client may send.
pub const UNAUTH_MAX_BULK: usize = 16384;
