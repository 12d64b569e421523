//! The censor searches ([`crate::locate`]) a scrape's verdicts call for:
//! each TLS check with `locate:` whose `sni_filtered` or `ech_blocked`
//! verdict is 1 gets a search in the background — at most one per target
//! at a time, and at most one per `every`. A scrape never waits for one: it
//! renders the latest that ended.
//!
//! Results are keyed by service name, target and kind, so that a reload
//! that keeps the check keeps them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use crate::config::Check;
use crate::engine::catalogue::Catalogue;
use crate::ids::PlanId;
use crate::locate::Located;
use crate::verdict::BlockingKind;

/// A search's key: service, target (as the verdict labels it), kind.
type Key = (String, String, BlockingKind);

/// The searches of one target and kind.
#[derive(Debug, Default)]
struct State {
    /// When the latest search started, and whether it still runs.
    started: Option<(Instant, bool)>,
    /// The latest search that ended, and when (seconds since the epoch).
    ended: Option<(Located, f64)>,
}

/// The latest search of a target whose verdict is 1 now: what a scrape
/// renders.
#[derive(Debug, Clone)]
pub struct Found {
    /// The service.
    pub service: String,
    /// The verdict's target label.
    pub target: String,
    /// `sni_filtered` or `ech_blocked`.
    pub kind: BlockingKind,
    /// What the search found.
    pub located: Located,
    /// When it ended, seconds since the epoch.
    pub ended: f64,
}

/// Every search, by target.
#[derive(Debug, Default)]
pub struct Locator {
    searches: Mutex<HashMap<Key, State>>,
}

impl Locator {
    /// Starts the searches `verdicts` call for (each verdict 1 of a TLS
    /// check with `locate:` whose target has no search running and none
    /// started within its `every`), and returns the latest ended search
    /// of each target whose verdict is 1.
    pub fn after_scrape(
        self: &Arc<Self>,
        cat: &Arc<Catalogue>,
        verdicts: &[(PlanId, bool)],
    ) -> Vec<Found> {
        let mut found = Vec::new();
        // Poisoning needs a panic while holding this lock; none can occur.
        let mut searches = self.searches.lock().unwrap_or_else(|p| p.into_inner());
        for &(p, blocked) in verdicts {
            let plan = cat.plan(p);
            if !blocked
                || !matches!(
                    plan.kind,
                    BlockingKind::SniFiltered | BlockingKind::EchBlocked
                )
            {
                continue;
            }
            let service = cat.service_name(plan.service).to_string();
            let key = (service, plan.target.clone(), plan.kind);
            let state = searches.entry(key.clone()).or_default();
            if let Some((located, ended)) = &state.ended {
                found.push(Found {
                    service: key.0.clone(),
                    target: key.1.clone(),
                    kind: key.2,
                    located: located.clone(),
                    ended: *ended,
                });
            }
            let Some(check) = plan.searched_check() else {
                continue;
            };
            let Check::Tls(tls) = &cat.entry(check).check else {
                continue;
            };
            let Some(locate) = tls.locate else {
                continue;
            };
            let due = match state.started {
                None => true,
                Some((at, running)) => !running && at.elapsed() >= locate.every,
            };
            if !due {
                continue;
            }
            state.started = Some((Instant::now(), true));
            let (this, cat) = (self.clone(), cat.clone());
            tokio::spawn(async move {
                let located = cat.locate(check, key.2).await;
                let mut searches = this.searches.lock().unwrap_or_else(|p| p.into_inner());
                let state = searches.entry(key).or_default();
                if let Some((_, running)) = &mut state.started {
                    *running = false;
                }
                if let Some(located) = located {
                    state.ended = Some((located, super::now_epoch()));
                }
            });
        }
        found
    }
}
