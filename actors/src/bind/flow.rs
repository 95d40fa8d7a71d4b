//! The bind's flow control carried out: what [`FlowController`] decides (phase changes,
//! `smpp.bind.degraded`, window size, drain alerts, reconnects), the TPS grants it spends
//! (one `AcquireTps` round trip to Redis per pull, never one per message), and the
//! sequence-number blocks from Redis.

use std::time::{Duration, Instant};

use actix::prelude::*;
use smpp_connector::flow::{FlowConfig, FlowController, FlowEvent};
use smpp_connector::session::BindState;
use smpp_connector::window::AdaptiveConfig;

use super::actor::BindActor;
use crate::events::{BindDegradedEvent, now_rfc3339, subject};
use crate::telemetry::metric;
use crate::throttle::{AcquireTps, ReserveSequences};

/// How long a message the TPS budget cannot cover this second waits before it is
/// delivered again (SPEC §8).
const TPS_NAK_DELAY: Duration = Duration::from_millis(500);

/// Sequence numbers reserved in Redis at a time (US-SC-022).
pub(super) const SEQUENCE_BLOCK: u32 = 10_000;

impl BindActor {
    /// The flow controller of a freshly bound bind.
    pub(super) fn new_flow(&self, window: usize, tps_limited: bool) -> FlowController {
        let timers = &self.deps.config.timers;
        let config = FlowConfig {
            adaptive: AdaptiveConfig {
                grow_period: timers.window_grow_period,
                throttle_period: timers.throttle_period,
                ..AdaptiveConfig::default()
            },
            probe_interval: timers.probe_interval,
            drain_min: timers.drain_min,
            drain_alert_after: timers.drain_alert_after,
        };
        FlowController::new(config, window, tps_limited)
    }

    /// Carry out the flow controller's decisions.
    pub(super) fn drain_flow_events(&mut self, ctx: &mut Context<Self>) {
        loop {
            let Some(event) = self.flow.as_mut().and_then(|f| f.poll_event()) else {
                return;
            };
            match event {
                FlowEvent::PhaseChanged { to, cause, .. } => {
                    if to == BindState::HalfClosedTx {
                        self.metrics.half_closed.increment(1);
                    }
                    if matches!(to, BindState::HalfClosedTx | BindState::Draining) {
                        // Nothing queued can go now: give it back (another bind may take it).
                        self.ledger.release_queued();
                    }
                    self.set_state(to, Some(cause.to_owned()));
                }
                FlowEvent::Degraded {
                    cause,
                    window,
                    count_in_last_minute,
                } => {
                    tracing::warn!(
                        operatorId = %self.key.operator_id,
                        direction = %self.key.direction,
                        bindId = self.key.bind_id,
                        cause = cause.as_str(),
                        window,
                        count_in_last_minute,
                        "bind degraded"
                    );
                    metrics::counter!(metric::BIND_DEGRADED, "mno" => self.key.operator_id.to_string(), "cause" => cause.as_str()).increment(1);
                    let event = BindDegradedEvent {
                        version: "1.0",
                        operator_id: self.key.operator_id.to_string(),
                        direction: self.key.direction.as_str(),
                        bind_id: self.key.bind_id,
                        cause: cause.as_str(),
                        window: u32::try_from(window).unwrap_or(u32::MAX),
                        count_in_last_minute: u32::try_from(count_in_last_minute).ok(),
                        at: now_rfc3339(),
                    };
                    let publisher = self.deps.publisher.clone();
                    actix::spawn(async move {
                        if let Err(err) = publisher
                            .publish(subject::BIND_DEGRADED, &event, None, None)
                            .await
                        {
                            metrics::counter!(metric::BACKEND_ERRORS, "backend" => "nats")
                                .increment(1);
                            tracing::warn!(error = %err, "smpp.bind.degraded not published");
                        }
                    });
                }
                FlowEvent::WindowChanged { size } => {
                    self.metrics.window_dynamic.set(size as f64);
                }
                FlowEvent::DrainAlert { draining_for } => {
                    tracing::error!(
                        operatorId = %self.key.operator_id,
                        direction = %self.key.direction,
                        bindId = self.key.bind_id,
                        draining_secs = draining_for.as_secs(),
                        "bind DRAINING for too long (the SMSC keeps answering ESME_RMSGQFUL)"
                    );
                }
                FlowEvent::Reconnect { status } => {
                    self.fail(super::failure::BindFailure::SessionFault { status }, ctx);
                    return;
                }
            }
        }
    }

    /// Ask the operator's TPS budget for tokens when the window could use more than we
    /// hold. One Redis round trip, answered into the flow controller.
    pub(super) fn request_grant(&mut self, pull_room: usize, ctx: &mut Context<Self>) {
        if self.granting {
            return;
        }
        let Some(limit) = self.credentials.as_ref().and_then(|c| c.tps_limit) else {
            return;
        };
        let live_binds = self
            .credentials
            .as_ref()
            .map_or(1, |c| u32::from(c.bind_count.max(1)));
        let in_flight = self.transmitter().map_or(0, |l| l.session.in_flight());
        let queued = self.ledger.queued();
        let Some(flow) = &self.flow else {
            return;
        };
        let want = flow.wanted_grant(Instant::now(), in_flight, queued, pull_room);
        if want == 0 {
            return;
        }
        self.granting = true;
        let request = self.deps.throttle.send(AcquireTps {
            bind: self.key.clone(),
            limit,
            want,
            live_binds,
        });
        let generation = self.generation;
        let asked = Instant::now();
        ctx.spawn(request.into_actor(self).map(move |grant, act, ctx| {
            act.granting = false;
            metrics::histogram!(metric::TPS_GRANT_LATENCY).record(asked.elapsed().as_secs_f64());
            let Ok(grant) = grant else {
                return;
            };
            if act.generation != generation {
                return;
            }
            let now = Instant::now();
            if let Some(flow) = &mut act.flow {
                flow.add_grant(now, grant.granted, now + grant.valid_for);
            }
            let spent = act.flow.as_ref().is_some_and(|f| f.tokens(now) == 0);
            if spent && act.ledger.queued() > 0 {
                // What cannot go this second goes back to the stream (SPEC §8), where any
                // bind can take it when the budget turns; started messages stay.
                let released = act.ledger.release_unstarted(TPS_NAK_DELAY);
                if released > 0 {
                    act.drain_outputs(ctx);
                }
            }
            if grant.granted == 0 {
                // Over the limit for this window: ask again when it turns.
                let wait = grant
                    .valid_for
                    .clamp(Duration::from_millis(10), Duration::from_secs(1));
                act.granting = true;
                ctx.run_later(wait, |act, ctx| {
                    act.granting = false;
                    act.drive(ctx);
                });
                return;
            }
            act.drive(ctx);
        }));
    }

    /// Keep the session's sequence numbers supplied from Redis: a new block when half of
    /// the current one is used. Redis down: numbering simply continues locally.
    pub(super) fn refill_sequences(&mut self, ctx: &mut Context<Self>) {
        if self.sequence_refill {
            return;
        }
        let wanted = self.links.iter().position(|l| {
            l.session
                .sequences_remaining()
                .is_some_and(|left| left < SEQUENCE_BLOCK / 2)
        });
        let Some(index) = wanted else {
            return;
        };
        self.sequence_refill = true;
        let request = self.deps.throttle.send(ReserveSequences {
            key: self.key.clone(),
            count: SEQUENCE_BLOCK,
        });
        let generation = self.generation;
        ctx.spawn(request.into_actor(self).map(move |result, act, _ctx| {
            act.sequence_refill = false;
            if act.generation != generation {
                return;
            }
            match result {
                Ok(Ok((first, len))) => {
                    if let Some(link) = act.links.get_mut(index) {
                        link.session.refill_sequences(first, len);
                    }
                }
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "sequence block not reserved; numbering continues locally");
                }
                Err(_) => {}
            }
        }));
    }
}
