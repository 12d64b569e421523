//! How long the exporter's own ready tasks wait to run while a round is
//! running: what our own clock may have added to a figure the kernel does
//! not time for us (DNS, QUIC, STUN, HTTP, downloads).
//!
//! A sampler task wakes every [`SAMPLE_EVERY`] (and once at the round's
//! start), and each sample is how late its timer woke it (beyond the
//! timer's 1 ms resolution: a thread held by other work) plus how long it
//! then waited to run again after yielding (which puts it at the back of
//! the run queue, behind every task woken before it).

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

pub use crate::stats::TaskDelay;

/// tokio's timers fire on the first millisecond tick at or after their
/// deadline: lateness up to this much is the timer's, not ours.
const TIMER_RESOLUTION: Duration = Duration::from_millis(1);

/// Time between two samples.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// The samples of one round.
#[derive(Debug, Default)]
pub struct LagSamples(Mutex<Vec<Duration>>);

impl LagSamples {
    fn record(&self, d: Duration) {
        // Poisoning needs a panic while holding this lock; none can occur.
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(d);
    }

    /// The samples so far; `None` before the first.
    pub fn summary(&self) -> Option<TaskDelay> {
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        // Nearest rank: the smallest sample with at least q of them at or below it.
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Some(TaskDelay {
            p50: rank(0.5),
            p99: rank(0.99),
            max: v[v.len() - 1],
            samples: v.len(),
        })
    }

    /// Samples until `done` turns true (or its sender is gone), and sends
    /// on `first` once the first sample is in.
    pub async fn sample_until(&self, mut done: watch::Receiver<bool>, first: oneshot::Sender<()>) {
        let mut first = Some(first);
        let mut late = Duration::ZERO;
        loop {
            let t = Instant::now();
            tokio::task::yield_now().await;
            self.record(t.elapsed() + late.saturating_sub(TIMER_RESOLUTION));
            if let Some(tx) = first.take() {
                let _ = tx.send(());
            }
            let due = Instant::now() + SAMPLE_EVERY;
            tokio::select! {
                () = tokio::time::sleep_until(due) => late = due.elapsed(),
                _ = done.wait_for(|d| *d) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_takes_nearest_ranks() {
        let s = LagSamples::default();
        assert_eq!(s.summary(), None);
        for us in 1..=200u64 {
            s.record(Duration::from_micros(us));
        }
        let d = s.summary().unwrap();
        assert_eq!(d.p50, Duration::from_micros(100));
        assert_eq!(d.p99, Duration::from_micros(198));
        assert_eq!(d.max, Duration::from_micros(200));
        assert_eq!(d.samples, 200);
        let one = LagSamples::default();
        one.record(Duration::from_millis(3));
        let d = one.summary().unwrap();
        assert_eq!(
            (d.p50, d.p99, d.max),
            (
                Duration::from_millis(3),
                Duration::from_millis(3),
                Duration::from_millis(3)
            )
        );
    }

    /// A task that hogs the only runtime thread for 30 ms shows as a
    /// delay of about that much; an idle runtime shows next to none.
    #[tokio::test]
    async fn a_busy_runtime_shows() {
        let samples = std::sync::Arc::new(LagSamples::default());
        let (tx, rx) = watch::channel(false);
        let s = samples.clone();
        let (first, sampled) = tokio::sync::oneshot::channel();
        let sampler = tokio::spawn(async move { s.sample_until(rx, first).await });
        sampled.await.expect("told of the first sample");
        assert_eq!(samples.summary().map(|d| d.samples), Some(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let idle = samples.summary().expect("sampled at once").max;
        assert!(idle < Duration::from_millis(5), "idle: {idle:?}");
        // The sampler is due while this blocks the thread.
        tokio::spawn(async { std::thread::sleep(Duration::from_millis(30)) });
        tokio::time::sleep(Duration::from_millis(60)).await;
        tx.send_replace(true);
        sampler.await.unwrap();
        let busy = samples.summary().unwrap();
        assert!(busy.max >= Duration::from_millis(20), "{busy:?}");
        assert!(busy.samples >= 3, "{busy:?}");
    }
}
