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
