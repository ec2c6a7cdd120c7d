//! The Bluetooth host over BlueZ: bluetoothd on the system bus, reached through bluer.
//!
//! What BlueZ does for us: the adapter, bonding, SDP records and RFCOMM listeners of the
//! profiles we register (ProfileManager1), and handing each profile connection over as a socket
//! (Profile1.NewConnection). What we do: the pairing agent's decisions (forwarded to the daemon
//! as [`AgentRequest`]s) and everything spoken over the sockets.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bluer::adv::{Advertisement, AdvertisementHandle};
use bluer::agent::{
    Agent, AgentHandle, AuthorizeServiceFn, DisplayPasskeyFn, ReqError, ReqResult,
    RequestAuthorizationFn, RequestConfirmationFn, RequestPasskeyFn, RequestPinCodeFn,
};
use bluer::gatt::local::{
    Application, ApplicationHandle, Characteristic, CharacteristicRead, Service,
};
use bluer::l2cap::{self, SecurityLevel};
use bluer::rfcomm::{Profile, ProfileHandle};
use bluer::{AdapterEvent, AddressType, DeviceProperty, ErrorKind, InternalErrorKind};
use futures_util::stream::{SelectAll, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::Address;
use crate::bluetooth::{
    APPLE_L2CAP_PSM_CHARACTERISTIC_UUID, AdapterInfo, AdapterSettings, AgentRejection, AgentReply,
    AgentRequest, BluetoothError, BluetoothHost, COMPANION_GATT_SERVICE_UUID,
    COMPANION_PSM_CHARACTERISTIC_UUID, COMPANION_UUID, DeviceEvent, DeviceInfo,
    EVENT_CHANNEL_CAPACITY, HFP_AG_UUID, ProfileConnection, ProfileKind, ProfileSpec, ServiceEvent,
    Transport,
};

/// bluetoothd's well-known bus name.
const BLUEZ_BUS_NAME: &str = "org.bluez";

/// How long an outgoing profile connection may take before it is abandoned.
///
/// Paging a phone in range, SDP and RFCOMM take a few seconds; paging a phone that is away
/// fails after about 5 s. But for a dual-mode phone (any phone paired with Secure Connections:
/// the kernel derives LE keys from the BR/EDR pairing) BlueZ then falls back to LE and holds
/// the ConnectProfile reply until the phone advertises, which may be never. Seen in the VM tier
/// (tests/bluez-vm, scenario "reconnect") with bluetoothd 5.66.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a pairing request waits for the daemon's answer before it is cancelled.
///
/// BlueZ's own D-Bus call to the agent times out after about two minutes; answering earlier
/// lets the daemon announce the failure while the driver still remembers trying.
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(60);

/// [`BluetoothHost`] over BlueZ (bluetoothd on the system bus) through bluer.
///
/// Registrations (the pairing agent, profiles) and the tasks serving them live as long as this
/// value: dropping it unregisters everything.
pub struct BluezHost {
    session: bluer::Session,
    adapter: bluer::Adapter,
    /// bluer unregisters an agent when its handle drops, so the handle is kept here; the
    /// profile and event tasks are kept so dropping the host stops them.
    registrations: Mutex<Registrations>,
}

#[derive(Default)]
struct Registrations {
    agent: Option<AgentHandle>,
    /// The task serving each registered profile; it owns the profile handle.
    profiles: HashMap<ProfileKind, AbortHandle>,
    /// Device-event and service-watch tasks; each also ends by itself when its receiver is
    /// dropped.
    event_tasks: Vec<AbortHandle>,
    /// The companion LE transport, while it listens.
    companion_le: Option<CompanionLe>,
    /// The companion service's LE advertisement; dropping it stops advertising.
    advertisement: Option<AdvertisementHandle>,
}

/// The companion LE transport: the task accepting L2CAP channels (it owns the listening
/// socket) and the GATT application publishing its PSM.
struct CompanionLe {
    accept_task: AbortHandle,
    psm: u16,
    /// bluer unregisters the application when this drops.
    _gatt: ApplicationHandle,
}

impl Drop for CompanionLe {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl BluezHost {
    /// Connects to bluetoothd and picks the adapter: `adapter` by name (`hci0`), or the default
    /// one (`hci0` when present, otherwise the first by name).
    ///
    /// Fails with [`BluetoothError::ServiceUnavailable`] when the system bus or bluetoothd
    /// cannot be reached, and [`BluetoothError::NoAdapter`] when the adapter is missing.
    pub async fn new(adapter: Option<&str>) -> Result<Self, BluetoothError> {
        let session = bluer::Session::new()
            .await
            .map_err(|e| BluetoothError::ServiceUnavailable(e.to_string()))?;
        let names = session.adapter_names().await.map_err(backend_error)?;
        let name = choose_adapter(&names, adapter)?;
        let adapter = session.adapter(&name).map_err(backend_error)?;
        tracing::debug!(adapter = %name, "connected to bluetoothd");
        Ok(BluezHost {
            session,
            adapter,
            registrations: Mutex::default(),
        })
    }

    /// The BlueZ name of the adapter in use, e.g. `hci0`.
    pub fn adapter_name(&self) -> &str {
        self.adapter.name()
    }

    fn registrations(&self) -> MutexGuard<'_, Registrations> {
        // Nothing panics while holding this lock; if something did, the handles are still
        // the right ones to keep.
        self.registrations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn device(&self, device: Address) -> Result<bluer::Device, BluetoothError> {
        self.adapter.device(to_bluer(device)).map_err(backend_error)
    }
}

impl Drop for BluezHost {
    fn drop(&mut self) {
        let mut registrations = self.registrations();
        for task in registrations
            .profiles
            .values()
            .chain(&registrations.event_tasks)
        {
            task.abort();
        }
        registrations.advertisement = None;
        registrations.companion_le = None;
    }
}

impl std::fmt::Debug for BluezHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BluezHost")
            .field("adapter", &self.adapter.name())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl BluetoothHost for BluezHost {
    async fn power_on(&self, settings: &AdapterSettings) -> Result<AdapterInfo, BluetoothError> {
        if let Some(wanted) = &settings.adapter
            && wanted != self.adapter.name()
        {
            tracing::warn!(
                configured = %wanted,
                in_use = %self.adapter.name(),
                "adapter settings name another adapter than the one this host was opened on"
            );
        }
        self.adapter
            .set_powered(true)
            .await
            .map_err(backend_error)?;
        self.adapter
            .set_alias(settings.alias.clone())
            .await
            .map_err(backend_error)?;
        match self.adapter.class().await {
            Ok(current) => {
                if let Some(advice) = class_advice(current, settings.class) {
                    tracing::info!("{advice}");
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot read the adapter's class of device"),
        }
        let address = self.adapter.address().await.map_err(backend_error)?;
        Ok(AdapterInfo {
            address: from_bluer(address),
            name: self.adapter.name().to_owned(),
        })
    }

    async fn set_pairing_mode(&self, enabled: bool) -> Result<(), BluetoothError> {
        if enabled {
            // No BlueZ timeouts: the daemon decides when the pairing window closes.
            self.adapter
                .set_pairable_timeout(0)
                .await
                .map_err(backend_error)?;
            self.adapter
                .set_discoverable_timeout(0)
                .await
                .map_err(backend_error)?;
            self.adapter
                .set_pairable(true)
                .await
                .map_err(backend_error)?;
            self.adapter
                .set_discoverable(true)
                .await
                .map_err(backend_error)?;
        } else {
            self.adapter
                .set_discoverable(false)
                .await
                .map_err(backend_error)?;
            self.adapter
                .set_pairable(false)
                .await
                .map_err(backend_error)?;
        }
        Ok(())
    }

    async fn devices(&self) -> Result<Vec<DeviceInfo>, BluetoothError> {
        let addresses = self
            .adapter
            .device_addresses()
            .await
            .map_err(backend_error)?;
        let mut devices = Vec::with_capacity(addresses.len());
        for address in addresses {
            match read_device_info(&self.adapter, address).await {
                Ok(info) => devices.push(info),
                // Removed between the listing and the read.
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(backend_error(e)),
            }
        }
        Ok(devices)
    }

    async fn device_events(&self) -> Result<mpsc::Receiver<DeviceEvent>, BluetoothError> {
        let (tx, rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        // Subscribe before listing the known devices, so none slips between the two.
        let adapter_events = self.adapter.events().await.map_err(backend_error)?;
        let task = tokio::spawn(run_device_events(
            self.adapter.clone(),
            Box::pin(adapter_events),
            tx,
        ));
        let mut registrations = self.registrations();
        registrations.event_tasks.retain(|t| !t.is_finished());
        registrations.event_tasks.push(task.abort_handle());
        Ok(rx)
    }

    async fn register_agent(&self) -> Result<mpsc::Receiver<AgentRequest>, BluetoothError> {
        let (tx, rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        // One agent per D-Bus connection: release the previous one first.
        drop(self.registrations().agent.take());
        let handle = self
            .session
            .register_agent(pairing_agent(tx, self.adapter.name().to_owned()))
            .await
            .map_err(backend_error)?;
        self.registrations().agent = Some(handle);
        Ok(rx)
    }

    async fn register_profile(
        &self,
        spec: ProfileSpec,
    ) -> Result<mpsc::Receiver<ProfileConnection>, BluetoothError> {
        let kind = spec.kind;
        let replacing = self.registrations().profiles.remove(&kind);
        if let Some(task) = &replacing {
            task.abort();
        }
        let profile = bluer_profile(&spec)?;
        let mut attempt = 0;
        let handle = loop {
            match self.session.register_profile(profile.clone()).await {
                Ok(handle) => break handle,
                // Our own previous registration is unregistered in the background when its
                // handle drops; give that a moment before blaming another program.
                Err(e) if is_already_registered(&e) && replacing.is_some() && attempt < 5 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) if is_already_registered(&e) => {
                    let processes = tokio::task::spawn_blocking(running_process_names)
                        .await
                        .unwrap_or_default();
                    let (likely_owner, how_to_free) = guess_profile_owner(kind, &processes);
                    return Err(BluetoothError::ProfileAlreadyRegistered {
                        kind,
                        uuid: kind.uuid(),
                        likely_owner,
                        how_to_free,
                    });
                }
                Err(e) => return Err(backend_error(e)),
            }
        };
        let (tx, rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let task = tokio::spawn(serve_profile(kind, handle, tx));
        self.registrations()
            .profiles
            .insert(kind, task.abort_handle());
        tracing::debug!(%kind, uuid = kind.uuid(), "profile registered");
        Ok(rx)
    }

    async fn connect_profile(
        &self,
        device: Address,
        kind: ProfileKind,
    ) -> Result<(), BluetoothError> {
        let uuid = parse_uuid(remote_uuid(kind))?;
        let bluez_device = self.device(device)?;
        match tokio::time::timeout(CONNECT_TIMEOUT, bluez_device.connect_profile(&uuid)).await {
            Ok(result) => result.map_err(|e| connect_error(device, kind, e)),
            Err(_elapsed) => {
                cancel_pending_connect(&bluez_device).await;
                Err(BluetoothError::ConnectFailed {
                    device,
                    kind,
                    reason: format!("no connection within {}s", CONNECT_TIMEOUT.as_secs()),
                })
            }
        }
    }

    /// Listens on our adapter's LE public address, dynamic PSM, security level medium: the
    /// kernel refuses a channel (L2CAP "insufficient authentication/encryption") until the
    /// link is encrypted with a key from a bond, so only bonded phones get through. The peer
    /// address of an accepted channel is the phone's identity address: the kernel resolves a
    /// private address with the IRK the phone gave at pairing.
    async fn companion_le_listen(
        &self,
    ) -> Result<mpsc::Receiver<ProfileConnection>, BluetoothError> {
        // Replace any previous listener first, and with it its advertisement.
        {
            let mut registrations = self.registrations();
            registrations.advertisement = None;
            registrations.companion_le = None;
        }
        let own = self.adapter.address().await.map_err(backend_error)?;
        let listener = companion_listener(own).map_err(|e| BluetoothError::Backend(Box::new(e)))?;
        let psm = listener
            .as_ref()
            .local_addr()
            .map_err(|e| BluetoothError::Backend(Box::new(e)))?
            .psm;
        let gatt = self
            .adapter
            .serve_gatt_application(companion_gatt_application(psm)?)
            .await
            .map_err(backend_error)?;
        let (tx, rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let task = tokio::spawn(serve_companion_le(listener, tx));
        self.registrations().companion_le = Some(CompanionLe {
            accept_task: task.abort_handle(),
            psm,
            _gatt: gatt,
        });
        tracing::info!(
            psm = format!("{psm:#06x}"),
            "companion LE L2CAP transport listening"
        );
        Ok(rx)
    }

    async fn set_companion_advertising(&self, enabled: bool) -> Result<(), BluetoothError> {
        let listening = self.registrations().companion_le.as_ref().map(|le| le.psm);
        if !enabled || listening.is_none() {
            if self.registrations().advertisement.take().is_some() {
                tracing::debug!("companion LE advertising stopped");
            }
            return Ok(());
        }
        if self.registrations().advertisement.is_some() {
            return Ok(());
        }
        let handle = self
            .adapter
            .advertise(companion_advertisement()?)
            .await
            .map_err(backend_error)?;
        self.registrations().advertisement = Some(handle);
        tracing::debug!("companion LE advertising started");
        Ok(())
    }

    async fn set_trusted(&self, device: Address, trusted: bool) -> Result<(), BluetoothError> {
        self.device(device)?
            .set_trusted(trusted)
            .await
            .map_err(|e| device_error(device, e))
    }

    async fn remove_device(&self, device: Address) -> Result<(), BluetoothError> {
        self.adapter
            .remove_device(to_bluer(device))
            .await
            .map_err(|e| device_error(device, e))
    }

    async fn disconnect_device(&self, device: Address) -> Result<(), BluetoothError> {
        let remote = self
            .adapter
            .device(to_bluer(device))
            .map_err(|e| device_error(device, e))?;
        remote
            .disconnect()
            .await
            .map_err(|e| device_error(device, e))
    }

    /// Watches `org.bluez`'s owner with a zbus connection of its own: bluer has no signal for
    /// bluetoothd leaving. bluer's `Session` is a connection to the bus, not to bluetoothd, and
    /// its signal matches name `org.bluez` (which the bus daemon resolves to whoever owns it
    /// now), so the session and adapter handles stay valid across a restart; only the
    /// registrations are lost, and registering again through the same session restores them.
    async fn service_events(&self) -> Result<mpsc::Receiver<ServiceEvent>, BluetoothError> {
        let connection = zbus::Connection::system()
            .await
            .map_err(|e| BluetoothError::ServiceUnavailable(e.to_string()))?;
        let bus = zbus::fdo::DBusProxy::new(&connection)
            .await
            .map_err(zbus_error)?;
        // Subscribe before asking who owns the name, so no change slips between the two.
        let changes = bus
            .receive_name_owner_changed_with_args(&[(0, BLUEZ_BUS_NAME)])
            .await
            .map_err(zbus_error)?;
        let name = zbus::names::BusName::try_from(BLUEZ_BUS_NAME).map_err(zbus_error)?;
        let owned = bus.name_has_owner(name).await.map_err(zbus_error)?;
        let (tx, rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        if !owned {
            // Cannot fail: the channel is new and empty.
            let _ = tx.try_send(ServiceEvent::Vanished);
        }
        let task = tokio::spawn(watch_service(connection, changes, tx));
        let mut registrations = self.registrations();
        registrations.event_tasks.retain(|t| !t.is_finished());
        registrations.event_tasks.push(task.abort_handle());
        Ok(rx)
    }
}

/// Turns `org.bluez` owner changes into [`ServiceEvent`]s until the receiver is dropped. A
/// hand-over from one owner straight to another (no gap) is reported as both.
async fn watch_service(
    // Kept so the subscription lives as long as the task.
    _connection: zbus::Connection,
    mut changes: zbus::fdo::NameOwnerChangedStream,
    tx: mpsc::Sender<ServiceEvent>,
) {
    loop {
        let change = tokio::select! {
            () = tx.closed() => return,
            change = changes.next() => change,
        };
        let Some(change) = change else {
            tracing::warn!("lost the system bus connection watching bluetoothd");
            return;
        };
        let Ok(args) = change.args() else { continue };
        let events: &[ServiceEvent] = match (args.old_owner.is_some(), args.new_owner.is_some()) {
            (true, false) => &[ServiceEvent::Vanished],
            (false, true) => &[ServiceEvent::Appeared],
            (true, true) => &[ServiceEvent::Vanished, ServiceEvent::Appeared],
            (false, false) => &[],
        };
        for event in events {
            match event {
                ServiceEvent::Vanished => tracing::warn!("bluetoothd left the system bus"),
                ServiceEvent::Appeared => tracing::info!("bluetoothd is on the system bus"),
            }
            if tx.send(*event).await.is_err() {
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Adapter helpers

/// Cancels BlueZ's pending connection attempt to `device` after [`CONNECT_TIMEOUT`]:
/// Device1.Disconnect answers the pending ConnectProfile and stops the LE attempt, so the next
/// try pages again. A connected device is left alone (something else uses the link).
async fn cancel_pending_connect(device: &bluer::Device) {
    if device.is_connected().await.unwrap_or(true) {
        return;
    }
    match tokio::time::timeout(Duration::from_secs(5), device.disconnect()).await {
        Ok(Ok(())) => tracing::debug!(device = %device.address(), "pending connection cancelled"),
        Ok(Err(e)) => {
            tracing::debug!(device = %device.address(), error = %e, "cancelling the pending connection failed")
        }
        Err(_elapsed) => {
            tracing::debug!(device = %device.address(), "cancelling the pending connection timed out")
        }
    }
}

/// Picks the adapter to use among those bluetoothd reports.
fn choose_adapter(names: &[String], wanted: Option<&str>) -> Result<String, BluetoothError> {
    match wanted {
        Some(name) if names.iter().any(|n| n == name) => Ok(name.to_owned()),
        Some(name) => Err(BluetoothError::NoAdapter(Some(name.to_owned()))),
        // bluer's own rule for the default adapter.
        None if names.iter().any(|n| n == "hci0") => Ok("hci0".to_owned()),
        None => names
            .iter()
            .min()
            .cloned()
            .ok_or(BluetoothError::NoAdapter(None)),
    }
}

/// Bits 2..=12 of a class of device: the major and minor device class.
const DEVICE_CLASS_MASK: u32 = 0x00_1FFC;
/// Bits 13..=23: the major service classes. BlueZ adds some itself for registered services.
const SERVICE_CLASS_MASK: u32 = 0xFF_E000;

/// What to tell the user when the adapter's class of device is not the configured one, or
/// `None` when it matches (same device class, every configured service bit present).
///
/// BlueZ's Adapter1 `Class` is read-only on D-Bus; bluetoothd takes it from main.conf.
fn class_advice(current: u32, wanted: u32) -> Option<String> {
    let device_differs = current & DEVICE_CLASS_MASK != wanted & DEVICE_CLASS_MASK;
    let services_missing = wanted & SERVICE_CLASS_MASK & !current != 0;
    (device_differs || services_missing).then(|| {
        format!(
            "the adapter's class of device is 0x{current:06x}, not the configured \
             0x{wanted:06x}; bluetoothd sets it from /etc/bluetooth/main.conf: put the line \
             `Class = 0x{wanted:06x}` in its [General] section and restart bluetoothd \
             (systemctl restart bluetooth)"
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Devices

async fn read_device_info(
    adapter: &bluer::Adapter,
    address: bluer::Address,
) -> bluer::Result<DeviceInfo> {
    let device = adapter.device(address)?;
    Ok(DeviceInfo {
        address: from_bluer(address),
        name: device.name().await?,
        paired: device.is_paired().await?,
        trusted: device.is_trusted().await?,
        connected: device.is_connected().await?,
    })
}

type DeviceChanges = Pin<Box<dyn Stream<Item = (bluer::Address, bluer::DeviceEvent)> + Send>>;

/// Merges adapter events (devices added and removed) with every device's property changes
/// into `tx`, until the receiver is dropped or the adapter disappears.
async fn run_device_events(
    adapter: bluer::Adapter,
    mut adapter_events: Pin<Box<dyn Stream<Item = AdapterEvent> + Send>>,
    tx: mpsc::Sender<DeviceEvent>,
) {
    let mut known: HashMap<bluer::Address, DeviceInfo> = HashMap::new();
    let mut changes: SelectAll<DeviceChanges> = SelectAll::new();

    match adapter.device_addresses().await {
        Ok(addresses) => {
            for address in addresses {
                if !track_device(&adapter, address, &mut known, &mut changes, &tx).await {
                    return;
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list known Bluetooth devices"),
    }

    loop {
        tokio::select! {
            () = tx.closed() => return,
            event = adapter_events.next() => match event {
                None => {
                    tracing::info!(adapter = adapter.name(), "Bluetooth adapter went away");
                    return;
                }
                Some(AdapterEvent::DeviceAdded(address)) => {
                    // BlueZ also reports interfaces added to an existing device this way.
                    if !known.contains_key(&address)
                        && !track_device(&adapter, address, &mut known, &mut changes, &tx).await
                    {
                        return;
                    }
                }
                Some(AdapterEvent::DeviceRemoved(address)) => {
                    // Also sent when one interface of a device goes away (e.g. MediaControl1
                    // on disconnect); only a device that is really gone counts.
                    if known.contains_key(&address) && !device_exists(&adapter, address).await {
                        known.remove(&address);
                        if tx.send(DeviceEvent::Removed(from_bluer(address))).await.is_err() {
                            return;
                        }
                    }
                }
                Some(_) => {}
            },
            Some((address, bluer::DeviceEvent::PropertyChanged(property))) = changes.next(),
                if !changes.is_empty() =>
            {
                if let Some(info) = known.get_mut(&address)
                    && apply_property(info, property)
                    && tx.send(DeviceEvent::Changed(info.clone())).await.is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Reads a new device, watches its properties and reports it. Returns `false` when the
/// receiver is gone.
async fn track_device(
    adapter: &bluer::Adapter,
    address: bluer::Address,
    known: &mut HashMap<bluer::Address, DeviceInfo>,
    changes: &mut SelectAll<DeviceChanges>,
    tx: &mpsc::Sender<DeviceEvent>,
) -> bool {
    let watched = async {
        let events = adapter.device(address)?.events().await?;
        let info = read_device_info(adapter, address).await?;
        bluer::Result::Ok((events, info))
    };
    match watched.await {
        Ok((events, info)) => {
            changes.push(Box::pin(events.map(move |event| (address, event))));
            known.insert(address, info.clone());
            tx.send(DeviceEvent::Added(info)).await.is_ok()
        }
        Err(e) => {
            tracing::debug!(device = %address, error = %e, "cannot watch Bluetooth device");
            true
        }
    }
}

async fn device_exists(adapter: &bluer::Adapter, address: bluer::Address) -> bool {
    match adapter.device(address) {
        Ok(device) => device.remote_address().await.is_ok(),
        Err(_) => false,
    }
}

/// Applies a property change to the cached device state; `true` if something the daemon
/// cares about changed.
fn apply_property(info: &mut DeviceInfo, property: DeviceProperty) -> bool {
    fn set<T: PartialEq>(field: &mut T, value: T) -> bool {
        let changed = *field != value;
        *field = value;
        changed
    }
    match property {
        DeviceProperty::Paired(paired) => set(&mut info.paired, paired),
        DeviceProperty::Trusted(trusted) => set(&mut info.trusted, trusted),
        DeviceProperty::Connected(connected) => set(&mut info.connected, connected),
        DeviceProperty::Name(name) => set(&mut info.name, Some(name)),
        // The alias is ours (what the user renamed the phone to); the name is what the phone
        // says. A phone that has never told its name has only the alias BlueZ made up from
        // the address, which is no name at all.
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Pairing agent

/// A bluer agent that forwards every request for our adapter (`adapter`, e.g. `hci0`) to the
/// daemon over `tx` and awaits the answer.
///
/// The default agent serves every adapter on the machine; a request for another adapter is
/// refused here rather than decided by codriver's policy, which is only about the car's own.
fn pairing_agent(tx: mpsc::Sender<AgentRequest>, adapter: String) -> Agent {
    let adapter: Arc<str> = adapter.into();
    let request_confirmation: RequestConfirmationFn = forward(
        &tx,
        &adapter,
        |r: &bluer::agent::RequestConfirmation| &r.adapter,
        |r, reply| AgentRequest::Confirm {
            device: from_bluer(r.device),
            passkey: r.passkey,
            reply,
        },
    );
    let request_pin_code: RequestPinCodeFn = forward(
        &tx,
        &adapter,
        |r: &bluer::agent::RequestPinCode| &r.adapter,
        |r, reply| AgentRequest::PinCode {
            device: from_bluer(r.device),
            reply,
        },
    );
    let request_passkey: RequestPasskeyFn = forward(
        &tx,
        &adapter,
        |r: &bluer::agent::RequestPasskey| &r.adapter,
        |r, reply| AgentRequest::Passkey {
            device: from_bluer(r.device),
            reply,
        },
    );
    let request_authorization: RequestAuthorizationFn = forward(
        &tx,
        &adapter,
        |r: &bluer::agent::RequestAuthorization| &r.adapter,
        |r, reply| AgentRequest::Authorize {
            device: from_bluer(r.device),
            reply,
        },
    );
    let authorize_service: AuthorizeServiceFn = forward(
        &tx,
        &adapter,
        |r: &bluer::agent::AuthorizeService| &r.adapter,
        |r, reply| AgentRequest::AuthorizeService {
            device: from_bluer(r.device),
            uuid: r.service.to_string(),
            reply,
        },
    );
    // Display-passkey answers nothing: it announces, and reports BlueZ's cancel.
    let display_passkey: DisplayPasskeyFn = Box::new(move |req| {
        let tx = tx.clone();
        let ours = is_our_adapter(&adapter, &req.adapter);
        Box::pin(async move {
            if !ours {
                return Err(ReqError::Rejected);
            }
            // BlueZ calls again for every digit typed on the phone; announce only once.
            if req.entered == 0 {
                let request = AgentRequest::DisplayPasskey {
                    device: from_bluer(req.device),
                    passkey: req.passkey,
                };
                if tx.send_timeout(request, AGENT_TIMEOUT).await.is_err() {
                    return Err(ReqError::Canceled);
                }
            }
            // `cancel` fires when BlueZ says the passkey need no longer be shown; it errors
            // when the next request replaces it.
            let cancel = req.cancel;
            tokio::spawn(async move {
                if cancel.await.is_ok() {
                    let _ = tx.send_timeout(AgentRequest::Cancel, AGENT_TIMEOUT).await;
                }
            });
            Ok(())
        })
    });
    Agent {
        request_default: true,
        request_pin_code: Some(request_pin_code),
        display_pin_code: None,
        request_passkey: Some(request_passkey),
        display_passkey: Some(display_passkey),
        request_confirmation: Some(request_confirmation),
        request_authorization: Some(request_authorization),
        authorize_service: Some(authorize_service),
        ..Default::default()
    }
}

/// One agent callback: refuses a request for another adapter, otherwise turns bluer's request
/// into an [`AgentRequest`] with `make` and waits for the daemon's answer (see [`ask`]).
#[allow(clippy::type_complexity)] // bluer's callback type, spelled out.
fn forward<R, T>(
    tx: &mpsc::Sender<AgentRequest>,
    adapter: &Arc<str>,
    adapter_of: fn(&R) -> &String,
    make: fn(R, AgentReply<T>) -> AgentRequest,
) -> Box<dyn Fn(R) -> Pin<Box<dyn Future<Output = ReqResult<T>> + Send>> + Send + Sync>
where
    R: Send + 'static,
    T: Send + 'static,
{
    let tx = tx.clone();
    let adapter = adapter.clone();
    Box::new(move |req| {
        let tx = tx.clone();
        let ours = is_our_adapter(&adapter, adapter_of(&req));
        Box::pin(async move {
            if !ours {
                return Err(ReqError::Rejected);
            }
            ask(&tx, AGENT_TIMEOUT, |reply| make(req, reply)).await
        })
    })
}

/// Whether a request is for our adapter; the default agent also hears the others.
fn is_our_adapter(ours: &str, requested: &str) -> bool {
    let ok = requested == ours;
    if !ok {
        tracing::info!(requested, "agent request for another adapter refused");
    }
    ok
}

/// Sends one request to the daemon and waits for its answer.
///
/// Rejected or unanswered (reply dropped) → `Rejected`; no answer within `timeout` →
/// `Canceled`. If the request was delivered but is not answered — timeout, or BlueZ cancelled
/// it and bluer dropped this future — the daemon gets an [`AgentRequest::Cancel`] so it stops
/// prompting.
async fn ask<T>(
    tx: &mpsc::Sender<AgentRequest>,
    timeout: Duration,
    request: impl FnOnce(AgentReply<T>) -> AgentRequest,
) -> ReqResult<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    let (reply, answer) = AgentReply::new();
    if tokio::time::timeout_at(deadline, tx.send(request(reply)))
        .await
        .is_err()
    {
        return Err(ReqError::Canceled);
    }
    let mut guard = CancelOnDrop { tx, armed: true };
    let result = match tokio::time::timeout_at(deadline, answer).await {
        Err(_elapsed) => return Err(ReqError::Canceled),
        Ok(Err(_reply_dropped)) => Err(ReqError::Rejected),
        Ok(Ok(Err(AgentRejection::Rejected))) => Err(ReqError::Rejected),
        Ok(Ok(Err(AgentRejection::Canceled))) => Err(ReqError::Canceled),
        Ok(Ok(Ok(value))) => Ok(value),
    };
    guard.armed = false;
    result
}

/// Tells the daemon a delivered request is void unless disarmed.
struct CancelOnDrop<'a> {
    tx: &'a mpsc::Sender<AgentRequest>,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: a full channel means the daemon is far behind anyway.
            let _ = self.tx.try_send(AgentRequest::Cancel);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Profiles

/// The RegisterProfile options for `spec`.
fn bluer_profile(spec: &ProfileSpec) -> Result<Profile, BluetoothError> {
    let (name, channel) = match spec.kind {
        // BlueZ knows 0x111E: SDP record with SupportedFeatures, remote UUID 0x111F (the
        // phone's AG), RFCOMM channel 7 and the name "Hands-Free unit" by default.
        ProfileKind::HandsFree => (None, None),
        // A custom UUID gets a generic SDP record, but an RFCOMM listener only when a channel
        // is given: 0 asks BlueZ to pick a free one.
        ProfileKind::Companion => (Some("codriver companion".to_owned()), Some(0)),
    };
    Ok(Profile {
        uuid: parse_uuid(spec.kind.uuid())?,
        name,
        channel,
        require_authentication: Some(true),
        require_authorization: Some(false),
        // codriver's link manager decides when to connect which phone (priority, backoff,
        // "stop reconnecting"); bluetoothd connecting on its own would bypass it.
        auto_connect: Some(false),
        version: spec.version,
        features: spec.features,
        ..Default::default()
    })
}

/// The UUID BlueZ's Device1.ConnectProfile expects: the *remote* side's service class, which
/// for the HF role is the phone's Audio Gateway.
fn remote_uuid(kind: ProfileKind) -> &'static str {
    match kind {
        ProfileKind::HandsFree => HFP_AG_UUID,
        ProfileKind::Companion => COMPANION_UUID,
    }
}

/// Accepts the profile's connections and forwards them until the receiver is dropped (which
/// drops the handle and so unregisters the profile).
async fn serve_profile(
    kind: ProfileKind,
    mut handle: ProfileHandle,
    tx: mpsc::Sender<ProfileConnection>,
) {
    loop {
        let request = tokio::select! {
            () = tx.closed() => return,
            request = handle.next() => request,
        };
        let Some(request) = request else {
            tracing::warn!(%kind, "bluetoothd released the profile (did it restart?)");
            return;
        };
        let device = from_bluer(request.device());
        match request.accept() {
            Ok(stream) => {
                tracing::debug!(%kind, %device, "profile connection");
                let connection = ProfileConnection {
                    device,
                    kind,
                    transport: Transport::Rfcomm,
                    stream: Box::new(stream),
                };
                if tx.send(connection).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(%kind, %device, error = %e, "cannot accept profile connection")
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Companion over LE: L2CAP CoC listener, GATT service with the PSM, advertisement

/// Pending LE channels the kernel queues before we accept them.
const COMPANION_LE_BACKLOG: u32 = 4;

/// A listening LE L2CAP CoC socket on `own` (LE public), dynamic PSM, encryption required.
fn companion_listener(own: bluer::Address) -> std::io::Result<l2cap::StreamListener> {
    let socket = l2cap::Socket::<l2cap::Stream>::new_stream()?;
    socket.set_security(l2cap::Security {
        level: SecurityLevel::Medium,
        key_size: 0,
    })?;
    socket.bind(l2cap::SocketAddr::new(own, AddressType::LePublic, 0))?;
    socket.listen(COMPANION_LE_BACKLOG)
}

/// The companion GATT service: the PSM, `u16` little-endian, readable by anyone (it is no
/// secret: the channel itself needs an encrypted, bonded link), under codriver's UUID and
/// Apple's.
fn companion_gatt_application(psm: u16) -> Result<Application, BluetoothError> {
    let characteristic = |uuid: &str| -> Result<Characteristic, BluetoothError> {
        Ok(Characteristic {
            uuid: parse_uuid(uuid)?,
            read: Some(CharacteristicRead {
                read: true,
                fun: Box::new(move |_request| {
                    Box::pin(async move { Ok(psm.to_le_bytes().to_vec()) })
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
    };
    Ok(Application {
        services: vec![Service {
            uuid: parse_uuid(COMPANION_GATT_SERVICE_UUID)?,
            primary: true,
            characteristics: vec![
                characteristic(COMPANION_PSM_CHARACTERISTIC_UUID)?,
                characteristic(APPLE_L2CAP_PSM_CHARACTERISTIC_UUID)?,
            ],
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// Connectable advertising of the companion service UUID. The flags follow the adapter's
/// discoverable setting (general discoverable only inside the pairing window); a 128-bit UUID
/// leaves no room for the name, which phones read over GATT anyway.
fn companion_advertisement() -> Result<Advertisement, BluetoothError> {
    Ok(Advertisement {
        advertisement_type: bluer::adv::Type::Peripheral,
        service_uuids: [parse_uuid(COMPANION_GATT_SERVICE_UUID)?]
            .into_iter()
            .collect(),
        ..Default::default()
    })
}

/// Accepts companion LE channels and forwards them until the receiver is dropped.
async fn serve_companion_le(listener: l2cap::StreamListener, tx: mpsc::Sender<ProfileConnection>) {
    loop {
        let accepted = tokio::select! {
            () = tx.closed() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let device = from_bluer(peer.addr);
                tracing::debug!(%device, address_type = ?peer.addr_type, "companion LE channel");
                let connection = ProfileConnection {
                    device,
                    kind: ProfileKind::Companion,
                    transport: Transport::LeL2cap,
                    stream: Box::new(stream),
                };
                if tx.send(connection).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "companion LE accept failed");
                // Out of file descriptors and the like: do not spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn is_already_registered(e: &bluer::Error) -> bool {
    match e.kind {
        ErrorKind::AlreadyExists => true,
        // BlueZ ≥ 5.60: org.bluez.Error.NotPermitted "UUID already registered" (older versions
        // accept a second registration silently).
        ErrorKind::NotPermitted => e
            .message
            .to_ascii_lowercase()
            .contains("already registered"),
        _ => false,
    }
}

/// Guesses which program holds a profile's UUID from the names of running processes (as in
/// `/proc/<pid>/comm`, at most 15 characters), and what the user can do about it.
fn guess_profile_owner(kind: ProfileKind, processes: &[String]) -> (String, String) {
    let running = |name: &str| processes.iter().any(|p| p == name);
    let running_prefix = |prefix: &str| processes.iter().any(|p| p.starts_with(prefix));

    if running("codriverd") {
        return (
            "another codriverd".to_owned(),
            "only one codriverd can run at a time: stop the other one (systemctl stop codriverd, \
             or end the one started by hand)"
                .to_owned(),
        );
    }
    if kind == ProfileKind::Companion {
        return (
            "an unknown program".to_owned(),
            "the companion UUID is codriver's own; restart bluetoothd (systemctl restart \
             bluetooth) to drop registrations left by a program that exited"
                .to_owned(),
        );
    }
    if running("ofonod") {
        return (
            "oFono".to_owned(),
            "oFono registers the hands-free role for its own telephony stack: stop and disable it \
             (systemctl disable --now ofono), then restart codriverd"
                .to_owned(),
        );
    }
    if running("bluealsa") || running("bluealsad") {
        return (
            "BlueALSA".to_owned(),
            "start bluealsa without `-p hfp-hf` and `-p hsp-hs` (for example only `-p a2dp-sink`) \
             by editing its service (systemctl edit --full bluealsa), restart it, then restart \
             codriverd"
                .to_owned(),
        );
    }
    if running("wireplumber") {
        return (
            "WirePlumber (PipeWire's Bluetooth monitor)".to_owned(),
            "drop the hands-free roles from WirePlumber's Bluetooth monitor: in a file in \
             /etc/wireplumber/wireplumber.conf.d/ (or ~/.config/wireplumber/wireplumber.conf.d/) \
             set `monitor.bluez.properties = { bluez5.roles = [ a2dp_sink a2dp_source bap_sink \
             bap_source hfp_ag hsp_ag ] }`, i.e. without hfp_hf and hsp_hs (WirePlumber 0.4: \
             bluez_monitor.properties[\"bluez5.roles\"] in bluetooth.lua.d), restart WirePlumber \
             (systemctl --user restart wireplumber), then restart codriverd"
                .to_owned(),
        );
    }
    if running_prefix("pipewire") {
        return (
            "PipeWire".to_owned(),
            "remove hfp_hf and hsp_hs from bluez5.roles in PipeWire's Bluetooth configuration \
             (media-session.d/bluez-monitor.conf), restart PipeWire, then restart codriverd"
                .to_owned(),
        );
    }
    if running("pulseaudio") {
        return (
            "PulseAudio".to_owned(),
            "load module-bluetooth-discover with `headset=ofono` or without the native \
             hands-free role (enable_native_hfp_hf=false) in /etc/pulse/default.pa, restart \
             PulseAudio, then restart codriverd"
                .to_owned(),
        );
    }
    (
        "a program that is not running any more, or one codriver does not know".to_owned(),
        "look for Bluetooth audio daemons (pipewire, wireplumber, bluealsa, ofono, pulseaudio) \
         and disable their hands-free (HFP HF) role; restarting bluetoothd (systemctl restart \
         bluetooth) drops registrations of programs that exited"
            .to_owned(),
    )
}

/// Names of running processes other than this one, from `/proc/*/comm`. Blocking.
fn running_process_names() -> Vec<String> {
    let own = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.bytes().all(|b| b.is_ascii_digit()) && name != own.as_str()
        })
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("comm")).ok())
        .map(|comm| comm.trim_end().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Errors and conversions

fn to_bluer(address: Address) -> bluer::Address {
    bluer::Address(address.octets())
}

fn from_bluer(address: bluer::Address) -> Address {
    // Both store the bytes as written, most significant first.
    Address::new(address.0)
}

fn parse_uuid(uuid: &str) -> Result<bluer::Uuid, BluetoothError> {
    bluer::Uuid::parse_str(uuid).map_err(|e| BluetoothError::Backend(Box::new(e)))
}

/// D-Bus errors that mean bluetoothd (or the bus) is not there.
fn is_service_unavailable(e: &bluer::Error) -> bool {
    match &e.kind {
        ErrorKind::Internal(InternalErrorKind::DBusConnectionLost) => true,
        ErrorKind::Internal(InternalErrorKind::DBus(name)) => matches!(
            name.as_str(),
            "org.freedesktop.DBus.Error.ServiceUnknown"
                | "org.freedesktop.DBus.Error.NameHasNoOwner"
                | "org.freedesktop.DBus.Error.NoServer"
                | "org.freedesktop.DBus.Error.NoReply"
                | "org.freedesktop.DBus.Error.Disconnected"
                | "org.freedesktop.DBus.Error.FileNotFound"
                | "org.freedesktop.DBus.Error.Spawn.ServiceNotFound"
        ),
        _ => false,
    }
}

fn is_not_found(e: &bluer::Error) -> bool {
    matches!(e.kind, ErrorKind::NotFound | ErrorKind::DoesNotExist)
}

fn backend_error(e: bluer::Error) -> BluetoothError {
    if is_service_unavailable(&e) {
        BluetoothError::ServiceUnavailable(e.to_string())
    } else {
        BluetoothError::Backend(Box::new(e))
    }
}

fn zbus_error(e: impl std::error::Error + Send + Sync + 'static) -> BluetoothError {
    BluetoothError::Backend(Box::new(e))
}

fn device_error(device: Address, e: bluer::Error) -> BluetoothError {
    if is_not_found(&e) {
        BluetoothError::UnknownDevice(device)
    } else {
        backend_error(e)
    }
}

fn connect_error(device: Address, kind: ProfileKind, e: bluer::Error) -> BluetoothError {
    if is_service_unavailable(&e) {
        return BluetoothError::ServiceUnavailable(e.to_string());
    }
    if matches!(e.kind, ErrorKind::NotFound) {
        return BluetoothError::UnknownDevice(device);
    }
    let reason = if e.message.is_empty() {
        e.kind.to_string()
    } else {
        e.message.clone()
    };
    BluetoothError::ConnectFailed {
        device,
        kind,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bluer_error(kind: ErrorKind, message: &str) -> bluer::Error {
        bluer::Error {
            kind,
            message: message.to_owned(),
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn owner_guess_prefers_ofono_then_bluealsa_then_wireplumber() {
        let (owner, how) = guess_profile_owner(
            ProfileKind::HandsFree,
            &names(&["systemd", "pipewire", "ofonod"]),
        );
        assert_eq!(owner, "oFono");
        assert!(how.contains("systemctl disable --now ofono"), "{how}");

        let (owner, how) = guess_profile_owner(
            ProfileKind::HandsFree,
            &names(&["bluealsad", "wireplumber", "pipewire"]),
        );
        assert_eq!(owner, "BlueALSA");
        assert!(how.contains("-p hfp-hf"), "{how}");

        let (owner, how) = guess_profile_owner(
            ProfileKind::HandsFree,
            &names(&["pipewire", "wireplumber", "pipewire-pulse"]),
        );
        assert!(owner.starts_with("WirePlumber"), "{owner}");
        assert!(
            how.contains("bluez5.roles") && how.contains("without hfp_hf and hsp_hs"),
            "{how}"
        );
    }

    #[test]
    fn owner_guess_covers_media_session_pulseaudio_and_unknown() {
        // comm is cut at 15 characters.
        let (owner, _) = guess_profile_owner(ProfileKind::HandsFree, &names(&["pipewire-media-"]));
        assert_eq!(owner, "PipeWire");
        let (owner, _) = guess_profile_owner(ProfileKind::HandsFree, &names(&["pulseaudio"]));
        assert_eq!(owner, "PulseAudio");
        let (owner, how) = guess_profile_owner(ProfileKind::HandsFree, &names(&["bash"]));
        assert!(owner.contains("not running any more"), "{owner}");
        assert!(how.contains("systemctl restart bluetooth"), "{how}");
    }

    #[test]
    fn owner_guess_spots_a_second_codriverd_for_any_profile() {
        for kind in [ProfileKind::HandsFree, ProfileKind::Companion] {
            let (owner, _) = guess_profile_owner(kind, &names(&["codriverd", "wireplumber"]));
            assert_eq!(owner, "another codriverd");
        }
        let (owner, _) = guess_profile_owner(ProfileKind::Companion, &names(&["wireplumber"]));
        assert_eq!(owner, "an unknown program");
    }

    #[test]
    fn already_registered_is_recognised_in_both_bluez_spellings() {
        assert!(is_already_registered(&bluer_error(
            ErrorKind::NotPermitted,
            "UUID already registered"
        )));
        assert!(is_already_registered(&bluer_error(
            ErrorKind::AlreadyExists,
            ""
        )));
        assert!(!is_already_registered(&bluer_error(
            ErrorKind::NotPermitted,
            "rfkill"
        )));
        assert!(!is_already_registered(&bluer_error(
            ErrorKind::Failed,
            "already registered"
        )));
    }

    #[test]
    fn missing_bluetoothd_maps_to_service_unavailable() {
        let e = bluer_error(
            ErrorKind::Internal(InternalErrorKind::DBus(
                "org.freedesktop.DBus.Error.ServiceUnknown".to_owned(),
            )),
            "The name org.bluez was not provided by any .service files",
        );
        assert!(
            matches!(backend_error(e), BluetoothError::ServiceUnavailable(m) if m.contains("org.bluez"))
        );
        let e = bluer_error(ErrorKind::Failed, "Blocked through rfkill");
        assert!(matches!(backend_error(e), BluetoothError::Backend(_)));
    }

    #[test]
    fn connect_errors_carry_bluez_reason() {
        let device = Address::new([0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF]);
        let e = bluer_error(ErrorKind::Failed, "br-connection-page-timeout");
        match connect_error(device, ProfileKind::HandsFree, e) {
            BluetoothError::ConnectFailed {
                reason,
                kind,
                device: d,
            } => {
                assert_eq!(reason, "br-connection-page-timeout");
                assert_eq!(kind, ProfileKind::HandsFree);
                assert_eq!(d, device);
            }
            other => panic!("unexpected {other:?}"),
        }
        let e = bluer_error(ErrorKind::NotFound, "");
        assert!(matches!(
            connect_error(device, ProfileKind::Companion, e),
            BluetoothError::UnknownDevice(d) if d == device
        ));
        let e = bluer_error(ErrorKind::DoesNotExist, "Does Not Exist");
        assert!(matches!(
            device_error(device, e),
            BluetoothError::UnknownDevice(_)
        ));
    }

    #[test]
    fn adapter_choice_follows_bluer_default_rule() {
        let list = names(&["hci1", "hci0"]);
        assert_eq!(choose_adapter(&list, None).unwrap(), "hci0");
        assert_eq!(
            choose_adapter(&names(&["hci2", "hci1"]), None).unwrap(),
            "hci1"
        );
        assert_eq!(choose_adapter(&list, Some("hci1")).unwrap(), "hci1");
        assert!(matches!(
            choose_adapter(&list, Some("hci7")),
            Err(BluetoothError::NoAdapter(Some(n))) if n == "hci7"
        ));
        assert!(matches!(
            choose_adapter(&[], None),
            Err(BluetoothError::NoAdapter(None))
        ));
    }

    #[test]
    fn class_advice_names_the_main_conf_line() {
        // Car audio hands-free with audio + telephony service bits.
        let wanted = 0x24_0408;
        assert_eq!(class_advice(wanted, wanted), None);
        // BlueZ adds service bits of its own; that is fine.
        assert_eq!(class_advice(wanted | 0x08_0000, wanted), None);
        let advice = class_advice(0x00_010c, wanted).unwrap();
        assert!(advice.contains("`Class = 0x240408`"), "{advice}");
        assert!(advice.contains("/etc/bluetooth/main.conf"), "{advice}");
        // Right device class, a configured service bit missing.
        assert!(class_advice(0x20_0408, wanted).is_some());
    }

    #[test]
    fn property_changes_update_cached_state() {
        let mut info = DeviceInfo {
            address: Address::new([1, 2, 3, 4, 5, 6]),
            name: None,
            paired: false,
            trusted: false,
            connected: false,
        };
        assert!(apply_property(&mut info, DeviceProperty::Paired(true)));
        assert!(!apply_property(&mut info, DeviceProperty::Paired(true)));
        assert!(apply_property(
            &mut info,
            DeviceProperty::Name("Pixel".to_owned())
        ));
        assert!(apply_property(&mut info, DeviceProperty::Connected(true)));
        assert!(apply_property(&mut info, DeviceProperty::Trusted(true)));
        assert!(!apply_property(&mut info, DeviceProperty::Rssi(-40)));
        assert!(!apply_property(
            &mut info,
            DeviceProperty::Alias("car".to_owned())
        ));
        assert_eq!(info.name.as_deref(), Some("Pixel"));
        assert!(info.paired && info.connected && info.trusted);
    }

    #[test]
    fn profiles_use_bluez_defaults_for_hf_and_an_auto_channel_for_companion() {
        let hf = bluer_profile(&ProfileSpec {
            kind: ProfileKind::HandsFree,
            features: Some(0x01bf),
            version: Some(0x0108),
        })
        .unwrap();
        assert_eq!(hf.uuid.to_string(), crate::bluetooth::HFP_HF_UUID);
        assert_eq!((hf.channel, hf.role), (None, None));
        assert_eq!((hf.features, hf.version), (Some(0x01bf), Some(0x0108)));
        assert_eq!(hf.require_authentication, Some(true));
        assert_eq!(hf.require_authorization, Some(false));
        let companion = bluer_profile(&ProfileSpec {
            kind: ProfileKind::Companion,
            features: None,
            version: None,
        })
        .unwrap();
        assert_eq!(companion.uuid.to_string(), COMPANION_UUID);
        assert_eq!(companion.channel, Some(0));
        assert_eq!(remote_uuid(ProfileKind::HandsFree), HFP_AG_UUID);
    }

    #[test]
    fn addresses_convert_both_ways() {
        let ours = Address::new([0xAA, 0xBB, 0xCC, 0x0D, 0xEE, 0xFF]);
        let theirs = to_bluer(ours);
        assert_eq!(theirs.to_string(), ours.to_string());
        assert_eq!(from_bluer(theirs), ours);
    }

    #[tokio::test(start_paused = true)]
    async fn agent_answers_are_mapped() {
        let (tx, mut rx) = mpsc::channel(4);
        let daemon = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(request) = rx.recv().await {
                match request {
                    AgentRequest::Confirm {
                        passkey: 1, reply, ..
                    } => reply.accept(()),
                    AgentRequest::Confirm {
                        passkey: 2, reply, ..
                    } => reply.reject(),
                    AgentRequest::Confirm {
                        passkey: 3, reply, ..
                    } => drop(reply),
                    AgentRequest::PinCode { reply, .. } => reply.accept("0000".to_owned()),
                    AgentRequest::Cancel => seen.push("cancel"),
                    other => panic!("unexpected {other:?}"),
                }
            }
            seen
        });
        let device = Address::new([1, 2, 3, 4, 5, 6]);
        let confirm = |passkey| {
            move |reply| AgentRequest::Confirm {
                device,
                passkey,
                reply,
            }
        };
        assert_eq!(ask(&tx, AGENT_TIMEOUT, confirm(1)).await, Ok(()));
        assert_eq!(
            ask(&tx, AGENT_TIMEOUT, confirm(2)).await,
            Err(ReqError::Rejected)
        );
        assert_eq!(
            ask(&tx, AGENT_TIMEOUT, confirm(3)).await,
            Err(ReqError::Rejected)
        );
        let pin = ask(&tx, AGENT_TIMEOUT, |reply| AgentRequest::PinCode {
            device,
            reply,
        })
        .await;
        assert_eq!(pin.as_deref(), Ok("0000"));
        drop(tx);
        assert!(
            daemon.await.unwrap().is_empty(),
            "answered requests are not cancelled"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unanswered_agent_request_times_out_as_canceled_and_tells_the_daemon() {
        let (tx, mut rx) = mpsc::channel(4);
        let device = Address::new([1, 2, 3, 4, 5, 6]);
        let asking = ask(&tx, AGENT_TIMEOUT, |reply| AgentRequest::Authorize {
            device,
            reply,
        });
        let (result, first) = tokio::join!(asking, rx.recv());
        assert_eq!(result, Err(ReqError::Canceled));
        let Some(AgentRequest::Authorize { reply, .. }) = first else {
            panic!("{first:?}")
        };
        assert!(matches!(rx.recv().await, Some(AgentRequest::Cancel)));
        drop(reply);
    }

    #[tokio::test(start_paused = true)]
    async fn request_dropped_by_bluez_cancels_the_prompt() {
        let (tx, mut rx) = mpsc::channel(4);
        let device = Address::new([1, 2, 3, 4, 5, 6]);
        {
            let asking = ask(&tx, AGENT_TIMEOUT, |reply| AgentRequest::Passkey {
                device,
                reply,
            });
            tokio::pin!(asking);
            // Deliver the request, then drop the future as bluer does on Agent1.Cancel.
            tokio::select! {
                _ = &mut asking => panic!("answered without an answer"),
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        assert!(matches!(
            rx.recv().await,
            Some(AgentRequest::Passkey { .. })
        ));
        assert!(matches!(rx.recv().await, Some(AgentRequest::Cancel)));
    }
}
