//! The configuration file: YAML → raw structs → a validated [`Config`].
//!
//! This is the only module that reads YAML. Parsing happens in two steps, as
//! in ripgrep: serde decodes the file into `Raw*` structs whose leaf types
//! (durations, addresses, CIDRs, names) validate themselves while decoding, so
//! a bad value is reported with the file, the key path and the line; then
//! [`Config::load`] checks what spans several keys (resolver references, empty
//! services, duplicate checks) and builds a `Config` that holds only checked
//! types. Unknown keys and duplicate keys are errors.
//!
//! It does not build network clients: `probe::Catalogue` does that from a
//! `Config`. It does read the files the config names (`ca_file`,
//! `resolv_conf`), so that `--config.check` catches a missing one.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::{MessageFormatter, Spanned};

/// Default listen address (the port registered for this exporter's family).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9799";
/// Default per-check timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The resolver every config has: the host's own.
pub const SYSTEM_RESOLVER: &str = "system";
/// Where the system resolver's servers come from unless configured.
pub const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";

/// A config file that could not be loaded. The message names the file and,
/// for content errors, the line, column and key path.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {file}: {source}")]
    Read {
        /// The config file.
        file: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("config file {file} is {bytes} bytes: more than the 16 MiB a config may be")]
    TooLarge {
        /// The config file.
        file: String,
        /// Its size.
        bytes: u64,
    },
    /// The file is not UTF-8 text.
    #[error(
        "config file {file} is not UTF-8 text (invalid byte at offset {offset}): is it the right file?"
    )]
    NotText {
        /// The config file.
        file: String,
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The content is invalid: `file:line:column: key.path: message` (the
    /// position is left out when the problem is a missing key).
    #[error("{}", invalid_message(file, *line, *column, path, message))]
    Invalid {
        /// The config file.
        file: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// Key path, e.g. `services.whatsapp.tls[1].timeout`.
        path: String,
        /// What rule was broken.
        message: String,
    },
}

fn invalid_message(file: &str, line: usize, column: usize, path: &str, message: &str) -> String {
    if line == 0 {
        format!("{file}: {path}: {message}")
    } else {
        format!("{file}:{line}:{column}: {path}: {message}")
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub file: PathBuf,
    /// Checks in flight at most, across rounds and `/probe` requests.
    pub max_concurrent_checks: usize,
    /// Address to serve HTTP on.
    pub listen: SocketAddr,
    /// Resolvers; index 0 is always `system`.
    pub resolvers: Vec<Resolver>,
    /// Services in file order.
    pub services: Vec<Service>,
    /// Vantage-point labels added to every probe series, `${VAR}` expanded.
    pub labels: Vec<(String, String)>,
    /// A scrape within this time of the last round's start is served from
    /// that round (zero: every scrape probes).
    pub min_interval: Duration,
    /// Top-level ranges exempt from the bogon rule (ad hoc probes use these).
    pub allowed_ranges: Vec<IpNet>,
    /// Modules for ad hoc `/probe?target=&module=` requests.
    pub modules: Vec<Module>,
    /// Which ad hoc targets may be probed; empty: none.
    pub probe_allow: Vec<AllowRule>,
}

/// The web configuration (`--web.config.file`), in the format of Prometheus'
/// exporter-toolkit: TLS for the server, and basic-auth users with bcrypt
/// hashes. Files are read when it is loaded.
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
    pub key: Arc<rustls::pki_types::PrivateKeyDer<'static>>,
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
            Some(t) => {
                let e = |msg: String| v.err(Some(&t.referenced), "tls_server_config".into(), msg);
                let cert_file = base.join(&t.value.cert_file);
                let key_file = base.join(&t.value.key_file);
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_file)
                    .map_err(|err| {
                        e(format!(
                            "cannot read cert_file {}: {err}",
                            cert_file.display()
                        ))
                    })?
                    .collect::<Result<_, _>>()
                    .map_err(|err| {
                        e(format!(
                            "cert_file {} is not valid PEM: {err}",
                            cert_file.display()
                        ))
                    })?;
                if certs.is_empty() {
                    return Err(e(format!(
                        "cert_file {} holds no certificate",
                        cert_file.display()
                    )));
                }
                let key =
                    rustls::pki_types::PrivateKeyDer::from_pem_file(&key_file).map_err(|err| {
                        e(format!(
                            "cannot read a private key from key_file {}: {err}",
                            key_file.display()
                        ))
                    })?;
                Some(WebTls {
                    certs,
                    key: Arc::new(key),
                })
            }
        };
        let mut users = Vec::new();
        for (user, hash) in raw.basic_auth_users.0 {
            if !(hash.value.starts_with("$2a$")
                || hash.value.starts_with("$2b$")
                || hash.value.starts_with("$2y$"))
            {
                return Err(v.err(
                    Some(&hash.referenced),
                    format!("basic_auth_users.{user}"),
                    "not a bcrypt hash (it starts with $2a$, $2b$ or $2y$): store hashes, never passwords".into(),
                ));
            }
            users.push((user, hash.value));
        }
        Ok(WebConfig { tls, users })
    }
}

/// A `/probe` module: a check kind and its options, applied to the target
/// of a request.
#[derive(Debug, Clone)]
pub struct Module {
    /// Its name (`module=` in the request, and the `service` label).
    pub name: String,
    /// Time limit.
    pub timeout: Duration,
    /// The kind and its options.
    pub spec: ModuleSpec,
}

/// A module's kind and options.
#[derive(Debug, Clone)]
pub enum ModuleSpec {
    /// Resolve the target name.
    Dns {
        /// Index into [`Config::resolvers`].
        resolver: usize,
        /// Record type.
        record_type: RecordType,
    },
    /// Connect to `host:port`.
    Tcp,
    /// TLS handshake with `host:port`.
    Tls {
        /// SNI (default: the target's host).
        sni: Option<String>,
        /// Trust roots.
        trust: Trust,
    },
    /// A call port at `host:port`.
    CallPort {
        /// UDP or TCP.
        transport: Transport,
        /// STUN or connect.
        method: CallMethod,
    },
    /// GET the target URL.
    Http {
        /// Accepted statuses.
        status: Vec<(u16, u16)>,
        /// Redirects followed at most.
        max_redirects: u32,
        /// Body bytes read at most.
        max_body: u64,
        /// Trust roots.
        trust: Trust,
    },
    /// A bounded download of the target URL.
    Download {
        /// Body bytes read at most.
        max_bytes: u64,
        /// Throttling floor, bytes per second.
        min_rate: Option<u64>,
        /// Longest gap without a byte.
        stall_after: Duration,
        /// Trust roots.
        trust: Trust,
    },
    /// A QUIC handshake with `host:port`.
    Quic {
        /// SNI (default: the target's host).
        sni: Option<String>,
        /// ALPN protocols.
        alpn: Vec<String>,
        /// Trust roots.
        trust: Trust,
    },
}

impl Module {
    /// The check this module makes of `target` (a name for dns, `host:port`
    /// for tcp, tls, call_port and quic, a URL for http and download), or
    /// why `target` is not one.
    pub fn check_for(&self, target: &str) -> Result<Check, String> {
        let timeout = self.timeout;
        Ok(match &self.spec {
            ModuleSpec::Dns {
                resolver,
                record_type,
            } => Check::Dns(DnsCheck {
                name: DnsName::parse(target)?.0,
                resolver: *resolver,
                record_type: *record_type,
                timeout,
            }),
            ModuleSpec::Tcp => Check::Tcp(TcpCheck {
                target: HostPort::parse(target, None)?.0,
                timeout,
                family: IpFamily::V4,
                all_addresses: None,
            }),
            ModuleSpec::Tls { sni, trust } => {
                let target = HostPort::parse(target, None)?.0;
                let sni = sni.clone().or_else(|| match &target.host {
                    Host::Name(n) => Some(n.clone()),
                    Host::Ip(_) => None,
                });
                Check::Tls(TlsCheck {
                    target,
                    sni,
                    trust: trust.clone(),
                    timeout,
                    family: IpFamily::V4,
                    all_addresses: None,
                    control_sni: None,
                })
            }
            ModuleSpec::CallPort { transport, method } => Check::CallPort(CallPortCheck {
                target: HostPort::parse(target, None)?.0,
                transport: *transport,
                method: *method,
                timeout,
                family: IpFamily::V4,
            }),
            ModuleSpec::Http {
                status,
                max_redirects,
                max_body,
                trust,
            } => {
                let u = HttpUrl::parse(target)?;
                Check::Http(HttpCheck {
                    written: u.written,
                    url: u.url,
                    status: status.clone(),
                    max_redirects: *max_redirects,
                    max_body: *max_body,
                    trust: trust.clone(),
                    timeout,
                    family: IpFamily::V4,
                })
            }
            ModuleSpec::Download {
                max_bytes,
                min_rate,
                stall_after,
                trust,
            } => {
                let u = HttpUrl::parse(target)?;
                Check::Download(DownloadCheck {
                    written: u.written,
                    url: u.url,
                    max_bytes: *max_bytes,
                    min_rate: *min_rate,
                    stall_after: *stall_after,
                    trust: trust.clone(),
                    timeout,
                    family: IpFamily::V4,
                })
            }
            ModuleSpec::Quic { sni, alpn, trust } => {
                let target = HostPort::parse(target, None)?.0;
                let sni = sni.clone().or_else(|| match &target.host {
                    Host::Name(n) => Some(n.clone()),
                    Host::Ip(_) => None,
                });
                Check::Quic(QuicCheck {
                    target,
                    sni,
                    alpn: alpn.clone(),
                    trust: trust.clone(),
                    timeout,
                    family: IpFamily::V4,
                })
            }
        })
    }
}

/// One `probe_allow` pattern: a host glob (`*` matches any run of
/// characters) or a CIDR, with a port or any port.
#[derive(Debug, Clone)]
pub struct AllowRule {
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone)]
enum HostPattern {
    Glob(String),
    Net(IpNet),
}

impl AllowRule {
    fn parse(s: &str) -> Result<AllowRule, String> {
        let bad = || {
            format!(
                "invalid probe_allow pattern {s:?}: expected a host glob or a CIDR, optionally with :port, such as \"*.whatsapp.net:443\" or \"10.0.0.0/8\""
            )
        };
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(bad()),
            };
            (h, port)
        } else if s.matches(':').count() == 1 {
            let (h, p) = s.split_once(':').ok_or_else(bad)?;
            (h, Some(p))
        } else {
            (s, None)
        };
        let port = match port {
            Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?),
            None => None,
        };
        let host = if let Ok(net) = host.parse::<IpNet>() {
            HostPattern::Net(net.trunc())
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            HostPattern::Net(IpNet::from(ip))
        } else {
            let name = host.to_ascii_lowercase();
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.*".contains(&b));
            if !ok {
                return Err(bad());
            }
            HostPattern::Glob(name)
        };
        Ok(AllowRule { host, port })
    }

    /// Whether this rule admits `host` (and `port`; `None` for a DNS name
    /// probe, which only a rule without a port admits).
    pub fn allows(&self, host: &Host, port: Option<u16>) -> bool {
        if self.port.is_some() && self.port != port {
            return false;
        }
        match (&self.host, host) {
            (HostPattern::Net(net), Host::Ip(ip)) => net.contains(ip),
            (HostPattern::Glob(g), Host::Name(n)) => glob_match(g.as_bytes(), n.as_bytes()),
            _ => false,
        }
    }
}

/// `*` matches any run of characters (dots included); everything else
/// matches itself.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob_match(rest, &text[i..])),
        Some((c, rest)) => text.first() == Some(c) && glob_match(rest, &text[1..]),
    }
}

impl Config {
    /// Whether `check` (an ad hoc probe's) targets something `probe_allow`
    /// admits.
    pub fn probe_allowed(&self, check: &Check) -> bool {
        let (host, port) = match check {
            Check::Dns(c) => (Host::Name(c.name.clone()), None),
            Check::Tcp(c) => (c.target.host.clone(), Some(c.target.port)),
            Check::Tls(c) => (c.target.host.clone(), Some(c.target.port)),
            Check::CallPort(c) => (c.target.host.clone(), Some(c.target.port)),
            Check::Http(c) => match url_target(&c.url) {
                Some(t) => (t.host, Some(t.port)),
                None => return false,
            },
            Check::Download(c) => match url_target(&c.url) {
                Some(t) => (t.host, Some(t.port)),
                None => return false,
            },
            Check::Quic(c) => (c.target.host.clone(), Some(c.target.port)),
        };
        self.probe_allow.iter().any(|r| r.allows(&host, port))
    }
}

/// Label names the exporter's own series use, or Prometheus sets: a
/// vantage label may not take them.
pub const RESERVED_LABELS: [&str; 17] = [
    "service",
    "target",
    "resolver",
    "type",
    "sni",
    "version",
    "transport",
    "method",
    "check",
    "stage",
    "reason",
    "address",
    "kind",
    "instance",
    "job",
    "le",
    "quantile",
];

/// A named resolver.
#[derive(Debug, Clone)]
pub struct Resolver {
    /// Its name in the config (a label value).
    pub name: String,
    /// How to reach it.
    pub kind: ResolverKind,
}

impl Resolver {
    /// Every resolver but `system` is a control.
    pub fn is_control(&self) -> bool {
        self.name != SYSTEM_RESOLVER
    }
}

/// How a resolver is reached.
#[derive(Debug, Clone)]
pub enum ResolverKind {
    /// Plain DNS, UDP with TCP fallback on truncation, to these servers (the
    /// system resolver from resolv.conf).
    UdpAndTcp(Vec<SocketAddr>),
    /// Plain DNS over UDP only.
    Udp(SocketAddr),
    /// Plain DNS over TCP only.
    Tcp(SocketAddr),
    /// DNS over TLS.
    Dot {
        /// Server address.
        addr: SocketAddr,
        /// TLS name to verify.
        server_name: String,
        /// Trust roots.
        trust: Trust,
    },
    /// DNS over HTTPS.
    Doh {
        /// Server address.
        addr: SocketAddr,
        /// TLS name to verify (and HTTP authority).
        server_name: String,
        /// URL path, e.g. `/dns-query`.
        path: String,
        /// Trust roots.
        trust: Trust,
    },
}

impl ResolverKind {
    /// DoT or DoH: a resolver that answering proves a TCP + TLS path works.
    pub fn is_encrypted(&self) -> bool {
        matches!(self, ResolverKind::Dot { .. } | ResolverKind::Doh { .. })
    }
}

/// Which certificates a TLS client trusts.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The Mozilla roots compiled in (webpki-roots).
    WebPki,
    /// The certificates of a PEM file.
    CaFile {
        /// The file, as resolved against the config's directory.
        path: PathBuf,
        /// Its certificates.
        roots: Arc<RootCertStore>,
    },
    /// No verification at all.
    Insecure,
}

/// A service: a named group of checks.
#[derive(Debug, Clone)]
pub struct Service {
    /// Its name (the `service` label).
    pub name: String,
    /// Index into [`Config::resolvers`] used to resolve TCP/TLS hosts.
    pub resolve_with: usize,
    /// Ranges exempt from the bogon rule (top-level plus the service's own).
    pub allowed_ranges: Vec<IpNet>,
    /// Its checks in file order.
    pub checks: Vec<Check>,
}

/// One check of a service.
#[derive(Debug, Clone)]
pub enum Check {
    /// Resolve a name through one resolver.
    Dns(DnsCheck),
    /// Connect over TCP.
    Tcp(TcpCheck),
    /// Connect over TCP, then a TLS handshake.
    Tls(TlsCheck),
    /// Whether a call port answers: STUN over UDP or TCP, or a TCP connect.
    CallPort(CallPortCheck),
    /// An HTTP(S) GET.
    Http(HttpCheck),
    /// A bounded HTTP(S) download, timed and rated.
    Download(DownloadCheck),
    /// A QUIC handshake.
    Quic(QuicCheck),
}

impl Check {
    /// The check's kind (the `check` label).
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Dns(_) => "dns",
            Check::Tcp(_) => "tcp",
            Check::Tls(_) => "tls",
            Check::CallPort(_) => "call_port",
            Check::Http(_) => "http",
            Check::Download(_) => "download",
            Check::Quic(_) => "quic",
        }
    }

    /// Which address family its target is resolved to (DNS checks: their
    /// record type decides).
    pub fn family(&self) -> IpFamily {
        match self {
            Check::Dns(_) => IpFamily::V4,
            Check::Tcp(c) => c.family,
            Check::Tls(c) => c.family,
            Check::CallPort(c) => c.family,
            Check::Http(c) => c.family,
            Check::Download(c) => c.family,
            Check::Quic(c) => c.family,
        }
    }

    /// Its own time limit.
    pub fn timeout(&self) -> Duration {
        match self {
            Check::Dns(c) => c.timeout,
            Check::Tcp(c) => c.timeout,
            Check::Tls(c) => c.timeout,
            Check::CallPort(c) => c.timeout,
            Check::Http(c) => c.timeout,
            Check::Download(c) => c.timeout,
            Check::Quic(c) => c.timeout,
        }
    }
}

/// DNS record types a DNS check can ask for (the `type` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum RecordType {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    AAAA,
}

impl RecordType {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::AAAA => "AAAA",
        }
    }
}

/// Which address of a name a check connects to (`ip_family`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
pub enum IpFamily {
    /// The first IPv4 address; IPv6 when the name has none (the default).
    #[default]
    #[serde(rename = "ipv4")]
    V4,
    /// The first IPv6 address; IPv4 when the name has none.
    #[serde(rename = "ipv6")]
    V6,
    /// Both families: the first address of either (IPv4 first).
    #[serde(rename = "any")]
    Any,
}

/// Resolve `name` for `record_type` through resolver `resolver`.
#[derive(Debug, Clone)]
pub struct DnsCheck {
    /// The name as written (without a trailing dot).
    pub name: String,
    /// Index into [`Config::resolvers`].
    pub resolver: usize,
    /// Record type.
    pub record_type: RecordType,
    /// Time limit.
    pub timeout: Duration,
}

/// A TCP connect to a target.
#[derive(Debug, Clone)]
pub struct TcpCheck {
    /// Where to.
    pub target: Target,
    /// Time limit (resolution and connect together).
    pub timeout: Duration,
    /// Which resolved address to use.
    pub family: IpFamily,
    /// `all_addresses: true`: probe every resolved address, at most this
    /// many (`max_addresses`).
    pub all_addresses: Option<usize>,
}

/// A TLS handshake with a target.
#[derive(Debug, Clone)]
pub struct TlsCheck {
    /// Where to.
    pub target: Target,
    /// Server name sent and verified; `None` sends no SNI (bare IP target).
    pub sni: Option<String>,
    /// Which roots to trust.
    pub trust: Trust,
    /// Time limit (resolution, connect and handshake together).
    pub timeout: Duration,
    /// Which resolved address to use.
    pub family: IpFamily,
    /// `all_addresses: true`: probe every resolved address, at most this
    /// many (`max_addresses`).
    pub all_addresses: Option<usize>,
    /// A neutral server name: a handshake with it to the same address, its
    /// certificate not validated, is the control of the `sni_filtered`
    /// verdict.
    pub control_sni: Option<String>,
}

/// A call-port check: `{ udp: host:port }` (STUN), `{ tcp: host:port }`
/// (connect) or `{ tcp: host:port, method: stun }`.
#[derive(Debug, Clone)]
pub struct CallPortCheck {
    /// Where to.
    pub target: Target,
    /// UDP or TCP.
    pub transport: Transport,
    /// What proves the port answers.
    pub method: CallMethod,
    /// Time limit (resolution, connect and the exchange together).
    pub timeout: Duration,
    /// Which resolved address to use.
    pub family: IpFamily,
}

/// An HTTP(S) GET of a URL.
#[derive(Debug, Clone)]
pub struct HttpCheck {
    /// The URL exactly as written (the `target` label).
    pub written: String,
    /// The URL.
    pub url: url::Url,
    /// Accepted status codes (inclusive ranges).
    pub status: Vec<(u16, u16)>,
    /// Redirects followed at most (0: a redirect is the answer).
    pub max_redirects: u32,
    /// Body bytes read at most.
    pub max_body: u64,
    /// Which roots to trust for https.
    pub trust: Trust,
    /// Time limit (every step of every hop together).
    pub timeout: Duration,
    /// Which resolved address to use.
    pub family: IpFamily,
}

/// A bounded download of a URL: how fast the body comes, and whether it
/// stalls.
#[derive(Debug, Clone)]
pub struct DownloadCheck {
    /// The URL exactly as written (the `target` label).
    pub written: String,
    /// The URL.
    pub url: url::Url,
    /// Body bytes read at most.
    pub max_bytes: u64,
    /// Below this many bytes per second the transfer counts as throttled.
    pub min_rate: Option<u64>,
    /// No byte for this long once the request is sent: stalled.
    pub stall_after: Duration,
    /// Which roots to trust for https.
    pub trust: Trust,
    /// Time limit (every step together).
    pub timeout: Duration,
    /// Which resolved address to use.
    pub family: IpFamily,
}

/// A QUIC handshake with a target.
#[derive(Debug, Clone)]
pub struct QuicCheck {
    /// Where to (UDP).
    pub target: Target,
    /// Server name sent and verified; `None` sends none (bare IP target).
    pub sni: Option<String>,
    /// ALPN protocols offered (default `h3`).
    pub alpn: Vec<String>,
    /// Which roots to trust.
    pub trust: Trust,
    /// Time limit (resolution and handshake together).
    pub timeout: Duration,
    /// Which resolved address to use.
    pub family: IpFamily,
}

impl HttpCheck {
    /// Whether `code` is in the accepted set.
    pub fn accepts(&self, code: u16) -> bool {
        self.status
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&code))
    }
}

/// The default accepted statuses: 200–399.
pub const DEFAULT_HTTP_STATUS: (u16, u16) = (200, 399);
/// The default body limit of an HTTP check.
pub const DEFAULT_MAX_BODY: u64 = 64 * 1024;
/// The default size of a download check.
pub const DEFAULT_DOWNLOAD_BYTES: u64 = 1 << 20;
/// The default `stall_after` of a download check.
pub const DEFAULT_STALL_AFTER: Duration = Duration::from_secs(3);
/// The default `max_concurrent_checks` (raised to the number of configured
/// checks when there are more).
pub const DEFAULT_MAX_CONCURRENT_CHECKS: usize = 1024;
/// The largest config file read.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// The default `max_addresses` of an `all_addresses` check.
pub const DEFAULT_MAX_ADDRESSES: usize = 8;

/// The host and port a URL names, as a [`Target`] (for resolution).
pub fn url_target(url: &url::Url) -> Option<Target> {
    let port = url.port_or_known_default()?;
    let host = match url.host()? {
        url::Host::Domain(d) => Host::Name(d.trim_end_matches('.').to_ascii_lowercase()),
        url::Host::Ipv4(ip) => Host::Ip(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Host::Ip(IpAddr::V6(ip)),
    };
    Some(Target {
        written: url.as_str().to_string(),
        host,
        port,
    })
}

/// The transport of a call-port check (the `transport` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

impl Transport {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// How a call port is probed (the `method` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallMethod {
    /// A STUN Binding request; any STUN response proves the path.
    Stun,
    /// A TCP connect.
    Connect,
}

impl CallMethod {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CallMethod::Stun => "stun",
            CallMethod::Connect => "connect",
        }
    }
}

/// A `host:port` as written in the config, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// Exactly as written (the `target` label).
    pub written: String,
    /// The host part.
    pub host: Host,
    /// The port.
    pub port: u16,
}

/// The host part of a target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A literal address: no resolution.
    Ip(IpAddr),
    /// A DNS name, resolved with the service's resolver.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => ip.fmt(f),
            Host::Name(n) => f.write_str(n),
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read = |source| ConfigError::Read {
            file: path.display().to_string(),
            source,
        };
        let bytes = std::fs::metadata(path).map_err(read)?.len();
        if bytes > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                file: path.display().to_string(),
                bytes,
            });
        }
        let raw = std::fs::read(path).map_err(read)?;
        let text = String::from_utf8(raw).map_err(|e| ConfigError::NotText {
            file: path.display().to_string(),
            offset: e.utf8_error().valid_up_to(),
        })?;
        Config::parse(&text, path)
    }

    /// Validates config text as if read from `path` (relative paths inside
    /// it are resolved against `path`'s directory).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let raw = decode(text, &file)?;
        let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
        Validator {
            file: &file,
            base: &base,
        }
        .config(raw)
    }

    /// Every check with its service, in file order.
    pub fn checks(&self) -> impl Iterator<Item = (&Service, &Check)> {
        self.services
            .iter()
            .flat_map(|s| s.checks.iter().map(move |c| (s, c)))
    }
}

// ---------------------------------------------------------------------------
// Decoding

fn decode<T: serde::de::DeserializeOwned>(text: &str, file: &str) -> Result<T, ConfigError> {
    let path = RefCell::new(String::new());
    let res = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            *path.borrow_mut() = format_path(e.path());
            e.into_inner()
        })
    });
    res.map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line() as usize, l.column() as usize))
            .unwrap_or((0, 0));
        let mut path = path.into_inner();
        let text = match e.without_snippet() {
            serde_saphyr::Error::DuplicateMappingKey { key: Some(key), .. } => {
                // serde_path_to_error ends the path with `?` here: name the key.
                path = match path.strip_suffix('?') {
                    Some(parent) => format!("{parent}{key}"),
                    None => path,
                };
                format!("duplicate key `{key}`")
            }
            other => serde_saphyr::DefaultMessageFormatter
                .format_message(other)
                .into_owned(),
        };
        // The message may quote the file's text: keep it on one line.
        let mut message = String::new();
        for c in text.chars() {
            if c.is_control() {
                message.extend(c.escape_default());
            } else {
                message.push(c);
            }
        }
        ConfigError::Invalid {
            file: file.to_string(),
            line,
            column,
            path: if path.is_empty() { ".".into() } else { path },
            message,
        }
    })
}

/// Formats a serde path as `a.b[0].c`, dropping the `value` segment that
/// [`Spanned`] inserts under a service, resolver, module or label and each
/// list entry.
fn format_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let segs: Vec<&Segment> = path.iter().collect();
    let mut out = String::new();
    for (i, seg) in segs.iter().enumerate() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                let spanned_value = key == "value"
                    && (matches!(segs.get(i.wrapping_sub(1)), Some(Segment::Seq { .. }))
                        || (i == 2
                            && matches!(segs[0], Segment::Map { key } if matches!(key.as_str(), "services" | "resolvers" | "modules" | "labels"))));
                if spanned_value {
                    continue;
                }
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// A YAML mapping decoded in file order (keys are unique: serde-saphyr
/// rejects duplicates).
#[derive(Debug)]
struct OrderedMap<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, V>()? {
                    out.push((k, v));
                }
                Ok(OrderedMap(out))
            }
        }
        d.deserialize_map(V2(std::marker::PhantomData))
    }
}

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<Listen>,
    timeout: Option<Dur>,
    max_concurrent_checks: Option<Spanned<usize>>,
    min_interval: Option<ZeroOkDur>,
    #[serde(default)]
    labels: OrderedMap<Spanned<String>>,
    #[serde(default)]
    probe_allow: Vec<AllowPattern>,
    #[serde(default)]
    modules: OrderedMap<Spanned<RawModule>>,
    #[serde(default)]
    allowed_ranges: Vec<Cidr>,
    #[serde(default)]
    resolvers: OrderedMap<Spanned<RawResolver>>,
    services: Option<OrderedMap<Spanned<RawService>>>,
}

/// A `probe_allow` entry.
#[derive(Debug, Clone)]
struct AllowPattern(AllowRule);

impl<'de> Deserialize<'de> for AllowPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, |s| AllowRule::parse(s).map(AllowPattern))
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ModuleKind {
    Dns,
    Tcp,
    Tls,
    CallPort,
    Http,
    Download,
    Quic,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    kind: ModuleKind,
    timeout: Option<Dur>,
    resolver: Option<Spanned<String>>,
    #[serde(rename = "type")]
    record_type: Option<RecordType>,
    sni: Option<DnsName>,
    ca_file: Option<String>,
    #[serde(default)]
    insecure: bool,
    transport: Option<TransportName>,
    method: Option<CallMethod>,
    status: Option<Vec<StatusRange>>,
    max_redirects: Option<u32>,
    max_body: Option<Size>,
    max_bytes: Option<Size>,
    min_rate: Option<Size>,
    stall_after: Option<Dur>,
    alpn: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum TransportName {
    Udp,
    Tcp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResolver {
    resolv_conf: Option<String>,
    udp: Option<ServerAddr<53>>,
    tcp: Option<ServerAddr<53>>,
    dot: Option<ServerAddr<853>>,
    doh: Option<DohUrl>,
    server_name: Option<DnsName>,
    ca_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    resolve_with: Option<Spanned<String>>,
    timeout: Option<Dur>,
    ip_family: Option<IpFamily>,
    control_sni: Option<DnsName>,
    #[serde(default)]
    allowed_ranges: Vec<Cidr>,
    dns: Option<RawDns>,
    #[serde(default)]
    tcp: Vec<Spanned<TcpEntry>>,
    #[serde(default)]
    tls: Vec<Spanned<TlsEntry>>,
    #[serde(default)]
    call_ports: Vec<Spanned<RawCallPort>>,
    #[serde(default)]
    http: Vec<Spanned<HttpEntry>>,
    #[serde(default)]
    download: Vec<Spanned<DownloadEntry>>,
    #[serde(default)]
    quic: Vec<Spanned<QuicEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpObject {
    url: HttpUrl,
    status: Option<Vec<StatusRange>>,
    max_redirects: Option<u32>,
    max_body: Option<Size>,
    ca_file: Option<String>,
    #[serde(default)]
    insecure: bool,
    timeout: Option<Dur>,
    ip_family: Option<IpFamily>,
}

#[derive(Debug)]
struct HttpEntry(RawHttpObject);

impl ShortOrLong for HttpEntry {
    type Long = RawHttpObject;
    const EXPECTING: &'static str = "a URL string or a mapping with `url`";

    fn short(s: &str) -> Result<Self, String> {
        Ok(HttpEntry(RawHttpObject {
            url: HttpUrl::parse(s)?,
            status: None,
            max_redirects: None,
            max_body: None,
            ca_file: None,
            insecure: false,
            timeout: None,
            ip_family: None,
        }))
    }

    fn long(o: RawHttpObject) -> Result<Self, String> {
        if o.insecure && o.ca_file.is_some() {
            return Err("`insecure: true` and `ca_file` exclude each other".into());
        }
        Ok(HttpEntry(o))
    }
}

/// An `http://` or `https://` URL with a host.
#[derive(Debug, Clone)]
struct HttpUrl {
    written: String,
    url: url::Url,
}

impl HttpUrl {
    fn parse(s: &str) -> Result<HttpUrl, String> {
        let url = url::Url::parse(s).map_err(|e| format!("invalid URL {s:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "invalid URL {s:?}: the scheme must be http or https"
            ));
        }
        if let Some(url::Host::Domain(d)) = url.host() {
            DnsName::parse(d).map_err(|e| format!("invalid URL {s:?}: {e}"))?;
        }
        if url_target(&url).is_none() {
            return Err(format!("invalid URL {s:?}: no host"));
        }
        Ok(HttpUrl {
            written: s.to_string(),
            url,
        })
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, HttpUrl::parse)
    }
}

/// An accepted HTTP status: `200`, or a range `"200-299"`.
#[derive(Debug, Clone, Copy)]
struct StatusRange(u16, u16);

impl StatusRange {
    fn parse(s: &str) -> Result<StatusRange, String> {
        let code = |t: &str| match t.trim().parse::<u16>() {
            Ok(c) if (100..=599).contains(&c) => Ok(c),
            _ => Err(format!(
                "invalid status {s:?}: expected a code from 100 to 599, or a range such as \"200-299\""
            )),
        };
        match s.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (code(lo)?, code(hi)?);
                if lo > hi {
                    return Err(format!(
                        "invalid status range {s:?}: the first code is larger"
                    ));
                }
                Ok(StatusRange(lo, hi))
            }
            None => code(s).map(|c| StatusRange(c, c)),
        }
    }
}

impl<'de> Deserialize<'de> for StatusRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A YAML integer arrives as a string scalar here too.
        parse_str(d, StatusRange::parse)
    }
}

/// A size in bytes: an integer, or a number with `KiB`, `MiB` or `GiB`.
#[derive(Debug, Clone, Copy)]
struct Size(u64);

impl Size {
    fn parse(s: &str) -> Result<Size, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            _ => 0,
        };
        match num.parse::<u64>() {
            Ok(n) if mult != 0 && n > 0 => n
                .checked_mul(mult)
                .map(Size)
                .ok_or_else(|| format!("invalid size {s:?}: too large")),
            _ => Err(format!(
                "invalid size {s:?}: expected a positive number of bytes, optionally with KiB, MiB or GiB, such as 64KiB"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, Size::parse)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCallPort {
    udp: Option<HostPort>,
    tcp: Option<HostPort>,
    method: Option<CallMethod>,
    timeout: Option<Dur>,
    ip_family: Option<IpFamily>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDns {
    names: Vec<Spanned<DnsName>>,
    resolvers: Option<Vec<Spanned<String>>>,
    types: Option<Vec<RecordType>>,
}

#[derive(Debug)]
struct TcpEntry(RawTcpObject);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTcpObject {
    target: HostPort,
    timeout: Option<Dur>,
    ip_family: Option<IpFamily>,
    #[serde(default)]
    all_addresses: bool,
    max_addresses: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTlsObject {
    target: Option<HostPort>,
    sni: Option<DnsName>,
    ca_file: Option<String>,
    #[serde(default)]
    insecure: bool,
    timeout: Option<Dur>,
    ip_family: Option<IpFamily>,
    #[serde(default)]
    all_addresses: bool,
    max_addresses: Option<usize>,
    control_sni: Option<DnsName>,
}

#[derive(Debug)]
struct TlsEntry(RawTlsObject);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDownloadObject {
    url: HttpUrl,
    max_bytes: Option<Size>,
    min_rate: Option<Size>,
    stall_after: Option<Dur>,
    ca_file: Option<String>,
    #[serde(default)]
    insecure: bool,
    timeout: Option<Dur>,
    ip_family: Option<IpFamily>,
}

#[derive(Debug)]
struct DownloadEntry(RawDownloadObject);

impl ShortOrLong for DownloadEntry {
    type Long = RawDownloadObject;
    const EXPECTING: &'static str = "a URL string or a mapping with `url`";

    fn short(s: &str) -> Result<Self, String> {
        Ok(DownloadEntry(RawDownloadObject {
            url: HttpUrl::parse(s)?,
            max_bytes: None,
            min_rate: None,
            stall_after: None,
            ca_file: None,
            insecure: false,
            timeout: None,
            ip_family: None,
        }))
    }

    fn long(o: RawDownloadObject) -> Result<Self, String> {
        if o.insecure && o.ca_file.is_some() {
            return Err("`insecure: true` and `ca_file` exclude each other".into());
        }
        Ok(DownloadEntry(o))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuicObject {
    target: Option<HostPort>,
    sni: Option<DnsName>,
    alpn: Option<Vec<String>>,
    ca_file: Option<String>,
    #[serde(default)]
    insecure: bool,
    timeout: Option<Dur>,
    ip_family: Option<IpFamily>,
}

#[derive(Debug)]
struct QuicEntry(RawQuicObject);

impl ShortOrLong for QuicEntry {
    type Long = RawQuicObject;
    const EXPECTING: &'static str = "a \"host:port\" string or a mapping with `target`";

    fn short(s: &str) -> Result<Self, String> {
        Ok(QuicEntry(RawQuicObject {
            target: Some(HostPort::parse(s, None)?),
            ..RawQuicObject::default()
        }))
    }

    fn long(o: RawQuicObject) -> Result<Self, String> {
        if o.target.is_none() {
            return Err("missing field `target`".into());
        }
        if o.insecure && o.ca_file.is_some() {
            return Err("`insecure: true` and `ca_file` exclude each other".into());
        }
        if let Some(alpn) = &o.alpn {
            if alpn.is_empty() {
                return Err("`alpn` is empty: name at least one protocol, such as h3".into());
            }
            if let Some(bad) = alpn.iter().find(|a| a.is_empty() || a.len() > 255) {
                return Err(format!("invalid ALPN protocol {bad:?}: 1 to 255 bytes"));
            }
        }
        Ok(QuicEntry(o))
    }
}

impl ShortOrLong for TcpEntry {
    type Long = RawTcpObject;
    const EXPECTING: &'static str = "a \"host:port\" string or a mapping with `target`";

    fn short(s: &str) -> Result<Self, String> {
        Ok(TcpEntry(RawTcpObject {
            target: HostPort::parse(s, None)?,
            timeout: None,
            ip_family: None,
            all_addresses: false,
            max_addresses: None,
        }))
    }

    fn long(o: RawTcpObject) -> Result<Self, String> {
        all_addresses(o.all_addresses, o.max_addresses)?;
        Ok(TcpEntry(o))
    }
}

impl ShortOrLong for TlsEntry {
    type Long = RawTlsObject;
    const EXPECTING: &'static str = "a \"host:port\" string or a mapping with `target`";

    fn short(s: &str) -> Result<Self, String> {
        Ok(TlsEntry(RawTlsObject {
            target: Some(HostPort::parse(s, None)?),
            ..RawTlsObject::default()
        }))
    }

    fn long(o: RawTlsObject) -> Result<Self, String> {
        if o.target.is_none() {
            return Err("missing field `target`".into());
        }
        if o.insecure && o.ca_file.is_some() {
            return Err("`insecure: true` and `ca_file` exclude each other".into());
        }
        all_addresses(o.all_addresses, o.max_addresses)?;
        Ok(TlsEntry(o))
    }
}

/// `all_addresses` and `max_addresses` as given: the number of addresses
/// to probe, `None` for the first address only.
fn all_addresses(all: bool, max: Option<usize>) -> Result<Option<usize>, String> {
    match (all, max) {
        (false, None) => Ok(None),
        (false, Some(_)) => Err("`max_addresses` needs `all_addresses: true`".into()),
        (true, None) => Ok(Some(DEFAULT_MAX_ADDRESSES)),
        (true, Some(n)) if (1..=64).contains(&n) => Ok(Some(n)),
        (true, Some(n)) => Err(format!("`max_addresses: {n}`: expected 1 to 64")),
    }
}

/// An entry written as a string (short form) or a mapping (long form).
trait ShortOrLong: Sized {
    /// The long form.
    type Long: serde::de::DeserializeOwned;
    /// What the entry may be, for the error message.
    const EXPECTING: &'static str;
    /// Reads the short form.
    fn short(s: &str) -> Result<Self, String>;
    /// Checks the long form.
    fn long(l: Self::Long) -> Result<Self, String>;
}

/// Deserializes a [`ShortOrLong`] entry; errors carry the YAML location.
fn short_or_long<'de, D: Deserializer<'de>, T: ShortOrLong>(d: D) -> Result<T, D::Error> {
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: ShortOrLong> Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(T::EXPECTING)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            T::short(s).map_err(E::custom)
        }
        fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<T, A::Error> {
            let long = T::Long::deserialize(de::value::MapAccessDeserializer::new(m))?;
            T::long(long).map_err(de::Error::custom)
        }
    }
    d.deserialize_any(V(std::marker::PhantomData))
}

macro_rules! short_or_long_entry {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                short_or_long(d)
            }
        }
    )*};
}
short_or_long_entry!(TcpEntry, TlsEntry, HttpEntry, DownloadEntry, QuicEntry);

/// Deserializes a scalar string and validates it with `parse`; the error
/// message then carries serde-saphyr's location.
fn parse_str<'de, D, T>(d: D, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let s = String::deserialize(d)?;
    parse(&s).map_err(de::Error::custom)
}

/// A positive duration written in humantime syntax (`500ms`, `5s`, `1m`).
#[derive(Debug, Clone, Copy)]
struct Dur(Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, |s| {
            let v = humantime::parse_duration(s).map_err(|_| {
                format!(
                    "invalid duration {s:?}: expected a number and a unit, such as 500ms, 5s or 1m"
                )
            })?;
            if v.is_zero() {
                return Err(format!("invalid duration {s:?}: must be greater than zero"));
            }
            Ok(Dur(v))
        })
    }
}

/// A duration that may be zero (`0s`).
#[derive(Debug, Clone, Copy)]
struct ZeroOkDur(Duration);

impl<'de> Deserialize<'de> for ZeroOkDur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, |s| {
            humantime::parse_duration(s).map(ZeroOkDur).map_err(|_| {
                format!("invalid duration {s:?}: expected a number and a unit, such as 0s, 500ms, 5s or 1m")
            })
        })
    }
}

/// Expands `${VAR}` from the environment. An unset variable is an error,
/// not an empty label.
fn expand_env(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in {s:?}"))?;
        let name = &after[..end];
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(format!(
                "invalid environment variable name {name:?} in {s:?}"
            ));
        }
        let value =
            std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A listen address `ip:port`.
#[derive(Debug, Clone, Copy)]
struct Listen(SocketAddr);

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, |s| {
            s.parse().map(Listen).map_err(|_| {
                format!("invalid listen address {s:?}: expected ip:port, such as 0.0.0.0:9799")
            })
        })
    }
}

/// A CIDR (`10.0.0.0/8`) or a single address.
#[derive(Debug, Clone, Copy)]
struct Cidr(IpNet);

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, |s| {
            if let Ok(net) = s.parse::<IpNet>() {
                return Ok(Cidr(net.trunc()));
            }
            s.parse::<IpAddr>()
                .map(|ip| Cidr(IpNet::from(ip)))
                .map_err(|_| {
                    format!("invalid CIDR {s:?}: expected an address range such as 10.0.0.0/8")
                })
        })
    }
}

/// A DNS name (letters, digits, `-`, `_`, dots; labels of 1–63 bytes).
#[derive(Debug, Clone)]
struct DnsName(String);

impl DnsName {
    fn parse(s: &str) -> Result<DnsName, String> {
        let name = s.strip_suffix('.').unwrap_or(s);
        let ok = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok || name.parse::<IpAddr>().is_ok() {
            return Err(format!("invalid DNS name {s:?}"));
        }
        Ok(DnsName(name.to_ascii_lowercase()))
    }
}

impl<'de> Deserialize<'de> for DnsName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, DnsName::parse)
    }
}

/// `host:port` where host is a DNS name, an IPv4 address or a bracketed
/// IPv6 address.
#[derive(Debug, Clone)]
struct HostPort(Target);

impl HostPort {
    /// Parses `host:port`; with `default_port`, `:port` may be left out.
    fn parse(s: &str, default_port: Option<u16>) -> Result<HostPort, String> {
        let bad = |why: &str| format!("invalid address {s:?}: {why}");
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("missing `]` after an IPv6 address"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(bad("expected `:port` after `]`")),
            };
            let ip: IpAddr = h
                .parse()
                .map_err(|_| bad("not an IPv6 address in brackets"))?;
            (Host::Ip(ip), port)
        } else {
            let (h, p) = match s.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            };
            if h.contains(':') {
                return Err(bad(
                    "write IPv6 addresses in brackets, such as [2001:db8::1]:443",
                ));
            }
            let host = match h.parse::<IpAddr>() {
                Ok(ip) => Host::Ip(ip),
                Err(_) => Host::Name(DnsName::parse(h).map_err(|e| bad(&e))?.0),
            };
            (host, p)
        };
        let port = match (port, default_port) {
            (Some(p), _) => match p.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => return Err(bad("the port must be a number from 1 to 65535")),
            },
            (None, Some(p)) => p,
            (None, None) => return Err(bad("expected host:port, such as example.com:443")),
        };
        Ok(HostPort(Target {
            written: s.to_string(),
            host,
            port,
        }))
    }
}

impl<'de> Deserialize<'de> for HostPort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, |s| HostPort::parse(s, None))
    }
}

/// A DNS server address: an IP literal, with an optional port (default `P`).
/// Control resolvers are addressed by IP: they must not depend on DNS.
#[derive(Debug, Clone, Copy)]
struct ServerAddr<const P: u16>(SocketAddr);

impl<'de, const P: u16> Deserialize<'de> for ServerAddr<P> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, |s| {
            let hp = HostPort::parse(s, Some(P))?;
            match hp.0.host {
                Host::Ip(ip) => Ok(ServerAddr(SocketAddr::new(ip, hp.0.port))),
                Host::Name(_) => Err(format!(
                    "invalid resolver address {s:?}: must be an IP address (a resolver must not depend on DNS)"
                )),
            }
        })
    }
}

/// A DoH URL: `https://IP[:port][/path]`.
#[derive(Debug, Clone)]
struct DohUrl {
    addr: SocketAddr,
    path: String,
}

impl<'de> Deserialize<'de> for DohUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, |s| {
            let rest = s
                .strip_prefix("https://")
                .ok_or_else(|| format!("invalid DoH URL {s:?}: must start with https://"))?;
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/dns-query"),
            };
            let addr = ServerAddr::<443>::deserialize(
                de::value::StrDeserializer::<de::value::Error>::new(authority),
            )
            .map_err(|_| {
                format!("invalid DoH URL {s:?}: the host must be an IP address (a resolver must not depend on DNS)")
            })?;
            Ok(DohUrl {
                addr: addr.0,
                path: path.to_string(),
            })
        })
    }
}

// ---------------------------------------------------------------------------
// Validation of what spans several keys

struct Validator<'a> {
    file: &'a str,
    base: &'a Path,
}

impl Validator<'_> {
    fn err(
        &self,
        loc: Option<&serde_saphyr::Location>,
        path: String,
        message: String,
    ) -> ConfigError {
        let (line, column) = loc
            .map(|l| (l.line() as usize, l.column() as usize))
            .unwrap_or((0, 0));
        ConfigError::Invalid {
            file: self.file.to_string(),
            line,
            column,
            path,
            message,
        }
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let listen = match raw.listen {
            Some(l) => l.0,
            // The constant parses: checked by a unit test.
            None => DEFAULT_LISTEN
                .parse()
                .expect("DEFAULT_LISTEN is a socket address"),
        };
        let timeout = raw.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0);
        let top_ranges: Vec<IpNet> = raw.allowed_ranges.iter().map(|c| c.0).collect();

        let mut resolvers = vec![Resolver {
            name: SYSTEM_RESOLVER.into(),
            kind: ResolverKind::UdpAndTcp(system_servers(Path::new(DEFAULT_RESOLV_CONF))),
        }];
        for (name, r) in raw.resolvers.0 {
            let kind = self.resolver(&name, r)?;
            if name == SYSTEM_RESOLVER {
                resolvers[0].kind = kind;
            } else {
                resolvers.push(Resolver { name, kind });
            }
        }

        let Some(raw_services) = raw.services else {
            return Err(self.err(
                None,
                "services".into(),
                "no services configured: add at least one".into(),
            ));
        };
        if raw_services.0.is_empty() {
            return Err(self.err(
                None,
                "services".into(),
                "no services configured: add at least one".into(),
            ));
        }
        let mut services = Vec::new();
        for (name, spanned) in raw_services.0 {
            services.push(self.service(&name, spanned, timeout, &top_ranges, &resolvers)?);
        }
        let mut labels = Vec::new();
        for (name, value) in raw.labels.0 {
            let path = format!("labels.{name}");
            let e = |msg: String| self.err(Some(&value.referenced), path.clone(), msg);
            let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !name.starts_with("__");
            if !valid {
                return Err(e(format!(
                    "invalid label name {name:?}: letters, digits and `_`, not starting with a digit or `__`"
                )));
            }
            if RESERVED_LABELS.contains(&name.as_str()) {
                return Err(e(format!(
                    "label name {name:?} is reserved: the exporter's series or Prometheus use it"
                )));
            }
            let v = expand_env(&value.value).map_err(&e)?;
            if v.is_empty() {
                return Err(e(format!(
                    "the value {:?} is empty: Prometheus drops a label with an empty value",
                    value.value
                )));
            }
            labels.push((name, v));
        }
        let mut modules = Vec::new();
        for (name, m) in raw.modules.0 {
            modules.push(self.module(&name, m, timeout, &resolvers)?);
        }
        let checks: usize = services.iter().map(|s| s.checks.len()).sum();
        let max_concurrent_checks = match raw.max_concurrent_checks {
            None => DEFAULT_MAX_CONCURRENT_CHECKS.max(checks),
            Some(m) if m.value == 0 => {
                return Err(self.err(
                    Some(&m.referenced),
                    "max_concurrent_checks".into(),
                    "must be at least 1".into(),
                ));
            }
            Some(m) if m.value < checks => {
                return Err(self.err(
                    Some(&m.referenced),
                    "max_concurrent_checks".into(),
                    format!(
                        "{} is less than the {checks} checks the services define: a scrape of all of them could never start",
                        m.value
                    ),
                ));
            }
            Some(m) => m.value,
        };
        Ok(Config {
            file: PathBuf::from(self.file),
            listen,
            max_concurrent_checks,
            resolvers,
            services,
            labels,
            min_interval: raw.min_interval.map_or(Duration::ZERO, |d| d.0),
            allowed_ranges: top_ranges,
            modules,
            probe_allow: raw.probe_allow.into_iter().map(|p| p.0).collect(),
        })
    }

    fn module(
        &self,
        name: &str,
        m: Spanned<RawModule>,
        top_timeout: Duration,
        resolvers: &[Resolver],
    ) -> Result<Module, ConfigError> {
        let path = format!("modules.{name}");
        let loc = m.referenced;
        let m = m.value;
        let e = |msg: String| self.err(Some(&loc), path.clone(), msg);
        if !valid_label_name(name) {
            return Err(e(format!(
                "invalid module name {name:?}: use letters, digits, `_`, `-` and `.`"
            )));
        }
        let kind_name = match m.kind {
            ModuleKind::Dns => "dns",
            ModuleKind::Tcp => "tcp",
            ModuleKind::Tls => "tls",
            ModuleKind::CallPort => "call_port",
            ModuleKind::Http => "http",
            ModuleKind::Download => "download",
            ModuleKind::Quic => "quic",
        };
        // Which options each kind takes.
        let given: [(&str, bool, &[&str]); 14] = [
            ("resolver", m.resolver.is_some(), &["dns"]),
            ("type", m.record_type.is_some(), &["dns"]),
            ("sni", m.sni.is_some(), &["tls", "quic"]),
            (
                "ca_file",
                m.ca_file.is_some(),
                &["tls", "http", "download", "quic"],
            ),
            ("insecure", m.insecure, &["tls", "http", "download", "quic"]),
            ("max_bytes", m.max_bytes.is_some(), &["download"]),
            ("min_rate", m.min_rate.is_some(), &["download"]),
            ("stall_after", m.stall_after.is_some(), &["download"]),
            ("alpn", m.alpn.is_some(), &["quic"]),
            ("transport", m.transport.is_some(), &["call_port"]),
            ("method", m.method.is_some(), &["call_port"]),
            ("status", m.status.is_some(), &["http"]),
            ("max_redirects", m.max_redirects.is_some(), &["http"]),
            ("max_body", m.max_body.is_some(), &["http"]),
        ];
        for (key, set, kinds) in given {
            if set && !kinds.contains(&kind_name) {
                return Err(e(format!("`{key}` does not apply to a {kind_name} module")));
            }
        }
        if m.insecure && m.ca_file.is_some() {
            return Err(e("`insecure: true` and `ca_file` exclude each other".into()));
        }
        let trust = self.trust(m.insecure, m.ca_file.as_deref(), &loc, &path)?;
        let spec = match m.kind {
            ModuleKind::Dns => {
                let resolver = match &m.resolver {
                    Some(r) => resolvers
                        .iter()
                        .position(|x| x.name == r.value)
                        .ok_or_else(|| {
                            let known: Vec<&str> =
                                resolvers.iter().map(|x| x.name.as_str()).collect();
                            self.err(
                                Some(&r.referenced),
                                format!("{path}.resolver"),
                                format!(
                                    "unknown resolver {:?}: known resolvers are {}",
                                    r.value,
                                    known.join(", ")
                                ),
                            )
                        })?,
                    None => 0,
                };
                ModuleSpec::Dns {
                    resolver,
                    record_type: m.record_type.unwrap_or(RecordType::A),
                }
            }
            ModuleKind::Tcp => ModuleSpec::Tcp,
            ModuleKind::Tls => ModuleSpec::Tls {
                sni: m.sni.map(|s| s.0),
                trust,
            },
            ModuleKind::CallPort => {
                let transport = match m.transport {
                    Some(TransportName::Tcp) => Transport::Tcp,
                    _ => Transport::Udp,
                };
                let method = match (transport, m.method) {
                    (Transport::Udp, Some(CallMethod::Connect)) => {
                        return Err(e("`method: connect` needs `transport: tcp`".into()));
                    }
                    (Transport::Udp, _) => CallMethod::Stun,
                    (Transport::Tcp, m) => m.unwrap_or(CallMethod::Connect),
                };
                ModuleSpec::CallPort { transport, method }
            }
            ModuleKind::Http => ModuleSpec::Http {
                status: m
                    .status
                    .map(|v| v.iter().map(|r| (r.0, r.1)).collect())
                    .filter(|v: &Vec<(u16, u16)>| !v.is_empty())
                    .unwrap_or_else(|| vec![DEFAULT_HTTP_STATUS]),
                max_redirects: m.max_redirects.unwrap_or(0),
                max_body: m.max_body.map_or(DEFAULT_MAX_BODY, |s| s.0),
                trust,
            },
            ModuleKind::Download => ModuleSpec::Download {
                max_bytes: m.max_bytes.map_or(DEFAULT_DOWNLOAD_BYTES, |s| s.0),
                min_rate: m.min_rate.map(|s| s.0),
                stall_after: m.stall_after.map_or(DEFAULT_STALL_AFTER, |d| d.0),
                trust,
            },
            ModuleKind::Quic => {
                let alpn = m.alpn.unwrap_or_else(|| vec!["h3".into()]);
                if alpn.is_empty() || alpn.iter().any(|a| a.is_empty() || a.len() > 255) {
                    return Err(e(
                        "`alpn` needs at least one protocol of 1 to 255 bytes, such as h3".into(),
                    ));
                }
                ModuleSpec::Quic {
                    sni: m.sni.map(|s| s.0),
                    alpn,
                    trust,
                }
            }
        };
        Ok(Module {
            name: name.to_string(),
            timeout: m.timeout.map_or(top_timeout, |d| d.0),
            spec,
        })
    }

    fn resolver(&self, name: &str, r: Spanned<RawResolver>) -> Result<ResolverKind, ConfigError> {
        let path = format!("resolvers.{name}");
        let loc = r.referenced;
        let r = r.value;
        let e = |msg: String| self.err(Some(&loc), path.clone(), msg);
        if !valid_label_name(name) {
            return Err(e(format!(
                "invalid resolver name {name:?}: use letters, digits, `_`, `-` and `.`"
            )));
        }
        let set = [
            r.resolv_conf.is_some(),
            r.udp.is_some(),
            r.tcp.is_some(),
            r.dot.is_some(),
            r.doh.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if set != 1 {
            return Err(e(
                "a resolver takes exactly one of `resolv_conf`, `udp`, `tcp`, `dot`, `doh`".into(),
            ));
        }
        let encrypted = r.dot.is_some() || r.doh.is_some();
        if !encrypted && (r.server_name.is_some() || r.ca_file.is_some()) {
            return Err(e(
                "`server_name` and `ca_file` apply only to `dot` and `doh` resolvers".into(),
            ));
        }
        if r.resolv_conf.is_some() && name != SYSTEM_RESOLVER {
            return Err(e(format!(
                "`resolv_conf` applies only to the `{SYSTEM_RESOLVER}` resolver"
            )));
        }
        let trust = match &r.ca_file {
            Some(f) => self.ca_file(f, Some(&loc), &format!("{path}.ca_file"))?,
            None => Trust::WebPki,
        };
        if let Some(f) = r.resolv_conf {
            let p = self.base.join(&f);
            let text = std::fs::read_to_string(&p)
                .map_err(|err| e(format!("cannot read resolv_conf {}: {err}", p.display())))?;
            let servers = parse_resolv_conf(&text);
            if servers.is_empty() {
                return Err(e(format!(
                    "resolv_conf {} lists no nameserver",
                    p.display()
                )));
            }
            return Ok(ResolverKind::UdpAndTcp(servers));
        }
        if let Some(a) = r.udp {
            return Ok(ResolverKind::Udp(a.0));
        }
        if let Some(a) = r.tcp {
            return Ok(ResolverKind::Tcp(a.0));
        }
        let server_name =
            |addr: SocketAddr| r.server_name.clone().map_or(addr.ip().to_string(), |n| n.0);
        if let Some(a) = r.dot {
            return Ok(ResolverKind::Dot {
                addr: a.0,
                server_name: server_name(a.0),
                trust,
            });
        }
        match r.doh {
            Some(u) => Ok(ResolverKind::Doh {
                addr: u.addr,
                server_name: server_name(u.addr),
                path: u.path,
                trust,
            }),
            None => Err(e("a resolver needs an address".into())),
        }
    }

    /// The trust of an entry at `path`: none with `insecure`, else its
    /// `ca_file`, else the compiled-in roots.
    fn trust(
        &self,
        insecure: bool,
        ca_file: Option<&str>,
        loc: &serde_saphyr::Location,
        path: &str,
    ) -> Result<Trust, ConfigError> {
        match (insecure, ca_file) {
            (true, _) => Ok(Trust::Insecure),
            (false, Some(f)) => self.ca_file(f, Some(loc), &format!("{path}.ca_file")),
            (false, None) => Ok(Trust::WebPki),
        }
    }

    fn ca_file(
        &self,
        f: &str,
        loc: Option<&serde_saphyr::Location>,
        path: &str,
    ) -> Result<Trust, ConfigError> {
        let p = self.base.join(f);
        let e = |msg: String| self.err(loc, path.to_string(), msg);
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&p)
            .map_err(|err| e(format!("cannot read ca_file {}: {err}", p.display())))?
            .collect::<Result<_, _>>()
            .map_err(|err| e(format!("ca_file {} is not valid PEM: {err}", p.display())))?;
        if certs.is_empty() {
            return Err(e(format!("ca_file {} holds no certificate", p.display())));
        }
        let mut roots = RootCertStore::empty();
        for c in certs {
            roots
                .add(c)
                .map_err(|err| e(format!("ca_file {}: bad certificate: {err}", p.display())))?;
        }
        Ok(Trust::CaFile {
            path: p,
            roots: Arc::new(roots),
        })
    }

    fn service(
        &self,
        name: &str,
        spanned: Spanned<RawService>,
        top_timeout: Duration,
        top_ranges: &[IpNet],
        resolvers: &[Resolver],
    ) -> Result<Service, ConfigError> {
        let at = format!("services.{name}");
        let svc_loc = spanned.referenced;
        if !valid_label_name(name) {
            return Err(self.err(
                Some(&svc_loc),
                at,
                format!("invalid service name {name:?}: use letters, digits, `_`, `-` and `.`"),
            ));
        }
        let raw = spanned.value;
        let resolver_index = |r: &Spanned<String>, path: String| -> Result<usize, ConfigError> {
            resolvers
                .iter()
                .position(|x| x.name == r.value)
                .ok_or_else(|| {
                    let known: Vec<&str> = resolvers.iter().map(|x| x.name.as_str()).collect();
                    self.err(
                        Some(&r.referenced),
                        path,
                        format!(
                            "unknown resolver {:?}: known resolvers are {}",
                            r.value,
                            known.join(", ")
                        ),
                    )
                })
        };
        let resolve_with = match &raw.resolve_with {
            Some(r) => resolver_index(r, format!("{at}.resolve_with"))?,
            None => 0,
        };
        let timeout = raw.timeout.map_or(top_timeout, |d| d.0);
        let family = raw.ip_family.unwrap_or_default();
        let mut allowed_ranges = top_ranges.to_vec();
        allowed_ranges.extend(raw.allowed_ranges.iter().map(|c| c.0));

        let mut checks = Vec::new();
        if let Some(dns) = raw.dns {
            let rs = match &dns.resolvers {
                Some(list) if list.is_empty() => {
                    return Err(self.err(
                        Some(&svc_loc),
                        format!("{at}.dns.resolvers"),
                        "empty list: name at least one resolver".into(),
                    ));
                }
                Some(list) => list
                    .iter()
                    .enumerate()
                    .map(|(i, r)| resolver_index(r, format!("{at}.dns.resolvers[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?,
                None => vec![0],
            };
            let types = dns.types.unwrap_or_else(|| vec![RecordType::A]);
            if types.is_empty() {
                return Err(self.err(
                    Some(&svc_loc),
                    format!("{at}.dns.types"),
                    "empty list: name A and/or AAAA".into(),
                ));
            }
            if dns.names.is_empty() {
                return Err(self.err(
                    Some(&svc_loc),
                    format!("{at}.dns.names"),
                    "empty list: name at least one DNS name".into(),
                ));
            }
            let mut seen = HashSet::new();
            for (i, n) in dns.names.iter().enumerate() {
                if !seen.insert(n.value.0.clone()) {
                    return Err(self.err(
                        Some(&n.referenced),
                        format!("{at}.dns.names[{i}]"),
                        format!("duplicate name {:?}", n.value.0),
                    ));
                }
            }
            let mut seen_r = HashSet::new();
            for (i, (r, spanned)) in rs.iter().zip(dns.resolvers.iter().flatten()).enumerate() {
                if !seen_r.insert(*r) {
                    return Err(self.err(
                        Some(&spanned.referenced),
                        format!("{at}.dns.resolvers[{i}]"),
                        format!("duplicate resolver {:?}", resolvers[*r].name),
                    ));
                }
            }
            for n in &dns.names {
                for &resolver in &rs {
                    for &record_type in &types {
                        checks.push(Check::Dns(DnsCheck {
                            name: n.value.0.clone(),
                            resolver,
                            record_type,
                            timeout,
                        }));
                    }
                }
            }
        }

        let mut seen = HashSet::new();
        for (i, entry) in raw.tcp.into_iter().enumerate() {
            let o = entry.value.0;
            let t = o.target.0;
            if !seen.insert(t.written.clone()) {
                return Err(self.err(
                    Some(&entry.referenced),
                    format!("{at}.tcp[{i}]"),
                    format!("duplicate tcp target {:?}", t.written),
                ));
            }
            checks.push(Check::Tcp(TcpCheck {
                target: t,
                timeout: o.timeout.map_or(timeout, |d| d.0),
                family: o.ip_family.unwrap_or(family),
                // Checked when the entry was read.
                all_addresses: all_addresses(o.all_addresses, o.max_addresses).unwrap_or(None),
            }));
        }

        let mut seen = HashSet::new();
        for (i, entry) in raw.tls.into_iter().enumerate() {
            let path = format!("{at}.tls[{i}]");
            let o = entry.value.0;
            let Some(HostPort(target)) = o.target else {
                return Err(self.err(
                    Some(&entry.referenced),
                    path,
                    "missing field `target`".into(),
                ));
            };
            let sni = match (o.sni, &target.host) {
                (Some(s), _) => Some(s.0),
                (None, Host::Name(n)) => Some(n.clone()),
                (None, Host::Ip(_)) => None,
            };
            if !seen.insert((target.written.clone(), sni.clone())) {
                return Err(self.err(
                    Some(&entry.referenced),
                    path,
                    format!(
                        "duplicate tls check of {:?} with the same sni",
                        target.written
                    ),
                ));
            }
            let trust = self.trust(o.insecure, o.ca_file.as_deref(), &entry.referenced, &path)?;
            let control_sni = o
                .control_sni
                .or_else(|| raw.control_sni.clone())
                .map(|n| n.0)
                // A neutral name equal to the real one would prove nothing.
                .filter(|c| sni.as_ref() != Some(c));
            checks.push(Check::Tls(TlsCheck {
                target,
                sni,
                trust,
                timeout: o.timeout.map_or(timeout, |d| d.0),
                family: o.ip_family.unwrap_or(family),
                // Checked when the entry was read.
                all_addresses: all_addresses(o.all_addresses, o.max_addresses).unwrap_or(None),
                control_sni,
            }));
        }

        let mut seen = HashSet::new();
        for (i, entry) in raw.call_ports.into_iter().enumerate() {
            let path = format!("{at}.call_ports[{i}]");
            let e = |msg: &str| self.err(Some(&entry.referenced), path.clone(), msg.to_string());
            let RawCallPort {
                udp,
                tcp,
                method,
                timeout: t,
                ip_family,
            } = entry.value;
            let (target, transport, method) = match (udp, tcp, method) {
                (Some(HostPort(t)), None, None | Some(CallMethod::Stun)) => {
                    (t, Transport::Udp, CallMethod::Stun)
                }
                (Some(_), None, Some(CallMethod::Connect)) => {
                    return Err(e(
                        "`method: connect` needs `tcp`: UDP has no connection; a udp call port is probed with STUN",
                    ));
                }
                (None, Some(HostPort(t)), m) => {
                    (t, Transport::Tcp, m.unwrap_or(CallMethod::Connect))
                }
                _ => return Err(e("a call port takes exactly one of `udp` and `tcp`")),
            };
            if !seen.insert((target.written.clone(), transport, method)) {
                return Err(e(&format!(
                    "duplicate call port {} {} {:?}",
                    transport.as_str(),
                    method.as_str(),
                    target.written
                )));
            }
            checks.push(Check::CallPort(CallPortCheck {
                target,
                transport,
                method,
                timeout: t.map_or(timeout, |d| d.0),
                family: ip_family.unwrap_or(family),
            }));
        }

        let mut seen = HashSet::new();
        for (i, entry) in raw.http.into_iter().enumerate() {
            let path = format!("{at}.http[{i}]");
            let o = entry.value.0;
            if !seen.insert(o.url.written.clone()) {
                return Err(self.err(
                    Some(&entry.referenced),
                    path,
                    format!("duplicate http check of {:?}", o.url.written),
                ));
            }
            let trust = self.trust(o.insecure, o.ca_file.as_deref(), &entry.referenced, &path)?;
            checks.push(Check::Http(HttpCheck {
                written: o.url.written,
                url: o.url.url,
                status: o
                    .status
                    .map(|v| v.iter().map(|r| (r.0, r.1)).collect())
                    .filter(|v: &Vec<(u16, u16)>| !v.is_empty())
                    .unwrap_or_else(|| vec![DEFAULT_HTTP_STATUS]),
                max_redirects: o.max_redirects.unwrap_or(0),
                max_body: o.max_body.map_or(DEFAULT_MAX_BODY, |s| s.0),
                trust,
                timeout: o.timeout.map_or(timeout, |d| d.0),
                family: o.ip_family.unwrap_or(family),
            }));
        }

        let mut seen = HashSet::new();
        for (i, entry) in raw.download.into_iter().enumerate() {
            let path = format!("{at}.download[{i}]");
            let o = entry.value.0;
            if !seen.insert(o.url.written.clone()) {
                return Err(self.err(
                    Some(&entry.referenced),
                    path,
                    format!("duplicate download of {:?}", o.url.written),
                ));
            }
            let trust = self.trust(o.insecure, o.ca_file.as_deref(), &entry.referenced, &path)?;
            checks.push(Check::Download(DownloadCheck {
                written: o.url.written,
                url: o.url.url,
                max_bytes: o.max_bytes.map_or(DEFAULT_DOWNLOAD_BYTES, |s| s.0),
                min_rate: o.min_rate.map(|s| s.0),
                stall_after: o.stall_after.map_or(DEFAULT_STALL_AFTER, |d| d.0),
                trust,
                timeout: o.timeout.map_or(timeout, |d| d.0),
                family: o.ip_family.unwrap_or(family),
            }));
        }

        let mut seen = HashSet::new();
        for (i, entry) in raw.quic.into_iter().enumerate() {
            let path = format!("{at}.quic[{i}]");
            let o = entry.value.0;
            let Some(HostPort(target)) = o.target else {
                return Err(self.err(
                    Some(&entry.referenced),
                    path,
                    "missing field `target`".into(),
                ));
            };
            let sni = match (o.sni, &target.host) {
                (Some(s), _) => Some(s.0),
                (None, Host::Name(n)) => Some(n.clone()),
                (None, Host::Ip(_)) => None,
            };
            if !seen.insert((target.written.clone(), sni.clone())) {
                return Err(self.err(
                    Some(&entry.referenced),
                    path,
                    format!(
                        "duplicate quic check of {:?} with the same sni",
                        target.written
                    ),
                ));
            }
            let trust = self.trust(o.insecure, o.ca_file.as_deref(), &entry.referenced, &path)?;
            checks.push(Check::Quic(QuicCheck {
                target,
                sni,
                alpn: o.alpn.unwrap_or_else(|| vec!["h3".into()]),
                trust,
                timeout: o.timeout.map_or(timeout, |d| d.0),
                family: o.ip_family.unwrap_or(family),
            }));
        }

        if checks.is_empty() {
            return Err(self.err(
                Some(&svc_loc),
                at,
                "service has no checks: add dns, tcp, tls, call_ports, http, download or quic"
                    .into(),
            ));
        }
        Ok(Service {
            name: name.to_string(),
            resolve_with,
            allowed_ranges,
            checks,
        })
    }
}

/// Names that become label values are kept to a safe alphabet.
fn valid_label_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// The nameservers of a resolv.conf (port 53). Other directives are ignored:
/// configured names are queried as absolute names, with our own timeout.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next()? != "nameserver" {
                return None;
            }
            // A scoped IPv6 address (fe80::1%eth0) keeps only the address.
            let addr = words.next()?.split('%').next()?;
            addr.parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .collect()
}

/// The system resolver's servers when the config does not set them: those
/// of `path`, or, as resolv.conf(5) specifies when none is listed, the
/// local host.
fn system_servers(path: &Path) -> Vec<SocketAddr> {
    let servers = std::fs::read_to_string(path)
        .map(|t| parse_resolv_conf(&t))
        .unwrap_or_default();
    if servers.is_empty() {
        tracing::debug!(file = %path.display(), "no nameserver listed; using 127.0.0.1:53 as resolv.conf(5) specifies");
        return vec![SocketAddr::from(([127, 0, 0, 1], 53))];
    }
    servers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("t.yaml"))
    }

    #[test]
    fn default_listen_parses() {
        assert!(DEFAULT_LISTEN.parse::<SocketAddr>().is_ok());
    }

    #[test]
    fn short_and_long_forms_and_defaults() {
        let c = parse(
            "resolvers:\n  system: { udp: \"127.0.0.1:5300\" }\n  lab: { tcp: \"127.0.0.1\" }\n\
             services:\n  a:\n    timeout: 2s\n    dns: { names: [Example.COM.], resolvers: [system, lab], types: [A, AAAA] }\n    tcp: [\"example.com:443\", { target: \"[::1]:80\", timeout: 1s }]\n    tls:\n      - 1.2.3.4:443\n      - { target: \"example.com:443\", sni: other.example, insecure: true }\n",
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9799");
        assert!(matches!(c.resolvers[0].kind, ResolverKind::Udp(a) if a.port() == 5300));
        assert!(matches!(c.resolvers[1].kind, ResolverKind::Tcp(a) if a.port() == 53));
        let s = &c.services[0];
        assert_eq!(s.checks.len(), 4 + 2 + 2);
        match &s.checks[0] {
            Check::Dns(d) => {
                assert_eq!(d.name, "example.com");
                assert_eq!(d.timeout, Duration::from_secs(2));
            }
            other => panic!("{other:?}"),
        }
        match &s.checks[5] {
            Check::Tcp(t) => {
                assert_eq!(t.target.host, Host::Ip("::1".parse().unwrap()));
                assert_eq!(t.timeout, Duration::from_secs(1));
            }
            other => panic!("{other:?}"),
        }
        match (&s.checks[6], &s.checks[7]) {
            (Check::Tls(a), Check::Tls(b)) => {
                assert_eq!(a.sni, None);
                assert_eq!(b.sni.as_deref(), Some("other.example"));
                assert!(matches!(b.trust, Trust::Insecure));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn probe_allow_rules() {
        let rule = |s: &str| AllowRule::parse(s).unwrap();
        let name = |n: &str| Host::Name(n.into());
        let ip = |i: &str| Host::Ip(i.parse().unwrap());
        let r = rule("*.whatsapp.net:443");
        assert!(r.allows(&name("e1.whatsapp.net"), Some(443)));
        assert!(r.allows(&name("a.b.whatsapp.net"), Some(443)));
        assert!(!r.allows(&name("e1.whatsapp.net"), Some(5222)));
        assert!(!r.allows(&name("whatsapp.net.evil.example"), Some(443)));
        assert!(
            !r.allows(&name("e1.whatsapp.net"), None),
            "a port rule never admits a port-less DNS probe"
        );
        let r = rule("10.0.0.0/8");
        assert!(r.allows(&ip("10.1.2.3"), Some(1)));
        assert!(!r.allows(&ip("11.0.0.1"), Some(1)));
        assert!(!r.allows(&name("10.example"), Some(1)));
        let r = rule("[2001:db8::/32]:3478");
        assert!(r.allows(&ip("2001:db8::7"), Some(3478)));
        assert!(!r.allows(&ip("2001:db8::7"), Some(3479)));
        assert!(rule("2001:db8::/32").allows(&ip("2001:db8::1"), Some(9)));
        assert!(rule("127.0.0.1:80").allows(&ip("127.0.0.1"), Some(80)));
        for bad in ["*.ex ample", "10.0.0.0/8:0", "host:port", "[::1", ""] {
            assert!(AllowRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolv_conf_parsing() {
        let text = "# comment\nsearch example.org\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\noptions ndots:2\nnameserver bogus\n";
        let got = parse_resolv_conf(text);
        assert_eq!(
            got,
            vec![
                "10.0.0.2:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
        assert_eq!(
            system_servers(Path::new("/nonexistent/resolv.conf")),
            vec!["127.0.0.1:53".parse().unwrap()]
        );
    }

    #[test]
    fn doh_url_forms() {
        let c = parse(
            "resolvers:\n  a: { doh: \"https://1.1.1.1/dns-query\", server_name: cloudflare-dns.com }\n  b: { doh: \"https://[::1]:8443\" }\nservices:\n  s: { dns: { names: [x.example], resolvers: [a, b] } }\n",
        )
        .unwrap();
        match &c.resolvers[1].kind {
            ResolverKind::Doh {
                addr,
                server_name,
                path,
                ..
            } => {
                assert_eq!(addr.to_string(), "1.1.1.1:443");
                assert_eq!(server_name, "cloudflare-dns.com");
                assert_eq!(path, "/dns-query");
            }
            other => panic!("{other:?}"),
        }
        match &c.resolvers[2].kind {
            ResolverKind::Doh {
                addr,
                server_name,
                path,
                ..
            } => {
                assert_eq!(addr.to_string(), "[::1]:8443");
                assert_eq!(server_name, "::1");
                assert_eq!(path, "/dns-query");
            }
            other => panic!("{other:?}"),
        }
    }
}
