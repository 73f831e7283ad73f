//! DUMP and RESTORE: values in Redis's RDB payload format (Redis `cluster.c` `dumpCommand`,
//! `restoreCommand`), built on the codec in `persist::rdb` so payloads move between kura
//! and redis-server in both directions.

use bytes::Bytes;

use super::args::{int, is, own};
use super::exec::Ctx;
use super::reply::{CmdError, CmdResult, Reply};
use super::table::flags::*;
use super::table::CommandSpec;
use crate::command;
use crate::persist::rdb::{dump_payload, read_value, verify_payload, WriteOpts};
use crate::store::{Entry, Value};

/// DUMP/RESTORE commands.
pub static COMMANDS: &[CommandSpec] = &[
    command!("dump", 2, READONLY, (1, 1, 1), "generic", dump),
    command!(
        "restore",
        -4,
        WRITE | DENYOOM,
        (1, 1, 1),
        "generic",
        restore
    ),
];

/// `DUMP key`: the value's RDB serialisation + RDB version + CRC64, or nil.
fn dump(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let opts = ctx.srv.with_config(WriteOpts::from_config);
    Ok(match ctx.lookup_read(&argv[1]) {
        None => Reply::Nil,
        Some(e) => Reply::Bulk(Bytes::from(dump_payload(&e.value, &opts))),
    })
}

/// `RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]`, with Redis 7.0's
/// checks in its order: options, BUSYKEY, TTL, footer, payload.
fn restore(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let mut replace = false;
    let mut absttl = false;
    let mut idle: Option<i64> = None;
    let mut freq: Option<i64> = None;
    let mut j = 4;
    while j < argv.len() {
        let additional = argv.len() - j - 1;
        let a = &argv[j];
        if is(a, "replace") {
            replace = true;
        } else if is(a, "absttl") {
            absttl = true;
        } else if is(a, "idletime") && additional >= 1 && freq.is_none() {
            // IDLETIME and FREQ exclude each other: the second one is a syntax error.
            let v = int(&argv[j + 1])?;
            if v < 0 {
                return Err(CmdError::err("Invalid IDLETIME value, must be >= 0"));
            }
            idle = Some(v);
            j += 1;
        } else if is(a, "freq") && additional >= 1 && idle.is_none() {
            let v = int(&argv[j + 1])?;
            if !(0..=255).contains(&v) {
                return Err(CmdError::err("Invalid FREQ value, must be >= 0 and <= 255"));
            }
            freq = Some(v);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }

    let key = &argv[1];
    if !replace && ctx.exists(key) {
        return Err(CmdError::BusyKey);
    }
    let ttl = int(&argv[2])?;
    if ttl < 0 {
        return Err(CmdError::err("Invalid TTL value, must be >= 0"));
    }
    if !verify_payload(&argv[3]) {
        return Err(CmdError::err("DUMP payload version or checksum are wrong"));
    }
    // Redis reads the object from the whole argument, footer included, and ignores what
    // follows it; so does this.
    let Ok((value, _)) = read_value(&argv[3]) else {
        return Err(CmdError::err("Bad data format"));
    };

    let deleted = replace && ctx.db().remove(key).is_some();
    let now = ctx.now;
    // `ttl += mstime()` in C: a huge relative TTL wraps into the past, as it does there.
    let at = if ttl != 0 && !absttl {
        ttl.wrapping_add(now)
    } else {
        ttl
    };
    if at != 0 && at <= now && !ctx.st.is_replica {
        // Already expired: the key is not created (a replaced one is gone, logged as DEL).
        if deleted {
            ctx.propagate(vec![Bytes::from_static(b"DEL"), own(key)]);
            ctx.touch(key);
            ctx.add_dirty(1);
        }
        return Ok(Reply::Ok);
    }

    let is_list = matches!(value, Value::List(_));
    let mut entry = Entry::new(value, now);
    let lfu = ctx.srv.with_config(|c| c.maxmemory_policy.contains("lfu"));
    // `objectSetLRUOrLFU`: FREQ only matters under an LFU policy, IDLETIME otherwise; kura
    // keeps no LFU counter, so FREQ is accepted and has no effect.
    if let (Some(idle), false) = (idle, lfu) {
        let since = (now / 1000).saturating_sub(idle).max(0);
        entry.access = u32::try_from(since).unwrap_or(u32::MAX);
    }
    ctx.db().insert(key, entry);
    if at != 0 {
        ctx.db().set_expire(key, Some(at));
        if !absttl {
            // Propagate the TTL as an absolute time, flagged ABSTTL (`restoreCommand`).
            let mut prop: Vec<Bytes> = argv.to_vec();
            prop[2] = Bytes::from(at.to_string());
            prop.push(Bytes::from_static(b"ABSTTL"));
            ctx.propagate(prop);
        }
    }
    if is_list {
        ctx.signal_ready(key);
    }
    ctx.touch(key);
    ctx.add_dirty(1);
    Ok(Reply::Ok)
}
