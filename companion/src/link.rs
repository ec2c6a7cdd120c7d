//! What both sessions share: configuration, handshake, ping, error frames, queues.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::codec::Decoder;
use crate::error::{Error, ErrorCode, ProtocolError};
use crate::event::{Event, PeerInfo};
use crate::frame::{
    Capabilities, Codec, ErrorFrame, Frame, FrameType, Hello, MAX_ERROR_TEXT_LEN, MAX_MESSAGE_SIZE,
    Role, VERSION,
};

/// Settings of one side; [`Default`] suits both the car and the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Sent in `HELLO` for the peer's logs and UI, at most 64 bytes.
    pub device_name: String,
    /// Announced in `HELLO`.
    pub capabilities: Capabilities,
    /// Codecs accepted for incoming audio, preferred first; offers in others are refused.
    pub codecs: Vec<Codec>,
    /// Largest incoming voice message or reply, at most [`MAX_MESSAGE_SIZE`].
    pub max_message_size: u32,
    /// How long to wait for the peer's `HELLO` before closing.
    pub handshake_timeout: Duration,
    /// How long to wait for a `PONG`.
    pub ping_timeout: Duration,
    /// Audio bytes per outgoing `CHUNK` (clamped to what one frame holds).
    pub chunk_size: usize,
    /// Incoming transfers offered or in progress at once; more are refused with `busy`.
    pub max_active_transfers: usize,
    /// Incoming messages (voice or text) waiting for the application's ack; more are
    /// refused with `busy`.
    pub max_unacked: usize,
    /// Acked ids remembered per link, so a re-offer is acked again without the application.
    pub acked_memory: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            device_name: "codriver".to_owned(),
            capabilities: Capabilities::ALL,
            codecs: vec![Codec::OggOpus, Codec::OpusPackets],
            max_message_size: MAX_MESSAGE_SIZE,
            handshake_timeout: Duration::from_secs(10),
            ping_timeout: Duration::from_secs(5),
            chunk_size: 0x4000,
            max_active_transfers: 2,
            max_unacked: 64,
            acked_memory: 64,
        }
    }
}

/// Where the link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Handshaking { deadline: Instant },
    Connected,
    Closed,
}

/// An outstanding `PING`.
#[derive(Debug, Clone, Copy)]
struct Ping {
    nonce: u32,
    sent: Instant,
    deadline: Instant,
}

/// The role-independent part of a session.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) role: Role,
    pub(crate) config: SessionConfig,
    decoder: Decoder,
    pub(crate) transmit: VecDeque<Vec<u8>>,
    pub(crate) events: VecDeque<Event>,
    state: State,
    peer: Option<PeerInfo>,
    ping: Option<Ping>,
    next_nonce: u32,
}

impl Link {
    pub(crate) fn new(role: Role, config: SessionConfig) -> Self {
        Self {
            role,
            config,
            decoder: Decoder::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            state: State::Idle,
            peer: None,
            ping: None,
            next_nonce: 1,
        }
    }

    /// Sends our `HELLO` and arms the handshake timer; does nothing after the first call.
    pub(crate) fn start(&mut self, now: Instant) {
        if self.state != State::Idle {
            return;
        }
        let hello = Frame::Hello(Hello {
            role: self.role,
            max_version: VERSION,
            capabilities: self.config.capabilities,
            max_message_size: self.config.max_message_size.min(MAX_MESSAGE_SIZE),
            codecs: self.config.codecs.clone(),
            device_name: self.config.device_name.clone(),
        });
        self.state = State::Handshaking {
            deadline: now + self.config.handshake_timeout,
        };
        if let Err(e) = self.send(&hello) {
            // Only a bad configuration (a long device name, too many codecs) gets here.
            self.state = State::Closed;
            self.events
                .push_back(Event::Closed(ProtocolError::InvalidValue {
                    frame_type: FrameType::Hello as u8,
                    field: match e {
                        Error::FieldTooLong { field, .. } | Error::InvalidValue { field, .. } => {
                            field
                        }
                        _ => "hello",
                    },
                }));
        }
    }

    /// Decodes frames from `input`, handling the link-level ones, until one for the session
    /// (or an `ERROR`) comes out; `None` when the input is used up.
    pub(crate) fn next_frame(&mut self, now: Instant, input: &mut &[u8]) -> Option<Frame> {
        self.start(now);
        loop {
            if self.state == State::Closed {
                *input = &[];
                return None;
            }
            match self.decoder.decode(input)? {
                Err(e) => self.violation(e),
                Ok(Frame::Hello(h)) => self.on_hello(h),
                Ok(Frame::Ping { nonce }) => self.queue(&Frame::Pong { nonce }),
                Ok(Frame::Pong { nonce }) => {
                    if let Some(p) = self.ping.filter(|p| p.nonce == nonce) {
                        self.ping = None;
                        self.events.push_back(Event::Pong {
                            rtt: now.saturating_duration_since(p.sent),
                        });
                    }
                }
                Ok(frame @ Frame::Error(_)) => return Some(frame),
                Ok(frame) if self.state != State::Connected => {
                    self.violation(ProtocolError::UnexpectedFrame {
                        frame_type: frame.frame_type() as u8,
                        reason: "before the handshake",
                    });
                }
                Ok(frame) => return Some(frame),
            }
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if let State::Handshaking { deadline } = self.state
            && deadline <= now
        {
            self.violation(ProtocolError::HandshakeTimeout);
        }
        if self.ping.is_some_and(|p| p.deadline <= now) {
            self.ping = None;
            self.events.push_back(Event::PingTimeout);
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let handshake = match self.state {
            State::Handshaking { deadline } => Some(deadline),
            _ => None,
        };
        let ping = self.ping.map(|p| p.deadline);
        match (handshake, ping) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn ping(&mut self, now: Instant) -> Result<(), Error> {
        self.ensure_connected()?;
        let nonce = self.next_nonce;
        self.next_nonce = self.next_nonce.wrapping_add(1);
        self.queue(&Frame::Ping { nonce });
        self.ping = Some(Ping {
            nonce,
            sent: now,
            deadline: now + self.config.ping_timeout,
        });
        Ok(())
    }

    /// The next frame to write: queued control frames first, then (once connected) the next
    /// chunk of the transfer going out, built only when asked for.
    pub(crate) fn poll_transmit(
        &mut self,
        outgoing: Option<&mut crate::transfer::Outgoing>,
    ) -> Option<Vec<u8>> {
        if let Some(frame) = self.transmit.pop_front() {
            return Some(frame);
        }
        if !self.is_connected() {
            return None;
        }
        outgoing?.next_chunk()
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    pub(crate) fn peer(&self) -> Option<&PeerInfo> {
        self.peer.as_ref()
    }

    pub(crate) fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    pub(crate) fn ensure_connected(&self) -> Result<(), Error> {
        if self.is_connected() {
            Ok(())
        } else {
            Err(Error::NotConnected)
        }
    }

    /// Encodes and queues a frame built by a command (its fields are the caller's, so
    /// encoding may fail: nothing is queued then).
    pub(crate) fn send(&mut self, frame: &Frame) -> Result<(), Error> {
        let bytes = frame.to_bytes()?;
        self.transmit.push_back(bytes);
        Ok(())
    }

    /// Queues a frame whose fields were validated already (peer ids, our own constants).
    pub(crate) fn queue(&mut self, frame: &Frame) {
        if let Ok(bytes) = frame.to_bytes() {
            self.transmit.push_back(bytes);
        }
    }

    /// Sends an `ERROR` frame about a message.
    pub(crate) fn send_error(&mut self, code: ErrorCode, frame_type: u8, id: &str, text: &str) {
        self.queue(&Frame::Error(ErrorFrame {
            code,
            frame_type,
            id: id.to_owned(),
            message: truncate(text, MAX_ERROR_TEXT_LEN).to_owned(),
        }));
    }

    /// The peer broke the protocol: answer with an `ERROR` (never to an `ERROR`), report,
    /// and close when fatal.
    pub(crate) fn violation(&mut self, error: ProtocolError) {
        if error.frame_type() != FrameType::Error as u8 {
            let text = error.to_string();
            self.send_error(
                error.code(),
                error.frame_type(),
                error.id().unwrap_or(""),
                &text,
            );
        }
        if error.is_fatal() {
            self.state = State::Closed;
            self.ping = None;
            self.events.push_back(Event::Closed(error));
        } else {
            self.events.push_back(Event::ProtocolError(error));
        }
    }

    fn on_hello(&mut self, hello: Hello) {
        if self.state == State::Connected {
            self.violation(ProtocolError::UnexpectedFrame {
                frame_type: FrameType::Hello as u8,
                reason: "second HELLO",
            });
            return;
        }
        if hello.role != self.role.peer() {
            self.violation(ProtocolError::WrongRole {
                found: hello.role.code(),
            });
            return;
        }
        let info = PeerInfo {
            version: hello.max_version.min(VERSION),
            device_name: hello.device_name,
            capabilities: hello.capabilities,
            codecs: hello.codecs,
            max_message_size: hello.max_message_size.min(MAX_MESSAGE_SIZE),
        };
        self.state = State::Connected;
        self.peer = Some(info.clone());
        self.events.push_back(Event::Connected(info));
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
