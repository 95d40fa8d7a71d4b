//! Reconnect schedule of a bind (SPEC §5): 5, 10, 20, 40, 60, 60 … s.
//!
//! The delay doubles from `base` with every failed attempt and stays at `cap`; attempts
//! reset when a bind succeeds. Optional jitter (off by default) spreads reconnects of
//! many binds over `delay × (1 ± fraction)` so an SMSC restart does not cause a storm.
//!
//! This module owns the arithmetic only. It must not read a clock, sleep or draw random
//! numbers: the random value is an argument (`random_unit` in `0.0..=1.0`), so the
//! schedule is a pure function and tests can scale `base` / `cap` down.

use std::time::Duration;

/// First reconnect delay of the production schedule.
pub const DEFAULT_BASE: Duration = Duration::from_secs(5);
/// Largest reconnect delay of the production schedule.
pub const DEFAULT_CAP: Duration = Duration::from_secs(60);

/// Why a [`Backoff`] configuration was refused by [`Backoff::try_new`].
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum BackoffError {
    /// A zero base would reconnect in a busy loop.
    #[error("backoff base must be above zero")]
    ZeroBase,
    /// The cap must not be below the first delay.
    #[error("backoff cap {cap:?} is below its base {base:?}")]
    CapBelowBase { base: Duration, cap: Duration },
    /// Jitter is a fraction of the delay: finite and within `0.0..=1.0`.
    #[error("backoff jitter {fraction} is not a fraction within 0.0..=1.0")]
    InvalidJitter { fraction: f64 },
}

/// Exponential reconnect schedule with a cap, optional jitter and an attempt counter.
///
/// `attempts` counts consecutive failures: [`Backoff::record_failure`] after every failed
/// connect or bind, [`Backoff::reset`] once bound. [`Backoff::next_delay`] is the delay
/// to wait before the next connect: zero before the first failure, `base` after one.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    jitter: Option<f64>,
    attempts: u32,
}

impl Default for Backoff {
    /// 5 s doubling to 60 s, no jitter.
    fn default() -> Self {
        Backoff::new(DEFAULT_BASE, DEFAULT_CAP, None)
    }
}

impl Backoff {
    /// A schedule starting at `base`, doubling up to `cap`, with `jitter` as a fraction of
    /// the delay (`Some(0.2)` = ±20 %). Never fails: a zero base becomes 1 ms, a cap below
    /// the base becomes the base, jitter is clamped into `0.0..=1.0` (NaN or 0 = none).
    /// Use [`Backoff::try_new`] to refuse such values instead.
    pub fn new(base: Duration, cap: Duration, jitter: Option<f64>) -> Self {
        let base = if base.is_zero() {
            Duration::from_millis(1)
        } else {
            base
        };
        let jitter = jitter
            .filter(|f| f.is_finite() && *f > 0.0)
            .map(|f| f.min(1.0));
        Backoff {
            base,
            cap: cap.max(base),
            jitter,
            attempts: 0,
        }
    }

    /// Like [`Backoff::new`] but refuses a zero base, a cap below the base and jitter
    /// outside `0.0..=1.0`.
    pub fn try_new(
        base: Duration,
        cap: Duration,
        jitter: Option<f64>,
    ) -> Result<Self, BackoffError> {
        if base.is_zero() {
            return Err(BackoffError::ZeroBase);
        }
        if cap < base {
            return Err(BackoffError::CapBelowBase { base, cap });
        }
        if let Some(fraction) = jitter {
            if !fraction.is_finite() || !(0.0..=1.0).contains(&fraction) {
                return Err(BackoffError::InvalidJitter { fraction });
            }
        }
        Ok(Backoff::new(base, cap, jitter))
    }

    /// The first delay.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The largest delay before jitter.
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// The jitter fraction, `None` when off.
    pub fn jitter(&self) -> Option<f64> {
        self.jitter
    }

    /// The largest delay this schedule can return: `cap × (1 + jitter)`.
    pub fn max_delay(&self) -> Duration {
        match self.jitter {
            Some(fraction) => scale(self.cap, 1.0 + fraction),
            None => self.cap,
        }
    }

    /// The delay before reconnect attempt number `attempt` (1 = after the first failure).
    ///
    /// Without jitter: `0` for attempt 0, then `min(base × 2^(attempt-1), cap)`; it never
    /// overflows (any attempt ≥ 64 is simply the cap). With jitter `f`, the delay is scaled
    /// by `1 - f + 2·f·random_unit`, i.e. uniformly within `±f` for a uniform
    /// `random_unit` in `0.0..=1.0` (values outside are clamped, NaN counts as 0.5).
    /// Without jitter `random_unit` is ignored.
    pub fn delay_for_attempt(&self, attempt: u32, random_unit: f64) -> Duration {
        if attempt == 0 {
            return Duration::ZERO;
        }
        let exponent = attempt - 1;
        let delay = if exponent >= 64 {
            self.cap
        } else {
            match u32::try_from(1u64 << exponent) {
                Ok(factor) => self.base.checked_mul(factor).unwrap_or(self.cap),
                Err(_) => self.cap,
            }
            .min(self.cap)
        };
        match self.jitter {
            Some(fraction) => {
                let unit = if random_unit.is_nan() {
                    0.5
                } else {
                    random_unit.clamp(0.0, 1.0)
                };
                // min(): rounding must never take the factor above the documented bound.
                scale(
                    delay,
                    (1.0 - fraction + 2.0 * fraction * unit).min(1.0 + fraction),
                )
            }
            None => delay,
        }
    }

    /// Consecutive failures so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Count one failed connect or bind; returns the new attempt count (saturating).
    pub fn record_failure(&mut self) -> u32 {
        self.attempts = self.attempts.saturating_add(1);
        self.attempts
    }

    /// Forget the failures: call once bound.
    pub fn reset(&mut self) {
        self.attempts = 0;
    }

    /// The delay before the next connect: [`Backoff::delay_for_attempt`] for the current
    /// attempt count (zero before any failure).
    pub fn next_delay(&self, random_unit: f64) -> Duration {
        self.delay_for_attempt(self.attempts, random_unit)
    }
}

/// `delay × factor`, saturating instead of panicking on overflow.
fn scale(delay: Duration, factor: f64) -> Duration {
    let factor = factor.max(0.0);
    Duration::try_from_secs_f64(delay.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn default_schedule_is_5_10_20_40_60_60() {
        let backoff = Backoff::default();
        let millis: Vec<u128> = (1..=7)
            .map(|attempt| backoff.delay_for_attempt(attempt, 0.0).as_millis())
            .collect();
        assert_eq!(millis, [5000, 10000, 20000, 40000, 60000, 60000, 60000]);
    }

    #[test]
    fn no_delay_before_the_first_failure() {
        let backoff = Backoff::default();
        assert_eq!(backoff.attempts(), 0);
        assert_eq!(backoff.next_delay(0.7), Duration::ZERO);
    }

    #[test]
    fn counter_follows_failures_and_resets_on_bind() {
        let mut backoff = Backoff::default();
        let mut seen = Vec::new();
        for _ in 0..6 {
            backoff.record_failure();
            seen.push(backoff.next_delay(0.0).as_secs());
        }
        assert_eq!(seen, [5, 10, 20, 40, 60, 60]);
        assert_eq!(backoff.attempts(), 6);
        backoff.reset();
        assert_eq!(backoff.attempts(), 0);
        backoff.record_failure();
        assert_eq!(backoff.next_delay(0.0), Duration::from_secs(5));
    }

    #[test]
    fn scaled_schedule_for_tests() {
        let backoff = Backoff::new(Duration::from_millis(50), Duration::from_millis(600), None);
        let millis: Vec<u128> = (1..=6)
            .map(|attempt| backoff.delay_for_attempt(attempt, 0.3).as_millis())
            .collect();
        assert_eq!(millis, [50, 100, 200, 400, 600, 600]);
    }

    #[test]
    fn jitter_spreads_around_the_schedule() {
        let backoff = Backoff::new(DEFAULT_BASE, DEFAULT_CAP, Some(0.2));
        assert_eq!(backoff.delay_for_attempt(1, 0.0), Duration::from_secs(4));
        assert_eq!(backoff.delay_for_attempt(1, 0.5), Duration::from_secs(5));
        assert_eq!(backoff.delay_for_attempt(1, 1.0), Duration::from_secs(6));
        assert_eq!(backoff.delay_for_attempt(9, 1.0), Duration::from_secs(72));
        assert_eq!(
            backoff.delay_for_attempt(9, f64::NAN),
            Duration::from_secs(60)
        );
        assert_eq!(backoff.delay_for_attempt(1, 7.0), Duration::from_secs(6));
        assert_eq!(backoff.max_delay(), Duration::from_secs(72));
    }

    #[test]
    fn counter_saturates() {
        let mut backoff = Backoff {
            attempts: u32::MAX - 1,
            ..Backoff::default()
        };
        assert_eq!(backoff.record_failure(), u32::MAX);
        assert_eq!(backoff.record_failure(), u32::MAX);
        assert_eq!(backoff.next_delay(0.0), DEFAULT_CAP);
    }

    #[test]
    fn new_sanitises_and_try_new_refuses() {
        let backoff = Backoff::new(Duration::ZERO, Duration::ZERO, Some(f64::NAN));
        assert_eq!(backoff.base(), Duration::from_millis(1));
        assert_eq!(backoff.cap(), Duration::from_millis(1));
        assert_eq!(backoff.jitter(), None);
        assert_eq!(
            Backoff::new(DEFAULT_BASE, DEFAULT_CAP, Some(3.0)).jitter(),
            Some(1.0)
        );

        assert_eq!(
            Backoff::try_new(Duration::ZERO, DEFAULT_CAP, None),
            Err(BackoffError::ZeroBase)
        );
        assert_eq!(
            Backoff::try_new(DEFAULT_CAP, DEFAULT_BASE, None),
            Err(BackoffError::CapBelowBase {
                base: DEFAULT_CAP,
                cap: DEFAULT_BASE
            })
        );
        assert!(matches!(
            Backoff::try_new(DEFAULT_BASE, DEFAULT_CAP, Some(-0.1)),
            Err(BackoffError::InvalidJitter { .. })
        ));
        assert_eq!(
            Backoff::try_new(DEFAULT_BASE, DEFAULT_CAP, None),
            Ok(Backoff::default())
        );
    }

    fn durations() -> impl Strategy<Value = Duration> {
        prop_oneof![
            (1u64..=120_000).prop_map(Duration::from_millis),
            (1u64..=u64::MAX).prop_map(Duration::from_nanos),
            Just(Duration::MAX),
        ]
    }

    proptest! {
        #[test]
        fn monotone_without_jitter(base in durations(), cap in durations(), attempt in 0u32..200) {
            let backoff = Backoff::new(base, cap, None);
            prop_assert!(
                backoff.delay_for_attempt(attempt, 0.5)
                    <= backoff.delay_for_attempt(attempt + 1, 0.5)
            );
        }

        #[test]
        fn never_above_the_cap(
            base in durations(),
            cap in durations(),
            jitter in proptest::option::of(0.0f64..=1.0),
            attempt in any::<u32>(),
            unit in any::<f64>(),
        ) {
            let backoff = Backoff::new(base, cap, jitter);
            let delay = backoff.delay_for_attempt(attempt, unit);
            prop_assert!(delay <= backoff.max_delay());
            if backoff.jitter().is_none() {
                prop_assert!(delay <= backoff.cap());
            }
        }

        #[test]
        fn first_attempt_is_the_base(base in durations(), cap in durations(), unit in 0.0f64..=1.0) {
            let backoff = Backoff::new(base, cap, None);
            prop_assert_eq!(backoff.delay_for_attempt(1, unit), backoff.base());
        }

        #[test]
        fn no_overflow_at_the_last_attempt(
            base in durations(),
            cap in durations(),
            jitter in proptest::option::of(0.0f64..=1.0),
            unit in any::<f64>(),
        ) {
            let backoff = Backoff::new(base, cap, jitter);
            let delay = backoff.delay_for_attempt(u32::MAX, unit);
            prop_assert!(delay <= backoff.max_delay());
            if backoff.jitter().is_none() {
                prop_assert_eq!(delay, backoff.cap());
            }
        }
    }
}
