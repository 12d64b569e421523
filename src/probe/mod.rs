//! Checks and how they run: the [`Catalogue`] built once per config load,
//! the [`Outcome`] every prober returns, and the one place where a check's
//! deadline is applied ([`Catalogue::run`]).
//!
//! Probers (one module per kind) measure and classify; they never touch
//! metrics. A prober reports which stage it is in through [`Progress`], so
//! that a check cut off by its deadline is reported at the stage it was in.

pub mod call_port;
pub mod dns;
pub mod http;
pub mod tcp;
pub mod tls;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Check, Config, ModuleSpec, Trust};
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
}

impl Outcome {
    /// A passed check.
    pub fn ok(duration: Duration, facts: Facts) -> Outcome {
        Outcome {
            failure: None,
            duration: Some(duration),
            facts,
        }
    }

    /// A failed check with no measurement.
    pub fn failed(stage: Stage, reason: Reason) -> Outcome {
        Outcome {
            failure: Some((stage, reason)),
            duration: None,
            facts: Facts::None,
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

    /// The outcome of a check cut off by its deadline: failed at the stage
    /// it was in, with `generic_timeout_error` — or `unknown_failure` if only
    /// malformed answers came.
    pub fn cut_off(&self) -> Outcome {
        let reason = if self.malformed.load(Ordering::Relaxed) {
            Reason::UnknownFailure
        } else {
            Reason::GenericTimeout
        };
        Outcome::failed(self.stage(), reason)
    }
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
                    _ => None,
                };
                let tls = match wants {
                    Some((trust, alpn)) => Some(tls_for(trust, alpn)?),
                    None => None,
                };
                entries.push(Entry {
                    service: si,
                    check: check.clone(),
                    tls,
                });
            }
            service_entries.push(start..entries.len());
        }
        let module_tls = config
            .modules
            .iter()
            .map(|m| match &m.spec {
                ModuleSpec::Tls { trust, .. } => tls_for(trust, tls::Alpn::Browser).map(Some),
                ModuleSpec::Http { trust, .. } => tls_for(trust, tls::Alpn::Http1).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Catalogue {
            config,
            resolvers,
            entries,
            service_entries,
            module_tls,
        })
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
        };
        self.run_check(
            &entry.check,
            entry.tls.clone(),
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
        };
        let tls = self.module_tls.get(module).cloned().flatten();
        self.run_check(check, tls, resolver, deadline, progress)
            .await
    }

    async fn run_check(
        &self,
        check: &Check,
        tls: Option<Arc<rustls::ClientConfig>>,
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
                    tls::probe(c, cfg, resolver, progress).await
                }
                Check::CallPort(c) => call_port::probe(c, resolver, progress).await,
                Check::Http(c) => http::probe(c, tls, resolver, progress).await,
            }
        };
        match tokio::time::timeout_at(deadline, fut).await {
            Ok(outcome) => outcome,
            Err(_) => progress.cut_off(),
        }
    }
}

/// Resolves the host of a TCP or TLS target with its service's resolver.
pub struct TargetResolver<'a> {
    resolver: &'a dns::DnsClient,
    allowed: &'a [ipnet::IpNet],
}

impl TargetResolver<'_> {
    /// The address to connect to: the literal, or the first address the
    /// service's resolver returns. Failures are at stage `resolve`; an
    /// answer holding a bogon is refused as `dns_bogon_error`.
    pub async fn resolve(
        &self,
        host: &crate::config::Host,
        progress: &Progress,
    ) -> Result<IpAddr, Reason> {
        match host {
            crate::config::Host::Ip(ip) => Ok(*ip),
            crate::config::Host::Name(name) => {
                progress.enter(Stage::Resolve);
                dns::resolve_first(self.resolver, name, self.allowed).await
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
