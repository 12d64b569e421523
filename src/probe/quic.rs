//! The QUIC prober: resolve, then time a QUIC handshake (quinn on rustls
//! with the ring provider) to the target over UDP.
//!
//! Each probe binds its own UDP socket (a quinn endpoint), so no state —
//! connection IDs, tokens, session tickets — is carried between scrapes.
//! The handshake's time runs from the first Initial packet to the
//! handshake's completion; the connection is then closed with code 0.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{BuildError, Facts, Outcome, Progress, TargetResolver};
use crate::config::{QuicCheck, Trust};
use crate::reason::{Reason, Stage, classify};

/// The client configuration of a QUIC check: TLS 1.3 only (QUIC has no
/// other), the check's roots and ALPN, no resumption, and an idle timeout
/// past the check's own so that ours is the one that fires.
pub fn client_config(
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

/// Resolves, then times the QUIC handshake.
pub async fn probe(
    check: &QuicCheck,
    config: &quinn::ClientConfig,
    resolver: TargetResolver<'_>,
    progress: &Progress,
) -> Outcome {
    let ip = match resolver.resolve(&check.target.host, progress).await {
        Ok(ip) => ip,
        Err(reason) => return Outcome::failed(Stage::Resolve, reason),
    };
    progress.enter(Stage::QuicHandshake);
    let local = match ip {
        IpAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        IpAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let endpoint = match quinn::Endpoint::client(local) {
        Ok(e) => e,
        Err(e) => {
            tracing::debug!(error = %e, "cannot bind a UDP socket");
            return Outcome::failed(Stage::QuicHandshake, classify(&e));
        }
    };
    // No SNI for a bare address: rustls sends none for an IP server name.
    let server_name = check.sni.clone().unwrap_or_else(|| ip.to_string());
    let start = Instant::now();
    let connecting = match endpoint.connect_with(
        config.clone(),
        SocketAddr::new(ip, check.target.port),
        &server_name,
    ) {
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
