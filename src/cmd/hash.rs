//! Hash commands (Redis `t_hash.c`).

use super::table::CommandSpec;

/// Hash commands.
pub static COMMANDS: &[CommandSpec] = &[];
