//! The ledger's promises under faults (issue 6's defects, each found by reading or
//! measuring, written here first): connection resets and an admin restart during long
//! messages, and a PostgreSQL outage under load. Counted at the simulator: what reached
//! the SMSC, under which concatenation reference, how often.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::proxy::Proxy;
use crate::support::{Nats, Stage, correlation_rows, forbid_in_logs, metric, shared};

const T: Duration = Duration::from_secs(60);

/// 400 GSM7 characters: three CSMS segments (153 + 153 + 94).
fn three_part_text() -> String {
    "R".repeat(400)
}

async fn publish(nats: &Nats, op: &str, to: &str, text: &str) -> String {
    forbid_in_logs(&[to, text]);
    let message_id = uuid::Uuid::new_v4().to_string();
    let command = json!({"messageId": message_id, "operatorId": op, "to": to, "text": text});
    nats.publish_raw(
        &format!("smpp.operator.{op}"),
        command.to_string().into_bytes(),
    )
    .await;
    message_id
}

/// (reference, part) of a part's UDH: 8-bit, or 16-bit once the bind widened.
fn udh(pdu: &Value) -> (u16, u8) {
    let sm = hex::decode(pdu["short_message_hex"].as_str().unwrap_or("")).expect("hex");
    match &sm[..3] {
        [0x05, 0x00, 0x03] => (u16::from(sm[3]), sm[5]),
        [0x06, 0x08, 0x04] => (u16::from_be_bytes([sm[3], sm[4]]), sm[6]),
        other => panic!("not a concatenation UDH: {other:?}"),
    }
}

/// Per destination: reference → segment numbers received (with repeats).
fn parts_by_destination(submits: &[Value]) -> HashMap<String, HashMap<u16, Vec<u8>>> {
    let mut by: HashMap<String, HashMap<u16, Vec<u8>>> = HashMap::new();
    for pdu in submits {
        let to = pdu["destination_addr"].as_str().unwrap_or("").to_owned();
        let (reference, part) = udh(pdu);
        by.entry(to)
            .or_default()
            .entry(reference)
            .or_default()
            .push(part);
    }
    by
}

/// Resets during long messages: every message ends with all its parts at the SMSC under
/// one reference (the one stored with its rows), and the messages a dropped session held
/// come back at once, not after AckWait (60 s here; everything must be done well before).
#[tokio::test]
async fn connection_resets_during_long_messages_keep_one_reference_per_message() {
    let test = "recovery_resets";
    // Each connection is cut at its 45th PDU (the bind included), unanswered.
    let s = Stage::builder(test)
        .sim(json!({"receipts": false, "resp_delay_ms": 5, "drop_after_pdus": 45}))
        .credentials(json!({"window": 10}))
        .env(&[("NATS_ACK_WAIT_MS", "60000")])
        .start()
        .await;

    let started = Instant::now();
    let text = three_part_text();
    let mut ids = Vec::new();
    for n in 0..60 {
        ids.push(publish(&s.nats, &s.op, &format!("9371{n:07}"), &text).await);
    }
    crate::support::wait_rows(&ids, 180).await;
    s.nats.wait_drained(&s.op, T).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "held messages waited for AckWait: {took:?}"
    );

    let binds = s.sim.received("bind_transceiver").await.len();
    assert!(binds >= 4, "the SMSC reset the connection ({binds} binds)");
    let submits = s.sim.received("submit_sm").await;
    let by = parts_by_destination(&submits);
    assert_eq!(by.len(), 60);
    let mut stray = 0;
    for (to, refs) in &by {
        // One reference carries every part; any other reference holds only parts that
        // were in flight when a session died before anything of the message had a row.
        let complete: Vec<_> = refs
            .iter()
            .filter(|(_, parts)| parts.iter().copied().collect::<BTreeSet<u8>>().len() == 3)
            .collect();
        assert_eq!(complete.len(), 1, "{to}: parts under references {refs:?}");
        stray += refs.len() - 1;
    }
    let rows = correlation_rows(&ids).await;
    assert_eq!(rows.len(), 180);
    // Bounded by what was in flight at each reset.
    assert!(
        stray <= binds * 10,
        "{stray} stray references after {binds} binds"
    );
    s.service.assert_no_secrets(&[&text]);
}

/// An admin restart while long messages flow: in-flight segments are answered and
/// recorded, queued ones go back and are resent alone, under the stored reference, so no
/// segment reaches the SMSC twice.
#[tokio::test]
async fn admin_restart_during_long_messages_sends_no_segment_twice() {
    let test = "recovery_restart";
    let s = Stage::builder(test)
        .sim(json!({"receipts": false, "resp_delay_ms": 10}))
        .credentials(json!({"window": 8}))
        .start()
        .await;

    let text = three_part_text();
    let mut ids = Vec::new();
    for n in 0..90 {
        ids.push(publish(&s.nats, &s.op, &format!("9372{n:07}"), &text).await);
        if n == 30 || n == 60 {
            // Bound again after the previous restart, with some segments in flight and
            // some queued: restart.
            s.sim.received_at_least("bind_transceiver", n / 30).await;
            let sent = s.sim.received_now("submit_sm").len();
            s.sim
                .received_at_least("submit_sm", (sent + 3).min(3 * (n + 1)))
                .await;
            let (status, body) = s
                .service
                .admin_post(
                    &format!("/admin/binds/{}/trx/0/restart", s.op),
                    Some(&s.service.token),
                )
                .await;
            assert_eq!(status, 202, "{body}");
        }
    }
    crate::support::wait_rows(&ids, 270).await;
    s.nats.wait_drained(&s.op, T).await;
    assert!(s.sim.received("unbind").await.len() >= 2);
    let submits = s.sim.received("submit_sm").await;
    let by = parts_by_destination(&submits);
    assert_eq!(by.len(), 90);
    for (to, refs) in &by {
        assert_eq!(refs.len(), 1, "{to}: parts under references {refs:?}");
        let parts = refs.values().next().expect("one reference");
        let mut sorted = parts.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![1, 2, 3], "{to}: each part exactly once");
    }
    assert_eq!(submits.len(), 270);
    s.sim.assert_golden_clean().await;
}

/// PostgreSQL unreachable for 30 s under load: segments that got ESME_ROK keep their
/// rows in memory and retry; intake pauses; nothing is sent twice, nothing is rejected,
/// nothing is lost.
#[tokio::test]
async fn a_postgres_outage_sends_nothing_twice_and_rejects_nothing() {
    let test = "recovery_pg";
    let nats = Nats::start(test).await;
    let mut dlrs = nats.subscribe("sms.dlr.inbound").await;
    let mut dlq = nats.subscribe("sms.dispatch.dlq").await;
    let database = shared().database_url.clone();
    let authority = database
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("host:port in the database URL");
    let target: SocketAddr = authority.parse().expect("database address");
    let proxy = Proxy::start(target).await;
    let proxied = database.replace(authority, &format!("127.0.0.1:{}", proxy.port));
    let s = Stage::builder(test)
        .nats(nats)
        .sim(json!({"receipts": false, "resp_delay_ms": 2}))
        .credentials(json!({"window": 20}))
        .env(&[("DATABASE_URL", &proxied)])
        .start()
        .await;

    // 100 before the cut, ten a second through a 30 s outage, 100 after it.
    let (before, during, after) = (100, 300, 100);
    let total = before + during + after;
    let mut ids = Vec::with_capacity(total);
    for n in 0..before {
        ids.push(publish(&s.nats, &s.op, &format!("9373{n:07}"), "outage test").await);
        if n % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
    proxy.cut();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for n in before..before + during {
        tick.tick().await;
        ids.push(publish(&s.nats, &s.op, &format!("9373{n:07}"), "outage test").await);
    }
    proxy.restore();
    for n in before + during..total {
        ids.push(publish(&s.nats, &s.op, &format!("9373{n:07}"), "outage test").await);
    }
    crate::support::wait_rows(&ids, total).await;
    s.nats.wait_drained(&s.op, T).await;

    let submits = s.sim.received("submit_sm").await;
    let mut per_destination: HashMap<String, usize> = HashMap::new();
    for pdu in &submits {
        *per_destination
            .entry(pdu["destination_addr"].as_str().unwrap_or("").to_owned())
            .or_default() += 1;
    }
    let twice: Vec<_> = per_destination.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(submits.len(), total, "0 extra submit_sm");
    let rejected = dlrs.drain(Duration::from_millis(500)).await;
    assert!(rejected.is_empty(), "false REJECTED events: {rejected:?}");
    assert!(dlq.drain(Duration::from_millis(200)).await.is_empty());
    // One line per outage, not per message.
    let warned = s.service
        .logs_with(
            "correlation row not written; retrying (accepted segments are never resent), intake paused",
        )
        .len();
    assert!((1..=3).contains(&warned), "{warned} outage lines");
    assert!(
        s.service
            .metrics()
            .await
            .contains("smpp_connector_correlation_row_retries_total")
    );
}

/// NATS killed and started again (its JetStream store kept): the outage is one WARN and a
/// `backend_errors{backend="nats"}`, the reconnect one INFO; messages published after it
/// are sent without waiting for AckWait or a stale pull (an idle bind's long polls were
/// lost on the server with the connection).
#[tokio::test]
async fn a_nats_restart_is_logged_once_and_sending_resumes() {
    let test = "recovery_nats";
    let mut s = Stage::builder(test)
        .sim(json!({"receipts": false}))
        .start()
        .await;
    let before = publish(&s.nats, &s.op, "93741300001", "before the outage").await;
    crate::support::wait_rows(std::slice::from_ref(&before), 1).await;

    s.nats.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.nats.restart().await;
    let resumed = Instant::now();
    // The test's own client reconnects too; publish once it can.
    let after = loop {
        match tokio::time::timeout(
            Duration::from_secs(2),
            publish(&s.nats, &s.op, "93741300002", "after the outage"),
        )
        .await
        {
            Ok(id) => break id,
            Err(_) => assert!(resumed.elapsed() < T, "could not publish after the restart"),
        }
    };
    crate::support::wait_rows(std::slice::from_ref(&after), 1).await;
    let took = resumed.elapsed();
    eprintln!("NATS restart -> the next message correlated in {took:?}");
    assert!(
        took < Duration::from_secs(8),
        "sending resumed only after {took:?} (AckWait is 10 s, a long poll 5 s)"
    );
    assert_eq!(
        s.service
            .logs_with("nats connection lost; reconnecting")
            .len(),
        1,
        "one WARN for the outage"
    );
    assert!(!s.service.logs_with("nats connected").is_empty());
    let metrics = s.service.metrics().await;
    assert!(
        metric(
            &metrics,
            "smpp_connector_backend_errors_total{backend=\"nats\"}"
        )
        .iter()
        .sum::<f64>()
            >= 1.0
    );
    assert_eq!(s.sim.received("submit_sm").await.len(), 2, "each sent once");
}
