//! DUMP and RESTORE: values in Redis's RDB payload format.

use super::table::CommandSpec;

/// DUMP/RESTORE commands.
pub static COMMANDS: &[CommandSpec] = &[];
