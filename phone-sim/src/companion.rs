//! The phone's side of the companion protocol over a byte stream: a messaging app stand-in
//! that sends voice and text messages to codriverd and receives acks and listened receipts.
//!
//! [`CompanionPhone`] drives a sans-IO [`PhoneSession`] over any `AsyncRead + AsyncWrite`
//! stream (the daemon's development TCP transport in tests and `--simulate`). It is the
//! only code touching its stream; [`CompanionPhone::next_event`] pumps bytes both ways until
//! the session reports something.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use codriver_companion::{
    Codec, Event, PhoneSession, SessionConfig, TextMessage, VoiceMessage, VoiceReply,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Raw PCM, s16le, 16 kHz mono: codriver's development codec (`0x80`, private range).
pub const PCM_S16LE_16K: Codec = Codec::Other(0x80);

/// What went wrong on the phone's side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompanionError {
    /// The stream failed.
    #[error("companion link: {0}")]
    Io(#[from] std::io::Error),
    /// The car closed the link.
    #[error("the car closed the companion link")]
    Closed,
    /// The session refused a command.
    #[error("companion session: {0}")]
    Session(#[from] codriver_companion::Error),
    /// The awaited event did not come in time.
    #[error("timed out waiting for {0}")]
    Timeout(String),
}

/// A simulated messaging app connected to the car.
#[derive(Debug)]
pub struct CompanionPhone<S> {
    stream: S,
    session: PhoneSession,
    events: VecDeque<Event>,
    /// Fault injection: bytes of frames still written before the link "breaks" (later
    /// frames are dropped unwritten); `None`: no limit.
    budget: Option<usize>,
    /// Replies being received, by id.
    partial: HashMap<String, (VoiceReply, Vec<u8>)>,
    /// Replies received whole, oldest first.
    replies: Vec<ReceivedReply>,
    /// Acknowledge replies as soon as they are whole (a messaging app that posted them).
    auto_ack: bool,
    /// When the last frame was written (benchmarks: "last chunk sent").
    last_write: Option<tokio::time::Instant>,
}

/// A voice reply the car sent, whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedReply {
    /// The offer's fields.
    pub reply: VoiceReply,
    /// The audio, in `reply.codec`.
    pub data: Vec<u8>,
}

impl CompanionPhone<TcpStream> {
    /// Connects to the car's TCP transport and sends `HELLO`.
    pub async fn connect(addr: std::net::SocketAddr) -> Result<Self, CompanionError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self::new(stream, "Simulated Phone"))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> CompanionPhone<S> {
    /// A phone on `stream`; the session starts (sends `HELLO`) with the first pump.
    pub fn new(stream: S, device_name: &str) -> Self {
        let config = SessionConfig {
            device_name: device_name.to_owned(),
            ..SessionConfig::default()
        };
        let mut session = PhoneSession::new(config);
        session.start(now());
        CompanionPhone {
            stream,
            session,
            events: VecDeque::new(),
            budget: None,
            partial: HashMap::new(),
            replies: Vec::new(),
            auto_ack: true,
            last_write: None,
        }
    }

    /// Whether replies are acknowledged as soon as they are whole (the default). Without,
    /// a test acks with [`ack_reply`](Self::ack_reply), or never (the car keeps offering).
    pub fn auto_ack_replies(&mut self, on: bool) {
        self.auto_ack = on;
    }

    /// Replies received whole on this link, oldest first. Every offer is accepted from 0.
    pub fn replies(&self) -> &[ReceivedReply] {
        &self.replies
    }

    /// When the last frame went out to the car (for latency measurements).
    pub fn last_write(&self) -> Option<tokio::time::Instant> {
        self.last_write
    }

    /// Acknowledges a reply received whole (`REPLY_ACK`).
    pub async fn ack_reply(&mut self, id: &str) -> Result<(), CompanionError> {
        self.session.ack_reply(id)?;
        self.write_pending().await
    }

    /// Waits for the handshake.
    pub async fn handshake(&mut self, within: Duration) -> Result<(), CompanionError> {
        self.wait_for("connected", within, |e| matches!(e, Event::Connected(_)))
            .await
            .map(drop)
    }

    /// Offers a voice message (its `size` is set from `data`); chunks follow the car's
    /// accept. Wait for [`Event::Delivered`] with [`wait_for`](Self::wait_for).
    pub async fn send_voice(
        &mut self,
        message: VoiceMessage,
        data: Vec<u8>,
    ) -> Result<(), CompanionError> {
        self.session.send_voice(message, data)?;
        self.write_pending().await
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, message: TextMessage) -> Result<(), CompanionError> {
        self.session.send_text(message)?;
        self.write_pending().await
    }

    /// Writes raw bytes (malformed frames in tests).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), CompanionError> {
        self.stream.write_all(bytes).await?;
        Ok(self.stream.flush().await?)
    }

    /// Simulates link loss in the middle of a transfer: the session's frames are written
    /// only while they fit in `bytes` more; from the first that does not, every frame is
    /// dropped unwritten (as if the link broke). [`send_raw`](Self::send_raw) still writes.
    pub fn lose_link_after(&mut self, bytes: usize) {
        self.budget = Some(bytes);
    }

    /// The session, for commands not wrapped here.
    pub fn session(&mut self) -> &mut PhoneSession {
        &mut self.session
    }

    /// The next event, pumping the link until one arrives.
    pub async fn next_event(&mut self) -> Result<Event, CompanionError> {
        let mut buf = vec![0u8; 0x4000];
        loop {
            self.write_pending().await?;
            while let Some(e) = self.session.poll_event() {
                self.on_reply_event(&e)?;
                self.events.push_back(e);
            }
            if let Some(e) = self.events.pop_front() {
                return Ok(e);
            }
            let deadline = self
                .session
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                read = self.stream.read(&mut buf) => match read? {
                    0 => return Err(CompanionError::Closed),
                    n => self.session.handle_input(now(), &buf[..n]),
                },
                () = sleep_until(deadline) => self.session.handle_timeout(now()),
            }
        }
    }

    /// Pumps until an event matches `want` (others are dropped), for at most `within`.
    pub async fn wait_for(
        &mut self,
        what: &str,
        within: Duration,
        want: impl Fn(&Event) -> bool,
    ) -> Result<Event, CompanionError> {
        tokio::time::timeout(within, async {
            loop {
                let e = self.next_event().await?;
                tracing::debug!(?e, "companion phone event");
                if want(&e) {
                    return Ok(e);
                }
            }
        })
        .await
        .map_err(|_| CompanionError::Timeout(what.to_owned()))?
    }

    /// The messaging app's side of replies: accept every offer, assemble, ack when whole.
    fn on_reply_event(&mut self, e: &Event) -> Result<(), CompanionError> {
        match e {
            Event::ReplyStarted(r) => {
                self.partial.insert(r.id.clone(), (r.clone(), Vec::new()));
                self.session.accept_reply(&r.id, 0)?;
            }
            Event::ChunkReceived { id, data, .. } => {
                if let Some((_, buf)) = self.partial.get_mut(id) {
                    buf.extend_from_slice(data);
                }
            }
            Event::ReplyComplete(r) => {
                let data = self
                    .partial
                    .remove(&r.id)
                    .map(|(_, d)| d)
                    .unwrap_or_default();
                self.replies.push(ReceivedReply {
                    reply: r.clone(),
                    data,
                });
                if self.auto_ack {
                    self.session.ack_reply(&r.id)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn write_pending(&mut self) -> Result<(), CompanionError> {
        let mut wrote = false;
        while let Some(frame) = self.session.poll_transmit() {
            if let Some(budget) = &mut self.budget {
                if frame.len() > *budget {
                    *budget = 0;
                    continue;
                }
                *budget -= frame.len();
            }
            self.stream.write_all(&frame).await?;
            wrote = true;
        }
        if wrote {
            self.stream.flush().await?;
            self.last_write = Some(tokio::time::Instant::now());
        }
        Ok(())
    }
}

/// A voice message's fields for a fixture: `size` is set when sent.
pub fn voice_message(id: &str, sender_name: &str, duration_ms: u32) -> VoiceMessage {
    VoiceMessage {
        id: id.to_owned(),
        sender_id: format!("{}@sim", sender_name.to_lowercase()),
        sender_name: sender_name.to_owned(),
        conversation_id: "conv-1".to_owned(),
        conversation_name: sender_name.to_owned(),
        codec: PCM_S16LE_16K,
        duration_ms,
        timestamp_ms: 1_700_000_000_000,
        size: 0,
    }
}

/// Fixture audio: `ms` of a soft 440 Hz tone as s16le 16 kHz mono bytes.
pub fn fixture_pcm(ms: u32) -> Vec<u8> {
    let n = 16 * ms as usize;
    let mut out = Vec::with_capacity(n * 2);
    // A triangle wave: no trigonometry needed for a fixture.
    let period = 16_000 / 440;
    for i in 0..n {
        let phase = (i % period) as i32;
        let half = (period / 2) as i32;
        let v = if phase < half {
            phase
        } else {
            2 * half - phase
        };
        let sample = ((v * 2 - half) * 4000 / half.max(1)) as i16;
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

/// The fixture messages' audio rate: 16 kHz mono.
pub const FIXTURE_RATE: u32 = 16_000;

/// Fixture speech: `ms` of a voiced sound (a 140 Hz buzz with falling harmonics, the way a
/// vowel sounds) in syllables of about 200 ms, as 16 kHz mono samples. Loud enough for a
/// voice activity detector, with gaps between syllables shorter than a pause.
pub fn fixture_speech(ms: u32) -> Vec<i16> {
    let n = (FIXTURE_RATE / 1000 * ms) as usize;
    let rate = FIXTURE_RATE as f32;
    (0..n)
        .map(|i| {
            let t = i as f32 / rate;
            let voice: f32 = (1..=6)
                .map(|h| (std::f32::consts::TAU * 140.0 * h as f32 * t).sin() / h as f32)
                .sum();
            // Syllables: 5 per second, never quite silent inside the utterance.
            let syllable = 0.55 + 0.45 * (std::f32::consts::TAU * 2.5 * t).sin().abs();
            (voice * syllable * 5000.0) as i16
        })
        .collect()
}

/// An Ogg Opus voice message of `ms` of [`fixture_speech`], as a messaging app sends it.
pub fn fixture_ogg_opus(ms: u32) -> Vec<u8> {
    // Encoding fixed fixture audio cannot fail; an empty file would fail the test visibly.
    codriver_companion::audio::encode_ogg_opus(&fixture_speech(ms), FIXTURE_RATE, 0x5157)
        .unwrap_or_default()
}

/// An `ogg-opus` voice message with its audio: [`voice_message`] in Ogg Opus.
pub fn opus_voice_message(id: &str, sender_name: &str, ms: u32) -> (VoiceMessage, Vec<u8>) {
    let mut m = voice_message(id, sender_name, ms);
    m.codec = Codec::OggOpus;
    (m, fixture_ogg_opus(ms))
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
