//! Shared test helpers: the spec's hex fixtures and the frames they describe.

#![allow(dead_code)] // Each test binary uses a different subset.

use codriver_companion::{
    Capabilities, Chunk, Codec, ErrorCode, ErrorFrame, Frame, Hello, Role, SessionConfig,
    TextMessage, VoiceMessage, VoiceReply,
};

pub(crate) const TS: u64 = 1_700_000_000_000;

/// Reads the `<!-- fixture: NAME -->` hex blocks of docs/companion-protocol.md.
pub(crate) fn fixtures() -> Vec<(String, Vec<u8>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/companion-protocol.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .strip_prefix("<!-- fixture: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(lines.next(), Some("```text"), "fixture {name}");
        let mut bytes = Vec::new();
        for l in lines.by_ref() {
            if l == "```" {
                break;
            }
            let hex = l.split(';').next().unwrap();
            for tok in hex.split_whitespace() {
                bytes.push(u8::from_str_radix(tok, 16).unwrap_or_else(|_| panic!("{name}: {tok}")));
            }
        }
        out.push((name.to_owned(), bytes));
    }
    out
}

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    fixtures()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
        .1
}

pub(crate) fn car_config() -> SessionConfig {
    SessionConfig::default()
}

pub(crate) fn phone_config() -> SessionConfig {
    SessionConfig {
        device_name: "Pixel 8".into(),
        codecs: vec![Codec::OggOpus],
        max_message_size: 0x20_0000,
        ..SessionConfig::default()
    }
}

pub(crate) fn voice_message() -> VoiceMessage {
    VoiceMessage {
        id: "m-0001".into(),
        sender_id: "+15550100".into(),
        sender_name: "Alice".into(),
        conversation_id: "conv-7".into(),
        conversation_name: String::new(),
        codec: Codec::OggOpus,
        duration_ms: 12_000,
        timestamp_ms: TS,
        size: 10,
    }
}

pub(crate) const VOICE_DATA: [u8; 10] =
    [0x4f, 0x67, 0x67, 0x53, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00];
pub(crate) const REPLY_DATA: [u8; 4] = [0x4f, 0x67, 0x67, 0x53];

pub(crate) fn text_message() -> TextMessage {
    TextMessage {
        id: "t-0002".into(),
        sender_id: "+15550100".into(),
        sender_name: "Alice".into(),
        conversation_id: "conv-7".into(),
        conversation_name: String::new(),
        timestamp_ms: TS,
        text: "On my way".into(),
    }
}

pub(crate) fn voice_reply() -> VoiceReply {
    VoiceReply {
        id: "r-0001".into(),
        conversation_id: "conv-7".into(),
        in_reply_to: "m-0001".into(),
        codec: Codec::OggOpus,
        duration_ms: 3000,
        timestamp_ms: TS + 120_000,
        size: 4,
    }
}

/// The frame each fixture of the specification describes.
pub(crate) fn expected_frame(name: &str) -> Frame {
    let id = |s: &str| s.to_owned();
    match name {
        "hello-car" => Frame::Hello(Hello {
            role: Role::Car,
            max_version: 1,
            capabilities: Capabilities::ALL,
            max_message_size: 0xA0_0000,
            codecs: vec![Codec::OggOpus, Codec::OpusPackets],
            device_name: "codriver".into(),
        }),
        "hello-phone" => Frame::Hello(Hello {
            role: Role::Phone,
            max_version: 1,
            capabilities: Capabilities::ALL,
            max_message_size: 0x20_0000,
            codecs: vec![Codec::OggOpus],
            device_name: "Pixel 8".into(),
        }),
        "ping" => Frame::Ping { nonce: 1 },
        "pong" => Frame::Pong { nonce: 1 },
        "voice-offer" => Frame::VoiceOffer(voice_message()),
        "accept" => Frame::Accept {
            id: id("m-0001"),
            offset: 0,
        },
        "chunk-1" => Frame::Chunk(Chunk {
            id: id("m-0001"),
            offset: 0,
            data: VOICE_DATA[..8].to_vec(),
        }),
        "chunk-2" => Frame::Chunk(Chunk {
            id: id("m-0001"),
            offset: 8,
            data: VOICE_DATA[8..].to_vec(),
        }),
        "accept-resume" => Frame::Accept {
            id: id("m-0001"),
            offset: 8,
        },
        "delivery-ack" => Frame::DeliveryAck { id: id("m-0001") },
        "listened" => Frame::Listened {
            id: id("m-0001"),
            timestamp_ms: TS + 60_000,
        },
        "text-message" => Frame::TextMessage(text_message()),
        "reply-offer" => Frame::ReplyOffer(voice_reply()),
        "reply-accept" => Frame::Accept {
            id: id("r-0001"),
            offset: 0,
        },
        "reply-chunk" => Frame::Chunk(Chunk {
            id: id("r-0001"),
            offset: 0,
            data: REPLY_DATA.to_vec(),
        }),
        "reply-ack" => Frame::ReplyAck { id: id("r-0001") },
        "error-unknown-type" => Frame::Error(ErrorFrame {
            code: ErrorCode::UnknownType,
            frame_type: 0x7f,
            id: String::new(),
            message: "unknown frame type 0x7f".into(),
        }),
        "error-rejected" => Frame::Error(ErrorFrame {
            code: ErrorCode::Rejected,
            frame_type: 0x10,
            id: id("m-0001"),
            message: "storage full".into(),
        }),
        other => panic!("no expected frame for fixture {other}"),
    }
}

/// Header of a frame of `ty` with `len` payload bytes.
pub(crate) fn header(ty: u8, len: u32) -> Vec<u8> {
    let mut h = vec![0xCD, 0x01, ty, 0x00];
    h.extend_from_slice(&len.to_be_bytes());
    h
}

/// A whole frame of `ty` around `payload`.
pub(crate) fn raw_frame(ty: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = header(ty, u32::try_from(payload.len()).unwrap());
    f.extend_from_slice(payload);
    f
}
