//! Voice activity detection for reply recording: when has the driver finished speaking?
//!
//! A small sans-IO, energy-based detector. It takes 20 ms frames of 16-bit PCM and says
//! whether the recording should go on. A frame is **speech** when its RMS level is above
//! both an absolute floor ([`SPEECH_FLOOR_DBFS`]) and the running noise estimate plus
//! [`SPEECH_MARGIN_DB`] (so a noisy cabin does not count as talking). Speech **starts** after
//! [`ONSET`] of consecutive speech frames (a click or a bump is not speech) and **ends** after
//! [`HANGOVER`] without speech frames (pauses between words and sentences are shorter). If
//! nobody speaks within [`NO_SPEECH`], the recording ends without speech.
//!
//! The noise estimate follows the quietest frames: it falls at once to a quieter frame and
//! rises slowly (0.5 dB per frame at most) through non-speech frames, starting at the floor.
//! So noise that rises gradually (the engine, the fan) is learnt; noise that jumps above the
//! floor at once counts as speech, and the recording then ends by the hangover once the
//! estimate has caught up, or at the configured maximum.

/// Frames below this RMS level (dB relative to full scale) are never speech: -45 dBFS is a
/// quiet voice ~1 m from a typical car microphone, well above its self-noise.
pub const SPEECH_FLOOR_DBFS: f32 = -45.0;

/// How far above the noise estimate a frame must be to count as speech.
pub const SPEECH_MARGIN_DB: f32 = 9.0;

/// How long speech must last before it counts (3 frames).
pub const ONSET: std::time::Duration = std::time::Duration::from_millis(60);

/// How long a silence after speech ends the recording.
pub const HANGOVER: std::time::Duration = std::time::Duration::from_millis(1500);

/// How long the detector waits for the driver to start speaking.
pub const NO_SPEECH: std::time::Duration = std::time::Duration::from_secs(5);

/// How far the noise estimate may rise per frame, in dB.
const NOISE_RISE_DB: f32 = 0.5;

/// What the detector says after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep recording.
    Continue,
    /// Speech was heard and the silence after it lasted [`HANGOVER`]: stop.
    Finished,
    /// Nothing was said within [`NO_SPEECH`]: stop and discard.
    NoSpeech,
}

/// The detector; one per recording.
#[derive(Debug, Clone)]
pub struct Vad {
    sample_rate: u32,
    /// Noise estimate, dBFS.
    noise_db: f32,
    /// Consecutive speech frames so far, in samples.
    run: u64,
    /// Samples since the last speech frame (after speech started).
    quiet: u64,
    /// Samples seen in all.
    total: u64,
    heard: bool,
    /// The last frame was above the speech threshold.
    loud: bool,
}

impl Vad {
    /// A detector for mono audio at `sample_rate`.
    pub fn new(sample_rate: u32) -> Self {
        Vad {
            sample_rate: sample_rate.max(1),
            noise_db: SPEECH_FLOOR_DBFS,
            run: 0,
            quiet: 0,
            total: 0,
            heard: false,
            loud: false,
        }
    }

    /// Whether the last frame was above the speech threshold (speech, or its onset). The
    /// recorder keeps the audio after the last such frame aside, to trim the trailing
    /// silence.
    pub fn last_frame_loud(&self) -> bool {
        self.loud
    }

    /// Whether speech has been heard.
    pub fn heard_speech(&self) -> bool {
        self.heard
    }

    /// Feeds one frame (any length; 20 ms is what the recorder uses).
    pub fn push(&mut self, frame: &[i16]) -> Verdict {
        if frame.is_empty() {
            return Verdict::Continue;
        }
        let n = frame.len() as u64;
        self.total += n;
        let level = level_dbfs(frame);
        let threshold = SPEECH_FLOOR_DBFS.max(self.noise_db + SPEECH_MARGIN_DB);
        self.loud = level > threshold;
        if self.loud {
            self.run += n;
            if self.run >= self.samples(ONSET) {
                self.heard = true;
                self.quiet = 0;
            }
        } else {
            self.run = 0;
            self.noise_db = if level < self.noise_db {
                level
            } else {
                (self.noise_db + NOISE_RISE_DB).min(level)
            };
            if self.heard {
                self.quiet += n;
            }
        }
        if self.heard && self.quiet >= self.samples(HANGOVER) {
            Verdict::Finished
        } else if !self.heard && self.total >= self.samples(NO_SPEECH) {
            Verdict::NoSpeech
        } else {
            Verdict::Continue
        }
    }

    fn samples(&self, d: std::time::Duration) -> u64 {
        d.as_millis() as u64 * u64::from(self.sample_rate) / 1000
    }
}

/// The RMS level of `frame` in dB relative to full scale; silence is -120 dB.
pub fn level_dbfs(frame: &[i16]) -> f32 {
    let sum: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / frame.len().max(1) as f64).sqrt() / 32768.0;
    if rms <= 1e-6 {
        return -120.0;
    }
    (20.0 * rms.log10()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 16_000;
    const FRAME: usize = 320;

    fn frames(v: &mut Vad, amplitude: i16, ms: u32) -> Vec<Verdict> {
        let frame: Vec<i16> = (0..FRAME)
            .map(|i| if i % 2 == 0 { amplitude } else { -amplitude })
            .collect();
        (0..ms / 20).map(|_| v.push(&frame)).collect()
    }

    #[test]
    fn speech_then_silence_finishes_after_the_hangover() {
        let mut v = Vad::new(RATE);
        assert!(
            frames(&mut v, 5000, 2000)
                .iter()
                .all(|&x| x == Verdict::Continue)
        );
        assert!(v.heard_speech());
        let after = frames(&mut v, 0, 2000);
        let stop = after
            .iter()
            .position(|&x| x == Verdict::Finished)
            .unwrap_or(99);
        // 1.5 s of silence: the 75th frame.
        assert_eq!(stop, 74);
    }

    #[test]
    fn pauses_between_words_do_not_end_the_recording() {
        let mut v = Vad::new(RATE);
        for _ in 0..5 {
            frames(&mut v, 4000, 600);
            assert!(
                frames(&mut v, 0, 1000)
                    .iter()
                    .all(|&x| x == Verdict::Continue)
            );
        }
    }

    #[test]
    fn silence_alone_is_no_speech() {
        let mut v = Vad::new(RATE);
        let out = frames(&mut v, 0, 6000);
        assert_eq!(out.iter().position(|&x| x == Verdict::NoSpeech), Some(249));
        assert!(!v.heard_speech());
    }

    #[test]
    fn a_click_is_not_speech_and_rising_noise_is_learnt() {
        let mut v = Vad::new(RATE);
        // One loud 20 ms frame: below the 60 ms onset.
        frames(&mut v, 8000, 20);
        assert!(!v.heard_speech());
        // Engine noise rising from -50 to -25 dBFS, 0.25 dB per frame: followed, not speech.
        for step in 0..100 {
            let db = -50.0 + step as f32 * 0.25;
            let amplitude = (32768.0 * 10f32.powf(db / 20.0)) as i16;
            frames(&mut v, amplitude, 20);
        }
        assert!(!v.heard_speech());
        // A voice well above the noise is heard.
        frames(&mut v, 12_000, 200);
        assert!(v.heard_speech());
    }

    #[test]
    fn levels() {
        assert!((level_dbfs(&[16384, -16384]) - -6.02).abs() < 0.1);
        assert_eq!(level_dbfs(&[0; 10]), -120.0);
    }
}
