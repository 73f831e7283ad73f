//! Role changes (`shared/spec/redis.md` §2.7, §2.8): one path for `replicaof` in the
//! configuration, `REPLICAOF host port` / `SLAVEOF`, and `REPLICAOF NO ONE`; and what a
//! restart restores from the dump's replication fields.
//!
//! Every change runs with the engine lock held and bumps the follower epoch, so a link task
//! of the previous role can never apply a command or swap a snapshot in afterwards.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tracing::info;

use super::link;
use crate::cmd::exec::EngineState;
use crate::cmd::Reply;
use crate::replication::state::MasterLink;
use crate::state::ServerState;

/// What a blocked client (list pop, WAIT) gets when the server turns replica, before its
/// connection is closed (Redis `disconnectAllBlockedClients`: the reply, then
/// `CLIENT_CLOSE_AFTER_REPLY`).
pub const UNBLOCKED: &str =
    "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)";

/// Makes this server a replica of `host:port` (Redis `replicationSetMaster`): writes are
/// refused from now on, the data stays until a full sync replaces it, and a link task
/// connects in the background. A former master caches its own replication id and offset,
/// so it can partially resync with a new master that used to be its replica. Attached
/// sub-replicas are kept: they may partially resync with us later.
pub fn become_replica(srv: &Arc<ServerState>, st: &mut EngineState, host: String, port: u16) {
    let was_master = !st.is_replica;
    if let Ok(mut c) = srv.config.write() {
        c.replicaof = Some((host.clone(), port));
    }
    srv.refresh_hot();
    unblock_all(srv, st);
    st.is_replica = true;
    if was_master {
        st.stream.set_proxy(true);
    }
    let mut f = lock_follower(srv);
    f.retire();
    if f.linked {
        // Freeing the master client caches it (Redis `replicationCacheMaster`).
        f.linked = false;
        f.cached = true;
    }
    if was_master {
        // Redis `replicationCacheMasterUsingMyself`: the new master starts its stream with
        // a SELECT, so any database will do.
        f.cached = true;
        f.master_db = 0;
    }
    set_link(srv, Some(MasterLink::new(host.clone(), port)));
    srv.repl.following.store(true, Ordering::Release);
    srv.repl.master_down.store(true, Ordering::Release);
    info!("Connecting to MASTER {host}:{port}");
    f.task = Some(link::spawn(srv.clone(), f.epoch, host, port));
}

/// Turns this replica into a master (Redis `replicationUnsetMaster`): the link stops, the
/// replication id shifts (the old one stays valid as `replid2` up to our offset, so our
/// sub-replicas and the master's other replicas can partially resync with us), and the
/// sub-replicas are disconnected to learn the new id.
pub fn become_master(srv: &ServerState, st: &mut EngineState) {
    {
        let mut f = lock_follower(srv);
        f.retire();
        f.linked = false;
        f.cached = false;
    }
    if let Ok(mut c) = srv.config.write() {
        c.replicaof = None;
    }
    srv.refresh_hot();
    let offset = st.stream.offset();
    let ids = {
        let mut ids = srv.repl.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.shift(offset);
        ids.clone()
    };
    tracing::warn!(
        "Setting secondary replication ID to {}, valid up to offset: {}. New replication ID is {}",
        ids.replid2,
        ids.second_offset,
        ids.replid
    );
    st.stream.set_proxy(false);
    st.stream.reset_selected_db();
    st.is_replica = false;
    set_link(srv, None);
    srv.repl.following.store(false, Ordering::Release);
    srv.repl.master_down.store(false, Ordering::Release);
    srv.repl
        .no_replicas_since
        .store(srv.clock.now_ms() / 1000, Ordering::Relaxed);
    disconnect_replicas(srv);
}

/// Sets up the replica role from `replicaof` in the configuration, before anything is
/// loaded: the dump then loads as a replica's (expired keys kept, the cached master
/// restored) and no client ever sees the data as a master's.
pub fn prepare_at_start(srv: &ServerState) {
    let Some((host, port)) = srv.with_config(|c| c.replicaof.clone()) else {
        return;
    };
    let mut st = srv.engine.lock();
    st.is_replica = true;
    st.stream.set_proxy(true);
    set_link(srv, Some(MasterLink::new(host, port)));
    srv.repl.following.store(true, Ordering::Release);
    srv.repl.master_down.store(true, Ordering::Release);
}

/// Starts the link task of a replica configured at start, once its data is loaded.
pub fn start_at_start(srv: &Arc<ServerState>) {
    let Some((host, port)) = srv.with_config(|c| c.replicaof.clone()) else {
        return;
    };
    let _st = srv.engine.lock();
    let mut f = lock_follower(srv);
    f.retire();
    info!("Connecting to MASTER {host}:{port}");
    f.task = Some(link::spawn(srv.clone(), f.epoch, host, port));
}

/// Applies the replication fields of a dump loaded at start (`repl-id`, `repl-offset`,
/// `repl-stream-db`; Redis `loadDataFromDisk`):
/// - a replica makes them its cached master, so it asks `PSYNC <id> <offset+1>` and can
///   continue where it stopped;
/// - a master keeps them as `replid2`, valid up to `offset+1`, and continues its write
///   stream from `offset`, so its replicas can partially resync after its restart.
pub fn restore_ids(srv: &ServerState, st: &mut EngineState, repl: Option<(String, i64, i64)>) {
    let Some((id, offset, db)) = repl else {
        return;
    };
    if offset < 0 || id.len() != 40 {
        return;
    }
    let offset = offset as u64;
    let mut ids = srv.repl.ids.lock().unwrap_or_else(|p| p.into_inner());
    if st.is_replica {
        ids.adopt(id);
        drop(ids);
        st.stream.reset(offset);
        let mut f = lock_follower(srv);
        f.cached = true;
        f.master_db = usize::try_from(db).unwrap_or(0).min(st.ks.dbs.len() - 1);
    } else {
        ids.replid2 = id;
        ids.second_offset = offset as i64 + 1;
        drop(ids);
        st.stream.reset(offset);
    }
}

/// Locks the follower state (a poisoned lock still holds consistent flags).
pub(super) fn lock_follower(srv: &ServerState) -> std::sync::MutexGuard<'_, super::Follower> {
    srv.repl.follower.lock().unwrap_or_else(|p| p.into_inner())
}

/// Replaces the master link's status (INFO replication, ROLE).
fn set_link(srv: &ServerState, link: Option<MasterLink>) {
    let mut l = srv.repl.link.lock().unwrap_or_else(|p| p.into_inner());
    *l = link;
}

/// Disconnects every attached sub-replica (Redis `disconnectSlaves`): they reconnect and
/// resync, partially when our history allows it.
pub fn disconnect_replicas(srv: &ServerState) {
    let ids: Vec<u64> = srv
        .repl
        .replicas
        .lock()
        .map(|m| m.keys().copied().collect())
        .unwrap_or_default();
    if ids.is_empty() {
        return;
    }
    let clients = srv.clients.list();
    for c in clients.iter().filter(|c| ids.contains(&c.id)) {
        c.kill();
    }
}

/// Answers every client blocked on a list with `-UNBLOCKED …`: their command cannot be
/// served by a replica.
fn unblock_all(srv: &ServerState, st: &mut EngineState) {
    if st.blocked.is_empty() {
        return;
    }
    for c in srv.clients.list() {
        if st.blocked.is_blocked(c.id) {
            st.blocked
                .unblock_client(c.id, Some(Reply::Error(UNBLOCKED.into())));
        }
    }
}
