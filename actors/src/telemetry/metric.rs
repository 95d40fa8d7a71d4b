//! Metric names, each written once, and their descriptions. Labels are bounded: operator,
//! direction, bind id, state, ESME status name, outcome — never anything per message.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

pub const SESSIONS: &str = "smpp_connector_sessions_total";
pub const BIND_UP: &str = "smpp_connector_bind_up";
pub const STATE_CHANGES: &str = "smpp_connector_bind_state_changes_total";
pub const SUBMITS: &str = "smpp_connector_submit_total";
pub const RESPONSE_STATUS: &str = "smpp_response_status_total";
pub const RECONNECT_ATTEMPTS: &str = "smpp_connector_reconnect_attempts_total";
pub const ENQUIRE_LINK_TIMEOUTS: &str = "smpp_connector_enquire_link_timeout_total";
pub const WINDOW_INFLIGHT: &str = "smpp_window_inflight";
pub const WINDOW_DYNAMIC: &str = "smpp_window_dynamic";
pub const SEQ_SKIPS: &str = "smpp_seq_skip_total";
pub const MALFORMED_PDUS: &str = "smpp_connector_malformed_pdus_total";
pub const UNEXPECTED_PDUS: &str = "smpp_connector_unexpected_pdus_total";
pub const INBOUND_HELD: &str = "smpp_connector_inbound_held";
pub const RECEIPT_LOOKUPS: &str = "smpp_connector_receipt_lookups_total";
pub const PROTOCOL_VIOLATIONS: &str = "smpp_connector_protocol_violations_total";
pub const CORRELATION_ROWS_REFUSED: &str = "smpp_connector_correlation_rows_refused_total";
pub const SUBMIT_TIMEOUTS: &str = "smpp_connector_submit_timeout_total";
pub const DISPATCH_OUTCOMES: &str = "smpp_connector_dispatch_total";
pub const DEAD_LETTERS: &str = "smpp_connector_dead_letter_total";
pub const DLR_EVENTS: &str = "smpp_connector_dlr_total";
pub const SUBMIT_LATENCY: &str = "smpp_connector_submit_latency_seconds";
pub const DISPATCH_LATENCY: &str = "smpp_connector_dispatch_latency_seconds";
pub const DISPATCH_AGE: &str = "smpp_connector_dispatch_age_seconds";
pub const DLR_LATENCY: &str = "smpp_connector_dlr_latency_seconds";
pub const CORRELATION_SWEPT: &str = "smpp_connector_correlation_swept_total";
pub const CORRELATION_SWEEP_LATENCY: &str = "smpp_connector_correlation_sweep_seconds";
pub const RECEIPT_CORRELATION: &str = "smpp_connector_receipt_correlation_total";
pub const RECEIPT_LOOKUP_LATENCY: &str = "smpp_connector_receipt_lookup_seconds";
pub const BACKEND_ERRORS: &str = "smpp_connector_backend_errors_total";
pub const BACKEND_UP: &str = "smpp_connector_backend_up";
pub const BIND_CRASHES: &str = "smpp_connector_bind_crashes_total";
pub const CORRELATION_BATCH: &str = "smpp_connector_correlation_batch_rows";
pub const POSSIBLE_DUPLICATES: &str = "smpp_connector_possible_duplicate_submits_total";
pub const LONG_MESSAGE_SEGMENTS: &str = "smpp_connector_long_message_segments_total";
pub const ENCODING: &str = "smpp_encoding_total";
pub const FINGERPRINT_MISMATCHES: &str = "smpp_connector_fingerprint_mismatch_total";
pub const GSM7_FORCE_REPLACEMENTS: &str = "smpp_connector_gsm7_force_replacements_total";
pub const BIND_OWNER_CHANGES: &str = "smpp_bind_owner_changes_total";
pub const BIND_ORPHANS: &str = "smpp_bind_orphan_total";
pub const BIND_DOUBLE_CLAIMS: &str = "smpp_bind_double_claim_total";
pub const BIND_INTAKE_PAUSED: &str = "smpp_connector_bind_intake_paused";
pub const FAILOVERS: &str = "smpp_connector_failover_total";
pub const ADMIN_ACTIONS: &str = "smpp_connector_admin_actions_total";
pub const REDELIVERY_LOOKUPS: &str = "smpp_connector_redelivery_lookups_total";
pub const SUBMIT_TO_RECEIPT: &str = "smpp_connector_submit_to_receipt_seconds";
pub const EGRESS_BYTES: &str = "smpp_connector_egress_bytes_total";
pub const INGRESS_BYTES: &str = "smpp_connector_ingress_bytes_total";
pub const TPS_LIMIT: &str = "smpp_connector_tps_limit";
pub const LANE_PENDING: &str = "smpp_connector_lane_pending";
pub const BIND_OWNER: &str = "smpp_bind_owner";
pub const BIND_STATE: &str = "smpp_connector_bind_state";
pub const ACTOR_RESTARTS: &str = "smpp_connector_actor_restarts_total";
pub const ACTOR_MAILBOX_WAIT: &str = "smpp_connector_actor_mailbox_wait_seconds";
pub const ACTOR_HANDLE_LATENCY: &str = "smpp_connector_actor_handle_seconds";
pub const ACTOR_UPTIME: &str = "smpp_connector_actor_uptime_seconds";
pub const CONCAT_COMPLETE: &str = "smpp_concat_complete_total";
pub const CONCAT_PARTIAL: &str = "smpp_concat_partial_total";
pub const CONCAT_BUFFER: &str = "smpp_concat_buffer_size";
pub const CONCAT_PARTS: &str = "smpp_concat_parts_total";
pub const CONCAT_LOST: &str = "smpp_concat_lost_total";
pub const CONCAT_REF_FALLBACKS: &str = "smpp_connector_concat_ref_fallback_total";
pub const ROW_RETRIES: &str = "smpp_connector_correlation_row_retries_total";
pub const BIND_DEGRADED: &str = "smpp_connector_bind_degraded_total";
pub const BIND_HALF_CLOSED: &str = "smpp_bind_half_closed_total";
pub const DRAIN_SECONDS: &str = "smpp_connector_drain_seconds";
pub const LANE_MESSAGES: &str = "smpp_connector_lane_messages_total";
pub const TPS_FAIL_OPEN_TOTAL: &str = "smpp_connector_tps_fail_open_total";
pub const TPS_FAIL_OPEN: &str = "smpp_connector_tps_fail_open";
pub const TPS_THROTTLED: &str = "smpp_connector_tps_throttle_total";
pub const TPS_GRANT_LATENCY: &str = "smpp_connector_tps_grant_seconds";

/// Register descriptions (called once at startup).
pub fn describe_all() {
    describe_gauge!(SESSIONS, "Binds by operator, direction and state.");
    describe_gauge!(BIND_UP, "1 while the bind is BOUND, else 0.");
    describe_counter!(STATE_CHANGES, "Bind state transitions.");
    describe_counter!(SUBMITS, "submit_sm PDUs written.");
    describe_counter!(RESPONSE_STATUS, "submit_sm_resp by ESME status.");
    describe_counter!(RECONNECT_ATTEMPTS, "Failed connection or bind attempts.");
    describe_counter!(
        ENQUIRE_LINK_TIMEOUTS,
        "enquire_link without an answer in time."
    );
    describe_gauge!(WINDOW_INFLIGHT, "submit_sm waiting for submit_sm_resp.");
    describe_gauge!(WINDOW_DYNAMIC, "Current (adaptive) window size.");
    describe_counter!(
        SEQ_SKIPS,
        "Sequence numbers skipped because still in flight (should stay 0)."
    );
    describe_counter!(
        MALFORMED_PDUS,
        "PDUs from the SMSC that did not decode (answered with generic_nack)."
    );
    describe_counter!(
        UNEXPECTED_PDUS,
        "Legal PDUs the SMSC sent where they do not belong."
    );
    describe_gauge!(
        INBOUND_HELD,
        "deliver_sm read from the SMSC and not answered yet (at INBOUND_WINDOW per session the bind stops reading and the SMSC waits on TCP)."
    );
    describe_counter!(
        RECEIPT_LOOKUPS,
        "Receipts asked of PostgreSQL (one per receipt per statement): a receipt without a row is asked twice, not once per retry."
    );
    describe_counter!(
        PROTOCOL_VIOLATIONS,
        "Fields from the SMSC that break SMPP 3.4 but are still handled, by kind (message_id_too_long: a submit_sm_resp id over 64 octets, stored as its digest; receipt_id_too_long: the same in a receipt)."
    );
    describe_counter!(
        CORRELATION_ROWS_REFUSED,
        "Correlation rows PostgreSQL refused for good (SQLSTATE class 22, 23 or 54): the segment was accepted by the SMSC, is never sent again, and its receipt cannot be correlated."
    );
    describe_counter!(SUBMIT_TIMEOUTS, "submit_sm without submit_sm_resp in time.");
    describe_counter!(
        DISPATCH_OUTCOMES,
        "Dispatch commands by outcome (ack, nak, dead_letter, rejected)."
    );
    describe_counter!(DEAD_LETTERS, "Dispatch commands dead-lettered, by reason.");
    describe_counter!(
        DLR_EVENTS,
        "Delivery receipts published, by status and correlation."
    );
    describe_histogram!(
        SUBMIT_LATENCY,
        Unit::Seconds,
        "submit_sm written to submit_sm_resp read."
    );
    describe_histogram!(
        DISPATCH_LATENCY,
        Unit::Seconds,
        "Dispatch command fetched to ACK sent."
    );
    describe_histogram!(
        TPS_GRANT_LATENCY,
        Unit::Seconds,
        "TPS budget asked (one Redis round trip per pull) to tokens in hand."
    );
    describe_histogram!(
        DISPATCH_AGE,
        Unit::Seconds,
        "Dispatch command stored by JetStream to ACK sent: the time it waited in the stream included (NATS server clock against the pod's)."
    );
    describe_counter!(
        CORRELATION_SWEPT,
        "Correlation rows deleted after their expires_at (72 h after submit)."
    );
    describe_histogram!(
        CORRELATION_SWEEP_LATENCY,
        Unit::Seconds,
        "One sweep of expired correlation rows (batches of 10,000, at most 5 s)."
    );
    describe_counter!(
        RECEIPT_CORRELATION,
        "Receipts by correlation result: matched, matched_after_wait (it overtook its submit_sm_resp or row), unmatched, store_error."
    );
    describe_histogram!(
        RECEIPT_LOOKUP_LATENCY,
        Unit::Seconds,
        "One receipt match: asked of the correlation actor to answered (batching and the UPDATE included)."
    );
    describe_histogram!(
        DLR_LATENCY,
        Unit::Seconds,
        "deliver_sm read to deliver_sm_resp written."
    );
    describe_counter!(
        BACKEND_ERRORS,
        "Errors talking to NATS, PostgreSQL, Redis or OMS."
    );
    describe_gauge!(
        BACKEND_UP,
        "0 from a backend's first failure to its first answer (nats, postgres, redis, oms), else 1."
    );
    describe_counter!(
        BIND_CRASHES,
        "Bind actors that ended without stopping cleanly and were respawned."
    );
    describe_histogram!(CORRELATION_BATCH, "Rows per correlation INSERT batch.");
    describe_counter!(
        POSSIBLE_DUPLICATES,
        "Submits NAKed after being written without a response (the SMSC may have them)."
    );
    describe_counter!(
        LONG_MESSAGE_SEGMENTS,
        "Segments of long messages, by strategy."
    );
    describe_counter!(
        ENCODING,
        "Messages by encoding and detection (auto, forced)."
    );
    describe_counter!(
        FINGERPRINT_MISMATCHES,
        "segmentFingerprint in a command that differs from ours."
    );
    describe_counter!(
        GSM7_FORCE_REPLACEMENTS,
        "Characters replaced by '?' under GSM7_FORCE."
    );
    describe_counter!(
        CONCAT_REF_FALLBACKS,
        "Outages of the Redis concatenation-reference blocks (a local counter was used)."
    );
    describe_counter!(
        BIND_OWNER_CHANGES,
        "Binds this pod claimed, gave up or lost in NATS KV (smpp-bind-owners)."
    );
    describe_counter!(
        BIND_ORPHANS,
        "Owner keys the reconciler deleted because their pod no longer heartbeats."
    );
    describe_counter!(
        BIND_DOUBLE_CLAIMS,
        "Binds the reconciler found run by a pod the owner key does not name (seen in two rounds)."
    );
    describe_gauge!(
        BIND_INTAKE_PAUSED,
        "1 while an admin drain keeps the bind from taking new messages (it stays bound)."
    );
    describe_counter!(
        FAILOVERS,
        "Primary/backup transitions by event (failover: the backup bound for a primary; failback: the primary back)."
    );
    describe_histogram!(
        SUBMIT_TO_RECEIPT,
        Unit::Seconds,
        "submit_sm accepted (its correlation row) to its delivery receipt correlated, by operator."
    );
    describe_counter!(
        EGRESS_BYTES,
        Unit::Bytes,
        "Bytes written to the SMSC, per bind."
    );
    describe_counter!(
        INGRESS_BYTES,
        Unit::Bytes,
        "Bytes read from the SMSC, per bind."
    );
    describe_gauge!(
        TPS_LIMIT,
        "The operator's TPS limit (submits per second across all binds and pods), from OMS."
    );
    describe_gauge!(
        LANE_PENDING,
        "Dispatch commands waiting in JetStream per lane consumer (not yet delivered): the lag."
    );
    describe_gauge!(
        BIND_OWNER,
        "1 for each bind this pod owns (label pod), 0 once it no longer does."
    );
    describe_gauge!(
        BIND_STATE,
        "1 for the bind's current state (DISCONNECTED, CONNECTING, BOUND, HALF_CLOSED_TX, DRAINING, UNBINDING), 0 for the others."
    );
    describe_counter!(
        ACTOR_RESTARTS,
        "Actor restarts by actor and reason (a bind restarts on every reconnect; crashed = respawned after a panic)."
    );
    describe_gauge!(
        ACTOR_MAILBOX_WAIT,
        Unit::Seconds,
        "How long a message waits in the actor's mailbox before it is handled (a probe every 5 s): the backlog, in time."
    );
    describe_histogram!(
        ACTOR_HANDLE_LATENCY,
        Unit::Seconds,
        "Time an actor spends handling one message, by actor kind."
    );
    describe_gauge!(ACTOR_UPTIME, "Seconds since the actor last (re)started.");
    describe_counter!(
        BIND_HALF_CLOSED,
        "Times a bind entered HALF_CLOSED_TX (3 consecutive ESME_RSUBMITFAIL), per bind."
    );
    describe_counter!(
        REDELIVERY_LOOKUPS,
        "Delivered commands checked against their correlation rows before sending, by reason (redelivered, stored_before_reconnect)."
    );
    describe_counter!(
        ADMIN_ACTIONS,
        "Admin API requests by action and result (ok, not_found, bad_request, unauthorized, rate_limited)."
    );
    describe_counter!(
        CONCAT_COMPLETE,
        "Concatenated MO messages published complete."
    );
    describe_counter!(
        CONCAT_PARTIAL,
        "Concatenated MO messages published incomplete (their window ended first)."
    );
    describe_gauge!(
        CONCAT_BUFFER,
        "Concatenated MO messages waiting for parts in a bind's Redis index (cluster-wide; it should not grow)."
    );
    describe_counter!(
        CONCAT_PARTS,
        "Concatenated MO parts by result: stored, repeat, busy (being published partial, retried), conflict (reference reused), not_stored (Redis down, retried)."
    );
    describe_counter!(
        CONCAT_LOST,
        "Open MO messages whose parts expired in Redis before any scan published them (no owner of their bind for an hour)."
    );
    describe_counter!(
        ROW_RETRIES,
        "Correlation row writes retried after a failure (the segment is never resent)."
    );
    describe_counter!(
        BIND_DEGRADED,
        "smpp.bind.degraded events, by cause (THROTTLED, HALF_CLOSED_TX, DRAINING)."
    );
    describe_gauge!(
        DRAIN_SECONDS,
        "Seconds the bind has been DRAINING (0 otherwise); alert above 300."
    );
    describe_counter!(
        LANE_MESSAGES,
        "Dispatch messages by lane and outcome (pulled, ack, nak)."
    );
    describe_counter!(
        TPS_FAIL_OPEN_TOTAL,
        "TPS requests decided by the local limiter because Redis did not answer."
    );
    describe_gauge!(
        TPS_FAIL_OPEN,
        "1 while an operator's TPS fails open (Redis down), else 0."
    );
    describe_counter!(
        TPS_THROTTLED,
        "TPS tokens asked for but not granted (over the operator's limit)."
    );
}

/// Register, at 0, the series that only move on rare events (errors, outages, fallbacks,
/// failovers) for the operators and direction of this process, so they are in `/metrics`
/// from the start: dashboards show 0 instead of "no data" and an alert on `increase()`
/// sees the first event.
pub fn register_zeroes(operators: &[smpp_connector::config::OperatorId], direction: &'static str) {
    for backend in ["nats", "postgres", "redis", "oms"] {
        metrics::counter!(BACKEND_ERRORS, "backend" => backend).increment(0);
    }
    for name in [
        FINGERPRINT_MISMATCHES,
        GSM7_FORCE_REPLACEMENTS,
        CONCAT_REF_FALLBACKS,
        ROW_RETRIES,
        CORRELATION_SWEPT,
    ] {
        metrics::counter!(name).increment(0);
    }
    for reason in ["redelivered", "stored_before_reconnect"] {
        metrics::counter!(REDELIVERY_LOOKUPS, "reason" => reason).increment(0);
    }
    for reason in [
        "INVALID_JSON",
        "MISSING_FIELD",
        "INVALID_FIELD",
        "TOO_LARGE",
        "UNKNOWN_OPERATOR",
        "RETRIES_EXHAUSTED",
    ] {
        metrics::counter!(DEAD_LETTERS, "reason" => reason).increment(0);
    }
    for op in operators {
        let mno = op.to_string();
        metrics::counter!(TPS_THROTTLED, "mno" => mno.clone()).increment(0);
        metrics::gauge!(TPS_FAIL_OPEN, "mno" => mno.clone()).set(0.0);
        metrics::counter!(TPS_FAIL_OPEN_TOTAL, "mno" => mno.clone()).increment(0);
        for name in [CONCAT_LOST, CONCAT_COMPLETE, CONCAT_PARTIAL] {
            metrics::counter!(name, "mno" => mno.clone()).increment(0);
        }
        metrics::counter!(BIND_ORPHANS, "mno" => mno.clone(), "direction" => direction)
            .increment(0);
        metrics::counter!(BIND_DOUBLE_CLAIMS, "mno" => mno.clone(), "direction" => direction)
            .increment(0);
        metrics::counter!(BIND_OWNER_CHANGES, "mno" => mno.clone(), "direction" => direction)
            .increment(0);
        for event in ["failover", "failback"] {
            metrics::counter!(FAILOVERS, "mno" => mno.clone(), "direction" => direction, "event" => event)
                .increment(0);
        }
        for cause in ["THROTTLED", "HALF_CLOSED_TX", "DRAINING"] {
            metrics::counter!(BIND_DEGRADED, "mno" => mno.clone(), "cause" => cause).increment(0);
        }
    }
}
