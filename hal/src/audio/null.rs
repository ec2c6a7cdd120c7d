//! The `null` backend: plays into nothing, records silence. Needs no hardware.

use async_trait::async_trait;

use super::{AudioError, AudioInput, AudioOutput, Focus, PcmFormat, PcmSink, PcmSource};

/// Output that discards every sample.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullOutput;

#[async_trait]
impl AudioOutput for NullOutput {
    fn describe(&self) -> String {
        "null output (sound is discarded)".to_owned()
    }

    async fn open(
        &self,
        format: PcmFormat,
        focus: Focus,
        _label: &str,
    ) -> Result<Box<dyn PcmSink>, AudioError> {
        Ok(Box::new(NullSink { format, focus }))
    }
}

struct NullSink {
    format: PcmFormat,
    focus: Focus,
}

#[async_trait]
impl PcmSink for NullSink {
    fn format(&self) -> PcmFormat {
        self.format
    }

    fn focus(&self) -> Focus {
        self.focus
    }

    fn set_gain(&mut self, _gain: f32) {}

    async fn write(&mut self, _samples: &[i16]) -> Result<(), AudioError> {
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<(), AudioError> {
        Ok(())
    }
}

/// Input that never ends and yields silence, paced by the sample clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullInput;

#[async_trait]
impl AudioInput for NullInput {
    fn describe(&self) -> String {
        "null input (silence)".to_owned()
    }

    async fn open(&self, format: PcmFormat) -> Result<Box<dyn PcmSource>, AudioError> {
        Ok(Box::new(SilenceSource { format }))
    }
}

/// A live source of silence: each read waits as long as the samples it returns last, so a
/// recorder sees real-time pacing (under paused tokio time, instantly).
pub(crate) struct SilenceSource {
    pub(crate) format: PcmFormat,
}

#[async_trait]
impl PcmSource for SilenceSource {
    fn format(&self) -> PcmFormat {
        self.format
    }

    async fn read(&mut self, buf: &mut [i16]) -> Result<usize, AudioError> {
        // 20 ms per read at most, like a capture period.
        let period = (self.format.sample_rate as usize / 50) * usize::from(self.format.channels);
        let n = buf.len().min(period.max(1));
        buf[..n].fill(0);
        tokio::time::sleep(self.format.duration_of(n)).await;
        Ok(n)
    }
}
