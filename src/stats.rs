//! The exporter's own counters: checks run by kind and result, checks cut
//! off by a deadline, and requests refused by status code. Kept by the
//! [`crate::engine::Engine`] across config reloads (counters only grow),
//! updated with relaxed atomics, rendered by [`crate::metrics`].

use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::CheckKind;

/// Status codes of refused requests (the `code` label).
pub const REFUSED: [u16; 6] = [400, 401, 403, 404, 414, 503];

/// How many checks of one kind ended since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckCounts {
    /// Passed.
    pub ok: u64,
    /// Failed.
    pub failed: u64,
    /// Cut off by a deadline (passed or failed).
    pub cut: u64,
}

/// Counters since the exporter started.
#[derive(Debug, Default)]
pub struct Stats {
    ok: [AtomicU64; CheckKind::ALL.len()],
    failed: [AtomicU64; CheckKind::ALL.len()],
    cut: [AtomicU64; CheckKind::ALL.len()],
    refused: [AtomicU64; REFUSED.len()],
}

impl Stats {
    /// Records a check of `kind` that ended: passed or failed, and whether
    /// a deadline cut it off.
    pub fn check_ended(&self, kind: CheckKind, ok: bool, cut: bool) {
        let i = kind.index();
        let c = if ok { &self.ok[i] } else { &self.failed[i] };
        c.fetch_add(1, Ordering::Relaxed);
        if cut {
            self.cut[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records a refused request.
    pub fn refused(&self, code: u16) {
        if let Some(i) = REFUSED.iter().position(|c| *c == code) {
            self.refused[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts of each kind, indexed by [`CheckKind::index`].
    pub fn checks(&self) -> [CheckCounts; CheckKind::ALL.len()] {
        std::array::from_fn(|i| CheckCounts {
            ok: self.ok[i].load(Ordering::Relaxed),
            failed: self.failed[i].load(Ordering::Relaxed),
            cut: self.cut[i].load(Ordering::Relaxed),
        })
    }

    /// `(code, count)` of refused requests.
    pub fn refusals(&self) -> [(u16, u64); REFUSED.len()] {
        std::array::from_fn(|i| (REFUSED[i], self.refused[i].load(Ordering::Relaxed)))
    }
}

/// Push mode's counters (`remote_write:`), kept across reloads.
#[derive(Debug, Default)]
pub struct PushStats {
    sent: AtomicU64,
    dropped: AtomicU64,
    retried: AtomicU64,
    queued: AtomicU64,
    last_success: AtomicU64,
}

/// Push mode's figures, as a scrape renders them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PushCounts {
    /// Samples the receiver accepted.
    pub sent: u64,
    /// Samples dropped: past the queue's bounds, or refused by a 4xx.
    pub dropped: u64,
    /// Samples whose sending failed and is retried (each failure counts).
    pub retried: u64,
    /// Samples waiting in the queue now.
    pub queued: u64,
    /// When a push last succeeded, seconds since the epoch (0: never).
    pub last_success: f64,
}

impl PushStats {
    /// Adds `n` samples sent, at `now` (seconds since the epoch).
    pub fn sent(&self, n: u64, now: f64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
        self.last_success.store(now.to_bits(), Ordering::Relaxed);
    }

    /// Adds `n` samples dropped.
    pub fn dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds `n` samples to be retried.
    pub fn retried(&self, n: u64) {
        self.retried.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the samples waiting now.
    pub fn queued(&self, n: u64) {
        self.queued.store(n, Ordering::Relaxed);
    }

    /// The figures now.
    pub fn counts(&self) -> PushCounts {
        PushCounts {
            sent: self.sent.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            last_success: f64::from_bits(self.last_success.load(Ordering::Relaxed)),
        }
    }
}

/// How long the exporter's own ready tasks waited to run during a round
/// (sampled by [`crate::engine::lag`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TaskDelay {
    /// The median delay.
    pub p50: std::time::Duration,
    /// The 99th percentile.
    pub p99: std::time::Duration,
    /// The longest.
    pub max: std::time::Duration,
    /// How many samples.
    pub samples: usize,
}
