//! The upload prober: a POST of `bytes` random bytes to a URL, timed and
//! rated by what the peer acknowledged — the TSPU freezes uploads to
//! foreign hosting after some 15–20 KB as it does downloads, and a write
//! that the kernel buffered proves nothing.
//!
//! Resolve, connect and TLS are the HTTP prober's steps (each failure at its
//! own stage). The request is our own HTTP/1.1 (head, then the body in
//! 16 KiB writes), so that its bytes on the wire are known: the body bytes
//! acknowledged are the socket's `tcpi_bytes_acked` counted from the
//! request's start, less the head, scaled from wire bytes (TLS framing
//! included) to body bytes. They are read every [`POLL`]; no progress for
//! `stall_after` before every body byte was acknowledged fails the check at
//! stage `write` with `generic_timeout_error` and marks it stalled. The
//! upload passes once every body byte was acknowledged and a 2xx response
//! head came (another status fails at `http`). Its duration runs from the
//! request handed to the kernel to the last body byte acknowledged (seen at
//! the next poll, or when the response came).

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use rustls::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::http::{Failure, Stream, open};
use super::{Facts, Outcome, Progress, TargetResolver, Transfer, kernel};
use crate::config::TransferCheck;
use crate::reason::{Reason, Stage, classify};

/// How often the acknowledged bytes are read.
pub const POLL: Duration = Duration::from_millis(5);

/// The body is written in pieces of this size: one TLS record each.
const PIECE: usize = 16 * 1024;

/// The most of a response head read.
const MAX_HEAD: usize = 16 * 1024;

/// Uploads the check's `bytes` to its URL.
pub async fn probe(
    check: &TransferCheck,
    tls: Option<Arc<ClientConfig>>,
    resolver: TargetResolver<'_>,
    progress: &Progress,
) -> Outcome {
    let (stream, conn) = match open(&check.url, tls.as_ref(), &resolver, progress).await {
        Ok(s) => s,
        Err((stage, reason)) => return Outcome::failed(stage, reason),
    };
    let mut piece = vec![0u8; PIECE];
    if SystemRandom::new().fill(&mut piece).is_err() {
        return Outcome::failed(Stage::Write, Reason::UnknownFailure);
    }
    let head = post_head(&check.url, check.bytes);
    let fd = conn.fd.as_raw_fd();
    let wire = Wire {
        base: kernel::tcp_counters(fd).map_or(0, |c| c.bytes_acked),
        head: framed(head.len() as u64, conn.record_overhead),
        body: framed(check.bytes, conn.record_overhead),
        bytes: check.bytes,
    };
    progress.uploading();
    progress.enter(Stage::Write);
    let sent = progress.transfer_started();
    // The response is read while the body is written: a server may answer
    // (413, say) without reading it.
    let (mut rd, mut wr) = tokio::io::split(stream);
    let writer = async {
        let w = |e: std::io::Error| (Stage::Write, classify(&e));
        wr.write_all(head.as_bytes()).await.map_err(w)?;
        let mut left = check.bytes;
        while left > 0 {
            let n = left.min(PIECE as u64) as usize;
            wr.write_all(&piece[..n]).await.map_err(w)?;
            left -= n as u64;
        }
        wr.flush().await.map_err(w)
    };
    let mut writer = std::pin::pin!(writer);
    let mut reader = std::pin::pin!(read_status(&mut rd));
    let mut tick = tokio::time::interval(POLL);
    let (mut acked, mut moved) = (0u64, Instant::now());
    let mut status: Option<u16> = None;
    let mut written = false;
    let failure = loop {
        tokio::select! {
            r = &mut writer, if !written => match r {
                Ok(()) => written = true,
                Err(f) => break Some((f, false)),
            },
            r = &mut reader, if status.is_none() => match r {
                Ok(s) => {
                    status = Some(s);
                    progress.first_byte(sent.elapsed());
                }
                Err(f) => break Some((f, false)),
            },
            _ = tick.tick() => {}
        }
        let counted = kernel::tcp_counters(fd);
        if let Some(c) = counted {
            // Kept as it goes: a check cut off by its deadline has them.
            progress.segments(c.segs_out);
        }
        let now = match counted {
            Some(c) => wire.body_acked(c.bytes_acked),
            // No TCP_INFO: the response is the only acknowledgement.
            None if status.is_some() => check.bytes,
            None => acked,
        };
        if now > acked {
            acked = now;
            moved = Instant::now();
            progress.acknowledged(acked);
        }
        if acked >= check.bytes {
            progress.transfer_ended(sent.elapsed());
            progress.enter(Stage::Http);
        }
        match status {
            Some(s) if !(200..300).contains(&s) => {
                break Some(((Stage::Http, Reason::HttpUnexpectedStatus), false));
            }
            Some(_) if acked >= check.bytes => break None,
            _ => {}
        }
        if acked < check.bytes && moved.elapsed() >= check.stall_after {
            break Some(((Stage::Write, Reason::GenericTimeout), true));
        }
    };
    if let Some(c) = kernel::tcp_counters(fd) {
        progress.segments(c.segs_out);
    }
    let (failure, stalled) = match failure {
        Some((f, stalled)) => (Some(f), stalled),
        None => (None, false),
    };
    let transfer = progress.transfer(stalled).map(|t| Transfer { status, ..t });
    if let Some((stage, reason)) = failure {
        tracing::debug!(
            stage = stage.as_str(),
            reason = reason.as_str(),
            status,
            acked = transfer.map(|t| t.bytes),
            segments = transfer.and_then(|t| t.segments),
            "upload failed"
        );
    }
    Outcome {
        failure,
        duration: transfer.map(|t| t.duration),
        facts: transfer.map_or(Facts::None, Facts::Upload),
        control: None,
        ech: None,
    }
}

/// How the request's bytes lie on the wire.
struct Wire {
    /// `tcpi_bytes_acked` before the request (the TLS handshake's).
    base: u64,
    /// The head's wire bytes.
    head: u64,
    /// The body's wire bytes.
    body: u64,
    /// The body's bytes.
    bytes: u64,
}

impl Wire {
    /// Body bytes acknowledged, given the socket's `tcpi_bytes_acked`.
    fn body_acked(&self, bytes_acked: u64) -> u64 {
        let wire = bytes_acked
            .saturating_sub(self.base)
            .saturating_sub(self.head);
        if self.body == 0 {
            return 0;
        }
        let body = u128::from(wire.min(self.body)) * u128::from(self.bytes) / u128::from(self.body);
        // At most `bytes`: the quotient of two u64 bounded by it.
        u64::try_from(body).unwrap_or(self.bytes)
    }
}

/// The wire bytes of `n` bytes written in [`PIECE`]s, each one TLS record
/// adding `overhead` (0 for plain HTTP).
fn framed(n: u64, overhead: u64) -> u64 {
    n + n.div_ceil(PIECE as u64) * overhead
}

/// The request head of a POST of `bytes` to `url`.
fn post_head(url: &url::Url, bytes: u64) -> String {
    let host = url.host_str().unwrap_or_default();
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: reachability_exporter/{}\r\nContent-Type: application/octet-stream\r\nContent-Length: {bytes}\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Reads a response head and returns its status; at stage `http`.
async fn read_status(
    stream: &mut tokio::io::ReadHalf<std::pin::Pin<Box<dyn Stream>>>,
) -> Result<u16, Failure> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() >= MAX_HEAD {
            return Err((Stage::Http, Reason::UnknownFailure));
        }
        match stream.read(&mut chunk).await {
            Ok(0) => return Err((Stage::Http, Reason::Eof)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err((Stage::Http, classify(&e))),
        }
    }
    parse_status(&buf).ok_or((Stage::Http, Reason::UnknownFailure))
}

/// The status code of an HTTP/1.x status line.
fn parse_status(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts
        .next()?
        .parse()
        .ok()
        .filter(|s| (100..600).contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_body_bytes_leave_out_the_head_and_framing() {
        // 64 KiB over TLS 1.3: 4 records of 22 bytes' framing.
        let w = Wire {
            base: 1000,
            head: framed(200, 22),
            body: framed(65536, 22),
            bytes: 65536,
        };
        assert_eq!(w.head, 222);
        assert_eq!(w.body, 65536 + 4 * 22);
        assert_eq!(w.body_acked(900), 0, "before the request");
        assert_eq!(w.body_acked(1000 + 222), 0, "the head only");
        assert_eq!(w.body_acked(1000 + 222 + w.body), 65536, "all of it");
        assert_eq!(w.body_acked(u64::MAX), 65536, "never more than the body");
        let half = w.body_acked(1000 + 222 + w.body / 2);
        assert!((32700..=32800).contains(&half), "{half}");
        // Plain HTTP: no framing, exact.
        let w = Wire {
            base: 0,
            head: framed(100, 0),
            body: framed(20000, 0),
            bytes: 20000,
        };
        assert_eq!(w.body_acked(100 + 16384), 16384);
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n\r\n"), Some(200));
        assert_eq!(
            parse_status(b"HTTP/1.0 413 Too Large\r\nA: b\r\n\r\n"),
            Some(413)
        );
        assert_eq!(parse_status(b"HTTP/2 200\r\n\r\n"), None);
        assert_eq!(parse_status(b"HTTP/1.1 abc\r\n\r\n"), None);
        assert_eq!(parse_status(b"HTTP/1.1 999 x\r\n\r\n"), None);
    }

    #[test]
    fn the_head_says_how_long_the_body_is() {
        let url = url::Url::parse("https://a.test:8443/up?x=1").expect("a URL");
        let head = post_head(&url, 65536);
        assert!(
            head.starts_with("POST /up?x=1 HTTP/1.1\r\nHost: a.test:8443\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nContent-Length: 65536\r\n"), "{head}");
        assert!(head.ends_with("\r\n\r\n"));
    }
}
