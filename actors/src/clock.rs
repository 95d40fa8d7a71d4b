//! The service's monotonic clock for everything a bind decides with: tokio's clock, which
//! is the system's in production and the test's paused clock in the in-process tests, so
//! a bind's session timers, its backoff and its receipts' waits move together when a test
//! lets time pass (its one timer fires on tokio's clock; the core must see the same time).

/// Now, as the core's `now` arguments take it.
pub fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
