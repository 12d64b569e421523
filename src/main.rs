//! The `reachability_exporter` binary: flags, logging, config, run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use reachability_exporter::Settings;
use reachability_exporter::config::{Config, ListenAddress};
use reachability_exporter::engine::catalogue::Catalogue;
use reachability_exporter::logs;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Probes whether configured services are reachable (DNS, TCP, TLS, QUIC,
/// call ports, HTTP, downloads, uploads) on every Prometheus scrape, and says how
/// they fail and what kind of blocking the evidence points to.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Run once in the terminal instead of serving.
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file.
    #[arg(long = "config.file", default_value = "config.yaml", global = true)]
    config_file: PathBuf,
    /// Validate the configuration file and exit (0 if valid, 1 if not).
    #[arg(long = "config.check")]
    config_check: bool,
    /// Address to listen on (HOST:PORT, or :PORT for every address);
    /// overrides the config's `listen`. Repeat it to serve on several.
    #[arg(long = "web.listen-address", value_parser = listen_address)]
    listen_address: Vec<ListenAddress>,
    /// Subtracted from the scrape timeout Prometheus announces, to leave
    /// time for the response (e.g. 500ms).
    #[arg(long = "web.timeout-offset", default_value = "500ms", value_parser = humantime::parse_duration)]
    timeout_offset: Duration,
    /// Path under which the metrics are served.
    #[arg(long = "web.telemetry-path", default_value = "/metrics", value_parser = telemetry_path)]
    telemetry_path: String,
    /// TLS and basic-auth settings for the exporter's own endpoints, in
    /// Prometheus exporter-toolkit's format.
    #[arg(long = "web.config.file")]
    web_config_file: Option<PathBuf>,
    /// Reload the config when the file changes (checked every 2 s), as on
    /// SIGHUP.
    #[arg(long = "config.auto-reload")]
    auto_reload: bool,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long = "log.level", default_value = "info", global = true)]
    log_level: tracing::Level,
    /// Log format.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt, global = true)]
    log_format: LogFormat,
}

fn listen_address(s: &str) -> Result<ListenAddress, String> {
    s.parse()
}

/// A telemetry path must be an absolute path that is not one of ours, of
/// characters a URL carries as they are (letters, digits, `-._~/`).
fn telemetry_path(s: &str) -> Result<String, String> {
    let reserved = [
        "/",
        "/status.css",
        "/probe",
        "/-/healthy",
        "/-/ready",
        "/-/reload",
    ];
    let plain = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/'));
    if !s.starts_with('/') || !plain || reserved.contains(&s) {
        return Err(format!(
            "{s:?} must be a path starting with `/`, of letters, digits and `-._~/`, other than {}",
            reserved.join(" ")
        ));
    }
    Ok(s.to_string())
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every check once and print the results; exit 0 if all pass, 1 if
    /// any fails, 2 for an invalid config or usage.
    Check {
        /// Only this service's checks.
        #[arg(long)]
        service: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    /// An aligned table (coloured on a terminal).
    Table,
    /// A JSON array.
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Logfmt,
    Json,
}

/// jemalloc rather than glibc's malloc: a background thread hands memory
/// freed after a burst of checks back to the system within seconds (glibc
/// keeps it in per-thread arenas). Its options are set at build time in
/// `.cargo/config.toml`. bench/RESULTS.md has the figures.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Libraries log at warn; our own events at the chosen level. (A plain
    // target filter: EnvFilter's directives would bring a regex engine.)
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(tracing::Level::WARN)
        .with_target("reachability_exporter", cli.log_level);
    let lines = match cli.log_format {
        LogFormat::Logfmt => logs::Lines::Logfmt,
        LogFormat::Json => logs::Lines::Json,
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .event_format(lines)
        .fmt_fields(logs::SpanFields)
        .with_filter(filter);
    tracing_subscriber::registry().with(layer).init();
    if let Some(Command::Check { service, output }) = &cli.command {
        return check(&cli.config_file, service.as_deref(), *output);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `check`: 0 if every check passed, 1 if any failed, 2 if it could not run.
fn check(config_file: &std::path::Path, service: Option<&str>, output: Output) -> ExitCode {
    use std::io::IsTerminal;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let report = runtime.block_on(async {
        let config = Config::load(config_file).map_err(anyhow::Error::from)?;
        let catalogue = std::sync::Arc::new(Catalogue::new(config)?);
        Ok::<_, anyhow::Error>(reachability_exporter::oneshot::run(catalogue, service).await?)
    });
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::from(2);
        }
    };
    let text = match output {
        Output::Table => {
            let colour = reachability_exporter::oneshot::colour(
                std::io::stdout().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            );
            reachability_exporter::oneshot::table(&report, colour)
        }
        Output::Json => reachability_exporter::oneshot::json(&report),
    };
    print!("{text}");
    if report.rows.iter().all(|r| r.outcome.is_ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `1 service`, `2 services`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // Every check in flight holds a socket or two: lift the soft limit on
    // open files to the hard one (as Go programs do), so that
    // max_concurrent_checks, not the default 1,024 descriptors, is the bound.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open files limit"),
    }
    let settings = Settings {
        config_file: cli.config_file,
        listen: cli.listen_address,
        timeout_offset: cli.timeout_offset,
        telemetry_path: cli.telemetry_path,
        web_config_file: cli.web_config_file,
        auto_reload: cli.auto_reload,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        if cli.config_check {
            let loaded = reachability_exporter::load(&settings)?;
            let cat = &loaded.catalogue;
            let references = match cat.references().len() {
                0 => String::new(),
                n => format!(", {}", count(n, "regime reference", "regime references")),
            };
            let scheduled = match cat
                .config
                .services
                .iter()
                .filter(|s| s.every.is_some())
                .count()
            {
                0 => String::new(),
                n => format!(" ({n} scheduled)"),
            };
            let push = match &cat.config.remote_write {
                Some(rw) => format!(
                    ", pushing every {} to {}",
                    humantime::format_duration(rw.every),
                    rw.url
                ),
                None => String::new(),
            };
            println!(
                "{}: valid: {}{scheduled}, {}{references}{push}",
                settings.config_file.display(),
                count(cat.config.services.len(), "service", "services"),
                count(cat.len(), "check", "checks"),
            );
            return Ok(());
        }
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            tracing::info!("shutting down");
        };
        reachability_exporter::serve(&settings, shutdown).await?;
        Ok(())
    })
}
