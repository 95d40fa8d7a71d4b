//! The dispatch ledger of one bind: messages → segments → outcome (SPEC §4).
//!
//! [`Ledger<H>`] is sans-IO, like [`crate::protocol::session::Session`]: the bind actor admits a
//! planned message with the handle that settles it (the JetStream acker in production, an
//! integer in tests), takes segments to submit with [`Ledger::next_submit`], and reports
//! what happened to each (`handle_*`). The ledger answers with [`Output`]s: write this
//! correlation row, settle that message (ACK, NAK after a delay, reject, dead-letter).
//!
//! Each segment has an explicit [`SegmentState`]; a message settles when none of its
//! segments is queued, in flight or being recorded. The rules it keeps:
//! - A message is ACKed only when every segment's row is recorded (this delivery's or an
//!   earlier one's).
//! - A segment that got ESME_ROK is never handed out again: its row write is retried
//!   (backoff from [`RecordRetry`]) until it succeeds, and its message waits meanwhile.
//!   While any row write is failing, [`Ledger::stalled`] tells the intake to stop pulling.
//! - When the session ends, queued and in-flight segments fail at once (NAK without delay:
//!   their messages return to the stream now, not after AckWait); segments being recorded
//!   keep their message until the row is committed, so a redelivery finds it.
//! - A message fails as a whole: once one segment failed, its other queued segments are
//!   not sent; segments already in flight still get their answers recorded.
//! - A permanent refusal wins over a temporary failure (ACK + REJECTED event). A temporary
//!   failure caused by the SMSC dead-letters the message once it was delivered
//!   `max_deliver` times; one caused by us (session ended, backend outage) NAKs forever —
//!   a backend outage must not turn messages into false REJECTED events.
//!
//! Nothing here reads a clock: time comes in as `now`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::protocol::pdu::{CommandStatus, SmBody};
use crate::protocol::taxonomy::{self, MessageAction, SubmitOutcome};

/// Identifies one admitted message inside one ledger (never reused).
pub type DispatchId = u64;

/// Lanes of priority, highest first (P0 = 0).
pub const PRIORITIES: usize = 4;

/// Messages whose deliveries returned for reasons of ours are remembered up to this many
/// (the oldest forgotten first).
pub const RETURNS_REMEMBERED: usize = 10_000;

/// One segment of one admitted message; `segment` is 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentRef {
    pub dispatch: DispatchId,
    pub segment: u16,
}

/// What the bind actor hands to [`Ledger::admit`].
#[derive(Debug)]
pub struct Admission<H> {
    /// Settles the NATS message.
    pub handle: H,
    pub message_id: String,
    /// JetStream's delivery count (1 on the first delivery).
    pub deliveries: u64,
    /// Lane priority, 0 (P0) ..= 3 (P3); higher values are clamped.
    pub priority: usize,
    /// The concatenation reference the segments carry (stored with each row, reused by a
    /// redelivery); `None` for single-part messages.
    pub concat_ref: Option<u16>,
    /// One body per segment, segment `i + 1` at index `i`.
    pub segments: Vec<SmBody>,
    /// Segments that already have a correlation row (an earlier delivery sent them).
    pub already_recorded: Vec<u16>,
}

/// Where a segment is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentState {
    /// Waiting for a window slot.
    Queued,
    /// Written; waiting for its submit_sm_resp.
    InFlight,
    /// ESME_ROK; its correlation row is being written (or retried).
    Recording,
    /// Row committed (now or by an earlier delivery).
    Done,
    /// ESME_ROK, but the database refused its row for good (see
    /// [`Ledger::handle_record_refused`]): never sent again, and settled like `Done`.
    Unrecorded,
    /// Not sent, or sent without ESME_ROK.
    Failed,
}

/// Why a message did not go through this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCause {
    /// The SMSC answered a temporary status (or none in time): counts towards
    /// `max_deliver`.
    Smsc { status: Option<CommandStatus> },
    /// Our side: the session ended, a backend was down. Never dead-letters.
    Ours(OwnFailure),
}

/// Our own reasons to give a message back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnFailure {
    SessionEnded,
    /// The session refused a submit it had room for (it changed state under us).
    SessionRefused,
    /// The operator's TPS budget is spent for now.
    OverBudget,
}

/// How a message's failure ends, if it ends in failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Temporary {
        delay: Duration,
        cause: FailureCause,
    },
    Rejected {
        status: CommandStatus,
    },
}

/// How a message is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every segment's row is committed.
    Ack,
    /// Give it back; redelivered after `delay`.
    Nak { delay: Duration },
    /// The SMSC refused it for good: publish a REJECTED DLR event, then ACK.
    Reject { status: CommandStatus },
    /// Temporary failures `deliveries` times: dead letter RETRIES_EXHAUSTED plus a
    /// REJECTED event with `status`, then ACK.
    RetriesExhausted {
        status: CommandStatus,
        deliveries: u64,
    },
}

/// A correlation row to write (segment got ESME_ROK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRequest {
    pub segment: SegmentRef,
    pub message_id: String,
    pub segment_count: u16,
    /// As the SMSC answered it (normalisation is the writer's business).
    pub operator_message_id: String,
    pub concat_ref: Option<u16>,
    /// 0 the first time, then one more per retry.
    pub attempt: u32,
}

/// A settled message.
#[derive(Debug)]
pub struct Settlement<H> {
    pub handle: H,
    pub message_id: String,
    pub segment_count: u16,
    pub deliveries: u64,
    pub verdict: Verdict,
    /// Segments this delivery got ESME_ROK for.
    pub segments_accepted: u16,
}

/// Work for the actor.
#[derive(Debug)]
pub enum Output<H> {
    Record(RecordRequest),
    Settle(Settlement<H>),
}

/// Backoff of failed correlation writes: 100 ms doubling to 5 s, for ever (bounded by
/// [`Ledger::stalled`], which stops intake meanwhile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRetry {
    pub first: Duration,
    pub max: Duration,
}

impl Default for RecordRetry {
    fn default() -> Self {
        RecordRetry {
            first: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl RecordRetry {
    /// Delay before retry number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        self.first
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

#[derive(Debug)]
struct Segment {
    state: SegmentState,
    body: Option<SmBody>,
    operator_message_id: Option<String>,
    record_attempts: u32,
    /// When it was written to the SMSC ([`Ledger::next_submit_at`]).
    written_at: Option<Instant>,
}

#[derive(Debug)]
struct Message<H> {
    handle: H,
    message_id: String,
    deliveries: u64,
    concat_ref: Option<u16>,
    segments: Vec<Segment>,
    failure: Option<Failure>,
    accepted: u16,
}

impl<H> Message<H> {
    fn unsettled(&self) -> bool {
        self.segments.iter().any(|s| {
            matches!(
                s.state,
                SegmentState::Queued | SegmentState::InFlight | SegmentState::Recording
            )
        })
    }

    fn fail(&mut self, failure: Failure) {
        self.failure = match (self.failure, failure) {
            (Some(Failure::Rejected { status }), _) => Some(Failure::Rejected { status }),
            (_, Failure::Rejected { status }) => Some(Failure::Rejected { status }),
            // The SMSC's reason counts towards max_deliver; keep it over ours.
            (
                Some(Failure::Temporary {
                    cause: FailureCause::Smsc { .. },
                    ..
                }),
                Failure::Temporary { .. },
            ) => self.failure,
            (_, temporary) => Some(temporary),
        };
        // The message fails as a whole: what is still queued is not sent now.
        for segment in &mut self.segments {
            if segment.state == SegmentState::Queued {
                segment.state = SegmentState::Failed;
                segment.body = None;
            }
        }
    }
}

/// The ledger of one bind.
#[derive(Debug)]
pub struct Ledger<H> {
    messages: HashMap<DispatchId, Message<H>>,
    /// Queued segments by priority, FIFO within a priority. Entries whose segment is no
    /// longer queued are skipped lazily.
    queues: [VecDeque<SegmentRef>; PRIORITIES],
    queued: usize,
    in_flight: usize,
    /// Failed row writes waiting for their retry, by due time.
    retries: BTreeMap<(Instant, SegmentRef), ()>,
    /// Accepted segments whose row is not committed yet, by the time they were written
    /// (those handed out by [`Ledger::next_submit_at`]).
    unrecorded: std::collections::BTreeSet<(Instant, SegmentRef)>,
    record_failures: usize,
    next_id: DispatchId,
    max_deliver: u64,
    retry: RecordRetry,
    outputs: VecDeque<Output<H>>,
    returns: Returns,
}

/// Deliveries that ended for a reason of ours (the session went away, a redelivery
/// lookup failed) or because the SMSC throttled, per message id. JetStream counts them in `num_delivered`; they are
/// not the message's failures, so they neither double its NAK delay nor bring it closer
/// to the dead letter. Forgotten when the message settles for good; at most
/// [`RETURNS_REMEMBERED`] messages (a message redelivered to another process is never
/// seen again here), the oldest forgotten first — it then counts as it would without.
#[derive(Debug, Default)]
struct Returns {
    counts: HashMap<String, u64>,
    order: VecDeque<String>,
}

impl Returns {
    fn note(&mut self, message_id: &str) {
        if let Some(count) = self.counts.get_mut(message_id) {
            *count += 1;
            return;
        }
        while self.counts.len() >= RETURNS_REMEMBERED {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.counts.remove(&oldest);
                }
                None => break,
            }
        }
        self.counts.insert(message_id.to_owned(), 1);
        self.order.push_back(message_id.to_owned());
    }

    fn forget(&mut self, message_id: &str) {
        if self.counts.remove(message_id).is_some() {
            // `order` keeps the id until it reaches the front (skipped there).
            if self.order.len() > 2 * RETURNS_REMEMBERED {
                let counts = &self.counts;
                self.order.retain(|id| counts.contains_key(id));
            }
        }
    }

    /// The deliveries that count as the message's own: `deliveries` less the returns.
    fn counted(&self, message_id: &str, deliveries: u64) -> u64 {
        deliveries
            .saturating_sub(self.counts.get(message_id).copied().unwrap_or(0))
            .max(1)
    }
}

impl<H> Ledger<H> {
    /// A ledger that dead-letters SMSC-caused temporary failures from the
    /// `max_deliver`-th delivery on.
    pub fn new(max_deliver: u64, retry: RecordRetry) -> Self {
        Ledger {
            messages: HashMap::new(),
            queues: Default::default(),
            queued: 0,
            in_flight: 0,
            retries: BTreeMap::new(),
            unrecorded: std::collections::BTreeSet::new(),
            record_failures: 0,
            next_id: 0,
            max_deliver: max_deliver.max(1),
            retry,
            outputs: VecDeque::new(),
            returns: Returns::default(),
        }
    }

    #[cfg(test)]
    pub fn remembered_returns(&self) -> usize {
        self.returns.counts.len()
    }

    /// Messages held (admitted and not settled).
    pub fn messages(&self) -> usize {
        self.messages.len()
    }

    /// Segments waiting for a window slot.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Segments written and not answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Segments whose correlation row write failed and waits for a retry.
    pub fn record_failures(&self) -> usize {
        self.record_failures
    }

    /// When the oldest segment accepted by the SMSC and still without a committed row
    /// was written (`None`: every accepted segment has its row). A receipt that arrived
    /// before then cannot be waiting for one of these rows.
    pub fn oldest_unrecorded(&self) -> Option<Instant> {
        self.unrecorded.first().map(|(at, _)| *at)
    }

    /// True while a correlation write is failing: take no new messages (each would be
    /// sent and then held too), only finish what is held.
    pub fn stalled(&self) -> bool {
        self.record_failures > 0
    }

    /// Every held message's handle (for in-progress acks).
    pub fn handles(&self) -> impl Iterator<Item = &H> {
        self.messages.values().map(|m| &m.handle)
    }

    /// The state of one segment, if its message is held.
    pub fn segment_state(&self, segment: SegmentRef) -> Option<&SegmentState> {
        self.messages
            .get(&segment.dispatch)?
            .segments
            .get(usize::from(segment.segment).checked_sub(1)?)
            .map(|s| &s.state)
    }

    /// The handle of a held message.
    pub fn handle(&self, dispatch: DispatchId) -> Option<&H> {
        self.messages.get(&dispatch).map(|m| &m.handle)
    }

    /// The message id of a held message (for logs).
    /// The handle and the messageId of a held message, in one lookup.
    pub fn message(&self, dispatch: DispatchId) -> Option<(&H, &str)> {
        self.messages
            .get(&dispatch)
            .map(|m| (&m.handle, m.message_id.as_str()))
    }

    pub fn message_id(&self, dispatch: DispatchId) -> Option<&str> {
        self.messages.get(&dispatch).map(|m| m.message_id.as_str())
    }

    /// Admit a planned message. Segments in `already_recorded` are done; a message whose
    /// every segment is recorded settles with ACK at once.
    pub fn admit(&mut self, admission: Admission<H>) -> DispatchId {
        let id = self.next_id;
        self.next_id += 1;
        let priority = admission.priority.min(PRIORITIES - 1);
        let mut segments = Vec::with_capacity(admission.segments.len());
        for (index, body) in admission.segments.into_iter().enumerate() {
            let number = index as u16 + 1;
            if admission.already_recorded.contains(&number) {
                segments.push(Segment {
                    state: SegmentState::Done,
                    body: None,
                    operator_message_id: None,
                    record_attempts: 0,
                    written_at: None,
                });
            } else {
                self.queues[priority].push_back(SegmentRef {
                    dispatch: id,
                    segment: number,
                });
                self.queued += 1;
                segments.push(Segment {
                    state: SegmentState::Queued,
                    body: Some(body),
                    operator_message_id: None,
                    record_attempts: 0,
                    written_at: None,
                });
            }
        }
        self.messages.insert(
            id,
            Message {
                handle: admission.handle,
                message_id: admission.message_id,
                deliveries: admission.deliveries.max(1),
                concat_ref: admission.concat_ref,
                segments,
                failure: None,
                accepted: 0,
            },
        );
        self.settle_if_done(id);
        id
    }

    /// Give back a message that could not be admitted for a reason of ours (its
    /// redelivery lookup failed): NAK after `delay`, nothing sent.
    pub fn refuse(&mut self, handle: H, message_id: String, deliveries: u64, delay: Duration) {
        self.returns.note(&message_id);
        self.outputs.push_back(Output::Settle(Settlement {
            handle,
            message_id,
            segment_count: 0,
            deliveries,
            verdict: Verdict::Nak { delay },
            segments_accepted: 0,
        }));
    }

    /// The next segment to write, highest priority first; it is in flight from now on.
    pub fn next_submit(&mut self) -> Option<(SegmentRef, SmBody)> {
        for queue in &mut self.queues {
            while let Some(segment) = queue.pop_front() {
                let Some(entry) = self
                    .messages
                    .get_mut(&segment.dispatch)
                    .and_then(|m| m.segments.get_mut(usize::from(segment.segment) - 1))
                else {
                    continue;
                };
                if entry.state != SegmentState::Queued {
                    continue;
                }
                self.queued -= 1;
                let Some(body) = entry.body.take() else {
                    // A queued segment always has its body; treat a missing one as failed.
                    entry.state = SegmentState::Failed;
                    continue;
                };
                entry.state = SegmentState::InFlight;
                self.in_flight += 1;
                return Some((segment, body));
            }
        }
        None
    }

    /// [`Ledger::next_submit`], written at `now`: the time a receipt's wait for its row
    /// is measured against ([`Ledger::oldest_unrecorded`]).
    pub fn next_submit_at(&mut self, now: Instant) -> Option<(SegmentRef, SmBody)> {
        let (segment, body) = self.next_submit()?;
        if let Some(entry) = self.segment_mut(segment) {
            entry.written_at = Some(now);
        }
        Some((segment, body))
    }

    /// The session refused a segment [`Ledger::next_submit`] handed out (it had room a
    /// moment ago): the message goes back to the stream.
    pub fn handle_not_sent(&mut self, segment: SegmentRef) {
        if self.leave_in_flight(segment).is_some() {
            self.fail_message(
                segment.dispatch,
                Failure::Temporary {
                    delay: Duration::from_millis(100),
                    cause: FailureCause::Ours(OwnFailure::SessionRefused),
                },
            );
        }
    }

    /// The submit_sm could not be encoded: the message is refused for good.
    pub fn handle_unencodable(&mut self, segment: SegmentRef) {
        if self.leave_in_flight(segment).is_some() {
            self.fail_message(
                segment.dispatch,
                Failure::Rejected {
                    status: CommandStatus::ESME_RINVMSGLEN,
                },
            );
        }
    }

    /// A submit's outcome (response, timeout or generic_nack), as [`taxonomy`] classified
    /// it. `operator_message_id` is the response's message_id (ESME_ROK).
    pub fn handle_outcome(
        &mut self,
        segment: SegmentRef,
        outcome: &SubmitOutcome,
        operator_message_id: Option<String>,
    ) {
        // The deliveries that count as this message's own (see `Returns`).
        let counted = self
            .messages
            .get(&segment.dispatch)
            .map(|m| self.returns.counted(&m.message_id, m.deliveries));
        let Some(message) = self.leave_in_flight(segment) else {
            return;
        };
        let deliveries = counted.unwrap_or(message.deliveries);
        match outcome.message_action() {
            MessageAction::Ack => {
                let index = usize::from(segment.segment) - 1;
                message.accepted += 1;
                let entry = &mut message.segments[index];
                entry.state = SegmentState::Recording;
                let written_at = entry.written_at;
                let operator_message_id = operator_message_id.unwrap_or_default();
                entry.operator_message_id = Some(operator_message_id.clone());
                let request = RecordRequest {
                    segment,
                    message_id: message.message_id.clone(),
                    segment_count: message.segments.len() as u16,
                    operator_message_id,
                    concat_ref: message.concat_ref,
                    attempt: 0,
                };
                self.outputs.push_back(Output::Record(request));
                if let Some(at) = written_at {
                    self.unrecorded.insert((at, segment));
                }
            }
            MessageAction::AckAndReject { status } => {
                self.fail_message(segment.dispatch, Failure::Rejected { status })
            }
            MessageAction::Nak { .. } => {
                let delay = outcome
                    .nak_delay_after(deliveries)
                    .unwrap_or(taxonomy::TEMPORARY_NAK_DELAY);
                let status = match *outcome {
                    SubmitOutcome::Temporary { status, .. }
                    | SubmitOutcome::SessionFault { status, .. } => Some(status),
                    SubmitOutcome::Throttled { .. } => Some(CommandStatus::ESME_RTHROTTLED),
                    SubmitOutcome::QueueFull { .. } => Some(CommandStatus::ESME_RMSGQFUL),
                    SubmitOutcome::SubmitFailed { .. } => Some(CommandStatus::ESME_RSUBMITFAIL),
                    _ => None,
                };
                self.fail_message(
                    segment.dispatch,
                    Failure::Temporary {
                        delay,
                        cause: FailureCause::Smsc { status },
                    },
                );
            }
        }
    }

    /// The segment's row is committed.
    pub fn handle_recorded(&mut self, segment: SegmentRef) {
        self.end_recording(segment, SegmentState::Done);
    }

    /// The segment's row could not be written: retry after the backoff. The segment is
    /// never sent again; its message waits.
    pub fn handle_record_failed(&mut self, now: Instant, segment: SegmentRef) {
        let retry = self.retry;
        let Some(entry) = self.segment_mut(segment) else {
            return;
        };
        if entry.state != SegmentState::Recording {
            return;
        }
        let first_failure = entry.record_attempts == 0;
        entry.record_attempts += 1;
        let due = now + retry.delay(entry.record_attempts);
        if first_failure {
            self.record_failures += 1;
        }
        self.retries.insert((due, segment), ());
    }

    /// The database refused the segment's row for good (a data error, not an outage):
    /// asking again would get the same answer, and the SMSC accepted the segment, so it is
    /// never sent again either. The segment counts as settled without a row (its receipt
    /// cannot be correlated); the message is ACKed when the rest is done. The bind is not
    /// stalled by it.
    pub fn handle_record_refused(&mut self, segment: SegmentRef) {
        self.end_recording(segment, SegmentState::Unrecorded);
    }

    /// A segment being recorded ends as `done` (row committed, or refused for good):
    /// it no longer waits for its row, nor counts as failing; its message may settle.
    fn end_recording(&mut self, segment: SegmentRef, done: SegmentState) {
        let Some(entry) = self.segment_mut(segment) else {
            return;
        };
        if entry.state != SegmentState::Recording {
            return;
        }
        let was_failing = entry.record_attempts > 0;
        entry.state = done;
        entry.operator_message_id = None;
        if let Some(at) = entry.written_at {
            self.unrecorded.remove(&(at, segment));
        }
        if was_failing {
            self.record_failures -= 1;
        }
        self.settle_if_done(segment.dispatch);
    }

    /// The session ended: nothing queued or in flight will be answered. Their messages
    /// settle now (NAK without delay) unless a row is still being written.
    pub fn handle_session_ended(&mut self) {
        let mut affected = Vec::new();
        for (id, message) in &mut self.messages {
            let mut hit = false;
            for segment in &mut message.segments {
                match segment.state {
                    SegmentState::Queued => {
                        self.queued -= 1;
                        segment.state = SegmentState::Failed;
                        segment.body = None;
                        hit = true;
                    }
                    SegmentState::InFlight => {
                        self.in_flight -= 1;
                        segment.state = SegmentState::Failed;
                        hit = true;
                    }
                    SegmentState::Recording
                    | SegmentState::Done
                    | SegmentState::Unrecorded
                    | SegmentState::Failed => {}
                }
            }
            if hit {
                affected.push(*id);
            }
        }
        for queue in &mut self.queues {
            queue.clear();
        }
        affected.sort_unstable();
        self.give_back(affected);
    }

    /// These messages go back to the stream at once (the session ended, or an unbind
    /// began), as soon as nothing of theirs is in flight or being recorded.
    fn give_back(&mut self, ids: Vec<DispatchId>) {
        for id in ids {
            self.fail_message(
                id,
                Failure::Temporary {
                    delay: Duration::ZERO,
                    cause: FailureCause::Ours(OwnFailure::SessionEnded),
                },
            );
        }
    }

    /// Nothing queued will be sent on this session (a graceful unbind began, or the bind
    /// entered HALF_CLOSED_TX or DRAINING): those messages go back to the stream now;
    /// what is in flight is still answered and recorded.
    pub fn release_queued(&mut self) {
        let affected: Vec<DispatchId> = self
            .messages
            .iter()
            .filter(|(_, m)| m.segments.iter().any(|s| s.state == SegmentState::Queued))
            .map(|(id, _)| *id)
            .collect();
        self.give_back(affected);
        for queue in &mut self.queues {
            queue.clear();
        }
    }

    /// The operator's TPS budget is spent for now (SPEC §8): messages none of whose
    /// segments went out go back to the stream after `delay`, where any bind of any pod
    /// can take them when the budget turns; a message already partly sent keeps its
    /// place. Returns how many were given back.
    pub fn release_unstarted(&mut self, delay: Duration) -> usize {
        let unstarted: Vec<DispatchId> = self
            .messages
            .iter()
            .filter(|(_, m)| m.segments.iter().all(|s| s.state == SegmentState::Queued))
            .map(|(id, _)| *id)
            .collect();
        let count = unstarted.len();
        for id in unstarted {
            self.fail_message(
                id,
                Failure::Temporary {
                    delay,
                    cause: FailureCause::Ours(OwnFailure::OverBudget),
                },
            );
        }
        count
    }

    /// Re-issue the row writes whose retry is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((&(due, segment), _)) = self.retries.first_key_value() {
            if due > now {
                break;
            }
            self.retries.remove(&(due, segment));
            let Some(message) = self.messages.get(&segment.dispatch) else {
                continue;
            };
            let entry = &message.segments[usize::from(segment.segment) - 1];
            if entry.state != SegmentState::Recording {
                continue;
            }
            self.outputs.push_back(Output::Record(RecordRequest {
                segment,
                message_id: message.message_id.clone(),
                segment_count: message.segments.len() as u16,
                operator_message_id: entry.operator_message_id.clone().unwrap_or_default(),
                concat_ref: message.concat_ref,
                attempt: entry.record_attempts,
            }));
        }
    }

    /// When [`Ledger::handle_timeout`] has work next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.retries.first_key_value().map(|((due, _), _)| *due)
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Option<Output<H>> {
        self.outputs.pop_front()
    }

    fn segment_mut(&mut self, segment: SegmentRef) -> Option<&mut Segment> {
        self.messages
            .get_mut(&segment.dispatch)?
            .segments
            .get_mut(usize::from(segment.segment).checked_sub(1)?)
    }

    /// Take a segment out of flight; `None` (and nothing changes) unless it was in flight.
    fn leave_in_flight(&mut self, segment: SegmentRef) -> Option<&mut Message<H>> {
        let message = self.messages.get_mut(&segment.dispatch)?;
        let entry = message
            .segments
            .get_mut(usize::from(segment.segment).checked_sub(1)?)?;
        if entry.state != SegmentState::InFlight {
            return None;
        }
        entry.state = SegmentState::Failed;
        self.in_flight -= 1;
        Some(message)
    }

    fn fail_message(&mut self, id: DispatchId, failure: Failure) {
        let Some(message) = self.messages.get_mut(&id) else {
            return;
        };
        let queued_before = message
            .segments
            .iter()
            .filter(|s| s.state == SegmentState::Queued)
            .count();
        message.fail(failure);
        self.queued -= queued_before;
        self.settle_if_done(id);
    }

    fn settle_if_done(&mut self, id: DispatchId) {
        let Some(message) = self.messages.get(&id) else {
            return;
        };
        if message.unsettled() {
            return;
        }
        let Some(message) = self.messages.remove(&id) else {
            return;
        };
        let all_done = message
            .segments
            .iter()
            .all(|s| matches!(s.state, SegmentState::Done | SegmentState::Unrecorded));
        let verdict = match message.failure {
            None if all_done => Verdict::Ack,
            // Unreachable by construction (a segment fails only through `fail`), but a
            // message that is neither done nor failed must not be ACKed.
            None => Verdict::Nak {
                delay: Duration::ZERO,
            },
            Some(Failure::Rejected { status }) => Verdict::Reject { status },
            // Throttling is the SMSC asking for less traffic, not the message failing:
            // retried, never counted towards the dead letter.
            Some(Failure::Temporary {
                delay,
                cause:
                    FailureCause::Smsc {
                        status: Some(CommandStatus::ESME_RTHROTTLED),
                    },
            }) => {
                self.returns.note(&message.message_id);
                Verdict::Nak { delay }
            }
            Some(Failure::Temporary {
                delay,
                cause: FailureCause::Smsc { status },
            }) => {
                if self
                    .returns
                    .counted(&message.message_id, message.deliveries)
                    >= self.max_deliver
                {
                    Verdict::RetriesExhausted {
                        status: status.unwrap_or(CommandStatus::ESME_RSYSERR),
                        deliveries: message.deliveries,
                    }
                } else {
                    Verdict::Nak { delay }
                }
            }
            Some(Failure::Temporary {
                delay,
                cause: FailureCause::Ours(_),
            }) => {
                self.returns.note(&message.message_id);
                Verdict::Nak { delay }
            }
        };
        if !matches!(verdict, Verdict::Nak { .. }) {
            self.returns.forget(&message.message_id);
        }
        self.outputs.push_back(Output::Settle(Settlement {
            handle: message.handle,
            message_id: message.message_id,
            segment_count: message.segments.len() as u16,
            deliveries: message.deliveries,
            verdict,
            segments_accepted: message.accepted,
        }));
    }
}

#[cfg(test)]
mod tests;
