//! Paced rounds: a round starts its checks one every `1 / starts_per_second`
//! (faster when they would not fit `spread` of the budget); a scrape that
//! ends before a check's turn reports it cut off at its first stage; the
//! exporter reports how long its own tasks waited to run.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::Instant;

use support::dns::DnsServer;
use support::pki::Pki;
use support::{Exporter, get, sample, within};

/// A listener on 127.0.0.1:0 that notes when it accepted each connection.
async fn accept_times() -> (SocketAddr, Arc<Mutex<Vec<Instant>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let times = Arc::new(Mutex::new(Vec::new()));
    let t = times.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            t.lock().unwrap().push(Instant::now());
            drop(s);
        }
    });
    (addr, times)
}

/// `n` such listeners: one per check, so each check's start is seen.
async fn listeners(n: usize) -> (Vec<SocketAddr>, Vec<Arc<Mutex<Vec<Instant>>>>) {
    let mut addrs = Vec::new();
    let mut times = Vec::new();
    for _ in 0..n {
        let (a, t) = accept_times().await;
        addrs.push(a);
        times.push(t);
    }
    (addrs, times)
}

fn tcp_list(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test]
async fn a_round_starts_its_checks_at_the_configured_rate() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let (addrs, times) = listeners(5).await;
        let exp = Exporter::start(
            dir.path(),
            &format!(
                "pace:\n  starts_per_second: 20\nservices:\n  s:\n    tcp: [{}]\n",
                tcp_list(&addrs)
            ),
        )
        .await;
        let (status, body) = get(exp.addr, "/metrics", Some("10")).await;
        assert_eq!(status, 200, "{body}");
        for a in &addrs {
            let target = a.to_string();
            assert_eq!(
                sample(
                    &body,
                    "reachability_tcp_connect_success",
                    &[("target", &target)]
                ),
                Some(1.0),
                "{body}"
            );
        }
        // One start every 50 ms, in config order.
        let accepted: Vec<Instant> = times.iter().map(|t| t.lock().unwrap()[0]).collect();
        for pair in accepted.windows(2) {
            let gap = pair[1].duration_since(pair[0]);
            assert!(
                gap >= Duration::from_millis(45) && gap < Duration::from_millis(150),
                "starts {gap:?} apart, want 50 ms"
            );
        }
        exp.stop().await;
    })
    .await;
}

#[tokio::test]
async fn starts_that_would_not_fit_the_spread_go_faster() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let (addrs, times) = listeners(6).await;
        // 1 start a second would take 5 s; a 2 s scrape (1.5 s budget) with
        // a 50 % spread starts all six within 0.75 s.
        let exp = Exporter::start(
            dir.path(),
            &format!(
                "pace:\n  starts_per_second: 1\n  spread: 50%\nservices:\n  s:\n    tcp: [{}]\n",
                tcp_list(&addrs)
            ),
        )
        .await;
        let asked = Instant::now();
        let (status, body) = get(exp.addr, "/metrics", Some("2")).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            asked.elapsed() < Duration::from_millis(1_500),
            "{:?}",
            asked.elapsed()
        );
        let accepted: Vec<Instant> = times.iter().map(|t| t.lock().unwrap()[0]).collect();
        let span = accepted[5].duration_since(accepted[0]);
        assert!(
            span >= Duration::from_millis(700) && span < Duration::from_millis(900),
            "six starts spread over {span:?}, want 750 ms"
        );
        assert!(!body.contains("reachability_failure_info{"), "{body}");
        exp.stop().await;
    })
    .await;
}

/// A scrape that joins a round and ends before some checks' turns reports
/// them like any check cut off: `generic_timeout_error` at the first stage
/// each would have entered (`connect` for an address, `resolve` for a
/// name). The round goes on for the scrape that started it.
#[tokio::test]
async fn a_check_whose_turn_comes_after_the_deadline_is_cut_at_its_first_stage() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let (addrs, _) = listeners(3).await;
        let pki = Pki::new();
        let dns = DnsServer::start(&pki).await;
        // ok.test resolves to 127.0.0.1 through the test's DNS server.
        let named = format!("ok.test:{}", addrs[2].port());
        let exp = Exporter::start(
            dir.path(),
            &format!(
                "pace:\n  starts_per_second: 1\nallowed_ranges: [127.0.0.0/8]\nresolvers:\n  system: {{ udp: \"{}\" }}\nservices:\n  s:\n    ip_family: ipv4\n    tcp: [{}, \"{named}\"]\n",
                dns.udp,
                tcp_list(&addrs[..2])
            ),
        )
        .await;
        // The first scrape's round: starts at 0, 1 s and 2 s.
        let long = tokio::spawn(get(exp.addr, "/metrics", Some("10")));
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A scrape of 1 s (0.5 s budget) joins it and leaves at 0.6 s.
        let (status, body) = get(exp.addr, "/metrics", Some("1")).await;
        assert_eq!(status, 200, "{body}");
        let first = addrs[0].to_string();
        let second = addrs[1].to_string();
        assert_eq!(
            sample(&body, "reachability_tcp_connect_success", &[("target", &first)]),
            Some(1.0),
            "{body}"
        );
        assert_eq!(
            sample(
                &body,
                "reachability_failure_info",
                &[("target", &second), ("stage", "connect"), ("reason", "generic_timeout_error")]
            ),
            Some(1.0),
            "{body}"
        );
        assert_eq!(
            sample(
                &body,
                "reachability_failure_info",
                &[("target", &named), ("stage", "resolve"), ("reason", "generic_timeout_error")]
            ),
            Some(1.0),
            "{body}"
        );
        // The round itself ran every check.
        let (status, body) = long.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            sample(&body, "reachability_tcp_connect_success", &[("target", &second)]),
            Some(1.0),
            "{body}"
        );
        assert_eq!(
            sample(&body, "reachability_tcp_connect_success", &[("target", &named)]),
            Some(1.0),
            "{body}"
        );
        exp.stop().await;
    })
    .await;
}

/// The round reports how long the exporter's own tasks waited to run: on
/// this idle test runtime, well under a few milliseconds, with the
/// quantiles in order.
#[tokio::test]
async fn the_round_reports_its_own_task_delay() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let (addrs, _) = listeners(3).await;
        let exp = Exporter::start(
            dir.path(),
            &format!(
                "pace:\n  starts_per_second: 50\nservices:\n  s:\n    tcp: [{}]\n",
                tcp_list(&addrs)
            ),
        )
        .await;
        let (_, body) = get(exp.addr, "/metrics", Some("10")).await;
        let q = |q: &str| {
            sample(
                &body,
                "reachability_exporter_task_delay_seconds",
                &[("quantile", q)],
            )
            .unwrap_or_else(|| panic!("no quantile {q}: {body}"))
        };
        let (p50, p99, max) = (q("0.5"), q("0.99"), q("1"));
        assert!(p50 <= p99 && p99 <= max, "{p50} {p99} {max}");
        assert!(max < 0.02, "max {max}");
        exp.stop().await;
    })
    .await;
}
