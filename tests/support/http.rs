//! The HTTP/1.1 test server on loopback, plain or over TLS, whose paths
//! each answer one way (200, a redirect, 503, a reset, a stall, a trickle,
//! a freeze, a fast body), for HTTP and download checks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::TlsCounts;

/// An HTTP/1.1 server on 127.0.0.1:0 (over TLS with `tls`) that reads one
/// request per connection and answers by path: `/ok` 200 with the body
/// `hello`; `/redirect` 302 to `/ok`; `/unavailable` 503; `/reset` resets
/// the connection after reading the request; `/stall` sends the headers
/// and then nothing; `/64k` sends 64 KiB of a longer body and then
/// nothing; `/trickle` 64 KiB at about 50 KB/s; `/freeze` 16 KiB of a
/// longer body and then nothing; `/fast` 256 KiB at once; anything else
/// 404. A query string is ignored. Returns its address.
pub async fn http_server(tls: Option<Arc<ServerConfig>>) -> SocketAddr {
    http_server_counted(tls).await.0
}

/// [`http_server`], also returning what it counts: connections accepted
/// and TLS handshakes that resumed a session.
pub async fn http_server_counted(tls: Option<Arc<ServerConfig>>) -> (SocketAddr, TlsCounts) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tls.map(TlsAcceptor::from);
    let counts = TlsCounts::default();
    let c = counts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            c.accepted.add();
            let acceptor = acceptor.clone();
            let resumed = c.resumed.clone();
            tokio::spawn(async move {
                let linger = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                match acceptor {
                    Some(a) => {
                        if let Ok(s) = a.accept(stream).await {
                            if s.get_ref().1.handshake_kind()
                                == Some(rustls::HandshakeKind::Resumed)
                            {
                                resumed.add();
                            }
                            serve_http(s, linger.is_ok()).await;
                        }
                    }
                    None => serve_http(stream, linger.is_ok()).await,
                }
            });
        }
    });
    (addr, counts)
}

/// Answers one request on `s` as [`http_server`] describes.
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
