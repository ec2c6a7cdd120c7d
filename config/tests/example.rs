//! The shipped example `codriver.toml`: as shipped it is the defaults; with every option line
//! uncommented (by the convention documented at its top) it is valid, uses every key of the
//! schema, and shows the true default of every key that has one.

// Helpers shared by the tests panic on failure, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use codriver_config::{
    AdapterConfig, AmplifierConfig, AudioConfig, BindingConfig, ButtonConfig, Config,
    ControlsConfig, DbusConfig, EvdevConfig, FocusConfig, GpioPin, HfpConfig, LoggingConfig,
    MessagesConfig, PairingConfig, PhoneConfig, ReconnectConfig, RotaryConfig, SimulationConfig,
    VolumeConfig,
};

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("codriver.toml")
}

fn example() -> String {
    std::fs::read_to_string(example_path()).unwrap()
}

/// Is this line a commented-out option: `#` directly followed by a key or a table header?
fn is_option_line(line: &str) -> bool {
    line.strip_prefix('#')
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '[' || c == '"')
}

/// Applies the convention of the example's header: delete the `#` of every option line.
fn uncomment(text: &str) -> String {
    text.lines()
        .map(|line| {
            if is_option_line(line) {
                &line[1..]
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every key of the schema, as `table.key` with array indices left out. Maps whose keys are
/// free-form (`controls.evdev.keys`) count as one key.
///
/// The destructuring patterns below have no `..`: adding a field to a section struct breaks
/// this function until the field is listed here, which then makes the tests below demand it in
/// the example file and in `to_toml`.
fn schema_keys() -> BTreeSet<String> {
    let Config {
        adapter,
        pairing,
        phones: _,
        reconnect,
        hfp,
        audio,
        messages,
        controls,
        dbus,
        logging,
        simulation,
    } = Config::default();
    let AdapterConfig {
        name: _,
        alias: _,
        class: _,
    } = adapter;
    let PairingConfig {
        policy: _,
        window: _,
        open_at_first_boot: _,
        allowlist: _,
        legacy_pin: _,
    } = pairing;
    let _phone = |phone: PhoneConfig| {
        let PhoneConfig {
            address: _,
            name: _,
            priority: _,
            auto_reconnect: _,
        } = phone;
    };
    let ReconnectConfig {
        initial_backoff: _,
        max_backoff: _,
        jitter: _,
    } = reconnect;
    let HfpConfig {
        features: _,
        codecs: _,
        echo_cancellation: _,
        command_timeout: _,
        announce_caller: _,
    } = hfp;
    let AudioConfig {
        output_backend: _,
        output_device: _,
        wav_directory: _,
        input_backend: _,
        input_device: _,
        input_wav: _,
        realtime_priority: _,
        volume,
        focus,
        amplifier,
    } = audio;
    let VolumeConfig {
        speaker: _,
        mic: _,
        chime: _,
        messages: _,
        ringtone: _,
    } = volume;
    let FocusConfig {
        lower_priority: _,
        duck_level: _,
    } = focus;
    let AmplifierConfig { enable: _, mute: _ } = amplifier;
    let _pin = |pin: GpioPin| {
        let GpioPin {
            chip: _,
            line: _,
            active_low: _,
        } = pin;
    };
    let MessagesConfig {
        spool_directory: _,
        max_count: _,
        max_bytes: _,
        max_age: _,
        announce: _,
        tts_command: _,
        max_reply: _,
        companion_tcp: _,
    } = messages;
    let ControlsConfig {
        gpio_chip: _,
        debounce: _,
        long_press: _,
        double_press: _,
        buttons: _,
        evdev,
        rotary: _,
        bindings: _,
    } = controls;
    let _button = |button: ButtonConfig| {
        let ButtonConfig {
            name: _,
            line: _,
            active_low: _,
        } = button;
    };
    let EvdevConfig { device: _, keys: _ } = evdev;
    let _rotary = |rotary: RotaryConfig| {
        let RotaryConfig { a: _, b: _ } = rotary;
    };
    let _binding = |binding: BindingConfig| {
        let BindingConfig {
            button: _,
            gesture: _,
            context: _,
            action: _,
        } = binding;
    };
    let DbusConfig { enabled: _, bus: _ } = dbus;
    let LoggingConfig {
        level: _,
        target: _,
    } = logging;
    let SimulationConfig {
        profile: _,
        phone_name: _,
        phone_address: _,
        output_directory: _,
    } = simulation;

    [
        "adapter.name",
        "adapter.alias",
        "adapter.class",
        "pairing.policy",
        "pairing.window",
        "pairing.open_at_first_boot",
        "pairing.allowlist",
        "pairing.legacy_pin",
        "phones.address",
        "phones.name",
        "phones.priority",
        "phones.auto_reconnect",
        "reconnect.initial_backoff",
        "reconnect.max_backoff",
        "reconnect.jitter",
        "hfp.features",
        "hfp.codecs",
        "hfp.echo_cancellation",
        "hfp.command_timeout",
        "hfp.announce_caller",
        "audio.output_backend",
        "audio.output_device",
        "audio.wav_directory",
        "audio.input_backend",
        "audio.input_device",
        "audio.input_wav",
        "audio.realtime_priority",
        "audio.volume.speaker",
        "audio.volume.mic",
        "audio.volume.chime",
        "audio.volume.messages",
        "audio.volume.ringtone",
        "audio.focus.lower_priority",
        "audio.focus.duck_level",
        "audio.amplifier.enable.chip",
        "audio.amplifier.enable.line",
        "audio.amplifier.enable.active_low",
        "audio.amplifier.mute.chip",
        "audio.amplifier.mute.line",
        "audio.amplifier.mute.active_low",
        "messages.spool_directory",
        "messages.max_count",
        "messages.max_bytes",
        "messages.max_age",
        "messages.announce",
        "messages.tts_command",
        "messages.max_reply",
        "messages.companion_tcp",
        "controls.gpio_chip",
        "controls.debounce",
        "controls.long_press",
        "controls.double_press",
        "controls.buttons.name",
        "controls.buttons.line",
        "controls.buttons.active_low",
        "controls.evdev.device",
        "controls.evdev.keys",
        "controls.rotary.a",
        "controls.rotary.b",
        "controls.bindings.button",
        "controls.bindings.gesture",
        "controls.bindings.context",
        "controls.bindings.action",
        "dbus.enabled",
        "dbus.bus",
        "logging.level",
        "logging.target",
        "simulation.profile",
        "simulation.phone_name",
        "simulation.phone_address",
        "simulation.output_directory",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// Keys whose example value is not the default: they have no default, or (output_directory)
/// a default that depends on the environment.
const EXAMPLE_VALUES: &[&str] = &[
    "adapter.name",
    "pairing.allowlist",
    "pairing.legacy_pin",
    "phones",
    "audio.input_wav",
    "audio.realtime_priority",
    "audio.amplifier",
    "messages.companion_tcp",
    "controls.buttons",
    "controls.evdev.device",
    "controls.evdev.keys",
    "controls.rotary",
    "controls.bindings",
    "simulation.output_directory",
];

/// The leaf values of a TOML document by key path (array elements merged).
fn leaves(text: &str) -> Vec<(String, toml::Value)> {
    fn walk(path: String, value: &toml::Value, out: &mut Vec<(String, toml::Value)>) {
        match value {
            toml::Value::Table(table) if path != "controls.evdev.keys" => {
                for (key, value) in table {
                    let path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    walk(path, value, out);
                }
            }
            toml::Value::Array(items) if items.iter().all(toml::Value::is_table) => {
                for item in items {
                    walk(path.clone(), item, out);
                }
            }
            _ => out.push((path, value.clone())),
        }
    }
    let table: toml::Table = text.parse().unwrap();
    let mut out = Vec::new();
    walk(String::new(), &toml::Value::Table(table), &mut out);
    out
}

fn key_set(text: &str) -> BTreeSet<String> {
    leaves(text).into_iter().map(|(key, _)| key).collect()
}

/// Asserts that `text` uses exactly the schema's keys, naming the differences.
fn assert_every_key(text: &str, what: &str) {
    let found = key_set(text);
    let schema = schema_keys();
    let missing: Vec<_> = schema.difference(&found).collect();
    let extra: Vec<_> = found.difference(&schema).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing keys {missing:?}, keys not in the schema {extra:?}"
    );
}

#[test]
fn shipped_example_is_exactly_the_defaults() {
    let config = Config::load(&example_path()).unwrap();
    assert_eq!(config, Config::default());
}

#[test]
fn example_lines_follow_the_documented_convention() {
    let text = example();
    for (number, line) in text.lines().enumerate() {
        let ok = line.is_empty() || line == "#" || line.starts_with("# ") || is_option_line(line);
        assert!(
            ok,
            "line {}: {line:?} is neither prose nor an option",
            number + 1
        );
    }
    // Prose lines never look like options, so uncommenting only touches options.
    let options = text.lines().filter(|line| is_option_line(line)).count();
    assert!(options > 100, "only {options} option lines");
}

#[test]
fn uncommented_example_is_valid_and_uses_every_key() {
    let text = uncomment(&example());
    let config = Config::parse(&text, Path::new("codriver.toml (uncommented)"))
        .unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
    assert_ne!(config, Config::default());
    assert_every_key(&text, "uncommented example");
    // Lists show more than one entry, so their interplay is exercised.
    assert_eq!(config.phones.len(), 2);
    assert_eq!(config.controls.buttons.len(), 2);
    assert!(config.controls.bindings.len() > 10);
    assert!(config.controls.rotary.is_some());
    assert!(config.audio.amplifier.enable.is_some() && config.audio.amplifier.mute.is_some());
}

#[test]
fn to_toml_writes_every_key_and_reads_back() {
    let text = uncomment(&example());
    let config = Config::parse(&text, Path::new("x.toml")).unwrap();
    let rendered = config.to_toml();
    assert_every_key(&rendered, "to_toml");
    assert_eq!(
        Config::parse(&rendered, Path::new("rendered.toml")).unwrap(),
        config
    );
}

#[test]
fn example_shows_the_real_defaults() {
    let shown = Config::parse(&uncomment(&example()), Path::new("x.toml")).unwrap();
    let shown = leaves(&shown.to_toml());
    let defaults = leaves(&Config::default().to_toml());
    let mut checked = 0;
    for key in schema_keys() {
        if EXAMPLE_VALUES
            .iter()
            .any(|prefix| key == *prefix || key.starts_with(&format!("{prefix}.")))
        {
            continue;
        }
        let value = |leaves: &[(String, toml::Value)]| {
            leaves
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(value(&shown), value(&defaults), "{key}");
        checked += 1;
    }
    assert!(checked > 40, "only {checked} keys checked");
}

#[test]
fn uncommenting_a_single_table_header_with_its_options_works() {
    // A user enabling just one section by the convention.
    let text = example()
        .replace("#[dbus]", "[dbus]")
        .replace("#bus = \"system\"", "bus = \"session\"");
    let config = Config::parse(&text, Path::new("x.toml")).unwrap();
    assert_eq!(config.dbus.bus, codriver_config::BusKind::Session);
}
