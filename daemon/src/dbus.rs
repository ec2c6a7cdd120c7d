//! The D-Bus API, `org.codriver.Codriver1`: how a head-unit UI and `codriverctl` reach the
//! daemon.
//!
//! A thin handle: every method turns into a [`Command`] over the daemon's channel and returns
//! its outcome as a typed error; properties mirror the daemon's events; the `Event` signal
//! carries every event line for `codriverctl watch`. Objects are served before the bus name
//! is requested, so a client that sees the name can call at once.

// zbus's `#[interface]` generates property-changed and signal helpers without doc comments.
#![allow(missing_docs)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use codriver_config::{BusKind, DbusConfig};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use zbus::object_server::SignalEmitter;
use zbus::{connection, interface};

use crate::events::{CallAction, Command, DaemonEvent, DaemonHandle};

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

    /// Every daemon event, as one line (the same text the log shows).
    #[zbus(signal)]
    async fn event(emitter: &SignalEmitter<'_>, line: &str) -> zbus::Result<()>;
}

/// A served API: the connection and the task forwarding events.
#[derive(Debug)]
pub struct Api {
    _connection: zbus::Connection,
    task: JoinHandle<()>,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves the API on the configured bus and requests [`BUS_NAME`].
pub async fn serve(config: &DbusConfig, handle: DaemonHandle) -> zbus::Result<Api> {
    let status = Arc::new(Mutex::new(Status::default()));
    let events = handle.subscribe();
    let api = DaemonApi {
        handle,
        status: status.clone(),
    };
    let builder = match config.bus {
        BusKind::System => connection::Builder::system()?,
        BusKind::Session => connection::Builder::session()?,
    };
    let conn = builder
        .serve_at(OBJECT_PATH, api)?
        .name(BUS_NAME)?
        .build()
        .await?;
    let emitter = SignalEmitter::new(&conn, OBJECT_PATH)?.into_owned();
    let iface = conn
        .object_server()
        .interface::<_, DaemonApi>(OBJECT_PATH)
        .await?;
    let task = tokio::spawn(forward(events, emitter, iface, status));
    tracing::info!(bus = %config.bus, name = BUS_NAME, "D-Bus API ready");
    Ok(Api {
        _connection: conn,
        task,
    })
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
