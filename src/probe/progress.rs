//! [`Progress`]: what a running check has got to, readable while it runs,
//! so that a check cut off by its deadline is reported where it was (its
//! stage, its transfer so far, its evidence handshakes); and
//! [`each_address`], which keeps one per address.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::{EchResult, Facts, Outcome, TargetResolver, Transfer};
use crate::config::Host;
use crate::reason::{Reason, Stage};

/// What a running check has got to, readable while it runs: the stage it
/// is in, and whether it has seen a malformed answer.
#[derive(Debug, Default)]
pub struct Progress {
    stage: AtomicU8,
    malformed: AtomicBool,
    /// 0: no control handshake; 1: the server answered; 2: it did not;
    /// 3: started, no answer yet.
    control: AtomicU8,
    /// The GREASE-ECH handshake: the stage it is in (0: not started), and
    /// its result once it ended.
    ech_stage: AtomicU8,
    ech: OnceLock<EchResult>,
    /// The check's own outcome, once known while its evidence handshakes
    /// still run: what a cut-off reports.
    finished: OnceLock<Outcome>,
    /// A download's transfer so far.
    transfer: TransferProgress,
    /// An `all_addresses` check's addresses, once resolved.
    addresses: OnceLock<Vec<AddressProgress>>,
    /// A deadline cut the check off.
    cut: AtomicBool,
    /// The check's deadline is its own timeout, not an earlier one (the
    /// scrape's): an evidence handshake still unanswered when it passes had
    /// the check's whole time, and its silence counts.
    full_time: AtomicBool,
}

/// A download's transfer so far, readable when it is cut off.
#[derive(Debug)]
struct TransferProgress {
    sent: OnceLock<Instant>,
    /// Nanoseconds from `sent` to the response head; `u64::MAX` before.
    first_byte_ns: AtomicU64,
    /// Body bytes received (download) or acknowledged (upload).
    bytes: AtomicU64,
    /// Nanoseconds from `sent` to the transfer's end (an upload's last
    /// body byte acknowledged); `u64::MAX` while it runs.
    ended_ns: AtomicU64,
    /// Segments the kernel counted; 0 when not known.
    segments: AtomicU32,
    /// An upload, not a download.
    upload: AtomicBool,
}

/// One address of an `all_addresses` check.
#[derive(Debug)]
struct AddressProgress {
    ip: IpAddr,
    progress: Progress,
    outcome: OnceLock<Outcome>,
}

impl Progress {
    /// Records that the check entered `stage`.
    pub fn enter(&self, stage: Stage) {
        self.stage.store(stage.to_u8(), Ordering::Relaxed);
    }

    /// The stage the check is in.
    pub fn stage(&self) -> Stage {
        Stage::from_u8(self.stage.load(Ordering::Relaxed))
    }

    /// Records that an answer came but was malformed (and was ignored).
    pub fn note_malformed(&self) {
        self.malformed.store(true, Ordering::Relaxed);
    }

    /// Records that a deadline cut the check off.
    pub fn mark_cut(&self) {
        self.cut.store(true, Ordering::Relaxed);
    }

    /// Whether a deadline cut the check off.
    pub fn was_cut(&self) -> bool {
        self.cut.load(Ordering::Relaxed)
    }

    /// Records whether the server answered the control handshake.
    pub fn set_control(&self, answered: bool) {
        self.control
            .store(if answered { 1 } else { 2 }, Ordering::Relaxed);
    }

    /// Records whether the check runs for its whole timeout (the deadline
    /// is its own), which an `all_addresses` check's addresses share.
    pub fn set_full_time(&self, full: bool) {
        self.full_time.store(full, Ordering::Relaxed);
    }

    /// Records that the GREASE-ECH handshake entered `stage`.
    pub fn ech_enter(&self, stage: Stage) {
        self.ech_stage.store(stage.to_u8() + 1, Ordering::Relaxed);
    }

    /// Records how the GREASE-ECH handshake ended.
    pub fn set_ech(&self, result: EchResult) {
        let _ = self.ech.set(result);
    }

    /// How the GREASE-ECH handshake ended, if it did.
    pub fn ech_result(&self) -> Option<EchResult> {
        self.ech.get().copied()
    }

    /// Records the check's own outcome while its evidence handshakes run
    /// on.
    pub fn finish(&self, outcome: &Outcome) {
        let _ = self.finished.set(outcome.clone());
    }

    /// Whether the check's own outcome is known ([`Progress::finish`]).
    pub fn ended(&self) -> bool {
        self.finished.get().is_some()
    }

    /// Records that the control handshake started.
    pub fn control_started(&self) {
        let _ = self
            .control
            .compare_exchange(0, 3, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Whether the server answered the control handshake, if it ended.
    pub fn control_result(&self) -> Option<bool> {
        match self.control.load(Ordering::Relaxed) {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        }
    }

    /// Records that a download's request was sent (the transfer starts).
    pub fn transfer_started(&self) -> Instant {
        *self.transfer.sent.get_or_init(Instant::now)
    }

    /// Records the arrival of the response head.
    pub fn first_byte(&self, after: Duration) {
        let ns = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX - 1);
        self.transfer.first_byte_ns.store(ns, Ordering::Relaxed);
    }

    /// Adds received body bytes; returns the total.
    pub fn received(&self, n: u64) -> u64 {
        self.transfer.bytes.fetch_add(n, Ordering::Relaxed) + n
    }

    /// Records that the transfer is an upload.
    pub fn uploading(&self) {
        self.transfer.upload.store(true, Ordering::Relaxed);
    }

    /// Records an upload's body bytes acknowledged so far.
    pub fn acknowledged(&self, bytes: u64) {
        self.transfer.bytes.store(bytes, Ordering::Relaxed);
    }

    /// Records that the transfer's last byte went (an upload's: was
    /// acknowledged) `after` the request was sent.
    pub fn transfer_ended(&self, after: Duration) {
        let ns = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX - 1);
        let _ = self.transfer.ended_ns.compare_exchange(
            u64::MAX,
            ns,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Records the segments the kernel counted on the connection.
    pub fn segments(&self, n: u32) {
        self.transfer.segments.store(n, Ordering::Relaxed);
    }

    /// The transfer so far (`None` before the request was sent).
    pub fn transfer(&self, stalled: bool) -> Option<Transfer> {
        let sent = self.transfer.sent.get()?;
        let ns = self.transfer.first_byte_ns.load(Ordering::Relaxed);
        let ended = self.transfer.ended_ns.load(Ordering::Relaxed);
        let segments = self.transfer.segments.load(Ordering::Relaxed);
        Some(Transfer {
            bytes: self.transfer.bytes.load(Ordering::Relaxed),
            duration: if ended == u64::MAX {
                sent.elapsed()
            } else {
                Duration::from_nanos(ended)
            },
            first_byte: (ns != u64::MAX && ns != 0).then(|| Duration::from_nanos(ns)),
            stalled,
            status: None,
            segments: (segments != 0).then_some(segments),
        })
    }

    /// The progress of a check not started yet, which would enter `first`
    /// first ([`super::first_stage`]): cut off before it starts, it is reported
    /// there.
    pub fn at(first: Stage) -> Progress {
        let p = Progress::default();
        p.enter(first);
        p
    }

    /// The outcome of a check whose turn in a paced round came after the
    /// deadline: cut off before it started.
    pub fn not_started(&self) -> Outcome {
        self.mark_cut();
        self.cut_off()
    }

    /// The outcome of a check cut off by its deadline: failed at the stage
    /// it was in, with `generic_timeout_error` — or `unknown_failure` if only
    /// malformed answers came. A download whose response had begun is not
    /// a failure: it ran out of time while receiving, and its rate stands.
    /// An `all_addresses` check is reported address by address.
    pub fn cut_off(&self) -> Outcome {
        if let Some(subs) = self.addresses.get() {
            return Outcome::per_address(
                subs.iter()
                    .map(|s| {
                        let o = s.outcome.get().cloned();
                        (s.ip, o.unwrap_or_else(|| s.progress.cut_off()))
                    })
                    .collect(),
            );
        }
        // An evidence handshake still running at the check's own deadline
        // got no answer in the check's time: silence. Cut off earlier (by
        // the scrape's deadline), it had less time than the check: not
        // finished.
        let full = self.full_time.load(Ordering::Relaxed);
        let ech = self
            .ech_result()
            .or_else(|| match self.ech_stage.load(Ordering::Relaxed) {
                s if s != 0 && full => Some(EchResult::Failed(
                    Stage::from_u8(s - 1),
                    Reason::GenericTimeout,
                )),
                _ => None,
            });
        let control = match self.control.load(Ordering::Relaxed) {
            3 if full => Some(false),
            _ => self.control_result(),
        };
        if let Some(done) = self.finished.get() {
            // The check ended; only its evidence was cut off.
            return Outcome {
                control,
                ech,
                ..done.clone()
            };
        }
        let reason = if self.malformed.load(Ordering::Relaxed) {
            Reason::UnknownFailure
        } else {
            Reason::GenericTimeout
        };
        let mut outcome = Outcome::failed(self.stage(), reason);
        if let Some(t) = self.transfer(false) {
            if self.transfer.upload.load(Ordering::Relaxed) {
                // An upload passes only once every byte was acknowledged
                // and the response came. Its duration is the transfer's, as
                // when it ends by itself.
                outcome.duration = Some(t.duration);
                outcome.facts = Facts::Upload(t);
            } else {
                if t.first_byte.is_some() {
                    outcome.failure = None;
                }
                outcome.facts = Facts::Download(t);
            }
        }
        outcome.control = control;
        outcome.ech = ech;
        outcome
    }
}

impl Default for TransferProgress {
    fn default() -> Self {
        TransferProgress {
            sent: OnceLock::new(),
            first_byte_ns: AtomicU64::new(u64::MAX),
            bytes: AtomicU64::new(0),
            ended_ns: AtomicU64::new(u64::MAX),
            segments: AtomicU32::new(0),
            upload: AtomicBool::new(false),
        }
    }
}

/// Runs `probe` at every address `host` resolves to (at most `max`, in
/// answer order), concurrently; each address's progress is kept so that a
/// cut-off reports each where it was.
pub async fn each_address<'a, F, Fut>(
    host: &Host,
    max: usize,
    resolver: &TargetResolver<'_>,
    progress: &'a Progress,
    probe: F,
) -> Outcome
where
    F: Fn(IpAddr, &'a Progress) -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    let ips = match resolver.resolve_all(host, progress).await {
        Ok(ips) => ips,
        Err(reason) => return Outcome::failed(Stage::Resolve, reason),
    };
    let subs = progress.addresses.get_or_init(|| {
        ips.into_iter()
            .take(max)
            .map(|ip| {
                let sub = Progress::default();
                sub.set_full_time(progress.full_time.load(Ordering::Relaxed));
                AddressProgress {
                    ip,
                    progress: sub,
                    outcome: OnceLock::new(),
                }
            })
            .collect()
    });
    futures_util::future::join_all(subs.iter().map(|s| {
        let fut = probe(s.ip, &s.progress);
        async move {
            let _ = s.outcome.set(fut.await);
        }
    }))
    .await;
    progress.cut_off()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_off_reports_the_stage_it_was_in() {
        let p = Progress::default();
        // Nothing entered yet: the first stage.
        assert_eq!(
            p.cut_off(),
            Outcome::failed(Stage::Resolve, Reason::GenericTimeout)
        );
        for stage in [
            Stage::Connect,
            Stage::TlsHandshake,
            Stage::Stun,
            Stage::Read,
        ] {
            p.enter(stage);
            assert_eq!(p.cut_off(), Outcome::failed(stage, Reason::GenericTimeout));
        }
        assert!(!p.was_cut());
        p.mark_cut();
        assert!(p.was_cut());
    }

    #[test]
    fn cut_off_after_only_malformed_answers_is_unknown_failure() {
        let p = Progress::default();
        p.enter(Stage::Stun);
        p.note_malformed();
        assert_eq!(
            p.cut_off(),
            Outcome::failed(Stage::Stun, Reason::UnknownFailure)
        );
    }

    #[test]
    fn cut_off_after_the_check_ended_keeps_its_outcome() {
        let p = Progress::default();
        p.enter(Stage::TlsHandshake);
        p.ech_enter(Stage::Connect);
        // Cut off by an earlier deadline than the check's own: unfinished.
        assert_eq!(p.cut_off().ech, None);
        p.set_full_time(true);
        assert_eq!(
            p.cut_off().ech,
            Some(EchResult::Failed(Stage::Connect, Reason::GenericTimeout))
        );
        p.ech_enter(Stage::TlsHandshake);
        let done = Outcome::ok(Duration::from_millis(3), Facts::None);
        p.finish(&done);
        let cut = p.cut_off();
        assert!(cut.is_ok(), "the check passed; only its evidence was cut");
        assert_eq!(cut.duration, done.duration);
        assert_eq!(
            cut.ech,
            Some(EchResult::Failed(
                Stage::TlsHandshake,
                Reason::GenericTimeout
            ))
        );
        p.set_ech(EchResult::Completed);
        assert_eq!(p.cut_off().ech, Some(EchResult::Completed));
    }

    #[test]
    fn cut_off_keeps_the_control_handshake() {
        let p = Progress::default();
        p.enter(Stage::TlsHandshake);
        assert_eq!(p.cut_off().control, None);
        p.control_started();
        assert_eq!(p.control_result(), None, "running");
        assert_eq!(p.cut_off().control, None, "cut off by the scrape");
        p.set_full_time(true);
        assert_eq!(
            p.cut_off().control,
            Some(false),
            "silent for its whole time"
        );
        p.set_control(true);
        assert_eq!(p.cut_off().control, Some(true));
        p.set_control(false);
        assert_eq!(p.cut_off().control, Some(false));
    }

    #[test]
    fn an_upload_cut_off_fails_with_its_figures() {
        let p = Progress::default();
        p.uploading();
        p.enter(Stage::Write);
        p.transfer_started();
        p.acknowledged(30_000);
        p.segments(40);
        let o = p.cut_off();
        assert_eq!(o.failure, Some((Stage::Write, Reason::GenericTimeout)));
        let Facts::Upload(t) = o.facts else {
            panic!("not an upload's facts: {o:?}");
        };
        assert_eq!((t.bytes, t.segments, t.stalled), (30_000, Some(40), false));
        assert_eq!(o.duration, Some(t.duration));
    }

    #[test]
    fn a_download_cut_while_receiving_is_measured_not_failed() {
        let p = Progress::default();
        p.enter(Stage::Read);
        p.transfer_started();
        // Request sent, no response head: a failure, with its facts.
        let o = p.cut_off();
        assert_eq!(o.failure, Some((Stage::Read, Reason::GenericTimeout)));
        let Facts::Download(t) = o.facts else {
            panic!("no transfer facts: {o:?}");
        };
        assert_eq!((t.bytes, t.first_byte, t.stalled), (0, None, false));
        // Receiving: the rate stands, no failure.
        p.first_byte(Duration::from_millis(40));
        assert_eq!(p.received(1000), 1000);
        assert_eq!(p.received(500), 1500);
        let o = p.cut_off();
        assert_eq!(o.failure, None);
        let Facts::Download(t) = o.facts else {
            panic!("no transfer facts: {o:?}");
        };
        assert_eq!(t.bytes, 1500);
        assert_eq!(t.first_byte, Some(Duration::from_millis(40)));
    }

    #[test]
    fn an_every_address_check_is_cut_address_by_address() {
        let p = Progress::default();
        let a: IpAddr = "192.0.2.1".parse().expect("a literal");
        let b: IpAddr = "192.0.2.2".parse().expect("a literal");
        let subs = p.addresses.get_or_init(|| {
            [a, b]
                .into_iter()
                .map(|ip| AddressProgress {
                    ip,
                    progress: Progress::default(),
                    outcome: OnceLock::new(),
                })
                .collect()
        });
        let passed = Outcome::ok(Duration::from_millis(3), Facts::None);
        let _ = subs[0].outcome.set(passed.clone());
        subs[1].progress.enter(Stage::TlsHandshake);
        let o = p.cut_off();
        assert_eq!(
            o.failure,
            Some((Stage::TlsHandshake, Reason::GenericTimeout))
        );
        assert_eq!(
            o.facts,
            Facts::Addresses(vec![
                (a, passed),
                (
                    b,
                    Outcome::failed(Stage::TlsHandshake, Reason::GenericTimeout)
                ),
            ])
        );
    }
}
