//! The companion protocol over the Bluetooth transports, end to end with the mock HAL: a
//! phone-sim `CompanionPhone` on the simulated radio's companion RFCOMM channel and LE L2CAP
//! channel, handed by the link manager to the messages service; refused for a device that
//! did not pair through codriver's policy; the LE advertisement follows the pairing state.
//! Real time (the spool fsyncs on the blocking pool); every wait has an upper bound and none
//! sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use codriver_companion::Event;
use codriver_config::Config;
use codriver_daemon::events::Command;
use codriver_hal::mock::{BluetoothCall, MockBluetooth};
use codriver_hal::{Address, DeviceInfo, ProfileKind};
use codriver_phone_sim::ag::Profile;
use codriver_phone_sim::companion::{CompanionPhone, fixture_pcm, voice_message};
use codriver_tests::{PHONE, Rig};
use tokio::io::{AsyncReadExt, DuplexStream};

const WITHIN: Duration = Duration::from_secs(30);

/// A phone that paired with another program (not through codriver's agent).
const STRANGER: Address = Address::new([0x00, 0x66, 0x77, 0x88, 0x99, 0xAA]);

fn config(spool: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.messages.spool_directory = spool.to_owned();
    // No speech program: the chime-only fallback.
    config.messages.tts_command = "/nonexistent/espeak-ng".into();
    config
}

/// Sends one voice message over `stream` and waits for the car's delivery ack.
async fn deliver_one(stream: DuplexStream, id: &str) -> CompanionPhone<DuplexStream> {
    let mut phone = CompanionPhone::new(stream, "Test Phone");
    phone.handshake(WITHIN).await.unwrap();
    phone
        .send_voice(voice_message(id, "Alice", 300), fixture_pcm(300))
        .await
        .unwrap();
    phone
        .wait_for(
            id,
            WITHIN,
            |e| matches!(e, Event::Delivered { id: i } if i == id),
        )
        .await
        .unwrap();
    phone
}

fn stored(spool: &std::path::Path) -> usize {
    ["new", "cur"]
        .iter()
        .map(|d| std::fs::read_dir(spool.join(d)).map_or(0, |r| r.count()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_message_over_companion_rfcomm_is_stored_and_acked() {
    let spool = tempfile::tempdir().unwrap();
    let (mut rig, _hfp) = Rig::boot_paired(config(spool.path()), Profile::AndroidLike).await;
    assert!(
        rig.host
            .registered_profiles()
            .contains(&ProfileKind::Companion)
    );
    let stream = rig
        .host
        .radio()
        .connect(PHONE, ProfileKind::Companion)
        .await
        .unwrap();
    rig.wait(&format!("profile-connected {PHONE} companion"))
        .await;
    let _phone = deliver_one(stream, "m-rfcomm").await;
    rig.wait("message-received m-rfcomm voice Alice").await;
    assert_eq!(stored(spool.path()), 1);
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_message_over_companion_le_l2cap_is_stored_and_acked() {
    let spool = tempfile::tempdir().unwrap();
    let (mut rig, _hfp) = Rig::boot_paired(config(spool.path()), Profile::IphoneLike).await;
    assert!(rig.host.companion_le_listening());
    // A paired, trusted phone is expected back: the car advertises the service.
    assert!(rig.host.is_advertising_companion());
    let stream = rig.host.radio().connect_companion_le(PHONE).await.unwrap();
    rig.wait(&format!("profile-connected {PHONE} companion"))
        .await;
    let _phone = deliver_one(stream, "m-le").await;
    rig.wait("message-received m-le voice Alice").await;
    assert_eq!(stored(spool.path()), 1);
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn companion_from_a_device_paired_behind_codrivers_back_is_refused() {
    let spool = tempfile::tempdir().unwrap();
    let host = MockBluetooth::new();
    // Bonded (another agent, bluetoothctl) but never trusted by codriver.
    host.add_known_device(DeviceInfo {
        address: STRANGER,
        name: Some("Stranger".into()),
        paired: true,
        trusted: false,
        connected: false,
    });
    let mut rig = Rig::boot(config(spool.path()), host, Profile::AndroidLike);
    rig.wait("ready").await;
    // A bond codriver did not make is not "a phone expected back": no advertising for it.
    assert!(!rig.host.is_advertising_companion());
    rig.handle
        .request(Command::OpenPairingWindow)
        .await
        .unwrap();
    let radio = rig.host.radio();
    let _incoming = radio.appear(STRANGER, "Stranger").await;
    for le in [false, true] {
        let mut stream = if le {
            // The window is open, so the car advertises.
            radio.connect_companion_le(STRANGER).await.unwrap()
        } else {
            radio
                .connect(STRANGER, ProfileKind::Companion)
                .await
                .unwrap()
        };
        rig.wait(&format!("connection-refused {STRANGER} companion"))
            .await;
        // The car closed the channel without a word.
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(WITHIN, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 0, "closed, le={le}");
    }
    assert_eq!(stored(spool.path()), 0);
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn companion_le_advertising_follows_the_window_and_the_paired_phones() {
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = config(spool.path());
    cfg.pairing.open_at_first_boot = false;
    let mut rig = Rig::boot(cfg, MockBluetooth::new(), Profile::AndroidLike);
    rig.wait("ready").await;
    // No phone paired, window closed: silent on LE, and no LE link can be made.
    assert!(!rig.host.is_advertising_companion());
    rig.phone.appear().await;
    assert!(rig.host.radio().connect_companion_le(PHONE).await.is_err());

    rig.handle
        .request(Command::OpenPairingWindow)
        .await
        .unwrap();
    rig.wait("pairing-window-opened").await;
    assert!(rig.host.is_advertising_companion());
    rig.handle
        .request(Command::ClosePairingWindow)
        .await
        .unwrap();
    rig.wait("pairing-window-closed").await;
    assert!(!rig.host.is_advertising_companion());
    assert!(
        rig.host
            .calls()
            .contains(&BluetoothCall::SetCompanionAdvertising(true))
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn companion_transports_come_back_after_a_bluetoothd_restart() {
    let spool = tempfile::tempdir().unwrap();
    let (mut rig, hfp) = Rig::boot_paired(config(spool.path()), Profile::IphoneLike).await;
    rig.host.vanish_service().await;
    drop(hfp);
    rig.wait("bluetooth-lost").await;
    assert!(!rig.host.companion_le_listening());
    assert!(!rig.host.is_advertising_companion());

    rig.host.restore_service().await;
    rig.wait("bluetooth-restored").await;
    assert!(
        rig.host
            .registered_profiles()
            .contains(&ProfileKind::Companion)
    );
    assert!(rig.host.companion_le_listening());
    assert!(rig.host.is_advertising_companion());
    let stream = rig.host.radio().connect_companion_le(PHONE).await.unwrap();
    let _phone = deliver_one(stream, "m-after-restart").await;
    rig.wait("message-received m-after-restart").await;
    rig.shutdown().await;
}
