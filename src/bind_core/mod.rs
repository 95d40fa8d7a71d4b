//! `BindCore`: the state and the decisions of one bind (operator, direction, bindId),
//! sans-IO, as [`crate::protocol::session`] is for one session.
//!
//! It owns the bind's sessions (one for a transceiver, two after the TX + RX fallback),
//! the [`Ledger`] of the messages it holds, the [`FlowController`] while bound, the
//! [`IntakeOrder`] of messages on their way in, the concatenation references
//! ([`ConcatRefs`]), the reconnect [`Backoff`], the bind's pinned consumer state and its
//! life cycle (connecting, bound, unbinding, going down, down for good). The driver (the
//! service's `BindActor`) moves bytes, arms one timer, talks to NATS, Redis, PostgreSQL
//! and OMS, and asks the core what to do at every step; every rule below is decided here
//! and unit-tested here:
//!
//! - whether the bind takes messages ([`BindCore::accepting`]), how many it may submit
//!   now ([`BindCore::submit_allowance`]), when to pull, how many, and from which lanes
//!   ([`BindCore::pull_plan`]), and a failed pull's retry;
//! - what a pulled message meets before the ledger: the drained intake, HALF_CLOSED_TX's
//!   single probe ([`BindCore::screen_pulled`]), a backup bind's operator check
//!   ([`BindCore::check_operator`]);
//! - the concatenation reference of a long message: stored by an earlier delivery, fresh
//!   and remembered before any part goes out, or taken late ([`BindCore::reference_for`]);
//! - the TPS budget: what to ask for, what to do when a grant runs out or is refused
//!   ([`BindCore::grant_answered`]);
//! - the graceful unbind and its drain deadline ([`BindCore::begin_unbind`],
//!   [`BindCore::unbind_due`]); what a closed session means for the bind, the TX + RX
//!   fallback included ([`BindCore::session_closed`]);
//! - the one deadline the driver's timer is armed for ([`BindCore::next_deadline`]);
//! - the pinned consumer's creation and its retry ([`BindCore::pinned_due`]);
//! - the expiry scans of the bind's open MO index ([`BindCore::mo_scan_plan`]);
//! - what a restart keeps and what it clears ([`BindCore::restarted`]).
//!
//! - what a session's event means: a submit's outcome for the flow controller and the
//!   ledger, a phase change and what it gives back, a bound or closed session
//!   ([`BindCore::handle_session_event`], `sessions.rs`);
//! - which concatenation reference a long message takes and when Redis must remember
//!   it or hand out a block ([`BindCore::poll_reference`], `references.rs`).
//!
//! The contract, as quinn-proto's: inputs are `handle_*(…, now)` (a PDU read, the
//! timer, a session event handed back, a pull's messages, a grant, a row written, a
//! reference remembered…); outputs are `poll_*()`: [`BindCore::poll_transmit`] (bytes),
//! [`BindCore::poll_session_event`] (what a session reported, to report before handing it
//! back), [`BindCore::poll_event`] (state changes and the flow controller's notices),
//! [`BindCore::poll_pull`] (a pull, its lanes and room), [`BindCore::poll_grant`] (ask
//! TPS), [`BindCore::poll_reference`] (remember or reserve references),
//! [`Ledger::poll_output`] (rows to record; ACK, NAK, REJECTED, dead letter),
//! [`BindCore::poll_timeout`] (the timer).
//!
//! `H` settles one NATS message (the driver's handle); `P` is a message on its way in
//! (pulled, waiting for its redelivery lookup or its reference; [`Incoming`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::config::{BindKey, OperatorId};
use crate::credentials::Credentials;
use crate::dispatch::concat_refs::{ConcatRefs, RefSize};
use crate::dispatch::flow::{FlowConfig, FlowController};
use crate::dispatch::intake_order::IntakeOrder;
use crate::dispatch::ledger::{Ledger, RecordRetry, SegmentRef};
use crate::dispatch::{DeadLetterReason, DispatchCommand, Rejection, SubmitProfile};
use crate::log_budget::LogBudget;
use crate::protocol::pdu::BindMode;
use crate::protocol::session::{BindState, CloseReason, Session};
use crate::protocol::taxonomy;

/// Pull slots of a bind: the operator's four lanes (P0 = 0 … P3 = 3) and the bind's own
/// pinned consumer.
pub const SLOTS: usize = 5;
/// Pull slot of the bind's pinned consumer (`qg-…`, US-SC-019).
pub const PINNED_SLOT: usize = 4;
/// A failed pull is tried again this much later.
pub const PULL_RETRY: Duration = Duration::from_millis(500);
/// A failed creation of the pinned consumer is tried again this much later.
pub const PINNED_RETRY: Duration = Duration::from_secs(2);
/// A message the TPS budget cannot cover this second is delivered again this much later
/// (SPEC §8).
pub const TPS_NAK_DELAY: Duration = Duration::from_millis(500);
/// A dead letter or REJECTED event that could not be published: the command is NAKed and
/// comes back this much later.
pub const PUBLISH_FAILED_NAK_DELAY: Duration = Duration::from_secs(1);
/// Sequence numbers reserved in Redis at a time (US-SC-022); a new block is asked for at
/// half.
pub const SEQUENCE_BLOCK: u32 = 10_000;
/// Dead-letter lines one bind logs per minute before one ERROR and a count.
pub const DEAD_LETTER_LINES_PER_MINUTE: u32 = 10;
/// Every this many MO expiry scans, the bind also scans its index from before the hash
/// tags (parts an earlier version stored during an upgrade).
pub const LEGACY_SCAN_EVERY: u32 = 12;

/// The ledger priority of what a slot brings: pinned messages queue with P2, the
/// platform's default lane.
pub fn ledger_priority(slot: usize) -> usize {
    if slot == PINNED_SLOT { 2 } else { slot.min(3) }
}

/// One submitted segment, as its session carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentToken {
    pub segment: SegmentRef,
    pub written_at: Instant,
}

/// One session of the bind.
#[derive(Debug)]
pub struct Link {
    pub session: Session<SegmentToken>,
    /// Its bind handshake succeeded.
    pub bound: bool,
}

/// The bind's own pinned consumer (`qg-…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinned {
    /// Not created yet; `failures` attempts failed, the next not before `retry_at`.
    Missing {
        failures: u32,
        retry_at: Option<Instant>,
    },
    /// A creation is under way (a restart cancels it).
    Creating,
    Ready,
}

/// What to do once the sessions are closed after a graceful unbind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterUnbind {
    Reconnect,
    Stop,
}

/// A graceful unbind under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unbinding {
    pub drain_deadline: Instant,
    pub unbind_sent: bool,
    pub reason: &'static str,
}

/// What [`BindCore::begin_unbind`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnbindStart {
    /// Nothing to drain (no session, or not bound): go down now.
    GoDownNow,
    /// Draining: queued messages went back to the stream, in-flight ones are answered
    /// first; the unbind is written when [`BindCore::unbind_due`] says.
    Draining,
    /// Already unbinding (a shutdown took over its reason).
    AlreadyUnbinding,
}

/// What a closed session means for the bind ([`BindCore::session_closed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseVerdict {
    /// Our graceful unbind ended on this session; the others are still closing.
    UnbindClosing,
    /// Our graceful unbind is complete: go down, reconnect at once unless shutting down.
    UnbindDone,
    /// bind_transceiver refused as unsupported: reconnect at once as transmitter +
    /// receiver.
    SplitBindFallback,
    /// The SMSC refused the bind: a failed attempt (backoff; check the credentials).
    BindRejected,
    /// The enquire_link went unanswered: a failed attempt.
    EnquireLinkTimedOut,
    /// Anything else (the peer unbound, a bind or unbind timeout, a generic_nack): a
    /// failed attempt.
    Failed,
}

/// A pull the bind should start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullPlan {
    /// Messages it may take at most.
    pub room: usize,
    /// Slots not to ask (a listener is open there: what arrives there comes anyway).
    pub skip: [bool; SLOTS],
}

/// What a pulled message meets before its command is read ([`BindCore::screen_pulled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Take it in.
    Take,
    /// Give it back, delivered again after `delay`.
    Nak { delay: Duration },
}

/// Which concatenation reference a long message gets ([`BindCore::reference_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefChoice {
    /// Not a long message: none.
    None,
    /// An earlier delivery's (its rows or Redis remember it): the parts it sent and the
    /// ones it did not share it.
    Stored(u16),
    /// Taken and remembered for it before it was admitted.
    Fresh(u16),
    /// Neither (its bind's profile changed meanwhile): take one now and remember it
    /// without waiting, as the rows will say which parts went out.
    TakeNow,
}

/// A request for TPS tokens ([`BindCore::poll_grant`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantRequest {
    /// The operator's limit (tokens a second).
    pub limit: u32,
    /// Tokens wanted.
    pub want: u32,
    /// Binds of the operator that share the limit.
    pub live_binds: u32,
}

/// What to do after a TPS grant came back ([`BindCore::grant_answered`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GrantAfter {
    /// Messages none of whose segments went out were given back to the stream (the
    /// budget is spent this second): the driver carries out the ledger's settlements.
    pub released: usize,
    /// Over the limit for this window: ask again this much later.
    pub ask_again_in: Option<Duration>,
}

/// What one MO expiry scan covers ([`BindCore::mo_scan_plan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPlan {
    /// Also the bind's index from before the hash tags.
    pub legacy: bool,
}

/// What a restart found ([`BindCore::restarted`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restarted {
    /// Messages the bind held (in the ledger or on their way in).
    pub held: usize,
    /// Of them, still waiting for a correlation row (kept).
    pub still_recording: usize,
}

/// What a bind's core is set up with.
#[derive(Debug, Clone)]
pub struct CoreSettings {
    /// Most messages one pull takes (`FETCH_BATCH`).
    pub fetch_batch: usize,
    /// How long a graceful unbind drains in-flight submits before the unbind goes out.
    pub drain_timeout: Duration,
    /// Deliveries after which SMSC-caused failures dead-letter a message.
    pub max_deliver: u64,
    pub flow: FlowConfig,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Reconnect jitter (0: none).
    pub jitter: f64,
}

/// Problems logged once per outage, not once per message.
#[derive(Debug, Default)]
pub struct Outages {
    /// Correlation row writes are failing.
    pub record: crate::log_budget::Outage,
    /// Redelivery lookups are failing.
    pub lookup: crate::log_budget::Outage,
    /// The bind's pinned consumer cannot be created.
    pub pinned: crate::log_budget::Outage,
}

/// One bind's state and decisions (see the module doc).
#[derive(Debug)]
pub struct BindCore<H, P> {
    key: BindKey,
    serves: OperatorId,
    settings: CoreSettings,
    state: BindState,
    /// The sessions of the current connection (empty when down).
    links: Vec<Link>,
    credentials: Option<Arc<Credentials>>,
    profile: Option<SubmitProfile>,
    /// Messages held, segment by segment. Survives restarts.
    pub ledger: Ledger<H>,
    /// Window, TPS tokens and phase while bound.
    flow: Option<FlowController>,
    /// What the core decided for the driver, not polled yet ([`BindCore::poll_event`]).
    events: VecDeque<BindEvent>,
    /// Messages on their way to the ledger, kept in pull order.
    intake: IntakeOrder<P>,
    concat: ConcatRefs,
    /// Reference work decided, not polled yet ([`BindCore::poll_reference`]).
    reference_work: VecDeque<ReferenceWork>,
    backoff: Backoff,
    /// Admin drain: no new messages; what is held finishes; the bind stays bound.
    intake_paused: bool,
    /// Bind with bind_transmitter + bind_receiver (after ESME_RINVCMDID).
    split_bind: bool,
    /// The next connect goes at once, not after the backoff.
    reconnect_now: bool,
    /// Down for good (shutdown, released, aborted): no reconnect.
    shutting_down: bool,
    /// The connection's writers are flushing before the bind goes down.
    closing: bool,
    unbinding: Option<Unbinding>,
    pinned: Pinned,
    /// A pull is under way (or waits for its retry).
    fetching: bool,
    /// Per slot: a listener (a long poll still waiting after its pull ended) is open.
    listening: [bool; SLOTS],
    /// An `AcquireTps` is under way or waits for the next budget window.
    granting: bool,
    /// A sequence block is being reserved.
    sequence_refill: bool,
    last_error: Option<String>,
    pub outages: Outages,
    /// Dead-letter lines: ten a minute, then one ERROR, then a count.
    pub dead_letter_log: LogBudget,
    /// Sequence skips already counted.
    pub sequence_skips_reported: u64,
    /// An expiry scan of the open MO index is under way.
    mo_scanning: bool,
    /// Expiry scans run so far.
    mo_scans: u32,
}

impl<H, P> BindCore<H, P> {
    /// The core of bind `key`, carrying the traffic of `serves` (its own operator, or the
    /// primary's for a backup bind).
    pub fn new(key: BindKey, serves: OperatorId, settings: CoreSettings) -> Self {
        let jitter = (settings.jitter > 0.0).then_some(settings.jitter);
        BindCore {
            backoff: Backoff::new(settings.backoff_base, settings.backoff_max, jitter),
            ledger: Ledger::new(settings.max_deliver.max(1), RecordRetry::default()),
            key,
            serves,
            settings,
            state: BindState::Disconnected,
            links: Vec::new(),
            credentials: None,
            profile: None,
            flow: None,
            events: VecDeque::new(),
            intake: IntakeOrder::default(),
            concat: ConcatRefs::default(),
            reference_work: VecDeque::new(),
            intake_paused: false,
            split_bind: false,
            reconnect_now: false,
            shutting_down: false,
            closing: false,
            unbinding: None,
            pinned: Pinned::Missing {
                failures: 0,
                retry_at: None,
            },
            fetching: false,
            listening: [false; SLOTS],
            granting: false,
            sequence_refill: false,
            last_error: None,
            outages: Outages::default(),
            dead_letter_log: LogBudget::new(DEAD_LETTER_LINES_PER_MINUTE, Duration::from_secs(60)),
            sequence_skips_reported: 0,
            mo_scanning: false,
            mo_scans: 0,
        }
    }

    // ----- what it is -----------------------------------------------------------------

    pub fn key(&self) -> &BindKey {
        &self.key
    }

    /// The operator whose traffic it carries.
    pub fn serves(&self) -> &OperatorId {
        &self.serves
    }

    /// A backup bind: keyed by the backup operator, carrying the primary's traffic.
    pub fn is_backup(&self) -> bool {
        self.serves != self.key.operator_id
    }

    pub fn state(&self) -> BindState {
        self.state
    }

    /// The sessions of the current connection (empty when down).
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// The flow controller (while bound).
    pub fn flow(&self) -> Option<&FlowController> {
        self.flow.as_ref()
    }

    pub fn credentials(&self) -> Option<&Arc<Credentials>> {
        self.credentials.as_ref()
    }

    pub fn profile(&self) -> Option<&SubmitProfile> {
        self.profile.as_ref()
    }

    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    pub fn intake_paused(&self) -> bool {
        self.intake_paused
    }

    pub fn shutting_down(&self) -> bool {
        self.shutting_down
    }

    pub fn split_bind(&self) -> bool {
        self.split_bind
    }

    pub fn unbinding(&self) -> Option<&Unbinding> {
        self.unbinding.as_ref()
    }

    pub fn pinned(&self) -> Pinned {
        self.pinned
    }

    /// The session that submits (the transceiver, or the transmitter of a split bind).
    pub fn transmitter(&self) -> Option<&Link> {
        self.links.iter().find(|l| l.session.mode().can_submit())
    }

    pub fn transmitter_index(&self) -> Option<usize> {
        self.links
            .iter()
            .position(|l| l.session.mode().can_submit())
    }

    /// Submits in flight on the transmitter.
    pub fn in_flight(&self) -> usize {
        self.transmitter().map_or(0, |l| l.session.in_flight())
    }

    // ----- taking messages ------------------------------------------------------------

    /// The bind takes new messages: bound, half-closed (for its probe) or draining (then
    /// the flow controller allows nothing), not unbinding, not going down.
    pub fn accepting(&self) -> bool {
        self.state.is_bound()
            && self.state != BindState::Draining
            && self.unbinding.is_none()
            && !self.closing
    }

    /// Submits the window, the phase and the TPS tokens allow now.
    pub fn submit_allowance(&self, now: Instant) -> usize {
        let Some(link) = self.transmitter() else {
            return 0;
        };
        let hard = link.session.free_slots();
        self.flow.as_ref().map_or(hard, |f| {
            f.submit_allowance(now, link.session.in_flight()).min(hard)
        })
    }

    /// Messages already on their way: queued segments and messages not admitted yet.
    fn waiting(&self) -> usize {
        self.ledger.queued() + self.intake.len()
    }

    /// What the window alone would let the intake take (before TPS tokens).
    pub fn window_room(&self) -> usize {
        let Some(link) = self.transmitter() else {
            return 0;
        };
        link.session
            .free_slots()
            .saturating_sub(self.waiting())
            .min(self.settings.fetch_batch)
    }

    /// Messages the intake may take now: what window, phase and TPS tokens allow, minus
    /// what already waits.
    pub fn intake_room(&self, now: Instant) -> usize {
        self.submit_allowance(now)
            .saturating_sub(self.waiting())
            .min(self.settings.fetch_batch)
    }

    /// A pull to start now, if any: the bind takes messages, its intake is open, no pull
    /// runs, no row write is failing, and there is room. `lanes` are the slots it pulls
    /// (in pull order); slots with an open listener are skipped.
    pub fn pull_plan(&self, now: Instant, lanes: &[usize]) -> Option<PullPlan> {
        if self.fetching
            || !self.accepting()
            || self.intake_paused
            || lanes.is_empty()
            || self.ledger.stalled()
        {
            return None;
        }
        let room = self.intake_room(now);
        if room == 0 {
            return None;
        }
        if lanes
            .iter()
            .all(|slot| self.listening.get(*slot).copied().unwrap_or(false))
        {
            return None;
        }
        Some(PullPlan {
            room,
            skip: self.listening,
        })
    }

    /// The pull to start now ([`BindCore::pull_plan`]), counted as under way from now.
    pub fn poll_pull(&mut self, now: Instant, lanes: &[usize]) -> Option<PullPlan> {
        let plan = self.pull_plan(now, lanes)?;
        self.pull_started();
        Some(plan)
    }

    /// The pull of [`BindCore::pull_plan`] started.
    pub fn pull_started(&mut self) {
        self.fetching = true;
    }

    /// A pull's own part ended, leaving listeners open on `listeners`. `failed`: it is
    /// tried again at the returned instant (the driver calls
    /// [`BindCore::pull_retry_due`] then).
    pub fn pull_finished(
        &mut self,
        now: Instant,
        listeners: &[usize],
        failed: bool,
    ) -> Option<Instant> {
        self.fetching = failed;
        for slot in listeners {
            if let Some(listening) = self.listening.get_mut(*slot) {
                *listening = true;
            }
        }
        failed.then(|| now + PULL_RETRY)
    }

    /// The retry of a failed pull is due.
    pub fn pull_retry_due(&mut self) {
        self.fetching = false;
    }

    /// A listener's long poll ended.
    pub fn listen_ended(&mut self, slot: usize) {
        if let Some(listening) = self.listening.get_mut(slot) {
            *listening = false;
        }
    }

    /// What a pulled message meets before its command is read: back to the stream at
    /// once while the bind does not take messages (unbinding, drained by an admin, going
    /// down); while HALF_CLOSED_TX, one probe at a time, the rest back after the
    /// throttle delay.
    pub fn screen_pulled(&self) -> Screen {
        if !self.accepting() || self.intake_paused {
            return Screen::Nak {
                delay: Duration::ZERO,
            };
        }
        if self.state == BindState::HalfClosedTx
            && self.ledger.queued() + self.ledger.in_flight() + self.intake.len() > 0
        {
            return Screen::Nak {
                delay: taxonomy::THROTTLED_NAK_DELAY,
            };
        }
        Screen::Take
    }

    /// A command must name the operator whose traffic the bind carries (a backup bind
    /// carries the primary's, whose commands name the primary).
    pub fn check_operator(&self, command: DispatchCommand) -> Result<DispatchCommand, Rejection> {
        if command.operator_id == self.serves {
            return Ok(command);
        }
        Err(Rejection {
            reason: DeadLetterReason::InvalidField,
            detail: "operatorId: does not match the subject's operator".into(),
            message_id: Some(command.message_id),
            operator_id: Some(command.operator_id.to_string()),
        })
    }

    /// The intake place of a message just pulled (messages reach the ledger in this
    /// order).
    pub fn take_place(&mut self) -> u64 {
        self.intake.take_place()
    }

    /// The message at `order` waits for its redelivery lookup.
    pub fn looking_up(&mut self, order: u64) {
        self.intake.looking_up(order);
    }

    /// What is known of the message at `order` is in (its lookup answered, or none was
    /// needed): it is prepared ([`BindCore::poll_reference`]), then admitted in turn
    /// ([`BindCore::poll_admissible`]).
    pub fn looked_up(&mut self, order: u64, item: P) {
        self.intake.looked_up(order, item);
    }

    /// Messages pulled and not admitted yet.
    pub fn intake_len(&self) -> usize {
        self.intake.len()
    }

    /// Admin drain (`true`) or resume; `true` when it changed.
    pub fn pause_intake(&mut self, paused: bool) -> bool {
        std::mem::replace(&mut self.intake_paused, paused) != paused
    }

    // ----- concatenation references ---------------------------------------------------

    /// The size of a fresh reference, if a message needs one: a long message (`long`)
    /// with no reference from an earlier delivery, on a bind that takes messages. 16-bit
    /// when the operator asks for it, or when `destination` already got every 8-bit
    /// reference within the reference window (US-SC-026, [`ConcatRefs::size_for`]).
    pub fn fresh_reference(
        &self,
        stored: Option<u16>,
        long: bool,
        now: Instant,
        destination: &str,
    ) -> Option<RefSize> {
        let profile = self.profile.as_ref()?;
        (stored.is_none() && self.accepting() && long)
            .then(|| self.concat.size_for(profile.ref_bits, now, destination))
    }

    /// The size of a reference to take now, for a long message to `destination` that was
    /// not given one in the intake.
    pub fn reference_size(&self, now: Instant, destination: &str) -> Option<RefSize> {
        Some(
            self.concat
                .size_for(self.profile.as_ref()?.ref_bits, now, destination),
        )
    }

    /// The profile a message with `reference` is cut with: the operator's, with the
    /// reference size that reference was taken at (a widened one is 16-bit on an 8-bit
    /// profile), so a redelivery cuts the same parts.
    pub fn planning_profile(&self, reference: Option<u16>) -> Option<SubmitProfile> {
        let mut profile = self.profile.clone()?;
        if let Some(reference) = reference {
            profile.ref_bits = crate::dispatch::concat_refs::bits_of(profile.ref_bits, reference);
        }
        Some(profile)
    }

    /// The reference of a message being admitted: `long` whether it needs one, `stored`
    /// an earlier delivery's, `fresh` the one taken for it while it waited in the intake.
    pub fn reference_for(long: bool, stored: Option<u16>, fresh: Option<u16>) -> RefChoice {
        match (long, stored, fresh) {
            (false, _, _) => RefChoice::None,
            (true, Some(stored), _) => RefChoice::Stored(stored),
            (true, None, Some(fresh)) => RefChoice::Fresh(fresh),
            (true, None, None) => RefChoice::TakeNow,
        }
    }

    // ----- the TPS budget -------------------------------------------------------------

    /// Tokens to ask the operator's budget for now, if any: when the window could use
    /// more than the bind holds, one request at a time, and only with a limit. Returns
    /// (limit, tokens wanted, live binds of the operator).
    pub fn grant_wanted(&self, now: Instant) -> Option<(u32, u32, u32)> {
        if self.granting || !self.accepting() {
            return None;
        }
        let credentials = self.credentials.as_ref()?;
        let limit = credentials.tps_limit?;
        let flow = self.flow.as_ref()?;
        let room = if self.ledger.stalled() {
            0
        } else {
            self.window_room()
        };
        let want = flow.wanted_grant(now, self.in_flight(), self.ledger.queued(), room);
        (want > 0).then(|| (limit, want, u32::from(credentials.bind_count.max(1))))
    }

    /// The TPS request to send now ([`BindCore::grant_wanted`]), counted as under way
    /// from now: answer it with [`BindCore::grant_answered`].
    pub fn poll_grant(&mut self, now: Instant) -> Option<GrantRequest> {
        let (limit, want, live_binds) = self.grant_wanted(now)?;
        self.grant_asked();
        Some(GrantRequest {
            limit,
            want,
            live_binds,
        })
    }

    /// The request of [`BindCore::grant_wanted`] went out.
    pub fn grant_asked(&mut self) {
        self.granting = true;
    }

    /// A grant came back (`None`: the request failed). What cannot go this second goes
    /// back to the stream, where any bind can take it when the budget turns (started
    /// messages stay); over the limit, it asks again when the window turns.
    pub fn grant_answered(&mut self, now: Instant, grant: Option<(u32, Duration)>) -> GrantAfter {
        self.granting = false;
        let Some((granted, valid_for)) = grant else {
            return GrantAfter::default();
        };
        if let Some(flow) = &mut self.flow {
            flow.add_grant(now, granted, now + valid_for);
        }
        let spent = self.flow.as_ref().is_some_and(|f| f.tokens(now) == 0);
        let mut after = GrantAfter::default();
        if spent && self.ledger.queued() > 0 {
            after.released = self.ledger.release_unstarted(TPS_NAK_DELAY);
        }
        if granted == 0 {
            self.granting = true;
            after.ask_again_in =
                Some(valid_for.clamp(Duration::from_millis(10), Duration::from_secs(1)));
        }
        after
    }

    /// The wait of [`GrantAfter::ask_again_in`] is over.
    pub fn grant_wait_over(&mut self) {
        self.granting = false;
    }

    // ----- sequence numbers -----------------------------------------------------------

    /// The session that needs a new sequence block (half of its block used), if no
    /// reservation runs; the reservation counts as under way from now.
    pub fn sequences_wanted(&mut self) -> Option<usize> {
        if self.sequence_refill {
            return None;
        }
        let index = self.links.iter().position(|l| {
            l.session
                .sequences_remaining()
                .is_some_and(|left| left < SEQUENCE_BLOCK / 2)
        })?;
        self.sequence_refill = true;
        Some(index)
    }

    /// A reservation answered (`None`: Redis failed; numbering goes on locally).
    pub fn sequences_reserved(&mut self, index: usize, block: Option<(u32, u32)>) {
        self.sequence_refill = false;
        if let (Some(link), Some((first, len))) = (self.links.get_mut(index), block) {
            link.session.refill_sequences(first, len);
        }
    }

    // ----- the pinned consumer --------------------------------------------------------

    /// Create the pinned consumer now? Only a submitting bind that is not going down,
    /// once, and again [`PINNED_RETRY`] after a failure. Returns the failures so far (the
    /// first is warned about); the creation counts as under way from now.
    pub fn pinned_due(&mut self, now: Instant) -> Option<u32> {
        let failures = match self.pinned {
            Pinned::Missing { retry_at, .. } if retry_at.is_some_and(|at| at > now) => {
                return None;
            }
            Pinned::Missing { failures, .. } => failures,
            Pinned::Creating | Pinned::Ready => return None,
        };
        if self.shutting_down || !self.key.direction.submits() {
            return None;
        }
        self.pinned = Pinned::Creating;
        Some(failures)
    }

    /// The creation ended: ready, or failed (`failures` before it).
    pub fn pinned_created(&mut self, now: Instant, created: bool, failures: u32) {
        self.pinned = if created {
            Pinned::Ready
        } else {
            Pinned::Missing {
                failures: failures + 1,
                retry_at: Some(now + PINNED_RETRY),
            }
        };
    }

    // ----- connecting, bound, down ----------------------------------------------------

    /// The credentials and sessions of a new connection.
    pub fn connected(&mut self, credentials: Arc<Credentials>, links: Vec<Link>) {
        self.profile = Some(credentials.submit_profile());
        self.credentials = Some(credentials);
        self.links = links;
    }

    /// Session `index` bound. When every session is bound the bind is: its flow
    /// controller starts (window and TPS limit from the credentials), the backoff resets,
    /// and `true` is returned.
    pub fn session_bound(&mut self, index: usize) -> bool {
        if let Some(link) = self.links.get_mut(index) {
            link.bound = true;
        }
        if !self.links.iter().all(|l| l.bound) {
            return false;
        }
        let window = self.credentials.as_ref().map_or(100, |c| c.window as usize);
        let limited = self
            .credentials
            .as_ref()
            .is_some_and(|c| c.tps_limit.is_some());
        self.flow = Some(FlowController::new(self.settings.flow, window, limited));
        self.backoff.reset();
        self.last_error = None;
        true
    }

    /// A failed attempt (connect, bind, session): counted in the backoff; its reason
    /// kept for the admin API. Returns the attempt number.
    pub fn attempt_failed(&mut self, error: String) -> u32 {
        self.last_error = Some(error);
        self.backoff.record_failure()
    }

    /// How long to wait before the next connect (`random_unit` in [0, 1) for the
    /// jitter): at once after a graceful unbind or the TX + RX fallback, else the
    /// backoff's delay. `None`: down for good.
    pub fn connect_delay(&mut self, random_unit: f64) -> Option<Duration> {
        if self.shutting_down {
            return None;
        }
        if std::mem::take(&mut self.reconnect_now) {
            return Some(Duration::ZERO);
        }
        Some(self.backoff.next_delay(random_unit))
    }

    /// The next connect goes at once.
    pub fn reconnect_now(&mut self) {
        self.reconnect_now = true;
    }

    /// Down for good from now: no reconnect.
    pub fn shut_down(&mut self) {
        self.shutting_down = true;
    }

    /// The connection's writers are flushing (`true`) before the bind goes down.
    pub fn set_closing(&mut self, closing: bool) {
        self.closing = closing;
    }

    pub fn closing(&self) -> bool {
        self.closing
    }

    /// Start a graceful unbind: reconnect afterwards, or stop for good.
    pub fn begin_unbind(
        &mut self,
        then: AfterUnbind,
        reason: &'static str,
        now: Instant,
    ) -> UnbindStart {
        if then == AfterUnbind::Stop {
            self.shutting_down = true;
        }
        if self.links.is_empty() || !self.state.is_bound() {
            self.reconnect_now = true;
            return UnbindStart::GoDownNow;
        }
        if let Some(unbinding) = &mut self.unbinding {
            if then == AfterUnbind::Stop {
                unbinding.reason = reason;
            }
            return UnbindStart::AlreadyUnbinding;
        }
        self.unbinding = Some(Unbinding {
            drain_deadline: now + self.settings.drain_timeout,
            unbind_sent: false,
            reason,
        });
        // Segments not yet written go back to the stream now; in-flight ones are
        // answered and recorded first.
        self.ledger.release_queued();
        UnbindStart::Draining
    }

    /// True (once) when the unbind must be written now: every held message settled, or
    /// the drain deadline passed.
    pub fn unbind_due(&mut self, now: Instant) -> bool {
        let drained = self.ledger.messages() == 0;
        let Some(unbinding) = &mut self.unbinding else {
            return false;
        };
        if unbinding.unbind_sent || !(drained || now >= unbinding.drain_deadline) {
            return false;
        }
        unbinding.unbind_sent = true;
        true
    }

    /// The unbind is complete: the reason to go down with; the next connect is at once
    /// (unless shutting down).
    pub fn unbind_done(&mut self) -> &'static str {
        self.reconnect_now = true;
        self.unbinding.as_ref().map_or("unbound", |u| u.reason)
    }

    /// What session `index` closing for `reason` means for the bind.
    pub fn session_closed(&mut self, index: usize, reason: &CloseReason) -> CloseVerdict {
        let mode = self
            .links
            .get(index)
            .map_or(BindMode::Transceiver, |l| l.session.mode());
        match reason {
            CloseReason::Unbound | CloseReason::UnbindTimedOut if self.unbinding.is_some() => {
                if let Some(link) = self.links.get_mut(index) {
                    link.bound = false;
                }
                let all_closed = self
                    .links
                    .iter()
                    .all(|l| l.session.state() == crate::protocol::session::SessionState::Closed);
                if all_closed {
                    CloseVerdict::UnbindDone
                } else {
                    CloseVerdict::UnbindClosing
                }
            }
            CloseReason::BindRejected(status) => match taxonomy::classify_bind(*status) {
                Err(failure)
                    if failure.falls_back_to_split_bind() && mode == BindMode::Transceiver =>
                {
                    self.split_bind = true;
                    self.reconnect_now = true;
                    CloseVerdict::SplitBindFallback
                }
                _ => CloseVerdict::BindRejected,
            },
            CloseReason::EnquireLinkTimedOut => CloseVerdict::EnquireLinkTimedOut,
            CloseReason::BindTimedOut
            | CloseReason::PeerUnbound
            | CloseReason::Unbound
            | CloseReason::UnbindTimedOut
            | CloseReason::GenericNack(_)
            | CloseReason::InvalidBindStatus => CloseVerdict::Failed,
        }
    }

    /// The one instant the driver's timer is armed for: the sessions' deadlines, the
    /// ledger's row retries, the flow controller's next change (a passed one waits for a
    /// condition the next input brings) and the drain deadline.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let sessions = self.links.iter().filter_map(|l| l.session.poll_timeout());
        let drain = self
            .unbinding
            .as_ref()
            .filter(|u| !u.unbind_sent)
            .map(|u| u.drain_deadline);
        let flow = self
            .flow
            .as_ref()
            .and_then(|f| f.poll_timeout())
            .filter(|at| *at > now);
        sessions
            .chain(self.ledger.poll_timeout())
            .chain(flow)
            .chain(drain)
            .min()
    }

    /// The bind restarts (its connection is gone): what was queued or in flight goes back
    /// to the stream (the ledger's settlements follow), what waits for a row keeps
    /// waiting; every per-connection state is cleared. `unadmitted` receives the messages
    /// that were on their way in (to be given back by the driver).
    pub fn restarted(&mut self, unadmitted: &mut Vec<P>) -> Restarted {
        let held = self.ledger.messages() + self.intake.len();
        self.ledger.handle_session_ended();
        unadmitted.extend(self.intake.take_looked());
        self.concat.restarted();
        self.reference_work.clear();
        self.links.clear();
        self.credentials = None;
        self.profile = None;
        self.flow = None;
        self.fetching = false;
        self.listening = [false; SLOTS];
        self.granting = false;
        self.sequence_refill = false;
        self.mo_scanning = false;
        self.unbinding = None;
        self.closing = false;
        if self.pinned == Pinned::Creating {
            // The restart cancelled the creation: try again.
            self.pinned = Pinned::Missing {
                failures: 0,
                retry_at: None,
            };
        }
        Restarted {
            held,
            still_recording: self.ledger.messages(),
        }
    }

    // ----- MO expiry scans -----------------------------------------------------------

    /// Start an expiry scan of the bind's open MO index, if none runs: every
    /// [`LEGACY_SCAN_EVERY`] scans it also covers the index from before the hash tags.
    /// (Orphaned indexes of bind ids the operator no longer has are a cluster chore:
    /// [`crate::cluster::chores`].)
    pub fn mo_scan_plan(&mut self) -> Option<ScanPlan> {
        if self.mo_scanning {
            return None;
        }
        self.mo_scanning = true;
        self.mo_scans = self.mo_scans.wrapping_add(1);
        Some(ScanPlan {
            legacy: self.mo_scans % LEGACY_SCAN_EVERY == 1,
        })
    }

    /// The scan of [`BindCore::mo_scan_plan`] ended.
    pub fn mo_scan_done(&mut self) {
        self.mo_scanning = false;
    }
}

/// How often a bind scans its open MO index: a quarter of the concatenation window, within
/// 100 ms – 5 s.
pub fn mo_scan_interval(window: Duration) -> Duration {
    (window / 4).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

mod references;
mod sessions;
#[cfg(test)]
mod tests;

pub use references::{Incoming, ReferenceWork};
pub use sessions::{BindEvent, FollowUp, Gauges, StateChange, submit_outcome};
