//! Every kind of invalid file, with the exact message `codriverd --check-config` prints: file,
//! line, column, key path, and what would be valid.

// Helpers shared by the tests panic on failure, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use codriver_config::{Config, ConfigError, ConfigErrorKind};

const FILE: &str = "/etc/codriver/codriver.toml";

fn error(text: &str) -> ConfigError {
    match Config::parse(text, Path::new(FILE)) {
        Ok(config) => panic!("accepted {text:?} as {config:#?}"),
        Err(error) => error,
    }
}

/// Asserts the whole message, which starts with `FILE:`.
#[track_caller]
fn assert_error(text: &str, expected: &str) {
    assert_eq!(error(text).to_string(), format!("{FILE}:{expected}"));
}

// --- TOML syntax -----------------------------------------------------------------------------

#[test]
fn syntax_error() {
    let e = error("[pairing]\nwindow = \"2s\"\n[audio\n");
    assert_eq!(
        e.to_string(),
        format!("{FILE}:3:7: invalid TOML: invalid table header, expected `.`, `]`")
    );
    assert!(matches!(e.kind(), ConfigErrorKind::Syntax { .. }));
    assert_eq!(
        (e.line(), e.column(), e.key_path()),
        (Some(3), Some(7), None)
    );
    assert_eq!(e.file(), Path::new(FILE));
}

#[test]
fn syntax_error_unterminated_string() {
    assert_error(
        "[adapter]\nalias = \"codriver\n",
        "2:18: invalid TOML: invalid basic string",
    );
}

#[test]
fn key_defined_twice() {
    assert_error(
        "[pairing]\nwindow = \"2s\"\nwindow = \"3s\"\n",
        "3:1: invalid TOML: duplicate key `window` in table `pairing`",
    );
}

// --- Unknown keys ----------------------------------------------------------------------------

#[test]
fn unknown_key_at_top_level() {
    let e = error("colour = \"red\"\n");
    assert_eq!(
        e.to_string(),
        format!(
            "{FILE}:1:1: colour: unknown key, expected one of: adapter, pairing, phones, \
             reconnect, hfp, audio, messages, controls, dbus, logging, simulation"
        )
    );
    match e.kind() {
        ConfigErrorKind::UnknownKey { key, expected } => {
            assert_eq!(key, "colour");
            assert_eq!(expected.len(), 11);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.key_path(), Some("colour"));
}

#[test]
fn unknown_table_at_top_level() {
    assert_error(
        "[adapter]\nalias = \"x\"\n\n[equalizer]\nbass = 3\n",
        "4:2: equalizer: unknown key, expected one of: adapter, pairing, phones, reconnect, \
         hfp, audio, messages, controls, dbus, logging, simulation",
    );
}

#[test]
fn unknown_key_nested() {
    assert_error(
        "[pairing]\nwindw = \"2s\"\n",
        "2:1: pairing.windw: unknown key, expected one of: policy, window, open_at_first_boot, \
         allowlist, legacy_pin",
    );
}

#[test]
fn unknown_key_two_levels_down() {
    assert_error(
        "[audio.volume]\nspeaker = 3\nloudness = 4\n",
        "3:1: audio.volume.loudness: unknown key, expected one of: speaker, mic, chime, \
         messages, ringtone",
    );
}

#[test]
fn unknown_key_in_array_of_tables() {
    assert_error(
        "[[phones]]\naddress = \"AA:BB:CC:DD:EE:01\"\n\n[[phones]]\naddress = \
         \"AA:BB:CC:DD:EE:02\"\ncolour = \"red\"\n",
        "6:1: phones[1].colour: unknown key, expected one of: address, name, priority, \
         auto_reconnect",
    );
}

#[test]
fn unknown_key_in_inline_table() {
    assert_error(
        "[audio.amplifier]\nenable = { line = 17, polarity = \"low\" }\n",
        "2:23: audio.amplifier.enable.polarity: unknown key, expected one of: chip, line, \
         active_low",
    );
}

#[test]
fn unknown_key_in_dotted_form() {
    assert_error(
        "audio.volume.bass = 3\n",
        "1:14: audio.volume.bass: unknown key, expected one of: speaker, mic, chime, messages, \
         ringtone",
    );
}

// --- Missing required keys -------------------------------------------------------------------

#[test]
fn phone_without_address() {
    let e = error("[[phones]]\nname = \"Alice\"\n");
    assert_eq!(
        e.to_string(),
        format!("{FILE}:1:1: phones[0].address: missing required key")
    );
    assert!(matches!(e.kind(), ConfigErrorKind::MissingKey { key } if key == "address"));
}

#[test]
fn binding_without_gesture() {
    assert_error(
        "[[controls.bindings]]\nbutton = \"phone\"\naction = \"answer\"\n",
        "1:1: controls.bindings[0].gesture: missing required key",
    );
}

#[test]
fn amplifier_pin_without_line() {
    assert_error(
        "[audio.amplifier]\nmute = { chip = \"/dev/gpiochip1\" }\n",
        "2:8: audio.amplifier.mute.line: missing required key",
    );
}

// --- Wrong types -----------------------------------------------------------------------------

#[test]
fn wrong_type_bool() {
    let e = error("[dbus]\nenabled = \"yes\"\n");
    assert_eq!(
        e.to_string(),
        format!("{FILE}:2:11: dbus.enabled: invalid type: string \"yes\", expected a boolean")
    );
    assert!(matches!(e.kind(), ConfigErrorKind::InvalidValue { .. }));
}

#[test]
fn wrong_type_volume() {
    assert_error(
        "[audio.volume]\nspeaker = \"loud\"\n",
        "2:11: audio.volume.speaker: invalid type: string \"loud\", expected an integer from 0 \
         to 15",
    );
}

#[test]
fn wrong_type_table() {
    assert_error(
        "pairing = \"button\"\n",
        "1:11: pairing: invalid type: string \"button\", expected a table",
    );
}

#[test]
fn wrong_type_array() {
    assert_error(
        "[hfp]\ncodecs = \"cvsd\"\n",
        "2:10: hfp.codecs: invalid type: string \"cvsd\", expected an array",
    );
}

#[test]
fn wrong_type_enum() {
    assert_error(
        "[logging]\ntarget = 1\n",
        "2:10: logging.target: invalid type: integer `1`, expected one of \"auto\", \
         \"journald\", \"stderr\"",
    );
}

#[test]
fn wrong_type_pin_as_integer() {
    assert_error(
        "[audio.amplifier]\nenable = 17\n",
        "2:10: audio.amplifier.enable: invalid type: integer `17`, expected a pin such as { \
         chip = \"/dev/gpiochip0\", line = 17 }",
    );
}

#[test]
fn legacy_pin_must_be_quoted() {
    assert_error(
        "[pairing]\nlegacy_pin = 1234\n",
        "2:14: pairing.legacy_pin: invalid type: integer `1234`, expected a quoted string of 4 \
         to 16 digits, e.g. \"0000\"",
    );
}

// --- Out of range ----------------------------------------------------------------------------

#[test]
fn volume_out_of_range() {
    assert_error(
        "[audio.volume]\nspeaker = 16\n",
        "2:11: audio.volume.speaker: invalid volume 16: expected an integer from 0 to 15",
    );
    assert_error(
        "[audio.volume]\nmic = -1\n",
        "2:7: audio.volume.mic: invalid volume -1: expected an integer from 0 to 15",
    );
}

#[test]
fn percentage_out_of_range() {
    assert_error(
        "[audio.focus]\nduck_level = 101\n",
        "2:14: audio.focus.duck_level: invalid percentage 101: expected an integer from 0 to \
         100",
    );
}

#[test]
fn realtime_priority_out_of_range() {
    assert_error(
        "[audio]\nrealtime_priority = 0\n",
        "2:21: audio.realtime_priority: invalid realtime priority 0: expected an integer from 1 \
         to 99",
    );
}

#[test]
fn phone_priority_out_of_range() {
    assert_error(
        "[[phones]]\naddress = \"AA:BB:CC:DD:EE:FF\"\npriority = 300\n",
        "3:12: phones[0].priority: invalid value 300: expected an integer from 0 to 255",
    );
}

#[test]
fn max_count_zero() {
    assert_error(
        "[messages]\nmax_count = 0\n",
        "2:13: messages.max_count: invalid value 0: expected an integer from 1 to 4294967295",
    );
}

#[test]
fn jitter_out_of_range() {
    assert_error(
        "[reconnect]\njitter = 1.5\n",
        "2:10: reconnect.jitter: invalid fraction 1.5: expected a number from 0.0 to 1.0",
    );
}

#[test]
fn negative_gpio_line() {
    assert_error(
        "[[controls.buttons]]\nname = \"phone\"\nline = -3\n",
        "3:8: controls.buttons[0].line: invalid GPIO line -3: expected a line number (0 or \
         more)",
    );
}

// --- Durations and sizes ---------------------------------------------------------------------

#[test]
fn bad_duration() {
    let e = error("[pairing]\nwindow = \"soon\"\n");
    assert_eq!(
        e.to_string(),
        format!(
            "{FILE}:2:10: pairing.window: invalid duration \"soon\": expected a number followed \
             by ms, s, min, h or d (e.g. \"90s\")"
        )
    );
    assert_eq!(e.key_path(), Some("pairing.window"));
    assert_eq!((e.line(), e.column()), (Some(2), Some(10)));
}

#[test]
fn negative_duration() {
    assert_error(
        "[controls]\ndebounce = \"-5ms\"\n",
        "2:12: controls.debounce: invalid duration \"-5ms\": expected a number followed by ms, \
         s, min, h or d (e.g. \"90s\")",
    );
}

#[test]
fn duration_without_unit() {
    assert_error(
        "[pairing]\nwindow = 120\n",
        "2:10: pairing.window: invalid type: integer `120`, expected a duration such as \"90s\"",
    );
}

#[test]
fn zero_duration_where_positive_is_needed() {
    assert_error(
        "[hfp]\ncommand_timeout = \"0s\"\n",
        "2:19: hfp.command_timeout: invalid duration \"0s\": expected a duration longer than \
         zero",
    );
}

#[test]
fn bad_size() {
    assert_error(
        "[messages]\nmax_bytes = \"lots\"\n",
        "2:13: messages.max_bytes: invalid size \"lots\": expected a number of bytes or a number \
         followed by B, KB, MB, GB, TB, KiB, MiB, GiB or TiB (e.g. \"200MiB\")",
    );
    assert_error(
        "[messages]\nmax_bytes = 0\n",
        "2:13: messages.max_bytes: invalid size 0: expected a size larger than zero",
    );
}

// --- Addresses and names ---------------------------------------------------------------------

#[test]
fn bad_bluetooth_address() {
    assert_error(
        "[[phones]]\naddress = \"AA:BB:CC:DD:EE\"\n",
        "2:11: phones[0].address: invalid Bluetooth address \"AA:BB:CC:DD:EE\": expected six \
         two-digit hex numbers separated by colons (e.g. \"AA:BB:CC:DD:EE:FF\")",
    );
    assert_error(
        "[simulation]\nphone_address = \"00:11:22:33:44:GG\"\n",
        "2:17: simulation.phone_address: invalid Bluetooth address \"00:11:22:33:44:GG\": \
         expected six two-digit hex numbers separated by colons (e.g. \"AA:BB:CC:DD:EE:FF\")",
    );
}

#[test]
fn bad_address_in_allowlist() {
    assert_error(
        "[pairing]\nallowlist = [\"Alice\", \"AA:BB:CC:DD:EE:XX\"]\n",
        "2:23: pairing.allowlist[1]: invalid Bluetooth address \"AA:BB:CC:DD:EE:XX\": expected \
         six two-digit hex numbers separated by colons (e.g. \"AA:BB:CC:DD:EE:FF\")",
    );
}

#[test]
fn bad_class_of_device() {
    assert_error(
        "[adapter]\nclass = 0x1000000\n",
        "2:9: adapter.class: invalid class of device 0x1000000: expected a 24-bit number whose \
         two lowest bits are 0, e.g. 0x240408",
    );
    assert_error(
        "[adapter]\nclass = \"0x240409\"\n",
        "2:9: adapter.class: invalid class of device \"0x240409\": expected a 24-bit number \
         whose two lowest bits are 0, e.g. 0x240408",
    );
}

#[test]
fn bad_adapter_name_and_alias() {
    assert_error(
        "[adapter]\nname = \"wlan0\"\n",
        "2:8: adapter.name: invalid adapter name \"wlan0\": expected a BlueZ adapter name such \
         as \"hci0\"",
    );
    assert_error(
        "[adapter]\nalias = \"\"\n",
        "2:9: adapter.alias: invalid alias \"\": expected a name of 1 to 248 bytes",
    );
}

#[test]
fn bad_legacy_pin() {
    assert_error(
        "[pairing]\nlegacy_pin = \"12\"\n",
        "2:14: pairing.legacy_pin: invalid PIN \"12\": expected 4 to 16 digits",
    );
}

#[test]
fn non_loopback_companion_address() {
    assert_error(
        "[messages]\ncompanion_tcp = \"0.0.0.0:7420\"\n",
        "2:17: messages.companion_tcp: invalid listen address \"0.0.0.0:7420\": the development \
         transport only listens on loopback (127.0.0.1 or [::1])",
    );
    assert_error(
        "[messages]\ncompanion_tcp = \"localhost\"\n",
        "2:17: messages.companion_tcp: invalid listen address \"localhost\": expected a loopback \
         address and port such as \"127.0.0.1:7420\"",
    );
}

#[test]
fn empty_path() {
    assert_error(
        "[messages]\nspool_directory = \"\"\n",
        "2:19: messages.spool_directory: invalid path \"\": expected a file or directory path",
    );
}

#[test]
fn bad_log_level() {
    assert_error(
        "[logging]\nlevel = \"verbose\"\n",
        "2:9: logging.level: invalid log level \"verbose\": expected one of \"trace\", \
         \"debug\", \"info\", \"warn\", \"error\", \"off\", or a filter directive such as \
         \"codriver=debug,zbus=warn\"",
    );
}

#[test]
fn bad_evdev_key_and_button_name() {
    assert_error(
        "[controls.evdev.keys]\nphone = \"phone\"\n",
        "2:1: controls.evdev.keys.phone: invalid evdev key \"phone\": expected a Linux key name \
         such as \"KEY_PHONE\" or \"BTN_0\"",
    );
    assert_error(
        "[controls.evdev.keys]\nKEY_PHONE = \"the phone\"\n",
        "2:13: controls.evdev.keys.KEY_PHONE: invalid button name \"the phone\": expected 1 to \
         32 letters, digits, \"-\" or \"_\" (e.g. \"phone\")",
    );
}

// --- Enums -----------------------------------------------------------------------------------

#[test]
fn bad_enum_value_lists_the_valid_ones() {
    assert_error(
        "[pairing]\npolicy = \"magic\"\n",
        "2:10: pairing.policy: invalid pairing policy \"magic\": expected one of \"button\", \
         \"dbus\", \"button-or-dbus\", \"allowlist\"",
    );
}

#[test]
fn bad_enum_in_a_list() {
    assert_error(
        "[hfp]\ncodecs = [\"cvsd\", \"aac\"]\n",
        "2:19: hfp.codecs[1]: invalid codec \"aac\": expected one of \"cvsd\", \"msbc\", \
         \"lc3-swb\"",
    );
    assert_error(
        "[hfp]\nfeatures = [\"telepathy\"]\n",
        "2:13: hfp.features[0]: invalid HFP feature \"telepathy\": expected one of \"ec-nr\", \
         \"three-way\", \"cli\", \"voice-recognition\", \"remote-volume\", \
         \"enhanced-call-status\", \"enhanced-call-control\", \"codec-negotiation\", \
         \"hf-indicators\", \"esco-s4\"",
    );
}

#[test]
fn bad_enum_in_a_binding() {
    let binding = |gesture: &str, context: &str, action: &str| {
        format!(
            "[[controls.bindings]]\nbutton = \"phone\"\ngesture = \"{gesture}\"\ncontext = \
             \"{context}\"\naction = \"{action}\"\n"
        )
    };
    assert_error(
        &binding("triple", "any", "answer"),
        "3:11: controls.bindings[0].gesture: invalid gesture \"triple\": expected one of \
         \"short\", \"long\", \"double\"",
    );
    assert_error(
        &binding("short", "driving", "answer"),
        "4:11: controls.bindings[0].context: invalid context \"driving\": expected one of \
         \"idle\", \"ringing\", \"in-call\", \"call-waiting\", \"message-waiting\", \
         \"playing\", \"recording\", \"pairing-window\", \"any\"",
    );
    assert_error(
        &binding("short", "any", "explode"),
        "5:10: controls.bindings[0].action: invalid action \"explode\": expected one of \
         \"answer\", \"reject\", \"hangup\", \"swap\", \"hold\", \"voice-assistant\", \
         \"play-next-message\", \"replay\", \"skip\", \"stop\", \"record-reply\", \
         \"send-reply\", \"cancel-reply\", \"volume-up\", \"volume-down\", \
         \"open-pairing-window\", \"confirm-pairing\", \"reject-pairing\"",
    );
}

#[test]
fn bad_audio_backend() {
    assert_error(
        "[audio]\noutput_backend = \"pulse\"\n",
        "2:18: audio.output_backend: invalid audio backend \"pulse\": expected one of \
         \"default\", \"alsa\", \"wav\", \"null\"",
    );
}

// --- Checks across values --------------------------------------------------------------------

#[test]
fn duplicate_phone_address() {
    let e = error(
        "[[phones]]\naddress = \"AA:BB:CC:DD:EE:FF\"\n\n[[phones]]\naddress = \
         \"aa:bb:cc:dd:ee:ff\"\n",
    );
    assert_eq!(
        e.to_string(),
        format!(
            "{FILE}:5:11: phones[1].address: duplicate phone address AA:BB:CC:DD:EE:FF: already \
             listed at phones[0] (line 2)"
        )
    );
    assert!(matches!(e.kind(), ConfigErrorKind::Conflict { .. }));
}

#[test]
fn binding_names_an_unknown_button() {
    let e = error(
        "[[controls.buttons]]\nname = \"voice\"\nline = 5\n\n[[controls.bindings]]\nbutton = \
         \"horn\"\ngesture = \"short\"\naction = \"answer\"\n",
    );
    assert_eq!(
        e.to_string(),
        format!(
            "{FILE}:6:10: controls.bindings[0].button: unknown button \"horn\": expected one of \
             \"phone\", \"voice\" (from [[controls.buttons]] and [controls.evdev.keys])"
        )
    );
    assert!(matches!(e.kind(), ConfigErrorKind::Conflict { .. }));
}

#[test]
fn binding_without_any_button_defined() {
    assert_error(
        "[controls.evdev.keys]\n\n[[controls.bindings]]\nbutton = \"phone\"\ngesture = \
         \"short\"\naction = \"answer\"\n",
        "4:10: controls.bindings[0].button: unknown button \"phone\": no buttons are defined; \
         add [[controls.buttons]] or [controls.evdev.keys]",
    );
}

#[test]
fn binding_bound_twice() {
    assert_error(
        "[[controls.bindings]]\nbutton = \"phone\"\ngesture = \"short\"\naction = \
         \"answer\"\n[[controls.bindings]]\nbutton = \"phone\"\ngesture = \"short\"\ncontext = \
         \"any\"\naction = \"hangup\"\n",
        "6:10: controls.bindings[1]: \"phone\" short in context \"any\" is already bound by \
         controls.bindings[0] (line 2)",
    );
}

#[test]
fn duplicate_button_name() {
    assert_error(
        "[[controls.buttons]]\nname = \"a\"\nline = 1\n[[controls.buttons]]\nname = \
         \"a\"\nline = 2\n",
        "5:8: controls.buttons[1].name: duplicate button name \"a\": already used by \
         controls.buttons[0] (line 2)",
    );
}

#[test]
fn gpio_line_used_twice() {
    assert_error(
        "[audio.amplifier]\nenable = { line = 17 }\n\n[[controls.buttons]]\nname = \
         \"phone\"\nline = 17\n",
        "6:8: controls.buttons[0].line: GPIO line 17 of /dev/gpiochip0 is already used by \
         audio.amplifier.enable.line (line 2)",
    );
    assert_error(
        "[controls.rotary]\na = 5\nb = 5\n",
        "3:5: controls.rotary.b: GPIO line 5 of /dev/gpiochip0 is already used by \
         controls.rotary.a (line 2)",
    );
}

#[test]
fn same_line_number_on_different_chips_is_fine() {
    let text = "[audio.amplifier]\nenable = { chip = \"/dev/gpiochip1\", line = 17 \
                }\n\n[[controls.buttons]]\nname = \"phone\"\nline = 17\n";
    assert!(Config::parse(text, Path::new(FILE)).is_ok());
}

#[test]
fn codecs_without_cvsd() {
    assert_error(
        "[hfp]\ncodecs = [\"msbc\"]\n",
        "2:10: hfp.codecs: \"cvsd\" is mandatory in HFP and must be listed",
    );
}

#[test]
fn codec_listed_twice() {
    assert_error(
        "[hfp]\ncodecs = [\"cvsd\", \"msbc\", \"cvsd\"]\n",
        "2:27: hfp.codecs[2]: \"cvsd\" is listed twice",
    );
}

#[test]
fn wideband_codec_without_codec_negotiation() {
    assert_error(
        "[hfp]\nfeatures = [\"cli\", \"three-way\"]\n",
        "2:12: hfp.features: codecs other than \"cvsd\" need the \"codec-negotiation\" feature",
    );
    // Fine with narrowband only.
    let text = "[hfp]\nfeatures = [\"cli\"]\ncodecs = [\"cvsd\"]\n";
    assert!(Config::parse(text, Path::new(FILE)).is_ok());
}

#[test]
fn allowlist_policy_needs_entries() {
    assert_error(
        "[pairing]\npolicy = \"allowlist\"\n",
        "2:10: pairing.policy: policy \"allowlist\" needs at least one entry in \
         pairing.allowlist",
    );
}

#[test]
fn max_backoff_shorter_than_initial() {
    assert_error(
        "[reconnect]\ninitial_backoff = \"10min\"\n",
        "2:19: reconnect.initial_backoff: max_backoff (5min) must not be shorter than \
         initial_backoff (10min)",
    );
    assert_error(
        "[reconnect]\nmax_backoff = \"1s\"\n",
        "2:15: reconnect.max_backoff: max_backoff (1s) must not be shorter than \
         initial_backoff (2s)",
    );
}

#[test]
fn press_timing_shorter_than_debounce() {
    assert_error(
        "[controls]\ndebounce = \"1s\"\n",
        "2:12: controls.debounce: long_press (800ms) must be longer than debounce (1s)",
    );
    assert_error(
        "[controls]\ndouble_press = \"10ms\"\n",
        "2:16: controls.double_press: double_press (10ms) must be longer than debounce (20ms)",
    );
}

// --- Files and encodings ---------------------------------------------------------------------

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let e = Config::load(&path).unwrap_err();
    assert!(
        matches!(e.kind(), ConfigErrorKind::Io(io) if io.kind() == std::io::ErrorKind::NotFound)
    );
    assert_eq!(e.file(), path);
    assert_eq!((e.line(), e.column(), e.key_path()), (None, None, None));
    assert!(
        e.to_string().starts_with(&format!(
            "{}: cannot read the config file: ",
            path.display()
        )),
        "{e}"
    );
}

#[test]
fn file_that_is_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.toml");
    std::fs::write(&path, b"[adapter]\nalias = \"caf\xe9\"\n").unwrap();
    let e = Config::load(&path).unwrap_err();
    assert!(matches!(e.kind(), ConfigErrorKind::Io(_)), "{e}");
}

#[test]
fn error_from_a_loaded_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("codriver.toml");
    std::fs::write(&path, "[audio.volume]\nspeaker = 99\n").unwrap();
    let e = Config::load(&path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:2:11: audio.volume.speaker: invalid volume 99: expected an integer from 0 to 15",
            path.display()
        )
    );
}

#[test]
fn locations_with_byte_order_mark_and_crlf() {
    assert_error(
        "\u{feff}[pairing]\r\nwindow = \"soon\"\r\n",
        "2:10: pairing.window: invalid duration \"soon\": expected a number followed by ms, s, \
         min, h or d (e.g. \"90s\")",
    );
    assert_error(
        "\u{feff}colour = 1\n",
        "1:1: colour: unknown key, expected one of: adapter, pairing, phones, reconnect, hfp, \
         audio, messages, controls, dbus, logging, simulation",
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    assert_error(
        "[adapter]\nalias = \"Café\"\n[audio.volume]\nspeaker = 16 # très fort\n",
        "4:11: audio.volume.speaker: invalid volume 16: expected an integer from 0 to 15",
    );
    assert_error(
        "[[phones]]\naddress = \"AA:BB:CC:DD:EE:01\"\nname = \"Zoë\"; priority = 1\n",
        "3:13: invalid TOML: expected newline, `#`",
    );
}
