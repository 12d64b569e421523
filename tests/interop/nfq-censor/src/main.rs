//! A censor on an NFQUEUE, for the interop suite. Runs until killed; pair
//! the iptables rule with `--queue-bypass` so that traffic passes if this
//! helper is not running, and add the rule once it says it bound the queue.
//!
//! - `nfq-censor delay QUEUE MILLISECONDS`: accepts every packet after
//!   holding it for MILLISECONDS, in arrival order (this kernel has no netem
//!   qdisc). Packets are held independently: a burst is delayed once, not
//!   once per packet.
//! - `nfq-censor quic-sni QUEUE NAME`: decrypts each UDP flow's first QUIC
//!   Initial, as the TSPU does (net4people/bbs#654), and drops the flow from
//!   then on when its ClientHello's SNI is NAME.
//! - `nfq-censor ech QUEUE`: drops a TCP flow from the first ClientHello
//!   that carries the encrypted_client_hello extension (0xfe0d) on.
//!
//! Each drop is logged to stderr as `dropped FLOW`. IPv4 only.

#[path = "../../../support/client_hello.rs"]
mod client_hello;
#[path = "../../../support/quic_initial.rs"]
mod quic_initial;

use std::collections::{HashSet, VecDeque};
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use nfq::{Queue, Verdict};

/// How often new packets are taken in while others are held: the release
/// of a held packet is late by at most about this much.
const POLL: Duration = Duration::from_micros(50);

const USAGE: &str = "usage: nfq-censor delay QUEUE MILLISECONDS | quic-sni QUEUE NAME | ech QUEUE";

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = || std::io::Error::new(ErrorKind::InvalidInput, USAGE);
    let queue_num: u16 = args.get(2).and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let mut queue = Queue::open()?;
    queue.bind(queue_num)?;
    match args.get(1).map(String::as_str) {
        Some("delay") => {
            let ms = args.get(3).and_then(|a| a.parse::<f64>().ok()).ok_or_else(usage)?;
            let hold = Duration::from_secs_f64(ms / 1000.0);
            eprintln!("nfq-censor: queue {queue_num}, holding packets {hold:?}");
            delay(queue, hold)
        }
        Some("quic-sni") => {
            let name = args.get(3).ok_or_else(usage)?.clone();
            eprintln!("nfq-censor: queue {queue_num}, dropping QUIC with SNI {name}");
            filter(queue, |payload| {
                let hello = quic_initial::client_hello(payload)?;
                Some(client_hello::sni(&hello).as_deref() == Some(name.as_str()))
            })
        }
        Some("ech") => {
            eprintln!("nfq-censor: queue {queue_num}, dropping ClientHellos with ECH");
            filter(queue, |payload| {
                let hello = client_hello::from_record(payload)?;
                Some(client_hello::has_extension(hello, client_hello::ECH_EXTENSION))
            })
        }
        _ => Err(usage()),
    }
}

fn delay(mut queue: Queue, hold: Duration) -> std::io::Result<()> {
    queue.set_nonblocking(true);
    let mut held = VecDeque::new();
    loop {
        // Take in everything that has arrived.
        loop {
            match queue.recv() {
                Ok(msg) => held.push_back((Instant::now() + hold, msg)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        // Release what is due.
        let now = Instant::now();
        while held.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, mut msg)) = held.pop_front() {
                msg.set_verdict(Verdict::Accept);
                queue.verdict(msg)?;
            }
        }
        // Sleep until the next packet is due, but poll for new ones often.
        let next = held.front().map_or(POLL, |(due, _)| due.saturating_duration_since(now));
        std::thread::sleep(next.min(POLL));
    }
}

/// A flow: protocol, source address and port, destination address and port.
type Flow = (u8, [u8; 4], u16, [u8; 4], u16);

/// Drops every packet of a flow once `blocks` said `Some(true)` of one of
/// its transport payloads; accepts everything else.
fn filter(mut queue: Queue, blocks: impl Fn(&[u8]) -> Option<bool>) -> std::io::Result<()> {
    let mut dropped: HashSet<Flow> = HashSet::new();
    loop {
        let mut msg = queue.recv()?;
        let verdict = match parse(msg.get_payload()) {
            Some((flow, payload)) => {
                if dropped.contains(&flow) {
                    Verdict::Drop
                } else if !payload.is_empty() && blocks(payload) == Some(true) {
                    eprintln!("dropped {flow:?}");
                    dropped.insert(flow);
                    Verdict::Drop
                } else {
                    Verdict::Accept
                }
            }
            None => Verdict::Accept,
        };
        msg.set_verdict(verdict);
        queue.verdict(msg)?;
    }
}

/// An IPv4 packet's flow and transport payload (UDP or TCP).
fn parse(ip: &[u8]) -> Option<(Flow, &[u8])> {
    if ip.first()? >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let proto = *ip.get(9)?;
    let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
    let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
    let l4 = ip.get(ihl..total.min(ip.len()))?;
    let ports = (
        u16::from_be_bytes([*l4.first()?, *l4.get(1)?]),
        u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]),
    );
    let payload = match proto {
        17 => l4.get(8..)?,
        6 => l4.get(usize::from(*l4.get(12)? >> 4) * 4..)?,
        _ => return None,
    };
    Some(((proto, src, ports.0, dst, ports.1), payload))
}
