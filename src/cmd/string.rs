//! String commands (Redis `t_string.c`).

use bytes::Bytes;

use super::args::own;
use super::exec::Ctx;
use super::reply::{CmdError, CmdResult, Reply};
use super::table::flags::*;
use super::table::CommandSpec;
use crate::command;
use crate::store::{Entry, Value};

/// String commands.
pub static COMMANDS: &[CommandSpec] = &[
    command!("get", 2, READONLY | FAST, (1, 1, 1), "string", get),
    command!("set", -3, WRITE | DENYOOM, (1, 1, 1), "string", set),
];

fn get(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    match ctx.lookup_read(&argv[1]) {
        None => Ok(Reply::Nil),
        Some(e) => match &e.value {
            Value::Str(s) => Ok(Reply::Bulk(s.clone())),
            _ => Err(CmdError::WrongType),
        },
    }
}

fn set(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    if argv.len() != 3 {
        return Err(CmdError::Syntax);
    }
    let now = ctx.now;
    ctx.lookup_write(&argv[1]);
    ctx.db()
        .insert(own(&argv[1]), Entry::new(Value::Str(own(&argv[2])), now));
    ctx.touch(&argv[1]);
    ctx.add_dirty(1);
    Ok(Reply::Ok)
}
