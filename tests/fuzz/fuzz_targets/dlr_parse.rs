//! Fuzz target: the delivery receipt parser on arbitrary text and TLVs.
//!
//! The first octet picks esm_class and data_coding bits, the rest is split into a
//! short_message and a run of TLVs. Invariants checked: nothing panics; a parsed receipt
//! has a non-empty message id; message_state, when present, matches the status; id
//! normalisation accepts whatever the parser returns.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smpp_connector::inbound::dlr::{
    self, DlrStatus, IdFormat, Receipt, normalize_receipt_id, normalize_submit_id,
};
use smpp_connector::protocol::pdu::{SmBody, Tlv};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let _ = Receipt::parse(&text).looks_like_receipt();
    let _ = dlr::is_receipt(flags, &text);

    let split = rest.len().min(usize::from(flags) * 2);
    let (short_message, mut tlv_octets) = rest.split_at(split);
    let mut tlvs = Vec::new();
    while tlv_octets.len() >= 3 {
        let tag = match tlv_octets[0] % 4 {
            0 => 0x001E,
            1 => 0x0427,
            2 => 0x0423,
            _ => 0x0424,
        };
        let len = usize::from(tlv_octets[1] % 8).min(tlv_octets.len() - 2);
        tlvs.push(Tlv::new(tag, tlv_octets[2..2 + len].to_vec()));
        tlv_octets = &tlv_octets[2 + len..];
    }
    let body = SmBody {
        esm_class: if flags & 1 == 1 { 0x04 } else { 0x00 },
        data_coding: if flags & 2 == 2 { 0x08 } else { 0x00 },
        short_message: short_message.to_vec(),
        tlvs,
        ..SmBody::default()
    };
    let _ = dlr::is_receipt_body(&body);
    if let Ok(parsed) = dlr::parse_receipt(&body) {
        assert!(!parsed.operator_message_id.is_empty());
        if let Some(state) = parsed.message_state {
            assert_eq!(state, parsed.status.message_state());
        }
        if parsed.status != DlrStatus::Unknown {
            assert!(parsed.message_state.is_some());
        }
        for format in [IdFormat::Hex, IdFormat::Dec, IdFormat::String] {
            let _ = normalize_submit_id(&parsed.operator_message_id, format);
            let _ = normalize_receipt_id(&parsed.operator_message_id, format, IdFormat::Hex);
        }
    }
});
