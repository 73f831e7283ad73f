//! The replica side of replication: kura following a master over Redis's own protocol
//! (`shared/spec/redis.md` §2.2–2.10), a real redis-server 7.0 or another kura.
//!
//! - [`role`]: switching between master and replica (config at start, `REPLICAOF`,
//!   `SLAVEOF`, `REPLICAOF NO ONE`), the cached master, restarts (§2.7, §2.8);
//! - [`link`]: the link task: connect, handshake, PSYNC, reconnect every second (§2.2, §2.6);
//! - [`sync`]: the full sync: `$<len>` / `$EOF:` payloads, to disk or memory, loaded into a
//!   fresh keyspace swapped in when complete (§2.3, §2.6);
//! - [`stream`]: applying the command stream, `REPLCONF ACK`/`GETACK`, timeouts (§2.4);
//! - [`frame`]: cutting the stream into commands with their exact bytes;
//! - [`conn`]: the socket to the master.
//!
//! Data flow: the link task owns the socket and one [`Session`] with `Origin::Master`
//! (SELECT and MULTI state survive reconnections, as Redis's cached master client does). It
//! applies each command through `cmd::exec::execute_locked`, so the AOF sees what the
//! replica applied, and appends the master's exact bytes to the write stream
//! (`WriteStream::append_master`), so the offset equals the master's and sub-replicas get a
//! byte-exact copy. Every role change bumps [`Follower::epoch`] under the engine lock; a
//! link task holding an older epoch stops and never swaps data in.
//!
//! [`Session`]: crate::cmd::Session

pub mod conn;
pub mod frame;
pub mod link;
pub mod role;
pub mod stream;
pub mod sync;

use bytes::Bytes;

use crate::cmd::args::{int, is};
use crate::cmd::exec::Ctx;
use crate::cmd::reply::{CmdError, CmdResult, Reply};
use crate::cmd::table::flags::*;
use crate::cmd::table::CommandSpec;
use crate::command;

pub use role::{become_master, become_replica, prepare_at_start, restore_ids, start_at_start};

/// The replica-side control state, in `Repl::follower`. Lock order: the engine lock first,
/// then this, then `Repl::link`.
#[derive(Debug, Default)]
pub struct Follower {
    /// Bumped by every role change. A link task started under another epoch is retired: it
    /// stops at its next step and never swaps data in.
    pub epoch: u64,
    /// The running link task.
    task: Option<tokio::task::AbortHandle>,
    /// The link streams from a master (Redis `server.master` exists).
    pub linked: bool,
    /// The last master's state is cached for a partial resync (Redis
    /// `server.cached_master`): its replication id and offset are ours (`Repl::ids.replid`,
    /// the write stream's offset).
    pub cached: bool,
    /// The database the master's stream last selected (the master client's db): where the
    /// next command applies after a reconnection, and `repl-stream-db` of our saves.
    pub master_db: usize,
}

impl Follower {
    /// Returns the database a save records as `repl-stream-db`, or `None` when a replica
    /// has neither a master nor a cached master (Redis `rdbPopulateSaveInfo`: no replication
    /// fields then).
    pub fn stream_db(&self) -> Option<usize> {
        (self.linked || self.cached).then_some(self.master_db)
    }

    /// Retires the running link task, if any.
    fn retire(&mut self) {
        self.epoch += 1;
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// `REPLICAOF` and its old name `SLAVEOF` (Redis 7.0: arity 3, admin noscript stale
/// no_async_loading).
pub static COMMANDS: &[CommandSpec] = &[
    command!(
        "replicaof",
        3,
        ADMIN | NOSCRIPT | STALE,
        (0, 0, 0),
        "server",
        replicaof
    ),
    command!(
        "slaveof",
        3,
        ADMIN | NOSCRIPT | STALE,
        (0, 0, 0),
        "server",
        replicaof
    ),
];

/// Describes the calling client for the log, as Redis's `catClientInfoString` (which
/// already names the running command: `cmd=replicaof`).
fn who(ctx: &Ctx<'_>, name: &'static str) -> String {
    match &ctx.sess.info {
        Some(info) => {
            if let Ok(mut c) = info.last_cmd.lock() {
                *c = name;
            }
            let blocked = ctx.st.blocked.is_blocked(info.id);
            crate::cmd::server::client::info_line(info, ctx.now, blocked)
        }
        None => "internal".into(),
    }
}

/// `REPLICAOF host port` / `REPLICAOF NO ONE` (Redis `replicaofCommand`): replies at once;
/// the link connects in the background.
fn replicaof(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let name = if is(&argv[0], "slaveof") {
        "slaveof"
    } else {
        "replicaof"
    };
    if is(&argv[1], "no") && is(&argv[2], "one") {
        if ctx.st.is_replica {
            become_master(ctx.srv, ctx.st);
            tracing::info!(
                "MASTER MODE enabled (user request from '{}')",
                who(ctx, name)
            );
        }
        return Ok(Reply::Ok);
    }
    let is_replica_client = ctx
        .srv
        .repl
        .replicas
        .lock()
        .is_ok_and(|m| m.contains_key(&ctx.sess.id));
    if is_replica_client && ctx.sess.id != 0 {
        return Err(CmdError::err(
            "Command is not valid when client is a replica.",
        ));
    }
    let port = int(&argv[2])
        .ok()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| CmdError::err("Invalid master port"))?;
    let host = String::from_utf8_lossy(&argv[1]).into_owned();
    let current = ctx.srv.repl.link().map(|l| (l.host, l.port));
    if let Some((h, p)) = current {
        if h.eq_ignore_ascii_case(&host) && p == port {
            tracing::info!(
                "REPLICAOF would result into synchronization with the master we are already \
                 connected with. No operation performed."
            );
            return Ok(Reply::Simple(
                "OK Already connected to specified master".into(),
            ));
        }
    }
    let Some(srv) = ctx.srv.arc() else {
        return Err(CmdError::err("server is shutting down"));
    };
    become_replica(&srv, ctx.st, host.clone(), port);
    tracing::info!(
        "REPLICAOF {host}:{port} enabled (user request from '{}')",
        who(ctx, name)
    );
    Ok(Reply::Ok)
}
