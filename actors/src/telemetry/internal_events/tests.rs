//! The events count what they say, and rate-limit their lines.

use std::time::Instant;

use smpp_connector::config::{BindKey, Direction, OperatorId};
use smpp_connector::events::DispatchDeadLetter;
use smpp_connector::log_budget::{Admit, LogBudget, Outage};
use smpp_connector::protocol::pdu::CommandStatus;
use smpp_connector::protocol::session::{BindState, SubmitFailure};

use super::*;
use crate::telemetry::metric;
use crate::telemetry::test_metrics::TestMetrics;

fn bind_metrics() -> BindMetrics {
    BindMetrics::new(&BindKey::new(
        OperatorId::try_new("op-events").unwrap(),
        Direction::Trx,
        0,
    ))
}

#[test]
fn a_failure_in_an_outage_is_counted_every_time_and_starts_the_outage_once() {
    let metrics = TestMetrics::install();
    let outage = Outage::new();
    for _ in 0..3 {
        emit(BackendFailedInOutage {
            backend: Backend::Postgres,
            outage: &outage,
            what: "lookups failing",
            error: &"refused",
            message_id: Some("m-1"),
        });
    }
    assert_eq!(
        metrics.value(metric::BACKEND_ERRORS, &[("backend", "postgres")]),
        3.0
    );
    assert!(!outage.failed(), "the first failure started it");
    emit(BackendRecovered {
        outage: &outage,
        what: "answered again",
    });
    assert!(
        outage.failed(),
        "recovered: the next failure starts a new outage"
    );
}

#[test]
fn a_bind_event_counts_on_its_bind_s_series() {
    let metrics = TestMetrics::install();
    let mut bind = bind_metrics();
    let labels = [("mno", "op-events"), ("direction", "trx"), ("bindId", "0")];
    StateChanged {
        from: BindState::Bound,
        to: BindState::HalfClosedTx,
        reason: Some("throttled"),
    }
    .emit(&mut bind);
    assert_eq!(metrics.value(metric::BIND_HALF_CLOSED, &labels), 1.0);
    assert_eq!(metrics.value(metric::STATE_CHANGES, &labels), 1.0);
    assert_eq!(metrics.value(metric::BIND_UP, &labels), 1.0);

    SubmitAnswered {
        status: CommandStatus::ESME_RTHROTTLED,
        written_at: Instant::now(),
        outcome: Some(smpp_connector::protocol::taxonomy::classify_submit(
            CommandStatus::ESME_RTHROTTLED,
        )),
        sequence_number: 7,
        message_id: "m-1",
        trace: None,
    }
    .emit(&mut bind);
    let mut status = labels.to_vec();
    status.push(("esme_status", "ESME_RTHROTTLED"));
    assert_eq!(metrics.value(metric::RESPONSE_STATUS, &status), 1.0);

    SubmitFailed {
        reason: SubmitFailure::TimedOut,
        outcome: Some(smpp_connector::protocol::taxonomy::classify_timeout()),
        sequence_number: 8,
        message_id: "m-2",
        trace: None,
    }
    .emit(&mut bind);
    assert_eq!(metrics.value(metric::SUBMIT_TIMEOUTS, &labels), 1.0);
    assert_eq!(metrics.value(metric::POSSIBLE_DUPLICATES, &labels), 1.0);

    Settled::nak(4).emit(&mut bind);
    assert_eq!(
        metrics.value(
            metric::LANE_MESSAGES,
            &[("mno", "op-events"), ("lane", "pinned"), ("outcome", "nak")]
        ),
        1.0
    );
    AttemptCounted {
        attempt: 1,
        enquire_link_timed_out: true,
    }
    .emit(&mut bind);
    assert_eq!(metrics.value(metric::ENQUIRE_LINK_TIMEOUTS, &labels), 1.0);
    assert_eq!(metrics.value(metric::RECONNECT_ATTEMPTS, &labels), 1.0);
}

#[test]
fn dead_letter_lines_stop_at_the_budget_and_the_budget_is_the_event_s() {
    let mut budget = LogBudget::new(2, std::time::Duration::from_secs(60));
    let mut bind = bind_metrics();
    let letter = DispatchDeadLetter::new(
        smpp_connector::dispatch::Rejection {
            reason: smpp_connector::dispatch::DeadLetterReason::InvalidJson,
            detail: "not JSON".into(),
            message_id: None,
            operator_id: None,
        },
        "smpp.op.trx.dispatch".into(),
        1,
        1,
        "2026-12-08T00:00:00.000Z".into(),
    );
    let now = Instant::now();
    for _ in 0..4 {
        DeadLettered {
            letter: &letter,
            trace_id: String::new(),
            budget: &mut budget,
            now,
        }
        .emit(&mut bind);
    }
    assert_eq!(
        budget.admit(now),
        Admit::Quiet,
        "two lines, the flood line, then quiet"
    );
}

/// Statuses an SMSC invents share one `other` series; restart reasons are labelled by
/// their code without the SMSC's detail (issue 21: bounded label values).
#[test]
fn labels_from_the_network_are_a_bounded_set() {
    let metrics = TestMetrics::install();
    let mut bind = bind_metrics();
    for status in [0x0000_1234, 0x0000_5678, 0x7FFF_0000] {
        SubmitAnswered {
            status: CommandStatus(status),
            written_at: Instant::now(),
            outcome: None,
            sequence_number: 1,
            message_id: "m",
            trace: None,
        }
        .emit(&mut bind);
    }
    let labels = [
        ("mno", "op-events"),
        ("direction", "trx"),
        ("bindId", "0"),
        ("esme_status", "other"),
    ];
    assert_eq!(metrics.value(metric::RESPONSE_STATUS, &labels), 3.0);

    let key = BindKey::new(OperatorId::try_new("op-events").unwrap(), Direction::Trx, 0);
    let mut health = crate::telemetry::actor_health::ActorHealth::new("bind", Some(&key));
    health.restarted("bind_failed:0x0000ABCD");
    health.restarted("bind_failed:0x00001234");
    assert_eq!(
        metrics.value(
            metric::ACTOR_RESTARTS,
            &[
                ("actor", "bind"),
                ("bind", &key.to_string()),
                ("reason", "bind_failed")
            ]
        ),
        2.0
    );
}
