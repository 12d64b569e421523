//! The exporter's own counters: checks run by kind and result, checks cut
//! off by a deadline, and requests refused by status code. Kept by the
//! [`crate::engine::Engine`] across config reloads (counters only grow),
//! updated with relaxed atomics, rendered by [`crate::metrics`].

use std::sync::atomic::{AtomicU64, Ordering};

/// Check kinds, in the order of the counters (the `check` label).
pub const KINDS: [&str; 7] = ["dns", "tcp", "tls", "call_port", "http", "download", "quic"];

/// Status codes of refused requests (the `code` label).
pub const REFUSED: [u16; 6] = [400, 401, 403, 404, 414, 503];

/// Counters since the exporter started.
#[derive(Debug, Default)]
pub struct Stats {
    ok: [AtomicU64; 7],
    failed: [AtomicU64; 7],
    cut: [AtomicU64; 7],
    refused: [AtomicU64; 6],
}

fn kind_index(kind: &str) -> usize {
    // Every Check::kind() is listed; an unknown one would count as dns.
    KINDS.iter().position(|k| *k == kind).unwrap_or(0)
}

impl Stats {
    /// Records a check of `kind` that ended: passed or failed, and whether
    /// a deadline cut it off.
    pub fn check_ended(&self, kind: &str, ok: bool, cut: bool) {
        let i = kind_index(kind);
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

    /// `(kind, passed, failed, cut)` per kind.
    pub fn checks(&self) -> impl Iterator<Item = (&'static str, u64, u64, u64)> + '_ {
        KINDS.iter().enumerate().map(|(i, k)| {
            (
                *k,
                self.ok[i].load(Ordering::Relaxed),
                self.failed[i].load(Ordering::Relaxed),
                self.cut[i].load(Ordering::Relaxed),
            )
        })
    }

    /// `(code, count)` of refused requests.
    pub fn refusals(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        REFUSED
            .iter()
            .zip(&self.refused)
            .map(|(c, n)| (*c, n.load(Ordering::Relaxed)))
    }
}
