//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH (Redis 7.0 `multi.c`).

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::exec::{run_locked, Ctx, EngineState};
use super::reply::{CmdError, CmdResult, Reply};
use super::session::Session;
use super::table::flags::*;
use super::table::{lookup, CommandSpec};
use crate::command;

/// Transaction commands.
pub static COMMANDS: &[CommandSpec] = &[
    command!(
        "multi",
        1,
        NOSCRIPT | LOADING | STALE | FAST | TXN_CONTROL,
        (0, 0, 0),
        "transactions",
        multi
    ),
    command!(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG | TXN_CONTROL,
        (0, 0, 0),
        "transactions",
        exec
    ),
    command!(
        "discard",
        1,
        NOSCRIPT | LOADING | STALE | FAST | TXN_CONTROL,
        (0, 0, 0),
        "transactions",
        discard
    ),
    command!(
        "watch",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | TXN_CONTROL,
        (1, -1, 1),
        "transactions",
        watch
    ),
    command!(
        "unwatch",
        1,
        NOSCRIPT | LOADING | STALE | FAST,
        (0, 0, 0),
        "transactions",
        unwatch
    ),
];

fn set_multi_count(ctx: &Ctx<'_>, n: i64) {
    if let Some(info) = &ctx.sess.info {
        info.multi.store(n, Ordering::Relaxed);
    }
}

fn multi(ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> CmdResult {
    if ctx.sess.multi.is_some() {
        return Err(CmdError::err("MULTI calls can not be nested"));
    }
    ctx.sess.multi = Some(Vec::new());
    ctx.sess.multi_error = false;
    set_multi_count(ctx, 0);
    Ok(Reply::Ok)
}

/// Leaves MULTI state, dropping queued commands.
pub fn discard_transaction(ctx: &mut Ctx<'_>) {
    ctx.sess.multi = None;
    ctx.sess.multi_error = false;
    set_multi_count(ctx, -1);
}

/// Forgets every WATCHed key of the session.
pub fn unwatch_all(ctx: &mut Ctx<'_>) {
    unwatch_session(ctx.st, ctx.sess);
}

fn unwatch_session(st: &mut EngineState, sess: &mut Session) {
    let id = sess.id;
    for (db, key, _) in sess.watched.drain(..) {
        let k = (db, key);
        if let Some(w) = st.watched.get_mut(&k) {
            w.retain(|(cid, _)| *cid != id);
            if w.is_empty() {
                st.watched.remove(&k);
            }
        }
    }
    sess.watch_dirty.store(false, Ordering::Relaxed);
}

/// Discards the transaction of a client whose EXEC was refused before running (Redis
/// `execCommandAbort` → `discardTransaction`): queued commands and WATCHes are dropped.
pub fn abort_transaction(st: &mut EngineState, sess: &mut Session) {
    sess.multi = None;
    sess.multi_error = false;
    if let Some(info) = &sess.info {
        info.multi.store(-1, Ordering::Relaxed);
    }
    unwatch_session(st, sess);
}

/// Reports whether a key watched while alive has since expired (Redis `isWatchedKeyExpired`).
fn watched_key_expired(ctx: &Ctx<'_>) -> bool {
    ctx.sess.watched.iter().any(|(db, key, expired_then)| {
        !expired_then
            && ctx.st.ks.dbs[*db]
                .get(key)
                .and_then(|e| e.expire_at())
                .is_some_and(|at| at <= ctx.now)
    })
}

fn exec(ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> CmdResult {
    let Some(queued) = ctx.sess.multi.take() else {
        return Err(CmdError::err("EXEC without MULTI"));
    };
    if ctx.sess.multi_error {
        discard_transaction(ctx);
        unwatch_all(ctx);
        return Err(CmdError::Other(
            "EXECABORT Transaction discarded because of previous errors.".into(),
        ));
    }
    let aborted = ctx.sess.watch_dirty.load(Ordering::Relaxed) || watched_key_expired(ctx);
    discard_transaction(ctx);
    unwatch_all(ctx);
    if aborted {
        return Ok(Reply::NilArray);
    }
    ctx.st.stream.begin_transaction();
    let mut replies = Vec::with_capacity(queued.len());
    for argv in queued {
        let Some(spec) = lookup(&argv[0]) else {
            continue;
        };
        // A replica demoted meanwhile refuses writes inside EXEC too.
        if spec.has(WRITE)
            && ctx.srv.is_read_only_replica()
            && ctx.sess.origin == super::Origin::Client
        {
            replies.push(CmdError::ReadOnly.into());
            continue;
        }
        let out = run_locked(ctx.srv, ctx.st, ctx.sess, spec, argv, false);
        replies.push(out.reply);
    }
    ctx.st.stream.end_transaction();
    Ok(Reply::Array(replies))
}

fn discard(ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> CmdResult {
    if ctx.sess.multi.is_none() {
        return Err(CmdError::err("DISCARD without MULTI"));
    }
    discard_transaction(ctx);
    unwatch_all(ctx);
    Ok(Reply::Ok)
}

fn watch(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    if ctx.sess.multi.is_some() {
        return Err(CmdError::err("WATCH inside MULTI is not allowed"));
    }
    let db = ctx.sess.db;
    for key in &argv[1..] {
        if ctx
            .sess
            .watched
            .iter()
            .any(|(d, k, _)| *d == db && k == key)
        {
            continue;
        }
        let expired = ctx.st.ks.dbs[db]
            .get(key)
            .and_then(|e| e.expire_at())
            .is_some_and(|at| at <= ctx.now);
        let key = Bytes::copy_from_slice(key);
        ctx.st
            .watched
            .entry((db, key.clone()))
            .or_default()
            .push((ctx.sess.id, ctx.sess.watch_dirty.clone()));
        ctx.sess.watched.push((db, key, expired));
    }
    Ok(Reply::Ok)
}

fn unwatch(ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> CmdResult {
    unwatch_all(ctx);
    Ok(Reply::Ok)
}
