//! Delivery receipts (SPEC §7): detection, tolerant parsing, status mapping and
//! message-id normalisation.
//!
//! A `deliver_sm` is a receipt when `esm_class & 0x3C == 0x04` or its text parses as one.
//! The text format of SMPP 3.4 Appendix B (`id:… sub:… dlvrd:… submit date:… done date:…
//! stat:… err:… text:…`) is parsed tolerantly: keys in any letter case and any order,
//! missing fields, extra spaces, `submit_date` / `done_date` spellings, 10-, 12- or
//! 14-digit dates. The TLVs `receipted_message_id` (0x001E), `message_state` (0x0427) and
//! `network_error_code` (0x0423) win over the text when present. The eight SMPP message
//! states map to [`DlrStatus`]; anything else is [`DlrStatus::Unknown`] with the raw value
//! kept. Operator message ids are normalised ([`normalize_submit_id`],
//! [`normalize_receipt_id`]) so the id stored from `submit_sm_resp` and the id looked up
//! from a receipt compare equal even when the operator sends hex in one and decimal in
//! the other.
//!
//! This module must not: do I/O, read clocks, log, or print message content (the
//! receipt's `text:` field is the start of the subscriber's message: the `Debug` of
//! [`Receipt`] redacts it). Parsing never panics, whatever the bytes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::BindKey;
use crate::events::{DlrInboundEvent, ReceiptMatch, event_id};
use crate::protocol::pdu::{SmBody, Tlv, find_tlv, tlv_tag};

/// Bits of `esm_class` that carry the message type (SMPP 3.4 §5.2.12).
pub const ESM_CLASS_TYPE_MASK: u8 = 0x3C;
/// Message type "SMSC delivery receipt".
pub const ESM_CLASS_SMSC_DELIVERY_RECEIPT: u8 = 0x04;

/// Delivery status, as the DLR event contract names it.
///
/// SMPP 3.4 `message_state` values 1 to 8, in order. Serialised as `as_str()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DlrStatus {
    /// 1 ENROUTE: not final yet.
    Enroute,
    /// 2 DELIVERED (`stat:DELIVRD`).
    Delivered,
    /// 3 EXPIRED: validity period passed.
    Expired,
    /// 4 DELETED.
    Deleted,
    /// 5 UNDELIVERABLE (`stat:UNDELIV`).
    Undeliverable,
    /// 6 ACCEPTED (`stat:ACCEPTD`).
    Accepted,
    /// 7 UNKNOWN, and every state or `stat` we do not recognise.
    Unknown,
    /// 8 REJECTED (`stat:REJECTD`).
    Rejected,
}

impl DlrStatus {
    /// The contract's name: `ENROUTE`, `DELIVERED`, … `REJECTED`.
    pub fn as_str(self) -> &'static str {
        match self {
            DlrStatus::Enroute => "ENROUTE",
            DlrStatus::Delivered => "DELIVERED",
            DlrStatus::Expired => "EXPIRED",
            DlrStatus::Deleted => "DELETED",
            DlrStatus::Undeliverable => "UNDELIVERABLE",
            DlrStatus::Accepted => "ACCEPTED",
            DlrStatus::Unknown => "UNKNOWN",
            DlrStatus::Rejected => "REJECTED",
        }
    }

    /// The status for an SMPP `message_state` (1..=8); `None` for any other value.
    pub fn from_message_state(state: u8) -> Option<Self> {
        Some(match state {
            1 => DlrStatus::Enroute,
            2 => DlrStatus::Delivered,
            3 => DlrStatus::Expired,
            4 => DlrStatus::Deleted,
            5 => DlrStatus::Undeliverable,
            6 => DlrStatus::Accepted,
            7 => DlrStatus::Unknown,
            8 => DlrStatus::Rejected,
            _ => return None,
        })
    }

    /// The SMPP `message_state` value (1..=8).
    pub fn message_state(self) -> u8 {
        match self {
            DlrStatus::Enroute => 1,
            DlrStatus::Delivered => 2,
            DlrStatus::Expired => 3,
            DlrStatus::Deleted => 4,
            DlrStatus::Undeliverable => 5,
            DlrStatus::Accepted => 6,
            DlrStatus::Unknown => 7,
            DlrStatus::Rejected => 8,
        }
    }

    /// The status for a receipt's `stat:` value, in any letter case: the 7-letter SMPP
    /// forms (`DELIVRD`, `UNDELIV`, `ACCEPTD`, `REJECTD`, …), the contract's full names,
    /// `UNDELIVERED`, and a numeric `message_state` 1..=8. `None` for anything else.
    pub fn from_stat(stat: &str) -> Option<Self> {
        let stat = stat.trim();
        if let Ok(state) = stat.parse::<u8>() {
            return DlrStatus::from_message_state(state);
        }
        const NAMES: &[(&str, DlrStatus)] = &[
            ("ENROUTE", DlrStatus::Enroute),
            ("DELIVRD", DlrStatus::Delivered),
            ("DELIVERED", DlrStatus::Delivered),
            ("EXPIRED", DlrStatus::Expired),
            ("DELETED", DlrStatus::Deleted),
            ("UNDELIV", DlrStatus::Undeliverable),
            ("UNDELIVERABLE", DlrStatus::Undeliverable),
            ("UNDELIVERED", DlrStatus::Undeliverable),
            ("ACCEPTD", DlrStatus::Accepted),
            ("ACCEPTED", DlrStatus::Accepted),
            ("UNKNOWN", DlrStatus::Unknown),
            ("REJECTD", DlrStatus::Rejected),
            ("REJECTED", DlrStatus::Rejected),
        ];
        NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(stat))
            .map(|(_, status)| *status)
    }

    /// True for every state but ENROUTE: no further receipt is expected.
    pub fn is_final(self) -> bool {
        self != DlrStatus::Enroute
    }
}

impl fmt::Display for DlrStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A receipt timestamp (`YYMMDDhhmm[ss]`), as a plain validated date and time.
///
/// Receipts carry no time zone; the SMSC's clock is taken as UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReceiptDate {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl ReceiptDate {
    /// A date if every field is in range (real calendar days, leap years included).
    pub fn new(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Option<Self> {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        let valid = (1..=days_in_month).contains(&day) && hour < 24 && minute < 60 && second < 60;
        valid.then_some(ReceiptDate {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// Parse `YYMMDDhhmm` (10 digits), `YYMMDDhhmmss` (12) or `YYYYMMDDhhmmss` (14).
    /// Two-digit years are 20YY. `None` for anything else or an impossible date
    /// (`0000000000` included).
    pub fn parse(digits: &str) -> Option<Self> {
        let bytes = digits.as_bytes();
        if !bytes.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let number = |range: std::ops::Range<usize>| {
            bytes[range]
                .iter()
                .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'))
        };
        let (year, rest) = match bytes.len() {
            10 | 12 => (2000 + number(0..2), 2),
            14 => (number(0..4), 4),
            _ => return None,
        };
        let field = |index: usize| number(rest + 2 * index..rest + 2 * index + 2) as u8;
        let second = if bytes.len() == 10 { 0 } else { field(4) };
        ReceiptDate::new(year, field(0), field(1), field(2), field(3), second)
    }

    /// `2026-11-22T10:15:00Z`.
    pub fn to_rfc3339_utc(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

impl fmt::Display for ReceiptDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339_utc())
    }
}

/// The fields of a receipt's text, as written (each `None` when missing or empty).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// `id:` — the operator's message id.
    pub id: Option<String>,
    /// `sub:` — messages submitted.
    pub sub: Option<String>,
    /// `dlvrd:` — messages delivered.
    pub dlvrd: Option<String>,
    /// `submit date:`; `None` when missing or not a valid date.
    pub submit_date: Option<ReceiptDate>,
    /// `done date:`; `None` when missing or not a valid date.
    pub done_date: Option<ReceiptDate>,
    /// `stat:` as written.
    pub stat: Option<String>,
    /// `err:` as written.
    pub err: Option<String>,
    /// `text:` — the start of the subscriber's message. Personal data: never logged.
    pub text: Option<String>,
}

impl fmt::Debug for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receipt")
            .field("id", &self.id)
            .field("sub", &self.sub)
            .field("dlvrd", &self.dlvrd)
            .field("submit_date", &self.submit_date)
            .field("done_date", &self.done_date)
            .field("stat", &self.stat)
            .field("err", &self.err)
            .field("text_len", &self.text.as_ref().map(|t| t.chars().count()))
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Id,
    Sub,
    Dlvrd,
    SubmitDate,
    DoneDate,
    Stat,
    Err,
    Text,
}

/// Receipt keys as words; words of one key may be joined by spaces, `_`, `-` or nothing.
const KEYS: &[(Key, &[&str])] = &[
    (Key::SubmitDate, &["submit", "date"]),
    (Key::DoneDate, &["done", "date"]),
    (Key::Dlvrd, &["dlvrd"]),
    (Key::Stat, &["stat"]),
    (Key::Text, &["text"]),
    (Key::Sub, &["sub"]),
    (Key::Err, &["err"]),
    (Key::Id, &["id"]),
];

/// One `key:` found in the text: where the key starts and where its value starts.
#[derive(Debug, Clone, Copy)]
struct KeyAt {
    key: Key,
    start: usize,
    value_start: usize,
}

/// The key starting at byte `i`, if any (ASCII, case-insensitive, then `:`).
fn key_at(bytes: &[u8], i: usize) -> Option<KeyAt> {
    if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
        return None;
    }
    'keys: for (key, words) in KEYS {
        let mut j = i;
        for (n, word) in words.iter().enumerate() {
            if n > 0 {
                while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'_' | b'-') {
                    j += 1;
                }
            }
            match bytes.get(j..j + word.len()) {
                Some(candidate) if candidate.eq_ignore_ascii_case(word.as_bytes()) => {
                    j += word.len()
                }
                _ => continue 'keys,
            }
        }
        while j < bytes.len() && matches!(bytes[j], b' ' | b'\t') {
            j += 1;
        }
        if bytes.get(j) == Some(&b':') {
            return Some(KeyAt {
                key: *key,
                start: i,
                value_start: j + 1,
            });
        }
    }
    None
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || c == '\0'
}

impl Receipt {
    /// Parse the text of a receipt. Never fails: fields that are missing stay `None`;
    /// use [`Receipt::looks_like_receipt`] to tell a receipt from an ordinary message.
    ///
    /// Rules: a key counts only at the start of the text or after a character that is
    /// not a letter, digit or `_`; the first occurrence of each key wins (so a `stat:`
    /// inside `text:` cannot override the real one); a value is the first word after
    /// the colon (words end at white space, NUL, `,` or `;`), before the next key;
    /// `text:` runs to the next accepted key or the end,
    /// so it may contain colons.
    pub fn parse(text: &str) -> Receipt {
        let bytes = text.as_bytes();
        let found: Vec<KeyAt> = (0..bytes.len()).filter_map(|i| key_at(bytes, i)).collect();
        let mut accepted: Vec<KeyAt> = Vec::new();
        for at in &found {
            if !accepted.iter().any(|a| a.key == at.key) {
                accepted.push(*at);
            }
        }
        let mut receipt = Receipt::default();
        for at in &accepted {
            let value = if at.key == Key::Text {
                let end = accepted
                    .iter()
                    .map(|a| a.start)
                    .filter(|start| *start > at.start)
                    .min()
                    .unwrap_or(bytes.len());
                text[at.value_start..end].trim_matches(is_separator)
            } else {
                let end = found
                    .iter()
                    .map(|a| a.start)
                    .find(|start| *start > at.start)
                    .unwrap_or(bytes.len());
                text[at.value_start..end]
                    .split(|c| is_separator(c) || c == ',' || c == ';')
                    .find(|word| !word.is_empty())
                    .unwrap_or("")
            };
            if value.is_empty() {
                continue;
            }
            let owned = || Some(value.to_owned());
            match at.key {
                Key::Id => receipt.id = owned(),
                Key::Sub => receipt.sub = owned(),
                Key::Dlvrd => receipt.dlvrd = owned(),
                Key::SubmitDate => receipt.submit_date = ReceiptDate::parse(value),
                Key::DoneDate => receipt.done_date = ReceiptDate::parse(value),
                Key::Stat => receipt.stat = owned(),
                Key::Err => receipt.err = owned(),
                Key::Text => receipt.text = owned(),
            }
        }
        receipt
    }

    /// True when the text is a receipt rather than a subscriber's message: it has both
    /// `id:` and `stat:`, or at least three of the receipt keys other than `text:`.
    pub fn looks_like_receipt(&self) -> bool {
        let keys = [
            self.id.is_some(),
            self.sub.is_some(),
            self.dlvrd.is_some(),
            self.submit_date.is_some(),
            self.done_date.is_some(),
            self.stat.is_some(),
            self.err.is_some(),
        ];
        (self.id.is_some() && self.stat.is_some()) || keys.iter().filter(|k| **k).count() >= 3
    }
}

/// True when a `deliver_sm` with this `esm_class` and text is a delivery receipt
/// (SPEC §7): the esm_class says "SMSC delivery receipt", or the text parses as one.
pub fn is_receipt(esm_class: u8, text: &str) -> bool {
    esm_class & ESM_CLASS_TYPE_MASK == ESM_CLASS_SMSC_DELIVERY_RECEIPT
        || Receipt::parse(text).looks_like_receipt()
}

/// [`is_receipt`] on a whole body; also true for a receipt given only by TLVs
/// (`receipted_message_id` and `message_state` both present).
pub fn is_receipt_body(body: &SmBody) -> bool {
    is_receipt(body.esm_class, &body_text(body)) || has_receipt_tlvs(&body.tlvs)
}

fn has_receipt_tlvs(tlvs: &[Tlv]) -> bool {
    find_tlv(tlvs, tlv_tag::RECEIPTED_MESSAGE_ID).is_some()
        && find_tlv(tlvs, tlv_tag::MESSAGE_STATE).is_some()
}

/// The text of a `deliver_sm`: `short_message`, or `message_payload` when that is empty.
/// UCS2 (data_coding 0x08) is decoded as UTF-16BE; anything else as UTF-8 when valid,
/// otherwise as Latin-1 (operators send both). Never fails.
pub fn body_text(body: &SmBody) -> String {
    let bytes: &[u8] = if body.short_message.is_empty() {
        find_tlv(&body.tlvs, tlv_tag::MESSAGE_PAYLOAD)
            .map(|t| t.value.as_slice())
            .unwrap_or(&[])
    } else {
        &body.short_message
    };
    if body.data_coding & 0x0F == 0x08 {
        let units = bytes
            .chunks_exact(2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    } else {
        match std::str::from_utf8(bytes) {
            Ok(text) => text.to_owned(),
            Err(_) => bytes.iter().map(|b| char::from(*b)).collect(),
        }
    }
}

/// The `network_error_code` TLV (0x0423): network type (1 ANSI-136, 2 IS-95, 3 GSM, …)
/// and the network's error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetworkErrorCode {
    /// `None` when an operator sent only the two code octets.
    pub network_type: Option<u8>,
    pub error_code: u16,
}

impl NetworkErrorCode {
    /// Read the TLV: 3 octets (type + u16) as specified; 2 octets (code only) tolerated;
    /// other lengths are ignored.
    pub fn from_tlv(tlv: &Tlv) -> Option<Self> {
        match tlv.value.as_slice() {
            [network_type, hi, lo] => Some(NetworkErrorCode {
                network_type: Some(*network_type),
                error_code: u16::from_be_bytes([*hi, *lo]),
            }),
            [hi, lo] => Some(NetworkErrorCode {
                network_type: None,
                error_code: u16::from_be_bytes([*hi, *lo]),
            }),
            _ => None,
        }
    }

    /// `type:code` in decimal (`3:1234`), or just `code` when the type is missing. This is
    /// the receipt's error code when the TLV is present.
    pub fn render(&self) -> String {
        match self.network_type {
            Some(network_type) => format!("{network_type}:{}", self.error_code),
            None => self.error_code.to_string(),
        }
    }
}

/// Why a `deliver_sm` did not yield a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DlrError {
    /// Neither the esm_class, the text nor the TLVs make it a receipt: it is an MO.
    #[error("deliver_sm is not a receipt (esm_class 0x{esm_class:02X})")]
    NotAReceipt { esm_class: u8 },
    /// A receipt without `receipted_message_id` and without a text `id:`.
    #[error("receipt without a message id (esm_class 0x{esm_class:02X})")]
    MissingMessageId { esm_class: u8 },
}

/// A receipt, text and TLVs combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedReceipt {
    /// The operator's message id as received (TLV `receipted_message_id` wins over the
    /// text `id:`), trimmed, not normalised: see [`normalize_receipt_id`].
    pub operator_message_id: String,
    /// The status: from a known `message_state` TLV, else from `stat:`, else Unknown.
    pub status: DlrStatus,
    /// The SMPP `message_state` (1..=8) of `status` when it is known from the TLV or
    /// from a recognised `stat:`; `None` when the status is Unknown for want of either.
    pub message_state: Option<u8>,
    /// The `message_state` TLV as received (any value), if present.
    pub raw_message_state: Option<u8>,
    /// `stat:` as received, if present.
    pub raw_stat: Option<String>,
    /// The error code: the `network_error_code` TLV rendered `type:code` when present,
    /// else `err:` as received.
    pub error_code: Option<String>,
    /// The `network_error_code` TLV, if present and readable.
    pub network_error: Option<NetworkErrorCode>,
    pub submit_date: Option<ReceiptDate>,
    pub done_date: Option<ReceiptDate>,
    /// Every field of the text as written (empty when the text was not a receipt).
    pub text_fields: Receipt,
}

/// Parse the receipt in a `deliver_sm` body, text and TLVs combined (TLVs win).
pub fn parse_receipt(body: &SmBody) -> Result<ParsedReceipt, DlrError> {
    let esm_class = body.esm_class;
    let fields = Receipt::parse(&body_text(body));
    let flagged = esm_class & ESM_CLASS_TYPE_MASK == ESM_CLASS_SMSC_DELIVERY_RECEIPT;
    if !(flagged || fields.looks_like_receipt() || has_receipt_tlvs(&body.tlvs)) {
        return Err(DlrError::NotAReceipt { esm_class });
    }

    let tlv_id = find_tlv(&body.tlvs, tlv_tag::RECEIPTED_MESSAGE_ID)
        .map(|t| t.as_text().trim().to_owned())
        .filter(|id| !id.is_empty());
    let operator_message_id = tlv_id
        .or_else(|| fields.id.clone())
        .ok_or(DlrError::MissingMessageId { esm_class })?;

    let raw_message_state = find_tlv(&body.tlvs, tlv_tag::MESSAGE_STATE).and_then(tlv_u8);
    let status = raw_message_state
        .and_then(DlrStatus::from_message_state)
        .or_else(|| fields.stat.as_deref().and_then(DlrStatus::from_stat));
    let network_error =
        find_tlv(&body.tlvs, tlv_tag::NETWORK_ERROR_CODE).and_then(NetworkErrorCode::from_tlv);
    let error_code = network_error
        .map(|code| code.render())
        .or_else(|| fields.err.clone());

    Ok(ParsedReceipt {
        operator_message_id,
        status: status.unwrap_or(DlrStatus::Unknown),
        message_state: status.map(DlrStatus::message_state),
        raw_message_state,
        raw_stat: fields.stat.clone(),
        error_code,
        network_error,
        submit_date: fields.submit_date,
        done_date: fields.done_date,
        text_fields: fields,
    })
}

/// A one-octet TLV; a longer big-endian value is tolerated when it fits in one octet.
fn tlv_u8(tlv: &Tlv) -> Option<u8> {
    match tlv.value.split_last() {
        Some((last, leading)) if leading.iter().all(|b| *b == 0) => Some(*last),
        _ => None,
    }
}

/// How an operator writes message ids (OMS `msgIdFormat` / `dlrIdFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum IdFormat {
    /// A hexadecimal number (any case, leading zeros, optional `0x`).
    Hex,
    /// A decimal number (leading zeros allowed).
    Dec,
    /// An opaque string: only trimmed. The default: no conversion is safest.
    #[default]
    String,
}

impl IdFormat {
    /// `HEX`, `DEC` or `STRING`, as in OMS.
    pub fn as_str(self) -> &'static str {
        match self {
            IdFormat::Hex => "HEX",
            IdFormat::Dec => "DEC",
            IdFormat::String => "STRING",
        }
    }
}

/// The canonical form of a message id from `submit_sm_resp` (stored in
/// `operator_message_id`).
///
/// HEX / DEC: the number in lowercase hex without leading zeros (`"0"` for zero); an id
/// that does not parse as a number below 2^128 falls back to its trimmed lowercase text.
/// STRING: trimmed, case preserved.
///
/// An id longer than SMPP allows ([`MAX_MESSAGE_ID_OCTETS`]) becomes its digest
/// ([`storable_id`]), the same for the receipt that carries it.
pub fn normalize_submit_id(raw: &str, msg_id_format: IdFormat) -> String {
    storable_id(match msg_id_format {
        IdFormat::Hex => canonical_number(raw, 16),
        IdFormat::Dec => canonical_number(raw, 10),
        IdFormat::String => raw.trim().to_owned(),
    })
}

/// SMPP 3.4 §5.2.23: a `message_id` is a C-Octet String of at most 65 octets, the NUL
/// included.
pub const MAX_MESSAGE_ID_OCTETS: usize = 64;

/// Prefix of a digest that stands for an over-long id.
pub const DIGEST_PREFIX: &str = "sha256:";

/// True when an id as received is longer than SMPP allows (a protocol violation of the
/// SMSC's, counted; the id is still used, through [`storable_id`]).
pub fn is_over_long(raw: &str) -> bool {
    raw.trim().len() > MAX_MESSAGE_ID_OCTETS
}

/// The id as stored and compared: itself, or, past [`MAX_MESSAGE_ID_OCTETS`], `sha256:`
/// and the hex SHA-256 of its normalised form (71 characters). A buggy or hostile SMSC
/// cannot make a row too large for its index (PostgreSQL refuses a btree entry over
/// about 2.7 KB), and a receipt carrying the same id still finds the row.
pub fn storable_id(normalised: String) -> String {
    if normalised.len() <= MAX_MESSAGE_ID_OCTETS {
        return normalised;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(normalised.as_bytes());
    format!("{DIGEST_PREFIX}{}", hex::encode(digest))
}

/// The canonical form of a receipt's message id, comparable with
/// [`normalize_submit_id`] of the same operator.
///
/// | msgIdFormat \ dlrIdFormat | HEX          | DEC          | STRING                    |
/// |---------------------------|--------------|--------------|---------------------------|
/// | HEX or DEC                | parse as hex | parse as dec | parse as msgIdFormat says |
/// | STRING                    | trimmed      | trimmed      | trimmed                   |
///
/// Numbers become lowercase hex without leading zeros, as in [`normalize_submit_id`].
/// When submit ids are opaque strings there is no number to convert to, so the receipt
/// id is compared as written (trimmed).
pub fn normalize_receipt_id(raw: &str, dlr_id_format: IdFormat, msg_id_format: IdFormat) -> String {
    let radix = match (msg_id_format, dlr_id_format) {
        (IdFormat::String, _) => return storable_id(raw.trim().to_owned()),
        (_, IdFormat::Hex) => 16,
        (_, IdFormat::Dec) => 10,
        (IdFormat::Hex, IdFormat::String) => 16,
        (IdFormat::Dec, IdFormat::String) => 10,
    };
    storable_id(canonical_number(raw, radix))
}

fn canonical_number(raw: &str, radix: u32) -> String {
    let trimmed = raw.trim();
    let digits = if radix == 16 {
        trimmed
            .strip_prefix("0x")
            .or_else(|| trimmed.strip_prefix("0X"))
            .unwrap_or(trimmed)
    } else {
        trimmed
    };
    // from_str_radix accepts a leading '+': an id never has one, so refuse it.
    let parsed = if digits.starts_with('+') {
        None
    } else {
        u128::from_str_radix(digits, radix).ok()
    };
    match parsed {
        Some(number) => format!("{number:x}"),
        None => trimmed.to_lowercase(),
    }
}

impl DlrInboundEvent {
    /// The event of a receipt from the SMSC. `receipt` is `None` when the deliver_sm was
    /// a receipt without a message id; `operator_message_id` is the receipt's id already
    /// normalised to the submit_sm_resp format; `matched` is its correlation, if any.
    /// The event id is derived from what the SMSC said, so a receipt sent twice is one
    /// event (JetStream de-duplicates by `Nats-Msg-Id`).
    pub fn from_receipt(
        bind: &BindKey,
        receipt: Option<&ParsedReceipt>,
        operator_message_id: Option<String>,
        matched: Option<ReceiptMatch>,
        received_at: String,
    ) -> Self {
        let status = receipt.map_or(DlrStatus::Unknown, |r| r.status);
        let raw_stat = receipt.and_then(|r| r.raw_stat.clone());
        let error_code = receipt.and_then(|r| r.error_code.clone());
        let done_date = receipt
            .and_then(|r| r.done_date.as_ref())
            .map(|d| d.to_rfc3339_utc());
        let event_id = event_id(&[
            bind.operator_id.as_str(),
            operator_message_id.as_deref().unwrap_or(""),
            status.as_str(),
            raw_stat.as_deref().unwrap_or(""),
            done_date.as_deref().unwrap_or(""),
            error_code.as_deref().unwrap_or(""),
        ]);
        DlrInboundEvent {
            version: "1.0",
            event_id,
            correlated: matched.is_some(),
            segment_index: matched.as_ref().map(|m| u32::from(m.segment_index)),
            segment_count: matched.as_ref().map(|m| u32::from(m.segment_count)),
            message_id: matched.map(|m| m.message_id),
            operator_id: bind.operator_id.to_string(),
            operator_message_id,
            status: status.as_str(),
            smpp_message_state: receipt.and_then(|r| r.message_state.or(r.raw_message_state)),
            raw_stat,
            error_code,
            source: "DELIVER_SM",
            submit_date: receipt
                .and_then(|r| r.submit_date.as_ref())
                .map(|d| d.to_rfc3339_utc()),
            done_date,
            direction: bind.direction.as_str(),
            bind_id: bind.bind_id,
            received_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn date(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> Option<ReceiptDate> {
        Some(ReceiptDate::new(y, mo, d, h, mi, s).unwrap())
    }

    fn deliver(esm_class: u8, text: &str, tlvs: Vec<Tlv>) -> SmBody {
        SmBody {
            esm_class,
            short_message: text.as_bytes().to_vec(),
            tlvs,
            ..SmBody::default()
        }
    }

    #[test]
    fn an_over_long_id_is_stored_as_its_digest_and_found_by_its_receipt() {
        let raw = "ab".repeat(2_000);
        assert!(is_over_long(&raw));
        for (msg, dlr) in [
            (IdFormat::Hex, IdFormat::Hex),
            (IdFormat::Hex, IdFormat::String),
            (IdFormat::Dec, IdFormat::Dec),
            (IdFormat::String, IdFormat::String),
        ] {
            let stored = normalize_submit_id(&raw, msg);
            assert!(stored.starts_with(DIGEST_PREFIX), "{stored}");
            assert_eq!(stored.len(), DIGEST_PREFIX.len() + 64);
            // The receipt's id, padded as SMSCs do, finds the same row.
            assert_eq!(
                normalize_receipt_id(&format!(" {raw} "), dlr, msg),
                stored,
                "{msg:?}/{dlr:?}"
            );
        }
        // Two different long ids stay apart.
        let other = "ab".repeat(1_999) + "ac";
        assert_ne!(
            normalize_submit_id(&raw, IdFormat::String),
            normalize_submit_id(&other, IdFormat::String)
        );
    }

    #[test]
    fn an_id_within_smpp_s_limit_is_kept_as_it_is() {
        let max = "x".repeat(MAX_MESSAGE_ID_OCTETS);
        assert!(!is_over_long(&max));
        assert_eq!(normalize_submit_id(&max, IdFormat::String), max);
        assert!(is_over_long(&format!("{max}y")));
        assert_eq!(normalize_submit_id("  00FF ", IdFormat::Hex), "ff");
    }

    #[test]
    fn standard_receipt() {
        let r = Receipt::parse(
            "id:0123456789 sub:002 dlvrd:001 submit date:1005232039 done date:1005242339 \
             stat:DELIVRD err:012 text:This is a sample mes",
        );
        assert_eq!(r.id.as_deref(), Some("0123456789"));
        assert_eq!(r.sub.as_deref(), Some("002"));
        assert_eq!(r.dlvrd.as_deref(), Some("001"));
        assert_eq!(r.submit_date, date(2010, 5, 23, 20, 39, 0));
        assert_eq!(r.done_date, date(2010, 5, 24, 23, 39, 0));
        assert_eq!(r.stat.as_deref(), Some("DELIVRD"));
        assert_eq!(r.err.as_deref(), Some("012"));
        assert_eq!(r.text.as_deref(), Some("This is a sample mes"));
        assert!(r.looks_like_receipt());
    }

    /// Receipt shapes seen in the wild (many from cloudhopper-smpp's DeliveryReceiptTest).
    #[test]
    fn real_world_shapes() {
        struct Case {
            text: &'static str,
            id: Option<&'static str>,
            stat: Option<&'static str>,
            err: Option<&'static str>,
            submit: Option<ReceiptDate>,
            done: Option<ReceiptDate>,
            text_field: Option<&'static str>,
        }
        let cases = [
            // Letter case of a key (an SMSC simulator writes `Text:`).
            Case {
                text: "id:4 sub:001 dlvrd:001 submit date:1006020051 done date:1006020051 \
                       stat:DELIVRD err:000 Text:Hello",
                id: Some("4"),
                stat: Some("DELIVRD"),
                err: Some("000"),
                submit: date(2010, 6, 2, 0, 51, 0),
                done: date(2010, 6, 2, 0, 51, 0),
                text_field: Some("Hello"),
            },
            // All upper case keys.
            Case {
                text: "ID:ab12 SUB:001 DLVRD:000 SUBMIT DATE:2611221015 DONE DATE:2611221016 \
                       STAT:UNDELIV ERR:034 TEXT:x",
                id: Some("ab12"),
                stat: Some("UNDELIV"),
                err: Some("034"),
                submit: date(2026, 11, 22, 10, 15, 0),
                done: date(2026, 11, 22, 10, 16, 0),
                text_field: Some("x"),
            },
            // Seconds in the dates, a UUID id, empty text.
            Case {
                text: "id:74e02ee1-4e2f-4a6e-a78b-4b247d756a22 sub:001 dlvrd:001 \
                       submit date:110206193041 done date:110206193110 stat:DELIVRD err:000 text:",
                id: Some("74e02ee1-4e2f-4a6e-a78b-4b247d756a22"),
                stat: Some("DELIVRD"),
                err: Some("000"),
                submit: date(2011, 2, 6, 19, 30, 41),
                done: date(2011, 2, 6, 19, 31, 10),
                text_field: None,
            },
            // Fields out of order, empty text in the middle.
            Case {
                text: "sub:001 id:74e02ee1 err:000 dlvrd:001 done date:110206193110 \
                       submit date:110206193041 text: stat:DELIVRD",
                id: Some("74e02ee1"),
                stat: Some("DELIVRD"),
                err: Some("000"),
                submit: date(2011, 2, 6, 19, 30, 41),
                done: date(2011, 2, 6, 19, 31, 10),
                text_field: None,
            },
            // Missing sub and dlvrd, 14-digit dates, one-digit err, hex id.
            Case {
                text: "id:2E179B310EDE971B2760C72B7F026E1B submit date:20110314181534 \
                       done date:20110314181741 stat:DELIVRD err:0",
                id: Some("2E179B310EDE971B2760C72B7F026E1B"),
                stat: Some("DELIVRD"),
                err: Some("0"),
                submit: date(2011, 3, 14, 18, 15, 34),
                done: date(2011, 3, 14, 18, 17, 41),
                text_field: None,
            },
            // text: with colons and key-like words; the real fields win.
            Case {
                text: "id:0059113978 sub:001 dlvrd:001 submit date:1002101730 \
                       done date:1002101731 stat:DELIVRD err:000 text:@$#!%&/: stat:FAKE id:9",
                id: Some("0059113978"),
                stat: Some("DELIVRD"),
                err: Some("000"),
                submit: date(2010, 2, 10, 17, 30, 0),
                done: date(2010, 2, 10, 17, 31, 0),
                text_field: Some("@$#!%&/: stat:FAKE id:9"),
            },
            // Underscored date keys, extra spaces around colons and values.
            Case {
                text: "  id : 77   sub:1  dlvrd:1 submit_date: 2611221015 done_date:2611221015  \
                       stat :  EXPIRED   err: 255  ",
                id: Some("77"),
                stat: Some("EXPIRED"),
                err: Some("255"),
                submit: date(2026, 11, 22, 10, 15, 0),
                done: date(2026, 11, 22, 10, 15, 0),
                text_field: None,
            },
            // Zero dates (cloudhopper's placeholder) and an unknown stat.
            Case {
                text: "id:0000000001 sub:000 dlvrd:000 submit date:0000000000 \
                       done date:0000000000 stat:BADSTAT err:000 text:",
                id: Some("0000000001"),
                stat: Some("BADSTAT"),
                err: Some("000"),
                submit: None,
                done: None,
                text_field: None,
            },
            // Comma separated, unknown extra fields.
            Case {
                text: "id:42,sub:001,dlvrd:001,stat:REJECTD,err:11b,mcc:412,text:hi",
                id: Some("42"),
                stat: Some("REJECTD"),
                err: Some("11b"),
                submit: None,
                done: None,
                text_field: Some("hi"),
            },
            // Trailing NUL padding.
            Case {
                text: "id:5 stat:ENROUTE\0\0",
                id: Some("5"),
                stat: Some("ENROUTE"),
                err: None,
                submit: None,
                done: None,
                text_field: None,
            },
        ];
        for case in cases {
            let r = Receipt::parse(case.text);
            assert_eq!(r.id.as_deref(), case.id, "{}", case.text);
            assert_eq!(r.stat.as_deref(), case.stat, "{}", case.text);
            assert_eq!(r.err.as_deref(), case.err, "{}", case.text);
            assert_eq!(r.submit_date, case.submit, "{}", case.text);
            assert_eq!(r.done_date, case.done, "{}", case.text);
            assert_eq!(r.text.as_deref(), case.text_field, "{}", case.text);
            assert!(r.looks_like_receipt(), "{}", case.text);
        }
    }

    #[test]
    fn misspelt_keys_are_not_keys() {
        let r = Receipt::parse("i:0123 su:002 dlvr:001 submit dat:1005232039 sat:DELIVRD rr:1");
        assert_eq!(r, Receipt::default());
        assert!(!r.looks_like_receipt());
        // Keys inside words do not count.
        let r = Receipt::parse("msgid:1 substat:DELIVRD");
        assert_eq!(r.id, None);
        assert_eq!(r.stat, None);
    }

    #[test]
    fn ordinary_messages_are_not_receipts() {
        for text in [
            "",
            "Hello, see you at 10:30",
            "My id: 12345",
            "status: ok, err: none",
            "text: call me",
        ] {
            assert!(!is_receipt(0x00, text), "{text}");
        }
        assert!(is_receipt(0x04, "anything"));
        assert!(is_receipt(0x44, ""));
        assert!(!is_receipt(0x08, "hello"));
        assert!(is_receipt(0x00, "id:1 stat:DELIVRD"));
        assert!(is_receipt(0x00, "sub:001 dlvrd:001 err:000"));
    }

    #[test]
    fn dates() {
        assert_eq!(
            ReceiptDate::parse("2611221015"),
            date(2026, 11, 22, 10, 15, 0)
        );
        assert_eq!(
            ReceiptDate::parse("2611221015").unwrap().to_rfc3339_utc(),
            "2026-11-22T10:15:00Z"
        );
        assert_eq!(
            ReceiptDate::parse("240229235959").unwrap().to_string(),
            "2024-02-29T23:59:59Z"
        );
        for bad in [
            "",
            "261122101",
            "26112210155",
            "2613221015",
            "2611321015",
            "2611222415",
            "2611221060",
            "261122101560",
            "230229000000",
            "26112210a5",
            "+611221015",
            "0000000000",
            "２６11221015",
        ] {
            assert_eq!(ReceiptDate::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn status_mapping() {
        let states = [
            (1, "ENROUTE", DlrStatus::Enroute, "ENROUTE"),
            (2, "DELIVRD", DlrStatus::Delivered, "DELIVERED"),
            (3, "EXPIRED", DlrStatus::Expired, "EXPIRED"),
            (4, "DELETED", DlrStatus::Deleted, "DELETED"),
            (5, "UNDELIV", DlrStatus::Undeliverable, "UNDELIVERABLE"),
            (6, "ACCEPTD", DlrStatus::Accepted, "ACCEPTED"),
            (7, "UNKNOWN", DlrStatus::Unknown, "UNKNOWN"),
            (8, "REJECTD", DlrStatus::Rejected, "REJECTED"),
        ];
        for (state, stat, status, name) in states {
            assert_eq!(DlrStatus::from_message_state(state), Some(status));
            assert_eq!(status.message_state(), state);
            assert_eq!(DlrStatus::from_stat(stat), Some(status));
            assert_eq!(DlrStatus::from_stat(&stat.to_lowercase()), Some(status));
            assert_eq!(DlrStatus::from_stat(name), Some(status));
            assert_eq!(DlrStatus::from_stat(&state.to_string()), Some(status));
            assert_eq!(status.as_str(), name);
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{name}\"")
            );
            assert_eq!(
                serde_json::from_str::<DlrStatus>(&format!("\"{name}\"")).unwrap(),
                status
            );
        }
        assert_eq!(
            DlrStatus::from_stat("DELIVERED"),
            Some(DlrStatus::Delivered)
        );
        assert_eq!(DlrStatus::from_stat("BADSTAT"), None);
        assert_eq!(DlrStatus::from_message_state(0), None);
        assert_eq!(DlrStatus::from_message_state(9), None);
        assert!(!DlrStatus::Enroute.is_final());
        assert!(DlrStatus::Accepted.is_final());
    }

    #[test]
    fn parse_receipt_from_text_only() {
        let body = deliver(
            0x04,
            "id:0123456789 sub:001 dlvrd:001 submit date:1005232039 done date:1005242339 \
             stat:DELIVRD err:012 text:hello",
            vec![],
        );
        let parsed = parse_receipt(&body).unwrap();
        assert_eq!(parsed.operator_message_id, "0123456789");
        assert_eq!(parsed.status, DlrStatus::Delivered);
        assert_eq!(parsed.message_state, Some(2));
        assert_eq!(parsed.raw_message_state, None);
        assert_eq!(parsed.raw_stat.as_deref(), Some("DELIVRD"));
        assert_eq!(parsed.error_code.as_deref(), Some("012"));
        assert_eq!(parsed.network_error, None);
        assert_eq!(
            parsed.submit_date.map(|d| d.to_rfc3339_utc()).as_deref(),
            Some("2010-05-23T20:39:00Z")
        );
        assert_eq!(parsed.done_date, date(2010, 5, 24, 23, 39, 0));
        assert_eq!(parsed.text_fields.text.as_deref(), Some("hello"));
    }

    #[test]
    fn tlvs_win_over_the_text() {
        let body = deliver(
            0x04,
            "id:0059113978 sub:001 dlvrd:001 submit date:1002101730 done date:1002101731 \
             stat:UNDELIV err:000 text:@$#!%&/:",
            vec![
                Tlv::new(tlv_tag::RECEIPTED_MESSAGE_ID, b"38601fa\0".to_vec()),
                Tlv::from_u8(tlv_tag::MESSAGE_STATE, 2),
                Tlv::new(tlv_tag::NETWORK_ERROR_CODE, vec![3, 0x04, 0xD2]),
            ],
        );
        let parsed = parse_receipt(&body).unwrap();
        assert_eq!(parsed.operator_message_id, "38601fa");
        assert_eq!(parsed.status, DlrStatus::Delivered);
        assert_eq!(parsed.message_state, Some(2));
        assert_eq!(parsed.raw_stat.as_deref(), Some("UNDELIV"));
        assert_eq!(parsed.error_code.as_deref(), Some("3:1234"));
        assert_eq!(
            parsed.network_error,
            Some(NetworkErrorCode {
                network_type: Some(3),
                error_code: 1234
            })
        );
        assert_eq!(parsed.text_fields.id.as_deref(), Some("0059113978"));
        // The decimal text id and the hex TLV id are the same message.
        assert_eq!(
            normalize_receipt_id(&parsed.operator_message_id, IdFormat::Hex, IdFormat::Dec),
            normalize_submit_id("0059113978", IdFormat::Dec)
        );
    }

    #[test]
    fn sloppy_tlvs() {
        // receipted_message_id without its NUL, message_state as two octets, a two-octet
        // network_error_code, an empty text.
        let body = deliver(
            0x04,
            "",
            vec![
                Tlv::new(tlv_tag::RECEIPTED_MESSAGE_ID, b"ABC123".to_vec()),
                Tlv::new(tlv_tag::MESSAGE_STATE, vec![0, 5]),
                Tlv::new(tlv_tag::NETWORK_ERROR_CODE, vec![0x00, 0x22]),
            ],
        );
        let parsed = parse_receipt(&body).unwrap();
        assert_eq!(parsed.operator_message_id, "ABC123");
        assert_eq!(parsed.status, DlrStatus::Undeliverable);
        assert_eq!(parsed.error_code.as_deref(), Some("34"));
        assert_eq!(parsed.submit_date, None);
        assert_eq!(parsed.raw_stat, None);
    }

    #[test]
    fn unknown_states_keep_the_raw_value() {
        let body = deliver(
            0x04,
            "id:1 stat:WEIRD",
            vec![Tlv::from_u8(tlv_tag::MESSAGE_STATE, 9)],
        );
        let parsed = parse_receipt(&body).unwrap();
        assert_eq!(parsed.status, DlrStatus::Unknown);
        assert_eq!(parsed.message_state, None);
        assert_eq!(parsed.raw_message_state, Some(9));
        assert_eq!(parsed.raw_stat.as_deref(), Some("WEIRD"));
        // An unknown TLV state does not hide a known stat.
        let body = deliver(
            0x04,
            "id:1 stat:EXPIRED",
            vec![Tlv::from_u8(tlv_tag::MESSAGE_STATE, 0)],
        );
        assert_eq!(parse_receipt(&body).unwrap().status, DlrStatus::Expired);
        // No state at all.
        let parsed = parse_receipt(&deliver(0x04, "id:1 sub:001", vec![])).unwrap();
        assert_eq!(parsed.status, DlrStatus::Unknown);
        assert_eq!(parsed.message_state, None);
        // stat:UNKNOWN is a known state.
        let parsed = parse_receipt(&deliver(0x04, "id:1 stat:UNKNOWN", vec![])).unwrap();
        assert_eq!(parsed.message_state, Some(7));
    }

    #[test]
    fn receipts_by_text_or_tlvs_without_the_esm_flag() {
        let parsed = parse_receipt(&deliver(0x00, "id:9 stat:DELIVRD", vec![])).unwrap();
        assert_eq!(parsed.operator_message_id, "9");
        let tlv_only = deliver(
            0x00,
            "",
            vec![
                Tlv::from_c_string(tlv_tag::RECEIPTED_MESSAGE_ID, "x1"),
                Tlv::from_u8(tlv_tag::MESSAGE_STATE, 8),
            ],
        );
        assert!(is_receipt_body(&tlv_only));
        assert_eq!(
            parse_receipt(&tlv_only).unwrap().status,
            DlrStatus::Rejected
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_receipt(&deliver(0x00, "hello there", vec![])),
            Err(DlrError::NotAReceipt { esm_class: 0 })
        );
        assert!(!is_receipt_body(&deliver(0x00, "hello there", vec![])));
        assert_eq!(
            parse_receipt(&deliver(0x04, "stat:DELIVRD", vec![])),
            Err(DlrError::MissingMessageId { esm_class: 4 })
        );
        // An empty receipted_message_id does not count; the text id is used.
        let body = deliver(
            0x04,
            "id:77 stat:DELIVRD",
            vec![Tlv::new(tlv_tag::RECEIPTED_MESSAGE_ID, b"\0".to_vec())],
        );
        assert_eq!(parse_receipt(&body).unwrap().operator_message_id, "77");
    }

    #[test]
    fn body_text_decodings() {
        let mut body = deliver(0x04, "", vec![]);
        body.tlvs.push(Tlv::new(
            tlv_tag::MESSAGE_PAYLOAD,
            b"id:1 stat:DELIVRD".to_vec(),
        ));
        assert_eq!(body_text(&body), "id:1 stat:DELIVRD");
        assert_eq!(parse_receipt(&body).unwrap().status, DlrStatus::Delivered);

        body.tlvs.clear();
        body.data_coding = 0x08;
        body.short_message = "id:ä1 stat:DELIVRD"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(parse_receipt(&body).unwrap().operator_message_id, "ä1");

        body.data_coding = 0x03;
        body.short_message = b"id:\xE91 stat:DELIVRD".to_vec();
        assert_eq!(parse_receipt(&body).unwrap().operator_message_id, "é1");
    }

    #[test]
    fn receipt_debug_redacts_the_text() {
        let r = Receipt::parse("id:1 stat:DELIVRD text:secret words");
        let debug = format!("{r:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("text_len: Some(12)"), "{debug}");
    }

    #[test]
    fn id_normalisation() {
        use IdFormat::*;
        // (raw submit id, msg format, raw receipt id, dlr format)
        let same = [
            ("38601FA", Hex, "0059113978", Dec),
            ("38601fa", Hex, "038601FA", Hex),
            ("0x38601fa", Hex, "59113978", Dec),
            ("59113978", Dec, "38601fa", Hex),
            ("0059113978", Dec, "59113978", Dec),
            ("59113978", Dec, "059113978", String),
            ("00ab", Hex, "AB", String),
            (" 0 ", Dec, "000", Hex),
            ("ABC-def", String, " ABC-def ", String),
            ("ABC-def", String, "ABC-def", Hex),
            ("not a number", Dec, "NOT A NUMBER", Dec),
            (
                "2E179B310EDE971B2760C72B7F026E1B",
                Hex,
                "2e179b310ede971b2760c72b7f026e1b",
                Hex,
            ),
        ];
        for (submit, msg, receipt, dlr) in same {
            assert_eq!(
                normalize_submit_id(submit, msg),
                normalize_receipt_id(receipt, dlr, msg),
                "{submit} {msg:?} vs {receipt} {dlr:?}"
            );
        }
        let different = [
            ("abc", String, "ABC", String),
            ("10", Dec, "10", Hex),
            ("+10", Dec, "10", Dec),
        ];
        for (submit, msg, receipt, dlr) in different {
            assert_ne!(
                normalize_submit_id(submit, msg),
                normalize_receipt_id(receipt, dlr, msg),
                "{submit} {msg:?} vs {receipt} {dlr:?}"
            );
        }
        assert_eq!(normalize_submit_id("0059113978", Dec), "38601fa");
        assert_eq!(normalize_submit_id("000", Hex), "0");
        assert_eq!(normalize_submit_id(" Ab-C ", String), "Ab-C");
        // Too large for u128: the trimmed lowercase text.
        let long = "F".repeat(40);
        assert_eq!(normalize_submit_id(&long, Hex), "f".repeat(40));
    }

    #[test]
    fn id_format_serde() {
        for (format, name) in [
            (IdFormat::Hex, "HEX"),
            (IdFormat::Dec, "DEC"),
            (IdFormat::String, "STRING"),
        ] {
            assert_eq!(
                serde_json::to_string(&format).unwrap(),
                format!("\"{name}\"")
            );
            assert_eq!(
                serde_json::from_str::<IdFormat>(&format!("\"{name}\"")).unwrap(),
                format
            );
            assert_eq!(format.as_str(), name);
        }
        assert!(serde_json::from_str::<IdFormat>("\"hex\"").is_err());
    }

    fn receipt_key(words: &'static [&'static str]) -> impl Strategy<Value = String> {
        let separators = prop_oneof![Just(" "), Just("_"), Just(""), Just("  ")];
        (separators, any::<bool>(), any::<bool>()).prop_map(move |(sep, upper, space)| {
            let key = words.join(sep);
            let key = if upper { key.to_uppercase() } else { key };
            if space {
                format!("{key} :")
            } else {
                format!("{key}:")
            }
        })
    }

    proptest! {
        #[test]
        fn parser_never_panics_on_text(text in any::<String>()) {
            let r = Receipt::parse(&text);
            let _ = r.looks_like_receipt();
            let _ = is_receipt(0, &text);
        }

        #[test]
        fn parser_never_panics_on_key_soup(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("id:"), Just("ID :"), Just("stat:"), Just("text:"), Just("submit date:"),
                    Just("done_date:"), Just(" "), Just(":"), Just("é"), Just("\0"), Just("2611221015"),
                    Just("sub"), Just("date"), Just("_"), Just(","),
                ],
                0..40,
            )
        ) {
            let text: String = parts.concat();
            let _ = Receipt::parse(&text);
        }

        #[test]
        fn parse_receipt_never_panics_on_bytes(
            esm_class in any::<u8>(),
            data_coding in any::<u8>(),
            short_message in proptest::collection::vec(any::<u8>(), 0..300),
            tlvs in proptest::collection::vec(
                (
                    prop_oneof![
                        Just(tlv_tag::RECEIPTED_MESSAGE_ID),
                        Just(tlv_tag::MESSAGE_STATE),
                        Just(tlv_tag::NETWORK_ERROR_CODE),
                        Just(tlv_tag::MESSAGE_PAYLOAD),
                        any::<u16>(),
                    ],
                    proptest::collection::vec(any::<u8>(), 0..8),
                ),
                0..4,
            ),
        ) {
            let body = SmBody {
                esm_class,
                data_coding,
                short_message,
                tlvs: tlvs.into_iter().map(|(tag, value)| Tlv::new(tag, value)).collect(),
                ..SmBody::default()
            };
            let _ = is_receipt_body(&body);
            if let Ok(parsed) = parse_receipt(&body) {
                prop_assert!(!parsed.operator_message_id.is_empty());
                if let Some(state) = parsed.message_state {
                    prop_assert_eq!(state, parsed.status.message_state());
                }
                if parsed.status != DlrStatus::Unknown {
                    prop_assert!(parsed.message_state.is_some());
                }
            }
        }

        #[test]
        fn fields_in_any_order_and_case_round_trip(
            id in "[0-9A-Za-z-]{1,20}",
            stat in prop_oneof![Just("DELIVRD"), Just("UNDELIV"), Just("EXPIRED"), Just("REJECTD")],
            err in "[0-9]{3}",
            submit in (0u8..100, 1u8..13, 1u8..29, 0u8..24, 0u8..60, proptest::option::of(0u8..60)),
            id_key in receipt_key(&["id"]),
            stat_key in receipt_key(&["stat"]),
            err_key in receipt_key(&["err"]),
            date_key in receipt_key(&["submit", "date"]),
            order in Just(vec![0usize, 1, 2, 3]).prop_shuffle(),
            with_text in any::<bool>(),
        ) {
            let (yy, mo, d, h, mi, s) = submit;
            let digits = match s {
                Some(s) => format!("{yy:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}"),
                None => format!("{yy:02}{mo:02}{d:02}{h:02}{mi:02}"),
            };
            let fields = [
                format!("{id_key}{id}"),
                format!("{stat_key}{stat}"),
                format!("{err_key}{err}"),
                format!("{date_key}{digits}"),
            ];
            let mut text = order.iter().map(|i| fields[*i].clone()).collect::<Vec<_>>().join(" ");
            if with_text {
                text.push_str(" text:a: b id:zz stat:FAKE");
            }
            let r = Receipt::parse(&text);
            prop_assert_eq!(r.id.as_deref(), Some(id.as_str()), "{}", text);
            prop_assert_eq!(r.stat.as_deref(), Some(stat), "{}", text);
            prop_assert_eq!(r.err.as_deref(), Some(err.as_str()), "{}", text);
            prop_assert_eq!(
                r.submit_date,
                ReceiptDate::new(2000 + u16::from(yy), mo, d, h, mi, s.unwrap_or(0)),
                "{}", text
            );
            prop_assert!(r.looks_like_receipt());
        }

        #[test]
        fn hex_and_decimal_ids_meet(
            n in any::<u128>(),
            zeros in 0usize..4,
            upper in any::<bool>(),
        ) {
            let hex = format!("{}{n:x}", "0".repeat(zeros));
            let hex = if upper { hex.to_uppercase() } else { hex };
            let dec = format!("{}{n}", "0".repeat(zeros));
            let stored = normalize_submit_id(&hex, IdFormat::Hex);
            prop_assert_eq!(&stored, &normalize_receipt_id(&dec, IdFormat::Dec, IdFormat::Hex));
            prop_assert_eq!(&stored, &normalize_receipt_id(&hex, IdFormat::Hex, IdFormat::Hex));
            prop_assert_eq!(&stored, &normalize_receipt_id(&hex, IdFormat::String, IdFormat::Hex));
            let stored = normalize_submit_id(&dec, IdFormat::Dec);
            prop_assert_eq!(&stored, &normalize_receipt_id(&hex, IdFormat::Hex, IdFormat::Dec));
            prop_assert_eq!(&stored, &normalize_receipt_id(&dec, IdFormat::String, IdFormat::Dec));
            prop_assert_eq!(stored, format!("{n:x}"));
        }

        #[test]
        fn normalisation_never_panics(raw in any::<String>()) {
            for msg in [IdFormat::Hex, IdFormat::Dec, IdFormat::String] {
                let _ = normalize_submit_id(&raw, msg);
                for dlr in [IdFormat::Hex, IdFormat::Dec, IdFormat::String] {
                    let _ = normalize_receipt_id(&raw, dlr, msg);
                }
            }
        }
    }

    fn event_bind() -> BindKey {
        BindKey::new(
            crate::config::OperatorId::try_new("roshan").unwrap(),
            crate::config::Direction::Trx,
            1,
        )
    }

    fn receipt(text: &str) -> ParsedReceipt {
        let body = SmBody {
            esm_class: 0x04,
            short_message: text.as_bytes().to_vec(),
            ..SmBody::default()
        };
        parse_receipt(&body).unwrap()
    }

    #[test]
    fn a_receipt_sent_twice_is_one_event_and_another_status_is_another() {
        let text = "id:1f sub:001 dlvrd:001 submit date:2501011200 done date:2501011201 stat:DELIVRD err:000 text:";
        let matched = ReceiptMatch {
            message_id: "m-1".into(),
            segment_index: 2,
            segment_count: 3,
            traceparent: None,
        };
        let at = "2026-12-04T06:00:00.000Z".to_owned();
        let first = DlrInboundEvent::from_receipt(
            &event_bind(),
            Some(&receipt(text)),
            Some("1f".into()),
            Some(matched.clone()),
            at.clone(),
        );
        let again = DlrInboundEvent::from_receipt(
            &event_bind(),
            Some(&receipt(text)),
            Some("1f".into()),
            None,
            "2026-12-04T06:00:09.000Z".into(),
        );
        assert_eq!(
            first.event_id, again.event_id,
            "same receipt, same Nats-Msg-Id"
        );
        assert_eq!(first.message_id.as_deref(), Some("m-1"));
        assert_eq!(
            (first.segment_index, first.segment_count),
            (Some(2), Some(3))
        );
        assert!(first.correlated && !again.correlated);
        assert_eq!(first.status, "DELIVERED");
        assert_eq!(first.bind_id, 1);
        let failed = DlrInboundEvent::from_receipt(
            &event_bind(),
            Some(&receipt(&text.replace("DELIVRD", "UNDELIV"))),
            Some("1f".into()),
            Some(matched),
            at,
        );
        assert_ne!(failed.event_id, first.event_id);
        let none = DlrInboundEvent::from_receipt(&event_bind(), None, None, None, String::new());
        assert_eq!((none.status, none.correlated), ("UNKNOWN", false));
    }
}
