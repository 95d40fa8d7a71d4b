//! Faults the service must take calmly (issue 11, defects found by a fault run): each
//! became a test here before it was fixed.

use std::time::Duration;

use serde_json::json;

use crate::support::{Nats, Stage, correlation_rows, eventually, send_commands, wait_rows};

const T: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_connection_reset_is_a_lost_connection_and_its_in_flight_submits_are_counted() {
    // Answers take 2 s, so the submits are in flight when the SMSC resets the connection.
    let s = Stage::builder("faults_reset")
        .sim(json!({"receipts": false, "resp_delay_ms": 2000, "reset_on_close": true}))
        .start()
        .await;
    let ids = send_commands(&s.nats, &s.op, "+9370400", 0..5, "Reset test").await;
    s.sim.received_at_least("submit_sm", 5).await;
    // The SMSC resets the connection (RST), then answers at once again.
    s.sim.behaviour(json!({"resp_delay_ms": 0})).await;
    s.sim.disconnect().await;

    wait_rows(&ids, 5).await;
    s.nats.wait_drained(&s.op, T).await;
    let malformed = s
        .service
        .metric_sum("smpp_connector_malformed_pdus_total", "")
        .await;
    assert_eq!(malformed, 0.0, "a reset is not a malformed PDU");
    assert!(
        s.service
            .logs_with("unrecoverable framing error from SMSC; reconnecting")
            .is_empty(),
        "a reset is not a framing error"
    );
    let lost = s.service.logs_with("connection to SMSC lost; reconnecting");
    assert_eq!(lost.len(), 1, "one line for the reset: {lost:?}");
    assert_eq!(lost[0]["level"], "WARN");
    assert_eq!(
        s.service
            .metric_sum("smpp_connector_possible_duplicate_submits_total", "")
            .await,
        5.0,
        "the five submits in flight at the reset may have reached the SMSC"
    );
}

/// The service's PostgreSQL through a proxy the test can cut.
pub async fn database_proxy() -> (crate::support::proxy::Proxy, String) {
    let database = crate::support::shared().database_url.clone();
    let authority = database
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("host:port in the database URL")
        .to_owned();
    let target: std::net::SocketAddr = authority.parse().expect("database address");
    let proxy = crate::support::proxy::Proxy::start(target).await;
    let proxied = database.replace(&authority, &format!("127.0.0.1:{}", proxy.port));
    (proxy, proxied)
}

/// One operator at a simulator behaving as `sim_behaviour`, and the service (`env` added)
/// reaching the shared PostgreSQL through a proxy the test can cut.
async fn behind_a_database_proxy(
    test: &str,
    sim_behaviour: serde_json::Value,
    env: &[(&str, &str)],
) -> (Stage, crate::support::proxy::Proxy) {
    let (proxy, proxied) = database_proxy().await;
    let mut all = vec![("DATABASE_URL", proxied.as_str())];
    all.extend_from_slice(env);
    let s = Stage::builder(test)
        .sim(sim_behaviour)
        .env(&all)
        .bound(0)
        .start()
        .await;
    (s, proxy)
}

#[tokio::test]
async fn a_postgres_outage_is_logged_once_per_outage_not_per_message_or_receipt() {
    let (s, proxy) = behind_a_database_proxy(
        "faults_pg_logs",
        json!({"receipts": true, "receipt_delay_ms": 200}),
        &[("RECEIPT_CORRELATION_WAIT_MS", "500")],
    )
    .await;
    s.service.wait_bound(1).await;
    let before = s.service.logs().len();

    // Messages sent just before the cut: their receipts arrive during the outage.
    let mut ids = send_commands(&s.nats, &s.op, "+9370500", 0..40, "Outage logs").await;
    s.sim.received_at_least("submit_sm", 40).await;
    proxy.cut();
    s.sim.received_at_least("deliver_sm_resp", 40).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore();
    // Traffic after the outage: rows and receipt lookups work again.
    ids.extend(send_commands(&s.nats, &s.op, "+9370500", 40..45, "Outage logs").await);
    wait_rows(&ids, 45).await;
    s.sim.received_at_least("deliver_sm_resp", 45).await;

    let lines: Vec<serde_json::Value> = s.service.logs().into_iter().skip(before).collect();
    let loud: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["level"] == "WARN" || l["level"] == "ERROR")
        .collect();
    assert!(
        loud.len() <= 6,
        "{} WARN/ERROR lines for one outage: {:#?}",
        loud.len(),
        loud.iter().map(|l| &l["message"]).collect::<Vec<_>>()
    );
    let receipt_lines = lines
        .iter()
        .filter(|l| {
            l["level"] != "DEBUG" && l["message"].as_str().is_some_and(|m| m.contains("receipt"))
        })
        .count();
    assert!(
        receipt_lines <= 3,
        "{receipt_lines} receipt lines at INFO or above for 45 receipts"
    );
    // The lines name the cause, not just "db error".
    for line in &loud {
        assert_ne!(line["error"], "db error", "{line}");
    }
    // The outage and its end are both said.
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "INFO"
                && l["message"].as_str().is_some_and(|m| m.contains("again"))),
        "the recovery is logged"
    );
}

/// A NATS server killed (kill -9) can lose its consumers' delivery state: a command this
/// process already sent and recorded then comes back as a *first* delivery. Commands
/// stored before the latest NATS connection are therefore checked against the rows too,
/// like redeliveries, and one with all its rows is ACKed without sending anything.
#[tokio::test]
async fn a_first_delivery_stored_before_a_nats_reconnect_is_checked_against_the_rows() {
    let test = "faults_first_delivery";
    // The SMSC refuses binds for now: nothing is pulled.
    let mut s = Stage::builder(test)
        .sim(json!({"receipts": false, "bind_status": "ESME_RBINDFAIL"}))
        .bound(0)
        .start()
        .await;
    eventually(T, "the schema migrated", || async {
        let client = crate::support::pg().await;
        client
            .query_one(
                "SELECT to_regclass('smpp.message_correlations') IS NOT NULL",
                &[],
            )
            .await
            .ok()
            .and_then(|row| row.get::<_, bool>(0).then_some(()))
    })
    .await;

    // A command this process "already sent": its row exists (as if the ACK was lost and
    // the server forgot the delivery).
    let sent = s
        .nats
        .send_command(&s.op, "+93706000001", "Already sent before the crash")
        .await;
    crate::support::pg()
        .await
        .execute(
            "INSERT INTO smpp.message_correlations (message_id, segment_index, segment_count, \
             operator_id, direction, bind_id, operator_message_id, submitted_at, expires_at) \
             VALUES ($1, 1, 1, $2, 'trx', 0, 'abc', now(), now() + interval '72 hours')",
            &[&sent, &s.op],
        )
        .await
        .expect("row of the earlier send");

    // NATS is killed and comes back; the service reconnects.
    s.nats.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.nats.restart().await;
    eventually(T, "the service reconnected", || async {
        (s.service.logs_with("nats connected").len() >= 2).then_some(())
    })
    .await;
    // The SMSC takes binds again; a new command follows.
    s.sim.behaviour(json!({"bind_status": null})).await;
    s.service.wait_bound(1).await;
    tokio::time::sleep(Duration::from_millis(5500)).await;
    let fresh = s
        .nats
        .send_command(&s.op, "+93706000002", "Sent after the reconnect")
        .await;
    eventually(T, "the new command recorded", || {
        let ids = vec![fresh.clone()];
        async move { (correlation_rows(&ids).await.len() == 1).then_some(()) }
    })
    .await;
    s.nats.wait_drained(&s.op, T).await;

    let submits = s.sim.received("submit_sm").await;
    let to: Vec<&str> = submits
        .iter()
        .filter_map(|s| s["destination_addr"].as_str())
        .collect();
    assert_eq!(
        to,
        vec!["93706000002"],
        "only the new command reaches the SMSC"
    );
    assert!(
        s.service
            .metric_sum(
                "smpp_connector_redelivery_lookups_total",
                "reason=\"stored_before_reconnect\""
            )
            .await
            >= 1.0
    );
}

/// A receipt whose row does not exist (its message was sent by another system, or long
/// ago) is answered after a short grace, not after the whole correlation wait: the wait is
/// for a receipt that overtook a submit still in flight, and none is.
#[tokio::test]
async fn a_receipt_without_a_row_is_not_held_for_the_whole_wait() {
    let s = Stage::builder("faults_unknown_receipt")
        .sim(json!({"receipts": false}))
        .env(&[
            ("RECEIPT_CORRELATION_WAIT_MS", "20000"),
            ("RECEIPT_UNMATCHED_GRACE_MS", "500"),
        ])
        .start()
        .await;
    let text = "id:0ABCDE sub:001 dlvrd:001 submit date:2611221015 done date:2611221016 stat:DELIVRD err:000 text:";
    let sent = std::time::Instant::now();
    assert_eq!(
        s.sim
            .inject(json!({
                "kind": "deliver_sm",
                "source_addr": "93700000013",
                "destination_addr": "Ghasi",
                "esm_class": 4,
                "data_coding": 0,
                "short_message_hex": hex::encode(text),
            }))
            .await,
        1
    );
    eventually(T, "the deliver_sm answered", || async {
        (s.sim.stats().await["deliver_sm_resp"] == 1).then_some(())
    })
    .await;
    let answered = sent.elapsed();
    assert!(
        answered < Duration::from_secs(5),
        "answered after {answered:?} (wait 20 s, grace 0.5 s)"
    );
    assert!(
        s.service
            .metric_sum(
                "smpp_connector_receipt_correlation_total",
                "result=\"unmatched\""
            )
            .await
            == 1.0
    );
}

/// A flood of dead letters is not a flood of log lines: the first ten are logged, then
/// one ERROR says it is happening in bulk; each one is still dead-lettered and counted.
#[tokio::test]
async fn thousands_of_dead_letters_raise_one_error_not_a_line_each() {
    let s = Stage::builder("faults_dead_letters")
        .sim(json!({"receipts": false}))
        .start()
        .await;
    let subject = format!("smpp.operator.{}", s.op);
    for n in 0..60 {
        s.nats
            .publish_raw(&subject, format!("{{not json {n}").into_bytes())
            .await;
    }
    eventually(T, "60 dead letters", || async {
        (s.nats
            .subject_messages("SMS_EVENTS", "sms.dispatch.dlq")
            .await
            == 60)
            .then_some(())
    })
    .await;
    s.nats.wait_drained(&s.op, T).await;
    let warned = s.service.logs_with("dispatch command dead-lettered");
    assert!(
        (1..=10).contains(&warned.len()),
        "{} dead-letter lines",
        warned.len()
    );
    let alarms: Vec<serde_json::Value> = s
        .service
        .logs()
        .into_iter()
        .filter(|l| l["level"] == "ERROR")
        .collect();
    assert_eq!(alarms.len(), 1, "one ERROR for the flood: {alarms:?}");
    assert!(
        alarms[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("dead-lettered")),
        "{alarms:?}"
    );
    assert_eq!(
        s.service
            .metric_sum(
                "smpp_connector_dead_letter_total",
                "reason=\"INVALID_JSON\""
            )
            .await,
        60.0
    );
}

/// Redis down under long messages, MO parts and TPS grants: a line per outage per
/// concern, not per message.
#[tokio::test]
async fn a_redis_outage_is_logged_once_not_per_message() {
    let (proxy, proxied) = crate::support::proxy::redis_proxy().await;
    let s = Stage::builder("faults_redis_logs")
        .sim(json!({"receipts": true}))
        .env(&[("REDIS_URL", &proxied)])
        .start()
        .await;
    let before = s.service.logs().len();
    proxy.cut();
    let long = "A long message while Redis is down, more than one segment of text. ".repeat(3);
    let ids = send_commands(&s.nats, &s.op, "+9370700", 0..30, &long).await;
    // Concatenated MO parts while Redis is down (answered ESME_RX_T_APPN, retried by the SMSC).
    for seq in 1..=2u8 {
        let mut ud = vec![0x05, 0x00, 0x03, 0x21, 2, seq];
        ud.extend_from_slice(b"part");
        s.sim
            .inject(json!({
                "kind": "deliver_sm",
                "source_addr": "93707999999",
                "destination_addr": "3030",
                "esm_class": 0x40,
                "data_coding": 0,
                "short_message_hex": hex::encode(ud),
            }))
            .await;
    }
    crate::support::forbid_in_logs(&["93707999999"]);
    let segments = eventually(T, "every segment recorded during the outage", || {
        let ids = ids.clone();
        async move {
            let rows = correlation_rows(&ids).await.len();
            (rows >= 60).then_some(rows)
        }
    })
    .await;
    proxy.restore();
    let loud = s.service.loud_lines(before);
    assert!(
        loud.len() <= 6,
        "{} WARN/ERROR lines for one Redis outage ({segments} segments): {:#?}",
        loud.len(),
        loud.iter().map(|l| &l["message"]).collect::<Vec<_>>()
    );
}

/// Receipts published while the stream's acknowledgements are lost (a connection that
/// breaks after the publish): the events are stored, the publishes unconfirmed. The SMSC
/// is answered ESME_RX_T_APPN and redelivers; the second publish is acknowledged as a
/// duplicate. The counts say so — unconfirmed, then duplicate, none failed — and the
/// stream has each receipt once.
#[tokio::test]
async fn receipts_whose_acknowledgement_was_lost_are_counted_as_unconfirmed_then_duplicate() {
    let test = "faults_lost_acks";
    let nats = Nats::start(test).await;
    let target: std::net::SocketAddr = nats
        .url
        .trim_start_matches("nats://")
        .parse()
        .expect("nats address");
    let proxy = crate::support::proxy::Proxy::start(target).await;
    let proxied = format!("nats://127.0.0.1:{}", proxy.port);
    // The service talks to NATS through the proxy (the test's own client does not).
    // One pod, no KV ownership: a muted NATS would (rightly) stop a bind whose key
    // cannot be refreshed, which is not what this test is about.
    let s = Stage::builder(test)
        .nats(nats)
        .sim(json!({"receipts": true, "receipt_delay_ms": 1500, "redeliver_refused_ms": 300}))
        .env(&[("NATS_URL", &proxied), ("BIND_OWNERSHIP", "off")])
        .start()
        .await;
    let ids = send_commands(&s.nats, &s.op, "+9370800", 0..10, "Lost acks").await;
    wait_rows(&ids, 10).await;
    // The receipts come 1.5 s after the submits: their publishes lose their acks.
    proxy.mute_replies();
    tokio::time::sleep(Duration::from_secs(8)).await;
    proxy.unmute_replies();
    eventually(T, "ten receipt events, each once", || async {
        (s.nats
            .subject_messages("SMS_EVENTS", "sms.dlr.inbound")
            .await
            == 10)
            .then_some(())
    })
    .await;
    let count = |label: &'static str| {
        let service = &s.service;
        async move {
            service
                .metric_sum(
                    "smpp_connector_dlr_total",
                    &format!("published=\"{label}\""),
                )
                .await
        }
    };
    eventually(T, "every receipt acknowledged", || async {
        (count("true").await + count("duplicate").await >= 10.0).then_some(())
    })
    .await;
    assert!(
        count("unconfirmed").await >= 1.0,
        "unconfirmed publishes counted"
    );
    assert!(
        count("duplicate").await >= 1.0,
        "their redeliveries were duplicates"
    );
    assert_eq!(count("failed").await, 0.0, "nothing failed");
    assert_eq!(
        s.nats
            .subject_messages("SMS_EVENTS", "sms.dlr.inbound")
            .await,
        10,
        "each receipt in the stream once"
    );
    let warned = s.service.logs_with(
        "receipt publishing failing; the SMSC is answered ESME_RX_T_APPN and redelivers",
    );
    assert_eq!(warned.len(), 1, "one line for the outage");
    assert_eq!(
        s.service.logs_with("receipt publishing works again").len(),
        1
    );
}

/// An SMSC that starts a PDU and never finishes it (a slowloris on the SMPP socket): the
/// bind does not wait for it for ever — the heartbeat's timeout ends the session — and
/// nothing queued is lost.
#[tokio::test]
async fn a_half_sent_pdu_from_the_smsc_ends_the_session_and_loses_nothing() {
    let s = Stage::builder("faults_slowloris")
        .sim(json!({"receipts": false}))
        .start()
        .await;
    // A header announcing 1,000 octets, then 8 of them, then nothing.
    let mut partial = vec![0, 0, 0x03, 0xE8, 0, 0, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 0x99];
    partial.extend_from_slice(&[0x41; 8]);
    assert_eq!(
        s.sim
            .inject(json!({"kind": "raw", "hex": hex::encode(&partial)}))
            .await,
        1
    );
    let ids = send_commands(&s.nats, &s.op, "+9370900", 0..20, "After a stalled PDU").await;
    wait_rows(&ids, 20).await;
    s.nats.wait_drained(&s.op, T).await;
    let reasons: Vec<String> = s
        .service
        .logs_with("bind state changed")
        .iter()
        .filter_map(|l| l["reason"].as_str().map(str::to_owned))
        .collect();
    assert!(
        reasons.iter().any(|r| r == "enquire_link_timeout"),
        "the stalled session ended by its heartbeat: {reasons:?}"
    );
    assert_eq!(
        s.service
            .metric_sum("smpp_connector_malformed_pdus_total", "")
            .await,
        0.0
    );
}

/// A 10 MB dispatch command (on a NATS that accepts such payloads): dead-lettered as
/// TOO_LARGE with a clear detail, nothing sent, the payload not copied into the event.
#[tokio::test]
async fn a_ten_megabyte_command_is_dead_lettered_not_sent() {
    let test = "faults_huge";
    let s = Stage::builder(test)
        .nats(Nats::start_with_config(test, "max_payload: 16777216\n").await)
        .sim(json!({"receipts": false}))
        .start()
        .await;
    let mut dlq = s.nats.subscribe("sms.dispatch.dlq").await;
    let command = json!({
        "messageId": "huge",
        "operatorId": s.op,
        "to": "+93709999999",
        "text": "z".repeat(10 * 1024 * 1024),
    });
    crate::support::forbid_in_logs(&["93709999999"]);
    let sequence = s
        .nats
        .publish_raw(
            &format!("smpp.operator.{}", s.op),
            serde_json::to_vec(&command).unwrap(),
        )
        .await;
    let letter = dlq
        .wait_for(T, "the dead letter", |l| l["streamSequence"] == sequence)
        .await;
    // Refused by its size before it is parsed.
    assert_eq!(letter["reason"], "TOO_LARGE", "{letter}");
    assert!(
        letter["detail"]
            .as_str()
            .is_some_and(|d| d.contains("exceeds")),
        "{letter}"
    );
    assert!(
        letter.to_string().len() < 2_000,
        "the payload is not copied"
    );
    s.nats.wait_drained(&s.op, T).await;
    assert!(s.sim.received("submit_sm").await.is_empty());
    // And the bind goes on.
    let ids = send_commands(&s.nats, &s.op, "+9370901", 0..3, "After a huge one").await;
    wait_rows(&ids, 3).await;
}

/// Receipts that come while their rows wait to be written again (the database was down
/// when their submit_sm_resp came) wait for those rows, as receipts that overtook a submit
/// in flight do, instead of going out uncorrelated after the short grace for receipts
/// that have no row anywhere. A failover of a few seconds lost the correlation of a few
/// receipts this way (tests/backends.rs, under the whole suite's load).
#[tokio::test]
async fn receipts_wait_for_rows_being_written_again() {
    // Answers take 1 s: the database is cut after the submits went out (a command is not
    // sent while its redelivery lookup fails) and before their rows are written.
    let (s, proxy) = behind_a_database_proxy(
        "faults_receipt_row_retry",
        json!({"receipts": true, "receipt_delay_ms": 200, "resp_delay_ms": 1000}),
        &[
            ("RECEIPT_UNMATCHED_GRACE_MS", "100"),
            ("RECEIPT_CORRELATION_WAIT_MS", "15000"),
        ],
    )
    .await;
    s.service.wait_bound(1).await;
    let mut dlrs = s.nats.subscribe("sms.dlr.inbound").await;
    let ids = send_commands(&s.nats, &s.op, "+9370600", 0..10, "Row retry").await;
    s.sim.received_at_least("submit_sm", 10).await;
    proxy.cut();
    // The answers, then the receipts, come while the rows cannot be written.
    eventually(T, "the receipts sent", || async {
        let sent = s
            .sim
            .records()
            .iter()
            .filter(|r| r["dir"] == "out" && r["command"] == "deliver_sm")
            .count();
        (sent >= 10).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.restore();
    wait_rows(&ids, 10).await;
    for id in &ids {
        dlrs.wait_for(T, "the receipt, correlated", |e| {
            e["messageId"] == id.as_str()
        })
        .await;
    }
    dlrs.drain(Duration::from_millis(500)).await;
    let uncorrelated: Vec<_> = dlrs
        .seen
        .iter()
        .filter(|e| e["messageId"].is_null())
        .collect();
    assert!(
        uncorrelated.is_empty(),
        "receipts published uncorrelated: {uncorrelated:?}"
    );
}
