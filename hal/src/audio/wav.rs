//! The `wav` backend: every playback stream becomes a WAV file, and the microphone reads one.
//!
//! This is how `codriverd --simulate` is audible on a machine without a sound card: the log
//! names the directory, and each chime, prompt or call lands there as
//! `NNNN-<focus>-<label>.wav`.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;

use super::null::SilenceSource;
use super::{AudioError, AudioInput, AudioOutput, Focus, PcmFormat, PcmSink, PcmSource};

/// Output that writes each stream to its own WAV file in a directory.
#[derive(Debug)]
pub struct WavOutput {
    directory: PathBuf,
    /// Numbers the files so they sort in the order they were played.
    sequence: AtomicU32,
}

impl WavOutput {
    /// Creates the directory if needed.
    pub fn new(directory: PathBuf) -> Result<Self, AudioError> {
        std::fs::create_dir_all(&directory).map_err(|e| file_error(&directory, e))?;
        Ok(WavOutput {
            directory,
            sequence: AtomicU32::new(1),
        })
    }

    /// The directory the files go to.
    pub fn directory(&self) -> &Path {
        &self.directory
    }
}

#[async_trait]
impl AudioOutput for WavOutput {
    fn describe(&self) -> String {
        format!("WAV files in {}", self.directory.display())
    }

    async fn open(
        &self,
        format: PcmFormat,
        focus: Focus,
        label: &str,
    ) -> Result<Box<dyn PcmSink>, AudioError> {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        let safe: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(48)
            .collect();
        let path = self
            .directory
            .join(format!("{n:04}-{}-{safe}.wav", focus.as_str()));
        let spec = hound::WavSpec {
            channels: format.channels,
            sample_rate: format.sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(&path, spec).map_err(|e| file_error(&path, e))?;
        tracing::debug!(path = %path.display(), "writing playback to WAV");
        Ok(Box::new(WavSink {
            writer,
            path,
            format,
            focus,
            gain: 1.0,
        }))
    }
}

struct WavSink {
    writer: hound::WavWriter<BufWriter<File>>,
    path: PathBuf,
    format: PcmFormat,
    focus: Focus,
    gain: f32,
}

#[async_trait]
impl PcmSink for WavSink {
    fn format(&self) -> PcmFormat {
        self.format
    }

    fn focus(&self) -> Focus {
        self.focus
    }

    fn set_gain(&mut self, gain: f32) {
        self.gain = gain.clamp(0.0, 1.0);
    }

    async fn write(&mut self, samples: &[i16]) -> Result<(), AudioError> {
        for &s in samples {
            self.writer
                .write_sample(apply_gain(s, self.gain))
                .map_err(|e| file_error(&self.path, e))?;
        }
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<(), AudioError> {
        let path = self.path;
        self.writer.finalize().map_err(|e| file_error(&path, e))
    }
}

/// Scales a sample by a linear gain, saturating.
pub(crate) fn apply_gain(sample: i16, gain: f32) -> i16 {
    if gain >= 1.0 {
        return sample;
    }
    // The float-to-int `as` cast saturates, which is what we want for audio.
    (f32::from(sample) * gain) as i16
}

/// Input that plays a WAV file as the microphone, then ends; silence when no file is set.
#[derive(Debug, Clone)]
pub struct WavInput {
    file: Option<PathBuf>,
}

impl WavInput {
    /// A microphone that "hears" `file`, or silence.
    pub fn new(file: Option<PathBuf>) -> Self {
        WavInput { file }
    }
}

#[async_trait]
impl AudioInput for WavInput {
    fn describe(&self) -> String {
        match &self.file {
            Some(f) => format!("WAV file {}", f.display()),
            None => "silence".to_owned(),
        }
    }

    async fn open(&self, format: PcmFormat) -> Result<Box<dyn PcmSource>, AudioError> {
        let Some(path) = &self.file else {
            return Ok(Box::new(SilenceSource { format }));
        };
        // Reading and converting a long file takes a while on a small board: off the
        // runtime's threads.
        let path = path.clone();
        let samples = tokio::task::spawn_blocking(move || read_wav(&path, format))
            .await
            .map_err(|e| AudioError::File {
                path: self.file.clone().unwrap_or_default(),
                source: e.into(),
            })??;
        Ok(Box::new(BufferSource {
            samples,
            position: 0,
            format,
            started: None,
        }))
    }
}

/// Reads a 16-bit PCM WAV file and converts it to `format`.
fn read_wav(path: &Path, format: PcmFormat) -> Result<Vec<i16>, AudioError> {
    let mut reader = hound::WavReader::open(path).map_err(|e| file_error(path, e))?;
    let spec = reader.spec();
    if spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
        return Err(AudioError::File {
            path: path.to_owned(),
            source: "only 16-bit integer PCM WAV files can be used as the microphone".into(),
        });
    }
    let raw: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(path, e))?;
    let from = PcmFormat {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
    };
    Ok(convert(&raw, from, format))
}

/// A finite source over samples in memory, paced like a real microphone.
pub(crate) struct BufferSource {
    pub(crate) samples: Vec<i16>,
    pub(crate) position: usize,
    pub(crate) format: PcmFormat,
    /// When the first read returned: reads are paced against this clock, not by sleeping a
    /// block's duration after each read (which drifts slower than real time by every
    /// wake-up's lateness, so the call's link would underrun).
    pub(crate) started: Option<tokio::time::Instant>,
}

#[async_trait]
impl PcmSource for BufferSource {
    fn format(&self) -> PcmFormat {
        self.format
    }

    async fn read(&mut self, buf: &mut [i16]) -> Result<usize, AudioError> {
        let period = (self.format.sample_rate as usize / 50) * usize::from(self.format.channels);
        let n = buf
            .len()
            .min(period.max(1))
            .min(self.samples.len() - self.position);
        buf[..n].copy_from_slice(&self.samples[self.position..self.position + n]);
        self.position += n;
        if n > 0 {
            let started = *self.started.get_or_insert_with(tokio::time::Instant::now);
            tokio::time::sleep_until(started + self.format.duration_of(self.position)).await;
        }
        Ok(n)
    }
}

/// Converts interleaved samples between formats: channels are averaged or duplicated, the rate
/// is changed by linear interpolation. Good enough for fixtures and prompts, not for calls.
pub fn convert(samples: &[i16], from: PcmFormat, to: PcmFormat) -> Vec<i16> {
    let from_ch = usize::from(from.channels.max(1));
    let to_ch = usize::from(to.channels.max(1));
    let mono: Vec<f32> = samples
        .chunks(from_ch)
        .map(|frame| frame.iter().map(|&s| f32::from(s)).sum::<f32>() / frame.len() as f32)
        .collect();
    let resampled: Vec<f32> = if from.sample_rate == to.sample_rate || mono.is_empty() {
        mono
    } else {
        let ratio = f64::from(from.sample_rate) / f64::from(to.sample_rate);
        let out_len = (mono.len() as f64 / ratio).floor() as usize;
        (0..out_len)
            .map(|i| {
                let pos = i as f64 * ratio;
                let idx = pos.floor() as usize;
                let frac = (pos - idx as f64) as f32;
                let a = mono[idx.min(mono.len() - 1)];
                let b = mono[(idx + 1).min(mono.len() - 1)];
                a + (b - a) * frac
            })
            .collect()
    };
    resampled
        .iter()
        .flat_map(|&s| std::iter::repeat_n(s.round() as i16, to_ch))
        .collect()
}

fn file_error(path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> AudioError {
    AudioError::File {
        path: path.to_owned(),
        source: Box::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn wav_output_round_trips_through_wav_input() {
        let dir = tempfile::tempdir().unwrap();
        let out = WavOutput::new(dir.path().to_owned()).unwrap();
        let mut sink = out
            .open(PcmFormat::WIDEBAND, Focus::Chime, "ding dong")
            .await
            .unwrap();
        let tone: Vec<i16> = (0..1600)
            .map(|i| ((i % 40) * 500 - 10_000) as i16)
            .collect();
        sink.write(&tone).await.unwrap();
        sink.finish().await.unwrap();

        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(name, "0001-chime-ding_dong.wav");

        let input = WavInput::new(Some(files[0].clone()));
        let mut src = input.open(PcmFormat::WIDEBAND).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0i16; 512];
        loop {
            let n = src.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, tone);
    }

    #[test]
    fn gain_scales_and_saturates() {
        assert_eq!(apply_gain(1000, 0.5), 500);
        assert_eq!(apply_gain(i16::MIN, 1.0), i16::MIN);
        assert_eq!(apply_gain(1000, 0.0), 0);
    }

    #[test]
    fn convert_resamples_and_mixes() {
        let stereo_16k: Vec<i16> = (0..320).flat_map(|i| [i as i16, i as i16]).collect();
        let mono_8k = convert(
            &stereo_16k,
            PcmFormat {
                sample_rate: 16_000,
                channels: 2,
            },
            PcmFormat::NARROWBAND,
        );
        assert_eq!(mono_8k.len(), 160);
        assert_eq!(mono_8k[10], 20);
    }
}
