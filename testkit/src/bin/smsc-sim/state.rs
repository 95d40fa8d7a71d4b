//! State shared by every connection task and the control API.
//!
//! Owns the fixed configuration, the live behaviour, the counters behind `GET /stats`,
//! the registry of open connections (used for receipt routing, `/inject` and
//! `/disconnect`), the global message-id counter and the shutdown token.
//!
//! It must not do socket I/O: connections own their sockets (`conn.rs`).

use smpp_connector::protocol::pdu::SmBody;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use smpp_connector::protocol::pdu::{BindMode, CommandStatus};
use tokio_util::sync::CancellationToken;

use crate::behaviour::{BehaviourCell, MessageIdFormat};
use crate::conn::ConnShared;
use crate::record::Recorder;

/// Settings fixed for the simulator's lifetime.
#[derive(Clone)]
pub struct SimConfig {
    pub system_id: String,
    pub password: String,
    /// Interval of the simulator's own enquire_link; 0 = never.
    pub enquire_link_ms: u64,
    pub max_pdu_len: usize,
    pub message_id_start: u64,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("system_id", &self.system_id)
            .field("password", &"<redacted>")
            .field("enquire_link_ms", &self.enquire_link_ms)
            .field("max_pdu_len", &self.max_pdu_len)
            .field("message_id_start", &self.message_id_start)
            .finish()
    }
}

/// Counters behind `GET /stats`. All monotonic except `deliver_sm_unanswered`.
#[derive(Debug, Default)]
pub struct Stats {
    received: Mutex<BTreeMap<&'static str, u64>>,
    sent: Mutex<BTreeMap<&'static str, u64>>,
    deliver_sm_resp_status: Mutex<BTreeMap<String, u64>>,
    pub connections_total: AtomicU64,
    pub bind_attempts: AtomicU64,
    pub binds: AtomicU64,
    pub bind_rejected: AtomicU64,
    pub submit_ok: AtomicU64,
    pub submit_failed: AtomicU64,
    pub submit_dropped: AtomicU64,
    pub receipts_queued: AtomicU64,
    pub receipts_unroutable: AtomicU64,
    pub deliver_sm_sent: AtomicU64,
    pub deliver_sm_resp: AtomicU64,
    pub deliver_sm_unanswered: AtomicI64,
    pub enquire_link_sent: AtomicU64,
    pub enquire_link_unanswered: AtomicU64,
    pub malformed: AtomicU64,
    /// PDUs the golden decoder found wrong or read differently (should stay 0).
    pub golden_errors: AtomicU64,
    /// TLS handshakes that failed or timed out (with `--tls-cert`).
    pub tls_failures: AtomicU64,
}

fn bump(map: &Mutex<BTreeMap<&'static str, u64>>, key: &'static str) {
    *map.lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_default() += 1;
}

impl Stats {
    pub fn count_received(&self, command: &'static str) {
        bump(&self.received, command);
    }

    pub fn count_sent(&self, command: &'static str) {
        bump(&self.sent, command);
    }

    pub fn count_deliver_sm_resp(&self, status: CommandStatus) {
        self.deliver_sm_resp.fetch_add(1, Ordering::Relaxed);
        *self
            .deliver_sm_resp_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(status.name())
            .or_default() += 1;
    }

    /// Zero every counter (`POST /stats/reset`). Pending deliver_sm stay pending.
    pub fn reset(&self) {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.deliver_sm_resp_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        for counter in [
            &self.connections_total,
            &self.bind_attempts,
            &self.binds,
            &self.bind_rejected,
            &self.submit_ok,
            &self.submit_failed,
            &self.submit_dropped,
            &self.receipts_queued,
            &self.receipts_unroutable,
            &self.deliver_sm_sent,
            &self.deliver_sm_resp,
            &self.enquire_link_sent,
            &self.enquire_link_unanswered,
            &self.malformed,
            &self.golden_errors,
            &self.tls_failures,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        self.deliver_sm_unanswered.store(0, Ordering::Relaxed);
    }
}

/// Everything a connection task or a control handler needs.
#[derive(Debug)]
pub struct SimState {
    pub config: SimConfig,
    pub behaviour: BehaviourCell,
    pub stats: Stats,
    pub recorder: Recorder,
    /// Cancelled by `POST /shutdown` and by signals.
    pub shutdown: CancellationToken,
    conns: Mutex<BTreeMap<u64, Arc<ConnShared>>>,
    next_conn_id: AtomicU64,
    message_ids: AtomicU64,
    receiver_round_robin: AtomicUsize,
    /// deliver_sm not acknowledged by an ESME that went away (store and forward): by
    /// system_id, delivered again when a receiver of that system_id binds.
    undelivered: Mutex<Vec<(String, SmBody)>>,
}

impl SimState {
    pub fn new(config: SimConfig, behaviour: BehaviourCell, recorder: Recorder) -> SimState {
        let start = config.message_id_start;
        SimState {
            config,
            behaviour,
            stats: Stats::default(),
            recorder,
            shutdown: CancellationToken::new(),
            conns: Mutex::new(BTreeMap::new()),
            next_conn_id: AtomicU64::new(1),
            message_ids: AtomicU64::new(start),
            receiver_round_robin: AtomicUsize::new(0),
            undelivered: Mutex::new(Vec::new()),
        }
    }

    pub fn count_tls_failure(&self) {
        self.stats.tls_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Ids start at 1 and are never reused within a run.
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A message id unique within this run.
    pub fn next_message_id(&self, format: MessageIdFormat) -> String {
        let n = self.message_ids.fetch_add(1, Ordering::Relaxed);
        match format {
            MessageIdFormat::Hex => format!("{n:x}"),
            MessageIdFormat::Dec => n.to_string(),
            MessageIdFormat::Uuid => uuid::Uuid::new_v4().to_string(),
            MessageIdFormat::Oversized => {
                let mut id = String::with_capacity(crate::behaviour::OVERSIZED_MESSAGE_ID + 32);
                while id.len() < crate::behaviour::OVERSIZED_MESSAGE_ID {
                    id.push_str(&uuid::Uuid::new_v4().simple().to_string());
                }
                id.truncate(crate::behaviour::OVERSIZED_MESSAGE_ID);
                id
            }
        }
    }

    pub fn register(&self, conn: Arc<ConnShared>) {
        self.stats.connections_total.fetch_add(1, Ordering::Relaxed);
        self.lock_conns().insert(conn.id, conn);
    }

    pub fn unregister(&self, id: u64) {
        self.lock_conns().remove(&id);
    }

    pub fn conn(&self, id: u64) -> Option<Arc<ConnShared>> {
        self.lock_conns().get(&id).cloned()
    }

    /// Every open connection, by id.
    pub fn conns(&self) -> Vec<Arc<ConnShared>> {
        self.lock_conns().values().cloned().collect()
    }

    /// A bound connection of `system_id` that can receive, round-robin among them.
    /// Keep a deliver_sm for the next receiver of `system_id` (store and forward).
    pub fn store_undelivered(&self, system_id: &str, body: SmBody) {
        self.undelivered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((system_id.to_owned(), body));
    }

    /// The stored deliver_sm of `system_id`, taken.
    pub fn take_undelivered(&self, system_id: &str) -> Vec<SmBody> {
        let mut stored = self.undelivered.lock().unwrap_or_else(|e| e.into_inner());
        let (theirs, others): (Vec<_>, Vec<_>) =
            stored.drain(..).partition(|(id, _)| id == system_id);
        *stored = others;
        theirs.into_iter().map(|(_, body)| body).collect()
    }

    pub fn receiver_for(&self, system_id: &str) -> Option<Arc<ConnShared>> {
        let candidates: Vec<Arc<ConnShared>> = self
            .lock_conns()
            .values()
            .filter(|c| {
                c.bound()
                    .is_some_and(|b| b.mode.can_receive() && b.system_id == system_id)
            })
            .cloned()
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let turn = self.receiver_round_robin.fetch_add(1, Ordering::Relaxed);
        candidates.get(turn % candidates.len()).cloned()
    }

    fn lock_conns(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<ConnShared>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `GET /stats` document.
    pub fn stats_json(&self) -> Value {
        let conns = self.conns();
        let (mut trx, mut tx, mut rx) = (0u64, 0u64, 0u64);
        for conn in &conns {
            match conn.bound().map(|b| b.mode) {
                Some(BindMode::Transceiver) => trx += 1,
                Some(BindMode::Transmitter) => tx += 1,
                Some(BindMode::Receiver) => rx += 1,
                None => {}
            }
        }
        let s = &self.stats;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let received = s.received.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let sent = s.sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let resp_status = s
            .deliver_sm_resp_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        json!({
            "connections": conns.len(),
            "connections_total": load(&s.connections_total),
            "bound": {"trx": trx, "tx": tx, "rx": rx},
            "received": received,
            "sent": sent,
            "submit_ok": load(&s.submit_ok),
            "submit_failed": load(&s.submit_failed),
            "submit_dropped": load(&s.submit_dropped),
            "receipts_queued": load(&s.receipts_queued),
            "receipts_unroutable": load(&s.receipts_unroutable),
            "deliver_sm_sent": load(&s.deliver_sm_sent),
            "deliver_sm_resp": load(&s.deliver_sm_resp),
            "deliver_sm_resp_status": resp_status,
            "deliver_sm_unanswered": s.deliver_sm_unanswered.load(Ordering::Relaxed).max(0),
            "enquire_link_sent": load(&s.enquire_link_sent),
            "enquire_link_unanswered": load(&s.enquire_link_unanswered),
            "malformed": load(&s.malformed),
            "golden_errors": load(&s.golden_errors),
            "tls_failures": load(&s.tls_failures),
            "bind_attempts": load(&s.bind_attempts),
            "binds": load(&s.binds),
            "bind_rejected": load(&s.bind_rejected),
        })
    }
}
