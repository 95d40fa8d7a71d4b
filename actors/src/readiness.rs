//! `Readiness`: what `/ready` reads, written by the supervisor (binds bound), the
//! ownership actor (standby) and the shutdown sequence.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// What `/ready` reads: binds bound now, whether this pod is a standby, and whether
/// shutdown began.
#[derive(Debug, Default)]
pub struct Readiness {
    bound: AtomicUsize,
    standby: AtomicBool,
    shutting_down: AtomicBool,
}

impl Readiness {
    /// Ready while at least one bind is BOUND — or while this pod is a standby: it owns
    /// no bind because every bind is owned by another live pod, and takes one over when a
    /// pod goes away — and the process is not shutting down. Without the standby case a
    /// Deployment with more pods than binds could never finish a rolling update: the new
    /// pod would wait for readiness it can only get by taking a bind the old pods hold.
    pub fn is_ready(&self) -> bool {
        !self.shutting_down.load(Ordering::Relaxed)
            && (self.bound.load(Ordering::Relaxed) > 0 || self.standby.load(Ordering::Relaxed))
    }

    /// Set by the ownership actor after each round.
    pub fn set_standby(&self, standby: bool) {
        self.standby.store(standby, Ordering::Relaxed);
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Binds BOUND now.
    pub fn bound(&self) -> usize {
        self.bound.load(Ordering::Relaxed)
    }

    pub fn is_standby(&self) -> bool {
        self.standby.load(Ordering::Relaxed)
    }

    /// Set by the supervisor when a bind changes state.
    pub fn set_bound(&self, bound: usize) {
        self.bound.store(bound, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub fn set_bound_for_test(&self, bound: usize) {
        self.bound.store(bound, Ordering::Relaxed);
    }
}
