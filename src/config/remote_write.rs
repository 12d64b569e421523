//! `remote_write:`: push mode. Every `every` the exporter runs a round and
//! sends the series `/metrics` would show to a Prometheus remote-write
//! receiver ([`crate::push`]).

use std::path::PathBuf;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::decode::OrderedMap;
use super::validate::{At, Validator};
use super::values::{Dur, HttpUrl, expand_env};
use super::{ConfigError, Trust};

/// The default time between two pushes.
pub const DEFAULT_PUSH_EVERY: Duration = Duration::from_secs(60);
/// The default bound of the queue, in samples.
pub const DEFAULT_QUEUE_SAMPLES: usize = 500_000;
/// The default age past which a queued push is dropped.
pub const DEFAULT_QUEUE_AGE: Duration = Duration::from_secs(3600);

/// Headers the protocol sets itself, which `headers:` may not set.
const PROTOCOL_HEADERS: [&str; 6] = [
    "content-type",
    "content-encoding",
    "content-length",
    "host",
    "user-agent",
    "x-prometheus-remote-write-version",
];

/// Where and how to push.
#[derive(Debug, Clone)]
pub struct RemoteWrite {
    /// The receiver's URL (`…/api/v1/write`).
    pub url: url::Url,
    /// A round, and a push, this often.
    pub every: Duration,
    /// The `job` label of every series sent.
    pub job: String,
    /// The `instance` label of every series sent.
    pub instance: String,
    /// The `Authorization` header's value, if any (secret: never logged).
    pub authorization: Option<Secret>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Whose certificates an https receiver may present.
    pub trust: Trust,
    /// A client certificate and its key, for a receiver that asks.
    pub client_cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDerBox)>,
    /// Samples held at most while the receiver cannot take them.
    pub max_samples: usize,
    /// A push older than this is dropped rather than sent.
    pub max_age: Duration,
}

/// A value that is not printed by `Debug` (a password, a token).
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// A private key that can be cloned with its config (`PrivateKeyDer` is
/// not `Clone`) and is not printed.
pub struct PrivateKeyDerBox(pub PrivateKeyDer<'static>);

impl Clone for PrivateKeyDerBox {
    fn clone(&self) -> Self {
        PrivateKeyDerBox(self.0.clone_key())
    }
}

impl std::fmt::Debug for PrivateKeyDerBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<private key>")
    }
}

/// `remote_write:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemoteWrite {
    url: Spanned<String>,
    every: Option<Spanned<Dur>>,
    job: Option<Spanned<String>>,
    instance: Option<Spanned<String>>,
    basic_auth: Option<Spanned<RawBasicAuth>>,
    bearer_token_file: Option<Spanned<String>>,
    #[serde(default)]
    headers: OrderedMap<Spanned<String>>,
    tls: Option<Spanned<RawTls>>,
    queue: Option<RawQueue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBasicAuth {
    username: String,
    password: Option<String>,
    password_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca_file: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    #[serde(default)]
    insecure: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    max_samples: Option<Spanned<usize>>,
    max_age: Option<Dur>,
}

/// The host's name, for the default `instance`.
fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    match name.trim() {
        "" => "localhost".to_string(),
        n => n.to_string(),
    }
}

impl Validator<'_> {
    /// The `remote_write:` block.
    pub(super) fn remote_write(
        &self,
        raw: Spanned<RawRemoteWrite>,
    ) -> Result<RemoteWrite, ConfigError> {
        let at = At::new(Some(raw.referenced), "remote_write".into());
        let raw = raw.value;
        let url_at = at.key("url").written_at(raw.url.referenced);
        let url = HttpUrl::parse(&raw.url.value)
            .map_err(|e| self.err(&url_at, e))?
            .url;
        // Credentials in the URL would be logged with it, and are not
        // sent: they belong in basic_auth.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(self.err(
                &url_at,
                "credentials in the URL are not used (and would be logged): put them in basic_auth",
            ));
        }
        let every = match raw.every {
            Some(e) if e.value.0 < Duration::from_secs(1) => {
                let at = at.key("every").written_at(e.referenced);
                return Err(self.err(&at, "must be at least 1s"));
            }
            e => e.map_or(DEFAULT_PUSH_EVERY, |e| e.value.0),
        };
        let label = |key: &str, v: Option<Spanned<String>>, default: String| match v {
            None => Ok(default),
            Some(v) => {
                let at = at.key(key).written_at(v.referenced);
                match expand_env(&v.value).map_err(|e| self.err(&at, e))? {
                    s if s.is_empty() => Err(self.err(&at, "must not be empty")),
                    s => Ok(s),
                }
            }
        };
        let job = label("job", raw.job, "reachability".to_string())?;
        let instance = label("instance", raw.instance, hostname())?;
        let authorization = self.authorization(&at, raw.basic_auth, raw.bearer_token_file)?;
        let mut headers = Vec::new();
        for (name, value) in raw.headers.0 {
            let hat = at.key("headers").key(&name).written_at(value.referenced);
            let lower = name.to_ascii_lowercase();
            if PROTOCOL_HEADERS.contains(&lower.as_str()) {
                return Err(self.err(&hat, format!("{name} is set by the remote-write protocol")));
            }
            if lower == "authorization" && authorization.is_some() {
                return Err(self.err(
                    &hat,
                    "Authorization is set by basic_auth or bearer_token_file",
                ));
            }
            let valid_name = http::HeaderName::from_bytes(name.as_bytes()).is_ok();
            let valid_value = http::HeaderValue::from_str(&value.value).is_ok();
            if !valid_name || !valid_value {
                return Err(self.err(&hat, "not a valid HTTP header"));
            }
            headers.push((name, value.value));
        }
        let (trust, client_cert) = match raw.tls {
            None => (Trust::WebPki, None),
            Some(t) => {
                let tat = At::new(Some(t.referenced), "remote_write.tls".into());
                let t = t.value;
                let trust = self.trust(&tat, t.insecure, t.ca_file.as_deref())?;
                let pair = match (t.cert_file, t.key_file) {
                    (None, None) => None,
                    (Some(c), Some(k)) => {
                        let (certs, key) = self.key_pair(&tat, &c, &k)?;
                        Some((certs, PrivateKeyDerBox(key)))
                    }
                    _ => return Err(self.err(&tat, "cert_file and key_file go together")),
                };
                (trust, pair)
            }
        };
        let (mut max_samples, mut max_age) = (DEFAULT_QUEUE_SAMPLES, DEFAULT_QUEUE_AGE);
        if let Some(q) = raw.queue {
            if let Some(m) = q.max_samples {
                if m.value == 0 {
                    let at = at.key("queue").key("max_samples").written_at(m.referenced);
                    return Err(self.err(&at, "must be at least 1"));
                }
                max_samples = m.value;
            }
            if let Some(a) = q.max_age {
                max_age = a.0;
            }
        }
        Ok(RemoteWrite {
            url,
            every,
            job,
            instance,
            authorization,
            headers,
            trust,
            client_cert,
            max_samples,
            max_age,
        })
    }

    /// The `Authorization` header of `basic_auth` or `bearer_token_file`
    /// (not both), its secrets read now.
    fn authorization(
        &self,
        at: &At,
        basic: Option<Spanned<RawBasicAuth>>,
        bearer: Option<Spanned<String>>,
    ) -> Result<Option<Secret>, ConfigError> {
        let read = |at: &At, key: &str, f: &str| {
            let path: PathBuf = self.base.join(f);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| self.err(at, format!("cannot read {key} {}: {e}", path.display())))?;
            Ok::<_, ConfigError>(text.trim_end_matches(['\r', '\n']).to_string())
        };
        match (basic, bearer) {
            (Some(_), Some(b)) => Err(self.err(
                &at.key("bearer_token_file").written_at(b.referenced),
                "basic_auth and bearer_token_file exclude each other",
            )),
            (None, None) => Ok(None),
            (None, Some(b)) => {
                let bat = at.key("bearer_token_file").written_at(b.referenced);
                let token = read(&bat, "bearer_token_file", &b.value)?;
                Ok(Some(Secret(format!("Bearer {token}"))))
            }
            (Some(b), None) => {
                let bat = at.key("basic_auth").written_at(b.referenced);
                let b = b.value;
                let password = match (b.password, b.password_file) {
                    (Some(p), None) => expand_env(&p).map_err(|e| self.err(&bat, e))?,
                    (None, Some(f)) => read(&bat, "password_file", &f)?,
                    (Some(_), Some(_)) => {
                        return Err(self.err(
                            &bat,
                            "password and password_file exclude each other: give one",
                        ));
                    }
                    (None, None) => {
                        return Err(self.err(&bat, "needs one of password and password_file"));
                    }
                };
                let user_pass = format!("{}:{password}", b.username);
                let coded = data_encoding::BASE64.encode(user_pass.as_bytes());
                Ok(Some(Secret(format!("Basic {coded}"))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    /// Parses `block` as the `remote_write:` of a one-check config read
    /// from `dir`.
    fn push(dir: &Path, block: &str) -> Result<RemoteWrite, String> {
        let text = format!("remote_write:\n{block}\nservices:\n  s:\n    tcp: [\"127.0.0.1:9\"]\n");
        Config::parse(&text, &dir.join("t.yaml"))
            .map(|c| c.remote_write.expect("remote_write set"))
            .map_err(|e| e.to_string())
    }

    fn refused(dir: &Path, block: &str, want: &str) {
        match push(dir, block) {
            Err(e) => assert!(e.contains(want), "{block}: {e}"),
            Ok(rw) => panic!("{block}: accepted as {rw:?}"),
        }
    }

    const URL: &str = "  url: \"http://127.0.0.1:9/api/v1/write\"";

    #[test]
    fn defaults_and_what_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let rw = push(dir.path(), URL).unwrap();
        assert_eq!(rw.every, DEFAULT_PUSH_EVERY);
        assert_eq!(rw.job, "reachability");
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let host = match host.trim() {
            "" => "localhost",
            h => h,
        };
        assert_eq!(rw.instance, host);
        assert!(rw.authorization.is_none() && rw.headers.is_empty());
        assert!(matches!(rw.trust, Trust::WebPki) && rw.client_cert.is_none());
        assert_eq!(
            (rw.max_samples, rw.max_age),
            (DEFAULT_QUEUE_SAMPLES, DEFAULT_QUEUE_AGE)
        );

        let rw = push(
            dir.path(),
            &format!("{URL}\n  every: 1s\n  job: j\n  instance: i\n  queue: {{ max_samples: 200, max_age: 10m }}"),
        )
        .unwrap();
        assert_eq!(rw.every, Duration::from_secs(1));
        assert_eq!((rw.job.as_str(), rw.instance.as_str()), ("j", "i"));
        assert_eq!(
            (rw.max_samples, rw.max_age),
            (200, Duration::from_secs(600))
        );
    }

    #[test]
    fn bounds_and_empty_labels_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        refused(
            d,
            &format!("{URL}\n  every: 999ms"),
            "remote_write.every: must be at least 1s",
        );
        refused(
            d,
            &format!("{URL}\n  job: \"\""),
            "remote_write.job: must not be empty",
        );
        refused(
            d,
            &format!("{URL}\n  instance: \"\""),
            "remote_write.instance: must not be empty",
        );
        refused(
            d,
            &format!("{URL}\n  queue: {{ max_samples: 0 }}"),
            "remote_write.queue.max_samples: must be at least 1",
        );
        // A user name alone is a credential too.
        refused(
            d,
            "  url: \"http://user@127.0.0.1:9/api/v1/write\"",
            "credentials in the URL are not used",
        );
    }

    #[test]
    fn headers_the_protocol_or_the_credentials_set_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let auth = "  basic_auth: { username: u, password: p }";
        // An Authorization header of its own, only where no credentials set one.
        let rw = push(
            d,
            &format!("{URL}\n  headers: {{ Authorization: Token t }}"),
        )
        .unwrap();
        assert_eq!(
            rw.headers,
            [("Authorization".to_string(), "Token t".to_string())]
        );
        refused(
            d,
            &format!("{URL}\n{auth}\n  headers: {{ authorization: Token t }}"),
            "Authorization is set by basic_auth or bearer_token_file",
        );
        let rw = push(
            d,
            &format!("{URL}\n{auth}\n  headers: {{ X-Scope-OrgID: t1 }}"),
        )
        .unwrap();
        assert_eq!(
            rw.headers,
            [("X-Scope-OrgID".to_string(), "t1".to_string())]
        );
        refused(
            d,
            &format!("{URL}\n  headers: {{ content-type: text/plain }}"),
            "content-type is set by the remote-write protocol",
        );
        refused(
            d,
            &format!("{URL}\n  headers: {{ \"Bad Name\": v }}"),
            "not a valid HTTP header",
        );
        refused(
            d,
            &format!("{URL}\n  headers: {{ X-Ok: \"a\\x01b\" }}"),
            "not a valid HTTP header",
        );
    }

    #[test]
    fn a_client_certificate_goes_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let pair = rcgen::generate_simple_self_signed(vec!["client".to_string()]).unwrap();
        std::fs::write(d.join("c.pem"), pair.cert.pem()).unwrap();
        std::fs::write(d.join("k.pem"), pair.signing_key.serialize_pem()).unwrap();
        let rw = push(d, &format!("{URL}\n  tls: {{ insecure: true }}")).unwrap();
        assert!(matches!(rw.trust, Trust::Insecure) && rw.client_cert.is_none());
        let rw = push(
            d,
            &format!("{URL}\n  tls: {{ cert_file: c.pem, key_file: k.pem }}"),
        )
        .unwrap();
        let (certs, _) = rw.client_cert.as_ref().expect("a client certificate");
        assert_eq!(certs[0].as_ref(), pair.cert.der().as_ref());
        refused(
            d,
            &format!("{URL}\n  tls: {{ cert_file: c.pem }}"),
            "remote_write.tls: cert_file and key_file go together",
        );
        // Neither the key nor a credential is printed.
        let rw = push(
            d,
            &format!("{URL}\n  basic_auth: {{ username: u, password: hunter2 }}\n  tls: {{ cert_file: c.pem, key_file: k.pem }}"),
        )
        .unwrap();
        let printed = format!("{rw:?}");
        assert!(
            printed.contains("<secret>") && printed.contains("<private key>"),
            "{printed}"
        );
        assert!(!printed.contains("Basic "), "{printed}");
    }
}
