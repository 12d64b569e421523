//! Call-port checks against in-process STUN servers and closed ports.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use reachability_exporter::probe::{Facts, Outcome};
use reachability_exporter::reason::{Reason, Stage};
use support::*;

/// Runs the one check of `yaml`.
async fn one(yaml: &str, dir: &Path) -> Outcome {
    let mut o = run_checks(yaml, dir).await;
    assert_eq!(o.len(), 1);
    o.remove(0)
}

fn udp(addr: std::net::SocketAddr, timeout: &str) -> String {
    format!("services:\n  s:\n    timeout: {timeout}\n    call_ports: [{{ udp: \"{addr}\" }}]\n")
}

#[tokio::test]
async fn stun_success_and_error_responses_both_prove_the_path() {
    within(20, async {
        let dir = tempfile::tempdir().unwrap();
        for how in [StunBehaviour::Success, StunBehaviour::Unauthorized] {
            let addr = stun_udp_server(how).await;
            let o = one(&udp(addr, "2s"), dir.path()).await;
            assert!(o.is_ok(), "{how:?}: {o:?}");
            assert!(o.duration.unwrap() < Duration::from_millis(100), "{o:?}");
            if let StunBehaviour::Success = how {
                // The reflexive address is our socket's, on loopback.
                match o.facts {
                    Facts::Stun { mapped: Some(m) } => assert_eq!(m.ip().to_string(), "127.0.0.1"),
                    other => panic!("{other:?}"),
                }
            }
        }
    })
    .await;
}

#[tokio::test]
async fn malformed_answers_are_ignored_while_waiting() {
    within(20, async {
        let dir = tempfile::tempdir().unwrap();
        let addr = stun_udp_server(StunBehaviour::GarbageThenValid).await;
        let o = one(&udp(addr, "2s"), dir.path()).await;
        assert!(o.is_ok(), "{o:?}");

        // Only garbage: unknown_failure, not a timeout.
        let addr = stun_udp_server(StunBehaviour::OnlyGarbage).await;
        let o = one(&udp(addr, "700ms"), dir.path()).await;
        assert_eq!(o.failure, Some((Stage::Stun, Reason::UnknownFailure)));
    })
    .await;
}

#[tokio::test]
async fn lost_requests_are_retransmitted_and_rtt_is_the_answered_send() {
    within(20, async {
        let dir = tempfile::tempdir().unwrap();
        let addr = stun_udp_server(StunBehaviour::DropFirst(2)).await;
        let start = Instant::now();
        let o = one(&udp(addr, "3s"), dir.path()).await;
        let took = start.elapsed();
        assert!(o.is_ok(), "{o:?}");
        // Answered on the third send: after 500 ms + 1000 ms of backoff.
        assert!(took >= Duration::from_millis(1450), "{took:?}");
        assert!(took < Duration::from_millis(2500), "{took:?}");
        // ...but the RTT is that of the send that was answered.
        assert!(o.duration.unwrap() < Duration::from_millis(100), "{o:?}");
    })
    .await;
}

#[tokio::test]
async fn closed_and_silent_udp_ports() {
    within(20, async {
        let dir = tempfile::tempdir().unwrap();
        // ICMP port unreachable surfaces on the connected socket.
        let o = one(&udp(closed_udp_port().await, "2s"), dir.path()).await;
        assert_eq!(o.failure, Some((Stage::Stun, Reason::ConnectionRefused)));
        let o = one(&udp(silent_udp().await.0, "600ms"), dir.path()).await;
        assert_eq!(o.failure, Some((Stage::Stun, Reason::GenericTimeout)));
        assert_eq!(o.duration, None);
    })
    .await;
}

#[tokio::test]
async fn tcp_connect_and_stun_over_tcp() {
    within(20, async {
        let dir = tempfile::tempdir().unwrap();
        let stun = stun_tcp_server().await;
        let closed = closed_port().await;
        let reset = bad_tls_server(Misbehaviour::Reset).await;
        let close = bad_tls_server(Misbehaviour::Close).await;
        let alert = bad_tls_server(Misbehaviour::Alert).await;
        let cases = [
            (format!("{{ tcp: \"{stun}\" }}"), None),
            (format!("{{ tcp: \"{stun}\", method: stun }}"), None),
            (
                format!("{{ tcp: \"{closed}\" }}"),
                Some((Stage::Connect, Reason::ConnectionRefused)),
            ),
            (
                format!("{{ tcp: \"{closed}\", method: stun }}"),
                Some((Stage::Connect, Reason::ConnectionRefused)),
            ),
            (
                format!("{{ tcp: \"{reset}\", method: stun }}"),
                Some((Stage::Stun, Reason::ConnectionReset)),
            ),
            (
                format!("{{ tcp: \"{close}\", method: stun }}"),
                Some((Stage::Stun, Reason::Eof)),
            ),
            // A TLS alert is not STUN: the stream cannot be resynchronised.
            (
                format!("{{ tcp: \"{alert}\", method: stun }}"),
                Some((Stage::Stun, Reason::UnknownFailure)),
            ),
        ];
        for (entry, want) in cases {
            let yaml = format!("services:\n  s:\n    timeout: 2s\n    call_ports: [{entry}]\n");
            let o = one(&yaml, dir.path()).await;
            assert_eq!(o.failure, want, "{entry}: {o:?}");
            assert_eq!(o.duration.is_some(), want.is_none(), "{entry}: {o:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn call_port_metrics_end_to_end() {
    within(20, async {
        let dir = tempfile::tempdir().unwrap();
        let ok = stun_udp_server(StunBehaviour::Success).await;
        let closed = closed_udp_port().await;
        let tcp = stun_tcp_server().await;
        let yaml = format!(
            "services:\n  calls:\n    timeout: 2s\n    call_ports:\n      - {{ udp: \"{ok}\" }}\n      - {{ udp: \"{closed}\" }}\n      - {{ tcp: \"{tcp}\" }}\n      - {{ tcp: \"{tcp}\", method: stun }}\n"
        );
        let exp = Exporter::start(dir.path(), &yaml).await;
        let (status, body) = get(exp.addr, "/metrics", Some("5")).await;
        assert_eq!(status, 200);
        let l = |t: &std::net::SocketAddr, transport: &'static str, method: &'static str| {
            [("service", "calls".to_string()), ("target", t.to_string()), ("transport", transport.into()), ("method", method.into())]
        };
        let s = |labels: &[(&str, String); 4], name: &str| {
            let v: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            sample(&body, name, &v)
        };
        assert_eq!(s(&l(&ok, "udp", "stun"), "reachability_call_port_reachable"), Some(1.0), "{body}");
        assert!(s(&l(&ok, "udp", "stun"), "reachability_call_port_rtt_seconds").unwrap() > 0.0);
        assert_eq!(s(&l(&closed, "udp", "stun"), "reachability_call_port_reachable"), Some(0.0));
        assert_eq!(s(&l(&closed, "udp", "stun"), "reachability_call_port_rtt_seconds"), None);
        assert_eq!(s(&l(&tcp, "tcp", "connect"), "reachability_call_port_reachable"), Some(1.0));
        assert_eq!(s(&l(&tcp, "tcp", "stun"), "reachability_call_port_reachable"), Some(1.0));
        let failing = [
            ("service", "calls"),
            ("check", "call_port"),
            ("transport", "udp"),
            ("method", "stun"),
            ("stage", "stun"),
            ("reason", "connection_refused"),
        ];
        assert_eq!(sample(&body, "reachability_failure_info", &failing), Some(1.0), "{body}");
        assert_eq!(sample(&body, "reachability_service_up", &[("service", "calls")]), Some(0.0));
        // The reflexive address is never a label.
        assert!(!body.contains("mapped"), "{body}");
        exp.stop().await;
    })
    .await;
}
