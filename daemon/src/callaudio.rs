//! The call-audio task: carries a call's voice between the phone's SCO link and the car.
//!
//! One task per daemon listens for SCO links (phones open the audio connection). Each link is
//! accepted in the air mode of the codec the Hands-Free engine last selected (`+BCS`: mSBC →
//! transparent, else CVSD), then the sans-IO [`CallPipeline`] runs between the link and the
//! sound card: speaker out through the audio router with [`Focus::Call`] (everything else
//! ducks or pauses), microphone in through the HAL's [`AudioInput`]. Sending is paced by
//! receiving: one packet out per packet in, as SCO links expect. Echo cancellation follows
//! `[hfp] echo_cancellation`, the same setting that makes the engine send `AT+NREC=0`.
//!
//! The sound card is opened at the codec's rate (8 or 16 kHz), so the pipeline does not
//! resample (ALSA's `plug` converts when the card needs it); see docs/call-audio.md.

use std::sync::Arc;

use codriver_callaudio::{CallCodec, CallPipeline, PipelineConfig};
use codriver_hal::{
    Address, AirMode, AudioInput, Focus, PcmFormat, PcmSource, ScoLink, ScoListener, ScoTransport,
};
use codriver_hfp::Codec;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::audio::AudioRouter;
use crate::events::{DaemonEvent, publish};

/// Packets the send queue may hold before the microphone is no longer read: a microphone
/// whose clock runs faster than the link's (or an unpaced file) then waits, and the queue adds
/// at most one packet (7.5 ms for mSBC) of latency. A slower one underruns and the gap is
/// filled with silence. Drift compensation (adaptive resampling) is not done yet.
const MAX_QUEUED_PACKETS: usize = 2;
/// The send queue may also hold this much audio whatever the packet size: the microphone
/// delivers 10 ms periods, which is more than two small CVSD packets (3 ms each), so a cap of
/// two packets alone would leave no cushion and every period's jitter would be an underrun.
const MAX_QUEUED_US: u64 = 15_000;
/// How far the send queue's cushion may grow on a jittery link: each underrun after the
/// microphone started adds one codec frame (a link whose packets come in bursts, such as a
/// loaded system's, then stops underrunning at the cost of that much latency). A steady link
/// keeps [`MAX_QUEUED_US`].
const MAX_CUSHION_US: u64 = 60_000;

/// mSBC frames that may fail (corrupt, missing, or bytes out of H2 sync, counted in 60-byte
/// packets) before the first good one, after which wide band is given up on the link: 240 ms.
const MSBC_FAILURE_FRAMES: u64 = 32;

/// Wide band failed on a phone's link: the daemon offers it CVSD only (`AT+BAC=1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodecFallback {
    /// The phone.
    pub(crate) device: Address,
    /// What failed, for the log.
    pub(crate) reason: String,
}

/// The running call-audio task; stops when dropped.
#[derive(Debug)]
pub(crate) struct CallAudio {
    codec: watch::Sender<Codec>,
    /// The phone whose SCO link is up, if any.
    link: watch::Receiver<Option<Address>>,
    runner: Runner,
}

/// Where the call-audio task runs.
#[derive(Debug)]
enum Runner {
    /// On the daemon's runtime (normal scheduling).
    Task(JoinHandle<()>),
    /// On its own thread and runtime (`[audio] realtime_priority`); the thread ends when this
    /// sender is dropped.
    Thread(Option<oneshot::Sender<()>>),
}

impl CallAudio {
    /// Starts listening for SCO links on every adapter. With `realtime_priority`, the task
    /// (link, pipeline and microphone) runs on its own thread under `SCHED_FIFO` at that
    /// priority; if the system refuses it (no `CAP_SYS_NICE`, `RLIMIT_RTPRIO` too low), that is
    /// logged once and the thread runs with normal scheduling.
    #[allow(clippy::too_many_arguments)] // One call site; a struct would only rename them.
    pub(crate) fn spawn(
        sco: Arc<dyn ScoTransport>,
        audio: AudioRouter,
        mic: Arc<dyn AudioInput>,
        echo_cancellation: bool,
        events: broadcast::Sender<DaemonEvent>,
        fallback: mpsc::Sender<CodecFallback>,
        realtime_priority: Option<u8>,
    ) -> Self {
        let (codec, codec_rx) = watch::channel(Codec::Cvsd);
        let (link_tx, link) = watch::channel(None);
        let future = async move {
            tracing::info!(transport = %sco.describe(), "call audio: listening for SCO links");
            // BDADDR_ANY: links to any of the host's adapters.
            let mut listener = match sco.listen(Address::new([0; 6])).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "call audio unavailable: cannot listen for SCO links");
                    return;
                }
            };
            let task = Task {
                fallback,
                link: link_tx,
                audio,
                mic,
                echo_cancellation,
                events,
            };
            task.serve(listener.as_mut(), codec_rx).await;
        };
        let runner = match realtime_priority {
            None => Runner::Task(tokio::spawn(future)),
            Some(priority) => Runner::Thread(spawn_audio_thread(priority, future)),
        };
        CallAudio {
            codec,
            link,
            runner,
        }
    }

    /// The phone whose SCO link is up now.
    pub(crate) fn link_up(&self) -> Option<Address> {
        *self.link.borrow()
    }

    /// The codec the Hands-Free engine selected: the air mode of the next link.
    pub(crate) fn set_codec(&self, codec: Codec) {
        self.codec.send_replace(codec);
    }
}

impl Drop for CallAudio {
    fn drop(&mut self) {
        match &mut self.runner {
            Runner::Task(task) => task.abort(),
            Runner::Thread(stop) => drop(stop.take()),
        }
    }
}

/// Runs `future` on a thread of its own (`codriver-audio`) with a current-thread runtime,
/// under `SCHED_FIFO` at `priority` when the system allows it. Returns the sender whose drop
/// stops it, `None` if no thread could be started (then there is no call audio).
fn spawn_audio_thread(
    priority: u8,
    future: impl std::future::Future<Output = ()> + Send + 'static,
) -> Option<oneshot::Sender<()>> {
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("codriver-audio".to_owned())
        .spawn(move || {
            match set_realtime(priority) {
                Ok(()) => tracing::info!(
                    priority,
                    "call audio: real-time thread (SCHED_FIFO)"
                ),
                Err(e) => tracing::warn!(
                    priority,
                    error = %e,
                    "call audio: real-time priority refused (needs CAP_SYS_NICE or LimitRTPRIO >= the priority); running with normal scheduling"
                ),
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                // Blocking helpers (reading a WAV microphone) must not inherit SCHED_FIFO:
                // a long one would starve the system, and RLIMIT_RTTIME would kill the daemon.
                .on_thread_start(set_normal_scheduling)
                .build();
            match runtime {
                Ok(runtime) => runtime.block_on(async {
                    tokio::select! {
                        () = future => {}
                        _ = stopped => {}
                    }
                }),
                Err(e) => tracing::error!(error = %e, "call audio unavailable: no runtime for its thread"),
            }
        });
    match thread {
        Ok(_) => Some(stop),
        Err(e) => {
            tracing::error!(error = %e, "call audio unavailable: cannot start its thread");
            None
        }
    }
}

/// Puts the calling thread under `SCHED_FIFO` at `priority`.
fn set_realtime(priority: u8) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: libc::c_int::from(priority),
    };
    // SAFETY: plain call on the current thread with a valid sched_param.
    let rc = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Puts the calling thread back under normal scheduling (threads inherit the policy).
fn set_normal_scheduling() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain call on the current thread with a valid sched_param.
    let rc =
        unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_OTHER, &param) };
    if rc != 0 {
        tracing::debug!(
            error = %std::io::Error::from_raw_os_error(rc),
            "call audio: cannot reset a helper thread's scheduling"
        );
    }
}

struct Task {
    fallback: mpsc::Sender<CodecFallback>,
    link: watch::Sender<Option<Address>>,
    audio: AudioRouter,
    mic: Arc<dyn AudioInput>,
    echo_cancellation: bool,
    events: broadcast::Sender<DaemonEvent>,
}

impl Task {
    async fn serve(&self, listener: &mut dyn ScoListener, mut codec: watch::Receiver<Codec>) {
        loop {
            let mode = air_mode(*codec.borrow_and_update());
            let link = tokio::select! {
                link = listener.accept(mode) => link,
                // The codec changed while waiting: accept in the new air mode.
                changed = codec.changed() => match changed {
                    Ok(()) => continue,
                    Err(_) => return,
                },
            };
            match link {
                Ok(link) => {
                    let device = link.peer();
                    self.link.send_replace(Some(device));
                    let failed = self.run_link(link).await;
                    self.link.send_replace(None);
                    if let Some(reason) = failed {
                        self.fall_back(device, reason);
                    }
                }
                // The controller cannot carry wide band: no link in transparent mode. The
                // phone's address is unknown here; the daemon applies it to the active phone.
                Err(e @ codriver_hal::ScoError::AirModeRefused { .. })
                    if mode == AirMode::Transparent =>
                {
                    self.fall_back(
                        Address::new([0; 6]),
                        format!("the mSBC (transparent) SCO link cannot be set up: {e}"),
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "call audio: accepting an SCO link failed");
                    return;
                }
            }
        }
    }

    /// Reports a wide-band failure; the daemon offers the phone CVSD only.
    fn fall_back(&self, device: Address, reason: String) {
        tracing::warn!(%device, reason, "call audio: mSBC keeps failing; renegotiating CVSD");
        publish(
            &self.events,
            DaemonEvent::CallAudioFallback {
                device,
                reason: reason.clone(),
            },
        );
        if self
            .fallback
            .try_send(CodecFallback { device, reason })
            .is_err()
        {
            tracing::warn!(%device, "call audio: the daemon did not take the CVSD fallback");
        }
    }

    /// Runs one link until it ends; `Some(reason)` when it ended because wide band failed.
    async fn run_link(&self, mut link: Box<dyn ScoLink>) -> Option<String> {
        let device = link.peer();
        let codec = match link.air_mode() {
            AirMode::Transparent => CallCodec::Msbc,
            _ => CallCodec::Cvsd,
        };
        let rate = codec.sample_rate();
        let format = PcmFormat {
            sample_rate: rate,
            channels: 1,
        };
        let mut config = PipelineConfig::new(codec, rate);
        config.dsp.echo_cancellation = self.echo_cancellation;
        config.dsp.noise_suppression = self.echo_cancellation;
        let mut pipeline = match CallPipeline::new(config) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "call audio: cannot set up the pipeline");
                return None;
            }
        };
        let mut speaker = match self
            .audio
            .open_stream(Focus::Call, "call audio", format)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "call audio: cannot open the speakers");
                return None;
            }
        };
        // The microphone is opened and read by its own task, so the link is serviced from
        // its first packet even when opening takes a while (a WAV file is read and converted
        // whole), and because a capture read is not cancel-safe (samples taken before the
        // period elapsed would be lost when the SCO side wins a select).
        let (tx, rx) = mpsc::channel(1);
        let mut mic = Some(rx);
        let mic_task = Some(tokio::spawn(capture(
            Arc::clone(&self.mic),
            format,
            rate as usize / 100,
            tx,
        )));
        let codec_name = match codec {
            CallCodec::Msbc => "mSBC",
            _ => "CVSD",
        };
        tracing::info!(%device, codec = codec_name, mtu = link.mtu(), "call audio: SCO link up");
        publish(
            &self.events,
            DaemonEvent::CallAudioStarted {
                device,
                codec: codec_name,
            },
        );
        let mut rx = vec![0u8; link.mtu().clamp(60, 1024)];
        let silence = vec![0i16; codec.frame_samples()];
        let bytes_per_ms = match codec {
            CallCodec::Msbc => 60 * 1000 / 7500,
            _ => rate as usize * 2 / 1000,
        };
        let frame_us = codec.frame_samples() as u64 * 1_000_000 / u64::from(rate);
        let mut cushion_us = MAX_QUEUED_US;
        let mut mic_started = false;
        let max_queued = |packet_len: usize, cushion_us: u64| {
            (MAX_QUEUED_PACKETS * packet_len).max(cushion_us as usize * bytes_per_ms / 1000)
        };
        let mut played = Vec::new();
        let (mut received, mut sent, mut underruns) = (0u64, 0u64, 0u64);
        let mut failed = None;
        let reason = loop {
            let room = pipeline.tx_queued() < max_queued(pipeline.packet_len(), cushion_us);
            tokio::select! {
                r = link.recv(&mut rx) => match r {
                    Ok(0) => break "the phone closed the SCO link".to_owned(),
                    Ok(n) => {
                        received += 1;
                        pipeline.handle_sco_packet(&rx[..n]);
                        if codec == CallCodec::Msbc
                            && let Some(why) = msbc_failing(pipeline.rx_stats())
                        {
                            failed = Some(why.clone());
                            break why;
                        }
                        pipeline.take_speaker(&mut played);
                        if !played.is_empty() {
                            if let Err(e) = speaker.write(&played).await {
                                break format!("speaker write failed: {e}");
                            }
                            played.clear();
                        }
                        if pipeline.tx_queued() < pipeline.packet_len() {
                            // Nothing to send: no microphone, or it fell behind the link's
                            // clock. SCO wants a packet every slot, so a frame of silence
                            // keeps the phone's stream (and its sequence numbers) going.
                            if mic.is_some() && mic_started {
                                underruns += 1;
                                cushion_us = (cushion_us + frame_us).min(MAX_CUSHION_US);
                            }
                            if let Err(e) = pipeline.handle_mic(&silence) {
                                break format!("encoding failed: {e}");
                            }
                        }
                        // One packet out per packet in: the link's clock paces sending.
                        if let Some(packet) = pipeline.poll_transmit() {
                            if let Err(e) = link.send(&packet).await {
                                break format!("SCO send failed: {e}");
                            }
                            sent += 1;
                        }
                    }
                    Err(e) => break format!("SCO receive failed: {e}"),
                },
                block = recv_mic(&mut mic), if room && mic.is_some() => match block {
                    Some(block) => {
                        mic_started = true;
                        if let Err(e) = pipeline.handle_mic(&block) {
                            break format!("encoding failed: {e}");
                        }
                    }
                    None => mic = None,
                },
            }
        };
        if let Some(task) = mic_task {
            task.abort();
        }
        let stats = pipeline.rx_stats();
        tracing::info!(
            %device,
            reason,
            received,
            sent,
            underruns,
            cushion_ms = cushion_us / 1000,
            lost = stats.lost_frames,
            corrupt = stats.corrupt_frames,
            "call audio: SCO link down"
        );
        if let Err(e) = speaker.finish().await {
            tracing::debug!(error = %e, "call audio: finishing the speaker stream");
        }
        publish(
            &self.events,
            DaemonEvent::CallAudioEnded {
                device,
                received,
                sent,
                concealed: stats.lost_frames + stats.corrupt_frames,
            },
        );
        failed
    }
}

/// Why wide band is failing on a link, if it is: no good mSBC frame yet, and
/// [`MSBC_FAILURE_FRAMES`] frames' worth of corrupt, missing or unsynchronised audio.
fn msbc_failing(stats: codriver_callaudio::RxStats) -> Option<String> {
    if stats.frames > 0 {
        return None;
    }
    let unsynced = stats.skipped_bytes / 60;
    let bad = stats.corrupt_frames + stats.lost_frames + unsynced;
    (bad >= MSBC_FAILURE_FRAMES).then(|| {
        format!(
            "no good mSBC frame in the first {bad} ({} corrupt, {} missing, {} bytes out of H2 sync)",
            stats.corrupt_frames, stats.lost_frames, stats.skipped_bytes
        )
    })
}

/// Opens the microphone and reads it in blocks of `period` samples until it ends, fails, or
/// nobody listens. Without a microphone the link carries silence.
async fn capture(
    input: Arc<dyn AudioInput>,
    format: PcmFormat,
    period: usize,
    tx: mpsc::Sender<Vec<i16>>,
) {
    let started = tokio::time::Instant::now();
    let mut source: Box<dyn PcmSource> = match input.open(format).await {
        Ok(source) => {
            tracing::debug!(
                ms = started.elapsed().as_millis() as u64,
                "call audio: microphone open"
            );
            source
        }
        Err(e) => {
            tracing::warn!(error = %e, "call audio: no microphone; sending silence");
            return;
        }
    };
    let mut buf = vec![0i16; period.max(1)];
    loop {
        match source.read(&mut buf).await {
            Ok(0) => {
                tracing::debug!("call audio: the microphone ended; sending silence");
                return;
            }
            Ok(n) => {
                if tx.send(buf[..n].to_vec()).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "call audio: microphone failed; sending silence");
                return;
            }
        }
    }
}

/// The next microphone block; `None` once the microphone ended.
async fn recv_mic(mic: &mut Option<mpsc::Receiver<Vec<i16>>>) -> Option<Vec<i16>> {
    mic.as_mut()?.recv().await
}

/// The air mode for a negotiated codec.
fn air_mode(codec: Codec) -> AirMode {
    match codec {
        Codec::Cvsd => AirMode::Cvsd,
        _ => AirMode::Transparent,
    }
}

#[cfg(test)]
mod tests {
    use codriver_hal::mock::{MockAudioInput, MockAudioOutput, MockSco, MockScoPhone};

    use super::*;
    use crate::audio::{AudioPolicy, LowerPriority};

    fn phone() -> Address {
        "00:11:22:33:44:55".parse().unwrap()
    }

    struct Rig {
        call_audio: CallAudio,
        phone: MockScoPhone,
        out: MockAudioOutput,
        mic: MockAudioInput,
        events: broadcast::Receiver<DaemonEvent>,
        fallbacks: mpsc::Receiver<CodecFallback>,
    }

    fn rig(echo_cancellation: bool) -> Rig {
        rig_with(echo_cancellation, None)
    }

    fn rig_with(echo_cancellation: bool, realtime_priority: Option<u8>) -> Rig {
        let out = MockAudioOutput::new();
        let (events_tx, events) = broadcast::channel(64);
        let audio = AudioRouter::new(
            Arc::new(out.clone()),
            None,
            AudioPolicy {
                lower_priority: LowerPriority::Pause,
                chime_gain: 1.0,
                message_gain: 1.0,
                call_gain: 1.0,
            },
            events_tx.clone(),
        );
        let (car, phone) = MockSco::new(self::phone(), 48);
        let mic = MockAudioInput::new();
        let (fallback_tx, fallbacks) = mpsc::channel(4);
        let call_audio = CallAudio::spawn(
            Arc::new(car),
            audio,
            Arc::new(mic.clone()),
            echo_cancellation,
            events_tx,
            fallback_tx,
            realtime_priority,
        );
        Rig {
            call_audio,
            phone,
            out,
            mic,
            events,
            fallbacks,
        }
    }

    async fn next_event(rx: &mut broadcast::Receiver<DaemonEvent>, prefix: &str) -> DaemonEvent {
        loop {
            let e = rx.recv().await.unwrap();
            if e.to_string().starts_with(prefix) {
                return e;
            }
        }
    }

    /// CVSD (no `+BCS`, or a fallback to it): 48-byte packets of 8 kHz PCM pass through
    /// unchanged both ways when echo cancellation is off, at the phone's packet size.
    #[tokio::test(start_paused = true)]
    async fn cvsd_link_passes_pcm_both_ways_at_the_learned_packet_size() {
        let mut rig = rig(false);
        let mic: Vec<i16> = (0..8_000)
            .map(|n| ((n * 37) % 2000 - 1000) as i16)
            .collect();
        rig.mic.push_fixture(mic.clone());
        rig.call_audio.set_codec(Codec::Cvsd);
        let mut sco = rig.phone.connect(AirMode::Cvsd, 48).await.unwrap();
        assert_eq!(
            next_event(&mut rig.events, "call-audio-started").await,
            DaemonEvent::CallAudioStarted {
                device: phone(),
                codec: "CVSD"
            }
        );
        // A whole number of 48-byte packets.
        let caller: Vec<i16> = (0..24 * 333)
            .map(|n| ((n * 13) % 3000 - 1500) as i16)
            .collect();
        let mut heard = Vec::new();
        let mut buf = [0u8; 128];
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(3));
        for chunk in caller.chunks(24) {
            tick.tick().await;
            let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
            sco.send(&bytes).await.unwrap();
            let n = sco.recv(&mut buf).await.unwrap();
            assert_eq!(n, 48, "the car answers with the phone's packet size");
            heard.extend(buf[..n].chunks(2).map(|b| i16::from_le_bytes([b[0], b[1]])));
        }
        drop(sco);
        next_event(&mut rig.events, "call-audio-ended").await;
        // The car's speaker played exactly what the phone sent.
        let played: Vec<i16> = rig
            .out
            .playbacks()
            .into_iter()
            .filter(|p| p.focus == Focus::Call)
            .flat_map(|p| p.samples)
            .collect();
        assert!(played == caller, "speaker samples differ from the phone's");
        // The phone heard the car's microphone in order (after silence while it started).
        let start = heard.iter().position(|&s| s != 0).unwrap();
        let tail = &heard[start..];
        assert!(tail.len() > 7_000, "{} samples", tail.len());
        assert!(
            mic.starts_with(&tail[..7_000]),
            "microphone samples changed"
        );
        assert_eq!(rig.mic.opened()[0].sample_rate, 8_000);
    }

    /// With echo cancellation on (mSBC here), the link still runs and the phone's audio
    /// reaches the speaker.
    #[tokio::test(start_paused = true)]
    async fn msbc_link_with_echo_cancellation() {
        use codriver_callaudio::{CallCodec, CallPipeline, PipelineConfig};
        let mut rig = rig(true);
        rig.call_audio.set_codec(Codec::Msbc);
        // Let the task re-arm its accept in the new air mode.
        tokio::task::yield_now().await;
        let mut sco = rig.phone.connect(AirMode::Transparent, 60).await.unwrap();
        next_event(&mut rig.events, "call-audio-started 00:11:22:33:44:55 mSBC").await;
        let mut config = PipelineConfig::new(CallCodec::Msbc, 16_000);
        config.dsp.echo_cancellation = false;
        config.dsp.noise_suppression = false;
        let mut phone = CallPipeline::new(config).unwrap();
        let tone: Vec<i16> = (0..16_000)
            .map(|n| (8000.0 * (n as f64 * 0.2).sin()) as i16)
            .collect();
        phone.handle_mic(&tone).unwrap();
        let mut buf = [0u8; 128];
        while let Some(p) = phone.poll_transmit() {
            sco.send(&p).await.unwrap();
            let n = sco.recv(&mut buf).await.unwrap();
            phone.handle_sco_packet(&buf[..n]);
        }
        drop(sco);
        if let DaemonEvent::CallAudioEnded {
            received,
            sent,
            concealed,
            ..
        } = next_event(&mut rig.events, "call-audio-ended").await
        {
            assert_eq!((received, sent, concealed), (133, 133, 0));
        }
        assert_eq!(phone.rx_stats().frames, 133);
        let played: usize = rig.out.playbacks().iter().map(|p| p.samples.len()).sum();
        assert_eq!(played, 133 * 120);
    }

    /// mSBC that never decodes (a controller that garbles transparent data): after 240 ms
    /// without one good frame the car gives up on the link and asks for CVSD, with the reason;
    /// the next link is accepted in CVSD.
    #[tokio::test(start_paused = true)]
    async fn msbc_that_never_decodes_falls_back_to_cvsd() {
        let mut rig = rig(false);
        rig.call_audio.set_codec(Codec::Msbc);
        tokio::task::yield_now().await;
        let mut sco = rig.phone.connect(AirMode::Transparent, 60).await.unwrap();
        next_event(&mut rig.events, "call-audio-started 00:11:22:33:44:55 mSBC").await;
        // H2 headers with frames whose CRC is wrong: every frame is corrupt.
        let mut tick = tokio::time::interval(std::time::Duration::from_micros(7_500));
        let mut buf = [0u8; 128];
        let mut sent = 0;
        let closed = loop {
            tick.tick().await;
            let mut packet = [0x55u8; 60];
            packet[0] = 0x01;
            packet[1] = [0x08, 0x38, 0xC8, 0xF8][sent % 4];
            packet[2] = 0xAD;
            packet[59] = 0;
            if sco.send(&packet).await.is_err() {
                break sent;
            }
            sent += 1;
            match sco.recv(&mut buf).await {
                Ok(0) | Err(_) => break sent,
                Ok(_) => {}
            }
            assert!(sent < 200, "the car kept a failing mSBC link");
        };
        assert!((32..=34).contains(&closed), "closed after {closed} packets");
        let e = next_event(&mut rig.events, "call-audio-fallback").await;
        let line = e.to_string();
        assert!(
            line.starts_with("call-audio-fallback 00:11:22:33:44:55 cvsd no good mSBC frame"),
            "{line}"
        );
        let fallback = rig.fallbacks.recv().await.unwrap();
        assert_eq!(fallback.device, phone());
        assert!(
            fallback.reason.contains("32 corrupt"),
            "{}",
            fallback.reason
        );
        // The daemon renegotiates; the phone's next link is CVSD.
        rig.call_audio.set_codec(Codec::Cvsd);
        tokio::task::yield_now().await;
        let _sco = rig.phone.connect(AirMode::Cvsd, 48).await.unwrap();
        next_event(&mut rig.events, "call-audio-started 00:11:22:33:44:55 CVSD").await;
    }

    /// A few bad frames at the start, then good ones: no fallback.
    #[test]
    fn msbc_failure_needs_no_good_frame_and_enough_bad_ones() {
        use codriver_callaudio::RxStats;
        let bad = RxStats {
            corrupt_frames: 20,
            lost_frames: 6,
            skipped_bytes: 6 * 60,
            ..RxStats::default()
        };
        assert!(msbc_failing(bad).is_some());
        assert!(
            msbc_failing(RxStats {
                skipped_bytes: 0,
                ..bad
            })
            .is_none()
        );
        assert!(msbc_failing(RxStats { frames: 1, ..bad }).is_none());
    }

    /// `[audio] realtime_priority`: the link runs on its own thread; whether or not the system
    /// grants SCHED_FIFO (priority 99 needs CAP_SYS_NICE or a high RLIMIT_RTPRIO), the call
    /// goes on. Not under paused time: the audio thread has its own runtime and clock; the
    /// test itself never sleeps.
    #[tokio::test]
    async fn realtime_thread_carries_the_link_whether_or_not_priority_is_granted() {
        let mut rig = rig_with(false, Some(99));
        let mut sco = rig.phone.connect(AirMode::Cvsd, 48).await.unwrap();
        next_event(&mut rig.events, "call-audio-started 00:11:22:33:44:55 CVSD").await;
        let mut buf = [0u8; 128];
        for n in 0..50u8 {
            sco.send(&[n; 48]).await.unwrap();
            assert_eq!(sco.recv(&mut buf).await.unwrap(), 48);
        }
        drop(sco);
        match next_event(&mut rig.events, "call-audio-ended").await {
            DaemonEvent::CallAudioEnded { received, sent, .. } => {
                assert_eq!((received, sent), (50, 50));
            }
            e => panic!("{e}"),
        }
        drop(rig.call_audio);
    }
}
