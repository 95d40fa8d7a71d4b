//! Dispatch: commands from JetStream to submit_sm, correlation rows, ACKs, dead letters
//! and the ESME status taxonomy.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Nats, Stage, correlation_rows, eventually, forbid_in_logs, schema};

const T: Duration = Duration::from_secs(30);

fn consumer(op: &str) -> String {
    format!("smpp-connector-{op}-trx-p2")
}

/// The stream is empty and the consumer has nothing pending or unacknowledged.
#[tokio::test]
async fn five_commands_become_five_submits_five_rows_five_acks() {
    let s = Stage::builder("dispatch_five")
        .sim(json!({"receipts": false}))
        .start()
        .await;

    let mut ids = Vec::new();
    let mut secrets = Vec::new();
    for n in 0..5 {
        let to = format!("9370000{n:04}");
        let text = format!("Salaam {n} from the five-message test");
        ids.push(s.nats.send_command(&s.op, &format!("+{to}"), &text).await);
        secrets.push(to);
        secrets.push(text);
    }
    let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    forbid_in_logs(&secret_refs);

    let rows = eventually(T, "five correlation rows", || {
        let ids = ids.clone();
        async move {
            let rows = correlation_rows(&ids).await;
            (rows.len() == 5).then_some(rows)
        }
    })
    .await;
    s.nats.wait_drained(&s.op, T).await;

    // What went over TCP: exactly five submit_sm, GSM7, to the right numbers.
    let submits = s.sim.received("submit_sm").await;
    assert_eq!(submits.len(), 5, "{submits:?}");
    for (n, submit) in submits.iter().enumerate() {
        assert_eq!(submit["destination_addr"], format!("9370000{n:04}"));
        assert_eq!(submit["dest_addr_ton"], 1);
        assert_eq!(submit["source_addr"], "Ghasi");
        assert_eq!(submit["data_coding"], 0);
        assert_eq!(submit["registered_delivery"], 1);
        assert_eq!(submit["esm_class"], 0);
        let text = hex::decode(submit["short_message_hex"].as_str().unwrap()).unwrap();
        assert_eq!(
            text,
            format!("Salaam {n} from the five-message test").as_bytes()
        );
    }
    // One row per message, keyed by the normalised id the SMSC assigned.
    let sim_ids: Vec<String> = submits
        .iter()
        .map(|s| {
            s["message_id"]
                .as_str()
                .unwrap()
                .trim_start_matches('0')
                .to_lowercase()
        })
        .collect();
    for (message_id, segment, operator_message_id) in &rows {
        assert!(ids.contains(message_id));
        assert_eq!(*segment, 1);
        assert!(
            sim_ids.contains(operator_message_id),
            "{operator_message_id} in {sim_ids:?}"
        );
    }
    let metrics = s.service.metrics().await;
    assert!(
        metrics.contains("smpp_response_status_total{"),
        "status counted"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("esme_status=\"ESME_ROK\"") && l.ends_with(" 5"))
    );
    s.service.assert_no_secrets(&secret_refs);
    s.sim.assert_golden_clean().await;
}

#[tokio::test]
async fn invalid_payloads_are_dead_lettered_once_and_never_sent() {
    let nats = Nats::start("dispatch_dlq").await;
    let mut dlq = nats.subscribe("sms.dispatch.dlq").await;
    let s = Stage::builder("dispatch_dlq").nats(nats).start().await;
    forbid_in_logs(&["93799999999", "never to be logged"]);

    let subject = format!("smpp.operator.{}", s.op);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "INVALID_JSON"),
        (json!({"operatorId": s.op, "to": "93799999999", "text": "never to be logged"}).to_string().into_bytes(), "MISSING_FIELD"),
        (json!({"messageId": "bad-to", "operatorId": s.op, "to": "phone", "text": "never to be logged"}).to_string().into_bytes(), "INVALID_FIELD"),
        (json!({"messageId": "bad-enc", "operatorId": s.op, "to": "93799999999", "text": "x", "encoding": "EBCDIC"}).to_string().into_bytes(), "INVALID_FIELD"),
        (json!({"messageId": "big", "operatorId": s.op, "to": "93799999999", "text": "a".repeat(70_000)}).to_string().into_bytes(), "TOO_LARGE"),
        // Bytes that are not UTF-8 inside a JSON string.
        ([br#"{"messageId":"bad-utf8","operatorId":""#.as_slice(), s.op.as_bytes(), br#"","to":"93799999999","text":""#.as_slice(), &[0xFF, 0xFE], br#" never to be logged"}"#.as_slice()].concat(), "INVALID_JSON"),
    ];
    let mut sequences = Vec::new();
    for (payload, _) in &cases {
        sequences.push(s.nats.publish_raw(&subject, payload.clone()).await);
    }
    for ((_, reason), sequence) in cases.iter().zip(&sequences) {
        let letter = dlq
            .wait_for(T, reason, |l| l["streamSequence"] == json!(sequence))
            .await;
        schema::assert_valid("dispatch-dead-letter.v1.schema.json", &letter);
        assert_eq!(letter["reason"], *reason, "{letter}");
        // Identified by the command's stream sequence: a dead letter stored whose ACK was
        // lost is one entry when the command is dead-lettered again (issue 21).
        assert_eq!(
            dlq.msg_id_of(&letter).as_deref(),
            Some(format!("dlq-{sequence}").as_str()),
            "Nats-Msg-Id of {letter}"
        );
        assert_eq!(letter["subject"], subject);
        assert_eq!(letter["deliveries"], 1);
        let text = letter.to_string();
        assert!(
            !text.contains("93799999999") && !text.contains("never to be logged"),
            "no PII in {text}"
        );
    }
    s.nats.wait_drained(&s.op, T).await;
    // Not redelivered: nothing more arrives, nothing was redelivered, nothing was sent.
    let extra = dlq.drain(Duration::from_millis(1500)).await.len();
    assert_eq!(
        extra,
        cases.len(),
        "exactly one dead letter per bad command"
    );
    let (_, _, redelivered) = s
        .nats
        .consumer_counts("SMS_DISPATCH", &consumer(&s.op))
        .await
        .unwrap();
    assert_eq!(redelivered, 0);
    assert!(s.sim.received("submit_sm").await.is_empty());
    assert!(s.service.logs_with("dispatch command dead-lettered").len() >= cases.len());
    s.service
        .assert_no_secrets(&["93799999999", "never to be logged"]);
}

#[tokio::test]
async fn permanent_errors_are_rejected_and_temporary_ones_retried() {
    let nats = Nats::start("dispatch_taxonomy").await;
    let mut dlrs = nats.subscribe("sms.dlr.inbound").await;
    // First submit: invalid destination (permanent); second: system error (temporary),
    // then OK.
    let s = Stage::builder("dispatch_taxonomy")
        .nats(nats)
        .sim(json!({"receipts": false, "submit_status_next": [0x0B, 0x08]}))
        .start()
        .await;

    let rejected = s
        .nats
        .send_command(&s.op, "93700000001", "rejected for good")
        .await;
    let rejection = dlrs
        .wait_for(T, "REJECTED event", |e| e["messageId"] == json!(rejected))
        .await;
    schema::assert_valid("dlr-inbound-event.v1.schema.json", &rejection);
    assert_eq!(rejection["status"], "REJECTED");
    assert_eq!(rejection["source"], "SUBMIT_RESP");
    assert_eq!(rejection["errorCode"], "0x0000000B");

    let retried = s
        .nats
        .send_command(&s.op, "93700000002", "retried then sent")
        .await;
    eventually(T, "retried message correlated", || {
        let ids = vec![retried.clone()];
        async move { (correlation_rows(&ids).await.len() == 1).then_some(()) }
    })
    .await;
    s.nats.wait_drained(&s.op, T).await;
    assert_eq!(
        s.sim.received("submit_sm").await.len(),
        3,
        "one rejected, one failed, one resent"
    );
    assert!(correlation_rows(&[rejected]).await.is_empty());
    let _ = Value::Null;
}
