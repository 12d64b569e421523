//! The call-port prober: does a voice/video relay port answer?
//!
//! - UDP: a STUN Binding request on a connected socket (so that ICMP errors
//!   surface as `connection_refused`, `host_unreachable`, …), retransmitted
//!   with RFC 5389's backoff (RTO 500 ms, doubling) until the deadline,
//!   because UDP loss is not blocking. Each transmission carries its own
//!   transaction id, so the RTT is that of the send that was answered.
//! - TCP with `method: stun`: connect, then the same request over the
//!   stream (bare STUN, no RFC 4571 framing).
//! - TCP with `method: connect`: the TCP handshake alone.
//!
//! Any well-formed STUN response proves the path, success or error class.
//! Malformed answers are ignored while waiting; if nothing valid comes, the
//! check reports `unknown_failure` rather than a timeout. The reflexive
//! address is logged and kept in the outcome's facts, never in a label.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::{Facts, Outcome, Progress, TargetResolver, tcp};
use crate::config::{CallMethod, CallPortCheck, Transport};
use crate::reason::{Reason, Stage, classify};
use crate::stun::{self, TransactionId};

/// RFC 5389's initial retransmission timeout.
const INITIAL_RTO: Duration = Duration::from_millis(500);

/// The largest STUN response read (a response to a bare Binding request is
/// far smaller; anything longer is treated as malformed).
const MAX_RESPONSE: usize = 1500;

/// Probes one call port.
pub async fn probe(
    check: &CallPortCheck,
    resolver: TargetResolver<'_>,
    progress: &Progress,
) -> Outcome {
    let ip = match resolver.resolve(&check.target.host, progress).await {
        Ok(ip) => ip,
        Err(reason) => return Outcome::failed(Stage::Resolve, reason),
    };
    let addr = SocketAddr::new(ip, check.target.port);
    let outcome = match (check.transport, check.method) {
        (Transport::Udp, _) => udp_stun(addr, progress).await,
        (Transport::Tcp, CallMethod::Connect) => {
            progress.enter(Stage::Connect);
            match tcp::timed_connect(addr).await {
                Ok((_, took)) => Outcome::ok(took, Facts::None),
                Err(e) => Outcome::failed(Stage::Connect, classify(&e)),
            }
        }
        (Transport::Tcp, CallMethod::Stun) => tcp_stun(addr, progress).await,
    };
    match (&outcome.failure, &outcome.facts) {
        (Some((stage, reason)), _) => {
            tracing::debug!(
                stage = stage.as_str(),
                reason = reason.as_str(),
                "call port failed"
            );
        }
        (None, Facts::Stun { mapped }) => {
            tracing::debug!(
                rtt_seconds = outcome.duration.map(|d| d.as_secs_f64()),
                mapped = mapped.as_ref().map(tracing::field::display),
                "call port answered"
            );
        }
        (None, _) => {}
    }
    outcome
}

fn new_id(rng: &SystemRandom) -> TransactionId {
    let mut id = [0u8; 12];
    // The system RNG does not fail on Linux; an all-zero id still works.
    let _ = rng.fill(&mut id);
    id
}

async fn udp_stun(addr: SocketAddr, progress: &Progress) -> Outcome {
    progress.enter(Stage::Stun);
    let local: SocketAddr = match addr.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = match UdpSocket::bind(local).await {
        Ok(s) => s,
        Err(e) => return Outcome::failed(Stage::Stun, classify(&e)),
    };
    if let Err(e) = sock.connect(addr).await {
        return Outcome::failed(Stage::Stun, classify(&e));
    }
    let rng = SystemRandom::new();
    let mut sent: Vec<(TransactionId, Instant)> = Vec::new();
    let mut rto = INITIAL_RTO;
    let mut buf = vec![0u8; MAX_RESPONSE];
    // The check's deadline (applied by the caller) ends the loop.
    loop {
        let id = new_id(&rng);
        if let Err(e) = sock.send(&stun::binding_request(&id)).await {
            return Outcome::failed(Stage::Stun, classify(&e));
        }
        let now = Instant::now();
        sent.push((id, now));
        let retransmit_at = now + rto;
        rto *= 2;
        loop {
            let n = match tokio::time::timeout_at(retransmit_at, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => return Outcome::failed(Stage::Stun, classify(&e)),
                Ok(Ok(n)) => n,
            };
            let received = Instant::now();
            match stun::decode(&buf[..n]) {
                Ok(r) => match sent.iter().find(|(id, _)| *id == r.id) {
                    Some((_, at)) => {
                        return Outcome::ok(received - *at, Facts::Stun { mapped: r.mapped });
                    }
                    None => progress.note_malformed(),
                },
                Err(_) => progress.note_malformed(),
            }
        }
    }
}

async fn tcp_stun(addr: SocketAddr, progress: &Progress) -> Outcome {
    progress.enter(Stage::Connect);
    let mut stream = match tcp::connect(addr).await {
        Ok(s) => s,
        Err(e) => return Outcome::failed(Stage::Connect, classify(&e)),
    };
    progress.enter(Stage::Stun);
    let id = new_id(&SystemRandom::new());
    let start = Instant::now();
    if let Err(e) = stream.write_all(&stun::binding_request(&id)).await {
        return Outcome::failed(Stage::Stun, classify(&e));
    }
    // A stream cannot be resynchronised: a bad message ends the check, and
    // bytes that have not become a valid response by the deadline count as
    // a malformed answer.
    let malformed = Outcome::failed(Stage::Stun, Reason::UnknownFailure);
    let mut msg = Vec::with_capacity(64);
    let mut chunk = [0u8; 512];
    let total = loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) => return Outcome::failed(Stage::Stun, Reason::Eof),
            Ok(n) => n,
            Err(e) => return Outcome::failed(Stage::Stun, classify(&e)),
        };
        progress.note_malformed();
        msg.extend_from_slice(&chunk[..n]);
        match stun::frame(&msg, MAX_RESPONSE) {
            stun::Framing::More => {}
            stun::Framing::Complete(total) => break total,
            stun::Framing::Malformed => return malformed,
        }
    };
    let took = start.elapsed();
    match stun::decode(&msg[..total]) {
        Ok(r) if r.id == id => Outcome::ok(took, Facts::Stun { mapped: r.mapped }),
        _ => malformed,
    }
}
