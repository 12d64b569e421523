//! The binary itself: flags, SIGHUP reload, SIGTERM shutdown.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_reachability_exporter");

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn version_flag() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("reachability_exporter {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_flags_are_rejected() {
    let out = Command::new(BIN)
        .args(["--log.format", "xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log.format"));
}

#[tokio::test]
async fn serves_reloads_on_sighup_and_stops_on_sigterm() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let first = closed_port().await;
        let second = closed_port().await;
        let config = dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!("services:\n  one:\n    tcp: [\"{first}\"]\n"),
        )
        .unwrap();
        let mut child = Command::new(BIN)
            .args([
                "--config.file",
                config.to_str().unwrap(),
                "--web.listen-address",
                "127.0.0.1:0",
                "--log.format",
                "logfmt",
            ])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        // ts=… level=info msg=listening address=127.0.0.1:PORT checks=1
        let line = lines.next().unwrap().unwrap();
        assert!(line.contains("level=info msg=listening"), "{line}");
        let addr: SocketAddr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("address="))
            .unwrap()
            .parse()
            .unwrap();
        std::thread::spawn(move || for _ in lines {});

        let (status, body) = get(addr, "/metrics", None).await;
        assert_eq!(status, 200);
        assert_eq!(
            sample(
                &body,
                "reachability_tcp_connect_success",
                &[("service", "one")]
            ),
            Some(0.0)
        );

        std::fs::write(
            &config,
            format!("services:\n  two:\n    tcp: [\"{second}\"]\n"),
        )
        .unwrap();
        signal(pid, "-HUP");
        let start = Instant::now();
        loop {
            let (_, body) = get(addr, "/metrics", None).await;
            if sample(
                &body,
                "reachability_tcp_connect_success",
                &[("service", "two")],
            )
            .is_some()
            {
                assert_eq!(
                    sample(
                        &body,
                        "reachability_tcp_connect_success",
                        &[("service", "one")]
                    ),
                    None
                );
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "SIGHUP did not reload: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        signal(pid, "-TERM");
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "no exit after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(status.success(), "{status:?}");
    })
    .await;
}
