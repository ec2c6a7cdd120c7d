//! ALSA audio: playback through rodio (its mixer and resampler), capture through cpal.
//!
//! cpal streams may not move between threads, so each lives on a dedicated thread that owns it
//! and ends when the Rust side drops its handle. Samples cross between that thread and tokio
//! through small bounded queues: a writer waits when about [`PLAYBACK_BUFFER`] is queued, and
//! capture drops the oldest samples when the reader falls more than [`CAPTURE_BUFFER`] behind.
//!
//! Device names are the ones cpal lists: `default` (whatever `pcm.!default` is in the ALSA
//! configuration), the sound servers' PCMs (`pipewire`, `pulse`, `jack`) when installed, and
//! each card by its name (e.g. `bcm2835 Headphones`), opened as `plughw`. Other ALSA PCMs are
//! reached by making them the default in `/etc/asound.conf`.

use std::collections::VecDeque;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rodio::cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use rodio::cpal::{self, FromSample, SampleFormat, SizedSample};
use tokio::sync::{Notify, Semaphore, oneshot, watch};

use crate::audio::wav::convert;
use crate::audio::{
    AudioError, AudioInput, AudioOutput, Focus, InputOptions, OutputOptions, PcmFormat, PcmSink,
    PcmSource,
};

/// How much playback may be queued ahead of the device before `write` waits.
pub const PLAYBACK_BUFFER: Duration = Duration::from_millis(200);

/// How far capture may run ahead of the reader before the oldest samples are dropped.
pub const CAPTURE_BUFFER: Duration = Duration::from_millis(500);

/// Opens the ALSA output device named in `options` (the `alsa` backend).
///
/// Opens the device right away, so a missing sound card is reported here (and `default` falls
/// back to WAV files). Blocks briefly while ALSA opens the device: call it at start-up.
pub fn open_alsa_output(options: &OutputOptions) -> Result<Arc<dyn AudioOutput>, AudioError> {
    Ok(Arc::new(AlsaOutput::open(&options.device)?))
}

/// Opens the ALSA capture device named in `options` (the `alsa` backend).
///
/// Checks that the device exists and can record; each [`AudioInput::open`] then starts its own
/// capture stream. Blocks briefly while ALSA probes the device: call it at start-up.
pub fn open_alsa_input(options: &InputOptions) -> Result<Arc<dyn AudioInput>, AudioError> {
    Ok(Arc::new(AlsaInput::open(&options.device)?))
}

/// Playback on an ALSA device through one rodio output stream; every [`PcmSink`] is a source
/// in its mixer, so a chime can sound over a call.
pub struct AlsaOutput {
    device: String,
    mixer: rodio::mixer::Mixer,
    config: rodio::stream::OutputStreamConfig,
    /// Dropping this ends the thread that owns the output stream, closing the device.
    _stop: std_mpsc::Sender<()>,
}

impl AlsaOutput {
    /// Opens `device` (`default` for the default device) and starts its output stream.
    pub fn open(device: &str) -> Result<Self, AudioError> {
        let (ready_tx, ready_rx) = std_mpsc::sync_channel(1);
        let (stop, stop_rx) = std_mpsc::channel::<()>();
        let name = device.to_owned();
        std::thread::Builder::new()
            .name("codriver-alsa-out".to_owned())
            .spawn(move || match open_output_stream(&name) {
                Ok(mut stream) => {
                    stream.log_on_drop(false);
                    let _ = ready_tx.send(Ok((stream.mixer().clone(), *stream.config())));
                    // Wait until the AlsaOutput is dropped (the sender disconnects).
                    let _ = stop_rx.recv();
                    drop(stream);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| AudioError::Backend(Box::new(e)))?;
        let (mixer, config) = ready_rx.recv().map_err(|_| AudioError::Closed)??;
        tracing::debug!(
            device,
            rate = config.sample_rate(),
            channels = config.channel_count(),
            "ALSA output open"
        );
        Ok(AlsaOutput {
            device: device.to_owned(),
            mixer,
            config,
            _stop: stop,
        })
    }
}

impl std::fmt::Debug for AlsaOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlsaOutput")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl AudioOutput for AlsaOutput {
    fn describe(&self) -> String {
        format!(
            "ALSA device {} ({} Hz, {} channels)",
            self.device,
            self.config.sample_rate(),
            self.config.channel_count()
        )
    }

    async fn open(
        &self,
        format: PcmFormat,
        focus: Focus,
        label: &str,
    ) -> Result<Box<dyn PcmSink>, AudioError> {
        if format.sample_rate == 0 || format.channels == 0 {
            return Err(AudioError::UnsupportedFormat(format));
        }
        let queue = Arc::new(PlaybackQueue::new(format));
        // The mixer converts rate and channels to the device's.
        self.mixer.add(QueueSource::new(queue.clone(), format));
        tracing::debug!(label, focus = focus.as_str(), "ALSA playback stream open");
        Ok(Box::new(AlsaSink {
            queue,
            format,
            focus,
            gain: 1.0,
            finished: false,
        }))
    }
}

fn open_output_stream(name: &str) -> Result<rodio::OutputStream, AudioError> {
    let device = find_device(name, Direction::Output)?;
    let unavailable = |e: rodio::StreamError| AudioError::DeviceUnavailable {
        device: name.to_owned(),
        reason: e.to_string(),
    };
    rodio::OutputStreamBuilder::from_device(device)
        .map_err(unavailable)?
        .with_error_callback(|e| tracing::warn!(error = %e, "ALSA output error"))
        .open_stream_or_fallback()
        .map_err(unavailable)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Output,
    Input,
}

/// Finds a device by the name cpal gives it; `default` is the default device.
fn find_device(name: &str, direction: Direction) -> Result<cpal::Device, AudioError> {
    let host = cpal::default_host();
    let unavailable = |reason: String| AudioError::DeviceUnavailable {
        device: name.to_owned(),
        reason,
    };
    if name == "default" {
        let device = match direction {
            Direction::Output => host.default_output_device(),
            Direction::Input => host.default_input_device(),
        };
        return device.ok_or_else(|| unavailable("there is no default device".to_owned()));
    }
    let devices: Vec<cpal::Device> = match direction {
        Direction::Output => host
            .output_devices()
            .map_err(|e| unavailable(e.to_string()))?
            .collect(),
        Direction::Input => host
            .input_devices()
            .map_err(|e| unavailable(e.to_string()))?
            .collect(),
    };
    let mut names = Vec::with_capacity(devices.len());
    for device in devices {
        match device.name() {
            Ok(n) if n == name => return Ok(device),
            Ok(n) => names.push(n),
            Err(_) => {}
        }
    }
    Err(unavailable(format!(
        "no such device; available: {}",
        names.join(", ")
    )))
}

// ---------------------------------------------------------------------------------------------
// Playback

/// One playback stream's samples between the writer (tokio) and the audio thread.
struct PlaybackQueue {
    state: Mutex<QueueState>,
    /// Free room, in samples: `write` takes permits, the audio thread gives them back.
    room: Semaphore,
    /// At most this many samples are queued.
    capacity: usize,
    /// Becomes `true` when the source has played everything after `finish`, was stopped, or
    /// was dropped with its output stream.
    done: watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct QueueState {
    samples: VecDeque<f32>,
    /// No more samples will come: play out what is queued, then end.
    finished: bool,
    /// The sink was dropped without `finish`: end now.
    stopped: bool,
}

/// What the audio thread gets when it asks for more samples.
#[derive(Debug, PartialEq)]
enum Take {
    /// This many samples (whole frames) were appended.
    Samples(usize),
    /// Nothing queued yet: play silence and ask again.
    Underrun,
    /// The stream is over.
    End,
}

impl QueueState {
    /// Moves up to `max` samples, in whole frames of `channels`, into `out`.
    fn take(&mut self, out: &mut Vec<f32>, max: usize, channels: usize) -> Take {
        if self.stopped {
            return Take::End;
        }
        let whole = self.samples.len() - self.samples.len() % channels;
        let max = max - max % channels;
        let n = whole.min(max);
        if n > 0 {
            out.extend(self.samples.drain(..n));
            return Take::Samples(n);
        }
        if self.finished {
            // A trailing partial frame cannot be played.
            self.samples.clear();
            Take::End
        } else {
            Take::Underrun
        }
    }
}

impl PlaybackQueue {
    fn new(format: PcmFormat) -> Self {
        let channels = usize::from(format.channels.max(1));
        let frames = (u128::from(format.sample_rate) * PLAYBACK_BUFFER.as_millis() / 1000) as usize;
        // Whole frames, at least one, and few enough for semaphore permits.
        let capacity = (frames.max(1) * channels).min(1 << 24);
        PlaybackQueue {
            state: Mutex::new(QueueState::default()),
            room: Semaphore::new(capacity),
            capacity,
            done: watch::Sender::new(false),
        }
    }

    fn state(&self) -> MutexGuard<'_, QueueState> {
        // Nothing panics while holding this lock (no user code, no allocation failure we
        // handle); a poisoned queue is still a consistent queue.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `samples` with `gain`, waiting for room.
    async fn push(&self, samples: &[i16], gain: f32) -> Result<(), AudioError> {
        for piece in samples.chunks(self.capacity) {
            // `capacity` fits in u32 (see `new`).
            let wanted = u32::try_from(piece.len()).map_err(|_| AudioError::Closed)?;
            self.room
                .acquire_many(wanted)
                .await
                .map_err(|_| AudioError::Closed)?
                .forget();
            self.state()
                .samples
                .extend(piece.iter().map(|&s| to_f32(s, gain)));
        }
        Ok(())
    }

    /// Called by the audio thread when the stream ends or its source is dropped.
    fn end(&self) {
        self.room.close();
        self.done.send_replace(true);
    }
}

/// Converts a sample to rodio's float format, applying a linear gain.
fn to_f32(sample: i16, gain: f32) -> f32 {
    f32::from(sample) / 32_768.0 * gain
}

/// How many samples the audio thread takes from the queue at once: one lock per chunk, not
/// per sample.
const PULL_CHUNK: usize = 480;

/// A rodio source reading a [`PlaybackQueue`] on the audio thread. Plays silence while the
/// writer is behind, so the stream keeps its place in the mixer.
struct QueueSource {
    queue: Arc<PlaybackQueue>,
    format: PcmFormat,
    local: Vec<f32>,
    position: usize,
    ended: bool,
}

impl QueueSource {
    fn new(queue: Arc<PlaybackQueue>, format: PcmFormat) -> Self {
        QueueSource {
            queue,
            format,
            local: Vec::with_capacity(PULL_CHUNK),
            position: 0,
            ended: false,
        }
    }

    fn refill(&mut self) -> bool {
        let channels = usize::from(self.format.channels.max(1));
        self.local.clear();
        self.position = 0;
        let taken = self
            .queue
            .state()
            .take(&mut self.local, PULL_CHUNK.max(channels), channels);
        match taken {
            Take::Samples(n) => {
                self.queue.room.add_permits(n);
                true
            }
            Take::Underrun => {
                self.local.resize(channels, 0.0);
                true
            }
            Take::End => {
                self.ended = true;
                self.queue.end();
                false
            }
        }
    }
}

impl Iterator for QueueSource {
    type Item = rodio::Sample;

    fn next(&mut self) -> Option<rodio::Sample> {
        if self.ended {
            return None;
        }
        if self.position == self.local.len() && !self.refill() {
            return None;
        }
        let sample = self.local.get(self.position).copied();
        self.position += 1;
        sample
    }
}

impl rodio::Source for QueueSource {
    fn current_span_len(&self) -> Option<usize> {
        // Rate and channels never change.
        None
    }

    fn channels(&self) -> rodio::ChannelCount {
        self.format.channels
    }

    fn sample_rate(&self) -> rodio::SampleRate {
        self.format.sample_rate
    }

    fn total_duration(&self) -> Option<Duration> {
        None
    }
}

impl Drop for QueueSource {
    fn drop(&mut self) {
        // The output stream went away (or the stream ended): no writer may wait forever.
        self.queue.end();
    }
}

struct AlsaSink {
    queue: Arc<PlaybackQueue>,
    format: PcmFormat,
    focus: Focus,
    gain: f32,
    finished: bool,
}

#[async_trait]
impl PcmSink for AlsaSink {
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
        self.queue.push(samples, self.gain).await
    }

    async fn finish(mut self: Box<Self>) -> Result<(), AudioError> {
        self.finished = true;
        self.queue.state().finished = true;
        let mut done = self.queue.done.subscribe();
        // Everything queued plays within the buffer's length; allow for a slow device start.
        let limit = self.format.duration_of(self.queue.capacity) + Duration::from_secs(2);
        match tokio::time::timeout(limit, done.wait_for(|done| *done)).await {
            Ok(_) => Ok(()),
            Err(_) => Err(AudioError::Backend(
                "the ALSA device stopped taking samples".into(),
            )),
        }
    }
}

impl Drop for AlsaSink {
    fn drop(&mut self) {
        if !self.finished {
            self.queue.state().stopped = true;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Capture

/// Capture from an ALSA device through cpal.
#[derive(Debug)]
pub struct AlsaInput {
    device: String,
}

impl AlsaInput {
    /// Checks that `device` (`default` for the default device) exists and can record.
    pub fn open(device: &str) -> Result<Self, AudioError> {
        let found = find_device(device, Direction::Input)?;
        found
            .default_input_config()
            .map_err(|e| AudioError::DeviceUnavailable {
                device: device.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(AlsaInput {
            device: device.to_owned(),
        })
    }
}

#[async_trait]
impl AudioInput for AlsaInput {
    fn describe(&self) -> String {
        format!("ALSA capture device {}", self.device)
    }

    async fn open(&self, format: PcmFormat) -> Result<Box<dyn PcmSource>, AudioError> {
        if format.sample_rate == 0 || format.channels == 0 {
            return Err(AudioError::UnsupportedFormat(format));
        }
        let ring = Arc::new(CaptureRing::new(format));
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop, stop_rx) = std_mpsc::channel::<()>();
        let device = self.device.clone();
        let thread_ring = ring.clone();
        std::thread::Builder::new()
            .name("codriver-alsa-in".to_owned())
            .spawn(move || {
                match start_capture(&device, format, thread_ring.clone()) {
                    Ok(stream) => {
                        let _ = ready_tx.send(Ok(()));
                        // Until the PcmSource is dropped.
                        let _ = stop_rx.recv();
                        drop(stream);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
                thread_ring.close();
            })
            .map_err(|e| AudioError::Backend(Box::new(e)))?;
        ready_rx.await.map_err(|_| AudioError::Closed)??;
        Ok(Box::new(AlsaSource {
            format,
            ring,
            reported_drops: 0,
            _stop: stop,
        }))
    }
}

/// Opens and starts a capture stream feeding `ring` in `want`'s format. Runs on the thread
/// that will own the stream.
fn start_capture(
    name: &str,
    want: PcmFormat,
    ring: Arc<CaptureRing>,
) -> Result<cpal::Stream, AudioError> {
    let device = find_device(name, Direction::Input)?;
    let unavailable = |reason: String| AudioError::DeviceUnavailable {
        device: name.to_owned(),
        reason,
    };
    let ranges: Vec<cpal::SupportedStreamConfigRange> = device
        .supported_input_configs()
        .map_err(|e| unavailable(e.to_string()))?
        .collect();
    let chosen = match choose_input_config(&ranges, want) {
        Some(config) => config,
        None => device
            .default_input_config()
            .map_err(|e| unavailable(e.to_string()))?,
    };
    let config = chosen.config();
    let from = PcmFormat {
        sample_rate: config.sample_rate.0,
        channels: config.channels,
    };
    if from != want {
        tracing::debug!(
            ?from,
            ?want,
            "capturing in the device's format and converting"
        );
    }
    let stream = match chosen.sample_format() {
        SampleFormat::I16 => build_capture::<i16>(&device, &config, from, want, ring),
        SampleFormat::F32 => build_capture::<f32>(&device, &config, from, want, ring),
        SampleFormat::I32 => build_capture::<i32>(&device, &config, from, want, ring),
        SampleFormat::U16 => build_capture::<u16>(&device, &config, from, want, ring),
        _ => return Err(AudioError::UnsupportedFormat(want)),
    }
    .map_err(|e| unavailable(e.to_string()))?;
    stream.play().map_err(|e| unavailable(e.to_string()))?;
    Ok(stream)
}

fn build_capture<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    from: PcmFormat,
    want: PcmFormat,
    ring: Arc<CaptureRing>,
) -> Result<cpal::Stream, cpal::BuildStreamError>
where
    T: SizedSample + Send + 'static,
    i16: FromSample<T>,
{
    let error_ring = ring.clone();
    device.build_input_stream::<T, _, _>(
        config,
        move |data: &[T], _| {
            let samples: Vec<i16> = data.iter().map(|&s| i16::from_sample_(s)).collect();
            if from == want {
                ring.push(&samples);
            } else {
                // Per-period conversion: fine for prompts and voice replies; devices used for
                // calls should accept the call rate themselves (ALSA `plug` does).
                ring.push(&convert(&samples, from, want));
            }
        },
        move |e| {
            tracing::warn!(error = %e, "ALSA capture error");
            if matches!(e, cpal::StreamError::DeviceNotAvailable) {
                error_ring.close();
            }
        },
        None,
    )
}

/// The device configuration to capture `want` directly, preferring 16-bit samples; `None`
/// when the device cannot (then the default configuration is used and converted).
fn choose_input_config(
    ranges: &[cpal::SupportedStreamConfigRange],
    want: PcmFormat,
) -> Option<cpal::SupportedStreamConfig> {
    let rate = cpal::SampleRate(want.sample_rate);
    [
        SampleFormat::I16,
        SampleFormat::F32,
        SampleFormat::I32,
        SampleFormat::U16,
    ]
    .into_iter()
    .find_map(|format| {
        ranges.iter().find(|r| {
            r.sample_format() == format
                && r.channels() == want.channels
                && r.min_sample_rate() <= rate
                && rate <= r.max_sample_rate()
        })
    })
    .map(|r| r.with_sample_rate(rate))
}

/// Captured samples waiting for the reader; the oldest are dropped when it falls behind.
struct CaptureRing {
    state: Mutex<RingState>,
    /// Wakes the reader when samples arrive or the stream closes.
    ready: Notify,
}

#[derive(Debug)]
struct RingState {
    samples: VecDeque<i16>,
    capacity: usize,
    channels: usize,
    /// Samples dropped so far because the reader was behind.
    dropped: u64,
    closed: bool,
}

impl RingState {
    fn push(&mut self, data: &[i16]) {
        let total = self.samples.len() + data.len();
        if total > self.capacity {
            // Drop whole frames so channels stay aligned.
            let excess = total - self.capacity;
            let excess = excess.div_ceil(self.channels) * self.channels;
            let from_queue = excess.min(self.samples.len());
            self.samples.drain(..from_queue);
            let from_data = (excess - from_queue).min(data.len());
            self.samples.extend(&data[from_data..]);
            self.dropped += excess as u64;
        } else {
            self.samples.extend(data);
        }
    }

    fn pop(&mut self, buf: &mut [i16]) -> usize {
        let n = buf.len().min(self.samples.len());
        for (slot, sample) in buf.iter_mut().zip(self.samples.drain(..n)) {
            *slot = sample;
        }
        n
    }
}

impl CaptureRing {
    fn new(format: PcmFormat) -> Self {
        let channels = usize::from(format.channels.max(1));
        let frames = (u128::from(format.sample_rate) * CAPTURE_BUFFER.as_millis() / 1000) as usize;
        let capacity = frames.max(1) * channels;
        CaptureRing {
            state: Mutex::new(RingState {
                samples: VecDeque::with_capacity(capacity),
                capacity,
                channels,
                dropped: 0,
                closed: false,
            }),
            ready: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, RingState> {
        // No code panics while holding this lock; the queue stays consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, data: &[i16]) {
        self.state().push(data);
        self.ready.notify_one();
    }

    fn close(&self) {
        self.state().closed = true;
        self.ready.notify_one();
    }
}

struct AlsaSource {
    format: PcmFormat,
    ring: Arc<CaptureRing>,
    /// Drops already logged.
    reported_drops: u64,
    /// Dropping this ends the thread that owns the capture stream.
    _stop: std_mpsc::Sender<()>,
}

#[async_trait]
impl PcmSource for AlsaSource {
    fn format(&self) -> PcmFormat {
        self.format
    }

    async fn read(&mut self, buf: &mut [i16]) -> Result<usize, AudioError> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            {
                let mut state = self.ring.state();
                if state.dropped > self.reported_drops {
                    tracing::warn!(
                        dropped = state.dropped - self.reported_drops,
                        "microphone reader fell behind; oldest samples dropped"
                    );
                    self.reported_drops = state.dropped;
                }
                let n = state.pop(buf);
                if n > 0 {
                    return Ok(n);
                }
                if state.closed {
                    return Err(AudioError::Closed);
                }
            }
            // A notification sent since the check above is stored, so none is lost.
            self.ring.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[test]
    fn queue_takes_whole_frames_and_reports_underrun_and_end() {
        let mut state = QueueState::default();
        let mut out = Vec::new();
        assert_eq!(state.take(&mut out, 480, 2), Take::Underrun);
        state.samples.extend([0.1, 0.2, 0.3]);
        // Only one whole stereo frame is there.
        assert_eq!(state.take(&mut out, 480, 2), Take::Samples(2));
        assert_eq!(out, [0.1, 0.2]);
        assert_eq!(state.take(&mut out, 480, 2), Take::Underrun);
        state.finished = true;
        assert_eq!(state.take(&mut out, 480, 2), Take::End);
        assert!(state.samples.is_empty());

        let mut state = QueueState::default();
        state.samples.extend([0.0; 10]);
        assert_eq!(state.take(&mut out, 3, 2), Take::Samples(2));
        state.stopped = true;
        assert_eq!(state.take(&mut out, 480, 2), Take::End);
    }

    #[test]
    fn source_plays_silence_frames_while_empty_then_samples_then_ends() {
        let format = PcmFormat {
            sample_rate: 8_000,
            channels: 2,
        };
        let queue = Arc::new(PlaybackQueue::new(format));
        let mut source = QueueSource::new(queue.clone(), format);
        assert_eq!(source.next(), Some(0.0));
        assert_eq!(source.next(), Some(0.0));
        queue.state().samples.extend([0.5, -0.5]);
        assert_eq!(source.next(), Some(0.5));
        assert_eq!(source.next(), Some(-0.5));
        queue.state().finished = true;
        assert_eq!(source.next(), None);
        assert!(*queue.done.borrow());
        assert!(queue.room.is_closed());
    }

    #[tokio::test(start_paused = true)]
    async fn writer_waits_for_room_and_finish_waits_for_play_out() {
        let format = PcmFormat::NARROWBAND;
        let queue = Arc::new(PlaybackQueue::new(format));
        // 200 ms at 8 kHz mono.
        assert_eq!(queue.capacity, 1_600);
        let mut sink: Box<dyn PcmSink> = Box::new(AlsaSink {
            queue: queue.clone(),
            format,
            focus: Focus::Chime,
            gain: 1.0,
            finished: false,
        });
        sink.write(&[16_384; 1_600]).await.unwrap();
        sink.set_gain(0.5);
        // The queue is full: the next write waits until the audio thread takes samples.
        let mut source = QueueSource::new(queue.clone(), format);
        {
            let write = sink.write(&[16_384; 10]);
            tokio::pin!(write);
            assert!((&mut write).now_or_never().is_none());
            for _ in 0..PULL_CHUNK {
                assert_eq!(source.next(), Some(0.5));
            }
            write.await.unwrap();
        }

        // `finish` marks the stream finished on its first poll, then waits for play-out.
        let finish = sink.finish();
        tokio::pin!(finish);
        assert!((&mut finish).now_or_never().is_none());
        let played: Vec<f32> = source.by_ref().collect();
        finish.await.unwrap();
        assert_eq!(played.len(), 1_600 - PULL_CHUNK + 10);
        assert_eq!(
            played.last(),
            Some(&0.25),
            "gain applies to samples written after it"
        );
    }

    #[tokio::test]
    async fn dropping_the_source_fails_writers_instead_of_hanging() {
        let format = PcmFormat::NARROWBAND;
        let queue = Arc::new(PlaybackQueue::new(format));
        drop(QueueSource::new(queue.clone(), format));
        let mut sink = AlsaSink {
            queue,
            format,
            focus: Focus::Call,
            gain: 1.0,
            finished: false,
        };
        assert!(matches!(
            sink.write(&[0; 4_000]).await,
            Err(AudioError::Closed)
        ));
    }

    #[test]
    fn dropped_sink_stops_its_source() {
        let format = PcmFormat::NARROWBAND;
        let queue = Arc::new(PlaybackQueue::new(format));
        let mut source = QueueSource::new(queue.clone(), format);
        queue.state().samples.extend([0.1; 100]);
        drop(AlsaSink {
            queue,
            format,
            focus: Focus::Chime,
            gain: 1.0,
            finished: false,
        });
        assert_eq!(source.next(), None);
    }

    #[test]
    fn capture_ring_drops_oldest_whole_frames() {
        let ring = CaptureRing::new(PcmFormat {
            sample_rate: 8,
            channels: 2,
        });
        // 500 ms of 8 Hz stereo: 4 frames, 8 samples.
        ring.push(&[1, 1, 2, 2, 3, 3]);
        ring.push(&[4, 4, 5, 5, 6]);
        let mut state = ring.state();
        assert_eq!(state.capacity, 8);
        assert_eq!(state.dropped, 4);
        let mut buf = [0; 16];
        let n = state.pop(&mut buf);
        assert_eq!(&buf[..n], &[3, 3, 4, 4, 5, 5, 6]);

        // A burst bigger than the ring keeps only its newest frames.
        state.push(&[7, 7, 8, 8, 9, 9, 10, 10, 11, 11]);
        let n = state.pop(&mut buf);
        assert_eq!(&buf[..n], &[8, 8, 9, 9, 10, 10, 11, 11]);
    }

    #[tokio::test]
    async fn capture_reader_waits_for_data_and_sees_close() {
        let ring = Arc::new(CaptureRing::new(PcmFormat::NARROWBAND));
        let (stop, _stop_rx) = std_mpsc::channel();
        let mut source = AlsaSource {
            format: PcmFormat::NARROWBAND,
            ring: ring.clone(),
            reported_drops: 0,
            _stop: stop,
        };
        let feeder = ring.clone();
        let feeding = std::thread::spawn(move || feeder.push(&[1, 2, 3]));
        let mut buf = [0; 8];
        let n = source.read(&mut buf).await.unwrap();
        feeding.join().unwrap();
        assert_eq!(&buf[..n], &[1, 2, 3]);
        ring.close();
        assert!(matches!(
            source.read(&mut buf).await,
            Err(AudioError::Closed)
        ));
    }

    #[test]
    fn input_config_prefers_the_wanted_format_in_16_bit() {
        use cpal::{SampleRate, SupportedBufferSize, SupportedStreamConfigRange};
        let range = |channels, min, max, format| {
            SupportedStreamConfigRange::new(
                channels,
                SampleRate(min),
                SampleRate(max),
                SupportedBufferSize::Unknown,
                format,
            )
        };
        let ranges = [
            range(2, 8_000, 48_000, SampleFormat::I16),
            range(1, 8_000, 48_000, SampleFormat::F32),
            range(1, 8_000, 48_000, SampleFormat::I16),
        ];
        let chosen = choose_input_config(&ranges, PcmFormat::WIDEBAND).unwrap();
        assert_eq!(chosen.sample_format(), SampleFormat::I16);
        assert_eq!(chosen.channels(), 1);
        assert_eq!(chosen.sample_rate(), SampleRate(16_000));
        let only_44k = [range(1, 44_100, 44_100, SampleFormat::I16)];
        assert!(choose_input_config(&only_44k, PcmFormat::WIDEBAND).is_none());
    }

    /// Opens ALSA's `null` device through the real backend. Opt-in, because ALSA reads its
    /// configuration once per process and the machine may have a real card:
    ///
    /// ```text
    /// printf 'pcm.!default {\n    type null\n}\n' > /tmp/alsa-null.conf
    /// ALSA_CONFIG_PATH=/tmp/alsa-null.conf CODRIVER_TEST_ALSA_NULL=1 \
    ///     cargo test -p codriver-hal --all-features alsa_null
    /// ```
    #[tokio::test]
    async fn alsa_null_device_plays_and_records_when_configured() {
        if std::env::var_os("CODRIVER_TEST_ALSA_NULL").is_none() {
            return;
        }
        let out = open_alsa_output(&OutputOptions {
            device: "default".to_owned(),
            wav_directory: std::env::temp_dir(),
        })
        .unwrap();
        let mut sink = out
            .open(PcmFormat::WIDEBAND, Focus::Chime, "test")
            .await
            .unwrap();
        sink.write(&[1_000; 3_200]).await.unwrap();
        sink.finish().await.unwrap();

        let input = open_alsa_input(&InputOptions {
            device: "default".to_owned(),
            wav_file: None,
        })
        .unwrap();
        let mut source = input.open(PcmFormat::WIDEBAND).await.unwrap();
        let mut buf = [1i16; 320];
        let n = tokio::time::timeout(Duration::from_secs(5), source.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
    }
}
