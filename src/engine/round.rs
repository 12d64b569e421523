//! A round: one run of a set of checks under one deadline, whose results any
//! number of scrapes can read.
//!
//! The round starts its checks one after another, paced by the config's
//! [`crate::config::Pace`] (so that its own burst does not become part of
//! what it measures); each check runs in its own task and records its
//! outcome as soon as it ends. A check whose turn comes after the deadline
//! never starts and is reported cut off at its first stage. A scrape waits for the round to finish or for its own deadline,
//! whichever comes first, then takes a [`Round::snapshot`]: checks still
//! running are reported as `generic_timeout_error` at the stage they are in.
//! So a scrape never waits past its deadline, even one that joined a round
//! started by a scrape with a longer one.
//!
//! A round also gathers the evidence of the verdicts whose checks are all
//! in it ([`evidence`]), and judges them from the same snapshot
//! ([`Round::verdicts`]).

pub mod evidence;

use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use crate::engine::catalogue::Catalogue;
use crate::engine::lag::{LagSamples, TaskDelay};
use crate::engine::run::{What, run_check};
use crate::ids::{EntryId, PlanId, SlotId};
use crate::probe::{self, Outcome, Progress};
use crate::stats::Stats;
use crate::verdict::{self, Evidence};

/// One run of some checks of a catalogue.
#[derive(Debug)]
pub struct Round {
    /// The catalogue the checks belong to.
    pub catalogue: Arc<Catalogue>,
    /// The checks it runs, in catalogue order.
    pub checks: Vec<EntryId>,
    /// When the round started.
    pub started: Instant,
    /// When the round started, by the wall clock (for the status page).
    pub started_at: std::time::SystemTime,
    /// For each catalogue entry, its position in `checks` (`None` when not
    /// in this round).
    position: Vec<Option<usize>>,
    /// Plans judged in this round: those whose checks are all in it.
    plans: Vec<PlanId>,
    progress: Vec<Progress>,
    outcomes: Vec<OnceLock<Outcome>>,
    evidence: Vec<Mutex<Evidence>>,
    /// Whether each regime reference's handshake succeeded, once it ended.
    references: Vec<OnceLock<bool>>,
    lag: LagSamples,
    /// Bumped each time a check ends.
    ended: watch::Sender<usize>,
    done: watch::Sender<bool>,
}

impl Round {
    /// Starts running `checks` of `catalogue`, each until it ends or
    /// `deadline` passes, and the evidence of the verdicts they make up;
    /// `permit` holds one permit per check (each released as its check
    /// ends), and every check that ends is counted in `stats`.
    pub fn start(
        catalogue: Arc<Catalogue>,
        checks: Vec<EntryId>,
        deadline: Instant,
        mut permit: tokio::sync::OwnedSemaphorePermit,
        stats: Arc<Stats>,
    ) -> Arc<Round> {
        let n = checks.len();
        let mut position = vec![None; catalogue.len()];
        for (k, &id) in checks.iter().enumerate() {
            position[id.index()] = Some(k);
        }
        let plans: Vec<PlanId> = catalogue
            .plans()
            .filter(|(_, p)| p.inputs().all(|i| position[i.index()].is_some()))
            .map(|(id, _)| id)
            .collect();
        let progress = checks
            .iter()
            .map(|&id| Progress::at(probe::first_stage(&catalogue.entry(id).check)))
            .collect();
        let round = Arc::new(Round {
            evidence: (0..catalogue.evidence_slots)
                .map(|_| Mutex::new(Evidence::Waiting))
                .collect(),
            references: catalogue
                .references()
                .iter()
                .map(|_| OnceLock::new())
                .collect(),
            catalogue,
            checks,
            started: Instant::now(),
            started_at: std::time::SystemTime::now(),
            position,
            plans,
            progress,
            outcomes: (0..n).map(|_| OnceLock::new()).collect(),
            lag: LagSamples::default(),
            ended: watch::Sender::new(0),
            done: watch::Sender::new(false),
        });
        let driver = round.clone();
        tokio::spawn(async move {
            let sampler = driver.clone();
            let done = driver.done.subscribe();
            let (first, sampled) = tokio::sync::oneshot::channel();
            tokio::spawn(async move { sampler.lag.sample_until(done, first).await });
            let mut tasks = JoinSet::new();
            // Evidence first: each task waits for the checks it reads. The
            // regime's references, a handful of handshakes, start at once.
            driver.spawn_evidence(&mut tasks, deadline);
            driver.spawn_references(&mut tasks, deadline);
            // Then the checks, one every `interval` (paced: README, "Paced rounds").
            let interval = driver
                .catalogue
                .config
                .pace
                .interval(n, deadline.saturating_duration_since(driver.started));
            for k in 0..n {
                let at = driver.started + interval.mul_f64(k as f64);
                // A start already due goes now: a timer would wait for its
                // next tick.
                if at > Instant::now() {
                    tokio::time::sleep_until(at).await;
                }
                // Finished checks free their task now, not at the round's end.
                while tasks.try_join_next().is_some() {}
                let r = driver.clone();
                let stats = stats.clone();
                // `permit` holds n permits: one goes with each check.
                let mine = permit.split(1);
                if Instant::now() >= deadline {
                    // Its turn came too late: cut off before it started.
                    let check = &r.catalogue.entry(r.checks[k]).check;
                    let outcome = r.progress[k].not_started();
                    stats.check_ended(check.kind(), false, true);
                    r.finish(k, outcome);
                    continue;
                }
                tasks.spawn(async move {
                    let what = What::Entry(r.checks[k]);
                    let progress = &r.progress[k];
                    let outcome = match mine {
                        Some(p) => {
                            run_check(&r.catalogue, what, deadline, progress, p, &stats).await
                        }
                        // Never: the reservation was made for n checks.
                        None => progress.cut_off(),
                    };
                    r.finish(k, outcome);
                });
            }
            while tasks.join_next().await.is_some() {}
            // A round that ends before the sampler first ran still reports
            // a delay (that wait), so that every round has the same series.
            let _ = sampled.await;
            driver.done.send_replace(true);
        });
        round
    }

    /// Spawns into `tasks` the gathering of every piece of evidence the
    /// round's verdicts need, each until `deadline`, in its own span.
    fn spawn_evidence(self: &Arc<Self>, tasks: &mut JoinSet<()>, deadline: Instant) {
        for &p in &self.plans {
            for (c, case) in self.catalogue.plan(p).cases.iter().enumerate() {
                let Some(slot) = case.evidence() else {
                    continue;
                };
                let r = self.clone();
                tasks.spawn(async move {
                    let plan = r.catalogue.plan(p);
                    // Its lines name the verdict they are evidence for.
                    let span = tracing::debug_span!(
                        "evidence",
                        service = r.catalogue.service_name(plan.service),
                        verdict = plan.kind.as_str(),
                        target = plan.target.as_str(),
                    );
                    let gather = evidence::gather(&r, &plan.cases[c], r.slot(slot), deadline);
                    let _ = tokio::time::timeout_at(deadline, gather)
                        .instrument(span)
                        .await;
                });
            }
        }
    }

    /// Records the outcome of the `k`th check.
    fn finish(&self, k: usize, outcome: Outcome) {
        // Each slot is written once, by the check's task (or the driver, for
        // a check that never started).
        let _ = self.outcomes[k].set(outcome);
        self.ended.send_modify(|c| *c += 1);
    }

    /// How long the exporter's own tasks waited to run during this round
    /// (so far); `None` before the first sample.
    pub fn task_delay(&self) -> Option<TaskDelay> {
        self.lag.summary()
    }

    /// Spawns into `tasks` the handshake of each regime reference, until
    /// `deadline`, each in a `regime` span naming its side and target.
    fn spawn_references(self: &Arc<Self>, tasks: &mut JoinSet<()>, deadline: Instant) {
        for i in 0..self.references.len() {
            let r = self.clone();
            tasks.spawn(async move {
                let reference = &r.catalogue.references()[i];
                let target = match &reference.check {
                    crate::config::Check::Tls(t) => t.target.written.as_str(),
                    _ => "",
                };
                let span = tracing::debug_span!("regime", side = reference.side.as_str(), target);
                let progress = Progress::default();
                let outcome = async {
                    let o = r.catalogue.run_reference(i, deadline, &progress).await;
                    if let Some((stage, reason)) = o.failure {
                        tracing::debug!(
                            stage = stage.as_str(),
                            reason = reason.as_str(),
                            "reference failed"
                        );
                    }
                    o
                }
                .instrument(span)
                .await;
                let _ = r.references[i].set(outcome.is_ok());
            });
        }
    }

    /// The network regime judged from the references once each has ended
    /// (at the round's deadline at the latest: one cut off there failed);
    /// `None` when the config has none, or while one still runs (a scrape
    /// that joined a longer round and reads it at its own, earlier
    /// deadline, or the status page during the round).
    pub fn regime(&self) -> Option<verdict::NetworkRegime> {
        let results: Option<Vec<(crate::config::Side, bool)>> = self
            .catalogue
            .references()
            .iter()
            .zip(&self.references)
            .map(|(r, done)| Some((r.side, *done.get()?)))
            .collect();
        verdict::regime(&results?)
    }

    fn slot(&self, id: SlotId) -> &Mutex<Evidence> {
        &self.evidence[id.index()]
    }

    /// The verdicts this round judges: those whose checks are all in it.
    pub fn plans(&self) -> &[PlanId] {
        &self.plans
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

    /// Waits until each of `entries` has ended (true), or `until` passes
    /// (false).
    pub async fn wait_for(&self, entries: &[EntryId], until: Instant) -> bool {
        let mut rx = self.ended.subscribe();
        let all = |_: &usize| entries.iter().all(|&e| self.outcome_of(e).is_some());
        matches!(
            tokio::time::timeout_at(until, rx.wait_for(all)).await,
            Ok(Ok(_))
        )
    }

    /// The outcome of check `entry`, if it is in this round and has ended.
    pub fn outcome_of(&self, entry: EntryId) -> Option<&Outcome> {
        let k = (*self.position.get(entry.index())?)?;
        self.outcomes.get(k)?.get()
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

    /// What the round gathered in evidence slot `slot` (waiting, when it
    /// holds none).
    pub fn evidence_of(&self, slot: SlotId) -> verdict::Evidence {
        self.evidence
            .get(slot.index())
            .and_then(|m| m.lock().ok().map(|e| e.clone()))
            .unwrap_or_default()
    }

    /// The verdicts this round can judge, from `snapshot` (this round's
    /// [`Round::snapshot`]): `(plan, blocked)`; a verdict that cannot be
    /// judged is left out. While the network regime is not open, none is
    /// judged: nothing can be blamed on one service.
    pub fn verdicts(&self, snapshot: &[Outcome]) -> Vec<(PlanId, bool)> {
        if self
            .regime()
            .is_some_and(|r| r != verdict::NetworkRegime::Open)
        {
            return Vec::new();
        }
        let outcome = |entry: EntryId| {
            let k = (*self.position.get(entry.index())?)?;
            snapshot.get(k)
        };
        let evidence = |slot: SlotId| self.evidence_of(slot);
        self.plans
            .iter()
            .filter_map(|&p| {
                verdict::judge(self.catalogue.plan(p), &outcome, &evidence).map(|v| (p, v))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A round can end before the delay sampler first runs (here: it has
    /// no checks, and the one runtime thread is the driver's until it
    /// ends). It still reports a delay, so that every round of a push
    /// queue or a scrape has the same series.
    #[tokio::test]
    async fn a_round_that_ends_at_once_still_reports_a_task_delay() {
        let yaml = "services:\n  chat:\n    tcp: [\"127.0.0.1:9\"]\n";
        let config = crate::config::Config::parse(yaml, std::path::Path::new("t.yaml")).unwrap();
        let cat = Arc::new(Catalogue::new(config).unwrap());
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let permit = cat.reserve(0).unwrap();
        let round = Round::start(cat, Vec::new(), deadline, permit, Arc::default());
        round.wait(deadline).await;
        assert!(round.is_done());
        let delay = round
            .task_delay()
            .expect("a delay, from the sampler's first run");
        assert_eq!(delay.samples, 1);
    }
}
