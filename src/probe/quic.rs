//! The QUIC prober: resolve, then time a QUIC handshake (quinn on rustls
//! with the ring provider) to the target over UDP — and, with a
//! `control_sni`, a second handshake with the neutral name to the same
//! address at the same time.
//!
//! Each handshake binds its own UDP socket (a quinn endpoint), so no state —
//! connection IDs, tokens, session tickets — is carried between scrapes or
//! between the two handshakes. The handshake's time runs from the first
//! Initial packet to the handshake's completion; the connection is then
//! closed with code 0.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{BuildError, Facts, Outcome, Progress, TargetResolver};
use crate::config::{QuicCheck, Trust};
use crate::reason::{Reason, Stage, classify};

/// The client configurations of a QUIC check: its own, and for a check with
/// a `control_sni` the control's (same ALPN, certificate not judged).
#[derive(Debug, Clone)]
pub struct QuicClients {
    /// The check's handshake.
    pub main: quinn::ClientConfig,
    /// The neutral-SNI handshake, if the check has a control.
    pub control: Option<quinn::ClientConfig>,
}

impl QuicClients {
    /// The configurations of a check (or module) with `trust`, `alpn` and
    /// `timeout`; with `control`, the control's too.
    pub fn new(
        trust: &Trust,
        alpn: &[String],
        timeout: Duration,
        control: bool,
    ) -> Result<QuicClients, BuildError> {
        Ok(QuicClients {
            main: client_config(trust, alpn, timeout)?,
            control: if control {
                Some(client_config(&Trust::Insecure, alpn, timeout)?)
            } else {
                None
            },
        })
    }
}

/// The client configuration of a QUIC handshake: TLS 1.3 only (QUIC has no
/// other), the given roots and ALPN, no resumption, and an idle timeout
/// past the check's own so that ours is the one that fires.
fn client_config(
    trust: &Trust,
    alpn: &[String],
    timeout: Duration,
) -> Result<quinn::ClientConfig, BuildError> {
    let mut tls = super::tls::tls13_config(trust)?;
    tls.alpn_protocols = alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(Arc::new(tls))
        .map_err(|e| BuildError::Quic(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(timeout + Duration::from_secs(1))
        .map_err(|e| BuildError::Quic(e.to_string()))?;
    transport.max_idle_timeout(Some(idle));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// Resolves, then times the QUIC handshake; with a `control_sni`, makes
/// the control handshake beside it (answered: it completed, or the server
/// closed it or sent Version Negotiation). The control's result is kept in
/// `progress`, so that even a check cut off by its deadline carries it; it
/// is awaited only when the check failed.
pub async fn probe(
    check: &QuicCheck,
    clients: &QuicClients,
    resolver: TargetResolver<'_>,
    progress: &Progress,
) -> Outcome {
    let ip = match resolver.resolve(&check.target.host, progress).await {
        Ok(ip) => ip,
        Err(reason) => return Outcome::failed(Stage::Resolve, reason),
    };
    progress.enter(Stage::QuicHandshake);
    let addr = SocketAddr::new(ip, check.target.port);
    let main = handshake(check, &clients.main, addr);
    let (Some(neutral), Some(config)) = (&check.control_sni, &clients.control) else {
        return main.await;
    };
    progress.control_started();
    let ctl = async {
        let ok = control_handshake(config, neutral, addr).await;
        tracing::debug!(%addr, control_sni = %neutral, answered = ok, "quic control handshake");
        progress.set_control(ok);
    };
    let mut main = std::pin::pin!(main);
    let mut ctl = std::pin::pin!(ctl);
    let mut outcome = tokio::select! {
        o = &mut main => {
            if !o.is_ok() {
                ctl.await;
            }
            o
        }
        () = &mut ctl => main.await,
    };
    outcome.control = progress.control_result();
    outcome
}

/// A client endpoint on a fresh UDP socket of `addr`'s family.
fn endpoint_for(addr: SocketAddr) -> std::io::Result<quinn::Endpoint> {
    let local = match addr.ip() {
        IpAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        IpAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    quinn::Endpoint::client(local)
}

/// Times the check's handshake at `addr`.
async fn handshake(check: &QuicCheck, config: &quinn::ClientConfig, addr: SocketAddr) -> Outcome {
    let endpoint = match endpoint_for(addr) {
        Ok(e) => e,
        Err(e) => {
            tracing::debug!(error = %e, "cannot bind a UDP socket");
            return Outcome::failed(Stage::QuicHandshake, classify(&e));
        }
    };
    // No SNI for a bare address: rustls sends none for an IP server name.
    let server_name = check.sni.clone().unwrap_or_else(|| addr.ip().to_string());
    let start = Instant::now();
    let connecting = match endpoint.connect_with(config.clone(), addr, &server_name) {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "quic connect refused locally");
            return Outcome::failed(Stage::QuicHandshake, Reason::UnknownFailure);
        }
    };
    match connecting.await {
        Ok(conn) => {
            let took = start.elapsed();
            conn.close(0u32.into(), b"");
            Outcome::ok(took, Facts::None)
        }
        Err(e) => {
            let reason = classify(&e);
            tracing::debug!(sni = check.sni.as_deref(), reason = reason.as_str(), error = %e, "quic handshake failed");
            Outcome::failed(Stage::QuicHandshake, reason)
        }
    }
}

/// A QUIC handshake with `name` at `addr` whose certificate is not judged:
/// whether the server answered it. As for TLS over TCP, the path is open
/// when the server answered at all: the handshake completed, or the server
/// closed the connection (a CONNECTION_CLOSE, which carries a TLS alert as
/// a crypto error), sent Version Negotiation, or sent packets that quinn
/// then refused. Silence (a timeout) says nothing of the kind.
async fn control_handshake(config: &quinn::ClientConfig, name: &str, addr: SocketAddr) -> bool {
    let Ok(endpoint) = endpoint_for(addr) else {
        return false;
    };
    let Ok(connecting) = endpoint.connect_with(config.clone(), addr, name) else {
        return false;
    };
    match connecting.await {
        Ok(conn) => {
            conn.close(0u32.into(), b"");
            true
        }
        Err(e) => server_answered(&e),
    }
}

/// Whether a failed QUIC handshake's error shows the server spoke QUIC.
fn server_answered(e: &quinn::ConnectionError) -> bool {
    use quinn::ConnectionError as E;
    matches!(
        e,
        E::ConnectionClosed(_)
            | E::ApplicationClosed(_)
            | E::VersionMismatch
            | E::TransportError(_)
    )
}
