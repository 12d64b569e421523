//! The network regime: judged from the handshakes with the `regime:`
//! block's references, the statement that stands above every service's
//! verdicts. Pure: the round makes the handshakes.

use crate::config::Side;

/// What the network lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkRegime {
    /// Some foreign reference answered: the open Internet is reachable.
    Open,
    /// Every foreign reference failed while a domestic one answered: only
    /// approved (domestic) services work.
    Allowlist,
    /// Every reference failed.
    Offline,
}

impl NetworkRegime {
    /// Every regime, in the order the state set is exported.
    pub const ALL: [NetworkRegime; 3] = [
        NetworkRegime::Open,
        NetworkRegime::Allowlist,
        NetworkRegime::Offline,
    ];

    /// The `regime` label.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkRegime::Open => "open",
            NetworkRegime::Allowlist => "allowlist",
            NetworkRegime::Offline => "offline",
        }
    }
}

/// The regime from each reference's side and whether its handshake
/// succeeded (one that did not end counts as failed); `None` when there is
/// no reference.
pub fn regime(references: &[(Side, bool)]) -> Option<NetworkRegime> {
    if references.is_empty() {
        return None;
    }
    let answered = |side| references.iter().any(|&(s, ok)| s == side && ok);
    Some(if answered(Side::Foreign) {
        NetworkRegime::Open
    } else if answered(Side::Domestic) {
        NetworkRegime::Allowlist
    } else {
        NetworkRegime::Offline
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Side::{Domestic, Foreign};

    /// What a row says, the references' results, and the regime.
    type Row = (&'static str, Vec<(Side, bool)>, Option<NetworkRegime>);

    #[test]
    fn one_row_per_rule() {
        let rows: Vec<Row> = vec![
            ("no reference", vec![], None),
            (
                "a foreign host answers",
                vec![(Domestic, true), (Foreign, false), (Foreign, true)],
                Some(NetworkRegime::Open),
            ),
            (
                "foreign only, answering",
                vec![(Foreign, true)],
                Some(NetworkRegime::Open),
            ),
            (
                "open though the domestic one fails",
                vec![(Domestic, false), (Foreign, true)],
                Some(NetworkRegime::Open),
            ),
            (
                "every foreign fails, a domestic answers",
                vec![(Domestic, false), (Domestic, true), (Foreign, false)],
                Some(NetworkRegime::Allowlist),
            ),
            (
                "everything fails",
                vec![(Domestic, false), (Foreign, false)],
                Some(NetworkRegime::Offline),
            ),
            (
                "foreign only, failing",
                vec![(Foreign, false)],
                Some(NetworkRegime::Offline),
            ),
        ];
        for (what, refs, want) in rows {
            assert_eq!(regime(&refs), want, "{what}");
        }
    }
}
