//! One SMPP session (one TCP connection, one bind) as a state machine without I/O.
//!
//! The owner feeds it inputs — [`Session::handle_inbound`] for every item read off the
//! wire, [`Session::handle_timeout`] when [`Session::poll_timeout`] has passed,
//! [`Session::submit`] / [`Session::respond_deliver_sm`] / [`Session::unbind`] for its
//! own requests — and after each input drains [`Session::poll_transmit`] (bytes to
//! write, in order) and [`Session::poll_event`] (what happened). Time is always an
//! argument; the session never reads a clock.
//!
//! It owns: the bind handshake, the enquire_link heartbeat and its timeout, the
//! sequence counter, the in-flight window with per-submit deadlines, answers the peer's
//! enquire_link / unbind / malformed PDUs, and the graceful unbind. It does not decide
//! what a submit status means for the message (that is [`crate::protocol::taxonomy`]) nor when to
//! reconnect (that is [`crate::backoff`] and the actor).
//!
//! Invariant: every token handed to [`Session::submit`] comes back exactly once, in a
//! [`Event::SubmitResponse`] or an [`Event::SubmitFailed`] — also when the session
//! closes.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::protocol::pdu::{
    BindMode, BindRequest, CommandId, CommandStatus, DecodeError, EncodeError, Frame, Inbound,
    Malformed, Pdu, SmBody,
};
use crate::protocol::window::{SequenceNumbers, Window};

/// Session timers and parameters.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub mode: BindMode,
    pub bind: BindRequest,
    pub bind_timeout: Duration,
    pub enquire_link_interval: Duration,
    pub enquire_link_timeout: Duration,
    pub submit_timeout: Duration,
    pub unbind_timeout: Duration,
    pub window: usize,
    /// deliver_sm the owner may hold unanswered at once ([`Session::may_read`]): beyond
    /// it the owner stops reading and the SMSC waits on TCP, as our window makes us wait
    /// for it.
    pub inbound_window: usize,
}

/// Default of [`SessionConfig::inbound_window`] (`INBOUND_WINDOW`).
pub const DEFAULT_INBOUND_WINDOW: usize = 1_000;

/// The externally visible state of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Binding,
    Bound,
    Unbinding,
    Closed,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Binding => "BINDING",
            SessionState::Bound => "BOUND",
            SessionState::Unbinding => "UNBINDING",
            SessionState::Closed => "CLOSED",
        }
    }
}

/// Why a session closed. The owner closes the socket after writing what
/// [`Session::poll_transmit`] still holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The SMSC answered the bind with an error status (or a generic_nack).
    BindRejected(CommandStatus),
    BindTimedOut,
    EnquireLinkTimedOut,
    /// The SMSC sent unbind; we answered.
    PeerUnbound,
    /// Our unbind was answered.
    Unbound,
    UnbindTimedOut,
    /// The SMSC sent generic_nack: the session is not trusted any more.
    GenericNack(CommandStatus),
    /// The SMSC answered a submit with ESME_RINVBNDSTS: it does not see us bound.
    InvalidBindStatus,
}

impl CloseReason {
    /// Short, bounded reason for health events and metric labels.
    pub fn as_str(&self) -> String {
        match self {
            CloseReason::BindRejected(status) => format!("bind_failed:{}", status.name()),
            CloseReason::BindTimedOut => "bind_timeout".into(),
            CloseReason::EnquireLinkTimedOut => "enquire_link_timeout".into(),
            CloseReason::PeerUnbound => "peer_unbind".into(),
            CloseReason::Unbound => "unbound".into(),
            CloseReason::UnbindTimedOut => "unbind_timeout".into(),
            CloseReason::GenericNack(status) => format!("generic_nack:{}", status.name()),
            CloseReason::InvalidBindStatus => "invalid_bind_status".into(),
        }
    }
}

/// Why an in-flight submit ended without a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitFailure {
    /// No submit_sm_resp within the submit timeout; the window slot is free again.
    TimedOut,
    /// The SMSC answered it with generic_nack.
    GenericNack(CommandStatus),
    /// The session closed before the response came.
    SessionClosed,
}

/// What happened, for the owner.
#[derive(Debug, Clone)]
pub enum Event<T> {
    Bound {
        system_id: Option<String>,
        interface_version: Option<u8>,
    },
    SubmitResponse {
        token: T,
        sequence_number: u32,
        status: CommandStatus,
        message_id: Option<String>,
    },
    SubmitFailed {
        token: T,
        sequence_number: u32,
        reason: SubmitFailure,
    },
    /// A deliver_sm: the owner must call [`Session::respond_deliver_sm`] with this
    /// sequence number once it has dealt with it.
    DeliverSm {
        sequence_number: u32,
        body: Box<SmBody>,
    },
    /// A PDU that did not decode; already answered with generic_nack.
    Malformed(Malformed),
    /// A PDU that is legal SMPP but not here (a response nobody waits for, a request
    /// the SMSC may not send); answered when it is a request.
    Unexpected {
        command_id: CommandId,
        sequence_number: u32,
    },
    Closed(CloseReason),
}

/// A submit the session did not take; the token is handed back.
#[derive(Debug)]
pub enum SubmitError<T> {
    NotBound(T),
    /// This session cannot submit (a receiver bind).
    NotTransmitter(T),
    WindowFull(T),
    Encode(EncodeError, T),
}

enum State {
    Binding {
        sequence_number: u32,
        deadline: Instant,
    },
    Bound {
        next_enquire_link: Instant,
        /// The enquire_link we wait an answer for: sequence number and deadline.
        outstanding: Option<(u32, Instant)>,
    },
    Unbinding {
        sequence_number: u32,
        deadline: Instant,
    },
    Closed,
}

/// One SMPP session. `T` is the owner's token for an in-flight submit.
pub struct Session<T> {
    config: SessionConfig,
    state: State,
    sequence: SequenceNumbers,
    window: Window<T>,
    transmit: VecDeque<Bytes>,
    events: VecDeque<Event<T>>,
    /// deliver_sm handed to the owner and not answered yet.
    unanswered: std::collections::HashSet<u32>,
}

impl<T> std::fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("mode", &self.config.mode)
            .field("state", &self.state().as_str())
            .field("in_flight", &self.window.len())
            .finish_non_exhaustive()
    }
}

impl<T> Session<T> {
    /// Start a session on a freshly connected socket: the bind request is queued at once.
    /// Fails when the bind request does not encode (a credential field too long).
    pub fn try_new(
        config: SessionConfig,
        sequence: SequenceNumbers,
        now: Instant,
    ) -> Result<Self, EncodeError> {
        let window = Window::new(config.window);
        let mut session = Session {
            state: State::Closed,
            sequence,
            window,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            unanswered: std::collections::HashSet::new(),
            config,
        };
        let sequence_number = session.next_sequence_number();
        let bind = Pdu::bind(session.config.mode, session.config.bind.clone());
        let bytes = Frame::new(sequence_number, bind).encode()?;
        session.transmit.push_back(bytes);
        session.state = State::Binding {
            sequence_number,
            deadline: now + session.config.bind_timeout,
        };
        Ok(session)
    }

    pub fn state(&self) -> SessionState {
        match self.state {
            State::Binding { .. } => SessionState::Binding,
            State::Bound { .. } => SessionState::Bound,
            State::Unbinding { .. } => SessionState::Unbinding,
            State::Closed => SessionState::Closed,
        }
    }

    pub fn mode(&self) -> BindMode {
        self.config.mode
    }

    /// deliver_sm handed to the owner ([`Event::DeliverSm`]) and not answered yet.
    pub fn deliver_sm_unanswered(&self) -> usize {
        self.unanswered.len()
    }

    /// True while the owner may read the next PDU: fewer than `inbound_window` deliver_sm
    /// are unanswered. When false the owner leaves the socket unread until an answer
    /// frees a slot, so a flood of deliver_sm is bounded by TCP, not by memory.
    pub fn may_read(&self) -> bool {
        self.unanswered.len() < self.config.inbound_window.max(1)
    }

    /// When the oldest submit still in flight was written (`None`: none in flight). A
    /// receipt that arrived after that cannot belong to a submit still unanswered.
    pub fn oldest_in_flight_since(&self) -> Option<Instant> {
        self.window
            .next_deadline()
            .map(|deadline| deadline - self.config.submit_timeout)
    }

    /// Submits waiting for their response.
    pub fn in_flight(&self) -> usize {
        self.window.len()
    }

    /// The current window size (after adaptive changes).
    pub fn window_size(&self) -> usize {
        self.window.capacity()
    }

    /// How many more submits the window takes now (0 unless bound and able to submit).
    pub fn free_slots(&self) -> usize {
        if matches!(self.state, State::Bound { .. }) && self.config.mode.can_submit() {
            self.window.free()
        } else {
            0
        }
    }

    /// The window, for adaptive sizing (throttling, reloads).
    pub fn window_mut(&mut self) -> &mut Window<T> {
        &mut self.window
    }

    /// Sequence numbers skipped because they were still in flight after a wrap.
    pub fn sequence_skips(&self) -> u64 {
        self.sequence.skipped()
    }

    /// Sequence numbers left in the block from Redis (`None`: unbounded local numbering).
    pub fn sequences_remaining(&self) -> Option<u32> {
        self.sequence.remaining()
    }

    /// Continue with a new block of sequence numbers (US-SC-022); numbers still in
    /// flight are skipped as always.
    pub fn refill_sequences(&mut self, start: u32, len: u32) {
        self.sequence.refill(start, len);
    }

    /// Queue a submit_sm. On success returns its sequence number.
    pub fn submit(&mut self, now: Instant, body: SmBody, token: T) -> Result<u32, SubmitError<T>> {
        if !matches!(self.state, State::Bound { .. }) {
            return Err(SubmitError::NotBound(token));
        }
        if !self.config.mode.can_submit() {
            return Err(SubmitError::NotTransmitter(token));
        }
        if self.window.free() == 0 {
            return Err(SubmitError::WindowFull(token));
        }
        if let Err(err) = crate::protocol::pdu::validate_sm_body(&body) {
            return Err(SubmitError::Encode(err, token));
        }
        let sequence_number = self.next_sequence_number();
        let frame = Frame::new(sequence_number, Pdu::SubmitSm(Box::new(body)));
        let bytes = match frame.encode() {
            Ok(bytes) => bytes,
            Err(err) => return Err(SubmitError::Encode(err, token)),
        };
        let deadline = now + self.config.submit_timeout;
        if let Err(rejected) = self.window.try_insert(sequence_number, deadline, token) {
            return Err(SubmitError::WindowFull(rejected.into_value()));
        }
        self.transmit.push_back(bytes);
        Ok(sequence_number)
    }

    /// Answer a deliver_sm the owner has dealt with (ESME_ROK after the event was
    /// published; ESME_RX_T_APPN to make the SMSC deliver it again).
    pub fn respond_deliver_sm(&mut self, sequence_number: u32, status: CommandStatus) {
        self.unanswered.remove(&sequence_number);
        if matches!(self.state, State::Closed) {
            return;
        }
        self.queue(Frame::with_status(
            sequence_number,
            status,
            Pdu::DeliverSmResp,
        ));
    }

    /// Send unbind now. Responses to in-flight submits are still taken until the
    /// unbind_resp (the owner drains the window first when it wants no loss).
    pub fn unbind(&mut self, now: Instant) {
        match self.state {
            State::Bound { .. } => {
                let sequence_number = self.next_sequence_number();
                self.queue(Frame::new(sequence_number, Pdu::Unbind));
                self.state = State::Unbinding {
                    sequence_number,
                    deadline: now + self.config.unbind_timeout,
                };
            }
            State::Binding { .. } => self.close(CloseReason::Unbound),
            State::Unbinding { .. } | State::Closed => {}
        }
    }

    /// Bytes to write, in order.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event<T>> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let state_deadline = match &self.state {
            State::Binding { deadline, .. } | State::Unbinding { deadline, .. } => Some(*deadline),
            State::Bound {
                next_enquire_link,
                outstanding,
            } => Some(match outstanding {
                Some((_, deadline)) => (*deadline).min(*next_enquire_link),
                None => *next_enquire_link,
            }),
            State::Closed => None,
        };
        match (state_deadline, self.window.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Advance timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (sequence_number, token) in self.window.expired(now) {
            self.events.push_back(Event::SubmitFailed {
                token,
                sequence_number,
                reason: SubmitFailure::TimedOut,
            });
        }
        match self.state {
            State::Binding { deadline, .. } if now >= deadline => {
                self.close(CloseReason::BindTimedOut)
            }
            State::Unbinding { deadline, .. } if now >= deadline => {
                self.close(CloseReason::UnbindTimedOut)
            }
            // The owner stopped reading (the inbound window is full): the answer may be
            // waiting unread behind the deliver_sm it has not taken yet, so its absence
            // says nothing about the SMSC. Expect it a whole timeout after the check.
            State::Bound {
                next_enquire_link,
                outstanding: Some((sequence_number, deadline)),
            } if now >= deadline && !self.may_read() => {
                self.state = State::Bound {
                    next_enquire_link,
                    outstanding: Some((sequence_number, now + self.config.enquire_link_timeout)),
                };
            }
            State::Bound {
                outstanding: Some((_, deadline)),
                ..
            } if now >= deadline => self.close(CloseReason::EnquireLinkTimedOut),
            State::Bound {
                next_enquire_link,
                outstanding,
            } if now >= next_enquire_link => {
                let next_enquire_link = now + self.config.enquire_link_interval;
                let outstanding = match outstanding {
                    Some(waiting) => Some(waiting),
                    None => {
                        let sequence_number = self.next_sequence_number();
                        self.queue(Frame::new(sequence_number, Pdu::EnquireLink));
                        Some((sequence_number, now + self.config.enquire_link_timeout))
                    }
                };
                self.state = State::Bound {
                    next_enquire_link,
                    outstanding,
                };
            }
            State::Binding { .. }
            | State::Bound { .. }
            | State::Unbinding { .. }
            | State::Closed => {}
        }
    }

    /// Take one item read off the wire.
    pub fn handle_inbound(&mut self, now: Instant, inbound: Inbound) {
        if matches!(self.state, State::Closed) {
            return;
        }
        let frame = match inbound {
            Inbound::Frame(frame) => frame,
            Inbound::Malformed(malformed) => {
                // Answer and stay bound; a malformed *response* needs no answer.
                let is_response = malformed.command_id & 0x8000_0000 != 0;
                if !is_response {
                    // A well-framed deliver_sm with a field over SMPP's length gets its
                    // own response with the field's status; anything else a generic_nack.
                    let answer = match malformed.error {
                        DecodeError::FieldTooLong {
                            command_id: CommandId::DeliverSm,
                            ..
                        } => Pdu::DeliverSmResp,
                        _ => Pdu::GenericNack,
                    };
                    self.queue(Frame::with_status(
                        malformed.sequence_number,
                        malformed.error.nack_status(),
                        answer,
                    ));
                }
                self.events.push_back(Event::Malformed(malformed));
                return;
            }
        };
        let sequence_number = frame.sequence_number;
        let status = frame.command_status;
        let command_id = frame.command_id();
        match frame.pdu {
            // Requests the SMSC may send in any state.
            Pdu::EnquireLink => self.queue(Frame::new(sequence_number, Pdu::EnquireLinkResp)),
            Pdu::Unbind => {
                self.queue(Frame::new(sequence_number, Pdu::UnbindResp));
                self.close(CloseReason::PeerUnbound);
            }
            Pdu::BindTransmitterResp(resp)
            | Pdu::BindReceiverResp(resp)
            | Pdu::BindTransceiverResp(resp) => match self.state {
                State::Binding {
                    sequence_number: expected,
                    ..
                } if expected == sequence_number => {
                    if status.is_ok() {
                        self.state = State::Bound {
                            next_enquire_link: now + self.config.enquire_link_interval,
                            outstanding: None,
                        };
                        self.events.push_back(Event::Bound {
                            system_id: resp.system_id,
                            interface_version: resp.sc_interface_version,
                        });
                    } else {
                        self.close(CloseReason::BindRejected(status));
                    }
                }
                State::Binding { .. }
                | State::Bound { .. }
                | State::Unbinding { .. }
                | State::Closed => self.unexpected(command_id, sequence_number),
            },
            Pdu::GenericNack => match self.state {
                State::Binding {
                    sequence_number: expected,
                    ..
                } if expected == sequence_number => self.close(CloseReason::BindRejected(status)),
                State::Binding { .. } | State::Bound { .. } | State::Unbinding { .. } => {
                    if let Some(token) = self.window.remove(sequence_number) {
                        self.events.push_back(Event::SubmitFailed {
                            token,
                            sequence_number,
                            reason: SubmitFailure::GenericNack(status),
                        });
                    }
                    self.close(CloseReason::GenericNack(status));
                }
                State::Closed => {}
            },
            Pdu::SubmitSmResp(resp) => match self.window.remove(sequence_number) {
                Some(token) => {
                    self.events.push_back(Event::SubmitResponse {
                        token,
                        sequence_number,
                        status,
                        message_id: resp.message_id,
                    });
                    if status == CommandStatus::ESME_RINVBNDSTS {
                        self.close(CloseReason::InvalidBindStatus);
                    }
                }
                None => self.unexpected(command_id, sequence_number),
            },
            Pdu::EnquireLinkResp => match self.state {
                State::Bound {
                    next_enquire_link,
                    outstanding: Some((expected, _)),
                } if expected == sequence_number => {
                    self.state = State::Bound {
                        next_enquire_link,
                        outstanding: None,
                    };
                }
                State::Binding { .. }
                | State::Bound { .. }
                | State::Unbinding { .. }
                | State::Closed => self.unexpected(command_id, sequence_number),
            },
            Pdu::UnbindResp => match self.state {
                State::Unbinding {
                    sequence_number: expected,
                    ..
                } if expected == sequence_number => self.close(CloseReason::Unbound),
                State::Binding { .. }
                | State::Bound { .. }
                | State::Unbinding { .. }
                | State::Closed => self.unexpected(command_id, sequence_number),
            },
            Pdu::DeliverSm(body) => match self.state {
                State::Bound { .. } | State::Unbinding { .. } if self.config.mode.can_receive() => {
                    self.unanswered.insert(sequence_number);
                    self.events.push_back(Event::DeliverSm {
                        sequence_number,
                        body,
                    });
                }
                State::Binding { .. }
                | State::Bound { .. }
                | State::Unbinding { .. }
                | State::Closed => {
                    self.queue(Frame::with_status(
                        sequence_number,
                        CommandStatus::ESME_RINVBNDSTS,
                        Pdu::DeliverSmResp,
                    ));
                    self.unexpected(command_id, sequence_number);
                }
            },
            // Requests an SMSC must not send to an ESME: refuse them.
            Pdu::BindTransmitter(_)
            | Pdu::BindReceiver(_)
            | Pdu::BindTransceiver(_)
            | Pdu::SubmitSm(_) => {
                self.queue(Frame::with_status(
                    sequence_number,
                    CommandStatus::ESME_RINVBNDSTS,
                    Pdu::GenericNack,
                ));
                self.unexpected(command_id, sequence_number);
            }
            // Responses to requests we never send.
            Pdu::DeliverSmResp => self.unexpected(command_id, sequence_number),
        }
    }

    fn unexpected(&mut self, command_id: CommandId, sequence_number: u32) {
        self.events.push_back(Event::Unexpected {
            command_id,
            sequence_number,
        });
    }

    fn close(&mut self, reason: CloseReason) {
        if matches!(self.state, State::Closed) {
            return;
        }
        self.state = State::Closed;
        self.unanswered.clear();
        for (sequence_number, token) in self.window.drain() {
            self.events.push_back(Event::SubmitFailed {
                token,
                sequence_number,
                reason: SubmitFailure::SessionClosed,
            });
        }
        self.events.push_back(Event::Closed(reason));
    }

    /// Queue a PDU without variable-length fields (responses, enquire_link, unbind):
    /// their encoding cannot fail.
    fn queue(&mut self, frame: Frame) {
        if let Ok(bytes) = frame.encode() {
            self.transmit.push_back(bytes);
        }
    }

    fn next_sequence_number(&mut self) -> u32 {
        let window = &self.window;
        self.sequence
            .next_unused(|candidate| window.contains(candidate))
    }
}

#[cfg(test)]
mod tests;

/// The state of a whole bind (one or two sessions), as health events and metrics show it
/// (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BindState {
    Disconnected,
    Connecting,
    Bound,
    HalfClosedTx,
    Draining,
    Unbinding,
}

impl BindState {
    pub const ALL: [BindState; 6] = [
        BindState::Disconnected,
        BindState::Connecting,
        BindState::Bound,
        BindState::HalfClosedTx,
        BindState::Draining,
        BindState::Unbinding,
    ];

    /// The contract's `bindState` value.
    pub fn as_str(self) -> &'static str {
        match self {
            BindState::Disconnected => "DISCONNECTED",
            BindState::Connecting => "CONNECTING",
            BindState::Bound => "BOUND",
            BindState::HalfClosedTx => "HALF_CLOSED_TX",
            BindState::Draining => "DRAINING",
            BindState::Unbinding => "UNBINDING",
        }
    }

    /// The session is up (it still receives receipts), whatever its submit policy.
    pub fn is_bound(self) -> bool {
        matches!(
            self,
            BindState::Bound | BindState::HalfClosedTx | BindState::Draining
        )
    }

    /// The contract's coarse `state`: BOUND or UNBOUND.
    pub fn health_state(self) -> &'static str {
        if self.is_bound() { "BOUND" } else { "UNBOUND" }
    }
}
