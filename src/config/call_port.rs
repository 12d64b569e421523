//! Call-port checks: [`CallPortOptions`] (transport, method, timeout,
//! address family), the [`CallPortCheck`] of one target, and their
//! validation: `{ udp: host:port }` (STUN), `{ tcp: host:port }` (connect)
//! or `{ tcp: host:port, method: stun }`.
//!
//! It sends nothing: `probe::call_port` does.

use std::time::Duration;

use super::raw::RawCallPort;
use super::validate::{At, Checked, Defaults, Validator};
use super::values::{CallMethod, IpFamily, Target, Transport};

/// How to probe a call port: a module's options, or a service entry's.
#[derive(Debug, Clone)]
pub struct CallPortOptions {
    /// UDP or TCP.
    pub transport: Transport,
    /// What proves the port answers.
    pub method: CallMethod,
    /// Time limit (resolution, connect and the exchange together).
    pub timeout: Duration,
    /// Which resolved address to use.
    pub family: IpFamily,
}

/// A call-port check of a target (its options are read through it:
/// `check.transport`).
#[derive(Debug, Clone)]
pub struct CallPortCheck {
    /// Where to.
    pub target: Target,
    /// How.
    pub options: CallPortOptions,
}

impl CallPortOptions {
    /// The check of `target`.
    pub fn check(self, target: Target) -> CallPortCheck {
        CallPortCheck {
            target,
            options: self,
        }
    }
}

impl Validator<'_> {
    /// A call-port entry or module at `at`, with its target (`()` for a
    /// module); `tcp_key` is how its syntax asks for TCP.
    pub fn call_port<T>(
        &self,
        at: &At,
        d: &Defaults,
        raw: RawCallPort<T>,
        tcp_key: &str,
    ) -> Checked<T, CallPortOptions> {
        let (target, transport, method) = match (raw.udp, raw.tcp, raw.method) {
            (Some(t), None, None | Some(CallMethod::Stun)) => (t, Transport::Udp, CallMethod::Stun),
            (Some(_), None, Some(CallMethod::Connect)) => {
                return Err(self.err(at, format!(
                    "`method: connect` needs {tcp_key}: UDP has no connection; a udp call port is probed with STUN"
                )));
            }
            (None, Some(t), m) => (t, Transport::Tcp, m.unwrap_or(CallMethod::Connect)),
            _ => return Err(self.err(at, "a call port takes exactly one of `udp` and `tcp`")),
        };
        let d = d.within(raw.timeout, raw.ip_family);
        let options = CallPortOptions {
            transport,
            method,
            timeout: d.timeout,
            family: d.family,
        };
        Ok((target, options))
    }
}
