//! Choosing and applying a text encoding: [`detect`], [`encode`] and the [`Encoded`]
//! payload that segmentation, the wire forms and the fingerprint work from.
//!
//! Owns RULES.md §2-§4 (detection, lengths, payload bytes, GSM7_FORCE). Must not log or
//! keep the text (GSM7_FORCE is audit-logged by the caller, from [`Encoded::replaced`],
//! without content), and must not allocate per character: one payload buffer per message.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::EncodeError;
use super::{gsm7, ucs2};

/// The encoding a payload is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Encoding {
    /// GSM 03.38 7-bit, unpacked, `data_coding` 0x00.
    #[serde(rename = "GSM7")]
    Gsm7,
    /// UTF-16BE, `data_coding` 0x08.
    #[serde(rename = "UCS2")]
    Ucs2,
}

impl Encoding {
    /// The SMPP `data_coding` value: 0x00 (SMSC default alphabet) or 0x08 (UCS2).
    pub const fn data_coding(self) -> u8 {
        match self {
            Encoding::Gsm7 => 0x00,
            Encoding::Ucs2 => 0x08,
        }
    }

    /// `"GSM7"` or `"UCS2"`, as in the corpus and the fingerprint.
    pub const fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "GSM7",
            Encoding::Ucs2 => "UCS2",
        }
    }

    /// Octets per septet (GSM7) or per UTF-16 unit (UCS2) in the payload.
    pub const fn octets_per_unit(self) -> usize {
        match self {
            Encoding::Gsm7 => 1,
            Encoding::Ucs2 => 2,
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The encoding a submit command asks for (`encoding` in the command, SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum EncodingRequest {
    /// Detect: GSM7 when every character is GSM, otherwise UCS2.
    #[default]
    #[serde(rename = "AUTO")]
    Auto,
    /// GSM7, failing with [`EncodeError::NotGsm7`] on a non-GSM character.
    #[serde(rename = "GSM7")]
    Gsm7,
    /// UCS2 whatever the text.
    #[serde(rename = "UCS2")]
    Ucs2,
    /// GSM7 with every non-GSM character replaced by `?`.
    #[serde(rename = "GSM7_FORCE")]
    Gsm7Force,
}

impl EncodingRequest {
    /// The wire name: `"AUTO"`, `"GSM7"`, `"UCS2"` or `"GSM7_FORCE"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EncodingRequest::Auto => "AUTO",
            EncodingRequest::Gsm7 => "GSM7",
            EncodingRequest::Ucs2 => "UCS2",
            EncodingRequest::Gsm7Force => "GSM7_FORCE",
        }
    }
}

/// How the encoding of an [`Encoded`] was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Detection {
    /// Detected from the text ([`EncodingRequest::Auto`]).
    Auto,
    /// Requested explicitly (`GSM7`, `UCS2` or `GSM7_FORCE`).
    Forced,
}

/// A whole message in its payload encoding, before segmentation.
///
/// The fields are private so that the payload is always a valid encoding of some text:
/// GSM7 septets 0x00-0x7F where 0x1B is always followed by an extension code, or
/// UTF-16BE with paired surrogates. Segmentation relies on that. `Debug` shows lengths,
/// never the content.
#[derive(Clone, PartialEq, Eq)]
pub struct Encoded {
    encoding: Encoding,
    payload: Vec<u8>,
    units: usize,
    replaced: usize,
    detection: Detection,
}

impl Encoded {
    /// The payload encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The SMPP `data_coding` of the payload.
    pub fn data_coding(&self) -> u8 {
        self.encoding.data_coding()
    }

    /// The whole payload: unpacked septets (escapes included) or UTF-16BE octets.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Consumes `self` and returns the payload.
    pub fn into_payload(self) -> Vec<u8> {
        self.payload
    }

    /// Length in septets (GSM7) or UTF-16 code units (UCS2), RULES.md §3.
    pub fn units(&self) -> usize {
        self.units
    }

    /// How many characters GSM7_FORCE replaced by `?` (0 for every other request).
    pub fn replaced(&self) -> usize {
        self.replaced
    }

    /// Whether the encoding was detected or requested.
    pub fn detection(&self) -> Detection {
        self.detection
    }
}

impl fmt::Debug for Encoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoded")
            .field("encoding", &self.encoding)
            .field("payload_len", &self.payload.len())
            .field("units", &self.units)
            .field("replaced", &self.replaced)
            .field("detection", &self.detection)
            .finish()
    }
}

/// The encoding RULES.md §2 detects: GSM7 when every character is GSM (the empty text
/// included), otherwise UCS2.
pub fn detect(text: &str) -> Encoding {
    if gsm7::first_non_gsm(text).is_none() {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// Encodes a whole message as requested.
///
/// # Errors
///
/// [`EncodeError::NotGsm7`] when `GSM7` is requested and the text holds a non-GSM
/// character; the error gives its position, not the character.
pub fn encode(text: &str, request: EncodingRequest) -> Result<Encoded, EncodeError> {
    match request {
        EncodingRequest::Auto => Ok(encode_auto(text)),
        EncodingRequest::Gsm7 => {
            let mut payload = Vec::with_capacity(text.len());
            match gsm7::encode_into(text, &mut payload) {
                Ok(()) => Ok(gsm7_encoded(payload, 0, Detection::Forced)),
                Err((position, byte_offset)) => Err(EncodeError::NotGsm7 {
                    position,
                    byte_offset,
                }),
            }
        }
        EncodingRequest::Ucs2 => Ok(ucs2_encoded(text, Vec::new(), Detection::Forced)),
        EncodingRequest::Gsm7Force => Ok(encode_gsm7_force(text)),
    }
}

/// [`encode`] with [`EncodingRequest::Auto`], which cannot fail.
pub(crate) fn encode_auto(text: &str) -> Encoded {
    let mut payload = Vec::with_capacity(text.len());
    match gsm7::encode_into(text, &mut payload) {
        Ok(()) => gsm7_encoded(payload, 0, Detection::Auto),
        Err(_) => {
            payload.clear();
            ucs2_encoded(text, payload, Detection::Auto)
        }
    }
}

/// [`encode`] with [`EncodingRequest::Gsm7Force`], which cannot fail.
pub(crate) fn encode_gsm7_force(text: &str) -> Encoded {
    let mut payload = Vec::with_capacity(text.len());
    let replaced = gsm7::encode_forced_into(text, &mut payload);
    gsm7_encoded(payload, replaced, Detection::Forced)
}

fn gsm7_encoded(payload: Vec<u8>, replaced: usize, detection: Detection) -> Encoded {
    Encoded {
        encoding: Encoding::Gsm7,
        units: payload.len(),
        payload,
        replaced,
        detection,
    }
}

fn ucs2_encoded(text: &str, mut payload: Vec<u8>, detection: Detection) -> Encoded {
    let units = ucs2::encode_into(text, &mut payload);
    Encoded {
        encoding: Encoding::Ucs2,
        payload,
        units,
        replaced: 0,
        detection,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_coding_and_names() {
        assert_eq!(Encoding::Gsm7.data_coding(), 0x00);
        assert_eq!(Encoding::Ucs2.data_coding(), 0x08);
        assert_eq!(Encoding::Gsm7.as_str(), "GSM7");
        assert_eq!(Encoding::Ucs2.to_string(), "UCS2");
        assert_eq!(serde_json::to_string(&Encoding::Ucs2).unwrap(), "\"UCS2\"");
    }

    #[test]
    fn request_serde_names() {
        for (request, name) in [
            (EncodingRequest::Auto, "AUTO"),
            (EncodingRequest::Gsm7, "GSM7"),
            (EncodingRequest::Ucs2, "UCS2"),
            (EncodingRequest::Gsm7Force, "GSM7_FORCE"),
        ] {
            let json = format!("\"{name}\"");
            assert_eq!(serde_json::to_string(&request).unwrap(), json);
            assert_eq!(
                serde_json::from_str::<EncodingRequest>(&json).unwrap(),
                request
            );
            assert_eq!(request.as_str(), name);
        }
        assert!(serde_json::from_str::<EncodingRequest>("\"gsm7\"").is_err());
        assert_eq!(EncodingRequest::default(), EncodingRequest::Auto);
    }

    #[test]
    fn detection_follows_rules() {
        let table = [
            ("", Encoding::Gsm7),
            ("Hello {world} \u{20AC}5", Encoding::Gsm7),
            ("\u{00C7}a va", Encoding::Gsm7),
            ("\u{00E7}a va", Encoding::Ucs2),
            ("e\u{0301}", Encoding::Ucs2),
            ("tab\there", Encoding::Ucs2),
            ("\u{0633}\u{0644}\u{0627}\u{0645}", Encoding::Ucs2),
            ("\u{06F1}\u{06F2}", Encoding::Ucs2),
        ];
        for (text, encoding) in table {
            assert_eq!(detect(text), encoding, "{text:?}");
            assert_eq!(
                encode(text, EncodingRequest::Auto).unwrap().encoding(),
                encoding
            );
        }
    }

    #[test]
    fn encodes_exact_octets() {
        let e = encode("\u{0633}\u{0644}\u{0627}\u{0645}", EncodingRequest::Auto).unwrap();
        assert_eq!(
            e.payload(),
            [0x06, 0x33, 0x06, 0x44, 0x06, 0x27, 0x06, 0x45]
        );
        assert_eq!((e.units(), e.data_coding()), (4, 0x08));
        assert_eq!(e.detection(), Detection::Auto);

        let e = encode("A\u{1F44D}", EncodingRequest::Auto).unwrap();
        assert_eq!(e.payload(), [0x00, 0x41, 0xD8, 0x3D, 0xDC, 0x4D]);
        assert_eq!(e.units(), 3);

        let e = encode("[x]@", EncodingRequest::Auto).unwrap();
        assert_eq!(e.payload(), [0x1B, 0x3C, 0x78, 0x1B, 0x3E, 0x00]);
        assert_eq!((e.units(), e.data_coding()), (6, 0x00));
    }

    #[test]
    fn explicit_requests() {
        let e = encode("abc", EncodingRequest::Ucs2).unwrap();
        assert_eq!(e.payload(), [0, 0x61, 0, 0x62, 0, 0x63]);
        assert_eq!(
            (e.encoding(), e.detection()),
            (Encoding::Ucs2, Detection::Forced)
        );

        let e = encode("abc", EncodingRequest::Gsm7).unwrap();
        assert_eq!(
            (e.payload(), e.detection()),
            (&b"abc"[..], Detection::Forced)
        );

        let err = encode("ok \u{0633}", EncodingRequest::Gsm7).unwrap_err();
        assert_eq!(
            err,
            EncodeError::NotGsm7 {
                position: 3,
                byte_offset: 3
            }
        );
        assert!(!err.to_string().contains('\u{0633}'));
    }

    #[test]
    fn gsm7_force_replaces_per_code_point() {
        // One emoji → one '?'; a five-code-point ZWJ family → five; e + U+0301 → "e?".
        let table: &[(&str, &[u8], usize)] = &[
            ("\u{1F600}", b"?", 1),
            ("\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}", b"?????", 5),
            ("e\u{0301}", b"e?", 1),
            ("\u{00E1}", b"?", 1),
            ("{ok}", &[0x1B, 0x28, b'o', b'k', 0x1B, 0x29], 0),
        ];
        for (text, payload, replaced) in table {
            let e = encode(text, EncodingRequest::Gsm7Force).unwrap();
            assert_eq!(e.payload(), *payload, "{text:?}");
            assert_eq!(e.replaced(), *replaced);
            assert_eq!(e.units(), payload.len());
            assert_eq!(
                (e.encoding(), e.detection()),
                (Encoding::Gsm7, Detection::Forced)
            );
        }
    }

    #[test]
    fn debug_hides_content() {
        let e = encode("secret", EncodingRequest::Auto).unwrap();
        let debug = format!("{e:?}");
        assert!(!debug.contains("115"), "{debug}"); // 's' = 0x73 = 115
        assert!(debug.contains("payload_len: 6"));
    }
}
