//! Mobile-originated messages: what a `deliver_sm` that is not a receipt says. The text
//! is decoded by `data_coding` (0x00 GSM 7-bit default alphabet, unpacked; 0x01 IA5 /
//! ASCII; 0x03 Latin-1; 0x08 UCS2 with surrogate pairs; anything else, or bytes that do
//! not decode, become base64 with `binary`), `message_payload` wins over `short_message`,
//! a UDH is stripped from the user data, and where the part sits in a concatenated
//! message is read from the UDH (IEI 0x00 8-bit or 0x08 16-bit reference) or the SAR TLVs.

use crate::encoding;
#[cfg(test)]
use crate::protocol::pdu::Tlv;
use crate::protocol::pdu::{SmBody, find_tlv, tlv_tag};

/// esm_class bit: the user data starts with a UDH.
const ESM_CLASS_UDHI: u8 = 0x40;

/// Where one part sits in a concatenated message (UDH IEI 0x00 / 0x08 or SAR TLVs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConcatPart {
    /// The message's reference (8 or 16 bits).
    pub reference: u16,
    pub total: u8,
    /// 1-based position of this part.
    pub seq: u8,
}

/// The content of one MO part.
#[derive(Clone, PartialEq, Eq)]
pub struct DecodedMo {
    /// The text, or the user data as base64 when `binary`.
    pub text: String,
    pub binary: bool,
    pub data_coding: u8,
    /// Parts of the concatenated message this part belongs to (1 when not concatenated).
    pub parts: u8,
    /// This part's place, when it is one of several.
    pub concat: Option<ConcatPart>,
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
    let (user_data, concat) = user_data(body);
    let (text, binary) = decode_text(body.data_coding, user_data);
    DecodedMo {
        text,
        binary,
        data_coding: body.data_coding,
        parts: concat.map_or(1, |c| c.total),
        concat,
    }
}

/// The user data of a `deliver_sm` (UDH stripped; `message_payload` wins) and, when it
/// is one part of several, where it sits.
pub fn user_data(body: &SmBody) -> (&[u8], Option<ConcatPart>) {
    let payload: &[u8] = find_tlv(&body.tlvs, tlv_tag::MESSAGE_PAYLOAD)
        .map_or(&body.short_message, |t| t.value.as_slice());
    let (user_data, udh) = split_udh(body.esm_class, payload);
    let concat = udh
        .or_else(|| sar(body))
        .filter(|c| c.total > 1 && (1..=c.total).contains(&c.seq));
    (user_data, concat)
}

/// The SAR TLVs (sar_msg_ref_num, sar_total_segments, sar_segment_seqnum), all three.
fn sar(body: &SmBody) -> Option<ConcatPart> {
    let value = |tag| find_tlv(&body.tlvs, tag).map(|t| t.value.as_slice());
    let reference = match value(tlv_tag::SAR_MSG_REF_NUM)? {
        [hi, lo] => u16::from_be_bytes([*hi, *lo]),
        [one] => u16::from(*one),
        _ => return None,
    };
    let [total] = value(tlv_tag::SAR_TOTAL_SEGMENTS)? else {
        return None;
    };
    let [seq] = value(tlv_tag::SAR_SEGMENT_SEQNUM)? else {
        return None;
    };
    Some(ConcatPart {
        reference,
        total: *total,
        seq: *seq,
    })
}

/// Decode user data by its data_coding. Codings we cannot read as text are base64.
pub fn decode_text(data_coding: u8, user_data: &[u8]) -> (String, bool) {
    let text = match data_coding {
        0x00 => encoding::decode_gsm7(user_data).ok(),
        // IA5 is 7-bit ASCII; a stray 8-bit byte is read as Latin-1 rather than lost.
        0x01 | 0x03 => Some(encoding::decode_latin1(user_data)),
        0x08 => encoding::decode_ucs2(user_data).ok(),
        _ => None,
    };
    match text {
        Some(text) => (text, false),
        None => (base64(user_data), true),
    }
}

/// Strip a UDH (esm_class UDHI) and read its concatenation element, if any. A UDH whose
/// length runs past the payload is not a UDH: the payload is kept whole.
pub fn split_udh(esm_class: u8, payload: &[u8]) -> (&[u8], Option<ConcatPart>) {
    if esm_class & ESM_CLASS_UDHI == 0 || payload.is_empty() {
        return (payload, None);
    }
    let udh_len = usize::from(payload[0]) + 1;
    if udh_len > payload.len() {
        return (payload, None);
    }
    let mut elements = &payload[1..udh_len];
    let mut concat = None;
    // Information elements: IEI, length, data; the concatenation one may not be first.
    while let [iei, len, rest @ ..] = elements {
        let len = usize::from(*len);
        let Some(data) = rest.get(..len) else {
            break;
        };
        concat = concat.or(match (iei, data) {
            (0x00, [reference, total, seq]) => Some(ConcatPart {
                reference: u16::from(*reference),
                total: *total,
                seq: *seq,
            }),
            (0x08, [hi, lo, total, seq]) => Some(ConcatPart {
                reference: u16::from_be_bytes([*hi, *lo]),
                total: *total,
                seq: *seq,
            }),
            _ => None,
        });
        elements = &rest[len..];
    }
    (&payload[udh_len..], concat)
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
    fn udh_is_stripped_and_its_concatenation_element_read() {
        let part = |reference, total, seq| {
            Some(ConcatPart {
                reference,
                total,
                seq,
            })
        };
        let payload = [0x05, 0x00, 0x03, 0x2A, 0x03, 0x01, b'h', b'i'];
        assert_eq!(split_udh(0x40, &payload), (&b"hi"[..], part(0x2A, 3, 1)));
        assert_eq!(split_udh(0x00, &payload), (&payload[..], None));
        assert_eq!(split_udh(0x40, &[0x09, 0x00]), (&[0x09, 0x00][..], None));
        let sixteen = [0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01, b'o', b'k'];
        assert_eq!(split_udh(0x40, &sixteen), (&b"ok"[..], part(0x1234, 2, 1)));
        // Another element (a port address, IEI 0x05) before the concatenation one.
        let ported = [
            0x0B, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 0x00, 0x03, 0x09, 0x02, 0x02, b'z',
        ];
        assert_eq!(split_udh(0x40, &ported), (&b"z"[..], part(0x09, 2, 2)));
        // An element whose length runs past the UDH ends the walk.
        assert_eq!(
            split_udh(0x40, &[0x02, 0x00, 0x03, b'x']),
            (&b"x"[..], None)
        );
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

    fn body(esm_class: u8, data_coding: u8, short_message: &[u8], tlvs: Vec<Tlv>) -> SmBody {
        SmBody {
            esm_class,
            data_coding,
            short_message: short_message.to_vec(),
            tlvs,
            ..SmBody::default()
        }
    }

    fn tlv(tag: u16, value: &[u8]) -> Tlv {
        Tlv {
            tag,
            value: value.to_vec(),
        }
    }

    #[test]
    fn ia5_is_ascii_not_the_gsm_alphabet() {
        // '@' is 0x40 in ASCII but '¡' in the GSM 7-bit alphabet; '$' 0x24 is '¤' there.
        assert_eq!(
            decode_text(0x01, b"mail@example.com $5"),
            ("mail@example.com $5".to_owned(), false)
        );
        // GSM7 default alphabet, unpacked: 0x00 is '@', 0x02 is '$'.
        assert_eq!(decode_text(0x00, &[0x00, 0x02]), ("@$".to_owned(), false));
    }

    #[test]
    fn ucs2_surrogate_pairs_and_binary_codings() {
        // U+1F600 as a UTF-16 surrogate pair.
        assert_eq!(
            decode_text(0x08, &[0x00, 0x68, 0xD8, 0x3D, 0xDE, 0x00]),
            ("h\u{1F600}".to_owned(), false)
        );
        assert_eq!(decode_text(0x02, &[0x01, 0x02]), ("AQI=".to_owned(), true));
        // A lone surrogate is not text: the bytes are kept, as base64.
        assert_eq!(decode_text(0x08, &[0xD8, 0x3D]), ("2D0=".to_owned(), true));
    }

    #[test]
    fn message_payload_wins_over_short_message() {
        let mo = decode(&body(
            0,
            0x03,
            b"short",
            vec![tlv(tlv_tag::MESSAGE_PAYLOAD, b"the whole payload")],
        ));
        assert_eq!(mo.text, "the whole payload");
        let mo = decode(&body(0, 0x03, b"only short", vec![]));
        assert_eq!(mo.text, "only short");
    }

    #[test]
    fn concatenation_is_read_from_udh_8_and_16_bit_and_from_sar() {
        let eight = decode(&body(
            0x40,
            0x00,
            &[0x05, 0x00, 0x03, 0x2A, 0x03, 0x02, b'h', b'i'],
            vec![],
        ));
        assert_eq!(
            eight.concat,
            Some(ConcatPart {
                reference: 0x2A,
                total: 3,
                seq: 2
            })
        );
        assert_eq!((eight.text.as_str(), eight.parts), ("hi", 3));
        let sixteen = decode(&body(
            0x40,
            0x00,
            &[0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01, b'o', b'k'],
            vec![],
        ));
        assert_eq!(
            sixteen.concat,
            Some(ConcatPart {
                reference: 0x1234,
                total: 2,
                seq: 1
            })
        );
        let sar = decode(&body(
            0,
            0x00,
            b"part",
            vec![
                tlv(tlv_tag::SAR_MSG_REF_NUM, &[0x01, 0x02]),
                tlv(tlv_tag::SAR_TOTAL_SEGMENTS, &[2]),
                tlv(tlv_tag::SAR_SEGMENT_SEQNUM, &[2]),
            ],
        ));
        assert_eq!(
            sar.concat,
            Some(ConcatPart {
                reference: 0x0102,
                total: 2,
                seq: 2
            })
        );
        assert_eq!(sar.parts, 2);
        // Not concatenated: a single part, no reference; a total of 1 is no concatenation.
        assert_eq!(decode(&body(0, 0x00, b"one", vec![])).concat, None);
        let single = decode(&body(
            0x40,
            0x00,
            &[0x05, 0x00, 0x03, 0x07, 0x01, 0x01, b'x'],
            vec![],
        ));
        assert_eq!(single.concat, None);
        // A sequence number outside 1..=total is not a usable part.
        let bad = decode(&body(
            0x40,
            0x00,
            &[0x05, 0x00, 0x03, 0x07, 0x02, 0x03, b'x'],
            vec![],
        ));
        assert_eq!(bad.concat, None);
    }
}
