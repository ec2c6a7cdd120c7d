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
mod callaudio;
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
mod speech;
pub mod telephony;
pub mod tones;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use codriver_config::{Action, BindingContext, Config};
use codriver_hal::{
    AgentRequest, BluetoothError, BluetoothHost, ButtonEvent, DeviceEvent, Focus, Hal,
    ProfileConnection, ProfileKind, ProfileSpec, ServiceEvent,
};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{Duration, Instant};

use crate::audio::{AudioPolicy, AudioRouter};
use crate::controls::{ButtonGesture, GestureDetector, GestureTiming};
use crate::events::{
    CallAction, CallSnapshot, Command, DaemonEvent, DaemonHandle, MessageAction, PhoneSnapshot,
    Reply, Snapshot, publish,
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
    /// SCO links for call audio; without one, calls have no audio through the car.
    sco: Option<Arc<dyn codriver_hal::ScoTransport>>,
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
            sco: None,
        }
    }

    /// Carries call audio over `sco` (kernel SCO sockets on a head unit, the mock in
    /// simulation): the daemon accepts the phones' SCO links and runs the call-audio pipeline
    /// between them, the speakers and the microphone.
    pub fn with_sco(mut self, sco: Arc<dyn codriver_hal::ScoTransport>) -> Self {
        self.sco = Some(sco);
        self
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
            sco,
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
        // Voice messages are optional for the car's job: a spool or listener problem is
        // logged, not fatal. Dropping `messages` at the end stops its tasks.
        let messages = match messages::Messages::start(
            &config.messages,
            audio.clone(),
            audio_in.clone(),
            events.clone(),
        )
        .await
        {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::error!(error = %e, "voice messages unavailable");
                None
            }
        };
        // Subscribe before anything can happen, so no event or request is missed. The
        // companion transports only when the messages service runs to take their connections.
        let mut bluez = Registrations::register(host.as_ref(), &config, messages.is_some()).await?;
        // The API is optional for the car's own job: a bus problem is logged, not fatal.
        let _api = if config.dbus.enabled {
            match dbus::serve(
                &config.dbus,
                DaemonHandle {
                    commands: commands_tx.clone(),
                    events: events.clone(),
                    snapshot: snapshot.subscribe(),
                },
                messages.as_ref().map(|m| m.control.watch()),
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

        // The call-audio task reports wide band failing on a link; the main loop then offers
        // that phone CVSD only. The sender lives in the task (or here): it never closes first.
        let (fallback_tx, mut fallbacks) = mpsc::channel::<callaudio::CodecFallback>(4);
        let call_audio = sco.map(|sco| {
            callaudio::CallAudio::spawn(
                sco,
                audio.clone(),
                audio_in,
                config.hfp.echo_cancellation,
                events.clone(),
                fallback_tx.clone(),
                config.audio.realtime_priority.map(|p| p.get()),
            )
        });
        let mut state = State {
            call_audio,
            config: config.clone(),
            host: host.clone(),
            recovery: Recovery::default(),
            active_phone: None,
            link,
            audio: audio.clone(),
            events: events.clone(),
            gestures: GestureDetector::new(gesture_timing(&config)),
            phones: HashMap::new(),
            companion: messages.as_ref().map(messages::Messages::connections),
            messages: messages.as_ref().map(|m| m.control.clone()),
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
                Some(fallback) = fallbacks.recv() => state.on_codec_fallback(fallback),
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
                conn = recv(&mut bluez.companion) => match conn {
                    Some(conn) => state.on_companion_connection(conn),
                    None => state.registration_closed("companion profile", &mut bluez.companion),
                },
                conn = recv(&mut bluez.companion_le) => match conn {
                    Some(conn) => state.on_companion_connection(conn),
                    None => state.registration_closed("companion LE listener", &mut bluez.companion_le),
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
        drop(messages);
        Ok(())
    }
}

/// What bluetoothd holds for us: the receivers of the agent, the profiles and the device
/// events. Replaced as a whole when bluetoothd comes back; a field is `None` once its
/// channel closed (or, for the companion transports, when they could not be set up).
struct Registrations {
    device_events: Option<mpsc::Receiver<DeviceEvent>>,
    agent: Option<mpsc::Receiver<AgentRequest>>,
    hfp: Option<mpsc::Receiver<ProfileConnection>>,
    /// The companion profile over RFCOMM.
    companion: Option<mpsc::Receiver<ProfileConnection>>,
    /// The companion LE L2CAP channel (with its GATT service).
    companion_le: Option<mpsc::Receiver<ProfileConnection>>,
}

impl Registrations {
    /// Subscribes to device events, registers the agent and the Hands-Free profile, then the
    /// companion transports (RFCOMM profile, LE L2CAP listener with its GATT service) when
    /// the messages service runs. A Hands-Free UUID owned by another program fails here with
    /// [`BluetoothError::ProfileAlreadyRegistered`], which names the likely owner; the
    /// companion transports are optional for the car's job, so their failures are logged.
    async fn register(
        host: &dyn BluetoothHost,
        config: &Config,
        companion: bool,
    ) -> Result<Self, BluetoothError> {
        let device_events = host.device_events().await?;
        let agent = host.register_agent().await?;
        let hfp = host
            .register_profile(ProfileSpec {
                kind: ProfileKind::HandsFree,
                features: Some(sdp_features(config)),
                version: Some(HFP_VERSION),
            })
            .await?;
        let mut registrations = Registrations {
            device_events: Some(device_events),
            agent: Some(agent),
            hfp: Some(hfp),
            companion: None,
            companion_le: None,
        };
        if !companion {
            return Ok(registrations);
        }
        let spec = ProfileSpec {
            kind: ProfileKind::Companion,
            features: None,
            version: None,
        };
        match host.register_profile(spec).await {
            Ok(rx) => registrations.companion = Some(rx),
            // bluetoothd went away meanwhile: the whole set-up is retried.
            Err(e @ BluetoothError::ServiceUnavailable(_)) => return Err(e),
            Err(e) => {
                tracing::error!(error = %e, "companion profile over RFCOMM unavailable");
            }
        }
        match host.companion_le_listen().await {
            Ok(rx) => registrations.companion_le = Some(rx),
            Err(e @ BluetoothError::ServiceUnavailable(_)) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "companion over LE L2CAP unavailable");
            }
        }
        Ok(registrations)
    }

    fn none() -> Self {
        Registrations {
            device_events: None,
            agent: None,
            hfp: None,
            companion: None,
            companion_le: None,
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
    /// The call-audio task, when the daemon has an SCO transport.
    call_audio: Option<callaudio::CallAudio>,
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
    /// Hands companion connections to the messages service; `None` when it did not start.
    companion: Option<mpsc::Sender<messages::CompanionConnection>>,
    /// Playback and reply actions, when the messages service runs.
    messages: Option<messages::MessagesControl>,
}

/// A phone with a Hands-Free link.
struct Phone {
    link: HfpLink,
    calls: CallSummary,
    /// The caller of the call ringing now was announced; cleared when nothing rings.
    caller_announced: bool,
    /// The phone rings in band (its own ringtone over the audio connection): from `+BRSF`,
    /// then `+BSIR`.
    in_band_ring: bool,
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
            let fresh =
                Registrations::register(self.host.as_ref(), &self.config, self.companion.is_some())
                    .await?;
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
            Command::ConnectPhone(device, reply) => reply.send(self.link.connect_now(device)),
            Command::DisconnectPhone(device, reply) => self.disconnect_phone(device, reply),
        }
    }

    /// Drops `device`'s Hands-Free link and asks BlueZ to disconnect it, off the main loop
    /// (BlueZ may take seconds); the reply carries BlueZ's answer.
    fn disconnect_phone(&mut self, device: codriver_hal::Address, reply: Reply) {
        if let Err(e) = self.link.hold(device) {
            reply.send(Err(e));
            return;
        }
        // Dropping the link aborts its driver and closes the RFCOMM socket.
        if self.phones.remove(&device).is_some() {
            self.link.on_hands_free_closed(device);
            self.refresh_active_phone();
        }
        let host = self.host.clone();
        tokio::spawn(async move {
            reply.send(
                host.disconnect_device(device)
                    .await
                    .map_err(|e| e.to_string()),
            );
        });
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
            transport: _,
        } = conn;
        if !self.admit(device, kind) {
            // Dropping the stream closes the RFCOMM link.
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
                caller_announced: false,
                in_band_ring: false,
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

    /// A companion connection (RFCOMM or LE L2CAP): handed to the messages service when the
    /// phone paired through codriver's policy, closed otherwise. BlueZ and the kernel already
    /// required an encrypted link with a bond; the bond alone is not enough.
    /// Whether `device` may use `kind`: only phones paired through codriver's policy do
    /// (see [`Link::may_connect`]); a refusal is logged and announced as an event.
    fn admit(&self, device: codriver_hal::Address, kind: ProfileKind) -> bool {
        if self.link.may_connect(device) {
            return true;
        }
        tracing::warn!(%device, profile = %kind, "refusing a connection from a device not paired through codriver");
        publish(
            &self.events,
            DaemonEvent::ConnectionRefused {
                device,
                profile: kind,
            },
        );
        false
    }

    fn on_companion_connection(&mut self, conn: ProfileConnection) {
        let ProfileConnection {
            device,
            kind,
            transport,
            stream,
        } = conn;
        if !self.admit(device, kind) {
            // Dropping the stream closes the channel.
            return;
        }
        let Some(companion) = &self.companion else {
            tracing::warn!(%device, "companion connection closed: the messages service is not running");
            return;
        };
        let peer = format!("{device} over {transport}");
        match companion.try_send(messages::CompanionConnection { stream, peer }) {
            Ok(()) => self.link.on_profile_connected(device, kind),
            Err(_) => {
                tracing::warn!(%device, %transport, "companion connection closed: the messages service is busy or stopped");
            }
        }
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
                    if !summary.ringing {
                        p.caller_announced = false;
                    }
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
                        codriver_hfp::Event::Ring { number, name } => {
                            if self.rings_in_band(device) {
                                // HFP 1.8 §4.13.1: the phone opened the audio connection
                                // before RING and plays its own ringtone through it.
                                tracing::info!(
                                    %device,
                                    "in-band ringing: the phone's ringtone comes through call audio; no local ringtone"
                                );
                            } else {
                                self.audio.chime(Chime::Ring);
                            }
                            self.announce_caller(device, number.as_deref(), name.as_deref());
                        }
                        codriver_hfp::Event::CodecSelected(codec) => {
                            if let Some(call_audio) = &self.call_audio {
                                call_audio.set_codec(*codec);
                            }
                        }
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

    /// Wide band failed on a phone's link: offer that phone (or, when the link could not be
    /// set up at all and its address is unknown, the active phone) CVSD only, so its next
    /// `+BCS` picks CVSD.
    fn on_codec_fallback(&mut self, fallback: callaudio::CodecFallback) {
        let device = if self.phones.contains_key(&fallback.device) {
            Some(fallback.device)
        } else {
            self.active_phone().map(|(a, _)| a)
        };
        let Some(device) = device else {
            tracing::warn!(
                reason = fallback.reason,
                "mSBC failed, but no phone is connected"
            );
            return;
        };
        let Some(phone) = self.phones.get(&device) else {
            return;
        };
        tracing::warn!(
            %device,
            reason = fallback.reason,
            "mSBC keeps failing: offering CVSD only (AT+BAC=1)"
        );
        if let Err(e) = phone.link.command(CallAction::CvsdOnly) {
            tracing::warn!(%device, error = e, "cannot renegotiate CVSD");
        }
        if let Some(call_audio) = &self.call_audio {
            // The next link comes in CVSD whatever +BCS says in between.
            call_audio.set_codec(codriver_hfp::Codec::Cvsd);
        }
    }

    /// Whether `device` rings in band now: in-band ringing on and its SCO link up, so the
    /// local ringtone would only play over the phone's own.
    fn rings_in_band(&self, device: codriver_hal::Address) -> bool {
        self.phones.get(&device).is_some_and(|p| p.in_band_ring)
            && self
                .call_audio
                .as_ref()
                .is_some_and(|c| c.link_up() == Some(device))
    }

    /// Speaks who is calling, once per ringing call, as soon as a `RING` carries the name or
    /// number (`+CLIP` usually follows the first `RING`). The ringtone goes on meanwhile; a
    /// missing text-to-speech program leaves the ringtone alone.
    fn announce_caller(
        &mut self,
        device: codriver_hal::Address,
        number: Option<&str>,
        name: Option<&str>,
    ) {
        if !self.config.hfp.announce_caller {
            return;
        }
        let Some(phone) = self.phones.get_mut(&device) else {
            return;
        };
        let Some(text) = caller_sentence(number, name) else {
            return;
        };
        if std::mem::replace(&mut phone.caller_announced, true) {
            return;
        }
        publish(
            &self.events,
            DaemonEvent::CallerAnnounced {
                device,
                text: text.clone(),
            },
        );
        let audio = self.audio.clone();
        let command = self.config.messages.tts_command.clone();
        tokio::spawn(async move {
            match speech::synthesize(&command, &text).await {
                Ok((format, samples)) => {
                    if let Err(e) = audio
                        .play(Focus::Call, "caller-announcement", format, &samples)
                        .await
                    {
                        tracing::warn!(error = %e, "caller announcement failed");
                    }
                }
                Err(reason) => tracing::info!(reason, "caller not announced (ringtone only)"),
            }
        });
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
const NO_MESSAGES: &str = "the voice messages service is not running (see the log for why)";

/// The speaker gain assumed before the phone reports one (middle of 0–15).
const VGS_DEFAULT: u8 = 8;

impl Phone {
    /// Updates what the D-Bus objects show from a drain of engine events.
    fn show(&mut self, events: &[codriver_hfp::Event], calls: &[codriver_hfp::Call]) {
        use codriver_hfp::{Direction, Event, VolumeTarget};
        for event in events {
            match event {
                Event::SlcConnected { ag_features, .. } => {
                    self.shown.connected = true;
                    self.in_band_ring =
                        ag_features.contains(codriver_hfp::AgFeatures::IN_BAND_RING);
                }
                Event::InBandRing(on) => self.in_band_ring = *on,
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

/// "Call from Alice", or the number digit by digit ("Call from plus 1 5 5 5 …") so a
/// text-to-speech program does not read it as one large number; `None` when neither is
/// known or both are empty.
fn caller_sentence(number: Option<&str>, name: Option<&str>) -> Option<String> {
    if let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) {
        return Some(format!("Call from {name}"));
    }
    let number = number.map(str::trim).filter(|n| !n.is_empty())?;
    let spoken: Vec<String> = number
        .chars()
        .filter_map(|c| match c {
            '+' => Some("plus".to_owned()),
            '*' => Some("star".to_owned()),
            '#' => Some("hash".to_owned()),
            c if c.is_ascii_digit() => Some(c.to_string()),
            _ => None,
        })
        .collect();
    (!spoken.is_empty()).then(|| format!("Call from {}", spoken.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::caller_sentence;

    #[test]
    fn callers_are_announced_by_name_else_digit_by_digit() {
        assert_eq!(
            caller_sentence(Some("+15550100"), Some("Alice")).as_deref(),
            Some("Call from Alice")
        );
        assert_eq!(
            caller_sentence(Some("+1 555-01"), Some("  ")).as_deref(),
            Some("Call from plus 1 5 5 5 0 1")
        );
        assert_eq!(caller_sentence(Some(""), None), None);
        assert_eq!(caller_sentence(None, None), None);
        assert_eq!(caller_sentence(Some("withheld"), None), None);
    }
}
