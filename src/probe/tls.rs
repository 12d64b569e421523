//! The TLS prober: resolve, connect, then time the TLS handshake alone (the
//! connect is not included), and read the negotiated version and the leaf
//! certificate's notAfter.
//!
//! Client configurations are built once per config load ([`client_config`]):
//! trust is the compiled-in Mozilla roots, a `ca_file`, or none at all
//! (`insecure: true`, which still checks the handshake signature). ALPN
//! offers h2 and http/1.1, as a browser would.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, DigitallySignedStruct, ProtocolVersion, RootCertStore, SignatureScheme,
};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::{Facts, Outcome, Progress, TargetResolver, tcp};
use crate::config::{TlsCheck, Trust};
use crate::reason::{Stage, classify};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration for `trust`, without ALPN (for DoT/DoH, where
/// hickory sets its own). Session resumption is off: every handshake is a
/// full one, so each scrape verifies the certificate and times the same
/// work (a resumed handshake skips both).
pub fn base_config(trust: &Trust) -> Result<ClientConfig, rustls::Error> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let mut config = match trust {
        Trust::WebPki => {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::CaFile { roots, .. } => builder
            .with_root_certificates(roots.clone())
            .with_no_client_auth(),
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(
                provider().signature_verification_algorithms,
            )))
            .with_no_client_auth(),
    };
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// Which application protocols a client configuration offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alpn {
    /// h2 and http/1.1, as a browser offers (TLS checks).
    Browser,
    /// http/1.1 only, what HTTP checks speak.
    Http1,
}

/// The configuration TLS and HTTP checks use: [`base_config`] with `alpn`.
pub fn client_config(trust: &Trust, alpn: Alpn) -> Result<ClientConfig, rustls::Error> {
    let mut config = base_config(trust)?;
    config.alpn_protocols = match alpn {
        Alpn::Browser => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        Alpn::Http1 => vec![b"http/1.1".to_vec()],
    };
    Ok(config)
}

/// Resolves, connects, and times the TLS handshake.
pub async fn probe(
    check: &TlsCheck,
    config: Arc<ClientConfig>,
    resolver: TargetResolver<'_>,
    progress: &Progress,
) -> Outcome {
    let ip = match resolver.resolve(&check.target.host, progress).await {
        Ok(ip) => ip,
        Err(reason) => return Outcome::failed(Stage::Resolve, reason),
    };
    progress.enter(Stage::Connect);
    let stream = match tcp::connect(SocketAddr::new(ip, check.target.port)).await {
        Ok(s) => s,
        Err(e) => {
            let reason = classify(&e);
            tracing::debug!(target = %check.target.written, reason = reason.as_str(), error = %e, "connect failed");
            return Outcome::failed(Stage::Connect, reason);
        }
    };
    let server_name = match &check.sni {
        // Validated as a DNS name by the config loader.
        Some(sni) => match ServerName::try_from(sni.clone()) {
            Ok(n) => n,
            Err(_) => {
                return Outcome::failed(Stage::TlsHandshake, crate::reason::Reason::UnknownFailure);
            }
        },
        None => ServerName::IpAddress(ip.into()),
    };
    progress.enter(Stage::TlsHandshake);
    let start = Instant::now();
    match TlsConnector::from(config)
        .connect(server_name, stream)
        .await
    {
        Ok(tls) => {
            let took = start.elapsed();
            let conn = tls.get_ref().1;
            let version = match conn.protocol_version() {
                Some(ProtocolVersion::TLSv1_3) => "TLS 1.3",
                Some(ProtocolVersion::TLSv1_2) => "TLS 1.2",
                _ => "unknown",
            };
            let not_after = conn
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|leaf| not_after(leaf));
            Outcome::ok(took, Facts::Tls { not_after, version })
        }
        Err(e) => {
            let reason = classify(&e);
            tracing::debug!(target = %check.target.written, sni = ?check.sni, reason = reason.as_str(), error = %e, "tls handshake failed");
            Outcome::failed(Stage::TlsHandshake, reason)
        }
    }
}

/// The certificate's notAfter in seconds since the epoch.
fn not_after(cert: &CertificateDer<'_>) -> Option<i64> {
    x509_parser::parse_x509_certificate(cert)
        .ok()
        .map(|(_, c)| c.validity().not_after.timestamp())
}

/// `insecure: true`: any certificate is accepted, but the handshake
/// signature is still verified against it.
#[derive(Debug)]
struct AcceptAnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
