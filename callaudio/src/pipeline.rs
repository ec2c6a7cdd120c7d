//! The whole call-audio path between an SCO link and the sound card, sans-IO.

use std::collections::VecDeque;
use std::time::Duration;

use crate::Error;
use crate::cvsd::{CVSD_RATE, CvsdReceiver, DEFAULT_CVSD_PACKET_LEN};
use crate::dsp::{DspConfig, MicProcessor};
use crate::h2::{H2_PACKET_LEN, H2Packetiser, H2Reassembler};
use crate::msbc::{MSBC_FRAME_LEN, MSBC_FRAME_SAMPLES, MSBC_RATE, Msbc};
use crate::plc::Concealer;
use crate::resample::{DEFAULT_QUALITY, Resampler};

/// The voice codec the HFP connection negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallCodec {
    /// Narrow band, 8 kHz: the controller codes CVSD, the host exchanges s16le PCM.
    Cvsd,
    /// Wide band, 16 kHz: the host codes mSBC and frames it with H2 headers (transparent SCO).
    Msbc,
}

impl CallCodec {
    /// The codec's sample rate.
    pub fn sample_rate(self) -> u32 {
        match self {
            CallCodec::Cvsd => CVSD_RATE,
            CallCodec::Msbc => MSBC_RATE,
        }
    }

    /// Samples per processing frame: one mSBC frame, or as long (7.5 ms) for CVSD.
    pub fn frame_samples(self) -> usize {
        match self {
            CallCodec::Cvsd => MSBC_FRAME_SAMPLES / 2,
            CallCodec::Msbc => MSBC_FRAME_SAMPLES,
        }
    }

    /// SCO packet size assumed until one has been received.
    pub fn default_packet_len(self) -> usize {
        match self {
            CallCodec::Cvsd => DEFAULT_CVSD_PACKET_LEN,
            CallCodec::Msbc => H2_PACKET_LEN,
        }
    }
}

/// How a [`CallPipeline`] is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineConfig {
    /// The negotiated codec.
    pub codec: CallCodec,
    /// Rate of the speaker stream the pipeline produces (mono).
    pub speaker_rate: u32,
    /// Rate of the microphone stream the pipeline consumes (mono).
    pub mic_rate: u32,
    /// SpeexDSP resampler quality, 0–10 (3, "VoIP", by default).
    pub resampler_quality: u8,
    /// Echo cancellation and noise suppression on the microphone path.
    pub dsp: DspConfig,
}

impl PipelineConfig {
    /// Defaults for `codec` with a sound card at `device_rate` for both directions.
    pub fn new(codec: CallCodec, device_rate: u32) -> Self {
        Self {
            codec,
            speaker_rate: device_rate,
            mic_rate: device_rate,
            resampler_quality: DEFAULT_QUALITY,
            dsp: DspConfig::default(),
        }
    }
}

/// Counters of what the receive path saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxStats {
    /// SCO packets received.
    pub packets: u64,
    /// mSBC frames decoded.
    pub frames: u64,
    /// Frames missing from the sequence numbers, filled by concealment.
    pub lost_frames: u64,
    /// Frames that failed to decode (CRC, header), filled by concealment.
    pub corrupt_frames: u64,
    /// Received bytes that were not part of any H2 packet.
    pub skipped_bytes: u64,
}

/// The latency the pipeline adds, by direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// SCO → speaker: the resampler's filter delay (frames are decoded as soon as complete;
    /// there is no jitter buffer here).
    pub receive: Duration,
    /// Microphone → SCO: filling one processing frame (7.5 ms: mSBC's frame, and the echo
    /// canceller's) plus the resampler's filter delay.
    pub send: Duration,
    /// Frames held in each direction at most: one, on the send side.
    pub frames_buffered: usize,
}

/// Call audio between one SCO link and the sound card.
///
/// Sans-IO: the driver hands every received SCO packet to
/// [`handle_sco_packet`](Self::handle_sco_packet) and every block of microphone samples to
/// [`handle_mic`](Self::handle_mic), then drains [`take_speaker`](Self::take_speaker)
/// (samples for the sound card) and [`poll_transmit`](Self::poll_transmit) until `None`
/// (packets for the SCO socket). Sending is paced by receiving, as SCO links expect: the
/// packet size follows the size of received packets.
pub struct CallPipeline {
    config: PipelineConfig,
    frame: usize,
    packet_len: usize,
    rx: Rx,
    rx_up: Resampler,
    speaker: Vec<i16>,
    /// What was played, at the codec rate, for the echo canceller.
    reference: VecDeque<i16>,
    mic_down: Resampler,
    mic: Vec<i16>,
    mic_frame: Vec<i16>,
    ref_frame: Vec<i16>,
    dsp: MicProcessor,
    tx: Tx,
    tx_bytes: VecDeque<u8>,
    stats: RxStats,
    scratch: Vec<i16>,
}

enum Rx {
    Cvsd(CvsdReceiver),
    Msbc {
        codec: Box<Msbc>,
        reassembler: H2Reassembler,
        plc: Concealer,
    },
}

enum Tx {
    Cvsd,
    Msbc {
        codec: Box<Msbc>,
        packetiser: H2Packetiser,
    },
}

/// At most this much speaker signal is kept as echo reference (the mic side stalled).
const MAX_REFERENCE: usize = MSBC_RATE as usize / 2;

impl CallPipeline {
    /// Sets the pipeline up: codec, resamplers, echo canceller.
    pub fn new(config: PipelineConfig) -> Result<Self, Error> {
        let codec_rate = config.codec.sample_rate();
        let frame = config.codec.frame_samples();
        let (rx, tx) = match config.codec {
            CallCodec::Cvsd => (Rx::Cvsd(CvsdReceiver::new()), Tx::Cvsd),
            CallCodec::Msbc => (
                Rx::Msbc {
                    codec: Box::new(Msbc::new()?),
                    reassembler: H2Reassembler::new(),
                    plc: Concealer::new(frame, codec_rate),
                },
                Tx::Msbc {
                    codec: Box::new(Msbc::new()?),
                    packetiser: H2Packetiser::new(),
                },
            ),
        };
        Ok(Self {
            frame,
            packet_len: config.codec.default_packet_len(),
            rx,
            rx_up: Resampler::new(codec_rate, config.speaker_rate, config.resampler_quality)?,
            speaker: Vec::new(),
            reference: VecDeque::new(),
            mic_down: Resampler::new(config.mic_rate, codec_rate, config.resampler_quality)?,
            mic: Vec::new(),
            mic_frame: vec![0; frame],
            ref_frame: vec![0; frame],
            dsp: MicProcessor::new(frame, codec_rate, config.dsp)?,
            tx,
            tx_bytes: VecDeque::new(),
            stats: RxStats::default(),
            scratch: Vec::with_capacity(frame),
            config,
        })
    }

    /// The configuration the pipeline was built with.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// Handles one packet read from the SCO socket.
    pub fn handle_sco_packet(&mut self, packet: &[u8]) {
        if packet.is_empty() {
            return;
        }
        self.stats.packets += 1;
        self.packet_len = packet.len();
        self.scratch.clear();
        match &mut self.rx {
            Rx::Cvsd(rx) => rx.push(packet, &mut self.scratch),
            Rx::Msbc {
                codec,
                reassembler,
                plc,
            } => {
                reassembler.push(packet);
                let mut pcm = [0i16; MSBC_FRAME_SAMPLES];
                while let Some(found) = reassembler.next_frame() {
                    for _ in 0..found.missing {
                        plc.conceal(&mut pcm);
                        self.scratch.extend_from_slice(&pcm);
                        self.stats.lost_frames += 1;
                    }
                    match codec.decode(&found.frame, &mut pcm) {
                        Ok(()) => {
                            plc.good_frame(&mut pcm);
                            self.stats.frames += 1;
                        }
                        Err(_) => {
                            plc.conceal(&mut pcm);
                            self.stats.corrupt_frames += 1;
                        }
                    }
                    self.scratch.extend_from_slice(&pcm);
                }
                self.stats.skipped_bytes = reassembler.skipped_bytes();
            }
        }
        self.play(true);
    }

    /// Fills `frames` whole frames by concealment: the driver calls this when the SCO link
    /// went quiet for that long (a gap the sequence numbers cannot show). CVSD has no frames
    /// to repeat and gets silence.
    pub fn handle_sco_gap(&mut self, frames: usize) {
        self.scratch.clear();
        match &mut self.rx {
            Rx::Cvsd(_) => self.scratch.resize(frames * self.frame, 0),
            Rx::Msbc { plc, .. } => {
                let mut pcm = [0i16; MSBC_FRAME_SAMPLES];
                for _ in 0..frames {
                    plc.conceal(&mut pcm);
                    self.scratch.extend_from_slice(&pcm);
                    self.stats.lost_frames += 1;
                }
            }
        }
        self.play(true);
    }

    /// Handles a block of microphone samples at the mic rate.
    pub fn handle_mic(&mut self, pcm: &[i16]) -> Result<(), Error> {
        self.mic_down.process(pcm, &mut self.mic);
        let mut used = 0;
        while self.mic.len() - used >= self.frame {
            self.mic_frame
                .copy_from_slice(&self.mic[used..used + self.frame]);
            used += self.frame;
            if self.dsp.is_active() {
                for r in self.ref_frame.iter_mut() {
                    *r = self.reference.pop_front().unwrap_or(0);
                }
                self.dsp.process(&mut self.mic_frame, &self.ref_frame);
            }
            match &mut self.tx {
                Tx::Cvsd => {
                    for s in &self.mic_frame {
                        self.tx_bytes.extend(s.to_le_bytes());
                    }
                }
                Tx::Msbc { codec, packetiser } => {
                    let mut pcm = [0i16; MSBC_FRAME_SAMPLES];
                    pcm.copy_from_slice(&self.mic_frame);
                    let mut frame = [0u8; MSBC_FRAME_LEN];
                    codec.encode(&pcm, &mut frame)?;
                    self.tx_bytes.extend(packetiser.wrap(&frame));
                }
            }
        }
        self.mic.drain(..used);
        Ok(())
    }

    /// The next packet for the SCO socket, of the size received packets have.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.tx_bytes.len() < self.packet_len {
            return None;
        }
        Some(self.tx_bytes.drain(..self.packet_len).collect())
    }

    /// Moves the speaker samples produced so far (at the speaker rate) to the end of `out`.
    pub fn take_speaker(&mut self, out: &mut Vec<i16>) {
        out.append(&mut self.speaker);
    }

    /// The SCO packet size in use: the size of the last received packet, or the codec's
    /// default before any.
    pub fn packet_len(&self) -> usize {
        self.packet_len
    }

    /// What the receive path saw so far.
    pub fn rx_stats(&self) -> RxStats {
        self.stats
    }

    /// Bytes waiting for the next packet.
    pub fn tx_queued(&self) -> usize {
        self.tx_bytes.len()
    }

    /// The latency this pipeline adds.
    pub fn latency(&self) -> Latency {
        let frame = Duration::from_micros(
            self.frame as u64 * 1_000_000 / u64::from(self.config.codec.sample_rate()),
        );
        Latency {
            receive: Duration::from_micros(self.rx_up.latency_us()),
            send: frame + Duration::from_micros(self.mic_down.latency_us()),
            frames_buffered: 1,
        }
    }

    /// Resamples `scratch` to the speaker and keeps it as echo reference.
    fn play(&mut self, keep_reference: bool) {
        if keep_reference && self.dsp.is_active() {
            self.reference.extend(self.scratch.iter().copied());
            if self.reference.len() > MAX_REFERENCE {
                let excess = self.reference.len() - MAX_REFERENCE;
                self.reference.drain(..excess);
            }
        }
        self.rx_up.process(&self.scratch, &mut self.speaker);
    }
}

impl std::fmt::Debug for CallPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallPipeline")
            .field("config", &self.config)
            .field("packet_len", &self.packet_len)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}
