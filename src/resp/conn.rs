//! One RESP client connection: read everything available, execute every complete request,
//! queue the replies, write them once per read batch.
//!
//! Reading never waits for writing: a client may pipeline megabytes of commands before it
//! reads a reply (fluent-plugin-redis sends whole chunks of MULTI/HMSET/EXPIRE/EXEC this way),
//! so replies queue in memory, as Redis does for normal clients, while reading goes on.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info};

use super::decode::{DecodeError, RequestDecoder};
use super::encode::encode;
use super::Limits;
use crate::cmd::exec::{execute, with_ctx, BlockRequest};
use crate::cmd::pubsub::{OutputLimit, OutputLimitState};
use crate::cmd::session::ReplyMode;
use crate::cmd::{Reply, Session};
use crate::state::{ClientInfo, ServerState};

const READ_CHUNK: usize = 16 * 1024;

/// Why a connection ended.
#[derive(Debug)]
enum Close {
    /// Peer closed or I/O failed.
    Gone,
    /// We close after flushing (QUIT, protocol error, kill, shutdown, idle).
    AfterFlush,
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
}

/// Serves one client until it disconnects, is killed, or the server shuts down.
pub async fn serve(
    srv: Arc<ServerState>,
    stream: TcpStream,
    info: Arc<ClientInfo>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (push_tx, push_rx) = mpsc::unbounded_channel();
    let (authenticated, limits) = srv.with_config(|c| {
        (
            c.requirepass.is_empty(),
            Limits {
                max_bulk_len: c.proto_max_bulk_len as usize,
                query_buffer_limit: c.client_query_buffer_limit as usize,
                ..Limits::default()
            },
        )
    });
    let sess = Session::client(info.id, authenticated, info.clone(), push_tx);
    let mut conn = Conn {
        srv: srv.clone(),
        stream,
        sess,
        info: info.clone(),
        inbuf: BytesMut::with_capacity(READ_CHUNK),
        out: BytesMut::new(),
        dec: RequestDecoder::new(),
        limits,
        push_rx,
        obuf_limit: OutputLimitState::default(),
    };
    let result = conn.run(&mut shutdown).await;
    debug!(client = info.id, ?result, "client closed");
    conn.cleanup();
}

impl Conn {
    async fn run(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<(), Close> {
        let mut idle_deadline = self.idle_deadline();
        loop {
            if self.info.killed.load(Ordering::SeqCst) || *shutdown.borrow() {
                self.flush().await?;
                return Err(Close::AfterFlush);
            }
            let sleep = tokio::time::sleep_until(idle_deadline.unwrap_or_else(far_future));
            tokio::select! {
                r = self.stream.readable() => {
                    r.map_err(|_| Close::Gone)?;
                    self.inbuf.reserve(READ_CHUNK);
                    match self.stream.try_read_buf(&mut self.inbuf) {
                        Ok(0) => return Err(Close::Gone),
                        Ok(n) => {
                            self.srv.net.net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
                            self.srv.net.reads_processed.fetch_add(1, Ordering::Relaxed);
                            idle_deadline = self.idle_deadline();
                            self.process_input(shutdown).await?;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => return Err(Close::Gone),
                    }
                }
                r = self.stream.writable(), if !self.out.is_empty() => {
                    r.map_err(|_| Close::Gone)?;
                    self.try_write()?;
                }
                Some(msg) = self.push_rx.recv() => {
                    self.push(msg);
                    self.drain_pushes();
                    self.try_write()?;
                    self.check_output_limit()?;
                }
                _ = self.info.kill_notify.notified() => {}
                _ = shutdown.changed() => {}
                _ = sleep, if idle_deadline.is_some() => {
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
        if self
            .obuf_limit
            .exceeded(&OutputLimit::PUBSUB, self.out.len(), now)
        {
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
    async fn process_input(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<(), Close> {
        loop {
            let decoded = self
                .dec
                .decode(&mut self.inbuf, &self.limits, self.sess.authenticated);
            let argv = match decoded {
                Ok(Some(argv)) => argv,
                Ok(None) => break,
                Err(DecodeError::Protocol(text)) => {
                    debug!(client = self.info.id, error = %text, "protocol error");
                    let reply = Reply::Error(format!("ERR Protocol error: {text}"));
                    encode(&mut self.out, &reply, self.sess.proto);
                    self.srv.engine.lock().count_error("ERR");
                    self.flush().await?;
                    return Err(Close::AfterFlush);
                }
                Err(DecodeError::CrossProtocol) => {
                    tracing::warn!(client = self.info.id, addr = %self.info.addr,
                        "possible security attack detected: http request on the resp port, connection aborted");
                    return Err(Close::Gone);
                }
            };
            self.info
                .last_active_ms
                .store(self.srv.clock.now_ms(), Ordering::Relaxed);
            let mode_before = self.sess.reply_mode;
            self.drain_pushes();
            let outcome = execute(&self.srv, &mut self.sess, argv);
            let reply = match outcome.block {
                Some(block) => self.wait_block(block, shutdown).await?,
                None => outcome.reply,
            };
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
                encode(&mut self.out, &reply, self.sess.proto);
            }
            self.drain_pushes();
            if self.sess.close_after_reply {
                self.flush().await?;
                return Err(Close::AfterFlush);
            }
        }
        if self.inbuf.len() > self.limits.query_buffer_limit {
            tracing::warn!(
                client = self.info.id,
                "closing client that reached max query buffer length"
            );
            return Err(Close::Gone);
        }
        self.info.qbuf.store(self.inbuf.len(), Ordering::Relaxed);
        self.try_write()?;
        self.check_output_limit()
    }

    /// Waits for a blocked command's reply, its timeout, the client leaving, or shutdown.
    async fn wait_block(
        &mut self,
        mut block: BlockRequest,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Reply, Close> {
        self.flush().await?;
        let deadline = block.timeout.map(|t| Instant::now() + t);
        loop {
            let sleep = tokio::time::sleep_until(deadline.unwrap_or_else(far_future));
            tokio::select! {
                r = &mut block.rx => {
                    return Ok(r.unwrap_or(block.timeout_reply));
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
                    r.map_err(|_| Close::Gone)?;
                    self.inbuf.reserve(READ_CHUNK);
                    match self.stream.try_read_buf(&mut self.inbuf) {
                        Ok(0) => {
                            self.unblock(block.waiter);
                            return Err(Close::Gone);
                        }
                        Ok(n) => {
                            self.srv.net.net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => {
                            self.unblock(block.waiter);
                            return Err(Close::Gone);
                        }
                    }
                }
                _ = self.info.kill_notify.notified() => break,
                _ = shutdown.changed() => break,
            }
        }
        // Withdraw; a reply sent before the withdrawal still wins (it popped data for us).
        self.unblock(block.waiter);
        match block.rx.try_recv() {
            Ok(r) => Ok(r),
            Err(_) => Ok(block.timeout_reply),
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

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365)
}
