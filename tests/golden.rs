//! The exposition text, byte for byte: a fixed set of outcomes (every
//! check kind, passing and failing; verdicts 1, 0 and absent; vantage
//! labels; an `all_addresses` check) rendered by `metrics::render` in both
//! formats and compared with `tests/golden/` — the samples of each family
//! sorted, since their order is the hash map's. Refactors must leave these
//! files unchanged; a deliberate change to the metric contract rewrites
//! them with `UPDATE_GOLDEN=1 cargo test --test golden` and shows in the
//! diff.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use reachability_exporter::config::{Check, CheckKind, Config};
use reachability_exporter::engine::catalogue::Catalogue;
use reachability_exporter::engine::locator::Found;
use reachability_exporter::ids::{EntryId, PlanId};
use reachability_exporter::locate::Located;
use reachability_exporter::metrics::{self, Format, SelfStats};
use reachability_exporter::probe::{Facts, Outcome, Transfer};
use reachability_exporter::reason::{Reason, Stage};
use reachability_exporter::stats::{CheckCounts, TaskDelay};
use reachability_exporter::verdict::BlockingKind;

const CONFIG: &str = r#"
labels: { country: RU, site: lab-1 }
resolvers:
  system: { udp: "127.0.0.1:53" }
  control: { udp: "127.0.0.2:53" }
services:
  messenger:
    dns: { names: [web.messenger.test, gone.messenger.test], resolvers: [system, control], types: [A, AAAA] }
    tcp: ["chat.messenger.test:5222"]
    tls:
      - "web.messenger.test:443"
      - { target: "cdn.messenger.test:443", control_sni: neutral.test }
      - { target: "all.messenger.test:443", all_addresses: true }
    call_ports:
      - { udp: "relay.messenger.test:3478" }
      - { tcp: "relay.messenger.test:3478", method: stun }
      - { tcp: "relay.messenger.test:443" }
  video:
    every: 5m
    dns: { names: [www.video.test], resolvers: [system, control] }
    http:
      - "https://www.video.test/"
      - { url: "http://www.video.test/health", status: [200, "300-399"] }
    download:
      - { url: "https://thumbs.video.test/a.jpg", min_rate: 100KiB }
      - "https://thumbs.video.test/b.jpg"
    quic: ["www.video.test:443"]
    tls: ["www.video.test:443"]
    upload:
      - { url: "https://up.video.test/u", bytes: 64KiB, min_rate: 100KiB }
      - "https://up.video.test/v"
"#;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("a literal address")
}

/// The outcome given to the `n`th check: passing or failing by kind and
/// position, so that every family gets both.
fn outcome_for(n: usize, check: &Check) -> Outcome {
    let fail = n % 2 == 1;
    match check {
        Check::Dns(d) if d.name.starts_with("gone") && n % 4 == 1 => {
            Outcome::failed(Stage::Resolve, Reason::DnsNxdomain)
        }
        Check::Dns(_) => {
            if fail {
                let mut o = Outcome::failed(Stage::Resolve, Reason::DnsNoAnswer);
                o.duration = Some(ms(12));
                o.facts = Facts::Dns {
                    answers: 0,
                    addrs: vec![],
                };
                o
            } else {
                Outcome::ok(
                    ms(3),
                    Facts::Dns {
                        answers: 2,
                        addrs: vec![ip("127.0.0.1"), ip("127.0.0.9")],
                    },
                )
            }
        }
        Check::Tcp(_) => Outcome::ok(ms(7), Facts::None),
        Check::Tls(t) if t.all_addresses.is_some() => Outcome::per_address(vec![
            (
                ip("127.0.0.1"),
                Outcome::ok(
                    ms(9),
                    Facts::Tls {
                        not_after: Some(1_900_000_000),
                        version: "TLS 1.3",
                    },
                ),
            ),
            (
                ip("127.0.0.9"),
                Outcome::failed(Stage::TlsHandshake, Reason::ConnectionReset),
            ),
        ]),
        Check::Tls(t) if t.control_sni.is_some() => {
            let mut o = Outcome::failed(Stage::TlsHandshake, Reason::ConnectionReset);
            o.control = Some(true);
            o
        }
        Check::Tls(_) => Outcome::ok(
            Duration::from_micros(4_250),
            Facts::Tls {
                not_after: Some(1_800_000_000),
                version: if fail { "TLS 1.2" } else { "TLS 1.3" },
            },
        ),
        Check::CallPort(c) if c.transport.as_str() == "udp" => {
            Outcome::failed(Stage::Stun, Reason::GenericTimeout)
        }
        Check::CallPort(_) => Outcome::ok(
            ms(21),
            Facts::Stun {
                mapped: Some("127.0.0.1:40000".parse().expect("a literal")),
            },
        ),
        Check::Http(h) if h.url.scheme() == "https" => {
            Outcome::ok(ms(80), Facts::Http { status: 200 })
        }
        Check::Http(_) => {
            let mut o = Outcome::failed(Stage::Http, Reason::HttpUnexpectedStatus);
            o.duration = Some(ms(40));
            o.facts = Facts::Http { status: 451 };
            o
        }
        Check::Download(d) if d.min_rate.is_some() => Outcome {
            failure: None,
            duration: None,
            facts: Facts::Download(Transfer {
                bytes: 262_144,
                duration: Duration::from_secs(4),
                first_byte: Some(ms(150)),
                stalled: false,
                status: None,
                segments: Some(190),
            }),
            control: None,
            ech: None,
        },
        Check::Download(_) => Outcome {
            failure: Some((Stage::Read, Reason::GenericTimeout)),
            duration: None,
            facts: Facts::Download(Transfer {
                bytes: 16_384,
                duration: Duration::from_secs(3),
                first_byte: Some(ms(90)),
                stalled: true,
                status: None,
                segments: None,
            }),
            control: None,
            ech: None,
        },
        Check::Quic(_) => Outcome::failed(Stage::QuicHandshake, Reason::GenericTimeout),
        Check::Upload(u) if u.min_rate.is_some() => Outcome {
            failure: None,
            duration: Some(ms(500)),
            facts: Facts::Upload(Transfer {
                bytes: 65_536,
                duration: ms(500),
                first_byte: Some(ms(510)),
                stalled: false,
                status: Some(200),
                segments: Some(52),
            }),
            control: None,
            ech: None,
        },
        Check::Upload(_) => Outcome {
            failure: Some((Stage::Write, Reason::GenericTimeout)),
            duration: Some(Duration::from_secs(3)),
            facts: Facts::Upload(Transfer {
                bytes: 15_000,
                duration: Duration::from_secs(3),
                first_byte: None,
                stalled: true,
                status: None,
                segments: Some(25),
            }),
            control: None,
            ech: None,
        },
    }
}

fn own() -> SelfStats {
    let mut own = SelfStats {
        in_flight: 3,
        scrape_duration_seconds: 0.25,
        rounds_total: 7,
        scrapes_total: 9,
        reload_ok: true,
        reload_success_timestamp: 1_764_000_000.5,
        process: None,
        task_delay: Some(TaskDelay {
            p50: Duration::from_micros(120),
            p99: Duration::from_millis(2),
            max: Duration::from_millis(7),
            samples: 100,
        }),
        ..SelfStats::default()
    };
    for kind in CheckKind::ALL {
        let i = kind.index() as u64;
        own.checks[kind.index()] = CheckCounts {
            ok: 10 + i,
            failed: i,
            cut: i / 2,
        };
    }
    for (i, code) in [400u16, 401, 403, 404, 414, 503].iter().enumerate() {
        own.refused[i] = (*code, i as u64);
    }
    own
}

fn rendered(format: Format) -> String {
    let config =
        Config::parse(CONFIG, Path::new("golden.yaml")).expect("the golden config is valid");
    let cat = Catalogue::new(config).expect("clients build");
    let checks: Vec<EntryId> = cat.entries().map(|(id, _)| id).collect();
    let outcomes: Vec<Outcome> = cat
        .entries()
        .map(|(id, e)| outcome_for(id.index(), &e.check))
        .collect();
    // Verdicts: every other plan judged, alternately 1 and 0; the rest
    // absent (not judged).
    let verdicts: Vec<(PlanId, bool)> = cat
        .plans()
        .map(|(id, _)| id.index())
        .filter(|p| p % 3 != 2)
        .map(|p| (PlanId::new(p), p % 3 == 0))
        .collect();
    assert!(verdicts.iter().any(|v| v.1) && verdicts.iter().any(|v| !v.1));
    assert!(verdicts.len() < cat.plans().len(), "some verdict is absent");
    // One located censor (hop 3 of 4, both routers answered), one search
    // that proved nothing (path length only).
    let found = |target: &str, kind, hop: Option<u8>, routers: Vec<(u8, IpAddr)>| Found {
        service: "golden".into(),
        target: target.into(),
        kind,
        located: Located {
            path_hops: Some(4),
            censor_hop: hop,
            routers,
            answers: Vec::new(),
        },
        ended: 1_764_000_100.0,
    };
    let routers = vec![
        (3, IpAddr::from([192, 0, 2, 3])),
        (2, IpAddr::from([192, 0, 2, 2])),
    ];
    let located = [
        found("a.org:443", BlockingKind::SniFiltered, Some(3), routers),
        found("b.org:443", BlockingKind::EchBlocked, None, Vec::new()),
    ];
    // The service with `every:` is served from its own round, as a scrape
    // serves it: after the scrape's round, with its start time.
    let video = cat.service_named("video").expect("the config has it");
    let split = checks
        .iter()
        .position(|&c| cat.entry(c).service == video)
        .expect("video has checks");
    let (plans, scheduled): (Vec<_>, Vec<_>) = verdicts
        .iter()
        .copied()
        .partition(|(p, _)| cat.plan(*p).service != video);
    let part = |range: std::ops::Range<usize>, verdicts, scheduled| metrics::Part {
        catalogue: &cat,
        checks: &checks[range.clone()],
        outcomes: &outcomes[range],
        verdicts,
        scheduled,
    };
    let parts = [
        part(0..split, &plans, None),
        part(split..checks.len(), &scheduled, Some(1_764_000_050.0)),
    ];
    metrics::render(&cat.config, &parts, (None, &located), &own(), format)
}

/// `text` with the samples of each family sorted: prometheus-client keeps
/// a family's series in a hash map, so their order changes from process
/// to process and means nothing. Everything else keeps its place.
fn canonical(text: &str) -> String {
    let mut out = String::new();
    let mut samples: Vec<&str> = Vec::new();
    let flush = |out: &mut String, samples: &mut Vec<&str>| {
        samples.sort_unstable();
        for s in samples.drain(..) {
            out.push_str(s);
            out.push('\n');
        }
    };
    for line in text.lines() {
        if line.starts_with('#') {
            flush(&mut out, &mut samples);
            out.push_str(line);
            out.push('\n');
        } else {
            samples.push(line);
        }
    }
    flush(&mut out, &mut samples);
    out
}

fn compare(file: &str, got: &str) {
    let got = canonical(got);
    let got = got.as_str();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).expect("write the golden file");
        return;
    }
    let want = std::fs::read_to_string(&path).expect("read the golden file");
    if want != got {
        for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
            assert_eq!(w, g, "{file}: line {} differs", i + 1);
        }
        assert_eq!(
            want.lines().count(),
            got.lines().count(),
            "{file}: line count"
        );
        assert_eq!(want, got, "{file}: trailing bytes differ");
    }
}

#[tokio::test]
async fn exposition_text_is_unchanged() {
    let text = rendered(Format::Prometheus);
    // Every check family is in the golden text, with the vantage labels.
    for family in [
        "reachability_dns_success",
        "reachability_tcp_connect_success",
        "reachability_tls_handshake_success",
        "reachability_call_port_reachable",
        "reachability_http_success",
        "reachability_download_bytes",
        "reachability_quic_handshake_success",
        "reachability_failure_info",
        "reachability_blocking_suspected",
        "reachability_service_up",
        "reachability_exporter_checks_total",
    ] {
        assert!(
            text.contains(&format!("\n{family}{{")),
            "{family} missing:\n{text}"
        );
    }
    assert!(text.contains("country=\"RU\",site=\"lab-1\""));
    assert!(text.contains("address=\"127.0.0.9\""));
    compare("metrics.prom", &text);
    compare("metrics.openmetrics", &rendered(Format::OpenMetrics));
}
