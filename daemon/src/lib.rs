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
#[cfg(target_os = "linux")]
pub mod memory;
pub mod messages;
pub mod notify;
pub mod pairing;
pub mod simulate;
pub mod telephony;
pub mod tones;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use codriver_config::{Action, BindingContext, Config};
use codriver_hal::{
    AgentRequest, BluetoothError, BluetoothHost, ButtonEvent, DeviceEvent, Hal, ProfileConnection,
    ProfileKind, ProfileSpec, ServiceEvent,
};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{Duration, Instant};

use crate::audio::{AudioPolicy, AudioRouter};
use crate::controls::{ButtonGesture, GestureDetector, GestureTiming};
use crate::events::{
    CallAction, CallSnapshot, Command, DaemonEvent, DaemonHandle, MessageAction, PhoneSnapshot,
    Snapshot, publish,
};
use crate::link::Link;
use crate::notify::Notifier;
use crate::pairing::ConfirmSource;
use crate::telephony::{CallSummary, HfpLink, Update};
use crate::tones::Chime;

pub use crate::events::{COMMAND_CAPACITY, EVENT_CAPACITY};

/// HFP version in our SDP record: 1.8.
const HFP_VERSION: u16 = 0x0108;

/// First wait before setting Bluetooth up again after bluetoothd returned or a registration
/// channel closed; doubles per failed attempt up to [`RESTORE_MAX_DELAY`]. bluetoothd takes
/// the bus name before its adapters appear, so the first attempt may well fail.
const RESTORE_FIRST_DELAY: Duration = Duration::from_millis(250);

/// Longest wait between attempts to set Bluetooth up again.
const RESTORE_MAX_DELAY: Duration = Duration::from_secs(30);

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
    snapshot: watch::Sender<Snapshot>,
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
            snapshot: watch::channel(Snapshot::default()).0,
        }
    }

    /// A handle for sending commands and subscribing to events.
    pub fn handle(&self) -> DaemonHandle {
        DaemonHandle {
            commands: self.commands_tx.clone(),
            events: self.events.clone(),
            snapshot: self.snapshot.subscribe(),
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
            snapshot,
        } = self;
        let Hal {
            bluetooth: host,
            audio_out,
            audio_in,
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

        // Watch bluetoothd first, so a restart during start-up is not missed either. Without
        // the watch codriverd still works; it just cannot recover from a bluetoothd restart.
        let mut service_events = match host.service_events().await {
            Ok(rx) => Some(rx),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch bluetoothd; its restarts will not be recovered from");
                None
            }
        };
        // Subscribe before anything can happen, so no event or request is missed.
        let mut bluez = Registrations::register(host.as_ref(), &config).await?;
        // The API is optional for the car's own job: a bus problem is logged, not fatal.
        let _api = if config.dbus.enabled {
            match dbus::serve(
                &config.dbus,
                DaemonHandle {
                    commands: commands_tx.clone(),
                    events: events.clone(),
                    snapshot: snapshot.subscribe(),
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
        // Voice messages are optional for the car's job: a spool or listener problem is
        // logged, not fatal. Dropping `_messages` at the end stops its tasks.
        let _messages = match messages::Messages::start(
            &config.messages,
            audio.clone(),
            audio_in,
            events.clone(),
        )
        .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "voice messages unavailable");
                None
            }
        };
        let messages = _messages.as_ref().map(|m| m.control.clone());
        let mut link = Link::new(host.clone(), audio.clone(), events.clone(), config.clone());
        link.start().await?;

        let (button_tx, button_rx) = mpsc::channel::<ButtonEvent>(32);
        let mut button_rx = Some(button_rx);
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
            host: host.clone(),
            recovery: Recovery::default(),
            active_phone: None,
            link,
            audio: audio.clone(),
            events: events.clone(),
            gestures: GestureDetector::new(gesture_timing(&config)),
            phones: HashMap::new(),
            messages,
        };
        let (update_tx, mut updates) = mpsc::channel::<(codriver_hal::Address, Update)>(64);

        notifier.ready();
        publish(&events, DaemonEvent::Ready);
        let watchdog = notifier.spawn_watchdog();

        tokio::pin!(shutdown);
        loop {
            let deadline = [
                state.link.next_deadline(),
                state.gestures.poll_timeout(),
                state.recovery.retry_at,
            ]
            .into_iter()
            .flatten()
            .min();
            // Every receiver that can close is an `Option`: a closed one is logged and set to
            // `None` (its branch then waits forever on purpose) instead of being skipped
            // silently on every turn.
            tokio::select! {
                () = &mut shutdown => break,
                // The daemon holds a sender of `commands` and `updates`: they never close.
                Some(cmd) = commands.recv() => state.on_command(cmd).await,
                Some((device, update)) = updates.recv() => state.on_update(device, update),
                event = recv(&mut service_events) => match event {
                    Some(event) => state.on_service(event, &mut bluez),
                    None => {
                        tracing::error!("stopped watching bluetoothd; its restarts will not be recovered from");
                        service_events = None;
                    }
                },
                request = recv(&mut bluez.agent) => match request {
                    Some(request) => state.link.on_agent(request).await,
                    None => state.registration_closed("pairing agent", &mut bluez.agent),
                },
                event = recv(&mut bluez.device_events) => match event {
                    Some(event) => state.link.on_device(event).await,
                    None => state.registration_closed("device events", &mut bluez.device_events),
                },
                conn = recv(&mut bluez.hfp) => match conn {
                    Some(conn) => state.on_hfp_connection(conn, &update_tx),
                    None => state.registration_closed("Hands-Free profile", &mut bluez.hfp),
                },
                edge = recv(&mut button_rx) => match edge {
                    Some(edge) => state.on_edge(edge).await,
                    None => {
                        tracing::info!("no button source is left; buttons are unavailable");
                        button_rx = None;
                    }
                },
                (device, result) = state.link.attempt_finished() => {
                    state.link.on_attempt_finished(device, result);
                }
                () = sleep_until(deadline) => {
                    let now = Instant::now();
                    if state.recovery.retry_at.is_some_and(|t| t <= now) {
                        state.restore(&mut bluez).await;
                    }
                    state.link.on_timer(now).await;
                    for g in state.gestures.on_timeout(now) {
                        state.on_gesture(g).await;
                    }
                }
            }
            snapshot.send_if_modified(|s| state.snapshot_into(s));
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

/// What bluetoothd holds for us: the receivers of the agent, the profile and the device
/// events. Replaced as a whole when bluetoothd comes back; a field is `None` once its
/// channel closed.
struct Registrations {
    device_events: Option<mpsc::Receiver<DeviceEvent>>,
    agent: Option<mpsc::Receiver<AgentRequest>>,
    hfp: Option<mpsc::Receiver<ProfileConnection>>,
}

impl Registrations {
    /// Subscribes to device events, registers the agent and the Hands-Free profile. A
    /// profile UUID owned by another program fails here with
    /// [`BluetoothError::ProfileAlreadyRegistered`], which names the likely owner.
    async fn register(host: &dyn BluetoothHost, config: &Config) -> Result<Self, BluetoothError> {
        let device_events = host.device_events().await?;
        let agent = host.register_agent().await?;
        let hfp = host
            .register_profile(ProfileSpec {
                kind: ProfileKind::HandsFree,
                features: Some(sdp_features(config)),
                version: Some(HFP_VERSION),
            })
            .await?;
        Ok(Registrations {
            device_events: Some(device_events),
            agent: Some(agent),
            hfp: Some(hfp),
        })
    }

    fn none() -> Self {
        Registrations {
            device_events: None,
            agent: None,
            hfp: None,
        }
    }
}

/// Recovery from bluetoothd restarts and closed registration channels.
#[derive(Debug, Default)]
struct Recovery {
    /// bluetoothd left the bus; set until it is back and everything is registered again.
    lost_since: Option<Instant>,
    /// bluetoothd is known to be away (between `Vanished` and `Appeared`).
    away: bool,
    /// When to (re)try setting Bluetooth up again.
    retry_at: Option<Instant>,
    /// The delay after the next failed attempt.
    next_delay: Option<Duration>,
}

impl Recovery {
    /// Schedules the next attempt with capped exponential backoff; returns the delay.
    fn schedule(&mut self, now: Instant) -> Duration {
        let delay = self.next_delay.unwrap_or(RESTORE_FIRST_DELAY);
        self.next_delay = Some((delay * 2).min(RESTORE_MAX_DELAY));
        self.retry_at = Some(now + delay);
        delay
    }
}

/// The main loop's state: the link manager, the phones' Hands-Free links and the controls.
struct State {
    config: Arc<Config>,
    host: Arc<dyn BluetoothHost>,
    recovery: Recovery,
    /// The phone call actions go to, as last announced.
    active_phone: Option<codriver_hal::Address>,
    link: Link,
    audio: AudioRouter,
    events: broadcast::Sender<DaemonEvent>,
    gestures: GestureDetector,
    phones: HashMap<codriver_hal::Address, Phone>,
    /// Playback and reply actions, when the messages service runs.
    messages: Option<messages::MessagesControl>,
}

/// A phone with a Hands-Free link.
struct Phone {
    link: HfpLink,
    calls: CallSummary,
    /// What the D-Bus objects show: SLC state, indicators, speaker gain, the call list.
    shown: PhoneSnapshot,
}

impl State {
    /// bluetoothd left or came back.
    fn on_service(&mut self, event: ServiceEvent, bluez: &mut Registrations) {
        match event {
            ServiceEvent::Vanished => {
                if self.recovery.away {
                    return;
                }
                tracing::warn!(
                    "bluetoothd left the system bus: pairing and reconnects wait for it to return"
                );
                // The agent and profile objects are gone on bluetoothd's side; drop ours.
                *bluez = Registrations::none();
                self.recovery.away = true;
                self.recovery.retry_at = None;
                self.recovery.next_delay = None;
                self.recovery.lost_since.get_or_insert_with(Instant::now);
                self.link.service_lost();
                publish(&self.events, DaemonEvent::BluetoothLost);
                self.audio.chime(Chime::Disconnected);
            }
            ServiceEvent::Appeared => {
                if !self.recovery.away && self.recovery.lost_since.is_none() {
                    // The first owner we see (start-up): nothing was lost.
                    return;
                }
                tracing::info!("bluetoothd is back on the system bus: setting Bluetooth up again");
                self.recovery.away = false;
                self.recovery.next_delay = None;
                // At once: a failure backs off from there.
                self.recovery.retry_at = Some(Instant::now());
            }
        }
    }

    /// A registration's channel closed without bluetoothd being reported gone (the backend
    /// dropped it). Set everything up again, with backoff; a `Vanished` that follows
    /// cancels this until bluetoothd is back.
    fn registration_closed<T>(&mut self, what: &str, rx: &mut Option<mpsc::Receiver<T>>) {
        *rx = None;
        if self.recovery.away {
            return;
        }
        tracing::warn!(
            channel = what,
            "a Bluetooth registration closed; registering again"
        );
        if self.recovery.retry_at.is_none() {
            self.recovery.schedule(Instant::now());
        }
    }

    /// Registers agent and profile again, sets the adapter up and reconnects phones; on
    /// failure tries again later.
    async fn restore(&mut self, bluez: &mut Registrations) {
        self.recovery.retry_at = None;
        if self.recovery.away {
            return;
        }
        let result = async {
            let fresh = Registrations::register(self.host.as_ref(), &self.config).await?;
            // The new device-event subscription is in place before the devices are listed.
            *bluez = fresh;
            self.link.restart().await
        }
        .await;
        match result {
            Ok(()) => {
                self.recovery.next_delay = None;
                match self.recovery.lost_since.take() {
                    Some(since) => {
                        let after = since.elapsed();
                        tracing::info!(
                            ?after,
                            "Bluetooth restored: agent and profile registered again"
                        );
                        publish(&self.events, DaemonEvent::BluetoothRestored { after });
                    }
                    None => tracing::info!("Bluetooth registrations renewed"),
                }
            }
            Err(e) => {
                *bluez = Registrations::none();
                let retry_in = self.recovery.schedule(Instant::now());
                if matches!(e, BluetoothError::ProfileAlreadyRegistered { .. }) {
                    tracing::error!(error = %e, ?retry_in, "cannot set Bluetooth up again");
                } else {
                    tracing::warn!(error = %e, ?retry_in, "cannot set Bluetooth up again yet");
                }
            }
        }
    }

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
            Command::CallOn(device, action, reply) => reply.send(match self.phones.get(&device) {
                Some(phone) => phone.link.command(action),
                None => Err(format!("{device} has no Hands-Free connection")),
            }),
            Command::Volume(up, reply) => {
                let contexts = self.contexts();
                reply.send(self.volume(up, &contexts));
            }
            Command::Messages(action, reply) => match &self.messages {
                Some(m) => m.send(action, reply),
                None => reply.send(Err(NO_MESSAGES.to_owned())),
            },
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
        if !self.link.may_connect(device) {
            // Dropping the stream closes the RFCOMM link.
            tracing::warn!(%device, "refusing Hands-Free from a device not paired through codriver");
            publish(
                &self.events,
                DaemonEvent::ConnectionRefused {
                    device,
                    profile: kind,
                },
            );
            return;
        }
        self.link.on_profile_connected(device, kind);
        let link = HfpLink::spawn(device, stream, hfp_config(&self.config), updates.clone());
        // A new link replaces an old one to the same phone (it reconnected).
        self.phones.insert(
            device,
            Phone {
                link,
                calls: CallSummary::default(),
                shown: PhoneSnapshot {
                    address: device,
                    name: String::new(),
                    connected: false,
                    active: false,
                    indicators: Vec::new(),
                    speaker_volume: None,
                    calls: Vec::new(),
                },
            },
        );
        self.refresh_active_phone();
    }

    /// The one phone that takes call actions: a phone with a call in progress keeps them;
    /// otherwise the connected phone with the highest configured priority (then the most
    /// recently used).
    fn active_phone(&self) -> Option<(codriver_hal::Address, &Phone)> {
        self.phones
            .iter()
            .max_by_key(|(address, p)| {
                let busy = p.calls.ringing || p.calls.in_call || p.calls.waiting;
                (busy, self.link.priority(**address), **address)
            })
            .map(|(a, p)| (*a, p))
    }

    /// Announces a change of the active phone.
    fn refresh_active_phone(&mut self) {
        let now = self.active_phone().map(|(a, _)| a);
        if now != self.active_phone {
            self.active_phone = now;
            if let Some(device) = now {
                tracing::info!(%device, "active phone for calls");
            }
            publish(&self.events, DaemonEvent::ActivePhone { device: now });
        }
    }

    fn on_update(&mut self, device: codriver_hal::Address, update: Update) {
        match update {
            Update::Events { events, calls } => {
                let summary = CallSummary::of(&calls);
                if let Some(p) = self.phones.get_mut(&device) {
                    p.calls = summary;
                    p.show(&events, &calls);
                }
                self.refresh_active_phone();
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
                self.refresh_active_phone();
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
        let busy = !out.is_empty();
        let status = self
            .messages
            .as_ref()
            .map(|m| m.status())
            .unwrap_or_default();
        if status.recording {
            out.push(BindingContext::Recording);
        } else {
            if status.in_playing_context(Instant::now()) {
                out.push(BindingContext::Playing);
            }
            if status.waiting > 0 {
                out.push(BindingContext::MessageWaiting);
            }
            // Gestures the message contexts leave unbound keep their idle meaning (a long
            // press with a message waiting still opens the pairing window).
            if !busy {
                out.push(BindingContext::Idle);
            }
        }
        out
    }

    /// A button edge: a rotary detent acts at once; other edges go through the gesture
    /// detector, which reports a short press at release when no double press is bound now.
    async fn on_edge(&mut self, edge: ButtonEvent) {
        if let Some(action) = controls::rotary_action(&edge.button) {
            let gesture = ButtonGesture {
                button: edge.button,
                gesture: codriver_config::Gesture::Short,
            };
            let contexts = self.contexts();
            self.perform(action, gesture, contexts).await;
            return;
        }
        let double_bound = !edge.pressed
            && controls::double_bound(
                &self.config.controls.effective_bindings(),
                &edge.button,
                &self.contexts(),
            );
        let gesture = self.gestures.on_edge_with(
            &edge.button,
            edge.pressed,
            edge.at,
            edge.pressed || double_bound,
        );
        if let Some(g) = gesture {
            self.on_gesture(g).await;
        }
    }

    async fn on_gesture(&mut self, gesture: ButtonGesture) {
        let contexts = self.contexts();
        let bindings = self.config.controls.effective_bindings();
        let Some(action) = controls::resolve(&bindings, &gesture, &contexts) else {
            self.refuse(&gesture, &contexts);
            return;
        };
        self.perform(action, gesture, contexts).await;
    }

    /// Carries out `action`; a chime confirms it, the error tone says it could not apply.
    async fn perform(
        &mut self,
        action: Action,
        gesture: ButtonGesture,
        contexts: Vec<BindingContext>,
    ) {
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
            Action::VolumeUp | Action::VolumeDown => {
                self.volume(action == Action::VolumeUp, &contexts)
            }
            Action::PlayNextMessage => self.messages(MessageAction::PlayNext).await,
            Action::Replay => self.messages(MessageAction::Replay).await,
            Action::Skip => self.messages(MessageAction::Skip).await,
            Action::Stop => self.messages(MessageAction::Stop).await,
            Action::RecordReply => self.messages(MessageAction::RecordReply).await,
            Action::SendReply => self.messages(MessageAction::SendReply).await,
            Action::CancelReply => self.messages(MessageAction::CancelReply).await,
        };
        match outcome {
            Ok(()) => {
                publish(
                    &self.events,
                    DaemonEvent::Action {
                        action: action.to_string(),
                    },
                );
                // These have sounds of their own (the pairing chime, the recording tones).
                if !matches!(
                    action,
                    Action::OpenPairingWindow
                        | Action::RecordReply
                        | Action::SendReply
                        | Action::CancelReply
                ) {
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

    /// Hands a playback or reply action to the messages service and waits for its outcome
    /// (the player answers at once; its long work runs as a job).
    async fn messages(&self, action: MessageAction) -> Result<(), String> {
        let Some(m) = &self.messages else {
            return Err(NO_MESSAGES.to_owned());
        };
        let (reply, outcome) = events::Reply::channel();
        m.send(action, reply);
        match tokio::time::timeout(Duration::from_secs(2), outcome).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("voice messages have stopped".to_owned()),
            Err(_) => Err("the player did not answer".to_owned()),
        }
    }

    /// Volume up or down: in a call the phone's speaker gain (`AT+VGS`), otherwise chimes
    /// and messages in the audio router.
    fn volume(&mut self, up: bool, contexts: &[BindingContext]) -> Result<(), String> {
        let in_call = contexts
            .iter()
            .any(|c| matches!(c, BindingContext::InCall | BindingContext::CallWaiting));
        if !in_call {
            return self.audio.step_volume(up).map(drop);
        }
        let Some((device, _)) = self.active_phone() else {
            return Err("no phone is connected".to_owned());
        };
        let Some(phone) = self.phones.get_mut(&device) else {
            return Err("no phone is connected".to_owned());
        };
        // Until the phone reports its gain, assume the middle of the 0–15 scale.
        let level = phone.shown.speaker_volume.unwrap_or(VGS_DEFAULT);
        let next = match (up, level) {
            (true, 15..) => return Err("the call volume is already at its maximum".to_owned()),
            (false, 0) => return Err("the call volume is already at its minimum".to_owned()),
            (true, l) => l + 1,
            (false, l) => l - 1,
        };
        phone.link.command(CallAction::SpeakerVolume(next))?;
        // Counted at once, so quick detents each move one step before the phone confirms.
        phone.shown.speaker_volume = Some(next);
        Ok(())
    }

    /// Writes what the D-Bus objects show into `out`; returns whether it changed.
    fn snapshot_into(&self, out: &mut Snapshot) -> bool {
        let mut phones: Vec<PhoneSnapshot> = self
            .phones
            .values()
            .map(|p| {
                let mut shown = p.shown.clone();
                shown.active = self.active_phone == Some(shown.address);
                shown.name = self
                    .link
                    .device_name(shown.address)
                    .unwrap_or_default()
                    .to_owned();
                shown
            })
            .collect();
        phones.sort_by_key(|p| p.address);
        let next = Snapshot {
            phones,
            volume: self.audio.volume(),
        };
        if *out == next {
            return false;
        }
        *out = next;
        true
    }

    /// Sends a call action to the active phone (see [`State::active_phone`]).
    fn call_action(&self, action: CallAction) -> Result<(), String> {
        let (_, phone) = self
            .active_phone()
            .ok_or_else(|| "no phone is connected".to_owned())?;
        phone.link.command(action)
    }
}

/// Why message actions fail when the service is off.
const NO_MESSAGES: &str = "voice messages are not enabled ([messages] companion_tcp)";

/// The speaker gain assumed before the phone reports one (middle of 0–15).
const VGS_DEFAULT: u8 = 8;

impl Phone {
    /// Updates what the D-Bus objects show from a drain of engine events.
    fn show(&mut self, events: &[codriver_hfp::Event], calls: &[codriver_hfp::Call]) {
        use codriver_hfp::{Direction, Event, VolumeTarget};
        for event in events {
            match event {
                Event::SlcConnected { .. } => self.shown.connected = true,
                Event::Indicator { name, value } => {
                    match self.shown.indicators.iter_mut().find(|(n, _)| n == name) {
                        Some((_, v)) => *v = *value,
                        None => self.shown.indicators.push((name.clone(), *value)),
                    }
                }
                Event::Volume {
                    target: VolumeTarget::Speaker,
                    level,
                } => self.shown.speaker_volume = Some(*level),
                _ => {}
            }
        }
        self.shown.calls = calls
            .iter()
            .map(|c| CallSnapshot {
                index: c.index,
                state: c.state.name().to_owned(),
                direction: match c.direction {
                    Direction::Incoming => "incoming",
                    Direction::Outgoing => "outgoing",
                }
                .to_owned(),
                number: c.number.clone().unwrap_or_default(),
                name: c.name.clone().unwrap_or_default(),
                multiparty: c.multiparty,
            })
            .collect();
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

/// Receives from `rx`, or waits forever when there is no receiver.
async fn recv<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
