//! Where the exporter serves: [`ListenAddress`], written as Prometheus
//! exporters write it (exporter-toolkit's `--web.listen-address`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;

/// A listen address: `IP:PORT`, `[IPv6]:PORT`, `HOST:PORT` (a name,
/// resolved when binding, as Go's `net.Listen` does: its first IPv4
/// address, else its first) or `:PORT` (every address, IPv4 and IPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddress {
    host: ListenHost,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ListenHost {
    /// `:PORT`.
    Any,
    Ip(IpAddr),
    Name(String),
}

impl FromStr for ListenAddress {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let wrong = || {
            format!(
                "invalid listen address {s:?}: expected HOST:PORT or :PORT, such as 0.0.0.0:9799, localhost:9799 or :9799"
            )
        };
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(ListenAddress {
                host: ListenHost::Ip(addr.ip()),
                port: addr.port(),
            });
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(wrong)?;
        let port: u16 = port.parse().map_err(|_| wrong())?;
        // Past the parse above, an IP address is a bare IPv6 one (it needs
        // brackets) or `[…]` that is no address: neither is a name.
        let host = if host.is_empty() {
            ListenHost::Any
        } else if host
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            ListenHost::Name(host.to_ascii_lowercase())
        } else {
            return Err(wrong());
        };
        Ok(ListenAddress { host, port })
    }
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            ListenHost::Any => write!(f, ":{}", self.port),
            ListenHost::Ip(ip) => write!(f, "{}", SocketAddr::new(*ip, self.port)),
            ListenHost::Name(n) => write!(f, "{n}:{}", self.port),
        }
    }
}

impl ListenAddress {
    /// The sockets to try binding, in order, until one binds: `:PORT` is
    /// `[::]:PORT` (which takes IPv4 too, Linux's default), then
    /// `0.0.0.0:PORT` where IPv6 is off. Resolving a name may block.
    pub fn candidates(&self) -> std::io::Result<Vec<SocketAddr>> {
        match &self.host {
            ListenHost::Any => Ok(vec![
                SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), self.port),
                SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), self.port),
            ]),
            ListenHost::Ip(ip) => Ok(vec![SocketAddr::new(*ip, self.port)]),
            ListenHost::Name(n) => {
                let all: Vec<SocketAddr> = (n.as_str(), self.port).to_socket_addrs()?.collect();
                let first = all.iter().find(|a| a.is_ipv4()).or(all.first()).copied();
                first.map(|a| vec![a]).ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address")
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_prometheus_users_write() {
        let ok = [
            ("0.0.0.0:9799", "0.0.0.0:9799"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            ("[::1]:9799", "[::1]:9799"),
            (":9799", ":9799"),
            ("localhost:9799", "localhost:9799"),
            ("Exporter-1.lab:80", "exporter-1.lab:80"),
        ];
        for (written, shown) in ok {
            let a: ListenAddress = written.parse().unwrap_or_else(|e| panic!("{written}: {e}"));
            assert_eq!(a.to_string(), shown);
        }
        for bad in [
            "9799",
            "localhost",
            ":",
            ":99999",
            "::1:9799",
            "[nope]:80",
            "a b:80",
            "a..b:80",
            "",
        ] {
            let e = bad.parse::<ListenAddress>().unwrap_err();
            assert!(
                e.starts_with(&format!("invalid listen address {bad:?}")),
                "{e}"
            );
        }
    }

    #[test]
    fn any_tries_both_families_and_a_name_prefers_ipv4() {
        let any: ListenAddress = ":9799".parse().unwrap();
        let c = any.candidates().unwrap();
        assert_eq!(c[0].to_string(), "[::]:9799");
        assert_eq!(c[1].to_string(), "0.0.0.0:9799");
        let local: ListenAddress = "localhost:9799".parse().unwrap();
        assert_eq!(
            local.candidates().unwrap(),
            vec!["127.0.0.1:9799".parse().unwrap()]
        );
    }
}
