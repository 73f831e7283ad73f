//! Applying the master's command stream (`shared/spec/redis.md` §2.4).
//!
//! Each read batch is applied under one engine lock: every command through the one write
//! path (`execute_locked` with the link's `Origin::Master` session, which skips READONLY and
//! never expires keys), and its exact bytes appended to the write stream, so our offset is
//! the master's and sub-replicas get the same bytes. A MULTI … EXEC is appended only once its
//! EXEC ran: the offset never stands inside a transaction (Redis moves `reploff` only
//! outside one), so a link lost mid-transaction resumes before its MULTI.
//!
//! The replica never answers the master except `REPLCONF GETACK`, answered at once with the
//! offset before the GETACK; it sends `REPLCONF ACK <offset>` every second, and drops the
//! link after `repl-timeout` without data.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tracing::warn;

use super::conn::{ack, io_text, LinkError, MasterConn};
use super::frame::{split_args, Cutter, Frame};
use super::role::lock_follower;
use crate::cmd::args::is;
use crate::cmd::exec::{execute_locked, EngineState};
use crate::cmd::{lookup, Reply, Session};
use crate::replication::state::LinkState;
use crate::state::ServerState;

/// The log line of a command that failed on the replica (Redis `afterErrorReply`).
fn critical(err: &[u8], argv: &[Bytes]) {
    let name = argv
        .first()
        .and_then(|argv0| lookup(argv0))
        .map_or("<unknown>", |spec| {
            crate::cmd::server::full_name(spec, argv)
        });
    warn!(
        "== CRITICAL == This replica is sending an error to its master: '{}' after processing \
         the command '{name}'",
        String::from_utf8_lossy(err)
    );
}

/// Commands of the master's stream cut before applying them: the keys [`Db::prefetch`] warms.
///
/// [`Db::prefetch`]: crate::store::keyspace::Db::prefetch
const APPLY_BATCH: usize = 32;

/// The per-link apply state: a partly received command and an open transaction's bytes.
#[derive(Debug, Default)]
pub struct Applier {
    cutter: Cutter,
    /// The bytes of a MULTI … not yet closed by EXEC or DISCARD.
    txn: Option<Vec<u8>>,
}

impl Applier {
    /// Appends bytes to the history, or holds them while a transaction is open.
    fn feed(&mut self, st: &mut EngineState, raw: &[u8]) {
        match self.txn.as_mut() {
            Some(t) => t.extend_from_slice(raw),
            None => st.stream.append_master(raw),
        }
    }

    /// Applies every complete command in `buf`; GETACK answers go to `acks`.
    pub fn apply(
        &mut self,
        srv: &ServerState,
        epoch: u64,
        sess: &mut Session,
        buf: &mut BytesMut,
        acks: &mut Vec<u8>,
    ) -> Result<(), LinkError> {
        let mut st = srv.engine.lock();
        if lock_follower(srv).epoch != epoch {
            return Err(LinkError::Retired);
        }
        // One clock read per call and one per command, as a client connection's batch does
        // (the command's end is the next one's start).
        sess.batch_now_ms = srv.clock.now_ms();
        sess.mark = Some(Instant::now());
        let result = self.apply_locked(srv, &mut st, sess, buf, acks);
        sess.batch_now_ms = 0;
        sess.mark = None;
        lock_follower(srv).master_db = sess.db;
        result
    }

    fn apply_locked(
        &mut self,
        srv: &ServerState,
        st: &mut EngineState,
        sess: &mut Session,
        buf: &mut BytesMut,
        acks: &mut Vec<u8>,
    ) -> Result<(), LinkError> {
        let mut frames = Vec::with_capacity(APPLY_BATCH);
        loop {
            // Cut a run of commands first, so their keys' lookups can be warmed together.
            let mut cut_error = None;
            while frames.len() < APPLY_BATCH {
                match self.cutter.next(buf) {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => break,
                    Err(e) => {
                        cut_error = Some(LinkError::Desync(e.to_string()));
                        break;
                    }
                }
            }
            let more = frames.len() == APPLY_BATCH;
            if frames.len() > 1 {
                if let Some(db) = st.ks.dbs.get(sess.db) {
                    db.prefetch(frames.iter().filter_map(|f| match f {
                        Frame::Command { argv, .. } => argv.get(1).map(|k| &k[..]),
                        _ => None,
                    }));
                }
            }
            for frame in frames.drain(..) {
                self.apply_frame(srv, st, sess, frame, acks)?;
            }
            if let Some(e) = cut_error {
                return Err(e);
            }
            if !more {
                return Ok(());
            }
        }
    }

    /// Applies one command of the master's stream.
    fn apply_frame(
        &mut self,
        srv: &ServerState,
        st: &mut EngineState,
        sess: &mut Session,
        frame: Frame,
        acks: &mut Vec<u8>,
    ) -> Result<(), LinkError> {
        let (raw, argv) = match frame {
            Frame::Newline => return Ok(()),
            Frame::Inline(_) => {
                return Err(LinkError::Desync(
                    "WARNING: Receiving inline protocol from master, master stream \
                     corruption? Closing the master connection and discarding the cached \
                     master."
                        .into(),
                ))
            }
            Frame::Command { raw, argv } => (raw, argv),
        };
        let Some(name) = argv.first() else {
            self.feed(st, &raw);
            return Ok(());
        };
        if is(name, "replconf") {
            if argv.len() >= 2 && is(&argv[1], "getack") && self.txn.is_none() {
                // The offset before the GETACK itself (it counts once applied).
                acks.extend_from_slice(&ack(st.stream.offset()));
            }
            self.feed(st, &raw);
            return Ok(());
        }
        if is(name, "ping") && argv.len() == 1 {
            self.feed(st, &raw);
            return Ok(());
        }
        if sess.multi.is_none() && is(name, "multi") {
            self.txn = Some(Vec::new());
        }
        let out = execute_locked(srv, st, sess, argv);
        if let Reply::Error(e) = &out.reply {
            // The arguments again from the raw bytes: copying them for this rare case would
            // cost every command.
            critical(e, &split_args(&raw));
        }
        self.feed(st, &raw);
        if sess.multi.is_none() {
            if let Some(t) = self.txn.take() {
                st.stream.append_master(&t);
            }
        }

        Ok(())
    }

    /// Forgets what a lost link left half done: a partial command and an open transaction.
    pub fn reset(&mut self, sess: &mut Session) {
        self.cutter.reset();
        self.txn = None;
        sess.multi = None;
        sess.multi_error = false;
    }
}

/// Marks the link as streaming (INFO `master_link_status:up`, no MASTERDOWN).
fn connected(srv: &ServerState, epoch: u64, db: usize, buffered: usize) -> Result<u64, LinkError> {
    let st = srv.engine.lock();
    let mut f = lock_follower(srv);
    if f.epoch != epoch {
        return Err(LinkError::Retired);
    }
    f.linked = true;
    f.cached = false;
    f.master_db = db;
    let offset = st.stream.offset();
    drop(f);
    let mut l = srv.repl.link.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(link) = l.as_mut() {
        link.state = LinkState::Connected;
        link.last_io = Some(Instant::now());
        link.down_since = None;
        link.read_offset = offset + buffered as u64;
        link.sync_total = -1;
        link.sync_read = 0;
        link.sync_last_io = None;
    }
    srv.repl.master_down.store(false, Ordering::Release);
    Ok(offset)
}

/// Streams from the master until the link breaks or the role changes. `ack_now` sends an
/// ACK first (after an EOF-framed snapshot it is what starts the stream).
pub async fn run(
    conn: &mut MasterConn,
    srv: &Arc<ServerState>,
    epoch: u64,
    sess: &mut Session,
    applier: &mut Applier,
    ack_now: bool,
) -> Result<(), LinkError> {
    let offset = connected(srv, epoch, sess.db, conn.buf.len())?;
    let lost = |e: LinkError| match e {
        LinkError::Failed(why) => LinkError::Lost(why),
        other => other,
    };
    let io_wait = Duration::from_secs(10);
    if ack_now {
        conn.send(&ack(offset), io_wait).await.map_err(lost)?;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut acks = Vec::new();
    loop {
        // Bytes already buffered (the stream may follow a `$<len>` payload at once).
        if !conn.buf.is_empty() {
            applier.apply(srv, epoch, sess, &mut conn.buf, &mut acks)?;
            if !acks.is_empty() {
                conn.send(&acks, io_wait).await.map_err(lost)?;
                acks.clear();
            }
        }
        if conn.buf.capacity() - conn.buf.len() < 4096 {
            conn.buf.reserve(16 * 1024);
        }
        let read = tokio::select! {
            r = conn.sock.read_buf(&mut conn.buf) => Some(r),
            _ = tick.tick() => None,
        };
        match read {
            Some(Ok(0)) => return Err(LinkError::Lost(String::new())),
            Some(Err(e)) => {
                return Err(LinkError::Lost(format!(
                    "Error reading from MASTER: {}",
                    io_text(&e)
                )))
            }
            Some(Ok(n)) => {
                conn.counted(n);
                let mut l = srv.repl.link.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(link) = l.as_mut() {
                    link.read_offset += n as u64;
                    link.last_io = Some(conn.last_io);
                }
            }
            None => {
                // Redis `replicationCron`: the timeout check, then the ACK.
                let timeout = srv.with_config(|c| c.repl_timeout.max(1));
                if conn.last_io.elapsed() > Duration::from_secs(timeout) {
                    return Err(LinkError::Lost(
                        "MASTER timeout: no data nor PING received...".into(),
                    ));
                }
                let offset = srv.engine.lock().stream.offset();
                conn.send(&ack(offset), io_wait).await.map_err(lost)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::Origin;
    use crate::config::Config;

    fn replica() -> ServerState {
        let srv = ServerState::new(Config::default());
        {
            let mut st = srv.engine.lock();
            st.is_replica = true;
            st.stream.set_proxy(true);
            st.stream.reset(100);
        }
        srv
    }

    #[test]
    fn transactions_count_at_exec_and_getack_reports_the_offset_before_itself() {
        let srv = replica();
        let mut sess = Session::internal(Origin::Master, 0);
        let mut ap = Applier::default();
        let mut acks = Vec::new();
        let select = b"*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n";
        let multi = b"*1\r\n$5\r\nMULTI\r\n";
        let set = b"*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n";
        let exec = b"*1\r\n$4\r\nEXEC\r\n";
        let getack = b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n";
        let mut buf = BytesMut::new();
        buf.extend_from_slice(select);
        buf.extend_from_slice(multi);
        buf.extend_from_slice(set);
        ap.apply(&srv, 0, &mut sess, &mut buf, &mut acks).unwrap();
        // Inside the transaction: only the SELECT counts so far, and nothing is applied.
        let at_select = 100 + select.len() as u64;
        assert_eq!(srv.engine.lock().stream.offset(), at_select);
        assert!(srv.engine.lock().ks.dbs[2].get(b"k").is_none());
        buf.extend_from_slice(exec);
        buf.extend_from_slice(getack);
        buf.extend_from_slice(b"*1\r\n$4\r\nping\r\n*2\r\n$3\r\nDEL");
        ap.apply(&srv, 0, &mut sess, &mut buf, &mut acks).unwrap();
        let after_exec = at_select + (multi.len() + set.len() + exec.len()) as u64;
        assert_eq!(acks, super::super::conn::ack(after_exec));
        let st = srv.engine.lock();
        assert_eq!(st.stream.offset(), after_exec + getack.len() as u64 + 14);
        assert!(st.ks.dbs[2].get(b"k").is_some());
        assert_eq!(&buf[..], b"*2\r\n$3\r\nDEL");
        // The history holds the master's bytes, byte for byte.
        let all = st.stream.read_from(100).unwrap();
        assert!(all.starts_with(select));
        assert!(all.ends_with(b"*1\r\n$4\r\nping\r\n"));
    }

    #[test]
    fn a_retired_link_applies_nothing_and_inline_data_is_a_desync() {
        let srv = replica();
        let mut sess = Session::internal(Origin::Master, 0);
        let mut ap = Applier::default();
        let mut acks = Vec::new();
        let mut buf = BytesMut::from(&b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"[..]);
        assert!(matches!(
            ap.apply(&srv, 7, &mut sess, &mut buf, &mut acks),
            Err(LinkError::Retired)
        ));
        assert!(srv.engine.lock().ks.dbs[0].get(b"k").is_none());
        let mut buf = BytesMut::from(&b"\nSET k v\r\n"[..]);
        assert!(matches!(
            ap.apply(&srv, 0, &mut sess, &mut buf, &mut acks),
            Err(LinkError::Desync(_))
        ));
        assert_eq!(srv.engine.lock().stream.offset(), 100);
    }
}
