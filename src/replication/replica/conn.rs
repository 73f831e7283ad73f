//! The socket to the master: buffered reads with deadlines, reply lines, byte counting.
//!
//! One buffer carries everything the master sends, in order: handshake replies, the
//! snapshot preamble and payload, then the command stream; whatever a phase reads past its
//! end stays in the buffer for the next one (length framing lets the stream follow the
//! payload at once, `shared/spec/redis.md` §2.3).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::state::ServerState;

/// Why a link attempt ended; the text is what the log says (Redis's words where it has
/// them).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The attempt failed before the stream was up (already logged, or logged by the loop):
    /// the next attempt comes from the once-a-second retry.
    #[error("{0}")]
    Failed(String),
    /// An established link broke: reconnect at once, keeping the master's state cached.
    #[error("{0}")]
    Lost(String),
    /// The stream was corrupt: reconnect without the cached master (a full sync follows).
    #[error("{0}")]
    Desync(String),
    /// The master's snapshot arrived but does not load (corrupt, or a key of a type kura
    /// does not hold): the old data stays; retried with a growing delay.
    #[error("{0}")]
    Unloadable(String),
    /// A role change retired this link task.
    #[error("replication role changed")]
    Retired,
}

/// Returns an I/O error's text without Rust's ` (os error N)` suffix, as `strerror` reads.
pub fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The master's socket and what has been read from it but not consumed yet.
pub struct MasterConn {
    /// The socket.
    pub sock: TcpStream,
    /// Bytes read and not consumed yet.
    pub buf: BytesMut,
    srv: Arc<ServerState>,
    /// When the last byte arrived.
    pub last_io: Instant,
}

impl MasterConn {
    /// Wraps a connected socket.
    pub fn new(sock: TcpStream, srv: Arc<ServerState>) -> Self {
        MasterConn {
            sock,
            buf: BytesMut::with_capacity(16 * 1024),
            srv,
            last_io: Instant::now(),
        }
    }

    /// Reads more bytes, waiting at most `wait`; returns how many arrived. A timeout reads
    /// `Timeout <doing>`; a closed or broken connection reads as Redis's
    /// `I/O error trying to sync with MASTER: …`.
    pub async fn fill(&mut self, wait: Duration, doing: &str) -> Result<usize, LinkError> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        let n = match tokio::time::timeout(wait, self.sock.read_buf(&mut self.buf)).await {
            Err(_) => return Err(LinkError::Failed(format!("Timeout {doing}"))),
            Ok(Err(e)) => {
                return Err(LinkError::Failed(format!(
                    "I/O error trying to sync with MASTER: {}",
                    io_text(&e)
                )))
            }
            Ok(Ok(0)) => {
                return Err(LinkError::Failed(
                    "I/O error trying to sync with MASTER: connection lost".into(),
                ))
            }
            Ok(Ok(n)) => n,
        };
        self.counted(n);
        Ok(n)
    }

    /// Counts `n` bytes just read from the master (`total_net_repl_input_bytes`).
    pub fn counted(&mut self, n: usize) {
        self.last_io = Instant::now();
        self.srv
            .repl
            .stats
            .net_input_bytes
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Reads one reply line (without its CRLF), waiting at most `wait` for each read.
    /// Redis reads handshake replies into a 256-byte buffer; a longer line is cut there.
    pub async fn read_line(&mut self, wait: Duration, doing: &str) -> Result<Bytes, LinkError> {
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line = self.buf.split_to(nl + 1);
                line.truncate(nl);
                if line.last() == Some(&b'\r') {
                    line.truncate(nl - 1);
                }
                line.truncate(255);
                return Ok(line.freeze());
            }
            if self.buf.len() > 64 * 1024 {
                return Err(LinkError::Failed(format!(
                    "Protocol error {doing}: reply line too long"
                )));
            }
            self.fill(wait, doing).await?;
        }
    }

    /// Writes `bytes` at once (handshake commands, ACKs), waiting at most `wait`.
    pub async fn send(&mut self, bytes: &[u8], wait: Duration) -> Result<(), LinkError> {
        match tokio::time::timeout(wait, self.sock.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(LinkError::Failed(format!(
                "I/O error writing to MASTER: {}",
                io_text(&e)
            ))),
            Err(_) => Err(LinkError::Failed("Timeout writing to MASTER".to_string())),
        }
    }
}

/// Encodes a command as a RESP multibulk (what a replica sends its master).
pub fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = BytesMut::new();
    crate::resp::encode::put_array_header(&mut out, args.len());
    for a in args {
        crate::resp::encode::put_bulk(&mut out, a);
    }
    out.to_vec()
}

/// Returns `REPLCONF ACK <offset>`.
pub fn ack(offset: u64) -> Vec<u8> {
    command(&[b"REPLCONF", b"ACK", offset.to_string().as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_encoded_as_redis_sends_them() {
        assert_eq!(
            command(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"]),
            b"*5\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n$4\r\ncapa\r\n$6\r\npsync2\r\n"
        );
        assert_eq!(ack(0), b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$1\r\n0\r\n");
    }

    #[test]
    fn io_errors_read_like_strerror() {
        let e = std::io::Error::from_raw_os_error(111);
        assert_eq!(io_text(&e), "Connection refused");
    }
}
