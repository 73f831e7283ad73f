//! The link task (`shared/spec/redis.md` §2.2, §2.6): connects to the master, runs the
//! handshake a stock Redis 7.0 replica runs, asks for a partial resync, falls back to a
//! full one, then streams; after a failure it tries again every second (Redis
//! `replicationCron`), after a lost established link at once, with the master's state
//! cached for `PSYNC <replid> <offset+1>`.
//!
//! Log lines are Redis's words, so operators who know Redis read them without a glossary.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tracing::{info, warn};

use super::conn::{command, io_text, LinkError, MasterConn};
use super::role::{disconnect_replicas, lock_follower};
use super::stream::{self, Applier};
use super::sync::{self, Target};
use crate::cmd::{Origin, Session};
use crate::replication::state::{new_replid, LinkState, NO_REPLID};
use crate::state::ServerState;

/// Each handshake reply must arrive within this (Redis's compiled-in
/// `repl_syncio_timeout`).
const SYNCIO_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest pause between attempts after snapshots that do not load.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// The outcome of PSYNC.
enum Psync {
    /// `+CONTINUE [<new replid>]`.
    Continue(Option<String>),
    /// `+FULLRESYNC` (or the `SYNC` fallback): a snapshot follows.
    Full(Target),
}

/// Starts the link task of `epoch`.
pub fn spawn(
    srv: Arc<ServerState>,
    epoch: u64,
    host: String,
    port: u16,
) -> tokio::task::AbortHandle {
    tokio::spawn(run(srv, epoch, host, port)).abort_handle()
}

/// Sets the link state (ROLE, INFO).
fn set_state(srv: &ServerState, state: LinkState) {
    let mut l = srv.repl.link.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(link) = l.as_mut() {
        link.state = state;
    }
}

/// Records that the link is down; `cache` says what becomes of a streaming master's state
/// (kept for PSYNC after a lost link, dropped after a corrupt stream). Returns false when a
/// role change retired this task.
fn link_down(srv: &ServerState, epoch: u64, cache: bool) -> bool {
    let _st = srv.engine.lock();
    let mut f = lock_follower(srv);
    if f.epoch != epoch {
        return false;
    }
    if f.linked {
        f.linked = false;
        f.cached = cache;
    } else if !cache {
        f.cached = false;
    }
    drop(f);
    let mut l = srv.repl.link.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(link) = l.as_mut() {
        if link.state == LinkState::Connected {
            link.down_since = Some(Instant::now());
        }
        link.state = LinkState::Connect;
        link.last_io = None;
        link.sync_total = -1;
        link.sync_read = 0;
        link.sync_last_io = None;
    }
    srv.repl.master_down.store(true, Ordering::Release);
    true
}

/// The task: attempts until a role change retires it.
async fn run(srv: Arc<ServerState>, epoch: u64, host: String, port: u16) {
    let db = lock_follower(&srv).master_db;
    let mut sess = Session::internal(Origin::Master, db);
    let mut applier = Applier::default();
    let mut delay: Option<Duration> = None;
    let mut unloadable = 0u32;
    loop {
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
            if lock_follower(&srv).epoch != epoch {
                return;
            }
            info!("Connecting to MASTER {host}:{port}");
        }
        let result = attempt(&srv, epoch, &host, port, &mut sess, &mut applier).await;
        applier.reset(&mut sess);
        let Err(e) = result else { return };
        match e {
            LinkError::Retired => return,
            LinkError::Lost(why) => {
                if !why.is_empty() {
                    warn!("{why}");
                }
                warn!("Connection with master lost.");
                if !link_down(&srv, epoch, true) {
                    return;
                }
                info!("Caching the disconnected master state.");
                info!("Reconnecting to MASTER {host}:{port}");
                delay = None;
                unloadable = 0;
            }
            LinkError::Desync(why) => {
                warn!("{why}");
                warn!("Connection with master lost.");
                if !link_down(&srv, epoch, false) {
                    return;
                }
                info!("Reconnecting to MASTER {host}:{port}");
                delay = None;
            }
            LinkError::Failed(why) => {
                warn!("{why}");
                if !link_down(&srv, epoch, true) {
                    return;
                }
                delay = Some(Duration::from_secs(1));
            }
            LinkError::Unloadable(why) => {
                warn!("{why}");
                if !link_down(&srv, epoch, true) {
                    return;
                }
                // Each retry costs the master a snapshot: back off while it keeps failing.
                unloadable = (unloadable + 1).min(6);
                let d = Duration::from_secs(1 << unloadable).min(MAX_RETRY_DELAY);
                warn!(
                    "the master's snapshot could not be loaded; retrying the sync in {} s",
                    d.as_secs()
                );
                delay = Some(d);
            }
        }
    }
}

/// One connection: connect, handshake, sync, stream.
async fn attempt(
    srv: &Arc<ServerState>,
    epoch: u64,
    host: &str,
    port: u16,
    sess: &mut Session,
    applier: &mut Applier,
) -> Result<(), LinkError> {
    set_state(srv, LinkState::Connecting);
    info!("MASTER <-> REPLICA sync started");
    let (timeout, no_delay) = srv.with_config(|c| {
        (
            Duration::from_secs(c.repl_timeout.max(1)),
            !c.repl_disable_tcp_nodelay,
        )
    });
    let sock = match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
        Err(_) => {
            return Err(LinkError::Failed(
                "Timeout connecting to the MASTER...".into(),
            ))
        }
        Ok(Err(e)) => {
            return Err(LinkError::Failed(format!(
                "Error condition on socket for SYNC: {}",
                io_text(&e)
            )))
        }
        Ok(Ok(s)) => s,
    };
    if no_delay {
        // An optimisation only: the link works without it.
        sock.set_nodelay(true).ok();
    }
    info!("Non blocking connect for SYNC fired the event.");
    set_state(srv, LinkState::Handshake);
    let mut conn = MasterConn::new(sock, srv.clone());
    match handshake(&mut conn, srv, epoch, timeout).await? {
        Psync::Continue(new_id) => {
            continued(srv, epoch, new_id)?;
            info!("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
            stream::run(&mut conn, srv, epoch, sess, applier, false).await
        }
        Psync::Full(target) => {
            let synced = sync::full_sync(&mut conn, srv, epoch, target).await?;
            sess.db = synced.db;
            stream::run(&mut conn, srv, epoch, sess, applier, synced.eof_framed).await
        }
    }
}

/// Reads one handshake reply line.
async fn reply(conn: &mut MasterConn) -> Result<String, LinkError> {
    let line = conn
        .read_line(SYNCIO_TIMEOUT, "reading the master's reply")
        .await
        .map_err(|e| {
            LinkError::Failed(format!(
                "Master did not respond to command during SYNC handshake ({e})"
            ))
        })?;
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// What the pipelined part of the handshake sent, in order.
enum Sent {
    Auth,
    Port,
    Ip,
    Capa,
}

/// PING, the pipelined AUTH / REPLCONF, then PSYNC and its reply.
async fn handshake(
    conn: &mut MasterConn,
    srv: &Arc<ServerState>,
    epoch: u64,
    timeout: Duration,
) -> Result<Psync, LinkError> {
    conn.send(&command(&[b"PING"]), SYNCIO_TIMEOUT).await?;
    let pong = reply(conn).await?;
    // A "+" reply, or an authentication error (auth comes next); old masters said
    // "operation not permitted".
    if !(pong.starts_with('+')
        || pong.starts_with("-NOAUTH")
        || pong.starts_with("-NOPERM")
        || pong.starts_with("-ERR operation not permitted"))
    {
        return Err(LinkError::Failed(format!(
            "Error reply to PING from master: '{pong}'"
        )));
    }
    info!("Master replied to PING, replication can continue...");
    let (auth, user, announce_port, announce_ip) = srv.with_config(|c| {
        (
            c.masterauth.clone(),
            c.masteruser.clone(),
            c.replica_announce_port,
            c.replica_announce_ip.clone(),
        )
    });
    let port = match announce_port {
        0 => srv.tcp_port.load(Ordering::Relaxed),
        p => p as usize,
    };
    let mut out = Vec::new();
    let mut sent = Vec::new();
    if !auth.is_empty() {
        if user.is_empty() {
            out.extend(command(&[b"AUTH", auth.as_bytes()]));
        } else {
            out.extend(command(&[b"AUTH", user.as_bytes(), auth.as_bytes()]));
        }
        sent.push(Sent::Auth);
    }
    out.extend(command(&[
        b"REPLCONF",
        b"listening-port",
        port.to_string().as_bytes(),
    ]));
    sent.push(Sent::Port);
    if !announce_ip.is_empty() {
        out.extend(command(&[
            b"REPLCONF",
            b"ip-address",
            announce_ip.as_bytes(),
        ]));
        sent.push(Sent::Ip);
    }
    out.extend(command(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"]));
    sent.push(Sent::Capa);
    conn.send(&out, SYNCIO_TIMEOUT).await?;
    for what in sent {
        let r = reply(conn).await?;
        if !r.starts_with('-') {
            continue;
        }
        match what {
            Sent::Auth => {
                return Err(LinkError::Failed(format!("Unable to AUTH to MASTER: {r}")));
            }
            Sent::Port => {
                info!("(Non critical) Master does not understand REPLCONF listening-port: {r}")
            }
            Sent::Ip => {
                info!("(Non critical) Master does not understand REPLCONF ip-address: {r}")
            }
            Sent::Capa => info!("(Non critical) Master does not understand REPLCONF capa: {r}"),
        }
    }
    psync(conn, srv, epoch, timeout).await
}

/// Sends PSYNC (from the cached master when there is one) and reads its reply, skipping the
/// "\n" keepalives a master sends while it prepares a snapshot.
async fn psync(
    conn: &mut MasterConn,
    srv: &Arc<ServerState>,
    epoch: u64,
    timeout: Duration,
) -> Result<Psync, LinkError> {
    let request = {
        let st = srv.engine.lock();
        let f = lock_follower(srv);
        if f.epoch != epoch {
            return Err(LinkError::Retired);
        }
        f.cached
            .then(|| (srv.repl.replid(), st.stream.offset() + 1))
    };
    match &request {
        Some((id, off)) => {
            info!("Trying a partial resynchronization (request {id}:{off}).");
            let off = off.to_string();
            conn.send(
                &command(&[b"PSYNC", id.as_bytes(), off.as_bytes()]),
                SYNCIO_TIMEOUT,
            )
            .await?;
        }
        None => {
            info!("Partial resynchronization not possible (no cached master)");
            conn.send(&command(&[b"PSYNC", b"?", b"-1"]), SYNCIO_TIMEOUT)
                .await?;
        }
    }
    let line = loop {
        let line = conn
            .read_line(timeout, "connecting to the MASTER...")
            .await?;
        if !line.is_empty() {
            break String::from_utf8_lossy(&line).into_owned();
        }
    };
    if let Some(rest) = line.strip_prefix("+FULLRESYNC") {
        let mut words = rest.split_whitespace();
        let target = match (
            words.next(),
            words.next().and_then(|o| o.parse::<u64>().ok()),
        ) {
            (Some(id), Some(offset)) if id.len() == 40 => {
                info!("Full resync from master: {id}:{offset}");
                Target {
                    replid: id.to_string(),
                    offset,
                }
            }
            _ => {
                warn!("Master replied with wrong +FULLRESYNC syntax.");
                Target {
                    replid: NO_REPLID.into(),
                    offset: 0,
                }
            }
        };
        discard_cached(srv, epoch)?;
        return Ok(Psync::Full(target));
    }
    if let Some(rest) = line.strip_prefix("+CONTINUE") {
        info!("Successful partial resynchronization with master.");
        let id = rest.trim();
        return Ok(Psync::Continue((id.len() == 40).then(|| id.to_string())));
    }
    if line.starts_with("-NOMASTERLINK") || line.starts_with("-LOADING") {
        return Err(LinkError::Failed(format!(
            "Master is currently unable to PSYNC but should be in the future: {line}"
        )));
    }
    if line.starts_with("-ERR") {
        info!("Master does not support PSYNC or is in error state (reply: {line})");
    } else {
        warn!("Unexpected reply to PSYNC from master: {line}");
    }
    info!("Retrying with SYNC...");
    conn.send(b"SYNC\r\n", SYNCIO_TIMEOUT).await?;
    discard_cached(srv, epoch)?;
    Ok(Psync::Full(Target {
        replid: new_replid(),
        offset: 0,
    }))
}

/// A full resync is coming: the cached master is of no use any more.
fn discard_cached(srv: &ServerState, epoch: u64) -> Result<(), LinkError> {
    let mut f = lock_follower(srv);
    if f.epoch != epoch {
        return Err(LinkError::Retired);
    }
    if f.cached {
        info!("Discarding previously cached master state.");
        f.cached = false;
    }
    Ok(())
}

/// `+CONTINUE`: the stream goes on from our offset. A new master id (the master was
/// promoted, or restarted) becomes ours, the old one stays valid as `replid2` up to our
/// offset, and our sub-replicas reconnect to learn it.
fn continued(srv: &ServerState, epoch: u64, new_id: Option<String>) -> Result<(), LinkError> {
    let mut st = srv.engine.lock();
    if lock_follower(srv).epoch != epoch {
        return Err(LinkError::Retired);
    }
    let offset = st.stream.offset();
    if !st.stream.is_active() {
        // Restored from a dump, or a former master without replicas: start the history.
        st.stream.reset(offset);
    }
    if let Some(new) = new_id {
        let mut ids = srv.repl.ids.lock().unwrap_or_else(|p| p.into_inner());
        if ids.replid != new {
            warn!("Master replication ID changed to {new}");
            ids.replid2 = std::mem::replace(&mut ids.replid, new);
            ids.second_offset = offset as i64 + 1;
            drop(ids);
            disconnect_replicas(srv);
        }
    }
    Ok(())
}
