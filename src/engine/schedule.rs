//! The background scheduler: the rounds of services with `every:`, which
//! run on a timer instead of on each scrape; scrapes serve the latest that
//! ended.
//!
//! Each such service has at most one round running. A new one starts when
//! the latest started `every` ago and has ended, or at once after a reload
//! (the latest ran under another config). Its budget is unhurried
//! ([`crate::config::Pace::unhurried`]): every check gets its whole
//! timeout, whatever the scrape timeout, which is what `every:` is for
//! (a long download or upload). Rounds are kept by service name, so that
//! across a reload scrapes go on serving the latest round until the new
//! config's first one ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::catalogue::Catalogue;
use crate::engine::round::Round;
use crate::ids::EntryId;
use crate::stats::Stats;

/// The longest the scheduler sleeps: a reload or a round that ended is
/// noticed within it.
const TICK: Duration = Duration::from_secs(1);

/// The rounds of one scheduled service.
#[derive(Debug, Default)]
struct Slot {
    /// The latest round known to have ended.
    ended: Option<Arc<Round>>,
    /// The round started after it, until it is seen to have ended.
    running: Option<Arc<Round>>,
}

impl Slot {
    /// The latest round that ended.
    fn latest(&self) -> Option<&Arc<Round>> {
        match &self.running {
            Some(r) if r.is_done() => Some(r),
            _ => self.ended.as_ref(),
        }
    }
}

/// The scheduled services' rounds, by service name.
#[derive(Debug, Default)]
pub struct Schedule {
    slots: Mutex<HashMap<String, Slot>>,
}

/// What one pass of the scheduler did.
#[derive(Debug, Default)]
pub struct Tick {
    /// Rounds started.
    pub started: u64,
    /// Rounds seen to have ended since the last pass.
    pub ended: Vec<Arc<Round>>,
    /// How long until the next round is due (at most one scheduler tick).
    pub wait: Duration,
}

impl Schedule {
    /// Starts the rounds due under `cat`, forgets the services that are no
    /// longer scheduled, and says how long to sleep.
    pub fn tick(&self, cat: &Arc<Catalogue>, stats: &Arc<Stats>) -> Tick {
        // Poisoning needs a panic while holding this lock; none can occur.
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.retain(|name, _| {
            cat.service_named(name)
                .is_some_and(|s| cat.every(s).is_some())
        });
        let mut tick = Tick {
            wait: TICK,
            ..Tick::default()
        };
        for (service, every) in cat.scheduled() {
            let name = cat.service_name(service);
            let slot = slots.entry(name.to_string()).or_default();
            if let Some(r) = slot.running.take_if(|r| r.is_done()) {
                tick.ended.push(r.clone());
                slot.ended = Some(r);
            }
            if slot.running.is_some() {
                continue;
            }
            let due_in = match &slot.ended {
                Some(r) if std::ptr::eq(Arc::as_ptr(&r.catalogue), Arc::as_ptr(cat)) => {
                    every.saturating_sub(r.started.elapsed())
                }
                // None yet, or one under a config since reloaded.
                _ => Duration::ZERO,
            };
            if !due_in.is_zero() {
                tick.wait = tick.wait.min(due_in);
                continue;
            }
            let checks: Vec<EntryId> = cat.entries_of(service).collect();
            let longest = checks.iter().map(|&c| cat.entry(c).check.timeout()).max();
            let budget = cat
                .config
                .pace
                .unhurried(checks.len(), longest.unwrap_or_default());
            match cat.reserve(checks.len()) {
                Ok(permit) => {
                    let deadline = Instant::now() + budget;
                    let round = Round::start(cat.clone(), checks, deadline, permit, stats.clone());
                    slot.running = Some(round);
                    tick.started += 1;
                }
                Err(busy) => {
                    tracing::warn!(
                        service = name,
                        "scheduled round not started: {busy}; trying again"
                    );
                }
            }
        }
        tick
    }

    /// The latest round that ended of each service `cat` schedules (of
    /// `only`, when given), in config order; a service whose first round
    /// has not ended has none.
    pub fn latest(&self, cat: &Catalogue, only: Option<crate::ids::ServiceId>) -> Vec<Arc<Round>> {
        // Poisoning needs a panic while holding this lock; none can occur.
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        cat.scheduled()
            .filter(|(s, _)| only.is_none_or(|o| o == *s))
            .filter_map(|(s, _)| slots.get(cat.service_name(s))?.latest().cloned())
            .collect()
    }
}
