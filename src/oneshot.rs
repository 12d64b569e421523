//! `reachability_exporter check`: every check once, in the terminal.
//!
//! Runs a round with each check's own timeout (no scrape deadline; the
//! starts keep the configured `pace`), then the censor search of each
//! suspected verdict whose check has `locate:`, and renders the checks
//! and the verdicts as aligned tables — coloured only when asked, i.e. on
//! a TTY — or as JSON. It shares the probers, the round and the search
//! with the server, and never touches metrics.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::engine::catalogue::Catalogue;
use crate::engine::round::Round;
use crate::ids::EntryId;
use crate::locate::Located;
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

/// One verdict of the report.
#[derive(Debug, Clone)]
pub struct VerdictRow {
    /// The service.
    pub service: String,
    /// What it judges (`sni_filtered`, …).
    pub kind: &'static str,
    /// Its `target` label.
    pub target: String,
    /// `Some(true)` suspected, `Some(false)` not, `None` not judged (the
    /// evidence does not allow it, or the network regime is not open).
    pub suspected: Option<bool>,
    /// For a suspected one whose check has `locate:`, what the search
    /// found.
    pub located: Option<Located>,
    /// What it was judged from, one line per fact (as on the status page).
    pub evidence: Vec<String>,
}

/// What one `check` found: a row per check and per verdict, and the
/// network regime when the config has references.
#[derive(Debug, Clone)]
pub struct Report {
    /// One row per check, in config order.
    pub rows: Vec<Row>,
    /// Every verdict the checks make up, in config order.
    pub verdicts: Vec<VerdictRow>,
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
    let deadline = tokio::time::Instant::now() + cat.config.pace.unhurried(checks.len(), longest);
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
    let snapshot = round.snapshot();
    let judged = round.verdicts(&snapshot);
    let rows = round
        .checks
        .iter()
        .zip(snapshot)
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
    // A suspected censor is searched for now, if the check asks: every
    // search at once (each is bounded by its max_hops and timeout).
    let verdicts = round.plans().iter().map(|&p| {
        let plan = cat.plan(p);
        let suspected = judged.iter().find(|(j, _)| *j == p).map(|&(_, v)| v);
        let evidence = crate::status::evidence(plan, &round, &cat);
        let cat = &cat;
        async move {
            let located = match (suspected, plan.searched_check()) {
                (Some(true), Some(check)) => cat.locate(check, plan.kind).await,
                _ => None,
            };
            VerdictRow {
                service: cat.service_name(plan.service).to_string(),
                kind: plan.kind.as_str(),
                target: plan.target.clone(),
                suspected,
                located,
                evidence,
            }
        }
    });
    let verdicts = futures_util::future::join_all(verdicts).await;
    Ok(Report {
        rows,
        verdicts,
        regime: round.regime(),
    })
}

fn latency(o: &Outcome) -> String {
    o.duration
        .map_or_else(|| "-".to_string(), crate::status::millis)
}

fn result(o: &Outcome) -> (&'static str, String) {
    (if o.is_ok() { "ok" } else { "FAIL" }, o.failure_text())
}

/// Whether `check`'s table is coloured: on a terminal, unless `NO_COLOR`
/// is set to anything but the empty string (<https://no-color.org>).
pub fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Columns padded to their widest cell, two spaces apart, trailing space
/// trimmed; the RESULT column (`result`) painted with the colour `paint`
/// gives each row (for a TTY).
fn aligned(
    out: &mut String,
    header: &[&str],
    cells: &[Vec<String>],
    result: usize,
    paint: impl Fn(&[String]) -> Option<&'static str>,
) {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for c in cells {
        for (w, v) in width.iter_mut().zip(c) {
            *w = (*w).max(v.chars().count());
        }
    }
    let line = |out: &mut String, vals: &[&str], paint: Option<&str>| {
        for (i, (v, w)) in vals.iter().zip(&width).enumerate() {
            let pad = " ".repeat(w - v.chars().count());
            match paint.filter(|_| i == result) {
                Some(code) => {
                    let _ = write!(out, "\x1b[{code}m{v}\x1b[0m{pad}  ");
                }
                None => {
                    let _ = write!(out, "{v}{pad}  ");
                }
            }
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(out, header, None);
    for c in cells {
        let vals: Vec<&str> = c.iter().map(String::as_str).collect();
        line(out, &vals, paint(c));
    }
}

/// An aligned table of the checks, then one of the verdicts (with where
/// the censor sits, once located); `color` marks results green and red
/// (for a TTY). The network regime, when judged, closes it.
pub fn table(report: &Report, color: bool) -> String {
    let rows = &report.rows;
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let (res, why) = result(&r.outcome);
            let kind = r.check.to_string();
            vec![
                r.service.clone(),
                kind,
                r.target.clone(),
                res.into(),
                why,
                latency(&r.outcome),
            ]
        })
        .collect();
    let mut out = String::new();
    let header = [
        "SERVICE",
        "CHECK",
        "TARGET",
        "RESULT",
        "STAGE/REASON",
        "LATENCY",
    ];
    let ok_red = |c: &[String]| color.then_some(if c[3] == "ok" { "32" } else { "31" });
    aligned(&mut out, &header, &cells, 3, ok_red);
    let failed = rows.iter().filter(|r| !r.outcome.is_ok()).count();
    let _ = writeln!(
        out,
        "{} {}, {} passed, {failed} failed",
        rows.len(),
        if rows.len() == 1 { "check" } else { "checks" },
        rows.len() - failed
    );
    if !report.verdicts.is_empty() {
        let cells: Vec<Vec<String>> = report
            .verdicts
            .iter()
            .map(|v| {
                let mut res = verdict_text(v.suspected).to_string();
                if let Some(l) = &v.located {
                    res = format!("{res} — {}", l.describe());
                }
                vec![v.kind.into(), v.service.clone(), v.target.clone(), res]
            })
            .collect();
        out.push('\n');
        let red = |c: &[String]| (color && c[3].starts_with("suspected")).then_some("31");
        aligned(
            &mut out,
            &["VERDICT", "SERVICE", "TARGET", "RESULT"],
            &cells,
            3,
            red,
        );
        let count = |s: Option<bool>| report.verdicts.iter().filter(|v| v.suspected == s).count();
        let _ = writeln!(
            out,
            "{} {}: {} suspected, {} not suspected, {} not judged",
            report.verdicts.len(),
            if report.verdicts.len() == 1 {
                "verdict"
            } else {
                "verdicts"
            },
            count(Some(true)),
            count(Some(false)),
            count(None),
        );
        // What each suspected verdict rests on (all of them: `--output json`).
        for v in report.verdicts.iter().filter(|v| v.suspected == Some(true)) {
            let _ = writeln!(out, "\n{} {} {}:", v.kind, v.service, v.target);
            for e in &v.evidence {
                let _ = writeln!(out, "  {e}");
            }
        }
    }
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

/// `suspected`, `not suspected` or `not judged`.
fn verdict_text(suspected: Option<bool>) -> &'static str {
    match suspected {
        Some(true) => "suspected",
        Some(false) => "not suspected",
        None => "not judged",
    }
}

/// The report as a JSON object: `network_regime` (when the config has
/// references; else null); `checks`, one object per check with its
/// series' labels as fields (`service`, `check`, `target`, and `resolver`,
/// `type`, `sni`, `transport`, `method` where the kind has them),
/// `description` (the table's TARGET), the result, the HTTP `status`
/// received, and for an `all_addresses` check the same per address under
/// `addresses`; `verdicts`, one object per verdict (`service`, `kind`,
/// `target`, `suspected`: true, false or null when not judged, and
/// `censor` once a search ran: `hop`, `path_hops`, `routers`, `text`).
pub fn json(report: &Report) -> String {
    let checks: Vec<serde_json::Value> = report
        .rows
        .iter()
        .map(|r| {
            let mut o = serde_json::Map::new();
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
    let verdicts: Vec<serde_json::Value> = report
        .verdicts
        .iter()
        .map(|v| {
            let mut o = serde_json::json!({
                "service": v.service,
                "kind": v.kind,
                "target": v.target,
                "suspected": v.suspected,
                "evidence": v.evidence,
            });
            if let Some(l) = &v.located {
                let routers: Vec<serde_json::Value> = l
                    .routers
                    .iter()
                    .map(|(hop, a)| serde_json::json!({ "hop": hop, "address": a.to_string() }))
                    .collect();
                o["censor"] = serde_json::json!({
                    "hop": l.censor_hop,
                    "path_hops": l.path_hops,
                    "routers": routers,
                    "text": l.describe(),
                });
            }
            o
        })
        .collect();
    let v = serde_json::json!({
        "network_regime": report.regime.map(NetworkRegime::as_str),
        "checks": checks,
        "verdicts": verdicts,
    });
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
}
