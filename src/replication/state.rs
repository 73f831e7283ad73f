//! What both sides of replication share with the rest of the server: the replication ids,
//! the master link's status (on a replica) and the attached replicas (on a master), read by
//! INFO replication, ROLE, WAIT and the forward door's `ack_after = "replicated"`.
//!
//! Vocabulary as `shared/spec/redis.md` §2.1: `replid` names the current history, `replid2`
//! the previous one, valid for PSYNC up to `second_repl_offset`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU16, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;

/// 40 zeros: "no secondary id" (`master_replid2` before any promotion).
pub const NO_REPLID: &str = "0000000000000000000000000000000000000000";

/// Returns a fresh random replication id: 40 lowercase hex characters.
pub fn new_replid() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..40)
        .map(|_| char::from_digit(rng.gen_range(0..16u32), 16).unwrap_or('0'))
        .collect()
}

/// The replication ids (PSYNC2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    /// `master_replid`: the history the write stream belongs to.
    pub replid: String,
    /// `master_replid2`: the history before the last promotion or restart.
    pub replid2: String,
    /// `second_repl_offset`: the first offset `replid2` is NOT valid for (-1: none).
    pub second_offset: i64,
}

impl Default for Ids {
    fn default() -> Self {
        Ids {
            replid: new_replid(),
            replid2: NO_REPLID.into(),
            second_offset: -1,
        }
    }
}

impl Ids {
    /// Starts a new history, remembering the current one as `replid2`, valid for offsets
    /// up to and including `offset` (Redis `shiftReplicationId`: `second_replid_offset =
    /// master_repl_offset + 1`).
    pub fn shift(&mut self, offset: u64) {
        self.replid2 = std::mem::replace(&mut self.replid, new_replid());
        self.second_offset = offset as i64 + 1;
    }

    /// Takes `replid` as the only history, with no secondary id: a new backlog, a full
    /// sync from a master, a restored replica (Redis `changeReplicationId` +
    /// `clearReplicationId2`).
    pub fn adopt(&mut self, replid: String) {
        self.replid = replid;
        self.replid2 = NO_REPLID.into();
        self.second_offset = -1;
    }

    /// Reports whether `PSYNC <id> <offset>` names this node's history (Redis
    /// `masterTryPartialResynchronization`: the current id, or the previous one up to
    /// `second_repl_offset`).
    pub fn knows(&self, id: &str, offset: u64) -> bool {
        id == self.replid || (id == self.replid2 && (offset as i64) <= self.second_offset)
    }
}

/// The replica-side link state, with ROLE's words (`shared/spec/redis.md` §2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// REPLICAOF given, no connection attempt yet.
    Connect,
    /// TCP connect in progress.
    Connecting,
    /// PING / AUTH / REPLCONF / PSYNC exchange.
    Handshake,
    /// Receiving the snapshot.
    Sync,
    /// Streaming.
    Connected,
}

impl LinkState {
    /// ROLE's word for the state.
    pub fn role_word(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Handshake => "handshake",
            LinkState::Sync => "sync",
            LinkState::Connected => "connected",
        }
    }
}

/// A replica's view of its master link (INFO replication's replica fields).
#[derive(Debug, Clone)]
pub struct MasterLink {
    /// `master_host`.
    pub host: String,
    /// `master_port`.
    pub port: u16,
    /// Where the link is.
    pub state: LinkState,
    /// Last byte read from the master (`master_last_io_seconds_ago`); `None` before any.
    pub last_io: Option<Instant>,
    /// When the link went down (`master_link_down_since_seconds`); `None` if never up.
    pub down_since: Option<Instant>,
    /// Snapshot bytes announced (`master_sync_total_bytes`: -1 before the `$` line, 0 for
    /// EOF framing).
    pub sync_total: i64,
    /// Snapshot bytes read so far.
    pub sync_read: u64,
    /// Last snapshot byte read.
    pub sync_last_io: Option<Instant>,
    /// Stream bytes read from the master (`slave_read_repl_offset`).
    pub read_offset: u64,
}

impl MasterLink {
    /// Returns the status of a link just configured (`replicaof host port`).
    pub fn new(host: String, port: u16) -> Self {
        MasterLink {
            host,
            port,
            state: LinkState::Connect,
            last_io: None,
            down_since: None,
            sync_total: -1,
            sync_read: 0,
            sync_last_io: None,
            read_offset: 0,
        }
    }
}

/// Where an attached replica is (INFO `state=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ReplicaState {
    /// Waiting for its snapshot to start.
    WaitBgsave = 0,
    /// Receiving the snapshot.
    SendBulk = 1,
    /// Streaming.
    Online = 2,
}

impl ReplicaState {
    /// INFO's word for the state.
    pub fn word(self) -> &'static str {
        match self {
            ReplicaState::WaitBgsave => "wait_bgsave",
            ReplicaState::SendBulk => "send_bulk",
            ReplicaState::Online => "online",
        }
    }
}

/// One attached replica, as the master sees it.
#[derive(Debug)]
pub struct ReplicaInfo {
    /// The connection's client id.
    pub client_id: u64,
    /// The peer's address, or `REPLCONF ip-address`.
    pub ip: Mutex<IpAddr>,
    /// `REPLCONF listening-port` (0 if never sent).
    pub listening_port: AtomicU16,
    state: AtomicU8,
    /// Last `REPLCONF ACK` offset.
    pub ack_offset: AtomicU64,
    /// Unix ms of the last `REPLCONF ACK` (or of attaching).
    pub ack_time_ms: AtomicI64,
}

impl ReplicaInfo {
    /// Returns a replica that just sent SYNC/PSYNC.
    pub fn new(client_id: u64, ip: IpAddr, port: u16, now_ms: i64) -> Self {
        ReplicaInfo {
            client_id,
            ip: Mutex::new(ip),
            listening_port: AtomicU16::new(port),
            state: AtomicU8::new(ReplicaState::WaitBgsave as u8),
            ack_offset: AtomicU64::new(0),
            ack_time_ms: AtomicI64::new(now_ms),
        }
    }

    /// Returns where the replica is.
    pub fn state(&self) -> ReplicaState {
        match self.state.load(Ordering::Acquire) {
            0 => ReplicaState::WaitBgsave,
            1 => ReplicaState::SendBulk,
            _ => ReplicaState::Online,
        }
    }

    /// Moves the replica along.
    pub fn set_state(&self, s: ReplicaState) {
        self.state.store(s as u8, Ordering::Release);
    }
}

/// Replication counters (`INFO stats`).
#[derive(Debug, Default)]
pub struct ReplStats {
    /// Full resyncs served (`sync_full`).
    pub sync_full: AtomicU64,
    /// Partial resyncs accepted (`sync_partial_ok`).
    pub sync_partial_ok: AtomicU64,
    /// Partial resyncs refused (`sync_partial_err`).
    pub sync_partial_err: AtomicU64,
    /// Bytes read from our master (`total_net_repl_input_bytes`).
    pub net_input_bytes: AtomicU64,
    /// Bytes sent to replicas (`total_net_repl_output_bytes`).
    pub net_output_bytes: AtomicU64,
}

/// Replication state shared by the server (one per `ServerState`).
#[derive(Debug)]
pub struct Repl {
    /// The replication ids. Lock order: the engine lock first, then this.
    pub ids: Mutex<Ids>,
    /// `Some` while this server is a replica: its link's status.
    pub link: Mutex<Option<MasterLink>>,
    /// Attached replicas by client id (ordered: INFO lists `slave0`, `slave1`, … in
    /// attach order).
    pub replicas: Mutex<BTreeMap<u64, Arc<ReplicaInfo>>>,
    /// Bumped on every `REPLCONF ACK`: WAIT and forward acks re-check their count.
    pub acked: watch::Sender<u64>,
    /// Counters.
    pub stats: ReplStats,
    /// Unix seconds since the master has had no replica (`repl-backlog-ttl`); 0 while it has
    /// some or never had a backlog.
    pub no_replicas_since: AtomicI64,
    /// The replica side's control: the link task's epoch, the cached master.
    pub follower: Mutex<crate::replication::replica::Follower>,
    /// This server follows a master (`replicaof` set): the forward door refuses chunks.
    pub following: AtomicBool,
    /// This server follows a master and the link is not streaming: with
    /// `replica-serve-stale-data no`, commands without the STALE flag get `-MASTERDOWN`.
    pub master_down: AtomicBool,
    /// The diskless full resync waiting for replicas to share it.
    pub jobs: Mutex<crate::replication::master::job::Jobs>,
    /// Unix ms of the last PING the master put in the stream.
    pub last_ping_ms: AtomicI64,
    /// Set by shutdown after the final save: the replica links send what is left and end.
    /// Until then they stream on through the shutdown, so the replicas get every write the
    /// dump holds.
    pub release: watch::Sender<bool>,
}

impl Default for Repl {
    fn default() -> Self {
        Repl {
            ids: Mutex::new(Ids::default()),
            link: Mutex::new(None),
            replicas: Mutex::new(BTreeMap::new()),
            acked: watch::channel(0).0,
            stats: ReplStats::default(),
            no_replicas_since: AtomicI64::new(0),
            follower: Mutex::new(Default::default()),
            following: AtomicBool::new(false),
            master_down: AtomicBool::new(false),
            jobs: Mutex::new(Default::default()),
            last_ping_ms: AtomicI64::new(0),
            release: watch::channel(false).0,
        }
    }
}

impl Repl {
    /// Returns a copy of the ids.
    pub fn ids(&self) -> Ids {
        self.ids.lock().map(|i| i.clone()).unwrap_or_default()
    }

    /// Reports whether this server follows a master (`replicaof` set, by configuration or
    /// `REPLICAOF`).
    pub fn is_following(&self) -> bool {
        self.following.load(Ordering::Acquire)
    }

    /// Returns `master_replid`.
    pub fn replid(&self) -> String {
        self.ids().replid
    }

    /// Returns a copy of the master link's status while this server is a replica.
    pub fn link(&self) -> Option<MasterLink> {
        self.link.lock().ok().and_then(|l| l.clone())
    }

    /// Returns the attached replicas, in attach order.
    pub fn replicas(&self) -> Vec<Arc<ReplicaInfo>> {
        self.replicas
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Counts online replicas whose last ACK reached `offset`.
    pub fn acked_at_least(&self, offset: u64) -> usize {
        self.replicas()
            .iter()
            .filter(|r| {
                r.state() == ReplicaState::Online && r.ack_offset.load(Ordering::Acquire) >= offset
            })
            .count()
    }

    /// Counts online replicas that acked within `max_lag` seconds (`min-replicas-max-lag`,
    /// Redis `refreshGoodSlavesCount`).
    pub fn good_replicas(&self, now_ms: i64, max_lag: u64) -> usize {
        self.replicas()
            .iter()
            .filter(|r| {
                r.state() == ReplicaState::Online
                    && (now_ms - r.ack_time_ms.load(Ordering::Relaxed)) / 1000 <= max_lag as i64
            })
            .count()
    }

    /// Records an ACK from replica `client_id` and wakes whoever waits for acks.
    pub fn record_ack(&self, client_id: u64, offset: u64, now_ms: i64) {
        let found = self
            .replicas
            .lock()
            .ok()
            .and_then(|m| m.get(&client_id).cloned());
        if let Some(r) = found {
            r.ack_offset.fetch_max(offset, Ordering::AcqRel);
            r.ack_time_ms.store(now_ms, Ordering::Relaxed);
            self.acked.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifted_ids_accept_the_old_history_up_to_the_switch() {
        let mut ids = Ids::default();
        let old = ids.replid.clone();
        assert_eq!(ids.replid.len(), 40);
        assert!(ids.replid.bytes().all(|b| b.is_ascii_hexdigit()));
        ids.shift(100);
        assert_eq!(ids.replid2, old);
        assert_ne!(ids.replid, old);
        assert_eq!(ids.second_offset, 101);
        assert!(ids.knows(&old, 101));
        assert!(!ids.knows(&old, 102));
        assert!(!ids.knows(NO_REPLID, 0) || ids.replid2 == NO_REPLID);
    }
}
