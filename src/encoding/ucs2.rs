//! UCS2 as SMSCs mean it (`data_coding` 0x08): UTF-16 big-endian with surrogate pairs,
//! no BOM added (RULES.md §4), plus Latin-1 (`data_coding` 0x03) decoding for MO.
//!
//! Owns the byte layout of both. Must not normalise text, add or strip a BOM (U+FEFF is an
//! ordinary character) or accept a lone surrogate.

use super::error::DecodeError;

/// Appends the UTF-16BE form of `text` to `out`; returns the number of code units.
pub(crate) fn encode_into(text: &str, out: &mut Vec<u8>) -> usize {
    // A UTF-8 text of n bytes has at most n UTF-16 units, so 2n octets always suffice;
    // writing into them directly keeps capacity checks out of the loop.
    let start = out.len();
    out.resize(start + text.len() * 2, 0);
    let mut units = 0;
    for (dst, unit) in out[start..].chunks_exact_mut(2).zip(text.encode_utf16()) {
        dst.copy_from_slice(&unit.to_be_bytes());
        units += 1;
    }
    out.truncate(start + units * 2);
    units
}

/// Whether a big-endian UTF-16 unit whose first octet is `first_octet` is a high
/// (leading) surrogate.
#[inline]
pub(crate) fn is_high_surrogate(first_octet: u8) -> bool {
    first_octet & 0xFC == 0xD8
}

/// Decodes a UCS2 / UTF-16BE payload (`data_coding` 0x08) into text. A leading U+FEFF is
/// kept as a character: SMPP UCS2 carries no BOM, so one found here was in the text.
///
/// # Errors
///
/// [`DecodeError::OddLength`] for an odd number of octets, [`DecodeError::LoneSurrogate`]
/// for a high surrogate not followed by a low one or a low surrogate not preceded by a
/// high one.
pub fn decode_ucs2(payload: &[u8]) -> Result<String, DecodeError> {
    if payload.len() % 2 != 0 {
        return Err(DecodeError::OddLength { len: payload.len() });
    }
    let units = payload
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
    // UTF-16 units up to U+07FF take at most 2 UTF-8 bytes, the rest at most 3.
    let mut text = String::with_capacity(payload.len() / 2 * 3);
    let mut position = 0;
    for decoded in char::decode_utf16(units) {
        match decoded {
            Ok(c) => {
                text.push(c);
                position += c.len_utf16() * 2;
            }
            Err(e) => {
                return Err(DecodeError::LoneSurrogate {
                    position,
                    unit: e.unpaired_surrogate(),
                });
            }
        }
    }
    Ok(text)
}

/// Decodes an ISO-8859-1 payload (`data_coding` 0x03): every octet is the code point of
/// the same value, so this cannot fail.
pub fn decode_latin1(payload: &[u8]) -> String {
    payload.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_utf16be_with_surrogate_pairs() {
        let table: &[(&str, &[u8], usize)] = &[
            ("", &[], 0),
            ("\u{0633}\u{0644}", &[0x06, 0x33, 0x06, 0x44], 2),
            ("\u{1F600}", &[0xD8, 0x3D, 0xDE, 0x00], 2),
            ("\u{FEFF}A", &[0xFE, 0xFF, 0x00, 0x41], 2),
            ("\u{1D11E}", &[0xD8, 0x34, 0xDD, 0x1E], 2),
        ];
        for (text, bytes, units) in table {
            let mut out = Vec::new();
            assert_eq!(encode_into(text, &mut out), *units);
            assert_eq!(out, *bytes);
            assert_eq!(decode_ucs2(bytes).as_deref(), Ok(*text));
        }
    }

    #[test]
    fn rejects_odd_length_and_lone_surrogates() {
        assert_eq!(
            decode_ucs2(&[0x00, 0x41, 0x00]),
            Err(DecodeError::OddLength { len: 3 })
        );
        // High surrogate followed by a BMP character.
        assert_eq!(
            decode_ucs2(&[0x00, 0x41, 0xD8, 0x3D, 0x00, 0x41]),
            Err(DecodeError::LoneSurrogate {
                position: 2,
                unit: 0xD83D
            })
        );
        // High surrogate at the end.
        assert_eq!(
            decode_ucs2(&[0xD8, 0x3D]),
            Err(DecodeError::LoneSurrogate {
                position: 0,
                unit: 0xD83D
            })
        );
        // Low surrogate first, after a pair.
        assert_eq!(
            decode_ucs2(&[0xD8, 0x3D, 0xDE, 0x00, 0xDE, 0x00]),
            Err(DecodeError::LoneSurrogate {
                position: 4,
                unit: 0xDE00
            })
        );
    }

    #[test]
    fn latin1_maps_octets_to_code_points() {
        assert_eq!(decode_latin1(b""), "");
        assert_eq!(
            decode_latin1(&[0x41, 0xE9, 0xA0, 0xFF, 0x00]),
            "A\u{E9}\u{A0}\u{FF}\0"
        );
    }
}
