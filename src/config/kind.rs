//! [`CheckKind`]: the closed list of check kinds, their label values and
//! their order (what per-kind counters are indexed by).
//!
//! This is the only place the kinds are listed: a module's `kind:` key,
//! the `check` label and the exporter's own counters all come from here.
//! It knows nothing of a kind's options (see the per-kind modules).

use serde::Deserialize;

/// What a check does (the `check` label, and a module's `kind`).
///
/// serde spells the variants as [`CheckKind::as_str`] does (a unit test
/// holds the two together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// Resolve a name.
    Dns,
    /// Connect over TCP.
    Tcp,
    /// A TLS handshake.
    Tls,
    /// Whether a call port answers.
    CallPort,
    /// An HTTP(S) GET.
    Http,
    /// A bounded download.
    Download,
    /// A QUIC handshake.
    Quic,
    /// A bounded upload.
    Upload,
}

impl CheckKind {
    /// Every kind, in [`CheckKind::index`] order.
    pub const ALL: [CheckKind; 8] = [
        CheckKind::Dns,
        CheckKind::Tcp,
        CheckKind::Tls,
        CheckKind::CallPort,
        CheckKind::Http,
        CheckKind::Download,
        CheckKind::Quic,
        CheckKind::Upload,
    ];

    /// The label value, and how a module's `kind` names it.
    pub const fn as_str(self) -> &'static str {
        match self {
            CheckKind::Dns => "dns",
            CheckKind::Tcp => "tcp",
            CheckKind::Tls => "tls",
            CheckKind::CallPort => "call_port",
            CheckKind::Http => "http",
            CheckKind::Download => "download",
            CheckKind::Quic => "quic",
            CheckKind::Upload => "upload",
        }
    }

    /// Its position in [`CheckKind::ALL`]: an index into arrays of
    /// `CheckKind::ALL.len()` per-kind values.
    pub const fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde::de::value::{Error, StrDeserializer};

    #[test]
    fn index_is_the_position_in_all_and_serde_reads_as_str() {
        for (i, k) in CheckKind::ALL.into_iter().enumerate() {
            assert_eq!(k.index(), i, "{}", k.as_str());
            let read = CheckKind::deserialize(StrDeserializer::<Error>::new(k.as_str()));
            assert_eq!(read, Ok(k));
        }
    }
}
