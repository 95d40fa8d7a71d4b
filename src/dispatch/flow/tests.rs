// Tests take their instants from the clock; the code under test never does.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::protocol::taxonomy::{classify_generic_nack, classify_submit, classify_timeout};

const S: Duration = Duration::from_secs(1);

fn events(f: &mut FlowController) -> Vec<FlowEvent> {
    std::iter::from_fn(|| f.poll_event()).collect()
}

fn outcome(status: CommandStatus) -> SubmitOutcome {
    classify_submit(status)
}

fn degraded(events: &[FlowEvent]) -> Vec<DegradedCause> {
    events
        .iter()
        .filter_map(|e| match e {
            FlowEvent::Degraded { cause, .. } => Some(*cause),
            _ => None,
        })
        .collect()
}

#[test]
fn bound_allows_the_window_minus_in_flight() {
    let t0 = Instant::now();
    let f = FlowController::new(FlowConfig::default(), 100, false);
    assert_eq!(f.bind_state(), BindState::Bound);
    assert_eq!(f.submit_allowance(t0, 0), 100);
    assert_eq!(f.submit_allowance(t0, 60), 40);
    assert_eq!(f.submit_allowance(t0, 120), 0);
    assert_eq!(f.wanted_grant(t0, 0, 10, 50), 0, "no limit, no grant");
}

#[test]
fn throttling_halves_to_ten_and_three_in_a_minute_degrade_once() {
    let t0 = Instant::now();
    let mut f = FlowController::new(FlowConfig::default(), 100, false);
    let throttled = outcome(CommandStatus::ESME_RTHROTTLED);
    f.handle_outcome(t0, &throttled);
    assert_eq!(f.window_size(), 50);
    f.handle_outcome(t0 + S, &throttled);
    assert_eq!(f.window_size(), 25);
    assert!(degraded(&events(&mut f)).is_empty());
    f.handle_outcome(t0 + 2 * S, &throttled);
    assert_eq!(f.window_size(), 12);
    let e = events(&mut f);
    assert_eq!(degraded(&e), vec![DegradedCause::Throttled]);
    assert!(e.contains(&FlowEvent::Degraded {
        cause: DegradedCause::Throttled,
        window: 12,
        count_in_last_minute: 3
    }));
    f.handle_outcome(t0 + 3 * S, &throttled);
    assert_eq!(f.window_size(), 10, "floor");
    assert!(degraded(&events(&mut f)).is_empty(), "once per threshold");
    // Bind state is not changed by throttling.
    assert_eq!(f.bind_state(), BindState::Bound);
}

#[test]
fn window_grows_five_per_period_back_to_the_maximum() {
    let t0 = Instant::now();
    let mut f = FlowController::new(FlowConfig::default(), 20, false);
    f.handle_outcome(t0, &outcome(CommandStatus::ESME_RTHROTTLED));
    assert_eq!(f.window_size(), 10);
    f.handle_timeout(t0 + 59 * S, 0);
    assert_eq!(f.window_size(), 10);
    f.handle_timeout(t0 + 60 * S, 0);
    assert_eq!(f.window_size(), 15);
    f.handle_timeout(t0 + 120 * S, 0);
    assert_eq!(f.window_size(), 20);
    f.handle_timeout(t0 + 600 * S, 0);
    assert_eq!(f.window_size(), 20);
    assert!(events(&mut f).contains(&FlowEvent::WindowChanged { size: 20 }));
}

#[test]
fn configured_window_changes_at_runtime() {
    let t0 = Instant::now();
    let mut f = FlowController::new(FlowConfig::default(), 100, false);
    f.set_configured_window(40);
    assert_eq!(f.window_size(), 40);
    assert_eq!(f.configured_window(), 40);
    f.handle_outcome(t0, &outcome(CommandStatus::ESME_RTHROTTLED));
    assert_eq!(f.window_size(), 20);
    f.set_configured_window(200);
    assert_eq!(f.window_size(), 20, "a throttled window keeps its size");
    f.set_configured_window(15);
    assert_eq!(f.window_size(), 15, "capped by the new maximum");
}

#[test]
fn three_submit_failures_half_close_and_a_probe_restores_bound() {
    let t0 = Instant::now();
    let mut f = FlowController::new(FlowConfig::default(), 100, false);
    let fail = outcome(CommandStatus::ESME_RSUBMITFAIL);
    f.handle_outcome(t0, &fail);
    f.handle_outcome(t0, &fail);
    assert_eq!(f.bind_state(), BindState::Bound);
    f.handle_outcome(t0, &fail);
    assert_eq!(f.bind_state(), BindState::HalfClosedTx);
    let e = events(&mut f);
    assert_eq!(degraded(&e), vec![DegradedCause::HalfClosedTx]);
    assert!(e.contains(&FlowEvent::PhaseChanged {
        from: BindState::Bound,
        to: BindState::HalfClosedTx,
        cause: "submit_failures"
    }));
    // No submits until the probe is due, then exactly one, and only with nothing in flight.
    assert_eq!(f.submit_allowance(t0 + 59 * S, 0), 0);
    assert_eq!(f.poll_timeout(), Some(t0 + 60 * S));
    assert_eq!(f.submit_allowance(t0 + 60 * S, 1), 0);
    assert_eq!(f.submit_allowance(t0 + 60 * S, 0), 1);
    f.on_submitted(t0 + 60 * S);
    assert_eq!(f.submit_allowance(t0 + 61 * S, 0), 0, "one probe at a time");
    // The probe fails: next one a period later.
    f.handle_outcome(t0 + 61 * S, &fail);
    assert_eq!(f.bind_state(), BindState::HalfClosedTx);
    assert_eq!(f.submit_allowance(t0 + 100 * S, 0), 0);
    assert_eq!(f.submit_allowance(t0 + 121 * S, 0), 1);
    f.on_submitted(t0 + 121 * S);
    f.handle_outcome(t0 + 121 * S, &SubmitOutcome::Accepted);
    assert_eq!(f.bind_state(), BindState::Bound);
    assert!(events(&mut f).contains(&FlowEvent::PhaseChanged {
        from: BindState::HalfClosedTx,
        to: BindState::Bound,
        cause: "probe_accepted"
    }));
    assert_eq!(f.submit_allowance(t0 + 121 * S, 0), 100);
}

#[test]
fn a_success_between_failures_resets_the_streak() {
    let t0 = Instant::now();
    let mut f = FlowController::new(FlowConfig::default(), 100, false);
    let fail = outcome(CommandStatus::ESME_RSUBMITFAIL);
    f.handle_outcome(t0, &fail);
    f.handle_outcome(t0, &fail);
    f.handle_outcome(t0, &SubmitOutcome::Accepted);
    f.handle_outcome(t0, &fail);
    f.handle_outcome(t0, &fail);
    assert_eq!(f.bind_state(), BindState::Bound);
    f.handle_outcome(t0, &fail);
    assert_eq!(f.bind_state(), BindState::HalfClosedTx);
}

#[test]
fn queue_full_drains_until_nothing_in_flight_and_the_minimum_passed() {
    let t0 = Instant::now();
    let mut f = FlowController::new(FlowConfig::default(), 100, false);
    f.handle_outcome(t0, &outcome(CommandStatus::ESME_RMSGQFUL));
    assert_eq!(f.bind_state(), BindState::Draining);
    assert_eq!(degraded(&events(&mut f)), vec![DegradedCause::Draining]);
    assert_eq!(f.submit_allowance(t0, 0), 0);
    // In flight keeps it draining past the minimum.
    f.handle_timeout(t0 + 31 * S, 3);
    assert_eq!(f.bind_state(), BindState::Draining);
    // A second RMSGQFUL restarts the minimum.
    f.handle_outcome(t0 + 31 * S, &outcome(CommandStatus::ESME_RMSGQFUL));
    assert!(degraded(&events(&mut f)).is_empty(), "already draining");
    f.handle_timeout(t0 + 40 * S, 0);
    assert_eq!(f.bind_state(), BindState::Draining);
    assert_eq!(f.poll_timeout(), Some(t0 + 61 * S));
    assert!((f.drain_seconds(t0 + 40 * S) - 40.0).abs() < 1e-9);
    f.handle_timeout(t0 + 61 * S, 0);
    assert_eq!(f.bind_state(), BindState::Bound);
    assert_eq!(f.drain_seconds(t0 + 61 * S), 0.0);
    assert!(events(&mut f).contains(&FlowEvent::PhaseChanged {
        from: BindState::Draining,
        to: BindState::Bound,
        cause: "drained"
    }));
}

#[test]
fn a_long_drain_alerts_once() {
    let t0 = Instant::now();
    let mut f = FlowController::new(FlowConfig::default(), 100, false);
    f.handle_outcome(t0, &outcome(CommandStatus::ESME_RMSGQFUL));
    events(&mut f);
    f.handle_timeout(t0 + 299 * S, 1);
    assert!(events(&mut f).is_empty());
    f.handle_timeout(t0 + 300 * S, 1);
    assert_eq!(
        events(&mut f),
        vec![FlowEvent::DrainAlert {
            draining_for: 300 * S
        }]
    );
    f.handle_timeout(t0 + 400 * S, 1);
    assert!(events(&mut f).is_empty());
}

#[test]
fn a_broken_session_asks_for_a_reconnect() {
    let t0 = Instant::now();
    let mut f = FlowController::new(FlowConfig::default(), 100, false);
    f.handle_outcome(t0, &classify_generic_nack(CommandStatus::ESME_RINVCMDLEN));
    assert_eq!(
        events(&mut f),
        vec![FlowEvent::Reconnect {
            status: Some(CommandStatus::ESME_RINVCMDLEN)
        }]
    );
    f.handle_outcome(t0, &classify_timeout());
    assert!(
        events(&mut f).is_empty(),
        "a timeout is not the bind's business"
    );
}

#[test]
fn tps_tokens_bound_the_allowance_and_expire() {
    let t0 = Instant::now();
    let mut f = FlowController::new(FlowConfig::default(), 100, true);
    assert_eq!(f.submit_allowance(t0, 0), 0, "no tokens yet");
    assert_eq!(
        f.wanted_grant(t0, 0, 5, 100),
        100,
        "queue + pull, bounded by the window"
    );
    assert_eq!(f.wanted_grant(t0, 90, 5, 100), 10);
    f.add_grant(t0, 10, t0 + S);
    assert_eq!(f.submit_allowance(t0, 0), 10);
    assert_eq!(f.wanted_grant(t0, 0, 5, 5), 0, "enough in hand");
    for _ in 0..4 {
        f.on_submitted(t0);
    }
    assert_eq!(f.submit_allowance(t0, 4), 6);
    assert_eq!(f.poll_timeout(), Some(t0 + S));
    f.handle_timeout(t0 + S, 0);
    assert_eq!(
        f.submit_allowance(t0 + S, 0),
        0,
        "expired with their window"
    );
    f.add_grant(t0 + S, 3, t0 + 2 * S);
    assert_eq!(f.tokens(t0 + S), 3);
}

// ----- properties ---------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    Outcome(u8),
    Submit,
    Grant(u8),
    Advance(u16),
    Configure(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..8).prop_map(Step::Outcome),
        4 => Just(Step::Submit),
        2 => (0u8..50).prop_map(Step::Grant),
        3 => (1u16..20_000).prop_map(Step::Advance),
        1 => (1u8..200).prop_map(Step::Configure),
    ]
}

const STATUSES: [CommandStatus; 8] = [
    CommandStatus::ESME_ROK,
    CommandStatus::ESME_RTHROTTLED,
    CommandStatus::ESME_RSUBMITFAIL,
    CommandStatus::ESME_RSUBMITFAIL,
    CommandStatus::ESME_RMSGQFUL,
    CommandStatus::ESME_RSYSERR,
    CommandStatus::ESME_RINVDSTADR,
    CommandStatus::ESME_ROK,
];

proptest! {
    #[test]
    fn allowance_never_exceeds_window_or_tokens(
        limited in any::<bool>(),
        window in 1usize..300,
        steps in prop::collection::vec(step(), 1..200),
    ) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut in_flight = 0usize;
        let mut f = FlowController::new(FlowConfig::default(), window, limited);
        let mut max = window;
        for step in steps {
            match step {
                Step::Outcome(i) => {
                    if in_flight > 0 {
                        in_flight -= 1;
                        f.handle_outcome(now, &classify_submit(STATUSES[usize::from(i)]));
                    }
                }
                Step::Submit => {
                    if f.submit_allowance(now, in_flight) > 0 {
                        f.on_submitted(now);
                        in_flight += 1;
                    }
                }
                Step::Grant(n) => f.add_grant(now, u32::from(n), now + S),
                Step::Advance(ms) => {
                    now += Duration::from_millis(u64::from(ms));
                    f.handle_timeout(now, in_flight);
                }
                Step::Configure(m) => {
                    max = usize::from(m);
                    f.set_configured_window(max);
                }
            }
            while f.poll_event().is_some() {}
            let allowance = f.submit_allowance(now, in_flight);
            prop_assert!(in_flight + allowance <= f.window_size().max(in_flight));
            prop_assert!(f.window_size() <= max);
            prop_assert!(f.window_size() >= MIN_FLOOR.min(max));
            if limited {
                prop_assert!(allowance <= f.tokens(now) as usize);
            }
            match f.bind_state() {
                BindState::Draining => prop_assert_eq!(allowance, 0),
                BindState::HalfClosedTx => prop_assert!(allowance <= 1),
                _ => {}
            }
        }
    }
}

const MIN_FLOOR: usize = crate::protocol::window::MIN_ADAPTIVE_WINDOW;
