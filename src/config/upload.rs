//! Upload checks: [`UploadOptions`] (size, throttling floor, stall limit,
//! trust, timeout, address family), the [`UploadCheck`] of one URL, and
//! their validation.
//!
//! It uploads nothing: `probe::upload` does.

use std::time::Duration;

use super::check::Trust;
use super::download::DEFAULT_STALL_AFTER;
use super::raw::RawUpload;
use super::validate::{At, Checked, Defaults, Validator};
use super::values::{HttpUrl, IpFamily};

/// The default size of an upload check's body: past the 15–20 KB after
/// which the TSPU freezes connections to foreign hosting.
pub const DEFAULT_UPLOAD_BYTES: u64 = 64 * 1024;

/// How to upload: a module's options, or a service entry's.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// Body bytes sent.
    pub bytes: u64,
    /// Below this many bytes per second the upload counts as throttled.
    pub min_rate: Option<u64>,
    /// No acknowledged progress for this long once the request is sent:
    /// stalled.
    pub stall_after: Duration,
    /// Which roots to trust for https.
    pub trust: Trust,
    /// Time limit (every step together).
    pub timeout: Duration,
    /// Which resolved address to use.
    pub family: IpFamily,
}

/// A bounded upload to a URL (a POST of random bytes): how fast the peer
/// acknowledges the body, and whether that stalls (its options are read
/// through it: `check.bytes`).
#[derive(Debug, Clone)]
pub struct UploadCheck {
    /// The URL exactly as written (the `target` label).
    pub written: String,
    /// The URL.
    pub url: url::Url,
    /// How.
    pub options: UploadOptions,
}

impl UploadOptions {
    /// The check of `url`.
    pub(super) fn check(self, url: HttpUrl) -> UploadCheck {
        UploadCheck {
            written: url.written,
            url: url.url,
            options: self,
        }
    }
}

impl Validator<'_> {
    /// An upload entry or module at `at`, with its URL (`()` for a module).
    pub fn upload<T>(&self, at: &At, d: &Defaults, raw: RawUpload<T>) -> Checked<T, UploadOptions> {
        let trust = self.trust(at, raw.insecure, raw.ca_file.as_deref())?;
        let d = d.within(raw.timeout, raw.ip_family);
        let options = UploadOptions {
            bytes: raw.bytes.map_or(DEFAULT_UPLOAD_BYTES, |s| s.0),
            min_rate: raw.min_rate.map(|s| s.0),
            stall_after: raw.stall_after.map_or(DEFAULT_STALL_AFTER, |d| d.0),
            trust,
            timeout: d.timeout,
            family: d.family,
        };
        Ok((raw.url, options))
    }
}
