//! The test PKI: a CA that issues server certificates (good, expired, or
//! from a CA the client does not trust) and rustls server configs built
//! from them. It starts no server; the TLS, QUIC, DNS and HTTP servers take
//! their configs from here.

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A test CA, written to `ca_pem` for a check's `ca_file`, that issues
/// server certificates; and an unrelated CA for `ssl_unknown_authority`.
pub struct Pki {
    /// The temporary directory holding `ca.pem` (and a test's config).
    pub dir: tempfile::TempDir,
    /// The test CA's certificate, PEM.
    pub ca_pem: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
    other: CertifiedIssuer<'static, KeyPair>,
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

/// How a server certificate should be made.
#[derive(Clone, Copy, PartialEq)]
pub enum CertKind {
    /// Valid, issued by the test CA.
    Good,
    /// Issued by a CA the client does not trust.
    UnknownCa,
    /// Expired (2021).
    Expired,
}

/// A certificate request for `names`: a DNS name or an IP address each.
fn params_for(names: &[&str]) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    for n in names {
        p.subject_alt_names.push(match n.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName((*n).try_into().unwrap()),
        });
    }
    p
}

impl Pki {
    /// Two fresh CAs in a fresh temporary directory; the trusted one's
    /// certificate is written to `ca_pem`.
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = new_ca("reachability test CA");
        let other = new_ca("untrusted CA");
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, ca.pem()).unwrap();
        Pki {
            dir,
            ca_pem,
            ca,
            other,
        }
    }

    /// A rustls server config (TLS 1.2 and 1.3, rustls' defaults: a session
    /// cache, and two TLS 1.3 tickets per handshake) with a certificate for
    /// `names` (DNS names or IP addresses) made as `kind` says, offering
    /// `alpn`.
    pub fn server_config(
        &self,
        names: &[&str],
        kind: CertKind,
        alpn: &[&[u8]],
    ) -> Arc<ServerConfig> {
        Arc::new(self.make(names, kind, alpn, rustls::DEFAULT_VERSIONS))
    }

    /// A server config that, as many CDNs do, answers a ClientHello whose
    /// SNI is not one of `names` with a fatal alert instead of a
    /// certificate (one good certificate covers `names`).
    pub fn alerting_on_unknown_names(&self, names: &[&str]) -> Arc<ServerConfig> {
        let mut p = params_for(names);
        p.not_after = rcgen::date_time_ymd(2099, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.ca).unwrap();
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = rustls::crypto::ring::default_provider();
        let mut resolver = rustls::server::ResolvesServerCertUsingSni::new();
        for n in names {
            let ck = rustls::sign::CertifiedKey::from_der(
                vec![cert.der().clone()],
                der.clone_key(),
                &provider,
            )
            .unwrap();
            resolver.add(n, ck).unwrap();
        }
        Arc::new(
            ServerConfig::builder_with_provider(Arc::new(provider))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(resolver)),
        )
    }

    /// A certificate for `names` issued by the test CA, and its key, as PEM
    /// (for the exporter's own TLS listener).
    pub fn server_pem(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = params_for(names).signed_by(&key, &self.ca).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A TLS client trusting the test CA (for tests that talk to the
    /// exporter's TLS listener).
    pub fn client(&self) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(cfg))
    }

    /// A TLS client of the exporter's own listener: trusting the test CA,
    /// speaking `versions`, and presenting a client certificate for `name`
    /// (from the test CA, or from the untrusted one when `trusted` is
    /// false) when `name` is given.
    pub fn client_with(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        name: Option<&str>,
        trusted: bool,
    ) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
        let cfg = match name {
            None => builder.with_no_client_auth(),
            Some(n) => {
                let key = KeyPair::generate().unwrap();
                let issuer = if trusted { &self.ca } else { &self.other };
                let cert = params_for(&[n]).signed_by(&key, issuer).unwrap();
                let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
                builder
                    .with_client_auth_cert(vec![cert.der().clone()], key)
                    .unwrap()
            }
        };
        tokio_rustls::TlsConnector::from(Arc::new(cfg))
    }

    /// A server config for `names` that speaks TLS 1.2 only, with rustls'
    /// session cache: a client that kept the session ID would resume.
    pub fn tls12_only(&self, names: &[&str]) -> Arc<ServerConfig> {
        Arc::new(self.make(names, CertKind::Good, &[], &[&rustls::version::TLS12]))
    }

    /// A server config for `names` that speaks TLS 1.3 only and issues two
    /// stateless session tickets (as nginx does) after every handshake,
    /// offering `alpn`: a client that kept a ticket would resume.
    pub fn tls13_with_tickets(&self, names: &[&str], alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let mut cfg = self.make(names, CertKind::Good, alpn, &[&rustls::version::TLS13]);
        cfg.ticketer = rustls::crypto::ring::Ticketer::new().unwrap();
        cfg.send_tls13_tickets = 2;
        Arc::new(cfg)
    }

    fn make(
        &self,
        names: &[&str],
        kind: CertKind,
        alpn: &[&[u8]],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> ServerConfig {
        let mut p = params_for(names);
        if kind == CertKind::Expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        } else {
            p.not_after = rcgen::date_time_ymd(2099, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let issuer = if kind == CertKind::UnknownCa {
            &self.other
        } else {
            &self.ca
        };
        let cert = p.signed_by(&key, issuer).unwrap();
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut cfg =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(versions)
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap();
        cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        cfg
    }

    /// The notAfter (epoch seconds) of every valid test certificate.
    pub const NOT_AFTER: i64 = 4_070_908_800; // 2099-01-01T00:00:00Z
}
