//! How many lines one kind of per-message event may log: the first `limit` in a window
//! are logged one by one; the next one raises the alarm once (at ERROR: something is
//! failing in bulk); the rest of the window is only counted, and when the window ends the
//! count is reported in one line. So an outage or a bad producer that dead-letters
//! thousands of commands gives a handful of lines and one ERROR, not thousands of WARNs.

use std::time::{Duration, Instant};

/// What to do with one event's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Log it.
    Log,
    /// The limit is just exceeded: raise the alarm (one ERROR) instead of this line.
    Flood,
    /// Count it, do not log it.
    Quiet,
}

/// A per-window line budget.
#[derive(Debug, Clone)]
pub struct LogBudget {
    limit: u32,
    window: Duration,
    started: Option<Instant>,
    seen: u32,
}

impl LogBudget {
    pub fn new(limit: u32, window: Duration) -> Self {
        LogBudget {
            limit,
            window,
            started: None,
            seen: 0,
        }
    }

    /// One event now.
    pub fn admit(&mut self, now: Instant) -> Admit {
        if self
            .started
            .is_none_or(|started| now.saturating_duration_since(started) >= self.window)
        {
            self.started = Some(now);
            self.seen = 0;
        }
        self.seen = self.seen.saturating_add(1);
        match self.seen {
            n if n <= self.limit => Admit::Log,
            n if n == self.limit + 1 => Admit::Flood,
            _ => Admit::Quiet,
        }
    }

    /// Once the window of a flood has ended: how many events it had beyond the limit
    /// (reported once; `None` otherwise).
    pub fn poll_summary(&mut self, now: Instant) -> Option<u32> {
        let started = self.started?;
        if now.saturating_duration_since(started) < self.window || self.seen <= self.limit {
            return None;
        }
        let beyond = self.seen - self.limit;
        self.started = None;
        self.seen = 0;
        Some(beyond)
    }
}

/// One problem that lasts (a backend failing for many messages at once): a single
/// mechanism for "log it once per outage". [`Outage::failed`] is true for the failure
/// that starts an outage (the caller logs it at WARN; the rest at debug),
/// [`Outage::worked`] for the success that ends it (logged once at INFO). Shared by the
/// tasks that meet it (atomic); pure: it neither logs nor reads a clock.
#[derive(Debug, Default)]
pub struct Outage {
    failing: std::sync::atomic::AtomicBool,
}

impl Outage {
    pub const fn new() -> Self {
        Outage {
            failing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// It failed: `true` when this starts an outage.
    pub fn failed(&self) -> bool {
        !self
            .failing
            .swap(true, std::sync::atomic::Ordering::Relaxed)
    }

    /// It worked: `true` when this ends an outage.
    pub fn worked(&self) -> bool {
        self.failing
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    pub fn is_failing(&self) -> bool {
        self.failing.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)] // a starting instant; the test moves time itself
    use super::*;

    #[test]
    fn a_flood_logs_the_limit_raises_the_alarm_once_and_sums_the_rest_up() {
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        let mut budget = LogBudget::new(3, minute);
        let admits: Vec<Admit> = (0..6).map(|_| budget.admit(t0)).collect();
        assert_eq!(
            admits,
            vec![
                Admit::Log,
                Admit::Log,
                Admit::Log,
                Admit::Flood,
                Admit::Quiet,
                Admit::Quiet
            ]
        );
        assert_eq!(budget.poll_summary(t0 + Duration::from_secs(30)), None);
        assert_eq!(budget.poll_summary(t0 + minute), Some(3));
        assert_eq!(budget.poll_summary(t0 + minute * 2), None, "reported once");
        // A new window logs again.
        assert_eq!(budget.admit(t0 + minute * 2), Admit::Log);
    }

    #[test]
    fn a_quiet_window_has_nothing_to_sum_up() {
        let t0 = Instant::now();
        let mut budget = LogBudget::new(3, Duration::from_secs(60));
        budget.admit(t0);
        budget.admit(t0);
        assert_eq!(budget.poll_summary(t0 + Duration::from_secs(61)), None);
        // The next event after the window opens a new one.
        assert_eq!(budget.admit(t0 + Duration::from_secs(61)), Admit::Log);
    }
}
