//! kura (蔵, "storehouse"): a log store appliance for fluentd.
//!
//! One process speaks the Redis RESP protocol (so fluentd's Redis outputs, redis-cli,
//! redis-benchmark and client libraries work unmodified), stores records in Redis-style
//! lists and hashes, and (in later doors) accepts the Fluent Forward protocol, persists to
//! Redis-compatible RDB/AOF files, replicates, and serves metrics over HTTP.
//!
//! Where things live:
//! - [`config`]: the one `Config` (defaults < TOML < flags, `CONFIG GET/SET`).
//! - [`server`]: `Server::start` binds listeners and starts tasks; shutdown.
//! - [`resp`]: the RESP codec and the client connection loop.
//! - [`cmd`]: the command table, the one write path (`cmd::exec`), handlers by type.
//! - [`store`]: the keyspace with copy-on-write shards and chunked lists (cheap snapshots).
//! - [`replication`]: the ordered write stream (its byte count is the replication offset).
//! - [`http`]: the HTTP door (Prometheus metrics, backups, health).
//!
//! Data flow: bytes → `resp::decode` → argv → `cmd::exec::execute` (checks, handler under the
//! engine lock, append to the write stream) → `Reply` → `resp::encode` → bytes.

pub mod clock;
pub mod cmd;
pub mod config;
pub mod cron;
pub mod forward;
pub mod http;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod persist;
pub mod replication;
pub mod resp;
pub mod server;
pub mod state;
pub mod store;

pub use config::Config;
pub use server::{RunningServer, Server};

/// The Redis version kura reports (INFO, HELLO): the one its behaviour follows.
pub const REDIS_VERSION: &str = "7.0.15";

/// jemalloc, as Redis uses: fast under many threads, and its statistics give `used_memory`.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
