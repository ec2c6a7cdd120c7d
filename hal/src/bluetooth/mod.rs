//! The Bluetooth host: adapter, pairing agent, devices and profiles.

use std::fmt;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};

use crate::Address;

/// Service class UUID of the Hands-Free unit (HFP, HF role), 0x111E.
pub const HFP_HF_UUID: &str = "0000111e-0000-1000-8000-00805f9b34fb";

/// Service class UUID of the Hands-Free Audio Gateway (the phone side), 0x111F.
pub const HFP_AG_UUID: &str = "0000111f-0000-1000-8000-00805f9b34fb";

/// UUID of codriver's companion protocol (voice and text messages from the phone app).
pub const COMPANION_UUID: &str = "c0d71e00-5a5e-4c61-9b1a-6f8b2a3e0001";

/// UUID of the companion GATT service, which the car advertises over LE and which holds the
/// PSM characteristic (docs/companion-protocol.md, section 2).
pub const COMPANION_GATT_SERVICE_UUID: &str = "c0d71e00-5a5e-4c61-9b1a-6f8b2a3e0002";

/// UUID of the companion service's read-only characteristic holding the LE L2CAP PSM of the
/// companion transport, as a `u16` little-endian.
pub const COMPANION_PSM_CHARACTERISTIC_UUID: &str = "c0d71e00-5a5e-4c61-9b1a-6f8b2a3e0003";

/// Apple's `CBUUIDL2CAPPSMCharacteristicString`: the same PSM under the UUID iOS apps know.
pub const APPLE_L2CAP_PSM_CHARACTERISTIC_UUID: &str = "abdd3056-28fa-441d-a470-55a75a52553a";

/// Capacity of every event channel a backend hands out. A slow consumer makes the backend
/// wait (or drop, where it cannot wait); nothing a phone does can grow memory without bound.
pub const EVENT_CHANNEL_CAPACITY: usize = 32;

/// Host-level Bluetooth operations, implemented over BlueZ (`linux` feature) and by the mock.
///
/// Object safe: the daemon holds an `Arc<dyn BluetoothHost>`.
#[async_trait]
pub trait BluetoothHost: Send + Sync {
    /// Powers the adapter on and applies its alias and class of device.
    async fn power_on(&self, settings: &AdapterSettings) -> Result<AdapterInfo, BluetoothError>;

    /// Makes the adapter discoverable and pairable (`true`), or neither (`false`).
    ///
    /// The daemon opens this "pairing window" only when the driver asks for it.
    async fn set_pairing_mode(&self, enabled: bool) -> Result<(), BluetoothError>;

    /// Devices the adapter knows: paired ones and ones seen recently.
    async fn devices(&self) -> Result<Vec<DeviceInfo>, BluetoothError>;

    /// A stream of device changes: added, changed (paired, connected, trusted, name), removed.
    async fn device_events(&self) -> Result<mpsc::Receiver<DeviceEvent>, BluetoothError>;

    /// Registers the pairing agent (as the default agent) and returns its requests.
    ///
    /// Every request carries a reply handle; dropping it unanswered rejects the request.
    async fn register_agent(&self) -> Result<mpsc::Receiver<AgentRequest>, BluetoothError>;

    /// Registers a profile (SDP record, RFCOMM/L2CAP listener) and returns its connections,
    /// both incoming and those [`connect_profile`](Self::connect_profile) made outward.
    async fn register_profile(
        &self,
        spec: ProfileSpec,
    ) -> Result<mpsc::Receiver<ProfileConnection>, BluetoothError>;

    /// Connects a registered profile outward to `device`; the stream arrives on that profile's
    /// connection receiver.
    async fn connect_profile(
        &self,
        device: Address,
        kind: ProfileKind,
    ) -> Result<(), BluetoothError>;

    /// Opens the companion protocol's LE transport: a listening LE L2CAP connection-oriented
    /// channel on a dynamic PSM that requires an encrypted link, and the GATT companion service
    /// whose PSM characteristic tells phones which PSM to open. Accepted channels arrive on the
    /// returned receiver as [`ProfileKind::Companion`] connections with
    /// [`Transport::LeL2cap`]; the caller decides which devices may use them.
    ///
    /// Calling it again replaces the previous listener (after a bluetoothd restart, whose
    /// GATT registration died with it). Phones find the car only while it advertises, see
    /// [`set_companion_advertising`](Self::set_companion_advertising).
    async fn companion_le_listen(
        &self,
    ) -> Result<mpsc::Receiver<ProfileConnection>, BluetoothError>;

    /// Starts (`true`) or stops LE advertising of the companion GATT service, connectable, so
    /// that phones without RFCOMM (iOS) can connect. Without a companion LE listener it does
    /// nothing.
    async fn set_companion_advertising(&self, enabled: bool) -> Result<(), BluetoothError>;

    /// Marks a device trusted (it may then connect without asking) or not.
    async fn set_trusted(&self, device: Address, trusted: bool) -> Result<(), BluetoothError>;

    /// Forgets a device: removes its bond and keys.
    async fn remove_device(&self, device: Address) -> Result<(), BluetoothError>;

    /// Disconnects every profile of `device` and its link; it stays paired and trusted.
    async fn disconnect_device(&self, device: Address) -> Result<(), BluetoothError>;

    /// A stream of bluetoothd's comings and goings on the bus.
    ///
    /// When bluetoothd exits (crash, `systemctl restart bluetooth`, upgrade) every
    /// registration made through this host dies with it: the agent, the profiles, and the
    /// device events go quiet or their receivers close. [`ServiceEvent::Vanished`] says so;
    /// [`ServiceEvent::Appeared`] says a (new) bluetoothd owns the bus name again, and the
    /// caller must then set the adapter up again, call [`register_agent`](Self::register_agent),
    /// [`register_profile`](Self::register_profile) and [`device_events`](Self::device_events)
    /// anew (replacing the receivers it holds) and reconnect its phones. The host itself stays
    /// usable across the restart. If bluetoothd is already gone when this is called, the first
    /// event is `Vanished`.
    async fn service_events(&self) -> Result<mpsc::Receiver<ServiceEvent>, BluetoothError>;
}

/// bluetoothd's presence on the bus, from [`BluetoothHost::service_events`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceEvent {
    /// bluetoothd left the bus: every registration (agent, profiles) is gone.
    Vanished,
    /// bluetoothd is (back) on the bus, without any of our registrations.
    Appeared,
}

/// What the adapter should look like to phones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSettings {
    /// BlueZ adapter name such as `hci0`; `None` for the default adapter.
    pub adapter: Option<String>,
    /// The name phones show for the car.
    pub alias: String,
    /// Class of device (service class, major and minor class), e.g. car audio hands-free.
    pub class: u32,
}

/// The adapter as BlueZ reports it after power-on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterInfo {
    /// The adapter's own address.
    pub address: Address,
    /// The adapter's name in BlueZ, e.g. `hci0`.
    pub name: String,
}

/// A remote device as the host knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The device's Bluetooth address.
    pub address: Address,
    /// The device's name, when it has told us.
    pub name: Option<String>,
    /// Whether a bond (link key) exists.
    pub paired: bool,
    /// Whether the device may connect without authorization.
    pub trusted: bool,
    /// Whether an ACL link is up.
    pub connected: bool,
}

/// A change to a device the host knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// A device appeared (discovered, or known at start).
    Added(DeviceInfo),
    /// A property changed; carries the full new state.
    Changed(DeviceInfo),
    /// The device was removed from the host.
    Removed(Address),
}

/// A request from BlueZ to the pairing agent.
#[derive(Debug)]
pub enum AgentRequest {
    /// Numeric comparison: confirm that the phone shows the same six digits.
    Confirm {
        /// The device pairing.
        device: Address,
        /// The six-digit value both sides display.
        passkey: u32,
        /// Accept or reject.
        reply: AgentReply<()>,
    },
    /// Legacy pairing: supply the PIN code.
    PinCode {
        /// The device pairing.
        device: Address,
        /// The PIN to use, or a rejection.
        reply: AgentReply<String>,
    },
    /// Passkey entry: the car must type the passkey the phone displays.
    Passkey {
        /// The device pairing.
        device: Address,
        /// The passkey, or a rejection.
        reply: AgentReply<u32>,
    },
    /// Display this passkey so the driver can type it on the phone.
    DisplayPasskey {
        /// The device pairing.
        device: Address,
        /// The passkey to announce.
        passkey: u32,
    },
    /// Pairing without keys ("just works") or an incoming bond: authorize it.
    Authorize {
        /// The device pairing.
        device: Address,
        /// Accept or reject.
        reply: AgentReply<()>,
    },
    /// An untrusted device asks to use a service.
    AuthorizeService {
        /// The device asking.
        device: Address,
        /// The service UUID.
        uuid: String,
        /// Accept or reject.
        reply: AgentReply<()>,
    },
    /// BlueZ cancelled the pending request (timeout or the phone gave up).
    Cancel,
}

impl AgentRequest {
    /// The device the request is about, if any.
    pub fn device(&self) -> Option<Address> {
        match self {
            AgentRequest::Confirm { device, .. }
            | AgentRequest::PinCode { device, .. }
            | AgentRequest::Passkey { device, .. }
            | AgentRequest::DisplayPasskey { device, .. }
            | AgentRequest::Authorize { device, .. }
            | AgentRequest::AuthorizeService { device, .. } => Some(*device),
            AgentRequest::Cancel => None,
        }
    }
}

/// The answer channel of an [`AgentRequest`]. Dropping it unanswered rejects the request.
pub struct AgentReply<T>(oneshot::Sender<Result<T, AgentRejection>>);

/// Why the agent said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentRejection {
    /// The request was refused by policy or by the driver.
    Rejected,
    /// The request was cancelled before an answer.
    Canceled,
}

impl<T> AgentReply<T> {
    /// Creates a reply handle and the receiver its answer arrives on.
    pub fn new() -> (Self, oneshot::Receiver<Result<T, AgentRejection>>) {
        let (tx, rx) = oneshot::channel();
        (AgentReply(tx), rx)
    }

    /// Accepts the request with `value`.
    pub fn accept(self, value: T) {
        // The requester may have given up (timeout); nothing is left to tell then.
        let _ = self.0.send(Ok(value));
    }

    /// Rejects the request.
    pub fn reject(self) {
        let _ = self.0.send(Err(AgentRejection::Rejected));
    }
}

impl<T> fmt::Debug for AgentReply<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgentReply")
    }
}

/// The profiles codriver registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileKind {
    /// Hands-Free Profile, HF role (UUID 0x111E), over RFCOMM.
    HandsFree,
    /// codriver's companion protocol, over RFCOMM (and LE L2CAP CoC).
    Companion,
}

impl ProfileKind {
    /// The profile's service UUID as BlueZ spells it.
    pub fn uuid(self) -> &'static str {
        match self {
            ProfileKind::HandsFree => HFP_HF_UUID,
            ProfileKind::Companion => COMPANION_UUID,
        }
    }
}

impl fmt::Display for ProfileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProfileKind::HandsFree => "hands-free",
            ProfileKind::Companion => "companion",
        })
    }
}

/// How to register a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSpec {
    /// Which profile.
    pub kind: ProfileKind,
    /// The SDP SupportedFeatures attribute (for HFP: the HF feature bits the engine offers).
    pub features: Option<u16>,
    /// Profile version for the SDP record, e.g. 0x0108 for HFP 1.8.
    pub version: Option<u16>,
}

/// Bytes both ways over one profile connection (an RFCOMM or L2CAP socket, or a test pipe).
pub trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> ByteStream for T {}

/// What carries a profile connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// RFCOMM over BR/EDR, from a profile registered with BlueZ.
    Rfcomm,
    /// An LE L2CAP connection-oriented channel (credit based).
    LeL2cap,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Rfcomm => "rfcomm",
            Transport::LeL2cap => "le-l2cap",
        })
    }
}

/// A new profile connection handed to the service that owns the profile.
pub struct ProfileConnection {
    /// The remote device (its identity address).
    pub device: Address,
    /// Which profile the connection belongs to.
    pub kind: ProfileKind,
    /// What carries it.
    pub transport: Transport,
    /// The connection's byte stream; dropping it closes the connection.
    pub stream: Box<dyn ByteStream>,
}

impl fmt::Debug for ProfileConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileConnection")
            .field("device", &self.device)
            .field("kind", &self.kind)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

/// Errors from a Bluetooth host backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BluetoothError {
    /// No adapter (or not the configured one) is present.
    #[error("no Bluetooth adapter{}", .0.as_deref().map(|n| format!(" named {n}")).unwrap_or_default())]
    NoAdapter(Option<String>),
    /// bluetoothd is not running or not reachable on the system bus.
    #[error("bluetoothd is not reachable on the system bus: {0}")]
    ServiceUnavailable(String),
    /// Another program already registered this profile's UUID.
    #[error(
        "the {kind} profile (UUID {uuid}) is already registered by another program, most likely \
         {likely_owner}; {how_to_free}"
    )]
    ProfileAlreadyRegistered {
        /// The profile.
        kind: ProfileKind,
        /// Its UUID.
        uuid: &'static str,
        /// Our best guess at who owns it.
        likely_owner: String,
        /// What the user can do about it.
        how_to_free: String,
    },
    /// The device is not known to the host.
    #[error("unknown device {0}")]
    UnknownDevice(Address),
    /// A connection attempt failed (device out of range, refused, timed out).
    #[error("connecting {kind} to {device} failed: {reason}")]
    ConnectFailed {
        /// The device.
        device: Address,
        /// The profile.
        kind: ProfileKind,
        /// What BlueZ or the kernel said.
        reason: String,
    },
    /// The backend (D-Bus, kernel) failed.
    #[error("Bluetooth backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}
