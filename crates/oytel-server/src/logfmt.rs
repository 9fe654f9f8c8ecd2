//! The JSON log format (`OYTEL_LOG_FORMAT=json`): one object per line,
//!
//! ```json
//! {"timestamp":"2026-11-26T23:11:56.123456Z","level":"INFO","fields":{"message":"request","status":200,"elapsed_ms":1.9},"target":"oytel_server::context","span":{"request_id":"req_…","method":"GET","route":"/api/v1/plans","partner_id":"ptn_…","name":"request"}}
//! ```
//!
//! the shape of `tracing-subscriber`'s JSON format, written straight into the line. That
//! format keeps a span's fields as JSON text, then parses the text back for every line and
//! on every field recorded later; with a line per request, that was a tenth of the
//! allocations of serving a request. Here a span's fields are kept as the text of their
//! members (`"k":v,"k2":v2`), which a line copies and a later field extends.

use std::fmt::{self, Write as _};

use chrono::{Datelike as _, Timelike as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats events as JSON lines (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

/// Formats span fields as the members of a JSON object, for [`JsonLines`].
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonSpanFields;

impl<S> FormatEvent<S, JsonSpanFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonSpanFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        // The timestamp written field by field: `format("%Y-…")` parses its pattern again for
        // every line.
        let now = chrono::Utc::now();
        write!(
            writer,
            "{{\"timestamp\":\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z\",\"level\":\"{}\",\"fields\":{{",
            now.year(),
            now.month(),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            // A leap second's nanoseconds run past 10^9: keep six digits.
            (now.nanosecond() / 1000).min(999_999),
            meta.level()
        )?;
        let mut members = Members::new(&mut writer, true);
        event.record(&mut members);
        members.result?;
        writer.write_str("},\"target\":")?;
        write_string(&mut writer, meta.target())?;
        // The fields of every span the event is in, outermost first, so that a line in an
        // ES2+ call's span still names its request; the name is the innermost span's.
        if let Some(scope) = ctx.event_scope() {
            writer.write_str(",\"span\":{")?;
            let mut name = "";
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<FormattedFields<JsonSpanFields>>() {
                    if !fields.fields.is_empty() {
                        writer.write_str(&fields.fields)?;
                        writer.write_char(',')?;
                    }
                }
                name = span.name();
            }
            writer.write_str("\"name\":")?;
            write_string(&mut writer, name)?;
            writer.write_char('}')?;
        }
        writer.write_str("}\n")
    }
}

impl<'writer> FormatFields<'writer> for JsonSpanFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut members = Members::new(&mut writer, true);
        fields.record(&mut members);
        members.result
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let first = current.fields.is_empty();
        let mut writer = current.as_writer();
        let mut members = Members::new(&mut writer, first);
        fields.record(&mut members);
        members.result
    }
}

/// Writes fields as JSON object members, `"name":value`, separated by commas.
struct Members<'a, W> {
    writer: &'a mut W,
    first: bool,
    result: fmt::Result,
}

impl<'a, W: fmt::Write> Members<'a, W> {
    fn new(writer: &'a mut W, first: bool) -> Self {
        Members {
            writer,
            first,
            result: Ok(()),
        }
    }

    fn member(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        // `otel.*` fields name spans for the trace exporter (see `crate::traces`), not the log.
        if self.result.is_err() || field.name().starts_with("otel.") {
            return;
        }
        self.result = (|| {
            if !std::mem::take(&mut self.first) {
                self.writer.write_char(',')?;
            }
            write_string(self.writer, field.name())?;
            self.writer.write_char(':')?;
            value(self.writer)
        })();
    }
}

impl<W: fmt::Write> Visit for Members<'_, W> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.member(field, |w| write!(w, "{value}"));
        } else {
            self.member(field, |w| w.write_str("null"));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |w| write_string(w, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// Writes `value` as a JSON string.
fn write_string(w: &mut impl fmt::Write, value: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(w).write_str(value)?;
    w.write_char('"')
}

/// Escapes what is written through it for the inside of a JSON string.
struct Escaped<'a, W>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, c) in s.char_indices() {
            let escape = match c {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                c if u32::from(c) < 0x20 => "",
                _ => continue,
            };
            self.0.write_str(&s[plain..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{:04x}", u32::from(c))?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + c.len_utf8();
        }
        self.0.write_str(&s[plain..])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    fn lines(f: impl FnOnce()) -> Vec<serde_json::Value> {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(buffer.clone())
            .fmt_fields(JsonSpanFields)
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buffer.0.lock().map(|b| b.clone()).unwrap_or_default())
            .unwrap_or_default();
        text.lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            })
            .collect()
    }

    #[test]
    fn lines_are_json_objects_with_the_event_fields_and_the_request_span() {
        let awkward = "quote \" backslash \\ newline \n tab \t bell \u{7} é ✓";
        let got = lines(|| {
            let span = tracing::info_span!(
                "request",
                request_id = %"req_1",
                route = "/api/v1/plans",
                partner_id = tracing::field::Empty
            );
            let _entered = span.enter();
            span.record("partner_id", "ptn_1");
            tracing::warn!(status = 503_u16, elapsed_ms = 1.5, ok = false, detail = ?awkward, text = awkward, "request {}", "failed");
            tracing::info!(ratio = f64::NAN, "not finite");
        });
        assert_eq!(got.len(), 2);
        let line = &got[0];
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["target"], module_path!());
        assert_eq!(line["fields"]["message"], "request failed");
        assert_eq!(line["fields"]["status"], 503);
        assert_eq!(line["fields"]["elapsed_ms"], 1.5);
        assert_eq!(line["fields"]["ok"], false);
        assert_eq!(line["fields"]["text"], awkward);
        assert_eq!(line["fields"]["detail"], format!("{awkward:?}"));
        assert_eq!(
            line["span"],
            serde_json::json!({"request_id": "req_1", "route": "/api/v1/plans", "partner_id": "ptn_1", "name": "request"})
        );
        let timestamp = line["timestamp"].as_str().unwrap_or_default();
        assert!(
            chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
            "{timestamp}"
        );
        assert_eq!(got[1]["fields"]["ratio"], serde_json::Value::Null);
    }

    #[test]
    fn a_line_outside_any_span_has_no_span() {
        let got = lines(|| tracing::info!(listen = "127.0.0.1:1", "Oytel API ready"));
        assert_eq!(got[0]["fields"]["message"], "Oytel API ready");
        assert_eq!(got[0]["fields"]["listen"], "127.0.0.1:1");
        assert!(got[0].get("span").is_none());
    }

    #[test]
    fn a_span_with_no_fields_is_named() {
        let got = lines(|| {
            let span = tracing::info_span!("worker");
            let _entered = span.enter();
            tracing::info!("tick");
        });
        assert_eq!(got[0]["span"], serde_json::json!({"name": "worker"}));
    }

    #[test]
    fn a_line_in_a_nested_span_names_its_request_and_leaves_the_exporters_fields_out() {
        let got = lines(|| {
            let request = tracing::info_span!(
                "request",
                request_id = %"req_1",
                trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
                otel.name = "POST /api/v1/esim/provision"
            );
            let _in_request = request.enter();
            let call =
                tracing::info_span!("es2plus", function = "downloadOrder", otel.kind = "client");
            let _in_call = call.enter();
            tracing::warn!("downloadOrder succeeded with a warning");
        });
        assert_eq!(
            got[0]["span"],
            serde_json::json!({
                "request_id": "req_1",
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                "function": "downloadOrder",
                "name": "es2plus"
            })
        );
    }
}
