//! The simulator's scripted behaviour: what it answers and how it misbehaves.
//!
//! Owns the [`Behaviour`] value (serialised as the `/behaviour` JSON of the control API),
//! the one-shot queue of submit statuses (`submit_status_next`), the partial-update merge
//! and its validation. Connections read an immutable snapshot (`Arc<Behaviour>`) per PDU,
//! so a change made through the control API applies to the next PDU on every connection.
//!
//! It must not do I/O.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use smpp_connector::protocol::pdu::CommandStatus;

/// A `command_status`: serialised as a number, parsed from a number, a `"0x58"` string or
/// an SMPP name such as `"ESME_RTHROTTLED"`.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Status(pub u32);

impl Status {
    pub fn command_status(self) -> CommandStatus {
        CommandStatus(self.0)
    }

    fn parse(text: &str) -> Option<Status> {
        let text = text.trim();
        if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            return u32::from_str_radix(hex, 16).ok().map(Status);
        }
        if let Ok(value) = text.parse::<u32>() {
            return Some(Status(value));
        }
        // Every status SMPP 3.4 names is below 0x100.
        let wanted = text.to_ascii_uppercase();
        (0..=0xFFu32)
            .find(|v| CommandStatus(*v).known_name() == Some(wanted.as_str()))
            .map(Status)
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", CommandStatus(self.0))
    }
}

impl Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u32),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(Status(n)),
            Raw::Text(text) => Status::parse(&text).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "unknown command_status {text:?} (use a number, 0x.. or an ESME_ name)"
                ))
            }),
        }
    }
}

/// How the sim renders the message ids it assigns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MessageIdFormat {
    /// Lowercase hex of the global counter (`1a2b`).
    #[default]
    #[serde(alias = "HEX")]
    Hex,
    /// Decimal of the global counter.
    #[serde(alias = "DEC")]
    Dec,
    /// A random UUID (the counter still advances).
    #[serde(alias = "UUID")]
    Uuid,
    /// A buggy or hostile SMSC: [`OVERSIZED_MESSAGE_ID`] random hex characters, far past
    /// SMPP's 64 octets and past what a PostgreSQL btree index row can hold.
    #[serde(alias = "OVERSIZED")]
    Oversized,
}

/// Length of an `oversized` message id.
pub const OVERSIZED_MESSAGE_ID: usize = 4_000;

/// Receipt `stat:` values the sim can send, with their `message_state` TLV value.
pub const RECEIPT_STATS: [(&str, u8); 8] = [
    ("ENROUTE", 1),
    ("DELIVRD", 2),
    ("EXPIRED", 3),
    ("DELETED", 4),
    ("UNDELIV", 5),
    ("ACCEPTD", 6),
    ("UNKNOWN", 7),
    ("REJECTD", 8),
];

/// The `message_state` TLV value for a receipt `stat:` (UNKNOWN for anything else).
pub fn message_state(stat: &str) -> u8 {
    RECEIPT_STATS
        .iter()
        .find(|(name, _)| *name == stat)
        .map_or(7, |(_, state)| *state)
}

/// Everything the control API can change. Field names are the JSON keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behaviour {
    /// Answer bind_transceiver with ESME_RINVCMDID (TX + RX fallback test).
    pub reject_bind_transceiver: bool,
    /// Answer every bind with this status.
    pub bind_status: Option<Status>,
    /// When false, enquire_link is silently ignored.
    pub answer_enquire_link: bool,
    /// Close the connection when its Nth PDU (the bind included) arrives; that PDU is
    /// recorded but not answered.
    pub drop_after_pdus: Option<u64>,
    /// command_status of submit_sm_resp once `submit_status_next` is empty.
    pub submit_status: Status,
    /// Statuses for the next submits, one each (global across connections).
    pub submit_status_next: Vec<Status>,
    pub message_id_format: MessageIdFormat,
    /// Delay before each submit_sm_resp (the reader keeps reading meanwhile).
    pub resp_delay_ms: u64,
    /// Never answer submit_sm.
    pub drop_submit_resp: bool,
    /// Send a receipt for each OK submit with registered_delivery & 0x01.
    pub receipts: bool,
    /// Delay of the receipt after the submit_sm_resp (or before it, see below).
    pub receipt_delay_ms: u64,
    pub receipt_stat: String,
    pub receipt_err: String,
    /// Add receipted_message_id (0x001E) and message_state (0x0427).
    pub receipt_tlvs: bool,
    /// Send the receipt first, the submit_sm_resp `resp_delay_ms` after it.
    pub receipt_before_resp: bool,
    /// Connections accepted while this is set close with a TCP reset (SO_LINGER 0)
    /// instead of a FIN: `/disconnect` and `drop_after_pdus` then look like a network
    /// fault or a crashed SMSC.
    pub reset_on_close: bool,
    /// A deliver_sm answered with an error (ESME_RX_T_APPN…) is sent again this many ms
    /// later, up to 10 sends, as an SMSC retries a receipt; `null`: never.
    pub redeliver_refused_ms: Option<u64>,
    /// Store and forward, as a real SMSC: a receipt whose connection went away before it
    /// was acknowledged (or before it could be sent) is kept and delivered to the next
    /// receiver of the same system_id that binds.
    pub store_and_forward: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            reject_bind_transceiver: false,
            bind_status: None,
            answer_enquire_link: true,
            drop_after_pdus: None,
            submit_status: Status(0),
            submit_status_next: Vec::new(),
            message_id_format: MessageIdFormat::Hex,
            resp_delay_ms: 0,
            drop_submit_resp: false,
            receipts: true,
            receipt_delay_ms: 0,
            receipt_stat: "DELIVRD".to_owned(),
            receipt_err: "000".to_owned(),
            receipt_tlvs: true,
            receipt_before_resp: false,
            reset_on_close: false,
            redeliver_refused_ms: None,
            store_and_forward: false,
        }
    }
}

impl Behaviour {
    /// Normalise and check the fields serde cannot check.
    fn validate(mut self) -> Result<Behaviour, String> {
        self.receipt_stat = self.receipt_stat.trim().to_ascii_uppercase();
        if !RECEIPT_STATS.iter().any(|(s, _)| *s == self.receipt_stat) {
            return Err(format!(
                "receipt_stat {:?} is not one of {}",
                self.receipt_stat,
                RECEIPT_STATS
                    .iter()
                    .map(|(s, _)| *s)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if self.receipt_err.len() > 3 || !self.receipt_err.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "receipt_err {:?} must be up to 3 digits",
                self.receipt_err
            ));
        }
        if self.drop_after_pdus == Some(0) {
            return Err("drop_after_pdus must be at least 1 (or null)".to_owned());
        }
        Ok(self)
    }

    /// Apply a partial JSON object (keys of [`Behaviour`]) on top of `self`.
    pub fn merged(&self, patch: &serde_json::Value) -> Result<Behaviour, String> {
        let serde_json::Value::Object(patch) = patch else {
            return Err("behaviour must be a JSON object".to_owned());
        };
        let mut current = serde_json::to_value(self).map_err(|e| e.to_string())?;
        if let serde_json::Value::Object(fields) = &mut current {
            for (key, value) in patch {
                fields.insert(key.clone(), value.clone());
            }
        }
        let merged: Behaviour = serde_json::from_value(current).map_err(|e| e.to_string())?;
        merged.validate()
    }
}

/// The live behaviour shared by every connection and the control API.
#[derive(Debug, Default)]
pub struct BehaviourCell {
    /// Everything but the status queue: cheap snapshot per PDU.
    current: RwLock<Arc<Behaviour>>,
    /// `submit_status_next`, consumed one per submit.
    next_statuses: Mutex<VecDeque<Status>>,
    /// Serialises read-modify-write updates.
    update: Mutex<()>,
}

impl BehaviourCell {
    pub fn new(initial: Behaviour) -> Self {
        let cell = BehaviourCell::default();
        cell.store(initial);
        cell
    }

    /// The behaviour for the PDU at hand (`submit_status_next` is always empty here).
    pub fn snapshot(&self) -> Arc<Behaviour> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The full behaviour, with the statuses still queued.
    pub fn view(&self) -> Behaviour {
        let mut view = (*self.snapshot()).clone();
        view.submit_status_next = self
            .next_statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        view
    }

    /// Merge a partial update; returns the full behaviour after it.
    pub fn update(&self, patch: &serde_json::Value) -> Result<Behaviour, String> {
        let _guard = self.update.lock().unwrap_or_else(|e| e.into_inner());
        let merged = self.view().merged(patch)?;
        self.store(merged);
        Ok(self.view())
    }

    /// Back to the defaults.
    pub fn reset(&self) -> Behaviour {
        let _guard = self.update.lock().unwrap_or_else(|e| e.into_inner());
        self.store(Behaviour::default());
        self.view()
    }

    fn store(&self, mut behaviour: Behaviour) {
        let queue: VecDeque<Status> = std::mem::take(&mut behaviour.submit_status_next).into();
        *self.next_statuses.lock().unwrap_or_else(|e| e.into_inner()) = queue;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(behaviour);
    }

    /// The status for the next submit_sm_resp: the queue first, then `submit_status`.
    pub fn next_submit_status(&self, behaviour: &Behaviour) -> Status {
        self.next_statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
            .unwrap_or(behaviour.submit_status)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_keeps_other_fields_and_parses_statuses() {
        let cell = BehaviourCell::new(Behaviour::default());
        let view = cell
            .update(&json!({
                "submit_status_next": ["ESME_RTHROTTLED", "0x45", 8],
                "bind_status": 14,
                "receipt_stat": "undeliv",
            }))
            .expect("valid patch");
        assert_eq!(
            view.submit_status_next,
            vec![Status(0x58), Status(0x45), Status(8)]
        );
        assert_eq!(view.bind_status, Some(Status(14)));
        assert_eq!(view.receipt_stat, "UNDELIV");
        assert!(view.answer_enquire_link);

        let b = cell.snapshot();
        assert_eq!(cell.next_submit_status(&b), Status(0x58));
        assert_eq!(cell.next_submit_status(&b), Status(0x45));
        assert_eq!(cell.next_submit_status(&b), Status(8));
        assert_eq!(cell.next_submit_status(&b), Status(0));

        let view = cell.update(&json!({"bind_status": null})).expect("valid");
        assert_eq!(view.bind_status, None);
    }

    #[test]
    fn merge_rejects_unknown_keys_and_bad_values() {
        let cell = BehaviourCell::new(Behaviour::default());
        assert!(cell.update(&json!({"submit_stat": 1})).is_err());
        assert!(cell.update(&json!({"submit_status": "ESME_NOPE"})).is_err());
        assert!(cell.update(&json!({"receipt_stat": "GONE"})).is_err());
        assert!(cell.update(&json!([1])).is_err());
        assert_eq!(cell.view(), Behaviour::default());
    }
}
