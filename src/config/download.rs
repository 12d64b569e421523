//! Download checks: [`DownloadOptions`] (size, throttling floor, stall
//! limit, trust, timeout, address family), the [`DownloadCheck`] of one
//! URL, and their validation.
//!
//! It downloads nothing: `probe::download` does.

use std::time::Duration;

use super::check::Trust;
use super::raw::RawDownload;
use super::validate::{At, Checked, Defaults, Validator};
use super::values::{HttpUrl, IpFamily};

/// The default size of a download check.
pub const DEFAULT_DOWNLOAD_BYTES: u64 = 1 << 20;
/// The default `stall_after` of a download check.
pub const DEFAULT_STALL_AFTER: Duration = Duration::from_secs(3);

/// How to download: a module's options, or a service entry's.
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// Body bytes read at most.
    pub max_bytes: u64,
    /// Below this many bytes per second the transfer counts as throttled.
    pub min_rate: Option<u64>,
    /// No byte for this long once the request is sent: stalled.
    pub stall_after: Duration,
    /// Which roots to trust for https.
    pub trust: Trust,
    /// Time limit (every step together).
    pub timeout: Duration,
    /// Which resolved address to use.
    pub family: IpFamily,
}

/// A bounded download of a URL: how fast the body comes, and whether it
/// stalls (its options are read through it: `check.max_bytes`).
#[derive(Debug, Clone)]
pub struct DownloadCheck {
    /// The URL exactly as written (the `target` label).
    pub written: String,
    /// The URL.
    pub url: url::Url,
    /// How.
    pub options: DownloadOptions,
}

impl DownloadOptions {
    /// The check of `url`.
    pub(super) fn check(self, url: HttpUrl) -> DownloadCheck {
        DownloadCheck {
            written: url.written,
            url: url.url,
            options: self,
        }
    }
}

impl Validator<'_> {
    /// A download entry or module at `at`, with its URL (`()` for a
    /// module).
    pub fn download<T>(
        &self,
        at: &At,
        d: &Defaults,
        raw: RawDownload<T>,
    ) -> Checked<T, DownloadOptions> {
        let trust = self.trust(at, raw.insecure, raw.ca_file.as_deref())?;
        let d = d.within(raw.timeout, raw.ip_family);
        let options = DownloadOptions {
            max_bytes: raw.max_bytes.map_or(DEFAULT_DOWNLOAD_BYTES, |s| s.0),
            min_rate: raw.min_rate.map(|s| s.0),
            stall_after: raw.stall_after.map_or(DEFAULT_STALL_AFTER, |d| d.0),
            trust,
            timeout: d.timeout,
            family: d.family,
        };
        Ok((raw.url, options))
    }
}
