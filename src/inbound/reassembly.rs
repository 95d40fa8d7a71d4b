//! Concatenated MO messages, the pure half: which parts belong together, how a part is
//! stored, and how stored parts become one message — complete, or partial when its window
//! expired. Where the parts live (Redis, so a restart or a move of the bind loses none)
//! is the service's business; this module decides what is written and what comes out.
//!
//! Parts are kept as raw user data, not decoded text: a UCS2 surrogate pair or a GSM7
//! escape may be split across two parts, so the message is decoded once, joined.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::events::{MoInboundEvent, event_id};
use crate::inbound::mo::{ConcatPart, decode_text};

/// Fields of a message's Redis hash besides the parts (whose fields are their sequence
/// numbers, `1..=total`).
pub mod field {
    /// [`PartMeta`] as JSON: what the expiry scan needs to publish the message.
    pub const META: &str = "m";
    /// The open index the message is listed in (the first part's bind).
    pub const INDEX: &str = "i";
    /// Distinct parts stored.
    pub const COUNT: &str = "n";
    /// Set once the message is out: `c` published complete, `p` published partial, `x`
    /// claimed by an expiry scan and being published.
    pub const STATE: &str = "d";
}

/// What one concatenated message's parts share: operator, originator, destination, and
/// the reference and total of the concatenation.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MoKey {
    pub operator_id: String,
    pub source: String,
    pub destination: String,
    pub reference: u16,
    pub total: u8,
}

impl std::fmt::Debug for MoKey {
    // Subscriber numbers: never in a Debug.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MoKey")
            .field("operator_id", &self.operator_id)
            .field("reference", &self.reference)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl MoKey {
    pub fn new(operator_id: &str, source: &str, destination: &str, part: ConcatPart) -> Self {
        MoKey {
            operator_id: operator_id.to_owned(),
            source: source.to_owned(),
            destination: destination.to_owned(),
            reference: part.reference,
            total: part.total,
        }
    }

    /// The Redis hash holding the parts: `smpp:mo:{operatorId}:{digest}`. The numbers are
    /// hashed so that no subscriber number appears in a key (keys show up in monitoring).
    pub fn redis_key(&self) -> String {
        let mut hasher = Sha256::new();
        for field in [self.source.as_bytes(), self.destination.as_bytes()] {
            hasher.update(field);
            hasher.update([0x1F]);
        }
        hasher.update(self.reference.to_be_bytes());
        hasher.update([self.total]);
        format!(
            "smpp:mo:{}:{}",
            crate::dispatch::throttle::hash_tag(&self.operator_id),
            hex::encode(&hasher.finalize()[..12])
        )
    }
}

impl MoKey {
    /// The key a stored message's [`PartMeta`] names.
    pub fn from_meta(operator_id: &str, meta: &PartMeta) -> Self {
        MoKey {
            operator_id: operator_id.to_owned(),
            source: meta.from.clone(),
            destination: meta.to.clone(),
            reference: meta.reference,
            total: meta.total,
        }
    }
}

/// The sorted set of a bind's open messages, scored by the time (Redis server clock, ms)
/// their window ends: `smpp:mo:open:{operatorId}:{bindId}` (the operator as hash tag, as
/// the messages' keys: one slot on Redis Cluster). The bind that received a message's
/// first part lists it; whoever owns that bind runs its expiry scan.
pub fn open_index_key(operator_id: &str, bind_id: u16) -> String {
    format!(
        "smpp:mo:open:{}:{bind_id}",
        crate::dispatch::throttle::hash_tag(operator_id)
    )
}

/// The open index before keys carried the hash tag, `smpp:mo:open:op:bindId`: its
/// messages (parts stored by an earlier version) are still published.
pub fn legacy_open_index_key(operator_id: &str, bind_id: u16) -> String {
    format!("smpp:mo:open:{operator_id}:{bind_id}")
}

/// The index a stored message is listed in: the one of its key's generation (a legacy
/// message hash, without the hash tag, is listed in the legacy index).
pub fn index_of(redis_key: &str, operator_id: &str, bind_id: u16) -> String {
    if redis_key.contains('{') {
        open_index_key(operator_id, bind_id)
    } else {
        legacy_open_index_key(operator_id, bind_id)
    }
}

/// What a stored message must say for someone else to publish it: the expiry scan of
/// another pod, after a restart, has only Redis.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartMeta {
    pub from: String,
    pub to: String,
    /// The bind the first part came in on.
    pub bind_id: u16,
    pub reference: u16,
    pub total: u8,
}

impl std::fmt::Debug for PartMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartMeta")
            .field("bind_id", &self.bind_id)
            .field("reference", &self.reference)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl PartMeta {
    pub fn new(key: &MoKey, bind_id: u16) -> Self {
        PartMeta {
            from: key.source.clone(),
            to: key.destination.clone(),
            bind_id,
            reference: key.reference,
            total: key.total,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("PartMeta serializes")
    }
}

/// A message's hash read back from Redis.
#[derive(Clone, Default)]
pub struct StoredMessage {
    /// `None` when the meta field is missing or not ours (the hash is then unusable).
    pub meta: Option<PartMeta>,
    /// (sequence number, stored value), in field order.
    pub parts: Vec<(u8, Vec<u8>)>,
}

impl std::fmt::Debug for StoredMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredMessage")
            .field("meta", &self.meta)
            .field("parts", &self.parts.len())
            .finish()
    }
}

impl StoredMessage {
    /// Read the fields of a hash (`HGETALL`). Part fields are the decimal sequence
    /// numbers; the other fields of [`field`] are skipped; anything else is ignored.
    pub fn from_fields(fields: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Self {
        let mut stored = StoredMessage::default();
        for (name, value) in fields {
            if name == field::META.as_bytes() {
                stored.meta = serde_json::from_slice(&value).ok();
            } else if let Some(seq) = std::str::from_utf8(&name)
                .ok()
                .and_then(|n| n.parse::<u8>().ok())
            {
                stored.parts.push((seq, value));
            }
        }
        stored
    }

    /// Assemble what is stored (under the operator's key from the meta).
    pub fn assemble(&self, operator_id: &str) -> Option<(MoKey, Assembled)> {
        let key = MoKey::from_meta(operator_id, self.meta.as_ref()?);
        let message = assemble(&key, &self.parts)?;
        Some((key, message))
    }
}

/// How one part is stored (the hash field is its sequence number): its data_coding, then
/// its user data.
pub fn stored_value(data_coding: u8, user_data: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(1 + user_data.len());
    value.push(data_coding);
    value.extend_from_slice(user_data);
    value
}

/// A message made from its stored parts.
#[derive(Clone, PartialEq, Eq)]
pub struct Assembled {
    /// The text, or base64 of the joined user data when `binary`.
    pub text: String,
    pub binary: bool,
    pub data_coding: u8,
    pub parts: u8,
    pub parts_received: u8,
    /// Some part is missing (the window expired first).
    pub incomplete: bool,
    /// Deterministic: the same parts give the same id, so publishing again after a
    /// redelivered last part is one event (`Nats-Msg-Id`).
    pub event_id: String,
}

impl std::fmt::Debug for Assembled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assembled")
            .field("parts", &self.parts)
            .field("parts_received", &self.parts_received)
            .field("incomplete", &self.incomplete)
            .finish_non_exhaustive()
    }
}

impl Assembled {
    /// The `MoInboundEvent` of this message.
    pub fn event(&self, key: &MoKey, bind_id: u16, received_at: String) -> MoInboundEvent {
        MoInboundEvent {
            version: "1.0",
            event_id: self.event_id.clone(),
            operator_id: key.operator_id.clone(),
            from: key.source.clone(),
            to: key.destination.clone(),
            text: self.text.clone(),
            data_coding: self.data_coding,
            binary: self.binary,
            parts: u32::from(self.parts),
            parts_received: u32::from(self.parts_received),
            incomplete: self.incomplete,
            bind_id,
            received_at,
        }
    }
}

/// Join stored parts (sequence number, stored value) in part order. Parts outside
/// `1..=total`, empty values and repeats of a number are ignored. `None` when no usable
/// part is left.
pub fn assemble(key: &MoKey, parts: &[(u8, Vec<u8>)]) -> Option<Assembled> {
    let mut usable: Vec<(u8, &[u8])> = parts
        .iter()
        .filter(|(seq, value)| (1..=key.total).contains(seq) && !value.is_empty())
        .map(|(seq, value)| (*seq, value.as_slice()))
        .collect();
    usable.sort_by_key(|(seq, _)| *seq);
    usable.dedup_by_key(|(seq, _)| *seq);
    let (_, first) = usable.first()?;
    let data_coding = first[0];
    let mut joined = Vec::new();
    for (_, value) in &usable {
        joined.extend_from_slice(&value[1..]);
    }
    let (text, binary) = decode_text(data_coding, &joined);
    let parts_received = u8::try_from(usable.len()).unwrap_or(u8::MAX);
    let digest = hex::encode(Sha256::digest(&joined));
    let received: Vec<String> = usable.iter().map(|(seq, _)| seq.to_string()).collect();
    let received = received.join(",");
    Some(Assembled {
        text,
        binary,
        data_coding,
        parts: key.total,
        parts_received,
        incomplete: parts_received < key.total,
        event_id: event_id(&["mo", &key.redis_key(), &received, &digest]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(total: u8) -> MoKey {
        MoKey::new(
            "op1",
            "93700111222",
            "3030",
            ConcatPart {
                reference: 0x2A,
                total,
                seq: 1,
            },
        )
    }

    fn gsm(text: &str) -> Vec<u8> {
        stored_value(0x03, text.as_bytes())
    }

    #[test]
    fn parts_in_any_order_make_one_message_in_part_order() {
        let k = key(3);
        let message = assemble(&k, &[(3, gsm("c")), (1, gsm("a")), (2, gsm("b"))]).unwrap();
        assert_eq!(message.text, "abc");
        assert_eq!((message.parts, message.parts_received), (3, 3));
        assert!(!message.incomplete);
        let again = assemble(&k, &[(1, gsm("a")), (2, gsm("b")), (3, gsm("c"))]).unwrap();
        assert_eq!(
            message.event_id, again.event_id,
            "same parts, same event id"
        );
    }

    #[test]
    fn a_repeated_part_counts_once_and_a_missing_one_makes_it_incomplete() {
        let k = key(3);
        let message = assemble(&k, &[(1, gsm("a")), (1, gsm("a")), (3, gsm("c"))]).unwrap();
        assert_eq!(message.text, "ac");
        assert_eq!(message.parts_received, 2);
        assert!(message.incomplete);
        // Out of range and empty parts are ignored; nothing usable gives nothing.
        assert!(assemble(&k, &[(0, gsm("x")), (4, gsm("y")), (2, Vec::new())]).is_none());
    }

    #[test]
    fn a_surrogate_pair_split_across_parts_is_joined_before_decoding() {
        // "h😀": 0x0068, then U+1F600 as 0xD83D 0xDE00, split after the high surrogate.
        let k = key(2);
        let message = assemble(
            &k,
            &[
                (2, stored_value(0x08, &[0xDE, 0x00])),
                (1, stored_value(0x08, &[0x00, 0x68, 0xD8, 0x3D])),
            ],
        )
        .unwrap();
        assert_eq!(
            (message.text.as_str(), message.binary),
            ("h\u{1F600}", false)
        );
    }

    #[test]
    fn a_hash_read_back_gives_its_parts_and_meta() {
        let k = key(2);
        let meta = PartMeta::new(&k, 3);
        let fields = vec![
            (b"m".to_vec(), meta.to_json().into_bytes()),
            (b"i".to_vec(), open_index_key("op1", 3).into_bytes()),
            (b"n".to_vec(), b"2".to_vec()),
            (b"2".to_vec(), gsm("b")),
            (b"1".to_vec(), gsm("a")),
            (b"zz".to_vec(), b"ignored".to_vec()),
        ];
        let stored = StoredMessage::from_fields(fields);
        assert_eq!(stored.meta.as_ref(), Some(&meta));
        let (back, message) = stored.assemble("op1").unwrap();
        assert_eq!(back, k);
        assert_eq!(message.text, "ab");
        let event = message.event(&back, 3, "2026-12-04T00:00:00.000Z".into());
        assert_eq!(
            (event.from.as_str(), event.to.as_str()),
            ("93700111222", "3030")
        );
        assert_eq!(
            (event.parts, event.parts_received, event.incomplete),
            (2, 2, false)
        );
        assert_eq!(event.event_id, message.event_id);
        // Without its meta a hash cannot be published (nothing says who sent it).
        let orphan = StoredMessage::from_fields(vec![(b"1".to_vec(), gsm("a"))]);
        assert!(orphan.assemble("op1").is_none());
    }

    #[test]
    fn keys_hold_no_number_and_separate_messages() {
        let k = key(2);
        let redis_key = k.redis_key();
        assert!(redis_key.starts_with("smpp:mo:{op1}:"));
        assert_eq!(open_index_key("op1", 3), "smpp:mo:open:{op1}:3");
        assert_eq!(legacy_open_index_key("op1", 3), "smpp:mo:open:op1:3");
        assert_eq!(index_of(&redis_key, "op1", 3), "smpp:mo:open:{op1}:3");
        assert_eq!(index_of("smpp:mo:op1:abc", "op1", 3), "smpp:mo:open:op1:3");
        assert!(!redis_key.contains("93700111222") && !redis_key.contains("3030"));
        assert!(!format!("{k:?}").contains("93700111222"));
        let mut other = k.clone();
        other.reference = 0x2B;
        assert_ne!(other.redis_key(), redis_key);
        let mut other = k.clone();
        other.source = "93700111223".into();
        assert_ne!(other.redis_key(), redis_key);
        // Different content under the same key (a reference reused later): another event.
        let one = assemble(&k, &[(1, gsm("a")), (2, gsm("b"))]).unwrap();
        let two = assemble(&k, &[(1, gsm("a")), (2, gsm("B"))]).unwrap();
        assert_ne!(one.event_id, two.event_id);
    }
}
