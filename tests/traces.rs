//! Traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at an OTLP/HTTP receiver in this
//! test, a command that carries a `traceparent` gives one trace: a `dispatch` span per
//! delivery under the caller's span, a `submit_sm` span per segment and a
//! `correlation.write` span per row under it; the delivery receipt's `receipt` span links
//! to the dispatch, and the DLR event carries the receipt span's `traceparent`. The log
//! lines about the message carry its `traceId`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::support::{Stage, eventually, forbid_in_logs};

const T: Duration = Duration::from_secs(30);

/// An OTLP/HTTP receiver: every span posted to `/v1/traces`.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let spans = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (seen, paths) = (spans.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, paths) = (seen.clone(), paths.clone());
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut read = BufReader::new(read);
                    loop {
                        let mut request_line = String::new();
                        if read.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut length = 0usize;
                        loop {
                            let mut header = String::new();
                            if read.read_line(&mut header).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let header = header.trim_end();
                            if header.is_empty() {
                                break;
                            }
                            if let Some((name, value)) = header.split_once(':')
                                && name.eq_ignore_ascii_case("content-length")
                            {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0; length];
                        if read.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        paths.lock().unwrap().push(request_line.trim().to_owned());
                        if let Ok(request) = ExportTraceServiceRequest::decode(body.as_slice()) {
                            let mut seen = seen.lock().unwrap();
                            for resource in request.resource_spans {
                                for scope in resource.scope_spans {
                                    seen.extend(scope.spans);
                                }
                            }
                        }
                        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                        if write.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Receiver {
            url,
            spans,
            requests,
        }
    }

    fn spans(&self, trace_id: &[u8]) -> Vec<Span> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    }

    fn all(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.clone())
        .map(|v| match v {
            Value::StringValue(s) => s,
            Value::IntValue(i) => i.to_string(),
            Value::BoolValue(b) => b.to_string(),
            other => format!("{other:?}"),
        })
}

#[tokio::test]
async fn one_trace_per_dispatch_from_nats_to_ack_and_the_receipt_links_to_it() {
    let test = "traces";
    let receiver = Receiver::start().await;
    // The first submit gets a temporary error: the message is redelivered (a second
    // `dispatch` span in the same trace) and logged with its trace id.
    let s = Stage::builder(test)
        .sim(json!({"receipts": true, "submit_status_next": ["ESME_RSYSERR"]}))
        .env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_SERVICE_NAME", "smpp-connector-test"),
        ])
        .start()
        .await;

    // The caller's trace: its trace id and the span that sent the command.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{caller_span}-01");
    let mut dlr_sub = s
        .nats
        .client
        .subscribe("sms.dlr.inbound")
        .await
        .expect("subscribe");
    s.nats.client.flush().await.unwrap();
    let message_id = uuid::Uuid::new_v4().to_string();
    let text = "Traced message, long enough to need two segments: ".repeat(4);
    forbid_in_logs(&["93703000001", &text]);
    let command = json!({
        "version": "1.0",
        "messageId": message_id,
        "operatorId": s.op,
        "to": "+93703000001",
        "text": text,
    });
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("traceparent", traceparent.as_str());
    s.nats
        .js
        .publish_with_headers(
            format!("smpp.operator.{}", s.op),
            headers,
            serde_json::to_vec(&command).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    let trace = hex::decode(trace_id).unwrap();
    // Two deliveries: the first NAKed (ESME_RSYSERR), the second ACKed with both rows.
    let spans = eventually(T, "the trace of the dispatch", || {
        let spans = receiver.spans(&trace);
        async move {
            let named = |name: &str| spans.iter().filter(|s| s.name == name).count();
            let acked = spans.iter().any(|s| {
                s.name == "dispatch" && attribute(s, "smpp.outcome").as_deref() == Some("ack")
            });
            (acked && named("correlation.write") >= 2 && named("submit_sm") >= 3).then_some(spans)
        }
    })
    .await;
    let dispatches: Vec<&Span> = spans.iter().filter(|s| s.name == "dispatch").collect();
    assert!(
        dispatches.len() >= 2,
        "a dispatch span per delivery: {}",
        dispatches.len()
    );
    let outcomes: Vec<String> = dispatches
        .iter()
        .filter_map(|s| attribute(s, "smpp.outcome"))
        .collect();
    assert!(outcomes.contains(&"nak".to_owned()), "{outcomes:?}");
    assert!(outcomes.contains(&"ack".to_owned()), "{outcomes:?}");
    for dispatch in &dispatches {
        assert_eq!(
            hex::encode(&dispatch.parent_span_id),
            caller_span,
            "the dispatch is a child of the caller's span"
        );
        assert_eq!(
            attribute(dispatch, "messaging.message.conversation_id").as_deref(),
            Some(message_id.as_str())
        );
    }
    let dispatch_ids: Vec<&Vec<u8>> = dispatches.iter().map(|s| &s.span_id).collect();
    for step in spans.iter().filter(|s| s.name != "dispatch") {
        assert!(
            dispatch_ids.contains(&&step.parent_span_id),
            "{} is a child of a dispatch span",
            step.name
        );
        assert!(step.end_time_unix_nano >= step.start_time_unix_nano);
    }
    let acked = dispatches
        .iter()
        .find(|s| attribute(s, "smpp.outcome").as_deref() == Some("ack"))
        .unwrap();
    for step in spans.iter().filter(|s| s.parent_span_id == acked.span_id) {
        assert!(
            step.start_time_unix_nano >= acked.start_time_unix_nano
                && step.end_time_unix_nano <= acked.end_time_unix_nano,
            "{} lies within its dispatch",
            step.name
        );
    }

    // The receipts: the DLR events carry their `receipt` span's traceparent.
    let mut event_traceparents = Vec::new();
    while event_traceparents.len() < 2 {
        let message = tokio::time::timeout(T, dlr_sub.next())
            .await
            .expect("DLR event")
            .expect("subscription");
        let event: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        if event["messageId"] == message_id.as_str() {
            let header = message
                .headers
                .as_ref()
                .and_then(|h| h.get("traceparent"))
                .map(|v| v.as_str().to_owned())
                .expect("the DLR event carries a traceparent");
            event_traceparents.push(header);
        }
    }
    // Each receipt links to the dispatch (delivery) that recorded its segment's row.
    let dispatch_ids: Vec<Vec<u8>> = dispatches.iter().map(|s| s.span_id.clone()).collect();
    let receipts = eventually(T, "receipt spans", || {
        let all = receiver.all();
        let (trace, dispatch_ids) = (&trace, &dispatch_ids);
        async move {
            let linked: Vec<Span> = all
                .into_iter()
                .filter(|s| s.name == "receipt")
                .filter(|s| {
                    s.links
                        .iter()
                        .any(|l| l.trace_id == *trace && dispatch_ids.contains(&l.span_id))
                })
                .collect();
            (linked.len() >= 2).then_some(linked)
        }
    })
    .await;
    for header in &event_traceparents {
        let parts: Vec<&str> = header.split('-').collect();
        assert!(
            receipts.iter().any(
                |r| hex::encode(&r.trace_id) == parts[1] && hex::encode(&r.span_id) == parts[2]
            ),
            "the DLR event's traceparent {header} is a receipt span's"
        );
    }
    assert!(
        receiver
            .requests
            .lock()
            .unwrap()
            .iter()
            .all(|r| r.starts_with("POST /v1/traces")),
        "OTLP/HTTP on /v1/traces"
    );

    // The log line of the refused submit carries the trace id.
    let refused = s.service.logs_with("submit_sm not accepted");
    assert!(
        refused.iter().any(|l| l["traceId"] == trace_id),
        "traceId in the log: {refused:?}"
    );
    s.service.assert_no_secrets(&["93703000001"]);
}
