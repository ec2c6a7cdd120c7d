//! Sample-rate conversion between the codec rate (8 or 16 kHz) and the sound card's rate.
//!
//! Uses SpeexDSP's resampler (`speex_resampler_*`, from the same Debian `libspeexdsp` that the
//! echo canceller needs) rather than a crate such as `rubato` or a hand-written windowed sinc:
//! it is a maintained, widely deployed (PulseAudio, PipeWire) polyphase windowed-sinc
//! resampler with SIMD paths for x86 and NEON, works sample by sample on `i16` (no float
//! conversion, no fixed block size, so it adds no buffering of its own beyond the filter's
//! half-length) and costs no extra dependency. Quality 3 ("VoIP") is the default: a 48-tap
//! filter whose stop band is far below what a phone call's 8/16 kHz band carries.

use std::ffi::c_int;
use std::ptr::NonNull;

use crate::Error;
use crate::sys;

/// SpeexDSP's "VoIP" quality, the default.
pub const DEFAULT_QUALITY: u8 = 3;

/// A mono resampler from one fixed rate to another; a pass-through when they are equal.
pub struct Resampler {
    from: u32,
    to: u32,
    state: Option<NonNull<sys::SpeexResamplerState>>,
}

// SAFETY: the SpeexDSP resampler state is heap memory owned by this value; SpeexDSP keeps no
// global state. Moving it between threads is fine; `&self` methods only read it.
unsafe impl Send for Resampler {}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz at SpeexDSP quality `quality` (0–10).
    ///
    /// The filter's leading zeros are skipped, so output sample `n·to/from` lines up with
    /// input sample `n`.
    pub fn new(from: u32, to: u32, quality: u8) -> Result<Self, Error> {
        if from == 0 || to == 0 || quality > 10 {
            return Err(Error::Config(format!(
                "resampler {from} Hz → {to} Hz at quality {quality}: rates must be non-zero \
                 and quality 0 to 10"
            )));
        }
        if from == to {
            return Ok(Self {
                from,
                to,
                state: None,
            });
        }
        let mut err: c_int = 0;
        // SAFETY: plain constructor; `err` is a valid out-pointer.
        let raw = unsafe { sys::speex_resampler_init(1, from, to, c_int::from(quality), &mut err) };
        let Some(state) = NonNull::new(raw) else {
            return Err(Error::Resampler {
                from,
                to,
                reason: resampler_error(err),
            });
        };
        // SAFETY: freshly initialised state.
        unsafe { sys::speex_resampler_skip_zeros(state.as_ptr()) };
        Ok(Self {
            from,
            to,
            state: Some(state),
        })
    }

    /// Resamples `input`, appending every output sample it yields to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let Some(state) = self.state else {
            out.extend_from_slice(input);
            return;
        };
        let mut rest = input;
        while !rest.is_empty() {
            let room = (rest.len() as u64 * u64::from(self.to) / u64::from(self.from)) as usize + 8;
            out.reserve(room);
            let start = out.len();
            let spare = out.spare_capacity_mut();
            let mut in_len = u32::try_from(rest.len()).unwrap_or(u32::MAX);
            let mut out_len = u32::try_from(spare.len()).unwrap_or(u32::MAX);
            // SAFETY: `state` is live; SpeexDSP reads at most `in_len` samples from `rest` and
            // writes at most `out_len` samples into the spare capacity, and reports how many
            // it used through the two lengths.
            unsafe {
                sys::speex_resampler_process_int(
                    state.as_ptr(),
                    0,
                    rest.as_ptr(),
                    &mut in_len,
                    spare.as_mut_ptr().cast::<i16>(),
                    &mut out_len,
                );
                out.set_len(start + out_len as usize);
            }
            if in_len == 0 && out_len == 0 {
                break;
            }
            rest = &rest[(in_len as usize).min(rest.len())..];
        }
    }

    /// Input rate in Hz.
    pub fn from_rate(&self) -> u32 {
        self.from
    }

    /// Output rate in Hz.
    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// The delay this resampler adds, in input samples (half its filter; 0 for a pass-through).
    pub fn latency_input_samples(&self) -> u32 {
        match self.state {
            // SAFETY: live state; the getter only reads it.
            Some(s) => unsafe { sys::speex_resampler_get_input_latency(s.as_ptr()) }.max(0) as u32,
            None => 0,
        }
    }

    /// The delay this resampler adds, in microseconds.
    pub fn latency_us(&self) -> u64 {
        u64::from(self.latency_input_samples()) * 1_000_000 / u64::from(self.from)
    }
}

impl Drop for Resampler {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            // SAFETY: created by speex_resampler_init, destroyed once.
            unsafe { sys::speex_resampler_destroy(state.as_ptr()) }
        }
    }
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

fn resampler_error(code: c_int) -> String {
    // SpeexDSP's resampler has no strerror binding here; its codes are few and stable.
    match code {
        1 => "out of memory".to_owned(),
        3 => "invalid argument".to_owned(),
        other => format!("error {other}"),
    }
}
