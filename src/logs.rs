//! Log output, in two formats that say the same things:
//!
//! - logfmt: `ts=… level=info span=check service=… msg="…" key=value`;
//! - JSON: one object per line, `{"ts":…,"level":…,"span":"check",
//!   "service":…,"msg":…,"key":value}`.
//!
//! In both, the fields of the spans an event is in (a check's service, kind
//! and target; for DNS its resolver and type) come before the event's own,
//! and every key appears once (an event's field replaces a span's of the
//! same name). Numbers and booleans are JSON numbers and booleans; a field
//! recorded as `None` is absent. Neither format writes the Rust module an
//! event comes from: `target` is always the probe's.
//!
//! Only the formatting lives here; what is logged, and at which level, is
//! decided where it happens.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats events as log lines (with [`SpanFields`] as the field
/// formatter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// `key=value` pairs.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// Keeps span fields, for either format, until an event in the span is
/// written.
#[derive(Debug, Default, Clone, Copy)]
pub struct SpanFields;

/// One field's value, as recorded.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Int(i128),
    Float(f64),
    Bool(bool),
}

/// An event's fields in order, each key once: a later field of the same
/// name replaces the earlier one where it stood.
#[derive(Debug, Default)]
struct Pairs(Vec<(String, Value)>);

impl Pairs {
    fn set(&mut self, key: &str, value: Value) {
        let key = if key == "message" { "msg" } else { key };
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key.to_string(), value)),
        }
    }

    /// The event's timestamp, level and spans (names joined by `:`, and
    /// their fields), then its own fields.
    fn of_event<S, N>(ctx: &FmtContext<'_, S, N>, event: &Event<'_>) -> Pairs
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        let mut pairs = Pairs::default();
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        pairs.set("ts", Value::Str(now.to_string()));
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        pairs.set("level", Value::Str(level));
        if let Some(scope) = ctx.event_scope() {
            let mut names = String::new();
            let mut fields = Vec::new();
            for span in scope.from_root() {
                if !names.is_empty() {
                    names.push(':');
                }
                names.push_str(span.name());
                if let Some(f) = span.extensions().get::<FormattedFields<N>>() {
                    fields.extend(decode_span_fields(f));
                }
            }
            pairs.set("span", Value::Str(names));
            for (k, v) in fields {
                pairs.set(&k, v);
            }
        }
        event.record(&mut pairs);
        pairs
    }
}

impl Visit for Pairs {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name(), Value::Str(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), Value::Int(value.into()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name(), Value::Int(value.into()));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.set(field.name(), Value::Int(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name(), Value::Float(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), Value::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.set(field.name(), Value::Str(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field.name(), Value::Str(format!("{value:?}")));
    }
}

/// Span fields are kept, between a span's creation and its events, as
/// lines of `key TAB tag value`: keys are Rust identifiers, and a value's
/// newlines and tabs are escaped.
fn encode_span_fields(w: &mut Writer<'_>, pairs: &Pairs) -> fmt::Result {
    for (k, v) in &pairs.0 {
        let (tag, text) = match v {
            Value::Str(s) => (
                's',
                s.replace('\\', "\\\\")
                    .replace('\n', "\\n")
                    .replace('\t', "\\t"),
            ),
            Value::Int(i) => ('i', i.to_string()),
            Value::Float(f) => ('f', f.to_string()),
            Value::Bool(b) => ('b', b.to_string()),
        };
        writeln!(w, "{k}\t{tag}{text}")?;
    }
    Ok(())
}

fn decode_span_fields(text: &str) -> Vec<(String, Value)> {
    text.lines()
        .filter_map(|line| {
            let (k, v) = line.split_once('\t')?;
            let mut chars = v.chars();
            let tag = chars.next()?;
            let rest = chars.as_str();
            let value = match tag {
                'i' => Value::Int(rest.parse().ok()?),
                'f' => Value::Float(rest.parse().ok()?),
                'b' => Value::Bool(rest == "true"),
                _ => Value::Str(unescape(rest)),
            };
            Some((k.to_string(), value))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Records span `fields` in their kept encoding.
fn add_span_fields<R: RecordFields>(mut w: Writer<'_>, fields: R) -> fmt::Result {
    let mut pairs = Pairs::default();
    fields.record(&mut pairs);
    encode_span_fields(&mut w, &pairs)
}

impl<'w> FormatFields<'w> for SpanFields {
    fn format_fields<R: RecordFields>(&self, w: Writer<'w>, fields: R) -> fmt::Result {
        add_span_fields(w, fields)
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        // Each line brings its own end: no separator (the default adds one).
        add_span_fields(current.as_writer(), fields)
    }
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let pairs = Pairs::of_event(ctx, event);
        w.write_str(&match self {
            Lines::Logfmt => logfmt_line(&pairs),
            Lines::Json => json_line(&pairs),
        })
    }
}

/// `key=value` pairs; a value is quoted when it has to be.
fn logfmt_line(pairs: &Pairs) -> String {
    let mut line = String::new();
    for (k, v) in &pairs.0 {
        if !line.is_empty() {
            line.push(' ');
        }
        let text = match v {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
        };
        let plain = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '"' && c != '=' && c != '\\');
        // Writing to a String cannot fail.
        let _ = if plain {
            write!(line, "{k}={text}")
        } else {
            write!(line, "{k}={text:?}")
        };
    }
    line.push('\n');
    line
}

/// One JSON object; a float that is not finite is `null`.
fn json_line(pairs: &Pairs) -> String {
    let mut map = String::from("{");
    for (i, (k, v)) in pairs.0.iter().enumerate() {
        if i > 0 {
            map.push(',');
        }
        map.push_str(&serde_json::Value::from(k.as_str()).to_string());
        map.push(':');
        let value = match v {
            Value::Str(s) => serde_json::Value::from(s.as_str()),
            Value::Int(i) => match i64::try_from(*i) {
                Ok(n) => serde_json::Value::from(n),
                Err(_) => serde_json::Value::from(i.to_string()),
            },
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::Bool(b) => serde_json::Value::from(*b),
        };
        map.push_str(&value.to_string());
    }
    map.push_str("}\n");
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, Value)]) -> Pairs {
        let mut p = Pairs::default();
        for (k, v) in list {
            p.set(k, v.clone());
        }
        p
    }

    #[test]
    fn a_later_field_replaces_an_earlier_one_in_place() {
        let p = pairs(&[
            ("target", Value::Str("a:1".into())),
            ("reason", Value::Str("x".into())),
            ("target", Value::Str("b:2".into())),
            ("message", Value::Str("hi".into())),
        ]);
        assert_eq!(
            json_line(&p),
            "{\"target\":\"b:2\",\"reason\":\"x\",\"msg\":\"hi\"}\n"
        );
        assert_eq!(logfmt_line(&p), "target=b:2 reason=x msg=hi\n");
    }

    #[test]
    fn values_keep_their_type() {
        let p = pairs(&[
            ("rtt_seconds", Value::Float(0.25)),
            ("bytes", Value::Int(65536)),
            ("cut", Value::Bool(true)),
            ("nan", Value::Float(f64::NAN)),
            ("text", Value::Str("a \"b\"\n".into())),
        ]);
        let v: serde_json::Value = serde_json::from_str(&json_line(&p)).unwrap();
        assert_eq!(v["rtt_seconds"], 0.25);
        assert_eq!(v["bytes"], 65536);
        assert_eq!(v["cut"], true);
        assert!(v["nan"].is_null());
        assert_eq!(v["text"], "a \"b\"\n");
        assert_eq!(
            logfmt_line(&p),
            "rtt_seconds=0.25 bytes=65536 cut=true nan=NaN text=\"a \\\"b\\\"\\n\"\n"
        );
    }

    #[test]
    fn span_fields_survive_their_encoding() {
        let p = pairs(&[
            ("service", Value::Str("a\tb\\n\nc".into())),
            ("n", Value::Int(-3)),
            ("f", Value::Float(1.5)),
            ("ok", Value::Bool(false)),
        ]);
        let mut text = String::new();
        encode_span_fields(&mut Writer::new(&mut text), &p).unwrap();
        assert_eq!(decode_span_fields(&text), p.0);
    }
}
