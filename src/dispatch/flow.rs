//! The flow controller of one bound bind: how much may be submitted, and when (SPEC §5,
//! EP-SC-07; US-SC-012, 023, 024, 028, 029, 030, 031).
//!
//! [`FlowController`] is sans-IO like [`crate::protocol::session::Session`]: the bind actor reports
//! every submit written ([`FlowController::on_submitted`]) and every outcome as
//! [`taxonomy`] classified it ([`FlowController::handle_outcome`]), advances time
//! ([`FlowController::handle_timeout`]), and asks [`FlowController::submit_allowance`]
//! before writing. Decisions come out as [`FlowEvent`]s. Every action is the outcome's
//! [`BindAction`]; nothing here looks at raw statuses.
//!
//! The rules:
//! - Window: the configured maximum (credentials, or `ops.smpp_binds.window` reloaded every
//!   60 s). ESME_RTHROTTLED halves it (not below 10), every 60 s it grows by 5 back to the
//!   maximum; ≥ 3 throttles within 60 s → degraded (THROTTLED), reported once each time
//!   the count reaches the threshold.
//! - 3 consecutive ESME_RSUBMITFAIL → HALF_CLOSED_TX: no submits but one probe per probe
//!   interval (60 s); a probe answered ESME_ROK → BOUND; any other answer → the next probe
//!   one interval later. Receipts keep flowing (the session stays up).
//! - ESME_RMSGQFUL → DRAINING: no submits until nothing is in flight and `drain_min`
//!   (30 s) passed since the last ESME_RMSGQFUL; then BOUND. A drain longer than 5 min
//!   raises [`FlowEvent::DrainAlert`] once.
//! - ESME_RINVBNDSTS / generic_nack → [`FlowEvent::Reconnect`].
//! - TPS (US-SC-012): with an operator limit, every submit spends a token granted by the
//!   shared Redis budget in blocks ([`FlowController::add_grant`]); tokens expire with
//!   the budget window they were granted in. [`FlowController::wanted_grant`] says how
//!   many to ask for, so the actor makes one Redis round trip per pull, never per message.
//!
//! The adaptive size reuses [`Window`]'s halving/growth logic (a `Window<()>` that never
//! holds entries); the session's own window is only the hard cap.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::protocol::pdu::CommandStatus;
use crate::protocol::session::BindState;
use crate::protocol::taxonomy::{self, BindAction, SubmitFailureStreak, SubmitOutcome};
use crate::protocol::window::{AdaptiveConfig, Window};

/// One probe submit per this period while HALF_CLOSED_TX.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(60);

/// Timing of the controller. [`Default`] is SPEC §5; tests scale the periods down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowConfig {
    pub adaptive: AdaptiveConfig,
    pub probe_interval: Duration,
    pub drain_min: Duration,
    pub drain_alert_after: Duration,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            adaptive: AdaptiveConfig::default(),
            probe_interval: PROBE_INTERVAL,
            drain_min: taxonomy::DRAIN_MIN,
            drain_alert_after: taxonomy::DRAIN_ALERT_AFTER,
        }
    }
}

/// Why a bind is degraded (`cause` of `smpp.bind.degraded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DegradedCause {
    Throttled,
    HalfClosedTx,
    Draining,
}

impl DegradedCause {
    pub fn as_str(self) -> &'static str {
        match self {
            DegradedCause::Throttled => "THROTTLED",
            DegradedCause::HalfClosedTx => "HALF_CLOSED_TX",
            DegradedCause::Draining => "DRAINING",
        }
    }
}

/// What the actor must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowEvent {
    /// The bind's phase changed (health event, metric); `cause` for the `reason`.
    PhaseChanged {
        from: BindState,
        to: BindState,
        cause: &'static str,
    },
    /// Publish `smpp.bind.degraded`.
    Degraded {
        cause: DegradedCause,
        window: usize,
        count_in_last_minute: usize,
    },
    /// The dynamic window size changed (gauge).
    WindowChanged { size: usize },
    /// DRAINING for longer than `drain_alert_after`.
    DrainAlert { draining_for: Duration },
    /// The session is broken: close it and reconnect.
    Reconnect { status: Option<CommandStatus> },
}

/// The phase of a bound bind; each variant holds only its own data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Bound,
    HalfClosedTx {
        next_probe: Instant,
        probe_in_flight: bool,
    },
    Draining {
        since: Instant,
        last_queue_full: Instant,
        alerted: bool,
    },
}

impl Phase {
    fn state(&self) -> BindState {
        match self {
            Phase::Bound => BindState::Bound,
            Phase::HalfClosedTx { .. } => BindState::HalfClosedTx,
            Phase::Draining { .. } => BindState::Draining,
        }
    }
}

/// Tokens of the operator's TPS budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tokens {
    available: u32,
    valid_until: Instant,
}

/// The flow controller of one bind.
#[derive(Debug)]
pub struct FlowController {
    config: FlowConfig,
    phase: Phase,
    /// The adaptive size (never holds entries).
    size: Window<()>,
    streak: SubmitFailureStreak,
    /// `None`: no TPS limit for this operator.
    tps_limited: bool,
    tokens: Option<Tokens>,
    events: VecDeque<FlowEvent>,
}

impl FlowController {
    /// A bound bind with `window` as its configured maximum; `tps_limited` when the
    /// operator has a TPS limit (submits then need tokens).
    pub fn new(config: FlowConfig, window: usize, tps_limited: bool) -> Self {
        FlowController {
            config,
            phase: Phase::Bound,
            size: Window::with_adaptive(window, config.adaptive),
            streak: SubmitFailureStreak::default(),
            tps_limited,
            tokens: None,
            events: VecDeque::new(),
        }
    }

    /// BOUND, HALF_CLOSED_TX or DRAINING.
    pub fn bind_state(&self) -> BindState {
        self.phase.state()
    }

    /// The dynamic window size.
    pub fn window_size(&self) -> usize {
        self.size.capacity()
    }

    /// The configured maximum.
    pub fn configured_window(&self) -> usize {
        self.size.max()
    }

    /// A new configured maximum: a window at its maximum follows at once, a throttled one
    /// keeps its size (capped) and grows towards the new maximum.
    pub fn set_configured_window(&mut self, max: usize) {
        let before = self.window_size();
        self.size.set_max(max);
        if self.window_size() != before {
            self.events.push_back(FlowEvent::WindowChanged {
                size: self.window_size(),
            });
        }
    }

    /// Seconds spent DRAINING so far (0 otherwise), for a gauge.
    pub fn drain_seconds(&self, now: Instant) -> f64 {
        match self.phase {
            Phase::Draining { since, .. } => now.saturating_duration_since(since).as_secs_f64(),
            Phase::Bound | Phase::HalfClosedTx { .. } => 0.0,
        }
    }

    /// Tokens of the TPS budget usable at `now`.
    pub fn tokens(&self, now: Instant) -> u32 {
        match self.tokens {
            Some(t) if now < t.valid_until => t.available,
            _ => 0,
        }
    }

    /// Tokens granted by the shared budget, usable until `valid_until`. Tokens left from
    /// an earlier grant that is still valid are kept.
    pub fn add_grant(&mut self, now: Instant, granted: u32, valid_until: Instant) {
        let left = self.tokens(now);
        self.tokens = Some(Tokens {
            available: left.saturating_add(granted),
            valid_until: match self.tokens {
                Some(t) if left > 0 => t.valid_until.min(valid_until).max(now),
                _ => valid_until,
            },
        });
    }

    /// How many tokens to ask the budget for now: what the window would let us send
    /// (the queue plus a pull's worth), minus the tokens in hand. 0 without a limit.
    pub fn wanted_grant(&self, now: Instant, in_flight: usize, queued: usize, pull: usize) -> u32 {
        if !self.tps_limited {
            return 0;
        }
        let room = self.window_allowance(now, in_flight);
        let want = room.min(queued + pull);
        u32::try_from(want)
            .unwrap_or(u32::MAX)
            .saturating_sub(self.tokens(now))
    }

    /// Submits that may be written now with `in_flight` outstanding.
    pub fn submit_allowance(&self, now: Instant, in_flight: usize) -> usize {
        let window = self.window_allowance(now, in_flight);
        if self.tps_limited {
            window.min(self.tokens(now) as usize)
        } else {
            window
        }
    }

    fn window_allowance(&self, now: Instant, in_flight: usize) -> usize {
        match self.phase {
            Phase::Bound => self.window_size().saturating_sub(in_flight),
            Phase::HalfClosedTx {
                next_probe,
                probe_in_flight,
            } => usize::from(!probe_in_flight && in_flight == 0 && now >= next_probe),
            Phase::Draining { .. } => 0,
        }
    }

    /// One submit_sm was written.
    pub fn on_submitted(&mut self, now: Instant) {
        if let Some(tokens) = &mut self.tokens
            && now < tokens.valid_until
        {
            tokens.available = tokens.available.saturating_sub(1);
        }
        if let Phase::HalfClosedTx {
            probe_in_flight, ..
        } = &mut self.phase
        {
            *probe_in_flight = true;
        }
    }

    /// A submit's outcome (response, timeout, generic_nack).
    pub fn handle_outcome(&mut self, now: Instant, outcome: &SubmitOutcome) {
        let half_close = self.streak.record(outcome);
        // A probe's answer decides HALF_CLOSED_TX first.
        if let Phase::HalfClosedTx {
            probe_in_flight: true,
            ..
        } = self.phase
        {
            if *outcome == SubmitOutcome::Accepted {
                self.set_phase(Phase::Bound, "probe_accepted");
            } else {
                self.phase = Phase::HalfClosedTx {
                    next_probe: now + self.config.probe_interval,
                    probe_in_flight: false,
                };
            }
        }
        match outcome.bind_action() {
            BindAction::Continue => {}
            BindAction::HalveWindow => {
                let throttle = self.size.on_throttled(now);
                self.events.push_back(FlowEvent::WindowChanged {
                    size: throttle.window_size,
                });
                if throttle.became_degraded {
                    self.events.push_back(FlowEvent::Degraded {
                        cause: DegradedCause::Throttled,
                        window: throttle.window_size,
                        count_in_last_minute: throttle.recent_throttles,
                    });
                }
            }
            BindAction::CountSubmitFailure => {
                if half_close && self.phase == Phase::Bound {
                    self.set_phase(
                        Phase::HalfClosedTx {
                            next_probe: now + self.config.probe_interval,
                            probe_in_flight: false,
                        },
                        "submit_failures",
                    );
                    self.degraded(now, DegradedCause::HalfClosedTx);
                }
            }
            BindAction::Drain => match &mut self.phase {
                Phase::Draining {
                    last_queue_full, ..
                } => *last_queue_full = now,
                Phase::Bound | Phase::HalfClosedTx { .. } => {
                    self.set_phase(
                        Phase::Draining {
                            since: now,
                            last_queue_full: now,
                            alerted: false,
                        },
                        "queue_full",
                    );
                    self.degraded(now, DegradedCause::Draining);
                }
            },
            BindAction::Reconnect => {
                let status = match *outcome {
                    SubmitOutcome::SessionFault { status, .. } => Some(status),
                    _ => None,
                };
                self.events.push_back(FlowEvent::Reconnect { status });
            }
        }
    }

    /// Advance time: window growth, the end (or alert) of a drain, token expiry.
    pub fn handle_timeout(&mut self, now: Instant, in_flight: usize) {
        let before = self.window_size();
        let after = self.size.tick(now);
        if after != before {
            self.events
                .push_back(FlowEvent::WindowChanged { size: after });
        }
        if let Some(tokens) = self.tokens
            && now >= tokens.valid_until
        {
            self.tokens = None;
        }
        if let Phase::Draining {
            since,
            last_queue_full,
            alerted,
        } = &mut self.phase
        {
            let draining_for = now.saturating_duration_since(*since);
            if !*alerted && draining_for >= self.config.drain_alert_after {
                *alerted = true;
                self.events
                    .push_back(FlowEvent::DrainAlert { draining_for });
            }
            if in_flight == 0
                && now.saturating_duration_since(*last_queue_full) >= self.config.drain_min
            {
                self.set_phase(Phase::Bound, "drained");
            }
        }
    }

    /// When [`FlowController::handle_timeout`] (or a probe) has work next. Window growth
    /// is not included: the actor's housekeeping tick advances it.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Bound => None,
            Phase::HalfClosedTx {
                next_probe,
                probe_in_flight: false,
            } => Some(next_probe),
            Phase::HalfClosedTx { .. } => None,
            Phase::Draining {
                since,
                last_queue_full,
                alerted,
            } => {
                let end = last_queue_full + self.config.drain_min;
                Some(if alerted {
                    end
                } else {
                    end.min(since + self.config.drain_alert_after)
                })
            }
        };
        let tokens = self.tokens.map(|t| t.valid_until);
        match (phase, tokens) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<FlowEvent> {
        self.events.pop_front()
    }

    fn set_phase(&mut self, phase: Phase, cause: &'static str) {
        let from = self.phase.state();
        self.phase = phase;
        let to = phase.state();
        if from != to {
            self.events
                .push_back(FlowEvent::PhaseChanged { from, to, cause });
        }
    }

    fn degraded(&mut self, now: Instant, cause: DegradedCause) {
        self.events.push_back(FlowEvent::Degraded {
            cause,
            window: self.window_size(),
            count_in_last_minute: self.size.throttles_in_period(now),
        });
    }
}

#[cfg(test)]
mod tests;
