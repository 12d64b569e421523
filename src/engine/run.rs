//! The one way a check runs — a configured check of a round, a `/probe`
//! module's check, a check of the `check` command: inside its own tracing
//! span (service, check, target; resolver and type for DNS), holding its
//! permit of `max_concurrent_checks` until it ends, and counted in the
//! exporter's own statistics when it ends.

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::{Check, Config};
use crate::engine::catalogue::Catalogue;
use crate::ids::EntryId;
use crate::probe::{Outcome, Progress};
use crate::stats::Stats;

/// Which check to run.
#[derive(Debug, Clone, Copy)]
pub enum What<'a> {
    /// A configured check.
    Entry(EntryId),
    /// An ad hoc check of `/probe` module `module` (an index into the
    /// config's modules), whose name is `name`.
    Module {
        /// The module's index.
        module: usize,
        /// The module's name (the `service` of its span and series).
        name: &'a str,
        /// The check made from the request's target.
        check: &'a Check,
    },
}

/// Runs `what` of `cat` until it ends or `deadline` passes, then releases
/// `permit` and counts the check in `stats`.
pub async fn run_check(
    cat: &Catalogue,
    what: What<'_>,
    deadline: Instant,
    progress: &Progress,
    permit: OwnedSemaphorePermit,
    stats: &Stats,
) -> Outcome {
    let (service, check) = match what {
        What::Entry(id) => {
            let e = cat.entry(id);
            (cat.service_name(e.service), &e.check)
        }
        What::Module { name, check, .. } => (name, check),
    };
    let span = span(service, check, &cat.config);
    let outcome = async {
        let outcome = match what {
            What::Entry(id) => cat.run(id, deadline, progress).await,
            What::Module { module, check, .. } => {
                cat.run_module(module, check, deadline, progress).await
            }
        };
        if let Some((stage, reason)) = outcome.failure {
            tracing::debug!(
                stage = stage.as_str(),
                reason = reason.as_str(),
                cut = progress.was_cut(),
                "check failed"
            );
        }
        outcome
    }
    .instrument(span)
    .await;
    drop(permit);
    stats.check_ended(check.kind(), outcome.is_ok(), progress.was_cut());
    outcome
}

/// The span of one check: what identifies its series.
fn span(service: &str, check: &Check, config: &Config) -> tracing::Span {
    let target = match check {
        Check::Dns(c) => c.name.as_str(),
        Check::Tcp(c) => &c.target.written,
        Check::Tls(c) => &c.target.written,
        Check::CallPort(c) => &c.target.written,
        Check::Quic(c) => &c.target.written,
        Check::Http(c) => &c.written,
        Check::Download(c) => &c.written,
        Check::Upload(c) => &c.written,
    };
    let span = tracing::debug_span!(
        "check",
        service,
        check = check.kind().as_str(),
        target,
        resolver = tracing::field::Empty,
        r#type = tracing::field::Empty,
    );
    if let Check::Dns(c) = check {
        span.record("resolver", config.resolvers[c.resolver].name.as_str());
        span.record("type", c.record_type.as_str());
    }
    span
}
