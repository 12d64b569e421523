//! Push mode (`remote_write:`): for vantage points nobody can scrape.
//!
//! Every `every`, a round runs as a scrape would run it (scheduled
//! services served from their latest round), and the series `/metrics`
//! would show, with `job` and `instance` added, are queued as one batch:
//! each series of a service stamped with the start of the round that
//! produced it, the exporter's own series with the time of the push. A
//! round already sent is not sent again (its samples would repeat a
//! timestamp). A second task sends the batches oldest first, one at a
//! time, so that every series' samples arrive in time order: 2xx takes the
//! batch off the queue; a network error, 429 or 5xx keeps it and tries
//! again after a backoff (1 s, doubling to 30 s); any other status drops
//! it (the receiver will not take it). The queue is bounded in samples and
//! age ([`queue::Queue`]); what its bounds drop is counted.

pub mod queue;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::{Host, RemoteWrite, url_target};
use crate::engine::Engine;
use crate::engine::catalogue::Catalogue;
use crate::metrics::{self, Format};
use queue::{Batch, End, Queue};

/// How often a task with nothing to do looks at the config again.
const TICK: Duration = Duration::from_secs(1);
/// The first wait after a failed send.
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The longest a send may take, connect to response.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The queue the two tasks share.
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the sender when a batch is queued.
    wake: Notify,
}

/// Pushes while the config has `remote_write:` (and waits while it has
/// not), until the process ends.
pub async fn run(engine: Arc<Engine>) {
    let shared = Shared {
        queue: Mutex::new(Queue::new(
            crate::config::DEFAULT_QUEUE_SAMPLES,
            crate::config::DEFAULT_QUEUE_AGE,
        )),
        wake: Notify::new(),
    };
    tokio::join!(produce(&engine, &shared), send(&engine, &shared));
}

fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    since.map_or(0, |d| d.as_millis() as i64)
}

/// Runs a round every `every` and queues its series.
async fn produce(engine: &Engine, shared: &Shared) {
    let mut next = Instant::now();
    let mut batches = 0u64;
    // The latest round sent of each service, by start (ms).
    let mut sent: HashMap<String, i64> = HashMap::new();
    loop {
        let cat = engine.catalogue();
        let Some(rw) = cat.config.remote_write.clone() else {
            tokio::time::sleep(TICK).await;
            continue;
        };
        let now = Instant::now();
        if now < next {
            tokio::time::sleep_until(next.min(now + TICK)).await;
            continue;
        }
        next += rw.every;
        if next < now {
            next = now + rw.every;
        }
        let scraped = match engine.scrape(None, Some(rw.every)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "push round not run");
                continue;
            }
        };
        let parts: Vec<metrics::Part<'_>> = scraped.served.iter().map(|s| s.part()).collect();
        let Some(first) = scraped.served.first() else {
            continue;
        };
        let regime = first.round.regime();
        let config = &first.round.catalogue.config;
        let text = metrics::render(
            config,
            &parts,
            (regime, &scraped.located),
            &scraped.own,
            Format::Prometheus,
        );
        // Each service's series carry its round's start, once.
        let mut stamp: HashMap<&str, Option<i64>> = HashMap::new();
        for s in &scraped.served {
            let since = s.round.started_at.duration_since(UNIX_EPOCH);
            let started = since.map_or(0, |d| d.as_millis() as i64);
            let cat = &s.round.catalogue;
            for &c in &s.round.checks {
                let service = cat.service_name(cat.entry(c).service);
                let new = sent.get(service).is_none_or(|&t| t < started);
                stamp.insert(service, new.then_some(started));
            }
        }
        let series = wire::series(
            &text,
            &[("job", &rw.job), ("instance", &rw.instance)],
            &stamp,
            now_ms(),
        );
        for (service, t) in &stamp {
            if let Some(t) = t {
                sent.insert(service.to_string(), *t);
            }
        }
        batches += 1;
        let batch = Batch {
            id: batches,
            made: Instant::now(),
            series,
        };
        let (dropped, queued) = {
            // Poisoning needs a panic while holding this lock; none can occur.
            let mut q = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let dropped = q.bound(rw.max_samples, rw.max_age, now) + q.push(batch, now);
            (dropped, q.samples())
        };
        if dropped > 0 {
            tracing::warn!(
                samples = dropped,
                "push queue full or too old: the oldest samples dropped"
            );
        }
        engine.push_stats().dropped(dropped as u64);
        engine.push_stats().queued(queued as u64);
        shared.wake.notify_one();
    }
}

/// What became of one send.
enum Sent {
    /// The receiver took it.
    Ok,
    /// Worth another try: a network error, 429 or 5xx.
    Retry(String),
    /// Refused for good (another 4xx, or a status we cannot handle).
    Refused(String),
}

/// Sends the queued batches, oldest first.
async fn send(engine: &Engine, shared: &Shared) {
    let mut backoff = MIN_BACKOFF;
    // The TLS configuration, built once per config.
    let mut tls: Option<(Arc<Catalogue>, Arc<rustls::ClientConfig>)> = None;
    loop {
        let cat = engine.catalogue();
        let Some(rw) = cat.config.remote_write.as_ref() else {
            tokio::time::sleep(TICK).await;
            continue;
        };
        let config = match &tls {
            Some((c, config)) if Arc::ptr_eq(c, &cat) => config.clone(),
            _ => {
                let client = rw
                    .client_cert
                    .as_ref()
                    .map(|(c, k)| (c.clone(), k.0.clone_key()));
                match crate::probe::tls::push_config(&rw.trust, client) {
                    Ok(c) => {
                        let c = Arc::new(c);
                        tls = Some((cat.clone(), c.clone()));
                        c
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "push: no TLS client configuration");
                        tokio::time::sleep(MAX_BACKOFF).await;
                        continue;
                    }
                }
            }
        };
        // Taken only now: a batch marked as being sent is settled by
        // `finish` below, whatever happens.
        let front = {
            // Poisoning needs a panic while holding this lock; none can occur.
            let mut q = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.sending().map(|b| (b.samples(), wire::body(&b.series)))
        };
        let Some((samples, body)) = front else {
            let _ = tokio::time::timeout(TICK, shared.wake.notified()).await;
            continue;
        };
        let sent = match tokio::time::timeout(REQUEST_TIMEOUT, post(&cat, rw, config, body)).await {
            Ok(sent) => sent,
            Err(_) => Sent::Retry(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs())),
        };
        let stats = engine.push_stats();
        let end = match sent {
            Sent::Ok => End::Taken,
            Sent::Refused(_) => End::Refused,
            Sent::Retry(_) => End::Retry,
        };
        let (settled, queued) = {
            // Poisoning needs a panic while holding this lock; none can occur.
            let mut q = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            (q.finish(end), q.samples())
        };
        stats.dropped(settled.dropped as u64);
        stats.queued(queued as u64);
        match sent {
            Sent::Ok => {
                let now = SystemTime::now().duration_since(UNIX_EPOCH);
                stats.sent(settled.sent as u64, now.map_or(0.0, |d| d.as_secs_f64()));
                if backoff > MIN_BACKOFF {
                    tracing::info!(url = %rw.url, queued, "push recovered: the receiver takes batches again");
                }
                backoff = MIN_BACKOFF;
            }
            Sent::Refused(why) => {
                tracing::warn!(url = %rw.url, samples, error = %why, "push refused: samples dropped");
            }
            Sent::Retry(why) => {
                tracing::warn!(url = %rw.url, samples, error = %why, retry_in = ?backoff, "push failed: will retry");
                stats.retried(samples as u64);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// One POST of `body` to the receiver.
async fn post(
    cat: &Catalogue,
    rw: &RemoteWrite,
    tls: Arc<rustls::ClientConfig>,
    body: Vec<u8>,
) -> Sent {
    let Some(target) = url_target(&rw.url) else {
        return Sent::Refused("the URL has no host".into());
    };
    let ip = match cat.resolve_receiver(&target.host).await {
        Ok(ip) => ip,
        Err(r) => return Sent::Retry(format!("resolving {}: {}", target.host, r.as_str())),
    };
    let addr = std::net::SocketAddr::new(ip, target.port);
    let tcp = match tokio::net::TcpStream::connect(addr).await {
        Ok(t) => t,
        Err(e) => return Sent::Retry(format!("connecting to {addr}: {e}")),
    };
    let stream: std::pin::Pin<Box<dyn Stream>> = if rw.url.scheme() == "https" {
        let name = match &target.host {
            Host::Name(n) => match ServerName::try_from(n.clone()) {
                Ok(n) => n,
                Err(_) => return Sent::Refused(format!("{n} is not a server name")),
            },
            Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
        };
        match tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
        {
            Ok(s) => Box::pin(s),
            Err(e) => return Sent::Retry(format!("TLS with {addr}: {e}")),
        }
    } else {
        Box::pin(tcp)
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    {
        Ok(pair) => pair,
        Err(e) => return Sent::Retry(format!("HTTP with {addr}: {e}")),
    };
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let sent = match request(rw, body) {
        Ok(req) => match sender.send_request(req).await {
            Ok(response) => answer(response).await,
            Err(e) => Sent::Retry(format!("HTTP with {addr}: {e}")),
        },
        Err(e) => Sent::Refused(format!("the request cannot be made: {e}")),
    };
    driver.abort();
    sent
}

/// A connection's byte stream, plain or TLS.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Stream for T {}

/// The POST of a remote-write body.
fn request(rw: &RemoteWrite, body: Vec<u8>) -> Result<hyper::Request<Full<Bytes>>, http::Error> {
    let authority = match rw.url.port() {
        Some(p) => format!("{}:{p}", rw.url.host_str().unwrap_or_default()),
        None => rw.url.host_str().unwrap_or_default().to_string(),
    };
    let path = match rw.url.query() {
        Some(q) => format!("{}?{q}", rw.url.path()),
        None => rw.url.path().to_string(),
    };
    let mut req = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(
            hyper::header::USER_AGENT,
            concat!("reachability_exporter/", env!("CARGO_PKG_VERSION")),
        )
        .header(hyper::header::CONTENT_TYPE, "application/x-protobuf")
        .header(hyper::header::CONTENT_ENCODING, "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .header(hyper::header::CONNECTION, "close");
    if let Some(a) = &rw.authorization {
        req = req.header(hyper::header::AUTHORIZATION, a.0.as_str());
    }
    for (k, v) in &rw.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    req.body(Full::new(Bytes::from(body)))
}

/// What the receiver's answer means for the batch; the start of its body
/// goes into the log (never into a label).
async fn answer(response: hyper::Response<hyper::body::Incoming>) -> Sent {
    let status = response.status();
    if status.is_success() {
        return Sent::Ok;
    }
    let body = match response.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let text = String::from_utf8_lossy(&body[..body.len().min(256)])
        .trim()
        .to_string();
    let why = format!("{status}: {text}");
    if status.as_u16() == 429 || status.is_server_error() {
        Sent::Retry(why)
    } else {
        Sent::Refused(why)
    }
}
