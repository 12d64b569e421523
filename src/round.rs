//! A round: one run of a set of checks under one deadline, whose results any
//! number of scrapes can read.
//!
//! Each check runs in its own task and records its outcome as soon as it
//! ends. A scrape waits for the round to finish or for its own deadline,
//! whichever comes first, then takes a [`Round::snapshot`]: checks still
//! running are reported as `generic_timeout_error` at the stage they are in.
//! So a scrape never waits past its deadline, even one that joined a round
//! started by a scrape with a longer one.

use std::sync::{Arc, OnceLock};

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::probe::{Catalogue, Outcome, Progress};

/// One run of some checks of a catalogue.
#[derive(Debug)]
pub struct Round {
    /// The catalogue the checks belong to.
    pub catalogue: Arc<Catalogue>,
    /// Indices into the catalogue's entries.
    pub checks: Vec<usize>,
    /// When the round started.
    pub started: Instant,
    /// When the round started, by the wall clock (for the status page).
    pub started_at: std::time::SystemTime,
    progress: Vec<Progress>,
    outcomes: Vec<OnceLock<Outcome>>,
    done: watch::Sender<bool>,
}

impl Round {
    /// Starts running `checks` of `catalogue`, each until it ends or
    /// `deadline` passes.
    pub fn start(catalogue: Arc<Catalogue>, checks: Vec<usize>, deadline: Instant) -> Arc<Round> {
        let n = checks.len();
        let round = Arc::new(Round {
            catalogue,
            checks,
            started: Instant::now(),
            started_at: std::time::SystemTime::now(),
            progress: (0..n).map(|_| Progress::default()).collect(),
            outcomes: (0..n).map(|_| OnceLock::new()).collect(),
            done: watch::Sender::new(false),
        });
        let driver = round.clone();
        tokio::spawn(async move {
            let mut tasks = JoinSet::new();
            for i in 0..n {
                let r = driver.clone();
                tasks.spawn(async move {
                    let outcome = r.catalogue.run(r.checks[i], deadline, &r.progress[i]).await;
                    // Each slot is written once, by this task only.
                    let _ = r.outcomes[i].set(outcome);
                });
            }
            while tasks.join_next().await.is_some() {}
            driver.done.send_replace(true);
        });
        round
    }

    /// Whether every check has ended.
    pub fn is_done(&self) -> bool {
        *self.done.borrow()
    }

    /// Waits until the round is done or `until` passes.
    pub async fn wait(&self, until: Instant) {
        let mut rx = self.done.subscribe();
        let _ = tokio::time::timeout_at(until, rx.wait_for(|done| *done)).await;
    }

    /// The outcome of every check that has ended, in `checks` order (`None`
    /// for one still running).
    pub fn partial(&self) -> Vec<Option<Outcome>> {
        self.outcomes.iter().map(|o| o.get().cloned()).collect()
    }

    /// The outcome of every check, in `checks` order; a check still running
    /// is reported by [`Progress::cut_off`].
    pub fn snapshot(&self) -> Vec<Outcome> {
        self.outcomes
            .iter()
            .zip(&self.progress)
            .map(|(o, p)| match o.get() {
                Some(o) => o.clone(),
                None => p.cut_off(),
            })
            .collect()
    }
}
