//! The web configuration (`--web.config.file`), in the format of
//! Prometheus' exporter-toolkit: TLS for the server (with mutual TLS,
//! versions, cipher suites and curves), basic-auth users with bcrypt
//! hashes, and response headers. Its files are read when it is loaded.
//! A field exporter-toolkit has but that means nothing with rustls is
//! refused, naming the field and why.
//!
//! It does not serve anything: `crate::web` applies a [`WebConfig`].

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::SupportedKxGroup;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{CipherSuite, RootCertStore, SupportedProtocolVersion};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::decode::{ConfigError, OrderedMap, decode};
use super::validate::{At, Validator, read_certs};

/// The web configuration: TLS for the server, basic-auth users, headers.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Server certificate chain and key, when TLS is on.
    pub tls: Option<WebTls>,
    /// Users and their bcrypt hashes; empty: no authentication.
    pub users: Vec<(String, String)>,
    /// Headers added to every response (`http_server_config.headers`).
    pub headers: Vec<(String, String)>,
}

/// How the server speaks TLS.
#[derive(Debug, Clone)]
pub struct WebTls {
    /// Certificate chain, leaf first.
    pub certs: Vec<CertificateDer<'static>>,
    /// Private key.
    pub key: Arc<PrivateKeyDer<'static>>,
    /// Client certificates: asked for and verified, or not.
    pub client_auth: ClientAuth,
    /// The TLS versions offered (TLS 1.3 and 1.2 unless narrowed).
    pub versions: Vec<&'static SupportedProtocolVersion>,
    /// The TLS 1.2 cipher suites offered; `None`: rustls' defaults. (TLS
    /// 1.3's are not configurable, as in Go.)
    pub cipher_suites: Option<Vec<CipherSuite>>,
    /// The key exchange groups, in order of preference; `None`: rustls'.
    pub kx_groups: Option<Vec<&'static dyn SupportedKxGroup>>,
    /// A verified client certificate must name one of these (DNS name, IP
    /// address, e-mail or URI); empty: any.
    pub client_allowed_sans: Vec<String>,
}

/// `client_auth_type`, as far as rustls can do it.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// `NoClientCert` (the default).
    None,
    /// `VerifyClientCertIfGiven`: a certificate, if sent, must verify
    /// against these roots.
    IfGiven(Arc<RootCertStore>),
    /// `RequireAndVerifyClientCert`: a certificate that verifies against
    /// these roots is required.
    Required(Arc<RootCertStore>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<Spanned<RawWebTls>>,
    #[serde(default)]
    basic_auth_users: OrderedMap<Spanned<String>>,
    http_server_config: Option<Spanned<RawHttpServer>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebTls {
    cert_file: String,
    key_file: String,
    client_auth_type: Option<Spanned<String>>,
    client_ca_file: Option<Spanned<String>>,
    min_version: Option<Spanned<String>>,
    max_version: Option<Spanned<String>>,
    cipher_suites: Option<Vec<Spanned<String>>>,
    curve_preferences: Option<Vec<Spanned<String>>>,
    /// Deprecated in Go too; rustls prefers the server's order anyway.
    #[allow(dead_code)]
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawHttpServer {
    /// Refused unless false: this exporter serves HTTP/1.1 only.
    http2: Option<Spanned<bool>>,
    /// Added to every response.
    headers: OrderedMap<Spanned<String>>,
}

/// The headers exporter-toolkit lets a web config set.
const HEADERS: [&str; 5] = [
    "Content-Security-Policy",
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
];

/// Go's names of the TLS 1.2 suites rustls (with ring) offers.
const SUITES: [(&str, CipherSuite); 8] = [
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

impl WebConfig {
    /// Reads and validates a web configuration file.
    pub fn load(path: &Path) -> Result<WebConfig, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            what: "web config file",
            file: file.clone(),
            error,
        })?;
        let raw: RawWebConfig = decode(&text, &file)?;
        let base = path.parent().unwrap_or(Path::new(""));
        let v = Validator { file: &file, base };
        let tls = match raw.tls_server_config {
            None => None,
            Some(t) => Some(v.web_tls(t)?),
        };
        let mut users = Vec::new();
        for (user, hash) in raw.basic_auth_users.0 {
            let at = At::new(Some(hash.referenced), format!("basic_auth_users.{user}"));
            let bcrypt = ["$2a$", "$2b$", "$2y$"];
            if !bcrypt.iter().any(|p| hash.value.starts_with(p)) {
                return Err(v.err(
                    &at,
                    "not a bcrypt hash (it starts with $2a$, $2b$ or $2y$): store hashes, never passwords",
                ));
            }
            // A malformed hash would let nobody in, silently.
            if let Err(e) = hash.value.parse::<bcrypt::HashParts>() {
                return Err(v.err(&at, format!("malformed bcrypt hash: {e}")));
            }
            users.push((user, hash.value));
        }
        let headers = match raw.http_server_config {
            None => Vec::new(),
            Some(h) => v.http_server(h)?,
        };
        Ok(WebConfig {
            tls,
            users,
            headers,
        })
    }
}

impl Validator<'_> {
    /// The server's TLS settings.
    fn web_tls(&self, t: Spanned<RawWebTls>) -> Result<WebTls, ConfigError> {
        let at = At::new(Some(t.referenced), "tls_server_config".into());
        let t = t.value;
        let (certs, key) = self.key_pair(&at, &t.cert_file, &t.key_file)?;
        let client_auth = self.client_auth(&at, t.client_auth_type, t.client_ca_file)?;
        let versions = self.versions(&at, t.min_version, t.max_version)?;
        let cipher_suites = match t.cipher_suites {
            None => None,
            Some(names) => Some(self.cipher_suites(&at, names)?),
        };
        let kx_groups = match t.curve_preferences {
            None => None,
            Some(names) => Some(self.curves(&at, names)?),
        };
        let (client_allowed_sans, at_sans) = match t.client_allowed_sans {
            Some(s) => (
                s.value,
                at.key("client_allowed_sans").written_at(s.referenced),
            ),
            None => (Vec::new(), at.key("client_allowed_sans")),
        };
        if !client_allowed_sans.is_empty() && matches!(client_auth, ClientAuth::None) {
            return Err(self.err(
                &at_sans,
                "needs client certificates: set client_auth_type to RequireAndVerifyClientCert (or VerifyClientCertIfGiven) and client_ca_file",
            ));
        }
        Ok(WebTls {
            certs,
            key: Arc::new(key),
            client_auth,
            versions,
            cipher_suites,
            kx_groups,
            client_allowed_sans,
        })
    }

    /// The certificate chain of `cert_file` and the key of `key_file`,
    /// checked to be a pair, so that the error names the file and line.
    pub(super) fn key_pair(
        &self,
        at: &At,
        cert_file: &str,
        key_file: &str,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ConfigError> {
        let cert_file = self.base.join(cert_file);
        let key_file = self.base.join(key_file);
        let certs = read_certs("cert_file", &cert_file).map_err(|e| self.err(at, e))?;
        let key = PrivateKeyDer::from_pem_file(&key_file).map_err(|err| {
            let key_file = key_file.display();
            self.err(
                at,
                format!("cannot read a private key from key_file {key_file}: {err}"),
            )
        })?;
        let provider = rustls::crypto::ring::default_provider();
        let pair = rustls::sign::CertifiedKey::from_der(certs.clone(), key.clone_key(), &provider);
        match pair {
            Ok(_) => {}
            Err(rustls::Error::InconsistentKeys(_)) => {
                return Err(self.err(
                    at,
                    format!(
                        "key_file {} is not the key of the certificate in cert_file {}",
                        key_file.display(),
                        cert_file.display()
                    ),
                ));
            }
            Err(e) => {
                return Err(self.err(at, format!("cert_file and key_file cannot be used: {e}")));
            }
        }
        Ok((certs, key))
    }

    fn client_auth(
        &self,
        at: &At,
        kind: Option<Spanned<String>>,
        ca: Option<Spanned<String>>,
    ) -> Result<ClientAuth, ConfigError> {
        let (name, at_kind) = match &kind {
            Some(k) => (
                k.value.as_str(),
                at.key("client_auth_type").written_at(k.referenced),
            ),
            None => ("NoClientCert", at.key("client_auth_type")),
        };
        let roots = |ca: Option<Spanned<String>>| {
            let Some(ca) = ca else {
                return Err(self.err(
                    &at_kind,
                    format!("{name} needs client_ca_file: the CA certificates that client certificates must chain to"),
                ));
            };
            let at_ca = at.key("client_ca_file").written_at(ca.referenced);
            let path = self.base.join(&ca.value);
            let certs = read_certs("client_ca_file", &path).map_err(|e| self.err(&at_ca, e))?;
            let mut roots = RootCertStore::empty();
            for c in certs {
                roots.add(c).map_err(|err| {
                    self.err(
                        &at_ca,
                        format!("client_ca_file {}: bad certificate: {err}", path.display()),
                    )
                })?;
            }
            Ok(Arc::new(roots))
        };
        match name {
            "NoClientCert" => Ok(ClientAuth::None),
            "VerifyClientCertIfGiven" => Ok(ClientAuth::IfGiven(roots(ca)?)),
            "RequireAndVerifyClientCert" => Ok(ClientAuth::Required(roots(ca)?)),
            "RequestClientCert" | "RequireAnyClientCert" => Err(self.err(
                &at_kind,
                format!("{name} is not supported: rustls accepts a client certificate only after verifying it; use VerifyClientCertIfGiven or RequireAndVerifyClientCert with client_ca_file"),
            )),
            other => Err(self.err(
                &at_kind,
                format!("unknown client_auth_type {other:?}: expected NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"),
            )),
        }
    }

    fn versions(
        &self,
        at: &At,
        min: Option<Spanned<String>>,
        max: Option<Spanned<String>>,
    ) -> Result<Vec<&'static SupportedProtocolVersion>, ConfigError> {
        let one = |key: &str, v: &Option<Spanned<String>>, default: u8| match v {
            None => Ok(default),
            Some(s) => {
                let at = at.key(key).written_at(s.referenced);
                match s.value.as_str() {
                    "TLS12" => Ok(2),
                    "TLS13" => Ok(3),
                    "TLS10" | "TLS11" => Err(self.err(
                        &at,
                        format!(
                            "{} is not offered: rustls speaks TLS 1.2 and 1.3 only (TLS12, TLS13)",
                            s.value
                        ),
                    )),
                    other => Err(self.err(
                        &at,
                        format!("unknown TLS version {other:?}: expected TLS12 or TLS13"),
                    )),
                }
            }
        };
        let lo = one("min_version", &min, 2)?;
        let hi = one("max_version", &max, 3)?;
        if lo > hi {
            let at = match &max {
                Some(m) => at.key("max_version").written_at(m.referenced),
                None => at.key("max_version"),
            };
            return Err(self.err(&at, "max_version is below min_version"));
        }
        let mut versions = Vec::new();
        if hi == 3 {
            versions.push(&rustls::version::TLS13);
        }
        if lo == 2 {
            versions.push(&rustls::version::TLS12);
        }
        Ok(versions)
    }

    fn cipher_suites(
        &self,
        at: &At,
        names: Vec<Spanned<String>>,
    ) -> Result<Vec<CipherSuite>, ConfigError> {
        let mut out = Vec::new();
        for n in names {
            let Some((_, suite)) = SUITES.iter().find(|(go, _)| *go == n.value) else {
                let known: Vec<&str> = SUITES.iter().map(|(go, _)| *go).collect();
                return Err(self.err(
                    &at.key("cipher_suites").written_at(n.referenced),
                    format!("cipher suite {:?} is not offered: rustls has only these TLS 1.2 suites: {}", n.value, known.join(", ")),
                ));
            };
            out.push(*suite);
        }
        Ok(out)
    }

    fn curves(
        &self,
        at: &At,
        names: Vec<Spanned<String>>,
    ) -> Result<Vec<&'static dyn SupportedKxGroup>, ConfigError> {
        use rustls::crypto::ring::kx_group;
        let mut out = Vec::new();
        for n in names {
            let group = match n.value.as_str() {
                "X25519" => kx_group::X25519,
                "CurveP256" => kx_group::SECP256R1,
                "CurveP384" => kx_group::SECP384R1,
                other => {
                    return Err(self.err(
                        &at.key("curve_preferences").written_at(n.referenced),
                        format!("curve {other:?} is not offered: rustls (with ring) has X25519, CurveP256 and CurveP384"),
                    ));
                }
            };
            out.push(group);
        }
        Ok(out)
    }

    /// `http_server_config`: the headers (HTTP/2 is not served).
    fn http_server(&self, h: Spanned<RawHttpServer>) -> Result<Vec<(String, String)>, ConfigError> {
        let at = At::new(Some(h.referenced), "http_server_config".into());
        if let Some(h2) = &h.value.http2
            && h2.value
        {
            return Err(self.err(
                &at.key("http2").written_at(h2.referenced),
                "this exporter serves HTTP/1.1 only: leave http2 out or set it to false",
            ));
        }
        let mut out = Vec::new();
        for (name, value) in h.value.headers.0 {
            let at = at.key("headers").key(&name).written_at(value.referenced);
            let Some(canonical) = HEADERS.iter().find(|k| k.eq_ignore_ascii_case(&name)) else {
                return Err(self.err(
                    &at,
                    format!(
                        "header {name:?} cannot be set: only {} can",
                        HEADERS.join(", ")
                    ),
                ));
            };
            if value.value.is_empty()
                || !value
                    .value
                    .bytes()
                    .all(|b| b == b' ' || b.is_ascii_graphic())
            {
                return Err(self.err(&at, "a header value is printable ASCII, not empty"));
            }
            out.push(((*canonical).to_string(), value.value));
        }
        Ok(out)
    }
}
