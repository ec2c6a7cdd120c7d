//! The link manager: adapter set-up, the pairing window and agent, and reconnecting phones.
//!
//! It owns the adapter's state and is driven by the daemon's main loop: agent requests, device
//! events, commands and its own deadlines (window close, pending confirmation, reconnect
//! backoff) come in through its `on_*` methods. When nothing is pending it has no deadline at
//! all, so an idle daemon sleeps without timers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use codriver_config::Config;
use codriver_hal::{
    AdapterSettings, Address, AgentReply, AgentRequest, BluetoothError, BluetoothHost, DeviceEvent,
    DeviceInfo, ProfileKind,
};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::audio::AudioRouter;
use crate::events::{DaemonEvent, publish};
use crate::pairing::{self, ConfirmSource, Decision, RequestKind};
use crate::tones::Chime;

/// How long the driver has to confirm a pairing before it is rejected. Phones give up after
/// about 30 s themselves.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// The link manager's state.
pub(crate) struct Link {
    host: Arc<dyn BluetoothHost>,
    audio: AudioRouter,
    events: broadcast::Sender<DaemonEvent>,
    config: Arc<Config>,
    /// When the pairing window closes; `None` while closed.
    window_until: Option<Instant>,
    /// A pairing request waiting for the driver.
    pending: Option<Pending>,
    /// Devices whose pairing this daemon approved: only they become trusted.
    approved: HashSet<Address>,
    devices: BTreeMap<Address, DeviceInfo>,
    /// Phones we are trying to reconnect, with their backoff.
    reconnect: HashMap<Address, Backoff>,
    /// Connection attempts running off the main loop.
    attempts: tokio::task::JoinSet<(Address, Result<(), BluetoothError>)>,
    /// Phones whose Hands-Free link is up.
    hands_free: HashSet<Address>,
    /// Reconnect order: most recently used last.
    last_used: Vec<Address>,
    /// The user asked to stop reconnecting; cleared when a phone connects by itself.
    reconnect_stopped: bool,
    /// Phones the user disconnected: not reconnected until asked to, or until they connect
    /// by themselves.
    held: HashSet<Address>,
    /// Whether bluetoothd is on the bus; while it is not, nothing is attempted.
    service_up: bool,
    /// Whether the companion service is advertised over LE, as last set; `None`: unknown
    /// (not set yet, or bluetoothd restarted), set at the next chance.
    advertising: Option<bool>,
    rng: XorShift,
}

struct Pending {
    device: Address,
    reply: AgentReply<()>,
    deadline: Instant,
}

impl Link {
    pub(crate) fn new(
        host: Arc<dyn BluetoothHost>,
        audio: AudioRouter,
        events: broadcast::Sender<DaemonEvent>,
        config: Arc<Config>,
    ) -> Self {
        let seed = u64::from(std::process::id()) ^ 0x9E37_79B9_7F4A_7C15;
        Link {
            host,
            audio,
            events,
            config,
            window_until: None,
            pending: None,
            approved: HashSet::new(),
            devices: BTreeMap::new(),
            reconnect: HashMap::new(),
            attempts: tokio::task::JoinSet::new(),
            hands_free: HashSet::new(),
            last_used: Vec::new(),
            reconnect_stopped: false,
            held: HashSet::new(),
            service_up: true,
            advertising: None,
            rng: XorShift(seed | 1),
        }
    }

    /// Powers the adapter and learns the known devices; opens the pairing window at first
    /// boot and schedules reconnects of known phones, last used first.
    pub(crate) async fn start(&mut self) -> Result<(), BluetoothError> {
        let paired = self.set_up_adapter().await?;
        if paired.is_empty() && self.config.pairing.open_at_first_boot {
            tracing::info!("no phone is paired yet: opening the pairing window");
            self.open_window().await?;
        }
        self.schedule_reconnects(paired);
        Ok(())
    }

    /// After bluetoothd came back: sets the adapter up again and reconnects the known phones
    /// that are not connected, by priority. The pairing window stays closed.
    pub(crate) async fn restart(&mut self) -> Result<(), BluetoothError> {
        self.service_up = true;
        let paired = self.set_up_adapter().await?;
        self.schedule_reconnects(paired);
        Ok(())
    }

    /// bluetoothd left the bus: the pending pairing request and the pairing window went with
    /// it, and reconnects wait for its return.
    pub(crate) fn service_lost(&mut self) {
        self.service_up = false;
        // The advertisement died with bluetoothd.
        self.advertising = None;
        if let Some(p) = self.pending.take() {
            self.reject(p.device, p.reply, "bluetoothd went away");
        }
        if self.window_until.take().is_some() {
            publish(
                &self.events,
                DaemonEvent::PairingWindowClosed {
                    reason: "bluetooth-lost",
                },
            );
        }
    }

    /// Powers the adapter, closes pairing and (re)learns the known devices; returns the
    /// paired ones.
    async fn set_up_adapter(&mut self) -> Result<Vec<Address>, BluetoothError> {
        let adapter = &self.config.adapter;
        let info = self
            .host
            .power_on(&AdapterSettings {
                adapter: adapter.name.clone(),
                alias: adapter.alias.clone(),
                class: adapter.class.get(),
            })
            .await?;
        publish(
            &self.events,
            DaemonEvent::AdapterReady {
                address: info.address,
            },
        );
        // Make sure we start closed whatever state bluetoothd was left in.
        self.host.set_pairing_mode(false).await?;
        for d in self.host.devices().await? {
            self.devices.insert(d.address, d);
        }
        self.update_advertising().await;
        Ok(self
            .devices
            .values()
            .filter(|d| d.paired)
            .map(|d| d.address)
            .collect())
    }

    /// Schedules reconnects of `paired` phones that are trusted, not connected and allowed
    /// to reconnect: configured priority first, then the most recently used.
    fn schedule_reconnects(&mut self, paired: Vec<Address>) {
        if self.reconnect_stopped {
            return;
        }
        let mut order = paired;
        order.sort_by_key(|a| std::cmp::Reverse(self.priority(*a)));
        let now = Instant::now();
        for a in order {
            if self.auto_reconnect(a)
                && !self.hands_free.contains(&a)
                && self
                    .devices
                    .get(&a)
                    .is_some_and(|d| d.trusted && !d.connected)
            {
                self.reconnect.insert(a, Backoff::new(now));
                if !self.last_used.contains(&a) {
                    self.last_used.push(a);
                }
            }
        }
    }

    /// The next moment something is due, if anything is.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        // Reconnects wait while bluetoothd is away: a due one would fire again and again.
        let backoff = self
            .reconnect
            .values()
            .filter(|b| !b.in_flight)
            .map(|b| b.next)
            .min()
            .filter(|_| self.service_up);
        [
            self.window_until,
            self.pending.as_ref().map(|p| p.deadline),
            backoff,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The name BlueZ knows for `device`.
    pub(crate) fn device_name(&self, device: Address) -> Option<&str> {
        self.devices.get(&device).and_then(|d| d.name.as_deref())
    }

    /// Whether the pairing window is open.
    pub(crate) fn window_open(&self) -> bool {
        self.window_until.is_some()
    }

    /// Whether a pairing request waits for the driver.
    pub(crate) fn confirmation_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Handles whatever is due at `now`.
    pub(crate) async fn on_timer(&mut self, now: Instant) {
        if self.pending.as_ref().is_some_and(|p| p.deadline <= now)
            && let Some(p) = self.pending.take()
        {
            self.reject(p.device, p.reply, "the driver did not confirm in time");
        }
        if self.window_until.is_some_and(|t| t <= now) {
            self.close_window("timeout").await;
        }
        if !self.service_up {
            return;
        }
        let due: Vec<Address> = self
            .reconnect
            .iter()
            .filter(|(_, b)| !b.in_flight && b.next <= now)
            .map(|(a, _)| *a)
            .collect();
        for device in due {
            self.start_reconnect(device);
        }
    }

    /// Waits for the next connection attempt to finish; never resolves while none runs. The
    /// main loop selects on it, so a slow page (BlueZ may take 10 s to give up on a phone that
    /// is away) never holds up buttons, the agent or the D-Bus API.
    pub(crate) async fn attempt_finished(&mut self) -> (Address, Result<(), BluetoothError>) {
        loop {
            match self.attempts.join_next().await {
                Some(Ok(outcome)) => return outcome,
                Some(Err(e)) => tracing::warn!(error = %e, "a reconnect attempt task failed"),
                None => std::future::pending::<()>().await,
            }
        }
    }

    /// A connection attempt finished: success leaves the rest to the profile connection that
    /// follows; failure schedules the next attempt, counted from now.
    pub(crate) fn on_attempt_finished(
        &mut self,
        device: Address,
        result: Result<(), BluetoothError>,
    ) {
        match result {
            Ok(()) => {
                self.reconnect.remove(&device);
            }
            Err(e) => {
                if let Some(b) = self.reconnect.get_mut(&device) {
                    b.in_flight = false;
                    b.next = Instant::now();
                    let delay = b.schedule(&self.config.reconnect, &mut self.rng);
                    tracing::info!(%device, error = %e, retry_in = ?delay, "reconnect failed");
                }
            }
        }
    }

    /// Opens the pairing window (or extends it) for the configured length.
    pub(crate) async fn open_window(&mut self) -> Result<(), BluetoothError> {
        let duration = self.config.pairing.window;
        self.host.set_pairing_mode(true).await?;
        self.window_until = Some(Instant::now() + duration);
        self.update_advertising().await;
        publish(&self.events, DaemonEvent::PairingWindowOpened { duration });
        self.audio.chime(Chime::PairingOpen);
        Ok(())
    }

    /// Closes the pairing window.
    pub(crate) async fn close_window(&mut self, reason: &'static str) {
        if self.window_until.take().is_none() {
            return;
        }
        if let Err(e) = self.host.set_pairing_mode(false).await {
            tracing::warn!(error = %e, "could not make the adapter non-discoverable");
        }
        if let Some(p) = self.pending.take() {
            self.reject(p.device, p.reply, "the pairing window closed");
        }
        self.update_advertising().await;
        publish(&self.events, DaemonEvent::PairingWindowClosed { reason });
        if reason != "paired" {
            self.audio.chime(Chime::PairingClosed);
        }
    }

    /// Handles a request from BlueZ to the agent.
    pub(crate) async fn on_agent(&mut self, request: AgentRequest) {
        let device = request.device();
        let name = device
            .and_then(|d| self.devices.get(&d))
            .and_then(|d| d.name.clone());
        let window = self.window_open();
        let policy = &self.config.pairing;
        match request {
            AgentRequest::Confirm {
                device,
                passkey,
                reply,
            } => {
                let d = pairing::decide(
                    policy,
                    window,
                    device,
                    name.as_deref(),
                    RequestKind::Confirm(passkey),
                );
                self.carry_out(device, Some(passkey), reply, d);
            }
            AgentRequest::Authorize { device, reply } => {
                let d = pairing::decide(
                    policy,
                    window,
                    device,
                    name.as_deref(),
                    RequestKind::Authorize,
                );
                self.carry_out(device, None, reply, d);
            }
            AgentRequest::PinCode { device, reply } => {
                match pairing::decide(
                    policy,
                    window,
                    device,
                    name.as_deref(),
                    RequestKind::PinCode,
                ) {
                    Decision::AcceptPin(pin) => {
                        self.approved.insert(device);
                        publish(
                            &self.events,
                            DaemonEvent::PairingAccepted {
                                device,
                                by: "legacy-pin",
                            },
                        );
                        reply.accept(pin);
                    }
                    Decision::Reject(reason) => self.reject(device, reply, &reason),
                    other => self.reject(device, reply, &format!("unexpected decision {other:?}")),
                }
            }
            AgentRequest::Passkey { device, reply } => {
                self.reject(
                    device,
                    reply,
                    "passkey entry needs a keyboard the car does not have",
                );
            }
            AgentRequest::DisplayPasskey { device, passkey } => {
                publish(
                    &self.events,
                    DaemonEvent::PairingRequested {
                        device,
                        passkey: Some(passkey),
                    },
                );
                self.audio.chime(Chime::PairingRequest);
            }
            AgentRequest::AuthorizeService {
                device,
                uuid,
                reply,
            } => {
                // BlueZ asks this only for untrusted devices. A device we approved may use
                // our services while its pairing completes; nobody else may.
                if self.approved.contains(&device) {
                    reply.accept(());
                } else {
                    self.reject(
                        device,
                        reply,
                        &format!("untrusted device asked for service {uuid}"),
                    );
                }
            }
            AgentRequest::Cancel => {
                if let Some(p) = self.pending.take() {
                    self.reject(p.device, p.reply, "cancelled by the phone");
                }
            }
        }
    }

    fn carry_out(
        &mut self,
        device: Address,
        passkey: Option<u32>,
        reply: AgentReply<()>,
        d: Decision,
    ) {
        match d {
            Decision::Accept(by) => {
                self.approved.insert(device);
                publish(&self.events, DaemonEvent::PairingAccepted { device, by });
                reply.accept(());
            }
            Decision::AskDriver => {
                if let Some(old) = self.pending.take() {
                    self.reject(old.device, old.reply, "superseded by a newer request");
                }
                publish(
                    &self.events,
                    DaemonEvent::PairingRequested { device, passkey },
                );
                self.audio.chime(Chime::PairingRequest);
                self.pending = Some(Pending {
                    device,
                    reply,
                    deadline: Instant::now() + CONFIRM_TIMEOUT,
                });
            }
            Decision::Reject(reason) => self.reject(device, reply, &reason),
            Decision::AcceptPin(_) => self.reject(device, reply, "a PIN was not asked for"),
        }
    }

    /// The driver answered the pending pairing request.
    pub(crate) fn confirm(&mut self, accept: bool, source: ConfirmSource) -> Result<(), String> {
        let policy = self.config.pairing.policy;
        if !pairing::confirmation_allowed(policy, source) {
            return Err(format!(
                "the pairing policy {policy} does not take confirmations from {source:?}"
            ));
        }
        let p = self
            .pending
            .take()
            .ok_or_else(|| "no pairing request is waiting".to_owned())?;
        if accept {
            self.approved.insert(p.device);
            let by = match source {
                ConfirmSource::Button => "button",
                ConfirmSource::Dbus => "dbus",
            };
            publish(
                &self.events,
                DaemonEvent::PairingAccepted {
                    device: p.device,
                    by,
                },
            );
            p.reply.accept(());
        } else {
            self.reject(p.device, p.reply, "rejected by the driver");
        }
        Ok(())
    }

    fn reject<T>(&mut self, device: Address, reply: AgentReply<T>, reason: &str) {
        tracing::warn!(%device, reason, "pairing request rejected");
        publish(
            &self.events,
            DaemonEvent::PairingRejected {
                device,
                reason: reason.to_owned(),
            },
        );
        reply.reject();
    }

    /// Handles a device change from the host.
    pub(crate) async fn on_device(&mut self, event: DeviceEvent) {
        match event {
            DeviceEvent::Added(info) | DeviceEvent::Changed(info) => {
                let before = self.devices.insert(info.address, info.clone());
                let was_paired = before.as_ref().is_some_and(|b| b.paired);
                let was_connected = before.as_ref().is_some_and(|b| b.connected);
                if info.paired && !was_paired {
                    self.on_paired(info.clone()).await;
                }
                if was_connected && !info.connected {
                    self.on_link_lost(info.address);
                }
            }
            DeviceEvent::Removed(address) => {
                self.devices.remove(&address);
                self.reconnect.remove(&address);
                self.approved.remove(&address);
            }
        }
        self.update_advertising().await;
    }

    /// Advertises the companion service over LE while a phone may want to connect over it:
    /// inside the pairing window, and whenever a phone is paired and trusted (it is expected
    /// back). A car without a paired phone and with the window closed stays silent on LE.
    /// Phones without RFCOMM (iOS) need the advertisement to connect at all; accepting is
    /// still up to [`may_connect`](Self::may_connect).
    async fn update_advertising(&mut self) {
        let wanted = self.window_open()
            || self
                .devices
                .values()
                .any(|d| d.paired && (d.trusted || self.approved.contains(&d.address)));
        if self.advertising == Some(wanted) || !self.service_up {
            return;
        }
        match self.host.set_companion_advertising(wanted).await {
            Ok(()) => {
                tracing::debug!(advertising = wanted, "companion LE advertising");
                self.advertising = Some(wanted);
            }
            Err(e) => {
                // Not retried until the wish changes or bluetoothd restarts: an adapter
                // without LE would fail the same way at every device event.
                tracing::warn!(error = %e, advertising = wanted, "cannot change the companion LE advertising");
                self.advertising = Some(wanted);
            }
        }
    }

    async fn on_paired(&mut self, info: DeviceInfo) {
        let device = info.address;
        if !self.approved.contains(&device) {
            // Paired behind our back (another agent, bluetoothctl): never trust it.
            tracing::warn!(%device, "a device paired without this daemon's approval; not trusting it");
            return;
        }
        if let Err(e) = self.host.set_trusted(device, true).await {
            tracing::warn!(%device, error = %e, "could not mark the phone trusted");
        }
        publish(
            &self.events,
            DaemonEvent::PhonePaired {
                device,
                name: info.name.clone(),
            },
        );
        self.audio.chime(Chime::Paired);
        self.touch(device);
        self.close_window("paired").await;
    }

    fn on_link_lost(&mut self, device: Address) {
        self.hands_free.remove(&device);
        publish(&self.events, DaemonEvent::PhoneDisconnected { device });
        self.audio.chime(Chime::Disconnected);
        if self
            .devices
            .get(&device)
            .is_some_and(|d| d.paired && d.trusted)
            && self.auto_reconnect(device)
            && !self.reconnect_stopped
        {
            let mut b = Backoff::new(Instant::now());
            b.schedule(&self.config.reconnect, &mut self.rng);
            self.reconnect.insert(device, b);
        }
    }

    /// Whether `device` may use the car's profiles: it paired through codriver's policy (this
    /// run), or BlueZ has it trusted, which only codriver grants. BlueZ's RequireAuthentication
    /// only asks for a bond, and a bond made behind codriver's back (another agent,
    /// bluetoothctl) must not get calls or messages.
    pub(crate) fn may_connect(&self, device: Address) -> bool {
        self.approved.contains(&device) || self.devices.get(&device).is_some_and(|d| d.trusted)
    }

    /// A profile connection came up (either direction).
    pub(crate) fn on_profile_connected(&mut self, device: Address, kind: ProfileKind) {
        publish(
            &self.events,
            DaemonEvent::ProfileConnected {
                device,
                profile: kind,
            },
        );
        if kind == ProfileKind::HandsFree {
            self.reconnect.remove(&device);
            self.reconnect_stopped = false;
            self.held.remove(&device);
            self.touch(device);
        }
    }

    /// The Hands-Free service level connection is up.
    pub(crate) fn on_hands_free_ready(&mut self, device: Address) {
        if self.hands_free.insert(device) {
            publish(&self.events, DaemonEvent::HandsFreeReady { device });
            self.audio.chime(Chime::Connected);
        }
    }

    /// The Hands-Free link closed (the RFCOMM stream ended).
    pub(crate) fn on_hands_free_closed(&mut self, device: Address) {
        if self.hands_free.remove(&device)
            && self.devices.get(&device).is_some_and(|d| d.connected)
            && self.auto_reconnect(device)
            && !self.reconnect_stopped
        {
            // The profile dropped but the phone is still there: try again after backoff.
            let mut b = Backoff::new(Instant::now());
            b.schedule(&self.config.reconnect, &mut self.rng);
            self.reconnect.insert(device, b);
        }
    }

    /// Stops reconnecting (the user asked) until a phone connects by itself or the daemon
    /// restarts.
    pub(crate) fn stop_reconnecting(&mut self) {
        self.reconnect.clear();
        self.reconnect_stopped = true;
        tracing::info!("reconnecting stopped on request");
        publish(&self.events, DaemonEvent::ReconnectStopped);
    }

    /// Connects `device`'s Hands-Free now, whatever the backoff, the stop or an earlier
    /// [`Link::hold`] said (the user asked for this phone).
    pub(crate) fn connect_now(&mut self, device: Address) -> Result<(), String> {
        if !self.may_connect(device) {
            return Err(format!("{device} is not a phone paired through codriver"));
        }
        if self.hands_free.contains(&device) {
            return Err(format!("{device} is already connected"));
        }
        self.held.remove(&device);
        if self.reconnect.get(&device).is_some_and(|b| b.in_flight) {
            // An attempt is under way; its outcome is this request's.
            return Ok(());
        }
        self.reconnect.insert(device, Backoff::new(Instant::now()));
        if !self.service_up {
            return Err("bluetoothd is not running; the phone connects when it returns".into());
        }
        self.start_reconnect(device);
        Ok(())
    }

    /// The user disconnects `device`: it is not reconnected until [`Link::connect_now`], or
    /// until it connects by itself. Errors when the device is not one of ours.
    pub(crate) fn hold(&mut self, device: Address) -> Result<(), String> {
        if !self.may_connect(device) {
            return Err(format!("{device} is not a phone paired through codriver"));
        }
        self.held.insert(device);
        self.reconnect.remove(&device);
        tracing::info!(%device, "phone disconnected on request; not reconnecting it");
        Ok(())
    }

    /// Applies a reloaded configuration.
    pub(crate) fn set_config(&mut self, config: Arc<Config>) {
        self.config = config;
    }

    fn start_reconnect(&mut self, device: Address) {
        if let Some(b) = self.reconnect.get_mut(&device) {
            b.in_flight = true;
        }
        tracing::info!(%device, "reconnecting Hands-Free");
        let host = self.host.clone();
        self.attempts.spawn(async move {
            (
                device,
                host.connect_profile(device, ProfileKind::HandsFree).await,
            )
        });
    }

    fn touch(&mut self, device: Address) {
        self.last_used.retain(|a| *a != device);
        self.last_used.push(device);
    }

    /// How much `device` is preferred: its configured `[[phones]]` priority, then how
    /// recently it was used. Higher is preferred.
    pub(crate) fn priority(&self, device: Address) -> (u8, usize) {
        let configured = self
            .config
            .phones
            .iter()
            .find(|p| p.address == device)
            .map_or(0, |p| p.priority);
        let recency = self
            .last_used
            .iter()
            .position(|a| *a == device)
            .map_or(0, |i| i + 1);
        (configured, recency)
    }

    fn auto_reconnect(&self, device: Address) -> bool {
        !self.held.contains(&device)
            && self
                .config
                .phones
                .iter()
                .find(|p| p.address == device)
                .is_none_or(|p| p.auto_reconnect)
    }
}

/// Capped exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    attempt: u32,
    pub(crate) next: Instant,
    /// A connection attempt is running; the next one is scheduled when it fails.
    in_flight: bool,
}

impl Backoff {
    fn new(now: Instant) -> Self {
        Backoff {
            attempt: 0,
            next: now,
            in_flight: false,
        }
    }

    /// Moves `next` one step further and returns the delay chosen.
    fn schedule(&mut self, cfg: &codriver_config::ReconnectConfig, rng: &mut XorShift) -> Duration {
        let base = cfg
            .initial_backoff
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(cfg.max_backoff);
        let jitter = cfg.jitter.get();
        // Uniform in [1 - jitter, 1 + jitter].
        let factor = 1.0 + jitter * (2.0 * rng.next_unit() - 1.0);
        let delay = base.mul_f64(factor.max(0.0)).min(cfg.max_backoff);
        self.attempt = self.attempt.saturating_add(1);
        self.next += delay;
        delay
    }
}

/// A tiny PRNG for jitter; reconnect timing needs spread, not cryptographic quality.
#[derive(Debug, Clone)]
pub(crate) struct XorShift(u64);

impl XorShift {
    fn next_unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let cfg = codriver_config::ReconnectConfig {
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            jitter: codriver_config::Fraction::new(0.0).unwrap(),
        };
        let mut rng = XorShift(42);
        let mut b = Backoff::new(Instant::now());
        let delays: Vec<u64> = (0..8)
            .map(|_| b.schedule(&cfg, &mut rng).as_secs())
            .collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let cfg = codriver_config::ReconnectConfig {
            initial_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(600),
            jitter: codriver_config::Fraction::new(0.2).unwrap(),
        };
        let mut rng = XorShift(7);
        let mut seen = HashSet::new();
        for _ in 0..200 {
            let mut b = Backoff::new(Instant::now());
            let d = b.schedule(&cfg, &mut rng).as_millis();
            assert!((8_000..=12_000).contains(&d), "{d}");
            seen.insert(d / 100);
        }
        assert!(seen.len() > 10, "jitter spreads the delays");
    }
}
