//! The engine's side of the AOF: appends each applied write, under the engine lock, to the
//! bytes the writer drains (Redis's `feedAppendOnlyFile` into `aof_buf`).

use std::sync::Arc;

use super::{lock, Shared};

/// The AOF end of the write stream. Held by the stream while the AOF is on.
#[derive(Debug)]
pub struct Feed {
    shared: Arc<Shared>,
    /// The AOF offset after the last append (mirrors `Pending::appended`, readable under the
    /// engine lock without taking the feed's).
    appended: u64,
}

impl Feed {
    /// Returns a feed into `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        let appended = lock(&shared.pending).appended;
        Feed { shared, appended }
    }

    /// Appends one RESP-encoded command applied in database `db`, preceded by `SELECT` when
    /// the database changes (and at the start of every file, see [`Feed::rotate`]).
    pub fn push(&mut self, db: usize, command: &[u8]) {
        let mut p = lock(&self.shared.pending);
        let before = p.bytes.len();
        if p.selected_db != Some(db) {
            let mut n = [0u8; 20];
            let n = crate::resp::encode::fmt_i64(db as i64, &mut n);
            p.bytes.extend_from_slice(b"*2\r\n$6\r\nSELECT\r\n$");
            p.bytes.extend_from_slice(n.len().to_string().as_bytes());
            p.bytes.extend_from_slice(b"\r\n");
            p.bytes.extend_from_slice(n);
            p.bytes.extend_from_slice(b"\r\n");
            p.selected_db = Some(db);
        }
        p.bytes.extend_from_slice(command);
        p.appended += (p.bytes.len() - before) as u64;
        self.appended = p.appended;
        // With `always` the writer thread does every round; otherwise writers flush their
        // own bytes before replying and the thread only sweeps up on its tick.
        if p.idle && self.shared.policy() == crate::config::AppendFsync::Always {
            p.idle = false;
            self.shared.wake.notify_one();
        }
    }

    /// Marks the point where a new incremental file begins (a rewrite's snapshot was taken
    /// here); returns the rotation's number, which the rewrite waits for. Each file starts
    /// with its own `SELECT`, since a loader replays every file from database 0.
    pub fn rotate(&mut self) -> u64 {
        let mut p = lock(&self.shared.pending);
        let at = p.bytes.len();
        p.rotations.push(at);
        p.selected_db = None;
        if p.idle {
            p.idle = false;
            self.shared.wake.notify_one();
        }
        drop(p);
        let mut f = lock(&self.shared.files);
        f.rotations_asked += 1;
        f.rotations_asked
    }

    /// Returns the AOF offset after the last append: what a client that just wrote waits for.
    pub fn offset(&self) -> u64 {
        self.appended
    }
}
