//! The cluster chores of the operators whose bind 0 runs on this pod
//! ([`smpp_connector::cluster::chores`] decides when): the expiry scans of the MO indexes
//! of bind ids an operator no longer has, and the sweep of commands pinned to them.

use std::collections::BTreeSet;

use actix::prelude::*;
use smpp_connector::config::BindKey;

use super::Supervisor;

impl Supervisor {
    /// One tick of every operator's and direction's chores (at the MO scan interval).
    pub(super) fn chores_tick(&mut self, ctx: &mut Context<Self>) {
        let Some(deps) = self.chore_deps.clone() else {
            return;
        };
        if self.shutting_down {
            return;
        }
        let pairs: BTreeSet<_> = self
            .binds
            .keys()
            .map(|key| (key.operator_id.clone(), key.direction))
            .chain(self.chores.keys().cloned())
            .collect();
        for (operator_id, direction) in pairs {
            let zero = BindKey::new(operator_id.clone(), direction, 0);
            let runs_bind_zero = self.binds.contains_key(&zero);
            let bind_count = self
                .operator_lanes
                .get(&operator_id)
                .map(|(count, _)| *count);
            let chores = self
                .chores
                .entry((operator_id.clone(), direction))
                .or_default();
            let Some(run) = chores.tick(runs_bind_zero, bind_count, direction.submits()) else {
                continue;
            };
            if let Some(ids) = run.orphan_scan {
                let scan =
                    crate::inbound::mo::scan_orphans(deps.inbound.clone(), zero.clone(), ids);
                let pair = (operator_id.clone(), direction);
                ctx.spawn(scan.into_actor(self).map(move |(), act, _ctx| {
                    if let Some(chores) = act.chores.get_mut(&pair) {
                        chores.scan_done();
                    }
                }));
            }
            if run.sweep_unserved {
                let sweep =
                    crate::cluster::unserved::sweep(deps.clone(), operator_id.clone(), direction);
                let pair = (operator_id.clone(), direction);
                ctx.spawn(sweep.into_actor(self).map(move |result, act, _ctx| {
                    if let Some(chores) = act.chores.get_mut(&pair) {
                        chores.sweep_done();
                    }
                    if let Err(err) = result {
                        tracing::debug!(
                            operatorId = %pair.0,
                            direction = %pair.1,
                            error = %format!("{err:#}"),
                            "sweep of unserved pinned subjects failed"
                        );
                    }
                }));
            }
        }
    }
}
