//! A mock bluetoothd on a private bus, written with zbus: just enough of BlueZ's D-Bus API
//! for codriverd's `BluezHost` (through bluer) to run against it unchanged.
//!
//! Why not python3-dbusmock's `bluez5` template: it covers Adapter1 and Device1, but its
//! `ProfileManager1.RegisterProfile` is an empty stub (no record of who registered what, so no
//! "UUID already registered"), nothing ever calls `Profile1.NewConnection` (no socket is
//! handed over) and nothing calls the registered `Agent1` to pair. Only one process can own
//! `org.bluez`, so the two cannot be combined on one bus either; this mock does all of it in
//! one language, in-process, where a test can also make bluetoothd "exit" (close the
//! connection: the name's owner goes away) and "start again" (a new instance takes the name).
//!
//! What it serves, under `/` with an ObjectManager (InterfacesAdded/Removed as BlueZ sends):
//! * `/org/bluez`: `AgentManager1` (RegisterAgent, RequestDefaultAgent, UnregisterAgent) and
//!   `ProfileManager1` (RegisterProfile answering `org.bluez.Error.NotPermitted` "UUID already
//!   registered" to a second registration of a UUID, UnregisterProfile);
//! * `/org/bluez/hci0`: `Adapter1` (Address, Alias, Class, Powered, Discoverable, Pairable and
//!   their timeouts; RemoveDevice);
//! * `/org/bluez/hci0/dev_XX_…`: `Device1` (Name, Paired, Trusted, Connected, …; Connect and
//!   ConnectProfile, which call the registered profile's `NewConnection` with one end of a
//!   socketpair and give the test the other end, as the phone's side of the RFCOMM link).
#![allow(missing_docs)]

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::{Arc, Mutex};

use codriver_hal::Address;
use codriver_hal::bluetooth::{HFP_AG_UUID, HFP_HF_UUID};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{Fd, ObjectPath, OwnedObjectPath, OwnedValue};
use zbus::{Connection, interface};

/// The mock adapter's address.
pub const ADAPTER_ADDRESS: &str = "00:1A:7D:DA:71:13";

/// The adapter's object path.
pub const ADAPTER_PATH: &str = "/org/bluez/hci0";

/// BlueZ's errors, as bluer maps them.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.bluez.Error")]
pub enum BluezError {
    #[zbus(error)]
    ZBus(zbus::Error),
    NotPermitted(String),
    Failed(String),
    DoesNotExist(String),
    InvalidArguments(String),
    Rejected(String),
}

/// A device the mock knows at start (a bond "on disk") or that appears later.
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    pub address: Address,
    pub name: String,
    pub paired: bool,
    pub trusted: bool,
}

/// A profile registration: who registered which UUID at which path, with which options.
#[derive(Debug, Clone)]
pub struct Registration {
    pub owner: String,
    pub path: OwnedObjectPath,
    pub uuid: String,
    pub options: HashMap<String, OwnedValue>,
}

/// A profile connection the mock opened: the phone's end of the socketpair.
#[derive(Debug)]
pub struct PhoneEnd {
    pub device: Address,
    /// The local profile's UUID (e.g. HF 0x111E).
    pub uuid: String,
    pub stream: UnixStream,
}

#[derive(Debug, Default)]
struct Shared {
    profiles: Mutex<Vec<Registration>>,
    /// (owner, path, default?)
    agent: Mutex<Option<(String, OwnedObjectPath, bool)>>,
    /// Devices that answer connections (in range).
    in_range: Mutex<Vec<Address>>,
    /// Every method the mock served, by name, for assertions.
    calls: Mutex<Vec<String>>,
}

impl Shared {
    fn log(&self, call: impl Into<String>) {
        lock(&self.calls).push(call.into());
    }
}

/// How a simulated phone pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// Numeric comparison: RequestConfirmation(device, passkey).
    Confirm(u32),
    /// Legacy pairing: RequestPinCode(device); succeeds if the car answers with this PIN.
    Pin(&'static str),
}

/// Why pairing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairError {
    /// The adapter is not pairable: bluetoothd refuses without asking the agent.
    NotPairable,
    /// No agent is registered.
    NoAgent,
    /// The agent answered with this D-Bus error name.
    Agent(String),
    /// The car answered the wrong PIN.
    WrongPin(String),
}

/// A running mock bluetoothd owning `org.bluez` on the bus `DBUS_SYSTEM_BUS_ADDRESS` names.
pub struct BluezMock {
    connection: Connection,
    shared: Arc<Shared>,
    phone_end_tx: mpsc::Sender<PhoneEnd>,
    phone_ends: mpsc::Receiver<PhoneEnd>,
}

impl BluezMock {
    /// Serves the objects, then takes the name `org.bluez` (as bluetoothd, objects first).
    pub async fn start(devices: &[DeviceSpec]) -> BluezMock {
        let shared = Arc::new(Shared::default());
        let (tx, phone_ends) = mpsc::channel(8);
        let connection = zbus::connection::Builder::system()
            .unwrap()
            .serve_at("/", zbus::fdo::ObjectManager)
            .unwrap()
            .serve_at(
                "/org/bluez",
                AgentManager {
                    shared: shared.clone(),
                },
            )
            .unwrap()
            .serve_at(
                "/org/bluez",
                ProfileManager {
                    shared: shared.clone(),
                },
            )
            .unwrap()
            .serve_at(
                ADAPTER_PATH,
                Adapter {
                    shared: shared.clone(),
                    alias: "mock".into(),
                    powered: false,
                    discoverable: false,
                    pairable: false,
                    discoverable_timeout: 180,
                    pairable_timeout: 0,
                },
            )
            .unwrap()
            .build()
            .await
            .unwrap();
        let mock = BluezMock {
            connection,
            shared,
            phone_end_tx: tx,
            phone_ends,
        };
        for d in devices {
            mock.add_device(d).await;
        }
        mock.connection.request_name("org.bluez").await.unwrap();
        mock
    }

    /// bluetoothd exits: the connection closes and `org.bluez` has no owner.
    pub async fn stop(self) {
        self.connection.close().await.unwrap();
    }

    /// A phone comes into range (and is listed, as after discovery).
    pub async fn add_device(&self, spec: &DeviceSpec) {
        lock(&self.shared.in_range).push(spec.address);
        self.connection
            .object_server()
            .at(
                device_path(spec.address).as_str(),
                Device {
                    shared: self.shared.clone(),
                    phone_ends: self.phone_end_tx.clone(),
                    address: spec.address,
                    name: spec.name.clone(),
                    paired: spec.paired,
                    trusted: spec.trusted,
                    connected: false,
                },
            )
            .await
            .unwrap();
    }

    /// The device stops answering connections (out of range).
    pub fn out_of_range(&self, address: Address) {
        lock(&self.shared.in_range).retain(|a| *a != address);
    }

    /// The device answers connections again.
    pub fn in_range(&self, address: Address) {
        let mut in_range = lock(&self.shared.in_range);
        if !in_range.contains(&address) {
            in_range.push(address);
        }
    }

    /// The next profile connection the mock opened (the phone's end).
    pub async fn phone_end(&mut self) -> PhoneEnd {
        self.phone_ends.recv().await.expect("mock running")
    }

    /// Profiles registered now.
    pub fn profiles(&self) -> Vec<Registration> {
        lock(&self.shared.profiles).clone()
    }

    /// Whether an agent is registered, and whether it asked to be the default.
    pub fn agent(&self) -> Option<(OwnedObjectPath, bool)> {
        lock(&self.shared.agent)
            .as_ref()
            .map(|(_, p, d)| (p.clone(), *d))
    }

    /// Methods served so far, e.g. `RegisterProfile 0000111e-…`, `ConnectProfile …`.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.shared.calls).clone()
    }

    /// Adapter properties: (powered, discoverable, pairable, alias).
    pub async fn adapter(&self) -> (bool, bool, bool, String) {
        let iface = self
            .connection
            .object_server()
            .interface::<_, Adapter>(ADAPTER_PATH)
            .await
            .unwrap();
        let a = iface.get().await;
        (a.powered, a.discoverable, a.pairable, a.alias.clone())
    }

    /// A device's (paired, trusted, connected).
    pub async fn device(&self, address: Address) -> (bool, bool, bool) {
        let iface = self.device_iface(address).await;
        let d = iface.get().await;
        (d.paired, d.trusted, d.connected)
    }

    async fn device_iface(&self, address: Address) -> zbus::object_server::InterfaceRef<Device> {
        self.connection
            .object_server()
            .interface::<_, Device>(device_path(address).as_str())
            .await
            .unwrap()
    }

    /// The phone pairs: bluetoothd asks the registered agent, and on success the device is
    /// bonded and connected. Refused without asking when the adapter is not pairable.
    pub async fn pair(&self, address: Address, method: Pairing) -> Result<(), PairError> {
        if !self.adapter().await.2 {
            return Err(PairError::NotPairable);
        }
        self.ask_agent(address, method).await?;
        let iface = self.device_iface(address).await;
        {
            let mut d = iface.get_mut().await;
            d.paired = true;
            d.connected = true;
        }
        let d = iface.get().await;
        let emitter = iface.signal_emitter();
        d.paired_changed(emitter).await.unwrap();
        d.connected_changed(emitter).await.unwrap();
        Ok(())
    }

    /// Asks the agent as bluetoothd would during pairing, whatever the adapter's state (to
    /// check the agent's own policy).
    pub async fn ask_agent(&self, address: Address, method: Pairing) -> Result<(), PairError> {
        let (owner, path, _) = lock(&self.shared.agent).clone().ok_or(PairError::NoAgent)?;
        let device = device_path(address);
        let device = ObjectPath::try_from(device.as_str()).unwrap();
        let reply = match method {
            Pairing::Confirm(passkey) => self
                .connection
                .call_method(
                    Some(owner.as_str()),
                    &path,
                    Some("org.bluez.Agent1"),
                    "RequestConfirmation",
                    &(device, passkey),
                )
                .await
                .map(|_| ()),
            Pairing::Pin(pin) => {
                let reply = self
                    .connection
                    .call_method(
                        Some(owner.as_str()),
                        &path,
                        Some("org.bluez.Agent1"),
                        "RequestPinCode",
                        &(device,),
                    )
                    .await;
                match reply {
                    Ok(m) => {
                        let answer: String = m.body().deserialize().unwrap();
                        if answer != pin {
                            return Err(PairError::WrongPin(answer));
                        }
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
        };
        reply.map_err(|e| match e {
            zbus::Error::MethodError(name, _, _) => PairError::Agent(name.to_string()),
            other => PairError::Agent(other.to_string()),
        })
    }

    /// The phone drops the link (ACL down).
    pub async fn disconnect(&self, address: Address) {
        let iface = self.device_iface(address).await;
        iface.get_mut().await.connected = false;
        let d = iface.get().await;
        d.connected_changed(iface.signal_emitter()).await.unwrap();
    }
}

/// Registers `uuid` as "another program" would (e.g. WirePlumber holding the HF role), on a
/// connection of its own; keep the returned connection alive to keep the registration.
pub async fn register_foreign_profile(uuid: &str) -> Connection {
    let connection = zbus::connection::Builder::system()
        .unwrap()
        .build()
        .await
        .unwrap();
    let options: HashMap<&str, zbus::zvariant::Value<'_>> = HashMap::new();
    connection
        .call_method(
            Some("org.bluez"),
            "/org/bluez",
            Some("org.bluez.ProfileManager1"),
            "RegisterProfile",
            &(
                ObjectPath::try_from("/org/example/hfp").unwrap(),
                uuid,
                options,
            ),
        )
        .await
        .unwrap();
    connection
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// BlueZ's object path of a device on hci0.
pub fn device_path(address: Address) -> String {
    format!(
        "{ADAPTER_PATH}/dev_{}",
        address.to_string().replace(':', "_")
    )
}

fn sender_of(header: &zbus::message::Header<'_>) -> String {
    header.sender().map(|s| s.to_string()).unwrap_or_default()
}

struct AgentManager {
    shared: Arc<Shared>,
}

#[interface(name = "org.bluez.AgentManager1")]
impl AgentManager {
    async fn register_agent(
        &self,
        agent: OwnedObjectPath,
        capability: String,
        #[zbus(header)] header: zbus::message::Header<'_>,
    ) -> Result<(), BluezError> {
        self.shared.log(format!("RegisterAgent {capability}"));
        let mut slot = lock(&self.shared.agent);
        if slot.as_ref().is_some_and(|(_, p, _)| *p == agent) {
            return Err(BluezError::NotPermitted("Agent already registered".into()));
        }
        *slot = Some((sender_of(&header), agent, false));
        Ok(())
    }

    async fn request_default_agent(&self, agent: OwnedObjectPath) -> Result<(), BluezError> {
        self.shared.log("RequestDefaultAgent");
        match lock(&self.shared.agent).as_mut() {
            Some((_, path, default)) if *path == agent => {
                *default = true;
                Ok(())
            }
            _ => Err(BluezError::DoesNotExist("No agent registered".into())),
        }
    }

    async fn unregister_agent(&self, agent: OwnedObjectPath) -> Result<(), BluezError> {
        self.shared.log("UnregisterAgent");
        let mut slot = lock(&self.shared.agent);
        if slot.as_ref().is_some_and(|(_, p, _)| *p == agent) {
            *slot = None;
            Ok(())
        } else {
            Err(BluezError::DoesNotExist("No such agent".into()))
        }
    }
}

struct ProfileManager {
    shared: Arc<Shared>,
}

#[interface(name = "org.bluez.ProfileManager1")]
impl ProfileManager {
    async fn register_profile(
        &self,
        profile: OwnedObjectPath,
        uuid: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] header: zbus::message::Header<'_>,
    ) -> Result<(), BluezError> {
        let uuid = uuid.to_ascii_lowercase();
        self.shared.log(format!("RegisterProfile {uuid}"));
        let mut profiles = lock(&self.shared.profiles);
        if profiles.iter().any(|r| r.uuid == uuid) {
            // What BlueZ ≥ 5.60 answers (src/profile.c).
            return Err(BluezError::NotPermitted("UUID already registered".into()));
        }
        profiles.push(Registration {
            owner: sender_of(&header),
            path: profile,
            uuid,
            options,
        });
        Ok(())
    }

    async fn unregister_profile(
        &self,
        profile: OwnedObjectPath,
        #[zbus(header)] header: zbus::message::Header<'_>,
    ) -> Result<(), BluezError> {
        self.shared.log("UnregisterProfile");
        let owner = sender_of(&header);
        let mut profiles = lock(&self.shared.profiles);
        let before = profiles.len();
        profiles.retain(|r| !(r.path == profile && r.owner == owner));
        if profiles.len() == before {
            return Err(BluezError::DoesNotExist("Profile does not exist".into()));
        }
        Ok(())
    }
}

struct Adapter {
    shared: Arc<Shared>,
    alias: String,
    powered: bool,
    discoverable: bool,
    pairable: bool,
    discoverable_timeout: u32,
    pairable_timeout: u32,
}

#[interface(name = "org.bluez.Adapter1")]
impl Adapter {
    #[zbus(property)]
    fn address(&self) -> String {
        ADAPTER_ADDRESS.to_owned()
    }
    #[zbus(property)]
    fn address_type(&self) -> String {
        "public".to_owned()
    }
    #[zbus(property)]
    fn name(&self) -> String {
        "mock-hci0".to_owned()
    }
    #[zbus(property)]
    fn alias(&self) -> String {
        self.alias.clone()
    }
    #[zbus(property)]
    fn set_alias(&mut self, alias: String) {
        self.alias = alias;
    }
    #[zbus(property)]
    fn class(&self) -> u32 {
        0x24_0408
    }
    #[zbus(property)]
    fn powered(&self) -> bool {
        self.powered
    }
    #[zbus(property)]
    fn set_powered(&mut self, on: bool) {
        self.shared.log(format!("Powered {on}"));
        self.powered = on;
    }
    #[zbus(property)]
    fn discoverable(&self) -> bool {
        self.discoverable
    }
    #[zbus(property)]
    fn set_discoverable(&mut self, on: bool) {
        self.discoverable = on;
    }
    #[zbus(property)]
    fn pairable(&self) -> bool {
        self.pairable
    }
    #[zbus(property)]
    fn set_pairable(&mut self, on: bool) {
        self.pairable = on;
    }
    #[zbus(property)]
    fn discoverable_timeout(&self) -> u32 {
        self.discoverable_timeout
    }
    #[zbus(property)]
    fn set_discoverable_timeout(&mut self, t: u32) {
        self.discoverable_timeout = t;
    }
    #[zbus(property)]
    fn pairable_timeout(&self) -> u32 {
        self.pairable_timeout
    }
    #[zbus(property)]
    fn set_pairable_timeout(&mut self, t: u32) {
        self.pairable_timeout = t;
    }
    #[zbus(property)]
    fn discovering(&self) -> bool {
        false
    }
    #[zbus(property, name = "UUIDs")]
    fn uuids(&self) -> Vec<String> {
        Vec::new()
    }

    async fn remove_device(
        &self,
        device: OwnedObjectPath,
        #[zbus(object_server)] server: &zbus::ObjectServer,
    ) -> Result<(), BluezError> {
        self.shared.log(format!("RemoveDevice {}", device.as_str()));
        let removed = server.remove::<Device, _>(device.as_str()).await?;
        if removed {
            Ok(())
        } else {
            Err(BluezError::DoesNotExist("Does Not Exist".into()))
        }
    }
}

struct Device {
    shared: Arc<Shared>,
    phone_ends: mpsc::Sender<PhoneEnd>,
    address: Address,
    name: String,
    paired: bool,
    trusted: bool,
    connected: bool,
}

impl Device {
    /// Opens `local_uuid`'s profile connection: NewConnection to its owner with one end of a
    /// socketpair; the other end goes to the test.
    async fn open_profile(
        &self,
        local_uuid: &str,
        connection: &Connection,
    ) -> Result<(), BluezError> {
        if !lock(&self.shared.in_range).contains(&self.address) {
            return Err(BluezError::Failed("br-connection-page-timeout".into()));
        }
        let registration = lock(&self.shared.profiles)
            .iter()
            .find(|r| r.uuid == local_uuid)
            .cloned()
            .ok_or_else(|| BluezError::NotPermitted("profile not registered".into()))?;
        let (car, phone) = StdUnixStream::pair().map_err(|e| BluezError::Failed(e.to_string()))?;
        let device = device_path(self.address);
        let props: HashMap<&str, zbus::zvariant::Value<'_>> = HashMap::new();
        connection
            .call_method(
                Some(registration.owner.as_str()),
                &registration.path,
                Some("org.bluez.Profile1"),
                "NewConnection",
                &(
                    ObjectPath::try_from(device.as_str()).map_err(zbus::Error::from)?,
                    Fd::from(car.as_fd()),
                    props,
                ),
            )
            .await
            .map_err(|e| BluezError::Failed(format!("NewConnection: {e}")))?;
        // The car has its own copy of the descriptor now.
        drop(car);
        phone
            .set_nonblocking(true)
            .map_err(|e| BluezError::Failed(e.to_string()))?;
        let stream = UnixStream::from_std(phone).map_err(|e| BluezError::Failed(e.to_string()))?;
        let _ = self
            .phone_ends
            .send(PhoneEnd {
                device: self.address,
                uuid: local_uuid.to_owned(),
                stream,
            })
            .await;
        Ok(())
    }

    async fn set_connected(&mut self, emitter: &SignalEmitter<'_>) {
        if !self.connected {
            self.connected = true;
            let _ = self.connected_changed(emitter).await;
        }
    }
}

#[interface(name = "org.bluez.Device1")]
impl Device {
    #[zbus(property)]
    fn address(&self) -> String {
        self.address.to_string()
    }
    #[zbus(property)]
    fn address_type(&self) -> String {
        "public".to_owned()
    }
    #[zbus(property)]
    fn name(&self) -> String {
        self.name.clone()
    }
    #[zbus(property)]
    fn alias(&self) -> String {
        self.name.clone()
    }
    #[zbus(property)]
    fn adapter(&self) -> OwnedObjectPath {
        OwnedObjectPath::try_from(ADAPTER_PATH).unwrap_or_default()
    }
    #[zbus(property)]
    fn paired(&self) -> bool {
        self.paired
    }
    #[zbus(property)]
    fn bonded(&self) -> bool {
        self.paired
    }
    #[zbus(property)]
    fn trusted(&self) -> bool {
        self.trusted
    }
    #[zbus(property)]
    fn set_trusted(&mut self, trusted: bool) {
        self.shared
            .log(format!("Trusted {} {trusted}", self.address));
        self.trusted = trusted;
    }
    #[zbus(property)]
    fn blocked(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn connected(&self) -> bool {
        self.connected
    }
    #[zbus(property)]
    fn legacy_pairing(&self) -> bool {
        false
    }
    #[zbus(property, name = "UUIDs")]
    fn uuids(&self) -> Vec<String> {
        vec![HFP_AG_UUID.to_owned()]
    }

    /// Connects the profiles the device offers: here, Hands-Free.
    async fn connect(
        &mut self,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), BluezError> {
        self.shared.log(format!("Connect {}", self.address));
        self.open_profile(HFP_HF_UUID, connection).await?;
        self.set_connected(&emitter).await;
        Ok(())
    }

    /// `uuid` is the remote side's service: the phone's AG (0x111F) for our HF profile.
    async fn connect_profile(
        &mut self,
        uuid: String,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), BluezError> {
        let uuid = uuid.to_ascii_lowercase();
        self.shared
            .log(format!("ConnectProfile {} {uuid}", self.address));
        let local = if uuid == HFP_AG_UUID {
            HFP_HF_UUID.to_owned()
        } else {
            uuid
        };
        self.open_profile(&local, connection).await?;
        self.set_connected(&emitter).await;
        Ok(())
    }

    async fn disconnect(
        &mut self,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), BluezError> {
        self.connected = false;
        self.connected_changed(&emitter).await?;
        Ok(())
    }
}
