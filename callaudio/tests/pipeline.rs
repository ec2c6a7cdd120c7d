//! The call-audio pipeline end to end: concealment, corrupt frames, CVSD, resampling, AEC.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers outside #[test] fns may panic.

mod common;

use codriver_callaudio::{
    CallCodec, CallPipeline, Concealer, DspConfig, H2_PACKET_LEN, MSBC_FRAME_SAMPLES, MicProcessor,
    PipelineConfig, Resampler,
};

fn no_dsp(codec: CallCodec, rate: u32) -> PipelineConfig {
    let mut c = PipelineConfig::new(codec, rate);
    c.dsp.echo_cancellation = false;
    c.dsp.noise_suppression = false;
    c
}

/// mSBC packets (60 bytes each) carrying `pcm`, made by a phone-side pipeline at 16 kHz.
fn msbc_packets(pcm: &[i16]) -> Vec<Vec<u8>> {
    let mut phone = CallPipeline::new(no_dsp(CallCodec::Msbc, 16_000)).unwrap();
    phone.handle_mic(pcm).unwrap();
    std::iter::from_fn(|| phone.poll_transmit()).collect()
}

#[test]
fn msbc_pipeline_round_trip_at_16k() {
    let input = common::speech_like(16_000, MSBC_FRAME_SAMPLES * 133, 12_000.0);
    let packets = msbc_packets(&input);
    assert_eq!(packets.len(), input.len() / MSBC_FRAME_SAMPLES);
    assert!(packets.iter().all(|p| p.len() == H2_PACKET_LEN));
    let mut car = CallPipeline::new(no_dsp(CallCodec::Msbc, 16_000)).unwrap();
    let mut out = Vec::new();
    for p in &packets {
        car.handle_sco_packet(p);
    }
    car.take_speaker(&mut out);
    assert_eq!(out.len(), input.len());
    let (snr, _) = common::best_aligned_snr(&input, &out, 200, 480);
    assert!(snr > 30.0, "{snr}");
}

#[test]
fn msbc_concealment_on_dropped_packets() {
    let input = common::speech_like(16_000, 16_000, 12_000.0);
    let packets = msbc_packets(&input);
    let clean = {
        let mut car = CallPipeline::new(no_dsp(CallCodec::Msbc, 16_000)).unwrap();
        let mut out = Vec::new();
        for p in &packets {
            car.handle_sco_packet(p);
        }
        car.take_speaker(&mut out);
        out
    };
    let mut car = CallPipeline::new(no_dsp(CallCodec::Msbc, 16_000)).unwrap();
    let mut out = Vec::new();
    // Drop single packets and a run of three; the last packet always arrives (a loss at the
    // end shows only when the next packet comes).
    let dropped = [10usize, 40, 41, 42, 80, 100];
    for (i, p) in packets.iter().enumerate() {
        if !dropped.contains(&i) {
            // Re-cut into 24-byte SCO packets, as USB controllers deliver them.
            for piece in p.chunks(24) {
                car.handle_sco_packet(piece);
            }
        }
    }
    car.take_speaker(&mut out);
    let stats = car.rx_stats();
    assert_eq!(stats.lost_frames, dropped.len() as u64);
    assert_eq!(stats.corrupt_frames, 0);
    assert_eq!(out.len(), clean.len(), "output length stays exact");
    // No discontinuity beyond a bound: the largest step anywhere stays within 1.5× the largest
    // step of the clean decode.
    let bound = common::max_step(&clean) * 3 / 2;
    let worst = common::max_step(&out);
    println!(
        "max step clean {}, concealed {worst}",
        common::max_step(&clean)
    );
    assert!(worst <= bound, "step {worst} > {bound}");
    // And the concealed frames resemble what was lost (better than silence).
    let f = MSBC_FRAME_SAMPLES;
    let lost = &clean[10 * f..11 * f];
    let conc = &out[10 * f..11 * f];
    let err: f64 = lost
        .iter()
        .zip(conc)
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
        .sum();
    assert!(err < common::energy(lost), "concealment worse than silence");
}

#[test]
fn msbc_corrupt_frame_is_concealed() {
    let input = common::speech_like(16_000, MSBC_FRAME_SAMPLES * 66, 12_000.0);
    let mut packets = msbc_packets(&input);
    packets[20][4] ^= 0x10; // a scale-factor bit: the SBC CRC fails
    packets[30][1] = 0x00; // a broken H2 header: the frame is lost, the sequence gap shows it
    let mut car = CallPipeline::new(no_dsp(CallCodec::Msbc, 16_000)).unwrap();
    for p in &packets {
        car.handle_sco_packet(p);
    }
    let mut out = Vec::new();
    car.take_speaker(&mut out);
    let stats = car.rx_stats();
    assert_eq!(stats.corrupt_frames, 1);
    assert_eq!(stats.lost_frames, 1);
    assert_eq!(stats.frames, packets.len() as u64 - 2);
    assert_eq!(out.len(), input.len());
}

#[test]
fn msbc_pipeline_gap_is_concealed_and_fades() {
    let mut c = Concealer::new(MSBC_FRAME_SAMPLES, 16_000);
    let mut tone = common::speech_like(16_000, MSBC_FRAME_SAMPLES * 4, 12_000.0);
    for f in tone.chunks_mut(MSBC_FRAME_SAMPLES) {
        c.good_frame(f);
    }
    let mut frames = Vec::new();
    for _ in 0..7 {
        let mut out = [0i16; MSBC_FRAME_SAMPLES];
        c.conceal(&mut out);
        frames.push(common::energy(&out));
    }
    assert!(frames[0] > 0.0);
    assert!(
        frames.windows(2).skip(1).all(|w| w[1] <= w[0]),
        "{frames:?}"
    );
    assert_eq!(frames[6], 0.0, "a long gap fades to silence");
}

#[test]
fn cvsd_round_trip_is_bit_exact() {
    // A whole number of 7.5 ms frames and of 48-byte packets.
    let input = common::speech_like(8_000, 120 * 66, 12_000.0);
    let mut phone = CallPipeline::new(no_dsp(CallCodec::Cvsd, 8_000)).unwrap();
    let mut car = CallPipeline::new(no_dsp(CallCodec::Cvsd, 8_000)).unwrap();
    phone.handle_mic(&input).unwrap();
    let mut out = Vec::new();
    while let Some(p) = phone.poll_transmit() {
        assert_eq!(p.len(), 48);
        car.handle_sco_packet(&p);
    }
    car.take_speaker(&mut out);
    assert!(out == input, "CVSD samples changed on the way");
}

#[test]
fn cvsd_packet_size_is_learned_from_received_packets() {
    let mut car = CallPipeline::new(no_dsp(CallCodec::Cvsd, 8_000)).unwrap();
    assert_eq!(car.packet_len(), 48);
    car.handle_sco_packet(&[0u8; 60]);
    assert_eq!(car.packet_len(), 60);
    car.handle_mic(&[7i16; 120]).unwrap();
    let sent: Vec<Vec<u8>> = std::iter::from_fn(|| car.poll_transmit()).collect();
    assert_eq!(sent.len(), 4);
    assert!(sent.iter().all(|p| p.len() == 60));
    // Odd packet lengths split samples across packets; nothing is lost.
    let mut rx = CallPipeline::new(no_dsp(CallCodec::Cvsd, 8_000)).unwrap();
    let bytes: Vec<u8> = (1..=20i16).flat_map(|s| s.to_le_bytes()).collect();
    for piece in bytes.chunks(7) {
        rx.handle_sco_packet(piece);
    }
    let mut out = Vec::new();
    rx.take_speaker(&mut out);
    assert_eq!(out, (1..=20).collect::<Vec<i16>>());
}

#[test]
fn cvsd_pipeline_at_48k_device_rate() {
    let input = common::speech_like(48_000, 48_000, 12_000.0);
    let mut phone = CallPipeline::new(no_dsp(CallCodec::Cvsd, 8_000)).unwrap();
    let mut car = CallPipeline::new(no_dsp(CallCodec::Cvsd, 48_000)).unwrap();
    car.handle_mic(&input).unwrap();
    let mut n = 0;
    while let Some(p) = car.poll_transmit() {
        n += p.len();
        phone.handle_sco_packet(&p);
    }
    assert!(
        (15_000..=16_000).contains(&n),
        "{n} bytes for one second at 8 kHz"
    );
    let mut out = Vec::new();
    phone.take_speaker(&mut out);
    assert!(common::energy(&out) > 0.1 * common::energy(&input) / 6.0);
}

#[test]
fn resampler_round_trip() {
    for (codec_rate, device_rate) in [
        (16_000, 48_000),
        (8_000, 48_000),
        (16_000, 44_100),
        (8_000, 44_100),
    ] {
        let input = common::speech_like(codec_rate, codec_rate as usize, 12_000.0);
        let mut up = Resampler::new(codec_rate, device_rate, 3).unwrap();
        let mut down = Resampler::new(device_rate, codec_rate, 3).unwrap();
        let mut mid = Vec::new();
        // Odd block sizes, as a sound card delivers them.
        for block in input.chunks(97) {
            up.process(block, &mut mid);
        }
        let expected_mid = input.len() as u64 * u64::from(device_rate) / u64::from(codec_rate);
        // The filter's half-length is still inside the resampler at the end.
        let held =
            u64::from(up.latency_input_samples()) * u64::from(device_rate) / u64::from(codec_rate);
        let short = expected_mid - mid.len() as u64;
        assert!(short <= held + 2, "{} vs {expected_mid}", mid.len());
        let mut back = Vec::new();
        for block in mid.chunks(441) {
            down.process(block, &mut back);
        }
        let (snr, delay) = common::best_aligned_snr(&input, &back, 64, 400);
        println!(
            "resample {codec_rate} → {device_rate} → {codec_rate}: SNR {snr:.1} dB, delay {delay}"
        );
        assert!(snr >= 20.0, "{codec_rate}/{device_rate}: SNR {snr:.1} dB");
    }
}

/// Echo return loss enhancement over the last two seconds of `secs` seconds of `speaker`
/// echoed through a 12 ms, three-tap cabin.
fn erle_db(speaker: &[i16], noise_suppression: bool) -> f64 {
    let rate = 16_000;
    let frame = MSBC_FRAME_SAMPLES;
    let delay = 192;
    let mic: Vec<i16> = (0..speaker.len())
        .map(|n| {
            let d = |k: usize| {
                if n >= k {
                    f64::from(speaker[n - k])
                } else {
                    0.0
                }
            };
            (0.5 * d(delay) + 0.2 * d(delay + 37) + 0.1 * d(delay + 101)) as i16
        })
        .collect();
    let config = DspConfig {
        echo_cancellation: true,
        noise_suppression,
        ..DspConfig::default()
    };
    let mut dsp = MicProcessor::new(frame, rate as u32, config).unwrap();
    let mut out = Vec::new();
    for (m, s) in mic.chunks_exact(frame).zip(speaker.chunks_exact(frame)) {
        let mut m = m.to_vec();
        dsp.process(&mut m, s);
        out.extend_from_slice(&m);
    }
    let tail = rate * 2;
    10.0 * (common::energy(&mic[mic.len() - tail..])
        / common::energy(&out[out.len() - tail..]).max(1.0))
    .log10()
}

#[test]
fn aec_reduces_echo_of_the_reference() {
    let noise = common::noise(16_000 * 8, 8_000, 1);
    let erle = erle_db(&noise, false);
    println!("AEC echo reduction, noise reference, after 6 s: {erle:.1} dB");
    assert!(erle >= 20.0, "ERLE {erle:.1} dB");
    // Speech is harder to adapt to (coloured, with pauses); the preprocessor's residual echo
    // suppression does part of the work.
    let speech = common::speech_like(16_000, 16_000 * 8, 12_000.0);
    let erle = erle_db(&speech, false);
    println!("AEC echo reduction, speech-like reference, after 6 s: {erle:.1} dB");
    assert!(erle >= 20.0, "ERLE {erle:.1} dB");
}

#[test]
fn latency_stays_within_budget() {
    for codec in [CallCodec::Cvsd, CallCodec::Msbc] {
        for rate in [48_000, 44_100] {
            let p = CallPipeline::new(PipelineConfig::new(codec, rate)).unwrap();
            let l = p.latency();
            println!(
                "{codec:?} @ {rate}: receive {:?}, send {:?}",
                l.receive, l.send
            );
            assert!(
                l.receive + l.send <= std::time::Duration::from_millis(15),
                "{l:?}"
            );
        }
    }
}
