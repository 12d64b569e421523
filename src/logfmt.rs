//! Log output: logfmt (`ts=… level=info span=check service=… msg="…"
//! key=value`). The fields of the spans an event is in (a check's service,
//! kind and target) come before the event's own.
//!
//! Only the formatting lives here; what is logged, and at which level, is
//! decided where it happens. JSON lines are tracing-subscriber's.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats events as logfmt lines, and span fields as logfmt pairs (set it
/// as both the event and the field formatter).
#[derive(Debug, Default, Clone, Copy)]
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
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
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        let meta = event.metadata();
        write!(
            w,
            "ts={now} level={}",
            meta.level().as_str().to_ascii_lowercase()
        )?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                write!(w, " span={}", span.name())?;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>() {
                    write!(w, "{fields}")?;
                }
            }
        }
        let mut v = Fields {
            w: &mut w,
            res: Ok(()),
        };
        event.record(&mut v);
        v.res?;
        writeln!(w)
    }
}

impl<'w> FormatFields<'w> for Logfmt {
    fn format_fields<R: RecordFields>(&self, mut w: Writer<'w>, fields: R) -> fmt::Result {
        let mut v = Fields {
            w: &mut w,
            res: Ok(()),
        };
        fields.record(&mut v);
        v.res
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        // Each pair brings its own leading space.
        self.format_fields(current.as_writer(), fields)
    }
}

/// Writes each field as ` key=value`.
struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    res: fmt::Result,
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.res.is_ok() {
            self.res = write_pair(self.w, field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.res.is_ok() {
            self.res = write_pair(self.w, field.name(), &format!("{value:?}"));
        }
    }
}

fn write_pair(w: &mut Writer<'_>, key: &str, value: &str) -> fmt::Result {
    let key = if key == "message" { "msg" } else { key };
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '=' && c != '\\');
    if plain {
        write!(w, " {key}={value}")
    } else {
        write!(w, " {key}={value:?}")
    }
}
