//! Primary/backup failover carried out (SPEC §5, US-SC-013). The decisions are
//! [`Failover`]'s; this file turns them into actors and events:
//!
//! - the primary's state changes are published as they come, with `backupOperatorId`
//!   while its traffic goes through the backup, and its return as FAILBACK;
//! - `LookUpBackup` reads the primary's credentials from OMS for `backupOperatorId`;
//! - `StartBackup` spawns a `BindActor` keyed by the backup operator (its credentials,
//!   TPS budget, rows and receipts are the backup's) that takes the primary's commands
//!   from the primary's lanes and pinned subject; its state changes are published under
//!   the backup operator with `backupOperatorId` set and reason `failover`;
//! - `StopBackup` drains and unbinds the backup (`ShutdownBind`), then drops it.
//!
//! The backup runs under the primary's ownership: when this pod stops the primary (its
//! key moved, a release, shutdown) the backup stops with it.

use actix::prelude::*;
use smpp_connector::cluster::failover::{Action, Failover};
use smpp_connector::config::{BindKey, OperatorId};
use smpp_connector::protocol::session::BindState;

use super::{BindEntry, BindStateChanged, Supervisor};
use crate::bind::{AbortBind, ShutdownBind};
use crate::telemetry::internal_events::{Failover as FailoverEvent, emit};

/// OMS answered: the primary's `backupOperatorId` (None: none configured, or OMS down).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(super) struct BackupLookedUp {
    primary: BindKey,
    backup: Option<OperatorId>,
}

/// The backup bind of `primary` is down (drained and unbound).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(super) struct BackupStopped {
    primary: BindKey,
    addr: Addr<crate::bind::BindActor>,
}

impl Supervisor {
    pub(super) fn primary_state_changed(&mut self, msg: BindStateChanged, ctx: &mut Context<Self>) {
        if let Some(entry) = self.binds.get_mut(&msg.key) {
            entry.state = msg.state;
            entry.reason = msg.reason.clone();
        }
        self.update_gauges();
        let actions = match self.failover.get_mut(&msg.key) {
            // Only a bind this process still runs fails over.
            Some(failover) if self.binds.contains_key(&msg.key) && !self.shutting_down => {
                failover.handle_primary_state(msg.state, msg.failures)
            }
            _ => Vec::new(),
        };
        let failback = actions.contains(&Action::Failback);
        let routed = self
            .failover
            .get(&msg.key)
            .and_then(Failover::routed_through)
            .cloned();
        self.publish_health(&msg.key, msg.state, msg.reason, failback, routed.as_ref());
        self.carry_out(&msg.key, actions, ctx);
    }

    pub(super) fn backup_state_changed(&mut self, msg: BindStateChanged) {
        let primary = BindKey::new(msg.serves.clone(), msg.key.direction, msg.key.bind_id);
        if let Some(entry) = self.backups.get_mut(&primary) {
            entry.state = msg.state;
            entry.reason = msg.reason.clone();
        }
        self.update_gauges();
        let reason = msg.reason.or_else(|| Some("failover".into()));
        self.publish_health(
            &msg.key,
            msg.state,
            reason,
            false,
            Some(&msg.key.operator_id),
        );
    }

    fn carry_out(&mut self, primary: &BindKey, actions: Vec<Action>, ctx: &mut Context<Self>) {
        for action in actions {
            match action {
                Action::LookUpBackup => self.look_up_backup(primary, ctx),
                Action::StartBackup(backup) => self.start_backup(primary, backup),
                Action::Failback => emit(FailoverEvent::Failback { primary }),
                Action::StopBackup { reason, .. } => {
                    self.stop_backup_of(primary, true, reason, ctx);
                }
            }
        }
    }

    fn look_up_backup(&self, primary: &BindKey, ctx: &mut Context<Self>) {
        let credentials = self.credentials.clone();
        let me = ctx.address();
        let primary = primary.clone();
        actix::spawn(async move {
            let backup = match credentials.fetch(&primary.operator_id).await {
                Ok(credentials) => match credentials.backup_operator_id.as_deref() {
                    None | Some("") => None,
                    Some(raw) => match OperatorId::try_new(raw) {
                        Ok(id) => Some(id),
                        Err(err) => {
                            tracing::warn!(operatorId = %primary.operator_id, error = %err, "backupOperatorId in OMS is not a valid operator id; no failover");
                            None
                        }
                    },
                },
                Err(err) => {
                    tracing::debug!(operatorId = %primary.operator_id, error = %err, "backup lookup: credentials unavailable");
                    None
                }
            };
            me.do_send(BackupLookedUp { primary, backup });
        });
    }

    fn start_backup(&mut self, primary: &BindKey, backup: OperatorId) {
        let Some(entry) = self.binds.get(primary) else {
            return;
        };
        let lanes = entry.lanes.clone();
        let state = entry.state;
        let key = BindKey::new(backup.clone(), primary.direction, primary.bind_id);
        emit(FailoverEvent::Started {
            primary,
            backup: &backup,
        });
        let addr = self.spawn_bind(&key, &primary.operator_id, &lanes);
        self.backups.insert(
            primary.clone(),
            BindEntry {
                key,
                addr,
                state: BindState::Disconnected,
                reason: None,
                lanes,
            },
        );
        self.update_gauges();
        // The primary is UNBOUND, its traffic routed through the backup.
        self.publish_health(
            primary,
            state,
            Some("failover".into()),
            false,
            Some(&backup),
        );
    }

    /// Stop the backup of `primary`, if it has one: drained and unbound (`graceful`), or at
    /// once (its ownership moved).
    pub(super) fn stop_backup_of(
        &mut self,
        primary: &BindKey,
        graceful: bool,
        reason: &'static str,
        ctx: &mut Context<Self>,
    ) {
        let Some(entry) = self.backups.get(primary) else {
            return;
        };
        tracing::info!(
            operatorId = %primary.operator_id,
            bindId = primary.bind_id,
            backupOperatorId = %entry.key.operator_id,
            reason,
            "stopping the backup bind"
        );
        let addr = entry.addr.clone();
        if !graceful {
            addr.do_send(AbortBind { reason });
            self.backups.remove(primary);
            self.update_gauges();
            return;
        }
        let stop = addr.send(ShutdownBind { reason });
        let deadline = self.config.timers.drain_timeout + self.config.timers.bind_timeout;
        let me = ctx.address();
        let primary = primary.clone();
        actix::spawn(async move {
            let _ = tokio::time::timeout(deadline, stop).await;
            me.do_send(BackupStopped { primary, addr });
        });
    }
}

impl Handler<BackupLookedUp> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: BackupLookedUp, ctx: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        let actions = match self.failover.get_mut(&msg.primary) {
            Some(failover) => failover.handle_backup_lookup(msg.backup),
            None => return,
        };
        self.carry_out(&msg.primary, actions, ctx);
    }
}

impl Handler<BackupStopped> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: BackupStopped, ctx: &mut Context<Self>) {
        // Only the backup this stop was for (a newer one may have started since).
        if self
            .backups
            .get(&msg.primary)
            .is_some_and(|e| e.addr == msg.addr)
        {
            self.backups.remove(&msg.primary);
            self.update_gauges();
        }
        let actions = match self.failover.get_mut(&msg.primary) {
            Some(failover) => failover.handle_backup_stopped(),
            None => return,
        };
        self.carry_out(&msg.primary, actions, ctx);
    }
}
