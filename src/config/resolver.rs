//! Resolvers: the [`Resolver`]s a config names (the host's own `system`
//! one first, then the controls), how each is reached ([`ResolverKind`]),
//! their validation, and the reading of resolv.conf.
//!
//! It does not build DNS clients: `probe::dns` does that from a
//! [`ResolverKind`].

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use serde_saphyr::Spanned;

use super::check::Trust;
use super::decode::{ConfigError, OrderedMap};
use super::raw::RawResolver;
use super::validate::{At, Validator};
use super::{DEFAULT_RESOLV_CONF, SYSTEM_RESOLVER};

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

impl Validator<'_> {
    /// The resolvers: `system` first (from resolv.conf unless configured),
    /// then the others in file order.
    pub(super) fn resolvers(
        &self,
        raw: OrderedMap<Spanned<RawResolver>>,
    ) -> Result<Vec<Resolver>, ConfigError> {
        let mut resolvers = vec![Resolver {
            name: SYSTEM_RESOLVER.into(),
            kind: ResolverKind::UdpAndTcp(system_servers(Path::new(DEFAULT_RESOLV_CONF))),
        }];
        for (name, r) in raw.0 {
            let kind = self.resolver(&name, r)?;
            if name == SYSTEM_RESOLVER {
                resolvers[0].kind = kind;
            } else {
                resolvers.push(Resolver { name, kind });
            }
        }
        Ok(resolvers)
    }

    /// The index of the resolver `r` names, written at `at`.
    pub(super) fn resolver_index(
        &self,
        resolvers: &[Resolver],
        r: &Spanned<String>,
        at: &At,
    ) -> Result<usize, ConfigError> {
        resolvers
            .iter()
            .position(|x| x.name == r.value)
            .ok_or_else(|| {
                let known: Vec<&str> = resolvers.iter().map(|x| x.name.as_str()).collect();
                self.err(
                    &at.written_at(r.referenced),
                    format!(
                        "unknown resolver {:?}: known resolvers are {}",
                        r.value,
                        known.join(", ")
                    ),
                )
            })
    }

    fn resolver(&self, name: &str, r: Spanned<RawResolver>) -> Result<ResolverKind, ConfigError> {
        let at = At::new(Some(r.referenced), format!("resolvers.{name}"));
        let r = r.value;
        self.label_value("resolver", name, &at)?;
        let set = [
            r.resolv_conf.is_some(),
            r.udp.is_some(),
            r.tcp.is_some(),
            r.dot.is_some(),
            r.doh.is_some(),
        ];
        if set.iter().filter(|b| **b).count() != 1 {
            return Err(self.err(
                &at,
                "a resolver takes exactly one of `resolv_conf`, `udp`, `tcp`, `dot`, `doh`",
            ));
        }
        let encrypted = r.dot.is_some() || r.doh.is_some();
        if !encrypted && (r.server_name.is_some() || r.ca_file.is_some()) {
            return Err(self.err(
                &at,
                "`server_name` and `ca_file` apply only to `dot` and `doh` resolvers",
            ));
        }
        if r.resolv_conf.is_some() && name != SYSTEM_RESOLVER {
            return Err(self.err(
                &at,
                format!("`resolv_conf` applies only to the `{SYSTEM_RESOLVER}` resolver"),
            ));
        }
        let trust = match &r.ca_file {
            Some(f) => self.ca_file(&at.key("ca_file"), f)?,
            None => Trust::WebPki,
        };
        let server_name =
            |addr: SocketAddr| r.server_name.clone().map_or(addr.ip().to_string(), |n| n.0);
        Ok(match (r.resolv_conf, r.udp, r.tcp, r.dot, r.doh) {
            (Some(f), ..) => ResolverKind::UdpAndTcp(self.resolv_conf(&at, &f)?),
            (_, Some(a), ..) => ResolverKind::Udp(a.0),
            (_, _, Some(a), ..) => ResolverKind::Tcp(a.0),
            (_, _, _, Some(a), _) => ResolverKind::Dot {
                addr: a.0,
                server_name: server_name(a.0),
                trust,
            },
            (_, _, _, _, Some(u)) => ResolverKind::Doh {
                addr: u.addr,
                server_name: server_name(u.addr),
                path: u.path,
                trust,
            },
            _ => return Err(self.err(&at, "a resolver needs an address")),
        })
    }

    /// The nameservers of the resolv.conf file `f`; at least one.
    fn resolv_conf(&self, at: &At, f: &str) -> Result<Vec<SocketAddr>, ConfigError> {
        let p = self.base.join(f);
        let text = std::fs::read_to_string(&p).map_err(|err| {
            self.err(
                at,
                format!("cannot read resolv_conf {}: {err}", p.display()),
            )
        })?;
        let servers = parse_resolv_conf(&text);
        if servers.is_empty() {
            return Err(self.err(
                at,
                format!("resolv_conf {} lists no nameserver", p.display()),
            ));
        }
        Ok(servers)
    }
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
    use crate::config::Config;

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
        let c = Config::parse(
            "resolvers:\n  a: { doh: \"https://1.1.1.1/dns-query\", server_name: cloudflare-dns.com }\n  b: { doh: \"https://[::1]:8443\" }\nservices:\n  s: { dns: { names: [x.example], resolvers: [a, b] } }\n",
            Path::new("t.yaml"),
        )
        .unwrap();
        let want = [
            ("1.1.1.1:443", "cloudflare-dns.com", "/dns-query"),
            ("[::1]:8443", "::1", "/dns-query"),
        ];
        for (r, want) in c.resolvers[1..].iter().zip(want) {
            match &r.kind {
                ResolverKind::Doh {
                    addr,
                    server_name,
                    path,
                    ..
                } => assert_eq!(
                    (
                        addr.to_string().as_str(),
                        server_name.as_str(),
                        path.as_str()
                    ),
                    want
                ),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn resolv_conf_is_the_system_resolvers_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("r.conf"),
            "nameserver 127.0.0.2\nnameserver ::1\n",
        )
        .unwrap();
        let parse = |resolvers: &str| {
            Config::parse(
                &format!(
                    "resolvers:\n{resolvers}\nservices:\n  s: {{ dns: {{ names: [x.example] }} }}\n"
                ),
                &dir.path().join("t.yaml"),
            )
        };
        let c = parse("  system: { resolv_conf: r.conf }").unwrap();
        match &c.resolvers[0].kind {
            ResolverKind::UdpAndTcp(a) => assert_eq!(
                a,
                &["127.0.0.2:53".parse().unwrap(), "[::1]:53".parse().unwrap()]
            ),
            other => panic!("{other:?}"),
        }
        let e = parse("  lab: { resolv_conf: r.conf }")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`resolv_conf` applies only to the `system` resolver"),
            "{e}"
        );
    }

    #[test]
    fn only_dot_and_doh_are_encrypted() {
        let c = Config::parse(
            "resolvers:\n  u: { udp: \"127.0.0.1\" }\n  t: { tcp: \"127.0.0.1\" }\n  dot: { dot: \"127.0.0.1\" }\n  doh: { doh: \"https://127.0.0.1/dns-query\" }\nservices:\n  s: { dns: { names: [x.example], resolvers: [u] } }\n",
            Path::new("t.yaml"),
        )
        .unwrap();
        let encrypted: Vec<(&str, bool)> = c
            .resolvers
            .iter()
            .map(|r| (r.name.as_str(), r.kind.is_encrypted()))
            .collect();
        assert_eq!(
            encrypted,
            [
                ("system", false),
                ("u", false),
                ("t", false),
                ("dot", true),
                ("doh", true)
            ]
        );
    }
}
