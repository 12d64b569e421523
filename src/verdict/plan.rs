//! Which checks pair up for each verdict: built from the config alone, once
//! per load, in config order. Nothing here runs a check or judges one.

use std::time::Duration;

use crate::config::{Check, Config, Host, RecordType, Transport};
use crate::ids::{EntryId, ServiceId, SlotId};
use crate::verdict::{BlockingKind, Case, Plan};

/// The verdict plans of a config, and how many evidence slots they number.
#[derive(Debug, Default)]
pub struct Plans {
    /// Every plan, service by service.
    pub plans: Vec<Plan>,
    /// Evidence slots are numbered `0..slots`.
    pub slots: usize,
}

impl Plans {
    fn push(&mut self, service: ServiceId, target: &str, kind: BlockingKind, case: Case) {
        let same = |p: &&mut Plan| p.service == service && p.kind == kind && p.target == target;
        match self.plans.iter_mut().find(same) {
            Some(p) => p.cases.push(case),
            None => self.plans.push(Plan {
                service,
                target: target.to_string(),
                kind,
                cases: vec![case],
            }),
        }
    }

    fn slot(&mut self) -> SlotId {
        self.slots += 1;
        SlotId::new(self.slots - 1)
    }
}

/// The checks of a config with their ids: config order, service by
/// service — the catalogue's order.
pub fn entries(config: &Config) -> impl Iterator<Item = (EntryId, ServiceId, &Check)> {
    config
        .services
        .iter()
        .enumerate()
        .flat_map(|(si, s)| s.checks.iter().map(move |c| (ServiceId::new(si), c)))
        .enumerate()
        .map(|(i, (s, c))| (EntryId::new(i), s, c))
}

/// Builds the verdict plans of `config`.
pub fn plans(config: &Config) -> Plans {
    let mut out = Plans::default();
    let all: Vec<(EntryId, ServiceId, &Check)> = entries(config).collect();
    for id in (0..config.services.len()).map(ServiceId::new) {
        let service = Service {
            id,
            config,
            mine: all
                .iter()
                .filter(|(_, s, _)| *s == id)
                .map(|(i, _, c)| (*i, *c))
                .collect(),
        };
        service.dns_plans(&mut out);
        service.ip_blocked_plans(&mut out);
        service.pair_plans(&mut out);
    }
    out
}

/// One service's checks, while its plans are made.
struct Service<'a> {
    id: ServiceId,
    config: &'a Config,
    mine: Vec<(EntryId, &'a Check)>,
}

impl Service<'_> {
    fn is_control(&self, resolver: usize) -> bool {
        self.config.resolvers[resolver].is_control()
    }

    fn check(&self, id: EntryId) -> Option<&Check> {
        self.mine.iter().find(|(i, _)| *i == id).map(|(_, c)| *c)
    }

    /// The service's checks `pick` accepts.
    fn find(&self, pick: impl Fn(&Check) -> bool) -> Vec<EntryId> {
        self.mine
            .iter()
            .filter(|(_, c)| pick(c))
            .map(|(i, _)| *i)
            .collect()
    }

    /// The DNS checks of `name` (of type `kind`, or any) through controls
    /// or through the system resolver.
    fn dns(&self, name: &str, kind: Option<RecordType>, control: bool) -> Vec<EntryId> {
        self.find(|c| {
            matches!(c, Check::Dns(d) if d.name == name
                && kind.is_none_or(|k| k == d.record_type)
                && self.is_control(d.resolver) == control)
        })
    }

    /// `dns_removed` and `dns_injected`: per name and type with a system
    /// check and a control.
    fn dns_plans(&self, out: &mut Plans) {
        let mut names: Vec<(&str, RecordType)> = Vec::new();
        for (_, c) in &self.mine {
            if let Check::Dns(d) = c
                && !self.is_control(d.resolver)
                && !names.contains(&(d.name.as_str(), d.record_type))
            {
                names.push((&d.name, d.record_type));
            }
        }
        for (name, kind) in names {
            let system = self.dns(name, Some(kind), false)[0];
            let controls = self.dns(name, Some(kind), true);
            if controls.is_empty() {
                continue;
            }
            let removed = Case::DnsRemoved {
                system,
                controls: controls.clone(),
            };
            out.push(self.id, name, BlockingKind::DnsRemoved, removed);
            // The handshakes go where the service speaks TLS to the name.
            let tls = self.mine.iter().find_map(|(i, c)| match c {
                Check::Tls(t) if t.target.host == Host::Name(name.to_string()) => {
                    Some((t.target.port, Some(*i)))
                }
                Check::Http(h) if h.url.scheme() == "https" && h.url.host_str() == Some(name) => {
                    h.url.port_or_known_default().map(|p| (p, Some(*i)))
                }
                _ => None,
            });
            let (port, tls_entry) = tls.unwrap_or((443, None));
            let timeout = self.timeout(tls_entry.unwrap_or(system));
            let injected = Case::DnsInjected {
                system,
                controls,
                name: name.to_string(),
                port,
                tls_entry,
                timeout,
                evidence: out.slot(),
            };
            out.push(self.id, name, BlockingKind::DnsInjected, injected);
        }
    }

    fn timeout(&self, id: EntryId) -> Duration {
        self.check(id)
            .map_or(crate::config::DEFAULT_TIMEOUT, Check::timeout)
    }

    /// `ip_blocked`: per TCP or TLS target named by a name that a control
    /// resolves.
    fn ip_blocked_plans(&self, out: &mut Plans) {
        for (i, c) in &self.mine {
            let (target, family, max) = match c {
                Check::Tcp(t) => (&t.target, t.family, t.all_addresses),
                Check::Tls(t) => (&t.target, t.family, t.all_addresses),
                _ => continue,
            };
            let Host::Name(name) = &target.host else {
                continue;
            };
            let controls = self.dns(name, None, true);
            if controls.is_empty() {
                continue;
            }
            let existing = out.plans.iter_mut().find(|p| {
                p.service == self.id
                    && p.kind == BlockingKind::IpBlocked
                    && p.target == target.written
            });
            if let Some(Case::IpBlocked {
                checks, timeout, ..
            }) = existing.and_then(|p| p.cases.first_mut())
            {
                checks.push(*i);
                *timeout = (*timeout).max(c.timeout());
                continue;
            }
            let encrypted = controls
                .iter()
                .map(|&ci| match self.check(ci) {
                    Some(Check::Dns(d)) => self.config.resolvers[d.resolver].kind.is_encrypted(),
                    _ => false,
                })
                .collect();
            let case = Case::IpBlocked {
                checks: vec![*i],
                controls,
                encrypted,
                port: target.port,
                family,
                max: max.unwrap_or(crate::config::DEFAULT_MAX_ADDRESSES),
                timeout: c.timeout(),
                evidence: out.slot(),
            };
            out.push(self.id, &target.written, BlockingKind::IpBlocked, case);
        }
    }

    /// `throttled` for transfer `i` (a download or an upload, `written` its
    /// URL) when it has a `min_rate`.
    fn throttled(&self, out: &mut Plans, i: EntryId, written: &str, min_rate: Option<u64>) {
        if let Some(min_rate) = min_rate {
            let case = Case::Throttled {
                transfer: i,
                min_rate,
            };
            out.push(self.id, written, BlockingKind::Throttled, case);
        }
    }

    /// The verdicts of one check and its partners: `sni_filtered`,
    /// `ech_blocked`, `udp_blocked`, `quic_sni_filtered`, `quic_blocked`,
    /// `throttled`, `stalled`, `upload_stalled`.
    fn pair_plans(&self, out: &mut Plans) {
        for (i, c) in &self.mine {
            let i = *i;
            match c {
                Check::Tls(t) => {
                    if t.control_sni.is_some() {
                        let case = Case::SniFiltered { check: i };
                        out.push(self.id, &t.target.written, BlockingKind::SniFiltered, case);
                    }
                    if t.ech.is_some() {
                        let case = Case::EchBlocked { check: i };
                        out.push(self.id, &t.target.written, BlockingKind::EchBlocked, case);
                    }
                }
                Check::CallPort(u) if u.transport == Transport::Udp => {
                    let tcp = self.find(|c| {
                        matches!(c, Check::CallPort(t)
                            if t.transport == Transport::Tcp && t.target.host == u.target.host)
                    });
                    if !tcp.is_empty() {
                        let case = Case::UdpBlocked { udp: i, tcp };
                        out.push(self.id, &u.target.written, BlockingKind::UdpBlocked, case);
                    }
                }
                Check::Quic(q) => {
                    if q.control_sni.is_some() {
                        let case = Case::QuicSniFiltered { check: i };
                        out.push(
                            self.id,
                            &q.target.written,
                            BlockingKind::QuicSniFiltered,
                            case,
                        );
                    }
                    let tls = self.find(|c| {
                        matches!(c, Check::Tls(t)
                            if t.target.host == q.target.host && t.target.port == q.target.port)
                    });
                    if !tls.is_empty() {
                        let control = q.control_sni.is_some();
                        let case = Case::QuicBlocked {
                            quic: i,
                            tls,
                            control,
                        };
                        out.push(self.id, &q.target.written, BlockingKind::QuicBlocked, case);
                    }
                }
                Check::Download(d) => {
                    self.throttled(out, i, &d.written, d.min_rate);
                    let case = Case::Stalled { download: i };
                    out.push(self.id, &d.written, BlockingKind::Stalled, case);
                }
                Check::Upload(u) => {
                    self.throttled(out, i, &u.written, u.min_rate);
                    let case = Case::UploadStalled { upload: i };
                    out.push(self.id, &u.written, BlockingKind::UploadStalled, case);
                }
                _ => {}
            }
        }
    }
}
