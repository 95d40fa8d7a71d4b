//! Splitting an [`Encoded`] payload into segments (RULES.md §5).
//!
//! Owns the limits (160/153/152 septets, 70/67/66 units), the greedy split that never cuts
//! an escape pair or a surrogate pair, and the 255-segment cap. Must not copy payload
//! bytes (segments are byte ranges into the payload) or look at grapheme clusters: only
//! escape and surrogate pairs are indivisible.

use std::ops::Range;

use super::encoded::{Encoded, Encoding};
use super::error::SegmentError;
use super::gsm7::ESCAPE;
use super::ucs2::is_high_surrogate;

/// Most segments one message may have: the UDH total and `sar_total_segments` are one
/// octet.
pub const MAX_SEGMENTS: usize = 255;

/// Size of the concatenation reference, which decides the UDH length and so the room
/// left per segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefBits {
    /// 8-bit reference, UDH `05 00 03 ref total seq` (6 octets).
    Eight,
    /// 16-bit reference, UDH `06 08 04 refHi refLo total seq` (7 octets).
    Sixteen,
}

/// Length limits, in septets (GSM7) or UTF-16 units (UCS2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most a message may have and still go as one part without UDH.
    pub single: usize,
    /// Most one segment of a longer message may carry after the UDH.
    pub per_segment: usize,
}

/// The limits of RULES.md §5 for an encoding and reference size.
pub const fn limits(encoding: Encoding, ref_bits: RefBits) -> Limits {
    match (encoding, ref_bits) {
        (Encoding::Gsm7, RefBits::Eight) => Limits {
            single: 160,
            per_segment: 153,
        },
        (Encoding::Gsm7, RefBits::Sixteen) => Limits {
            single: 160,
            per_segment: 152,
        },
        (Encoding::Ucs2, RefBits::Eight) => Limits {
            single: 70,
            per_segment: 67,
        },
        (Encoding::Ucs2, RefBits::Sixteen) => Limits {
            single: 70,
            per_segment: 66,
        },
    }
}

/// Splits `encoded` into segments: byte ranges into [`Encoded::payload`], in order,
/// together covering the whole payload. A message within the single-part limit (the empty
/// one included) is one range over the whole payload.
///
/// # Errors
///
/// [`SegmentError::TooManySegments`] when more than [`MAX_SEGMENTS`] would be needed.
pub fn segment(encoded: &Encoded, ref_bits: RefBits) -> Result<Vec<Range<usize>>, SegmentError> {
    let count = segment_count(encoded, ref_bits);
    if count > MAX_SEGMENTS {
        return Err(SegmentError::TooManySegments {
            count,
            max: MAX_SEGMENTS,
        });
    }
    let mut ranges = Vec::with_capacity(count);
    ranges.extend(Segments::new(encoded, ref_bits));
    Ok(ranges)
}

/// How many segments `encoded` needs, without the [`MAX_SEGMENTS`] cap (the fingerprint
/// and the error report use the real count).
pub fn segment_count(encoded: &Encoded, ref_bits: RefBits) -> usize {
    Segments::new(encoded, ref_bits).count()
}

/// The greedy split as an iterator of byte ranges. It steps a whole segment at a time:
/// the only way a character can straddle the cut is an escape (GSM7) or high surrogate
/// (UCS2) as the last unit, which then moves to the next segment. That is exact because
/// an [`Encoded`] payload never holds a lone 0x1B (extension codes are never 0x1B) nor an
/// unpaired surrogate.
#[derive(Debug)]
struct Segments<'a> {
    payload: &'a [u8],
    encoding: Encoding,
    /// Octets per segment (limit × octets per unit).
    step: usize,
    start: usize,
    done: bool,
}

impl<'a> Segments<'a> {
    fn new(encoded: &'a Encoded, ref_bits: RefBits) -> Self {
        let encoding = encoded.encoding();
        let payload = encoded.payload();
        let limits = limits(encoding, ref_bits);
        let unit = encoding.octets_per_unit();
        // Within the single-part limit the first step covers everything: `0..len` once.
        let step = if payload.len() <= limits.single * unit {
            limits.single * unit
        } else {
            limits.per_segment * unit
        };
        Segments {
            payload,
            encoding,
            step,
            start: 0,
            done: false,
        }
    }
}

impl Iterator for Segments<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        if self.done {
            return None;
        }
        let len = self.payload.len();
        if len - self.start <= self.step {
            self.done = true;
            return Some(self.start..len);
        }
        let mut end = self.start + self.step;
        match self.encoding {
            Encoding::Gsm7 => {
                if self.payload[end - 1] == ESCAPE {
                    end -= 1;
                }
            }
            Encoding::Ucs2 => {
                if is_high_surrogate(self.payload[end - 2]) {
                    end -= 2;
                }
            }
        }
        let range = self.start..end;
        self.start = end;
        Some(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{EncodingRequest, encode};

    fn lens(text: &str, ref_bits: RefBits) -> Vec<usize> {
        let e = encode(text, EncodingRequest::Auto).unwrap();
        segment(&e, ref_bits)
            .unwrap()
            .iter()
            .map(|r| r.len())
            .collect()
    }

    #[test]
    fn limits_table() {
        assert_eq!(limits(Encoding::Gsm7, RefBits::Eight).single, 160);
        assert_eq!(limits(Encoding::Gsm7, RefBits::Eight).per_segment, 153);
        assert_eq!(limits(Encoding::Gsm7, RefBits::Sixteen).per_segment, 152);
        assert_eq!(limits(Encoding::Ucs2, RefBits::Eight).single, 70);
        assert_eq!(limits(Encoding::Ucs2, RefBits::Eight).per_segment, 67);
        assert_eq!(limits(Encoding::Ucs2, RefBits::Sixteen).per_segment, 66);
    }

    #[test]
    fn single_part_boundaries() {
        assert_eq!(lens("", RefBits::Eight), [0]);
        assert_eq!(lens(&"a".repeat(160), RefBits::Eight), [160]);
        assert_eq!(lens(&"a".repeat(160), RefBits::Sixteen), [160]);
        assert_eq!(lens(&"a".repeat(161), RefBits::Eight), [153, 8]);
        assert_eq!(lens(&"a".repeat(161), RefBits::Sixteen), [152, 9]);
        assert_eq!(lens(&"a".repeat(306), RefBits::Eight), [153, 153]);
        assert_eq!(lens(&"a".repeat(306), RefBits::Sixteen), [152, 152, 2]);
        // 80 escape pairs = 160 septets: still one part.
        assert_eq!(lens(&"{".repeat(80), RefBits::Eight), [160]);
        let arabic = "\u{0633}".repeat(70);
        assert_eq!(lens(&arabic, RefBits::Eight), [140]);
        let arabic = "\u{0633}".repeat(71);
        assert_eq!(lens(&arabic, RefBits::Eight), [134, 8]);
        assert_eq!(lens(&arabic, RefBits::Sixteen), [132, 10]);
    }

    #[test]
    fn never_splits_an_escape_pair() {
        // 152 'a' then '€': the escape would be septet 153 → the pair moves on.
        let text = format!("{}\u{20AC}{}", "a".repeat(152), "b".repeat(10));
        let e = encode(&text, EncodingRequest::Auto).unwrap();
        let ranges = segment(&e, RefBits::Eight).unwrap();
        assert_eq!(ranges, [0..152, 152..164]);
        assert_eq!(&e.payload()[152..154], [0x1B, 0x65]);
        // With a 16-bit reference 152 fit exactly; the pair starts segment 2.
        assert_eq!(segment(&e, RefBits::Sixteen).unwrap(), [0..152, 152..164]);
        // 151 'a' + '€' fits 153 exactly.
        let text = format!("{}\u{20AC}{}", "a".repeat(151), "b".repeat(10));
        let e = encode(&text, EncodingRequest::Auto).unwrap();
        assert_eq!(segment(&e, RefBits::Eight).unwrap(), [0..153, 153..163]);
        assert_eq!(segment(&e, RefBits::Sixteen).unwrap(), [0..151, 151..163]);
    }

    #[test]
    fn never_splits_a_surrogate_pair() {
        // 66 units then an emoji: its high surrogate would be unit 67.
        let text = format!("{}\u{1F600}{}", "\u{0628}".repeat(66), "\u{0628}".repeat(5));
        let e = encode(&text, EncodingRequest::Auto).unwrap();
        assert_eq!(segment(&e, RefBits::Eight).unwrap(), [0..132, 132..146]);
        assert_eq!(segment(&e, RefBits::Sixteen).unwrap(), [0..132, 132..146]);
        let text = format!("{}\u{1F600}{}", "\u{0628}".repeat(65), "\u{0628}".repeat(5));
        let e = encode(&text, EncodingRequest::Auto).unwrap();
        assert_eq!(segment(&e, RefBits::Eight).unwrap(), [0..134, 134..144]);
        assert_eq!(segment(&e, RefBits::Sixteen).unwrap(), [0..130, 130..144]);
    }

    #[test]
    fn caps_at_255_segments() {
        let e = encode(&"a".repeat(153 * 255), EncodingRequest::Auto).unwrap();
        assert_eq!(segment(&e, RefBits::Eight).unwrap().len(), 255);
        assert_eq!(
            segment(&e, RefBits::Sixteen),
            Err(SegmentError::TooManySegments {
                count: 257,
                max: 255
            })
        );
        let e = encode(&"a".repeat(153 * 255 + 1), EncodingRequest::Auto).unwrap();
        assert_eq!(segment_count(&e, RefBits::Eight), 256);
        assert_eq!(
            segment(&e, RefBits::Eight),
            Err(SegmentError::TooManySegments {
                count: 256,
                max: 255
            })
        );
    }
}
