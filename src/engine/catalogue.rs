//! The catalogue: everything needed to run the checks of one config load,
//! built once — resolvers, TLS and QUIC client configurations, the checks
//! with their ids, the verdict plans, and the permits of
//! `max_concurrent_checks`. Swapped whole on reload. It sends nothing
//! itself; [`Catalogue::run`] hands a check to its prober.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Check, CheckOptions, Config, Side, Trust};
use crate::ids::{EntryId, PlanId, ServiceId};
use crate::locate::{Limits, Located};
pub use crate::probe::BuildError;
use crate::probe::ttl::TtlProber;
use crate::probe::{self, Clients, Outcome, Progress, TargetResolver, dns, quic, tls};
use crate::verdict::{BlockingKind, Plan};

/// A check of the catalogue with what it needs to run.
#[derive(Debug)]
pub struct Entry {
    /// Its service.
    pub service: ServiceId,
    /// What to check.
    pub check: Check,
    /// For TLS and https checks: the client configuration.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// For QUIC checks: the client configuration.
    quic: Option<quic::QuicClients>,
    /// For TLS checks with `ech: grease`: the GREASE-ECH handshake's.
    ech_tls: Option<Arc<rustls::ClientConfig>>,
}

/// A reference of the network regime (`regime:`) with what it needs to run.
#[derive(Debug)]
pub struct Reference {
    /// Domestic or foreign.
    pub side: Side,
    /// The handshake (a TLS check).
    pub check: Check,
    tls: Arc<rustls::ClientConfig>,
}

/// Everything needed to run the checks of one config: resolvers and TLS
/// client configurations are built here once, not per scrape.
pub struct Catalogue {
    /// The config this was built from.
    pub config: Config,
    /// One client per configured resolver (same indices).
    resolvers: Vec<dns::DnsClient>,
    /// Every check, in config order (indexed by [`EntryId`]).
    entries: Vec<Entry>,
    /// For each service, the range of its entries.
    service_entries: Vec<std::ops::Range<usize>>,
    /// For each `/probe` module (same indices), its TLS configuration.
    module_tls: Vec<Option<Arc<rustls::ClientConfig>>>,
    /// For each `/probe` module (same indices), its QUIC configuration.
    module_quic: Vec<Option<quic::QuicClients>>,
    /// Control handshakes with a neutral name: certificates not judged.
    control_tls: Arc<rustls::ClientConfig>,
    /// Public roots, for evidence handshakes no check configures.
    default_tls: Arc<rustls::ClientConfig>,
    /// What the verdicts are made of (indexed by [`PlanId`]; see
    /// [`crate::verdict`]).
    plans: Vec<Plan>,
    /// How many evidence slots the plans number.
    pub evidence_slots: usize,
    /// The network regime's references, domestic first.
    references: Vec<Reference>,
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

impl Catalogue {
    /// Builds resolvers and TLS configurations for `config`. Sends nothing.
    pub fn new(config: Config) -> Result<Catalogue, BuildError> {
        // Before any check: the TLS handshake's end is the kernel's stamp.
        crate::probe::kernel::keep_stamping();
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
                    Check::Upload(u) if u.url.scheme() == "https" => {
                        Some((&u.trust, tls::Alpn::Http1))
                    }
                    _ => None,
                };
                let tls = match wants {
                    Some((trust, alpn)) => Some(tls_for(trust, alpn)?),
                    None => None,
                };
                let quic = match check {
                    Check::Quic(q) => Some(quic::QuicClients::new(
                        &q.trust,
                        &q.alpn,
                        q.timeout,
                        q.control_sni.is_some(),
                    )?),
                    _ => None,
                };
                let ech_tls = match check {
                    Check::Tls(t) if t.ech.is_some() => Some(Arc::new(tls::grease_ech_config(
                        &t.trust,
                        tls::Alpn::Browser,
                    )?)),
                    _ => None,
                };
                entries.push(Entry {
                    service: ServiceId::new(si),
                    check: check.clone(),
                    tls,
                    quic,
                    ech_tls,
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
                CheckOptions::Upload(o) => tls_for(&o.trust, tls::Alpn::Http1).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let module_quic = config
            .modules
            .iter()
            .map(|m| match &m.options {
                CheckOptions::Quic(o) => {
                    quic::QuicClients::new(&o.trust, &o.alpn, o.timeout, false).map(Some)
                }
                _ => Ok(None),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut references = Vec::new();
        for (side, check) in config.regime.iter().flat_map(|r| &r.references) {
            let trust = match check {
                Check::Tls(t) => &t.trust,
                _ => &Trust::WebPki,
            };
            references.push(Reference {
                side: *side,
                check: check.clone(),
                tls: tls_for(trust, tls::Alpn::Browser)?,
            });
        }
        let control_tls = tls_for(&Trust::Insecure, tls::Alpn::Browser)?;
        let default_tls = tls_for(&Trust::WebPki, tls::Alpn::Browser)?;
        let config_max = config.max_concurrent_checks;
        let crate::verdict::Plans {
            plans,
            slots: evidence_slots,
        } = crate::verdict::plans(&config);
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
            references,
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
    pub fn handshake_config(&self, entry: Option<EntryId>) -> Arc<rustls::ClientConfig> {
        entry
            .and_then(|i| self.entries[i.index()].tls.clone())
            .unwrap_or_else(|| self.default_tls.clone())
    }

    /// Every check with its id, in config order.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (EntryId, &Entry)> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| (EntryId::new(i), e))
    }

    /// The check `id`.
    pub fn entry(&self, id: EntryId) -> &Entry {
        &self.entries[id.index()]
    }

    /// How many checks there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no check (never, for a valid config).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The checks of service `service`.
    pub fn entries_of(&self, service: ServiceId) -> impl Iterator<Item = EntryId> + use<> {
        self.service_entries[service.index()]
            .clone()
            .map(EntryId::new)
    }

    /// The service named `name`.
    pub fn service_named(&self, name: &str) -> Option<ServiceId> {
        self.config
            .services
            .iter()
            .position(|s| s.name == name)
            .map(ServiceId::new)
    }

    /// The name of service `service`.
    pub fn service_name(&self, service: ServiceId) -> &str {
        &self.config.services[service.index()].name
    }

    /// The `every:` of service `service`: `Some` when its checks run on
    /// the background scheduler instead of on each scrape.
    pub fn every(&self, service: ServiceId) -> Option<Duration> {
        self.config.services[service.index()].every
    }

    /// The services with `every:`, with it.
    pub fn scheduled(&self) -> impl Iterator<Item = (ServiceId, Duration)> {
        let services = self.config.services.iter().enumerate();
        services.filter_map(|(i, s)| Some((ServiceId::new(i), s.every?)))
    }

    /// The checks a scrape of every service runs: those of the services
    /// without `every:`.
    pub fn scraped_entries(&self) -> Vec<EntryId> {
        self.entries()
            .filter(|(_, e)| self.every(e.service).is_none())
            .map(|(id, _)| id)
            .collect()
    }

    /// The address of push mode's receiver `host`, resolved with the
    /// `system` resolver; any address is accepted (a receiver in the same
    /// cluster has a private one).
    pub async fn resolve_receiver(
        &self,
        host: &crate::config::Host,
    ) -> Result<std::net::IpAddr, crate::reason::Reason> {
        const ANY: [ipnet::IpNet; 2] = [
            ipnet::IpNet::V4(ipnet::Ipv4Net::new_assert(
                std::net::Ipv4Addr::UNSPECIFIED,
                0,
            )),
            ipnet::IpNet::V6(ipnet::Ipv6Net::new_assert(
                std::net::Ipv6Addr::UNSPECIFIED,
                0,
            )),
        ];
        let resolver = TargetResolver::new(&self.resolvers[0], &ANY, crate::config::IpFamily::Any);
        resolver.resolve(host, &Progress::default()).await
    }

    /// Every verdict plan with its id.
    pub fn plans(&self) -> impl ExactSizeIterator<Item = (PlanId, &Plan)> {
        self.plans
            .iter()
            .enumerate()
            .map(|(i, p)| (PlanId::new(i), p))
    }

    /// The plan `id`.
    pub fn plan(&self, id: PlanId) -> &Plan {
        &self.plans[id.index()]
    }

    /// Runs check `id` until it ends or `deadline` (capped by the check's
    /// own timeout) passes ([`probe::run`]).
    pub async fn run(&self, id: EntryId, deadline: Instant, progress: &Progress) -> Outcome {
        let entry = self.entry(id);
        let service = &self.config.services[entry.service.index()];
        let resolver = TargetResolver::new(
            &self.resolvers[service.resolve_with],
            &service.allowed_ranges,
            entry.check.family(),
        );
        let clients = Clients {
            resolvers: &self.resolvers,
            tls: entry.tls.as_ref(),
            quic: entry.quic.as_ref(),
            control_tls: &self.control_tls,
            ech_tls: entry.ech_tls.as_ref(),
        };
        probe::run(&entry.check, clients, resolver, deadline, progress).await
    }

    /// Searches where the censor of TLS check `id` sits ([`crate::locate`]):
    /// its target resolved as the check resolves it, then TTL-limited
    /// ClientHellos, real and neutral — for `sni_filtered`, the check's SNI
    /// and its `control_sni`; for `ech_blocked`, the GREASE-ECH ClientHello
    /// and the plain one. `None` when the check has no `locate`, its target
    /// does not resolve, or its ClientHellos cannot be made.
    pub async fn locate(&self, id: EntryId, kind: BlockingKind) -> Option<Located> {
        let entry = self.entry(id);
        let Check::Tls(t) = &entry.check else {
            return None;
        };
        let locate = t.locate?;
        let service = &self.config.services[entry.service.index()];
        let resolver = TargetResolver::new(
            &self.resolvers[service.resolve_with],
            &service.allowed_ranges,
            t.family,
        );
        let ip = resolver
            .resolve(&t.target.host, &Progress::default())
            .await
            .ok()?;
        let main = entry.tls.as_ref()?;
        let sni = t.sni.as_deref();
        let (real, neutral) = match kind {
            BlockingKind::EchBlocked => ((entry.ech_tls.as_ref()?, sni), (main, sni)),
            _ => ((main, sni), (&self.control_tls, t.control_sni.as_deref())),
        };
        let addr = std::net::SocketAddr::new(ip, t.target.port);
        let prober = match TtlProber::new(addr, real, neutral, t.timeout) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "cannot make the ClientHellos of a censor search");
                return None;
            }
        };
        let limits = Limits {
            max_hops: locate.max_hops,
            retries: 2,
            pace: Duration::from_secs(1),
        };
        let located = crate::locate::search(&prober, limits).await;
        // Plain words for the log: `1/real:expired 1/neutral:expired …`.
        let answers: Vec<String> = located
            .answers
            .iter()
            .map(|(ttl, hello, a)| format!("{ttl}/{}:{}", hello.as_str(), a.as_str()))
            .collect();
        let routers: Vec<String> = located
            .routers
            .iter()
            .map(|(h, a)| format!("{h}={a}"))
            .collect();
        let path_hops = located
            .path_hops
            .map_or("unknown".to_string(), |p| p.to_string());
        let (answers, routers) = (answers.join(" "), routers.join(" "));
        let (service, target) = (service.name.as_str(), t.target.written.as_str());
        match located.censor_hop {
            Some(hop) => tracing::info!(
                service, target, %ip, kind = kind.as_str(), hop, path_hops, routers, answers,
                "censor located"
            ),
            None => tracing::info!(
                service, target, %ip, kind = kind.as_str(), path_hops, answers,
                "censor not located: no hop answered as a proof needs"
            ),
        }
        Some(located)
    }

    /// The network regime's references.
    pub fn references(&self) -> &[Reference] {
        &self.references
    }

    /// Runs regime reference `i` until it ends or `deadline` (capped by its
    /// own timeout) passes; its host resolves with the `regime:` block's
    /// resolver.
    pub async fn run_reference(&self, i: usize, deadline: Instant, progress: &Progress) -> Outcome {
        let r = &self.references[i];
        let Some(regime) = &self.config.regime else {
            // Never: references are made from the regime block.
            return progress.cut_off();
        };
        let resolver = TargetResolver::new(
            &self.resolvers[regime.resolve_with],
            &regime.allowed_ranges,
            r.check.family(),
        );
        let clients = Clients {
            resolvers: &self.resolvers,
            tls: Some(&r.tls),
            quic: None,
            control_tls: &self.control_tls,
            ech_tls: None,
        };
        probe::run(&r.check, clients, resolver, deadline, progress).await
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
        let resolver = TargetResolver::new(
            &self.resolvers[0],
            &self.config.allowed_ranges,
            check.family(),
        );
        let clients = Clients {
            resolvers: &self.resolvers,
            tls: self.module_tls.get(module).and_then(|t| t.as_ref()),
            quic: self.module_quic.get(module).and_then(|q| q.as_ref()),
            control_tls: &self.control_tls,
            ech_tls: None,
        };
        probe::run(check, clients, resolver, deadline, progress).await
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
