//! The rules of the handshake verdicts: `sni_filtered`, `ech_blocked`,
//! `quic_sni_filtered`, `quic_blocked`.

use super::*;

#[test]
fn sni_filtered() {
    let case = || Case::SniFiltered { check: id(0) };
    let rows: Vec<(&str, Outcome, Option<bool>)> = vec![
        (
            "reset, control completed",
            tls(Some(ConnectionReset), Some(true)),
            YES,
        ),
        (
            "timeout, control completed",
            tls(Some(GenericTimeout), Some(true)),
            YES,
        ),
        ("EOF, control completed", tls(Some(Eof), Some(true)), YES),
        ("passes", tls(None, Some(true)), NO),
        ("passes, control not made", tls(None, None), NO),
        (
            "certificate error",
            tls(Some(SslInvalidHostname), Some(true)),
            NO,
        ),
        ("TLS alert", tls(Some(SslFailedHandshake), Some(true)), NO),
        (
            "reset, control failed too",
            tls(Some(ConnectionReset), Some(false)),
            ABSENT,
        ),
        (
            "reset, control unfinished",
            tls(Some(ConnectionReset), None),
            ABSENT,
        ),
        (
            "failed at connect",
            fail(Stage::Connect, ConnectionRefused),
            ABSENT,
        ),
        (
            "failed at resolve",
            fail(Stage::Resolve, DnsNxdomain),
            ABSENT,
        ),
    ];
    for (what, o, want) in rows {
        assert_eq!(
            judge_case(case(), vec![(0, o)], Evidence::Waiting),
            want,
            "sni_filtered: {what}"
        );
    }
    // all_addresses: judged address by address, 1 if any says 1.
    let per = |outcomes: Vec<Outcome>| {
        Outcome::per_address(
            outcomes
                .into_iter()
                .enumerate()
                .map(|(k, o)| (ip(&format!("192.0.2.{}", k + 1)), o))
                .collect(),
        )
    };
    let rows: Vec<(&str, Outcome, Option<bool>)> = vec![
        (
            "one address filtered",
            per(vec![
                tls(None, Some(true)),
                tls(Some(ConnectionReset), Some(true)),
            ]),
            YES,
        ),
        (
            "every address passes",
            per(vec![tls(None, Some(true)), tls(None, Some(true))]),
            NO,
        ),
        (
            "one passes, one cannot be judged",
            per(vec![tls(None, None), tls(Some(Eof), Some(false))]),
            NO,
        ),
        (
            "no address can be judged",
            per(vec![fail(Stage::Connect, GenericTimeout)]),
            ABSENT,
        ),
    ];
    for (what, o, want) in rows {
        assert_eq!(
            judge_case(case(), vec![(0, o)], Evidence::Waiting),
            want,
            "sni_filtered, all_addresses: {what}"
        );
    }
}

/// A TLS check's outcome (`version` negotiated when it passed) with its
/// GREASE-ECH handshake's result.
fn tls_ech(failure: Option<Reason>, version: &'static str, ech: Option<EchResult>) -> Outcome {
    let mut o = match failure {
        None => Outcome::ok(
            Duration::from_millis(5),
            Facts::Tls {
                not_after: None,
                version,
            },
        ),
        Some(r) => fail(Stage::TlsHandshake, r),
    };
    o.ech = ech;
    o
}

#[test]
fn ech_blocked() {
    let failed = |stage, r| Some(EchResult::Failed(stage, r));
    let hs = Stage::TlsHandshake;
    let v13 = "TLS 1.3";
    let rows: Vec<(&str, Outcome, Option<bool>)> = vec![
        (
            "GREASE-ECH dropped",
            tls_ech(None, v13, failed(hs, GenericTimeout)),
            YES,
        ),
        (
            "GREASE-ECH reset",
            tls_ech(None, v13, failed(hs, ConnectionReset)),
            YES,
        ),
        (
            "GREASE-ECH cut by EOF",
            tls_ech(None, v13, failed(hs, Eof)),
            YES,
        ),
        (
            "both complete",
            tls_ech(None, v13, Some(EchResult::Completed)),
            NO,
        ),
        // The server answered: it is the server's doing, not a filter's.
        (
            "server alert",
            tls_ech(None, v13, failed(hs, SslFailedHandshake)),
            NO,
        ),
        (
            "certificate",
            tls_ech(None, v13, failed(hs, SslInvalidHostname)),
            NO,
        ),
        // ECH is TLS 1.3's: a TLS 1.2 server fails it by itself.
        (
            "TLS 1.2 server",
            tls_ech(None, "TLS 1.2", failed(hs, GenericTimeout)),
            ABSENT,
        ),
        (
            "GREASE-ECH connect failed",
            tls_ech(None, v13, failed(Stage::Connect, ConnectionRefused)),
            ABSENT,
        ),
        ("GREASE-ECH not ended", tls_ech(None, v13, None), ABSENT),
        (
            "plain handshake failed",
            tls_ech(Some(ConnectionReset), v13, failed(hs, GenericTimeout)),
            ABSENT,
        ),
    ];
    for (what, o, want) in rows {
        let got = judge_case(
            Case::EchBlocked { check: id(0) },
            vec![(0, o)],
            Evidence::Waiting,
        );
        assert_eq!(got, want, "ech_blocked: {what}");
    }
    // Every address: any that says 1 makes it 1.
    let per = Outcome::per_address(vec![
        (
            ip("192.0.2.1"),
            tls_ech(None, v13, Some(EchResult::Completed)),
        ),
        (
            ip("192.0.2.2"),
            tls_ech(None, v13, failed(hs, GenericTimeout)),
        ),
    ]);
    let got = judge_case(
        Case::EchBlocked { check: id(0) },
        vec![(0, per)],
        Evidence::Waiting,
    );
    assert_eq!(got, YES, "ech_blocked at one of two addresses");
}

/// A QUIC check's outcome with its neutral-SNI control.
fn quic(failure: Option<Reason>, control: Option<bool>) -> Outcome {
    let mut o = match failure {
        None => ok(),
        Some(r) => fail(Stage::QuicHandshake, r),
    };
    o.control = control;
    o
}

#[test]
fn quic_sni_filtered() {
    let rows: Vec<(&str, Outcome, Option<bool>)> = vec![
        (
            "no answer, control answered",
            quic(Some(GenericTimeout), Some(true)),
            YES,
        ),
        (
            "reset, control answered",
            quic(Some(ConnectionReset), Some(true)),
            YES,
        ),
        (
            "refused, control answered",
            quic(Some(ConnectionRefused), Some(true)),
            YES,
        ),
        ("passes", quic(None, Some(true)), NO),
        ("passes, control not made", quic(None, None), NO),
        // The server answered the real name too.
        (
            "certificate error",
            quic(Some(SslInvalidHostname), Some(true)),
            NO,
        ),
        (
            "version failure",
            quic(Some(QuicIncompatibleVersion), Some(true)),
            NO,
        ),
        (
            "no answer, control not answered",
            quic(Some(GenericTimeout), Some(false)),
            ABSENT,
        ),
        (
            "no answer, control unfinished",
            quic(Some(GenericTimeout), None),
            ABSENT,
        ),
        (
            "failed at resolve",
            fail(Stage::Resolve, DnsNxdomain),
            ABSENT,
        ),
    ];
    for (what, q, want) in rows {
        let got = judge_case(
            Case::QuicSniFiltered { check: id(0) },
            vec![(0, q)],
            Evidence::Waiting,
        );
        assert_eq!(got, want, "quic_sni_filtered: {what}");
    }
}

#[test]
fn quic_blocked_with_a_control_is_udp_not_the_name() {
    let case = || Case::QuicBlocked {
        quic: id(0),
        tls: vec![id(1)],
        control: true,
    };
    let tls_down = || fail(Stage::TlsHandshake, ConnectionReset);
    let rows: Vec<(&str, Outcome, Outcome, Option<bool>)> = vec![
        (
            "both unanswered, TLS passes",
            quic(Some(GenericTimeout), Some(false)),
            ok(),
            YES,
        ),
        // The neutral name was answered over UDP: the name is filtered.
        (
            "control answered, TLS passes",
            quic(Some(GenericTimeout), Some(true)),
            ok(),
            NO,
        ),
        (
            "control unfinished",
            quic(Some(GenericTimeout), None),
            ok(),
            ABSENT,
        ),
        (
            "both unanswered, TLS fails",
            quic(Some(GenericTimeout), Some(false)),
            tls_down(),
            ABSENT,
        ),
        ("QUIC passes", quic(None, None), ok(), NO),
        (
            "certificate failure",
            quic(Some(SslInvalidHostname), None),
            ok(),
            NO,
        ),
    ];
    for (what, q, t, want) in rows {
        let got = judge_case(case(), vec![(0, q), (1, t)], Evidence::Waiting);
        assert_eq!(got, want, "quic_blocked with control: {what}");
    }
}

#[test]
fn quic_blocked() {
    let case = || Case::QuicBlocked {
        quic: id(0),
        tls: vec![id(1)],
        control: false,
    };
    let quic = |r| fail(Stage::QuicHandshake, r);
    let tls_down = || fail(Stage::TlsHandshake, ConnectionReset);
    let rows: Vec<(&str, Outcome, Outcome, Option<bool>)> = vec![
        ("no answer, TLS passes", quic(GenericTimeout), ok(), YES),
        ("reset, TLS passes", quic(ConnectionReset), ok(), YES),
        ("refused, TLS passes", quic(ConnectionRefused), ok(), YES),
        ("QUIC passes", ok(), ok(), NO),
        ("QUIC passes, TLS fails", ok(), tls_down(), NO),
        // The server answered: UDP 443 is open.
        (
            "certificate failure, TLS passes",
            quic(SslInvalidHostname),
            ok(),
            NO,
        ),
        (
            "version failure, TLS passes",
            quic(QuicIncompatibleVersion),
            ok(),
            NO,
        ),
        (
            "no answer, TLS fails too",
            quic(GenericTimeout),
            tls_down(),
            ABSENT,
        ),
        (
            "failed at resolve",
            fail(Stage::Resolve, DnsNxdomain),
            ok(),
            ABSENT,
        ),
    ];
    for (what, q, t, want) in rows {
        let got = judge_case(case(), vec![(0, q), (1, t)], Evidence::Waiting);
        assert_eq!(got, want, "quic_blocked: {what}");
    }
}
