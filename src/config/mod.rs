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
//! It does not build network clients: `engine::catalogue::Catalogue` does that from a
//! `Config`. It does read the files the config names (`ca_file`,
//! `resolv_conf`), so that `--config.check` catches a missing one.
//!
//! # Layout
//!
//! - `decode`: YAML text → raw structs; [`ConfigError`].
//! - `raw`: the serde structs, one per check kind, shared by a service's
//!   entries and the `/probe` modules.
//! - `values`: the self-validating leaf values ([`Target`], durations,
//!   sizes, names, URLs…).
//! - `validate`: raw → [`Config`]; every rule that spans keys, once.
//! - one module per check kind (`dns`, `tcp`, `tls`, `call_port`, `http`,
//!   `quic`; `transfer` for downloads and uploads): its options, its check
//!   ("options + target") and its validation.
//! - `check`: [`Check`], [`CheckOptions`], [`Module`], [`Trust`];
//!   `kind`: [`CheckKind`].
//! - `resolver`: [`Resolver`]s and resolv.conf; `allow`: `probe_allow`;
//!   `web`: the `--web.config.file` [`WebConfig`].

mod allow;
mod call_port;
mod check;
mod decode;
mod dns;
mod http;
mod kind;
mod listen;
mod locate;
mod pace;
mod quic;
mod raw;
mod regime;
mod remote_write;
mod resolver;
mod tcp;
mod test_list;
mod tls;
mod transfer;
mod validate;
mod values;
mod web;
mod words;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

pub use allow::AllowRule;
pub use call_port::{CallPortCheck, CallPortOptions};
pub use check::{Check, CheckOptions, Module, NamedCheck, Trust};
pub use decode::ConfigError;
pub use dns::{DnsCheck, DnsOptions};
pub use http::{DEFAULT_HTTP_STATUS, DEFAULT_MAX_BODY, HttpCheck, HttpOptions};
pub use kind::CheckKind;
pub use listen::ListenAddress;
pub use locate::{DEFAULT_LOCATE_EVERY, DEFAULT_MAX_HOPS, Locate, MIN_LOCATE_EVERY};
pub use pace::{DEFAULT_SPREAD_PERCENT, DEFAULT_STARTS_PER_SECOND, Pace};
pub use quic::{QuicCheck, QuicOptions};
pub use regime::{Regime, Side};
pub use remote_write::{
    DEFAULT_PUSH_EVERY, DEFAULT_QUEUE_AGE, DEFAULT_QUEUE_SAMPLES, PrivateKeyDerBox, RemoteWrite,
    Secret,
};
pub use resolver::{Resolver, ResolverKind, parse_resolv_conf};
pub use tcp::{TcpCheck, TcpOptions};
pub use tls::{TlsCheck, TlsOptions};
pub use transfer::{
    DEFAULT_DOWNLOAD_BYTES, DEFAULT_STALL_AFTER, DEFAULT_UPLOAD_BYTES, TransferCheck,
    TransferOptions,
};
pub use validate::MIN_EVERY;
pub use values::{CallMethod, EchOffer, Host, IpFamily, RecordType, Target, Transport, url_target};
pub use web::{ClientAuth, WebConfig, WebTls};

/// Default listen address (the port registered for this exporter's family).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9799";
/// Default per-check timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The resolver every config has: the host's own.
pub const SYSTEM_RESOLVER: &str = "system";
/// Where the system resolver's servers come from unless configured.
pub const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";
/// The default `max_concurrent_checks` (raised to the number of configured
/// checks when there are more).
pub const DEFAULT_MAX_CONCURRENT_CHECKS: usize = 1024;
/// The largest config file read.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// The default `max_addresses` of an `all_addresses` check.
pub const DEFAULT_MAX_ADDRESSES: usize = 8;

/// Label names the exporter's own series use, or Prometheus sets: a
/// vantage label may not take them.
pub const RESERVED_LABELS: [&str; 18] = [
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
    "category",
];

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub file: PathBuf,
    /// Checks in flight at most, across rounds and `/probe` requests.
    pub max_concurrent_checks: usize,
    /// Address to serve HTTP on.
    pub listen: ListenAddress,
    /// Resolvers; index 0 is always `system`.
    pub resolvers: Vec<Resolver>,
    /// Services in file order.
    pub services: Vec<Service>,
    /// Vantage-point labels added to every probe series, `${VAR}` expanded.
    pub labels: Vec<(String, String)>,
    /// A scrape within this time of the last round's start is served from
    /// that round (zero: every scrape probes).
    pub min_interval: Duration,
    /// How a round spreads the starts of its checks.
    pub pace: Pace,
    /// The test lists read (watched with the config file by auto-reload).
    pub list_files: Vec<PathBuf>,
    /// Top-level ranges exempt from the bogon rule (ad hoc probes use these).
    pub allowed_ranges: Vec<IpNet>,
    /// Modules for ad hoc `/probe?target=&module=` requests.
    pub modules: Vec<Module>,
    /// Which ad hoc targets may be probed; empty: none.
    pub probe_allow: Vec<AllowRule>,
    /// The network regime's references (`regime:`), if any.
    pub regime: Option<Regime>,
    /// Push mode (`remote_write:`), if set.
    pub remote_write: Option<RemoteWrite>,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read = |error| ConfigError::Read {
            what: "config file",
            file: path.display().to_string(),
            error,
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
        // serde would take a list as a struct's fields in order, and the
        // complaint would be about a missing service.
        let first = text.lines().enumerate().find(|(_, l)| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#') && t != "---"
        });
        if let Some((n, l)) = first
            && (l.trim() == "-"
                || l.trim_start().starts_with('[')
                || l.trim_start().starts_with("- "))
        {
            return Err(ConfigError::Invalid {
                file,
                line: n + 1,
                column: l.len() - l.trim_start().len() + 1,
                path: String::new(),
                message: "a config file is a mapping of keys, such as `services:`, `resolvers:` and `timeout:`, not a list".into(),
            });
        }
        let raw = decode::decode(text, &file)?;
        let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
        validate::Validator {
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
    /// The category code of a service made from a test list's host.
    pub category: Option<String>,
    /// `every:`: its checks run on this timer, in the background, and
    /// scrapes serve the latest round that ended; `None`: on each scrape.
    pub every: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("t.yaml"))
    }

    #[test]
    fn default_listen_parses() {
        assert!(DEFAULT_LISTEN.parse::<ListenAddress>().is_ok());
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
    fn a_module_check_is_its_options_with_the_target() {
        let c = parse(
            "timeout: 3s\nmodules:\n  t: { kind: tls, sni: sni.example }\n  q: { kind: quic }\n  u: { kind: call_port, transport: tcp, method: stun }\n  d: { kind: dns, type: AAAA, timeout: 1s }\n\
             services:\n  a: { tcp: [\"example.com:443\"] }\n",
        )
        .unwrap();
        let check = |m: usize, target: &str| c.modules[m].check_for(target).unwrap();
        match check(0, "example.com:443") {
            Check::Tls(t) => {
                assert_eq!(t.sni.as_deref(), Some("sni.example"));
                assert_eq!(t.timeout, Duration::from_secs(3));
                assert_eq!(t.family, IpFamily::V4);
                assert!(t.all_addresses.is_none() && t.control_sni.is_none());
            }
            other => panic!("{other:?}"),
        }
        match check(1, "[::1]:443") {
            Check::Quic(q) => {
                assert_eq!(
                    (q.sni.as_deref(), q.alpn.as_slice()),
                    (None, &["h3".to_string()][..])
                )
            }
            other => panic!("{other:?}"),
        }
        match check(2, "example.com:3478") {
            Check::CallPort(p) => {
                assert_eq!((p.transport, p.method), (Transport::Tcp, CallMethod::Stun))
            }
            other => panic!("{other:?}"),
        }
        match check(3, "Example.com.") {
            Check::Dns(d) => {
                assert_eq!(
                    (d.name.as_str(), d.record_type),
                    ("example.com", RecordType::AAAA)
                );
                assert_eq!(d.timeout, Duration::from_secs(1));
            }
            other => panic!("{other:?}"),
        }
        assert!(c.modules[0].check_for("example.com").is_err());
        assert_eq!(c.modules[3].options.kind(), CheckKind::Dns);
    }

    /// The first message of `text`'s error, without the file name.
    fn refused(text: &str) -> String {
        let e = parse(text).expect_err(text).to_string();
        e.strip_prefix("t.yaml:").unwrap_or(&e).to_string()
    }

    #[test]
    fn each_bound_takes_its_edge_and_refuses_past_it() {
        let svc = |body: &str| format!("services:\n  a:\n{body}");
        // max_concurrent_checks: at least 1 and at least the checks.
        let two = "    tcp: [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n";
        let c = parse(&format!("max_concurrent_checks: 2\n{}", svc(two))).unwrap();
        assert_eq!(c.max_concurrent_checks, 2);
        assert_eq!(
            refused(&format!("max_concurrent_checks: 1\n{}", svc(two))),
            "1:24: max_concurrent_checks: 1 is less than the 2 checks the services define: a scrape of all of them could never start"
        );
        assert_eq!(
            refused(&format!("max_concurrent_checks: 0\n{}", svc(two))),
            "1:24: max_concurrent_checks: must be at least 1"
        );
        let c = parse(&svc(two)).unwrap();
        assert_eq!(c.max_concurrent_checks, DEFAULT_MAX_CONCURRENT_CHECKS);
        // A service's every: 1s is the least.
        let every = |e: &str| parse(&svc(&format!("    every: {e}\n{two}")));
        assert_eq!(
            every("1s").unwrap().services[0].every,
            Some(Duration::from_secs(1))
        );
        assert!(
            every("999ms")
                .unwrap_err()
                .to_string()
                .contains("every: must be at least 1s")
        );
        // locate: every 10s at least, max_hops 1 to 64.
        let tls = "    tls: [{ target: \"127.0.0.1:443\", sni: a.test, control_sni: b.test }]\n";
        let locate = |l: &str| parse(&svc(&format!("    locate: {l}\n{tls}")));
        let found = |c: Config| match &c.services[0].checks[0] {
            Check::Tls(t) => t.locate.map(|l| (l.every, l.max_hops)),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            found(locate("{ every: 10s, max_hops: 64 }").unwrap()),
            Some((Duration::from_secs(10), 64)),
            "a tls check with its own control_sni keeps locate"
        );
        assert_eq!(
            found(locate("{ max_hops: 1 }").unwrap()).map(|l| l.1),
            Some(1)
        );
        assert!(
            locate("{ every: 9s }")
                .unwrap_err()
                .to_string()
                .contains("must be at least 10s")
        );
        assert!(
            locate("{ max_hops: 65 }")
                .unwrap_err()
                .to_string()
                .contains("`max_hops: 65`: expected 1 to 64")
        );
        assert!(
            locate("{ max_hops: 0 }")
                .unwrap_err()
                .to_string()
                .contains("`max_hops: 0`: expected 1 to 64")
        );
        // max_addresses: 1 to 64.
        let max = |n: u32| {
            parse(&svc(&format!(
                "    tcp: [{{ target: \"a.test:1\", all_addresses: true, max_addresses: {n} }}]\n"
            )))
        };
        match &max(64).unwrap().services[0].checks[0] {
            Check::Tcp(t) => assert_eq!(t.all_addresses, Some(64)),
            other => panic!("{other:?}"),
        }
        assert!(
            max(65)
                .unwrap_err()
                .to_string()
                .contains("`max_addresses: 65`: expected 1 to 64")
        );
        assert!(
            max(0)
                .unwrap_err()
                .to_string()
                .contains("`max_addresses: 0`: expected 1 to 64")
        );
        // ALPN protocols: 1 to 255 bytes each.
        let alpn = |a: &str| {
            parse(&svc(&format!(
                "    quic: [{{ target: \"a.test:443\", alpn: [\"{a}\"] }}]\n"
            )))
        };
        let long = "x".repeat(255);
        match &alpn(&long).unwrap().services[0].checks[0] {
            Check::Quic(q) => assert_eq!(q.alpn, std::slice::from_ref(&long)),
            other => panic!("{other:?}"),
        }
        for bad in [String::new(), "x".repeat(256)] {
            let e = alpn(&bad).unwrap_err().to_string();
            assert!(
                e.contains(&format!("invalid ALPN protocol {bad:?}: 1 to 255 bytes")),
                "{e}"
            );
        }
    }

    #[test]
    fn names_and_labels_keep_to_their_alphabets() {
        let svc = |name: &str| {
            parse(&format!(
                "services:\n  \"{name}\":\n    tcp: [\"127.0.0.1:1\"]\n"
            ))
        };
        let long = "s".repeat(128);
        for good in ["a", "A-b_c.9", long.as_str()] {
            assert_eq!(svc(good).unwrap().services[0].name, good);
        }
        for bad in ["", "a b", "a/b", &"s".repeat(129)] {
            let e = svc(bad).unwrap_err().to_string();
            assert!(
                e.contains(&format!(
                    "invalid service name {bad:?}: use letters, digits"
                )),
                "{e}"
            );
        }
        let label = |name: &str| {
            parse(&format!(
                "labels: {{ {name}: v }}\nservices:\n  a:\n    tcp: [\"127.0.0.1:1\"]\n"
            ))
        };
        for good in ["site", "_x", "a1_B"] {
            assert_eq!(
                label(good).unwrap().labels,
                [(good.to_string(), "v".to_string())]
            );
        }
        for bad in ["1a", "a-b", "__x", "a.b"] {
            let e = label(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("invalid label name {bad:?}")), "{e}");
        }
    }

    #[test]
    fn defaults_of_the_transfer_kinds() {
        let c = parse(
            "services:\n  a:\n    http: [\"http://a.test/\"]\n    download: [\"http://a.test/d\"]\n    upload: [\"http://a.test/u\"]\n",
        )
        .unwrap();
        let checks = &c.services[0].checks;
        match (&checks[0], &checks[1], &checks[2]) {
            (Check::Http(h), Check::Download(d), Check::Upload(u)) => {
                assert_eq!(h.options.max_body, 64 * 1024);
                assert!(h.options.accepts(200) && h.options.accepts(399));
                assert!(!h.options.accepts(199) && !h.options.accepts(400));
                assert_eq!(d.options.bytes, 1 << 20);
                assert_eq!(u.options.bytes, 64 * 1024);
            }
            other => panic!("{other:?}"),
        }
        // Ranges are inclusive, a single code is a range of one.
        let c = parse("services:\n  a:\n    http: [{ url: \"http://a.test/\", status: [204, \"301-302\", \"418-418\"] }]\n").unwrap();
        let Check::Http(h) = &c.services[0].checks[0] else {
            panic!()
        };
        let accepted: Vec<u16> = (100..600).filter(|&c| h.options.accepts(c)).collect();
        assert_eq!(accepted, [204, 301, 302, 418]);
    }

    #[test]
    fn duplicates_in_a_dns_list_are_refused() {
        let dns = |body: &str| refused(&format!("services:\n  a:\n    dns: {{ {body} }}\n"));
        assert_eq!(
            dns("names: [a.test, b.test, a.test]"),
            "3:36: services.a.dns.names[2]: duplicate name \"a.test\""
        );
        assert_eq!(
            dns("names: [a.test], resolvers: [system, system]"),
            "3:49: services.a.dns.resolvers[1]: duplicate resolver \"system\""
        );
    }

    #[test]
    fn each_kind_answers_its_family_and_timeout() {
        let c = parse(
            "services:\n  a:\n    timeout: 2s\n    ip_family: ipv6\n    dns: { names: [x.example] }\n    tcp: [\"x.example:443\"]\n    tls: [\"x.example:443\"]\n    call_ports: [{ udp: \"x.example:3478\" }]\n    http: [\"http://x.example/\"]\n    download: [\"http://x.example/f\"]\n    upload: [\"http://x.example/u\"]\n    quic: [\"x.example:443\"]\n",
        )
        .unwrap();
        let got: Vec<(CheckKind, IpFamily, Duration)> = c.services[0]
            .checks
            .iter()
            .map(|ch| (ch.kind(), ch.family(), ch.timeout()))
            .collect();
        assert_eq!(got.len(), CheckKind::ALL.len(), "{got:?}");
        for (kind, family, timeout) in got {
            // A DNS check's record type decides its family.
            let want = if kind == CheckKind::Dns {
                IpFamily::V4
            } else {
                IpFamily::V6
            };
            assert_eq!(
                (family, timeout),
                (want, Duration::from_secs(2)),
                "{kind:?}"
            );
        }
    }
}
