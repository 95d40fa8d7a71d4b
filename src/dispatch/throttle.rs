//! Throughput limits and Redis key names (SPEC §5, §8; US-SC-012): the sliding-window
//! arithmetic the Redis script runs, the same model in memory ([`SlidingWindow`]), the
//! local token bucket used while Redis is down ([`LocalLimiter`]), and the blocks handed
//! out by the sequence and concatenation-reference counters.
//!
//! This module must not read a clock, do I/O or log: time comes in as arguments (the
//! offset into the current window, an [`Instant`], or a time since an epoch).
//!
//! # The sliding window and its bound
//!
//! Time is cut into aligned windows of one second; each window has an exact counter of
//! the tokens granted in it (`tps:{operatorId}:{windowStart}`). A request at offset `e`
//! (a fraction of the window, `0 ≤ e < 1`) sees the weighted estimate
//! `previous × (1 − e) + current` and is granted as many tokens as keep that estimate at
//! or below the limit ([`grantable`]). With exact counters this guarantees:
//!
//! 1. every aligned window holds at most `limit` grants (the estimate is ≥ `current`);
//! 2. every span of length `0 < L ≤ 1 s` holds strictly fewer than `limit × (1 + L)`
//!    grants, so a one-second span holds at most `2 × limit − 1`, never `2 × limit`.
//!
//! Proof of 2: a span inside one aligned window is case 1. Otherwise it covers the end of
//! window k (grants `B`; `A` more earlier in k) and the first `x < L` of window k + 1
//! (grants `C`). If `C > 0`, its last grant at offset `e < x` left
//! `(A + B)(1 − e) + C ≤ limit`, so `B + C ≤ limit + B·e − A(1 − e) < limit + limit·L`.
//!
//! Why this matters at the window edge: with fixed windows, `limit` grants just before
//! the boundary and `limit` just after it double the rate over an instant. Weighted, the
//! full previous window still counts at the start of the next one and decays linearly,
//! so a burst of `limit` at the end of window k leaves only `limit × e` for the first `e`
//! of window k + 1: over any short span `L` around the edge at most `limit × (1 + L)`.
//! The offset is taken in whole microseconds, rounded down, which only makes the
//! estimate larger (more conservative).

use std::time::{Duration, Instant};

use crate::config::{BindKey, OperatorId};
use crate::protocol::pdu::MAX_SEQUENCE_NUMBER;

/// Length of one TPS window.
pub const WINDOW: Duration = Duration::from_secs(1);

const MICROS_PER_WINDOW: u64 = 1_000_000;
const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// The Redis Cluster hash tag of an operator's keys, `{operatorId}`: every key of one
/// operator carries it, so they all live in one slot and a script may touch several of
/// them on Redis Cluster too (the SPEC's `{operatorId}` placeholders are literal braces).
/// Operator ids are `[A-Za-z0-9_-]`, so the tag is always well formed.
pub fn hash_tag(operator_id: &str) -> String {
    format!("{{{operator_id}}}")
}

/// Key of an operator's TPS sliding window: the hash `tps:{operatorId}` with the start
/// of the newest window (`w`, seconds since the Unix epoch, Redis server time) and the
/// tokens granted in it (`c`) and in the window before it (`p`). One key, so the script
/// declares it; [`tps_counts`] is how the script reads it.
pub fn tps_key(operator_id: &OperatorId) -> String {
    format!("tps:{}", hash_tag(operator_id.as_str()))
}

/// The counts of the previous and the current window at server second `now`, from the
/// fields of [`tps_key`] (`w`, `c`, `p`; absent fields are 0), and the window the hash
/// then describes. A stored window ahead of `now` (a failover to a server whose clock is
/// behind) is kept as it is: its counts still weigh in full, never less.
pub fn tps_counts(stored_window: u64, current: u64, previous: u64, now: u64) -> TpsCounts {
    if stored_window >= now {
        TpsCounts {
            window: stored_window,
            previous,
            current,
        }
    } else if stored_window + 1 == now {
        TpsCounts {
            window: now,
            previous: current,
            current: 0,
        }
    } else {
        TpsCounts {
            window: now,
            previous: 0,
            current: 0,
        }
    }
}

/// What [`tps_counts`] makes of a stored window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TpsCounts {
    pub window: u64,
    pub previous: u64,
    pub current: u64,
}

/// Key of a bind's sequence number counter: `smpp:seq:{op}:{dir}:{bindId}`.
pub fn seq_key(key: &BindKey) -> String {
    format!(
        "smpp:seq:{}:{}:{}",
        hash_tag(key.operator_id.as_str()),
        key.direction,
        key.bind_id
    )
}

/// Key of a bind's concatenation reference counter: `smpp:concat:ref:{op}:{bindId}`.
pub fn concat_ref_key(key: &BindKey) -> String {
    format!(
        "smpp:concat:ref:{}:{}",
        hash_tag(key.operator_id.as_str()),
        key.bind_id
    )
}

/// The names keys had before they carried the hash tag. Counters under these names are
/// read once per key and process, so the new counter starts above the old one: no
/// sequence number or concatenation reference still live is handed out again after an
/// upgrade. Remembered references and open MO messages under these names are still found.
pub mod legacy {
    use crate::config::{BindKey, OperatorId};

    /// `smpp:seq:{op}:{dir}:{bindId}` without the hash tag.
    pub fn seq_key(key: &BindKey) -> String {
        format!(
            "smpp:seq:{}:{}:{}",
            key.operator_id, key.direction, key.bind_id
        )
    }

    /// `smpp:concat:ref:{op}:{bindId}` without the hash tag.
    pub fn concat_ref_key(key: &BindKey) -> String {
        format!("smpp:concat:ref:{}:{}", key.operator_id, key.bind_id)
    }

    /// `smpp:concat:msg:{op}:{messageId}` without the hash tag.
    pub fn concat_message_key(operator_id: &OperatorId, message_id: &str) -> String {
        format!("smpp:concat:msg:{operator_id}:{message_id}")
    }
}

/// What a counter must not go below: the higher of the last value this process was given
/// and the value under the key's legacy name. A counter that went backwards (a Redis that
/// lost writes in a failover, or restarted empty) is set back up to it before the next
/// block is taken, so a block is never handed out twice.
pub fn counter_floor(last_given: Option<i64>, legacy: Option<i64>) -> i64 {
    last_given.unwrap_or(0).max(legacy.unwrap_or(0)).max(0)
}

/// The weighted count at `elapsed` into the current window:
/// `previous × (1 − elapsed / WINDOW) + current` (for display; [`grantable`] decides
/// with exact integers).
pub fn weighted_estimate(previous: u64, current: u64, elapsed: Duration) -> f64 {
    let fraction = offset_micros(elapsed) as f64 / MICROS_PER_WINDOW as f64;
    previous as f64 * (1.0 - fraction) + current as f64
}

/// How many of `want` tokens fit under `limit` at `elapsed` into the current window,
/// given the counts of the previous and the current window: the largest `g ≤ want` with
/// `previous × (1 − e) + current + g ≤ limit`. `elapsed` is clamped to the window and
/// taken in whole microseconds; the arithmetic is exact (the Redis script in
/// `actors/src/throttle.rs` computes the same with the same integers).
pub fn grantable(limit: u32, previous: u64, current: u64, elapsed: Duration, want: u32) -> u32 {
    let micros = u128::from(MICROS_PER_WINDOW);
    let used = u128::from(previous) * (micros - u128::from(offset_micros(elapsed)))
        + u128::from(current) * micros;
    let cap = u128::from(limit) * micros;
    if used >= cap {
        return 0;
    }
    // (cap - used) / micros ≤ limit, so it fits in u32.
    ((cap - used) / micros).min(u128::from(want)) as u32
}

/// Offset into the window in whole microseconds, at most one microsecond short of it.
fn offset_micros(elapsed: Duration) -> u64 {
    (elapsed.as_micros() as u64).min(MICROS_PER_WINDOW - 1)
}

/// The sliding window of one operator with exact counters, in memory: what the Redis
/// script does, for tests and as the reference model of the bound in the module doc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlidingWindow {
    limit: u32,
    window_start: u64,
    previous: u64,
    current: u64,
}

impl SlidingWindow {
    pub fn new(limit: u32) -> Self {
        SlidingWindow {
            limit,
            window_start: 0,
            previous: 0,
            current: 0,
        }
    }

    /// Grant up to `want` tokens at `now` (a time since any fixed epoch; calls must not go
    /// back in time, an earlier `now` counts in the current window).
    pub fn acquire(&mut self, now: Duration, want: u32) -> u32 {
        let window = now.as_secs();
        if window > self.window_start {
            self.previous = if window == self.window_start + 1 {
                self.current
            } else {
                0
            };
            self.current = 0;
            self.window_start = window;
        }
        let elapsed = now.saturating_sub(Duration::from_secs(self.window_start));
        let granted = grantable(self.limit, self.previous, self.current, elapsed, want);
        self.current += u64::from(granted);
        granted
    }
}

/// Token bucket that caps one pod while Redis is down (fail-open is never unlimited):
/// rate = `tps_limit / live_binds` tokens per second (at least 1), burst = one second of
/// that rate, starting full. Over any interval of length `t` it grants at most
/// `burst + rate × t` tokens (exact integer arithmetic in nanotokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalLimiter {
    rate: u32,
    /// Tokens available, × 10⁹.
    credit: u128,
    last: Instant,
}

impl LocalLimiter {
    /// A full bucket for an operator's `tps_limit` shared by `live_binds` (0 counts as 1).
    pub fn new(tps_limit: u32, live_binds: u32, now: Instant) -> Self {
        let rate = local_rate(tps_limit, live_binds);
        LocalLimiter {
            rate,
            credit: u128::from(rate) * NANOS_PER_SECOND,
            last: now,
        }
    }

    /// Tokens per second (also the burst).
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Follow a changed limit or number of live binds; the credit is capped to the new
    /// burst, so the bound holds from then on at the new rate.
    pub fn set_rate(&mut self, tps_limit: u32, live_binds: u32) {
        self.rate = local_rate(tps_limit, live_binds);
        self.credit = self.credit.min(self.burst_credit());
    }

    /// Take up to `want` tokens at `now` (an earlier `now` than the last call adds nothing).
    pub fn take(&mut self, now: Instant, want: u32) -> u32 {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        self.last = self.last.max(now);
        self.credit = (self.credit + u128::from(self.rate) * elapsed).min(self.burst_credit());
        let granted = (self.credit / NANOS_PER_SECOND).min(u128::from(want));
        self.credit -= granted * NANOS_PER_SECOND;
        granted as u32
    }

    fn burst_credit(&self) -> u128 {
        u128::from(self.rate) * NANOS_PER_SECOND
    }
}

fn local_rate(tps_limit: u32, live_binds: u32) -> u32 {
    (tps_limit / live_binds.max(1)).max(1)
}

/// The block of sequence numbers an `INCRBY count` answered with `last` reserved:
/// `(first, len)` with `first..first + len` inside `1..=0x7FFF_FFFF`. The counter itself
/// never wraps; its values map through [`crate::protocol::window::wrap_sequence`], and a block that
/// would straddle 0x7FFF_FFFF is cut there (the numbers past the cut, 1, 2, …, belong to
/// this reservation and are simply not used), so a block never wraps inside.
pub fn sequence_block(last: i64, count: u32) -> (u32, u32) {
    let modulus = i128::from(MAX_SEQUENCE_NUMBER);
    // The counter value of the block's first number, brought into 0..modulus first so a
    // negative counter (set by hand) still maps into range.
    let first_raw = (i128::from(last) - i128::from(count) + 1).rem_euclid(modulus);
    let first = crate::protocol::window::wrap_sequence(first_raw as u64);
    let len = count.min(MAX_SEQUENCE_NUMBER - first + 1);
    (first, len)
}

/// First concatenation reference of the block an `INCRBY count` answered with `last`
/// reserved (the caller reduces it to 8 or 16 bits).
pub fn concat_ref_block(last: i64, count: u32) -> u64 {
    (last.max(0) as u64).saturating_sub(u64::from(count)) + 1
}

/// Key of the concatenation reference remembered for one long message:
/// `smpp:concat:msg:{operatorId}:{messageId}` (72 h TTL).
pub fn concat_message_key(operator_id: &OperatorId, message_id: &str) -> String {
    format!(
        "smpp:concat:msg:{}:{message_id}",
        hash_tag(operator_id.as_str())
    )
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests take their instants from the clock
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::Direction;

    const MS: Duration = Duration::from_millis(1);

    fn bind() -> BindKey {
        BindKey::new(OperatorId::try_new("mno-1").unwrap(), Direction::Tx, 3)
    }

    #[test]
    fn key_names_carry_the_operator_as_hash_tag() {
        let op = OperatorId::try_new("mno-1").unwrap();
        assert_eq!(tps_key(&op), "tps:{mno-1}");
        assert_eq!(seq_key(&bind()), "smpp:seq:{mno-1}:tx:3");
        assert_eq!(concat_ref_key(&bind()), "smpp:concat:ref:{mno-1}:3");
        assert_eq!(
            concat_message_key(&op, "m-1"),
            "smpp:concat:msg:{mno-1}:m-1"
        );
        assert_eq!(legacy::seq_key(&bind()), "smpp:seq:mno-1:tx:3");
        assert_eq!(legacy::concat_ref_key(&bind()), "smpp:concat:ref:mno-1:3");
        assert_eq!(
            legacy::concat_message_key(&op, "m-1"),
            "smpp:concat:msg:mno-1:m-1"
        );
    }

    #[test]
    fn tps_windows_roll_forward_and_never_back() {
        let at = |w, c, p, now| tps_counts(w, c, p, now);
        // Same second: as stored.
        assert_eq!(
            at(100, 7, 3, 100),
            TpsCounts {
                window: 100,
                previous: 3,
                current: 7
            }
        );
        // The next second: the current window becomes the previous one.
        assert_eq!(
            at(100, 7, 3, 101),
            TpsCounts {
                window: 101,
                previous: 7,
                current: 0
            }
        );
        // Two seconds or more later, or never written: nothing weighs.
        assert_eq!(
            at(100, 7, 3, 102),
            TpsCounts {
                window: 102,
                previous: 0,
                current: 0
            }
        );
        assert_eq!(
            at(0, 0, 0, 1_700_000_000),
            TpsCounts {
                window: 1_700_000_000,
                previous: 0,
                current: 0
            }
        );
        // A server whose clock is behind the stored window: the counts keep their weight.
        assert_eq!(
            at(101, 7, 3, 100),
            TpsCounts {
                window: 101,
                previous: 3,
                current: 7
            }
        );
    }

    #[test]
    fn counters_never_go_below_what_was_given_or_the_legacy_key() {
        assert_eq!(counter_floor(None, None), 0);
        assert_eq!(counter_floor(Some(500), None), 500);
        assert_eq!(counter_floor(None, Some(9_000)), 9_000);
        assert_eq!(counter_floor(Some(500), Some(90)), 500);
        assert_eq!(counter_floor(Some(-4), Some(-1)), 0);
    }

    #[test]
    fn grantable_table() {
        // (limit, previous, current, elapsed ms, want, granted)
        let cases = [
            (10, 0, 0, 0, 15, 10),
            (10, 0, 4, 500, 15, 6),
            (10, 0, 10, 999, 1, 0),
            (10, 10, 0, 0, 5, 0),
            (10, 10, 0, 500, 15, 5),
            (10, 10, 0, 900, 15, 9),
            (10, 10, 3, 900, 15, 6),
            (10, 4, 0, 250, 15, 7),
            (10, 20, 0, 500, 15, 0),
            (0, 0, 0, 0, 5, 0),
            (10, 0, 0, 0, 0, 0),
            // Past the window: clamped to one microsecond short of its end.
            (10, 10, 0, 5_000, 15, 9),
        ];
        for (limit, previous, current, ms, want, granted) in cases {
            assert_eq!(
                grantable(limit, previous, current, MS * ms, want),
                granted,
                "limit {limit}, previous {previous}, current {current}, at {ms} ms, want {want}"
            );
        }
    }

    #[test]
    fn estimate_decays_the_previous_window() {
        assert_eq!(weighted_estimate(10, 2, Duration::ZERO), 12.0);
        assert_eq!(weighted_estimate(10, 2, MS * 500), 7.0);
        assert_eq!(weighted_estimate(10, 2, MS * 750), 4.5);
    }

    #[test]
    fn a_burst_at_the_edge_does_not_double_the_rate() {
        let mut window = SlidingWindow::new(10);
        assert_eq!(window.acquire(MS * 999, 10), 10);
        // 100 ms later, the previous window still weighs 9 of 10.
        assert_eq!(window.acquire(MS * 1_099, 10), 0);
        assert_eq!(window.acquire(MS * 1_100, 10), 1);
        // The tightest case of the bound: 10 + 9 within one second, never 20.
        assert_eq!(window.acquire(MS * 1_998, 10), 8);
        assert_eq!(window.acquire(MS * 2_500, 10), 5);
        // A gap of a whole window forgets the past.
        assert_eq!(window.acquire(MS * 4_000, 15), 10);
    }

    #[test]
    fn local_limiter_rate_and_burst() {
        let t0 = Instant::now();
        let mut bucket = LocalLimiter::new(100, 4, t0);
        assert_eq!(bucket.rate(), 25);
        assert_eq!(bucket.take(t0, 40), 25);
        assert_eq!(bucket.take(t0, 1), 0);
        assert_eq!(bucket.take(t0 + MS * 200, 10), 5);
        assert_eq!(bucket.take(t0 + Duration::from_secs(10), 40), 25);
        // Never unlimited, at least one per second.
        assert_eq!(LocalLimiter::new(3, 10, t0).rate(), 1);
        assert_eq!(LocalLimiter::new(0, 0, t0).rate(), 1);
        assert_eq!(LocalLimiter::new(7, 0, t0).rate(), 7);
        // A lower rate: the bucket refills at the new rate.
        bucket.set_rate(10, 5);
        assert_eq!(bucket.take(t0 + Duration::from_secs(10), 40), 0);
        assert_eq!(bucket.take(t0 + Duration::from_secs(11), 40), 2);
    }

    #[test]
    fn sequence_blocks_wrap_and_are_cut_at_the_top() {
        let max = MAX_SEQUENCE_NUMBER;
        assert_eq!(sequence_block(100, 100), (1, 100));
        assert_eq!(sequence_block(150, 50), (101, 50));
        // The counter was at 0x7FFF_FFFF: the next block starts at 1.
        assert_eq!(sequence_block(i64::from(max) + 100, 100), (1, 100));
        // A straddling block is cut at 0x7FFF_FFFF …
        assert_eq!(sequence_block(i64::from(max) + 3, 5), (max - 1, 2));
        // … and the next one starts after the numbers past the cut.
        assert_eq!(sequence_block(i64::from(max) + 8, 5), (4, 5));
        assert_eq!(sequence_block(-5, 1), (max - 5, 1));
        assert_eq!(sequence_block(7, 0).1, 0);
    }

    #[test]
    fn concat_ref_blocks() {
        assert_eq!(concat_ref_block(64, 64), 1);
        assert_eq!(concat_ref_block(128, 64), 65);
        assert_eq!(concat_ref_block(-3, 64), 1);
    }

    proptest! {
        /// The bound of the module doc, on the exact model: at most `limit` per aligned
        /// window, fewer than `limit × (1 + L)` in any span `L ≤ 1 s` (so at most
        /// `2 × limit − 1` per second), whatever the grants and instants.
        #[test]
        fn sliding_window_bound(
            limit in 1u32..200,
            calls in proptest::collection::vec((0u64..400_000, 0u32..100), 1..300),
            span_us in 1u64..=1_000_000,
        ) {
            let mut window = SlidingWindow::new(limit);
            let mut now = 0u64;
            let mut grants = Vec::new();
            for (step, want) in calls {
                now += step;
                let granted = window.acquire(Duration::from_micros(now), want);
                prop_assert!(granted <= want);
                if granted > 0 {
                    grants.push((now, u64::from(granted)));
                }
            }
            let limit = u64::from(limit);
            let in_span = |start: u64, len: u64| -> u64 {
                grants.iter().filter(|(t, _)| *t >= start && *t < start + len).map(|(_, g)| g).sum()
            };
            for &(start, _) in &grants {
                let aligned = start / 1_000_000 * 1_000_000;
                prop_assert!(in_span(aligned, 1_000_000) <= limit);
                prop_assert!(in_span(start, 1_000_000) < 2 * limit);
                // sum < limit × (1 + L), in microsecond units.
                prop_assert!(in_span(start, span_us) * 1_000_000 < limit * (1_000_000 + span_us));
            }
        }

        /// The local limiter grants at most `burst + rate × t` over any interval `t`.
        #[test]
        fn local_limiter_bound(
            limit in 0u32..2_000,
            live_binds in 0u32..8,
            calls in proptest::collection::vec((0u64..300_000_000, 0u32..500), 1..200),
        ) {
            let t0 = Instant::now();
            let mut bucket = LocalLimiter::new(limit, live_binds, t0);
            let rate = u128::from(bucket.rate());
            prop_assert!(rate >= 1);
            let mut now = 0u64;
            let mut grants = Vec::new();
            for (step, want) in calls {
                now += step;
                let granted = bucket.take(t0 + Duration::from_nanos(now), want);
                prop_assert!(granted <= want);
                grants.push((now, u128::from(granted)));
            }
            for i in 0..grants.len() {
                let mut sum = 0u128;
                for &(t, g) in &grants[i..] {
                    sum += g;
                    let span = u128::from(t - grants[i].0);
                    prop_assert!(sum * NANOS_PER_SECOND <= rate * NANOS_PER_SECOND + rate * span);
                }
            }
        }

        #[test]
        fn sequence_blocks_stay_in_range(last in any::<i64>(), count in 0u32..10_000) {
            let (first, len) = sequence_block(last, count);
            prop_assert!((1..=MAX_SEQUENCE_NUMBER).contains(&first));
            prop_assert!(len <= count);
            prop_assert!(u64::from(first) + u64::from(len) <= u64::from(MAX_SEQUENCE_NUMBER) + 1);
        }
    }
}
