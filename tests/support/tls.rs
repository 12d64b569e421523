//! TCP and TLS test servers on loopback: real TLS servers (counting the
//! connections they accept and the handshakes that resumed a session),
//! servers that misbehave after the ClientHello, filters that read the
//! ClientHello (by SNI, or for the ECH extension), a counting TCP relay, and
//! a port nothing listens on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::{Counter, client_hello};

/// What a TLS (or HTTPS) test server saw.
#[derive(Clone, Debug, Default)]
pub struct TlsCounts {
    /// TCP connections accepted (counted before any byte is read).
    pub accepted: Counter,
    /// Handshakes that resumed an earlier session (a ticket or session ID).
    pub resumed: Counter,
}

/// A TLS server on 127.0.0.1:0 that completes each handshake with `config`
/// (its certificate, versions and ALPN), sends close_notify and closes.
/// Returns its address.
pub async fn tls_server(config: Arc<ServerConfig>) -> SocketAddr {
    tls_server_counted_at("127.0.0.1:0", config).await.0
}

/// [`tls_server`] bound to `addr` (such as `127.0.0.2:0`, or a given
/// port). Returns the address it is bound to.
pub async fn tls_server_at(addr: &str, config: Arc<ServerConfig>) -> SocketAddr {
    tls_server_counted_at(addr, config).await.0
}

/// [`tls_server`], also returning what it counts: connections accepted and
/// handshakes that resumed a session.
pub async fn tls_server_counted(config: Arc<ServerConfig>) -> (SocketAddr, TlsCounts) {
    tls_server_counted_at("127.0.0.1:0", config).await
}

/// [`tls_server_at`] with the counts of [`tls_server_counted`].
pub async fn tls_server_counted_at(
    addr: &str,
    config: Arc<ServerConfig>,
) -> (SocketAddr, TlsCounts) {
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(config);
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
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    if tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                        resumed.add();
                    }
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    (addr, counts)
}

/// A TLS server on 127.0.0.1:0 behind an SNI filter: a connection whose
/// ClientHello carries `blocked` (read before the handshake, the way DPI
/// reads it) is reset; any other completes its handshake with `config` and
/// is closed. Returns its address.
pub async fn sni_filtering_server(config: Arc<ServerConfig>, blocked: &'static str) -> SocketAddr {
    sni_filtering_server_counted(config, blocked).await.0
}

/// [`sni_filtering_server`], with a count of the connections it reset.
pub async fn sni_filtering_server_counted(
    config: Arc<ServerConfig>,
    blocked: &'static str,
) -> (SocketAddr, Counter) {
    let blocks = move |record: &[u8]| {
        record
            .windows(blocked.len())
            .any(|w| w == blocked.as_bytes())
    };
    hello_filtering_server(config, blocks, Misbehaviour::Reset).await
}

/// A TLS server on 127.0.0.1:0 behind a filter that drops every ClientHello
/// carrying the encrypted_client_hello extension, as the TSPU does for ECH:
/// such a connection gets no answer (held open for 60 s); any other
/// completes its handshake with `config`. Returns its address and a count of
/// the connections it dropped.
pub async fn ech_filtering_server(config: Arc<ServerConfig>) -> (SocketAddr, Counter) {
    let blocks = |record: &[u8]| {
        client_hello::from_record(record)
            .is_some_and(|h| client_hello::has_extension(h, client_hello::ECH_EXTENSION))
    };
    hello_filtering_server(config, blocks, Misbehaviour::Stall).await
}

/// A TLS server on 127.0.0.1:0 that reads each connection's first TLS record
/// before the handshake, the way DPI does, and answers it with `action` when
/// `blocks` says so; any other connection completes its handshake with
/// `config` and is closed. Returns its address and a count of the
/// connections blocked.
async fn hello_filtering_server(
    config: Arc<ServerConfig>,
    blocks: impl Fn(&[u8]) -> bool + Send + Sync + 'static,
    action: Misbehaviour,
) -> (SocketAddr, Counter) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(config);
    let blocks = Arc::new(blocks);
    let count = Counter::default();
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, blocks, seen) = (acceptor.clone(), blocks.clone(), seen.clone());
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
                if blocks(&buf[..n]) {
                    seen.add();
                    misbehave(stream, action).await;
                    return;
                }
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    (addr, count)
}

/// What a misbehaving server does once the ClientHello has arrived.
#[derive(Clone, Copy, Debug)]
pub enum Misbehaviour {
    /// Reset the connection (SO_LINGER 0, as SNI filters do).
    Reset,
    /// Say nothing, keep the connection open (for 60 s).
    Stall,
    /// Close the connection normally (FIN).
    Close,
    /// Send a fatal handshake_failure alert, then keep the connection open.
    Alert,
}

/// A TCP server on 127.0.0.1:0 that accepts, reads the ClientHello, and
/// then misbehaves as `how` says — it never completes a handshake. Returns
/// its address.
pub async fn bad_tls_server(how: Misbehaviour) -> SocketAddr {
    bad_tls_server_counted(how).await.0
}

/// [`bad_tls_server`], also returning the count of connections it
/// accepted (counted at accept, before the ClientHello is read).
pub async fn bad_tls_server_counted(how: Misbehaviour) -> (SocketAddr, Counter) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Counter::default();
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            count.add();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                misbehave(stream, how).await;
            });
        }
    });
    (addr, accepted)
}

/// Answers a connection whose ClientHello has arrived as `how` says.
async fn misbehave(mut stream: TcpStream, how: Misbehaviour) {
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
}

/// A 127.0.0.1 port nothing listens on (a connect to it is refused).
///
/// The port stays bound, never listening, for the life of the test
/// process: a port merely freed again could be taken by another test's
/// listener, or picked as the source port of a connect to itself (which
/// then succeeds, a TCP self-connect).
pub async fn closed_port() -> SocketAddr {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    // Leaked on purpose: see above.
    std::mem::forget(socket);
    addr
}

/// A TCP relay on 127.0.0.1:0 to `to` that closes each connection after
/// `lifetime` (as servers close idle connections). Returns its address and
/// the count of connections it accepted.
pub async fn counting_relay(to: SocketAddr, lifetime: Duration) -> (SocketAddr, Counter) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Counter::default();
    let c = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut a, _)) = listener.accept().await else {
                return;
            };
            c.add();
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
    (addr, accepted)
}
