//! Errors: [`ProtocolError`] when the peer misbehaved, [`Error`] when a command was misused,
//! and [`ErrorCode`], the numbers carried by `ERROR` frames.

use std::fmt;

use crate::frame::FrameType;

/// Something the peer sent that breaks the protocol.
///
/// Every one of these is answered with an `ERROR` frame carrying [`ProtocolError::code`]
/// (except errors in an `ERROR` frame itself: an error is never answered with an error) and
/// reported as [`Event::ProtocolError`](crate::Event::ProtocolError). Only the
/// [fatal](ProtocolError::is_fatal) ones end the session ([`Event::Closed`](crate::Event::Closed));
/// after the others the link stays usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The first header byte was not the magic `0xCD`: framing is lost. Fatal.
    #[error("bad magic byte {found:#04x}, framing lost")]
    BadMagic {
        /// The byte found where the magic should be.
        found: u8,
    },
    /// The header carries a protocol version this side does not speak; the frame was skipped.
    #[error("unsupported version {found:#04x}")]
    UnsupportedVersion {
        /// The version byte of the frame.
        found: u8,
    },
    /// The header announced a payload longer than the maximum; it was skipped unread.
    #[error("frame payload of {len} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// Announced payload length.
        len: u32,
        /// Largest payload accepted.
        max: usize,
    },
    /// A frame type this version does not define; the frame was skipped.
    #[error("unknown frame type {frame_type:#04x}")]
    UnknownType {
        /// The type byte.
        frame_type: u8,
    },
    /// The payload ended before all mandatory fields were read.
    #[error("truncated payload in frame type {frame_type:#04x}")]
    Truncated {
        /// Type of the offending frame.
        frame_type: u8,
    },
    /// A string field is not valid UTF-8.
    #[error("invalid UTF-8 in field {field} of frame type {frame_type:#04x}")]
    InvalidUtf8 {
        /// Type of the offending frame.
        frame_type: u8,
        /// Name of the field as in the specification.
        field: &'static str,
    },
    /// A string or list field is longer than the specification allows.
    #[error("field {field} of frame type {frame_type:#04x} is {len} long, at most {max} allowed")]
    FieldTooLong {
        /// Type of the offending frame.
        frame_type: u8,
        /// Name of the field as in the specification.
        field: &'static str,
        /// Length found.
        len: usize,
        /// Largest length allowed.
        max: usize,
    },
    /// A field has a value the specification does not allow (an empty id, role 0, ...).
    #[error("invalid value in field {field} of frame type {frame_type:#04x}")]
    InvalidValue {
        /// Type of the offending frame.
        frame_type: u8,
        /// Name of the field as in the specification.
        field: &'static str,
    },
    /// A well-formed frame that is not allowed now: a message before the handshake, a second
    /// `HELLO`, a frame only the other role may send, a chunk before the transfer was accepted.
    #[error("unexpected frame type {frame_type:#04x}: {reason}")]
    UnexpectedFrame {
        /// Type of the offending frame.
        frame_type: u8,
        /// Why it is not allowed.
        reason: &'static str,
    },
    /// The peer's `HELLO` did not arrive within the handshake timeout. Fatal.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The peer's `HELLO` announced the same role as ours (two cars, two phones). Fatal.
    #[error("peer announced role {found:#04x}, expected the other side")]
    WrongRole {
        /// The role byte of the peer's `HELLO`.
        found: u8,
    },
    /// A chunk, accept or ack for a message id that has no transfer on this link.
    #[error("unknown message {id:?}")]
    UnknownMessage {
        /// The id the peer named.
        id: String,
    },
    /// A chunk that does not start where the transfer stands, runs past the declared size,
    /// or an accept offset beyond the size.
    #[error("bad offset {found} for message {id:?}, expected {expected}")]
    BadOffset {
        /// The message id.
        id: String,
        /// The offset this side expected (the declared size for an accept).
        expected: u32,
        /// The offset (or, for a chunk running past the end, the end) the peer sent.
        found: u32,
    },
    /// An offer larger than the size this side announced in its `HELLO`.
    #[error("message {id:?} of {size} bytes exceeds the limit of {max}")]
    MessageTooLarge {
        /// The message id.
        id: String,
        /// Declared size.
        size: u32,
        /// This side's limit.
        max: u32,
    },
    /// An offer in a codec this side did not list in its `HELLO`.
    #[error("message {id:?} uses unsupported codec {codec}")]
    UnsupportedCodec {
        /// The message id.
        id: String,
        /// The codec offered.
        codec: crate::Codec,
    },
    /// Too many transfers or unacknowledged messages are pending; the peer must wait for acks.
    #[error("too many pending messages, refused {id:?}")]
    Busy {
        /// The refused message id.
        id: String,
    },
}

impl ProtocolError {
    /// The code sent in the `ERROR` frame that answers this error.
    pub const fn code(&self) -> ErrorCode {
        match self {
            Self::BadMagic { .. } | Self::Truncated { .. } | Self::InvalidValue { .. } => {
                ErrorCode::Malformed
            }
            Self::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            Self::FrameTooLarge { .. } => ErrorCode::FrameTooLarge,
            Self::UnknownType { .. } => ErrorCode::UnknownType,
            Self::InvalidUtf8 { .. } => ErrorCode::InvalidUtf8,
            Self::FieldTooLong { .. } => ErrorCode::FieldTooLong,
            Self::UnexpectedFrame { .. } => ErrorCode::UnexpectedFrame,
            Self::HandshakeTimeout | Self::WrongRole { .. } => ErrorCode::HandshakeFailed,
            Self::UnknownMessage { .. } => ErrorCode::UnknownMessage,
            Self::BadOffset { .. } => ErrorCode::BadOffset,
            Self::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
            Self::UnsupportedCodec { .. } => ErrorCode::UnsupportedCodec,
            Self::Busy { .. } => ErrorCode::Busy,
        }
    }

    /// True when the session cannot go on: the driver should flush the transmit queue (it
    /// holds the `ERROR` frame) and close the link.
    pub const fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::BadMagic { .. } | Self::HandshakeTimeout | Self::WrongRole { .. }
        )
    }

    /// Type of the frame that caused the error, `0x00` when there is none (timeouts).
    pub const fn frame_type(&self) -> u8 {
        match self {
            Self::Truncated { frame_type }
            | Self::UnknownType { frame_type }
            | Self::InvalidUtf8 { frame_type, .. }
            | Self::FieldTooLong { frame_type, .. }
            | Self::InvalidValue { frame_type, .. }
            | Self::UnexpectedFrame { frame_type, .. } => *frame_type,
            Self::WrongRole { .. } => FrameType::Hello as u8,
            Self::UnknownMessage { .. } | Self::BadOffset { .. } => 0x00,
            Self::MessageTooLarge { .. } | Self::UnsupportedCodec { .. } | Self::Busy { .. } => {
                0x00
            }
            Self::BadMagic { .. }
            | Self::UnsupportedVersion { .. }
            | Self::FrameTooLarge { .. }
            | Self::HandshakeTimeout => 0x00,
        }
    }

    /// The message id the error is about, when there is one.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::UnknownMessage { id }
            | Self::BadOffset { id, .. }
            | Self::MessageTooLarge { id, .. }
            | Self::UnsupportedCodec { id, .. }
            | Self::Busy { id } => Some(id),
            _ => None,
        }
    }
}

/// Why a command was refused; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The handshake has not completed, or the session is closed.
    #[error("not connected")]
    NotConnected,
    /// A string or list is longer than the protocol allows.
    #[error("field {field} is {len} long, at most {max} allowed")]
    FieldTooLong {
        /// Name of the field as in the specification.
        field: &'static str,
        /// Length given.
        len: usize,
        /// Largest length allowed.
        max: usize,
    },
    /// A value the protocol does not allow (an empty id, empty chunk data, an offset beyond
    /// the size).
    #[error("invalid {field}: {reason}")]
    InvalidValue {
        /// Name of the field or argument.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No message with this id is known on this link.
    #[error("unknown message {0:?}")]
    UnknownMessage(String),
    /// The message exists but the command does not apply in its state (acking a message
    /// whose chunks are still arriving, accepting one that is already accepted).
    #[error("message {id:?}: {reason}")]
    InvalidState {
        /// The message id.
        id: String,
        /// Why the command does not apply.
        reason: &'static str,
    },
    /// An outgoing transfer is already in progress; wait for its ack or rejection.
    #[error("an outgoing transfer is already in progress")]
    Busy,
    /// The message is larger than the peer accepts (its `HELLO`) or than the protocol allows.
    #[error("message of {size} bytes exceeds the limit of {max}")]
    MessageTooLarge {
        /// Size given.
        size: usize,
        /// Largest size allowed.
        max: u32,
    },
    /// The peer did not list this codec in its `HELLO`.
    #[error("peer does not accept codec {0}")]
    UnsupportedCodec(crate::Codec),
    /// The peer did not announce the capability this command needs.
    #[error("peer does not support {0}")]
    NotSupported(&'static str),
}

/// Error codes carried by `ERROR` frames (a `u16`, big-endian on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `0x0001`: truncated payload, bad field value or bad magic.
    Malformed,
    /// `0x0002`: the frame's version byte is not spoken.
    UnsupportedVersion,
    /// `0x0003`: the frame type is not defined.
    UnknownType,
    /// `0x0004`: the payload exceeds the maximum frame size.
    FrameTooLarge,
    /// `0x0005`: a string field is not valid UTF-8.
    InvalidUtf8,
    /// `0x0006`: a string or list field exceeds its limit.
    FieldTooLong,
    /// `0x0007`: the frame is not allowed in this state or from this role.
    UnexpectedFrame,
    /// `0x0008`: the handshake failed (timeout, wrong role).
    HandshakeFailed,
    /// `0x0010`: the message id has no transfer on this link.
    UnknownMessage,
    /// `0x0011`: a chunk or accept offset does not match the transfer.
    BadOffset,
    /// `0x0012`: the offered message exceeds the receiver's size limit.
    MessageTooLarge,
    /// `0x0013`: the offered codec is not accepted.
    UnsupportedCodec,
    /// `0x0014`: too many transfers or unacknowledged messages pending; retry after acks.
    Busy,
    /// `0x0015`: the receiver refuses the message (storage full, policy).
    Rejected,
    /// `0x0016`: a reply names a conversation the phone does not know.
    UnknownConversation,
    /// `0x00FF`: an internal fault of the sender of the `ERROR`.
    Internal,
    /// Any other code.
    Other(u16),
}

impl ErrorCode {
    /// Maps a numeric code.
    pub const fn from_code(code: u16) -> Self {
        match code {
            0x0001 => Self::Malformed,
            0x0002 => Self::UnsupportedVersion,
            0x0003 => Self::UnknownType,
            0x0004 => Self::FrameTooLarge,
            0x0005 => Self::InvalidUtf8,
            0x0006 => Self::FieldTooLong,
            0x0007 => Self::UnexpectedFrame,
            0x0008 => Self::HandshakeFailed,
            0x0010 => Self::UnknownMessage,
            0x0011 => Self::BadOffset,
            0x0012 => Self::MessageTooLarge,
            0x0013 => Self::UnsupportedCodec,
            0x0014 => Self::Busy,
            0x0015 => Self::Rejected,
            0x0016 => Self::UnknownConversation,
            0x00FF => Self::Internal,
            n => Self::Other(n),
        }
    }

    /// The numeric code.
    pub const fn code(self) -> u16 {
        match self {
            Self::Malformed => 0x0001,
            Self::UnsupportedVersion => 0x0002,
            Self::UnknownType => 0x0003,
            Self::FrameTooLarge => 0x0004,
            Self::InvalidUtf8 => 0x0005,
            Self::FieldTooLong => 0x0006,
            Self::UnexpectedFrame => 0x0007,
            Self::HandshakeFailed => 0x0008,
            Self::UnknownMessage => 0x0010,
            Self::BadOffset => 0x0011,
            Self::MessageTooLarge => 0x0012,
            Self::UnsupportedCodec => 0x0013,
            Self::Busy => 0x0014,
            Self::Rejected => 0x0015,
            Self::UnknownConversation => 0x0016,
            Self::Internal => 0x00FF,
            Self::Other(n) => n,
        }
    }

    /// Short kebab-case name, as in the specification.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnsupportedVersion => "unsupported-version",
            Self::UnknownType => "unknown-type",
            Self::FrameTooLarge => "frame-too-large",
            Self::InvalidUtf8 => "invalid-utf8",
            Self::FieldTooLong => "field-too-long",
            Self::UnexpectedFrame => "unexpected-frame",
            Self::HandshakeFailed => "handshake-failed",
            Self::UnknownMessage => "unknown-message",
            Self::BadOffset => "bad-offset",
            Self::MessageTooLarge => "message-too-large",
            Self::UnsupportedCodec => "unsupported-codec",
            Self::Busy => "busy",
            Self::Rejected => "rejected",
            Self::UnknownConversation => "unknown-conversation",
            Self::Internal => "internal",
            Self::Other(_) => "other",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#06x})", self.name(), self.code())
    }
}
