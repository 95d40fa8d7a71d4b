//! The JSON log line: one flat object per event — `timestamp`, `level`, `message`, the
//! event's fields, the fields of the spans it happens in (a bind's `operatorId`,
//! `direction`, `bindId` from its span, so no line about a bind has to repeat them), and
//! `target`. An event's own field wins over a span's of the same name.
//!
//! tracing-subscriber's JSON formatter nests span fields under `span`; log readers,
//! alerts on log lines and the tests look fields up at the top level.

use std::fmt;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter of `LOG_FORMAT=json` (span fields recorded by [`JsonFields`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct FlatJson;

/// An event's fields, in the order they were recorded.
#[derive(Default)]
struct Fields(Vec<(String, Value)>);

impl Fields {
    fn put(&mut self, name: &str, value: Value) {
        // A field recorded twice (rare) keeps its last value.
        self.0.retain(|(written, _)| written != name);
        self.0.push((name.to_owned(), value));
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field.name(), Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field.name(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field.name(), Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field.name(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field.name(), Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field.name(), Value::from(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field.name(), Value::from(format!("{value:?}")));
    }
}

impl<S> FormatEvent<S, JsonFields> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let metadata = event.metadata();
        // In order: timestamp, level, message, the event's fields, the spans' fields,
        // target; a name already written is not written again.
        let mut line: Vec<(String, Value)> = Vec::with_capacity(fields.0.len() + 8);
        line.push((
            "timestamp".into(),
            Value::from(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        ));
        line.push(("level".into(), Value::from(metadata.level().as_str())));
        if let Some(at) = fields.0.iter().position(|(name, _)| name == "message") {
            line.push(fields.0.remove(at));
        }
        line.extend(fields.0);
        // The spans it happens in, innermost first.
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                let extensions = span.extensions();
                let Some(recorded) = extensions.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                let Ok(Value::Object(span_fields)) = serde_json::from_str::<Value>(recorded) else {
                    continue;
                };
                for (name, value) in span_fields {
                    if !line.iter().any(|(written, _)| *written == name) {
                        line.push((name, value));
                    }
                }
            }
        }
        line.push(("target".into(), Value::from(metadata.target())));
        let mut text = String::with_capacity(256);
        text.push('{');
        for (n, (name, value)) in line.iter().enumerate() {
            if n > 0 {
                text.push(',');
            }
            text.push_str(&serde_json::to_string(name).map_err(|_| fmt::Error)?);
            text.push(':');
            text.push_str(&serde_json::to_string(value).map_err(|_| fmt::Error)?);
        }
        text.push('}');
        writeln!(writer, "{text}")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn span_fields_are_written_at_the_top_level_and_the_event_s_own_win() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(JsonFields::new())
                .event_format(FlatJson)
                .with_writer(move || writer.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let bind = tracing::info_span!("bind", operatorId = "awcc", bindId = 3u64);
            let _entered = bind.enter();
            tracing::info!(bindId = 4u64, reason = "x", "bind state changed");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["message"], "bind state changed");
        assert_eq!(line["operatorId"], "awcc");
        assert_eq!(line["bindId"], 4, "the event's own field wins");
        assert_eq!(line["reason"], "x");
        assert_eq!(line["level"], "INFO");
        assert!(line.get("span").is_none());
        assert!(text.starts_with("{\"timestamp\":"), "{text}");
    }
}
