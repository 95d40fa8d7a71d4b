//! Primary/backup failover of one bind (SPEC §5, US-SC-013), the pure half.
//!
//! A bind of operator A whose credentials name a `backupOperatorId` B fails over when its
//! session has failed `threshold` bind attempts in a row: a second bind, to B's SMSC with
//! B's own credentials, takes A's traffic (A's lanes and A's pinned subject), writing its
//! correlation rows and receiving its receipts under B's operator id. The primary keeps
//! retrying with its backoff; when it binds again its health event says FAILBACK, new
//! traffic goes to it, and the backup drains its in-flight submits and unbinds.
//!
//! [`Failover`] decides, per primary bind, from what it is told — the primary's state and
//! failure count, what OMS said about a backup, the backup's end — and answers with
//! [`Action`]s the supervisor carries out. It reads no clock and does no I/O.

use crate::identity::OperatorId;
use crate::protocol::session::BindState;

/// Default number of failed bind attempts in a row before the backup is bound.
pub const DEFAULT_THRESHOLD: u32 = 3;

/// Where one primary bind's traffic goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Through the primary (bound, or retrying below the threshold).
    Primary,
    /// The threshold passed: the primary's credentials are being read for a backup id.
    LookingUp,
    /// Through the backup bind; the primary keeps retrying.
    OnBackup { backup: OperatorId },
    /// The primary bound again: the backup drains what it holds, then unbinds.
    FailingBack { backup: OperatorId },
}

/// What the supervisor does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Read the primary's credentials (OMS) for `backupOperatorId`; answer with
    /// [`Failover::handle_backup_lookup`].
    LookUpBackup,
    /// Start the backup bind for this primary bind, and say so: the primary is UNBOUND
    /// with its traffic routed through `backup`.
    StartBackup(OperatorId),
    /// The primary is back: publish FAILBACK for it.
    Failback,
    /// Drain the backup bind (finish its in-flight submits, take nothing new), unbind it,
    /// then answer with [`Failover::handle_backup_stopped`].
    StopBackup {
        backup: OperatorId,
        reason: &'static str,
    },
}

/// The failover state of one primary bind.
#[derive(Debug, Clone)]
pub struct Failover {
    primary: OperatorId,
    threshold: u32,
    phase: Phase,
}

impl Failover {
    /// `threshold`: failed bind attempts in a row before the backup is bound (at least 1).
    pub fn new(primary: OperatorId, threshold: u32) -> Self {
        Failover {
            primary,
            threshold: threshold.max(1),
            phase: Phase::Primary,
        }
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The backup carrying (or still draining) this bind's traffic, if any: events about
    /// the primary carry it as `backupOperatorId` while the phase is `OnBackup`.
    pub fn routed_through(&self) -> Option<&OperatorId> {
        match &self.phase {
            Phase::OnBackup { backup } => Some(backup),
            _ => None,
        }
    }

    /// The backup bind exists (bound, binding or draining).
    pub fn backup_running(&self) -> Option<&OperatorId> {
        match &self.phase {
            Phase::OnBackup { backup } | Phase::FailingBack { backup } => Some(backup),
            _ => None,
        }
    }

    /// The primary bind changed state; `failures` is its count of failed bind attempts
    /// in a row (0 once bound).
    pub fn handle_primary_state(&mut self, state: BindState, failures: u32) -> Vec<Action> {
        match (&self.phase, state.is_bound()) {
            (Phase::Primary, false) if failures >= self.threshold => {
                self.phase = Phase::LookingUp;
                vec![Action::LookUpBackup]
            }
            (Phase::Primary | Phase::FailingBack { .. }, _) => Vec::new(),
            // Bound again before OMS answered: nothing to fail over from.
            (Phase::LookingUp, true) => {
                self.phase = Phase::Primary;
                Vec::new()
            }
            (Phase::LookingUp, false) => Vec::new(),
            (Phase::OnBackup { backup }, true) => {
                let backup = backup.clone();
                self.phase = Phase::FailingBack {
                    backup: backup.clone(),
                };
                vec![
                    Action::Failback,
                    Action::StopBackup {
                        backup,
                        reason: "failback",
                    },
                ]
            }
            (Phase::OnBackup { .. }, false) => Vec::new(),
        }
    }

    /// OMS answered the lookup: the primary's `backupOperatorId` (or none).
    pub fn handle_backup_lookup(&mut self, backup: Option<OperatorId>) -> Vec<Action> {
        if self.phase != Phase::LookingUp {
            return Vec::new();
        }
        match backup.filter(|b| *b != self.primary) {
            Some(backup) => {
                self.phase = Phase::OnBackup {
                    backup: backup.clone(),
                };
                vec![Action::StartBackup(backup)]
            }
            None => {
                // No backup configured (or OMS unreachable): look again at the next
                // failed attempt, so a backup added in OMS is picked up.
                self.phase = Phase::Primary;
                Vec::new()
            }
        }
    }

    /// The backup bind is down (drained and unbound, or stopped).
    pub fn handle_backup_stopped(&mut self) -> Vec<Action> {
        if matches!(self.phase, Phase::FailingBack { .. }) {
            self.phase = Phase::Primary;
        }
        Vec::new()
    }

    /// The primary bind is stopped in this process (ownership moved, shutdown): the
    /// backup goes with it.
    pub fn handle_primary_stopped(&mut self) -> Vec<Action> {
        let phase = std::mem::replace(&mut self.phase, Phase::Primary);
        match phase {
            Phase::OnBackup { backup } | Phase::FailingBack { backup } => {
                vec![Action::StopBackup {
                    backup,
                    reason: "primary_stopped",
                }]
            }
            Phase::Primary | Phase::LookingUp => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: &str) -> OperatorId {
        OperatorId::try_new(id).unwrap()
    }

    #[test]
    fn fails_over_after_the_threshold_and_back_when_the_primary_binds() {
        let mut f = Failover::new(op("a"), 3);
        assert!(f.handle_primary_state(BindState::Bound, 0).is_empty());
        assert!(
            f.handle_primary_state(BindState::Disconnected, 1)
                .is_empty()
        );
        assert!(f.handle_primary_state(BindState::Connecting, 1).is_empty());
        assert!(
            f.handle_primary_state(BindState::Disconnected, 2)
                .is_empty()
        );
        assert_eq!(
            f.handle_primary_state(BindState::Disconnected, 3),
            vec![Action::LookUpBackup]
        );
        // Further failures while OMS is asked change nothing.
        assert!(
            f.handle_primary_state(BindState::Disconnected, 4)
                .is_empty()
        );
        assert_eq!(
            f.handle_backup_lookup(Some(op("b"))),
            vec![Action::StartBackup(op("b"))]
        );
        assert_eq!(f.routed_through(), Some(&op("b")));
        // The primary keeps failing: the backup stays.
        assert!(
            f.handle_primary_state(BindState::Disconnected, 9)
                .is_empty()
        );
        assert_eq!(
            f.handle_primary_state(BindState::Bound, 0),
            vec![
                Action::Failback,
                Action::StopBackup {
                    backup: op("b"),
                    reason: "failback"
                }
            ]
        );
        assert_eq!(f.routed_through(), None);
        assert_eq!(f.backup_running(), Some(&op("b")));
        f.handle_backup_stopped();
        assert_eq!(f.phase(), &Phase::Primary);
        assert_eq!(f.backup_running(), None);
    }

    #[test]
    fn no_backup_means_looking_again_at_the_next_failure() {
        let mut f = Failover::new(op("a"), 2);
        assert_eq!(
            f.handle_primary_state(BindState::Disconnected, 2),
            vec![Action::LookUpBackup]
        );
        assert!(f.handle_backup_lookup(None).is_empty());
        assert_eq!(f.phase(), &Phase::Primary);
        assert_eq!(
            f.handle_primary_state(BindState::Disconnected, 3),
            vec![Action::LookUpBackup]
        );
        // A backup naming the primary itself is no backup.
        assert!(f.handle_backup_lookup(Some(op("a"))).is_empty());
        assert_eq!(f.phase(), &Phase::Primary);
    }

    #[test]
    fn a_primary_bound_before_the_lookup_answers_cancels_the_failover() {
        let mut f = Failover::new(op("a"), 1);
        assert_eq!(
            f.handle_primary_state(BindState::Disconnected, 1),
            vec![Action::LookUpBackup]
        );
        assert!(f.handle_primary_state(BindState::Bound, 0).is_empty());
        assert!(f.handle_backup_lookup(Some(op("b"))).is_empty());
        assert_eq!(f.phase(), &Phase::Primary);
    }

    #[test]
    fn a_stopped_primary_takes_its_backup_down() {
        let mut f = Failover::new(op("a"), 1);
        f.handle_primary_state(BindState::Disconnected, 1);
        f.handle_backup_lookup(Some(op("b")));
        assert_eq!(
            f.handle_primary_stopped(),
            vec![Action::StopBackup {
                backup: op("b"),
                reason: "primary_stopped"
            }]
        );
        assert_eq!(f.phase(), &Phase::Primary);
        // Nothing running: nothing to stop.
        assert!(f.handle_primary_stopped().is_empty());
    }

    #[test]
    fn while_failing_back_nothing_new_starts_until_the_backup_is_down() {
        let mut f = Failover::new(op("a"), 1);
        f.handle_primary_state(BindState::Disconnected, 1);
        f.handle_backup_lookup(Some(op("b")));
        f.handle_primary_state(BindState::Bound, 0);
        // The primary drops again while the backup drains: no second backup.
        assert!(
            f.handle_primary_state(BindState::Disconnected, 5)
                .is_empty()
        );
        f.handle_backup_stopped();
        assert_eq!(
            f.handle_primary_state(BindState::Disconnected, 6),
            vec![Action::LookUpBackup]
        );
    }
}
