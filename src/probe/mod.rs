//! Checks and how they run: the [`Catalogue`] built once per config load,
//! the [`Outcome`] every prober returns, and the one place where a check's
//! deadline is applied ([`Catalogue::run`]).
//!
//! Probers (one module per kind) measure and classify; they never touch
//! metrics. A prober reports which stage it is in through [`Progress`], so
//! that a check cut off by its deadline is reported at the stage it was in.

pub mod call_port;
pub mod dns;
pub mod download;
pub mod http;
pub mod quic;
pub mod tcp;
pub mod tls;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Check, CheckOptions, Config, Host, IpFamily, Trust};
use crate::reason::{Reason, Stage};

/// What a check found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `None` when the check passed; else where and why it failed.
    pub failure: Option<(Stage, Reason)>,
    /// How long the measured step took, present when that step completed
    /// (a DNS query that got any answer, a TCP connect, a TLS handshake).
    pub duration: Option<Duration>,
    /// Kind-specific facts.
    pub facts: Facts,
    /// For a TLS check with a `control_sni`: whether the handshake with the
    /// neutral name to the same address completed (`None`: not made, or
    /// not finished). Evidence for the `sni_filtered` verdict, no series.
    pub control: Option<bool>,
}

/// Kind-specific facts of an outcome.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Facts {
    /// Nothing beyond success and duration.
    #[default]
    None,
    /// A DNS answer.
    Dns {
        /// Addresses of the asked type in the answer.
        answers: usize,
        /// Those addresses (evidence for verdicts, never a label).
        addrs: Vec<IpAddr>,
    },
    /// A STUN answer.
    Stun {
        /// Our address as the STUN server saw it (for logs and the status
        /// page, never a label).
        mapped: Option<SocketAddr>,
    },
    /// An HTTP response.
    Http {
        /// Its status code.
        status: u16,
    },
    /// A completed TLS handshake.
    Tls {
        /// Leaf certificate notAfter, seconds since the epoch.
        not_after: Option<i64>,
        /// Negotiated version, `TLS 1.2` or `TLS 1.3`.
        version: &'static str,
    },
    /// A download that got as far as sending its request.
    Download(Transfer),
    /// An `all_addresses` check: the outcome at each address, in answer
    /// order.
    Addresses(Vec<(IpAddr, Outcome)>),
}

/// What a download received once its request was sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transfer {
    /// Body bytes received.
    pub bytes: u64,
    /// Request sent → last byte (or the end of the check).
    pub duration: Duration,
    /// Request sent → response head, when it came.
    pub first_byte: Option<Duration>,
    /// No byte came for `stall_after`.
    pub stalled: bool,
}

impl Transfer {
    /// Body bytes per second over [`Transfer::duration`].
    pub fn rate(&self) -> f64 {
        let secs = self.duration.as_secs_f64();
        if secs > 0.0 {
            self.bytes as f64 / secs
        } else {
            0.0
        }
    }
}

impl Outcome {
    /// A passed check.
    pub fn ok(duration: Duration, facts: Facts) -> Outcome {
        Outcome {
            failure: None,
            duration: Some(duration),
            facts,
            control: None,
        }
    }

    /// A failed check with no measurement.
    pub fn failed(stage: Stage, reason: Reason) -> Outcome {
        Outcome {
            failure: Some((stage, reason)),
            duration: None,
            facts: Facts::None,
            control: None,
        }
    }

    /// An `all_addresses` check's outcome: failed (at the first failing
    /// address's stage and reason) unless every address passed.
    pub fn per_address(results: Vec<(IpAddr, Outcome)>) -> Outcome {
        Outcome {
            failure: results.iter().find_map(|(_, o)| o.failure),
            duration: None,
            facts: Facts::Addresses(results),
            control: None,
        }
    }

    /// Whether the check passed.
    pub fn is_ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// What a running check has got to, readable while it runs: the stage it
/// is in, and whether it has seen a malformed answer.
#[derive(Debug, Default)]
pub struct Progress {
    stage: AtomicU8,
    malformed: AtomicBool,
    /// 0: no control handshake result; 1: it completed; 2: it failed.
    control: AtomicU8,
    /// A download's transfer so far.
    transfer: TransferProgress,
    /// An `all_addresses` check's addresses, once resolved.
    addresses: OnceLock<Vec<AddressProgress>>,
    /// A deadline cut the check off.
    cut: AtomicBool,
}

/// A download's transfer so far, readable when it is cut off.
#[derive(Debug)]
struct TransferProgress {
    sent: OnceLock<Instant>,
    /// Nanoseconds from `sent` to the response head; `u64::MAX` before.
    first_byte_ns: AtomicU64,
    bytes: AtomicU64,
}

/// One address of an `all_addresses` check.
#[derive(Debug)]
struct AddressProgress {
    ip: IpAddr,
    progress: Progress,
    outcome: OnceLock<Outcome>,
}

impl Progress {
    /// Records that the check entered `stage`.
    pub fn enter(&self, stage: Stage) {
        self.stage.store(stage.to_u8(), Ordering::Relaxed);
    }

    /// The stage the check is in.
    pub fn stage(&self) -> Stage {
        Stage::from_u8(self.stage.load(Ordering::Relaxed))
    }

    /// Records that an answer came but was malformed (and was ignored).
    pub fn note_malformed(&self) {
        self.malformed.store(true, Ordering::Relaxed);
    }

    /// Whether a deadline cut the check off.
    pub fn was_cut(&self) -> bool {
        self.cut.load(Ordering::Relaxed)
    }

    /// Records whether the control handshake completed.
    pub fn set_control(&self, completed: bool) {
        self.control
            .store(if completed { 1 } else { 2 }, Ordering::Relaxed);
    }

    /// Whether the control handshake completed, if it ended.
    pub fn control_result(&self) -> Option<bool> {
        match self.control.load(Ordering::Relaxed) {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        }
    }

    /// Records that a download's request was sent (the transfer starts).
    pub fn transfer_started(&self) -> Instant {
        *self.transfer.sent.get_or_init(Instant::now)
    }

    /// Records the arrival of the response head.
    pub fn first_byte(&self, after: Duration) {
        let ns = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX - 1);
        self.transfer.first_byte_ns.store(ns, Ordering::Relaxed);
    }

    /// Adds received body bytes; returns the total.
    pub fn received(&self, n: u64) -> u64 {
        self.transfer.bytes.fetch_add(n, Ordering::Relaxed) + n
    }

    /// The transfer so far (`None` before the request was sent).
    pub fn transfer(&self, stalled: bool) -> Option<Transfer> {
        let sent = self.transfer.sent.get()?;
        let ns = self.transfer.first_byte_ns.load(Ordering::Relaxed);
        Some(Transfer {
            bytes: self.transfer.bytes.load(Ordering::Relaxed),
            duration: sent.elapsed(),
            first_byte: (ns != u64::MAX && ns != 0).then(|| Duration::from_nanos(ns)),
            stalled,
        })
    }

    /// The outcome of a check cut off by its deadline: failed at the stage
    /// it was in, with `generic_timeout_error` — or `unknown_failure` if only
    /// malformed answers came. A download whose response had begun is not
    /// a failure: it ran out of time while receiving, and its rate stands.
    /// An `all_addresses` check is reported address by address.
    pub fn cut_off(&self) -> Outcome {
        if let Some(subs) = self.addresses.get() {
            return Outcome::per_address(
                subs.iter()
                    .map(|s| {
                        let o = s.outcome.get().cloned();
                        (s.ip, o.unwrap_or_else(|| s.progress.cut_off()))
                    })
                    .collect(),
            );
        }
        let reason = if self.malformed.load(Ordering::Relaxed) {
            Reason::UnknownFailure
        } else {
            Reason::GenericTimeout
        };
        let mut outcome = Outcome::failed(self.stage(), reason);
        if let Some(t) = self.transfer(false) {
            if t.first_byte.is_some() {
                outcome.failure = None;
            }
            outcome.facts = Facts::Download(t);
        }
        outcome.control = self.control_result();
        outcome
    }
}

impl Default for TransferProgress {
    fn default() -> Self {
        TransferProgress {
            sent: OnceLock::new(),
            first_byte_ns: AtomicU64::new(u64::MAX),
            bytes: AtomicU64::new(0),
        }
    }
}

/// Runs `probe` at every address `host` resolves to (at most `max`, in
/// answer order), concurrently; each address's progress is kept so that a
/// cut-off reports each where it was.
pub async fn each_address<'a, F, Fut>(
    host: &Host,
    max: usize,
    resolver: &TargetResolver<'_>,
    progress: &'a Progress,
    probe: F,
) -> Outcome
where
    F: Fn(IpAddr, &'a Progress) -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    let ips = match resolver.resolve_all(host, progress).await {
        Ok(ips) => ips,
        Err(reason) => return Outcome::failed(Stage::Resolve, reason),
    };
    let subs = progress.addresses.get_or_init(|| {
        ips.into_iter()
            .take(max)
            .map(|ip| AddressProgress {
                ip,
                progress: Progress::default(),
                outcome: OnceLock::new(),
            })
            .collect()
    });
    futures_util::future::join_all(subs.iter().map(|s| {
        let fut = probe(s.ip, &s.progress);
        async move {
            let _ = s.outcome.set(fut.await);
        }
    }))
    .await;
    progress.cut_off()
}

/// A check of the catalogue with what it needs to run.
#[derive(Debug)]
pub struct Entry {
    /// Index of its service in [`Config::services`].
    pub service: usize,
    /// What to check.
    pub check: Check,
    /// For TLS and https checks: the client configuration.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// For QUIC checks: the client configuration.
    quic: Option<quinn::ClientConfig>,
}

/// Everything needed to run the checks of one config: resolvers and TLS
/// client configurations are built here once, not per scrape.
pub struct Catalogue {
    /// The config this was built from.
    pub config: Config,
    /// One client per configured resolver (same indices).
    resolvers: Vec<dns::DnsClient>,
    /// Every check, in config order.
    pub entries: Vec<Entry>,
    /// For each service, the range of its entries.
    pub service_entries: Vec<std::ops::Range<usize>>,
    /// For each `/probe` module (same indices), its TLS configuration.
    module_tls: Vec<Option<Arc<rustls::ClientConfig>>>,
    /// For each `/probe` module (same indices), its QUIC configuration.
    module_quic: Vec<Option<quinn::ClientConfig>>,
    /// Control handshakes with a neutral name: certificates not judged.
    control_tls: Arc<rustls::ClientConfig>,
    /// Public roots, for evidence handshakes no check configures.
    default_tls: Arc<rustls::ClientConfig>,
    /// What the verdicts are made of (see [`crate::verdict`]).
    pub plans: Vec<crate::verdict::Plan>,
    /// How many evidence slots the plans number.
    pub evidence_slots: usize,
    /// One permit per check that may be in flight (`max_concurrent_checks`).
    permits: Arc<tokio::sync::Semaphore>,
}

/// Not enough room under `max_concurrent_checks` to start more checks.
#[derive(Debug, thiserror::Error)]
#[error(
    "too busy: {in_flight} checks are in flight and this needs {needed} more, over max_concurrent_checks ({max}); retry later"
)]
pub struct Busy {
    /// Checks in flight.
    pub in_flight: usize,
    /// Checks the request needed.
    pub needed: usize,
    /// The limit.
    pub max: usize,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogue")
            .field("checks", &self.entries.len())
            .finish()
    }
}

/// The catalogue could not be built from a valid config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// hickory refused a resolver configuration.
    #[error("resolver {name}: {source}")]
    Resolver {
        /// The resolver's name.
        name: String,
        /// hickory's error.
        #[source]
        source: hickory_resolver::net::NetError,
    },
    /// rustls refused a client configuration.
    #[error("TLS client configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// quinn refused a client configuration.
    #[error("QUIC client configuration: {0}")]
    Quic(String),
}

impl Catalogue {
    /// Builds resolvers and TLS configurations for `config`. Sends nothing.
    pub fn new(config: Config) -> Result<Catalogue, BuildError> {
        // Library timeouts must never fire before ours: give hickory the
        // longest check timeout plus a margin.
        let longest = config
            .checks()
            .map(|(_, c)| c.timeout())
            .max()
            .unwrap_or(crate::config::DEFAULT_TIMEOUT);
        let resolvers = config
            .resolvers
            .iter()
            .map(|r| {
                dns::DnsClient::new(&r.kind, longest + Duration::from_secs(1)).map_err(|source| {
                    BuildError::Resolver {
                        name: r.name.clone(),
                        source,
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let mut tls_cache: HashMap<(TrustKey, tls::Alpn), Arc<rustls::ClientConfig>> =
            HashMap::new();
        let mut tls_for = |trust: &Trust, alpn: tls::Alpn| -> Result<_, BuildError> {
            let key = (TrustKey::of(trust), alpn);
            Ok(match tls_cache.get(&key) {
                Some(c) => c.clone(),
                None => {
                    let c = Arc::new(tls::client_config(trust, alpn)?);
                    tls_cache.insert(key, c.clone());
                    c
                }
            })
        };
        let mut entries = Vec::new();
        let mut service_entries = Vec::new();
        for (si, service) in config.services.iter().enumerate() {
            let start = entries.len();
            for check in &service.checks {
                let wants = match check {
                    Check::Tls(t) => Some((&t.trust, tls::Alpn::Browser)),
                    Check::Http(h) if h.url.scheme() == "https" || h.max_redirects > 0 => {
                        // A redirect may lead from http to https.
                        Some((&h.trust, tls::Alpn::Http1))
                    }
                    Check::Download(d) if d.url.scheme() == "https" => {
                        Some((&d.trust, tls::Alpn::Http1))
                    }
                    _ => None,
                };
                let tls = match wants {
                    Some((trust, alpn)) => Some(tls_for(trust, alpn)?),
                    None => None,
                };
                let quic = match check {
                    Check::Quic(q) => Some(quic::client_config(&q.trust, &q.alpn, q.timeout)?),
                    _ => None,
                };
                entries.push(Entry {
                    service: si,
                    check: check.clone(),
                    tls,
                    quic,
                });
            }
            service_entries.push(start..entries.len());
        }
        let module_tls = config
            .modules
            .iter()
            .map(|m| match &m.options {
                CheckOptions::Tls(o) => tls_for(&o.trust, tls::Alpn::Browser).map(Some),
                CheckOptions::Http(o) => tls_for(&o.trust, tls::Alpn::Http1).map(Some),
                CheckOptions::Download(o) => tls_for(&o.trust, tls::Alpn::Http1).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let module_quic = config
            .modules
            .iter()
            .map(|m| match &m.options {
                CheckOptions::Quic(o) => {
                    quic::client_config(&o.trust, &o.alpn, o.timeout).map(Some)
                }
                _ => Ok(None),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let control_tls = tls_for(&Trust::Insecure, tls::Alpn::Browser)?;
        let default_tls = tls_for(&Trust::WebPki, tls::Alpn::Browser)?;
        let config_max = config.max_concurrent_checks;
        let plans = crate::verdict::plans(&config, &entries);
        let evidence_slots = plans
            .iter()
            .flat_map(|p| p.cases.iter().filter_map(|c| c.evidence()))
            .max()
            .map_or(0, |m| m + 1);
        Ok(Catalogue {
            config,
            resolvers,
            entries,
            service_entries,
            module_tls,
            module_quic,
            control_tls,
            default_tls,
            plans,
            evidence_slots,
            permits: Arc::new(tokio::sync::Semaphore::new(config_max)),
        })
    }

    /// Reserves room for `n` checks (one permit each), or says why not.
    pub fn reserve(&self, n: usize) -> Result<tokio::sync::OwnedSemaphorePermit, Busy> {
        let busy = || Busy {
            in_flight: self.in_flight(),
            needed: n,
            max: self.config.max_concurrent_checks,
        };
        let n32 = u32::try_from(n).map_err(|_| busy())?;
        self.permits
            .clone()
            .try_acquire_many_owned(n32)
            .map_err(|_| busy())
    }

    /// Checks in flight (of this config's rounds and probes).
    pub fn in_flight(&self) -> usize {
        self.config
            .max_concurrent_checks
            .saturating_sub(self.permits.available_permits())
    }

    /// The TLS configuration of entry `entry` (a TLS or https check), or
    /// the public roots' when there is none: for evidence handshakes.
    pub fn handshake_config(&self, entry: Option<usize>) -> Arc<rustls::ClientConfig> {
        entry
            .and_then(|i| self.entries[i].tls.clone())
            .unwrap_or_else(|| self.default_tls.clone())
    }

    /// Runs check `index` until it ends or `deadline` (capped by the
    /// check's own timeout) passes; a check cut off is reported by
    /// [`Progress::cut_off`].
    pub async fn run(&self, index: usize, deadline: Instant, progress: &Progress) -> Outcome {
        let entry = &self.entries[index];
        let service = &self.config.services[entry.service];
        let resolver = TargetResolver {
            resolver: &self.resolvers[service.resolve_with],
            allowed: &service.allowed_ranges,
            family: entry.check.family(),
        };
        self.run_check(
            &entry.check,
            entry.tls.clone(),
            entry.quic.as_ref(),
            resolver,
            deadline,
            progress,
        )
        .await
    }

    /// Runs an ad hoc check made by `/probe` module `module` (an index into
    /// the config's modules): targets resolve with the system resolver, and
    /// the bogon rule exempts the top-level `allowed_ranges`.
    pub async fn run_module(
        &self,
        module: usize,
        check: &Check,
        deadline: Instant,
        progress: &Progress,
    ) -> Outcome {
        let resolver = TargetResolver {
            resolver: &self.resolvers[0],
            allowed: &self.config.allowed_ranges,
            family: check.family(),
        };
        let tls = self.module_tls.get(module).cloned().flatten();
        let quic = self.module_quic.get(module).and_then(|q| q.as_ref());
        self.run_check(check, tls, quic, resolver, deadline, progress)
            .await
    }

    async fn run_check(
        &self,
        check: &Check,
        tls: Option<Arc<rustls::ClientConfig>>,
        quic: Option<&quinn::ClientConfig>,
        resolver: TargetResolver<'_>,
        deadline: Instant,
        progress: &Progress,
    ) -> Outcome {
        let deadline = deadline.min(Instant::now() + check.timeout());
        let fut = async {
            match check {
                Check::Dns(c) => {
                    progress.enter(Stage::Resolve);
                    dns::probe(c, &self.resolvers[c.resolver], resolver.allowed).await
                }
                Check::Tcp(c) => tcp::probe(c, resolver, progress).await,
                Check::Tls(c) => {
                    // Built for every TLS check and module in `new`.
                    let Some(cfg) = tls else {
                        return Outcome::failed(Stage::TlsHandshake, Reason::UnknownFailure);
                    };
                    tls::probe(c, cfg, self.control_tls.clone(), resolver, progress).await
                }
                Check::CallPort(c) => call_port::probe(c, resolver, progress).await,
                Check::Http(c) => http::probe(c, tls, resolver, progress).await,
                Check::Download(c) => download::probe(c, tls, resolver, progress).await,
                Check::Quic(c) => {
                    // Built for every QUIC check in `new`.
                    let Some(cfg) = quic else {
                        return Outcome::failed(Stage::QuicHandshake, Reason::UnknownFailure);
                    };
                    quic::probe(c, cfg, resolver, progress).await
                }
            }
        };
        match tokio::time::timeout_at(deadline, fut).await {
            Ok(mut outcome) => {
                if outcome.control.is_none() {
                    outcome.control = progress.control_result();
                }
                outcome
            }
            Err(_) => {
                progress.cut.store(true, Ordering::Relaxed);
                progress.cut_off()
            }
        }
    }
}

/// Resolves the host of a TCP or TLS target with its service's resolver.
pub struct TargetResolver<'a> {
    resolver: &'a dns::DnsClient,
    allowed: &'a [ipnet::IpNet],
    family: IpFamily,
}

impl TargetResolver<'_> {
    /// The address to connect to: the literal, or the first address of the
    /// preferred family the service's resolver returns. Failures are at
    /// stage `resolve`; an answer holding a bogon is refused as
    /// `dns_bogon_error`.
    pub async fn resolve(&self, host: &Host, progress: &Progress) -> Result<IpAddr, Reason> {
        // `resolve_all` never returns an empty list.
        Ok(self.resolve_all(host, progress).await?[0])
    }

    /// Every address of the preferred family (both with `any`), in answer
    /// order; never empty.
    pub async fn resolve_all(
        &self,
        host: &Host,
        progress: &Progress,
    ) -> Result<Vec<IpAddr>, Reason> {
        match host {
            Host::Ip(ip) => Ok(vec![*ip]),
            Host::Name(name) => {
                progress.enter(Stage::Resolve);
                dns::resolve(self.resolver, name, self.family, self.allowed).await
            }
        }
    }
}

/// Key under which identical TLS client configurations are shared.
#[derive(Hash, PartialEq, Eq)]
enum TrustKey {
    WebPki,
    Insecure,
    CaFile(PathBuf),
}

impl TrustKey {
    fn of(t: &Trust) -> TrustKey {
        match t {
            Trust::WebPki => TrustKey::WebPki,
            Trust::Insecure => TrustKey::Insecure,
            Trust::CaFile { path, .. } => TrustKey::CaFile(path.clone()),
        }
    }
}
