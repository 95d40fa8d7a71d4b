//! Faults the service must take calmly (issue 11, defects found by a fault run): each
//! became a test here before it was fixed.

use std::time::Duration;

use serde_json::json;

use crate::support::sim::credentials;
use crate::support::{Nats, Oms, Service, Sim, correlation_rows, eventually, unique};

const T: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_connection_reset_is_a_lost_connection_and_its_in_flight_submits_are_counted() {
    let test = "faults_reset";
    let op = format!("op{}", unique());
    let nats = Nats::start(test).await;
    // Answers take 2 s, so the submits are in flight when the SMSC resets the connection.
    let sim = Sim::start(
        test,
        json!({"receipts": false, "resp_delay_ms": 2000, "reset_on_close": true}),
    );
    let oms = Oms::start(test, credentials(&op, sim.smpp_port, json!({})));
    let service = Service::start(test, &nats, &oms, &op, &[]).await;
    service.wait_bound(1).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            nats.send_command(&op, &format!("+9370400{n:04}"), "Reset test")
                .await,
        );
    }
    sim.received_at_least("submit_sm", 5).await;
    // The SMSC resets the connection (RST), then answers at once again.
    sim.behaviour(json!({"resp_delay_ms": 0})).await;
    sim.disconnect().await;

    eventually(T, "every message recorded after the reconnect", || {
        let ids = ids.clone();
        async move { (correlation_rows(&ids).await.len() == 5).then_some(()) }
    })
    .await;
    nats.wait_drained(&op, T).await;
    let malformed = service
        .metric_sum("smpp_connector_malformed_pdus_total", "")
        .await;
    assert_eq!(malformed, 0.0, "a reset is not a malformed PDU");
    assert!(
        service
            .logs_with("unrecoverable framing error from SMSC; reconnecting")
            .is_empty(),
        "a reset is not a framing error"
    );
    let lost = service.logs_with("connection to SMSC lost; reconnecting");
    assert_eq!(lost.len(), 1, "one line for the reset: {lost:?}");
    assert_eq!(lost[0]["level"], "WARN");
    assert_eq!(
        service
            .metric_sum("smpp_connector_possible_duplicate_submits_total", "")
            .await,
        5.0,
        "the five submits in flight at the reset may have reached the SMSC"
    );
}
