//! Voice and text messages from the phone's messaging app (the companion protocol).
//!
//! * [`spool`]: the crash-safe on-disk queue; a message is acknowledged to the phone only
//!   once it is durable there.
//! * [`link`]: one driver task per companion connection around the sans-IO
//!   `codriver_companion::CarSession`, over any byte stream: RFCOMM and LE L2CAP channels
//!   that the link manager hands over ([`Messages::connections`]) once it has checked the
//!   phone paired through codriver's policy, and the development TCP transport.
//! * the **player** (here): on arrival a chime and a spoken announcement (`tts_command`, run
//!   as a program; chime only when it is missing), then the message itself through the audio
//!   router with [`Focus::VoiceMessage`], oldest first. A message never starts while a call
//!   or the voice assistant holds the speakers: it waits for them to end. After playback the
//!   message moves to the listened ones and a listened receipt goes to the phone (now, or
//!   when it next connects).
//!
//! Codecs: [`PCM_S16LE_16K`] plays; Opus (`ogg-opus`, `opus-packets`) is accepted and stored
//! but not decoded yet (it needs libopus): such a message is announced, then skipped.

pub mod link;
pub mod spool;

use std::collections::HashSet;
use std::sync::Arc;

use codriver_companion::Codec;
use codriver_config::MessagesConfig;
use codriver_hal::{ByteStream, Focus, PcmFormat};
use tokio::net::TcpListener;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::task::{JoinHandle, JoinSet};

use crate::audio::AudioRouter;
use crate::events::{DaemonEvent, publish};
use crate::tones::Chime;

use self::spool::{Entry, Kind, Limits, SpoolError, SpoolHandle};

/// Raw PCM, signed 16-bit little-endian, 16 kHz mono: a codriver development codec in the
/// protocol's private range (`0x80`), used by phone-sim and tests until Opus is decoded.
pub const PCM_S16LE_16K: Codec = Codec::Other(0x80);

/// Companion connections at once (a phone has one; a reconnect may overlap the old link).
const MAX_LINKS: usize = 4;

/// Bluetooth companion connections handed over but not yet picked up by the service; beyond
/// it the link manager closes new ones (see [`Messages::connections`]).
pub const INCOMING_CAPACITY: usize = 4;

/// A companion connection the link manager accepted (RFCOMM or LE L2CAP), for the messages
/// service to drive.
pub struct CompanionConnection {
    /// The connection's byte stream; dropping it closes the connection.
    pub stream: Box<dyn ByteStream>,
    /// Names the peer in logs, e.g. `AA:BB:CC:DD:EE:FF over rfcomm`.
    pub peer: String,
}

impl std::fmt::Debug for CompanionConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompanionConnection")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// Listened receipts waiting for the links; a link that falls behind rescans the spool.
const RECEIPT_CAPACITY: usize = 64;

/// Errors that keep the messages service from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessagesError {
    /// The spool cannot be opened.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The companion TCP listener cannot be bound.
    #[error("companion TCP transport on {addr}: {source}")]
    Listen {
        /// The configured address.
        addr: std::net::SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// What the links and the player share.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) spool: SpoolHandle,
    pub(crate) events: broadcast::Sender<DaemonEvent>,
    /// Wakes the player when a message arrived.
    pub(crate) arrived: Arc<Notify>,
    /// Ids just listened to, for the links to send receipts.
    pub(crate) receipts: broadcast::Sender<String>,
    pub(crate) audio: AudioRouter,
}

/// The running messages service; dropping it stops its tasks.
#[derive(Debug)]
pub struct Messages {
    tasks: Vec<JoinHandle<()>>,
    /// The companion TCP transport's bound address, when enabled.
    pub tcp_addr: Option<std::net::SocketAddr>,
    /// Where Bluetooth companion connections come in.
    incoming: mpsc::Sender<CompanionConnection>,
}

impl Drop for Messages {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Messages {
    /// Opens the spool, starts the player, the companion connection loop and, when
    /// `companion_tcp` is set, the TCP development transport; messages already waiting in
    /// the spool are played. Bluetooth connections come in through
    /// [`connections`](Self::connections).
    pub async fn start(
        config: &MessagesConfig,
        audio: AudioRouter,
        events: broadcast::Sender<DaemonEvent>,
    ) -> Result<Messages, MessagesError> {
        let spool =
            SpoolHandle::open(config.spool_directory.clone(), Limits::from_config(config)).await?;
        let shared = Shared {
            spool,
            events,
            arrived: Arc::new(Notify::new()),
            receipts: broadcast::channel(RECEIPT_CAPACITY).0,
            audio,
        };
        let mut tasks = Vec::new();
        let listener = match config.companion_tcp {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| MessagesError::Listen { addr, source })?,
            ),
            None => None,
        };
        let tcp_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        if let Some(addr) = tcp_addr {
            tracing::info!(%addr, "companion TCP transport listening");
        }
        let (incoming, incoming_rx) = mpsc::channel(INCOMING_CAPACITY);
        tasks.push(tokio::spawn(accept_loop(
            listener,
            incoming_rx,
            shared.clone(),
        )));
        let player = Player {
            shared: shared.clone(),
            announce: config.announce,
            tts_command: config.tts_command.clone(),
            skipped: HashSet::new(),
        };
        tasks.push(tokio::spawn(player.run()));
        Ok(Messages {
            tasks,
            tcp_addr,
            incoming,
        })
    }

    /// Where the link manager hands over companion connections (RFCOMM, LE L2CAP) of phones
    /// it allowed. Bounded ([`INCOMING_CAPACITY`]): use `try_send` and close the connection
    /// when it is full rather than wait.
    pub fn connections(&self) -> mpsc::Sender<CompanionConnection> {
        self.incoming.clone()
    }
}

/// Runs the companion links: connections from the link manager and, when enabled, from the
/// TCP development transport. The link tasks live in a `JoinSet`, so stopping this task
/// (dropping [`Messages`]) stops them too.
async fn accept_loop(
    listener: Option<TcpListener>,
    mut incoming: mpsc::Receiver<CompanionConnection>,
    shared: Shared,
) {
    let mut links = JoinSet::new();
    loop {
        tokio::select! {
            accepted = accept_tcp(listener.as_ref()) => match accepted {
                Ok((stream, peer)) if links.len() >= MAX_LINKS => {
                    tracing::warn!(%peer, "too many companion connections; refusing one");
                    drop(stream);
                }
                Ok((stream, peer)) => {
                    tracing::info!(%peer, "companion connection over TCP");
                    let _ = stream.set_nodelay(true);
                    links.spawn(link::drive(stream, peer.to_string(), shared.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "companion accept failed");
                    // Out of file descriptors and the like: do not spin.
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            Some(connection) = incoming.recv() => {
                let CompanionConnection { stream, peer } = connection;
                if links.len() >= MAX_LINKS {
                    tracing::warn!(peer, "too many companion connections; refusing one");
                } else {
                    tracing::info!(peer, "companion connection");
                    links.spawn(link::drive(stream, peer, shared.clone()));
                }
            }
            Some(_) = links.join_next(), if !links.is_empty() => {}
        }
    }
}

/// The next TCP connection; never resolves without a listener.
async fn accept_tcp(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Plays stored messages one after another, oldest first.
struct Player {
    shared: Shared,
    announce: bool,
    tts_command: String,
    /// Messages that cannot be played in this run (codec not supported yet).
    skipped: HashSet<String>,
}

impl Player {
    async fn run(mut self) {
        loop {
            let skipped = self.skipped.clone();
            let next = self
                .shared
                .spool
                .with(move |s| {
                    Ok(s.entries()
                        .filter(|e| !e.listened && !skipped.contains(&e.meta.id))
                        .min_by_key(|e| (e.meta.received_ms, e.meta.id.clone()))
                        .cloned())
                })
                .await;
            match next {
                Ok(Some(entry)) => self.play(entry).await,
                Ok(None) => self.shared.arrived.notified().await,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the spool; playback waits for the next message");
                    self.shared.arrived.notified().await;
                }
            }
        }
    }

    async fn play(&mut self, entry: Entry) {
        let id = entry.meta.id.clone();
        let audio = self.shared.audio.clone();
        // Never over a call or the voice assistant: wait for them to end.
        audio.wait_until_free(Focus::VoiceMessage).await;
        let _ = audio
            .play(
                Focus::Chime,
                Chime::Message.label(),
                PcmFormat::PROMPT,
                &Chime::Message.render(),
            )
            .await;
        let from = if entry.meta.sender_name.is_empty() {
            "unknown".to_owned()
        } else {
            entry.meta.sender_name.clone()
        };
        let body = {
            let id = id.clone();
            self.shared.spool.with(move |s| s.read_body(&id)).await
        };
        let body = match body {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(id, error = %e, "cannot read a message; skipping it");
                self.skipped.insert(id);
                return;
            }
        };
        let (announcement, pcm) = match entry.meta.kind {
            Kind::Text => (
                format!(
                    "Message from {from}: {}",
                    String::from_utf8_lossy(&body).trim()
                ),
                None,
            ),
            Kind::Voice => {
                let secs = entry.meta.duration_ms.div_ceil(1000);
                let text = format!("Voice message from {from}, {secs} seconds");
                (text, Some(entry.meta.codec()))
            }
        };
        audio.wait_until_free(Focus::VoiceMessage).await;
        if self.announce || entry.meta.kind == Kind::Text {
            self.speak(&announcement).await;
        }
        let samples = match pcm {
            Some(codec) if codec == PCM_S16LE_16K => Some(
                body.chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect::<Vec<i16>>(),
            ),
            Some(codec) => {
                tracing::warn!(id, %codec, "cannot decode this codec yet (Opus needs libopus); skipping the message");
                self.skipped.insert(id);
                return;
            }
            None => None,
        };
        // Listened from the moment it starts: a crash mid-playback must not play it again
        // by itself after the restart (at most once; the driver can replay it).
        let marked = {
            let id = id.clone();
            self.shared.spool.with(move |s| s.mark_listened(&id)).await
        };
        if let Err(e) = marked {
            tracing::error!(id, error = %e, "cannot mark a message listened; skipping it");
            self.skipped.insert(id);
            return;
        }
        publish(
            &self.shared.events,
            DaemonEvent::MessagePlayed { id: id.clone() },
        );
        if let Some(samples) = samples {
            audio.wait_until_free(Focus::VoiceMessage).await;
            let label = format!("message {id}");
            if let Err(e) = audio
                .play(Focus::VoiceMessage, &label, PcmFormat::WIDEBAND, &samples)
                .await
            {
                tracing::warn!(id, error = %e, "message playback failed");
            }
        }
        let _ = self.shared.receipts.send(id);
    }

    /// Speaks `text` through `tts_command` (WAV on stdout), or falls back to nothing more
    /// than the chime already played when the program is missing or fails.
    async fn speak(&self, text: &str) {
        match crate::speech::synthesize(&self.tts_command, text).await {
            Ok((format, samples)) => {
                if let Err(e) = self
                    .shared
                    .audio
                    .play(Focus::VoiceMessage, "announcement", format, &samples)
                    .await
                {
                    tracing::warn!(error = %e, "announcement failed");
                }
            }
            Err(reason) => {
                tracing::info!(reason, "no spoken announcement (chime only)");
            }
        }
    }
}
