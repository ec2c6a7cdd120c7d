//! The audio router: the one arbiter of the car's speakers.
//!
//! Every sound goes through [`AudioRouter`]. Each playback holds a [`Focus`]; while a higher
//! focus is active, lower-priority playback is ducked to the configured level or paused until
//! the higher one ends (configurable), and resumes after. The amplifier pins follow: on while
//! anything plays, off when nothing does. Sounds of the same focus play one after another in
//! the order they were asked for.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use codriver_hal::{AmpState, Amplifier, AudioError, AudioOutput, Focus, PcmFormat};
use tokio::sync::{Semaphore, broadcast, watch};

use crate::events::{DaemonEvent, publish};
use crate::tones::Chime;

/// How many fire-and-forget sounds may wait at once; more are dropped with a log line, so a
/// burst of events cannot queue unbounded audio.
const MAX_QUEUED_SOUNDS: usize = 8;

/// How much one volume-up or volume-down changes chimes and messages, in percentage points.
pub const VOLUME_STEP: u8 = 10;

/// Samples written per chunk: 20 ms at 48 kHz. Focus changes take effect between chunks.
const CHUNK_MS: u32 = 20;

/// What lower-priority playback does while a higher focus plays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LowerPriority {
    /// Keep playing at this linear gain (0.0–1.0).
    Duck(f32),
    /// Stop writing until the higher focus ends, then resume where it stopped.
    Pause,
}

/// Volumes and focus policy, from the `[audio]` config.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioPolicy {
    /// Duck or pause.
    pub lower_priority: LowerPriority,
    /// Linear gain for chimes.
    pub chime_gain: f32,
    /// Linear gain for message playback.
    pub message_gain: f32,
    /// Linear gain for the local ringtone and call audio.
    pub call_gain: f32,
}

impl AudioPolicy {
    /// Reads the policy from the audio config.
    pub fn from_config(audio: &codriver_config::AudioConfig) -> Self {
        let pct = |p: codriver_config::Percent| f32::from(p.get()) / 100.0;
        AudioPolicy {
            lower_priority: match audio.focus.lower_priority {
                codriver_config::LowerPriority::Pause => LowerPriority::Pause,
                codriver_config::LowerPriority::Duck => {
                    LowerPriority::Duck(pct(audio.focus.duck_level))
                }
            },
            chime_gain: pct(audio.volume.chime),
            message_gain: pct(audio.volume.messages),
            call_gain: pct(audio.volume.ringtone),
        }
    }

    fn gain(&self, focus: Focus) -> f32 {
        match focus {
            Focus::Chime => self.chime_gain,
            Focus::VoiceMessage | Focus::VoiceAssistant => self.message_gain,
            Focus::Call => self.call_gain,
        }
    }
}

/// Cloneable handle to the router.
#[derive(Clone)]
pub struct AudioRouter {
    inner: Arc<Inner>,
}

struct Inner {
    output: Arc<dyn AudioOutput>,
    /// How many playbacks hold each focus right now.
    active: watch::Sender<BTreeMap<Focus, usize>>,
    policy: Mutex<AudioPolicy>,
    amplifier: Mutex<Option<Box<dyn Amplifier>>>,
    /// One lane per focus, so sounds of the same kind never overlap and keep their order.
    lanes: [tokio::sync::Mutex<()>; 4],
    queued: Arc<Semaphore>,
    events: broadcast::Sender<DaemonEvent>,
}

impl std::fmt::Debug for AudioRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioRouter")
            .field("output", &self.inner.output.describe())
            .finish()
    }
}

impl AudioRouter {
    /// A router playing to `output`, driving `amplifier` when there is one.
    pub fn new(
        output: Arc<dyn AudioOutput>,
        amplifier: Option<Box<dyn Amplifier>>,
        policy: AudioPolicy,
        events: broadcast::Sender<DaemonEvent>,
    ) -> Self {
        AudioRouter {
            inner: Arc::new(Inner {
                output,
                active: watch::channel(BTreeMap::new()).0,
                policy: Mutex::new(policy),
                amplifier: Mutex::new(amplifier),
                lanes: Default::default(),
                queued: Arc::new(Semaphore::new(MAX_QUEUED_SOUNDS)),
                events,
            }),
        }
    }

    /// Replaces the volumes and focus policy (config reload).
    pub fn set_policy(&self, policy: AudioPolicy) {
        *lock(&self.inner.policy) = policy;
    }

    /// Raises (`up`) or lowers the chime and message volume by [`VOLUME_STEP`] percentage
    /// points, both together; returns the new chime volume in percent, or why not (already at
    /// the limit). A config reload restores the configured volumes.
    pub fn step_volume(&self, up: bool) -> Result<u8, String> {
        let mut policy = lock(&self.inner.policy);
        let step = f32::from(VOLUME_STEP) / 100.0;
        let now = policy.chime_gain;
        if (up && now >= 1.0) || (!up && now <= 0.0) {
            return Err(format!(
                "the volume is already at its {}",
                if up { "maximum" } else { "minimum" }
            ));
        }
        let next = |g: f32| (if up { g + step } else { g - step }).clamp(0.0, 1.0);
        policy.chime_gain = next(policy.chime_gain);
        policy.message_gain = next(policy.message_gain);
        Ok(percent(policy.chime_gain))
    }

    /// The chime volume in percent.
    pub fn volume(&self) -> u8 {
        percent(lock(&self.inner.policy).chime_gain)
    }

    /// Plays a chime (with its own focus) in the background. Returns at once; drops the chime (logged) when too
    /// many sounds are already waiting.
    pub fn chime(&self, chime: Chime) {
        let Ok(permit) = self.inner.queued.clone().try_acquire_owned() else {
            tracing::warn!(
                label = chime.label(),
                "too many sounds queued; dropping chime"
            );
            return;
        };
        let router = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = router
                .play(
                    chime.focus(),
                    chime.label(),
                    PcmFormat::PROMPT,
                    &chime.render(),
                )
                .await
            {
                tracing::warn!(error = %e, label = chime.label(), "could not play chime");
            }
        });
    }

    /// Plays `samples` with `focus` and waits until they have played out.
    pub async fn play(
        &self,
        focus: Focus,
        label: &str,
        format: PcmFormat,
        samples: &[i16],
    ) -> Result<(), AudioError> {
        let _lane = self.inner.lanes[lane(focus)].lock().await;
        let _held = self.hold(focus);
        let mut sink = self.inner.output.open(format, focus, label).await?;
        let chunk = (format.sample_rate * CHUNK_MS / 1000) as usize * usize::from(format.channels);
        let mut focus_rx = self.inner.active.subscribe();
        for piece in samples.chunks(chunk.max(1)) {
            let gain = loop {
                let top = focus_rx.borrow_and_update().keys().next_back().copied();
                let policy = lock(&self.inner.policy).clone();
                match top {
                    Some(top) if top > focus => match policy.lower_priority {
                        LowerPriority::Duck(level) => break policy.gain(focus) * level,
                        LowerPriority::Pause => {
                            // The sender lives in `self`; `changed` cannot fail while we hold it.
                            let _ = focus_rx.changed().await;
                        }
                    },
                    _ => break policy.gain(focus),
                }
            };
            sink.set_gain(gain);
            sink.write(piece).await?;
        }
        sink.finish().await?;
        publish(
            &self.inner.events,
            DaemonEvent::SoundPlayed {
                label: label.to_owned(),
            },
        );
        Ok(())
    }

    /// Opens a playback stream that holds `focus` while it is open (call audio): lower
    /// focuses duck or pause for as long as it lives. Written samples get the focus's gain.
    pub async fn open_stream(
        &self,
        focus: Focus,
        label: &str,
        format: PcmFormat,
    ) -> Result<FocusedStream, AudioError> {
        let guard = self.hold(focus);
        let mut sink = self.inner.output.open(format, focus, label).await?;
        sink.set_gain(lock(&self.inner.policy).gain(focus));
        Ok(FocusedStream {
            sink,
            _guard: guard,
        })
    }

    /// Takes `focus` for as long as the returned guard lives (a call's audio, the voice
    /// assistant), ducking or pausing everything below it.
    pub fn hold(&self, focus: Focus) -> FocusGuard {
        let was_idle = self.inner.active.borrow().is_empty();
        self.inner
            .active
            .send_modify(|m| *m.entry(focus).or_default() += 1);
        if was_idle {
            self.amplifier(AmpState::On);
        }
        FocusGuard {
            router: self.clone(),
            focus,
        }
    }

    /// Waits until nothing above `focus` holds the speakers. Messages call this before they
    /// start, so a message waits for a call to end instead of being ducked under it (a call
    /// that starts mid-message then ducks or pauses it under the configured policy).
    pub async fn wait_until_free(&self, focus: Focus) {
        let mut rx = self.inner.active.subscribe();
        loop {
            let top = rx.borrow_and_update().keys().next_back().copied();
            if top.is_none_or(|top| top <= focus) {
                return;
            }
            // The sender lives in `self`; `changed` cannot fail while we hold it.
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Waits until something above `focus` holds the speakers (a call starting during a
    /// reply recording).
    pub async fn wait_until_above(&self, focus: Focus) {
        let mut rx = self.inner.active.subscribe();
        loop {
            let top = rx.borrow_and_update().keys().next_back().copied();
            if top.is_some_and(|top| top > focus) {
                return;
            }
            // The sender lives in `self`; `changed` cannot fail while we hold it.
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// The highest focus currently held.
    pub fn current_focus(&self) -> Option<Focus> {
        self.inner.active.borrow().keys().next_back().copied()
    }

    fn release(&self, focus: Focus) {
        let mut now_idle = false;
        self.inner.active.send_modify(|m| {
            if let Some(n) = m.get_mut(&focus) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&focus);
                }
            }
            now_idle = m.is_empty();
        });
        if now_idle {
            self.amplifier(AmpState::Off);
        }
    }

    fn amplifier(&self, state: AmpState) {
        if let Some(amp) = lock(&self.inner.amplifier).as_mut()
            && let Err(e) = amp.set(state)
        {
            tracing::warn!(error = %e, ?state, "amplifier pin failed");
        }
    }
}

/// A playback stream holding its focus, from [`AudioRouter::open_stream`].
pub struct FocusedStream {
    sink: Box<dyn codriver_hal::PcmSink>,
    _guard: FocusGuard,
}

impl std::fmt::Debug for FocusedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FocusedStream")
            .field("focus", &self.sink.focus())
            .finish_non_exhaustive()
    }
}

impl FocusedStream {
    /// Queues samples; waits while the device buffer is full.
    pub async fn write(&mut self, samples: &[i16]) -> Result<(), AudioError> {
        self.sink.write(samples).await
    }

    /// Plays out what is queued, closes the stream and releases the focus.
    pub async fn finish(self) -> Result<(), AudioError> {
        self.sink.finish().await
    }
}

/// Holds a focus until dropped.
#[derive(Debug)]
pub struct FocusGuard {
    router: AudioRouter,
    focus: Focus,
}

impl Drop for FocusGuard {
    fn drop(&mut self) {
        self.router.release(self.focus);
    }
}

fn lane(focus: Focus) -> usize {
    match focus {
        Focus::Chime => 0,
        Focus::VoiceMessage => 1,
        Focus::VoiceAssistant => 2,
        Focus::Call => 3,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A linear gain as a whole percentage.
fn percent(gain: f32) -> u8 {
    // Gains are clamped to 0.0–1.0, so the rounded value fits.
    (gain.clamp(0.0, 1.0) * 100.0).round() as u8
}

#[cfg(test)]
mod tests {
    use codriver_hal::mock::{MockAmplifier, MockAudioOutput};

    use super::*;

    fn router(lower: LowerPriority) -> (AudioRouter, MockAudioOutput, MockAmplifier) {
        let out = MockAudioOutput::new();
        let amp = MockAmplifier::default();
        let policy = AudioPolicy {
            lower_priority: lower,
            chime_gain: 1.0,
            message_gain: 1.0,
            call_gain: 1.0,
        };
        let r = AudioRouter::new(
            Arc::new(out.clone()),
            Some(Box::new(amp.clone())),
            policy,
            broadcast::channel(16).0,
        );
        (r, out, amp)
    }

    #[tokio::test(start_paused = true)]
    async fn lower_focus_is_ducked_while_a_call_holds_focus() {
        let (r, out, amp) = router(LowerPriority::Duck(0.25));
        let call = r.hold(Focus::Call);
        r.play(Focus::VoiceMessage, "msg", PcmFormat::PROMPT, &[4000; 960])
            .await
            .unwrap();
        drop(call);
        let p = &out.playbacks()[0];
        assert!(p.samples.iter().all(|&s| s == 1000), "ducked to a quarter");
        assert_eq!(amp.states(), vec![AmpState::On, AmpState::Off]);
    }

    #[tokio::test(start_paused = true)]
    async fn lower_focus_pauses_and_resumes_after_the_call() {
        let (r, out, _amp) = router(LowerPriority::Pause);
        let call = r.hold(Focus::Call);
        let r2 = r.clone();
        let msg = tokio::spawn(async move {
            r2.play(Focus::VoiceMessage, "msg", PcmFormat::PROMPT, &[4000; 4800])
                .await
        });
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        assert!(
            out.playbacks().first().is_none_or(|p| p.samples.is_empty()),
            "paused"
        );
        drop(call);
        msg.await.unwrap().unwrap();
        let p = &out.playbacks()[0];
        assert_eq!(p.samples.len(), 4800);
        assert!(
            p.samples.iter().all(|&s| s == 4000),
            "resumed at full volume"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_waits_for_the_call_to_end_even_when_the_policy_ducks() {
        let (r, _out, _amp) = router(LowerPriority::Duck(0.25));
        let call = r.hold(Focus::Call);
        let r2 = r.clone();
        let waiting = tokio::spawn(async move { r2.wait_until_free(Focus::VoiceMessage).await });
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        assert!(!waiting.is_finished(), "waits while the call holds focus");
        // A chime does not hold the message back.
        let chime = r.hold(Focus::Chime);
        drop(call);
        waiting.await.unwrap();
        drop(chime);
    }

    #[tokio::test(start_paused = true)]
    async fn a_recording_notices_a_call_taking_the_speakers() {
        let (r, _out, _amp) = router(LowerPriority::Duck(0.25));
        let r2 = r.clone();
        let noticing = tokio::spawn(async move { r2.wait_until_above(Focus::VoiceMessage).await });
        let chime = r.hold(Focus::Chime);
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        assert!(!noticing.is_finished(), "a chime is not a call");
        let _call = r.hold(Focus::Call);
        noticing.await.unwrap();
        drop(chime);
    }

    #[tokio::test(start_paused = true)]
    async fn chimes_play_in_order_and_reach_the_sink() {
        let (r, out, _amp) = router(LowerPriority::Pause);
        r.chime(Chime::PairingOpen);
        r.chime(Chime::Paired);
        out.wait_finished(2).await;
        let labels: Vec<String> = out.playbacks().into_iter().map(|p| p.label).collect();
        assert_eq!(labels, ["chime-pairing-open", "chime-paired"]);
        assert_eq!(out.playbacks()[1].samples, Chime::Paired.render());
    }
}
