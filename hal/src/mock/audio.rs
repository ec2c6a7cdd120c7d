//! Mock audio: an output that records what was played, an input that plays fixtures.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::watch;

use super::{Expectations, lock};
use crate::audio::wav::BufferSource;
use crate::audio::{AudioError, AudioInput, AudioOutput, Focus, PcmFormat, PcmSink, PcmSource};

/// One stream played on a [`MockAudioOutput`].
#[derive(Debug, Clone, PartialEq)]
pub struct Playback {
    /// The label the stream was opened with.
    pub label: String,
    /// The focus it was opened with.
    pub focus: Focus,
    /// Its format.
    pub format: PcmFormat,
    /// Every sample written, after gain.
    pub samples: Vec<i16>,
    /// Whether the stream was finished (played out) rather than dropped.
    pub finished: bool,
}

/// An output that records every stream. Clones share the record.
#[derive(Debug, Clone)]
pub struct MockAudioOutput {
    inner: Arc<OutputInner>,
}

#[derive(Debug)]
struct OutputInner {
    playbacks: Mutex<Vec<Playback>>,
    /// Counts finished streams so tests can wait for playback without sleeping.
    finished: watch::Sender<usize>,
    expectations: Expectations<(Focus, String)>,
    /// Writes take as long as the samples last (tokio time), like a sound card.
    paced: AtomicBool,
}

impl Default for MockAudioOutput {
    fn default() -> Self {
        MockAudioOutput {
            inner: Arc::new(OutputInner {
                playbacks: Mutex::new(Vec::new()),
                finished: watch::channel(0).0,
                expectations: Expectations::new("MockAudioOutput"),
                paced: AtomicBool::new(false),
            }),
        }
    }
}

impl MockAudioOutput {
    /// A fresh recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Expects a stream with `focus` whose label starts with `label_prefix` to be finished
    /// with at least one sample, after the previously expected ones.
    pub fn expect_playback(&self, focus: Focus, label_prefix: &str) {
        self.inner
            .expectations
            .expect((focus, label_prefix.to_owned()));
    }

    /// Makes every write take as long as its samples last (in tokio time), as a sound card
    /// does, so a test can act while something plays. Off by default: writes return at once.
    pub fn set_paced(&self, paced: bool) {
        self.inner.paced.store(paced, Ordering::Relaxed);
    }

    /// Panics if an expected playback has not happened.
    pub fn done(&self) {
        self.inner.expectations.done();
    }

    /// Every stream opened so far (finished or still open), in order.
    pub fn playbacks(&self) -> Vec<Playback> {
        lock(&self.inner.playbacks).clone()
    }

    /// Waits until at least `n` streams have finished.
    pub async fn wait_finished(&self, n: usize) {
        let mut rx = self.inner.finished.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|&count| count >= n).await;
    }
}

#[async_trait]
impl AudioOutput for MockAudioOutput {
    fn describe(&self) -> String {
        "mock audio output (recording)".to_owned()
    }

    async fn open(
        &self,
        format: PcmFormat,
        focus: Focus,
        label: &str,
    ) -> Result<Box<dyn PcmSink>, AudioError> {
        let index = {
            let mut playbacks = lock(&self.inner.playbacks);
            playbacks.push(Playback {
                label: label.to_owned(),
                focus,
                format,
                samples: Vec::new(),
                finished: false,
            });
            playbacks.len() - 1
        };
        Ok(Box::new(MockSink {
            inner: self.inner.clone(),
            index,
            format,
            focus,
            gain: 1.0,
        }))
    }
}

struct MockSink {
    inner: Arc<OutputInner>,
    index: usize,
    format: PcmFormat,
    focus: Focus,
    gain: f32,
}

#[async_trait]
impl PcmSink for MockSink {
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
        if self.inner.paced.load(Ordering::Relaxed) {
            tokio::time::sleep(self.format.duration_of(samples.len())).await;
        }
        let gain = self.gain;
        lock(&self.inner.playbacks)[self.index].samples.extend(
            samples
                .iter()
                .map(|&s| crate::audio::wav::apply_gain(s, gain)),
        );
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<(), AudioError> {
        let (focus, label, played) = {
            let mut playbacks = lock(&self.inner.playbacks);
            let p = &mut playbacks[self.index];
            p.finished = true;
            (p.focus, p.label.clone(), !p.samples.is_empty())
        };
        if played {
            self.inner
                .expectations
                .observe(|(f, prefix)| *f == focus && label.starts_with(prefix.as_str()));
        }
        self.inner.finished.send_modify(|n| *n += 1);
        Ok(())
    }
}

/// A microphone that plays fixture recordings: each `open` takes the next queued fixture, or
/// silence when none is left.
#[derive(Debug, Clone, Default)]
pub struct MockAudioInput {
    fixtures: Arc<Mutex<VecDeque<Vec<i16>>>>,
    opened: Arc<Mutex<Vec<PcmFormat>>>,
}

impl MockAudioInput {
    /// A microphone with no fixtures (silence).
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues samples (in the format the next `open` asks for) for the next capture.
    pub fn push_fixture(&self, samples: Vec<i16>) {
        lock(&self.fixtures).push_back(samples);
    }

    /// The formats every capture was opened with.
    pub fn opened(&self) -> Vec<PcmFormat> {
        lock(&self.opened).clone()
    }
}

#[async_trait]
impl AudioInput for MockAudioInput {
    fn describe(&self) -> String {
        "mock microphone (fixtures)".to_owned()
    }

    async fn open(&self, format: PcmFormat) -> Result<Box<dyn PcmSource>, AudioError> {
        lock(&self.opened).push(format);
        match lock(&self.fixtures).pop_front() {
            Some(samples) => Ok(Box::new(BufferSource {
                started: None,
                samples,
                position: 0,
                format,
            })),
            None => Ok(Box::new(crate::audio::null::SilenceSource { format })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_what_was_played() {
        let out = MockAudioOutput::new();
        out.expect_playback(Focus::Chime, "paired");
        let mut sink = out
            .open(PcmFormat::PROMPT, Focus::Chime, "paired chime")
            .await
            .unwrap();
        sink.set_gain(0.5);
        sink.write(&[1000, -1000]).await.unwrap();
        sink.finish().await.unwrap();
        out.wait_finished(1).await;
        let p = &out.playbacks()[0];
        assert_eq!(p.samples, vec![500, -500]);
        assert!(p.finished);
        out.done();
    }

    #[test]
    #[should_panic(expected = "expectation(s) not met")]
    fn unconsumed_playback_expectation_fails_on_drop() {
        let out = MockAudioOutput::new();
        out.expect_playback(Focus::Call, "ringtone");
        drop(out);
    }

    #[tokio::test(start_paused = true)]
    async fn input_plays_fixtures_then_silence() {
        let mic = MockAudioInput::new();
        mic.push_fixture(vec![7; 10]);
        let mut src = mic.open(PcmFormat::WIDEBAND).await.unwrap();
        let mut buf = [0i16; 64];
        assert_eq!(src.read(&mut buf).await.unwrap(), 10);
        assert_eq!(src.read(&mut buf).await.unwrap(), 0);
        let mut silent = mic.open(PcmFormat::WIDEBAND).await.unwrap();
        assert!(silent.read(&mut buf).await.unwrap() > 0);
        assert_eq!(mic.opened().len(), 2);
    }
}
