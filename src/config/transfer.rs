//! Transfer checks, downloads and uploads: [`TransferOptions`] (size,
//! throttling floor, stall limit, trust, timeout, address family), the
//! [`TransferCheck`] of one URL, and their validation.
//!
//! It moves no byte: `probe::download` and `probe::upload` do.

use std::time::Duration;

use super::check::Trust;
use super::raw::{RawDownload, RawUpload};
use super::validate::{At, Checked, Defaults, Validator};
use super::values::{Dur, HttpUrl, IpFamily, Size};

/// The default size of a download check (`max_bytes`).
pub const DEFAULT_DOWNLOAD_BYTES: u64 = 1 << 20;
/// The default size of an upload check's body (`bytes`): past the 15–20 KB
/// after which the TSPU freezes connections to foreign hosting.
pub const DEFAULT_UPLOAD_BYTES: u64 = 64 * 1024;
/// The default `stall_after` of a transfer.
pub const DEFAULT_STALL_AFTER: Duration = Duration::from_secs(3);

/// How to transfer: a module's options, or a service entry's.
#[derive(Debug, Clone)]
pub struct TransferOptions {
    /// Body bytes: read at most (a download's `max_bytes`), or sent (an
    /// upload's `bytes`).
    pub bytes: u64,
    /// Below this many bytes per second the transfer counts as throttled.
    pub min_rate: Option<u64>,
    /// No progress for this long once the request is sent (a byte
    /// received, or a byte the peer acknowledged): stalled.
    pub stall_after: Duration,
    /// Which roots to trust for https.
    pub trust: Trust,
    /// Time limit (every step together).
    pub timeout: Duration,
    /// Which resolved address to use.
    pub family: IpFamily,
}

/// A bounded transfer with a URL: a download (GET) or an upload (a POST of
/// random bytes); its options are read through it: `check.bytes`.
#[derive(Debug, Clone)]
pub struct TransferCheck {
    /// The URL exactly as written (the `target` label).
    pub written: String,
    /// The URL.
    pub url: url::Url,
    /// How.
    pub options: TransferOptions,
}

impl TransferOptions {
    /// The options of `bytes` (else `default`), `min_rate`, `stall_after`
    /// and `trust`, placed by `d`.
    fn new(
        bytes: (Option<Size>, u64),
        rate: Option<Size>,
        stall: Option<Dur>,
        trust: Trust,
        d: Defaults,
    ) -> Self {
        TransferOptions {
            bytes: bytes.0.map_or(bytes.1, |s| s.0),
            min_rate: rate.map(|s| s.0),
            stall_after: stall.map_or(DEFAULT_STALL_AFTER, |d| d.0),
            trust,
            timeout: d.timeout,
            family: d.family,
        }
    }

    /// The check of `url`.
    pub(super) fn check(self, url: HttpUrl) -> TransferCheck {
        TransferCheck {
            written: url.written,
            url: url.url,
            options: self,
        }
    }
}

/// The validation of a transfer entry or module of one kind: its size key,
/// and that key's default.
macro_rules! transfer_kind {
    ($($(#[$doc:meta])* $kind:ident($raw:ident) $size:ident or $default:ident;)*) => {
        impl Validator<'_> {$(
            $(#[$doc])*
            pub fn $kind<T>(&self, at: &At, d: &Defaults, raw: $raw<T>) -> Checked<T, TransferOptions> {
                let trust = self.trust(at, raw.insecure, raw.ca_file.as_deref())?;
                let d = d.within(raw.timeout, raw.ip_family);
                let bytes = (raw.$size, $default);
                Ok((raw.url, TransferOptions::new(bytes, raw.min_rate, raw.stall_after, trust, d)))
            }
        )*}
    };
}

transfer_kind! {
    /// A download entry or module at `at`, with its URL (`()` for a module).
    download(RawDownload) max_bytes or DEFAULT_DOWNLOAD_BYTES;
    /// An upload entry or module at `at`, with its URL (`()` for a module).
    upload(RawUpload) bytes or DEFAULT_UPLOAD_BYTES;
}
