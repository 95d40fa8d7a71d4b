//! Actor health, what the operators of this service watch besides the binds themselves:
//! per actor (Supervisor, each BindActor, ThrottleActor, CorrelationActor,
//! HealthPublisherActor, OwnershipActor)
//!
//! - `smpp_connector_actor_restarts_total{actor,bind,reason}` — a bind restarts on every
//!   reconnect (the restart *is* the reconnect), with the reason it went down; `crashed`
//!   is a bind respawned after its task died;
//! - `smpp_connector_actor_mailbox_wait_seconds{actor,bind}` — how long a message waits in
//!   the mailbox before it is handled: every [`PROBE_INTERVAL`] the actor sends itself a
//!   [`Probe`], which queues behind everything already there (the backlog, in time);
//! - `smpp_connector_actor_handle_seconds{actor}` — time spent handling one message of
//!   the actor's busy kinds (PDUs, pulls, rows, receipts, grants, state changes);
//! - `smpp_connector_actor_uptime_seconds{actor,bind}` — since the actor last (re)started.
//!
//! actix does not expose a mailbox's length, so the backlog is measured by the wait it
//! causes, which is also what an operator needs to know ("is this actor keeping up?").

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use smpp_connector::config::BindKey;

use super::metric;

/// How often each actor measures its mailbox wait and uptime.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// The metric handles of one actor, and what `admin binds` shows of it.
#[derive(Debug, Clone)]
pub struct ActorHealth {
    actor: &'static str,
    bind: String,
    started: Instant,
    handle: metrics::Histogram,
    mailbox_wait: metrics::Gauge,
    uptime: metrics::Gauge,
    restarts: u64,
    last_restart: Option<String>,
    last_mailbox_wait: Duration,
}

/// One actor's health as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorSnapshot {
    pub actor: &'static str,
    /// The bind of a BindActor (`op/dir/id`), empty for the others.
    pub bind: String,
    /// Restarts in this process (a bind restarts on every reconnect).
    pub restarts: u64,
    pub last_restart_reason: Option<String>,
    /// How long the last probe waited in the mailbox.
    pub mailbox_wait_ms: u64,
    pub uptime_seconds: u64,
}

/// The latest snapshot of every shared actor (the binds answer for themselves), updated
/// at each probe.
fn shared_actors() -> &'static Mutex<BTreeMap<&'static str, ActorSnapshot>> {
    static SHARED: OnceLock<Mutex<BTreeMap<&'static str, ActorSnapshot>>> = OnceLock::new();
    SHARED.get_or_init(Default::default)
}

/// Snapshots of the shared actors (supervisor, throttle, correlation, health, ownership).
pub fn shared_snapshots() -> Vec<ActorSnapshot> {
    shared_actors()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect()
}

/// Sent by an actor to itself: handled after everything queued before it.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Probe {
    pub sent_at: Instant,
}

/// Records the time from its creation to its drop as one handling.
#[derive(Debug)]
pub struct HandleTimer {
    histogram: metrics::Histogram,
    started: Instant,
}

impl Drop for HandleTimer {
    fn drop(&mut self) {
        self.histogram.record(self.started.elapsed().as_secs_f64());
    }
}

impl ActorHealth {
    /// `actor`: the kind (supervisor, bind, throttle, correlation, health, ownership);
    /// `bind`: the bind of a BindActor.
    pub fn new(actor: &'static str, bind: Option<&BindKey>) -> Self {
        let bind = bind.map(ToString::to_string).unwrap_or_default();
        let labels = [("actor", actor.to_owned()), ("bind", bind.clone())];
        // 0 until the first crash, so an alert on its increase sees the first one.
        metrics::counter!(
            metric::ACTOR_RESTARTS,
            "actor" => actor,
            "bind" => bind.clone(),
            "reason" => "crashed"
        )
        .increment(0);
        ActorHealth {
            actor,
            handle: metrics::histogram!(metric::ACTOR_HANDLE_LATENCY, "actor" => actor),
            mailbox_wait: metrics::gauge!(metric::ACTOR_MAILBOX_WAIT, &labels),
            uptime: metrics::gauge!(metric::ACTOR_UPTIME, &labels),
            bind,
            started: Instant::now(),
            restarts: 0,
            last_restart: None,
            last_mailbox_wait: Duration::ZERO,
        }
    }

    /// What the admin API shows of this actor.
    pub fn snapshot(&self) -> ActorSnapshot {
        ActorSnapshot {
            actor: self.actor,
            bind: self.bind.clone(),
            restarts: self.restarts,
            last_restart_reason: self.last_restart.clone(),
            mailbox_wait_ms: self.last_mailbox_wait.as_millis() as u64,
            uptime_seconds: self.started.elapsed().as_secs(),
        }
    }

    /// The actor (re)started now; start probing its mailbox.
    pub fn started<A>(&mut self, ctx: &mut Context<A>)
    where
        A: Actor<Context = Context<A>> + Handler<Probe>,
    {
        self.started = Instant::now();
        self.uptime.set(0.0);
        ctx.run_interval(PROBE_INTERVAL, |_, ctx| {
            ctx.address().do_send(Probe {
                sent_at: Instant::now(),
            });
        });
    }

    /// The actor is restarting (a bind's reconnect, with the reason it went down). The
    /// admin API keeps the whole reason; the metric label only its code (`bind_failed`,
    /// not `bind_failed:0x…`): the part after `:` comes from the SMSC and is unbounded.
    pub fn restarted(&mut self, reason: &str) {
        self.restarts += 1;
        self.last_restart = Some(reason.to_owned());
        metrics::counter!(
            metric::ACTOR_RESTARTS,
            "actor" => self.actor,
            "bind" => self.bind.clone(),
            "reason" => restart_label(reason).to_owned()
        )
        .increment(1);
    }

    /// Time one message's handling (recorded when the timer drops).
    pub fn time(&self) -> HandleTimer {
        HandleTimer {
            histogram: self.handle.clone(),
            started: Instant::now(),
        }
    }

    /// A bind actor that was respawned by its supervisor (its task had died).
    pub fn bind_crashed(key: &BindKey) {
        metrics::counter!(
            metric::ACTOR_RESTARTS,
            "actor" => "bind",
            "bind" => key.to_string(),
            "reason" => "crashed"
        )
        .increment(1);
    }

    /// A probe came through the mailbox.
    pub fn probed(&mut self, probe: &Probe) {
        self.last_mailbox_wait = probe.sent_at.elapsed();
        self.mailbox_wait.set(self.last_mailbox_wait.as_secs_f64());
        self.uptime.set(self.started.elapsed().as_secs_f64());
        if self.bind.is_empty() {
            shared_actors()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(self.actor, self.snapshot());
        }
    }
}
/// The `reason` label of a restart: the reason's code, before any `:` detail.
fn restart_label(reason: &str) -> &str {
    reason.split(':').next().unwrap_or(reason)
}
