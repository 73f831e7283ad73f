//! Pub/Sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB.

use super::exec::Ctx;
use super::table::CommandSpec;

/// Pub/Sub commands.
pub static COMMANDS: &[CommandSpec] = &[];

/// Channel and pattern subscribers.
#[derive(Debug, Default)]
pub struct Registry {}

/// Drops every subscription of the session (RESET, disconnect).
pub fn unsubscribe_all(_ctx: &mut Ctx<'_>) {}
