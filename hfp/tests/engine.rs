//! Engine behaviour that transcripts do not express well: bounds, queues, accessors, Display.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers outside #[test] fns may panic.

use std::time::{Duration, Instant};

use codriver_hfp::{
    AgFeatures, Call, CallState, Chld, CmeError, Codec, Direction, Error, Event, HandsFree,
    HfConfig, HfFeatures, VolumeTarget,
};

fn drain_tx(hf: &mut HandsFree) -> Vec<String> {
    std::iter::from_fn(|| hf.poll_transmit())
        .map(|b| String::from_utf8(b).unwrap())
        .collect()
}

fn drain_events(hf: &mut HandsFree) -> Vec<String> {
    std::iter::from_fn(|| hf.poll_event())
        .map(|e| e.to_string())
        .collect()
}

/// Brings up an SLC with a phone advertising `ag` and indicators service, call, callsetup.
fn connected(config: HfConfig, ag: u32) -> (HandsFree, Instant) {
    let now = Instant::now();
    let mut hf = HandsFree::new(config);
    hf.start(now);
    for _ in 0..20 {
        let Some(tx) = hf.poll_transmit() else { break };
        let answer: &[u8] = match &tx[..] {
            b"AT+BRSF=1023\r" => &format!("\r\n+BRSF: {ag}\r\n\r\nOK\r\n").into_bytes(),
            b"AT+CIND=?\r" => b"\r\n+CIND: (\"service\",(0,1)),(\"call\",(0,1)),(\"callsetup\",(0-3))\r\n\r\nOK\r\n",
            b"AT+CIND?\r" => b"\r\n+CIND: 1,0,0\r\n\r\nOK\r\n",
            _ => b"\r\nOK\r\n",
        };
        hf.handle_input(now, answer);
    }
    assert!(hf.is_connected());
    drain_events(&mut hf);
    (hf, now)
}

#[test]
fn start_sends_brsf_once_and_arms_timeout() {
    let mut hf = HandsFree::new(HfConfig::default());
    let now = Instant::now();
    assert_eq!(hf.poll_timeout(), None);
    hf.start(now);
    hf.start(now);
    assert_eq!(drain_tx(&mut hf), ["AT+BRSF=1023\r"]);
    assert_eq!(hf.poll_timeout(), Some(now + Duration::from_secs(5)));
    assert!(!hf.is_connected());
    assert_eq!(hf.answer(now), Err(Error::NotConnected));
}

#[test]
fn default_line_limit_is_one_kib_and_memory_stays_bounded() {
    let (mut hf, now) = connected(HfConfig::default(), 0);
    hf.handle_input(now, &[b'A'; 1024]);
    assert!(drain_events(&mut hf).is_empty(), "1024 bytes fit");
    hf.handle_input(now, b"A");
    assert_eq!(
        drain_events(&mut hf),
        ["protocol-violation line longer than 1024 bytes discarded"]
    );
    for _ in 0..1000 {
        hf.handle_input(now, &[b'x'; 1024]);
    }
    assert!(drain_events(&mut hf).is_empty(), "reported once per line");
    hf.handle_input(now, b"\r\n+CIEV: 1,0\r\n");
    assert_eq!(drain_events(&mut hf), ["indicator service 0"]);
}

#[test]
fn event_queue_drops_newest_and_reports_the_count() {
    let config = HfConfig {
        event_queue_capacity: 4,
        ..HfConfig::default()
    };
    let (mut hf, now) = connected(config, 0);
    for level in 0..10 {
        hf.handle_input(now, format!("\r\n+VGS: {level}\r\n").as_bytes());
    }
    assert_eq!(
        drain_events(&mut hf),
        [
            "volume speaker 0",
            "volume speaker 1",
            "volume speaker 2",
            "volume speaker 3",
            "events-dropped 6"
        ]
    );
    hf.handle_input(now, b"\r\n+VGM: 1\r\n");
    assert_eq!(drain_events(&mut hf), ["volume mic 1"]);
    // Drops are reported before the next event that fits.
    for level in 0..6 {
        hf.handle_input(now, format!("\r\n+VGS: {level}\r\n").as_bytes());
    }
    assert_eq!(hf.poll_event().unwrap().to_string(), "volume speaker 0");
    assert_eq!(hf.poll_event().unwrap().to_string(), "volume speaker 1");
    hf.handle_input(now, b"\r\n+VGM: 2\r\n");
    let events = drain_events(&mut hf);
    assert_eq!(events[2], "events-dropped 2");
    assert_eq!(events.last().unwrap(), "volume mic 2");
}

#[test]
fn command_queue_is_bounded() {
    let config = HfConfig {
        command_queue_capacity: 2,
        ..HfConfig::default()
    };
    let (mut hf, now) = connected(config, 0);
    hf.set_speaker_volume(now, 1).unwrap(); // in flight
    hf.set_speaker_volume(now, 2).unwrap();
    hf.set_speaker_volume(now, 3).unwrap();
    assert_eq!(hf.set_speaker_volume(now, 4), Err(Error::QueueFull));
    assert_eq!(drain_tx(&mut hf), ["AT+VGS=1\r"]);
    hf.handle_input(now, b"\r\nOK\r\n");
    assert_eq!(drain_tx(&mut hf), ["AT+VGS=2\r"]);
    hf.set_speaker_volume(now, 4).unwrap();
}

#[test]
fn timeout_fails_command_and_next_goes_out() {
    let (mut hf, now) = connected(HfConfig::default(), 0);
    hf.answer(now).unwrap();
    hf.hangup(now).unwrap();
    assert_eq!(drain_tx(&mut hf), ["ATA\r"]);
    let deadline = hf.poll_timeout().unwrap();
    hf.handle_timeout(deadline - Duration::from_millis(1));
    assert!(drain_tx(&mut hf).is_empty());
    hf.handle_timeout(deadline);
    assert_eq!(drain_tx(&mut hf), ["AT+CHUP\r"]);
    assert_eq!(drain_events(&mut hf), ["error ATA timeout"]);
    assert_eq!(hf.poll_timeout(), Some(deadline + Duration::from_secs(5)));
}

#[test]
fn local_validation() {
    let (mut hf, now) = connected(HfConfig::default(), 0);
    assert_eq!(hf.dial(now, ""), Err(Error::InvalidNumber(String::new())));
    assert!(matches!(
        hf.dial(now, "12;34"),
        Err(Error::InvalidNumber(_))
    ));
    assert!(matches!(
        hf.dial(now, &"1".repeat(65)),
        Err(Error::InvalidNumber(_))
    ));
    assert_eq!(hf.send_dtmf(now, 'E'), Err(Error::InvalidDtmf('E')));
    assert_eq!(hf.set_mic_volume(now, 16), Err(Error::OutOfRange(16)));
    assert_eq!(
        hf.hold(now, Chld::ReleaseHeld),
        Err(Error::NotSupported("three-way calling"))
    );
    hf.dial(now, "+1*#ABCD,pw").unwrap();
    assert_eq!(drain_tx(&mut hf), ["ATD+1*#ABCD,pw;\r"]);
}

#[test]
fn errors_keep_local_and_peer_faults_apart() {
    assert!(!Error::NotConnected.is_peer());
    assert!(!Error::QueueFull.is_peer());
    assert!(Error::Timeout.is_peer());
    assert!(Error::Cme(CmeError::from_code(30)).is_peer());
    assert_eq!(CmeError::from_code(30), CmeError::NoNetworkService);
    assert_eq!(CmeError::from_code(1234), CmeError::Other(1234));
    for code in 0..40 {
        assert_eq!(CmeError::from_code(code).code(), code);
    }
}

#[test]
fn accessors_follow_the_phone() {
    let (mut hf, now) = connected(HfConfig::default(), 0x0fef);
    assert_eq!(hf.ag_features(), AgFeatures(0x0fef));
    assert!(hf.ag_features().contains(AgFeatures::CODEC_NEGOTIATION));
    assert_eq!(hf.indicator("CallSetup"), Some(0));
    assert_eq!(hf.indicator("call_setup"), Some(0));
    assert_eq!(hf.indicator("battchg"), None);
    hf.handle_input(now, b"\r\n+CIEV: 3,1\r\n");
    assert_eq!(drain_tx(&mut hf), ["AT+CLCC\r"]);
    hf.handle_input(
        now,
        b"\r\n+CLCC: 1,1,4,0,0,\"555\",129,\"Ann\"\r\n\r\nOK\r\n",
    );
    assert_eq!(
        hf.calls(),
        [Call {
            index: 1,
            direction: Direction::Incoming,
            state: CallState::Incoming,
            number: Some("555".into()),
            name: Some("Ann".into()),
            multiparty: false,
        }]
    );
    hf.handle_input(now, b"\r\n+BCS: 2\r\n");
    assert_eq!(drain_tx(&mut hf), ["AT+BCS=2\r"]);
    hf.handle_input(now, b"\r\nOK\r\n");
    assert_eq!(hf.codec(), Some(Codec::Msbc));
}

#[test]
fn canonical_event_lines() {
    let call = Call {
        index: 2,
        direction: Direction::Outgoing,
        state: CallState::Alerting,
        number: None,
        name: None,
        multiparty: false,
    };
    let cases = [
        (
            Event::SlcConnected {
                ag_features: AgFeatures(0x2ef),
                codecs: vec![Codec::Cvsd, Codec::Lc3Swb],
            },
            "slc-connected features=0x2ef codecs=cvsd,lc3-swb",
        ),
        (
            Event::SlcFailed {
                reason: Error::Timeout,
            },
            "slc-failed timeout",
        ),
        (
            Event::Indicator {
                name: "signal".into(),
                value: 3,
            },
            "indicator signal 3",
        ),
        (Event::CallAdded(call.clone()), "call 2 alerting -"),
        (
            Event::CallEnded(Call {
                state: CallState::Ended,
                number: Some("1".into()),
                ..call
            }),
            "call 2 ended 1",
        ),
        (
            Event::Ring {
                number: None,
                name: None,
            },
            "ring -",
        ),
        (Event::CodecSelected(Codec::Lc3Swb), "codec lc3-swb"),
        (
            Event::Volume {
                target: VolumeTarget::Mic,
                level: 4,
            },
            "volume mic 4",
        ),
        (Event::VoiceRecognition(false), "voice-recognition off"),
        (Event::InBandRing(true), "in-band-ring on"),
        (Event::ResponseAndHold(1), "btrh 1"),
        (
            Event::HfIndicator {
                id: 2,
                enabled: true,
            },
            "hf-indicator 2 on",
        ),
        (Event::Operator(None), "operator -"),
        (Event::Subscriber("+1".into()), "subscriber +1"),
        (
            Event::CommandFailed {
                command: "ATA".into(),
                error: Error::Cme(CmeError::AgFailure),
            },
            "error ATA cme error ag-failure (0)",
        ),
        (Event::ProtocolViolation("x".into()), "protocol-violation x"),
        (Event::Unsolicited("+FOO: 1".into()), "unsolicited +FOO: 1"),
        (Event::EventsDropped(3), "events-dropped 3"),
    ];
    for (event, line) in cases {
        assert_eq!(event.to_string(), line);
    }
    assert_eq!(HfFeatures::DEFAULT.bits(), 0x03ff);
    assert_eq!(Codec::from_id(0x03), Some(Codec::Lc3Swb));
    assert_eq!(Codec::from_name("MSBC"), Some(Codec::Msbc));
}

#[test]
fn response_and_hold_and_in_band_ring() {
    let (mut hf, now) = connected(HfConfig::default(), 0);
    hf.handle_input(now, b"\r\n+BTRH: 0\r\n+BSIR: 1\r\n+BTRH: x\r\n");
    assert_eq!(
        drain_events(&mut hf),
        [
            "btrh 0",
            "in-band-ring on",
            "protocol-violation bad +BTRH: x"
        ]
    );
}

/// Wide band keeps failing on the car's side: the car offers CVSD only (`AT+BAC=1`), and the
/// phone's next `+BCS` picks CVSD; a `+BCS: 2` after that is answered with `AT+BAC=1` again.
#[test]
fn set_codecs_falls_back_to_cvsd_with_bac() {
    let (mut hf, now) = connected(HfConfig::default(), 0x0fef);
    hf.handle_input(now, b"\r\n+BCS: 2\r\n");
    assert_eq!(drain_tx(&mut hf), ["AT+BCS=2\r"]);
    hf.handle_input(now, b"\r\nOK\r\n");
    assert_eq!(hf.codec(), Some(Codec::Msbc));

    hf.set_codecs(now, vec![Codec::Cvsd]).unwrap();
    assert_eq!(drain_tx(&mut hf), ["AT+BAC=1\r"]);
    hf.handle_input(now, b"\r\nOK\r\n");
    hf.handle_input(now, b"\r\n+BCS: 2\r\n");
    assert_eq!(drain_tx(&mut hf), ["AT+BAC=1\r"]);
    hf.handle_input(now, b"\r\nOK\r\n");
    hf.handle_input(now, b"\r\n+BCS: 1\r\n");
    assert_eq!(drain_tx(&mut hf), ["AT+BCS=1\r"]);
    hf.handle_input(now, b"\r\nOK\r\n");
    assert_eq!(hf.codec(), Some(Codec::Cvsd));
}

/// Without codec negotiation there is nothing to tell the phone.
#[test]
fn set_codecs_without_codec_negotiation_sends_nothing() {
    let (mut hf, now) = connected(HfConfig::default(), 0x0000);
    hf.set_codecs(now, vec![Codec::Cvsd]).unwrap();
    assert!(drain_tx(&mut hf).is_empty());
}
