//! The validated sections of [`crate::Config`], one struct per TOML table, with their defaults.
//!
//! The defaults here are the documented ones: `codriver.toml` shows each of them, and a test
//! checks that the example and this file agree.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::enums::{
    Action, AudioBackend, BindingContext, BusKind, Codec, Gesture, HfpFeature, LogTarget,
    LowerPriority, PairingPolicy, SimulationProfile,
};
use crate::types::{
    Address, AllowlistEntry, ButtonName, ByteSize, DeviceClass, EvdevKey, Fraction, GpioLine,
    HfpVolume, LegacyPin, LogFilter, Percent, RealtimePriority,
};

/// `[adapter]`: the local Bluetooth controller and how phones see it.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterConfig {
    /// The BlueZ adapter to use, e.g. `hci0`; `None` means BlueZ's default adapter.
    pub name: Option<String>,
    /// The name phones show when they discover or list the head unit.
    pub alias: String,
    /// The Class of Device advertised, which decides the icon phones show.
    pub class: DeviceClass,
}

impl Default for AdapterConfig {
    fn default() -> Self {
        AdapterConfig {
            name: None,
            alias: "codriver".to_owned(),
            class: DeviceClass::HANDS_FREE,
        }
    }
}

/// `[pairing]`: how new phones get paired.
#[derive(Debug, Clone, PartialEq)]
pub struct PairingConfig {
    /// Who approves a pairing request.
    pub policy: PairingPolicy,
    /// How long the head unit stays discoverable and pairable once the window opens.
    pub window: Duration,
    /// Open the window at start-up when no phone is paired yet, so a fresh unit can be paired
    /// without any button.
    pub open_at_first_boot: bool,
    /// Devices accepted without confirmation under [`PairingPolicy::Allowlist`].
    pub allowlist: Vec<AllowlistEntry>,
    /// PIN for phones that only do legacy (pre-2.1) pairing; `None` rejects legacy pairing.
    pub legacy_pin: Option<LegacyPin>,
}

impl Default for PairingConfig {
    fn default() -> Self {
        PairingConfig {
            policy: PairingPolicy::ButtonOrDbus,
            window: Duration::from_secs(120),
            open_at_first_boot: true,
            allowlist: Vec::new(),
            legacy_pin: None,
        }
    }
}

/// `[[phones]]`: a phone codriver knows, in addition to what BlueZ has paired.
#[derive(Debug, Clone, PartialEq)]
pub struct PhoneConfig {
    /// The phone's Bluetooth address; unique within the file.
    pub address: Address,
    /// A name for announcements and logs; `None` uses the name the phone presents.
    pub name: Option<String>,
    /// With two phones connected, the higher priority gets the call role (ties: last used).
    pub priority: u8,
    /// Reconnect to this phone at start-up and after the link drops.
    pub auto_reconnect: bool,
}

/// `[reconnect]`: how lost or absent phones are reconnected.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectConfig {
    /// Wait before the first retry; doubled after each failure.
    pub initial_backoff: Duration,
    /// The longest wait between retries; never shorter than `initial_backoff`.
    pub max_backoff: Duration,
    /// Random spread of each wait (0.2: ±20 %), so several units don't retry in lockstep.
    pub jitter: Fraction,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        ReconnectConfig {
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(5 * 60),
            jitter: Fraction(0.2),
        }
    }
}

/// `[hfp]`: the Hands-Free Profile as codriver (the HF) offers it.
#[derive(Debug, Clone, PartialEq)]
pub struct HfpConfig {
    /// The features advertised in `AT+BRSF`; see [`HfpConfig::brsf_features`].
    pub features: BTreeSet<HfpFeature>,
    /// The codecs offered in `AT+BAC`; always contains [`Codec::Cvsd`].
    pub codecs: BTreeSet<Codec>,
    /// Run echo cancellation on the microphone during calls (and ask the phone to turn its
    /// own off with `AT+NREC=0`).
    pub echo_cancellation: bool,
    /// How long to wait for the phone's answer to an AT command before giving up on it.
    pub command_timeout: Duration,
    /// Speak the caller's name (or number) once while a call rings, through
    /// `messages.tts_command`: the driver knows who calls without looking.
    pub announce_caller: bool,
}

impl HfpConfig {
    /// The HF supported features bitmap for `AT+BRSF`.
    pub fn brsf_features(&self) -> u32 {
        self.features
            .iter()
            .fold(0, |bits, feature| bits | feature.brsf_bit())
    }
}

impl Default for HfpConfig {
    fn default() -> Self {
        HfpConfig {
            features: HfpFeature::ALL.iter().copied().collect(),
            codecs: [Codec::Cvsd, Codec::Msbc].into_iter().collect(),
            echo_cancellation: true,
            command_timeout: Duration::from_secs(5),
            announce_caller: true,
        }
    }
}

/// `[audio]`: speakers, microphone, volumes and who gets to use them.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioConfig {
    /// Where sound is played.
    pub output_backend: AudioBackend,
    /// The ALSA playback device for the `alsa` backend, e.g. `default` or `hw:0,0`.
    pub output_device: String,
    /// Where the `wav` output backend writes its files.
    pub wav_directory: PathBuf,
    /// Where the microphone comes from.
    pub input_backend: AudioBackend,
    /// The ALSA capture device for the `alsa` backend.
    pub input_device: String,
    /// The file the `wav` input backend plays as the microphone; `None` records silence.
    pub input_wav: Option<PathBuf>,
    /// `SCHED_FIFO` priority of the call audio thread; `None` leaves it a normal thread.
    pub realtime_priority: Option<RealtimePriority>,
    /// `[audio.volume]`: start-up volumes.
    pub volume: VolumeConfig,
    /// `[audio.focus]`: what happens to quieter-priority audio.
    pub focus: FocusConfig,
    /// `[audio.amplifier]`: GPIO pins of an external amplifier.
    pub amplifier: AmplifierConfig,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            output_backend: AudioBackend::SystemDefault,
            output_device: "default".to_owned(),
            wav_directory: PathBuf::from("/var/lib/codriver/audio"),
            input_backend: AudioBackend::SystemDefault,
            input_device: "default".to_owned(),
            input_wav: None,
            realtime_priority: None,
            volume: VolumeConfig::default(),
            focus: FocusConfig::default(),
            amplifier: AmplifierConfig::default(),
        }
    }
}

/// `[audio.volume]`: volumes at start-up.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeConfig {
    /// Call speaker volume on the HFP scale, sent to the phone with `AT+VGS`.
    pub speaker: HfpVolume,
    /// Microphone gain on the HFP scale, sent with `AT+VGM`.
    pub mic: HfpVolume,
    /// Chimes (connected, message arrived, button feedback).
    pub chime: Percent,
    /// Voice message playback and spoken announcements.
    pub messages: Percent,
    /// The ringtone played for incoming calls when the phone sends no in-band ring.
    pub ringtone: Percent,
}

impl Default for VolumeConfig {
    fn default() -> Self {
        VolumeConfig {
            speaker: HfpVolume(10),
            mic: HfpVolume(12),
            chime: Percent(60),
            messages: Percent(80),
            ringtone: Percent(80),
        }
    }
}

/// `[audio.focus]`: the audio router gives the speakers to the highest priority (call > voice
/// assistant > message playback > chimes); this says what happens to the others.
#[derive(Debug, Clone, PartialEq)]
pub struct FocusConfig {
    /// Duck or pause lower-priority audio.
    pub lower_priority: LowerPriority,
    /// The volume of ducked audio, in percent of its normal volume.
    pub duck_level: Percent,
}

impl Default for FocusConfig {
    fn default() -> Self {
        FocusConfig {
            lower_priority: LowerPriority::Duck,
            duck_level: Percent(20),
        }
    }
}

/// `[audio.amplifier]`: an external amplifier powered up and unmuted only while there is
/// something to play, to avoid hiss and save power.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AmplifierConfig {
    /// The pin that powers the amplifier; `None` when there is none.
    pub enable: Option<GpioPin>,
    /// The pin that mutes the amplifier; `None` when there is none.
    pub mute: Option<GpioPin>,
}

/// One GPIO output line, e.g. `{ chip = "/dev/gpiochip0", line = 17, active_low = false }`.
#[derive(Debug, Clone, PartialEq)]
pub struct GpioPin {
    /// The GPIO character device.
    pub chip: PathBuf,
    /// The line offset on that chip.
    pub line: GpioLine,
    /// The pin is asserted (enable / mute) when the line is low.
    pub active_low: bool,
}

/// `[messages]`: voice messages relayed from the phone's companion app.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagesConfig {
    /// Where received messages wait until they are played and expire.
    pub spool_directory: PathBuf,
    /// The most messages kept; the oldest are deleted first.
    pub max_count: u32,
    /// The most bytes kept in the spool; the oldest messages are deleted first.
    pub max_bytes: ByteSize,
    /// Messages older than this are deleted, played or not.
    pub max_age: Duration,
    /// Speak "message from …" before playing a message.
    pub announce: bool,
    /// The text-to-speech program for announcements: a program name or path, optionally
    /// followed by arguments separated by spaces; the text is passed as the last argument.
    pub tts_command: String,
    /// The longest voice reply that can be recorded.
    pub max_reply: Duration,
    /// Listen address of the development TCP transport for the companion protocol; always a
    /// loopback address. `None` disables it (phones use Bluetooth).
    pub companion_tcp: Option<SocketAddr>,
}

impl Default for MessagesConfig {
    fn default() -> Self {
        MessagesConfig {
            spool_directory: PathBuf::from("/var/lib/codriver/spool"),
            max_count: 500,
            max_bytes: ByteSize::new(200 << 20),
            max_age: Duration::from_secs(30 * 86_400),
            announce: true,
            tts_command: "espeak-ng".to_owned(),
            max_reply: Duration::from_secs(60),
            companion_tcp: None,
        }
    }
}

/// `[controls]`: buttons, steering-wheel keys, and what their gestures do.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlsConfig {
    /// The GPIO character device of `buttons` and `rotary`.
    pub gpio_chip: PathBuf,
    /// A line must be stable this long before a change counts.
    pub debounce: Duration,
    /// A press held this long is a long press.
    pub long_press: Duration,
    /// A second press within this time after a short press makes a double press.
    pub double_press: Duration,
    /// `[[controls.buttons]]`: GPIO buttons, with unique names.
    pub buttons: Vec<ButtonConfig>,
    /// `[controls.evdev]`: keys of an input device (steering-wheel interface, keyboard).
    pub evdev: EvdevConfig,
    /// `[controls.rotary]`: a rotary encoder that sets the volume; `None` when there is none.
    pub rotary: Option<RotaryConfig>,
    /// `[[controls.bindings]]` as written. Empty means the default map of
    /// [`ControlsConfig::default_bindings`]; use [`ControlsConfig::effective_bindings`].
    pub bindings: Vec<BindingConfig>,
}

impl ControlsConfig {
    /// The bindings in force: those of the file, or the default map when it gives none.
    pub fn effective_bindings(&self) -> Vec<BindingConfig> {
        if self.bindings.is_empty() {
            Self::default_bindings()
        } else {
            self.bindings.clone()
        }
    }

    /// The default map for a single button named `phone` (the default `KEY_PHONE` mapping, or
    /// a GPIO button of that name), used when the file has no `[[controls.bindings]]`:
    ///
    /// | gesture | context         | action              |
    /// |---------|-----------------|---------------------|
    /// | short   | ringing         | answer              |
    /// | short   | call-waiting    | answer              |
    /// | short   | in-call         | hangup              |
    /// | short   | message-waiting | play-next-message   |
    /// | short   | playing         | stop                |
    /// | short   | recording       | send-reply          |
    /// | short   | pairing-window  | confirm-pairing     |
    /// | short   | idle            | voice-assistant     |
    /// | long    | ringing         | reject              |
    /// | long    | call-waiting    | reject              |
    /// | long    | in-call         | hold                |
    /// | long    | playing         | record-reply        |
    /// | long    | recording       | cancel-reply        |
    /// | long    | pairing-window  | reject-pairing      |
    /// | long    | idle            | open-pairing-window |
    /// | double  | call-waiting    | swap                |
    /// | double  | playing         | skip                |
    /// | double  | message-waiting | replay              |
    /// | double  | idle            | replay              |
    pub fn default_bindings() -> Vec<BindingConfig> {
        use Action as A;
        use BindingContext as C;
        use Gesture as G;
        const MAP: [(Gesture, BindingContext, Action); 19] = [
            (G::Short, C::Ringing, A::Answer),
            (G::Short, C::CallWaiting, A::Answer),
            (G::Short, C::InCall, A::Hangup),
            (G::Short, C::MessageWaiting, A::PlayNextMessage),
            (G::Short, C::Playing, A::Stop),
            (G::Short, C::Recording, A::SendReply),
            (G::Short, C::PairingWindow, A::ConfirmPairing),
            (G::Short, C::Idle, A::VoiceAssistant),
            (G::Long, C::Ringing, A::Reject),
            (G::Long, C::CallWaiting, A::Reject),
            (G::Long, C::InCall, A::Hold),
            (G::Long, C::Playing, A::RecordReply),
            (G::Long, C::Recording, A::CancelReply),
            (G::Long, C::PairingWindow, A::RejectPairing),
            (G::Long, C::Idle, A::OpenPairingWindow),
            (G::Double, C::CallWaiting, A::Swap),
            (G::Double, C::Playing, A::Skip),
            (G::Double, C::MessageWaiting, A::Replay),
            (G::Double, C::Idle, A::Replay),
        ];
        MAP.iter()
            .map(|&(gesture, context, action)| BindingConfig {
                button: phone_button(),
                gesture,
                context,
                action,
            })
            .collect()
    }
}

impl Default for ControlsConfig {
    fn default() -> Self {
        ControlsConfig {
            gpio_chip: PathBuf::from("/dev/gpiochip0"),
            debounce: Duration::from_millis(20),
            long_press: Duration::from_millis(800),
            double_press: Duration::from_millis(350),
            buttons: Vec::new(),
            evdev: EvdevConfig::default(),
            rotary: None,
            bindings: Vec::new(),
        }
    }
}

/// `[[controls.buttons]]`: a push button wired to a GPIO line of `controls.gpio_chip`.
#[derive(Debug, Clone, PartialEq)]
pub struct ButtonConfig {
    /// The name bindings use.
    pub name: ButtonName,
    /// The line the button is wired to.
    pub line: GpioLine,
    /// Pressed reads low: the usual wiring, button to ground with a pull-up.
    pub active_low: bool,
}

/// `[controls.evdev]`: keys from a Linux input device, such as a steering-wheel interface.
#[derive(Debug, Clone, PartialEq)]
pub struct EvdevConfig {
    /// The input device, e.g. `/dev/input/by-id/…-event-kbd`; `None` reads no evdev keys.
    pub device: Option<PathBuf>,
    /// Which key acts as which button. Several keys may map to one button, and a key may map
    /// to the name of a GPIO button so both act alike.
    pub keys: BTreeMap<EvdevKey, ButtonName>,
}

impl Default for EvdevConfig {
    fn default() -> Self {
        EvdevConfig {
            device: None,
            keys: BTreeMap::from([(EvdevKey("KEY_PHONE".to_owned()), phone_button())]),
        }
    }
}

/// `[controls.rotary]`: a quadrature rotary encoder on two lines of `controls.gpio_chip`;
/// clockwise raises the volume of whatever is playing.
#[derive(Debug, Clone, PartialEq)]
pub struct RotaryConfig {
    /// The encoder's A (CLK) line.
    pub a: GpioLine,
    /// The encoder's B (DT) line.
    pub b: GpioLine,
}

/// `[[controls.bindings]]`: one gesture of one button, in one context, triggers one action.
#[derive(Debug, Clone, PartialEq)]
pub struct BindingConfig {
    /// A GPIO button name or the target of an evdev key.
    pub button: ButtonName,
    /// How the button is pressed.
    pub gesture: Gesture,
    /// When the binding applies.
    pub context: BindingContext,
    /// What it does.
    pub action: Action,
}

/// `[dbus]`: the `org.codriver.Codriver1` D-Bus API for the head-unit UI and `codriverctl`.
#[derive(Debug, Clone, PartialEq)]
pub struct DbusConfig {
    /// Serve the API; without it, only buttons control the daemon.
    pub enabled: bool,
    /// The bus to serve it on.
    pub bus: BusKind,
}

impl Default for DbusConfig {
    fn default() -> Self {
        DbusConfig {
            enabled: true,
            bus: BusKind::System,
        }
    }
}

/// `[logging]`: how much is logged, and where.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoggingConfig {
    /// The level or filter; the `RUST_LOG` environment variable overrides it.
    pub level: LogFilter,
    /// Where log lines go.
    pub target: LogTarget,
}

/// `[simulation]`: settings used only by `codriverd --simulate`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationConfig {
    /// How the simulated phone behaves.
    pub profile: SimulationProfile,
    /// The name the simulated phone presents.
    pub phone_name: String,
    /// The simulated phone's address.
    pub phone_address: Address,
    /// Where simulation audio is written as WAV files when there is no sound card.
    pub output_directory: PathBuf,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        SimulationConfig {
            profile: SimulationProfile::IphoneLike,
            phone_name: "Simulated Phone".to_owned(),
            phone_address: Address::new([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]),
            output_directory: std::env::temp_dir().join("codriver-sim"),
        }
    }
}

// Values for defaults, built directly: each is valid by inspection.

fn phone_button() -> ButtonName {
    ButtonName("phone".to_owned())
}
