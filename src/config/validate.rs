//! The validated side: a [`Validator`] turns the decoded `Raw*` structs into
//! a [`Config`] of checked types, applying each rule that spans keys once —
//! defaults ([`Defaults`]: timeout, address family, control SNI), trust
//! (`insecure` / `ca_file`), `all_addresses`, duplicates, references to
//! resolvers — and naming the file, line, key path and rule when one fails.
//!
//! The validation of each check kind's own options is in that kind's
//! module (`dns`, `tcp`, `tls`, …); resolvers are in `resolver`. This module
//! reads no YAML, but it does read the PEM files a config names.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_saphyr::{Location, Spanned};

use super::check::{Check, Module, Trust};
use super::decode::{ConfigError, OrderedMap};
use super::locate::Locate;
use super::raw::{RawConfig, RawModule, RawOptions, RawService};
use super::resolver::Resolver;
use super::values::{Dur, EchOffer, IpFamily, expand_env};
use super::{
    CheckOptions, Config, DEFAULT_LISTEN, DEFAULT_MAX_ADDRESSES, DEFAULT_MAX_CONCURRENT_CHECKS,
    DEFAULT_TIMEOUT, RESERVED_LABELS, Service,
};

/// The shortest `every:` of a service: its checks run this often, in the
/// background.
pub const MIN_EVERY: Duration = Duration::from_secs(1);

/// Validates the raw config read from `file`; relative paths are resolved
/// against `base`.
pub(super) struct Validator<'a> {
    /// The config file, as its errors name it.
    pub file: &'a str,
    /// Its directory.
    pub base: &'a Path,
}

/// Where a value was written: the location and key path its errors name.
#[derive(Debug, Clone)]
pub(super) struct At {
    loc: Option<Location>,
    /// The key path (`services.a.tls[0]`).
    pub path: String,
}

impl At {
    /// The value at `path`, written at `loc`.
    pub fn new(loc: Option<Location>, path: String) -> At {
        At { loc, path }
    }

    /// Its key `key` (reported at the same location).
    pub fn key(&self, key: &str) -> At {
        At::new(self.loc, format!("{}.{key}", self.path))
    }

    /// The same key path, written at `loc`.
    pub fn written_at(&self, loc: Location) -> At {
        At::new(Some(loc), self.path.clone())
    }

    /// Its list entry `i`, written at `loc`.
    pub fn item(&self, i: usize, loc: Location) -> At {
        At::new(Some(loc), format!("{}[{i}]", self.path))
    }
}

/// A service entry's or module's target (`()` for a module) and options
/// of its kind, or the first rule they break.
pub(super) type Checked<T, O> = Result<(T, O), ConfigError>;

/// What a check gets for what it leaves out: the top level's timeout, then
/// its service's timeout, `ip_family`, `control_sni`, `ech` and `locate`.
#[derive(Debug, Clone)]
pub(super) struct Defaults {
    /// Time limit.
    pub timeout: Duration,
    /// Which resolved address to use.
    pub family: IpFamily,
    /// The neutral server name of TLS and QUIC checks.
    pub control_sni: Option<String>,
    /// What TLS checks offer beside their plain handshake.
    pub ech: Option<EchOffer>,
    /// How TLS checks locate their censor.
    pub locate: Option<Locate>,
}

impl Defaults {
    /// These defaults, with `timeout` and `family` where given.
    pub fn within(&self, timeout: Option<Dur>, family: Option<IpFamily>) -> Defaults {
        Defaults {
            timeout: timeout.map_or(self.timeout, |d| d.0),
            family: family.unwrap_or(self.family),
            control_sni: self.control_sni.clone(),
            ech: self.ech,
            locate: self.locate,
        }
    }
}

impl Validator<'_> {
    /// The error of a value written at `at` that breaks the rule `message`
    /// says.
    pub fn err(&self, at: &At, message: impl Into<String>) -> ConfigError {
        let (line, column) = at
            .loc
            .map(|l| (l.line() as usize, l.column() as usize))
            .unwrap_or((0, 0));
        ConfigError::Invalid {
            file: self.file.to_string(),
            line,
            column,
            path: at.path.clone(),
            message: message.into(),
        }
    }

    /// The whole config.
    pub fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let listen = match raw.listen {
            Some(l) => l.0,
            // The constant parses: checked by a unit test.
            None => DEFAULT_LISTEN
                .parse()
                .expect("DEFAULT_LISTEN is a listen address"),
        };
        let top = Defaults {
            timeout: raw.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0),
            family: IpFamily::default(),
            control_sni: None,
            ech: None,
            locate: None,
        };
        let top_ranges: Vec<IpNet> = raw.allowed_ranges.iter().map(|c| c.0).collect();
        let resolvers = self.resolvers(raw.resolvers)?;
        let no_services = || {
            self.err(
                &At::new(None, "services".into()),
                "no services configured: add at least one",
            )
        };
        // Services, or a test list that makes them.
        let raw_services = raw.services.map(|s| s.0).unwrap_or_default();
        if raw_services.is_empty() && raw.test_lists.is_empty() {
            return Err(no_services());
        }
        let services = raw_services
            .into_iter()
            .map(|(name, s)| self.service(&name, s, &top, &top_ranges, &resolvers))
            .collect::<Result<Vec<_>, _>>()?;
        let labels = self.labels(raw.labels)?;
        let modules = raw
            .modules
            .0
            .into_iter()
            .map(|(name, m)| self.module(&name, m, &top, &resolvers))
            .collect::<Result<Vec<_>, _>>()?;
        let mut services = services;
        let list_files =
            self.add_listed(raw.test_lists, &top, &top_ranges, &resolvers, &mut services)?;
        let regime = match raw.regime {
            Some(r) => Some(self.regime(r, &top, &top_ranges, &resolvers)?),
            None => None,
        };
        let remote_write = match raw.remote_write {
            Some(r) => Some(self.remote_write(r)?),
            None => None,
        };
        let checks = services.iter().map(|s| s.checks.len()).sum();
        Ok(Config {
            file: PathBuf::from(self.file),
            listen,
            max_concurrent_checks: self.max_concurrent_checks(raw.max_concurrent_checks, checks)?,
            resolvers,
            services,
            labels,
            min_interval: raw.min_interval.map_or(Duration::ZERO, |d| d.0),
            pace: self.pace(raw.pace)?,
            list_files,
            allowed_ranges: top_ranges,
            modules,
            probe_allow: raw.probe_allow,
            regime,
            remote_write,
        })
    }

    /// The vantage-point labels, `${VAR}` expanded.
    fn labels(
        &self,
        raw: OrderedMap<Spanned<String>>,
    ) -> Result<Vec<(String, String)>, ConfigError> {
        let mut labels = Vec::new();
        for (name, value) in raw.0 {
            let at = At::new(Some(value.referenced), format!("labels.{name}"));
            let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !name.starts_with("__");
            if !valid {
                return Err(self.err(&at, format!(
                    "invalid label name {name:?}: letters, digits and `_`, not starting with a digit or `__`"
                )));
            }
            if RESERVED_LABELS.contains(&name.as_str()) {
                return Err(self.err(&at, format!(
                    "label name {name:?} is reserved: the exporter's series or Prometheus use it"
                )));
            }
            let v = expand_env(&value.value).map_err(|e| self.err(&at, e))?;
            if v.is_empty() {
                return Err(self.err(
                    &at,
                    format!(
                        "the value {:?} is empty: Prometheus drops a label with an empty value",
                        value.value
                    ),
                ));
            }
            labels.push((name, v));
        }
        Ok(labels)
    }

    /// `max_concurrent_checks`, which must let a round of all `checks` start.
    fn max_concurrent_checks(
        &self,
        raw: Option<Spanned<usize>>,
        checks: usize,
    ) -> Result<usize, ConfigError> {
        let Some(m) = raw else {
            return Ok(DEFAULT_MAX_CONCURRENT_CHECKS.max(checks));
        };
        let at = At::new(Some(m.referenced), "max_concurrent_checks".into());
        if m.value == 0 {
            return Err(self.err(&at, "must be at least 1"));
        }
        if m.value < checks {
            return Err(self.err(&at, format!(
                "{} is less than the {checks} checks the services define: a scrape of all of them could never start",
                m.value
            )));
        }
        Ok(m.value)
    }

    /// A service and its checks, in file order: dns, tcp, tls, call ports,
    /// http, downloads, quic.
    fn service(
        &self,
        name: &str,
        spanned: Spanned<RawService>,
        top: &Defaults,
        top_ranges: &[IpNet],
        resolvers: &[Resolver],
    ) -> Result<Service, ConfigError> {
        let at = At::new(Some(spanned.referenced), format!("services.{name}"));
        self.label_value("service", name, &at)?;
        let raw = spanned.value;
        let resolve_with = match &raw.resolve_with {
            Some(r) => self.resolver_index(resolvers, r, &at.key("resolve_with"))?,
            None => 0,
        };
        let d = Defaults {
            control_sni: raw.control_sni.map(|n| n.0),
            ech: raw.ech,
            locate: match raw.locate {
                Some(l) => Some(self.locate(&at.key("locate").written_at(l.referenced), l.value)?),
                None => None,
            },
            ..top.within(raw.timeout, raw.ip_family)
        };
        let mut checks = match raw.dns {
            Some(dns) => self.dns(&at.key("dns"), dns, d.timeout, resolvers)?,
            None => Vec::new(),
        };
        let c = &mut checks;
        // The entries of each kind, in file order, each validated by its
        // kind's function (named as the key) and made a check.
        macro_rules! entries {
            ($($key:ident => $kind:ident),*) => {$(
                self.entries(&at.key(stringify!($key)), raw.$key, c, |at, e| {
                    self.$key(at, &d, e.0).map(|(t, o)| Check::$kind(o.check(t)))
                })?;
            )*};
        }
        entries!(tcp => Tcp, tls => Tls);
        self.entries(&at.key("call_ports"), raw.call_ports, c, |at, e| {
            let (t, o) = self.call_port(at, &d, e, "`tcp`")?;
            Ok(Check::CallPort(o.check(t)))
        })?;
        entries!(http => Http, download => Download, quic => Quic, upload => Upload);
        // A control_sni equal to the check's SNI was dropped: no verdict
        // would start a search. The service's `locate` passes such a check
        // by; an entry's own is an error.
        for c in &mut checks {
            let Check::Tls(t) = c else { continue };
            if t.locate.is_none() || t.control_sni.is_some() || t.ech.is_some() {
                continue;
            }
            if d.locate.is_none() {
                return Err(self.err(
                    &at.key("tls"),
                    format!("the tls check of {:?} has locate, but its control_sni is its own SNI: no sni_filtered verdict would start a search (use another name, or `ech: grease`)", t.target.written),
                ));
            }
            t.options.locate = None;
        }
        let located = |c: &Check| matches!(c, Check::Tls(t) if t.locate.is_some());
        if d.locate.is_some() && !checks.iter().any(located) {
            return Err(self.err(
                &at.key("locate"),
                "no tls check of this service has control_sni or `ech: grease`: no verdict would start a search",
            ));
        }
        if checks.is_empty() {
            return Err(self.err(
                &at,
                "service has no checks: add dns, tcp, tls, call_ports, http, download, upload or quic",
            ));
        }
        let every = match raw.every {
            Some(e) if e.value.0 < MIN_EVERY => {
                return Err(self.err(
                    &at.key("every").written_at(e.referenced),
                    "must be at least 1s: the service's checks run this often, in the background",
                ));
            }
            e => e.map(|e| e.value.0),
        };
        let mut allowed_ranges = top_ranges.to_vec();
        allowed_ranges.extend(raw.allowed_ranges.iter().map(|c| c.0));
        Ok(Service {
            name: name.to_string(),
            resolve_with,
            allowed_ranges,
            checks,
            category: None,
            every,
        })
    }

    /// The entries of one list of a service (`at` is the list), each made a
    /// check by `build` and appended to `checks`; a repeat is an error.
    fn entries<R>(
        &self,
        at: &At,
        list: Vec<Spanned<R>>,
        checks: &mut Vec<Check>,
        build: impl Fn(&At, R) -> Result<Check, ConfigError>,
    ) -> Result<(), ConfigError> {
        let mut seen = HashSet::new();
        for (i, entry) in list.into_iter().enumerate() {
            let at = at.item(i, entry.referenced);
            let check = build(&at, entry.value)?;
            let (message, sni) = repeat(&check);
            if !seen.insert((message.clone(), sni)) {
                return Err(self.err(&at, message));
            }
            checks.push(check);
        }
        Ok(())
    }

    /// A `/probe` module: the options of its kind, validated as a service's
    /// entry of that kind is.
    fn module(
        &self,
        name: &str,
        m: Spanned<RawModule>,
        top: &Defaults,
        resolvers: &[Resolver],
    ) -> Result<Module, ConfigError> {
        let at = At::new(Some(m.referenced), format!("modules.{name}"));
        self.label_value("module", name, &at)?;
        let kind = m.value.kind;
        let (raw, leftover) = m.value.split();
        if let Some(key) = leftover {
            let kind = kind.as_str();
            let a = if kind.starts_with('u') { "an" } else { "a" };
            return Err(self.err(&at, format!("`{key}` does not apply to {a} {kind} module")));
        }
        let options = match raw {
            RawOptions::Dns {
                resolver,
                record_type,
                timeout,
            } => CheckOptions::Dns(self.dns_module(
                &at,
                resolver,
                record_type,
                &top.within(timeout, None),
                resolvers,
            )?),
            RawOptions::Tcp(o) => CheckOptions::Tcp(self.tcp(&at, top, o)?.1),
            RawOptions::Tls(o) => CheckOptions::Tls(self.tls(&at, top, o)?.1),
            RawOptions::CallPort(o) => {
                CheckOptions::CallPort(self.call_port(&at, top, o, "`transport: tcp`")?.1)
            }
            RawOptions::Http(o) => CheckOptions::Http(self.http(&at, top, o)?.1),
            RawOptions::Download(o) => CheckOptions::Download(self.download(&at, top, o)?.1),
            RawOptions::Quic(o) => CheckOptions::Quic(self.quic(&at, top, o)?.1),
            RawOptions::Upload(o) => CheckOptions::Upload(self.upload(&at, top, o)?.1),
        };
        Ok(Module {
            name: name.to_string(),
            options,
        })
    }

    /// That the name of a `what` (service, resolver, module), a label
    /// value, keeps to a safe alphabet.
    pub fn label_value(&self, what: &str, name: &str, at: &At) -> Result<(), ConfigError> {
        let safe = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.';
        if name.is_empty() || name.len() > 128 || !name.bytes().all(safe) {
            let rule = "use letters, digits, `_`, `-` and `.`";
            return Err(self.err(at, format!("invalid {what} name {name:?}: {rule}")));
        }
        Ok(())
    }

    /// The trust of a TLS client at `at`: none with `insecure`, else its
    /// `ca_file`, else the compiled-in roots; not both.
    pub fn trust(
        &self,
        at: &At,
        insecure: bool,
        ca_file: Option<&str>,
    ) -> Result<Trust, ConfigError> {
        match (insecure, ca_file) {
            (true, Some(_)) => {
                Err(self.err(at, "`insecure: true` and `ca_file` exclude each other"))
            }
            (true, None) => Ok(Trust::Insecure),
            (false, Some(f)) => self.ca_file(&at.key("ca_file"), f),
            (false, None) => Ok(Trust::WebPki),
        }
    }

    /// The roots of the PEM file `f` (relative to the config's directory).
    pub fn ca_file(&self, at: &At, f: &str) -> Result<Trust, ConfigError> {
        let p = self.base.join(f);
        let certs = read_certs("ca_file", &p).map_err(|e| self.err(at, e))?;
        let mut roots = RootCertStore::empty();
        for c in certs {
            roots.add(c).map_err(|err| {
                self.err(
                    at,
                    format!("ca_file {}: bad certificate: {err}", p.display()),
                )
            })?;
        }
        Ok(Trust::CaFile {
            path: p,
            roots: Arc::new(roots),
        })
    }

    /// `all_addresses` and `max_addresses` as given: the number of addresses
    /// to probe, `None` for the first address only.
    pub fn all_addresses(
        &self,
        at: &At,
        all: bool,
        max: Option<usize>,
    ) -> Result<Option<usize>, ConfigError> {
        match (all, max) {
            (false, None) => Ok(None),
            (false, Some(_)) => Err(self.err(at, "`max_addresses` needs `all_addresses: true`")),
            (true, None) => Ok(Some(DEFAULT_MAX_ADDRESSES)),
            (true, Some(n)) if (1..=64).contains(&n) => Ok(Some(n)),
            (true, Some(n)) => Err(self.err(at, format!("`max_addresses: {n}`: expected 1 to 64"))),
        }
    }
}

/// The message a repeated check gets. Two checks of one list with the same
/// message and SNI are the same check.
fn repeat(check: &Check) -> (String, Option<String>) {
    match check {
        Check::Dns(c) => (format!("duplicate name {:?}", c.name), None),
        Check::Tcp(c) => (format!("duplicate tcp target {:?}", c.target.written), None),
        Check::Tls(c) => (
            format!(
                "duplicate tls check of {:?} with the same sni",
                c.target.written
            ),
            c.sni.clone(),
        ),
        Check::CallPort(c) => (
            format!(
                "duplicate call port {} {} {:?}",
                c.transport.as_str(),
                c.method.as_str(),
                c.target.written
            ),
            None,
        ),
        Check::Http(c) => (format!("duplicate http check of {:?}", c.written), None),
        Check::Download(c) => (format!("duplicate download of {:?}", c.written), None),
        Check::Upload(c) => (format!("duplicate upload to {:?}", c.written), None),
        Check::Quic(c) => (
            format!(
                "duplicate quic check of {:?} with the same sni",
                c.target.written
            ),
            c.sni.clone(),
        ),
    }
}

/// The certificates of the PEM file `path`, which the config names with
/// the key `key` (`ca_file`, `cert_file`); an error names both.
pub(super) fn read_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|err| format!("cannot read {key} {}: {err}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|err| format!("{key} {} is not valid PEM: {err}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{key} {} holds no certificate", path.display()));
    }
    Ok(certs)
}
