//! codriverd, the codriver daemon, as a library.
//!
//! [`run`] boots the whole daemon against any [`Hal`]: real hardware from the binary, mocks
//! and the simulated phone from `--simulate` and the tests. The services are actors that own
//! their state and talk through the vocabulary in [`events`]:
//!
//! * the **link manager** ([`link`]): adapter, pairing window and agent, reconnects;
//! * the **Hands-Free drivers** ([`telephony`]): one task per HFP link around the sans-IO
//!   `codriver_hfp` engine;
//! * the **audio router** ([`audio`]): the one arbiter of the speakers;
//! * **controls** ([`controls`]): buttons → gestures → context-dependent actions.
//!
//! The main loop in [`Daemon::run`] routes between them; nothing else is shared.

pub mod audio;
pub mod controls;
pub mod dbus;
pub mod events;
#[cfg(feature = "linux")]
pub mod hardware;
pub mod link;
pub mod logging;
pub mod notify;
pub mod pairing;
pub mod simulate;
pub mod telephony;
pub mod tones;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use codriver_config::{Action, BindingContext, Config};
use codriver_hal::{BluetoothError, ButtonEvent, Hal, ProfileConnection, ProfileKind, ProfileSpec};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::audio::{AudioPolicy, AudioRouter};
use crate::controls::{ButtonGesture, GestureDetector, GestureTiming};
use crate::events::{CallAction, Command, DaemonEvent, DaemonHandle, publish};
use crate::link::Link;
use crate::notify::Notifier;
use crate::pairing::ConfirmSource;
use crate::telephony::{CallSummary, HfpLink, Update};
use crate::tones::Chime;

pub use crate::events::{COMMAND_CAPACITY, EVENT_CAPACITY};

/// HFP version in our SDP record: 1.8.
const HFP_VERSION: u16 = 0x0108;

/// Errors that stop the daemon.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// Bluetooth could not be set up (no adapter, no bluetoothd, profile taken).
    #[error("Bluetooth: {0}")]
    Bluetooth(#[from] BluetoothError),
    /// The daemon has stopped and takes no more commands.
    #[error("the daemon has stopped")]
    Stopped,
}

/// Runs the daemon until `shutdown` completes, then stops gracefully.
pub async fn run(
    config: Config,
    hal: Hal,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    Daemon::new(config, hal).run(shutdown).await
}

/// A daemon ready to run; [`handle`](Self::handle) gives a way to command and observe it.
pub struct Daemon {
    config: Arc<Config>,
    hal: Hal,
    events: broadcast::Sender<DaemonEvent>,
    commands_tx: mpsc::Sender<Command>,
    commands: mpsc::Receiver<Command>,
    notifier: Notifier,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("hal", &self.hal)
            .finish_non_exhaustive()
    }
}

impl Daemon {
    /// Prepares a daemon; nothing runs until [`run`](Self::run).
    pub fn new(config: Config, hal: Hal) -> Self {
        let (commands_tx, commands) = mpsc::channel(COMMAND_CAPACITY);
        Daemon {
            config: Arc::new(config),
            hal,
            events: broadcast::channel(EVENT_CAPACITY).0,
            commands_tx,
            commands,
            notifier: Notifier::from_env(),
        }
    }

    /// A handle for sending commands and subscribing to events.
    pub fn handle(&self) -> DaemonHandle {
        DaemonHandle {
            commands: self.commands_tx.clone(),
            events: self.events.clone(),
        }
    }

    /// Runs until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
        let Daemon {
            config,
            hal,
            events,
            commands_tx,
            mut commands,
            notifier,
        } = self;
        let Hal {
            bluetooth: host,
            audio_out,
            audio_in: _audio_in,
            buttons,
            amplifier,
        } = hal;
        tracing::info!(output = %audio_out.describe(), "audio output");
        let audio = AudioRouter::new(
            audio_out,
            amplifier,
            AudioPolicy::from_config(&config.audio),
            events.clone(),
        );

        // Subscribe before anything can happen, so no event or request is missed.
        let mut device_events = host.device_events().await?;
        let mut agent = host.register_agent().await?;
        let mut hfp_connections = host
            .register_profile(ProfileSpec {
                kind: ProfileKind::HandsFree,
                features: Some(sdp_features(&config)),
                version: Some(HFP_VERSION),
            })
            .await?;
        // The API is optional for the car's own job: a bus problem is logged, not fatal.
        let _api = if config.dbus.enabled {
            match dbus::serve(
                &config.dbus,
                DaemonHandle {
                    commands: commands_tx.clone(),
                    events: events.clone(),
                },
            )
            .await
            {
                Ok(api) => Some(api),
                Err(e) => {
                    tracing::error!(error = %e, bus = %config.dbus.bus, "D-Bus API unavailable; buttons still work");
                    None
                }
            }
        } else {
            None
        };

        audio.chime(Chime::Startup);
        let mut link = Link::new(host.clone(), audio.clone(), events.clone(), config.clone());
        link.start().await?;

        let (button_tx, mut button_rx) = mpsc::channel::<ButtonEvent>(32);
        let button_tasks: Vec<_> = buttons
            .into_iter()
            .map(|mut source| {
                let tx = button_tx.clone();
                tokio::spawn(async move {
                    loop {
                        match source.next_event().await {
                            Ok(event) => {
                                if tx.send(event).await.is_err() {
                                    return;
                                }
                            }
                            Err(e) => {
                                tracing::warn!(source = %source.describe(), error = %e, "button source stopped");
                                return;
                            }
                        }
                    }
                })
            })
            .collect();
        drop(button_tx);

        let mut state = State {
            config: config.clone(),
            link,
            audio: audio.clone(),
            events: events.clone(),
            gestures: GestureDetector::new(gesture_timing(&config)),
            phones: HashMap::new(),
        };
        let (update_tx, mut updates) = mpsc::channel::<(codriver_hal::Address, Update)>(64);

        notifier.ready();
        publish(&events, DaemonEvent::Ready);
        let watchdog = notifier.spawn_watchdog();

        tokio::pin!(shutdown);
        loop {
            let deadline = [state.link.next_deadline(), state.gestures.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            tokio::select! {
                () = &mut shutdown => break,
                Some(cmd) = commands.recv() => state.on_command(cmd).await,
                Some(request) = agent.recv() => state.link.on_agent(request).await,
                Some(event) = device_events.recv() => state.link.on_device(event).await,
                Some(conn) = hfp_connections.recv() => state.on_hfp_connection(conn, &update_tx),
                Some(edge) = button_rx.recv() => {
                    if let Some(g) = state.gestures.on_edge(&edge.button, edge.pressed, edge.at) {
                        state.on_gesture(g).await;
                    }
                }
                Some((device, update)) = updates.recv() => state.on_update(device, update),
                () = sleep_until(deadline) => {
                    let now = Instant::now();
                    state.link.on_timer(now).await;
                    for g in state.gestures.on_timeout(now) {
                        state.on_gesture(g).await;
                    }
                }
            }
        }

        tracing::info!("shutting down");
        notifier.stopping();
        publish(&events, DaemonEvent::ShuttingDown);
        if let Some(w) = watchdog {
            w.abort();
        }
        for t in button_tasks {
            t.abort();
        }
        state.link.close_window("shutdown").await;
        // Dropping the links aborts their drivers and closes the RFCOMM sockets.
        state.phones.clear();
        Ok(())
    }
}

/// The main loop's state: the link manager, the phones' Hands-Free links and the controls.
struct State {
    config: Arc<Config>,
    link: Link,
    audio: AudioRouter,
    events: broadcast::Sender<DaemonEvent>,
    gestures: GestureDetector,
    phones: HashMap<codriver_hal::Address, Phone>,
}

/// A phone with a Hands-Free link.
struct Phone {
    link: HfpLink,
    calls: CallSummary,
}

impl State {
    async fn on_command(&mut self, command: Command) {
        match command {
            Command::OpenPairingWindow(reply) => {
                reply.send(self.link.open_window().await.map_err(|e| e.to_string()));
            }
            Command::ClosePairingWindow(reply) => {
                self.link.close_window("request").await;
                reply.send(Ok(()));
            }
            Command::ConfirmPairing(accept, reply) => {
                reply.send(self.link.confirm(accept, ConfirmSource::Dbus));
            }
            Command::StopReconnecting(reply) => {
                self.link.stop_reconnecting();
                reply.send(Ok(()));
            }
            Command::Call(action, reply) => reply.send(self.call_action(action)),
            Command::Reload(config, reply) => {
                self.apply_config(Arc::new(*config));
                reply.send(Ok(()));
            }
        }
    }

    fn apply_config(&mut self, config: Arc<Config>) {
        self.audio
            .set_policy(AudioPolicy::from_config(&config.audio));
        self.gestures.set_timing(gesture_timing(&config));
        self.link.set_config(config.clone());
        if config.adapter != self.config.adapter || config.hfp != self.config.hfp {
            tracing::warn!("adapter and [hfp] changes take effect at the next restart");
        }
        self.config = config;
        publish(&self.events, DaemonEvent::ConfigReloaded);
    }

    fn on_hfp_connection(
        &mut self,
        conn: ProfileConnection,
        updates: &mpsc::Sender<(codriver_hal::Address, Update)>,
    ) {
        let ProfileConnection {
            device,
            kind,
            stream,
        } = conn;
        self.link.on_profile_connected(device, kind);
        let link = HfpLink::spawn(device, stream, hfp_config(&self.config), updates.clone());
        // A new link replaces an old one to the same phone (it reconnected).
        self.phones.insert(
            device,
            Phone {
                link,
                calls: CallSummary::default(),
            },
        );
    }

    fn on_update(&mut self, device: codriver_hal::Address, update: Update) {
        match update {
            Update::Events { events, calls } => {
                let summary = CallSummary::of(&calls);
                if let Some(p) = self.phones.get_mut(&device) {
                    p.calls = summary;
                }
                for event in events {
                    publish(
                        &self.events,
                        DaemonEvent::Telephony {
                            device,
                            line: event.to_string(),
                        },
                    );
                    match &event {
                        codriver_hfp::Event::SlcConnected { .. } => {
                            self.link.on_hands_free_ready(device);
                        }
                        codriver_hfp::Event::Ring { .. } => self.audio.chime(Chime::Ring),
                        _ => {}
                    }
                }
            }
            Update::Closed { reason } => {
                tracing::info!(%device, reason, "Hands-Free link ended");
                self.phones.remove(&device);
                self.link.on_hands_free_closed(device);
            }
        }
    }

    /// The contexts that apply now, most specific first.
    fn contexts(&self) -> Vec<BindingContext> {
        let mut out = Vec::new();
        if self.link.confirmation_pending() || self.link.window_open() {
            out.push(BindingContext::PairingWindow);
        }
        let calls = self.phones.values().map(|p| p.calls);
        let any = |f: fn(&CallSummary) -> bool| calls.clone().any(|c| f(&c));
        if any(|c| c.ringing) {
            out.push(BindingContext::Ringing);
        }
        if any(|c| c.waiting) {
            out.push(BindingContext::CallWaiting);
        }
        if any(|c| c.in_call) {
            out.push(BindingContext::InCall);
        }
        if out.is_empty() {
            out.push(BindingContext::Idle);
        }
        out
    }

    async fn on_gesture(&mut self, gesture: ButtonGesture) {
        let contexts = self.contexts();
        let bindings = self.config.controls.effective_bindings();
        let Some(action) = controls::resolve(&bindings, &gesture, &contexts) else {
            self.refuse(&gesture, &contexts);
            return;
        };
        tracing::info!(%gesture, action = %action, "button action");
        let outcome = match action {
            Action::ConfirmPairing | Action::RejectPairing => {
                let accept = action == Action::ConfirmPairing;
                self.link.confirm(accept, ConfirmSource::Button)
            }
            Action::OpenPairingWindow => self.link.open_window().await.map_err(|e| e.to_string()),
            // With a call waiting, answering holds the active call and takes the waiting one,
            // and rejecting turns the waiting caller away without touching the active call.
            Action::Answer if contexts.contains(&BindingContext::CallWaiting) => {
                self.call_action(CallAction::Swap)
            }
            Action::Answer => self.call_action(CallAction::Answer),
            Action::Reject if contexts.contains(&BindingContext::CallWaiting) => {
                self.call_action(CallAction::RejectWaiting)
            }
            Action::Reject | Action::Hangup => self.call_action(CallAction::Hangup),
            Action::Swap | Action::Hold => self.call_action(CallAction::Swap),
            Action::VoiceAssistant => self.call_action(CallAction::VoiceAssistant(true)),
            other => Err(format!("{other} is not available yet")),
        };
        match outcome {
            Ok(()) => {
                publish(
                    &self.events,
                    DaemonEvent::Action {
                        action: action.to_string(),
                    },
                );
                if !matches!(action, Action::OpenPairingWindow) {
                    self.audio.chime(Chime::Confirm);
                }
            }
            Err(reason) => {
                tracing::info!(%gesture, action = %action, reason, "action could not apply");
                self.refuse(&gesture, &contexts);
            }
        }
    }

    fn refuse(&self, gesture: &ButtonGesture, contexts: &[BindingContext]) {
        let context = contexts
            .first()
            .map_or_else(|| "idle".to_owned(), ToString::to_string);
        publish(
            &self.events,
            DaemonEvent::ActionRefused {
                gesture: gesture.to_string(),
                context,
            },
        );
        self.audio.chime(Chime::Error);
    }

    /// Sends a call action to the phone whose call it concerns: the ringing or in-call phone,
    /// else the first connected one.
    fn call_action(&self, action: CallAction) -> Result<(), String> {
        let phone = self
            .phones
            .values()
            .find(|p| p.calls.ringing || p.calls.in_call || p.calls.waiting)
            .or_else(|| self.phones.values().next())
            .ok_or_else(|| "no phone is connected".to_owned())?;
        phone.link.command(action)
    }
}

fn gesture_timing(config: &Config) -> GestureTiming {
    GestureTiming {
        debounce: config.controls.debounce,
        long_press: config.controls.long_press,
        double_press: config.controls.double_press,
    }
}

/// The engine configuration from `[hfp]`.
pub fn hfp_config(config: &Config) -> codriver_hfp::HfConfig {
    let bits = config
        .hfp
        .features
        .iter()
        .fold(0, |acc, f| acc | f.brsf_bit());
    codriver_hfp::HfConfig {
        features: codriver_hfp::HfFeatures(bits),
        codecs: config
            .hfp
            .codecs
            .iter()
            .filter_map(|c| codriver_hfp::Codec::from_name(c.as_str()))
            .collect(),
        echo_cancelling: config.hfp.echo_cancellation,
        command_timeout: config.hfp.command_timeout,
        ..codriver_hfp::HfConfig::default()
    }
}

/// The SDP SupportedFeatures of our HFP record: the low five BRSF bits map one to one, and
/// wide-band speech is bit 5 (HFP 1.8 table 5.3).
fn sdp_features(config: &Config) -> u16 {
    let bits = hfp_config(config).features.bits();
    let mut sdp = (bits & 0x1F) as u16;
    if config.hfp.codecs.contains(&codriver_config::Codec::Msbc) {
        sdp |= 0x20;
    }
    sdp
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
