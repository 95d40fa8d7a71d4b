use super::*;

fn sample_body() -> SmBody {
    SmBody {
        source_addr_ton: 5,
        source_addr: "Ghasi".into(),
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        destination_addr: "93700000001".into(),
        registered_delivery: 1,
        short_message: b"hello".to_vec(),
        ..SmBody::default()
    }
}

#[test]
fn submit_sm_round_trips() {
    let frame = Frame::new(7, Pdu::SubmitSm(Box::new(sample_body())));
    let bytes = frame.encode().unwrap();
    assert_eq!(
        u32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize,
        bytes.len()
    );
    assert_eq!(Frame::decode(&bytes).unwrap(), frame);
}

#[test]
fn bind_transceiver_has_interface_version_0x34() {
    let request = BindRequest {
        system_id: "sys".into(),
        password: "pw".into(),
        system_type: String::new(),
        interface_version: INTERFACE_VERSION,
        addr_ton: 0,
        addr_npi: 0,
        address_range: String::new(),
    };
    let bytes = Frame::new(1, Pdu::BindTransceiver(request.clone()))
        .encode()
        .unwrap();
    assert_eq!(
        bytes.as_ref(),
        &[
            0, 0, 0, 28, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, b's', b'y', b's', 0, b'p', b'w', 0, 0,
            0x34, 0, 0, 0
        ][..]
    );
    assert_eq!(
        Frame::decode(&bytes).unwrap().pdu,
        Pdu::BindTransceiver(request)
    );
}

#[test]
fn oversize_command_length_is_refused_before_allocation() {
    let mut codec = SmppCodec::new(4096);
    let mut buf = BytesMut::from(&[0xFF, 0xFF, 0xFF, 0xF0, 0, 0, 0, 4][..]);
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(
        err,
        FrameError::LengthTooLarge {
            length: 0xFFFF_FFF0,
            ..
        }
    ));
    assert!(buf.capacity() < 4096);
}

// ---------------------------------------------------------------------------------------
// Samples: one or more of every PDU we use.

fn bind_request() -> BindRequest {
    BindRequest {
        system_id: "smppclient1".into(),
        password: "password".into(),
        system_type: "VMA".into(),
        interface_version: INTERFACE_VERSION,
        addr_ton: 1,
        addr_npi: 1,
        address_range: "^9370".into(),
    }
}

fn full_body() -> SmBody {
    SmBody {
        service_type: "CMT".into(),
        source_addr_ton: 5,
        source_addr_npi: 0,
        source_addr: "12345678901234567890".into(),
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        destination_addr: "93700000001".into(),
        esm_class: 0x40,
        protocol_id: 0x7F,
        priority_flag: 1,
        schedule_delivery_time: "261122101500000+".into(),
        validity_period: "000001000000000R".into(),
        registered_delivery: 1,
        replace_if_present_flag: 1,
        data_coding: 0x08,
        sm_default_msg_id: 0,
        short_message: vec![0x05, 0x00, 0x03, 0x2A, 0x02, 0x01, 0x00, 0x48],
        tlvs: vec![],
    }
}

fn sar_body() -> SmBody {
    SmBody {
        tlvs: vec![
            Tlv::from_u16(tlv_tag::SAR_MSG_REF_NUM, 0x1234),
            Tlv::from_u8(tlv_tag::SAR_TOTAL_SEGMENTS, 3),
            Tlv::from_u8(tlv_tag::SAR_SEGMENT_SEQNUM, 1),
        ],
        ..sample_body()
    }
}

fn payload_body() -> SmBody {
    SmBody {
        short_message: Vec::new(),
        tlvs: vec![Tlv::new(tlv_tag::MESSAGE_PAYLOAD, vec![b'x'; 1000])],
        ..sample_body()
    }
}

fn receipt_body() -> SmBody {
    SmBody {
        source_addr: "93700000001".into(),
        destination_addr: "Ghasi".into(),
        esm_class: 0x04,
        short_message: b"id:38601fa sub:001 dlvrd:001 submit date:2611221015 done date:2611221016 stat:DELIVRD err:000 text:".to_vec(),
        tlvs: vec![
            Tlv::from_c_string(tlv_tag::RECEIPTED_MESSAGE_ID, "38601fa"),
            Tlv::from_u8(tlv_tag::MESSAGE_STATE, 2),
            Tlv::new(tlv_tag::NETWORK_ERROR_CODE, vec![3, 0, 0]),
        ],
        ..SmBody::default()
    }
}

fn bind_resp(system_id: &str, version: Option<u8>) -> BindResponse {
    BindResponse {
        system_id: Some(system_id.into()),
        sc_interface_version: version,
    }
}

/// Every sample, each with a distinct sequence number. Error responses carry no body.
fn samples() -> Vec<Frame> {
    let error = |seq, status, pdu| Frame::with_status(seq, status, pdu);
    vec![
        Frame::new(1, Pdu::BindTransmitter(bind_request())),
        Frame::new(2, Pdu::BindReceiver(bind_request())),
        Frame::new(3, Pdu::BindTransceiver(bind_request())),
        Frame::new(4, Pdu::BindTransmitterResp(bind_resp("SMSC", Some(0x34)))),
        Frame::new(5, Pdu::BindReceiverResp(bind_resp("SMSC", None))),
        Frame::new(6, Pdu::BindTransceiverResp(bind_resp("", Some(0x34)))),
        error(
            7,
            CommandStatus::ESME_RINVPASWD,
            Pdu::BindTransmitterResp(BindResponse::default()),
        ),
        error(
            8,
            CommandStatus::ESME_RBINDFAIL,
            Pdu::BindReceiverResp(BindResponse::default()),
        ),
        error(
            9,
            CommandStatus::ESME_RINVCMDID,
            Pdu::BindTransceiverResp(BindResponse::default()),
        ),
        Frame::new(10, Pdu::SubmitSm(Box::new(sample_body()))),
        Frame::new(11, Pdu::SubmitSm(Box::new(full_body()))),
        Frame::new(12, Pdu::SubmitSm(Box::new(sar_body()))),
        Frame::new(13, Pdu::SubmitSm(Box::new(payload_body()))),
        Frame::new(
            14,
            Pdu::SubmitSmResp(SubmitSmResp {
                message_id: Some("38601fa".into()),
            }),
        ),
        Frame::new(
            15,
            Pdu::SubmitSmResp(SubmitSmResp {
                message_id: Some(String::new()),
            }),
        ),
        error(
            16,
            CommandStatus::ESME_RTHROTTLED,
            Pdu::SubmitSmResp(SubmitSmResp::default()),
        ),
        error(
            17,
            CommandStatus(0x0000_0401),
            Pdu::SubmitSmResp(SubmitSmResp::default()),
        ),
        Frame::new(18, Pdu::DeliverSm(Box::new(receipt_body()))),
        Frame::new(19, Pdu::DeliverSm(Box::new(sample_body()))),
        Frame::new(20, Pdu::DeliverSmResp),
        error(21, CommandStatus::ESME_RX_T_APPN, Pdu::DeliverSmResp),
        Frame::new(22, Pdu::EnquireLink),
        Frame::new(23, Pdu::EnquireLinkResp),
        Frame::new(24, Pdu::Unbind),
        Frame::new(25, Pdu::UnbindResp),
        error(26, CommandStatus::ESME_RINVCMDLEN, Pdu::GenericNack),
        Frame::new(MAX_SEQUENCE_NUMBER, Pdu::EnquireLink),
    ]
}

/// Exhaustive on purpose: a new `Pdu` variant must get a sample.
fn variant_index(pdu: &Pdu) -> usize {
    match pdu {
        Pdu::BindTransmitter(_) => 0,
        Pdu::BindTransmitterResp(_) => 1,
        Pdu::BindReceiver(_) => 2,
        Pdu::BindReceiverResp(_) => 3,
        Pdu::BindTransceiver(_) => 4,
        Pdu::BindTransceiverResp(_) => 5,
        Pdu::SubmitSm(_) => 6,
        Pdu::SubmitSmResp(_) => 7,
        Pdu::DeliverSm(_) => 8,
        Pdu::DeliverSmResp => 9,
        Pdu::EnquireLink => 10,
        Pdu::EnquireLinkResp => 11,
        Pdu::Unbind => 12,
        Pdu::UnbindResp => 13,
        Pdu::GenericNack => 14,
    }
}

fn encoded_stream(frames: &[Frame]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for frame in frames {
        frame.encode_into(&mut out).unwrap();
    }
    out.to_vec()
}

/// A PDU from a header and raw body octets (command_length computed).
fn raw_pdu(command_id: u32, status: u32, sequence_number: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_be_bytes());
    out.extend_from_slice(&command_id.to_be_bytes());
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(&sequence_number.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A deliver_sm body from raw parts; the other fields are zero / empty.
fn raw_sm_body(source_addr: &[u8], short_message: &[u8], tlv_octets: &[u8]) -> Vec<u8> {
    let mut out = vec![0]; // service_type
    out.extend_from_slice(&[1, 1]);
    out.extend_from_slice(source_addr);
    out.push(0);
    out.extend_from_slice(&[1, 1]);
    out.extend_from_slice(b"93700000001\0");
    out.extend_from_slice(&[0x04, 0, 0]); // esm_class, protocol_id, priority_flag
    out.extend_from_slice(&[0, 0]); // schedule_delivery_time, validity_period
    out.extend_from_slice(&[0, 0, 0, 0]); // registered_delivery .. sm_default_msg_id
    out.push(short_message.len() as u8);
    out.extend_from_slice(short_message);
    out.extend_from_slice(tlv_octets);
    out
}

fn decode_all(codec: &mut SmppCodec, buf: &mut BytesMut, out: &mut Vec<Inbound>) {
    while let Some(item) = codec.decode(buf).expect("stream stays valid") {
        out.push(item);
    }
}

fn frames_of(items: Vec<Inbound>) -> Vec<Frame> {
    items
        .into_iter()
        .map(|item| match item {
            Inbound::Frame(frame) => frame,
            Inbound::Malformed(m) => panic!("unexpected malformed item {m:?}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Round trips.

#[test]
fn samples_cover_every_pdu_variant() {
    let mut seen = [false; 15];
    for frame in samples() {
        seen[variant_index(&frame.pdu)] = true;
    }
    assert!(seen.iter().all(|s| *s), "{seen:?}");
}

#[test]
fn every_sample_round_trips() {
    for frame in samples() {
        let bytes = frame.encode().unwrap();
        let header = RawHeader::parse(&bytes);
        assert_eq!(header.command_length as usize, bytes.len(), "{frame:?}");
        assert_eq!(header.command_id, frame.command_id() as u32);
        assert_eq!(header.command_status, frame.command_status.0);
        assert_eq!(header.sequence_number, frame.sequence_number);
        assert_eq!(Frame::decode(&bytes).as_ref(), Ok(&frame));
        assert_eq!(decode_inbound(&bytes), Inbound::Frame(frame));
    }
}

#[test]
fn error_responses_have_no_body() {
    for (status, pdu) in [
        (
            CommandStatus::ESME_RTHROTTLED,
            Pdu::SubmitSmResp(SubmitSmResp {
                message_id: Some("ignored".into()),
            }),
        ),
        (
            CommandStatus::ESME_RINVPASWD,
            Pdu::BindTransceiverResp(bind_resp("ignored", Some(0x34))),
        ),
        (CommandStatus::ESME_RINVCMDID, Pdu::GenericNack),
        (CommandStatus::ESME_RINVBNDSTS, Pdu::EnquireLinkResp),
    ] {
        let bytes = Frame::with_status(9, status, pdu).encode().unwrap();
        assert_eq!(bytes.len(), HEADER_LEN, "{status}");
    }
}

#[test]
fn exact_octets_of_hand_encoded_pdus() {
    let enquire_link = Frame::new(0x0102_0304, Pdu::EnquireLink).encode().unwrap();
    assert_eq!(
        enquire_link.as_ref(),
        &[0, 0, 0, 16, 0, 0, 0, 0x15, 0, 0, 0, 0, 1, 2, 3, 4][..]
    );
    let nack = Frame::with_status(5, CommandStatus::ESME_RINVCMDID, Pdu::GenericNack)
        .encode()
        .unwrap();
    assert_eq!(
        nack.as_ref(),
        &[0, 0, 0, 16, 0x80, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 5][..]
    );
    let deliver_sm_resp = Frame::new(6, Pdu::DeliverSmResp).encode().unwrap();
    assert_eq!(
        deliver_sm_resp.as_ref(),
        &[0, 0, 0, 17, 0x80, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 6, 0][..]
    );
    let bind_resp = Frame::new(7, Pdu::BindTransceiverResp(bind_resp("AB", Some(0x34))))
        .encode()
        .unwrap();
    assert_eq!(
        bind_resp.as_ref(),
        &[
            0, 0, 0, 24, 0x80, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 7, b'A', b'B', 0, 0x02, 0x10, 0, 1,
            0x34
        ][..]
    );
}

// ---------------------------------------------------------------------------------------
// Codec: framing across arbitrary read boundaries.

#[test]
fn codec_decodes_a_stream_split_at_every_byte_boundary() {
    let frames = samples();
    let stream = encoded_stream(&frames);
    for split in 0..=stream.len() {
        let mut codec = SmppCodec::default();
        let mut buf = BytesMut::from(&stream[..split]);
        let mut items = Vec::new();
        decode_all(&mut codec, &mut buf, &mut items);
        buf.extend_from_slice(&stream[split..]);
        decode_all(&mut codec, &mut buf, &mut items);
        assert!(
            buf.is_empty(),
            "split at {split}: {} octets left",
            buf.len()
        );
        assert_eq!(frames_of(items), frames, "split at {split}");
    }
}

#[test]
fn codec_decodes_a_stream_fed_one_byte_at_a_time() {
    let frames = samples();
    let stream = encoded_stream(&frames);
    let mut codec = SmppCodec::default();
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for byte in stream {
        buf.extend_from_slice(&[byte]);
        decode_all(&mut codec, &mut buf, &mut items);
    }
    assert!(buf.is_empty());
    assert_eq!(frames_of(items), frames);
}

#[test]
fn codec_encoder_writes_the_encoded_bytes() {
    let mut codec = SmppCodec::default();
    let mut wire = BytesMut::new();
    for frame in samples() {
        codec.encode(frame.encode().unwrap(), &mut wire).unwrap();
    }
    assert_eq!(wire.as_ref(), encoded_stream(&samples()).as_slice());
    let mut items = Vec::new();
    decode_all(&mut codec, &mut wire, &mut items);
    assert_eq!(frames_of(items), samples());
}

// ---------------------------------------------------------------------------------------
// Sloppy operators (SPEC §2): all five decode.

#[test]
fn receipted_message_id_without_its_nul_decodes() {
    let mut tlvs = vec![0x00, 0x1E, 0x00, 0x07];
    tlvs.extend_from_slice(b"38601fa");
    tlvs.extend_from_slice(&[0x04, 0x27, 0x00, 0x01, 0x02]);
    let bytes = raw_pdu(
        5,
        0,
        77,
        &raw_sm_body(b"93700000001", b"id:38601fa stat:DELIVRD", &tlvs),
    );
    let Ok(Frame {
        pdu: Pdu::DeliverSm(body),
        sequence_number: 77,
        ..
    }) = Frame::decode(&bytes)
    else {
        panic!("deliver_sm did not decode");
    };
    let id = find_tlv(&body.tlvs, tlv_tag::RECEIPTED_MESSAGE_ID).unwrap();
    assert_eq!(id.value, b"38601fa");
    assert_eq!(id.as_text(), "38601fa");
    assert_eq!(
        find_tlv(&body.tlvs, tlv_tag::MESSAGE_STATE).and_then(Tlv::as_u8),
        Some(2)
    );
}

#[test]
fn latin1_byte_in_an_address_decodes() {
    let bytes = raw_pdu(5, 0, 78, &raw_sm_body(b"Caf\xE9", b"hello", &[]));
    let Ok(Frame {
        pdu: Pdu::DeliverSm(body),
        ..
    }) = Frame::decode(&bytes)
    else {
        panic!("deliver_sm did not decode");
    };
    assert_eq!(body.source_addr, "Caf\u{FFFD}");
    assert_eq!(body.short_message, b"hello");
}

#[test]
fn tlv_with_a_wrong_length_decodes() {
    // message_state with two octets, then a TLV that claims 10 octets but carries 2.
    let tlvs = [
        0x04, 0x27, 0x00, 0x02, 0x00, 0x02, 0x04, 0x23, 0x00, 0x0A, 0x03, 0x00,
    ];
    let bytes = raw_pdu(5, 0, 79, &raw_sm_body(b"123", b"id:1", &tlvs));
    let Ok(Frame {
        pdu: Pdu::DeliverSm(body),
        ..
    }) = Frame::decode(&bytes)
    else {
        panic!("deliver_sm did not decode");
    };
    assert_eq!(body.short_message, b"id:1");
    let state = find_tlv(&body.tlvs, tlv_tag::MESSAGE_STATE).unwrap();
    assert_eq!(state.as_u8(), None);
    assert_eq!(state.as_u16(), Some(2));
    assert!(find_tlv(&body.tlvs, tlv_tag::NETWORK_ERROR_CODE).is_none());
}

#[test]
fn seventy_character_message_id_decodes() {
    let id = "a".repeat(70);
    let mut body = id.clone().into_bytes();
    body.push(0);
    let bytes = raw_pdu(0x8000_0004, 0, 80, &body);
    assert_eq!(
        Frame::decode(&bytes).unwrap().pdu,
        Pdu::SubmitSmResp(SubmitSmResp {
            message_id: Some(id.clone())
        })
    );
    // Without its NUL as well.
    let bytes = raw_pdu(0x8000_0004, 0, 81, id.as_bytes());
    assert_eq!(
        Frame::decode(&bytes).unwrap().pdu,
        Pdu::SubmitSmResp(SubmitSmResp {
            message_id: Some(id)
        })
    );
    // An OK response with no body at all.
    let bytes = raw_pdu(0x8000_0004, 0, 82, &[]);
    assert_eq!(
        Frame::decode(&bytes).unwrap().pdu,
        Pdu::SubmitSmResp(SubmitSmResp {
            message_id: Some(String::new())
        })
    );
}

#[test]
fn twenty_character_system_id_decodes() {
    let system_id = "ABCDEFGHIJKLMNOPQRST";
    let mut body = system_id.as_bytes().to_vec();
    body.push(0);
    body.extend_from_slice(&[0x02, 0x10, 0x00, 0x01, 0x34]);
    for command_id in [0x8000_0001, 0x8000_0002, 0x8000_0009] {
        let bytes = raw_pdu(command_id, 0, 83, &body);
        let frame = Frame::decode(&bytes).unwrap();
        let expected = bind_resp(system_id, Some(0x34));
        let response = match frame.pdu {
            Pdu::BindReceiverResp(r)
            | Pdu::BindTransmitterResp(r)
            | Pdu::BindTransceiverResp(r) => r,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(response, expected);
    }
    // Without the NUL and without the TLV.
    let bytes = raw_pdu(0x8000_0009, 0, 84, system_id.as_bytes());
    assert_eq!(
        Frame::decode(&bytes).unwrap().pdu,
        Pdu::BindTransceiverResp(bind_resp(system_id, None))
    );
}

#[test]
fn real_world_receipt_decodes() {
    // From cloudhopper-smpp's DeliveryReceiptTest: a receipt with source/dest network
    // type, receipted_message_id and message_state TLVs.
    let hex = "000000BA00000005000000000000000200010134343935313336313932300001013430343034000400000000000000006E69643A30303539313133393738207375623A30303120646C7672643A303031207375626D697420646174653A3130303231303137333020646F6E6520646174653A3130303231303137333120737461743A44454C49565244206572723A30303020746578743A4024232125262F3A000E0001010006000101001E000833383630316661000427000102";
    let bytes = hex::decode(hex).unwrap();
    let frame = Frame::decode(&bytes).unwrap();
    assert_eq!(frame.sequence_number, 2);
    let Pdu::DeliverSm(body) = frame.pdu else {
        panic!("not a deliver_sm");
    };
    assert_eq!(body.source_addr, "44951361920");
    assert_eq!(body.destination_addr, "40404");
    assert_eq!(body.esm_class, 0x04);
    assert!(body.short_message.starts_with(b"id:0059113978 sub:001"));
    assert_eq!(
        body.tlvs.iter().map(|t| t.tag).collect::<Vec<_>>(),
        [0x000E, 0x0006, 0x001E, 0x0427]
    );
    assert_eq!(
        find_tlv(&body.tlvs, tlv_tag::RECEIPTED_MESSAGE_ID).map(Tlv::as_text),
        Some("38601fa".to_owned())
    );
    // Re-encoding gives the same octets.
    assert_eq!(
        Frame::new(2, Pdu::DeliverSm(body))
            .encode()
            .unwrap()
            .as_ref(),
        bytes.as_slice()
    );
}

// ---------------------------------------------------------------------------------------
// Malformed bodies: reported with their sequence number, the stream stays in step.

fn malformed_cases() -> Vec<(Vec<u8>, u32, u32, DecodeError)> {
    vec![
        // submit_sm whose source_addr never ends.
        (
            raw_pdu(4, 0, 101, b"\0\x01\x01abc"),
            4,
            101,
            DecodeError::InvalidBody {
                command_id: CommandId::SubmitSm,
            },
        ),
        // deliver_sm whose sm_length runs past the end.
        (
            {
                let mut body = raw_sm_body(b"1", b"hello", &[]);
                let len_at = body.len() - 6;
                body[len_at] = 200;
                raw_pdu(5, 0, 102, &body)
            },
            5,
            102,
            DecodeError::InvalidBody {
                command_id: CommandId::DeliverSm,
            },
        ),
        // bind_transceiver with an empty body.
        (
            raw_pdu(9, 0, 103, &[]),
            9,
            103,
            DecodeError::InvalidBody {
                command_id: CommandId::BindTransceiver,
            },
        ),
        // An unknown command id.
        (
            raw_pdu(0x0000_0999, 0, 104, b"junk"),
            0x0000_0999,
            104,
            DecodeError::UnknownCommand {
                command_id: 0x0000_0999,
            },
        ),
        // A command we do not support.
        (
            raw_pdu(0x0000_0003, 0, 105, b"1\0\x01\x01x\0"),
            3,
            105,
            DecodeError::Unsupported {
                command_id: CommandId::QuerySm,
            },
        ),
        (
            raw_pdu(0x0000_0103, 0, 106, &[]),
            0x0103,
            106,
            DecodeError::Unsupported {
                command_id: CommandId::DataSm,
            },
        ),
    ]
}

#[test]
fn malformed_bodies_keep_their_sequence_number() {
    for (bytes, command_id, sequence_number, error) in malformed_cases() {
        assert_eq!(
            decode_inbound(&bytes),
            Inbound::Malformed(Malformed {
                command_id,
                command_status: 0,
                sequence_number,
                error: error.clone(),
            })
        );
        assert_eq!(Frame::decode(&bytes), Err(error));
    }
}

#[test]
fn codec_stays_in_step_after_malformed_pdus() {
    let good = samples();
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for ((bad, _, sequence_number, error), frame) in malformed_cases().into_iter().zip(&good) {
        stream.extend_from_slice(&bad);
        expected.push(Err((sequence_number, error)));
        stream.extend_from_slice(&frame.encode().unwrap());
        expected.push(Ok(frame.clone()));
    }
    for split in 0..=stream.len() {
        let mut codec = SmppCodec::default();
        let mut buf = BytesMut::from(&stream[..split]);
        let mut items = Vec::new();
        decode_all(&mut codec, &mut buf, &mut items);
        buf.extend_from_slice(&stream[split..]);
        decode_all(&mut codec, &mut buf, &mut items);
        let got: Vec<_> = items
            .into_iter()
            .map(|item| match item {
                Inbound::Frame(frame) => Ok(frame),
                Inbound::Malformed(m) => Err((m.sequence_number, m.error)),
            })
            .collect();
        assert_eq!(got, expected, "split at {split}");
    }
}

#[test]
fn nack_status_per_decode_error() {
    let cases = [
        (
            DecodeError::TooShort { actual: 3 },
            CommandStatus::ESME_RINVCMDLEN,
        ),
        (
            DecodeError::LengthMismatch {
                declared: 20,
                actual: 16,
            },
            CommandStatus::ESME_RINVCMDLEN,
        ),
        (
            DecodeError::UnknownCommand { command_id: 0x999 },
            CommandStatus::ESME_RINVCMDID,
        ),
        (
            DecodeError::Unsupported {
                command_id: CommandId::QuerySm,
            },
            CommandStatus::ESME_RINVCMDID,
        ),
        (
            DecodeError::InvalidBody {
                command_id: CommandId::SubmitSm,
            },
            CommandStatus::ESME_RINVMSGLEN,
        ),
    ];
    for (error, status) in cases {
        assert_eq!(error.nack_status(), status, "{error}");
    }
}

#[test]
fn encode_into_leaves_dst_untouched_on_error() {
    let mut dst = BytesMut::from(&b"previous PDU"[..]);
    let bad = BindRequest {
        password: "p".repeat(9),
        ..bind_request()
    };
    assert!(
        Frame::new(1, Pdu::BindTransceiver(bad))
            .encode_into(&mut dst)
            .is_err()
    );
    assert_eq!(dst.as_ref(), b"previous PDU");
    let too_long = SmBody {
        short_message: vec![0; 255],
        ..sample_body()
    };
    assert!(
        Frame::new(2, Pdu::SubmitSm(Box::new(too_long)))
            .encode_into(&mut dst)
            .is_err()
    );
    assert_eq!(dst.as_ref(), b"previous PDU");
}

#[test]
fn frame_decode_checks_the_length() {
    assert_eq!(
        Frame::decode(&[0, 0, 0, 16, 0, 0]),
        Err(DecodeError::TooShort { actual: 6 })
    );
    let mut bytes = Frame::new(1, Pdu::EnquireLink).encode().unwrap().to_vec();
    bytes.push(0);
    assert_eq!(
        Frame::decode(&bytes),
        Err(DecodeError::LengthMismatch {
            declared: 16,
            actual: 17
        })
    );
    assert!(matches!(
        decode_inbound(&[1, 2, 3]),
        Inbound::Malformed(Malformed {
            sequence_number: 0,
            error: DecodeError::TooShort { actual: 3 },
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------
// Frame errors: the connection must close.

#[test]
fn command_length_below_the_header_is_a_frame_error() {
    for length in [0u32, 1, 4, 15] {
        let mut codec = SmppCodec::default();
        let mut buf = BytesMut::from(&raw_pdu(0x15, 0, 1, &[])[..]);
        buf[0..4].copy_from_slice(&length.to_be_bytes());
        match codec.decode(&mut buf) {
            Err(FrameError::LengthTooSmall { length: got }) => assert_eq!(got, length),
            other => panic!("length {length}: {other:?}"),
        }
    }
}

#[test]
fn command_length_above_the_maximum_is_a_frame_error() {
    let max = 64;
    // Exactly the maximum is accepted (a generic_nack's body is ignored).
    let at_max = raw_pdu(0x8000_0000, 0, 9, &[0xAA; 48]);
    assert_eq!(at_max.len(), max);
    let mut codec = SmppCodec::new(max);
    let mut buf = BytesMut::from(&at_max[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Ok(Some(Inbound::Frame(Frame {
            pdu: Pdu::GenericNack,
            sequence_number: 9,
            ..
        })))
    ));
    // One more is refused as soon as the length field is in, before the body arrives.
    let mut codec = SmppCodec::new(max);
    let mut buf = BytesMut::from(&((max + 1) as u32).to_be_bytes()[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(FrameError::LengthTooLarge {
            length: 65,
            max: 64
        })
    ));
    // The maximum is never below the header.
    assert_eq!(SmppCodec::new(3).max_len(), HEADER_LEN);
    assert_eq!(SmppCodec::default().max_len(), DEFAULT_MAX_PDU_LEN);
}

#[test]
fn partial_header_waits_for_more() {
    let mut codec = SmppCodec::default();
    let mut buf = BytesMut::from(&[0u8, 0, 0][..]);
    assert!(matches!(codec.decode(&mut buf), Ok(None)));
    buf.extend_from_slice(&[16, 0, 0, 0, 0x15]);
    assert!(matches!(codec.decode(&mut buf), Ok(None)));
}

// ---------------------------------------------------------------------------------------
// Encoding refuses what does not fit, without panicking.

#[test]
fn encode_refuses_over_long_bind_fields() {
    type Change = fn(&mut BindRequest);
    let cases: [(Change, &str, usize, usize); 4] = [
        (|r| r.system_id = "s".repeat(16), "system_id", 16, 15),
        (|r| r.password = "p".repeat(9), "password", 9, 8),
        (|r| r.system_type = "t".repeat(13), "system_type", 13, 12),
        (
            |r| r.address_range = "a".repeat(41),
            "address_range",
            41,
            40,
        ),
    ];
    for (change, field, actual, max) in cases {
        let mut request = bind_request();
        change(&mut request);
        for mode in [
            BindMode::Transmitter,
            BindMode::Receiver,
            BindMode::Transceiver,
        ] {
            assert_eq!(
                Frame::new(1, Pdu::bind(mode, request.clone())).encode(),
                Err(EncodeError::FieldTooLong { field, actual, max })
            );
        }
    }
    // The longest allowed values encode.
    let request = BindRequest {
        system_id: "s".repeat(15),
        password: "p".repeat(8),
        system_type: "t".repeat(12),
        address_range: "a".repeat(40),
        ..bind_request()
    };
    let bytes = Frame::new(1, Pdu::BindTransceiver(request.clone()))
        .encode()
        .unwrap();
    assert_eq!(
        Frame::decode(&bytes).unwrap().pdu,
        Pdu::BindTransceiver(request)
    );
    let nul = BindRequest {
        system_id: "a\0b".into(),
        ..bind_request()
    };
    assert_eq!(
        Frame::new(1, Pdu::BindTransmitter(nul)).encode(),
        Err(EncodeError::InteriorNul { field: "system_id" })
    );
}

#[test]
fn encode_refuses_over_long_sm_fields() {
    type Change = fn(&mut SmBody);
    let cases: [(Change, EncodeError); 7] = [
        (
            |b| b.short_message = vec![0; 255],
            EncodeError::ShortMessageTooLong {
                actual: 255,
                max: 254,
            },
        ),
        (
            |b| b.source_addr = "1".repeat(21),
            EncodeError::FieldTooLong {
                field: "source_addr",
                actual: 21,
                max: 20,
            },
        ),
        (
            |b| b.destination_addr = "1".repeat(21),
            EncodeError::FieldTooLong {
                field: "destination_addr",
                actual: 21,
                max: 20,
            },
        ),
        (
            |b| b.service_type = "s".repeat(6),
            EncodeError::FieldTooLong {
                field: "service_type",
                actual: 6,
                max: 5,
            },
        ),
        (
            |b| b.schedule_delivery_time = "0".repeat(17),
            EncodeError::FieldTooLong {
                field: "schedule_delivery_time",
                actual: 17,
                max: 16,
            },
        ),
        (
            |b| b.validity_period = "0".repeat(17),
            EncodeError::FieldTooLong {
                field: "validity_period",
                actual: 17,
                max: 16,
            },
        ),
        (
            |b| {
                b.tlvs
                    .push(Tlv::new(tlv_tag::MESSAGE_PAYLOAD, vec![0; 65_536]))
            },
            EncodeError::TlvTooLong {
                tag: tlv_tag::MESSAGE_PAYLOAD,
                actual: 65_536,
            },
        ),
    ];
    for (change, error) in cases {
        let mut body = sample_body();
        change(&mut body);
        assert_eq!(validate_sm_body(&body), Err(error.clone()));
        assert_eq!(
            Frame::new(1, Pdu::SubmitSm(Box::new(body.clone()))).encode(),
            Err(error.clone())
        );
        assert_eq!(
            Frame::new(1, Pdu::DeliverSm(Box::new(body))).encode(),
            Err(error)
        );
    }
    // The longest allowed values encode and round-trip.
    let body = SmBody {
        short_message: vec![0xAB; 254],
        source_addr: "1".repeat(20),
        destination_addr: "2".repeat(20),
        tlvs: vec![Tlv::new(tlv_tag::MESSAGE_PAYLOAD, vec![7; 65_535])],
        ..sample_body()
    };
    let frame = Frame::new(1, Pdu::SubmitSm(Box::new(body)));
    assert_eq!(Frame::decode(&frame.encode().unwrap()), Ok(frame));
}

#[test]
fn encode_refuses_over_long_response_ids() {
    let frame = Frame::new(
        1,
        Pdu::SubmitSmResp(SubmitSmResp {
            message_id: Some("m".repeat(65)),
        }),
    );
    assert_eq!(
        frame.encode(),
        Err(EncodeError::FieldTooLong {
            field: "message_id",
            actual: 65,
            max: 64,
        })
    );
    let frame = Frame::new(
        1,
        Pdu::BindTransceiverResp(bind_resp(&"s".repeat(16), None)),
    );
    assert_eq!(
        frame.encode(),
        Err(EncodeError::FieldTooLong {
            field: "system_id",
            actual: 16,
            max: 15,
        })
    );
    let frame = Frame::new(
        1,
        Pdu::SubmitSmResp(SubmitSmResp {
            message_id: Some("m".repeat(64)),
        }),
    );
    assert_eq!(Frame::decode(&frame.encode().unwrap()), Ok(frame));
}

// ---------------------------------------------------------------------------------------
// Properties.

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn c_string(max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(0x20u8..0x7F, 0..=max)
            .prop_map(|bytes| String::from_utf8(bytes).unwrap())
    }

    fn tlv() -> impl Strategy<Value = Tlv> {
        (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(tag, value)| Tlv::new(tag, value))
    }

    prop_compose! {
        fn sm_body()(
            service_type in c_string(5),
            addr_octets in any::<[u8; 4]>(),
            source_addr in c_string(20),
            destination_addr in c_string(20),
            flags in any::<[u8; 8]>(),
            schedule_delivery_time in c_string(16),
            validity_period in c_string(16),
            short_message in proptest::collection::vec(any::<u8>(), 0..=254),
            tlvs in proptest::collection::vec(tlv(), 0..4),
        ) -> SmBody {
            SmBody {
                service_type,
                source_addr_ton: addr_octets[0],
                source_addr_npi: addr_octets[1],
                source_addr,
                dest_addr_ton: addr_octets[2],
                dest_addr_npi: addr_octets[3],
                destination_addr,
                esm_class: flags[0],
                protocol_id: flags[1],
                priority_flag: flags[2],
                schedule_delivery_time,
                validity_period,
                registered_delivery: flags[3],
                replace_if_present_flag: flags[4],
                data_coding: flags[5],
                sm_default_msg_id: flags[6],
                short_message,
                tlvs,
            }
        }
    }

    fn known_command_id() -> impl Strategy<Value = u32> {
        prop_oneof![
            Just(0x8000_0000u32),
            Just(0x0000_0001),
            Just(0x8000_0001),
            Just(0x0000_0002),
            Just(0x8000_0002),
            Just(0x0000_0004),
            Just(0x8000_0004),
            Just(0x0000_0005),
            Just(0x8000_0005),
            Just(0x0000_0006),
            Just(0x8000_0006),
            Just(0x0000_0009),
            Just(0x8000_0009),
            Just(0x0000_0015),
            Just(0x8000_0015),
            Just(0x0000_0103),
            any::<u32>(),
        ]
    }

    proptest! {
        #[test]
        fn submit_and_deliver_bodies_round_trip(body in sm_body(), seq in 1u32..=MAX_SEQUENCE_NUMBER) {
            for frame in [
                Frame::new(seq, Pdu::SubmitSm(Box::new(body.clone()))),
                Frame::new(seq, Pdu::DeliverSm(Box::new(body.clone()))),
            ] {
                let bytes = frame.encode().unwrap();
                prop_assert_eq!(Frame::decode(&bytes), Ok(frame));
            }
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            max in 0usize..300,
        ) {
            let _ = Frame::decode(&bytes);
            let _ = decode_inbound(&bytes);
            let mut codec = SmppCodec::new(max);
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = codec.decode(&mut buf) {}
        }

        #[test]
        fn framed_garbage_keeps_its_sequence_number(
            command_id in known_command_id(),
            status in prop_oneof![Just(0u32), any::<u32>()],
            seq in any::<u32>(),
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let bytes = raw_pdu(command_id, status, seq, &body);
            let next = Frame::new(7, Pdu::EnquireLink).encode().unwrap();
            let mut codec = SmppCodec::default();
            let mut buf = BytesMut::from(&bytes[..]);
            buf.extend_from_slice(&next);
            match codec.decode(&mut buf) {
                Ok(Some(Inbound::Frame(frame))) => {
                    prop_assert_eq!(frame.sequence_number, seq);
                    // Whatever decodes and re-encodes (fields within what we would send)
                    // decodes back to itself.
                    if let Ok(again) = frame.encode() {
                        prop_assert_eq!(Frame::decode(&again), Ok(frame));
                    }
                }
                Ok(Some(Inbound::Malformed(m))) => {
                    prop_assert_eq!(m.sequence_number, seq);
                    prop_assert_eq!(m.command_id, command_id);
                }
                other => prop_assert!(false, "{:?}", other),
            }
            // The stream is still in step.
            let after = codec.decode(&mut buf);
            let in_step = matches!(
                &after,
                Ok(Some(Inbound::Frame(Frame { sequence_number: 7, pdu: Pdu::EnquireLink, .. })))
            );
            prop_assert!(in_step, "{:?}", after);
        }

        #[test]
        fn encoding_arbitrary_lengths_never_panics(
            system_id in c_string(30),
            message_id in c_string(80),
            short_len in 0usize..400,
            source_addr in c_string(30),
        ) {
            let request = BindRequest { system_id: system_id.clone(), ..bind_request() };
            let _ = Frame::new(1, Pdu::BindTransceiver(request)).encode();
            let _ = Frame::new(1, Pdu::BindTransceiverResp(bind_resp(&system_id, None))).encode();
            let _ = Frame::new(
                1,
                Pdu::SubmitSmResp(SubmitSmResp { message_id: Some(message_id) }),
            )
            .encode();
            let body = SmBody {
                short_message: vec![0x41; short_len],
                source_addr,
                ..sample_body()
            };
            let result = Frame::new(1, Pdu::SubmitSm(Box::new(body.clone()))).encode();
            prop_assert_eq!(result.is_ok(), validate_sm_body(&body).is_ok());
        }
    }
}

/// Metric labels of statuses are a bounded set: SMPP's names, and `other` for anything
/// an SMSC may invent (issue 21).
#[test]
fn an_unnamed_status_is_labelled_other() {
    assert_eq!(CommandStatus::ESME_RTHROTTLED.label(), "ESME_RTHROTTLED");
    assert_eq!(CommandStatus(0x0000_ABCD).label(), "other");
    assert_eq!(
        CommandStatus(0x0000_ABCD).name(),
        "0x0000ABCD",
        "logs keep the value"
    );
}

/// A raw deliver_sm with these C-string fields (no encoder check in the way).
fn raw_deliver_sm(service_type: &str, source: &str, destination: &str) -> Vec<u8> {
    let mut body = Vec::new();
    let c_string = |body: &mut Vec<u8>, s: &str| {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    };
    c_string(&mut body, service_type);
    body.extend_from_slice(&[1, 1]);
    c_string(&mut body, source);
    body.extend_from_slice(&[1, 1]);
    c_string(&mut body, destination);
    body.extend_from_slice(&[0, 0, 0]); // esm_class, protocol_id, priority
    c_string(&mut body, ""); // schedule_delivery_time
    c_string(&mut body, ""); // validity_period
    body.extend_from_slice(&[0, 0, 0, 0]); // registered, replace, data_coding, default_msg_id
    body.push(2);
    body.extend_from_slice(b"hi");
    let mut frame = Vec::new();
    frame.extend_from_slice(&((16 + body.len()) as u32).to_be_bytes());
    frame.extend_from_slice(&0x0000_0005u32.to_be_bytes());
    frame.extend_from_slice(&0u32.to_be_bytes());
    frame.extend_from_slice(&7u32.to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// deliver_sm fields over SMPP 3.4's lengths (§4.6.1: service_type 6, addresses 21 octets
/// with their NUL) are refused, each with the status SMPP names for it (issue 21); at
/// the limits they decode.
#[test]
fn an_inbound_deliver_sm_over_the_field_lengths_is_refused_with_its_status() {
    let twenty = "9".repeat(20);
    assert!(matches!(
        decode_inbound(&raw_deliver_sm("CMT12", &twenty, &twenty)),
        Inbound::Frame(_)
    ));
    let cases = [
        (
            raw_deliver_sm("", &"9".repeat(21), "93"),
            "source_addr",
            CommandStatus::ESME_RINVSRCADR,
        ),
        (
            raw_deliver_sm("", "93", &"9".repeat(40)),
            "destination_addr",
            CommandStatus::ESME_RINVDSTADR,
        ),
        (
            raw_deliver_sm("CMT123", "93", "93"),
            "service_type",
            CommandStatus::ESME_RINVSERTYP,
        ),
    ];
    for (bytes, field, status) in cases {
        match decode_inbound(&bytes) {
            Inbound::Malformed(malformed) => {
                assert_eq!(malformed.sequence_number, 7);
                assert_eq!(malformed.error.nack_status(), status, "{field}");
                assert!(
                    malformed.error.to_string().contains(field),
                    "{}",
                    malformed.error
                );
            }
            other => panic!("{field}: {other:?}"),
        }
    }
}
