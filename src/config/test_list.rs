//! `test_lists:`: services made from lists of URLs in Citizen Lab's
//! test-lists CSV format (`url,category_code,category_description,
//! date_added,source,notes`, one header line).
//!
//! Each distinct host becomes a service named after it: a DNS check (A)
//! through each of the list's resolvers, a TLS check per host:port of its
//! https URLs, an HTTP GET per URL (accepting 200–399). The first row that
//! names a host gives its category, and that row's list the options of all
//! the host's checks; later rows (of any list) only add their URLs.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::check::Check;
use super::decode::ConfigError;
use super::raw::{Entry, RawHttp, RawTls};
use super::resolver::Resolver;
use super::validate::{At, Defaults, Validator};
use super::values::{DnsName, Dur, Host, HttpUrl, IpFamily, RecordType, Target};
use super::{MAX_CONFIG_BYTES, Service};

/// The header line of a Citizen Lab test list.
const HEADER: [&str; 6] = [
    "url",
    "category_code",
    "category_description",
    "date_added",
    "source",
    "notes",
];

/// Which checks each URL of a list gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum ListCheck {
    Dns,
    Tls,
    Http,
}

/// A `test_lists:` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTestList {
    pub file: String,
    pub resolvers: Option<Vec<Spanned<String>>>,
    pub checks: Option<Vec<ListCheck>>,
    pub resolve_with: Option<Spanned<String>>,
    pub timeout: Option<Dur>,
    pub ca_file: Option<String>,
    #[serde(default)]
    pub insecure: bool,
    pub control_sni: Option<DnsName>,
    pub ip_family: Option<IpFamily>,
}

impl super::raw::ShortForm for RawTestList {
    const KEY: &'static str = "file";
    const WRITTEN: &'static str = "a file name";
}

/// One host's service being built: the first row naming it gives its
/// category, the list of that row (`list`) the options of all its checks.
struct HostService {
    service: Service,
    category: String,
    list: usize,
}

impl Validator<'_> {
    /// Adds the services the test `lists` make to the configured ones;
    /// returns the lists' files (watched by `--config.auto-reload`).
    pub(super) fn add_listed(
        &self,
        lists: Vec<Spanned<Entry<RawTestList>>>,
        top: &Defaults,
        top_ranges: &[ipnet::IpNet],
        resolvers: &[Resolver],
        services: &mut Vec<Service>,
    ) -> Result<Vec<PathBuf>, ConfigError> {
        let files = lists
            .iter()
            .map(|l| self.base.join(&l.value.0.file))
            .collect();
        let listed = self.test_lists(lists, top, top_ranges, resolvers, services)?;
        if services.is_empty() && listed.is_empty() {
            return Err(self.err(
                &At::new(None, "test_lists".into()),
                "the test lists give no host to check (only a header, or no check for their URLs) and no service is configured",
            ));
        }
        services.extend(listed.into_iter().map(|(mut s, category)| {
            s.category = Some(category);
            s
        }));
        Ok(files)
    }

    /// The services of every list, in order of first appearance; a host may
    /// not take the name of one of the `configured` services.
    fn test_lists(
        &self,
        lists: Vec<Spanned<Entry<RawTestList>>>,
        top: &Defaults,
        top_ranges: &[ipnet::IpNet],
        resolvers: &[Resolver],
        configured: &[Service],
    ) -> Result<Vec<(Service, String)>, ConfigError> {
        let taken: HashSet<&str> = configured.iter().map(|s| s.name.as_str()).collect();
        let mut hosts: Vec<HostService> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut builders: Vec<ListBuilder> = Vec::new();
        for (i, list) in lists.into_iter().enumerate() {
            let at = At::new(Some(list.referenced), format!("test_lists[{i}]"));
            let raw = list.value.0;
            builders.push(self.list_builder(&at, list.referenced, &raw, top, resolvers)?);
            for Row {
                url,
                category,
                host,
            } in self.list_rows(&at, &raw.file, &taken)?
            {
                let k = match index.get(&host) {
                    Some(&k) => k,
                    None => {
                        hosts.push(HostService {
                            service: builders[i].service(&host),
                            category,
                            list: i,
                        });
                        index.insert(host.clone(), hosts.len() - 1);
                        hosts.len() - 1
                    }
                };
                let h = &mut hosts[k];
                builders[h.list].add_url(&mut h.service, url);
            }
        }
        let mut out = Vec::with_capacity(hosts.len());
        for mut h in hosts {
            h.service.allowed_ranges = top_ranges.to_vec();
            // A row's URLs can all be http:// on a list without dns: a host
            // with no check at all is left out.
            if !h.service.checks.is_empty() {
                out.push((h.service, h.category));
            }
        }
        Ok(out)
    }

    /// The rows of the list `file` names, its header checked, each row's
    /// host able to name a service and not one of the `taken` names.
    /// Errors name the list file and its line.
    fn list_rows(
        &self,
        at: &At,
        file: &str,
        taken: &HashSet<&str>,
    ) -> Result<Vec<Row>, ConfigError> {
        let path = self.base.join(file);
        let shown = path.display().to_string();
        let text = read_list(&path).map_err(|e| {
            self.err(
                &at.key("file"),
                format!("cannot read test list {shown}: {e}"),
            )
        })?;
        let row_err = |line: usize, message: String| ConfigError::Invalid {
            file: shown.clone(),
            line,
            column: 1,
            path: at.path.clone(),
            message,
        };
        // A spreadsheet's UTF-8 byte order mark is not part of the header.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, header))
                if split_row(header).ok().as_deref() == Some(&HEADER.map(String::from)[..]) => {}
            _ => {
                let message = format!("the first line must be the header {}", HEADER.join(","));
                return Err(row_err(1, message));
            }
        }
        let mut rows = Vec::new();
        for (n, line) in lines.filter(|(_, l)| !l.trim().is_empty()) {
            let line_no = n + 1;
            let row = parse_row(line).map_err(|e| row_err(line_no, e))?;
            let host = &row.host;
            self.label_value("service", host, at).map_err(|_| {
                row_err(
                    line_no,
                    format!(
                        "host {host:?} cannot name a service: use letters, digits, `_`, `-` and `.`"
                    ),
                )
            })?;
            if taken.contains(host.as_str()) {
                return Err(row_err(
                    line_no,
                    format!(
                        "host {host:?} is also a configured service: remove it from the list or rename the service"
                    ),
                ));
            }
            rows.push(row);
        }
        Ok(rows)
    }

    /// The options a list gives each of its hosts, validated once.
    fn list_builder(
        &self,
        at: &At,
        loc: serde_saphyr::Location,
        raw: &RawTestList,
        top: &Defaults,
        resolvers: &[Resolver],
    ) -> Result<ListBuilder, ConfigError> {
        let d = Defaults {
            control_sni: raw.control_sni.as_ref().map(|n| n.0.clone()),
            ..top.within(raw.timeout, raw.ip_family)
        };
        let checks = raw
            .checks
            .clone()
            .unwrap_or_else(|| vec![ListCheck::Dns, ListCheck::Tls, ListCheck::Http]);
        if checks.is_empty() {
            return Err(self.err(&at.key("checks"), "empty list: name dns, tls and/or http"));
        }
        let resolve_with = match &raw.resolve_with {
            Some(r) => self.resolver_index(resolvers, r, &at.key("resolve_with"))?,
            None => 0,
        };
        let dns = match checks.contains(&ListCheck::Dns) {
            true => self.list_dns(at, loc, raw, d.timeout, resolvers)?,
            false => Vec::new(),
        };
        // The list's trust, every other option at its default (for http,
        // `status` 200-399).
        let (ca_file, insecure) = (raw.ca_file.clone(), raw.insecure);
        let tls = RawTls {
            ca_file: ca_file.clone(),
            insecure,
            ..RawTls::<()>::default()
        };
        let http = RawHttp {
            ca_file,
            insecure,
            ..RawHttp::<()>::default()
        };
        let tls = match checks.contains(&ListCheck::Tls) {
            true => Some(self.tls(at, &d, tls)?.1),
            false => None,
        };
        let http = match checks.contains(&ListCheck::Http) {
            true => Some(self.http(at, &d, http)?.1),
            false => None,
        };
        Ok(ListBuilder {
            resolve_with,
            dns,
            tls,
            http,
        })
    }

    /// A list's DNS checks: type A through each of its `resolvers`
    /// (`system` when it names none).
    fn list_dns(
        &self,
        at: &At,
        loc: serde_saphyr::Location,
        raw: &RawTestList,
        timeout: std::time::Duration,
        resolvers: &[Resolver],
    ) -> Result<Vec<super::DnsOptions>, ConfigError> {
        let listed: Vec<Spanned<String>> = match &raw.resolvers {
            Some(r) if r.is_empty() => {
                return Err(self.err(
                    &at.key("resolvers"),
                    "empty list: name at least one resolver, such as system",
                ));
            }
            Some(r) => r.clone(),
            None => vec![Spanned::new(super::SYSTEM_RESOLVER.to_string(), loc, loc)],
        };
        let mut dns = Vec::new();
        for (k, r) in listed.iter().enumerate() {
            let at = at.key("resolvers").item(k, r.referenced);
            dns.push(super::DnsOptions {
                resolver: self.resolver_index(resolvers, r, &at)?,
                record_type: RecordType::A,
                timeout,
            });
        }
        Ok(dns)
    }
}

/// A list's options, ready to make each host's checks.
struct ListBuilder {
    resolve_with: usize,
    dns: Vec<super::DnsOptions>,
    tls: Option<super::TlsOptions>,
    http: Option<super::HttpOptions>,
}

impl ListBuilder {
    /// The service of `host`, with its DNS checks.
    fn service(&self, host: &str) -> Service {
        let named = host.parse::<std::net::IpAddr>().is_err();
        let checks = if named {
            self.dns
                .iter()
                .map(|o| Check::Dns(o.clone().check(host.to_string())))
                .collect()
        } else {
            Vec::new()
        };
        Service {
            name: host.to_string(),
            resolve_with: self.resolve_with,
            allowed_ranges: Vec::new(),
            checks,
            category: None,
            every: None,
        }
    }

    /// The checks `url` adds to its host's service: a TLS check of its
    /// host:port (https only, once per port) and an HTTP GET (once per URL).
    fn add_url(&self, service: &mut Service, url: HttpUrl) {
        if let Some(tls) = &self.tls
            && url.url.scheme() == "https"
        {
            let port = url.url.port_or_known_default().unwrap_or(443);
            let host = match url.url.host() {
                Some(url::Host::Ipv4(ip)) => Host::Ip(ip.into()),
                _ => Host::Name(service.name.clone()),
            };
            let written = format!("{}:{port}", service.name);
            let seen = service
                .checks
                .iter()
                .any(|c| matches!(c, Check::Tls(t) if t.target.written == written));
            if !seen {
                let target = Target {
                    written,
                    host,
                    port,
                };
                service.checks.push(Check::Tls(tls.clone().check(target)));
            }
        }
        if let Some(http) = &self.http {
            let seen = service
                .checks
                .iter()
                .any(|c| matches!(c, Check::Http(h) if h.url == url.url));
            if !seen {
                service.checks.push(Check::Http(http.clone().check(url)));
            }
        }
    }
}

/// One row of a list: its URL, category code and host (the service name).
struct Row {
    url: HttpUrl,
    category: String,
    host: String,
}

/// Parses one row (not the header), or says what is wrong with it.
fn parse_row(line: &str) -> Result<Row, String> {
    let fields = split_row(line)?;
    if fields.len() != HEADER.len() {
        return Err(format!(
            "expected {} fields ({}), found {}",
            HEADER.len(),
            HEADER.join(","),
            fields.len()
        ));
    }
    let url = HttpUrl::parse(fields[0].trim())?;
    let category = fields[1].trim().to_string();
    if category.is_empty() {
        return Err("empty category_code".into());
    }
    let host = match url.url.host() {
        Some(url::Host::Domain(d)) => d.trim_end_matches('.').to_ascii_lowercase(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(_)) | None => {
            return Err(format!(
                "{:?}: a list URL's host must be a name or an IPv4 address (it names its service)",
                url.written
            ));
        }
    };
    Ok(Row {
        url,
        category,
        host,
    })
}

/// The list's text, refusing what no list is (too large, not UTF-8).
fn read_list(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!(
            "{} bytes: more than the 16 MiB a list may be",
            bytes.len()
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// The fields of one CSV row (RFC 4180: a field in double quotes may hold
/// commas and `""` for a quote).
fn split_row(line: &str) -> Result<Vec<String>, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, '"') if at_start => quoted = true,
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => {
                quoted = false;
                if !matches!(chars.peek(), None | Some(',')) {
                    return Err("a quoted field must end at a comma".into());
                }
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
                continue;
            }
            (_, c) => field.push(c),
        }
        at_start = false;
    }
    if quoted {
        return Err("a quoted field is not closed (a field cannot span lines)".into());
    }
    fields.push(field);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_split_as_rfc_4180_says() {
        assert_eq!(split_row("a,b,,d").unwrap(), ["a", "b", "", "d"]);
        assert_eq!(
            split_row("https://x.org/,NEWS,\"News, media\",2020-01-01,cl,\"say \"\"hi\"\"\"\r")
                .unwrap(),
            [
                "https://x.org/",
                "NEWS",
                "News, media",
                "2020-01-01",
                "cl",
                "say \"hi\""
            ]
        );
        assert!(split_row("a,\"open").is_err());
        assert!(split_row("a,\"b\"c").is_err());
        // A quote inside a field that did not start with one is a character.
        assert_eq!(split_row("a\"b,c").unwrap(), ["a\"b", "c"]);
    }

    #[test]
    fn a_list_may_be_16_mib_and_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.csv");
        let mut text = vec![b'a'; MAX_CONFIG_BYTES as usize];
        std::fs::write(&p, &text).unwrap();
        assert_eq!(read_list(&p).map(|t| t.len()), Ok(text.len()));
        text.push(b'a');
        std::fs::write(&p, &text).unwrap();
        let e = read_list(&p).unwrap_err();
        assert!(e.contains("more than the 16 MiB a list may be"), "{e}");
    }

    #[test]
    fn rows_name_their_host() {
        let row = parse_row("https://News.Example./a,NEWS,News,2026-01-01,t,").unwrap();
        assert_eq!(
            (row.host.as_str(), row.category.as_str()),
            ("news.example", "NEWS")
        );
        assert_eq!(
            parse_row("http://192.0.2.1:8080/,X,x,,,").unwrap().host,
            "192.0.2.1"
        );
        for (bad, why) in [
            ("https://a.example/,NEWS", "expected 6 fields"),
            ("https://a.example/, ,News,,,", "empty category_code"),
            (
                "ftp://a.example/,NEWS,News,,,",
                "the scheme must be http or https",
            ),
            (
                "https://[2001:db8::1]/,NEWS,News,,,",
                "must be a name or an IPv4 address",
            ),
        ] {
            let e = parse_row(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(split_row("a,\"b\"c").is_err());
    }
}
