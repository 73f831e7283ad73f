//! The ordered write stream: every applied write, RESP-encoded, in apply order.
//!
//! Its byte count is the replication offset (PSYNC2, `shared/spec/redis.md` §2.4). The bytes
//! live in a list of blocks shared by the history (the last `repl-backlog-size` bytes, for
//! partial resyncs) and by every attached replica's read position, as Redis 7.0 shares one
//! replication buffer between its backlog and its replicas' output buffers: a block is freed
//! once it is out of the history AND every replica has read past it. So a lagging replica
//! costs only the bytes it has not read (bounded by `client-output-buffer-limit replica`,
//! enforced by the master side), never a copy per replica. Readers take `Bytes` handles of
//! whole blocks under the engine lock and write them to their socket after releasing it.
//! Subscribers learn of new bytes through a `watch` channel carrying the end offset, sent
//! once per engine lock hold ([`WriteStream::wake_tailers`], from the engine guard's drop)
//! rather than per command: Redis, too, writes to its replicas' sockets once per event loop
//! turn (`beforeSleep`), and a wake per pipelined write was a tenth of a master's CPU.

use std::collections::{BTreeMap, VecDeque};

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;

use crate::persist::aof::feed::Feed;
use crate::resp::encode::{put_array_header, put_bulk};

/// Redis 7.0's default `repl-backlog-size` (1mb).
pub const DEFAULT_BACKLOG_SIZE: usize = 1024 * 1024;

/// Bytes per block of the buffer (Redis's `PROTO_REPLY_CHUNK_BYTES` is 16k).
const BLOCK: usize = 16 * 1024;

/// The write stream and the blocks of its most recent bytes.
#[derive(Debug)]
pub struct WriteStream {
    /// Total bytes ever appended: the master replication offset.
    offset: u64,
    /// Sealed blocks, oldest first; `start` is the offset of the first one's first byte.
    blocks: VecDeque<Bytes>,
    /// The block being filled, after `blocks`.
    tail: BytesMut,
    start: u64,
    /// Read positions of attached replicas, by reader id: bytes from the lowest are kept.
    readers: BTreeMap<u64, u64>,
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
    /// Bytes were appended since subscribers were last told the end offset.
    unsent: bool,
}

impl WriteStream {
    /// Returns an empty stream keeping `capacity` bytes of history.
    pub fn new(capacity: usize) -> Self {
        let (end_tx, _) = watch::channel(0);
        WriteStream {
            offset: 0,
            blocks: VecDeque::new(),
            tail: BytesMut::new(),
            start: 0,
            readers: BTreeMap::new(),
            capacity,
            selected_db: None,
            end_tx,
            scratch: BytesMut::new(),
            txn: None,
            active: false,
            aof: None,
            proxy: false,
            unsent: false,
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

    /// Stops recording and frees the history (`repl-backlog-ttl` passed without replicas).
    pub fn deactivate(&mut self) {
        self.active = false;
        self.blocks.clear();
        self.tail = BytesMut::new();
        self.readers.clear();
        self.start = self.offset;
    }

    /// Reports whether writes are being recorded (`repl_backlog_active`).
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Returns the offset just past the last appended byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Returns the offset of the oldest byte of the history (a partial resync may start
    /// anywhere from here to the end).
    pub fn first_offset(&self) -> u64 {
        self.start
            .max(self.offset.saturating_sub(self.capacity as u64))
    }

    /// Returns how many bytes of history are held.
    pub fn histlen(&self) -> usize {
        (self.offset - self.first_offset()) as usize
    }

    /// Returns the bytes held in memory: the history plus what lagging replicas have not
    /// read yet (`mem_total_replication_buffers`).
    pub fn buffered(&self) -> usize {
        (self.offset - self.start) as usize
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
        if self.tail.capacity() - self.tail.len() < bytes.len() {
            self.seal();
            self.tail = BytesMut::with_capacity(BLOCK.max(bytes.len()));
            self.trim();
        }
        self.tail.extend_from_slice(bytes);
        self.unsent = true;
    }

    /// Tells the tasks tailing the stream where it ends now, if it grew since they were last
    /// told. The engine guard calls this as it releases the lock, so a pipelined batch wakes
    /// each replica feeder once; nobody tailing (no replica) costs nothing.
    pub fn wake_tailers(&mut self) {
        if std::mem::take(&mut self.unsent) && self.end_tx.receiver_count() > 0 {
            self.end_tx.send_replace(self.offset);
        }
    }

    /// Moves the filled part of the tail into the sealed blocks (the rest of its allocation
    /// keeps filling: sealing never copies).
    fn seal(&mut self) {
        if !self.tail.is_empty() {
            self.blocks.push_back(self.tail.split().freeze());
        }
    }

    /// Frees the oldest blocks no one needs: out of the history and read by every replica.
    fn trim(&mut self) {
        let history = self.offset.saturating_sub(self.capacity as u64);
        let keep_from = self
            .readers
            .values()
            .copied()
            .min()
            .map_or(history, |r| r.min(history));
        while let Some(first) = self.blocks.front() {
            let end = self.start + first.len() as u64;
            if end > keep_from {
                break;
            }
            self.start = end;
            self.blocks.pop_front();
        }
    }

    /// Registers a replica reading from `from` (which must be held: see
    /// [`WriteStream::read_from`]); bytes from there on are kept until it reads them.
    pub fn add_reader(&mut self, id: u64, from: u64) {
        self.readers.insert(id, from);
    }

    /// Moves a reader's position forward (it wrote the bytes before `to`).
    pub fn advance_reader(&mut self, id: u64, to: u64) {
        if let Some(pos) = self.readers.get_mut(&id) {
            *pos = (*pos).max(to);
        }
        self.trim();
    }

    /// Forgets a reader (its replica went away).
    pub fn remove_reader(&mut self, id: u64) {
        if self.readers.remove(&id).is_some() {
            self.trim();
        }
    }

    /// Returns how far each reader is behind the end: its output buffer, in bytes.
    pub fn reader_lag(&self, id: u64) -> Option<u64> {
        self.readers.get(&id).map(|p| self.offset - p)
    }

    /// Returns handles to the bytes from `from` to the end, without copying them, or `None`
    /// if `from` is before the oldest byte held or past the end. Readers registered with
    /// [`WriteStream::add_reader`] may read from their own position even when it has left
    /// the history.
    pub fn chunks_from(&mut self, from: u64) -> Option<Vec<Bytes>> {
        if from < self.start || from > self.offset {
            return None;
        }
        self.seal();
        let mut out = Vec::new();
        let mut pos = self.start;
        for b in &self.blocks {
            let end = pos + b.len() as u64;
            if end > from {
                let skip = from.saturating_sub(pos) as usize;
                out.push(b.slice(skip..));
            }
            pos = end;
        }
        Some(out)
    }

    /// Returns the bytes from `from` to the end of the history as one buffer, or `None` if
    /// `from` is not in it (a partial resync's `+CONTINUE` test).
    pub fn read_from(&self, from: u64) -> Option<Bytes> {
        if from < self.first_offset() || from > self.offset {
            return None;
        }
        let mut out = Vec::with_capacity((self.offset - from) as usize);
        let mut pos = self.start;
        let tail: &[u8] = &self.tail;
        for b in self
            .blocks
            .iter()
            .map(|b| &b[..])
            .chain(std::iter::once(tail))
        {
            let end = pos + b.len() as u64;
            if end > from {
                let skip = from.saturating_sub(pos) as usize;
                out.extend_from_slice(&b[skip..]);
            }
            pos = end;
        }
        Some(Bytes::from(out))
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
        self.blocks.clear();
        self.tail = BytesMut::new();
        self.readers.clear();
        self.start = offset;
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
    fn readers_keep_what_they_have_not_read_and_the_rest_is_freed() {
        let mut s = WriteStream::new(16 * 1024);
        s.activate();
        s.add_reader(1, 0);
        let cmd = [
            Bytes::from("SET"),
            Bytes::from("k"),
            Bytes::from(vec![b'x'; 1000]),
        ];
        for _ in 0..100 {
            s.append(0, &cmd);
        }
        // The reader holds all of it although the history keeps only 16k.
        assert_eq!(s.buffered() as u64, s.offset());
        assert_eq!(s.histlen(), 16 * 1024);
        let all: Vec<u8> = s.chunks_from(0).unwrap().concat();
        assert_eq!(all.len() as u64, s.offset());
        assert!(all.starts_with(b"*2\r\n$6\r\nSELECT"));
        assert_eq!(s.reader_lag(1), Some(s.offset()));
        // Once it has read everything, only about the history stays.
        let end = s.offset();
        s.advance_reader(1, end);
        for _ in 0..10 {
            s.append(0, &cmd);
        }
        assert!(s.buffered() < 16 * 1024 + 2 * BLOCK, "{}", s.buffered());
        assert!(s.chunks_from(0).is_none());
        let tail: Vec<u8> = s.chunks_from(end).unwrap().concat();
        assert_eq!(tail.len() as u64, s.offset() - end);
        assert_eq!(s.read_from(end).unwrap(), tail);
        s.remove_reader(1);
        assert_eq!(s.reader_lag(1), None);
    }

    #[test]
    fn reset_starts_a_new_history_at_an_offset() {
        let mut s = WriteStream::new(1024);
        s.reset(500);
        s.append_master(b"*1\r\n$4\r\nping\r\n");
        assert_eq!((s.first_offset(), s.offset()), (500, 514));
        assert_eq!(&s.read_from(500).unwrap()[..], b"*1\r\n$4\r\nping\r\n");
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
