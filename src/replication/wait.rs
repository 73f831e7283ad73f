//! Waiting for replicas: `WAIT`, `min-replicas-to-write` / `min-replicas-max-lag`, and the
//! `REPLCONF GETACK *` requests that make replicas answer at once (`shared/spec/redis.md`
//! §2.4, §2.9; the NOREPLICAS check's place in §1.5).
//!
//! A client's write offset (`Session::woff`, Redis `c->woff`) is the stream offset after its
//! last command that appended to the write stream. `WAIT n t` counts the online replicas
//! whose last `REPLCONF ACK` reached it; if fewer than `n`, the client blocks (registered in
//! `Blocked` without keys, so INFO, CLIENT LIST, CLIENT UNBLOCK and a role change see it)
//! and the connection re-counts on every ACK (`Repl::acked`) until `n` or the timeout. The
//! forward door's `ack_after = "replicated"` waits on the same counter.
//!
//! GETACK requests are coalesced: Redis sends at most one per event-loop turn while clients
//! wait (`beforeSleep`); kura appends one unless a GETACK is already the last thing in the
//! stream, which every replica will answer with an offset covering everything before it.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::WriteStream;
use crate::cmd::args::int;
use crate::cmd::blocking::BlockOp;
use crate::cmd::exec::{BlockRequest, Ctx};
use crate::cmd::reply::{CmdError, CmdResult, Reply};
use crate::cmd::table::flags::NOSCRIPT;
use crate::cmd::table::CommandSpec;
use crate::command;
use crate::resp::decode::parse_i64;
use crate::state::ServerState;

/// `REPLCONF GETACK *` as Redis's `replicationRequestAckFromSlaves` propagates it (counted in
/// the offset, never written to the AOF).
pub const GETACK: &[u8] = b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n";

/// The reply to writes while too few good replicas are attached (`shared.noreplicaserr`).
pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";

/// WAIT's error on a replica (Redis 7.0 `waitCommand`).
const WAIT_ON_REPLICA: &str = "WAIT cannot be used with replica instances. Please also note \
    that since Redis 4.0 if a replica is configured to be writable (which is not the \
    default) writes to replicas are just local and are not propagated.";

/// `WAIT` (Redis 7.0: arity 3, noscript, group generic).
pub static COMMANDS: &[CommandSpec] = &[command!("wait", 3, NOSCRIPT, (0, 0, 0), "generic", wait)];

/// What a client blocked in WAIT waits for: `needed` replicas acking `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckWait {
    /// The client's write offset.
    pub offset: u64,
    /// `numreplicas`.
    pub needed: i64,
}

impl AckWait {
    /// Returns the count to reply with once it reaches `needed` (Redis `processClientsWaitingReplicas`).
    pub fn reached(&self, srv: &ServerState) -> Option<i64> {
        let n = self.count(srv);
        (n >= self.needed).then_some(n)
    }

    /// Returns how many online replicas acked the offset: the reply at the timeout.
    pub fn count(&self, srv: &ServerState) -> i64 {
        srv.repl.acked_at_least(self.offset) as i64
    }
}

/// Appends `REPLCONF GETACK *` to the stream unless one is already its last command, so
/// replicas send `REPLCONF ACK` now rather than at their next one-second tick. Does nothing
/// while no replica ever attached (no stream) and on a replica (its stream is its
/// master's bytes). Returns whether a GETACK was appended.
pub fn request_acks(stream: &mut WriteStream) -> bool {
    if !stream.is_active() || stream.is_proxy() {
        return false;
    }
    let end = stream.offset();
    let last = end
        .checked_sub(GETACK.len() as u64)
        .and_then(|from| stream.read_from(from));
    if last.as_deref() == Some(GETACK) {
        return false;
    }
    stream.append_raw(GETACK);
    true
}

/// Reports whether writes may proceed under `min-replicas-to-write` / `min-replicas-max-lag`
/// (Redis `checkGoodReplicasStatus`): always on a replica or with either setting 0;
/// otherwise at least `min-replicas-to-write` replicas must be online with their last ACK at
/// most `min-replicas-max-lag` seconds old.
pub fn enough_good_replicas(srv: &ServerState) -> bool {
    let needed = srv.hot.min_replicas_to_write.load(Ordering::Relaxed);
    if needed == 0 {
        return true;
    }
    let max_lag = srv.hot.min_replicas_max_lag.load(Ordering::Relaxed);
    if max_lag == 0 || srv.repl.is_following() {
        return true;
    }
    srv.repl.good_replicas(srv.clock.now_ms(), max_lag) as u64 >= needed
}

/// Parses WAIT's timeout in milliseconds (Redis `getTimeoutFromObjectOrReply` with
/// `UNIT_MILLISECONDS`); `None` is 0, wait forever.
fn timeout_ms(arg: &[u8]) -> Result<Option<u64>, CmdError> {
    let ms =
        parse_i64(arg).ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    Ok((ms > 0).then_some(ms as u64))
}

/// `WAIT numreplicas timeout` (Redis 7.0 `waitCommand`): the number of replicas that acked
/// this client's last write, at once when enough did (or inside MULTI), else when enough
/// do or at the timeout.
fn wait(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    if ctx.srv.repl.is_following() {
        return Err(CmdError::err(WAIT_ON_REPLICA));
    }
    let needed = int(&argv[1])?;
    let timeout = timeout_ms(&argv[2])?;
    let acks = AckWait {
        offset: ctx.sess.woff,
        needed,
    };
    let count = acks.count(ctx.srv);
    if count >= needed || !ctx.may_block {
        return Ok(Reply::Int(count));
    }
    let (waiter, rx) = ctx.st.blocked.block(
        ctx.sess.id,
        ctx.sess.db,
        Vec::new(),
        BlockOp::Acks,
        timeout.is_some(),
    );
    ctx.block = Some(BlockRequest {
        rx,
        waiter,
        timeout: timeout.map(std::time::Duration::from_millis),
        timeout_reply: Reply::Int(count),
        acks: Some(acks),
    });
    // After the command, so the GETACK does not count as this client's write.
    ctx.request_acks = true;
    Ok(Reply::NoReply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getack_is_coalesced_and_never_sent_without_a_stream_or_on_a_replica() {
        let mut s = WriteStream::new(1024);
        assert!(!request_acks(&mut s), "no stream yet");
        assert_eq!(s.offset(), 0);
        s.activate();
        assert!(request_acks(&mut s));
        assert_eq!(s.offset(), GETACK.len() as u64);
        assert!(!request_acks(&mut s), "already the last command");
        s.append(0, &[Bytes::from("SET"), Bytes::from("k"), Bytes::from("v")]);
        let before = s.offset();
        assert!(request_acks(&mut s));
        assert_eq!(s.read_from(before).unwrap(), GETACK);
        s.set_proxy(true);
        let end = s.offset();
        s.append_master(b"*1\r\n$4\r\nping\r\n");
        assert!(!request_acks(&mut s), "a replica never adds its own bytes");
        assert_eq!(s.offset(), end + 14);
    }

    #[test]
    fn timeouts_parse_as_redis() {
        assert_eq!(timeout_ms(b"0").unwrap(), None);
        assert_eq!(timeout_ms(b"250").unwrap(), Some(250));
        let err =
            |a: &[u8]| String::from_utf8(timeout_ms(a).unwrap_err().into_bytes().to_vec()).unwrap();
        assert_eq!(err(b"1.5"), "ERR timeout is not an integer or out of range");
        assert_eq!(err(b"-0"), "ERR timeout is not an integer or out of range");
        assert_eq!(err(b"-1"), "ERR timeout is negative");
    }
}
