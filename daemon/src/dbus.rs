//! The D-Bus API, `org.codriver.Codriver1`: how a head-unit UI and `codriverctl` reach the
//! daemon.
//!
//! A thin handle: every method turns into a [`Command`] over the daemon's channel and returns
//! its outcome as a typed error; properties mirror the daemon's events; the `Event` signal
//! carries every event line for `codriverctl watch`. Objects are served before the bus name
//! is requested, so a client that sees the name can call at once.
//!
//! Objects (see `docs/dbus-api.md`; introspection XML in `docs/dbus/`):
//!
//! * [`OBJECT_PATH`]: `org.codriver.Codriver1.Daemon` and `org.freedesktop.DBus.ObjectManager`;
//! * `…/phone/<address with underscores>`: `org.codriver.Codriver1.Phone`, one per phone with a
//!   Hands-Free link;
//! * `…/call/<n>`: `org.codriver.Codriver1.Call`, one per call, `n` counting up from 1 for the
//!   daemon's lifetime.
//!
//! Phones and calls are added and removed as they come and go, from the daemon's
//! [`Snapshot`]; the object manager announces them (`InterfacesAdded`/`InterfacesRemoved`).

// zbus's `#[interface]` generates property-changed and signal helpers without doc comments.
#![allow(missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use codriver_config::{BusKind, DbusConfig};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath};
use zbus::{connection, interface};

use codriver_hal::Address;

use crate::events::{
    CallAction, CallSnapshot, Command, DaemonEvent, DaemonHandle, MessageAction, PhoneSnapshot,
    Snapshot,
};
use crate::messages::{MessageSummary, MessagesStatus};

/// The well-known bus name.
pub const BUS_NAME: &str = "org.codriver.Codriver1";

/// The daemon object's path.
pub const OBJECT_PATH: &str = "/org/codriver/Codriver1";

/// Errors returned to D-Bus callers, as `org.codriver.Codriver1.Error.*`.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.codriver.Codriver1.Error")]
pub enum ApiError {
    /// A D-Bus transport error.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The request cannot apply now (no pairing request waiting, no phone connected, …).
    NotPossible(String),
    /// An argument is malformed (an address that is not `AA:BB:CC:DD:EE:FF`, …).
    InvalidArgument(String),
    /// The daemon is shutting down.
    Stopped(String),
}

impl From<String> for ApiError {
    fn from(reason: String) -> Self {
        if reason.contains("stopped") {
            ApiError::Stopped(reason)
        } else {
            ApiError::NotPossible(reason)
        }
    }
}

/// What the properties show, kept up to date from the event stream.
#[derive(Debug, Default)]
struct Status {
    pairing_window_open: bool,
    pending_pairing: String,
    hands_free: BTreeSet<String>,
}

/// The `org.codriver.Codriver1.Daemon` interface.
#[derive(Debug)]
pub struct DaemonApi {
    handle: DaemonHandle,
    status: Arc<Mutex<Status>>,
}

impl DaemonApi {
    async fn messages(&self, action: MessageAction) -> Result<(), ApiError> {
        Ok(self
            .handle
            .request(|r| Command::Messages(action, r))
            .await?)
    }
}

#[interface(name = "org.codriver.Codriver1.Daemon")]
impl DaemonApi {
    /// The daemon's version.
    #[zbus(property)]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_owned()
    }

    /// Whether the adapter is discoverable and pairable now.
    #[zbus(property)]
    fn pairing_window_open(&self) -> bool {
        lock(&self.status).pairing_window_open
    }

    /// The address of the phone whose pairing waits for approval, or "".
    #[zbus(property)]
    fn pending_pairing(&self) -> String {
        lock(&self.status).pending_pairing.clone()
    }

    /// Addresses of phones with a Hands-Free connection.
    #[zbus(property)]
    fn connected_phones(&self) -> Vec<String> {
        lock(&self.status).hands_free.iter().cloned().collect()
    }

    /// Opens the pairing window for the configured length.
    async fn open_pairing_window(&self) -> Result<(), ApiError> {
        Ok(self.handle.request(Command::OpenPairingWindow).await?)
    }

    /// Closes the pairing window.
    async fn close_pairing_window(&self) -> Result<(), ApiError> {
        Ok(self.handle.request(Command::ClosePairingWindow).await?)
    }

    /// Approves the pending pairing request (policies `dbus` and `button-or-dbus`).
    async fn approve_pairing(&self) -> Result<(), ApiError> {
        Ok(self
            .handle
            .request(|r| Command::ConfirmPairing(true, r))
            .await?)
    }

    /// Rejects the pending pairing request.
    async fn reject_pairing(&self) -> Result<(), ApiError> {
        Ok(self
            .handle
            .request(|r| Command::ConfirmPairing(false, r))
            .await?)
    }

    /// Stops trying to reconnect phones until one connects by itself or the daemon restarts.
    async fn stop_reconnecting(&self) -> Result<(), ApiError> {
        Ok(self.handle.request(Command::StopReconnecting).await?)
    }

    /// Connects the paired phone at `address` (`AA:BB:CC:DD:EE:FF`) now; it is reconnected
    /// after link loss again. Returns once the attempt started: the phone object appears
    /// when its Hands-Free link is up.
    async fn connect_phone(&self, address: String) -> Result<(), ApiError> {
        let device = parse_address(&address)?;
        Ok(self
            .handle
            .request(|r| Command::ConnectPhone(device, r))
            .await?)
    }

    /// Disconnects the phone at `address` and stops reconnecting it until `ConnectPhone`,
    /// or until the phone connects by itself. It stays paired.
    async fn disconnect_phone(&self, address: String) -> Result<(), ApiError> {
        let device = parse_address(&address)?;
        Ok(self
            .handle
            .request(|r| Command::DisconnectPhone(device, r))
            .await?)
    }

    /// Answers the ringing call.
    async fn answer(&self) -> Result<(), ApiError> {
        Ok(self
            .handle
            .request(|r| Command::Call(CallAction::Answer, r))
            .await?)
    }

    /// Rejects the ringing call or hangs up the active one.
    async fn hangup(&self) -> Result<(), ApiError> {
        Ok(self
            .handle
            .request(|r| Command::Call(CallAction::Hangup, r))
            .await?)
    }

    /// Dials `number` on the active phone.
    async fn dial(&self, number: String) -> Result<(), ApiError> {
        Ok(self
            .handle
            .request(|r| Command::Call(CallAction::Dial(number), r))
            .await?)
    }

    /// Holds the active call and takes the held or waiting one (AT+CHLD=2).
    async fn swap(&self) -> Result<(), ApiError> {
        Ok(self
            .handle
            .request(|r| Command::Call(CallAction::Swap, r))
            .await?)
    }

    /// Sends DTMF tones (`0-9`, `*`, `#`, `A-D`) in the active phone's call.
    async fn send_dtmf(&self, tones: String) -> Result<(), ApiError> {
        Ok(self
            .handle
            .request(|r| Command::Call(CallAction::SendDtmf(tones), r))
            .await?)
    }

    /// Starts the active phone's voice assistant (AT+BVRA=1: Siri, Google Assistant).
    async fn voice_assistant(&self) -> Result<(), ApiError> {
        Ok(self
            .handle
            .request(|r| Command::Call(CallAction::VoiceAssistant(true), r))
            .await?)
    }

    /// One step louder: the call in a call, otherwise chimes and messages.
    async fn volume_up(&self) -> Result<(), ApiError> {
        Ok(self.handle.request(|r| Command::Volume(true, r)).await?)
    }

    /// One step quieter: the call in a call, otherwise chimes and messages.
    async fn volume_down(&self) -> Result<(), ApiError> {
        Ok(self.handle.request(|r| Command::Volume(false, r)).await?)
    }

    /// Plays the oldest unplayed voice or text message now.
    async fn play_next_message(&self) -> Result<(), ApiError> {
        self.messages(MessageAction::PlayNext).await
    }

    /// Plays the message last played (or playing) again.
    async fn replay_message(&self) -> Result<(), ApiError> {
        self.messages(MessageAction::Replay).await
    }

    /// Cuts the message playing short and goes on with the next one.
    async fn skip_message(&self) -> Result<(), ApiError> {
        self.messages(MessageAction::Skip).await
    }

    /// Stops message playback; unplayed messages wait for `PlayNextMessage`.
    async fn stop_message(&self) -> Result<(), ApiError> {
        self.messages(MessageAction::Stop).await
    }

    /// Records a voice reply to the message last played (start tone, then the microphone
    /// until `SendReply`, silence or the configured maximum); while recording, sends it.
    async fn record_reply(&self) -> Result<(), ApiError> {
        self.messages(MessageAction::RecordReply).await
    }

    /// Finishes the recording and sends the reply.
    async fn send_reply(&self) -> Result<(), ApiError> {
        self.messages(MessageAction::SendReply).await
    }

    /// Throws the recording away.
    async fn cancel_reply(&self) -> Result<(), ApiError> {
        self.messages(MessageAction::CancelReply).await
    }

    /// Chime and message volume, percent.
    #[zbus(property)]
    fn volume(&self) -> u8 {
        self.handle.snapshot.borrow().volume
    }

    /// The phone that takes call actions, or `/` when none is connected.
    #[zbus(property)]
    fn active_phone(&self) -> OwnedObjectPath {
        let snapshot = self.handle.snapshot.borrow();
        snapshot
            .phones
            .iter()
            .find(|p| p.active)
            .and_then(|p| phone_path(p.address).ok())
            .unwrap_or_else(root_path)
    }

    /// Every daemon event, as one line (the same text the log shows).
    #[zbus(signal)]
    async fn event(emitter: &SignalEmitter<'_>, line: &str) -> zbus::Result<()>;
}

/// The `org.codriver.Codriver1.Phone` interface of one phone with a Hands-Free link.
#[derive(Debug)]
pub struct PhoneApi {
    handle: DaemonHandle,
    shown: PhoneSnapshot,
}

#[interface(name = "org.codriver.Codriver1.Phone")]
impl PhoneApi {
    /// The phone's Bluetooth address, `AA:BB:CC:DD:EE:FF`.
    #[zbus(property)]
    fn address(&self) -> String {
        self.shown.address.to_string()
    }

    /// The phone's name, or "" when BlueZ does not know it.
    #[zbus(property)]
    fn name(&self) -> String {
        self.shown.name.clone()
    }

    /// The Hands-Free service level connection is up: calls can flow.
    #[zbus(property)]
    fn connected(&self) -> bool {
        self.shown.connected
    }

    /// This phone takes call actions from buttons and the daemon object.
    #[zbus(property)]
    fn active(&self) -> bool {
        self.shown.active
    }

    /// Battery charge from the phone's `battchg` indicator, 0–5, or -1 when not reported.
    #[zbus(property)]
    fn battery(&self) -> i16 {
        self.indicator("battchg")
    }

    /// Signal strength from the `signal` indicator, 0–5, or -1 when not reported.
    #[zbus(property)]
    fn signal(&self) -> i16 {
        self.indicator("signal")
    }

    /// Whether the phone has network service (`service` indicator).
    #[zbus(property)]
    fn service(&self) -> bool {
        self.indicator("service") > 0
    }

    /// Whether the phone is roaming (`roam` indicator).
    #[zbus(property)]
    fn roaming(&self) -> bool {
        self.indicator("roam") > 0
    }

    /// The call's speaker gain, 0–15, or -1 before the phone reported one.
    #[zbus(property)]
    fn speaker_volume(&self) -> i16 {
        self.shown.speaker_volume.map_or(-1, i16::from)
    }

    /// Dials `number` on this phone.
    async fn dial(&self, number: String) -> Result<(), ApiError> {
        let device = self.shown.address;
        Ok(self
            .handle
            .request(|r| Command::CallOn(device, CallAction::Dial(number), r))
            .await?)
    }

    /// Disconnects this phone and stops reconnecting it until `Daemon.ConnectPhone`, or until
    /// the phone connects by itself. It stays paired.
    async fn disconnect(&self) -> Result<(), ApiError> {
        let device = self.shown.address;
        Ok(self
            .handle
            .request(|r| Command::DisconnectPhone(device, r))
            .await?)
    }

    /// Starts this phone's voice assistant (AT+BVRA=1).
    async fn voice_assistant(&self) -> Result<(), ApiError> {
        let device = self.shown.address;
        Ok(self
            .handle
            .request(|r| Command::CallOn(device, CallAction::VoiceAssistant(true), r))
            .await?)
    }
}

impl PhoneApi {
    fn indicator(&self, name: &str) -> i16 {
        self.shown
            .indicators
            .iter()
            .find(|(n, _)| n == name)
            .map_or(-1, |(_, v)| i16::from(*v))
    }
}

/// The `org.codriver.Codriver1.Call` interface of one call.
#[derive(Debug)]
pub struct CallApi {
    handle: DaemonHandle,
    device: Address,
    /// How many calls the phone has: hanging up one of several releases only that one.
    siblings: usize,
    shown: CallSnapshot,
}

#[interface(name = "org.codriver.Codriver1.Call")]
impl CallApi {
    /// The phone object the call is on.
    #[zbus(property)]
    fn phone(&self) -> OwnedObjectPath {
        phone_path(self.device).unwrap_or_else(|_| root_path())
    }

    /// The phone's index of the call (`+CLCC`).
    #[zbus(property)]
    fn index(&self) -> u8 {
        self.shown.index
    }

    /// `incoming`, `waiting`, `dialing`, `alerting`, `active` or `held`.
    #[zbus(property)]
    fn state(&self) -> String {
        self.shown.state.clone()
    }

    /// `incoming` or `outgoing`.
    #[zbus(property)]
    fn direction(&self) -> String {
        self.shown.direction.clone()
    }

    /// The remote number, or "" when withheld or unknown.
    #[zbus(property)]
    fn number(&self) -> String {
        self.shown.number.clone()
    }

    /// The remote name from the phone, or "".
    #[zbus(property)]
    fn name(&self) -> String {
        self.shown.name.clone()
    }

    /// Part of a conference call.
    #[zbus(property)]
    fn multiparty(&self) -> bool {
        self.shown.multiparty
    }

    /// Answers the call: a ringing call directly, a waiting one by holding the active call.
    async fn answer(&self) -> Result<(), ApiError> {
        let action = match self.shown.state.as_str() {
            "incoming" => CallAction::Answer,
            "waiting" => CallAction::Swap,
            other => return Err(ApiError::NotPossible(format!("the call is {other}"))),
        };
        self.on_phone(action).await
    }

    /// Ends the call (rejects it when it rings); with several calls, only this one.
    async fn hangup(&self) -> Result<(), ApiError> {
        let action = match self.shown.state.as_str() {
            "waiting" => CallAction::RejectWaiting,
            _ if self.siblings > 1 => CallAction::ReleaseCall(self.shown.index),
            _ => CallAction::Hangup,
        };
        self.on_phone(action).await
    }

    /// Holds the active call and takes the other (held or waiting) one (AT+CHLD=2).
    async fn hold(&self) -> Result<(), ApiError> {
        self.on_phone(CallAction::Swap).await
    }

    /// Sends DTMF tones (`0-9`, `*`, `#`, `A-D`).
    async fn send_dtmf(&self, tones: String) -> Result<(), ApiError> {
        self.on_phone(CallAction::SendDtmf(tones)).await
    }
}

impl CallApi {
    async fn on_phone(&self, action: CallAction) -> Result<(), ApiError> {
        let device = self.device;
        Ok(self
            .handle
            .request(|r| Command::CallOn(device, action, r))
            .await?)
    }
}

/// The `org.codriver.Codriver1.Message` interface of one stored voice or text message.
#[derive(Debug)]
pub struct MessageApi {
    handle: DaemonHandle,
    shown: MessageSummary,
    playing: bool,
}

#[interface(name = "org.codriver.Codriver1.Message")]
impl MessageApi {
    /// The phone's id for the message.
    #[zbus(property)]
    fn id(&self) -> String {
        self.shown.id.clone()
    }

    /// `voice` or `text`.
    #[zbus(property)]
    fn kind(&self) -> String {
        self.shown.kind.to_owned()
    }

    /// The sender's display name, "" when the phone gave none.
    #[zbus(property)]
    fn from(&self) -> String {
        self.shown.from.clone()
    }

    /// The conversation's name (or id).
    #[zbus(property)]
    fn conversation(&self) -> String {
        self.shown.conversation.clone()
    }

    /// A voice message's length in milliseconds; 0 for text.
    #[zbus(property)]
    fn duration_ms(&self) -> u32 {
        self.shown.duration_ms
    }

    /// When the car received it, milliseconds since the Unix epoch.
    #[zbus(property)]
    fn received(&self) -> u64 {
        self.shown.received_ms
    }

    /// It was played (or is playing) at least once.
    #[zbus(property)]
    fn listened(&self) -> bool {
        self.shown.listened
    }

    /// It is playing now.
    #[zbus(property)]
    fn playing(&self) -> bool {
        self.playing
    }

    /// Plays this message now, cutting short whatever message plays; a call still comes
    /// first. `Daemon.RecordReply` afterwards answers it.
    async fn play(&self) -> Result<(), ApiError> {
        let id = self.shown.id.clone();
        Ok(self
            .handle
            .request(|r| Command::Messages(MessageAction::Play(id), r))
            .await?)
    }
}

/// The object path of stored message number `n`: `/org/codriver/Codriver1/message/<n>`.
pub fn message_path(n: u32) -> zbus::zvariant::Result<OwnedObjectPath> {
    ObjectPath::try_from(format!("{OBJECT_PATH}/message/{n}")).map(OwnedObjectPath::from)
}

/// The object path of a phone: `/org/codriver/Codriver1/phone/AA_BB_CC_DD_EE_FF`.
pub fn phone_path(device: Address) -> zbus::zvariant::Result<OwnedObjectPath> {
    let path = format!(
        "{OBJECT_PATH}/phone/{}",
        device.to_string().replace(':', "_")
    );
    ObjectPath::try_from(path).map(OwnedObjectPath::from)
}

/// The object path of call number `n`: `/org/codriver/Codriver1/call/<n>`.
pub fn call_path(n: u32) -> zbus::zvariant::Result<OwnedObjectPath> {
    ObjectPath::try_from(format!("{OBJECT_PATH}/call/{n}")).map(OwnedObjectPath::from)
}

fn parse_address(address: &str) -> Result<Address, ApiError> {
    address.parse().map_err(|e| {
        ApiError::InvalidArgument(format!("{address}: {e} (expected AA:BB:CC:DD:EE:FF)"))
    })
}

fn root_path() -> OwnedObjectPath {
    OwnedObjectPath::from(ObjectPath::from_static_str_unchecked("/"))
}

/// A served API: the connection and the tasks forwarding events and mirroring objects.
#[derive(Debug)]
pub struct Api {
    connection: zbus::Connection,
    tasks: [JoinHandle<()>; 2],
}

impl Api {
    /// The connection the API is served on (tests introspect through it).
    pub fn connection(&self) -> &zbus::Connection {
        &self.connection
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Serves the API on the configured bus and requests [`BUS_NAME`]. `messages` follows the
/// messages service for the message objects (none without it).
pub async fn serve(
    config: &DbusConfig,
    handle: DaemonHandle,
    messages: Option<watch::Receiver<MessagesStatus>>,
) -> zbus::Result<Api> {
    let status = Arc::new(Mutex::new(Status::default()));
    let events = handle.subscribe();
    let snapshot = handle.snapshot();
    let api = DaemonApi {
        handle: handle.clone(),
        status: status.clone(),
    };
    let builder = match config.bus {
        BusKind::System => connection::Builder::system()?,
        BusKind::Session => connection::Builder::session()?,
    };
    let conn = builder
        .serve_at(OBJECT_PATH, api)?
        .serve_at(OBJECT_PATH, zbus::fdo::ObjectManager)?
        .name(BUS_NAME)?
        .build()
        .await?;
    let emitter = SignalEmitter::new(&conn, OBJECT_PATH)?.into_owned();
    let iface = conn
        .object_server()
        .interface::<_, DaemonApi>(OBJECT_PATH)
        .await?;
    let forwarder = tokio::spawn(forward(events, emitter, iface, status));
    let mirror = tokio::spawn(mirror(conn.clone(), handle, snapshot, messages));
    tracing::info!(bus = %config.bus, name = BUS_NAME, "D-Bus API ready");
    Ok(Api {
        connection: conn,
        tasks: [forwarder, mirror],
    })
}

/// Keeps the phone and call objects in step with the daemon's [`Snapshot`], and the message
/// objects with the messages service's status: adds and removes objects, updates properties
/// and emits `PropertiesChanged` for the ones that changed.
async fn mirror(
    conn: zbus::Connection,
    handle: DaemonHandle,
    mut snapshot: watch::Receiver<Snapshot>,
    mut messages: Option<watch::Receiver<MessagesStatus>>,
) {
    let mut objects = Objects::default();
    let mut shown_messages = MessageObjects::default();
    loop {
        let now = snapshot.borrow_and_update().clone();
        if let Err(e) = objects.sync(&conn, &handle, &now).await {
            tracing::warn!(error = %e, "D-Bus phone and call objects not updated");
        }
        if let Some(rx) = messages.as_mut() {
            let status = rx.borrow_and_update().clone();
            if let Err(e) = shown_messages.sync(&conn, &handle, &status).await {
                tracing::warn!(error = %e, "D-Bus message objects not updated");
            }
        }
        let messages_changed = async {
            match messages.as_mut() {
                Some(rx) => rx.changed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = snapshot.changed() => if changed.is_err() { return },
            changed = messages_changed => if changed.is_err() { messages = None },
        }
    }
}

/// The message objects served now, by message id.
#[derive(Debug, Default)]
struct MessageObjects {
    served: BTreeMap<String, u32>,
    next: u32,
}

impl MessageObjects {
    async fn sync(
        &mut self,
        conn: &zbus::Connection,
        handle: &DaemonHandle,
        status: &MessagesStatus,
    ) -> zbus::Result<()> {
        let server = conn.object_server();
        let wanted: BTreeMap<&str, &MessageSummary> =
            status.messages.iter().map(|m| (m.id.as_str(), m)).collect();
        let gone: Vec<String> = self
            .served
            .keys()
            .filter(|id| !wanted.contains_key(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            if let Some(n) = self.served.remove(&id) {
                server.remove::<MessageApi, _>(message_path(n)?).await?;
            }
        }
        for (id, summary) in wanted {
            let playing = status.playing.as_deref() == Some(id);
            match self.served.get(id) {
                Some(&n) => {
                    let iface = server.interface::<_, MessageApi>(message_path(n)?).await?;
                    let mut api = iface.get_mut().await;
                    let e = iface.signal_emitter();
                    if api.shown.listened != summary.listened {
                        api.shown.listened = summary.listened;
                        api.listened_changed(e).await?;
                    }
                    if api.playing != playing {
                        api.playing = playing;
                        api.playing_changed(e).await?;
                    }
                }
                None => {
                    self.next += 1;
                    let n = self.next;
                    self.served.insert(id.to_owned(), n);
                    let api = MessageApi {
                        handle: handle.clone(),
                        shown: summary.clone(),
                        playing,
                    };
                    server.at(message_path(n)?, api).await?;
                }
            }
        }
        Ok(())
    }
}

/// The phone and call objects served now.
#[derive(Debug, Default)]
struct Objects {
    phones: BTreeSet<Address>,
    /// Call object numbers by phone and the phone's call index.
    calls: BTreeMap<(Address, u8), u32>,
    next_call: u32,
    volume: u8,
}

impl Objects {
    async fn sync(
        &mut self,
        conn: &zbus::Connection,
        handle: &DaemonHandle,
        now: &Snapshot,
    ) -> zbus::Result<()> {
        let server = conn.object_server();
        if now.volume != self.volume {
            self.volume = now.volume;
            let iface = server.interface::<_, DaemonApi>(OBJECT_PATH).await?;
            iface
                .get()
                .await
                .volume_changed(iface.signal_emitter())
                .await?;
        }
        let served_before = self.phones.clone();
        let mut active_changed = false;
        // Calls first, so a departing phone's calls go before the phone.
        let wanted: BTreeMap<(Address, u8), (&CallSnapshot, usize)> = now
            .phones
            .iter()
            .flat_map(|p| {
                p.calls
                    .iter()
                    .map(|c| ((p.address, c.index), (c, p.calls.len())))
            })
            .collect();
        let gone: Vec<_> = self
            .calls
            .keys()
            .filter(|k| !wanted.contains_key(k))
            .copied()
            .collect();
        for key in gone {
            if let Some(n) = self.calls.remove(&key) {
                server.remove::<CallApi, _>(call_path(n)?).await?;
            }
        }
        for (&(device, index), &(call, siblings)) in &wanted {
            match self.calls.get(&(device, index)) {
                Some(&n) => {
                    let iface = server.interface::<_, CallApi>(call_path(n)?).await?;
                    let mut api = iface.get_mut().await;
                    let old = std::mem::replace(&mut api.shown, call.clone());
                    api.siblings = siblings;
                    let e = iface.signal_emitter();
                    if old.state != call.state {
                        api.state_changed(e).await?;
                    }
                    if old.number != call.number {
                        api.number_changed(e).await?;
                    }
                    if old.name != call.name {
                        api.name_changed(e).await?;
                    }
                    if old.multiparty != call.multiparty {
                        api.multiparty_changed(e).await?;
                    }
                }
                None => {
                    self.next_call += 1;
                    let n = self.next_call;
                    self.calls.insert((device, index), n);
                    let api = CallApi {
                        handle: handle.clone(),
                        device,
                        siblings,
                        shown: call.clone(),
                    };
                    // Phones are added below; a call of a new phone may come first, which
                    // the object manager does not mind.
                    server.at(call_path(n)?, api).await?;
                }
            }
        }
        let wanted: BTreeMap<Address, &PhoneSnapshot> =
            now.phones.iter().map(|p| (p.address, p)).collect();
        for device in served_before.difference(&wanted.keys().copied().collect()) {
            server.remove::<PhoneApi, _>(phone_path(*device)?).await?;
            self.phones.remove(device);
            active_changed = true;
        }
        for (&device, &phone) in &wanted {
            if self.phones.insert(device) {
                let api = PhoneApi {
                    handle: handle.clone(),
                    shown: phone.clone(),
                };
                server.at(phone_path(device)?, api).await?;
                active_changed |= phone.active;
                continue;
            }
            let iface = server.interface::<_, PhoneApi>(phone_path(device)?).await?;
            let mut api = iface.get_mut().await;
            let old = std::mem::replace(&mut api.shown, phone.clone());
            let e = iface.signal_emitter();
            if old.name != phone.name {
                api.name_changed(e).await?;
            }
            if old.connected != phone.connected {
                api.connected_changed(e).await?;
            }
            if old.active != phone.active {
                api.active_changed(e).await?;
                active_changed = true;
            }
            if old.indicators != phone.indicators {
                api.battery_changed(e).await?;
                api.signal_changed(e).await?;
                api.service_changed(e).await?;
                api.roaming_changed(e).await?;
            }
            if old.speaker_volume != phone.speaker_volume {
                api.speaker_volume_changed(e).await?;
            }
        }
        if active_changed {
            let iface = server.interface::<_, DaemonApi>(OBJECT_PATH).await?;
            iface
                .get()
                .await
                .active_phone_changed(iface.signal_emitter())
                .await?;
        }
        Ok(())
    }
}

async fn forward(
    mut events: broadcast::Receiver<DaemonEvent>,
    emitter: SignalEmitter<'static>,
    iface: zbus::object_server::InterfaceRef<DaemonApi>,
    status: Arc<Mutex<Status>>,
) {
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "D-Bus event forwarding fell behind");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let api = iface.get().await;
        let changed = {
            let mut s = lock(&status);
            match &event {
                DaemonEvent::PairingWindowOpened { .. } => {
                    s.pairing_window_open = true;
                    Some(Changed::Window)
                }
                DaemonEvent::PairingWindowClosed { .. } => {
                    s.pairing_window_open = false;
                    s.pending_pairing.clear();
                    Some(Changed::Window)
                }
                DaemonEvent::PairingRequested { device, .. } => {
                    s.pending_pairing = device.to_string();
                    Some(Changed::Pending)
                }
                DaemonEvent::PairingAccepted { .. } | DaemonEvent::PairingRejected { .. } => {
                    s.pending_pairing.clear();
                    Some(Changed::Pending)
                }
                DaemonEvent::HandsFreeReady { device } => {
                    s.hands_free.insert(device.to_string());
                    Some(Changed::Phones)
                }
                DaemonEvent::PhoneDisconnected { device } => {
                    s.hands_free.remove(&device.to_string());
                    Some(Changed::Phones)
                }
                _ => None,
            }
        };
        let result = match changed {
            Some(Changed::Window) => api.pairing_window_open_changed(&emitter).await,
            Some(Changed::Pending) => api.pending_pairing_changed(&emitter).await,
            Some(Changed::Phones) => api.connected_phones_changed(&emitter).await,
            None => Ok(()),
        };
        let result = result.and(DaemonApi::event(&emitter, &event.to_string()).await);
        if let Err(e) = result {
            tracing::debug!(error = %e, "D-Bus signal not sent");
        }
    }
}

enum Changed {
    Window,
    Pending,
    Phones,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
