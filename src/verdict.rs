//! Verdicts: what the censor did, judged from one round's outcomes.
//!
//! [`plans`] pairs checks up from the config once per load (same service,
//! same name or host): the system resolver's answer with the controls', a
//! TLS check with its neutral-SNI control, a UDP call port with TCP to the
//! same host, a QUIC check with TLS to the same host and port. Some verdicts
//! need evidence no configured check gives — connects to the addresses the
//! controls returned, handshakes with the name's SNI at the system's and a
//! control's address. [`gather`] makes them in the same round, as soon as
//! the DNS answers they need are in; they get no series of their own and
//! are logged at debug. [`judge`] then turns outcomes and evidence into
//! 1, 0, or nothing (cannot be judged — above all when every control
//! failed: controls are data, not truth).
//!
//! The rule of each kind is in [`BlockingKind`]'s variants and in the README.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Check, Config, Host, IpFamily, RecordType};
use crate::probe::{Entry, Facts, Outcome};
use crate::reason::{Reason, Stage};
use crate::round::Round;

/// The kind of blocking a verdict is about (the `kind` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockingKind {
    /// The system resolver says NXDOMAIN, no answer or SERVFAIL for a name
    /// a control resolves.
    DnsRemoved,
    /// The system resolver answers a bogon (that a control does not); or
    /// its addresses share none with the controls' and the name's
    /// certificate fails validation at the system's address while it
    /// passes at a control's.
    DnsInjected,
    /// Every address the controls resolved fails at connect, while a DoH or
    /// DoT control answered (so the network is up).
    IpBlocked,
    /// The handshake with the real SNI fails with a reset, timeout or EOF
    /// while one with a neutral SNI to the same address completes.
    SniFiltered,
    /// A UDP call port fails while TCP to the same host answers.
    UdpBlocked,
    /// A QUIC handshake fails (timeout, reset, refused) while TLS over TCP
    /// to the same host and port succeeds.
    QuicBlocked,
    /// A download's rate is below its `min_rate`.
    Throttled,
    /// A download got no byte for `stall_after`.
    Stalled,
}

impl BlockingKind {
    /// Every kind.
    pub const ALL: [BlockingKind; 8] = [
        BlockingKind::DnsRemoved,
        BlockingKind::DnsInjected,
        BlockingKind::IpBlocked,
        BlockingKind::SniFiltered,
        BlockingKind::UdpBlocked,
        BlockingKind::QuicBlocked,
        BlockingKind::Throttled,
        BlockingKind::Stalled,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockingKind::DnsRemoved => "dns_removed",
            BlockingKind::DnsInjected => "dns_injected",
            BlockingKind::IpBlocked => "ip_blocked",
            BlockingKind::SniFiltered => "sni_filtered",
            BlockingKind::UdpBlocked => "udp_blocked",
            BlockingKind::QuicBlocked => "quic_blocked",
            BlockingKind::Throttled => "throttled",
            BlockingKind::Stalled => "stalled",
        }
    }
}

/// One verdict series: `{service, target, kind}` and the cases it is made
/// of. It is 1 if any case judged says 1, 0 if every case judged says 0,
/// absent if none could be judged.
#[derive(Debug)]
pub struct Plan {
    /// Index of the service.
    pub service: usize,
    /// The `target` label: a name, or a check's target as written.
    pub target: String,
    /// What it judges.
    pub kind: BlockingKind,
    /// The pairings it is judged from.
    pub cases: Vec<Case>,
}

impl Plan {
    /// Every catalogue entry the plan reads.
    pub fn inputs(&self) -> impl Iterator<Item = usize> + '_ {
        self.cases.iter().flat_map(|c| c.inputs())
    }
}

/// One pairing of checks (catalogue entry indices).
#[derive(Debug)]
pub enum Case {
    /// The system resolver's check of a name and type, and the controls'.
    DnsRemoved {
        /// Through the system resolver.
        system: usize,
        /// Through each control.
        controls: Vec<usize>,
    },
    /// As [`Case::DnsRemoved`], plus where to make the handshakes.
    DnsInjected {
        /// Through the system resolver.
        system: usize,
        /// Through each control.
        controls: Vec<usize>,
        /// The name (the SNI of the evidence handshakes).
        name: String,
        /// The port of the evidence handshakes.
        port: u16,
        /// The check whose TLS configuration (trust) they use, if any.
        tls_entry: Option<usize>,
        /// How long they may take: that check's timeout (else the DNS
        /// check's).
        timeout: Duration,
        /// Index of its evidence slot.
        evidence: usize,
    },
    /// TCP or TLS checks of one target, and the controls' answers for its
    /// name.
    IpBlocked {
        /// The checks of the target.
        checks: Vec<usize>,
        /// Control DNS checks of the name.
        controls: Vec<usize>,
        /// Which of `controls` go over DoH or DoT.
        encrypted: Vec<bool>,
        /// The target's port.
        port: u16,
        /// The family the checks use.
        family: IpFamily,
        /// At most this many addresses are connected to.
        max: usize,
        /// How long the connects may take: the checks' longest timeout.
        timeout: Duration,
        /// Index of its evidence slot.
        evidence: usize,
    },
    /// A TLS check with a `control_sni` (its outcome carries the control).
    SniFiltered {
        /// The check.
        check: usize,
    },
    /// A UDP call port and the TCP call ports to the same host.
    UdpBlocked {
        /// The UDP call port.
        udp: usize,
        /// TCP call ports (connect or STUN) to the same host.
        tcp: Vec<usize>,
    },
    /// A QUIC check and the TLS checks of the same host and port.
    QuicBlocked {
        /// The QUIC check.
        quic: usize,
        /// TLS checks of the same host and port.
        tls: Vec<usize>,
    },
    /// A download with a `min_rate`.
    Throttled {
        /// The download check.
        download: usize,
        /// Its `min_rate`, bytes per second.
        min_rate: u64,
    },
    /// A download.
    Stalled {
        /// The download check.
        download: usize,
    },
}

impl Case {
    fn inputs(&self) -> Vec<usize> {
        match self {
            Case::DnsRemoved { system, controls }
            | Case::DnsInjected {
                system, controls, ..
            } => std::iter::once(*system)
                .chain(controls.iter().copied())
                .collect(),
            Case::IpBlocked {
                checks, controls, ..
            } => checks.iter().chain(controls).copied().collect(),
            Case::SniFiltered { check } => vec![*check],
            Case::UdpBlocked { udp, tcp } => {
                std::iter::once(*udp).chain(tcp.iter().copied()).collect()
            }
            Case::QuicBlocked { quic, tls } => {
                std::iter::once(*quic).chain(tls.iter().copied()).collect()
            }
            Case::Throttled { download, .. } | Case::Stalled { download } => vec![*download],
        }
    }

    /// Its evidence slot, for cases that need evidence.
    pub fn evidence(&self) -> Option<usize> {
        match self {
            Case::DnsInjected { evidence, .. } | Case::IpBlocked { evidence, .. } => {
                Some(*evidence)
            }
            _ => None,
        }
    }
}

/// What a round gathered for one case, beyond its checks.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Evidence {
    /// Still waiting for the answers it needs (or never started).
    #[default]
    Waiting,
    /// The outcomes decide; nothing was sent.
    NotNeeded,
    /// Connects to the controls' addresses (`None`: still connecting).
    Connects(Vec<(IpAddr, Option<Result<(), Reason>>)>),
    /// Handshakes with the name's SNI at the system's and a control's
    /// address (`None`: not finished).
    Handshakes {
        /// At the system resolver's first address.
        system: Option<Result<(), Reason>>,
        /// At the first control's first address.
        control: Option<Result<(), Reason>>,
    },
}

/// Builds the verdict plans of a config; `entries` are the catalogue's
/// checks (config order). Evidence slots are numbered in order.
pub fn plans(config: &Config, entries: &[Entry]) -> Vec<Plan> {
    let mut plans: Vec<Plan> = Vec::new();
    let mut slots = 0;
    let push = |plans: &mut Vec<Plan>, service, target: &str, kind, case| match plans
        .iter_mut()
        .find(|p| p.service == service && p.kind == kind && p.target == target)
    {
        Some(p) => p.cases.push(case),
        None => plans.push(Plan {
            service,
            target: target.to_string(),
            kind,
            cases: vec![case],
        }),
    };
    let is_control = |r: usize| config.resolvers[r].is_control();
    for si in 0..config.services.len() {
        let mine: Vec<(usize, &Check)> = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.service == si)
            .map(|(i, e)| (i, &e.check))
            .collect();
        let dns = |name: &str, kind: Option<RecordType>, control: bool| -> Vec<usize> {
            mine.iter()
                .filter_map(|(i, c)| match c {
                    Check::Dns(d)
                        if d.name == name
                            && kind.is_none_or(|k| k == d.record_type)
                            && is_control(d.resolver) == control =>
                    {
                        Some(*i)
                    }
                    _ => None,
                })
                .collect()
        };
        // DNS: per name, per type with a system check and a control.
        let mut names: Vec<(&str, RecordType)> = Vec::new();
        for (_, c) in &mine {
            if let Check::Dns(d) = c
                && !is_control(d.resolver)
                && !names.contains(&(d.name.as_str(), d.record_type))
            {
                names.push((&d.name, d.record_type));
            }
        }
        for (name, kind) in names {
            let system = dns(name, Some(kind), false)[0];
            let controls = dns(name, Some(kind), true);
            if controls.is_empty() {
                continue;
            }
            push(
                &mut plans,
                si,
                name,
                BlockingKind::DnsRemoved,
                Case::DnsRemoved {
                    system,
                    controls: controls.clone(),
                },
            );
            // The handshakes go where the service speaks TLS to the name.
            let tls = mine.iter().find_map(|(i, c)| match c {
                Check::Tls(t) if t.target.host == Host::Name(name.to_string()) => {
                    Some((t.target.port, Some(*i)))
                }
                Check::Http(h) if h.url.scheme() == "https" && h.url.host_str() == Some(name) => {
                    h.url.port_or_known_default().map(|p| (p, Some(*i)))
                }
                _ => None,
            });
            let (port, tls_entry) = tls.unwrap_or((443, None));
            let timeout = tls_entry.map_or(entries[system].check.timeout(), |i| {
                entries[i].check.timeout()
            });
            push(
                &mut plans,
                si,
                name,
                BlockingKind::DnsInjected,
                Case::DnsInjected {
                    system,
                    controls,
                    name: name.to_string(),
                    port,
                    tls_entry,
                    timeout,
                    evidence: slots,
                },
            );
            slots += 1;
        }
        for (i, c) in &mine {
            let (target, family, max) = match c {
                Check::Tcp(t) => (&t.target, t.family, t.all_addresses),
                Check::Tls(t) => (&t.target, t.family, t.all_addresses),
                _ => continue,
            };
            let Host::Name(name) = &target.host else {
                continue;
            };
            let controls = dns(name, None, true);
            if controls.is_empty() {
                continue;
            }
            let existing = plans.iter_mut().find(|p| {
                p.service == si && p.kind == BlockingKind::IpBlocked && p.target == target.written
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
                .map(|&ci| match &entries[ci].check {
                    Check::Dns(d) => config.resolvers[d.resolver].kind.is_encrypted(),
                    _ => false,
                })
                .collect();
            push(
                &mut plans,
                si,
                &target.written,
                BlockingKind::IpBlocked,
                Case::IpBlocked {
                    checks: vec![*i],
                    controls,
                    encrypted,
                    port: target.port,
                    family,
                    max: max.unwrap_or(crate::config::DEFAULT_MAX_ADDRESSES),
                    timeout: c.timeout(),
                    evidence: slots,
                },
            );
            slots += 1;
        }
        for (i, c) in &mine {
            match c {
                Check::Tls(t) if t.control_sni.is_some() => push(
                    &mut plans,
                    si,
                    &t.target.written,
                    BlockingKind::SniFiltered,
                    Case::SniFiltered { check: *i },
                ),
                Check::CallPort(u) if u.transport == crate::config::Transport::Udp => {
                    let tcp: Vec<usize> = mine
                        .iter()
                        .filter_map(|(j, c)| match c {
                            Check::CallPort(t)
                                if t.transport == crate::config::Transport::Tcp
                                    && t.target.host == u.target.host =>
                            {
                                Some(*j)
                            }
                            _ => None,
                        })
                        .collect();
                    if !tcp.is_empty() {
                        push(
                            &mut plans,
                            si,
                            &u.target.written,
                            BlockingKind::UdpBlocked,
                            Case::UdpBlocked { udp: *i, tcp },
                        );
                    }
                }
                Check::Quic(q) => {
                    let tls: Vec<usize> = mine
                        .iter()
                        .filter_map(|(j, c)| match c {
                            Check::Tls(t)
                                if t.target.host == q.target.host
                                    && t.target.port == q.target.port =>
                            {
                                Some(*j)
                            }
                            _ => None,
                        })
                        .collect();
                    if !tls.is_empty() {
                        push(
                            &mut plans,
                            si,
                            &q.target.written,
                            BlockingKind::QuicBlocked,
                            Case::QuicBlocked { quic: *i, tls },
                        );
                    }
                }
                Check::Download(d) => {
                    if let Some(min_rate) = d.min_rate {
                        push(
                            &mut plans,
                            si,
                            &d.written,
                            BlockingKind::Throttled,
                            Case::Throttled {
                                download: *i,
                                min_rate,
                            },
                        );
                    }
                    push(
                        &mut plans,
                        si,
                        &d.written,
                        BlockingKind::Stalled,
                        Case::Stalled { download: *i },
                    );
                }
                _ => {}
            }
        }
    }
    plans
}

/// The addresses a DNS outcome holds, if the check passed.
fn passed_addrs(o: &Outcome) -> Option<&[IpAddr]> {
    match (&o.failure, &o.facts) {
        (None, Facts::Dns { addrs, .. }) => Some(addrs),
        _ => None,
    }
}

fn is_cert_failure(r: Reason) -> bool {
    matches!(
        r,
        Reason::SslInvalidHostname | Reason::SslUnknownAuthority | Reason::SslInvalidCertificate
    )
}

/// Makes the evidence `case` needs, in `round`, until `deadline` or the
/// timeout of the checks it stands in for; writes it to `slot` step by
/// step, so that what is unfinished at a cut-off shows as such.
pub async fn gather(round: &Round, case: &Case, slot: &Mutex<Evidence>, deadline: Instant) {
    let set = |e: Evidence| {
        if let Ok(mut s) = slot.lock() {
            *s = e;
        }
    };
    match case {
        Case::DnsInjected {
            system,
            controls,
            name,
            port,
            tls_entry,
            timeout,
            ..
        } => {
            // Bounded like the check they stand in for.
            let deadline = deadline.min(round.started + *timeout);
            let deps: Vec<usize> = std::iter::once(*system)
                .chain(controls.iter().copied())
                .collect();
            if !round.wait_for(&deps, deadline).await {
                return;
            }
            let sys = round.outcome_of(*system);
            let ctl: Vec<Outcome> = controls
                .iter()
                .filter_map(|&c| round.outcome_of(c))
                .collect();
            let sys_addrs = match sys.as_ref().map(|o| (&o.failure, &o.facts)) {
                Some((None, Facts::Dns { addrs, .. })) => addrs.clone(),
                _ => return set(Evidence::NotNeeded),
            };
            let ctl_addrs: Vec<IpAddr> = ctl
                .iter()
                .filter_map(passed_addrs)
                .flatten()
                .copied()
                .collect();
            let (Some(&s), Some(&c)) = (sys_addrs.first(), ctl_addrs.first()) else {
                return set(Evidence::NotNeeded);
            };
            if sys_addrs.iter().any(|a| ctl_addrs.contains(a)) {
                return set(Evidence::NotNeeded);
            }
            set(Evidence::Handshakes {
                system: None,
                control: None,
            });
            let cfg = round.catalogue.handshake_config(*tls_entry);
            // Each handshake's result goes to its half of the slot as it ends.
            let one = |ip: IpAddr, at_system: bool| {
                let cfg = cfg.clone();
                async move {
                    let r = tokio::time::timeout_at(
                        deadline,
                        crate::probe::tls::handshake_result(cfg, name, SocketAddr::new(ip, *port)),
                    )
                    .await
                    .ok();
                    if let Ok(mut g) = slot.lock()
                        && let Evidence::Handshakes { system, control } = &mut *g
                    {
                        *(if at_system { system } else { control }) = r;
                    }
                    r
                }
            };
            let (rs, rc) = tokio::join!(one(s, true), one(c, false));
            tracing::debug!(%name, system = %s, control = %c, ?rs, ?rc, "dns_injected evidence: handshakes with the name's SNI");
        }
        Case::IpBlocked {
            controls,
            port,
            family,
            max,
            timeout,
            ..
        } => {
            let deadline = deadline.min(round.started + *timeout);
            if !round.wait_for(controls, deadline).await {
                return;
            }
            let mut addrs: Vec<IpAddr> = Vec::new();
            for o in controls.iter().filter_map(|&c| round.outcome_of(c)) {
                for a in passed_addrs(&o).unwrap_or_default() {
                    if !addrs.contains(a) {
                        addrs.push(*a);
                    }
                }
            }
            let wanted = |a: &IpAddr| match family {
                IpFamily::V4 => a.is_ipv4(),
                IpFamily::V6 => a.is_ipv6(),
                IpFamily::Any => true,
            };
            // The preferred family, or the other when the controls gave
            // none of it (as a check resolves).
            if addrs.iter().any(wanted) {
                addrs.retain(wanted);
            }
            addrs.truncate(*max);
            if addrs.is_empty() {
                return set(Evidence::NotNeeded);
            }
            set(Evidence::Connects(
                addrs.iter().map(|a| (*a, None)).collect(),
            ));
            let results =
                futures_util::future::join_all(addrs.iter().enumerate().map(|(k, ip)| {
                    let addr = SocketAddr::new(*ip, *port);
                    async move {
                        let r = match tokio::time::timeout_at(
                            deadline,
                            crate::probe::tcp::connect(addr),
                        )
                        .await
                        {
                            Ok(Ok(_)) => Ok(()),
                            Ok(Err(e)) => Err(crate::reason::classify(&e)),
                            Err(_) => Err(Reason::GenericTimeout),
                        };
                        if let Ok(mut g) = slot.lock()
                            && let Evidence::Connects(v) = &mut *g
                        {
                            v[k].1 = Some(r);
                        }
                        (addr, r)
                    }
                }))
                .await;
            tracing::debug!(
                ?results,
                "ip_blocked evidence: connects to the controls' addresses"
            );
        }
        _ => set(Evidence::NotNeeded),
    }
}

/// Judges `plan` from outcomes (`outcome(entry)`) and evidence
/// (`evidence(slot)`): `Some(true)` blocked, `Some(false)` judged and not,
/// `None` not judged.
pub fn judge(
    plan: &Plan,
    outcome: &dyn Fn(usize) -> Option<Outcome>,
    evidence: &dyn Fn(usize) -> Evidence,
) -> Option<bool> {
    let verdicts = plan
        .cases
        .iter()
        .filter_map(|c| judge_case(c, outcome, evidence));
    verdicts.reduce(|a, b| a || b)
}

fn judge_case(
    case: &Case,
    outcome: &dyn Fn(usize) -> Option<Outcome>,
    evidence: &dyn Fn(usize) -> Evidence,
) -> Option<bool> {
    match case {
        Case::DnsRemoved { system, controls } => {
            let control_worked = controls
                .iter()
                .any(|&c| outcome(c).as_ref().and_then(passed_addrs).is_some());
            if !control_worked {
                return None;
            }
            let sys = outcome(*system)?;
            Some(matches!(
                sys.failure,
                Some((
                    Stage::Resolve,
                    Reason::DnsNxdomain | Reason::DnsNoAnswer | Reason::DnsServfail
                ))
            ))
        }
        Case::DnsInjected {
            system,
            controls,
            evidence: slot,
            ..
        } => {
            let ctl: Vec<Outcome> = controls.iter().filter_map(|&c| outcome(c)).collect();
            if !ctl.iter().any(|o| passed_addrs(o).is_some()) {
                return None;
            }
            let sys = outcome(*system)?;
            if matches!(sys.failure, Some((_, Reason::DnsBogon))) {
                return Some(true);
            }
            match evidence(*slot) {
                Evidence::NotNeeded => Some(false),
                Evidence::Handshakes {
                    system: Some(s),
                    control: Some(Ok(())),
                } => Some(matches!(s, Err(r) if is_cert_failure(r))),
                // The control's handshake failed too, or did not finish:
                // no judgement.
                _ => None,
            }
        }
        Case::IpBlocked {
            controls,
            encrypted,
            evidence: slot,
            ..
        } => {
            let network_up = controls
                .iter()
                .zip(encrypted)
                .any(|(&c, &enc)| enc && outcome(c).is_some_and(|o| o.duration.is_some()));
            if !network_up {
                return None;
            }
            match evidence(*slot) {
                // A connect still running at the cut-off timed out.
                Evidence::Connects(v) => {
                    Some(v.iter().all(|(_, r)| matches!(r, None | Some(Err(_)))))
                }
                _ => None,
            }
        }
        Case::SniFiltered { check } => {
            let o = outcome(*check)?;
            match &o.facts {
                Facts::Addresses(per) => per
                    .iter()
                    .filter_map(|(_, o)| sni_verdict(o))
                    .reduce(|a, b| a || b),
                _ => sni_verdict(&o),
            }
        }
        Case::UdpBlocked { udp, tcp } => {
            let u = outcome(*udp)?;
            if u.is_ok() {
                return Some(false);
            }
            tcp.iter()
                .any(|&t| outcome(t).is_some_and(|o| o.is_ok()))
                .then_some(true)
        }
        Case::QuicBlocked { quic, tls } => {
            let q = outcome(*quic)?;
            let blocked_like = match q.failure {
                None => return Some(false),
                Some((Stage::QuicHandshake, r)) => matches!(
                    r,
                    Reason::GenericTimeout | Reason::ConnectionReset | Reason::ConnectionRefused
                ),
                Some(_) => return None,
            };
            if !tls.iter().any(|&t| outcome(t).is_some_and(|o| o.is_ok())) {
                return None;
            }
            Some(blocked_like)
        }
        Case::Throttled { download, min_rate } => {
            let o = outcome(*download)?;
            match (&o.failure, &o.facts) {
                (None, Facts::Download(t)) if !t.stalled && t.first_byte.is_some() => {
                    Some(t.rate() < *min_rate as f64)
                }
                _ => None,
            }
        }
        Case::Stalled { download } => {
            let o = outcome(*download)?;
            match &o.facts {
                Facts::Download(t) => Some(t.stalled),
                _ => None,
            }
        }
    }
}

/// A TLS outcome with its control: 1 for the SNI filter's signature with a
/// control that completed, 0 when the check passed or failed otherwise.
fn sni_verdict(o: &Outcome) -> Option<bool> {
    match o.failure {
        None => Some(false),
        Some((Stage::TlsHandshake, r)) => {
            if !matches!(
                r,
                Reason::ConnectionReset | Reason::GenericTimeout | Reason::Eof
            ) {
                return Some(false);
            }
            (o.control == Some(true)).then_some(true)
        }
        Some(_) => None,
    }
}
