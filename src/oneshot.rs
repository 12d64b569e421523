//! `reachability_exporter check`: every check once, in the terminal.
//!
//! Runs a round with each check's own timeout (no scrape deadline; the
//! starts keep the configured `pace`) and
//! renders it as an aligned table — coloured only when asked, i.e. on a
//! TTY — or as JSON. It shares the probers and the round with the server,
//! and never touches metrics.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::catalogue::Catalogue;
use crate::engine::round::Round;
use crate::ids::EntryId;
use crate::probe::{Facts, Outcome};
use crate::verdict::NetworkRegime;

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Row {
    /// The service.
    pub service: String,
    /// The check kind (`dns`, `tcp`, …).
    pub check: &'static str,
    /// What was checked, in words (`web.whatsapp.com via cloudflare (A)`).
    pub target: String,
    /// The labels of its series beside `service` (`target`, and by kind
    /// `resolver`, `type`, `sni`, `transport`, `method`).
    pub labels: Vec<(&'static str, String)>,
    /// The outcome.
    pub outcome: Outcome,
}

/// What one `check` found: a row per check, and the network regime when
/// the config has references.
#[derive(Debug, Clone)]
pub struct Report {
    /// One row per check, in config order.
    pub rows: Vec<Row>,
    /// The network regime, judged from the `regime:` references.
    pub regime: Option<NetworkRegime>,
}

/// The service named on the command line does not exist.
#[derive(Debug, thiserror::Error)]
#[error("unknown service {0:?}: the config has {1}")]
pub struct UnknownService(String, String);

/// Runs every check of the catalogue, or of one service, once.
pub async fn run(cat: Arc<Catalogue>, service: Option<&str>) -> Result<Report, UnknownService> {
    let checks: Vec<EntryId> = match service {
        None => cat.entries().map(|(id, _)| id).collect(),
        Some(name) => {
            let Some(id) = cat.service_named(name) else {
                let names: Vec<&str> = cat
                    .config
                    .services
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect();
                return Err(UnknownService(name.to_string(), names.join(", ")));
            };
            cat.entries_of(id).collect()
        }
    };
    // Each check stops at its own timeout: the round's deadline is only a bound.
    let longest = cat
        .entries()
        .map(|(_, e)| e.check.timeout())
        .max()
        .unwrap_or_default();
    // With no scrape deadline, the starts keep the configured pace: time
    // for all of them at that rate within `spread`, then for the last
    // check's own timeout.
    let deadline =
        tokio::time::Instant::now() + oneshot_budget(&cat.config.pace, checks.len(), longest);
    // A fresh catalogue, and max_concurrent_checks covers every configured
    // check (the config loader makes sure): the reservation cannot fail.
    let permit = cat
        .reserve(checks.len())
        .expect("a fresh catalogue has room for every check");
    let round = Round::start(
        cat.clone(),
        checks,
        deadline,
        permit,
        Arc::new(crate::stats::Stats::default()),
    );
    round.wait(deadline).await;
    let rows = round
        .checks
        .iter()
        .zip(round.snapshot())
        .map(|(&id, outcome)| {
            let entry = cat.entry(id);
            Row {
                service: cat.service_name(entry.service).to_string(),
                check: entry.check.kind().as_str(),
                target: crate::status::describe(entry, &cat.config),
                labels: entry.check.labels(&cat.config.resolvers),
                outcome,
            }
        })
        .collect();
    Ok(Report {
        rows,
        regime: round.regime(),
    })
}

/// The round's budget for `checks` checks whose longest timeout is
/// `longest`: long enough that [`crate::config::Pace::interval`] keeps the
/// configured rate and the last check to start has its whole timeout.
fn oneshot_budget(pace: &crate::config::Pace, checks: usize, longest: Duration) -> Duration {
    let spread = pace
        .period()
        .mul_f64(checks.saturating_sub(1) as f64)
        .div_f64(pace.spread);
    spread + longest + Duration::from_secs(1)
}

fn latency(o: &Outcome) -> String {
    o.duration.map_or_else(
        || "-".to_string(),
        |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0),
    )
}

fn result(o: &Outcome) -> (&'static str, String) {
    (if o.is_ok() { "ok" } else { "FAIL" }, o.failure_text())
}

/// Whether `check`'s table is coloured: on a terminal, unless `NO_COLOR`
/// is set to anything but the empty string (<https://no-color.org>).
pub fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// An aligned table; `color` marks results green and red (for a TTY).
/// The network regime, when judged, closes it.
pub fn table(report: &Report, color: bool) -> String {
    let rows = &report.rows;
    let header = [
        "SERVICE",
        "CHECK",
        "TARGET",
        "RESULT",
        "STAGE/REASON",
        "LATENCY",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let (res, why) = result(&r.outcome);
            [
                r.service.clone(),
                r.check.to_string(),
                r.target.clone(),
                res.to_string(),
                why,
                latency(&r.outcome),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for c in &cells {
        for (w, v) in width.iter_mut().zip(c) {
            *w = (*w).max(v.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, vals: [&str; 6], paint: Option<&str>| {
        for (i, (v, w)) in vals.iter().zip(width).enumerate() {
            let pad = w - v.chars().count();
            match (i, paint) {
                (3, Some(code)) => {
                    let _ = write!(out, "\x1b[{code}m{v}\x1b[0m{}", " ".repeat(pad));
                }
                _ => {
                    let _ = write!(out, "{v}{}", " ".repeat(pad));
                }
            }
            out.push_str(if i < 5 { "  " } else { "" });
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(&mut out, header, None);
    for c in &cells {
        let paint = color.then(|| if c[3] == "ok" { "32" } else { "31" });
        line(
            &mut out,
            [&c[0], &c[1], &c[2], &c[3], &c[4], &c[5]].map(String::as_str),
            paint,
        );
    }
    let failed = rows.iter().filter(|r| !r.outcome.is_ok()).count();
    let _ = writeln!(
        out,
        "{} {}, {} passed, {failed} failed",
        rows.len(),
        if rows.len() == 1 { "check" } else { "checks" },
        rows.len() - failed
    );
    if let Some(r) = report.regime {
        let why = match r {
            NetworkRegime::Open => "a foreign reference answered",
            NetworkRegime::Allowlist => {
                "every foreign reference failed, a domestic one answered: nothing here can be blamed on one service"
            }
            NetworkRegime::Offline => "no reference answered",
        };
        let _ = writeln!(out, "network: {} ({why})", r.as_str());
    }
    out
}

/// The report as a JSON array: per check `network_regime` (the round's,
/// when the config has references; else null), its series' labels as fields
/// (`service`, `check`, `target`, and `resolver`, `type`, `sni`,
/// `transport`, `method` where the kind has them), `description` (the
/// table's TARGET), the result, the HTTP `status` received, and for an
/// `all_addresses` check the same per address under `addresses`.
pub fn json(report: &Report) -> String {
    let regime = report.regime.map(NetworkRegime::as_str);
    let v: Vec<serde_json::Value> = report
        .rows
        .iter()
        .map(|r| {
            let mut o = serde_json::Map::new();
            o.insert("network_regime".into(), regime.into());
            o.insert("service".into(), r.service.clone().into());
            o.insert("check".into(), r.check.into());
            for (k, v) in &r.labels {
                o.insert((*k).into(), v.clone().into());
            }
            o.insert("description".into(), r.target.clone().into());
            result_fields(&mut o, &r.outcome);
            if let Facts::Addresses(per) = &r.outcome.facts {
                let per = per
                    .iter()
                    .map(|(ip, outcome)| {
                        let mut a = serde_json::Map::new();
                        a.insert("address".into(), ip.to_string().into());
                        result_fields(&mut a, outcome);
                        serde_json::Value::Object(a)
                    })
                    .collect();
                o.insert("addresses".into(), serde_json::Value::Array(per));
            }
            serde_json::Value::Object(o)
        })
        .collect();
    // Serialising plain values cannot fail.
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// `ok`, `stage`, `reason`, `duration_seconds` and `status` (null when
/// not known).
fn result_fields(o: &mut serde_json::Map<String, serde_json::Value>, outcome: &Outcome) {
    o.insert("ok".into(), outcome.is_ok().into());
    o.insert(
        "stage".into(),
        outcome.failure.map(|(s, _)| s.as_str()).into(),
    );
    o.insert(
        "reason".into(),
        outcome.failure.map(|(_, x)| x.as_str()).into(),
    );
    let secs = outcome.duration.map(|d| d.as_secs_f64());
    o.insert("duration_seconds".into(), secs.into());
    o.insert("status".into(), outcome.http_status().into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Pace;

    /// <https://no-color.org>: set and not empty means no colour.
    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let set = Some(std::ffi::OsStr::new("1"));
        let empty = Some(std::ffi::OsStr::new(""));
        assert!(colour(true, None));
        assert!(colour(true, empty));
        assert!(!colour(true, set));
        assert!(!colour(false, None));
        assert!(!colour(false, set));
    }

    /// `check` keeps the configured rate, whatever the number of checks,
    /// and leaves the last one its whole timeout.
    #[test]
    fn the_budget_keeps_the_pace_and_the_last_timeout() {
        let pace = Pace::default();
        let longest = Duration::from_secs(5);
        for n in [1usize, 12, 150, 3_001] {
            let budget = oneshot_budget(&pace, n, longest);
            let interval = pace.interval(n, budget);
            assert_eq!(interval, Duration::from_millis(5), "{n} checks");
            let last_start = interval.mul_f64(n.saturating_sub(1) as f64);
            assert!(budget - last_start >= longest, "{n} checks: {budget:?}");
        }
    }
}
