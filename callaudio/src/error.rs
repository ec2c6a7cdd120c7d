//! The crate's one error type.

/// What can go wrong setting up or running the call-audio pipeline.
///
/// Bad bytes from the phone are not errors: the reassembler counts them and the concealer
/// covers the gap (see [`RxStats`](crate::RxStats)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// libsbc refused to set up an mSBC codec (out of memory); carries its return code.
    #[error("libsbc could not initialise mSBC (error {0})")]
    SbcInit(i32),
    /// libsbc failed to encode a frame; carries its return code.
    #[error("libsbc could not encode an mSBC frame (error {0})")]
    SbcEncode(isize),
    /// libsbc reports sizes other than mSBC's 57-byte frames of 120 samples: not the libsbc
    /// this crate was written against.
    #[error("libsbc reports mSBC frames of {frame_len} bytes for {codesize} input bytes")]
    SbcLayout {
        /// Encoded frame length libsbc reported.
        frame_len: usize,
        /// Input block size libsbc reported.
        codesize: usize,
    },
    /// SpeexDSP could not create a resampler for these rates; carries its error text.
    #[error("SpeexDSP cannot resample {from} Hz to {to} Hz: {reason}")]
    Resampler {
        /// Input rate in Hz.
        from: u32,
        /// Output rate in Hz.
        to: u32,
        /// SpeexDSP's reason.
        reason: String,
    },
    /// SpeexDSP could not create its echo canceller or preprocessor (out of memory).
    #[error("SpeexDSP could not create its {0} state")]
    Speex(&'static str),
    /// A configuration value is out of range; the message says which and what is valid.
    #[error("invalid call-audio configuration: {0}")]
    Config(String),
}
