//! Concatenation references decided by the core, carried out by the driver.
//!
//! A long message needs one reference shared by all its parts. One from an earlier
//! delivery (its rows, or Redis) is kept; otherwise the message takes a fresh one while
//! it waits in the intake, and Redis must remember it as the message's before any part
//! goes out, so a redelivery after a crash sends the missing parts under the same one. The
//! references come from blocks reserved in Redis (US-SC-022), or from a local counter
//! while Redis cannot hand one out.
//!
//! Inputs: [`BindCore::handle_remembered`], [`BindCore::handle_references_reserved`]
//! (and every message looked up). Output:
//! [`BindCore::poll_reference`] ([`ReferenceWork`]); then [`BindCore::poll_admissible`]
//! hands out the messages whose turn has come.

use std::time::{Duration, Instant};

use super::BindCore;
use crate::dispatch::concat_refs::{self, RefSize};
use crate::encoding::RefBits;

/// What the core needs to know of a message on its way in (the driver's type).
pub trait Incoming {
    /// Its reference needs, once its lookup answered, with the operator's reference
    /// size `bits`: (a long message, the reference an earlier delivery used). `None`
    /// when its lookup failed: it is given back unsent, it takes nothing.
    fn reference_need(&self, bits: RefBits) -> Option<(bool, Option<u16>)>;
    /// Its `messageId` (the key Redis remembers its reference under).
    fn message_id(&self) -> &str;
    /// Its destination (8-bit references are not reused towards one within a minute).
    fn destination(&self) -> &str;
}

/// Reference work for the driver ([`BindCore::poll_reference`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceWork {
    /// Have Redis remember `reference` as `message_id`'s; answer (stored or failed:
    /// the parts go out under it anyway) with [`BindCore::handle_remembered`]`(order)`.
    Remember {
        order: u64,
        message_id: String,
        reference: u16,
    },
    /// Reserve a block of references in Redis; answer with
    /// [`BindCore::handle_references_reserved`].
    Reserve,
    /// Long messages wait for the block on its way (Redis neither answered nor failed):
    /// poll again this much later (they then take the local counter's references).
    WaitFor(Duration),
    /// No block from Redis: references come from the local counter until one arrives
    /// (warn once, count).
    FallbackStarted,
}

impl<H, P: Incoming> BindCore<H, P> {
    /// The next reference work, if any. Looked-up long messages that need a fresh
    /// reference get one in pull order (their `Remember`s all go out together: one round
    /// trip of latency, not one per message); a message whose block is still on its way
    /// from a Redis that has not failed waits for it, and holds back those behind it.
    pub fn poll_reference(&mut self, now: Instant) -> Option<ReferenceWork> {
        if self.reference_work.is_empty() {
            self.prepare_references(now);
        }
        self.reference_work.pop_front()
    }

    fn prepare_references(&mut self, now: Instant) {
        while let Some((order, item)) = self.intake.next_unprepared() {
            let stored_and_long = self
                .profile
                .as_ref()
                .and_then(|profile| item.reference_need(profile.ref_bits));
            let size = stored_and_long.and_then(|(long, stored)| {
                self.fresh_reference(stored, long, now, item.destination())
            });
            let Some(size) = size else {
                self.intake.prepared(order);
                continue;
            };
            if self.concat.should_wait(now) {
                if self.concat.start_waiting(now) {
                    // Redis neither answering nor failing: the local counter after the wait.
                    self.reference_work
                        .push_back(ReferenceWork::WaitFor(concat_refs::WAIT));
                }
                self.want_references();
                return;
            }
            let message_id = item.message_id().to_owned();
            let destination = item.destination().to_owned();
            let reference = self.take_reference(size, now, &destination);
            self.intake.took_reference(order, reference);
            self.reference_work.push_back(ReferenceWork::Remember {
                order,
                message_id,
                reference,
            });
        }
    }

    /// The next message whose turn has come (looked up, prepared, its fresh reference
    /// remembered), with that reference; in pull order.
    pub fn poll_admissible(&mut self) -> Option<(P, Option<u16>)> {
        self.intake.pop_admissible()
    }
}

impl<H, P> BindCore<H, P> {
    /// Take a reference of `size` for a message to `destination` now: from the reserved
    /// blocks, or the local counter (said once through [`ReferenceWork::FallbackStarted`]);
    /// a new block is asked for at half of the current one.
    pub fn take_reference(&mut self, size: RefSize, now: Instant, destination: &str) -> u16 {
        let taken = self.concat.take(size, now, destination);
        if taken.fallback_started {
            self.reference_work
                .push_back(ReferenceWork::FallbackStarted);
        }
        self.want_references();
        taken.reference
    }

    /// A reference to take for a long message being admitted without one (its bind's
    /// profile changed while it waited): see [`BindCore::reference_for`].
    pub fn take_reference_now(&mut self, now: Instant, destination: &str) -> u16 {
        let size = self
            .reference_size(now, destination)
            .unwrap_or(RefSize::Eight);
        self.take_reference(size, now, destination)
    }

    /// Ask for a block of references if one is wanted and none is under way (a
    /// submitting bind does when it binds).
    pub fn want_references(&mut self) {
        if self.concat.wants_refill() {
            self.concat.refill_started();
            self.reference_work.push_back(ReferenceWork::Reserve);
        }
    }

    /// Redis answered the store of the reference taken at intake place `order`.
    pub fn handle_remembered(&mut self, order: u64) {
        self.intake.remembered(order);
    }

    /// A block reservation answered (`first`), or failed (`None`): messages waiting for
    /// it go on (with the local counter if it failed). `true` when this block ends a time
    /// on the local counter (say so once).
    pub fn handle_references_reserved(&mut self, first: Option<u64>) -> bool {
        self.concat.reserved(first)
    }
}
