//! The real hardware: builds a [`Hal`] from the config on a head unit.
//!
//! BlueZ through bluer, the audio backends chosen by name, GPIO buttons and amplifier pins on
//! the configured chip, and the steering-wheel evdev device. Each failure names what could
//! not be opened; a missing optional device (no evdev configured) is simply absent.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use codriver_config::{Config, GpioPin};
use codriver_hal::audio::{InputOptions, OutputOptions, open_input, open_output};
use codriver_hal::linux::bluetooth::BluezHost;
use codriver_hal::linux::evdev::EvdevKeys;
use codriver_hal::linux::gpio::{PinSpec, gpio_amplifier, gpio_button, gpio_rotary};
use codriver_hal::{Amplifier, ButtonSource, Hal};

/// Opens every piece of hardware the config names. Must run inside the tokio runtime.
pub async fn build(config: &Config) -> anyhow::Result<Hal> {
    let bluetooth = BluezHost::new(config.adapter.name.as_deref())
        .await
        .context("opening the Bluetooth adapter through bluetoothd")?;
    let audio = &config.audio;
    let audio_out = open_output(
        audio.output_backend.as_str(),
        &OutputOptions {
            device: audio.output_device.clone(),
            wav_directory: audio.wav_directory.clone(),
        },
    )
    .context("opening the audio output")?;
    let audio_in = open_input(
        audio.input_backend.as_str(),
        &InputOptions {
            device: audio.input_device.clone(),
            wav_file: audio.input_wav.clone(),
        },
    )
    .context("opening the microphone")?;

    let controls = &config.controls;
    let mut buttons: Vec<Box<dyn ButtonSource>> = Vec::new();
    for b in &controls.buttons {
        let button = gpio_button(
            &controls.gpio_chip,
            b.line.get(),
            b.name.as_str(),
            b.active_low,
        )
        .with_context(|| format!("opening button {} on GPIO line {}", b.name, b.line.get()))?;
        buttons.push(Box::new(button));
    }
    if let Some(rotary) = &controls.rotary {
        let encoder = gpio_rotary(&controls.gpio_chip, rotary.a.get(), rotary.b.get())
            .with_context(|| {
                format!(
                    "opening the rotary encoder on GPIO lines {} and {}",
                    rotary.a.get(),
                    rotary.b.get()
                )
            })?;
        buttons.push(Box::new(encoder));
    }
    if let Some(device) = &controls.evdev.device {
        let keys: HashMap<String, String> = controls
            .evdev
            .keys
            .iter()
            .map(|(k, b)| (k.as_str().to_owned(), b.as_str().to_owned()))
            .collect();
        let source = EvdevKeys::open(device, &keys)
            .with_context(|| format!("opening steering-wheel keys {}", device.display()))?;
        buttons.push(Box::new(source));
    }
    let amp = &audio.amplifier;
    let amplifier: Option<Box<dyn Amplifier>> = if amp.enable.is_some() || amp.mute.is_some() {
        let spec = |p: &GpioPin| PinSpec {
            chip: p.chip.clone(),
            line: p.line.get(),
            active_low: p.active_low,
        };
        Some(Box::new(
            gpio_amplifier(amp.enable.as_ref().map(spec), amp.mute.as_ref().map(spec))
                .context("opening the amplifier pins")?,
        ))
    } else {
        None
    };
    Ok(Hal {
        bluetooth: Arc::new(bluetooth),
        audio_out,
        audio_in,
        buttons,
        amplifier,
    })
}
