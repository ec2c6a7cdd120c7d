//! Buttons, keys and amplifier pins.
//!
//! GPIO code is generic over embedded-hal 1.0 pin traits, so the same button and amplifier
//! logic runs on a Raspberry Pi (`linux_embedded_hal::CdevPin`) and against
//! `embedded-hal-mock` pins in tests. Gestures (short, long, double press) are recognised in
//! the daemon from the raw edges these sources report.

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use embedded_hal::digital::{InputPin, OutputPin};
use tokio::time::Instant;

/// One edge of a button or key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonEvent {
    /// The button's configured name, e.g. `phone`.
    pub button: String,
    /// `true` on press, `false` on release.
    pub pressed: bool,
    /// When the edge was seen.
    pub at: Instant,
}

/// A source of button edges: a GPIO line, an evdev keyboard, a mock.
#[async_trait]
pub trait ButtonSource: Send {
    /// Describes the source for logs.
    fn describe(&self) -> String;

    /// Waits for the next edge. Sources block in the kernel (edge interrupts, evdev reads),
    /// never poll on a timer.
    async fn next_event(&mut self) -> Result<ButtonEvent, ControlError>;
}

/// An embedded-hal input pin whose edge wait can run on the multi-threaded runtime.
///
/// embedded-hal-async's `Wait::wait_for_any_edge` is an `async fn` in a trait, so generic
/// code cannot know its future is `Send`. Each concrete pin type states it here in one line
/// (`Box::pin(Wait::wait_for_any_edge(self))`), which compiles only if it is.
pub trait EdgeWait: InputPin + Send {
    /// Waits for the next rising or falling edge.
    fn wait_edge(&mut self) -> Pin<Box<dyn Future<Output = Result<(), Self::Error>> + Send + '_>>;
}

/// A push button on a GPIO line, generic over any embedded-hal input pin that can wait for
/// edges (on Linux, `CdevPin` with linux-embedded-hal's `async-tokio` feature).
#[derive(Debug)]
pub struct GpioButton<P> {
    name: String,
    pin: P,
    /// Buttons wired to ground with a pull-up read low when pressed.
    active_low: bool,
    /// The last level reported, so a bounce back to the same level is not reported twice.
    last_pressed: Option<bool>,
}

impl<P: InputPin> GpioButton<P> {
    /// A button called `name` on `pin`.
    pub fn new(name: impl Into<String>, pin: P, active_low: bool) -> Self {
        GpioButton {
            name: name.into(),
            pin,
            active_low,
            last_pressed: None,
        }
    }

    /// Reads whether the button is held down now.
    pub fn is_pressed(&mut self) -> Result<bool, ControlError> {
        let high = self
            .pin
            .is_high()
            .map_err(|e| ControlError::pin(&self.name, e))?;
        Ok(high != self.active_low)
    }
}

#[async_trait]
impl<P> ButtonSource for GpioButton<P>
where
    P: EdgeWait,
    P::Error: Send,
{
    fn describe(&self) -> String {
        format!("GPIO button {}", self.name)
    }

    async fn next_event(&mut self) -> Result<ButtonEvent, ControlError> {
        loop {
            if self.last_pressed.is_none() {
                self.last_pressed = Some(self.is_pressed()?);
            }
            self.pin
                .wait_edge()
                .await
                .map_err(|e| ControlError::pin(&self.name, e))?;
            let pressed = self.is_pressed()?;
            if Some(pressed) != self.last_pressed {
                self.last_pressed = Some(pressed);
                return Ok(ButtonEvent {
                    button: self.name.clone(),
                    pressed,
                    at: Instant::now(),
                });
            }
        }
    }
}

/// The button name a rotary encoder reports for one detent clockwise (volume up).
pub const ROTARY_CLOCKWISE: &str = "rotary-cw";

/// The button name a rotary encoder reports for one detent counter-clockwise (volume down).
pub const ROTARY_COUNTER_CLOCKWISE: &str = "rotary-ccw";

/// Which way a rotary encoder turned by one detent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Clockwise: A leads B.
    Clockwise,
    /// Counter-clockwise: B leads A.
    CounterClockwise,
}

/// A sans-IO quadrature decoder: feed it the levels of lines A and B after every edge, and it
/// reports one [`Rotation`] per detent.
///
/// The two lines step through the Gray code `11 → 01 → 00 → 10 → 11` clockwise (A falls
/// first) and the reverse counter-clockwise. Each valid quarter step counts ±1; a jump of both
/// lines at once (a missed edge) counts 0; a detent is reported when the lines come back to
/// the rest state the encoder started in, at least half a cycle away, so contact bounce (a
/// quarter step forth and back) reports nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuadratureDecoder {
    rest: u8,
    state: u8,
    steps: i8,
}

impl QuadratureDecoder {
    /// A decoder whose lines rest (between detents) at levels `a` and `b`.
    pub fn new(a: bool, b: bool) -> Self {
        let rest = levels(a, b);
        QuadratureDecoder {
            rest,
            state: rest,
            steps: 0,
        }
    }

    /// Feeds the levels read after an edge; returns a rotation when a detent completed.
    pub fn update(&mut self, a: bool, b: bool) -> Option<Rotation> {
        let next = levels(a, b);
        self.steps = self.steps.saturating_add(quarter_step(self.state, next));
        self.state = next;
        if next != self.rest {
            return None;
        }
        let steps = std::mem::take(&mut self.steps);
        match steps {
            2.. => Some(Rotation::Clockwise),
            ..=-2 => Some(Rotation::CounterClockwise),
            _ => None,
        }
    }
}

fn levels(a: bool, b: bool) -> u8 {
    (u8::from(a) << 1) | u8::from(b)
}

/// +1 for a clockwise quarter step, -1 counter-clockwise, 0 for none or an invalid jump.
fn quarter_step(from: u8, to: u8) -> i8 {
    // Clockwise order of states (A,B): 11, 01, 00, 10.
    const ORDER: [u8; 4] = [0b11, 0b01, 0b00, 0b10];
    let position = |s: u8| ORDER.iter().position(|&o| o == s).unwrap_or(0);
    match (position(to) + 4 - position(from)) % 4 {
        1 => 1,
        3 => -1,
        _ => 0,
    }
}

/// A quadrature rotary encoder on two GPIO lines: reports each detent as a press of
/// [`ROTARY_CLOCKWISE`] or [`ROTARY_COUNTER_CLOCKWISE`] (no release follows; the daemon maps
/// them straight to volume up and down, without gesture recognition).
#[derive(Debug)]
pub struct RotaryEncoder<A, B> {
    a: A,
    b: B,
    decoder: Option<QuadratureDecoder>,
}

impl<A: InputPin, B: InputPin> RotaryEncoder<A, B> {
    /// An encoder with its A (CLK) line on `a` and B (DT) line on `b`.
    pub fn new(a: A, b: B) -> Self {
        RotaryEncoder {
            a,
            b,
            decoder: None,
        }
    }

    fn read(&mut self) -> Result<(bool, bool), ControlError> {
        let a = self
            .a
            .is_high()
            .map_err(|e| ControlError::pin("rotary A", e))?;
        let b = self
            .b
            .is_high()
            .map_err(|e| ControlError::pin("rotary B", e))?;
        Ok((a, b))
    }
}

#[async_trait]
impl<A, B> ButtonSource for RotaryEncoder<A, B>
where
    A: EdgeWait,
    A::Error: Send,
    B: EdgeWait,
    B::Error: Send,
{
    fn describe(&self) -> String {
        "rotary encoder".to_owned()
    }

    async fn next_event(&mut self) -> Result<ButtonEvent, ControlError> {
        loop {
            if self.decoder.is_none() {
                let (a, b) = self.read()?;
                self.decoder = Some(QuadratureDecoder::new(a, b));
            }
            // Whichever line moved, both levels are read after it: the decoder needs both.
            tokio::select! {
                biased;
                r = self.a.wait_edge() => r.map_err(|e| ControlError::pin("rotary A", e))?,
                r = self.b.wait_edge() => r.map_err(|e| ControlError::pin("rotary B", e))?,
            }
            let (a, b) = self.read()?;
            let Some(decoder) = self.decoder.as_mut() else {
                continue;
            };
            if let Some(rotation) = decoder.update(a, b) {
                let button = match rotation {
                    Rotation::Clockwise => ROTARY_CLOCKWISE,
                    Rotation::CounterClockwise => ROTARY_COUNTER_CLOCKWISE,
                };
                return Ok(ButtonEvent {
                    button: button.to_owned(),
                    pressed: true,
                    at: Instant::now(),
                });
            }
        }
    }
}

/// What the amplifier should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmpState {
    /// Powered down: nothing is playing.
    Off,
    /// Powered but muted: about to play, or between prompts (avoids pops).
    Muted,
    /// Playing.
    On,
}

/// The car amplifier's enable and mute lines.
pub trait Amplifier: Send {
    /// Drives the pins for `state`.
    fn set(&mut self, state: AmpState) -> Result<(), ControlError>;
}

/// An amplifier controlled by an optional enable pin and an optional mute pin, generic over
/// embedded-hal output pins.
#[derive(Debug)]
pub struct GpioAmplifier<E, M> {
    enable: Option<(E, bool)>,
    mute: Option<(M, bool)>,
}

impl<E: OutputPin, M: OutputPin> GpioAmplifier<E, M> {
    /// `enable` and `mute` carry their pin and whether the line is active low.
    pub fn new(enable: Option<(E, bool)>, mute: Option<(M, bool)>) -> Self {
        GpioAmplifier { enable, mute }
    }
}

impl<E, M> Amplifier for GpioAmplifier<E, M>
where
    E: OutputPin + Send,
    M: OutputPin + Send,
{
    fn set(&mut self, state: AmpState) -> Result<(), ControlError> {
        // Mute first when going down and unmute last when coming up, so the speakers never
        // hear the amplifier's power transient.
        let enabled = state != AmpState::Off;
        let muted = state != AmpState::On;
        if muted {
            drive(&mut self.mute, true, "amplifier mute")?;
        }
        drive(&mut self.enable, enabled, "amplifier enable")?;
        if !muted {
            drive(&mut self.mute, false, "amplifier mute")?;
        }
        Ok(())
    }
}

fn drive<P: OutputPin>(
    pin: &mut Option<(P, bool)>,
    active: bool,
    what: &str,
) -> Result<(), ControlError> {
    let Some((pin, active_low)) = pin else {
        return Ok(());
    };
    let high = active != *active_low;
    let result = if high { pin.set_high() } else { pin.set_low() };
    result.map_err(|e| ControlError::pin(what, e))
}

/// Errors from buttons, keys and pins.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// A GPIO pin operation failed.
    #[error("{what}: GPIO error: {detail}")]
    Pin {
        /// Which pin.
        what: String,
        /// The backend's error, rendered (embedded-hal errors are not `std::error::Error`).
        detail: String,
    },
    /// Opening or reading an input device failed.
    #[error("input device {device}: {source}")]
    Device {
        /// The device path.
        device: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A key name in the configuration is not one the kernel knows.
    #[error(
        "unknown key name {name:?}; key names are the kernel's KEY_* and BTN_* constants, \
         such as KEY_PHONE, KEY_VOICECOMMAND or KEY_NEXTSONG (`evtest` shows a device's keys)"
    )]
    UnknownKey {
        /// The name as configured.
        name: String,
    },
    /// The source has no more events (device unplugged, mock script ended).
    #[error("button source ended")]
    Ended,
}

impl ControlError {
    fn pin(what: &str, e: impl std::fmt::Debug) -> Self {
        ControlError::Pin {
            what: what.to_owned(),
            detail: format!("{e:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction};

    use super::*;

    impl EdgeWait for PinMock {
        fn wait_edge(
            &mut self,
        ) -> Pin<Box<dyn Future<Output = Result<(), Self::Error>> + Send + '_>> {
            Box::pin(embedded_hal_async::digital::Wait::wait_for_any_edge(self))
        }
    }

    #[test]
    fn amplifier_unmutes_last_and_mutes_first() {
        let enable = PinMock::new(&[Transaction::set(State::High), Transaction::set(State::Low)]);
        // Mute is active low: muted = low.
        let mute = PinMock::new(&[Transaction::set(State::High), Transaction::set(State::Low)]);
        let mut amp = GpioAmplifier::new(Some((enable.clone(), false)), Some((mute.clone(), true)));
        amp.set(AmpState::On).unwrap();
        amp.set(AmpState::Off).unwrap();
        let (mut e, mut m) = (enable, mute);
        e.done();
        m.done();
    }

    #[test]
    fn gpio_button_reads_active_low() {
        let pin = PinMock::new(&[Transaction::get(State::Low), Transaction::get(State::High)]);
        let mut button = GpioButton::new("phone", pin.clone(), true);
        assert!(button.is_pressed().unwrap());
        assert!(!button.is_pressed().unwrap());
        let mut p = pin;
        p.done();
    }

    #[tokio::test(start_paused = true)]
    async fn gpio_button_reports_edges_not_bounces() {
        let pin = PinMock::new(&[
            Transaction::get(State::High),
            Transaction::wait_for_edge(embedded_hal_mock::eh1::digital::Edge::Any),
            Transaction::get(State::Low),
            Transaction::wait_for_edge(embedded_hal_mock::eh1::digital::Edge::Any),
            Transaction::get(State::Low),
            Transaction::wait_for_edge(embedded_hal_mock::eh1::digital::Edge::Any),
            Transaction::get(State::High),
        ]);
        let mut button = GpioButton::new("phone", pin.clone(), true);
        let press = button.next_event().await.unwrap();
        assert!(press.pressed);
        let release = button.next_event().await.unwrap();
        assert!(!release.pressed);
        let mut p = pin;
        p.done();
    }

    #[test]
    fn quadrature_decoder_counts_detents_both_ways() {
        let mut d = QuadratureDecoder::new(true, true);
        // Clockwise: 11 → 01 → 00 → 10 → 11.
        assert_eq!(d.update(false, true), None);
        assert_eq!(d.update(false, false), None);
        assert_eq!(d.update(true, false), None);
        assert_eq!(d.update(true, true), Some(Rotation::Clockwise));
        // Counter-clockwise: 11 → 10 → 00 → 01 → 11.
        assert_eq!(d.update(true, false), None);
        assert_eq!(d.update(false, false), None);
        assert_eq!(d.update(false, true), None);
        assert_eq!(d.update(true, true), Some(Rotation::CounterClockwise));
    }

    #[test]
    fn quadrature_decoder_ignores_bounce_and_jumps() {
        let mut d = QuadratureDecoder::new(true, true);
        // A bounces: a quarter step forth and back.
        assert_eq!(d.update(false, true), None);
        assert_eq!(d.update(true, true), None);
        // Both lines jump at once (missed edges) and come back: no direction known.
        assert_eq!(d.update(false, false), None);
        assert_eq!(d.update(true, true), None);
        // A turn with one bounce in the middle still counts once.
        for (a, b) in [(false, true), (false, false), (false, true), (false, false)] {
            assert_eq!(d.update(a, b), None);
        }
        assert_eq!(d.update(true, false), None);
        assert_eq!(d.update(true, true), Some(Rotation::Clockwise));
    }

    #[tokio::test(start_paused = true)]
    async fn rotary_encoder_reports_detents_from_pin_levels() {
        use embedded_hal_mock::eh1::digital::Edge;
        let wait = || Transaction::wait_for_edge(Edge::Any);
        let (h, l) = (State::High, State::Low);
        // Line A's edge wait stands for "some line moved" (the mock resolves at once); after
        // each, both levels are read. One detent clockwise, then one counter-clockwise.
        let cw = [(l, h), (l, l), (h, l), (h, h)];
        let ccw = [(h, l), (l, l), (l, h), (h, h)];
        let mut a_script = vec![Transaction::get(h)];
        let mut b_script = vec![Transaction::get(h)];
        for (a, b) in cw.into_iter().chain(ccw) {
            a_script.push(wait());
            a_script.push(Transaction::get(a));
            b_script.push(Transaction::get(b));
        }
        let (a, b) = (PinMock::new(&a_script), PinMock::new(&b_script));
        let mut encoder = RotaryEncoder::new(a.clone(), b.clone());
        let first = encoder.next_event().await.unwrap();
        assert_eq!(first.button, ROTARY_CLOCKWISE);
        assert!(first.pressed);
        let second = encoder.next_event().await.unwrap();
        assert_eq!(second.button, ROTARY_COUNTER_CLOCKWISE);
        let (mut a, mut b) = (a, b);
        a.done();
        b.done();
    }
}
