//! Which backends are down right now, and since when: the truth `/ready` tells beside its
//! status code, and `smpp_connector_backend_up{backend}` (1 up, 0 down).
//!
//! Each backend's owner reports what it sees — the NATS connection events, the
//! correlation store's writes and lookups, the throttle's Redis calls, the credential
//! fetches from OMS — so an outage shows from its first failure to its first success,
//! whatever the traffic.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::telemetry::metric;

/// A backend the service depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Nats,
    Postgres,
    Redis,
    Oms,
}

impl Backend {
    pub const ALL: [Backend; 4] = [
        Backend::Nats,
        Backend::Postgres,
        Backend::Redis,
        Backend::Oms,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Nats => "nats",
            Backend::Postgres => "postgres",
            Backend::Redis => "redis",
            Backend::Oms => "oms",
        }
    }

    fn slot(self) -> &'static AtomicU64 {
        &DOWN_SINCE[self as usize]
    }
}

/// Unix milliseconds of each backend's first failure in its current outage; 0 while up.
static DOWN_SINCE: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as u64)
        .max(1)
}

/// Register the gauge of every backend (at startup): 1 unless it already failed.
pub fn init() {
    for backend in Backend::ALL {
        let up = backend.slot().load(Ordering::Relaxed) == 0;
        metrics::gauge!(metric::BACKEND_UP, "backend" => backend.name()).set(if up {
            1.0
        } else {
            0.0
        });
    }
}

/// `backend` failed: down from now unless it already was. True when this starts an outage.
pub fn failed(backend: Backend) -> bool {
    let started = backend
        .slot()
        .compare_exchange(0, now_ms(), Ordering::Relaxed, Ordering::Relaxed)
        .is_ok();
    if started {
        metrics::gauge!(metric::BACKEND_UP, "backend" => backend.name()).set(0.0);
    }
    started
}

/// `backend` answered: up. The length of the outage this ends, if one.
pub fn answered(backend: Backend) -> Option<std::time::Duration> {
    let since = backend.slot().swap(0, Ordering::Relaxed);
    (since != 0).then(|| {
        metrics::gauge!(metric::BACKEND_UP, "backend" => backend.name()).set(1.0);
        std::time::Duration::from_millis(now_ms().saturating_sub(since))
    })
}

/// The backends down now: name and Unix milliseconds of the outage's start.
pub fn down() -> Vec<(&'static str, u64)> {
    Backend::ALL
        .iter()
        .filter_map(|b| {
            let since = b.slot().load(Ordering::Relaxed);
            (since != 0).then_some((b.name(), since))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the registry is process-wide.
    #[test]
    fn an_outage_lasts_from_the_first_failure_to_the_first_answer() {
        assert!(down().is_empty());
        assert!(
            failed(Backend::Postgres),
            "the first failure starts the outage"
        );
        let since = down()[0].1;
        assert!(
            !failed(Backend::Postgres),
            "later failures are the same outage"
        );
        assert_eq!(down(), vec![("postgres", since)]);
        assert!(failed(Backend::Oms));
        assert_eq!(
            down().iter().map(|d| d.0).collect::<Vec<_>>(),
            ["postgres", "oms"]
        );
        assert!(answered(Backend::Postgres).is_some());
        assert!(answered(Backend::Postgres).is_none(), "already up");
        assert!(answered(Backend::Oms).is_some());
        assert!(down().is_empty());
    }
}
