//! DNS checks: [`DnsOptions`] (resolver, record type, timeout), the
//! [`DnsCheck`] of one name, and the validation of a service's `dns:`
//! section (a check per name, resolver and type) and of a dns module.
//!
//! It does not query anything: `probe::dns` does.

use std::collections::HashSet;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::check::Check;
use super::decode::ConfigError;
use super::raw::RawDns;
use super::resolver::Resolver;
use super::validate::{At, Defaults, Validator};
use super::values::RecordType;

/// How to resolve a name: a module's options, or one of a service's.
#[derive(Debug, Clone)]
pub struct DnsOptions {
    /// Index into [`super::Config::resolvers`].
    pub resolver: usize,
    /// Record type.
    pub record_type: RecordType,
    /// Time limit.
    pub timeout: Duration,
}

/// Resolve `name` for `record_type` through resolver `resolver` (its
/// options are read through it: `check.resolver`).
#[derive(Debug, Clone)]
pub struct DnsCheck {
    /// The name as written (without a trailing dot).
    pub name: String,
    /// How.
    pub options: DnsOptions,
}

impl DnsOptions {
    /// The check of `name`.
    pub fn check(self, name: String) -> DnsCheck {
        DnsCheck {
            name,
            options: self,
        }
    }
}

impl Validator<'_> {
    /// A service's `dns:` section at `at`: every name through every
    /// resolver for every type, within `timeout`.
    pub(super) fn dns(
        &self,
        at: &At,
        raw: RawDns,
        timeout: Duration,
        resolvers: &[Resolver],
    ) -> Result<Vec<Check>, ConfigError> {
        let listed =
            self.dns_resolvers(&at.key("resolvers"), raw.resolvers.as_deref(), resolvers)?;
        let types = raw.types.unwrap_or_else(|| vec![RecordType::A]);
        if types.is_empty() {
            return Err(self.err(&at.key("types"), "empty list: name A and/or AAAA"));
        }
        if raw.names.is_empty() {
            return Err(self.err(&at.key("names"), "empty list: name at least one DNS name"));
        }
        let names = raw.names.iter().map(|n| (n.value.0.as_str(), n.referenced));
        self.unique(&at.key("names"), "name", names)?;
        let spans = raw.resolvers.iter().flatten().map(|r| r.referenced);
        let listed_names = listed.iter().map(|&i| resolvers[i].name.as_str());
        self.unique(&at.key("resolvers"), "resolver", listed_names.zip(spans))?;
        let mut checks = Vec::new();
        for n in &raw.names {
            for &resolver in &listed {
                for &record_type in &types {
                    let options = DnsOptions {
                        resolver,
                        record_type,
                        timeout,
                    };
                    checks.push(Check::Dns(options.check(n.value.0.clone())));
                }
            }
        }
        Ok(checks)
    }

    /// The indices of the resolvers a `dns.resolvers` list at `at` names
    /// (default: the system resolver).
    fn dns_resolvers(
        &self,
        at: &At,
        list: Option<&[Spanned<String>]>,
        resolvers: &[Resolver],
    ) -> Result<Vec<usize>, ConfigError> {
        match list {
            None => Ok(vec![0]),
            Some([]) => Err(self.err(at, "empty list: name at least one resolver")),
            Some(list) => (list.iter().enumerate())
                .map(|(i, r)| self.resolver_index(resolvers, r, &at.item(i, r.referenced)))
                .collect(),
        }
    }

    /// That no value of the list at `at` is written twice: the second is
    /// a "duplicate `what`".
    fn unique<'a>(
        &self,
        at: &At,
        what: &str,
        list: impl Iterator<Item = (&'a str, Location)>,
    ) -> Result<(), ConfigError> {
        let mut seen = HashSet::new();
        for (i, (value, loc)) in list.enumerate() {
            if !seen.insert(value) {
                return Err(self.err(&at.item(i, loc), format!("duplicate {what} {value:?}")));
            }
        }
        Ok(())
    }

    /// A dns module's options at `at`.
    pub(super) fn dns_module(
        &self,
        at: &At,
        resolver: Option<Spanned<String>>,
        record_type: Option<RecordType>,
        d: &Defaults,
        resolvers: &[Resolver],
    ) -> Result<DnsOptions, ConfigError> {
        let resolver = match &resolver {
            Some(r) => self.resolver_index(resolvers, r, &at.key("resolver"))?,
            None => 0,
        };
        Ok(DnsOptions {
            resolver,
            record_type: record_type.unwrap_or(RecordType::A),
            timeout: d.timeout,
        })
    }
}
