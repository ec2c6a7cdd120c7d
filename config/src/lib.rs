//! codriver's configuration: the TOML schema of `/etc/codriver/codriver.toml`, parsed into
//! validated types.
//!
//! The file is read into raw serde structs that deny unknown keys, then turned into [`Config`],
//! whose fields can only hold valid values ("parse, don't validate"). Every key has a
//! documented default, so an empty file is a valid configuration equal to
//! [`Config::default()`]. A bad file yields a [`ConfigError`] naming the file, line, column and
//! key path, and saying what would be valid:
//!
//! ```text
//! /etc/codriver/codriver.toml:12:9: pairing.window: invalid duration "soon": expected a number followed by ms, s, min, h or d (e.g. "90s")
//! ```
//!
//! `codriver.toml` beside this crate's `Cargo.toml` documents every key; the `.deb` installs it
//! as `/etc/codriver/codriver.toml`.
//!
//! ```
//! use std::path::Path;
//!
//! let text = "[audio.volume]\nspeaker = 12\n";
//! let config = codriver_config::Config::parse(text, Path::new("example.toml"))?;
//! assert_eq!(config.audio.volume.speaker.get(), 12);
//! # Ok::<(), codriver_config::ConfigError>(())
//! ```

mod enums;
mod error;
mod raw;
mod render;
mod sections;
mod types;

use std::path::Path;

pub use enums::{
    Action, AudioBackend, BindingContext, BusKind, Codec, Gesture, HfpFeature, LogTarget,
    LowerPriority, PairingPolicy, SimulationProfile,
};
pub use error::{ConfigError, ConfigErrorKind, ParseValueError};
pub use sections::{
    AdapterConfig, AmplifierConfig, AudioConfig, BindingConfig, ButtonConfig, ControlsConfig,
    DbusConfig, EvdevConfig, FocusConfig, GpioPin, HfpConfig, LoggingConfig, MessagesConfig,
    PairingConfig, PhoneConfig, ReconnectConfig, RotaryConfig, SimulationConfig, VolumeConfig,
};
pub use types::{
    Address, AllowlistEntry, ButtonName, ByteSize, DeviceClass, EvdevKey, Fraction, GpioLine,
    HfpVolume, LegacyPin, LogFilter, Percent, RealtimePriority, format_duration, parse_duration,
};

/// The path the `.deb` installs the example configuration to, and where `codriverd` looks by
/// default.
pub const DEFAULT_PATH: &str = "/etc/codriver/codriver.toml";

/// The whole configuration of `codriverd`, one field per top-level TOML table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// `[adapter]`: the local Bluetooth controller.
    pub adapter: AdapterConfig,
    /// `[pairing]`: how new phones get paired.
    pub pairing: PairingConfig,
    /// `[[phones]]`: known phones, with unique addresses.
    pub phones: Vec<PhoneConfig>,
    /// `[reconnect]`: reconnection back-off.
    pub reconnect: ReconnectConfig,
    /// `[hfp]`: Hands-Free Profile features and codecs.
    pub hfp: HfpConfig,
    /// `[audio]`: devices, volumes, focus and amplifier.
    pub audio: AudioConfig,
    /// `[messages]`: the voice-message spool and playback.
    pub messages: MessagesConfig,
    /// `[controls]`: buttons, keys and their bindings.
    pub controls: ControlsConfig,
    /// `[dbus]`: the D-Bus API.
    pub dbus: DbusConfig,
    /// `[logging]`: log level and destination.
    pub logging: LoggingConfig,
    /// `[simulation]`: the simulated phone of `codriverd --simulate`.
    pub simulation: SimulationConfig,
}

impl Config {
    /// Reads and parses the file at `path`.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::Io`] when the file cannot be read (or is not UTF-8); otherwise as
    /// [`Config::parse`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::io(path, e))?;
        Config::parse(&text, path)
    }

    /// Parses configuration text; `origin` is the file name used in error messages.
    ///
    /// # Errors
    ///
    /// The first problem found: invalid TOML, an unknown or missing key, a value of the wrong
    /// type or out of range, or values that conflict.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        raw::parse(&error::Source { file: origin, text })
    }

    /// The effective configuration as TOML: every key with its value, defaults filled in, and
    /// unset optional keys as comments. [`Config::parse`] reads it back to an equal `Config`.
    /// This is what `codriverd --check-config` prints.
    pub fn to_toml(&self) -> String {
        render::to_toml(self)
    }
}
