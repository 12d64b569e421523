//! The bundled config.yaml loads, and every check is built from it, without
//! sending a packet (its targets are public addresses: never probed here).

use std::path::Path;

use reachability_exporter::config::{Check, Config, Transport, Trust};
use reachability_exporter::engine::catalogue::Catalogue;
use reachability_exporter::verdict::BlockingKind;

#[tokio::test]
async fn bundled_config_builds_every_check() {
    let config = Config::load(Path::new("config.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    for want in [
        "whatsapp",
        "telegram",
        "signal",
        "youtube",
        "facebook",
        "instagram",
        "x",
    ] {
        assert!(names.contains(&want), "config.yaml lacks {want}: {names:?}");
    }
    let controls: Vec<&str> = config
        .resolvers
        .iter()
        .filter(|r| r.is_control())
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(controls, ["cloudflare", "google", "quad9"]);
    // Every service with DNS checks is checked through the system resolver
    // and every control; every app service has a TLS check.
    for s in &config.services {
        let dns_resolvers: std::collections::HashSet<usize> = s
            .checks
            .iter()
            .filter_map(|c| match c {
                Check::Dns(d) => Some(d.resolver),
                _ => None,
            })
            .collect();
        if s.name != "stun_baseline" {
            assert_eq!(dns_resolvers.len(), config.resolvers.len(), "{}", s.name);
            assert!(
                s.checks.iter().any(|c| matches!(c, Check::Tls(_))),
                "{} has no TLS check",
                s.name
            );
        }
    }
    // The call services carry UDP call ports and a TCP comparison.
    for name in [
        "whatsapp",
        "telegram",
        "signal",
        "googlemeet",
        "stun_baseline",
    ] {
        let s = config.services.iter().find(|s| s.name == name).unwrap();
        let udp = s
            .checks
            .iter()
            .filter(|c| matches!(c, Check::CallPort(p) if p.transport == Transport::Udp))
            .count();
        assert!(udp >= 1, "{name} has no UDP call port");
    }
    // Only Signal's chat endpoint skips verification (its own CA).
    let insecure: Vec<String> = config
        .checks()
        .filter_map(|(_, c)| match c {
            Check::Tls(t) if matches!(t.trust, Trust::Insecure) => Some(t.target.written.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(insecure, ["chat.signal.org:443"]);

    // Every TLS check of a name has a neutral control SNI.
    for (s, c) in config.checks() {
        if let Check::Tls(t) = c {
            assert!(t.control_sni.is_some(), "{} {}", s.name, t.target.written);
        }
    }

    let n = config.checks().count();
    let cat = Catalogue::new(config).unwrap();
    assert_eq!(cat.len(), n);
    assert_eq!(n, 145, "update this count when the catalogue changes");
    // Every kind of verdict can be judged from the bundled checks.
    for kind in BlockingKind::ALL {
        assert!(
            cat.plans().any(|(_, p)| p.kind == kind),
            "no {} verdict in config.yaml",
            kind.as_str()
        );
    }
    // Evidence slots are numbered 0.. with no gap and none twice: a round
    // keeps exactly `evidence_slots` of them.
    let mut slots: Vec<usize> = cat
        .plans()
        .flat_map(|(_, p)| p.cases.iter().filter_map(|c| c.evidence()))
        .map(|s| s.index())
        .collect();
    slots.sort_unstable();
    assert!(!slots.is_empty());
    assert_eq!(slots, (0..cat.evidence_slots).collect::<Vec<_>>());
}
