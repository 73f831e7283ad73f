//! The ordered write stream: every applied write, RESP-encoded, in apply order.
//!
//! Its byte count is the replication offset (PSYNC2, `shared/spec/redis.md` §2.4). The last
//! `repl-backlog-size` bytes are kept so replicas (and the AOF) can read from an offset;
//! subscribers learn of new bytes through a `watch` channel carrying the end offset.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;

use crate::persist::aof::feed::Feed;
use crate::resp::encode::{put_array_header, put_bulk};

/// Redis 7.0's default `repl-backlog-size` (1mb).
pub const DEFAULT_BACKLOG_SIZE: usize = 1024 * 1024;

/// The write stream and the bounded window of its most recent bytes.
#[derive(Debug)]
pub struct WriteStream {
    /// Total bytes ever appended: the master replication offset.
    offset: u64,
    /// The newest bytes, at most `capacity`.
    window: VecDeque<u8>,
    capacity: usize,
    /// The database the stream last selected (`SELECT` is emitted when it changes).
    selected_db: Option<usize>,
    end_tx: watch::Sender<u64>,
    scratch: BytesMut,
    /// Commands of a running EXEC, held back to be wrapped in MULTI/EXEC.
    txn: Option<Vec<(usize, Vec<Bytes>)>>,
    /// Whether anything consumes the stream. Redis creates its backlog when the first
    /// replica attaches and until then neither fills it nor advances the offset (INFO
    /// shows `repl_backlog_active:0`, `master_repl_offset:0`); kura does the same, which
    /// also spares a standalone server a copy of every write.
    active: bool,
    /// The AOF's end of the stream, while the AOF is on: it sees the same commands in the
    /// same order, with its own SELECT tracking (each AOF file starts afresh).
    aof: Option<Feed>,
    /// Replica mode: the history holds the master's bytes, not our own commands.
    proxy: bool,
}

impl WriteStream {
    /// Returns an empty stream keeping `capacity` bytes of history.
    pub fn new(capacity: usize) -> Self {
        let (end_tx, _) = watch::channel(0);
        WriteStream {
            offset: 0,
            window: VecDeque::new(),
            capacity,
            selected_db: None,
            end_tx,
            scratch: BytesMut::new(),
            txn: None,
            active: false,
            aof: None,
            proxy: false,
        }
    }

    /// Starts recording writes (Redis's `createReplicationBacklog`): called when the first
    /// replica attaches or the AOF is enabled. The next command is preceded by a SELECT.
    pub fn activate(&mut self) {
        if !self.active {
            self.active = true;
            self.selected_db = None;
        }
    }

    /// Reports whether writes are being recorded (`repl_backlog_active`).
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Returns the offset just past the last appended byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Returns the offset of the oldest byte still held.
    pub fn first_offset(&self) -> u64 {
        self.offset - self.window.len() as u64
    }

    /// Returns how many bytes of history are held.
    pub fn histlen(&self) -> usize {
        self.window.len()
    }

    /// Returns the history capacity (`repl-backlog-size`).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Changes the history capacity, dropping the oldest bytes if needed.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.trim();
    }

    /// Subscribes to the end offset, for tasks that tail the stream.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        // Appends skip the update while nobody listens: bring the value current first.
        self.end_tx.send_replace(self.offset);
        self.end_tx.subscribe()
    }

    /// Attaches (or detaches) the AOF's feed.
    pub fn set_aof(&mut self, feed: Option<Feed>) {
        self.aof = feed;
    }

    /// Returns the AOF's feed while the AOF is on.
    pub fn aof_feed(&mut self) -> Option<&mut Feed> {
        self.aof.as_mut()
    }

    /// Returns the AOF offset after the last write, while the AOF is on: what a client that
    /// wrote waits for before its reply.
    pub fn aof_offset(&self) -> Option<u64> {
        self.aof.as_ref().map(Feed::offset)
    }

    /// Appends one applied write command, preceded by `SELECT` when the database changes.
    pub fn append(&mut self, db: usize, argv: &[Bytes]) {
        if !self.active && self.aof.is_none() {
            return;
        }
        if let Some(t) = self.txn.as_mut() {
            t.push((db, argv.to_vec()));
            return;
        }
        // Encoded once for both consumers.
        let mut cmd = std::mem::take(&mut self.scratch);
        cmd.clear();
        put_array_header(&mut cmd, argv.len());
        for a in argv {
            put_bulk(&mut cmd, a);
        }
        if self.active && !self.proxy {
            if self.selected_db != Some(db) {
                let mut select = BytesMut::with_capacity(24);
                put_array_header(&mut select, 2);
                put_bulk(&mut select, b"SELECT");
                put_bulk(&mut select, db.to_string().as_bytes());
                self.append_raw(&select);
                self.selected_db = Some(db);
            }
            self.append_raw(&cmd);
        }
        if let Some(f) = self.aof.as_mut() {
            f.push(db, &cmd);
        }
        self.scratch = cmd;
    }

    /// Starts holding back appends: the commands of one EXEC.
    pub fn begin_transaction(&mut self) {
        self.txn = Some(Vec::new());
    }

    /// Reports whether an EXEC is holding appends back (blocked clients are served after it).
    pub fn in_transaction(&self) -> bool {
        self.txn.is_some()
    }

    /// Appends the held-back commands, wrapped in MULTI/EXEC when there are several, so
    /// replicas and the AOF apply a transaction atomically (Redis 7.0 `execCommand`).
    pub fn end_transaction(&mut self) {
        let Some(cmds) = self.txn.take() else {
            return;
        };
        if cmds.len() < 2 {
            for (db, argv) in cmds {
                self.append(db, &argv);
            }
            return;
        }
        let first_db = cmds[0].0;
        self.append(first_db, &[Bytes::from_static(b"MULTI")]);
        let mut last_db = first_db;
        for (db, argv) in cmds {
            self.append(db, &argv);
            last_db = db;
        }
        self.append(last_db, &[Bytes::from_static(b"EXEC")]);
    }

    /// Appends bytes that are already RESP-encoded commands.
    pub fn append_raw(&mut self, bytes: &[u8]) {
        if !self.active {
            return;
        }
        self.offset += bytes.len() as u64;
        if bytes.len() >= self.capacity {
            self.window.clear();
            self.window.extend(&bytes[bytes.len() - self.capacity..]);
        } else {
            self.window.extend(bytes);
            self.trim();
        }
        // Waking subscribers is costly on the hot path: only when someone tails the stream.
        if self.end_tx.receiver_count() > 0 {
            self.end_tx.send_replace(self.offset);
        }
    }

    /// Returns the database the stream last selected (`repl-stream-db` of a snapshot).
    pub fn selected_db(&self) -> Option<usize> {
        self.selected_db
    }

    /// Switches replica mode on or off. On a replica the history holds exactly the bytes
    /// its master sent ([`WriteStream::append_master`]), so sub-replicas see the master's
    /// offsets (Redis `replicationFeedStreamFromMasterStream`); the commands applied from
    /// them still reach the AOF through [`WriteStream::append`].
    pub fn set_proxy(&mut self, on: bool) {
        self.proxy = on;
        self.selected_db = None;
    }

    /// Reports whether the stream is in replica mode.
    pub fn is_proxy(&self) -> bool {
        self.proxy
    }

    /// Appends bytes exactly as the master sent them (replica mode): they count in the
    /// offset and feed sub-replicas.
    pub fn append_master(&mut self, bytes: &[u8]) {
        self.active = true;
        self.append_raw(bytes);
    }

    /// Starts a new history at `offset` (a replica's full sync: its offset becomes the
    /// master's `+FULLRESYNC` offset). The next own command is preceded by `SELECT`.
    pub fn reset(&mut self, offset: u64) {
        self.window.clear();
        self.offset = offset;
        self.selected_db = None;
        self.active = true;
        if self.end_tx.receiver_count() > 0 {
            self.end_tx.send_replace(self.offset);
        }
    }

    /// Forgets the selected database, so the next append starts with `SELECT`.
    pub fn reset_selected_db(&mut self) {
        self.selected_db = None;
    }

    fn trim(&mut self) {
        if self.window.len() > self.capacity {
            let extra = self.window.len() - self.capacity;
            self.window.drain(..extra);
        }
    }

    /// Returns the bytes from `from` to the end, or `None` if `from` is no longer held.
    pub fn read_from(&self, from: u64) -> Option<Bytes> {
        if from < self.first_offset() || from > self.offset {
            return None;
        }
        let skip = (from - self.first_offset()) as usize;
        let (a, b) = self.window.as_slices();
        let mut out = Vec::with_capacity(self.window.len() - skip);
        if skip < a.len() {
            out.extend_from_slice(&a[skip..]);
            out.extend_from_slice(b);
        } else {
            out.extend_from_slice(&b[skip - a.len()..]);
        }
        Some(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_once_per_db_change_and_counts_bytes() {
        let mut s = WriteStream::new(1024);
        s.activate();
        s.append(0, &[Bytes::from("SET"), Bytes::from("k"), Bytes::from("v")]);
        s.append(0, &[Bytes::from("DEL"), Bytes::from("k")]);
        let all = s.read_from(0).unwrap();
        assert_eq!(
            &all[..],
            b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n"
        );
        assert_eq!(s.offset(), all.len() as u64);
    }

    #[test]
    fn nothing_is_recorded_until_activated() {
        let mut s = WriteStream::new(1024);
        s.append(0, &[Bytes::from("SET"), Bytes::from("k"), Bytes::from("v")]);
        assert_eq!((s.offset(), s.histlen(), s.is_active()), (0, 0, false));
        s.activate();
        s.append(0, &[Bytes::from("DEL"), Bytes::from("k")]);
        assert!(s.read_from(0).unwrap().starts_with(b"*2\r\n$6\r\nSELECT"));
    }

    #[test]
    fn window_is_bounded() {
        let mut s = WriteStream::new(100);
        s.activate();
        for _ in 0..50 {
            s.append(0, &[Bytes::from("INCR"), Bytes::from("counter")]);
        }
        assert_eq!(s.histlen(), 100);
        assert!(s.read_from(0).is_none());
        assert_eq!(s.read_from(s.offset() - 10).unwrap().len(), 10);
    }
}
