//! The file as serde sees it, and its conversion into the validated [`Config`].
//!
//! Every raw struct denies unknown fields and has only optional fields (defaults are applied
//! while converting), except keys that have no sensible default (a phone's `address`). Single
//! values are checked by their types' `Deserialize`, so the error points at the value;
//! checks across values keep the spans they need with [`toml::Spanned`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_path_to_error::Segment;
use toml::Spanned;

use crate::Config;
use crate::enums::{
    Action, AudioBackend, BindingContext, BusKind, Codec, Gesture, HfpFeature, LogTarget,
    LowerPriority, PairingPolicy, SimulationProfile,
};
use crate::error::{ConfigError, ConfigErrorKind, ParseValueError, Source};
use crate::sections::{
    AdapterConfig, AmplifierConfig, AudioConfig, BindingConfig, ButtonConfig, ControlsConfig,
    DbusConfig, EvdevConfig, FocusConfig, GpioPin, HfpConfig, LoggingConfig, MessagesConfig,
    PairingConfig, PhoneConfig, ReconnectConfig, RotaryConfig, SimulationConfig, VolumeConfig,
};
use crate::types::{
    Address, AllowlistEntry, ButtonName, ByteSize, DeviceClass, EvdevKey, Fraction, FromStrVisitor,
    GpioLine, HfpVolume, LegacyPin, LogFilter, Percent, RealtimePriority, parse_duration,
    quoted_list,
};

/// Parses `text` (from `source.file`) into a validated [`Config`].
pub(crate) fn parse(source: &Source<'_>) -> Result<Config, ConfigError> {
    // A first pass with a plain table tells syntax errors apart from schema errors.
    if let Err(error) = source.text.parse::<toml::Table>() {
        return Err(ConfigError::new(
            source,
            error.span(),
            None,
            ConfigErrorKind::Syntax {
                message: tidy(error.message()),
            },
        ));
    }
    let raw: RawConfig = serde_path_to_error::deserialize(toml::Deserializer::new(source.text))
        .map_err(|error| schema_error(source, &error))?;
    raw.validate(source)
}

/// Turns a deserialization error into a [`ConfigError`] with a clean key path and message.
fn schema_error(
    source: &Source<'_>,
    error: &serde_path_to_error::Error<toml::de::Error>,
) -> ConfigError {
    let mut path = key_path(error.path().iter());
    let inner = error.inner();
    let message = inner.message();
    let kind = if let Some(rest) = message.strip_prefix("unknown field `") {
        // serde: "unknown field `x`, expected one of `a`, `b`" / "expected `a` or `b`".
        let mut quoted = rest.split('`').step_by(2);
        let key = quoted.next().unwrap_or_default().to_owned();
        let expected = quoted.map(str::to_owned).collect();
        ConfigErrorKind::UnknownKey { key, expected }
    } else if let Some(rest) = message.strip_prefix("missing field `") {
        let key = rest.split('`').next().unwrap_or_default().to_owned();
        path = join_key(&path, &key);
        ConfigErrorKind::MissingKey { key }
    } else {
        ConfigErrorKind::InvalidValue {
            message: tidy(message),
        }
    };
    ConfigError::new(source, inner.span(), Some(path), kind)
}

/// `controls.buttons[0].name`, leaving out the segments `toml::Spanned` adds.
fn key_path<'a>(segments: impl Iterator<Item = &'a Segment>) -> String {
    let mut path = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => path.push_str(&format!("[{index}]")),
            Segment::Map { key } if key.starts_with("$__serde_spanned_private") => {}
            Segment::Map { key } => path = join_key(&path, key),
            Segment::Enum { .. } => {}
            Segment::Unknown => path = join_key(&path, "?"),
        }
    }
    path
}

/// Appends a key to a dotted path, quoting it when it is not a bare TOML key.
pub(crate) fn join_key(path: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare || key == "?" {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// Makes TOML's and serde's messages read as one line in the file's own terms.
fn tidy(message: &str) -> String {
    message
        .trim()
        .replace('\n', ", ")
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a table")
}

// ---------------------------------------------------------------------------------------------
// Raw structs, in file order.

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
struct RawConfig {
    adapter: RawAdapter,
    pairing: RawPairing,
    phones: Vec<RawPhone>,
    reconnect: RawReconnect,
    hfp: RawHfp,
    audio: RawAudio,
    messages: RawMessages,
    controls: RawControls,
    dbus: RawDbus,
    logging: RawLogging,
    simulation: RawSimulation,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
struct RawAdapter {
    name: Option<AdapterName>,
    alias: Option<Alias>,
    class: Option<DeviceClass>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
struct RawPairing {
    policy: Option<Spanned<PairingPolicy>>,
    window: Option<PositiveDuration>,
    open_at_first_boot: Option<bool>,
    allowlist: Option<Vec<AllowlistEntry>>,
    legacy_pin: Option<LegacyPin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawPhone {
    address: Spanned<Address>,
    #[serde(default)]
    name: Option<NonEmpty>,
    #[serde(default)]
    priority: Option<IntInRange<0, 255>>,
    #[serde(default)]
    auto_reconnect: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
struct RawReconnect {
    initial_backoff: Option<Spanned<PositiveDuration>>,
    max_backoff: Option<Spanned<PositiveDuration>>,
    jitter: Option<Fraction>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
struct RawHfp {
    features: Option<Spanned<Vec<Spanned<HfpFeature>>>>,
    codecs: Option<Spanned<Vec<Spanned<Codec>>>>,
    echo_cancellation: Option<bool>,
    command_timeout: Option<PositiveDuration>,
    announce_caller: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
struct RawAudio {
    output_backend: Option<AudioBackend>,
    output_device: Option<NonEmpty>,
    wav_directory: Option<NonEmptyPath>,
    input_backend: Option<AudioBackend>,
    input_device: Option<NonEmpty>,
    input_wav: Option<NonEmptyPath>,
    realtime_priority: Option<RealtimePriority>,
    volume: RawVolume,
    focus: RawFocus,
    amplifier: RawAmplifier,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
struct RawVolume {
    speaker: Option<HfpVolume>,
    mic: Option<HfpVolume>,
    chime: Option<Percent>,
    messages: Option<Percent>,
    ringtone: Option<Percent>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
struct RawFocus {
    lower_priority: Option<LowerPriority>,
    duck_level: Option<Percent>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
struct RawAmplifier {
    enable: Option<RawGpioPin>,
    mute: Option<RawGpioPin>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a pin such as { chip = \"/dev/gpiochip0\", line = 17 }"
)]
struct RawGpioPin {
    #[serde(default)]
    chip: Option<NonEmptyPath>,
    line: Spanned<GpioLine>,
    #[serde(default)]
    active_low: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
struct RawMessages {
    spool_directory: Option<NonEmptyPath>,
    max_count: Option<IntInRange<1, 4_294_967_295>>,
    max_bytes: Option<PositiveSize>,
    max_age: Option<PositiveDuration>,
    announce: Option<bool>,
    tts_command: Option<NonEmpty>,
    max_reply: Option<PositiveDuration>,
    companion_tcp: Option<LoopbackAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
struct RawControls {
    gpio_chip: Option<NonEmptyPath>,
    debounce: Option<Spanned<AnyDuration>>,
    long_press: Option<Spanned<PositiveDuration>>,
    double_press: Option<Spanned<PositiveDuration>>,
    buttons: Vec<RawButton>,
    evdev: RawEvdev,
    rotary: Option<RawRotary>,
    bindings: Vec<RawBinding>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawButton {
    name: Spanned<ButtonName>,
    line: Spanned<GpioLine>,
    #[serde(default)]
    active_low: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
struct RawEvdev {
    device: Option<NonEmptyPath>,
    keys: Option<BTreeMap<EvdevKey, ButtonName>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawRotary {
    a: Spanned<GpioLine>,
    b: Spanned<GpioLine>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawBinding {
    button: Spanned<ButtonName>,
    gesture: Gesture,
    #[serde(default)]
    context: Option<BindingContext>,
    action: Action,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
struct RawDbus {
    enabled: Option<bool>,
    bus: Option<BusKind>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
struct RawLogging {
    level: Option<LogFilter>,
    target: Option<LogTarget>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
struct RawSimulation {
    profile: Option<SimulationProfile>,
    phone_name: Option<NonEmpty>,
    phone_address: Option<Address>,
    output_directory: Option<NonEmptyPath>,
}

// ---------------------------------------------------------------------------------------------
// Conversion and the checks across values.

/// Builds a [`ConfigErrorKind::Conflict`] error at `span`.
fn conflict(
    source: &Source<'_>,
    span: Range<usize>,
    path: impl Into<String>,
    message: String,
) -> ConfigError {
    ConfigError::new(
        source,
        Some(span),
        Some(path.into()),
        ConfigErrorKind::Conflict { message },
    )
}

impl RawConfig {
    fn validate(self, source: &Source<'_>) -> Result<Config, ConfigError> {
        let RawConfig {
            adapter,
            pairing,
            phones,
            reconnect,
            hfp,
            audio,
            messages,
            controls,
            dbus,
            logging,
            simulation,
        } = self;
        let pairing = pairing.validate(source)?;
        let phones = validate_phones(phones, source)?;
        let reconnect = reconnect.validate(source)?;
        let hfp = hfp.validate(source)?;
        let controls = controls.validate(source, &audio.amplifier)?;
        Ok(Config {
            adapter: adapter.validate(),
            pairing,
            phones,
            reconnect,
            hfp,
            audio: audio.validate(),
            messages: messages.validate(),
            controls,
            dbus: dbus.validate(),
            logging: logging.validate(),
            simulation: simulation.validate(),
        })
    }
}

impl RawAdapter {
    fn validate(self) -> AdapterConfig {
        let d = AdapterConfig::default();
        AdapterConfig {
            name: self.name.map(|n| n.0).or(d.name),
            alias: self.alias.map_or(d.alias, |a| a.0),
            class: self.class.unwrap_or(d.class),
        }
    }
}

impl RawPairing {
    fn validate(self, source: &Source<'_>) -> Result<PairingConfig, ConfigError> {
        let d = PairingConfig::default();
        let allowlist = self.allowlist.unwrap_or(d.allowlist);
        let policy = match self.policy {
            Some(policy) => {
                if *policy.get_ref() == PairingPolicy::Allowlist && allowlist.is_empty() {
                    return Err(conflict(
                        source,
                        policy.span(),
                        "pairing.policy",
                        "policy \"allowlist\" needs at least one entry in pairing.allowlist"
                            .to_owned(),
                    ));
                }
                policy.into_inner()
            }
            None => d.policy,
        };
        Ok(PairingConfig {
            policy,
            window: self.window.map_or(d.window, |w| w.0),
            open_at_first_boot: self.open_at_first_boot.unwrap_or(d.open_at_first_boot),
            allowlist,
            legacy_pin: self.legacy_pin.or(d.legacy_pin),
        })
    }
}

fn validate_phones(
    raw: Vec<RawPhone>,
    source: &Source<'_>,
) -> Result<Vec<PhoneConfig>, ConfigError> {
    let mut seen: HashMap<Address, (usize, usize)> = HashMap::new();
    let mut phones = Vec::with_capacity(raw.len());
    for (index, phone) in raw.into_iter().enumerate() {
        let address = *phone.address.get_ref();
        let span = phone.address.span();
        if let Some((first, first_offset)) = seen.get(&address) {
            return Err(conflict(
                source,
                span,
                format!("phones[{index}].address"),
                format!(
                    "duplicate phone address {address}: already listed at phones[{first}] \
                     (line {})",
                    source.line_of(*first_offset)
                ),
            ));
        }
        seen.insert(address, (index, span.start));
        phones.push(PhoneConfig {
            address,
            name: phone.name.map(|n| n.0),
            priority: phone.priority.map_or(0, |p| p.narrow()),
            auto_reconnect: phone.auto_reconnect.unwrap_or(true),
        });
    }
    Ok(phones)
}

impl RawReconnect {
    fn validate(self, source: &Source<'_>) -> Result<ReconnectConfig, ConfigError> {
        let d = ReconnectConfig::default();
        let initial = spanned_or(self.initial_backoff, d.initial_backoff);
        let max = spanned_or(self.max_backoff, d.max_backoff);
        if max.0 < initial.0 {
            let message = format!(
                "max_backoff ({}) must not be shorter than initial_backoff ({})",
                crate::types::format_duration(max.0),
                crate::types::format_duration(initial.0),
            );
            let (span, key) = match (max.1, initial.1) {
                (Some(span), _) => (span, "reconnect.max_backoff"),
                (None, span) => (span.unwrap_or(0..0), "reconnect.initial_backoff"),
            };
            return Err(conflict(source, span, key, message));
        }
        Ok(ReconnectConfig {
            initial_backoff: initial.0,
            max_backoff: max.0,
            jitter: self.jitter.unwrap_or(d.jitter),
        })
    }
}

/// The value and its span, or the default and no span.
fn spanned_or<T: Copy + Into<Duration>>(
    value: Option<Spanned<T>>,
    default: Duration,
) -> (Duration, Option<Range<usize>>) {
    match value {
        Some(v) => ((*v.get_ref()).into(), Some(v.span())),
        None => (default, None),
    }
}

/// Collects a list into a set, rejecting entries listed twice.
fn unique_set<T: Copy + Ord + fmt::Display>(
    list: Vec<Spanned<T>>,
    path: &str,
    source: &Source<'_>,
) -> Result<BTreeSet<T>, ConfigError> {
    let mut set = BTreeSet::new();
    for (index, item) in list.into_iter().enumerate() {
        let value = *item.get_ref();
        if !set.insert(value) {
            return Err(conflict(
                source,
                item.span(),
                format!("{path}[{index}]"),
                format!("\"{value}\" is listed twice"),
            ));
        }
    }
    Ok(set)
}

impl RawHfp {
    fn validate(self, source: &Source<'_>) -> Result<HfpConfig, ConfigError> {
        let d = HfpConfig::default();
        let (features, features_span) = match self.features {
            Some(list) => {
                let span = list.span();
                (
                    unique_set(list.into_inner(), "hfp.features", source)?,
                    Some(span),
                )
            }
            None => (d.features, None),
        };
        let (codecs, codecs_span) = match self.codecs {
            Some(list) => {
                let span = list.span();
                let codecs = unique_set(list.into_inner(), "hfp.codecs", source)?;
                if !codecs.contains(&Codec::Cvsd) {
                    return Err(conflict(
                        source,
                        span,
                        "hfp.codecs",
                        "\"cvsd\" is mandatory in HFP and must be listed".to_owned(),
                    ));
                }
                (codecs, Some(span))
            }
            None => (d.codecs, None),
        };
        let wideband = codecs.iter().any(|codec| *codec != Codec::Cvsd);
        if wideband && !features.contains(&HfpFeature::CodecNegotiation) {
            let (span, key) = match (features_span, codecs_span) {
                (Some(span), _) => (span, "hfp.features"),
                (None, span) => (span.unwrap_or(0..0), "hfp.codecs"),
            };
            return Err(conflict(
                source,
                span,
                key,
                "codecs other than \"cvsd\" need the \"codec-negotiation\" feature".to_owned(),
            ));
        }
        Ok(HfpConfig {
            features,
            codecs,
            echo_cancellation: self.echo_cancellation.unwrap_or(d.echo_cancellation),
            command_timeout: self.command_timeout.map_or(d.command_timeout, |t| t.0),
            announce_caller: self.announce_caller.unwrap_or(d.announce_caller),
        })
    }
}

impl RawAudio {
    fn validate(self) -> AudioConfig {
        let d = AudioConfig::default();
        let dv = d.volume;
        let df = d.focus;
        AudioConfig {
            output_backend: self.output_backend.unwrap_or(d.output_backend),
            output_device: self.output_device.map_or(d.output_device, |s| s.0),
            wav_directory: self.wav_directory.map_or(d.wav_directory, |p| p.0),
            input_backend: self.input_backend.unwrap_or(d.input_backend),
            input_device: self.input_device.map_or(d.input_device, |s| s.0),
            input_wav: self.input_wav.map(|p| p.0),
            realtime_priority: self.realtime_priority,
            volume: VolumeConfig {
                speaker: self.volume.speaker.unwrap_or(dv.speaker),
                mic: self.volume.mic.unwrap_or(dv.mic),
                chime: self.volume.chime.unwrap_or(dv.chime),
                messages: self.volume.messages.unwrap_or(dv.messages),
                ringtone: self.volume.ringtone.unwrap_or(dv.ringtone),
            },
            focus: FocusConfig {
                lower_priority: self.focus.lower_priority.unwrap_or(df.lower_priority),
                duck_level: self.focus.duck_level.unwrap_or(df.duck_level),
            },
            amplifier: AmplifierConfig {
                enable: self.amplifier.enable.as_ref().map(RawGpioPin::validate),
                mute: self.amplifier.mute.as_ref().map(RawGpioPin::validate),
            },
        }
    }
}

impl RawGpioPin {
    fn chip(&self) -> PathBuf {
        self.chip
            .as_ref()
            .map_or_else(|| PathBuf::from(DEFAULT_GPIO_CHIP), |p| p.0.clone())
    }

    fn validate(&self) -> GpioPin {
        GpioPin {
            chip: self.chip(),
            line: *self.line.get_ref(),
            active_low: self.active_low.unwrap_or(false),
        }
    }
}

/// The chip of an amplifier pin without `chip`.
pub(crate) const DEFAULT_GPIO_CHIP: &str = "/dev/gpiochip0";

impl RawMessages {
    fn validate(self) -> MessagesConfig {
        let d = MessagesConfig::default();
        MessagesConfig {
            spool_directory: self.spool_directory.map_or(d.spool_directory, |p| p.0),
            max_count: self.max_count.map_or(d.max_count, |c| c.narrow()),
            max_bytes: self.max_bytes.map_or(d.max_bytes, |s| s.0),
            max_age: self.max_age.map_or(d.max_age, |t| t.0),
            announce: self.announce.unwrap_or(d.announce),
            tts_command: self.tts_command.map_or(d.tts_command, |s| s.0),
            max_reply: self.max_reply.map_or(d.max_reply, |t| t.0),
            companion_tcp: self.companion_tcp.map(|a| a.0),
        }
    }
}

/// A GPIO line in use, for the check that no line is used twice.
struct LineUse {
    chip: PathBuf,
    line: GpioLine,
    span: Range<usize>,
    path: String,
}

impl RawControls {
    fn validate(
        self,
        source: &Source<'_>,
        amplifier: &RawAmplifier,
    ) -> Result<ControlsConfig, ConfigError> {
        let d = ControlsConfig::default();
        let gpio_chip = self.gpio_chip.map_or(d.gpio_chip, |p| p.0);

        let debounce = self
            .debounce
            .map(|v| (v.get_ref().0, Some(v.span())))
            .unwrap_or((d.debounce, None));
        let long_press = spanned_or(self.long_press, d.long_press);
        let double_press = spanned_or(self.double_press, d.double_press);
        for (name, timing) in [("long_press", &long_press), ("double_press", &double_press)] {
            if timing.0 <= debounce.0 {
                let message = format!(
                    "{name} ({}) must be longer than debounce ({})",
                    crate::types::format_duration(timing.0),
                    crate::types::format_duration(debounce.0),
                );
                let (span, key) = match (&timing.1, &debounce.1) {
                    (Some(span), _) => (span.clone(), format!("controls.{name}")),
                    (None, span) => (span.clone().unwrap_or(0..0), "controls.debounce".into()),
                };
                return Err(conflict(source, span, key, message));
            }
        }

        let mut names: HashMap<ButtonName, (usize, usize)> = HashMap::new();
        let mut lines = Vec::new();
        let mut buttons = Vec::with_capacity(self.buttons.len());
        for (index, button) in self.buttons.into_iter().enumerate() {
            let name = button.name.get_ref().clone();
            if let Some((first, offset)) = names.get(&name) {
                return Err(conflict(
                    source,
                    button.name.span(),
                    format!("controls.buttons[{index}].name"),
                    format!(
                        "duplicate button name \"{name}\": already used by \
                         controls.buttons[{first}] (line {})",
                        source.line_of(*offset)
                    ),
                ));
            }
            names.insert(name.clone(), (index, button.name.span().start));
            lines.push(LineUse {
                chip: gpio_chip.clone(),
                line: *button.line.get_ref(),
                span: button.line.span(),
                path: format!("controls.buttons[{index}].line"),
            });
            buttons.push(ButtonConfig {
                name,
                line: *button.line.get_ref(),
                active_low: button.active_low.unwrap_or(true),
            });
        }

        let evdev = EvdevConfig {
            device: self.evdev.device.map(|p| p.0),
            keys: self.evdev.keys.unwrap_or(d.evdev.keys),
        };

        let rotary = self.rotary.map(|rotary| {
            for (key, line) in [("a", &rotary.a), ("b", &rotary.b)] {
                lines.push(LineUse {
                    chip: gpio_chip.clone(),
                    line: *line.get_ref(),
                    span: line.span(),
                    path: format!("controls.rotary.{key}"),
                });
            }
            RotaryConfig {
                a: *rotary.a.get_ref(),
                b: *rotary.b.get_ref(),
            }
        });
        for (key, pin) in [("enable", &amplifier.enable), ("mute", &amplifier.mute)] {
            if let Some(pin) = pin {
                lines.push(LineUse {
                    chip: pin.chip(),
                    line: *pin.line.get_ref(),
                    span: pin.line.span(),
                    path: format!("audio.amplifier.{key}.line"),
                });
            }
        }
        check_lines(lines, source)?;

        let known: BTreeSet<&ButtonName> = buttons
            .iter()
            .map(|b| &b.name)
            .chain(evdev.keys.values())
            .collect();
        let mut seen: HashMap<(ButtonName, Gesture, BindingContext), (usize, usize)> =
            HashMap::new();
        let mut bindings = Vec::with_capacity(self.bindings.len());
        for (index, binding) in self.bindings.into_iter().enumerate() {
            let button = binding.button.get_ref().clone();
            let span = binding.button.span();
            if !known.contains(&button) {
                let names: Vec<&str> = known.iter().map(|n| n.as_str()).collect();
                let message = if names.is_empty() {
                    format!(
                        "unknown button \"{button}\": no buttons are defined; add \
                         [[controls.buttons]] or [controls.evdev.keys]"
                    )
                } else {
                    format!(
                        "unknown button \"{button}\": expected one of {} (from \
                         [[controls.buttons]] and [controls.evdev.keys])",
                        quoted_list(&names)
                    )
                };
                return Err(conflict(
                    source,
                    span,
                    format!("controls.bindings[{index}].button"),
                    message,
                ));
            }
            let context = binding.context.unwrap_or(BindingContext::Any);
            let key = (button.clone(), binding.gesture, context);
            if let Some((first, offset)) = seen.get(&key) {
                return Err(conflict(
                    source,
                    span,
                    format!("controls.bindings[{index}]"),
                    format!(
                        "\"{button}\" {} in context \"{context}\" is already bound by \
                         controls.bindings[{first}] (line {})",
                        binding.gesture,
                        source.line_of(*offset)
                    ),
                ));
            }
            seen.insert(key, (index, span.start));
            bindings.push(BindingConfig {
                button,
                gesture: binding.gesture,
                context,
                action: binding.action,
            });
        }

        Ok(ControlsConfig {
            gpio_chip,
            debounce: debounce.0,
            long_press: long_press.0,
            double_press: double_press.0,
            buttons,
            evdev,
            rotary,
            bindings,
        })
    }
}

/// Rejects a GPIO line used twice on the same chip, pointing at the later use in the file.
fn check_lines(mut lines: Vec<LineUse>, source: &Source<'_>) -> Result<(), ConfigError> {
    lines.sort_by_key(|l| l.span.start);
    for (i, later) in lines.iter().enumerate() {
        if let Some(earlier) = lines[..i]
            .iter()
            .find(|e| e.chip == later.chip && e.line == later.line)
        {
            return Err(conflict(
                source,
                later.span.clone(),
                later.path.clone(),
                format!(
                    "GPIO line {} of {} is already used by {} (line {})",
                    later.line,
                    later.chip.display(),
                    earlier.path,
                    source.line_of(earlier.span.start)
                ),
            ));
        }
    }
    Ok(())
}

impl RawDbus {
    fn validate(self) -> DbusConfig {
        let d = DbusConfig::default();
        DbusConfig {
            enabled: self.enabled.unwrap_or(d.enabled),
            bus: self.bus.unwrap_or(d.bus),
        }
    }
}

impl RawLogging {
    fn validate(self) -> LoggingConfig {
        let d = LoggingConfig::default();
        LoggingConfig {
            level: self.level.unwrap_or(d.level),
            target: self.target.unwrap_or(d.target),
        }
    }
}

impl RawSimulation {
    fn validate(self) -> SimulationConfig {
        let d = SimulationConfig::default();
        SimulationConfig {
            profile: self.profile.unwrap_or(d.profile),
            phone_name: self.phone_name.map_or(d.phone_name, |s| s.0),
            phone_address: self.phone_address.unwrap_or(d.phone_address),
            output_directory: self.output_directory.map_or(d.output_directory, |p| p.0),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Value types that only the file needs.

/// Implements `Deserialize` for a private newtype through its `FromStr`.
macro_rules! deserialize_from_str {
    ($name:ident, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(FromStrVisitor::new($expecting))
            }
        }
    };
}

/// A string that is not empty.
#[derive(Debug)]
struct NonEmpty(String);

impl FromStr for NonEmpty {
    type Err = ParseValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            Err(ParseValueError::new(format!(
                "invalid value {s:?}: expected a non-empty string"
            )))
        } else {
            Ok(NonEmpty(s.to_owned()))
        }
    }
}
deserialize_from_str!(NonEmpty, "a non-empty string");

/// A path that is not empty.
#[derive(Debug)]
struct NonEmptyPath(PathBuf);

impl FromStr for NonEmptyPath {
    type Err = ParseValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            Err(ParseValueError::new(
                "invalid path \"\": expected a file or directory path",
            ))
        } else {
            Ok(NonEmptyPath(PathBuf::from(s)))
        }
    }
}
deserialize_from_str!(NonEmptyPath, "a path");

/// A BlueZ adapter name, `hci` followed by a number.
#[derive(Debug)]
struct AdapterName(String);

impl FromStr for AdapterName {
    type Err = ParseValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let number = s.strip_prefix("hci").unwrap_or_default();
        if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AdapterName(s.to_owned()))
        } else {
            Err(ParseValueError::new(format!(
                "invalid adapter name {s:?}: expected a BlueZ adapter name such as \"hci0\""
            )))
        }
    }
}
deserialize_from_str!(AdapterName, "an adapter name such as \"hci0\"");

/// A Bluetooth device name: 1 to 248 bytes of UTF-8 (the limit of the Local Name).
#[derive(Debug)]
struct Alias(String);

impl FromStr for Alias {
    type Err = ParseValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() || s.len() > 248 {
            Err(ParseValueError::new(format!(
                "invalid alias {s:?}: expected a name of 1 to 248 bytes"
            )))
        } else {
            Ok(Alias(s.to_owned()))
        }
    }
}
deserialize_from_str!(Alias, "a device name");

/// A loopback socket address for the development TCP transport.
#[derive(Debug)]
struct LoopbackAddr(SocketAddr);

impl FromStr for LoopbackAddr {
    type Err = ParseValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let address: SocketAddr = s.parse().map_err(|_| {
            ParseValueError::new(format!(
                "invalid listen address {s:?}: expected a loopback address and port such as \
                 \"127.0.0.1:7420\""
            ))
        })?;
        if address.ip().is_loopback() {
            Ok(LoopbackAddr(address))
        } else {
            Err(ParseValueError::new(format!(
                "invalid listen address {s:?}: the development transport only listens on \
                 loopback (127.0.0.1 or [::1])"
            )))
        }
    }
}
deserialize_from_str!(
    LoopbackAddr,
    "a loopback address and port such as \"127.0.0.1:7420\""
);

/// Any duration, zero included.
#[derive(Debug, Clone, Copy)]
struct AnyDuration(Duration);

impl FromStr for AnyDuration {
    type Err = ParseValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(AnyDuration)
    }
}
deserialize_from_str!(AnyDuration, "a duration such as \"90s\"");

/// A duration longer than zero.
#[derive(Debug, Clone, Copy)]
struct PositiveDuration(Duration);

impl FromStr for PositiveDuration {
    type Err = ParseValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match parse_duration(s)? {
            Duration::ZERO => Err(ParseValueError::new(format!(
                "invalid duration {s:?}: expected a duration longer than zero"
            ))),
            duration => Ok(PositiveDuration(duration)),
        }
    }
}
deserialize_from_str!(PositiveDuration, "a duration such as \"90s\"");

impl From<PositiveDuration> for Duration {
    fn from(value: PositiveDuration) -> Duration {
        value.0
    }
}

/// A byte size larger than zero.
#[derive(Debug)]
struct PositiveSize(ByteSize);

impl<'de> Deserialize<'de> for PositiveSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match ByteSize::deserialize(deserializer)? {
            size if size.bytes() == 0 => Err(de::Error::custom(
                "invalid size 0: expected a size larger than zero",
            )),
            size => Ok(PositiveSize(size)),
        }
    }
}

/// An integer in `MIN..=MAX`.
#[derive(Debug, Clone, Copy)]
struct IntInRange<const MIN: i64, const MAX: i64>(i64);

impl<const MIN: i64, const MAX: i64> IntInRange<MIN, MAX> {
    /// The value as the field's type; the range check guarantees it fits.
    fn narrow<T: TryFrom<i64> + Default>(self) -> T {
        T::try_from(self.0).unwrap_or_default()
    }
}

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for IntInRange<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<const MIN: i64, const MAX: i64>;
        impl<const MIN: i64, const MAX: i64> Visitor<'_> for V<MIN, MAX> {
            type Value = IntInRange<MIN, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an integer from {MIN} to {MAX}")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                if (MIN..=MAX).contains(&v) {
                    Ok(IntInRange(v))
                } else {
                    Err(E::custom(format!(
                        "invalid value {v}: expected an integer from {MIN} to {MAX}"
                    )))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                match i64::try_from(v) {
                    Ok(v) => self.visit_i64(v),
                    Err(_) => Err(E::custom(format!(
                        "invalid value {v}: expected an integer from {MIN} to {MAX}"
                    ))),
                }
            }
        }
        deserializer.deserialize_any(V::<MIN, MAX>)
    }
}
