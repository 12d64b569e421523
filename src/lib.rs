//! reachability_exporter: a Prometheus exporter that probes, on every scrape,
//! whether configured services are reachable — DNS through the system and
//! control resolvers, TCP connect, TLS handshake — and when they are not, at
//! which stage and for what reason.
//!
//! # Layout
//!
//! - [`config`]: YAML → raw structs → validated [`config::Config`]; the only YAML reader.
//! - [`probe`]: the [`probe::Catalogue`] of checks built once per config load,
//!   one prober per kind ([`probe::dns`], [`probe::tcp`], [`probe::tls`],
//!   [`probe::call_port`], [`probe::http`], [`probe::download`],
//!   [`probe::quic`]),
//!   each returning an [`probe::Outcome`]; the check deadline.
//! - [`probe::call_port`]: STUN over UDP/TCP and TCP connects to call ports,
//!   with the codec in [`stun`].
//! - [`round`]: one run of checks that concurrent scrapes share.
//! - [`verdict`]: which checks pair up, the evidence a round gathers for
//!   them, and the `reachability_blocking_suspected` judgements.
//! - [`reason`]: [`reason::Stage`] and [`reason::Reason`], the only map from
//!   errors to label values.
//! - [`metrics`]: every metric name, help text and label set; outcomes → text.
//! - [`process`]: the `process_*` metrics, read from `/proc`.
//! - [`stats`]: the exporter's own counters (checks run, cut, refused requests).
//! - [`server`]: axum routes, the scrape deadline, shared rounds, reload.
//! - [`oneshot`]: the `check` command: every check once, as a table or JSON.
//! - [`status`]: the status page at `/`.
//! - [`web`]: TLS and basic auth for the exporter's own endpoints.
//! - [`logfmt`]: the log line format.
//!
//! The binary (`src/main.rs`) only parses flags, sets up logging, loads the
//! config and calls [`server::run`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
pub mod logfmt;
pub mod metrics;
pub mod oneshot;
pub mod probe;
pub mod process;
pub mod reason;
pub mod round;
pub mod server;
pub mod stats;
pub mod status;
pub mod stun;
pub mod verdict;
pub mod web;
