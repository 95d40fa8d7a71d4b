//! The NATS contracts this service writes: subjects and payload types, one struct per
//! JSON Schema in `tests/contracts/` (tests validate what we publish against them).
//!
//! Payloads never carry message content: no `to`, no `text` (MO events are the one
//! exception the contract requires, and they are never logged).

use serde::Serialize;

/// Subjects written once (SPEC §4).
pub mod subject {
    pub const DLR_INBOUND: &str = "sms.dlr.inbound";
    pub const MO_INBOUND: &str = "sms.mo.inbound";
    pub const OPERATOR_HEALTH: &str = "operator.health";
    pub const BIND_DEGRADED: &str = "smpp.bind.degraded";
    pub const DISPATCH_DLQ: &str = "sms.dispatch.dlq";

    /// `smpp.operator.{operatorId}`: the platform's dispatch subject (lane P2).
    pub fn operator_dispatch(operator_id: &str) -> String {
        format!("smpp.operator.{operator_id}")
    }

    /// `lane.{lane}.smpp.{operatorId}.{direction}` (US-SC-018).
    pub fn lane_dispatch(lane: &str, operator_id: &str, direction: &str) -> String {
        format!("lane.{lane}.smpp.{operator_id}.{direction}")
    }

    /// `smpp.{operatorId}.{direction}.{bindId}.dispatch` (US-SC-019).
    pub fn pinned_dispatch(operator_id: &str, direction: &str, bind_id: u16) -> String {
        format!("smpp.{operator_id}.{direction}.{bind_id}.dispatch")
    }

    /// Subjects of the SMS_DISPATCH stream.
    pub const DISPATCH_STREAM_SUBJECTS: [&str; 3] =
        ["smpp.operator.*", "lane.*.smpp.*.*", "smpp.*.*.*.dispatch"];
    /// Subjects of the SMS_EVENTS stream.
    pub const EVENTS_STREAM_SUBJECTS: [&str; 5] = [
        DLR_INBOUND,
        MO_INBOUND,
        OPERATOR_HEALTH,
        BIND_DEGRADED,
        DISPATCH_DLQ,
    ];
}

/// `DlrInboundEvent` v1.0.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DlrInboundEvent {
    pub version: &'static str,
    pub event_id: String,
    pub message_id: Option<String>,
    pub operator_id: String,
    pub operator_message_id: Option<String>,
    pub segment_index: Option<u32>,
    pub segment_count: Option<u32>,
    pub status: &'static str,
    pub smpp_message_state: Option<u8>,
    pub raw_stat: Option<String>,
    pub error_code: Option<String>,
    pub source: &'static str,
    pub correlated: bool,
    pub submit_date: Option<String>,
    pub done_date: Option<String>,
    pub direction: &'static str,
    pub bind_id: u16,
    pub received_at: String,
}

/// `OperatorHealthEvent` v1.0.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorHealthEvent {
    pub version: &'static str,
    pub operator_id: String,
    pub direction: &'static str,
    pub bind_id: u16,
    pub state: &'static str,
    pub bind_state: &'static str,
    pub reason: Option<String>,
    pub operator_state: &'static str,
    pub bound_binds: u32,
    pub total_binds: u32,
    pub backup_operator_id: Option<String>,
    pub pod: String,
    pub at: String,
}

/// `DispatchDeadLetter` v1.0.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchDeadLetter {
    pub version: &'static str,
    pub message_id: Option<String>,
    pub operator_id: Option<String>,
    pub reason: &'static str,
    pub detail: String,
    pub subject: String,
    pub stream_sequence: u64,
    pub deliveries: u64,
    pub at: String,
}

impl DispatchDeadLetter {
    /// The dead letter of a rejected command (`detail` names fields, never values).
    pub fn new(
        rejection: smpp_connector::dispatch::Rejection,
        subject: String,
        stream_sequence: u64,
        deliveries: u64,
    ) -> Self {
        DispatchDeadLetter {
            version: "1.0",
            message_id: rejection.message_id,
            operator_id: rejection.operator_id,
            reason: rejection.reason.as_str(),
            detail: rejection.detail,
            subject,
            stream_sequence,
            deliveries,
            at: now_rfc3339(),
        }
    }
}

/// `BindDegradedEvent` v1.0.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BindDegradedEvent {
    pub version: &'static str,
    pub operator_id: String,
    pub direction: &'static str,
    pub bind_id: u16,
    pub cause: &'static str,
    pub window: u32,
    pub count_in_last_minute: Option<u32>,
    pub at: String,
}

/// RFC 3339 UTC with milliseconds, as every `at` / `receivedAt` field.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `MoInboundEvent` v1.0 (the contract carries the text; it is never logged).
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MoInboundEvent {
    pub version: &'static str,
    pub event_id: String,
    pub operator_id: String,
    pub from: String,
    pub to: String,
    pub text: String,
    pub data_coding: u8,
    pub binary: bool,
    pub parts: u32,
    pub parts_received: u32,
    pub incomplete: bool,
    pub bind_id: u16,
    pub received_at: String,
}

impl std::fmt::Debug for MoInboundEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MoInboundEvent")
            .field("event_id", &self.event_id)
            .field("operator_id", &self.operator_id)
            .field("parts", &self.parts)
            .finish_non_exhaustive()
    }
}
