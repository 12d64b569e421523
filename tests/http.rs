//! HTTP checks against in-process HTTP and HTTPS servers, and the stage of
//! each failure.

mod support;

use std::time::Duration;

use reachability_exporter::probe::{Facts, Outcome};
use reachability_exporter::reason::{Reason, Stage};
use support::*;

fn status(o: &Outcome) -> Option<u16> {
    match o.facts {
        Facts::Http { status } => Some(status),
        _ => None,
    }
}

#[tokio::test]
async fn statuses_redirects_and_resets() {
    within(20, async {
        let dir = tempfile::tempdir().unwrap();
        let h = http_server(None).await;
        let yaml = format!(
            "services:\n  s:\n    timeout: 2s\n    http:\n\
             \x20     - http://{h}/ok\n\
             \x20     - http://{h}/redirect\n\
             \x20     - {{ url: \"http://{h}/redirect?again\", max_redirects: 1 }}\n\
             \x20     - http://{h}/unavailable\n\
             \x20     - {{ url: \"http://{h}/unavailable?accepted\", status: [200, 503] }}\n\
             \x20     - {{ url: \"http://{h}/redirect?strict\", status: [\"200-299\"] }}\n\
             \x20     - http://{h}/reset\n"
        );
        let o = run_checks(&yaml, dir.path()).await;
        assert!(o[0].is_ok(), "{:?}", o[0]);
        assert_eq!(status(&o[0]), Some(200));
        assert!(o[0].duration.unwrap() < Duration::from_secs(1));
        // A redirect is the answer by default (a block page is data)...
        assert!(o[1].is_ok(), "{:?}", o[1]);
        assert_eq!(status(&o[1]), Some(302));
        // ...or is followed when allowed.
        assert!(o[2].is_ok(), "{:?}", o[2]);
        assert_eq!(status(&o[2]), Some(200));
        assert_eq!(
            o[3].failure,
            Some((Stage::Http, Reason::HttpUnexpectedStatus))
        );
        assert_eq!(
            status(&o[3]),
            Some(503),
            "the status is reported with the failure"
        );
        assert!(o[3].duration.is_some());
        assert!(o[4].is_ok(), "{:?}", o[4]);
        assert_eq!(
            o[5].failure,
            Some((Stage::Http, Reason::HttpUnexpectedStatus))
        );
        assert_eq!(status(&o[5]), Some(302));
        assert_eq!(o[6].failure, Some((Stage::Http, Reason::ConnectionReset)));
    })
    .await;
}

#[tokio::test]
async fn https_and_the_stage_of_each_failure() {
    within(20, async {
        let pki = Pki::new();
        let dns = DnsServer::start(&pki).await;
        let ca = pki.ca_pem.display();
        let good = http_server(Some(pki.server_config(&["ok.test"], CertKind::Good, &[b"http/1.1"]))).await;
        let stall = bad_tls_server(Misbehaviour::Stall).await;
        let reset = bad_tls_server(Misbehaviour::Reset).await;
        let closed = closed_port().await;
        let p = good.port();
        let yaml = format!(
            "allowed_ranges: [127.0.0.0/8]\nresolvers:\n  system: {{ udp: \"{udp}\" }}\nservices:\n  s:\n    timeout: 700ms\n    http:\n\
             \x20     - {{ url: \"https://ok.test:{p}/ok\", ca_file: \"{ca}\" }}\n\
             \x20     - https://ok.test:{p}/ok?public-roots\n\
             \x20     - {{ url: \"https://nx.test:{p}/ok\", ca_file: \"{ca}\" }}\n\
             \x20     - http://{closed}/\n\
             \x20     - {{ url: \"https://{stall}/\", insecure: true }}\n\
             \x20     - {{ url: \"https://{reset}/\", insecure: true }}\n\
             \x20     - {{ url: \"https://ok.test:{p}/stall\", ca_file: \"{ca}\" }}\n",
            udp = dns.udp,
        );
        let o = run_checks(&yaml, pki.dir.path()).await;
        assert!(o[0].is_ok(), "{:?}", o[0]);
        assert_eq!(status(&o[0]), Some(200));
        assert_eq!(o[1].failure, Some((Stage::TlsHandshake, Reason::SslUnknownAuthority)));
        assert_eq!(o[2].failure, Some((Stage::Resolve, Reason::DnsNxdomain)));
        assert_eq!(o[3].failure, Some((Stage::Connect, Reason::ConnectionRefused)));
        // A ClientHello that gets no answer times out *at the handshake*.
        assert_eq!(o[4].failure, Some((Stage::TlsHandshake, Reason::GenericTimeout)));
        assert_eq!(o[5].failure, Some((Stage::TlsHandshake, Reason::ConnectionReset)));
        // Headers, then silence: a timeout at http.
        assert_eq!(o[6].failure, Some((Stage::Http, Reason::GenericTimeout)));
    })
    .await;
}

#[tokio::test]
async fn the_body_read_is_bounded() {
    within(20, async {
        let dir = tempfile::tempdir().unwrap();
        let h = http_server(None).await;
        // 64 KiB arrive, then the server stalls: a 1 KiB bound is met, a
        // 1 MiB bound waits into the timeout.
        let yaml = format!(
            "services:\n  s:\n    timeout: 700ms\n    http:\n\
             \x20     - {{ url: \"http://{h}/64k\", max_body: 1KiB }}\n\
             \x20     - {{ url: \"http://{h}/64k?all\", max_body: 1MiB }}\n"
        );
        let o = run_checks(&yaml, dir.path()).await;
        assert!(o[0].is_ok(), "{:?}", o[0]);
        assert!(o[0].duration.unwrap() < Duration::from_millis(500));
        assert_eq!(o[1].failure, Some((Stage::Http, Reason::GenericTimeout)));
    })
    .await;
}

#[tokio::test]
async fn http_metrics_end_to_end() {
    within(20, async {
        let dir = tempfile::tempdir().unwrap();
        let h = http_server(None).await;
        let ok = format!("http://{h}/ok");
        let down = format!("http://{h}/unavailable");
        let yaml = format!("services:\n  web:\n    http: [\"{ok}\", \"{down}\"]\n");
        let exp = Exporter::start(dir.path(), &yaml).await;
        let (status, body) = get(exp.addr, "/metrics", Some("5")).await;
        assert_eq!(status, 200);
        fn t(u: &str) -> [(&'static str, &str); 2] {
            [("service", "web"), ("target", u)]
        }
        assert_eq!(
            sample(&body, "reachability_http_success", &t(&ok)),
            Some(1.0),
            "{body}"
        );
        assert_eq!(
            sample(&body, "reachability_http_status_code", &t(&ok)),
            Some(200.0)
        );
        assert!(sample(&body, "reachability_http_duration_seconds", &t(&ok)).unwrap() > 0.0);
        assert_eq!(
            sample(&body, "reachability_http_success", &t(&down)),
            Some(0.0)
        );
        assert_eq!(
            sample(&body, "reachability_http_status_code", &t(&down)),
            Some(503.0)
        );
        let fail = [
            ("target", down.as_str()),
            ("check", "http"),
            ("stage", "http"),
            ("reason", "http_unexpected_status"),
        ];
        assert_eq!(
            sample(&body, "reachability_failure_info", &fail),
            Some(1.0),
            "{body}"
        );
        exp.stop().await;
    })
    .await;
}
