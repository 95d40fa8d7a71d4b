//! The GSM 03.38 7-bit alphabet (3GPP TS 23.038 §6.2.1): the default and extension
//! tables, character → septet lookup, and decoding of unpacked septets.
//!
//! Owns the exact code points of RULES.md §1: Ç (not ç) at 0x09, no look-alikes, no
//! normalization, no national shift tables, U+001B and U+00A0 not GSM. Must not pack
//! septets (SMPP `short_message` carries them unpacked), allocate per character or
//! transliterate.

use super::error::DecodeError;

/// The escape to the extension table, septet 0x1B.
pub(crate) const ESCAPE: u8 = 0x1B;

/// Default alphabet, indexed by septet. Non-ASCII entries are written as escapes so that
/// look-alikes (U+2206 vs U+0394, U+2126 vs U+03A9) cannot slip in. Index 0x1B is the
/// escape and is never looked up as a character: decoding handles it before indexing and
/// the encoder table skips it.
#[rustfmt::skip]
const DEFAULT: [char; 128] = [
    // 0x00: @ £ $ ¥ è é ù ì / ò Ç LF Ø ø CR Å å
    '@',        '\u{00A3}', '$',        '\u{00A5}', '\u{00E8}', '\u{00E9}', '\u{00F9}', '\u{00EC}',
    '\u{00F2}', '\u{00C7}', '\n',       '\u{00D8}', '\u{00F8}', '\r',       '\u{00C5}', '\u{00E5}',
    // 0x10: Δ _ Φ Γ Λ Ω Π Ψ / Σ Θ Ξ (escape) Æ æ ß É
    '\u{0394}', '_',        '\u{03A6}', '\u{0393}', '\u{039B}', '\u{03A9}', '\u{03A0}', '\u{03A8}',
    '\u{03A3}', '\u{0398}', '\u{039E}', '\u{001B}', '\u{00C6}', '\u{00E6}', '\u{00DF}', '\u{00C9}',
    // 0x20: ASCII, but ¤ at 0x24
    ' ', '!', '"', '#', '\u{00A4}', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
    // 0x30: ASCII
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
    // 0x40: ¡ A-Z Ä Ö Ñ Ü §
    '\u{00A1}', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', '\u{00C4}', '\u{00D6}', '\u{00D1}', '\u{00DC}', '\u{00A7}',
    // 0x60: ¿ a-z ä ö ñ ü à
    '\u{00BF}', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', '\u{00E4}', '\u{00F6}', '\u{00F1}', '\u{00FC}', '\u{00E0}',
];

/// Extension table: (character, code written after 0x1B).
const EXTENSION: [(char, u8); 10] = [
    ('\u{000C}', 0x0A), // FORM FEED
    ('^', 0x14),
    ('{', 0x28),
    ('}', 0x29),
    ('\\', 0x2F),
    ('[', 0x3C),
    ('~', 0x3D),
    (']', 0x3E),
    ('|', 0x40),
    ('\u{20AC}', 0x65), // EURO SIGN
];

/// Marks "not GSM" in [`LATIN1`].
const NOT_GSM: u16 = 0xFFFF;
/// Marks an extension character in [`LATIN1`]: the low seven bits are the code after 0x1B.
const EXTENDED: u16 = 0x0100;

/// Character (U+0000..=U+00FF) → septet code: `< 0x80` one septet, `EXTENDED | code` an
/// escape pair, [`NOT_GSM`] otherwise. Built at compile time from the two tables above so
/// there is one source of truth.
static LATIN1: [u16; 256] = build_latin1();

const fn build_latin1() -> [u16; 256] {
    let mut table = [NOT_GSM; 256];
    let mut septet = 0;
    while septet < 128 {
        let c = DEFAULT[septet] as u32;
        if septet != ESCAPE as usize && c < 256 {
            table[c as usize] = septet as u16;
        }
        septet += 1;
    }
    let mut i = 0;
    while i < EXTENSION.len() {
        let (c, code) = EXTENSION[i];
        if (c as u32) < 256 {
            table[c as u32 as usize] = EXTENDED | code as u16;
        }
        i += 1;
    }
    table
}

/// How one character is written in GSM 7-bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Septets {
    /// One septet of the default alphabet.
    One(u8),
    /// An extension character: 0x1B followed by this code.
    Escaped(u8),
}

/// The septet(s) for `c`, or `None` when `c` is not GSM (RULES.md §1).
#[inline]
pub(crate) fn septets(c: char) -> Option<Septets> {
    let cp = c as u32;
    let code = if cp < 256 {
        LATIN1[cp as usize]
    } else {
        // The only GSM characters above U+00FF: ten Greek capitals and the euro sign
        // (the tests check this against DEFAULT and EXTENSION).
        match c {
            '\u{0394}' => 0x10,
            '\u{03A6}' => 0x12,
            '\u{0393}' => 0x13,
            '\u{039B}' => 0x14,
            '\u{03A9}' => 0x15,
            '\u{03A0}' => 0x16,
            '\u{03A8}' => 0x17,
            '\u{03A3}' => 0x18,
            '\u{0398}' => 0x19,
            '\u{039E}' => 0x1A,
            '\u{20AC}' => EXTENDED | 0x65,
            _ => NOT_GSM,
        }
    };
    match code {
        NOT_GSM => None,
        c if c & EXTENDED != 0 => Some(Septets::Escaped((c & 0x7F) as u8)),
        c => Some(Septets::One(c as u8)),
    }
}

/// Whether `c` is in the GSM 7-bit default alphabet or its extension table.
#[inline]
pub fn is_gsm(c: char) -> bool {
    septets(c).is_some()
}

/// UTF-8 byte → its single septet when the byte is an ASCII character of the default
/// alphabet, otherwise [`NOT_SINGLE`] (extension characters, non-GSM ASCII and every byte
/// of a multi-byte character). The fast path of encoding: most GSM text is long runs of
/// such bytes, mapped without decoding UTF-8.
static BYTE_SINGLE: [u8; 256] = build_byte_single();
/// Marks "not one septet" in [`BYTE_SINGLE`].
const NOT_SINGLE: u8 = 0xFF;

const fn build_byte_single() -> [u8; 256] {
    let mut table = [NOT_SINGLE; 256];
    let mut b = 0;
    while b < 128 {
        let code = LATIN1[b];
        if code < 0x80 {
            table[b] = code as u8;
        }
        b += 1;
    }
    table
}

/// Appends the GSM 7-bit form of `text` to `out`, stopping at the first character that is
/// not GSM. Returns `Err((char index, byte offset))` of that character; `out` then holds
/// the septets of the characters before it.
pub(crate) fn encode_into(text: &str, out: &mut Vec<u8>) -> Result<(), (usize, usize)> {
    encode_with(text, out, |offset| {
        Err((text[..offset].chars().count(), offset))
    })
}

/// Appends the GSM7_FORCE form of `text` to `out`: every non-GSM character (per code
/// point, RULES.md §4) becomes `?` (0x3F). Returns how many characters were replaced.
pub(crate) fn encode_forced_into(text: &str, out: &mut Vec<u8>) -> usize {
    let mut replaced = 0;
    let done: Result<(), ()> = encode_with(text, out, |_| {
        replaced += 1;
        Ok(b'?')
    });
    debug_assert!(done.is_ok());
    replaced
}

/// The encoding loop: runs of ASCII through [`BYTE_SINGLE`], everything else one
/// character at a time through [`septets`]. `not_gsm(byte offset)` gives the septet that
/// replaces a non-GSM character, or an error that stops the loop.
///
/// Writes into `out` sized up front instead of pushing, so the hot loop has no capacity
/// check. Invariant: room left in `out` ≥ bytes left in `text`. Every character takes at
/// least as many bytes as septets except the one-byte extension characters (`{`, FF...),
/// which grow `out` by one.
#[inline]
fn encode_with<E>(
    text: &str,
    out: &mut Vec<u8>,
    mut not_gsm: impl FnMut(usize) -> Result<u8, E>,
) -> Result<(), E> {
    let bytes = text.as_bytes();
    let mut w = out.len();
    out.resize(w + bytes.len(), 0);
    let mut i = 0;
    loop {
        let mut run = 0;
        for (dst, &b) in out[w..].iter_mut().zip(&bytes[i..]) {
            let septet = BYTE_SINGLE[b as usize];
            if septet == NOT_SINGLE {
                break;
            }
            *dst = septet;
            run += 1;
        }
        i += run;
        w += run;
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        match septets(c) {
            Some(Septets::One(septet)) => {
                out[w] = septet;
                w += 1;
            }
            Some(Septets::Escaped(code)) => {
                if c.len_utf8() == 1 {
                    out.push(0);
                }
                out[w] = ESCAPE;
                out[w + 1] = code;
                w += 2;
            }
            None => match not_gsm(i) {
                Ok(septet) => {
                    out[w] = septet;
                    w += 1;
                }
                Err(e) => {
                    out.truncate(w);
                    return Err(e);
                }
            },
        }
        i += c.len_utf8();
    }
    out.truncate(w);
    Ok(())
}

/// Byte offset of the first non-GSM character of `text`, if any.
pub(crate) fn first_non_gsm(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // ASCII GSM characters, single or escaped, need no decoding.
        i += bytes[i..]
            .iter()
            .position(|&b| b >= 0x80 || LATIN1[b as usize] == NOT_GSM)
            .unwrap_or(bytes.len() - i);
        let c = text[i..].chars().next()?;
        if !is_gsm(c) {
            return Some(i);
        }
        i += c.len_utf8();
    }
    None
}

/// The character of an extension code, if the extension table defines it.
fn extension_char(code: u8) -> Option<char> {
    EXTENSION
        .iter()
        .find(|(_, c)| *c == code)
        .map(|(ch, _)| *ch)
}

/// Decodes unpacked GSM 7-bit septets (one octet each, `data_coding` 0x00) into text.
///
/// Tolerant where 3GPP TS 23.038 tells a receiver what to display:
/// - 0x1B followed by a code the extension table does not define decodes as the default
///   alphabet character of that code: TS 23.038 §6.2.1.1 has a receiver display the
///   main-table character when the extension table has no symbol for a code (we use no
///   national single shift table).
/// - 0x1B 0x1B (reserved for a further extension table) decodes as one space, as the
///   note to the extension table asks.
/// - A lone 0x1B at the end decodes as one space (a receiver that cannot use the
///   escape displays a space).
///
/// # Errors
///
/// [`DecodeError::NotSeptet`] when an octet is above 0x7F (the payload is not unpacked
/// GSM 7-bit).
pub fn decode_gsm7(payload: &[u8]) -> Result<String, DecodeError> {
    let mut text = String::with_capacity(payload.len());
    let mut i = 0;
    while i < payload.len() {
        let octet = check_septet(payload, i)?;
        if octet != ESCAPE {
            text.push(DEFAULT[octet as usize]);
            i += 1;
            continue;
        }
        if i + 1 == payload.len() {
            text.push(' ');
            break;
        }
        let code = check_septet(payload, i + 1)?;
        let c = if code == ESCAPE {
            ' '
        } else {
            extension_char(code).unwrap_or(DEFAULT[code as usize])
        };
        text.push(c);
        i += 2;
    }
    Ok(text)
}

fn check_septet(payload: &[u8], position: usize) -> Result<u8, DecodeError> {
    let octet = payload[position];
    if octet > 0x7F {
        return Err(DecodeError::NotSeptet { position, octet });
    }
    Ok(octet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repertoire_is_137_characters() {
        let default = DEFAULT
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != ESCAPE as usize)
            .count();
        assert_eq!(default + EXTENSION.len(), 137);
        let all_gsm = (0..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|c| is_gsm(*c))
            .count();
        assert_eq!(all_gsm, 137);
    }

    /// The default table typed a second time, as code points from RULES.md §1 (0x1B
    /// marks the escape), so a typo in either copy fails.
    #[rustfmt::skip]
    const CODE_POINTS: [u32; 128] = [
        0x40, 0xA3, 0x24, 0xA5, 0xE8, 0xE9, 0xF9, 0xEC, 0xF2, 0xC7, 0x0A, 0xD8, 0xF8, 0x0D, 0xC5, 0xE5,
        0x394, 0x5F, 0x3A6, 0x393, 0x39B, 0x3A9, 0x3A0, 0x3A8, 0x3A3, 0x398, 0x39E, 0x1B, 0xC6, 0xE6, 0xDF, 0xC9,
        0x20, 0x21, 0x22, 0x23, 0xA4, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F,
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F,
        0xA1, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F,
        0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0xC4, 0xD6, 0xD1, 0xDC, 0xA7,
        0xBF, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F,
        0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0xE4, 0xF6, 0xF1, 0xFC, 0xE0,
    ];

    #[test]
    fn default_table_matches_the_rules() {
        for (septet, (c, expected)) in DEFAULT.iter().zip(CODE_POINTS).enumerate() {
            assert_eq!(*c as u32, expected, "septet {septet:#04x}");
        }
    }

    #[test]
    fn every_default_character_maps_back_to_its_septet() {
        for (septet, c) in DEFAULT.iter().enumerate() {
            if septet == ESCAPE as usize {
                continue;
            }
            assert_eq!(
                septets(*c),
                Some(Septets::One(septet as u8)),
                "{septet:#04x}"
            );
        }
        for (c, code) in EXTENSION {
            assert_eq!(septets(c), Some(Septets::Escaped(code)));
        }
    }

    #[test]
    fn exact_code_points() {
        let table: &[(char, Option<Septets>)] = &[
            ('@', Some(Septets::One(0x00))),
            ('$', Some(Septets::One(0x02))),
            ('_', Some(Septets::One(0x11))),
            ('\u{00C7}', Some(Septets::One(0x09))), // Ç
            ('\u{00E7}', None),                     // ç: GSM0338.TXT's reading, not ours
            ('\u{001B}', None),                     // ESC is not a character
            ('\u{00A0}', None),                     // NBSP display fallback
            ('\u{2206}', None),                     // INCREMENT, not Δ
            ('\u{2126}', None),                     // OHM SIGN, not Ω
            ('\u{0391}', None),                     // Greek Alpha, not A
            ('\u{FF21}', None),                     // fullwidth A
            ('\u{0410}', None),                     // Cyrillic A
            ('`', None),
            ('\t', None),
            ('\0', None),
            ('\u{007F}', None),
            ('\u{0301}', None),
            ('\u{00E1}', None), // á
            ('\u{00C0}', None), // À
            ('\u{00B0}', None), // °
            ('\n', Some(Septets::One(0x0A))),
            ('\r', Some(Septets::One(0x0D))),
            ('\u{000C}', Some(Septets::Escaped(0x0A))),
            ('\u{20AC}', Some(Septets::Escaped(0x65))),
            ('|', Some(Septets::Escaped(0x40))),
            ('\u{00A4}', Some(Septets::One(0x24))),
            ('\u{00A7}', Some(Septets::One(0x5F))),
            ('\u{00E0}', Some(Septets::One(0x7F))),
            ('\u{03A9}', Some(Septets::One(0x15))),
        ];
        for (c, expected) in table {
            assert_eq!(septets(*c), *expected, "U+{:04X}", *c as u32);
        }
    }

    #[test]
    fn encodes_unpacked_with_escapes() {
        let mut out = Vec::new();
        assert_eq!(encode_into("@a{\u{20AC}}\r\n", &mut out), Ok(()));
        assert_eq!(
            out,
            [0x00, 0x61, 0x1B, 0x28, 0x1B, 0x65, 0x1B, 0x29, 0x0D, 0x0A]
        );

        let mut out = Vec::new();
        assert_eq!(encode_into("ab\u{00E7}d", &mut out), Err((2, 2)));
        assert_eq!(out, b"ab");

        let mut out = Vec::new();
        assert_eq!(encode_forced_into("e\u{0301}\u{1F600}[", &mut out), 2);
        assert_eq!(out, [0x65, 0x3F, 0x3F, 0x1B, 0x3C]);
    }

    #[test]
    fn decodes_with_3gpp_fallbacks() {
        let table: &[(&[u8], &str)] = &[
            (&[], ""),
            (&[0x00, 0x02, 0x11], "@$_"),
            (&[0x1B, 0x65, 0x1B, 0x0A], "\u{20AC}\u{000C}"),
            // Unknown extension code → the default-table character of that code.
            (&[0x1B, 0x41], "A"),
            (&[0x1B, 0x00], "@"),
            // 0x1B 0x1B → space; a trailing lone escape → space.
            (&[0x1B, 0x1B, 0x41], " A"),
            (&[0x41, 0x1B], "A "),
            (&[0x7F, 0x09], "\u{00E0}\u{00C7}"),
        ];
        for (payload, text) in table {
            assert_eq!(decode_gsm7(payload).as_deref(), Ok(*text), "{payload:02x?}");
        }
    }

    #[test]
    fn rejects_octets_above_0x7f() {
        assert_eq!(
            decode_gsm7(&[0x41, 0x80]),
            Err(DecodeError::NotSeptet {
                position: 1,
                octet: 0x80
            })
        );
        assert_eq!(
            decode_gsm7(&[0x1B, 0xE5]),
            Err(DecodeError::NotSeptet {
                position: 1,
                octet: 0xE5
            })
        );
    }
}
