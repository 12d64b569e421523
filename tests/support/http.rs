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

/// An HTTP/1.1 upload sink on 127.0.0.1:0 (over TLS with `tls`) whose
/// sockets have a small receive buffer (4 KiB asked), so that what the
/// server does not read, the kernel soon stops acknowledging — as when a
/// censor freezes the connection. It reads one request per connection and
/// answers by path: `/upload` reads the whole body (`Content-Length`) and
/// answers 200; `/freeze` reads 16 KiB of the body and then nothing;
/// `/slow` reads 1 KiB every 20 ms (about 50 KB/s), then answers 200;
/// `/reject` answers 413 without reading the body. Returns its address.
pub async fn upload_server(tls: Option<Arc<ServerConfig>>) -> SocketAddr {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(64).unwrap();
    socket.set_nonblocking(true).unwrap();
    let listener = TcpListener::from_std(socket.into()).unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(a) => {
                        if let Ok(s) = a.accept(stream).await {
                            serve_upload(s).await;
                        }
                    }
                    None => serve_upload(stream).await,
                }
            });
        }
    });
    addr
}

/// Answers one upload on `s` as [`upload_server`] describes.
async fn serve_upload<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S) {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    let end = loop {
        if let Some(i) = req.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&req[..end]).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut got = req.len() - end;
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    match path.as_str() {
        "/upload" | "/slow" => {
            let pause = (path == "/slow").then_some(Duration::from_millis(20));
            while got < length {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got += n,
                }
                if let Some(p) = pause {
                    tokio::time::sleep(p).await;
                }
            }
            let _ = s.write_all(ok).await;
        }
        "/freeze" => {
            while got < 16384 {
                match s.read(&mut buf[..(16384 - got).min(1024)]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got += n,
                }
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        "/reject" => {
            let _ = s
                .write_all(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
        _ => return,
    }
    let _ = s.flush().await;
    let _ = s.shutdown().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
}
