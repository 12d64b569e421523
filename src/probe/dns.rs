//! The DNS prober: one query, one measurement, through one resolver.
//!
//! Resolvers are built here from the config (plain UDP/TCP, DoT, DoH) with
//! no cache, no retries and no hosts file, so that every scrape sends a real
//! query and times it. Answers holding a bogon (a private or reserved
//! address, OONI's list) are failures with `dns_bogon_error` unless an
//! `allowed_ranges` entry covers them.
//!
//! hickory 0.26 reports a resolver whose connection failed (TCP, DoT, DoH)
//! as `NoConnections`, dropping the cause. [`DnsClient`] then opens the same
//! connection itself — TCP connect, then TLS with the same server name,
//! roots and ALPN — within the same deadline, and reports that attempt's
//! reason, so a blocked control resolver says *how* it is blocked.
//!
//! This module does not decide what the answers mean for censorship.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use ipnet::IpNet;
use rustls::pki_types::ServerName;
use tokio::time::Instant;

use super::{Facts, Outcome};
use crate::config::{self, DnsCheck, IpFamily, ResolverKind};
use crate::reason::{Reason, Stage, classify};

/// A resolver of the config, ready to query.
///
/// A UDP resolver holds no connection, so one hickory resolver serves every
/// lookup. A TCP, DoT or DoH resolver would keep its connection between
/// scrapes: timings would include the handshakes on some scrapes only, a
/// block of new connections would go unseen, and a server closing an idle
/// connection would fail the next lookup. So each lookup through one gets a
/// fresh hickory resolver, built from parts prepared once per config load.
pub struct DnsClient {
    parts: Parts,
    /// The resolver every lookup uses, for connectionless (UDP) resolvers.
    shared: Option<TokioResolver>,
    /// For connection-oriented resolvers: how to open the same connection
    /// again when hickory hides why it failed.
    reconnect: Option<Reconnect>,
}

/// What a hickory resolver is built from.
struct Parts {
    config: ResolverConfig,
    opts: ResolverOpts,
    tls: Option<rustls::ClientConfig>,
}

impl Parts {
    fn build(&self) -> Result<TokioResolver, NetError> {
        let mut builder = TokioResolver::builder_with_config(
            self.config.clone(),
            TokioRuntimeProvider::default(),
        )
        .with_options(self.opts.clone());
        if let Some(tls) = &self.tls {
            builder = builder.with_tls_config(tls.clone());
        }
        builder.build()
    }
}

/// Where a TCP, DoT or DoH resolver is, and for DoT/DoH its TLS identity.
struct Reconnect {
    addr: SocketAddr,
    tls: Option<(ServerName<'static>, Arc<rustls::ClientConfig>)>,
}

impl DnsClient {
    /// Builds a client that sends exactly one query per lookup, to the
    /// configured server(s), with no cache. `timeout` is hickory's own
    /// limit, set above every check's so that ours applies.
    pub fn new(kind: &ResolverKind, timeout: Duration) -> Result<DnsClient, NetError> {
        let tls = |name: &str, cfg: rustls::ClientConfig| {
            // The config loader admits only DNS names and IP addresses here.
            ServerName::try_from(name.to_string())
                .ok()
                .map(|n| (n, Arc::new(cfg)))
        };
        let reconnect = match kind {
            ResolverKind::UdpAndTcp(_) | ResolverKind::Udp(_) => None,
            ResolverKind::Tcp(addr) => Some(Reconnect {
                addr: *addr,
                tls: None,
            }),
            ResolverKind::Dot {
                addr,
                server_name,
                trust,
            } => Some(Reconnect {
                addr: *addr,
                tls: tls(server_name, super::tls::base_config(trust)?),
            }),
            ResolverKind::Doh {
                addr,
                server_name,
                trust,
                ..
            } => {
                let mut cfg = super::tls::base_config(trust)?;
                cfg.alpn_protocols = vec![b"h2".to_vec()];
                Some(Reconnect {
                    addr: *addr,
                    tls: tls(server_name, cfg),
                })
            }
        };
        let parts = resolver_parts(kind, timeout)?;
        // Built once here so that a bad part fails at config load.
        let resolver = parts.build()?;
        Ok(DnsClient {
            shared: reconnect.is_none().then_some(resolver),
            parts,
            reconnect,
        })
    }

    /// The resolver for one lookup.
    fn resolver(&self) -> Result<TokioResolver, NetError> {
        match &self.shared {
            Some(r) => Ok(r.clone()),
            None => self.parts.build(),
        }
    }

    /// Looks up `name` (absolute) for `rtype`.
    async fn lookup(&self, name: &str, rtype: RecordType) -> Result<Lookup, NetError> {
        self.resolver()?.lookup(absolute(name), rtype).await
    }

    /// The reason for a failed lookup; for `NoConnections`, found by
    /// connecting to the resolver again.
    async fn reason(&self, e: &NetError) -> Reason {
        let (NetError::NoConnections, Some(r)) = (e, &self.reconnect) else {
            return classify(e);
        };
        let stream = match super::tcp::connect(r.addr).await {
            Ok(s) => s,
            Err(e) => return classify(&e),
        };
        let Some((name, cfg)) = &r.tls else {
            return Reason::UnknownFailure;
        };
        match tokio_rustls::TlsConnector::from(cfg.clone())
            .connect(name.clone(), stream)
            .await
        {
            Ok(_) => Reason::UnknownFailure,
            Err(e) => classify(&e),
        }
    }
}

fn resolver_parts(kind: &ResolverKind, timeout: Duration) -> Result<Parts, NetError> {
    let with_port = |mut ns: NameServerConfig, port: u16| {
        for c in &mut ns.connections {
            c.port = port;
        }
        ns
    };
    let (servers, tls) = match kind {
        ResolverKind::UdpAndTcp(addrs) => (
            addrs
                .iter()
                .map(|a| with_port(NameServerConfig::udp_and_tcp(a.ip()), a.port()))
                .collect(),
            None,
        ),
        ResolverKind::Udp(a) => (
            vec![with_port(NameServerConfig::udp(a.ip()), a.port())],
            None,
        ),
        ResolverKind::Tcp(a) => (
            vec![with_port(NameServerConfig::tcp(a.ip()), a.port())],
            None,
        ),
        ResolverKind::Dot {
            addr,
            server_name,
            trust,
        } => (
            vec![with_port(
                NameServerConfig::tls(addr.ip(), server_name.as_str().into()),
                addr.port(),
            )],
            Some(trust),
        ),
        ResolverKind::Doh {
            addr,
            server_name,
            path,
            trust,
        } => (
            vec![with_port(
                NameServerConfig::https(
                    addr.ip(),
                    server_name.as_str().into(),
                    Some(path.as_str().into()),
                ),
                addr.port(),
            )],
            Some(trust),
        ),
    };
    let mut opts = ResolverOpts::default();
    opts.attempts = 0;
    opts.cache_size = 0;
    opts.timeout = timeout;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.ndots = 0;
    Ok(Parts {
        config: ResolverConfig::from_name_servers(servers),
        opts,
        // hickory sets the ALPN (h2 for DoH) itself when none is given.
        tls: tls.map(super::tls::base_config).transpose()?,
    })
}

/// Resolves `check.name` for its record type and judges the answer.
pub async fn probe(check: &DnsCheck, client: &DnsClient, allowed: &[IpNet]) -> Outcome {
    let rtype = match check.record_type {
        config::RecordType::A => RecordType::A,
        config::RecordType::AAAA => RecordType::AAAA,
    };
    let start = Instant::now();
    let res = client.lookup(&check.name, rtype).await;
    let took = start.elapsed();
    match res {
        Ok(lookup) => {
            let (ips, judged) = judge_records(lookup.answers(), allowed);
            let facts = Facts::Dns {
                answers: ips.len(),
                addrs: ips.clone(),
            };
            let failure = judged.err().map(|r| (Stage::Resolve, r));
            if let Some((_, reason)) = failure {
                let answers = ips.iter().map(|ip| ip.to_string()).collect::<Vec<_>>();
                tracing::debug!(
                    reason = reason.as_str(),
                    answers = answers.join(" "),
                    "dns answer refused"
                );
            }
            Outcome {
                failure,
                duration: Some(took),
                facts,
                control: None,
                ech: None,
            }
        }
        Err(e) => {
            let reason = client.reason(&e).await;
            tracing::debug!(reason = reason.as_str(), error = %e, "dns lookup failed");
            // A response code is an answer: the query's duration is real.
            let answered = matches!(
                &e,
                NetError::Dns(DnsError::NoRecordsFound(_) | DnsError::ResponseCode(_))
            );
            Outcome {
                failure: Some((Stage::Resolve, reason)),
                duration: answered.then_some(took),
                facts: if answered {
                    Facts::Dns {
                        answers: 0,
                        addrs: Vec::new(),
                    }
                } else {
                    Facts::None
                },
                control: None,
                ech: None,
            }
        }
    }
}

/// Resolves a host for a connect: its addresses of the preferred family
/// (the other family when it has none; both for `any`, IPv4 first), after
/// the same bogon rule as [`probe`]. Never an empty list.
pub async fn resolve(
    client: &DnsClient,
    name: &str,
    family: IpFamily,
    allowed: &[IpNet],
) -> Result<Vec<IpAddr>, Reason> {
    let (first, second) = match family {
        IpFamily::V4 | IpFamily::Any => (RecordType::A, RecordType::AAAA),
        IpFamily::V6 => (RecordType::AAAA, RecordType::A),
    };
    let res = if family == IpFamily::Any {
        let (a, b) = tokio::join!(client.lookup(name, first), client.lookup(name, second));
        match (a, b) {
            (Ok(a), Ok(b)) => Ok([addresses(&a), addresses(&b)].concat()),
            (Ok(l), Err(_)) | (Err(_), Ok(l)) => Ok(addresses(&l)),
            (Err(e), Err(_)) => Err(e),
        }
    } else {
        match client.lookup(name, first).await {
            Ok(l) if !addresses(&l).is_empty() => Ok(addresses(&l)),
            // The name exists without an address of that family: try the
            // other one. NXDOMAIN and failures are the answer.
            Ok(_) => client.lookup(name, second).await.map(|l| addresses(&l)),
            Err(NetError::Dns(DnsError::NoRecordsFound(nr)))
                if nr.response_code == ResponseCode::NoError =>
            {
                client.lookup(name, second).await.map(|l| addresses(&l))
            }
            Err(e) => Err(e),
        }
    };
    match res {
        Ok(ips) => {
            judge(&ips, allowed)?;
            Ok(ips)
        }
        Err(e) => {
            let reason = client.reason(&e).await;
            tracing::debug!(%name, reason = reason.as_str(), error = %e, "resolving target failed");
            Err(reason)
        }
    }
}

/// The addresses in an answer.
fn addresses(lookup: &Lookup) -> Vec<IpAddr> {
    lookup
        .answers()
        .iter()
        .filter_map(|r| address(&r.data))
        .collect()
}

/// The addresses of an answer's records and the verdict on them (at least one address, no bogon outside `allowed`):
/// the classification every DNS check applies to what came off the wire.
pub fn judge_records(
    records: &[hickory_resolver::proto::rr::Record],
    allowed: &[IpNet],
) -> (Vec<IpAddr>, Result<(), Reason>) {
    let ips: Vec<IpAddr> = records.iter().filter_map(|r| address(&r.data)).collect();
    let judged = judge(&ips, allowed);
    (ips, judged)
}

/// An answer passes if it holds at least one address and no bogon outside
/// `allowed` (OONI flags an answer with any bogon in it).
fn judge(ips: &[IpAddr], allowed: &[IpNet]) -> Result<(), Reason> {
    if ips.is_empty() {
        return Err(Reason::DnsNoAnswer);
    }
    if ips
        .iter()
        .any(|ip| is_bogon(*ip) && !allowed.iter().any(|n| n.contains(ip)))
    {
        return Err(Reason::DnsBogon);
    }
    Ok(())
}

fn address(data: &RData) -> Option<IpAddr> {
    match data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
        _ => None,
    }
}

/// Configured names are absolute: no search list, one query.
fn absolute(name: &str) -> String {
    format!("{name}.")
}

/// OONI's IPv4 bogons, as (network, prefix length).
const BOGONS_V4: [(u32, u8); 15] = [
    (0x0000_0000, 8),  // 0.0.0.0/8
    (0x0a00_0000, 8),  // 10.0.0.0/8
    (0x6440_0000, 10), // 100.64.0.0/10
    (0x7f00_0000, 8),  // 127.0.0.0/8
    (0xa9fe_0000, 16), // 169.254.0.0/16
    (0xac10_0000, 12), // 172.16.0.0/12
    (0xc000_0000, 24), // 192.0.0.0/24
    (0xc000_0200, 24), // 192.0.2.0/24
    (0xc0a8_0000, 16), // 192.168.0.0/16
    (0xc612_0000, 15), // 198.18.0.0/15
    (0xc633_6400, 24), // 198.51.100.0/24
    (0xcb00_7100, 24), // 203.0.113.0/24
    (0xe000_0000, 4),  // 224.0.0.0/4
    (0xf000_0000, 4),  // 240.0.0.0/4
    (0xffff_ffff, 32), // 255.255.255.255/32
];

/// IPv6 special ranges treated as bogons, as (network, prefix length).
const BOGONS_V6: [(u128, u8); 7] = [
    (0, 128),                          // ::/128
    (1, 128),                          // ::1/128
    (0x0100_0000_0000_0000 << 64, 64), // 100::/64 (discard)
    (0x2001_0db8 << 96, 32),           // 2001:db8::/32 (documentation)
    (0xfc00 << 112, 7),                // fc00::/7 (unique local)
    (0xfe80 << 112, 10),               // fe80::/10 (link local)
    (0xff00 << 112, 8),                // ff00::/8 (multicast)
];

fn in_net<T>(addr: T, net: T, len: u8, bits: u32) -> bool
where
    T: Copy + std::ops::Shr<u32, Output = T> + PartialEq,
{
    let shift = bits - u32::from(len);
    if shift >= bits {
        return true;
    }
    addr >> shift == net >> shift
}

/// Whether `ip` is private or reserved (OONI's bogon list; an IPv4-mapped
/// IPv6 address is judged by its IPv4 address).
pub fn is_bogon(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_bogon_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_bogon_v4(v4),
            None => is_bogon_v6(v6),
        },
    }
}

fn is_bogon_v4(ip: Ipv4Addr) -> bool {
    let a = u32::from(ip);
    BOGONS_V4.iter().any(|&(net, len)| in_net(a, net, len, 32))
}

fn is_bogon_v6(ip: Ipv6Addr) -> bool {
    let a = u128::from(ip);
    BOGONS_V6.iter().any(|&(net, len)| in_net(a, net, len, 128))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bogons_match_ooni_list() {
        for b in [
            "0.1.2.3",
            "10.9.9.9",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.1.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.1.1.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:10.0.0.1",
            "100::1",
            "2001:db8::1",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(is_bogon(b.parse().unwrap()), "{b} should be a bogon");
        }
        for g in [
            "1.1.1.1",
            "8.8.8.8",
            "31.13.64.48",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "2001:db9::1",
            "fec0::1",
        ] {
            assert!(!is_bogon(g.parse().unwrap()), "{g} should not be a bogon");
        }
    }

    #[test]
    fn judge_rules() {
        let lo: IpNet = "127.0.0.0/8".parse().unwrap();
        let pub_ip: IpAddr = "8.8.8.8".parse().unwrap();
        let private: IpAddr = "10.1.1.1".parse().unwrap();
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(judge(&[], &[]), Err(Reason::DnsNoAnswer));
        assert_eq!(judge(&[pub_ip], &[]), Ok(()));
        assert_eq!(judge(&[pub_ip, private], &[]), Err(Reason::DnsBogon));
        assert_eq!(judge(&[loopback], &[]), Err(Reason::DnsBogon));
        assert_eq!(judge(&[loopback], &[lo]), Ok(()));
    }
}
