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
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::audio::AudioRouter;
use crate::events::{DaemonEvent, publish};

/// Packets the send queue may hold before the microphone is no longer read: a microphone
/// whose clock runs faster than the link's (or an unpaced file) then waits, and the queue adds
/// at most one packet (7.5 ms for mSBC) of latency. A slower one underruns and the gap is
/// filled with silence. Drift compensation (adaptive resampling) is not done yet.
const MAX_QUEUED_PACKETS: usize = 2;

/// The running call-audio task; stops when dropped.
#[derive(Debug)]
pub(crate) struct CallAudio {
    codec: watch::Sender<Codec>,
    task: JoinHandle<()>,
}

impl CallAudio {
    /// Starts listening for SCO links on every adapter.
    pub(crate) fn spawn(
        sco: Arc<dyn ScoTransport>,
        audio: AudioRouter,
        mic: Arc<dyn AudioInput>,
        echo_cancellation: bool,
        events: broadcast::Sender<DaemonEvent>,
    ) -> Self {
        let (codec, codec_rx) = watch::channel(Codec::Cvsd);
        let task = tokio::spawn(async move {
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
                audio,
                mic,
                echo_cancellation,
                events,
            };
            task.serve(listener.as_mut(), codec_rx).await;
        });
        CallAudio { codec, task }
    }

    /// The codec the Hands-Free engine selected: the air mode of the next link.
    pub(crate) fn set_codec(&self, codec: Codec) {
        self.codec.send_replace(codec);
    }
}

impl Drop for CallAudio {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Task {
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
                Ok(link) => self.run_link(link).await,
                Err(e) => {
                    tracing::warn!(error = %e, "call audio: accepting an SCO link failed");
                    return;
                }
            }
        }
    }

    async fn run_link(&self, mut link: Box<dyn ScoLink>) {
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
                return;
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
                return;
            }
        };
        // The microphone is read by its own task: a capture read is not cancel-safe (samples
        // taken before the period elapsed would be lost when the SCO side wins a select).
        let (mut mic, mic_task) = match self.mic.open(format).await {
            Ok(source) => {
                let (tx, rx) = mpsc::channel(1);
                let period = rate as usize / 100;
                (Some(rx), Some(tokio::spawn(capture(source, period, tx))))
            }
            Err(e) => {
                tracing::warn!(error = %e, "call audio: no microphone; sending silence");
                (None, None)
            }
        };
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
        let mut played = Vec::new();
        let (mut received, mut sent, mut underruns) = (0u64, 0u64, 0u64);
        let reason = loop {
            let room = pipeline.tx_queued() < MAX_QUEUED_PACKETS * pipeline.packet_len();
            tokio::select! {
                r = link.recv(&mut rx) => match r {
                    Ok(0) => break "the phone closed the SCO link".to_owned(),
                    Ok(n) => {
                        received += 1;
                        pipeline.handle_sco_packet(&rx[..n]);
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
                            if mic.is_some() {
                                underruns += 1;
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
    }
}

/// Reads the microphone in blocks of `period` samples until it ends, fails, or nobody
/// listens.
async fn capture(mut source: Box<dyn PcmSource>, period: usize, tx: mpsc::Sender<Vec<i16>>) {
    let mut buf = vec![0i16; period.max(1)];
    loop {
        match source.read(&mut buf).await {
            Ok(0) => return,
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
