//! The driver contract, followed as the service's `BindActor` follows it: bytes and
//! events polled out, PDUs and session events handed in, nothing else touched.

use super::*;
use crate::dispatch::ledger::Output;
use crate::protocol::pdu::SubmitSmResp;

/// What one round of the driver loop saw.
#[derive(Debug, Default)]
struct Round {
    /// Byte chunks written, by session.
    written: Vec<usize>,
    reported: Vec<Event<SegmentToken>>,
    follow_ups: Vec<FollowUp>,
    events: Vec<BindEvent>,
}

/// One driver round: write every byte, report each session event and hand it back,
/// then take the core's own events — until all is quiet.
fn round(core: &mut Core, now: Instant) -> Round {
    let mut seen = Round::default();
    loop {
        while let Some((link, _bytes)) = core.poll_transmit() {
            seen.written.push(link);
        }
        let Some((link, event)) = core.poll_session_event() else {
            break;
        };
        // A report may read the message as it is before the event changes it.
        seen.reported.push(event.clone());
        seen.follow_ups
            .push(core.handle_session_event(link, event, now));
    }
    while let Some(event) = core.poll_event() {
        seen.events.push(event);
    }
    seen
}

fn submit_resp(sequence_number: u32, status: CommandStatus, id: &str) -> Inbound {
    Inbound::Frame(Frame::with_status(
        sequence_number,
        status,
        Pdu::SubmitSmResp(SubmitSmResp {
            message_id: Some(id.into()),
        }),
    ))
}

fn outputs(core: &mut Core) -> (usize, Vec<u32>) {
    let mut records = 0;
    let mut settled = Vec::new();
    while let Some(output) = core.ledger.poll_output() {
        match output {
            Output::Record(_) => records += 1,
            Output::Settle(settlement) => settled.push(settlement.handle),
        }
    }
    (records, settled)
}

#[test]
fn a_connected_core_binds_submits_and_records_through_the_contract() {
    let t0 = Instant::now();
    let mut core = connected(BindMode::Transceiver, t0, "", SequenceNumbers::new());
    let first = round(&mut core, t0);
    assert_eq!(first.written, vec![0], "the bind request");
    assert!(first.events.is_empty());

    core.handle_inbound(
        0,
        Inbound::Frame(Frame::new(
            1,
            Pdu::bind_resp(BindMode::Transceiver, BindResponse::default()),
        )),
        t0,
    );
    let bound = round(&mut core, t0);
    assert!(matches!(bound.follow_ups[..], [FollowUp::BindBound]));
    assert_eq!(
        bound.events,
        vec![BindEvent::StateChanged(StateChange {
            from: BindState::Disconnected,
            to: BindState::Bound,
            reason: None,
        })]
    );
    assert!(core.flow().is_some(), "bound: the flow controller runs");

    admit(&mut core, 7, 2);
    assert_eq!(core.submit_queued(t0), 2);
    assert_eq!(round(&mut core, t0).written, vec![0, 0]);
    assert_eq!(core.in_flight(), 2);

    // Sequence 1 was the bind; the parts went out as 2 and 3.
    core.handle_inbound(0, submit_resp(2, CommandStatus::ESME_ROK, "a"), t0);
    core.handle_inbound(0, submit_resp(3, CommandStatus::ESME_ROK, "b"), t0);
    let answered = round(&mut core, t0);
    assert_eq!(answered.reported.len(), 2);
    assert!(
        answered
            .reported
            .iter()
            .all(|e| submit_outcome(e) == Some(crate::protocol::taxonomy::SubmitOutcome::Accepted))
    );
    assert_eq!(core.in_flight(), 0);
    assert_eq!(
        outputs(&mut core),
        (2, vec![]),
        "a row per part, not ACKed yet"
    );
}

#[test]
fn a_full_smsc_queue_drains_the_bind_and_gives_back_what_waits() {
    let t0 = Instant::now();
    // The credentials' window is 10: twelve messages, ten go out, two wait.
    let mut core = bound(t0);
    for handle in 0..12 {
        admit(&mut core, handle, 1);
    }
    assert_eq!(core.submit_queued(t0), 10);
    round(&mut core, t0);
    assert_eq!(core.ledger.queued(), 2);

    core.handle_inbound(0, submit_resp(2, CommandStatus::ESME_RMSGQFUL, ""), t0);
    let seen = round(&mut core, t0);
    assert!(
        seen.events.iter().any(|e| matches!(
            e,
            BindEvent::StateChanged(StateChange {
                to: BindState::Draining,
                ..
            })
        )),
        "{:?}",
        seen.events
    );
    assert_eq!(core.state(), BindState::Draining);
    assert_eq!(
        core.ledger.queued(),
        0,
        "what waited went back to the stream"
    );
    let (_, settled) = outputs(&mut core);
    assert!(
        settled.contains(&10) && settled.contains(&11),
        "{settled:?}"
    );
    assert_eq!(core.submit_queued(t0), 0, "DRAINING submits nothing");
}

#[test]
fn a_segment_that_cannot_be_encoded_is_reported_with_its_message_and_rejected() {
    let t0 = Instant::now();
    let mut core = bound(t0);
    core.ledger.admit(Admission {
        handle: 1,
        message_id: "m-long".into(),
        deliveries: 1,
        priority: 2,
        concat_ref: None,
        segments: vec![SmBody {
            short_message: vec![b'x'; 300],
            ..SmBody::default()
        }],
        already_recorded: Vec::new(),
    });
    assert_eq!(core.submit_queued(t0), 0);
    let seen = round(&mut core, t0);
    assert!(
        matches!(&seen.events[..], [BindEvent::Unencodable { message_id, .. }] if message_id == "m-long"),
        "{:?}",
        seen.events
    );
    assert_eq!(outputs(&mut core).1, vec![1], "rejected, settled");
}

#[test]
fn the_window_setting_changes_the_flow_and_the_session_window_together() {
    let t0 = Instant::now();
    let mut core = bound(t0);
    assert_eq!(core.apply_window_setting(Some(50)), Some((10, 50)));
    assert_eq!(
        core.links()[0].session.window_size(),
        50,
        "the session's hard cap"
    );
    assert_eq!(core.flow().unwrap().configured_window(), 50);
    assert_eq!(core.apply_window_setting(Some(50)), None, "unchanged");
    assert_eq!(
        core.apply_window_setting(None),
        Some((50, 10)),
        "no row: the credentials' window"
    );
    assert_eq!(core.apply_window_setting(Some(0)), None, "0 is no setting");
    assert_eq!(idle(0).apply_window_setting(Some(5)), None, "not bound");
}

#[test]
fn a_peer_unbind_closes_the_session_and_the_core_judges_it() {
    let t0 = Instant::now();
    let mut core = bound(t0);
    core.handle_inbound(0, Inbound::Frame(Frame::new(9, Pdu::Unbind)), t0);
    let seen = round(&mut core, t0);
    assert!(!seen.written.is_empty(), "the unbind_resp");
    assert!(
        matches!(
            seen.follow_ups.last(),
            Some(FollowUp::Closed {
                verdict: CloseVerdict::Failed,
                mode: BindMode::Transceiver,
                ..
            })
        ),
        "{:?}",
        seen.follow_ups
    );
}

#[test]
fn once_the_bind_is_down_the_flow_controller_decides_nothing_more() {
    let t0 = Instant::now();
    let mut core = bound(t0);
    for handle in 0..3 {
        admit(&mut core, handle, 1);
    }
    core.submit_queued(t0);
    round(&mut core, t0);
    core.handle_inbound(0, submit_resp(2, CommandStatus::ESME_RMSGQFUL, ""), t0);
    // The driver goes down before it polls the core's events (a write failed, say).
    let (from, to) = core
        .set_state(BindState::Disconnected, Some("write failed".into()))
        .map(|c| (c.from, c.to))
        .unwrap();
    assert_eq!((from, to), (BindState::Bound, BindState::Disconnected));
    let seen = round(&mut core, t0);
    assert!(
        seen.events.is_empty(),
        "no DRAINING after DISCONNECTED: {:?}",
        seen.events
    );
    assert_eq!(core.state(), BindState::Disconnected);
}

#[test]
fn housekeeping_reports_new_sequence_skips_once() {
    let t0 = Instant::now();
    let mut core = bound(t0);
    let first = core.housekeeping(t0).unwrap();
    assert_eq!(first.new_sequence_skips, 0);
    assert_eq!(first.window, Some(10));
    assert!(idle(0).housekeeping(t0).is_none(), "nothing while down");
}

#[test]
fn the_timer_reaches_sessions_ledger_and_flow() {
    let t0 = Instant::now();
    let mut core = bound(t0);
    admit(&mut core, 1, 1);
    core.submit_queued(t0);
    round(&mut core, t0);
    let deadline = core.poll_timeout(t0).expect("a response deadline");
    core.handle_timeout(deadline + Duration::from_secs(60));
    let seen = round(&mut core, deadline);
    assert!(
        seen.reported.iter().any(|e| matches!(
            e,
            Event::SubmitFailed {
                reason: crate::protocol::session::SubmitFailure::TimedOut,
                ..
            }
        )),
        "a submit timed out (reported): {:?}",
        seen.reported
    );
    assert_eq!(core.in_flight(), 0);
}

#[test]
fn a_pull_and_a_grant_are_polled_once_until_they_are_answered() {
    let t0 = Instant::now();
    let mut core = bound_with(BindMode::Transceiver, t0, r#", "tpsLimit": 50"#);
    assert_eq!(
        core.poll_pull(t0, &[0, 1, 2, 3]),
        None,
        "no TPS tokens yet: nothing to pull for"
    );
    let request = core.poll_grant(t0).expect("tokens wanted");
    assert_eq!((request.limit, request.live_binds), (50, 2));
    assert_eq!(core.poll_grant(t0), None, "one request at a time");
    core.grant_answered(t0, Some((request.want, Duration::from_secs(1))));

    let plan = core.poll_pull(t0, &[0, 1, 2, 3]).expect("tokens: a pull");
    assert!(plan.room > 0 && !plan.skip.contains(&true));
    assert_eq!(
        core.poll_pull(t0, &[0, 1, 2, 3]),
        None,
        "one pull at a time"
    );
    assert_eq!(core.pull_finished(t0, &[], false), None);
    assert!(core.poll_pull(t0, &[0, 1, 2, 3]).is_some(), "the next one");
}
