// Tests take their instants from the clock; the code under test never does.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use super::*;
use crate::config::{Direction, Timers};
use crate::dispatch::ledger::Admission;
use crate::dispatch::parse_command;
use crate::protocol::pdu::{BindResponse, CommandStatus, Frame, Inbound, Pdu, SmBody};
use crate::protocol::session::Event;
use crate::protocol::window::SequenceNumbers;

type Core = BindCore<u32, u32>;

const S: Duration = Duration::from_secs(1);

fn settings() -> CoreSettings {
    CoreSettings {
        fetch_batch: 500,
        drain_timeout: 10 * S,
        max_deliver: 10,
        flow: FlowConfig::default(),
        backoff_base: 5 * S,
        backoff_max: 60 * S,
        jitter: 0.0,
    }
}

fn credentials(operator: &str, extra: &str) -> Arc<Credentials> {
    let doc = format!(
        r#"{{"operatorId": "{operator}", "host": "127.0.0.1", "port": 2775,
            "systemId": "sys", "password": "pw", "bindCount": 2, "window": 10{extra}}}"#
    );
    Arc::new(Credentials::from_json(doc.as_bytes(), operator).unwrap())
}

fn key(operator: &str, bind_id: u16) -> BindKey {
    BindKey::new(
        OperatorId::try_new(operator).unwrap(),
        Direction::Trx,
        bind_id,
    )
}

fn idle(bind_id: u16) -> Core {
    idle_as(bind_id)
}

/// [`idle`], with messages on their way in of type `P`.
fn idle_as<P>(bind_id: u16) -> BindCore<u32, P> {
    BindCore::new(
        key("op", bind_id),
        OperatorId::try_new("op").unwrap(),
        settings(),
    )
}

/// A core connected at `t0` with one session of `mode` (not bound yet), numbering from
/// `sequences`, on credentials with `extra` fields.
fn connected(mode: BindMode, t0: Instant, extra: &str, sequences: SequenceNumbers) -> Core {
    connected_as(mode, t0, extra, sequences)
}

fn connected_as<P>(
    mode: BindMode,
    t0: Instant,
    extra: &str,
    sequences: SequenceNumbers,
) -> BindCore<u32, P> {
    let mut core = idle_as(0);
    let credentials = credentials("op", extra);
    let session = Session::try_new(
        credentials.session_config(mode, &Timers::default()),
        sequences,
        t0,
    )
    .unwrap();
    core.connected(
        credentials,
        vec![Link {
            session,
            bound: false,
        }],
    );
    core
}

/// A core with one session of `mode`, bound at `t0`, on credentials with `extra` fields.
fn bound_with(mode: BindMode, t0: Instant, extra: &str) -> Core {
    bound_as(mode, t0, extra)
}

fn bound_as<P>(mode: BindMode, t0: Instant, extra: &str) -> BindCore<u32, P> {
    let mut core = connected_as(mode, t0, extra, SequenceNumbers::new());
    let link = &mut core.links[0];
    let _bind = link.session.poll_transmit();
    link.session.handle_inbound(
        t0,
        Inbound::Frame(Frame::new(1, Pdu::bind_resp(mode, BindResponse::default()))),
    );
    assert!(matches!(
        link.session.poll_event(),
        Some(Event::Bound { .. })
    ));
    assert!(core.session_bound(0));
    core.set_state(BindState::Bound, None);
    core
}

fn bound(t0: Instant) -> Core {
    bound_with(BindMode::Transceiver, t0, "")
}

fn admit(core: &mut Core, handle: u32, segments: usize) {
    core.ledger.admit(Admission {
        handle,
        message_id: format!("m{handle}"),
        deliveries: 1,
        priority: 2,
        concat_ref: None,
        segments: vec![SmBody::default(); segments],
        already_recorded: Vec::new(),
    });
}

#[test]
fn a_bind_takes_messages_only_while_bound_and_open() {
    let t0 = Instant::now();
    let down = idle(0);
    assert!(!down.accepting());
    assert_eq!(
        down.screen_pulled(),
        Screen::Nak {
            delay: Duration::ZERO
        }
    );

    let mut core = bound(t0);
    assert!(core.accepting());
    assert_eq!(core.screen_pulled(), Screen::Take);
    assert!(core.pause_intake(true));
    assert!(!core.pause_intake(true), "no change");
    assert_eq!(
        core.screen_pulled(),
        Screen::Nak {
            delay: Duration::ZERO
        }
    );
    core.pause_intake(false);
    core.set_closing(true);
    assert!(!core.accepting(), "going down");
    core.set_closing(false);
    core.set_state(BindState::Draining, None);
    assert!(!core.accepting(), "DRAINING takes nothing new");
}

/// HALF_CLOSED_TX: one probe at a time; the rest waits in the stream, delivered again
/// after the throttle delay.
#[test]
fn half_closed_lets_one_probe_through() {
    let t0 = Instant::now();
    let mut core = bound(t0);
    core.set_state(BindState::HalfClosedTx, None);
    assert_eq!(core.screen_pulled(), Screen::Take, "the probe");
    admit(&mut core, 1, 1);
    assert_eq!(
        core.screen_pulled(),
        Screen::Nak {
            delay: taxonomy::THROTTLED_NAK_DELAY
        }
    );
}

#[test]
fn a_backup_bind_takes_only_the_primary_s_commands() {
    let backup: Core = BindCore::new(
        key("backup", 0),
        OperatorId::try_new("primary").unwrap(),
        settings(),
    );
    assert!(backup.is_backup());
    let command = |op: &str| {
        parse_command(
            format!(r#"{{"messageId":"m","operatorId":"{op}","to":"123","text":"x"}}"#).as_bytes(),
        )
        .unwrap()
    };
    assert!(backup.check_operator(command("primary")).is_ok());
    let refused = backup.check_operator(command("backup")).unwrap_err();
    assert_eq!(refused.reason, DeadLetterReason::InvalidField);
    assert_eq!(refused.message_id.as_deref(), Some("m"));
    assert!(!idle(0).is_backup());
}

#[test]
fn a_pull_takes_the_free_window_and_skips_listening_lanes() {
    let t0 = Instant::now();
    let lanes = [0, 1, PINNED_SLOT, 2, 3];
    assert_eq!(idle(0).pull_plan(t0, &lanes), None, "not bound");
    let mut core = bound(t0);
    let plan = core.pull_plan(t0, &lanes).unwrap();
    assert_eq!(plan.room, 10, "the credentials' window");
    assert_eq!(plan.skip, [false; SLOTS]);
    assert_eq!(core.pull_plan(t0, &[]), None, "no lanes");
    // Queued messages take room.
    admit(&mut core, 1, 3);
    assert_eq!(core.pull_plan(t0, &lanes).unwrap().room, 7);
    // One pull at a time; listeners stay open after it.
    core.pull_started();
    assert_eq!(core.pull_plan(t0, &lanes), None);
    assert_eq!(core.pull_finished(t0, &[0, 3], false), None);
    let plan = core.pull_plan(t0, &lanes).unwrap();
    assert!(plan.skip[0] && plan.skip[3] && !plan.skip[1]);
    core.listen_ended(0);
    assert!(!core.pull_plan(t0, &lanes).unwrap().skip[0]);
    // Every lane listening: nothing to ask.
    assert_eq!(core.pull_finished(t0, &[0, 1, 2], false), None);
    assert_eq!(core.pull_plan(t0, &[0, 1, 2, 3]), None);
    // A failed pull is retried after PULL_RETRY, not before.
    core.pull_started();
    assert_eq!(core.pull_finished(t0, &[], true), Some(t0 + PULL_RETRY));
    assert_eq!(core.pull_plan(t0, &lanes), None);
    core.pull_retry_due();
    assert!(core.pull_plan(t0, &lanes).is_some());
}

#[test]
fn no_pull_while_a_row_write_fails_or_the_intake_is_drained() {
    let t0 = Instant::now();
    let mut core = bound(t0);
    let lanes = [0, 1, 2, 3];
    core.pause_intake(true);
    assert_eq!(core.pull_plan(t0, &lanes), None);
    core.pause_intake(false);
    admit(&mut core, 1, 1);
    let (segment, _) = core.ledger.next_submit().unwrap();
    core.ledger.handle_outcome(
        segment,
        &taxonomy::classify_submit(CommandStatus::ESME_ROK),
        Some("id".into()),
    );
    core.ledger.handle_record_failed(t0, segment);
    assert_eq!(core.pull_plan(t0, &lanes), None, "stalled");
    core.ledger.handle_recorded(segment);
    assert!(core.pull_plan(t0, &lanes).is_some());
}

#[test]
fn a_long_message_keeps_its_stored_reference_or_gets_a_fresh_one() {
    assert_eq!(
        Core::reference_for(false, Some(7), Some(8)),
        RefChoice::None
    );
    assert_eq!(
        Core::reference_for(true, Some(7), Some(8)),
        RefChoice::Stored(7)
    );
    assert_eq!(
        Core::reference_for(true, None, Some(8)),
        RefChoice::Fresh(8)
    );
    assert_eq!(Core::reference_for(true, None, None), RefChoice::TakeNow);
    let t0 = Instant::now();
    let core = bound(t0);
    assert_eq!(
        core.fresh_reference(None, true, t0, "1"),
        Some(RefSize::Eight)
    );
    assert_eq!(core.fresh_reference(Some(3), true, t0, "1"), None, "stored");
    assert_eq!(core.fresh_reference(None, false, t0, "1"), None, "not long");
    let sixteen = bound_with(BindMode::Transceiver, t0, r#", "concatRefBits": 16"#);
    assert_eq!(
        sixteen.fresh_reference(None, true, t0, "1"),
        Some(RefSize::Sixteen)
    );
    assert_eq!(
        idle(0).fresh_reference(None, true, t0, "1"),
        None,
        "no profile while down"
    );
    // A widened reference is cut as 16-bit on an 8-bit profile; an 8-bit one as 8-bit.
    use crate::encoding::RefBits;
    assert_eq!(
        core.planning_profile(Some(300)).unwrap().ref_bits,
        RefBits::Sixteen
    );
    assert_eq!(
        core.planning_profile(Some(30)).unwrap().ref_bits,
        RefBits::Eight
    );
    assert_eq!(
        core.planning_profile(None).unwrap().ref_bits,
        RefBits::Eight
    );
}

/// US-SC-026 in the core: a destination that got every 8-bit reference within the
/// window gets a widened one, cut as a 16-bit message; another destination does not.
#[test]
fn a_destination_that_got_every_eight_bit_reference_is_widened() {
    let t0 = Instant::now();
    let mut core = bound(t0);
    core.concat.reserved(Some(0));
    for n in 0..256u32 {
        let at = t0 + Duration::from_millis(u64::from(n));
        let size = core.fresh_reference(None, true, at, "A").unwrap();
        assert_eq!(size, RefSize::Eight);
        if core.concat.wants_refill() {
            core.concat.refill_started();
            core.concat.reserved(Some(u64::from(n) * 1_000));
        }
        core.concat.take(size, at, "A");
    }
    let at = t0 + Duration::from_secs(1);
    assert_eq!(
        core.fresh_reference(None, true, at, "A"),
        Some(RefSize::Widened)
    );
    assert_eq!(
        core.fresh_reference(None, true, at, "B"),
        Some(RefSize::Eight)
    );
    assert_eq!(core.reference_size(at, "A"), Some(RefSize::Widened));
    let reference = core.concat.take(RefSize::Widened, at, "A").reference;
    assert_eq!(
        core.planning_profile(Some(reference)).unwrap().ref_bits,
        crate::encoding::RefBits::Sixteen
    );
}

#[test]
fn a_spent_tps_budget_gives_back_unstarted_messages_and_asks_again_later() {
    let t0 = Instant::now();
    let mut core = bound_with(BindMode::Transceiver, t0, r#", "tpsLimit": 5"#);
    admit(&mut core, 1, 1);
    let (limit, want, binds) = core.grant_wanted(t0).unwrap();
    assert_eq!((limit, binds), (5, 2));
    assert!(want > 0);
    core.grant_asked();
    assert_eq!(core.grant_wanted(t0), None, "one request at a time");
    // Nothing granted this window: the queued message goes back, asked again later.
    let after = core.grant_answered(t0, Some((0, 300 * Duration::from_millis(1))));
    assert_eq!(after.released, 1);
    assert_eq!(after.ask_again_in, Some(Duration::from_millis(300)));
    assert_eq!(
        core.grant_wanted(t0),
        None,
        "waiting for the window to turn"
    );
    core.grant_wait_over();
    // A failed request asks again at the next input.
    core.grant_asked();
    assert_eq!(core.grant_answered(t0, None), GrantAfter::default());
    // The wait is clamped to 10 ms – 1 s.
    core.grant_asked();
    let after = core.grant_answered(t0, Some((0, 5 * S)));
    assert_eq!(after.ask_again_in, Some(S));
    // Without a limit nothing is asked.
    assert_eq!(bound(t0).grant_wanted(t0), None);
}

#[test]
fn an_unbind_drains_until_every_message_settled_or_the_deadline() {
    let t0 = Instant::now();
    let mut core = bound(t0);
    admit(&mut core, 1, 1);
    admit(&mut core, 2, 1);
    let (in_flight, _) = core.ledger.next_submit().unwrap();
    assert_eq!(
        core.begin_unbind(AfterUnbind::Reconnect, "restart", t0),
        UnbindStart::Draining
    );
    assert!(!core.accepting());
    // The queued message went back; the one in flight is still held.
    assert_eq!(core.ledger.messages(), 1);
    assert!(!core.unbind_due(t0 + S));
    assert_eq!(
        core.next_deadline(t0),
        Some(t0 + 10 * S).min(core.next_deadline(t0))
    );
    // A shutdown takes over the reason.
    assert_eq!(
        core.begin_unbind(AfterUnbind::Stop, "shutdown", t0),
        UnbindStart::AlreadyUnbinding
    );
    assert!(core.shutting_down());
    assert!(core.unbind_due(t0 + 10 * S), "the drain deadline");
    assert!(!core.unbind_due(t0 + 11 * S), "once");
    assert_eq!(core.unbind_done(), "shutdown");
    assert_eq!(core.connect_delay(0.5), None, "down for good");
    let _ = in_flight;
}

#[test]
fn an_unbind_of_a_drained_bind_goes_out_at_once() {
    let t0 = Instant::now();
    let mut core = bound(t0);
    assert_eq!(
        core.begin_unbind(AfterUnbind::Reconnect, "restart", t0),
        UnbindStart::Draining
    );
    assert!(core.unbind_due(t0));
    assert_eq!(core.unbind_done(), "restart");
    assert_eq!(
        core.connect_delay(0.5),
        Some(Duration::ZERO),
        "reconnect at once"
    );
    let mut down = idle(0);
    assert_eq!(
        down.begin_unbind(AfterUnbind::Stop, "shutdown", t0),
        UnbindStart::GoDownNow
    );
}

/// bind_transceiver refused as unsupported: TX + RX at once, no backoff. The same status
/// to a transmitter, or a credentials refusal, is a failed attempt.
#[test]
fn an_unsupported_transceiver_falls_back_to_transmitter_and_receiver() {
    let t0 = Instant::now();
    let mut core = bound(t0);
    let unsupported = CloseReason::BindRejected(CommandStatus::ESME_RINVCMDID);
    assert_eq!(
        core.session_closed(0, &unsupported),
        CloseVerdict::SplitBindFallback
    );
    assert!(core.split_bind());
    assert_eq!(core.connect_delay(0.5), Some(Duration::ZERO));
    let mut transmitter = bound_with(BindMode::Transmitter, t0, "");
    assert_eq!(
        transmitter.session_closed(0, &unsupported),
        CloseVerdict::BindRejected
    );
    assert_eq!(
        core.session_closed(0, &CloseReason::BindRejected(CommandStatus::ESME_RINVPASWD)),
        CloseVerdict::BindRejected
    );
    assert_eq!(
        core.session_closed(0, &CloseReason::EnquireLinkTimedOut),
        CloseVerdict::EnquireLinkTimedOut
    );
    assert_eq!(
        core.session_closed(0, &CloseReason::PeerUnbound),
        CloseVerdict::Failed
    );
}

#[test]
fn failed_attempts_back_off_and_a_bind_resets_the_backoff() {
    let t0 = Instant::now();
    let mut core = idle(0);
    assert_eq!(core.attempt_failed("connect: refused".into()), 1);
    assert_eq!(core.attempt_failed("connect: refused".into()), 2);
    assert_eq!(core.connect_delay(0.0), Some(10 * S));
    assert_eq!(core.last_error(), Some("connect: refused"));
    let bound = bound(t0);
    assert_eq!(bound.backoff().attempts(), 0);
    assert_eq!(bound.last_error(), None);
}

#[test]
fn a_restart_gives_back_what_was_queued_and_keeps_what_is_recording() {
    let t0 = Instant::now();
    let mut core = bound(t0);
    admit(&mut core, 1, 1);
    admit(&mut core, 2, 1);
    let (segment, _) = core.ledger.next_submit().unwrap();
    core.ledger.handle_outcome(
        segment,
        &taxonomy::classify_submit(CommandStatus::ESME_ROK),
        Some("id".into()),
    );
    let order = core.intake.take_place();
    core.intake.looked_up(order, 7);
    core.pull_started();
    core.grant_asked();
    assert_eq!(core.pinned_due(t0), Some(0));
    let mut unadmitted = Vec::new();
    let restarted = core.restarted(&mut unadmitted);
    assert_eq!(
        restarted,
        Restarted {
            held: 3,
            still_recording: 1
        }
    );
    assert_eq!(unadmitted, vec![7]);
    assert!(core.links.is_empty() && core.flow.is_none() && core.credentials().is_none());
    assert_eq!(
        core.pinned(),
        Pinned::Missing {
            failures: 0,
            retry_at: None
        },
        "a cancelled creation is tried again"
    );
    assert_eq!(core.intake.len(), 0);
}

#[test]
fn the_pinned_consumer_is_created_once_and_retried_after_a_failure() {
    let t0 = Instant::now();
    let mut core = idle(0);
    assert_eq!(core.pinned_due(t0), Some(0));
    assert_eq!(core.pinned_due(t0), None, "under way");
    core.pinned_created(t0, false, 0);
    assert_eq!(core.pinned_due(t0 + S), None);
    assert_eq!(core.pinned_due(t0 + PINNED_RETRY), Some(1));
    core.pinned_created(t0, true, 1);
    assert_eq!(core.pinned(), Pinned::Ready);
    assert_eq!(core.pinned_due(t0 + 10 * S), None);
    let mut receiver: Core = BindCore::new(
        BindKey::new(OperatorId::try_new("op").unwrap(), Direction::Rx, 0),
        OperatorId::try_new("op").unwrap(),
        settings(),
    );
    assert_eq!(receiver.pinned_due(t0), None, "a receiver submits nothing");
}

#[test]
fn a_bind_scans_its_mo_index_one_scan_at_a_time_and_its_legacy_index_now_and_then() {
    let t0 = Instant::now();
    let mut core = bound(t0);
    assert_eq!(core.mo_scan_plan(), Some(ScanPlan { legacy: true }));
    assert_eq!(core.mo_scan_plan(), None, "one scan at a time");
    core.mo_scan_done();
    assert_eq!(core.mo_scan_plan(), Some(ScanPlan { legacy: false }));
    for _ in 2..LEGACY_SCAN_EVERY {
        core.mo_scan_done();
        core.mo_scan_plan().unwrap();
    }
    core.mo_scan_done();
    assert_eq!(core.mo_scan_plan(), Some(ScanPlan { legacy: true }));
}

#[test]
fn the_timer_is_armed_for_the_earliest_deadline() {
    let t0 = Instant::now();
    let mut core = bound(t0);
    // Bound: the enquire_link is next.
    let enquire = core.next_deadline(t0).unwrap();
    assert!(enquire > t0);
    admit(&mut core, 1, 1);
    core.ledger.next_submit().unwrap();
    assert!(core.next_deadline(t0).unwrap() <= enquire);
    assert_eq!(idle(0).next_deadline(t0), None, "nothing when down");
}

#[test]
fn a_sequence_block_is_asked_for_at_half_once() {
    let t0 = Instant::now();
    let mut core = connected(
        BindMode::Transceiver,
        t0,
        "",
        SequenceNumbers::from_block(1, SEQUENCE_BLOCK / 2 - 1),
    );
    assert_eq!(core.sequences_wanted(), Some(0));
    assert_eq!(core.sequences_wanted(), None, "one at a time");
    core.sequences_reserved(0, Some((100_000, SEQUENCE_BLOCK)));
    assert_eq!(core.sequences_wanted(), None, "a full block");
}

/// Inputs of the property below, in any order.
#[derive(Debug, Clone)]
enum Input {
    Admit(usize),
    Submit,
    PullPlanned,
    PullFinished { listeners: u8, failed: bool },
    ListenEnded(usize),
    PullRetryDue,
    Pause(bool),
    State(u8),
    Closing(bool),
    BeginUnbind(bool),
    Advance(u64),
    GrantAsked,
    GrantAnswered(Option<u32>),
    Restart,
}

fn input() -> impl proptest::strategy::Strategy<Value = Input> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (1usize..4).prop_map(Input::Admit),
        3 => Just(Input::Submit),
        3 => Just(Input::PullPlanned),
        2 => (any::<u8>(), any::<bool>())
            .prop_map(|(listeners, failed)| Input::PullFinished { listeners, failed }),
        1 => (0usize..SLOTS).prop_map(Input::ListenEnded),
        1 => Just(Input::PullRetryDue),
        1 => any::<bool>().prop_map(Input::Pause),
        1 => (0u8..4).prop_map(Input::State),
        1 => any::<bool>().prop_map(Input::Closing),
        1 => any::<bool>().prop_map(Input::BeginUnbind),
        2 => (1u64..15_000).prop_map(Input::Advance),
        1 => Just(Input::GrantAsked),
        1 => proptest::option::of(0u32..20).prop_map(Input::GrantAnswered),
        1 => Just(Input::Restart),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

    /// Whatever happens, the core never asks for what its state forbids: a pull only
    /// while it takes messages (bound, open, not going down, no pull running, no row
    /// failing) and never for more than the window's room or a batch; a pulled message
    /// taken only then too, and one at a time while HALF_CLOSED_TX; one TPS request at a
    /// time; the unbind written once per unbind; a restart leaves nothing of the
    /// connection behind.
    #[test]
    fn the_core_never_pulls_takes_or_asks_beyond_its_state(inputs in proptest::collection::vec(input(), 1..80)) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut core = bound_with(BindMode::Transceiver, t0, r#", "tpsLimit": 50"#);
        let lanes = [0, 1, PINNED_SLOT, 2, 3];
        let mut handle = 0u32;
        let mut unbinds_written = 0;
        for input in inputs {
            match input {
                Input::Admit(segments) => {
                    handle += 1;
                    admit(&mut core, handle, segments);
                }
                Input::Submit => {
                    let _ = core.ledger.next_submit_at(now);
                }
                Input::PullPlanned => {
                    if core.pull_plan(now, &lanes).is_some() {
                        core.pull_started();
                    }
                }
                Input::PullFinished { listeners, failed } => {
                    let slots: Vec<usize> =
                        (0..SLOTS).filter(|s| listeners & (1 << s) != 0).collect();
                    if let Some(at) = core.pull_finished(now, &slots, failed) {
                        proptest::prop_assert_eq!(at, now + PULL_RETRY);
                    }
                }
                Input::ListenEnded(slot) => core.listen_ended(slot),
                Input::PullRetryDue => core.pull_retry_due(),
                Input::Pause(paused) => {
                    core.pause_intake(paused);
                }
                Input::State(n) => {
                    let state = [
                        BindState::Bound,
                        BindState::HalfClosedTx,
                        BindState::Draining,
                        BindState::Bound,
                    ][usize::from(n)];
                    if core.state().is_bound() {
                        core.set_state(state, None);
                    }
                }
                Input::Closing(closing) => core.set_closing(closing),
                Input::BeginUnbind(stop) => {
                    let then = if stop { AfterUnbind::Stop } else { AfterUnbind::Reconnect };
                    let _ = core.begin_unbind(then, "test", now);
                }
                Input::Advance(ms) => {
                    now += Duration::from_millis(ms);
                    if core.unbind_due(now) {
                        unbinds_written += 1;
                    }
                }
                Input::GrantAsked => {
                    if core.grant_wanted(now).is_some() {
                        core.grant_asked();
                    }
                }
                Input::GrantAnswered(granted) => {
                    let _ = core.grant_answered(now, granted.map(|g| (g, Duration::from_millis(200))));
                }
                Input::Restart => {
                    let mut unadmitted = Vec::new();
                    core.restarted(&mut unadmitted);
                    proptest::prop_assert!(core.links.is_empty() && core.flow.is_none());
                    proptest::prop_assert_eq!(core.intake.len(), 0);
                    proptest::prop_assert!(core.unbinding().is_none());
                    proptest::prop_assert!(!core.closing());
                }
            }
            while core.ledger.poll_output().is_some() {}

            if let Some(plan) = core.pull_plan(now, &lanes) {
                proptest::prop_assert!(core.accepting() && !core.intake_paused());
                proptest::prop_assert!(!core.ledger.stalled());
                proptest::prop_assert!(plan.room >= 1 && plan.room <= 500);
                proptest::prop_assert!(plan.room <= core.window_room().max(core.intake_room(now)));
                proptest::prop_assert!(lanes.iter().any(|s| !plan.skip[*s]));
            }
            if core.screen_pulled() == Screen::Take {
                proptest::prop_assert!(core.accepting() && !core.intake_paused());
                if core.state() == BindState::HalfClosedTx {
                    proptest::prop_assert_eq!(
                        core.ledger.queued() + core.ledger.in_flight() + core.intake.len(),
                        0
                    );
                }
            }
            if core.grant_wanted(now).is_some() {
                proptest::prop_assert!(core.accepting());
            }
            if core.unbinding().is_none() {
                unbinds_written = 0;
            }
            proptest::prop_assert!(unbinds_written <= 1, "the unbind written once");
        }
    }
}

mod contract;
mod references;
