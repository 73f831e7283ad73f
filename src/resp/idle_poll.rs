//! Polling the sockets for a short while before the I/O thread sleeps, while clients are
//! busy.
//!
//! With one I/O thread that serves requests faster than its clients send them, the thread
//! goes to sleep in `epoll_wait` between most requests, and every request then pays for a
//! wake-up: the client's `send` runs the scheduler's wake-up of the sleeping thread and, on a
//! virtual machine, an interrupt to wake its idle CPU (perf: 10% of redis-benchmark's time at
//! `LRANGE_600 -P1` against kura, 4% against redis-server, which is slower and so sleeps half
//! as often). The client is the bottleneck there, so that cost was kura's throughput.
//!
//! A task that keeps the I/O thread polling (each turn a non-blocking `epoll_wait`) while
//! batches of requests come less than [`WINDOW`] apart removes those wake-ups while traffic
//! is dense, and costs nothing otherwise: the task sleeps until the next batch once a window
//! passes without one, and starts polling again only when two batches come within a window
//! of each other (a server answering a request a millisecond never spins). Each burst of
//! dense traffic costs at most one window of spinning after its end.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How long the thread keeps polling after the last batch: a few times the gap between
/// requests of a busy client (tens of µs), far below what a sleeping CPU costs to wake.
pub const WINDOW: Duration = Duration::from_micros(200);

/// Counts request batches and wakes the polling task when one arrives while it sleeps.
#[derive(Debug, Default)]
pub struct IdlePoll {
    /// Batches seen, as a change marker (only compared, so lost updates do not matter).
    batches: AtomicU64,
    /// The polling task sleeps until the next batch.
    asleep: AtomicBool,
    /// The polling task keeps the thread polling.
    polling: AtomicBool,
    wake: Notify,
}

impl IdlePoll {
    /// Notes a batch of requests (called by connections once per read batch: a load and a
    /// store, plus a wake-up when the polling task sleeps).
    pub fn note_batch(&self) {
        let n = self.batches.load(Ordering::Relaxed);
        self.batches.store(n.wrapping_add(1), Ordering::Relaxed);
        if self.asleep.load(Ordering::Relaxed) && self.asleep.swap(false, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    /// Runs the polling task until the runtime stops.
    pub async fn run(&self) {
        let mut woke: Option<Instant> = None;
        loop {
            let seen = self
                .sleep_until_batch(self.batches.load(Ordering::Relaxed))
                .await;
            let now = Instant::now();
            let dense = woke.is_some_and(|w| now.duration_since(w) < WINDOW);
            woke = Some(now);
            // Sparse traffic (the batch before this one came more than a window ago) does
            // not start the polling: it would spin a window for every request.
            if dense {
                self.poll_while_busy(seen).await;
                woke = Some(Instant::now());
            }
        }
    }

    /// Reports whether the polling task keeps the thread polling now.
    pub fn polling(&self) -> bool {
        self.polling.load(Ordering::Relaxed)
    }

    /// Keeps the thread polling until no batch came for [`WINDOW`].
    async fn poll_while_busy(&self, seen: u64) {
        self.polling.store(true, Ordering::Relaxed);
        self.spin(seen).await;
        self.polling.store(false, Ordering::Relaxed);
    }

    async fn spin(&self, mut seen: u64) {
        let mut last = Instant::now();
        loop {
            // A yielded task runs again only after the runtime polled its I/O driver without
            // blocking, and ran whatever that woke.
            tokio::task::yield_now().await;
            let now = self.batches.load(Ordering::Relaxed);
            if now != seen {
                seen = now;
                last = Instant::now();
            } else if last.elapsed() >= WINDOW {
                return;
            }
        }
    }

    /// Sleeps until a batch after the `seen`th; returns the count then.
    async fn sleep_until_batch(&self, seen: u64) -> u64 {
        let notified = self.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        self.asleep.store(true, Ordering::SeqCst);
        // A batch between the caller's count and the flag would have found no sleeper.
        if self.batches.load(Ordering::SeqCst) == seen {
            notified.await;
        }
        self.asleep.store(false, Ordering::Relaxed);
        self.batches.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Runs `body` beside a polling task on a one-thread runtime, like a server's I/O thread.
    fn with_task(
        body: impl FnOnce(Arc<IdlePoll>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let poll = Arc::new(IdlePoll::default());
        let task = poll.clone();
        rt.block_on(async move {
            let handle = tokio::spawn(async move { task.run().await });
            body(poll).await;
            handle.abort();
        });
    }

    async fn pause(d: Duration) {
        tokio::time::sleep(d).await;
    }

    #[test]
    fn dense_batches_start_polling_and_a_quiet_window_stops_it() {
        with_task(|poll| {
            Box::pin(async move {
                pause(Duration::from_millis(5)).await;
                assert!(!poll.polling(), "polling before any request");
                // Two batches within a window start the polling (a few tries: a busy test
                // machine may stall this thread for longer than a window between them).
                let mut started = false;
                for _ in 0..50 {
                    poll.note_batch();
                    tokio::task::yield_now().await;
                    poll.note_batch();
                    tokio::task::yield_now().await;
                    tokio::task::yield_now().await;
                    if poll.polling() {
                        started = true;
                        break;
                    }
                    pause(WINDOW * 5).await;
                }
                assert!(
                    started,
                    "two batches within a window never started the polling"
                );
                // Batches keep it going well past one window...
                for _ in 0..20 {
                    poll.note_batch();
                    tokio::task::yield_now().await;
                }
                assert!(poll.polling());
                // ...and a quiet window ends it: the task sleeps, the thread may too.
                pause(WINDOW * 10).await;
                assert!(!poll.polling(), "still polling after a quiet window");
                assert!(poll.asleep.load(Ordering::Relaxed));
            })
        });
    }

    #[test]
    fn sparse_batches_never_start_polling() {
        with_task(|poll| {
            Box::pin(async move {
                for _ in 0..5 {
                    poll.note_batch();
                    tokio::task::yield_now().await;
                    tokio::task::yield_now().await;
                    assert!(
                        !poll.polling(),
                        "a batch after a quiet spell started polling"
                    );
                    pause(WINDOW * 5).await;
                }
            })
        });
    }
}
