//! reachability_exporter: a Prometheus exporter that probes, on every scrape,
//! whether configured services are reachable — DNS through the system and
//! control resolvers, TCP connects, TLS and QUIC handshakes, call ports
//! (STUN over UDP and TCP), HTTP requests, bounded downloads and uploads — and when
//! they are not, at which stage, for what reason, and what kind of blocking
//! the evidence points to.
//!
//! # Layout
//!
//! - [`config`]: YAML → raw structs → validated [`config::Config`]; the only YAML reader.
//! - [`ids`]: typed indices of services, checks, verdict plans, evidence slots.
//! - [`probe`]: one prober per check kind ([`probe::dns`], [`probe::tcp`],
//!   [`probe::tls`], [`probe::call_port`], [`probe::http`],
//!   [`probe::download`], [`probe::quic`]), each returning a
//!   [`probe::Outcome`]; the dispatch and the check deadline ([`probe::run`]).
//! - [`stun`]: the STUN codec of [`probe::call_port`].
//! - [`verdict`]: which checks pair up ([`verdict::plans`]) and the pure
//!   judgement of `reachability_blocking_suspected` ([`verdict::judge`]).
//! - [`engine`]: the [`engine::catalogue::Catalogue`] built per config load,
//!   [`engine::round`]s shared by scrapes (with the evidence verdicts need),
//!   the one way a check runs ([`engine::run`]: permit, span, statistics),
//!   reloads, the scrape budget.
//! - [`reason`]: [`reason::Stage`] and [`reason::Reason`], the only map from
//!   errors to label values.
//! - [`metrics`]: every metric name, help text and label set; outcomes → text.
//! - [`process`]: the `process_*` metrics, read from `/proc`.
//! - [`stats`]: the exporter's own counters (checks run, cut, refused requests).
//! - [`server`]: the HTTP routes; [`web`]: TLS and basic auth for them.
//! - [`push`]: push mode, the remote-write client.
//! - [`status`]: the status page at `/`.
//! - [`oneshot`]: the `check` command: every check once, as a table or JSON.
//! - [`logs`]: the log line formats (logfmt, JSON).
//!
//! The binary (`src/main.rs`) only parses flags, sets up logging and calls
//! [`serve`] (or [`oneshot`] for `check`, [`load`] for `--config.check`).
// `deny`, not `forbid`: one module, probe::kernel, allows it for three
// system calls no safe crate we use wraps (README, "Where each figure comes from").
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
pub mod engine;
pub mod ids;
pub mod locate;
pub mod logs;
pub mod metrics;
pub mod oneshot;
pub mod probe;
pub mod process;
pub mod push;
pub mod reason;
pub mod server;
pub mod stats;
pub mod status;
pub mod stun;
pub mod verdict;
pub mod web;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use crate::engine::Engine;
use crate::engine::catalogue::{BuildError, Catalogue};

/// What the server is started with (the command-line flags).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The config file.
    pub config_file: PathBuf,
    /// Overrides the config's `listen` when not empty (one server per
    /// address, as repeated `--web.listen-address` flags ask).
    pub listen: Vec<config::ListenAddress>,
    /// Subtracted from the scrape timeout Prometheus announces.
    pub timeout_offset: Duration,
    /// Where the metrics are served.
    pub telemetry_path: String,
    /// TLS and basic auth for our own endpoints (exporter-toolkit format).
    pub web_config_file: Option<PathBuf>,
    /// Reload when the config file changes.
    pub auto_reload: bool,
}

/// The exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config (or web config) file is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Clients could not be built from a valid config.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The web config's certificate and key were refused.
    #[error("{}: TLS certificate and key", file.display())]
    WebTls {
        /// The web config file.
        file: PathBuf,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
    /// The listen address cannot be bound.
    #[error("cannot listen on {address}")]
    Listen {
        /// The address, as written.
        address: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A signal handler or the server itself failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Everything loaded and checked before serving: what `--config.check`
/// validates.
#[derive(Debug)]
pub struct Loaded {
    /// The checks of the config.
    pub catalogue: Catalogue,
    /// How our own endpoints are served.
    pub web: server::Web,
    /// Where to listen.
    pub listen: Vec<config::ListenAddress>,
    /// Whether that is the config's `listen` (no flag overrides it).
    pub listen_from_config: bool,
}

/// Loads and checks the config and the web config of `settings`. Sends
/// nothing.
pub fn load(settings: &Settings) -> Result<Loaded, StartError> {
    let config = config::Config::load(&settings.config_file)?;
    let listen_from_config = settings.listen.is_empty();
    let mut listen = if listen_from_config {
        vec![config.listen.clone()]
    } else {
        settings.listen.clone()
    };
    // The same address given twice is served once (a second bind would fail
    // as if another process held the port).
    let mut seen = std::collections::HashSet::new();
    listen.retain(|a| seen.insert(a.to_string()));
    let mut web = server::Web {
        telemetry_path: settings.telemetry_path.clone(),
        ..Default::default()
    };
    if let Some(file) = &settings.web_config_file {
        let wc = config::WebConfig::load(file)?;
        web.auth = web::Auth::new(&wc);
        // Names from exporter-toolkit's list and printable values: the
        // loader checked both, so none is dropped here.
        web.headers = wc
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.parse().ok()?, v.parse().ok()?)))
            .collect();
        if let Some(tls) = &wc.tls {
            let tls = web::server_config(tls).map_err(|source| StartError::WebTls {
                file: file.clone(),
                source,
            })?;
            web.tls = Some(tls);
        }
    }
    let catalogue = Catalogue::new(config)?;
    Ok(Loaded {
        catalogue,
        web,
        listen,
        listen_from_config,
    })
}

/// Serves what `settings` describe until `shutdown` completes: loads the
/// config, listens, reloads on SIGHUP (and on file changes with
/// `auto_reload`), and finishes in-flight requests before returning.
pub async fn serve(
    settings: &Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let Loaded {
        catalogue,
        web,
        listen,
        listen_from_config,
    } = load(settings)?;
    if web.auth.is_some() && web.tls.is_none() {
        tracing::warn!(
            "basic auth without tls_server_config: passwords cross the network in clear text"
        );
    }
    let mut listeners = Vec::new();
    for address in &listen {
        listeners.push(bind(address).await?);
    }
    let checks = catalogue.len();
    let engine = Engine::new(
        catalogue,
        settings.config_file.clone(),
        settings.timeout_offset,
    );
    if listen_from_config {
        engine.warn_on_listen_change();
    }
    // Before saying it listens: a SIGHUP from then on reloads (its default
    // action would end the process).
    engine.reload_on_sighup()?;
    if settings.auto_reload {
        tokio::spawn(engine.clone().watch_config(Duration::from_secs(2)));
    }
    for listener in &listeners {
        let at = listener.local_addr()?;
        let (tls, auth) = (web.tls.is_some(), web.auth.is_some());
        tracing::info!(address = %at, checks, tls, auth, "listening");
    }
    server::run(listeners, engine, &web, shutdown).await?;
    Ok(())
}

/// Binds the first of `address`'s candidates that binds.
async fn bind(address: &config::ListenAddress) -> Result<tokio::net::TcpListener, StartError> {
    let failed = |source| StartError::Listen {
        address: address.to_string(),
        source,
    };
    let candidates = address.candidates().map_err(failed)?;
    let mut last = None;
    for at in candidates {
        match tokio::net::TcpListener::bind(at).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    // candidates() returns at least one address or an error.
    Err(failed(
        last.unwrap_or_else(|| std::io::ErrorKind::NotFound.into()),
    ))
}
