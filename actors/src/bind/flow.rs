//! What the core decides carried out ([`BindEvent`]: state changes, `smpp.bind.degraded`,
//! window size, drain alerts, reconnects, unencodable segments), the TPS grants it spends
//! (one `AcquireTps` round trip to Redis per pull, never one per message), and the
//! sequence-number blocks from Redis.

use actix::prelude::*;
use smpp_connector::bind_core::{BindEvent, GrantRequest, SEQUENCE_BLOCK};
use tracing::Instrument;

use super::actor::BindActor;
use crate::events::{BindDegradedEvent, now_rfc3339, subject};
use crate::telemetry::internal_events::{
    Backend, BackendFailed, BindInternalEvent, Degraded, emit,
};
use crate::telemetry::metric;
use crate::throttle::{AcquireTps, ReserveSequences};

impl BindActor {
    /// Carry out what the core decided ([`BindEvent`]): state changes, the flow
    /// controller's notices, unencodable segments.
    pub(super) fn drain_events(&mut self, ctx: &mut Context<Self>) {
        while let Some(event) = self.core.poll_event() {
            match event {
                BindEvent::StateChanged(change) => self.report_state(change),
                BindEvent::Degraded {
                    cause,
                    window,
                    count_in_last_minute,
                } => {
                    Degraded {
                        mno: self.key.operator_id.as_str(),
                        cause: cause.as_str(),
                        window,
                        count_in_last_minute,
                    }
                    .emit(&mut self.metrics);
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
                    actix::spawn(
                        async move {
                            if let Err(err) = publisher
                                .publish(subject::BIND_DEGRADED, &event, None, None)
                                .await
                            {
                                emit(BackendFailed {
                                    backend: Backend::Nats,
                                    what: "smpp.bind.degraded not published",
                                    error: &err,
                                });
                            }
                        }
                        .instrument(self.span.clone()),
                    );
                }
                BindEvent::WindowChanged { size } => {
                    self.metrics.window_dynamic.set(size as f64);
                }
                BindEvent::DrainAlert { draining_for } => {
                    tracing::error!(
                        draining_secs = draining_for.as_secs(),
                        "bind DRAINING for too long (the SMSC keeps answering ESME_RMSGQFUL)"
                    );
                }
                BindEvent::Unencodable { message_id, error } => {
                    tracing::warn!(
                        messageId = %message_id,
                        error = %error,
                        "submit_sm could not be encoded; message rejected"
                    );
                }
                BindEvent::SessionFault { status } => {
                    self.fail(super::failure::BindFailure::SessionFault { status }, ctx);
                    return;
                }
            }
        }
    }

    /// Ask the operator's TPS budget for tokens when the window could use more than we
    /// hold ([`smpp_connector::bind_core::BindCore::poll_grant`]). One Redis round trip,
    /// answered into the core.
    pub(super) fn request_grant(&mut self, ctx: &mut Context<Self>) {
        let Some(GrantRequest {
            limit,
            want,
            live_binds,
        }) = self.core.poll_grant(crate::clock::now())
        else {
            return;
        };
        let request = self.deps.throttle.send(AcquireTps {
            bind: self.key.clone(),
            limit,
            want,
            live_binds,
        });
        let generation = self.generation;
        let asked = crate::clock::now();
        ctx.spawn(request.into_actor(self).map(move |grant, act, ctx| {
            let _span = act.span.clone().entered();
            metrics::histogram!(metric::TPS_GRANT_LATENCY).record(asked.elapsed().as_secs_f64());
            let grant = grant
                .ok()
                .filter(|_| act.generation == generation)
                .map(|g| (g.granted, g.valid_for));
            let after = act.core.grant_answered(crate::clock::now(), grant);
            if after.released > 0 {
                act.drain_outputs(ctx);
            }
            if let Some(wait) = after.ask_again_in {
                ctx.run_later(wait, |act, ctx| {
                    let _span = act.span.clone().entered();
                    act.core.grant_wait_over();
                    act.drive(ctx);
                });
                return;
            }
            if grant.is_some() {
                act.drive(ctx);
            }
        }));
    }

    /// Keep the sessions' sequence numbers supplied from Redis: a new block when half of
    /// the current one is used. Redis down: numbering simply continues locally.
    pub(super) fn refill_sequences(&mut self, ctx: &mut Context<Self>) {
        let Some(index) = self.core.sequences_wanted() else {
            return;
        };
        let request = self.deps.throttle.send(ReserveSequences {
            key: self.key.clone(),
            count: SEQUENCE_BLOCK,
        });
        let generation = self.generation;
        ctx.spawn(request.into_actor(self).map(move |result, act, _ctx| {
            let _span = act.span.clone().entered();
            let block = match result {
                Ok(Ok(block)) => Some(block),
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "sequence block not reserved; numbering continues locally");
                    None
                }
                Err(_) => None,
            };
            let index = if act.generation == generation { index } else { usize::MAX };
            act.core.sequences_reserved(index, block);
        }));
    }
}
