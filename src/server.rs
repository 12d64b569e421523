//! The HTTP side: routes, the scrape deadline, shared rounds and reloads.
//!
//! Handlers only wire requests to the [`Engine`]: it holds the current
//! [`Catalogue`] (swapped atomically on reload), starts rounds, and lets
//! scrapes that arrive while a round of the same scope is running share it.
//!
//! | route | what |
//! |---|---|
//! | `GET /metrics` | every check |
//! | `GET /probe?service=NAME` | one service's checks |
//! | `GET /-/healthy`, `GET /-/ready` | liveness, readiness |
//! | `POST /-/reload` | reload the config (also on SIGHUP) |

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::config::Config;
use crate::metrics::{self, Format, SelfStats};
use crate::probe::{Busy, Catalogue};
use crate::round::Round;
use crate::stats::Stats;

/// The deadline used when a scrape does not send
/// `X-Prometheus-Scrape-Timeout-Seconds` (Prometheus' default scrape timeout),
/// or sends one that is not a positive number.
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest scrape timeout honoured: a larger (or infinite) announced
/// timeout is capped to it.
pub const MAX_SCRAPE_TIMEOUT: Duration = Duration::from_secs(300);

/// The longest `/probe` query string accepted (414 beyond).
pub const MAX_QUERY_BYTES: usize = 4096;

const TIMEOUT_HEADER: &str = "x-prometheus-scrape-timeout-seconds";

/// Which checks a round runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scope {
    All,
    Service(usize),
}

/// State shared by all requests.
pub struct Engine {
    catalogue: ArcSwap<Catalogue>,
    config_file: PathBuf,
    timeout_offset: Duration,
    inflight: Mutex<HashMap<Scope, Arc<Round>>>,
    rounds: AtomicU64,
    scrapes: AtomicU64,
    reload_ok: AtomicBool,
    reload_ts: AtomicU64,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config_file", &self.config_file)
            .finish()
    }
}

/// A config reload that failed; the running config is kept.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Clients could not be built from it.
    #[error(transparent)]
    Build(#[from] crate::probe::BuildError),
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Engine {
    /// An engine serving `catalogue`, which was loaded from `config_file`
    /// (read again on reload). `timeout_offset` is subtracted from the
    /// scrape timeout Prometheus announces.
    pub fn new(
        catalogue: Catalogue,
        config_file: PathBuf,
        timeout_offset: Duration,
    ) -> Arc<Engine> {
        Arc::new(Engine {
            catalogue: ArcSwap::from_pointee(catalogue),
            config_file,
            timeout_offset,
            inflight: Mutex::new(HashMap::new()),
            rounds: AtomicU64::new(0),
            scrapes: AtomicU64::new(0),
            reload_ok: AtomicBool::new(true),
            reload_ts: AtomicU64::new(now_epoch().to_bits()),
            stats: Arc::new(Stats::default()),
        })
    }

    /// Reads the config file again; on success the new checks serve the next
    /// round, on failure the running config stays and the error is returned.
    pub fn reload(&self) -> Result<(), ReloadError> {
        let result = Config::load(&self.config_file)
            .map_err(ReloadError::from)
            .and_then(|c| Catalogue::new(c).map_err(ReloadError::from));
        match result {
            Ok(cat) => {
                self.catalogue.store(Arc::new(cat));
                self.reload_ok.store(true, Ordering::Relaxed);
                self.reload_ts
                    .store(now_epoch().to_bits(), Ordering::Relaxed);
                tracing::info!(file = %self.config_file.display(), "config reloaded");
                Ok(())
            }
            Err(e) => {
                self.reload_ok.store(false, Ordering::Relaxed);
                tracing::error!(error = %e, "config reload failed; keeping the running config");
                Err(e)
            }
        }
    }

    /// The effective deadline for a scrape announcing `announced` seconds.
    fn budget(&self, announced: Option<Duration>) -> Duration {
        let t = announced.unwrap_or(DEFAULT_SCRAPE_TIMEOUT);
        // Leave the offset for the response; never less than half the budget.
        t.saturating_sub(self.timeout_offset).max(t / 2)
    }

    /// The round for `scope` that `keep` accepts, else a new one running
    /// until `deadline` — if `max_concurrent_checks` leaves room for it.
    fn round_for(
        &self,
        scope: Scope,
        deadline: Instant,
        keep: impl Fn(&Round, &Catalogue) -> bool,
    ) -> Result<Arc<Round>, Busy> {
        // Poisoning needs a panic while holding this lock; none can occur.
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        let cat = self.catalogue.load_full();
        match inflight.get(&scope) {
            Some(r) if keep(r, &cat) => Ok(r.clone()),
            _ => {
                let checks: Vec<usize> = match scope {
                    Scope::All => (0..cat.entries.len()).collect(),
                    Scope::Service(s) => cat.service_entries[s].clone().collect(),
                };
                let permit = cat.reserve(checks.len())?;
                let r = Round::start(cat, checks, deadline, permit, self.stats.clone());
                self.rounds.fetch_add(1, Ordering::Relaxed);
                inflight.insert(scope, r.clone());
                Ok(r)
            }
        }
    }

    /// An ad hoc probe of `target` with module `module`, answered from a
    /// fresh registry: 400 for an unknown module or a malformed target, 403
    /// for a target that `probe_allow` does not admit.
    async fn probe_target(
        &self,
        target: &str,
        module: &str,
        announced: Option<Duration>,
        format: Format,
    ) -> Result<String, (StatusCode, String)> {
        let start = Instant::now();
        let cat = self.catalogue.load_full();
        let (index, m) = cat
            .config
            .modules
            .iter()
            .enumerate()
            .find(|(_, m)| m.name == module)
            .ok_or_else(|| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("unknown module {module:?}"),
                )
            })?;
        let check = m.check_for(target).map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("target for module {module:?}: {e}"),
            )
        })?;
        if !cat.config.probe_allowed(&check) {
            return Err((
                StatusCode::FORBIDDEN,
                format!("target {target:?} is not allowed by probe_allow"),
            ));
        }
        let permit = cat
            .reserve(1)
            .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        self.scrapes.fetch_add(1, Ordering::Relaxed);
        let deadline = start + self.budget(announced);
        let progress = crate::probe::Progress::default();
        let outcome = cat.run_module(index, &check, deadline, &progress).await;
        drop(permit);
        self.stats
            .check_ended(check.kind(), outcome.is_ok(), progress.was_cut());
        Ok(metrics::render_probe(
            &cat.config,
            &m.name,
            &check,
            &outcome,
            start.elapsed().as_secs_f64(),
            format,
        ))
    }

    /// Runs (or joins) a round for `scope` and renders it.
    async fn scrape(
        &self,
        scope: Scope,
        announced: Option<Duration>,
        format: Format,
    ) -> Result<String, Busy> {
        let start = Instant::now();
        let deadline = start + self.budget(announced);
        self.scrapes.fetch_add(1, Ordering::Relaxed);
        // Join a round still running; within min_interval of the last
        // round's start, serve that round (unless the config changed).
        let round = self.round_for(scope, deadline, |r, cat| {
            !r.is_done()
                || (std::ptr::eq(Arc::as_ptr(&r.catalogue), cat)
                    && r.started.elapsed() < cat.config.min_interval)
        })?;
        round.wait(deadline).await;
        let outcomes = round.snapshot();
        let own = SelfStats {
            scrape_duration_seconds: start.elapsed().as_secs_f64(),
            rounds_total: self.rounds.load(Ordering::Relaxed),
            scrapes_total: self.scrapes.load(Ordering::Relaxed),
            reload_ok: self.reload_ok.load(Ordering::Relaxed),
            reload_success_timestamp: f64::from_bits(self.reload_ts.load(Ordering::Relaxed)),
            process: crate::process::read(),
            checks: self.stats.checks(),
            refused: array_of(self.stats.refusals()),
            in_flight: round.catalogue.in_flight(),
        };
        let verdicts = round.verdicts(&outcomes);
        Ok(metrics::render(
            &round.catalogue,
            &round.checks,
            &outcomes,
            &verdicts,
            &own,
            format,
        ))
    }
}

/// The first N items of `it` as an array (the rest default).
fn array_of<T: Default + Copy, const N: usize>(it: impl Iterator<Item = T>) -> [T; N] {
    let mut out = [T::default(); N];
    for (slot, v) in out.iter_mut().zip(it) {
        *slot = v;
    }
    out
}

/// Reloads the config whenever the file's content changes, checking every
/// `every`. Polling the content (not inotify) also sees a Kubernetes
/// ConfigMap update, which swaps a symlink rather than writing the file. A
/// change that fails to load is not retried until the file changes again.
pub async fn watch_config(engine: Arc<Engine>, every: Duration) {
    let read = |e: &Engine| std::fs::read(&e.config_file).ok();
    let mut seen = read(&engine);
    loop {
        tokio::time::sleep(every).await;
        let now = read(&engine);
        if now.is_some() && now != seen {
            seen = now;
            let e = engine.clone();
            // The outcome is logged and exported by reload itself.
            let _ = tokio::task::spawn_blocking(move || e.reload()).await;
        }
    }
}

/// How the exporter's own endpoints are served (`--web.*` flags).
#[derive(Debug, Clone)]
pub struct Web {
    /// Where the metrics are served (default `/metrics`).
    pub telemetry_path: String,
    /// Basic auth for every route but the health checks.
    pub auth: Option<Arc<crate::web::Auth>>,
    /// TLS for the server.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for Web {
    fn default() -> Web {
        Web {
            telemetry_path: "/metrics".into(),
            auth: None,
            tls: None,
        }
    }
}

/// The routes, for [`run`] and for tests. `/-/healthy` and `/-/ready` stay
/// open when basic auth guards the rest (Kubernetes probes carry no
/// credentials).
pub fn router(engine: Arc<Engine>, web: &Web) -> Router {
    let mut guarded = Router::new()
        .route("/", get(index))
        .route("/status.css", get(stylesheet))
        .route(&web.telemetry_path, get(metrics_handler))
        .route("/probe", get(probe_handler))
        .route("/-/reload", post(reload_handler));
    if let Some(auth) = &web.auth {
        guarded = guarded.route_layer(axum::middleware::from_fn_with_state(
            auth.clone(),
            crate::web::basic_auth,
        ));
    }
    Router::new()
        .route("/-/healthy", get(|| async { "OK\n" }))
        .route("/-/ready", get(|| async { "OK\n" }))
        .merge(guarded)
        .layer(axum::middleware::from_fn_with_state(
            engine.clone(),
            count_refused,
        ))
        .with_state(engine)
}

/// Counts the requests answered with a refusal (`reachability_exporter_requests_refused_total`).
async fn count_refused(
    State(engine): State<Arc<Engine>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let res = next.run(req).await;
    engine.stats.refused(res.status().as_u16());
    res
}

/// Serves `engine` on `listener` (over TLS when `web` says so) until
/// `shutdown` completes; in-flight requests are finished first.
pub async fn run(
    listener: TcpListener,
    engine: Arc<Engine>,
    web: &Web,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(engine, web);
    match &web.tls {
        Some(cfg) => {
            let tls = crate::web::TlsListener::new(listener, cfg.clone())?;
            axum::serve(tls, app).with_graceful_shutdown(shutdown).await
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// A request error: status and a one-line message.
fn bad(status: StatusCode, msg: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg + "\n",
    )
        .into_response()
}

/// The scrape timeout Prometheus announced, if usable: a positive number
/// of seconds, capped at [`MAX_SCRAPE_TIMEOUT`]. Anything else (empty,
/// negative, zero, `NaN`, not a number) is ignored: the scrape gets
/// [`DEFAULT_SCRAPE_TIMEOUT`], as if no header had come.
fn announced_timeout(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(TIMEOUT_HEADER)?;
    let secs = v
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| *s > 0.0);
    match secs {
        // `min` also caps +inf (1e309 parses as infinity).
        Some(s) => Some(Duration::from_secs_f64(
            s.min(MAX_SCRAPE_TIMEOUT.as_secs_f64()),
        )),
        None => {
            tracing::debug!(value = ?v, "ignoring a malformed scrape timeout header");
            None
        }
    }
}

fn respond(format: Format, body: String) -> Response {
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

fn format_of(headers: &HeaderMap) -> Format {
    Format::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()))
}

async fn metrics_handler(State(engine): State<Arc<Engine>>, headers: HeaderMap) -> Response {
    let format = format_of(&headers);
    match engine
        .scrape(Scope::All, announced_timeout(&headers), format)
        .await
    {
        Ok(body) => respond(format, body),
        Err(busy) => bad(StatusCode::SERVICE_UNAVAILABLE, busy.to_string()),
    }
}

async fn probe_handler(
    State(engine): State<Arc<Engine>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let announced = announced_timeout(&headers);
    let query = query.unwrap_or_default();
    if query.len() > MAX_QUERY_BYTES {
        return bad(
            StatusCode::URI_TOO_LONG,
            format!(
                "the query string is {} bytes; at most {MAX_QUERY_BYTES} are accepted",
                query.len()
            ),
        );
    }
    let mut params: HashMap<String, String> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if params.insert(k.to_string(), v.to_string()).is_some() {
            return bad(
                StatusCode::BAD_REQUEST,
                format!("parameter {k:?} is given more than once"),
            );
        }
    }
    if let Some(unknown) = params
        .keys()
        .find(|k| !matches!(k.as_str(), "service" | "target" | "module"))
    {
        return bad(
            StatusCode::BAD_REQUEST,
            format!(
                "unknown parameter {unknown:?}: /probe takes service=NAME, or target=…&module=NAME"
            ),
        );
    }
    let format = format_of(&headers);
    match (
        params.get("service"),
        params.get("target"),
        params.get("module"),
    ) {
        (Some(name), None, None) => {
            let index = engine
                .catalogue
                .load()
                .config
                .services
                .iter()
                .position(|s| &s.name == name);
            match index {
                Some(i) => match engine.scrape(Scope::Service(i), announced, format).await {
                    Ok(body) => respond(format, body),
                    Err(busy) => bad(StatusCode::SERVICE_UNAVAILABLE, busy.to_string()),
                },
                // The name is echoed escaped, in the body only (never in a label).
                None => bad(StatusCode::NOT_FOUND, format!("unknown service {name:?}")),
            }
        }
        (None, Some(target), Some(module)) => {
            match engine.probe_target(target, module, announced, format).await {
                Ok(body) => respond(format, body),
                Err((status, msg)) => bad(status, msg),
            }
        }
        (None, None, None) => bad(
            StatusCode::BAD_REQUEST,
            "missing parameter: service=NAME, or target=…&module=NAME".into(),
        ),
        _ => bad(
            StatusCode::BAD_REQUEST,
            "/probe takes either service=NAME, or both target= and module=".into(),
        ),
    }
}

async fn reload_handler(State(engine): State<Arc<Engine>>) -> Response {
    match tokio::task::spawn_blocking(move || engine.reload()).await {
        Ok(Ok(())) => (StatusCode::OK, "config reloaded\n").into_response(),
        Ok(Err(e)) => bad(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reload failed, running config kept: {e}"),
        ),
        Err(_) => bad(
            StatusCode::INTERNAL_SERVER_ERROR,
            "reload task failed".into(),
        ),
    }
}

/// The status page: the latest round of every check (starting one when there
/// is none yet). Viewing it never starts more probing than that.
async fn index(State(engine): State<Arc<Engine>>) -> Response {
    let deadline = Instant::now() + engine.budget(None);
    let round = match engine.round_for(Scope::All, deadline, |_, _| true) {
        Ok(r) => r,
        Err(busy) => return bad(StatusCode::SERVICE_UNAVAILABLE, busy.to_string()),
    };
    let html = crate::status::page(&round, crate::status::REFRESH_SECONDS);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, crate::status::CSP),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        crate::status::CSS,
    )
        .into_response()
}
