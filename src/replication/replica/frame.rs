//! Cuts the master's command stream into commands, keeping each command's exact bytes
//! (`shared/spec/redis.md` §2.4).
//!
//! A replica needs both the arguments (to apply the command) and the bytes as the master sent
//! them (they count in the replication offset and go verbatim to sub-replicas, Redis
//! `replicationFeedStreamFromMasterStream`). The client decoder consumes its input, so this
//! small scanner finds where a whole command ends first and only then takes it out of the
//! buffer. The scan resumes where it stopped, so a command of a million arguments arriving
//! in many reads is scanned once. The master link is exempt from `proto-max-bulk-len`, as in
//! Redis (`CLIENT_MASTER` skips the check).

use bytes::{Bytes, BytesMut};

/// Longest header or inline line accepted (Redis `PROTO_INLINE_MAX_SIZE`, 64 KB).
const MAX_LINE: usize = 64 * 1024;

/// One unit of the master's stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A multibulk command: its exact bytes and its arguments (slices of those bytes).
    Command {
        /// The bytes as received, header to last CRLF.
        raw: Bytes,
        /// The arguments (empty for `*0`/`*-1`).
        argv: Vec<Bytes>,
    },
    /// An empty line: a keepalive, not part of the stream.
    Newline,
    /// A non-empty inline line: masters never send those (a desynchronised stream).
    Inline(Bytes),
}

/// Why the stream cannot be cut.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Protocol error from MASTER: {0}")]
pub struct FrameError(pub &'static str);

/// The resumable scanner.
#[derive(Debug, Default)]
pub struct Cutter {
    /// Bytes of the command at the front already known to be complete arguments.
    pos: usize,
    /// Arguments still to scan; `None` before the `*<n>` header.
    left: Option<usize>,
}

/// Finds the CRLF-terminated line starting at `at`; returns its content and the offset after
/// it, `None` if incomplete.
fn line_at(buf: &[u8], at: usize) -> Result<Option<(&[u8], usize)>, FrameError> {
    let rest = &buf[at..];
    match rest.iter().position(|&b| b == b'\n') {
        Some(nl) => {
            let line = &rest[..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            Ok(Some((line, at + nl + 1)))
        }
        None if rest.len() > MAX_LINE => Err(FrameError("too big line")),
        None => Ok(None),
    }
}

/// Parses the number after the type byte of a header line.
fn number(line: &[u8], kind: u8, what: &'static str) -> Result<i64, FrameError> {
    if line.first() != Some(&kind) {
        return Err(FrameError(what));
    }
    std::str::from_utf8(&line[1..])
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(FrameError(what))
}

impl Cutter {
    /// Returns a scanner with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets a partly scanned command (the link was reset).
    pub fn reset(&mut self) {
        *self = Cutter::default();
    }

    /// Takes the next complete frame off the front of `buf`, or `None` if more bytes are
    /// needed.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let left = match self.left {
            Some(left) => left,
            None => {
                if buf.is_empty() {
                    return Ok(None);
                }
                if buf[0] != b'*' {
                    let Some((line, after)) = line_at(buf, 0)? else {
                        return Ok(None);
                    };
                    let blank = line.iter().all(|b| b.is_ascii_whitespace());
                    let line = buf.split_to(after).freeze();
                    return Ok(Some(if blank {
                        Frame::Newline
                    } else {
                        Frame::Inline(line)
                    }));
                }
                let Some((line, after)) = line_at(buf, 0)? else {
                    return Ok(None);
                };
                let n = number(line, b'*', "invalid multibulk length")?;
                self.pos = after;
                n.max(0) as usize
            }
        };
        self.left = Some(left);
        let mut left = left;
        while left > 0 {
            let Some((line, after)) = line_at(buf, self.pos)? else {
                return Ok(None);
            };
            let len = number(line, b'$', "expected '$'")?;
            let len = usize::try_from(len).map_err(|_| FrameError("invalid bulk length"))?;
            let end = after + len + 2;
            if buf.len() < end {
                // Room for the rest of a big argument, so it arrives without re-allocations.
                buf.reserve(end - buf.len());
                return Ok(None);
            }
            if &buf[after + len..end] != b"\r\n" {
                return Err(FrameError("bulk not followed by CRLF"));
            }
            self.pos = end;
            left -= 1;
            self.left = Some(left);
        }
        let raw = buf.split_to(self.pos).freeze();
        self.reset();
        Ok(Some(Frame::Command {
            argv: split_args(&raw),
            raw,
        }))
    }
}

/// Returns the arguments of a complete, already validated multibulk.
pub(super) fn split_args(raw: &Bytes) -> Vec<Bytes> {
    let mut args = Vec::new();
    let Ok(Some((_, mut at))) = line_at(raw, 0) else {
        return args;
    };
    while at < raw.len() {
        let Ok(Some((line, after))) = line_at(raw, at) else {
            break;
        };
        let Ok(len) = number(line, b'$', "") else {
            break;
        };
        let len = len as usize;
        args.push(raw.slice(after..after + len));
        at = after + len + 2;
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(raw: &[u8], args: &[&[u8]]) -> Frame {
        Frame::Command {
            raw: Bytes::copy_from_slice(raw),
            argv: args.iter().map(|a| Bytes::copy_from_slice(a)).collect(),
        }
    }

    #[test]
    fn cuts_commands_with_their_exact_bytes_byte_by_byte() {
        let stream: &[u8] =
            b"\n*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nset\r\n$1\r\nk\r\n$0\r\n\r\n*1\r\n$4\r\nping\r\n";
        let mut c = Cutter::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for b in stream {
            buf.extend_from_slice(&[*b]);
            while let Some(f) = c.next(&mut buf).unwrap() {
                out.push(f);
            }
        }
        assert_eq!(
            out,
            vec![
                Frame::Newline,
                cmd(b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n", &[b"SELECT", b"0"]),
                cmd(
                    b"*3\r\n$3\r\nset\r\n$1\r\nk\r\n$0\r\n\r\n",
                    &[b"set", b"k", b""]
                ),
                cmd(b"*1\r\n$4\r\nping\r\n", &[b"ping"]),
            ]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn binary_arguments_may_hold_crlf() {
        let mut c = Cutter::new();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$4\r\n\r\n\r\n\r\n*1"[..]);
        assert_eq!(
            c.next(&mut buf).unwrap(),
            Some(cmd(
                b"*2\r\n$3\r\nGET\r\n$4\r\n\r\n\r\n\r\n",
                &[b"GET", b"\r\n\r\n"]
            ))
        );
        assert_eq!(c.next(&mut buf).unwrap(), None);
        assert_eq!(&buf[..], b"*1");
    }

    #[test]
    fn inline_data_and_broken_framing_are_reported() {
        let mut c = Cutter::new();
        let mut buf = BytesMut::from(&b"SET a b\r\n"[..]);
        assert!(matches!(c.next(&mut buf).unwrap(), Some(Frame::Inline(_))));
        let mut buf = BytesMut::from(&b"*1\r\n+OK\r\n"[..]);
        assert!(c.next(&mut buf).is_err());
        let mut c = Cutter::new();
        let mut buf = BytesMut::from(&b"*1\r\n$2\r\nabcd\r\n"[..]);
        assert!(c.next(&mut buf).is_err());
    }
}
