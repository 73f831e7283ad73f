//! CLIENT: the connection's own settings and the other connections (Redis 7.0
//! `networking.c` `clientCommand`, `catClientInfoString`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::{help, subcommand};
use crate::cmd::args::{int, is, text};
use crate::cmd::conn::valid_client_name;
use crate::cmd::exec::Ctx;
use crate::cmd::reply::{c_str, CmdError, CmdResult, Reply};
use crate::cmd::session::ReplyMode;
use crate::state::ClientInfo;

/// CLIENT's subcommands.
pub const SUBS: &[&str] = &[
    "client|getname",
    "client|getredir",
    "client|help",
    "client|id",
    "client|info",
    "client|kill",
    "client|list",
    "client|no-evict",
    "client|no-touch",
    "client|reply",
    "client|setinfo",
    "client|setname",
    "client|trackinginfo",
    "client|unblock",
];

const HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
];

// ---- CLIENT LIST LINES ----

/// A client's type, as CLIENT LIST TYPE and CLIENT KILL TYPE select it (`getClientType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Normal,
    Replica,
    PubSub,
    Master,
}

fn type_by_name(name: &[u8]) -> Result<Type, CmdError> {
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    Ok(match lower.as_str() {
        "normal" => Type::Normal,
        "slave" | "replica" => Type::Replica,
        "pubsub" => Type::PubSub,
        "master" => Type::Master,
        _ => return Err(CmdError::echo("ERR Unknown client type '", name, "'")),
    })
}

fn type_of(c: &ClientInfo) -> Type {
    let f = c.flags.lock().map(|f| f.clone()).unwrap_or_default();
    if f.contains('M') {
        Type::Master
    } else if f.contains('S') {
        Type::Replica
    } else if f.contains('P') || subscriptions(c) > 0 {
        Type::PubSub
    } else {
        Type::Normal
    }
}

fn subscriptions(c: &ClientInfo) -> usize {
    c.sub.load(Ordering::Relaxed) + c.psub.load(Ordering::Relaxed) + c.ssub.load(Ordering::Relaxed)
}

/// Redis's order of the letters in `flags=` (`catClientInfoString`).
const FLAG_ORDER: &str = "OSMPxbtRBdcuAUre";

/// Returns the `flags=` field: the letters other modules set, plus what kura can see here
/// (Pub/Sub subscriptions, an open MULTI, a blocked command), in Redis's order; `N` when
/// there is none.
fn flags_of(c: &ClientInfo, blocked: bool) -> String {
    let mut f: Vec<char> = c
        .flags
        .lock()
        .map(|f| f.chars().filter(|ch| *ch != 'N').collect())
        .unwrap_or_default();
    if subscriptions(c) > 0 && !f.contains(&'P') {
        f.push('P');
    }
    if c.multi.load(Ordering::Relaxed) >= 0 && !f.contains(&'x') {
        f.push('x');
    }
    if blocked && !f.contains(&'b') {
        f.push('b');
    }
    f.sort_by_key(|ch| FLAG_ORDER.find(*ch).unwrap_or(FLAG_ORDER.len()));
    f.dedup();
    if f.is_empty() {
        "N".into()
    } else {
        f.into_iter().collect()
    }
}

/// Formats one client as a `CLIENT LIST` line (without the newline), Redis 7.0's fields.
pub fn info_line(c: &ClientInfo, now_ms: i64, blocked: bool) -> String {
    let name = c.name.lock().map(|n| n.clone()).unwrap_or_default();
    let cmd = c.last_cmd.lock().map(|n| *n).unwrap_or("NULL");
    let qbuf = c.qbuf.load(Ordering::Relaxed);
    let idle = (now_ms - c.last_active_ms.load(Ordering::Relaxed)).max(0) / 1000;
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} \
         ssub={} multi={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 \
         oll=0 omem=0 tot-mem={} events=r cmd={} user=default redir=-1 resp={}",
        c.id,
        c.addr,
        c.laddr,
        c.fd.load(Ordering::Relaxed),
        name,
        c.created.elapsed().as_secs(),
        idle,
        flags_of(c, blocked),
        c.db.load(Ordering::Relaxed),
        c.sub.load(Ordering::Relaxed),
        c.psub.load(Ordering::Relaxed),
        c.ssub.load(Ordering::Relaxed),
        c.multi.load(Ordering::Relaxed),
        qbuf,
        1024 + qbuf,
        cmd,
        c.resp.load(Ordering::Relaxed),
    )
}

// ---- SUBCOMMANDS ----

/// `CLIENT <subcommand> ...`.
pub fn client_cmd(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let sub = subcommand("client", argv, SUBS)?;
    // CLIENT LIST and INFO show the running command as this client's last one, as Redis
    // sets `lastcmd` before calling the command.
    if let Some(info) = &ctx.sess.info {
        if let Ok(mut c) = info.last_cmd.lock() {
            let full = format!("client|{sub}");
            *c = SUBS
                .iter()
                .find(|s| **s == full)
                .copied()
                .unwrap_or("client");
        }
        info.db.store(ctx.sess.db, Ordering::Relaxed);
    }
    match sub.as_str() {
        "help" => Ok(help(HELP)),
        "id" => Ok(Reply::Int(ctx.sess.id as i64)),
        "getname" => {
            let name = ctx
                .sess
                .info
                .as_ref()
                .and_then(|i| i.name.lock().ok().map(|n| n.clone()))
                .unwrap_or_default();
            Ok(if name.is_empty() {
                Reply::Nil
            } else {
                Reply::BulkStr(name)
            })
        }
        "setname" => {
            if !valid_client_name(&argv[2]) {
                return Err(CmdError::err(
                    "Client names cannot contain spaces, newlines or special characters.",
                ));
            }
            if let Some(info) = &ctx.sess.info {
                if let Ok(mut n) = info.name.lock() {
                    *n = text(&argv[2]);
                }
            }
            Ok(Reply::Ok)
        }
        "setinfo" => setinfo(ctx, argv),
        "info" => {
            let line = match &ctx.sess.info {
                Some(i) => info_line(i, ctx.now, false),
                None => String::new(),
            };
            Ok(Reply::Verbatim(format!("{line}\n")))
        }
        "list" => list(ctx, argv),
        "kill" => kill(ctx, argv),
        "reply" => {
            if is(&argv[2], "on") {
                ctx.sess.reply_mode = ReplyMode::On;
                Ok(Reply::Ok)
            } else if is(&argv[2], "off") {
                ctx.sess.reply_mode = ReplyMode::Off;
                Ok(Reply::NoReply)
            } else if is(&argv[2], "skip") {
                if ctx.sess.reply_mode != ReplyMode::Off {
                    ctx.sess.reply_mode = ReplyMode::Skip;
                }
                Ok(Reply::NoReply)
            } else {
                Err(CmdError::Syntax)
            }
        }
        "no-evict" => {
            let on = on_off(&argv[2])?;
            if let Some(info) = &ctx.sess.info {
                info.set_flag('e', on);
            }
            Ok(Reply::Ok)
        }
        // Redis 7.2's CLIENT NO-TOUCH (7.0 has none): accepted, not honoured — this client's
        // reads still refresh access times.
        "no-touch" => on_off(&argv[2]).map(|_| Reply::Ok),
        "getredir" => Ok(Reply::Int(-1)),
        "unblock" => {
            if argv.len() > 4 {
                return Err(CmdError::echo(
                    "ERR unknown subcommand or wrong number of arguments for '",
                    c_str(&argv[1], 128),
                    "'. Try CLIENT HELP.",
                ));
            }
            let error = match argv.get(3) {
                None => false,
                Some(r) if is(r, "timeout") => false,
                Some(r) if is(r, "error") => true,
                Some(_) => {
                    return Err(CmdError::err(
                        "CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
                    ))
                }
            };
            let id = int(&argv[2])?;
            let reply =
                error.then(|| Reply::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into()));
            let done = id > 0 && ctx.st.blocked.unblock_client(id as u64, reply);
            Ok(Reply::Int(i64::from(done)))
        }
        "trackinginfo" => Ok(Reply::Map(vec![
            (Reply::bulk("flags"), Reply::Set(vec![Reply::bulk("off")])),
            (Reply::bulk("redirect"), Reply::Int(-1)),
            (Reply::bulk("prefixes"), Reply::Array(vec![])),
        ])),
        _ => Err(CmdError::Syntax),
    }
}

fn on_off(arg: &[u8]) -> Result<bool, CmdError> {
    if is(arg, "on") {
        Ok(true)
    } else if is(arg, "off") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Redis 7.2's `CLIENT SETINFO LIB-NAME|LIB-VER <value>` (clients send it after HELLO).
fn setinfo(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let attr = text(&argv[2]);
    let lib = is(&argv[2], "lib-name");
    if !lib && !is(&argv[2], "lib-ver") {
        return Err(CmdError::err(format!("Unrecognized option '{attr}'")));
    }
    if !valid_client_name(&argv[3]) {
        return Err(CmdError::err(format!(
            "{attr} cannot contain spaces, newlines or special characters."
        )));
    }
    if let Some(info) = &ctx.sess.info {
        if let Ok(mut l) = info.lib.lock() {
            if lib {
                l.0 = text(&argv[3]);
            } else {
                l.1 = text(&argv[3]);
            }
        }
    }
    Ok(Reply::Ok)
}

fn list(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let clients = ctx.srv.clients.list();
    let chosen: Vec<Arc<ClientInfo>> = if argv.len() == 4 && is(&argv[2], "type") {
        let t = type_by_name(&argv[3])?;
        clients.into_iter().filter(|c| type_of(c) == t).collect()
    } else if argv.len() > 3 && is(&argv[2], "id") {
        let mut out = Vec::new();
        for a in &argv[3..] {
            let id = int(a).map_err(|_| CmdError::err("Invalid client ID"))?;
            if let Some(c) = clients.iter().find(|c| c.id as i64 == id) {
                out.push(c.clone());
            }
        }
        out
    } else if argv.len() != 2 {
        return Err(CmdError::Syntax);
    } else {
        clients
    };
    let mut s = String::new();
    for c in &chosen {
        s.push_str(&info_line(c, ctx.now, ctx.st.blocked.is_blocked(c.id)));
        s.push('\n');
    }
    Ok(Reply::Verbatim(s))
}

fn kill(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let mut addr = None;
    let mut laddr = None;
    let mut ctype = None;
    let mut id = 0u64;
    let mut skipme = true;
    let old_form = argv.len() == 3;
    if old_form {
        // CLIENT KILL <ip:port>: this form may kill the caller itself.
        addr = Some(text(&argv[2]));
        skipme = false;
    } else {
        let mut i = 2;
        while i < argv.len() {
            let more = i + 1 < argv.len();
            let opt = &argv[i];
            if !more {
                return Err(CmdError::Syntax);
            }
            let val = &argv[i + 1];
            if is(opt, "id") {
                id = match int(val) {
                    Ok(n) if n >= 1 => n as u64,
                    _ => return Err(CmdError::err("client-id should be greater than 0")),
                };
            } else if is(opt, "type") {
                ctype = Some(type_by_name(val)?);
            } else if is(opt, "addr") {
                addr = Some(text(val));
            } else if is(opt, "laddr") {
                laddr = Some(text(val));
            } else if is(opt, "user") {
                // kura has only the default user.
                if val.as_ref() != b"default" {
                    return Err(CmdError::echo("ERR No such user '", val, "'"));
                }
            } else if is(opt, "skipme") {
                skipme = if is(val, "yes") {
                    true
                } else if is(val, "no") {
                    false
                } else {
                    return Err(CmdError::Syntax);
                };
            } else {
                return Err(CmdError::Syntax);
            }
            i += 2;
        }
    }
    let me = ctx.sess.id;
    let mut killed = 0;
    for c in ctx.srv.clients.list() {
        if addr.as_ref().is_some_and(|a| *a != c.addr.to_string())
            || laddr.as_ref().is_some_and(|a| *a != c.laddr.to_string())
            || ctype.is_some_and(|t| t != type_of(&c))
            || (id != 0 && c.id != id)
            || (c.id == me && skipme)
        {
            continue;
        }
        if c.id == me {
            // Closed once this reply is written (Redis `CLIENT_CLOSE_AFTER_REPLY`).
            ctx.sess.close_after_reply = true;
        } else {
            c.kill();
        }
        killed += 1;
    }
    if old_form {
        if killed == 0 {
            Err(CmdError::err("No such client"))
        } else {
            Ok(Reply::Ok)
        }
    } else {
        Ok(Reply::Int(killed))
    }
}
