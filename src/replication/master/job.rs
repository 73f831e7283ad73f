//! Full resyncs (`shared/spec/redis.md` §2.3): a point-in-time snapshot taken under the engine
//! lock at exactly the offset sent in `+FULLRESYNC`, serialised in the background by the one
//! RDB writer while writers go on. Diskless syncs wait `repl-diskless-sync-delay` seconds so
//! replicas that attach together share one snapshot, whose bytes fan out to each of them.
//! Disk syncs (`repl-diskless-sync no`, or a replica without `capa eof`) write a file in
//! `dir` and send it with `$<len>` framing; a replica that asks while one is being written
//! joins it, as Redis attaches it to the running BGSAVE ("Waiting for end of BGSAVE for
//! SYNC"), so replicas attaching together cost one file.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use crate::persist::rdb::encode::WriteOpts;
use crate::persist::rdb::writer::write_rdb;
use crate::persist::save::{save_point, SavePoint};
use crate::state::ServerState;

/// Bytes per chunk sent to the replicas of a diskless sync.
const CHUNK: usize = 64 * 1024;

/// How a replica receives its snapshot.
#[derive(Debug)]
pub enum Payload {
    /// Diskless: the RDB's bytes as they are written; an empty chunk marks a complete file
    /// (the channel closing without it means the save failed).
    Stream(mpsc::Receiver<Bytes>),
    /// Disk: a file, complete once the watch holds `Some` (its size, or the error).
    File(Arc<SyncFile>, watch::Receiver<Option<Result<u64, String>>>),
}

/// A disk sync's temporary file, removed when its writer and every replica reading it are
/// done with it (an open file stays readable after the removal).
#[derive(Debug)]
pub struct SyncFile {
    path: PathBuf,
}

impl SyncFile {
    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SyncFile {
    fn drop(&mut self) {
        crate::persist::remove_leftover(&self.path, "the sync file");
    }
}

/// The disk sync being written, which replicas that ask meanwhile can join.
#[derive(Debug, Clone)]
struct DiskJob {
    file: Arc<SyncFile>,
    done: watch::Receiver<Option<Result<u64, String>>>,
    replid: String,
    offset: u64,
}

/// A started full resync, as one replica sees it.
#[derive(Debug)]
pub struct Start {
    /// The replication id sent in `+FULLRESYNC`.
    pub replid: String,
    /// The offset the snapshot was taken at: the stream continues from here.
    pub offset: u64,
    /// The snapshot's bytes.
    pub payload: Payload,
}

/// A replica waiting for a snapshot.
#[derive(Debug)]
struct Waiter {
    client_id: u64,
    tx: oneshot::Sender<Start>,
}

/// The diskless sync waiting for its delay to pass (replicas join it meanwhile).
#[derive(Debug, Default)]
pub struct Jobs {
    pending: Option<Vec<Waiter>>,
    disk: Option<DiskJob>,
}

/// Queues a replica for a full resync; the receiver yields when its snapshot starts.
pub fn enqueue(srv: &Arc<ServerState>, client_id: u64, diskless: bool) -> oneshot::Receiver<Start> {
    let (tx, rx) = oneshot::channel();
    let waiter = Waiter { client_id, tx };
    if !diskless {
        match join_disk(srv, client_id) {
            Some(started) => {
                info!("Waiting for end of BGSAVE for SYNC");
                if waiter.tx.send(started).is_err() {
                    forget_readers(srv, &[client_id]);
                }
            }
            None => {
                info!("Starting BGSAVE for SYNC with target: disk");
                start(srv, vec![waiter], false);
            }
        }
        return rx;
    }
    let Ok(mut jobs) = srv.repl.jobs.lock() else {
        return rx;
    };
    match jobs.pending.as_mut() {
        Some(w) => w.push(waiter),
        None => {
            jobs.pending = Some(vec![waiter]);
            let (delay, _) = diskless_delay(srv);
            if delay > 0 {
                info!("Delay next BGSAVE for diskless SYNC");
            }
            let srv = srv.clone();
            tokio::spawn(async move {
                let (delay, max) = diskless_delay(&srv);
                let deadline = Instant::now() + Duration::from_secs(delay);
                // Start early once `repl-diskless-sync-max-replicas` are waiting.
                while Instant::now() < deadline {
                    let waiting = srv
                        .repl
                        .jobs
                        .lock()
                        .map_or(0, |j| j.pending.as_ref().map_or(0, Vec::len));
                    if max > 0 && waiting as u64 >= max {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let waiters = srv
                    .repl
                    .jobs
                    .lock()
                    .ok()
                    .and_then(|mut j| j.pending.take())
                    .unwrap_or_default();
                if !waiters.is_empty() {
                    info!("Starting BGSAVE for SYNC with target: replicas sockets");
                    start(&srv, waiters, true);
                }
            });
        }
    }
    rx
}

/// Attaches a replica to the disk sync being written, when there is one and the write stream
/// still holds everything from its offset on (Redis attaches only while the BGSAVE runs and
/// copies the first replica's output buffer; here the stream's blocks are that buffer).
fn join_disk(srv: &Arc<ServerState>, client_id: u64) -> Option<Start> {
    let job = srv.repl.jobs.lock().ok()?.disk.clone()?;
    if job.done.borrow().is_some() {
        return None;
    }
    let mut st = srv.engine.lock();
    let held_from = st.stream.offset() - st.stream.buffered() as u64;
    if !st.stream.is_active() || held_from > job.offset || job.replid != srv.repl.replid() {
        return None;
    }
    st.stream.add_reader(client_id, job.offset);
    Some(Start {
        replid: job.replid,
        offset: job.offset,
        payload: Payload::File(job.file, job.done),
    })
}

fn diskless_delay(srv: &ServerState) -> (u64, u64) {
    srv.with_config(|c| {
        (
            c.repl_diskless_sync_delay,
            c.repl_diskless_sync_max_replicas,
        )
    })
}

/// Takes the snapshot for `waiters` and starts writing it.
fn start(srv: &Arc<ServerState>, waiters: Vec<Waiter>, diskless: bool) {
    let (point, offset, replid) = {
        let mut st = srv.engine.lock();
        let point = save_point(srv, &st);
        // Every full resync is followed by a SELECT (Redis sets `slaveseldb = -1`).
        st.stream.reset_selected_db();
        let offset = st.stream.offset();
        for w in &waiters {
            st.stream.add_reader(w.client_id, offset);
        }
        (point, offset, srv.repl.replid())
    };
    // Replicas whose link ended before their snapshot started: the link removed its stream
    // reader before we added it, so it is removed here.
    let mut gone = Vec::new();
    if diskless {
        let mut outs = Vec::new();
        for w in waiters {
            let (tx, rx) = mpsc::channel(16);
            let started = Start {
                replid: replid.clone(),
                offset,
                payload: Payload::Stream(rx),
            };
            if w.tx.send(started).is_ok() {
                outs.push(tx);
            } else {
                gone.push(w.client_id);
            }
        }
        forget_readers(srv, &gone);
        let srv = srv.clone();
        spawn_thread(move || {
            let started = Instant::now();
            let fan = FanOut {
                outs,
                buf: BytesMut::new(),
            };
            let result = write_point(&srv, &point, fan).and_then(|mut fan| {
                fan.send()?;
                // The end mark: the file is whole.
                fan.outs.retain(|tx| tx.blocking_send(Bytes::new()).is_ok());
                Ok(())
            });
            log_result(&result, started);
        });
    } else {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let file = Arc::new(SyncFile {
            path: srv.with_config(|c| c.dir.clone()).join(format!(
                "temp-sync-{}-{}.rdb",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            )),
        });
        let (done_tx, done_rx) = watch::channel(None);
        if let Ok(mut jobs) = srv.repl.jobs.lock() {
            jobs.disk = Some(DiskJob {
                file: file.clone(),
                done: done_rx.clone(),
                replid: replid.clone(),
                offset,
            });
        }
        for w in waiters {
            let started = Start {
                replid: replid.clone(),
                offset,
                payload: Payload::File(file.clone(), done_rx.clone()),
            };
            if w.tx.send(started).is_err() {
                gone.push(w.client_id);
            }
        }
        forget_readers(srv, &gone);
        let srv = srv.clone();
        spawn_thread(move || {
            let started = Instant::now();
            let result = std::fs::File::create(file.path())
                .and_then(|f| write_point(&srv, &point, BufWriter::with_capacity(1 << 20, f)))
                .and_then(|mut b| {
                    b.flush()?;
                    let f = b.into_inner().map_err(|e| e.into_error())?;
                    Ok(f.metadata()?.len())
                });
            done_tx.send_replace(Some(result.as_ref().map(|n| *n).map_err(|e| e.to_string())));
            // Finished: later replicas start their own (the job's file lives while read).
            if let Ok(mut jobs) = srv.repl.jobs.lock() {
                if jobs
                    .disk
                    .as_ref()
                    .is_some_and(|j| Arc::ptr_eq(&j.file, &file))
                {
                    jobs.disk = None;
                }
            }
            log_result(&result.map(|_| ()), started);
        });
    }
}

fn forget_readers(srv: &ServerState, ids: &[u64]) {
    if !ids.is_empty() {
        let mut st = srv.engine.lock();
        for id in ids {
            st.stream.remove_reader(*id);
        }
    }
}

/// Runs a snapshot writer on its own thread (a failure to start one is logged; the
/// replicas waiting for it see their payload end and resync).
fn spawn_thread(f: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new()
        .name("kura-sync".into())
        .spawn(f)
    {
        warn!(error = %e, "cannot start the snapshot thread for SYNC");
    }
}

/// Sends the RDB's bytes to every replica of a diskless sync, in chunks. A replica that went
/// away is dropped; when none is left the save stops.
struct FanOut {
    outs: Vec<mpsc::Sender<Bytes>>,
    buf: BytesMut,
}

impl FanOut {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.outs
            .retain(|tx| tx.blocking_send(chunk.clone()).is_ok());
        if self.outs.is_empty() {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        Ok(())
    }
}

impl Write for FanOut {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes `point` as an RDB into `w` with the server's RDB settings.
pub fn write_point<W: Write>(srv: &ServerState, point: &SavePoint, w: W) -> io::Result<W> {
    let (opts, checksum) = srv.with_config(|c| (WriteOpts::from_config(c), c.rdbchecksum));
    write_rdb(w, &point.snapshot, &point.aux, &opts, checksum).map(|(w, _)| w)
}

/// Logs the end of a snapshot writer thread.
fn log_result(result: &io::Result<()>, started: Instant) {
    match result {
        Ok(()) => info!(
            secs = started.elapsed().as_secs_f64(),
            "Background RDB transfer terminated with success"
        ),
        Err(e) => warn!(error = %e, "Background transfer error"),
    }
}
