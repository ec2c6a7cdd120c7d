//! CPU cost of one second of full-duplex call audio, and what the pipeline adds to the codec.
//!
//! Every iteration processes 3 s of audio in both directions (400 mSBC frames, or 1,000
//! 48-byte CVSD packets, each way), so criterion's time / 3 is the cost per second of call.
//!
//! * `codec/msbc_libsbc`: libsbc encode + decode alone (the floor);
//! * `pipeline/msbc_48k`: the whole mSBC path with a 48 kHz sound card: H2 packetising and
//!   reassembly, encode, decode, concealment of 2 % lost packets, resampling both ways;
//! * `pipeline/msbc_16k`: the same without resampling;
//! * `pipeline/cvsd_48k`: CVSD (no host codec) with resampling;
//! * `dsp/*`: echo cancellation + noise suppression alone, per codec rate.
//!
//! After criterion's groups, the same cases are timed side by side and printed as ratios to
//! libsbc alone, with the latency the pipeline adds.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Bench helpers may panic.
#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn.

use std::hint::black_box;
use std::time::{Duration, Instant};

use codriver_callaudio::{
    CallCodec, CallPipeline, DspConfig, MSBC_FRAME_LEN, MSBC_FRAME_SAMPLES, MicProcessor, Msbc,
    PipelineConfig,
};
use criterion::{Criterion, criterion_group};

const SECONDS: usize = 3;
const FRAMES: usize = SECONDS * 16_000 / MSBC_FRAME_SAMPLES; // 400

/// A speech-like test signal (harmonics of a gliding 180 Hz voice under a 4 Hz envelope).
fn speech(rate: u32, samples: usize) -> Vec<i16> {
    let mut phase = 0.0f64;
    (0..samples)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            let f0 = 180.0 + 30.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
            phase += 2.0 * std::f64::consts::PI * f0 / f64::from(rate);
            let v: f64 = (1..=12)
                .map(|k| (phase * f64::from(k)).sin() / f64::from(k))
                .sum();
            let env = 0.55 + 0.45 * (2.0 * std::f64::consts::PI * 4.0 * t).sin();
            (v * env * 4_000.0) as i16
        })
        .collect()
}

fn no_dsp(codec: CallCodec, rate: u32) -> PipelineConfig {
    let mut c = PipelineConfig::new(codec, rate);
    c.dsp.echo_cancellation = false;
    c.dsp.noise_suppression = false;
    c
}

/// What the phone sends for `SECONDS` of audio, with every 50th packet dropped (2 % loss).
fn phone_packets(codec: CallCodec) -> Vec<Vec<u8>> {
    let rate = codec.sample_rate();
    let mut phone = CallPipeline::new(no_dsp(codec, rate)).unwrap();
    phone
        .handle_mic(&speech(rate, SECONDS * rate as usize))
        .unwrap();
    std::iter::from_fn(|| phone.poll_transmit())
        .enumerate()
        .filter(|(i, _)| codec == CallCodec::Cvsd || i % 50 != 49)
        .map(|(_, p)| p)
        .collect()
}

struct Case {
    pipeline: CallPipeline,
    packets: Vec<Vec<u8>>,
    mic: Vec<i16>,
    block: usize,
    speaker: Vec<i16>,
}

impl Case {
    fn new(codec: CallCodec, device_rate: u32) -> Self {
        Self {
            pipeline: CallPipeline::new(no_dsp(codec, device_rate)).unwrap(),
            packets: phone_packets(codec),
            mic: speech(device_rate, SECONDS * device_rate as usize),
            // The sound card delivers 10 ms periods.
            block: device_rate as usize / 100,
            speaker: Vec::with_capacity(SECONDS * device_rate as usize + 1024),
        }
    }

    /// Three seconds of call: receive and play, capture and send, interleaved as a driver
    /// would (one 10 ms mic period per ~10 ms of received packets).
    fn run(&mut self) -> usize {
        let mut sent = 0;
        let per_block = self.packets.len().div_ceil(self.mic.len() / self.block);
        let mut packets = self.packets.iter();
        for block in self.mic.chunks(self.block) {
            for p in packets.by_ref().take(per_block) {
                self.pipeline.handle_sco_packet(p);
            }
            self.pipeline.handle_mic(block).unwrap();
            while let Some(p) = self.pipeline.poll_transmit() {
                sent += black_box(p).len();
            }
            self.pipeline.take_speaker(&mut self.speaker);
            self.speaker.clear();
        }
        for p in packets {
            self.pipeline.handle_sco_packet(p);
        }
        sent
    }
}

/// libsbc alone: encode and decode `FRAMES` frames.
struct CodecOnly {
    codec: Msbc,
    pcm: Vec<[i16; MSBC_FRAME_SAMPLES]>,
}

impl CodecOnly {
    fn new() -> Self {
        let s = speech(16_000, FRAMES * MSBC_FRAME_SAMPLES);
        Self {
            codec: Msbc::new().unwrap(),
            pcm: s
                .chunks_exact(MSBC_FRAME_SAMPLES)
                .map(|c| c.try_into().unwrap())
                .collect(),
        }
    }

    fn run(&mut self) -> i32 {
        let mut frame = [0u8; MSBC_FRAME_LEN];
        let mut out = [0i16; MSBC_FRAME_SAMPLES];
        let mut acc = 0i32;
        for pcm in &self.pcm {
            self.codec.encode(pcm, &mut frame).unwrap();
            self.codec.decode(black_box(&frame), &mut out).unwrap();
            acc = acc.wrapping_add(i32::from(out[0]));
        }
        acc
    }
}

/// Echo cancellation + noise suppression alone on `SECONDS` of mic audio.
struct DspOnly {
    dsp: MicProcessor,
    mic: Vec<i16>,
    speaker: Vec<i16>,
    frame: usize,
}

impl DspOnly {
    fn new(codec: CallCodec) -> Self {
        let rate = codec.sample_rate();
        let frame = codec.frame_samples();
        let speaker = speech(rate, SECONDS * rate as usize);
        let mic = speaker.iter().map(|&s| s / 3).collect();
        Self {
            dsp: MicProcessor::new(frame, rate, DspConfig::default()).unwrap(),
            mic,
            speaker,
            frame,
        }
    }

    fn run(&mut self) -> i16 {
        let mut buf = vec![0i16; self.frame];
        for (m, s) in self
            .mic
            .chunks_exact(self.frame)
            .zip(self.speaker.chunks_exact(self.frame))
        {
            buf.copy_from_slice(m);
            self.dsp.process(&mut buf, s);
        }
        buf[0]
    }
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    g.measurement_time(Duration::from_secs(4));
    let mut codec = CodecOnly::new();
    g.bench_function("msbc_libsbc", |b| b.iter(|| codec.run()));
    g.finish();

    let mut g = c.benchmark_group("pipeline");
    g.measurement_time(Duration::from_secs(4));
    for (name, codec, rate) in [
        ("msbc_48k", CallCodec::Msbc, 48_000),
        ("msbc_16k", CallCodec::Msbc, 16_000),
        ("cvsd_48k", CallCodec::Cvsd, 48_000),
    ] {
        let mut case = Case::new(codec, rate);
        g.bench_function(name, |b| b.iter(|| case.run()));
    }
    g.finish();

    let mut g = c.benchmark_group("dsp");
    g.measurement_time(Duration::from_secs(4));
    for (name, codec) in [
        ("aec_ns_16k", CallCodec::Msbc),
        ("aec_ns_8k", CallCodec::Cvsd),
    ] {
        let mut dsp = DspOnly::new(codec);
        g.bench_function(name, |b| b.iter(|| dsp.run()));
    }
    g.finish();
}

/// Median time of `f` over `runs` runs.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    t.sort();
    t[runs / 2]
}

/// The same cases timed back to back, as ratios to libsbc alone.
fn ratios() {
    const RUNS: usize = 41;
    let per_s = |d: Duration| d.as_secs_f64() / SECONDS as f64 * 1e3; // ms of CPU per s of call
    let mut codec = CodecOnly::new();
    let base = median(RUNS, || {
        black_box(codec.run());
    });
    println!(
        "\ncall audio, CPU per second of full-duplex call (median of {RUNS}), ratio to libsbc alone:"
    );
    println!(
        "  {:<34} {:>8.3} ms/s  1.00",
        "libsbc mSBC encode+decode",
        per_s(base)
    );
    let rows: [(&str, CallCodec, u32); 3] = [
        ("mSBC pipeline, 48 kHz card", CallCodec::Msbc, 48_000),
        ("mSBC pipeline, 16 kHz card", CallCodec::Msbc, 16_000),
        ("CVSD pipeline, 48 kHz card", CallCodec::Cvsd, 48_000),
    ];
    for (label, codec, rate) in rows {
        let mut case = Case::new(codec, rate);
        let t = median(RUNS, || {
            black_box(case.run());
        });
        let l = case.pipeline.latency();
        println!(
            "  {label:<34} {:>8.3} ms/s  {:.2}  (added latency: receive {:.1} ms, send {:.1} ms, {} frame buffered)",
            per_s(t),
            t.as_secs_f64() / base.as_secs_f64(),
            l.receive.as_secs_f64() * 1e3,
            l.send.as_secs_f64() * 1e3,
            l.frames_buffered,
        );
    }
    for (label, codec) in [
        ("AEC + NS at 16 kHz (mSBC)", CallCodec::Msbc),
        ("AEC + NS at 8 kHz (CVSD)", CallCodec::Cvsd),
    ] {
        let mut dsp = DspOnly::new(codec);
        let t = median(RUNS, || {
            black_box(dsp.run());
        });
        println!(
            "  {label:<34} {:>8.3} ms/s  {:.2}",
            per_s(t),
            t.as_secs_f64() / base.as_secs_f64()
        );
    }
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    ratios();
}
