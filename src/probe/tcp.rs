//! The TCP prober: resolve the host (unless it is an address), then time
//! the TCP handshake alone: the kernel's RTT of the SYN when it was not
//! sent again ([`kernel::handshake_rtt`]), our own clock otherwise.
//!
//! It does not send anything after the handshake.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{Facts, Outcome, Progress, TargetResolver, kernel};
use crate::config::TcpCheck;
use crate::reason::{Stage, classify};

/// Connects to the check's target and reports how long the handshake took.
/// With `all_addresses`, connects to each address.
pub async fn probe(check: &TcpCheck, resolver: TargetResolver<'_>, progress: &Progress) -> Outcome {
    if let Some(max) = check.all_addresses {
        return super::each_address(&check.target.host, max, &resolver, progress, |ip, p| {
            connect_at(check, ip, p)
        })
        .await;
    }
    let ip = match resolver.resolve(&check.target.host, progress).await {
        Ok(ip) => ip,
        Err(reason) => return Outcome::failed(Stage::Resolve, reason),
    };
    connect_at(check, ip, progress).await
}

async fn connect_at(check: &TcpCheck, ip: IpAddr, progress: &Progress) -> Outcome {
    progress.enter(Stage::Connect);
    match timed_connect(SocketAddr::new(ip, check.target.port)).await {
        Ok((_stream, took)) => Outcome::ok(took, Facts::None),
        Err(e) => {
            let reason = classify(&e);
            tracing::debug!(%ip, reason = reason.as_str(), error = %e, "connect failed");
            Outcome::failed(Stage::Connect, reason)
        }
    }
}

/// Opens a TCP connection with Nagle off (the TLS prober's writes are small
/// and latency is what we measure).
pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// [`connect`], timed: the kernel's SYN -> SYN-ACK time where it has one
/// ([`kernel::handshake_rtt`]); our own clock, which also counts the wake-up
/// of this task after the SYN-ACK, where it has not.
pub async fn timed_connect(addr: SocketAddr) -> io::Result<(TcpStream, Duration)> {
    let start = Instant::now();
    let stream = connect(addr).await?;
    let took = start.elapsed();
    let took = kernel::handshake_rtt(&stream).map_or(took, |rtt| rtt.min(took));
    Ok((stream, took))
}
