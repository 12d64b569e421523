//! The engine: the current [`Catalogue`] (swapped atomically on reload),
//! rounds that concurrent scrapes share, ad hoc `/probe` checks, reloads
//! (file, SIGHUP, polling) and the scrape budget. It knows nothing of HTTP:
//! [`crate::server`] routes requests to it and renders what it returns.
//!
//! - [`catalogue`]: what one config load builds.
//! - [`round`]: one run of checks under one deadline, with the evidence its
//!   verdicts need.
//! - [`run`]: the one way a check runs (permit, span, statistics).
//! - [`schedule`]: the rounds of services with `every:`, on a timer.
//! - [`locator`]: the censor searches that verdicts call for.

pub mod catalogue;
pub mod lag;
pub mod locator;
pub mod round;
pub mod run;
pub mod schedule;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use tokio::time::Instant;

use crate::config::{Check, Config};
use crate::engine::catalogue::{Busy, Catalogue};
use crate::engine::round::Round;
use crate::engine::run::{What, run_check};
use crate::ids::{EntryId, PlanId, ServiceId};
use crate::metrics::SelfStats;
use crate::probe::{Outcome, Progress};
use crate::stats::Stats;

/// The deadline used when a scrape does not announce a usable timeout
/// (Prometheus' default scrape timeout).
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest scrape timeout honoured: a larger (or infinite) announced
/// timeout is capped to it.
pub const MAX_SCRAPE_TIMEOUT: Duration = Duration::from_secs(300);

/// Which checks a round runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every configured check (`/metrics`, the status page).
    All,
    /// One service's checks (`/probe?service=`).
    Service(ServiceId),
}

/// State shared by all requests.
pub struct Engine {
    catalogue: ArcSwap<Catalogue>,
    config_file: PathBuf,
    timeout_offset: Duration,
    inflight: Mutex<HashMap<Scope, Arc<Round>>>,
    rounds: AtomicU64,
    scrapes: AtomicU64,
    reload_ok: AtomicBool,
    reload_ts: AtomicU64,
    stats: Arc<Stats>,
    push: crate::stats::PushStats,
    locator: Arc<locator::Locator>,
    schedule: schedule::Schedule,
    /// Whether the config's `listen` is where we serve (no flag overrode
    /// it): a reload that changes it is then worth a warning.
    listen_from_config: AtomicBool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config_file", &self.config_file)
            .finish()
    }
}

/// A config reload that failed; the running config is kept.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Clients could not be built from it.
    #[error(transparent)]
    Build(#[from] crate::engine::catalogue::BuildError),
}

/// An ad hoc probe that was not run.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No module has that name.
    #[error("unknown module {0:?}")]
    UnknownModule(String),
    /// The target does not fit the module.
    #[error("target for module {module:?}: {reason}")]
    BadTarget {
        /// The module.
        module: String,
        /// Why.
        reason: String,
    },
    /// `probe_allow` does not admit the target.
    #[error("target {0:?} is not allowed by probe_allow")]
    NotAllowed(String),
    /// Over `max_concurrent_checks`.
    #[error(transparent)]
    Busy(#[from] Busy),
}

/// A round as a scrape serves it.
#[derive(Debug)]
pub struct Served {
    /// The round (its catalogue and checks).
    pub round: Arc<Round>,
    /// Its outcomes when served, in `round.checks` order.
    pub outcomes: Vec<Outcome>,
    /// The verdicts judged from them.
    pub verdicts: Vec<(PlanId, bool)>,
    /// Whether it is the latest round of a service with `every:`.
    pub scheduled: bool,
}

impl Served {
    /// Its share of the scrape's series.
    pub fn part(&self) -> crate::metrics::Part<'_> {
        let since = self.round.started_at.duration_since(UNIX_EPOCH);
        let started = since.map_or(0.0, |d| d.as_secs_f64());
        crate::metrics::Part {
            catalogue: &self.round.catalogue,
            checks: &self.round.checks,
            outcomes: &self.outcomes,
            verdicts: &self.verdicts,
            scheduled: self.scheduled.then_some(started),
        }
    }

    fn now(round: Arc<Round>, scheduled: bool) -> Served {
        let outcomes = round.snapshot();
        let verdicts = round.verdicts(&outcomes);
        Served {
            round,
            outcomes,
            verdicts,
            scheduled,
        }
    }
}

/// What a scrape renders.
#[derive(Debug)]
pub struct Scraped {
    /// The rounds served: first the scrape's own (whose network regime
    /// and task delay are reported), then the latest of each service with
    /// `every:` in the scope.
    pub served: Vec<Served>,
    /// The latest censor search of each target whose verdict is 1.
    pub located: Vec<locator::Found>,
    /// The exporter's own figures.
    pub own: SelfStats,
}

/// A scrape that was not served.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// Over `max_concurrent_checks`.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// No service has that name (it is echoed in the message, never in a
    /// label).
    #[error("unknown service {0:?}")]
    UnknownService(String),
    /// A scheduled service's first round is still running.
    #[error("service {service:?} runs every {every}: its first round has not ended yet")]
    NotYet {
        /// The service.
        service: String,
        /// Its `every`, as humantime writes it.
        every: String,
    },
}

/// An ad hoc check's result: what to render.
#[derive(Debug)]
pub struct Probed {
    /// The module's name (the series' `service`).
    pub module: String,
    /// The check made from the target.
    pub check: Check,
    /// Its outcome.
    pub outcome: Outcome,
    /// The config it ran under (for vantage labels).
    pub catalogue: Arc<Catalogue>,
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The deadline of a scrape that announced `announced` (`None`: no usable
/// announcement): the announcement less `offset`, never less than half of
/// it, leaving time for the response.
pub fn budget(announced: Option<Duration>, offset: Duration) -> Duration {
    let t = announced.unwrap_or(DEFAULT_SCRAPE_TIMEOUT);
    t.saturating_sub(offset).max(t / 2)
}

impl Engine {
    /// An engine serving `catalogue`, which was loaded from `config_file`
    /// (read again on reload). `timeout_offset` is subtracted from the
    /// scrape timeout Prometheus announces.
    pub fn new(
        catalogue: Catalogue,
        config_file: PathBuf,
        timeout_offset: Duration,
    ) -> Arc<Engine> {
        Arc::new(Engine {
            catalogue: ArcSwap::from_pointee(catalogue),
            config_file,
            timeout_offset,
            inflight: Mutex::new(HashMap::new()),
            rounds: AtomicU64::new(0),
            scrapes: AtomicU64::new(0),
            reload_ok: AtomicBool::new(true),
            reload_ts: AtomicU64::new(now_epoch().to_bits()),
            stats: Arc::new(Stats::default()),
            push: crate::stats::PushStats::default(),
            locator: Arc::default(),
            schedule: schedule::Schedule::default(),
            listen_from_config: AtomicBool::new(false),
        })
    }

    /// Warn on a reload that changes `listen`: we serve where the config
    /// said at start, and moving needs a restart.
    pub fn warn_on_listen_change(&self) {
        self.listen_from_config.store(true, Ordering::Relaxed);
    }

    /// The catalogue serving now.
    pub fn catalogue(&self) -> Arc<Catalogue> {
        self.catalogue.load_full()
    }

    /// The exporter's own counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Push mode's counters.
    pub fn push_stats(&self) -> &crate::stats::PushStats {
        &self.push
    }

    /// Reads the config file again; on success the new checks serve the next
    /// round, on failure the running config stays and the error is returned.
    pub fn reload(&self) -> Result<(), ReloadError> {
        let result = Config::load(&self.config_file)
            .map_err(ReloadError::from)
            .and_then(|c| Catalogue::new(c).map_err(ReloadError::from));
        match result {
            Ok(cat) => {
                let was = &self.catalogue.load().config.listen;
                if self.listen_from_config.load(Ordering::Relaxed) && *was != cat.config.listen {
                    tracing::warn!(
                        serving = %was,
                        configured = %cat.config.listen,
                        "listen changed: the new address needs a restart; still serving on the old one"
                    );
                }
                self.catalogue.store(Arc::new(cat));
                self.reload_ok.store(true, Ordering::Relaxed);
                self.reload_ts
                    .store(now_epoch().to_bits(), Ordering::Relaxed);
                tracing::info!(file = %self.config_file.display(), "config reloaded");
                Ok(())
            }
            Err(e) => {
                self.reload_ok.store(false, Ordering::Relaxed);
                tracing::error!(error = %e, "config reload failed; keeping the running config");
                Err(e)
            }
        }
    }

    /// The effective deadline for a scrape announcing `announced` seconds.
    pub fn budget(&self, announced: Option<Duration>) -> Duration {
        budget(announced, self.timeout_offset)
    }

    /// The round for `scope` (of `cat`) that `keep` accepts, else a new
    /// one of `cat` running until `deadline` — if `max_concurrent_checks`
    /// leaves room for it. A service's round is kept only under the same
    /// catalogue: its id means another service in another one.
    pub fn round_for(
        &self,
        cat: Arc<Catalogue>,
        scope: Scope,
        deadline: Instant,
        keep: impl Fn(&Round, &Catalogue) -> bool,
    ) -> Result<Arc<Round>, Busy> {
        // Poisoning needs a panic while holding this lock; none can occur.
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        let same = |r: &Round| std::ptr::eq(Arc::as_ptr(&r.catalogue), Arc::as_ptr(&cat));
        match inflight.get(&scope) {
            Some(r) if (scope == Scope::All || same(r)) && keep(r, &cat) => Ok(r.clone()),
            _ => {
                let checks: Vec<EntryId> = match scope {
                    Scope::All => cat.scraped_entries(),
                    Scope::Service(s) => cat.entries_of(s).collect(),
                };
                let permit = cat.reserve(checks.len())?;
                let r = Round::start(cat, checks, deadline, permit, self.stats.clone());
                self.rounds.fetch_add(1, Ordering::Relaxed);
                inflight.insert(scope, r.clone());
                Ok(r)
            }
        }
    }

    /// What the status page shows: the latest round of every check if it
    /// runs or ran under the current config and started within `fresh`
    /// (`min_interval`, if longer), else a new one running until
    /// `deadline`; when `max_concurrent_checks` leaves no room for a new
    /// one, the latest there is. With it, the ended rounds of single
    /// services (`/probe?service=`) that started after it, under the same
    /// config, and the latest ended round of each service with `every:`
    /// under it.
    pub fn status_rounds(
        &self,
        fresh: Duration,
        deadline: Instant,
    ) -> Result<(Arc<Round>, Vec<Arc<Round>>), Busy> {
        let same = |r: &Round, cat: &Catalogue| std::ptr::eq(Arc::as_ptr(&r.catalogue), cat);
        let main = self.round_for(self.catalogue(), Scope::All, deadline, |r, cat| {
            same(r, cat)
                && (!r.is_done() || r.started.elapsed() < fresh.max(cat.config.min_interval))
        });
        // Poisoning needs a panic while holding this lock; none can occur.
        let inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        let main = match main {
            Ok(r) => r,
            Err(busy) => inflight.get(&Scope::All).cloned().ok_or(busy)?,
        };
        let mut newer: Vec<Arc<Round>> = inflight
            .iter()
            .filter(|(scope, r)| {
                // Service ids are the catalogue's: compare catalogues first.
                same(r, &main.catalogue)
                    && matches!(scope, Scope::Service(s) if main.catalogue.every(*s).is_none())
                    && r.is_done()
                    && r.started > main.started
            })
            .map(|(_, r)| r.clone())
            .collect();
        let scheduled = self.schedule.latest(&main.catalogue, None);
        newer.extend(scheduled.into_iter().filter(|r| same(r, &main.catalogue)));
        Ok((main, newer))
    }

    /// An ad hoc probe of `target` with module `module`: refused for an
    /// unknown module, a malformed target, a target that `probe_allow`
    /// does not admit (before any packet is sent), or when busy.
    pub async fn probe_target(
        &self,
        target: &str,
        module: &str,
        announced: Option<Duration>,
    ) -> Result<Probed, ProbeError> {
        let start = Instant::now();
        let cat = self.catalogue.load_full();
        let (index, m) = cat
            .config
            .modules
            .iter()
            .enumerate()
            .find(|(_, m)| m.name == module)
            .ok_or_else(|| ProbeError::UnknownModule(module.to_string()))?;
        let check = m
            .check_for(target)
            .map_err(|reason| ProbeError::BadTarget {
                module: module.to_string(),
                reason,
            })?;
        if !cat.config.probe_allowed(&check) {
            return Err(ProbeError::NotAllowed(target.to_string()));
        }
        let permit = cat.reserve(1)?;
        self.scrapes.fetch_add(1, Ordering::Relaxed);
        let deadline = start + self.budget(announced);
        let what = What::Module {
            module: index,
            name: &m.name,
            check: &check,
        };
        let progress = Progress::default();
        let outcome = run_check(&cat, what, deadline, &progress, permit, &self.stats).await;
        Ok(Probed {
            module: m.name.clone(),
            check,
            outcome,
            catalogue: cat.clone(),
        })
    }

    /// Runs (or joins) a round of every service, or of the one named
    /// `service`, and takes its snapshot at the scrape's deadline, with the
    /// latest ended round of each service with `every:` in the scope. A
    /// scrape of one such service serves only its latest round, and is
    /// refused until the first has ended.
    pub async fn scrape(
        &self,
        service: Option<&str>,
        announced: Option<Duration>,
    ) -> Result<Scraped, ScrapeError> {
        let start = Instant::now();
        let deadline = start + self.budget(announced);
        let cat = self.catalogue.load_full();
        let scope = match service {
            None => Scope::All,
            Some(name) => match cat.service_named(name) {
                Some(id) => Scope::Service(id),
                None => return Err(ScrapeError::UnknownService(name.to_string())),
            },
        };
        self.scrapes.fetch_add(1, Ordering::Relaxed);
        let mut served = match scope {
            Scope::Service(s) if cat.every(s).is_some() => Vec::new(),
            _ => {
                // Join a round still running; within min_interval of the
                // last round's start, serve that round (unless the config
                // changed).
                let round = self.round_for(cat.clone(), scope, deadline, |r, cat| {
                    !r.is_done()
                        || (std::ptr::eq(Arc::as_ptr(&r.catalogue), cat)
                            && r.started.elapsed() < cat.config.min_interval)
                })?;
                round.wait(deadline).await;
                vec![Served::now(round, false)]
            }
        };
        let only = match scope {
            Scope::All => None,
            Scope::Service(s) => Some(s),
        };
        let scheduled = self.schedule.latest(&cat, only);
        served.extend(scheduled.into_iter().map(|r| Served::now(r, true)));
        let Some(round) = served.first().map(|s| s.round.clone()) else {
            // Only a scrape of one scheduled service serves no round.
            let service = only.map_or("", |s| cat.service_name(s)).to_string();
            let every = only.and_then(|s| cat.every(s)).unwrap_or_default();
            let every = humantime::format_duration(every).to_string();
            return Err(ScrapeError::NotYet { service, every });
        };
        let located = served
            .iter()
            .flat_map(|s| self.locator.after_scrape(&s.round.catalogue, &s.verdicts))
            .collect();
        let own = SelfStats {
            scrape_duration_seconds: start.elapsed().as_secs_f64(),
            rounds_total: self.rounds.load(Ordering::Relaxed),
            scrapes_total: self.scrapes.load(Ordering::Relaxed),
            reload_ok: self.reload_ok.load(Ordering::Relaxed),
            reload_success_timestamp: f64::from_bits(self.reload_ts.load(Ordering::Relaxed)),
            process: crate::process::read(),
            checks: self.stats.checks(),
            refused: self.stats.refusals(),
            in_flight: round.catalogue.in_flight(),
            task_delay: round.task_delay(),
            push: cat.config.remote_write.as_ref().map(|_| self.push.counts()),
        };
        Ok(Scraped {
            served,
            located,
            own,
        })
    }

    /// The latest censor search of each target whose verdict in `rounds`
    /// is 1, starting the searches those verdicts call for (as a scrape
    /// does): for the status page.
    pub fn located(&self, rounds: &[&Round]) -> Vec<locator::Found> {
        rounds
            .iter()
            .flat_map(|round| {
                let verdicts = round.verdicts(&round.snapshot());
                self.locator.after_scrape(&round.catalogue, &verdicts)
            })
            .collect()
    }

    /// Runs the rounds of services with `every:` on their timers, and the
    /// censor searches their verdicts call for, until the process ends.
    pub async fn run_schedule(self: Arc<Engine>) {
        loop {
            let cat = self.catalogue.load_full();
            let tick = self.schedule.tick(&cat, &self.stats);
            self.rounds.fetch_add(tick.started, Ordering::Relaxed);
            for round in &tick.ended {
                let verdicts = round.verdicts(&round.snapshot());
                let _ = self.locator.after_scrape(&round.catalogue, &verdicts);
            }
            tokio::time::sleep(tick.wait).await;
        }
    }

    /// Reloads the config on every SIGHUP, until the process ends.
    pub fn reload_on_sighup(self: &Arc<Engine>) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup())?;
        let engine = self.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                let e = engine.clone();
                // The outcome is logged and exported by reload itself.
                let _ = tokio::task::spawn_blocking(move || e.reload()).await;
            }
        });
        Ok(())
    }

    /// Reloads the config whenever the content of its file or of one of the
    /// test lists it reads changes, checking every `every`. Polling the
    /// content (not inotify) also sees a Kubernetes ConfigMap update, which
    /// swaps a symlink rather than writing the file. A change that fails to
    /// load is not retried until a file changes again.
    pub async fn watch_config(self: Arc<Engine>, every: Duration) {
        let read = |e: &Engine| {
            let mut all = vec![std::fs::read(&e.config_file).ok()];
            let lists = &e.catalogue.load().config.list_files;
            all.extend(lists.iter().map(|f| std::fs::read(f).ok()));
            all
        };
        let mut seen = read(&self);
        loop {
            tokio::time::sleep(every).await;
            let now = read(&self);
            if now[0].is_some() && now != seen {
                let e = self.clone();
                // The outcome is logged and exported by reload itself.
                let _ = tokio::task::spawn_blocking(move || e.reload()).await;
                // What the config now in use reads: its lists may differ
                // (after a failed reload, the old config's lists).
                seen = read(&self);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_leaves_the_offset_but_never_less_than_half() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let offset = ms(500);
        // No usable header: Prometheus' default, less the offset.
        assert_eq!(budget(None, offset), ms(9_500));
        assert_eq!(budget(Some(s(4)), offset), ms(3_500));
        // A short announcement keeps half of itself.
        assert_eq!(budget(Some(ms(800)), offset), ms(400));
        assert_eq!(budget(Some(ms(1_000)), offset), ms(500));
        assert_eq!(budget(Some(ms(1_001)), offset), ms(501));
        assert_eq!(budget(Some(s(300)), offset), ms(299_500));
        assert_eq!(budget(Some(s(4)), Duration::ZERO), s(4));
        assert_eq!(budget(Some(s(4)), s(10)), s(2));
    }
}
