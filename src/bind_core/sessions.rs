//! The bind's sessions driven by the core: the contract its driver follows while a
//! connection exists.
//!
//! Inputs, each with `now`:
//! - [`BindCore::handle_inbound`]: a PDU read on a session's socket;
//! - [`BindCore::handle_timeout`]: the instant [`BindCore::poll_timeout`] gave has come;
//! - [`BindCore::handle_session_event`]: a session event the driver has reported, handed
//!   back for the core to decide on;
//! - [`BindCore::submit_queued`]: the driver may write now;
//! - [`BindCore::respond_deliver_sm`], [`BindCore::unbind_if_due`],
//!   [`BindCore::unbind_all`], [`BindCore::apply_window_setting`], [`BindCore::housekeeping`].
//!
//! Outputs:
//! - [`BindCore::poll_transmit`]: bytes to write, by session;
//! - [`BindCore::poll_session_event`]: what a session reported (a submit answered, a
//!   deliver_sm, a close…). The driver reports it — while the held message is still where
//!   it was, so its log line and trace can read it — then hands it back to
//!   [`BindCore::handle_session_event`], which applies it and says what the driver carries
//!   out ([`FollowUp`]);
//! - [`BindCore::poll_event`]: state changes and the flow controller's notices, in the
//!   order they were decided ([`BindEvent`]);
//! - the ledger's [`crate::dispatch::ledger::Ledger::poll_output`]: rows to record, messages to ACK,
//!   NAK, reject or dead-letter;
//! - [`BindCore::poll_timeout`]: the one instant to arm the timer for.

use std::time::{Duration, Instant};

use super::{BindCore, CloseVerdict, SegmentToken};
use crate::dispatch::flow::{DegradedCause, FlowEvent};
use crate::protocol::pdu::{BindMode, CommandStatus, EncodeError, Inbound, SmBody};
use crate::protocol::session::{BindState, CloseReason, Event, SubmitError, SubmitFailure};
use crate::protocol::taxonomy::{self, SubmitOutcome};

/// What the core decided for the driver to report or carry out, in order
/// ([`BindCore::poll_event`]).
#[derive(Debug, Clone, PartialEq)]
pub enum BindEvent {
    /// The bind changed state: log it, count it, tell the supervisor.
    StateChanged(StateChange),
    /// Publish `smpp.bind.degraded`.
    Degraded {
        cause: DegradedCause,
        window: usize,
        count_in_last_minute: usize,
    },
    /// The dynamic window size changed (gauge).
    WindowChanged { size: usize },
    /// DRAINING for too long (the SMSC keeps answering ESME_RMSGQFUL).
    DrainAlert { draining_for: Duration },
    /// The flow controller found the session broken: the bind goes down, a failed attempt.
    SessionFault { status: Option<CommandStatus> },
    /// A segment could not be encoded; its message is rejected (the ledger settles it).
    Unencodable {
        message_id: String,
        error: EncodeError,
    },
}

/// A change of the bind's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    pub from: BindState,
    pub to: BindState,
    pub reason: Option<String>,
}

/// What the driver carries out once it handed a session event back
/// ([`BindCore::handle_session_event`]).
#[derive(Debug)]
pub enum FollowUp {
    /// Nothing.
    Nothing,
    /// With this session the whole bind is bound (its flow controller started, its state
    /// is BOUND; a submitting bind asked for a block of references,
    /// [`super::BindCore::poll_reference`]): a submitting bind reads its window setting.
    BindBound,
    /// A deliver_sm to deal with (a receipt or an MO part); answer it with
    /// [`BindCore::respond_deliver_sm`].
    DeliverSm {
        link: usize,
        sequence_number: u32,
        body: Box<SmBody>,
    },
    /// A session closed: what it means for the bind (the driver goes down accordingly).
    Closed {
        mode: BindMode,
        reason: CloseReason,
        verdict: CloseVerdict,
    },
}

/// The gauges of one housekeeping tick ([`BindCore::housekeeping`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gauges {
    pub in_flight: usize,
    /// The flow controller's window (none before the bind is bound).
    pub window: Option<usize>,
    pub drain_seconds: f64,
    /// Sequence numbers skipped (still in flight when their turn came) since the last tick.
    pub new_sequence_skips: u64,
}

/// How a submit's answer or failure is classified: the outcome the ledger and the flow
/// controller are given, `None` for a submit lost with its session (the ledger gives its
/// message back when the session ends). The driver reads it to report the event.
pub fn submit_outcome(event: &Event<SegmentToken>) -> Option<SubmitOutcome> {
    match event {
        Event::SubmitResponse { status, .. } => Some(taxonomy::classify_submit(*status)),
        Event::SubmitFailed { reason, .. } => match reason {
            SubmitFailure::TimedOut => Some(taxonomy::classify_timeout()),
            SubmitFailure::SessionClosed => None,
            SubmitFailure::GenericNack(status) => Some(taxonomy::classify_generic_nack(*status)),
        },
        _ => None,
    }
}

impl<H, P> BindCore<H, P> {
    /// Set the bind state from the driver (connecting, down, restarted); the change, when
    /// it is one, for the driver to report at once.
    pub fn set_state(&mut self, state: BindState, reason: Option<String>) -> Option<StateChange> {
        if self.state == state {
            return None;
        }
        let from = std::mem::replace(&mut self.state, state);
        Some(StateChange {
            from,
            to: state,
            reason,
        })
    }

    /// A state change the core decided itself, reported through [`BindCore::poll_event`].
    pub(super) fn change_state(&mut self, state: BindState, reason: Option<String>) {
        if let Some(change) = self.set_state(state, reason) {
            self.events.push_back(BindEvent::StateChanged(change));
        }
    }

    // ----- inputs ---------------------------------------------------------------------

    /// A PDU read on session `link`'s socket.
    pub fn handle_inbound(&mut self, link: usize, inbound: Inbound, now: Instant) {
        if let Some(link) = self.links.get_mut(link) {
            link.session.handle_inbound(now, inbound);
        }
    }

    /// The timer fired: the sessions' deadlines (enquire_link, responses, bind), the
    /// ledger's row retries, the flow controller's phase timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        for link in &mut self.links {
            link.session.handle_timeout(now);
        }
        self.ledger.handle_timeout(now);
        let in_flight = self.in_flight();
        if let Some(flow) = &mut self.flow {
            flow.handle_timeout(now, in_flight);
        }
    }

    /// Write queued segments while the window, the phase and the TPS tokens allow
    /// (nothing while the connection's writers close or the bind is not bound). Returns
    /// the number written; their bytes wait in [`BindCore::poll_transmit`].
    pub fn submit_queued(&mut self, now: Instant) -> usize {
        if self.closing || !self.state.is_bound() {
            return 0;
        }
        let Some(index) = self.transmitter_index() else {
            return 0;
        };
        let mut written = 0;
        let mut allowance = self.submit_allowance(now);
        while allowance > 0 {
            let Some((segment, body)) = self.ledger.next_submit_at(now) else {
                break;
            };
            allowance -= 1;
            let token = SegmentToken {
                segment,
                written_at: now,
            };
            match self.links[index].session.submit(now, body, token) {
                Ok(_) => {
                    written += 1;
                    if let Some(flow) = &mut self.flow {
                        flow.on_submitted(now);
                    }
                }
                Err(
                    SubmitError::WindowFull(token)
                    | SubmitError::NotBound(token)
                    | SubmitError::NotTransmitter(token),
                ) => {
                    // The allowance said there was room: the session changed under us.
                    self.ledger.handle_not_sent(token.segment);
                    break;
                }
                Err(SubmitError::Encode(error, token)) => {
                    let message_id = self
                        .ledger
                        .message_id(token.segment.dispatch)
                        .unwrap_or("")
                        .to_owned();
                    self.events
                        .push_back(BindEvent::Unencodable { message_id, error });
                    self.ledger.handle_unencodable(token.segment);
                }
            }
        }
        written
    }

    /// A session event the driver reported, applied: a submit's outcome goes to the flow
    /// controller and the ledger, a bound session may complete the bind, a close is
    /// judged ([`BindCore::session_closed`]).
    pub fn handle_session_event(
        &mut self,
        link: usize,
        event: Event<SegmentToken>,
        now: Instant,
    ) -> FollowUp {
        let outcome = submit_outcome(&event);
        match event {
            Event::Bound { .. } => {
                if self.session_bound(link) {
                    self.change_state(BindState::Bound, None);
                    if self.key.direction.submits() {
                        self.want_references();
                    }
                    return FollowUp::BindBound;
                }
                FollowUp::Nothing
            }
            Event::SubmitResponse {
                token, message_id, ..
            } => {
                if let Some(outcome) = outcome {
                    self.apply_outcome(token, &outcome, message_id, now);
                }
                FollowUp::Nothing
            }
            Event::SubmitFailed { token, .. } => {
                if let Some(outcome) = outcome {
                    self.apply_outcome(token, &outcome, None, now);
                }
                FollowUp::Nothing
            }
            Event::DeliverSm {
                sequence_number,
                body,
            } => FollowUp::DeliverSm {
                link,
                sequence_number,
                body,
            },
            Event::Malformed(_) | Event::Unexpected { .. } => FollowUp::Nothing,
            Event::Closed(reason) => {
                let mode = self.link_mode(link);
                let verdict = self.session_closed(link, &reason);
                FollowUp::Closed {
                    mode,
                    reason,
                    verdict,
                }
            }
        }
    }

    fn apply_outcome(
        &mut self,
        token: SegmentToken,
        outcome: &SubmitOutcome,
        operator_message_id: Option<String>,
        now: Instant,
    ) {
        if let Some(flow) = &mut self.flow {
            flow.handle_outcome(now, outcome);
        }
        self.ledger
            .handle_outcome(token.segment, outcome, operator_message_id);
    }

    /// Answer a deliver_sm session `link` reported.
    pub fn respond_deliver_sm(&mut self, link: usize, sequence_number: u32, status: CommandStatus) {
        if let Some(link) = self.links.get_mut(link) {
            link.session.respond_deliver_sm(sequence_number, status);
        }
    }

    /// Write the graceful unbind on every session when it is due
    /// ([`BindCore::unbind_due`]); `true` when it was written.
    pub fn unbind_if_due(&mut self, now: Instant) -> bool {
        if !self.unbind_due(now) {
            return false;
        }
        self.unbind_all(now);
        true
    }

    /// Write an unbind on every session now (an abort does not wait for the drain).
    pub fn unbind_all(&mut self, now: Instant) {
        for link in &mut self.links {
            link.session.unbind(now);
        }
    }

    /// `ops.smpp_binds.window` read (`None`: no row, the credentials' window applies):
    /// the new maximum of the flow controller and of the session's window (the hard cap
    /// the flow controller works under), as (from, to) when it changed. A throttled window
    /// keeps its reduced size and grows towards the new maximum.
    pub fn apply_window_setting(&mut self, configured: Option<usize>) -> Option<(usize, usize)> {
        let configured = configured
            .unwrap_or_else(|| self.credentials.as_ref().map_or(0, |c| c.window as usize));
        let index = self.transmitter_index()?;
        let flow = self.flow.as_mut()?;
        let from = flow.configured_window();
        if configured == 0 || configured == from {
            return None;
        }
        flow.set_configured_window(configured);
        self.links[index].session.window_mut().set_max(configured);
        Some((from, configured))
    }

    /// The periodic tick while connected: the flow controller's window growth, and the
    /// gauges to publish.
    pub fn housekeeping(&mut self, now: Instant) -> Option<Gauges> {
        let index = self.transmitter_index()?;
        let session = &self.links[index].session;
        let in_flight = session.in_flight();
        let skips = session.sequence_skips();
        let new_sequence_skips = skips.saturating_sub(self.sequence_skips_reported);
        self.sequence_skips_reported = self.sequence_skips_reported.max(skips);
        let (window, drain_seconds) = match &mut self.flow {
            Some(flow) => {
                flow.handle_timeout(now, in_flight);
                (Some(flow.window_size()), flow.drain_seconds(now))
            }
            None => (None, 0.0),
        };
        Some(Gauges {
            in_flight,
            window,
            drain_seconds,
            new_sequence_skips,
        })
    }

    // ----- outputs --------------------------------------------------------------------

    /// Bytes a session queued: (session index, bytes).
    pub fn poll_transmit(&mut self) -> Option<(usize, bytes::Bytes)> {
        self.links
            .iter_mut()
            .enumerate()
            .find_map(|(index, link)| link.session.poll_transmit().map(|bytes| (index, bytes)))
    }

    /// What a session reported, for the driver to report and hand back to
    /// [`BindCore::handle_session_event`]: (session index, event).
    pub fn poll_session_event(&mut self) -> Option<(usize, Event<SegmentToken>)> {
        self.links
            .iter_mut()
            .enumerate()
            .find_map(|(index, link)| link.session.poll_event().map(|event| (index, event)))
    }

    /// The next thing the core decided for the driver: its own state changes first, then
    /// the flow controller's decisions (a phase change gives back what is queued — another
    /// bind may take it — and changes the bind's state). Nothing of the flow controller
    /// once the bind is down: its connection is gone.
    pub fn poll_event(&mut self) -> Option<BindEvent> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            if self.state == BindState::Disconnected {
                return None;
            }
            let event = self.flow.as_mut()?.poll_event()?;
            match event {
                FlowEvent::PhaseChanged { to, cause, .. } => {
                    if matches!(to, BindState::HalfClosedTx | BindState::Draining) {
                        self.ledger.release_queued();
                    }
                    self.change_state(to, Some(cause.to_owned()));
                }
                FlowEvent::Degraded {
                    cause,
                    window,
                    count_in_last_minute,
                } => {
                    return Some(BindEvent::Degraded {
                        cause,
                        window,
                        count_in_last_minute,
                    });
                }
                FlowEvent::WindowChanged { size } => {
                    return Some(BindEvent::WindowChanged { size });
                }
                FlowEvent::DrainAlert { draining_for } => {
                    return Some(BindEvent::DrainAlert { draining_for });
                }
                FlowEvent::Reconnect { status } => return Some(BindEvent::SessionFault { status }),
            }
        }
    }

    /// The one instant the driver's timer is armed for ([`BindCore::next_deadline`]).
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        self.next_deadline(now)
    }

    // ----- what the driver reads ------------------------------------------------------

    /// The mode of session `link` (a transceiver when there is none).
    pub fn link_mode(&self, link: usize) -> BindMode {
        self.links
            .get(link)
            .map_or(BindMode::Transceiver, |l| l.session.mode())
    }

    /// Whether session `link` may read now (its inbound window has room).
    pub fn may_read(&self, link: usize) -> bool {
        self.links.get(link).is_some_and(|l| l.session.may_read())
    }

    /// deliver_sm read and not answered yet, over every session.
    pub fn inbound_held(&self) -> usize {
        self.links
            .iter()
            .map(|l| l.session.deliver_sm_unanswered())
            .sum()
    }
}
