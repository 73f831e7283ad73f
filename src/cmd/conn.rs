//! Connection commands: PING, ECHO, QUIT, RESET, SELECT, AUTH, HELLO.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::args::{int, is, text};
use super::exec::Ctx;
use super::reply::{CmdError, CmdResult, Reply};
use super::session::ReplyMode;
use super::table::flags::*;
use super::table::CommandSpec;
use crate::command;
use crate::resp::Protocol;

/// Connection commands.
pub static COMMANDS: &[CommandSpec] = &[
    command!(
        "ping",
        -1,
        FAST | PUBSUB_CONTEXT,
        (0, 0, 0),
        "connection",
        ping
    ),
    command!("echo", 2, FAST, (0, 0, 0), "connection", echo),
    command!(
        "quit",
        -1,
        ALLOW_ANY | NO_AUTH | FAST | PUBSUB_CONTEXT | LOADING | STALE | TXN_CONTROL,
        (0, 0, 0),
        "connection",
        quit
    ),
    command!(
        "reset",
        1,
        NOSCRIPT | LOADING | STALE | NO_AUTH | FAST | PUBSUB_CONTEXT | TXN_CONTROL,
        (0, 0, 0),
        "connection",
        reset
    ),
    command!(
        "select",
        2,
        LOADING | STALE | FAST,
        (0, 0, 0),
        "connection",
        select
    ),
    command!(
        "auth",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH,
        (0, 0, 0),
        "connection",
        auth
    ),
    command!(
        "hello",
        -1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH,
        (0, 0, 0),
        "connection",
        hello
    ),
];

const ALLOW_ANY: u32 = 0;

fn ping(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    if argv.len() > 2 {
        return Err(CmdError::Arity("ping".into()));
    }
    if ctx.sess.in_pubsub_context() {
        let arg = argv.get(1).cloned().unwrap_or_default();
        return Ok(Reply::Array(vec![Reply::bulk("pong"), Reply::Bulk(arg)]));
    }
    Ok(match argv.get(1) {
        Some(a) => Reply::Bulk(a.clone()),
        None => Reply::Simple("PONG".into()),
    })
}

fn echo(_ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    Ok(Reply::Bulk(argv[1].clone()))
}

fn quit(ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> CmdResult {
    ctx.sess.close_after_reply = true;
    // QUIT's +OK is sent even under CLIENT REPLY OFF.
    ctx.sess.reply_mode = ReplyMode::On;
    Ok(Reply::Ok)
}

fn select(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    ctx.sess.db = super::keys::db_index(ctx, &argv[1])?;
    Ok(Reply::Ok)
}

/// Checks a username/password pair against the default user.
fn check_password(ctx: &Ctx<'_>, user: &[u8], pass: &[u8]) -> bool {
    let required = ctx.srv.with_config(|c| c.requirepass.clone());
    user == b"default" && (required.is_empty() || required.as_bytes() == pass)
}

fn auth(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    if argv.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let (user, pass) = if argv.len() == 2 {
        if ctx.srv.with_config(|c| c.requirepass.is_empty()) {
            return Err(CmdError::err(
                "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            ));
        }
        (&b"default"[..], &argv[1][..])
    } else {
        (&argv[1][..], &argv[2][..])
    };
    if check_password(ctx, user, pass) {
        ctx.sess.authenticated = true;
        Ok(Reply::Ok)
    } else {
        Err(CmdError::WrongPass)
    }
}

/// Validates a client name (`CLIENT SETNAME`, `HELLO … SETNAME`).
pub fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|c| (b'!'..=b'~').contains(c))
}

fn hello(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let mut proto = ctx.sess.proto;
    let mut i = 1;
    if argv.len() >= 2 {
        let v = int(&argv[1])
            .map_err(|_| CmdError::err("Protocol version is not an integer or out of range"))?;
        proto = match v {
            2 => Protocol::Resp2,
            3 => Protocol::Resp3,
            _ => {
                return Err(CmdError::Other(
                    "NOPROTO unsupported protocol version".into(),
                ))
            }
        };
        i = 2;
    }
    let mut setname = None;
    let mut authed = false;
    while i < argv.len() {
        let more = argv.len() - i - 1;
        if is(&argv[i], "auth") && more >= 2 {
            if !check_password(ctx, &argv[i + 1], &argv[i + 2]) {
                return Err(CmdError::WrongPass);
            }
            authed = true;
            i += 3;
        } else if is(&argv[i], "setname") && more >= 1 {
            let name = &argv[i + 1];
            if !valid_client_name(name) {
                return Err(CmdError::err(
                    "Client names cannot contain spaces, newlines or special characters.",
                ));
            }
            setname = Some(name.clone());
            i += 2;
        } else {
            return Err(CmdError::echo(
                "ERR Syntax error in HELLO option '",
                &argv[i],
                "'",
            ));
        }
    }
    if authed {
        ctx.sess.authenticated = true;
    }
    if !ctx.sess.authenticated {
        return Err(CmdError::Other("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into()));
    }
    if let (Some(name), Some(info)) = (setname, &ctx.sess.info) {
        if let Ok(mut n) = info.name.lock() {
            *n = text(&name);
        }
    }
    ctx.sess.proto = proto;
    if let Some(info) = &ctx.sess.info {
        info.resp.store(proto.version() as usize, Ordering::Relaxed);
    }
    let role = if ctx.st.is_replica {
        "replica"
    } else {
        "master"
    };
    Ok(Reply::Map(vec![
        (Reply::bulk("server"), Reply::bulk("redis")),
        (Reply::bulk("version"), Reply::bulk(crate::REDIS_VERSION)),
        (Reply::bulk("proto"), Reply::Int(proto.version())),
        (Reply::bulk("id"), Reply::Int(ctx.sess.id as i64)),
        (Reply::bulk("mode"), Reply::bulk("standalone")),
        (Reply::bulk("role"), Reply::bulk(role)),
        (Reply::bulk("modules"), Reply::Array(vec![])),
    ]))
}

fn reset(ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> CmdResult {
    super::txn::discard_transaction(ctx);
    super::txn::unwatch_all(ctx);
    super::pubsub::unsubscribe_all(ctx);
    super::monitor::stop(ctx.srv, ctx.sess);
    ctx.sess.db = 0;
    ctx.sess.proto = Protocol::Resp2;
    ctx.sess.reply_mode = ReplyMode::On;
    ctx.sess.authenticated = ctx.srv.with_config(|c| c.requirepass.is_empty());
    if let Some(info) = &ctx.sess.info {
        info.resp.store(2, Ordering::Relaxed);
        if let Ok(mut n) = info.name.lock() {
            n.clear();
        }
    }
    Ok(Reply::Simple("RESET".into()))
}
