//! A bind's concatenation references for long MT messages: blocks reserved in Redis
//! (`smpp:concat:ref:{op}:{bindId}`, [`crate::throttle::concat_ref_block`]), the block in
//! use and the next one, asked for when half of the current one is used so the block
//! never runs dry under load. While Redis has not failed, a message that finds no
//! reference waits (at most [`WAIT`]) for the block on its way; once a reservation has
//! failed, or the wait is over, a local counter hands references out until a block
//! arrives.
//!
//! Pure: no clock (an [`Instant`] comes in), no I/O, no logging. The caller asks for a
//! block when [`ConcatRefs::wants_refill`] says so and reports its answer.

use std::ops::Range;
use std::time::{Duration, Instant};

use crate::encoding::RefBits;

/// References reserved from Redis at a time.
pub const BLOCK: u32 = 256;

/// How long long messages wait for a block on its way from Redis (slow, not failing)
/// before the local counter is used: longer than a Redis command timeout, so a Redis that
/// does not answer has failed by then.
pub const WAIT: Duration = Duration::from_secs(2);

/// A reference handed out by [`ConcatRefs::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    pub reference: u16,
    /// The first reference from the local counter since Redis last handed out a block
    /// (the caller warns once per outage).
    pub fallback_started: bool,
}

#[derive(Debug, Default)]
pub struct ConcatRefs {
    current: Range<u64>,
    next: Option<Range<u64>>,
    refilling: bool,
    /// Local counter while Redis cannot hand out a block.
    fallback: u64,
    /// The local counter is in use (since the last block from Redis).
    in_fallback: bool,
    /// The last reservation failed: the local counter is used without waiting.
    failed: bool,
    /// Since when long messages wait for the block on its way.
    waiting_since: Option<Instant>,
}

impl ConcatRefs {
    /// The next reference, wrapped to `bits`: from the reserved blocks, or else the local
    /// counter.
    pub fn take(&mut self, bits: RefBits) -> Taken {
        if self.current.is_empty()
            && let Some(next) = self.next.take()
        {
            self.current = next;
        }
        let (value, fallback_started) = match self.current.next() {
            Some(value) => (value, false),
            None => {
                self.fallback += 1;
                (
                    self.fallback,
                    !std::mem::replace(&mut self.in_fallback, true),
                )
            }
        };
        let reference = match bits {
            RefBits::Eight => (value % 256) as u16,
            RefBits::Sixteen => (value % 65_536) as u16,
        };
        Taken {
            reference,
            fallback_started,
        }
    }

    fn available(&self) -> bool {
        !self.current.is_empty() || self.next.is_some()
    }

    /// Whether a long message waits for the block on its way rather than take a reference
    /// from the local counter: only while Redis has not failed, and not for longer than
    /// [`WAIT`] since the wait began.
    pub fn should_wait(&self, now: Instant) -> bool {
        !self.available()
            && !self.failed
            && self
                .waiting_since
                .is_none_or(|since| now.duration_since(since) < WAIT)
    }

    /// Messages wait from `now` on, unless they already do: `true` when the wait begins
    /// (the caller looks again after [`WAIT`]).
    pub fn start_waiting(&mut self, now: Instant) -> bool {
        if self.waiting_since.is_some() {
            return false;
        }
        self.waiting_since = Some(now);
        true
    }

    /// Whether to ask Redis for a block now: none under way, no next block, and half of
    /// the current one used.
    pub fn wants_refill(&self) -> bool {
        !self.refilling
            && self.next.is_none()
            && self.current.end - self.current.start <= u64::from(BLOCK / 2)
    }

    pub fn refill_started(&mut self) {
        self.refilling = true;
    }

    /// A reservation answered with the block starting at `first`, or failed (`None`):
    /// nobody waits for it any more. `true` when this block ends a time on the local
    /// counter (the caller says so once).
    pub fn reserved(&mut self, first: Option<u64>) -> bool {
        self.refilling = false;
        self.failed = first.is_none();
        self.waiting_since = None;
        let Some(first) = first else {
            return false;
        };
        let block = first..first + u64::from(BLOCK);
        if self.current.is_empty() {
            self.current = block;
        } else {
            self.next = Some(block);
        }
        std::mem::take(&mut self.in_fallback)
    }

    /// The bind restarted: its futures (a reservation under way, a wait's timer) were
    /// cancelled.
    pub fn restarted(&mut self) {
        self.refilling = false;
        self.waiting_since = None;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)] // a starting instant; the tests move time themselves
    use super::*;

    #[test]
    fn a_reference_is_waited_for_only_while_redis_has_not_failed_and_not_too_long() {
        let now = Instant::now();
        let mut refs = ConcatRefs::default();
        // Nothing reserved yet, nothing failed: wait.
        assert!(refs.should_wait(now));
        assert!(refs.start_waiting(now));
        assert!(!refs.start_waiting(now), "one wait at a time");
        assert!(refs.should_wait(now + WAIT / 2));
        // Redis neither answered nor failed within the wait: the local counter.
        assert!(!refs.should_wait(now + WAIT));
        // The reservation failed: no waiting at all until one succeeds.
        assert!(!refs.reserved(None));
        assert!(!refs.should_wait(now));
        // A block: nothing to wait for while it lasts.
        assert!(!refs.reserved(Some(1)));
        assert!(!refs.should_wait(now));
        for expected in 1..=u64::from(BLOCK) {
            assert_eq!(
                refs.take(RefBits::Sixteen).reference,
                expected as u16,
                "from the block"
            );
        }
        assert!(refs.should_wait(now), "the block used up, Redis not failed");
    }

    #[test]
    fn the_local_counter_fills_in_and_says_when_it_starts_and_ends() {
        let mut refs = ConcatRefs::default();
        assert!(!refs.reserved(None));
        let first = refs.take(RefBits::Eight);
        assert_eq!(first.reference, 1);
        assert!(first.fallback_started);
        let second = refs.take(RefBits::Eight);
        assert_eq!(second.reference, 2);
        assert!(!second.fallback_started, "warned once per outage");
        // A block ends the outage; the next one starts a new one.
        assert!(refs.reserved(Some(300)));
        assert_eq!(refs.take(RefBits::Eight).reference, (300 % 256) as u16);
        assert!(!refs.reserved(Some(600)), "no outage to end");
    }

    #[test]
    fn the_next_block_is_asked_for_when_half_the_current_one_is_used() {
        let mut refs = ConcatRefs::default();
        assert!(refs.wants_refill(), "nothing reserved yet");
        refs.refill_started();
        assert!(!refs.wants_refill(), "one reservation at a time");
        refs.reserved(Some(1));
        assert!(!refs.wants_refill());
        for _ in 0..BLOCK / 2 {
            refs.take(RefBits::Sixteen);
        }
        assert!(refs.wants_refill());
        refs.refill_started();
        refs.reserved(Some(300));
        assert!(!refs.wants_refill(), "the next block is already here");
        // The current block is used up first, then the next one.
        for _ in 0..BLOCK / 2 {
            refs.take(RefBits::Sixteen);
        }
        assert_eq!(refs.take(RefBits::Sixteen).reference, 300);
    }

    #[test]
    fn a_restart_forgets_the_reservation_and_the_wait_it_cancelled() {
        let now = Instant::now();
        let mut refs = ConcatRefs::default();
        refs.refill_started();
        assert!(refs.start_waiting(now));
        refs.restarted();
        assert!(refs.wants_refill());
        assert!(refs.start_waiting(now + WAIT), "a new wait, a new timer");
    }
}
