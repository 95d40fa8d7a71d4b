//! Metric handles of one bind, registered once with its labels (mno, direction, bindId).

use std::collections::HashMap;

use smpp_connector::config::BindKey;
use smpp_connector::protocol::pdu::CommandStatus;
use smpp_connector::protocol::session::BindState;

use super::metric;

/// Metric handles of one bind, registered once (labels mno, direction, bindId).
pub struct BindMetrics {
    pub(crate) labels: Vec<metrics::Label>,
    pub(crate) submits: metrics::Counter,
    pub(crate) reconnects: metrics::Counter,
    pub(crate) enquire_link_timeouts: metrics::Counter,
    pub(crate) state_changes: metrics::Counter,
    pub(crate) bind_up: metrics::Gauge,
    pub(crate) window_inflight: metrics::Gauge,
    pub(crate) window_dynamic: metrics::Gauge,
    pub(crate) drain_seconds: metrics::Gauge,
    pub(crate) intake_paused: metrics::Gauge,
    /// deliver_sm read and not answered, over the bind's sessions.
    pub(crate) inbound_held: metrics::Gauge,
    pub(crate) half_closed: metrics::Counter,
    pub(crate) ingress_bytes: metrics::Counter,
    /// `smpp_connector_bind_state{state}`: 1 for the current state (`BindState::ALL` order).
    pub(crate) states: [metrics::Gauge; 6],
    pub(crate) egress_bytes: metrics::Counter,
    pub(crate) sequence_skips: metrics::Counter,
    pub(crate) malformed: metrics::Counter,
    pub(crate) unexpected: metrics::Counter,
    pub(crate) submit_timeouts: metrics::Counter,
    pub(crate) possible_duplicates: metrics::Counter,
    pub(crate) acks: metrics::Counter,
    pub(crate) naks: metrics::Counter,
    /// Concatenated MO messages open in this bind's index (labels mno, bindId).
    pub(crate) concat_buffer: metrics::Gauge,
    statuses: HashMap<u32, metrics::Counter>,
    /// Per pull slot (P0..P3, pinned): pulled, ack, nak.
    lanes: [[metrics::Counter; 3]; 5],
}

/// `lane` label of each pull slot (`intake::PINNED_SLOT` is the bind's pinned consumer).
const LANES: [&str; 5] = ["P0", "P1", "P2", "P3", "pinned"];
const LANE_OUTCOMES: [&str; 3] = ["pulled", "ack", "nak"];

impl std::fmt::Debug for BindMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindMetrics")
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl BindMetrics {
    pub(crate) fn new(key: &BindKey) -> Self {
        let labels = bind_labels(key);
        let mno = vec![metrics::Label::new("mno", key.operator_id.to_string())];
        // Counted by the supervisor when it respawns the bind; 0 until then.
        metrics::counter!(metric::BIND_CRASHES, labels.clone()).increment(0);
        for kind in PROTOCOL_VIOLATION_KINDS {
            protocol_violation(&labels, kind).increment(0);
        }
        let outcome = |name: &'static str| {
            let mut l = mno.clone();
            l.push(metrics::Label::new("outcome", name));
            metrics::counter!(metric::DISPATCH_OUTCOMES, l)
        };
        BindMetrics {
            submits: metrics::counter!(metric::SUBMITS, labels.clone()),
            reconnects: metrics::counter!(metric::RECONNECT_ATTEMPTS, labels.clone()),
            enquire_link_timeouts: metrics::counter!(metric::ENQUIRE_LINK_TIMEOUTS, labels.clone()),
            state_changes: metrics::counter!(metric::STATE_CHANGES, labels.clone()),
            bind_up: metrics::gauge!(metric::BIND_UP, labels.clone()),
            window_inflight: metrics::gauge!(metric::WINDOW_INFLIGHT, labels.clone()),
            window_dynamic: metrics::gauge!(metric::WINDOW_DYNAMIC, labels.clone()),
            drain_seconds: metrics::gauge!(metric::DRAIN_SECONDS, labels.clone()),
            intake_paused: metrics::gauge!(metric::BIND_INTAKE_PAUSED, labels.clone()),
            inbound_held: metrics::gauge!(metric::INBOUND_HELD, labels.clone()),
            half_closed: metrics::counter!(metric::BIND_HALF_CLOSED, labels.clone()),
            ingress_bytes: metrics::counter!(metric::INGRESS_BYTES, labels.clone()),
            states: BindState::ALL.map(|state| {
                let mut l = labels.clone();
                l.push(metrics::Label::new("state", state.as_str()));
                metrics::gauge!(metric::BIND_STATE, l)
            }),
            egress_bytes: metrics::counter!(metric::EGRESS_BYTES, labels.clone()),
            sequence_skips: metrics::counter!(metric::SEQ_SKIPS, labels.clone()),
            malformed: metrics::counter!(metric::MALFORMED_PDUS, labels.clone()),
            unexpected: metrics::counter!(metric::UNEXPECTED_PDUS, labels.clone()),
            submit_timeouts: metrics::counter!(metric::SUBMIT_TIMEOUTS, labels.clone()),
            possible_duplicates: metrics::counter!(metric::POSSIBLE_DUPLICATES, labels.clone()),
            acks: outcome("ack"),
            naks: outcome("nak"),
            concat_buffer: metrics::gauge!(
                metric::CONCAT_BUFFER,
                "mno" => key.operator_id.to_string(),
                "bindId" => key.bind_id.to_string()
            ),
            statuses: HashMap::new(),
            lanes: LANES.map(|lane| {
                LANE_OUTCOMES.map(|outcome| {
                    let mut l = mno.clone();
                    l.push(metrics::Label::new("lane", lane));
                    l.push(metrics::Label::new("outcome", outcome));
                    metrics::counter!(metric::LANE_MESSAGES, l)
                })
            }),
            labels,
        }
    }

    /// The bind no longer runs here (released, moved, shut down): its gauges go to 0 so
    /// this pod does not keep reporting a state, a drain or a buffer of a bind another
    /// pod now runs.
    pub(crate) fn clear_gauges(&self) {
        for gauge in self.states.iter().chain([
            &self.bind_up,
            &self.window_inflight,
            &self.drain_seconds,
            &self.intake_paused,
            &self.inbound_held,
            &self.concat_buffer,
        ]) {
            gauge.set(0.0);
        }
    }

    /// Set `smpp_connector_bind_state`: 1 for `state`, 0 for the others.
    pub(crate) fn set_state(&self, state: BindState) {
        for (gauge, each) in self.states.iter().zip(BindState::ALL) {
            gauge.set(if each == state { 1.0 } else { 0.0 });
        }
    }

    pub(crate) fn status(&mut self, status: CommandStatus) -> &metrics::Counter {
        let labels = &self.labels;
        // Keyed by label: every unnamed status shares the one `other` series.
        let key = if status.label() == "other" {
            u32::MAX
        } else {
            status.0
        };
        self.statuses.entry(key).or_insert_with(|| {
            let mut l = labels.clone();
            l.push(metrics::Label::new("esme_status", status.label()));
            metrics::counter!(metric::RESPONSE_STATUS, l)
        })
    }

    /// `smpp_connector_protocol_violations_total{kind}` of this bind (`kind` is one of a
    /// fixed set of names, never a value from the SMSC).
    pub(crate) fn violation(&self, kind: &'static str) -> metrics::Counter {
        protocol_violation(&self.labels, kind)
    }

    /// The counter of one pull slot (0..=3 the lanes, 4 pinned) and outcome ("pulled",
    /// "ack", "nak").
    pub(crate) fn lane(&self, slot: usize, outcome: &str) -> &metrics::Counter {
        let lane = &self.lanes[slot.min(LANES.len() - 1)];
        let index = LANE_OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(0);
        &lane[index]
    }
}

/// The `kind`s of `smpp_connector_protocol_violations_total` (exported at 0 from the start).
pub(crate) const PROTOCOL_VIOLATION_KINDS: [&str; 2] =
    ["message_id_too_long", "receipt_id_too_long"];

/// `smpp_connector_protocol_violations_total` with a bind's labels and `kind`.
pub(crate) fn protocol_violation(
    labels: &[metrics::Label],
    kind: &'static str,
) -> metrics::Counter {
    let mut l = labels.to_vec();
    l.push(metrics::Label::new("kind", kind));
    metrics::counter!(metric::PROTOCOL_VIOLATIONS, l)
}

/// A bind's labels (mno, direction, bindId).
pub(crate) fn bind_labels(key: &BindKey) -> Vec<metrics::Label> {
    vec![
        metrics::Label::new("mno", key.operator_id.to_string()),
        metrics::Label::new("direction", key.direction.as_str()),
        metrics::Label::new("bindId", key.bind_id.to_string()),
    ]
}
