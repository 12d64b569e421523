//! Hostile input and load: odd query strings, config files that are huge,
//! binary or nested without end, the bound on checks in flight (503 past
//! it, never a crash), and the self-metrics that show it.

mod support;

use std::time::{Duration, Instant};

use reachability_exporter::config::Config;
use support::*;

#[tokio::test]
async fn malformed_and_oversized_requests_get_4xx() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let closed = closed_port().await;
        let yaml = format!(
            "probe_allow: [\"127.0.0.1\"]\nmodules:\n  tcp_any: {{ kind: tcp, timeout: 1s }}\nservices:\n  s:\n    tcp: [\"{closed}\"]\n"
        );
        let exp = Exporter::start(dir.path(), &yaml).await;
        let long = format!("/probe?service={}", "a".repeat(5000));
        for (path, want, says) in [
            (long.as_str(), 414, "at most 4096"),
            ("/probe?service=s&service=s", 400, "given more than once"),
            ("/probe?target=%ZZ%00&module=tcp_any", 400, "target for module"),
            ("/probe?target=127.0.0.1:1&module=tcp_any&x=1", 400, "unknown parameter"),
            ("/probe?%FF%FE=1", 400, "unknown parameter"),
            ("/probe?service=%E2%80%AE", 404, "unknown service"),
            ("/probe?&&&", 400, "missing parameter"),
        ] {
            let (status, body) = get(exp.addr, path, None).await;
            assert_eq!(status, want, "{}: {body}", &path[..path.len().min(60)]);
            assert!(body.contains(says), "{body}");
        }
        // A request line far past any limit: within 2 s the HTTP layer
        // answers 4xx or closes the connection (a hang fails), and the
        // server is still there.
        let huge = format!("/probe?target={}", "x".repeat(1 << 20));
        let head = refusal_of(exp.addr, format!("GET {huge} HTTP/1.1\r\nHost: x\r\n\r\n")).await;
        assert!(head.is_empty() || head.starts_with("HTTP/1.1 4"), "{head}");
        assert_eq!(get(exp.addr, "/-/healthy", None).await.0, 200);
        // Refusals are counted by status code.
        let (_, body) = get(exp.addr, "/metrics", Some("2")).await;
        let refused = |code: &str| {
            sample(&body, "reachability_exporter_requests_refused_total", &[("code", code)]).unwrap()
        };
        assert_eq!(refused("414"), 1.0, "{body}");
        assert_eq!(refused("400"), 5.0, "{body}");
        assert_eq!(refused("404"), 1.0, "{body}");
        exp.stop().await;
    })
    .await;
}

/// Sends `request` to `addr` and reads until the server answers with a
/// status line or closes the connection (EOF or reset); returns the start
/// of what came (empty when it closed without answering). Panics if
/// neither happens within 2 s.
async fn refusal_of(addr: std::net::SocketAddr, request: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let exchange = async {
        // The server may stop reading and close before all is written.
        let _ = s.write_all(request.as_bytes()).await;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            if got.windows(2).any(|w| w == b"\r\n") {
                break;
            }
        }
        got
    };
    let got = tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .expect("no answer and no close within 2 s: the server hangs on the request");
    String::from_utf8_lossy(&got[..got.len().min(40)]).to_string()
}

#[test]
fn config_files_that_are_huge_binary_or_deeply_nested() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    let err = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        Config::load(&path).unwrap_err().to_string()
    };
    let shown = path.display().to_string();
    // Huge: refused before it is read.
    let mut big = b"services:\n  a:\n    tcp: [\"example.com:443\"]\n".to_vec();
    big.resize(17 << 20, b'\n');
    assert_eq!(
        err(&big),
        format!("config file {shown} is 17825792 bytes: more than the 16 MiB a config may be")
    );
    // Binary.
    assert_eq!(
        err(b"services:\n\x00\xff\xfe\x01"),
        format!(
            "config file {shown} is not UTF-8 text (invalid byte at offset 11): is it the right file?"
        )
    );
    // Nested far deeper than any config: a clear error, not a stack overflow.
    for nested in [
        format!("services: {}{}", "[".repeat(100_000), "]".repeat(100_000)),
        format!(
            "services:\n{}",
            (0..5000)
                .map(|i| format!("{}a{i}:\n", " ".repeat(i)))
                .collect::<String>()
        ),
        format!("services: {}", "{a: ".repeat(10_000)),
    ] {
        let e = err(nested.as_bytes());
        assert!(e.starts_with(&format!("{shown}:")), "{e}");
        assert!(e.len() < 400, "{e}");
    }
    // max_concurrent_checks: at least the configured checks.
    let e = err(b"max_concurrent_checks: 1\nservices:\n  a:\n    tcp: [\"example.com:443\", \"example.com:80\"]\n");
    assert_eq!(
        e,
        format!(
            "{shown}:1:24: max_concurrent_checks: 1 is less than the 2 checks the services define: a scrape of all of them could never start"
        )
    );
    let e = err(b"max_concurrent_checks: 0\nservices:\n  a:\n    tcp: [\"example.com:443\"]\n");
    assert_eq!(
        e,
        format!("{shown}:1:24: max_concurrent_checks: must be at least 1")
    );
}

#[tokio::test]
async fn checks_in_flight_are_bounded_and_counted() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let (stall, stalled) = bad_tls_server_counted(Misbehaviour::Stall).await;
        // Two checks configured, room for three in flight.
        let yaml = format!(
            "max_concurrent_checks: 3\nprobe_allow: [\"127.0.0.1\"]\nmodules:\n  tls_any: {{ kind: tls, insecure: true, timeout: 2s }}\nservices:\n  s:\n    timeout: 2s\n    tls: [{{ target: \"{stall}\", sni: a.test, insecure: true }}, {{ target: \"{stall}\", sni: b.test, insecure: true }}]\n"
        );
        let exp = Exporter::start(dir.path(), &yaml).await;
        // A scrape holds two permits while its stalled checks run: both
        // have connected once the server has accepted two connections
        // (permits are taken before a check starts).
        let scrape = tokio::spawn(get(exp.addr, "/metrics", Some("3")));
        wait_until("the scrape's two checks to connect", || stalled.get() == 2).await;
        // One ad hoc probe fits; the next ones do not: 503 with a message,
        // at once.
        let first = tokio::spawn(get(
            exp.addr,
            Box::leak(format!("/probe?target={stall}&module=tls_any").into_boxed_str()),
            Some("3"),
        ));
        wait_until("the first probe to connect", || stalled.get() == 3).await;
        let t = Instant::now();
        let (status, body) = get(
            exp.addr,
            Box::leak(format!("/probe?target={stall}&module=tls_any").into_boxed_str()),
            Some("3"),
        )
        .await;
        assert_eq!(status, 503, "{body}");
        assert!(t.elapsed() < Duration::from_millis(500));
        assert_eq!(
            body.trim(),
            "too busy: 3 checks are in flight and this needs 1 more, over max_concurrent_checks (3); retry later"
        );
        // /probe?service= needs a round of its own: refused too.
        let (status, _) = get(exp.addr, "/probe?service=s", Some("3")).await;
        assert_eq!(status, 503);
        let (status, _) = scrape.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(first.await.unwrap().0, 200);
        // Room again; the self-metrics tell the story.
        let (status, body) = get(exp.addr, "/metrics", Some("3")).await;
        assert_eq!(status, 200);
        let m = |name: &str, labels: &[(&str, &str)]| sample(&body, name, labels);
        assert_eq!(m("reachability_exporter_requests_refused_total", &[("code", "503")]), Some(2.0), "{body}");
        // Both rounds' two checks and the ad hoc probe ended, each cut by
        // its 2 s timeout (a scrape renders once its round is done).
        assert_eq!(m("reachability_exporter_checks_total", &[("check", "tls"), ("result", "failed")]), Some(5.0), "{body}");
        assert_eq!(m("reachability_exporter_checks_cut_total", &[("check", "tls")]), Some(5.0), "{body}");
        assert_eq!(m("reachability_exporter_checks_total", &[("check", "tls"), ("result", "ok")]), Some(0.0));
        assert_eq!(m("reachability_exporter_checks_total", &[("check", "tcp"), ("result", "failed")]), Some(0.0));
        assert_eq!(m("reachability_exporter_checks_in_flight", &[]), Some(0.0), "{body}");
        exp.stop().await;
    })
    .await;
}
