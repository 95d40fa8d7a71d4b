use super::*;
use crate::protocol::pdu::tlv_tag;

fn command(json: &str) -> Result<DispatchCommand, Rejection> {
    parse_command(json.as_bytes())
}

const VALID: &str = r#"{"messageId":"m-1","operatorId":"awcc","to":"+93700000001","text":"hello"}"#;

fn profile(strategy: Strategy) -> SubmitProfile {
    SubmitProfile {
        default_source_addr: Some("Ghasi".into()),
        source_ton: 5,
        source_npi: 0,
        dest_ton: 1,
        dest_npi: 1,
        strategy,
        ref_bits: RefBits::Eight,
    }
}

#[test]
fn a_minimal_command_gets_the_contract_defaults() {
    let cmd = command(VALID).unwrap();
    assert_eq!(cmd.message_id, "m-1");
    assert_eq!(cmd.to, "93700000001");
    assert_eq!(cmd.encoding, EncodingRequest::Auto);
    assert!(cmd.registered_delivery);
    assert_eq!(cmd.priority, Priority::P2);
    assert_eq!(cmd.long_message_strategy, None);
}

#[test]
fn unknown_fields_are_ignored() {
    let cmd = command(r#"{"messageId":"m","operatorId":"o","to":"123","text":"","x":{"y":1}}"#);
    assert!(cmd.is_ok());
}

#[test]
fn bad_payloads_get_the_contract_reason_and_no_content() {
    let cases: &[(&str, DeadLetterReason, &str)] = &[
        ("not json", DeadLetterReason::InvalidJson, "not JSON"),
        ("[1,2]", DeadLetterReason::InvalidJson, "object"),
        (
            r#"{"operatorId":"o","to":"123","text":"t"}"#,
            DeadLetterReason::MissingField,
            "messageId",
        ),
        (
            r#"{"messageId":"m","to":"123","text":"t"}"#,
            DeadLetterReason::MissingField,
            "operatorId",
        ),
        (
            r#"{"messageId":"m","operatorId":"o","text":"t"}"#,
            DeadLetterReason::MissingField,
            "to",
        ),
        (
            r#"{"messageId":"m","operatorId":"o","to":"123"}"#,
            DeadLetterReason::MissingField,
            "text",
        ),
        (
            r#"{"messageId":7,"operatorId":"o","to":"123","text":"t"}"#,
            DeadLetterReason::InvalidField,
            "messageId",
        ),
        (
            r#"{"messageId":"m","operatorId":"o o","to":"123","text":"t"}"#,
            DeadLetterReason::InvalidField,
            "operatorId",
        ),
        (
            r#"{"messageId":"m","operatorId":"o","to":"12a45","text":"t"}"#,
            DeadLetterReason::InvalidField,
            "to",
        ),
        (
            r#"{"messageId":"m","operatorId":"o","to":"12","text":"t"}"#,
            DeadLetterReason::InvalidField,
            "to",
        ),
        (
            r#"{"messageId":"m","operatorId":"o","to":"123","text":5}"#,
            DeadLetterReason::InvalidField,
            "text",
        ),
        (
            r#"{"messageId":"m","operatorId":"o","to":"123","text":"t","encoding":"UTF8"}"#,
            DeadLetterReason::InvalidField,
            "encoding",
        ),
        (
            r#"{"messageId":"m","operatorId":"o","to":"123","text":"t","longMessageStrategy":"X"}"#,
            DeadLetterReason::InvalidField,
            "longMessageStrategy",
        ),
        (
            r#"{"messageId":"m","operatorId":"o","to":"123","text":"t","registeredDelivery":"yes"}"#,
            DeadLetterReason::InvalidField,
            "registeredDelivery",
        ),
        (
            r#"{"messageId":"m","operatorId":"o","to":"123","text":"t","validityPeriodSeconds":0}"#,
            DeadLetterReason::InvalidField,
            "validityPeriodSeconds",
        ),
        (
            r#"{"messageId":"m","operatorId":"o","to":"123","text":"t","segmentFingerprint":"ABC"}"#,
            DeadLetterReason::InvalidField,
            "segmentFingerprint",
        ),
        (
            r#"{"messageId":"m","operatorId":"o","to":"123","text":"t","version":"2.0"}"#,
            DeadLetterReason::InvalidField,
            "version",
        ),
        (
            r#"{"messageId":"m","operatorId":"o","to":"123","text":"t","from":""}"#,
            DeadLetterReason::InvalidField,
            "from",
        ),
    ];
    for (payload, reason, field) in cases {
        let rejection = command(payload).unwrap_err();
        assert_eq!(rejection.reason, *reason, "{payload}");
        assert!(
            rejection.detail.contains(field),
            "{payload}: {}",
            rejection.detail
        );
        assert!(!rejection.detail.contains("12a45"));
    }
}

#[test]
fn rejections_keep_the_ids_they_could_read() {
    let rejection =
        command(r#"{"messageId":"m-9","operatorId":"awcc","to":"x","text":"t"}"#).unwrap_err();
    assert_eq!(rejection.message_id.as_deref(), Some("m-9"));
    assert_eq!(rejection.operator_id.as_deref(), Some("awcc"));
}

#[test]
fn text_over_64_kib_is_too_large() {
    let text = "a".repeat(MAX_TEXT_CHARS + 1);
    let payload = format!(r#"{{"messageId":"m","operatorId":"o","to":"123","text":"{text}"}}"#);
    assert_eq!(
        command(&payload).unwrap_err().reason,
        DeadLetterReason::TooLarge
    );
    let at_limit = "a".repeat(MAX_TEXT_CHARS);
    let payload = format!(r#"{{"messageId":"m","operatorId":"o","to":"123","text":"{at_limit}"}}"#);
    assert!(command(&payload).is_ok());
}

#[test]
fn a_short_gsm7_text_is_one_plain_submit() {
    let cmd = command(VALID).unwrap();
    let encoded = encode_text(&cmd).unwrap();
    let plan = plan_submits(&cmd, &encoded, &profile(Strategy::Csms), 0).unwrap();
    assert_eq!(plan.bodies.len(), 1);
    let body = &plan.bodies[0];
    assert_eq!(body.short_message, b"hello");
    assert_eq!(body.data_coding, 0);
    assert_eq!(body.esm_class, 0);
    assert_eq!(body.destination_addr, "93700000001");
    assert_eq!((body.dest_addr_ton, body.dest_addr_npi), (1, 1));
    assert_eq!(body.source_addr, "Ghasi");
    assert_eq!(body.registered_delivery, 1);
    assert_eq!(plan.fingerprint_check, None);
}

#[test]
fn long_text_follows_the_strategy() {
    let text = "x".repeat(161);
    let payload = format!(r#"{{"messageId":"m","operatorId":"o","to":"123","text":"{text}"}}"#);
    let cmd = command(&payload).unwrap();
    let encoded = encode_text(&cmd).unwrap();

    let csms = plan_submits(&cmd, &encoded, &profile(Strategy::Csms), 0x1234).unwrap();
    assert_eq!(csms.bodies.len(), 2);
    assert_eq!(
        &csms.bodies[0].short_message[..6],
        &[0x05, 0x00, 0x03, 0x34, 2, 1]
    );
    assert_eq!(csms.bodies[1].esm_class, 0x40);

    let sar = plan_submits(&cmd, &encoded, &profile(Strategy::Sar), 7).unwrap();
    assert_eq!(sar.bodies.len(), 2);
    assert!(
        sar.bodies[1]
            .tlvs
            .iter()
            .any(|t| t.tag == tlv_tag::SAR_SEGMENT_SEQNUM && t.value == [2])
    );

    let tlv = plan_submits(&cmd, &encoded, &profile(Strategy::Tlv), 0).unwrap();
    assert_eq!(tlv.bodies.len(), 1);
    assert!(tlv.bodies[0].short_message.is_empty());
    assert_eq!(tlv.bodies[0].tlvs[0].tag, tlv_tag::MESSAGE_PAYLOAD);
}

#[test]
fn gsm7_requested_for_arabic_is_rejected_with_a_position_only() {
    let cmd = command(
        r#"{"messageId":"m","operatorId":"o","to":"123","text":"ab سلام","encoding":"GSM7"}"#,
    )
    .unwrap();
    let rejection = encode_text(&cmd).unwrap_err();
    assert_eq!(rejection.reason, DeadLetterReason::InvalidField);
    assert!(rejection.detail.contains("character 3"));
    assert!(!rejection.detail.contains("سلام"));
}

#[test]
fn fingerprint_is_compared() {
    let fp = encoding::fingerprint_text("hello");
    let payload = format!(
        r#"{{"messageId":"m","operatorId":"o","to":"123","text":"hello","segmentFingerprint":"{fp}"}}"#
    );
    let cmd = command(&payload).unwrap();
    let plan = plan_submits(
        &cmd,
        &encode_text(&cmd).unwrap(),
        &profile(Strategy::Csms),
        0,
    )
    .unwrap();
    assert_eq!(plan.fingerprint_check.map(|c| c.matches), Some(true));

    // An encoding override does not change what billing's counter computes.
    let payload = format!(
        r#"{{"messageId":"m","operatorId":"o","to":"123","text":"hello","encoding":"UCS2","segmentFingerprint":"{fp}"}}"#
    );
    let cmd = command(&payload).unwrap();
    let encoded = encode_text(&cmd).unwrap();
    let plan = plan_submits(&cmd, &encoded, &profile(Strategy::Csms), 0).unwrap();
    assert_eq!(plan.fingerprint_check.map(|c| c.matches), Some(true));

    let other = "0".repeat(32);
    let payload = format!(
        r#"{{"messageId":"m","operatorId":"o","to":"123","text":"hello","segmentFingerprint":"{other}"}}"#
    );
    let cmd = command(&payload).unwrap();
    let encoded = encode_text(&cmd).unwrap();
    let plan = plan_submits(&cmd, &encoded, &profile(Strategy::Csms), 0).unwrap();
    let check = plan.fingerprint_check.unwrap();
    assert!(!check.matches);
    assert_eq!(check.ours, fp);
}

#[test]
fn senders_and_validity_are_encoded_for_smpp() {
    assert_eq!(sender_address("Ghasi"), ("Ghasi".into(), 5, 0));
    assert_eq!(sender_address("+93700000001"), ("93700000001".into(), 1, 1));
    assert_eq!(sender_address("4455"), ("4455".into(), 3, 0));
    assert_eq!(relative_validity(604_800), "000007000000000R");
    assert_eq!(relative_validity(3_661), "000000010101000R");
}

#[test]
fn redelivered_or_stored_before_the_latest_connection_is_looked_up() {
    let connected = 1_000_000_000_000_i128;
    assert_eq!(
        lookup_reason(2, connected * 2, connected),
        Some(LookupReason::Redelivered)
    );
    // Stored before this process connected (or reconnected) to NATS: checked.
    assert_eq!(
        lookup_reason(1, connected - 1, connected),
        Some(LookupReason::StoredBeforeReconnect)
    );
    // Within the clock-skew margin after it: checked too.
    assert_eq!(
        lookup_reason(1, connected + RECONNECT_SKEW_NANOS - 1, connected),
        Some(LookupReason::StoredBeforeReconnect)
    );
    // Well after: a plain first delivery.
    assert_eq!(
        lookup_reason(1, connected + RECONNECT_SKEW_NANOS, connected),
        None
    );
    // Unknown store time: checked; not connected yet (0): nothing to compare with.
    assert_eq!(
        lookup_reason(1, 0, connected),
        Some(LookupReason::StoredBeforeReconnect)
    );
    assert_eq!(lookup_reason(1, 5, 0), None);
}

#[test]
fn a_pinned_subject_names_a_bind_the_operator_may_not_have() {
    assert_eq!(unserved_pinned_bind("smpp.awcc.trx.3.dispatch", 2), Some(3));
    assert_eq!(unserved_pinned_bind("smpp.awcc.trx.2.dispatch", 2), Some(2));
    assert_eq!(unserved_pinned_bind("smpp.awcc.trx.1.dispatch", 2), None);
    assert_eq!(unserved_pinned_bind("smpp.awcc.trx.x.dispatch", 2), None);
    assert_eq!(unserved_pinned_bind("smpp.operator.awcc", 2), None);
    assert_eq!(
        unserved_pinned_bind("smpp.awcc.trx.3.dispatch.more", 2),
        None
    );
}

#[test]
fn a_command_pinned_to_a_missing_bind_is_invalid_and_keeps_its_ids() {
    let payload = br#"{"messageId":"m-1","operatorId":"awcc","to":"93700000001","text":"hi"}"#;
    let rejection = unserved_pinned_rejection(payload, 3, 2);
    assert_eq!(rejection.reason, DeadLetterReason::InvalidField);
    assert_eq!(rejection.message_id.as_deref(), Some("m-1"));
    assert_eq!(rejection.operator_id.as_deref(), Some("awcc"));
    assert!(rejection.detail.contains("bind 3") && rejection.detail.contains("bindCount 2"));
    assert!(!rejection.detail.contains("93700000001"), "no content");
    // Invalid anyway: its own reason.
    let rejection = unserved_pinned_rejection(b"{", 3, 2);
    assert_eq!(rejection.reason, DeadLetterReason::InvalidJson);
}
