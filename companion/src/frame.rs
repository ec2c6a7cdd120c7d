//! Frames: the header, every message type, and their byte layouts (docs/companion-protocol.md).
//!
//! All integers are big-endian. Strings are UTF-8 with a length prefix (`u8`, or `u16` for
//! text bodies) and the limits in the `MAX_*` constants. A payload may carry bytes after the
//! fields defined here: later versions append fields, so receivers ignore what follows.

use std::fmt;

use crate::error::{Error, ErrorCode, ProtocolError};

/// First byte of every frame.
pub const MAGIC: u8 = 0xCD;
/// Protocol version spoken by this crate, the second byte of every frame.
pub const VERSION: u8 = 0x01;
/// Header length: magic, version, type, flags, `u32` payload length.
pub const HEADER_LEN: usize = 8;
/// Largest frame, header included (64 KiB).
pub const MAX_FRAME_LEN: usize = 0x1_0000;
/// Largest payload.
pub const MAX_PAYLOAD_LEN: usize = MAX_FRAME_LEN - HEADER_LEN;
/// Largest voice message or reply the protocol allows (10 MiB); a side may announce less.
pub const MAX_MESSAGE_SIZE: u32 = 0x00A0_0000;
/// Longest message id in bytes (at least 1).
pub const MAX_ID_LEN: usize = 64;
/// Longest sender id, display name, conversation id or conversation name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Longest device name in `HELLO`, in bytes.
pub const MAX_DEVICE_NAME_LEN: usize = 64;
/// Longest text message body in bytes.
pub const MAX_TEXT_LEN: usize = 4096;
/// Most codecs listed in `HELLO`.
pub const MAX_CODECS: usize = 16;
/// Longest human-readable text of an `ERROR` frame in bytes.
pub const MAX_ERROR_TEXT_LEN: usize = 255;

/// The type byte of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    /// `0x01` both ways: version, role, capabilities, limits.
    Hello = 0x01,
    /// `0x02` both ways: liveness probe.
    Ping = 0x02,
    /// `0x03` both ways: answer to `PING`.
    Pong = 0x03,
    /// `0x04` both ways: something went wrong.
    Error = 0x04,
    /// `0x10` phone → car: a voice message is available.
    VoiceOffer = 0x10,
    /// `0x11` phone → car: a text message.
    TextMessage = 0x11,
    /// `0x12` car → phone: a message is durably stored.
    DeliveryAck = 0x12,
    /// `0x13` car → phone: the driver listened to a message.
    Listened = 0x13,
    /// `0x20` car → phone: a voice reply is available.
    ReplyOffer = 0x20,
    /// `0x21` phone → car: the reply was taken over by the messaging app.
    ReplyAck = 0x21,
    /// `0x30` receiver → sender of an offer: send from this offset.
    Accept = 0x30,
    /// `0x31` sender → receiver: bytes of the offered audio.
    Chunk = 0x31,
}

impl FrameType {
    /// Maps the type byte; `None` for types this version does not define.
    pub const fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0x01 => Self::Hello,
            0x02 => Self::Ping,
            0x03 => Self::Pong,
            0x04 => Self::Error,
            0x10 => Self::VoiceOffer,
            0x11 => Self::TextMessage,
            0x12 => Self::DeliveryAck,
            0x13 => Self::Listened,
            0x20 => Self::ReplyOffer,
            0x21 => Self::ReplyAck,
            0x30 => Self::Accept,
            0x31 => Self::Chunk,
            _ => return None,
        })
    }
}

/// Which end of the link a side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// `0x01`: the head unit (codriverd).
    Car,
    /// `0x02`: the phone app.
    Phone,
}

impl Role {
    /// The role byte.
    pub const fn code(self) -> u8 {
        match self {
            Self::Car => 0x01,
            Self::Phone => 0x02,
        }
    }

    /// The other side.
    pub const fn peer(self) -> Self {
        match self {
            Self::Car => Self::Phone,
            Self::Phone => Self::Car,
        }
    }
}

/// Audio encoding of a voice message or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// `0x01`: an Ogg Opus file (RFC 7845), as WhatsApp, Signal and Telegram store them.
    OggOpus,
    /// `0x02`: raw Opus packets (RFC 6716), 48 kHz, each preceded by its length as `u16`.
    OpusPackets,
    /// Any other code (listed by a newer peer; never offered to a side that did not list it).
    Other(u8),
}

impl Codec {
    /// Maps a codec byte.
    pub const fn from_code(code: u8) -> Self {
        match code {
            0x01 => Self::OggOpus,
            0x02 => Self::OpusPackets,
            n => Self::Other(n),
        }
    }

    /// The codec byte.
    pub const fn code(self) -> u8 {
        match self {
            Self::OggOpus => 0x01,
            Self::OpusPackets => 0x02,
            Self::Other(n) => n,
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OggOpus => f.write_str("ogg-opus"),
            Self::OpusPackets => f.write_str("opus-packets"),
            Self::Other(n) => write!(f, "codec-{n:#04x}"),
        }
    }
}

/// Capability bits announced in `HELLO` (a `u32`); unknown bits are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(u32);

impl Capabilities {
    /// Receives voice messages (car) / sends them (phone).
    pub const VOICE_MESSAGES: Self = Self(0x0000_0001);
    /// Receives text messages (car) / sends them (phone).
    pub const TEXT_MESSAGES: Self = Self(0x0000_0002);
    /// Sends voice replies (car) / accepts them (phone).
    pub const VOICE_REPLIES: Self = Self(0x0000_0004);
    /// Sends listened receipts (car) / wants them (phone).
    pub const LISTENED_RECEIPTS: Self = Self(0x0000_0008);
    /// Every capability of protocol version 1.
    pub const ALL: Self = Self(0x0000_000F);

    /// From the wire value (unknown bits kept, so they can be logged).
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// The wire value.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// True when every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The bits set in both.
    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }
}

impl std::ops::BitOr for Capabilities {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// `HELLO`: the first frame each side sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Which side sends it.
    pub role: Role,
    /// Highest protocol version the sender speaks (1 here); both then use the lower of the two.
    pub max_version: u8,
    /// What the sender can do.
    pub capabilities: Capabilities,
    /// Largest voice message or reply the sender accepts, at most [`MAX_MESSAGE_SIZE`].
    pub max_message_size: u32,
    /// Codecs the sender accepts for audio it receives, preferred first.
    pub codecs: Vec<Codec>,
    /// Human-readable name for logs and UIs ("Golf head unit", "Alice's Pixel").
    pub device_name: String,
}

/// `VOICE_OFFER`: metadata of an incoming voice message (phone → car).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceMessage {
    /// Unique per phone, stable across reconnects: the key for resume, acks and dedupe.
    pub id: String,
    /// Stable id of the sender in the messaging app (phone number, user id).
    pub sender_id: String,
    /// Name to announce ("Alice").
    pub sender_name: String,
    /// Conversation the message belongs to; replies name it.
    pub conversation_id: String,
    /// Group name, or empty for a one-to-one conversation.
    pub conversation_name: String,
    /// How the audio is encoded.
    pub codec: Codec,
    /// Playing time in milliseconds, for the announcement.
    pub duration_ms: u32,
    /// When it was sent, milliseconds since the Unix epoch (UTC).
    pub timestamp_ms: u64,
    /// Audio size in bytes.
    pub size: u32,
}

/// `TEXT_MESSAGE`: a whole text message (phone → car).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMessage {
    /// Unique per phone: the key for acks and dedupe.
    pub id: String,
    /// Stable id of the sender.
    pub sender_id: String,
    /// Name to announce.
    pub sender_name: String,
    /// Conversation the message belongs to.
    pub conversation_id: String,
    /// Group name, or empty.
    pub conversation_name: String,
    /// When it was sent, milliseconds since the Unix epoch (UTC).
    pub timestamp_ms: u64,
    /// The text, at most [`MAX_TEXT_LEN`] bytes.
    pub text: String,
}

/// `REPLY_OFFER`: metadata of a voice reply recorded in the car (car → phone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceReply {
    /// Unique per car, stable across reconnects.
    pub id: String,
    /// Conversation to post the reply in.
    pub conversation_id: String,
    /// Id of the message answered, or empty.
    pub in_reply_to: String,
    /// How the audio is encoded.
    pub codec: Codec,
    /// Playing time in milliseconds.
    pub duration_ms: u32,
    /// When it was recorded, milliseconds since the Unix epoch (UTC).
    pub timestamp_ms: u64,
    /// Audio size in bytes.
    pub size: u32,
}

/// `CHUNK`: a piece of offered audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The offer it belongs to.
    pub id: String,
    /// Position of the first byte of `data` in the audio.
    pub offset: u32,
    /// The bytes, at least one.
    pub data: Vec<u8>,
}

/// `ERROR`: the peer reports a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFrame {
    /// What went wrong.
    pub code: ErrorCode,
    /// Type of the frame that caused it, `0x00` when none.
    pub frame_type: u8,
    /// The message id concerned, or empty.
    pub id: String,
    /// Free text for logs, never shown to the driver.
    pub message: String,
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `0x01`.
    Hello(Hello),
    /// `0x02`: answered by a `PONG` with the same nonce.
    Ping {
        /// Chosen by the sender.
        nonce: u32,
    },
    /// `0x03`.
    Pong {
        /// The nonce of the `PING` answered.
        nonce: u32,
    },
    /// `0x04`.
    Error(ErrorFrame),
    /// `0x10`.
    VoiceOffer(VoiceMessage),
    /// `0x11`.
    TextMessage(TextMessage),
    /// `0x12`.
    DeliveryAck {
        /// The message stored.
        id: String,
    },
    /// `0x13`.
    Listened {
        /// The message listened to.
        id: String,
        /// When playback finished, milliseconds since the Unix epoch (UTC).
        timestamp_ms: u64,
    },
    /// `0x20`.
    ReplyOffer(VoiceReply),
    /// `0x21`.
    ReplyAck {
        /// The reply taken over.
        id: String,
    },
    /// `0x30`.
    Accept {
        /// The offer accepted.
        id: String,
        /// Bytes the receiver already holds; the sender continues from here.
        offset: u32,
    },
    /// `0x31`.
    Chunk(Chunk),
}

impl Frame {
    /// The type byte of this frame.
    pub const fn frame_type(&self) -> FrameType {
        match self {
            Self::Hello(_) => FrameType::Hello,
            Self::Ping { .. } => FrameType::Ping,
            Self::Pong { .. } => FrameType::Pong,
            Self::Error(_) => FrameType::Error,
            Self::VoiceOffer(_) => FrameType::VoiceOffer,
            Self::TextMessage(_) => FrameType::TextMessage,
            Self::DeliveryAck { .. } => FrameType::DeliveryAck,
            Self::Listened { .. } => FrameType::Listened,
            Self::ReplyOffer(_) => FrameType::ReplyOffer,
            Self::ReplyAck { .. } => FrameType::ReplyAck,
            Self::Accept { .. } => FrameType::Accept,
            Self::Chunk(_) => FrameType::Chunk,
        }
    }

    /// Appends the whole frame (header and payload) to `out`, checking every limit; on error
    /// `out` is left as it was.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        let result = self.encode_unchecked_len(out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// The whole frame as a new buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }

    /// Decodes a payload of type `frame_type` (the header already checked).
    pub fn decode_payload(frame_type: u8, payload: &[u8]) -> Result<Self, ProtocolError> {
        let Some(ty) = FrameType::from_byte(frame_type) else {
            return Err(ProtocolError::UnknownType { frame_type });
        };
        let mut r = Reader {
            buf: payload,
            frame_type,
        };
        let frame = match ty {
            FrameType::Hello => {
                let role = match r.u8()? {
                    0x01 => Role::Car,
                    0x02 => Role::Phone,
                    found => return Err(ProtocolError::WrongRole { found }),
                };
                let max_version = r.u8()?;
                if max_version == 0 {
                    return Err(r.invalid("max_version"));
                }
                let capabilities = Capabilities::from_bits(r.u32()?);
                let max_message_size = r.u32()?;
                let count = usize::from(r.u8()?);
                if count > MAX_CODECS {
                    return Err(ProtocolError::FieldTooLong {
                        frame_type,
                        field: "codecs",
                        len: count,
                        max: MAX_CODECS,
                    });
                }
                let codecs = r
                    .take(count)?
                    .iter()
                    .map(|&c| Codec::from_code(c))
                    .collect();
                let device_name = r.str8("device_name", 0, MAX_DEVICE_NAME_LEN)?;
                Self::Hello(Hello {
                    role,
                    max_version,
                    capabilities,
                    max_message_size,
                    codecs,
                    device_name,
                })
            }
            FrameType::Ping => Self::Ping { nonce: r.u32()? },
            FrameType::Pong => Self::Pong { nonce: r.u32()? },
            FrameType::Error => {
                let code = ErrorCode::from_code(r.u16()?);
                let frame_type = r.u8()?;
                // Lossy: an error is never answered with an error, so accept what we can.
                let id = r.str8_lossy()?;
                let message = r.str8_lossy()?;
                Self::Error(ErrorFrame {
                    code,
                    frame_type,
                    id,
                    message,
                })
            }
            FrameType::VoiceOffer => Self::VoiceOffer(VoiceMessage {
                id: r.id()?,
                sender_id: r.str8("sender_id", 0, MAX_NAME_LEN)?,
                sender_name: r.str8("sender_name", 0, MAX_NAME_LEN)?,
                conversation_id: r.str8("conversation_id", 0, MAX_NAME_LEN)?,
                conversation_name: r.str8("conversation_name", 0, MAX_NAME_LEN)?,
                codec: Codec::from_code(r.u8()?),
                duration_ms: r.u32()?,
                timestamp_ms: r.u64()?,
                size: r.size()?,
            }),
            FrameType::TextMessage => Self::TextMessage(TextMessage {
                id: r.id()?,
                sender_id: r.str8("sender_id", 0, MAX_NAME_LEN)?,
                sender_name: r.str8("sender_name", 0, MAX_NAME_LEN)?,
                conversation_id: r.str8("conversation_id", 0, MAX_NAME_LEN)?,
                conversation_name: r.str8("conversation_name", 0, MAX_NAME_LEN)?,
                timestamp_ms: r.u64()?,
                text: r.str16("text", MAX_TEXT_LEN)?,
            }),
            FrameType::DeliveryAck => Self::DeliveryAck { id: r.id()? },
            FrameType::Listened => Self::Listened {
                id: r.id()?,
                timestamp_ms: r.u64()?,
            },
            FrameType::ReplyOffer => Self::ReplyOffer(VoiceReply {
                id: r.id()?,
                conversation_id: r.str8("conversation_id", 1, MAX_NAME_LEN)?,
                in_reply_to: r.str8("in_reply_to", 0, MAX_ID_LEN)?,
                codec: Codec::from_code(r.u8()?),
                duration_ms: r.u32()?,
                timestamp_ms: r.u64()?,
                size: r.size()?,
            }),
            FrameType::ReplyAck => Self::ReplyAck { id: r.id()? },
            FrameType::Accept => Self::Accept {
                id: r.id()?,
                offset: r.u32()?,
            },
            FrameType::Chunk => {
                let id = r.id()?;
                let offset = r.u32()?;
                // The data is the rest of the payload: chunks cannot carry extension fields.
                let data = r.buf.to_vec();
                if data.is_empty() {
                    return Err(r.invalid("data"));
                }
                Self::Chunk(Chunk { id, offset, data })
            }
        };
        Ok(frame)
    }

    fn encode_unchecked_len(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = begin(out, self.frame_type());
        match self {
            Self::Hello(h) => {
                out.push(h.role.code());
                if h.max_version == 0 {
                    return Err(Error::InvalidValue {
                        field: "max_version",
                        reason: "must be at least 1",
                    });
                }
                out.push(h.max_version);
                put_u32(out, h.capabilities.bits());
                put_u32(out, h.max_message_size);
                check_len("codecs", h.codecs.len(), MAX_CODECS)?;
                out.push(len_u8(h.codecs.len()));
                out.extend(h.codecs.iter().map(|c| c.code()));
                put_str8(out, "device_name", &h.device_name, 0, MAX_DEVICE_NAME_LEN)?;
            }
            Self::Ping { nonce } | Self::Pong { nonce } => put_u32(out, *nonce),
            Self::Error(e) => {
                put_u16(out, e.code.code());
                out.push(e.frame_type);
                put_str8(out, "id", &e.id, 0, MAX_ID_LEN)?;
                put_str8(out, "message", &e.message, 0, MAX_ERROR_TEXT_LEN)?;
            }
            Self::VoiceOffer(m) => {
                put_id(out, &m.id)?;
                put_str8(out, "sender_id", &m.sender_id, 0, MAX_NAME_LEN)?;
                put_str8(out, "sender_name", &m.sender_name, 0, MAX_NAME_LEN)?;
                put_str8(out, "conversation_id", &m.conversation_id, 0, MAX_NAME_LEN)?;
                put_str8(
                    out,
                    "conversation_name",
                    &m.conversation_name,
                    0,
                    MAX_NAME_LEN,
                )?;
                out.push(m.codec.code());
                put_u32(out, m.duration_ms);
                put_u64(out, m.timestamp_ms);
                put_size(out, m.size)?;
            }
            Self::TextMessage(m) => {
                put_id(out, &m.id)?;
                put_str8(out, "sender_id", &m.sender_id, 0, MAX_NAME_LEN)?;
                put_str8(out, "sender_name", &m.sender_name, 0, MAX_NAME_LEN)?;
                put_str8(out, "conversation_id", &m.conversation_id, 0, MAX_NAME_LEN)?;
                put_str8(
                    out,
                    "conversation_name",
                    &m.conversation_name,
                    0,
                    MAX_NAME_LEN,
                )?;
                put_u64(out, m.timestamp_ms);
                check_len("text", m.text.len(), MAX_TEXT_LEN)?;
                put_u16(out, len_u16(m.text.len()));
                out.extend_from_slice(m.text.as_bytes());
            }
            Self::DeliveryAck { id } | Self::ReplyAck { id } => put_id(out, id)?,
            Self::Listened { id, timestamp_ms } => {
                put_id(out, id)?;
                put_u64(out, *timestamp_ms);
            }
            Self::ReplyOffer(m) => {
                put_id(out, &m.id)?;
                put_str8(out, "conversation_id", &m.conversation_id, 1, MAX_NAME_LEN)?;
                put_str8(out, "in_reply_to", &m.in_reply_to, 0, MAX_ID_LEN)?;
                out.push(m.codec.code());
                put_u32(out, m.duration_ms);
                put_u64(out, m.timestamp_ms);
                put_size(out, m.size)?;
            }
            Self::Accept { id, offset } => {
                put_id(out, id)?;
                put_u32(out, *offset);
            }
            Self::Chunk(c) => {
                return encode_chunk_into(out, start, &c.id, c.offset, &c.data);
            }
        }
        finish(out, start)
    }
}

/// Appends a `CHUNK` frame without building a [`Chunk`] (no copy of the data beforehand).
pub(crate) fn encode_chunk(
    out: &mut Vec<u8>,
    id: &str,
    offset: u32,
    data: &[u8],
) -> Result<(), Error> {
    let start = begin(out, FrameType::Chunk);
    let result = encode_chunk_into(out, start, id, offset, data);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Payload bytes a `CHUNK` for `id` spends on its fields, leaving the rest for data.
pub(crate) const fn chunk_overhead(id_len: usize) -> usize {
    1 + id_len + 4
}

fn encode_chunk_into(
    out: &mut Vec<u8>,
    start: usize,
    id: &str,
    offset: u32,
    data: &[u8],
) -> Result<(), Error> {
    if data.is_empty() {
        return Err(Error::InvalidValue {
            field: "data",
            reason: "a chunk carries at least one byte",
        });
    }
    put_id(out, id)?;
    put_u32(out, offset);
    check_len(
        "data",
        data.len(),
        MAX_PAYLOAD_LEN - chunk_overhead(id.len()),
    )?;
    out.extend_from_slice(data);
    finish(out, start)
}

/// Writes the header with a zero length; returns where the frame starts.
fn begin(out: &mut Vec<u8>, ty: FrameType) -> usize {
    let start = out.len();
    out.extend_from_slice(&[MAGIC, VERSION, ty as u8, 0x00, 0, 0, 0, 0]);
    start
}

/// Patches the payload length into the header written by [`begin`].
fn finish(out: &mut [u8], start: usize) -> Result<(), Error> {
    let len = out.len() - start - HEADER_LEN;
    check_len("payload", len, MAX_PAYLOAD_LEN)?;
    // MAX_PAYLOAD_LEN fits in a u32.
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    out[start + 4..start + HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), Error> {
    if len > max {
        return Err(Error::FieldTooLong { field, len, max });
    }
    Ok(())
}

/// A length already checked against a limit below 256.
fn len_u8(len: usize) -> u8 {
    u8::try_from(len).unwrap_or(u8::MAX)
}

/// A length already checked against a limit below 65,536.
fn len_u16(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_str8(
    out: &mut Vec<u8>,
    field: &'static str,
    s: &str,
    min: usize,
    max: usize,
) -> Result<(), Error> {
    check_len(field, s.len(), max)?;
    if s.len() < min {
        return Err(Error::InvalidValue {
            field,
            reason: "must not be empty",
        });
    }
    out.push(len_u8(s.len()));
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_id(out: &mut Vec<u8>, id: &str) -> Result<(), Error> {
    put_str8(out, "id", id, 1, MAX_ID_LEN)
}

fn put_size(out: &mut Vec<u8>, size: u32) -> Result<(), Error> {
    if size == 0 || size > MAX_MESSAGE_SIZE {
        return Err(Error::InvalidValue {
            field: "size",
            reason: "must be 1 to 10 MiB",
        });
    }
    put_u32(out, size);
    Ok(())
}

/// Reads payload fields, mapping every shortfall to a [`ProtocolError`] naming the frame type.
struct Reader<'a> {
    buf: &'a [u8],
    frame_type: u8,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if self.buf.len() < n {
            return Err(ProtocolError::Truncated {
                frame_type: self.frame_type,
            });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, ProtocolError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, ProtocolError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, ProtocolError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn invalid(&self, field: &'static str) -> ProtocolError {
        ProtocolError::InvalidValue {
            frame_type: self.frame_type,
            field,
        }
    }

    fn string(
        &mut self,
        field: &'static str,
        len: usize,
        min: usize,
        max: usize,
    ) -> Result<String, ProtocolError> {
        if len > max {
            return Err(ProtocolError::FieldTooLong {
                frame_type: self.frame_type,
                field,
                len,
                max,
            });
        }
        let bytes = self.take(len)?;
        if len < min {
            return Err(self.invalid(field));
        }
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(ProtocolError::InvalidUtf8 {
                frame_type: self.frame_type,
                field,
            }),
        }
    }

    fn str8(
        &mut self,
        field: &'static str,
        min: usize,
        max: usize,
    ) -> Result<String, ProtocolError> {
        let len = usize::from(self.u8()?);
        self.string(field, len, min, max)
    }

    fn str16(&mut self, field: &'static str, max: usize) -> Result<String, ProtocolError> {
        let len = usize::from(self.u16()?);
        self.string(field, len, 0, max)
    }

    fn str8_lossy(&mut self) -> Result<String, ProtocolError> {
        let len = usize::from(self.u8()?);
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    fn id(&mut self) -> Result<String, ProtocolError> {
        self.str8("id", 1, MAX_ID_LEN)
    }

    fn size(&mut self) -> Result<u32, ProtocolError> {
        let size = self.u32()?;
        if size == 0 {
            return Err(self.invalid("size"));
        }
        Ok(size)
    }
}
