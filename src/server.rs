//! The HTTP side: routes. Handlers parse the request, hand it to the
//! [`Engine`] and render what it returns; nothing here runs a check.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the status page: a summary, then the latest round of every check |
//! | `GET /status.css` | its stylesheet |
//! | `GET /metrics` (`--web.telemetry-path`) | every check |
//! | `GET /probe?service=NAME` | one service's checks |
//! | `GET /probe?target=…&module=NAME` | an ad hoc check, if `probe_allow` admits the target |
//! | `GET /-/healthy`, `GET /-/ready` | liveness, readiness (never behind basic auth) |
//! | `POST /-/reload` | reload the config (also on SIGHUP) |

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::engine::round::Round;
use crate::engine::{Engine, MAX_SCRAPE_TIMEOUT, ProbeError, ScrapeError, Scraped};
use crate::metrics::{self, Format};

/// The longest `/probe` query string accepted (414 beyond).
pub const MAX_QUERY_BYTES: usize = 4096;

const TIMEOUT_HEADER: &str = "x-prometheus-scrape-timeout-seconds";

/// How the exporter's own endpoints are served (`--web.*` flags).
#[derive(Debug, Clone)]
pub struct Web {
    /// Where the metrics are served (default `/metrics`).
    pub telemetry_path: String,
    /// Basic auth for every route but the health checks.
    pub auth: Option<Arc<crate::web::Auth>>,
    /// TLS for the server.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Headers added to every response (the web config's).
    pub headers: Vec<(header::HeaderName, header::HeaderValue)>,
    /// Seconds between the status page's reloads; it shows no round older
    /// (unless `min_interval` is longer). [`crate::status::REFRESH_SECONDS`].
    pub status_refresh: u32,
}

impl Default for Web {
    fn default() -> Web {
        Web {
            telemetry_path: "/metrics".into(),
            auth: None,
            tls: None,
            headers: Vec::new(),
            status_refresh: crate::status::REFRESH_SECONDS,
        }
    }
}

/// The routes, for [`run`] and for tests. `/-/healthy` and `/-/ready` stay
/// open when basic auth guards the rest (Kubernetes probes carry no
/// credentials).
pub fn router(engine: Arc<Engine>, web: &Web) -> Router {
    let metrics_path: Arc<str> = web.telemetry_path.as_str().into();
    let refresh = web.status_refresh;
    let status_page = move |State(engine): State<Arc<Engine>>| {
        let metrics_path = metrics_path.clone();
        async move { index(engine, &metrics_path, refresh).await }
    };
    let mut guarded = Router::new()
        .route("/", get(status_page))
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
    let mut app = Router::new()
        .route("/-/healthy", get(|| async { "OK\n" }))
        .route("/-/ready", get(|| async { "OK\n" }))
        .merge(guarded)
        .layer(axum::middleware::from_fn_with_state(
            engine.clone(),
            count_refused,
        ));
    if !web.headers.is_empty() {
        app = app.layer(axum::middleware::from_fn_with_state(
            Arc::new(web.headers.clone()),
            crate::web::add_headers,
        ));
    }
    app.with_state(engine)
}

/// Counts the requests answered with a refusal (`reachability_exporter_requests_refused_total`).
async fn count_refused(
    State(engine): State<Arc<Engine>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let res = next.run(req).await;
    engine.stats().refused(res.status().as_u16());
    res
}

/// Serves `engine` on every one of `listeners` (over TLS when `web` says
/// so), and runs its scheduled rounds ([`Engine::run_schedule`]) and push
/// mode ([`crate::push::run`]), until
/// `shutdown` completes; in-flight requests are finished first. Returns
/// the first error of any of them.
pub async fn run(
    listeners: Vec<TcpListener>,
    engine: Arc<Engine>,
    web: &Web,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let schedule = tokio::spawn(engine.clone().run_schedule());
    let _stop_schedule = AbortOnDrop(schedule);
    // Push mode: idle while the config has no `remote_write:`.
    let _stop_push = AbortOnDrop(tokio::spawn(crate::push::run(engine.clone())));
    let app = router(engine, web);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let mut servers = tokio::task::JoinSet::new();
    for listener in listeners {
        let app = app.clone();
        let mut stopped = stopped.clone();
        let shutdown = async move {
            // Ends on `true`, or when the sender is gone.
            let _ = stopped.wait_for(|s| *s).await;
        };
        match &web.tls {
            Some(cfg) => {
                let tls = crate::web::TlsListener::new(listener, cfg.clone())?;
                servers.spawn(async move {
                    axum::serve(tls, app).with_graceful_shutdown(shutdown).await
                });
            }
            None => {
                servers.spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await
                });
            }
        }
    }
    let mut result = Ok(());
    while let Some(done) = servers.join_next().await {
        let done = done.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if result.is_ok() {
            result = done;
        }
    }
    result
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
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
/// [`crate::engine::DEFAULT_SCRAPE_TIMEOUT`], as if no header had come.
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
            let value = String::from_utf8_lossy(v.as_bytes());
            tracing::debug!(%value, "ignoring a malformed scrape timeout header");
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

/// Runs (or joins) a round of every service, or of the one named
/// `service`, and renders it.
async fn scrape(engine: &Engine, service: Option<&str>, headers: &HeaderMap) -> Response {
    let format = format_of(headers);
    match engine.scrape(service, announced_timeout(headers)).await {
        Ok(Scraped {
            served,
            located,
            own,
        }) => {
            let parts: Vec<metrics::Part<'_>> = served.iter().map(|s| s.part()).collect();
            // The scrape's own round, whose config labels the series (a
            // scrape always serves one).
            let Some(first) = served.first() else {
                return bad(StatusCode::SERVICE_UNAVAILABLE, "no round to serve".into());
            };
            let (config, regime) = (&first.round.catalogue.config, first.round.regime());
            let body = metrics::render(config, &parts, (regime, &located), &own, format);
            respond(format, body)
        }
        Err(e @ ScrapeError::UnknownService(_)) => bad(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => bad(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn metrics_handler(State(engine): State<Arc<Engine>>, headers: HeaderMap) -> Response {
    scrape(&engine, None, &headers).await
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
        // An unknown name is echoed escaped, in the body only (never in a
        // label).
        (Some(name), None, None) => scrape(&engine, Some(name), &headers).await,
        (None, Some(target), Some(module)) => {
            let start = Instant::now();
            match engine.probe_target(target, module, announced).await {
                Ok(p) => respond(
                    format,
                    metrics::render_probe(
                        &p.catalogue.config,
                        &p.module,
                        &p.check,
                        &p.outcome,
                        start.elapsed().as_secs_f64(),
                        format,
                    ),
                ),
                Err(e) => {
                    let status = match e {
                        ProbeError::NotAllowed(_) => StatusCode::FORBIDDEN,
                        ProbeError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
                        ProbeError::UnknownModule(_) | ProbeError::BadTarget { .. } => {
                            StatusCode::BAD_REQUEST
                        }
                    };
                    bad(status, e.to_string())
                }
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

/// The status page: the latest round of every check, started anew when it
/// is older than the page's refresh interval (or `min_interval`, if
/// longer) or ran under a config since reloaded; the page waits for it as
/// a scrape without a timeout header would.
async fn index(engine: Arc<Engine>, metrics_path: &str, refresh_seconds: u32) -> Response {
    let deadline = Instant::now() + engine.budget(None);
    let fresh = Duration::from_secs(refresh_seconds.into());
    let (round, newer) = match engine.status_rounds(fresh, deadline) {
        Ok(r) => r,
        Err(busy) => return bad(StatusCode::SERVICE_UNAVAILABLE, busy.to_string()),
    };
    round.wait(deadline).await;
    let mut rounds: Vec<&Round> = vec![&round];
    rounds.extend(newer.iter().map(|r| &**r));
    let located = engine.located(&rounds);
    let html = crate::status::page(&crate::status::View {
        round: &round,
        newer,
        located,
        metrics_path,
        refresh_seconds,
    });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{DEFAULT_SCRAPE_TIMEOUT, budget};

    fn announced(v: &str) -> Option<Duration> {
        let mut h = HeaderMap::new();
        h.insert(TIMEOUT_HEADER, v.parse().expect("a header value"));
        announced_timeout(&h)
    }

    #[test]
    fn announced_timeout_takes_positive_seconds_and_caps_them() {
        assert_eq!(announced_timeout(&HeaderMap::new()), None);
        assert_eq!(announced("4"), Some(Duration::from_secs(4)));
        assert_eq!(announced(" 2.5 "), Some(Duration::from_millis(2_500)));
        assert_eq!(announced("1e-9"), Some(Duration::from_nanos(1)));
        for capped in ["301", "1e309", "inf", "99999999999"] {
            assert_eq!(announced(capped), Some(MAX_SCRAPE_TIMEOUT), "{capped}");
        }
        for ignored in ["", "-1", "0", "NaN", "-inf", "ten", "4s"] {
            assert_eq!(announced(ignored), None, "{ignored:?}");
        }
    }

    #[test]
    fn odd_headers_get_the_budget_of_no_header() {
        let offset = Duration::from_millis(500);
        let default = budget(None, offset);
        assert_eq!(default, DEFAULT_SCRAPE_TIMEOUT - offset);
        for odd in ["", "-1", "NaN", "text", "0"] {
            assert_eq!(budget(announced(odd), offset), default, "{odd:?}");
        }
        assert_eq!(
            budget(announced("1e309"), offset),
            MAX_SCRAPE_TIMEOUT - offset
        );
        // A tiny announcement is honoured: half of it.
        assert_eq!(
            budget(announced("1e-9"), offset),
            Duration::from_nanos(1) / 2
        );
    }
}
