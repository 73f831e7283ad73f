//! List commands (Redis `t_list.c`), including the blocking pops.
//! TEMPORARY local stub for testing the keys branch; never committed.

use std::sync::Arc;
use bytes::Bytes;
use super::exec::Ctx;
use super::reply::{CmdResult, Reply, CmdError};
use super::table::flags::*;
use super::table::CommandSpec;
use crate::command;
use crate::store::{Entry, List, Value};

/// List commands.
pub static COMMANDS: &[CommandSpec] = &[
    command!("rpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", rpush),
    command!("lrange", 4, READONLY, (1, 1, 1), "list", lrange),
];

fn rpush(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    if ctx.lookup_write(&argv[1]).is_none() {
        ctx.db().insert(Bytes::copy_from_slice(&argv[1]), Entry::new(Value::List(Arc::new(List::new())), now));
    }
    let e = ctx.lookup_write(&argv[1]).unwrap();
    let Value::List(l) = &mut e.value else { return Err(CmdError::WrongType) };
    let l = Arc::make_mut(l);
    for v in &argv[2..] { l.push_back(v); }
    let n = l.len() as i64;
    ctx.touch(&argv[1]);
    ctx.add_dirty(1);
    Ok(Reply::Int(n))
}

fn lrange(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let Some(e) = ctx.lookup_read(&argv[1]) else { return Ok(Reply::Array(vec![])) };
    let Value::List(l) = &e.value else { return Err(CmdError::WrongType) };
    Ok(Reply::Array(l.iter().map(|v| Reply::bulk(v)).collect()))
}
