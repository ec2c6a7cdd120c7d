//! The car (head unit) side of the companion protocol.

use std::time::Instant;

use crate::error::{Error, ErrorCode, ProtocolError};
use crate::event::{Event, PeerInfo};
use crate::frame::{
    Capabilities, ErrorFrame, Frame, FrameType, MAX_ERROR_TEXT_LEN, MAX_MESSAGE_SIZE, Role,
    TextMessage, VoiceMessage, VoiceReply,
};
use crate::link::{Link, SessionConfig};
use crate::transfer::{Incoming, Offered, Outgoing};

/// The car's side of one companion link, without I/O.
///
/// Feed it bytes from the link with [`handle_input`](Self::handle_input), call
/// [`handle_timeout`](Self::handle_timeout) when [`poll_timeout`](Self::poll_timeout) passes,
/// and after every input, timeout or command drain, in this order:
///
/// 1. [`poll_transmit`](Self::poll_transmit) until `None`: write each frame to the link;
/// 2. [`poll_timeout`](Self::poll_timeout): re-arm the one timer;
/// 3. [`poll_event`](Self::poll_event) until `None`.
///
/// Nothing is acknowledged by itself: the application stores each message durably and then
/// calls [`ack_delivery`](Self::ack_delivery). Memory is bounded: the decoder holds at most
/// one frame, incoming transfers and unacked messages are capped by [`SessionConfig`], and
/// events hold at most the bytes of the last input (drain them after every input).
#[derive(Debug)]
pub struct CarSession {
    link: Link,
    voice: Incoming<VoiceMessage>,
    texts: Incoming<TextMessage>,
    reply: Option<Outgoing>,
}

impl CarSession {
    /// A session that sends nothing until [`start`](Self::start) (or the first input).
    pub fn new(config: SessionConfig) -> Self {
        let voice = Incoming::new(
            config.max_active_transfers,
            config.max_unacked,
            config.acked_memory,
        );
        let texts = Incoming::new(config.max_unacked, config.max_unacked, config.acked_memory);
        Self {
            link: Link::new(Role::Car, config),
            voice,
            texts,
            reply: None,
        }
    }

    /// Sends the car's `HELLO` and arms the handshake timeout. Call once the link is open;
    /// later calls do nothing.
    pub fn start(&mut self, now: Instant) {
        self.link.start(now);
    }

    /// Processes bytes from the phone; frames may be split or batched arbitrarily.
    pub fn handle_input(&mut self, now: Instant, mut bytes: &[u8]) {
        while let Some(frame) = self.link.next_frame(now, &mut bytes) {
            self.on_frame(frame);
        }
    }

    /// Fires the handshake and ping deadlines that have passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.link.handle_timeout(now);
    }

    /// The next frame to write, whole. Reply chunks are built here one at a time, so a
    /// driver that writes each frame before polling the next holds one chunk in memory.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.link.poll_transmit(self.reply.as_mut())
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.link.poll_timeout()
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.link.events.pop_front()
    }

    /// Accepts an offered voice message from `offset`: the bytes already stored from an
    /// earlier link (0 for a new message). The phone sends the rest; when `offset` is the
    /// size, [`Event::MessageComplete`] follows at once.
    pub fn accept(&mut self, id: &str, offset: u32) -> Result<(), Error> {
        self.link.ensure_connected()?;
        let complete = self.voice.accept(id, offset)?;
        self.link.queue(&Frame::Accept {
            id: id.to_owned(),
            offset,
        });
        if let Some(meta) = complete {
            self.link.events.push_back(Event::MessageComplete(meta));
        }
        Ok(())
    }

    /// Refuses an offered or partly received voice message with `code` (e.g.
    /// [`ErrorCode::Rejected`] when storage is full); `text` is for the phone's logs.
    pub fn reject(&mut self, id: &str, code: ErrorCode, text: &str) -> Result<(), Error> {
        self.link.ensure_connected()?;
        self.voice.reject(id)?;
        reject_frame(&mut self.link, FrameType::VoiceOffer, id, code, text)
    }

    /// Acknowledges a voice or text message: call only once it is durably stored. Allowed
    /// when complete, when merely offered (it was stored on an earlier link), and again for
    /// an id acked before.
    pub fn ack_delivery(&mut self, id: &str) -> Result<(), Error> {
        self.link.ensure_connected()?;
        if self.texts.is_pending(id) || (self.texts.was_acked(id) && !self.voice.is_pending(id)) {
            self.texts.ack(id)?;
        } else {
            // Unknown ids fail here with `UnknownMessage`.
            self.voice.ack(id)?;
        }
        self.link.send(&Frame::DeliveryAck { id: id.to_owned() })
    }

    /// Tells the phone the driver listened to a message (delivered on this link or earlier).
    pub fn send_listened(&mut self, id: &str, timestamp_ms: u64) -> Result<(), Error> {
        self.link.ensure_connected()?;
        self.require(Capabilities::LISTENED_RECEIPTS, "listened receipts")?;
        self.link.send(&Frame::Listened {
            id: id.to_owned(),
            timestamp_ms,
        })
    }

    /// Offers a voice reply; `reply.size` is set from `data`. The audio goes out in chunks
    /// once the phone accepts ([`Event::ReplyAccepted`]); [`Event::ReplyAcked`] ends it. One
    /// reply at a time. After link loss, offer it again on the next link: the phone resumes.
    pub fn send_reply(&mut self, mut reply: VoiceReply, data: Vec<u8>) -> Result<(), Error> {
        self.link.ensure_connected()?;
        if self.reply.is_some() {
            return Err(Error::Busy);
        }
        self.require(Capabilities::VOICE_REPLIES, "voice replies")?;
        check_outgoing(self.link.peer(), reply.codec, data.len())?;
        reply.size = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let id = reply.id.clone();
        self.link.send(&Frame::ReplyOffer(reply))?;
        self.reply = Some(Outgoing::new(id, data, self.link.config.chunk_size));
        Ok(())
    }

    /// Sends a `PING`; [`Event::Pong`] or [`Event::PingTimeout`] follows. A new ping
    /// replaces an outstanding one.
    pub fn ping(&mut self, now: Instant) -> Result<(), Error> {
        self.link.ping(now)
    }

    /// True between the phone's `HELLO` and the end of the session.
    pub fn is_connected(&self) -> bool {
        self.link.is_connected()
    }

    /// True after a fatal error or handshake timeout: close the link.
    pub fn is_closed(&self) -> bool {
        self.link.is_closed()
    }

    /// What the phone announced in its `HELLO`.
    pub fn peer(&self) -> Option<&PeerInfo> {
        self.link.peer()
    }

    /// Bytes held for an incomplete incoming frame (at most one frame).
    pub fn buffered(&self) -> usize {
        self.link.decoder().buffered()
    }

    /// Capacity of the frame buffer, for memory accounting; never above one frame.
    pub fn buffer_capacity(&self) -> usize {
        self.link.decoder().capacity()
    }

    fn require(&self, cap: Capabilities, what: &'static str) -> Result<(), Error> {
        match self.link.peer() {
            Some(p) if p.capabilities.contains(cap) => Ok(()),
            _ => Err(Error::NotSupported(what)),
        }
    }

    fn on_frame(&mut self, frame: Frame) {
        match frame {
            Frame::VoiceOffer(m) => self.on_voice_offer(m),
            Frame::TextMessage(t) => match self.texts.offer(t.clone()) {
                Offered::Started => self.link.events.push_back(Event::TextMessage(t)),
                Offered::Duplicate => duplicate(&mut self.link, t.id),
                Offered::Busy => self.link.violation(ProtocolError::Busy { id: t.id }),
            },
            Frame::Chunk(c) => match self.voice.chunk(&c) {
                Ok(complete) => {
                    self.link.events.push_back(Event::ChunkReceived {
                        id: c.id,
                        offset: c.offset,
                        data: c.data,
                    });
                    if let Some(meta) = complete {
                        self.link.events.push_back(Event::MessageComplete(meta));
                    }
                }
                Err(e) => self.link.violation(e),
            },
            Frame::Accept { id, offset } => match self.reply.as_mut() {
                Some(r) if r.id == id => match r.accept(offset) {
                    Ok(()) => self
                        .link
                        .events
                        .push_back(Event::ReplyAccepted { id, offset }),
                    Err(e) => self.link.violation(e),
                },
                _ => self.link.violation(ProtocolError::UnknownMessage { id }),
            },
            Frame::ReplyAck { id } => {
                if self.reply.as_ref().is_some_and(|r| r.id == id) {
                    self.reply = None;
                    self.link.events.push_back(Event::ReplyAcked { id });
                } else {
                    self.link.violation(ProtocolError::UnknownMessage { id });
                }
            }
            Frame::Error(e) => {
                peer_error(&mut self.link, &mut self.reply, FrameType::ReplyOffer, e)
            }
            other => self.link.violation(ProtocolError::UnexpectedFrame {
                frame_type: other.frame_type() as u8,
                reason: "not sent by a phone",
            }),
        }
    }

    fn on_voice_offer(&mut self, m: VoiceMessage) {
        if !self.link.config.codecs.contains(&m.codec) {
            let error = ProtocolError::UnsupportedCodec {
                id: m.id,
                codec: m.codec,
            };
            self.link.violation(error);
            return;
        }
        let max = self.link.config.max_message_size.min(MAX_MESSAGE_SIZE);
        if m.size > max {
            let error = ProtocolError::MessageTooLarge {
                id: m.id,
                size: m.size,
                max,
            };
            self.link.violation(error);
            return;
        }
        match self.voice.offer(m.clone()) {
            Offered::Started => self.link.events.push_back(Event::MessageStarted(m)),
            Offered::Duplicate => duplicate(&mut self.link, m.id),
            Offered::Busy => self.link.violation(ProtocolError::Busy { id: m.id }),
        }
    }
}

/// Answers a re-offer of an id acked on this link: ack again, report.
pub(crate) fn duplicate(link: &mut Link, id: String) {
    let frame = match link.role {
        Role::Car => Frame::DeliveryAck { id: id.clone() },
        Role::Phone => Frame::ReplyAck { id: id.clone() },
    };
    link.queue(&frame);
    link.events.push_back(Event::DuplicateMessage { id });
}

/// Sends the `ERROR` that refuses an offer.
pub(crate) fn reject_frame(
    link: &mut Link,
    offer: FrameType,
    id: &str,
    code: ErrorCode,
    text: &str,
) -> Result<(), Error> {
    let text = crate::link::truncate(text, MAX_ERROR_TEXT_LEN);
    link.send(&Frame::Error(ErrorFrame {
        code,
        frame_type: offer as u8,
        id: id.to_owned(),
        message: text.to_owned(),
    }))
}

/// Checks an outgoing message against the peer's `HELLO`.
pub(crate) fn check_outgoing(
    peer: Option<&PeerInfo>,
    codec: crate::Codec,
    len: usize,
) -> Result<(), Error> {
    let Some(peer) = peer else {
        return Err(Error::NotConnected);
    };
    if !peer.codecs.contains(&codec) {
        return Err(Error::UnsupportedCodec(codec));
    }
    let max = peer.max_message_size.min(MAX_MESSAGE_SIZE);
    if len == 0 {
        return Err(Error::InvalidValue {
            field: "data",
            reason: "a message has at least one byte",
        });
    }
    if len > usize::try_from(max).unwrap_or(usize::MAX) {
        return Err(Error::MessageTooLarge { size: len, max });
    }
    Ok(())
}

/// An `ERROR` from the peer: when it names our outgoing offer (by id, or with an empty id
/// and the offer's frame type while the offer awaits its accept), the offer is dropped.
pub(crate) fn peer_error(
    link: &mut Link,
    outgoing: &mut Option<Outgoing>,
    offer_type: FrameType,
    e: ErrorFrame,
) {
    let ours = outgoing.as_ref().is_some_and(|o| {
        (!e.id.is_empty() && o.id == e.id)
            || (e.id.is_empty() && e.frame_type == offer_type as u8 && o.is_offered())
    });
    match outgoing.take() {
        Some(o) if ours => link.events.push_back(Event::OfferRejected {
            id: o.id,
            code: e.code,
            message: e.message,
        }),
        other => {
            *outgoing = other;
            link.events.push_back(Event::PeerError(e));
        }
    }
}
