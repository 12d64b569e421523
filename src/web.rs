//! Securing the exporter's own endpoints (`--web.config.file`): TLS and
//! HTTP basic auth with bcrypt hashes, mutual TLS and response headers, as
//! Prometheus' exporter-toolkit does.
//!
//! [`basic_auth`] guards every route but `/-/healthy` and `/-/ready` (left
//! open for Kubernetes probes). bcrypt is slow on purpose, so a verification
//! runs off the async threads and a success is remembered (by a SHA-256 of
//! the credentials, never the password itself) so that scrapes do not pay
//! for it each time. [`TlsListener`] does TLS handshakes in their own tasks,
//! so a slow or silent client cannot hold up the others.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use rustls::DigitallySignedStruct;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};

use crate::config::{ClientAuth, WebConfig, WebTls};

/// Remembered successful logins at most (then the memory starts afresh).
const CACHE_LIMIT: usize = 256;
/// Time a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Users allowed in, and the logins already verified.
#[derive(Debug)]
pub struct Auth {
    users: HashMap<String, String>,
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl Auth {
    /// Basic auth for `config`'s users; `None` when there are none.
    pub fn new(config: &WebConfig) -> Option<Arc<Auth>> {
        (!config.users.is_empty()).then(|| {
            Arc::new(Auth {
                users: config.users.iter().cloned().collect(),
                verified: Mutex::new(HashSet::new()),
            })
        })
    }

    /// Whether the `Authorization` header value names a user whose
    /// password matches.
    async fn admits(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let Some(hash) = self.users.get(&user).cloned() else {
            return false;
        };
        let key = fingerprint(&user, &password);
        // Poisoning needs a panic while holding this lock; none can occur.
        if self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&key)
        {
            return true;
        }
        let ok =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        if ok {
            let mut v = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if v.len() >= CACHE_LIMIT {
                v.clear();
            }
            v.insert(key);
        }
        ok
    }
}

fn fingerprint(user: &str, password: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(user.as_bytes());
    ctx.update(&[0]);
    ctx.update(password.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(v: &HeaderValue) -> Option<(String, String)> {
    let b64 = v.to_str().ok()?.strip_prefix("Basic ")?.trim();
    let raw = decode_base64(b64)?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Standard base64 with padding (RFC 4648), as HTTP basic auth uses.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = s.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let v = if i >= 4 - pad { 0 } else { val(*c)? };
            n = (n << 6) | v;
        }
        let b = n.to_be_bytes();
        out.extend_from_slice(&b[1..4 - pad]);
    }
    Some(out)
}

/// Middleware: 401 with a `WWW-Authenticate` challenge unless the request
/// carries a user's valid credentials.
pub async fn basic_auth(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    if auth.admits(req.headers().get(header::AUTHORIZATION)).await {
        return next.run(req).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"reachability_exporter\"",
        )],
        "unauthorized\n",
    )
        .into_response()
}

/// The rustls server configuration for `tls`: its versions, TLS 1.2
/// cipher suites and key exchange groups, and client certificates
/// verified against its client CA (and their names against
/// `client_allowed_sans`) when it asks for them.
pub fn server_config(tls: &WebTls) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(suites) = &tls.cipher_suites {
        provider
            .cipher_suites
            .retain(|s| s.version() == &rustls::version::TLS13 || suites.contains(&s.suite()));
    }
    if let Some(groups) = &tls.kx_groups {
        provider.kx_groups = groups.clone();
    }
    let provider = Arc::new(provider);
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&tls.versions)?;
    let builder = match &tls.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::IfGiven(roots) | ClientAuth::Required(roots) => {
            let mut v = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider);
            if matches!(tls.client_auth, ClientAuth::IfGiven(_)) {
                v = v.allow_unauthenticated();
            }
            let inner = v
                .build()
                .map_err(|e| rustls::Error::General(format!("client_ca_file: {e}")))?;
            builder.with_client_cert_verifier(Arc::new(AllowedSans {
                inner,
                allowed: tls.client_allowed_sans.clone(),
            }))
        }
    };
    let mut cfg = builder.with_single_cert(tls.certs.clone(), tls.key.clone_key())?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Verifies a client certificate as `inner` does, then (when `allowed` is
/// not empty) that it names one of `allowed` among its subject alternative
/// names, as exporter-toolkit's `client_allowed_sans`.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl AllowedSans {
    fn admits(&self, der: &CertificateDer<'_>) -> bool {
        use x509_parser::extensions::GeneralName;
        if self.allowed.is_empty() {
            return true;
        }
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
            return false;
        };
        let Ok(Some(san)) = cert.subject_alternative_name() else {
            return false;
        };
        san.value.general_names.iter().any(|name| {
            self.allowed.iter().any(|a| match name {
                GeneralName::DNSName(d) => d.eq_ignore_ascii_case(a),
                GeneralName::RFC822Name(e) | GeneralName::URI(e) => e == a,
                GeneralName::IPAddress(bytes) => {
                    a.parse::<std::net::IpAddr>().is_ok_and(|ip| match ip {
                        std::net::IpAddr::V4(v4) => v4.octets().as_slice() == *bytes,
                        std::net::IpAddr::V6(v6) => v6.octets().as_slice() == *bytes,
                    })
                }
                _ => false,
            })
        })
    }
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if self.admits(end_entity) {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Adds the web config's `http_server_config.headers` to every response,
/// replacing ours of the same name.
pub async fn add_headers(
    State(headers): State<Arc<Vec<(header::HeaderName, HeaderValue)>>>,
    req: Request,
    next: Next,
) -> Response {
    let mut res = next.run(req).await;
    for (name, value) in headers.iter() {
        res.headers_mut().insert(name.clone(), value.clone());
    }
    res
}

/// A listener that yields TLS connections whose handshake completed.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `tcp`, handshaking each connection in its own task.
    pub fn new(
        tcp: TcpListener,
        config: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = tcp.accept().await else {
                    // Out of file descriptors, say: wait rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake with a client failed")
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake with a client timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept task never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_basic_credentials() {
        assert_eq!(decode_base64("YWxpY2U6czNjcjN0").unwrap(), b"alice:s3cr3t");
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert_eq!(decode_base64("YWI=").unwrap(), b"ab");
        assert!(decode_base64("YQ=").is_none());
        assert!(decode_base64("Y!==").is_none());
        let v = HeaderValue::from_static("Basic YWxpY2U6czNjcjN0");
        assert_eq!(parse_basic(&v), Some(("alice".into(), "s3cr3t".into())));
        assert_eq!(parse_basic(&HeaderValue::from_static("Bearer x")), None);
    }
}
