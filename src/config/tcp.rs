//! TCP checks: [`TcpOptions`] (timeout, address family, `all_addresses`),
//! the [`TcpCheck`] of one target, and their validation.
//!
//! It does not connect: `probe::tcp` does.

use std::time::Duration;

use super::raw::RawTcp;
use super::validate::{At, Checked, Defaults, Validator};
use super::values::{IpFamily, Target};

/// How to connect: a module's options, or a service entry's.
#[derive(Debug, Clone)]
pub struct TcpOptions {
    /// Time limit (resolution and connect together).
    pub timeout: Duration,
    /// Which resolved address to use.
    pub family: IpFamily,
    /// `all_addresses: true`: probe every resolved address, at most this
    /// many (`max_addresses`).
    pub all_addresses: Option<usize>,
}

/// A TCP connect to a target (its options are read through it:
/// `check.timeout`).
#[derive(Debug, Clone)]
pub struct TcpCheck {
    /// Where to.
    pub target: Target,
    /// How.
    pub options: TcpOptions,
}

impl TcpOptions {
    /// The check of `target`.
    pub fn check(self, target: Target) -> TcpCheck {
        TcpCheck {
            target,
            options: self,
        }
    }
}

impl Validator<'_> {
    /// A tcp entry or module at `at`, with its target (`()` for a module).
    pub fn tcp<T>(&self, at: &At, d: &Defaults, raw: RawTcp<T>) -> Checked<T, TcpOptions> {
        let d = d.within(raw.timeout, raw.ip_family);
        let options = TcpOptions {
            timeout: d.timeout,
            family: d.family,
            all_addresses: self.all_addresses(at, raw.all_addresses, raw.max_addresses)?,
        };
        Ok((raw.target, options))
    }
}
