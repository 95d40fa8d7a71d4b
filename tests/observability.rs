//! Observability: after a scripted run (submits with receipts, a long message, a dead
//! letter, MO single and concatenated, admin actions) every metric the service declares is
//! in `/metrics` with its labels, and every metric the chart's alerts and dashboard name is
//! one the service really exports.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::json;

use crate::support::{Stage, correlation_rows, eventually, root};

const T: Duration = Duration::from_secs(30);

/// `(constant, metric name)` of every metric declared in `actors/src/telemetry/metric.rs`.
fn declared_metrics() -> Vec<(String, String)> {
    let source =
        std::fs::read_to_string(root().join("actors/src/telemetry/metric.rs")).expect("metric.rs");
    source
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("pub const ")?;
            let (constant, value) = rest.split_once(": &str = \"")?;
            Some((constant.to_owned(), value.strip_suffix("\";")?.to_owned()))
        })
        .collect()
}

/// The labels each metric carries (beyond `le` of histograms), by constant.
fn expected_labels(constant: &str) -> &'static [&'static str] {
    const BIND: &[&str] = &["mno", "direction", "bindId"];
    match constant {
        "SESSIONS" => &["mno", "direction", "state"],
        "BIND_UP"
        | "STATE_CHANGES"
        | "SUBMITS"
        | "RECONNECT_ATTEMPTS"
        | "ENQUIRE_LINK_TIMEOUTS"
        | "WINDOW_INFLIGHT"
        | "WINDOW_DYNAMIC"
        | "SEQ_SKIPS"
        | "MALFORMED_PDUS"
        | "UNEXPECTED_PDUS"
        | "SUBMIT_TIMEOUTS"
        | "POSSIBLE_DUPLICATES"
        | "DRAIN_SECONDS"
        | "BIND_INTAKE_PAUSED"
        | "EGRESS_BYTES"
        | "INGRESS_BYTES"
        | "BIND_HALF_CLOSED"
        | "INBOUND_HELD"
        | "BIND_CRASHES" => BIND,
        "PROTOCOL_VIOLATIONS" => &["mno", "direction", "bindId", "kind"],
        "RESPONSE_STATUS" => &["mno", "direction", "bindId", "esme_status"],
        "BIND_STATE" => &["mno", "direction", "bindId", "state"],
        "BIND_OWNER" => &["mno", "direction", "bindId", "pod"],
        "DISPATCH_OUTCOMES" => &["mno", "outcome"],
        "DEAD_LETTERS" | "REDELIVERY_LOOKUPS" => &["reason"],
        "DLR_EVENTS" => &["status", "correlated"],
        "RECEIPT_CORRELATION" | "CONCAT_PARTS" => &["mno", "result"],
        "BACKEND_ERRORS" => &["backend"],
        "LONG_MESSAGE_SEGMENTS" => &["strategy"],
        "ENCODING" => &["encoding", "detection"],
        "BIND_OWNER_CHANGES" | "BIND_ORPHANS" | "BIND_DOUBLE_CLAIMS" => &["mno", "direction"],
        "FAILOVERS" => &["mno", "direction", "event"],
        "CONCAT_COMPLETE"
        | "CONCAT_PARTIAL"
        | "CONCAT_LOST"
        | "TPS_FAIL_OPEN"
        | "TPS_FAIL_OPEN_TOTAL"
        | "TPS_THROTTLED"
        | "TPS_LIMIT"
        | "SUBMIT_TO_RECEIPT" => &["mno"],
        "CONCAT_BUFFER" => &["mno", "bindId"],
        "BIND_DEGRADED" => &["mno", "cause"],
        "LANE_MESSAGES" => &["mno", "lane", "outcome"],
        "LANE_PENDING" => &["mno", "direction", "lane"],
        "ADMIN_ACTIONS" => &["action", "result"],
        "ACTOR_RESTARTS" => &["actor", "bind", "reason"],
        "ACTOR_MAILBOX_WAIT" | "ACTOR_UPTIME" => &["actor", "bind"],
        "ACTOR_HANDLE_LATENCY" => &["actor"],
        _ => &[],
    }
}

/// Series of a `/metrics` text: name → label sets (label name → value).
fn series(text: &str) -> BTreeMap<String, Vec<BTreeMap<String, String>>> {
    let mut out: BTreeMap<String, Vec<BTreeMap<String, String>>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (head, _value) = line.rsplit_once(' ').unwrap_or((line, ""));
        let (name, labels) = match head.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (head, ""),
        };
        let mut set = BTreeMap::new();
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            if let Some((k, v)) = pair.split_once("=\"") {
                set.insert(k.to_owned(), v.trim_end_matches('"').to_owned());
            }
        }
        out.entry(name.to_owned()).or_default().push(set);
    }
    out
}

/// Every `smpp_…` metric name in a text (alert expressions, dashboard queries).
fn names_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(found) = text[i..].find("smpp_") {
        let start = i + found;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        if boundary {
            names.insert(text[start..end].to_owned());
        }
        i = end;
    }
    names
}

#[tokio::test]
async fn every_declared_metric_is_exported_with_its_labels_and_the_chart_names_only_real_ones() {
    let test = "observability_metrics";
    let s = Stage::builder(test)
        .env(&[
            ("CORRELATION_SWEEP_MS", "500"),
            ("CONCAT_WINDOW_SECONDS", "1"),
        ])
        .start()
        .await;

    // Short and long messages (receipts come back), and a command that is dead-lettered.
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            s.nats
                .send_command(&s.op, &format!("+9370100{n:04}"), "Observability run")
                .await,
        );
    }
    let long_text = "Observability long message ".repeat(8);
    ids.push(s.nats.send_command(&s.op, "+93701009999", &long_text).await);
    s.nats
        .publish_raw(&format!("smpp.operator.{}", s.op), b"{not json".to_vec())
        .await;
    let rows_expected = 5 + 2;
    eventually(T, "rows of every segment", || {
        let ids = ids.clone();
        async move { (correlation_rows(&ids).await.len() >= rows_expected).then_some(()) }
    })
    .await;

    // MO: one single part, one message of two parts.
    let deliver = |ud: Vec<u8>, esm: u8| {
        json!({
            "kind": "deliver_sm",
            "source_addr": "93701234567",
            "destination_addr": "3030",
            "esm_class": esm,
            "data_coding": 0,
            "short_message_hex": hex::encode(ud),
        })
    };
    crate::support::forbid_in_logs(&["93701234567"]);
    assert_eq!(s.sim.inject(deliver(b"single MO".to_vec(), 0)).await, 1);
    for seq in 1..=2u8 {
        let mut ud = vec![0x05, 0x00, 0x03, 0x42, 2, seq];
        ud.extend_from_slice(b"part");
        assert_eq!(s.sim.inject(deliver(ud, 0x40)).await, 1);
    }

    // Admin actions.
    let token = s.service.token.clone();
    assert_eq!(
        s.service.admin_get("/admin/binds", Some(&token)).await.0,
        200
    );
    for action in ["drain", "resume"] {
        let path = format!("/admin/binds/{}/trx/0/{action}", s.op);
        assert_eq!(s.service.admin_post(&path, Some(&token)).await.0, 202);
    }

    // Receipts correlated, the MO published, and the actors probed at least once.
    let text = eventually(T, "receipts, MO and actor probes in /metrics", || async {
        let text = s.service.metrics().await;
        let ready = text.contains("smpp_connector_submit_to_receipt_seconds_bucket")
            && text.contains("smpp_concat_parts_total")
            && text.contains("smpp_connector_actor_mailbox_wait_seconds")
            && text.contains("smpp_connector_correlation_sweep_seconds_bucket");
        ready.then_some(text)
    })
    .await;
    let exported = series(&text);
    // The actors' probes ran (every 5 s): their uptime moved.
    eventually(T, "actor probes", || async {
        let text = s.service.metrics().await;
        text.lines()
            .any(|l| {
                l.starts_with("smpp_connector_actor_uptime_seconds{actor=\"bind\"")
                    && l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) > Some(0.0)
            })
            .then_some(())
    })
    .await;

    let mut problems = Vec::new();
    for (constant, name) in declared_metrics() {
        let histogram = format!("{name}_bucket");
        let Some(sets) = exported.get(&name).or_else(|| exported.get(&histogram)) else {
            problems.push(format!("{constant} ({name}) is not exported"));
            continue;
        };
        for label in expected_labels(&constant) {
            if !sets.iter().any(|set| set.contains_key(*label)) {
                problems.push(format!("{name} has no label {label}: {sets:?}"));
            }
        }
        if !text.contains(&format!("# HELP {name} ")) {
            problems.push(format!("{name} has no description"));
        }
    }
    // The actors this process runs all report their health.
    let actors: BTreeSet<&str> = exported["smpp_connector_actor_uptime_seconds"]
        .iter()
        .filter_map(|set| set.get("actor").map(String::as_str))
        .collect();
    for actor in [
        "supervisor",
        "bind",
        "throttle",
        "correlation",
        "health",
        "ownership",
    ] {
        if !actors.contains(actor) {
            problems.push(format!("no actor health for {actor}: {actors:?}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");

    // The admin API shows the same actor health: the bind's own and the shared actors'.
    let (_, body) = s.service.admin_get("/admin/binds", Some(&token)).await;
    let bind_actor = &body["binds"][0]["actor"];
    assert_eq!(bind_actor["actor"], "bind", "{body}");
    assert!(bind_actor["uptimeSeconds"].is_u64(), "{body}");
    let shared: BTreeSet<&str> = body["actors"]
        .as_array()
        .expect("actors")
        .iter()
        .filter_map(|a| a["actor"].as_str())
        .collect();
    for actor in [
        "supervisor",
        "throttle",
        "correlation",
        "health",
        "ownership",
    ] {
        assert!(shared.contains(actor), "{actor} in admin binds: {shared:?}");
    }

    // What the chart's alerts and dashboard query is exported.
    let chart = root().join("charts/smpp-connector/files");
    for file in ["alerts.yaml", "dashboard.json"] {
        let content = std::fs::read_to_string(chart.join(file))
            .unwrap_or_else(|_| panic!("charts/smpp-connector/files/{file}"));
        let used = names_in(&content);
        assert!(!used.is_empty(), "{file} names no metric");
        let unknown: Vec<&String> = used
            .iter()
            .filter(|name| !exported.contains_key(*name))
            .collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics the service does not export: {unknown:?}"
        );
    }
    s.service
        .assert_no_secrets(&["93701234567", crate::support::sim::PASSWORD]);
}
