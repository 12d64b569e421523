//! Every metric name, help text and label set, and the one function that
//! turns a round's outcomes into exposition text.
//!
//! A fresh prometheus-client `Registry` is filled per scrape, so a series
//! exists only while its check is configured (and `reachability_failure_info`
//! only while its check fails). Label values come from the config or from the
//! closed enums of [`crate::reason`], never from error text.
//!
//! This module does not run checks and keeps no state between scrapes.

use std::borrow::Cow;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::config::{Check, CheckKind};
use crate::engine::catalogue::Catalogue;
use crate::engine::locator::Found;
use crate::ids::{EntryId, PlanId};
use crate::probe::{Facts, Outcome};
use crate::process::ProcessStats;
use crate::stats::{CheckCounts, PushCounts, REFUSED, TaskDelay};
use crate::verdict::{BlockingKind, NetworkRegime};

mod censor;

/// A label set: keys are the contract's names (or the config's vantage
/// labels), values come from the config.
type Labels = Vec<(Cow<'static, str>, String)>;
type GaugeF = Gauge<f64, AtomicU64>;
type Fam = Family<Labels, GaugeF>;

/// The exposition format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text (what Prometheus asks for first).
    OpenMetrics,
    /// Prometheus text format 0.0.4.
    Prometheus,
}

impl Format {
    /// Picks the format from an `Accept` header.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// The exporter's own figures for one scrape.
#[derive(Debug, Clone, Copy, Default)]
pub struct SelfStats {
    /// Checks ended since start, indexed by [`CheckKind::index`].
    pub checks: [CheckCounts; CheckKind::ALL.len()],
    /// Requests refused since start: `(status code, count)`.
    pub refused: [(u16, u64); REFUSED.len()],
    /// Checks in flight now.
    pub in_flight: usize,
    /// Seconds this scrape took until rendering.
    pub scrape_duration_seconds: f64,
    /// Rounds started since the exporter started.
    pub rounds_total: u64,
    /// Scrapes served since the exporter started.
    pub scrapes_total: u64,
    /// Whether the last config (re)load succeeded.
    pub reload_ok: bool,
    /// When the config was last loaded successfully, seconds since the epoch.
    pub reload_success_timestamp: f64,
    /// Resource use, when readable.
    pub process: Option<ProcessStats>,
    /// How long our own tasks waited to run during the round reported
    /// (none for an ad hoc `/probe?target=`).
    pub task_delay: Option<TaskDelay>,
    /// Push mode's figures, when `remote_write:` is set.
    pub push: Option<PushCounts>,
}

/// A family that is registered only if it got at least one series.
struct Metric {
    name: &'static str,
    help: &'static str,
    family: Fam,
    used: bool,
}

impl Metric {
    fn new(name: &'static str, help: &'static str) -> Metric {
        Metric {
            name,
            help,
            family: Fam::default(),
            used: false,
        }
    }

    fn set(&mut self, labels: &Labels, v: f64) {
        self.family.get_or_create(labels).set(v);
        self.used = true;
    }

    fn register(self, reg: &mut Registry) {
        if self.used {
            reg.register(self.name, self.help, self.family);
        }
    }
}

fn b(v: bool) -> f64 {
    if v { 1.0 } else { 0.0 }
}

/// One round's share of a scrape's series.
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    /// The catalogue the round ran under.
    pub catalogue: &'a Catalogue,
    /// Its checks.
    pub checks: &'a [EntryId],
    /// Their outcomes, in the same order.
    pub outcomes: &'a [Outcome],
    /// Its verdicts: `(plan, blocked)`.
    pub verdicts: &'a [(PlanId, bool)],
    /// For the latest round of a service with `every:`, when it started
    /// (seconds since the epoch).
    pub scheduled: Option<f64>,
}

impl<'a> Part<'a> {
    /// Its series' items: `(service, check, outcome)`.
    fn items(self) -> impl Iterator<Item = (&'a str, &'a Check, &'a Outcome)> {
        let cat = self.catalogue;
        self.checks
            .iter()
            .zip(self.outcomes)
            .map(move |(&id, outcome)| {
                let entry = cat.entry(id);
                (cat.service_name(entry.service), &entry.check, outcome)
            })
    }

    /// Its verdicts: `(service, target, kind, blocked)`.
    fn verdicts(self) -> impl Iterator<Item = (&'a str, &'a str, BlockingKind, bool)> {
        let cat = self.catalogue;
        self.verdicts.iter().map(move |&(p, v)| {
            let plan = cat.plan(p);
            let service = cat.service_name(plan.service);
            (service, plan.target.as_str(), plan.kind, v)
        })
    }

    /// `(service, started)` for the latest round of a service with
    /// `every:`.
    fn round(self) -> Option<(&'a str, f64)> {
        let first = *self.checks.first()?;
        let service = self.catalogue.entry(first).service;
        Some((self.catalogue.service_name(service), self.scheduled?))
    }
}

/// Renders what a scrape served, `parts` (its own round, then those of
/// services with `every:`), plus the exporter's own metrics; the series
/// carry `config`'s vantage labels. `regime` is the network regime, if
/// judged; `located` the latest censor searches of the targets whose
/// verdict is 1.
pub fn render(
    config: &crate::config::Config,
    parts: &[Part<'_>],
    (regime, located): (Option<NetworkRegime>, &[Found]),
    own: &SelfStats,
    format: Format,
) -> String {
    let items = parts.iter().flat_map(|p| p.items());
    let verdicts = parts.iter().flat_map(|p| p.verdicts());
    let rounds = parts.iter().filter_map(|p| p.round());
    render_items(
        config,
        items,
        (verdicts, regime, located, rounds),
        Own::All(own),
        format,
    )
}

/// Renders one ad hoc `/probe?target=&module=` result, its series labelled
/// `service` = the module's name, from a fresh registry: the check's series
/// and `reachability_exporter_scrape_duration_seconds` (the request so far,
/// so that the exporter's own overhead around a probe can be told apart).
pub fn render_probe(
    config: &crate::config::Config,
    module: &str,
    check: &Check,
    outcome: &Outcome,
    scrape_duration_seconds: f64,
    format: Format,
) -> String {
    render_items(
        config,
        std::iter::once((module, check, outcome)),
        (std::iter::empty(), None, &[], std::iter::empty()),
        Own::Duration(scrape_duration_seconds),
        format,
    )
}

/// Which of the exporter's own metrics a rendering carries.
enum Own<'a> {
    /// All of them (`/metrics`, `/probe?service=`).
    All(&'a SelfStats),
    /// Only the scrape duration (`/probe?target=`).
    Duration(f64),
}

/// The one place outcomes become series: `(service, check, outcome)` items,
/// plus the exporter's own metrics when `own` is given.
fn render_items<'a>(
    config: &crate::config::Config,
    items: impl Iterator<Item = (&'a str, &'a Check, &'a Outcome)>,
    (verdicts, regime, located, rounds): (
        impl Iterator<Item = (&'a str, &'a str, BlockingKind, bool)>,
        Option<NetworkRegime>,
        &[Found],
        impl Iterator<Item = (&'a str, f64)>,
    ),
    own: Own<'_>,
    format: Format,
) -> String {
    let mut dns_success = Metric::new(
        "reachability_dns_success",
        "1 if the name resolved to at least one usable (non-bogon) address through the resolver",
    );
    let mut dns_duration = Metric::new(
        "reachability_dns_duration_seconds",
        "Time from query to answer, present when an answer (of any response code) arrived",
    );
    let mut dns_answers = Metric::new(
        "reachability_dns_answers",
        "Addresses of the asked type in the answer",
    );
    let mut tcp_success = Metric::new(
        "reachability_tcp_connect_success",
        "1 if the TCP handshake with the target completed",
    );
    let mut tcp_duration = Metric::new(
        "reachability_tcp_connect_duration_seconds",
        "Duration of the TCP handshake alone, present when it completed",
    );
    let mut tls_success = Metric::new(
        "reachability_tls_handshake_success",
        "1 if the TLS handshake with the target completed and the certificate was accepted",
    );
    let mut tls_duration = Metric::new(
        "reachability_tls_handshake_duration_seconds",
        "Duration of the TLS handshake alone, excluding the TCP connect, present when it completed",
    );
    let mut tls_expiry = Metric::new(
        "reachability_tls_cert_expiry_timestamp_seconds",
        "notAfter of the leaf certificate, seconds since the epoch",
    );
    let mut tls_version = Metric::new(
        "reachability_tls_version_info",
        "1 for the negotiated TLS version",
    );
    let mut call_reachable = Metric::new(
        "reachability_call_port_reachable",
        "1 if the call port answered: any STUN response (success or error class), or a TCP connect",
    );
    let mut call_rtt = Metric::new(
        "reachability_call_port_rtt_seconds",
        "Request to response (for STUN, of the transmission that was answered; for connect, the TCP handshake)",
    );
    let mut http_success = Metric::new(
        "reachability_http_success",
        "1 if the GET got a status in the accepted set (default 200-399)",
    );
    let mut http_status = Metric::new(
        "reachability_http_status_code",
        "Status code of the final response",
    );
    let mut http_duration = Metric::new(
        "reachability_http_duration_seconds",
        "The whole request, every redirect hop included, present when a response arrived",
    );
    let mut download_bytes = Metric::new(
        "reachability_download_bytes",
        "Body bytes a download received (at most its max_bytes)",
    );
    let mut download_duration = Metric::new(
        "reachability_download_duration_seconds",
        "From the request sent to the last byte received (or the end of the check's time)",
    );
    let mut download_rate = Metric::new(
        "reachability_download_bytes_per_second",
        "Body bytes received divided by the download's duration",
    );
    let mut download_first_byte = Metric::new(
        "reachability_download_first_byte_seconds",
        "From the request sent to the response head, present when it came",
    );
    let mut download_segments = Metric::new(
        "reachability_download_segments",
        "TCP segments the kernel received on the download's connection, from its SYN-ACK on (censors count packets)",
    );
    let mut upload_success = Metric::new(
        "reachability_upload_success",
        "1 if the peer acknowledged every body byte of the upload and answered 2xx",
    );
    let mut upload_bytes = Metric::new(
        "reachability_upload_bytes",
        "Body bytes of the upload the peer acknowledged (TCP_INFO), at most its bytes",
    );
    let mut upload_duration = Metric::new(
        "reachability_upload_duration_seconds",
        "From the request handed to the kernel to the last body byte acknowledged (or the end of the check's time)",
    );
    let mut upload_rate = Metric::new(
        "reachability_upload_bytes_per_second",
        "Body bytes acknowledged divided by the upload's duration",
    );
    let mut upload_segments = Metric::new(
        "reachability_upload_segments",
        "TCP segments the kernel sent on the upload's connection, from its SYN on, retransmissions included (censors count packets)",
    );
    let mut quic_success = Metric::new(
        "reachability_quic_handshake_success",
        "1 if the QUIC handshake with the target completed and the certificate was accepted",
    );
    let mut quic_duration = Metric::new(
        "reachability_quic_handshake_duration_seconds",
        "Duration of the QUIC handshake, from the first Initial packet, present when it completed",
    );
    let mut blocking = Metric::new(
        "reachability_blocking_suspected",
        "1 when this scrape's evidence points to this kind of blocking, 0 when judged and not; absent when it cannot be judged",
    );
    let mut failure = Metric::new(
        "reachability_failure_info",
        "1 while the check fails, with the stage it failed at and the reason; absent while it passes",
    );
    let mut service_up = Metric::new(
        "reachability_service_up",
        "1 when every check of the service passes (DNS checks through control resolvers excluded)",
    );
    let mut service_info = Metric::new(
        "reachability_service_info",
        "1 for a service made from a test list's host, with the category code of the first row naming it",
    );

    // Services in order of appearance, and whether each is up: up unless a
    // check that counts for it failed.
    let mut up: Vec<(&str, bool)> = Vec::new();
    for (service, check, outcome) in items {
        let mut labels = base_labels(service, config);
        let counts_for_up = match check {
            Check::Dns(c) => !config.resolvers[c.resolver].is_control(),
            _ => true,
        };
        labels.extend(
            check
                .labels(&config.resolvers)
                .into_iter()
                .map(|(k, v)| (key(k), v)),
        );
        // An `all_addresses` check: one set of series per address.
        let per: Vec<(Option<std::net::IpAddr>, &Outcome)> = match &outcome.facts {
            Facts::Addresses(v) => v.iter().map(|(ip, o)| (Some(*ip), o)).collect(),
            _ => vec![(None, outcome)],
        };
        for (address, outcome) in per {
            let mut labels = labels.clone();
            if let Some(ip) = address {
                labels.push((key("address"), ip.to_string()));
            }
            let ok = outcome.is_ok();
            let duration = outcome.duration.map(|d| d.as_secs_f64());
            // A download has no success gauge: its facts and
            // reachability_failure_info say how it went.
            let pair = match check {
                Check::Dns(_) => Some((&mut dns_success, &mut dns_duration)),
                Check::Tcp(_) => Some((&mut tcp_success, &mut tcp_duration)),
                Check::Tls(_) => Some((&mut tls_success, &mut tls_duration)),
                Check::Http(_) => Some((&mut http_success, &mut http_duration)),
                Check::CallPort(_) => Some((&mut call_reachable, &mut call_rtt)),
                Check::Quic(_) => Some((&mut quic_success, &mut quic_duration)),
                Check::Download(_) => None,
                Check::Upload(_) => {
                    upload_success.set(&labels, b(ok));
                    None
                }
            };
            if let Some((success, timed)) = pair {
                success.set(&labels, b(ok));
                if let Some(d) = duration {
                    timed.set(&labels, d);
                }
            }
            match &outcome.facts {
                Facts::Dns { answers, .. } => dns_answers.set(&labels, *answers as f64),
                Facts::Http { status } => http_status.set(&labels, f64::from(*status)),
                Facts::Tls { not_after, version } => {
                    if let Some(t) = not_after {
                        tls_expiry.set(&labels, *t as f64);
                    }
                    let mut l = labels.clone();
                    l.push((key("version"), version.to_string()));
                    tls_version.set(&l, 1.0);
                }
                Facts::Download(t) => {
                    download_bytes.set(&labels, t.bytes as f64);
                    download_duration.set(&labels, t.duration.as_secs_f64());
                    download_rate.set(&labels, t.rate());
                    if let Some(f) = t.first_byte {
                        download_first_byte.set(&labels, f.as_secs_f64());
                    }
                    if let Some(n) = t.segments {
                        download_segments.set(&labels, f64::from(n));
                    }
                }
                Facts::Upload(t) => {
                    upload_bytes.set(&labels, t.bytes as f64);
                    upload_duration.set(&labels, t.duration.as_secs_f64());
                    upload_rate.set(&labels, t.rate());
                    if let Some(n) = t.segments {
                        upload_segments.set(&labels, f64::from(n));
                    }
                }
                _ => {}
            }
            if let Some((stage, reason)) = outcome.failure {
                labels.push((key("check"), check.kind().as_str().to_string()));
                labels.push((key("stage"), stage.as_str().to_string()));
                labels.push((key("reason"), reason.as_str().to_string()));
                failure.set(&labels, 1.0);
            }
        }
        let i = match up.iter().position(|(s, _)| *s == service) {
            Some(i) => i,
            None => {
                up.push((service, true));
                up.len() - 1
            }
        };
        if counts_for_up {
            up[i].1 &= outcome.is_ok();
        }
    }
    for (service, target, kind, v) in verdicts {
        let mut labels = base_labels(service, config);
        labels.push((key("target"), target.to_string()));
        labels.push((key("kind"), kind.as_str().to_string()));
        blocking.set(&labels, b(v));
    }
    let mut network = Metric::new(
        "reachability_network_regime",
        "1 for the regime the references show (open: a foreign one answered; allowlist: only domestic ones; offline: none), 0 for the others",
    );
    let mut round_started = Metric::new(
        "reachability_round_timestamp_seconds",
        "When the round served for this service started, seconds since the epoch; present for services with every:, whose rounds run on a timer",
    );
    for (service, started) in rounds {
        round_started.set(&base_labels(service, config), started);
    }
    for r in regime.map_or(&[][..], |_| &NetworkRegime::ALL[..]) {
        let mut labels = vantage_labels(config);
        labels.push((key("regime"), r.as_str().to_string()));
        network.set(&labels, b(Some(*r) == regime));
    }
    let categories: std::collections::HashMap<&str, &str> = config
        .services
        .iter()
        .filter_map(|s| Some((s.name.as_str(), s.category.as_deref()?)))
        .collect();
    for (service, state) in &up {
        service_up.set(&base_labels(service, config), b(*state));
        if let Some(category) = categories.get(service) {
            let mut labels = base_labels(service, config);
            labels.push((key("category"), category.to_string()));
            service_info.set(&labels, 1.0);
        }
    }

    let mut reg = Registry::default();
    for m in [
        dns_success,
        dns_duration,
        dns_answers,
        tcp_success,
        tcp_duration,
        tls_success,
        tls_duration,
        tls_expiry,
        tls_version,
        call_reachable,
        call_rtt,
        http_success,
        http_status,
        http_duration,
        download_bytes,
        download_duration,
        download_rate,
        download_first_byte,
        download_segments,
        upload_success,
        upload_bytes,
        upload_duration,
        upload_rate,
        upload_segments,
        quic_success,
        quic_duration,
        failure,
        blocking,
        service_up,
        service_info,
        round_started,
        network,
    ]
    .into_iter()
    .chain(censor::metrics(config, located))
    {
        m.register(&mut reg);
    }
    match own {
        Own::All(own) => register_own(&mut reg, own),
        Own::Duration(d) => {
            let g = GaugeF::default();
            g.set(d);
            reg.register(
                "reachability_exporter_scrape_duration_seconds",
                "Time this scrape took, from request to rendering",
                g,
            );
        }
    }

    let mut out = String::with_capacity(4096);
    // Writing to a String cannot fail.
    let _ = match format {
        Format::OpenMetrics => text::encode(&mut out, &reg),
        Format::Prometheus => prometheus_client::encoding::prometheus_text::encode(&mut out, &reg),
    };
    out
}

const fn key(name: &'static str) -> Cow<'static, str> {
    Cow::Borrowed(name)
}

/// `service` and the config's vantage labels: the start of every probe
/// series' label set.
fn base_labels(service: &str, config: &crate::config::Config) -> Labels {
    let mut labels = vec![(key("service"), service.to_string())];
    labels.extend(vantage_labels(config));
    labels
}

/// The config's vantage labels alone (series about the network, not a
/// service).
fn vantage_labels(config: &crate::config::Config) -> Labels {
    let own = config.labels.iter();
    own.map(|(k, v)| (Cow::Owned(k.clone()), v.clone()))
        .collect()
}

fn register_own(reg: &mut Registry, own: &SelfStats) {
    let build = Family::<Labels, GaugeF>::default();
    build
        .get_or_create(&vec![(
            key("version"),
            env!("CARGO_PKG_VERSION").to_string(),
        )])
        .set(1.0);
    reg.register(
        "reachability_exporter_build_info",
        "The exporter's version; always 1",
        build,
    );
    let gauge = |v: f64| {
        let g = GaugeF::default();
        g.set(v);
        g
    };
    let counter = |v: u64| {
        let c: Counter = Counter::default();
        c.inc_by(v);
        c
    };
    reg.register(
        "reachability_exporter_scrape_duration_seconds",
        "Time this scrape took, from request to rendering",
        gauge(own.scrape_duration_seconds),
    );
    reg.register(
        "reachability_exporter_config_last_reload_successful",
        "1 if the last config load or reload succeeded",
        gauge(b(own.reload_ok)),
    );
    reg.register(
        "reachability_exporter_config_last_reload_success_timestamp_seconds",
        "When the config was last loaded successfully, seconds since the epoch",
        gauge(own.reload_success_timestamp),
    );
    // Counter names get their `_total` suffix from prometheus-client.
    reg.register(
        "reachability_exporter_rounds",
        "Rounds of checks started (concurrent scrapes share one round)",
        counter(own.rounds_total),
    );
    reg.register(
        "reachability_exporter_scrapes",
        "Scrapes of /metrics and /probe served",
        counter(own.scrapes_total),
    );
    let checks = Family::<Labels, Counter>::default();
    let cut = Family::<Labels, Counter>::default();
    for (kind, counts) in CheckKind::ALL.into_iter().zip(own.checks) {
        for (result, n) in [("ok", counts.ok), ("failed", counts.failed)] {
            checks
                .get_or_create(&vec![
                    (key("check"), kind.as_str().to_string()),
                    (key("result"), result.to_string()),
                ])
                .inc_by(n);
        }
        cut.get_or_create(&vec![(key("check"), kind.as_str().to_string())])
            .inc_by(counts.cut);
    }
    reg.register(
        "reachability_exporter_checks",
        "Checks that ended since start, by kind and result (ok or failed)",
        checks,
    );
    reg.register(
        "reachability_exporter_checks_cut",
        "Checks cut off by a deadline (their timeout or the scrape's) since start, by kind",
        cut,
    );
    reg.register(
        "reachability_exporter_checks_in_flight",
        "Checks running now, across rounds and /probe requests (at most max_concurrent_checks)",
        gauge(own.in_flight as f64),
    );
    if let Some(d) = own.task_delay {
        let delay = Family::<Labels, GaugeF>::default();
        for (q, v) in [("0.5", d.p50), ("0.99", d.p99), ("1", d.max)] {
            delay
                .get_or_create(&vec![(key("quantile"), q.to_string())])
                .set(v.as_secs_f64());
        }
        reg.register(
            "reachability_exporter_task_delay_seconds",
            "How long the exporter's own woken tasks waited to run during the round reported, by quantile of samples every 5 ms: what its own clock may have added to the timings the kernel does not take (DNS, QUIC, STUN, HTTP, downloads)",
            delay,
        );
    }
    if let Some(p) = own.push {
        let samples = Family::<Labels, Counter>::default();
        for (result, n) in [
            ("sent", p.sent),
            ("dropped", p.dropped),
            ("retried", p.retried),
        ] {
            samples
                .get_or_create(&vec![(key("result"), result.to_string())])
                .inc_by(n);
        }
        reg.register(
            "reachability_exporter_remote_write_samples",
            "Samples of push mode (remote_write) since start: sent (accepted by the receiver), dropped (past the queue's bounds, or refused with a 4xx), retried (a send that failed, counted at each attempt)",
            samples,
        );
        reg.register(
            "reachability_exporter_remote_write_queue_samples",
            "Samples waiting to be pushed",
            gauge(p.queued as f64),
        );
        reg.register(
            "reachability_exporter_remote_write_last_success_timestamp_seconds",
            "When a push last succeeded, seconds since the epoch (0: never)",
            gauge(p.last_success),
        );
    }
    let refused = Family::<Labels, Counter>::default();
    for (code, n) in own.refused {
        if code != 0 {
            refused
                .get_or_create(&vec![(key("code"), code.to_string())])
                .inc_by(n);
        }
    }
    reg.register(
        "reachability_exporter_requests_refused",
        "Requests answered with an error status since start, by code (503: over max_concurrent_checks)",
        refused,
    );
    if let Some(p) = own.process {
        let cpu: Counter<f64> = Counter::default();
        cpu.inc_by(p.cpu_seconds);
        reg.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            cpu,
        );
        reg.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            gauge(p.resident_memory_bytes),
        );
        reg.register(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            gauge(p.virtual_memory_bytes),
        );
        reg.register(
            "process_open_fds",
            "Number of open file descriptors",
            gauge(p.open_fds),
        );
        if let Some(m) = p.max_fds {
            reg.register(
                "process_max_fds",
                "Maximum number of open file descriptors",
                gauge(m),
            );
        }
        reg.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            gauge(p.start_time_seconds),
        );
    }
}

#[cfg(test)]
mod tests;
