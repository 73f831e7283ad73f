//! Per-client session state: what Redis keeps in `client` apart from the socket.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::Bytes;
use indexmap::IndexSet;
use tokio::sync::mpsc;

use super::{Argv, Origin, Reply};
use crate::resp::Protocol;
use crate::state::ClientInfo;

/// `CLIENT REPLY` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// Replies are sent.
    On,
    /// No replies until `CLIENT REPLY ON`.
    Off,
    /// The next command's reply is dropped.
    Skip,
}

/// One client's state.
#[derive(Debug)]
pub struct Session {
    /// Client id (`CLIENT ID`).
    pub id: u64,
    /// Where the commands come from.
    pub origin: Origin,
    /// Selected database.
    pub db: usize,
    /// RESP version.
    pub proto: Protocol,
    /// Passed AUTH (or no password is set).
    pub authenticated: bool,
    /// Commands queued by MULTI; `None` outside a transaction.
    pub multi: Option<Vec<Argv>>,
    /// A queued command was refused: EXEC answers EXECABORT.
    pub multi_error: bool,
    /// Set when a WATCHed key changes.
    pub watch_dirty: Arc<AtomicBool>,
    /// WATCHed keys, with whether each was already expired when watched.
    pub watched: Vec<(usize, Bytes, bool)>,
    /// Subscribed channels.
    pub channels: BTreeSet<Bytes>,
    /// Subscribed patterns, in subscription order (Redis keeps them in a list, and
    /// `PUNSUBSCRIBE` without arguments answers in that order).
    pub patterns: IndexSet<Bytes>,
    /// Subscribed shard channels (`SSUBSCRIBE`).
    pub shard_channels: BTreeSet<Bytes>,
    /// CLIENT REPLY mode.
    pub reply_mode: ReplyMode,
    /// Close once the current replies are written (QUIT, protocol errors, CLIENT KILL).
    pub close_after_reply: bool,
    /// Pushes for this client: pub/sub messages and MONITOR lines.
    pub push_tx: Option<mpsc::UnboundedSender<Reply>>,
    /// Shared, observable facts (CLIENT LIST); `None` for internal sessions.
    pub info: Option<Arc<ClientInfo>>,
    /// The client is a MONITOR.
    pub monitor: bool,
    /// Unix ms shared by the commands of one read batch (0: read the clock per command),
    /// as Redis caches its time per event-loop iteration.
    pub batch_now_ms: i64,
    /// End of the previous command of the batch: the start of the next one's timing, so a
    /// pipelined command costs one clock read, not two.
    pub mark: Option<std::time::Instant>,
    /// The write-stream offset after this client's last command that appended to it
    /// (Redis `c->woff`): what WAIT waits for replicas to ack.
    pub woff: u64,
    /// What REPLCONF announced, if this client is a replica in the making.
    pub replica_hs: Option<Box<crate::replication::master::Handshake>>,
    /// Set by SYNC/PSYNC: the connection hands its socket to the master side.
    pub sync: Option<crate::replication::master::SyncRequest>,
    /// The command this session looked up last.
    pub lookup: super::table::LookupCache,
    /// The command name last given to CLIENT LIST (`info.last_cmd`) by `after_command`.
    pub shown_cmd: &'static str,
}

impl Session {
    /// Returns a session for a RESP client.
    pub fn client(
        id: u64,
        authenticated: bool,
        info: Arc<ClientInfo>,
        push_tx: mpsc::UnboundedSender<Reply>,
    ) -> Self {
        Session {
            id,
            origin: Origin::Client,
            db: 0,
            proto: Protocol::Resp2,
            authenticated,
            multi: None,
            multi_error: false,
            watch_dirty: Arc::new(AtomicBool::new(false)),
            watched: Vec::new(),
            channels: BTreeSet::new(),
            patterns: IndexSet::new(),
            shard_channels: BTreeSet::new(),
            reply_mode: ReplyMode::On,
            close_after_reply: false,
            push_tx: Some(push_tx),
            info: Some(info),
            monitor: false,
            batch_now_ms: 0,
            mark: None,
            woff: 0,
            replica_hs: None,
            sync: None,
            lookup: Default::default(),
            shown_cmd: "NULL",
        }
    }

    /// Returns a session for an internal door (forward, master stream, AOF replay).
    pub fn internal(origin: Origin, db: usize) -> Self {
        Session {
            id: 0,
            origin,
            db,
            proto: Protocol::Resp2,
            authenticated: true,
            multi: None,
            multi_error: false,
            watch_dirty: Arc::new(AtomicBool::new(false)),
            watched: Vec::new(),
            channels: BTreeSet::new(),
            patterns: IndexSet::new(),
            shard_channels: BTreeSet::new(),
            reply_mode: ReplyMode::On,
            close_after_reply: false,
            push_tx: None,
            info: None,
            monitor: false,
            batch_now_ms: 0,
            mark: None,
            woff: 0,
            replica_hs: None,
            sync: None,
            lookup: Default::default(),
            shown_cmd: "NULL",
        }
    }

    /// Returns the number of channel, pattern and shard channel subscriptions: nonzero
    /// exactly while Redis would keep the client's `CLIENT_PUBSUB` flag.
    pub fn subscription_count(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }

    /// Reports whether only subscribe-mode commands are allowed (RESP2 with subscriptions).
    pub fn in_pubsub_context(&self) -> bool {
        self.proto == Protocol::Resp2 && self.subscription_count() > 0
    }
}
