//! `HealthPublisherActor`: publishes `operator.health` on every bind state change.
//!
//! It owns the order of health events: each event is put on the wire before the next
//! one is (a state change is never overtaken by an older one), and the JetStream
//! acknowledgement is awaited in the background so a slow stream does not hold the
//! next change back. A publish that is not acknowledged is retried a few times, then
//! counted and logged: health is re-published on the next change anyway.

use std::time::Duration;

use actix::prelude::*;
use smpp_connector::config::BindKey;
use smpp_connector::protocol::session::BindState;

use crate::events::{OperatorHealthEvent, now_rfc3339, subject};
use crate::nats::EventPublisher;
use crate::telemetry::actor_health::{ActorHealth, Probe};
use crate::telemetry::internal_events::{Backend, BackendFailed, emit};

/// A bind changed state; the counts are those of its operator in this process.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct PublishHealth {
    pub key: BindKey,
    pub state: BindState,
    /// FAILBACK instead of BOUND when the primary came back after a failover.
    pub failback: bool,
    pub reason: Option<String>,
    pub bound_binds: u32,
    pub total_binds: u32,
    pub backup_operator_id: Option<String>,
}

/// The publisher of `operator.health`.
#[derive(Debug)]
pub struct HealthPublisherActor {
    publisher: EventPublisher,
    pod: String,
    health: ActorHealth,
}

impl HealthPublisherActor {
    pub fn new(publisher: EventPublisher, pod: String) -> Self {
        HealthPublisherActor {
            publisher,
            pod,
            health: ActorHealth::new("health", None),
        }
    }

    fn event(&self, msg: &PublishHealth) -> OperatorHealthEvent {
        OperatorHealthEvent {
            version: "1.0",
            operator_id: msg.key.operator_id.to_string(),
            direction: msg.key.direction.as_str(),
            bind_id: msg.key.bind_id,
            state: if msg.failback && msg.state.is_bound() {
                "FAILBACK"
            } else {
                msg.state.health_state()
            },
            bind_state: msg.state.as_str(),
            reason: msg.reason.clone(),
            operator_state: if msg.bound_binds > 0 {
                "BOUND"
            } else {
                "UNBOUND"
            },
            bound_binds: msg.bound_binds,
            total_binds: msg.total_binds,
            backup_operator_id: msg.backup_operator_id.clone(),
            pod: self.pod.clone(),
            at: now_rfc3339(),
        }
    }
}

impl Actor for HealthPublisherActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.health.started(ctx);
    }
}

impl Handler<Probe> for HealthPublisherActor {
    type Result = ();

    fn handle(&mut self, probe: Probe, _ctx: &mut Context<Self>) {
        self.health.probed(&probe);
    }
}

impl Handler<PublishHealth> for HealthPublisherActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: PublishHealth, _ctx: &mut Context<Self>) -> Self::Result {
        let _timer = self.health.time();
        let event = self.event(&msg);
        let publisher = self.publisher.clone();
        // Sending is awaited in the handler (AtomicResponse keeps the mailbox in order);
        // the acknowledgement is not.
        AtomicResponse::new(Box::pin(
            async move {
                for attempt in 1..=3u32 {
                    match publisher
                        .send(subject::OPERATOR_HEALTH, &event, None, None)
                        .await
                    {
                        Ok(ack) => {
                            actix::spawn(async move {
                                if let Err(err) = ack.await {
                                    emit(BackendFailed {
                                        backend: Backend::Nats,
                                        what: "operator.health not acknowledged",
                                        error: &err,
                                    });
                                }
                            });
                            return;
                        }
                        Err(err) => {
                            emit(BackendFailed {
                                backend: Backend::Nats,
                                what: "operator.health publish failed; retrying",
                                error: &err,
                            });
                            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt)))
                                .await;
                        }
                    }
                }
            }
            .into_actor(self),
        ))
    }
}
