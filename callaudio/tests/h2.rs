//! H2 packetisation and reassembly from SCO packets of any size.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers outside #[test] fns may panic.

use codriver_callaudio::{H2_PACKET_LEN, H2Packetiser, H2Reassembler, MSBC_FRAME_LEN};
use proptest::prelude::*;

/// `n` distinct fake mSBC frames (sync word first) wrapped into consecutive H2 packets.
fn stream(n: usize) -> (Vec<[u8; MSBC_FRAME_LEN]>, Vec<u8>) {
    let mut p = H2Packetiser::new();
    let mut frames = Vec::new();
    let mut bytes = Vec::new();
    for i in 0..n {
        let mut f = [0u8; MSBC_FRAME_LEN];
        f[0] = 0xAD;
        for (j, b) in f.iter_mut().enumerate().skip(1) {
            // Avoid accidental headers inside the payload: never 0x01.
            *b = ((i * 7 + j * 13) % 200) as u8 + 2;
        }
        bytes.extend_from_slice(&p.wrap(&f));
        frames.push(f);
    }
    (frames, bytes)
}

fn feed(r: &mut H2Reassembler, bytes: &[u8], cuts: &[usize]) -> Vec<codriver_callaudio::H2Frame> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = cuts[i % cuts.len()].clamp(1, rest.len());
        i += 1;
        r.push(&rest[..n]);
        rest = &rest[n..];
        while let Some(f) = r.next_frame() {
            out.push(f);
        }
    }
    out
}

#[test]
fn h2_headers_and_sequence_bytes() {
    let (_, bytes) = stream(5);
    assert_eq!(bytes.len(), 5 * H2_PACKET_LEN);
    let seqs: Vec<u8> = bytes.chunks(H2_PACKET_LEN).map(|p| p[1]).collect();
    assert_eq!(seqs, [0x08, 0x38, 0xC8, 0xF8, 0x08]);
    assert!(
        bytes
            .chunks(H2_PACKET_LEN)
            .all(|p| p[0] == 0x01 && p[2] == 0xAD && p[59] == 0)
    );
}

#[test]
fn h2_reassembly_common_sco_packet_sizes() {
    for size in [24, 48, 60, 72, 1, 59, 61, 120] {
        let (frames, bytes) = stream(40);
        let mut r = H2Reassembler::new();
        let got = feed(&mut r, &bytes, &[size]);
        assert_eq!(got.len(), frames.len(), "packet size {size}");
        for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
            assert_eq!(&g.frame, f, "frame {i}, packet size {size}");
            assert_eq!(g.seq, (i % 4) as u8);
            assert_eq!(g.missing, 0);
        }
        assert_eq!(r.skipped_bytes(), 0, "packet size {size}");
    }
}

#[test]
fn h2_missing_packets_show_as_sequence_gaps() {
    let (_, bytes) = stream(12);
    let mut lossy = Vec::new();
    for (i, p) in bytes.chunks(H2_PACKET_LEN).enumerate() {
        // Drop packet 3, and packets 6 and 7.
        if ![3, 6, 7].contains(&i) {
            lossy.extend_from_slice(p);
        }
    }
    let mut r = H2Reassembler::new();
    let got = feed(&mut r, &lossy, &[48]);
    let missing: Vec<u8> = got.iter().map(|f| f.missing).collect();
    assert_eq!(missing, [0, 0, 0, 1, 0, 2, 0, 0, 0]);
    assert_eq!(r.missing_frames(), 3);
}

#[test]
fn h2_garbage_and_truncated_packets_are_skipped() {
    let (frames, bytes) = stream(6);
    let mut s = vec![0x55, 0x01, 0x02, 0x01, 0x08]; // noise, a false start, half a header
    s.extend_from_slice(&bytes[..2 * H2_PACKET_LEN]);
    s.extend_from_slice(&bytes[2 * H2_PACKET_LEN..2 * H2_PACKET_LEN + 30]); // truncated
    s.extend_from_slice(&bytes[3 * H2_PACKET_LEN..]);
    let mut r = H2Reassembler::new();
    let got = feed(&mut r, &s, &[24]);
    // Frames 0, 1, then the truncated frame 2 swallows the start of frame 3 (its header is
    // inside the 57 bytes taken) and decodes as corrupt downstream; frames 4, 5 follow.
    assert_eq!(got.first().map(|f| f.frame), Some(frames[0]));
    assert_eq!(got.last().map(|f| f.frame), Some(frames[5]));
    assert_eq!(got.last().map(|f| f.seq), Some(1));
    assert!(r.skipped_bytes() >= 5);
}

proptest! {
    #[test]
    fn h2_reassembly_at_any_byte_boundary(cuts in prop::collection::vec(1usize..130, 1..40)) {
        let (frames, bytes) = stream(30);
        let mut r = H2Reassembler::new();
        let got = feed(&mut r, &bytes, &cuts);
        prop_assert_eq!(got.len(), frames.len());
        for (g, f) in got.iter().zip(&frames) {
            prop_assert_eq!(&g.frame, f);
            prop_assert_eq!(g.missing, 0);
        }
        prop_assert_eq!(r.skipped_bytes(), 0);
        prop_assert!(r.buffered() <= 1);
    }
}
