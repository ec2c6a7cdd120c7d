//! Keys of an input device (`/dev/input/eventN`): steering-wheel controls through a CAN or
//! resistor-ladder interface, a Bluetooth remote, a USB keypad.
//!
//! The device is read without grabbing it, so other programs (the head unit's UI) still see
//! its keys.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ::evdev::{EventType, KeyCode};
use async_trait::async_trait;
use tokio::time::Instant;

use crate::controls::{ButtonEvent, ButtonSource, ControlError};

/// `ENODEV`: the device was unplugged.
const ENODEV: i32 = 19;

/// Key events from an evdev input device, mapped to button names.
pub struct EvdevKeys {
    path: PathBuf,
    events: ::evdev::EventStream,
    keymap: HashMap<u16, String>,
}

impl EvdevKeys {
    /// Opens the input device at `path` and reports the keys in `keys`, a map from kernel key
    /// name (`KEY_PHONE`, `BTN_0`) to button name (`phone`).
    ///
    /// Fails with [`ControlError::UnknownKey`] for a key name the kernel does not define, and
    /// [`ControlError::Device`] when the device cannot be opened (missing, or no permission:
    /// the user needs the `input` group). Must be called inside a tokio runtime.
    pub fn open(
        path: impl AsRef<Path>,
        keys: &HashMap<String, String>,
    ) -> Result<Self, ControlError> {
        let path = path.as_ref();
        let keymap = keymap(keys)?;
        let device_error = |source: std::io::Error| ControlError::Device {
            device: path.display().to_string(),
            source,
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(device_error(std::io::Error::other(
                "input devices must be opened inside a tokio runtime",
            )));
        }
        let device = ::evdev::Device::open(path).map_err(device_error)?;
        if let Some(supported) = device.supported_keys() {
            for (name, _) in keys.iter().filter(|(name, _)| {
                KeyCode::from_str(name).is_ok_and(|code| !supported.contains(code))
            }) {
                tracing::warn!(device = %path.display(), key = %name, "the device has no such key");
            }
        }
        tracing::debug!(device = %path.display(), name = device.name().unwrap_or("?"), "reading keys");
        let events = device.into_event_stream().map_err(device_error)?;
        Ok(EvdevKeys {
            path: path.to_owned(),
            events,
            keymap,
        })
    }
}

impl std::fmt::Debug for EvdevKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvdevKeys")
            .field("path", &self.path)
            .field("keymap", &self.keymap)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ButtonSource for EvdevKeys {
    fn describe(&self) -> String {
        format!("input device {}", self.path.display())
    }

    async fn next_event(&mut self) -> Result<ButtonEvent, ControlError> {
        loop {
            let event = self.events.next_event().await.map_err(|e| {
                if e.raw_os_error() == Some(ENODEV) {
                    ControlError::Ended
                } else {
                    ControlError::Device {
                        device: self.path.display().to_string(),
                        source: e,
                    }
                }
            })?;
            if let Some((button, pressed)) = map_event(
                &self.keymap,
                event.event_type(),
                event.code(),
                event.value(),
            ) {
                return Ok(ButtonEvent {
                    button: button.to_owned(),
                    pressed,
                    at: Instant::now(),
                });
            }
        }
    }
}

/// Resolves configured key names to key codes.
fn keymap(keys: &HashMap<String, String>) -> Result<HashMap<u16, String>, ControlError> {
    let mut pairs: Vec<(&String, &String)> = keys.iter().collect();
    // Report the same bad name every run, whatever the hash order.
    pairs.sort();
    pairs
        .into_iter()
        .map(|(name, button)| match KeyCode::from_str(name) {
            Ok(code) => Ok((code.code(), button.clone())),
            Err(_) => Err(ControlError::UnknownKey { name: name.clone() }),
        })
        .collect()
}

/// The button and edge an input event means: key press (value 1) or release (0) of a mapped
/// key. Autorepeat (2), other event types and unmapped keys mean nothing.
fn map_event(
    keymap: &HashMap<u16, String>,
    kind: EventType,
    code: u16,
    value: i32,
) -> Option<(&str, bool)> {
    if kind != EventType::KEY {
        return None;
    }
    let pressed = match value {
        1 => true,
        0 => false,
        _ => return None,
    };
    keymap.get(&code).map(|button| (button.as_str(), pressed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn key_names_resolve_to_codes() {
        let map = keymap(&config(&[("KEY_PHONE", "phone"), ("BTN_0", "mode")])).unwrap();
        assert_eq!(
            map.get(&KeyCode::KEY_PHONE.code()).map(String::as_str),
            Some("phone")
        );
        assert_eq!(
            map.get(&KeyCode::BTN_0.code()).map(String::as_str),
            Some("mode")
        );
    }

    #[test]
    fn steering_wheel_keys_act_as_buttons() {
        let map = keymap(&config(&[
            ("KEY_VOLUMEUP", "volume-up"),
            ("KEY_VOLUMEDOWN", "volume-down"),
            ("KEY_VOICECOMMAND", "voice"),
            ("KEY_NEXTSONG", "next"),
        ]))
        .unwrap();
        for (key, button) in [
            (KeyCode::KEY_VOLUMEUP, "volume-up"),
            (KeyCode::KEY_VOLUMEDOWN, "volume-down"),
            (KeyCode::KEY_VOICECOMMAND, "voice"),
            (KeyCode::KEY_NEXTSONG, "next"),
        ] {
            assert_eq!(
                map_event(&map, EventType::KEY, key.code(), 1),
                Some((button, true))
            );
            assert_eq!(
                map_event(&map, EventType::KEY, key.code(), 0),
                Some((button, false))
            );
        }
    }

    #[test]
    fn unknown_key_name_is_reported_by_name() {
        let err = keymap(&config(&[
            ("KEY_PHONE", "phone"),
            ("KEY_TELEPORT", "x"),
            ("phone", "y"),
        ]))
        .unwrap_err();
        // The first bad name in sorted order.
        assert!(
            matches!(&err, ControlError::UnknownKey { name } if name == "KEY_TELEPORT"),
            "{err}"
        );
        assert!(err.to_string().contains("KEY_PHONE"), "{err}");
    }

    #[test]
    fn presses_and_releases_map_repeats_and_others_do_not() {
        let map = keymap(&config(&[("KEY_PHONE", "phone")])).unwrap();
        let phone = KeyCode::KEY_PHONE.code();
        assert_eq!(
            map_event(&map, EventType::KEY, phone, 1),
            Some(("phone", true))
        );
        assert_eq!(
            map_event(&map, EventType::KEY, phone, 0),
            Some(("phone", false))
        );
        assert_eq!(
            map_event(&map, EventType::KEY, phone, 2),
            None,
            "autorepeat"
        );
        assert_eq!(
            map_event(&map, EventType::KEY, KeyCode::KEY_A.code(), 1),
            None,
            "unmapped"
        );
        assert_eq!(map_event(&map, EventType::SYNCHRONIZATION, 0, 0), None);
        assert_eq!(map_event(&map, EventType::MISC, phone, 1), None);
    }

    #[tokio::test]
    async fn missing_device_is_a_device_error() {
        let err = EvdevKeys::open("/nonexistent/event0", &config(&[("KEY_PHONE", "phone")]))
            .expect_err("no such device");
        assert!(matches!(err, ControlError::Device { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/event0"), "{err}");
    }
}
