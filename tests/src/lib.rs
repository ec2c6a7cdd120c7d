//! End-to-end test support for codriver: the real daemon, in-process, against the mock
//! Bluetooth HAL, a recording audio sink, mock buttons and a simulated phone, under paused
//! tokio time.
//!
//! Test support panics on purpose: a failed step is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod bluez_mock;
pub mod private_bus;

use std::sync::Arc;
use std::time::Duration;

use codriver_config::Config;
use codriver_daemon::events::{DaemonEvent, DaemonHandle};
use codriver_daemon::{Daemon, DaemonError};
use codriver_hal::mock::{
    MockAudioInput, MockAudioOutput, MockBluetooth, MockButtonHandle, MockButtons, MockSco,
    MockScoPhone,
};
use codriver_hal::{Address, ButtonSource, DeviceInfo, Hal, ScoTransport};
use codriver_phone_sim::ag::Profile;
use codriver_phone_sim::{AgLink, PhoneSpec, SimulatedPhone};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

/// The simulated phone's address.
pub const PHONE: Address = Address::new([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);

/// The button the default bindings use.
pub const BUTTON: &str = "phone";

/// How long the driver takes to react before a press. Under paused time everything between
/// two presses may happen in the same instant, and an edge closer than the debounce time to
/// the last one is contact bounce; a person is never that fast.
pub const REACTION: Duration = Duration::from_millis(300);

/// How long any awaited step may take (tokio time, which is paused: a hang fails fast).
pub const STEP: Duration = Duration::from_secs(120);

/// A running daemon with its mocks and a phone.
pub struct Rig {
    /// Commands into the daemon.
    pub handle: DaemonHandle,
    /// The daemon's events since boot.
    pub events: broadcast::Receiver<DaemonEvent>,
    /// The phone.
    pub phone: SimulatedPhone,
    /// The steering-wheel button.
    pub buttons: MockButtonHandle,
    /// What was played.
    pub audio: MockAudioOutput,
    /// The microphone: queue fixture recordings with `push_fixture`.
    pub mic: MockAudioInput,
    /// The host, for expectations and injected failures.
    pub host: MockBluetooth,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), DaemonError>>>,
    /// The messages spool when the test did not choose one; removed with the rig.
    _spool: Option<tempfile::TempDir>,
}

/// A mock host that already knows [`PHONE`], paired and trusted through codriver (as after
/// a restart), not connected.
pub fn host_with_paired_phone() -> MockBluetooth {
    let host = MockBluetooth::new();
    host.add_known_device(DeviceInfo {
        address: PHONE,
        name: Some("Test Phone".into()),
        paired: true,
        trusted: true,
        connected: false,
    });
    host
}

impl Rig {
    /// Boots the daemon with `phone_profile` already paired and trusted (as after a restart)
    /// and in range: the daemon reconnects it at boot. Returns once the service level
    /// connection is up, with the phone's side of the HFP link.
    pub async fn boot_paired(config: Config, phone_profile: Profile) -> (Rig, AgLink) {
        Rig::boot_paired_with(config, phone_profile, Vec::new()).await
    }

    /// [`Rig::boot_paired`] with more button sources besides the mock buttons (GPIO buttons
    /// or a rotary encoder on scripted pins).
    pub async fn boot_paired_with(
        config: Config,
        phone_profile: Profile,
        sources: Vec<Box<dyn ButtonSource>>,
    ) -> (Rig, AgLink) {
        Rig::boot_paired_inner(config, phone_profile, sources, None).await
    }

    /// [`Rig::boot_paired`] with call audio over the mock SCO transport (48-byte packets);
    /// also returns the phone's side of it, which opens SCO links to the car.
    pub async fn boot_paired_with_sco(
        config: Config,
        phone_profile: Profile,
    ) -> (Rig, AgLink, MockScoPhone) {
        let (car, phone) = MockSco::new(PHONE, 48);
        let (rig, link) =
            Rig::boot_paired_inner(config, phone_profile, Vec::new(), Some(Arc::new(car))).await;
        (rig, link, phone)
    }

    async fn boot_paired_inner(
        config: Config,
        phone_profile: Profile,
        sources: Vec<Box<dyn ButtonSource>>,
        sco: Option<Arc<dyn ScoTransport>>,
    ) -> (Rig, AgLink) {
        let mut rig = Rig::boot_inner(
            config,
            host_with_paired_phone(),
            phone_profile,
            sources,
            sco,
        );
        rig.phone.appear().await;
        let link = tokio::time::timeout(STEP, rig.phone.accept_hands_free())
            .await
            .expect("the daemon reconnects the known phone")
            .expect("phone in range");
        rig.wait("hands-free-ready").await;
        (rig, link)
    }

    /// Boots the daemon on `host` with a phone that has not appeared yet.
    pub fn boot(config: Config, host: MockBluetooth, phone_profile: Profile) -> Rig {
        Rig::boot_with(config, host, phone_profile, Vec::new())
    }

    /// [`Rig::boot`] with more button sources besides the mock buttons.
    pub fn boot_with(
        config: Config,
        host: MockBluetooth,
        phone_profile: Profile,
        sources: Vec<Box<dyn ButtonSource>>,
    ) -> Rig {
        Rig::boot_inner(config, host, phone_profile, sources, None)
    }

    fn boot_inner(
        config: Config,
        host: MockBluetooth,
        phone_profile: Profile,
        sources: Vec<Box<dyn ButtonSource>>,
        sco: Option<Arc<dyn ScoTransport>>,
    ) -> Rig {
        let (buttons, button_handle) = MockButtons::new();
        let mut all: Vec<Box<dyn ButtonSource>> = vec![Box::new(buttons)];
        all.extend(sources);
        let audio = MockAudioOutput::new();
        let mic = MockAudioInput::new();
        let hal = Hal {
            bluetooth: Arc::new(host.clone()),
            audio_out: Arc::new(audio.clone()),
            audio_in: Arc::new(mic.clone()),
            buttons: all,
            amplifier: None,
        };
        let phone = SimulatedPhone::new(
            host.radio(),
            PhoneSpec {
                address: PHONE,
                name: "Test Phone".into(),
                profile: phone_profile,
                passkey: 654_321,
            },
        );
        let mut config = config;
        config.dbus.enabled = false;
        // The messages service always runs; keep its spool out of /var/lib.
        let spool = (config.messages.spool_directory == Config::default().messages.spool_directory)
            .then(|| tempfile::tempdir().expect("a temporary spool"));
        if let Some(dir) = &spool {
            config.messages.spool_directory = dir.path().to_owned();
        }
        let mut daemon = Daemon::new(config, hal);
        if let Some(sco) = sco {
            daemon = daemon.with_sco(sco);
        }
        let handle = daemon.handle();
        let events = handle.subscribe();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(daemon.run(async move {
            let _ = stopped.await;
        }));
        Rig {
            handle,
            events,
            phone,
            buttons: button_handle,
            audio,
            mic,
            host,
            stop: Some(stop),
            _spool: spool,
            task: Some(task),
        }
    }

    /// Waits for an event whose line starts with `prefix`; returns the line.
    pub async fn wait(&mut self, prefix: &str) -> String {
        let deadline = tokio::time::Instant::now() + STEP;
        let mut skipped = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Ok(e)) => {
                    let line = e.to_string();
                    if line.starts_with(prefix) {
                        return line;
                    }
                    skipped.push(line);
                }
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    panic!("daemon stopped waiting for {prefix:?}")
                }
                Err(_) => panic!("no event {prefix:?} in time; events meanwhile: {skipped:#?}"),
            }
        }
    }

    /// Waits for a telephony line (`call 1 active`, `ring`) from the phone.
    pub async fn telephony(&mut self, prefix: &str) -> String {
        let full = format!("telephony {PHONE} {prefix}");
        self.wait(&full).await
    }

    /// A short press of the steering-wheel button, after the driver's reaction time.
    pub async fn press(&self) {
        tokio::time::sleep(REACTION).await;
        self.buttons.press(BUTTON, Duration::from_millis(100)).await;
    }

    /// A long press, after the driver's reaction time.
    pub async fn long_press(&self) {
        tokio::time::sleep(REACTION).await;
        self.buttons
            .press(BUTTON, Duration::from_millis(1500))
            .await;
    }

    /// Two quick presses, after the driver's reaction time.
    pub async fn double_press(&self) {
        tokio::time::sleep(REACTION).await;
        self.buttons.press(BUTTON, Duration::from_millis(80)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.buttons.press(BUTTON, Duration::from_millis(80)).await;
    }

    /// Stops the daemon and checks it stopped cleanly.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("daemon task")
                .expect("daemon stopped cleanly");
        }
    }
}
