//! The real HTTP server end to end: scrape /metrics and /probe over TCP and
//! assert on the exposition text.

mod support;

use std::time::{Duration, Instant};

use support::*;

/// A lab with one service of every kind: DNS through the system resolver
/// (the in-process server) and a broken control (DoT with the wrong name),
/// TCP and TLS to a real TLS server, and a failing TCP check in another
/// service.
async fn lab(pki: &Pki) -> (DnsServer, String) {
    let dns = DnsServer::start(pki).await;
    let tls = tls_server(pki.server_config(&["tls.test"], CertKind::Good, &[b"h2"])).await;
    let closed = closed_port().await;
    let yaml = format!(
        r#"allowed_ranges: [127.0.0.0/8]
resolvers:
  system: {{ udp: "{udp}" }}
  control: {{ dot: "{dot}", server_name: wrong.test, ca_file: "{ca}" }}
services:
  good:
    dns:
      names: [ok.test]
      resolvers: [system, control]
    tcp: ["{tls}"]
    tls:
      - {{ target: "ok.test:{port}", sni: tls.test, ca_file: "{ca}" }}
  bad:
    dns: {{ names: [nx.test] }}
    tcp: ["{closed}"]
"#,
        udp = dns.udp,
        dot = dns.dot,
        ca = pki.ca_pem.display(),
        port = tls.port(),
    );
    (dns, yaml)
}

#[tokio::test]
async fn metrics_exposition_end_to_end() {
    within(30, async {
        let pki = Pki::new();
        let (_dns, yaml) = lab(&pki).await;
        let exp = Exporter::start(pki.dir.path(), &yaml).await;
        let (status, body) = get(exp.addr, "/metrics", Some("5")).await;
        assert_eq!(status, 200, "{body}");

        let dns = [
            ("service", "good"),
            ("target", "ok.test"),
            ("resolver", "system"),
            ("type", "A"),
        ];
        assert_eq!(
            sample(&body, "reachability_dns_success", &dns),
            Some(1.0),
            "{body}"
        );
        assert_eq!(sample(&body, "reachability_dns_answers", &dns), Some(1.0));
        let d = sample(&body, "reachability_dns_duration_seconds", &dns).unwrap();
        assert!(d > 0.0 && d < 1.0, "{d}");

        // The control resolver fails at its own TLS handshake...
        let ctl = [("service", "good"), ("resolver", "control")];
        assert_eq!(sample(&body, "reachability_dns_success", &ctl), Some(0.0));
        let ctl_fail = [
            ("service", "good"),
            ("resolver", "control"),
            ("check", "dns"),
            ("stage", "resolve"),
            ("reason", "ssl_invalid_hostname"),
        ];
        assert_eq!(
            sample(&body, "reachability_failure_info", &ctl_fail),
            Some(1.0),
            "{body}"
        );
        // ...which does not make the service down.
        assert_eq!(
            sample(&body, "reachability_service_up", &[("service", "good")]),
            Some(1.0)
        );

        let tcp = [
            ("service", "good"),
            ("target", &*format!("127.0.0.1:{}", tcp_port(&yaml))),
        ];
        assert_eq!(
            sample(&body, "reachability_tcp_connect_success", &tcp),
            Some(1.0),
            "{body}"
        );
        assert!(sample(&body, "reachability_tcp_connect_duration_seconds", &tcp).unwrap() > 0.0);

        let tls = [("service", "good"), ("sni", "tls.test")];
        assert_eq!(
            sample(&body, "reachability_tls_handshake_success", &tls),
            Some(1.0)
        );
        assert!(sample(&body, "reachability_tls_handshake_duration_seconds", &tls).unwrap() > 0.0);
        assert_eq!(
            sample(
                &body,
                "reachability_tls_cert_expiry_timestamp_seconds",
                &tls
            ),
            Some(Pki::NOT_AFTER as f64)
        );
        let v13 = [
            ("service", "good"),
            ("sni", "tls.test"),
            ("version", "TLS 1.3"),
        ];
        assert_eq!(
            sample(&body, "reachability_tls_version_info", &v13),
            Some(1.0)
        );

        // Passing checks have no failure series.
        assert_eq!(
            sample(
                &body,
                "reachability_failure_info",
                &[("service", "good"), ("check", "tls")]
            ),
            None
        );
        assert_eq!(
            sample(
                &body,
                "reachability_failure_info",
                &[("service", "good"), ("check", "tcp")]
            ),
            None
        );

        // The bad service: NXDOMAIN and a refused connect, each classified.
        let nx = [
            ("service", "bad"),
            ("target", "nx.test"),
            ("check", "dns"),
            ("stage", "resolve"),
            ("reason", "dns_nxdomain_error"),
        ];
        assert_eq!(
            sample(&body, "reachability_failure_info", &nx),
            Some(1.0),
            "{body}"
        );
        let refused = [
            ("service", "bad"),
            ("check", "tcp"),
            ("stage", "connect"),
            ("reason", "connection_refused"),
        ];
        assert_eq!(
            sample(&body, "reachability_failure_info", &refused),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &body,
                "reachability_tcp_connect_duration_seconds",
                &[("service", "bad")]
            ),
            None
        );
        assert_eq!(
            sample(&body, "reachability_service_up", &[("service", "bad")]),
            Some(0.0)
        );

        // The exporter's own metrics.
        assert_eq!(
            sample(
                &body,
                "reachability_exporter_build_info",
                &[("version", env!("CARGO_PKG_VERSION"))]
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(&body, "reachability_exporter_rounds_total", &[]),
            Some(1.0)
        );
        assert_eq!(
            sample(&body, "reachability_exporter_scrapes_total", &[]),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &body,
                "reachability_exporter_config_last_reload_successful",
                &[]
            ),
            Some(1.0)
        );
        assert!(sample(&body, "reachability_exporter_scrape_duration_seconds", &[]).unwrap() > 0.0);
        assert!(sample(&body, "process_resident_memory_bytes", &[]).unwrap() > 1e6);
        assert!(sample(&body, "process_open_fds", &[]).unwrap() > 3.0);
        assert!(sample(&body, "process_start_time_seconds", &[]).unwrap() > 1.7e9);
        assert!(sample(&body, "process_cpu_seconds_total", &[]).is_some());
        // Prometheus text format without an Accept header: no `# EOF`.
        assert!(!body.contains("# EOF"));

        // OpenMetrics when asked for it.
        let (status, om) = request(
            exp.addr,
            "GET",
            "/metrics",
            &[(
                "Accept",
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
            )],
        )
        .await;
        assert_eq!(status, 200);
        assert!(om.trim_end().ends_with("# EOF"), "{om}");
        assert_eq!(sample(&om, "reachability_dns_success", &dns), Some(1.0));
        exp.stop().await;
    })
    .await;
}

/// The port of the first `tcp:` target in a lab config.
fn tcp_port(yaml: &str) -> u16 {
    let line = yaml
        .lines()
        .find(|l| l.trim_start().starts_with("tcp: [\"127.0.0.1:"))
        .unwrap();
    let start = line.find("127.0.0.1:").unwrap() + "127.0.0.1:".len();
    line[start..].trim_end_matches("\"]").parse().unwrap()
}

#[tokio::test]
async fn a_scrape_answers_within_its_deadline() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let mut targets = String::new();
        for _ in 0..20 {
            let addr = bad_tls_server(Misbehaviour::Stall).await;
            targets.push_str(&format!(
                "      - {{ target: \"{addr}\", sni: stall.test }}\n"
            ));
        }
        // The checks' own timeout is long: the scrape deadline must win.
        let yaml = format!("services:\n  slow:\n    timeout: 30s\n    tls:\n{targets}");
        let exp = Exporter::start(dir.path(), &yaml).await;
        let start = Instant::now();
        let (status, body) = get(exp.addr, "/metrics", Some("1.5")).await;
        let took = start.elapsed();
        assert_eq!(status, 200);
        assert!(took < Duration::from_millis(1200), "took {took:?}");
        assert!(
            took >= Duration::from_millis(950),
            "deadline is 1.5 s - 0.5 s offset: {took:?}"
        );
        let timeouts = body
            .lines()
            .filter(|l| {
                l.starts_with("reachability_failure_info{")
                    && l.contains("stage=\"tls_handshake\"")
                    && l.contains("reason=\"generic_timeout_error\"")
            })
            .count();
        assert_eq!(timeouts, 20, "{body}");
        assert_eq!(
            sample(&body, "reachability_service_up", &[("service", "slow")]),
            Some(0.0)
        );
        exp.stop().await;
    })
    .await;
}

#[tokio::test]
async fn concurrent_scrapes_share_one_round() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let stall = bad_tls_server(Misbehaviour::Stall).await;
        let yaml = format!("services:\n  s:\n    timeout: 600ms\n    tls: [\"{stall}\"]\n");
        let exp = Exporter::start(dir.path(), &yaml).await;
        let (a, b) = tokio::join!(
            get(exp.addr, "/metrics", None),
            get(exp.addr, "/metrics", None)
        );
        for (status, body) in [&a, &b] {
            assert_eq!(*status, 200);
            assert_eq!(
                sample(body, "reachability_exporter_rounds_total", &[]),
                Some(1.0),
                "{body}"
            );
        }
        let scrapes: Vec<f64> = [&a.1, &b.1]
            .iter()
            .map(|b| sample(b, "reachability_exporter_scrapes_total", &[]).unwrap())
            .collect();
        assert_eq!(
            scrapes.iter().cloned().fold(0.0, f64::max),
            2.0,
            "{scrapes:?}"
        );
        // After the round ended, the next scrape starts a new one.
        let (_, c) = get(exp.addr, "/metrics", None).await;
        assert_eq!(
            sample(&c, "reachability_exporter_rounds_total", &[]),
            Some(2.0)
        );
        assert_eq!(
            sample(&c, "reachability_exporter_scrapes_total", &[]),
            Some(3.0)
        );
        exp.stop().await;
    })
    .await;
}

#[tokio::test]
async fn each_dns_check_sends_one_query_per_scrape() {
    within(30, async {
        let pki = Pki::new();
        let dns = DnsServer::start(&pki).await;
        // Two names (one answered, one NXDOMAIN), two types, through UDP,
        // TCP, DoT and DoH: 16 checks, so 16 queries a scrape — no cache
        // between scrapes, no retries within one.
        let yaml = format!(
            "allowed_ranges: [127.0.0.0/8]\nresolvers:\n  system: {{ udp: \"{udp}\" }}\n  t: {{ tcp: \"{tcp}\" }}\n  dot: {{ dot: \"{dot}\", server_name: dns.test, ca_file: \"{ca}\" }}\n  doh: {{ doh: \"https://{doh}/dns-query\", server_name: dns.test, ca_file: \"{ca}\" }}\nservices:\n  s:\n    dns: {{ names: [ok.test, nx.test], types: [A, AAAA], resolvers: [system, t, dot, doh] }}\n",
            udp = dns.udp,
            tcp = dns.tcp,
            dot = dns.dot,
            doh = dns.doh,
            ca = pki.ca_pem.display(),
        );
        let exp = Exporter::start(pki.dir.path(), &yaml).await;
        for scrape in 1..=3 {
            let (status, body) = get(exp.addr, "/metrics", Some("5")).await;
            assert_eq!(status, 200, "{body}");
            for r in ["system", "t", "dot", "doh"] {
                let ok = [("target", "ok.test"), ("resolver", r), ("type", "A")];
                assert_eq!(sample(&body, "reachability_dns_success", &ok), Some(1.0), "{r}: {body}");
                let nx = [("target", "nx.test"), ("resolver", r), ("type", "A"), ("reason", "dns_nxdomain_error")];
                assert_eq!(sample(&body, "reachability_failure_info", &nx), Some(1.0), "{r}: {body}");
            }
            assert_eq!(dns.queries.get(), 16 * scrape, "queries after scrape {scrape}");
        }
        exp.stop().await;
    })
    .await;
}

#[tokio::test]
async fn probe_one_service_and_bad_requests() {
    within(30, async {
        let pki = Pki::new();
        let (_dns, yaml) = lab(&pki).await;
        let exp = Exporter::start(pki.dir.path(), &yaml).await;

        let (status, body) = get(exp.addr, "/probe?service=bad", Some("5")).await;
        assert_eq!(status, 200);
        assert_eq!(
            sample(&body, "reachability_service_up", &[("service", "bad")]),
            Some(0.0)
        );
        assert!(
            !body.contains("service=\"good\""),
            "only the asked service: {body}"
        );

        let (status, body) = get(exp.addr, "/probe?service=nope", None).await;
        assert_eq!((status, body.trim()), (404, "unknown service \"nope\""));
        let (status, body) = get(exp.addr, "/probe", None).await;
        assert_eq!(
            (status, body.trim()),
            (
                400,
                "missing parameter: service=NAME, or target=…&module=NAME"
            )
        );
        let (status, body) = get(exp.addr, "/probe?service=good&debug=1", None).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("unknown parameter \"debug\""), "{body}");
        // A scrape timeout that is not a positive number is ignored (the
        // 10 s default), a huge or infinite one capped at 300 s: either way
        // the passing service's checks all finish, so it is up.
        for odd in [
            "abc",
            "-1",
            "0",
            "NaN",
            "",
            "-0",
            "1e309",
            "inf",
            "99999999999",
        ] {
            let (status, body) = get(exp.addr, "/metrics", Some(odd)).await;
            assert_eq!(status, 200, "{odd:?}: {body}");
            let up = |s: &str| sample(&body, "reachability_service_up", &[("service", s)]);
            assert_eq!(
                (up("good"), up("bad")),
                (Some(1.0), Some(0.0)),
                "{odd:?}: {body}"
            );
            assert_eq!(
                sample(
                    &body,
                    "reachability_tls_handshake_success",
                    &[("service", "good")]
                ),
                Some(1.0),
                "{odd:?}: {body}"
            );
        }
        // A tiny positive one is honoured as written (README: only a value
        // that is not a positive number is ignored): every check is cut at
        // once, and the scrape is still answered, at once.
        let t = Instant::now();
        let (status, body) = get(exp.addr, "/metrics", Some("1e-9")).await;
        assert_eq!(status, 200, "{body}");
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        assert_eq!(
            sample(&body, "reachability_service_up", &[("service", "good")]),
            Some(0.0),
            "{body}"
        );
        assert_eq!(
            sample(
                &body,
                "reachability_failure_info",
                &[
                    ("service", "good"),
                    ("check", "tls"),
                    ("reason", "generic_timeout_error")
                ]
            ),
            Some(1.0),
            "{body}"
        );
        assert_eq!(get(exp.addr, "/-/healthy", None).await.0, 200);
        assert_eq!(get(exp.addr, "/-/ready", None).await.0, 200);
        let (status, page) = get(exp.addr, "/", None).await;
        assert_eq!(status, 200);
        assert!(page.contains("<h2 id=\"service-good\">good"), "{page}");
        exp.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_bad_reload_keeps_the_running_config() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let first = closed_port().await;
        let second = closed_port().await;
        let exp = Exporter::start(
            dir.path(),
            &format!("services:\n  one:\n    tcp: [\"{first}\"]\n"),
        )
        .await;

        std::fs::write(
            &exp.config_file,
            "services:\n  one:\n    tcp: [\"no-port\"]\n",
        )
        .unwrap();
        let (status, body) = request(exp.addr, "POST", "/-/reload", &[]).await;
        assert_eq!(status, 500, "{body}");
        assert!(
            body.contains("config.yaml:3:11: services.one.tcp[0]: invalid address \"no-port\""),
            "{body}"
        );
        let (_, m) = get(exp.addr, "/metrics", None).await;
        assert_eq!(
            sample(
                &m,
                "reachability_exporter_config_last_reload_successful",
                &[]
            ),
            Some(0.0)
        );
        assert_eq!(
            sample(
                &m,
                "reachability_tcp_connect_success",
                &[("service", "one"), ("target", &first.to_string())]
            ),
            Some(0.0),
            "{m}"
        );

        std::fs::write(
            &exp.config_file,
            format!("services:\n  two:\n    tcp: [\"{second}\"]\n"),
        )
        .unwrap();
        let (status, _) = request(exp.addr, "POST", "/-/reload", &[]).await;
        assert_eq!(status, 200);
        let (_, m) = get(exp.addr, "/metrics", None).await;
        assert_eq!(
            sample(
                &m,
                "reachability_exporter_config_last_reload_successful",
                &[]
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &m,
                "reachability_tcp_connect_success",
                &[("service", "one")]
            ),
            None
        );
        assert_eq!(
            sample(
                &m,
                "reachability_tcp_connect_success",
                &[("service", "two")]
            ),
            Some(0.0)
        );
        exp.stop().await;
    })
    .await;
}

#[tokio::test]
async fn min_interval_serves_scrapes_from_the_last_round() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let closed = closed_port().await;
        let exp = Exporter::start(
            dir.path(),
            &format!("min_interval: 1m\nservices:\n  s:\n    tcp: [\"{closed}\"]\n"),
        )
        .await;
        for scrapes in 1..=3 {
            let (_, body) = get(exp.addr, "/metrics", None).await;
            assert_eq!(
                sample(&body, "reachability_exporter_rounds_total", &[]),
                Some(1.0),
                "{body}"
            );
            assert_eq!(
                sample(&body, "reachability_exporter_scrapes_total", &[]),
                Some(scrapes as f64)
            );
            assert_eq!(
                sample(
                    &body,
                    "reachability_tcp_connect_success",
                    &[("service", "s")]
                ),
                Some(0.0)
            );
        }
        // A reload starts afresh: the cached round belongs to the old config.
        let other = closed_port().await;
        std::fs::write(
            &exp.config_file,
            format!("min_interval: 1m\nservices:\n  t:\n    tcp: [\"{other}\"]\n"),
        )
        .unwrap();
        assert_eq!(request(exp.addr, "POST", "/-/reload", &[]).await.0, 200);
        let (_, body) = get(exp.addr, "/metrics", None).await;
        assert_eq!(
            sample(&body, "reachability_exporter_rounds_total", &[]),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &body,
                "reachability_tcp_connect_success",
                &[("service", "t")]
            ),
            Some(0.0)
        );
        exp.stop().await;
    })
    .await;
}

#[tokio::test]
async fn status_page_shows_the_latest_round() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let closed = closed_port().await;
        let stall = bad_tls_server(Misbehaviour::Stall).await;
        let http = http_server(None).await;
        let yaml = format!(
            "services:\n  web:\n    tcp: [\"{closed}\"]\n    http: [\"http://{closed}/?a=<b>&c\"]\n  slow:\n    timeout: 1500ms\n    tls: [{{ target: \"{stall}\", sni: stall.test }}]\n  shop:\n    http: [\"http://{http}/unavailable\", \"http://{http}/ok\"]\n"
        );
        let web = reachability_exporter::server::Web {
            telemetry_path: "/m".into(),
            ..Default::default()
        };
        let exp = Exporter::start_with(dir.path(), &yaml, web).await;
        // No round yet: the page starts one and waits for it, as a scrape
        // would (the stalled TLS check is cut at 1.5 s).
        let (status, head, page) = request_full(exp.addr, "GET", "/", &[]).await;
        assert_eq!(status, 200);
        let head = head.to_ascii_lowercase();
        assert!(head.contains("content-security-policy: default-src 'none'; style-src 'self'"), "{head}");
        assert!(page.contains("<link rel=\"stylesheet\" href=\"/status.css\">"), "{page}");
        assert!(page.contains("<meta http-equiv=\"refresh\" content=\"30\">"), "{page}");
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("running"), "{page}");
        // The Metrics link follows --web.telemetry-path.
        assert!(page.contains("<a href=\"/m\">Metrics</a>"), "{page}");
        assert!(
            page.contains(&format!("<td>http://{closed}/?a=&lt;b&gt;&amp;c</td>")),
            "config text is escaped: {page}"
        );
        // The summary opens the page: one row per service, linking to it.
        let summary = &page[page.find("<table class=\"summary\">").expect("a summary")..];
        let summary = &summary[..summary.find("</table>").unwrap()];
        assert!(summary.contains("<tr class=\"fail\"><td><a href=\"#service-web\">web</a></td><td><span class=\"down\">down</span></td><td class=\"num\">2 of 2</td>"), "{summary}");
        assert!(summary.contains("<a href=\"#service-slow\">slow</a></td><td><span class=\"down\">down</span></td><td class=\"num\">1 of 1</td>"), "{summary}");
        assert!(summary.contains("<a href=\"#service-shop\">shop</a></td><td><span class=\"down\">down</span></td><td class=\"num\">1 of 2</td>"), "{summary}");
        assert!(page.find("<table class=\"summary\">") < page.find("<h2 id=\"service-web\">"), "{page}");
        // Red rows with stage and reason, and the status an HTTP check got.
        assert!(
            page.contains("<tr class=\"fail\"><td>tcp</td><td>")
                && page.contains("<code>connect</code> / <code>connection_refused</code>"),
            "{page}"
        );
        assert!(page.contains("<code>tls_handshake</code> / <code>generic_timeout_error</code>"), "{page}");
        assert!(page.contains("<code>http</code> / <code>http_unexpected_status</code> (503)"), "{page}");
        assert!(page.contains("<td class=\"ok\">ok (200)</td>"), "{page}");
        // Within the refresh interval, a second view shows the same round.
        let (_, page2) = get(exp.addr, "/", None).await;
        assert!(page2.contains("<h2 id=\"service-shop\">"), "{page2}");
        let (_, m) = get(exp.addr, "/m", None).await;
        assert_eq!(sample(&m, "reachability_exporter_rounds_total", &[]), Some(2.0), "two views and a scrape: two rounds. {m}");

        // A round of one service (/probe?service=) newer than the page's
        // shows for that service, saying when it ran.
        let (status, _) = get(exp.addr, "/probe?service=shop", None).await;
        assert_eq!(status, 200);
        let (_, page) = get(exp.addr, "/", None).await;
        assert!(page.contains("<h2 id=\"service-shop\">shop · <span class=\"down\">down</span> <small>checked 0 s ago</small></h2>"), "{page}");
        assert!(!page.contains("<h2 id=\"service-web\">web · <span class=\"down\">down</span> <small>"), "{page}");

        // After a reload the page follows at once: the removed services
        // go, the new one shows.
        std::fs::write(&exp.config_file, format!("services:\n  shop:\n    http: [\"http://{http}/ok\"]\n")).unwrap();
        exp.engine.reload().unwrap();
        let (_, page) = get(exp.addr, "/", None).await;
        assert!(page.contains("<a href=\"#service-shop\">shop</a></td><td><span class=\"up\">up</span></td><td class=\"num\">0 of 1</td>"), "{page}");
        assert!(!page.contains("service-web") && !page.contains("service-slow"), "{page}");

        let (status, head, css) = request_full(exp.addr, "GET", "/status.css", &[]).await;
        assert_eq!(status, 200);
        assert!(head.to_ascii_lowercase().contains("content-type: text/css"), "{head}");
        assert!(css.contains(".fail{"), "{css}");
        exp.stop().await;
    })
    .await;
}

/// The page shows nothing older than its refresh interval: a view after it
/// starts a round (nothing else scrapes here).
#[tokio::test]
async fn status_page_stays_fresh_without_scrapes() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let closed = closed_port().await;
        let web = reachability_exporter::server::Web {
            status_refresh: 1,
            ..Default::default()
        };
        let yaml = format!("min_interval: 0s\nservices:\n  web:\n    tcp: [\"{closed}\"]\n");
        let exp = Exporter::start_with(dir.path(), &yaml, web).await;
        let rounds = || async {
            let (_, m) = get(exp.addr, "/metrics", None).await;
            sample(&m, "reachability_exporter_rounds_total", &[]).unwrap()
        };
        get(exp.addr, "/", None).await;
        get(exp.addr, "/", None).await;
        // The two views shared one round; this scrape (min_interval 0s)
        // starts its own.
        assert_eq!(rounds().await, 2.0);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (_, page) = get(exp.addr, "/", None).await;
        assert!(page.contains("(0 s ago)"), "{page}");
        assert_eq!(
            rounds().await,
            4.0,
            "the view after 1 s started a round, then the scrape"
        );
        exp.stop().await;
    })
    .await;
}

#[tokio::test]
async fn ad_hoc_probes_of_allowed_targets_only() {
    within(30, async {
        let pki = Pki::new();
        let dns = DnsServer::start(&pki).await;
        let (tls, tls_seen) = tls_server_counted(pki.server_config(&["ok.test"], CertKind::Good, &[])).await;
        // Loopback, but not in probe_allow.
        let (outside, outside_seen) =
            tls_server_counted_at("127.0.0.2:0", pki.server_config(&["ok.test"], CertKind::Good, &[])).await;
        let closed = closed_port().await;
        let http = http_server(None).await;
        let sink = upload_server(None).await;
        let quic = quic_server("127.0.0.1:0", pki.server_config(&["ok.test"], CertKind::Good, &[b"h3"])).await;
        let yaml = format!(
            r#"allowed_ranges: [127.0.0.0/8]
resolvers:
  system: {{ udp: "{udp}" }}
probe_allow: ["127.0.0.1", "ok.test", "*.test:{port}"]
modules:
  tcp_any: {{ kind: tcp, timeout: 2s }}
  tls_test: {{ kind: tls, ca_file: "{ca}" }}
  dns_a: {{ kind: dns }}
  dl: {{ kind: download, max_bytes: 32KiB, stall_after: 1s }}
  h3: {{ kind: quic, sni: ok.test, ca_file: "{ca}" }}
  bad_dl: {{ kind: download, min_rate: 1GiB }}
  up: {{ kind: upload, bytes: 40KiB }}
services:
  s:
    tcp: ["{closed}"]
"#,
            udp = dns.udp,
            port = tls.port(),
            ca = pki.ca_pem.display(),
        );
        let exp = Exporter::start(pki.dir.path(), &yaml).await;
        let probe = |q: String| get(exp.addr, Box::leak(format!("/probe?{q}").into_boxed_str()), Some("5"));

        // An allowed address: the check's series alone, from a fresh registry.
        let (status, body) = probe(format!("target={tls}&module=tcp_any")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(tls_seen.accepted.get(), 1, "the allowed probe connected once");
        let t = tls.to_string();
        assert_eq!(sample(&body, "reachability_tcp_connect_success", &[("service", "tcp_any"), ("target", &t)]), Some(1.0), "{body}");
        // Of the exporter's own series only the scrape's duration.
        let own: Vec<&str> = body.lines().filter(|l| l.starts_with("reachability_exporter_")).collect();
        assert_eq!(own.len(), 1, "{body}");
        assert!(own[0].starts_with("reachability_exporter_scrape_duration_seconds "), "{body}");
        assert!(!body.contains("service=\"s\""), "{body}");
        // By name, with the module's options (the TLS module's CA).
        let (status, body) = probe(format!("target=ok.test:{}&module=tls_test", tls.port())).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(sample(&body, "reachability_tls_handshake_success", &[("service", "tls_test"), ("sni", "ok.test")]), Some(1.0), "{body}");
        let (_, body) = probe("target=ok.test&module=dns_a".into()).await;
        assert_eq!(sample(&body, "reachability_dns_success", &[("service", "dns_a"), ("target", "ok.test")]), Some(1.0), "{body}");
        // A download module, and a QUIC module with its own CA and SNI.
        let (_, body) = probe(format!("target=http://{http}/fast&module=dl")).await;
        assert_eq!(sample(&body, "reachability_download_bytes", &[("service", "dl")]), Some(32768.0), "{body}");
        // An upload module: its size from the module.
        let (_, body) = probe(format!("target=http://{sink}/upload&module=up")).await;
        assert_eq!(sample(&body, "reachability_upload_success", &[("service", "up")]), Some(1.0), "{body}");
        assert_eq!(sample(&body, "reachability_upload_bytes", &[("service", "up")]), Some(40960.0), "{body}");
        let (_, body) = probe(format!("target={quic}&module=h3")).await;
        assert_eq!(sample(&body, "reachability_quic_handshake_success", &[("service", "h3"), ("sni", "ok.test")]), Some(1.0), "{body}");
        // /probe renders no verdicts: they need a service's paired checks.
        // The download itself is there (all 64 KiB, under its 1 GiB/s floor).
        let (status, body) = probe(format!("target=http://{http}/trickle&module=bad_dl")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(sample(&body, "reachability_download_bytes", &[("service", "bad_dl")]), Some(65536.0), "{body}");
        assert!(!body.contains("reachability_blocking_suspected"), "{body}");
        // A failure carries its stage and reason, as configured checks do.
        let (_, body) = probe(format!("target={closed}&module=tcp_any")).await;
        assert_eq!(sample(&body, "reachability_failure_info", &[("service", "tcp_any"), ("stage", "connect"), ("reason", "connection_refused")]), Some(1.0), "{body}");
        // An allowed name that resolves to a private address is refused at
        // resolve: the bogon rule stops DNS rebinding to the inside.
        let (_, body) = probe(format!("target=bogon.test:{}&module=tcp_any", tls.port())).await;
        assert_eq!(sample(&body, "reachability_failure_info", &[("service", "tcp_any"), ("stage", "resolve"), ("reason", "dns_bogon_error")]), Some(1.0), "{body}");

        // Not allowed: 403 before any packet is sent — no connection to the
        // loopback server outside probe_allow, no query to the resolver
        // (which evil.example and other.test would go through).
        let queries = dns.queries.get();
        for (q, want) in [
            (format!("target={outside}&module=tcp_any"), format!("target \"{outside}\" is not allowed by probe_allow")),
            (format!("target={outside}&module=tls_test"), format!("target \"{outside}\" is not allowed by probe_allow")),
            ("target=evil.example:443&module=tcp_any".into(), "target \"evil.example:443\" is not allowed by probe_allow".into()),
            ("target=other.test&module=dns_a".into(), "target \"other.test\" is not allowed by probe_allow".into()),
        ] {
            let (status, body) = probe(q.clone()).await;
            assert_eq!((status, body.trim()), (403, want.as_str()), "{q}");
        }
        assert_eq!(outside_seen.accepted.get(), 0, "a refused probe connected");
        assert_eq!(dns.queries.get(), queries, "a refused probe sent a DNS query");
        // Malformed requests: 400 with a message.
        for (q, want) in [
            ("target=127.0.0.1:1&module=nope", "unknown module \"nope\""),
            ("target=no-port&module=tcp_any", "target for module \"tcp_any\": invalid address \"no-port\": expected host:port, such as example.com:443"),
            ("target=127.0.0.1:1", "/probe takes either service=NAME, or both target= and module="),
            ("service=s&target=127.0.0.1:1&module=tcp_any", "/probe takes either service=NAME, or both target= and module="),
        ] {
            let (status, body) = probe(q.into()).await;
            assert_eq!((status, body.trim()), (400, want), "{q}");
        }
        exp.stop().await;
    })
    .await;
}
