//! A mock Bluetooth host with a simulated radio.
//!
//! [`MockBluetooth`] is what the daemon sees (it implements [`BluetoothHost`]); [`MockRadio`]
//! is the other side of the air, used by the simulated phone: it appears, pairs through the
//! daemon's agent, opens profile connections and accepts the ones the daemon opens. Every
//! connection is a `tokio::io::duplex` pipe, so bytes flow exactly as they would over RFCOMM.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::io::DuplexStream;
use tokio::sync::mpsc;

use super::{Expectations, lock};
use crate::Address;
use crate::bluetooth::{
    AdapterInfo, AdapterSettings, AgentRejection, AgentReply, AgentRequest, BluetoothError,
    BluetoothHost, DeviceEvent, DeviceInfo, EVENT_CHANNEL_CAPACITY, ProfileConnection, ProfileKind,
    ProfileSpec, ServiceEvent, Transport,
};

/// Buffer size of the simulated RFCOMM pipes (an RFCOMM frame is at most ~1 KiB).
const PIPE_BUFFER: usize = 4096;

/// A call made on the mock host, for expectations and the call log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BluetoothCall {
    /// `power_on` with these settings.
    PowerOn(AdapterSettings),
    /// `set_pairing_mode(enabled)`.
    SetPairingMode(bool),
    /// `devices()`.
    Devices,
    /// `device_events()`.
    DeviceEvents,
    /// `register_agent()`.
    RegisterAgent,
    /// `register_profile` of this kind.
    RegisterProfile(ProfileKind),
    /// `connect_profile(device, kind)`.
    ConnectProfile(Address, ProfileKind),
    /// `set_trusted(device, trusted)`.
    SetTrusted(Address, bool),
    /// `remove_device(device)`.
    RemoveDevice(Address),
    /// `disconnect_device(device)`.
    DisconnectDevice(Address),
    /// `service_events()`.
    ServiceEvents,
    /// `companion_le_listen()`.
    CompanionLeListen,
    /// `set_companion_advertising(enabled)`.
    SetCompanionAdvertising(bool),
}

/// The daemon's side of the mock: implements [`BluetoothHost`]. Clones share state.
#[derive(Debug, Clone)]
pub struct MockBluetooth {
    inner: Arc<Inner>,
}

/// The phone's side of the mock air. Clones share state with the [`MockBluetooth`] they came
/// from.
#[derive(Debug, Clone)]
pub struct MockRadio {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    expectations: Expectations<BluetoothCall>,
}

#[derive(Debug)]
struct State {
    address: Address,
    powered: bool,
    pairing_mode: bool,
    devices: BTreeMap<Address, DeviceInfo>,
    device_subscribers: Vec<mpsc::Sender<DeviceEvent>>,
    agent: Option<mpsc::Sender<AgentRequest>>,
    profiles: HashMap<ProfileKind, mpsc::Sender<ProfileConnection>>,
    /// The companion LE listener, once opened.
    companion_le: Option<mpsc::Sender<ProfileConnection>>,
    /// Whether the companion service is advertised over LE (phones can connect over LE).
    companion_advertising: bool,
    /// Phones in range that accept connections the car opens.
    listeners: HashMap<Address, mpsc::Sender<(ProfileKind, DuplexStream)>>,
    /// Whether the simulated bluetoothd is on the bus; while it is not, every call fails with
    /// [`BluetoothError::ServiceUnavailable`].
    service_up: bool,
    service_subscribers: Vec<mpsc::Sender<ServiceEvent>>,
    /// Errors to return from the next matching calls, in order.
    failures: VecDeque<(BluetoothCall, BluetoothError)>,
    calls: Vec<BluetoothCall>,
    /// How long `connect_profile` takes to answer, like paging a phone that is away.
    connect_delay: std::time::Duration,
}

/// How a simulated phone pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingMethod {
    /// Secure Simple Pairing, numeric comparison: both sides show `passkey`.
    NumericComparison(u32),
    /// "Just works": the agent is asked to authorize.
    JustWorks,
    /// Legacy PIN pairing: the car must answer with the phone's PIN.
    LegacyPin(&'static str),
}

/// Why a simulated radio operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RadioError {
    /// The car is not discoverable/pairable (no pairing window).
    #[error("the car is not pairable")]
    NotPairable,
    /// The car's adapter is off.
    #[error("the car's adapter is powered off")]
    PoweredOff,
    /// No agent is registered to answer.
    #[error("no pairing agent is registered")]
    NoAgent,
    /// The car rejected the pairing.
    #[error("pairing rejected by the car")]
    Rejected,
    /// The car answered a legacy PIN that does not match.
    #[error("wrong PIN: {0}")]
    WrongPin(String),
    /// The device is not paired, so it cannot connect.
    #[error("not paired")]
    NotPaired,
    /// The car has not registered that profile.
    #[error("profile {0} is not registered")]
    ProfileNotRegistered(ProfileKind),
    /// The car does not advertise its companion service over LE, so no LE link can be made.
    #[error("the car does not advertise the companion service over LE")]
    NotAdvertising,
}

impl State {
    /// The host's record of `address`, created unknown (not paired, trusted or connected).
    fn device_entry(&mut self, address: Address) -> &mut DeviceInfo {
        self.devices.entry(address).or_insert_with(|| DeviceInfo {
            address,
            name: None,
            paired: false,
            trusted: false,
            connected: false,
        })
    }
}

impl Default for MockBluetooth {
    fn default() -> Self {
        Self::new()
    }
}

impl MockBluetooth {
    /// A powered-off adapter at `00:1A:7D:DA:71:13` with no devices.
    pub fn new() -> Self {
        MockBluetooth {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    address: Address::new([0x00, 0x1A, 0x7D, 0xDA, 0x71, 0x13]),
                    powered: false,
                    pairing_mode: false,
                    devices: BTreeMap::new(),
                    device_subscribers: Vec::new(),
                    agent: None,
                    profiles: HashMap::new(),
                    companion_le: None,
                    companion_advertising: false,
                    listeners: HashMap::new(),
                    service_up: true,
                    service_subscribers: Vec::new(),
                    failures: VecDeque::new(),
                    calls: Vec::new(),
                    connect_delay: std::time::Duration::ZERO,
                }),
                expectations: Expectations::new("MockBluetooth"),
            }),
        }
    }

    /// The radio side, for the simulated phone.
    pub fn radio(&self) -> MockRadio {
        MockRadio {
            inner: self.inner.clone(),
        }
    }

    /// Expects `call` to be made, after the previously expected calls.
    pub fn expect(&self, call: BluetoothCall) {
        self.inner.expectations.expect(call);
    }

    /// Makes the next call equal to `call` fail with `error`.
    pub fn fail_next(&self, call: BluetoothCall, error: BluetoothError) {
        lock(&self.inner.state).failures.push_back((call, error));
    }

    /// Makes every `connect_profile` take `delay` (tokio time) before it answers, as BlueZ
    /// does while paging a phone that is not there.
    pub fn set_connect_delay(&self, delay: std::time::Duration) {
        lock(&self.inner.state).connect_delay = delay;
    }

    /// Panics if an expected call has not been made.
    pub fn done(&self) {
        self.inner.expectations.done();
    }

    /// Every call made so far, in order.
    pub fn calls(&self) -> Vec<BluetoothCall> {
        lock(&self.inner.state).calls.clone()
    }

    /// Whether the adapter is currently discoverable and pairable.
    pub fn is_pairable(&self) -> bool {
        lock(&self.inner.state).pairing_mode
    }

    /// Adds a device the host already knows (e.g. bonded before a restart).
    pub fn add_known_device(&self, info: DeviceInfo) {
        lock(&self.inner.state).devices.insert(info.address, info);
    }

    /// Simulates bluetoothd exiting: the agent and profile registrations and the device
    /// event subscriptions are dropped (their receivers close), the adapter powers off and
    /// the pairing mode is forgotten, every call fails with
    /// [`BluetoothError::ServiceUnavailable`] until [`restore_service`](Self::restore_service),
    /// and subscribers of [`BluetoothHost::service_events`] get [`ServiceEvent::Vanished`].
    pub async fn vanish_service(&self) {
        let subscribers = {
            let mut state = lock(&self.inner.state);
            state.service_up = false;
            state.powered = false;
            state.pairing_mode = false;
            state.agent = None;
            state.profiles.clear();
            state.companion_le = None;
            state.companion_advertising = false;
            state.device_subscribers.clear();
            for d in state.devices.values_mut() {
                d.connected = false;
            }
            state.service_subscribers.clone()
        };
        notify_service(&self.inner, subscribers, ServiceEvent::Vanished).await;
    }

    /// Simulates bluetoothd starting again (without any registrations): subscribers get
    /// [`ServiceEvent::Appeared`]. Bonds ([`add_known_device`](Self::add_known_device), phones
    /// that paired) survive, as they do on disk.
    pub async fn restore_service(&self) {
        let subscribers = {
            let mut state = lock(&self.inner.state);
            state.service_up = true;
            state.service_subscribers.clone()
        };
        notify_service(&self.inner, subscribers, ServiceEvent::Appeared).await;
    }

    /// Whether a pairing agent is registered.
    pub fn agent_registered(&self) -> bool {
        lock(&self.inner.state)
            .agent
            .as_ref()
            .is_some_and(|a| !a.is_closed())
    }

    /// The profiles registered (and still listened to) now.
    pub fn registered_profiles(&self) -> Vec<ProfileKind> {
        let state = lock(&self.inner.state);
        let mut kinds: Vec<ProfileKind> = state
            .profiles
            .iter()
            .filter(|(_, tx)| !tx.is_closed())
            .map(|(k, _)| *k)
            .collect();
        kinds.sort_by_key(|k| k.uuid());
        kinds
    }

    /// Whether the companion service is advertised over LE now.
    pub fn is_advertising_companion(&self) -> bool {
        lock(&self.inner.state).companion_advertising
    }

    /// Whether the companion LE listener is open (and its receiver still held).
    pub fn companion_le_listening(&self) -> bool {
        lock(&self.inner.state)
            .companion_le
            .as_ref()
            .is_some_and(|tx| !tx.is_closed())
    }

    fn record(&self, call: BluetoothCall) -> Result<(), BluetoothError> {
        let failure = {
            let mut state = lock(&self.inner.state);
            state.calls.push(call.clone());
            let pos = state.failures.iter().position(|(c, _)| *c == call);
            let injected = pos.and_then(|i| state.failures.remove(i)).map(|(_, e)| e);
            injected.or_else(|| {
                (!state.service_up && call != BluetoothCall::ServiceEvents).then(|| {
                    BluetoothError::ServiceUnavailable("bluetoothd is not running (mock)".into())
                })
            })
        };
        self.inner
            .expectations
            .observe(|expected| *expected == call);
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl BluetoothHost for MockBluetooth {
    async fn power_on(&self, settings: &AdapterSettings) -> Result<AdapterInfo, BluetoothError> {
        self.record(BluetoothCall::PowerOn(settings.clone()))?;
        let mut state = lock(&self.inner.state);
        state.powered = true;
        Ok(AdapterInfo {
            address: state.address,
            name: settings
                .adapter
                .clone()
                .unwrap_or_else(|| "hci0".to_owned()),
        })
    }

    async fn set_pairing_mode(&self, enabled: bool) -> Result<(), BluetoothError> {
        self.record(BluetoothCall::SetPairingMode(enabled))?;
        lock(&self.inner.state).pairing_mode = enabled;
        Ok(())
    }

    async fn devices(&self) -> Result<Vec<DeviceInfo>, BluetoothError> {
        self.record(BluetoothCall::Devices)?;
        Ok(lock(&self.inner.state).devices.values().cloned().collect())
    }

    async fn device_events(&self) -> Result<mpsc::Receiver<DeviceEvent>, BluetoothError> {
        self.record(BluetoothCall::DeviceEvents)?;
        let (tx, rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        lock(&self.inner.state).device_subscribers.push(tx);
        Ok(rx)
    }

    async fn register_agent(&self) -> Result<mpsc::Receiver<AgentRequest>, BluetoothError> {
        self.record(BluetoothCall::RegisterAgent)?;
        let (tx, rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        lock(&self.inner.state).agent = Some(tx);
        Ok(rx)
    }

    async fn register_profile(
        &self,
        spec: ProfileSpec,
    ) -> Result<mpsc::Receiver<ProfileConnection>, BluetoothError> {
        self.record(BluetoothCall::RegisterProfile(spec.kind))?;
        let (tx, rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        lock(&self.inner.state).profiles.insert(spec.kind, tx);
        Ok(rx)
    }

    async fn connect_profile(
        &self,
        device: Address,
        kind: ProfileKind,
    ) -> Result<(), BluetoothError> {
        self.record(BluetoothCall::ConnectProfile(device, kind))?;
        let delay = lock(&self.inner.state).connect_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let unreachable = |reason: &str| BluetoothError::ConnectFailed {
            device,
            kind,
            reason: reason.to_owned(),
        };
        let (listener, profile) = {
            let state = lock(&self.inner.state);
            if !state.devices.get(&device).is_some_and(|d| d.paired) {
                return Err(BluetoothError::UnknownDevice(device));
            }
            let listener = state
                .listeners
                .get(&device)
                .cloned()
                .ok_or_else(|| unreachable("host is down"))?;
            let profile = state
                .profiles
                .get(&kind)
                .cloned()
                .ok_or_else(|| unreachable("profile not registered"))?;
            (listener, profile)
        };
        let (car, phone) = tokio::io::duplex(PIPE_BUFFER);
        listener
            .send((kind, phone))
            .await
            .map_err(|_| unreachable("connection refused"))?;
        self.radio().set_connected(device, true).await;
        profile
            .send(ProfileConnection {
                device,
                kind,
                transport: Transport::Rfcomm,
                stream: Box::new(car),
            })
            .await
            .map_err(|_| unreachable("profile handler gone"))?;
        Ok(())
    }

    async fn companion_le_listen(
        &self,
    ) -> Result<mpsc::Receiver<ProfileConnection>, BluetoothError> {
        self.record(BluetoothCall::CompanionLeListen)?;
        let (tx, rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let mut state = lock(&self.inner.state);
        state.companion_le = Some(tx);
        state.companion_advertising = false;
        Ok(rx)
    }

    async fn set_companion_advertising(&self, enabled: bool) -> Result<(), BluetoothError> {
        self.record(BluetoothCall::SetCompanionAdvertising(enabled))?;
        let mut state = lock(&self.inner.state);
        state.companion_advertising = enabled && state.companion_le.is_some();
        Ok(())
    }

    async fn set_trusted(&self, device: Address, trusted: bool) -> Result<(), BluetoothError> {
        self.record(BluetoothCall::SetTrusted(device, trusted))?;
        let info = {
            let mut state = lock(&self.inner.state);
            let d = state
                .devices
                .get_mut(&device)
                .ok_or(BluetoothError::UnknownDevice(device))?;
            d.trusted = trusted;
            d.clone()
        };
        self.radio().broadcast(DeviceEvent::Changed(info)).await;
        Ok(())
    }

    async fn remove_device(&self, device: Address) -> Result<(), BluetoothError> {
        self.record(BluetoothCall::RemoveDevice(device))?;
        let removed = lock(&self.inner.state).devices.remove(&device);
        if removed.is_none() {
            return Err(BluetoothError::UnknownDevice(device));
        }
        self.radio().broadcast(DeviceEvent::Removed(device)).await;
        Ok(())
    }

    async fn disconnect_device(&self, device: Address) -> Result<(), BluetoothError> {
        self.record(BluetoothCall::DisconnectDevice(device))?;
        if !lock(&self.inner.state).devices.contains_key(&device) {
            return Err(BluetoothError::UnknownDevice(device));
        }
        self.radio().set_connected(device, false).await;
        Ok(())
    }

    async fn service_events(&self) -> Result<mpsc::Receiver<ServiceEvent>, BluetoothError> {
        self.record(BluetoothCall::ServiceEvents)?;
        let (tx, rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let up = {
            let mut state = lock(&self.inner.state);
            state.service_subscribers.push(tx.clone());
            state.service_up
        };
        if !up {
            // Cannot fail: the channel is new and empty.
            let _ = tx.try_send(ServiceEvent::Vanished);
        }
        Ok(rx)
    }
}

async fn notify_service(
    inner: &Inner,
    subscribers: Vec<mpsc::Sender<ServiceEvent>>,
    event: ServiceEvent,
) {
    for tx in subscribers {
        let _ = tx.send(event).await;
    }
    lock(&inner.state)
        .service_subscribers
        .retain(|tx| !tx.is_closed());
}

impl MockRadio {
    /// A phone comes into range: the host sees it (as after discovery) and the phone starts
    /// accepting connections the car opens, which arrive on the returned receiver.
    pub async fn appear(
        &self,
        address: Address,
        name: &str,
    ) -> mpsc::Receiver<(ProfileKind, DuplexStream)> {
        let (tx, rx) = mpsc::channel(4);
        let info = {
            let mut state = lock(&self.inner.state);
            state.listeners.insert(address, tx);
            let d = state.device_entry(address);
            d.name = Some(name.to_owned());
            d.clone()
        };
        self.broadcast(DeviceEvent::Added(info)).await;
        rx
    }

    /// The phone goes out of range: links drop and it accepts no more connections.
    pub async fn vanish(&self, address: Address) {
        lock(&self.inner.state).listeners.remove(&address);
        self.set_connected(address, false).await;
    }

    /// The phone pairs with the car through the car's agent.
    pub async fn pair(&self, address: Address, method: PairingMethod) -> Result<(), RadioError> {
        let agent = {
            let state = lock(&self.inner.state);
            if !state.powered {
                return Err(RadioError::PoweredOff);
            }
            if !state.pairing_mode {
                return Err(RadioError::NotPairable);
            }
            state.agent.clone().ok_or(RadioError::NoAgent)?
        };
        let accepted = match method {
            PairingMethod::NumericComparison(passkey) => {
                let (reply, rx) = AgentReply::new();
                ask(
                    &agent,
                    AgentRequest::Confirm {
                        device: address,
                        passkey,
                        reply,
                    },
                    rx,
                )
                .await
            }
            PairingMethod::JustWorks => {
                let (reply, rx) = AgentReply::new();
                ask(
                    &agent,
                    AgentRequest::Authorize {
                        device: address,
                        reply,
                    },
                    rx,
                )
                .await
            }
            PairingMethod::LegacyPin(pin) => {
                let (reply, rx) = AgentReply::new();
                match ask(
                    &agent,
                    AgentRequest::PinCode {
                        device: address,
                        reply,
                    },
                    rx,
                )
                .await
                {
                    Ok(answer) if answer == pin => Ok(()),
                    Ok(answer) => return Err(RadioError::WrongPin(answer)),
                    Err(e) => Err(e),
                }
            }
        };
        accepted.map_err(|_| RadioError::Rejected)?;
        let info = {
            let mut state = lock(&self.inner.state);
            let d = state.device_entry(address);
            d.paired = true;
            d.connected = true;
            d.clone()
        };
        self.broadcast(DeviceEvent::Changed(info)).await;
        Ok(())
    }

    /// The phone opens a profile connection to the car; returns the phone's end.
    pub async fn connect(
        &self,
        address: Address,
        kind: ProfileKind,
    ) -> Result<DuplexStream, RadioError> {
        let profile = {
            let state = lock(&self.inner.state);
            if !state.devices.get(&address).is_some_and(|d| d.paired) {
                return Err(RadioError::NotPaired);
            }
            state
                .profiles
                .get(&kind)
                .cloned()
                .ok_or(RadioError::ProfileNotRegistered(kind))?
        };
        let (car, phone) = tokio::io::duplex(PIPE_BUFFER);
        self.set_connected(address, true).await;
        profile
            .send(ProfileConnection {
                device: address,
                kind,
                transport: Transport::Rfcomm,
                stream: Box::new(car),
            })
            .await
            .map_err(|_| RadioError::ProfileNotRegistered(kind))?;
        Ok(phone)
    }

    /// The phone opens the companion LE L2CAP channel to the car (as an iPhone does after
    /// reading the PSM over GATT); returns the phone's end. Needs a bond (LE encryption) and
    /// the car advertising the companion service.
    pub async fn connect_companion_le(&self, address: Address) -> Result<DuplexStream, RadioError> {
        let listener = {
            let state = lock(&self.inner.state);
            if !state.devices.get(&address).is_some_and(|d| d.paired) {
                return Err(RadioError::NotPaired);
            }
            if !state.companion_advertising {
                return Err(RadioError::NotAdvertising);
            }
            state
                .companion_le
                .clone()
                .ok_or(RadioError::NotAdvertising)?
        };
        let (car, phone) = tokio::io::duplex(PIPE_BUFFER);
        self.set_connected(address, true).await;
        listener
            .send(ProfileConnection {
                device: address,
                kind: ProfileKind::Companion,
                transport: Transport::LeL2cap,
                stream: Box::new(car),
            })
            .await
            .map_err(|_| RadioError::NotAdvertising)?;
        Ok(phone)
    }

    /// Whether the car's adapter is currently pairable.
    pub fn car_pairable(&self) -> bool {
        lock(&self.inner.state).pairing_mode
    }

    /// The state the host has of `address`.
    pub fn device(&self, address: Address) -> Option<DeviceInfo> {
        lock(&self.inner.state).devices.get(&address).cloned()
    }

    async fn set_connected(&self, address: Address, connected: bool) {
        let info = {
            let mut state = lock(&self.inner.state);
            match state.devices.get_mut(&address) {
                Some(d) if d.connected != connected => {
                    d.connected = connected;
                    d.clone()
                }
                _ => return,
            }
        };
        self.broadcast(DeviceEvent::Changed(info)).await;
    }

    async fn broadcast(&self, event: DeviceEvent) {
        let subscribers = lock(&self.inner.state).device_subscribers.clone();
        for tx in subscribers {
            // A subscriber that went away is pruned below; one that is full makes us wait,
            // like a D-Bus signal queue would.
            let _ = tx.send(event.clone()).await;
        }
        lock(&self.inner.state)
            .device_subscribers
            .retain(|tx| !tx.is_closed());
    }
}

async fn ask<T>(
    agent: &mpsc::Sender<AgentRequest>,
    request: AgentRequest,
    rx: tokio::sync::oneshot::Receiver<Result<T, AgentRejection>>,
) -> Result<T, AgentRejection> {
    agent
        .send(request)
        .await
        .map_err(|_| AgentRejection::Canceled)?;
    rx.await.unwrap_or(Err(AgentRejection::Canceled))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const PHONE: Address = Address::new([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);

    fn settings() -> AdapterSettings {
        AdapterSettings {
            adapter: None,
            alias: "codriver".into(),
            class: 0x240408,
        }
    }

    #[tokio::test]
    async fn pairing_needs_the_window_and_the_agent() {
        let host = MockBluetooth::new();
        let radio = host.radio();
        host.power_on(&settings()).await.unwrap();
        let mut agent = host.register_agent().await.unwrap();
        let _incoming = radio.appear(PHONE, "Phone").await;
        assert_eq!(
            radio
                .pair(PHONE, PairingMethod::NumericComparison(123456))
                .await,
            Err(RadioError::NotPairable)
        );
        host.set_pairing_mode(true).await.unwrap();
        let answer = tokio::spawn(async move {
            match agent.recv().await.unwrap() {
                AgentRequest::Confirm {
                    device,
                    passkey,
                    reply,
                } => {
                    assert_eq!((device, passkey), (PHONE, 123456));
                    reply.accept(());
                }
                other => panic!("unexpected {other:?}"),
            }
        });
        radio
            .pair(PHONE, PairingMethod::NumericComparison(123456))
            .await
            .unwrap();
        answer.await.unwrap();
        assert!(radio.device(PHONE).unwrap().paired);
    }

    #[tokio::test]
    async fn connections_carry_bytes_both_ways() {
        let host = MockBluetooth::new();
        let radio = host.radio();
        host.power_on(&settings()).await.unwrap();
        let mut hfp = host
            .register_profile(ProfileSpec {
                kind: ProfileKind::HandsFree,
                features: None,
                version: None,
            })
            .await
            .unwrap();
        let mut phone_listener = radio.appear(PHONE, "Phone").await;
        host.add_known_device(DeviceInfo {
            address: PHONE,
            name: Some("Phone".into()),
            paired: true,
            trusted: true,
            connected: false,
        });
        host.connect_profile(PHONE, ProfileKind::HandsFree)
            .await
            .unwrap();
        let (kind, mut phone_end) = phone_listener.recv().await.unwrap();
        assert_eq!(kind, ProfileKind::HandsFree);
        let mut conn = hfp.recv().await.unwrap();
        conn.stream.write_all(b"AT+BRSF=1\r").await.unwrap();
        let mut buf = [0u8; 10];
        phone_end.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"AT+BRSF=1\r");
    }

    #[tokio::test]
    async fn injected_failure_is_returned_once() {
        let host = MockBluetooth::new();
        host.fail_next(
            BluetoothCall::RegisterAgent,
            BluetoothError::ServiceUnavailable("gone".into()),
        );
        assert!(host.register_agent().await.is_err());
        assert!(host.register_agent().await.is_ok());
    }

    #[test]
    #[should_panic(expected = "MockBluetooth: 1 expectation(s) not met")]
    fn unconsumed_expectation_fails_on_drop() {
        let host = MockBluetooth::new();
        host.expect(BluetoothCall::SetPairingMode(true));
        drop(host);
    }

    #[tokio::test]
    async fn expectations_are_consumed_in_order() {
        let host = MockBluetooth::new();
        host.expect(BluetoothCall::RegisterAgent);
        host.expect(BluetoothCall::SetPairingMode(true));
        host.set_pairing_mode(true).await.unwrap(); // before its turn: recorded, not consumed
        host.register_agent().await.unwrap();
        host.set_pairing_mode(true).await.unwrap();
        host.done();
    }
}
