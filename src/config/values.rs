//! The leaf values of a config, each checking itself while it is decoded:
//! durations, sizes, addresses, names, URLs, status ranges and the small
//! enums (`ip_family`, `types`, `method`, `transport`).
//!
//! A bad value fails right where serde reads it, so the error carries the
//! value's own line, column and key path. Nothing here looks at a second
//! key: rules that span keys are in `validate` and the per-kind modules.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use serde::de::Deserializer;

use super::decode::parse_str;

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

impl Target {
    /// What a target is, for an error message.
    pub(super) const WRITTEN: &'static str = "a \"host:port\" string";

    /// Parses `host:port`, where host is a DNS name, an IPv4 address or a
    /// bracketed IPv6 address; with `default_port`, `:port` may be left out.
    pub(super) fn parse(s: &str, default_port: Option<u16>) -> Result<Target, String> {
        let bad = |why: &str| format!("invalid address {s:?}: {why}");
        // A URL where HOST:PORT belongs: say so, and what to write.
        if let Ok(url) = url::Url::parse(s)
            && s.contains("://")
        {
            let host = url.host_str().unwrap_or("HOST");
            let port = url
                .port()
                .or(default_port)
                .or(url.port_or_known_default())
                .map_or("PORT".to_string(), |p| p.to_string());
            return Err(bad(&format!(
                "a target is HOST:PORT, not a URL: write {host}:{port}"
            )));
        }
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
                return Err(bad(if h.parse::<std::net::Ipv6Addr>().is_ok() {
                    "write IPv6 addresses in brackets, such as [2001:db8::1]:443"
                } else {
                    "expected HOST:PORT, such as example.com:443, with nothing before the host (no `stun:` or other scheme)"
                }));
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
        Ok(Target {
            written: s.to_string(),
            host,
            port,
        })
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, |s| Target::parse(s, None))
    }
}

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

/// What a TLS check offers beside its plain handshake (`ech:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum EchOffer {
    /// A second handshake carrying a GREASE encrypted_client_hello
    /// extension (draft-ietf-tls-esni §6.2).
    #[serde(rename = "grease")]
    Grease,
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

/// The transport of a call-port check (the `transport` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
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

/// A positive duration written in humantime syntax (`500ms`, `5s`, `1m`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Dur(pub Duration);

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
pub(super) struct ZeroOkDur(pub Duration);

impl<'de> Deserialize<'de> for ZeroOkDur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, |s| {
            humantime::parse_duration(s).map(ZeroOkDur).map_err(|_| {
                format!("invalid duration {s:?}: expected a number and a unit, such as 0s, 500ms, 5s or 1m")
            })
        })
    }
}

/// A size in bytes: an integer, or a number with `KiB`, `MiB` or `GiB`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Size(pub u64);

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

/// A listen address (see [`super::ListenAddress`]).
#[derive(Debug, Clone)]
pub(super) struct Listen(pub super::ListenAddress);

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, |s| s.parse().map(Listen))
    }
}

/// A CIDR (`10.0.0.0/8`) or a single address.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cidr(pub IpNet);

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

/// A DNS name (letters, digits, `-`, `_`, dots; labels of 1–63 bytes),
/// lowercased, without a trailing dot.
#[derive(Debug, Clone)]
pub(super) struct DnsName(pub String);

impl DnsName {
    pub(super) fn parse(s: &str) -> Result<DnsName, String> {
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
        if let Ok(url) = url::Url::parse(s)
            && s.contains("://")
        {
            let host = url.host_str().unwrap_or("NAME");
            return Err(format!(
                "invalid DNS name {s:?}: a name, not a URL: write {host}"
            ));
        }
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

/// A DNS server address: an IP literal, with an optional port (default `P`).
/// Control resolvers are addressed by IP: they must not depend on DNS.
#[derive(Debug, Clone, Copy)]
pub(super) struct ServerAddr<const P: u16>(pub SocketAddr);

impl<const P: u16> ServerAddr<P> {
    fn parse(s: &str) -> Result<Self, String> {
        let t = Target::parse(s, Some(P))?;
        match t.host {
            Host::Ip(ip) => Ok(ServerAddr(SocketAddr::new(ip, t.port))),
            Host::Name(_) => Err(format!(
                "invalid resolver address {s:?}: must be an IP address (a resolver must not depend on DNS)"
            )),
        }
    }
}

impl<'de, const P: u16> Deserialize<'de> for ServerAddr<P> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, ServerAddr::parse)
    }
}

/// A DoH URL: `https://IP[:port][/path]`.
#[derive(Debug, Clone)]
pub(super) struct DohUrl {
    pub addr: SocketAddr,
    pub path: String,
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
            let addr = ServerAddr::<443>::parse(authority).map_err(|_| {
                format!("invalid DoH URL {s:?}: the host must be an IP address (a resolver must not depend on DNS)")
            })?;
            Ok(DohUrl {
                addr: addr.0,
                path: path.to_string(),
            })
        })
    }
}

/// An `http://` or `https://` URL with a host.
#[derive(Debug, Clone)]
pub(super) struct HttpUrl {
    /// Exactly as written (the `target` label).
    pub written: String,
    /// Parsed.
    pub url: url::Url,
}

impl HttpUrl {
    /// What a URL is, for an error message.
    pub(super) const WRITTEN: &'static str = "a URL string";

    pub(super) fn parse(s: &str) -> Result<HttpUrl, String> {
        let url = url::Url::parse(s).map_err(|e| match e {
            url::ParseError::RelativeUrlWithoutBase if s.contains(['.', ':']) => format!(
                "invalid URL {s:?}: a URL starts with http:// or https://, such as http://{s}"
            ),
            url::ParseError::RelativeUrlWithoutBase => {
                format!("invalid URL {s:?}: a URL starts with http:// or https://")
            }
            e => format!("invalid URL {s:?}: {e}"),
        })?;
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
pub(super) struct StatusRange(pub u16, pub u16);

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

/// Expands `${VAR}` from the environment. An unset variable is an error,
/// not an empty label.
pub(super) fn expand_env(s: &str) -> Result<String, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doh_port_defaults_and_names_are_refused() {
        use serde::de::value::{Error, StrDeserializer};
        let de = |s: &str| DohUrl::deserialize(StrDeserializer::<Error>::new(s));
        let u = de("https://[::1]:8443").unwrap();
        assert_eq!(u.addr.to_string(), "[::1]:8443");
        assert_eq!(u.path, "/dns-query");
        assert!(de("https://dns.google/dns-query").is_err());
    }

    #[test]
    fn sizes_take_bytes_and_binary_units() {
        let size = |s: &str| Size::parse(s).map(|s| s.0);
        assert_eq!(size("1"), Ok(1));
        assert_eq!(size("5B"), Ok(5));
        assert_eq!(size("64KiB"), Ok(64 << 10));
        assert_eq!(size("2 MiB"), Ok(2 << 20));
        assert_eq!(size("3GiB"), Ok(3 << 30));
        for bad in ["0", "0KiB", "1KB", "KiB", "-1", "1.5MiB", ""] {
            assert!(
                size(bad)
                    .unwrap_err()
                    .contains("expected a positive number of bytes"),
                "{bad}"
            );
        }
        assert_eq!(
            size("17179869184GiB"),
            Err("invalid size \"17179869184GiB\": too large".into())
        );
    }

    #[test]
    fn targets_ports_and_brackets() {
        let t = Target::parse("[::1]:443", None).unwrap();
        assert_eq!((t.host.to_string(), t.port), ("::1".to_string(), 443));
        let t = Target::parse("[::1]", Some(53)).unwrap();
        assert_eq!((t.host, t.port), (Host::Ip("::1".parse().unwrap()), 53));
        assert!(
            Target::parse("[::1]", None)
                .unwrap_err()
                .contains("expected host:port")
        );
        assert!(
            Target::parse("[::1]x", Some(53))
                .unwrap_err()
                .contains("expected `:port` after `]`")
        );
        let t = Target::parse("A.test:65535", None).unwrap();
        assert_eq!((t.host.to_string(), t.port), ("a.test".to_string(), 65535));
        for bad in ["a.test:0", "a.test:65536", "a.test:x"] {
            assert!(
                Target::parse(bad, None)
                    .unwrap_err()
                    .contains("a number from 1 to 65535"),
                "{bad}"
            );
        }
    }

    #[test]
    fn status_ranges() {
        let r = |s: &str| StatusRange::parse(s).map(|r| (r.0, r.1));
        assert_eq!(r("204"), Ok((204, 204)));
        assert_eq!(r("100-599"), Ok((100, 599)));
        assert_eq!(r("301-301"), Ok((301, 301)));
        assert!(
            r("302-301")
                .unwrap_err()
                .contains("the first code is larger")
        );
        for bad in ["99", "600", "200-600", "x"] {
            assert!(r(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn environment_variables_expand() {
        // cargo sets CARGO_PKG_NAME for the tests it runs.
        let v = std::env::var("CARGO_PKG_NAME").unwrap();
        let x = |s: &str| expand_env(s);
        assert_eq!(
            x("a${CARGO_PKG_NAME}b${CARGO_PKG_NAME}"),
            Ok(format!("a{v}b{v}"))
        );
        assert_eq!(x("${CARGO_PKG_NAME}"), Ok(v));
        assert_eq!(x("plain"), Ok("plain".into()));
        for bad in ["${}", "${1A}", "${A-B}"] {
            assert!(
                x(bad)
                    .unwrap_err()
                    .starts_with("invalid environment variable name"),
                "{bad}"
            );
        }
        assert!(x("${A").unwrap_err().starts_with("unclosed"));
    }
}
