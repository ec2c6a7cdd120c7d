//! Real hardware on Linux: BlueZ, ALSA, GPIO character devices, evdev (the `linux` feature).
//!
//! What each backend needs from the system:
//!
//! * [`bluetooth`] — bluetoothd on the system bus (BlueZ 5.60 or later to be told when
//!   another program holds a profile's UUID; Debian 12 ships 5.66), and a D-Bus policy
//!   letting the daemon's user talk to `org.bluez` (the `bluetooth` group in Debian's policy).
//!   The class of device comes from `Class =` in `/etc/bluetooth/main.conf`; no other program
//!   may hold the Hands-Free (HF) role (PipeWire/WirePlumber, BlueALSA, oFono).
//! * [`audio`] — ALSA (libasound at run time), and read/write access to `/dev/snd/*` (the
//!   `audio` group). With no sound card, ALSA's `null` PCM made the default through an
//!   asoundrc (`ALSA_CONFIG_PATH`) still gives a working device.
//! * [`gpio`] — `/dev/gpiochipN` readable and writable (the `gpio` group on Raspberry Pi OS,
//!   or a udev rule); a tokio runtime for button edges.
//! * [`evdev`] — `/dev/input/eventN` readable (the `input` group); a tokio runtime.
//! * [`sco`] — the kernel's Bluetooth SCO sockets (`bluetooth` module); a tokio runtime.

pub mod audio;
pub mod bluetooth;
pub mod evdev;
pub mod gpio;
pub mod sco;

pub use audio::{AlsaInput, AlsaOutput, open_alsa_input, open_alsa_output};
pub use bluetooth::BluezHost;
pub use evdev::EvdevKeys;
pub use gpio::{CdevInputPin, PinSpec, gpio_amplifier, gpio_button};
pub use sco::KernelSco;
