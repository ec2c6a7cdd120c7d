//! Test tones and a check that a tone arrived intact, for call-audio tests over real links.
//!
//! The check is a Goertzel filter at the expected frequency over 100 ms blocks: a block
//! counts as "tone" when it is loud enough and most of its energy sits at that frequency. A
//! dropout, a wrong codec (mSBC bytes played as PCM), a wrong rate or silence all make blocks
//! fail.

use std::f64::consts::PI;
use std::fmt;

/// Blocks quieter than this RMS are silence (a half-scale tone has an RMS of ~11 300).
pub const MIN_TONE_RMS: f64 = 1_000.0;
/// The share of a block's energy that must sit at the tone's frequency.
pub const MIN_TONE_PURITY: f64 = 0.8;

/// Loud blocks that are not the tone an intact recording may have.
pub const MAX_WRONG_MS: u64 = 200;

/// A sine tone at `freq` Hz and half scale (amplitude 16 000).
pub fn sine(rate: u32, freq: f64, samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            (16_000.0 * (2.0 * PI * freq * t).sin()) as i16
        })
        .collect()
}

/// How much of a recording is the expected tone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneReport {
    /// The frequency looked for, in Hz.
    pub freq: f64,
    /// Length of the recording, in milliseconds.
    pub total_ms: u64,
    /// Milliseconds in blocks that are the tone (loud and pure enough).
    pub tone_ms: u64,
    /// Milliseconds in blocks that are silence (RMS below [`MIN_TONE_RMS`]), or where the
    /// audio starts or stops.
    pub silent_ms: u64,
    /// Milliseconds in blocks that are loud but not the tone (noise, clicks, another tone).
    pub wrong_ms: u64,
    /// The longest run of tone blocks, in milliseconds.
    pub longest_tone_ms: u64,
    /// Mean share of energy at the frequency over the tone blocks (0–1).
    pub purity: f64,
    /// Mean RMS over the tone blocks.
    pub rms: f64,
}

impl ToneReport {
    /// Whether at least `min_ms` of the recording is the tone in one run, and at most
    /// [`MAX_WRONG_MS`] of it is anything else (a receiver's jitter buffer may underrun once
    /// or twice while it settles).
    pub fn is_intact(&self, min_ms: u64) -> bool {
        self.longest_tone_ms >= min_ms && self.wrong_ms <= MAX_WRONG_MS
    }
}

impl fmt::Display for ToneReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "freq={} total_ms={} tone_ms={} longest_tone_ms={} silent_ms={} wrong_ms={} purity={:.3} rms={:.0}",
            self.freq,
            self.total_ms,
            self.tone_ms,
            self.longest_tone_ms,
            self.silent_ms,
            self.wrong_ms,
            self.purity,
            self.rms
        )
    }
}

/// Measures how much of `samples` (mono, `rate` Hz) is a tone at `freq`.
///
/// Silence before the first and after the last loud block (the link starting and stopping)
/// counts as silent, not as wrong; a loud block that is not the tone anywhere counts as wrong.
pub fn measure(samples: &[i16], rate: u32, freq: f64) -> ToneReport {
    let block = (rate as usize / 10).max(1);
    let mut report = ToneReport {
        freq,
        total_ms: samples.len() as u64 * 1000 / u64::from(rate.max(1)),
        tone_ms: 0,
        silent_ms: 0,
        wrong_ms: 0,
        longest_tone_ms: 0,
        purity: 0.0,
        rms: 0.0,
    };
    #[derive(Clone, Copy, PartialEq)]
    enum Class {
        Silent,
        Tone,
        Wrong,
    }
    let blocks: Vec<(Class, f64, f64)> = samples
        .chunks_exact(block)
        .map(|chunk| {
            let energy: f64 = chunk.iter().map(|&s| f64::from(s).powi(2)).sum();
            let rms = (energy / chunk.len() as f64).sqrt();
            if rms < MIN_TONE_RMS {
                return (Class::Silent, 0.0, rms);
            }
            let purity = 2.0 * goertzel_power(chunk, rate, freq) / (chunk.len() as f64 * energy);
            let class = if purity >= MIN_TONE_PURITY {
                Class::Tone
            } else {
                Class::Wrong
            };
            (class, purity, rms)
        })
        .collect();
    let (mut run, mut tone_blocks) = (0u64, 0u32);
    for (i, &(class, purity, rms)) in blocks.iter().enumerate() {
        // A block where the audio starts or stops is partly silent, so less pure: an edge,
        // not a fault.
        let edge = i == 0
            || i + 1 == blocks.len()
            || blocks[i - 1].0 == Class::Silent
            || blocks[i + 1].0 == Class::Silent;
        match class {
            Class::Tone => {
                report.tone_ms += 100;
                run += 100;
                report.longest_tone_ms = report.longest_tone_ms.max(run);
                report.purity += purity;
                report.rms += rms;
                tone_blocks += 1;
            }
            Class::Silent => {
                report.silent_ms += 100;
                run = 0;
            }
            Class::Wrong if edge => report.silent_ms += 100,
            Class::Wrong => {
                report.wrong_ms += 100;
                run = 0;
            }
        }
    }
    if tone_blocks > 0 {
        report.purity /= f64::from(tone_blocks);
        report.rms /= f64::from(tone_blocks);
    }
    report
}

/// |X(freq)|² of `x` by the Goertzel recurrence (the DTFT at `freq`, any frequency).
fn goertzel_power(x: &[i16], rate: u32, freq: f64) -> f64 {
    let w = 2.0 * PI * freq / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &s in x {
        let s0 = f64::from(s) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_tone_is_intact() {
        let r = measure(&sine(16_000, 1_000.0, 32_000), 16_000, 1_000.0);
        assert_eq!((r.tone_ms, r.wrong_ms, r.silent_ms), (2_000, 0, 0), "{r}");
        assert!(r.purity > 0.99, "{r}");
        assert!(r.is_intact(2_000));
    }

    #[test]
    fn another_frequency_is_wrong() {
        let r = measure(&sine(8_000, 440.0, 8_000), 8_000, 1_000.0);
        // The first and last blocks are edges.
        assert_eq!((r.tone_ms, r.wrong_ms), (0, 800), "{r}");
        assert!(!r.is_intact(100));
    }

    #[test]
    fn silence_around_the_tone_is_not_wrong_but_a_dropout_breaks_the_run() {
        let mut x = vec![0i16; 1_600];
        x.extend(sine(16_000, 440.0, 16_000));
        x.extend(vec![0i16; 1_600]);
        x.extend(sine(16_000, 440.0, 16_000));
        let r = measure(&x, 16_000, 440.0);
        assert_eq!(r.silent_ms, 200, "{r}");
        assert_eq!(r.longest_tone_ms, 1_000, "{r}");
        assert!(!r.is_intact(1_500));
    }

    #[test]
    fn bytes_of_another_codec_played_as_pcm_are_wrong() {
        // Pseudo-random loud samples, like mSBC frames misread as PCM.
        let mut v = 0x1234_5678u32;
        let noise: Vec<i16> = (0..16_000)
            .map(|_| {
                v ^= v << 13;
                v ^= v >> 17;
                v ^= v << 5;
                v as i16
            })
            .collect();
        let r = measure(&noise, 16_000, 1_000.0);
        assert_eq!(r.tone_ms, 0, "{r}");
        assert!(r.wrong_ms >= 800, "{r}");
    }
}
