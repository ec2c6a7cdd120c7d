//! Echo cancellation and noise suppression on the microphone path, through SpeexDSP.
//!
//! `speex_echo_cancellation` subtracts an adaptive (MDF) estimate of the speaker signal, as
//! it comes back through the car's cabin, from the microphone signal; `speex_preprocess_run`
//! then suppresses the residual echo (it is linked to the echo state) and stationary noise
//! (engine, road, fan). Both run on the codec rate, on frames of one codec frame (7.5 ms), so
//! they add no buffering. The speaker signal (what the phone sent, as decoded) is the
//! reference.

use std::ffi::{c_int, c_void};
use std::ptr::NonNull;

use crate::Error;
use crate::sys;

/// What the microphone path does, and how hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DspConfig {
    /// Cancel the speaker's echo (and suppress what is left of it).
    pub echo_cancellation: bool,
    /// Suppress stationary noise.
    pub noise_suppression: bool,
    /// How long an echo path the canceller models, in milliseconds (the cabin's reverberation
    /// plus the sound card's output delay). SpeexDSP suggests a third of the room's
    /// reverberation time; 128 ms covers a car with a few frames of output buffering.
    pub echo_tail_ms: u32,
    /// Maximum attenuation of noise, in dB (negative).
    pub noise_suppress_db: i32,
}

impl Default for DspConfig {
    fn default() -> Self {
        Self {
            echo_cancellation: true,
            noise_suppression: true,
            echo_tail_ms: 128,
            noise_suppress_db: -15,
        }
    }
}

/// The microphone processor: echo canceller and preprocessor, either of which may be off.
pub struct MicProcessor {
    frame: usize,
    echo: Option<NonNull<sys::SpeexEchoState>>,
    pre: Option<NonNull<sys::SpeexPreprocessState>>,
    out: Vec<i16>,
}

// SAFETY: both SpeexDSP states are heap memory owned by this value (the preprocessor points to
// the echo state, and both move together); SpeexDSP keeps no global state.
unsafe impl Send for MicProcessor {}

impl MicProcessor {
    /// A processor for frames of `frame_samples` samples at `sample_rate` Hz.
    pub fn new(frame_samples: usize, sample_rate: u32, config: DspConfig) -> Result<Self, Error> {
        let frame = c_int::try_from(frame_samples)
            .map_err(|_| Error::Config(format!("frame of {frame_samples} samples")))?;
        let rate = c_int::try_from(sample_rate)
            .map_err(|_| Error::Config(format!("sample rate {sample_rate}")))?;
        let mut this = Self {
            frame: frame_samples,
            echo: None,
            pre: None,
            out: vec![0; frame_samples],
        };
        if config.echo_cancellation {
            let tail =
                c_int::try_from(u64::from(sample_rate) * u64::from(config.echo_tail_ms) / 1000)
                    .map_err(|_| Error::Config(format!("echo tail {} ms", config.echo_tail_ms)))?;
            // SAFETY: plain constructor.
            let echo = NonNull::new(unsafe { sys::speex_echo_state_init(frame, tail.max(frame)) })
                .ok_or(Error::Speex("echo canceller"))?;
            this.echo = Some(echo);
            let mut r = rate;
            // SAFETY: live state; SET_SAMPLING_RATE reads one c_int.
            unsafe {
                sys::speex_echo_ctl(
                    echo.as_ptr(),
                    sys::SPEEX_ECHO_SET_SAMPLING_RATE,
                    (&raw mut r).cast::<c_void>(),
                )
            };
        }
        if config.echo_cancellation || config.noise_suppression {
            // SAFETY: plain constructor.
            let pre = NonNull::new(unsafe { sys::speex_preprocess_state_init(frame, rate) })
                .ok_or(Error::Speex("preprocessor"))?;
            this.pre = Some(pre);
            let mut denoise: c_int = c_int::from(config.noise_suppression);
            let mut noise_db: c_int = config.noise_suppress_db.min(0);
            // SAFETY: live state; each request reads one c_int (or, for ECHO_STATE, takes the
            // echo state pointer, which outlives the preprocessor: dropped after it).
            unsafe {
                sys::speex_preprocess_ctl(
                    pre.as_ptr(),
                    sys::SPEEX_PREPROCESS_SET_DENOISE,
                    (&raw mut denoise).cast::<c_void>(),
                );
                sys::speex_preprocess_ctl(
                    pre.as_ptr(),
                    sys::SPEEX_PREPROCESS_SET_NOISE_SUPPRESS,
                    (&raw mut noise_db).cast::<c_void>(),
                );
                if let Some(echo) = this.echo {
                    let mut suppress: c_int = -40;
                    let mut suppress_active: c_int = -15;
                    sys::speex_preprocess_ctl(
                        pre.as_ptr(),
                        sys::SPEEX_PREPROCESS_SET_ECHO_SUPPRESS,
                        (&raw mut suppress).cast::<c_void>(),
                    );
                    sys::speex_preprocess_ctl(
                        pre.as_ptr(),
                        sys::SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE,
                        (&raw mut suppress_active).cast::<c_void>(),
                    );
                    sys::speex_preprocess_ctl(
                        pre.as_ptr(),
                        sys::SPEEX_PREPROCESS_SET_ECHO_STATE,
                        echo.as_ptr().cast::<c_void>(),
                    );
                }
            }
        }
        Ok(this)
    }

    /// Whether any processing is on (otherwise [`process`](Self::process) is a no-op).
    pub fn is_active(&self) -> bool {
        self.pre.is_some()
    }

    /// Samples per frame.
    pub fn frame_samples(&self) -> usize {
        self.frame
    }

    /// Processes one microphone frame in place; `speaker` is the frame that was played at the
    /// same time (the echo reference). Both must be [`frame_samples`](Self::frame_samples)
    /// long; other lengths are left untouched.
    pub fn process(&mut self, mic: &mut [i16], speaker: &[i16]) {
        if mic.len() != self.frame || speaker.len() != self.frame {
            return;
        }
        if let Some(echo) = self.echo {
            // SAFETY: live state; all three buffers hold exactly `frame` samples, the size the
            // state was created with.
            unsafe {
                sys::speex_echo_cancellation(
                    echo.as_ptr(),
                    mic.as_ptr(),
                    speaker.as_ptr(),
                    self.out.as_mut_ptr(),
                )
            };
            mic.copy_from_slice(&self.out);
        }
        if let Some(pre) = self.pre {
            // SAFETY: live state; `mic` holds exactly `frame` samples.
            unsafe { sys::speex_preprocess_run(pre.as_ptr(), mic.as_mut_ptr()) };
        }
    }
}

impl Drop for MicProcessor {
    fn drop(&mut self) {
        // The preprocessor refers to the echo state: destroy it first.
        if let Some(pre) = self.pre.take() {
            // SAFETY: created by speex_preprocess_state_init, destroyed once.
            unsafe { sys::speex_preprocess_state_destroy(pre.as_ptr()) }
        }
        if let Some(echo) = self.echo.take() {
            // SAFETY: created by speex_echo_state_init, destroyed once.
            unsafe { sys::speex_echo_state_destroy(echo.as_ptr()) }
        }
    }
}

impl std::fmt::Debug for MicProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MicProcessor")
            .field("frame", &self.frame)
            .field("echo_cancellation", &self.echo.is_some())
            .field("preprocess", &self.pre.is_some())
            .finish()
    }
}
