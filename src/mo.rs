//! Mobile-originated messages: what a `deliver_sm` that is not a receipt says. The text
//! is decoded by `data_coding` (binary codings become base64), `message_payload` is used
//! when `short_message` is empty, and a UDH is stripped from the user data.

use crate::encoding;
use crate::pdu::{SmBody, find_tlv, tlv_tag};

/// esm_class bit: the user data starts with a UDH.
const ESM_CLASS_UDHI: u8 = 0x40;

/// The content of one MO part.
#[derive(Clone, PartialEq, Eq)]
pub struct DecodedMo {
    /// The text, or the user data as base64 when `binary`.
    pub text: String,
    pub binary: bool,
    pub data_coding: u8,
    /// Parts of the concatenated message this part belongs to (1 when not concatenated).
    pub parts: u8,
}

impl std::fmt::Debug for DecodedMo {
    // The text is a subscriber's message: never in a Debug.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedMo")
            .field("binary", &self.binary)
            .field("data_coding", &self.data_coding)
            .field("parts", &self.parts)
            .finish_non_exhaustive()
    }
}

/// Decode the MO in a `deliver_sm` body.
pub fn decode(body: &SmBody) -> DecodedMo {
    let payload: &[u8] = if body.short_message.is_empty() {
        find_tlv(&body.tlvs, tlv_tag::MESSAGE_PAYLOAD).map_or(&[], |t| t.value.as_slice())
    } else {
        &body.short_message
    };
    let (user_data, parts) = split_udh(body.esm_class, payload);
    let (text, binary) = decode_text(body.data_coding, user_data);
    DecodedMo {
        text,
        binary,
        data_coding: body.data_coding,
        parts,
    }
}

/// Decode user data by its data_coding. Codings we cannot read as text are base64.
pub fn decode_text(data_coding: u8, user_data: &[u8]) -> (String, bool) {
    let text = match data_coding {
        0x00 | 0x01 => encoding::decode_gsm7(user_data).ok(),
        0x03 => Some(encoding::decode_latin1(user_data)),
        0x08 => encoding::decode_ucs2(user_data).ok(),
        _ => None,
    };
    match text {
        Some(text) => (text, false),
        None => (base64(user_data), true),
    }
}

/// Strip a UDH (esm_class UDHI) and read the concatenation total, if any.
pub fn split_udh(esm_class: u8, payload: &[u8]) -> (&[u8], u8) {
    if esm_class & ESM_CLASS_UDHI == 0 || payload.is_empty() {
        return (payload, 1);
    }
    let udh_len = usize::from(payload[0]) + 1;
    if udh_len > payload.len() {
        return (payload, 1);
    }
    let total = match payload.get(1..udh_len) {
        Some([0x00, 0x03, _, total, _, ..]) => *total,
        Some([0x08, 0x04, _, _, total, _, ..]) => *total,
        _ => 1,
    };
    (&payload[udh_len..], total.max(1))
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn udh_is_stripped_and_the_total_read() {
        let payload = [0x05, 0x00, 0x03, 0x2A, 0x03, 0x01, b'h', b'i'];
        assert_eq!(split_udh(0x40, &payload), (&b"hi"[..], 3));
        assert_eq!(split_udh(0x00, &payload), (&payload[..], 1));
        assert_eq!(split_udh(0x40, &[0x09, 0x00]), (&[0x09, 0x00][..], 1));
        let sixteen = [0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01, b'o', b'k'];
        assert_eq!(split_udh(0x40, &sixteen), (&b"ok"[..], 2));
    }

    #[test]
    fn text_is_decoded_by_data_coding() {
        assert_eq!(decode_text(0x00, b"Hello"), ("Hello".to_owned(), false));
        assert_eq!(
            decode_text(0x03, &[0x63, 0x61, 0x66, 0xE9]),
            ("café".to_owned(), false)
        );
        assert_eq!(
            decode_text(0x08, &[0x06, 0x33, 0x06, 0x44]),
            ("سل".to_owned(), false)
        );
        assert_eq!(decode_text(0x04, &[0xDE, 0xAD]), ("3q0=".to_owned(), true));
    }
}
