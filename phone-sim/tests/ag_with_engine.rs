//! The simulated phone ([`AudioGateway`]) against the real HF engine
//! ([`codriver_hfp::HandsFree`]), connected by an in-memory byte pump on a virtual clock.
//!
//! Every scenario runs for every [`Profile`]; assertions are on the engine's canonical
//! event lines (`call 1 incoming 5551234`) and on what the phone saw the car do.

use std::time::{Duration, Instant};

use codriver_hfp::{Chld, HandsFree, HfConfig};
use codriver_phone_sim::ag::{
    ActionError, AgEvent, AudioGateway, CODEC_MSBC, CallState, Profile, features,
};

/// Upper bound on virtual-clock jumps in one [`Link::settle`], so a bug that keeps
/// re-arming a timer fails the test instead of hanging it.
const MAX_TIMEOUT_STEPS: usize = 32;

/// One phone, one car, and the bytes between them.
struct Link {
    profile: Profile,
    ag: AudioGateway,
    hf: HandsFree,
    now: Instant,
    /// Engine events as canonical lines, since the last [`Link::take_hf`].
    hf_events: Vec<String>,
    /// Phone events since the last [`Link::take_ag`].
    ag_events: Vec<AgEvent>,
}

impl Link {
    /// Connects and runs the service level connection to completion.
    fn connect(profile: Profile) -> Self {
        let now = Instant::now();
        let mut link = Self {
            profile,
            ag: AudioGateway::new(profile),
            hf: HandsFree::new(HfConfig::default()),
            now,
            hf_events: Vec::new(),
            ag_events: Vec::new(),
        };
        link.hf.start(now);
        link.settle();
        link
    }

    /// Moves bytes both ways until neither side has anything to send.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(bytes) = self.hf.poll_transmit() {
                self.ag.handle_input(self.now, &bytes);
                moved = true;
            }
            while let Some(bytes) = self.ag.poll_transmit() {
                self.hf.handle_input(self.now, &bytes);
                moved = true;
            }
            if !moved {
                break;
            }
        }
        while let Some(event) = self.hf.poll_event() {
            self.hf_events.push(event.to_string());
        }
        while let Some(event) = self.ag.poll_event() {
            self.ag_events.push(event);
        }
    }

    /// Pumps, then lets the engine's command timer expire (jumping the virtual clock)
    /// as long as it has a command in flight that the phone will never answer.
    fn settle(&mut self) {
        self.pump();
        for _ in 0..MAX_TIMEOUT_STEPS {
            let Some(deadline) = self.hf.poll_timeout() else {
                return;
            };
            self.now = self.now.max(deadline);
            self.hf.handle_timeout(self.now);
            self.ag.handle_timeout(self.now);
            self.pump();
        }
        panic!("engine timer still armed after {MAX_TIMEOUT_STEPS} steps");
    }

    fn take_hf(&mut self) -> Vec<String> {
        std::mem::take(&mut self.hf_events)
    }

    fn take_ag(&mut self) -> Vec<AgEvent> {
        std::mem::take(&mut self.ag_events)
    }

    /// Asserts the engine reported `line` since the last take, and drains its events.
    #[track_caller]
    fn expect_hf(&mut self, lines: &[&str]) {
        let seen = self.take_hf();
        for line in lines {
            assert!(
                seen.iter().any(|s| s == line),
                "[{}] engine did not report `{line}`; it reported:\n{}",
                self.profile,
                seen.join("\n")
            );
        }
    }

    /// Asserts the phone saw `event` since the last take, and drains its events.
    #[track_caller]
    fn expect_ag(&mut self, events: &[AgEvent]) {
        let seen = self.take_ag();
        for event in events {
            assert!(
                seen.contains(event),
                "[{}] phone did not see {event:?}; it saw {seen:?}",
                self.profile
            );
        }
    }

    /// Rings an incoming call and has the car answer it.
    fn establish_incoming(&mut self, number: &str) {
        if let Err(e) = self.ag.incoming_call(self.now, number, None) {
            panic!("[{}] incoming call refused: {e}", self.profile);
        }
        self.settle();
        self.expect_hf(&[&format!("call 1 incoming {number}")]);
        if let Err(e) = self.hf.answer(self.now) {
            panic!("[{}] engine refused to answer: {e}", self.profile);
        }
        self.settle();
        self.expect_ag(&[AgEvent::CallAnswered]);
        self.expect_hf(&[&format!("call 1 active {number}")]);
    }
}

#[test]
fn slc_completes_for_every_profile() {
    for profile in Profile::ALL {
        let mut link = Link::connect(profile);
        assert!(link.ag.is_slc_established(), "[{profile}] phone side");
        assert!(link.hf.is_connected(), "[{profile}] car side");
        let hf = link.take_hf();
        assert!(
            hf.iter().any(|l| l.starts_with("slc-connected")),
            "[{profile}] {hf:?}"
        );
        assert!(
            !hf.iter().any(|l| l.starts_with("slc-failed")
                || l.starts_with("protocol-violation")
                || l.starts_with("unsolicited")
                || l.starts_with("error ")),
            "[{profile}] {hf:?}"
        );
        let ag = link.take_ag();
        assert!(ag.contains(&AgEvent::SlcEstablished), "[{profile}] {ag:?}");
        assert!(
            !ag.iter()
                .any(|e| matches!(e, AgEvent::UnknownCommand(_) | AgEvent::InputOverflow)),
            "[{profile}] the engine sent something the phone did not understand: {ag:?}"
        );
        // Indicators are matched by name whatever the profile's order.
        assert_eq!(link.hf.indicator("service"), Some(1), "[{profile}]");
        assert_eq!(link.hf.indicator("call"), Some(0), "[{profile}]");
    }
}

#[test]
fn incoming_call_ring_answer_remote_hangup() {
    for profile in Profile::ALL {
        let mut link = Link::connect(profile);
        link.take_hf();
        link.ag
            .incoming_call(link.now, "5551234", Some("Alice"))
            .unwrap();
        link.settle();
        // `RING` precedes `+CLIP` on the wire, and the engine reports the first ring
        // as soon as it sees `RING`, before it learns the number (`ring -`).
        let hf = link.take_hf();
        assert!(
            hf.iter().any(|l| l == "call 1 incoming 5551234"),
            "[{profile}] {hf:?}"
        );
        assert!(
            hf.iter().any(|l| l.starts_with("ring ")),
            "[{profile}] {hf:?}"
        );

        // The phone keeps ringing until answered.
        link.now += Duration::from_secs(3);
        link.ag.handle_timeout(link.now);
        link.settle();
        link.expect_hf(&["ring 5551234"]);

        link.hf.answer(link.now).unwrap();
        link.settle();
        link.expect_ag(&[AgEvent::CallAnswered]);
        link.expect_hf(&["call 1 active 5551234"]);
        assert_eq!(link.ag.poll_timeout(), None, "[{profile}] ringing stopped");

        link.ag.remote_hangup().unwrap();
        link.settle();
        link.expect_hf(&["call 1 ended 5551234"]);
        assert!(
            link.hf.calls().is_empty(),
            "[{profile}] {:?}",
            link.hf.calls()
        );
    }
}

#[test]
fn outgoing_call_dial_alerting_active_local_hangup() {
    for profile in Profile::ALL {
        let mut link = Link::connect(profile);
        link.take_hf();
        link.hf.dial(link.now, "5557777").unwrap();
        link.settle();
        link.expect_ag(&[AgEvent::Dialed("5557777".into())]);
        link.expect_hf(&["call 1 dialing 5557777"]);

        link.ag.remote_alerting().unwrap();
        link.settle();
        link.expect_hf(&["call 1 alerting 5557777"]);

        link.ag.remote_answer().unwrap();
        link.settle();
        link.expect_hf(&["call 1 active 5557777"]);

        link.hf.hangup(link.now).unwrap();
        link.settle();
        link.expect_ag(&[AgEvent::CallHungUp]);
        link.expect_hf(&["call 1 ended 5557777"]);
        assert!(link.ag.calls().is_empty());
    }
}

#[test]
fn call_waiting_then_hold_and_accept() {
    for profile in Profile::ALL {
        let mut link = Link::connect(profile);
        link.take_hf();
        link.establish_incoming("5551111");
        link.ag.call_waiting("5552222", None).unwrap();
        link.settle();
        if !profile.supports(features::THREE_WAY_CALLING) {
            // Minimal: no +CCWA (the car cannot have enabled three-way calling), but the
            // callsetup indicator still shows a call coming in.
            assert_eq!(link.hf.indicator("callsetup"), Some(1), "[{profile}]");
            continue;
        }
        link.expect_hf(&["call 2 waiting 5552222"]);

        link.hf.hold(link.now, Chld::HoldActiveAcceptOther).unwrap();
        link.settle();
        link.expect_ag(&[AgEvent::Chld("2".into())]);
        link.expect_hf(&["call 1 held 5551111", "call 2 active 5552222"]);
        let states: Vec<_> = link.ag.calls().iter().map(|c| c.state).collect();
        assert_eq!(states, [CallState::Held, CallState::Active], "[{profile}]");
    }
}

#[test]
fn voice_recognition_started_on_the_phone() {
    for profile in Profile::ALL {
        let mut link = Link::connect(profile);
        link.take_hf();
        link.ag.start_voice_recognition().unwrap();
        link.settle();
        link.expect_hf(&["voice-recognition on"]);
        link.ag.stop_voice_recognition().unwrap();
        link.settle();
        link.expect_hf(&["voice-recognition off"]);

        // And from the car.
        link.hf.set_voice_recognition(link.now, true).unwrap();
        link.settle();
        link.expect_ag(&[AgEvent::VoiceRecognition(true)]);
        assert!(link.ag.is_voice_recognition_active());
    }
}

#[test]
fn codec_switch_to_msbc_where_supported() {
    for profile in Profile::ALL {
        let mut link = Link::connect(profile);
        link.take_hf();
        let result = link.ag.codec_switch(CODEC_MSBC);
        if !profile.supports(features::CODEC_NEGOTIATION) {
            assert!(
                matches!(result, Err(ActionError::NotSupported { .. })),
                "[{profile}] {result:?}"
            );
            continue;
        }
        result.unwrap();
        link.settle();
        link.expect_ag(&[AgEvent::CodecSelected(CODEC_MSBC)]);
        link.expect_hf(&["codec msbc"]);
        assert_eq!(link.ag.selected_codec(), CODEC_MSBC);
    }
}

#[test]
fn volume_from_the_phone_in_either_notation() {
    for profile in Profile::ALL {
        let mut link = Link::connect(profile);
        link.take_hf();
        link.ag.set_speaker_volume(9).unwrap();
        link.settle();
        link.expect_hf(&["volume speaker 9"]);

        link.hf.set_speaker_volume(link.now, 4).unwrap();
        link.settle();
        link.expect_ag(&[AgEvent::SpeakerVolume(4)]);
    }
}

#[test]
fn missing_ok_after_clcc_times_out_and_link_stays_usable() {
    let mut link = Link::connect(Profile::NoOkAfterClcc);
    link.establish_incoming("5551234");
    let start = link.now;
    link.hf.query_calls(link.now).unwrap();
    // Pump only: the phone answered +CLCC without OK, so the command hangs...
    link.pump();
    assert!(
        link.hf.poll_timeout().is_some(),
        "the engine waits for the missing OK"
    );
    // ...until the virtual clock reaches the engine's command timeout.
    link.settle();
    assert!(link.now > start, "the clock had to jump");
    assert!(link.hf.poll_timeout().is_none());

    // The link still works afterwards: volume, DTMF and hangup go through.
    link.take_hf();
    link.hf.set_speaker_volume(link.now, 6).unwrap();
    link.settle();
    link.expect_ag(&[AgEvent::SpeakerVolume(6)]);
    link.hf.send_dtmf(link.now, '7').unwrap();
    link.settle();
    link.expect_ag(&[AgEvent::DtmfSent('7')]);
    link.hf.hangup(link.now).unwrap();
    link.settle();
    link.expect_ag(&[AgEvent::CallHungUp]);
    link.expect_hf(&["call 1 ended 5551234"]);
}

#[test]
fn fragmented_delivery_gives_the_same_slc() {
    // The pump above delivers whole writes; here every byte travels on its own.
    for profile in Profile::ALL {
        let now = Instant::now();
        let mut ag = AudioGateway::new(profile);
        let mut hf = HandsFree::new(HfConfig::default());
        hf.start(now);
        for _ in 0..64 {
            let mut moved = false;
            while let Some(bytes) = hf.poll_transmit() {
                for b in bytes {
                    ag.handle_input(now, &[b]);
                }
                moved = true;
            }
            while let Some(bytes) = ag.poll_transmit() {
                for b in bytes {
                    hf.handle_input(now, &[b]);
                }
                moved = true;
            }
            if !moved {
                break;
            }
        }
        assert!(ag.is_slc_established(), "[{profile}]");
        assert!(hf.is_connected(), "[{profile}]");
    }
}
