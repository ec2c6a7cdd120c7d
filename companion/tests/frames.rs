//! The frame codec against the specification's hex examples, whole and split at every byte,
//! and against bad frames.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers outside #[test] fns may panic.

mod common;

use codriver_companion::{
    Decoder, Error, Frame, FrameType, MAX_FRAME_LEN, MAX_PAYLOAD_LEN, ProtocolError, Role,
};
use common::{expected_frame, fixtures, header, raw_frame};

/// Decodes everything in `pieces`, in order, with one decoder.
fn decode_all(pieces: &[&[u8]]) -> Vec<Result<Frame, ProtocolError>> {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for piece in pieces {
        let mut input = *piece;
        while let Some(r) = d.decode(&mut input) {
            out.push(r);
        }
        assert!(input.is_empty(), "decoder left input unread");
        assert!(d.capacity() <= MAX_FRAME_LEN);
    }
    assert_eq!(d.buffered(), 0, "bytes left over");
    out
}

#[test]
fn spec_covers_every_frame_type() {
    let names: Vec<_> = fixtures().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), 18, "{names:?}");
    let types: std::collections::HashSet<_> = names
        .iter()
        .map(|n| expected_frame(n).frame_type())
        .collect();
    for ty in [
        FrameType::Hello,
        FrameType::Ping,
        FrameType::Pong,
        FrameType::Error,
        FrameType::VoiceOffer,
        FrameType::TextMessage,
        FrameType::DeliveryAck,
        FrameType::Listened,
        FrameType::ReplyOffer,
        FrameType::ReplyAck,
        FrameType::Accept,
        FrameType::Chunk,
    ] {
        assert!(types.contains(&ty), "no example of {ty:?}");
    }
}

#[test]
fn spec_examples_encode_byte_exact() {
    for (name, bytes) in fixtures() {
        assert_eq!(
            expected_frame(&name).to_bytes().unwrap(),
            bytes,
            "fixture {name}"
        );
    }
}

#[test]
fn spec_examples_decode_whole_and_split_at_every_byte() {
    for (name, bytes) in fixtures() {
        let expected = expected_frame(&name);
        assert_eq!(
            decode_all(&[&bytes]),
            [Ok(expected.clone())],
            "{name} whole"
        );
        for at in 0..=bytes.len() {
            let (a, b) = bytes.split_at(at);
            assert_eq!(
                decode_all(&[a, b]),
                [Ok(expected.clone())],
                "{name} split at {at}"
            );
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode_all(&singles), [Ok(expected)], "{name} byte by byte");
    }
}

#[test]
fn every_spec_example_back_to_back_in_one_stream() {
    let all: Vec<(String, Vec<u8>)> = fixtures();
    let stream: Vec<u8> = all.iter().flat_map(|(_, b)| b.clone()).collect();
    let expected: Vec<_> = all.iter().map(|(n, _)| Ok(expected_frame(n))).collect();
    assert_eq!(decode_all(&[&stream]), expected);
    for size in [1, 2, 3, 7, 13, 64] {
        let pieces: Vec<&[u8]> = stream.chunks(size).collect();
        assert_eq!(decode_all(&pieces), expected, "pieces of {size}");
    }
}

#[test]
fn oversized_frame_is_rejected_from_its_header_and_skipped_unbuffered() {
    let len = 0x0010_0000u32; // 1 MiB
    let mut d = Decoder::new();
    let mut input: &[u8] = &header(0x31, len);
    assert_eq!(
        d.decode(&mut input),
        Some(Err(ProtocolError::FrameTooLarge {
            len,
            max: MAX_PAYLOAD_LEN
        }))
    );
    let junk = vec![0xAA; 4096];
    for _ in 0..len / 4096 {
        let mut input: &[u8] = &junk;
        assert_eq!(d.decode(&mut input), None);
        assert_eq!(d.buffered(), 0);
        assert_eq!(d.capacity(), 0, "payload of a rejected frame was stored");
    }
    // The stream goes on.
    let ping = expected_frame("ping").to_bytes().unwrap();
    let mut input: &[u8] = &ping;
    assert_eq!(d.decode(&mut input), Some(Ok(Frame::Ping { nonce: 1 })));
}

#[test]
fn largest_frame_is_accepted_one_byte_more_is_not() {
    let data = vec![7u8; MAX_PAYLOAD_LEN - 5 - 1];
    let frame = Frame::Chunk(codriver_companion::Chunk {
        id: "x".into(),
        offset: 0,
        data,
    });
    let bytes = frame.to_bytes().unwrap();
    assert_eq!(bytes.len(), MAX_FRAME_LEN);
    let pieces: Vec<&[u8]> = bytes.chunks(1000).collect();
    assert_eq!(decode_all(&pieces), [Ok(frame)]);

    let too_big = Frame::Chunk(codriver_companion::Chunk {
        id: "x".into(),
        offset: 0,
        data: vec![7u8; MAX_PAYLOAD_LEN - 5],
    });
    assert!(matches!(
        too_big.to_bytes(),
        Err(Error::FieldTooLong { field: "data", .. })
    ));
    let mut raw = header(0x31, u32::try_from(MAX_PAYLOAD_LEN + 1).unwrap());
    raw.extend(std::iter::repeat_n(0, MAX_PAYLOAD_LEN + 1));
    raw.extend(expected_frame("pong").to_bytes().unwrap());
    let out = decode_all(&[&raw]);
    assert!(matches!(out[0], Err(ProtocolError::FrameTooLarge { .. })));
    assert_eq!(out[1], Ok(Frame::Pong { nonce: 1 }));
}

#[test]
fn unknown_type_and_unsupported_version_are_skipped() {
    let mut stream = raw_frame(0x7f, b"whatever");
    let mut v2 = raw_frame(0x02, &[0, 0, 0, 9]);
    v2[1] = 0x02;
    stream.extend(&v2);
    stream.extend(expected_frame("ping").to_bytes().unwrap());
    let expected = [
        Err(ProtocolError::UnknownType { frame_type: 0x7f }),
        Err(ProtocolError::UnsupportedVersion { found: 0x02 }),
        Ok(Frame::Ping { nonce: 1 }),
    ];
    assert_eq!(decode_all(&[&stream]), expected);
    let singles: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(decode_all(&singles), expected);
}

#[test]
fn truncated_payload_is_malformed_and_the_next_frame_decodes() {
    // A VOICE_OFFER that stops after its id.
    let mut stream = raw_frame(0x10, b"\x06m-0001");
    stream.extend(raw_frame(0x02, &[0, 0])); // PING with half a nonce
    stream.extend(expected_frame("pong").to_bytes().unwrap());
    assert_eq!(
        decode_all(&[&stream]),
        [
            Err(ProtocolError::Truncated { frame_type: 0x10 }),
            Err(ProtocolError::Truncated { frame_type: 0x02 }),
            Ok(Frame::Pong { nonce: 1 }),
        ]
    );
}

#[test]
fn invalid_utf8_and_overlong_names_are_reported_by_field() {
    let mut offer = expected_frame("voice-offer").to_bytes().unwrap();
    // sender_name "Alice" starts at header 8 + id 7 + sender_id 10 + length byte 1.
    offer[8 + 7 + 10 + 1] = 0xFF;
    assert_eq!(
        decode_all(&[&offer]),
        [Err(ProtocolError::InvalidUtf8 {
            frame_type: 0x10,
            field: "sender_name"
        })]
    );
    let mut payload = vec![65];
    payload.extend([b'a'; 65]);
    assert_eq!(
        decode_all(&[&raw_frame(0x12, &payload)]),
        [Err(ProtocolError::FieldTooLong {
            frame_type: 0x12,
            field: "id",
            len: 65,
            max: 64
        })]
    );
    assert_eq!(
        decode_all(&[&raw_frame(0x12, &[0])]),
        [Err(ProtocolError::InvalidValue {
            frame_type: 0x12,
            field: "id"
        })]
    );
}

#[test]
fn bad_magic_poisons_the_decoder() {
    let mut stream = vec![0x47, 0x45, 0x54, 0x20, 0x2f, 0x20, 0x48, 0x54]; // "GET / HT"
    stream.extend(expected_frame("ping").to_bytes().unwrap());
    let mut d = Decoder::new();
    let mut input: &[u8] = &stream;
    assert_eq!(
        d.decode(&mut input),
        Some(Err(ProtocolError::BadMagic { found: 0x47 }))
    );
    assert!(d.is_poisoned());
    assert_eq!(d.decode(&mut input), None);
    assert!(input.is_empty());
}

#[test]
fn trailing_payload_bytes_are_ignored_for_forward_compatibility() {
    let mut payload = expected_frame("delivery-ack").to_bytes().unwrap()[8..].to_vec();
    payload.extend([1, 2, 3]);
    assert_eq!(
        decode_all(&[&raw_frame(0x12, &payload)]),
        [Ok(Frame::DeliveryAck {
            id: "m-0001".into()
        })]
    );
}

#[test]
fn flags_are_ignored_and_unknown_role_is_refused() {
    let mut ping = expected_frame("ping").to_bytes().unwrap();
    ping[3] = 0x80;
    assert_eq!(decode_all(&[&ping]), [Ok(Frame::Ping { nonce: 1 })]);
    let mut hello = expected_frame("hello-car").to_bytes().unwrap();
    hello[8] = 0x03;
    assert_eq!(
        decode_all(&[&hello]),
        [Err(ProtocolError::WrongRole { found: 0x03 })]
    );
    assert_eq!(Role::Car.peer(), Role::Phone);
}

#[test]
fn encoding_checks_limits_and_leaves_the_buffer_unchanged() {
    let mut m = common::voice_message();
    m.sender_name = "x".repeat(129);
    let mut out = vec![1, 2, 3];
    assert_eq!(
        Frame::VoiceOffer(m).encode(&mut out),
        Err(Error::FieldTooLong {
            field: "sender_name",
            len: 129,
            max: 128
        })
    );
    assert_eq!(out, [1, 2, 3]);
    assert!(matches!(
        Frame::DeliveryAck { id: String::new() }.to_bytes(),
        Err(Error::InvalidValue { field: "id", .. })
    ));
    let mut m = common::voice_message();
    m.size = 0;
    assert!(Frame::VoiceOffer(m).to_bytes().is_err());
}
