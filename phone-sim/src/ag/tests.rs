//! Byte transcripts of the gateway's answers, per profile.

use std::time::{Duration, Instant};

use super::*;

/// HF features of a modern car kit: 3-way, CLI, VR, volume, ECS, ECC, codec
/// negotiation, HF indicators, eSCO S4 (0x3FE).
const HF_ALL: u32 = 0x3FE;

fn send(ag: &mut AudioGateway, now: Instant, line: &str) -> String {
    ag.handle_input(now, format!("{line}\r").as_bytes());
    take(ag)
}

fn take(ag: &mut AudioGateway) -> String {
    String::from_utf8(ag.poll_transmit().unwrap_or_default()).unwrap()
}

fn events(ag: &mut AudioGateway) -> Vec<AgEvent> {
    std::iter::from_fn(|| ag.poll_event()).collect()
}

/// The SLC setup a full-featured HF performs, with the phone's answers.
fn connect(profile: Profile, now: Instant) -> AudioGateway {
    let mut ag = AudioGateway::new(profile);
    send(&mut ag, now, &format!("AT+BRSF={HF_ALL}"));
    if profile.supports(features::CODEC_NEGOTIATION) {
        assert_eq!(send(&mut ag, now, "AT+BAC=1,2"), "\r\nOK\r\n");
    }
    send(&mut ag, now, "AT+CIND=?");
    send(&mut ag, now, "AT+CIND?");
    assert_eq!(send(&mut ag, now, "AT+CMER=3,0,0,1"), "\r\nOK\r\n");
    if profile.supports(features::THREE_WAY_CALLING) {
        send(&mut ag, now, "AT+CHLD=?");
    }
    if profile.supports(features::HF_INDICATORS) {
        send(&mut ag, now, "AT+BIND=1,2");
        send(&mut ag, now, "AT+BIND=?");
        send(&mut ag, now, "AT+BIND?");
    }
    assert!(ag.is_slc_established(), "{profile}");
    assert_eq!(send(&mut ag, now, "AT+CLIP=1"), "\r\nOK\r\n");
    assert_eq!(send(&mut ag, now, "AT+CCWA=1"), "\r\nOK\r\n");
    if profile.supports(features::EXTENDED_ERROR) {
        assert_eq!(send(&mut ag, now, "AT+CMEE=1"), "\r\nOK\r\n");
    }
    events(&mut ag);
    ag
}

/// `+CIEV: <position of indicator>,<value>` for `profile`.
fn ciev(profile: Profile, indicator: Indicator, value: u8) -> String {
    let position = profile
        .indicators()
        .iter()
        .position(|&i| i == indicator)
        .unwrap();
    format!("\r\n+CIEV: {},{value}\r\n", position + 1)
}

#[test]
fn brsf_reply_per_profile() {
    let now = Instant::now();
    let expected = [
        (Profile::IphoneLike, "1007"),
        (Profile::AndroidLike, "4079"),
        (Profile::Minimal, "36"),
        (Profile::NoOkAfterClcc, "4079"),
        (Profile::VgsEquals, "4079"),
    ];
    for (profile, features) in expected {
        let mut ag = AudioGateway::new(profile);
        assert_eq!(
            send(&mut ag, now, "AT+BRSF=1022"),
            format!("\r\n+BRSF: {features}\r\n\r\nOK\r\n"),
            "{profile}"
        );
        assert_eq!(events(&mut ag), [AgEvent::HfFeatures(1022)]);
        assert_eq!(ag.hf_features(), Some(1022));
    }
}

#[test]
fn feature_bits_match_hfp_spec() {
    assert_eq!(Profile::IphoneLike.features(), 0x03EF);
    assert_eq!(Profile::AndroidLike.features(), 0x0FEF);
    assert_eq!(Profile::Minimal.features(), 0x0024);
    assert_eq!(features::ESCO_S4, 1 << 11);
    assert_eq!(features::CODEC_NEGOTIATION, 1 << 9);
}

#[test]
fn cind_test_reply_per_profile() {
    let now = Instant::now();
    let expected = [
        (
            Profile::IphoneLike,
            "(\"service\",(0-1)),(\"call\",(0-1)),(\"callsetup\",(0-3)),(\"battchg\",(0-5)),(\"signal\",(0-5)),(\"roam\",(0-1)),(\"callheld\",(0-2))",
        ),
        (
            Profile::AndroidLike,
            "(\"call\",(0,1)),(\"callsetup\",(0-3)),(\"service\",(0-1)),(\"signal\",(0-5)),(\"roam\",(0,1)),(\"battchg\",(0-5)),(\"callheld\",(0-2))",
        ),
        (
            Profile::Minimal,
            "(\"service\",(0,1)),(\"call\",(0,1)),(\"callsetup\",(0,3))",
        ),
    ];
    for (profile, list) in expected {
        let mut ag = AudioGateway::new(profile);
        assert_eq!(
            send(&mut ag, now, "AT+CIND=?"),
            format!("\r\n+CIND: {list}\r\n\r\nOK\r\n")
        );
    }
}

#[test]
fn cind_test_names_follow_indicator_order() {
    for profile in Profile::ALL {
        let names: Vec<&str> = profile.cind_test().split('"').skip(1).step_by(2).collect();
        let expected: Vec<&str> = profile.indicators().iter().map(|i| i.name()).collect();
        assert_eq!(names, expected, "{profile}");
    }
}

#[test]
fn cind_read_reply_per_profile() {
    let now = Instant::now();
    let expected = [
        (Profile::IphoneLike, "1,0,0,5,5,0,0"),
        (Profile::AndroidLike, "0,0,1,5,0,5,0"),
        (Profile::Minimal, "1,0,0"),
        (Profile::NoOkAfterClcc, "0,0,1,5,0,5,0"),
        (Profile::VgsEquals, "0,0,1,5,0,5,0"),
    ];
    for (profile, values) in expected {
        let mut ag = AudioGateway::new(profile);
        assert_eq!(
            send(&mut ag, now, "AT+CIND?"),
            format!("\r\n+CIND: {values}\r\n\r\nOK\r\n")
        );
    }
}

#[test]
fn profile_names_round_trip() {
    for profile in Profile::ALL {
        assert_eq!(profile.to_string().parse::<Profile>(), Ok(profile));
    }
    assert_eq!("iphone-like".parse(), Ok(Profile::IphoneLike));
    let err = "nokia".parse::<Profile>().unwrap_err();
    assert!(err.to_string().contains("android-like"));
}

#[test]
fn slc_iphone_transcript() {
    let now = Instant::now();
    let mut ag = AudioGateway::new(Profile::IphoneLike);
    let transcript = [
        ("AT+BRSF=1022", "\r\n+BRSF: 1007\r\n\r\nOK\r\n"),
        ("AT+BAC=1,2", "\r\nOK\r\n"),
        ("AT+CIND?", "\r\n+CIND: 1,0,0,5,5,0,0\r\n\r\nOK\r\n"),
        ("AT+CMER=3,0,0,1", "\r\nOK\r\n"),
        ("AT+CHLD=?", "\r\n+CHLD: (1,1x,2,2x,3)\r\n\r\nOK\r\n"),
        // No HF indicators on this iPhone.
        ("AT+BIND=1,2", "\r\nERROR\r\n"),
        (
            "AT+XAPL=0042-0887-0100,6",
            "\r\n+XAPL=iPhone,6\r\n\r\nOK\r\n",
        ),
        ("AT+IPHONEACCEV=2,1,5,2,0", "\r\nOK\r\n"),
        ("AT+NREC=0", "\r\nOK\r\n"),
        ("AT+CMEE=1", "\r\nOK\r\n"),
        ("AT+COPS=3,0", "\r\nOK\r\n"),
        ("AT+COPS?", "\r\n+COPS: 0,0,\"Sim Mobile\"\r\n\r\nOK\r\n"),
        ("AT+CNUM", "\r\n+CNUM: ,\"+15550100\",145,,4\r\n\r\nOK\r\n"),
        ("AT+BTRH?", "\r\nOK\r\n"),
        ("AT+CLCC", "\r\nOK\r\n"),
    ];
    for (command, reply) in transcript {
        assert_eq!(send(&mut ag, now, command), reply, "{command}");
    }
    assert_eq!(
        events(&mut ag),
        [
            AgEvent::HfFeatures(1022),
            AgEvent::AvailableCodecs(vec![1, 2]),
            AgEvent::IndicatorReporting(true),
            AgEvent::SlcEstablished,
            AgEvent::AppleAccessory {
                device: "0042-0887-0100".into(),
                features: 6
            },
            AgEvent::BatteryReported(60),
            AgEvent::NrecDisabled,
        ]
    );
}

#[test]
fn slc_android_waits_for_bind_read() {
    let now = Instant::now();
    let mut ag = AudioGateway::new(Profile::AndroidLike);
    send(&mut ag, now, &format!("AT+BRSF={HF_ALL}"));
    send(&mut ag, now, "AT+CMER=3,0,0,1");
    assert_eq!(
        send(&mut ag, now, "AT+CHLD=?"),
        "\r\n+CHLD: (0,1,2,3)\r\n\r\nOK\r\n"
    );
    assert!(!ag.is_slc_established());
    assert_eq!(send(&mut ag, now, "AT+BIND=1,2"), "\r\nOK\r\n");
    assert_eq!(
        send(&mut ag, now, "AT+BIND=?"),
        "\r\n+BIND: (1,2)\r\n\r\nOK\r\n"
    );
    assert_eq!(
        send(&mut ag, now, "AT+BIND?"),
        "\r\n+BIND: 1,1\r\n\r\n+BIND: 2,1\r\n\r\nOK\r\n"
    );
    assert!(ag.is_slc_established());
    assert_eq!(send(&mut ag, now, "AT+BIEV=2,85"), "\r\nOK\r\n");
    assert_eq!(send(&mut ag, now, "AT+BIEV=2,101"), "\r\nERROR\r\n");
    let evs = events(&mut ag);
    assert_eq!(
        evs.iter()
            .filter(|e| **e == AgEvent::SlcEstablished)
            .count(),
        1
    );
    assert_eq!(evs.last(), Some(&AgEvent::BatteryReported(85)));
}

#[test]
fn slc_minimal_completes_at_cmer_and_refuses_extras() {
    let now = Instant::now();
    let mut ag = AudioGateway::new(Profile::Minimal);
    let transcript = [
        ("AT+BRSF=1022", "\r\n+BRSF: 36\r\n\r\nOK\r\n"),
        ("AT+BAC=1,2", "\r\nERROR\r\n"),
        ("AT+CMER=3,0,0,1", "\r\nOK\r\n"),
        ("AT+CHLD=?", "\r\nERROR\r\n"),
        ("AT+XAPL=0042-0887-0100,2", "\r\nERROR\r\n"),
        ("AT+IPHONEACCEV=1,1,5", "\r\nERROR\r\n"),
        ("AT+NREC=0", "\r\nERROR\r\n"),
        ("AT+CMEE=1", "\r\nERROR\r\n"),
        ("AT+BCC", "\r\nERROR\r\n"),
    ];
    for (command, reply) in transcript {
        assert_eq!(send(&mut ag, now, command), reply, "{command}");
    }
    assert!(ag.is_slc_established());
    assert_eq!(
        ag.codec_switch(CODEC_MSBC),
        Err(ActionError::NotSupported {
            profile: Profile::Minimal,
            feature: "codec negotiation"
        })
    );
}

#[test]
fn fragmented_and_joined_input_gives_same_replies() {
    let now = Instant::now();
    let script = "AT+BRSF=1022\rAT+BAC=1,2\rAT+CIND=?\rAT+CIND?\rAT+CMER=3,0,0,1\rAT+CHLD=?\r";
    let mut whole = AudioGateway::new(Profile::AndroidLike);
    whole.handle_input(now, script.as_bytes());
    let expected = take(&mut whole);
    assert!(expected.ends_with("+CHLD: (0,1,2,3)\r\n\r\nOK\r\n"));

    for chunk in [1, 2, 3, 5, 7, 13] {
        let mut ag = AudioGateway::new(Profile::AndroidLike);
        let mut out = String::new();
        for piece in script.as_bytes().chunks(chunk) {
            ag.handle_input(now, piece);
            out.push_str(&take(&mut ag));
        }
        assert_eq!(out, expected, "chunk size {chunk}");
    }
}

#[test]
fn lf_and_crlf_terminators_and_lowercase_are_accepted() {
    let now = Instant::now();
    let mut ag = AudioGateway::new(Profile::AndroidLike);
    ag.handle_input(now, b"at+vgs=7\r\nAT+VGM=3\n  AT+CLCC  \r");
    assert_eq!(take(&mut ag), "\r\nOK\r\n\r\nOK\r\n\r\nOK\r\n");
    assert_eq!(
        events(&mut ag),
        [AgEvent::SpeakerVolume(7), AgEvent::MicVolume(3)]
    );
}

#[test]
fn endless_line_is_bounded_and_answered_with_error() {
    let now = Instant::now();
    let mut ag = AudioGateway::new(Profile::AndroidLike);
    let junk = vec![b'A'; 10 * MAX_LINE_LEN];
    for _ in 0..10 {
        ag.handle_input(now, &junk);
    }
    assert!(ag.rx.len() <= MAX_LINE_LEN);
    assert_eq!(ag.poll_transmit(), None);
    assert_eq!(events(&mut ag), [AgEvent::InputOverflow]);
    ag.handle_input(now, b"\rAT+CHUP\r");
    assert_eq!(take(&mut ag), "\r\nERROR\r\n\r\nERROR\r\n");
    // A line of exactly the limit still counts.
    let mut long = b"AT+VTS=1".to_vec();
    long.resize(MAX_LINE_LEN, b' ');
    long.push(b'\r');
    ag.handle_input(now, &long);
    assert_eq!(take(&mut ag), "\r\nERROR\r\n");
    assert_eq!(events(&mut ag), []);
}

#[test]
fn unknown_commands_get_error() {
    let now = Instant::now();
    let mut ag = AudioGateway::new(Profile::IphoneLike);
    for line in ["AT+CSQ", "ATZ", "HELLO", "AT+CIND", "ATD123", "AT+CKPD=200"] {
        assert_eq!(send(&mut ag, now, line), "\r\nERROR\r\n", "{line}");
        assert_eq!(events(&mut ag), [AgEvent::UnknownCommand(line.to_owned())]);
    }
}

#[test]
fn outputs_and_events_are_bounded() {
    let now = Instant::now();
    let mut ag = AudioGateway::new(Profile::AndroidLike);
    for _ in 0..(MAX_PENDING_EVENTS + 10) {
        ag.handle_input(now, b"AT+VGS=1\r");
    }
    assert_eq!(ag.dropped_events(), 10);
    assert_eq!(events(&mut ag).len(), MAX_PENDING_EVENTS);
    for _ in 0..(MAX_PENDING_TRANSMIT / 6 + 10) {
        ag.handle_input(now, b"AT+VGS=1\r");
    }
    assert!(ag.dropped_transmit_bytes() > 0);
    assert!(take(&mut ag).len() <= MAX_PENDING_TRANSMIT);
}

#[test]
fn no_ciev_before_cmer_or_after_disable() {
    let now = Instant::now();
    let mut ag = AudioGateway::new(Profile::AndroidLike);
    ag.set_signal(3).unwrap();
    assert_eq!(take(&mut ag), "");
    send(&mut ag, now, "AT+CMER=3,0,0,1");
    ag.set_signal(2).unwrap();
    assert_eq!(take(&mut ag), "\r\n+CIEV: 4,2\r\n");
    ag.set_signal(2).unwrap();
    assert_eq!(take(&mut ag), "");
    send(&mut ag, now, "AT+CMER=3,0,0,0");
    ag.set_roam(true);
    assert_eq!(take(&mut ag), "");
    assert_eq!(
        ag.set_battery(6),
        Err(ActionError::OutOfRange {
            what: "battchg",
            value: 6,
            max: 5
        })
    );
}

#[test]
fn indicator_updates_use_each_profiles_positions() {
    let now = Instant::now();
    for profile in Profile::ALL {
        let mut ag = connect(profile, now);
        ag.set_service(false);
        ag.set_battery(1).unwrap();
        let mut expected = ciev(profile, Indicator::Service, 0);
        if profile != Profile::Minimal {
            expected.push_str(&ciev(profile, Indicator::Battery, 1));
        }
        assert_eq!(take(&mut ag), expected, "{profile}");
    }
}

#[test]
fn bia_deactivates_optional_indicators_only() {
    let now = Instant::now();
    let mut ag = connect(Profile::AndroidLike, now);
    // Try to switch everything off: call, callsetup, callheld stay on.
    assert_eq!(send(&mut ag, now, "AT+BIA=0,0,0,0,0,0,0"), "\r\nOK\r\n");
    ag.set_signal(1).unwrap();
    assert_eq!(take(&mut ag), "");
    ag.incoming_call(now, "5551234", None).unwrap();
    assert!(take(&mut ag).starts_with("\r\n+CIEV: 2,1\r\n"));
    assert_eq!(send(&mut ag, now, "AT+BIA=,,,1"), "\r\nOK\r\n");
    ag.set_signal(4).unwrap();
    assert_eq!(take(&mut ag), "\r\n+CIEV: 4,4\r\n");
}

#[test]
fn incoming_call_rings_until_answered_then_remote_hangup() {
    let t0 = Instant::now();
    for profile in Profile::ALL {
        let mut ag = connect(profile, t0);
        let index = ag.incoming_call(t0, "5551234", Some("Alice")).unwrap();
        assert_eq!(index, 1);
        let ring = "\r\nRING\r\n\r\n+CLIP: \"5551234\",129,,,\"Alice\"\r\n";
        assert_eq!(
            take(&mut ag),
            format!("{}{ring}", ciev(profile, Indicator::CallSetup, 1))
        );
        assert_eq!(ag.poll_timeout(), Some(t0 + RING_INTERVAL));
        ag.handle_timeout(t0 + Duration::from_secs(1));
        assert_eq!(take(&mut ag), "");
        let t1 = t0 + RING_INTERVAL;
        ag.handle_timeout(t1);
        assert_eq!(take(&mut ag), ring);
        assert_eq!(ag.poll_timeout(), Some(t1 + RING_INTERVAL));

        assert_eq!(
            send(&mut ag, t1, "ATA"),
            format!(
                "\r\nOK\r\n{}{}",
                ciev(profile, Indicator::Call, 1),
                ciev(profile, Indicator::CallSetup, 0)
            )
        );
        assert_eq!(events(&mut ag), [AgEvent::CallAnswered]);
        assert_eq!(ag.poll_timeout(), None);
        let clcc = send(&mut ag, t1, "AT+CLCC");
        assert!(clcc.starts_with("\r\n+CLCC: 1,1,0,0,0,\"5551234\",129\r\n"));
        assert_eq!(clcc.ends_with("OK\r\n"), profile != Profile::NoOkAfterClcc);

        ag.remote_hangup().unwrap();
        assert_eq!(take(&mut ag), ciev(profile, Indicator::Call, 0));
        assert!(ag.calls().is_empty());
        assert_eq!(ag.remote_hangup(), Err(ActionError::NoSuchCall));
    }
}

#[test]
fn incoming_call_without_clip_and_rejected() {
    let now = Instant::now();
    let mut ag = AudioGateway::new(Profile::AndroidLike);
    send(&mut ag, now, "AT+CMER=3,0,0,1");
    events(&mut ag);
    ag.incoming_call(now, "+4930123", None).unwrap();
    assert_eq!(take(&mut ag), "\r\n+CIEV: 2,1\r\n\r\nRING\r\n");
    assert_eq!(
        ag.incoming_call(now, "1", None),
        Err(ActionError::CallInProgress)
    );
    send(&mut ag, now, "AT+CLIP=1");
    ag.ring(now).unwrap();
    assert_eq!(take(&mut ag), "\r\nRING\r\n\r\n+CLIP: \"+4930123\",145\r\n");
    assert_eq!(
        send(&mut ag, now, "AT+CHUP"),
        "\r\nOK\r\n\r\n+CIEV: 2,0\r\n"
    );
    assert_eq!(events(&mut ag), [AgEvent::CallHungUp]);
    assert_eq!(ag.poll_timeout(), None);
    assert_eq!(ag.ring(now), Err(ActionError::NoSuchCall));
    assert_eq!(send(&mut ag, now, "ATA"), "\r\nERROR\r\n");
}

#[test]
fn outgoing_call_dialing_alerting_active_hangup() {
    let now = Instant::now();
    for profile in Profile::ALL {
        let mut ag = connect(profile, now);
        assert_eq!(
            send(&mut ag, now, "ATD5551234;"),
            format!("\r\nOK\r\n{}", ciev(profile, Indicator::CallSetup, 2))
        );
        assert_eq!(events(&mut ag), [AgEvent::Dialed("5551234".into())]);
        ag.remote_alerting().unwrap();
        assert_eq!(take(&mut ag), ciev(profile, Indicator::CallSetup, 3));
        assert_eq!(
            send(&mut ag, now, "AT+CLCC"),
            if profile == Profile::NoOkAfterClcc {
                "\r\n+CLCC: 1,0,3,0,0,\"5551234\",129\r\n"
            } else {
                "\r\n+CLCC: 1,0,3,0,0,\"5551234\",129\r\n\r\nOK\r\n"
            }
        );
        ag.remote_answer().unwrap();
        assert_eq!(
            take(&mut ag),
            format!(
                "{}{}",
                ciev(profile, Indicator::Call, 1),
                ciev(profile, Indicator::CallSetup, 0)
            )
        );
        assert_eq!(send(&mut ag, now, "AT+VTS=5"), "\r\nOK\r\n");
        assert_eq!(send(&mut ag, now, "AT+VTS=X"), "\r\nERROR\r\n");
        assert_eq!(
            send(&mut ag, now, "AT+CHUP"),
            format!("\r\nOK\r\n{}", ciev(profile, Indicator::Call, 0))
        );
        assert_eq!(
            events(&mut ag),
            [AgEvent::DtmfSent('5'), AgEvent::CallHungUp]
        );
        assert_eq!(ag.remote_answer(), Err(ActionError::NoSuchCall));
    }
}

#[test]
fn dial_variants_memory_redial_and_errors() {
    let now = Instant::now();
    let mut ag = AudioGateway::new(Profile::AndroidLike);
    assert_eq!(send(&mut ag, now, "AT+BLDN"), "\r\nERROR\r\n");
    assert_eq!(send(&mut ag, now, "ATD>3;"), "\r\nERROR\r\n");
    send(&mut ag, now, "AT+CMEE=1");
    assert_eq!(send(&mut ag, now, "ATD>3;"), "\r\n+CME ERROR: 21\r\n");
    ag.store_memory(3, "5550003").unwrap();
    assert_eq!(send(&mut ag, now, "ATD>3;"), "\r\nOK\r\n");
    assert_eq!(ag.calls()[0].number, "5550003");
    // A second outgoing call while one is being set up is refused.
    assert_eq!(send(&mut ag, now, "ATD123;"), "\r\n+CME ERROR: 3\r\n");
    assert_eq!(send(&mut ag, now, "AT+CHUP"), "\r\nOK\r\n");
    assert_eq!(send(&mut ag, now, "AT+BLDN"), "\r\nOK\r\n");
    assert_eq!(ag.calls()[0].number, "5550003");
    assert_eq!(send(&mut ag, now, "AT+CHUP"), "\r\nOK\r\n");
    assert_eq!(send(&mut ag, now, "ATD;"), "\r\nERROR\r\n");
    assert_eq!(send(&mut ag, now, "ATD12\"3;"), "\r\nERROR\r\n");
    assert_eq!(send(&mut ag, now, "AT+CHUP"), "\r\n+CME ERROR: 3\r\n");
    assert_eq!(
        events(&mut ag),
        [
            AgEvent::MemoryDialed(3),
            AgEvent::CallHungUp,
            AgEvent::Redialed,
            AgEvent::CallHungUp,
        ]
    );
}

#[test]
fn call_waiting_swap_and_release() {
    let now = Instant::now();
    let p = Profile::AndroidLike;
    let mut ag = connect(p, now);
    assert_eq!(ag.call_waiting("1", None), Err(ActionError::NoSuchCall));
    ag.incoming_call(now, "5551111", None).unwrap();
    send(&mut ag, now, "ATA");
    take(&mut ag);
    events(&mut ag);

    assert_eq!(ag.call_waiting("5552222", Some("Bob")), Ok(2));
    assert_eq!(
        take(&mut ag),
        format!(
            "\r\n+CCWA: \"5552222\",129,1\r\n{}",
            ciev(p, Indicator::CallSetup, 1)
        )
    );
    assert_eq!(ag.poll_timeout(), None, "waiting calls do not RING");
    // Hold the active call and accept the waiting one.
    assert_eq!(
        send(&mut ag, now, "AT+CHLD=2"),
        format!(
            "\r\nOK\r\n{}{}",
            ciev(p, Indicator::CallSetup, 0),
            ciev(p, Indicator::CallHeld, 1)
        )
    );
    assert_eq!(
        send(&mut ag, now, "AT+CLCC"),
        "\r\n+CLCC: 1,1,1,0,0,\"5551111\",129\r\n\r\n+CLCC: 2,1,0,0,0,\"5552222\",129\r\n\r\nOK\r\n"
    );
    // Swap back and forth: callheld stays 1, nothing to report.
    assert_eq!(send(&mut ag, now, "AT+CHLD=2"), "\r\nOK\r\n");
    assert_eq!(ag.calls()[0].state, CallState::Active);
    // Conference.
    assert_eq!(
        send(&mut ag, now, "AT+CHLD=3"),
        format!("\r\nOK\r\n{}", ciev(p, Indicator::CallHeld, 0))
    );
    assert!(ag.calls().iter().all(|c| c.multiparty));
    // 1x is not advertised by this phone.
    assert_eq!(send(&mut ag, now, "AT+CHLD=12"), "\r\nERROR\r\n");
    // Release active calls: both go.
    assert_eq!(
        send(&mut ag, now, "AT+CHLD=1"),
        format!("\r\nOK\r\n{}", ciev(p, Indicator::Call, 0))
    );
    assert_eq!(send(&mut ag, now, "AT+CHLD=1"), "\r\n+CME ERROR: 3\r\n");
    assert_eq!(
        events(&mut ag),
        [
            AgEvent::Chld("2".into()),
            AgEvent::Chld("2".into()),
            AgEvent::Chld("3".into()),
            AgEvent::Chld("1".into()),
        ]
    );
}

#[test]
fn iphone_chld_enhanced_call_control() {
    let now = Instant::now();
    let p = Profile::IphoneLike;
    let mut ag = connect(p, now);
    ag.incoming_call(now, "5551111", None).unwrap();
    send(&mut ag, now, "ATA");
    ag.call_waiting("5552222", None).unwrap();
    take(&mut ag);
    // The iPhone does not advertise plain 0.
    assert_eq!(send(&mut ag, now, "AT+CHLD=0"), "\r\nERROR\r\n");
    send(&mut ag, now, "AT+CHLD=2");
    // Release call 1 (held): callheld drops to 0.
    assert_eq!(
        send(&mut ag, now, "AT+CHLD=11"),
        format!("\r\nOK\r\n{}", ciev(p, Indicator::CallHeld, 0))
    );
    assert_eq!(ag.calls().len(), 1);
    assert_eq!(ag.calls()[0].index, 2);
    assert_eq!(send(&mut ag, now, "AT+CHLD=19"), "\r\n+CME ERROR: 3\r\n");
    // A new call takes the lowest free index.
    ag.call_waiting("5553333", None).unwrap();
    assert_eq!(ag.calls()[0].index, 1);
}

#[test]
fn dialing_during_a_call_holds_it() {
    let now = Instant::now();
    let p = Profile::AndroidLike;
    let mut ag = connect(p, now);
    ag.incoming_call(now, "5551111", None).unwrap();
    send(&mut ag, now, "ATA");
    take(&mut ag);
    assert_eq!(
        send(&mut ag, now, "ATD5552222;"),
        format!(
            "\r\nOK\r\n{}{}",
            ciev(p, Indicator::CallSetup, 2),
            ciev(p, Indicator::CallHeld, 2)
        )
    );
    ag.remote_answer().unwrap();
    assert_eq!(
        take(&mut ag),
        format!(
            "{}{}",
            ciev(p, Indicator::CallSetup, 0),
            ciev(p, Indicator::CallHeld, 1)
        )
    );
    // The remote of the active call hangs up: the held call remains.
    ag.remote_hangup().unwrap();
    assert_eq!(take(&mut ag), ciev(p, Indicator::CallHeld, 2));
    assert_eq!(ag.indicator(Indicator::Call), 1);
}

#[test]
fn voice_recognition_both_ways() {
    let now = Instant::now();
    for profile in Profile::ALL {
        let mut ag = connect(profile, now);
        ag.start_voice_recognition().unwrap();
        assert_eq!(take(&mut ag), "\r\n+BVRA: 1\r\n");
        assert!(ag.is_voice_recognition_active());
        assert_eq!(send(&mut ag, now, "AT+BVRA=0"), "\r\nOK\r\n");
        assert_eq!(events(&mut ag), [AgEvent::VoiceRecognition(false)]);
        assert!(!ag.is_voice_recognition_active());
        ag.stop_voice_recognition().unwrap();
        assert_eq!(take(&mut ag), "\r\n+BVRA: 0\r\n");
        assert_eq!(send(&mut ag, now, "AT+BVRA=2"), "\r\nERROR\r\n");
    }
}

#[test]
fn volume_results_per_profile() {
    let now = Instant::now();
    for profile in Profile::ALL {
        let mut ag = connect(profile, now);
        ag.set_speaker_volume(9).unwrap();
        ag.set_mic_volume(4).unwrap();
        let expected = if profile == Profile::VgsEquals {
            "\r\n+VGS=9\r\n\r\n+VGM=4\r\n"
        } else {
            "\r\n+VGS: 9\r\n\r\n+VGM: 4\r\n"
        };
        assert_eq!(take(&mut ag), expected);
        assert_eq!(ag.speaker_volume(), 9);
        assert!(ag.set_speaker_volume(16).is_err());
        assert_eq!(send(&mut ag, now, "AT+VGS=16"), "\r\nERROR\r\n");
    }
}

#[test]
fn codec_switch_to_msbc() {
    let now = Instant::now();
    for profile in [Profile::IphoneLike, Profile::AndroidLike] {
        let mut ag = connect(profile, now);
        ag.codec_switch(CODEC_MSBC).unwrap();
        assert_eq!(take(&mut ag), "\r\n+BCS: 2\r\n");
        assert_eq!(send(&mut ag, now, "AT+BCS=1"), "\r\nERROR\r\n");
        assert_eq!(send(&mut ag, now, "AT+BCS=2"), "\r\nOK\r\n");
        assert_eq!(events(&mut ag), [AgEvent::CodecSelected(CODEC_MSBC)]);
        assert_eq!(ag.selected_codec(), CODEC_MSBC);
        // Nothing pending any more.
        assert_eq!(send(&mut ag, now, "AT+BCS=2"), "\r\nERROR\r\n");
        assert_eq!(
            ag.codec_switch(0x03),
            Err(ActionError::NotEnabledByHf("that codec (not in AT+BAC)"))
        );
    }
}

#[test]
fn codec_connection_requested_by_hf_and_bac_restart() {
    let now = Instant::now();
    let mut ag = connect(Profile::AndroidLike, now);
    assert_eq!(send(&mut ag, now, "AT+BCC"), "\r\nOK\r\n\r\n+BCS: 2\r\n");
    // The HF changes its mind about codecs: negotiation restarts with CVSD.
    assert_eq!(send(&mut ag, now, "AT+BAC=1"), "\r\nOK\r\n\r\n+BCS: 1\r\n");
    assert_eq!(send(&mut ag, now, "AT+BCS=1"), "\r\nOK\r\n");
    assert_eq!(
        events(&mut ag),
        [
            AgEvent::CodecConnectionRequested,
            AgEvent::AvailableCodecs(vec![1]),
            AgEvent::CodecSelected(CODEC_CVSD),
        ]
    );
}

#[test]
fn codec_switch_needs_hf_support() {
    let now = Instant::now();
    let mut ag = AudioGateway::new(Profile::IphoneLike);
    send(&mut ag, now, "AT+BRSF=0");
    assert_eq!(
        ag.codec_switch(CODEC_MSBC),
        Err(ActionError::NotEnabledByHf("codec negotiation"))
    );
    // Without 3-way calling on the HF side, SLC ends at CMER.
    send(&mut ag, now, "AT+CMER=3,0,0,1");
    assert!(ag.is_slc_established());
}

#[test]
fn cops_without_service_and_cnum_without_number() {
    let now = Instant::now();
    let mut ag = AudioGateway::new(Profile::AndroidLike);
    ag.set_service(false);
    ag.set_own_number(None);
    ag.set_operator("Other");
    assert_eq!(send(&mut ag, now, "AT+COPS?"), "\r\n+COPS: 0\r\n\r\nOK\r\n");
    assert_eq!(send(&mut ag, now, "AT+CNUM"), "\r\nOK\r\n");
    ag.set_service(true);
    assert_eq!(
        send(&mut ag, now, "AT+COPS?"),
        "\r\n+COPS: 0,0,\"Other\"\r\n\r\nOK\r\n"
    );
    assert_eq!(send(&mut ag, now, "AT+COPS=0"), "\r\nERROR\r\n");
}

#[test]
fn call_limit_is_enforced() {
    let now = Instant::now();
    let mut ag = connect(Profile::AndroidLike, now);
    ag.incoming_call(now, "1", None).unwrap();
    send(&mut ag, now, "ATA");
    for n in 2..=MAX_CALLS {
        ag.call_waiting(&n.to_string(), None).unwrap();
        send(&mut ag, now, "AT+CHLD=2");
    }
    assert_eq!(ag.calls().len(), MAX_CALLS);
    assert_eq!(ag.call_waiting("8", None), Err(ActionError::TooManyCalls));
    assert_eq!(send(&mut ag, now, "ATD8;"), "\r\n+CME ERROR: 3\r\n");
}
