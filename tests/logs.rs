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

#[tokio::test]
async fn json_failure_lines_carry_the_span() {
    within(20, async {
        let dir = tempfile::tempdir().unwrap();
        let (config, _silent) = config(dir.path());
        let lines = logs_of_one_scrape(&config, "json", 2).await;
        let failures: Vec<serde_json::Value> = lines
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == "check failed")
            .collect();
        let tcp = failures
            .iter()
            .find(|v| v["span"]["check"] == "tcp")
            .unwrap_or_else(|| panic!("no tcp failure in {lines:#?}"));
        assert_eq!(tcp["span"]["service"], "lab");
        assert_eq!(tcp["span"]["target"], "127.0.0.1:1");
        assert_eq!(tcp["reason"], "connection_refused");
    })
    .await;
}
