//! `probe_allow`: which ad hoc `/probe` targets may be probed. An
//! [`AllowRule`] is a host glob (`*` matches any run of characters) or a
//! CIDR, with a port or any port; [`Config::probe_allowed`] asks the rules
//! about a check.
//!
//! It does not resolve names: a glob matches the name as requested, a CIDR
//! only a literal address.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;
use serde::de::Deserializer;

use super::Config;
use super::check::Check;
use super::decode::parse_str;
use super::values::{Host, url_target};

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

impl<'de> Deserialize<'de> for AllowRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, AllowRule::parse)
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
            Check::Quic(c) => (c.target.host.clone(), Some(c.target.port)),
            Check::Http(c) => match url_target(&c.url) {
                Some(t) => (t.host, Some(t.port)),
                None => return false,
            },
            Check::Download(c) => match url_target(&c.url) {
                Some(t) => (t.host, Some(t.port)),
                None => return false,
            },
            Check::Upload(c) => match url_target(&c.url) {
                Some(t) => (t.host, Some(t.port)),
                None => return false,
            },
        };
        self.probe_allow.iter().any(|r| r.allows(&host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(rule("[::1]").allows(&ip("::1"), Some(9)));
        for bad in [
            "*.ex ample",
            "10.0.0.0/8:0",
            "host:port",
            "[::1",
            "[::1]x",
            "",
        ] {
            assert!(AllowRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn probe_allowed_asks_the_rules_of_each_kind() {
        let config = Config::parse(
            "probe_allow: [\"*.ok.test:443\", \"ok.test\", \"10.0.0.0/8\"]\n\
             modules:\n  tcp: { kind: tcp }\n  dns: { kind: dns }\n  http: { kind: http }\n  down: { kind: download }\n\
             services:\n  a:\n    tcp: [\"127.0.0.1:1\"]\n",
            std::path::Path::new("t.yaml"),
        )
        .unwrap();
        let allowed = |module: &str, target: &str| {
            let m = config.modules.iter().find(|m| m.name == module).unwrap();
            config.probe_allowed(&m.check_for(target).unwrap())
        };
        assert!(allowed("tcp", "a.ok.test:443"));
        assert!(!allowed("tcp", "a.ok.test:80"));
        assert!(allowed("tcp", "10.1.2.3:25"));
        assert!(!allowed("tcp", "11.1.2.3:25"));
        assert!(allowed("dns", "ok.test"));
        assert!(
            !allowed("dns", "a.ok.test"),
            "a port rule admits no DNS probe"
        );
        assert!(allowed("http", "https://a.ok.test/x"));
        assert!(!allowed("http", "http://a.ok.test/x"));
        assert!(allowed("down", "http://10.0.0.1/d"));
        assert!(!allowed("down", "http://other.test/d"));
    }
}
