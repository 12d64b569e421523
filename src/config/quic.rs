//! QUIC checks: [`QuicOptions`] (SNI, ALPN, trust, timeout, address
//! family, control SNI), the [`QuicCheck`] of one target, and their validation.
//!
//! It does not handshake: `probe::quic` does.

use std::time::Duration;

use super::check::{NamedCheck, Trust};
use super::raw::RawQuic;
use super::validate::{At, Checked, Defaults, Validator};
use super::values::IpFamily;

/// How to handshake over QUIC: a module's options, or a service entry's.
#[derive(Debug, Clone)]
pub struct QuicOptions {
    /// The server name to send and verify instead of the target's host
    /// (`sni:`); [`QuicCheck::sni`] is the one sent.
    pub server_name: Option<String>,
    /// ALPN protocols offered (default `h3`).
    pub alpn: Vec<String>,
    /// Which roots to trust.
    pub trust: Trust,
    /// Time limit (resolution and handshake together).
    pub timeout: Duration,
    /// Which resolved address to use.
    pub family: IpFamily,
    /// A neutral server name: a QUIC handshake with it to the same address,
    /// its certificate not validated, is the control of the
    /// `quic_sni_filtered` verdict. In a check, never its own SNI.
    pub control_sni: Option<String>,
}

/// A QUIC handshake with a target.
pub type QuicCheck = NamedCheck<QuicOptions>;

impl Validator<'_> {
    /// A quic entry or module at `at`, with its target (`()` for a module).
    pub fn quic<T>(&self, at: &At, d: &Defaults, raw: RawQuic<T>) -> Checked<T, QuicOptions> {
        let alpn = raw.alpn.unwrap_or_else(|| vec!["h3".into()]);
        if alpn.is_empty() {
            return Err(self.err(
                at,
                "`alpn` is empty: name at least one protocol, such as h3",
            ));
        }
        if let Some(bad) = alpn.iter().find(|a| a.is_empty() || a.len() > 255) {
            return Err(self.err(at, format!("invalid ALPN protocol {bad:?}: 1 to 255 bytes")));
        }
        let trust = self.trust(at, raw.insecure, raw.ca_file.as_deref())?;
        let d = d.within(raw.timeout, raw.ip_family);
        let options = QuicOptions {
            server_name: raw.sni.map(|n| n.0),
            alpn,
            trust,
            timeout: d.timeout,
            family: d.family,
            control_sni: raw.control_sni.map(|n| n.0).or(d.control_sni),
        };
        Ok((raw.target, options))
    }
}
