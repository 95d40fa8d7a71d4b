//! The conformance corpus (`tests/corpus/cases.jsonl`, 1057 cases) run through
//! [`run_segments`] exactly as `smpp-connector segments` runs it, every compared field
//! checked as `tests/corpus/check.py` does. A regression fails the build.
//!
//! Test-only. Must not read files at run time: the corpus is compiled in, so the test
//! runs from any working directory.

use serde_json::{Value, json};

use super::{fingerprint_text, report, run_segments};

const CASES: &str = include_str!("../../tests/corpus/cases.jsonl");

/// The fields check.py compares.
const FIELDS: [&str; 8] = [
    "encoding",
    "septets_or_units",
    "segments_8bit",
    "segments_16bit",
    "segment_count_8bit",
    "segment_count_16bit",
    "fingerprint",
    "force_gsm7_hex",
];

fn cases() -> Vec<Value> {
    CASES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("corpus lines are JSON"))
        .collect()
}

#[test]
fn corpus_all_cases_pass_through_run_segments() {
    let cases = cases();
    assert_eq!(cases.len(), 1057);

    // Feed the filter what check.py feeds the command: {"id", "text"} per line.
    let mut input = String::new();
    for case in &cases {
        input.push_str(&json!({"id": case["id"], "text": case["text"]}).to_string());
        input.push('\n');
    }
    let mut output = Vec::new();
    let summary = run_segments(input.as_bytes(), &mut output).expect("in-memory I/O");
    assert_eq!((summary.lines, summary.ok, summary.errors), (1057, 1057, 0));

    let output = String::from_utf8(output).expect("the filter writes UTF-8");
    let answers: Vec<Value> = output
        .lines()
        .map(|l| serde_json::from_str(l).expect("the filter writes JSON lines"))
        .collect();
    assert_eq!(answers.len(), 1057);

    let mut failures = Vec::new();
    let mut failed_cases = 0;
    for (case, answer) in cases.iter().zip(&answers) {
        assert_eq!(answer["id"], case["id"], "answers come in input order");
        let before = failures.len();
        for field in FIELDS {
            if answer.get(field) != case.get(field) {
                failures.push(format!(
                    "{} ({}): {field} expected {} got {}",
                    case["id"],
                    case["note"],
                    case[field],
                    answer.get(field).unwrap_or(&Value::Null)
                ));
            }
        }
        if failures.len() > before {
            failed_cases += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} passed, {failed_cases} failed; field mismatches:\n{}",
        cases.len() - failed_cases,
        failures.join("\n")
    );
}

#[test]
fn corpus_library_api_agrees_with_the_filter() {
    for case in cases() {
        let text = case["text"].as_str().expect("corpus texts are strings");
        let r = report(text).expect("no corpus case exceeds 255 segments");
        assert_eq!(r.encoding().as_str(), case["encoding"], "{}", case["id"]);
        assert_eq!(r.septets_or_units() as u64, case["septets_or_units"]);
        assert_eq!(r.segment_count_8bit() as u64, case["segment_count_8bit"]);
        assert_eq!(r.segment_count_16bit() as u64, case["segment_count_16bit"]);
        assert_eq!(
            fingerprint_text(text),
            case["fingerprint"],
            "{}",
            case["id"]
        );
    }
}
