//! Audio output and input: PCM streams with a focus, backends chosen by name.
//!
//! Samples are interleaved signed 16-bit. A backend is picked from [`OUTPUT_BACKENDS`] /
//! [`INPUT_BACKENDS`] by the name in the config, the way librespot picks its audio backends;
//! `null` and `wav` need no hardware and are always available.

pub(crate) mod null;
pub(crate) mod wav;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

pub use null::{NullInput, NullOutput};
pub use wav::{WavInput, WavOutput, convert};

/// Who wants the speakers. Higher variants win: a call silences everything else.
///
/// The audio router (in the daemon) arbitrates; the focus travels with every stream so a
/// backend or a mock can tell what was played for what reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Focus {
    /// Short notification sounds.
    Chime,
    /// Playback of a voice or text message.
    VoiceMessage,
    /// The phone's voice assistant (Siri, Google Assistant).
    VoiceAssistant,
    /// A phone call, including ringing.
    Call,
}

impl Focus {
    /// A short lowercase name for logs and file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Focus::Chime => "chime",
            Focus::VoiceMessage => "voice-message",
            Focus::VoiceAssistant => "voice-assistant",
            Focus::Call => "call",
        }
    }
}

/// The shape of a PCM stream: interleaved signed 16-bit samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PcmFormat {
    /// Frames per second.
    pub sample_rate: u32,
    /// Interleaved channels per frame.
    pub channels: u16,
}

impl PcmFormat {
    /// 8 kHz mono: narrow-band call audio (CVSD).
    pub const NARROWBAND: PcmFormat = PcmFormat {
        sample_rate: 8_000,
        channels: 1,
    };
    /// 16 kHz mono: wide-band call audio (mSBC) and voice replies.
    pub const WIDEBAND: PcmFormat = PcmFormat {
        sample_rate: 16_000,
        channels: 1,
    };
    /// 48 kHz mono: chimes and prompts.
    pub const PROMPT: PcmFormat = PcmFormat {
        sample_rate: 48_000,
        channels: 1,
    };

    /// How long `samples` interleaved samples last in this format.
    pub fn duration_of(self, samples: usize) -> std::time::Duration {
        let frames = samples as u64 / u64::from(self.channels.max(1));
        std::time::Duration::from_micros(frames * 1_000_000 / u64::from(self.sample_rate.max(1)))
    }
}

/// A place sound can go: speakers, WAV files, nowhere, or a test recorder.
#[async_trait]
pub trait AudioOutput: Send + Sync {
    /// Describes where the sound goes, for logs ("ALSA device default", "WAV files in /tmp/x").
    fn describe(&self) -> String;

    /// Opens a playback stream. `label` names the stream in logs and file names.
    async fn open(
        &self,
        format: PcmFormat,
        focus: Focus,
        label: &str,
    ) -> Result<Box<dyn PcmSink>, AudioError>;
}

/// One open playback stream.
#[async_trait]
pub trait PcmSink: Send {
    /// The stream's format.
    fn format(&self) -> PcmFormat;

    /// The focus the stream was opened with.
    fn focus(&self) -> Focus;

    /// Sets a linear gain in 0.0..=1.0 for samples written from now on (volume, ducking).
    fn set_gain(&mut self, gain: f32);

    /// Queues samples for playback. Real devices apply backpressure: this waits while the
    /// device buffer is full, so a writer is paced by the hardware clock.
    async fn write(&mut self, samples: &[i16]) -> Result<(), AudioError>;

    /// Plays out what is queued and closes the stream.
    async fn finish(self: Box<Self>) -> Result<(), AudioError>;
}

/// A place the driver's voice comes from: a microphone, a WAV file, silence, a test fixture.
#[async_trait]
pub trait AudioInput: Send + Sync {
    /// Describes the source, for logs.
    fn describe(&self) -> String;

    /// Opens a capture stream.
    async fn open(&self, format: PcmFormat) -> Result<Box<dyn PcmSource>, AudioError>;
}

/// One open capture stream.
#[async_trait]
pub trait PcmSource: Send {
    /// The stream's format.
    fn format(&self) -> PcmFormat;

    /// Reads captured samples into `buf`, waiting until some are available. `Ok(0)` means the
    /// source has ended (a file ran out); a live microphone never ends.
    async fn read(&mut self, buf: &mut [i16]) -> Result<usize, AudioError>;
}

/// Errors from an audio backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// The configured backend name is not in the table.
    #[error("unknown audio backend {name:?}; valid backends: {valid}")]
    UnknownBackend {
        /// The name asked for.
        name: String,
        /// The names that exist in this build.
        valid: String,
    },
    /// The device does not exist or cannot be opened.
    #[error("audio device {device:?} is unavailable: {reason}")]
    DeviceUnavailable {
        /// The device name.
        device: String,
        /// Why.
        reason: String,
    },
    /// The device cannot play or record this format.
    #[error("audio format {0:?} is not supported by this device")]
    UnsupportedFormat(PcmFormat),
    /// Reading or writing a file failed.
    #[error("audio file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O or WAV error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The stream was closed underneath us.
    #[error("audio stream closed")]
    Closed,
    /// The backend failed in some other way.
    #[error("audio backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Where an output backend sends its sound, from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputOptions {
    /// ALSA device name for `alsa` and `default`.
    pub device: String,
    /// Directory for the `wav` backend (and the `default` backend's fallback).
    pub wav_directory: PathBuf,
}

/// Where an input backend takes sound from, from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputOptions {
    /// ALSA device name for `alsa` and `default`.
    pub device: String,
    /// The file the `wav` backend reads as the microphone; silence when `None`.
    pub wav_file: Option<PathBuf>,
}

/// Constructor of an output backend.
pub type OutputConstructor = fn(&OutputOptions) -> Result<Arc<dyn AudioOutput>, AudioError>;

/// Constructor of an input backend.
pub type InputConstructor = fn(&InputOptions) -> Result<Arc<dyn AudioInput>, AudioError>;

/// Output backends by name, in the order `default` tries them.
pub const OUTPUT_BACKENDS: &[(&str, OutputConstructor)] = &[
    #[cfg(feature = "linux")]
    ("alsa", crate::linux::audio::open_alsa_output),
    ("wav", |o| {
        Ok(Arc::new(WavOutput::new(o.wav_directory.clone())?))
    }),
    ("null", |_| Ok(Arc::new(NullOutput))),
];

/// Input backends by name.
pub const INPUT_BACKENDS: &[(&str, InputConstructor)] = &[
    #[cfg(feature = "linux")]
    ("alsa", crate::linux::audio::open_alsa_input),
    ("wav", |o| Ok(Arc::new(WavInput::new(o.wav_file.clone())))),
    ("null", |_| Ok(Arc::new(NullInput))),
];

/// Opens the output backend called `name`.
///
/// `default` means the system's sound device when there is one, otherwise WAV files in
/// `options.wav_directory` (logged, so the user knows where to listen).
pub fn open_output(
    name: &str,
    options: &OutputOptions,
) -> Result<Arc<dyn AudioOutput>, AudioError> {
    if name == "default" {
        #[cfg(feature = "linux")]
        match crate::linux::audio::open_alsa_output(options) {
            Ok(out) => return Ok(out),
            Err(e) => tracing::info!(error = %e, "no sound device; falling back to WAV files"),
        }
        return Ok(Arc::new(WavOutput::new(options.wav_directory.clone())?));
    }
    let (_, open) = OUTPUT_BACKENDS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| AudioError::UnknownBackend {
            name: name.to_owned(),
            valid: backend_names(OUTPUT_BACKENDS.iter().map(|(n, _)| *n)),
        })?;
    open(options)
}

/// Opens the input backend called `name`; `default` means the system's microphone when there
/// is one, otherwise silence.
pub fn open_input(name: &str, options: &InputOptions) -> Result<Arc<dyn AudioInput>, AudioError> {
    if name == "default" {
        #[cfg(feature = "linux")]
        match crate::linux::audio::open_alsa_input(options) {
            Ok(input) => return Ok(input),
            Err(e) => tracing::info!(error = %e, "no microphone; recording silence"),
        }
        return Ok(Arc::new(WavInput::new(options.wav_file.clone())));
    }
    let (_, open) = INPUT_BACKENDS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| AudioError::UnknownBackend {
            name: name.to_owned(),
            valid: backend_names(INPUT_BACKENDS.iter().map(|(n, _)| *n)),
        })?;
    open(options)
}

fn backend_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut all: Vec<&str> = vec!["default"];
    all.extend(names);
    all.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_backend_lists_valid_names() {
        let err = open_output(
            "pulse",
            &OutputOptions {
                device: "default".into(),
                wav_directory: "/nonexistent".into(),
            },
        )
        .err()
        .expect("pulse is not a backend");
        let text = err.to_string();
        assert!(text.contains("\"pulse\""), "{text}");
        assert!(text.contains("default, "), "{text}");
        assert!(text.contains("null"), "{text}");
    }

    #[test]
    fn focus_orders_call_highest() {
        assert!(Focus::Call > Focus::VoiceAssistant);
        assert!(Focus::VoiceAssistant > Focus::VoiceMessage);
        assert!(Focus::VoiceMessage > Focus::Chime);
    }

    #[test]
    fn duration_of_counts_frames() {
        let f = PcmFormat {
            sample_rate: 8_000,
            channels: 2,
        };
        assert_eq!(f.duration_of(16_000), std::time::Duration::from_secs(1));
    }
}
