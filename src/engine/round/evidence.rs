//! The evidence verdicts need beyond the configured checks, gathered in
//! the round that runs them: connects to the addresses the controls
//! resolved (`ip_blocked`), handshakes with a name's SNI at the system's
//! and a control's address (`dns_injected`). Each starts as soon as the DNS
//! answers it needs are in, is bounded by the timeout of the checks it
//! stands in for, writes its [`Evidence`] slot step by step (so that a
//! cut-off shows what is unfinished), and is logged at debug; none gets a
//! series of its own. Judging is [`crate::verdict`]'s.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use tokio::time::Instant;

use crate::config::IpFamily;
use crate::engine::round::Round;
use crate::ids::EntryId;
use crate::probe::{Facts, Outcome};
use crate::reason::Reason;
use crate::verdict::{Case, Evidence, passed_addrs};

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
            let deps: Vec<EntryId> = std::iter::once(*system)
                .chain(controls.iter().copied())
                .collect();
            if !round.wait_for(&deps, deadline).await {
                return;
            }
            let sys = round.outcome_of(*system);
            let ctl: Vec<&Outcome> = controls
                .iter()
                .filter_map(|&c| round.outcome_of(c))
                .collect();
            let sys_addrs = match sys.map(|o| (&o.failure, &o.facts)) {
                Some((None, Facts::Dns { addrs, .. })) => addrs.clone(),
                _ => return set(Evidence::NotNeeded),
            };
            let ctl_addrs: Vec<IpAddr> = ctl
                .iter()
                .filter_map(|o| passed_addrs(o))
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
            tracing::debug!(
                %name,
                system = %s,
                control = %c,
                at_system = result_name(rs),
                at_control = result_name(rc),
                "dns_injected evidence: handshakes with the name's SNI"
            );
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
                for a in passed_addrs(o).unwrap_or_default() {
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
            let results = results
                .iter()
                .map(|(addr, r)| format!("{addr}={}", result_name(Some(*r)).unwrap_or_default()))
                .collect::<Vec<_>>();
            tracing::debug!(
                results = results.join(" "),
                "ip_blocked evidence: connects to the controls' addresses"
            );
        }
        _ => set(Evidence::NotNeeded),
    }
}

/// A handshake's or connect's result as a log value: `ok` or the failure's
/// reason; absent when it did not end.
fn result_name(r: Option<Result<(), Reason>>) -> Option<&'static str> {
    r.map(|r| r.err().map_or("ok", Reason::as_str))
}
