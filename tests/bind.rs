//! Binding: BOUND and its health event, the TX + RX fallback, enquire_link timeouts,
//! reconnect backoff, wrong credentials.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::sim::{PASSWORD, credentials};
use crate::support::{Nats, Stage, eventually, forbid_in_logs, schema};

const T: Duration = Duration::from_secs(30);

fn health_of<'a>(operator: &'a str, state: &'static str) -> impl Fn(&Value) -> bool + 'a {
    move |e: &Value| e["operatorId"] == operator && e["state"] == state
}

#[tokio::test]
async fn binds_as_transceiver_and_publishes_bound() {
    let nats = Nats::start("bind_bound").await;
    let mut health = nats.subscribe("operator.health").await;
    forbid_in_logs(&[PASSWORD]);
    let s = Stage::builder("bind_bound")
        .nats(nats)
        .bound(0)
        .start()
        .await;

    // /health answers from the start; /ready once a bind is BOUND.
    assert_eq!(
        s.service.get(&format!("{}/health", s.service.http)).await.0,
        200
    );
    let bound = health
        .wait_for(T, "BOUND health event", health_of(&s.op, "BOUND"))
        .await;
    schema::assert_valid("operator-health-event.v1.schema.json", &bound);
    assert_eq!(bound["bindState"], "BOUND");
    assert_eq!(bound["operatorState"], "BOUND");
    assert_eq!(bound["boundBinds"], 1);
    assert_eq!(bound["totalBinds"], 1);
    assert_eq!(bound["direction"], "trx");
    // CONNECTING came first, and every event validates.
    let connecting = health
        .seen
        .iter()
        .position(|e| e["bindState"] == "CONNECTING");
    let bound_at = health.seen.iter().position(|e| e["bindState"] == "BOUND");
    assert!(
        connecting < bound_at,
        "CONNECTING before BOUND: {:?}",
        health.seen
    );
    for event in &health.seen {
        schema::assert_valid("operator-health-event.v1.schema.json", event);
    }
    eventually(T, "/ready 200", || async {
        (s.service.ready().await == 200).then_some(())
    })
    .await;

    // What went over TCP: bind_transceiver with interface_version 0x34 and the right id.
    let binds = s.sim.received("bind_transceiver").await;
    assert_eq!(binds.len(), 1, "{binds:?}");
    assert_eq!(binds[0]["interface_version"], 0x34);
    assert_eq!(binds[0]["system_id"], "smppclient1");
    assert_eq!(binds[0]["password_ok"], true);
    // Credentials were fetched from OMS for the bind.
    assert!(s.oms.requests().await[&s.op].as_u64().unwrap_or(0) >= 1);
    s.service.assert_no_secrets(&[PASSWORD]);
}

#[tokio::test]
async fn falls_back_to_transmitter_and_receiver_when_transceiver_is_refused() {
    let nats = Nats::start("bind_fallback").await;
    let mut health = nats.subscribe("operator.health").await;
    let s = Stage::builder("bind_fallback")
        .nats(nats)
        .sim(json!({"reject_bind_transceiver": true}))
        .bound(0)
        .start()
        .await;

    health
        .wait_for(T, "BOUND after fallback", health_of(&s.op, "BOUND"))
        .await;
    let stats = s.sim.stats().await;
    assert_eq!(stats["bound"]["tx"], 1, "{stats}");
    assert_eq!(stats["bound"]["rx"], 1, "{stats}");
    assert_eq!(stats["bound"]["trx"], 0, "{stats}");
    assert_eq!(s.sim.received("bind_transceiver").await.len(), 1);
    assert_eq!(s.sim.received("bind_transmitter").await.len(), 1);
    assert_eq!(s.sim.received("bind_receiver").await.len(), 1);
    let (_, binds) = s
        .service
        .admin_get("/admin/binds", Some(&s.service.token))
        .await;
    assert_eq!(binds["binds"][0]["sessions"], json!(["tx", "rx"]));
    // The fallback is not a failure: no backoff was scheduled.
    assert!(s.service.logs_with("reconnect scheduled").is_empty());
}

#[tokio::test]
async fn unanswered_enquire_link_unbinds_then_reconnects() {
    let nats = Nats::start("bind_enquire").await;
    let mut health = nats.subscribe("operator.health").await;
    let s = Stage::builder("bind_enquire")
        .nats(nats)
        .bound(0)
        .start()
        .await;
    health
        .wait_for(T, "first BOUND", health_of(&s.op, "BOUND"))
        .await;

    s.sim.behaviour(json!({"answer_enquire_link": false})).await;
    let unbound = health
        .wait_for(T, "UNBOUND after enquire_link timeout", |e| {
            e["operatorId"] == s.op
                && e["state"] == "UNBOUND"
                && e["reason"] == "enquire_link_timeout"
        })
        .await;
    schema::assert_valid("operator-health-event.v1.schema.json", &unbound);
    assert_eq!(unbound["operatorState"], "UNBOUND");

    s.sim.behaviour(json!({"answer_enquire_link": true})).await;
    health.seen.clear();
    health
        .wait_for(T, "BOUND after reconnect", |e| {
            e["operatorId"] == s.op && e["state"] == "BOUND"
        })
        .await;
    s.sim.received_at_least("enquire_link", 2).await;
    let metrics = s.service.metrics().await;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("smpp_connector_enquire_link_timeout_total") && !l.ends_with(" 0")
        ),
        "enquire_link timeout counted"
    );
}

#[tokio::test]
async fn reconnect_backoff_doubles_to_the_cap_and_bind_failures_are_clear() {
    let wrong = "wr0ngPw!";
    forbid_in_logs(&[wrong, PASSWORD]);
    let mut s = Stage::builder("bind_backoff")
        .credentials(json!({"password": wrong}))
        .bound(0)
        .start()
        .await;

    // Base 100 ms, cap 1200 ms (scaled 5 s / 60 s): attempts 1..6.
    let delays = eventually(Duration::from_secs(60), "six reconnect delays", || {
        let lines = s.service.logs_with("reconnect scheduled");
        async move {
            (lines.len() >= 6).then(|| {
                lines
                    .iter()
                    .take(6)
                    .map(|l| {
                        (
                            l["attempt"].as_u64().unwrap_or(0),
                            l["delay_ms"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect::<Vec<_>>()
            })
        }
    })
    .await;
    assert_eq!(
        delays,
        vec![(1, 100), (2, 200), (3, 400), (4, 800), (5, 1200), (6, 1200)]
    );
    // A clear error naming the status, no crash, the password nowhere in the logs.
    let rejected = s
        .service
        .logs_with("bind rejected by SMSC (check the credentials in OMS)");
    assert!(!rejected.is_empty());
    assert_eq!(rejected[0]["esme_status"], "ESME_RINVPASWD");
    assert!(s.service.is_running());
    assert_eq!(
        s.service.get(&format!("{}/health", s.service.http)).await.0,
        200
    );
    assert_eq!(s.service.ready().await, 503);
    s.service.assert_no_secrets(&[wrong, PASSWORD]);

    // Credentials rotated in OMS: fetched again on the next attempt, bound, attempts reset.
    s.oms.set(credentials(&s.op, s.sim.smpp_port, json!({})));
    s.service.wait_bound(1).await;
    let (_, binds) = s
        .service
        .admin_get("/admin/binds", Some(&s.service.token))
        .await;
    assert_eq!(binds["binds"][0]["reconnectAttempts"], 0);
    assert!(binds["binds"][0]["lastError"].is_null());
    assert!(
        s.service.stop().is_some_and(|s| s.success()),
        "clean exit on SIGTERM"
    );
}
