//! codriverd's real Bluetooth backend (`BluezHost` over bluer) against a mock bluetoothd on a
//! private, system-like bus: pairing under every agent policy, inside and outside the
//! window; profile registration and connections handed over as sockets; reconnects;
//! bluetoothd exiting and coming back; a Hands-Free UUID already taken.
//!
//! The mock is `codriver_tests::bluez_mock`, written with zbus rather than python3-dbusmock's
//! `bluez5` template, which stubs `ProfileManager1.RegisterProfile`, never calls
//! `Profile1.NewConnection` (no fd passing) nor the registered agent; see that module. Real
//! time here (paused time cannot drive a real bus): every wait is bounded by [`STEP`] and
//! ends as soon as its event or condition arrives. The paused-time backoff tests are in
//! `tests/link.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The bus turn (a std mutex) is held for the whole test on purpose: tests take turns.
#![allow(clippy::await_holding_lock)]

use std::sync::Arc;
use std::time::Duration;

use codriver_config::{AllowlistEntry, BusKind, Config, PairingPolicy};
use codriver_daemon::events::{DaemonEvent, DaemonHandle};
use codriver_daemon::{Daemon, DaemonError};
use codriver_hal::bluetooth::{COMPANION_UUID, HFP_AG_UUID, HFP_HF_UUID};
use codriver_hal::linux::bluetooth::BluezHost;
use codriver_hal::mock::{MockAudioInput, MockAudioOutput, MockButtonHandle, MockButtons};
use codriver_hal::{Address, BluetoothError, Hal};
use codriver_tests::bluez_mock::{
    BluezMock, DeviceSpec, PairError, Pairing, register_foreign_profile,
};
use codriver_tests::private_bus::shared_system_bus;
use tokio::io::AsyncReadExt;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

/// Upper bound of any one step (real time).
const STEP: Duration = Duration::from_secs(20);

const PHONE: Address = Address::new([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);
const OTHER: Address = Address::new([0x00, 0x11, 0x22, 0x33, 0x44, 0x66]);

fn phone(address: Address, paired: bool) -> DeviceSpec {
    DeviceSpec {
        address,
        name: "Test Phone".into(),
        paired,
        trusted: paired,
    }
}

/// codriverd in-process on the private bus.
struct Car {
    handle: DaemonHandle,
    events: broadcast::Receiver<DaemonEvent>,
    buttons: MockButtonHandle,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), DaemonError>>,
    /// The messages service always runs; its spool lives here, not in /var/lib.
    _spool: tempfile::TempDir,
}

impl Car {
    async fn boot(mut config: Config) -> Car {
        let spool = tempfile::tempdir().unwrap();
        config.messages.spool_directory = spool.path().to_owned();
        let host = BluezHost::new(None)
            .await
            .expect("the mock bluetoothd answers");
        let (buttons, button_handle) = MockButtons::new();
        let hal = Hal {
            bluetooth: Arc::new(host),
            audio_out: Arc::new(MockAudioOutput::new()),
            audio_in: Arc::new(MockAudioInput::new()),
            buttons: vec![Box::new(buttons)],
            amplifier: None,
        };
        let daemon = Daemon::new(config, hal);
        let handle = daemon.handle();
        let events = handle.subscribe();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(daemon.run(async move {
            let _ = stopped.await;
        }));
        Car {
            handle,
            events,
            buttons: button_handle,
            stop,
            task,
            _spool: spool,
        }
    }

    async fn wait(&mut self, prefix: &str) -> String {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Ok(e)) if e.to_string().starts_with(prefix) => return e.to_string(),
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    panic!("daemon stopped waiting for {prefix:?}")
                }
                Err(_) => panic!("no event {prefix:?} in time"),
            }
        }
    }

    async fn press(&self) {
        self.buttons
            .press("phone", Duration::from_millis(100))
            .await;
    }

    async fn shutdown(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

fn config(policy: PairingPolicy) -> Config {
    let mut config = Config::default();
    config.pairing.policy = policy;
    config.dbus.enabled = false;
    config.reconnect.initial_backoff = Duration::from_millis(100);
    config
}

/// Reads from the phone's end of an HFP link until the car's first AT command arrives.
async fn expect_brsf(stream: &mut tokio::net::UnixStream) {
    let mut got = Vec::new();
    tokio::time::timeout(STEP, async {
        let mut buf = [0u8; 256];
        while !String::from_utf8_lossy(&got).contains("AT+BRSF=") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "link closed: {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("AT+BRSF from the car");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_boot_sets_up_the_adapter_and_registers_default_agent_and_hf_profile() {
    let _bus = shared_system_bus();
    let mock = BluezMock::start(&[]).await;
    let config = config(PairingPolicy::ButtonOrDbus);
    let alias = config.adapter.alias.clone();
    let mut car = Car::boot(config).await;
    car.wait("pairing-window-opened").await;
    car.wait("ready").await;
    let (powered, discoverable, pairable, name) = mock.adapter().await;
    assert!(
        powered && discoverable && pairable,
        "{:?}",
        mock.adapter().await
    );
    assert_eq!(name, alias);
    let (_, default) = mock.agent().expect("agent registered");
    assert!(default, "the agent asked to be the default");
    let profiles = mock.profiles();
    let uuids: Vec<&str> = profiles.iter().map(|p| p.uuid.as_str()).collect();
    assert_eq!(uuids, [HFP_HF_UUID, COMPANION_UUID], "{profiles:?}");
    for key in ["Version", "Features", "RequireAuthentication"] {
        assert!(profiles[0].options.contains_key(key), "{key}: {profiles:?}");
    }
    // The companion profile: an RFCOMM listener on a channel BlueZ picks, bonded links only.
    for key in ["Channel", "RequireAuthentication"] {
        assert!(profiles[1].options.contains_key(key), "{key}: {profiles:?}");
    }
    car.handle
        .request(codriver_daemon::events::Command::ClosePairingWindow)
        .await
        .unwrap();
    let (_, discoverable, pairable, _) = mock.adapter().await;
    assert!(!discoverable && !pairable);
    car.shutdown().await;
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn button_policy_pairs_inside_the_window_and_trusts_the_phone() {
    let _bus = shared_system_bus();
    let mock = BluezMock::start(&[phone(PHONE, false)]).await;
    let mut car = Car::boot(config(PairingPolicy::Button)).await;
    car.wait("pairing-window-opened").await;
    let (paired, ()) = tokio::join!(mock.pair(PHONE, Pairing::Confirm(123_456)), async {
        car.wait(&format!("pairing-requested {PHONE} 123456")).await;
        car.press().await;
        car.wait(&format!("pairing-accepted {PHONE} by button"))
            .await;
    });
    paired.unwrap();
    car.wait(&format!("phone-paired {PHONE}")).await;
    car.wait("pairing-window-closed paired").await;
    assert_eq!(mock.device(PHONE).await, (true, true, true));
    assert!(!mock.adapter().await.2, "no longer pairable");
    car.shutdown().await;
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbus_policy_pairs_through_the_api_and_refuses_the_button() {
    let _bus = shared_system_bus();
    let mock = BluezMock::start(&[phone(PHONE, false)]).await;
    let mut config = config(PairingPolicy::Dbus);
    config.dbus.enabled = true;
    config.dbus.bus = BusKind::System;
    let mut car = Car::boot(config).await;
    car.wait("pairing-window-opened").await;
    car.wait("ready").await;
    let ui = zbus::Connection::system().await.unwrap();
    let (paired, ()) = tokio::join!(mock.pair(PHONE, Pairing::Confirm(111_111)), async {
        car.wait(&format!("pairing-requested {PHONE}")).await;
        car.press().await;
        car.wait("action-refused").await;
        ui.call_method(
            Some(codriver_daemon::dbus::BUS_NAME),
            codriver_daemon::dbus::OBJECT_PATH,
            Some("org.codriver.Codriver1.Daemon"),
            "ApprovePairing",
            &(),
        )
        .await
        .unwrap();
        car.wait(&format!("pairing-accepted {PHONE} by dbus")).await;
    });
    paired.unwrap();
    car.wait(&format!("phone-paired {PHONE}")).await;
    car.shutdown().await;
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn button_or_dbus_policy_rejects_by_button() {
    let _bus = shared_system_bus();
    let mock = BluezMock::start(&[phone(PHONE, false)]).await;
    let mut car = Car::boot(config(PairingPolicy::ButtonOrDbus)).await;
    car.wait("pairing-window-opened").await;
    let (paired, ()) = tokio::join!(mock.pair(PHONE, Pairing::Confirm(222_222)), async {
        car.wait(&format!("pairing-requested {PHONE}")).await;
        // A long press rejects in the pairing window.
        car.buttons
            .press("phone", Duration::from_millis(1500))
            .await;
        car.wait(&format!("pairing-rejected {PHONE}")).await;
    });
    assert_eq!(
        paired,
        Err(PairError::Agent("org.bluez.Error.Rejected".into()))
    );
    assert_eq!(mock.device(PHONE).await, (false, false, false));
    car.shutdown().await;
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlist_policy_accepts_listed_phones_only() {
    let _bus = shared_system_bus();
    let mock = BluezMock::start(&[phone(PHONE, false), phone(OTHER, false)]).await;
    let mut config = config(PairingPolicy::Allowlist);
    config.pairing.allowlist = vec![AllowlistEntry::Address(PHONE)];
    let mut car = Car::boot(config).await;
    car.wait("pairing-window-opened").await;
    assert_eq!(
        mock.pair(OTHER, Pairing::Confirm(1)).await,
        Err(PairError::Agent("org.bluez.Error.Rejected".into()))
    );
    car.wait(&format!(
        "pairing-rejected {OTHER} not on the pairing allowlist"
    ))
    .await;
    mock.pair(PHONE, Pairing::Confirm(2)).await.unwrap();
    car.wait(&format!("pairing-accepted {PHONE} by allowlist"))
        .await;
    car.wait(&format!("phone-paired {PHONE}")).await;
    assert_eq!(mock.device(PHONE).await, (true, true, true));
    assert!(!mock.device(OTHER).await.1, "never trusted");
    car.shutdown().await;
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_pin_comes_from_the_config() {
    let _bus = shared_system_bus();
    let mock = BluezMock::start(&[phone(PHONE, false)]).await;
    let mut config = config(PairingPolicy::Button);
    config.pairing.legacy_pin = Some("4711".parse().unwrap());
    let mut car = Car::boot(config).await;
    car.wait("pairing-window-opened").await;
    mock.pair(PHONE, Pairing::Pin("4711")).await.unwrap();
    car.wait(&format!("pairing-accepted {PHONE} by legacy-pin"))
        .await;
    car.wait(&format!("phone-paired {PHONE}")).await;
    car.shutdown().await;
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_outside_the_window_is_refused_by_adapter_and_agent() {
    let _bus = shared_system_bus();
    // A phone is paired already, so no window opens at boot.
    let mock = BluezMock::start(&[phone(PHONE, true), phone(OTHER, false)]).await;
    let mut car = Car::boot(config(PairingPolicy::ButtonOrDbus)).await;
    car.wait("ready").await;
    assert_eq!(
        mock.pair(OTHER, Pairing::Confirm(3)).await,
        Err(PairError::NotPairable)
    );
    // Even if bluetoothd asked, the agent says no.
    assert_eq!(
        mock.ask_agent(OTHER, Pairing::Confirm(3)).await,
        Err(PairError::Agent("org.bluez.Error.Rejected".into()))
    );
    car.wait(&format!(
        "pairing-rejected {OTHER} the pairing window is closed"
    ))
    .await;
    car.shutdown().await;
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_phone_is_reconnected_with_backoff_over_a_handed_over_socket() {
    let _bus = shared_system_bus();
    let mut mock = BluezMock::start(&[phone(PHONE, true)]).await;
    mock.out_of_range(PHONE);
    let mut car = Car::boot(config(PairingPolicy::ButtonOrDbus)).await;
    car.wait("ready").await;
    // The boot attempt fails (page timeout); the phone comes into range; a retry finds it.
    let failed = tokio::time::timeout(STEP, async {
        while !mock
            .calls()
            .iter()
            .any(|c| c == &format!("ConnectProfile {PHONE} {HFP_AG_UUID}"))
        {
            tokio::task::yield_now().await;
        }
    });
    failed.await.expect("a connect attempt at boot");
    mock.in_range(PHONE);
    let mut end = tokio::time::timeout(STEP, mock.phone_end())
        .await
        .expect("reconnected");
    assert_eq!((end.device, end.uuid.as_str()), (PHONE, HFP_HF_UUID));
    car.wait(&format!("profile-connected {PHONE} hands-free"))
        .await;
    expect_brsf(&mut end.stream).await;
    car.shutdown().await;
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bluetoothd_exiting_and_returning_is_recovered_without_restarting_codriverd() {
    let _bus = shared_system_bus();
    let devices = [phone(PHONE, true)];
    let mut mock = BluezMock::start(&devices).await;
    let mut car = Car::boot(config(PairingPolicy::ButtonOrDbus)).await;
    let mut end = tokio::time::timeout(STEP, mock.phone_end()).await.unwrap();
    expect_brsf(&mut end.stream).await;

    // bluetoothd exits: its bus name loses its owner.
    mock.stop().await;
    drop(end);
    car.wait("bluetooth-lost").await;

    // A new bluetoothd, knowing only the bond on disk.
    let mut mock = BluezMock::start(&devices).await;
    car.wait("bluetooth-restored").await;
    let (powered, discoverable, _, _) = mock.adapter().await;
    assert!(powered && !discoverable);
    assert!(mock.agent().expect("agent registered again").1);
    let uuids: Vec<String> = mock.profiles().into_iter().map(|p| p.uuid).collect();
    assert_eq!(uuids, [HFP_HF_UUID, COMPANION_UUID]);
    let mut end = tokio::time::timeout(STEP, mock.phone_end())
        .await
        .expect("the phone is reconnected on the new bluetoothd");
    expect_brsf(&mut end.stream).await;
    car.shutdown().await;
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hf_uuid_registered_by_another_program_stops_codriverd_with_the_reason() {
    let _bus = shared_system_bus();
    let mock = BluezMock::start(&[]).await;
    let _wireplumber = register_foreign_profile(HFP_HF_UUID).await;
    let car = Car::boot(config(PairingPolicy::ButtonOrDbus)).await;
    let result = tokio::time::timeout(STEP, car.task).await.unwrap().unwrap();
    let Err(e @ DaemonError::Bluetooth(BluetoothError::ProfileAlreadyRegistered { .. })) = result
    else {
        panic!("{result:?}")
    };
    let message = e.to_string();
    assert!(
        message.contains("hands-free profile (UUID 0000111e-")
            && message.contains("already registered by another program, most likely"),
        "{message}"
    );
    drop(car.stop);
    mock.stop().await;
}
