//! DNS test servers on 127.0.0.1:0: hickory-server with a small zone over
//! UDP, TCP, DoT and DoH; a UDP server that answers every query with one
//! response code; a UDP socket that never answers. Each counts the queries
//! it receives, so tests can assert "one query per check per scrape".

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::rdata::{A, AAAA, SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use tokio::net::{TcpListener, UdpSocket};

use super::{CertKind, Counter, Pki};

/// hickory-server serving the zone `test.` on four listeners of 127.0.0.1:
/// plain UDP and TCP, DoT (ALPN `dot`) and DoH (ALPN `h2`, path
/// `/dns-query`), both with a test-CA certificate for `dns.test`.
/// [`DnsServer::start`] says what the zone holds.
pub struct DnsServer {
    /// Plain DNS over UDP.
    pub udp: SocketAddr,
    /// Plain DNS over TCP.
    pub tcp: SocketAddr,
    /// DNS over TLS, certificate for `dns.test`.
    pub dot: SocketAddr,
    /// DNS over HTTPS at `https://{doh}/dns-query`, certificate for `dns.test`.
    pub doh: SocketAddr,
    /// Every query received, over any of the four transports.
    pub queries: Counter,
    _server: Server<CountingCatalog>,
}

impl DnsServer {
    /// A server of the zone `test.` answering: `ok.test` A 127.0.0.1 and
    /// AAAA ::1; `pub.test` A 198.41.0.4 (public, never connected to);
    /// `bogon.test` A 10.0.0.1; `empty.test` only TXT (NOERROR, no
    /// address); any other name under `test.` NXDOMAIN.
    pub async fn start(pki: &Pki) -> DnsServer {
        Self::serve(
            pki,
            &[
                ("ok.test.", "127.0.0.1"),
                ("ok.test.", "::1"),
                ("pub.test.", "198.41.0.4"),
                ("bogon.test.", "10.0.0.1"),
            ],
        )
        .await
    }

    /// A server of the zone `test.` holding only `records` (name, address:
    /// an A or AAAA record each) and `empty.test` TXT; any other name
    /// NXDOMAIN.
    pub async fn serve(pki: &Pki, records: &[(&str, &str)]) -> DnsServer {
        let origin = Name::from_ascii("test.").unwrap();
        let mut zone =
            InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::empty(
                origin.clone(),
                ZoneType::Primary,
                AxfrPolicy::Deny,
            );
        let soa = SOA::new(
            Name::from_ascii("ns.test.").unwrap(),
            Name::from_ascii("root.test.").unwrap(),
            1,
            3600,
            600,
            86400,
            60,
        );
        let rec =
            |name: &str, data: RData| Record::from_rdata(Name::from_ascii(name).unwrap(), 60, data);
        let mut all = vec![
            rec("test.", RData::SOA(soa)),
            rec("empty.test.", RData::TXT(TXT::new(vec!["x".into()]))),
        ];
        for (name, ip) in records {
            all.push(rec(
                name,
                match ip.parse::<std::net::IpAddr>().unwrap() {
                    std::net::IpAddr::V4(a) => RData::A(A::from(a)),
                    std::net::IpAddr::V6(a) => RData::AAAA(AAAA::from(a)),
                },
            ));
        }
        for r in all {
            assert!(zone.upsert_mut(r, 1));
        }
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::new(&origin), vec![Arc::new(zone)]);
        let queries = Counter::default();
        let mut server = Server::new(CountingCatalog {
            catalog,
            queries: queries.clone(),
        });

        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let udp_addr = udp.local_addr().unwrap();
        server.register_socket(udp);
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp_addr = tcp.local_addr().unwrap();
        server.register_listener(tcp, Duration::from_secs(5), 65535);
        let dot = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dot_addr = dot.local_addr().unwrap();
        server
            .register_tls_listener_with_tls_config(
                dot,
                Duration::from_secs(5),
                pki.server_config(&["dns.test"], CertKind::Good, &[b"dot"]),
            )
            .unwrap();
        let doh = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let doh_addr = doh.local_addr().unwrap();
        server
            .register_https_listener_with_tls_config(
                doh,
                Duration::from_secs(5),
                pki.server_config(&["dns.test"], CertKind::Good, &[b"h2"]),
                None,
                "/dns-query".into(),
            )
            .unwrap();
        DnsServer {
            udp: udp_addr,
            tcp: tcp_addr,
            dot: dot_addr,
            doh: doh_addr,
            queries,
            _server: server,
        }
    }
}

/// The zone's catalog, counting every request before it answers it.
struct CountingCatalog {
    catalog: Catalog,
    queries: Counter,
}

// `RequestHandler` is an `async_trait`; this is the signature it expands to.
impl RequestHandler for CountingCatalog {
    fn handle_request<'a, 'b, 'f, R, T>(
        &'a self,
        request: &'b Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'f>>
    where
        R: ResponseHandler + 'f,
        T: Time + 'f,
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        self.queries.add();
        self.catalog
            .handle_request::<R, T>(request, response_handle)
    }
}

/// A UDP DNS server on 127.0.0.1:0 that answers every query with response
/// code `rcode` (2 = SERVFAIL, 5 = REFUSED), the question echoed and no
/// records. Returns its address and the count of datagrams it received.
pub async fn rcode_server(rcode: u8) -> (SocketAddr, Counter) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let received = Counter::default();
    let count = received.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
            count.add();
            if n < 12 {
                continue;
            }
            // Header + the first question (labels up to the root, then type and class).
            let mut end = 12;
            while end < n && buf[end] != 0 {
                end += 1 + buf[end] as usize;
            }
            end += 5;
            if end > n {
                continue;
            }
            let mut resp = buf[..end].to_vec();
            resp[2] = 0x80 | (buf[2] & 0x79); // QR, opcode and RD copied
            resp[3] = 0x80 | (rcode & 0x0f); // RA, rcode
            resp[4..6].copy_from_slice(&[0, 1]);
            resp[6..12].fill(0);
            let _ = sock.send_to(&resp, peer).await;
        }
    });
    (addr, received)
}

/// A UDP socket on 127.0.0.1:0 that reads datagrams (DNS queries, STUN
/// requests) and never answers. Returns its address and the count of
/// datagrams it received.
pub async fn silent_udp() -> (SocketAddr, Counter) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let received = Counter::default();
    let count = received.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while sock.recv_from(&mut buf).await.is_ok() {
            count.add();
        }
    });
    (addr, received)
}
