//! List commands (Redis 7.0 `t_list.c`), including the blocking pops.
//!
//! Argument checks follow Redis's order, since the first failing check decides the error
//! text: LRANGE/LTRIM/LREM parse their integers before looking the key up, LINDEX/LSET look
//! the key up first, LPOS parses every option first. A list that becomes empty is deleted.
//! Every push signals the key so clients blocked on it are served after the command
//! (`blocking::serve_ready`); blocking pops that find an element answer at once and are
//! propagated as their non-blocking forms.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::args::{int, is, own, range};
use super::blocking::BlockOp;
use super::exec::{BlockRequest, Ctx};
use super::ldouble::Ld;
use super::reply::{CmdError, CmdResult, Reply};
use super::table::flags::*;
use super::table::CommandSpec;
use crate::command;
use crate::resp::encode::{put_array_header, put_bulk};
use crate::store::{Db, Entry, List, Value};

/// List commands.
pub static COMMANDS: &[CommandSpec] = &[
    command!(
        "lpush",
        -3,
        WRITE | DENYOOM | FAST | RECORD_PER_VALUE,
        (1, 1, 1),
        "list",
        lpush
    ),
    command!(
        "rpush",
        -3,
        WRITE | DENYOOM | FAST | RECORD_PER_VALUE,
        (1, 1, 1),
        "list",
        rpush
    ),
    command!(
        "lpushx",
        -3,
        WRITE | DENYOOM | FAST | RECORD_PER_VALUE,
        (1, 1, 1),
        "list",
        lpushx
    ),
    command!(
        "rpushx",
        -3,
        WRITE | DENYOOM | FAST | RECORD_PER_VALUE,
        (1, 1, 1),
        "list",
        rpushx
    ),
    command!("lpop", -2, WRITE | FAST, (1, 1, 1), "list", lpop),
    command!("rpop", -2, WRITE | FAST, (1, 1, 1), "list", rpop),
    command!("llen", 2, READONLY | FAST, (1, 1, 1), "list", llen),
    command!("lrange", 4, READONLY, (1, 1, 1), "list", lrange),
    command!("lindex", 3, READONLY, (1, 1, 1), "list", lindex),
    command!("lset", 4, WRITE | DENYOOM, (1, 1, 1), "list", lset),
    command!("linsert", 5, WRITE | DENYOOM, (1, 1, 1), "list", linsert),
    command!("lrem", 4, WRITE, (1, 1, 1), "list", lrem),
    command!("ltrim", 4, WRITE, (1, 1, 1), "list", ltrim),
    command!("lpos", -3, READONLY, (1, 1, 1), "list", lpos),
    command!("lmove", 5, WRITE | DENYOOM, (1, 2, 1), "list", lmove),
    command!(
        "rpoplpush",
        3,
        WRITE | DENYOOM,
        (1, 2, 1),
        "list",
        rpoplpush
    ),
    command!("lmpop", -4, WRITE, (0, 0, 0), "list", lmpop),
    command!(
        "blpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        (1, -2, 1),
        "list",
        blpop
    ),
    command!(
        "brpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        (1, -2, 1),
        "list",
        brpop
    ),
    command!(
        "blmove",
        6,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING,
        (1, 2, 1),
        "list",
        blmove
    ),
    command!(
        "brpoplpush",
        4,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING,
        (1, 2, 1),
        "list",
        brpoplpush
    ),
    command!("blmpop", -5, WRITE | BLOCKING, (0, 0, 0), "list", blmpop),
];

/// Timeouts beyond this many milliseconds (about 31 years) wait forever; Redis's own
/// arithmetic overflows there.
const FOREVER_MS: i64 = 1_000_000_000_000;

// ---- PRIMITIVES SHARED WITH THE BLOCKED-CLIENT SERVICE ----

/// Returns the list at `key` for writing, if the key holds one.
fn list_in<'a>(db: &'a mut Db, key: &[u8]) -> Option<&'a mut List> {
    match &mut db.get_mut(key)?.value {
        Value::List(l) => Some(Arc::make_mut(l)),
        _ => None,
    }
}

/// Pops up to `count` elements from one end of the list at `key`, deleting the key when it
/// becomes empty (Redis `listElementsRemoved`).
pub(crate) fn pop_many(db: &mut Db, key: &[u8], left: bool, count: usize) -> Vec<Bytes> {
    let Some(l) = list_in(db, key) else {
        return Vec::new();
    };
    let n = count.min(l.len());
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let v = if left { l.pop_front() } else { l.pop_back() };
        match v {
            Some(v) => out.push(v),
            None => break,
        }
    }
    if l.is_empty() {
        db.remove(key);
    }
    out
}

/// Moves one element from `src` to `dst` (created when missing), the LMOVE core. The source
/// is deleted only if still empty after the push, so `LMOVE k k` on a one-element list keeps
/// the key (and its TTL). Callers have checked both keys' types.
pub(crate) fn move_element(
    db: &mut Db,
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
    now: i64,
) -> Option<Bytes> {
    let l = list_in(db, src)?;
    let v = if from_left {
        l.pop_front()
    } else {
        l.pop_back()
    }?;
    if db.get(dst).is_none() {
        db.insert(
            Bytes::copy_from_slice(dst),
            Entry::new(Value::List(Arc::new(List::new())), now),
        );
    }
    if let Some(d) = list_in(db, dst) {
        if to_left {
            d.push_front(&v);
        } else {
            d.push_back(&v);
        }
    }
    if list_in(db, src).is_some_and(|l| l.is_empty()) {
        db.remove(src);
    }
    Some(v)
}

/// What a pop must restore if it is undone: the source key's expiry and access time, lost
/// when the pop emptied and deleted the key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyMeta {
    expire_at: Option<i64>,
    access: u32,
}

/// Returns the metadata of `key`, to undo a pop or move from it ([`unpop`], [`unmove`]).
pub(crate) fn key_meta(db: &Db, key: &[u8]) -> Option<KeyMeta> {
    db.get(key).map(|e| KeyMeta {
        expire_at: e.expire_at(),
        access: e.access,
    })
}

/// Undoes [`pop_many`]: puts `vals` (in the order they were popped) back at the end they
/// came from, recreating the key with its old expiry and access time if the pop deleted it.
pub(crate) fn unpop(db: &mut Db, key: &[u8], left: bool, vals: &[Bytes], meta: KeyMeta) {
    if db.get(key).is_none() {
        let mut e = Entry::new(Value::List(Arc::new(List::new())), 0);
        e.access = meta.access;
        db.insert(key, e);
        db.set_expire(key, meta.expire_at);
    }
    if let Some(l) = list_in(db, key) {
        for v in vals.iter().rev() {
            if left {
                l.push_front(v);
            } else {
                l.push_back(v);
            }
        }
    }
}

/// Undoes [`move_element`]: takes the element back from `dst` (deleting `dst` if that empties
/// it, as it then did not exist before) and returns it to `src` (see [`unpop`]).
pub(crate) fn unmove(
    db: &mut Db,
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
    meta: KeyMeta,
) {
    let Some(l) = list_in(db, dst) else {
        return;
    };
    let v = if to_left { l.pop_front() } else { l.pop_back() };
    if l.is_empty() {
        db.remove(dst);
    }
    if let Some(v) = v {
        unpop(db, src, from_left, &[v], meta);
    }
}

/// Returns Redis's name for a list end, as LMOVE is propagated.
pub(crate) fn side_name(left: bool) -> Bytes {
    Bytes::from_static(if left { b"LEFT" } else { b"RIGHT" })
}

// ---- LOOKUPS AND PARSING ----

/// Looks a list up for reading: `Ok(None)` when missing, WRONGTYPE for another type.
fn read_list<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a List>, CmdError> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::List(l) => Ok(Some(l)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// Looks a list up for writing: `Ok(None)` when missing, WRONGTYPE for another type.
fn write_list<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a mut List>, CmdError> {
    match ctx.lookup_write(key) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::List(l) => Ok(Some(Arc::make_mut(l))),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// Reports whether `key` holds a list (or nothing); WRONGTYPE otherwise. Expired keys are
/// deleted on the way, as `lookupKeyWrite` does.
fn check_list_or_missing(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<bool, CmdError> {
    Ok(write_list(ctx, key)?.is_some())
}

/// Parses `LEFT`/`RIGHT` (Redis `getListPositionFromObjectOrReply`).
fn parse_side(arg: &[u8]) -> Result<bool, CmdError> {
    if is(arg, "left") {
        Ok(true)
    } else if is(arg, "right") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Parses a non-negative count (Redis `getPositiveLongFromObjectOrReply`): `msg` is the
/// error for both a non-integer and a negative value.
fn parse_positive(arg: &[u8], msg: &str) -> Result<i64, CmdError> {
    match int(arg) {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(CmdError::err(msg)),
    }
}

/// Parses a value in `min..=max`, with Redis's `getRangeLongFromObjectOrReply` errors.
fn parse_range(arg: &[u8], min: i64, max: i64, msg: Option<&str>) -> Result<i64, CmdError> {
    let n = match int(arg) {
        Ok(n) => n,
        Err(e) => return Err(msg.map_or(e, CmdError::err)),
    };
    if n < min || n > max {
        return Err(match msg {
            Some(m) => CmdError::err(m),
            None => CmdError::err(format!(
                "value is out of range, value must between {min} and {max}"
            )),
        });
    }
    Ok(n)
}

/// Parses a blocking timeout in seconds (`getTimeoutFromObjectOrReply`: `ceill(x * 1000)`
/// milliseconds as a `long long`); `None` waits forever.
fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, CmdError> {
    let v =
        Ld::parse(arg).ok_or_else(|| CmdError::err("timeout is not a float or out of range"))?;
    let ms = v.mul_small(1000).ceil_to_i64();
    if ms < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    Ok((ms > 0 && ms < FOREVER_MS).then(|| Duration::from_millis(ms as u64)))
}

/// Encodes an array of bulks once, as the bytes both RESP versions share, avoiding one
/// reply object per element (LRANGE of hundreds of elements is a benchmark staple).
fn bulk_array<'a>(n: usize, items: impl Iterator<Item = &'a [u8]>) -> Reply {
    let mut out = BytesMut::with_capacity(16 + n * 16);
    put_array_header(&mut out, n);
    for v in items {
        put_bulk(&mut out, v);
    }
    Reply::Raw(out.freeze())
}

// ---- PUSH ----

fn push_generic(ctx: &mut Ctx<'_>, argv: &[Bytes], left: bool, only_existing: bool) -> CmdResult {
    let key = &argv[1];
    let push_all = |l: &mut List| {
        for v in &argv[2..] {
            if left {
                l.push_front(v);
            } else {
                l.push_back(v);
            }
        }
        l.len() as i64
    };
    let len = match write_list(ctx, key)? {
        Some(l) => push_all(l),
        None if only_existing => return Ok(Reply::Int(0)),
        None => {
            let mut l = List::new();
            let len = push_all(&mut l);
            let now = ctx.now;
            ctx.db()
                .insert(key, Entry::new(Value::List(Arc::new(l)), now));
            len
        }
    };
    ctx.touch(key);
    ctx.add_dirty((argv.len() - 2) as u64);
    ctx.signal_ready(key);
    Ok(Reply::Int(len))
}

fn lpush(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    push_generic(ctx, argv, true, false)
}

fn rpush(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    push_generic(ctx, argv, false, false)
}

fn lpushx(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    push_generic(ctx, argv, true, true)
}

fn rpushx(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    push_generic(ctx, argv, false, true)
}

// ---- POP ----

fn pop_generic(ctx: &mut Ctx<'_>, argv: &[Bytes], left: bool, name: &str) -> CmdResult {
    if argv.len() > 3 {
        return Err(CmdError::Arity(name.into()));
    }
    let count = match argv.get(2) {
        Some(a) => Some(parse_positive(
            a,
            "value is out of range, must be positive",
        )?),
        None => None,
    };
    let key = &argv[1];
    let Some(l) = write_list(ctx, key)? else {
        return Ok(if count.is_some() {
            Reply::NilArray
        } else {
            Reply::Nil
        });
    };
    let pop = |l: &mut List| if left { l.pop_front() } else { l.pop_back() };
    let (reply, n) = match count {
        Some(0) => return Ok(Reply::Array(Vec::new())),
        None => (Reply::opt_bulk(pop(l)), 1),
        Some(n) => {
            let n = (n as u64).min(l.len() as u64) as usize;
            (Reply::bulks((0..n).filter_map(|_| pop(l))), n)
        }
    };
    if l.is_empty() {
        ctx.db().remove(key);
    }
    ctx.touch(key);
    ctx.add_dirty(n as u64);
    Ok(reply)
}

fn lpop(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    pop_generic(ctx, argv, true, "lpop")
}

fn rpop(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    pop_generic(ctx, argv, false, "rpop")
}

// ---- READS ----

fn llen(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(
        read_list(ctx, &argv[1])?.map_or(0, |l| l.len() as i64),
    ))
}

fn lrange(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let start = int(&argv[2])?;
    let end = int(&argv[3])?;
    let Some(l) = read_list(ctx, &argv[1])? else {
        return Ok(Reply::Array(Vec::new()));
    };
    Ok(match range(start, end, l.len()) {
        None => Reply::Array(Vec::new()),
        Some((s, e)) => bulk_array(e - s + 1, l.range(s, e)),
    })
}

/// Resolves a possibly negative index against `len`.
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let i = if index < 0 { len as i64 + index } else { index };
    (i >= 0 && (i as u64) < len as u64).then_some(i as usize)
}

fn lindex(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let Some(l) = read_list(ctx, &argv[1])? else {
        return Ok(Reply::Nil);
    };
    let index = int(&argv[2])?;
    Ok(resolve_index(index, l.len())
        .and_then(|i| l.get(i))
        .map_or(Reply::Nil, Reply::bulk))
}

fn lpos(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let mut rank: i64 = 1;
    let mut count: Option<i64> = None;
    let mut maxlen: i64 = 0;
    let mut j = 3;
    while j < argv.len() {
        let more = j + 1 < argv.len();
        if is(&argv[j], "rank") && more {
            j += 1;
            rank = int(&argv[j])?;
            if rank == 0 {
                return Err(CmdError::err(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if is(&argv[j], "count") && more {
            j += 1;
            count = Some(parse_positive(&argv[j], "COUNT can't be negative")?);
        } else if is(&argv[j], "maxlen") && more {
            j += 1;
            maxlen = parse_positive(&argv[j], "MAXLEN can't be negative")?;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let Some(l) = read_list(ctx, &argv[1])? else {
        return Ok(if count.is_some() {
            Reply::Array(Vec::new())
        } else {
            Reply::Nil
        });
    };
    let ele = argv[2].as_ref();
    let want = match count {
        None => 1,
        Some(0) => u64::MAX,
        Some(c) => c as u64,
    };
    let from_tail = rank < 0;
    // Redis negates the rank in a `long`: LONG_MIN stays negative, so every match counts
    // and COUNT never stops the scan.
    let (rank, want) = if rank == i64::MIN {
        (1, if count.is_some() { u64::MAX } else { 1 })
    } else {
        (rank.unsigned_abs(), want)
    };
    let len = l.len();
    let limit = if maxlen == 0 {
        len
    } else {
        (maxlen as usize).min(len)
    };
    let mut found = Vec::new();
    let mut matches: u64 = 0;
    let iter: Box<dyn Iterator<Item = &[u8]>> = if from_tail {
        Box::new(l.iter().rev())
    } else {
        Box::new(l.iter())
    };
    for (index, v) in iter.take(limit).enumerate() {
        if v == ele {
            matches += 1;
            if matches >= rank {
                found.push(if from_tail { len - 1 - index } else { index } as i64);
                if found.len() as u64 >= want {
                    break;
                }
            }
        }
    }
    Ok(match count {
        Some(_) => Reply::Array(found.into_iter().map(Reply::Int).collect()),
        None => found.first().map_or(Reply::Nil, |i| Reply::Int(*i)),
    })
}

// ---- IN-PLACE WRITES ----

fn lset(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let Some(l) = write_list(ctx, &argv[1])? else {
        return Err(CmdError::NoSuchKey);
    };
    let index = int(&argv[2])?;
    let Some(i) = resolve_index(index, l.len()) else {
        return Err(CmdError::IndexOutOfRange);
    };
    l.set(i, &argv[3]);
    ctx.touch(&argv[1]);
    ctx.add_dirty(1);
    Ok(Reply::Ok)
}

fn linsert(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let after = if is(&argv[2], "after") {
        true
    } else if is(&argv[2], "before") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let Some(l) = write_list(ctx, &argv[1])? else {
        return Ok(Reply::Int(0));
    };
    let pivot = argv[3].as_ref();
    let Some(at) = l.iter().position(|v| v == pivot) else {
        return Ok(Reply::Int(-1));
    };
    l.insert(if after { at + 1 } else { at }, &argv[4]);
    let len = l.len() as i64;
    ctx.touch(&argv[1]);
    ctx.add_dirty(1);
    Ok(Reply::Int(len))
}

fn lrem(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let count = int(&argv[2])?;
    let Some(l) = write_list(ctx, &argv[1])? else {
        return Ok(Reply::Int(0));
    };
    let limit = if count == 0 {
        usize::MAX
    } else {
        usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX)
    };
    let removed = l.remove_eq(&argv[3], limit, count < 0);
    let empty = l.is_empty();
    if empty {
        ctx.db().remove(&argv[1]);
    }
    if removed > 0 {
        ctx.touch(&argv[1]);
        ctx.add_dirty(removed as u64);
    }
    Ok(Reply::Int(removed as i64))
}

fn ltrim(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let start = int(&argv[2])?;
    let end = int(&argv[3])?;
    let Some(l) = write_list(ctx, &argv[1])? else {
        return Ok(Reply::Ok);
    };
    let before = l.len();
    match range(start, end, before) {
        None => *l = List::new(),
        Some((s, e)) => l.trim(s, e),
    }
    let removed = before - l.len();
    if l.is_empty() {
        ctx.db().remove(&argv[1]);
    }
    // Redis signals the key even when nothing was trimmed.
    ctx.touch(&argv[1]);
    ctx.add_dirty(removed as u64);
    Ok(Reply::Ok)
}

// ---- MOVE ----

/// LMOVE on a source known to hold a list: checks the destination, moves, signals.
fn lmove_generic(
    ctx: &mut Ctx<'_>,
    src: &Bytes,
    dst: &Bytes,
    from_left: bool,
    to_left: bool,
) -> CmdResult {
    if !check_list_or_missing(ctx, src)? {
        return Ok(Reply::Nil);
    }
    check_list_or_missing(ctx, dst)?;
    let now = ctx.now;
    let Some(v) = move_element(ctx.db(), src, dst, from_left, to_left, now) else {
        return Ok(Reply::Nil);
    };
    ctx.touch(dst);
    ctx.signal_ready(dst);
    ctx.touch(src);
    ctx.add_dirty(1);
    Ok(Reply::Bulk(v))
}

fn lmove(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let from_left = parse_side(&argv[3])?;
    let to_left = parse_side(&argv[4])?;
    lmove_generic(ctx, &argv[1], &argv[2], from_left, to_left)
}

fn rpoplpush(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    lmove_generic(ctx, &argv[1], &argv[2], false, true)
}

// ---- MPOP ----

/// Parsed `numkeys key… LEFT|RIGHT [COUNT n]`.
struct MPopArgs<'a> {
    keys: &'a [Bytes],
    left: bool,
    count: usize,
}

/// Parses LMPOP/BLMPOP arguments from `numkeys_idx` (Redis `lmpopGenericCommand`).
fn parse_mpop(argv: &[Bytes], numkeys_idx: usize) -> Result<MPopArgs<'_>, CmdError> {
    let numkeys = parse_range(
        &argv[numkeys_idx],
        1,
        i64::MAX,
        Some("numkeys should be greater than 0"),
    )?;
    let where_idx = (numkeys as u64)
        .checked_add(numkeys_idx as u64 + 1)
        .filter(|w| *w < argv.len() as u64)
        .ok_or(CmdError::Syntax)? as usize;
    let left = parse_side(&argv[where_idx])?;
    let mut count: Option<i64> = None;
    let mut j = where_idx + 1;
    while j < argv.len() {
        if count.is_none() && is(&argv[j], "count") && j + 1 < argv.len() {
            j += 1;
            count = Some(parse_range(
                &argv[j],
                1,
                i64::MAX,
                Some("count should be greater than 0"),
            )?);
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(MPopArgs {
        keys: &argv[numkeys_idx + 1..where_idx],
        left,
        count: usize::try_from(count.unwrap_or(1)).unwrap_or(usize::MAX),
    })
}

/// Pops from the first non-empty list of `keys`; `None` when all are empty. Propagated as
/// `LPOP|RPOP key n`.
fn mpop_now(
    ctx: &mut Ctx<'_>,
    keys: &[Bytes],
    left: bool,
    count: usize,
) -> Result<Option<Reply>, CmdError> {
    for key in keys {
        let len = match write_list(ctx, key)? {
            Some(l) if !l.is_empty() => l.len(),
            _ => continue,
        };
        let vals = pop_many(ctx.db(), key, left, count);
        ctx.touch(key);
        ctx.add_dirty(vals.len() as u64);
        let cmd: &'static [u8] = if left { b"LPOP" } else { b"RPOP" };
        ctx.propagate(vec![
            Bytes::from_static(cmd),
            own(key),
            Bytes::from(count.min(len).to_string()),
        ]);
        return Ok(Some(Reply::Array(vec![
            Reply::Bulk(own(key)),
            Reply::bulks(vals),
        ])));
    }
    Ok(None)
}

fn lmpop(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let a = parse_mpop(argv, 1)?;
    Ok(mpop_now(ctx, a.keys, a.left, a.count)?.unwrap_or(Reply::NilArray))
}

// ---- BLOCKING ----

/// Registers the client as blocked on `keys`; the connection awaits the reply.
fn block(
    ctx: &mut Ctx<'_>,
    keys: &[Bytes],
    op: BlockOp,
    timeout: Option<Duration>,
    timeout_reply: Reply,
) -> CmdResult {
    let db = ctx.dbi();
    let keys = keys.iter().map(own).collect();
    let (waiter, rx) = ctx
        .st
        .blocked
        .block(ctx.sess.id, db, keys, op, timeout.is_some());
    ctx.block = Some(BlockRequest {
        rx,
        waiter,
        timeout,
        timeout_reply,
        acks: None,
    });
    Ok(Reply::NoReply)
}

fn bpop_generic(ctx: &mut Ctx<'_>, argv: &[Bytes], left: bool) -> CmdResult {
    let timeout = parse_timeout(&argv[argv.len() - 1])?;
    let keys = &argv[1..argv.len() - 1];
    for key in keys {
        match write_list(ctx, key)? {
            Some(l) if !l.is_empty() => {}
            _ => continue,
        }
        let v = pop_many(ctx.db(), key, left, 1);
        let Some(v) = v.into_iter().next() else {
            continue;
        };
        ctx.touch(key);
        ctx.add_dirty(1);
        let cmd: &'static [u8] = if left { b"LPOP" } else { b"RPOP" };
        ctx.propagate(vec![Bytes::from_static(cmd), own(key)]);
        return Ok(Reply::Array(vec![Reply::Bulk(own(key)), Reply::Bulk(v)]));
    }
    // Inside MULTI (or from a non-client door) a blocking pop answers as on timeout.
    if !ctx.may_block {
        return Ok(Reply::NilArray);
    }
    block(ctx, keys, BlockOp::Pop { left }, timeout, Reply::NilArray)
}

fn blpop(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    bpop_generic(ctx, argv, true)
}

fn brpop(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    bpop_generic(ctx, argv, false)
}

/// BLMOVE/BRPOPLPUSH after argument parsing (Redis `blmoveGenericCommand`).
fn blmove_generic(
    ctx: &mut Ctx<'_>,
    argv: &[Bytes],
    from_left: bool,
    to_left: bool,
    timeout: Option<Duration>,
    rpoplpush: bool,
) -> CmdResult {
    let (src, dst) = (&argv[1], &argv[2]);
    let src_ready = matches!(write_list(ctx, src)?, Some(l) if !l.is_empty());
    if src_ready {
        let reply = lmove_generic(ctx, src, dst, from_left, to_left)?;
        if ctx.dirty > 0 {
            // Served at once: logged as the non-blocking form, sides as the client wrote them.
            let argv = if rpoplpush {
                vec![Bytes::from_static(b"RPOPLPUSH"), own(src), own(dst)]
            } else {
                vec![
                    Bytes::from_static(b"LMOVE"),
                    own(src),
                    own(dst),
                    own(&argv[3]),
                    own(&argv[4]),
                ]
            };
            ctx.propagate(argv);
        }
        return Ok(reply);
    }
    if !ctx.may_block {
        return Ok(Reply::Nil);
    }
    let op = BlockOp::Move {
        dst: own(dst),
        from_left,
        to_left,
        rpoplpush,
    };
    // A timed-out BLMOVE answers a null array, like every list block (`blocked.c`).
    block(ctx, std::slice::from_ref(src), op, timeout, Reply::NilArray)
}

fn blmove(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let from_left = parse_side(&argv[3])?;
    let to_left = parse_side(&argv[4])?;
    let timeout = parse_timeout(&argv[5])?;
    blmove_generic(ctx, argv, from_left, to_left, timeout, false)
}

fn brpoplpush(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let timeout = parse_timeout(&argv[3])?;
    blmove_generic(ctx, argv, false, true, timeout, true)
}

fn blmpop(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let a = parse_mpop(argv, 2)?;
    let timeout = parse_timeout(&argv[1])?;
    if let Some(r) = mpop_now(ctx, a.keys, a.left, a.count)? {
        return Ok(r);
    }
    if !ctx.may_block {
        return Ok(Reply::NilArray);
    }
    let op = BlockOp::MPop {
        left: a.left,
        count: a.count,
    };
    block(ctx, a.keys, op, timeout, Reply::NilArray)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_like_redis() {
        assert_eq!(parse_timeout(b"0"), Ok(None));
        assert_eq!(parse_timeout(b"-0.0001"), Ok(None));
        assert_eq!(parse_timeout(b"0.1"), Ok(Some(Duration::from_millis(100))));
        assert_eq!(parse_timeout(b"1e-20"), Ok(Some(Duration::from_millis(1))));
        assert_eq!(parse_timeout(b"9.2e15"), Ok(None));
        let neg = Err(CmdError::err("timeout is negative"));
        assert_eq!(parse_timeout(b"-1"), neg);
        assert_eq!(parse_timeout(b"inf"), neg);
        assert_eq!(parse_timeout(b"1e300"), neg);
        let bad = Err(CmdError::err("timeout is not a float or out of range"));
        assert_eq!(parse_timeout(b"nan"), bad);
        assert_eq!(parse_timeout(b" 1"), bad);
        assert_eq!(parse_timeout(b""), bad);
    }

    #[test]
    fn mpop_arguments() {
        let argv: Vec<Bytes> = ["lmpop", "2", "a", "b", "left", "count", "3"]
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect();
        let a = parse_mpop(&argv, 1).unwrap();
        assert_eq!(a.keys.len(), 2);
        assert!(a.left);
        assert_eq!(a.count, 3);
        let huge: Vec<Bytes> = ["lmpop", "9223372036854775807", "a", "left"]
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect();
        assert!(matches!(parse_mpop(&huge, 1), Err(CmdError::Syntax)));
    }
}
