//! The Prometheus remote-write 1.0 wire format: a protobuf `WriteRequest`
//! (prost), snappy-compressed in the block format (snap), and the series
//! of our own exposition text turned into it.

use std::collections::HashMap;

use prost::Message as _;

/// `prometheus.WriteRequest` (fields 1 only; metadata is not sent).
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Sorted by name, `__name__` among them.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Its samples, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    /// The name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// The body of a push of `series`: protobuf, then snappy (block format).
pub fn body(series: &[TimeSeries]) -> Vec<u8> {
    let request = WriteRequest {
        timeseries: series.to_vec(),
    };
    // Compressing bytes in memory cannot fail but for a body over 4 GiB.
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .unwrap_or_default()
}

/// The series of exposition text `text` (Prometheus format, as
/// [`crate::metrics::render`] writes it), each with `extra` labels added
/// (`job`, `instance`), its labels sorted, and one sample: at `stamp` of
/// its `service` label's value (the round that produced it), else at
/// `now`; a series whose service maps to `None` is left out (its round
/// was sent before).
pub fn series(
    text: &str,
    extra: &[(&str, &str)],
    stamp: &HashMap<&str, Option<i64>>,
    now: i64,
) -> Vec<TimeSeries> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((name, labels, value)) = parse_line(line) else {
            continue;
        };
        let service = labels
            .iter()
            .find(|(k, _)| k == "service")
            .map(|(_, v)| v.as_str());
        let timestamp = match service.and_then(|s| stamp.get(s)) {
            Some(Some(t)) => *t,
            Some(None) => continue,
            None => now,
        };
        let mut all: Vec<Label> = labels
            .into_iter()
            .map(|(name, value)| Label { name, value })
            .collect();
        all.push(Label {
            name: "__name__".into(),
            value: name.to_string(),
        });
        for (k, v) in extra {
            all.push(Label {
                name: (*k).to_string(),
                value: (*v).to_string(),
            });
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        out.push(TimeSeries {
            labels: all,
            samples: vec![Sample { value, timestamp }],
        });
    }
    out
}

/// A sample line: its metric name, its labels, its value.
pub type Line<'a> = (&'a str, Vec<(String, String)>, f64);

/// `name{k="v",…} value` (labels optional): the name, the labels
/// unescaped, the value; `None` for anything else.
pub fn parse_line(line: &str) -> Option<Line<'_>> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let Some((name, rest)) = series.split_once('{') else {
        return Some((series, Vec::new(), value));
    };
    let mut labels = Vec::new();
    let mut chars = rest.chars();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        let key = key.trim_start_matches(',');
        if key == "}" || key.is_empty() {
            break;
        }
        if chars.next()? != '"' {
            return None;
        }
        let mut v = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    'n' => v.push('\n'),
                    c => v.push(c),
                },
                c => v.push(c),
            }
        }
        labels.push((key.to_string(), v));
    }
    Some((name, labels, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_our_exposition_parse() {
        let (name, labels, v) =
            parse_line(r#"reachability_x{service="a",target="b\"c\\d\ne"} 1.5"#).unwrap();
        assert_eq!(name, "reachability_x");
        let want = vec![
            ("service".to_string(), "a".to_string()),
            ("target".to_string(), "b\"c\\d\ne".to_string()),
        ];
        assert_eq!(labels, want);
        assert_eq!(v, 1.5);
        assert_eq!(
            parse_line("process_open_fds 12"),
            Some(("process_open_fds", vec![], 12.0))
        );
        let (_, _, inf) = parse_line(r#"x{a="1"} +Inf"#).unwrap();
        assert_eq!(inf, f64::INFINITY);
        assert!(parse_line(r#"x{a="1"} NaN"#).unwrap().2.is_nan());
        assert_eq!(parse_line("garbage"), None);
        assert_eq!(parse_line(r#"x{a=1} 2"#), None);
    }

    #[test]
    fn series_are_stamped_by_their_round_and_sorted() {
        let text = "# HELP x y\nx{service=\"a\",target=\"t\"} 1\nx{service=\"b\"} 2\nx{service=\"c\"} 3\nown 4\n";
        let stamp = HashMap::from([("a", Some(1_000)), ("b", None)]);
        let s = series(text, &[("job", "j"), ("instance", "i")], &stamp, 9_000);
        let names = |t: &TimeSeries| t.labels.iter().map(|l| l.name.clone()).collect::<Vec<_>>();
        // a: its round's time; b: sent before, left out; c: not in the map
        // (a scrape-driven service), now; own: now.
        assert_eq!(s.len(), 3);
        assert_eq!(
            names(&s[0]),
            ["__name__", "instance", "job", "service", "target"]
        );
        assert_eq!(
            s[0].samples,
            vec![Sample {
                value: 1.0,
                timestamp: 1_000
            }]
        );
        assert_eq!(
            s[1].samples,
            vec![Sample {
                value: 3.0,
                timestamp: 9_000
            }]
        );
        assert_eq!(s[2].labels[0].value, "own");
        assert_eq!(s[2].samples[0].timestamp, 9_000);
        // The body decodes back to the same request.
        let raw = snap::raw::Decoder::new().decompress_vec(&body(&s)).unwrap();
        assert_eq!(WriteRequest::decode(&raw[..]).unwrap().timeseries, s);
    }
}
