//! Bad input from the SMSC or the environment: malformed PDUs, an oversize
//! command_length, a dropped connection, a missing variable.

use std::time::Duration;

use serde_json::json;

use crate::support::{Nats, Stage, correlation_rows, eventually};

const T: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_malformed_pdu_is_nacked_and_the_bind_stays_up() {
    let mut s = Stage::builder("robust_malformed").start().await;

    assert!(s.sim.inject(json!({"kind": "malformed"})).await >= 1);
    assert!(s.sim.inject(json!({"kind": "unknown_command"})).await >= 1);
    eventually(T, "two generic_nack from the ESME", || async {
        (s.sim.received_now("generic_nack").len() == 2).then_some(())
    })
    .await;
    let nacks = s.sim.received("generic_nack").await;
    assert_ne!(nacks[0]["status"], 0);
    assert_eq!(
        nacks[1]["status"], 3,
        "ESME_RINVCMDID for an unknown command"
    );
    // Still the same session: no second bind, and it still sends.
    assert_eq!(s.sim.stats().await["binds"], 1);
    let id = s
        .nats
        .send_command(&s.op, "93700000020", "after the garbage")
        .await;
    eventually(T, "sent after the malformed PDU", || {
        let ids = vec![id.clone()];
        async move { (correlation_rows(&ids).await.len() == 1).then_some(()) }
    })
    .await;
    assert!(s.service.is_running());
    assert!(
        !s.service
            .logs_with("malformed PDU from SMSC answered with generic_nack")
            .is_empty()
    );
}

#[tokio::test]
async fn an_oversize_command_length_reconnects_without_allocating_it() {
    let mut s = Stage::builder("robust_oversize").start().await;
    let rss_before = s.service.rss_kib();

    assert!(s.sim.inject(json!({"kind": "oversize"})).await >= 1);
    eventually(T, "a clean reconnect", || async {
        (s.sim.stats().await["binds"] == 2).then_some(())
    })
    .await;
    s.service.wait_bound(1).await;
    assert!(s.service.is_running());
    let rss_after = s.service.rss_kib();
    // 0xFFFFFFF0 would be 4 GiB: the process stays small.
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    let framing = s
        .service
        .logs_with("unrecoverable framing error from SMSC; reconnecting");
    assert!(
        framing[0]["error"]
            .as_str()
            .unwrap()
            .contains("exceeds the maximum")
    );
}

#[tokio::test]
async fn a_dropped_connection_loses_no_message() {
    let s = Stage::builder("robust_drop")
        .sim(json!({"receipts": false, "resp_delay_ms": 50}))
        .start()
        .await;

    let mut ids = Vec::new();
    for n in 0..60 {
        ids.push(
            s.nats
                .send_command(&s.op, &format!("937000{n:05}"), "drop test")
                .await,
        );
        if n == 30 {
            s.sim.disconnect().await;
        }
    }
    eventually(
        Duration::from_secs(60),
        "every message correlated after the drop",
        || {
            let ids = ids.clone();
            async move { (correlation_rows(&ids).await.len() == ids.len()).then_some(()) }
        },
    )
    .await;
    assert!(s.sim.stats().await["binds"].as_u64().unwrap() >= 2);
}

#[test]
fn a_missing_variable_stops_startup_with_one_line_naming_it() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_smpp-connector"))
        .env_clear()
        .env("MNO_ID", "awcc")
        .env("REDIS_URL", "redis://127.0.0.1:1/0")
        .env("DATABASE_URL", "postgres://u@127.0.0.1:1/x")
        .env("OMS_BASE_URL", "http://127.0.0.1:1")
        .env("ADMIN_TOKEN", "0123456789abcdef")
        .output()
        .expect("run smpp-connector");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("NATS_URL"), "{stderr}");
}

#[tokio::test]
async fn the_smsc_enquire_link_and_unbind_are_answered() {
    let nats = Nats::start("robust_smsc_requests").await;
    let mut health = nats.subscribe("operator.health").await;
    let s = Stage::builder("robust_smsc_requests")
        .nats(nats)
        .start()
        .await;

    assert_eq!(s.sim.inject(json!({"kind": "enquire_link"})).await, 1);
    s.sim.received_at_least("enquire_link_resp", 1).await;
    assert_eq!(
        s.sim.stats().await["binds"],
        1,
        "an enquire_link does not disturb the bind"
    );

    assert_eq!(s.sim.inject(json!({"kind": "unbind"})).await, 1);
    s.sim.received_at_least("unbind_resp", 1).await;
    let unbound = health
        .wait_for(T, "UNBOUND after the SMSC's unbind", |e| {
            e["reason"] == "peer_unbind"
        })
        .await;
    assert_eq!(unbound["state"], "UNBOUND");
    eventually(T, "rebound", || async {
        (s.sim.stats().await["binds"] == 2).then_some(())
    })
    .await;
    s.service.wait_bound(1).await;
}

/// Supervision (issue 20): a panic in one bind actor under load restarts that bind alone.
/// Its supervisor is told from the actor's unwinding and respawns it at once; the other
/// bind's session is never touched; nothing is lost — what the dead actor held was not
/// acknowledged and comes back from JetStream after AckWait.
#[tokio::test]
async fn a_panicked_bind_is_respawned_alone_and_loses_nothing() {
    use crate::support::load::{Load, ids_and_segments};
    let test = "robust_panic";
    let s = Stage::builder(test)
        .sim(json!({"receipts": false, "resp_delay_ms": 5}))
        .credentials(json!({"bindCount": 2, "window": 20}))
        .env(&[("FAULT_INJECTION", "true"), ("NATS_ACK_WAIT_MS", "3000")])
        .bound(2)
        .start()
        .await;
    let token = Some(s.service.token.as_str());
    let changes = |bind: &'static str| {
        let service = &s.service;
        async move {
            service
                .metric_sum(
                    "smpp_connector_bind_state_changes_total",
                    &format!("bindId=\"{bind}\""),
                )
                .await
        }
    };
    let bind0_changes = changes("0").await;

    let load = Load::start(&s.nats, &s.op, 200);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (status, _) = s
        .service
        .admin_post(&format!("/admin/binds/{}/trx/1/panic", s.op), token)
        .await;
    assert_eq!(status, 202);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let sent = load.stop().await;
    let (ids, segments) = ids_and_segments(&sent);
    eventually(
        Duration::from_secs(60),
        "every message has its rows",
        || {
            let ids = ids.clone();
            async move { (correlation_rows(&ids).await.len() == segments).then_some(()) }
        },
    )
    .await;
    s.nats.wait_drained(&s.op, T).await;
    s.service.wait_bound(2).await;

    let crashes = |bind: &'static str| {
        let service = &s.service;
        async move {
            service
                .metric_sum(
                    "smpp_connector_bind_crashes_total",
                    &format!("bindId=\"{bind}\""),
                )
                .await
        }
    };
    assert_eq!(crashes("1").await, 1.0, "bind 1 crashed once");
    assert_eq!(crashes("0").await, 0.0);
    assert_eq!(
        changes("0").await,
        bind0_changes,
        "bind 0 never noticed: no state change"
    );
    assert_eq!(
        s.sim.stats().await["binds"].as_u64(),
        Some(3),
        "two binds, then bind 1 once more"
    );
    assert_eq!(
        s.service
            .logs_with("bind actor ended unexpectedly; respawning it")
            .len(),
        1
    );
    // Without FAULT_INJECTION the drill is refused.
    let plain = s
        .pod("robust_panic_off", &[("BIND_OWNERSHIP", "off")])
        .await;
    let (status, body) = plain
        .admin_post(
            &format!("/admin/binds/{}/trx/0/panic", s.op),
            Some(plain.token.as_str()),
        )
        .await;
    assert_eq!(status, 404, "{body}");
}
