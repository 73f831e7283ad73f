//! `GET /backup`: a consistent RDB of the data as it is now, streamed.
//!
//! The snapshot is the one BGSAVE takes (a save point under the engine lock: an `Arc`
//! clone per shard, whatever the data size), and the bytes come from the one RDB writer on a
//! thread of their own, straight into the response: no file, no pause for writers, memory
//! bounded by what writers change meanwhile. It works on a replica too (its aux fields
//! carry its master's replication id and offset), so backups can run off a replica.

use std::io::{self, Write};
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tracing::{info, warn};

use super::{ApiError, Door};
use crate::persist::rdb::encode::WriteOpts;
use crate::persist::rdb::writer::write_rdb;
use crate::persist::save::{save_point, SavePoint};

/// Backups streaming at once; more get 429 (each holds a snapshot and a thread).
pub const MAX_STREAMS: usize = 2;

/// Bytes per body chunk: large enough that the channel hop costs nothing next to the
/// encoding, small enough to start the download at once.
const CHUNK: usize = 256 * 1024;

/// Chunks in flight between the writer thread and the socket: the writer waits when the
/// client reads slower than it encodes.
const IN_FLIGHT: usize = 8;

/// `GET /backup`.
pub async fn download(State(door): State<Door>) -> Result<Response, ApiError> {
    let srv = door.srv.clone();
    if srv.loading.load(Ordering::Relaxed) {
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "kura is loading the dataset in memory".into(),
        ));
    }
    let permit = door.backups.clone().try_acquire_owned().map_err(|_| {
        ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            format!("{MAX_STREAMS} backups are already streaming"),
        )
    })?;
    let point = super::off_runtime(&srv, |srv| save_point(srv, &srv.engine.lock())).await?;
    let (opts, checksum, filename) = srv.with_config(|c| {
        (
            WriteOpts::from_config(c),
            c.rdbchecksum,
            c.dbfilename.clone(),
        )
    });
    let offset = point.aux.repl.as_ref().map(|(_, _, off)| *off);
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(IN_FLIGHT);
    let spawned = std::thread::Builder::new()
        .name("kura-backup".into())
        .spawn(move || stream_rdb(point, opts, checksum, tx, permit));
    if let Err(e) = spawned {
        return Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot start the backup thread: {e}"),
        ));
    }
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let mut resp = Body::from_stream(chunks).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    // The configured dump name, so a restore is "put it in `dir` and start".
    let safe: String = filename
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(off) = offset {
        if let Ok(v) = HeaderValue::from_str(&off.to_string()) {
            h.insert("x-kura-repl-offset", v);
        }
    }
    Ok(resp)
}

/// Writes the snapshot's RDB into the channel (on the backup thread).
fn stream_rdb(
    point: SavePoint,
    opts: WriteOpts,
    checksum: bool,
    tx: mpsc::Sender<io::Result<Bytes>>,
    _permit: OwnedSemaphorePermit,
) {
    let out = ChunkSender {
        buf: BytesMut::with_capacity(CHUNK),
        tx: tx.clone(),
        sent: 0,
    };
    let written = write_rdb(out, &point.snapshot, &point.aux, &opts, checksum)
        .and_then(|(mut out, written)| out.finish().map(|bytes| (bytes, written)));
    match written {
        Ok((bytes, n)) => info!(keys = n.keys, bytes, "backup streamed over http"),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            info!("backup client went away before the end")
        }
        Err(e) => {
            warn!(error = %e, "backup failed");
            // The body ends with an error: the client sees a broken transfer, never a
            // short file that looks whole.
            if tx.blocking_send(Err(e)).is_err() {
                info!("backup client went away before the end");
            }
        }
    }
}

/// An `io::Write` that hands `CHUNK`-sized pieces to the response body.
struct ChunkSender {
    buf: BytesMut,
    tx: mpsc::Sender<io::Result<Bytes>>,
    sent: u64,
}

impl ChunkSender {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.sent += chunk.len() as u64;
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "backup client went away"))
    }

    /// Sends what is left; returns the bytes sent in all.
    fn finish(&mut self) -> io::Result<u64> {
        self.send()?;
        Ok(self.sent)
    }
}

impl Write for ChunkSender {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
            self.buf.reserve(CHUNK);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
