//! GPIO lines through the Linux character device (`/dev/gpiochipN`), for buttons and the
//! amplifier's enable and mute pins.
//!
//! linux-embedded-hal 0.5's `CdevPin` implements the embedded-hal 1.0 pin traits but not
//! embedded-hal-async's `Wait`, so buttons use [`CdevInputPin`]: a line requested for edge
//! events, waited on through tokio. Outputs are plain `CdevPin`s.

use std::io;
use std::path::{Path, PathBuf};

use embedded_hal::digital::{ErrorType, InputPin};
use embedded_hal_async::digital::Wait;
use futures_util::StreamExt;
use linux_embedded_hal::gpio_cdev::{
    AsyncLineEventHandle, Chip, EventRequestFlags, EventType, LineRequestFlags,
};
use linux_embedded_hal::{CdevPin, CdevPinError};

use crate::controls::{ControlError, EdgeWait, GpioAmplifier, GpioButton, RotaryEncoder};

/// The consumer label the kernel shows for our lines (`gpioinfo`).
pub const CONSUMER: &str = "codriverd";

/// Where an output line is: chip, line offset, and polarity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinSpec {
    /// The GPIO chip device, e.g. `/dev/gpiochip0` (the Pi's header pins).
    pub chip: PathBuf,
    /// The line offset on that chip (the BCM GPIO number on a Pi).
    pub line: u32,
    /// Whether the line is active when low.
    pub active_low: bool,
}

/// A button on GPIO line `line` of `chip_path`, called `name`.
///
/// The line is requested as an input with events on both edges; wire the button to ground with
/// a pull-up and pass `active_low = true`, or to 3.3 V with a pull-down and `false`. Must be
/// called inside a tokio runtime (edges are waited for through tokio's reactor).
pub fn gpio_button(
    chip_path: impl AsRef<Path>,
    line: u32,
    name: &str,
    active_low: bool,
) -> Result<GpioButton<CdevInputPin>, ControlError> {
    let pin = CdevInputPin::new(chip_path.as_ref(), line)?;
    Ok(GpioButton::new(name, pin, active_low))
}

/// A quadrature rotary encoder with its A (CLK) and B (DT) lines on `chip_path`, requested for
/// edge events on both lines. Must be called inside a tokio runtime.
pub fn gpio_rotary(
    chip_path: impl AsRef<Path>,
    a: u32,
    b: u32,
) -> Result<RotaryEncoder<CdevInputPin, CdevInputPin>, ControlError> {
    let a = CdevInputPin::new(chip_path.as_ref(), a)?;
    let b = CdevInputPin::new(chip_path.as_ref(), b)?;
    Ok(RotaryEncoder::new(a, b))
}

/// The amplifier's optional enable and mute lines as outputs.
///
/// Lines start in the [`AmpState::Off`](crate::AmpState::Off) state: enable inactive (the
/// amplifier is off) and mute active, so nothing pops before the daemon drives them.
pub fn gpio_amplifier(
    enable: Option<PinSpec>,
    mute: Option<PinSpec>,
) -> Result<GpioAmplifier<CdevPin, CdevPin>, ControlError> {
    let enable = enable
        .map(|spec| output_pin(&spec, false).map(|pin| (pin, spec.active_low)))
        .transpose()?;
    let mute = mute
        .map(|spec| output_pin(&spec, true).map(|pin| (pin, spec.active_low)))
        .transpose()?;
    Ok(GpioAmplifier::new(enable, mute))
}

/// A GPIO input line with edge events: embedded-hal's `InputPin` and embedded-hal-async's
/// `Wait` over the Linux character device and tokio.
pub struct CdevInputPin {
    events: AsyncLineEventHandle,
}

impl CdevInputPin {
    /// Requests `line` of `chip` as an input reporting both edges. Needs a tokio runtime.
    pub fn new(chip: &Path, line: u32) -> Result<Self, ControlError> {
        let error = |e: io::Error| ControlError::Device {
            device: line_name(chip, line),
            source: e,
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(error(io::Error::other(
                "GPIO buttons must be opened inside a tokio runtime",
            )));
        }
        let mut gpio = Chip::new(chip).map_err(|e| error(io::Error::other(e)))?;
        let handle = gpio
            .get_line(line)
            .and_then(|l| {
                l.events(
                    LineRequestFlags::INPUT,
                    EventRequestFlags::BOTH_EDGES,
                    CONSUMER,
                )
            })
            .map_err(|e| error(io::Error::other(e)))?;
        let events = AsyncLineEventHandle::new(handle).map_err(|e| error(io::Error::other(e)))?;
        Ok(CdevInputPin { events })
    }

    async fn next_edge(&mut self) -> Result<EventType, CdevPinError> {
        match self.events.next().await {
            Some(Ok(event)) => Ok(event.event_type()),
            Some(Err(e)) => Err(e.into()),
            // The handle's stream never ends; treat an end like a vanished line.
            None => Err(linux_embedded_hal::gpio_cdev::Error::from(io::Error::from(
                io::ErrorKind::UnexpectedEof,
            ))
            .into()),
        }
    }
}

impl std::fmt::Debug for CdevInputPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CdevInputPin")
            .field("line", &self.events.as_ref().line())
            .finish()
    }
}

impl ErrorType for CdevInputPin {
    type Error = CdevPinError;
}

impl InputPin for CdevInputPin {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        // Requested without ACTIVE_LOW: 1 is the physical high level.
        Ok(self.events.as_ref().get_value()? == 1)
    }

    fn is_low(&mut self) -> Result<bool, Self::Error> {
        self.is_high().map(|high| !high)
    }
}

impl Wait for CdevInputPin {
    async fn wait_for_high(&mut self) -> Result<(), Self::Error> {
        while !self.is_high()? {
            self.next_edge().await?;
        }
        Ok(())
    }

    async fn wait_for_low(&mut self) -> Result<(), Self::Error> {
        while self.is_high()? {
            self.next_edge().await?;
        }
        Ok(())
    }

    async fn wait_for_rising_edge(&mut self) -> Result<(), Self::Error> {
        while self.next_edge().await? != EventType::RisingEdge {}
        Ok(())
    }

    async fn wait_for_falling_edge(&mut self) -> Result<(), Self::Error> {
        while self.next_edge().await? != EventType::FallingEdge {}
        Ok(())
    }

    async fn wait_for_any_edge(&mut self) -> Result<(), Self::Error> {
        self.next_edge().await.map(drop)
    }
}

impl EdgeWait for CdevInputPin {
    fn wait_edge(
        &mut self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Self::Error>> + Send + '_>>
    {
        Box::pin(Wait::wait_for_any_edge(self))
    }
}

/// Requests `spec` as an output, initially `active` or not.
fn output_pin(spec: &PinSpec, active: bool) -> Result<CdevPin, ControlError> {
    let error = |e: linux_embedded_hal::gpio_cdev::Error| ControlError::Device {
        device: line_name(&spec.chip, spec.line),
        source: io::Error::other(e),
    };
    let mut chip = Chip::new(&spec.chip).map_err(error)?;
    let handle = chip
        .get_line(spec.line)
        .and_then(|line| {
            line.request(
                LineRequestFlags::OUTPUT,
                initial_level(active, spec.active_low),
                CONSUMER,
            )
        })
        .map_err(error)?;
    CdevPin::new(handle).map_err(error)
}

/// The raw line value for a logical state: the line is requested without ACTIVE_LOW, as
/// `GpioAmplifier` applies the polarity itself.
fn initial_level(active: bool, active_low: bool) -> u8 {
    u8::from(active != active_low)
}

fn line_name(chip: &Path, line: u32) -> String {
    format!("{} line {line}", chip.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_levels_follow_polarity() {
        assert_eq!(initial_level(false, false), 0);
        assert_eq!(initial_level(true, false), 1);
        assert_eq!(initial_level(false, true), 1);
        assert_eq!(initial_level(true, true), 0);
    }

    #[test]
    fn missing_chip_names_the_line() {
        let spec = PinSpec {
            chip: "/nonexistent/gpiochip9".into(),
            line: 17,
            active_low: false,
        };
        let Err(err) = gpio_amplifier(Some(spec), None) else {
            panic!("no such chip")
        };
        assert!(
            err.to_string().contains("/nonexistent/gpiochip9 line 17"),
            "{err}"
        );
    }

    #[test]
    fn buttons_need_a_runtime() {
        let err = gpio_button("/dev/gpiochip0", 4, "phone", true).expect_err("no runtime");
        assert!(err.to_string().contains("tokio runtime"), "{err}");
    }

    #[tokio::test]
    async fn missing_chip_for_button_is_a_device_error() {
        let err = gpio_button("/nonexistent/gpiochip0", 4, "phone", true).expect_err("no chip");
        assert!(matches!(err, ControlError::Device { .. }), "{err}");
    }
}
