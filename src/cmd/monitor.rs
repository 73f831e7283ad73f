//! MONITOR: every executed command, streamed to monitoring clients.

use bytes::Bytes;

use super::session::Session;
use super::table::CommandSpec;
use crate::state::ServerState;

/// MONITOR command.
pub static COMMANDS: &[CommandSpec] = &[];

/// Sends a command to every MONITOR client.
pub fn feed_monitors(_srv: &ServerState, _sess: &Session, _spec: &CommandSpec, _argv: &[Bytes]) {}
