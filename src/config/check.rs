//! What a validated config asks to check: the [`Check`] enum over the
//! per-kind checks, the [`CheckOptions`] a `/probe` [`Module`] holds, and
//! the [`Trust`] of TLS clients.
//!
//! A check is its kind's options with a target attached. A service entry
//! and a module decode into the same options (see the per-kind modules), so
//! making a module's check of a request's target is "attach the target",
//! as in blackbox_exporter where a module holds the prober's options. This
//! module holds no validation and reads no YAML.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;

use super::kind::CheckKind;
use super::values::{DnsName, HttpUrl, IpFamily, Target};
use super::{
    CallPortCheck, CallPortOptions, DnsCheck, DnsOptions, HttpCheck, HttpOptions, QuicCheck,
    QuicOptions, Resolver, TcpCheck, TcpOptions, TlsCheck, TlsOptions, TransferCheck,
    TransferOptions,
};

/// One check of a service, or of a `/probe` request.
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
    Download(TransferCheck),
    /// A QUIC handshake.
    Quic(QuicCheck),
    /// A bounded HTTP(S) upload (a POST), its acknowledged progress timed
    /// and rated.
    Upload(TransferCheck),
}

impl Check {
    /// The check's kind (its `.as_str()` is the `check` label).
    pub fn kind(&self) -> CheckKind {
        match self {
            Check::Dns(_) => CheckKind::Dns,
            Check::Tcp(_) => CheckKind::Tcp,
            Check::Tls(_) => CheckKind::Tls,
            Check::CallPort(_) => CheckKind::CallPort,
            Check::Http(_) => CheckKind::Http,
            Check::Download(_) => CheckKind::Download,
            Check::Quic(_) => CheckKind::Quic,
            Check::Upload(_) => CheckKind::Upload,
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
            Check::Upload(c) => c.family,
        }
    }

    /// What tells its series apart beside the service, as label pairs:
    /// `target` and, by kind, `resolver` and `type` (DNS), `sni` (TLS,
    /// QUIC), `transport` and `method` (call ports). `resolvers` are the
    /// config's.
    pub fn labels(&self, resolvers: &[Resolver]) -> Vec<(&'static str, String)> {
        match self {
            Check::Dns(c) => vec![
                ("target", c.name.to_string()),
                ("resolver", resolvers[c.resolver].name.clone()),
                ("type", c.record_type.as_str().to_string()),
            ],
            Check::Tcp(c) => vec![("target", c.target.written.clone())],
            Check::Tls(c) => vec![
                ("target", c.target.written.clone()),
                ("sni", c.sni.clone().unwrap_or_default()),
            ],
            Check::Quic(c) => vec![
                ("target", c.target.written.clone()),
                ("sni", c.sni.clone().unwrap_or_default()),
            ],
            Check::CallPort(c) => vec![
                ("target", c.target.written.clone()),
                ("transport", c.transport.as_str().to_string()),
                ("method", c.method.as_str().to_string()),
            ],
            Check::Http(c) => vec![("target", c.written.clone())],
            Check::Download(c) => vec![("target", c.written.clone())],
            Check::Upload(c) => vec![("target", c.written.clone())],
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
            Check::Upload(c) => c.timeout,
        }
    }
}

/// A check kind's options, without a target: what a `/probe` module is.
#[derive(Debug, Clone)]
pub enum CheckOptions {
    /// Resolve the target name.
    Dns(DnsOptions),
    /// Connect to `host:port`.
    Tcp(TcpOptions),
    /// TLS handshake with `host:port`.
    Tls(TlsOptions),
    /// A call port at `host:port`.
    CallPort(CallPortOptions),
    /// GET the target URL.
    Http(HttpOptions),
    /// A bounded download of the target URL.
    Download(TransferOptions),
    /// A QUIC handshake with `host:port`.
    Quic(QuicOptions),
    /// A bounded upload to the target URL.
    Upload(TransferOptions),
}

impl CheckOptions {
    /// The kind of check these options make.
    pub fn kind(&self) -> CheckKind {
        match self {
            CheckOptions::Dns(_) => CheckKind::Dns,
            CheckOptions::Tcp(_) => CheckKind::Tcp,
            CheckOptions::Tls(_) => CheckKind::Tls,
            CheckOptions::CallPort(_) => CheckKind::CallPort,
            CheckOptions::Http(_) => CheckKind::Http,
            CheckOptions::Download(_) => CheckKind::Download,
            CheckOptions::Quic(_) => CheckKind::Quic,
            CheckOptions::Upload(_) => CheckKind::Upload,
        }
    }

    /// The check these options make of `target` (a name for dns,
    /// `host:port` for tcp, tls, call_port and quic, a URL for http,
    /// download and upload), or why `target` is not one.
    pub fn check_for(&self, target: &str) -> Result<Check, String> {
        let host_port = || Target::parse(target, None);
        Ok(match self.clone() {
            CheckOptions::Dns(o) => Check::Dns(o.check(DnsName::parse(target)?.0)),
            CheckOptions::Tcp(o) => Check::Tcp(o.check(host_port()?)),
            CheckOptions::Tls(o) => Check::Tls(o.check(host_port()?)),
            CheckOptions::CallPort(o) => Check::CallPort(o.check(host_port()?)),
            CheckOptions::Http(o) => Check::Http(o.check(HttpUrl::parse(target)?)),
            CheckOptions::Download(o) => Check::Download(o.check(HttpUrl::parse(target)?)),
            CheckOptions::Quic(o) => Check::Quic(o.check(host_port()?)),
            CheckOptions::Upload(o) => Check::Upload(o.check(HttpUrl::parse(target)?)),
        })
    }
}

/// A `/probe` module: a check kind's options, applied to the target of a
/// request.
#[derive(Debug, Clone)]
pub struct Module {
    /// Its name (`module=` in the request, and the `service` label).
    pub name: String,
    /// The kind and its options (timeout included).
    pub options: CheckOptions,
}

impl Module {
    /// The check this module makes of `target`; see
    /// [`CheckOptions::check_for`].
    pub fn check_for(&self, target: &str) -> Result<Check, String> {
        self.options.check_for(target)
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

/// The server name a TLS or QUIC handshake with `target` sends: the one
/// configured, else the target's host name; none for a bare IP address.
fn sni_for(configured: Option<&str>, target: &Target) -> Option<String> {
    match (configured, &target.host) {
        (Some(name), _) => Some(name.to_string()),
        (None, super::Host::Name(n)) => Some(n.clone()),
        (None, super::Host::Ip(_)) => None,
    }
}

/// A handshake with a target under a server name: a TLS or a QUIC check
/// (its options are read through it: `check.trust`).
#[derive(Debug, Clone)]
pub struct NamedCheck<O> {
    /// Where to (TCP for TLS, UDP for QUIC).
    pub target: Target,
    /// Server name sent and verified; `None` sends none (bare IP target).
    pub sni: Option<String>,
    /// How.
    pub options: O,
}

/// The options of a [`NamedCheck`]: the server name configured, and the
/// neutral name of the control handshake.
trait Names {
    /// `sni:` as configured, and `control_sni:`.
    fn names(&mut self) -> (Option<&str>, &mut Option<String>);
}

/// The check of `target`: its SNI is the name configured, else the
/// target's host name ([`sni_for`]); the neutral name is kept only when it
/// differs from the SNI (the same name would prove nothing).
fn named_check<O: Names>(target: Target, mut options: O) -> NamedCheck<O> {
    let (configured, control) = options.names();
    let sni = sni_for(configured, &target);
    if *control == sni {
        *control = None;
    }
    NamedCheck {
        target,
        sni,
        options,
    }
}

/// TLS and QUIC options: where their names are, and their check of a
/// target.
macro_rules! named_options {
    ($($options:ident),*) => {$(
        impl Names for $options {
            fn names(&mut self) -> (Option<&str>, &mut Option<String>) {
                (self.server_name.as_deref(), &mut self.control_sni)
            }
        }

        impl $options {
            /// The check of `target`.
            pub fn check(self, target: Target) -> NamedCheck<$options> {
                named_check(target, self)
            }
        }
    )*};
}

named_options!(TlsOptions, QuicOptions);

impl<O> std::ops::Deref for NamedCheck<O> {
    type Target = O;
    fn deref(&self) -> &O {
        &self.options
    }
}

/// A check dereferences to its options, so `check.timeout` reads the
/// option: the options are the check, less its target.
macro_rules! deref_to_options {
    ($($check:ty => $options:ty),* $(,)?) => {$(
        impl std::ops::Deref for $check {
            type Target = $options;
            fn deref(&self) -> &$options {
                &self.options
            }
        }
    )*};
}

deref_to_options!(
    DnsCheck => DnsOptions,
    TcpCheck => TcpOptions,
    CallPortCheck => CallPortOptions,
    HttpCheck => HttpOptions,
    TransferCheck => TransferOptions,
);
