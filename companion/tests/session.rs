//! Car and phone sessions: scripted byte transcripts (the spec's fixtures) delivered whole,
//! split at every byte and in random pieces; both sides against each other; resume after link
//! loss; duplicates; bad frames; timeouts on a virtual clock.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers outside #[test] fns may panic.

mod common;

use std::time::{Duration, Instant};

use codriver_companion::{
    CarSession, Codec, Error, ErrorCode, ErrorFrame, Event, Frame, MAX_FRAME_LEN, PhoneSession,
    ProtocolError, SessionConfig, VoiceMessage,
};
use common::{
    REPLY_DATA, TS, VOICE_DATA, car_config, fixture, header, phone_config, raw_frame, text_message,
    voice_message, voice_reply,
};
use proptest::prelude::*;

// ----- scripted car -----

/// One step of a script run against a car session.
#[derive(Debug, Clone)]
enum CarStep {
    /// Bytes from the phone (split by the test).
    Input(Vec<u8>),
    Accept(&'static str, u32),
    Ack(&'static str),
    Listened(&'static str, u64),
    Reply,
}

/// What a run produced: events, and everything transmitted, concatenated.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Event>,
    sent: Vec<u8>,
}

fn drain_car(car: &mut CarSession, out: &mut Outcome) {
    while let Some(f) = car.poll_transmit() {
        out.sent.extend(f);
    }
    while let Some(e) = car.poll_event() {
        out.events.push(e);
    }
}

fn run_car(steps: &[CarStep], split: &mut dyn FnMut(usize, &[u8]) -> Vec<usize>) -> Outcome {
    let now = Instant::now();
    let mut car = CarSession::new(car_config());
    let mut out = Outcome {
        events: Vec::new(),
        sent: Vec::new(),
    };
    car.start(now);
    drain_car(&mut car, &mut out);
    for (i, step) in steps.iter().enumerate() {
        match step {
            CarStep::Input(bytes) => {
                let mut rest: &[u8] = bytes;
                for len in split(i, bytes) {
                    let (piece, tail) = rest.split_at(len.min(rest.len()));
                    rest = tail;
                    car.handle_input(now, piece);
                    drain_car(&mut car, &mut out);
                }
                car.handle_input(now, rest);
            }
            CarStep::Accept(id, offset) => car.accept(id, *offset).unwrap(),
            CarStep::Ack(id) => car.ack_delivery(id).unwrap(),
            CarStep::Listened(id, ts) => car.send_listened(id, *ts).unwrap(),
            CarStep::Reply => car.send_reply(voice_reply(), REPLY_DATA.to_vec()).unwrap(),
        }
        drain_car(&mut car, &mut out);
    }
    out
}

fn cat(names: &[&str]) -> Vec<u8> {
    names.iter().flat_map(|n| fixture(n)).collect()
}

/// The overview's conversation, as the phone's bytes and the car's commands.
fn car_script() -> Vec<CarStep> {
    vec![
        CarStep::Input(cat(&["hello-phone", "voice-offer"])),
        CarStep::Accept("m-0001", 0),
        CarStep::Input(cat(&["chunk-1", "chunk-2", "text-message", "ping"])),
        CarStep::Ack("m-0001"),
        CarStep::Ack("t-0002"),
        CarStep::Listened("m-0001", TS + 60_000),
        CarStep::Reply,
        CarStep::Input(fixture("reply-accept")),
        CarStep::Input(fixture("reply-ack")),
    ]
}

fn whole(_: usize, b: &[u8]) -> Vec<usize> {
    vec![b.len()]
}

#[test]
fn car_conversation_matches_the_spec_byte_for_byte() {
    let out = run_car(&car_script(), &mut whole);
    let ack_text = Frame::DeliveryAck {
        id: "t-0002".into(),
    }
    .to_bytes()
    .unwrap();
    let mut expected = cat(&["hello-car", "accept", "pong", "delivery-ack"]);
    expected.extend(ack_text);
    expected.extend(cat(&["listened", "reply-offer", "reply-chunk"]));
    assert_eq!(out.sent, expected);

    let Event::Connected(peer) = &out.events[0] else {
        panic!("{:?}", out.events)
    };
    assert_eq!(peer.device_name, "Pixel 8");
    assert_eq!(peer.max_message_size, 0x20_0000);
    assert_eq!(
        out.events[1..],
        [
            Event::MessageStarted(voice_message()),
            Event::ChunkReceived {
                id: "m-0001".into(),
                offset: 0,
                data: VOICE_DATA[..8].to_vec()
            },
            Event::ChunkReceived {
                id: "m-0001".into(),
                offset: 8,
                data: VOICE_DATA[8..].to_vec()
            },
            Event::MessageComplete(voice_message()),
            Event::TextMessage(text_message()),
            Event::ReplyAccepted {
                id: "r-0001".into(),
                offset: 0
            },
            Event::ReplyAcked {
                id: "r-0001".into()
            },
        ]
    );
}

#[test]
fn car_conversation_split_at_every_point_gives_the_same_outcome() {
    let script = car_script();
    let reference = run_car(&script, &mut whole);
    for (step, s) in script.iter().enumerate() {
        let CarStep::Input(bytes) = s else { continue };
        for at in 0..=bytes.len() {
            let out = run_car(&script, &mut |i, b| {
                if i == step {
                    vec![at, b.len() - at]
                } else {
                    vec![b.len()]
                }
            });
            assert_eq!(out, reference, "step {step} split at {at}");
        }
    }
    let bytewise = run_car(&script, &mut |_, b| vec![1; b.len()]);
    assert_eq!(bytewise, reference, "byte by byte");
}

proptest! {
    #[test]
    fn any_fragmentation_gives_the_same_outcome(sizes in prop::collection::vec(1usize..40, 1..200)) {
        let script = car_script();
        let reference = run_car(&script, &mut whole);
        let mut sizes = sizes.into_iter().cycle();
        let out = run_car(&script, &mut |_, b| {
            let mut pieces = Vec::new();
            let mut left = b.len();
            while left > 0 {
                let n = sizes.next().unwrap().min(left);
                pieces.push(n);
                left -= n;
            }
            pieces
        });
        prop_assert_eq!(out, reference);
    }
}

// ----- both sides -----

/// A car and a phone wired back to back, on a virtual clock.
struct Pair {
    car: CarSession,
    phone: PhoneSession,
    now: Instant,
    car_events: Vec<Event>,
    phone_events: Vec<Event>,
    /// Every frame the phone sent, in order.
    phone_sent: Vec<Vec<u8>>,
    car_sent: Vec<Vec<u8>>,
}

impl Pair {
    fn new(car: SessionConfig, phone: SessionConfig) -> Self {
        let now = Instant::now();
        let mut p = Self {
            car: CarSession::new(car),
            phone: PhoneSession::new(phone),
            now,
            car_events: Vec::new(),
            phone_events: Vec::new(),
            phone_sent: Vec::new(),
            car_sent: Vec::new(),
        };
        p.car.start(now);
        p.phone.start(now);
        p.pump();
        assert!(p.car.is_connected() && p.phone.is_connected());
        p
    }

    /// Moves frames both ways until both are quiet; `cut` stops the phone→car direction
    /// after that many more frames (link loss).
    fn pump_until(&mut self, mut cut: Option<usize>) -> bool {
        loop {
            let mut moved = false;
            while let Some(f) = self.phone.poll_transmit() {
                if cut == Some(0) {
                    self.car_events
                        .extend(std::iter::from_fn(|| self.car.poll_event()));
                    return false;
                }
                cut = cut.map(|c| c - 1);
                self.car.handle_input(self.now, &f);
                self.phone_sent.push(f);
                moved = true;
            }
            while let Some(f) = self.car.poll_transmit() {
                self.phone.handle_input(self.now, &f);
                self.car_sent.push(f);
                moved = true;
            }
            self.car_events
                .extend(std::iter::from_fn(|| self.car.poll_event()));
            self.phone_events
                .extend(std::iter::from_fn(|| self.phone.poll_event()));
            if !moved {
                return true;
            }
        }
    }

    fn pump(&mut self) {
        assert!(self.pump_until(None));
    }
}

fn big_message(id: &str, size: usize) -> (VoiceMessage, Vec<u8>) {
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let mut m = voice_message();
    m.id = id.into();
    m.size = u32::try_from(size).unwrap();
    (m, data)
}

/// The car's stand-in for the spool: collects chunks of accepted messages.
fn stored(events: &[Event], id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        if let Event::ChunkReceived {
            id: i,
            offset,
            data,
        } = e
            && i == id
        {
            assert_eq!(
                usize::try_from(*offset).unwrap(),
                out.len(),
                "gap or overlap"
            );
            out.extend(data);
        }
    }
    out
}

#[test]
fn phone_session_sends_the_spec_bytes() {
    let mut pair = Pair::new(
        car_config(),
        SessionConfig {
            chunk_size: 8,
            ..phone_config()
        },
    );
    pair.phone
        .send_voice(voice_message(), VOICE_DATA.to_vec())
        .unwrap();
    pair.pump();
    assert!(matches!(&pair.car_events[1], Event::MessageStarted(m) if *m == voice_message()));
    pair.car.accept("m-0001", 0).unwrap();
    pair.pump();
    pair.car.ack_delivery("m-0001").unwrap();
    pair.phone.send_text(text_message()).unwrap();
    pair.pump();
    pair.car.ack_delivery("t-0002").unwrap();
    pair.car.send_listened("m-0001", TS + 60_000).unwrap();
    pair.car
        .send_reply(voice_reply(), REPLY_DATA.to_vec())
        .unwrap();
    pair.pump();
    pair.phone.accept_reply("r-0001", 0).unwrap();
    pair.pump();
    pair.phone.ack_reply("r-0001").unwrap();
    pair.pump();

    let names = [
        "hello-phone",
        "voice-offer",
        "chunk-1",
        "chunk-2",
        "text-message",
        "reply-accept",
        "reply-ack",
    ];
    let expected: Vec<Vec<u8>> = names.iter().map(|n| fixture(n)).collect();
    assert_eq!(pair.phone_sent, expected);
    assert!(pair.phone_events.contains(&Event::Delivered {
        id: "m-0001".into()
    }));
    assert!(pair.phone_events.contains(&Event::Delivered {
        id: "t-0002".into()
    }));
    assert!(pair.phone_events.contains(&Event::Listened {
        id: "m-0001".into(),
        timestamp_ms: TS + 60_000
    }));
    assert!(
        pair.phone_events
            .contains(&Event::ReplyComplete(voice_reply()))
    );
    assert!(pair.car_events.contains(&Event::ReplyAcked {
        id: "r-0001".into()
    }));
}

#[test]
fn large_message_arrives_in_order_and_whole() {
    let mut pair = Pair::new(car_config(), phone_config());
    let (m, data) = big_message("big", 1_000_000);
    pair.phone.send_voice(m.clone(), data.clone()).unwrap();
    pair.pump();
    pair.car.accept("big", 0).unwrap();
    pair.pump();
    assert_eq!(stored(&pair.car_events, "big"), data);
    assert_eq!(pair.car_events.last(), Some(&Event::MessageComplete(m)));
    assert!(pair.car_sent.iter().all(|f| f.len() <= MAX_FRAME_LEN));
    assert!(pair.phone_sent.iter().all(|f| f.len() <= MAX_FRAME_LEN));
    assert!(pair.car.buffer_capacity() <= MAX_FRAME_LEN);
    assert!(pair.car.ack_delivery("big").is_ok());
}

#[test]
fn resume_after_link_loss_from_the_acknowledged_offset() {
    let (m, data) = big_message("m-resume", 100_000);
    let mut pair = Pair::new(car_config(), phone_config());
    pair.phone.send_voice(m.clone(), data.clone()).unwrap();
    pair.pump();
    pair.car.accept("m-resume", 0).unwrap();
    // Link lost after two chunks (16 KiB each) reached the car.
    assert!(!pair.pump_until(Some(2)));
    let kept = stored(&pair.car_events, "m-resume");
    assert_eq!(kept.len(), 2 * 0x4000);
    assert!(
        !pair
            .car_events
            .iter()
            .any(|e| matches!(e, Event::MessageComplete(_)))
    );

    // New link: the phone offers the unacked message again; the car resumes from what it holds.
    let mut pair2 = Pair::new(car_config(), phone_config());
    pair2.phone.send_voice(m.clone(), data.clone()).unwrap();
    pair2.pump();
    assert!(pair2.car_events.contains(&Event::MessageStarted(m.clone())));
    let offset = u32::try_from(kept.len()).unwrap();
    pair2.car.accept("m-resume", offset).unwrap();
    pair2.pump();
    assert!(pair2.phone_events.contains(&Event::OfferAccepted {
        id: "m-resume".into(),
        offset
    }));
    // The first chunk on the new link starts at the accepted offset.
    let first = pair2
        .car_events
        .iter()
        .find_map(|e| match e {
            Event::ChunkReceived { offset, .. } => Some(*offset),
            _ => None,
        })
        .unwrap();
    assert_eq!(first, offset);
    let mut whole = kept;
    for e in &pair2.car_events {
        if let Event::ChunkReceived { data, .. } = e {
            whole.extend(data);
        }
    }
    assert_eq!(whole, data);
    assert_eq!(pair2.car_events.last(), Some(&Event::MessageComplete(m)));
    pair2.car.ack_delivery("m-resume").unwrap();
    pair2.pump();
    assert_eq!(
        pair2.phone_events.last(),
        Some(&Event::Delivered {
            id: "m-resume".into()
        })
    );
    // The phone is free for the next message.
    let (m2, d2) = big_message("m-next", 10);
    pair2.phone.send_voice(m2, d2).unwrap();
}

#[test]
fn reply_resumes_after_link_loss() {
    let data: Vec<u8> = (0..50_000u32).map(|i| i as u8).collect();
    let mut reply = voice_reply();
    let mut pair = Pair::new(car_config(), phone_config());
    pair.car.send_reply(reply.clone(), data.clone()).unwrap();
    pair.pump();
    pair.phone.accept_reply("r-0001", 0).unwrap();
    // The car sends chunks; the phone keeps the first one only.
    pair.phone.poll_transmit().unwrap(); // its ACCEPT, delivered:
    let accept = Frame::Accept {
        id: "r-0001".into(),
        offset: 0,
    };
    pair.car.handle_input(pair.now, &accept.to_bytes().unwrap());
    let first = pair.car.poll_transmit().unwrap();
    pair.phone.handle_input(pair.now, &first);
    let got: Vec<Event> = std::iter::from_fn(|| pair.phone.poll_event()).collect();
    let kept = stored(&got, "r-0001");
    assert_eq!(kept.len(), 0x4000);

    let mut pair2 = Pair::new(car_config(), phone_config());
    reply.size = 0; // set from the data by send_reply
    pair2.car.send_reply(reply, data.clone()).unwrap();
    pair2.pump();
    pair2
        .phone
        .accept_reply("r-0001", u32::try_from(kept.len()).unwrap())
        .unwrap();
    pair2.pump();
    let mut whole2 = kept;
    for e in &pair2.phone_events {
        if let Event::ChunkReceived {
            offset, data: d, ..
        } = e
        {
            assert_eq!(usize::try_from(*offset).unwrap(), whole2.len());
            whole2.extend(d);
        }
    }
    assert_eq!(whole2, data);
    assert!(matches!(
        pair2.phone_events.last(),
        Some(Event::ReplyComplete(_))
    ));
}

#[test]
fn duplicate_offer_of_an_acked_message_is_acked_again_without_the_app() {
    let mut pair = Pair::new(car_config(), phone_config());
    pair.phone
        .send_voice(voice_message(), VOICE_DATA.to_vec())
        .unwrap();
    pair.pump();
    pair.car.accept("m-0001", 0).unwrap();
    pair.pump();
    pair.car.ack_delivery("m-0001").unwrap();
    pair.pump();
    pair.car_events.clear();
    // The phone missed the ack (say) and offers again on the same link.
    pair.phone
        .send_voice(voice_message(), VOICE_DATA.to_vec())
        .unwrap();
    pair.pump();
    assert_eq!(
        pair.car_events,
        [Event::DuplicateMessage {
            id: "m-0001".into()
        }]
    );
    assert_eq!(
        pair.phone_events.last(),
        Some(&Event::Delivered {
            id: "m-0001".into()
        })
    );
    // Acking again is harmless.
    pair.car.ack_delivery("m-0001").unwrap();
}

#[test]
fn duplicate_on_a_new_link_is_surfaced_and_acked_without_a_transfer() {
    let mut pair = Pair::new(car_config(), phone_config());
    pair.phone
        .send_voice(voice_message(), VOICE_DATA.to_vec())
        .unwrap();
    pair.pump();
    // The daemon's spool already holds m-0001: it acks straight away.
    assert!(
        pair.car_events
            .contains(&Event::MessageStarted(voice_message()))
    );
    pair.car.ack_delivery("m-0001").unwrap();
    pair.pump();
    assert!(
        !pair.phone_sent.iter().any(|f| f[2] == 0x31),
        "no chunk sent"
    );
    assert_eq!(
        pair.phone_events.last(),
        Some(&Event::Delivered {
            id: "m-0001".into()
        })
    );
}

#[test]
fn text_resent_before_its_ack_is_reported_again_and_after_it_is_a_duplicate() {
    let mut pair = Pair::new(car_config(), phone_config());
    pair.phone.send_text(text_message()).unwrap();
    pair.phone.send_text(text_message()).unwrap();
    pair.pump();
    let texts = pair
        .car_events
        .iter()
        .filter(|e| matches!(e, Event::TextMessage(_)))
        .count();
    assert_eq!(texts, 2);
    pair.car.ack_delivery("t-0002").unwrap();
    pair.phone.send_text(text_message()).unwrap();
    pair.pump();
    assert_eq!(
        pair.car_events.last(),
        Some(&Event::DuplicateMessage {
            id: "t-0002".into()
        })
    );
}

#[test]
fn accept_at_the_full_size_completes_at_once() {
    let mut pair = Pair::new(car_config(), phone_config());
    pair.phone
        .send_voice(voice_message(), VOICE_DATA.to_vec())
        .unwrap();
    pair.pump();
    pair.car.accept("m-0001", 10).unwrap();
    pair.pump();
    assert_eq!(
        pair.car_events.last(),
        Some(&Event::MessageComplete(voice_message()))
    );
    assert!(!pair.phone_sent.iter().any(|f| f[2] == 0x31));
}

#[test]
fn commands_are_refused_in_the_wrong_state() {
    let now = Instant::now();
    let mut car = CarSession::new(car_config());
    assert_eq!(car.ack_delivery("x"), Err(Error::NotConnected));
    assert_eq!(car.ping(now), Err(Error::NotConnected));

    let mut pair = Pair::new(car_config(), phone_config());
    assert_eq!(
        pair.car.ack_delivery("nope"),
        Err(Error::UnknownMessage("nope".into()))
    );
    let (m, data) = big_message("m", 100_000);
    pair.phone.send_voice(m.clone(), data.clone()).unwrap();
    assert_eq!(pair.phone.send_voice(m, data), Err(Error::Busy));
    pair.pump();
    pair.car.accept("m", 0).unwrap();
    assert!(matches!(
        pair.car.accept("m", 0),
        Err(Error::InvalidState { .. })
    ));
    pair.pump_until(Some(1));
    assert!(matches!(
        pair.car.ack_delivery("m"),
        Err(Error::InvalidState { .. })
    ));
    // The phone accepts only Ogg Opus and at most 2 MiB.
    let mut r = voice_reply();
    r.codec = Codec::OpusPackets;
    assert_eq!(
        pair.car.send_reply(r, vec![1]),
        Err(Error::UnsupportedCodec(Codec::OpusPackets))
    );
    assert!(matches!(
        pair.car.send_reply(voice_reply(), vec![0; 0x20_0001]),
        Err(Error::MessageTooLarge { .. })
    ));
}

#[test]
fn rejected_offer_frees_the_phone() {
    let mut pair = Pair::new(car_config(), phone_config());
    pair.phone
        .send_voice(voice_message(), VOICE_DATA.to_vec())
        .unwrap();
    pair.pump();
    pair.car
        .reject("m-0001", ErrorCode::Rejected, "storage full")
        .unwrap();
    pair.pump();
    assert_eq!(pair.car_sent.last(), Some(&fixture("error-rejected")));
    assert_eq!(
        pair.phone_events.last(),
        Some(&Event::OfferRejected {
            id: "m-0001".into(),
            code: ErrorCode::Rejected,
            message: "storage full".into()
        })
    );
    pair.phone
        .send_voice(voice_message(), VOICE_DATA.to_vec())
        .unwrap();
}

// ----- bad frames -----

/// A car connected to a scripted phone, events drained.
fn connected_car() -> (CarSession, Instant) {
    let now = Instant::now();
    let mut car = CarSession::new(car_config());
    car.start(now);
    car.handle_input(now, &fixture("hello-phone"));
    while car.poll_transmit().is_some() {}
    assert!(matches!(car.poll_event(), Some(Event::Connected(_))));
    (car, now)
}

fn sent_errors(car: &mut CarSession) -> Vec<ErrorFrame> {
    let mut d = codriver_companion::Decoder::new();
    let mut out = Vec::new();
    while let Some(f) = car.poll_transmit() {
        let mut input: &[u8] = &f;
        while let Some(frame) = d.decode(&mut input) {
            if let Ok(Frame::Error(e)) = frame {
                out.push(e);
            }
        }
    }
    out
}

/// After each bad frame the link still works: a ping gets its pong, an offer its event.
fn assert_link_usable(car: &mut CarSession, now: Instant) {
    car.handle_input(now, &fixture("ping"));
    assert_eq!(car.poll_transmit(), Some(fixture("pong")));
    let mut m = voice_message();
    m.id = format!("ok-{}", car.buffered());
    car.handle_input(now, &Frame::VoiceOffer(m.clone()).to_bytes().unwrap());
    let events: Vec<_> = std::iter::from_fn(|| car.poll_event()).collect();
    assert!(
        events.contains(&Event::MessageStarted(m.clone())),
        "{events:?}"
    );
    car.reject(&m.id, ErrorCode::Rejected, "").unwrap();
    while car.poll_transmit().is_some() {}
    assert!(!car.is_closed());
}

#[test]
fn oversized_frame_gets_an_error_reply_link_stays_up_memory_bounded() {
    let (mut car, now) = connected_car();
    let len = 0x0100_0000u32; // 16 MiB announced
    car.handle_input(now, &header(0x31, len));
    let junk = vec![0x55; 0x1_0000];
    for _ in 0..len / 0x1_0000 {
        car.handle_input(now, &junk);
        assert!(car.buffer_capacity() <= MAX_FRAME_LEN);
        assert_eq!(car.buffered(), 0);
    }
    let errors = sent_errors(&mut car);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].code, ErrorCode::FrameTooLarge);
    assert!(matches!(
        car.poll_event(),
        Some(Event::ProtocolError(ProtocolError::FrameTooLarge { .. }))
    ));
    assert_link_usable(&mut car, now);
}

#[test]
fn unknown_type_gets_the_spec_error_reply() {
    let (mut car, now) = connected_car();
    car.handle_input(now, &raw_frame(0x7f, &[1, 2, 3]));
    assert_eq!(car.poll_transmit(), Some(fixture("error-unknown-type")));
    assert_link_usable(&mut car, now);
}

#[test]
fn truncated_payload_gets_malformed_and_link_stays_up() {
    let (mut car, now) = connected_car();
    let offer = fixture("voice-offer");
    let mut cut = offer[8..offer.len() - 3].to_vec(); // size field cut short
    cut.truncate(cut.len());
    car.handle_input(now, &raw_frame(0x10, &cut));
    let errors = sent_errors(&mut car);
    assert_eq!(errors[0].code, ErrorCode::Malformed);
    assert_eq!(errors[0].frame_type, 0x10);
    assert_link_usable(&mut car, now);
}

#[test]
fn invalid_utf8_in_names_gets_an_error_reply_and_frees_the_phone() {
    let mut pair = Pair::new(car_config(), phone_config());
    pair.phone
        .send_voice(voice_message(), VOICE_DATA.to_vec())
        .unwrap();
    // Corrupt the sender name of the offer on its way.
    let mut offer = pair.phone.poll_transmit().unwrap();
    offer[8 + 7 + 10 + 1] = 0xC3; // a lone lead byte
    pair.car.handle_input(pair.now, &offer);
    pair.pump();
    let Some(Event::ProtocolError(e)) = pair.car_events.last() else {
        panic!("{:?}", pair.car_events)
    };
    assert_eq!(
        *e,
        ProtocolError::InvalidUtf8 {
            frame_type: 0x10,
            field: "sender_name"
        }
    );
    // The error names no id (it could not be trusted) but the offer's type: the phone's
    // outstanding offer ends and the link stays up.
    assert!(matches!(
        pair.phone_events.last(),
        Some(Event::OfferRejected {
            code: ErrorCode::InvalidUtf8,
            ..
        })
    ));
    pair.phone
        .send_voice(voice_message(), VOICE_DATA.to_vec())
        .unwrap();
    pair.pump();
    assert!(
        pair.car_events
            .contains(&Event::MessageStarted(voice_message()))
    );
}

#[test]
fn invalid_utf8_in_a_text_gets_an_error_reply() {
    let (mut car, now) = connected_car();
    let mut text = fixture("text-message");
    let last = text.len() - 1;
    text[last] = 0xFF;
    car.handle_input(now, &text);
    let errors = sent_errors(&mut car);
    assert_eq!(errors[0].code, ErrorCode::InvalidUtf8);
    assert_link_usable(&mut car, now);
}

#[test]
fn chunk_at_the_wrong_offset_is_refused_and_the_transfer_can_restart() {
    let (mut car, now) = connected_car();
    car.handle_input(now, &fixture("voice-offer"));
    car.accept("m-0001", 0).unwrap();
    while car.poll_transmit().is_some() {}
    car.handle_input(now, &fixture("chunk-2"));
    let errors = sent_errors(&mut car);
    assert_eq!(errors[0].code, ErrorCode::BadOffset);
    assert_eq!(errors[0].id, "m-0001");
    // Chunks before an accept, and for unknown ids, are refused too.
    car.handle_input(now, &fixture("reply-chunk"));
    assert_eq!(sent_errors(&mut car)[0].code, ErrorCode::UnknownMessage);
    // Re-offer restarts; the car accepts where it stands.
    car.handle_input(now, &fixture("voice-offer"));
    car.handle_input(now, &fixture("chunk-1"));
    assert_eq!(sent_errors(&mut car)[0].code, ErrorCode::UnexpectedFrame);
    car.accept("m-0001", 0).unwrap();
    car.handle_input(now, &cat(&["chunk-1", "chunk-2"]));
    let events: Vec<_> = std::iter::from_fn(|| car.poll_event()).collect();
    assert_eq!(
        events.last(),
        Some(&Event::MessageComplete(voice_message()))
    );
}

#[test]
fn frames_before_the_handshake_are_refused() {
    let now = Instant::now();
    let mut car = CarSession::new(car_config());
    car.start(now);
    car.handle_input(now, &fixture("voice-offer"));
    let errors = sent_errors(&mut car);
    assert_eq!(errors[0].code, ErrorCode::UnexpectedFrame);
    car.handle_input(now, &fixture("hello-phone"));
    assert!(car.is_connected());
}

#[test]
fn bad_magic_closes_the_session_after_an_error() {
    let (mut car, now) = connected_car();
    car.handle_input(now, b"GET / HTTP/1.1\r\n");
    assert_eq!(sent_errors(&mut car)[0].code, ErrorCode::Malformed);
    assert!(car.is_closed());
    assert!(matches!(
        car.poll_event(),
        Some(Event::Closed(ProtocolError::BadMagic { found: 0x47 }))
    ));
    car.handle_input(now, &fixture("ping"));
    assert_eq!(car.poll_transmit(), None);
}

#[test]
fn a_second_car_is_refused() {
    let now = Instant::now();
    let mut car = CarSession::new(car_config());
    car.handle_input(now, &fixture("hello-car"));
    assert!(car.is_closed());
    let mut sent = Vec::new();
    while let Some(f) = car.poll_transmit() {
        sent.push(f);
    }
    assert_eq!(sent[0], fixture("hello-car"));
    assert_eq!(sent.len(), 2);
}

#[test]
fn error_frames_are_never_answered() {
    let (mut car, now) = connected_car();
    car.handle_input(now, &fixture("error-unknown-type"));
    car.handle_input(now, &raw_frame(0x04, &[0x00])); // malformed ERROR
    assert_eq!(car.poll_transmit(), None);
    assert!(matches!(car.poll_event(), Some(Event::PeerError(_))));
    assert!(matches!(car.poll_event(), Some(Event::ProtocolError(_))));
}

#[test]
fn busy_beyond_the_active_transfer_limit() {
    let (mut car, now) = connected_car();
    for id in ["a", "b", "c"] {
        let mut m = voice_message();
        m.id = id.into();
        car.handle_input(now, &Frame::VoiceOffer(m).to_bytes().unwrap());
    }
    let errors = sent_errors(&mut car);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].code, ErrorCode::Busy);
    assert_eq!(errors[0].id, "c");
}

#[test]
fn offers_in_unlisted_codecs_or_too_large_are_refused() {
    let (mut car, now) = connected_car();
    let mut m = voice_message();
    m.codec = Codec::Other(0x09);
    car.handle_input(now, &Frame::VoiceOffer(m).to_bytes().unwrap());
    let mut m = voice_message();
    m.size = 0xA0_0001;
    // Encoding refuses sizes over 10 MiB, so patch the bytes.
    let mut bytes = fixture("voice-offer");
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&m.size.to_be_bytes());
    car.handle_input(now, &bytes);
    let codes: Vec<_> = sent_errors(&mut car).iter().map(|e| e.code).collect();
    assert_eq!(
        codes,
        [ErrorCode::UnsupportedCodec, ErrorCode::MessageTooLarge]
    );
}

// ----- timeouts on a virtual clock -----

#[test]
fn ping_times_out_on_the_virtual_clock() {
    let (mut car, now) = connected_car();
    assert_eq!(car.poll_timeout(), None, "an idle link has no timer");
    car.ping(now).unwrap();
    assert_eq!(car.poll_transmit(), Some(fixture("ping")));
    let deadline = car.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(5));
    car.handle_timeout(deadline - Duration::from_millis(1));
    assert_eq!(car.poll_event(), None);
    car.handle_timeout(deadline);
    assert_eq!(car.poll_event(), Some(Event::PingTimeout));
    assert_eq!(car.poll_timeout(), None);
    // A late pong is ignored.
    car.handle_input(deadline, &fixture("pong"));
    assert_eq!(car.poll_event(), None);
}

#[test]
fn pong_reports_the_round_trip_on_the_virtual_clock() {
    let mut pair = Pair::new(car_config(), phone_config());
    pair.car.ping(pair.now).unwrap();
    let ping = pair.car.poll_transmit().unwrap();
    pair.phone.handle_input(pair.now, &ping);
    let pong = pair.phone.poll_transmit().unwrap();
    pair.car
        .handle_input(pair.now + Duration::from_millis(42), &pong);
    let events: Vec<_> = std::iter::from_fn(|| pair.car.poll_event()).collect();
    assert_eq!(
        events.last(),
        Some(&Event::Pong {
            rtt: Duration::from_millis(42)
        })
    );
    assert_eq!(pair.car.poll_timeout(), None);
}

#[test]
fn handshake_times_out_on_the_virtual_clock() {
    let now = Instant::now();
    let mut car = CarSession::new(car_config());
    car.start(now);
    assert_eq!(car.poll_transmit(), Some(fixture("hello-car")));
    let deadline = car.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(10));
    car.handle_timeout(deadline);
    assert!(car.is_closed());
    assert_eq!(
        car.poll_event(),
        Some(Event::Closed(ProtocolError::HandshakeTimeout))
    );
    assert_eq!(sent_errors(&mut car)[0].code, ErrorCode::HandshakeFailed);
    assert_eq!(car.poll_timeout(), None);
}
