//! Fuzz target: arbitrary octets from an SMSC through our PDU layer.
//!
//! Feeds the input to [`SmppCodec`] in chunks whose sizes come from the input itself (so
//! read boundaries vary), decoding until the codec needs more data or reports a frame
//! error, and also hands the whole input to [`Frame::decode`] / [`decode_inbound`].
//! Invariants checked: nothing panics; every decoded frame that re-encodes (fields within
//! what we would send) decodes back to itself; a frame error is final.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use smpp_connector::protocol::pdu::{Frame, Inbound, SmppCodec, decode_inbound};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::decode(data) {
        check_round_trip(&frame);
    }
    let _ = decode_inbound(data);

    let Some((&chunk_seed, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk_seed % 32) + 1;
    let mut codec = SmppCodec::new(4096);
    let mut buf = BytesMut::new();
    'feed: for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(Inbound::Frame(frame))) => check_round_trip(&frame),
                Ok(Some(Inbound::Malformed(_))) => {}
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
});

fn check_round_trip(frame: &Frame) {
    // Sloppy input decodes leniently (over-long ids, lossy text), so only frames that
    // encode are compared.
    if let Ok(bytes) = frame.encode() {
        let expected = frame.clone();
        assert_eq!(
            Frame::decode(&bytes),
            Ok(expected),
            "round trip changed the frame"
        );
    }
}
