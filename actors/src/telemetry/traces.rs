//! Traces (OpenTelemetry), exported with OTLP over HTTP (protobuf) when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (the collector's base URL, `/v1/traces` is appended) or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL) is set; off otherwise, and with
//! `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. The other standard variables
//! apply (`OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`,
//! `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_TRACES_SAMPLER`…). Spans are exported by a batch
//! processor on its own thread: the service never waits for the collector.
//!
//! One trace per dispatch command ([`DispatchTrace`]): a `dispatch` span from the NATS
//! receive to the ACK (or NAK, dead letter), child of the command's `traceparent` header
//! when it has one, with a `submit_sm` span per segment (written → submit_sm_resp) and a
//! `correlation.write` span per row (asked → committed). Every event the command causes
//! carries the dispatch span's `traceparent`, and so does its correlation row: the
//! `receipt` span of a delivery receipt, days later, is linked to it ([`receipt_span`]).
//! Without an exporter the spans are no-ops, but the command's trace still flows: its
//! `traceparent` is passed on and its trace id is in the log lines (`traceId`).

use std::collections::HashMap;
use std::time::SystemTime;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Link, SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, global};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use smpp_connector::config::BindKey;

const TRACER: &str = "smpp-connector";

/// Install the exporter when the environment asks for one; the provider is shut down
/// (remaining spans flushed) by [`shutdown`].
pub fn init(pod: &str) -> anyhow::Result<Option<SdkTracerProvider>> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
    let endpoint =
        var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"));
    let Some(endpoint) = endpoint.filter(|_| !disabled) else {
        return Ok(None);
    };
    let protocol =
        var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"));
    if let Some(protocol) = protocol.filter(|p| p != "http/protobuf") {
        anyhow::bail!(
            "OTEL_EXPORTER_OTLP_PROTOCOL {protocol} is not supported: use http/protobuf (OTLP over HTTP, port 4318)"
        );
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT {endpoint}: {e}"))?;
    let service = var("OTEL_SERVICE_NAME").unwrap_or_else(|| "smpp-connector".to_owned());
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .with_attributes([
            KeyValue::new("service.instance.id", pod.to_owned()),
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        ])
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    global::set_tracer_provider(provider.clone());
    tracing::info!(endpoint = %endpoint, "traces exported over OTLP/HTTP");
    Ok(Some(provider))
}

/// Flush and stop the exporter (at shutdown).
pub fn shutdown(provider: Option<SdkTracerProvider>) {
    if let Some(provider) = provider
        && let Err(err) = provider.shutdown()
    {
        tracing::warn!(error = %err, "traces not flushed at shutdown");
    }
}

/// The context a `traceparent` header carries (empty when it carries none).
fn extract(traceparent: Option<&str>) -> Context {
    let Some(traceparent) = traceparent else {
        return Context::new();
    };
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    global::get_text_map_propagator(|p| p.extract(&carrier))
}

/// The `traceparent` header of a context's span, if it is a valid one.
fn inject(cx: &Context) -> Option<String> {
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    carrier.remove("traceparent")
}

/// The trace of one delivery of a dispatch command.
#[derive(Clone)]
pub struct DispatchTrace {
    cx: Context,
}

impl std::fmt::Debug for DispatchTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatchTrace")
            .field("trace_id", &self.trace_id())
            .finish()
    }
}

impl DispatchTrace {
    /// Start the `dispatch` span of a command received from NATS, child of its
    /// `traceparent` header when it has one.
    pub fn start(
        traceparent: Option<&str>,
        key: &BindKey,
        subject: &str,
        stream_sequence: u64,
    ) -> Self {
        let parent = extract(traceparent);
        let tracer = global::tracer(TRACER);
        let span = tracer
            .span_builder("dispatch")
            .with_kind(SpanKind::Consumer)
            .with_attributes([
                KeyValue::new("messaging.system", "nats"),
                KeyValue::new("messaging.destination.name", subject.to_owned()),
                KeyValue::new("messaging.message.id", stream_sequence.to_string()),
                KeyValue::new("smpp.operator_id", key.operator_id.to_string()),
                KeyValue::new("smpp.direction", key.direction.as_str()),
                KeyValue::new("smpp.bind_id", i64::from(key.bind_id)),
            ])
            .start_with_context(&tracer, &parent);
        DispatchTrace {
            cx: parent.with_span(span),
        }
    }

    /// The trace id (32 hex digits), empty when the command has no trace.
    pub fn trace_id(&self) -> String {
        let span = self.cx.span();
        let context = span.span_context();
        if context.is_valid() {
            context.trace_id().to_string()
        } else {
            String::new()
        }
    }

    /// The `traceparent` the command's events carry (the dispatch span's).
    pub fn traceparent(&self) -> Option<String> {
        inject(&self.cx)
    }

    /// The message id is known once the command is parsed.
    pub fn set_message_id(&self, message_id: &str) {
        self.cx.span().set_attribute(KeyValue::new(
            "messaging.message.conversation_id",
            message_id.to_owned(),
        ));
    }

    /// A finished step of the dispatch (`submit_sm`, `correlation.write`) that started at
    /// `started` and ends now.
    pub fn step(&self, name: &'static str, started: SystemTime, attributes: Vec<KeyValue>) {
        let tracer = global::tracer(TRACER);
        let mut span = tracer
            .span_builder(name)
            .with_kind(SpanKind::Client)
            .with_start_time(started)
            .with_attributes(attributes)
            .start_with_context(&tracer, &self.cx);
        opentelemetry::trace::Span::end(&mut span);
    }

    /// The delivery is settled: `ack`, `nak`, `rejected` or `dead_letter`.
    pub fn end(&self, outcome: &'static str) {
        let span = self.cx.span();
        span.set_attribute(KeyValue::new("smpp.outcome", outcome));
        span.end();
    }
}

/// The `receipt` span of a delivery receipt read at `started`, linked to the dispatch
/// that sent its segment (its row's `traceparent`), if known. Returns the span's context:
/// end it with [`end_receipt`] once the event is published.
pub fn receipt_span(key: &BindKey, dispatch: Option<&str>, started: SystemTime) -> Context {
    let tracer = global::tracer(TRACER);
    let dispatch = extract(dispatch);
    let linked = dispatch.span().span_context().clone();
    let links = if linked.is_valid() {
        vec![Link::with_context(linked)]
    } else {
        Vec::new()
    };
    let span = tracer
        .span_builder("receipt")
        .with_kind(SpanKind::Consumer)
        .with_start_time(started)
        .with_links(links)
        .with_attributes([
            KeyValue::new("smpp.operator_id", key.operator_id.to_string()),
            KeyValue::new("smpp.direction", key.direction.as_str()),
            KeyValue::new("smpp.bind_id", i64::from(key.bind_id)),
        ])
        .start_with_context(&tracer, &Context::new());
    Context::new().with_span(span)
}

/// The `traceparent` of a receipt span (for the DLR event).
pub fn traceparent_of(cx: &Context) -> Option<String> {
    inject(cx)
}

/// End a receipt span with its correlation result.
pub fn end_receipt(cx: &Context, correlated: bool) {
    let span = cx.span();
    span.set_attribute(KeyValue::new("smpp.correlated", correlated));
    span.end();
}
