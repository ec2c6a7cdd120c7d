//! The two halves of a chunked transfer, shared by both sessions: [`Outgoing`] (our offer and
//! its audio) and [`Incoming`] (offers from the peer, their progress, and acked ids).

use std::collections::VecDeque;

use crate::error::{Error, ProtocolError};
use crate::frame::{self, Chunk, MAX_PAYLOAD_LEN, TextMessage, VoiceMessage, VoiceReply};

/// Metadata of an offer: what the transfer machinery needs from it.
pub(crate) trait Offer: Clone {
    fn id(&self) -> &str;
    fn size(&self) -> u32;
}

impl Offer for VoiceMessage {
    fn id(&self) -> &str {
        &self.id
    }
    fn size(&self) -> u32 {
        self.size
    }
}

impl Offer for VoiceReply {
    fn id(&self) -> &str {
        &self.id
    }
    fn size(&self) -> u32 {
        self.size
    }
}

impl Offer for TextMessage {
    fn id(&self) -> &str {
        &self.id
    }
    fn size(&self) -> u32 {
        0
    }
}

/// Our offer: the audio, and how far the peer has taken it.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) id: String,
    data: Vec<u8>,
    /// `None` until the peer accepts; then the next byte to send.
    next: Option<usize>,
    /// Data bytes per chunk, already clamped to what one frame holds.
    chunk_size: usize,
}

impl Outgoing {
    pub(crate) fn new(id: String, data: Vec<u8>, chunk_size: usize) -> Self {
        let chunk_size = chunk_size.clamp(1, MAX_PAYLOAD_LEN - frame::chunk_overhead(id.len()));
        Self {
            id,
            data,
            next: None,
            chunk_size,
        }
    }

    /// The peer accepts from `offset` (a re-accept restarts from there).
    pub(crate) fn accept(&mut self, offset: u32) -> Result<(), ProtocolError> {
        let at = usize::try_from(offset).unwrap_or(usize::MAX);
        if at > self.data.len() {
            return Err(ProtocolError::BadOffset {
                id: self.id.clone(),
                expected: u32::try_from(self.data.len()).unwrap_or(u32::MAX),
                found: offset,
            });
        }
        self.next = Some(at);
        Ok(())
    }

    pub(crate) fn is_offered(&self) -> bool {
        self.next.is_none()
    }

    /// The next `CHUNK` frame, built only when asked so at most one is in memory.
    pub(crate) fn next_chunk(&mut self) -> Option<Vec<u8>> {
        let at = self.next?;
        if at >= self.data.len() {
            return None;
        }
        let end = (at + self.chunk_size).min(self.data.len());
        let mut out = Vec::with_capacity(frame::HEADER_LEN + 5 + self.id.len() + end - at);
        // Offsets fit in u32: sizes are checked against MAX_MESSAGE_SIZE when offering.
        let offset = u32::try_from(at).unwrap_or(u32::MAX);
        frame::encode_chunk(&mut out, &self.id, offset, &self.data[at..end]).ok()?;
        self.next = Some(end);
        Some(out)
    }
}

/// What became of an offer from the peer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Offered {
    /// New (or restarted): report it and wait for the application's answer.
    Started,
    /// Acked earlier on this link: ack again, report the duplicate.
    Duplicate,
    /// Too many pending.
    Busy,
}

/// Offers from the peer on this link.
#[derive(Debug)]
pub(crate) struct Incoming<M> {
    transfers: Vec<Transfer<M>>,
    /// Ids acked on this link, newest last, so a re-offer is acked again without the app.
    acked: VecDeque<String>,
    max_active: usize,
    max_pending: usize,
    max_acked: usize,
}

#[derive(Debug)]
struct Transfer<M> {
    meta: M,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the application to accept, ack or reject.
    Offered,
    /// Accepted; the next byte expected.
    Receiving(u32),
    /// Every byte arrived (or none needed); waiting for the application's ack.
    Complete,
}

impl<M: Offer> Incoming<M> {
    pub(crate) fn new(max_active: usize, max_pending: usize, max_acked: usize) -> Self {
        Self {
            transfers: Vec::new(),
            acked: VecDeque::new(),
            max_active: max_active.max(1),
            max_pending: max_pending.max(1),
            max_acked,
        }
    }

    pub(crate) fn was_acked(&self, id: &str) -> bool {
        self.acked.iter().any(|a| a == id)
    }

    pub(crate) fn is_pending(&self, id: &str) -> bool {
        self.transfers.iter().any(|t| t.meta.id() == id)
    }

    /// Registers an offer. A re-offer of a pending id replaces it (the peer restarts it).
    pub(crate) fn offer(&mut self, meta: M) -> Offered {
        if self.was_acked(meta.id()) {
            return Offered::Duplicate;
        }
        self.transfers.retain(|t| t.meta.id() != meta.id());
        let active = self
            .transfers
            .iter()
            .filter(|t| t.state != State::Complete)
            .count();
        if active >= self.max_active || self.transfers.len() >= self.max_pending {
            return Offered::Busy;
        }
        self.transfers.push(Transfer {
            meta,
            state: State::Offered,
        });
        Offered::Started
    }

    /// The application accepts from `offset`; returns the metadata when nothing is left to
    /// receive (`offset` is the size).
    pub(crate) fn accept(&mut self, id: &str, offset: u32) -> Result<Option<M>, Error> {
        let t = self.find(id)?;
        if t.state != State::Offered {
            return Err(Error::InvalidState {
                id: id.to_owned(),
                reason: "already accepted",
            });
        }
        if offset > t.meta.size() {
            return Err(Error::InvalidValue {
                field: "offset",
                reason: "beyond the message size",
            });
        }
        if offset == t.meta.size() {
            t.state = State::Complete;
            return Ok(Some(t.meta.clone()));
        }
        t.state = State::Receiving(offset);
        Ok(None)
    }

    /// A chunk from the peer; returns the metadata when it completes the transfer.
    pub(crate) fn chunk(&mut self, chunk: &Chunk) -> Result<Option<M>, ProtocolError> {
        let Some(t) = self.transfers.iter_mut().find(|t| t.meta.id() == chunk.id) else {
            return Err(ProtocolError::UnknownMessage {
                id: chunk.id.clone(),
            });
        };
        let next = match t.state {
            State::Receiving(next) => next,
            State::Offered => {
                return Err(ProtocolError::UnexpectedFrame {
                    frame_type: frame::FrameType::Chunk as u8,
                    reason: "chunk before the transfer was accepted",
                });
            }
            State::Complete => t.meta.size(),
        };
        let len = u32::try_from(chunk.data.len()).unwrap_or(u32::MAX);
        let end = chunk.offset.saturating_add(len);
        if chunk.offset != next || end > t.meta.size() {
            return Err(ProtocolError::BadOffset {
                id: chunk.id.clone(),
                expected: next,
                found: if chunk.offset != next {
                    chunk.offset
                } else {
                    end
                },
            });
        }
        if end == t.meta.size() {
            t.state = State::Complete;
            return Ok(Some(t.meta.clone()));
        }
        t.state = State::Receiving(end);
        Ok(None)
    }

    /// The application acks: allowed once complete, or while merely offered (it already
    /// holds the message). Acking an id acked before is allowed (the ack is resent).
    pub(crate) fn ack(&mut self, id: &str) -> Result<(), Error> {
        if self.was_acked(id) && !self.is_pending(id) {
            return Ok(());
        }
        let t = self.find(id)?;
        if let State::Receiving(_) = t.state {
            return Err(Error::InvalidState {
                id: id.to_owned(),
                reason: "transfer incomplete",
            });
        }
        self.remove(id);
        self.remember(id);
        Ok(())
    }

    /// The application refuses: forget the transfer in any state.
    pub(crate) fn reject(&mut self, id: &str) -> Result<(), Error> {
        self.find(id)?;
        self.remove(id);
        Ok(())
    }

    /// Remembers an acked id (bounded; the oldest is forgotten).
    pub(crate) fn remember(&mut self, id: &str) {
        if self.max_acked == 0 || self.was_acked(id) {
            return;
        }
        if self.acked.len() >= self.max_acked {
            self.acked.pop_front();
        }
        self.acked.push_back(id.to_owned());
    }

    fn find(&mut self, id: &str) -> Result<&mut Transfer<M>, Error> {
        self.transfers
            .iter_mut()
            .find(|t| t.meta.id() == id)
            .ok_or_else(|| Error::UnknownMessage(id.to_owned()))
    }

    fn remove(&mut self, id: &str) {
        self.transfers.retain(|t| t.meta.id() != id);
    }
}
