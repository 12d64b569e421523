//! STUN test servers on loopback (for call-port checks): over UDP with a
//! chosen behaviour (success, 401, garbage, dropped requests), over TCP,
//! and a UDP port nothing listens on.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

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

/// A STUN server on UDP 127.0.0.1:0 that answers each Binding request as
/// `how` says (the success response carries the client's address in
/// XOR-MAPPED-ADDRESS). Returns its address.
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

/// A STUN server on TCP 127.0.0.1:0 (bare messages, no framing) that reads
/// one 20-byte request header per connection and answers it with a
/// success response carrying the client's address. Returns its address.
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

/// A 127.0.0.1 UDP port nothing listens on (a datagram sent to it draws
/// ICMP port unreachable, which a connected socket reports as refused).
pub async fn closed_udp_port() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
}
