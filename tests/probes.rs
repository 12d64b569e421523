//! Every prober against real servers on loopback, and every reason that can
//! be produced on loopback produced for real.

mod support;

use std::time::Duration;

use reachability_exporter::config::Config;
use reachability_exporter::engine::catalogue::Catalogue;
use reachability_exporter::ids::EntryId;
use reachability_exporter::probe::{Facts, Outcome, Progress};
use reachability_exporter::reason::{Reason, Stage};
use support::*;

fn failed(o: &Outcome) -> (Stage, Reason) {
    o.failure
        .unwrap_or_else(|| panic!("expected a failure, got {o:?}"))
}

fn assert_ok(o: &Outcome) {
    assert!(o.is_ok(), "expected success, got {o:?}");
    assert!(
        o.duration.is_some(),
        "a success carries its duration: {o:?}"
    );
}

#[tokio::test]
async fn dns_over_udp_classifies_answers() {
    within(20, async {
        let pki = Pki::new();
        let dns = DnsServer::start(&pki).await;
        let yaml = format!(
            "resolvers:\n  system: {{ udp: \"{}\" }}\nservices:\n  s:\n    dns: {{ names: [pub.test, ok.test, nx.test, empty.test, bogon.test], types: [A, AAAA] }}\n",
            dns.udp
        );
        let o = run_checks(&yaml, pki.dir.path()).await;
        // Five names, two types each, in that order; one query each.
        assert_eq!(o.len(), 10);
        assert_eq!(dns.queries.get(), 10, "one query per check, no retries");
        // pub.test A: a public address.
        assert_ok(&o[0]);
        assert_eq!(o[0].facts, Facts::Dns { answers: 1, addrs: vec!["198.41.0.4".parse().unwrap()] });
        // pub.test AAAA: NOERROR without an address.
        assert_eq!(failed(&o[1]), (Stage::Resolve, Reason::DnsNoAnswer));
        assert!(o[1].duration.is_some(), "an answer was received");
        // ok.test A 127.0.0.1 and AAAA ::1: bogons when no range allows them.
        assert_eq!(failed(&o[2]), (Stage::Resolve, Reason::DnsBogon));
        assert_eq!(o[2].facts, Facts::Dns { answers: 1, addrs: vec!["127.0.0.1".parse().unwrap()] });
        assert_eq!(failed(&o[3]), (Stage::Resolve, Reason::DnsBogon));
        assert_eq!(failed(&o[4]), (Stage::Resolve, Reason::DnsNxdomain));
        assert_eq!(failed(&o[5]), (Stage::Resolve, Reason::DnsNxdomain));
        // empty.test A and AAAA: NOERROR with only a TXT record.
        assert_eq!(failed(&o[6]), (Stage::Resolve, Reason::DnsNoAnswer));
        assert_eq!(failed(&o[7]), (Stage::Resolve, Reason::DnsNoAnswer));
        // bogon.test A 10.0.0.1; it has no AAAA.
        assert_eq!(failed(&o[8]), (Stage::Resolve, Reason::DnsBogon));
        assert_eq!(failed(&o[9]), (Stage::Resolve, Reason::DnsNoAnswer));
    })
    .await;
}

#[tokio::test]
async fn allowed_ranges_exempt_loopback_from_the_bogon_rule() {
    within(20, async {
        let pki = Pki::new();
        let dns = DnsServer::start(&pki).await;
        let yaml = format!(
            "allowed_ranges: [127.0.0.0/8]\nresolvers:\n  system: {{ udp: \"{}\" }}\nservices:\n  s:\n    allowed_ranges: [\"::1\"]\n    dns: {{ names: [ok.test, bogon.test], types: [A, AAAA] }}\n",
            dns.udp
        );
        let o = run_checks(&yaml, pki.dir.path()).await;
        assert_ok(&o[0]);
        assert_ok(&o[1]);
        // 10.0.0.1 is still a bogon: only the listed ranges are exempt.
        assert_eq!(failed(&o[2]), (Stage::Resolve, Reason::DnsBogon));
    })
    .await;
}

#[tokio::test]
async fn dns_over_tcp_dot_and_doh() {
    within(20, async {
        let pki = Pki::new();
        let dns = DnsServer::start(&pki).await;
        let ca = pki.ca_pem.display();
        let yaml = format!(
            "allowed_ranges: [127.0.0.0/8]\nresolvers:\n  t: {{ tcp: \"{tcp}\" }}\n  dot: {{ dot: \"{dot}\", server_name: dns.test, ca_file: \"{ca}\" }}\n  doh: {{ doh: \"https://{doh}/dns-query\", server_name: dns.test, ca_file: \"{ca}\" }}\n  dot_wrong_name: {{ dot: \"{dot}\", server_name: other.test, ca_file: \"{ca}\" }}\n  doh_public_roots: {{ doh: \"https://{doh}/dns-query\", server_name: dns.test }}\nservices:\n  s:\n    dns: {{ names: [ok.test, nx.test], resolvers: [t, dot, doh, dot_wrong_name, doh_public_roots] }}\n",
            tcp = dns.tcp,
            dot = dns.dot,
            doh = dns.doh,
        );
        let o = run_checks(&yaml, pki.dir.path()).await;
        // ok.test through each resolver: t, dot, doh, then the broken ones.
        assert_ok(&o[0]);
        assert_ok(&o[1]);
        assert_ok(&o[2]);
        assert_eq!(failed(&o[3]), (Stage::Resolve, Reason::SslInvalidHostname));
        assert_eq!(failed(&o[4]), (Stage::Resolve, Reason::SslUnknownAuthority));
        // nx.test through the working ones.
        assert_eq!(failed(&o[5]), (Stage::Resolve, Reason::DnsNxdomain));
        assert_eq!(failed(&o[6]), (Stage::Resolve, Reason::DnsNxdomain));
        assert_eq!(failed(&o[7]), (Stage::Resolve, Reason::DnsNxdomain));
    })
    .await;
}

#[tokio::test]
async fn servfail_refused_and_silence() {
    within(20, async {
        let (servfail, servfail_got) = rcode_server(2).await;
        let (refused, refused_got) = rcode_server(5).await;
        let (silent, silent_got) = silent_udp().await;
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "resolvers:\n  sf: {{ udp: \"{servfail}\" }}\n  rf: {{ udp: \"{refused}\" }}\n  quiet: {{ udp: \"{silent}\" }}\nservices:\n  s:\n    timeout: 300ms\n    dns: {{ names: [x.test], resolvers: [sf, rf, quiet] }}\n"
        );
        let start = std::time::Instant::now();
        let o = run_checks(&yaml, dir.path()).await;
        assert_eq!(failed(&o[0]), (Stage::Resolve, Reason::DnsServfail));
        assert_eq!(failed(&o[1]), (Stage::Resolve, Reason::DnsRefused));
        assert_eq!(failed(&o[2]), (Stage::Resolve, Reason::GenericTimeout));
        assert_eq!(o[2].duration, None, "no answer, no duration");
        // One query, no retries: each server received exactly one, whatever
        // it answered (or not), and the timeout is the check's, not hickory's.
        assert_eq!(
            (servfail_got.get(), refused_got.get(), silent_got.get()),
            (1, 1, 1),
            "queries received by the SERVFAIL, REFUSED and silent servers"
        );
        assert!(start.elapsed() < Duration::from_millis(1500), "{:?}", start.elapsed());
    })
    .await;
}

#[tokio::test]
async fn tcp_connect_success_refusal_and_resolution() {
    within(20, async {
        let pki = Pki::new();
        let dns = DnsServer::start(&pki).await;
        let open = tls_server(pki.server_config(&["tls.test"], CertKind::Good, &[])).await;
        let closed = closed_port().await;
        let yaml = format!(
            "resolvers:\n  system: {{ udp: \"{udp}\" }}\nservices:\n  lab:\n    allowed_ranges: [127.0.0.0/8]\n    tcp: [\"{open}\", \"{closed}\", \"ok.test:{port}\", \"nx.test:{port}\"]\n  strict:\n    tcp: [\"ok.test:{port}\"]\n",
            udp = dns.udp,
            port = open.port(),
        );
        let o = run_checks(&yaml, pki.dir.path()).await;
        assert_ok(&o[0]);
        assert!(o[0].duration.unwrap() < Duration::from_secs(1));
        assert_eq!(failed(&o[1]), (Stage::Connect, Reason::ConnectionRefused));
        assert_ok(&o[2]);
        assert_eq!(failed(&o[3]), (Stage::Resolve, Reason::DnsNxdomain));
        // Without an allowed range, a loopback answer is not connected to.
        assert_eq!(failed(&o[4]), (Stage::Resolve, Reason::DnsBogon));
    })
    .await;
}

#[tokio::test]
async fn tls_handshakes_and_certificate_failures() {
    within(20, async {
        let pki = Pki::new();
        let ca = pki.ca_pem.display();
        let good =
            tls_server(pki.server_config(&["tls.test", "127.0.0.1"], CertKind::Good, &[b"h2"]))
                .await;
        let (tls12, tls12_seen) = tls_server_counted(pki.tls12_only(&["tls.test"])).await;
        let wrong = tls_server(pki.server_config(&["other.test"], CertKind::Good, &[])).await;
        let unknown = tls_server(pki.server_config(&["tls.test"], CertKind::UnknownCa, &[])).await;
        let unknown2 = tls_server(pki.server_config(&["tls.test"], CertKind::UnknownCa, &[])).await;
        let expired = tls_server(pki.server_config(&["tls.test"], CertKind::Expired, &[])).await;
        let good2 = tls_server(pki.server_config(&["tls.test"], CertKind::Good, &[])).await;
        let yaml = format!(
            "services:\n  s:\n    tls:\n\
             \x20     - {{ target: \"{good}\", sni: tls.test, ca_file: \"{ca}\" }}\n\
             \x20     - {{ target: \"{good}\", ca_file: \"{ca}\" }}\n\
             \x20     - {{ target: \"{tls12}\", sni: tls.test, ca_file: \"{ca}\" }}\n\
             \x20     - {{ target: \"{wrong}\", sni: tls.test, ca_file: \"{ca}\" }}\n\
             \x20     - {{ target: \"{unknown}\", sni: tls.test, ca_file: \"{ca}\" }}\n\
             \x20     - {{ target: \"{unknown2}\", sni: tls.test, insecure: true }}\n\
             \x20     - {{ target: \"{expired}\", sni: tls.test, ca_file: \"{ca}\" }}\n\
             \x20     - {{ target: \"{good2}\", sni: tls.test }}\n"
        );
        let o = run_checks(&yaml, pki.dir.path()).await;
        assert_ok(&o[0]);
        let config = Config::parse(&yaml, &pki.dir.path().join("config.yaml")).unwrap();
        let cat = Catalogue::new(config).unwrap();
        for _ in 0..3 {
            // Every scrape is a full handshake: a resumed one would skip
            // certificate verification and time a shorter handshake.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
            let again = cat
                .run(EntryId::new(2), deadline, &Progress::default())
                .await;
            assert_eq!(again.facts, o[2].facts);
        }
        assert_eq!(tls12_seen.accepted.get(), 4, "one connection per check run");
        assert_eq!(
            tls12_seen.resumed.get(),
            0,
            "a resumed handshake skips the certificate"
        );
        assert_eq!(
            o[0].facts,
            Facts::Tls {
                not_after: Some(Pki::NOT_AFTER),
                version: "TLS 1.3"
            }
        );
        // A bare IP target without sni: no SNI sent, verified against the IP SAN.
        assert_ok(&o[1]);
        assert!(
            matches!(
                o[2].facts,
                Facts::Tls {
                    version: "TLS 1.2",
                    ..
                }
            ),
            "{:?}",
            o[2]
        );
        assert_eq!(
            failed(&o[3]),
            (Stage::TlsHandshake, Reason::SslInvalidHostname)
        );
        assert_eq!(
            failed(&o[4]),
            (Stage::TlsHandshake, Reason::SslUnknownAuthority)
        );
        assert_ok(&o[5]);
        assert_eq!(
            failed(&o[6]),
            (Stage::TlsHandshake, Reason::SslInvalidCertificate)
        );
        // The compiled-in public roots do not know the test CA.
        assert_eq!(
            failed(&o[7]),
            (Stage::TlsHandshake, Reason::SslUnknownAuthority)
        );
    })
    .await;
}

#[tokio::test]
async fn tls13_sessions_are_never_resumed_across_scrapes() {
    within(20, async {
        let pki = Pki::new();
        let dns = DnsServer::start(&pki).await;
        let ca = pki.ca_pem.display();
        // Both servers issue two TLS 1.3 tickets after every handshake; the
        // HTTPS check reads its answer, so its client does receive them.
        let (tls, tls_seen) =
            tls_server_counted(pki.tls13_with_tickets(&["ok.test"], &[b"h2"])).await;
        let (https, https_seen) =
            http_server_counted(Some(pki.tls13_with_tickets(&["ok.test"], &[b"http/1.1"]))).await;
        let yaml = format!(
            "allowed_ranges: [127.0.0.0/8]\nresolvers:\n  system: {{ udp: \"{udp}\" }}\nservices:\n  s:\n    tls: [{{ target: \"ok.test:{t}\", ca_file: \"{ca}\" }}]\n    http: [{{ url: \"https://ok.test:{h}/ok\", ca_file: \"{ca}\" }}]\n",
            udp = dns.udp,
            t = tls.port(),
            h = https.port(),
        );
        let exp = Exporter::start(pki.dir.path(), &yaml).await;
        for scrape in 1..=3 {
            let (status, body) = get(exp.addr, "/metrics", Some("5")).await;
            assert_eq!(status, 200, "{body}");
            let s = [("service", "s")];
            assert_eq!(sample(&body, "reachability_tls_handshake_success", &s), Some(1.0), "{body}");
            assert_eq!(sample(&body, "reachability_tls_version_info", &[("service", "s"), ("version", "TLS 1.3")]), Some(1.0), "{body}");
            assert_eq!(sample(&body, "reachability_http_success", &s), Some(1.0), "{body}");
            assert_eq!((tls_seen.accepted.get(), https_seen.accepted.get()), (scrape, scrape));
        }
        // Every scrape is a full handshake: a resumed one would skip
        // certificate verification and time a shorter handshake.
        assert_eq!(tls_seen.resumed.get(), 0, "TLS check resumed a TLS 1.3 session");
        assert_eq!(https_seen.resumed.get(), 0, "HTTPS check resumed a TLS 1.3 session");
        exp.stop().await;
    })
    .await;
}

#[tokio::test]
async fn tls_servers_that_misbehave_after_the_client_hello() {
    within(20, async {
        let reset = bad_tls_server(Misbehaviour::Reset).await;
        let close = bad_tls_server(Misbehaviour::Close).await;
        let alert = bad_tls_server(Misbehaviour::Alert).await;
        let stall = bad_tls_server(Misbehaviour::Stall).await;
        let closed = closed_port().await;
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "services:\n  s:\n    timeout: 400ms\n    tls:\n\
             \x20     - {{ target: \"{reset}\", sni: blocked.test }}\n\
             \x20     - {{ target: \"{close}\", sni: blocked.test }}\n\
             \x20     - {{ target: \"{alert}\", sni: blocked.test }}\n\
             \x20     - {{ target: \"{stall}\", sni: blocked.test }}\n\
             \x20     - {{ target: \"{closed}\", sni: blocked.test }}\n"
        );
        let o = run_checks(&yaml, dir.path()).await;
        assert_eq!(
            failed(&o[0]),
            (Stage::TlsHandshake, Reason::ConnectionReset)
        );
        assert_eq!(failed(&o[1]), (Stage::TlsHandshake, Reason::Eof));
        assert_eq!(
            failed(&o[2]),
            (Stage::TlsHandshake, Reason::SslFailedHandshake)
        );
        assert_eq!(failed(&o[3]), (Stage::TlsHandshake, Reason::GenericTimeout));
        assert_eq!(failed(&o[4]), (Stage::Connect, Reason::ConnectionRefused));
        for x in &o {
            assert_eq!(
                x.duration, None,
                "failed handshakes carry no duration: {x:?}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_resolver_that_refuses_connections_is_classified() {
    within(20, async {
        let closed = closed_port().await;
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "resolvers:\n  t: {{ tcp: \"{closed}\" }}\n  dot: {{ dot: \"{closed}\" }}\n  doh: {{ doh: \"https://{closed}/dns-query\" }}\nservices:\n  s:\n    dns: {{ names: [x.test], resolvers: [t, dot, doh] }}\n    tcp: [\"x.test:443\"]\n    resolve_with: doh\n"
        );
        let o = run_checks(&yaml, dir.path()).await;
        for x in &o[..3] {
            assert_eq!(failed(x), (Stage::Resolve, Reason::ConnectionRefused));
        }
        // A target's host resolved through a blocked resolver fails at resolve.
        assert_eq!(failed(&o[3]), (Stage::Resolve, Reason::ConnectionRefused));
    })
    .await;
}

#[tokio::test]
async fn each_lookup_through_dot_or_doh_is_a_fresh_connection() {
    within(20, async {
        let pki = Pki::new();
        let dns = DnsServer::start(&pki).await;
        // The relays close every connection after 200 ms, as servers close
        // idle ones: a reused connection would fail the next lookup.
        let (dot, dot_conns) = counting_relay(dns.dot, Duration::from_millis(200)).await;
        let (doh, doh_conns) = counting_relay(dns.doh, Duration::from_millis(200)).await;
        let ca = pki.ca_pem.display();
        let yaml = format!(
            "allowed_ranges: [127.0.0.0/8]\nresolvers:\n  dot: {{ dot: \"{dot}\", server_name: dns.test, ca_file: \"{ca}\" }}\n  doh: {{ doh: \"https://{doh}/dns-query\", server_name: dns.test, ca_file: \"{ca}\" }}\nservices:\n  s:\n    dns: {{ names: [ok.test], resolvers: [dot, doh] }}\n"
        );
        let config = Config::parse(&yaml, &pki.dir.path().join("config.yaml")).unwrap();
        let cat = Catalogue::new(config).unwrap();
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            for i in 0..2 {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
                assert_ok(&cat.run(EntryId::new(i), deadline, &Progress::default()).await);
            }
        }
        assert_eq!(dot_conns.get(), 3);
        assert_eq!(doh_conns.get(), 3);
    })
    .await;
}
