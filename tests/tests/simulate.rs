//! `--simulate` scenarios end to end, in-process under paused time: the real daemon, the mock
//! Bluetooth radio, the simulated phone and a recording audio sink.

use std::sync::Arc;

use codriver_config::{Config, PairingPolicy};
use codriver_daemon::simulate::{Scenario, Simulation};
use codriver_daemon::tones::Chime;
use codriver_hal::Focus;
use codriver_hal::mock::MockAudioOutput;

fn config(policy: PairingPolicy) -> Config {
    let mut c = Config::default();
    c.pairing.policy = policy;
    c
}

/// Asserts that `wanted` occur in `events` in this order (other events may come between).
fn assert_in_order(events: &[String], wanted: &[&str]) {
    let mut it = events.iter();
    for w in wanted {
        assert!(
            it.any(|e| e.starts_with(w)),
            "missing {w:?} (in order) in events:\n{}",
            events.join("\n")
        );
    }
}

#[tokio::test(start_paused = true)]
async fn pairing_scenario_with_button_confirmation() {
    let out = MockAudioOutput::new();
    out.expect_playback(Focus::Chime, "chime-pairing-open");
    out.expect_playback(Focus::Chime, "chime-pairing-request");
    out.expect_playback(Focus::Chime, "chime-paired");
    let sim = Simulation::new(config(PairingPolicy::Button), Arc::new(out.clone()));
    let report = sim
        .run(Some(Scenario::Pairing), std::future::pending())
        .await
        .unwrap();
    assert_in_order(
        &report.events,
        &[
            "adapter-ready",
            "pairing-window-opened 120s",
            "ready",
            "pairing-requested 00:11:22:33:44:55 482913",
            "pairing-accepted 00:11:22:33:44:55 by button",
            "action confirm-pairing",
            "phone-paired 00:11:22:33:44:55 Simulated Phone",
            "pairing-window-closed paired",
            "profile-connected 00:11:22:33:44:55 hands-free",
            "telephony 00:11:22:33:44:55 slc-connected",
            "hands-free-ready 00:11:22:33:44:55",
            "shutting-down",
        ],
    );
    // The chimes' samples reached the sink, whole.
    let paired = out
        .playbacks()
        .into_iter()
        .find(|p| p.label == "chime-paired")
        .unwrap();
    assert_eq!(paired.samples.len(), Chime::Paired.render().len());
    assert!(paired.samples.iter().any(|&s| s != 0));
    out.done();
}

#[tokio::test(start_paused = true)]
async fn pairing_scenario_approved_over_the_api_under_dbus_policy() {
    let out = MockAudioOutput::new();
    let sim = Simulation::new(config(PairingPolicy::Dbus), Arc::new(out));
    let report = sim
        .run(Some(Scenario::Pairing), std::future::pending())
        .await
        .unwrap();
    assert_in_order(
        &report.events,
        &[
            "pairing-requested",
            "pairing-accepted 00:11:22:33:44:55 by dbus",
            "hands-free-ready",
        ],
    );
}

#[tokio::test(start_paused = true)]
async fn pairing_scenario_allowlisted_phone_needs_no_confirmation() {
    let mut c = config(PairingPolicy::Allowlist);
    c.pairing.allowlist = vec!["00:11:22:33:44:55".parse().unwrap()];
    let sim = Simulation::new(c, Arc::new(MockAudioOutput::new()));
    let report = sim
        .run(Some(Scenario::Pairing), std::future::pending())
        .await
        .unwrap();
    assert!(
        !report
            .events
            .iter()
            .any(|e| e.starts_with("pairing-requested"))
    );
    assert_in_order(
        &report.events,
        &[
            "pairing-accepted 00:11:22:33:44:55 by allowlist",
            "hands-free-ready",
        ],
    );
}

#[tokio::test(start_paused = true)]
async fn pairing_scenario_fails_with_the_reason_when_the_phone_is_not_allowlisted() {
    let mut c = config(PairingPolicy::Allowlist);
    c.pairing.allowlist = vec!["AA:AA:AA:AA:AA:AA".parse().unwrap()];
    let sim = Simulation::new(c, Arc::new(MockAudioOutput::new()));
    let err = sim
        .run(Some(Scenario::Pairing), std::future::pending())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("pair") && text.contains("rejected"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn incoming_call_scenario_rings_answers_and_hangs_up_with_the_button() {
    let out = MockAudioOutput::new();
    out.expect_playback(Focus::Call, "ringtone");
    let sim = Simulation::new(config(PairingPolicy::ButtonOrDbus), Arc::new(out.clone()));
    let report = sim
        .run(Some(Scenario::IncomingCall), std::future::pending())
        .await
        .unwrap();
    assert_in_order(
        &report.events,
        &[
            "hands-free-ready",
            "telephony 00:11:22:33:44:55 ring",
            "action answer",
            "telephony 00:11:22:33:44:55 call 1 active +15550100",
            "action hangup",
            "telephony 00:11:22:33:44:55 call 1 ended +15550100",
        ],
    );
    assert!(
        report
            .events
            .iter()
            .any(|e| e == "telephony 00:11:22:33:44:55 call 1 incoming +15550100")
    );
    out.done();
}

#[tokio::test(start_paused = true)]
async fn every_phone_profile_completes_the_incoming_call_scenario() {
    use codriver_config::SimulationProfile;
    for profile in SimulationProfile::ALL {
        let mut c = config(PairingPolicy::Button);
        c.simulation.profile = *profile;
        let sim = Simulation::new(c, Arc::new(MockAudioOutput::new()));
        sim.run(Some(Scenario::IncomingCall), std::future::pending())
            .await
            .unwrap_or_else(|e| panic!("{profile}: {e}"));
    }
}

#[tokio::test(start_paused = true)]
async fn call_audio_scenario_flows_both_ways_over_mock_sco() {
    let out = MockAudioOutput::new();
    let sim = Simulation::new(config(PairingPolicy::Button), Arc::new(out.clone()));
    let report = sim
        .run(Some(Scenario::CallAudio), std::future::pending())
        .await
        .unwrap();
    assert_in_order(
        &report.events,
        &[
            "hands-free-ready",
            "telephony 00:11:22:33:44:55 codec msbc",
            // In-band ringing: the audio connection comes before RING.
            "call-audio-started 00:11:22:33:44:55 mSBC",
            "telephony 00:11:22:33:44:55 ring",
            "telephony 00:11:22:33:44:55 call 1 active",
            "call-audio-ended 00:11:22:33:44:55",
        ],
    );
    // The phone's ringtone came through call audio: no local ringtone over it.
    let labels: Vec<String> = out.playbacks().into_iter().map(|p| p.label).collect();
    assert!(
        !labels.iter().any(|l| l == "ringtone"),
        "local ringtone played during in-band ringing: {labels:?}"
    );
    // The phone's 1 kHz caller reached the car's speakers, under the call's focus.
    let call: Vec<i16> = out
        .playbacks()
        .into_iter()
        .filter(|p| p.focus == Focus::Call && p.label == "call audio")
        .flat_map(|p| p.samples)
        .collect();
    assert!(
        call.len() >= 16_000 * 27 / 10,
        "{} samples played",
        call.len()
    );
    let rms = (call.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / call.len() as f64).sqrt();
    assert!(rms > 1_000.0, "call audio RMS {rms}");
}
