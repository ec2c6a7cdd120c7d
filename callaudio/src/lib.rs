//! Sans-IO call audio for codriver: what travels over an SCO link during a Hands-Free call.
//!
//! No socket, no task, no clock: the daemon's call-audio task reads SCO packets and
//! microphone samples and feeds them in, and writes what comes out.
//!
//! * [`Msbc`]: mSBC (wide band, 16 kHz) through Debian's libsbc; [`H2Packetiser`] and
//!   [`H2Reassembler`] put its 57-byte frames in 60-byte H2 packets and find them again in a
//!   received byte stream cut at any size;
//! * [`Concealer`]: packet-loss concealment for lost and corrupt frames (pitch-synchronous
//!   waveform substitution, fade-out, overlap-add back);
//! * [`CvsdReceiver`] / [`CvsdPacketiser`]: CVSD (narrow band, 8 kHz), where the controller
//!   codes and the host exchanges s16le PCM in packets of the learned size;
//! * [`Resampler`]: codec rate ↔ sound-card rate (SpeexDSP);
//! * [`MicProcessor`]: echo cancellation and noise suppression (SpeexDSP), the speaker signal
//!   as reference;
//! * [`CallPipeline`]: all of the above in both directions.
//!
//! Links `libsbc` and `libspeexdsp` (Debian `libsbc-dev`, `libspeexdsp-dev`) dynamically.

mod cvsd;
mod dsp;
mod error;
mod h2;
mod msbc;
mod pipeline;
mod plc;
mod resample;
mod sys;

pub use cvsd::{CVSD_RATE, CvsdPacketiser, CvsdReceiver, DEFAULT_CVSD_PACKET_LEN};
pub use dsp::{DspConfig, MicProcessor};
pub use error::Error;
pub use h2::{
    H2_PACKET_LEN, H2_SEQ, H2_SYNC, H2Frame, H2Packetiser, H2Reassembler, MSBC_SYNCWORD, seq_number,
};
pub use msbc::{DecodeError, MSBC_FRAME_LEN, MSBC_FRAME_SAMPLES, MSBC_RATE, Msbc};
pub use pipeline::{CallCodec, CallPipeline, Latency, PipelineConfig, RxStats};
pub use plc::Concealer;
pub use resample::{DEFAULT_QUALITY, Resampler};
