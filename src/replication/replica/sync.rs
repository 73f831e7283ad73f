//! The full sync (`shared/spec/redis.md` §2.3, §2.6): receiving the master's snapshot and
//! swapping it in.
//!
//! The payload comes framed as `$<len>\r\n<len bytes>` or, diskless, as
//! `$EOF:<40 chars>\r\n<bytes><the same 40 chars>`; the EOF mark is found by comparing the
//! last 40 bytes received, as Redis does (the master sends nothing after the mark until our
//! first `REPLCONF ACK`). With `repl-diskless-load disabled` (the default) the payload goes
//! to `temp-<unixtime>.<pid>.rdb` in `dir`, fsynced; otherwise it stays in memory.
//!
//! Unlike Redis, which empties its data before parsing, kura parses into a fresh keyspace
//! while the old data keeps serving reads (`replica-serve-stale-data yes`), then swaps it in
//! under the engine lock. A payload that does not load (corrupt, or a key of a type kura does
//! not hold) leaves the old data and the old `dump.rdb` in place: the temp file is renamed
//! over `dbfilename` only once it has loaded.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::io::Write;
use tracing::{info, warn};

use super::conn::{io_text, LinkError, MasterConn};
use super::role::{disconnect_replicas, lock_follower};
use crate::persist::rdb::load::{load, LoadOpts};
use crate::replication::state::LinkState;
use crate::state::ServerState;

/// The timeout text while the payload is awaited or read.
const BULK_TIMEOUT: &str = "receiving bulk data from MASTER... If the problem persists try to \
                            set the 'repl-timeout' parameter in redis.conf to a larger value.";

/// Where the master's history starts for us after the sync.
#[derive(Debug, Clone)]
pub struct Target {
    /// The master's replication id (`+FULLRESYNC <id>`).
    pub replid: String,
    /// The offset the snapshot was taken at (`+FULLRESYNC … <offset>`).
    pub offset: u64,
}

/// What a completed full sync leaves for the stream phase.
#[derive(Debug)]
pub struct Synced {
    /// The payload was EOF-framed: the master waits for an ACK before streaming.
    pub eof_framed: bool,
    /// The database the master's stream had selected (`repl-stream-db`).
    pub db: usize,
}

/// Where the payload is collected.
enum Sink {
    /// `repl-diskless-load disabled`: a temp file in `dir`.
    Disk {
        /// Written in place: appends of one read's bytes to the page cache, as Redis writes
        /// them from its event loop; the fsync runs on a blocking thread.
        file: std::fs::File,
        path: PathBuf,
    },
    /// `swapdb` / `on-empty-db`: memory.
    Memory(Vec<u8>),
}

/// The payload once received.
enum Payload {
    Disk(PathBuf),
    Memory(Vec<u8>),
}

/// Updates the link's transfer fields (INFO `master_sync_*`).
fn progress(srv: &ServerState, f: impl FnOnce(&mut crate::replication::state::MasterLink)) {
    let mut l = srv.repl.link.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(link) = l.as_mut() {
        f(link);
    }
}

/// Receives the snapshot after `+FULLRESYNC` (or `SYNC`), loads it and swaps it in.
pub async fn full_sync(
    conn: &mut MasterConn,
    srv: &Arc<ServerState>,
    epoch: u64,
    target: Target,
) -> Result<Synced, LinkError> {
    let (wait, diskless) = srv.with_config(|c| {
        (
            Duration::from_secs(c.repl_timeout.max(1)),
            c.repl_diskless_load.clone(),
        )
    });
    progress(srv, |l| {
        l.state = LinkState::Sync;
        l.sync_total = -1;
        l.sync_read = 0;
        l.sync_last_io = Some(Instant::now());
    });
    // The preamble; "\n" keepalives come while the master's snapshot is being made.
    let line = loop {
        let line = conn.read_line(wait, BULK_TIMEOUT).await?;
        if !line.is_empty() {
            break line;
        }
        progress(srv, |l| l.sync_last_io = Some(Instant::now()));
    };
    let text = String::from_utf8_lossy(&line).into_owned();
    if let Some(err) = text.strip_prefix('-') {
        return Err(LinkError::Failed(format!(
            "MASTER aborted replication with an error: {err}"
        )));
    }
    if !text.starts_with('$') {
        return Err(LinkError::Failed(format!(
            "Bad protocol from MASTER, the first byte is not '$' (we received '{text}'), are \
             you sure the host and port are right?"
        )));
    }
    let mark: Option<Vec<u8>> = match text.strip_prefix("$EOF:") {
        Some(m) if m.len() >= 40 => Some(m.as_bytes()[..40].to_vec()),
        _ => None,
    };
    let total: u64 = match &mark {
        Some(_) => 0,
        None => text[1..].parse().map_err(|_| {
            LinkError::Failed(format!(
                "Bad protocol from MASTER, the first byte is not '$' (we received '{text}'), \
                 are you sure the host and port are right?"
            ))
        })?,
    };
    // Redis `useDisklessLoad`: swapdb always parses from the socket, on-empty-db only when
    // there is no data to keep.
    let to_memory = match diskless.as_str() {
        "swapdb" => true,
        "on-empty-db" => srv.engine.lock().ks.dbs.iter().all(|d| d.is_empty()),
        _ => false,
    };
    let dest = if to_memory { "to parser" } else { "to disk" };
    if mark.is_some() {
        info!("MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF {dest}");
    } else {
        info!("MASTER <-> REPLICA sync: receiving {total} bytes from master {dest}");
    }
    progress(srv, |l| l.sync_total = total as i64);
    let mut sink = if to_memory {
        Sink::Memory(Vec::with_capacity(total.min(1 << 30) as usize))
    } else {
        let (dir, now) = srv.with_config(|c| (c.dir.clone(), srv.clock.now_ms() / 1000));
        let path = dir.join(format!("temp-{now}.{}.rdb", std::process::id()));
        let file = std::fs::File::create(&path).map_err(|e| {
            LinkError::Failed(format!(
                "Opening the temp file needed for MASTER <-> REPLICA synchronization: {}",
                io_text(&e)
            ))
        })?;
        Sink::Disk { file, path }
    };
    let received = receive(conn, srv, &mut sink, total, mark.as_deref(), wait).await;
    let payload = match (received, sink) {
        (Ok(()), Sink::Memory(v)) => Payload::Memory(v),
        (Ok(()), Sink::Disk { file, path }) => match finish_file(file).await {
            Ok(()) => Payload::Disk(path),
            Err(e) => {
                remove(&path);
                return Err(LinkError::Failed(format!(
                    "Failed trying to sync the temp DB to disk in MASTER <-> REPLICA \
                     synchronization: {}",
                    io_text(&e)
                )));
            }
        },
        (Err(e), Sink::Disk { path, .. }) => {
            remove(&path);
            return Err(e);
        }
        (Err(e), Sink::Memory(_)) => return Err(e),
    };
    info!("MASTER <-> REPLICA sync: Flushing old data");
    info!("MASTER <-> REPLICA sync: Loading DB in memory");
    let worker = srv.clone();
    let eof_framed = mark.is_some();
    let db = tokio::task::spawn_blocking(move || load_and_swap(&worker, epoch, payload, &target))
        .await
        .map_err(|e| LinkError::Failed(format!("the snapshot loader stopped: {e}")))??;
    info!("MASTER <-> REPLICA sync: Finished with success");
    Ok(Synced { eof_framed, db })
}

/// Reads the payload into `sink`: `total` bytes, or up to the EOF `mark`.
async fn receive(
    conn: &mut MasterConn,
    srv: &ServerState,
    sink: &mut Sink,
    total: u64,
    mark: Option<&[u8]>,
    wait: Duration,
) -> Result<(), LinkError> {
    let mut read: u64 = 0;
    let mut tail: Vec<u8> = Vec::with_capacity(80);
    loop {
        if !conn.buf.is_empty() {
            let take = match mark {
                Some(_) => conn.buf.len(),
                None => (total - read).min(conn.buf.len() as u64) as usize,
            };
            let chunk = conn.buf.split_to(take);
            read += take as u64;
            match sink {
                Sink::Memory(v) => v.extend_from_slice(&chunk),
                Sink::Disk { file, .. } => file.write_all(&chunk).map_err(|e| {
                    LinkError::Failed(format!(
                        "Write error or short write writing to the DB dump file needed for \
                         MASTER <-> REPLICA synchronization: {}",
                        io_text(&e)
                    ))
                })?,
            }
            if mark.is_some() {
                tail.extend_from_slice(&chunk[chunk.len().saturating_sub(40)..]);
                if tail.len() > 40 {
                    tail.drain(..tail.len() - 40);
                }
            }
            progress(srv, |l| {
                l.sync_read = read;
                l.sync_last_io = Some(Instant::now());
            });
        }
        let done = match mark {
            Some(m) => read >= 40 && tail == m,
            None => read >= total,
        };
        if done {
            break;
        }
        conn.fill(wait, BULK_TIMEOUT).await?;
    }
    if mark.is_some() {
        // The mark is not part of the RDB.
        match sink {
            Sink::Memory(v) => v.truncate(v.len() - 40),
            Sink::Disk { file, .. } => {
                file.set_len(read - 40).map_err(|e| {
                    LinkError::Failed(format!(
                        "Error truncating the RDB file received from the master for SYNC: {}",
                        io_text(&e)
                    ))
                })?;
            }
        }
    }
    Ok(())
}

/// Fsyncs the received file on a blocking thread.
async fn finish_file(file: std::fs::File) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || file.sync_all())
        .await
        .map_err(std::io::Error::other)?
}

/// Removes a temp file, logging only unexpected failures.
fn remove(path: &std::path::Path) {
    crate::persist::remove_leftover(path, "the temp sync file");
}

/// Parses the payload into a fresh keyspace (on a blocking thread: the old data keeps
/// serving meanwhile) and swaps it in, unless a role change retired this link meanwhile.
fn load_and_swap(
    srv: &Arc<ServerState>,
    epoch: u64,
    payload: Payload,
    target: &Target,
) -> Result<usize, LinkError> {
    let (databases, dump) = srv.with_config(|c| (c.databases, c.dir.join(&c.dbfilename)));
    let read = match &payload {
        Payload::Memory(v) => Ok(std::borrow::Cow::Borrowed(v.as_slice())),
        Payload::Disk(path) => std::fs::read(path).map(std::borrow::Cow::Owned),
    };
    let temp = match &payload {
        Payload::Disk(p) => Some(p.clone()),
        Payload::Memory(_) => None,
    };
    let fail = |why: String| {
        if let Some(t) = &temp {
            remove(t);
        }
        warn!("{why}");
        LinkError::Unloadable(
            "Failed trying to load the MASTER synchronization DB from disk, check server logs."
                .into(),
        )
    };
    let bytes = read.map_err(|e| fail(format!("cannot read the received snapshot: {e}")))?;
    let loaded = load(&bytes, databases, &LoadOpts::replica(srv.clock.now_ms())).map_err(|e| {
        fail(format!(
            "MASTER <-> REPLICA sync: the master's snapshot cannot be loaded, keeping the old \
             data: {e}"
        ))
    })?;
    drop(bytes);
    if lock_follower(srv).epoch != epoch {
        if let Some(t) = &temp {
            remove(t);
        }
        return Err(LinkError::Retired);
    }
    if let Some(t) = &temp {
        // Only a snapshot that loaded replaces the dump (Redis renames first, then loads).
        let renamed = std::fs::rename(t, &dump).and_then(|()| {
            let dir = dump.parent().unwrap_or(std::path::Path::new("."));
            std::fs::File::open(dir)?.sync_all()
        });
        if let Err(e) = renamed {
            return Err(fail(format!(
                "Failed trying to rename the temp DB into {} in MASTER <-> REPLICA \
                 synchronization: {e}",
                dump.display()
            )));
        }
    }
    let db = loaded
        .repl_stream_db()
        .and_then(|d| usize::try_from(d).ok())
        .filter(|d| *d < databases)
        .unwrap_or(0);
    srv.save.record_load(&loaded);
    let mut st = srv.engine.lock();
    let mut f = lock_follower(srv);
    if f.epoch != epoch {
        return Err(LinkError::Retired);
    }
    // Our sub-replicas' history is gone (Redis `replicationAttachToNewMaster`).
    disconnect_replicas(srv);
    // Every WATCHed key may have changed (Redis `signalFlushedDb`); blocked clients wait on.
    for d in 0..st.ks.dbs.len() {
        st.touch_db(d);
    }
    st.ks = loaded.keyspace;
    st.stream.reset(target.offset);
    {
        let mut ids = srv.repl.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.adopt(target.replid.clone());
    }
    f.master_db = db;
    f.cached = false;
    f.linked = false;
    drop(f);
    // The AOF restarts from the new data (Redis `restartAOFAfterSYNC`): the rewrite's
    // snapshot is taken now, in the same lock hold as the swap.
    if srv.aof.is_on() {
        let cfg = srv.config();
        crate::persist::aof::rewrite::disable(srv, &mut st);
        if let Err(e) = crate::persist::aof::rewrite::enable(srv, &mut st, &cfg) {
            warn!(error = %e, "Failed enabling the AOF after successful master synchronization!");
        }
    }
    Ok(db)
}
