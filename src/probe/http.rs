//! The HTTP prober: a GET of a URL, step by step, as OONI measures it.
//!
//! Each hop resolves the host with the service's resolver (stage `resolve`),
//! connects (`connect`), does the TLS handshake for https (`tls_handshake`),
//! then sends the request and reads the status and at most `max_body` bytes
//! of the body over HTTP/1.1 (`http`). Driving the steps ourselves, rather
//! than through an HTTP client library, is what lets a failure — a timeout
//! above all — be attributed to the step it happened in. Redirects are
//! followed up to `max_redirects` (default 0: a redirect to a block page is
//! the answer, and its status is reported). The duration is the whole
//! request, every hop included.

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::{Facts, Outcome, Progress, TargetResolver, tcp};
use crate::config::{Host, HttpCheck, url_target};
use crate::reason::{Reason, Stage, classify};

/// Redirect statuses whose `Location` is followed.
const REDIRECTS: [u16; 5] = [301, 302, 303, 307, 308];

/// What one hop got.
struct Hop {
    status: u16,
    location: Option<String>,
}

pub(super) type Failure = (Stage, Reason);

/// Fetches the check's URL and judges the final status.
pub async fn probe(
    check: &HttpCheck,
    tls: Option<Arc<ClientConfig>>,
    resolver: TargetResolver<'_>,
    progress: &Progress,
) -> Outcome {
    let start = Instant::now();
    let mut url = check.url.clone();
    let mut redirects = 0;
    loop {
        let hop = match fetch(&url, check.max_body, tls.as_ref(), &resolver, progress).await {
            Ok(h) => h,
            Err((stage, reason)) => {
                tracing::debug!(url = %url, stage = stage.as_str(), reason = reason.as_str(), "http check failed");
                return Outcome::failed(stage, reason);
            }
        };
        let next = hop
            .location
            .filter(|_| REDIRECTS.contains(&hop.status) && redirects < check.max_redirects)
            .and_then(|l| url.join(&l).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"));
        if let Some(next) = next {
            tracing::debug!(from = %url, to = %next, status = hop.status, "following redirect");
            url = next;
            redirects += 1;
            continue;
        }
        let failure =
            (!check.accepts(hop.status)).then_some((Stage::Http, Reason::HttpUnexpectedStatus));
        return Outcome {
            failure,
            duration: Some(start.elapsed()),
            facts: Facts::Http { status: hop.status },
            control: None,
            ech: None,
        };
    }
}

/// A connection, plain or TLS.
pub(super) trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// Aborts the connection task when the hop ends or is cancelled.
pub(super) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn fetch(
    url: &url::Url,
    max_body: u64,
    tls: Option<&Arc<ClientConfig>>,
    resolver: &TargetResolver<'_>,
    progress: &Progress,
) -> Result<Hop, Failure> {
    let (stream, _) = open(url, tls, resolver, progress).await?;
    progress.enter(Stage::Http);
    let (mut sender, _conn) = start(stream).await?;
    let request = get_request(url)?;
    let response = sender.send_request(request).await.map_err(http_err)?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(hyper::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // Read the body, but no more than max_body bytes of it.
    let mut body = response.into_body();
    let mut read = 0u64;
    while read < max_body {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len() as u64),
            Some(Err(e)) => return Err(http_err(e)),
        }
    }
    Ok(Hop { status, location })
}

/// A hyper error at stage `http`: a message cut short is `eof_error`.
pub(super) fn http_err(e: hyper::Error) -> Failure {
    let reason = if e.is_incomplete_message() {
        Reason::Eof
    } else {
        classify(&e)
    };
    (Stage::Http, reason)
}

/// An open connection beside its stream: its socket, for the kernel's
/// counters, and the bytes TLS adds to each record (0 for plain HTTP).
#[derive(Debug)]
pub(super) struct Conn {
    /// The TCP socket: a duplicate descriptor, so that the counters read
    /// are this connection's even once the HTTP client has closed its own
    /// (a closed descriptor's number may already name another socket). The
    /// socket closes when both are closed.
    pub fd: OwnedFd,
    /// Header, tag (and TLS 1.2's explicit nonce) of each TLS record.
    pub record_overhead: u64,
}

/// An HTTP/1.1 client on `stream`; the connection task ends when the
/// returned guard is dropped.
pub(super) async fn start(
    stream: Pin<Box<dyn Stream>>,
) -> Result<
    (
        hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
        AbortOnDrop,
    ),
    Failure,
> {
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http_err)?;
    let guard = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    Ok((sender, guard))
}

/// The GET we send for `url`.
pub(super) fn get_request(url: &url::Url) -> Result<hyper::Request<Empty<Bytes>>, Failure> {
    let authority = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(
            hyper::header::USER_AGENT,
            concat!("reachability_exporter/", env!("CARGO_PKG_VERSION")),
        )
        .header(hyper::header::ACCEPT, "*/*")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|_| (Stage::Http, Reason::UnknownFailure))
}

/// Resolves `url`'s host, connects, and for https does the TLS handshake:
/// each step at its own stage.
pub(super) async fn open(
    url: &url::Url,
    tls: Option<&Arc<ClientConfig>>,
    resolver: &TargetResolver<'_>,
    progress: &Progress,
) -> Result<(Pin<Box<dyn Stream>>, Conn), Failure> {
    let target = url_target(url).ok_or((Stage::Http, Reason::UnknownFailure))?;
    let ip = resolver
        .resolve(&target.host, progress)
        .await
        .map_err(|r| (Stage::Resolve, r))?;
    progress.enter(Stage::Connect);
    let tcp = tcp::connect(SocketAddr::new(ip, target.port))
        .await
        .map_err(|e| (Stage::Connect, classify(&e)))?;
    let mut conn = Conn {
        fd: tcp
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| (Stage::Connect, classify(&e)))?,
        record_overhead: 0,
    };
    let stream: Pin<Box<dyn Stream>> = if url.scheme() == "https" {
        // Catalogue::new builds a TLS configuration for every HTTP check.
        let cfg = tls.ok_or((Stage::TlsHandshake, Reason::UnknownFailure))?;
        let name = match &target.host {
            Host::Name(n) => ServerName::try_from(n.clone())
                .map_err(|_| (Stage::TlsHandshake, Reason::UnknownFailure))?,
            Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
        };
        progress.enter(Stage::TlsHandshake);
        let s = TlsConnector::from(cfg.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| (Stage::TlsHandshake, classify(&e)))?;
        conn.record_overhead = record_overhead(s.get_ref().1);
        Box::pin(s)
    } else {
        Box::pin(tcp)
    };
    Ok((stream, conn))
}

/// The bytes a TLS record adds to its plaintext under the negotiated
/// suite: TLS 1.3 a 5-byte header, the content type and a 16-byte tag;
/// TLS 1.2 with AES-GCM also an 8-byte explicit nonce, with ChaCha20 none.
fn record_overhead(conn: &rustls::ClientConnection) -> u64 {
    use rustls::{CipherSuite, ProtocolVersion};
    match (
        conn.protocol_version(),
        conn.negotiated_cipher_suite().map(|s| s.suite()),
    ) {
        (Some(ProtocolVersion::TLSv1_2), Some(s))
            if s == CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                || s == CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 =>
        {
            5 + 16
        }
        (Some(ProtocolVersion::TLSv1_2), _) => 5 + 8 + 16,
        _ => 5 + 1 + 16,
    }
}
