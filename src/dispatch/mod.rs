//! Dispatch: a command from JetStream on its way to the SMSC.
//!
//! - [`intake_order`]: messages from the intake to the ledger, in pull order;
//! - [`concat_refs`]: concatenation references (blocks, the local counter, 16-bit widening);
//! - [`ledger`]: messages → segments → outcome of one bind, what to ACK or NAK;
//! - [`flow`]: how much one bound bind may submit and when (window, TPS, HALF_CLOSED_TX,
//!   DRAINING);
//! - [`throttle`]: TPS sliding-window math, the fail-open local limiter, Redis key names.
//!
//! This module itself: validation of an `SmsDispatchCommand` v1.0 payload and the plan of
//! `submit_sm` bodies that sends it.
//!
//! A payload that is not a valid command is a [`Rejection`] with the dead-letter reason
//! of the contract and a detail that names the field and the rule — never the value
//! (`to` and `text` are personal data). A valid command becomes a [`DispatchCommand`];
//! [`plan_submits`] turns it into one [`SmBody`] per part with the operator's
//! [`SubmitProfile`] (addresses, TON/NPI, long-message strategy).
//!
//! Must not: do I/O, choose the concatenation reference (an input), log.

pub mod concat_refs;
pub mod flow;
pub mod intake_order;
pub mod ledger;
pub mod throttle;

use serde::Deserialize;
use serde_json::Value;

use crate::config::OperatorId;
use crate::encoding::{
    self, EncodeError, Encoded, EncodingRequest, Part, RefBits, SegmentError, Strategy,
};
use crate::protocol::pdu::{SmBody, Tlv};

/// Largest payload we parse at all; larger is `TOO_LARGE` without parsing.
pub const MAX_PAYLOAD_BYTES: usize = 512 * 1024;
/// Largest `text`, in characters (the contract's `maxLength`).
pub const MAX_TEXT_CHARS: usize = 65_536;

/// Dead-letter reasons of the `DispatchDeadLetter` contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeadLetterReason {
    InvalidJson,
    MissingField,
    InvalidField,
    TooLarge,
    UnknownOperator,
    RetriesExhausted,
}

impl DeadLetterReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::InvalidJson => "INVALID_JSON",
            DeadLetterReason::MissingField => "MISSING_FIELD",
            DeadLetterReason::InvalidField => "INVALID_FIELD",
            DeadLetterReason::TooLarge => "TOO_LARGE",
            DeadLetterReason::UnknownOperator => "UNKNOWN_OPERATOR",
            DeadLetterReason::RetriesExhausted => "RETRIES_EXHAUSTED",
        }
    }
}

/// A command that will not be sent: why, and the ids we could read (for the dead letter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: DeadLetterReason,
    /// Which field and which rule. No message content.
    pub detail: String,
    pub message_id: Option<String>,
    pub operator_id: Option<String>,
}

/// Message priority lane of the command (informational here; lanes are subjects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Priority {
    P0,
    P1,
    #[default]
    P2,
    P3,
}

/// A validated `SmsDispatchCommand` v1.0. `Debug` shows ids only.
#[derive(Clone, PartialEq, Eq)]
pub struct DispatchCommand {
    pub message_id: String,
    pub operator_id: OperatorId,
    /// Destination MSISDN without the leading `+`.
    pub to: String,
    pub from: Option<String>,
    pub text: String,
    pub encoding: EncodingRequest,
    pub long_message_strategy: Option<Strategy>,
    pub priority: Priority,
    pub registered_delivery: bool,
    pub validity_period_seconds: Option<u32>,
    pub segment_fingerprint: Option<String>,
}

impl std::fmt::Debug for DispatchCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatchCommand")
            .field("message_id", &self.message_id)
            .field("operator_id", &self.operator_id)
            .field("encoding", &self.encoding)
            .field("text_chars", &self.text.chars().count())
            .finish_non_exhaustive()
    }
}

struct Fields<'a> {
    object: &'a serde_json::Map<String, Value>,
    message_id: Option<String>,
    operator_id: Option<String>,
}

impl Fields<'_> {
    fn reject(&self, reason: DeadLetterReason, detail: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            detail: detail.into(),
            message_id: self.message_id.clone(),
            operator_id: self.operator_id.clone(),
        }
    }

    fn required_str(&self, name: &str) -> Result<&str, Rejection> {
        match self.object.get(name) {
            None | Some(Value::Null) => {
                Err(self.reject(DeadLetterReason::MissingField, format!("{name}: required")))
            }
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(self.reject(
                DeadLetterReason::InvalidField,
                format!("{name}: must be a string"),
            )),
        }
    }

    fn optional_str(&self, name: &str) -> Result<Option<&str>, Rejection> {
        match self.object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.reject(
                DeadLetterReason::InvalidField,
                format!("{name}: must be a string"),
            )),
        }
    }

    fn optional_enum<T: for<'de> Deserialize<'de>>(
        &self,
        name: &str,
        allowed: &str,
    ) -> Result<Option<T>, Rejection> {
        match self.object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::deserialize(value).map(Some).map_err(|_| {
                self.reject(
                    DeadLetterReason::InvalidField,
                    format!("{name}: must be one of {allowed}"),
                )
            }),
        }
    }
}

fn id_like(value: &Value) -> Option<String> {
    value
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 64)
        .map(str::to_owned)
}

/// The bind a pinned subject `smpp.{operatorId}.{direction}.{bindId}.dispatch` names, if
/// the operator does not have it (`bindId` at or above `bind_count`); `None` for a bind it
/// has, or a subject of another shape.
pub fn unserved_pinned_bind(subject: &str, bind_count: u16) -> Option<u16> {
    let mut tokens = subject.split('.');
    let (Some("smpp"), Some(_), Some(_), Some(bind), Some("dispatch"), None) = (
        tokens.next(),
        tokens.next(),
        tokens.next(),
        tokens.next(),
        tokens.next(),
        tokens.next(),
    ) else {
        return None;
    };
    bind.parse::<u16>().ok().filter(|id| *id >= bind_count)
}

/// Why a command pinned to a bind the operator does not have is dead-lettered: the
/// command's own rejection if it is invalid anyway, else INVALID_FIELD naming the bind.
pub fn unserved_pinned_rejection(payload: &[u8], bind_id: u16, bind_count: u16) -> Rejection {
    match parse_command(payload) {
        Err(rejection) => rejection,
        Ok(command) => Rejection {
            reason: DeadLetterReason::InvalidField,
            detail: format!(
                "subject: pinned to bind {bind_id}, but the operator has bindCount {bind_count} (bind ids 0..{})",
                bind_count.saturating_sub(1)
            ),
            message_id: Some(command.message_id),
            operator_id: Some(command.operator_id.to_string()),
        },
    }
}

/// Validate a payload against SmsDispatchCommand v1.0. Unknown fields are ignored.
pub fn parse_command(payload: &[u8]) -> Result<DispatchCommand, Rejection> {
    let anonymous = |reason, detail: &str| Rejection {
        reason,
        detail: detail.to_owned(),
        message_id: None,
        operator_id: None,
    };
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(anonymous(
            DeadLetterReason::TooLarge,
            "payload exceeds 512 KiB",
        ));
    }
    let value: Value = serde_json::from_slice(payload).map_err(|e| {
        // Only the position: serde_json's message may quote the payload.
        anonymous(
            DeadLetterReason::InvalidJson,
            &format!(
                "not JSON ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    })?;
    let Value::Object(object) = &value else {
        return Err(anonymous(
            DeadLetterReason::InvalidJson,
            "payload must be a JSON object",
        ));
    };
    let fields = Fields {
        object,
        message_id: object.get("messageId").and_then(id_like),
        operator_id: object.get("operatorId").and_then(id_like),
    };

    if let Some(version) = object.get("version")
        && version != "1.0"
    {
        return Err(fields.reject(DeadLetterReason::InvalidField, "version: must be \"1.0\""));
    }

    let message_id = fields.required_str("messageId")?;
    if message_id.is_empty() || message_id.len() > 64 {
        return Err(fields.reject(
            DeadLetterReason::InvalidField,
            "messageId: must be 1..64 characters",
        ));
    }
    let operator_id = OperatorId::try_new(fields.required_str("operatorId")?).map_err(|_| {
        fields.reject(
            DeadLetterReason::InvalidField,
            "operatorId: must match ^[A-Za-z0-9_-]{1,64}$",
        )
    })?;
    let to = fields.required_str("to")?;
    let digits = to.strip_prefix('+').unwrap_or(to);
    if !(3..=20).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fields.reject(
            DeadLetterReason::InvalidField,
            "to: must match ^\\+?[0-9]{3,20}$",
        ));
    }
    let text = fields.required_str("text")?;
    if text.len() > MAX_TEXT_CHARS && text.chars().count() > MAX_TEXT_CHARS {
        return Err(fields.reject(
            DeadLetterReason::TooLarge,
            "text: longer than 65536 characters",
        ));
    }
    let from = fields.optional_str("from")?;
    if let Some(from) = from
        && (from.is_empty() || from.chars().count() > 20 || from.contains('\0'))
    {
        return Err(fields.reject(
            DeadLetterReason::InvalidField,
            "from: must be 1..20 characters",
        ));
    }
    let encoding = fields
        .optional_enum::<EncodingRequest>("encoding", "AUTO, GSM7, UCS2, GSM7_FORCE")?
        .unwrap_or_default();
    let long_message_strategy =
        fields.optional_enum::<Strategy>("longMessageStrategy", "CSMS, SAR, TLV")?;
    let priority = fields
        .optional_enum::<Priority>("priority", "P0, P1, P2, P3")?
        .unwrap_or_default();
    let registered_delivery = match object.get("registeredDelivery") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(fields.reject(
                DeadLetterReason::InvalidField,
                "registeredDelivery: must be a boolean",
            ));
        }
    };
    let validity_period_seconds = match object.get("validityPeriodSeconds") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_u64() {
            Some(s @ 1..=604_800) => Some(s as u32),
            _ => {
                return Err(fields.reject(
                    DeadLetterReason::InvalidField,
                    "validityPeriodSeconds: must be an integer 1..604800",
                ));
            }
        },
    };
    let segment_fingerprint = fields.optional_str("segmentFingerprint")?;
    if let Some(fp) = segment_fingerprint
        && (fp.len() != 32 || !fp.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    {
        return Err(fields.reject(
            DeadLetterReason::InvalidField,
            "segmentFingerprint: must match ^[0-9a-f]{32}$",
        ));
    }

    Ok(DispatchCommand {
        message_id: message_id.to_owned(),
        operator_id,
        to: digits.to_owned(),
        from: from.map(str::to_owned),
        text: text.to_owned(),
        encoding,
        long_message_strategy,
        priority,
        registered_delivery,
        validity_period_seconds,
        segment_fingerprint: segment_fingerprint.map(str::to_owned),
    })
}

/// What the operator's credentials say about submits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitProfile {
    pub default_source_addr: Option<String>,
    pub source_ton: u8,
    pub source_npi: u8,
    pub dest_ton: u8,
    pub dest_npi: u8,
    pub strategy: Strategy,
    pub ref_bits: RefBits,
}

/// The submits of one command, ready for the session.
#[derive(Debug)]
pub struct SubmitPlan {
    pub encoded_as: encoding::Encoding,
    pub detection: encoding::Detection,
    /// Characters GSM7_FORCE replaced by `?` (audit: count only, never the text).
    pub replaced: usize,
    pub strategy: Strategy,
    /// When the command carries a `segmentFingerprint`: ours, recomputed by the shared
    /// segment counter's rule (RULES.md §6, over the text as billing sees it), and
    /// whether they match. `None` when the command has none (nothing is hashed then).
    pub fingerprint_check: Option<FingerprintCheck>,
    /// One body per part, in order; part `i` has segment index `i + 1`.
    pub bodies: Vec<SmBody>,
}

/// Our segment fingerprint against the command's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerprintCheck {
    pub ours: String,
    pub matches: bool,
}

/// Does the text need a concatenation reference (more than one part)?
pub fn needs_reference(encoded: &Encoded, ref_bits: RefBits) -> bool {
    encoded.units() > encoding::limits(encoded.encoding(), ref_bits).single
}

/// Encode a command's text as requested.
pub fn encode_text(command: &DispatchCommand) -> Result<Encoded, Rejection> {
    encoding::encode(&command.text, command.encoding).map_err(|err| Rejection {
        reason: DeadLetterReason::InvalidField,
        detail: match err {
            EncodeError::NotGsm7 { position, .. } => format!(
                "text: character {position} is outside GSM 03.38 and encoding is GSM7 (use AUTO, UCS2 or GSM7_FORCE)"
            ),
        },
        message_id: Some(command.message_id.clone()),
        operator_id: Some(command.operator_id.to_string()),
    })
}

/// Build the submit_sm bodies of a command. `reference` is the concatenation reference
/// shared by every segment (ignored for a single part).
pub fn plan_submits(
    command: &DispatchCommand,
    encoded: &Encoded,
    profile: &SubmitProfile,
    reference: u16,
) -> Result<SubmitPlan, Rejection> {
    let strategy = command.long_message_strategy.unwrap_or(profile.strategy);
    let parts = encoding::parts(encoded, strategy, profile.ref_bits, reference).map_err(|err| {
        Rejection {
            reason: DeadLetterReason::TooLarge,
            detail: match err {
                SegmentError::TooManySegments { count, max } => {
                    format!(
                        "text: needs {count} segments, at most {max} allowed ({})",
                        strategy.as_str()
                    )
                }
                SegmentError::PayloadTooLarge { octets, max } => {
                    format!("text: {octets} octets exceed the message_payload limit of {max}")
                }
            },
            message_id: Some(command.message_id.clone()),
            operator_id: Some(command.operator_id.to_string()),
        }
    })?;
    let fingerprint_check = command.segment_fingerprint.as_ref().map(|theirs| {
        // The counter detects the encoding itself: with an encoding override the payload
        // we send is not what it hashes, so hash the text as the counter does.
        let ours = if command.encoding == EncodingRequest::Auto {
            encoding::fingerprint(encoded)
        } else {
            encoding::fingerprint_text(&command.text)
        };
        FingerprintCheck {
            matches: *theirs == ours,
            ours,
        }
    });

    let (source_addr, source_ton, source_npi) = match &command.from {
        Some(from) => sender_address(from),
        None => (
            profile.default_source_addr.clone().unwrap_or_default(),
            profile.source_ton,
            profile.source_npi,
        ),
    };
    let validity_period = command
        .validity_period_seconds
        .map(relative_validity)
        .unwrap_or_default();
    let bodies = parts
        .into_iter()
        .map(
            |Part {
                 short_message,
                 esm_class_flags,
                 tlvs,
                 ..
             }| SmBody {
                source_addr_ton: source_ton,
                source_addr_npi: source_npi,
                source_addr: source_addr.clone(),
                dest_addr_ton: profile.dest_ton,
                dest_addr_npi: profile.dest_npi,
                destination_addr: command.to.clone(),
                esm_class: esm_class_flags,
                registered_delivery: u8::from(command.registered_delivery),
                validity_period: validity_period.clone(),
                data_coding: encoded.data_coding(),
                short_message,
                tlvs: tlvs
                    .into_iter()
                    .map(|(tag, value)| Tlv::new(tag, value))
                    .collect(),
                ..SmBody::default()
            },
        )
        .collect();
    Ok(SubmitPlan {
        encoded_as: encoded.encoding(),
        detection: encoded.detection(),
        replaced: encoded.replaced(),
        strategy,
        fingerprint_check,
        bodies,
    })
}

/// Address, TON and NPI for a sender id given in a command: alphanumeric → 5/0 as is;
/// a number with `+` or more than 8 digits → international 1/1 without the `+`; a short
/// code → 3/0 (network specific).
pub fn sender_address(from: &str) -> (String, u8, u8) {
    let digits = from.strip_prefix('+').unwrap_or(from);
    let numeric = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    if !numeric {
        (from.to_owned(), 5, 0)
    } else if from.starts_with('+') || digits.len() > 8 {
        (digits.to_owned(), 1, 1)
    } else {
        (digits.to_owned(), 3, 0)
    }
}

/// SMPP relative time `YYMMDDhhmmss000R` for a validity period in seconds.
pub fn relative_validity(seconds: u32) -> String {
    let days = seconds / 86_400;
    let hours = seconds % 86_400 / 3_600;
    let minutes = seconds % 3_600 / 60;
    let secs = seconds % 60;
    format!("0000{days:02}{hours:02}{minutes:02}{secs:02}000R")
}

#[cfg(test)]
mod tests;

/// Why a delivered command's correlation rows are looked up before anything is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupReason {
    /// JetStream says it was delivered before (`num_delivered > 1`).
    Redelivered,
    /// A first delivery of a command stored before this process's latest connection to
    /// NATS: a server that lost its consumer state (killed) delivers again as "first" what
    /// it had delivered, and this process may have sent it already.
    StoredBeforeReconnect,
}

impl LookupReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LookupReason::Redelivered => "redelivered",
            LookupReason::StoredBeforeReconnect => "stored_before_reconnect",
        }
    }
}

/// Clock skew allowed between the NATS server (stream timestamps) and this pod (the
/// connection time): commands stored up to this long after the connection are checked too.
pub const RECONNECT_SKEW_NANOS: i128 = 5_000_000_000;

/// Whether a delivered command must be checked against the correlation rows first.
/// `stored_at` and `connected_at` are Unix nanoseconds (0: unknown; an unknown store time
/// is checked).
pub fn lookup_reason(deliveries: u64, stored_at: i128, connected_at: i128) -> Option<LookupReason> {
    if deliveries > 1 {
        Some(LookupReason::Redelivered)
    } else if connected_at > 0
        && (stored_at <= 0 || stored_at < connected_at + RECONNECT_SKEW_NANOS)
    {
        Some(LookupReason::StoredBeforeReconnect)
    } else {
        None
    }
}
