//! mSBC through libsbc: round-trip quality and corrupt frames.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers outside #[test] fns may panic.

mod common;

use codriver_callaudio::{DecodeError, MSBC_FRAME_LEN, MSBC_FRAME_SAMPLES, Msbc};

/// The SNR an mSBC round trip must reach (measured: 53.1 dB speech-like, 63.5 dB chirp).
const MIN_SNR_DB: f64 = 30.0;

fn round_trip(input: &[i16]) -> Vec<i16> {
    let mut codec = Msbc::new().unwrap();
    let mut out = Vec::with_capacity(input.len());
    for chunk in input.chunks_exact(MSBC_FRAME_SAMPLES) {
        let pcm: &[i16; MSBC_FRAME_SAMPLES] = chunk.try_into().unwrap();
        let mut frame = [0u8; MSBC_FRAME_LEN];
        codec.encode(pcm, &mut frame).unwrap();
        assert_eq!(frame[0], 0xAD, "mSBC sync word");
        let mut dec = [0i16; MSBC_FRAME_SAMPLES];
        codec.decode(&frame, &mut dec).unwrap();
        out.extend_from_slice(&dec);
    }
    out
}

#[test]
fn msbc_round_trip_snr_speech_like() {
    let input = common::speech_like(16_000, 16_000 * 2, 12_000.0);
    let out = round_trip(&input);
    let (snr, delay) = common::best_aligned_snr(&input, &out, 200, 480);
    println!("mSBC speech-like: SNR {snr:.1} dB at codec delay {delay} samples");
    assert!(snr >= MIN_SNR_DB, "SNR {snr:.1} dB < {MIN_SNR_DB} dB");
}

#[test]
fn msbc_round_trip_snr_chirp() {
    let input = common::chirp(16_000, 16_000 * 2, 100.0, 7_000.0, 10_000.0);
    let out = round_trip(&input);
    let (snr, delay) = common::best_aligned_snr(&input, &out, 200, 480);
    println!("mSBC chirp 100 Hz–7 kHz: SNR {snr:.1} dB at codec delay {delay} samples");
    assert!(snr >= MIN_SNR_DB, "SNR {snr:.1} dB < {MIN_SNR_DB} dB");
}

#[test]
fn msbc_corrupt_frames_are_reported() {
    let input = common::speech_like(16_000, MSBC_FRAME_SAMPLES * 4, 12_000.0);
    let mut codec = Msbc::new().unwrap();
    let mut frame = [0u8; MSBC_FRAME_LEN];
    codec
        .encode(input[..MSBC_FRAME_SAMPLES].try_into().unwrap(), &mut frame)
        .unwrap();
    let mut out = [0i16; MSBC_FRAME_SAMPLES];
    // Bad sync word, bad header, bad CRC byte, bad scale factors: all caught by libsbc.
    for (pos, xor) in [(0, 0xFF), (1, 0x01), (3, 0x5A), (4, 0x10), (6, 0x01)] {
        let mut bad = frame;
        bad[pos] ^= xor;
        assert!(
            matches!(codec.decode(&bad, &mut out), Err(DecodeError::Corrupt(_))),
            "byte {pos} ^ {xor:#04x} not detected"
        );
    }
    codec.decode(&frame, &mut out).unwrap();
}
