//! Logging: tracing to journald when started by systemd, to stderr otherwise.

use std::str::FromStr;

use codriver_config::{LogTarget, LoggingConfig};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;

/// Changes the log filter of the running daemon (config reload).
#[derive(Debug, Clone)]
pub struct LogControl {
    handle: reload::Handle<Targets, tracing_subscriber::Registry>,
}

impl LogControl {
    /// Replaces the filter; an invalid directive keeps the old one and says why.
    pub fn set_level(&self, directive: &str) -> Result<(), String> {
        let filter = Targets::from_str(directive).map_err(|e| e.to_string())?;
        self.handle.reload(filter).map_err(|e| e.to_string())
    }
}

/// Where logs go, decided from the config and the environment.
pub fn use_journald(config: &LoggingConfig) -> bool {
    match config.target {
        LogTarget::Journald => true,
        LogTarget::Stderr => false,
        // systemd sets JOURNAL_STREAM when stderr is connected to the journal.
        LogTarget::Auto => std::env::var_os("JOURNAL_STREAM").is_some(),
    }
}

/// Installs the global subscriber. `override_level` (from `--log-level`) wins over the config.
pub fn init(config: &LoggingConfig, override_level: Option<&str>) -> anyhow::Result<LogControl> {
    let directive = override_level.unwrap_or(config.level.as_str());
    let (filter, handle) = reload::Layer::new(Targets::from_str(directive)?);
    let registry = tracing_subscriber::registry().with(filter);
    if use_journald(config) {
        match tracing_journald::layer() {
            Ok(journald) => {
                registry
                    .with(journald.with_syslog_identifier("codriverd".into()))
                    .try_init()?;
                return Ok(LogControl { handle });
            }
            Err(e) => eprintln!("codriverd: journald unavailable ({e}); logging to stderr"),
        }
    }
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    registry.with(fmt).try_init()?;
    Ok(LogControl { handle })
}
