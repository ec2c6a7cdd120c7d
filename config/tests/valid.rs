//! Valid files: defaults, every value form, and the effective config of `to_toml`.

// Helpers shared by the tests panic on failure, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use codriver_config::{
    Action, Address, AllowlistEntry, AudioBackend, BindingConfig, BindingContext, BusKind,
    ByteSize, Codec, Config, ControlsConfig, DeviceClass, Gesture, GpioPin, HfpFeature, LogTarget,
    LowerPriority, PairingPolicy, SimulationProfile,
};

fn parse(text: &str) -> Config {
    Config::parse(text, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"))
}

const FULL: &str = r#"
[adapter]
name = "hci1"
alias = "Kitt"
class = "0x240420"

[pairing]
policy = "allowlist"
window = "3min"
open_at_first_boot = false
allowlist = ["aa:bb:cc:dd:ee:01", "Alice's Pixel"]
legacy_pin = "0042"

[[phones]]
address = "AA:BB:CC:DD:EE:01"
name = "Alice"
priority = 10

[[phones]]
address = "AA:BB:CC:DD:EE:02"
auto_reconnect = false

[reconnect]
initial_backoff = "500ms"
max_backoff = "1h"
jitter = 0

[hfp]
features = ["cli", "three-way", "codec-negotiation"]
codecs = ["msbc", "cvsd", "lc3-swb"]
echo_cancellation = false
command_timeout = "2s"
announce_caller = false

[audio]
output_backend = "alsa"
output_device = "hw:1,0"
wav_directory = "/tmp/wav"
input_backend = "wav"
input_device = "plughw:1,0"
input_wav = "/tmp/mic.wav"
realtime_priority = 99

[audio.volume]
speaker = 15
mic = 0
chime = 100
messages = 0
ringtone = 55

[audio.focus]
lower_priority = "pause"
duck_level = 0

[audio.amplifier]
enable = { line = 17 }
mute = { chip = "/dev/gpiochip1", line = 3, active_low = true }

[messages]
spool_directory = "/srv/spool"
max_count = 1
max_bytes = 1048576
max_age = "12h"
announce = false
tts_command = "piper --model en_US"
max_reply = "2min"
companion_tcp = "[::1]:7420"

[controls]
gpio_chip = "/dev/gpiochip4"
debounce = "0ms"
long_press = "1s"
double_press = "250ms"

[[controls.buttons]]
name = "answer"
line = 5
active_low = false

[controls.evdev]
device = "/dev/input/event3"

[controls.evdev.keys]
KEY_VOLUMEUP = "up"
KEY_PHONE = "answer"

[controls.rotary]
a = 22
b = 23

[[controls.bindings]]
button = "answer"
gesture = "long"
context = "ringing"
action = "reject"

[[controls.bindings]]
button = "up"
gesture = "short"
action = "volume-up"

[dbus]
enabled = false
bus = "session"

[logging]
level = "codriver=debug,zbus=warn"
target = "stderr"

[simulation]
profile = "android-like"
phone_name = "Test Phone"
phone_address = "12:34:56:78:9A:BC"
output_directory = "/tmp/sim"
"#;

#[test]
fn empty_file_is_the_defaults() {
    assert_eq!(parse(""), Config::default());
    assert_eq!(parse("\n# only a comment\n\n"), Config::default());
    assert_eq!(parse("\u{feff}"), Config::default());
}

#[test]
fn empty_tables_are_the_defaults() {
    let text = "[adapter]\n[pairing]\n[reconnect]\n[hfp]\n[audio]\n[audio.volume]\n\
                [audio.focus]\n[audio.amplifier]\n[messages]\n[controls]\n[controls.evdev]\n\
                [dbus]\n[logging]\n[simulation]\n";
    assert_eq!(parse(text), Config::default());
}

#[test]
fn documented_defaults() {
    let c = Config::default();
    assert_eq!(c.adapter.name, None);
    assert_eq!(c.adapter.alias, "codriver");
    assert_eq!(c.adapter.class.get(), 0x24_0408);
    assert_eq!(c.pairing.policy, PairingPolicy::ButtonOrDbus);
    assert_eq!(c.pairing.window, Duration::from_secs(120));
    assert!(c.pairing.open_at_first_boot);
    assert!(c.phones.is_empty());
    assert_eq!(c.reconnect.initial_backoff, Duration::from_secs(2));
    assert_eq!(c.reconnect.max_backoff, Duration::from_secs(300));
    assert_eq!(c.reconnect.jitter.get(), 0.2);
    assert_eq!(c.hfp.features.len(), HfpFeature::ALL.len());
    assert_eq!(c.hfp.brsf_features(), 0x3ff);
    assert_eq!(
        c.hfp.codecs.iter().copied().collect::<Vec<_>>(),
        [Codec::Cvsd, Codec::Msbc]
    );
    assert_eq!(c.hfp.command_timeout, Duration::from_secs(5));
    assert_eq!(c.audio.output_backend, AudioBackend::SystemDefault);
    assert_eq!(c.audio.wav_directory, Path::new("/var/lib/codriver/audio"));
    assert_eq!(c.audio.volume.speaker.get(), 10);
    assert_eq!(c.audio.volume.mic.get(), 12);
    assert_eq!(c.audio.volume.chime.get(), 60);
    assert_eq!(c.audio.volume.messages.get(), 80);
    assert_eq!(c.audio.volume.ringtone.get(), 80);
    assert_eq!(c.audio.focus.lower_priority, LowerPriority::Duck);
    assert_eq!(c.audio.focus.duck_level.get(), 20);
    assert_eq!(
        c.messages.spool_directory,
        Path::new("/var/lib/codriver/spool")
    );
    assert_eq!(c.messages.max_count, 500);
    assert_eq!(c.messages.max_bytes.bytes(), 200 * 1024 * 1024);
    assert_eq!(c.messages.max_age, Duration::from_secs(30 * 86_400));
    assert_eq!(c.messages.tts_command, "espeak-ng");
    assert_eq!(c.messages.max_reply, Duration::from_secs(60));
    assert_eq!(c.controls.debounce, Duration::from_millis(20));
    assert_eq!(c.controls.long_press, Duration::from_millis(800));
    assert_eq!(c.controls.double_press, Duration::from_millis(350));
    assert_eq!(c.controls.evdev.keys.len(), 1);
    assert!(c.dbus.enabled);
    assert_eq!(c.dbus.bus, BusKind::System);
    assert_eq!(c.logging.level.as_str(), "info");
    assert_eq!(c.logging.target, LogTarget::Auto);
    assert_eq!(c.simulation.profile, SimulationProfile::IphoneLike);
    assert_eq!(c.simulation.phone_address.to_string(), "00:11:22:33:44:55");
    assert_eq!(
        c.simulation.output_directory,
        std::env::temp_dir().join("codriver-sim")
    );
}

#[test]
fn full_file_sets_every_value() {
    let c = parse(FULL);
    let address = |s: &str| s.parse::<Address>().unwrap();

    assert_eq!(c.adapter.name.as_deref(), Some("hci1"));
    assert_eq!(c.adapter.alias, "Kitt");
    assert_eq!(c.adapter.class, DeviceClass::new(0x24_0420).unwrap());

    assert_eq!(c.pairing.policy, PairingPolicy::Allowlist);
    assert_eq!(c.pairing.window, Duration::from_secs(180));
    assert!(!c.pairing.open_at_first_boot);
    assert_eq!(
        c.pairing.allowlist,
        [
            AllowlistEntry::Address(address("AA:BB:CC:DD:EE:01")),
            AllowlistEntry::Name("Alice's Pixel".to_owned()),
        ]
    );
    assert_eq!(c.pairing.legacy_pin.as_ref().unwrap().as_str(), "0042");

    assert_eq!(c.phones.len(), 2);
    assert_eq!(c.phones[0].address, address("AA:BB:CC:DD:EE:01"));
    assert_eq!(c.phones[0].name.as_deref(), Some("Alice"));
    assert_eq!(c.phones[0].priority, 10);
    assert!(c.phones[0].auto_reconnect);
    assert_eq!(c.phones[1].name, None);
    assert_eq!(c.phones[1].priority, 0);
    assert!(!c.phones[1].auto_reconnect);

    assert_eq!(c.reconnect.initial_backoff, Duration::from_millis(500));
    assert_eq!(c.reconnect.max_backoff, Duration::from_secs(3600));
    assert_eq!(c.reconnect.jitter.get(), 0.0);

    assert_eq!(
        c.hfp.features.iter().copied().collect::<Vec<_>>(),
        [
            HfpFeature::ThreeWay,
            HfpFeature::Cli,
            HfpFeature::CodecNegotiation
        ]
    );
    assert_eq!(c.hfp.brsf_features(), 0x2 | 0x4 | 0x80);
    assert_eq!(c.hfp.codecs.len(), 3);
    assert!(!c.hfp.echo_cancellation);
    assert_eq!(c.hfp.command_timeout, Duration::from_secs(2));
    assert!(!c.hfp.announce_caller);

    let a = &c.audio;
    assert_eq!(a.output_backend, AudioBackend::Alsa);
    assert_eq!(a.output_device, "hw:1,0");
    assert_eq!(a.wav_directory, Path::new("/tmp/wav"));
    assert_eq!(a.input_backend, AudioBackend::Wav);
    assert_eq!(a.input_device, "plughw:1,0");
    assert_eq!(a.input_wav.as_deref(), Some(Path::new("/tmp/mic.wav")));
    assert_eq!(a.realtime_priority.map(|p| p.get()), Some(99));
    assert_eq!(
        [
            a.volume.speaker.get(),
            a.volume.mic.get(),
            a.volume.chime.get(),
            a.volume.messages.get(),
            a.volume.ringtone.get()
        ],
        [15, 0, 100, 0, 55]
    );
    assert_eq!(a.focus.lower_priority, LowerPriority::Pause);
    assert_eq!(a.focus.duck_level.get(), 0);
    assert_eq!(
        a.amplifier.enable,
        Some(GpioPin {
            chip: PathBuf::from("/dev/gpiochip0"),
            line: "17".parse().unwrap(),
            active_low: false,
        })
    );
    assert_eq!(
        a.amplifier
            .mute
            .as_ref()
            .map(|p| (p.chip.clone(), p.line.get(), p.active_low)),
        Some((PathBuf::from("/dev/gpiochip1"), 3, true))
    );

    let m = &c.messages;
    assert_eq!(m.spool_directory, Path::new("/srv/spool"));
    assert_eq!(m.max_count, 1);
    assert_eq!(m.max_bytes, ByteSize::new(1 << 20));
    assert_eq!(m.max_age, Duration::from_secs(12 * 3600));
    assert!(!m.announce);
    assert_eq!(m.tts_command, "piper --model en_US");
    assert_eq!(m.max_reply, Duration::from_secs(120));
    assert_eq!(
        m.companion_tcp,
        Some("[::1]:7420".parse::<SocketAddr>().unwrap())
    );

    let k = &c.controls;
    assert_eq!(k.gpio_chip, Path::new("/dev/gpiochip4"));
    assert_eq!(k.debounce, Duration::ZERO);
    assert_eq!(k.long_press, Duration::from_secs(1));
    assert_eq!(k.double_press, Duration::from_millis(250));
    assert_eq!(k.buttons.len(), 1);
    assert_eq!(k.buttons[0].name.as_str(), "answer");
    assert_eq!(k.buttons[0].line.get(), 5);
    assert!(!k.buttons[0].active_low);
    assert_eq!(
        k.evdev.device.as_deref(),
        Some(Path::new("/dev/input/event3"))
    );
    let keys: BTreeMap<&str, &str> = k
        .evdev
        .keys
        .iter()
        .map(|(key, button)| (key.as_str(), button.as_str()))
        .collect();
    assert_eq!(
        keys,
        BTreeMap::from([("KEY_PHONE", "answer"), ("KEY_VOLUMEUP", "up")])
    );
    let rotary = k.rotary.as_ref().unwrap();
    assert_eq!((rotary.a.get(), rotary.b.get()), (22, 23));
    assert_eq!(k.bindings.len(), 2);
    assert_eq!(k.bindings[0].gesture, Gesture::Long);
    assert_eq!(k.bindings[0].context, BindingContext::Ringing);
    assert_eq!(k.bindings[0].action, Action::Reject);
    assert_eq!(k.bindings[1].button.as_str(), "up");
    assert_eq!(k.bindings[1].context, BindingContext::Any);
    assert_eq!(k.effective_bindings(), k.bindings);

    assert!(!c.dbus.enabled);
    assert_eq!(c.dbus.bus, BusKind::Session);
    assert_eq!(c.logging.level.as_str(), "codriver=debug,zbus=warn");
    assert_eq!(c.logging.target, LogTarget::Stderr);
    assert_eq!(c.simulation.profile, SimulationProfile::AndroidLike);
    assert_eq!(c.simulation.phone_name, "Test Phone");
    assert_eq!(c.simulation.phone_address, address("12:34:56:78:9a:bc"));
    assert_eq!(c.simulation.output_directory, Path::new("/tmp/sim"));
}

#[test]
fn full_file_round_trips_through_to_toml() {
    let config = parse(FULL);
    let text = config.to_toml();
    assert_eq!(parse(&text), config, "{text}");
}

#[test]
fn defaults_round_trip_through_to_toml() {
    let text = Config::default().to_toml();
    assert_eq!(parse(&text), Config::default(), "{text}");
    // Unset optional keys are still named, as comments.
    for unset in [
        "# name: unset",
        "# legacy_pin: unset",
        "# input_wav: unset",
        "# realtime_priority: unset",
        "# enable: unset",
        "# mute: unset",
        "# companion_tcp: unset",
        "# device: unset",
        "# [controls.rotary]: none",
        "# [[phones]]: none",
        "# bindings: none given, so the default map applies:",
    ] {
        assert!(text.contains(unset), "{unset:?} missing from\n{text}");
    }
}

#[test]
fn to_toml_is_plain_readable_toml() {
    let text = parse(FULL).to_toml();
    for line in [
        "class = 0x240420",
        "window = \"3min\"",
        "max_bytes = \"1MiB\"",
        "jitter = 0.0",
        "companion_tcp = \"[::1]:7420\"",
        "enable = { chip = \"/dev/gpiochip0\", line = 17, active_low = false }",
        "    { button = \"up\", gesture = \"short\", context = \"any\", action = \"volume-up\" },",
        "KEY_VOLUMEUP = \"up\"",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing from\n{text}"
        );
    }
}

#[test]
fn strings_are_escaped_in_to_toml() {
    let config = parse("[adapter]\nalias = \"Tom's \\\"car\\\" \\\\ kit\"\n");
    assert_eq!(config.adapter.alias, "Tom's \"car\" \\ kit");
    assert_eq!(parse(&config.to_toml()), config);
}

#[test]
fn class_of_device_as_integer_or_string() {
    for text in [
        "class = 0x240408",
        "class = \"0x240408\"",
        "class = 2360328",
    ] {
        let c = parse(&format!("[adapter]\n{text}\n"));
        assert_eq!(c.adapter.class, DeviceClass::HANDS_FREE, "{text}");
    }
}

#[test]
fn sizes_as_integer_or_with_unit() {
    for (text, bytes) in [
        ("1000", 1000),
        ("\"1000\"", 1000),
        ("\"512KiB\"", 512 * 1024),
        ("\"2GB\"", 2_000_000_000),
    ] {
        let c = parse(&format!("[messages]\nmax_bytes = {text}\n"));
        assert_eq!(c.messages.max_bytes.bytes(), bytes, "{text}");
    }
}

#[test]
fn log_levels_are_normalised_and_directives_kept() {
    assert_eq!(
        parse("[logging]\nlevel = \"DEBUG\"\n")
            .logging
            .level
            .as_str(),
        "debug"
    );
    assert_eq!(
        parse("[logging]\nlevel = \"info,codriver_hfp=trace\"\n")
            .logging
            .level
            .as_str(),
        "info,codriver_hfp=trace"
    );
}

#[test]
fn bindings_default_to_the_phone_map() {
    let c = parse("");
    assert!(c.controls.bindings.is_empty());
    let map = c.controls.effective_bindings();
    assert_eq!(map, ControlsConfig::default_bindings());
    let lookup = |gesture, context| {
        map.iter()
            .find(|b| b.gesture == gesture && b.context == context)
            .map(|b| b.action)
    };
    assert!(map.iter().all(|b| b.button.as_str() == "phone"));
    assert_eq!(
        lookup(Gesture::Short, BindingContext::Ringing),
        Some(Action::Answer)
    );
    assert_eq!(
        lookup(Gesture::Short, BindingContext::InCall),
        Some(Action::Hangup)
    );
    assert_eq!(
        lookup(Gesture::Short, BindingContext::MessageWaiting),
        Some(Action::PlayNextMessage)
    );
    assert_eq!(
        lookup(Gesture::Short, BindingContext::Idle),
        Some(Action::VoiceAssistant)
    );
    assert_eq!(
        lookup(Gesture::Long, BindingContext::Ringing),
        Some(Action::Reject)
    );
    assert_eq!(
        lookup(Gesture::Long, BindingContext::Idle),
        Some(Action::OpenPairingWindow)
    );
    assert_eq!(
        lookup(Gesture::Long, BindingContext::Playing),
        Some(Action::RecordReply)
    );
    assert_eq!(
        lookup(Gesture::Double, BindingContext::CallWaiting),
        Some(Action::Swap)
    );
    assert_eq!(
        lookup(Gesture::Double, BindingContext::Idle),
        Some(Action::Replay)
    );
    // No gesture is bound twice in one context.
    let mut keys: Vec<_> = map.iter().map(|b| (b.gesture, b.context)).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), map.len());
}

#[test]
fn default_map_survives_a_file_without_a_phone_button() {
    // No button is called "phone" any more, and there are no bindings: the default map is kept
    // (and does nothing); the effective config still reads back.
    let c = parse("[controls.evdev.keys]\nKEY_VOICECOMMAND = \"voice\"\n");
    assert!(c.controls.bindings.is_empty());
    assert_eq!(parse(&c.to_toml()), c);
}

#[test]
fn bindings_may_name_evdev_targets_and_gpio_buttons() {
    let c = parse(
        "[[controls.buttons]]\nname = \"wheel\"\nline = 4\n\
         [controls.evdev.keys]\nKEY_NEXTSONG = \"next\"\n\
         [[controls.bindings]]\nbutton = \"wheel\"\ngesture = \"double\"\naction = \"swap\"\n\
         [[controls.bindings]]\nbutton = \"next\"\ngesture = \"short\"\ncontext = \"playing\"\n\
         action = \"skip\"\n",
    );
    assert_eq!(
        c.controls.bindings[1],
        BindingConfig {
            button: "next".parse().unwrap(),
            gesture: Gesture::Short,
            context: BindingContext::Playing,
            action: Action::Skip,
        }
    );
}

#[test]
fn load_reads_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("codriver.toml");
    std::fs::write(&path, "\u{feff}[audio.volume]\r\nspeaker = 7\r\n").unwrap();
    let c = Config::load(&path).unwrap();
    assert_eq!(c.audio.volume.speaker.get(), 7);
}
