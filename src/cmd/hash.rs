//! Hash commands (Redis 7.0 `t_hash.c`, and `db.c` `scanGenericCommand` for HSCAN).
//!
//! Argument checks happen in Redis's order (which error wins matters for byte-exact
//! replies): HINCRBY parses its increment before looking the key up, HSCAN parses its
//! cursor before the key and its options after, HRANDFIELD validates the count first.

use std::sync::Arc;

use bytes::Bytes;
use rand::Rng;

use super::args::{int, is, own};
use super::exec::Ctx;
use super::glob::glob_match;
use super::ldouble::Ld;
use super::reply::{CmdError, CmdResult, Reply};
use super::table::flags::*;
use super::table::CommandSpec;
use crate::command;
use crate::resp::Protocol;
use crate::store::hash::Limits;
use crate::store::{Entry, Hash, Value};

/// Hash commands.
pub static COMMANDS: &[CommandSpec] = &[
    command!(
        "hset",
        -4,
        WRITE | DENYOOM | FAST | RECORD_ONE,
        (1, 1, 1),
        "hash",
        hset
    ),
    command!(
        "hmset",
        -4,
        WRITE | DENYOOM | FAST | RECORD_ONE,
        (1, 1, 1),
        "hash",
        hmset
    ),
    command!(
        "hsetnx",
        4,
        WRITE | DENYOOM | FAST | RECORD_ONE,
        (1, 1, 1),
        "hash",
        hsetnx
    ),
    command!("hget", 3, READONLY | FAST, (1, 1, 1), "hash", hget),
    command!("hmget", -3, READONLY | FAST, (1, 1, 1), "hash", hmget),
    command!("hgetall", 2, READONLY, (1, 1, 1), "hash", hgetall),
    command!("hkeys", 2, READONLY, (1, 1, 1), "hash", hkeys),
    command!("hvals", 2, READONLY, (1, 1, 1), "hash", hvals),
    command!("hdel", -3, WRITE | FAST, (1, 1, 1), "hash", hdel),
    command!("hlen", 2, READONLY | FAST, (1, 1, 1), "hash", hlen),
    command!("hexists", 3, READONLY | FAST, (1, 1, 1), "hash", hexists),
    command!("hstrlen", 3, READONLY | FAST, (1, 1, 1), "hash", hstrlen),
    command!(
        "hincrby",
        4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "hash",
        hincrby
    ),
    command!(
        "hincrbyfloat",
        4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "hash",
        hincrbyfloat
    ),
    command!("hscan", -3, READONLY, (1, 1, 1), "hash", hscan),
    command!("hrandfield", -2, READONLY, (1, 1, 1), "hash", hrandfield),
];

/// Most elements one HRANDFIELD reply may hold: Redis would stream any count until the
/// client's output limit closes it; kura refuses counts that could exhaust memory instead.
const HRANDFIELD_MAX: u64 = 1 << 24;

// ---- LOOKUPS ----

/// The listpack limits from the live configuration.
fn limits(ctx: &Ctx<'_>) -> Limits {
    ctx.srv.with_config(|c| Limits {
        entries: c.hash_max_listpack_entries as usize,
        value: c.hash_max_listpack_value as usize,
    })
}

/// Looks a hash up for reading: `Ok(None)` when missing, WRONGTYPE for another type.
fn read_hash<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a Hash>, CmdError> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Hash(h) => Ok(Some(h)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// Looks a hash up for reading and returns a shared handle to it, so the caller may use
/// the rest of the context (the random generator) while holding it.
fn read_hash_arc(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Arc<Hash>>, CmdError> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Hash(h) => Ok(Some(h.clone())),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// Looks a hash up for writing: `Ok(None)` when missing, WRONGTYPE for another type.
fn write_hash<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a mut Hash>, CmdError> {
    match ctx.lookup_write(key) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Hash(h) => Ok(Some(Arc::make_mut(h))),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// Runs `f` on the hash at `key`, or on a new hash stored at `key` when `f` succeeds (Redis
/// `hashTypeLookupWriteOrCreate`; every caller then adds a field, so no empty hash stays).
fn with_hash<T>(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    f: impl FnOnce(&mut Hash) -> Result<T, CmdError>,
) -> Result<T, CmdError> {
    if let Some(h) = write_hash(ctx, key)? {
        return f(h);
    }
    let mut h = Hash::new();
    let out = f(&mut h)?;
    let now = ctx.now;
    ctx.db()
        .insert(key, Entry::new(Value::Hash(Arc::new(h)), now));
    Ok(out)
}

// ---- SETTERS ----

fn hset_generic(ctx: &mut Ctx<'_>, argv: &[Bytes], name: &str) -> Result<i64, CmdError> {
    if argv.len() % 2 == 1 {
        return Err(CmdError::Arity(name.into()));
    }
    let lim = limits(ctx);
    let created = with_hash(ctx, &argv[1], |h| {
        h.try_conversion(argv[2..].iter().map(|a| a.as_ref()), lim);
        Ok(h.set_pairs(&argv[2..], lim) as i64)
    })?;
    ctx.touch(&argv[1]);
    ctx.add_dirty(((argv.len() - 2) / 2) as u64);
    Ok(created)
}

fn hset(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    hset_generic(ctx, argv, "hset").map(Reply::Int)
}

fn hmset(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    hset_generic(ctx, argv, "hmset").map(|_| Reply::Ok)
}

fn hsetnx(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let lim = limits(ctx);
    let set = with_hash(ctx, &argv[1], |h| {
        if h.get(&argv[2]).is_some() {
            return Ok(false);
        }
        h.try_conversion([argv[2].as_ref(), argv[3].as_ref()], lim);
        h.set_with(&argv[2], &argv[3], lim);
        Ok(true)
    })?;
    if set {
        ctx.touch(&argv[1]);
        ctx.add_dirty(1);
    }
    Ok(Reply::Int(set as i64))
}

fn hincrby(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let incr = int(&argv[3])?;
    let lim = limits(ctx);
    let new = with_hash(ctx, &argv[1], |h| {
        let old = match h.get(&argv[2]) {
            None => 0,
            Some(v) => crate::resp::decode::parse_i64(v).ok_or(CmdError::HashNotInteger)?,
        };
        let new = old.checked_add(incr).ok_or(CmdError::Overflow)?;
        h.set_with(&argv[2], new.to_string().as_bytes(), lim);
        Ok(new)
    })?;
    ctx.touch(&argv[1]);
    ctx.add_dirty(1);
    Ok(Reply::Int(new))
}

fn hincrbyfloat(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let incr = Ld::parse(&argv[3]).ok_or(CmdError::NotFloat)?;
    if incr.is_nan_or_inf() {
        return Err(CmdError::err("value is NaN or Infinity"));
    }
    let lim = limits(ctx);
    let text = with_hash(ctx, &argv[1], |h| {
        let old = match h.get(&argv[2]) {
            None => Ld::Zero(false),
            Some(v) => Ld::parse(v).ok_or(CmdError::HashNotFloat)?,
        };
        let sum = old.sum(incr);
        if sum.is_nan_or_inf() {
            return Err(CmdError::err("increment would produce NaN or Infinity"));
        }
        let text = Bytes::from(sum.to_human());
        h.set_with(&argv[2], &text, lim);
        Ok(text)
    })?;
    ctx.touch(&argv[1]);
    ctx.add_dirty(1);
    // Replicated as HSET with the final value, so float formatting never diverges.
    ctx.propagate(vec![
        Bytes::from_static(b"HSET"),
        own(&argv[1]),
        own(&argv[2]),
        text.clone(),
    ]);
    Ok(Reply::Bulk(text))
}

fn hdel(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let Some(h) = write_hash(ctx, &argv[1])? else {
        return Ok(Reply::Int(0));
    };
    let mut deleted = 0;
    let mut emptied = false;
    for f in &argv[2..] {
        if h.remove(f) {
            deleted += 1;
            if h.is_empty() {
                emptied = true;
                break;
            }
        }
    }
    if emptied {
        ctx.db().remove(&argv[1]);
    }
    if deleted > 0 {
        ctx.touch(&argv[1]);
        ctx.add_dirty(deleted as u64);
    }
    Ok(Reply::Int(deleted))
}

// ---- GETTERS ----

fn hget(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    Ok(match read_hash(ctx, &argv[1])? {
        None => Reply::Nil,
        Some(h) => h.get(&argv[2]).map_or(Reply::Nil, Reply::bulk),
    })
}

fn hmget(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let h = read_hash(ctx, &argv[1])?;
    Ok(Reply::Array(
        argv[2..]
            .iter()
            .map(|f| h.and_then(|h| h.get(f)).map_or(Reply::Nil, Reply::bulk))
            .collect(),
    ))
}

fn hgetall(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    Ok(match read_hash(ctx, &argv[1])? {
        None => Reply::Map(Vec::new()),
        Some(h) => Reply::Map(
            h.iter()
                .map(|(k, v)| (Reply::bulk(k), Reply::bulk(v)))
                .collect(),
        ),
    })
}

fn hkeys(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    Ok(match read_hash(ctx, &argv[1])? {
        None => Reply::Array(Vec::new()),
        Some(h) => Reply::Array(h.iter().map(|(k, _)| Reply::bulk(k)).collect()),
    })
}

fn hvals(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    Ok(match read_hash(ctx, &argv[1])? {
        None => Reply::Array(Vec::new()),
        Some(h) => Reply::Array(h.iter().map(|(_, v)| Reply::bulk(v)).collect()),
    })
}

fn hlen(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(
        read_hash(ctx, &argv[1])?.map_or(0, |h| h.len() as i64),
    ))
}

fn hexists(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let found = read_hash(ctx, &argv[1])?.is_some_and(|h| h.get(&argv[2]).is_some());
    Ok(Reply::Int(found as i64))
}

fn hstrlen(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let n = read_hash(ctx, &argv[1])?
        .and_then(|h| h.get(&argv[2]))
        .map_or(0, |v| v.len() as i64);
    Ok(Reply::Int(n))
}

// ---- HSCAN ----

fn hscan(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let cursor =
        super::keys::parse_cursor(&argv[2]).ok_or_else(|| CmdError::err("invalid cursor"))?;
    let empty = || Reply::Array(vec![Reply::bulk("0"), Reply::Array(Vec::new())]);
    let Some(h) = read_hash(ctx, &argv[1])? else {
        return Ok(empty());
    };
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < argv.len() {
        let more = argv.len() - i >= 2;
        if is(&argv[i], "count") && more {
            count = int(&argv[i + 1])?;
            if count < 1 {
                return Err(CmdError::Syntax);
            }
        } else if is(&argv[i], "match") && more {
            let p = argv[i + 1].as_ref();
            pattern = (p != b"*").then_some(p);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let mut items = Vec::new();
    let mut emit = |f: &[u8], v: &[u8]| {
        if pattern.is_none_or(|p| glob_match(p, f, false)) {
            items.push(Reply::bulk(f));
            items.push(Reply::bulk(v));
        }
    };
    let next = if h.is_listpack() {
        // A listpack hash comes back whole with cursor 0, as Redis does.
        for (f, v) in h.iter() {
            emit(f, v);
        }
        0
    } else {
        // A hashtable is walked from its last position down, `count` fields per call: a
        // removal moves the last field into the hole, and that field was already visited,
        // so every field present for the whole scan is returned at least once. The cursor
        // is the position bound plus one (0 starts a scan).
        let mut bound = if cursor == 0 {
            h.len()
        } else {
            usize::try_from(cursor - 1)
                .unwrap_or(usize::MAX)
                .min(h.len())
        };
        let mut seen = 0;
        let h = h.indexed();
        while bound > 0 && seen < count as usize {
            bound -= 1;
            if let Some((f, v)) = h.get(bound) {
                emit(f, v);
            }
            seen += 1;
        }
        if bound > 0 {
            bound as u64 + 1
        } else {
            0
        }
    };
    Ok(Reply::Array(vec![
        Reply::Bulk(Bytes::from(next.to_string())),
        Reply::Array(items),
    ]))
}

// ---- HRANDFIELD ----

fn hrandfield(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    if argv.len() >= 3 {
        let l = int(&argv[2])?;
        if l == i64::MIN {
            return Err(CmdError::err(format!(
                "value is out of range, value must between {} and {}",
                -i64::MAX,
                i64::MAX
            )));
        }
        let withvalues = argv.len() == 4;
        if argv.len() > 4 || (withvalues && !is(&argv[3], "withvalues")) {
            return Err(CmdError::Syntax);
        }
        if withvalues && !(-i64::MAX / 2..=i64::MAX / 2).contains(&l) {
            return Err(CmdError::err("value is out of range"));
        }
        return hrandfield_count(ctx, &argv[1], l, withvalues);
    }
    let Some(h) = read_hash_arc(ctx, &argv[1])? else {
        return Ok(Reply::Nil);
    };
    let i = ctx.st.rng.gen_range(0..h.len().max(1));
    Ok(h.get_index(i).map_or(Reply::Nil, |(f, _)| Reply::bulk(f)))
}

fn hrandfield_count(ctx: &mut Ctx<'_>, key: &[u8], l: i64, withvalues: bool) -> CmdResult {
    let resp3 = ctx.sess.proto == Protocol::Resp3;
    let Some(h) = read_hash_arc(ctx, key)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    // Positions answer in constant time, however many samples are drawn.
    let listpack = h.is_listpack();
    let h = h.indexed();
    let size = h.len();
    let (count, uniq) = (l.unsigned_abs(), l >= 0);
    if count == 0 || size == 0 {
        return Ok(Reply::Array(Vec::new()));
    }
    let pick = |i: usize, out: &mut Vec<Reply>| {
        if let Some((f, v)) = h.get(i) {
            if withvalues && resp3 {
                out.push(Reply::Array(vec![Reply::bulk(f), Reply::bulk(v)]));
            } else {
                out.push(Reply::bulk(f));
                if withvalues {
                    out.push(Reply::bulk(v));
                }
            }
        }
    };
    let mut out = Vec::new();
    if !uniq || count == 1 {
        // Case 1: sampling with repetition, in random order.
        if count > HRANDFIELD_MAX {
            return Err(CmdError::err("value is out of range"));
        }
        for _ in 0..count {
            let i = ctx.st.rng.gen_range(0..size);
            pick(i, &mut out);
        }
    } else if count as usize >= size {
        // Case 2: the whole hash, in its own order.
        for i in 0..size {
            pick(i, &mut out);
        }
    } else {
        // Cases 2.5–4: distinct fields; a listpack answers in its own order.
        let mut idx = rand::seq::index::sample(&mut ctx.st.rng, size, count as usize).into_vec();
        if listpack {
            idx.sort_unstable();
        }
        for i in idx {
            pick(i, &mut out);
        }
    }
    Ok(Reply::Array(out))
}
