//! Hand-written declarations for the parts of libsbc (`<sbc/sbc.h>`, 2.0) and libspeexdsp
//! (`<speex/speex_echo.h>`, `speex_preprocess.h`, `speex_resampler.h`, 1.2) this crate calls.
//!
//! Only the safe wrappers in this crate call these; every call site states why it is sound.

use std::ffi::{c_int, c_ulong, c_void};

/// `SBC_LE`: samples in host memory are little-endian.
pub(crate) const SBC_LE: u8 = 0x00;
/// `SBC_BE`: samples in host memory are big-endian.
pub(crate) const SBC_BE: u8 = 0x01;

/// `struct sbc_struct` (`sbc_t`) from `<sbc/sbc.h>`: public parameters, then the codec's
/// private state, which libsbc allocates in `sbc_init*` and frees in `sbc_finish`.
#[repr(C)]
pub(crate) struct SbcT {
    pub(crate) flags: c_ulong,
    pub(crate) frequency: u8,
    pub(crate) blocks: u8,
    pub(crate) subbands: u8,
    pub(crate) mode: u8,
    pub(crate) allocation: u8,
    pub(crate) bitpool: u8,
    pub(crate) endian: u8,
    pub(crate) priv_: *mut c_void,
    pub(crate) priv_alloc_base: *mut c_void,
}

unsafe extern "C" {
    pub(crate) fn sbc_init_msbc(sbc: *mut SbcT, flags: c_ulong) -> c_int;
    pub(crate) fn sbc_encode(
        sbc: *mut SbcT,
        input: *const c_void,
        input_len: usize,
        output: *mut c_void,
        output_len: usize,
        written: *mut isize,
    ) -> isize;
    pub(crate) fn sbc_decode(
        sbc: *mut SbcT,
        input: *const c_void,
        input_len: usize,
        output: *mut c_void,
        output_len: usize,
        written: *mut usize,
    ) -> isize;
    pub(crate) fn sbc_get_frame_length(sbc: *mut SbcT) -> usize;
    pub(crate) fn sbc_get_codesize(sbc: *mut SbcT) -> usize;
    pub(crate) fn sbc_finish(sbc: *mut SbcT);
}

/// Opaque `SpeexEchoState`.
#[repr(C)]
pub(crate) struct SpeexEchoState {
    _private: [u8; 0],
}

/// Opaque `SpeexPreprocessState`.
#[repr(C)]
pub(crate) struct SpeexPreprocessState {
    _private: [u8; 0],
}

/// Opaque `SpeexResamplerState`.
#[repr(C)]
pub(crate) struct SpeexResamplerState {
    _private: [u8; 0],
}

/// `SPEEX_ECHO_SET_SAMPLING_RATE`.
pub(crate) const SPEEX_ECHO_SET_SAMPLING_RATE: c_int = 24;
/// `SPEEX_PREPROCESS_SET_DENOISE`.
pub(crate) const SPEEX_PREPROCESS_SET_DENOISE: c_int = 0;
/// `SPEEX_PREPROCESS_SET_NOISE_SUPPRESS` (dB, negative).
pub(crate) const SPEEX_PREPROCESS_SET_NOISE_SUPPRESS: c_int = 18;
/// `SPEEX_PREPROCESS_SET_ECHO_SUPPRESS` (dB, negative).
pub(crate) const SPEEX_PREPROCESS_SET_ECHO_SUPPRESS: c_int = 20;
/// `SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE` (dB, negative).
pub(crate) const SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE: c_int = 22;
/// `SPEEX_PREPROCESS_SET_ECHO_STATE`.
pub(crate) const SPEEX_PREPROCESS_SET_ECHO_STATE: c_int = 24;

unsafe extern "C" {
    pub(crate) fn speex_echo_state_init(
        frame_size: c_int,
        filter_length: c_int,
    ) -> *mut SpeexEchoState;
    pub(crate) fn speex_echo_state_destroy(st: *mut SpeexEchoState);
    pub(crate) fn speex_echo_cancellation(
        st: *mut SpeexEchoState,
        rec: *const i16,
        play: *const i16,
        out: *mut i16,
    );
    pub(crate) fn speex_echo_ctl(
        st: *mut SpeexEchoState,
        request: c_int,
        ptr: *mut c_void,
    ) -> c_int;

    pub(crate) fn speex_preprocess_state_init(
        frame_size: c_int,
        sampling_rate: c_int,
    ) -> *mut SpeexPreprocessState;
    pub(crate) fn speex_preprocess_state_destroy(st: *mut SpeexPreprocessState);
    pub(crate) fn speex_preprocess_run(st: *mut SpeexPreprocessState, x: *mut i16) -> c_int;
    pub(crate) fn speex_preprocess_ctl(
        st: *mut SpeexPreprocessState,
        request: c_int,
        ptr: *mut c_void,
    ) -> c_int;

    pub(crate) fn speex_resampler_init(
        nb_channels: u32,
        in_rate: u32,
        out_rate: u32,
        quality: c_int,
        err: *mut c_int,
    ) -> *mut SpeexResamplerState;
    pub(crate) fn speex_resampler_destroy(st: *mut SpeexResamplerState);
    pub(crate) fn speex_resampler_process_int(
        st: *mut SpeexResamplerState,
        channel_index: u32,
        input: *const i16,
        in_len: *mut u32,
        out: *mut i16,
        out_len: *mut u32,
    ) -> c_int;
    pub(crate) fn speex_resampler_get_input_latency(st: *mut SpeexResamplerState) -> c_int;
    pub(crate) fn speex_resampler_skip_zeros(st: *mut SpeexResamplerState) -> c_int;
}
