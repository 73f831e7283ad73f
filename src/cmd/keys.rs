//! Generic key commands (Redis `db.c`, `expire.c`).

use bytes::Bytes;

use super::exec::Ctx;
use super::reply::{CmdResult, Reply};
use super::table::flags::*;
use super::table::CommandSpec;
use crate::command;

/// Key commands.
pub static COMMANDS: &[CommandSpec] = &[command!("del", -2, WRITE, (1, -1, 1), "generic", del)];

fn del(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let mut n = 0;
    for k in &argv[1..] {
        if ctx.exists(k) {
            ctx.db().remove(k);
            ctx.touch(k);
            n += 1;
        }
    }
    ctx.add_dirty(n as u64);
    Ok(Reply::Int(n))
}
