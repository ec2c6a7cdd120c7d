//! The vocabulary every service shares: commands into the daemon, events out of it.
//!
//! Services are actors that own their state; they talk only through these types. Events go
//! out on a bounded broadcast channel (observers that fall behind lose the oldest events and
//! are told so); commands go in on a bounded mpsc channel.

use std::fmt;
use std::time::Duration;

use codriver_hal::{Address, ProfileKind};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// Capacity of the event broadcast channel.
pub const EVENT_CAPACITY: usize = 256;

/// Capacity of the command channel.
pub const COMMAND_CAPACITY: usize = 32;

/// Something the daemon did or saw. `Display` gives one stable line per event, which logs,
/// the simulator and tests use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DaemonEvent {
    /// The adapter is powered and configured.
    AdapterReady {
        /// The adapter's address.
        address: Address,
    },
    /// Start-up finished: agent and profiles registered, services running.
    Ready,
    /// A phone opened its SCO link: call audio flows.
    CallAudioStarted {
        /// The phone.
        device: Address,
        /// `CVSD` or `mSBC`.
        codec: &'static str,
    },
    /// Wide band kept failing on a phone's link; codriver offers it CVSD only from now on.
    /// `call-audio-fallback <phone> cvsd <reason>`
    CallAudioFallback {
        /// The phone (00:00:00:00:00:00 when the link could not be set up at all).
        device: Address,
        /// What failed.
        reason: String,
    },
    /// The SCO link closed.
    CallAudioEnded {
        /// The phone.
        device: Address,
        /// SCO packets received.
        received: u64,
        /// SCO packets sent.
        sent: u64,
        /// Frames filled by concealment (lost or corrupt).
        concealed: u64,
    },
    /// The adapter became discoverable and pairable.
    PairingWindowOpened {
        /// How long the window stays open unless a phone pairs.
        duration: Duration,
    },
    /// The pairing window closed.
    PairingWindowClosed {
        /// Why: `timeout`, `paired`, `request`, `shutdown`.
        reason: &'static str,
    },
    /// A phone asks to pair; the driver must confirm (button or UI) under the policy.
    PairingRequested {
        /// The phone.
        device: Address,
        /// The passkey to compare, when the method has one.
        passkey: Option<u32>,
    },
    /// The agent accepted a pairing request.
    PairingAccepted {
        /// The phone.
        device: Address,
        /// Which policy rule accepted it.
        by: &'static str,
    },
    /// The agent rejected a pairing request.
    PairingRejected {
        /// The phone.
        device: Address,
        /// Why.
        reason: String,
    },
    /// A phone is bonded and trusted.
    PhonePaired {
        /// The phone.
        device: Address,
        /// Its name, when known.
        name: Option<String>,
    },
    /// A profile connection to a phone came up.
    ProfileConnected {
        /// The phone.
        device: Address,
        /// Which profile.
        profile: ProfileKind,
    },
    /// A profile connection from a device not paired through codriver was closed.
    ConnectionRefused {
        /// The device.
        device: Address,
        /// The profile it tried.
        profile: ProfileKind,
    },
    /// A phone's link went down.
    PhoneDisconnected {
        /// The phone.
        device: Address,
    },
    /// The Hands-Free service level connection is up: calls can flow.
    HandsFreeReady {
        /// The phone.
        device: Address,
    },
    /// An HFP engine event, as its canonical line (`ring 5551234`, `call 1 active 5551234`).
    Telephony {
        /// The phone.
        device: Address,
        /// The engine's canonical event line.
        line: String,
    },
    /// A chime or prompt finished playing.
    SoundPlayed {
        /// Its label, e.g. `chime-paired`.
        label: String,
    },
    /// A button gesture resolved to an action in the current context.
    Action {
        /// The action's name.
        action: String,
    },
    /// A gesture had no action in the current context (an error tone was played).
    ActionRefused {
        /// The gesture, e.g. `phone short`.
        gesture: String,
        /// The context it happened in.
        context: String,
    },
    /// A new configuration is in effect (SIGHUP).
    ConfigReloaded,
    /// A new configuration was rejected; the old one stays.
    ConfigRejected {
        /// The error, with file:line:column.
        reason: String,
    },
    /// bluetoothd left the bus (crashed or restarted): pairing, profiles and reconnects wait
    /// until it is back.
    BluetoothLost,
    /// bluetoothd is back and the adapter, agent and profiles are set up again.
    BluetoothRestored {
        /// How long Bluetooth was unusable.
        after: Duration,
    },
    /// The daemon stopped trying to reconnect phones because the user asked.
    ReconnectStopped,
    /// The phone that takes call actions changed (highest configured priority among the
    /// connected phones, unless another one has a call in progress).
    ActivePhone {
        /// The phone, or `None` when no phone is connected.
        device: Option<Address>,
    },
    /// A phone's messaging app connected over the companion protocol.
    CompanionConnected {
        /// The device name from its `HELLO`.
        device_name: String,
    },
    /// A voice or text message was stored durably and acknowledged to the phone.
    MessageReceived {
        /// The phone's message id.
        id: String,
        /// `voice` or `text`.
        kind: &'static str,
        /// The sender's display name.
        from: String,
    },
    /// The caller of a ringing call is announced (once per call): `text` is what is spoken.
    CallerAnnounced {
        /// The phone that rings.
        device: Address,
        /// The sentence, e.g. "Call from Alice".
        text: String,
    },
    /// A message started playing (or being read aloud) and moved to the listened ones: it is
    /// not played again by itself, even after a crash mid-playback.
    MessagePlayed {
        /// The message id.
        id: String,
    },
    /// The phone was told a message was listened to.
    ListenedReceiptSent {
        /// The message id.
        id: String,
    },
    /// Playback of a message was cut short (stop, skip, replay or a reply recording).
    PlaybackStopped {
        /// The message id.
        id: String,
    },
    /// Recording a voice reply began (after the start tone).
    RecordingStarted {
        /// The message answered.
        in_reply_to: String,
    },
    /// A voice reply was recorded, encoded and stored durably in the outbox.
    ReplyRecorded {
        /// The reply id.
        id: String,
        /// Its length.
        duration_ms: u32,
        /// What ended the recording: `gesture`, `silence`, `max-length` or `end-of-input`.
        stopped_by: &'static str,
    },
    /// A recording was thrown away: cancelled, or no speech was heard.
    ReplyDiscarded {
        /// Why: `cancelled`, `no speech`, or the error.
        reason: String,
    },
    /// A stored reply was offered to the phone.
    ReplyOffered {
        /// The reply id.
        id: String,
    },
    /// The phone took the reply over (`REPLY_ACK`); it left the outbox.
    ReplyDelivered {
        /// The reply id.
        id: String,
    },
    /// The phone refused the reply for good; it left the outbox.
    ReplyFailed {
        /// The reply id.
        id: String,
        /// The phone's reason.
        reason: String,
    },
    /// Graceful shutdown began.
    ShuttingDown,
}

impl fmt::Display for DaemonEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonEvent::AdapterReady { address } => write!(f, "adapter-ready {address}"),
            DaemonEvent::Ready => f.write_str("ready"),
            DaemonEvent::CallAudioFallback { device, reason } => {
                write!(f, "call-audio-fallback {device} cvsd {reason}")
            }
            DaemonEvent::CallAudioStarted { device, codec } => {
                write!(f, "call-audio-started {device} {codec}")
            }
            DaemonEvent::CallAudioEnded {
                device,
                received,
                sent,
                concealed,
            } => write!(
                f,
                "call-audio-ended {device} received={received} sent={sent} concealed={concealed}"
            ),
            DaemonEvent::PairingWindowOpened { duration } => {
                write!(f, "pairing-window-opened {}s", duration.as_secs())
            }
            DaemonEvent::PairingWindowClosed { reason } => {
                write!(f, "pairing-window-closed {reason}")
            }
            DaemonEvent::PairingRequested {
                device,
                passkey: Some(p),
            } => {
                write!(f, "pairing-requested {device} {p:06}")
            }
            DaemonEvent::PairingRequested {
                device,
                passkey: None,
            } => {
                write!(f, "pairing-requested {device} -")
            }
            DaemonEvent::PairingAccepted { device, by } => {
                write!(f, "pairing-accepted {device} by {by}")
            }
            DaemonEvent::PairingRejected { device, reason } => {
                write!(f, "pairing-rejected {device} {reason}")
            }
            DaemonEvent::PhonePaired { device, name } => {
                write!(
                    f,
                    "phone-paired {device} {}",
                    name.as_deref().unwrap_or("-")
                )
            }
            DaemonEvent::ProfileConnected { device, profile } => {
                write!(f, "profile-connected {device} {profile}")
            }
            DaemonEvent::ConnectionRefused { device, profile } => {
                write!(f, "connection-refused {device} {profile}")
            }
            DaemonEvent::PhoneDisconnected { device } => write!(f, "phone-disconnected {device}"),
            DaemonEvent::HandsFreeReady { device } => write!(f, "hands-free-ready {device}"),
            DaemonEvent::Telephony { device, line } => write!(f, "telephony {device} {line}"),
            DaemonEvent::SoundPlayed { label } => write!(f, "sound-played {label}"),
            DaemonEvent::Action { action } => write!(f, "action {action}"),
            DaemonEvent::ActionRefused { gesture, context } => {
                write!(f, "action-refused {gesture} in {context}")
            }
            DaemonEvent::ConfigReloaded => f.write_str("config-reloaded"),
            DaemonEvent::ConfigRejected { reason } => write!(f, "config-rejected {reason}"),
            DaemonEvent::BluetoothLost => f.write_str("bluetooth-lost"),
            DaemonEvent::BluetoothRestored { after } => {
                write!(f, "bluetooth-restored after {}ms", after.as_millis())
            }
            DaemonEvent::ReconnectStopped => f.write_str("reconnect-stopped"),
            DaemonEvent::ActivePhone { device: Some(d) } => write!(f, "active-phone {d}"),
            DaemonEvent::ActivePhone { device: None } => f.write_str("active-phone -"),
            DaemonEvent::CompanionConnected { device_name } => {
                write!(f, "companion-connected {device_name}")
            }
            DaemonEvent::MessageReceived { id, kind, from } => {
                write!(f, "message-received {id} {kind} {from}")
            }
            DaemonEvent::MessagePlayed { id } => write!(f, "message-played {id}"),
            DaemonEvent::CallerAnnounced { device, text } => {
                write!(f, "caller-announced {device} {text}")
            }
            DaemonEvent::ListenedReceiptSent { id } => write!(f, "listened-receipt-sent {id}"),
            DaemonEvent::PlaybackStopped { id } => write!(f, "playback-stopped {id}"),
            DaemonEvent::RecordingStarted { in_reply_to } => {
                write!(f, "recording-started {in_reply_to}")
            }
            DaemonEvent::ReplyRecorded {
                id,
                duration_ms,
                stopped_by,
            } => write!(f, "reply-recorded {id} {duration_ms}ms {stopped_by}"),
            DaemonEvent::ReplyDiscarded { reason } => write!(f, "reply-discarded {reason}"),
            DaemonEvent::ReplyOffered { id } => write!(f, "reply-offered {id}"),
            DaemonEvent::ReplyDelivered { id } => write!(f, "reply-delivered {id}"),
            DaemonEvent::ReplyFailed { id, reason } => write!(f, "reply-failed {id} {reason}"),
            DaemonEvent::ShuttingDown => f.write_str("shutting-down"),
        }
    }
}

/// A request to the daemon from the D-Bus API, a scenario or `main` (SIGHUP). Each carries
/// a [`Reply`] that says whether it took effect.
#[derive(Debug)]
#[non_exhaustive]
pub enum Command {
    /// Open the pairing window for the configured length.
    OpenPairingWindow(Reply),
    /// Close the pairing window now.
    ClosePairingWindow(Reply),
    /// Answer the pending pairing request from a UI: `true` accepts, `false` rejects.
    ConfirmPairing(bool, Reply),
    /// Stop trying to reconnect phones until one connects by itself or the daemon restarts.
    StopReconnecting(Reply),
    /// A telephony action on the active phone.
    Call(CallAction, Reply),
    /// Replace the running configuration.
    Reload(Box<codriver_config::Config>, Reply),
    /// A telephony action on a given phone (a call object of the D-Bus API).
    CallOn(Address, CallAction, Reply),
    /// Volume up (`true`) or down: the call's speaker gain in a call, else chimes and messages.
    Volume(bool, Reply),
    /// Connect a paired phone's Hands-Free now (and reconnect it again after link loss).
    ConnectPhone(Address, Reply),
    /// Disconnect a phone and stop reconnecting it until it is asked to connect again or
    /// connects by itself.
    DisconnectPhone(Address, Reply),
    /// A playback or voice-reply action for the messages service.
    Messages(MessageAction, Reply),
}

/// What the driver can do with voice messages and replies.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageAction {
    /// Play the oldest unplayed message now (cutting the current one short).
    PlayNext,
    /// Play the message with this id now (cutting the current one short), listened or not.
    Play(String),
    /// Play the message last played (or playing) again from the start.
    Replay,
    /// Cut the current message short and go on with the next one.
    Skip,
    /// Stop playback; unplayed messages wait for `PlayNext` (or the next arrival).
    Stop,
    /// Record a voice reply to the message last played; while recording, send it.
    RecordReply,
    /// Finish the recording and send the reply.
    SendReply,
    /// Throw the recording away.
    CancelReply,
}

impl MessageAction {
    /// The action's name, as in the config's action names.
    pub fn as_str(&self) -> &'static str {
        match self {
            MessageAction::PlayNext => "play-next-message",
            MessageAction::Play(_) => "play-message",
            MessageAction::Replay => "replay",
            MessageAction::Skip => "skip",
            MessageAction::Stop => "stop",
            MessageAction::RecordReply => "record-reply",
            MessageAction::SendReply => "send-reply",
            MessageAction::CancelReply => "cancel-reply",
        }
    }
}

/// Where a command's outcome goes: `Ok`, or why it could not apply.
#[derive(Debug)]
pub struct Reply(oneshot::Sender<Result<(), String>>);

impl Reply {
    /// A reply and the receiver of its outcome, for requests made inside the daemon.
    pub(crate) fn channel() -> (Reply, oneshot::Receiver<Result<(), String>>) {
        let (tx, rx) = oneshot::channel();
        (Reply(tx), rx)
    }

    /// Reports the outcome; a requester that gave up is not an error.
    pub fn send(self, outcome: Result<(), String>) {
        let _ = self.0.send(outcome);
    }
}

/// What the driver can do to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallAction {
    /// Answer the ringing call.
    Answer,
    /// Reject a ringing call or hang up the active one.
    Hangup,
    /// Dial a number.
    Dial(String),
    /// Swap between the active and the held call, or hold the active call and accept the
    /// waiting one (AT+CHLD=2).
    Swap,
    /// Reject the waiting call, keeping the active one (AT+CHLD=0).
    RejectWaiting,
    /// Start or stop the phone's voice assistant.
    VoiceAssistant(bool),
    /// Set the speaker volume on the HFP 0–15 scale.
    SpeakerVolume(u8),
    /// End one call of several, keeping the others (AT+CHLD=1x).
    ReleaseCall(u8),
    /// Send DTMF tones (`0-9`, `*`, `#`, `A-D`) in the active call, one `AT+VTS` each.
    SendDtmf(String),
    /// Offer the phone CVSD only (`AT+BAC=1`): wide band keeps failing on this link.
    CvsdOnly,
}

/// What the daemon knows about phones and calls now, for the D-Bus objects: the main loop
/// publishes it on a watch channel after every turn in which it changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Phones with a Hands-Free link, by address.
    pub phones: Vec<PhoneSnapshot>,
    /// Chime and message volume, percent.
    pub volume: u8,
}

/// One phone with a Hands-Free link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneSnapshot {
    /// The phone's address.
    pub address: Address,
    /// Its name as BlueZ knows it, or "".
    pub name: String,
    /// The service level connection is up: calls can flow.
    pub connected: bool,
    /// This phone takes call actions (buttons, `Answer` on the daemon object).
    pub active: bool,
    /// Indicators from the phone, by name (`battchg`, `signal`, `service`, `roam`, …).
    pub indicators: Vec<(String, u8)>,
    /// The call's speaker gain, 0–15, once known.
    pub speaker_volume: Option<u8>,
    /// The phone's calls.
    pub calls: Vec<CallSnapshot>,
}

/// One call of a phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSnapshot {
    /// The phone's index of the call (`+CLCC`), 1 and up.
    pub index: u8,
    /// `incoming`, `waiting`, `dialing`, `alerting`, `active` or `held`.
    pub state: String,
    /// `incoming` or `outgoing`.
    pub direction: String,
    /// The remote number, or "".
    pub number: String,
    /// The remote name, or "".
    pub name: String,
    /// Part of a conference call.
    pub multiparty: bool,
}

/// A cheap, cloneable handle to a running daemon: send commands, watch events.
#[derive(Debug, Clone)]
pub struct DaemonHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) events: broadcast::Sender<DaemonEvent>,
    pub(crate) snapshot: watch::Receiver<Snapshot>,
}

impl DaemonHandle {
    /// Sends the command `make` builds and waits for its outcome.
    pub async fn request(&self, make: impl FnOnce(Reply) -> Command) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(Reply(tx)))
            .await
            .map_err(|_| "the daemon has stopped".to_owned())?;
        rx.await.map_err(|_| "the daemon has stopped".to_owned())?
    }

    /// Watches the phones and calls (see [`Snapshot`]).
    pub fn snapshot(&self) -> watch::Receiver<Snapshot> {
        self.snapshot.clone()
    }

    /// Subscribes to events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DaemonEvent> {
        self.events.subscribe()
    }

    /// Reports that a new configuration was rejected (it did not parse); the daemon keeps
    /// running on the old one.
    pub fn config_rejected(&self, reason: String) {
        tracing::error!("configuration rejected, keeping the running one: {reason}");
        let _ = self.events.send(DaemonEvent::ConfigRejected { reason });
    }

    /// Applies a new configuration; `Err` carries why it was refused.
    pub async fn reload(&self, config: codriver_config::Config) -> Result<(), String> {
        self.request(|reply| Command::Reload(Box::new(config), reply))
            .await
    }
}

/// Publishes an event to every observer and to the log.
pub(crate) fn publish(events: &broadcast::Sender<DaemonEvent>, event: DaemonEvent) {
    tracing::info!(target: "codriver::event", "{event}");
    // No subscriber is not an error: the daemon runs fine unobserved.
    let _ = events.send(event);
}
