//! The frame decoder: bytes in any pieces → whole frames, with bounded memory.

use crate::error::ProtocolError;
use crate::frame::{Frame, FrameType, HEADER_LEN, MAGIC, MAX_PAYLOAD_LEN, VERSION};

/// Splits a byte stream into [`Frame`]s.
///
/// Bytes may arrive split anywhere or batched: a partial frame is kept until the rest arrives,
/// which is never an error. At most one frame is buffered (header plus at most
/// [`MAX_PAYLOAD_LEN`] bytes); a header announcing more is rejected before any of its payload
/// is stored, and that payload is skipped as it streams past. Frames of an unknown type or an
/// unsupported version are skipped the same way, so the stream stays usable. Only a bad magic
/// byte loses the framing: the decoder then discards everything (it is *poisoned*).
#[derive(Debug, Default)]
pub struct Decoder {
    /// Bytes of the frame being assembled: a partial header, or a header and partial payload.
    buf: Vec<u8>,
    /// Payload bytes of a rejected frame still to be discarded as they arrive.
    skip: u64,
    /// Framing was lost; nothing more is decoded.
    poisoned: bool,
}

impl Decoder {
    /// A decoder expecting the first byte of a frame.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes the next frame from `input`, advancing it past the bytes used.
    ///
    /// Returns `None` when `input` is exhausted before a frame completes (the partial frame is
    /// kept for the next call), `Some(Ok(frame))` for a frame, `Some(Err(_))` for a frame that
    /// was rejected (the bytes after it are still decoded, unless the error is
    /// [fatal](ProtocolError::is_fatal)). Call it again until it returns `None`.
    pub fn decode(&mut self, input: &mut &[u8]) -> Option<Result<Frame, ProtocolError>> {
        loop {
            if self.poisoned {
                *input = &[];
                return None;
            }
            if self.skip > 0 {
                let n = usize::try_from(self.skip)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                *input = &input[n..];
                self.skip -= n as u64;
                if self.skip > 0 {
                    return None;
                }
                continue;
            }
            // Fast path: a whole frame at the start of the input, nothing buffered: no copy.
            if self.buf.is_empty() && input.len() >= HEADER_LEN {
                let header = header(&input[..HEADER_LEN]);
                if let Err(e) = self.check(&header) {
                    *input = &input[HEADER_LEN..];
                    return Some(Err(e));
                }
                let total = HEADER_LEN + header.len;
                if input.len() >= total {
                    let result =
                        Frame::decode_payload(header.frame_type, &input[HEADER_LEN..total]);
                    *input = &input[total..];
                    return Some(result);
                }
            }
            // Slow path: assemble the header, then the payload, in `buf`.
            if self.buf.len() < HEADER_LEN {
                let n = (HEADER_LEN - self.buf.len()).min(input.len());
                self.buf.extend_from_slice(&input[..n]);
                *input = &input[n..];
                if self.buf.len() < HEADER_LEN {
                    return None;
                }
                let header = header(&self.buf);
                if let Err(e) = self.check(&header) {
                    self.buf.clear();
                    return Some(Err(e));
                }
                // Exactly one frame's worth, so capacity never exceeds the largest frame.
                self.buf.reserve_exact(header.len);
            }
            let header = header(&self.buf);
            let total = HEADER_LEN + header.len;
            let n = (total - self.buf.len()).min(input.len());
            self.buf.extend_from_slice(&input[..n]);
            *input = &input[n..];
            if self.buf.len() < total {
                return None;
            }
            let result = Frame::decode_payload(header.frame_type, &self.buf[HEADER_LEN..]);
            self.buf.clear();
            return Some(result);
        }
    }

    /// Bytes held for an incomplete frame (for tests and memory accounting).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes allocated for the frame buffer; never more than one frame.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// True once a bad magic byte lost the framing.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Rejects a header before its payload is stored; arranges for the payload to be skipped.
    fn check(&mut self, h: &Header) -> Result<(), ProtocolError> {
        if h.magic != MAGIC {
            self.poisoned = true;
            self.buf = Vec::new();
            return Err(ProtocolError::BadMagic { found: h.magic });
        }
        let error = if h.version != VERSION {
            ProtocolError::UnsupportedVersion { found: h.version }
        } else if h.len > MAX_PAYLOAD_LEN {
            ProtocolError::FrameTooLarge {
                len: h.raw_len,
                max: MAX_PAYLOAD_LEN,
            }
        } else if FrameType::from_byte(h.frame_type).is_none() {
            ProtocolError::UnknownType {
                frame_type: h.frame_type,
            }
        } else {
            return Ok(());
        };
        self.skip = u64::from(h.raw_len);
        Err(error)
    }
}

/// A parsed frame header.
struct Header {
    magic: u8,
    version: u8,
    frame_type: u8,
    /// The announced payload length.
    raw_len: u32,
    /// `raw_len` as usize (saturating).
    len: usize,
}

/// Parses the first [`HEADER_LEN`] bytes of `b` (the caller guarantees the length).
fn header(b: &[u8]) -> Header {
    let raw_len = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    Header {
        magic: b[0],
        version: b[1],
        frame_type: b[2],
        raw_len,
        len: usize::try_from(raw_len).unwrap_or(usize::MAX),
    }
}
