//! The raw (serde) side of the config: structs that mirror the YAML key by
//! key, with unknown keys rejected and leaf values checked as they decode.
//!
//! One raw struct per check kind serves both a service's entries (with a
//! target) and a `/probe` module (with `()` for the target, filled by
//! [`RawModule::split`]), so each kind is validated by one function. Nothing
//! here checks a rule that spans keys: that is `validate` and the per-kind
//! modules.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

use super::allow::AllowRule;
use super::decode::OrderedMap;
use super::kind::CheckKind;
use super::locate::RawLocate;
use super::pace::RawPace;
use super::regime::RawRegime;
use super::remote_write::RawRemoteWrite;
use super::test_list::RawTestList;
use super::values::{
    CallMethod, Cidr, DnsName, DohUrl, Dur, EchOffer, HttpUrl, IpFamily, Listen, RecordType,
    ServerAddr, Size, StatusRange, Target, Transport, ZeroOkDur,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub listen: Option<Listen>,
    pub timeout: Option<Dur>,
    pub max_concurrent_checks: Option<Spanned<usize>>,
    pub min_interval: Option<ZeroOkDur>,
    pub pace: Option<RawPace>,
    #[serde(default)]
    pub labels: OrderedMap<Spanned<String>>,
    #[serde(default)]
    pub probe_allow: Vec<AllowRule>,
    #[serde(default)]
    pub modules: OrderedMap<Spanned<RawModule>>,
    #[serde(default)]
    pub allowed_ranges: Vec<Cidr>,
    #[serde(default)]
    pub resolvers: OrderedMap<Spanned<RawResolver>>,
    pub services: Option<OrderedMap<Spanned<RawService>>>,
    #[serde(default)]
    pub test_lists: Vec<Spanned<Entry<RawTestList>>>,
    pub regime: Option<Spanned<RawRegime>>,
    pub remote_write: Option<Spanned<RawRemoteWrite>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResolver {
    pub resolv_conf: Option<String>,
    pub udp: Option<ServerAddr<53>>,
    pub tcp: Option<ServerAddr<53>>,
    pub dot: Option<ServerAddr<853>>,
    pub doh: Option<DohUrl>,
    pub server_name: Option<DnsName>,
    pub ca_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub resolve_with: Option<Spanned<String>>,
    pub timeout: Option<Dur>,
    pub ip_family: Option<IpFamily>,
    pub control_sni: Option<DnsName>,
    pub ech: Option<EchOffer>,
    pub locate: Option<Spanned<RawLocate>>,
    pub every: Option<Spanned<Dur>>,
    #[serde(default)]
    pub allowed_ranges: Vec<Cidr>,
    pub dns: Option<RawDns>,
    #[serde(default)]
    pub tcp: Vec<Spanned<Entry<RawTcp>>>,
    #[serde(default)]
    pub tls: Vec<Spanned<Entry<RawTls>>>,
    #[serde(default)]
    pub call_ports: Vec<Spanned<RawCallPort>>,
    #[serde(default)]
    pub http: Vec<Spanned<Entry<RawHttp>>>,
    #[serde(default)]
    pub download: Vec<Spanned<Entry<RawDownload>>>,
    #[serde(default)]
    pub quic: Vec<Spanned<Entry<RawQuic>>>,
    #[serde(default)]
    pub upload: Vec<Spanned<Entry<RawUpload>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDns {
    pub names: Vec<Spanned<DnsName>>,
    pub resolvers: Option<Vec<Spanned<String>>>,
    pub types: Option<Vec<RecordType>>,
}

/// Declares the raw struct of a check kind's entries. Its keys are listed
/// in the order serde's "expected one of" names them: the required ones
/// before `;` (the target, of type `T`: a [`Target`], an [`HttpUrl`], or
/// `()` in a module), then the optional ones, where `trust` stands for
/// `ca_file` and `insecure`, and `placement` for `timeout` and `ip_family`.
///
/// With the struct come its [`ShortForm`] (the string is its one required
/// key) and `from_module`: a module's options of the kind, moved out of the
/// [`RawModule`] key by key.
macro_rules! raw_entry {
    ($(#[$doc:meta])* $name:ident<T = $target:ident> { $($req:ident: $req_ty:ty),* ; $($opt:tt)* }) => {
        raw_entry!(@opt [$(#[$doc])* $name $target] [$($req: $req_ty),*] [] $($opt)*);
    };
    (@opt $head:tt $req:tt [$($done:tt)*] trust, $($rest:tt)*) => {
        raw_entry!(@opt $head $req [$($done)* ca_file: Option<String>, insecure: bool,] $($rest)*);
    };
    (@opt $head:tt $req:tt [$($done:tt)*] placement, $($rest:tt)*) => {
        raw_entry!(@opt $head $req [$($done)* timeout: Option<Dur>, ip_family: Option<IpFamily>,] $($rest)*);
    };
    (@opt $head:tt $req:tt [$($done:tt)*] $key:ident: $ty:ty, $($rest:tt)*) => {
        raw_entry!(@opt $head $req [$($done)* $key: $ty,] $($rest)*);
    };
    (@opt [$(#[$doc:meta])* $name:ident $target:ident] [$($req:ident: $req_ty:ty),*] [$($key:ident: $ty:ty,)*]) => {
        $(#[$doc])*
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields, bound(deserialize = "T: Deserialize<'de>"))]
        pub(super) struct $name<T = $target> {
            $(pub $req: $req_ty,)*
            $(#[serde(default)] pub $key: $ty,)*
        }

        $(impl ShortForm for $name {
            const KEY: &'static str = stringify!($req);
            const WRITTEN: &'static str = $target::WRITTEN;
        })*

        impl $name<()> {
            /// The options of this kind a module sets, moved out of it.
            fn from_module(m: &mut RawModule) -> Self {
                $name {
                    $($req: (),)*
                    $($key: std::mem::take(&mut m.$key),)*
                }
            }
        }
    };
}

raw_entry! {
    /// A `tcp:` entry.
    RawTcp<T = Target> {
        target: T;
        placement,
        all_addresses: bool,
        max_addresses: Option<usize>,
    }
}

raw_entry! {
    /// A `tls:` entry.
    RawTls<T = Target> {
        target: T;
        sni: Option<DnsName>,
        trust,
        placement,
        all_addresses: bool,
        max_addresses: Option<usize>,
        control_sni: Option<DnsName>,
        ech: Option<EchOffer>,
        locate: Option<Spanned<RawLocate>>,
    }
}

raw_entry! {
    /// A `call_ports:` entry: `{ udp: host:port }` or `{ tcp: host:port }`,
    /// with an optional `method`.
    RawCallPort<T = Target> {
        ;
        udp: Option<T>,
        tcp: Option<T>,
        method: Option<CallMethod>,
        placement,
    }
}

raw_entry! {
    /// An `http:` entry.
    RawHttp<T = HttpUrl> {
        url: T;
        status: Option<Vec<StatusRange>>,
        max_redirects: Option<u32>,
        max_body: Option<Size>,
        trust,
        placement,
    }
}

raw_entry! {
    /// A `download:` entry.
    RawDownload<T = HttpUrl> {
        url: T;
        max_bytes: Option<Size>,
        min_rate: Option<Size>,
        stall_after: Option<Dur>,
        trust,
        placement,
    }
}

raw_entry! {
    /// An `upload:` entry.
    RawUpload<T = HttpUrl> {
        url: T;
        bytes: Option<Size>,
        min_rate: Option<Size>,
        stall_after: Option<Dur>,
        trust,
        placement,
    }
}

raw_entry! {
    /// A `quic:` entry.
    RawQuic<T = Target> {
        target: T;
        sni: Option<DnsName>,
        alpn: Option<Vec<String>>,
        trust,
        placement,
        control_sni: Option<DnsName>,
    }
}

/// A raw entry that may be written as a string: the string is the value
/// of its key [`ShortForm::KEY`], every other key left out.
pub(super) trait ShortForm: DeserializeOwned {
    /// The key the short form gives.
    const KEY: &'static str;
    /// What the string is, for an error message.
    const WRITTEN: &'static str;
}

/// A list entry written as a string (short form) or a mapping (long form);
/// both decode into the same raw struct `R`. Errors carry the YAML location.
#[derive(Debug)]
pub(super) struct Entry<R>(pub R);

impl<'de, R: ShortForm> Deserialize<'de> for Entry<R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<R>(PhantomData<R>);
        impl<'de, R: ShortForm> Visitor<'de> for V<R> {
            type Value = Entry<R>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "{} or a mapping with `{}`", R::WRITTEN, R::KEY)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Entry<R>, E> {
                let only_key = std::iter::once((R::KEY, s));
                let long = de::value::MapDeserializer::<_, de::value::Error>::new(only_key);
                R::deserialize(long).map(Entry).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Entry<R>, A::Error> {
                R::deserialize(de::value::MapAccessDeserializer::new(m)).map(Entry)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A `/probe` module as written: its kind and every option any kind takes.
/// The keys only a service's entries have are here too, never set (serde
/// skips them), so that each kind's `from_module` finds all of its keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModule {
    pub kind: CheckKind,
    timeout: Option<Dur>,
    resolver: Option<Spanned<String>>,
    #[serde(rename = "type")]
    record_type: Option<RecordType>,
    sni: Option<DnsName>,
    ca_file: Option<String>,
    #[serde(default)]
    insecure: bool,
    transport: Option<Transport>,
    method: Option<CallMethod>,
    status: Option<Vec<StatusRange>>,
    max_redirects: Option<u32>,
    max_body: Option<Size>,
    max_bytes: Option<Size>,
    bytes: Option<Size>,
    min_rate: Option<Size>,
    stall_after: Option<Dur>,
    alpn: Option<Vec<String>>,
    #[serde(skip)]
    udp: Option<()>,
    #[serde(skip)]
    tcp: Option<()>,
    #[serde(skip)]
    ip_family: Option<IpFamily>,
    #[serde(skip)]
    all_addresses: bool,
    #[serde(skip)]
    max_addresses: Option<usize>,
    #[serde(skip)]
    control_sni: Option<DnsName>,
    #[serde(skip)]
    ech: Option<EchOffer>,
    #[serde(skip)]
    locate: Option<Spanned<RawLocate>>,
}

/// A module's options sorted into its kind's raw struct, with no target.
#[derive(Debug)]
pub(super) enum RawOptions {
    /// A dns module: one resolver and one type.
    Dns {
        resolver: Option<Spanned<String>>,
        record_type: Option<RecordType>,
        timeout: Option<Dur>,
    },
    Tcp(RawTcp<()>),
    Tls(RawTls<()>),
    CallPort(RawCallPort<()>),
    Http(RawHttp<()>),
    Download(RawDownload<()>),
    Quic(RawQuic<()>),
    Upload(RawUpload<()>),
}

impl RawModule {
    /// Moves the options of the module's kind into that kind's raw struct;
    /// with them, the first key left over, which does not apply to the kind.
    pub fn split(mut self) -> (RawOptions, Option<&'static str>) {
        let m = &mut self;
        let options = match m.kind {
            CheckKind::Dns => RawOptions::Dns {
                resolver: m.resolver.take(),
                record_type: m.record_type.take(),
                timeout: m.timeout.take(),
            },
            CheckKind::Tcp => RawOptions::Tcp(RawTcp::from_module(m)),
            CheckKind::Tls => RawOptions::Tls(RawTls::from_module(m)),
            CheckKind::CallPort => {
                // `transport: tcp` is a service entry's `tcp:` key.
                match m.transport.take() {
                    Some(Transport::Tcp) => m.tcp = Some(()),
                    _ => m.udp = Some(()),
                }
                RawOptions::CallPort(RawCallPort::from_module(m))
            }
            CheckKind::Http => RawOptions::Http(RawHttp::from_module(m)),
            CheckKind::Download => RawOptions::Download(RawDownload::from_module(m)),
            CheckKind::Quic => RawOptions::Quic(RawQuic::from_module(m)),
            CheckKind::Upload => RawOptions::Upload(RawUpload::from_module(m)),
        };
        (options, self.leftover())
    }

    /// The first option still set, in the order the keys are listed.
    fn leftover(&self) -> Option<&'static str> {
        [
            ("resolver", self.resolver.is_some()),
            ("type", self.record_type.is_some()),
            ("sni", self.sni.is_some()),
            ("ca_file", self.ca_file.is_some()),
            ("insecure", self.insecure),
            ("max_bytes", self.max_bytes.is_some()),
            ("bytes", self.bytes.is_some()),
            ("min_rate", self.min_rate.is_some()),
            ("stall_after", self.stall_after.is_some()),
            ("alpn", self.alpn.is_some()),
            ("transport", self.transport.is_some()),
            ("method", self.method.is_some()),
            ("status", self.status.is_some()),
            ("max_redirects", self.max_redirects.is_some()),
            ("max_body", self.max_body.is_some()),
        ]
        .into_iter()
        .find_map(|(key, set)| set.then_some(key))
    }
}
