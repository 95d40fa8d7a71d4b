//! The in-flight window of one bind and its sequence numbers (SPEC §5, US-SC-022).
//!
//! [`Window`] holds every submit that waits for its `submit_sm_resp`, keyed by sequence
//! number, each with a deadline (the submit timeout). It enforces the window size, frees a
//! slot exactly once (on a response via [`Window::remove`], on a timeout via
//! [`Window::expired`], on a closed session via [`Window::drain`]), and adapts its size:
//! ESME_RTHROTTLED halves it (not below 10), every 60 s without throttling it grows by 5
//! back to the configured maximum, and it counts throttles in the last 60 s so the owner
//! can report the bind degraded (≥ 3).
//!
//! [`SequenceNumbers`] hands out sequence numbers in `1..=0x7FFF_FFFF`, wrapping back to
//! 1, optionally from blocks reserved in Redis, and skips numbers still in flight.
//!
//! This module must not read a clock, do I/O or log: time comes in as `now` arguments,
//! and what to do about a timeout or a throttle is the caller's business.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use crate::protocol::pdu::MAX_SEQUENCE_NUMBER;

/// Window size when the database has none for a bind.
pub const DEFAULT_WINDOW: usize = 100;
/// Smallest size throttling halves the window to (unless the configured maximum is lower).
pub const MIN_ADAPTIVE_WINDOW: usize = 10;
/// Slots regained per growth period after throttling.
pub const GROW_STEP: usize = 5;
/// How often the window grows back by [`GROW_STEP`].
pub const GROW_PERIOD: Duration = Duration::from_secs(60);
/// The sliding period over which throttles are counted.
pub const THROTTLE_PERIOD: Duration = Duration::from_secs(60);
/// Throttles within [`THROTTLE_PERIOD`] that make a bind degraded.
pub const DEGRADED_THROTTLES: usize = 3;

/// How the window adapts to throttling. [`Default`] is SPEC §5; tests scale the periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdaptiveConfig {
    /// Floor of the halving (capped by the configured maximum).
    pub min: usize,
    /// Slots added per `grow_period`.
    pub grow_step: usize,
    /// Period of growth; zero restores the maximum on the next [`Window::tick`].
    pub grow_period: Duration,
    /// Sliding period of the throttle counter.
    pub throttle_period: Duration,
    /// Throttles within `throttle_period` from which the bind is degraded.
    pub degraded_threshold: usize,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        AdaptiveConfig {
            min: MIN_ADAPTIVE_WINDOW,
            grow_step: GROW_STEP,
            grow_period: GROW_PERIOD,
            throttle_period: THROTTLE_PERIOD,
            degraded_threshold: DEGRADED_THROTTLES,
        }
    }
}

/// Why [`Window::try_insert`] refused an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// No free slot: wait for a response or a timeout (NAK the message after 100 ms).
    #[error("window full: {in_flight} in flight, size {capacity}")]
    Full { in_flight: usize, capacity: usize },
    /// The sequence number is already in flight; using it again would confuse responses.
    #[error("sequence number {sequence_number} is already in flight")]
    DuplicateSeq { sequence_number: u32 },
}

/// A refused [`Window::try_insert`]: the reason plus the value, handed back so a waiter
/// in it is not dropped silently.
pub struct InsertError<T> {
    error: WindowError,
    value: T,
}

impl<T> InsertError<T> {
    /// Why the entry was refused.
    pub fn error(&self) -> WindowError {
        self.error
    }

    /// The value that was not inserted.
    pub fn into_value(self) -> T {
        self.value
    }

    /// Both parts.
    pub fn into_parts(self) -> (WindowError, T) {
        (self.error, self.value)
    }
}

impl<T> fmt::Debug for InsertError<T> {
    // The value is the caller's (often a channel): not printed, no `T: Debug` needed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InsertError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for InsertError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<T> std::error::Error for InsertError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// What a throttle did to the window, returned by [`Window::on_throttled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleOutcome {
    /// The window size after halving.
    pub window_size: usize,
    /// Throttles within the sliding period, this one included.
    pub recent_throttles: usize,
    /// `recent_throttles` reached the degraded threshold.
    pub degraded: bool,
    /// This throttle is the one that reached the threshold: publish `smpp.bind.degraded`.
    pub became_degraded: bool,
}

/// In-flight submits keyed by sequence number, with deadlines and an adaptive size.
///
/// Invariants: an entry is inserted only while `len() < capacity()`; each sequence number
/// is in the window at most once and leaves it exactly once (remove, expired or drain).
/// After a throttle or a lower [`Window::set_max`], `len()` may exceed `capacity()` until
/// responses arrive; [`Window::free`] is 0 meanwhile.
#[derive(Debug)]
pub struct Window<T> {
    entries: HashMap<u32, (Instant, T)>,
    deadlines: BTreeSet<(Instant, u32)>,
    max: usize,
    size: usize,
    adaptive: AdaptiveConfig,
    /// Start of the current growth period; `Some` only while `size < max`.
    grow_from: Option<Instant>,
    throttles: VecDeque<Instant>,
}

impl<T> Window<T> {
    /// A window of `max` slots (at least 1) with the SPEC's adaptive behaviour.
    pub fn new(max: usize) -> Self {
        Window::with_adaptive(max, AdaptiveConfig::default())
    }

    /// A window of `max` slots (at least 1) with custom adaptive parameters.
    pub fn with_adaptive(max: usize, adaptive: AdaptiveConfig) -> Self {
        let max = max.max(1);
        Window {
            entries: HashMap::new(),
            deadlines: BTreeSet::new(),
            max,
            size: max,
            adaptive,
            grow_from: None,
            throttles: VecDeque::new(),
        }
    }

    /// Submits in flight.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The effective size now (after throttling), at most [`Window::max`].
    pub fn capacity(&self) -> usize {
        self.size
    }

    /// The configured size.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Slots free now: `capacity() - len()`, 0 when over.
    pub fn free(&self) -> usize {
        self.size.saturating_sub(self.entries.len())
    }

    /// True while throttling keeps the size below the configured maximum.
    pub fn is_reduced(&self) -> bool {
        self.size < self.max
    }

    /// True if `sequence_number` is in flight.
    pub fn contains(&self, sequence_number: u32) -> bool {
        self.entries.contains_key(&sequence_number)
    }

    /// The value in flight under `sequence_number`.
    pub fn get(&self, sequence_number: u32) -> Option<&T> {
        self.entries.get(&sequence_number).map(|(_, value)| value)
    }

    /// The deadline of `sequence_number`.
    pub fn deadline(&self, sequence_number: u32) -> Option<Instant> {
        self.entries
            .get(&sequence_number)
            .map(|(deadline, _)| *deadline)
    }

    /// Take a slot for `sequence_number` until `deadline`. Refused (value handed back)
    /// when the window is full or the number is already in flight.
    pub fn try_insert(
        &mut self,
        sequence_number: u32,
        deadline: Instant,
        value: T,
    ) -> Result<(), InsertError<T>> {
        let error = if self.entries.contains_key(&sequence_number) {
            WindowError::DuplicateSeq { sequence_number }
        } else if self.entries.len() >= self.size {
            WindowError::Full {
                in_flight: self.entries.len(),
                capacity: self.size,
            }
        } else {
            self.entries.insert(sequence_number, (deadline, value));
            self.deadlines.insert((deadline, sequence_number));
            return Ok(());
        };
        Err(InsertError { error, value })
    }

    /// Free the slot of `sequence_number` (its response arrived). `None` if it is not in
    /// flight: never sent, already answered or already expired.
    pub fn remove(&mut self, sequence_number: u32) -> Option<T> {
        let (deadline, value) = self.entries.remove(&sequence_number)?;
        self.deadlines.remove(&(deadline, sequence_number));
        Some(value)
    }

    /// Remove and return every entry whose deadline is at or before `now`, earliest
    /// first. Their slots are free; a late response for them finds nothing.
    pub fn expired(&mut self, now: Instant) -> Vec<(u32, T)> {
        let mut out = Vec::new();
        while let Some(&(deadline, sequence_number)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some((_, value)) = self.entries.remove(&sequence_number) {
                out.push((sequence_number, value));
            }
        }
        out
    }

    /// The earliest deadline in flight: when the owner must call [`Window::expired`].
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(deadline, _)| *deadline)
    }

    /// Remove and return everything in flight, earliest deadline first (session closed).
    pub fn drain(&mut self) -> Vec<(u32, T)> {
        let deadlines = std::mem::take(&mut self.deadlines);
        let mut out = Vec::with_capacity(deadlines.len());
        for (_, sequence_number) in deadlines {
            if let Some((_, value)) = self.entries.remove(&sequence_number) {
                out.push((sequence_number, value));
            }
        }
        out
    }

    /// ESME_RTHROTTLED: halve the size (not below `min`, or the configured maximum if that
    /// is lower), restart the growth period and count the throttle.
    pub fn on_throttled(&mut self, now: Instant) -> ThrottleOutcome {
        self.prune_throttles(now);
        self.throttles.push_back(now);
        let floor = self.adaptive.min.min(self.max).max(1);
        self.size = (self.size / 2).max(floor).min(self.size);
        self.grow_from = (self.size < self.max).then_some(now);
        let recent = self.throttles_in_period(now);
        let threshold = self.adaptive.degraded_threshold;
        ThrottleOutcome {
            window_size: self.size,
            recent_throttles: recent,
            degraded: recent >= threshold,
            became_degraded: recent == threshold,
        }
    }

    /// Advance time: grow by `grow_step` for each whole `grow_period` since the last
    /// throttle or growth, up to the configured maximum. Returns the size.
    pub fn tick(&mut self, now: Instant) -> usize {
        self.prune_throttles(now);
        if self.size >= self.max {
            self.size = self.max;
            self.grow_from = None;
            return self.size;
        }
        let start = *self.grow_from.get_or_insert(now);
        let Some(elapsed) = now.checked_duration_since(start) else {
            return self.size;
        };
        let period = self.adaptive.grow_period.as_nanos();
        if period == 0 {
            self.size = self.max;
            self.grow_from = None;
            return self.size;
        }
        let periods = elapsed.as_nanos() / period;
        if periods == 0 {
            return self.size;
        }
        let step = self.adaptive.grow_step as u128;
        let grown = (self.size as u128).saturating_add(periods.saturating_mul(step));
        if grown >= self.max as u128 {
            self.size = self.max;
            self.grow_from = None;
        } else {
            self.size = grown as usize;
            // `periods` whole periods have been used up; the remainder counts on.
            let used = Duration::from_nanos((periods * period) as u64);
            self.grow_from = start.checked_add(used).or(Some(now));
        }
        self.size
    }

    /// A new configured maximum (reloaded from `ops.smpp_binds.window`; at least 1).
    /// A window at its maximum follows it at once; a throttled window keeps its reduced
    /// size (capped by the new maximum) and grows towards the new maximum.
    pub fn set_max(&mut self, max: usize) {
        let max = max.max(1);
        if self.size >= self.max {
            self.size = max;
        } else {
            self.size = self.size.min(max);
        }
        self.max = max;
        if self.size >= self.max {
            self.grow_from = None;
        }
    }

    /// Throttles within the sliding period ending at `now`.
    pub fn throttles_in_period(&self, now: Instant) -> usize {
        let period = self.adaptive.throttle_period;
        self.throttles
            .iter()
            .filter(|at| now.saturating_duration_since(**at) < period)
            .count()
    }

    /// True while at least the degraded threshold of throttles fall within the period.
    pub fn is_degraded(&self, now: Instant) -> bool {
        self.throttles_in_period(now) >= self.adaptive.degraded_threshold
    }

    fn prune_throttles(&mut self, now: Instant) {
        let period = self.adaptive.throttle_period;
        while let Some(at) = self.throttles.front() {
            if now.saturating_duration_since(*at) >= period {
                self.throttles.pop_front();
            } else {
                break;
            }
        }
    }
}

/// Map any counter value (e.g. Redis `INCRBY` on `smpp:seq:{op}:{dir}:{bindId}`) into
/// `1..=0x7FFF_FFFF`: 1 → 1, 0x7FFF_FFFF → 0x7FFF_FFFF, 0x8000_0000 → 1, 0 → 0x7FFF_FFFF.
pub fn wrap_sequence(raw: u64) -> u32 {
    let modulus = u64::from(MAX_SEQUENCE_NUMBER);
    // ((raw - 1) mod M) + 1 without underflow at 0.
    ((raw % modulus + modulus - 1) % modulus + 1) as u32
}

/// Sequence numbers of one bind: `1..=0x7FFF_FFFF`, wrapping back to 1, never 0.
///
/// Either unbounded ([`SequenceNumbers::new`], [`SequenceNumbers::starting_at`]) or from a
/// block reserved in Redis ([`SequenceNumbers::from_block`], [`SequenceNumbers::refill`]).
/// A block that runs out does not stall the bind: numbering continues past its end and
/// [`SequenceNumbers::overrun`] counts those numbers; refill before that (for example
/// when [`SequenceNumbers::remaining`] drops below the window size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceNumbers {
    next: u32,
    remaining: Option<u32>,
    skipped: u64,
    overrun: u64,
}

impl Default for SequenceNumbers {
    fn default() -> Self {
        SequenceNumbers::new()
    }
}

impl SequenceNumbers {
    /// Unbounded, starting at 1.
    pub fn new() -> Self {
        SequenceNumbers::starting_at(1)
    }

    /// Unbounded, starting at `start` (0 becomes 1, values above 0x7FFF_FFFF wrap).
    pub fn starting_at(start: u32) -> Self {
        SequenceNumbers {
            next: normalise_start(start),
            remaining: None,
            skipped: 0,
            overrun: 0,
        }
    }

    /// A block of `len` numbers starting at `start` (normalised as in
    /// [`SequenceNumbers::starting_at`]); the block may wrap past 0x7FFF_FFFF.
    pub fn from_block(start: u32, len: u32) -> Self {
        SequenceNumbers {
            next: normalise_start(start),
            remaining: Some(len),
            skipped: 0,
            overrun: 0,
        }
    }

    /// Continue with a new block; the skip and overrun counters are kept.
    pub fn refill(&mut self, start: u32, len: u32) {
        self.next = normalise_start(start);
        self.remaining = Some(len);
    }

    /// Numbers left in the current block; `None` when unbounded.
    pub fn remaining(&self) -> Option<u32> {
        self.remaining
    }

    /// True when a block is in use and used up.
    pub fn is_exhausted(&self) -> bool {
        self.remaining == Some(0)
    }

    /// The number [`SequenceNumbers::next`] returns next.
    pub fn peek(&self) -> u32 {
        self.next
    }

    /// The next number, in `1..=0x7FFF_FFFF`.
    #[allow(clippy::should_implement_trait)] // Never ends, so not an Iterator.
    pub fn next(&mut self) -> u32 {
        let current = self.next;
        self.next = if current >= MAX_SEQUENCE_NUMBER {
            1
        } else {
            current + 1
        };
        match &mut self.remaining {
            Some(0) => self.overrun += 1,
            Some(left) => *left -= 1,
            None => {}
        }
        current
    }

    /// The next number for which `in_use` is false; every number passed over is counted
    /// in [`SequenceNumbers::skipped`] (`smpp_seq_skip_total`, which should stay 0).
    pub fn next_unused(&mut self, in_use: impl Fn(u32) -> bool) -> u32 {
        // At most len(in flight) + 1 candidates are needed; the bound only guards
        // against a predicate that claims the whole space.
        for _ in 0..MAX_SEQUENCE_NUMBER {
            let candidate = self.next();
            if !in_use(candidate) {
                return candidate;
            }
            self.skipped += 1;
        }
        self.next()
    }

    /// The next number not in flight in `window`.
    pub fn next_free<T>(&mut self, window: &Window<T>) -> u32 {
        self.next_unused(|candidate| window.contains(candidate))
    }

    /// Numbers passed over because they were still in flight.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Numbers handed out after the block ran out.
    pub fn overrun(&self) -> u64 {
        self.overrun
    }
}

fn normalise_start(start: u32) -> u32 {
    if start == 0 {
        1
    } else {
        wrap_sequence(u64::from(start))
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests take their instants from the clock
mod tests {
    use proptest::prelude::*;

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn insert_until_full_then_free_once() {
        let now = Instant::now();
        let mut window = Window::new(2);
        assert_eq!(
            window
                .try_insert(1, now + SECOND, "a")
                .map_err(|e| e.error()),
            Ok(())
        );
        assert_eq!(
            window
                .try_insert(1, now + SECOND, "dup")
                .unwrap_err()
                .error(),
            WindowError::DuplicateSeq { sequence_number: 1 }
        );
        window.try_insert(2, now + SECOND, "b").unwrap();
        let refused = window.try_insert(3, now + SECOND, "c").unwrap_err();
        assert_eq!(
            refused.error(),
            WindowError::Full {
                in_flight: 2,
                capacity: 2
            }
        );
        assert_eq!(refused.into_value(), "c");
        assert_eq!(window.free(), 0);
        assert_eq!(window.remove(1), Some("a"));
        assert_eq!(window.remove(1), None);
        assert_eq!(window.free(), 1);
        assert_eq!(window.len(), 1);
    }

    #[test]
    fn expired_in_deadline_order_and_only_once() {
        let now = Instant::now();
        let mut window = Window::new(10);
        window.try_insert(7, now + 3 * SECOND, 'x').unwrap();
        window.try_insert(5, now + SECOND, 'y').unwrap();
        window.try_insert(6, now + 2 * SECOND, 'z').unwrap();
        assert_eq!(window.next_deadline(), Some(now + SECOND));
        assert!(window.expired(now).is_empty());
        assert_eq!(window.expired(now + 2 * SECOND), vec![(5, 'y'), (6, 'z')]);
        assert_eq!(window.remove(5), None);
        assert_eq!(window.next_deadline(), Some(now + 3 * SECOND));
        assert_eq!(window.deadline(7), Some(now + 3 * SECOND));
        assert_eq!(window.drain(), vec![(7, 'x')]);
        assert!(window.is_empty());
        assert_eq!(window.next_deadline(), None);
    }

    #[test]
    fn throttle_halves_to_ten_and_grows_five_per_minute() {
        let t0 = Instant::now();
        let mut window: Window<()> = Window::new(100);
        let sizes: Vec<usize> = (0..4)
            .map(|_| window.on_throttled(t0).window_size)
            .collect();
        assert_eq!(sizes, [50, 25, 12, 10]);
        assert_eq!(window.on_throttled(t0).window_size, 10);
        assert!(window.is_reduced());
        assert_eq!(window.tick(t0 + 59 * SECOND), 10);
        assert_eq!(window.tick(t0 + 60 * SECOND), 15);
        assert_eq!(window.tick(t0 + 119 * SECOND), 15);
        assert_eq!(window.tick(t0 + 120 * SECOND), 20);
        // A long pause grows several steps at once, up to the maximum.
        assert_eq!(window.tick(t0 + 600 * SECOND), 60);
        assert_eq!(window.tick(t0 + 6000 * SECOND), 100);
        assert!(!window.is_reduced());
        assert_eq!(window.tick(t0 + 7000 * SECOND), 100);
    }

    #[test]
    fn throttle_restarts_the_growth_period() {
        let t0 = Instant::now();
        let mut window: Window<()> = Window::new(40);
        window.on_throttled(t0);
        assert_eq!(window.tick(t0 + 50 * SECOND), 20);
        window.on_throttled(t0 + 50 * SECOND);
        assert_eq!(window.capacity(), 10);
        assert_eq!(window.tick(t0 + 100 * SECOND), 10);
        assert_eq!(window.tick(t0 + 110 * SECOND), 15);
    }

    #[test]
    fn small_configured_window_is_its_own_floor() {
        let t0 = Instant::now();
        let mut window: Window<()> = Window::new(6);
        assert_eq!(window.on_throttled(t0).window_size, 6);
        let mut window: Window<()> = Window::new(16);
        assert_eq!(window.on_throttled(t0).window_size, 10);
        assert_eq!(window.tick(t0 + 60 * SECOND), 15);
        assert_eq!(window.tick(t0 + 120 * SECOND), 16);
    }

    #[test]
    fn three_throttles_within_a_minute_degrade() {
        let t0 = Instant::now();
        let mut window: Window<()> = Window::new(100);
        let first = window.on_throttled(t0);
        assert!(!first.degraded);
        let second = window.on_throttled(t0 + 30 * SECOND);
        assert_eq!(second.recent_throttles, 2);
        let third = window.on_throttled(t0 + 59 * SECOND);
        assert_eq!(third.recent_throttles, 3);
        assert!(third.degraded && third.became_degraded);
        let fourth = window.on_throttled(t0 + 59 * SECOND);
        assert!(fourth.degraded && !fourth.became_degraded);
        assert!(window.is_degraded(t0 + 59 * SECOND));
        // The first throttle leaves the sliding period at t0 + 60 s.
        assert_eq!(window.throttles_in_period(t0 + 60 * SECOND), 3);
        assert_eq!(window.throttles_in_period(t0 + 90 * SECOND), 2);
        assert!(!window.is_degraded(t0 + 119 * SECOND));
        window.tick(t0 + 200 * SECOND);
        assert_eq!(window.on_throttled(t0 + 200 * SECOND).recent_throttles, 1);
    }

    #[test]
    fn scaled_adaptive_config_for_tests() {
        let t0 = Instant::now();
        let adaptive = AdaptiveConfig {
            grow_period: Duration::from_millis(600),
            throttle_period: Duration::from_millis(600),
            ..AdaptiveConfig::default()
        };
        let mut window: Window<()> = Window::with_adaptive(20, adaptive);
        window.on_throttled(t0);
        assert_eq!(window.tick(t0 + Duration::from_millis(600)), 15);
        assert_eq!(window.tick(t0 + Duration::from_millis(1200)), 20);
        let zero = AdaptiveConfig {
            grow_period: Duration::ZERO,
            ..AdaptiveConfig::default()
        };
        let mut window: Window<()> = Window::with_adaptive(20, zero);
        window.on_throttled(t0);
        assert_eq!(window.tick(t0), 20);
    }

    #[test]
    fn set_max_follows_or_caps() {
        let t0 = Instant::now();
        let mut window: Window<u8> = Window::new(100);
        window.set_max(200);
        assert_eq!((window.max(), window.capacity()), (200, 200));
        window.set_max(50);
        assert_eq!(window.capacity(), 50);
        window.on_throttled(t0);
        assert_eq!(window.capacity(), 25);
        window.set_max(80);
        assert_eq!(window.capacity(), 25);
        assert_eq!(window.tick(t0 + 60 * SECOND), 30);
        window.set_max(20);
        assert_eq!(window.capacity(), 20);
        assert!(!window.is_reduced());
        window.set_max(0);
        assert_eq!(window.capacity(), 1);
        // Shrinking below what is in flight: nothing is dropped, nothing new fits.
        let mut window: Window<u8> = Window::new(3);
        for seq in 1..=3 {
            window.try_insert(seq, t0, 0).unwrap();
        }
        window.set_max(1);
        assert_eq!((window.len(), window.free()), (3, 0));
        assert!(window.try_insert(4, t0, 0).is_err());
    }

    #[test]
    fn sequence_wraps_to_one_and_never_yields_zero() {
        let mut seq = SequenceNumbers::starting_at(MAX_SEQUENCE_NUMBER - 1);
        let got: Vec<u32> = (0..4).map(|_| seq.next()).collect();
        assert_eq!(got, [MAX_SEQUENCE_NUMBER - 1, MAX_SEQUENCE_NUMBER, 1, 2]);
        assert_eq!(SequenceNumbers::starting_at(0).peek(), 1);
        assert_eq!(SequenceNumbers::starting_at(u32::MAX).peek(), 1);
        assert_eq!(SequenceNumbers::starting_at(0x8000_0000).peek(), 1);
        assert_eq!(SequenceNumbers::new().remaining(), None);
    }

    #[test]
    fn wrap_sequence_maps_counters() {
        assert_eq!(wrap_sequence(1), 1);
        assert_eq!(wrap_sequence(0x7FFF_FFFF), 0x7FFF_FFFF);
        assert_eq!(wrap_sequence(0x8000_0000), 1);
        assert_eq!(wrap_sequence(0), 0x7FFF_FFFF);
        assert_eq!(wrap_sequence(u64::MAX), (u64::MAX % 0x7FFF_FFFF) as u32);
    }

    #[test]
    fn blocks_count_down_and_overrun() {
        let mut seq = SequenceNumbers::from_block(1000, 3);
        assert_eq!(seq.remaining(), Some(3));
        assert_eq!([seq.next(), seq.next(), seq.next()], [1000, 1001, 1002]);
        assert!(seq.is_exhausted());
        assert_eq!(seq.next(), 1003);
        assert_eq!(seq.overrun(), 1);
        seq.refill(5000, 2);
        assert_eq!(seq.remaining(), Some(2));
        assert_eq!(seq.next(), 5000);
        assert_eq!(seq.overrun(), 1);
        let mut wrapping = SequenceNumbers::from_block(MAX_SEQUENCE_NUMBER, 2);
        assert_eq!([wrapping.next(), wrapping.next()], [MAX_SEQUENCE_NUMBER, 1]);
    }

    #[test]
    fn skips_numbers_still_in_flight_after_a_wrap() {
        let now = Instant::now();
        let mut window = Window::new(10);
        window.try_insert(1, now, ()).unwrap();
        window.try_insert(2, now, ()).unwrap();
        window.try_insert(4, now, ()).unwrap();
        let mut seq = SequenceNumbers::starting_at(MAX_SEQUENCE_NUMBER);
        assert_eq!(seq.next_free(&window), MAX_SEQUENCE_NUMBER);
        assert_eq!(seq.next_free(&window), 3);
        assert_eq!(seq.skipped(), 2);
        assert_eq!(seq.next_free(&window), 5);
        assert_eq!(seq.skipped(), 3);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32, u64),
        Remove(u32),
        Expire(u64),
        Throttle(u64),
        Tick(u64),
        SetMax(usize),
        Drain,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u32..40, 0u64..100).prop_map(|(s, d)| Op::Insert(s, d)),
            3 => (0u32..40).prop_map(Op::Remove),
            1 => (0u64..100).prop_map(Op::Expire),
            1 => (0u64..100).prop_map(Op::Throttle),
            1 => (0u64..400).prop_map(Op::Tick),
            1 => (0usize..40).prop_map(Op::SetMax),
            1 => Just(Op::Drain),
        ]
    }

    proptest! {
        #[test]
        fn window_never_overfills_and_frees_each_seq_once(
            max in 1usize..40,
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            let t0 = Instant::now();
            let mut window = Window::new(max);
            let mut model: HashMap<u32, u64> = HashMap::new();
            let mut clock = 0u64;
            for op in ops {
                match op {
                    Op::Insert(seq, deadline) => {
                        let was_full = window.free() == 0;
                        let value = (seq, deadline);
                        match window.try_insert(seq, t0 + Duration::from_secs(deadline), value) {
                            Ok(()) => {
                                prop_assert!(!was_full);
                                prop_assert!(model.insert(seq, deadline).is_none());
                                prop_assert!(window.len() <= window.capacity());
                            }
                            Err(refused) => {
                                prop_assert!(was_full || model.contains_key(&seq));
                                prop_assert_eq!(refused.into_value(), value);
                            }
                        }
                    }
                    Op::Remove(seq) => {
                        let got = window.remove(seq);
                        prop_assert_eq!(got, model.remove(&seq).map(|d| (seq, d)));
                    }
                    Op::Expire(at) => {
                        for (seq, (value_seq, deadline)) in window.expired(t0 + Duration::from_secs(at)) {
                            prop_assert_eq!(seq, value_seq);
                            prop_assert!(deadline <= at);
                            prop_assert_eq!(model.remove(&seq), Some(deadline));
                        }
                        prop_assert!(model.values().all(|d| *d > at));
                    }
                    Op::Throttle(dt) => {
                        clock += dt;
                        let before = window.capacity();
                        let outcome = window.on_throttled(t0 + Duration::from_secs(clock));
                        prop_assert!(outcome.window_size <= before);
                        prop_assert!(outcome.window_size >= MIN_ADAPTIVE_WINDOW.min(window.max()).min(before));
                    }
                    Op::Tick(dt) => {
                        clock += dt;
                        let size = window.tick(t0 + Duration::from_secs(clock));
                        prop_assert!(size <= window.max());
                    }
                    Op::SetMax(n) => window.set_max(n),
                    Op::Drain => {
                        for (seq, _) in window.drain() {
                            prop_assert!(model.remove(&seq).is_some());
                        }
                        prop_assert!(model.is_empty());
                    }
                }
                prop_assert_eq!(window.len(), model.len());
                prop_assert!(window.capacity() <= window.max());
                prop_assert_eq!(window.free(), window.capacity().saturating_sub(window.len()));
                let earliest = model.values().min().map(|d| t0 + Duration::from_secs(*d));
                prop_assert_eq!(window.next_deadline(), earliest);
            }
        }

        #[test]
        fn sequence_numbers_stay_in_range_and_wrap(
            start in any::<u32>(),
            count in 0usize..300,
        ) {
            let mut seq = SequenceNumbers::starting_at(start);
            prop_assert!((1..=MAX_SEQUENCE_NUMBER).contains(&seq.peek()));
            for _ in 0..count {
                let n = seq.next();
                prop_assert_ne!(n, 0);
                prop_assert!(n <= MAX_SEQUENCE_NUMBER);
                let next = seq.peek();
                if n == MAX_SEQUENCE_NUMBER {
                    prop_assert_eq!(next, 1);
                } else {
                    prop_assert_eq!(next, n + 1);
                }
            }
        }

        #[test]
        fn next_unused_never_returns_a_number_in_flight(
            start in (MAX_SEQUENCE_NUMBER - 50)..=MAX_SEQUENCE_NUMBER,
            in_flight in proptest::collection::hash_set(
                prop_oneof![1u32..60, (MAX_SEQUENCE_NUMBER - 60)..=MAX_SEQUENCE_NUMBER],
                0..60,
            ),
            draws in 1usize..100,
        ) {
            let mut seq = SequenceNumbers::starting_at(start);
            let mut handed_out = std::collections::HashSet::new();
            for _ in 0..draws {
                let before = seq.skipped();
                let n = seq.next_unused(|c| in_flight.contains(&c));
                prop_assert_ne!(n, 0);
                prop_assert!(!in_flight.contains(&n));
                prop_assert!(handed_out.insert(n), "{} handed out twice", n);
                prop_assert!(seq.skipped() >= before);
            }
        }

        #[test]
        fn wrap_sequence_is_in_range(raw in any::<u64>()) {
            let n = wrap_sequence(raw);
            prop_assert!((1..=MAX_SEQUENCE_NUMBER).contains(&n));
        }
    }
}
