//! The master side (`shared/spec/redis.md` §2.3–2.4): SYNC/PSYNC/REPLCONF on a client
//! connection, then the connection is handed to [`feed::serve`], which does the partial or
//! full resync and streams the write stream to the replica.
//!
//! The commands only record what the replica asked for in its session; the connection loop
//! sees [`Session::sync`] set after the command and hands its socket over, so no command
//! handler ever owns a socket.

pub mod feed;
pub mod job;

use std::net::IpAddr;

use bytes::Bytes;

use crate::cmd::args::{int, is};
use crate::cmd::exec::Ctx;
use crate::cmd::reply::{CmdError, CmdResult, Reply};
use crate::cmd::table::flags::*;
use crate::cmd::table::CommandSpec;
use crate::command;

/// What a replica announced with REPLCONF before its SYNC/PSYNC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handshake {
    /// `REPLCONF listening-port`.
    pub listening_port: u16,
    /// `REPLCONF ip-address`.
    pub ip: Option<IpAddr>,
    /// `capa eof`: it can take a `$EOF:` framed snapshot.
    pub capa_eof: bool,
    /// `capa psync2`: it understands `+CONTINUE <replid>`.
    pub capa_psync2: bool,
    /// `REPLCONF rdb-only 1` (`redis-cli --rdb`): close after the snapshot.
    pub rdb_only: bool,
    /// `REPLCONF rdb-filter-only`: a snapshot without keys (`redis-cli --replica`).
    pub rdb_filtered: bool,
}

/// A SYNC or PSYNC waiting for the connection to hand its socket over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    /// `PSYNC <replid> <offset>`; `None` for the old SYNC (no `+FULLRESYNC` line).
    pub psync: Option<(String, i64)>,
    /// What REPLCONF announced.
    pub hs: Handshake,
}

/// SYNC, PSYNC and REPLCONF (Redis 7.0's arity and flags).
pub static COMMANDS: &[CommandSpec] = &[
    command!(
        "psync",
        -3,
        ADMIN | NOSCRIPT | NO_MULTI,
        (0, 0, 0),
        "server",
        psync
    ),
    command!(
        "sync",
        1,
        ADMIN | NOSCRIPT | NO_MULTI,
        (0, 0, 0),
        "server",
        psync
    ),
    command!(
        "replconf",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        replconf
    ),
];

/// `SYNC` / `PSYNC <replid> <offset>` (Redis `syncCommand`): checks, then hands over.
fn psync(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    if ctx.sess.sync.is_some() || ctx.sess.info.is_none() {
        return Ok(Reply::NoReply);
    }
    if ctx.srv.repl.is_following()
        && ctx
            .srv
            .repl
            .master_down
            .load(std::sync::atomic::Ordering::Acquire)
    {
        return Ok(Reply::err(
            "NOMASTERLINK Can't SYNC while not connected with my master",
        ));
    }
    let psync = if is(&argv[0], "psync") {
        let offset = int(&argv[2])?;
        Some((String::from_utf8_lossy(&argv[1]).into_owned(), offset))
    } else {
        None
    };
    let hs = ctx.sess.replica_hs.as_deref().cloned().unwrap_or_default();
    if hs.rdb_filtered && !hs.capa_eof {
        return Ok(Reply::err("ERR Filtered replica requires EOF capability"));
    }
    ctx.sess.sync = Some(SyncRequest { psync, hs });
    Ok(Reply::NoReply)
}

/// `REPLCONF <option> <value> …` before SYNC (Redis `replconfCommand`). ACK and GETACK from
/// a client that is not an attached replica get no reply, as in Redis.
fn replconf(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    if argv.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    let mut hs = ctx.sess.replica_hs.as_deref().cloned().unwrap_or_default();
    for pair in argv[1..].chunks(2) {
        let (opt, val) = (&pair[0], &pair[1]);
        if is(opt, "listening-port") {
            let port = int(val)?;
            hs.listening_port = u16::try_from(port).map_err(|_| CmdError::NotInteger)?;
        } else if is(opt, "ip-address") {
            let text = String::from_utf8_lossy(val);
            match text.parse() {
                Ok(ip) => hs.ip = Some(ip),
                Err(_) if val.len() > 46 => {
                    return Ok(Reply::err(format!(
                    "ERR REPLCONF ip-address provided by replica instance is too long: {} bytes",
                    val.len()
                )))
                }
                // A hostname: kept as the peer address (kura lists IPs).
                Err(_) => {}
            }
        } else if is(opt, "capa") {
            if is(val, "eof") {
                hs.capa_eof = true;
            } else if is(val, "psync2") {
                hs.capa_psync2 = true;
            }
        } else if is(opt, "ack") || is(opt, "getack") {
            return Ok(Reply::NoReply);
        } else if is(opt, "rdb-only") {
            match int(val)? {
                0 => hs.rdb_only = false,
                1 => hs.rdb_only = true,
                _ => return Err(CmdError::Syntax),
            }
        } else if is(opt, "rdb-filter-only") {
            hs.rdb_filtered = true;
        } else {
            return Ok(Reply::err(format!(
                "ERR Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    ctx.sess.replica_hs = Some(Box::new(hs));
    Ok(Reply::Ok)
}
