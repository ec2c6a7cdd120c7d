//! Voice and text messages from the phone's messaging app (the companion protocol).
//!
//! * [`spool`]: the crash-safe on-disk queue; a message is acknowledged to the phone only
//!   once it is durable there.
//! * [`link`]: one driver task per companion connection around the sans-IO
//!   `codriver_companion::CarSession`, over any byte stream (the development TCP transport
//!   today; RFCOMM and LE L2CAP later).
//! * the **player** (here): on arrival a chime and a spoken announcement (`tts_command`, run
//!   as a program; chime only when it is missing), then the message itself through the audio
//!   router with [`Focus::VoiceMessage`], oldest first. A message never starts while a call
//!   or the voice assistant holds the speakers: it waits for them to end. After playback the
//!   message moves to the listened ones and a listened receipt goes to the phone (now, or
//!   when it next connects).
//!
//! Codecs: Opus (`ogg-opus`, `opus-packets`) is decoded through libopus
//! (`codriver_companion::audio`) to [`PLAYBACK_FORMAT`]; [`PCM_S16LE_16K`] (development) plays
//! as it is. A message that does not decode is announced, then skipped.

pub mod link;
pub mod spool;

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Arc;

use codriver_companion::Codec;
use codriver_config::MessagesConfig;
use codriver_hal::{Focus, PcmFormat};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::{Notify, broadcast};
use tokio::task::{JoinHandle, JoinSet};

use crate::audio::AudioRouter;
use crate::events::{DaemonEvent, publish};
use crate::tones::Chime;

use self::spool::{Entry, Kind, Limits, SpoolError, SpoolHandle};

/// Raw PCM, signed 16-bit little-endian, 16 kHz mono: a codriver development codec in the
/// protocol's private range (`0x80`), for development and tests.
pub const PCM_S16LE_16K: Codec = Codec::Other(0x80);

/// Voice messages play as 16 kHz mono, whatever their codec: they are speech, and a minute
/// of it decodes to under 2 MB (the Pi's memory budget is tight).
pub const PLAYBACK_FORMAT: PcmFormat = PcmFormat::WIDEBAND;

/// Largest WAV the announcement program may print (a sentence is ~100 KB).
const MAX_TTS_BYTES: u64 = 4 << 20;

/// Companion connections at once (a phone has one; a reconnect may overlap the old link).
const MAX_LINKS: usize = 4;

/// The longest the announcement program may take.
const TTS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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
}

impl Drop for Messages {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Messages {
    /// Opens the spool, starts the player and the TCP transport; messages already waiting in
    /// the spool are played. Until the Bluetooth transports exist, the TCP transport is the
    /// only way in: without `companion_tcp` nothing starts (`Ok(None)`) and the spool is
    /// not touched.
    pub async fn start(
        config: &MessagesConfig,
        audio: AudioRouter,
        events: broadcast::Sender<DaemonEvent>,
    ) -> Result<Option<Messages>, MessagesError> {
        let Some(addr) = config.companion_tcp else {
            return Ok(None);
        };
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
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MessagesError::Listen { addr, source })?;
        let tcp_addr = listener.local_addr().ok();
        tracing::info!(addr = ?tcp_addr, "companion TCP transport listening");
        tasks.push(tokio::spawn(accept_loop(listener, shared.clone())));
        let player = Player {
            shared: shared.clone(),
            announce: config.announce,
            tts_command: config.tts_command.clone(),
            skipped: HashSet::new(),
        };
        tasks.push(tokio::spawn(player.run()));
        Ok(Some(Messages { tasks, tcp_addr }))
    }
}

/// Accepts companion connections; the link tasks live in a `JoinSet`, so stopping this task
/// (dropping [`Messages`]) stops them too.
async fn accept_loop(listener: TcpListener, shared: Shared) {
    let mut links = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) if links.len() >= MAX_LINKS => {
                    tracing::warn!(%peer, "too many companion connections; refusing one");
                    drop(stream);
                }
                Ok((stream, peer)) => {
                    tracing::info!(%peer, "companion connection");
                    let _ = stream.set_nodelay(true);
                    links.spawn(link::drive(stream, peer.to_string(), shared.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "companion accept failed");
                    // Out of file descriptors and the like: do not spin.
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            Some(_) = links.join_next(), if !links.is_empty() => {}
        }
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
            Some(codec) => match decode(codec, body).await {
                Ok(samples) => Some(samples),
                Err(e) => {
                    tracing::warn!(id, %codec, error = %e, "cannot decode the message; skipping it");
                    self.skipped.insert(id);
                    return;
                }
            },
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
                .play(Focus::VoiceMessage, &label, PLAYBACK_FORMAT, &samples)
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
        match tts(&self.tts_command, text).await {
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

/// Decodes a voice message to [`PLAYBACK_FORMAT`] samples; Opus on the blocking pool (a
/// minute of audio takes some milliseconds of CPU on a Pi).
async fn decode(codec: Codec, body: Vec<u8>) -> Result<Vec<i16>, String> {
    if codec == PCM_S16LE_16K {
        return Ok(body
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect());
    }
    tokio::task::spawn_blocking(move || {
        codriver_companion::audio::decode(codec, &body, PLAYBACK_FORMAT.sample_rate)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Runs the text-to-speech program and reads the WAV it prints.
async fn tts(command: &str, text: &str) -> Result<(PcmFormat, Vec<i16>), String> {
    let mut parts = command.split_whitespace();
    let program = parts.next().ok_or("tts_command is empty")?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(parts);
    // espeak-ng and espeak write WAV to stdout only when asked; other programs get the
    // command line as configured.
    let name = std::path::Path::new(program).file_name();
    if name.is_some_and(|n| n == "espeak-ng" || n == "espeak") && !command.contains("--stdout") {
        cmd.arg("--stdout");
    }
    cmd.arg(text)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    // Dropping `child` (on timeout or error) kills the program.
    let mut child = cmd.spawn().map_err(|e| format!("{program}: {e}"))?;
    let run = async {
        let mut wav = Vec::new();
        if let Some(out) = child.stdout.take() {
            out.take(MAX_TTS_BYTES)
                .read_to_end(&mut wav)
                .await
                .map_err(|e| format!("{program}: {e}"))?;
        }
        if wav.len() as u64 >= MAX_TTS_BYTES {
            return Err(format!("{program} printed more than {MAX_TTS_BYTES} bytes"));
        }
        let status = child.wait().await.map_err(|e| format!("{program}: {e}"))?;
        Ok((wav, status))
    };
    let (wav, status) = tokio::time::timeout(TTS_TIMEOUT, run)
        .await
        .map_err(|_| format!("{program} took longer than {TTS_TIMEOUT:?}"))??;
    if !status.success() {
        return Err(format!("{program} exited with {status}"));
    }
    parse_wav(&wav).ok_or_else(|| format!("{program} printed no 16-bit PCM WAV"))
}

/// Reads a 16-bit PCM WAV leniently: streaming writers (espeak-ng --stdout) leave the RIFF
/// and data sizes unset, so the data runs to the end of the bytes.
fn parse_wav(wav: &[u8]) -> Option<(PcmFormat, Vec<i16>)> {
    if wav.len() < 12 || &wav[0..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        return None;
    }
    let mut pos = 12;
    let mut format = None;
    while pos + 8 <= wav.len() {
        let id = &wav[pos..pos + 4];
        let len = u32::from_le_bytes([wav[pos + 4], wav[pos + 5], wav[pos + 6], wav[pos + 7]]);
        let body = pos + 8;
        if id == b"fmt " && body + 16 <= wav.len() {
            let channels = u16::from_le_bytes([wav[body + 2], wav[body + 3]]);
            let rate =
                u32::from_le_bytes([wav[body + 4], wav[body + 5], wav[body + 6], wav[body + 7]]);
            let bits = u16::from_le_bytes([wav[body + 14], wav[body + 15]]);
            if bits != 16 || channels == 0 || rate == 0 {
                return None;
            }
            format = Some(PcmFormat {
                sample_rate: rate,
                channels,
            });
        } else if id == b"data" {
            let end = body.saturating_add(len as usize).min(wav.len());
            let samples = wav[body..end]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            return Some((format?, samples));
        }
        pos = body.saturating_add(len as usize + (len as usize & 1));
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn streaming_wav_with_unset_sizes_is_read() {
        let mut wav = Vec::new();
        wav.extend_from_slice(b"RIFF\xff\xff\xff\xffWAVEfmt ");
        wav.extend_from_slice(&16u32.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes());
        wav.extend_from_slice(&22_050u32.to_le_bytes());
        wav.extend_from_slice(&44_100u32.to_le_bytes());
        wav.extend_from_slice(&2u16.to_le_bytes());
        wav.extend_from_slice(&16u16.to_le_bytes());
        wav.extend_from_slice(b"data\xff\xff\xff\xff");
        wav.extend_from_slice(&[1, 0, 2, 0, 3]);
        let (f, s) = parse_wav(&wav).unwrap();
        assert_eq!(f.sample_rate, 22_050);
        assert_eq!(s, [1, 2]);
        assert!(parse_wav(b"nonsense").is_none());
    }

    #[tokio::test]
    async fn a_missing_tts_program_is_an_error_not_a_panic() {
        assert!(tts("/nonexistent/espeak-ng", "hello").await.is_err());
    }
}
