//! Text encoding and long messages (SPEC §6): GSM 03.38 / UCS2 detection and encoding,
//! decoding for MO, segmentation, the CSMS / SAR / TLV wire forms of `submit_sm`, the
//! segment fingerprint and the segment counter.
//!
//! The rules are `tests/corpus/RULES.md`, the conformance cases `tests/corpus/cases.jsonl`
//! (all 1,057 run as a unit test; 100 or more per script of US-SC-037). In short: a message is GSM7 (`data_coding` 0x00,
//! unpacked septets, extension characters as 0x1B + code) when every character is in the
//! GSM default or extension table, exact code points only; otherwise UCS2 (0x08,
//! UTF-16BE). Up to 160 septets / 70 units is one part without UDH; longer messages are
//! split greedily at 153 / 67 (8-bit reference) or 152 / 66 (16-bit), never inside an
//! escape or surrogate pair, into at most 255 segments.
//!
//! Pipeline: [`encode`] → [`Encoded`] → [`segment`] (byte ranges) or [`parts`] (what goes
//! into each `submit_sm`); [`fingerprint`] for billing parity; [`report`] /
//! [`run_segments`] for the stand-alone segment counter.
//!
//! ```
//! use smpp_connector::encoding::{EncodingRequest, RefBits, Strategy, encode, parts};
//!
//! let encoded = encode(&"\u{0633}\u{0644}\u{0627}\u{0645} ".repeat(20), EncodingRequest::Auto)?;
//! assert_eq!((encoded.data_coding(), encoded.units()), (0x08, 100));
//! let parts = parts(&encoded, Strategy::Csms, RefBits::Eight, 0x42)?;
//! assert_eq!(parts.len(), 2); // 67 + 33 units
//! assert_eq!(parts[1].short_message[..6], [0x05, 0x00, 0x03, 0x42, 0x02, 0x02]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Owns: the character tables, the payload bytes, the limits, the UDH and TLV octets.
//! Must not: do I/O other than the reader / writer handed to [`run_segments`], read a
//! clock or the environment, log, build PDUs, choose concatenation references, or put
//! message content into errors or `Debug` output.
//!
//! Files: `gsm7.rs` (tables, septets, GSM7 decoding), `ucs2.rs` (UTF-16BE, Latin-1
//! decoding), `encoded.rs` (detection and [`encode`]), `segment.rs`, `long_message.rs`,
//! `fingerprint.rs`, `counter.rs` (segment counter), `error.rs`; tests in
//! `corpus_tests.rs`, `proptests.rs` and beside the code.

mod counter;
mod encoded;
mod error;
mod fingerprint;
mod gsm7;
mod long_message;
mod segment;
mod ucs2;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod proptests;

pub use counter::{SegmentReport, Summary, report, run_segments};
pub use encoded::{Detection, Encoded, Encoding, EncodingRequest, detect, encode};
pub use error::{DecodeError, EncodeError, SegmentError};
pub use fingerprint::{FINGERPRINT_LEN, fingerprint, fingerprint_text};
pub use gsm7::{decode_gsm7, is_gsm};
pub use long_message::{
    ESM_CLASS_UDHI, MAX_MESSAGE_PAYLOAD, MESSAGE_PAYLOAD, Part, SAR_MSG_REF_NUM,
    SAR_SEGMENT_SEQNUM, SAR_TOTAL_SEGMENTS, Strategy, parts,
};
pub use segment::{Limits, MAX_SEGMENTS, RefBits, limits, segment, segment_count};
pub use ucs2::{decode_latin1, decode_ucs2};
