//! The status page at `/`: a summary of every service (up or down, failing
//! checks, the blocking suspected), then the latest round as a table per
//! service, for a person without Prometheus at hand.
//!
//! Server-rendered HTML with no script and no external asset: the only other
//! resource is the stylesheet at `/status.css` on the same origin, so the
//! page works offline under a strict Content-Security-Policy ([`CSP`]). It
//! refreshes itself. A check still running shows as "running", not as a
//! failure; a verdict is listed under its service once the checks it
//! reads have ended, the suspected ones first and in red, each with its
//! evidence (what each check it reads answered) in a `<details>` that
//! opens without script. Every string from the config is HTML-escaped. This module only
//! renders; the server decides which round to show.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::{Check, Config};
use crate::engine::catalogue::{Catalogue, Entry};
use crate::engine::locator::Found;
use crate::engine::round::Round;
use crate::ids::ServiceId;
use crate::probe::{Facts, Outcome};
use crate::verdict::NetworkRegime;

/// Seconds between automatic reloads of the page: the page also shows no
/// result older than this (or `min_interval`, when longer).
pub const REFRESH_SECONDS: u32 = 30;

/// The page's Content-Security-Policy: nothing but our own stylesheet.
pub const CSP: &str = "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's stylesheet, served at `/status.css`.
pub const CSS: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d1d1f;background:#fff}\
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}\
p.meta{color:#555;margin:0 0 1em}\
table{border-collapse:collapse;width:100%;max-width:1100px}\
th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #e3e3e3;vertical-align:top}\
th{font-weight:600;color:#444}td.num{text-align:right;font-variant-numeric:tabular-nums}\
td.ok{color:#0a7d28;font-weight:600}td.fail{color:#c8102e;font-weight:600}td.running{color:#8a6d00}\
tr.fail td{background:#fff3f4}.up{color:#0a7d28}.down{color:#c8102e}span.running{color:#8a6d00}\
code{font-family:ui-monospace,monospace;font-size:.95em}\
table.summary{max-width:800px;margin-bottom:1em}table.summary a{color:inherit}\
p.suspected,div.suspected{color:#c8102e;background:#fff3f4;border-left:4px solid #c8102e;padding:.4em .7em;margin:.3em 0 .6em;max-width:1100px}\
div.cleared{color:#555;margin:.4em 0 1em;max-width:1100px}details{margin:.2em 0 0 .8em}summary{cursor:pointer}\
ul.evidence{margin:.2em 0 .4em;padding-left:1.4em;color:#1d1d1f;font-size:.95em}\
h2 small{font-weight:400;color:#555}";

/// What the status page shows.
#[derive(Debug)]
pub struct View<'a> {
    /// The latest round of every check.
    pub round: &'a Round,
    /// Rounds of a single service (`/probe?service=`) that ended after
    /// `round` started, under the same config: a service shows the newest.
    pub newer: Vec<Arc<Round>>,
    /// The latest censor search of each target whose verdict is 1.
    pub located: Vec<Found>,
    /// Where the metrics are served (`--web.telemetry-path`).
    pub metrics_path: &'a str,
    /// Seconds between automatic reloads of the page.
    pub refresh_seconds: u32,
}

/// One verdict as the page shows it.
struct VerdictView<'a> {
    kind: &'static str,
    target: &'a str,
    /// `None`: not judged (what it read could not tell).
    suspected: Option<bool>,
    /// What it was judged from, one line each ([`evidence`]).
    evidence: Vec<String>,
}

/// One service as the page shows it.
struct ServiceView<'a> {
    name: &'a str,
    /// Its rows: the check and its outcome (`None` while running).
    rows: Vec<(&'a Entry, Option<Outcome>)>,
    /// `Some(up)` once every check that counts has ended.
    up: Option<bool>,
    /// Its verdicts (once its round has ended).
    verdicts: Vec<VerdictView<'a>>,
    /// When its round started, if not the page's round.
    own_round: Option<SystemTime>,
}

impl ServiceView<'_> {
    fn failing(&self) -> usize {
        let failed = |(_, o): &&(&Entry, Option<Outcome>)| o.as_ref().is_some_and(|o| !o.is_ok());
        self.rows.iter().filter(failed).count()
    }
}

/// The services of `view`, in config order, each from the newest round
/// that checked it.
fn services<'a>(view: &'a View<'a>) -> Vec<ServiceView<'a>> {
    let cat = &view.round.catalogue;
    let page_round = (view.round, view.round.partial());
    let newer: Vec<_> = view.newer.iter().map(|r| (&**r, r.partial())).collect();
    let mut out = Vec::new();
    for (si, service) in cat.config.services.iter().enumerate() {
        let si = ServiceId::new(si);
        let of_service = |(r, _): &&(&Round, Vec<Option<Outcome>>)| {
            r.checks
                .first()
                .is_some_and(|id| cat.entry(*id).service == si)
        };
        let (round, outcomes) = newer.iter().find(of_service).unwrap_or(&page_round);
        let rows: Vec<(&Entry, Option<Outcome>)> = round
            .checks
            .iter()
            .zip(outcomes)
            .map(|(id, o)| (cat.entry(*id), o.clone()))
            .filter(|(e, _)| e.service == si)
            .collect();
        if rows.is_empty() {
            // A scheduled service whose first round has not ended.
            if cat.every(si).is_some() {
                let rows = cat.entries_of(si).map(|id| (cat.entry(id), None)).collect();
                out.push(ServiceView {
                    name: &service.name,
                    rows,
                    up: None,
                    verdicts: Vec::new(),
                    own_round: None,
                });
            }
            continue;
        }
        // A verdict once every check it reads has ended (a running one
        // would read as a timeout): a slow check elsewhere holds back none.
        let ended = |p: &crate::verdict::Plan| p.inputs().all(|e| round.outcome_of(e).is_some());
        let judged = round.verdicts(&round.snapshot());
        let verdicts = round
            .plans()
            .iter()
            .filter(|p| cat.plan(**p).service == si && ended(cat.plan(**p)))
            .map(|&p| {
                let plan = cat.plan(p);
                VerdictView {
                    kind: plan.kind.as_str(),
                    target: plan.target.as_str(),
                    suspected: judged.iter().find(|(q, _)| *q == p).map(|(_, v)| *v),
                    evidence: evidence(plan, round, cat),
                }
            })
            .collect();
        let up = service_up(cat, &rows);
        out.push(ServiceView {
            name: &service.name,
            rows,
            up,
            verdicts,
            own_round: (!std::ptr::eq(*round, view.round)).then_some(round.started_at),
        });
    }
    out
}

fn badge(up: Option<bool>) -> &'static str {
    match up {
        Some(true) => "<span class=\"up\">up</span>",
        Some(false) => "<span class=\"down\">down</span>",
        None => "<span class=\"running\">running</span>",
    }
}

/// Renders the status page: a summary of every service (up or down, how
/// many checks fail, the blocking suspected), then a table per service.
pub fn page(view: &View<'_>) -> String {
    let round = view.round;
    let mut out = String::with_capacity(8192);
    let started = humantime::format_rfc3339_seconds(round.started_at);
    let state = if round.is_done() {
        ""
    } else {
        " (still running)"
    };
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{refresh}\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>reachability_exporter</title><link rel=\"stylesheet\" href=\"/status.css\"></head><body>\
         <h1>reachability_exporter</h1>\
         <p class=\"meta\">Round started {started} ({} ago){state}. \
         <a href=\"{metrics}\">Metrics</a> · refreshes every {refresh} s.</p>",
        ago(since(round.started_at)),
        refresh = view.refresh_seconds,
        metrics = escape(view.metrics_path),
    );
    if let Some(r) = round.regime() {
        let what = match r {
            NetworkRegime::Open => "open: a foreign reference answered",
            NetworkRegime::Allowlist => {
                "in allowlist mode: only domestic references answered, every foreign one failed. No blocking verdict is judged while it lasts: nothing can be blamed on one service"
            }
            NetworkRegime::Offline => {
                "offline: no reference answered. No blocking verdict is judged while it lasts"
            }
        };
        let class = if r == NetworkRegime::Open {
            "meta"
        } else {
            "suspected"
        };
        let _ = write!(
            out,
            "<p class=\"{class}\" id=\"regime\">Network: <strong>{}</strong> — {what}.</p>",
            r.as_str()
        );
    }
    let services = services(view);
    let restricted = round.regime().is_some_and(|r| r != NetworkRegime::Open);
    summary(&mut out, &services, restricted, &view.located);
    for s in &services {
        let name = escape(s.name);
        let when = s.own_round.map_or(String::new(), |t| {
            format!(" <small>checked {} ago</small>", ago(since(t)))
        });
        let _ = write!(
            out,
            "<h2 id=\"service-{name}\">{name} · {}{when}</h2>",
            badge(s.up)
        );
        let suspected: Vec<_> = s
            .verdicts
            .iter()
            .filter(|v| v.suspected == Some(true))
            .collect();
        verdict_group(
            &mut out,
            "suspected",
            "Blocking suspected",
            &suspected,
            |v| {
                let at = where_located(&view.located, s.name, v.kind, v.target);
                format!("<strong>{}</strong> {}{at}", v.kind, escape(v.target))
            },
        );
        out.push_str(
            "<table><thead><tr><th>Check</th><th>Target</th>\
             <th>Result</th><th>Stage / reason</th><th class=\"num\">Latency</th></tr></thead><tbody>",
        );
        for (entry, outcome) in &s.rows {
            row(&mut out, entry, outcome.as_ref(), &round.catalogue.config);
        }
        out.push_str("</tbody></table>");
        for (state, title) in [(Some(false), "Not suspected"), (None, "Not judged")] {
            let these: Vec<_> = s.verdicts.iter().filter(|v| v.suspected == state).collect();
            verdict_group(&mut out, "cleared", title, &these, |v| {
                format!("<code>{}</code> {}", v.kind, escape(v.target))
            });
        }
    }
    out.push_str("</body></html>\n");
    out
}

/// A titled block of verdicts (none: nothing), each a `<details>` whose
/// summary is `head(verdict)` and whose body lists its evidence.
fn verdict_group(
    out: &mut String,
    class: &str,
    title: &str,
    verdicts: &[&VerdictView<'_>],
    head: impl Fn(&VerdictView<'_>) -> String,
) {
    if verdicts.is_empty() {
        return;
    }
    let _ = write!(out, "<div class=\"{class}\">{title}:");
    for v in verdicts {
        let _ = write!(
            out,
            "<details><summary>{}</summary><ul class=\"evidence\">",
            head(v)
        );
        for l in &v.evidence {
            let _ = write!(out, "<li>{}</li>", escape(l));
        }
        out.push_str("</ul></details>");
    }
    out.push_str("</div>");
}

/// What `plan` was judged from, in words, one line per fact: each check it
/// reads and what it answered (a control resolver's addresses, the
/// handshake with the neutral SNI, the GREASE-ECH handshake), then what the
/// round gathered beyond the checks (connects to the controls' addresses,
/// handshakes at the system's and a control's address) and the
/// thresholds it compared against. Plain text: the caller escapes it
/// (shared with `check --output json`).
pub fn evidence(plan: &crate::verdict::Plan, round: &Round, cat: &Catalogue) -> Vec<String> {
    use crate::verdict::{Case, Evidence};
    let mut lines = Vec::new();
    let mut seen = Vec::new();
    for case in &plan.cases {
        for id in case.inputs() {
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            let entry = cat.entry(id);
            let o = round.outcome_of(id);
            lines.push(format!(
                "{} {}: {}",
                entry.check.kind().as_str(),
                describe(entry, &cat.config),
                said(o)
            ));
            if let Some(o) = o {
                extras(&mut lines, entry, o);
            }
        }
        let step = |r: &Option<Result<(), crate::reason::Reason>>| match r {
            None => "not finished".to_string(),
            Some(Ok(())) => "ok".to_string(),
            Some(Err(r)) => format!("failed: {}", r.as_str()),
        };
        match (case, case.evidence().map(|s| round.evidence_of(s))) {
            (_, None) => {}
            (_, Some(Evidence::Waiting)) => lines.push(
                "its own connects or handshakes: not made (no control answer to use, or the round ended first)"
                    .to_string(),
            ),
            (Case::DnsInjected { system, .. }, Some(Evidence::NotNeeded)) => {
                let bogon = round.outcome_of(*system).and_then(|o| o.failure)
                    .is_some_and(|(_, r)| r == crate::reason::Reason::DnsBogon);
                lines.push(if bogon {
                    "no handshakes needed: the system resolver answered a bogon address, which no public service has".to_string()
                } else {
                    "no handshakes made: the answers share an address, or one side has none".to_string()
                });
            }
            (_, Some(Evidence::NotNeeded)) => {
                lines.push("no connects made: no control address to try".to_string());
            }
            (Case::IpBlocked { port, .. }, Some(Evidence::Connects(v))) => {
                for (ip, r) in v {
                    let at = std::net::SocketAddr::new(ip, *port);
                    lines.push(format!(
                        "connect to {at} (a control's answer): {}",
                        step(&r)
                    ));
                }
            }
            (Case::DnsInjected { name, .. }, Some(Evidence::Handshakes { system, control })) => {
                lines.push(format!(
                    "handshake with SNI {name} at the address the system resolver gave: {}",
                    step(&system)
                ));
                lines.push(format!(
                    "handshake with SNI {name} at the address a control gave: {}",
                    step(&control)
                ));
            }
            // A case's slot holds only its own kind of evidence (connects
            // for ip_blocked, handshakes for dns_injected: plan.rs).
            (_, Some(Evidence::Connects(_) | Evidence::Handshakes { .. })) => {}
        }
        // ip_blocked needs an encrypted control's answer: a plain one
        // could be the censor's own.
        if let Case::IpBlocked { encrypted, .. } = case
            && !encrypted.iter().any(|&e| e)
        {
            lines.push(
                "no control goes over DoT or DoH: only an encrypted control's answer shows the network reaches past the censor, so ip_blocked is not judged"
                    .to_string(),
            );
        }
        if let Case::Throttled { min_rate, .. } = case {
            lines.push(format!("min_rate: {min_rate} B/s"));
        }
    }
    lines
}

/// What a check answered, in words.
fn said(o: Option<&Outcome>) -> String {
    let Some(o) = o else {
        return "not ended".to_string();
    };
    match (o.failure, &o.facts) {
        (None, Facts::Dns { addrs, .. }) if !addrs.is_empty() => {
            let shown: Vec<String> = addrs.iter().take(4).map(|a| a.to_string()).collect();
            let more = addrs.len().saturating_sub(4);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("answered {}{more}", shown.join(", "))
        }
        (None, _) => ok_text(o),
        (Some((stage, reason)), _) => {
            format!("failed at {} ({})", stage.as_str(), reason.as_str())
        }
    }
}

/// The lines an outcome adds beyond its result: each address of an
/// `all_addresses` check, the neutral SNI's handshake, the GREASE-ECH one,
/// a transfer's stall.
fn extras(lines: &mut Vec<String>, entry: &Entry, o: &Outcome) {
    let control_sni = match &entry.check {
        Check::Tls(c) => c.options.control_sni.as_deref(),
        Check::Quic(c) => c.options.control_sni.as_deref(),
        _ => None,
    };
    match &o.facts {
        Facts::Addresses(per) => {
            for (ip, o) in per {
                lines.push(format!("  at {ip}: {}", said(Some(o))));
                handshakes(lines, control_sni, &format!("  at {ip}: "), o);
            }
        }
        Facts::Download(t) | Facts::Upload(t) if t.stalled => {
            lines.push(format!("stalled after {} bytes", t.bytes));
        }
        _ => handshakes(lines, control_sni, "", o),
    }
}

/// The neutral SNI's and the GREASE-ECH handshake's lines of one outcome
/// (`at` names the address of an `all_addresses` check).
fn handshakes(lines: &mut Vec<String>, control_sni: Option<&str>, at: &str, o: &Outcome) {
    if let Some(neutral) = control_sni {
        let answer = match o.control {
            Some(true) => "the server answered",
            Some(false) => "no answer",
            // Awaited only when the real name's handshake failed.
            None if o.failure.is_none() => "not needed (the handshake passed)",
            None => "not made",
        };
        lines.push(format!("{at}neutral SNI {neutral}, same address: {answer}"));
    }
    if let Some(e) = o.ech {
        let how = match e {
            crate::probe::EchResult::Completed => "completed".to_string(),
            crate::probe::EchResult::Failed(stage, reason) => {
                format!("failed at {} ({})", stage.as_str(), reason.as_str())
            }
        };
        lines.push(format!("{at}with a GREASE encrypted_client_hello: {how}"));
    }
}

/// Where the latest search put the censor of `service`'s `target` for
/// verdict `kind`: " — censor at hop 3 of 4, after 192.0.2.2" (the router
/// before it, when it answered), or why not; empty without a search.
fn where_located(located: &[Found], service: &str, kind: &str, target: &str) -> String {
    let Some(f) = located
        .iter()
        .find(|f| f.service == service && f.kind.as_str() == kind && f.target == target)
    else {
        return String::new();
    };
    format!(" — {}", f.located.describe())
}

/// The table at the top: one row per service, linking to its section.
/// While the network is `restricted`, no verdict is judged: it says so.
fn summary(out: &mut String, services: &[ServiceView<'_>], restricted: bool, located: &[Found]) {
    out.push_str(
        "<table class=\"summary\"><thead><tr><th>Service</th><th>State</th>\
         <th>Failing checks</th><th>Blocking suspected</th></tr></thead><tbody>",
    );
    for s in services {
        let name = escape(s.name);
        let failing = s.failing();
        let class = if failing > 0 { " class=\"fail\"" } else { "" };
        let suspected: Vec<String> = s
            .verdicts
            .iter()
            .filter(|v| v.suspected == Some(true))
            .map(|v| {
                let at = where_located(located, s.name, v.kind, v.target);
                format!(
                    "<strong class=\"down\">{}</strong> {}{at}",
                    v.kind,
                    escape(v.target)
                )
            })
            .collect();
        let suspected = if restricted {
            "not judged: the network is restricted".to_string()
        } else if suspected.is_empty() {
            "–".to_string()
        } else {
            suspected.join("<br>")
        };
        let _ = write!(
            out,
            "<tr{class}><td><a href=\"#service-{name}\">{name}</a></td><td>{}</td>\
             <td class=\"num\">{failing} of {}</td><td>{suspected}</td></tr>",
            badge(s.up),
            s.rows.len(),
        );
    }
    out.push_str("</tbody></table>");
}

/// One check's row.
fn row(out: &mut String, entry: &Entry, outcome: Option<&Outcome>, config: &Config) {
    let (class, result, why) = match outcome {
        None => ("running", "running".to_string(), String::new()),
        Some(o) => match o.failure {
            None => ("ok", ok_text(o), String::new()),
            Some((stage, reason)) => (
                "fail",
                "FAIL".to_string(),
                format!(
                    "<code>{}</code> / <code>{}</code>{}",
                    stage.as_str(),
                    reason.as_str(),
                    o.http_status().map_or(String::new(), |s| format!(" ({s})")),
                ),
            ),
        },
    };
    let latency = outcome
        .and_then(|o| o.duration)
        .map_or_else(|| "–".to_string(), millis);
    let _ = write!(
        out,
        "<tr class=\"{class}\"><td>{}</td><td>{}</td><td class=\"{class}\">{result}</td><td>{why}</td>\
         <td class=\"num\">{latency}</td></tr>",
        entry.check.kind().as_str(),
        escape(&describe(entry, config)),
    );
}

fn since(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}

/// `Some(up)` once every check that counts has ended, as
/// `reachability_service_up` would say; `None` while one is running.
fn service_up(cat: &Catalogue, rows: &[(&Entry, Option<Outcome>)]) -> Option<bool> {
    let mut up = true;
    for (entry, outcome) in rows {
        let counts = match &entry.check {
            Check::Dns(c) => !cat.config.resolvers[c.resolver].is_control(),
            _ => true,
        };
        if counts {
            up &= outcome.as_ref()?.is_ok();
        }
    }
    Some(up)
}

fn ok_text(o: &Outcome) -> String {
    match &o.facts {
        Facts::Http { status } => format!("ok ({status})"),
        Facts::Tls { version, .. } => format!("ok ({version})"),
        Facts::Stun { mapped: Some(m) } => format!("ok (seen as {m})"),
        Facts::Dns { answers: 1, .. } => "ok (1 answer)".to_string(),
        Facts::Dns { answers, .. } => format!("ok ({answers} answers)"),
        Facts::Download(t) => format!("ok ({} bytes, {:.0} B/s)", t.bytes, t.rate()),
        Facts::Upload(t) => format!("ok ({} bytes acknowledged, {:.0} B/s)", t.bytes, t.rate()),
        Facts::Addresses(v) => format!("ok ({} addresses)", v.len()),
        _ => "ok".to_string(),
    }
}

/// What a check checks, in words (shared with `check`'s table).
pub fn describe(entry: &Entry, config: &Config) -> String {
    match &entry.check {
        Check::Dns(c) => format!(
            "{} via {} ({})",
            c.name,
            config.resolvers[c.resolver].name,
            c.record_type.as_str()
        ),
        Check::Tcp(c) => c.target.written.clone(),
        Check::Tls(c) => match (&c.sni, &c.target.host) {
            (Some(sni), crate::config::Host::Name(h)) if sni == h => c.target.written.clone(),
            (Some(sni), _) => format!("{} (SNI {sni})", c.target.written),
            (None, _) => c.target.written.clone(),
        },
        Check::CallPort(c) => format!(
            "{}/{} {}",
            c.transport.as_str(),
            c.method.as_str(),
            c.target.written
        ),
        Check::Http(c) => c.written.clone(),
        Check::Download(c) => c.written.clone(),
        Check::Upload(c) => c.written.clone(),
        Check::Quic(c) => match (&c.sni, &c.target.host) {
            (Some(sni), crate::config::Host::Name(h)) if sni == h => c.target.written.clone(),
            (Some(sni), _) => format!("{} (SNI {sni})", c.target.written),
            (None, _) => c.target.written.clone(),
        },
    }
}

fn ago(d: Duration) -> String {
    match d.as_secs() {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A latency in milliseconds as the status page and `check` show it: two
/// decimals under 10 ms (a loopback connect is hundredths), one above.
pub fn millis(d: std::time::Duration) -> String {
    match d.as_secs_f64() * 1000.0 {
        ms if ms < 10.0 => format!("{ms:.2} ms"),
        ms => format!("{ms:.1} ms"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
