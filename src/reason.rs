//! Where a check failed ([`Stage`]) and why ([`Reason`]): the only map from
//! errors to label values.
//!
//! Every failure a prober sees is turned into a `(Stage, Reason)` pair here,
//! so that the `stage` and `reason` labels can only ever take the values
//! listed in these two enums. Reason strings follow OONI Probe's failure
//! strings, so results line up with OONI's data. Error text never becomes a
//! label: anything not recognised is [`Reason::UnknownFailure`].
//!
//! This module does not decide *whether* something failed (the probers do),
//! and it does not log.

use std::error::Error as StdError;
use std::io;

use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use rustls::CertificateError;

/// The step of a check that was running when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Name resolution: the DNS check itself, or resolving a TCP/TLS target's
    /// host (also a DoT/DoH resolver's own connect or TLS failure).
    Resolve,
    /// The TCP handshake.
    Connect,
    /// The TLS handshake on an established TCP connection.
    TlsHandshake,
    /// A STUN request and its response (call ports).
    Stun,
    /// An HTTP request and its response.
    Http,
    /// A QUIC handshake (over UDP).
    QuicHandshake,
    /// Reading a download's body once the request was sent.
    Read,
    /// Sending an upload's body: the peer's acknowledgements stopped.
    Write,
}

impl Stage {
    /// Every stage, in the order a check passes through them.
    pub const ALL: [Stage; 8] = [
        Stage::Resolve,
        Stage::Connect,
        Stage::TlsHandshake,
        Stage::Stun,
        Stage::Http,
        Stage::QuicHandshake,
        Stage::Read,
        Stage::Write,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Resolve => "resolve",
            Stage::Connect => "connect",
            Stage::TlsHandshake => "tls_handshake",
            Stage::Stun => "stun",
            Stage::Http => "http",
            Stage::QuicHandshake => "quic_handshake",
            Stage::Read => "read",
            Stage::Write => "write",
        }
    }

    /// Compact encoding for lock-free progress tracking ([`Stage::ALL`] index).
    pub(crate) fn to_u8(self) -> u8 {
        self as u8
    }

    /// Inverse of [`Stage::to_u8`]; out-of-range values map to the first stage.
    pub(crate) fn from_u8(v: u8) -> Stage {
        Stage::ALL
            .get(usize::from(v))
            .copied()
            .unwrap_or(Stage::Resolve)
    }
}

/// Why a check failed: a closed set of OONI failure strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The name does not exist (NXDOMAIN).
    DnsNxdomain,
    /// NOERROR, but no address of the asked type.
    DnsNoAnswer,
    /// The server answered SERVFAIL.
    DnsServfail,
    /// The server answered REFUSED.
    DnsRefused,
    /// An answer held a private or reserved address (injection, stub page).
    DnsBogon,
    /// Any other malformed or unexpected DNS response.
    DnsServerMisbehaving,
    /// Nothing came back in time (any stage).
    GenericTimeout,
    /// The peer refused the connection (RST on SYN, ICMP port unreachable).
    ConnectionRefused,
    /// The peer (or something on the path) reset an established connection.
    ConnectionReset,
    /// The connection was aborted locally.
    ConnectionAborted,
    /// The peer closed the connection before the step completed.
    Eof,
    /// No route to the host (ICMP host unreachable).
    HostUnreachable,
    /// No route to the network.
    NetworkUnreachable,
    /// The certificate is not valid for the name asked for.
    SslInvalidHostname,
    /// The certificate chains to no trusted root.
    SslUnknownAuthority,
    /// The certificate is expired, not yet valid, or otherwise bad.
    SslInvalidCertificate,
    /// The peer aborted the TLS handshake with an alert, or the handshake
    /// could not agree on parameters.
    SslFailedHandshake,
    /// An HTTP status outside the accepted set.
    HttpUnexpectedStatus,
    /// The QUIC server supports none of our versions.
    QuicIncompatibleVersion,
    /// Anything else.
    UnknownFailure,
}

impl Reason {
    /// Every reason, for documentation and tests.
    pub const ALL: [Reason; 20] = [
        Reason::DnsNxdomain,
        Reason::DnsNoAnswer,
        Reason::DnsServfail,
        Reason::DnsRefused,
        Reason::DnsBogon,
        Reason::DnsServerMisbehaving,
        Reason::GenericTimeout,
        Reason::ConnectionRefused,
        Reason::ConnectionReset,
        Reason::ConnectionAborted,
        Reason::Eof,
        Reason::HostUnreachable,
        Reason::NetworkUnreachable,
        Reason::SslInvalidHostname,
        Reason::SslUnknownAuthority,
        Reason::SslInvalidCertificate,
        Reason::SslFailedHandshake,
        Reason::HttpUnexpectedStatus,
        Reason::QuicIncompatibleVersion,
        Reason::UnknownFailure,
    ];

    /// The label value (OONI's failure string).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::DnsNxdomain => "dns_nxdomain_error",
            Reason::DnsNoAnswer => "dns_no_answer",
            Reason::DnsServfail => "dns_servfail_error",
            Reason::DnsRefused => "dns_refused_error",
            Reason::DnsBogon => "dns_bogon_error",
            Reason::DnsServerMisbehaving => "dns_server_misbehaving",
            Reason::GenericTimeout => "generic_timeout_error",
            Reason::ConnectionRefused => "connection_refused",
            Reason::ConnectionReset => "connection_reset",
            Reason::ConnectionAborted => "connection_aborted",
            Reason::Eof => "eof_error",
            Reason::HostUnreachable => "host_unreachable",
            Reason::NetworkUnreachable => "network_unreachable",
            Reason::SslInvalidHostname => "ssl_invalid_hostname",
            Reason::SslUnknownAuthority => "ssl_unknown_authority",
            Reason::SslInvalidCertificate => "ssl_invalid_certificate",
            Reason::SslFailedHandshake => "ssl_failed_handshake",
            Reason::HttpUnexpectedStatus => "http_unexpected_status",
            Reason::QuicIncompatibleVersion => "quic_incompatible_version",
            Reason::UnknownFailure => "unknown_failure",
        }
    }
}

/// Classifies any error by walking its `source()` chain and taking the first
/// link that is recognised: a DNS error, a TLS error, or an I/O error kind.
pub fn classify(err: &(dyn StdError + 'static)) -> Reason {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(reason) = classify_one(e) {
            return reason;
        }
        cur = e.source();
    }
    Reason::UnknownFailure
}

fn classify_one(e: &(dyn StdError + 'static)) -> Option<Reason> {
    if let Some(net) = e.downcast_ref::<NetError>() {
        return classify_net(net);
    }
    if let Some(dns) = e.downcast_ref::<DnsError>() {
        return Some(classify_dns(dns));
    }
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(classify_tls(tls));
    }
    if let Some(quic) = e.downcast_ref::<quinn::ConnectionError>() {
        return Some(classify_quic(quic));
    }
    if let Some(io) = e.downcast_ref::<io::Error>() {
        // An io::Error may only wrap the real cause (tokio-rustls wraps
        // rustls errors this way): look inside first.
        if let Some(inner) = io.get_ref()
            && let Some(reason) = classify_one(inner)
        {
            return Some(reason);
        }
        return classify_io_kind(io.kind());
    }
    None
}

fn classify_net(e: &NetError) -> Option<Reason> {
    match e {
        // `NetError::Dns` is not matched here: its source is the DnsError,
        // which the walk down the chain classifies next (cargo-mutants found
        // an arm for it redundant; `dns_errors_map` covers the path).
        NetError::Timeout => Some(Reason::GenericTimeout),
        NetError::Io(io) => {
            classify_one(io.as_ref() as &(dyn StdError + 'static)).or(Some(Reason::UnknownFailure))
        }
        // Other variants (protocol, H2, …) may carry a recognisable source.
        _ => None,
    }
}

fn classify_dns(e: &DnsError) -> Reason {
    match e {
        DnsError::NoRecordsFound(nr) => match nr.response_code {
            ResponseCode::NXDomain => Reason::DnsNxdomain,
            ResponseCode::NoError => Reason::DnsNoAnswer,
            code => classify_rcode(code),
        },
        DnsError::ResponseCode(code) => classify_rcode(*code),
        _ => Reason::DnsServerMisbehaving,
    }
}

/// The reason for a DNS response code other than NOERROR.
pub fn classify_rcode(code: ResponseCode) -> Reason {
    match code {
        ResponseCode::NXDomain => Reason::DnsNxdomain,
        ResponseCode::ServFail => Reason::DnsServfail,
        ResponseCode::Refused => Reason::DnsRefused,
        _ => Reason::DnsServerMisbehaving,
    }
}

fn classify_tls(e: &rustls::Error) -> Reason {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(cert) => match cert {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Reason::SslInvalidHostname
            }
            CertificateError::UnknownIssuer => Reason::SslUnknownAuthority,
            _ => Reason::SslInvalidCertificate,
        },
        E::AlertReceived(_) => Reason::SslFailedHandshake,
        E::PeerIncompatible(_) | E::NoApplicationProtocol => Reason::SslFailedHandshake,
        _ => Reason::UnknownFailure,
    }
}

/// A QUIC handshake's end. quinn reports a certificate our verifier
/// refused as the TLS alert rustls would send for it (RFC 9001 §4.8 carries
/// alerts as `0x100 + alert`): `unknown_ca` (48) is an unknown authority,
/// `bad_certificate` (42) is what rustls sends for a name mismatch (and for
/// an unparsable certificate), `certificate_expired` (45) an invalid one.
fn classify_quic(e: &quinn::ConnectionError) -> Reason {
    use quinn::ConnectionError as C;
    match e {
        C::VersionMismatch => Reason::QuicIncompatibleVersion,
        C::TimedOut => Reason::GenericTimeout,
        C::Reset => Reason::ConnectionReset,
        C::TransportError(t) => match u64::from(t.code) {
            0x130 => Reason::SslUnknownAuthority,
            0x12a => Reason::SslInvalidHostname,
            0x12d => Reason::SslInvalidCertificate,
            0x100..=0x1ff => Reason::SslFailedHandshake,
            _ => Reason::UnknownFailure,
        },
        // The peer closed the handshake: with a TLS alert, a failed
        // handshake; otherwise it refused us.
        C::ConnectionClosed(c) if (0x100..=0x1ff).contains(&u64::from(c.error_code)) => {
            Reason::SslFailedHandshake
        }
        C::ConnectionClosed(_) | C::ApplicationClosed(_) => Reason::ConnectionRefused,
        _ => Reason::UnknownFailure,
    }
}

/// Maps an I/O error kind to a reason; `None` for kinds that say nothing
/// about the network (the caller then reports `unknown_failure`).
fn classify_io_kind(kind: io::ErrorKind) -> Option<Reason> {
    use io::ErrorKind as K;
    Some(match kind {
        K::ConnectionRefused => Reason::ConnectionRefused,
        K::ConnectionReset => Reason::ConnectionReset,
        K::ConnectionAborted => Reason::ConnectionAborted,
        K::UnexpectedEof | K::BrokenPipe => Reason::Eof,
        K::TimedOut => Reason::GenericTimeout,
        K::HostUnreachable => Reason::HostUnreachable,
        K::NetworkUnreachable => Reason::NetworkUnreachable,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::net::NoRecords;
    use hickory_resolver::proto::op::Query;
    use rustls::AlertDescription;
    use std::sync::Arc;

    #[test]
    fn io_kinds_map_to_ooni_strings() {
        let cases = [
            (io::ErrorKind::ConnectionRefused, "connection_refused"),
            (io::ErrorKind::ConnectionReset, "connection_reset"),
            (io::ErrorKind::ConnectionAborted, "connection_aborted"),
            (io::ErrorKind::UnexpectedEof, "eof_error"),
            (io::ErrorKind::TimedOut, "generic_timeout_error"),
            (io::ErrorKind::HostUnreachable, "host_unreachable"),
            (io::ErrorKind::NetworkUnreachable, "network_unreachable"),
            (io::ErrorKind::PermissionDenied, "unknown_failure"),
        ];
        for (kind, want) in cases {
            let err = io::Error::new(kind, "some text that must not leak");
            assert_eq!(classify(&err).as_str(), want, "{kind:?}");
        }
    }

    #[test]
    fn raw_os_errors_for_unreachable_map() {
        // ICMP host/net unreachable arrive as EHOSTUNREACH / ENETUNREACH.
        let host = io::Error::from_raw_os_error(113);
        let net = io::Error::from_raw_os_error(101);
        assert_eq!(classify(&host), Reason::HostUnreachable);
        assert_eq!(classify(&net), Reason::NetworkUnreachable);
    }

    #[test]
    fn tls_errors_inside_io_errors_are_found() {
        let inner = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let err = io::Error::new(io::ErrorKind::InvalidData, inner);
        assert_eq!(classify(&err), Reason::SslUnknownAuthority);
        let inner = rustls::Error::InvalidCertificate(CertificateError::Expired);
        let err = io::Error::new(io::ErrorKind::InvalidData, inner);
        assert_eq!(classify(&err), Reason::SslInvalidCertificate);
        let inner = rustls::Error::AlertReceived(AlertDescription::HandshakeFailure);
        assert_eq!(classify(&inner), Reason::SslFailedHandshake);
    }

    #[test]
    fn dns_errors_map() {
        let q = Query::default();
        let nx = NetError::Dns(DnsError::NoRecordsFound(NoRecords::new(
            q.clone(),
            ResponseCode::NXDomain,
        )));
        let empty = NetError::Dns(DnsError::NoRecordsFound(NoRecords::new(
            q,
            ResponseCode::NoError,
        )));
        let servfail = NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail));
        let refused = NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused));
        let io = NetError::Io(Arc::new(io::Error::from(io::ErrorKind::ConnectionRefused)));
        assert_eq!(classify(&nx), Reason::DnsNxdomain);
        assert_eq!(classify(&empty), Reason::DnsNoAnswer);
        assert_eq!(classify(&servfail), Reason::DnsServfail);
        assert_eq!(classify(&refused), Reason::DnsRefused);
        assert_eq!(classify(&NetError::Timeout), Reason::GenericTimeout);
        assert_eq!(classify(&io), Reason::ConnectionRefused);
        // A bare response code, as a TCP/DoT/DoH resolver reports it.
        for (code, want) in [
            (ResponseCode::NXDomain, Reason::DnsNxdomain),
            (ResponseCode::ServFail, Reason::DnsServfail),
            (ResponseCode::Refused, Reason::DnsRefused),
            (ResponseCode::FormErr, Reason::DnsServerMisbehaving),
        ] {
            assert_eq!(classify_rcode(code), want, "{code:?}");
            let e = NetError::Dns(DnsError::ResponseCode(code));
            assert_eq!(classify(&e), want, "{code:?}");
        }
    }

    #[test]
    fn quic_ends_map() {
        use quinn::{
            ApplicationClose, ConnectionClose, ConnectionError as C, TransportErrorCode as Code,
            VarInt,
        };
        let closed = |error_code| {
            C::ConnectionClosed(ConnectionClose {
                error_code,
                frame_type: None,
                reason: Default::default(),
            })
        };
        // quinn does not re-export quinn-proto's TransportError: built
        // from its code.
        let transport = |code: Code| C::TransportError(code.into());
        let cases = [
            (C::VersionMismatch, Reason::QuicIncompatibleVersion),
            (C::TimedOut, Reason::GenericTimeout),
            (C::Reset, Reason::ConnectionReset),
            // The alerts rustls sends for what our verifier refused.
            (transport(Code::crypto(48)), Reason::SslUnknownAuthority),
            (transport(Code::crypto(42)), Reason::SslInvalidHostname),
            (transport(Code::crypto(45)), Reason::SslInvalidCertificate),
            (transport(Code::crypto(40)), Reason::SslFailedHandshake),
            (transport(Code::PROTOCOL_VIOLATION), Reason::UnknownFailure),
            // The peer closed: with a TLS alert, or refusing us.
            (closed(Code::crypto(40)), Reason::SslFailedHandshake),
            (closed(Code::NO_ERROR), Reason::ConnectionRefused),
            (
                C::ApplicationClosed(ApplicationClose {
                    error_code: VarInt::from_u32(0),
                    reason: Default::default(),
                }),
                Reason::ConnectionRefused,
            ),
            (C::LocallyClosed, Reason::UnknownFailure),
        ];
        for (e, want) in cases {
            assert_eq!(classify(&e), want, "{e:?}");
        }
    }

    #[test]
    fn tls_handshake_refusals_are_failed_handshakes() {
        use rustls::PeerIncompatible;
        let cases = [
            rustls::Error::AlertReceived(AlertDescription::ProtocolVersion),
            rustls::Error::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon),
            rustls::Error::NoApplicationProtocol,
        ];
        for e in cases {
            assert_eq!(classify(&e), Reason::SslFailedHandshake, "{e:?}");
        }
        assert_eq!(
            classify(&rustls::Error::DecryptError),
            Reason::UnknownFailure
        );
    }

    #[test]
    fn label_values_are_unique_and_never_timed_out() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.as_str()), "duplicate {}", r.as_str());
            assert_ne!(r.as_str(), "timed_out");
        }
        for s in Stage::ALL {
            assert_eq!(Stage::from_u8(s.to_u8()), s);
        }
    }
}
