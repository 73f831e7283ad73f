//! One RESP client connection: read everything available, execute every complete request,
//! queue the replies, write them once per read batch.
//!
//! Reading never waits for writing: a client may pipeline megabytes of commands before it
//! reads a reply (fluent-plugin-redis sends whole chunks of MULTI/HMSET/EXPIRE/EXEC this way),
//! so replies queue in memory, as Redis does for normal clients, while reading goes on.
//!
//! Closing follows Redis 7.0 `networking.c`: a protocol error is replied to and then closes
//! (`CLIENT_CLOSE_AFTER_REPLY`); an HTTP request line or an oversized query buffer closes at
//! once, dropping replies not yet written (`CLIENT_CLOSE_ASAP`). Closes that follow a flush
//! half-close and drain the peer briefly first, so unread input cannot turn into a TCP reset
//! that destroys the replies just sent.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::decode::RequestDecoder;
use super::encode::encode;
use super::Limits;
use crate::cmd::exec::{execute_locked, with_ctx, BlockRequest};
use crate::cmd::pubsub::{OutputLimit, OutputLimitState};
use crate::cmd::session::ReplyMode;
use crate::cmd::{Argv, Reply, Session};
use crate::config::Config;
use crate::replication::replica::role::UNBLOCKED;
use crate::state::{ClientInfo, ServerState};

/// Bytes read per socket read (Redis `PROTO_IOBUF_LEN`).
/// Most requests decoded ahead of execution (bounds the memory of a deep pipeline's batch).
const MAX_BATCH: usize = 1024;

const READ_CHUNK: usize = 16 * 1024;
/// How long a closing connection keeps draining the peer's input after its last reply.
const LINGER: Duration = Duration::from_millis(500);
/// How long shutdown waits for a client to take its last replies.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);

/// Why a connection ended.
#[derive(Debug)]
enum Close {
    /// Peer closed or I/O failed.
    Gone,
    /// We close after flushing (QUIT, protocol error, kill, shutdown, idle).
    AfterFlush,
    /// We close at once, dropping unsent replies (HTTP request, query buffer limit,
    /// CLIENT KILL).
    Now,
    /// SYNC/PSYNC: the socket goes to the master side (replies so far are flushed).
    Replica,
}

struct Conn {
    srv: Arc<ServerState>,
    stream: TcpStream,
    sess: Session,
    info: Arc<ClientInfo>,
    inbuf: BytesMut,
    out: BytesMut,
    dec: RequestDecoder,
    limits: Limits,
    push_rx: mpsc::UnboundedReceiver<Reply>,
    obuf_limit: OutputLimitState,
    /// Set once the client subscribed or monitored: pushes may be waiting.
    may_have_pushes: bool,
    /// The AOF offset this client's writes reach; replies wait until the AOF holds it
    /// (written, or fsynced with `appendfsync always`), as Redis replies only after its
    /// `beforeSleep` has flushed the AOF.
    aof_due: u64,
    /// The requests decoded from the input and not run yet, kept between batches so a
    /// pipelining client's queue is allocated once, not grown again for every batch.
    queue: VecDeque<Argv>,
}

/// Serves one client until it disconnects, is killed, or the server shuts down. `drain` is
/// the connection's shutdown drain guard: held while it serves a client, released when the
/// connection becomes a replica's link, which shutdown ends later (after the final save).
pub async fn serve(
    srv: Arc<ServerState>,
    stream: TcpStream,
    info: Arc<ClientInfo>,
    mut shutdown: watch::Receiver<bool>,
    drain: mpsc::Sender<()>,
) {
    let (push_tx, push_rx) = mpsc::unbounded_channel();
    let (authenticated, limits) = srv.with_config(|c| (c.requirepass.is_empty(), limits_of(c)));
    let sess = Session::client(info.id, authenticated, info.clone(), push_tx);
    let mut conn = Conn {
        srv: srv.clone(),
        stream,
        sess,
        info: info.clone(),
        // Allocated on the first read: idle connections cost no buffer.
        inbuf: BytesMut::new(),
        out: BytesMut::new(),
        dec: RequestDecoder::new(),
        limits,
        push_rx,
        obuf_limit: OutputLimitState::default(),
        may_have_pushes: false,
        aof_due: 0,
        queue: VecDeque::new(),
    };
    let result = conn.run(&mut shutdown).await;
    if let Err(Close::Replica) = result {
        let Conn {
            srv,
            stream,
            mut sess,
            inbuf,
            ..
        } = conn;
        // A replica's link must outlive the clients' drain: it streams their last writes
        // (Redis keeps replicas until `finishShutdown`); shutdown ends it after the save.
        drop(drain);
        if let Some(req) = sess.sync.take() {
            crate::replication::master::feed::serve(
                srv.clone(),
                stream,
                inbuf,
                req,
                info.clone(),
                shutdown,
            )
            .await;
        }
        srv.clients.remove(sess.id);
        return;
    }
    debug!(client = info.id, ?result, "client closed");
    // Unregister first: the client is gone for CLIENT LIST and maxclients while we linger.
    conn.cleanup();
    if let Err(Close::AfterFlush) = result {
        conn.linger().await;
    }
}

impl Conn {
    async fn run(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<(), Close> {
        let mut idle_deadline = self.idle_deadline();
        // Armed once, not per loop turn: registering and dropping a waiter on every batch
        // is measurable at a million commands a second. Shutdown wakes it too.
        let info = self.info.clone();
        let mut wake = std::pin::pin!(info.kill_notify.notified());
        loop {
            if self.info.killed.load(Ordering::SeqCst) {
                // CLIENT KILL frees the client at once, unsent replies included
                // (Redis `freeClient`); killing oneself is `close_after_reply` instead.
                return Err(Close::Now);
            }
            if *shutdown.borrow() {
                // A client that never reads must not hold the server's exit.
                if tokio::time::timeout(SHUTDOWN_FLUSH, self.flush())
                    .await
                    .is_err()
                {
                    debug!(
                        client = self.info.id,
                        "replies dropped at shutdown: client not reading"
                    );
                }
                return Err(Close::AfterFlush);
            }
            // No timer at all unless `timeout` is set.
            let sleep = async {
                match idle_deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.stream.readable() => {
                    r.map_err(|_| Close::Gone)?;
                    if self.read_some()? {
                        self.process_input(shutdown).await?;
                        // Counted from the end of the batch: a BLPOP may have waited long.
                        idle_deadline = self.idle_deadline();
                    }
                }
                r = self.stream.writable(), if !self.out.is_empty() => {
                    r.map_err(|_| Close::Gone)?;
                    self.try_write()?;
                    // Writing is interaction too (Redis `_writeToClient` sets lastinteraction).
                    idle_deadline = self.idle_deadline();
                }
                Some(msg) = self.push_rx.recv() => {
                    self.push(msg);
                    self.drain_pushes();
                    self.try_write()?;
                    self.check_output_limit()?;
                }
                _ = wake.as_mut() => {
                    // Killed or shutting down (checked above), or a stale permit: re-arm.
                    wake.set(info.kill_notify.notified());
                }
                _ = sleep => {
                    if self.idle_exempt() {
                        idle_deadline = self.idle_deadline();
                    } else {
                        info!(client = self.info.id, "closing idle client");
                        return Err(Close::AfterFlush);
                    }
                }
            }
        }
    }

    fn idle_deadline(&self) -> Option<Instant> {
        let t = self.srv.with_config(|c| c.timeout);
        (t > 0).then(|| Instant::now() + Duration::from_secs(t))
    }

    /// Pub/Sub clients and MONITORs are never closed for idleness (Redis `clientsCronHandleTimeout`).
    fn idle_exempt(&self) -> bool {
        self.sess.subscription_count() > 0 || self.sess.monitor
    }

    /// Reads what the socket has; `Ok(false)` when nothing was there after all.
    ///
    /// The query buffer limit is checked right after the read, before anything is parsed,
    /// as Redis's `readQueryFromClient` does: the client is closed without a reply.
    fn read_some(&mut self) -> Result<bool, Close> {
        // CONFIG SET applies to connected clients too.
        self.limits = self.srv.with_config(limits_of);
        self.inbuf.reserve(READ_CHUNK);
        // Read through `AsyncRead`, polled once, rather than `try_read_buf`: on a short read
        // tokio learns the socket is drained and clears its readiness, which saves the next
        // turn a `recv` that could only answer EAGAIN (Redis reads once per readable event).
        // A pending poll leaves a no-op waker behind; the caller waits on `readable()`.
        let mut cx = Context::from_waker(Waker::noop());
        let read = std::pin::pin!(self.stream.read_buf(&mut self.inbuf)).poll(&mut cx);
        let Poll::Ready(read) = read else {
            return Ok(false);
        };
        match read {
            Ok(0) => Err(Close::Gone),
            Ok(n) => {
                self.srv
                    .net
                    .net_input_bytes
                    .fetch_add(n as u64, Ordering::Relaxed);
                self.srv.net.reads_processed.fetch_add(1, Ordering::Relaxed);
                if self.inbuf.len() > self.limits.query_buffer_limit {
                    warn!(
                        client = self.info.id,
                        addr = %self.info.addr,
                        qbuf = self.inbuf.len(),
                        "closing client that reached max query buffer length"
                    );
                    return Err(Close::Now);
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(_) => Err(Close::Gone),
        }
    }

    /// Queues a push: pub/sub frames (`Reply::Push`) always, as Redis 7.0 sends them even
    /// under `CLIENT REPLY OFF` (`CLIENT_PUSHING`); MONITOR lines only while replies are on.
    fn push(&mut self, msg: Reply) {
        if !matches!(msg, Reply::Push(_)) && self.sess.reply_mode == ReplyMode::Off {
            return;
        }
        encode(&mut self.out, &msg, self.sess.proto);
    }

    /// Queues every push already waiting, so frames a command produced for this client
    /// (its own MONITOR line, confirmations under `CLIENT REPLY OFF`) follow its reply and
    /// precede the next one, as they do in Redis's single output buffer.
    fn drain_pushes(&mut self) {
        // Only subscribers and monitors receive pushes; skip the channel poll for the rest
        // (anything left over is picked up by the connection loop).
        if !self.may_have_pushes {
            if self.sess.subscription_count() == 0 && !self.sess.monitor {
                return;
            }
            // Once a subscriber or monitor, always drain: messages may still be queued after
            // the last unsubscribe, and must come before the replies that follow it.
            self.may_have_pushes = true;
        }
        while let Ok(m) = self.push_rx.try_recv() {
            self.push(m);
        }
    }

    /// Closes a Pub/Sub client whose unsent output reached `client-output-buffer-limit
    /// pubsub` (Redis `checkClientOutputBufferLimits`: a subscriber that does not read must
    /// not grow memory without bound). Queued output is dropped, not flushed.
    fn check_output_limit(&mut self) -> Result<(), Close> {
        if self.sess.subscription_count() == 0 {
            return Ok(());
        }
        let now = std::time::Instant::now();
        let limit = self.srv.with_config(|c| OutputLimit::of_class(c, 2));
        if self.obuf_limit.exceeded(&limit, self.out.len(), now) {
            tracing::warn!(
                client = self.info.id,
                addr = %self.info.addr,
                "client scheduled to be closed asap for overcoming of output buffer limits"
            );
            return Err(Close::Gone);
        }
        Ok(())
    }

    /// Executes every complete request in the input buffer, then writes what it can.
    ///
    /// Requests decoded from one read run under a single engine lock acquisition (released
    /// only while a blocking command waits), so a pipelined batch costs one lock, not one
    /// per command, and is applied as a unit, as Redis's single thread would.
    async fn process_input(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<(), Close> {
        let mut queue = std::mem::take(&mut self.queue);
        let mut protocol_error = None;
        let mut pipelined = false;
        loop {
            // Before AUTH, requests are parsed one at a time: the unauthenticated limits must
            // stop applying as soon as an AUTH in the pipeline succeeds.
            let batch = if self.sess.authenticated {
                MAX_BATCH
            } else {
                1
            };
            while queue.len() < batch && protocol_error.is_none() {
                match self
                    .dec
                    .decode(&mut self.inbuf, &self.limits, self.sess.authenticated)
                {
                    Ok(Some(argv)) => queue.push_back(argv),
                    Ok(None) => break,
                    Err(e) => protocol_error = Some(e),
                }
            }
            if queue.is_empty() {
                break;
            }
            pipelined |= queue.len() > 1;
            let now = self.srv.clock.now_ms();
            self.info.last_active_ms.store(now, Ordering::Relaxed);
            self.sess.batch_now_ms = now;
            self.sess.mark = Some(std::time::Instant::now());
            let srv = self.srv.clone();
            let mut blocked = None;
            {
                let mut st = srv.engine.lock();
                if queue.len() > 1 {
                    if let Some(db) = st.ks.dbs.get(self.sess.db) {
                        db.prefetch(queue.iter().filter_map(|argv| argv.get(1)).map(|k| &k[..]));
                    }
                }
                let aof_before = st.stream.aof_offset();
                while let Some(argv) = queue.pop_front() {
                    if is_http_request(&argv[0]) {
                        drop(st);
                        security_warning(&self.info);
                        return Err(Close::Now);
                    }
                    let mode_before = self.sess.reply_mode;
                    self.drain_pushes();
                    let outcome = execute_locked(&srv, &mut st, &mut self.sess, argv);
                    if let Some(block) = outcome.block {
                        blocked = Some((block, mode_before));
                        break;
                    }
                    self.emit(&outcome.reply, mode_before);
                    if self.sess.close_after_reply || self.sess.sync.is_some() {
                        break;
                    }
                }
                if let Some(after) = st.stream.aof_offset() {
                    if Some(after) != aof_before {
                        self.aof_due = after;
                    }
                }
            }
            self.sess.batch_now_ms = 0;
            self.sess.mark = None;
            if let Some((block, mode_before)) = blocked {
                let reply = self.wait_block(block, shutdown).await?;
                if matches!(&reply, Reply::Error(e) if e == UNBLOCKED.as_bytes()) {
                    // Unblocked by a role change: answered, then closed, as Redis does.
                    self.sess.close_after_reply = true;
                }
                self.emit(&reply, mode_before);
            }
            if self.sess.close_after_reply {
                self.await_aof().await;
                self.flush().await?;
                return Err(Close::AfterFlush);
            }
            if self.sess.sync.is_some() {
                if !queue.is_empty() {
                    debug!(
                        client = self.info.id,
                        dropped = queue.len(),
                        "commands after SYNC ignored"
                    );
                }
                self.await_aof().await;
                self.flush().await?;
                return Err(Close::Replica);
            }
        }
        if let Some(e) = protocol_error {
            debug!(client = self.info.id, error = %e, "protocol error");
            self.out.extend_from_slice(&e.reply_bytes());
            self.srv.engine.lock().count_error("ERR");
            self.await_aof().await;
            self.flush().await?;
            return Err(Close::AfterFlush);
        }
        // Give back a buffer grown by a big request (Redis shrinks idle query buffers too).
        if self.inbuf.is_empty()
            && !self.dec.in_progress()
            && self.inbuf.capacity() > 4 * READ_CHUNK
        {
            self.inbuf = BytesMut::new();
        }
        self.info.qbuf.store(self.inbuf.len(), Ordering::Relaxed);
        // Empty here: every request decoded ran (the loop ends on an empty queue).
        self.queue = queue;
        self.await_aof().await;
        if pipelined && !self.out.is_empty() {
            // Let the other clients with input run their batches first, so replies leave in
            // a burst at the end of the turn, as Redis writes them in `beforeSleep`: a
            // pipelining peer then wakes once for many replies instead of once per client
            // (redis-benchmark -P16: 10-15% more requests/s). A lone command's reply goes at
            // once: there the extra scheduler turn cost more than it saved.
            tokio::task::yield_now().await;
        }
        self.try_write()?;
        self.check_output_limit()
    }

    /// Holds the replies until the AOF has this client's writes.
    async fn await_aof(&mut self) {
        if self.aof_due > 0 {
            self.srv.aof.wait_for_reply(self.aof_due).await;
            self.aof_due = 0;
        }
    }

    /// Queues a command's reply per the CLIENT REPLY mode in force before it ran, then any
    /// pushes it caused.
    fn emit(&mut self, reply: &Reply, mode_before: ReplyMode) {
        let send = match (mode_before, self.sess.reply_mode) {
            (ReplyMode::Skip, _) => {
                if self.sess.reply_mode == ReplyMode::Skip {
                    self.sess.reply_mode = ReplyMode::On;
                }
                false
            }
            (_, ReplyMode::On) => true,
            _ => false,
        };
        if send {
            encode(&mut self.out, reply, self.sess.proto);
        }
        self.drain_pushes();
    }

    /// Waits for a blocked command's reply, its timeout, the client leaving, or shutdown.
    async fn wait_block(
        &mut self,
        mut block: BlockRequest,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Reply, Close> {
        // Earlier replies go out as the socket allows, from the loop below: waiting here
        // for a client that writes before it reads would deadlock both sides.
        if let Err(close) = self.try_write() {
            self.unblock(block.waiter);
            return Err(close);
        }
        let deadline = block.timeout.map(|t| Instant::now() + t);
        // WAIT re-counts on every replica ACK. An ACK that came between WAIT's count and the
        // subscription would go unnoticed until the next one: count once more first.
        let mut acked = block.acks.map(|_| self.srv.repl.acked.subscribe());
        if let Some(n) = block.acks.and_then(|a| a.reached(&self.srv)) {
            self.unblock(block.waiter);
            return Ok(Reply::Int(n));
        }
        // Set when the client must go (killed, shutdown) rather than time out.
        let mut leaving = self.leaving(shutdown);
        while leaving.is_none() {
            let sleep = tokio::time::sleep_until(deadline.unwrap_or_else(far_future));
            tokio::select! {
                r = &mut block.rx => {
                    // Withdrawn without a reply (CLIENT UNBLOCK): answered as on timeout.
                    return Ok(r.unwrap_or_else(|_| self.timeout_reply(&block)));
                }
                changed = async {
                    match acked.as_mut() {
                        Some(rx) => rx.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                }, if acked.is_some() => {
                    if !changed {
                        acked = None;
                    } else if let Some(n) = block.acks.and_then(|a| a.reached(&self.srv)) {
                        self.unblock(block.waiter);
                        return Ok(Reply::Int(n));
                    }
                }
                _ = sleep, if deadline.is_some() => break,
                // A blocked RESP3 subscriber still receives its messages meanwhile.
                Some(msg) = self.push_rx.recv() => {
                    self.push(msg);
                    self.drain_pushes();
                    let r = self.try_write().and_then(|()| self.check_output_limit());
                    if r.is_err() {
                        self.unblock(block.waiter);
                    }
                    r?;
                }
                r = self.stream.writable(), if !self.out.is_empty() => {
                    let r = r.map_err(|_| Close::Gone).and_then(|()| self.try_write());
                    if r.is_err() {
                        self.unblock(block.waiter);
                    }
                    r?;
                }
                r = self.stream.readable() => {
                    let read = r.map_err(|_| Close::Gone).and_then(|_| self.read_some());
                    if let Err(close) = read {
                        self.unblock(block.waiter);
                        return Err(close);
                    }
                }
                _ = self.info.kill_notify.notified() => leaving = self.leaving(shutdown),
                _ = shutdown.changed() => leaving = self.leaving(shutdown),
            }
        }
        // Withdraw; a reply sent before the withdrawal still wins (it popped data for us).
        self.unblock(block.waiter);
        match (block.rx.try_recv(), leaving) {
            (Ok(r), _) => Ok(r),
            // Killed or shutting down: Redis frees a blocked client without a reply.
            (Err(_), Some(close)) => Err(close),
            (Err(_), None) => Ok(self.timeout_reply(&block)),
        }
    }

    /// Returns a blocked command's reply at its timeout: WAIT's is the count of replicas
    /// that acked by then (Redis `replyToBlockedClientTimedOut`).
    fn timeout_reply(&self, block: &BlockRequest) -> Reply {
        match block.acks {
            Some(a) => Reply::Int(a.count(&self.srv)),
            None => block.timeout_reply.clone(),
        }
    }

    /// Returns how the connection must end if it was killed or the server is stopping.
    fn leaving(&self, shutdown: &watch::Receiver<bool>) -> Option<Close> {
        if self.info.killed.load(Ordering::SeqCst) {
            Some(Close::Now)
        } else if *shutdown.borrow() {
            Some(Close::AfterFlush)
        } else {
            None
        }
    }

    fn unblock(&self, waiter: u64) {
        self.srv.engine.lock().blocked.remove(waiter);
    }

    fn try_write(&mut self) -> Result<(), Close> {
        while !self.out.is_empty() {
            match self.stream.try_write(&self.out) {
                Ok(n) => {
                    self.srv
                        .net
                        .net_output_bytes
                        .fetch_add(n as u64, Ordering::Relaxed);
                    self.srv
                        .net
                        .writes_processed
                        .fetch_add(1, Ordering::Relaxed);
                    self.out.advance(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return Err(Close::Gone),
            }
        }
        if self.out.is_empty() && self.out.capacity() > 1024 * 1024 {
            self.out = BytesMut::new();
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Close> {
        while !self.out.is_empty() {
            self.stream.writable().await.map_err(|_| Close::Gone)?;
            self.try_write()?;
        }
        Ok(())
    }

    /// Half-closes, then discards what the peer still sends until it closes too (at most
    /// [`LINGER`]): closing a socket with unread input makes the kernel send a reset, which
    /// may destroy replies the client has not read yet (the "lingering close" of web servers).
    async fn linger(&mut self) {
        if self.stream.shutdown().await.is_err() {
            return;
        }
        let mut sink = [0u8; 4096];
        let drain = async {
            loop {
                match self.stream.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        };
        // Past the limit the socket is closed all the same.
        tokio::time::timeout(LINGER, drain).await.unwrap_or(());
    }

    fn cleanup(&mut self) {
        let srv = self.srv.clone();
        with_ctx(&srv, &mut self.sess, |ctx| {
            crate::cmd::txn::unwatch_all(ctx);
            crate::cmd::pubsub::unsubscribe_all(ctx);
        });
        crate::cmd::monitor::stop(&srv, &mut self.sess);
        srv.clients.remove(self.sess.id);
    }
}

/// Returns the input limits the configuration sets.
fn limits_of(c: &Config) -> Limits {
    Limits {
        max_bulk_len: c.proto_max_bulk_len as usize,
        query_buffer_limit: c.client_query_buffer_limit as usize,
        ..Limits::default()
    }
}

/// Reports whether a request is an HTTP request line or header sent to the RESP port.
///
/// Redis 7.0 `processCommand` checks the first argument of every request, inline or
/// multibulk, for `host:` and `post` (case-insensitive) before looking the command up.
fn is_http_request(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"post") || name.eq_ignore_ascii_case(b"host:")
}

/// Logs Redis's `securityWarningCommand` line, at most once a minute (as Redis does).
fn security_warning(info: &ClientInfo) {
    static LAST_LOGGED: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST_LOGGED.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= 60
        && LAST_LOGGED
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        warn!(
            client = info.id,
            addr = %info.addr,
            "possible security attack detected: it looks like somebody is sending post or host: commands to redis, this is likely due to an attacker attempting to use cross protocol scripting to compromise your redis instance, connection aborted"
        );
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365)
}
