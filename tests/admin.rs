//! Admin API: bearer token, and restarting one bind while another keeps sending.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Nats, Stage, correlation_rows, eventually};

const T: Duration = Duration::from_secs(60);

#[tokio::test]
async fn admin_endpoints_require_the_token() {
    let s = Stage::builder("admin_token").start().await;

    for token in [None, Some("not-the-token-at-all")] {
        assert_eq!(s.service.admin_get("/admin/binds", token).await.0, 401);
        let restart = format!("/admin/binds/{}/trx/0/restart", s.op);
        assert_eq!(s.service.admin_post(&restart, token).await.0, 401);
    }
    // Nothing was restarted by the refused calls.
    assert_eq!(s.sim.stats().await["binds"], 1);
    let (status, body) = s
        .service
        .admin_get("/admin/binds", Some(&s.service.token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["binds"][0]["operatorId"], s.op.as_str());
    assert_eq!(body["binds"][0]["window"], 50);
    let (status, _) = s
        .service
        .admin_post(
            &format!("/admin/binds/{}/trx/9/restart", s.op),
            Some(&s.service.token),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn restarting_bind_0_loses_nothing_and_bind_1_never_notices() {
    let nats = Nats::start("admin_restart").await;
    let mut health = nats.subscribe("operator.health").await;
    // A little latency at the SMSC keeps submits in flight during the restart.
    let s = Stage::builder("admin_restart")
        .nats(nats)
        .sim(json!({"receipts": false, "resp_delay_ms": 20}))
        .credentials(json!({"bindCount": 2, "window": 20}))
        .bound(2)
        .start()
        .await;
    health.drain(Duration::from_millis(200)).await;
    health.seen.clear();

    let total = 400usize;
    let mut ids = Vec::with_capacity(total);
    let mut restarted = false;
    for n in 0..total {
        ids.push(
            s.nats
                .send_command(&s.op, &format!("9370{n:07}"), "restart test")
                .await,
        );
        if n == total / 4 {
            let (status, body) = s
                .service
                .admin_post(
                    &format!("/admin/binds/{}/trx/0/restart", s.op),
                    Some(&s.service.token),
                )
                .await;
            assert_eq!(status, 202, "{body}");
            restarted = true;
        }
        if n % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert!(restarted);
    // Zero loss: every message has its row and the stream is empty.
    eventually(T, "all messages correlated", || {
        let ids = ids.clone();
        async move { (correlation_rows(&ids).await.len() == total).then_some(()) }
    })
    .await;
    s.nats.wait_drained(&s.op, T).await;
    health.drain(Duration::from_millis(300)).await;
    let of =
        |bind: u64| -> Vec<&Value> { health.seen.iter().filter(|e| e["bindId"] == bind).collect() };
    // Bind 0 went through UNBINDING and came back BOUND; bind 1 published nothing.
    let bind0: Vec<&str> = of(0)
        .iter()
        .filter_map(|e| e["bindState"].as_str())
        .collect();
    assert_eq!(bind0.first(), Some(&"UNBINDING"), "{bind0:?}");
    assert_eq!(bind0.last(), Some(&"BOUND"), "{bind0:?}");
    assert!(of(0).iter().any(|e| e["reason"] == "admin_restart"));
    assert!(of(1).is_empty(), "bind 1 noticed: {:?}", of(1));
    // The SMSC saw a clean unbind from bind 0 and nothing was sent twice.
    assert_eq!(s.sim.received("unbind").await.len(), 1);
    let submits = s.sim.received("submit_sm").await;
    assert_eq!(submits.len(), total, "every message sent exactly once");
    assert!(
        s.service
            .metrics()
            .await
            .contains("smpp_connector_dispatch_total")
    );
}
