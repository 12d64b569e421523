//! Verdicts (`reachability_blocking_suspected`), downloads, QUIC and
//! every-address checks, end to end through the real HTTP server against
//! in-process servers: each verdict 1 in its scenario, 0 in the clean one,
//! absent when it cannot be judged.

mod support;

use reachability_exporter::reason::{Reason, Stage};
use support::*;
use tokio::net::UdpSocket;

#[tokio::test]
async fn dns_removed_injected_and_ip_blocked() {
    within(30, async {
        let pki = Pki::new();
        let ca = pki.ca_pem.display().to_string();
        // One port for every address: the control's 127.0.0.3 and the
        // system's 127.0.0.2 (a CDN's other node, valid) and 127.0.0.4 (a
        // block page with another name's certificate).
        let good = pki.server_config(&["cdn.test", "blk.test", "ipa.test"], CertKind::Good, &[]);
        let ctl = tls_server_at("127.0.0.3:0", good.clone()).await;
        let port = ctl.port();
        tls_server_at(&format!("127.0.0.2:{port}"), pki.server_config(&["cdn.test"], CertKind::Good, &[])).await;
        tls_server_at(&format!("127.0.0.4:{port}"), pki.server_config(&["blockpage.test"], CertKind::Good, &[])).await;
        tls_server_at(&format!("127.0.0.1:{port}"), good).await;

        let system = DnsServer::serve(
            &pki,
            &[
                ("ok.test.", "127.0.0.1"),
                ("inj.test.", "10.0.0.1"),
                ("cdn.test.", "127.0.0.2"),
                ("blk.test.", "127.0.0.4"),
                ("ipa.test.", "127.0.0.1"),
                ("ipb.test.", "127.0.0.1"),
            ],
        )
        .await;
        let control = DnsServer::serve(
            &pki,
            &[
                ("ok.test.", "127.0.0.1"),
                ("gone.test.", "127.0.0.1"),
                ("inj.test.", "127.0.0.1"),
                ("cdn.test.", "127.0.0.3"),
                ("blk.test.", "127.0.0.3"),
                ("ipa.test.", "127.0.0.1"),
                // Nothing listens there: every connect is refused.
                ("ipb.test.", "127.0.0.6"),
            ],
        )
        .await;
        let services = format!(
            "services:\n  s:\n    dns: {{ names: [ok.test, gone.test, inj.test, cdn.test, blk.test, ipa.test, ipb.test], resolvers: [system, control] }}\n    tls:\n      - {{ target: \"cdn.test:{port}\", ca_file: \"{ca}\" }}\n      - {{ target: \"blk.test:{port}\", ca_file: \"{ca}\" }}\n    tcp: [\"ipa.test:{port}\", \"ipb.test:{port}\"]\n"
        );
        let config = format!(
            "allowed_ranges: [127.0.0.0/8]\nresolvers:\n  system: {{ udp: \"{}\" }}\n  control: {{ dot: \"{}\", server_name: dns.test, ca_file: \"{ca}\" }}\n{services}",
            system.udp, control.dot
        );
        let exporter = Exporter::start(pki.dir.path(), &config).await;
        let (status, body) = get(exporter.addr, "/metrics", Some("4")).await;
        assert_eq!(status, 200, "{body}");
        // The status page: each verdict with what it was judged from.
        let (_, page) = get(exporter.addr, "/", None).await;
        exporter.stop().await;
        let v = |t: &str, k: &str| verdict(&body, "s", t, k);
        // Removed from the system's DNS, resolved by the control.
        assert_eq!(v("gone.test", "dns_removed"), Some(1.0), "{body}");
        assert_eq!(v("ok.test", "dns_removed"), Some(0.0));
        assert_eq!(v("inj.test", "dns_removed"), Some(0.0));
        // A bogon from the system where the control has a real answer.
        assert_eq!(v("inj.test", "dns_injected"), Some(1.0), "{body}");
        assert_eq!(v("ok.test", "dns_injected"), Some(0.0));
        // Disjoint answers: a certificate failing only at the system's
        // address is injection; valid at both (a CDN) is not.
        assert_eq!(v("blk.test", "dns_injected"), Some(1.0), "{body}");
        assert_eq!(v("cdn.test", "dns_injected"), Some(0.0), "{body}");
        // Every control address refuses the connect.
        assert_eq!(v(&format!("ipb.test:{port}"), "ip_blocked"), Some(1.0), "{body}");
        assert_eq!(v(&format!("ipa.test:{port}"), "ip_blocked"), Some(0.0));
        assert_eq!(v(&format!("cdn.test:{port}"), "ip_blocked"), Some(0.0));
        // Under each verdict, which resolver answered what; the
        // handshakes at the system's and the control's address; the
        // connects to the control's addresses.
        let evidence = |kind: &str, target: &str| {
            let summary = format!("<details><summary><strong>{kind}</strong> {target}</summary><ul class=\"evidence\">");
            let summary_cleared = format!("<details><summary><code>{kind}</code> {target}</summary><ul class=\"evidence\">");
            let at = page.find(&summary).or_else(|| page.find(&summary_cleared)).unwrap_or_else(|| panic!("no {kind} {target}:\n{page}"));
            let rest = &page[at..];
            rest[..rest.find("</ul>").unwrap()].to_string()
        };
        let gone = evidence("dns_removed", "gone.test");
        assert!(gone.contains("<li>dns gone.test via system (A): failed at resolve (dns_nxdomain_error)</li>"), "{gone}");
        assert!(gone.contains("<li>dns gone.test via control (A): answered 127.0.0.1</li>"), "{gone}");
        let inj = evidence("dns_injected", "blk.test");
        assert!(inj.contains("<li>dns blk.test via system (A): answered 127.0.0.4</li>"), "{inj}");
        assert!(inj.contains("<li>dns blk.test via control (A): answered 127.0.0.3</li>"), "{inj}");
        assert!(
            inj.contains("<li>handshake with SNI blk.test at the address the system resolver gave: failed: ssl_invalid_hostname</li>")
                && inj.contains("<li>handshake with SNI blk.test at the address a control gave: ok</li>"),
            "{inj}"
        );
        let bogon = evidence("dns_injected", "inj.test");
        assert!(bogon.contains("<li>no handshakes needed: the system resolver answered a bogon address, which no public service has</li>"), "{bogon}");
        let ok = evidence("dns_injected", "ok.test");
        assert!(ok.contains("<li>no handshakes made: the answers share an address, or one side has none</li>"), "{ok}");
        let ipb = evidence("ip_blocked", &format!("ipb.test:{port}"));
        assert!(ipb.contains(&format!("<li>tcp ipb.test:{port}: ok</li>")), "{ipb}");
        assert!(ipb.contains(&format!("<li>connect to 127.0.0.6:{port} (a control&#39;s answer): failed: connection_refused</li>")), "{ipb}");

        // The control's own series is there, and a control is not the
        // service: the system's failures make it down, not the control.
        assert_eq!(
            sample(&body, "reachability_dns_success", &[("target", "gone.test"), ("resolver", "control")]),
            Some(1.0)
        );

        // Every control failing: nothing is claimed.
        let dead = closed_port().await;
        let config = format!(
            "allowed_ranges: [127.0.0.0/8]\nresolvers:\n  system: {{ udp: \"{}\" }}\n  control: {{ dot: \"{dead}\", server_name: dns.test, ca_file: \"{ca}\" }}\n{services}",
            system.udp
        );
        let body = scrape(&config, pki.dir.path()).await;
        assert_eq!(
            sample(&body, "reachability_dns_success", &[("target", "gone.test"), ("resolver", "control")]),
            Some(0.0)
        );
        assert!(
            !body.contains("reachability_blocking_suspected{"),
            "no verdict without a working control:\n{body}"
        );

        // A control that answers only over plain UDP proves nothing about
        // the network being up: ip_blocked is not judged, DNS verdicts are.
        let config = format!(
            "allowed_ranges: [127.0.0.0/8]\nresolvers:\n  system: {{ udp: \"{}\" }}\n  control: {{ udp: \"{}\" }}\n{services}",
            system.udp, control.udp
        );
        let exporter = Exporter::start(pki.dir.path(), &config).await;
        let (_, body) = get(exporter.addr, "/metrics", Some("4")).await;
        let (_, page) = get(exporter.addr, "/", None).await;
        exporter.stop().await;
        assert_eq!(verdict(&body, "s", &format!("ipb.test:{port}"), "ip_blocked"), None);
        // The not-judged verdict's evidence says why.
        let t = format!("<code>ip_blocked</code> ipb.test:{port}</summary>");
        let plain = &page[page.find(&t).unwrap_or_else(|| panic!("{page}"))..];
        let plain = &plain[..plain.find("</ul>").unwrap()];
        assert!(plain.contains("<li>no control goes over DoT or DoH: only an encrypted control&#39;s answer shows the network reaches past the censor, so ip_blocked is not judged</li>"), "{plain}");
        assert_eq!(verdict(&body, "s", "gone.test", "dns_removed"), Some(1.0));
    })
    .await;
}

#[tokio::test]
async fn sni_filtering_against_a_neutral_sni() {
    within(30, async {
        let pki = Pki::new();
        let ca = pki.ca_pem.display().to_string();
        let filtered = sni_filtering_server(
            pki.server_config(&["ok.test", "blocked.test"], CertKind::Good, &[]),
            "blocked.test",
        )
        .await;
        let reset = bad_tls_server(Misbehaviour::Reset).await;
        // A CDN that answers a name it does not serve with an alert, behind
        // the same filter: the neutral handshake fails, but the server
        // answered it.
        let cdn = sni_filtering_server(pki.alerting_on_unknown_names(&["ok.test", "blocked.test"]), "blocked.test").await;
        let entry = |addr: std::net::SocketAddr, sni: &str| {
            format!("    tls: [{{ target: \"{addr}\", sni: {sni}, ca_file: \"{ca}\", control_sni: neutral.test }}]\n")
        };
        let eof = bad_tls_server(Misbehaviour::Close).await;
        let config = format!(
            "services:\n  filtered:\n{}  clean:\n{}  reset:\n{}  unpaired:\n    tls: [{{ target: \"{filtered}\", sni: blocked.test, ca_file: \"{ca}\" }}]\n  cdn:\n{}  cdn_clean:\n{}  eof:\n{}",
            entry(filtered, "blocked.test"),
            entry(filtered, "ok.test"),
            entry(reset, "ok.test"),
            entry(cdn, "blocked.test"),
            entry(cdn, "ok.test"),
            entry(eof, "ok.test"),
        );
        let exporter = Exporter::start(pki.dir.path(), &config).await;
        let (_, body) = get(exporter.addr, "/metrics", Some("4")).await;
        // The status page shows the same round's verdicts.
        let (_, page) = get(exporter.addr, "/", None).await;
        exporter.stop().await;
        let t = filtered.to_string();
        // In the summary, in red beside its service; in the service's
        // section above its table; a clean one listed as not suspected.
        assert!(
            page.contains(&format!("<a href=\"#service-filtered\">filtered</a></td><td><span class=\"down\">down</span></td><td class=\"num\">1 of 1</td><td><strong class=\"down\">sni_filtered</strong> {t}</td>")),
            "{page}"
        );
        assert!(
            page.contains(&format!("<h2 id=\"service-filtered\">filtered · <span class=\"down\">down</span></h2><div class=\"suspected\">Blocking suspected:<details><summary><strong>sni_filtered</strong> {t}</summary><ul class=\"evidence\"><li>tls {t} (SNI blocked.test): failed at tls_handshake (connection_reset)</li><li>neutral SNI neutral.test, same address: the server answered</li></ul></details></div>")),
            "{page}"
        );
        // The neutral handshake runs beside a passing one and may have
        // finished first: either is true.
        let cleared = |neutral: &str| format!("<div class=\"cleared\">Not suspected:<details><summary><code>sni_filtered</code> {t}</summary><ul class=\"evidence\"><li>tls {t} (SNI ok.test): ok (TLS 1.3)</li><li>neutral SNI neutral.test, same address: {neutral}</li></ul></details></div>");
        assert!(
            page.contains(&cleared("not needed (the handshake passed)")) || page.contains(&cleared("the server answered")),
            "{page}"
        );
        // A server that answers neither name: the neutral SNI's result is
        // what says the failure is not the filter's.
        let r = reset.to_string();
        assert!(
            page.contains(&format!("<div class=\"cleared\">Not judged:<details><summary><code>sni_filtered</code> {r}</summary><ul class=\"evidence\"><li>tls {r} (SNI ok.test): failed at tls_handshake (connection_reset)</li><li>neutral SNI neutral.test, same address: no answer</li></ul></details></div>")),
            "{page}"
        );
        assert_eq!(verdict(&body, "filtered", &t, "sni_filtered"), Some(1.0), "{body}");
        assert_eq!(
            sample(&body, "reachability_failure_info", &[("service", "filtered"), ("stage", "tls_handshake"), ("reason", "connection_reset")]),
            Some(1.0)
        );
        assert_eq!(verdict(&body, "clean", &t, "sni_filtered"), Some(0.0), "{body}");
        // Everything is reset there, the neutral name too: not judged.
        assert_eq!(verdict(&body, "reset", &reset.to_string(), "sni_filtered"), None, "{body}");
        // Without a control_sni there is no verdict.
        assert_eq!(verdict(&body, "unpaired", &t, "sni_filtered"), None);
        // The CDN alerted on the neutral name: it answered, so the path is
        // open and the reset of the real name is the filter's (absent
        // before a server's alert counted).
        let c = cdn.to_string();
        assert_eq!(verdict(&body, "cdn", &c, "sni_filtered"), Some(1.0), "{body}");
        assert_eq!(verdict(&body, "cdn_clean", &c, "sni_filtered"), Some(0.0), "{body}");
        // EOF for both names: nothing answered, not judged.
        assert_eq!(verdict(&body, "eof", &eof.to_string(), "sni_filtered"), None, "{body}");
    })
    .await;
}

#[tokio::test]
async fn udp_blocked_while_tcp_answers() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let (silent, _) = silent_udp().await;
        let stun = stun_udp_server(StunBehaviour::Success).await;
        let stun_tcp = stun_tcp_server().await;
        let closed = closed_port().await;
        let config = format!(
            "timeout: 1s\nservices:\n  blocked:\n    call_ports: [{{ udp: \"{silent}\" }}, {{ tcp: \"{stun_tcp}\", method: stun }}]\n  clean:\n    call_ports: [{{ udp: \"{stun}\" }}, {{ tcp: \"{stun_tcp}\" }}]\n  down:\n    call_ports: [{{ udp: \"{silent}\" }}, {{ tcp: \"{closed}\" }}]\n"
        );
        let body = scrape(&config, dir.path()).await;
        assert_eq!(verdict(&body, "blocked", &silent.to_string(), "udp_blocked"), Some(1.0), "{body}");
        assert_eq!(verdict(&body, "clean", &stun.to_string(), "udp_blocked"), Some(0.0), "{body}");
        // TCP fails too: the host is down or all of it is blocked.
        assert_eq!(verdict(&body, "down", &silent.to_string(), "udp_blocked"), None, "{body}");
    })
    .await;
}

#[tokio::test]
async fn quic_handshakes_and_quic_blocked() {
    within(30, async {
        let pki = Pki::new();
        let ca = pki.ca_pem.display().to_string();
        let h3 = pki.server_config(&["ok.test"], CertKind::Good, &[b"h3"]);
        // TLS over TCP and QUIC on the same port number.
        let tcp = pki.server_config(&["ok.test"], CertKind::Good, &[]);
        let tls = tls_server_at("127.0.0.1:0", tcp.clone()).await;
        quic_server(&tls.to_string(), h3).await;
        // TLS over TCP answers, UDP on that port is dropped.
        let tls2 = tls_server_at("127.0.0.1:0", tcp).await;
        let _drop = UdpSocket::bind(tls2).await.unwrap();
        // Both dropped (UDP bound and silent, TCP closed).
        let dead = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let dead_addr = dead.local_addr().unwrap();
        let service = |addr: std::net::SocketAddr| {
            format!(
                "    timeout: 1s\n    tls: [{{ target: \"{addr}\", sni: ok.test, ca_file: \"{ca}\" }}]\n    quic: [{{ target: \"{addr}\", sni: ok.test, ca_file: \"{ca}\" }}]\n"
            )
        };
        let config = format!(
            "services:\n  clean:\n{}  blocked:\n{}  dead:\n{}",
            service(tls),
            service(tls2),
            service(dead_addr)
        );
        let body = scrape(&config, pki.dir.path()).await;
        let q = |svc: &str, addr: std::net::SocketAddr| {
            sample(&body, "reachability_quic_handshake_success", &[("service", svc), ("target", &addr.to_string()), ("sni", "ok.test")])
        };
        assert_eq!(q("clean", tls), Some(1.0), "{body}");
        assert!(sample(&body, "reachability_quic_handshake_duration_seconds", &[("service", "clean")]).is_some());
        assert_eq!(verdict(&body, "clean", &tls.to_string(), "quic_blocked"), Some(0.0), "{body}");
        assert_eq!(q("blocked", tls2), Some(0.0));
        assert_eq!(
            sample(&body, "reachability_failure_info", &[("service", "blocked"), ("check", "quic"), ("stage", "quic_handshake"), ("reason", "generic_timeout_error")]),
            Some(1.0),
            "{body}"
        );
        assert_eq!(verdict(&body, "blocked", &tls2.to_string(), "quic_blocked"), Some(1.0), "{body}");
        assert_eq!(verdict(&body, "dead", &dead_addr.to_string(), "quic_blocked"), None, "{body}");
    })
    .await;
}

/// QUIC filtered by SNI: the censor decrypts the Initial and drops the
/// real name's; the neutral name passes. Against a server that completes
/// the neutral handshake, one that closes it with a TLS alert (as CDNs do
/// for a name they do not serve), a clean path, and a path where all UDP is
/// dropped.
#[tokio::test]
async fn quic_sni_filtered_by_the_decrypted_initial() {
    within(30, async {
        let pki = Pki::new();
        let ca = pki.ca_pem.display().to_string();
        let tcp = pki.server_config(&["ok.test"], CertKind::Good, &[]);
        let h3 = pki.server_config(&["ok.test"], CertKind::Good, &[b"h3"]);
        let mut alerting = (*pki.alerting_on_unknown_names(&["ok.test"])).clone();
        alerting.alpn_protocols = vec![b"h3".to_vec()];
        let answering = quic_server("127.0.0.1:0", h3.clone()).await;
        let alerting = quic_server("127.0.0.1:0", std::sync::Arc::new(alerting)).await;
        let (filtered, blocked_flows) = quic_sni_filter(answering, "ok.test").await;
        let (filtered_cdn, _) = quic_sni_filter(alerting, "ok.test").await;
        // TLS over TCP on each QUIC port number, for quic_blocked.
        let clean = tls_server_at("127.0.0.1:0", tcp.clone()).await;
        quic_server(&clean.to_string(), h3).await;
        for at in [filtered, filtered_cdn] {
            tls_server_at(&at.to_string(), tcp.clone()).await;
        }
        let dropped = tls_server_at("127.0.0.1:0", tcp).await;
        let _silent = UdpSocket::bind(dropped).await.unwrap();
        let service = |name: &str, addr: std::net::SocketAddr, control: &str| {
            format!(
                "  {name}:\n    timeout: 1s\n{control}    tls: [{{ target: \"{addr}\", sni: ok.test, ca_file: \"{ca}\" }}]\n    quic: [{{ target: \"{addr}\", sni: ok.test, ca_file: \"{ca}\" }}]\n"
            )
        };
        // The service's control_sni applies to QUIC as to TLS.
        let svc = "    control_sni: neutral.test\n";
        let config = format!(
            "services:\n{}{}{}{}  unpaired:\n    quic: [{{ target: \"{clean}\", sni: ok.test, ca_file: \"{ca}\", control_sni: ok.test }}]\n",
            service("filtered", filtered, svc),
            service("cdn", filtered_cdn, svc),
            service("clean", clean, svc),
            service("dropped", dropped, svc),
        );
        let body = scrape(&config, pki.dir.path()).await;
        let v = |svc: &str, at: std::net::SocketAddr, kind: &str| verdict(&body, svc, &at.to_string(), kind);
        assert!(blocked_flows.get() >= 1, "the filter saw the real name");
        assert_eq!(v("filtered", filtered, "quic_sni_filtered"), Some(1.0), "{body}");
        // The neutral name was answered over UDP: not UDP blocking.
        assert_eq!(v("filtered", filtered, "quic_blocked"), Some(0.0), "{body}");
        // A CONNECTION_CLOSE carrying the server's alert is an answer.
        assert_eq!(v("cdn", filtered_cdn, "quic_sni_filtered"), Some(1.0), "{body}");
        assert_eq!(v("clean", clean, "quic_sni_filtered"), Some(0.0), "{body}");
        assert_eq!(v("clean", clean, "quic_blocked"), Some(0.0), "{body}");
        // All UDP dropped: the name is not what is blocked.
        assert_eq!(v("dropped", dropped, "quic_sni_filtered"), None, "{body}");
        assert_eq!(v("dropped", dropped, "quic_blocked"), Some(1.0), "{body}");
        // A control_sni equal to the real SNI is no control: no series.
        assert_eq!(v("unpaired", clean, "quic_sni_filtered"), None, "{body}");
    })
    .await;
}

/// ECH blocked: a filter drops every ClientHello that carries the
/// encrypted_client_hello extension, as the TSPU does; the plain handshake
/// passes. A clean path, and a TLS 1.2-only server (which fails a GREASE-ECH
/// handshake by itself: ECH is TLS 1.3's), beside it.
#[tokio::test]
async fn ech_blocked_when_grease_ech_hellos_are_dropped() {
    within(30, async {
        let pki = Pki::new();
        let ca = pki.ca_pem.display().to_string();
        let config = pki.server_config(&["ok.test"], CertKind::Good, &[]);
        let (filtered, dropped) = ech_filtering_server(config.clone()).await;
        let clean = tls_server(config).await;
        let old = tls_server(pki.tls12_only(&["ok.test"])).await;
        let entry = |addr: std::net::SocketAddr, ech: &str| {
            format!("    tls: [{{ target: \"{addr}\", sni: ok.test, ca_file: \"{ca}\"{ech} }}]\n")
        };
        // Per entry, and per service.
        let yaml = format!(
            "timeout: 1s\nservices:\n  filtered:\n{}  clean:\n    ech: grease\n{}  old:\n{}  plain:\n{}  cut:\n    timeout: 8s\n{}",
            entry(filtered, ", ech: grease"),
            entry(clean, ""),
            entry(old, ", ech: grease"),
            entry(clean, ""),
            entry(filtered, ", ech: grease"),
        );
        let exporter = Exporter::start(pki.dir.path(), &yaml).await;
        let (_, body) = get(exporter.addr, "/metrics", Some("4")).await;
        let (_, page) = get(exporter.addr, "/", None).await;
        exporter.stop().await;
        let v = |svc: &str, at: std::net::SocketAddr| verdict(&body, svc, &at.to_string(), "ech_blocked");
        assert!(dropped.get() >= 1, "the filter saw the GREASE-ECH hello");
        // The status page: the plain handshake passed, the GREASE-ECH one
        // met the filter's silence.
        assert!(
            page.contains(&format!("<details><summary><strong>ech_blocked</strong> {filtered}</summary><ul class=\"evidence\"><li>tls {filtered} (SNI ok.test): ok (TLS 1.3)</li><li>with a GREASE encrypted_client_hello: failed at tls_handshake (generic_timeout_error)</li></ul></details>")),
            "{page}"
        );
        assert_eq!(v("filtered", filtered), Some(1.0), "{body}");
        // The plain handshake passed and is reported as such, not cut off.
        let tls_ok = |svc: &str| sample(&body, "reachability_tls_handshake_success", &[("service", svc)]);
        assert_eq!(tls_ok("filtered"), Some(1.0), "{body}");
        assert!(sample(&body, "reachability_tls_handshake_duration_seconds", &[("service", "filtered")]).is_some());
        assert_eq!(sample(&body, "reachability_exporter_checks_cut_total", &[("check", "tls")]), Some(0.0), "{body}");
        assert_eq!(v("clean", clean), Some(0.0), "{body}");
        // TLS 1.2 only: not judged.
        assert_eq!(tls_ok("old"), Some(1.0), "{body}");
        assert_eq!(v("old", old), None, "{body}");
        // Without ech: no series.
        assert_eq!(v("plain", clean), None, "{body}");
        // Cut off by the scrape's deadline (4 s) before its own timeout
        // (8 s), the GREASE-ECH handshake had less time than the check:
        // not judged, though the same filter drops it.
        assert_eq!(tls_ok("cut"), Some(1.0), "{body}");
        assert_eq!(v("cut", filtered), None, "{body}");
    })
    .await;
}

#[tokio::test]
async fn quic_failures_are_classified() {
    within(30, async {
        let pki = Pki::new();
        let ca = pki.ca_pem.display().to_string();
        let vn = quic_version_negotiation_server().await;
        let unknown = quic_server("127.0.0.1:0", pki.server_config(&["ok.test"], CertKind::UnknownCa, &[b"h3"])).await;
        let good = quic_server("127.0.0.1:0", pki.server_config(&["ok.test"], CertKind::Good, &[b"h3"])).await;
        let expired = quic_server("127.0.0.1:0", pki.server_config(&["ok.test"], CertKind::Expired, &[b"h3"])).await;
        let yaml = format!(
            "timeout: 2s\nservices:\n  s:\n    quic:\n      - {{ target: \"{vn}\", sni: ok.test }}\n      - {{ target: \"{unknown}\", sni: ok.test, ca_file: \"{ca}\" }}\n      - {{ target: \"{good}\", sni: other.test, ca_file: \"{ca}\" }}\n      - {{ target: \"{expired}\", sni: ok.test, ca_file: \"{ca}\" }}\n      - {{ target: \"{good}\", sni: ok.test, ca_file: \"{ca}\", alpn: [h3, h3-29] }}\n"
        );
        let o = run_checks(&yaml, pki.dir.path()).await;
        let failed = |i: usize| o[i].failure.expect("should fail");
        assert_eq!(failed(0), (Stage::QuicHandshake, Reason::QuicIncompatibleVersion));
        assert_eq!(failed(1), (Stage::QuicHandshake, Reason::SslUnknownAuthority));
        assert_eq!(failed(2), (Stage::QuicHandshake, Reason::SslInvalidHostname));
        assert_eq!(failed(3), (Stage::QuicHandshake, Reason::SslInvalidCertificate));
        assert!(o[4].is_ok(), "{:?}", o[4]);
        assert!(o[4].duration.unwrap() < std::time::Duration::from_secs(1));
    })
    .await;
}

#[tokio::test]
async fn downloads_throttled_and_stalled() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let http = http_server(None).await;
        let closed = closed_port().await;
        let config = format!(
            "timeout: 3s\nservices:\n  s:\n    download:\n      - {{ url: \"http://{http}/trickle\", min_rate: 200000, stall_after: 1s }}\n      - {{ url: \"http://{http}/fast\", min_rate: 100KiB, max_bytes: 128KiB }}\n      - {{ url: \"http://{http}/freeze\", min_rate: 1000, stall_after: 300ms }}\n      - {{ url: \"http://{closed}/fast\", min_rate: 1000 }}\n      - {{ url: \"http://{http}/ok\", min_rate: 100KiB }}\n      - {{ url: \"http://{http}/64k\", stall_after: 10s }}\n"
        );
        let body = scrape(&config, dir.path()).await;
        let trickle = format!("http://{http}/trickle");
        let fast = format!("http://{http}/fast");
        let freeze = format!("http://{http}/freeze");
        let down = format!("http://{closed}/fast");
        let m = |name: &str, t: &str| sample(&body, name, &[("target", t)]);
        // ~50 KB/s against a floor of 200 kB/s: throttled, not stalled.
        assert_eq!(verdict(&body, "s", &trickle, "throttled"), Some(1.0), "{body}");
        assert_eq!(verdict(&body, "s", &trickle, "stalled"), Some(0.0));
        assert_eq!(m("reachability_download_bytes", &trickle), Some(65536.0));
        let rate = m("reachability_download_bytes_per_second", &trickle).unwrap();
        assert!((20_000.0..100_000.0).contains(&rate), "rate {rate}");
        assert!(m("reachability_download_first_byte_seconds", &trickle).is_some());
        // At loopback speed, stopping at max_bytes.
        assert_eq!(verdict(&body, "s", &fast, "throttled"), Some(0.0), "{body}");
        assert_eq!(verdict(&body, "s", &fast, "stalled"), Some(0.0));
        assert_eq!(m("reachability_download_bytes", &fast), Some(131072.0));
        // The kernel's count of segments received, the SYN-ACK on.
        assert!(m("reachability_download_segments", &fast).is_some_and(|n| n >= 3.0), "{body}");
        // 16 KiB, then nothing: a stall at stage read.
        assert_eq!(verdict(&body, "s", &freeze, "stalled"), Some(1.0), "{body}");
        assert_eq!(verdict(&body, "s", &freeze, "throttled"), None);
        assert_eq!(m("reachability_download_bytes", &freeze), Some(16384.0));
        assert_eq!(
            sample(&body, "reachability_failure_info", &[("target", freeze.as_str()), ("check", "download"), ("stage", "read"), ("reason", "generic_timeout_error")]),
            Some(1.0)
        );
        // A 5-byte page is far under 100 KiB/s, but too short to be a rate:
        // not judged (it was 1 before the floor).
        let small = format!("http://{http}/ok");
        assert_eq!(m("reachability_download_bytes", &small), Some(5.0), "{body}");
        assert_eq!(verdict(&body, "s", &small, "throttled"), None, "{body}");
        assert_eq!(verdict(&body, "s", &small, "stalled"), Some(0.0));
        // Cut off by its timeout while the body had stopped short of
        // stall_after: measured, its segments too.
        let cut = format!("http://{http}/64k");
        assert_eq!(m("reachability_download_bytes", &cut), Some(65536.0), "{body}");
        assert!(m("reachability_download_segments", &cut).is_some_and(|n| n >= 2.0), "{body}");
        // Never connected: nothing to judge.
        assert_eq!(verdict(&body, "s", &down, "stalled"), None);
        assert_eq!(verdict(&body, "s", &down, "throttled"), None);
        assert_eq!(m("reachability_download_bytes", &down), None);
        assert_eq!(
            sample(&body, "reachability_failure_info", &[("target", down.as_str()), ("stage", "connect"), ("reason", "connection_refused")]),
            Some(1.0)
        );
    })
    .await;
}

/// Uploads against a sink whose small receive buffer makes the kernel stop
/// acknowledging what the server does not read: whole, frozen after
/// 16 KiB (a stall at stage write), read at 50 KB/s (throttled), rejected
/// with 413 before the body, and over TLS (the framing left out exactly).
#[tokio::test]
async fn uploads_acknowledged_stalled_throttled_and_rejected() {
    within(30, async {
        let pki = Pki::new();
        let ca = pki.ca_pem.display().to_string();
        let http = upload_server(None).await;
        let https = upload_server(Some(pki.server_config(&["up.test"], CertKind::Good, &[b"http/1.1"]))).await;
        let closed = closed_port().await;
        let dns = DnsServer::serve(&pki, &[("up.test.", "127.0.0.1")]).await;
        let config = format!(
            "timeout: 3s\nservices:\n  s:\n    upload:\n      - {{ url: \"http://{http}/upload\", bytes: 64KiB, min_rate: 1KiB }}\n      - {{ url: \"http://{http}/freeze\", bytes: 64KiB, stall_after: 300ms }}\n      - {{ url: \"http://{http}/slow\", bytes: 64KiB, min_rate: 200000 }}\n      - {{ url: \"http://{http}/reject\", bytes: 1MiB }}\n      - {{ url: \"https://up.test:{}/upload\", bytes: 100000, ca_file: \"{ca}\" }}\n      - \"http://{closed}/upload\"\n    resolve_with: local\nresolvers:\n  local: {{ udp: \"{dns}\" }}\nallowed_ranges: [127.0.0.0/8]\n",
            https.port(),
            dns = dns.udp,
        );
        let body = scrape(&config, pki.dir.path()).await;
        let t = |path: &str| format!("http://{http}{path}");
        let m = |name: &str, target: &str| sample(&body, name, &[("target", target)]);
        let v = |target: &str, kind: &str| verdict(&body, "s", target, kind);
        // Whole: every byte acknowledged, a 200.
        let whole = t("/upload");
        assert_eq!(m("reachability_upload_success", &whole), Some(1.0), "{body}");
        assert_eq!(m("reachability_upload_bytes", &whole), Some(65536.0));
        assert!(m("reachability_upload_segments", &whole).is_some_and(|n| n >= 3.0), "{body}");
        assert!(m("reachability_upload_duration_seconds", &whole).is_some_and(|d| d > 0.0 && d < 1.0));
        assert_eq!(v(&whole, "upload_stalled"), Some(0.0));
        assert_eq!(v(&whole, "throttled"), Some(0.0));
        // Frozen after 16 KiB read: the kernel acknowledged that and its
        // small buffer, then nothing.
        let frozen = t("/freeze");
        assert_eq!(v(&frozen, "upload_stalled"), Some(1.0), "{body}");
        assert_eq!(m("reachability_upload_success", &frozen), Some(0.0));
        let acked = m("reachability_upload_bytes", &frozen).unwrap_or(0.0);
        assert!((16384.0..65536.0).contains(&acked), "acknowledged {acked}");
        assert_eq!(
            sample(&body, "reachability_failure_info", &[("target", frozen.as_str()), ("check", "upload"), ("stage", "write"), ("reason", "generic_timeout_error")]),
            Some(1.0),
            "{body}"
        );
        // Read at about 50 KB/s against a floor of 200 kB/s.
        let slow = t("/slow");
        assert_eq!(v(&slow, "throttled"), Some(1.0), "{body}");
        assert_eq!(v(&slow, "upload_stalled"), Some(0.0));
        let rate = m("reachability_upload_bytes_per_second", &slow).unwrap_or(0.0);
        assert!((20_000.0..100_000.0).contains(&rate), "rate {rate}");
        // Rejected before the body: the server answered, nothing stalled.
        let rejected = t("/reject");
        assert_eq!(
            sample(&body, "reachability_failure_info", &[("target", rejected.as_str()), ("stage", "http"), ("reason", "http_unexpected_status")]),
            Some(1.0),
            "{body}"
        );
        assert_eq!(v(&rejected, "upload_stalled"), Some(0.0));
        // Over TLS 1.3: the records' framing is not counted as body.
        let tls = format!("https://up.test:{}/upload", https.port());
        assert_eq!(m("reachability_upload_success", &tls), Some(1.0), "{body}");
        assert_eq!(m("reachability_upload_bytes", &tls), Some(100000.0));
        // Never connected: nothing to judge.
        let down = format!("http://{closed}/upload");
        assert_eq!(v(&down, "upload_stalled"), None);
        assert_eq!(m("reachability_upload_bytes", &down), None);
    })
    .await;
}

#[tokio::test]
async fn every_address_and_ip_family() {
    within(30, async {
        let pki = Pki::new();
        let server = tls_server_at("127.0.0.1:0", pki.server_config(&["multi.test"], CertKind::Good, &[])).await;
        let port = server.port();
        let dns = DnsServer::serve(
            &pki,
            &[
                ("multi.test.", "127.0.0.1"),
                ("multi.test.", "127.0.0.7"),
                ("dual.test.", "127.0.0.1"),
                ("dual.test.", "::1"),
                ("six.test.", "::1"),
            ],
        )
        .await;
        let config = format!(
            "allowed_ranges: [127.0.0.0/8, \"::1/128\"]\nresolvers:\n  system: {{ udp: \"{}\" }}\nservices:\n  all:\n    tcp: [{{ target: \"multi.test:{port}\", all_addresses: true }}]\n  one:\n    tcp: [{{ target: \"multi.test:{port}\", all_addresses: true, max_addresses: 1 }}]\n  v4:\n    tcp: [\"dual.test:{port}\"]\n  v6:\n    ip_family: ipv6\n    tcp: [\"dual.test:{port}\"]\n  fallback:\n    tcp: [\"six.test:{port}\"]\n",
            dns.udp
        );
        let body = scrape(&config, pki.dir.path()).await;
        let target = format!("multi.test:{port}");
        let at = |svc: &str, addr: &str| {
            sample(&body, "reachability_tcp_connect_success", &[("service", svc), ("target", &target), ("address", addr)])
        };
        assert_eq!(at("all", "127.0.0.1"), Some(1.0), "{body}");
        assert_eq!(at("all", "127.0.0.7"), Some(0.0), "{body}");
        assert_eq!(
            sample(&body, "reachability_failure_info", &[("service", "all"), ("address", "127.0.0.7"), ("reason", "connection_refused")]),
            Some(1.0)
        );
        assert_eq!(at("one", "127.0.0.1"), Some(1.0));
        assert_eq!(at("one", "127.0.0.7"), None);
        // The default family is IPv4; ipv6 picks ::1, where nothing listens.
        let dual = format!("dual.test:{port}");
        let ok = |svc: &str, t: &str| sample(&body, "reachability_tcp_connect_success", &[("service", svc), ("target", t)]);
        assert_eq!(ok("v4", &dual), Some(1.0));
        assert_eq!(ok("v6", &dual), Some(0.0));
        // A name with only an AAAA record falls back to IPv6: it resolves,
        // and fails (nothing on [::1]) at connect, not at resolve.
        assert_eq!(ok("fallback", &format!("six.test:{port}")), Some(0.0));
        assert_eq!(
            sample(&body, "reachability_failure_info", &[("service", "fallback"), ("stage", "connect")]),
            Some(1.0),
            "{body}"
        );
    })
    .await;
}

/// The status page shows a service's verdicts as soon as the checks they
/// read have ended, though a slow check of another service still runs.
#[tokio::test]
async fn a_slow_check_elsewhere_holds_back_no_verdict_on_the_status_page() {
    within(30, async {
        let pki = Pki::new();
        let ca = pki.ca_pem.display().to_string();
        let filtered = sni_filtering_server(pki.server_config(&["ok.test", "blocked.test"], CertKind::Good, &[]), "blocked.test").await;
        let stall = bad_tls_server(Misbehaviour::Stall).await;
        let config = format!(
            "services:\n  filtered:\n    tls: [{{ target: \"{filtered}\", sni: blocked.test, ca_file: \"{ca}\", control_sni: neutral.test }}]\n  slow:\n    timeout: 20s\n    tls: [{{ target: \"{stall}\", sni: stall.test }}]\n"
        );
        let exporter = Exporter::start(pki.dir.path(), &config).await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        let (round, newer) = exporter.engine.status_rounds(std::time::Duration::from_secs(30), deadline).unwrap();
        let cat = round.catalogue.clone();
        let filtered_check = cat.entries_of(cat.service_named("filtered").unwrap()).next().unwrap();
        while round.outcome_of(filtered_check).is_none() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let page = reachability_exporter::status::page(&reachability_exporter::status::View {
            round: &round,
            newer,
            located: Vec::new(),
            metrics_path: "/metrics",
            refresh_seconds: 30,
        });
        assert!(page.contains("(still running)"), "{page}");
        assert!(page.contains("<td class=\"running\">running</td>"), "{page}");
        assert!(
            page.contains(&format!("<div class=\"suspected\">Blocking suspected:<details><summary><strong>sni_filtered</strong> {filtered}</summary>")),
            "{page}"
        );
        exporter.stop().await;
    })
    .await;
}

/// A name checked only through control resolvers has nothing to compare
/// them with: no DNS verdict is planned for it (and planning does not
/// stumble on the missing system check).
#[test]
fn a_name_checked_only_through_controls_has_no_dns_verdict() {
    let config = reachability_exporter::config::Config::parse(
        "resolvers:\n  c: { udp: \"127.0.0.1:53\" }\nservices:\n  s:\n    dns: { names: [a.test], resolvers: [c] }\n    tcp: [\"a.test:443\"]\n",
        std::path::Path::new("t.yaml"),
    )
    .unwrap();
    let plans = reachability_exporter::verdict::plans(&config).plans;
    let kinds: Vec<&str> = plans.iter().map(|p| p.kind.as_str()).collect();
    assert!(
        !kinds.contains(&"dns_removed") && !kinds.contains(&"dns_injected"),
        "{kinds:?}"
    );
}

/// The `dns_injected` evidence handshakes go where the service speaks TLS
/// to the name: a `tls` check's port and trust, else an https check's,
/// else 443 with public roots.
#[test]
fn dns_injected_handshakes_take_the_services_own_tls_to_the_name() {
    use reachability_exporter::verdict::Case;
    let config = reachability_exporter::config::Config::parse(
        "resolvers:\n  c: { udp: \"127.0.0.1:53\" }\nservices:\n  s:\n    dns: { names: [a.test, b.test, c.test], resolvers: [system, c] }\n    tls: [\"a.test:8443\"]\n    http: [\"https://b.test:9443/\", \"http://c.test:8080/\"]\n",
        std::path::Path::new("t.yaml"),
    )
    .unwrap();
    // Entries in config order: 6 DNS checks, then tls a.test, https b.test, http c.test.
    let (tls_a, https_b) = (6, 7);
    let plans = reachability_exporter::verdict::plans(&config).plans;
    let mut got: Vec<(String, u16, Option<usize>)> = plans
        .iter()
        .flat_map(|p| &p.cases)
        .filter_map(|c| match c {
            Case::DnsInjected {
                name,
                port,
                tls_entry,
                ..
            } => Some((name.clone(), *port, tls_entry.map(|e| e.index()))),
            _ => None,
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("a.test".to_string(), 8443, Some(tls_a)),
            ("b.test".to_string(), 9443, Some(https_b)),
            ("c.test".to_string(), 443, None),
        ]
    );
}

/// `ip_blocked` pairs each target once per service: a TCP and a TLS check of
/// one target share one case (one set of connects to the controls'
/// addresses), another port is another target, and another service's
/// check of the same target gets its own plan.
#[test]
fn ip_blocked_pairs_a_targets_checks_once_per_service() {
    use reachability_exporter::verdict::{BlockingKind, Case};
    let config = reachability_exporter::config::Config::parse(
        "resolvers:\n  c: { udp: \"127.0.0.1:53\" }\nservices:\n  s:\n    dns: { names: [a.test], resolvers: [system, c] }\n    tcp: [\"a.test:443\", \"a.test:80\"]\n    tls: [{ target: \"a.test:443\", control_sni: b.test }]\n  t:\n    dns: { names: [a.test], resolvers: [system, c] }\n    tls: [\"a.test:443\"]\n",
        std::path::Path::new("t.yaml"),
    )
    .unwrap();
    // Entries in config order: s: dns ×2 (0, 1), tcp :443 (2), tcp :80 (3),
    // tls :443 (4); t: dns ×2 (5, 6), tls :443 (7).
    let plans = reachability_exporter::verdict::plans(&config).plans;
    let got: Vec<(usize, &str, Vec<usize>)> = plans
        .iter()
        .filter(|p| p.kind == BlockingKind::IpBlocked)
        .map(|p| {
            let [Case::IpBlocked { checks, .. }] = p.cases.as_slice() else {
                panic!("one ip_blocked case per plan: {:?}", p.cases)
            };
            let checks = checks.iter().map(|c| c.index()).collect();
            (p.service.index(), p.target.as_str(), checks)
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, "a.test:443", vec![2, 4]),
            (0, "a.test:80", vec![3]),
            (1, "a.test:443", vec![7]),
        ]
    );
}
