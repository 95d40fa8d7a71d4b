//! Property tests of the encoding module over generated texts: Pashto, Dari, Arabic,
//! Persian (both digit sets), mixed Latin + Arabic, joiners / tatweel / bidi marks, emoji
//! and GSM extension characters, with extra weight on segment boundaries.
//!
//! Test-only. Must not depend on the corpus (corpus_tests.rs does): these check the
//! invariants of RULES.md for texts nobody wrote down.

use proptest::prelude::*;

use super::gsm7::ESCAPE;
use super::{
    Detection, EncodeError, Encoded, Encoding, EncodingRequest, RefBits,
    Strategy as LongMessageStrategy, decode_gsm7, decode_latin1, decode_ucs2, detect, encode,
    fingerprint, fingerprint_text, is_gsm, limits, parts, run_segments, segment, segment_count,
};

// ---- character generators -------------------------------------------------------------
//
// Each generated `u32` picks one character from a weighted mix of classes. That is an
// order of magnitude cheaper than a union of strategies per character (which made these
// tests take seconds in debug builds), and shrinking still goes towards simple text: 0
// picks the first character of the first class.

/// A set of characters: an inclusive range (no surrogates inside) or a list.
#[derive(Debug, Clone, Copy)]
enum Class {
    Range(char, char),
    List(&'static [char]),
}

impl Class {
    fn len(self) -> u32 {
        match self {
            Class::Range(first, last) => last as u32 - first as u32 + 1,
            Class::List(chars) => chars.len() as u32,
        }
    }

    fn get(self, i: u32) -> char {
        match self {
            Class::Range(first, _) => {
                char::from_u32(first as u32 + i % self.len()).expect("ranges avoid surrogates")
            }
            Class::List(chars) => chars[(i % self.len()) as usize],
        }
    }
}

/// Default-alphabet characters: printable ASCII but backtick, LF, CR, the GSM Latin-1 and
/// Greek letters.
const GSM_DEFAULT: &[(u32, Class)] = &[
    (6, Class::Range('a', 'z')),
    (6, Class::Range(' ', '_')),
    (1, Class::List(&['\n', '\r'])),
    (
        2,
        Class::List(&[
            '@', '$', '_', '\u{00A3}', '\u{00A5}', '\u{00E8}', '\u{00E9}', '\u{00F9}', '\u{00EC}',
            '\u{00F2}', '\u{00C7}', '\u{00D8}', '\u{00F8}', '\u{00C5}', '\u{00E5}', '\u{0394}',
            '\u{03A6}', '\u{0393}', '\u{039B}', '\u{03A9}', '\u{03A0}', '\u{03A8}', '\u{03A3}',
            '\u{0398}', '\u{039E}', '\u{00C6}', '\u{00E6}', '\u{00DF}', '\u{00C9}', '\u{00A4}',
            '\u{00A1}', '\u{00C4}', '\u{00D6}', '\u{00D1}', '\u{00DC}', '\u{00A7}', '\u{00BF}',
            '\u{00E4}', '\u{00F6}', '\u{00F1}', '\u{00FC}', '\u{00E0}',
        ]),
    ),
];

/// The ten extension-table characters (two septets each).
const GSM_EXTENSION: Class = Class::List(&[
    '^', '{', '}', '\\', '[', '~', ']', '|', '\u{20AC}', '\u{000C}',
]);

/// Arabic-script letters and marks used by Pashto, Dari, Arabic and Persian, both digit
/// sets and Arabic punctuation.
const ARABIC_SCRIPT: &[(u32, Class)] = &[
    (4, Class::Range('\u{0621}', '\u{064A}')), // Arabic letters
    (1, Class::Range('\u{064B}', '\u{0652}')), // harakat
    (
        2,
        // Pashto: ټ ځ څ ډ ړ ږ ښ ګ ڼ ۍ ې; Persian / Dari: پ چ ژ ک گ ی
        Class::List(&[
            '\u{067C}', '\u{0681}', '\u{0685}', '\u{0689}', '\u{0693}', '\u{0696}', '\u{069A}',
            '\u{06AB}', '\u{06BC}', '\u{06CD}', '\u{06D0}', '\u{067E}', '\u{0686}', '\u{0698}',
            '\u{06A9}', '\u{06AF}', '\u{06CC}',
        ]),
    ),
    (1, Class::Range('\u{0660}', '\u{0669}')), // Arabic-Indic digits
    (1, Class::Range('\u{06F0}', '\u{06F9}')), // Extended Arabic-Indic digits
    (
        1,
        Class::List(&['\u{060C}', '\u{061B}', '\u{061F}', '\u{066A}', '\u{06D4}']),
    ),
];

/// ZWNJ, ZWJ, tatweel, bidi marks, embeddings, isolates, BOM, soft hyphen, separators.
const JOINERS_AND_BIDI: Class = Class::List(&[
    '\u{200C}', '\u{200D}', '\u{0640}', '\u{200E}', '\u{200F}', '\u{061C}', '\u{202A}', '\u{202B}',
    '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{FEFF}',
    '\u{00AD}', '\u{2028}', '\u{2029}',
]);

/// Supplementary-plane characters (surrogate pairs) and the BMP modifiers around emoji.
const EMOJI: &[(u32, Class)] = &[
    (3, Class::Range('\u{1F300}', '\u{1F64F}')),
    (2, Class::Range('\u{1F900}', '\u{1F9FF}')),
    (1, Class::Range('\u{1F1E6}', '\u{1F1FF}')), // regional indicators
    (1, Class::Range('\u{1F3FB}', '\u{1F3FF}')), // skin tones
    (
        1,
        Class::List(&['\u{FE0F}', '\u{200D}', '\u{1D11E}', '\u{20000}']),
    ),
];

/// Look-alikes and near misses that are not GSM.
const NOT_GSM_LATIN: Class = Class::List(&[
    '`', '\t', '\0', '\u{001B}', '\u{007F}', '\u{00A0}', '\u{00E7}', '\u{00E1}', '\u{00C0}',
    '\u{00B0}', '\u{0301}', '\u{2206}', '\u{2126}', '\u{0391}', '\u{FF21}', '\u{0410}', '\u{00FF}',
]);

/// GSM text: default alphabet with a fifth of extension characters.
const GSM_MIX: &[(u32, &[(u32, Class)])] = &[(8, GSM_DEFAULT), (2, &[(1, GSM_EXTENSION)])];

/// Everything mixed, Arabic script first.
const MIXED_MIX: &[(u32, &[(u32, Class)])] = &[
    (5, ARABIC_SCRIPT),
    (3, GSM_DEFAULT),
    (1, &[(1, GSM_EXTENSION)]),
    (1, &[(1, JOINERS_AND_BIDI)]),
    (1, EMOJI),
    (1, &[(1, NOT_GSM_LATIN)]),
];

/// Picks from `items` by weight with `x`, returning the item and what is left of `x`.
fn weighted<T: Copy>(items: &[(u32, T)], x: u32) -> (T, u32) {
    let total: u32 = items.iter().map(|(w, _)| w).sum();
    let mut r = x % total;
    for (w, item) in items {
        if r < *w {
            return (*item, x / total);
        }
        r -= w;
    }
    unreachable!("r < total")
}

fn pick(mix: &[(u32, &[(u32, Class)])], x: u32) -> char {
    let (group, x) = weighted(mix, x);
    let (class, x) = weighted(group, x);
    class.get(x)
}

// ---- text generators ----------------------------------------------------------------

fn text_of(
    mix: &'static [(u32, &'static [(u32, Class)])],
    max: usize,
) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<u32>(), 0..max)
        .prop_map(move |xs| xs.into_iter().map(|x| pick(mix, x)).collect())
}

/// Only GSM characters, long enough for several segments.
fn gsm_text() -> impl Strategy<Value = String> {
    text_of(GSM_MIX, 800)
}

/// Everything mixed: Arabic script, Latin, joiners, emoji, extension characters.
fn mixed_text() -> impl Strategy<Value = String> {
    text_of(MIXED_MIX, 500)
}

/// A run of `n` one-unit characters, then a two-unit character (escape or surrogate pair)
/// that lands on or next to a segment limit, then more text.
fn boundary_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (145usize..=162, any::<u32>(), gsm_text()).prop_map(|(n, x, rest)| format!(
            "{}{}{rest}",
            "a".repeat(n),
            GSM_EXTENSION.get(x)
        )),
        (60usize..=72, any::<u32>(), mixed_text()).prop_map(|(n, x, rest)| format!(
            "{}{}{rest}",
            "\u{0628}".repeat(n),
            weighted(EMOJI, x).0.get(x)
        )),
    ]
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![mixed_text(), gsm_text(), boundary_text()]
}

// ---- invariants ---------------------------------------------------------------------

fn decode(encoded: &Encoded, bytes: &[u8]) -> String {
    match encoded.encoding() {
        Encoding::Gsm7 => decode_gsm7(bytes).expect("our GSM7 payload decodes"),
        Encoding::Ucs2 => decode_ucs2(bytes).expect("our UCS2 payload decodes"),
    }
}

fn check_segments(text: &str, encoded: &Encoded, ref_bits: RefBits) -> Result<(), TestCaseError> {
    let payload = encoded.payload();
    let unit = encoded.encoding().octets_per_unit();
    let limits = limits(encoded.encoding(), ref_bits);
    let count = segment_count(encoded, ref_bits);
    let ranges = segment(encoded, ref_bits).expect("generated texts stay under 255 segments");
    prop_assert_eq!(ranges.len(), count);

    // Contiguous, in order, covering the whole payload.
    let mut next = 0;
    for r in &ranges {
        prop_assert_eq!(r.start, next);
        next = r.end;
    }
    prop_assert_eq!(next, payload.len());

    // Single part iff within the single-part limit, whatever the reference size.
    prop_assert_eq!(count == 1, encoded.units() <= limits.single);
    if count == 1 {
        prop_assert_eq!(ranges[0].clone(), 0..payload.len());
        return Ok(());
    }
    let per = limits.per_segment;
    prop_assert!(count >= encoded.units().div_ceil(per));
    prop_assert!(count <= encoded.units().div_ceil(per - 1));

    let mut rejoined = String::new();
    for (i, r) in ranges.iter().enumerate() {
        let bytes = &payload[r.clone()];
        let units = bytes.len() / unit;
        prop_assert!(units <= per, "segment {} has {} units > {}", i, units, per);
        prop_assert!(!bytes.is_empty());
        if i + 1 < ranges.len() {
            // Greedy: at most one unit short (a pair moved on).
            prop_assert!(units >= per - 1, "segment {} has only {} units", i, units);
        }
        match encoded.encoding() {
            Encoding::Gsm7 => prop_assert_ne!(bytes[bytes.len() - 1], ESCAPE),
            Encoding::Ucs2 => {
                prop_assert!(
                    bytes[0] & 0xFC != 0xDC,
                    "segment {} starts with a low surrogate",
                    i
                );
                prop_assert!(
                    bytes[bytes.len() - 2] & 0xFC != 0xD8,
                    "segment {} ends with a high surrogate",
                    i
                );
            }
        }
        // Every segment is valid on its own, and the pieces rejoin to the text.
        rejoined.push_str(&decode(encoded, bytes));
    }
    prop_assert_eq!(rejoined.as_str(), text);
    Ok(())
}

fn check_parts(encoded: &Encoded, reference: u16) -> Result<(), TestCaseError> {
    let single = encoded.units() <= limits(encoded.encoding(), RefBits::Eight).single;
    for strategy in [
        LongMessageStrategy::Csms,
        LongMessageStrategy::Sar,
        LongMessageStrategy::Tlv,
    ] {
        for ref_bits in [RefBits::Eight, RefBits::Sixteen] {
            let parts = parts(encoded, strategy, ref_bits, reference).expect("small enough");
            let count = parts.len();
            let mut rejoined = Vec::new();
            for (i, p) in parts.iter().enumerate() {
                prop_assert_eq!((usize::from(p.index), usize::from(p.count)), (i + 1, count));
                prop_assert!(p.short_message.len() <= 254);
                if single {
                    prop_assert_eq!(count, 1);
                    prop_assert_eq!(p.esm_class_flags, 0);
                    prop_assert!(p.tlvs.is_empty());
                    rejoined.extend_from_slice(&p.short_message);
                    continue;
                }
                let (seq, total) = (i as u8 + 1, count as u8);
                match (strategy, ref_bits) {
                    (LongMessageStrategy::Csms, RefBits::Eight) => {
                        let udh = [0x05, 0x00, 0x03, reference as u8, total, seq];
                        prop_assert_eq!(&p.short_message[..6], &udh[..]);
                        prop_assert_eq!(p.esm_class_flags, 0x40);
                        rejoined.extend_from_slice(&p.short_message[6..]);
                    }
                    (LongMessageStrategy::Csms, RefBits::Sixteen) => {
                        let [hi, lo] = reference.to_be_bytes();
                        let udh = [0x06, 0x08, 0x04, hi, lo, total, seq];
                        prop_assert_eq!(&p.short_message[..7], &udh[..]);
                        prop_assert_eq!(p.esm_class_flags, 0x40);
                        rejoined.extend_from_slice(&p.short_message[7..]);
                    }
                    (LongMessageStrategy::Sar, _) => {
                        let sent_ref = match ref_bits {
                            RefBits::Eight => reference & 0xFF,
                            RefBits::Sixteen => reference,
                        };
                        let tlvs = vec![
                            (0x020C, sent_ref.to_be_bytes().to_vec()),
                            (0x020E, vec![total]),
                            (0x020F, vec![seq]),
                        ];
                        prop_assert_eq!(&p.tlvs, &tlvs);
                        prop_assert_eq!(p.esm_class_flags, 0);
                        rejoined.extend_from_slice(&p.short_message);
                    }
                    (LongMessageStrategy::Tlv, _) => {
                        prop_assert_eq!(count, 1);
                        prop_assert!(p.short_message.is_empty());
                        prop_assert_eq!(p.tlvs.len(), 1);
                        prop_assert_eq!(p.tlvs[0].0, 0x0424);
                        rejoined.extend_from_slice(&p.tlvs[0].1);
                    }
                }
            }
            prop_assert_eq!(rejoined.as_slice(), encoded.payload());
        }
    }
    Ok(())
}

fn check_text(text: &str) -> Result<(), TestCaseError> {
    let all_gsm = text.chars().all(is_gsm);
    let encoded = encode(text, EncodingRequest::Auto).expect("auto never fails");
    let expected = if all_gsm {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    };
    prop_assert_eq!(detect(text), expected);
    prop_assert_eq!(encoded.encoding(), expected);
    prop_assert_eq!(encoded.detection(), Detection::Auto);

    // encode → decode is the identity; lengths per RULES.md §3.
    let decoded = decode(&encoded, encoded.payload());
    prop_assert_eq!(decoded.as_str(), text);
    let units = match expected {
        Encoding::Gsm7 => text
            .chars()
            .map(|c| {
                if "^{}\\[~]|\u{20AC}\u{000C}".contains(c) {
                    2
                } else {
                    1
                }
            })
            .sum(),
        Encoding::Ucs2 => text.encode_utf16().count(),
    };
    prop_assert_eq!(encoded.units(), units);
    prop_assert_eq!(encoded.payload().len(), units * expected.octets_per_unit());

    check_segments(text, &encoded, RefBits::Eight)?;
    check_segments(text, &encoded, RefBits::Sixteen)?;
    prop_assert!(
        segment_count(&encoded, RefBits::Sixteen) >= segment_count(&encoded, RefBits::Eight)
    );

    // GSM7_FORCE: per code point, `?` for each non-GSM character.
    let forced = encode(text, EncodingRequest::Gsm7Force).expect("force never fails");
    let replaced = text.chars().filter(|c| !is_gsm(*c)).count();
    let substituted: String = text
        .chars()
        .map(|c| if is_gsm(c) { c } else { '?' })
        .collect();
    prop_assert_eq!(forced.replaced(), replaced);
    prop_assert_eq!(forced.encoding(), Encoding::Gsm7);
    prop_assert_eq!(decode_gsm7(forced.payload()).expect("valid"), substituted);
    if all_gsm {
        prop_assert_eq!(forced.payload(), encoded.payload());
    }

    // GSM7 requested: fails exactly at the first non-GSM character.
    match encode(text, EncodingRequest::Gsm7) {
        Ok(e) => {
            prop_assert!(all_gsm);
            prop_assert_eq!(e.payload(), encoded.payload());
        }
        Err(EncodeError::NotGsm7 {
            position,
            byte_offset,
        }) => {
            let (index, (offset, _)) = text
                .char_indices()
                .enumerate()
                .find(|(_, (_, c))| !is_gsm(*c))
                .expect("a non-GSM character exists");
            prop_assert_eq!((position, byte_offset), (index, offset));
        }
    }

    // UCS2 requested: always UTF-16BE.
    let ucs2 = encode(text, EncodingRequest::Ucs2).expect("UCS2 never fails");
    let decoded = decode_ucs2(ucs2.payload()).expect("valid");
    prop_assert_eq!(decoded.as_str(), text);

    let fp = fingerprint(&encoded);
    prop_assert_eq!(fp.len(), 32);
    prop_assert!(
        fp.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    prop_assert_eq!(fingerprint_text(text), fp);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn texts_round_trip_and_segment_by_the_rules(text in any_text()) {
        check_text(&text)?;
    }

    #[test]
    fn wire_parts_rebuild_the_payload(text in any_text(), reference in any::<u16>()) {
        let encoded = encode(&text, EncodingRequest::Auto).expect("auto never fails");
        check_parts(&encoded, reference)?;
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let gsm = decode_gsm7(&bytes);
        prop_assert_eq!(gsm.is_ok(), bytes.iter().all(|b| *b <= 0x7F));
        if let Ok(ucs2) = decode_ucs2(&bytes) {
            // A successful UCS2 decode is lossless.
            let back: Vec<u8> = ucs2.encode_utf16().flat_map(u16::to_be_bytes).collect();
            prop_assert_eq!(back, bytes.clone());
        }
        let latin1 = decode_latin1(&bytes);
        prop_assert_eq!(latin1.chars().count(), bytes.len());
    }

    #[test]
    fn gsm7_decoder_handles_every_septet_sequence(bytes in proptest::collection::vec(0u8..0x80, 0..400)) {
        let text = decode_gsm7(&bytes).expect("septets decode");
        // Whatever it decoded re-encodes as GSM7 (fallbacks only produce GSM characters).
        prop_assert_eq!(detect(&text), Encoding::Gsm7);
    }

    #[test]
    fn segment_filter_answers_every_line(lines in proptest::collection::vec(
        prop_oneof![
            any_text().prop_map(|t| serde_json::json!({"id": "x", "text": t}).to_string().into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..60),
        ],
        0..8,
    )) {
        let mut input = Vec::new();
        let mut expected = 0;
        for line in &lines {
            let line: Vec<u8> = line.iter().copied().filter(|b| *b != b'\n').collect();
            if !line.trim_ascii().is_empty() {
                expected += 1;
            }
            input.extend_from_slice(&line);
            input.push(b'\n');
        }
        let mut output = Vec::new();
        let summary = run_segments(input.as_slice(), &mut output).expect("in-memory I/O");
        prop_assert_eq!(summary.lines, expected);
        prop_assert_eq!(summary.ok + summary.errors, expected);
        let answers = String::from_utf8(output).expect("UTF-8 out");
        prop_assert_eq!(answers.lines().count(), expected);
        for answer in answers.lines() {
            let value: serde_json::Value = serde_json::from_str(answer).expect("JSON out");
            prop_assert!(value.get("id").is_some());
        }
    }
}
