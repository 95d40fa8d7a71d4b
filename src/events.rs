//! The NATS contracts this service writes: subjects and payload types, one struct per
//! JSON Schema in `tests/contracts/` (tests validate what we publish against them).
//!
//! Payloads never carry message content: no `to`, no `text` (MO events are the one
//! exception the contract requires, and they are never logged). Timestamps come in as
//! RFC 3339 strings (this crate reads no clock).

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::BindKey;
use crate::dispatch::Rejection;
use crate::protocol::pdu::CommandStatus;

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

    /// Every pinned subject of an operator's binds in one direction (a filter).
    pub fn pinned_dispatch_any(operator_id: &str, direction: &str) -> String {
        format!("smpp.{operator_id}.{direction}.*.dispatch")
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
        rejection: Rejection,
        subject: String,
        stream_sequence: u64,
        deliveries: u64,
        at: String,
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
            at,
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

/// The `Nats-Msg-Id` of a dispatch command's dead letter: its stream sequence identifies
/// it, so a dead letter stored whose ACK was lost (the command delivered again and
/// dead-lettered again) is one entry in `sms.dispatch.dlq`. `None` when the sequence is
/// unknown (0): no id rather than one shared by unrelated letters.
pub fn dead_letter_msg_id(stream_sequence: u64) -> Option<String> {
    (stream_sequence > 0).then(|| format!("dlq-{stream_sequence}"))
}

/// A deterministic id: the first 16 bytes of SHA-256 over the parts, as hex. Parts are
/// separated, so ("ab", "") and ("a", "b") differ.
pub fn event_id(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0x1F]);
    }
    hex::encode(&hasher.finalize()[..16])
}

/// The segment a receipt was correlated with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptMatch {
    pub message_id: String,
    pub segment_index: u16,
    pub segment_count: u16,
    /// The `traceparent` of the dispatch that sent the segment (the receipt's trace
    /// links to it), when it was recorded.
    pub traceparent: Option<String>,
}

impl DlrInboundEvent {
    /// The REJECTED event of a message the SMSC refused (`source` SUBMIT_RESP), one per
    /// message and status.
    pub fn rejected(
        bind: &BindKey,
        message_id: &str,
        segment_count: u16,
        status: CommandStatus,
        received_at: String,
    ) -> Self {
        DlrInboundEvent {
            version: "1.0",
            event_id: event_id(&[
                bind.operator_id.as_str(),
                message_id,
                "SUBMIT_RESP",
                &status.hex(),
            ]),
            message_id: Some(message_id.to_owned()),
            operator_id: bind.operator_id.to_string(),
            operator_message_id: None,
            segment_index: None,
            segment_count: Some(u32::from(segment_count)),
            status: "REJECTED",
            smpp_message_state: None,
            raw_stat: None,
            error_code: Some(status.hex()),
            source: "SUBMIT_RESP",
            correlated: true,
            submit_date: None,
            done_date: None,
            direction: bind.direction.as_str(),
            bind_id: bind.bind_id,
            received_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Direction, OperatorId};

    fn bind() -> BindKey {
        BindKey::new(OperatorId::try_new("roshan").unwrap(), Direction::Trx, 1)
    }

    #[test]
    fn a_dead_letter_is_identified_by_its_stream_sequence_when_known() {
        assert_eq!(dead_letter_msg_id(42).as_deref(), Some("dlq-42"));
        assert_eq!(dead_letter_msg_id(0), None, "unknown: no shared id");
    }

    #[test]
    fn event_ids_are_deterministic_and_separate_fields() {
        assert_eq!(event_id(&["a", "b"]), event_id(&["a", "b"]));
        assert_ne!(event_id(&["ab", ""]), event_id(&["a", "b"]));
        assert_eq!(event_id(&["x"]).len(), 32);
    }

    #[test]
    fn a_refusal_is_one_rejected_event_per_message_and_status() {
        let a = DlrInboundEvent::rejected(&bind(), "m-1", 3, CommandStatus(0x45), "t".into());
        let b = DlrInboundEvent::rejected(&bind(), "m-1", 3, CommandStatus(0x45), "u".into());
        let c = DlrInboundEvent::rejected(&bind(), "m-1", 3, CommandStatus(0x0B), "t".into());
        assert_eq!(a.event_id, b.event_id);
        assert_ne!(a.event_id, c.event_id);
        assert_eq!((a.status, a.source), ("REJECTED", "SUBMIT_RESP"));
        assert_eq!(a.error_code.as_deref(), Some("0x00000045"));
    }
}
