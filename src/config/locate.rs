//! `locate:`: where a TLS check's censor sits, found by the TTL search
//! ([`crate::locate`]) when the check's `sni_filtered` or `ech_blocked`
//! verdict is 1. It is set on a service (for its TLS checks with a
//! `control_sni` or `ech`) or on one `tls` entry.

use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::ConfigError;
use super::validate::{At, Validator};
use super::values::Dur;

/// The default time between two searches of one target.
pub const DEFAULT_LOCATE_EVERY: Duration = Duration::from_secs(600);
/// The default longest path searched.
pub const DEFAULT_MAX_HOPS: u8 = 30;
/// The shortest `every` accepted: each search sends tens of connections
/// and asks routers for ICMP, which they rate-limit.
pub const MIN_LOCATE_EVERY: Duration = Duration::from_secs(10);

/// How a censor is located.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locate {
    /// At most one search of a target this often.
    pub every: Duration,
    /// The longest path tried (IP TTL).
    pub max_hops: u8,
}

/// `locate:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLocate {
    every: Option<Spanned<Dur>>,
    max_hops: Option<Spanned<u64>>,
}

impl Validator<'_> {
    /// A `locate:` block at `at`.
    pub(super) fn locate(&self, at: &At, raw: RawLocate) -> Result<Locate, ConfigError> {
        let every = raw
            .every
            .as_ref()
            .map_or(DEFAULT_LOCATE_EVERY, |d| d.value.0);
        if let Some(written) = raw.every.filter(|_| every < MIN_LOCATE_EVERY) {
            return Err(self.err(
                &at.key("every").written_at(written.referenced),
                "must be at least 10s: each search opens tens of connections and asks routers for ICMP",
            ));
        }
        let max_hops = match raw.max_hops {
            None => DEFAULT_MAX_HOPS,
            Some(n) => match u8::try_from(n.value) {
                Ok(h @ 1..=64) => h,
                _ => {
                    let at = at.key("max_hops").written_at(n.referenced);
                    return Err(self.err(&at, format!("`max_hops: {}`: expected 1 to 64", n.value)));
                }
            },
        };
        Ok(Locate { every, max_hops })
    }
}
