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
    /// kura's own: stores one log record per value after the key (RPUSH and the pushes), for
    /// the ingest counters.
    pub const RECORD_PER_VALUE: u32 = 1 << 17;
    /// kura's own: stores one log record (a record hash, as fluent-plugin-redis writes it).
    pub const RECORD_ONE: u32 = 1 << 18;

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

/// A command's full name (`get`, `config|get`) as the key of the per-command counters that
/// are updated after every command.
///
/// The names counted come from the table (`full_name`), so a hit is almost always the very
/// same string: equality tries the address before the bytes, and the hash reads three bytes
/// and the length instead of the whole name (they tell the table's names well apart).
#[derive(Debug, Clone, Copy, PartialOrd, Ord)]
pub struct CmdName(pub &'static str);

impl PartialEq for CmdName {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0) || self.0 == other.0
    }
}

impl Eq for CmdName {}

impl std::hash::Hash for CmdName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let b = self.0.as_bytes();
        let at = |i: usize| u64::from(b.get(i).copied().unwrap_or(0));
        let n = b.len();
        state.write_u64(n as u64 | at(0) << 8 | at(n / 2) << 16 | at(n.wrapping_sub(1)) << 24);
    }
}

/// Mixes the one word [`CmdName`] hashes (a multiplicative hash: the word is already
/// distinct per name, it only needs spreading over the table's bits).
#[derive(Debug, Default, Clone, Copy)]
pub struct CmdNameHasher(u64);

impl std::hash::Hasher for CmdNameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// Per-command values keyed by [`CmdName`].
pub type CmdMap<V> =
    std::collections::HashMap<CmdName, V, std::hash::BuildHasherDefault<CmdNameHasher>>;

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

/// The command a session looked up last, by the bytes its client sent: a pipelining client
/// repeats one name, and comparing those bytes costs less than lowercasing and hashing them.
#[derive(Debug, Default, Clone, Copy)]
pub struct LookupCache {
    name: [u8; LookupCache::MAX],
    len: usize,
    spec: Option<&'static CommandSpec>,
}

impl LookupCache {
    /// Longest name remembered (every command name fits).
    const MAX: usize = 24;

    /// Finds a command by name as [`lookup`] does, remembering it for the next call.
    pub fn lookup(&mut self, name: &[u8]) -> Option<&'static CommandSpec> {
        if let Some(spec) = self.spec {
            if self.name.get(..self.len) == Some(name) {
                return Some(spec);
            }
        }
        let spec = lookup(name)?;
        if let Some(slot) = self.name.get_mut(..name.len()) {
            slot.copy_from_slice(name);
            self.len = name.len();
            self.spec = Some(spec);
        }
        Some(spec)
    }
}

/// Iterates every command.
pub fn all() -> impl Iterator<Item = &'static CommandSpec> {
    table().values().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_is_one_key_whatever_its_address() {
        let owned: &'static str = Box::leak(String::from("config|get").into_boxed_str());
        let mut m: CmdMap<u32> = CmdMap::default();
        *m.entry(CmdName("config|get")).or_default() += 1;
        *m.entry(CmdName(owned)).or_default() += 1;
        *m.entry(CmdName("config|set")).or_default() += 1;
        assert_eq!(m.len(), 2);
        assert_eq!(m[&CmdName("config|get")], 2);
        // Every name in the table is its own key.
        let names: Vec<&'static str> = all()
            .flat_map(|c| std::iter::once(c.name).chain(c.subcommands.iter().copied()))
            .collect();
        let keys: CmdMap<()> = names.iter().map(|n| (CmdName(n), ())).collect();
        assert_eq!(keys.len(), names.len());
    }

    #[test]
    fn the_lookup_cache_answers_as_lookup_does() {
        let mut cache = LookupCache::default();
        for name in ["GET", "get", "GeT", "set", "get", "nosuch", "get", "SET"] {
            let want = lookup(name.as_bytes()).map(|c| c.name);
            assert_eq!(
                cache.lookup(name.as_bytes()).map(|c| c.name),
                want,
                "{name}"
            );
        }
        let long = [b'a'; 40];
        assert!(cache.lookup(&long).is_none());
        assert_eq!(cache.lookup(b"get").map(|c| c.name), Some("get"));
        // A prefix of the remembered name is another name.
        assert!(cache.lookup(b"ge").is_none());
    }
}
