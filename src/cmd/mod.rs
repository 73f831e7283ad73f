//! Commands: the table (name, arity, flags, keys) and the handlers, grouped by data type as
//! Redis's `t_*.c`. Every door turns its input into an [`Argv`] executed here
//! (`exec::Engine`), the one write path of DESIGN.md.

pub mod args;
pub mod blocking;
pub mod conn;
pub mod dump;
pub mod exec;
pub mod glob;
pub mod hash;
pub mod keys;
pub mod ldouble;
pub mod list;
pub mod monitor;
pub mod pubsub;
pub mod reply;
pub mod server;
pub mod session;
pub mod string;
pub mod table;
pub mod txn;

pub use exec::{Ctx, Engine, EngineState};
pub use reply::{CmdError, CmdResult, Reply};
pub use session::Session;
pub use table::{lookup, CommandSpec, COMMANDS};

/// A command as an argument vector of byte strings: what every door produces.
pub type Argv = Vec<bytes::Bytes>;

/// Who sent a command; decides the READONLY, auth and propagation rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A RESP client.
    Client,
    /// The forward door's mapping.
    Forward,
    /// Our master's replication stream.
    Master,
    /// Replay of the AOF at start.
    AofLoad,
    /// The HTTP door (`POST /bgsave`): admin commands, never data writes.
    Http,
}
