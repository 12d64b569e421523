//! `test_lists:`: each distinct host of a Citizen Lab–format CSV list
//! becomes a service (DNS through each resolver, TLS per host:port, HTTP per
//! URL) with `reachability_service_info{category}`; checked against real
//! servers on loopback.

mod support;

use std::path::Path;

use reachability_exporter::config::{Check, Config};

use support::{CertKind, DnsServer, Exporter, Pki, get, http_server, sample, within};

const HEADER: &str = "url,category_code,category_description,date_added,source,notes\n";

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn kinds(c: &Config, service: &str) -> Vec<&'static str> {
    c.services
        .iter()
        .find(|s| s.name == service)
        .unwrap_or_else(|| panic!("no service {service}"))
        .checks
        .iter()
        .map(|c| c.kind().as_str())
        .collect()
}

/// A host named twice is one service: one DNS check per resolver, one TLS
/// check per https port, one HTTP check per distinct URL; its category is
/// the first row's. http:// URLs get no TLS check; an IPv4 host no DNS.
#[test]
fn hosts_become_services() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "news.csv",
        &format!(
            "{HEADER}https://A.example/,NEWS,News Media,2026-01-01,t,\n\
             https://a.example/other,HUMR,Human Rights Issues,2026-01-01,t,\"second, same host\"\n\
             https://a.example:8443/,NEWS,News Media,2026-01-01,t,\n\
             https://a.example/,NEWS,News Media,2026-01-01,t,repeated URL\n\
             http://b.example/,COMT,Communication Tools,2026-01-01,t,\n\
             \n\
             https://192.0.2.7/x,ANON,Anonymization,2026-01-01,t,\n"
        ),
    );
    write(
        dir.path(),
        "config.yaml",
        "resolvers:\n  cf: { udp: \"192.0.2.53\" }\nservices:\n  own:\n    tcp: [\"example.com:443\"]\n\
         test_lists:\n  - file: news.csv\n    resolvers: [system, cf]\n    timeout: 2s\n    control_sni: neutral.example\n",
    );
    let c = Config::load(&dir.path().join("config.yaml")).unwrap();
    let names: Vec<&str> = c.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["own", "a.example", "b.example", "192.0.2.7"]);
    assert_eq!(
        kinds(&c, "a.example"),
        ["dns", "dns", "tls", "http", "http", "tls", "http"]
    );
    assert_eq!(kinds(&c, "b.example"), ["dns", "dns", "http"]);
    assert_eq!(kinds(&c, "192.0.2.7"), ["tls", "http"]);
    let a = c.services.iter().find(|s| s.name == "a.example").unwrap();
    assert_eq!(a.category.as_deref(), Some("NEWS"));
    assert_eq!(c.services[0].category, None);
    for check in &a.checks {
        assert_eq!(check.timeout(), std::time::Duration::from_secs(2));
        match check {
            Check::Tls(t) => {
                assert_eq!(t.sni.as_deref(), Some("a.example"));
                assert_eq!(t.options.control_sni.as_deref(), Some("neutral.example"));
            }
            Check::Http(h) => assert!(h.options.accepts(399) && !h.options.accepts(400)),
            _ => {}
        }
    }
    // The services count toward max_concurrent_checks' floor.
    assert!(c.max_concurrent_checks >= 1 + 7 + 3 + 2);
}

/// A list's `insecure` reaches its TLS and HTTP checks; an IPv4 host's TLS
/// check connects to that address, a name's to the name.
#[test]
fn a_lists_trust_and_hosts_reach_its_checks() {
    use reachability_exporter::config::{Host, Trust};
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "l.csv",
        &format!(
            "{HEADER}https://192.0.2.7/,NEWS,News,2026-01-01,t,\nhttps://a.example/,NEWS,News,2026-01-01,t,\n"
        ),
    );
    write(
        dir.path(),
        "config.yaml",
        "test_lists:\n  - { file: l.csv, checks: [tls, http], insecure: true }\n",
    );
    let c = Config::load(&dir.path().join("config.yaml")).unwrap();
    let mut hosts = Vec::new();
    for s in &c.services {
        for check in &s.checks {
            match check {
                Check::Tls(t) => {
                    assert!(matches!(t.trust, Trust::Insecure), "{t:?}");
                    hosts.push(t.target.host.clone());
                }
                Check::Http(h) => assert!(matches!(h.trust, Trust::Insecure), "{h:?}"),
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(
        hosts,
        [
            Host::Ip("192.0.2.7".parse().unwrap()),
            Host::Name("a.example".to_string())
        ]
    );
}

/// `checks:` narrows what each URL gets.
#[test]
fn checks_narrow_the_kinds() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "l.csv",
        &format!("{HEADER}https://a.example/,NEWS,News,2026-01-01,t,\n"),
    );
    write(
        dir.path(),
        "config.yaml",
        "test_lists:\n  - { file: l.csv, checks: [tls] }\n",
    );
    let c = Config::load(&dir.path().join("config.yaml")).unwrap();
    assert_eq!(kinds(&c, "a.example"), ["tls"]);
}

/// A host named in two lists: the first row naming it gives its category,
/// and that row's list the options of all its checks, the second list's
/// URL included. The short form `- file.csv` is a list with defaults.
#[test]
fn the_first_row_of_a_host_decides() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "one.csv",
        &format!("{HEADER}https://d.example/,NEWS,News,2026-01-01,t,\n"),
    );
    write(
        dir.path(),
        "two.csv",
        &format!(
            "{HEADER}https://d.example/y,POLR,Political,2026-01-01,t,\nhttps://e.example/,POLR,Political,2026-01-01,t,\n"
        ),
    );
    write(
        dir.path(),
        "config.yaml",
        "test_lists:\n  - { file: one.csv, insecure: true, timeout: 2s, checks: [tls, http] }\n  - two.csv\n",
    );
    let c = Config::load(&dir.path().join("config.yaml")).unwrap();
    assert_eq!(kinds(&c, "d.example"), ["tls", "http", "http"]);
    let d = c.services.iter().find(|s| s.name == "d.example").unwrap();
    assert_eq!(d.category.as_deref(), Some("NEWS"));
    for check in &d.checks {
        assert_eq!(
            check.timeout(),
            std::time::Duration::from_secs(2),
            "{check:?}"
        );
        if let Check::Http(h) = check {
            assert!(
                matches!(
                    h.options.trust,
                    reachability_exporter::config::Trust::Insecure
                ),
                "{h:?}"
            );
        }
    }
    // The second list's own host gets the second list's defaults.
    assert_eq!(kinds(&c, "e.example"), ["dns", "tls", "http"]);
    assert_eq!(
        c.services
            .iter()
            .find(|s| s.name == "e.example")
            .unwrap()
            .checks[0]
            .timeout(),
        std::time::Duration::from_secs(5)
    );
}

/// The bundled example list loads, every row a host of its own but one.
#[test]
fn the_example_list_loads() {
    let dir = tempfile::tempdir().unwrap();
    let list = std::fs::canonicalize("lists/example.csv").unwrap();
    write(
        dir.path(),
        "config.yaml",
        &format!("test_lists:\n  - file: {}\n", list.display()),
    );
    let c = Config::load(&dir.path().join("config.yaml")).unwrap();
    let rows = std::fs::read_to_string(&list).unwrap().lines().count() - 1;
    assert_eq!(c.services.len(), rows - 1, "www.bbc.com is named twice");
    assert!(c.services.iter().all(|s| s.category.is_some()));
}

/// End to end: a list's hosts are probed, their series carry the host as
/// `service`, and `reachability_service_info` gives the category to join.
#[tokio::test]
async fn a_list_is_probed_and_its_categories_exported() {
    within(30, async {
        let pki = Pki::new();
        let dns = DnsServer::start(&pki).await;
        let https = http_server(Some(pki.server_config(&["ok.test"], CertKind::Good, &[b"http/1.1"]))).await;
        let dir = tempfile::tempdir().unwrap();
        let port = https.port();
        write(
            dir.path(),
            "list.csv",
            &format!(
                "{HEADER}https://ok.test:{port}/ok,NEWS,News Media,2026-01-01,t,\n\
                 https://ok.test:{port}/unavailable,NEWS,News Media,2026-01-01,t,\n\
                 https://nx.test/,HUMR,Human Rights Issues,2026-01-01,t,\n"
            ),
        );
        let exp = Exporter::start(
            dir.path(),
            &format!(
                "allowed_ranges: [127.0.0.0/8]\nresolvers:\n  system: {{ udp: \"{}\" }}\nservices:\n  own:\n    tcp: [\"{https}\"]\n\
                 test_lists:\n  - {{ file: list.csv, ca_file: \"{}\", ip_family: ipv4 }}\n",
                dns.udp,
                pki.ca_pem.display()
            ),
        )
        .await;
        let (status, body) = get(exp.addr, "/metrics", Some("10")).await;
        assert_eq!(status, 200, "{body}");
        let info = |s: &str, c: &str| {
            sample(&body, "reachability_service_info", &[("service", s), ("category", c)])
        };
        assert_eq!(info("ok.test", "NEWS"), Some(1.0), "{body}");
        assert_eq!(info("nx.test", "HUMR"), Some(1.0), "{body}");
        assert_eq!(
            sample(&body, "reachability_service_info", &[("service", "own")]),
            None,
            "a configured service has no category: {body}"
        );
        let ok_url = format!("https://ok.test:{port}/ok");
        let bad_url = format!("https://ok.test:{port}/unavailable");
        assert_eq!(
            sample(&body, "reachability_http_success", &[("service", "ok.test"), ("target", &ok_url)]),
            Some(1.0),
            "{body}"
        );
        assert_eq!(
            sample(&body, "reachability_http_status_code", &[("service", "ok.test"), ("target", &bad_url)]),
            Some(503.0),
            "{body}"
        );
        let tls_target = format!("ok.test:{port}");
        assert_eq!(
            sample(&body, "reachability_tls_handshake_success", &[("service", "ok.test"), ("target", &tls_target), ("sni", "ok.test")]),
            Some(1.0),
            "{body}"
        );
        assert_eq!(
            sample(&body, "reachability_dns_success", &[("service", "ok.test"), ("resolver", "system")]),
            Some(1.0),
            "{body}"
        );
        assert_eq!(
            sample(&body, "reachability_failure_info", &[("service", "nx.test"), ("check", "dns"), ("reason", "dns_nxdomain_error")]),
            Some(1.0),
            "{body}"
        );
        assert_eq!(sample(&body, "reachability_service_up", &[("service", "ok.test")]), Some(0.0), "{body}");
        assert_eq!(sample(&body, "reachability_service_up", &[("service", "own")]), Some(1.0), "{body}");
        exp.stop().await;
    })
    .await;
}
