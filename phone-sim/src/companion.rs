//! The phone's side of the companion protocol over a byte stream: a messaging app stand-in
//! that sends voice and text messages to codriverd and receives acks and listened receipts.
//!
//! [`CompanionPhone`] drives a sans-IO [`PhoneSession`] over any `AsyncRead + AsyncWrite`
//! stream (the daemon's development TCP transport in tests and `--simulate`). It is the
//! only code touching its stream; [`CompanionPhone::next_event`] pumps bytes both ways until
//! the session reports something.

use std::collections::VecDeque;
use std::time::Duration;

use codriver_companion::{Codec, Event, PhoneSession, SessionConfig, TextMessage, VoiceMessage};
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
        }
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

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
