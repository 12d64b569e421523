//! What each key of a config holds, in the config's own words: turns the
//! YAML parser's and serde's messages about a value of the wrong shape
//! (`expected mapping start`, `invalid u64`, `unknown variant`) into one
//! that says what belongs there, with an example. [`super::decode`] calls
//! [`explain`] on every message it reports.

/// The message for a problem at key `path` (`services.a.http[0].status`),
/// given the parser's `message` and the source `line` it points at.
pub(super) fn explain(path: &str, message: &str, line: Option<&str>) -> String {
    // A shape or a token the parser did not expect, on a line that reads
    // `key:value`: the missing space made it one string.
    let parse_error = matches!(
        message,
        "expected mapping start"
            | "expected sequence start"
            | "expected string scalar"
            | "simple key expected ':'"
    ) || message.starts_with("':' may not precede");
    if let Some(fix) = line.filter(|_| parse_error).and_then(missing_space) {
        return fix;
    }
    // In a flow mapping, `{target:a.test:443}` is one key.
    if let Some(field) = message
        .strip_prefix("unknown field `")
        .and_then(|m| m.split_once('`'))
        .map(|(f, _)| f)
        && let Some(fix) = missing_space(field)
    {
        return fix;
    }
    let shape = shape_of(&normalise(path));
    let say = |generic: &str| shape.clone().unwrap_or_else(|| generic.to_string());
    match message {
        "expected mapping start" => say("expected a mapping of `key: value` pairs"),
        "expected sequence start" => say("expected a list, such as `[a, b]`"),
        "expected string scalar" => say("expected a single value, not a list or a mapping"),
        m if m.starts_with("externally tagged enum") => {
            say("expected one word, not a list or a mapping")
        }
        "invalid boolean" => "expected true or false".to_string(),
        "invalid f64" | "invalid f32" => "expected a number".to_string(),
        m if m.starts_with("invalid u") || m.starts_with("invalid i") => {
            say("expected a whole number")
        }
        "tabs disallowed within this context (block indentation)" => {
            "YAML is indented with spaces, not tabs".to_string()
        }
        "while parsing a block mapping, did not find expected key" => {
            "this line is indented differently from the lines before it: indent the keys of one mapping, and the items of one list, by the same number of spaces".to_string()
        }
        m if m.starts_with("multiple YAML documents detected") => {
            "one YAML document per file: this `---` starts a second one; remove it and merge the documents".to_string()
        }
        m => match m.strip_prefix("unknown variant ") {
            Some(rest) => format!("unknown value {rest}"),
            None => m.to_string(),
        },
    }
}

/// `key:value` without the space YAML needs after the colon (the first on
/// the line, in block or flow style): the parser then reads one string,
/// and complains about something else.
fn missing_space(line: &str) -> Option<String> {
    let b = line.as_bytes();
    let keyish = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
    for (i, _) in line.match_indices(':') {
        // The key: letters, digits, `_` and `-` back to a separator (any
        // byte of a multi-byte character is one, and the ASCII byte after
        // it starts a character).
        let start = b[..i]
            .iter()
            .rposition(|&c| !keyish(c))
            .map_or(0, |s| s + 1);
        let key = &line[start..i];
        let separated = start == 0 || matches!(b[start - 1], b' ' | b'{' | b'[' | b',');
        let after = b.get(i + 1).copied();
        if key.is_empty()
            || !key.as_bytes()[0].is_ascii_alphabetic()
            || !separated
            || matches!(after, None | Some(b' ' | b'/' | b'\t'))
        {
            continue;
        }
        let rest = &line[i + 1..];
        let value = match rest.chars().next() {
            Some(c @ ('[' | '{')) => format!("{c}…"),
            _ => rest
                .split([',', '}', ']', ' '])
                .next()
                .unwrap_or_default()
                .to_string(),
        };
        return Some(format!(
            "`{key}:{value}` needs a space after the colon: `{key}: {value}`"
        ));
    }
    None
}

/// `path` with list indices as `[]` and the names a user chooses (of a
/// service, resolver, module or label) as `*`.
fn normalise(path: &str) -> String {
    let mut segs: Vec<String> = path
        .split('.')
        .map(|s| match s.find('[') {
            Some(i) => format!("{}[]", &s[..i]),
            None => s.to_string(),
        })
        .collect();
    if segs.len() >= 2
        && matches!(
            segs[0].as_str(),
            "services" | "resolvers" | "modules" | "labels"
        )
    {
        segs[1] = "*".into();
    }
    segs.join(".")
}

/// What belongs at a normalised path, when a wrong shape was found there.
/// (A list entry of a target or a URL says it itself: its deserializer
/// takes any shape and names the two it accepts.)
fn shape_of(path: &str) -> Option<String> {
    let s = match path {
        "" | "." => "a config file is a mapping of keys, such as `services:`, `resolvers:` and `timeout:`".into(),
        "services" => "expected a mapping of service names to their checks, such as `whatsapp: { tls: [\"web.whatsapp.com:443\"] }`".into(),
        "services.*" => "a service is a mapping of its checks, such as { tls: [\"web.whatsapp.com:443\"], dns: { names: [web.whatsapp.com] } }".into(),
        "services.*.dns" => "expected a mapping such as { names: [web.whatsapp.com], types: [A, AAAA] }".into(),
        "services.*.dns.names" => "expected a list of DNS names, such as [web.whatsapp.com]".into(),
        "services.*.dns.types" => "expected a list of record types, such as [A, AAAA]".into(),
        "services.*.dns.resolvers" => "expected a list of resolver names, such as [system, cloudflare]".into(),
        "services.*.tcp" | "services.*.tls" | "services.*.quic" => {
            "expected a list of targets, such as [\"web.whatsapp.com:443\"]".into()
        }
        "services.*.call_ports" => "expected a list of call ports, such as [{ udp: \"HOST:PORT\" }]".into(),
        "services.*.call_ports[]" => "a call port is a mapping such as { udp: \"HOST:PORT\" } or { tcp: \"HOST:PORT\" }".into(),
        "services.*.http" => "expected a list of URLs, such as [\"https://example.org/\"]".into(),
        "services.*.download" => "expected a list of URLs, such as [\"https://example.org/file\"]".into(),
        p if p.ends_with(".status") => "expected a list of codes or ranges, such as [200, \"300-399\"]".into(),
        p if p.ends_with(".ech") => "expected `grease`, such as `ech: grease`".into(),
        p if p.ends_with(".locate") => {
            "expected a mapping such as { every: 10m, max_hops: 30 }".into()
        }
        p if p.ends_with(".locate.max_hops") => "expected a whole number of hops, 1 to 64".into(),
        p if p.ends_with(".ip_family") => "expected one of ipv4, ipv6, any".into(),
        p if p.ends_with(".alpn") => "expected a list of protocol names, such as [h3]".into(),
        "max_concurrent_checks" => "expected a number of checks, such as 1024".into(),
        "labels" => "expected a mapping of label names to values, such as { country: RU, site: msk-1 }".into(),
        "labels.*" => "a label's value is a single string, such as RU".into(),
        "resolvers" => "expected a mapping of names to resolvers, such as `cloudflare: { doh: \"https://1.1.1.1/dns-query\" }`".into(),
        "resolvers.*" => "a resolver is a mapping such as { doh: \"https://1.1.1.1/dns-query\" } or { udp: \"1.1.1.1:53\" }".into(),
        "modules" => "expected a mapping of names to modules, such as `tls_443: { kind: tls }`".into(),
        "modules.*" => "a module is a mapping such as { kind: tls, timeout: 5s }".into(),
        "pace" => "expected a mapping such as { starts_per_second: 200, spread: 50% }".into(),
        "allowed_ranges" => "expected a list of address ranges, such as [10.0.0.0/8]".into(),
        "probe_allow" => "expected a list of host globs and address ranges, such as [\"*.example.org:443\", 10.0.0.0/8]".into(),
        "regime" => "expected a mapping such as { domestic: [\"ya.ru:443\"], foreign: [\"www.google.com:443\"] }".into(),
        "regime.domestic" | "regime.foreign" => {
            "expected a list of targets, such as [\"www.google.com:443\"]".into()
        }
        "test_lists" => "expected a list of files, such as [lists/ru.csv] or [{ file: lists/ru.csv, checks: [tls] }]".into(),
        _ => return None,
    };
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_to_the_table() {
        assert_eq!(
            normalise("services.whatsapp.call_ports[3]"),
            "services.*.call_ports[]"
        );
        assert_eq!(
            normalise("services.a.http[0].status"),
            "services.*.http[].status"
        );
        assert_eq!(normalise("labels.site"), "labels.*");
        assert_eq!(normalise("timeout"), "timeout");
    }

    #[test]
    fn a_missing_space_after_a_colon_is_named() {
        for (line, key, fixed) in [
            ("    timeout:5s", "timeout:5s", "timeout: 5s"),
            (
                "  - udp:1.2.3.4:3478",
                "udp:1.2.3.4:3478",
                "udp: 1.2.3.4:3478",
            ),
            // Flow style.
            ("  ok: {tcp:[\"a:1\"]}", "tcp:[…", "tcp: […"),
            (
                "    tcp: [{target:127.0.0.1:80}]",
                "target:127.0.0.1:80",
                "target: 127.0.0.1:80",
            ),
        ] {
            let said = format!("`{key}` needs a space after the colon: `{fixed}`");
            assert_eq!(missing_space(line), Some(said), "{line}");
        }
        // A header's name holds dashes.
        assert_eq!(
            missing_space("    X-Frame-Options:DENY"),
            Some(
                "`X-Frame-Options:DENY` needs a space after the colon: `X-Frame-Options: DENY`"
                    .into()
            )
        );
        // A key with its value after a space, a URL (with a port), a key
        // alone, an address, no key: fine.
        for line in [
            "timeout: 5s",
            "  - https://a.org/",
            "  - https://a.org:8443/x",
            // A key starts with a letter; nothing at all before the colon.
            "    - 10:30",
            "    - :x",
            // A character of two bytes before the colon (bench/fuzz.sh
            // found this one panicking).
            "Ɛcp:w[\"example.co  a",
            "services:",
            "    tls: [\"a.org:443\"]",
            "    - 127.0.0.1:443",
        ] {
            assert_eq!(missing_space(line), None, "{line}");
        }
    }

    /// Each key the table knows is told what belongs there when it holds
    /// the wrong shape, in words of its own (not the generic ones).
    #[test]
    fn a_wrong_shape_is_told_what_belongs_there() {
        let svc = |body: &str| format!("services:\n  a:\n    {body}\n");
        let target = "target: \"a.example:443\"";
        let cases: Vec<(String, &str)> = vec![
            ("just words\n".into(), "a config file is a mapping of keys"),
            (
                svc("dns: { names: [a.example], types: A }"),
                "expected a list of record types",
            ),
            (
                svc("dns: { names: [a.example], resolvers: system }"),
                "expected a list of resolver names",
            ),
            (svc("call_ports: x"), "expected a list of call ports"),
            (
                svc("http: x"),
                "expected a list of URLs, such as [\"https://example.org/\"]",
            ),
            (
                svc("download: x"),
                "expected a list of URLs, such as [\"https://example.org/file\"]",
            ),
            (
                svc(&format!("tls: [{{ {target}, locate: [x] }}]")),
                "expected a mapping such as { every: 10m, max_hops: 30 }",
            ),
            (
                svc(&format!("tls: [{{ {target}, locate: {{ max_hops: x }} }}]")),
                "expected a whole number of hops, 1 to 64",
            ),
            (
                svc(&format!("tcp: [{{ {target}, ip_family: [x] }}]")),
                "expected one of ipv4, ipv6, any",
            ),
            (
                svc(&format!("quic: [{{ {target}, alpn: h3 }}]")),
                "expected a list of protocol names",
            ),
            (
                "labels: { site: [a] }\n".into(),
                "a label's value is a single string",
            ),
            (
                "resolvers: [a]\n".into(),
                "expected a mapping of names to resolvers",
            ),
            (
                "modules: [a]\n".into(),
                "expected a mapping of names to modules",
            ),
            (
                "probe_allow: x\n".into(),
                "expected a list of host globs and address ranges",
            ),
            (
                "regime: x\n".into(),
                "expected a mapping such as { domestic:",
            ),
            (
                "remote_write: { url: \"http://127.0.0.1:9/\", headers: x }\n".into(),
                "a mapping",
            ),
        ];
        let mut wrong = Vec::new();
        for (yaml, want) in &cases {
            let e = crate::config::Config::parse(yaml, std::path::Path::new("t.yaml"))
                .map(|_| "accepted".to_string())
                .unwrap_or_else(|e| e.to_string());
            if !e.contains(want) {
                wrong.push(format!("{yaml:?}\n  said: {e}\n  want: {want}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
