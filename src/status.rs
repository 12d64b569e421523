//! The status page at `/`: the latest round as a table per service, for a
//! person without Prometheus at hand.
//!
//! Server-rendered HTML with no script and no external asset: the only other
//! resource is the stylesheet at `/status.css` on the same origin, so the
//! page works offline under a strict Content-Security-Policy ([`CSP`]). It
//! refreshes itself. A check still running shows as "running", not as a
//! failure; verdicts are listed under their service once the round has
//! ended. Every string from the config is HTML-escaped. This module only
//! renders; the server decides which round to show.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use crate::config::{Check, Config};
use crate::engine::catalogue::{Catalogue, Entry};
use crate::engine::round::Round;
use crate::ids::ServiceId;
use crate::probe::{Facts, Outcome};

/// Seconds between automatic reloads of the page.
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
tr.fail td{background:#fff3f4}span.up{color:#0a7d28}span.down{color:#c8102e}span.running{color:#8a6d00}\
code{font-family:ui-monospace,monospace;font-size:.95em}";

/// Renders `round` as the status page.
pub fn page(round: &Round, refresh_seconds: u32) -> String {
    let cat = &round.catalogue;
    let outcomes = round.partial();
    let mut out = String::with_capacity(8192);
    let age = SystemTime::now()
        .duration_since(round.started_at)
        .unwrap_or_default();
    let started = humantime::format_rfc3339_seconds(round.started_at);
    let state = if round.is_done() {
        ""
    } else {
        " (still running)"
    };
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{refresh_seconds}\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>reachability_exporter</title><link rel=\"stylesheet\" href=\"/status.css\"></head><body>\
         <h1>reachability_exporter</h1>\
         <p class=\"meta\">Round started {started} ({} ago){state}. \
         <a href=\"/metrics\">Metrics</a> · refreshes every {refresh_seconds} s.</p>",
        ago(age)
    );
    let verdicts = if round.is_done() {
        round.verdicts(&round.snapshot())
    } else {
        Vec::new()
    };
    for (si, service) in cat.config.services.iter().enumerate() {
        let si = ServiceId::new(si);
        let rows: Vec<(&Entry, Option<&Outcome>)> = round
            .checks
            .iter()
            .zip(&outcomes)
            .map(|(id, o)| (cat.entry(*id), o.as_ref()))
            .filter(|(e, _)| e.service == si)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let up = service_up(cat, &rows);
        let badge = match up {
            Some(true) => "<span class=\"up\">up</span>",
            Some(false) => "<span class=\"down\">down</span>",
            None => "<span class=\"running\">running</span>",
        };
        let _ = write!(
            out,
            "<h2 id=\"service-{name}\">{name} · {badge}</h2><table><thead><tr><th>Check</th><th>Target</th>\
             <th>Result</th><th>Stage / reason</th><th class=\"num\">Latency</th></tr></thead><tbody>",
            name = escape(&service.name)
        );
        for (entry, outcome) in rows {
            let (class, result, why) = match outcome {
                None => ("running", "running".to_string(), String::new()),
                Some(o) => match o.failure {
                    None => ("ok", ok_text(o), String::new()),
                    Some((stage, reason)) => (
                        "fail",
                        "FAIL".to_string(),
                        format!(
                            "<code>{}</code> / <code>{}</code>",
                            stage.as_str(),
                            reason.as_str()
                        ),
                    ),
                },
            };
            let latency = outcome.and_then(|o| o.duration).map_or_else(
                || "–".to_string(),
                |d| match d.as_secs_f64() * 1000.0 {
                    ms if ms < 10.0 => format!("{ms:.2} ms"),
                    ms => format!("{ms:.1} ms"),
                },
            );
            let _ = write!(
                out,
                "<tr class=\"{class}\"><td>{}</td><td>{}</td><td class=\"{class}\">{result}</td><td>{why}</td>\
                 <td class=\"num\">{latency}</td></tr>",
                entry.check.kind().as_str(),
                escape(&describe(entry, &cat.config)),
            );
        }
        out.push_str("</tbody></table>");
        // Verdicts once every check has ended (a running one would read as
        // a timeout).
        let judged: Vec<_> = verdicts
            .iter()
            .filter(|(p, _)| cat.plan(*p).service == si)
            .collect();
        if !judged.is_empty() {
            out.push_str("<p class=\"meta\">Verdicts: ");
            for (k, (p, v)) in judged.iter().enumerate() {
                let plan = cat.plan(*p);
                let (class, word) = if *v {
                    ("down", "suspected")
                } else {
                    ("up", "not suspected")
                };
                let _ = write!(
                    out,
                    "{}<code>{}</code> {} <span class=\"{class}\">{word}</span>",
                    if k == 0 { "" } else { " · " },
                    plan.kind.as_str(),
                    escape(&plan.target)
                );
            }
            out.push_str("</p>");
        }
    }
    out.push_str("</body></html>\n");
    out
}

/// `Some(up)` once every check that counts has ended, as
/// `reachability_service_up` would say; `None` while one is running.
fn service_up(cat: &Catalogue, rows: &[(&Entry, Option<&Outcome>)]) -> Option<bool> {
    let mut up = true;
    for (entry, outcome) in rows {
        let counts = match &entry.check {
            Check::Dns(c) => !cat.config.resolvers[c.resolver].is_control(),
            _ => true,
        };
        if counts {
            up &= (*outcome)?.is_ok();
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
