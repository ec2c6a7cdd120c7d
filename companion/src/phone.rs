//! The phone side of the companion protocol, for phone-sim, tests and as a reference for
//! phone-app developers.

use std::time::Instant;

use crate::car::{check_outgoing, duplicate, peer_error, reject_frame};
use crate::error::{Error, ErrorCode, ProtocolError};
use crate::event::{Event, PeerInfo};
use crate::frame::{
    Capabilities, Frame, FrameType, MAX_MESSAGE_SIZE, Role, TextMessage, VoiceMessage, VoiceReply,
};
use crate::link::{Link, SessionConfig};
use crate::transfer::{Incoming, Offered, Outgoing};

/// The phone's side of one companion link, without I/O. Same driving rules as
/// [`CarSession`](crate::CarSession): inputs, then drain `poll_transmit`, `poll_timeout`,
/// `poll_event`.
#[derive(Debug)]
pub struct PhoneSession {
    link: Link,
    voice: Option<Outgoing>,
    replies: Incoming<VoiceReply>,
}

impl PhoneSession {
    /// A session that sends nothing until [`start`](Self::start) (or the first input).
    pub fn new(config: SessionConfig) -> Self {
        let replies = Incoming::new(
            config.max_active_transfers,
            config.max_unacked,
            config.acked_memory,
        );
        Self {
            link: Link::new(Role::Phone, config),
            voice: None,
            replies,
        }
    }

    /// Sends the phone's `HELLO` and arms the handshake timeout; later calls do nothing.
    pub fn start(&mut self, now: Instant) {
        self.link.start(now);
    }

    /// Processes bytes from the car; frames may be split or batched arbitrarily.
    pub fn handle_input(&mut self, now: Instant, mut bytes: &[u8]) {
        while let Some(frame) = self.link.next_frame(now, &mut bytes) {
            self.on_frame(frame);
        }
    }

    /// Fires the handshake and ping deadlines that have passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.link.handle_timeout(now);
    }

    /// The next frame to write, whole; voice chunks are built one at a time.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.link.poll_transmit(self.voice.as_mut())
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.link.poll_timeout()
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.link.events.pop_front()
    }

    /// Offers a voice message; `message.size` is set from `data`. Chunks go out from the
    /// offset the car accepts ([`Event::OfferAccepted`]); [`Event::Delivered`] ends it. One
    /// at a time. After link loss, offer it again: the car resumes from what it stored.
    pub fn send_voice(&mut self, mut message: VoiceMessage, data: Vec<u8>) -> Result<(), Error> {
        self.link.ensure_connected()?;
        if self.voice.is_some() {
            return Err(Error::Busy);
        }
        self.require(Capabilities::VOICE_MESSAGES, "voice messages")?;
        check_outgoing(self.link.peer(), message.codec, data.len())?;
        message.size = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let id = message.id.clone();
        self.link.send(&Frame::VoiceOffer(message))?;
        self.voice = Some(Outgoing::new(id, data, self.link.config.chunk_size));
        Ok(())
    }

    /// Sends a text message; [`Event::Delivered`] follows once the car stored it.
    pub fn send_text(&mut self, message: TextMessage) -> Result<(), Error> {
        self.link.ensure_connected()?;
        self.require(Capabilities::TEXT_MESSAGES, "text messages")?;
        self.link.send(&Frame::TextMessage(message))
    }

    /// Accepts an offered reply from `offset` (bytes kept from an earlier link, usually 0).
    pub fn accept_reply(&mut self, id: &str, offset: u32) -> Result<(), Error> {
        self.link.ensure_connected()?;
        let complete = self.replies.accept(id, offset)?;
        self.link.queue(&Frame::Accept {
            id: id.to_owned(),
            offset,
        });
        if let Some(meta) = complete {
            self.link.events.push_back(Event::ReplyComplete(meta));
        }
        Ok(())
    }

    /// Refuses an offered reply, e.g. with [`ErrorCode::UnknownConversation`].
    pub fn reject_reply(&mut self, id: &str, code: ErrorCode, text: &str) -> Result<(), Error> {
        self.link.ensure_connected()?;
        self.replies.reject(id)?;
        reject_frame(&mut self.link, FrameType::ReplyOffer, id, code, text)
    }

    /// Confirms a reply was taken over (posted or queued by the messaging app).
    pub fn ack_reply(&mut self, id: &str) -> Result<(), Error> {
        self.link.ensure_connected()?;
        self.replies.ack(id)?;
        self.link.send(&Frame::ReplyAck { id: id.to_owned() })
    }

    /// Sends a `PING`; [`Event::Pong`] or [`Event::PingTimeout`] follows.
    pub fn ping(&mut self, now: Instant) -> Result<(), Error> {
        self.link.ping(now)
    }

    /// True between the car's `HELLO` and the end of the session.
    pub fn is_connected(&self) -> bool {
        self.link.is_connected()
    }

    /// True after a fatal error or handshake timeout.
    pub fn is_closed(&self) -> bool {
        self.link.is_closed()
    }

    /// What the car announced in its `HELLO`.
    pub fn peer(&self) -> Option<&PeerInfo> {
        self.link.peer()
    }

    fn require(&self, cap: Capabilities, what: &'static str) -> Result<(), Error> {
        match self.link.peer() {
            Some(p) if p.capabilities.contains(cap) => Ok(()),
            _ => Err(Error::NotSupported(what)),
        }
    }

    fn on_frame(&mut self, frame: Frame) {
        match frame {
            Frame::Accept { id, offset } => match self.voice.as_mut() {
                Some(v) if v.id == id => match v.accept(offset) {
                    Ok(()) => self
                        .link
                        .events
                        .push_back(Event::OfferAccepted { id, offset }),
                    Err(e) => self.link.violation(e),
                },
                _ => self.link.violation(ProtocolError::UnknownMessage { id }),
            },
            Frame::DeliveryAck { id } => {
                if self.voice.as_ref().is_some_and(|v| v.id == id) {
                    self.voice = None;
                }
                self.link.events.push_back(Event::Delivered { id });
            }
            Frame::Listened { id, timestamp_ms } => {
                self.link
                    .events
                    .push_back(Event::Listened { id, timestamp_ms });
            }
            Frame::ReplyOffer(r) => self.on_reply_offer(r),
            Frame::Chunk(c) => match self.replies.chunk(&c) {
                Ok(complete) => {
                    self.link.events.push_back(Event::ChunkReceived {
                        id: c.id,
                        offset: c.offset,
                        data: c.data,
                    });
                    if let Some(meta) = complete {
                        self.link.events.push_back(Event::ReplyComplete(meta));
                    }
                }
                Err(e) => self.link.violation(e),
            },
            Frame::Error(e) => {
                peer_error(&mut self.link, &mut self.voice, FrameType::VoiceOffer, e)
            }
            other => self.link.violation(ProtocolError::UnexpectedFrame {
                frame_type: other.frame_type() as u8,
                reason: "not sent by a car",
            }),
        }
    }

    fn on_reply_offer(&mut self, r: VoiceReply) {
        if !self.link.config.codecs.contains(&r.codec) {
            let error = ProtocolError::UnsupportedCodec {
                id: r.id,
                codec: r.codec,
            };
            self.link.violation(error);
            return;
        }
        let max = self.link.config.max_message_size.min(MAX_MESSAGE_SIZE);
        if r.size > max {
            let error = ProtocolError::MessageTooLarge {
                id: r.id,
                size: r.size,
                max,
            };
            self.link.violation(error);
            return;
        }
        match self.replies.offer(r.clone()) {
            Offered::Started => self.link.events.push_back(Event::ReplyStarted(r)),
            Offered::Duplicate => duplicate(&mut self.link, r.id),
            Offered::Busy => self.link.violation(ProtocolError::Busy { id: r.id }),
        }
    }
}
