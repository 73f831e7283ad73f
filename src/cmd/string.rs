//! String commands (Redis `t_string.c`).
//!
//! Writes that set a relative expiry are propagated with the absolute time (`SET k v PXAT ms`,
//! `PEXPIREAT k ms`), and INCRBYFLOAT as `SET k <result> KEEPTTL`, so replicas and the AOF
//! converge whatever their clock and float formatting.

use bytes::Bytes;

use super::args::{int, is};
use super::exec::Ctx;
use super::keys::{already_expired, invalid_expire};
use super::ldouble::Ld;
use super::reply::{CmdError, CmdResult, Reply};
use super::table::flags::*;
use super::table::CommandSpec;
use super::Origin;
use crate::command;
use crate::resp::decode::parse_i64;
use crate::store::{Entry, Str, StrRepr, Value};

/// String commands.
pub static COMMANDS: &[CommandSpec] = &[
    command!("get", 2, READONLY | FAST, (1, 1, 1), "string", get),
    command!("set", -3, WRITE | DENYOOM, (1, 1, 1), "string", set),
    command!(
        "setnx",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "string",
        setnx
    ),
    command!("setex", 4, WRITE | DENYOOM, (1, 1, 1), "string", setex),
    command!("psetex", 4, WRITE | DENYOOM, (1, 1, 1), "string", psetex),
    command!("mget", -2, READONLY | FAST, (1, -1, 1), "string", mget),
    command!("mset", -3, WRITE | DENYOOM, (1, -1, 2), "string", mset),
    command!("msetnx", -3, WRITE | DENYOOM, (1, -1, 2), "string", msetnx),
    command!(
        "getset",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "string",
        getset
    ),
    command!("getdel", 2, WRITE | FAST, (1, 1, 1), "string", getdel),
    command!("getex", -2, WRITE | FAST, (1, 1, 1), "string", getex),
    command!(
        "append",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "string",
        append
    ),
    command!("strlen", 2, READONLY | FAST, (1, 1, 1), "string", strlen),
    command!("getrange", 4, READONLY, (1, 1, 1), "string", getrange),
    command!(
        "setrange",
        4,
        WRITE | DENYOOM,
        (1, 1, 1),
        "string",
        setrange
    ),
    command!("incr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), "string", incr),
    command!("decr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), "string", decr),
    command!(
        "incrby",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "string",
        incrby
    ),
    command!(
        "decrby",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "string",
        decrby
    ),
    command!(
        "incrbyfloat",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "string",
        incrbyfloat
    ),
];

// ---------------------------------------------------------------------------------------------
// Lookups and stores
// ---------------------------------------------------------------------------------------------

/// Looks a string up for reading (`lookupKeyRead` + `checkType`): `None` when missing.
fn read_str(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Bytes>, CmdError> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Str(s) => Ok(Some(s.to_bytes())),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// Applies expiry to `key` before a write that replaces it (the part of `lookupKeyWrite` a
/// blind overwrite needs).
fn expire_before_write(ctx: &mut Ctx<'_>, key: &[u8]) {
    let db = ctx.dbi();
    ctx.expire_if_needed(db, key);
}

/// What a store does with the key's expiry.
#[derive(Clone, Copy)]
enum Ttl {
    /// Clear it (plain SET).
    Clear,
    /// Keep it (KEEPTTL, INCR, APPEND).
    Keep,
    /// Set it to this absolute unix ms time.
    At(i64),
}

/// Stores a string value under `key` in the selected database (`setKey`/`dbOverwrite`), after
/// the caller's write lookup has applied expiry. Overwrites in place, so the key is copied
/// only when it is new.
fn store(ctx: &mut Ctx<'_>, key: &Bytes, val: Str, repr: StrRepr, ttl: Ttl) {
    let now = ctx.now;
    let db = ctx.db();
    if let Some(e) = db.get_mut(key) {
        e.value = Value::Str(val);
        e.repr = repr;
        e.access = (now / 1000) as u32;
        let had = e.expire_at().is_some();
        match ttl {
            Ttl::At(at) => {
                db.set_expire(key, Some(at));
            }
            Ttl::Clear if had => {
                db.set_expire(key, None);
            }
            _ => {}
        }
    } else {
        let mut e = Entry::new(Value::Str(val), now);
        e.repr = repr;
        if let Ttl::At(at) = ttl {
            e.set_expire_at(Some(at));
        }
        db.insert(key, e);
    }
    ctx.touch(key);
}

/// Reports whether this client may exceed `proto-max-bulk-len` (our master, AOF replay).
fn obeys_limits(ctx: &Ctx<'_>) -> bool {
    !matches!(ctx.sess.origin, Origin::Master | Origin::AofLoad)
}

/// `checkStringLength`: a resulting string longer than `proto-max-bulk-len` (or an overflowing
/// size) is refused.
fn check_length(ctx: &Ctx<'_>, size: i64, append: i64) -> Result<(), CmdError> {
    if !obeys_limits(ctx) {
        return Ok(());
    }
    let max = ctx.srv.with_config(|c| c.proto_max_bulk_len);
    match size.checked_add(append) {
        Some(total) if total as u64 <= max => Ok(()),
        _ => Err(CmdError::err(
            "string exceeds maximum allowed size (proto-max-bulk-len)",
        )),
    }
}

/// Returns a stored string's bytes for in-place growth: no copy when nothing else (a
/// snapshot) holds them, and spare capacity kept for the next append.
fn grow_mut(v: &mut Value) -> &mut Vec<u8> {
    if !matches!(v, Value::Str(_)) {
        *v = Value::Str(Str::from(Vec::new()));
    }
    match v {
        Value::Str(s) => s.make_mut(),
        _ => unreachable!("made a string above"),
    }
}

// ---------------------------------------------------------------------------------------------
// SET and its options
// ---------------------------------------------------------------------------------------------

const OBJ_NX: u32 = 1 << 0;
const OBJ_XX: u32 = 1 << 1;
const OBJ_GET: u32 = 1 << 2;
const OBJ_KEEPTTL: u32 = 1 << 3;
const OBJ_PERSIST: u32 = 1 << 4;
const OBJ_EX: u32 = 1 << 5;
const OBJ_PX: u32 = 1 << 6;
const OBJ_EXAT: u32 = 1 << 7;
const OBJ_PXAT: u32 = 1 << 8;
const EXPIRES: u32 = OBJ_EX | OBJ_PX | OBJ_EXAT | OBJ_PXAT;

/// The parsed options of SET or GETEX.
struct StrOpts<'a> {
    flags: u32,
    expire: Option<&'a Bytes>,
}

/// `parseExtendedStringArgumentsOrReply`: each option is refused (syntax error) when a
/// conflicting one came before; the same option twice is allowed, the last value wins.
fn parse_opts(argv: &[Bytes], from: usize, set: bool) -> Result<StrOpts<'_>, CmdError> {
    let mut flags = 0u32;
    let mut expire = None;
    let mut j = from;
    while j < argv.len() {
        let opt = &argv[j][..];
        let has_next = j + 1 < argv.len();
        let none = |f: u32| flags & f == 0;
        let exp_flag = if opt.eq_ignore_ascii_case(b"ex") {
            OBJ_EX
        } else if opt.eq_ignore_ascii_case(b"px") {
            OBJ_PX
        } else if opt.eq_ignore_ascii_case(b"exat") {
            OBJ_EXAT
        } else if opt.eq_ignore_ascii_case(b"pxat") {
            OBJ_PXAT
        } else {
            0
        };
        if set && opt.eq_ignore_ascii_case(b"nx") && none(OBJ_XX) {
            flags |= OBJ_NX;
        } else if set && opt.eq_ignore_ascii_case(b"xx") && none(OBJ_NX) {
            flags |= OBJ_XX;
        } else if set && opt.eq_ignore_ascii_case(b"get") {
            flags |= OBJ_GET;
        } else if set && opt.eq_ignore_ascii_case(b"keepttl") && none(OBJ_PERSIST | EXPIRES) {
            flags |= OBJ_KEEPTTL;
        } else if !set && opt.eq_ignore_ascii_case(b"persist") && none(EXPIRES | OBJ_KEEPTTL) {
            flags |= OBJ_PERSIST;
        } else if exp_flag != 0
            && none(OBJ_KEEPTTL | OBJ_PERSIST | (EXPIRES & !exp_flag))
            && has_next
        {
            flags |= exp_flag;
            expire = Some(&argv[j + 1]);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(StrOpts { flags, expire })
}

/// `getExpireMillisecondsOrReply`: a positive number, made absolute ms; `cmd` names the
/// command in the error.
fn expire_ms(ctx: &Ctx<'_>, arg: &[u8], flags: u32, cmd: &str) -> Result<i64, CmdError> {
    let mut ms = int(arg)?;
    let seconds = flags & (OBJ_EX | OBJ_EXAT) != 0;
    if ms <= 0 || (seconds && ms > i64::MAX / 1000) {
        return Err(invalid_expire(cmd));
    }
    if seconds {
        ms *= 1000;
    }
    if flags & (OBJ_EX | OBJ_PX) != 0 {
        // Redis overflows into a negative number and refuses it.
        ms = ms.wrapping_add(ctx.now);
    }
    if ms <= 0 {
        return Err(invalid_expire(cmd));
    }
    Ok(ms)
}

/// `setGenericCommand`. `ok`/`abort` replace `+OK` / the null reply (SETNX answers 1/0).
fn set_generic(
    ctx: &mut Ctx<'_>,
    argv: &[Bytes],
    opts: &StrOpts<'_>,
    key: &Bytes,
    val: &Bytes,
    cmd: &str,
    replies: Option<(Reply, Reply)>,
) -> CmdResult {
    let flags = opts.flags;
    let when = match opts.expire {
        Some(arg) => Some(expire_ms(ctx, arg, flags, cmd)?),
        None => None,
    };
    let old = if flags & OBJ_GET != 0 {
        Some(read_str(ctx, key)?)
    } else {
        None
    };
    let found = ctx.lookup_write(key).is_some();
    if (flags & OBJ_NX != 0 && found) || (flags & OBJ_XX != 0 && !found) {
        return Ok(match old {
            Some(v) => Reply::opt_bulk(v),
            None => replies.map_or(Reply::Nil, |(_, abort)| abort),
        });
    }
    let ttl = match when {
        Some(at) => Ttl::At(at),
        None if flags & OBJ_KEEPTTL != 0 => Ttl::Keep,
        None => Ttl::Clear,
    };
    store(ctx, key, Str::from(&val[..]), StrRepr::Auto, ttl);
    ctx.add_dirty(1);
    // Redis 7.0.15 rewrites any SET with an expiry to exactly this form (NX/XX/GET dropped,
    // even with PXAT), and drops GET otherwise; observed on its replication stream.
    match when {
        Some(at) => ctx.propagate(vec![
            Bytes::from_static(b"SET"),
            key.clone(),
            val.clone(),
            Bytes::from_static(b"PXAT"),
            Bytes::from(at.to_string()),
        ]),
        None if flags & OBJ_GET != 0 => {
            let kept = argv
                .iter()
                .enumerate()
                .filter(|(j, a)| *j < 3 || !is(a, "get"))
                .map(|(_, a)| a.clone())
                .collect();
            ctx.propagate(kept);
        }
        _ => {}
    }
    Ok(match old {
        Some(v) => Reply::opt_bulk(v),
        None => replies.map_or(Reply::Ok, |(ok, _)| ok),
    })
}

fn get(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    Ok(Reply::opt_bulk(read_str(ctx, &argv[1])?))
}

fn set(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    if argv.len() == 3 {
        // The common case, without option parsing: overwrite in place with one lookup when
        // the key exists without a TTL.
        let now = ctx.now;
        if let Some(e) = ctx.lookup_write(&argv[1]) {
            if e.expire_at().is_none() {
                e.value = Value::Str(Str::from(&argv[2][..]));
                e.repr = StrRepr::Auto;
                e.access = (now / 1000) as u32;
                ctx.touch(&argv[1]);
                ctx.add_dirty(1);
                return Ok(Reply::Ok);
            }
        }
        store(
            ctx,
            &argv[1],
            Str::from(&argv[2][..]),
            StrRepr::Auto,
            Ttl::Clear,
        );
        ctx.add_dirty(1);
        return Ok(Reply::Ok);
    }
    let opts = parse_opts(argv, 3, true)?;
    set_generic(ctx, argv, &opts, &argv[1], &argv[2], "set", None)
}

fn setnx(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let opts = StrOpts {
        flags: OBJ_NX,
        expire: None,
    };
    let replies = Some((Reply::Int(1), Reply::Int(0)));
    set_generic(ctx, argv, &opts, &argv[1], &argv[2], "setnx", replies)
}

fn setex(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let opts = StrOpts {
        flags: OBJ_EX,
        expire: Some(&argv[2]),
    };
    set_generic(ctx, argv, &opts, &argv[1], &argv[3], "setex", None)
}

fn psetex(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let opts = StrOpts {
        flags: OBJ_PX,
        expire: Some(&argv[2]),
    };
    set_generic(ctx, argv, &opts, &argv[1], &argv[3], "psetex", None)
}

// ---------------------------------------------------------------------------------------------
// MGET, MSET, MSETNX, GETSET, GETDEL, GETEX
// ---------------------------------------------------------------------------------------------

fn mget(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let mut out = Vec::with_capacity(argv.len() - 1);
    for k in &argv[1..] {
        out.push(match read_str(ctx, k) {
            Ok(v) => Reply::opt_bulk(v),
            Err(_) => Reply::Nil,
        });
    }
    Ok(Reply::Array(out))
}

fn mset_generic(ctx: &mut Ctx<'_>, argv: &[Bytes], nx: bool) -> CmdResult {
    if argv.len().is_multiple_of(2) {
        return Err(CmdError::Arity(
            if nx { "msetnx" } else { "mset" }.to_string(),
        ));
    }
    if nx {
        for pair in argv[1..].chunks(2) {
            if ctx.lookup_write(&pair[0]).is_some() {
                return Ok(Reply::Int(0));
            }
        }
    }
    for pair in argv[1..].chunks(2) {
        expire_before_write(ctx, &pair[0]);
        store(
            ctx,
            &pair[0],
            Str::from(&pair[1][..]),
            StrRepr::Auto,
            Ttl::Clear,
        );
    }
    ctx.add_dirty((argv.len() / 2) as u64);
    Ok(if nx { Reply::Int(1) } else { Reply::Ok })
}

fn mset(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    mset_generic(ctx, argv, false)
}

fn msetnx(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    mset_generic(ctx, argv, true)
}

fn getset(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let key = &argv[1];
    let old = read_str(ctx, key)?;
    expire_before_write(ctx, key);
    store(ctx, key, Str::from(&argv[2][..]), StrRepr::Auto, Ttl::Clear);
    ctx.add_dirty(1);
    ctx.propagate(vec![
        Bytes::from_static(b"SET"),
        key.clone(),
        argv[2].clone(),
    ]);
    Ok(Reply::opt_bulk(old))
}

fn getdel(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let key = &argv[1];
    let old = read_str(ctx, key)?;
    if old.is_some() && ctx.db().remove(key).is_some() {
        ctx.touch(key);
        ctx.add_dirty(1);
        ctx.propagate(vec![Bytes::from_static(b"DEL"), key.clone()]);
    }
    Ok(Reply::opt_bulk(old))
}

fn getex(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let opts = parse_opts(argv, 2, false)?;
    let key = &argv[1];
    let Some(val) = read_str(ctx, key)? else {
        return Ok(Reply::Nil);
    };
    let when = match opts.expire {
        Some(arg) => Some(expire_ms(ctx, arg, opts.flags, "getex")?),
        None => None,
    };
    let absolute = opts.flags & (OBJ_EXAT | OBJ_PXAT) != 0;
    match when {
        Some(at) if absolute && already_expired(ctx, at) => {
            ctx.db().remove(key);
            ctx.propagate(vec![Bytes::from_static(b"DEL"), key.clone()]);
            ctx.touch(key);
            ctx.add_dirty(1);
        }
        Some(at) => {
            ctx.db().set_expire(key, Some(at));
            // Always this form, PXAT included (observed on 7.0.15's replication stream).
            ctx.propagate(vec![
                Bytes::from_static(b"PEXPIREAT"),
                key.clone(),
                Bytes::from(at.to_string()),
            ]);
            ctx.touch(key);
            ctx.add_dirty(1);
        }
        None if opts.flags & OBJ_PERSIST != 0 => {
            let had = ctx.db().get(key).is_some_and(|e| e.expire_at().is_some());
            if had {
                ctx.db().set_expire(key, None);
                ctx.propagate(vec![Bytes::from_static(b"PERSIST"), key.clone()]);
                ctx.touch(key);
                ctx.add_dirty(1);
            }
        }
        None => {}
    }
    Ok(Reply::Bulk(val))
}

// ---------------------------------------------------------------------------------------------
// APPEND, STRLEN, GETRANGE, SETRANGE
// ---------------------------------------------------------------------------------------------

fn append(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let (key, add) = (&argv[1], &argv[2]);
    let cur_len = match ctx.lookup_write(key) {
        None => None,
        Some(e) => match &e.value {
            Value::Str(s) => Some(s.len()),
            _ => return Err(CmdError::WrongType),
        },
    };
    let total = match cur_len {
        None => {
            // A new key holds the argument as SET would (tryObjectEncoding).
            store(ctx, key, Str::from(&add[..]), StrRepr::Auto, Ttl::Keep);
            add.len()
        }
        Some(len) => {
            check_length(ctx, len as i64, add.len() as i64)?;
            let now_s = (ctx.now / 1000) as u32;
            let Some(e) = ctx.db().get_mut(key) else {
                return Err(CmdError::NoSuchKey);
            };
            let buf = grow_mut(&mut e.value);
            buf.extend_from_slice(add);
            let total = buf.len();
            e.repr = StrRepr::Raw;
            e.access = now_s;
            ctx.touch(key);
            total
        }
    };
    ctx.add_dirty(1);
    Ok(Reply::Int(total as i64))
}

fn strlen(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(
        read_str(ctx, &argv[1])?.map_or(0, |v| v.len() as i64),
    ))
}

fn getrange(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let mut start = int(&argv[2])?;
    let mut end = int(&argv[3])?;
    let Some(s) = read_str(ctx, &argv[1])? else {
        return Ok(Reply::bulk(""));
    };
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Ok(Reply::bulk(""));
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return Ok(Reply::bulk(""));
    }
    Ok(Reply::Bulk(s.slice(start as usize..=end as usize)))
}

fn setrange(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let (key, value) = (&argv[1], &argv[3]);
    let offset = int(&argv[2])?;
    if offset < 0 {
        return Err(CmdError::err("offset is out of range"));
    }
    let cur_len = match ctx.lookup_write(key) {
        None => None,
        Some(e) => match &e.value {
            Value::Str(s) => Some(s.len()),
            _ => return Err(CmdError::WrongType),
        },
    };
    if value.is_empty() {
        return Ok(Reply::Int(cur_len.unwrap_or(0) as i64));
    }
    check_length(ctx, offset, value.len() as i64)?;
    let offset = offset as usize;
    let end = offset + value.len();
    let now = ctx.now;
    let total = match cur_len {
        None => {
            let mut buf = vec![0; end];
            buf[offset..].copy_from_slice(value);
            let mut e = Entry::new(Value::Str(Str::from(buf)), now);
            e.repr = StrRepr::Raw;
            ctx.db().insert(key, e);
            end
        }
        Some(_) => {
            let Some(e) = ctx.db().get_mut(key) else {
                return Err(CmdError::NoSuchKey);
            };
            let buf = grow_mut(&mut e.value);
            if buf.len() < end {
                buf.resize(end, 0);
            }
            buf[offset..end].copy_from_slice(value);
            let total = buf.len();
            e.repr = StrRepr::Raw;
            e.access = (now / 1000) as u32;
            total
        }
    };
    ctx.touch(key);
    ctx.add_dirty(1);
    Ok(Reply::Int(total as i64))
}

// ---------------------------------------------------------------------------------------------
// INCR family, INCRBYFLOAT
// ---------------------------------------------------------------------------------------------

/// `incrDecrCommand`: the value must be a 64-bit integer and the result must not overflow;
/// the expiry is kept.
fn incr_generic(ctx: &mut Ctx<'_>, key: &Bytes, by: i64) -> CmdResult {
    let now_s = (ctx.now / 1000) as u32;
    let new = match ctx.lookup_write(key) {
        Some(e) => {
            let cur = match &e.value {
                Value::Str(s) => parse_i64(s).ok_or(CmdError::NotInteger)?,
                _ => return Err(CmdError::WrongType),
            };
            let new = cur.checked_add(by).ok_or(CmdError::Overflow)?;
            e.value = Value::Str(Str::from(new));
            e.repr = StrRepr::Auto;
            e.access = now_s;
            ctx.touch(key);
            new
        }
        None => {
            store(ctx, key, Str::from(by), StrRepr::Auto, Ttl::Keep);
            by
        }
    };
    ctx.add_dirty(1);
    Ok(Reply::Int(new))
}

fn incr(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    incr_generic(ctx, &argv[1], 1)
}

fn decr(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    incr_generic(ctx, &argv[1], -1)
}

fn incrby(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let by = int(&argv[2])?;
    incr_generic(ctx, &argv[1], by)
}

fn decrby(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let by = int(&argv[2])?;
    if by == i64::MIN {
        return Err(CmdError::err("decrement would overflow"));
    }
    incr_generic(ctx, &argv[1], -by)
}

fn incrbyfloat(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let key = &argv[1];
    let cur = match ctx.lookup_write(key) {
        None => Ld::from_i64(0),
        Some(e) => match &e.value {
            Value::Str(s) => Ld::parse(s).ok_or(CmdError::NotFloat)?,
            _ => return Err(CmdError::WrongType),
        },
    };
    let by = Ld::parse(&argv[2]).ok_or(CmdError::NotFloat)?;
    let sum = cur.sum(by);
    if sum.is_nan_or_inf() {
        return Err(CmdError::err("increment would produce NaN or Infinity"));
    }
    let val = Bytes::from(sum.to_human());
    store(ctx, key, Str::from(&val[..]), StrRepr::NoInt, Ttl::Keep);
    ctx.add_dirty(1);
    ctx.propagate(vec![
        Bytes::from_static(b"SET"),
        key.clone(),
        val.clone(),
        Bytes::from_static(b"KEEPTTL"),
    ]);
    Ok(Reply::Bulk(val))
}
