//! `pace:`: how a round spreads the starts of its checks over its budget,
//! so that the exporter's own burst does not become part of what it
//! measures.

use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::decode::{ConfigError, parse_str};
use super::validate::Validator;

/// The default `pace.starts_per_second`.
pub const DEFAULT_STARTS_PER_SECOND: u32 = 200;
/// The default `pace.spread`, in percent of the scrape's budget.
pub const DEFAULT_SPREAD_PERCENT: u8 = 50;

/// How a round starts its checks: one every `1 / starts_per_second`, unless
/// that would take longer than `spread` of the scrape's budget, in which
/// case as fast as needed to start the last one within it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// At most this many check starts per second (while they fit `spread`).
    pub starts_per_second: u32,
    /// The share of the budget (0 < spread ≤ 0.9) the starts may spread over.
    pub spread: f64,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            starts_per_second: DEFAULT_STARTS_PER_SECOND,
            spread: f64::from(DEFAULT_SPREAD_PERCENT) / 100.0,
        }
    }
}

impl Pace {
    /// The time between two starts at `starts_per_second`.
    pub fn period(&self) -> Duration {
        Duration::from_secs(1) / self.starts_per_second
    }

    /// The time between two starts in a round of `checks` with `budget`.
    pub fn interval(&self, checks: usize, budget: Duration) -> Duration {
        let at_rate = self.period();
        if checks <= 1 {
            return at_rate;
        }
        // Starts at 0, i, 2i, …, (n - 1)i: the last one within the window.
        let window = budget.mul_f64(self.spread);
        let fitting = window.div_f64((checks - 1) as f64);
        at_rate.min(fitting)
    }

    /// The budget of a round of `checks` checks with no scrape deadline,
    /// whose longest timeout is `longest`: long enough that
    /// [`Pace::interval`] keeps the configured rate and the last check to
    /// start has its whole timeout (`check`, services with `every:`).
    pub fn unhurried(&self, checks: usize, longest: Duration) -> Duration {
        let spread = self
            .period()
            .mul_f64(checks.saturating_sub(1) as f64)
            .div_f64(self.spread);
        spread + longest + Duration::from_secs(1)
    }
}

/// `pace:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPace {
    pub starts_per_second: Option<Spanned<Rate>>,
    pub spread: Option<Percent>,
}

/// A whole number of starts a second, at least 1.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rate(pub u32);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const WANT: &str = "a whole number of starts a second from 1 to 4294967295, such as 200";
        impl serde::de::Visitor<'_> for V {
            type Value = Rate;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(WANT)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Rate, E> {
                match u32::try_from(v) {
                    Ok(n) if n > 0 => Ok(Rate(n)),
                    _ => Err(E::custom(format!("invalid rate {v}: expected {WANT}"))),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Rate, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("invalid rate {v}: expected {WANT}")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Rate, E> {
                Err(E::custom(format!("invalid rate {v}: expected {WANT}")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Rate, E> {
                Err(E::custom(format!("invalid rate {v:?}: expected {WANT}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A share of the budget written as a percentage, from `1%` to `90%` (the
/// last start must leave its check time to run).
#[derive(Debug, Clone, Copy)]
pub(super) struct Percent(pub u8);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, |s| {
            s.trim()
                .strip_suffix('%')
                .and_then(|n| n.trim().parse::<u8>().ok())
                .filter(|n| (1..=90).contains(n))
                .map(Percent)
                .ok_or_else(|| {
                    format!(
                        "invalid share {s:?}: expected a whole percentage from 1% to 90%, such as 50% (the last start must leave its check time to run)"
                    )
                })
        })
    }
}

impl Validator<'_> {
    /// `pace:`, defaults filled in.
    pub(super) fn pace(&self, raw: Option<RawPace>) -> Result<Pace, ConfigError> {
        let Some(raw) = raw else {
            return Ok(Pace::default());
        };
        let mut pace = Pace::default();
        if let Some(s) = raw.starts_per_second {
            pace.starts_per_second = s.value.0;
        }
        if let Some(p) = raw.spread {
            pace.spread = f64::from(p.0) / 100.0;
        }
        Ok(pace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_keeps_the_rate_while_the_starts_fit() {
        let pace = Pace::default();
        let budget = Duration::from_millis(9_500);
        // 150 checks at 200/s take 745 ms: within half of 9.5 s.
        assert_eq!(pace.interval(150, budget), Duration::from_millis(5));
        // 1,000 at 200/s would take 5 s: more than 4.75 s, so faster.
        let i = pace.interval(1_000, budget);
        assert!(i < Duration::from_millis(5), "{i:?}");
        assert_eq!(i.mul_f64(999.0).as_millis(), 4_750);
        // 10,000 in a 29.5 s budget: the last starts at 14.75 s.
        let i = pace.interval(10_000, Duration::from_millis(29_500));
        assert_eq!(i.mul_f64(9_999.0).as_millis(), 14_750);
        // One check, or none: nothing to spread.
        assert_eq!(pace.interval(1, budget), Duration::from_millis(5));
        assert_eq!(pace.interval(0, budget), Duration::from_millis(5));
    }

    #[test]
    fn spread_bounds_the_window() {
        let pace = Pace {
            starts_per_second: 1,
            spread: 1.0,
        };
        // 11 checks at 1/s would take 10 s; a 5 s budget fits them at 0.5 s.
        assert_eq!(
            pace.interval(11, Duration::from_secs(5)),
            Duration::from_millis(500)
        );
    }

    /// `check` keeps the configured rate, whatever the number of checks,
    /// and leaves the last one its whole timeout.
    #[test]
    fn the_budget_keeps_the_pace_and_the_last_timeout() {
        let pace = Pace::default();
        let longest = Duration::from_secs(5);
        for n in [1usize, 12, 150, 3_001] {
            let budget = pace.unhurried(n, longest);
            let interval = pace.interval(n, budget);
            assert_eq!(interval, Duration::from_millis(5), "{n} checks");
            let last_start = interval.mul_f64(n.saturating_sub(1) as f64);
            assert!(budget - last_start >= longest, "{n} checks: {budget:?}");
        }
    }

    #[test]
    fn a_written_pace_is_taken_and_a_bad_rate_refused() {
        let parse = |pace: &str| {
            crate::config::Config::parse(
                &format!("pace: {pace}\nservices:\n  s: {{ tcp: [\"127.0.0.1:9\"] }}\n"),
                std::path::Path::new("t.yaml"),
            )
        };
        let p = parse("{ starts_per_second: 50, spread: 25% }")
            .unwrap()
            .pace;
        assert_eq!((p.starts_per_second, p.spread), (50, 0.25));
        let p = parse("{ starts_per_second: 1 }").unwrap().pace;
        assert_eq!((p.starts_per_second, p.spread), (1, Pace::default().spread));
        for bad in ["0", "[1]", "-1"] {
            let e = parse(&format!("{{ starts_per_second: {bad} }}"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("expected a whole number of starts a second from 1 to 4294967295"),
                "{bad}: {e}"
            );
        }
    }
}
