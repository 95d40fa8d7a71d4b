//! What every bind shares ([`BindDeps`]) and what it tells its supervisor
//! ([`BindStateChanged`]).

use std::sync::Arc;

use actix::prelude::*;
use smpp_connector::config::{BindKey, Config, OperatorId};
use smpp_connector::protocol::session::BindState;

use super::pull_mux::PullMux;
use crate::correlation::CorrelationActor;
use crate::inbound::InboundDeps;
use crate::nats::EventPublisher;
use crate::oms::CredentialSource;
use crate::throttle::ThrottleActor;

/// A bind changed state (sent by the bind itself).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct BindStateChanged {
    pub key: BindKey,
    /// The operator whose traffic the bind carries: `key`'s own, or for a backup bind
    /// the primary's.
    pub serves: OperatorId,
    pub state: BindState,
    pub reason: Option<String>,
    /// Failed bind attempts in a row (0 once bound).
    pub failures: u32,
}

/// A bind actor's task ended in a panic (sent from its `Drop` while unwinding): its
/// supervisor respawns it at once instead of at its next check.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct BindCrashed {
    pub key: BindKey,
}

/// What every bind shares.
pub struct BindDeps {
    pub config: Arc<Config>,
    pub credentials: Arc<dyn CredentialSource>,
    pub correlation: Addr<CorrelationActor>,
    pub supervisor: Recipient<BindStateChanged>,
    /// Told when a bind's task ends in a panic.
    pub crashed: Recipient<BindCrashed>,
    pub publisher: EventPublisher,
    pub throttle: Addr<ThrottleActor>,
    /// What its `deliver_sm` handling needs (the same actors, shared with the chores).
    pub inbound: Arc<InboundDeps>,
    /// The process's one subscription for pull answers.
    pub pulls: PullMux,
    /// TLS to SMSCs of operators with `tls: true`.
    pub tls: tokio_rustls::TlsConnector,
    /// How the bind reaches its SMSC (TCP in production).
    pub smsc: Arc<dyn super::io::SmscConnector>,
}

impl std::fmt::Debug for BindDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindDeps").finish_non_exhaustive()
    }
}
