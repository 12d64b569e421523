//! The harness of the integration tests: in-process servers on loopback
//! that the exporter is pointed at, the exporter's own HTTP server, and
//! helpers to run checks and read the exposition. Nothing here talks to
//! anything but 127.0.0.0/8.
//!
//! - [`pki`]: the test CA and rustls server configs (no server).
//! - [`dns`]: hickory-server over UDP, TCP, DoT and DoH; a fixed-rcode
//!   server; a silent UDP socket. Each counts the queries it receives.
//! - [`tls`]: TLS servers (counting connections and resumed handshakes),
//!   servers that misbehave after the ClientHello, an SNI filter, a
//!   counting TCP relay, a closed port.
//! - [`quic`]: a quinn QUIC server; a Version Negotiation-only server; a
//!   relay dropping QUIC by the SNI of its decrypted Initial
//!   ([`quic_initial`] decrypts, [`client_hello`] reads the SNI and
//!   extensions, also for the interop suite's NFQUEUE filter).
//! - [`stun`]: STUN over UDP (with chosen misbehaviour) and TCP; a closed
//!   UDP port.
//! - [`http`]: an HTTP/1.1 server, plain or TLS, answering by path.
//! - Here: [`Counter`], [`within`], [`run_checks`], the [`Exporter`]
//!   harness, [`request`]/[`get`] to talk to it, [`eventually`] to poll it,
//!   [`wait_until`] to poll a condition, [`sample`] to read one value
//!   from its exposition, [`verdict`] one verdict, [`scrape`] one scrape.
//!
//! Every item is re-exported here, so tests `use support::*`.
#![allow(dead_code, unused_imports)]

pub mod client_hello;
pub mod dns;
pub mod http;
pub mod pki;
pub mod quic;
pub mod quic_initial;
pub mod stun;
pub mod tls;

pub use dns::*;
pub use http::*;
pub use pki::*;
pub use quic::*;
pub use stun::*;
pub use tls::*;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A count of what a test server saw (queries received, connections
/// accepted), shared by the server's tasks and the test.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    /// The count so far.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// Counts one more.
    pub fn add(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs `fut` under a time limit of `secs` seconds, so no test can hang;
/// returns its output, or panics when the limit passes.
pub async fn within<T>(secs: u64, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .expect("test exceeded its time limit")
}

/// Runs every check of config text `yaml` (as if read from `dir`, where
/// relative `ca_file`s are found) once, concurrently, under a 5 s deadline,
/// without the HTTP server; returns the outcomes in config order.
pub async fn run_checks(yaml: &str, dir: &Path) -> Vec<reachability_exporter::probe::Outcome> {
    use reachability_exporter::engine::catalogue::Catalogue;
    use reachability_exporter::probe::Progress;
    let config = reachability_exporter::config::Config::parse(yaml, &dir.join("config.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let cat = Catalogue::new(config).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let runs = cat.entries().map(|(id, _)| {
        let cat = &cat;
        async move { cat.run(id, deadline, &Progress::default()).await }
    });
    futures_util::future::join_all(runs).await
}

/// A child process that is killed when dropped, so that a test that
/// fails midway leaves no exporter running behind it.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The exporter's real HTTP server (`server::run`) on 127.0.0.1:0, serving
/// a config from a file, with the binary's default 0.5 s timeout offset.
/// It probes whatever the config names; [`Exporter::stop`] shuts it down.
pub struct Exporter {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The config file it serves (rewrite it and reload to change it).
    pub config_file: PathBuf,
    /// Its engine, for reloads.
    pub engine: Arc<reachability_exporter::engine::Engine>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Exporter {
    /// Writes `config` to `dir/config.yaml` and starts serving it; returns
    /// once it listens. Panics if the config does not load.
    pub async fn start(dir: &Path, config: &str) -> Exporter {
        Exporter::start_with(dir, config, Default::default()).await
    }

    /// [`Exporter::start`] with `web` settings (telemetry path, status
    /// page refresh, headers).
    pub async fn start_with(
        dir: &Path,
        config: &str,
        web: reachability_exporter::server::Web,
    ) -> Exporter {
        let config_file = dir.join("config.yaml");
        std::fs::write(&config_file, config).unwrap();
        let cfg = reachability_exporter::config::Config::load(&config_file).unwrap();
        let cat = reachability_exporter::engine::catalogue::Catalogue::new(cfg).unwrap();
        let engine = reachability_exporter::engine::Engine::new(
            cat,
            config_file.clone(),
            Duration::from_millis(500),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let e = engine.clone();
        let task = tokio::spawn(async move {
            reachability_exporter::server::run(vec![listener], e, &web, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Exporter {
            addr,
            config_file,
            engine,
            stop: Some(tx),
            task,
        }
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.unwrap();
    }
}

/// Sends one HTTP/1.1 request (`Connection: close`, extra `headers`, an
/// empty body) to `addr` and reads the answer to EOF; returns the status
/// code and the body. Panics if the answer is not HTTP.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let (status, _, body) = request_full(addr, method, path, headers).await;
    (status, body)
}

/// [`request`], also returning the response head (status line and
/// headers): (status, head, body).
pub async fn request_full(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    // Bodies are sent with Content-Length (axum), not chunked, for these routes.
    (status, head.to_string(), body.to_string())
}

/// GET `path` from `addr`, with `X-Prometheus-Scrape-Timeout-Seconds:
/// {scrape_timeout}` when one is given; returns the status and the body.
pub async fn get(addr: SocketAddr, path: &str, scrape_timeout: Option<&str>) -> (u16, String) {
    match scrape_timeout {
        Some(t) => {
            request(
                addr,
                "GET",
                path,
                &[("X-Prometheus-Scrape-Timeout-Seconds", t)],
            )
            .await
        }
        None => request(addr, "GET", path, &[]).await,
    }
}

/// The `kind` verdict of `service` about `target` in exposition `body`.
pub fn verdict(body: &str, service: &str, target: &str, kind: &str) -> Option<f64> {
    sample(
        body,
        "reachability_blocking_suspected",
        &[("service", service), ("target", target), ("kind", kind)],
    )
}

/// Serves `config` (from `dir/config.yaml`) and returns one `/metrics`
/// scrape with a 4 s timeout; the exporter is stopped after.
pub async fn scrape(config: &str, dir: &Path) -> String {
    let exporter = Exporter::start(dir, config).await;
    let (status, body) = get(exporter.addr, "/metrics", Some("4")).await;
    assert_eq!(status, 200, "{body}");
    exporter.stop().await;
    body
}

/// In exposition text `body`, the value of the sample of `name` whose
/// labels include all of `labels`; `None` if none does. Panics if more
/// than one sample matches.
pub fn sample(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in body.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (n, lbl) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        if n != name {
            continue;
        }
        if labels
            .iter()
            .all(|(k, v)| lbl.split(',').any(|p| p == format!("{k}=\"{v}\"")))
        {
            assert!(
                found.is_none(),
                "more than one sample of {name} matches {labels:?}"
            );
            found = Some(value.parse::<f64>().unwrap());
        }
    }
    found
}

/// Polls `path` on the exporter at `addr` (GET, no scrape timeout header)
/// every 50 ms until `pred` holds for the body; panics with `what` and the
/// last body after 5 s.
pub async fn eventually(addr: SocketAddr, path: &str, what: &str, pred: impl Fn(&str) -> bool) {
    let start = Instant::now();
    loop {
        let (_, body) = get(addr, path, None).await;
        if pred(&body) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{what}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `cond` every 10 ms until it holds (a test server's [`Counter`]
/// reaching a value, say); panics naming `what` after 5 s.
pub async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
