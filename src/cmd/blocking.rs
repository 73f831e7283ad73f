//! Clients blocked on list keys (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP).
//!
//! Waiters queue per key in arrival order. After any command that pushed to a key with waiters,
//! [`serve_ready`] runs — still under the engine lock — and serves them FIFO, exactly as Redis's
//! `handleClientsBlockedOnKeys` / `serveClientsBlockedOnListKey` (`blocked.c`, `t_list.c`
//! 7.0): the pop happens on the waiter's behalf, is propagated as the equivalent
//! non-blocking command (`LPOP`/`RPOP key`, `LPOP key count` for BLMPOP, `LMOVE` or
//! `RPOPLPUSH`), and the reply is handed to the waiter's connection.
//!
//! Keys that become ready inside MULTI/EXEC are served only once the transaction is over
//! (Redis runs `handleClientsBlockedOnKeys` after the whole EXEC), so a transaction that
//! pushes and pops the same list leaves blocked clients untouched.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::exec::EngineState;
use super::list::{key_meta, move_element, pop_many, side_name, unmove, unpop};
use super::reply::{CmdError, Reply};
use crate::state::ServerState;
use crate::store::{List, Value};

/// What a blocked client will do when its key gets elements.
#[derive(Debug, Clone)]
pub enum BlockOp {
    /// BLPOP / BRPOP: reply `[key, element]`.
    Pop {
        /// Pop from the head.
        left: bool,
    },
    /// BLMOVE / BRPOPLPUSH: move one element to `dst`, reply the element.
    Move {
        /// Destination list.
        dst: Bytes,
        /// Pop from the source's head.
        from_left: bool,
        /// Push at the destination's head.
        to_left: bool,
        /// Sent as BRPOPLPUSH: propagated as `RPOPLPUSH src dst` rather than `LMOVE`.
        rpoplpush: bool,
    },
    /// BLMPOP: reply `[key, [elements…]]`.
    MPop {
        /// Pop from the head.
        left: bool,
        /// Most elements to pop.
        count: usize,
    },
    /// WAIT: blocked on replica acks, not on keys (registered with none, so never served
    /// here; its connection watches the acks).
    Acks,
}

/// One blocked client.
#[derive(Debug)]
pub struct Waiter {
    /// The client's id.
    pub client_id: u64,
    /// The database its keys live in.
    pub db: usize,
    /// The keys it waits on, in the order given.
    pub keys: Vec<Bytes>,
    /// What to do once served.
    pub op: BlockOp,
    /// Whether it waits with a timeout (`clients_in_timeout_table` counts only those).
    pub timed: bool,
    tx: oneshot::Sender<Reply>,
}

/// Every blocked client, by key and by waiter id.
#[derive(Debug, Default)]
pub struct Blocked {
    next_id: u64,
    queues: HashMap<(usize, Bytes), VecDeque<u64>>,
    waiters: HashMap<u64, Waiter>,
    /// Keys signalled inside a transaction, served when it ends.
    pending: Vec<(usize, Bytes)>,
}

impl Blocked {
    /// Returns the number of blocked clients (`blocked_clients` in INFO).
    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    /// Reports whether no client is blocked.
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// Returns the number of blocked clients waiting with a timeout
    /// (`clients_in_timeout_table` in INFO: Redis leaves `BLPOP k 0` out of that table).
    pub fn timed_len(&self) -> usize {
        self.waiters.values().filter(|w| w.timed).count()
    }

    /// Reports whether some client waits on `key`.
    pub fn has_waiters(&self, db: usize, key: &[u8]) -> bool {
        !self.waiters.is_empty() && self.queues.contains_key(&(db, Bytes::copy_from_slice(key)))
    }

    /// Reports whether keys signalled inside a transaction still wait to be served.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Reports whether the client `client_id` is blocked (CLIENT LIST flag `b`).
    pub fn is_blocked(&self, client_id: u64) -> bool {
        self.waiters.values().any(|w| w.client_id == client_id)
    }

    /// Blocks a client on `keys` (`timed`: with a timeout); returns its waiter id and where
    /// its reply will arrive.
    pub fn block(
        &mut self,
        client_id: u64,
        db: usize,
        keys: Vec<Bytes>,
        op: BlockOp,
        timed: bool,
    ) -> (u64, oneshot::Receiver<Reply>) {
        self.next_id += 1;
        let id = self.next_id;
        let (tx, rx) = oneshot::channel();
        for k in &keys {
            let q = self.queues.entry((db, k.clone())).or_default();
            // BLPOP k k 0 waits once on k.
            if q.back() != Some(&id) {
                q.push_back(id);
            }
        }
        self.waiters.insert(
            id,
            Waiter {
                client_id,
                db,
                keys,
                op,
                timed,
                tx,
            },
        );
        (id, rx)
    }

    /// Withdraws a waiter (timeout, disconnect, CLIENT KILL).
    pub fn remove(&mut self, id: u64) -> Option<Waiter> {
        let w = self.waiters.remove(&id)?;
        for k in &w.keys {
            let qk = (w.db, k.clone());
            if let Some(q) = self.queues.get_mut(&qk) {
                q.retain(|x| *x != id);
                if q.is_empty() {
                    self.queues.remove(&qk);
                }
            }
        }
        Some(w)
    }

    /// Withdraws `client_id`'s wait (CLIENT UNBLOCK). With `reply` the client receives it
    /// (the `-UNBLOCKED …` error); without, it answers as on timeout. Returns whether the
    /// client was blocked.
    pub fn unblock_client(&mut self, client_id: u64, reply: Option<Reply>) -> bool {
        let Some(id) = self
            .waiters
            .iter()
            .find(|(_, w)| w.client_id == client_id)
            .map(|(id, _)| *id)
        else {
            return false;
        };
        if let Some(w) = self.remove(id) {
            // Dropping the sender makes the connection answer its timeout reply.
            if let Some(r) = reply {
                deliver(w, r);
            }
        }
        true
    }

    /// Returns the keys of database `db` that clients wait on (SWAPDB and FLUSHDB-like
    /// commands push them to `Ctx::ready` so waiters see the keys now present).
    pub fn waiting_keys(&self, db: usize) -> Vec<Bytes> {
        self.queues
            .keys()
            .filter(|(d, _)| *d == db)
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// Takes the next live waiter on `key`, oldest first; waiters whose connection is gone
    /// are dropped, so they never swallow an element.
    fn next_waiter(&mut self, db: usize, key: &Bytes) -> Option<Waiter> {
        loop {
            let id = self.queues.get(&(db, key.clone()))?.front().copied()?;
            match self.remove(id) {
                Some(w) if !w.tx.is_closed() => return Some(w),
                _ => continue,
            }
        }
    }
}

/// Returns the list at `key` when it is live and holds elements.
fn ready_list<'a>(st: &'a EngineState, db: usize, key: &[u8], now: i64) -> Option<&'a List> {
    let e = st.ks.dbs[db].get(key)?;
    if e.expire_at().is_some_and(|at| at <= now) {
        return None;
    }
    match &e.value {
        Value::List(l) if !l.is_empty() => Some(l),
        _ => None,
    }
}

/// Serves clients blocked on the keys that just received elements, FIFO per key.
pub fn serve_ready(_srv: &ServerState, st: &mut EngineState, ready: Vec<(usize, Bytes)>, now: i64) {
    if st.stream.in_transaction() {
        st.blocked.pending.extend(ready);
        return;
    }
    let mut queue: VecDeque<(usize, Bytes)> = std::mem::take(&mut st.blocked.pending).into();
    queue.extend(ready);
    while let Some((db, key)) = queue.pop_front() {
        while ready_list(st, db, &key, now).is_some() {
            let Some(w) = st.blocked.next_waiter(db, &key) else {
                break;
            };
            serve_one(st, db, &key, w, now, &mut queue);
        }
    }
}

/// How to take back an operation whose waiter vanished before its reply could be sent.
enum Undo {
    /// Put the popped elements back where they came from.
    Pop { left: bool, vals: Vec<Bytes> },
    /// Move the element back from the destination.
    Move {
        dst: Bytes,
        from_left: bool,
        to_left: bool,
    },
}

/// Runs one waiter's operation against `key`, which holds elements, and hands it the reply.
///
/// The waiter was alive when taken from the queue, but its connection can still go away
/// before the reply is sent (the receiver lives on another thread). Then the operation is
/// undone — the elements return where they came from, the key with its TTL if the pop had
/// deleted it — and neither counted nor propagated, so the data and the write stream say
/// that nothing happened, and the caller serves the next waiter. (Redis cannot lose a client
/// in between: it serves and replies on one thread.)
fn serve_one(
    st: &mut EngineState,
    db: usize,
    key: &Bytes,
    w: Waiter,
    now: i64,
    queue: &mut VecDeque<(usize, Bytes)>,
) {
    let Some(meta) = key_meta(&st.ks.dbs[db], key) else {
        return;
    };
    let (reply, propagate, undo) = match &w.op {
        // A WAIT waiter is never queued on a key.
        BlockOp::Acks => return,
        BlockOp::Pop { left } => {
            let vals = pop_many(&mut st.ks.dbs[db], key, *left, 1);
            let Some(v) = vals.first().cloned() else {
                return;
            };
            let cmd: &'static [u8] = if *left { b"LPOP" } else { b"RPOP" };
            (
                Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Bulk(v)]),
                vec![Bytes::from_static(cmd), key.clone()],
                Undo::Pop { left: *left, vals },
            )
        }
        BlockOp::MPop { left, count } => {
            let vals = pop_many(&mut st.ks.dbs[db], key, *left, *count);
            let cmd: &'static [u8] = if *left { b"LPOP" } else { b"RPOP" };
            let n = Bytes::from(vals.len().to_string());
            (
                Reply::Array(vec![
                    Reply::Bulk(key.clone()),
                    Reply::Array(vals.iter().cloned().map(Reply::Bulk).collect()),
                ]),
                vec![Bytes::from_static(cmd), key.clone(), n],
                Undo::Pop { left: *left, vals },
            )
        }
        BlockOp::Move {
            dst,
            from_left,
            to_left,
            rpoplpush,
        } => {
            // An expired destination is deleted first, as `lookupKeyWrite` would.
            let dst_expired = st.ks.dbs[db]
                .get(dst)
                .is_some_and(|e| e.expire_at().is_some_and(|at| at <= now));
            if dst_expired && dst != key {
                st.ks.dbs[db].remove(dst);
                st.stats.expired_keys += 1;
                st.stream
                    .append(db, &[Bytes::from_static(b"DEL"), dst.clone()]);
            }
            let dst_ok = st.ks.dbs[db]
                .get(dst)
                .is_none_or(|e| matches!(e.value, Value::List(_)));
            if !dst_ok {
                // The waiter gets WRONGTYPE and is unblocked; the source keeps its element.
                deliver(w, CmdError::WrongType.into());
                return;
            }
            let Some(v) = move_element(&mut st.ks.dbs[db], key, dst, *from_left, *to_left, now)
            else {
                return;
            };
            let argv = if *rpoplpush {
                vec![Bytes::from_static(b"RPOPLPUSH"), key.clone(), dst.clone()]
            } else {
                vec![
                    Bytes::from_static(b"LMOVE"),
                    key.clone(),
                    dst.clone(),
                    side_name(*from_left),
                    side_name(*to_left),
                ]
            };
            let undo = Undo::Move {
                dst: dst.clone(),
                from_left: *from_left,
                to_left: *to_left,
            };
            (Reply::Bulk(v), argv, undo)
        }
    };
    let client = w.client_id;
    if w.tx.send(reply).is_err() {
        tracing::debug!(client, "blocked client gone before its reply; pop undone");
        let d = &mut st.ks.dbs[db];
        match undo {
            Undo::Pop { left, vals } => unpop(d, key, left, &vals, meta),
            Undo::Move {
                dst,
                from_left,
                to_left,
            } => unmove(d, key, &dst, from_left, to_left, meta),
        }
        return;
    }
    st.touch(db, key);
    if let Undo::Move { dst, .. } = &undo {
        st.touch(db, dst);
        if st.blocked.has_waiters(db, dst) {
            queue.push_back((db, dst.clone()));
        }
    }
    st.dirty += 1;
    st.stream.append(db, &propagate);
}

/// Hands a reply that carries no data (an error, CLIENT UNBLOCK's) to a waiter's connection.
/// A connection that vanished in between loses it, as Redis loses a reply to a client whose
/// socket just closed; replies holding popped elements go through [`serve_one`] instead.
fn deliver(w: Waiter, reply: Reply) {
    if w.tx.send(reply).is_err() {
        tracing::debug!(client = w.client_id, "blocked client gone before its reply");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ks: &[&str]) -> Vec<Bytes> {
        ks.iter()
            .map(|k| Bytes::copy_from_slice(k.as_bytes()))
            .collect()
    }

    #[test]
    fn waiters_queue_per_key_and_withdraw_cleanly() {
        let mut b = Blocked::default();
        let (w1, _rx1) = b.block(
            7,
            0,
            keys(&["a", "b", "a"]),
            BlockOp::Pop { left: true },
            false,
        );
        let (_w2, _rx2) = b.block(8, 0, keys(&["a"]), BlockOp::Pop { left: false }, false);
        assert_eq!(b.len(), 2);
        assert!(b.has_waiters(0, b"a") && b.has_waiters(0, b"b"));
        assert!(!b.has_waiters(1, b"a"));
        let mut ks = b.waiting_keys(0);
        ks.sort();
        assert_eq!(ks, keys(&["a", "b"]));
        // FIFO: client 7 first, listed once even though it named `a` twice.
        let first = b
            .next_waiter(0, &Bytes::from_static(b"a"))
            .map(|w| w.client_id);
        assert_eq!(first, Some(7));
        assert!(b.remove(w1).is_none());
        assert!(!b.has_waiters(0, b"b"));
        assert!(b.is_blocked(8));
        assert!(b.unblock_client(8, None));
        assert!(!b.unblock_client(8, None));
        assert!(b.is_empty());
        assert!(b.waiting_keys(0).is_empty());
    }

    #[test]
    fn closed_waiters_are_skipped() {
        let mut b = Blocked::default();
        let (_, rx) = b.block(1, 0, keys(&["q"]), BlockOp::Pop { left: true }, false);
        let (_, _rx2) = b.block(2, 0, keys(&["q"]), BlockOp::Pop { left: true }, false);
        drop(rx);
        let next = b
            .next_waiter(0, &Bytes::from_static(b"q"))
            .map(|w| w.client_id);
        assert_eq!(next, Some(2));
    }

    /// A state with list `src` = [a, b, c] (TTL at 99 000) and list `other` = [x].
    fn state() -> EngineState {
        let mut st = EngineState::new(1, 1 << 16);
        let list = |items: &[&str]| {
            let l = List::from_iter_bytes(items.iter().map(|s| s.as_bytes()));
            crate::store::Entry::new(Value::List(std::sync::Arc::new(l)), 1_000)
        };
        let db = &mut st.ks.dbs[0];
        db.insert(Bytes::from_static(b"src"), list(&["a", "b", "c"]));
        db.set_expire(b"src", Some(99_000));
        db.insert(Bytes::from_static(b"other"), list(&["x"]));
        st
    }

    fn contents(st: &EngineState, key: &str) -> Option<(Vec<String>, Option<i64>)> {
        let e = st.ks.dbs[0].get(key.as_bytes())?;
        match &e.value {
            Value::List(l) => Some((
                l.iter()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .collect(),
                e.expire_at(),
            )),
            _ => None,
        }
    }

    /// Serves a waiter whose connection closed after it was taken from the queue.
    fn serve_vanished(st: &mut EngineState, op: BlockOp) {
        let (id, rx) = st.blocked.block(1, 0, keys(&["src"]), op, true);
        let w = st.blocked.remove(id).expect("waiter");
        drop(rx);
        serve_one(
            st,
            0,
            &Bytes::from_static(b"src"),
            w,
            2_000,
            &mut VecDeque::new(),
        );
    }

    #[test]
    fn a_waiter_gone_before_its_reply_loses_nothing() {
        let abc = |ttl| Some((vec!["a".into(), "b".into(), "c".into()], ttl));
        let ops = [
            BlockOp::Pop { left: true },
            BlockOp::Pop { left: false },
            BlockOp::MPop {
                left: true,
                count: 2,
            },
            // Empties the source: it comes back with its TTL.
            BlockOp::MPop {
                left: false,
                count: 10,
            },
        ];
        let moves = [
            ("new", true, false),
            ("other", false, true),
            ("src", true, false),
            ("src", false, true),
        ];
        let ops = ops
            .into_iter()
            .chain(
                moves
                    .into_iter()
                    .map(|(dst, from_left, to_left)| BlockOp::Move {
                        dst: Bytes::from_static(dst.as_bytes()),
                        from_left,
                        to_left,
                        rpoplpush: false,
                    }),
            );
        for op in ops {
            let mut st = state();
            st.stream.activate();
            let offset = st.stream.offset();
            serve_vanished(&mut st, op.clone());
            assert_eq!(contents(&st, "src"), abc(Some(99_000)), "{op:?}");
            assert_eq!(
                contents(&st, "other"),
                Some((vec!["x".into()], None)),
                "{op:?}"
            );
            assert!(contents(&st, "new").is_none(), "{op:?}");
            assert_eq!((st.dirty, st.stream.offset()), (0, offset), "{op:?}");
        }
        // A one-element source deleted by the pop comes back too.
        let mut st = state();
        let one = crate::store::Entry::new(
            Value::List(std::sync::Arc::new(List::from_iter_bytes([&b"z"[..]]))),
            0,
        );
        st.ks.dbs[0].insert(Bytes::from_static(b"src"), one);
        st.ks.dbs[0].set_expire(b"src", Some(5_000));
        serve_vanished(&mut st, BlockOp::Pop { left: true });
        assert_eq!(contents(&st, "src"), Some((vec!["z".into()], Some(5_000))));
        assert_eq!(st.ks.dbs[0].expires_len(), 1);
    }

    #[test]
    fn unblock_with_a_reply_delivers_it() {
        let mut b = Blocked::default();
        let (_, mut rx) = b.block(3, 0, keys(&["q"]), BlockOp::Pop { left: true }, false);
        let err = Reply::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into());
        assert!(b.unblock_client(3, Some(err.clone())));
        assert_eq!(rx.try_recv().ok(), Some(err));
    }
}
