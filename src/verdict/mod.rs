//! Verdicts: what the censor did, judged from one round's outcomes.
//!
//! [`plans`] pairs checks up from the config once per load (same service,
//! same name or host): the system resolver's answer with the controls', a
//! TLS check with its neutral-SNI control, a UDP call port with TCP to the
//! same host, a QUIC check with TLS to the same host and port. Some verdicts
//! need evidence no configured check gives — connects to the addresses the
//! controls returned, handshakes with the name's SNI at the system's and a
//! control's address; a round gathers it ([`crate::engine::round`]) into
//! an [`Evidence`] slot. [`judge`] then turns outcomes and evidence into
//! 1, 0, or nothing (cannot be judged — above all when every control
//! failed: controls are data, not truth).
//!
//! Everything here is pure: no I/O, no clock. The rule of each kind is in
//! [`BlockingKind`]'s variants and in the README.

mod plan;
mod regime;
#[cfg(test)]
mod tests;

pub use plan::{Plans, entries, plans};
pub use regime::{NetworkRegime, regime};

use std::net::IpAddr;
use std::time::Duration;

use crate::config::IpFamily;
use crate::ids::{EntryId, ServiceId, SlotId};
use crate::probe::{EchResult, Facts, Outcome, Transfer};
use crate::reason::{Reason, Stage};

/// The kind of blocking a verdict is about (the `kind` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockingKind {
    /// The system resolver says NXDOMAIN, no answer or SERVFAIL for a name
    /// a control resolves.
    DnsRemoved,
    /// The system resolver answers a bogon (that a control does not); or
    /// its addresses share none with the controls' and the name's
    /// certificate fails validation at the system's address while it
    /// passes at a control's.
    DnsInjected,
    /// Every address the controls resolved fails at connect, while a DoH or
    /// DoT control answered (so the network is up).
    IpBlocked,
    /// The handshake with the real SNI fails with a reset, timeout or EOF
    /// while one with a neutral SNI to the same address completes.
    SniFiltered,
    /// A UDP call port fails while TCP to the same host answers.
    UdpBlocked,
    /// A QUIC handshake fails (timeout, reset, refused) — and, with a
    /// `control_sni`, the neutral one is not answered either — while TLS
    /// over TCP to the same host and port succeeds.
    QuicBlocked,
    /// The QUIC handshake with the real SNI fails with a timeout, reset or
    /// refusal while one with a neutral SNI to the same address is
    /// answered.
    QuicSniFiltered,
    /// The plain TLS 1.3 handshake completes while one carrying a GREASE
    /// encrypted_client_hello to the same address fails with a reset,
    /// timeout or EOF.
    EchBlocked,
    /// A download's or upload's rate is below its `min_rate`.
    Throttled,
    /// A download got no byte for `stall_after`.
    Stalled,
    /// An upload's acknowledged progress stopped for `stall_after` once its
    /// handshakes were done, before every body byte was acknowledged.
    UploadStalled,
}

impl BlockingKind {
    /// Every kind.
    pub const ALL: [BlockingKind; 11] = [
        BlockingKind::DnsRemoved,
        BlockingKind::DnsInjected,
        BlockingKind::IpBlocked,
        BlockingKind::SniFiltered,
        BlockingKind::UdpBlocked,
        BlockingKind::QuicBlocked,
        BlockingKind::QuicSniFiltered,
        BlockingKind::EchBlocked,
        BlockingKind::Throttled,
        BlockingKind::Stalled,
        BlockingKind::UploadStalled,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockingKind::DnsRemoved => "dns_removed",
            BlockingKind::DnsInjected => "dns_injected",
            BlockingKind::IpBlocked => "ip_blocked",
            BlockingKind::SniFiltered => "sni_filtered",
            BlockingKind::UdpBlocked => "udp_blocked",
            BlockingKind::QuicBlocked => "quic_blocked",
            BlockingKind::QuicSniFiltered => "quic_sni_filtered",
            BlockingKind::EchBlocked => "ech_blocked",
            BlockingKind::Throttled => "throttled",
            BlockingKind::Stalled => "stalled",
            BlockingKind::UploadStalled => "upload_stalled",
        }
    }
}

/// One verdict series: `{service, target, kind}` and the cases it is made
/// of. It is 1 if any case judged says 1, 0 if every case judged says 0,
/// absent if none could be judged.
#[derive(Debug)]
pub struct Plan {
    /// The service.
    pub service: ServiceId,
    /// The `target` label: a name, or a check's target as written.
    pub target: String,
    /// What it judges.
    pub kind: BlockingKind,
    /// The pairings it is judged from.
    pub cases: Vec<Case>,
}

impl Plan {
    /// Every catalogue entry the plan reads.
    pub fn inputs(&self) -> impl Iterator<Item = EntryId> + '_ {
        self.cases.iter().flat_map(|c| c.inputs())
    }

    /// The TLS check whose censor a search locates when this verdict is
    /// 1: that of an `sni_filtered` or `ech_blocked` plan.
    pub fn searched_check(&self) -> Option<EntryId> {
        self.cases.iter().find_map(|c| match c {
            Case::SniFiltered { check } | Case::EchBlocked { check } => Some(*check),
            _ => None,
        })
    }
}

/// One pairing of checks.
#[derive(Debug)]
pub enum Case {
    /// The system resolver's check of a name and type, and the controls'.
    DnsRemoved {
        /// Through the system resolver.
        system: EntryId,
        /// Through each control.
        controls: Vec<EntryId>,
    },
    /// As [`Case::DnsRemoved`], plus where to make the handshakes.
    DnsInjected {
        /// Through the system resolver.
        system: EntryId,
        /// Through each control.
        controls: Vec<EntryId>,
        /// The name (the SNI of the evidence handshakes).
        name: String,
        /// The port of the evidence handshakes.
        port: u16,
        /// The check whose TLS configuration (trust) they use, if any.
        tls_entry: Option<EntryId>,
        /// How long they may take: that check's timeout (else the DNS
        /// check's).
        timeout: Duration,
        /// Its evidence slot.
        evidence: SlotId,
    },
    /// TCP or TLS checks of one target, and the controls' answers for its
    /// name.
    IpBlocked {
        /// The checks of the target.
        checks: Vec<EntryId>,
        /// Control DNS checks of the name.
        controls: Vec<EntryId>,
        /// Which of `controls` go over DoH or DoT.
        encrypted: Vec<bool>,
        /// The target's port.
        port: u16,
        /// The family the checks use.
        family: IpFamily,
        /// At most this many addresses are connected to.
        max: usize,
        /// How long the connects may take: the checks' longest timeout.
        timeout: Duration,
        /// Its evidence slot.
        evidence: SlotId,
    },
    /// A TLS check with a `control_sni` (its outcome carries the control).
    SniFiltered {
        /// The check.
        check: EntryId,
    },
    /// A UDP call port and the TCP call ports to the same host.
    UdpBlocked {
        /// The UDP call port.
        udp: EntryId,
        /// TCP call ports (connect or STUN) to the same host.
        tcp: Vec<EntryId>,
    },
    /// A TLS check with `ech: grease` (its outcome carries the GREASE-ECH
    /// handshake's result).
    EchBlocked {
        /// The check.
        check: EntryId,
    },
    /// A QUIC check with a `control_sni` (its outcome carries the control).
    QuicSniFiltered {
        /// The check.
        check: EntryId,
    },
    /// A QUIC check and the TLS checks of the same host and port.
    QuicBlocked {
        /// The QUIC check.
        quic: EntryId,
        /// TLS checks of the same host and port.
        tls: Vec<EntryId>,
        /// Whether the QUIC check has a `control_sni` (its outcome carries
        /// the control).
        control: bool,
    },
    /// A download or upload with a `min_rate`.
    Throttled {
        /// The download or upload check.
        transfer: EntryId,
        /// Its `min_rate`, bytes per second.
        min_rate: u64,
    },
    /// A download.
    Stalled {
        /// The download check.
        download: EntryId,
    },
    /// An upload.
    UploadStalled {
        /// The upload check.
        upload: EntryId,
    },
}

impl Case {
    /// The catalogue entries it reads.
    pub fn inputs(&self) -> Vec<EntryId> {
        match self {
            Case::DnsRemoved { system, controls }
            | Case::DnsInjected {
                system, controls, ..
            } => std::iter::once(*system)
                .chain(controls.iter().copied())
                .collect(),
            Case::IpBlocked {
                checks, controls, ..
            } => checks.iter().chain(controls).copied().collect(),
            Case::SniFiltered { check }
            | Case::QuicSniFiltered { check }
            | Case::EchBlocked { check } => vec![*check],
            Case::UdpBlocked { udp, tcp } => {
                std::iter::once(*udp).chain(tcp.iter().copied()).collect()
            }
            Case::QuicBlocked { quic, tls, .. } => {
                std::iter::once(*quic).chain(tls.iter().copied()).collect()
            }
            Case::Throttled { transfer: id, .. }
            | Case::Stalled { download: id }
            | Case::UploadStalled { upload: id } => vec![*id],
        }
    }

    /// Its evidence slot, for cases that need evidence.
    pub fn evidence(&self) -> Option<SlotId> {
        match self {
            Case::DnsInjected { evidence, .. } | Case::IpBlocked { evidence, .. } => {
                Some(*evidence)
            }
            _ => None,
        }
    }
}

/// What a round gathered for one case, beyond its checks.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Evidence {
    /// Still waiting for the answers it needs (or never started).
    #[default]
    Waiting,
    /// The outcomes decide; nothing was sent.
    NotNeeded,
    /// Connects to the controls' addresses (`None`: still connecting).
    Connects(Vec<(IpAddr, Option<Result<(), Reason>>)>),
    /// Handshakes with the name's SNI at the system's and a control's
    /// address (`None`: not finished).
    Handshakes {
        /// At the system resolver's first address.
        system: Option<Result<(), Reason>>,
        /// At the first control's first address.
        control: Option<Result<(), Reason>>,
    },
}

/// The addresses a DNS outcome holds, if the check passed.
pub fn passed_addrs(o: &Outcome) -> Option<&[IpAddr]> {
    match (&o.failure, &o.facts) {
        (None, Facts::Dns { addrs, .. }) => Some(addrs),
        _ => None,
    }
}

fn is_cert_failure(r: Reason) -> bool {
    matches!(
        r,
        Reason::SslInvalidHostname | Reason::SslUnknownAuthority | Reason::SslInvalidCertificate
    )
}

/// Judges `plan` from outcomes (`outcome(entry)`) and evidence
/// (`evidence(slot)`): `Some(true)` blocked, `Some(false)` judged and not,
/// `None` not judged.
pub fn judge<'a>(
    plan: &Plan,
    outcome: &dyn Fn(EntryId) -> Option<&'a Outcome>,
    evidence: &dyn Fn(SlotId) -> Evidence,
) -> Option<bool> {
    let verdicts = plan
        .cases
        .iter()
        .filter_map(|c| judge_case(c, outcome, evidence));
    verdicts.reduce(|a, b| a || b)
}

fn judge_case<'a>(
    case: &Case,
    outcome: &dyn Fn(EntryId) -> Option<&'a Outcome>,
    evidence: &dyn Fn(SlotId) -> Evidence,
) -> Option<bool> {
    match case {
        Case::DnsRemoved { system, controls } => {
            let control_worked = controls
                .iter()
                .any(|&c| outcome(c).and_then(passed_addrs).is_some());
            if !control_worked {
                return None;
            }
            let sys = outcome(*system)?;
            Some(matches!(
                sys.failure,
                Some((
                    Stage::Resolve,
                    Reason::DnsNxdomain | Reason::DnsNoAnswer | Reason::DnsServfail
                ))
            ))
        }
        Case::DnsInjected {
            system,
            controls,
            evidence: slot,
            ..
        } => {
            let ctl: Vec<&Outcome> = controls.iter().filter_map(|&c| outcome(c)).collect();
            if !ctl.iter().any(|o| passed_addrs(o).is_some()) {
                return None;
            }
            let sys = outcome(*system)?;
            if matches!(sys.failure, Some((_, Reason::DnsBogon))) {
                return Some(true);
            }
            match evidence(*slot) {
                Evidence::NotNeeded => Some(false),
                Evidence::Handshakes {
                    system: Some(s),
                    control: Some(Ok(())),
                } => Some(matches!(s, Err(r) if is_cert_failure(r))),
                // The control's handshake failed too, or did not finish:
                // no judgement.
                _ => None,
            }
        }
        Case::IpBlocked {
            controls,
            encrypted,
            evidence: slot,
            ..
        } => {
            let network_up = controls
                .iter()
                .zip(encrypted)
                .any(|(&c, &enc)| enc && outcome(c).is_some_and(|o| o.duration.is_some()));
            if !network_up {
                return None;
            }
            match evidence(*slot) {
                // A connect still running at the cut-off timed out.
                Evidence::Connects(v) => {
                    Some(v.iter().all(|(_, r)| matches!(r, None | Some(Err(_)))))
                }
                _ => None,
            }
        }
        Case::SniFiltered { check } => each_address(outcome(*check)?, sni_verdict),
        Case::UdpBlocked { udp, tcp } => {
            let u = outcome(*udp)?;
            if u.is_ok() {
                return Some(false);
            }
            tcp.iter()
                .any(|&t| outcome(t).is_some_and(|o| o.is_ok()))
                .then_some(true)
        }
        Case::EchBlocked { check } => each_address(outcome(*check)?, ech_verdict),
        Case::QuicSniFiltered { check } => {
            let q = outcome(*check)?;
            match q.failure {
                None => Some(false),
                Some((Stage::QuicHandshake, r)) if quic_silenced(r) => {
                    (q.control == Some(true)).then_some(true)
                }
                Some((Stage::QuicHandshake, _)) => Some(false),
                Some(_) => None,
            }
        }
        Case::QuicBlocked { quic, tls, control } => {
            let q = outcome(*quic)?;
            let blocked_like = match q.failure {
                None => return Some(false),
                Some((Stage::QuicHandshake, r)) => quic_silenced(r),
                Some(_) => return None,
            };
            if blocked_like && *control {
                match q.control {
                    // The server answered the neutral name over UDP: the
                    // port is open, the name is what is filtered.
                    Some(true) => return Some(false),
                    Some(false) => {}
                    None => return None,
                }
            }
            if !tls.iter().any(|&t| outcome(t).is_some_and(|o| o.is_ok())) {
                return None;
            }
            Some(blocked_like)
        }
        Case::Throttled { transfer, min_rate } => {
            let o = outcome(*transfer)?;
            match (&o.failure, &o.facts) {
                // A download that passed neither stalled nor lacks a
                // first byte unless its body is empty, which the rate's
                // floors leave unjudged.
                (None, Facts::Download(t)) => rate_below(t, *min_rate),
                // An upload's rate stands whether it finished or ran out
                // of time while the peer still acknowledged bytes.
                (
                    None | Some((Stage::Write | Stage::Http, Reason::GenericTimeout)),
                    Facts::Upload(t),
                ) if !t.stalled => rate_below(t, *min_rate),
                _ => None,
            }
        }
        Case::Stalled { download } => {
            let o = outcome(*download)?;
            match &o.facts {
                Facts::Download(t) => Some(t.stalled),
                _ => None,
            }
        }
        Case::UploadStalled { upload } => {
            let o = outcome(*upload)?;
            match &o.facts {
                Facts::Upload(t) => Some(t.stalled),
                _ => None,
            }
        }
    }
}

/// `verdict` of a check's outcome — of each address's, for an
/// `all_addresses` check, 1 if any says 1.
fn each_address(o: &Outcome, verdict: fn(&Outcome) -> Option<bool>) -> Option<bool> {
    match &o.facts {
        Facts::Addresses(per) => per
            .iter()
            .filter_map(|(_, o)| verdict(o))
            .reduce(|a, b| a || b),
        _ => verdict(o),
    }
}

/// The least body a rate under `min_rate` is judged from: a short
/// transfer is all round trips and slow start, not rate.
const RATE_FLOOR_BYTES: u64 = 64 * 1024;

/// The least time (request sent to last byte) a rate under `min_rate` is
/// judged from, for the same reason.
const RATE_FLOOR_TIME: Duration = Duration::from_secs(1);

/// Whether a completed transfer ran under `min_rate`: `false` when it ran
/// at `min_rate` or faster (round trips and slow start only ever lower a
/// measured rate, so a fast one is fast whatever its length), `true` when
/// it ran slower over at least [`RATE_FLOOR_BYTES`] and
/// [`RATE_FLOOR_TIME`], unjudged when it was slower but too short to say.
fn rate_below(t: &Transfer, min_rate: u64) -> Option<bool> {
    if t.rate() >= min_rate as f64 {
        Some(false)
    } else if t.bytes >= RATE_FLOOR_BYTES && t.duration >= RATE_FLOOR_TIME {
        Some(true)
    } else {
        None
    }
}

/// A TLS outcome with its GREASE-ECH handshake: judged only when the plain
/// handshake completed over TLS 1.3 (ECH is TLS 1.3's: a server that speaks
/// only TLS 1.2 fails a GREASE-ECH handshake by itself) and the GREASE-ECH
/// one reached its handshake; 1 for the filter's signature there (a reset,
/// a timeout, EOF), 0 when it completed or the server answered otherwise.
fn ech_verdict(o: &Outcome) -> Option<bool> {
    let Facts::Tls {
        version: "TLS 1.3", ..
    } = o.facts
    else {
        return None;
    };
    match (o.failure, o.ech?) {
        (Some(_), _) => None,
        (None, EchResult::Completed) => Some(false),
        (None, EchResult::Failed(Stage::TlsHandshake, r)) => Some(matches!(
            r,
            Reason::ConnectionReset | Reason::GenericTimeout | Reason::Eof
        )),
        (None, EchResult::Failed(..)) => None,
    }
}

/// The failures of a QUIC handshake a filter causes: no answer, a reset,
/// a refusal (an ICMP unreachable).
fn quic_silenced(r: Reason) -> bool {
    matches!(
        r,
        Reason::GenericTimeout | Reason::ConnectionReset | Reason::ConnectionRefused
    )
}

/// A TLS outcome with its control: 1 for the SNI filter's signature with a
/// control the server answered, 0 when the check passed or failed otherwise.
fn sni_verdict(o: &Outcome) -> Option<bool> {
    match o.failure {
        None => Some(false),
        Some((Stage::TlsHandshake, r)) => {
            if !matches!(
                r,
                Reason::ConnectionReset | Reason::GenericTimeout | Reason::Eof
            ) {
                return Some(false);
            }
            (o.control == Some(true)).then_some(true)
        }
        Some(_) => None,
    }
}
