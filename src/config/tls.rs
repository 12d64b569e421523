//! TLS checks: [`TlsOptions`] (SNI, trust, timeout, address family,
//! `all_addresses`, control SNI), the [`TlsCheck`] of one target, and their
//! validation.
//!
//! It does not handshake: `probe::tls` does.

use std::time::Duration;

use super::check::{NamedCheck, Trust};
use super::locate::Locate;
use super::raw::RawTls;
use super::validate::{At, Checked, Defaults, Validator};
use super::values::{EchOffer, IpFamily};

/// How to handshake: a module's options, or a service entry's.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// The server name to send and verify instead of the target's host
    /// (`sni:`); [`TlsCheck::sni`] is the one sent.
    pub server_name: Option<String>,
    /// Which roots to trust.
    pub trust: Trust,
    /// Time limit (resolution, connect and handshake together).
    pub timeout: Duration,
    /// Which resolved address to use.
    pub family: IpFamily,
    /// `all_addresses: true`: probe every resolved address, at most this
    /// many (`max_addresses`).
    pub all_addresses: Option<usize>,
    /// A neutral server name: a handshake with it to the same address, its
    /// certificate not validated, is the control of the `sni_filtered`
    /// verdict. In a check, never its own SNI.
    pub control_sni: Option<String>,
    /// `ech: grease`: a handshake carrying a GREASE encrypted_client_hello
    /// extension to the same address, beside the plain one: the evidence
    /// of the `ech_blocked` verdict.
    pub ech: Option<EchOffer>,
    /// `locate:`: where the censor sits is searched for when the check's
    /// `sni_filtered` or `ech_blocked` verdict is 1 (a check with neither a
    /// control nor `ech` has no such verdict: `None`).
    pub locate: Option<Locate>,
}

/// A TLS handshake with a target.
pub type TlsCheck = NamedCheck<TlsOptions>;

impl Validator<'_> {
    /// A tls entry or module at `at`, with its target (`()` for a module).
    pub fn tls<T>(&self, at: &At, d: &Defaults, raw: RawTls<T>) -> Checked<T, TlsOptions> {
        let all_addresses = self.all_addresses(at, raw.all_addresses, raw.max_addresses)?;
        let trust = self.trust(at, raw.insecure, raw.ca_file.as_deref())?;
        let d = d.within(raw.timeout, raw.ip_family);
        let options = TlsOptions {
            server_name: raw.sni.map(|n| n.0),
            trust,
            timeout: d.timeout,
            family: d.family,
            all_addresses,
            control_sni: raw.control_sni.map(|n| n.0).or(d.control_sni),
            ech: raw.ech.or(d.ech),
            locate: None,
        };
        // A search starts on a verdict: a check with neither a control nor
        // `ech` has none (the service's `locate` passes it by).
        let judged = options.control_sni.is_some() || options.ech.is_some();
        let locate = match raw.locate {
            Some(_) if !judged => {
                return Err(self.err(
                    &at.key("locate"),
                    "needs control_sni or `ech: grease`: a search starts when the check's sni_filtered or ech_blocked verdict is 1",
                ));
            }
            Some(l) => Some(self.locate(&at.key("locate").written_at(l.referenced), l.value)?),
            None => d.locate.filter(|_| judged),
        };
        Ok((raw.target, TlsOptions { locate, ..options }))
    }
}
