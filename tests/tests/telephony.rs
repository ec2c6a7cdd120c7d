//! Calls end to end: the daemon's HFP driver and engine against the simulated phone's Audio
//! Gateway, driven by the steering-wheel button and the API, under paused time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use codriver_config::Config;
use codriver_daemon::events::{CallAction, Command};
use codriver_phone_sim::AgCommand;
use codriver_phone_sim::ag::{AgEvent, Profile};
use codriver_tests::{PHONE, Rig, STEP};

async fn phone_did(
    link: &mut codriver_phone_sim::AgLink,
    what: &str,
    want: impl Fn(&AgEvent) -> bool,
) {
    link.wait_for(what, STEP, want).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn known_phone_is_reconnected_at_boot() {
    let (rig, _link) = Rig::boot_paired(Config::default(), Profile::IphoneLike).await;
    // No pairing window: a phone is already paired.
    assert!(!rig.host.is_pairable());
    rig.audio.wait_finished(2).await;
    let labels: Vec<String> = rig.audio.playbacks().into_iter().map(|p| p.label).collect();
    assert!(labels.contains(&"chime-connected".to_owned()), "{labels:?}");
    assert!(
        !labels.contains(&"chime-pairing-open".to_owned()),
        "{labels:?}"
    );
    rig.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn incoming_call_answered_by_button_then_far_end_hangs_up() {
    let (mut rig, mut link) = Rig::boot_paired(Config::default(), Profile::AndroidLike).await;
    link.command(AgCommand::IncomingCall {
        number: "+15550100".into(),
        name: None,
    })
    .await
    .unwrap();
    rig.telephony("call 1 incoming +15550100").await;
    rig.press().await;
    phone_did(&mut link, "ATA", |e| *e == AgEvent::CallAnswered).await;
    rig.telephony("call 1 active +15550100").await;
    link.command(AgCommand::RemoteHangup).await.unwrap();
    rig.telephony("call 1 ended +15550100").await;
    rig.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn ringing_call_rejected_with_a_long_press() {
    let (mut rig, mut link) = Rig::boot_paired(Config::default(), Profile::IphoneLike).await;
    link.command(AgCommand::IncomingCall {
        number: "+15550111".into(),
        name: None,
    })
    .await
    .unwrap();
    rig.telephony("ring").await;
    rig.long_press().await;
    rig.wait("action reject").await;
    phone_did(&mut link, "AT+CHUP", |e| *e == AgEvent::CallHungUp).await;
    rig.telephony("call 1 ended").await;
    rig.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn outgoing_call_from_the_api_then_hung_up_by_button() {
    let (mut rig, mut link) = Rig::boot_paired(Config::default(), Profile::AndroidLike).await;
    rig.handle
        .request(|r| Command::Call(CallAction::Dial("+15550123".into()), r))
        .await
        .unwrap();
    phone_did(&mut link, "ATD", |e| {
        *e == AgEvent::Dialed("+15550123".into())
    })
    .await;
    rig.telephony("call 1 dialing").await;
    link.command(AgCommand::RemoteAnswer).await.unwrap();
    rig.telephony("call 1 active +15550123").await;
    rig.press().await;
    rig.wait("action hangup").await;
    phone_did(&mut link, "AT+CHUP", |e| *e == AgEvent::CallHungUp).await;
    rig.telephony("call 1 ended").await;
    rig.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn call_waiting_answered_holds_the_first_call() {
    let (mut rig, mut link) = Rig::boot_paired(Config::default(), Profile::AndroidLike).await;
    link.command(AgCommand::IncomingCall {
        number: "+15550100".into(),
        name: None,
    })
    .await
    .unwrap();
    rig.telephony("ring").await;
    rig.press().await;
    rig.telephony("call 1 active").await;
    link.command(AgCommand::CallWaiting {
        number: "+15550199".into(),
    })
    .await
    .unwrap();
    rig.telephony("call 2 waiting +15550199").await;
    // Short press with a call waiting: hold the active call and take the waiting one.
    rig.press().await;
    phone_did(&mut link, "AT+CHLD=2", |e| *e == AgEvent::Chld("2".into())).await;
    rig.telephony("call 1 held").await;
    rig.telephony("call 2 active +15550199").await;
    rig.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn call_waiting_rejected_keeps_the_active_call() {
    let (mut rig, mut link) = Rig::boot_paired(Config::default(), Profile::AndroidLike).await;
    link.command(AgCommand::IncomingCall {
        number: "+15550100".into(),
        name: None,
    })
    .await
    .unwrap();
    rig.telephony("ring").await;
    rig.press().await;
    rig.telephony("call 1 active").await;
    link.command(AgCommand::CallWaiting {
        number: "+15550199".into(),
    })
    .await
    .unwrap();
    rig.telephony("call 2 waiting").await;
    rig.long_press().await;
    phone_did(&mut link, "AT+CHLD=0", |e| *e == AgEvent::Chld("0".into())).await;
    rig.telephony("call 2 ended").await;
    assert!(
        !link_hung_up_active(&mut link).await,
        "the active call stays"
    );
    rig.shutdown().await;
}

async fn link_hung_up_active(link: &mut codriver_phone_sim::AgLink) -> bool {
    link.wait_for("AT+CHUP", Duration::from_secs(2), |e| {
        *e == AgEvent::CallHungUp
    })
    .await
    .is_ok()
}

#[tokio::test(start_paused = true)]
async fn voice_assistant_from_the_phone_and_from_the_button() {
    let (mut rig, link) = Rig::boot_paired(Config::default(), Profile::IphoneLike).await;
    link.command(AgCommand::StartVoiceRecognition)
        .await
        .unwrap();
    rig.telephony("voice-recognition on").await;
    // Idle short press asks the phone for its assistant (AT+BVRA=1).
    let (mut rig2, mut link2) = Rig::boot_paired(Config::default(), Profile::AndroidLike).await;
    rig2.press().await;
    phone_did(&mut link2, "AT+BVRA=1", |e| {
        *e == AgEvent::VoiceRecognition(true)
    })
    .await;
    rig2.telephony("voice-recognition on").await;
    rig.shutdown().await;
    rig2.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn codec_switch_to_msbc() {
    let (mut rig, mut link) = Rig::boot_paired(Config::default(), Profile::IphoneLike).await;
    link.command(AgCommand::CodecSwitch(2)).await.unwrap();
    phone_did(&mut link, "AT+BCS=2", |e| *e == AgEvent::CodecSelected(2)).await;
    rig.telephony("codec msbc").await;
    rig.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn phone_vanishing_mid_call_is_reconnected_with_backoff() {
    let (mut rig, link) = Rig::boot_paired(Config::default(), Profile::AndroidLike).await;
    link.command(AgCommand::IncomingCall {
        number: "+15550100".into(),
        name: None,
    })
    .await
    .unwrap();
    rig.telephony("ring").await;
    rig.press().await;
    rig.telephony("call 1 active").await;

    let lost_at = tokio::time::Instant::now();
    rig.phone.vanish().await;
    drop(link);
    rig.wait(&format!("phone-disconnected {PHONE}")).await;
    // The phone comes back 10 s later; the daemon finds it on a backoff retry.
    tokio::time::sleep(Duration::from_secs(10)).await;
    rig.phone.appear().await;
    let _link = tokio::time::timeout(STEP, rig.phone.accept_hands_free())
        .await
        .expect("reconnected")
        .expect("in range");
    rig.wait("hands-free-ready").await;
    let took = lost_at.elapsed();
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(40),
        "{took:?}"
    );
    let attempts = rig
        .host
        .calls()
        .into_iter()
        .filter(|c| matches!(c, codriver_hal::mock::BluetoothCall::ConnectProfile(..)))
        .count();
    // One at boot, then a few capped-exponential retries (2 s, 4 s, 8 s … with jitter).
    assert!((3..=6).contains(&attempts), "{attempts} connect attempts");
    rig.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_caller_is_announced_once_however_often_the_phone_rings() {
    let (mut rig, mut link) = Rig::boot_paired(Config::default(), Profile::AndroidLike).await;
    let mut events = rig.handle.subscribe();
    link.command(AgCommand::IncomingCall {
        number: "+15550100".into(),
        name: Some("Alice".into()),
    })
    .await
    .unwrap();
    rig.wait(&format!("caller-announced {PHONE} Call from Alice"))
        .await;
    // The phone keeps ringing for half a minute before the driver answers.
    tokio::time::sleep(Duration::from_secs(30)).await;
    rig.press().await;
    phone_did(&mut link, "ATA", |e| *e == AgEvent::CallAnswered).await;
    rig.telephony("call 1 active").await;
    let mut rings = 0;
    let mut announcements = 0;
    while let Ok(e) = events.try_recv() {
        let line = e.to_string();
        rings += usize::from(line.starts_with(&format!("telephony {PHONE} ring")));
        announcements += usize::from(line.starts_with("caller-announced"));
    }
    assert!(rings >= 5, "{rings} rings");
    assert_eq!(announcements, 1);
    rig.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn callers_are_not_announced_when_switched_off() {
    let mut config = Config::default();
    config.hfp.announce_caller = false;
    let (mut rig, link) = Rig::boot_paired(config, Profile::AndroidLike).await;
    let mut events = rig.handle.subscribe();
    link.command(AgCommand::IncomingCall {
        number: "+15550100".into(),
        name: Some("Alice".into()),
    })
    .await
    .unwrap();
    rig.telephony("ring +15550100").await;
    rig.press().await;
    rig.telephony("call 1 active").await;
    while let Ok(e) = events.try_recv() {
        assert!(!e.to_string().starts_with("caller-announced"), "{e}");
    }
    rig.shutdown().await;
}
