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
                0.5 - 0.5 * (std::f32::consts::PI * edge as f32 / ramp as f32).cos()
            } else {
                1.0
            };
            let v = (2.0 * std::f32::consts::PI * freq * t).sin() * amplitude * env;
            (v * f32::from(i16::MAX)) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
