//! The `reachability_exporter` binary: flags, logging, config, run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use reachability_exporter::config::Config;
use reachability_exporter::probe::Catalogue;
use reachability_exporter::server::{self, Engine};
use tokio::signal::unix::{SignalKind, signal};

/// Probes DNS, TCP and TLS reachability of configured services on every
/// Prometheus scrape, and says how they fail.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file.
    #[arg(long = "config.file", default_value = "config.yaml")]
    config_file: PathBuf,
    /// Validate the configuration file and exit (0 if valid, 1 if not).
    #[arg(long = "config.check")]
    config_check: bool,
    /// Address to listen on; overrides the config's `listen`.
    #[arg(long = "web.listen-address")]
    listen_address: Option<SocketAddr>,
    /// Subtracted from the scrape timeout Prometheus announces, to leave
    /// time for the response (e.g. 500ms).
    #[arg(long = "web.timeout-offset", default_value = "500ms", value_parser = humantime::parse_duration)]
    timeout_offset: Duration,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long = "log.level", default_value = "info")]
    log_level: tracing::Level,
    /// Log format.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Logfmt,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Libraries log at warn; our own events at the chosen level.
    let filter =
        tracing_subscriber::EnvFilter::new(format!("warn,reachability_exporter={}", cli.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Logfmt => builder
            .event_format(reachability_exporter::logfmt::Logfmt)
            .init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let config = Config::load(&cli.config_file)?;
        let listen = cli.listen_address.unwrap_or(config.listen);
        let catalogue = Catalogue::new(config)?;
        if cli.config_check {
            let services = catalogue.config.services.len();
            println!(
                "{}: valid: {services} services, {} checks",
                cli.config_file.display(),
                catalogue.entries.len()
            );
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        tracing::info!(address = %listener.local_addr()?, checks = catalogue.entries.len(), "listening");
        let engine = Engine::new(catalogue, cli.config_file.clone(), cli.timeout_offset);

        let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
        let reloader = engine.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                let e = reloader.clone();
                // The error is logged by reload itself.
                let _ = tokio::task::spawn_blocking(move || e.reload()).await;
            }
        });
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            tracing::info!("shutting down");
        };
        server::run(listener, engine, shutdown).await?;
        Ok(())
    })
}
