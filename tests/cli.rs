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

/// Starts the binary on 127.0.0.1:0 with `config` and `extra` flags, and
/// returns it with the address it listens on (read from its first log line).
fn spawn_exporter(config: &std::path::Path, extra: &[&str]) -> (std::process::Child, SocketAddr) {
    let mut args = vec![
        "--config.file",
        config.to_str().unwrap(),
        "--web.listen-address",
        "127.0.0.1:0",
        "--log.format",
        "logfmt",
    ];
    args.extend_from_slice(extra);
    let mut child = Command::new(BIN)
        .args(&args)
        .env("NODE_NAME", "7")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
    (child, addr)
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
            format!(
                "labels: {{ country: RU, site: \"node-${{NODE_NAME}}\" }}\nservices:\n  one:\n    tcp: [\"{first}\"]\n"
            ),
        )
        .unwrap();
        let (mut child, addr) = spawn_exporter(&config, &[]);
        let pid = child.id();

        let (status, body) = get(addr, "/metrics", None).await;
        assert_eq!(status, 200);
        // Vantage labels, `${NODE_NAME}` expanded, on every probe series.
        let vantage = [("service", "one"), ("country", "RU"), ("site", "node-7")];
        assert_eq!(
            sample(&body, "reachability_tcp_connect_success", &vantage),
            Some(0.0),
            "{body}"
        );
        assert_eq!(sample(&body, "reachability_failure_info", &vantage), Some(1.0));
        assert_eq!(sample(&body, "reachability_service_up", &vantage), Some(0.0));

        std::fs::write(
            &config,
            format!("services:\n  two:\n    tcp: [\"{second}\"]\n"),
        )
        .unwrap();
        signal(pid, "-HUP");
        eventually(addr, "/metrics", "SIGHUP did not reload", |b| {
            let up = |svc| sample(b, "reachability_tcp_connect_success", &[("service", svc)]);
            up("two").is_some() && up("one").is_none()
        })
        .await;

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

#[test]
fn check_command_exit_codes_table_and_json() {
    let dir = tempfile::tempdir().unwrap();
    // A listening socket completes TCP handshakes from its backlog.
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open_addr = open.local_addr().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let good = write(
        "good.yaml",
        format!("services:\n  up:\n    tcp: [\"{open_addr}\"]\n"),
    );
    let mixed = write(
        "mixed.yaml",
        format!("services:\n  up:\n    tcp: [\"{open_addr}\"]\n  down:\n    tcp: [\"{closed}\"]\n"),
    );
    let run = |args: &[&str]| Command::new(BIN).args(args).output().unwrap();

    let out = run(&["check", "--config.file", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("SERVICE  CHECK  TARGET"), "{table}");
    assert!(
        lines[1].starts_with("up       tcp    ") && lines[1].contains(" ok "),
        "{table}"
    );
    // A loopback connect takes hundredths of a millisecond: two decimals
    // under 10 ms, as on the status page.
    let latency: Vec<&str> = lines[1].split_whitespace().rev().take(2).collect();
    assert_eq!(latency[0], "ms", "{table}");
    let (whole, decimals) = latency[1].split_once('.').expect("a decimal point");
    assert!(
        whole.parse::<u32>().unwrap() < 10 && decimals.len() == 2,
        "{table}"
    );
    assert!(
        !table.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    assert_eq!(lines.last(), Some(&"1 check, 1 passed, 0 failed"));
    // Log flags after the subcommand too.
    let out = run(&[
        "check",
        "--config.file",
        good.to_str().unwrap(),
        "--log.level",
        "debug",
        "--log.format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // The summary counts in the singular when it is one.
    let out = run(&["--config.check", "--config.file", good.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{}: valid: 1 service, 1 check", good.display())
    );
    // Scheduled services and push mode are named: they start traffic of
    // their own once served.
    let pushing = write(
        "pushing.yaml",
        format!(
            "services:\n  up:\n    tcp: [\"{open_addr}\"]\n  later:\n    every: 5m\n    tcp: [\"{open_addr}\"]\n\
             remote_write:\n  url: http://127.0.0.1:9/api/v1/write\n  every: 30s\n"
        ),
    );
    let out = run(&["--config.check", "--config.file", pushing.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!(
            "{}: valid: 2 services (1 scheduled), 2 checks, pushing every 30s to http://127.0.0.1:9/api/v1/write",
            pushing.display()
        )
    );

    let out = run(&["check", "--config.file", mixed.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("FAIL    connect/connection_refused"),
        "{table}"
    );

    let out = run(&[
        "check",
        "--config.file",
        mixed.to_str().unwrap(),
        "--service",
        "up",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // No `regime:` references, no verdict (a TCP check makes none).
    assert!(json["network_regime"].is_null(), "{json}");
    assert_eq!(json["verdicts"], serde_json::json!([]), "{json}");
    let v = &json["checks"];
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["service"], "up");
    assert_eq!(v[0]["check"], "tcp");
    assert_eq!(v[0]["target"], open_addr.to_string());
    assert_eq!(v[0]["description"], open_addr.to_string());
    assert!(v[0]["status"].is_null(), "{v}");
    assert_eq!(v[0]["ok"], true);
    assert!(v[0]["duration_seconds"].as_f64().unwrap() > 0.0);

    let out = run(&[
        "check",
        "--config.file",
        mixed.to_str().unwrap(),
        "--service",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "unknown service \"nope\": the config has up, down"
    );
    let out = run(&[
        "check",
        "--config.file",
        "tests/testdata/invalid-listen.yaml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid listen address"));
    let out = run(&["check", "--output", "xml"]);
    assert_eq!(out.status.code(), Some(2));
    drop(open);
}

#[tokio::test]
async fn auto_reload_and_telemetry_path() {
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
        let (mut child, addr) = spawn_exporter(
            &config,
            &["--config.auto-reload", "--web.telemetry-path", "/custom"],
        );
        let (status, body) = get(addr, "/custom", None).await;
        assert_eq!(status, 200);
        assert!(
            body.contains("reachability_tcp_connect_success{service=\"one\""),
            "{body}"
        );
        assert_eq!(get(addr, "/metrics", None).await.0, 404);

        // A change to the file is picked up without a signal...
        std::fs::write(
            &config,
            format!("services:\n  two:\n    tcp: [\"{second}\"]\n"),
        )
        .unwrap();
        eventually(
            addr,
            "/custom",
            "auto-reload did not pick up the change",
            |b| b.contains("service=\"two\"") && !b.contains("service=\"one\""),
        )
        .await;
        // ...and a broken change keeps the running config.
        std::fs::write(&config, "services:\n  three:\n    tcp: [oops]\n").unwrap();
        eventually(addr, "/custom", "a bad change was not reported", |b| {
            b.contains("reachability_exporter_config_last_reload_successful 0")
        })
        .await;
        let (_, body) = get(addr, "/custom", None).await;
        assert!(body.contains("service=\"two\""), "{body}");

        // A test list is watched too: a row added to the list alone is
        // picked up.
        let header = "url,category_code,category_description,date_added,source,notes\n";
        let row = |host: &str| format!("http://{host}:{}/,NEWS,News,2026-01-01,t,\n", second.port());
        let list = dir.path().join("list.csv");
        std::fs::write(&list, format!("{header}{}", row("127.0.0.1"))).unwrap();
        std::fs::write(
            &config,
            format!("services:\n  two:\n    tcp: [\"{second}\"]\ntest_lists:\n  - {{ file: list.csv, checks: [http] }}\n"),
        )
        .unwrap();
        eventually(addr, "/custom", "the list was not loaded", |b| {
            b.contains("reachability_service_info{service=\"127.0.0.1\",category=\"NEWS\"} 1")
        })
        .await;
        std::fs::write(&list, format!("{header}{}{}", row("127.0.0.1"), row("127.0.0.2"))).unwrap();
        eventually(addr, "/custom", "a change to the list alone was not picked up", |b| {
            b.contains("reachability_service_info{service=\"127.0.0.2\",category=\"NEWS\"} 1")
        })
        .await;
        child.kill().unwrap();
        child.wait().unwrap();
    })
    .await;
}

/// What a person needs to act: the HTTP status received in the table and
/// the JSON, and the series' labels as JSON fields.
#[tokio::test]
async fn check_shows_what_it_received() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let http = http_server(None).await;
        let dns = DnsServer::serve(&Pki::new(), &[("a.test.", "127.0.0.1")]).await;
        let config = dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "allowed_ranges: [127.0.0.0/8]\nresolvers:\n  system: {{ udp: \"{}\" }}\nservices:\n  web:\n    http: [\"http://{http}/unavailable\"]\n    download: [\"http://{http}/nothing-here\"]\n    dns: {{ names: [a.test] }}\n",
                dns.udp
            ),
        )
        .unwrap();
        let run = |output: &'static str| {
            let config = config.clone();
            tokio::task::spawn_blocking(move || {
                Command::new(BIN)
                    .args(["check", "--config.file", config.to_str().unwrap(), "--output", output])
                    .output()
                    .unwrap()
            })
        };
        let out = run("table").await.unwrap();
        assert_eq!(out.status.code(), Some(1));
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(table.contains("FAIL    http/http_unexpected_status (503)"), "{table}");
        let out = run("json").await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let v = &json["checks"];
        let http_row = v.as_array().unwrap().iter().find(|r| r["check"] == "http").unwrap();
        assert_eq!(http_row["status"], 503, "{v}");
        assert_eq!(http_row["reason"], "http_unexpected_status");
        // A download refused with a status says which, too.
        assert!(table.contains("FAIL    http/http_unexpected_status (404)"), "{table}");
        let download = v.as_array().unwrap().iter().find(|r| r["check"] == "download").unwrap();
        assert_eq!(download["status"], 404, "{v}");
        let dns_row = v.as_array().unwrap().iter().find(|r| r["check"] == "dns").unwrap();
        assert_eq!(dns_row["target"], "a.test", "{v}");
        assert_eq!(dns_row["resolver"], "system");
        assert_eq!(dns_row["type"], "A");
        assert_eq!(dns_row["description"], "a.test via system (A)");
        assert_eq!(dns_row["ok"], true);
    })
    .await;
}

/// `--web.listen-address` as Prometheus users write it: `:PORT` (every
/// address), a host name, and repeated to serve on several.
#[tokio::test]
async fn listen_addresses_as_exporters_take_them() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, "services:\n  s:\n    tcp: [\"127.0.0.1:1\"]\n").unwrap();
        let mut child = Command::new(BIN)
            .args(["--config.file", config.to_str().unwrap()])
            .args([
                "--web.listen-address",
                ":0",
                "--web.listen-address",
                "localhost:0",
            ])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut ports = Vec::new();
        for _ in 0..2 {
            let line = lines.next().unwrap().unwrap();
            assert!(line.contains("msg=listening"), "{line}");
            assert!(line.contains(" tls=false auth=false"), "{line}");
            let at: SocketAddr = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("address="))
                .unwrap()
                .parse()
                .unwrap();
            ports.push(at);
        }
        // `:0` binds every address (IPv6 and, through it, IPv4); the name
        // resolves to 127.0.0.1.
        assert!(ports[0].ip().is_unspecified(), "{ports:?}");
        assert_eq!(ports[1].ip().to_string(), "127.0.0.1");
        for at in &ports {
            let loopback = SocketAddr::new([127, 0, 0, 1].into(), at.port());
            assert_eq!(get(loopback, "/-/healthy", None).await.0, 200, "{at}");
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Anything else is refused as a usage error, naming the flag.
        let out = Command::new(BIN)
            .args(["--web.listen-address", "9799", "--config.check"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--web.listen-address") && err.contains("expected HOST:PORT or :PORT"),
            "{err}"
        );
    })
    .await;
}

/// A reload that changes `listen` says that it needs a restart, and the
/// exporter keeps serving where it was.
#[tokio::test]
async fn a_listen_change_on_reload_is_logged() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let free = |_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        };
        let (first, second) = (free(0), free(1));
        let config = dir.path().join("config.yaml");
        let write = |at: SocketAddr| {
            std::fs::write(
                &config,
                format!("listen: \"{at}\"\nservices:\n  s:\n    tcp: [\"127.0.0.1:1\"]\n"),
            )
            .unwrap()
        };
        write(first);
        let mut child = Command::new(BIN)
            .args(["--config.file", config.to_str().unwrap()])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                if tx.send(line.unwrap()).is_err() {
                    return;
                }
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(line.contains(&format!("address={first}")), "{line}");
        write(second);
        signal(child.id(), "-HUP");
        let warned = loop {
            let line = rx.recv_timeout(Duration::from_secs(5)).unwrap();
            if line.contains("listen changed") {
                break line;
            }
        };
        assert!(warned.contains("level=warn"), "{warned}");
        assert!(
            warned.contains(&format!("serving={first} configured={second}")),
            "{warned}"
        );
        assert_eq!(get(first, "/-/healthy", None).await.0, 200);
        child.kill().unwrap();
        child.wait().unwrap();
    })
    .await;
}

#[test]
fn telemetry_path_must_be_a_free_path() {
    for bad in [
        "metrics",
        "/probe",
        "/-/ready",
        "/a?b",
        "/status.css",
        "/a b",
        "/a\"b<",
    ] {
        let out = Command::new(BIN)
            .args(["--web.telemetry-path", bad, "--config.check"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--web.telemetry-path"),
            "{bad}"
        );
    }
}

/// GET `path` over HTTPS (trusting the test CA) with optional basic-auth
/// credentials; the status code and the body.
async fn https_get(pki: &Pki, addr: SocketAddr, path: &str, auth: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = pki.client().connect(name, tcp).await.unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap();
    (status, text)
}

#[tokio::test]
async fn web_config_tls_and_basic_auth() {
    within(30, async {
        let pki = Pki::new();
        let dir = pki.dir.path();
        let (cert, key) = pki.server_pem(&["127.0.0.1"]);
        std::fs::write(dir.join("server.pem"), cert).unwrap();
        std::fs::write(dir.join("server.key"), key).unwrap();
        let hash = bcrypt::hash("s3cr3t", 4).unwrap();
        std::fs::write(
            dir.join("web.yml"),
            format!("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\nbasic_auth_users:\n  alice: \"{hash}\"\n"),
        )
        .unwrap();
        let closed = closed_port().await;
        let config = dir.join("config.yaml");
        std::fs::write(&config, format!("services:\n  one:\n    tcp: [\"{closed}\"]\n")).unwrap();
        let web = dir.join("web.yml");
        let (mut child, addr) = spawn_exporter(&config, &["--web.config.file", web.to_str().unwrap()]);

        // alice:s3cr3t and alice:wrong, base64.
        let good = "Basic YWxpY2U6czNjcjN0";
        let wrong = "Basic YWxpY2U6d3Jvbmc=";
        let (status, text) = https_get(&pki, addr, "/metrics", None).await;
        assert_eq!(status, 401, "{text}");
        assert!(text.to_ascii_lowercase().contains("www-authenticate: basic realm=\"reachability_exporter\""), "{text}");
        assert_eq!(https_get(&pki, addr, "/metrics", Some(wrong)).await.0, 401);
        assert_eq!(https_get(&pki, addr, "/", None).await.0, 401);
        let (status, text) = https_get(&pki, addr, "/metrics", Some(good)).await;
        assert_eq!(status, 200);
        assert!(text.contains("reachability_tcp_connect_success{service=\"one\""), "{text}");
        // Twice: the second is answered from the verified-login memory.
        assert_eq!(https_get(&pki, addr, "/metrics", Some(good)).await.0, 200);
        // Kubernetes probes carry no credentials.
        assert_eq!(https_get(&pki, addr, "/-/healthy", None).await.0, 200);
        assert_eq!(https_get(&pki, addr, "/-/ready", None).await.0, 200);
        // Plain HTTP gets no HTTP answer from the TLS port.
        let (status, _) = tokio::time::timeout(Duration::from_secs(3), async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let _ = s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n").await;
            let mut raw = Vec::new();
            let _ = s.read_to_end(&mut raw).await;
            (String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 200"), ())
        })
        .await
        .unwrap_or((false, ()));
        assert!(!status, "plain HTTP must not be served");
        child.kill().unwrap();
        child.wait().unwrap();

        // A password instead of a hash is refused with the file and line.
        std::fs::write(&web, "basic_auth_users:\n  bob: hunter2\n").unwrap();
        let out = Command::new(BIN)
            .args(["--config.check", "--config.file", config.to_str().unwrap(), "--web.config.file", web.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            format!("{}:2:8: basic_auth_users.bob: not a bcrypt hash (it starts with $2a$, $2b$ or $2y$): store hashes, never passwords", web.display())
        );
    })
    .await;
}
