//! The error types of the encoding boundary: [`EncodeError`], [`DecodeError`] and
//! [`SegmentError`].
//!
//! Owns only the error values and their messages. Must not format message content into
//! them: a text may be personal data, so errors carry positions, lengths and counts,
//! never the characters themselves.

use thiserror::Error;

/// Why a text could not be encoded as requested.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// `GSM7` was requested but the text holds a character outside the GSM 03.38 default
    /// and extension tables. The character itself is deliberately not kept.
    #[error(
        "character {position} (byte offset {byte_offset}) is not in the GSM 7-bit alphabet and GSM7 was requested"
    )]
    NotGsm7 {
        /// Index of the first offending character, counted in Unicode scalar values.
        position: usize,
        /// Byte offset of that character in the UTF-8 text.
        byte_offset: usize,
    },
}

/// Why a received payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// An unpacked GSM 7-bit payload holds an octet above 0x7F.
    #[error("octet 0x{octet:02X} at offset {position} is not a GSM 7-bit septet")]
    NotSeptet {
        /// Offset of the octet in the payload.
        position: usize,
        /// The octet found.
        octet: u8,
    },
    /// A UCS2 (UTF-16BE) payload has an odd number of octets.
    #[error("UCS2 payload has an odd length of {len} octets")]
    OddLength {
        /// Payload length in octets.
        len: usize,
    },
    /// A UCS2 payload holds a surrogate that is not part of a high + low pair.
    #[error("lone surrogate 0x{unit:04X} at offset {position} in UCS2 payload")]
    LoneSurrogate {
        /// Offset in octets of the offending code unit.
        position: usize,
        /// The code unit found.
        unit: u16,
    },
}

/// Why a message cannot be sent as a long message. Every variant means the message is
/// dead-lettered `TOO_LARGE` (SPEC §6).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SegmentError {
    /// Concatenation (CSMS UDH or SAR TLVs) carries the total in one octet.
    #[error("message needs {count} segments, at most {max} are allowed")]
    TooManySegments {
        /// Segments the message would need.
        count: usize,
        /// The limit, [`MAX_SEGMENTS`](super::MAX_SEGMENTS).
        max: usize,
    },
    /// The `message_payload` TLV length field is two octets.
    #[error("payload of {octets} octets exceeds the message_payload limit of {max}")]
    PayloadTooLarge {
        /// Whole payload length in octets.
        octets: usize,
        /// The limit, [`MAX_MESSAGE_PAYLOAD`](super::MAX_MESSAGE_PAYLOAD).
        max: usize,
    },
}
