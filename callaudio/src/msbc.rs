//! mSBC through Debian's libsbc: one 7.5 ms frame of 120 samples at 16 kHz ↔ 57 bytes.

use std::ffi::c_void;
use std::mem::MaybeUninit;

use crate::Error;
use crate::sys;

/// Samples in one mSBC frame (7.5 ms at 16 kHz).
pub const MSBC_FRAME_SAMPLES: usize = 120;
/// Bytes in one encoded mSBC frame (HFP 1.6+, appendix A: 15 blocks of 8 subbands, bitpool 26).
pub const MSBC_FRAME_LEN: usize = 57;
/// Sample rate of mSBC audio.
pub const MSBC_RATE: u32 = 16_000;

/// Why one mSBC frame did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame is damaged (bad sync word, header or CRC); libsbc's return code.
    #[error("corrupt mSBC frame (libsbc error {0})")]
    Corrupt(isize),
}

/// One direction-agnostic mSBC codec: a libsbc encoder and a libsbc decoder.
///
/// Encoder and decoder keep separate `sbc_t` states (libsbc's filter history differs per
/// direction), so one `Msbc` serves both directions of a call.
pub struct Msbc {
    enc: SbcState,
    dec: SbcState,
}

impl Msbc {
    /// Sets up libsbc for mSBC in both directions.
    pub fn new() -> Result<Self, Error> {
        Ok(Self {
            enc: SbcState::new()?,
            dec: SbcState::new()?,
        })
    }

    /// Encodes one frame of 120 samples into 57 bytes.
    pub fn encode(
        &mut self,
        pcm: &[i16; MSBC_FRAME_SAMPLES],
        out: &mut [u8; MSBC_FRAME_LEN],
    ) -> Result<(), Error> {
        let mut written: isize = 0;
        // SAFETY: `enc` was initialised by sbc_init_msbc; input and output point to live
        // buffers of the lengths passed, which are exactly one mSBC frame each (checked at
        // construction against libsbc's own codesize and frame length).
        let consumed = unsafe {
            sys::sbc_encode(
                self.enc.as_mut_ptr(),
                pcm.as_ptr().cast::<c_void>(),
                size_of_val(pcm),
                out.as_mut_ptr().cast::<c_void>(),
                out.len(),
                &mut written,
            )
        };
        if consumed < 0 || written != MSBC_FRAME_LEN as isize {
            return Err(Error::SbcEncode(consumed.min(written)));
        }
        Ok(())
    }

    /// Decodes one 57-byte frame into 120 samples.
    pub fn decode(
        &mut self,
        frame: &[u8; MSBC_FRAME_LEN],
        out: &mut [i16; MSBC_FRAME_SAMPLES],
    ) -> Result<(), DecodeError> {
        let mut written: usize = 0;
        // SAFETY: as in `encode`; libsbc reads at most `frame.len()` bytes and writes at most
        // `size_of_val(out)` bytes.
        let consumed = unsafe {
            sys::sbc_decode(
                self.dec.as_mut_ptr(),
                frame.as_ptr().cast::<c_void>(),
                frame.len(),
                out.as_mut_ptr().cast::<c_void>(),
                size_of_val(out),
                &mut written,
            )
        };
        if consumed <= 0 || written != size_of_val(out) {
            return Err(DecodeError::Corrupt(consumed));
        }
        Ok(())
    }
}

impl std::fmt::Debug for Msbc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Msbc").finish_non_exhaustive()
    }
}

/// One initialised `sbc_t`, boxed so its address stays put, finished on drop.
struct SbcState(Box<sys::SbcT>);

// SAFETY: an `sbc_t` is plain memory owned by this value (libsbc keeps no global or
// thread-local state); moving it to another thread is fine, sharing is not offered.
unsafe impl Send for SbcState {}

impl SbcState {
    fn new() -> Result<Self, Error> {
        let mut raw: Box<MaybeUninit<sys::SbcT>> = Box::new(MaybeUninit::zeroed());
        // SAFETY: sbc_init_msbc fully initialises the struct (it memsets it first).
        let rc = unsafe { sys::sbc_init_msbc(raw.as_mut_ptr(), 0) };
        if rc < 0 {
            return Err(Error::SbcInit(rc));
        }
        // SAFETY: initialised just above (an all-zero SbcT is also a valid value).
        let mut sbc = SbcState(unsafe { raw.assume_init() });
        // Samples are handed over in host byte order.
        sbc.0.endian = if cfg!(target_endian = "little") {
            sys::SBC_LE
        } else {
            sys::SBC_BE
        };
        // SAFETY: initialised state.
        let (frame_len, codesize) = unsafe {
            (
                sys::sbc_get_frame_length(sbc.as_mut_ptr()),
                sys::sbc_get_codesize(sbc.as_mut_ptr()),
            )
        };
        if frame_len != MSBC_FRAME_LEN || codesize != MSBC_FRAME_SAMPLES * 2 {
            return Err(Error::SbcLayout {
                frame_len,
                codesize,
            });
        }
        Ok(sbc)
    }

    fn as_mut_ptr(&mut self) -> *mut sys::SbcT {
        &mut *self.0
    }
}

impl Drop for SbcState {
    fn drop(&mut self) {
        // SAFETY: initialised by sbc_init_msbc and finished exactly once.
        unsafe { sys::sbc_finish(self.as_mut_ptr()) }
    }
}
