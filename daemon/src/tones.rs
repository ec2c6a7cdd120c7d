//! Chimes and tones, synthesised so the package ships no audio files.
//!
//! Each [`Chime`] is a short sequence of sine notes with soft attack and release (no clicks),
//! rendered at 48 kHz mono. They are what the driver hears for every step the daemon takes.

use codriver_hal::PcmFormat;

/// The sounds the daemon makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chime {
    /// The daemon is up.
    Startup,
    /// The pairing window opened: rising three notes.
    PairingOpen,
    /// A phone asks to pair: press the button to confirm (two quick high notes).
    PairingRequest,
    /// Paired: a major chord arpeggio.
    Paired,
    /// The phone connected.
    Connected,
    /// The phone disconnected: falling two notes.
    Disconnected,
    /// The pairing window closed without a pairing.
    PairingClosed,
    /// Something was confirmed (an action took effect).
    Confirm,
    /// That does not apply now: a low buzz.
    Error,
    /// Local ringtone, one ring period.
    Ring,
    /// A message arrived: two soft rising notes.
    Message,
    /// Recording a reply starts now: one clear beep ("speak after the tone").
    RecordStart,
    /// Recording stopped: two quick falling notes.
    RecordStop,
    /// The phone took the reply over: three quick rising notes.
    ReplySent,
}

impl Chime {
    /// The label streams and logs use, e.g. `chime-paired`.
    pub fn label(self) -> &'static str {
        match self {
            Chime::Startup => "chime-startup",
            Chime::PairingOpen => "chime-pairing-open",
            Chime::PairingRequest => "chime-pairing-request",
            Chime::Paired => "chime-paired",
            Chime::Connected => "chime-connected",
            Chime::Disconnected => "chime-disconnected",
            Chime::PairingClosed => "chime-pairing-closed",
            Chime::Confirm => "chime-confirm",
            Chime::Error => "chime-error",
            Chime::Ring => "ringtone",
            Chime::Message => "chime-message",
            Chime::RecordStart => "chime-record-start",
            Chime::RecordStop => "chime-record-stop",
            Chime::ReplySent => "chime-reply-sent",
        }
    }

    /// The audio focus the sound plays with: the ringtone belongs to the call.
    pub fn focus(self) -> codriver_hal::Focus {
        match self {
            Chime::Ring => codriver_hal::Focus::Call,
            _ => codriver_hal::Focus::Chime,
        }
    }

    /// The notes: (frequency in Hz, milliseconds). A frequency of 0 is a rest.
    fn notes(self) -> &'static [(f32, u32)] {
        match self {
            Chime::Startup => &[(523.25, 120), (783.99, 180)],
            Chime::PairingOpen => &[(523.25, 110), (659.25, 110), (783.99, 200)],
            Chime::PairingRequest => &[(1046.5, 90), (0.0, 60), (1046.5, 90)],
            Chime::Paired => &[(523.25, 100), (659.25, 100), (783.99, 100), (1046.5, 250)],
            Chime::Connected => &[(659.25, 100), (987.77, 200)],
            Chime::Disconnected => &[(783.99, 120), (523.25, 220)],
            Chime::PairingClosed => &[(659.25, 120), (523.25, 120), (392.0, 200)],
            Chime::Confirm => &[(880.0, 90)],
            Chime::Error => &[(196.0, 140), (0.0, 50), (196.0, 140)],
            Chime::Ring => &[(880.0, 400), (659.25, 400), (0.0, 1200)],
            Chime::Message => &[(783.99, 90), (0.0, 40), (1174.66, 160)],
            Chime::RecordStart => &[(1046.5, 180)],
            Chime::RecordStop => &[(1046.5, 80), (0.0, 30), (783.99, 110)],
            Chime::ReplySent => &[(659.25, 80), (880.0, 80), (1318.5, 160)],
        }
    }

    /// Renders the chime as 48 kHz mono samples.
    pub fn render(self) -> Vec<i16> {
        let rate = PcmFormat::PROMPT.sample_rate;
        let mut out = Vec::new();
        for &(freq, ms) in self.notes() {
            out.extend(tone(freq, ms, rate, 0.35));
        }
        out
    }
}

/// A sine tone with 5 ms raised-cosine attack and release, `amplitude` in 0..=1.
pub fn tone(freq: f32, ms: u32, rate: u32, amplitude: f32) -> Vec<i16> {
    let n = (u64::from(rate) * u64::from(ms) / 1000) as usize;
    let ramp = (rate as usize / 200).min(n / 2).max(1);
    (0..n)
        .map(|i| {
            if freq <= 0.0 {
                return 0;
            }
            let t = i as f32 / rate as f32;
            let edge = i.min(n - 1 - i);
            let env = if edge < ramp {
                0.5 - 0.5 * cosine(std::f32::consts::PI * edge as f32 / ramp as f32)
            } else {
                1.0
            };
            let v = sine(2.0 * std::f32::consts::PI * freq * t) * amplitude * env;
            (v * f32::from(i16::MAX)) as i16
        })
        .collect()
}

/// Sine by range reduction and an odd 9th-order polynomial (error below 1e-5, far under the
/// 16-bit noise floor). Chimes are the daemon's only trigonometry; this keeps libm's code and
/// tables out of the resident set on the Pi.
fn sine(x: f32) -> f32 {
    use std::f32::consts::{FRAC_PI_2, PI, TAU};
    // Reduce to [-π, π], then fold into [-π/2, π/2] where the polynomial is accurate.
    let mut r = x - TAU * (x / TAU).round_ties_even();
    if r > FRAC_PI_2 {
        r = PI - r;
    } else if r < -FRAC_PI_2 {
        r = -PI - r;
    }
    let r2 = r * r;
    r * (1.0 + r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 / 362_880.0))))
}

fn cosine(x: f32) -> f32 {
    sine(x + std::f32::consts::FRAC_PI_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polynomial_sine_matches_libm() {
        for i in -2000..2000 {
            let x = i as f32 * 0.01;
            assert!((sine(x) - x.sin()).abs() < 1e-4, "sin {x}");
            assert!((cosine(x) - x.cos()).abs() < 1e-4, "cos {x}");
        }
    }

    #[test]
    fn chimes_have_sound_and_no_clicks() {
        for chime in [
            Chime::Startup,
            Chime::PairingOpen,
            Chime::PairingRequest,
            Chime::Paired,
            Chime::Connected,
            Chime::Disconnected,
            Chime::PairingClosed,
            Chime::Confirm,
            Chime::Error,
            Chime::Ring,
            Chime::Message,
            Chime::RecordStart,
            Chime::RecordStop,
            Chime::ReplySent,
        ] {
            let s = chime.render();
            assert!(s.len() > 4_000, "{chime:?} too short");
            assert!(
                s.iter().any(|&v| v.unsigned_abs() > 8_000),
                "{chime:?} silent"
            );
            // Starts and ends at (near) zero: no click.
            assert!(s[0].unsigned_abs() < 200 && s[s.len() - 1].unsigned_abs() < 200);
        }
    }

    #[test]
    fn tone_length_follows_rate() {
        assert_eq!(tone(440.0, 100, 48_000, 0.5).len(), 4_800);
        assert!(tone(0.0, 10, 48_000, 0.5).iter().all(|&v| v == 0));
    }
}
