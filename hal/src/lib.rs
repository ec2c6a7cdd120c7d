//! Hardware abstraction for codriver.
//!
//! Every piece of hardware the daemon touches sits behind a small, object-safe trait with one
//! role each:
//!
//! * [`BluetoothHost`]: adapter control, the pairing agent, device events and profile
//!   registration that hands out byte streams for incoming and outgoing connections;
//! * [`AudioOutput`] / [`PcmSink`]: PCM playback streams, each carrying its audio [`Focus`];
//! * [`AudioInput`] / [`PcmSource`]: microphone capture;
//! * [`ButtonSource`]: button and key edges (GPIO through embedded-hal, evdev keys);
//! * [`Amplifier`]: amplifier enable and mute pins (embedded-hal `OutputPin`);
//! * [`ScoTransport`] / [`ScoLink`]: SCO voice links for calls (kernel sockets, or a socket pair).
//!
//! Implementations: the `linux` feature brings BlueZ (bluer), rodio/cpal audio, GPIO character
//! devices (linux-embedded-hal) and evdev; the `wav` and `null` audio backends need no hardware
//! and are always built; the `mock` feature brings scriptable mocks that check expectations.
//! Events flow out on bounded channels, never as callbacks.

pub mod audio;
pub mod bluetooth;
pub mod controls;
#[cfg(feature = "linux")]
pub mod linux;
#[cfg(feature = "mock")]
pub mod mock;
pub mod sco;

use std::sync::Arc;

pub use audio::{
    AudioError, AudioInput, AudioOutput, Focus, PcmFormat, PcmSink, PcmSource, open_input,
    open_output,
};
pub use bluetooth::{
    AdapterInfo, AdapterSettings, AgentReply, AgentRequest, BluetoothError, BluetoothHost,
    ByteStream, DeviceEvent, DeviceInfo, ProfileConnection, ProfileKind, ProfileSpec, ServiceEvent,
    Transport,
};
pub use codriver_config::Address;
pub use controls::{
    AmpState, Amplifier, ButtonEvent, ButtonSource, ControlError, EdgeWait, GpioAmplifier,
    GpioButton, QuadratureDecoder, ROTARY_CLOCKWISE, ROTARY_COUNTER_CLOCKWISE, RotaryEncoder,
    Rotation,
};
pub use sco::{AirMode, ScoError, ScoLink, ScoListener, ScoTransport, SeqpacketLink};

/// Everything the daemon needs from the hardware, as trait objects.
///
/// The daemon never names a concrete backend: the binary builds a `Hal` from the config (real
/// hardware) or from mocks (`--simulate`, tests) and hands it to `codriver_daemon::run`.
pub struct Hal {
    /// The Bluetooth host controller and BlueZ.
    pub bluetooth: Arc<dyn BluetoothHost>,
    /// Where sound goes: car speakers, WAV files or nowhere.
    pub audio_out: Arc<dyn AudioOutput>,
    /// Where the driver's voice comes from.
    pub audio_in: Arc<dyn AudioInput>,
    /// Steering-wheel keys and GPIO buttons; each source is read by its own task.
    pub buttons: Vec<Box<dyn ButtonSource>>,
    /// Amplifier enable/mute pins, when the car has them wired.
    pub amplifier: Option<Box<dyn Amplifier>>,
}

impl std::fmt::Debug for Hal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hal")
            .field("audio_out", &self.audio_out.describe())
            .field("audio_in", &self.audio_in.describe())
            .field("buttons", &self.buttons.len())
            .field("amplifier", &self.amplifier.is_some())
            .finish_non_exhaustive()
    }
}
