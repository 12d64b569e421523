//! The web config (`--web.config.file`) as exporter-toolkit users write it:
//! mutual TLS, TLS versions, response headers, and every field that cannot
//! mean anything with rustls refused at start with its file, line and why.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_reachability_exporter");

/// Starts the binary with `web.yml` holding `web` (in `pki`'s directory,
/// beside `server.pem`/`server.key` for 127.0.0.1); returns it, where it
/// listens, and its first log line.
fn start(pki: &Pki, web: &str) -> (Killed, SocketAddr, String) {
    let dir = pki.dir.path();
    let (cert, key) = pki.server_pem(&["127.0.0.1"]);
    std::fs::write(dir.join("server.pem"), cert).unwrap();
    std::fs::write(dir.join("server.key"), key).unwrap();
    std::fs::write(dir.join("web.yml"), web).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(&config, "services:\n  s:\n    tcp: [\"127.0.0.1:1\"]\n").unwrap();
    let mut child = Killed(
        Command::new(BIN)
            .args([
                "--config.file",
                config.to_str().unwrap(),
                "--web.listen-address",
                "127.0.0.1:0",
            ])
            .args(["--web.config.file", dir.join("web.yml").to_str().unwrap()])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let line = BufReader::new(child.0.stderr.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("address="))
        .unwrap_or_else(|| panic!("{line}"))
        .parse()
        .unwrap();
    (child, addr, line)
}

/// GET `path` over TLS with `client`: the response head and body, or
/// `None` when the TLS handshake (or the request) failed.
async fn get_with(
    client: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    path: &str,
) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = client.connect(name, tcp).await.ok()?;
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .ok()?;
    let mut raw = Vec::new();
    // A refused client certificate shows as an alert here under TLS 1.3.
    tls.read_to_end(&mut raw).await.ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    text.starts_with("HTTP/1.1").then_some(text)
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

#[tokio::test]
async fn mutual_tls_with_allowed_names() {
    within(30, async {
        let pki = Pki::new();
        let web = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  client_allowed_sans: [client.test]\n";
        let (child, addr, line) = start(&pki, web);
        assert!(line.contains(" tls=true auth=false"), "{line}");
        let ok = get_with(&pki.client_with(BOTH, Some("client.test"), true), addr, "/-/healthy").await;
        assert!(ok.is_some_and(|t| t.starts_with("HTTP/1.1 200")));
        // Over TLS 1.2 as well.
        let ok = get_with(&pki.client_with(TLS12, Some("client.test"), true), addr, "/-/healthy").await;
        assert!(ok.is_some_and(|t| t.starts_with("HTTP/1.1 200")));
        // No certificate, another name, another CA: no answer.
        assert_eq!(get_with(&pki.client_with(BOTH, None, true), addr, "/-/healthy").await, None);
        assert_eq!(get_with(&pki.client_with(BOTH, Some("other.test"), true), addr, "/-/healthy").await, None);
        assert_eq!(get_with(&pki.client_with(BOTH, Some("client.test"), false), addr, "/-/healthy").await, None);
        drop(child);
    })
    .await;
}

#[tokio::test]
async fn optional_client_certificates_versions_and_headers() {
    within(30, async {
        let pki = Pki::new();
        let web = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.pem\n  min_version: TLS13\n  curve_preferences: [X25519, CurveP256]\n  prefer_server_cipher_suites: true\nhttp_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: DENY\n    content-security-policy: \"default-src 'none'\"\n";
        let (child, addr, _) = start(&pki, web);
        // Without a certificate: in. With one from an unknown CA: out.
        let page = get_with(&pki.client_with(BOTH, None, true), addr, "/").await.expect("no answer");
        let head = page.to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{page}");
        assert!(head.contains("\r\nx-frame-options: deny\r\n"), "{page}");
        // The configured policy replaces the status page's own.
        assert!(head.contains("\r\ncontent-security-policy: default-src 'none'\r\n"), "{page}");
        let healthy = get_with(&pki.client_with(BOTH, None, true), addr, "/-/healthy").await.unwrap();
        assert!(healthy.to_ascii_lowercase().contains("\r\nx-frame-options: deny\r\n"), "{healthy}");
        assert_eq!(get_with(&pki.client_with(BOTH, Some("client.test"), false), addr, "/-/healthy").await, None);
        // min_version TLS13: a TLS 1.2 client gets no answer.
        assert_eq!(get_with(&pki.client_with(TLS12, None, true), addr, "/-/healthy").await, None);
        drop(child);
    })
    .await;
}

/// Each field exporter-toolkit has that cannot work here is refused at
/// start, with the web config's file, line and column, and why.
#[test]
fn what_rustls_cannot_do_is_refused_by_name() {
    let pki = Pki::new();
    let dir = pki.dir.path();
    let (cert, key) = pki.server_pem(&["127.0.0.1"]);
    std::fs::write(dir.join("server.pem"), cert).unwrap();
    std::fs::write(dir.join("server.key"), key).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(&config, "services:\n  s:\n    tcp: [\"127.0.0.1:1\"]\n").unwrap();
    let tls = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";
    let (_, other_key) = pki.server_pem(&["127.0.0.1"]);
    std::fs::write(dir.join("other.key"), other_key).unwrap();
    let mismatch = format!(
        "2:3: tls_server_config: key_file {} is not the key of the certificate in cert_file {}",
        dir.join("other.key").display(),
        dir.join("server.pem").display()
    );
    let cases: Vec<(String, &str)> = vec![
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: other.key\n".to_string(),
            &mismatch,
        ),
        (
            format!("{tls}  client_auth_type: RequestClientCert\n"),
            "4:21: tls_server_config.client_auth_type: RequestClientCert is not supported: rustls accepts a client certificate only after verifying it; use VerifyClientCertIfGiven or RequireAndVerifyClientCert with client_ca_file",
        ),
        (
            format!("{tls}  client_auth_type: RequireAndVerifyClientCert\n"),
            "4:21: tls_server_config.client_auth_type: RequireAndVerifyClientCert needs client_ca_file: the CA certificates that client certificates must chain to",
        ),
        (
            format!("{tls}  client_auth_type: Sometimes\n"),
            "4:21: tls_server_config.client_auth_type: unknown client_auth_type \"Sometimes\": expected NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert",
        ),
        (
            format!("{tls}  client_allowed_sans: [a.test]\n"),
            "4:24: tls_server_config.client_allowed_sans: needs client certificates: set client_auth_type to RequireAndVerifyClientCert (or VerifyClientCertIfGiven) and client_ca_file",
        ),
        (
            format!("{tls}  min_version: TLS10\n"),
            "4:16: tls_server_config.min_version: TLS10 is not offered: rustls speaks TLS 1.2 and 1.3 only (TLS12, TLS13)",
        ),
        (
            format!("{tls}  min_version: TLS13\n  max_version: TLS12\n"),
            "5:16: tls_server_config.max_version: max_version is below min_version",
        ),
        (
            format!("{tls}  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n"),
            "4:19: tls_server_config.cipher_suites: cipher suite \"TLS_RSA_WITH_AES_128_CBC_SHA\" is not offered: rustls has only these TLS 1.2 suites: TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        ),
        (
            format!("{tls}  curve_preferences: [CurveP521]\n"),
            "4:23: tls_server_config.curve_preferences: curve \"CurveP521\" is not offered: rustls (with ring) has X25519, CurveP256 and CurveP384",
        ),
        (
            format!("{tls}  foo: 1\n"),
            "4:3: tls_server_config.foo: unknown field `foo`, expected one of cert_file, key_file, client_auth_type, client_ca_file, min_version, max_version, cipher_suites, curve_preferences, prefer_server_cipher_suites, client_allowed_sans",
        ),
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file:server.key\n".to_string(),
            "3:3: tls_server_config: `key_file:server.key` needs a space after the colon: `key_file: server.key`",
        ),
        (
            "http_server_config:\n  headers: [a]\n".to_string(),
            "2:12: http_server_config.headers: expected a mapping of `key: value` pairs",
        ),
        (
            "http_server_config:\n  http2: true\n".to_string(),
            "2:10: http_server_config.http2: this exporter serves HTTP/1.1 only: leave http2 out or set it to false",
        ),
        (
            "http_server_config:\n  headers:\n    X-Frame-Options: \"\"\n".to_string(),
            "3:22: http_server_config.headers.X-Frame-Options: a header value is printable ASCII, not empty",
        ),
        (
            "http_server_config:\n  headers:\n    Server: nginx\n".to_string(),
            "3:13: http_server_config.headers.Server: header \"Server\" cannot be set: only Content-Security-Policy, Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, X-XSS-Protection can",
        ),
        (
            "basic_auth_users:\n  alice: \"$2y$10$abc\"\n".to_string(),
            "2:10: basic_auth_users.alice: malformed bcrypt hash: Invalid hash: the hash format is malformed; expected 60 ASCII bytes",
        ),
    ];
    for (web, want) in cases {
        let file = dir.join("web.yml");
        std::fs::write(&file, &web).unwrap();
        let out = Command::new(BIN)
            .args(["--config.check", "--config.file", config.to_str().unwrap()])
            .args(["--web.config.file", file.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{web}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            format!("{}:{want}", file.display()),
            "{web}"
        );
    }
}
