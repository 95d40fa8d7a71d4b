//! Fuzz target: a mobile-originated deliver_sm from an SMSC through MO decoding and
//! concatenation.
//!
//! The first octets pick esm_class and data_coding, the rest is split into a
//! short_message and a run of TLVs (SAR, message_payload, anything). Invariants checked:
//! nothing panics; a part's position is within its total (1..=total, total > 1); the
//! stored value of a part and the assembly of several parts (in any order, repeated)
//! never panic, and a message assembled from all its parts is complete.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smpp_connector::inbound::mo;
use smpp_connector::protocol::pdu::{SmBody, Tlv};
use smpp_connector::inbound::reassembly::{self, MoKey};

fuzz_target!(|data: &[u8]| {
    let [esm_class, data_coding, split, rest @ ..] = data else {
        return;
    };
    let cut = usize::from(*split).min(rest.len());
    let (short_message, tlv_bytes) = rest.split_at(cut);
    let mut tlvs = Vec::new();
    let mut tail = tlv_bytes;
    while let [hi, lo, len, more @ ..] = tail {
        let len = usize::from(*len).min(more.len());
        tlvs.push(Tlv {
            tag: u16::from_be_bytes([*hi, *lo]),
            value: more[..len].to_vec(),
        });
        tail = &more[len..];
    }
    let body = SmBody {
        esm_class: *esm_class,
        data_coding: *data_coding,
        short_message: short_message.to_vec(),
        tlvs,
        ..SmBody::default()
    };
    let _ = mo::decode(&body);
    let (user_data, part) = mo::user_data(&body);
    let _ = mo::decode_text(body.data_coding, user_data);
    let Some(part) = part else {
        return;
    };
    assert!(part.total > 1, "a concatenated part has a total above one");
    assert!(
        (1..=part.total).contains(&part.seq),
        "part {} of {}",
        part.seq,
        part.total
    );
    let key = MoKey::new("op", "1", "2", part);
    let value = reassembly::stored_value(body.data_coding, user_data);
    // Every part with this content, in reverse order and twice over.
    let parts: Vec<(u8, Vec<u8>)> = (1..=part.total)
        .rev()
        .chain(1..=part.total)
        .map(|seq| (seq, value.clone()))
        .collect();
    if let Some(assembled) = reassembly::assemble(&key, &parts) {
        let _ = assembled.event(&key, 0, "2026-01-01T00:00:00.000Z".to_owned());
    }
    let _ = reassembly::assemble(&key, &parts[..1]);
});
