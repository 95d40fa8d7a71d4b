//! A `deliver_sm` handed to [`crate::inbound`] on a task of its own and answered with
//! the status it returns; the expiry scans of the bind's own open MO index.

use actix::prelude::*;
use smpp_connector::protocol::pdu::{CommandStatus, SmBody};
use tracing::Instrument;

use super::actor::BindActor;
use crate::inbound::{mo, receipt};

impl BindActor {
    /// A deliver_sm from session `index`: handled on a task of its own (receipt or MO),
    /// answered by address.
    pub(super) fn on_deliver_sm(
        &mut self,
        index: usize,
        sequence_number: u32,
        body: SmBody,
        ctx: &mut Context<Self>,
    ) {
        let Some(credentials) = self.core.credentials().cloned() else {
            return;
        };
        let generation = self.generation;
        let fut = receipt::handle(
            self.deps.inbound.clone(),
            self.key.clone(),
            credentials,
            body,
            crate::clock::now(),
            self.progress.clone(),
        );
        // A task of its own, answering by address: a context polls every future it holds
        // on each wake, and receipts may wait seconds for their row.
        let addr = ctx.address();
        actix::spawn(
            async move {
                let status = fut.await;
                addr.do_send(ReceiptAnswered {
                    generation,
                    link: index,
                    sequence_number,
                    status,
                });
            }
            .instrument(self.span.clone()),
        );
    }
}

/// A receipt (or MO) was handled: answer its deliver_sm with this status.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ReceiptAnswered {
    generation: u64,
    link: usize,
    sequence_number: u32,
    status: CommandStatus,
}

impl Handler<ReceiptAnswered> for BindActor {
    type Result = ();

    fn handle(&mut self, answered: ReceiptAnswered, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        if answered.generation != self.generation {
            return;
        }
        if answered.link < self.core.links().len() {
            self.core
                .respond_deliver_sm(answered.link, answered.sequence_number, answered.status);
            self.pump(ctx);
            self.update_gate(answered.link);
            self.drive(ctx);
        }
    }
}

impl BindActor {
    /// Run the expiry scan of this bind's open MO index and, now and then, of its index
    /// from before the hash tags ([`smpp_connector::bind_core::BindCore::mo_scan_plan`]).
    pub(super) fn scan_expired_mo(&mut self, ctx: &mut Context<Self>) {
        let Some(plan) = self.core.mo_scan_plan() else {
            return;
        };
        let (deps, key) = (self.deps.inbound.clone(), self.key.clone());
        let fut = async move {
            let open = mo::scan(deps.clone(), key.clone(), false).await;
            if plan.legacy {
                mo::scan(deps, key, true).await;
            }
            open
        };
        ctx.spawn(fut.into_actor(self).map(|open, act, _ctx| {
            let _span = act.span.clone().entered();
            act.core.mo_scan_done();
            if let Some(open) = open {
                act.metrics.concat_buffer.set(open as f64);
            }
        }));
    }
}
