//! Unit tests of the rendering: each family's series from outcomes.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::Config;
use crate::probe::Transfer;
use crate::reason::{Reason, Stage};

/// Renders one check of `yaml`'s only service with `outcome`, and
/// returns the sample lines (no comments, no self metrics).
fn samples(yaml: &str, outcome: Outcome) -> Vec<String> {
    let config = Config::parse(
        &format!("labels: {{ site: lab }}\nservices:\n  s:\n{yaml}"),
        Path::new("t.yaml"),
    )
    .expect("a valid config");
    let check = config.services[0].checks[0].clone();
    let text = render_items(
        &config,
        std::iter::once(("s", &check, &outcome)),
        (std::iter::empty(), None, &[], std::iter::empty()),
        Own::Duration(0.0),
        Format::Prometheus,
    );
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("reachability_exporter_"))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn dns_family() {
    let ok = Outcome::ok(
        ms(5),
        Facts::Dns {
            answers: 2,
            addrs: vec![],
        },
    );
    let l = r#"service="s",site="lab",target="a.test",resolver="system",type="A""#;
    assert_eq!(
        samples("    dns: { names: [a.test] }\n", ok),
        [
            format!("reachability_dns_answers{{{l}}} 2.0"),
            format!("reachability_dns_duration_seconds{{{l}}} 0.005"),
            format!("reachability_dns_success{{{l}}} 1.0"),
            r#"reachability_service_up{service="s",site="lab"} 1.0"#.to_string(),
        ]
    );
}

#[test]
fn tcp_family_failing() {
    let l = r#"service="s",site="lab",target="a.test:443""#;
    assert_eq!(
        samples(
            "    tcp: [\"a.test:443\"]\n",
            Outcome::failed(Stage::Connect, Reason::ConnectionRefused)
        ),
        [
            format!(
                "reachability_failure_info{{{l},check=\"tcp\",stage=\"connect\",reason=\"connection_refused\"}} 1.0"
            ),
            r#"reachability_service_up{service="s",site="lab"} 0.0"#.to_string(),
            format!("reachability_tcp_connect_success{{{l}}} 0.0"),
        ]
    );
}

#[test]
fn tls_family() {
    let ok = Outcome::ok(
        ms(2),
        Facts::Tls {
            not_after: Some(1_900_000_000),
            version: "TLS 1.3",
        },
    );
    let l = r#"service="s",site="lab",target="a.test:443",sni="a.test""#;
    let got = samples("    tls: [\"a.test:443\"]\n", ok);
    assert!(got.contains(&format!("reachability_tls_handshake_success{{{l}}} 1.0")));
    assert!(got.contains(&format!(
        "reachability_tls_handshake_duration_seconds{{{l}}} 0.002"
    )));
    assert!(got.contains(&format!(
        "reachability_tls_cert_expiry_timestamp_seconds{{{l}}} 1900000000.0"
    )));
    assert!(got.contains(&format!(
        "reachability_tls_version_info{{{l},version=\"TLS 1.3\"}} 1.0"
    )));
    assert_eq!(got.len(), 5, "{got:?}");
}

#[test]
fn call_port_http_quic_families() {
    let got = samples(
        "    call_ports: [{ udp: \"a.test:3478\" }]\n",
        Outcome::ok(ms(7), Facts::Stun { mapped: None }),
    );
    let l = r#"service="s",site="lab",target="a.test:3478",transport="udp",method="stun""#;
    assert!(got.contains(&format!("reachability_call_port_reachable{{{l}}} 1.0")));
    assert!(got.contains(&format!("reachability_call_port_rtt_seconds{{{l}}} 0.007")));

    let mut o = Outcome::failed(Stage::Http, Reason::HttpUnexpectedStatus);
    o.duration = Some(ms(30));
    o.facts = Facts::Http { status: 451 };
    let got = samples("    http: [\"http://a.test/\"]\n", o);
    let l = r#"service="s",site="lab",target="http://a.test/""#;
    assert!(got.contains(&format!("reachability_http_success{{{l}}} 0.0")));
    assert!(got.contains(&format!("reachability_http_status_code{{{l}}} 451.0")));
    assert!(got.contains(&format!("reachability_http_duration_seconds{{{l}}} 0.03")));

    let got = samples(
        "    quic: [\"a.test:443\"]\n",
        Outcome::ok(ms(4), Facts::None),
    );
    let l = r#"service="s",site="lab",target="a.test:443",sni="a.test""#;
    assert!(got.contains(&format!("reachability_quic_handshake_success{{{l}}} 1.0")));
    assert!(got.contains(&format!(
        "reachability_quic_handshake_duration_seconds{{{l}}} 0.004"
    )));
}

#[test]
fn download_family_has_no_success_gauge() {
    let o = Outcome {
        failure: None,
        duration: None,
        facts: Facts::Download(Transfer {
            bytes: 4096,
            duration: Duration::from_secs(2),
            first_byte: Some(ms(100)),
            stalled: false,
            status: None,
            segments: None,
        }),
        control: None,
        ech: None,
    };
    let l = r#"service="s",site="lab",target="https://a.test/x""#;
    assert_eq!(
        samples("    download: [\"https://a.test/x\"]\n", o),
        [
            format!("reachability_download_bytes_per_second{{{l}}} 2048.0"),
            format!("reachability_download_bytes{{{l}}} 4096.0"),
            format!("reachability_download_duration_seconds{{{l}}} 2.0"),
            format!("reachability_download_first_byte_seconds{{{l}}} 0.1"),
            r#"reachability_service_up{service="s",site="lab"} 1.0"#.to_string(),
        ]
    );
}

#[test]
fn verdict_and_regime_families() {
    let config = Config::parse(
        "labels: { site: lab }\nservices:\n  s:\n    tcp: [\"a.test:1\"]\n",
        Path::new("t.yaml"),
    )
    .expect("a valid config");
    let text = render_items(
        &config,
        std::iter::empty(),
        (
            [
                ("s", "a.test", BlockingKind::DnsRemoved, true),
                ("s", "b.test", BlockingKind::Stalled, false),
            ]
            .into_iter(),
            Some(NetworkRegime::Offline),
            &[],
            [("s", 1_764_000_000.5)].into_iter(),
        ),
        Own::Duration(0.0),
        Format::Prometheus,
    );
    // A scheduled service's round: when it started, with the vantage labels.
    assert!(text.contains(
        "reachability_round_timestamp_seconds{service=\"s\",site=\"lab\"} 1764000000.5\n"
    ));
    assert!(text.contains(
        "reachability_blocking_suspected{service=\"s\",site=\"lab\",target=\"a.test\",kind=\"dns_removed\"} 1.0\n"
    ));
    // The regime: a state set with the vantage labels, no service.
    for (r, v) in [("open", "0.0"), ("allowlist", "0.0"), ("offline", "1.0")] {
        let line = format!("reachability_network_regime{{site=\"lab\",regime=\"{r}\"}} {v}\n");
        assert!(text.contains(&line), "{line} in {text}");
    }
    assert!(text.contains(
        "reachability_blocking_suspected{service=\"s\",site=\"lab\",target=\"b.test\",kind=\"stalled\"} 0.0\n"
    ));
}
