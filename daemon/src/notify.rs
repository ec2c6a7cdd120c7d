//! systemd integration: `sd_notify` readiness, status and watchdog pings.
//!
//! Everything here is a no-op when the daemon was not started by systemd (no
//! `NOTIFY_SOCKET`), so tests and `--simulate` need nothing special.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio::task::JoinHandle;

/// Talks to systemd's notification socket, if there is one.
#[derive(Debug, Clone)]
pub struct Notifier {
    enabled: bool,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC` from the environment.
    pub fn from_env() -> Self {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some();
        let mut usec = 0;
        let watchdog = (enabled && sd_notify::watchdog_enabled(false, &mut usec))
            .then(|| Duration::from_micros(usec));
        Notifier { enabled, watchdog }
    }

    /// Tells systemd start-up is complete.
    pub fn ready(&self) {
        self.send(&[NotifyState::Ready, NotifyState::Status("running")]);
    }

    /// Tells systemd a graceful stop began.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }

    /// Sets the status line `systemctl status` shows.
    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// Pings the watchdog at half its interval while the runtime is alive, when systemd asked
    /// for a watchdog. A hung runtime stops the pings and systemd restarts the daemon.
    pub fn spawn_watchdog(&self) -> Option<JoinHandle<()>> {
        let interval = self.watchdog? / 2;
        let this = self.clone();
        tracing::debug!(?interval, "watchdog enabled");
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                this.send(&[NotifyState::Watchdog]);
            }
        }))
    }

    fn send(&self, state: &[NotifyState<'_>]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(false, state) {
            tracing::warn!(error = %e, "sd_notify failed");
        }
    }
}
