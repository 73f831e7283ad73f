//! The command table: one [`CommandSpec`] per command, collected from the per-type modules.
//!
//! Arity, flags and key positions are Redis 7.0's (`src/commands/*.json`); `exec` uses them for
//! the unknown-command, arity, auth, OOM and READONLY checks, and `COMMAND` reports them.

use std::sync::OnceLock;

use bytes::Bytes;

use super::exec::Ctx;
use super::reply::CmdResult;

/// The handler signature: runs with the engine locked, the client's session and the server.
pub type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> CmdResult;

/// Command flags (Redis's `CMD_*`), as a bit set.
pub mod flags {
    /// Changes the dataset.
    pub const WRITE: u32 = 1 << 0;
    /// Only reads.
    pub const READONLY: u32 = 1 << 1;
    /// May grow memory: refused at `maxmemory`.
    pub const DENYOOM: u32 = 1 << 2;
    /// Administrative.
    pub const ADMIN: u32 = 1 << 3;
    /// Pub/Sub related.
    pub const PUBSUB: u32 = 1 << 4;
    /// Not allowed in scripts.
    pub const NOSCRIPT: u32 = 1 << 5;
    /// May block the client.
    pub const BLOCKING: u32 = 1 << 6;
    /// Allowed while loading.
    pub const LOADING: u32 = 1 << 7;
    /// Allowed on a replica with stale data.
    pub const STALE: u32 = 1 << 8;
    /// Not shown to MONITOR.
    pub const SKIP_MONITOR: u32 = 1 << 9;
    /// O(1) or O(log N).
    pub const FAST: u32 = 1 << 10;
    /// Allowed before AUTH.
    pub const NO_AUTH: u32 = 1 << 11;
    /// Refused inside MULTI ("Command not allowed inside a transaction").
    pub const NO_MULTI: u32 = 1 << 12;
    /// Not recorded in SLOWLOG.
    pub const SKIP_SLOWLOG: u32 = 1 << 13;
    /// Allowed in RESP2 subscribe mode.
    pub const PUBSUB_CONTEXT: u32 = 1 << 14;
    /// Runs even after a failed background save (no MISCONF).
    pub const MAY_REPLICATE: u32 = 1 << 15;
    /// Not queued by MULTI: runs immediately (EXEC, DISCARD, MULTI, WATCH, QUIT, RESET).
    pub const TXN_CONTROL: u32 = 1 << 16;

    /// Redis's names for the flags, in `COMMAND INFO` order.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (NO_MULTI, "no_multi"),
    ];
}

/// One command's static description.
#[derive(Debug)]
pub struct CommandSpec {
    /// Lowercase name.
    pub name: &'static str,
    /// Redis arity: exact argc if positive, minimum argc if negative (name included).
    pub arity: i32,
    /// `flags::*` bits.
    pub flags: u32,
    /// Position of the first key (0 = none).
    pub first_key: i32,
    /// Position of the last key (-1 = last argument).
    pub last_key: i32,
    /// Step between keys.
    pub step: i32,
    /// The handler.
    pub handler: Handler,
    /// Redis's command group (`string`, `list`, `generic`, …), for COMMAND DOCS.
    pub group: &'static str,
    /// Subcommand names (lowercase, `config|get` form), for COMMAND INFO/DOCS.
    pub subcommands: &'static [&'static str],
}

impl CommandSpec {
    /// Reports whether the command carries `flag`.
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// Reports whether `argc` (name included) fits the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        (a > 0 && argc == a as usize) || (a < 0 && argc >= (-a) as usize)
    }

    /// Returns the key arguments' positions in `argv` (for WATCH-like uses and COMMAND GETKEYS).
    pub fn key_positions(&self, argc: usize) -> Vec<usize> {
        if self.first_key <= 0 {
            return Vec::new();
        }
        let last = if self.last_key < 0 {
            argc as i32 + self.last_key
        } else {
            self.last_key
        };
        let step = self.step.max(1);
        (self.first_key..=last.min(argc as i32 - 1))
            .step_by(step as usize)
            .map(|i| i as usize)
            .collect()
    }
}

/// Builds a [`CommandSpec`] tersely.
#[macro_export]
macro_rules! command {
    ($name:literal, $arity:expr, $flags:expr, ($first:expr, $last:expr, $step:expr), $group:literal, $handler:expr) => {
        $crate::cmd::table::CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $first,
            last_key: $last,
            step: $step,
            handler: $handler,
            group: $group,
            subcommands: &[],
        }
    };
    ($name:literal, $arity:expr, $flags:expr, ($first:expr, $last:expr, $step:expr), $group:literal, $handler:expr, subs = $subs:expr) => {
        $crate::cmd::table::CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $first,
            last_key: $last,
            step: $step,
            handler: $handler,
            group: $group,
            subcommands: $subs,
        }
    };
}

/// Every command family's table.
pub const COMMANDS: &[&[CommandSpec]] = &[
    super::conn::COMMANDS,
    super::keys::COMMANDS,
    super::string::COMMANDS,
    super::list::COMMANDS,
    super::hash::COMMANDS,
    super::txn::COMMANDS,
    super::pubsub::COMMANDS,
    super::server::COMMANDS,
    super::dump::COMMANDS,
    crate::replication::master::COMMANDS,
    super::monitor::COMMANDS,
    crate::replication::replica::COMMANDS,
    crate::replication::wait::COMMANDS,
];

fn table() -> &'static ahash::AHashMap<&'static str, &'static CommandSpec> {
    static TABLE: OnceLock<ahash::AHashMap<&'static str, &'static CommandSpec>> = OnceLock::new();
    TABLE.get_or_init(|| {
        COMMANDS
            .iter()
            .flat_map(|t| t.iter())
            .map(|c| (c.name, c))
            .collect()
    })
}

/// Finds a command by name, ignoring ASCII case.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut buf = [0u8; 32];
    if name.len() > buf.len() {
        return None;
    }
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    let s = std::str::from_utf8(lower).ok()?;
    table().get(s).copied()
}

/// Iterates every command.
pub fn all() -> impl Iterator<Item = &'static CommandSpec> {
    table().values().copied()
}
