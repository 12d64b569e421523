//! HTTP checks: [`HttpOptions`] (accepted statuses, redirects, body limit,
//! trust, timeout, address family), the [`HttpCheck`] of one URL, and their
//! validation.
//!
//! It fetches nothing: `probe::http` does.

use std::time::Duration;

use super::check::Trust;
use super::raw::RawHttp;
use super::validate::{At, Checked, Defaults, Validator};
use super::values::{HttpUrl, IpFamily};

/// The default accepted statuses: 200–399.
pub const DEFAULT_HTTP_STATUS: (u16, u16) = (200, 399);
/// The default body limit of an HTTP check.
pub const DEFAULT_MAX_BODY: u64 = 64 * 1024;

/// How to GET: a module's options, or a service entry's.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Accepted status codes (inclusive ranges).
    pub status: Vec<(u16, u16)>,
    /// Redirects followed at most (0: a redirect is the answer).
    pub max_redirects: u32,
    /// Body bytes read at most.
    pub max_body: u64,
    /// Which roots to trust for https.
    pub trust: Trust,
    /// Time limit (every step of every hop together).
    pub timeout: Duration,
    /// Which resolved address to use.
    pub family: IpFamily,
}

/// An HTTP(S) GET of a URL (its options are read through it:
/// `check.max_body`).
#[derive(Debug, Clone)]
pub struct HttpCheck {
    /// The URL exactly as written (the `target` label).
    pub written: String,
    /// The URL.
    pub url: url::Url,
    /// How.
    pub options: HttpOptions,
}

impl HttpOptions {
    /// Whether `code` is in the accepted set.
    pub fn accepts(&self, code: u16) -> bool {
        self.status
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&code))
    }

    /// The check of `url`.
    pub(super) fn check(self, url: HttpUrl) -> HttpCheck {
        HttpCheck {
            written: url.written,
            url: url.url,
            options: self,
        }
    }
}

impl Validator<'_> {
    /// An http entry or module at `at`, with its URL (`()` for a module).
    pub fn http<T>(&self, at: &At, d: &Defaults, raw: RawHttp<T>) -> Checked<T, HttpOptions> {
        let trust = self.trust(at, raw.insecure, raw.ca_file.as_deref())?;
        let d = d.within(raw.timeout, raw.ip_family);
        let status: Vec<(u16, u16)> = raw
            .status
            .unwrap_or_default()
            .iter()
            .map(|r| (r.0, r.1))
            .collect();
        let options = HttpOptions {
            status: if status.is_empty() {
                vec![DEFAULT_HTTP_STATUS]
            } else {
                status
            },
            max_redirects: raw.max_redirects.unwrap_or(0),
            max_body: raw.max_body.map_or(DEFAULT_MAX_BODY, |s| s.0),
            trust,
            timeout: d.timeout,
            family: d.family,
        };
        Ok((raw.url, options))
    }
}
