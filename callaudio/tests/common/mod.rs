//! Signals and measurements shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

/// A speech-like signal: a 180 Hz voice with 12 harmonics (falling 6 dB/octave, a formant
/// bump near 700 Hz) under a 4 Hz syllable envelope, with a slow pitch glide.
pub fn speech_like(rate: u32, samples: usize, amplitude: f32) -> Vec<i16> {
    let mut phase = 0.0f64;
    (0..samples)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            let f0 = 180.0 + 30.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
            phase += 2.0 * std::f64::consts::PI * f0 / f64::from(rate);
            let mut v = 0.0;
            for k in 1..=12 {
                let fk = f0 * k as f64;
                if fk > f64::from(rate) * 0.45 {
                    break;
                }
                let formant = 1.0 + 2.0 * (-((fk - 700.0) / 300.0).powi(2)).exp();
                v += formant / k as f64 * (phase * k as f64).sin();
            }
            let env = 0.55 + 0.45 * (2.0 * std::f64::consts::PI * 4.0 * t).sin();
            (v * env / 3.0 * f64::from(amplitude)).clamp(-32767.0, 32767.0) as i16
        })
        .collect()
}

/// A linear chirp from `f0` to `f1` Hz.
pub fn chirp(rate: u32, samples: usize, f0: f64, f1: f64, amplitude: f64) -> Vec<i16> {
    let dur = samples as f64 / f64::from(rate);
    (0..samples)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            let ph = 2.0 * std::f64::consts::PI * (f0 * t + (f1 - f0) / (2.0 * dur) * t * t);
            (amplitude * ph.sin()) as i16
        })
        .collect()
}

/// Deterministic white-ish noise.
pub fn noise(samples: usize, amplitude: i32, seed: u32) -> Vec<i16> {
    let mut x = seed;
    (0..samples)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (((x >> 16) as i32 - 32_768) * amplitude / 32_768) as i16
        })
        .collect()
}

/// SNR in dB of `out` against `reference` (same length, aligned).
pub fn snr_db(reference: &[i16], out: &[i16]) -> f64 {
    let (mut s, mut e) = (0.0f64, 0.0f64);
    for (&a, &b) in reference.iter().zip(out) {
        s += f64::from(a).powi(2);
        e += (f64::from(a) - f64::from(b)).powi(2);
    }
    10.0 * (s / e.max(1e-9)).log10()
}

/// The best SNR over delays `0..max_delay` of `out` relative to `reference`, and the delay.
pub fn best_aligned_snr(
    reference: &[i16],
    out: &[i16],
    max_delay: usize,
    skip: usize,
) -> (f64, usize) {
    let mut best = (f64::MIN, 0);
    for d in 0..max_delay {
        let n = reference.len().min(out.len().saturating_sub(d));
        if n <= skip {
            break;
        }
        let snr = snr_db(&reference[skip..n], &out[skip + d..n + d]);
        if snr > best.0 {
            best = (snr, d);
        }
    }
    best
}

/// Energy (sum of squares) of a slice.
pub fn energy(x: &[i16]) -> f64 {
    x.iter().map(|&v| f64::from(v).powi(2)).sum()
}

/// The largest step between consecutive samples.
pub fn max_step(x: &[i16]) -> i32 {
    x.windows(2)
        .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
        .max()
        .unwrap_or(0)
}
