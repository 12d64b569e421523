//! The web configuration (`--web.config.file`), in the format of
//! Prometheus' exporter-toolkit: TLS for the server, and basic-auth users
//! with bcrypt hashes. Its files are read when it is loaded.
//!
//! It does not serve anything: `crate::web` applies a [`WebConfig`].

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::decode::{ConfigError, OrderedMap, decode};
use super::validate::{At, Validator, read_certs};

/// The web configuration: TLS for the server, and basic-auth users.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Server certificate chain and key, when TLS is on.
    pub tls: Option<WebTls>,
    /// Users and their bcrypt hashes; empty: no authentication.
    pub users: Vec<(String, String)>,
}

/// The server's certificate chain and private key.
#[derive(Debug, Clone)]
pub struct WebTls {
    /// Certificate chain, leaf first.
    pub certs: Vec<CertificateDer<'static>>,
    /// Private key.
    pub key: Arc<PrivateKeyDer<'static>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<Spanned<RawWebTls>>,
    #[serde(default)]
    basic_auth_users: OrderedMap<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebTls {
    cert_file: String,
    key_file: String,
}

impl WebConfig {
    /// Reads and validates a web configuration file.
    pub fn load(path: &Path) -> Result<WebConfig, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
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
            let bcrypt = ["$2a$", "$2b$", "$2y$"];
            if !bcrypt.iter().any(|p| hash.value.starts_with(p)) {
                let at = At::new(Some(hash.referenced), format!("basic_auth_users.{user}"));
                return Err(v.err(
                    &at,
                    "not a bcrypt hash (it starts with $2a$, $2b$ or $2y$): store hashes, never passwords",
                ));
            }
            users.push((user, hash.value));
        }
        Ok(WebConfig { tls, users })
    }
}

impl Validator<'_> {
    /// The server's certificate chain and key.
    fn web_tls(&self, t: Spanned<RawWebTls>) -> Result<WebTls, ConfigError> {
        let at = At::new(Some(t.referenced), "tls_server_config".into());
        let cert_file = self.base.join(&t.value.cert_file);
        let key_file = self.base.join(&t.value.key_file);
        let certs = read_certs("cert_file", &cert_file).map_err(|e| self.err(&at, e))?;
        let key = PrivateKeyDer::from_pem_file(&key_file).map_err(|err| {
            let key_file = key_file.display();
            self.err(
                &at,
                format!("cannot read a private key from key_file {key_file}: {err}"),
            )
        })?;
        Ok(WebTls {
            certs,
            key: Arc::new(key),
        })
    }
}
