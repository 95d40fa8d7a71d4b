//! The wire forms of a message in `submit_sm`: one part, or a long message as CSMS (UDH),
//! SAR (TLVs) or one `message_payload` TLV (SPEC §6, RULES.md §5).
//!
//! Owns the UDH octets, the SAR and `message_payload` TLVs and the `esm_class` UDHI flag.
//! Must not build PDUs (the caller copies [`Part`] fields into its `submit_sm`), choose
//! the concatenation reference (it comes from Redis, through the caller) or the strategy.

use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::encoded::Encoded;
use super::error::SegmentError;
use super::segment::{RefBits, limits, segment};

/// TLV tag `sar_msg_ref_num` (u16).
pub const SAR_MSG_REF_NUM: u16 = 0x020C;
/// TLV tag `sar_total_segments` (u8).
pub const SAR_TOTAL_SEGMENTS: u16 = 0x020E;
/// TLV tag `sar_segment_seqnum` (u8, from 1).
pub const SAR_SEGMENT_SEQNUM: u16 = 0x020F;
/// TLV tag `message_payload`.
pub const MESSAGE_PAYLOAD: u16 = 0x0424;
/// `esm_class` bit UDHI: `short_message` starts with a user data header.
pub const ESM_CLASS_UDHI: u8 = 0x40;
/// Largest `message_payload` value: its TLV length field is two octets.
pub const MAX_MESSAGE_PAYLOAD: usize = 65_535;

/// How a message longer than one part is sent (OMS `longMessageStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Strategy {
    /// Concatenated SMS: one `submit_sm` per segment, UDH in `short_message`, UDHI set.
    #[serde(rename = "CSMS")]
    Csms,
    /// One `submit_sm` per segment, concatenation in the `sar_*` TLVs, no UDH.
    #[serde(rename = "SAR")]
    Sar,
    /// One `submit_sm` with an empty `short_message` and the whole payload in
    /// `message_payload`.
    #[serde(rename = "TLV")]
    Tlv,
}

impl Strategy {
    /// The wire name: `"CSMS"`, `"SAR"` or `"TLV"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Strategy::Csms => "CSMS",
            Strategy::Sar => "SAR",
            Strategy::Tlv => "TLV",
        }
    }
}

/// What goes into one `submit_sm`, besides addresses and `data_coding`
/// ([`Encoded::data_coding`]). `Debug` shows lengths and tags, never content.
#[derive(Clone, PartialEq, Eq)]
pub struct Part {
    /// `short_message`: UDH (CSMS only) followed by the segment payload; empty for TLV.
    pub short_message: Vec<u8>,
    /// Bits to OR into `esm_class`: [`ESM_CLASS_UDHI`] for CSMS segments, else 0.
    pub esm_class_flags: u8,
    /// Optional parameters as (tag, value), in the order to send them.
    pub tlvs: Vec<(u16, Vec<u8>)>,
    /// Position of this part, from 1.
    pub index: u16,
    /// Number of parts of the message.
    pub count: u16,
}

impl fmt::Debug for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Part")
            .field("short_message_len", &self.short_message.len())
            .field("esm_class_flags", &self.esm_class_flags)
            .field(
                "tlvs",
                &self
                    .tlvs
                    .iter()
                    .map(|(tag, value)| (*tag, value.len()))
                    .collect::<Vec<_>>(),
            )
            .field("index", &self.index)
            .field("count", &self.count)
            .finish()
    }
}

/// Builds the `submit_sm` parts of `encoded`.
///
/// A message within the single-part limit (160 septets / 70 units) is one part with the
/// whole payload, no UDH and no TLV, whatever the strategy. Otherwise:
/// - [`Strategy::Csms`]: per segment, UDH `05 00 03 ref total seq` ([`RefBits::Eight`],
///   `ref` = `reference` mod 256) or `06 08 04 refHi refLo total seq`
///   ([`RefBits::Sixteen`]) + payload, `esm_class_flags` = 0x40.
/// - [`Strategy::Sar`]: per segment, the payload and the TLVs `sar_msg_ref_num` (u16; mod
///   256 with [`RefBits::Eight`] so an SMSC building an 8-bit UDH loses nothing),
///   `sar_total_segments`, `sar_segment_seqnum`. Segments have the same size as with
///   CSMS and that `ref_bits`, since the SMSC adds the UDH before delivery.
/// - [`Strategy::Tlv`]: one part, empty `short_message`, `message_payload` = the payload.
///
/// All segments share `reference`.
///
/// # Errors
///
/// [`SegmentError::TooManySegments`] (CSMS, SAR) beyond 255 segments;
/// [`SegmentError::PayloadTooLarge`] (TLV) beyond 65,535 octets.
pub fn parts(
    encoded: &Encoded,
    strategy: Strategy,
    ref_bits: RefBits,
    reference: u16,
) -> Result<Vec<Part>, SegmentError> {
    let payload = encoded.payload();
    if encoded.units() <= limits(encoded.encoding(), ref_bits).single {
        return Ok(vec![Part {
            short_message: payload.to_vec(),
            esm_class_flags: 0,
            tlvs: Vec::new(),
            index: 1,
            count: 1,
        }]);
    }
    match strategy {
        Strategy::Tlv => tlv_part(payload),
        Strategy::Csms => {
            let segments = Concatenation::new(encoded, ref_bits, reference)?;
            let udh_len = match ref_bits {
                RefBits::Eight => 6,
                RefBits::Sixteen => 7,
            };
            Ok(segments.map(|seq, body| {
                let mut short_message = Vec::with_capacity(udh_len + body.len());
                let [ref_hi, ref_lo] = segments.reference.to_be_bytes();
                match ref_bits {
                    RefBits::Eight => short_message.extend_from_slice(&[0x05, 0x00, 0x03, ref_lo]),
                    RefBits::Sixteen => {
                        short_message.extend_from_slice(&[0x06, 0x08, 0x04, ref_hi, ref_lo])
                    }
                }
                short_message.extend_from_slice(&[segments.total, seq]);
                short_message.extend_from_slice(body);
                Part {
                    short_message,
                    esm_class_flags: ESM_CLASS_UDHI,
                    tlvs: Vec::new(),
                    index: u16::from(seq),
                    count: u16::from(segments.total),
                }
            }))
        }
        Strategy::Sar => {
            let segments = Concatenation::new(encoded, ref_bits, reference)?;
            Ok(segments.map(|seq, body| Part {
                short_message: body.to_vec(),
                esm_class_flags: 0,
                tlvs: vec![
                    (SAR_MSG_REF_NUM, segments.reference.to_be_bytes().to_vec()),
                    (SAR_TOTAL_SEGMENTS, vec![segments.total]),
                    (SAR_SEGMENT_SEQNUM, vec![seq]),
                ],
                index: u16::from(seq),
                count: u16::from(segments.total),
            }))
        }
    }
}

fn tlv_part(payload: &[u8]) -> Result<Vec<Part>, SegmentError> {
    if payload.len() > MAX_MESSAGE_PAYLOAD {
        return Err(SegmentError::PayloadTooLarge {
            octets: payload.len(),
            max: MAX_MESSAGE_PAYLOAD,
        });
    }
    Ok(vec![Part {
        short_message: Vec::new(),
        esm_class_flags: 0,
        tlvs: vec![(MESSAGE_PAYLOAD, payload.to_vec())],
        index: 1,
        count: 1,
    }])
}

/// The segments of a concatenated message with what every part repeats.
struct Concatenation<'a> {
    payload: &'a [u8],
    ranges: Vec<Range<usize>>,
    /// Segment count; [`segment`] caps it at 255.
    total: u8,
    /// The reference as sent: mod 256 for an 8-bit reference.
    reference: u16,
}

impl<'a> Concatenation<'a> {
    fn new(encoded: &'a Encoded, ref_bits: RefBits, reference: u16) -> Result<Self, SegmentError> {
        let ranges = segment(encoded, ref_bits)?;
        let total = u8::try_from(ranges.len()).expect("segment() returns at most 255 ranges");
        let reference = match ref_bits {
            RefBits::Eight => reference & 0x00FF,
            RefBits::Sixteen => reference,
        };
        Ok(Concatenation {
            payload: encoded.payload(),
            ranges,
            total,
            reference,
        })
    }

    /// One part per segment, given the 1-based sequence number and the segment payload.
    fn map(&self, part: impl Fn(u8, &[u8]) -> Part) -> Vec<Part> {
        (1..=self.total)
            .zip(&self.ranges)
            .map(|(seq, range)| part(seq, &self.payload[range.clone()]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{EncodingRequest, encode};

    fn gsm(text: &str) -> Encoded {
        encode(text, EncodingRequest::Auto).unwrap()
    }

    #[test]
    fn single_part_has_no_udh_or_tlv_whatever_the_strategy() {
        for strategy in [Strategy::Csms, Strategy::Sar, Strategy::Tlv] {
            for ref_bits in [RefBits::Eight, RefBits::Sixteen] {
                let e = gsm(&"a".repeat(160));
                let parts = parts(&e, strategy, ref_bits, 0x1234).unwrap();
                assert_eq!(parts.len(), 1);
                assert_eq!(parts[0].short_message, vec![b'a'; 160]);
                assert_eq!(parts[0].esm_class_flags, 0);
                assert!(parts[0].tlvs.is_empty());
                assert_eq!((parts[0].index, parts[0].count), (1, 1));
            }
        }
        let empty = parts(&gsm(""), Strategy::Tlv, RefBits::Eight, 1).unwrap();
        assert_eq!(empty[0].short_message, Vec::<u8>::new());
        assert!(empty[0].tlvs.is_empty());
    }

    #[test]
    fn csms_udh_exact_octets() {
        let e = gsm(&"a".repeat(161));
        let p = parts(&e, Strategy::Csms, RefBits::Eight, 0x1234).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0].short_message[..6],
            [0x05, 0x00, 0x03, 0x34, 0x02, 0x01]
        );
        assert_eq!(p[0].short_message.len(), 6 + 153);
        assert_eq!(
            p[1].short_message,
            [
                0x05, 0x00, 0x03, 0x34, 0x02, 0x02, b'a', b'a', b'a', b'a', b'a', b'a', b'a', b'a'
            ]
        );
        assert!(
            p.iter()
                .all(|p| p.esm_class_flags == 0x40 && p.tlvs.is_empty())
        );
        assert_eq!((p[1].index, p[1].count), (2, 2));

        let p = parts(&e, Strategy::Csms, RefBits::Sixteen, 0x1234).unwrap();
        assert_eq!(
            p[0].short_message[..7],
            [0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01]
        );
        assert_eq!(p[0].short_message.len(), 7 + 152);
        assert_eq!(
            p[1].short_message[..7],
            [0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x02]
        );
        assert_eq!(p[1].short_message.len(), 7 + 9);
    }

    #[test]
    fn sar_tlvs_exact_octets() {
        let e = encode(&"\u{0628}".repeat(71), EncodingRequest::Auto).unwrap();
        let p = parts(&e, Strategy::Sar, RefBits::Sixteen, 0xABCD).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].short_message.len(), 132);
        assert_eq!(p[0].short_message[..2], [0x06, 0x28]);
        assert_eq!(p[0].esm_class_flags, 0);
        assert_eq!(
            p[1].tlvs,
            vec![
                (0x020C, vec![0xAB, 0xCD]),
                (0x020E, vec![0x02]),
                (0x020F, vec![0x02]),
            ]
        );
        let p = parts(&e, Strategy::Sar, RefBits::Eight, 0xABCD).unwrap();
        assert_eq!(p[0].short_message.len(), 134);
        assert_eq!(p[0].tlvs[0], (0x020C, vec![0x00, 0xCD]));
    }

    #[test]
    fn tlv_carries_the_whole_payload() {
        let e = gsm(&"{".repeat(100));
        let p = parts(&e, Strategy::Tlv, RefBits::Eight, 7).unwrap();
        assert_eq!(p.len(), 1);
        assert!(p[0].short_message.is_empty());
        assert_eq!(p[0].esm_class_flags, 0);
        assert_eq!(p[0].tlvs, vec![(0x0424, e.payload().to_vec())]);

        let e = gsm(&"a".repeat(65_535));
        assert!(parts(&e, Strategy::Tlv, RefBits::Eight, 7).is_ok());
        let e = gsm(&"a".repeat(65_536));
        assert_eq!(
            parts(&e, Strategy::Tlv, RefBits::Eight, 7),
            Err(SegmentError::PayloadTooLarge {
                octets: 65_536,
                max: 65_535
            })
        );
        assert_eq!(
            parts(&e, Strategy::Csms, RefBits::Eight, 7),
            Err(SegmentError::TooManySegments {
                count: 429,
                max: 255
            })
        );
    }

    #[test]
    fn strategy_serde_names() {
        for (s, name) in [
            (Strategy::Csms, "CSMS"),
            (Strategy::Sar, "SAR"),
            (Strategy::Tlv, "TLV"),
        ] {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{name}\""));
            assert_eq!(
                serde_json::from_str::<Strategy>(&format!("\"{name}\"")).unwrap(),
                s
            );
            assert_eq!(s.as_str(), name);
        }
    }
}
