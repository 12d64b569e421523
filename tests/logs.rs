//! What the binary logs about a failing check: one line per failure,
//! inside the check's span, so that each names its service, kind and
//! target (and, for DNS, resolver and type) in logfmt and in JSON.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_reachability_exporter");

/// Runs the binary on `config` at debug level in `format`, scrapes it
/// once, and returns its log lines once `wanted` lines say "check failed"
/// (or after 5 s).
async fn logs_of_one_scrape(config: &std::path::Path, format: &str, wanted: usize) -> Vec<String> {
    let mut child = Command::new(BIN)
        .args(["--config.file", config.to_str().unwrap()])
        .args(["--web.listen-address", "127.0.0.1:0"])
        .args(["--log.level", "debug", "--log.format", format])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let mut lines = Vec::new();
    let addr: SocketAddr = loop {
        let line = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let found = line
            .split(['"', ' '])
            .find_map(|w| w.strip_prefix("address=").map(str::to_string))
            .or_else(|| {
                serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v["address"].as_str().map(str::to_string))
            });
        lines.push(line);
        if let Some(a) = found {
            break a.parse().unwrap();
        }
    };
    let (status, _) = get(addr, "/metrics", Some("2")).await;
    assert_eq!(status, 200);
    let failures = |lines: &[String]| lines.iter().filter(|l| l.contains("check failed")).count();
    while failures(&lines) < wanted {
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(line) => lines.push(line),
            Err(_) => break,
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    lines
}

/// A config with a DNS check against a resolver that never answers (its
/// socket, returned, must stay open) and a TCP check of a closed port.
fn config(dir: &std::path::Path) -> (std::path::PathBuf, std::net::UdpSocket) {
    let path = dir.join("config.yaml");
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns = silent.local_addr().unwrap();
    std::fs::write(
        &path,
        format!(
            "allowed_ranges: [127.0.0.0/8]\nresolvers:\n  system: {{ udp: \"{dns}\" }}\nservices:\n  lab:\n    dns: {{ names: [a.test] }}\n    tcp: [\"127.0.0.1:1\"]\n"
        ),
    )
    .unwrap();
    (path, silent)
}

#[tokio::test]
async fn logfmt_failure_lines_name_the_check() {
    within(20, async {
        let dir = tempfile::tempdir().unwrap();
        let (config, _silent) = config(dir.path());
        let lines = logs_of_one_scrape(&config, "logfmt", 2).await;
        let tcp = lines
            .iter()
            .find(|l| l.contains("msg=\"check failed\"") && l.contains("check=tcp"))
            .unwrap_or_else(|| panic!("no tcp failure line in {lines:#?}"));
        assert!(
            tcp.contains(" span=check service=lab check=tcp target=127.0.0.1:1 "),
            "{tcp}"
        );
        assert!(
            tcp.contains(" stage=connect reason=connection_refused "),
            "{tcp}"
        );
        let dns = lines
            .iter()
            .find(|l| l.contains("msg=\"check failed\"") && l.contains("check=dns"))
            .unwrap_or_else(|| panic!("no dns failure line in {lines:#?}"));
        assert!(
            dns.contains(" service=lab check=dns target=a.test resolver=system type=A "),
            "{dns}"
        );
        assert!(
            dns.contains(" reason=generic_timeout_error cut=true"),
            "{dns}"
        );
    })
    .await;
}

/// The keys of one JSON object, in order, repeats included (serde_json's
/// `Value` would keep only the last of a repeated key).
struct Keys(Vec<String>);

impl<'de> serde::Deserialize<'de> for Keys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, _)) = m.next_entry::<String, serde::de::IgnoredAny>()? {
                    keys.push(k);
                }
                Ok(Keys(keys))
            }
        }
        d.deserialize_map(V)
    }
}

#[tokio::test]
async fn json_lines_are_flat_objects_with_unique_keys_and_plain_values() {
    within(20, async {
        let dir = tempfile::tempdir().unwrap();
        let (config, _silent) = config(dir.path());
        let lines = logs_of_one_scrape(&config, "json", 2).await;
        // Every line is one JSON object, each key once, none a Rust debug
        // rendering.
        for line in &lines {
            let Keys(keys) = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let mut unique = keys.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), keys.len(), "a repeated key: {line}");
            assert!(!line.contains("Some(") && !line.contains("None"), "{line}");
        }
        let failures: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["msg"] == "check failed")
            .collect();
        let tcp = failures
            .iter()
            .find(|v| v["check"] == "tcp")
            .unwrap_or_else(|| panic!("no tcp failure in {lines:#?}"));
        // The probe's target, not the Rust module the event came from.
        assert_eq!(tcp["target"], "127.0.0.1:1", "{tcp}");
        assert_eq!(tcp["service"], "lab");
        assert_eq!(tcp["span"], "check");
        assert_eq!(tcp["level"], "debug");
        assert_eq!(tcp["stage"], "connect");
        assert_eq!(tcp["reason"], "connection_refused");
        assert_eq!(tcp["cut"], false, "a boolean, not text: {tcp}");
        // A DNS failure names its resolver and record type.
        let dns = failures
            .iter()
            .find(|v| v["check"] == "dns")
            .unwrap_or_else(|| panic!("no dns failure in {lines:#?}"));
        assert_eq!(dns["target"], "a.test", "{dns}");
        assert_eq!(dns["resolver"], "system");
        assert_eq!(dns["type"], "A");
        assert_eq!(dns["reason"], "generic_timeout_error");
        assert_eq!(dns["cut"], true);
    })
    .await;
}
