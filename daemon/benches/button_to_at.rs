//! Button edge to AT command at the phone: the whole daemon in-process against the mock HAL
//! and the simulated phone (phone-sim's Audio Gateway), in real time.
//!
//! In a call, a short press of `up` or `down` (bound to volume-up/volume-down in `in-call`,
//! with no double press bound, so the press counts at its release) makes the daemon send
//! `AT+VGS=<n>`. Measured: from the release edge handed to `MockButtonHandle` to the phone
//! having parsed the command (`AgEvent::SpeakerVolume`). Presses alternate up and down so the
//! level never reaches a limit. Prints median, p99 and max over `BENCH_ITERATIONS` (500).
//!
//! `cargo bench -p codriver-daemon --bench button_to_at` (add `--profile dev` for a quick
//! unoptimised run).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use codriver_config::{Action, BindingConfig, BindingContext, Config, Gesture};
use codriver_daemon::Daemon;
use codriver_daemon::events::{CallAction, Command, DaemonEvent};
use codriver_hal::mock::{MockAudioInput, MockAudioOutput, MockBluetooth, MockButtons};
use codriver_hal::{Address, DeviceInfo, Hal};
use codriver_phone_sim::ag::{AgEvent, Profile};
use codriver_phone_sim::{AgCommand, PhoneSpec, SimulatedPhone};
use tokio::time::Instant;

const STEP: Duration = Duration::from_secs(10);

fn main() {
    let iterations: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut samples = runtime.block_on(run(iterations));
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "button edge → AT+VGS at the phone, {} presses: median {:?}, p99 {:?}, max {:?}",
        samples.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

async fn run(iterations: usize) -> Vec<Duration> {
    let address = Address::new([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);
    let host = MockBluetooth::new();
    host.add_known_device(DeviceInfo {
        address,
        name: Some("Bench Phone".into()),
        paired: true,
        trusted: true,
        connected: false,
    });
    let mut phone = SimulatedPhone::new(
        host.radio(),
        PhoneSpec {
            address,
            name: "Bench Phone".into(),
            profile: Profile::AndroidLike,
            passkey: 123_456,
        },
    );
    let (buttons, presses) = MockButtons::new();
    let mut config = Config::default();
    config.dbus.enabled = false;
    // The messages service always runs; keep its spool out of /var/lib.
    config.messages.spool_directory =
        std::env::temp_dir().join(format!("codriver-bench-{}", std::process::id()));
    config.controls.bindings = [("up", Action::VolumeUp), ("down", Action::VolumeDown)]
        .into_iter()
        .map(|(button, action)| BindingConfig {
            button: button.parse().unwrap(),
            gesture: Gesture::Short,
            context: BindingContext::InCall,
            action,
        })
        .collect();
    let hal = Hal {
        bluetooth: Arc::new(host),
        audio_out: Arc::new(MockAudioOutput::new()),
        audio_in: Arc::new(MockAudioInput::new()),
        buttons: vec![Box::new(buttons)],
        amplifier: None,
    };
    let daemon = Daemon::new(config, hal);
    let handle = daemon.handle();
    let mut events = handle.subscribe();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(daemon.run(async move {
        let _ = stopped.await;
    }));
    phone.appear().await;
    let mut link = tokio::time::timeout(STEP, phone.accept_hands_free())
        .await
        .unwrap()
        .unwrap();
    link.command(AgCommand::IncomingCall {
        number: "+15550100".into(),
        name: None,
    })
    .await
    .unwrap();
    wait(&mut events, "call 1 incoming").await;
    handle
        .request(|r| Command::Call(CallAction::Answer, r))
        .await
        .unwrap();
    wait(&mut events, "call 1 active").await;

    let mut samples = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let button = if i % 2 == 0 { "up" } else { "down" };
        presses.edge(button, true).await;
        // Apart by more than the debounce time, so no edge counts as contact bounce.
        tokio::time::sleep(Duration::from_millis(25)).await;
        let released = Instant::now();
        presses.edge(button, false).await;
        link.wait_for("AT+VGS", STEP, |e| matches!(e, AgEvent::SpeakerVolume(_)))
            .await
            .unwrap();
        samples.push(released.elapsed());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    samples
}

async fn wait(events: &mut tokio::sync::broadcast::Receiver<DaemonEvent>, what: &str) {
    tokio::time::timeout(STEP, async {
        loop {
            if let Ok(e) = events.recv().await
                && e.to_string().contains(what)
            {
                return;
            }
        }
    })
    .await
    .unwrap();
}
