//! Pacing for background snapshot writers (BGSAVE, AOF rewrites): `snapshot-cpu-percent` of
//! one core while they run.
//!
//! A snapshot writer streams the whole dataset through the CPU. On a machine with few cores
//! it shares caches and memory bandwidth with the thread serving clients, and lowering its
//! scheduling priority does not help (measured: nice +10 or SCHED_IDLE left the writers' p99
//! at ~2× its value without a save, the same as a fork-based Redis). Working in short bursts
//! with pauses between them does: at 50% the RPUSH p99 during back-to-back BGSAVEs went from
//! ~1.8× to ~1.4× of its value without one (three runs each), and each save took twice as
//! long. Not paced: replication's full syncs (a replica waits for them) and `GET /backup`,
//! where pacing halved the speed and left the p99 where it was (the client and the HTTP
//! stack stay busy while the encoder pauses).

use std::io::{self, Write};
use std::time::{Duration, Instant};

/// Work at least this long between pauses, so a pause is worth its system call and the
/// scheduler's granularity does not distort the share.
const BURST: Duration = Duration::from_millis(2);

/// A writer that pauses after a write once it has worked [`BURST`] since its last pause, so
/// its thread works `percent` of the time (put it under the buffering, where writes are
/// large: each one reads the clock).
pub struct Paced<W> {
    inner: W,
    percent: u32,
    /// When the work since the last pause began.
    since: Instant,
}

impl<W> Paced<W> {
    /// Wraps `inner` for `percent` of one core; ≥ 100 never pauses.
    pub fn new(inner: W, percent: u32) -> Self {
        Paced {
            inner,
            percent: percent.max(1),
            since: Instant::now(),
        }
    }

    /// Returns the inner writer.
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// Sleeps for the pause the work since the last one calls for, once it is long enough.
    fn pace(&mut self) {
        if self.percent >= 100 {
            return;
        }
        let worked = self.since.elapsed();
        if worked < BURST {
            return;
        }
        std::thread::sleep(pause_for(worked, self.percent));
        self.since = Instant::now();
    }
}

/// The pause after `worked` that makes the share of work `percent`.
fn pause_for(worked: Duration, percent: u32) -> Duration {
    worked * (100 - percent.min(100)) / percent.max(1)
}

impl<W: Write> Write for Paced<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pace();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_give_the_asked_share() {
        let ms = Duration::from_millis;
        assert_eq!(pause_for(ms(10), 50), ms(10));
        assert_eq!(pause_for(ms(10), 25), ms(30));
        assert_eq!(pause_for(ms(10), 100), Duration::ZERO);
        assert_eq!(pause_for(ms(10), 0), ms(1000));
    }

    #[test]
    fn bytes_pass_through_unchanged() {
        let mut w = Paced::new(Vec::new(), 50);
        for i in 0..100u8 {
            w.write_all(&[i; 3]).unwrap();
        }
        w.flush().unwrap();
        let out = w.into_inner();
        assert_eq!(out.len(), 300);
        assert!(out.chunks(3).enumerate().all(|(i, c)| c == [i as u8; 3]));
    }
}
