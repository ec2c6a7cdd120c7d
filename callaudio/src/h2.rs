//! mSBC over SCO: the H2 synchronisation header (HFP 1.8, section 5.7.1).
//!
//! Every 7.5 ms one 60-byte packet: `0x01`, a sequence byte, the 57-byte mSBC frame (which
//! starts with the mSBC sync word `0xAD`) and one padding byte. The sequence byte carries a
//! two-bit counter, each bit doubled: `0x08`, `0x38`, `0xC8`, `0xF8` for 0, 1, 2, 3.
//!
//! The kernel hands the stream over in packets of the controller's SCO packet size (24, 48,
//! 60, 72 bytes…), not aligned to H2 packets, so [`H2Reassembler`] treats what it gets as a
//! byte stream: it searches for `0x01 <seq> 0xAD`, waits until a whole frame is there, and
//! reports each frame with how many frames went missing before it (sequence gap).

use crate::msbc::MSBC_FRAME_LEN;

/// Bytes in one H2 packet on air: header (2) + mSBC frame (57) + padding (1).
pub const H2_PACKET_LEN: usize = 60;
/// First byte of every H2 header.
pub const H2_SYNC: u8 = 0x01;
/// The sequence bytes for sequence numbers 0 to 3.
pub const H2_SEQ: [u8; 4] = [0x08, 0x38, 0xC8, 0xF8];
/// First byte of every mSBC frame.
pub const MSBC_SYNCWORD: u8 = 0xAD;

/// Wraps encoded mSBC frames into H2 packets with a running sequence number.
#[derive(Debug, Default, Clone)]
pub struct H2Packetiser {
    seq: u8,
}

impl H2Packetiser {
    /// A packetiser whose first packet carries sequence number 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wraps one frame into a 60-byte H2 packet and advances the sequence number.
    pub fn wrap(&mut self, frame: &[u8; MSBC_FRAME_LEN]) -> [u8; H2_PACKET_LEN] {
        let mut packet = [0u8; H2_PACKET_LEN];
        packet[0] = H2_SYNC;
        packet[1] = H2_SEQ[usize::from(self.seq)];
        packet[2..2 + MSBC_FRAME_LEN].copy_from_slice(frame);
        self.seq = (self.seq + 1) & 0x03;
        packet
    }
}

/// One frame found in the received stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H2Frame {
    /// The 57-byte mSBC frame (not yet checked: the decoder checks its CRC).
    pub frame: [u8; MSBC_FRAME_LEN],
    /// The frame's sequence number, 0 to 3.
    pub seq: u8,
    /// Frames missing between the previous frame and this one, from the sequence numbers
    /// (0 to 3: a gap of four or more frames aliases and is counted modulo four).
    pub missing: u8,
}

/// Finds H2 packets in the SCO byte stream, whatever the size of the pieces it arrives in.
///
/// Sans-IO: [`push`](Self::push) the bytes of each received SCO packet, then drain
/// [`next_frame`](Self::next_frame) until `None`. Bytes that do not belong to an H2 packet are
/// skipped and counted in [`skipped_bytes`](Self::skipped_bytes) (the padding byte after
/// each frame is not counted). At most one incomplete packet is kept between calls.
#[derive(Debug, Default, Clone)]
pub struct H2Reassembler {
    /// Received bytes; `buf[start..]` is not consumed yet.
    buf: Vec<u8>,
    start: usize,
    expected_seq: Option<u8>,
    /// A frame was just taken: the next byte dropped is its padding, not garbage.
    after_frame: bool,
    skipped: u64,
    frames: u64,
    missing: u64,
}

impl H2Reassembler {
    /// An empty reassembler that has not seen a frame yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        // Compact first: what is left over is less than one packet.
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, or `None` until more bytes arrive.
    pub fn next_frame(&mut self) -> Option<H2Frame> {
        match self.find_header() {
            Ok(start) => self.discard(start),
            Err(droppable) => {
                self.discard(droppable);
                return None;
            }
        }
        let pending = &self.buf[self.start..];
        let packet = pending.get(..2 + MSBC_FRAME_LEN)?;
        // find_header only stops at a valid sequence byte.
        let seq = seq_number(packet[1]).unwrap_or(0);
        let mut frame = [0u8; MSBC_FRAME_LEN];
        frame.copy_from_slice(&packet[2..]);
        self.start += 2 + MSBC_FRAME_LEN;
        let missing = match self.expected_seq {
            Some(expected) => seq.wrapping_sub(expected) & 0x03,
            None => 0,
        };
        self.expected_seq = Some((seq + 1) & 0x03);
        self.after_frame = true;
        self.frames += 1;
        self.missing += u64::from(missing);
        Some(H2Frame {
            frame,
            seq,
            missing,
        })
    }

    /// Forgets buffered bytes and the expected sequence number (after a link restart).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.expected_seq = None;
        self.after_frame = false;
    }

    /// Bytes skipped so far because they were not part of an H2 packet.
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped
    }

    /// Frames found so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Frames reported missing so far (sequence gaps).
    pub fn missing_frames(&self) -> u64 {
        self.missing
    }

    /// Bytes held while waiting for the rest of a packet.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// `Ok(position)` of the first plausible header (`0x01`, a sequence byte, `0xAD`), or
    /// `Err(n)`: the first `n` bytes cannot start one (a partial header at the end is kept).
    fn find_header(&self) -> Result<usize, usize> {
        let pending = &self.buf[self.start..];
        let n = pending.len();
        for i in 0..n {
            if pending[i] != H2_SYNC {
                continue;
            }
            match (pending.get(i + 1), pending.get(i + 2)) {
                (None, _) => return Err(i),
                (Some(&s), None) if seq_number(s).is_some() => return Err(i),
                (Some(&s), Some(&m)) if seq_number(s).is_some() && m == MSBC_SYNCWORD => {
                    return Ok(i);
                }
                _ => {}
            }
        }
        Err(n)
    }

    /// Drops `n` leading bytes, counting them as skipped except the padding byte that
    /// follows each frame.
    fn discard(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let forgiven = usize::from(self.after_frame);
        self.after_frame = false;
        self.skipped += (n - forgiven) as u64;
        self.start += n;
    }
}

/// The sequence number a sequence byte encodes, if it is one of the four valid bytes.
pub fn seq_number(byte: u8) -> Option<u8> {
    H2_SEQ.iter().position(|&s| s == byte).map(|p| p as u8)
}
