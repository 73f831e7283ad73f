//! One forward connection: optional handshake, then requests in, acks out, in order
//! (`shared/spec/fluent.md` §1.1, §1.6–1.8, §2.2, §2b.2).
//!
//! - The buffer holds at most one request beyond `chunk_size_limit`'s check: a request
//!   whose header announces more is refused before its bytes arrive, and the connection
//!   closes (the framing cannot be trusted past a value kura will not read).
//! - Complete requests are handled in order; their acks are written together, one
//!   `write_all`, never interleaved with anything else (fluentd reads acks with one
//!   `recv(512)` and Fluent Bit compares them byte for byte).
//! - Requests are pipelined: each large one is decoded and mapped on the blocking pool as
//!   soon as it is complete, several at once, while earlier ones are stored; storing and
//!   acking stay in arrival order. In-flight requests are bounded (count and bytes), and
//!   reading stops at the bound, so a fast sender meets TCP back-pressure, not a growing
//!   buffer.
//! - When the store refuses for now, the connection keeps the request, stops reading
//!   (TCP back-pressure) and retries with backoff, instead of buffering more.
//! - At EOF (fluentd without acks half-closes right after writing), every complete request
//!   already received is still stored.
//! - A peer that connects and closes without sending anything is fluentd's TCP
//!   heartbeat: logged at debug only. A peer that closes mid-request gets nothing stored.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info};

use super::handshake::Handshake;
use super::ingest::{self, commit, prepare, Due, Prepared, Verdict};
use super::msgpack::{Scan, Scanner};
use super::{ConnSlot, Forward};

/// Bytes asked of the socket per read when no large request is pending.
const READ_SIZE: usize = 1024 * 1024;

/// Reading pauses while this many bytes of requests wait for the worker (one request
/// larger than this is still read alone).
const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;

/// Longest wait between retries of a request the store refused.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(1);

/// The requests of one connection waiting to be handled, and the flags its worker obeys.
///
/// A connection's requests are handled in order by one worker task on the blocking pool
/// (decoding and mapping are CPU work that must not stall the I/O thread, and two
/// connections then use two cores). The worker runs while requests are queued and exits
/// when the queue is empty; each verdict goes back to the connection as soon as it is
/// known, so acks leave one by one while the next requests are being handled and the
/// sender never waits for a whole batch.
#[derive(Default)]
struct Pipe {
    queue: Mutex<VecDeque<(Bytes, Instant)>>,
    /// Bytes in `queue` plus the request being handled.
    queued_bytes: AtomicUsize,
    /// A worker task is running.
    running: AtomicBool,
    /// The connection is gone or closing: the worker stops.
    stop: AtomicBool,
}

/// What the worker reports for a request.
enum Report {
    /// A request was handled.
    Done(Verdict, Instant),
    /// The store refuses for now; the worker holds the request and retries.
    Refused,
}

impl Pipe {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Bytes, Instant)>> {
        match self.queue.lock() {
            Ok(q) => q,
            Err(p) => p.into_inner(),
        }
    }

    /// Queues requests and makes sure a worker runs.
    fn push(
        self: &Arc<Self>,
        fwd: &Arc<Forward>,
        frames: &mut VecDeque<(Bytes, Instant)>,
        tx: &mpsc::UnboundedSender<Report>,
    ) {
        if frames.is_empty() {
            return;
        }
        let bytes: usize = frames.iter().map(|(f, _)| f.len()).sum();
        self.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        self.lock().extend(frames.drain(..));
        if !self.running.swap(true, Ordering::AcqRel) {
            let (pipe, fwd, tx) = (self.clone(), fwd.clone(), tx.clone());
            tokio::task::spawn_blocking(move || pipe.work(&fwd, &tx));
        }
    }

    /// The worker: handles queued requests in order until none is left.
    fn work(&self, fwd: &Forward, tx: &mpsc::UnboundedSender<Report>) {
        loop {
            if self.stop.load(Ordering::Acquire) {
                self.running.store(false, Ordering::Release);
                return;
            }
            let next = self.lock().pop_front();
            let Some((frame, at)) = next else {
                self.running.store(false, Ordering::Release);
                // A request queued between the pop and the flag would wait for the next
                // push: take the worker role back if so.
                if self.lock().is_empty() || self.running.swap(true, Ordering::AcqRel) {
                    return;
                }
                continue;
            };
            let bytes = frame.len();
            let verdict = match prepare(fwd, frame) {
                Prepared::Settled(v) => v,
                Prepared::Store(batch) => match self.commit_patiently(fwd, batch, tx) {
                    Some(v) => v,
                    None => {
                        self.running.store(false, Ordering::Release);
                        return;
                    }
                },
            };
            self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            if tx.send(Report::Done(verdict, at)).is_err() {
                self.stop.store(true, Ordering::Release);
            }
        }
    }

    /// Commits a batch, waiting with backoff while the store refuses it (the connection
    /// meanwhile stops reading); `None` when the connection went away meanwhile.
    fn commit_patiently(
        &self,
        fwd: &Forward,
        mut batch: ingest::Batch,
        tx: &mpsc::UnboundedSender<Report>,
    ) -> Option<Verdict> {
        let mut wait = Duration::from_millis(50);
        loop {
            match commit(fwd, batch) {
                Ok(v) => return Some(v),
                Err(b) => batch = b,
            }
            if tx.send(Report::Refused).is_err() || self.stop.load(Ordering::Acquire) {
                return None;
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(MAX_RETRY_WAIT);
        }
    }
}

/// How long a closing connection waits for the fsync or the replica acks its held acks need.
const SHUTDOWN_ACK_WAIT: Duration = Duration::from_secs(2);

/// Acks waiting for their condition, in request order.
type Held = VecDeque<(Due, Vec<u8>, Instant)>;

/// Reports whether an ack held for `due` may go out: the AOF is fsynced up to `fsynced`,
/// replicas acked what `Repl` says.
fn covered(fwd: &Forward, due: Due, fsynced: u64) -> bool {
    match due {
        Due::Now => true,
        Due::Fsynced(o) => o <= fsynced,
        Due::Replicated(o) => fwd.srv.repl.acked_at_least(o) >= fwd.cfg.ack_replicas,
    }
}

/// Moves the held acks whose condition holds, from the front, to the ones to write.
fn release(
    fwd: &Forward,
    held: &mut Held,
    fsynced: u64,
    acks: &mut Vec<u8>,
    times: &mut Vec<Instant>,
) {
    while held.front().is_some_and(|h| covered(fwd, h.0, fsynced)) {
        if let Some((_, a, at)) = held.pop_front() {
            acks.extend_from_slice(&a);
            times.push(at);
        }
    }
}

/// Why a connection ends early.
enum End {
    /// The peer closed (or reset) the connection.
    Closed,
    /// Shutdown was requested.
    Shutdown,
    /// No byte for `idle_timeout`.
    Idle,
    /// Something to log at warn level.
    Refused(String),
}

struct Conn {
    fwd: Arc<Forward>,
    stream: TcpStream,
    peer: SocketAddr,
    buf: BytesMut,
    scanner: Scanner,
    shutdown: watch::Receiver<bool>,
    /// Bytes received so far, to tell a heartbeat probe from a real client.
    received: u64,
}

/// Serves one accepted connection until it closes.
pub async fn serve(
    fwd: Arc<Forward>,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
    slot: ConnSlot,
    drain: mpsc::Sender<()>,
) {
    let mut conn = Conn {
        fwd,
        stream,
        peer,
        buf: BytesMut::with_capacity(READ_SIZE),
        scanner: Scanner::new(),
        shutdown,
        received: 0,
    };
    let end = conn.run().await;
    match end {
        End::Closed if conn.received == 0 => debug!(%peer, "forward heartbeat connection"),
        End::Closed if !conn.buf.is_empty() => info!(
            %peer,
            bytes = conn.buf.len(),
            "forward client closed in the middle of a request: nothing of it stored, no ack"
        ),
        End::Closed => debug!(%peer, "forward client closed the connection"),
        End::Shutdown => debug!(%peer, "forward connection closed for shutdown"),
        End::Idle => debug!(%peer, "forward connection idle for idle_timeout: closed"),
        End::Refused(why) => conn.fwd.warn(
            "connection_closed",
            format_args!("closing forward connection from {peer}: {why}"),
        ),
    }
    drop(slot);
    drop(drain);
}

impl Conn {
    async fn run(&mut self) -> End {
        if self.fwd.srv.is_read_only_replica() || self.fwd.srv.repl.is_following() {
            return End::Refused(
                "this server is a read-only replica: forward to the master instead".into(),
            );
        }
        if !self.fwd.cfg.shared_key.is_empty() {
            if let Err(end) = self.handshake().await {
                return end;
            }
        }
        let mut shutdown = self.shutdown.clone();
        let pipe = Arc::new(Pipe::default());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let end = self.transport(&pipe, &tx, &mut rx, &mut shutdown).await;
        pipe.stop.store(true, Ordering::Release);
        end
    }

    /// The transport phase: reads requests into the pipe, writes acks as verdicts come.
    async fn transport(
        &mut self,
        pipe: &Arc<Pipe>,
        tx: &mpsc::UnboundedSender<Report>,
        rx: &mut mpsc::UnboundedReceiver<Report>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> End {
        let mut frames = VecDeque::new();
        let mut pending = 0usize;
        let mut eof = false;
        let mut refused = false;
        let mut acks = Vec::new();
        let mut times = Vec::new();
        // Acks waiting for the AOF's fsync (`ack_after = "fsynced"`) or for replicas
        // (`"replicated"`), in order.
        let mut held: Held = VecDeque::new();
        let mut fsynced = self.fwd.srv.aof.shared.fsynced.subscribe();
        let mut acked = self.fwd.srv.repl.acked.subscribe();
        loop {
            if let Err(end) = self.cut_frames(&mut frames) {
                return end;
            }
            pending += frames.len();
            pipe.push(&self.fwd, &mut frames, tx);
            if eof && pending == 0 && held.is_empty() {
                return End::Closed;
            }
            let head = held.front().map(|h| h.0);
            let head_fsync = match head {
                Some(Due::Fsynced(o)) => Some(o),
                _ => None,
            };
            let head_replicated = matches!(head, Some(Due::Replicated(_)));
            let may_read =
                !eof && !refused && pipe.queued_bytes.load(Ordering::Acquire) < MAX_QUEUED_BYTES;
            tokio::select! {
                report = rx.recv() => {
                    let mut next = report;
                    let mut close = None;
                    // Take every verdict already there: their acks leave in one write.
                    while let Some(r) = next {
                        match r {
                            Report::Refused => {
                                refused = true;
                                self.fwd.warn(
                                    "store_refused",
                                    format_args!(
                                        "store refused a forward chunk (memory limit, \
                                         loading, or failing saves): holding it and not \
                                         reading from {} until it can be stored",
                                        self.peer
                                    ),
                                );
                            }
                            Report::Done(verdict, at) => {
                                refused = false;
                                pending = pending.saturating_sub(1);
                                match verdict {
                                    Verdict::Silent => {}
                                    Verdict::Ack(a, due) if due != Due::Now || !held.is_empty() => {
                                        held.push_back((due, a, at));
                                    }
                                    Verdict::Ack(a, _) => {
                                        acks.extend_from_slice(&a);
                                        times.push(at);
                                    }
                                    Verdict::Close(why) => close = Some(why),
                                }
                                // deny_keepalive: one request per connection (§1.7).
                                if self.fwd.cfg.deny_keepalive {
                                    pipe.stop.store(true, Ordering::Release);
                                    close.get_or_insert_with(String::new);
                                }
                            }
                        }
                        if close.is_some() {
                            break;
                        }
                        next = rx.try_recv().ok();
                    }
                    let fsynced_now = self.fwd.srv.aof.fsynced();
                    release(&self.fwd, &mut held, fsynced_now, &mut acks, &mut times);
                    if self.write_acks(&mut acks, &mut times).await.is_err() {
                        return End::Closed;
                    }
                    match close {
                        Some(why) if why.is_empty() => return End::Closed,
                        Some(why) => return End::Refused(why),
                        None => {}
                    }
                }
                r = self.read_more(), if may_read => match r {
                    Ok(()) => {}
                    // Half-closed or reset: what was received completely still counts.
                    Err(End::Closed) => eof = true,
                    Err(end) => return end,
                },
                reached = async {
                    let head = head_fsync.unwrap_or(u64::MAX);
                    fsynced.wait_for(|&o| o >= head).await.map_or(0, |o| *o)
                }, if head_fsync.is_some() => {
                    release(&self.fwd, &mut held, reached, &mut acks, &mut times);
                    if self.write_acks(&mut acks, &mut times).await.is_err() {
                        return End::Closed;
                    }
                }
                // A replica acked: the head may be covered now.
                r = acked.changed(), if head_replicated => {
                    if r.is_err() {
                        return End::Shutdown;
                    }
                    let fsynced_now = self.fwd.srv.aof.fsynced();
                    release(&self.fwd, &mut held, fsynced_now, &mut acks, &mut times);
                    if self.write_acks(&mut acks, &mut times).await.is_err() {
                        return End::Closed;
                    }
                }
                _ = shutdown.changed() => {
                    // Acks whose records reach the disk in the final fsync window, or the
                    // replicas shortly, still go out, so the sender does not resend what
                    // is stored; the others are dropped (the sender resends them).
                    if let Some(&(last, _, _)) = held.back() {
                        let fwd = self.fwd.clone();
                        let wait = async {
                            while !covered(&fwd, last, fwd.srv.aof.fsynced()) {
                                let gone = tokio::select! {
                                    r = fsynced.changed() => r.is_err(),
                                    r = acked.changed() => r.is_err(),
                                };
                                if gone {
                                    break;
                                }
                            }
                        };
                        // No wait for replicas that are not there.
                        let hopeless = matches!(last, Due::Replicated(_))
                            && fwd.srv.repl.acked_at_least(0) < fwd.cfg.ack_replicas;
                        if !hopeless {
                            tokio::time::timeout(SHUTDOWN_ACK_WAIT, wait).await.ok();
                        }
                        let fsynced_now = fwd.srv.aof.fsynced();
                        release(&fwd, &mut held, fsynced_now, &mut acks, &mut times);
                        self.write_acks(&mut acks, &mut times).await.ok();
                    }
                    return End::Shutdown;
                }
            }
        }
    }

    /// Writes the acks gathered (one write), recording their latency.
    async fn write_acks(&mut self, acks: &mut Vec<u8>, times: &mut Vec<Instant>) -> Result<(), ()> {
        if acks.is_empty() {
            return Ok(());
        }
        self.stream.write_all(acks).await.map_err(|_| ())?;
        let hist = &self.fwd.srv.metrics.forward.ack_latency;
        for at in times.drain(..) {
            hist.observe(at.elapsed().as_secs_f64());
        }
        acks.clear();
        Ok(())
    }

    /// Moves every complete request out of the buffer.
    fn cut_frames(&mut self, pending: &mut VecDeque<(Bytes, Instant)>) -> Result<(), End> {
        let limit = self.fwd.cfg.chunk_size_limit;
        loop {
            if self.buf.is_empty() {
                return Ok(());
            }
            match self.scanner.scan(&self.buf) {
                Ok(Scan::Complete(n)) => {
                    pending.push_back((self.buf.split_to(n).freeze(), Instant::now()));
                }
                Ok(Scan::Incomplete(need)) => {
                    if need as u64 > limit {
                        self.fwd
                            .srv
                            .metrics
                            .forward
                            .decode_errors
                            .with_label_values(&["oversized"])
                            .inc();
                        return Err(End::Refused(format!(
                            "a request of at least {need} bytes exceeds chunk_size_limit \
                             ({limit}): not read, not acked"
                        )));
                    }
                    if need > self.buf.capacity() {
                        self.buf.reserve(need - self.buf.len());
                    }
                    return Ok(());
                }
                Err(e) => {
                    self.fwd
                        .srv
                        .metrics
                        .forward
                        .decode_errors
                        .with_label_values(&["framing"])
                        .inc();
                    return Err(End::Refused(format!("undecodable stream ({e})")));
                }
            }
        }
    }

    /// Reads what the socket has, within the idle timeout (callers also watch shutdown).
    async fn read_more(&mut self) -> Result<(), End> {
        if self.buf.capacity() - self.buf.len() < READ_SIZE / 4 {
            self.buf.reserve(READ_SIZE);
        }
        let first = self.received == 0;
        let idle = self.fwd.cfg.idle_timeout;
        let read = self.stream.read_buf(&mut self.buf);
        let r = if idle == 0 {
            Ok(read.await)
        } else {
            tokio::time::timeout(Duration::from_secs(idle), read).await
        };
        let n = match r {
            Err(_) => return Err(End::Idle),
            Ok(Ok(0)) | Ok(Err(_)) => return Err(End::Closed),
            Ok(Ok(n)) => n,
        };
        self.received += n as u64;
        // fluentd's JSON variant starts with '{' or '['; msgpack requests never do (those
        // bytes are fixints). Refuse it clearly rather than counting garbage.
        if first && matches!(self.buf.first(), Some(b'{' | b'[')) {
            return Err(End::Refused(
                "the JSON variant of the forward protocol is not supported: send msgpack".into(),
            ));
        }
        Ok(())
    }

    /// Sends HELO, reads the PING, answers PONG; a failed handshake closes (§1.6).
    async fn handshake(&mut self) -> Result<(), End> {
        let mut shutdown = self.shutdown.clone();
        let users: Vec<(Vec<u8>, Vec<u8>)> = self
            .fwd
            .cfg
            .users
            .iter()
            .map(|u| {
                (
                    u.username.clone().into_bytes(),
                    u.password.clone().into_bytes(),
                )
            })
            .collect();
        let hs = Handshake::new(
            self.fwd.cfg.shared_key.as_bytes(),
            self.fwd.cfg.self_hostname.as_bytes(),
            &users,
            !self.fwd.cfg.deny_keepalive,
            &mut rand::thread_rng(),
        );
        if self.stream.write_all(&hs.helo()).await.is_err() {
            return Err(End::Closed);
        }
        let ping = loop {
            let mut one = VecDeque::new();
            self.cut_frames(&mut one)?;
            if let Some((frame, _)) = one.pop_front() {
                // Anything after the PING waits for the transport phase.
                let mut rest = BytesMut::new();
                for (f, _) in one {
                    rest.extend_from_slice(&f);
                }
                rest.extend_from_slice(&self.buf);
                self.buf = rest;
                break frame;
            }
            tokio::select! {
                r = self.read_more() => r?,
                _ = shutdown.changed() => return Err(End::Shutdown),
            }
        };
        let out = hs.check_ping(&ping, &self.peer.ip().to_string());
        let written = self.stream.write_all(&out.pong).await;
        if !out.accepted {
            self.fwd.srv.metrics.forward.auth_failures.inc();
            if let Err(e) = self.stream.shutdown().await {
                debug!(peer = %self.peer, error = %e, "cannot shut down after a refused handshake");
            }
            return Err(End::Refused(format!("handshake failed: {}", out.reason)));
        }
        if written.is_err() {
            return Err(End::Closed);
        }
        Ok(())
    }
}
