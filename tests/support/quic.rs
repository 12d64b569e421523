//! QUIC test servers over UDP on loopback: a real one (quinn) that
//! completes handshakes, one that answers only with Version Negotiation,
//! and a censor that drops QUIC by the SNI of the decrypted Initial.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use super::{Counter, client_hello, quic_initial};

use rustls::ServerConfig;
use tokio::net::UdpSocket;

/// A QUIC server (quinn) bound to UDP `addr` (such as `127.0.0.1:0`) that
/// completes each handshake with `config` (TLS 1.3; its ALPN must include
/// what the client offers, such as `h3`) and keeps the connection until
/// the client closes it. Returns the address it is bound to.
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

/// A UDP server on 127.0.0.1:0 answering every QUIC long-header packet
/// with a Version Negotiation packet that offers only a version nobody
/// speaks (so no handshake can start); short-header packets are ignored.
/// Returns its address.
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

/// A censor in front of a QUIC server: a UDP relay on 127.0.0.1:0 to
/// `upstream` that decrypts each client's first Initial packet (as the
/// TSPU does, net4people/bbs#654) and, when its ClientHello's SNI is
/// `blocked`, drops every datagram of that client from then on; other
/// clients pass both ways. Returns its address and a count of the
/// clients it blocked.
pub async fn quic_sni_filter(upstream: SocketAddr, blocked: &str) -> (SocketAddr, Counter) {
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = front.local_addr().unwrap();
    let blocked = blocked.to_string();
    let count = Counter::default();
    let seen = count.clone();
    tokio::spawn(async move {
        // Per client: its own socket to the server, or None when blocked.
        let mut flows: HashMap<SocketAddr, Option<Arc<UdpSocket>>> = HashMap::new();
        let mut buf = [0u8; 65536];
        while let Ok((n, client)) = front.recv_from(&mut buf).await {
            let datagram = &buf[..n];
            let flow = match flows.get(&client) {
                Some(flow) => flow.clone(),
                None => {
                    let hello = quic_initial::client_hello(datagram);
                    let sni = hello.as_deref().and_then(client_hello::sni);
                    let flow = if sni.as_deref() == Some(blocked.as_str()) {
                        seen.add();
                        None
                    } else {
                        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                        back.connect(upstream).await.unwrap();
                        let (reply, from) = (front.clone(), back.clone());
                        tokio::spawn(async move {
                            let mut buf = [0u8; 65536];
                            while let Ok(n) = from.recv(&mut buf).await {
                                let _ = reply.send_to(&buf[..n], client).await;
                            }
                        });
                        Some(back)
                    };
                    flows.insert(client, flow.clone());
                    flow
                }
            };
            if let Some(back) = flow {
                let _ = back.send(datagram).await;
            }
        }
    });
    (addr, count)
}
