//! In-process servers for the integration tests, all on 127.0.0.1:0.
//!
//! - [`Pki`]: a test CA (written to a PEM file for `ca_file`) that issues
//!   server certificates, plus an unrelated CA for `ssl_unknown_authority`.
//! - [`DnsServer`]: hickory-server serving the zone `test.` over UDP, TCP,
//!   DoT and DoH (see [`DnsServer::start`] for the names).
//! - [`rcode_server`]: answers every query with a fixed response code
//!   (SERVFAIL, REFUSED); [`silent_udp`]: a socket that never answers.
//! - [`tls_server`]: a real TLS server; [`bad_tls_server`]: servers that
//!   reset, stall, close or send an alert after the ClientHello;
//!   [`closed_port`]: a port nothing listens on.
//! - [`Exporter`]: the real HTTP server on a config, and [`get`] to scrape it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::rdata::{A, AAAA, SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use hickory_server::Server;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_rustls::TlsAcceptor;

/// Runs every check of config text `yaml` (as if read from `dir`)
/// concurrently under a 5 s deadline, and returns the outcomes in config
/// order.
pub async fn run_checks(yaml: &str, dir: &Path) -> Vec<reachability_exporter::probe::Outcome> {
    use reachability_exporter::engine::catalogue::Catalogue;
    use reachability_exporter::probe::Progress;
    let config = reachability_exporter::config::Config::parse(yaml, &dir.join("config.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let cat = Catalogue::new(config).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let runs = cat.entries().map(|(id, _)| {
        let cat = &cat;
        async move { cat.run(id, deadline, &Progress::default()).await }
    });
    futures_util::future::join_all(runs).await
}

/// Runs `fut` under a time limit, so no test can hang.
pub async fn within<T>(secs: u64, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .expect("test exceeded its time limit")
}

/// A CA that issues server certificates, written to `ca_pem`.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_pem: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
    other: CertifiedIssuer<'static, KeyPair>,
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

/// How a server certificate should be made.
#[derive(Clone, Copy, PartialEq)]
pub enum CertKind {
    /// Valid, issued by the test CA.
    Good,
    /// Issued by a CA the client does not trust.
    UnknownCa,
    /// Expired (2021).
    Expired,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = new_ca("reachability test CA");
        let other = new_ca("untrusted CA");
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, ca.pem()).unwrap();
        Pki {
            dir,
            ca_pem,
            ca,
            other,
        }
    }

    /// A rustls server config for `names` (DNS names or IP addresses).
    pub fn server_config(
        &self,
        names: &[&str],
        kind: CertKind,
        alpn: &[&[u8]],
    ) -> Arc<ServerConfig> {
        self.make(names, kind, alpn, rustls::DEFAULT_VERSIONS)
    }

    /// A certificate for `names` issued by the test CA, and its key, as PEM.
    pub fn server_pem(&self, names: &[&str]) -> (String, String) {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        for n in names {
            p.subject_alt_names.push(match n.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*n).try_into().unwrap()),
            });
        }
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.ca).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A TLS client trusting the test CA.
    pub fn client(&self) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(cfg))
    }

    /// A server config for `names` that speaks TLS 1.2 only.
    pub fn tls12_only(&self, names: &[&str]) -> Arc<ServerConfig> {
        self.make(names, CertKind::Good, &[], &[&rustls::version::TLS12])
    }

    fn make(
        &self,
        names: &[&str],
        kind: CertKind,
        alpn: &[&[u8]],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<ServerConfig> {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        for n in names {
            p.subject_alt_names.push(match n.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*n).try_into().unwrap()),
            });
        }
        if kind == CertKind::Expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        } else {
            p.not_after = rcgen::date_time_ymd(2099, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let issuer = if kind == CertKind::UnknownCa {
            &self.other
        } else {
            &self.ca
        };
        let cert = p.signed_by(&key, issuer).unwrap();
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut cfg =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(versions)
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap();
        cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        Arc::new(cfg)
    }

    /// The notAfter (epoch seconds) of every valid test certificate.
    pub const NOT_AFTER: i64 = 4_070_908_800; // 2099-01-01T00:00:00Z
}

/// hickory-server with the zone `test.`:
/// `ok.test` A 127.0.0.1 and AAAA ::1; `pub.test` A 198.41.0.4 (public, never
/// connected to); `bogon.test` A 10.0.0.1; `empty.test` only TXT (NOERROR,
/// no address); any other name NXDOMAIN.
pub struct DnsServer {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub dot: SocketAddr,
    pub doh: SocketAddr,
    _server: Server<Catalog>,
}

impl DnsServer {
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
    /// A or AAAA) and `empty.test` TXT.
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
        let mut server = Server::new(catalog);

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
            _server: server,
        }
    }
}

/// A UDP DNS server that answers every query with response code `rcode`
/// (2 = SERVFAIL, 5 = REFUSED) and no records.
pub async fn rcode_server(rcode: u8) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
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
    addr
}

/// A UDP socket that reads queries and never answers.
pub async fn silent_udp() -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while sock.recv_from(&mut buf).await.is_ok() {}
    });
    addr
}

/// A TLS server that completes handshakes with `config` and then closes.
pub async fn tls_server(config: Arc<ServerConfig>) -> SocketAddr {
    tls_server_counting_resumptions(config).await.0
}

/// [`tls_server`] on `addr` (such as `127.0.0.2:0`, or a given port).
pub async fn tls_server_at(addr: &str, config: Arc<ServerConfig>) -> SocketAddr {
    tls_server_counting_resumptions_at(addr, config).await.0
}

/// A TLS server behind an SNI filter: a connection whose ClientHello
/// carries `blocked` (read before the handshake, the way DPI reads it) is
/// reset; any other completes its handshake with `config`.
pub async fn sni_filtering_server(config: Arc<ServerConfig>, blocked: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                // Wait for the whole first record (header + length).
                let n = loop {
                    let n = match stream.peek(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if n >= 5 {
                        let len = 5 + usize::from(u16::from_be_bytes([buf[3], buf[4]]));
                        if n >= len.min(buf.len()) {
                            break n;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                };
                if buf[..n]
                    .windows(blocked.len())
                    .any(|w| w == blocked.as_bytes())
                {
                    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                    return;
                }
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr
}

/// A QUIC server (quinn) on `addr` (UDP) completing handshakes with
/// `config` (its ALPN must include what the client offers).
pub async fn quic_server(addr: &str, config: Arc<ServerConfig>) -> SocketAddr {
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(config).unwrap();
    let server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let endpoint = quinn::Endpoint::server(server, addr.parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            tokio::spawn(async move {
                if let Ok(conn) = incoming.await {
                    let _ = conn.closed().await;
                }
            });
        }
    });
    addr
}

/// A UDP server answering every QUIC long-header packet with a Version
/// Negotiation packet that offers only a version nobody speaks.
pub async fn quic_version_negotiation_server() -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
            let p = &buf[..n];
            if n < 7 || p[0] & 0x80 == 0 {
                continue;
            }
            let dcid_len = usize::from(p[5]);
            let Some(dcid) = p.get(6..6 + dcid_len) else {
                continue;
            };
            let Some(&scid_len) = p.get(6 + dcid_len) else {
                continue;
            };
            let Some(scid) = p.get(7 + dcid_len..7 + dcid_len + usize::from(scid_len)) else {
                continue;
            };
            // RFC 9000 §17.2.1: the client's SCID becomes our DCID.
            let mut vn = vec![0x80, 0, 0, 0, 0];
            vn.push(scid_len);
            vn.extend_from_slice(scid);
            vn.push(dcid_len as u8);
            vn.extend_from_slice(dcid);
            vn.extend_from_slice(&[0x1a, 0x2a, 0x3a, 0x4a]);
            let _ = sock.send_to(&vn, peer).await;
        }
    });
    addr
}

/// [`tls_server`], also counting handshakes that resumed a session.
pub async fn tls_server_counting_resumptions(
    config: Arc<ServerConfig>,
) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    tls_server_counting_resumptions_at("127.0.0.1:0", config).await
}

async fn tls_server_counting_resumptions_at(
    addr: &str,
    config: Arc<ServerConfig>,
) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(config);
    let resumed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r = resumed.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let r = r.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    if tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                        r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    (addr, resumed)
}

/// What a misbehaving server does once the ClientHello has arrived.
#[derive(Clone, Copy, Debug)]
pub enum Misbehaviour {
    /// Reset the connection (SO_LINGER 0, as SNI filters do).
    Reset,
    /// Say nothing, keep the connection open.
    Stall,
    /// Close the connection normally (FIN).
    Close,
    /// Send a fatal handshake_failure alert.
    Alert,
}

pub async fn bad_tls_server(how: Misbehaviour) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                match how {
                    Misbehaviour::Reset => {
                        socket2::SockRef::from(&stream)
                            .set_linger(Some(Duration::ZERO))
                            .unwrap();
                        drop(stream);
                    }
                    Misbehaviour::Close => drop(stream),
                    Misbehaviour::Alert => {
                        // TLS record: alert, TLS 1.2, length 2, fatal handshake_failure.
                        let _ = stream
                            .write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])
                            .await;
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    Misbehaviour::Stall => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        drop(stream);
                    }
                }
            });
        }
    });
    addr
}

/// A loopback port nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// The exporter's real HTTP server, on 127.0.0.1:0, with a config file.
pub struct Exporter {
    pub addr: SocketAddr,
    pub config_file: PathBuf,
    pub engine: Arc<reachability_exporter::engine::Engine>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Exporter {
    /// Writes `config` to `dir/config.yaml` and serves it.
    pub async fn start(dir: &Path, config: &str) -> Exporter {
        let config_file = dir.join("config.yaml");
        std::fs::write(&config_file, config).unwrap();
        let cfg = reachability_exporter::config::Config::load(&config_file).unwrap();
        let cat = reachability_exporter::engine::catalogue::Catalogue::new(cfg).unwrap();
        let engine = reachability_exporter::engine::Engine::new(
            cat,
            config_file.clone(),
            Duration::from_millis(500),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let e = engine.clone();
        let task = tokio::spawn(async move {
            reachability_exporter::server::run(listener, e, &Default::default(), async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Exporter {
            addr,
            config_file,
            engine,
            stop: Some(tx),
            task,
        }
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.unwrap();
    }
}

/// A minimal HTTP/1.1 request; returns the status code and the body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let (status, _, body) = request_full(addr, method, path, headers).await;
    (status, body)
}

/// [`request`], also returning the response head (status line and headers).
pub async fn request_full(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    // Bodies are sent with Content-Length (axum), not chunked, for these routes.
    (status, head.to_string(), body.to_string())
}

/// GET with an optional scrape timeout header.
pub async fn get(addr: SocketAddr, path: &str, scrape_timeout: Option<&str>) -> (u16, String) {
    match scrape_timeout {
        Some(t) => {
            request(
                addr,
                "GET",
                path,
                &[("X-Prometheus-Scrape-Timeout-Seconds", t)],
            )
            .await
        }
        None => request(addr, "GET", path, &[]).await,
    }
}

/// The value of the sample of `name` whose labels include all of `labels`.
/// Panics if more than one sample matches.
pub fn sample(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in body.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (n, lbl) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        if n != name {
            continue;
        }
        if labels
            .iter()
            .all(|(k, v)| lbl.split(',').any(|p| p == format!("{k}=\"{v}\"")))
        {
            assert!(
                found.is_none(),
                "more than one sample of {name} matches {labels:?}"
            );
            found = Some(value.parse::<f64>().unwrap());
        }
    }
    found
}

/// A TCP relay to `to` that counts the connections it accepts and closes
/// each one after `lifetime` (as servers close idle connections).
pub async fn counting_relay(
    to: SocketAddr,
    lifetime: Duration,
) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut a, _)) = listener.accept().await else {
                return;
            };
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let Ok(mut b) = TcpStream::connect(to).await else {
                    return;
                };
                let _ =
                    tokio::time::timeout(lifetime, tokio::io::copy_bidirectional(&mut a, &mut b))
                        .await;
            });
        }
    });
    (addr, count)
}

/// How an in-process STUN server over UDP answers.
#[derive(Clone, Copy, Debug)]
pub enum StunBehaviour {
    /// A success response with the client's address in XOR-MAPPED-ADDRESS.
    Success,
    /// A 401 error response (as relays that want credentials send).
    Unauthorized,
    /// Garbage first (bytes, then a response to another transaction), then
    /// a valid success response.
    GarbageThenValid,
    /// Only garbage, never a valid response.
    OnlyGarbage,
    /// Ignores the first `n` requests, then answers with success.
    DropFirst(usize),
}

/// A STUN server on UDP 127.0.0.1:0 that answers as `how` says.
pub async fn stun_udp_server(how: StunBehaviour) -> SocketAddr {
    use reachability_exporter::stun;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        let mut seen = 0usize;
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
            seen += 1;
            if n < 20 {
                continue;
            }
            let mut id = [0u8; 12];
            id.copy_from_slice(&buf[8..20]);
            let ok = stun::encode_response(&id, 1, None, Some(peer));
            let send = |b: Vec<u8>| {
                let sock = &sock;
                async move {
                    let _ = sock.send_to(&b, peer).await;
                }
            };
            match how {
                StunBehaviour::Success => send(ok).await,
                StunBehaviour::Unauthorized => {
                    send(stun::encode_response(&id, 1, Some(401), None)).await
                }
                StunBehaviour::GarbageThenValid | StunBehaviour::OnlyGarbage => {
                    send(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()).await;
                    let mut wrong_cookie = ok.clone();
                    wrong_cookie[4] ^= 0xff;
                    send(wrong_cookie).await;
                    send(stun::encode_response(&[7; 12], 1, None, Some(peer))).await;
                    send(ok[..ok.len() - 4].to_vec()).await;
                    if matches!(how, StunBehaviour::GarbageThenValid) {
                        send(ok).await;
                    }
                }
                StunBehaviour::DropFirst(k) => {
                    if seen > k {
                        send(ok).await;
                    }
                }
            }
        }
    });
    addr
}

/// A STUN server over TCP (bare messages, no framing) that answers every
/// request with success.
pub async fn stun_tcp_server() -> SocketAddr {
    use reachability_exporter::stun;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, peer)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut req = [0u8; 20];
                if s.read_exact(&mut req).await.is_ok() {
                    let mut id = [0u8; 12];
                    id.copy_from_slice(&req[8..20]);
                    let _ = s
                        .write_all(&stun::encode_response(&id, 1, None, Some(peer)))
                        .await;
                }
            });
        }
    });
    addr
}

/// A loopback UDP port nothing listens on (sending to it draws ICMP port
/// unreachable).
pub async fn closed_udp_port() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
}

/// An HTTP/1.1 server on 127.0.0.1:0 (over TLS with `tls`) that answers by
/// path: `/ok` 200 with a body; `/redirect` 302 to `/ok`; `/unavailable`
/// 503; `/reset` resets the connection after reading the request;
/// `/stall` sends the headers and then nothing; `/64k` sends 64 KiB of a
/// longer body and then nothing; `/trickle` 64 KiB at about 50 KB/s;
/// `/freeze` 16 KiB of a longer body and then nothing; `/fast` 256 KiB at
/// once; anything else 404.
pub async fn http_server(tls: Option<Arc<ServerConfig>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let linger = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                match acceptor {
                    Some(a) => {
                        if let Ok(s) = a.accept(stream).await {
                            serve_http(s, linger.is_ok()).await;
                        }
                    }
                    None => serve_http(stream, linger.is_ok()).await,
                }
            });
        }
    });
    addr
}

async fn serve_http<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    _linger: bool,
) {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&req);
    let target = head.split_whitespace().nth(1).unwrap_or("/");
    // The query only tells checks of the same path apart.
    let path = target.split('?').next().unwrap_or("/").to_string();
    let reply = |status: &str, extra: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    match path.as_str() {
        "/ok" => {
            let _ = s.write_all(reply("200 OK", "", "hello").as_bytes()).await;
        }
        "/redirect" => {
            let _ = s
                .write_all(reply("302 Found", "Location: /ok\r\n", "").as_bytes())
                .await;
        }
        "/unavailable" => {
            let _ = s
                .write_all(reply("503 Service Unavailable", "", "down").as_bytes())
                .await;
        }
        // SO_LINGER 0 was set on accept: dropping the socket resets it.
        "/reset" => return,
        "/stall" => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
                .await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        // 1 KiB every 20 ms: about 50 KB/s, 64 KiB in all.
        "/trickle" => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n")
                .await;
            for _ in 0..64 {
                if s.write_all(&[b'x'; 1024]).await.is_err() || s.flush().await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // The TSPU's freeze: 16 KiB of a longer body, then nothing.
        "/freeze" => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n")
                .await;
            let _ = s.write_all(&[b'x'; 16384]).await;
            let _ = s.flush().await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        // 256 KiB at once.
        "/fast" => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 262144\r\n\r\n")
                .await;
            let _ = s.write_all(&vec![b'x'; 262144]).await;
        }
        "/64k" => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n")
                .await;
            let _ = s.write_all(&[b'x'; 65536]).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        _ => {
            let _ = s.write_all(reply("404 Not Found", "", "").as_bytes()).await;
        }
    }
    let _ = s.flush().await;
    let _ = s.shutdown().await;
    // Let the client read before the (linger 0) socket is dropped.
    tokio::time::sleep(Duration::from_millis(200)).await;
}
