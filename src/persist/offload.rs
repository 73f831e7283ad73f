//! A file writer whose `write(2)` and incremental fsyncs run on a second thread.
//!
//! `SAVE` (and SHUTDOWN's and DEBUG RELOAD's saves) hold every client anyway, as Redis's
//! do; there the encoder's thread should only encode. Handing each full buffer to a writer
//! thread lets the disk's work — page-cache copies and the `rdb-save-incremental-fsync`
//! fsync every 4 MB, which waits for the device — overlap the encoding of what comes next.
//! Background saves keep writing on their own thread: a second busy thread there would
//! compete with the clients the background save is meant not to slow.

use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

/// Buffers in flight between the encoder and the writer thread (each up to the caller's
/// `BufWriter` capacity), bounding the memory a slow disk can make the save hold.
const IN_FLIGHT: usize = 4;

/// Writes into `W` on a thread of its own.
pub struct Offload<W: Write + Send + 'static> {
    tx: Option<SyncSender<Vec<u8>>>,
    worker: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> Offload<W> {
    /// Starts the writer thread over `inner`.
    pub fn new(mut inner: W) -> io::Result<Self> {
        let (tx, rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        let worker = std::thread::Builder::new()
            .name("kura-save-io".into())
            .spawn(move || {
                for buf in rx {
                    inner.write_all(&buf)?;
                }
                inner.flush()?;
                Ok(inner)
            })?;
        Ok(Offload {
            tx: Some(tx),
            worker: Some(worker),
        })
    }

    /// Waits for everything sent to be written; returns the inner writer or the first error.
    pub fn finish(mut self) -> io::Result<W> {
        self.join()
    }

    fn join(&mut self) -> io::Result<W> {
        self.tx = None;
        match self.worker.take() {
            Some(worker) => worker
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the save's writer thread panicked"))),
            None => Err(io::Error::other("the save's writer thread already ended")),
        }
    }
}

impl<W: Write + Send + 'static> Write for Offload<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let sent = match &self.tx {
            Some(tx) => tx.send(buf.to_vec()).is_ok(),
            None => false,
        };
        if sent {
            return Ok(buf.len());
        }
        // The thread stopped taking buffers: it met an error, which is the answer.
        match self.join() {
            Err(e) => Err(e),
            Ok(_) => Err(io::Error::other("the save's writer thread ended early")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        // Durability is the caller's fsync after `finish`; nothing to wait for here.
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for Offload<W> {
    fn drop(&mut self) {
        // Unfinished (an error upstream): let the thread drain and end.
        if self.worker.is_some() {
            let _ended = self.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_in_order() {
        let mut w = Offload::new(Vec::new()).unwrap();
        for i in 0..1000u32 {
            w.write_all(&i.to_le_bytes()).unwrap();
        }
        let out = w.finish().unwrap();
        let want: Vec<u8> = (0..1000u32).flat_map(|i| i.to_le_bytes()).collect();
        assert_eq!(out, want);
    }

    /// A sink that fails after a few bytes, as a full disk would.
    struct Full(usize);

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0 < buf.len() {
                return Err(io::Error::other("no space left"));
            }
            self.0 -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_writer_threads_error_reaches_the_encoder() {
        let mut w = Offload::new(Full(10)).unwrap();
        let mut failed = None;
        for _ in 0..100 {
            if let Err(e) = w.write_all(&[0u8; 8]) {
                failed = Some(e);
                break;
            }
        }
        let err = match failed {
            Some(e) => e,
            None => w.finish().err().expect("the full sink fails"),
        };
        assert!(err.to_string().contains("no space left"), "{err}");
    }
}
