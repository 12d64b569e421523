//! Censor location (`locate:`) end to end on loopback, where no router lies
//! between client and server: a search starts in the background when the
//! `sni_filtered` verdict is 1, a scrape never waits for it, the next
//! scrape shows what it found, and no second search starts within
//! `every`. The search logic itself is tested against a fake path in
//! `src/locate.rs`; routers at given hops, in the interop suite; the
//! config's errors, in the invalid-config corpus (`locate-*`).

mod support;

use std::time::{Duration, Instant};

use support::*;

#[tokio::test]
async fn a_blocked_target_is_searched_in_the_background_once_per_every() {
    within(40, async {
        let pki = Pki::new();
        let ca = pki.ca_pem.display().to_string();
        let server = pki.server_config(&["ok.test", "blocked.test"], CertKind::Good, &[]);
        let (relay, resets) = sni_filtering_server_counted(server, "blocked.test").await;
        let tls = |sni: &str, control: &str| {
            format!("[{{ target: \"{relay}\", sni: {sni}, ca_file: \"{ca}\", control_sni: {control} }}]")
        };
        let config = format!(
            "services:\n  blocked:\n    locate: {{ every: 1h }}\n    tls: {}\n  clean:\n    locate: {{ every: 1h }}\n    tls: {}\n",
            tls("blocked.test", "ok.test"),
            tls("ok.test", "neutral.test"),
        );
        let exporter = Exporter::start(pki.dir.path(), &config).await;
        let t = relay.to_string();
        let hop = |body: &str| sample(body, "reachability_censor_hop", &[("service", "blocked"), ("target", &t), ("kind", "sni_filtered")]);

        let started = Instant::now();
        let (_, body) = get(exporter.addr, "/metrics", Some("4")).await;
        // The scrape did not wait for the search it started.
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(verdict(&body, "blocked", &t, "sni_filtered"), Some(1.0));
        assert_eq!(hop(&body), None, "{body}");

        // On loopback the ClientHello crosses no router: with TTL 1 the
        // neutral one gets through, the blocked one draws the reset. The
        // blocking is at the server's own hop.
        let mut body = String::new();
        let mut scrapes = 1;
        let deadline = Instant::now() + Duration::from_secs(15);
        while hop(&body).is_none() {
            assert!(Instant::now() < deadline, "no search ended: {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
            body = get(exporter.addr, "/metrics", Some("4")).await.1;
            scrapes += 1;
        }
        assert_eq!(hop(&body), Some(1.0));
        assert_eq!(sample(&body, "reachability_censor_path_hops", &[("service", "blocked"), ("target", &t)]), Some(1.0));
        let ended = sample(&body, "reachability_censor_located_timestamp_seconds", &[("service", "blocked"), ("kind", "sni_filtered")]).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!((now - 20.0..=now).contains(&ended), "{ended} vs {now}");
        // No router answered time exceeded: no address is claimed.
        assert!(!body.contains("reachability_censor_hop_info"), "{body}");
        // The clean service has no verdict 1: no search, no series.
        let clean = |l: &str| l.starts_with("reachability_censor") && l.contains("service=\"clean\"");
        assert!(!body.lines().any(clean), "{body}");

        // The status page says it beside the verdict, in the summary and
        // in the service's section.
        let (_, page) = get(exporter.addr, "/", None).await;
        let beside = format!("sni_filtered</strong> {t} — censor at hop 1 of 1");
        assert_eq!(page.matches(&beside).count(), 2, "{page}");
        // The search sent blocked ClientHellos of its own (the scrapes so
        // far sent one each).
        let searched = resets.get();
        assert!(searched > scrapes, "{searched} resets for {scrapes} scrapes");
        // Within `every`, scrapes start no other search: each adds only its
        // check's own blocked handshake.
        for _ in 0..3 {
            get(exporter.addr, "/metrics", Some("4")).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(resets.get(), searched + 3);
        exporter.stop().await;
    })
    .await;
}

/// `check` searches for the censor of each suspected verdict whose check
/// has `locate:`, and shows where it sits beside the verdict, in the table
/// and in the JSON; a clean service's verdict is not suspected and gets no
/// search.
#[tokio::test]
async fn check_shows_where_the_censor_sits_beside_the_verdict() {
    within(60, async {
        let pki = Pki::new();
        let ca = pki.ca_pem.display().to_string();
        let server = pki.server_config(&["ok.test", "blocked.test"], CertKind::Good, &[]);
        let relay = sni_filtering_server(server, "blocked.test").await;
        let tls = |sni: &str, control: &str| {
            format!("[{{ target: \"{relay}\", sni: {sni}, ca_file: \"{ca}\", control_sni: {control} }}]")
        };
        let file = pki.dir.path().join("config.yaml");
        let config = format!(
            "services:\n  blocked:\n    locate: {{ every: 1h }}\n    tls: {}\n  clean:\n    locate: {{ every: 1h }}\n    tls: {}\n",
            tls("blocked.test", "ok.test"),
            tls("ok.test", "neutral.test"),
        );
        std::fs::write(&file, config).unwrap();
        let run = |output: &'static str| {
            let file = file.clone();
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_reachability_exporter"))
                    .args(["check", "--config.file", file.to_str().unwrap(), "--output", output])
                    .output()
                    .unwrap()
            })
        };
        let t = relay.to_string();
        let out = run("table").await.unwrap();
        // Exit codes are the checks': one failed.
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(table.contains(&format!("\nVERDICT       SERVICE  TARGET{}  RESULT\n", " ".repeat(t.len() - 6))), "{table}");
        assert!(table.contains(&format!("\nsni_filtered  blocked  {t}  suspected — censor at hop 1 of 1\n")), "{table}");
        assert!(table.contains(&format!("\nsni_filtered  clean    {t}  not suspected\n")), "{table}");
        // Then what the suspected verdict rests on; the other's is in the JSON.
        assert!(
            table.ends_with(&format!(
                "2 verdicts: 1 suspected, 1 not suspected, 0 not judged\n\n\
                 sni_filtered blocked {t}:\n  \
                 tls {t} (SNI blocked.test): failed at tls_handshake (connection_reset)\n  \
                 neutral SNI ok.test, same address: the server answered\n"
            )),
            "{table}"
        );

        let out = run("json").await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let expected = serde_json::json!([
            {
                "service": "blocked", "kind": "sni_filtered", "target": t, "suspected": true,
                "censor": { "hop": 1, "path_hops": 1, "routers": [], "text": "censor at hop 1 of 1" },
                "evidence": [
                    format!("tls {t} (SNI blocked.test): failed at tls_handshake (connection_reset)"),
                    "neutral SNI ok.test, same address: the server answered"
                ]
            },
            {
                "service": "clean", "kind": "sni_filtered", "target": t, "suspected": false,
                "evidence": [
                    format!("tls {t} (SNI ok.test): ok (TLS 1.3)"),
                    "neutral SNI neutral.test, same address: not needed (the handshake passed)"
                ]
            }
        ]);
        // The neutral handshake runs beside a passing one and may have
        // finished first: either is true.
        let mut got = v["verdicts"].clone();
        let raced = "neutral SNI neutral.test, same address: the server answered";
        if got[1]["evidence"][1] == raced {
            got[1]["evidence"][1] = expected[1]["evidence"][1].clone();
        }
        assert_eq!(got, expected, "{v}");
        assert_eq!(v["checks"].as_array().unwrap().len(), 2, "{v}");
    })
    .await;
}
