//! Inbound: each `deliver_sm` handled on a task of its own — a receipt correlated with
//! its row and published ([`receipt`]), an MO part stored, reassembled and published
//! ([`mo`], with the expiry scans of open MO indexes) — returning the status its
//! `deliver_sm_resp` gets. The bind (`bind::deliver`) spawns the task and answers; what a
//! receipt waits on of its bind is the bind's [`ProgressCell`]. The rules are the pure
//! crate's `smpp_connector::inbound`.

pub mod mo;
pub mod receipt;

use std::sync::Arc;

use actix::Addr;
use smpp_connector::config::Config;
use smpp_connector::inbound::BindProgress;

use crate::correlation::CorrelationActor;
use crate::nats::EventPublisher;
use crate::throttle::ThrottleActor;

/// What handling a `deliver_sm` needs (shared by every bind of the process).
#[derive(Clone)]
pub struct InboundDeps {
    pub config: Arc<Config>,
    /// Receipts wait for and read their rows here.
    pub correlation: Addr<CorrelationActor>,
    pub publisher: EventPublisher,
    /// The MO parts store (Redis).
    pub throttle: Addr<ThrottleActor>,
}

impl std::fmt::Debug for InboundDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundDeps").finish_non_exhaustive()
    }
}

/// One session waiting at its gate, for as long as this lives (dropped with the stream
/// when the connection ends, too).
#[derive(Debug)]
pub struct Blocked<'a>(&'a ProgressCell);

impl<'a> Blocked<'a> {
    fn new(progress: &'a ProgressCell) -> Self {
        progress
            .inbound_blocked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Blocked(progress)
    }
}

impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        self.0
            .inbound_blocked
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The bind's [`BindProgress`], shared with its receipts: the bind stores it after every
/// input (an atomic store, no lock, nobody woken); the few receipts still waiting after
/// their grace read it every 50 ms.
#[derive(Debug)]
pub struct ProgressCell {
    /// Since when the oldest unsettled submit waits, in nanoseconds after `base`;
    /// `u64::MAX`: none.
    oldest_unsettled: std::sync::atomic::AtomicU64,
    inbound_blocked: std::sync::atomic::AtomicU32,
    base: std::time::Instant,
}

impl Default for ProgressCell {
    fn default() -> Self {
        ProgressCell {
            oldest_unsettled: std::sync::atomic::AtomicU64::new(u64::MAX),
            inbound_blocked: std::sync::atomic::AtomicU32::new(0),
            base: crate::clock::now(),
        }
    }
}

impl ProgressCell {
    /// A session waits at its gate (its reads stopped) for as long as this lives.
    pub fn blocked(&self) -> Blocked<'_> {
        Blocked::new(self)
    }

    pub fn set_oldest_unsettled(&self, oldest: Option<std::time::Instant>) {
        let nanos = oldest.map_or(u64::MAX, |at| {
            at.saturating_duration_since(self.base).as_nanos() as u64
        });
        self.oldest_unsettled
            .store(nanos, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn load(&self) -> BindProgress {
        let nanos = self
            .oldest_unsettled
            .load(std::sync::atomic::Ordering::Relaxed);
        BindProgress {
            oldest_unsettled: (nanos != u64::MAX)
                .then(|| self.base + std::time::Duration::from_nanos(nanos)),
            inbound_blocked: self
                .inbound_blocked
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}
