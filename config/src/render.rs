//! [`Config::to_toml`]: the effective configuration, every key, as TOML that parses back to the
//! same `Config`.

use std::fmt::{Display, Write as _};
use std::path::Path;

use crate::Config;
use crate::sections::{BindingConfig, GpioPin, PhoneConfig};
use crate::types::format_duration;

/// Writes `config` as TOML. Unset optional keys are written as comments saying what unset
/// means, so the output still names every key.
pub(crate) fn to_toml(config: &Config) -> String {
    let mut w = Writer(String::new());
    w.line("# codriver effective configuration: every key, defaults filled in.");

    let a = &config.adapter;
    w.table("adapter");
    w.optional(
        "name",
        a.name.as_deref().map(quote),
        "BlueZ's default adapter",
    );
    w.key("alias", quote(&a.alias));
    w.key("class", a.class);

    let p = &config.pairing;
    w.table("pairing");
    w.key("policy", quote(p.policy.as_str()));
    w.key("window", quote(&format_duration(p.window)));
    w.key("open_at_first_boot", p.open_at_first_boot);
    w.key(
        "allowlist",
        list(p.allowlist.iter().map(|e| quote(&e.to_string()))),
    );
    w.optional(
        "legacy_pin",
        p.legacy_pin.as_ref().map(|pin| quote(pin.as_str())),
        "legacy pairing is refused",
    );

    if config.phones.is_empty() {
        w.line("\n# [[phones]]: none");
    }
    for phone in &config.phones {
        phone_table(&mut w, phone);
    }

    let r = &config.reconnect;
    w.table("reconnect");
    w.key(
        "initial_backoff",
        quote(&format_duration(r.initial_backoff)),
    );
    w.key("max_backoff", quote(&format_duration(r.max_backoff)));
    w.key("jitter", r.jitter);

    let h = &config.hfp;
    w.table("hfp");
    w.key(
        "features",
        list(h.features.iter().map(|f| quote(f.as_str()))),
    );
    w.key("codecs", list(h.codecs.iter().map(|c| quote(c.as_str()))));
    w.key("echo_cancellation", h.echo_cancellation);
    w.key(
        "command_timeout",
        quote(&format_duration(h.command_timeout)),
    );
    w.key("announce_caller", h.announce_caller);

    let au = &config.audio;
    w.table("audio");
    w.key("output_backend", quote(au.output_backend.as_str()));
    w.key("output_device", quote(&au.output_device));
    w.key("wav_directory", quote_path(&au.wav_directory));
    w.key("input_backend", quote(au.input_backend.as_str()));
    w.key("input_device", quote(&au.input_device));
    w.optional(
        "input_wav",
        au.input_wav.as_deref().map(quote_path),
        "the wav input backend records silence",
    );
    w.optional(
        "realtime_priority",
        au.realtime_priority.map(|p| p.to_string()),
        "normal scheduling",
    );
    w.table("audio.volume");
    w.key("speaker", au.volume.speaker);
    w.key("mic", au.volume.mic);
    w.key("chime", au.volume.chime);
    w.key("messages", au.volume.messages);
    w.key("ringtone", au.volume.ringtone);
    w.table("audio.focus");
    w.key("lower_priority", quote(au.focus.lower_priority.as_str()));
    w.key("duck_level", au.focus.duck_level);
    w.table("audio.amplifier");
    w.optional(
        "enable",
        au.amplifier.enable.as_ref().map(pin),
        "no enable pin",
    );
    w.optional("mute", au.amplifier.mute.as_ref().map(pin), "no mute pin");

    let m = &config.messages;
    w.table("messages");
    w.key("spool_directory", quote_path(&m.spool_directory));
    w.key("max_count", m.max_count);
    w.key("max_bytes", quote(&m.max_bytes.to_string()));
    w.key("max_age", quote(&format_duration(m.max_age)));
    w.key("announce", m.announce);
    w.key("tts_command", quote(&m.tts_command));
    w.key("max_reply", quote(&format_duration(m.max_reply)));
    w.optional(
        "companion_tcp",
        m.companion_tcp.map(|a| quote(&a.to_string())),
        "the development TCP transport is off",
    );

    let c = &config.controls;
    w.table("controls");
    w.key("gpio_chip", quote_path(&c.gpio_chip));
    w.key("debounce", quote(&format_duration(c.debounce)));
    w.key("long_press", quote(&format_duration(c.long_press)));
    w.key("double_press", quote(&format_duration(c.double_press)));
    w.key(
        "buttons",
        table_list(c.buttons.iter().map(|b| {
            format!(
                "{{ name = {}, line = {}, active_low = {} }}",
                quote(b.name.as_str()),
                b.line,
                b.active_low
            )
        })),
    );
    if c.bindings.is_empty() {
        w.line("# bindings: none given, so the default map applies:");
        for binding in crate::sections::ControlsConfig::default_bindings() {
            w.line(&format!("#   {}", binding_table(&binding)));
        }
    } else {
        w.key("bindings", table_list(c.bindings.iter().map(binding_table)));
    }
    w.table("controls.evdev");
    w.optional(
        "device",
        c.evdev.device.as_deref().map(quote_path),
        "no evdev keys are read",
    );
    w.table("controls.evdev.keys");
    for (key, button) in &c.evdev.keys {
        w.key(key.as_str(), quote(button.as_str()));
    }
    match &c.rotary {
        Some(rotary) => {
            w.table("controls.rotary");
            w.key("a", rotary.a);
            w.key("b", rotary.b);
        }
        None => w.line("\n# [controls.rotary]: none"),
    }

    let d = &config.dbus;
    w.table("dbus");
    w.key("enabled", d.enabled);
    w.key("bus", quote(d.bus.as_str()));

    let l = &config.logging;
    w.table("logging");
    w.key("level", quote(l.level.as_str()));
    w.key("target", quote(l.target.as_str()));

    let s = &config.simulation;
    w.table("simulation");
    w.key("profile", quote(s.profile.as_str()));
    w.key("phone_name", quote(&s.phone_name));
    w.key("phone_address", quote(&s.phone_address.to_string()));
    w.key("output_directory", quote_path(&s.output_directory));

    w.0
}

fn phone_table(w: &mut Writer, phone: &PhoneConfig) {
    w.line("\n[[phones]]");
    w.key("address", quote(&phone.address.to_string()));
    w.optional(
        "name",
        phone.name.as_deref().map(quote),
        "the name the phone presents",
    );
    w.key("priority", phone.priority);
    w.key("auto_reconnect", phone.auto_reconnect);
}

fn binding_table(b: &BindingConfig) -> String {
    format!(
        "{{ button = {}, gesture = {}, context = {}, action = {} }}",
        quote(b.button.as_str()),
        quote(b.gesture.as_str()),
        quote(b.context.as_str()),
        quote(b.action.as_str()),
    )
}

fn pin(pin: &GpioPin) -> String {
    format!(
        "{{ chip = {}, line = {}, active_low = {} }}",
        quote_path(&pin.chip),
        pin.line,
        pin.active_low
    )
}

/// A TOML basic string, escaped as needed.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn quote_path(path: &Path) -> String {
    quote(&path.to_string_lossy())
}

/// `["a", "b"]` on one line.
fn list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
}

/// An array of inline tables, one per line.
fn table_list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        return "[]".to_owned();
    }
    let mut out = String::from("[\n");
    for item in items {
        let _ = writeln!(out, "    {item},");
    }
    out.push(']');
    out
}

struct Writer(String);

impl Writer {
    fn line(&mut self, line: &str) {
        self.0.push_str(line);
        self.0.push('\n');
    }

    fn table(&mut self, name: &str) {
        let _ = write!(self.0, "\n[{name}]\n");
    }

    fn key(&mut self, key: &str, value: impl Display) {
        let _ = writeln!(self.0, "{key} = {value}");
    }

    fn optional(&mut self, key: &str, value: Option<String>, unset: &str) {
        match value {
            Some(value) => self.key(key, value),
            None => {
                let _ = writeln!(self.0, "# {key}: unset ({unset})");
            }
        }
    }
}
