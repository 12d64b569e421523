//! The network regime: domestic and foreign references judged each round,
//! exported as a state set; while the network is not open, no blocking
//! verdict is judged, and the status page says why.

mod support;

use support::*;

/// A config whose references are `domestic` and `foreign` (TLS servers
/// for ok.test, or closed ports), with one service behind an SNI filter.
fn config(ca: &str, filtered: std::net::SocketAddr, domestic: &str, foreign: &str) -> String {
    format!(
        "allowed_ranges: [127.0.0.0/8]\nregime:\n  domestic: [{{ target: \"{domestic}\", sni: ok.test, ca_file: \"{ca}\" }}]\n  foreign: [{{ target: \"{foreign}\", sni: ok.test, ca_file: \"{ca}\" }}]\nservices:\n  news:\n    tls: [{{ target: \"{filtered}\", sni: blocked.test, ca_file: \"{ca}\", control_sni: neutral.test }}]\n"
    )
}

/// A reference that answers (a TLS server for ok.test) and one that does
/// not (a closed port).
async fn references(pki: &Pki) -> (std::net::SocketAddr, std::net::SocketAddr) {
    let good = tls_server_at(
        "127.0.0.1:0",
        pki.server_config(&["ok.test"], CertKind::Good, &[]),
    )
    .await;
    let good = std::net::SocketAddr::from(([127, 0, 0, 1], good.port()));
    (good, closed_port().await)
}

fn regime_of(body: &str) -> Vec<(&'static str, Option<f64>)> {
    ["open", "allowlist", "offline"]
        .into_iter()
        .map(|r| {
            (
                r,
                sample(body, "reachability_network_regime", &[("regime", r)]),
            )
        })
        .collect()
}

#[tokio::test]
async fn open_allowlist_and_offline() {
    within(30, async {
        let pki = Pki::new();
        let ca = pki.ca_pem.display().to_string();
        let (good, closed) = references(&pki).await;
        let filtered = sni_filtering_server(
            pki.server_config(&["ok.test", "blocked.test"], CertKind::Good, &[]),
            "blocked.test",
        )
        .await;
        let cases = [
            (good, good, "open"),
            (good, closed, "allowlist"),
            (closed, closed, "offline"),
        ];
        for (domestic, foreign, want) in cases {
            let yaml = config(&ca, filtered, &domestic.to_string(), &foreign.to_string());
            let body = scrape(&yaml, pki.dir.path()).await;
            for (r, v) in regime_of(&body) {
                assert_eq!(
                    v,
                    Some(if r == want { 1.0 } else { 0.0 }),
                    "{want}: {r}\n{body}"
                );
            }
            // The service still reports; its verdict only on an open network.
            let t = filtered.to_string();
            assert_eq!(
                sample(&body, "reachability_service_up", &[("service", "news")]),
                Some(0.0),
                "{body}"
            );
            let sni = verdict(&body, "news", &t, "sni_filtered");
            if want == "open" {
                assert_eq!(sni, Some(1.0), "{body}");
            } else {
                assert_eq!(
                    sni, None,
                    "{want}: nothing is blamed on one service\n{body}"
                );
                assert!(!body.contains("reachability_blocking_suspected"), "{body}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn no_references_no_regime_and_the_status_page_says_it() {
    within(30, async {
        let pki = Pki::new();
        let ca = pki.ca_pem.display().to_string();
        let (good, closed) = references(&pki).await;
        let body = scrape(&format!("services:\n  s:\n    tcp: [\"{closed}\"]\n"), pki.dir.path()).await;
        assert!(!body.contains("reachability_network_regime"), "{body}");

        let yaml = config(&ca, closed, &good.to_string(), &closed.to_string());
        let exp = Exporter::start(pki.dir.path(), &yaml).await;
        let (_, page) = get(exp.addr, "/", None).await;
        assert!(
            page.contains("<p class=\"suspected\" id=\"regime\">Network: <strong>allowlist</strong> — in allowlist mode"),
            "{page}"
        );
        assert!(page.contains("<td>not judged: the network is restricted</td>"), "{page}");
        exp.stop().await;
    })
    .await;
}

/// `check` says what the references found, in its table and its JSON.
#[tokio::test]
async fn check_names_the_regime() {
    within(30, async {
        let pki = Pki::new();
        let ca = pki.ca_pem.display().to_string();
        let (good, closed) = references(&pki).await;
        let file = pki.dir.path().join("config.yaml");
        std::fs::write(&file, config(&ca, closed, &good.to_string(), &closed.to_string())).unwrap();
        let run = |output: &'static str| {
            let file = file.clone();
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_reachability_exporter"))
                    .args(["check", "--config.file", file.to_str().unwrap(), "--output", output])
                    .output()
                    .unwrap()
            })
        };
        let out = run("table").await.unwrap();
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(
            table.ends_with("network: allowlist (every foreign reference failed, a domestic one answered: nothing here can be blamed on one service)\n"),
            "{table}"
        );
        // In allowlist mode no verdict is judged, and both say so.
        let filtered = closed.to_string();
        let row = format!("sni_filtered  news     {filtered}  not judged\n");
        assert!(table.contains(&row), "{table}");
        assert!(table.contains("1 verdict: 0 suspected, 0 not suspected, 1 not judged\n"), "{table}");
        let out = run("json").await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["network_regime"], "allowlist", "{v}");
        let expected = serde_json::json!([
            {
                "service": "news", "kind": "sni_filtered", "target": filtered, "suspected": null,
                "evidence": [
                    format!("tls {filtered} (SNI blocked.test): failed at connect (connection_refused)"),
                    "neutral SNI neutral.test, same address: no answer"
                ]
            }
        ]);
        assert_eq!(v["verdicts"], expected, "{v}");
    })
    .await;
}
