//! Generic key commands (Redis `db.c`, `expire.c`, `object.c`).

use bytes::Bytes;

use super::args::{int, int32, is, text};
use super::exec::{Ctx, EngineState};
use super::glob::glob_match;
use super::reply::{CmdError, CmdResult, Reply};
use super::table::flags::*;
use super::table::CommandSpec;
use super::Origin;
use crate::command;
use crate::store::{Entry, StrRepr, Value};

/// Key commands.
pub static COMMANDS: &[CommandSpec] = &[
    command!("del", -2, WRITE, (1, -1, 1), "generic", del),
    command!("unlink", -2, WRITE | FAST, (1, -1, 1), "generic", del),
    command!("exists", -2, READONLY | FAST, (1, -1, 1), "generic", exists),
    command!("type", 2, READONLY | FAST, (1, 1, 1), "generic", type_cmd),
    command!("keys", 2, READONLY, (0, 0, 0), "generic", keys),
    command!("scan", -2, READONLY, (0, 0, 0), "generic", scan),
    command!("randomkey", 1, READONLY, (0, 0, 0), "generic", randomkey),
    command!("rename", 3, WRITE, (1, 2, 1), "generic", rename),
    command!("renamenx", 3, WRITE | FAST, (1, 2, 1), "generic", renamenx),
    command!("copy", -3, WRITE | DENYOOM, (1, 2, 1), "generic", copy),
    command!("move", 3, WRITE | FAST, (1, 1, 1), "generic", move_cmd),
    command!("swapdb", 3, WRITE | FAST, (0, 0, 0), "server", swapdb),
    command!("touch", -2, READONLY | FAST, (1, -1, 1), "generic", touch),
    command!("expire", -3, WRITE | FAST, (1, 1, 1), "generic", expire),
    command!("pexpire", -3, WRITE | FAST, (1, 1, 1), "generic", pexpire),
    command!("expireat", -3, WRITE | FAST, (1, 1, 1), "generic", expireat),
    command!(
        "pexpireat",
        -3,
        WRITE | FAST,
        (1, 1, 1),
        "generic",
        pexpireat
    ),
    command!("ttl", 2, READONLY | FAST, (1, 1, 1), "generic", ttl),
    command!("pttl", 2, READONLY | FAST, (1, 1, 1), "generic", pttl),
    command!(
        "expiretime",
        2,
        READONLY | FAST,
        (1, 1, 1),
        "generic",
        expiretime
    ),
    command!(
        "pexpiretime",
        2,
        READONLY | FAST,
        (1, 1, 1),
        "generic",
        pexpiretime
    ),
    command!("persist", 2, WRITE | FAST, (1, 1, 1), "generic", persist),
    command!("dbsize", 1, READONLY | FAST, (0, 0, 0), "server", dbsize),
    command!("flushdb", -1, WRITE, (0, 0, 0), "server", flushdb),
    command!("flushall", -1, WRITE, (0, 0, 0), "server", flushall),
    command!(
        "object",
        -2,
        0,
        (0, 0, 0),
        "generic",
        object,
        subs = &[
            "object|encoding",
            "object|freq",
            "object|help",
            "object|idletime",
            "object|refcount"
        ]
    ),
];

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// Parses a database index as `getIntFromObjectOrReply` + `selectDb` do (MOVE, COPY).
pub(crate) fn db_index(ctx: &Ctx<'_>, arg: &[u8]) -> Result<usize, CmdError> {
    let id = int32(arg)?;
    usize::try_from(id)
        .ok()
        .filter(|&i| i < ctx.st.ks.dbs.len())
        .ok_or(CmdError::DbIndexOutOfRange)
}

/// Redis's `shared.sameobjecterr`.
fn same_object() -> CmdError {
    CmdError::err("source and destination objects are the same")
}

/// Reports whether a live key exists in database `db` (expiring it first if due).
fn exists_in(ctx: &mut Ctx<'_>, db: usize, key: &[u8]) -> bool {
    !ctx.expire_if_needed(db, key) && ctx.st.ks.dbs[db].get(key).is_some()
}

/// Queues clients blocked on list `key` of database `db` to be served (`dbAdd` →
/// `signalKeyAsReady`).
fn signal_list(ctx: &mut Ctx<'_>, db: usize, key: &[u8]) {
    let is_list = matches!(
        ctx.st.ks.dbs[db].get(key).map(|e| &e.value),
        Some(Value::List(_))
    );
    if is_list && ctx.st.blocked.has_waiters(db, key) {
        ctx.ready.push((db, Bytes::copy_from_slice(key)));
    }
}

/// Marks the WATCHers of keys in `emptied` as dirty when the key exists there or in
/// `replaced_with` (Redis's `touchAllWatchedKeysInDb`, used by FLUSH* before emptying and
/// by SWAPDB after swapping). A watched key that exists in neither is left alone.
pub fn touch_watched_in_db(st: &mut EngineState, emptied: usize, replaced_with: Option<usize>) {
    if st.watched.is_empty() {
        return;
    }
    for ((db, key), watchers) in &st.watched {
        if *db != emptied {
            continue;
        }
        let hit = st.ks.dbs[emptied].get(key).is_some()
            || replaced_with.is_some_and(|o| st.ks.dbs[o].get(key).is_some());
        if hit {
            for (_, flag) in watchers {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

/// Reports whether an absolute expiry time is already past, so the key must be deleted now
/// (`checkAlreadyExpired`: never on a replica nor while loading the AOF).
pub fn already_expired(ctx: &Ctx<'_>, when: i64) -> bool {
    when <= ctx.now && !ctx.st.is_replica && ctx.sess.origin != Origin::AofLoad
}

/// Returns Redis's `invalid expire time in '<cmd>' command` error.
pub fn invalid_expire(cmd: &str) -> CmdError {
    CmdError::err(format!("invalid expire time in '{cmd}' command"))
}

// ---------------------------------------------------------------------------------------------
// DEL, EXISTS, TYPE, TOUCH, KEYS, SCAN, RANDOMKEY, DBSIZE
// ---------------------------------------------------------------------------------------------

fn del(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let db = ctx.dbi();
    let mut n = 0;
    for k in &argv[1..] {
        ctx.expire_if_needed(db, k);
        if ctx.db().remove(k).is_some() {
            ctx.touch(k);
            n += 1;
        }
    }
    ctx.add_dirty(n as u64);
    Ok(Reply::Int(n))
}

fn exists(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let mut n = 0;
    for k in &argv[1..] {
        if ctx.lookup_read_notouch(k).is_some() {
            n += 1;
        }
    }
    Ok(Reply::Int(n))
}

fn type_cmd(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let name = ctx
        .lookup_read_notouch(&argv[1])
        .map_or("none", |e| e.value.type_name());
    Ok(Reply::Simple(name.to_string()))
}

fn touch(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let mut n = 0;
    for k in &argv[1..] {
        if ctx.lookup_read(k).is_some() {
            n += 1;
        }
    }
    Ok(Reply::Int(n))
}

fn keys(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let pattern = &argv[1][..];
    let all = pattern == b"*";
    let now = ctx.now;
    let out: Vec<Reply> = ctx
        .db()
        .iter()
        .filter(|(k, e)| {
            (all || glob_match(pattern, k, false)) && e.expire_at().is_none_or(|at| at > now)
        })
        .map(|(k, _)| Reply::Bulk(Bytes::copy_from_slice(k)))
        .collect();
    Ok(Reply::Array(out))
}

/// Parses a SCAN cursor as `parseScanCursorOrReply`: `strtoul` base 10 over the whole
/// argument (sign allowed, `-n` wraps, empty means 0), no leading space, no overflow.
pub(crate) fn parse_cursor(arg: &[u8]) -> Option<u64> {
    // The C string ends at the first NUL.
    let arg = arg.split(|&b| b == 0).next().unwrap_or(&[]);
    if arg.is_empty() {
        return Some(0);
    }
    if arg[0].is_ascii_whitespace() || arg[0] == 0x0b {
        return None;
    }
    let (neg, digits) = match arg[0] {
        b'-' => (true, &arg[1..]),
        b'+' => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for d in digits {
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

fn scan(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&argv[1]).ok_or_else(|| CmdError::err("invalid cursor"))?;
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut type_filter: Option<&[u8]> = None;
    let mut i = 2;
    while i < argv.len() {
        let more = argv.len() - i >= 2;
        if is(&argv[i], "count") && more {
            count = int(&argv[i + 1])?;
            if count < 1 {
                return Err(CmdError::Syntax);
            }
        } else if is(&argv[i], "match") && more {
            let p = &argv[i + 1][..];
            pattern = if p == b"*" { None } else { Some(p) };
        } else if is(&argv[i], "type") && more {
            type_filter = Some(&argv[i + 1][..]);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let mut found: Vec<Bytes> = Vec::new();
    let next = ctx.db().scan(cursor, count as usize, |k, _| {
        if pattern.is_none_or(|p| glob_match(p, k, false)) {
            found.push(Bytes::copy_from_slice(k));
        }
    });
    let db = ctx.dbi();
    let mut keys = Vec::with_capacity(found.len());
    for k in found {
        // As scanGenericCommand: the TYPE filter looks the key up for reading (expiring it,
        // counting a hit or miss); otherwise expired keys are only dropped.
        let live = match type_filter {
            Some(want) => ctx
                .lookup_read_notouch(&k)
                .is_some_and(|e| want.eq_ignore_ascii_case(e.value.type_name().as_bytes())),
            None => !ctx.expire_if_needed(db, &k),
        };
        if live {
            keys.push(Reply::Bulk(k));
        }
    }
    Ok(Reply::Array(vec![
        Reply::BulkStr(next.to_string()),
        Reply::Array(keys),
    ]))
}

fn randomkey(ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> CmdResult {
    let db = ctx.dbi();
    let all_volatile = {
        let d = &ctx.st.ks.dbs[db];
        d.len() == d.expires_len()
    };
    // dbRandomKey: skip (and on a master delete) expired picks; a replica whose keys have all
    // logically expired gives up after 100 tries and returns one anyway.
    let mut tries = 0;
    loop {
        let st = &mut *ctx.st;
        let Some(key) = st.ks.dbs[db].random_key(&mut st.rng) else {
            return Ok(Reply::Nil);
        };
        let volatile = st.ks.dbs[db]
            .get(&key)
            .is_some_and(|e| e.expire_at().is_some());
        if volatile {
            tries += 1;
            if (all_volatile && st.is_replica && tries >= 100) || tries >= 100_000 {
                return Ok(Reply::Bulk(key));
            }
            if ctx.expire_if_needed(db, &key) {
                continue;
            }
        }
        return Ok(Reply::Bulk(key));
    }
}

fn dbsize(ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(ctx.db().len() as i64))
}

// ---------------------------------------------------------------------------------------------
// RENAME, RENAMENX, MOVE, COPY, SWAPDB
// ---------------------------------------------------------------------------------------------

fn rename(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    rename_generic(ctx, argv, false)
}

fn renamenx(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    rename_generic(ctx, argv, true)
}

fn rename_generic(ctx: &mut Ctx<'_>, argv: &[Bytes], nx: bool) -> CmdResult {
    let (src, dst) = (&argv[1], &argv[2]);
    if ctx.lookup_write(src).is_none() {
        return Err(CmdError::NoSuchKey);
    }
    if src == dst {
        return Ok(if nx { Reply::Int(0) } else { Reply::Ok });
    }
    let db = ctx.dbi();
    if exists_in(ctx, db, dst) {
        if nx {
            return Ok(Reply::Int(0));
        }
        ctx.db().remove(dst);
    }
    let Some(mut entry) = ctx.db().remove(src) else {
        return Err(CmdError::NoSuchKey);
    };
    entry.access = (ctx.now / 1000) as u32;
    // The TTL travels with the entry (dbAdd + setExpire in Redis).
    ctx.db().insert(dst, entry);
    ctx.touch(src);
    ctx.touch(dst);
    signal_list(ctx, db, dst);
    ctx.add_dirty(1);
    Ok(if nx { Reply::Int(1) } else { Reply::Ok })
}

fn move_cmd(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let key = &argv[1];
    let src = ctx.dbi();
    let dst = db_index(ctx, &argv[2])?;
    if src == dst {
        return Err(same_object());
    }
    if ctx.lookup_write(key).is_none() {
        return Ok(Reply::Int(0));
    }
    if exists_in(ctx, dst, key) {
        return Ok(Reply::Int(0));
    }
    let Some(mut entry) = ctx.db().remove(key) else {
        return Ok(Reply::Int(0));
    };
    entry.access = (ctx.now / 1000) as u32;
    ctx.st.ks.dbs[dst].insert(key, entry);
    ctx.touch(key);
    ctx.st.touch(dst, key);
    signal_list(ctx, dst, key);
    ctx.add_dirty(1);
    Ok(Reply::Int(1))
}

fn copy(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let src_db = ctx.dbi();
    let mut dst_db = src_db;
    let mut replace = false;
    let mut j = 3;
    while j < argv.len() {
        if is(&argv[j], "replace") {
            replace = true;
        } else if is(&argv[j], "db") && j + 1 < argv.len() {
            dst_db = db_index(ctx, &argv[j + 1])?;
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let (key, newkey) = (&argv[1], &argv[2]);
    if src_db == dst_db && key == newkey {
        return Err(same_object());
    }
    let now = ctx.now;
    let Some(e) = ctx.lookup_read(key) else {
        return Ok(Reply::Int(0));
    };
    // dupStringObject keeps the encoding but never the shared integer; aggregates are
    // copy-on-write, so sharing the Arc is a deep copy as far as anyone can tell.
    let mut dup = Entry::new(e.value.clone(), now);
    dup.repr = match e.repr {
        StrRepr::Auto => StrRepr::Unshared,
        other => other,
    };
    dup.set_expire_at(e.expire_at());
    if exists_in(ctx, dst_db, newkey) {
        if !replace {
            return Ok(Reply::Int(0));
        }
        ctx.st.ks.dbs[dst_db].remove(newkey);
    }
    ctx.st.ks.dbs[dst_db].insert(newkey, dup);
    ctx.st.touch(dst_db, newkey);
    signal_list(ctx, dst_db, newkey);
    ctx.add_dirty(1);
    Ok(Reply::Int(1))
}

fn swapdb(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let parse = |arg: &[u8], what: &str| -> Result<i64, CmdError> {
        match int(arg) {
            Ok(v) if v >= i32::MIN as i64 && v <= i32::MAX as i64 => Ok(v),
            _ => Err(CmdError::err(format!("invalid {what} DB index"))),
        }
    };
    let a = parse(&argv[1], "first")?;
    let b = parse(&argv[2], "second")?;
    let n = ctx.st.ks.dbs.len() as i64;
    if a < 0 || a >= n || b < 0 || b >= n {
        return Err(CmdError::DbIndexOutOfRange);
    }
    let (a, b) = (a as usize, b as usize);
    if a != b {
        ctx.st.ks.dbs.swap(a, b);
        // Clients stay in their database: whoever blocks on a list that now exists there is
        // served (scanDatabaseForReadyLists), whoever watches a key of either is dirtied.
        touch_watched_in_db(ctx.st, a, Some(b));
        touch_watched_in_db(ctx.st, b, Some(a));
        if !ctx.st.blocked.is_empty() {
            // `scanDatabaseForReadyKeys`: only the keys someone waits on are looked at.
            for db in [a, b] {
                for k in ctx.st.blocked.waiting_keys(db) {
                    signal_list(ctx, db, &k);
                }
            }
        }
    }
    ctx.add_dirty(1);
    Ok(Reply::Ok)
}

// ---------------------------------------------------------------------------------------------
// EXPIRE family, TTL family, PERSIST
// ---------------------------------------------------------------------------------------------

const EXPIRE_NX: u8 = 1;
const EXPIRE_XX: u8 = 2;
const EXPIRE_GT: u8 = 4;
const EXPIRE_LT: u8 = 8;

/// Parses NX/XX/GT/LT (`parseExtendedExpireArgumentsOrReply`), before the time itself.
fn expire_flags(args: &[Bytes]) -> Result<u8, CmdError> {
    let mut flags = 0;
    for a in args {
        flags |= if is(a, "nx") {
            EXPIRE_NX
        } else if is(a, "xx") {
            EXPIRE_XX
        } else if is(a, "gt") {
            EXPIRE_GT
        } else if is(a, "lt") {
            EXPIRE_LT
        } else {
            return Err(CmdError::echo("ERR Unsupported option ", a, ""));
        };
    }
    if flags & EXPIRE_NX != 0 && flags & (EXPIRE_XX | EXPIRE_GT | EXPIRE_LT) != 0 {
        return Err(CmdError::err(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if flags & EXPIRE_GT != 0 && flags & EXPIRE_LT != 0 {
        return Err(CmdError::err(
            "GT and LT options at the same time are not compatible",
        ));
    }
    Ok(flags)
}

fn expire(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    expire_generic(ctx, argv, "expire", now, true)
}

fn pexpire(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    expire_generic(ctx, argv, "pexpire", now, false)
}

fn expireat(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    expire_generic(ctx, argv, "expireat", 0, true)
}

fn pexpireat(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    expire_generic(ctx, argv, "pexpireat", 0, false)
}

/// `expireGenericCommand`: the time is made absolute (ms); a time already past deletes the
/// key (propagated as `DEL`), otherwise the command is propagated as `PEXPIREAT key <ms>`
/// with its NX/XX/GT/LT arguments kept.
fn expire_generic(
    ctx: &mut Ctx<'_>,
    argv: &[Bytes],
    name: &str,
    base: i64,
    seconds: bool,
) -> CmdResult {
    let key = &argv[1];
    let flags = expire_flags(&argv[3..])?;
    let mut when = int(&argv[2])?;
    if seconds {
        when = when.checked_mul(1000).ok_or_else(|| invalid_expire(name))?;
    }
    when = when.checked_add(base).ok_or_else(|| invalid_expire(name))?;
    let Some(e) = ctx.lookup_write(key) else {
        return Ok(Reply::Int(0));
    };
    let current = e.expire_at();
    if flags & EXPIRE_NX != 0 && current.is_some() {
        return Ok(Reply::Int(0));
    }
    if flags & EXPIRE_XX != 0 && current.is_none() {
        return Ok(Reply::Int(0));
    }
    if flags & EXPIRE_GT != 0 && current.is_none_or(|c| when <= c) {
        return Ok(Reply::Int(0));
    }
    if flags & EXPIRE_LT != 0 && current.is_some_and(|c| when >= c) {
        return Ok(Reply::Int(0));
    }
    if already_expired(ctx, when) {
        ctx.db().remove(key);
        ctx.propagate(vec![Bytes::from_static(b"DEL"), key.clone()]);
    } else {
        ctx.db().set_expire(key, Some(when));
        if name != "pexpireat" {
            let mut out = Vec::with_capacity(argv.len());
            out.push(Bytes::from_static(b"PEXPIREAT"));
            out.push(key.clone());
            out.push(Bytes::from(when.to_string()));
            out.extend(argv[3..].iter().cloned());
            ctx.propagate(out);
        }
    }
    ctx.touch(key);
    ctx.add_dirty(1);
    Ok(Reply::Int(1))
}

/// `ttlGenericCommand`: -2 missing, -1 no expiry, else the time left (or the absolute time),
/// seconds rounded to nearest.
fn ttl_generic(ctx: &mut Ctx<'_>, key: &[u8], ms: bool, absolute: bool) -> CmdResult {
    let now = ctx.now;
    let Some(e) = ctx.lookup_read_notouch(key) else {
        return Ok(Reply::Int(-2));
    };
    Ok(Reply::Int(match e.expire_at() {
        None => -1,
        Some(at) => {
            let t = if absolute { at } else { at - now }.max(0);
            if ms {
                t
            } else {
                (t + 500) / 1000
            }
        }
    }))
}

fn ttl(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &argv[1], false, false)
}

fn pttl(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &argv[1], true, false)
}

fn expiretime(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &argv[1], false, true)
}

fn pexpiretime(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &argv[1], true, true)
}

fn persist(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let key = &argv[1];
    let had = ctx
        .lookup_write(key)
        .is_some_and(|e| e.expire_at().is_some());
    if !had {
        return Ok(Reply::Int(0));
    }
    ctx.db().set_expire(key, None);
    ctx.touch(key);
    ctx.add_dirty(1);
    Ok(Reply::Int(1))
}

// ---------------------------------------------------------------------------------------------
// FLUSHDB, FLUSHALL
// ---------------------------------------------------------------------------------------------

/// Checks FLUSHDB/FLUSHALL's only option (`getFlushCommandFlags`); kura frees synchronously
/// either way.
fn flush_flags(argv: &[Bytes]) -> Result<(), CmdError> {
    match argv.len() {
        1 => Ok(()),
        2 if is(&argv[1], "sync") || is(&argv[1], "async") => Ok(()),
        _ => Err(CmdError::Syntax),
    }
}

fn flushdb(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    flush_flags(argv)?;
    let db = ctx.dbi();
    touch_watched_in_db(ctx.st, db, None);
    let n = ctx.db().len() as u64;
    ctx.db().clear();
    flushed(ctx, argv, n);
    Ok(Reply::Ok)
}

/// Counts the keys a flush removed as changes (`server.dirty += emptyData(…)`) and makes
/// sure the flush is propagated even when it removed nothing (`forceCommandPropagation`):
/// with no change counted, nothing else would log it.
fn flushed(ctx: &mut Ctx<'_>, argv: &[Bytes], removed: u64) {
    if removed > 0 {
        ctx.add_dirty(removed);
    } else {
        let db = ctx.dbi();
        ctx.st.stream.append(db, argv);
    }
}

fn flushall(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    flush_flags(argv)?;
    let mut n = 0;
    for db in 0..ctx.st.ks.dbs.len() {
        touch_watched_in_db(ctx.st, db, None);
        n += ctx.st.ks.dbs[db].len() as u64;
        ctx.st.ks.dbs[db].clear();
    }
    // Redis 7.0.15 adds no extra change for FLUSHALL itself (a configured save point would
    // save here and reset the counter; kura has no RDB saving yet).
    flushed(ctx, argv, n);
    Ok(Reply::Ok)
}

// ---------------------------------------------------------------------------------------------
// OBJECT
// ---------------------------------------------------------------------------------------------

const OBJECT_HELP: &[&str] = &[
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
];

/// Builds a `HELP` subcommand reply as `addReplyHelp` does.
pub fn help_reply(cmd: &[u8], lines: &[&str]) -> Reply {
    let mut out = Vec::with_capacity(lines.len() + 3);
    out.push(Reply::Simple(format!(
        "{} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        text(cmd).to_uppercase()
    )));
    out.extend(lines.iter().map(|l| Reply::Simple(l.to_string())));
    out.push(Reply::Simple("HELP".into()));
    out.push(Reply::Simple("    Prints this help.".into()));
    Reply::Array(out)
}

fn object(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let sub = text(&argv[1]).to_ascii_lowercase();
    let arity = match sub.as_str() {
        "help" => 2,
        "encoding" | "freq" | "idletime" | "refcount" => 3,
        _ => {
            return Err(CmdError::UnknownSubcommand {
                sub: argv[1].clone(),
                cmd: text(&argv[0]).to_uppercase(),
            })
        }
    };
    if argv.len() != arity {
        return Err(CmdError::Arity(format!("object|{sub}")));
    }
    if sub == "help" {
        return Ok(help_reply(&argv[0], OBJECT_HELP));
    }
    let now = ctx.now;
    let lfu = ctx.srv.with_config(|c| c.maxmemory_policy.contains("lfu"));
    let Some(e) = ctx.lookup_read_notouch(&argv[2]) else {
        return Ok(Reply::Nil);
    };
    match sub.as_str() {
        "encoding" => Ok(Reply::bulk(e.encoding())),
        "refcount" => Ok(Reply::Int(e.refcount())),
        "idletime" => {
            if lfu {
                return Err(CmdError::err("An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
            }
            Ok(Reply::Int(((now / 1000) - e.access as i64).max(0)))
        }
        _ => {
            if !lfu {
                return Err(CmdError::err("An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
            }
            // kura keeps no access counter; 0 is what Redis reports after switching to an
            // LFU policy at runtime.
            Ok(Reply::Int(0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_parsing() {
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"+5"), Some(5));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b" 1"), None);
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b"1x"), None);
        assert_eq!(parse_cursor(b"-"), None);
    }
}
