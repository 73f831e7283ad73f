//! The server cron (Redis `serverCron`): active expiry and memory sampling, `hz` times a second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::state::ServerState;

/// Keys sampled per database per round (Redis `ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`).
const SAMPLE: usize = 20;
/// Keep going while more than this share of a sample was expired (Redis: 10% with effort 1).
const REPEAT_PERCENT: usize = 10;

/// Runs the cron until shutdown.
pub async fn run(state: Arc<ServerState>, _drain: mpsc::Sender<()>) {
    let mut shutdown = state.shutdown_tx.subscribe();
    loop {
        let hz = state.with_config(|c| c.hz).max(1);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(1000 / hz as u64)) => {}
            _ = shutdown.changed() => return,
        }
        crate::memory::refresh(&state);
        {
            let mut st = state.engine.lock();
            let commands = st.stats.total_commands_processed;
            let records = st.stats.resp_records + state.metrics.forward.records.get();
            st.tracking
                .sample(state.clock.now_ms(), commands, records, &state.net);
        }
        active_expire_cycle(&state, Duration::from_micros(250_000 / hz as u64));
        crate::persist::save::cron(&state);
        crate::persist::aof::rewrite::cron(&state);
        crate::replication::master::feed::cron(&state);
    }
}

/// Removes expired keys by sampling, within `budget` of CPU time, taking the engine lock in
/// short rounds so writers never wait long. Deletions go into the write stream as `DEL`.
/// Replicas skip this: their master's `DEL`s remove keys.
pub fn active_expire_cycle(state: &ServerState, budget: Duration) {
    let start = Instant::now();
    let dbs = state.engine.lock().ks.dbs.len();
    for db in 0..dbs {
        loop {
            let mut st = state.engine.lock();
            if st.is_replica {
                return;
            }
            let now = state.clock.now_ms();
            let mut rng = std::mem::replace(&mut st.rng, rand::SeedableRng::seed_from_u64(0));
            let sample = st.ks.dbs[db].sample_expiring(&mut rng, SAMPLE);
            st.rng = rng;
            if sample.is_empty() {
                break;
            }
            let mut expired = 0;
            for key in &sample {
                let due = st.ks.dbs[db]
                    .get(key)
                    .and_then(|e| e.expire_at())
                    .is_some_and(|at| at <= now);
                if due && st.ks.dbs[db].remove(key).is_some() {
                    expired += 1;
                    st.stats.expired_keys += 1;
                    st.stream
                        .append(db, &[Bytes::from_static(b"DEL"), key.clone()]);
                    st.touch(db, key);
                }
            }
            drop(st);
            if expired * 100 <= sample.len() * REPEAT_PERCENT {
                break;
            }
            if start.elapsed() > budget {
                state.engine.lock().stats.expired_time_cap_reached_count += 1;
                return;
            }
        }
    }
}
