//! The TCP prober: resolve the host (unless it is an address), then time
//! the TCP handshake alone.
//!
//! It does not send anything after the handshake.

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{Facts, Outcome, Progress, TargetResolver};
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
    let start = Instant::now();
    match connect(SocketAddr::new(ip, check.target.port)).await {
        Ok(_stream) => Outcome::ok(start.elapsed(), Facts::None),
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
