//! Push mode (`remote_write:`) against an in-process receiver that decodes
//! what it gets as Prometheus does (snappy block format, then the
//! protobuf `WriteRequest`) and answers as told: the headers and labels
//! sent, each round's timestamps, retries on 503 that lose and repeat
//! nothing, a 400 that is not retried, and a bounded queue that counts
//! what it drops. The real Prometheus receiver is in the interop suite.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use prost::Message as _;
use reachability_exporter::push::wire::WriteRequest;
use support::*;

/// One request the receiver got: its headers and what it decoded.
#[derive(Debug, Clone)]
struct Got {
    headers: HeaderMap,
    request: WriteRequest,
}

/// A remote-write receiver on 127.0.0.1:0 answering each request with the
/// next status of `answers` (then 204), keeping every request.
async fn receiver(answers: Vec<u16>) -> (SocketAddr, Arc<Mutex<Vec<(u16, Got)>>>) {
    let got: Arc<Mutex<Vec<(u16, Got)>>> = Arc::default();
    let answers = Arc::new(Mutex::new(answers.into_iter()));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/api/v1/write",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (got, answers) = (g.clone(), answers.clone());
            async move {
                let raw = snap::raw::Decoder::new()
                    .decompress_vec(&body)
                    .expect("snappy");
                let request = WriteRequest::decode(&raw[..]).expect("a WriteRequest");
                let status = answers.lock().unwrap().next().unwrap_or(204);
                got.lock().unwrap().push((status, Got { headers, request }));
                (StatusCode::from_u16(status).unwrap(), "as told")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, got)
}

/// The value of label `name` of a series.
fn label<'a>(s: &'a reachability_exporter::push::wire::TimeSeries, name: &str) -> Option<&'a str> {
    s.labels
        .iter()
        .find(|l| l.name == name)
        .map(|l| l.value.as_str())
}

/// When the round of a push started: its TCP check's timestamp.
fn stamp(g: &Got) -> i64 {
    let tcp = |s: &&reachability_exporter::push::wire::TimeSeries| {
        label(s, "__name__") == Some("reachability_tcp_connect_success")
    };
    g.request
        .timeseries
        .iter()
        .find(tcp)
        .expect("a TCP check's series")
        .samples[0]
        .timestamp
}

/// Waits until the receiver has `n` requests.
async fn wait_for_requests(got: &Mutex<Vec<(u16, Got)>>, n: usize) {
    let start = Instant::now();
    while got.lock().unwrap().len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "fewer than {n} pushes arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn pushes_carry_the_series_labels_and_round_timestamps() {
    within(60, async {
        let dir = tempfile::tempdir().unwrap();
        let (recv, got) = receiver(Vec::new()).await;
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open_addr = open.local_addr().unwrap();
        let config = format!(
            "labels: {{ country: XX }}\nremote_write:\n  url: \"http://{recv}/api/v1/write\"\n  every: 1s\n  job: lab\n  instance: vp-1\n  basic_auth: {{ username: u, password: p }}\n  headers: {{ X-Scope-OrgID: tenant-1 }}\nservices:\n  s:\n    tcp: [\"{open_addr}\"]\n"
        );
        let exporter = Exporter::start(dir.path(), &config).await;
        wait_for_requests(&got, 3).await;
        let pushes: Vec<Got> = got.lock().unwrap().iter().map(|(_, g)| g.clone()).collect();
        let h = &pushes[0].headers;
        assert_eq!(h["content-type"], "application/x-protobuf");
        assert_eq!(h["content-encoding"], "snappy");
        assert_eq!(h["x-prometheus-remote-write-version"], "0.1.0");
        assert_eq!(h["authorization"], "Basic dTpw");
        assert_eq!(h["x-scope-orgid"], "tenant-1");
        let mut stamps = Vec::new();
        for p in &pushes {
            let tcp: Vec<_> = p
                .request
                .timeseries
                .iter()
                .filter(|s| label(s, "__name__") == Some("reachability_tcp_connect_success"))
                .collect();
            assert_eq!(tcp.len(), 1, "{:?}", p.request);
            let s = tcp[0];
            let names: Vec<&str> = s.labels.iter().map(|l| l.name.as_str()).collect();
            assert_eq!(names, ["__name__", "country", "instance", "job", "service", "target"]);
            assert_eq!(label(s, "job"), Some("lab"));
            assert_eq!(label(s, "instance"), Some("vp-1"));
            assert_eq!(label(s, "country"), Some("XX"));
            assert_eq!(s.samples.len(), 1);
            assert_eq!(s.samples[0].value, 1.0);
            stamps.push(s.samples[0].timestamp);
            // The exporter's own series come too.
            assert!(p.request.timeseries.iter().any(|s| label(s, "__name__") == Some("reachability_exporter_build_info")));
        }
        // One round a second, each stamped with its start.
        for w in stamps.windows(2) {
            assert!((900..1500).contains(&(w[1] - w[0])), "{stamps:?}");
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        assert!((now - 10_000..now).contains(&stamps[0]), "{stamps:?} vs {now}");
        // Its own figures, on /metrics.
        let (_, body) = get(exporter.addr, "/metrics", Some("2")).await;
        let sent = sample(&body, "reachability_exporter_remote_write_samples_total", &[("result", "sent")]);
        assert!(sent.unwrap() > 0.0, "{body}");
        assert_eq!(sample(&body, "reachability_exporter_remote_write_samples_total", &[("result", "dropped")]), Some(0.0));
        assert_eq!(sample(&body, "reachability_exporter_remote_write_samples_total", &[("result", "retried")]), Some(0.0));
        let last = sample(&body, "reachability_exporter_remote_write_last_success_timestamp_seconds", &[]).unwrap();
        assert!((now as f64 / 1000.0 - 10.0..now as f64 / 1000.0 + 10.0).contains(&last), "{last}");
        exporter.stop().await;
    })
    .await;
}

/// A receiver that answers 503 three times and then takes everything:
/// every round arrives, in order, none twice; the failed attempts are
/// counted as retried. A 400 drops its batch without retrying.
#[tokio::test]
async fn failed_pushes_are_retried_in_order_and_refused_ones_dropped() {
    within(90, async {
        let dir = tempfile::tempdir().unwrap();
        let (recv, got) = receiver(vec![503, 503, 503, 400]).await;
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = format!(
            "remote_write: {{ url: \"http://{recv}/api/v1/write\", every: 1s }}\nservices:\n  s:\n    tcp: [\"{}\"]\n",
            open.local_addr().unwrap()
        );
        let exporter = Exporter::start(dir.path(), &config).await;
        // 1 + 2 + 4 s of backoff: meanwhile rounds queue up.
        wait_for_requests(&got, 9).await;
        let all = got.lock().unwrap().clone();
        // The first batch was tried three times, then refused for good.
        let first = stamp(&all[0].1);
        for (status, g) in &all[..4] {
            assert_eq!(stamp(g), first, "{status}");
        }
        // Then every batch once, in time order: none lost between them
        // (one round a second), none twice.
        let accepted: Vec<i64> = all[4..].iter().map(|(_, g)| stamp(g)).collect();
        for w in accepted.windows(2) {
            assert!((900..1500).contains(&(w[1] - w[0])), "{accepted:?}");
        }
        assert!(accepted[0] - first < 1500, "the round after the refused one: {first} then {accepted:?}");
        let per_batch = all[0].1.request.timeseries.len() as f64;
        let (_, body) = get(exporter.addr, "/metrics", Some("2")).await;
        let count = |r: &str| sample(&body, "reachability_exporter_remote_write_samples_total", &[("result", r)]).unwrap();
        assert_eq!(count("retried"), 3.0 * per_batch, "{body}");
        assert_eq!(count("dropped"), per_batch, "{body}");
        assert!(count("sent") >= 5.0 * per_batch, "{body}");
        exporter.stop().await;
    })
    .await;
}

/// While the receiver is down, a queue bounded to two batches keeps the
/// newest two; what it dropped is counted, and equals what never arrived.
#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_counts_them() {
    within(90, async {
        let dir = tempfile::tempdir().unwrap();
        let (recv, got) = receiver(vec![503; 4]).await;
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // A DNS check that waits 100 ms for a silent server makes every
        // round long enough for the task-delay samples: each batch then
        // has the same series.
        let (quiet, _) = silent_udp().await;
        let template = |max: usize| {
            format!(
                "remote_write: {{ url: \"http://{recv}/api/v1/write\", every: 1s, queue: {{ max_samples: {max} }} }}\nresolvers:\n  quiet: {{ udp: \"{quiet}\" }}\nservices:\n  s:\n    timeout: 100ms\n    dns: {{ names: [a.test], resolvers: [quiet] }}\n    tcp: [\"{}\"]\n",
                open.local_addr().unwrap()
            )
        };
        // Learn a batch's size from a first exporter, then bound the queue
        // to two batches (the own series' count does not change).
        let exporter = Exporter::start(dir.path(), &template(1_000_000)).await;
        wait_for_requests(&got, 1).await;
        exporter.stop().await;
        let per_batch = got.lock().unwrap()[0].1.request.timeseries.len();
        got.lock().unwrap().clear();
        let exporter = Exporter::start(dir.path(), &template(2 * per_batch + per_batch / 2)).await;
        wait_for_requests(&got, 6).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (_, body) = get(exporter.addr, "/metrics", Some("2")).await;
        exporter.stop().await;
        let count = |r: &str| sample(&body, "reachability_exporter_remote_write_samples_total", &[("result", r)]).unwrap();
        let all = got.lock().unwrap().clone();
        let accepted: HashMap<i64, usize> = all
            .iter()
            .filter(|(s, _)| *s == 204)
            .map(|(_, g)| (stamp(g), g.request.timeseries.len()))
            .collect();
        // Rounds were made once a second from the first tried to the last
        // accepted; those not accepted were dropped, and counted.
        assert!(accepted.values().all(|&n| n == per_batch), "{accepted:?}");
        let first = all.iter().map(|(_, g)| stamp(g)).min().unwrap();
        let last = *accepted.keys().max().unwrap();
        let made = ((last - first + 500) / 1000 + 1) as usize;
        let missing = made - accepted.len();
        assert!(count("dropped") > 0.0, "{body}");
        assert_eq!(count("dropped"), (missing * per_batch) as f64, "made {made}, accepted {accepted:?}");
    })
    .await;
}
