//! Probers and what they return: the [`Outcome`] every prober returns, the
//! [`Progress`] a running check reports through, the dispatch by kind and
//! the one place where a check's deadline is applied ([`run`]).
//!
//! Probers (one module per kind) measure and classify; they never touch
//! metrics, and do not know which service or round they run for. A prober
//! reports which stage it is in through [`Progress`], so that a check cut
//! off by its deadline is reported at the stage it was in.

pub mod call_port;
pub mod dns;
pub mod download;
pub mod ech;
pub mod http;
pub mod kernel;
mod progress;
pub mod quic;
pub mod tcp;
pub mod tls;
pub mod ttl;
pub mod upload;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Check, Host, IpFamily};
use crate::reason::{Reason, Stage};

pub use progress::{Progress, each_address};

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
    /// For a TLS or QUIC check with a `control_sni`: whether the server
    /// answered the handshake with the neutral name to the same address
    /// (completed it, or sent an alert; `None`: not made, or not finished).
    /// Evidence for the `sni_filtered` and `quic_sni_filtered` verdicts, no
    /// series.
    pub control: Option<bool>,
    /// For a TLS check with `ech: grease`: how the handshake carrying a
    /// GREASE encrypted_client_hello went (`None`: not made, or not needed:
    /// it is awaited only when the plain handshake passed). Evidence for
    /// the `ech_blocked` verdict, no series.
    pub ech: Option<EchResult>,
}

/// How a TLS check's GREASE-ECH handshake went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchResult {
    /// It completed (its certificate judged as the check's).
    Completed,
    /// It failed at this stage for this reason.
    Failed(Stage, Reason),
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
    /// An upload that got as far as sending its request: `bytes` are body
    /// bytes the peer acknowledged, `first_byte` the response head.
    Upload(Transfer),
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
    /// The response's HTTP status, once its head came.
    pub status: Option<u16>,
    /// Segments the kernel counted on the connection from its SYN on: for
    /// a download those received, for an upload those sent (what a censor
    /// counting packets sees). `None` when `TCP_INFO` could not tell.
    pub segments: Option<u32>,
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
            ech: None,
        }
    }

    /// A failed check with no measurement.
    pub fn failed(stage: Stage, reason: Reason) -> Outcome {
        Outcome {
            failure: Some((stage, reason)),
            duration: None,
            facts: Facts::None,
            control: None,
            ech: None,
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
            ech: None,
        }
    }

    /// Whether the check passed.
    pub fn is_ok(&self) -> bool {
        self.failure.is_none()
    }

    /// The HTTP status received (by an HTTP check or a download), passed
    /// or failed.
    pub fn http_status(&self) -> Option<u16> {
        match self.facts {
            Facts::Http { status } => Some(status),
            Facts::Download(t) | Facts::Upload(t) => t.status,
            _ => None,
        }
    }

    /// Its stage and reason as `stage/reason`, with what was received when
    /// the reason alone does not say (`http/http_unexpected_status (451)`);
    /// empty when it passed.
    pub fn failure_text(&self) -> String {
        match (self.failure, self.http_status()) {
            (None, _) => String::new(),
            (Some((stage, reason)), None) => format!("{}/{}", stage.as_str(), reason.as_str()),
            (Some((stage, reason)), Some(status)) => {
                format!("{}/{} ({status})", stage.as_str(), reason.as_str())
            }
        }
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

/// The clients a check runs with, built once per config load.
#[derive(Clone, Copy)]
pub struct Clients<'a> {
    /// One client per configured resolver (the config's order).
    pub resolvers: &'a [dns::DnsClient],
    /// For TLS and https checks: the client configuration.
    pub tls: Option<&'a Arc<rustls::ClientConfig>>,
    /// For QUIC checks: the client configuration.
    pub quic: Option<&'a quic::QuicClients>,
    /// For control handshakes with a neutral name: certificates not judged.
    pub control_tls: &'a Arc<rustls::ClientConfig>,
    /// For TLS checks with `ech: grease`: the GREASE-ECH handshake's
    /// configuration.
    pub ech_tls: Option<&'a Arc<rustls::ClientConfig>>,
}

/// The stage `check` enters first: where a check cut off before it could
/// start is reported.
pub fn first_stage(check: &Check) -> Stage {
    let named = |h: &Host| matches!(h, Host::Name(_));
    let url_named = |u: &url::Url| matches!(u.host(), Some(url::Host::Domain(_)));
    match check {
        Check::Dns(_) => Stage::Resolve,
        Check::Tcp(c) if named(&c.target.host) => Stage::Resolve,
        Check::Tls(c) if named(&c.target.host) => Stage::Resolve,
        Check::CallPort(c) if named(&c.target.host) => Stage::Resolve,
        Check::Quic(c) if named(&c.target.host) => Stage::Resolve,
        Check::Http(c) if url_named(&c.url) => Stage::Resolve,
        Check::Download(c) if url_named(&c.url) => Stage::Resolve,
        Check::Upload(c) if url_named(&c.url) => Stage::Resolve,
        Check::CallPort(c) if c.transport == crate::config::Transport::Udp => Stage::Stun,
        Check::Quic(_) => Stage::QuicHandshake,
        Check::Tcp(_)
        | Check::Tls(_)
        | Check::CallPort(_)
        | Check::Http(_)
        | Check::Download(_)
        | Check::Upload(_) => Stage::Connect,
    }
}

/// Runs `check` until it ends or `deadline` (capped by the check's own
/// timeout) passes; a check cut off is reported by [`Progress::cut_off`].
/// Targets resolve with `resolver`.
pub async fn run(
    check: &Check,
    clients: Clients<'_>,
    resolver: TargetResolver<'_>,
    deadline: Instant,
    progress: &Progress,
) -> Outcome {
    let own = Instant::now() + check.timeout();
    progress.set_full_time(own <= deadline);
    let deadline = deadline.min(own);
    let fut = async {
        match check {
            Check::Dns(c) => {
                progress.enter(Stage::Resolve);
                dns::probe(c, &clients.resolvers[c.resolver], resolver.allowed).await
            }
            Check::Tcp(c) => tcp::probe(c, resolver, progress).await,
            Check::Tls(c) => {
                // Built for every TLS check and module at load.
                let Some(cfg) = clients.tls else {
                    return Outcome::failed(Stage::TlsHandshake, Reason::UnknownFailure);
                };
                let tls_clients = tls::TlsClients {
                    main: cfg.clone(),
                    control: clients.control_tls.clone(),
                    ech: clients.ech_tls.cloned(),
                };
                tls::probe(c, tls_clients, resolver, progress).await
            }
            Check::CallPort(c) => call_port::probe(c, resolver, progress).await,
            Check::Http(c) => http::probe(c, clients.tls.cloned(), resolver, progress).await,
            Check::Download(c) => {
                download::probe(c, clients.tls.cloned(), resolver, progress).await
            }
            Check::Upload(c) => upload::probe(c, clients.tls.cloned(), resolver, progress).await,
            Check::Quic(c) => {
                // Built for every QUIC check and module at load.
                let Some(cfg) = clients.quic else {
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
            // A check that ended before its evidence handshakes is not cut
            // off: only its evidence is.
            if !progress.ended() {
                progress.mark_cut();
            }
            progress.cut_off()
        }
    }
}

/// Resolves the host of a TCP or TLS target with its service's resolver.
pub struct TargetResolver<'a> {
    resolver: &'a dns::DnsClient,
    allowed: &'a [ipnet::IpNet],
    family: IpFamily,
}

impl<'a> TargetResolver<'a> {
    /// Resolves with `resolver`, exempting `allowed` from the bogon rule,
    /// preferring addresses of `family`.
    pub fn new(
        resolver: &'a dns::DnsClient,
        allowed: &'a [ipnet::IpNet],
        family: IpFamily,
    ) -> TargetResolver<'a> {
        TargetResolver {
            resolver,
            allowed,
            family,
        }
    }

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
