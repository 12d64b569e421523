//! Every invalid config under tests/testdata/ fails with exactly the message
//! paired with it here: file, line, column, key path and the rule broken (a
//! test list's row: the list's file and line).

use std::path::Path;

use reachability_exporter::config::Config;

const CASES: &[(&str, &str)] = &[
    (
        "address-bad-host",
        "3:11: services.a.tcp[0]: invalid address \"exa mple.com:443\": invalid DNS name \"exa mple.com\"",
    ),
    (
        "address-ipv6-brackets",
        "3:11: services.a.tls[0]: invalid address \"2001:db8::1:443\": write IPv6 addresses in brackets, such as [2001:db8::1]:443",
    ),
    (
        "address-no-port",
        "3:11: services.a.tcp[0]: invalid address \"example.com\": expected host:port, such as example.com:443",
    ),
    (
        "address-port-range",
        "3:11: services.a.tcp[0]: invalid address \"example.com:70000\": the port must be a number from 1 to 65535",
    ),
    (
        "ca-file-missing",
        "4:9: services.a.tls[0].ca_file: cannot read ca_file tests/testdata/missing.pem: I/O error: No such file or directory (os error 2)",
    ),
    (
        "call-port-method",
        "4:44: services.a.call_ports[0].method: unknown value `ping`, expected one of stun, connect",
    ),
    (
        "call-port-two-transports",
        "4:9: services.a.call_ports[0]: a call port takes exactly one of `udp` and `tcp`",
    ),
    (
        "call-port-udp-connect",
        "4:9: services.a.call_ports[0]: `method: connect` needs `tcp`: UDP has no connection; a udp call port is probed with STUN",
    ),
    (
        "cidr",
        "1:18: allowed_ranges[0]: invalid CIDR \"10.0.0.0/33\": expected an address range such as 10.0.0.0/8",
    ),
    (
        "dns-name",
        "3:20: services.a.dns.names[0]: invalid DNS name \"bad..example.com\"",
    ),
    (
        "doh-scheme",
        "2:14: resolvers.cf.doh: invalid DoH URL \"http://1.1.1.1/dns-query\": must start with https://",
    ),
    (
        "duplicate-check",
        "5:9: services.a.tcp[1]: duplicate tcp target \"example.com:443\"",
    ),
    ("duplicate-key", "4:5: services.a.tcp: duplicate key `tcp`"),
    ("duplicate-service", "4:3: services.a: duplicate key `a`"),
    (
        "duration-bare-number",
        "4:47: services.a.tls[0].timeout: invalid duration \"3\": expected a number and a unit, such as 500ms, 5s or 1m",
    ),
    (
        "duration-unit",
        "1:10: timeout: invalid duration \"5x\": expected a number and a unit, such as 500ms, 5s or 1m",
    ),
    (
        "duration-zero",
        "3:14: services.a.timeout: invalid duration \"0s\": must be greater than zero",
    ),
    (
        "max-addresses-alone",
        "4:9: services.a.tcp[0]: `max_addresses` needs `all_addresses: true`",
    ),
    (
        "ip-family",
        "3:16: services.a.ip_family: unknown value `ipv5`, expected one of ipv4, ipv6, any",
    ),
    (
        "ech-value",
        "3:39: services.a.tls[0].ech: unknown value `yes`, expected one of grease",
    ),
    (
        "shape-ech-list",
        "3:39: services.a.tls[0].ech: expected `grease`, such as `ech: grease`",
    ),
    (
        "regime-ech",
        "2:13: regime.foreign[0]: a reference is one handshake: control_sni, all_addresses and ech do not apply",
    ),
    (
        "quic-alpn",
        "4:9: services.a.quic[0]: `alpn` is empty: name at least one protocol, such as h3",
    ),
    (
        "download-rate",
        "4:50: services.a.download[0].min_rate: invalid size \"fast\": expected a positive number of bytes, optionally with KiB, MiB or GiB, such as 64KiB",
    ),
    (
        "control-sni",
        "3:18: services.a.control_sni: invalid DNS name \"not a name\"",
    ),
    (
        "empty-service",
        "4:11: services.signal: service has no checks: add dns, tcp, tls, call_ports, http, download, upload or quic",
    ),
    (
        "http-scheme",
        "3:12: services.a.http[0]: invalid URL \"ftp://example.com/\": the scheme must be http or https",
    ),
    (
        "http-size",
        "4:50: services.a.http[0].max_body: invalid size \"64KB\": expected a positive number of bytes, optionally with KiB, MiB or GiB, such as 64KiB",
    ),
    (
        "http-status",
        "4:54: services.a.http[0].status[1]: invalid status range \"299-200\": the first code is larger",
    ),
    (
        "insecure-and-ca",
        "4:9: services.a.tls[0]: `insecure: true` and `ca_file` exclude each other",
    ),
    (
        "label-reserved",
        "2:13: labels.instance: label name \"instance\" is reserved: the exporter's series or Prometheus use it",
    ),
    (
        "label-unset-env",
        "2:9: labels.site: environment variable REACHABILITY_TEST_UNSET_VARIABLE is not set",
    ),
    (
        "listen",
        "1:9: listen: invalid listen address \"localhost\": expected HOST:PORT or :PORT, such as 0.0.0.0:9799, localhost:9799 or :9799",
    ),
    (
        "module-kind",
        "3:11: modules.q.kind: unknown value `smtp`, expected one of dns, tcp, tls, call_port, http, download, quic, upload",
    ),
    (
        "module-option",
        "3:5: modules.dns_a: `sni` does not apply to a dns module",
    ),
    (
        "no-services",
        " services: no services configured: add at least one",
    ),
    (
        "probe-allow",
        "1:15: probe_allow[0]: invalid probe_allow pattern \"*.whatsapp.net:https\": expected a host glob or a CIDR, optionally with :port, such as \"*.whatsapp.net:443\" or \"10.0.0.0/8\"",
    ),
    (
        "record-type",
        "3:42: services.a.dns.types[0]: unknown value `MX`, expected one of A, AAAA",
    ),
    (
        "resolver-hostname",
        "2:18: resolvers.google.dot: invalid resolver address \"dns.google:853\": must be an IP address (a resolver must not depend on DNS)",
    ),
    (
        "resolver-two-kinds",
        "2:8: resolvers.lab: a resolver takes exactly one of `resolv_conf`, `udp`, `tcp`, `dot`, `doh`",
    ),
    (
        "server-name-plain",
        "2:6: resolvers.q: `server_name` and `ca_file` apply only to `dot` and `doh` resolvers",
    ),
    (
        "unknown-key-service",
        "3:5: services.a.tpc: unknown field `tpc`, expected one of resolve_with, timeout, ip_family, control_sni, ech, locate, every, allowed_ranges, dns, tcp, tls, call_ports, http, download, quic, upload",
    ),
    (
        "locate-no-verdict",
        "4:9: services.a.tls[0].locate: needs control_sni or `ech: grease`: a search starts when the check's sni_filtered or ech_blocked verdict is 1",
    ),
    (
        "locate-unused",
        "3:5: services.a.locate: no tls check of this service has control_sni or `ech: grease`: no verdict would start a search",
    ),
    (
        "remote-write-url",
        "2:8: remote_write.url: invalid URL \"ftp://x/\": the scheme must be http or https",
    ),
    (
        "remote-write-auth",
        "4:22: remote_write.bearer_token_file: basic_auth and bearer_token_file exclude each other",
    ),
    (
        "remote-write-url-credentials",
        "2:8: remote_write.url: credentials in the URL are not used (and would be logged): put them in basic_auth",
    ),
    (
        "remote-write-passwords",
        "3:15: remote_write.basic_auth: password and password_file exclude each other: give one",
    ),
    (
        "remote-write-key",
        "3:30: remote_write.basic_auth.passwd: unknown field `passwd`, expected one of username, password, password_file",
    ),
    (
        "remote-write-header",
        "3:32: remote_write.headers.Content-Encoding: Content-Encoding is set by the remote-write protocol",
    ),
    (
        "service-every-short",
        "3:12: services.a.every: must be at least 1s: the service's checks run this often, in the background",
    ),
    (
        "locate-every",
        "4:22: services.a.locate.every: must be at least 10s: each search opens tens of connections and asks routers for ICMP",
    ),
    (
        "locate-max-hops",
        "4:25: services.a.locate.max_hops: `max_hops: 100`: expected 1 to 64",
    ),
    (
        "locate-key",
        "4:15: services.a.locate.evry: unknown field `evry`, expected one of every, max_hops",
    ),
    (
        "locate-own-sni",
        "3:5: services.a.tls: the tls check of \"127.0.0.1:443\" has locate, but its control_sni is its own SNI: no sni_filtered verdict would start a search (use another name, or `ech: grease`)",
    ),
    (
        "locate-reference",
        "2:13: regime.foreign[0].locate: a reference is one handshake, judged by no verdict: locate does not apply",
    ),
    (
        "regime-unknown-key",
        "2:40: regime.foreign[0].foo: unknown field `foo`, expected one of target, sni, ca_file, insecure, timeout, ip_family, all_addresses, max_addresses, control_sni, ech, locate",
    ),
    (
        "unknown-key-tls",
        "5:9: services.a.tls[0].snii: unknown field `snii`, expected one of target, sni, ca_file, insecure, timeout, ip_family, all_addresses, max_addresses, control_sni, ech, locate",
    ),
    (
        "pace-spread",
        "2:11: pace.spread: invalid share \"150%\": expected a whole percentage from 1% to 90%, such as 50% (the last start must leave its check time to run)",
    ),
    (
        "pace-unknown",
        "2:3: pace.rate: unknown field `rate`, expected one of starts_per_second, spread",
    ),
    (
        "pace-float",
        "2:22: pace.starts_per_second: invalid rate 0.5: expected a whole number of starts a second from 1 to 4294967295, such as 200",
    ),
    (
        "pace-zero",
        "2:22: pace.starts_per_second: invalid rate 0: expected a whole number of starts a second from 1 to 4294967295, such as 200",
    ),
    (
        "test-list-no-resolvers",
        "2:5: test_lists[0].resolvers: empty list: name at least one resolver, such as system",
    ),
    (
        "test-list-check",
        "3:19: test_lists[0].checks[1]: unknown value `ping`, expected one of dns, tls, http",
    ),
    (
        "test-list-empty",
        " test_lists: the test lists give no host to check (only a header, or no check for their URLs) and no service is configured",
    ),
    (
        "test-list-fields",
        "tests/testdata/lists/fields.csv:2:1: test_lists[0]: expected 6 fields (url,category_code,category_description,date_added,source,notes), found 7",
    ),
    (
        "test-list-header",
        "tests/testdata/lists/bad-header.csv:1:1: test_lists[0]: the first line must be the header url,category_code,category_description,date_added,source,notes",
    ),
    (
        "test-list-missing",
        "5:5: test_lists[0].file: cannot read test list tests/testdata/lists/missing.csv: No such file or directory (os error 2)",
    ),
    (
        "test-list-row",
        "tests/testdata/lists/bad-row.csv:3:1: test_lists[0]: invalid URL \"not a url\": a URL starts with http:// or https://",
    ),
    (
        "test-list-taken",
        "tests/testdata/lists/taken.csv:3:1: test_lists[0]: host \"a.example\" is also a configured service: remove it from the list or rename the service",
    ),
    (
        "unknown-key-top",
        "2:1: listen_port: unknown field `listen_port`, expected one of listen, timeout, max_concurrent_checks, min_interval, pace, labels, probe_allow, modules, allowed_ranges, resolvers, services, test_lists, regime, remote_write",
    ),
    (
        "unknown-resolve-with",
        "5:19: services.a.resolve_with: unknown resolver \"google\": known resolvers are system, quad9",
    ),
    (
        "unknown-resolver",
        "5:27: services.a.dns.resolvers[1]: unknown resolver \"cloudflare\": known resolvers are system",
    ),
    ("yaml-syntax", "3:10: services.a.tcp: unclosed bracket '['"),
    // Values of the wrong shape, in the config's words (#17).
    (
        "download-url-number",
        "3:23: services.a.download[0].url: invalid URL \"5\": a URL starts with http:// or https://",
    ),
    (
        "http-url-no-scheme",
        "3:12: services.a.http[0]: invalid URL \"127.0.0.1:8080/\": a URL starts with http:// or https://, such as http://127.0.0.1:8080/",
    ),
    (
        "max-concurrent-word",
        "1:24: max_concurrent_checks: expected a number of checks, such as 1024",
    ),
    (
        "misindented-key",
        "5:6: services.lab: this line is indented differently from the lines before it: indent the keys of one mapping, and the items of one list, by the same number of spaces",
    ),
    (
        "no-space-nested",
        "3:5: services.lab: `timeout:5s` needs a space after the colon: `timeout: 5s`",
    ),
    (
        "no-space-top",
        "1:1: `timeout:5s` needs a space after the colon: `timeout: 5s`",
    ),
    (
        "record-type-mx",
        "3:37: services.a.dns.types[0]: unknown value `MX`, expected one of A, AAAA",
    ),
    (
        "shape-call-port-string",
        "3:18: services.a.call_ports[0]: a call port is a mapping such as { udp: \"HOST:PORT\" } or { tcp: \"HOST:PORT\" }",
    ),
    (
        "shape-control-sni-list",
        "3:18: services.a.control_sni: expected a single value, not a list or a mapping",
    ),
    (
        "shape-dns-list",
        "3:10: services.a.dns: expected a mapping such as { names: [web.whatsapp.com], types: [A, AAAA] }",
    ),
    (
        "shape-dns-names-string",
        "3:19: services.a.dns.names: expected a list of DNS names, such as [web.whatsapp.com]",
    ),
    (
        "shape-insecure-string",
        "3:45: services.a.tls[0].insecure: expected true or false",
    ),
    (
        "shape-labels-list",
        "1:9: labels: expected a mapping of label names to values, such as { country: RU, site: msk-1 }",
    ),
    (
        "shape-min-interval-list",
        "1:15: min_interval: expected a single value, not a list or a mapping",
    ),
    (
        "shape-module-string",
        "2:6: modules.m: a module is a mapping such as { kind: tls, timeout: 5s }",
    ),
    (
        "shape-pace-number",
        "1:7: pace: expected a mapping such as { starts_per_second: 200, spread: 50% }",
    ),
    (
        "shape-ranges-string",
        "1:17: allowed_ranges: expected a list of address ranges, such as [10.0.0.0/8]",
    ),
    (
        "shape-resolver-string",
        "2:6: resolvers.c: a resolver is a mapping such as { doh: \"https://1.1.1.1/dns-query\" } or { udp: \"1.1.1.1:53\" }",
    ),
    (
        "shape-service-list",
        "2:6: services.a: a service is a mapping of its checks, such as { tls: [\"web.whatsapp.com:443\"], dns: { names: [web.whatsapp.com] } }",
    ),
    (
        "shape-services-list",
        "1:11: services: expected a mapping of service names to their checks, such as `whatsapp: { tls: [\"web.whatsapp.com:443\"] }`",
    ),
    (
        "shape-services-string",
        "1:11: services: expected a mapping of service names to their checks, such as `whatsapp: { tls: [\"web.whatsapp.com:443\"] }`",
    ),
    (
        "shape-status-number",
        "3:48: services.a.http[0].status: expected a list of codes or ranges, such as [200, \"300-399\"]",
    ),
    (
        "shape-target-list",
        "3:21: services.a.tls[0].target: expected a single value, not a list or a mapping",
    ),
    (
        "shape-tcp-mapping",
        "3:10: services.a.tcp: expected a list of targets, such as [\"web.whatsapp.com:443\"]",
    ),
    (
        "shape-tcp-string",
        "3:10: services.a.tcp: expected a list of targets, such as [\"web.whatsapp.com:443\"]",
    ),
    (
        "shape-test-lists-string",
        "1:13: test_lists: expected a list of files, such as [lists/ru.csv] or [{ file: lists/ru.csv, checks: [tls] }]",
    ),
    (
        "tab-indented",
        "2:2: YAML is indented with spaces, not tabs",
    ),
    (
        "tls-target-url",
        "3:11: services.a.tls[0]: invalid address \"https://whatsapp.test/\": a target is HOST:PORT, not a URL: write whatsapp.test:443",
    ),
    (
        "top-level-list",
        "1:1: a config file is a mapping of keys, such as `services:`, `resolvers:` and `timeout:`, not a list",
    ),
    (
        "two-documents",
        "5:1: one YAML document per file: this `---` starts a second one; remove it and merge the documents",
    ),
    // The network regime's references.
    (
        "regime-no-foreign",
        "2:3: regime.foreign: needs at least one foreign reference: the regime is judged from whether foreign hosts answer",
    ),
    (
        "regime-empty-foreign",
        "3:12: regime.foreign: needs at least one foreign reference: the regime is judged from whether foreign hosts answer",
    ),
    (
        "regime-control-sni",
        "3:7: regime.foreign[0]: a reference is one handshake: control_sni, all_addresses and ech do not apply",
    ),
    (
        "regime-foreign-string",
        "2:12: regime.foreign: expected a list of targets, such as [\"www.google.com:443\"]",
    ),
    // From a new user's walkthrough: the forms the first round missed.
    (
        "no-space-last-key",
        "4:5: services.ok: `timeout:5s` needs a space after the colon: `timeout: 5s`",
    ),
    (
        "no-space-flow",
        "2:11: services.ok: `tcp:[…` needs a space after the colon: `tcp: […`",
    ),
    (
        "dns-name-url",
        "3:20: services.a.dns.names[0]: invalid DNS name \"https://a.test/\": a name, not a URL: write a.test",
    ),
    (
        "call-port-scheme",
        "3:25: services.a.call_ports[0].udp: invalid address \"stun:127.0.0.1:3478\": expected HOST:PORT, such as example.com:443, with nothing before the host (no `stun:` or other scheme)",
    ),
];

#[test]
fn every_invalid_config_has_its_exact_message() {
    let dir = Path::new("tests/testdata");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("invalid-") && n.ends_with(".yaml"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = CASES
        .iter()
        .map(|(n, _)| format!("invalid-{n}.yaml"))
        .collect();
    listed.sort();
    assert_eq!(
        files, listed,
        "every testdata file is paired with a message, and only those"
    );
    assert!(files.len() >= 15);

    for (name, want) in CASES {
        let file = dir.join(format!("invalid-{name}.yaml"));
        let err = Config::load(&file).expect_err(name).to_string();
        // A test list's row is reported in the list's own file.
        let want = if want.starts_with("tests/testdata/lists/") {
            want.to_string()
        } else {
            format!("{}:{want}", file.display())
        };
        assert_eq!(err, want, "{name}");
    }
}

#[test]
fn a_missing_file_is_named() {
    let err = Config::load(Path::new("tests/testdata/does-not-exist.yaml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot read config file tests/testdata/does-not-exist.yaml: No such file or directory (os error 2)"
    );
}

#[test]
fn config_check_flag_exits_0_or_1() {
    let bin = env!("CARGO_BIN_EXE_reachability_exporter");
    let bad = std::process::Command::new(bin)
        .args([
            "--config.check",
            "--config.file",
            "tests/testdata/invalid-duration-unit.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr).trim(),
        "tests/testdata/invalid-duration-unit.yaml:1:10: timeout: invalid duration \"5x\": expected a number and a unit, such as 500ms, 5s or 1m"
    );
    let good = std::process::Command::new(bin)
        .args(["--config.check", "--config.file", "config.yaml"])
        .output()
        .unwrap();
    assert_eq!(
        good.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stdout).starts_with("config.yaml: valid: "));
    // A missing file: named once, with the OS's reason once; a missing web
    // config is called that.
    let run = |args: &[&str]| std::process::Command::new(bin).args(args).output().unwrap();
    let out = run(&[
        "--config.check",
        "--config.file",
        "tests/testdata/does-not-exist.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "cannot read config file tests/testdata/does-not-exist.yaml: No such file or directory (os error 2)"
    );
    let out = run(&[
        "--config.check",
        "--config.file",
        "config.yaml",
        "--web.config.file",
        "tests/testdata/no-web.yml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "cannot read web config file tests/testdata/no-web.yml: No such file or directory (os error 2)"
    );
}
