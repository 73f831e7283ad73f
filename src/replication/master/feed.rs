//! One attached replica (`shared/spec/redis.md` §2.3–2.4): partial or full resync, then the
//! write stream from the replica's position, PINGs from the cron, `REPLCONF ACK`s read back.
//!
//! The bytes come from the write stream's shared blocks ([`WriteStream::chunks_from`]) and
//! are written outside the engine lock; the replica's unread bytes are its output buffer,
//! bounded by `client-output-buffer-limit replica`: past it the replica is dropped (it
//! reconnects and resyncs), so the master never grows without bound.
//!
//! [`WriteStream::chunks_from`]: crate::replication::WriteStream::chunks_from

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::job::{self, Payload, Start};
use super::SyncRequest;
use crate::cmd::args::is;
use crate::cmd::pubsub::{OutputLimit, OutputLimitState};
use crate::replication::state::{new_replid, ReplicaInfo, ReplicaState};
use crate::resp::decode::RequestDecoder;
use crate::resp::Limits;
use crate::state::{ClientInfo, ServerState};

/// Runtime turns a replica's feed lets new writes gather before sending them.
const COALESCE_TURNS: usize = 2;

/// How often a waiting or streaming replica's limits are checked.
const TICK: Duration = Duration::from_millis(100);

/// Why a replica's link ended.
#[derive(Debug)]
enum End {
    /// Socket closed or failed.
    Lost,
    /// We dropped it (limit, timeout, kill, shutdown, failed snapshot, rdb-only done).
    Dropped,
}

/// What the replica sent back.
#[derive(Debug)]
enum Back {
    Ack(u64),
    Gone,
}

struct Link {
    srv: Arc<ServerState>,
    info: Arc<ClientInfo>,
    replica: Arc<ReplicaInfo>,
    out: OwnedWriteHalf,
    back: mpsc::UnboundedReceiver<Back>,
    /// Shown in log lines: `ip:listening-port`, as Redis's `replicationGetSlaveName`.
    name: String,
    limit: OutputLimitState,
    acked: bool,
    /// Paces the output-limit checks while a write waits on the socket.
    write_tick: tokio::time::Interval,
}

/// Serves a connection that sent SYNC/PSYNC, until the replica goes away.
pub async fn serve(
    srv: Arc<ServerState>,
    stream: TcpStream,
    inbuf: BytesMut,
    req: SyncRequest,
    info: Arc<ClientInfo>,
    shutdown: watch::Receiver<bool>,
) {
    let peer: SocketAddr = info.addr;
    let ip = req.hs.ip.unwrap_or(peer.ip());
    let name = format!("{ip}:{}", req.hs.listening_port);
    info!("Replica {name} asks for synchronization");
    let replica = Arc::new(ReplicaInfo::new(
        info.id,
        ip,
        req.hs.listening_port,
        srv.clock.now_ms(),
    ));
    info.set_flag('S', true);
    if let Ok(mut m) = srv.repl.replicas.lock() {
        m.insert(info.id, replica.clone());
    }
    srv.repl.no_replicas_since.store(0, Ordering::Relaxed);
    if let Err(e) = stream.set_nodelay(!srv.with_config(|c| c.repl_disable_tcp_nodelay)) {
        warn!(error = %e, "cannot set TCP_NODELAY on a replica link");
    }
    let (rd, out) = stream.into_split();
    let (back_tx, back) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_back(srv.clone(), rd, inbuf, back_tx));
    let mut link = Link {
        srv: srv.clone(),
        info: info.clone(),
        replica,
        out,
        back,
        name: name.clone(),
        limit: OutputLimitState::default(),
        acked: false,
        write_tick: tokio::time::interval(TICK),
    };
    let end = link.run(&req, shutdown).await;
    // Logged before the replica is unlinked, as Redis's `freeClient` does: whoever sees it
    // gone from INFO can already read why.
    match end {
        End::Lost => info!("Connection with replica {name} lost."),
        End::Dropped => info!("Replica {name} disconnected."),
    }
    reader.abort();
    {
        let mut st = srv.engine.lock();
        st.stream.remove_reader(info.id);
    }
    let none_left = srv.repl.replicas.lock().is_ok_and(|mut m| {
        m.remove(&info.id);
        m.is_empty()
    });
    if none_left {
        srv.repl
            .no_replicas_since
            .store(srv.clock.now_ms() / 1000, Ordering::Relaxed);
    }
    // The peer may be gone already; nothing to report then.
    link.out.shutdown().await.unwrap_or(());
}

/// Reads what the replica sends: `REPLCONF ACK <offset>` (anything else is ignored; Redis
/// replies to nothing else a replica sends on this link either).
async fn read_back(
    srv: Arc<ServerState>,
    mut rd: tokio::net::tcp::OwnedReadHalf,
    mut buf: BytesMut,
    tx: mpsc::UnboundedSender<Back>,
) {
    let mut dec = RequestDecoder::new();
    let limits = Limits::default();
    loop {
        loop {
            match dec.decode(&mut buf, &limits, true) {
                Ok(Some(argv)) => {
                    if argv.len() >= 3 && is(&argv[0], "replconf") && is(&argv[1], "ack") {
                        let off = std::str::from_utf8(&argv[2])
                            .ok()
                            .and_then(|s| s.parse::<u64>().ok());
                        if let Some(off) = off {
                            if tx.send(Back::Ack(off)).is_err() {
                                return;
                            }
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    tx.send(Back::Gone).unwrap_or(());
                    return;
                }
            }
        }
        buf.reserve(4096);
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => {
                tx.send(Back::Gone).unwrap_or(());
                return;
            }
            Ok(n) => {
                srv.net
                    .net_input_bytes
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
}

impl Link {
    async fn run(&mut self, req: &SyncRequest, mut shutdown: watch::Receiver<bool>) -> End {
        let from = match self.partial(req) {
            Some((from, line)) => {
                if let Err(e) = self.write(&line).await {
                    return e;
                }
                self.replica.set_state(ReplicaState::Online);
                from
            }
            None => match self.full(req, &mut shutdown).await {
                Ok(Some(from)) => from,
                Ok(None) => return End::Dropped,
                Err(e) => return e,
            },
        };
        self.stream(from).await
    }

    /// Accepts a partial resync when the id and offset allow it (Redis
    /// `masterTryPartialResynchronization`); returns where to stream from and the reply.
    fn partial(&mut self, req: &SyncRequest) -> Option<(u64, Vec<u8>)> {
        let (id, off) = req.psync.as_ref()?;
        let mut st = self.srv.engine.lock();
        self.create_backlog(&mut st);
        let ids = self.srv.repl.ids();
        let stats = &self.srv.repl.stats;
        if id == "?" {
            info!("Full resync requested by replica {}", self.name);
            return None;
        }
        let off = u64::try_from(*off).ok();
        let known = off.is_some_and(|o| ids.knows(id, o));
        if !known {
            info!(
                "Partial resynchronization not accepted: Replication ID mismatch (Replica asked for '{id}', my replication IDs are '{}' and '{}')",
                ids.replid, ids.replid2
            );
            stats.sync_partial_err.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        // PSYNC names the first byte the replica lacks, counting from 1 (Redis's backlog
        // offsets); the stream counts from 0.
        let off = off.unwrap_or(0).saturating_sub(1);
        let held =
            st.stream.is_active() && off >= st.stream.first_offset() && off <= st.stream.offset();
        if !held {
            info!(
                "Unable to partial resync with replica {} for lack of backlog (Replica request was: {}).",
                self.name,
                off + 1
            );
            stats.sync_partial_err.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        st.stream.add_reader(self.info.id, off);
        stats.sync_partial_ok.fetch_add(1, Ordering::Relaxed);
        info!(
            "Partial resynchronization request from {} accepted. Sending {} bytes of backlog starting from offset {}.",
            self.name,
            st.stream.offset() - off,
            off + 1
        );
        let line = if req.hs.capa_psync2 {
            format!("+CONTINUE {}\r\n", ids.replid)
        } else {
            "+CONTINUE\r\n".to_string()
        };
        Some((off, line.into_bytes()))
    }

    /// Starts recording the stream when the first replica attaches, with a new replication id
    /// (Redis `createReplicationBacklog` after `changeReplicationId`).
    fn create_backlog(&self, st: &mut crate::cmd::EngineState) {
        if st.stream.is_active() {
            return;
        }
        st.stream.activate();
        if let Ok(mut ids) = self.srv.repl.ids.lock() {
            ids.adopt(new_replid());
            info!(
                "Replication backlog created, my new replication IDs are '{}' and '{}'",
                ids.replid, ids.replid2
            );
        }
    }

    /// A full resync; returns where the stream continues, or `None` when the link ends
    /// after the snapshot (`rdb-only`).
    async fn full(
        &mut self,
        req: &SyncRequest,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Option<u64>, End> {
        self.srv
            .repl
            .stats
            .sync_full
            .fetch_add(1, Ordering::Relaxed);
        {
            let mut st = self.srv.engine.lock();
            self.create_backlog(&mut st);
        }
        let diskless = req.hs.rdb_filtered
            || (req.hs.capa_eof && self.srv.with_config(|c| c.repl_diskless_sync));
        let start = if req.hs.rdb_filtered {
            self.filtered_start()
        } else {
            let mut rx = job::enqueue(&self.srv, self.info.id, diskless);
            // A newline a second keeps the replica from timing out while it waits.
            let mut beat = tokio::time::interval(Duration::from_secs(1));
            beat.tick().await;
            loop {
                tokio::select! {
                    s = &mut rx => break s.map_err(|_| End::Dropped)?,
                    _ = beat.tick() => self.write(b"\n").await?,
                    Some(b) = self.back.recv() => match b {
                        Back::Gone => return Err(End::Lost),
                        Back::Ack(off) => self.ack(off),
                    },
                    _ = self.info.kill_notify.notified() => return Err(End::Dropped),
                    _ = shutdown.changed() => return Err(End::Dropped),
                }
            }
        };
        let Start {
            replid,
            offset,
            payload,
        } = start;
        if req.psync.is_some() {
            info!(
                "Full resync from master replid {replid} offset {offset} to replica {}",
                self.name
            );
            self.write(format!("+FULLRESYNC {replid} {offset}\r\n").as_bytes())
                .await?;
        }
        self.replica.set_state(ReplicaState::SendBulk);
        match payload {
            Payload::Stream(rx) => self.send_eof_framed(rx).await?,
            // The file goes once every replica sharing it is done (`SyncFile`'s drop).
            Payload::File(file, done) => self.send_file(file.path(), done).await?,
        }
        if req.hs.rdb_only {
            info!("Streamed RDB transfer with replica {} succeeded (socket). Closing the connection (rdb-only).", self.name);
            return Ok(None);
        }
        Ok(Some(offset))
    }

    /// `redis-cli --replica`'s snapshot: no keys, taken now.
    fn filtered_start(&self) -> Start {
        let (tx, rx) = mpsc::channel(2);
        let mut st = self.srv.engine.lock();
        let mut point = crate::persist::save::save_point(&self.srv, &st);
        point.snapshot = crate::store::Keyspace::new(st.ks.dbs.len()).snapshot();
        st.stream.reset_selected_db();
        let offset = st.stream.offset();
        st.stream.add_reader(self.info.id, offset);
        drop(st);
        let file = job::write_point(&self.srv, &point, Vec::new()).unwrap_or_default();
        // A fresh channel with room for both: these sends cannot fail.
        tx.try_send(Bytes::from(file)).unwrap_or(());
        tx.try_send(Bytes::new()).unwrap_or(());
        Start {
            replid: self.srv.repl.replid(),
            offset,
            payload: Payload::Stream(rx),
        }
    }

    /// `$EOF:<mark>\r\n` + RDB + mark; the stream starts only once the replica has ACKed
    /// (§2.3: it looks for the mark at the end of each read).
    async fn send_eof_framed(&mut self, mut rx: mpsc::Receiver<Bytes>) -> Result<(), End> {
        let mark = new_replid();
        self.write(format!("$EOF:{mark}\r\n").as_bytes()).await?;
        loop {
            let chunk = tokio::select! {
                c = rx.recv() => c,
                Some(b) = self.back.recv() => {
                    match b {
                        Back::Gone => return Err(End::Lost),
                        Back::Ack(off) => self.ack(off),
                    }
                    continue;
                }
            };
            match chunk {
                Some(c) if c.is_empty() => break,
                Some(c) => self.write(&c).await?,
                None => {
                    warn!("Diskless rdb transfer to replica {} failed", self.name);
                    return Err(End::Dropped);
                }
            }
        }
        self.write(mark.as_bytes()).await?;
        info!(
            "Streamed RDB transfer with replica {} succeeded (socket). Waiting for REPLCONF ACK from slave to enable streaming",
            self.name
        );
        while !self.acked {
            match self.back.recv().await {
                Some(Back::Ack(off)) => self.ack(off),
                Some(Back::Gone) | None => return Err(End::Lost),
            }
        }
        Ok(())
    }

    /// `$<len>\r\n` + the file, once it is complete (newlines meanwhile).
    async fn send_file(
        &mut self,
        path: &std::path::Path,
        mut done: watch::Receiver<Option<Result<u64, String>>>,
    ) -> Result<(), End> {
        let mut beat = tokio::time::interval(Duration::from_secs(1));
        beat.tick().await;
        let len = loop {
            if let Some(r) = done.borrow().clone() {
                break r;
            }
            tokio::select! {
                r = done.changed() => if r.is_err() { return Err(End::Dropped) },
                _ = beat.tick() => self.write(b"\n").await?,
            }
        };
        let len = len.map_err(|e| {
            warn!(replica = %self.name, error = %e, "BGSAVE for replication failed");
            End::Dropped
        })?;
        self.write(format!("${len}\r\n").as_bytes()).await?;
        // The file was just written: its pages are in the cache, reads do not wait on disk.
        let mut f = std::fs::File::open(path).map_err(|_| End::Dropped)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = std::io::Read::read(&mut f, &mut buf).map_err(|_| End::Dropped)?;
            if n == 0 {
                break;
            }
            self.write(&buf[..n]).await?;
        }
        Ok(())
    }

    fn ack(&mut self, off: u64) {
        self.acked = true;
        self.srv
            .repl
            .record_ack(self.info.id, off, self.srv.clock.now_ms());
    }

    /// Streams from `pos` until the replica goes or is dropped. Shutdown does not stop it:
    /// the link streams the clients' last writes and ends once released after the final
    /// save ([`release_replicas`]), with everything the dump holds sent.
    async fn stream(&mut self, mut pos: u64) -> End {
        if self.replica.state() != ReplicaState::Online {
            self.replica.set_state(ReplicaState::Online);
            info!("Synchronization with replica {} succeeded", self.name);
        }
        self.replica
            .ack_time_ms
            .store(self.srv.clock.now_ms(), Ordering::Relaxed);
        let mut end_rx = self.srv.engine.lock().stream.subscribe();
        let mut release = self.srv.repl.release.subscribe();
        let mut tick = tokio::time::interval(TICK);
        loop {
            let chunks = {
                let mut st = self.srv.engine.lock();
                st.stream.advance_reader(self.info.id, pos);
                st.stream.chunks_from(pos)
            };
            let Some(chunks) = chunks else {
                warn!("Replica {} fell out of the write stream", self.name);
                return End::Dropped;
            };
            for c in chunks {
                pos += c.len() as u64;
                if let Err(e) = self.write(&c).await {
                    return e;
                }
            }
            if *release.borrow_and_update() {
                return End::Dropped;
            }
            // Nothing new: wait for writes, acks, the tick.
            let current = *end_rx.borrow_and_update();
            if current > pos {
                continue;
            }
            tokio::select! {
                r = end_rx.changed() => {
                    if r.is_err() {
                        return End::Dropped;
                    }
                    // Let writes gather for a turn of the runtime: the clients' tasks that are
                    // ready run first, so one wake-up, one lock and one socket write carry
                    // many command batches at a million writes a second, while an idle master
                    // sends at once (Redis, too, writes to replicas once per event-loop turn).
                    // A timer would not do: tokio's is in whole milliseconds.
                    for _ in 0..COALESCE_TURNS {
                        tokio::task::yield_now().await;
                    }
                }
                b = self.back.recv() => match b {
                    Some(Back::Ack(off)) => self.ack(off),
                    Some(Back::Gone) | None => return End::Lost,
                },
                _ = tick.tick() => if let Some(e) = self.check_timeout() { return e },
                // Shutdown wakes every client too; only a kill ends the link here.
                _ = self.info.kill_notify.notified() => if self.info.killed.load(Ordering::SeqCst) {
                    return End::Dropped;
                },
                _ = release.changed() => {}
            }
        }
    }

    /// Drops a streaming replica silent for `repl-timeout` (Redis `replicationCron`).
    fn check_timeout(&self) -> Option<End> {
        let timeout = self.srv.with_config(|c| c.repl_timeout) as i64 * 1000;
        let last = self.replica.ack_time_ms.load(Ordering::Relaxed);
        if self.srv.clock.now_ms() - last > timeout {
            warn!(
                "Disconnecting timedout replica (streaming sync): {}",
                self.name
            );
            return Some(End::Dropped);
        }
        None
    }

    /// Drops a replica whose unread stream bytes passed `client-output-buffer-limit replica`.
    fn over_limit(&mut self) -> bool {
        let lag = self
            .srv
            .engine
            .lock()
            .stream
            .reader_lag(self.info.id)
            .unwrap_or(0);
        let limit = self.srv.with_config(|c| OutputLimit::of_class(c, 1));
        let over = self
            .limit
            .exceeded(&limit, lag as usize, std::time::Instant::now());
        if over {
            warn!(
                "Client {} scheduled to be closed ASAP for overcoming of output buffer limits.",
                self.name
            );
        }
        over
    }

    /// Writes to the replica. While the socket makes it wait, the output limit is checked
    /// every [`TICK`] and kills are seen: a replica that stops reading must not hold the
    /// master's memory. A write that completes at once needs no check (the replica keeps up).
    async fn write(&mut self, data: &[u8]) -> Result<(), End> {
        self.write_tick.reset();
        let info = self.info.clone();
        let mut written = 0;
        while written < data.len() {
            tokio::select! {
                r = self.out.write(&data[written..]) => match r {
                    Ok(0) | Err(_) => return Err(End::Lost),
                    Ok(n) => {
                        written += n;
                        self.srv.repl.stats.net_output_bytes.fetch_add(n as u64, Ordering::Relaxed);
                        self.srv.net.net_output_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    }
                },
                _ = self.write_tick.tick() => {
                    if self.over_limit() {
                        return Err(End::Dropped);
                    }
                }
                _ = info.kill_notify.notified() => if info.killed.load(Ordering::SeqCst) {
                    return Err(End::Dropped);
                },
            }
        }
        if self.info.killed.load(Ordering::SeqCst) {
            return Err(End::Dropped);
        }
        Ok(())
    }
}

// ---- SHUTDOWN ----

/// Lets the online replicas catch up before the final save (Redis 7.0 `prepareForShutdown`
/// and `isReadyToShutdown`; `limit` is `shutdown-timeout`, zero for SHUTDOWN NOW). Clients
/// can no longer write; unless every online replica has acked the end of the stream already,
/// a `REPLCONF GETACK *` goes out and this waits for their acks, at most `limit`. Then it
/// logs, as `finishShutdown`, how many are in sync. The dump then records the offset the
/// replicas hold, and after a restart they continue from it with a partial resync. A
/// replica's own replicas are left alone: its stream is its master's bytes.
pub async fn settle_replicas(srv: &ServerState, limit: Duration) {
    let end = |srv: &ServerState| srv.engine.lock().stream.offset();
    let ready = |target: u64| {
        srv.repl.replicas().iter().all(|r| {
            r.state() != ReplicaState::Online || r.ack_offset.load(Ordering::Acquire) >= target
        })
    };
    if srv.engine.lock().is_replica || srv.repl.replicas().is_empty() {
        return;
    }
    // `shutdown-timeout 0` or NOW: no wait, only the report below.
    if !limit.is_zero() && !ready(end(srv)) {
        crate::replication::wait::request_acks(&mut srv.engine.lock().stream);
        let target = end(srv);
        info!("Waiting for replicas before shutting down.");
        let mut acked = srv.repl.acked.subscribe();
        let wait = async {
            while !ready(target) {
                if acked.changed().await.is_err() {
                    return;
                }
            }
        };
        // Past the limit the save goes ahead; lagging replicas are logged below.
        tokio::time::timeout(limit, wait).await.unwrap_or(());
    }
    let target = end(srv);
    let replicas = srv.repl.replicas();
    let now = srv.clock.now_ms();
    let mut lagging = 0;
    for r in &replicas {
        let acked = r.ack_offset.load(Ordering::Acquire);
        if acked >= target {
            continue;
        }
        lagging += 1;
        let ip =
            r.ip.lock()
                .map(|ip| *ip)
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
        let lag = match r.state() {
            ReplicaState::Online => (now - r.ack_time_ms.load(Ordering::Relaxed)) / 1000,
            _ => 0,
        };
        warn!(
            "Lagging replica {ip}:{} reported offset {} behind master, lag={lag}, state={}.",
            r.listening_port.load(Ordering::Relaxed),
            target - acked,
            r.state().word()
        );
    }
    info!(
        "{} of {} replicas are in sync when shutting down.",
        replicas.len() - lagging,
        replicas.len()
    );
}

/// Ends the replica links once the final save is done (Redis `flushSlavesOutputBuffers` in
/// `finishShutdown`): each sends what it has left and closes. Waits for them at most
/// `limit`; a replica that stopped reading does not hold the exit.
pub async fn release_replicas(srv: &ServerState, limit: Duration) {
    srv.repl.release.send_replace(true);
    let gone = async {
        while !srv.repl.replicas.lock().map_or(true, |m| m.is_empty()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(limit, gone).await.unwrap_or(());
}

/// The master's part of the server cron: a PING into the stream every
/// `repl-ping-replica-period` while replicas are attached, and the backlog freed after
/// `repl-backlog-ttl` seconds without any (with a new replication id, as Redis).
pub fn cron(srv: &ServerState) {
    if srv.repl.is_following() {
        return;
    }
    let now = srv.clock.now_ms();
    let (period, ttl) = srv.with_config(|c| (c.repl_ping_replica_period, c.repl_backlog_ttl));
    let has_replicas = srv.repl.replicas.lock().is_ok_and(|m| !m.is_empty());
    if has_replicas {
        let last = srv.repl.last_ping_ms.load(Ordering::Relaxed);
        if now - last >= period as i64 * 1000 {
            srv.repl.last_ping_ms.store(now, Ordering::Relaxed);
            srv.engine.lock().stream.append_raw(b"*1\r\n$4\r\nping\r\n");
        }
        return;
    }
    let since = srv.repl.no_replicas_since.load(Ordering::Relaxed);
    if ttl > 0 && since > 0 && now / 1000 - since > ttl as i64 {
        let mut st = srv.engine.lock();
        if st.stream.is_active() {
            st.stream.deactivate();
            if let Ok(mut ids) = srv.repl.ids.lock() {
                ids.adopt(new_replid());
            }
            info!("Replication backlog freed after {ttl} seconds without connected replicas.");
        }
        srv.repl.no_replicas_since.store(0, Ordering::Relaxed);
    }
}
