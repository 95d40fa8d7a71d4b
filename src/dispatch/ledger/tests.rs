// Tests take their instants from the clock; the code under test never does.
#![allow(clippy::disallowed_methods)]

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::protocol::taxonomy::{classify_submit, classify_timeout};

fn body(n: u8) -> SmBody {
    SmBody {
        short_message: vec![n],
        ..SmBody::default()
    }
}

fn admission(handle: u32, segments: u16) -> Admission<u32> {
    Admission {
        handle,
        message_id: format!("m{handle}"),
        deliveries: 1,
        priority: 2,
        concat_ref: (segments > 1).then_some(7),
        segments: (0..segments).map(|i| body(i as u8)).collect(),
        already_recorded: Vec::new(),
    }
}

fn ledger() -> Ledger<u32> {
    Ledger::new(5, RecordRetry::default())
}

fn outputs(ledger: &mut Ledger<u32>) -> Vec<Output<u32>> {
    std::iter::from_fn(|| ledger.poll_output()).collect()
}

fn settled(outputs: &[Output<u32>]) -> Vec<(u32, Verdict)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Settle(s) => Some((s.handle, s.verdict.clone())),
            Output::Record(_) => None,
        })
        .collect()
}

fn records(outputs: &[Output<u32>]) -> Vec<RecordRequest> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Record(r) => Some(r.clone()),
            Output::Settle(_) => None,
        })
        .collect()
}

const OK: CommandStatus = CommandStatus::ESME_ROK;

#[test]
fn one_segment_acked_after_its_row() {
    let mut l = ledger();
    l.admit(admission(1, 1));
    let (seg, b) = l.next_submit().unwrap();
    assert_eq!(b.short_message, vec![0]);
    assert_eq!(l.in_flight(), 1);
    l.handle_outcome(seg, &classify_submit(OK), Some("abc".into()));
    let out = outputs(&mut l);
    let rec = records(&out);
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].operator_message_id, "abc");
    assert_eq!(rec[0].concat_ref, None);
    assert!(settled(&out).is_empty(), "no ACK before the row");
    l.handle_recorded(seg);
    assert_eq!(settled(&outputs(&mut l)), vec![(1, Verdict::Ack)]);
    assert_eq!(l.messages(), 0);
}

#[test]
fn redelivered_message_fully_recorded_is_acked_without_sending() {
    let mut l = ledger();
    let mut a = admission(1, 3);
    a.deliveries = 2;
    a.already_recorded = vec![1, 2, 3];
    l.admit(a);
    assert!(l.next_submit().is_none());
    assert_eq!(settled(&outputs(&mut l)), vec![(1, Verdict::Ack)]);
}

#[test]
fn redelivery_sends_only_missing_segments_with_the_stored_reference() {
    let mut l = ledger();
    let mut a = admission(1, 3);
    a.deliveries = 2;
    a.concat_ref = Some(42);
    a.already_recorded = vec![1, 3];
    l.admit(a);
    let (seg, _) = l.next_submit().unwrap();
    assert_eq!(seg.segment, 2);
    assert!(l.next_submit().is_none());
    l.handle_outcome(seg, &classify_submit(OK), Some("x".into()));
    let rec = records(&outputs(&mut l));
    assert_eq!(rec[0].concat_ref, Some(42));
    assert_eq!(rec[0].segment_count, 3);
    l.handle_recorded(seg);
    assert_eq!(settled(&outputs(&mut l)), vec![(1, Verdict::Ack)]);
}

/// The drain defect: on unbind with a long message partly in flight, the queued segment
/// was counted twice and the message NAKed while a segment was still in flight; that
/// segment's ESME_ROK then found no dispatch and no row was written.
#[test]
fn session_end_with_a_long_message_partly_in_flight_keeps_the_accepted_segment() {
    let mut l = ledger();
    l.admit(admission(1, 3));
    let (s1, _) = l.next_submit().unwrap();
    let (s2, _) = l.next_submit().unwrap();
    // Segment 1 answered OK (row being written), 2 in flight, 3 queued.
    l.handle_outcome(s1, &classify_submit(OK), Some("a".into()));
    assert_eq!(records(&outputs(&mut l)).len(), 1);
    l.handle_session_ended();
    // Nothing settles while segment 1's row is not committed.
    assert!(settled(&outputs(&mut l)).is_empty());
    assert_eq!(l.segment_state(s2), Some(&SegmentState::Failed));
    assert_eq!(l.queued(), 0);
    assert_eq!(l.in_flight(), 0);
    // A late response for segment 2 changes nothing (it is not in flight any more).
    l.handle_outcome(s2, &classify_submit(OK), Some("b".into()));
    assert!(outputs(&mut l).is_empty());
    l.handle_recorded(s1);
    assert_eq!(
        settled(&outputs(&mut l)),
        vec![(
            1,
            Verdict::Nak {
                delay: Duration::ZERO
            }
        )]
    );
}

#[test]
fn graceful_drain_keeps_in_flight_segments_until_answered() {
    // Unbind in the actor: queued segments fail at once (next_submit is no longer
    // called), in-flight ones are answered and recorded before the message settles.
    let mut l = ledger();
    l.admit(admission(1, 2));
    let (s1, _) = l.next_submit().unwrap();
    l.handle_outcome(s1, &classify_submit(OK), Some("a".into()));
    l.handle_recorded(s1);
    assert!(settled(&outputs(&mut l)).is_empty());
    let (s2, _) = l.next_submit().unwrap();
    l.handle_outcome(s2, &classify_submit(OK), Some("b".into()));
    l.handle_recorded(s2);
    assert_eq!(settled(&outputs(&mut l)), vec![(1, Verdict::Ack)]);
}

#[test]
fn unbinding_gives_back_queued_messages_and_keeps_in_flight_ones() {
    let mut l = ledger();
    l.admit(admission(1, 2));
    l.admit(admission(2, 1));
    let (s1, _) = l.next_submit().unwrap();
    l.release_queued();
    assert_eq!(l.queued(), 0);
    assert!(l.next_submit().is_none());
    // Message 2 never went out: back at once. Message 1 waits for segment 1.
    assert_eq!(
        settled(&outputs(&mut l)),
        vec![(
            2,
            Verdict::Nak {
                delay: Duration::ZERO
            }
        )]
    );
    l.handle_outcome(s1, &classify_submit(OK), Some("a".into()));
    l.handle_recorded(s1);
    let out = outputs(&mut l);
    assert_eq!(records(&out).len(), 1);
    assert_eq!(
        settled(&out),
        vec![(
            1,
            Verdict::Nak {
                delay: Duration::ZERO
            }
        )]
    );
}

#[test]
fn session_end_naks_every_held_message_at_once() {
    let mut l = ledger();
    for h in 0..5 {
        l.admit(admission(h, 1));
    }
    l.next_submit().unwrap();
    l.next_submit().unwrap();
    l.handle_session_ended();
    let mut s = settled(&outputs(&mut l));
    s.sort_by_key(|(h, _)| *h);
    assert_eq!(s.len(), 5);
    assert!(s.iter().all(|(_, v)| *v
        == Verdict::Nak {
            delay: Duration::ZERO
        }));
    assert_eq!(l.messages(), 0);
}

/// The PostgreSQL-outage defect: a segment with ESME_ROK whose row failed was NAKed and
/// sent again. Now the row is retried and the segment never handed out again.
#[test]
fn failed_row_write_is_retried_never_resubmitted() {
    let t0 = Instant::now();
    let mut l = ledger();
    l.admit(admission(1, 1));
    let (seg, _) = l.next_submit().unwrap();
    l.handle_outcome(seg, &classify_submit(OK), Some("a".into()));
    assert_eq!(records(&outputs(&mut l)).len(), 1);
    l.handle_record_failed(t0, seg);
    assert!(l.stalled());
    assert!(outputs(&mut l).is_empty(), "no settle, no resend");
    assert!(l.next_submit().is_none());
    let due = l.poll_timeout().unwrap();
    assert_eq!(due, t0 + Duration::from_millis(100));
    l.handle_timeout(due - Duration::from_millis(1));
    assert!(outputs(&mut l).is_empty());
    l.handle_timeout(due);
    let rec = records(&outputs(&mut l));
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].attempt, 1);
    assert_eq!(rec[0].operator_message_id, "a");
    // Fails again: backoff doubles.
    l.handle_record_failed(due, seg);
    assert_eq!(l.poll_timeout(), Some(due + Duration::from_millis(200)));
    assert_eq!(l.record_failures(), 1);
    // The session ending meanwhile does not give the message back.
    l.handle_session_ended();
    assert!(outputs(&mut l).is_empty());
    l.handle_timeout(due + Duration::from_millis(200));
    assert_eq!(records(&outputs(&mut l)).len(), 1);
    l.handle_recorded(seg);
    assert!(!l.stalled());
    assert_eq!(settled(&outputs(&mut l)), vec![(1, Verdict::Ack)]);
}

/// A row the database refuses for good (SQLSTATE 22/23/54) was retried for ever and
/// stalled the bind. Now the segment settles without a row, the bind is not stalled, and
/// it is never sent again.
#[test]
fn a_row_refused_for_good_settles_without_stalling_the_bind() {
    let t0 = Instant::now();
    let mut l = ledger();
    l.admit(admission(1, 2));
    l.admit(admission(2, 1));
    let (a, _) = l.next_submit().unwrap();
    let (b, _) = l.next_submit().unwrap();
    let (c, _) = l.next_submit().unwrap();
    for seg in [a, b, c] {
        l.handle_outcome(seg, &classify_submit(OK), Some("id".into()));
    }
    assert_eq!(records(&outputs(&mut l)).len(), 3);
    // An outage first (retried), then the answer that it never will be written.
    l.handle_record_failed(t0, a);
    assert!(l.stalled());
    l.handle_record_refused(a);
    assert!(!l.stalled(), "a refused row does not hold the bind");
    assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_millis(100)));
    l.handle_timeout(t0 + Duration::from_secs(1));
    assert!(outputs(&mut l).is_empty(), "not asked again");
    assert_eq!(
        l.segment_state(a),
        Some(&crate::dispatch::ledger::SegmentState::Unrecorded)
    );
    l.handle_recorded(c);
    assert_eq!(settled(&outputs(&mut l)), vec![(2, Verdict::Ack)]);
    l.handle_recorded(b);
    assert_eq!(settled(&outputs(&mut l)), vec![(1, Verdict::Ack)]);
    assert!(l.next_submit().is_none(), "never sent again");
    // A late answer changes nothing.
    l.handle_record_refused(a);
    l.handle_recorded(a);
    assert!(outputs(&mut l).is_empty());
}

/// A receipt waits for rows of segments written before it arrived: the ledger knows the
/// oldest accepted segment still without its committed row, while it is written, failed,
/// written again.
#[test]
fn the_oldest_segment_without_its_row_is_known_until_the_row_is_committed() {
    let t0 = Instant::now();
    let mut l = ledger();
    l.admit(admission(1, 2));
    let (a, _) = l.next_submit_at(t0).unwrap();
    let (b, _) = l.next_submit_at(t0 + Duration::from_secs(1)).unwrap();
    assert_eq!(
        l.oldest_unrecorded(),
        None,
        "in flight is the session's business"
    );
    l.handle_outcome(b, &classify_submit(OK), Some("b".into()));
    l.handle_outcome(a, &classify_submit(OK), Some("a".into()));
    assert_eq!(l.oldest_unrecorded(), Some(t0));
    l.handle_record_failed(t0 + Duration::from_secs(5), a);
    assert_eq!(
        l.oldest_unrecorded(),
        Some(t0),
        "failing: still since it was written"
    );
    l.handle_recorded(b);
    l.handle_record_refused(a);
    assert_eq!(l.oldest_unrecorded(), None);
    assert_eq!(settled(&outputs(&mut l)), vec![(1, Verdict::Ack)]);
}

#[test]
fn record_retry_backoff_is_capped() {
    let r = RecordRetry::default();
    assert_eq!(r.delay(1), Duration::from_millis(100));
    assert_eq!(r.delay(2), Duration::from_millis(200));
    assert_eq!(r.delay(7), Duration::from_secs(5));
    assert_eq!(r.delay(1000), Duration::from_secs(5));
}

#[test]
fn permanent_refusal_rejects_and_stops_the_rest() {
    let mut l = ledger();
    l.admit(admission(1, 3));
    let (s1, _) = l.next_submit().unwrap();
    l.handle_outcome(s1, &classify_submit(CommandStatus::ESME_RINVDSTADR), None);
    assert!(l.next_submit().is_none(), "segments 2 and 3 are not sent");
    assert_eq!(
        settled(&outputs(&mut l)),
        vec![(
            1,
            Verdict::Reject {
                status: CommandStatus::ESME_RINVDSTADR
            }
        )]
    );
}

#[test]
fn rejection_wins_over_temporary_failure() {
    let mut l = ledger();
    l.admit(admission(1, 2));
    let (s1, _) = l.next_submit().unwrap();
    let (s2, _) = l.next_submit().unwrap();
    l.handle_outcome(s1, &classify_submit(CommandStatus::ESME_RSYSERR), None);
    l.handle_outcome(s2, &classify_submit(CommandStatus::ESME_RINVSRCADR), None);
    assert_eq!(
        settled(&outputs(&mut l)),
        vec![(
            1,
            Verdict::Reject {
                status: CommandStatus::ESME_RINVSRCADR
            }
        )]
    );
}

#[test]
fn smsc_temporary_failures_dead_letter_at_max_deliver() {
    let mut l = ledger();
    let mut a = admission(1, 1);
    a.deliveries = 4;
    l.admit(a);
    let (s, _) = l.next_submit().unwrap();
    l.handle_outcome(s, &classify_submit(CommandStatus::ESME_RSYSERR), None);
    assert_eq!(
        settled(&outputs(&mut l)),
        vec![(
            1,
            Verdict::Nak {
                delay: Duration::from_secs(8)
            }
        )]
    );
    let mut a = admission(2, 1);
    a.deliveries = 5;
    l.admit(a);
    let (s, _) = l.next_submit().unwrap();
    l.handle_outcome(s, &classify_timeout(), None);
    assert_eq!(
        settled(&outputs(&mut l)),
        vec![(
            2,
            Verdict::RetriesExhausted {
                status: CommandStatus::ESME_RSYSERR,
                deliveries: 5
            }
        )]
    );
}

#[test]
fn our_own_failures_never_dead_letter() {
    let mut l = ledger();
    let mut a = admission(1, 1);
    a.deliveries = 50;
    l.admit(a);
    l.next_submit().unwrap();
    l.handle_session_ended();
    assert_eq!(
        settled(&outputs(&mut l)),
        vec![(
            1,
            Verdict::Nak {
                delay: Duration::ZERO
            }
        )]
    );
    l.refuse(2, "m2".into(), 50, Duration::from_secs(1));
    assert_eq!(
        settled(&outputs(&mut l)),
        vec![(
            2,
            Verdict::Nak {
                delay: Duration::from_secs(1)
            }
        )]
    );
}

/// Deliver `message_id` for the `deliveries`-th time (as handle `deliveries`), send its
/// one segment and answer it with `outcome`; the settlement.
fn deliver_and_answer(
    l: &mut Ledger<u32>,
    message_id: &str,
    deliveries: u64,
    outcome: &SubmitOutcome,
) -> Vec<(u32, Verdict)> {
    let mut a = admission(deliveries as u32, 1);
    a.message_id = message_id.into();
    a.deliveries = deliveries;
    l.admit(a);
    let (s, _) = l.next_submit().unwrap();
    l.handle_outcome(s, outcome, None);
    settled(&outputs(l))
}

fn nak(handle: u32, delay: Duration) -> Vec<(u32, Verdict)> {
    vec![(handle, Verdict::Nak { delay })]
}

/// Found by the fault suite (an SMSC that stalls: sessions end under the same messages
/// again and again): deliveries that ended for a reason of ours — the session went away,
/// a redelivery lookup failed — are not the message's failures. They neither double its
/// NAK delay (19 s to recover from a 3 s stall) nor bring it to the dead letter at
/// `max_deliver`.
#[test]
fn deliveries_ended_by_our_side_do_not_count_as_the_message_failing() {
    let mut l = ledger(); // max_deliver 5
    for n in 1..=3u64 {
        let mut a = admission(n as u32, 1);
        a.message_id = "m-flapping".into();
        a.deliveries = n;
        l.admit(a);
        l.next_submit().unwrap();
        l.handle_session_ended();
        assert_eq!(settled(&outputs(&mut l)), nak(n as u32, Duration::ZERO));
    }
    l.refuse(4, "m-flapping".into(), 4, Duration::from_millis(100));
    outputs(&mut l);
    // The fifth delivery times out: its first failure of its own.
    let timeout = classify_timeout();
    assert_eq!(
        deliver_and_answer(&mut l, "m-flapping", 5, &timeout),
        nak(5, Duration::from_secs(1))
    );
    // Its own failures still count: the second doubles the delay…
    let syserr = classify_submit(CommandStatus::ESME_RSYSERR);
    assert_eq!(
        deliver_and_answer(&mut l, "m-flapping", 6, &syserr),
        nak(6, Duration::from_secs(2))
    );
    // … and the fifth is the last (max_deliver 5).
    deliver_and_answer(&mut l, "m-flapping", 7, &timeout);
    deliver_and_answer(&mut l, "m-flapping", 8, &timeout);
    assert_eq!(
        deliver_and_answer(&mut l, "m-flapping", 9, &timeout),
        vec![(
            9,
            Verdict::RetriesExhausted {
                status: CommandStatus::ESME_RSYSERR,
                deliveries: 9
            }
        )]
    );
    // Settled for good: forgotten.
    assert_eq!(l.remembered_returns(), 0);
}

#[test]
fn returned_deliveries_are_remembered_for_a_bounded_number_of_messages() {
    let mut l = ledger();
    for n in 0..(RETURNS_REMEMBERED as u32 + 100) {
        l.refuse(n, format!("m{n}"), 1, Duration::ZERO);
    }
    outputs(&mut l);
    assert_eq!(l.remembered_returns(), RETURNS_REMEMBERED);
}

#[test]
fn throttled_naks_after_500ms() {
    let mut l = ledger();
    l.admit(admission(1, 1));
    let (s, _) = l.next_submit().unwrap();
    l.handle_outcome(s, &classify_submit(CommandStatus::ESME_RTHROTTLED), None);
    assert_eq!(
        settled(&outputs(&mut l)),
        vec![(
            1,
            Verdict::Nak {
                delay: Duration::from_millis(500)
            }
        )]
    );
}

/// ESME_RTHROTTLED says "slower", not "this message failed": however often a message is
/// throttled (an SMSC throttling for longer than max_deliver × 500 ms), it is retried,
/// never dead-lettered for it, and its own failures count as before.
#[test]
fn throttling_never_brings_a_message_to_the_dead_letter() {
    let mut l = ledger(); // max_deliver 5
    let throttled = classify_submit(CommandStatus::ESME_RTHROTTLED);
    for n in 1..=12u64 {
        assert_eq!(
            deliver_and_answer(&mut l, "m-throttled", n, &throttled),
            nak(n as u32, Duration::from_millis(500)),
            "delivery {n}"
        );
    }
    let syserr = classify_submit(CommandStatus::ESME_RSYSERR);
    assert_eq!(
        deliver_and_answer(&mut l, "m-throttled", 13, &syserr),
        nak(13, Duration::from_secs(1)),
        "its first failure of its own"
    );
}

#[test]
fn over_budget_gives_back_only_messages_not_started() {
    let mut l = ledger();
    l.admit(admission(1, 3));
    l.admit(admission(2, 1));
    l.admit(admission(3, 2));
    // Tokens for two segments: message 1 starts (part 1 of 3), nothing else.
    let (first, _) = l.next_submit().unwrap();
    assert_eq!(first.segment, 1);
    assert_eq!(l.release_unstarted(Duration::from_millis(500)), 2);
    let delay = Duration::from_millis(500);
    let mut naks = settled(&outputs(&mut l));
    naks.sort_by_key(|(h, _)| *h);
    assert_eq!(
        naks,
        vec![(2, Verdict::Nak { delay }), (3, Verdict::Nak { delay })]
    );
    // The started message keeps its place and its other parts.
    assert_eq!(l.queued(), 2);
    assert_eq!(l.next_submit().unwrap().0.segment, 2);
    assert_eq!(l.next_submit().unwrap().0.segment, 3);
    assert!(l.next_submit().is_none());
    // Given back for a reason of ours: never a dead letter, however often.
    let mut a = admission(4, 1);
    a.deliveries = 50;
    l.admit(a);
    assert_eq!(l.release_unstarted(delay), 1);
    assert_eq!(settled(&outputs(&mut l)), vec![(4, Verdict::Nak { delay })]);
}

#[test]
fn higher_priority_goes_first() {
    let mut l = ledger();
    for h in 0..3 {
        l.admit(admission(h, 1));
    }
    let mut p0 = admission(9, 1);
    p0.priority = 0;
    let id = l.admit(p0);
    let (seg, _) = l.next_submit().unwrap();
    assert_eq!(seg.dispatch, id);
}

#[test]
fn not_sent_and_unencodable() {
    let mut l = ledger();
    l.admit(admission(1, 2));
    let (s, _) = l.next_submit().unwrap();
    l.handle_not_sent(s);
    assert_eq!(
        settled(&outputs(&mut l)),
        vec![(
            1,
            Verdict::Nak {
                delay: Duration::from_millis(100)
            }
        )]
    );
    assert_eq!(l.queued(), 0);
    l.admit(admission(2, 1));
    let (s, _) = l.next_submit().unwrap();
    l.handle_unencodable(s);
    assert_eq!(
        settled(&outputs(&mut l)),
        vec![(
            2,
            Verdict::Reject {
                status: CommandStatus::ESME_RINVMSGLEN
            }
        )]
    );
}

// ----- properties over random interleavings ------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    Admit {
        segments: u16,
        recorded: u8,
        deliveries: u8,
        priority: u8,
    },
    Submit,
    Respond {
        pick: usize,
        status: u8,
    },
    Timeout {
        pick: usize,
    },
    NotSent {
        pick: usize,
    },
    Recorded {
        pick: usize,
    },
    RecordFailed {
        pick: usize,
    },
    RecordRefused {
        pick: usize,
    },
    SessionEnded,
    Unbinding,
    OverBudget,
    Advance {
        ms: u16,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1u16..5, any::<u8>(), 1u8..8, 0u8..4).prop_map(|(segments, recorded, deliveries, priority)| Step::Admit { segments, recorded, deliveries, priority }),
        5 => Just(Step::Submit),
        5 => (any::<usize>(), 0u8..6).prop_map(|(pick, status)| Step::Respond { pick, status }),
        1 => any::<usize>().prop_map(|pick| Step::Timeout { pick }),
        1 => any::<usize>().prop_map(|pick| Step::NotSent { pick }),
        4 => any::<usize>().prop_map(|pick| Step::Recorded { pick }),
        2 => any::<usize>().prop_map(|pick| Step::RecordFailed { pick }),
        1 => any::<usize>().prop_map(|pick| Step::RecordRefused { pick }),
        1 => Just(Step::SessionEnded),
        1 => Just(Step::Unbinding),
        1 => Just(Step::OverBudget),
        2 => (1u16..3000).prop_map(|ms| Step::Advance { ms }),
    ]
}

const STATUSES: [CommandStatus; 6] = [
    CommandStatus::ESME_ROK,
    CommandStatus::ESME_ROK,
    CommandStatus::ESME_RTHROTTLED,
    CommandStatus::ESME_RSYSERR,
    CommandStatus::ESME_RINVDSTADR,
    CommandStatus::ESME_RSUBMITFAIL,
];

/// What the test harness knows, playing the actor and the database.
#[derive(Default)]
struct Model {
    in_flight: Vec<SegmentRef>,
    recording: Vec<SegmentRef>,
    /// Rows committed, per handle (segment numbers).
    rows: HashMap<u32, HashSet<u16>>,
    /// Rows the database refused for good, per handle (segment numbers).
    refused: HashMap<u32, HashSet<u16>>,
    segments_of: HashMap<u32, u16>,
    dispatch_handle: HashMap<DispatchId, u32>,
    accepted: HashSet<SegmentRef>,
    submitted: HashSet<SegmentRef>,
    settled: HashMap<u32, Verdict>,
    admitted: Vec<u32>,
}

impl Model {
    fn drain(&mut self, l: &mut Ledger<u32>) -> Result<(), TestCaseError> {
        while let Some(out) = l.poll_output() {
            match out {
                Output::Record(r) => {
                    prop_assert!(
                        self.accepted.contains(&r.segment),
                        "record without ESME_ROK"
                    );
                    if !self.recording.contains(&r.segment) {
                        self.recording.push(r.segment);
                    }
                }
                Output::Settle(s) => {
                    prop_assert!(
                        self.settled.insert(s.handle, s.verdict.clone()).is_none(),
                        "handle {} settled twice",
                        s.handle
                    );
                    if s.verdict == Verdict::Ack {
                        let rows = self.rows.get(&s.handle).map_or(0, |r| r.len());
                        let refused = self.refused.get(&s.handle).map_or(0, |r| r.len());
                        prop_assert_eq!(
                            (rows + refused) as u16,
                            self.segments_of[&s.handle],
                            "ACK before every row is committed or refused for good"
                        );
                    }
                    // Nothing of a settled message is still being recorded.
                    prop_assert!(
                        !self
                            .recording
                            .iter()
                            .any(|seg| self.dispatch_handle.get(&seg.dispatch) == Some(&s.handle)),
                        "settled while a row is being written"
                    );
                }
            }
        }
        Ok(())
    }
}

fn pick<T: Copy>(v: &[T], i: usize) -> Option<T> {
    (!v.is_empty()).then(|| v[i % v.len()])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_message_settles_once_and_acks_only_with_all_rows(steps in prop::collection::vec(step(), 1..120)) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut l: Ledger<u32> = Ledger::new(5, RecordRetry::default());
        let mut m = Model::default();
        let mut next_handle = 0u32;
        for step in steps {
            match step {
                Step::Admit { segments, recorded, deliveries, priority } => {
                    let h = next_handle;
                    next_handle += 1;
                    let already: Vec<u16> = (1..=segments).filter(|s| recorded & (1 << s) != 0).collect();
                    m.rows.insert(h, already.iter().copied().collect());
                    m.segments_of.insert(h, segments);
                    m.admitted.push(h);
                    let id = l.admit(Admission {
                        handle: h,
                        message_id: format!("m{h}"),
                        deliveries: u64::from(deliveries),
                        priority: usize::from(priority),
                        concat_ref: Some(1),
                        segments: (0..segments).map(|i| body(i as u8)).collect(),
                        already_recorded: already,
                    });
                    m.dispatch_handle.insert(id, h);
                }
                Step::Submit => {
                    if let Some((seg, _)) = l.next_submit() {
                        prop_assert!(m.submitted.insert(seg), "segment handed out twice");
                        let h = m.dispatch_handle[&seg.dispatch];
                        prop_assert!(!m.rows[&h].contains(&seg.segment), "recorded segment sent again");
                        m.in_flight.push(seg);
                    }
                }
                Step::Respond { pick: i, status } => {
                    if let Some(seg) = pick(&m.in_flight, i) {
                        m.in_flight.retain(|s| *s != seg);
                        let outcome = classify_submit(STATUSES[usize::from(status)]);
                        if outcome == SubmitOutcome::Accepted {
                            m.accepted.insert(seg);
                        }
                        l.handle_outcome(seg, &outcome, Some("id".into()));
                    }
                }
                Step::Timeout { pick: i } => {
                    if let Some(seg) = pick(&m.in_flight, i) {
                        m.in_flight.retain(|s| *s != seg);
                        l.handle_outcome(seg, &classify_timeout(), None);
                    }
                }
                Step::NotSent { pick: i } => {
                    if let Some(seg) = pick(&m.in_flight, i) {
                        m.in_flight.retain(|s| *s != seg);
                        l.handle_not_sent(seg);
                    }
                }
                Step::Recorded { pick: i } => {
                    if let Some(seg) = pick(&m.recording, i) {
                        m.recording.retain(|s| *s != seg);
                        let h = m.dispatch_handle[&seg.dispatch];
                        m.rows.get_mut(&h).unwrap().insert(seg.segment);
                        l.handle_recorded(seg);
                    }
                }
                Step::RecordFailed { pick: i } => {
                    if let Some(seg) = pick(&m.recording, i) {
                        m.recording.retain(|s| *s != seg);
                        l.handle_record_failed(now, seg);
                    }
                }
                Step::RecordRefused { pick: i } => {
                    if let Some(seg) = pick(&m.recording, i) {
                        m.recording.retain(|s| *s != seg);
                        let h = m.dispatch_handle[&seg.dispatch];
                        m.refused.entry(h).or_default().insert(seg.segment);
                        l.handle_record_refused(seg);
                    }
                }
                Step::SessionEnded => {
                    m.in_flight.clear();
                    l.handle_session_ended();
                }
                Step::Unbinding => l.release_queued(),
                Step::OverBudget => {
                    l.release_unstarted(Duration::from_millis(500));
                }
                Step::Advance { ms } => {
                    now += Duration::from_millis(u64::from(ms));
                    l.handle_timeout(now);
                }
            }
            m.drain(&mut l)?;
            prop_assert_eq!(l.in_flight(), m.in_flight.len());
        }
        // Finish: the session ends, every pending row gets written (retries included).
        l.handle_session_ended();
        m.in_flight.clear();
        m.drain(&mut l)?;
        for _ in 0..1000 {
            if l.messages() == 0 {
                break;
            }
            now += Duration::from_secs(10);
            l.handle_timeout(now);
            m.drain(&mut l)?;
            for seg in std::mem::take(&mut m.recording) {
                let h = m.dispatch_handle[&seg.dispatch];
                m.rows.get_mut(&h).unwrap().insert(seg.segment);
                l.handle_recorded(seg);
            }
            m.drain(&mut l)?;
        }
        prop_assert_eq!(l.messages(), 0, "nothing left unsettled");
        prop_assert_eq!(l.queued(), 0);
        prop_assert!(!l.stalled());
        for h in &m.admitted {
            prop_assert!(m.settled.contains_key(h), "handle {} never settled", h);
        }
        // Every ESME_ROK ended up as a row, or was refused one for good.
        for seg in &m.accepted {
            let h = m.dispatch_handle[&seg.dispatch];
            let refused = m.refused.get(&h).is_some_and(|r| r.contains(&seg.segment));
            prop_assert!(m.rows[&h].contains(&seg.segment) || refused, "accepted segment without a row");
        }
    }
}

/// What became of one delivery of a message, in the redelivery property below.
#[derive(Debug, Clone, Copy)]
enum Fate {
    SessionEnded,
    Refused,
    Throttled,
    TimedOut,
    SystemError,
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        Just(Fate::SessionEnded),
        Just(Fate::Refused),
        Just(Fate::Throttled),
        Just(Fate::TimedOut),
        Just(Fate::SystemError),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// One message redelivered under any mix of faults, each delivery one JetStream
    /// `num_delivered` more: the NAK delay doubles with the message's own failures only
    /// (timeouts, ESME_RSYSERR), from 1 s up to 30 s, throttling NAKs after 500 ms and a
    /// session end or a refusal at once, and the message is dead-lettered exactly at its
    /// `max_deliver`-th own failure, never before.
    #[test]
    fn only_a_messages_own_failures_back_it_off_and_dead_letter_it(
        fates in prop::collection::vec(fate(), 1..40),
        max_deliver in 1u64..8,
    ) {
        let mut l: Ledger<u32> = Ledger::new(max_deliver, RecordRetry::default());
        let mut own = 0u64;
        for (n, fate) in fates.into_iter().enumerate() {
            let deliveries = n as u64 + 1;
            let handle = deliveries as u32;
            let settled = match fate {
                Fate::Refused => {
                    l.refuse(handle, "m-faults".into(), deliveries, Duration::from_millis(250));
                    settled(&outputs(&mut l))
                }
                Fate::SessionEnded => {
                    let mut a = admission(handle, 1);
                    a.message_id = "m-faults".into();
                    a.deliveries = deliveries;
                    l.admit(a);
                    l.next_submit().unwrap();
                    l.handle_session_ended();
                    settled(&outputs(&mut l))
                }
                Fate::Throttled => deliver_and_answer(
                    &mut l, "m-faults", deliveries, &classify_submit(CommandStatus::ESME_RTHROTTLED)),
                Fate::TimedOut => deliver_and_answer(&mut l, "m-faults", deliveries, &classify_timeout()),
                Fate::SystemError => deliver_and_answer(
                    &mut l, "m-faults", deliveries, &classify_submit(CommandStatus::ESME_RSYSERR)),
            };
            let want = match fate {
                Fate::Refused => Verdict::Nak { delay: Duration::from_millis(250) },
                Fate::SessionEnded => Verdict::Nak { delay: Duration::ZERO },
                Fate::Throttled => Verdict::Nak { delay: Duration::from_millis(500) },
                Fate::TimedOut | Fate::SystemError => {
                    own += 1;
                    if own >= max_deliver {
                        let status = CommandStatus::ESME_RSYSERR;
                        prop_assert_eq!(
                            settled,
                            vec![(handle, Verdict::RetriesExhausted { status, deliveries })]
                        );
                        prop_assert_eq!(l.remembered_returns(), 0, "forgotten once settled");
                        return Ok(());
                    }
                    let doubled = Duration::from_secs(1 << (own - 1).min(5));
                    Verdict::Nak { delay: doubled.min(Duration::from_secs(30)) }
                }
            };
            prop_assert_eq!(settled, vec![(handle, want)], "delivery {}", deliveries);
        }
    }
}
