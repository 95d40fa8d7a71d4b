//! A bind's concatenation references for long MT messages: blocks reserved in Redis
//! (`smpp:concat:ref:{op}:{bindId}`, [`crate::dispatch::throttle::concat_ref_block`]), the block in
//! use and the next one, asked for when half of the current one is used so the block
//! never runs dry under load. While Redis has not failed, a message that finds no
//! reference waits (at most [`WAIT`]) for the block on its way; once a reservation has
//! failed, or the wait is over, a local counter hands references out until a block
//! arrives.
//!
//! 8-bit references wrap after 256 messages. A handset reassembles by (originator,
//! reference): two long messages to one destination under the same reference within
//! [`REFERENCE_WINDOW`] (60 s, US-SC-026) could be mixed. So a bind never gives one
//! destination the same 8-bit reference twice within the window (it skips to the next
//! value of its block), and only when a destination already got all 256 within the window
//! does its next long message get a 16-bit reference ([`ConcatRefs::size_for`]). Widening
//! costs a part now and then (152 / 66 characters a part instead of 153 / 67), so it is
//! kept to the one destination that needs it, never the whole bind. A widened reference
//! is always 256 or more, so a redelivery knows from the stored value which size the
//! first delivery used ([`bits_of`]) and cuts the same parts.
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

/// The window within which a bind's references must not repeat (a handset reassembles
/// the parts of one message within it).
pub const REFERENCE_WINDOW: Duration = Duration::from_secs(60);

/// 8-bit references one destination may get within [`REFERENCE_WINDOW`] before the next
/// is widened.
const EIGHT_BIT_SPACE: usize = 256;

/// A destination as the references remember it (a hash: no number is kept).
fn destination_key(destination: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    destination.hash(&mut hasher);
    hasher.finish()
}

/// The size of one long message's reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefSize {
    /// 8-bit (UDH IEI 0x00), the operator's choice.
    Eight,
    /// 16-bit (UDH IEI 0x08), the operator's choice: any value.
    Sixteen,
    /// 16-bit because the 8-bit space would wrap within the window: 256..=65535.
    Widened,
}

impl RefSize {
    pub fn bits(self) -> RefBits {
        match self {
            RefSize::Eight => RefBits::Eight,
            RefSize::Sixteen | RefSize::Widened => RefBits::Sixteen,
        }
    }
}

/// The reference size an earlier delivery used for `stored`, under an operator profile
/// of `profile` bits: a widened reference is the only 16-bit one over 255 on an 8-bit
/// profile.
pub fn bits_of(profile: RefBits, stored: u16) -> RefBits {
    match profile {
        RefBits::Sixteen => RefBits::Sixteen,
        RefBits::Eight if stored > 255 => RefBits::Sixteen,
        RefBits::Eight => RefBits::Eight,
    }
}

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
    /// The 8-bit references each destination got within the window, oldest first.
    given: std::collections::HashMap<u64, std::collections::VecDeque<(Instant, u8)>>,
    /// Every entry of `given`, in the order given (to forget them after the window).
    order: std::collections::VecDeque<(Instant, u64)>,
}

impl ConcatRefs {
    /// 8-bit references `destination` got within the window before `now`.
    fn given_within(&self, destination: u64, now: Instant) -> impl Iterator<Item = u8> + '_ {
        self.given
            .get(&destination)
            .into_iter()
            .flatten()
            .filter(move |(at, _)| now.saturating_duration_since(*at) < REFERENCE_WINDOW)
            .map(|(_, reference)| *reference)
    }

    /// The size of the next long message's reference to `destination` on a bind whose
    /// operator asks for `profile` bits: 16-bit when asked, or when that destination got
    /// all 256 8-bit references within [`REFERENCE_WINDOW`] before `now`.
    pub fn size_for(&self, profile: RefBits, now: Instant, destination: &str) -> RefSize {
        match profile {
            RefBits::Sixteen => RefSize::Sixteen,
            RefBits::Eight => {
                let given = self.given_within(destination_key(destination), now).count();
                if given >= EIGHT_BIT_SPACE {
                    RefSize::Widened
                } else {
                    RefSize::Eight
                }
            }
        }
    }

    /// The next reference of `size` for a message to `destination`, taken at `now`: from
    /// the reserved blocks, or else the local counter. An 8-bit one skips the values that
    /// destination got within the window.
    pub fn take(&mut self, size: RefSize, now: Instant, destination: &str) -> Taken {
        self.forget_before(now);
        if size != RefSize::Eight {
            return self.take_value(size);
        }
        let key = destination_key(destination);
        let mut used = [false; EIGHT_BIT_SPACE];
        for reference in self.given_within(key, now) {
            used[usize::from(reference)] = true;
        }
        let mut fallback_started = false;
        let mut taken = self.take_value(size);
        // At most a block's worth of values is skipped (size_for said one is free).
        for _ in 0..EIGHT_BIT_SPACE {
            if !used[usize::from(taken.reference)] {
                break;
            }
            fallback_started |= taken.fallback_started;
            taken = self.take_value(size);
        }
        taken.fallback_started |= fallback_started;
        let reference = taken.reference as u8;
        self.given
            .entry(key)
            .or_default()
            .push_back((now, reference));
        self.order.push_back((now, key));
        taken
    }

    /// Forget the references given before the window that ends at `now`.
    fn forget_before(&mut self, now: Instant) {
        while let Some(&(at, key)) = self.order.front() {
            if now.saturating_duration_since(at) < REFERENCE_WINDOW {
                break;
            }
            self.order.pop_front();
            if let Some(given) = self.given.get_mut(&key) {
                given.pop_front();
                if given.is_empty() {
                    self.given.remove(&key);
                }
            }
        }
    }

    fn take_value(&mut self, size: RefSize) -> Taken {
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
        let reference = match size {
            RefSize::Eight => (value % 256) as u16,
            RefSize::Sixteen => (value % 65_536) as u16,
            RefSize::Widened => (256 + value % (65_536 - 256)) as u16,
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
                refs.take(RefSize::Sixteen, now, "1").reference,
                expected as u16,
                "from the block"
            );
        }
        assert!(refs.should_wait(now), "the block used up, Redis not failed");
    }

    /// US-SC-026: one destination never gets the same 8-bit reference twice within the
    /// window, the bind skipping values for it; other destinations are not affected; only
    /// a destination that got all 256 within the window is widened to 16 bits (over 255,
    /// so a redelivery knows the size), and narrows again once the window has passed.
    #[test]
    fn references_never_repeat_for_a_destination_within_the_window() {
        let now = Instant::now();
        let mut refs = ConcatRefs::default();
        let refill = |refs: &mut ConcatRefs, n: u64| {
            if refs.wants_refill() {
                refs.refill_started();
                refs.reserved(Some(n * 1_000));
            }
        };
        let mut to_a = std::collections::HashSet::new();
        for n in 0..256u64 {
            let at = now + Duration::from_millis(n * 100);
            assert_eq!(
                refs.size_for(RefBits::Eight, at, "A"),
                RefSize::Eight,
                "{n}"
            );
            refill(&mut refs, n + 1);
            assert!(
                to_a.insert(refs.take(RefSize::Eight, at, "A").reference),
                "{n}: repeated"
            );
            // Others in between, and so many that the block wraps many times.
            for _ in 0..3 {
                refill(&mut refs, n + 1);
                refs.take(RefSize::Eight, at, "B");
            }
        }
        // A got all 256 within 25.6 s: its next one is widened, B's is not.
        let later = now + Duration::from_secs(30);
        assert_eq!(refs.size_for(RefBits::Eight, later, "A"), RefSize::Widened);
        assert_eq!(refs.size_for(RefBits::Eight, later, "C"), RefSize::Eight);
        for n in 0..300 {
            refill(&mut refs, 900 + n);
            let taken = refs.take(RefSize::Widened, later, "A").reference;
            assert!(taken >= 256, "{taken}");
            assert_eq!(bits_of(RefBits::Eight, taken), RefBits::Sixteen);
        }
        // A minute after the first of them, 8-bit again; the forgotten are forgotten.
        let after = now + REFERENCE_WINDOW + Duration::from_secs(30);
        refs.take(RefSize::Eight, after, "C");
        assert_eq!(refs.size_for(RefBits::Eight, after, "A"), RefSize::Eight);
        assert!(refs.given.len() <= 2, "old destinations forgotten");
        // The operator's 16-bit choice is kept, and an 8-bit value stays 8-bit.
        assert_eq!(refs.size_for(RefBits::Sixteen, now, "A"), RefSize::Sixteen);
        assert_eq!(bits_of(RefBits::Sixteen, 3), RefBits::Sixteen);
        assert_eq!(bits_of(RefBits::Eight, 255), RefBits::Eight);
    }

    #[test]
    fn the_local_counter_fills_in_and_says_when_it_starts_and_ends() {
        let now = Instant::now();
        let mut refs = ConcatRefs::default();
        assert!(!refs.reserved(None));
        let first = refs.take(RefSize::Eight, now, "1");
        assert_eq!(first.reference, 1);
        assert!(first.fallback_started);
        let second = refs.take(RefSize::Eight, now, "1");
        assert_eq!(second.reference, 2);
        assert!(!second.fallback_started, "warned once per outage");
        // A block ends the outage; the next one starts a new one.
        assert!(refs.reserved(Some(300)));
        assert_eq!(
            refs.take(RefSize::Eight, now, "1").reference,
            (300 % 256) as u16
        );
        assert!(!refs.reserved(Some(600)), "no outage to end");
    }

    #[test]
    fn the_next_block_is_asked_for_when_half_the_current_one_is_used() {
        let now = Instant::now();
        let mut refs = ConcatRefs::default();
        assert!(refs.wants_refill(), "nothing reserved yet");
        refs.refill_started();
        assert!(!refs.wants_refill(), "one reservation at a time");
        refs.reserved(Some(1));
        assert!(!refs.wants_refill());
        for _ in 0..BLOCK / 2 {
            refs.take(RefSize::Sixteen, now, "1");
        }
        assert!(refs.wants_refill());
        refs.refill_started();
        refs.reserved(Some(300));
        assert!(!refs.wants_refill(), "the next block is already here");
        // The current block is used up first, then the next one.
        for _ in 0..BLOCK / 2 {
            refs.take(RefSize::Sixteen, now, "1");
        }
        assert_eq!(refs.take(RefSize::Sixteen, now, "1").reference, 300);
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
