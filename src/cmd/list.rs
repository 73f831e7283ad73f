//! List commands (Redis `t_list.c`), including the blocking pops.

use super::table::CommandSpec;

/// List commands.
pub static COMMANDS: &[CommandSpec] = &[];
