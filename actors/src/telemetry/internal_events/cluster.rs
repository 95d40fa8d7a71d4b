//! The cluster and its actors: crashes, failover, what the reconciler mends.

// Events live for one `emit`, often borrowing an error as `&dyn Display`: no `Debug`.
#![allow(missing_debug_implementations)]

use super::InternalEvent;
use crate::telemetry::metric;

/// A shared actor ended while the service runs: the process exits (70) so the pod is
/// restarted.
pub struct SharedActorEnded {
    pub actor: &'static str,
}

impl InternalEvent for SharedActorEnded {
    fn emit(self) {
        metrics::counter!(metric::ACTOR_RESTARTS, "actor" => self.actor, "bind" => "", "reason" => "crashed")
            .increment(1);
        tracing::error!(
            actor = self.actor,
            "a shared actor ended unexpectedly; exiting so the pod is restarted"
        );
    }
}

/// A bind actor's task ended in a panic; its supervisor respawns it.
pub struct BindCrashed<'a> {
    pub key: &'a smpp_connector::config::BindKey,
    pub backup: bool,
}

impl InternalEvent for BindCrashed<'_> {
    fn emit(self) {
        let key = self.key;
        metrics::counter!(metric::BIND_CRASHES, "mno" => key.operator_id.to_string(), "direction" => key.direction.as_str(), "bindId" => key.bind_id.to_string()).increment(1);
        crate::telemetry::actor_health::ActorHealth::bind_crashed(key);
        tracing::error!(operatorId = %key.operator_id, direction = %key.direction, bindId = key.bind_id, backup = self.backup, "bind actor ended unexpectedly; respawning it");
    }
}

/// Primary/backup failover of one bind: the backup operator bound for the primary's
/// traffic, or the primary bound again (FAILBACK: new traffic goes to it, the backup
/// drains).
pub enum Failover<'a> {
    Started {
        primary: &'a smpp_connector::config::BindKey,
        backup: &'a smpp_connector::config::OperatorId,
    },
    Failback {
        primary: &'a smpp_connector::config::BindKey,
    },
}

impl InternalEvent for Failover<'_> {
    fn emit(self) {
        match self {
            Failover::Started { primary, backup } => {
                tracing::warn!(
                    operatorId = %primary.operator_id,
                    direction = %primary.direction,
                    bindId = primary.bind_id,
                    backupOperatorId = %backup,
                    "primary bind down past the failover threshold: binding the backup operator for its traffic"
                );
                metrics::counter!(metric::FAILOVERS, "mno" => primary.operator_id.to_string(), "direction" => primary.direction.as_str(), "event" => "failover").increment(1);
            }
            Failover::Failback { primary } => {
                metrics::counter!(metric::FAILOVERS, "mno" => primary.operator_id.to_string(), "direction" => primary.direction.as_str(), "event" => "failback").increment(1);
                tracing::info!(operatorId = %primary.operator_id, direction = %primary.direction, bindId = primary.bind_id, "primary bound again: FAILBACK, new traffic goes to the primary");
            }
        }
    }
}

/// What the reconciler found and mended: an orphaned owner key removed (its pod no
/// longer heartbeats), or a bind run by a pod its owner key does not name (seen twice).
pub enum Reconciled<'a> {
    Orphan {
        op: &'a smpp_connector::config::OperatorId,
        direction: smpp_connector::config::Direction,
        bind_id: u16,
        pod: &'a str,
    },
    DoubleClaim {
        op: &'a smpp_connector::config::OperatorId,
        direction: smpp_connector::config::Direction,
        bind_id: u16,
        owner: Option<&'a str>,
        runners: &'a [String],
    },
}

impl InternalEvent for Reconciled<'_> {
    fn emit(self) {
        match self {
            Reconciled::Orphan {
                op,
                direction,
                bind_id,
                pod,
            } => {
                metrics::counter!(metric::BIND_ORPHANS, "mno" => op.to_string(), "direction" => direction.as_str()).increment(1);
                tracing::warn!(operatorId = %op, direction = %direction, bindId = bind_id, pod = %pod, "orphaned bind ownership removed (its pod no longer heartbeats); a live pod claims it");
            }
            Reconciled::DoubleClaim {
                op,
                direction,
                bind_id,
                owner,
                runners,
            } => {
                metrics::counter!(metric::BIND_DOUBLE_CLAIMS, "mno" => op.to_string(), "direction" => direction.as_str()).increment(1);
                tracing::warn!(operatorId = %op, direction = %direction, bindId = bind_id, owner = owner.unwrap_or("-"), runners = ?runners, "bind run by a pod its owner key does not name; that pod stops it on its next refresh");
            }
        }
    }
}
