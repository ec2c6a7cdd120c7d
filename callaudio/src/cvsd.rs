//! CVSD calls: the controller does the CVSD coding, the host exchanges 8 kHz s16le PCM.
//!
//! SCO packets then carry raw little-endian samples (48 bytes = 24 samples = 3 ms on most USB
//! controllers). [`CvsdReceiver`] turns received packets into samples, keeping an odd byte
//! for the next packet; [`CvsdPacketiser`] cuts the outgoing samples into packets of the size
//! the controller uses, which is learned from received packets.

use std::collections::VecDeque;

/// Sample rate of CVSD call audio as the host sees it.
pub const CVSD_RATE: u32 = 8_000;
/// SCO packet size assumed until one has been received (most USB controllers).
pub const DEFAULT_CVSD_PACKET_LEN: usize = 48;

/// Received SCO bytes → samples.
#[derive(Debug, Default, Clone)]
pub struct CvsdReceiver {
    carry: Option<u8>,
}

impl CvsdReceiver {
    /// A receiver with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the samples in `packet` to `out`.
    pub fn push(&mut self, packet: &[u8], out: &mut Vec<i16>) {
        let mut rest = packet;
        if let Some(lo) = self.carry.take() {
            let Some((&hi, tail)) = rest.split_first() else {
                self.carry = Some(lo);
                return;
            };
            out.push(i16::from_le_bytes([lo, hi]));
            rest = tail;
        }
        let mut pairs = rest.chunks_exact(2);
        out.extend(pairs.by_ref().map(|p| i16::from_le_bytes([p[0], p[1]])));
        self.carry = pairs.remainder().first().copied();
    }
}

/// Samples → outgoing SCO packets of the learned size.
#[derive(Debug, Clone)]
pub struct CvsdPacketiser {
    bytes: VecDeque<u8>,
}

impl Default for CvsdPacketiser {
    fn default() -> Self {
        Self::new()
    }
}

impl CvsdPacketiser {
    /// An empty packetiser.
    pub fn new() -> Self {
        Self {
            bytes: VecDeque::new(),
        }
    }

    /// Queues samples for sending.
    pub fn push(&mut self, pcm: &[i16]) {
        for s in pcm {
            self.bytes.extend(s.to_le_bytes());
        }
    }

    /// The next packet of exactly `packet_len` bytes, once that many are queued.
    pub fn next_packet(&mut self, packet_len: usize) -> Option<Vec<u8>> {
        if packet_len == 0 || self.bytes.len() < packet_len {
            return None;
        }
        Some(self.bytes.drain(..packet_len).collect())
    }

    /// Bytes queued and not yet sent.
    pub fn queued(&self) -> usize {
        self.bytes.len()
    }
}
