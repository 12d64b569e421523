//! The network regime's references (`regime:`): TLS handshakes with
//! domestic and foreign hosts, each written like a service's `tls` entry,
//! whose results say whether the network is open, in allowlist mode, or
//! offline. This module validates them; the round makes the handshakes and
//! [`crate::verdict::regime`] judges.

use ipnet::IpNet;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::check::Check;
use super::decode::ConfigError;
use super::raw::{Entry, RawTls};
use super::resolver::Resolver;
use super::validate::{At, Defaults, Validator};
use super::values::{Cidr, Dur, IpFamily};

/// The `regime:` block as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegime {
    resolve_with: Option<Spanned<String>>,
    timeout: Option<Dur>,
    ip_family: Option<IpFamily>,
    #[serde(default)]
    allowed_ranges: Vec<Cidr>,
    #[serde(default)]
    domestic: Vec<Spanned<Entry<RawTls>>>,
    foreign: Option<Spanned<Vec<Spanned<Entry<RawTls>>>>>,
}

/// Which side of the border a reference stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A host inside the country, which an allowlist admits.
    Domestic,
    /// A host abroad, which an allowlist blocks.
    Foreign,
}

impl Side {
    /// `domestic` or `foreign`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Domestic => "domestic",
            Side::Foreign => "foreign",
        }
    }
}

/// The validated references.
#[derive(Debug, Clone)]
pub struct Regime {
    /// Index into [`super::Config::resolvers`] resolving their hosts.
    pub resolve_with: usize,
    /// Ranges exempt from the bogon rule (top-level plus the block's own).
    pub allowed_ranges: Vec<IpNet>,
    /// Every reference (a TLS check) with its side, domestic first.
    pub references: Vec<(Side, Check)>,
}

impl Validator<'_> {
    /// The `regime:` block: at least one foreign reference, each entry a
    /// TLS check (no `control_sni`, no `all_addresses`: one handshake each).
    pub(super) fn regime(
        &self,
        raw: Spanned<RawRegime>,
        top: &Defaults,
        top_ranges: &[IpNet],
        resolvers: &[Resolver],
    ) -> Result<Regime, ConfigError> {
        let at = At::new(Some(raw.referenced), "regime".into());
        let raw = raw.value;
        let resolve_with = match &raw.resolve_with {
            Some(r) => self.resolver_index(resolvers, r, &at.key("resolve_with"))?,
            None => 0,
        };
        // The top level has no control_sni, ech or locate to pass on.
        let d = top.within(raw.timeout, raw.ip_family);
        let foreign = match raw.foreign {
            Some(f) if !f.value.is_empty() => f.value,
            missing => {
                let at = match &missing {
                    Some(f) => at.key("foreign").written_at(f.referenced),
                    None => at.key("foreign"),
                };
                return Err(self.err(
                    &at,
                    "needs at least one foreign reference: the regime is judged from whether foreign hosts answer",
                ));
            }
        };
        let mut references = Vec::new();
        for (side, list) in [(Side::Domestic, raw.domestic), (Side::Foreign, foreign)] {
            let key = at.key(side.as_str());
            for (i, e) in list.into_iter().enumerate() {
                let at = key.item(i, e.referenced);
                if e.value.0.locate.is_some() {
                    return Err(self.err(
                        &at.key("locate"),
                        "a reference is one handshake, judged by no verdict: locate does not apply",
                    ));
                }
                let (target, options) = self.tls(&at, &d, e.value.0)?;
                if options.control_sni.is_some()
                    || options.all_addresses.is_some()
                    || options.ech.is_some()
                {
                    return Err(self.err(
                        &at,
                        "a reference is one handshake: control_sni, all_addresses and ech do not apply",
                    ));
                }
                references.push((side, Check::Tls(options.check(target))));
            }
        }
        let mut allowed_ranges = top_ranges.to_vec();
        allowed_ranges.extend(raw.allowed_ranges.iter().map(|c| c.0));
        Ok(Regime {
            resolve_with,
            allowed_ranges,
            references,
        })
    }
}
