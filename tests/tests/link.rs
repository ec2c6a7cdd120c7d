//! The link manager against the mock HAL under paused time: bluetoothd vanishing and
//! returning, a profile UUID owned by another program, stopping reconnects on request, and
//! the backoff of both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use codriver_config::Config;
use codriver_daemon::events::Command;
use codriver_daemon::{Daemon, DaemonError};
use codriver_hal::mock::{BluetoothCall, MockAudioInput, MockAudioOutput, MockBluetooth};
use codriver_hal::{BluetoothError, DeviceInfo, Hal, ProfileKind};
use codriver_phone_sim::ag::Profile;
use codriver_tests::{PHONE, Rig, STEP, host_with_paired_phone};

fn connect_attempts(host: &MockBluetooth) -> usize {
    host.calls()
        .into_iter()
        .filter(|c| matches!(c, BluetoothCall::ConnectProfile(..)))
        .count()
}

#[tokio::test(start_paused = true)]
async fn bluetoothd_vanishing_and_returning_is_recovered_without_a_restart() {
    let (mut rig, link) = Rig::boot_paired(Config::default(), Profile::AndroidLike).await;
    assert!(rig.host.agent_registered());

    rig.host.vanish_service().await;
    drop(link);
    rig.wait("bluetooth-lost").await;
    assert!(!rig.host.agent_registered());
    assert!(rig.host.registered_profiles().is_empty());
    // Nothing is attempted while bluetoothd is away, however long that is.
    let attempts = connect_attempts(&rig.host);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(connect_attempts(&rig.host), attempts);

    rig.host.restore_service().await;
    let restored = rig.wait("bluetooth-restored").await;
    assert!(
        restored.starts_with("bluetooth-restored after 600"),
        "{restored}"
    );
    assert!(rig.host.agent_registered());
    assert_eq!(
        rig.host.registered_profiles(),
        [ProfileKind::HandsFree, ProfileKind::Companion]
    );
    assert!(rig.host.companion_le_listening());
    assert!(
        rig.host
            .calls()
            .iter()
            .filter(|c| matches!(c, BluetoothCall::PowerOn(_)))
            .count()
            >= 2
    );
    // The phone is reconnected on the new bluetoothd.
    let _link = tokio::time::timeout(STEP, rig.phone.accept_hands_free())
        .await
        .expect("reconnected after the restart")
        .expect("in range");
    rig.wait("hands-free-ready").await;
    rig.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn set_up_after_a_restart_is_retried_with_backoff_until_the_adapter_is_back() {
    let (mut rig, link) = Rig::boot_paired(Config::default(), Profile::IphoneLike).await;
    rig.host.vanish_service().await;
    drop(link);
    rig.wait("bluetooth-lost").await;
    // bluetoothd takes its bus name before its adapter shows up: the first attempts fail.
    for _ in 0..3 {
        rig.host.fail_next(
            BluetoothCall::RegisterAgent,
            BluetoothError::ServiceUnavailable("starting".into()),
        );
    }
    let back = tokio::time::Instant::now();
    rig.host.restore_service().await;
    rig.wait("bluetooth-restored").await;
    // Immediately, then after 250 ms, 500 ms and 1 s.
    let took = back.elapsed();
    assert!(
        took >= Duration::from_millis(1750) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let agents = rig
        .host
        .calls()
        .into_iter()
        .filter(|c| *c == BluetoothCall::RegisterAgent)
        .count();
    assert_eq!(agents, 1 + 4, "one at boot, four after the restart");
    rig.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn hf_uuid_already_registered_stops_the_daemon_naming_the_owner() {
    let host = MockBluetooth::new();
    host.fail_next(
        BluetoothCall::RegisterProfile(ProfileKind::HandsFree),
        BluetoothError::ProfileAlreadyRegistered {
            kind: ProfileKind::HandsFree,
            uuid: ProfileKind::HandsFree.uuid(),
            likely_owner: "WirePlumber (PipeWire's Bluetooth monitor)".into(),
            how_to_free: "drop hfp_hf from bluez5.roles".into(),
        },
    );
    let hal = Hal {
        bluetooth: Arc::new(host.clone()),
        audio_out: Arc::new(MockAudioOutput::new()),
        audio_in: Arc::new(MockAudioInput::new()),
        buttons: Vec::new(),
        amplifier: None,
    };
    let mut config = Config::default();
    config.dbus.enabled = false;
    // The messages service starts before the profiles; keep its spool out of /var/lib.
    let spool = tempfile::tempdir().unwrap();
    config.messages.spool_directory = spool.path().to_owned();
    let result = Daemon::new(config, hal).run(std::future::pending()).await;
    let Err(e @ DaemonError::Bluetooth(BluetoothError::ProfileAlreadyRegistered { .. })) = result
    else {
        panic!("{result:?}")
    };
    let message = e.to_string();
    assert!(
        message.contains("already registered by another program")
            && message.contains("most likely WirePlumber")
            && message.contains("drop hfp_hf"),
        "{message}"
    );
}

#[tokio::test(start_paused = true)]
async fn stop_reconnecting_ends_the_backoff_until_the_phone_connects_by_itself() {
    let host = host_with_paired_phone();
    let mut rig = Rig::boot(Config::default(), host, Profile::AndroidLike);
    rig.wait("ready").await;
    // The phone is out of range: the boot attempt and a few retries fail.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let before = connect_attempts(&rig.host);
    assert!(before >= 3, "{before}");
    rig.handle.request(Command::StopReconnecting).await.unwrap();
    rig.wait("reconnect-stopped").await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(connect_attempts(&rig.host), before);
    // The phone connects by itself: that is allowed, and it is the active phone.
    rig.phone.appear().await;
    let _link = rig.phone.connect_hands_free().await.unwrap();
    rig.wait(&format!("active-phone {PHONE}")).await;
    rig.wait("hands-free-ready").await;
    rig.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_slow_reconnect_attempt_does_not_hold_up_the_buttons() {
    let host = host_with_paired_phone();
    // The phone is away: each page takes 10 s to fail, as with BlueZ.
    host.set_connect_delay(Duration::from_secs(10));
    let mut rig = Rig::boot(Config::default(), host, Profile::AndroidLike);
    rig.wait("ready").await;
    let pressed = tokio::time::Instant::now();
    // Idle long press: open the pairing window, while the first reconnect attempt pages.
    rig.long_press().await;
    rig.wait("pairing-window-opened").await;
    assert!(
        pressed.elapsed() < Duration::from_secs(3),
        "took {:?}",
        pressed.elapsed()
    );
    assert!(
        rig.host.calls().contains(&BluetoothCall::ConnectProfile(
            PHONE,
            ProfileKind::HandsFree
        )),
        "the reconnect attempt was running meanwhile"
    );
    rig.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn hands_free_from_a_device_paired_behind_codrivers_back_is_refused() {
    let host = MockBluetooth::new();
    // Bonded (say with bluetoothctl and another agent) but never trusted by codriver.
    host.add_known_device(DeviceInfo {
        address: PHONE,
        name: Some("Stranger".into()),
        paired: true,
        trusted: false,
        connected: false,
    });
    let mut rig = Rig::boot(Config::default(), host, Profile::AndroidLike);
    rig.wait("ready").await;
    rig.phone.appear().await;
    let _stream = rig.phone.connect_hands_free().await.unwrap();
    rig.wait(&format!("connection-refused {PHONE} hands-free"))
        .await;
    assert!(
        tokio::time::timeout(Duration::from_secs(30), rig.wait("hands-free-ready"))
            .await
            .is_err(),
        "no service level connection"
    );
    rig.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_disconnected_phone_stays_away_until_asked_to_connect() {
    let (mut rig, link) = Rig::boot_paired(Config::default(), Profile::AndroidLike).await;
    let before = connect_attempts(&rig.host);
    rig.handle
        .request(|r| Command::DisconnectPhone(PHONE, r))
        .await
        .unwrap();
    rig.wait(&format!("phone-disconnected {PHONE}")).await;
    assert!(
        rig.host
            .calls()
            .contains(&BluetoothCall::DisconnectDevice(PHONE))
    );
    drop(link);
    // Still in range, but the driver said no: an hour passes without an attempt.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(connect_attempts(&rig.host), before);
    // Asked to connect, it does at once.
    rig.handle
        .request(|r| Command::ConnectPhone(PHONE, r))
        .await
        .unwrap();
    let _link = tokio::time::timeout(STEP, rig.phone.accept_hands_free())
        .await
        .expect("connected on request")
        .expect("in range");
    rig.wait("hands-free-ready").await;
    assert_eq!(connect_attempts(&rig.host), before + 1);
    rig.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn connect_and_disconnect_refuse_devices_that_are_not_ours() {
    let (rig, _link) = Rig::boot_paired(Config::default(), Profile::AndroidLike).await;
    let stranger = "00:AA:BB:CC:DD:EE".parse().unwrap();
    for command in [Command::ConnectPhone, Command::DisconnectPhone] {
        let err = rig
            .handle
            .request(|r| command(stranger, r))
            .await
            .unwrap_err();
        assert!(err.contains("not a phone paired through codriver"), "{err}");
    }
    let err = rig
        .handle
        .request(|r| Command::ConnectPhone(PHONE, r))
        .await
        .unwrap_err();
    assert!(err.contains("already connected"), "{err}");
    rig.shutdown().await;
}
