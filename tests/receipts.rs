//! Receipts: deliver_sm → correlation → `sms.dlr.inbound`, deliver_sm_resp only after the
//! publish is acknowledged; receipts that overtake their submit_sm_resp; unknown ids.

use std::time::Duration;

use serde_json::json;

use crate::support::{Nats, Stage, eventually, metric, schema};

const T: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_receipt_becomes_a_correlated_dlr_event() {
    let nats = Nats::start("receipt_basic").await;
    let mut dlrs = nats.subscribe("sms.dlr.inbound").await;
    let s = Stage::builder("receipt_basic")
        .nats(nats)
        .sim(json!({"receipt_stat": "DELIVRD"}))
        .start()
        .await;

    let id = s
        .nats
        .send_command(&s.op, "93700000009", "receipt please")
        .await;
    let event = dlrs
        .wait_for(T, "DLR event", |e| e["messageId"] == json!(id))
        .await;
    schema::assert_valid("dlr-inbound-event.v1.schema.json", &event);
    assert_eq!(event["status"], "DELIVERED");
    assert_eq!(event["smppMessageState"], 2);
    assert_eq!(event["correlated"], true);
    assert_eq!(event["source"], "DELIVER_SM");
    assert_eq!(event["segmentIndex"], 1);
    assert_eq!(event["segmentCount"], 1);
    assert_eq!(event["operatorId"], s.op.as_str());
    let submit = &s.sim.received("submit_sm").await[0];
    assert_eq!(
        event["operatorMessageId"].as_str().unwrap(),
        submit["message_id"]
            .as_str()
            .unwrap()
            .trim_start_matches('0')
            .to_lowercase()
    );
    // The SMSC got its deliver_sm_resp (ESME_ROK) after the publish.
    eventually(T, "deliver_sm_resp", || async {
        let stats = s.sim.stats().await;
        (stats["deliver_sm_resp"] == 1 && stats["deliver_sm_unanswered"] == 0).then_some(())
    })
    .await;
    let resps = s.sim.received("deliver_sm_resp").await;
    assert_eq!(resps[0]["status"], 0);
    let metrics = s.service.metrics().await;
    assert_eq!(
        metric(&metrics, "smpp_connector_receipt_correlation_total{mno=\"")
            .iter()
            .sum::<f64>(),
        1.0
    );
    assert!(
        metrics.contains("result=\"matched\"} 1"),
        "counted as matched"
    );
    assert!(
        metric(&metrics, "smpp_connector_receipt_lookup_seconds_count")
            .iter()
            .sum::<f64>()
            >= 1.0
    );
}

#[tokio::test]
async fn a_receipt_that_overtakes_its_submit_resp_is_still_correlated() {
    let nats = Nats::start("receipt_early").await;
    let mut dlrs = nats.subscribe("sms.dlr.inbound").await;
    let s = Stage::builder("receipt_early")
        .nats(nats)
        .sim(json!({"receipt_before_resp": true}))
        .start()
        .await;

    let ids = [
        s.nats.send_command(&s.op, "93700000010", "early one").await,
        s.nats.send_command(&s.op, "93700000011", "early two").await,
    ];
    for id in &ids {
        let event = dlrs
            .wait_for(T, "early receipt", |e| e["messageId"] == json!(id))
            .await;
        assert_eq!(event["correlated"], true);
        schema::assert_valid("dlr-inbound-event.v1.schema.json", &event);
    }
    // Both counted as correlated (the wait, if any, is told apart as matched_after_wait).
    let metrics = s.service.metrics().await;
    let correlated: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("smpp_connector_receipt_correlation_total{"))
        .filter(|l| l.contains("result=\"matched"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(correlated, 2.0);
}

#[tokio::test]
async fn an_unknown_receipt_is_published_uncorrelated_and_deduplicated() {
    let nats = Nats::start("receipt_unknown").await;
    let mut dlrs = nats.subscribe("sms.dlr.inbound").await;
    let s = Stage::builder("receipt_unknown")
        .nats(nats)
        .env(&[("RECEIPT_CORRELATION_WAIT_MS", "300")])
        .start()
        .await;

    let text = "id:00FFEE sub:001 dlvrd:001 submit date:2611221015 done date:2611221016 stat:UNDELIV err:034 text:";
    let receipt = json!({
        "kind": "deliver_sm",
        "source_addr": "93700000012",
        "destination_addr": "Ghasi",
        "esm_class": 4,
        "data_coding": 0,
        "short_message_hex": hex::encode(text),
    });
    // The SMSC sends the same receipt twice: one event in the stream (Nats-Msg-Id).
    s.sim.inject(receipt.clone()).await;
    let event = dlrs
        .wait_for(T, "uncorrelated DLR", |e| e["operatorMessageId"] == "ffee")
        .await;
    schema::assert_valid("dlr-inbound-event.v1.schema.json", &event);
    assert_eq!(event["messageId"], serde_json::Value::Null);
    assert_eq!(event["correlated"], false);
    assert_eq!(event["status"], "UNDELIVERABLE");
    assert_eq!(event["errorCode"], "034");
    assert_eq!(event["doneDate"], "2026-11-22T10:16:00Z");
    s.sim.inject(receipt).await;
    eventually(T, "both deliver_sm answered", || async {
        (s.sim.stats().await["deliver_sm_resp"] == 2).then_some(())
    })
    .await;
    // One DLR event in the stream: the second publish had the same Nats-Msg-Id.
    let total = s
        .nats
        .subject_messages("SMS_EVENTS", "sms.dlr.inbound")
        .await;
    assert_eq!(total, 1, "the duplicate receipt was de-duplicated");
    let metrics = s.service.metrics().await;
    assert!(
        metrics.contains("result=\"unmatched\"} 2"),
        "both copies counted unmatched"
    );
}

/// A buggy or hostile SMSC answers submit_sm with a message_id of 4,000 random characters
/// (SMPP allows 64 octets). The segment was accepted: it is never sent again, its row is
/// stored under a digest of the id (a PostgreSQL btree index row holds about 2.7 KB: the
/// raw id failed the batch with SQLSTATE 54000 and, retried for ever, froze the bind), a
/// receipt carrying the same id still correlates, the violation is counted, and the bind
/// goes on.
#[tokio::test]
async fn an_over_long_message_id_is_stored_as_its_digest_and_the_bind_goes_on() {
    let nats = Nats::start("receipt_oversized_id").await;
    let mut dlrs = nats.subscribe("sms.dlr.inbound").await;
    let s = Stage::builder("receipt_oversized_id")
        .nats(nats)
        .sim(json!({"message_id_format": "oversized"}))
        .start()
        .await;

    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            s.nats
                .send_command(&s.op, &format!("9370000002{n}"), "oversized id")
                .await,
        );
    }
    for id in &ids {
        let event = dlrs
            .wait_for(T, "receipt of an over-long id", |e| {
                e["messageId"] == json!(id)
            })
            .await;
        schema::assert_valid("dlr-inbound-event.v1.schema.json", &event);
        assert_eq!(event["correlated"], true);
        let stored = event["operatorMessageId"].as_str().unwrap();
        assert!(
            stored.starts_with("sha256:") && stored.len() <= 71,
            "stored as its digest: {stored}"
        );
    }
    // The bind goes on: the SMSC behaves again and the next message flows.
    s.sim.behaviour(json!({"message_id_format": "hex"})).await;
    let next = s
        .nats
        .send_command(&s.op, "93700000029", "oversized ids, then a plain one")
        .await;
    let event = dlrs
        .wait_for(T, "receipt after", |e| e["messageId"] == json!(next))
        .await;
    assert_eq!(event["correlated"], true);
    s.nats.wait_drained(&s.op, T).await;
    // Accepted once each, never sent again.
    assert_eq!(s.sim.received("submit_sm").await.len(), 4);
    assert_eq!(
        s.service
            .metric_sum(
                "smpp_connector_protocol_violations_total",
                "kind=\"message_id_too_long\""
            )
            .await,
        3.0
    );
    // Every row written: no row retried ("… not written; retrying …") or refused.
    let row_trouble: Vec<_> = s
        .service
        .logs()
        .into_iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("correlation row"))
        })
        .collect();
    assert!(row_trouble.is_empty(), "{row_trouble:?}");
}

/// A flood of receipts nobody can correlate (an SMSC replaying another client's receipts)
/// is bounded: each session holds at most `INBOUND_WINDOW` deliver_sm unanswered (the
/// rest waits on TCP), and a receipt without a row asks the database twice (when it
/// arrives, and once its wait is over), not once per retry step. Each became one
/// uncorrelated event and got its deliver_sm_resp.
#[tokio::test]
async fn a_flood_of_unknown_receipts_is_held_within_the_inbound_window_and_asked_twice_each() {
    const RECEIPTS: u64 = 400;
    const WINDOW: f64 = 20.0;
    let s = Stage::builder("receipt_flood")
        .env(&[
            ("INBOUND_WINDOW", "20"),
            ("RECEIPT_UNMATCHED_GRACE_MS", "300"),
            ("RECEIPT_CORRELATION_WAIT_MS", "5000"),
        ])
        .start()
        .await;

    let flood = s
        .sim
        .inject(json!({"kind": "receipt_burst", "receipts": RECEIPTS, "seed": 7}));
    let (sent, max_held) = tokio::join!(flood, async {
        let mut max_held = 0.0f64;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let held = s
                .service
                .metric_sum("smpp_connector_inbound_held", "bindId=\"0\"")
                .await;
            max_held = max_held.max(held);
            if s.sim.stats().await["deliver_sm_resp"].as_u64() == Some(RECEIPTS) {
                return max_held;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not every receipt answered in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert_eq!(sent, RECEIPTS);
    assert!(max_held <= WINDOW, "held {max_held} > INBOUND_WINDOW");
    assert!(
        max_held >= WINDOW / 2.0,
        "the window was reached: {max_held}"
    );
    let unmatched = s
        .service
        .metric_sum(
            "smpp_connector_receipt_correlation_total",
            "result=\"unmatched\"",
        )
        .await;
    assert_eq!(unmatched, RECEIPTS as f64);
    let lookups = s
        .service
        .metric_sum("smpp_connector_receipt_lookups_total", "")
        .await;
    assert!(
        lookups <= 2.0 * RECEIPTS as f64,
        "{lookups} lookups for {RECEIPTS} receipts"
    );
    let published = s
        .service
        .metric_sum("smpp_connector_dlr_total", "published=\"true\"")
        .await;
    assert_eq!(published, RECEIPTS as f64);
}
