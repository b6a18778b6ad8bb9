//! The Lambda's log line: the same JSON object tracing-subscriber's JSON format writes
//! (`timestamp`, `level`, `fields`, and `span` with the current span's fields and `name`),
//! written straight into the line's buffer.
//!
//! tracing-subscriber's own JSON format builds each line through serde: every `%` or `?`
//! field is first formatted into a fresh `String`, and the current span's fields, kept as a
//! JSON text, are parsed back into a map for every line. On the warm path, where the whole
//! decision costs about 20 µs and 15 of them are the signature check, that was about 0.8 µs
//! per line. Here values are escaped as they are formatted and the span's JSON text is
//! spliced in as it is. `tests` compares both, line for line, over awkward values.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter; use with `fmt::format::JsonFields` as the field formatter, which
/// keeps each span's fields as a JSON object text.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writer.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut writer)?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(event.metadata().level().as_str())?;
        writer.write_str("\",\"fields\":{")?;
        let mut fields = Fields {
            out: &mut writer,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('}')?;
        if let Some(span) = ctx.lookup_current() {
            writer.write_str(",\"span\":")?;
            let ext = span.extensions();
            let stored = ext
                .get::<FormattedFields<N>>()
                .map(|f| f.fields.as_str())
                .unwrap_or("");
            // `{"a":1}` + name -> `{"a":1,"name":"x"}`; `{}` or nothing -> `{"name":"x"}`.
            match stored.trim().strip_suffix('}') {
                Some(open) if open.trim() != "{" => {
                    writer.write_str(open)?;
                    writer.write_char(',')?;
                }
                _ => writer.write_char('{')?,
            }
            writer.write_str("\"name\":")?;
            string(&mut writer, span.name())?;
            writer.write_char('}')?;
        }
        writer.write_str("}\n")
    }
}

/// Writes each field as `"name":value`, comma-separated.
struct Fields<'a, 'w> {
    out: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn key(&mut self, field: &Field) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.out.write_char(',')?;
        }
        string(self.out, field.name())?;
        self.out.write_char(':')
    }

    fn put(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| value(self.out));
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, |out| string(out, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, |out| write!(out, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, |out| {
            out.write_str(if value { "true" } else { "false" })
        });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // As serde_json: a number when finite, else null.
        self.put(field, |out| {
            if value.is_finite() {
                write!(out, "{value:?}")
            } else {
                out.write_str("null")
            }
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, |out| {
            out.write_char('"')?;
            write!(Escaped(out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

/// `value` as a JSON string.
fn string(out: &mut Writer<'_>, value: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped(out).write_str(value)?;
    out.write_char('"')
}

/// A writer that escapes what goes through it as the inside of a JSON string, as serde_json
/// does: `"` and `\`, the short forms `\b \f \n \r \t`, other control characters as `\u00XX`;
/// everything else as it is.
struct Escaped<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Escaped<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape: &str = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0x00..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&s[start..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            start = i + 1;
        }
        self.0.write_str(&s[start..])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use proptest::prelude::*;
    use serde_json::Value;
    use tracing_subscriber::fmt::format::JsonFields;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// A writer the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        /// Every line, parsed, without its timestamp (checked to be RFC 3339).
        fn lines(&self) -> Vec<Value> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines()
                .map(|l| {
                    let mut v: Value =
                        serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
                    let ts = v.as_object_mut().unwrap().remove("timestamp").unwrap();
                    humantime::parse_rfc3339(ts.as_str().unwrap()).unwrap();
                    v
                })
                .collect()
        }
    }

    /// Runs `emit` under ours and under tracing-subscriber's JSON format (as the Lambda had
    /// it configured), returning both captures.
    fn both(emit: impl Fn()) -> (Captured, Captured) {
        let ours = Captured::default();
        let theirs = Captured::default();
        let (o, t) = (ours.clone(), theirs.clone());
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonLine)
                    .fmt_fields(JsonFields::new())
                    .with_writer(move || o.clone()),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_target(false)
                    .with_writer(move || t.clone()),
            );
        tracing::subscriber::with_default(subscriber, emit);
        (ours, theirs)
    }

    struct Shown(&'static str);
    impl fmt::Display for Shown {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    #[test]
    fn lines_are_what_the_json_format_writes() {
        let (ours, theirs) = both(|| {
            tracing::info!(
                principal = "user-1",
                decision = "Allow",
                grants = 3u64,
                latency_us = 17u64,
                "decision"
            );
            tracing::warn!(reason = %Shown("bad \"quote\" \\ and\nnewline\u{1}\u{7f} é ✓"), n = -4i64, ok = true, "decision");
            tracing::error!(error = ?Some("x"), ratio = 0.5f64, nan = f64::NAN, "a fault");
            let span = tracing::info_span!("invocation", request_id = "2f56-8f9d");
            let _in = span.enter();
            tracing::info!(decision = "Unauthorized", "decision");
            let inner = tracing::info_span!("empty");
            let _also = inner.enter();
            tracing::info!("in a span without fields");
        });
        let (ours, theirs) = (ours.lines(), theirs.lines());
        assert_eq!(ours.len(), 5);
        assert_eq!(ours, theirs);
        assert_eq!(ours[3]["span"]["request_id"], "2f56-8f9d");
        assert_eq!(ours[3]["span"]["name"], "invocation");
    }

    proptest! {
        #[test]
        fn any_text_survives_as_a_str_or_a_display_value(s in any::<String>()) {
            let (ours, theirs) = both(|| {
                tracing::info!(value = s.as_str(), shown = %s, "x");
            });
            let (ours, theirs) = (ours.lines(), theirs.lines());
            prop_assert_eq!(&ours, &theirs);
            prop_assert_eq!(ours[0]["fields"]["value"].as_str(), Some(s.as_str()));
            prop_assert_eq!(ours[0]["fields"]["shown"].as_str(), Some(s.as_str()));
        }
    }
}
