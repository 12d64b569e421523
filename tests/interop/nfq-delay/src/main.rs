//! `nfq-delay QUEUE MILLISECONDS`: accepts every packet of NFQUEUE number
//! QUEUE after holding it for MILLISECONDS, in arrival order. The interop
//! suite uses it to add latency on a path, because this kernel has no netem
//! qdisc. Packets are held independently: a burst is delayed once, not once
//! per packet. Runs until killed. Pair the iptables rule with
//! `--queue-bypass` so that traffic passes if this helper is not running.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use nfq::{Queue, Verdict};

/// How often new packets are taken in while others are held: the release
/// of a held packet is late by at most about this much.
const POLL: Duration = Duration::from_micros(50);

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = || std::io::Error::new(ErrorKind::InvalidInput, "usage: nfq-delay QUEUE MILLISECONDS");
    let queue_num: u16 = args.get(1).and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let hold = Duration::from_secs_f64(args.get(2).and_then(|a| a.parse::<f64>().ok()).ok_or_else(usage)? / 1000.0);

    let mut queue = Queue::open()?;
    queue.bind(queue_num)?;
    queue.set_nonblocking(true);
    eprintln!("nfq-delay: queue {queue_num}, holding packets {hold:?}");

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
