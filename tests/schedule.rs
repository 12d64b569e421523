//! Services with `every:`: their checks run on the background scheduler,
//! not on each scrape, with their whole timeouts whatever the scrape's;
//! scrapes serve the latest round that ended, with when it started
//! (`reachability_round_timestamp_seconds`), and never wait for one. A
//! reload that drops `every:` puts the service back on the scrapes.

mod support;

use std::time::{Duration, Instant};

use support::*;

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test]
async fn a_scheduled_service_runs_on_its_timer_and_scrapes_serve_its_latest_round() {
    within(60, async {
        let dir = tempfile::tempdir().unwrap();
        // A download of 64 KiB at about 50 KB/s: 1.3 s, longer than the
        // scrapes' 0.5 s budget below.
        let (slow, slow_counts) = http_server_counted(None).await;
        let (fast, fast_counts) = http_server_counted(None).await;
        let config = |every: &str| {
            format!(
                "services:\n  slow:\n{every}    download: [{{ url: \"http://{slow}/trickle\", timeout: 5s }}]\n  fast:\n    http: [\"http://{fast}/ok\"]\n"
            )
        };
        let exporter = Exporter::start(dir.path(), &config("    every: 2s\n")).await;
        let bytes = |body: &str| sample(body, "reachability_download_bytes", &[("service", "slow")]);
        let round = |body: &str| sample(body, "reachability_round_timestamp_seconds", &[("service", "slow")]);

        // The first round is running: a scrape of the service alone is
        // refused, one of everything serves the other services.
        let (status, body) = get(exporter.addr, "/probe?service=slow", Some("1")).await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("service \"slow\" runs every 2s: its first round has not ended yet"), "{body}");
        let (status, body) = get(exporter.addr, "/metrics", Some("1")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(sample(&body, "reachability_http_success", &[("service", "fast")]), Some(1.0), "{body}");
        assert_eq!(bytes(&body), None, "{body}");
        assert_eq!(round(&body), None, "{body}");

        // The status page lists it as running, its checks too.
        let (_, page) = get(exporter.addr, "/", None).await;
        assert!(page.contains("<h2 id=\"service-slow\">slow · <span class=\"running\">running</span></h2>"), "{page}");

        // Once it ended, scrapes with a 0.5 s budget serve the whole
        // download, without waiting for it.
        let mut body = String::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while bytes(&body).is_none() {
            assert!(Instant::now() < deadline, "no scheduled round ended: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            body = get(exporter.addr, "/metrics", Some("1")).await.1;
        }
        assert_eq!(bytes(&body), Some(65536.0), "{body}");
        assert_eq!(sample(&body, "reachability_service_up", &[("service", "slow")]), Some(1.0));
        let first = round(&body).expect("the round's start");
        assert!((now() - 10.0..now()).contains(&first), "{first}");
        let took = sample(&body, "reachability_exporter_scrape_duration_seconds", &[]).unwrap();
        assert!(took < 0.5, "the scrape waited {took} s");
        // The status page shows that round, with its age.
        let (_, page) = get(exporter.addr, "/", None).await;
        let heading = "<h2 id=\"service-slow\">slow · <span class=\"up\">up</span> <small>checked ";
        assert!(page.contains(heading), "{page}");
        // Only services without `every:` carry no round timestamp.
        assert_eq!(sample(&body, "reachability_round_timestamp_seconds", &[("service", "fast")]), None);

        // Scrapes do not start the service's checks: each scrape connects
        // to the fast server; the slow one saw one connection per round.
        let (fast_before, slow_before) = (fast_counts.accepted.get(), slow_counts.accepted.get());
        let (status, alone) = get(exporter.addr, "/probe?service=slow", Some("1")).await;
        assert_eq!(status, 200, "{alone}");
        assert_eq!(bytes(&alone), Some(65536.0), "{alone}");
        assert_eq!(sample(&alone, "reachability_http_success", &[("service", "fast")]), None);
        for _ in 0..3 {
            get(exporter.addr, "/metrics", Some("1")).await;
        }
        assert_eq!(fast_counts.accepted.get(), fast_before + 3);
        let rounds_so_far = slow_counts.accepted.get();
        assert!(rounds_so_far <= slow_before + 1, "{slow_before} → {rounds_so_far}");

        // The next round starts `every` after the first started.
        let mut next = first;
        let deadline = Instant::now() + Duration::from_secs(10);
        while next == first {
            assert!(Instant::now() < deadline, "no second round ended: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            body = get(exporter.addr, "/metrics", Some("1")).await.1;
            next = round(&body).expect("a round is served");
        }
        let gap = next - first;
        assert!((1.95..3.0).contains(&gap), "rounds {gap} s apart");
        assert_eq!(bytes(&body), Some(65536.0), "{body}");

        // A reload that drops `every:` puts it back on the scrapes: a
        // 0.5 s budget now cuts the download, and no round is timestamped.
        std::fs::write(&exporter.config_file, config("")).unwrap();
        exporter.engine.reload().unwrap();
        let (_, body) = get(exporter.addr, "/metrics", Some("1")).await;
        assert_eq!(round(&body), None, "{body}");
        let cut = bytes(&body).expect("the download ran");
        assert!(cut < 65536.0, "{body}");
        exporter.stop().await;
    })
    .await;
}
