//! The segment counter: [`report`] for one text and [`run_segments`], the JSON-lines
//! filter behind `smpp-connector segments` (tests/corpus/README.md), so that billing and
//! CI run exactly the service's code.
//!
//! Owns the corpus record fields (RULES.md §8) and the per-line error answers. Must not
//! touch any I/O but the reader and writer it is handed (no stdin/stdout, files, env or
//! clock) and must not stop at a bad line: it answers it and goes on.

use std::fmt;
use std::io::{self, BufRead, Write};
use std::ops::Range;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::encoded::{Encoded, Encoding, encode_auto, encode_gsm7_force};
use super::error::SegmentError;
use super::fingerprint::fingerprint;
use super::segment::{RefBits, segment};

/// Everything the corpus records about one text, auto-detected. `Debug` shows lengths and
/// counts, never content.
#[derive(Clone, PartialEq, Eq)]
pub struct SegmentReport {
    /// The whole message, encoding detected.
    pub encoded: Encoded,
    /// Segments with an 8-bit reference: byte ranges into `encoded.payload()`.
    pub segments_8bit: Vec<Range<usize>>,
    /// Segments with a 16-bit reference: byte ranges into `encoded.payload()`.
    pub segments_16bit: Vec<Range<usize>>,
    /// RULES.md §6 fingerprint (8-bit count).
    pub fingerprint: String,
    /// The whole payload after GSM7_FORCE (equal to the payload for GSM7 text).
    pub force_gsm7: Vec<u8>,
}

impl SegmentReport {
    /// The detected encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoded.encoding()
    }

    /// Length in septets or UTF-16 units.
    pub fn septets_or_units(&self) -> usize {
        self.encoded.units()
    }

    /// Segment count with an 8-bit reference (what billing charges).
    pub fn segment_count_8bit(&self) -> usize {
        self.segments_8bit.len()
    }

    /// Segment count with a 16-bit reference.
    pub fn segment_count_16bit(&self) -> usize {
        self.segments_16bit.len()
    }
}

impl fmt::Debug for SegmentReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentReport")
            .field("encoded", &self.encoded)
            .field("segment_count_8bit", &self.segments_8bit.len())
            .field("segment_count_16bit", &self.segments_16bit.len())
            .field("fingerprint", &self.fingerprint)
            .field("force_gsm7_len", &self.force_gsm7.len())
            .finish()
    }
}

/// Computes the corpus fields of `text` (RULES.md §8).
///
/// # Errors
///
/// [`SegmentError::TooManySegments`] when the text needs more than 255 segments with
/// either reference size.
pub fn report(text: &str) -> Result<SegmentReport, SegmentError> {
    let encoded = encode_auto(text);
    let segments_8bit = segment(&encoded, RefBits::Eight)?;
    let segments_16bit = segment(&encoded, RefBits::Sixteen)?;
    let fingerprint = fingerprint(&encoded);
    let force_gsm7 = match encoded.encoding() {
        Encoding::Gsm7 => encoded.payload().to_vec(),
        Encoding::Ucs2 => encode_gsm7_force(text).into_payload(),
    };
    Ok(SegmentReport {
        encoded,
        segments_8bit,
        segments_16bit,
        fingerprint,
        force_gsm7,
    })
}

/// What [`run_segments`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Non-blank input lines read.
    pub lines: usize,
    /// Lines answered with results.
    pub ok: usize,
    /// Lines answered with `{"id": ..., "error": ...}`.
    pub errors: usize,
}

/// The segment-counter filter: reads JSON lines `{"id": ..., "text": ...}` from `input`
/// and writes one JSON line per non-blank input line to `output`, in order: `id` and the
/// fields `encoding`, `septets_or_units`, `segments_8bit`, `segments_16bit` (lowercase hex
/// payloads without UDH), `segment_count_8bit`, `segment_count_16bit`, `fingerprint`,
/// `force_gsm7_hex`. Other input fields are ignored.
///
/// A line it cannot handle (not UTF-8, not JSON, not an object, `id` missing or not a
/// string or number, `text` missing or not a string, a lone surrogate escape, more than
/// 255 segments) is answered with `{"id": <id or null>, "error": "<reason>"}` and the
/// filter goes on with the next line. Blank lines are skipped. `output` is flushed once,
/// at the end.
///
/// # Errors
///
/// Only I/O errors of `input` or `output`.
pub fn run_segments<R: BufRead, W: Write>(mut input: R, mut output: W) -> io::Result<Summary> {
    let mut summary = Summary::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        summary.lines += 1;
        match answer(trimmed) {
            Ok(record) => {
                serde_json::to_writer(&mut output, &record)?;
                summary.ok += 1;
            }
            Err(rejected) => {
                serde_json::to_writer(&mut output, &rejected)?;
                summary.errors += 1;
            }
        }
        output.write_all(b"\n")?;
    }
    output.flush()?;
    Ok(summary)
}

/// One answered line.
#[derive(Serialize)]
struct Record {
    id: Value,
    encoding: Encoding,
    septets_or_units: usize,
    segments_8bit: Vec<String>,
    segments_16bit: Vec<String>,
    segment_count_8bit: usize,
    segment_count_16bit: usize,
    fingerprint: String,
    force_gsm7_hex: String,
}

/// One rejected line.
#[derive(Serialize)]
struct Rejected {
    id: Value,
    error: String,
}

impl Rejected {
    fn new(id: Value, error: impl Into<String>) -> Self {
        Rejected {
            id,
            error: error.into(),
        }
    }
}

fn answer(line: &[u8]) -> Result<Record, Rejected> {
    let line = match std::str::from_utf8(line) {
        Ok(line) => line,
        Err(e) => {
            let id = salvage_id(&String::from_utf8_lossy(line));
            let reason = format!(
                "line is not valid UTF-8 (bad byte at offset {})",
                e.valid_up_to()
            );
            return Err(Rejected::new(id, reason));
        }
    };
    let value: Value = serde_json::from_str(line).map_err(|e| {
        let mut reason = format!("invalid JSON: {e}");
        if reason.contains("hex escape") {
            // serde_json's words for a lone surrogate (RULES.md §7) are terse.
            reason.push_str(
                " (a \\u escape needs 4 hex digits and surrogates must come in pairs: \
                 texts are Unicode scalar values)",
            );
        }
        Rejected::new(salvage_id(line), reason)
    })?;
    let Value::Object(mut fields) = value else {
        let reason = format!("line is a JSON {}, not an object", kind(&value));
        return Err(Rejected::new(Value::Null, reason));
    };
    let id = fields.remove("id").unwrap_or(Value::Null);
    let id_problem = match &id {
        Value::String(_) | Value::Number(_) => None,
        Value::Null => Some("missing or null field \"id\"".into()),
        other => Some(format!(
            "field \"id\" must be a string or a number, not {}",
            kind(other)
        )),
    };
    if let Some(reason) = id_problem {
        return Err(Rejected::new(id, reason));
    }
    let text = match fields.remove("text") {
        Some(Value::String(text)) => text,
        None => return Err(Rejected::new(id, "missing field \"text\"")),
        Some(other) => {
            let reason = format!("field \"text\" must be a string, not {}", kind(&other));
            return Err(Rejected::new(id, reason));
        }
    };
    let report = match report(&text) {
        Ok(report) => report,
        Err(e) => return Err(Rejected::new(id, e.to_string())),
    };
    let payload = report.encoded.payload();
    let hex_segments = |ranges: &[Range<usize>]| -> Vec<String> {
        ranges
            .iter()
            .map(|r| hex::encode(&payload[r.clone()]))
            .collect()
    };
    Ok(Record {
        id,
        encoding: report.encoding(),
        septets_or_units: report.septets_or_units(),
        segments_8bit: hex_segments(&report.segments_8bit),
        segments_16bit: hex_segments(&report.segments_16bit),
        segment_count_8bit: report.segment_count_8bit(),
        segment_count_16bit: report.segment_count_16bit(),
        fingerprint: report.fingerprint.clone(),
        force_gsm7_hex: hex::encode(&report.force_gsm7),
    })
}

/// The `id` of a line that did not parse as a whole, when that much can be read: serde
/// skips unknown fields without validating their escapes, so a lone surrogate in `text`
/// still leaves the `id` readable.
fn salvage_id(line: &str) -> Value {
    #[derive(Deserialize)]
    struct IdOnly {
        #[serde(default)]
        id: Value,
    }
    serde_json::from_str::<IdOnly>(line)
        .map(|only| only.id)
        .unwrap_or(Value::Null)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str) -> (Vec<Value>, Summary) {
        let mut out = Vec::new();
        let summary = run_segments(input.as_bytes(), &mut out).unwrap();
        let lines = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (lines, summary)
    }

    #[test]
    fn answers_a_good_line() {
        let (out, summary) = run(
            "{\"id\": \"a-1\", \"text\": \"\u{0633}\u{0644}\u{0627}\u{0645}\", \"note\": \"x\"}\n",
        );
        assert_eq!(
            summary,
            Summary {
                lines: 1,
                ok: 1,
                errors: 0
            }
        );
        assert_eq!(
            out[0],
            serde_json::json!({
                "id": "a-1",
                "encoding": "UCS2",
                "septets_or_units": 4,
                "segments_8bit": ["0633064406270645"],
                "segments_16bit": ["0633064406270645"],
                "segment_count_8bit": 1,
                "segment_count_16bit": 1,
                "fingerprint": "6e0e8e8988177fa2ef8d2aac5d11f951",
                "force_gsm7_hex": "3f3f3f3f",
            })
        );
    }

    #[test]
    fn bad_lines_get_an_error_and_processing_continues() {
        let input = concat!(
            "not json\n",
            "\n",
            "[1, 2]\n",
            "{\"id\": \"no-text\"}\n",
            "{\"id\": \"num-text\", \"text\": 5}\n",
            "{\"text\": \"no id\"}\n",
            "{\"id\": [1], \"text\": \"x\"}\n",
            "{\"id\": \"lone\", \"text\": \"a\\ud800b\"}\n",
            "{\"id\": 7, \"text\": \"ok\"}\r\n",
        );
        let mut bytes = input.as_bytes().to_vec();
        bytes.extend_from_slice(b"{\"id\": \"latin1\", \"text\": \"caf\xE9\"}\n");
        bytes.extend_from_slice(b"{\"id\": \"last\", \"text\": \"\"}");
        let mut out = Vec::new();
        let summary = run_segments(bytes.as_slice(), &mut out).unwrap();
        assert_eq!(
            summary,
            Summary {
                lines: 10,
                ok: 2,
                errors: 8
            }
        );
        let out: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let ids: Vec<&Value> = out.iter().map(|v| &v["id"]).collect();
        assert_eq!(
            ids,
            [
                &Value::Null,
                &Value::Null,
                &serde_json::json!("no-text"),
                &serde_json::json!("num-text"),
                &Value::Null,
                &serde_json::json!([1]),
                &serde_json::json!("lone"),
                &serde_json::json!(7),
                &serde_json::json!("latin1"),
                &serde_json::json!("last"),
            ]
        );
        let errors: Vec<&str> = out.iter().filter_map(|v| v["error"].as_str()).collect();
        assert!(errors[0].starts_with("invalid JSON"), "{}", errors[0]);
        assert_eq!(errors[1], "line is a JSON array, not an object");
        assert_eq!(errors[2], "missing field \"text\"");
        assert_eq!(errors[3], "field \"text\" must be a string, not number");
        assert_eq!(errors[4], "missing or null field \"id\"");
        assert_eq!(
            errors[5],
            "field \"id\" must be a string or a number, not array"
        );
        assert!(
            errors[6].contains("surrogates must come in pairs"),
            "{}",
            errors[6]
        );
        assert!(errors[7].contains("not valid UTF-8"), "{}", errors[7]);
        assert_eq!(
            out[7]["fingerprint"],
            crate::encoding::fingerprint_text("ok")
        );
        assert_eq!(out[9]["segments_8bit"], serde_json::json!([""]));
    }

    #[test]
    fn too_many_segments_is_a_line_error() {
        let text = "a".repeat(153 * 255 + 1);
        let (out, summary) = run(&format!("{{\"id\": \"big\", \"text\": \"{text}\"}}\n"));
        assert_eq!(summary.errors, 1);
        assert_eq!(out[0]["id"], "big");
        assert_eq!(
            out[0]["error"],
            "message needs 256 segments, at most 255 are allowed"
        );
    }
}
