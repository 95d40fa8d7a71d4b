//! The segment fingerprint of RULES.md §6, which billing recomputes for parity
//! (`segmentFingerprint`, US-SC-036).
//!
//! Owns the hashed layout `"<ENC>:<count>:" || payload` and its 32-hex-digit form. Must
//! not hash anything else (no reference, no UDH, no strategy) and must not use the
//! 16-bit-reference count.

use sha2::{Digest, Sha256};

use super::encoded::{Encoded, encode_auto};
use super::segment::{RefBits, segment_count};

/// Length of a fingerprint in hex digits.
pub const FINGERPRINT_LEN: usize = 32;

/// `hex(SHA-256("<ENC>:<count>:" || payload))[0..32]` for an encoded message: `<ENC>` is
/// its encoding (`GSM7` / `UCS2`), `<count>` its segment count with an 8-bit reference
/// (uncapped), `payload` the whole payload. For an auto-detected message this is the
/// corpus `fingerprint`; for a requested encoding it fingerprints what is actually sent.
pub fn fingerprint(encoded: &Encoded) -> String {
    let count = segment_count(encoded, RefBits::Eight);
    let mut hasher = Sha256::new();
    hasher.update(encoded.encoding().as_str().as_bytes());
    hasher.update(b":");
    hasher.update(decimal(count).as_slice());
    hasher.update(b":");
    hasher.update(encoded.payload());
    let digest = hasher.finalize();
    hex::encode(&digest[..FINGERPRINT_LEN / 2])
}

/// [`fingerprint`] of `text` with the encoding detected (RULES.md §2).
pub fn fingerprint_text(text: &str) -> String {
    fingerprint(&encode_auto(text))
}

/// ASCII decimal digits of `n` without allocating.
struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    fn as_slice(&self) -> &[u8] {
        &self.digits[self.start..]
    }
}

fn decimal(mut n: usize) -> Decimal {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    Decimal { digits, start }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{EncodingRequest, encode};

    #[test]
    fn rules_examples() {
        assert_eq!(fingerprint_text(""), "779889d6edb698f58662ca6c2ea27f74");
        assert_eq!(
            fingerprint_text("\u{0633}\u{0644}\u{0627}\u{0645}"),
            "6e0e8e8988177fa2ef8d2aac5d11f951"
        );
    }

    #[test]
    fn hashes_the_documented_layout() {
        let text = "a".repeat(400);
        let encoded = encode(&text, EncodingRequest::Auto).unwrap();
        let mut expected = b"GSM7:3:".to_vec();
        expected.extend_from_slice(text.as_bytes());
        let digest = Sha256::digest(&expected);
        assert_eq!(fingerprint(&encoded), hex::encode(&digest[..16]));
        assert_eq!(fingerprint(&encoded).len(), FINGERPRINT_LEN);
    }

    #[test]
    fn decimal_digits() {
        for n in [0, 7, 10, 255, 256, 1_000_000, usize::MAX] {
            assert_eq!(decimal(n).as_slice(), n.to_string().as_bytes());
        }
    }
}
