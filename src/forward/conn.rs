//! One forward connection: optional handshake, then requests in, acks out, in order
//! (`shared/spec/fluent.md` §1.1, §1.6–1.8, §2.2, §2b.2).
//!
//! - The buffer holds at most one request beyond `chunk_size_limit`'s check: a request
//!   whose header announces more is refused before its bytes arrive, and the connection
//!   closes (the framing cannot be trusted past a value kura will not read).
//! - Complete requests are handled in order; their acks are written together, one
//!   `write_all`, never interleaved with anything else (fluentd reads acks with one
//!   `recv(512)` and Fluent Bit compares them byte for byte).
//! - Large batches are decoded and mapped on the blocking pool, so the I/O thread keeps
//!   serving other connections and a second core can decode while the first applies.
//! - When the store refuses for now, the connection keeps the request, stops reading
//!   (TCP back-pressure) and retries with backoff, instead of buffering more.
//! - A peer that connects and closes without sending anything is fluentd's TCP
//!   heartbeat: logged at debug only. A peer that closes mid-request gets nothing stored.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info};

use super::handshake::Handshake;
use super::ingest::{ingest, Verdict};
use super::msgpack::{Scan, Scanner};
use super::{ConnSlot, Forward};

/// Bytes asked of the socket per read when no large request is pending.
const READ_SIZE: usize = 1024 * 1024;

/// Batches at least this large are decoded on the blocking pool.
const OFFLOAD_BYTES: usize = 64 * 1024;

/// Longest wait between retries of a request the store refused.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(1);

/// A request waiting to be handled, with when its last byte arrived (for ack latency).
type Pending = VecDeque<(Bytes, Instant)>;

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
        if self.fwd.srv.is_read_only_replica() {
            return End::Refused(
                "this server is a read-only replica: forward to the master instead".into(),
            );
        }
        if !self.fwd.cfg.shared_key.is_empty() {
            if let Err(end) = self.handshake().await {
                return end;
            }
        }
        let mut pending: Pending = VecDeque::new();
        loop {
            if let Err(end) = self.cut_frames(&mut pending) {
                return end;
            }
            if !pending.is_empty() {
                if let Err(end) = self.handle(&mut pending).await {
                    return end;
                }
                // deny_keepalive: one request per connection (fluentd in_forward §1.7).
                if self.fwd.cfg.deny_keepalive {
                    return End::Closed;
                }
            }
            if let Err(end) = self.read_more().await {
                return end;
            }
        }
    }

    /// Moves every complete request out of the buffer.
    fn cut_frames(&mut self, pending: &mut Pending) -> Result<(), End> {
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

    /// Reads what the socket has, within the idle timeout, unless shutting down.
    async fn read_more(&mut self) -> Result<(), End> {
        if self.buf.capacity() - self.buf.len() < READ_SIZE / 4 {
            self.buf.reserve(READ_SIZE);
        }
        let first = self.received == 0;
        let idle = self.fwd.cfg.idle_timeout;
        let read = self.stream.read_buf(&mut self.buf);
        let n = tokio::select! {
            r = async {
                if idle == 0 {
                    Ok(read.await)
                } else {
                    tokio::time::timeout(Duration::from_secs(idle), read).await
                }
            } => match r {
                Err(_) => return Err(End::Idle),
                Ok(Ok(0)) | Ok(Err(_)) => return Err(End::Closed),
                Ok(Ok(n)) => n,
            },
            _ = self.shutdown.changed() => return Err(End::Shutdown),
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

    /// Handles the pending requests in order and writes their acks.
    async fn handle(&mut self, pending: &mut Pending) -> Result<(), End> {
        let mut wait = Duration::from_millis(50);
        while !pending.is_empty() {
            let size: usize = pending.iter().map(|(f, _)| f.len()).sum();
            let batch = std::mem::take(pending);
            let (verdicts, rest) = if size >= OFFLOAD_BYTES {
                let fwd = self.fwd.clone();
                match tokio::task::spawn_blocking(move || run_batch(&fwd, batch)).await {
                    Ok(r) => r,
                    Err(e) => return Err(End::Refused(format!("request handling failed: {e}"))),
                }
            } else {
                run_batch(&self.fwd, batch)
            };
            *pending = rest;
            let mut acks = Vec::new();
            let mut times = Vec::new();
            let mut stop = None;
            for (v, at) in verdicts {
                match v {
                    Verdict::Silent => {}
                    Verdict::Ack(a) => {
                        acks.extend_from_slice(&a);
                        times.push(at);
                    }
                    Verdict::Retry(reason) => stop = Some(Ok(reason)),
                    Verdict::Close(why) => stop = Some(Err(why)),
                }
            }
            if !acks.is_empty() {
                if self.stream.write_all(&acks).await.is_err() {
                    return Err(End::Closed);
                }
                let hist = &self.fwd.srv.metrics.forward.ack_latency;
                for at in times {
                    hist.observe(at.elapsed().as_secs_f64());
                }
            }
            match stop {
                None => {}
                Some(Err(why)) => return Err(End::Refused(why)),
                Some(Ok(reason)) => {
                    self.fwd.warn(
                        "store_refused",
                        format_args!(
                            "store refused a forward chunk ({reason}): holding it and \
                             not reading from {} until it can be stored",
                            self.peer
                        ),
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.shutdown.changed() => return Err(End::Shutdown),
                    }
                    wait = (wait * 2).min(MAX_RETRY_WAIT);
                }
            }
        }
        Ok(())
    }

    /// Sends HELO, reads the PING, answers PONG; a failed handshake closes (§1.6).
    async fn handshake(&mut self) -> Result<(), End> {
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
            self.read_more().await?;
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

/// Handles requests in order until one must wait (Retry) or end the connection (Close);
/// returns the verdicts so far and the requests not handled yet (the stopping one first).
fn run_batch(fwd: &Forward, mut batch: Pending) -> (Vec<(Verdict, Instant)>, Pending) {
    let mut verdicts = Vec::with_capacity(batch.len());
    while let Some((frame, at)) = batch.pop_front() {
        let v = ingest(fwd, frame.clone());
        let stop = matches!(v, Verdict::Retry(_) | Verdict::Close(_));
        if matches!(v, Verdict::Retry(_)) {
            batch.push_front((frame, at));
        }
        verdicts.push((v, at));
        if stop {
            break;
        }
    }
    (verdicts, batch)
}
