//! Cluster chores: what a pod does now and then for an operator and direction as a
//! whole, not for one bind. The pod that runs the operator's bind 0 in that direction does
//! them (one pod at a time, as ownership gives bind 0 to one pod):
//!
//! - the expiry scans of the open MO indexes of bind ids the operator no longer has (its
//!   `bindCount` lowered in OMS): nobody else scans them, and their parts would never be
//!   published;
//! - the sweep of commands pinned to such bind ids into the dead-letter stream: nobody
//!   consumes their subjects (submitting directions only).
//!
//! Each runs once at a time, on the first tick after the pod took bind 0 and then every
//! [`CHORE_EVERY`] ticks (the driver ticks at the MO scan interval).

use std::ops::Range;

/// Ticks between two runs of the chores (at the default 20 s concatenation window and
/// its 5 s scan interval: a minute).
pub const CHORE_EVERY: u32 = 12;

/// The bind ids whose open MO indexes nobody scans: those at or above `bind_count` (binds
/// removed by lowering it in OMS).
pub fn orphaned_bind_ids(bind_count: u16) -> Range<u16> {
    bind_count.max(1)..crate::credentials::MAX_BIND_COUNT
}

/// What one run covers ([`Chores::tick`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChoreRun {
    /// Scan the open MO indexes of these bind ids.
    pub orphan_scan: Option<Range<u16>>,
    /// Sweep the commands pinned to bind ids the operator does not have.
    pub sweep_unserved: bool,
}

/// The chores of one operator and direction on this pod.
#[derive(Debug, Default, Clone)]
pub struct Chores {
    ticks: u32,
    scanning: bool,
    sweeping: bool,
}

impl Chores {
    /// One tick. `runs_bind_zero`: this pod runs the operator's bind 0 in this direction
    /// (otherwise nothing, and the count starts over: the next pod to take bind 0 runs
    /// the chores at its first tick); `bind_count`: the operator's, once known;
    /// `submits`: the direction carries dispatch commands.
    pub fn tick(
        &mut self,
        runs_bind_zero: bool,
        bind_count: Option<u16>,
        submits: bool,
    ) -> Option<ChoreRun> {
        if !runs_bind_zero {
            self.ticks = 0;
            return None;
        }
        let bind_count = bind_count?;
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks % CHORE_EVERY != 1 {
            return None;
        }
        let orphan_scan = (!self.scanning).then(|| orphaned_bind_ids(bind_count));
        let sweep_unserved = submits && !self.sweeping;
        self.scanning |= orphan_scan.is_some();
        self.sweeping |= sweep_unserved;
        (orphan_scan.is_some() || sweep_unserved).then_some(ChoreRun {
            orphan_scan,
            sweep_unserved,
        })
    }

    /// The orphan scan of a run ended.
    pub fn scan_done(&mut self) {
        self.scanning = false;
    }

    /// The sweep of a run ended.
    pub fn sweep_done(&mut self) {
        self.sweeping = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pod_running_bind_zero_does_the_chores_at_once_then_every_twelfth_tick() {
        let mut chores = Chores::default();
        assert_eq!(
            chores.tick(true, None, true),
            None,
            "bind count not known yet"
        );
        assert_eq!(
            chores.tick(true, Some(2), true),
            Some(ChoreRun {
                orphan_scan: Some(2..64),
                sweep_unserved: true
            })
        );
        for _ in 1..CHORE_EVERY {
            assert_eq!(chores.tick(true, Some(2), true), None);
        }
        assert_eq!(
            chores.tick(true, Some(2), true),
            None,
            "both still running: not started twice"
        );
        chores.scan_done();
        for _ in 1..CHORE_EVERY {
            chores.tick(true, Some(2), true);
        }
        assert_eq!(
            chores.tick(true, Some(2), true),
            Some(ChoreRun {
                orphan_scan: Some(2..64),
                sweep_unserved: false
            }),
            "the sweep is still running"
        );
    }

    #[test]
    fn receiving_directions_scan_and_do_not_sweep() {
        let mut chores = Chores::default();
        assert_eq!(
            chores.tick(true, Some(64), false),
            Some(ChoreRun {
                orphan_scan: Some(64..64),
                sweep_unserved: false
            })
        );
        assert_eq!(orphaned_bind_ids(0), 1..64);
    }

    #[test]
    fn a_pod_that_takes_bind_zero_over_runs_the_chores_at_its_first_tick() {
        let mut chores = Chores::default();
        assert!(chores.tick(true, Some(2), true).is_some());
        chores.scan_done();
        chores.sweep_done();
        chores.tick(true, Some(2), true);
        assert_eq!(chores.tick(false, Some(2), true), None, "bind 0 moved away");
        assert!(
            chores.tick(true, Some(2), true).is_some(),
            "back: at once, not eleven ticks later"
        );
    }
}
