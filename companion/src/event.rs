//! Events reported by the sessions.

use std::time::Duration;

use crate::error::{ErrorCode, ProtocolError};
use crate::frame::{Capabilities, Codec, ErrorFrame, TextMessage, VoiceMessage, VoiceReply};

/// What the peer announced in its `HELLO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Protocol version in use: the lower of both sides' highest versions.
    pub version: u8,
    /// The peer's device name.
    pub device_name: String,
    /// What the peer can do.
    pub capabilities: Capabilities,
    /// Codecs the peer accepts for audio sent to it, preferred first.
    pub codecs: Vec<Codec>,
    /// Largest voice message or reply the peer accepts (capped at the protocol's 10 MiB).
    pub max_message_size: u32,
}

/// Something the application should know about; drained with `poll_event`.
///
/// Variants are grouped by the session that reports them: [`CarSession`](crate::CarSession),
/// [`PhoneSession`](crate::PhoneSession), or both.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Both: the peer's `HELLO` arrived; commands are now accepted.
    Connected(PeerInfo),

    /// Car: the phone offers a voice message. Answer with
    /// [`accept`](crate::CarSession::accept) (from the offset already stored, 0 for a new
    /// message), [`ack_delivery`](crate::CarSession::ack_delivery) when it is already stored
    /// in full (a duplicate), or [`reject`](crate::CarSession::reject). The same id may be
    /// offered again after link loss or an error: the session reports every offer, the
    /// application decides from what it has stored.
    MessageStarted(VoiceMessage),
    /// Both: audio bytes of an accepted incoming transfer, in order, without gaps.
    ChunkReceived {
        /// The message (car) or reply (phone) id.
        id: String,
        /// Position of `data[0]` in the audio.
        offset: u32,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Car: every byte of a voice message arrived. Store it durably, then
    /// [`ack_delivery`](crate::CarSession::ack_delivery).
    MessageComplete(VoiceMessage),
    /// Car: a text message. Store it durably, then
    /// [`ack_delivery`](crate::CarSession::ack_delivery). A text resent before its ack is
    /// reported again with the same id.
    TextMessage(TextMessage),
    /// Both: the peer offered again a message or reply acknowledged earlier on this link; the
    /// session acknowledged it again by itself.
    DuplicateMessage {
        /// The id.
        id: String,
    },
    /// Car: the phone accepted the voice reply; chunks now go out from `offset`.
    ReplyAccepted {
        /// The reply id.
        id: String,
        /// Where the phone resumes.
        offset: u32,
    },
    /// Car: the phone took over the reply (`REPLY_ACK`); it may be deleted.
    ReplyAcked {
        /// The reply id.
        id: String,
    },

    /// Phone: the car accepted the voice message; chunks now go out from `offset`.
    OfferAccepted {
        /// The message id.
        id: String,
        /// Where the car resumes.
        offset: u32,
    },
    /// Phone: the car stored the message durably (`DELIVERY_ACK`).
    Delivered {
        /// The message id.
        id: String,
    },
    /// Phone: the driver listened to the message.
    Listened {
        /// The message id.
        id: String,
        /// When playback finished, milliseconds since the Unix epoch (UTC).
        timestamp_ms: u64,
    },
    /// Phone: the car offers a voice reply. Answer with
    /// [`accept_reply`](crate::PhoneSession::accept_reply),
    /// [`ack_reply`](crate::PhoneSession::ack_reply) or
    /// [`reject_reply`](crate::PhoneSession::reject_reply).
    ReplyStarted(VoiceReply),
    /// Phone: every byte of a reply arrived; post it, then
    /// [`ack_reply`](crate::PhoneSession::ack_reply).
    ReplyComplete(VoiceReply),

    /// Both: the peer refused our outgoing offer with an `ERROR`; the transfer is dropped and
    /// may be offered again (after a reconnect, or when the cause is gone).
    OfferRejected {
        /// The offer's id.
        id: String,
        /// Why.
        code: ErrorCode,
        /// The peer's text, for logs.
        message: String,
    },
    /// Both: the `PONG` for the last [`ping`](crate::CarSession::ping) arrived.
    Pong {
        /// Round-trip time.
        rtt: Duration,
    },
    /// Both: no `PONG` within the ping timeout. The link is probably dead: close it.
    PingTimeout,
    /// Both: the peer sent an `ERROR` that is not about our outgoing offer.
    PeerError(ErrorFrame),
    /// Both: the peer broke the protocol; an `ERROR` went back and the link stays usable.
    ProtocolError(ProtocolError),
    /// Both: the session ended (fatal protocol error or handshake timeout). Send what
    /// `poll_transmit` still returns (the `ERROR` frame), then close the link.
    Closed(ProtocolError),
}
