//! Clients blocked on list keys (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP).
//!
//! Waiters queue per key in arrival order. After any command that pushed to a key with waiters,
//! [`serve_ready`] runs — still under the engine lock — and serves them FIFO, exactly as Redis's
//! `handleClientsBlockedOnKeys`: the pop happens on the waiter's behalf, is propagated as the
//! equivalent non-blocking command, and the reply is handed to the waiter's connection.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::exec::EngineState;
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
    },
    /// BLMPOP: reply `[key, [elements…]]`.
    MPop {
        /// Pop from the head.
        left: bool,
        /// Most elements to pop.
        count: usize,
    },
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
    tx: oneshot::Sender<Reply>,
}

/// Every blocked client, by key and by waiter id.
#[derive(Debug, Default)]
pub struct Blocked {
    next_id: u64,
    queues: HashMap<(usize, Bytes), VecDeque<u64>>,
    waiters: HashMap<u64, Waiter>,
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

    /// Reports whether some client waits on `key`.
    pub fn has_waiters(&self, db: usize, key: &[u8]) -> bool {
        !self.waiters.is_empty() && self.queues.contains_key(&(db, Bytes::copy_from_slice(key)))
    }

    /// Blocks a client on `keys`; returns its waiter id and where its reply will arrive.
    pub fn block(
        &mut self,
        client_id: u64,
        db: usize,
        keys: Vec<Bytes>,
        op: BlockOp,
    ) -> (u64, oneshot::Receiver<Reply>) {
        self.next_id += 1;
        let id = self.next_id;
        let (tx, rx) = oneshot::channel();
        for k in &keys {
            self.queues
                .entry((db, k.clone()))
                .or_default()
                .push_back(id);
        }
        self.waiters.insert(
            id,
            Waiter {
                client_id,
                db,
                keys,
                op,
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

    /// Takes the next live waiter on `key`, oldest first.
    fn next_waiter(&mut self, db: usize, key: &Bytes) -> Option<Waiter> {
        loop {
            let id = self.queues.get_mut(&(db, key.clone()))?.front().copied()?;
            match self.remove(id) {
                Some(w) if !w.tx.is_closed() => return Some(w),
                _ => continue,
            }
        }
    }
}

fn list_at<'a>(st: &'a mut EngineState, db: usize, key: &[u8], now: i64) -> Option<&'a mut List> {
    let dbv = &mut st.ks.dbs[db];
    let e = dbv.get_mut(key)?;
    if e.expire_at.is_some_and(|at| at <= now) {
        return None;
    }
    match &mut e.value {
        Value::List(l) if !l.is_empty() => Some(std::sync::Arc::make_mut(l)),
        _ => None,
    }
}

fn remove_if_empty(st: &mut EngineState, db: usize, key: &[u8]) {
    let empty = matches!(st.ks.dbs[db].get(key), Some(e) if matches!(&e.value, Value::List(l) if l.is_empty()));
    if empty {
        st.ks.dbs[db].remove(key);
    }
}

fn side(left: bool) -> Bytes {
    Bytes::from_static(if left { b"LEFT" } else { b"RIGHT" })
}

/// Serves clients blocked on the keys that just received elements, FIFO per key.
pub fn serve_ready(_srv: &ServerState, st: &mut EngineState, ready: Vec<(usize, Bytes)>, now: i64) {
    let mut ready: VecDeque<(usize, Bytes)> = ready.into();
    while let Some((db, key)) = ready.pop_front() {
        while list_at(st, db, &key, now).is_some() {
            let Some(w) = st.blocked.next_waiter(db, &key) else {
                break;
            };
            let (reply, propagate) = match &w.op {
                BlockOp::Pop { left } => {
                    let Some(l) = list_at(st, db, &key, now) else {
                        break;
                    };
                    let v = if *left { l.pop_front() } else { l.pop_back() };
                    let Some(v) = v else { break };
                    let cmd = if *left { "LPOP" } else { "RPOP" };
                    (
                        Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Bulk(v)]),
                        vec![Bytes::from_static(cmd.as_bytes()), key.clone()],
                    )
                }
                BlockOp::MPop { left, count } => {
                    let Some(l) = list_at(st, db, &key, now) else {
                        break;
                    };
                    let mut vals = Vec::new();
                    while vals.len() < *count {
                        match if *left { l.pop_front() } else { l.pop_back() } {
                            Some(v) => vals.push(Reply::Bulk(v)),
                            None => break,
                        }
                    }
                    let cmd = if *left { "LPOP" } else { "RPOP" };
                    let n = vals.len().to_string();
                    (
                        Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Array(vals)]),
                        vec![
                            Bytes::from_static(cmd.as_bytes()),
                            key.clone(),
                            Bytes::from(n),
                        ],
                    )
                }
                BlockOp::Move {
                    dst,
                    from_left,
                    to_left,
                } => {
                    let dst_ok = match st.ks.dbs[db].get(dst) {
                        None => true,
                        Some(e) => {
                            e.expire_at.is_some_and(|at| at <= now)
                                || matches!(e.value, Value::List(_))
                        }
                    };
                    if !dst_ok {
                        let _ = w.tx.send(CmdError::WrongType.into());
                        continue;
                    }
                    let Some(l) = list_at(st, db, &key, now) else {
                        break;
                    };
                    let v = if *from_left {
                        l.pop_front()
                    } else {
                        l.pop_back()
                    };
                    let Some(v) = v else { break };
                    remove_if_empty(st, db, &key);
                    let dbv = &mut st.ks.dbs[db];
                    let expired = dbv
                        .get(dst)
                        .is_some_and(|e| e.expire_at.is_some_and(|at| at <= now));
                    if expired {
                        dbv.remove(dst);
                    }
                    if dbv.get(dst).is_none() {
                        dbv.insert(
                            dst.clone(),
                            crate::store::Entry::new(Value::List(Default::default()), now),
                        );
                    }
                    if let Some(dl) = list_at_any(st, db, dst) {
                        if *to_left {
                            dl.push_front(&v);
                        } else {
                            dl.push_back(&v);
                        }
                    }
                    st.touch(db, dst);
                    if st.blocked.has_waiters(db, dst) {
                        ready.push_back((db, dst.clone()));
                    }
                    (
                        Reply::Bulk(v),
                        vec![
                            Bytes::from_static(b"LMOVE"),
                            key.clone(),
                            dst.clone(),
                            side(*from_left),
                            side(*to_left),
                        ],
                    )
                }
            };
            remove_if_empty(st, db, &key);
            st.touch(db, &key);
            st.dirty += 1;
            st.stream.append(db, &propagate);
            let _ = w.tx.send(reply);
        }
    }
}

fn list_at_any<'a>(st: &'a mut EngineState, db: usize, key: &[u8]) -> Option<&'a mut List> {
    match &mut st.ks.dbs[db].get_mut(key)?.value {
        Value::List(l) => Some(std::sync::Arc::make_mut(l)),
        _ => None,
    }
}
