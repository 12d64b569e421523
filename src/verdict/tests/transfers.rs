//! The rules of the transfer verdicts: `throttled`, `stalled`,
//! `upload_stalled`.

use super::*;

/// An upload's outcome: `bytes` acknowledged over `millis`, ended by
/// `failure` (`None`: every byte acknowledged and a 2xx).
fn upload(bytes: u64, millis: u64, failure: Option<(Stage, Reason)>, stalled: bool) -> Outcome {
    Outcome {
        failure,
        duration: Some(Duration::from_millis(millis)),
        facts: Facts::Upload(Transfer {
            bytes,
            duration: Duration::from_millis(millis),
            first_byte: None,
            stalled,
            status: None,
            segments: Some(50),
        }),
        control: None,
        ech: None,
    }
}

#[test]
fn uploads_throttled_and_stalled() {
    let throttled = || Case::Throttled {
        transfer: id(0),
        min_rate: 100_000,
    };
    let stalled = || Case::UploadStalled { upload: id(0) };
    let write_stall = Some((Stage::Write, GenericTimeout));
    let rows: Vec<(&str, Outcome, Option<bool>, Option<bool>)> = vec![
        (
            "slow, finished",
            upload(200_000, 4000, None, false),
            YES,
            NO,
        ),
        ("fast enough", upload(800_000, 4000, None, false), NO, NO),
        // Still acknowledged when the check's time ran out: the rate stands.
        (
            "slow, out of time",
            upload(200_000, 4000, write_stall, false),
            YES,
            NO,
        ),
        (
            "frozen",
            upload(20_000, 3000, write_stall, true),
            ABSENT,
            YES,
        ),
        // Frozen past both floors: its rate is the freeze's, not a
        // throttle's.
        (
            "frozen after 100 KB",
            upload(100_000, 5000, write_stall, true),
            ABSENT,
            YES,
        ),
        // The server answered otherwise: no rate to judge, nothing stalled.
        (
            "rejected",
            upload(6_000, 1, Some((Stage::Http, HttpUnexpectedStatus)), false),
            ABSENT,
            NO,
        ),
        (
            "slow but too short to judge",
            upload(2_000, 100, None, false),
            ABSENT,
            NO,
        ),
        (
            "never sent",
            fail(Stage::Connect, ConnectionRefused),
            ABSENT,
            ABSENT,
        ),
    ];
    for (what, o, want_throttled, want_stalled) in rows {
        let got = judge_case(throttled(), vec![(0, o.clone())], Evidence::Waiting);
        assert_eq!(got, want_throttled, "throttled: {what}");
        let got = judge_case(stalled(), vec![(0, o)], Evidence::Waiting);
        assert_eq!(got, want_stalled, "upload_stalled: {what}");
    }
}

#[test]
fn throttled_and_stalled() {
    let throttled = || Case::Throttled {
        transfer: id(0),
        min_rate: 100_000,
    };
    let stalled = || Case::Stalled { download: id(0) };
    let rows: Vec<(&str, Outcome, Option<bool>, Option<bool>)> = vec![
        // (what, outcome, throttled, stalled)
        ("slow", download(200_000, 4000, true, false), YES, NO),
        ("fast enough", download(800_000, 4000, true, false), NO, NO),
        (
            "exactly min_rate",
            download(400_000, 4000, true, false),
            NO,
            NO,
        ),
        // A 3-byte page: 100 bytes/s, but nothing to judge a rate by.
        ("a tiny body", download(3, 30, true, false), ABSENT, NO),
        // The floors: 64 KiB of body and 1 s, both needed to say slow.
        (
            "just under 64 KiB",
            download(65_535, 2000, true, false),
            ABSENT,
            NO,
        ),
        (
            "64 KiB over 2 s",
            download(65_536, 2000, true, false),
            YES,
            NO,
        ),
        (
            "just under 1 s",
            download(90_000, 999, true, false),
            ABSENT,
            NO,
        ),
        ("1 s", download(90_000, 1000, true, false), YES, NO),
        // Fast is fast, however short.
        (
            "a small fast body",
            download(2_000, 10, true, false),
            NO,
            NO,
        ),
        ("stalled", download(16_384, 3000, true, true), ABSENT, YES),
        (
            "no response head",
            download(0, 3000, false, false),
            ABSENT,
            NO,
        ),
        (
            "failed before the request",
            fail(Stage::Connect, ConnectionReset),
            ABSENT,
            ABSENT,
        ),
    ];
    for (what, o, want_throttled, want_stalled) in rows {
        let t = judge_case(throttled(), vec![(0, o.clone())], Evidence::Waiting);
        assert_eq!(t, want_throttled, "throttled: {what}");
        let s = judge_case(stalled(), vec![(0, o)], Evidence::Waiting);
        assert_eq!(s, want_stalled, "stalled: {what}");
    }
}
