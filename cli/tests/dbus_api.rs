//! The D-Bus API on a private, system-like bus with `codriverctl` as the client: the daemon
//! (in-process, mock Bluetooth) serves `org.codriver.Codriver1`; a simulated phone asks to pair;
//! `codriverctl` sees it, approves it, and watches the events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use codriver_config::{Config, PairingPolicy};
use codriver_daemon::Daemon;
use codriver_daemon::events::DaemonEvent;
use codriver_hal::Hal;
use codriver_hal::mock::{MockAudioInput, MockAudioOutput, MockBluetooth};
use codriver_phone_sim::ag::Profile;
use codriver_phone_sim::{PhoneSpec, SimulatedPhone};
use codriver_tests::private_bus::PrivateBus;

const CTL: &str = env!("CARGO_BIN_EXE_codriverctl");

fn ctl(bus: &PrivateBus, args: &[&str]) -> std::process::Output {
    Command::new(CTL)
        .args(args)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .output()
        .unwrap()
}

async fn wait_for(
    events: &mut tokio::sync::broadcast::Receiver<DaemonEvent>,
    want: impl Fn(&DaemonEvent) -> bool,
) {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(e) = events.recv().await
                && want(&e)
            {
                return;
            }
        }
    })
    .await
    .expect("event in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codriverctl_approves_pairing_and_watches_events() {
    let bus = PrivateBus::start();
    // The only test in this binary, so no other thread reads the environment meanwhile.
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", &bus.address) };

    let mut config = Config::default();
    config.pairing.policy = PairingPolicy::Dbus;
    // The messages service always runs; keep its spool out of /var/lib.
    let spool = tempfile::tempdir().unwrap();
    config.messages.spool_directory = spool.path().to_owned();
    let host = MockBluetooth::new();
    let radio = host.radio();
    let hal = Hal {
        bluetooth: Arc::new(host),
        audio_out: Arc::new(MockAudioOutput::new()),
        audio_in: Arc::new(MockAudioInput::new()),
        buttons: Vec::new(),
        amplifier: None,
    };
    let daemon = Daemon::new(config, hal);
    let handle = daemon.handle();
    let mut events = handle.subscribe();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(daemon.run(async move {
        let _ = stopped.await;
    }));
    wait_for(&mut events, |e| matches!(e, DaemonEvent::Ready)).await;

    // No phone is paired, so the window opened at first boot.
    let status = ctl(&bus, &["--json", "status"]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let json = String::from_utf8(status.stdout).unwrap();
    assert!(json.contains("\"pairing_window_open\":true"), "{json}");
    assert!(json.contains("\"pending_pairing\":null"), "{json}");

    // Nothing to approve yet: a typed error and a non-zero exit.
    let early = ctl(&bus, &["pair", "approve"]);
    assert!(!early.status.success());
    let err = String::from_utf8_lossy(&early.stderr).into_owned();
    assert!(
        err.contains("org.codriver.Codriver1.Error.NotPossible"),
        "{err}"
    );
    assert!(err.contains("no pairing request is waiting"), "{err}");

    let mut watch = Command::new(CTL)
        .arg("watch")
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut watched = BufReader::new(watch.stdout.take().unwrap());
    // The watcher prints its header once subscribed; nothing after it can be missed.
    let mut header = String::new();
    watched.read_line(&mut header).unwrap();
    assert!(header.starts_with("# watching codriverd"), "{header}");

    let mut phone = SimulatedPhone::new(
        radio,
        PhoneSpec {
            address: "00:11:22:33:44:55".parse().unwrap(),
            name: "Test Phone".into(),
            profile: Profile::AndroidLike,
            passkey: 123_456,
        },
    );
    phone.appear().await;
    let pairing = tokio::spawn(async move { phone.pair().await.map(|()| phone) });
    wait_for(&mut events, |e| {
        matches!(e, DaemonEvent::PairingRequested { .. })
    })
    .await;

    let status = String::from_utf8(ctl(&bus, &["status"]).stdout).unwrap();
    assert!(
        status.contains("waiting to pair: 00:11:22:33:44:55"),
        "{status}"
    );
    let approve = ctl(&bus, &["pair", "approve"]);
    assert!(
        approve.status.success(),
        "{}",
        String::from_utf8_lossy(&approve.stderr)
    );
    let phone = pairing.await.unwrap().expect("pairing accepted");
    let _link = phone.connect_hands_free().await.unwrap();
    wait_for(&mut events, |e| {
        matches!(e, DaemonEvent::HandsFreeReady { .. })
    })
    .await;

    let status = String::from_utf8(ctl(&bus, &["status"]).stdout).unwrap();
    assert!(status.contains("phones: 00:11:22:33:44:55"), "{status}");

    let lines: Vec<String> = tokio::task::spawn_blocking(move || {
        watched
            .lines()
            .map_while(Result::ok)
            .take_while(|l| !l.starts_with("hands-free-ready"))
            .collect()
    })
    .await
    .unwrap();
    let _ = watch.kill();
    let _ = watch.wait();
    let joined = lines.join("\n");
    assert!(
        joined.contains("pairing-requested 00:11:22:33:44:55 123456"),
        "{joined}"
    );
    assert!(
        joined.contains("pairing-accepted 00:11:22:33:44:55 by dbus"),
        "{joined}"
    );

    // Disconnect by address; a malformed address is a typed error.
    let bad = ctl(&bus, &["phones", "connect", "not-an-address"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr).into_owned();
    assert!(
        err.contains("org.codriver.Codriver1.Error.InvalidArgument"),
        "{err}"
    );
    let disconnect = ctl(&bus, &["phones", "disconnect", "00:11:22:33:44:55"]);
    assert!(
        disconnect.status.success(),
        "{}",
        String::from_utf8_lossy(&disconnect.stderr)
    );
    wait_for(&mut events, |e| {
        matches!(e, DaemonEvent::PhoneDisconnected { .. })
    })
    .await;
    let phones = String::from_utf8(ctl(&bus, &["phones"]).stdout).unwrap();
    assert!(phones.contains("no phone connected"), "{phones}");

    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
