//! Every verdict rule as a table: outcomes and evidence in, 1 / 0 / absent
//! out. One row per sentence of the README's Verdicts section ("1 when",
//! and each "not judged").

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::probe::Transfer;
use Reason::*;

mod handshakes;
mod transfers;

const YES: Option<bool> = Some(true);
const NO: Option<bool> = Some(false);
const ABSENT: Option<bool> = None;

fn id(i: usize) -> EntryId {
    EntryId::new(i)
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("a literal address")
}

fn dns_ok(addrs: &[&str]) -> Outcome {
    let addrs: Vec<IpAddr> = addrs.iter().map(|a| ip(a)).collect();
    let mut o = Outcome::ok(
        Duration::from_millis(2),
        Facts::Dns {
            answers: addrs.len(),
            addrs,
        },
    );
    o.control = None;
    o
}

/// A DNS check that got an answer and failed (the duration is there).
fn dns_answered(reason: Reason) -> Outcome {
    let mut o = Outcome::failed(Stage::Resolve, reason);
    o.duration = Some(Duration::from_millis(2));
    o
}

fn ok() -> Outcome {
    Outcome::ok(Duration::from_millis(5), Facts::None)
}

fn fail(stage: Stage, reason: Reason) -> Outcome {
    Outcome::failed(stage, reason)
}

/// A TLS check's outcome with its neutral-SNI control.
fn tls(failure: Option<Reason>, control: Option<bool>) -> Outcome {
    let mut o = match failure {
        None => ok(),
        Some(r) => fail(Stage::TlsHandshake, r),
    };
    o.control = control;
    o
}

fn download(bytes: u64, millis: u64, first_byte: bool, stalled: bool) -> Outcome {
    Outcome {
        failure: stalled.then_some((Stage::Read, GenericTimeout)),
        duration: None,
        facts: Facts::Download(Transfer {
            bytes,
            duration: Duration::from_millis(millis),
            first_byte: first_byte.then_some(Duration::from_millis(50)),
            stalled,
            status: None,
            segments: None,
        }),
        control: None,
        ech: None,
    }
}

/// Judges a one-case plan of `kind` from outcomes by entry and one
/// evidence slot.
fn judge_case(case: Case, outcomes: Vec<(usize, Outcome)>, evidence: Evidence) -> Option<bool> {
    judge_cases(vec![case], outcomes, evidence)
}

fn judge_cases(
    cases: Vec<Case>,
    outcomes: Vec<(usize, Outcome)>,
    evidence: Evidence,
) -> Option<bool> {
    let plan = Plan {
        service: ServiceId::new(0),
        target: "t".into(),
        kind: BlockingKind::DnsRemoved,
        cases,
    };
    let outcomes: HashMap<EntryId, Outcome> =
        outcomes.into_iter().map(|(i, o)| (id(i), o)).collect();
    judge(&plan, &|e| outcomes.get(&e), &|_| evidence.clone())
}

fn removed() -> Case {
    Case::DnsRemoved {
        system: id(0),
        controls: vec![id(1), id(2)],
    }
}

#[test]
fn dns_removed() {
    let ctl = || dns_ok(&["192.0.2.1"]);
    let ctl_failed = || fail(Stage::Resolve, GenericTimeout);
    let rows: Vec<(&str, Outcome, Outcome, Option<bool>)> = vec![
        ("NXDOMAIN", dns_answered(DnsNxdomain), ctl(), YES),
        ("no answer", dns_answered(DnsNoAnswer), ctl(), YES),
        ("SERVFAIL", dns_answered(DnsServfail), ctl(), YES),
        ("resolves", dns_ok(&["192.0.2.1"]), ctl(), NO),
        (
            "system timed out",
            fail(Stage::Resolve, GenericTimeout),
            ctl(),
            NO,
        ),
        ("system refused", dns_answered(DnsRefused), ctl(), NO),
        ("bogon", fail(Stage::Resolve, DnsBogon), ctl(), NO),
        (
            "every control failed",
            dns_answered(DnsNxdomain),
            ctl_failed(),
            ABSENT,
        ),
        (
            "control answered NXDOMAIN",
            dns_answered(DnsNxdomain),
            dns_answered(DnsNxdomain),
            ABSENT,
        ),
    ];
    for (what, system, control, want) in rows {
        let got = judge_case(
            removed(),
            vec![(0, system), (1, control), (2, ctl_failed())],
            Evidence::Waiting,
        );
        assert_eq!(got, want, "dns_removed: {what}");
    }
    // One control that worked is enough, whichever it is.
    let got = judge_case(
        removed(),
        vec![
            (0, dns_answered(DnsNxdomain)),
            (1, ctl_failed()),
            (2, ctl()),
        ],
        Evidence::Waiting,
    );
    assert_eq!(got, YES);
    // The system check did not end in this round: nothing to judge.
    assert_eq!(
        judge_case(removed(), vec![(1, ctl())], Evidence::Waiting),
        ABSENT
    );
}

fn injected() -> Case {
    Case::DnsInjected {
        system: id(0),
        controls: vec![id(1)],
        name: "n.test".into(),
        port: 443,
        tls_entry: None,
        timeout: Duration::from_secs(1),
        evidence: SlotId::new(0),
    }
}

#[test]
fn dns_injected() {
    let hs = |system: Option<Result<(), Reason>>, control: Option<Result<(), Reason>>| {
        Evidence::Handshakes { system, control }
    };
    let ctl = || dns_ok(&["192.0.2.1"]);
    let disjoint = || dns_ok(&["198.51.100.7"]);
    let rows: Vec<(&str, Outcome, Outcome, Evidence, Option<bool>)> = vec![
        (
            "bogon",
            fail(Stage::Resolve, DnsBogon),
            ctl(),
            Evidence::Waiting,
            YES,
        ),
        (
            "disjoint, certificate fails at the system's address only",
            disjoint(),
            ctl(),
            hs(Some(Err(SslInvalidHostname)), Some(Ok(()))),
            YES,
        ),
        (
            "disjoint, unknown authority at the system's address",
            disjoint(),
            ctl(),
            hs(Some(Err(SslUnknownAuthority)), Some(Ok(()))),
            YES,
        ),
        (
            "disjoint, both certificates valid (a CDN)",
            disjoint(),
            ctl(),
            hs(Some(Ok(())), Some(Ok(()))),
            NO,
        ),
        (
            "disjoint, the system's address resets",
            disjoint(),
            ctl(),
            hs(Some(Err(ConnectionReset)), Some(Ok(()))),
            NO,
        ),
        (
            "answers overlap",
            dns_ok(&["192.0.2.1"]),
            ctl(),
            Evidence::NotNeeded,
            NO,
        ),
        (
            "the control's handshake failed",
            disjoint(),
            ctl(),
            hs(Some(Err(SslInvalidHostname)), Some(Err(ConnectionReset))),
            ABSENT,
        ),
        (
            "the control's handshake did not finish",
            disjoint(),
            ctl(),
            hs(Some(Err(SslInvalidHostname)), None),
            ABSENT,
        ),
        (
            "the system's handshake did not finish",
            disjoint(),
            ctl(),
            hs(None, Some(Ok(()))),
            ABSENT,
        ),
        (
            "evidence still waiting",
            disjoint(),
            ctl(),
            Evidence::Waiting,
            ABSENT,
        ),
        (
            "every control failed",
            fail(Stage::Resolve, DnsBogon),
            fail(Stage::Resolve, GenericTimeout),
            Evidence::Waiting,
            ABSENT,
        ),
    ];
    for (what, system, control, evidence, want) in rows {
        let got = judge_case(injected(), vec![(0, system), (1, control)], evidence);
        assert_eq!(got, want, "dns_injected: {what}");
    }
}

fn ip_blocked(encrypted: bool) -> Case {
    Case::IpBlocked {
        checks: vec![id(0)],
        controls: vec![id(1)],
        encrypted: vec![encrypted],
        port: 443,
        family: IpFamily::V4,
        max: 8,
        timeout: Duration::from_secs(1),
        evidence: SlotId::new(0),
    }
}

#[test]
fn ip_blocked_rule() {
    let connects = |rs: &[Option<Result<(), Reason>>]| {
        Evidence::Connects(
            rs.iter()
                .enumerate()
                .map(|(k, r)| (ip(&format!("192.0.2.{}", k + 1)), *r))
                .collect(),
        )
    };
    let ctl = || dns_ok(&["192.0.2.1", "192.0.2.2"]);
    let down = fail(Stage::Connect, GenericTimeout);
    let rows: Vec<(&str, bool, Outcome, Evidence, Option<bool>)> = vec![
        (
            "every address fails",
            true,
            ctl(),
            connects(&[Some(Err(GenericTimeout)), Some(Err(ConnectionReset))]),
            YES,
        ),
        (
            "a connect still running at the cut-off timed out",
            true,
            ctl(),
            connects(&[Some(Err(ConnectionRefused)), None]),
            YES,
        ),
        (
            "one address connects",
            true,
            ctl(),
            connects(&[Some(Err(GenericTimeout)), Some(Ok(()))]),
            NO,
        ),
        (
            "only a plain control answered",
            false,
            ctl(),
            connects(&[Some(Err(GenericTimeout))]),
            ABSENT,
        ),
        (
            "the DoH/DoT control got no answer",
            true,
            fail(Stage::Resolve, GenericTimeout),
            connects(&[Some(Err(GenericTimeout))]),
            ABSENT,
        ),
        (
            "the controls had no address",
            true,
            dns_answered(DnsNxdomain),
            Evidence::NotNeeded,
            ABSENT,
        ),
        (
            "evidence never started",
            true,
            ctl(),
            Evidence::Waiting,
            ABSENT,
        ),
    ];
    for (what, encrypted, control, evidence, want) in rows {
        let got = judge_case(
            ip_blocked(encrypted),
            vec![(0, down.clone()), (1, control)],
            evidence,
        );
        assert_eq!(got, want, "ip_blocked: {what}");
    }
    // An encrypted control that answered NXDOMAIN still proves the path up.
    let got = judge_case(
        ip_blocked(true),
        vec![(0, down), (1, dns_answered(DnsNxdomain))],
        connects(&[Some(Err(GenericTimeout))]),
    );
    assert_eq!(got, YES);
}

#[test]
fn udp_blocked() {
    let case = || Case::UdpBlocked {
        udp: id(0),
        tcp: vec![id(1), id(2)],
    };
    let udp_down = || fail(Stage::Stun, GenericTimeout);
    let tcp_down = || fail(Stage::Connect, ConnectionRefused);
    let rows: Vec<(&str, Outcome, Outcome, Option<bool>)> = vec![
        ("UDP fails, TCP answers", udp_down(), ok(), YES),
        ("UDP answers", ok(), ok(), NO),
        ("UDP answers, TCP fails", ok(), tcp_down(), NO),
        (
            "UDP and every TCP port fail",
            udp_down(),
            tcp_down(),
            ABSENT,
        ),
    ];
    for (what, udp, tcp, want) in rows {
        let got = judge_case(
            case(),
            vec![(0, udp), (1, tcp), (2, tcp_down())],
            Evidence::Waiting,
        );
        assert_eq!(got, want, "udp_blocked: {what}");
    }
}

#[test]
fn a_plan_is_1_if_any_case_says_1_and_absent_if_none_is_judged() {
    let sni = |i| Case::SniFiltered { check: id(i) };
    let filtered = tls(Some(ConnectionReset), Some(true));
    let clean = tls(None, Some(true));
    let unjudged = fail(Stage::Connect, GenericTimeout);
    let cases = || vec![sni(0), sni(1)];
    let got = |a: &Outcome, b: &Outcome| {
        judge_cases(
            cases(),
            vec![(0, a.clone()), (1, b.clone())],
            Evidence::Waiting,
        )
    };
    assert_eq!(got(&clean, &filtered), YES);
    assert_eq!(got(&filtered, &unjudged), YES);
    assert_eq!(got(&clean, &unjudged), NO);
    assert_eq!(got(&clean, &clean), NO);
    assert_eq!(got(&unjudged, &unjudged), ABSENT);
}

#[test]
fn a_plan_reads_exactly_the_checks_of_its_cases() {
    let ids = |v: &[usize]| v.iter().map(|&i| id(i)).collect::<Vec<_>>();
    let rows: Vec<(Case, Vec<EntryId>)> = vec![
        (removed(), ids(&[0, 1, 2])),
        (injected(), ids(&[0, 1])),
        (ip_blocked(true), ids(&[0, 1])),
        (Case::SniFiltered { check: id(4) }, ids(&[4])),
        (
            Case::UdpBlocked {
                udp: id(5),
                tcp: ids(&[6, 7]),
            },
            ids(&[5, 6, 7]),
        ),
        (
            Case::QuicBlocked {
                quic: id(8),
                tls: ids(&[9]),
                control: true,
            },
            ids(&[8, 9]),
        ),
        (Case::QuicSniFiltered { check: id(8) }, ids(&[8])),
        (Case::EchBlocked { check: id(4) }, ids(&[4])),
        (
            Case::Throttled {
                transfer: id(3),
                min_rate: 1,
            },
            ids(&[3]),
        ),
        (Case::Stalled { download: id(3) }, ids(&[3])),
    ];
    for (case, want) in rows {
        assert_eq!(case.inputs(), want, "{case:?}");
        // Only the cases that need network evidence have a slot.
        let needs = matches!(case, Case::DnsInjected { .. } | Case::IpBlocked { .. });
        assert_eq!(case.evidence(), needs.then_some(SlotId::new(0)), "{case:?}");
    }
    let plan = Plan {
        service: ServiceId::new(0),
        target: "t".into(),
        kind: BlockingKind::SniFiltered,
        cases: vec![removed(), Case::SniFiltered { check: id(4) }],
    };
    assert_eq!(plan.inputs().collect::<Vec<_>>(), ids(&[0, 1, 2, 4]));
    // A censor search runs for the TLS check of an sni_filtered or
    // ech_blocked case, never for another kind's.
    assert_eq!(plan.searched_check(), Some(id(4)));
    let with = |cases: Vec<Case>| Plan {
        service: ServiceId::new(0),
        target: "t".into(),
        kind: BlockingKind::SniFiltered,
        cases,
    };
    let ech = with(vec![Case::EchBlocked { check: id(7) }]);
    assert_eq!(ech.searched_check(), Some(id(7)));
    let others = with(vec![
        removed(),
        ip_blocked(true),
        Case::QuicSniFiltered { check: id(8) },
    ]);
    assert_eq!(others.searched_check(), None);
}
