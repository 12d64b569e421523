//! The network side of the TTL search ([`crate::locate`]): a ClientHello
//! sent over a fresh TCP connection with a limited IP TTL, and a UDP probe
//! with the same TTL whose ICMP time exceeded names the router.
//!
//! The connection itself is made with the normal TTL; only then is the TTL
//! lowered ([`kernel::limit_hops`]), so that only the ClientHello's packets
//! expire. Nothing here needs a privilege: `IP_RECVERR` makes a router's
//! time exceeded fail the TCP socket with `EHOSTUNREACH`, and queues the
//! router's address on the UDP socket's error queue (Linux does not queue
//! it for an established TCP socket).

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use socket2::SockRef;
use tokio::io::{AsyncWriteExt, Interest};

use super::kernel::{self, Icmp};
use super::tcp;
use crate::locate::{Answer, Hello, Prober};

/// The first port of the UDP probes (traceroute's): hop `n` is sent to
/// this port + `n`.
const UDP_BASE_PORT: u16 = 33434;

/// The TTL a probe's connection gets back before it is closed (Linux's
/// default).
const NORMAL_TTL: u8 = 64;

/// How often the UDP probe's error queue is looked at.
const POLL: Duration = Duration::from_millis(10);

/// Probes one address with two ClientHellos, real and neutral.
#[derive(Debug)]
pub struct TtlProber {
    addr: SocketAddr,
    real: Vec<u8>,
    neutral: Vec<u8>,
    wait: Duration,
}

/// A ClientHello: the client configuration and the server name it sends
/// (`None`: none, for a bare IP address).
pub type HelloOf<'a> = (&'a Arc<ClientConfig>, Option<&'a str>);

impl TtlProber {
    /// A prober of `addr` sending `real` and `neutral`, waiting `wait` at
    /// most for each probe's answer.
    pub fn new(
        addr: SocketAddr,
        real: HelloOf<'_>,
        neutral: HelloOf<'_>,
        wait: Duration,
    ) -> Result<TtlProber, rustls::Error> {
        Ok(TtlProber {
            addr,
            real: client_hello(addr.ip(), real)?,
            neutral: client_hello(addr.ip(), neutral)?,
            wait,
        })
    }

    async fn exchange(&self, ttl: u8, hello: &[u8]) -> Option<Answer> {
        let mut stream = tcp::connect(self.addr).await.ok()?;
        kernel::limit_hops(stream.as_raw_fd(), self.addr.is_ipv6(), ttl).ok()?;
        if let Err(e) = stream.write_all(hello).await {
            return Some(answer_of(&e));
        }
        // A socket error (the router's time exceeded) wakes a poller with
        // EPOLLERR alone, which a plain read never waits for (nor tokio's
        // try_read looks at): wait for either, and then read the socket
        // itself, which returns data that came before an error first (a
        // server may answer, then reset).
        let answer = loop {
            let ready = stream
                .ready(Interest::READABLE | Interest::ERROR)
                .await
                .ok()?;
            let mut byte = [MaybeUninit::uninit()];
            let read = match ready.is_error() {
                false => stream.try_io(Interest::READABLE, || {
                    SockRef::from(&stream).recv(&mut byte)
                }),
                true => stream.try_io(Interest::ERROR, || SockRef::from(&stream).recv(&mut byte)),
            };
            match read {
                Ok(0) => break Answer::Closed,
                Ok(_) => break Answer::Through,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => break answer_of(&e),
            }
        };
        // Close without a trace on the path: the normal TTL back, then a
        // reset rather than a FIN that the kernel would send again and
        // again with the probe's TTL, each time drawing ICMP a router
        // rate-limits (and the router's address is asked next).
        let _ = kernel::limit_hops(stream.as_raw_fd(), self.addr.is_ipv6(), NORMAL_TTL);
        let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        Some(answer)
    }
}

impl Prober for TtlProber {
    async fn probe(&self, ttl: u8, hello: Hello) -> Answer {
        let bytes = match hello {
            Hello::Real => &self.real,
            Hello::Neutral => &self.neutral,
        };
        // A connect that fails proves nothing of the ClientHello: silence
        // (asked again, and never a proof).
        match tokio::time::timeout(self.wait, self.exchange(ttl, bytes)).await {
            Ok(Some(answer)) => answer,
            Ok(None) | Err(_) => Answer::Silent,
        }
    }

    async fn router(&self, ttl: u8) -> Option<IpAddr> {
        let bind: SocketAddr = match self.addr {
            SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = tokio::net::UdpSocket::bind(bind).await.ok()?;
        let port = UDP_BASE_PORT.saturating_add(u16::from(ttl));
        socket.connect((self.addr.ip(), port)).await.ok()?;
        kernel::limit_hops(socket.as_raw_fd(), self.addr.is_ipv6(), ttl).ok()?;
        // Sent a few times, paced: routers rate-limit their ICMP.
        for _ in 0..3 {
            // A send may fail with the error of the previous one's ICMP.
            let _ = socket
                .send(b"reachability_exporter: which hop is this?")
                .await;
            let until = tokio::time::Instant::now() + self.wait.min(Duration::from_secs(1));
            while tokio::time::Instant::now() < until {
                match kernel::expired_at(socket.as_raw_fd()) {
                    Ok(Some(Icmp::Expired(router))) => return router,
                    // It reached its host: no router at this hop.
                    Ok(Some(Icmp::Other)) => return None,
                    _ => {}
                }
                tokio::time::sleep(POLL).await;
            }
        }
        None
    }
}

/// What an error on the probe's connection says.
fn answer_of(e: &io::Error) -> Answer {
    match e.raw_os_error() {
        Some(libc::EHOSTUNREACH) => Answer::Expired,
        Some(libc::ECONNRESET) | Some(libc::EPIPE) => Answer::Reset,
        _ => Answer::Silent,
    }
}

/// The first flight of a TLS client with `config` and server name `sni`
/// to `ip`: the ClientHello record.
fn client_hello(ip: IpAddr, (config, sni): HelloOf<'_>) -> Result<Vec<u8>, rustls::Error> {
    let name = match sni {
        Some(n) => ServerName::try_from(n.to_string())
            .map_err(|_| rustls::Error::General(format!("{n:?} is not a server name")))?,
        None => ServerName::IpAddress(ip.into()),
    };
    let mut conn = rustls::ClientConnection::new(config.clone(), name)?;
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out)
            .map_err(|e| rustls::Error::General(e.to_string()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// On loopback no router is crossed: a TTL of 1 reaches the server.
    #[tokio::test]
    async fn on_loopback_a_hello_gets_through_and_a_reset_is_a_reset() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = tokio::spawn(async move {
            let mut firsts = Vec::new();
            for answer_with_reset in [false, true] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 5];
                s.read_exact(&mut buf).await.unwrap();
                firsts.push(buf);
                if answer_with_reset {
                    socket2::SockRef::from(&s)
                        .set_linger(Some(Duration::ZERO))
                        .unwrap();
                    drop(s);
                } else {
                    s.write_all(b"\x16\x03\x03").await.unwrap();
                }
            }
            firsts
        });
        let config = Arc::new(
            crate::probe::tls::client_config(
                &crate::config::Trust::Insecure,
                crate::probe::tls::Alpn::Browser,
            )
            .unwrap(),
        );
        let p = TtlProber::new(
            addr,
            (&config, Some("real.example")),
            (&config, Some("neutral.example")),
            Duration::from_secs(2),
        )
        .unwrap();
        assert!(p.real.windows(12).any(|w| w == b"real.example"));
        assert!(p.neutral.windows(15).any(|w| w == b"neutral.example"));
        assert_eq!(p.probe(1, Hello::Neutral).await, Answer::Through);
        assert_eq!(p.probe(1, Hello::Real).await, Answer::Reset);
        // Both were TLS handshake records (content type 22).
        for first in seen.await.unwrap() {
            assert_eq!(first[0], 0x16);
        }
        // Nothing listens: the connect fails, which proves nothing.
        drop(p);
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let p = TtlProber::new(
            closed,
            (&config, None),
            (&config, None),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(p.probe(1, Hello::Real).await, Answer::Silent);
    }
}
