//! The TLS prober: resolve, connect, then time the TLS handshake alone (the
//! connect is not included) from the ClientHello handed to the kernel to the
//! kernel's arrival stamp of the server's last handshake bytes
//! ([`kernel::Stamped`]), and read the negotiated version and the leaf
//! certificate's notAfter.
//!
//! Client configurations are built once per config load ([`client_config`]):
//! trust is the compiled-in Mozilla roots, a `ca_file`, or none at all
//! (`insecure: true`, which still checks the handshake signature). ALPN
//! offers h2 and http/1.1, as a browser would.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, DigitallySignedStruct, ProtocolVersion, RootCertStore, SignatureScheme,
};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::{EchResult, Facts, Outcome, Progress, TargetResolver, kernel, tcp};
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
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    config_for(trust, builder().with_protocol_versions(&versions)?)
}

/// [`base_config`] with TLS 1.3 only, for QUIC.
pub fn tls13_config(trust: &Trust) -> Result<ClientConfig, rustls::Error> {
    config_for(
        trust,
        builder().with_protocol_versions(&[&rustls::version::TLS13])?,
    )
}

/// The configuration of a TLS check's GREASE-ECH handshake: [`client_config`]
/// offering a GREASE encrypted_client_hello extension (TLS 1.3 only, as ECH
/// is).
pub fn grease_ech_config(trust: &Trust, alpn: Alpn) -> Result<ClientConfig, rustls::Error> {
    let mut config = config_for(trust, builder().with_ech(super::ech::grease()?)?)?;
    config.alpn_protocols = alpn.protocols();
    Ok(config)
}

fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVersions> {
    ClientConfig::builder_with_provider(provider())
}

fn config_for(
    trust: &Trust,
    builder: rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>,
) -> Result<ClientConfig, rustls::Error> {
    let mut config = verifying(trust, builder).with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// `builder` verifying servers by `trust`.
fn verifying(
    trust: &Trust,
    builder: rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>,
) -> rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert> {
    match trust {
        Trust::WebPki => {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            builder.with_root_certificates(roots)
        }
        Trust::CaFile { roots, .. } => builder.with_root_certificates(roots.clone()),
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(
                provider().signature_verification_algorithms,
            ))),
    }
}

/// The configuration of push mode's HTTP client (`remote_write:`): TLS 1.3
/// or 1.2, `trust`, a client certificate when given, http/1.1, and
/// resumption on (it talks to one receiver again and again).
pub fn push_config(
    trust: &Trust,
    client: Option<(
        Vec<CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    )>,
) -> Result<ClientConfig, rustls::Error> {
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let builder = verifying(trust, builder().with_protocol_versions(&versions)?);
    let mut config = match client {
        Some((certs, key)) => builder.with_client_auth_cert(certs, key)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = Alpn::Http1.protocols();
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
    config.alpn_protocols = alpn.protocols();
    Ok(config)
}

impl Alpn {
    fn protocols(self) -> Vec<Vec<u8>> {
        match self {
            Alpn::Browser => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            Alpn::Http1 => vec![b"http/1.1".to_vec()],
        }
    }
}

/// The configurations a TLS check runs with.
#[derive(Clone)]
pub struct TlsClients {
    /// The check's own handshake.
    pub main: Arc<ClientConfig>,
    /// The neutral-SNI control handshake (certificate not judged).
    pub control: Arc<ClientConfig>,
    /// The GREASE-ECH handshake, for a check with `ech: grease`.
    pub ech: Option<Arc<ClientConfig>>,
}

/// Resolves, connects, and times the TLS handshake — at the first address
/// of the preferred family, or at each address with `all_addresses`.
pub async fn probe(
    check: &TlsCheck,
    clients: TlsClients,
    resolver: TargetResolver<'_>,
    progress: &Progress,
) -> Outcome {
    if let Some(max) = check.all_addresses {
        return super::each_address(&check.target.host, max, &resolver, progress, |ip, p| {
            handshake_at(check, clients.clone(), ip, p)
        })
        .await;
    }
    let ip = match resolver.resolve(&check.target.host, progress).await {
        Ok(ip) => ip,
        Err(reason) => return Outcome::failed(Stage::Resolve, reason),
    };
    handshake_at(check, clients, ip, progress).await
}

/// The check at one address, with the evidence handshakes beside it, each
/// on its own connection to the same address at the same time:
/// - with a `control_sni`, one with the neutral name (certificate not
///   validated; see [`control_handshake`] for when it counts as answered),
///   awaited only when the check failed;
/// - with `ech: grease`, one carrying a GREASE encrypted_client_hello
///   ([`grease_handshake`]), awaited only when the check passed.
///
/// Their results are kept in `progress`, as is the check's own outcome once
/// known, so that a check whose evidence is cut off by the deadline keeps
/// both.
async fn handshake_at(
    check: &TlsCheck,
    clients: TlsClients,
    ip: IpAddr,
    progress: &Progress,
) -> Outcome {
    let addr = SocketAddr::new(ip, check.target.port);
    let main = handshake(check, clients.main, ip, progress);
    let control = check.control_sni.as_ref().map(|neutral| {
        progress.control_started();
        async move {
            let ok = control_handshake(clients.control, neutral, addr).await;
            tracing::debug!(%addr, control_sni = %neutral, answered = ok, "control handshake");
            progress.set_control(ok);
        }
    });
    let ech = clients.ech.map(|config| {
        progress.ech_enter(Stage::Connect);
        async move {
            let result = grease_handshake(check, config, addr, progress).await;
            match result {
                EchResult::Completed => {
                    tracing::debug!(%addr, completed = true, "GREASE-ECH handshake");
                }
                EchResult::Failed(stage, reason) => tracing::debug!(
                    %addr,
                    completed = false,
                    stage = stage.as_str(),
                    reason = reason.as_str(),
                    "GREASE-ECH handshake"
                ),
            }
            progress.set_ech(result);
        }
    });
    let mut main = std::pin::pin!(main);
    let mut control = std::pin::pin!(futures_util::future::OptionFuture::from(control));
    let mut ech = std::pin::pin!(futures_util::future::OptionFuture::from(ech));
    let (mut control_done, mut ech_done) = (false, false);
    let mut outcome = loop {
        tokio::select! {
            o = &mut main => break o,
            _ = &mut control, if !control_done => control_done = true,
            _ = &mut ech, if !ech_done => ech_done = true,
        }
    };
    progress.finish(&outcome);
    if outcome.is_ok() {
        if !ech_done {
            ech.await;
        }
    } else if !control_done {
        control.await;
    }
    outcome.control = progress.control_result();
    outcome.ech = progress.ech_result();
    outcome
}

/// The handshake of the check at `addr` with a GREASE encrypted_client_hello
/// (its SNI and trust are the check's): how it went.
async fn grease_handshake(
    check: &TlsCheck,
    config: Arc<ClientConfig>,
    addr: SocketAddr,
    progress: &Progress,
) -> EchResult {
    let stream = match tcp::connect(addr).await {
        Ok(s) => s,
        Err(e) => return EchResult::Failed(Stage::Connect, classify(&e)),
    };
    progress.ech_enter(Stage::TlsHandshake);
    let Some(server_name) = server_name(check, addr.ip()) else {
        return EchResult::Failed(Stage::TlsHandshake, crate::reason::Reason::UnknownFailure);
    };
    match TlsConnector::from(config)
        .connect(server_name, stream)
        .await
    {
        Ok(_) => EchResult::Completed,
        Err(e) => EchResult::Failed(Stage::TlsHandshake, classify(&e)),
    }
}

/// The server name a check's handshake at `ip` sends and verifies: its SNI,
/// or the address itself (no SNI) for a bare IP target. `None` only for a
/// name rustls refuses, which the config loader has already ruled out.
fn server_name(check: &TlsCheck, ip: IpAddr) -> Option<ServerName<'static>> {
    match &check.sni {
        Some(sni) => ServerName::try_from(sni.clone()).ok(),
        None => Some(ServerName::IpAddress(ip.into())),
    }
}

/// A handshake with `name` at `addr` under `config`: its result (evidence
/// for the `dns_injected` verdict).
pub async fn handshake_result(
    config: Arc<ClientConfig>,
    name: &str,
    addr: SocketAddr,
) -> Result<(), crate::reason::Reason> {
    let stream = tcp::connect(addr).await.map_err(|e| classify(&e))?;
    let server_name = ServerName::try_from(name.to_string())
        .map_err(|_| crate::reason::Reason::UnknownFailure)?;
    TlsConnector::from(config)
        .connect(server_name, stream)
        .await
        .map(|_| ())
        .map_err(|e| classify(&e))
}

/// A handshake with `name` at `addr` whose certificate is not judged:
/// whether the server answered it. As in OONI, the path is open when the
/// server answered at all: the handshake completed, or the server sent a
/// TLS alert, or its ServerHello led to a failure (many CDNs answer a name
/// they do not serve with an alert, not a certificate). Silence, a reset,
/// EOF, or bytes that are not TLS say nothing of the kind.
async fn control_handshake(config: Arc<ClientConfig>, name: &str, addr: SocketAddr) -> bool {
    let Ok(stream) = tcp::connect(addr).await else {
        return false;
    };
    let Ok(server_name) = ServerName::try_from(name.to_string()) else {
        return false;
    };
    match TlsConnector::from(config)
        .connect(server_name, stream)
        .await
    {
        Ok(_) => true,
        Err(e) => server_answered(&e),
    }
}

/// Whether a failed handshake's error shows that the server spoke TLS: an
/// alert it sent, or a ServerHello that rustls then refused.
fn server_answered(e: &std::io::Error) -> bool {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return false;
    };
    matches!(
        tls,
        rustls::Error::AlertReceived(_)
            | rustls::Error::PeerIncompatible(_)
            | rustls::Error::PeerMisbehaved(_)
            | rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoApplicationProtocol
    )
}

/// Connects to `ip` and times the handshake.
async fn handshake(
    check: &TlsCheck,
    config: Arc<ClientConfig>,
    ip: IpAddr,
    progress: &Progress,
) -> Outcome {
    progress.enter(Stage::Connect);
    let stream = match tcp::connect(SocketAddr::new(ip, check.target.port)).await {
        Ok(s) => s,
        Err(e) => {
            let reason = classify(&e);
            tracing::debug!(%ip, reason = reason.as_str(), error = %e, "connect failed");
            return Outcome::failed(Stage::Connect, reason);
        }
    };
    let Some(server_name) = server_name(check, ip) else {
        return Outcome::failed(Stage::TlsHandshake, crate::reason::Reason::UnknownFailure);
    };
    progress.enter(Stage::TlsHandshake);
    let start = Instant::now();
    match TlsConnector::from(config)
        .connect(server_name, kernel::Stamped::new(stream))
        .await
    {
        Ok(tls) => {
            // ClientHello handed to the kernel -> the kernel's arrival stamp
            // of the server's last handshake bytes; our own clock (which also
            // counts building the ClientHello and checking the server's
            // flight) only if the kernel stamped nothing.
            let (stamped, conn) = tls.get_ref();
            let took = stamped.network_time().unwrap_or_else(|| start.elapsed());
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
            tracing::debug!(%ip, sni = check.sni.as_deref(), reason = reason.as_str(), error = %e, "tls handshake failed");
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
