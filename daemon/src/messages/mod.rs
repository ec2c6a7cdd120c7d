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
//!   or the voice assistant holds the speakers: it waits for them to end. When playback
//!   starts the message moves to the listened ones and a listened receipt goes to the phone
//!   (now, or when it next connects). The driver can stop, skip, replay and play the next
//!   one ([`MessageAction`], from buttons and D-Bus).
//! * **voice replies** (here and [`outbox`]): `record-reply` after a message plays a start
//!   tone, records from the microphone at 16 kHz and stops on the gesture again, on silence
//!   ([`vad`]: 1.5 s after speech; the pause is cut to [`TRAILING_SILENCE`]), at
//!   `max_reply`, or when the input ends; the reply is encoded as Ogg Opus while recording,
//!   stored durably in the outbox, and the links offer it to the phone for the conversation
//!   of the message answered, on every link until the phone sends `REPLY_ACK` (confirmation
//!   tone) or refuses it for good (error tone).
//!
//! Codecs: Opus (`ogg-opus`, `opus-packets`) is decoded through libopus
//! (`codriver_companion::audio`) to [`PLAYBACK_FORMAT`]; [`PCM_S16LE_16K`] (development) plays
//! as it is. A message that does not decode gets the arrival chime, then is skipped.

pub mod link;
pub mod outbox;
pub mod spool;
pub mod vad;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use codriver_companion::audio::OggOpusEncoder;
use codriver_companion::{Codec, VoiceReply};
use codriver_config::MessagesConfig;
use codriver_hal::{AudioInput, ByteStream, Focus, PcmFormat};
use tokio::net::TcpListener;
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::audio::AudioRouter;
use crate::events::{DaemonEvent, MessageAction, Reply, publish};
use crate::tones::Chime;

use self::spool::{Entry, Kind, Limits, SpoolError, SpoolHandle};

/// Raw PCM, signed 16-bit little-endian, 16 kHz mono: a codriver development codec in the
/// protocol's private range (`0x80`), for development and tests.
pub const PCM_S16LE_16K: Codec = Codec::Other(0x80);

/// Voice messages play as 16 kHz mono, whatever their codec: they are speech, and a minute
/// of it decodes to under 2 MB (the Pi's memory budget is tight).
pub const PLAYBACK_FORMAT: PcmFormat = PcmFormat::WIDEBAND;

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

/// Replies are recorded at 16 kHz mono: wide-band speech, what voice notes carry.
pub const RECORD_FORMAT: PcmFormat = PcmFormat::WIDEBAND;

/// After a message ends, the controls stay in the `playing` context this long, so the
/// driver can still reply to it (long press) or replay it without a gesture of its own.
pub const REPLY_WINDOW: Duration = Duration::from_secs(10);

/// Silence kept at the end of a reply that voice activity detection ended (the rest of the
/// 1.5 s pause that ended it is cut).
pub const TRAILING_SILENCE: Duration = Duration::from_millis(300);

/// Driver actions waiting for the player.
const COMMAND_CAPACITY: usize = 8;

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
    /// Bumped whenever a reply is stored in the outbox, so idle links offer it.
    pub(crate) outbox: watch::Sender<u64>,
}

/// One stored message, as the D-Bus message objects show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSummary {
    /// The phone's id for it.
    pub id: String,
    /// `voice` or `text`.
    pub kind: &'static str,
    /// The sender's display name ("" when the phone gave none).
    pub from: String,
    /// The conversation's name, else its id.
    pub conversation: String,
    /// Voice messages: the length the phone announced, in ms; 0 for text.
    pub duration_ms: u32,
    /// When the car received it, ms since the Unix epoch.
    pub received_ms: u64,
    /// Played (or being played) at least once.
    pub listened: bool,
}

impl MessageSummary {
    fn of(entry: &Entry) -> Self {
        let m = &entry.meta;
        MessageSummary {
            id: m.id.clone(),
            kind: match m.kind {
                Kind::Voice => "voice",
                Kind::Text => "text",
            },
            from: m.sender_name.clone(),
            conversation: if m.conversation_name.is_empty() {
                m.conversation_id.clone()
            } else {
                m.conversation_name.clone()
            },
            duration_ms: m.duration_ms,
            received_ms: m.received_ms,
            listened: entry.listened,
        }
    }
}

/// What the messages service is doing, for the controls' contexts and the D-Bus objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessagesStatus {
    /// Every message in the spool, oldest first (bounded by the retention limits).
    pub messages: Vec<MessageSummary>,
    /// Unplayed messages in the spool.
    pub waiting: usize,
    /// The message playing now.
    pub playing: Option<String>,
    /// A reply is being recorded.
    pub recording: bool,
    /// Until when the message just played can be replied to or replayed in the `playing`
    /// context ([`REPLY_WINDOW`] after it ended).
    pub reply_window_until: Option<Instant>,
}

impl MessagesStatus {
    /// Playing now, or within the reply window after a message (at `now`).
    pub fn in_playing_context(&self, now: Instant) -> bool {
        self.playing.is_some() || self.reply_window_until.is_some_and(|t| now < t)
    }
}

/// Sends driver actions to the messages service and shows its status.
#[derive(Debug, Clone)]
pub struct MessagesControl {
    commands: mpsc::Sender<(MessageAction, Reply)>,
    status: watch::Receiver<MessagesStatus>,
}

impl MessagesControl {
    /// Hands `action` to the player; its outcome goes to `reply`.
    pub fn send(&self, action: MessageAction, reply: Reply) {
        match self.commands.try_send((action, reply)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full((_, reply))) => {
                reply.send(Err("the player is busy; try again".to_owned()));
            }
            Err(mpsc::error::TrySendError::Closed((_, reply))) => {
                reply.send(Err("voice messages have stopped".to_owned()));
            }
        }
    }

    /// What the service is doing now.
    pub fn status(&self) -> MessagesStatus {
        self.status.borrow().clone()
    }

    /// Follows the status as it changes (the D-Bus message objects).
    pub fn watch(&self) -> watch::Receiver<MessagesStatus> {
        self.status.clone()
    }
}

/// The running messages service; dropping it stops its tasks.
#[derive(Debug)]
pub struct Messages {
    tasks: Vec<JoinHandle<()>>,
    /// The companion TCP transport's bound address, when enabled.
    pub tcp_addr: Option<std::net::SocketAddr>,
    /// Where Bluetooth companion connections come in.
    incoming: mpsc::Sender<CompanionConnection>,
    /// Playback and reply actions.
    pub control: MessagesControl,
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
    /// the spool are played, replies in the outbox are offered. Bluetooth connections come
    /// in through [`connections`](Self::connections). Replies are recorded from `input`.
    pub async fn start(
        config: &MessagesConfig,
        audio: AudioRouter,
        input: Arc<dyn AudioInput>,
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
            outbox: watch::channel(0).0,
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
        let (commands_tx, commands) = mpsc::channel(COMMAND_CAPACITY);
        let (status_tx, status) = watch::channel(MessagesStatus::default());
        let player = Player {
            speech: Speech {
                shared: shared.clone(),
                announce: config.announce,
                tts_command: config.tts_command.clone(),
            },
            input,
            max_reply: config.max_reply,
            skipped: HashSet::new(),
            autoplay: true,
            last: None,
            job: None,
            window_until: None,
            commands,
            status: status_tx,
        };
        tasks.push(tokio::spawn(player.run()));
        let control = MessagesControl {
            commands: commands_tx,
            status,
        };
        Ok(Messages {
            tasks,
            tcp_addr,
            incoming,
            control,
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

/// Plays stored messages one after another, oldest first, and records replies: an actor
/// whose long work (a message playing, a reply recording) runs as a job it can cut short,
/// so driver actions are answered at once.
struct Player {
    speech: Speech,
    input: Arc<dyn AudioInput>,
    max_reply: Duration,
    /// Messages that cannot be played in this run (unreadable, undecodable).
    skipped: HashSet<String>,
    /// Play unplayed messages by themselves; off after `stop` until `play-next` or a new
    /// message.
    autoplay: bool,
    /// The message last played (or playing): the one `replay` and `record-reply` act on.
    last: Option<Entry>,
    job: Option<Job>,
    /// The end of the reply window after the last message.
    window_until: Option<Instant>,
    commands: mpsc::Receiver<(MessageAction, Reply)>,
    status: watch::Sender<MessagesStatus>,
}

/// What the player is busy with.
struct Job {
    task: JoinHandle<JobOutcome>,
    kind: JobKind,
}

enum JobKind {
    Playing(String),
    /// Recording; sending on `stop` finishes the recording and keeps it.
    Recording {
        stop: Option<oneshot::Sender<()>>,
    },
}

enum JobOutcome {
    Played,
    /// The message cannot be played in this run.
    Unplayable(String),
    /// The recording ended: stored, or discarded (the driver heard which).
    RecordingEnded,
}

impl Player {
    async fn run(mut self) {
        let arrived = self.speech.shared.arrived.clone();
        loop {
            let (next, waiting, messages) = self.next_message().await;
            if self.job.is_none()
                && self.autoplay
                && let Some(entry) = next
            {
                self.start_playing(entry, false);
            }
            self.publish_status(waiting, messages);
            let job = async {
                match &mut self.job {
                    Some(job) => (&mut job.task).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                done = job => self.job_done(done),
                Some((action, reply)) = self.commands.recv() => {
                    let outcome = self.on_action(action, waiting).await;
                    reply.send(outcome);
                }
                () = arrived.notified() => self.autoplay = true,
            }
        }
    }

    /// The oldest unplayed message, how many wait, and every stored message oldest first.
    async fn next_message(&self) -> (Option<Entry>, usize, Vec<MessageSummary>) {
        let skipped = self.skipped.clone();
        let found = self
            .speech
            .shared
            .spool
            .with(move |s| {
                let waiting: Vec<&Entry> = s
                    .entries()
                    .filter(|e| !e.listened && !skipped.contains(&e.meta.id))
                    .collect();
                let next = waiting
                    .iter()
                    .min_by_key(|e| (e.meta.received_ms, e.meta.id.clone()))
                    .map(|e| (*e).clone());
                let mut all: Vec<MessageSummary> = s.entries().map(MessageSummary::of).collect();
                all.sort_by(|a, b| (a.received_ms, &a.id).cmp(&(b.received_ms, &b.id)));
                Ok((next, waiting.len(), all))
            })
            .await;
        found.unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the spool");
            (None, 0, Vec::new())
        })
    }

    fn publish_status(&self, waiting: usize, messages: Vec<MessageSummary>) {
        let status = MessagesStatus {
            messages,
            waiting,
            playing: match &self.job {
                Some(Job {
                    kind: JobKind::Playing(id),
                    ..
                }) => Some(id.clone()),
                _ => None,
            },
            recording: matches!(
                self.job,
                Some(Job {
                    kind: JobKind::Recording { .. },
                    ..
                })
            ),
            reply_window_until: self.window_until,
        };
        self.status.send_if_modified(|s| {
            let changed = *s != status;
            *s = status;
            changed
        });
    }

    /// The job ended: forget it and learn from its outcome.
    fn job_done(&mut self, done: Result<JobOutcome, tokio::task::JoinError>) {
        self.job = None;
        match done {
            Ok(JobOutcome::Unplayable(id)) => {
                self.skipped.insert(id);
            }
            Ok(JobOutcome::Played) => {
                self.window_until = Some(Instant::now() + REPLY_WINDOW);
            }
            Ok(JobOutcome::RecordingEnded) => {}
            Err(e) if e.is_cancelled() => {}
            Err(e) => tracing::error!(error = %e, "a message job failed"),
        }
    }

    fn start_playing(&mut self, entry: Entry, replay: bool) {
        let id = entry.meta.id.clone();
        self.last = Some(entry.clone());
        self.window_until = None;
        let speech = self.speech.clone();
        self.job = Some(Job {
            task: tokio::spawn(speech.play(entry, replay)),
            kind: JobKind::Playing(id),
        });
    }

    /// Cuts the message playing short; returns its id.
    fn stop_playing(&mut self) -> Option<String> {
        let Some(Job {
            kind: JobKind::Playing(_),
            ..
        }) = &self.job
        else {
            return None;
        };
        let job = self.job.take()?;
        job.task.abort();
        let JobKind::Playing(id) = job.kind else {
            return None;
        };
        publish(
            &self.speech.shared.events,
            DaemonEvent::PlaybackStopped { id: id.clone() },
        );
        Some(id)
    }

    fn recording(&mut self) -> Option<&mut Option<oneshot::Sender<()>>> {
        match &mut self.job {
            Some(Job {
                kind: JobKind::Recording { stop },
                ..
            }) => Some(stop),
            _ => None,
        }
    }

    async fn on_action(&mut self, action: MessageAction, waiting: usize) -> Result<(), String> {
        tracing::info!(action = action.as_str(), "messages action");
        // A job that ended while the action was on its way: account for it first.
        if let Some(job) = self.job.as_mut()
            && job.task.is_finished()
        {
            let done = (&mut job.task).await;
            self.job_done(done);
        }
        let in_window = self.window_until.is_some_and(|t| Instant::now() < t);
        match action {
            MessageAction::PlayNext => {
                if self.recording().is_some() {
                    return Err("a reply is being recorded".to_owned());
                }
                if waiting == 0 {
                    return Err("no message is waiting".to_owned());
                }
                self.stop_playing();
                self.autoplay = true;
                Ok(())
            }
            MessageAction::Skip => {
                self.stop_playing()
                    .ok_or_else(|| "no message is playing".to_owned())?;
                self.autoplay = true;
                Ok(())
            }
            MessageAction::Stop => {
                self.autoplay = false;
                if self.stop_playing().is_some() || in_window {
                    self.window_until = None;
                    Ok(())
                } else {
                    Err("no message is playing".to_owned())
                }
            }
            MessageAction::Play(id) => {
                if self.recording().is_some() {
                    return Err("a reply is being recorded".to_owned());
                }
                let wanted = id.clone();
                let entry = self
                    .speech
                    .shared
                    .spool
                    .with(move |s| Ok(s.entries().find(|e| e.meta.id == wanted).cloned()))
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("no message {id}"))?;
                self.stop_playing();
                self.autoplay = true;
                let replay = entry.listened;
                self.start_playing(entry, replay);
                Ok(())
            }
            MessageAction::Replay => {
                if self.recording().is_some() {
                    return Err("a reply is being recorded".to_owned());
                }
                let entry = self
                    .last
                    .clone()
                    .ok_or_else(|| "no message was played yet".to_owned())?;
                self.stop_playing();
                // Replaying is listening: the queue may go on afterwards.
                self.autoplay = true;
                self.start_playing(entry, true);
                Ok(())
            }
            MessageAction::RecordReply | MessageAction::SendReply => {
                if let Some(stop) = self.recording() {
                    if let Some(stop) = stop.take() {
                        let _ = stop.send(());
                    }
                    return Ok(());
                }
                if action == MessageAction::SendReply {
                    return Err("no reply is being recorded".to_owned());
                }
                let target = self
                    .last
                    .clone()
                    .ok_or_else(|| "no message to reply to".to_owned())?;
                if target.meta.conversation_id.is_empty() {
                    return Err("the message has no conversation to reply to".to_owned());
                }
                self.stop_playing();
                self.window_until = None;
                // The queue waits while recording and goes on after.
                self.autoplay = true;
                let (stop, stopped) = oneshot::channel();
                let recorder = Recorder {
                    shared: self.speech.shared.clone(),
                    input: self.input.clone(),
                    max: self.max_reply,
                };
                self.job = Some(Job {
                    task: tokio::spawn(recorder.record(target, stopped)),
                    kind: JobKind::Recording { stop: Some(stop) },
                });
                Ok(())
            }
            MessageAction::CancelReply => {
                if self.recording().is_none() {
                    return Err("no reply is being recorded".to_owned());
                }
                if let Some(job) = self.job.take() {
                    job.task.abort();
                }
                publish(
                    &self.speech.shared.events,
                    DaemonEvent::ReplyDiscarded {
                        reason: "cancelled".to_owned(),
                    },
                );
                self.speech.shared.audio.chime(Chime::RecordStop);
                Ok(())
            }
        }
    }
}

/// Announces and plays messages.
#[derive(Clone)]
struct Speech {
    shared: Shared,
    announce: bool,
    tts_command: String,
}

impl Speech {
    /// Plays one message: chime, announcement, the audio (or the text read aloud). The first
    /// time (`replay` false) it moves to the listened ones and a receipt goes to the phone
    /// as it starts.
    async fn play(self, entry: Entry, replay: bool) -> JobOutcome {
        let id = entry.meta.id.clone();
        let audio = self.shared.audio.clone();
        // Never over a call or the voice assistant: wait for them to end.
        audio.wait_until_free(Focus::VoiceMessage).await;
        if !replay {
            let _ = audio
                .play(
                    Focus::Chime,
                    Chime::Message.label(),
                    PcmFormat::PROMPT,
                    &Chime::Message.render(),
                )
                .await;
        }
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
                return JobOutcome::Unplayable(id);
            }
        };
        let (announcement, samples) = match entry.meta.kind {
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
                let codec = entry.meta.codec();
                match decode(codec, body).await {
                    Ok(samples) => (text, Some(samples)),
                    Err(e) => {
                        tracing::warn!(id, %codec, error = %e, "cannot decode the message; skipping it");
                        return JobOutcome::Unplayable(id);
                    }
                }
            }
        };
        audio.wait_until_free(Focus::VoiceMessage).await;
        if !replay {
            // Listened from the moment it starts: a crash mid-playback must not play it
            // again by itself after the restart (at most once; the driver can replay it).
            let marked = {
                let id = id.clone();
                self.shared.spool.with(move |s| s.mark_listened(&id)).await
            };
            if let Err(e) = marked {
                tracing::error!(id, error = %e, "cannot mark a message listened; skipping it");
                return JobOutcome::Unplayable(id);
            }
            publish(
                &self.shared.events,
                DaemonEvent::MessagePlayed { id: id.clone() },
            );
            let _ = self.shared.receipts.send(id.clone());
        }
        if self.announce || entry.meta.kind == Kind::Text {
            self.speak(&announcement).await;
        }
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
        JobOutcome::Played
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

/// Records one voice reply.
struct Recorder {
    shared: Shared,
    input: Arc<dyn AudioInput>,
    max: Duration,
}

impl Recorder {
    /// Start tone, then the microphone until the gesture (`stop`), silence, the maximum or
    /// the end of the input; encodes while recording; stores the reply in the outbox.
    async fn record(self, target: Entry, mut stop: oneshot::Receiver<()>) -> JobOutcome {
        let audio = self.shared.audio.clone();
        audio.wait_until_free(Focus::VoiceMessage).await;
        let _ = audio
            .play(
                Focus::Chime,
                Chime::RecordStart.label(),
                PcmFormat::PROMPT,
                &Chime::RecordStart.render(),
            )
            .await;
        publish(
            &self.shared.events,
            DaemonEvent::RecordingStarted {
                in_reply_to: target.meta.id.clone(),
            },
        );
        let recorded = self.capture(&mut stop).await;
        let (encoder, stopped_by, heard) = match recorded {
            Ok(r) => r,
            Err(reason) => return self.discard(reason),
        };
        if !heard {
            return self.discard("no speech".to_owned());
        }
        audio.chime(Chime::RecordStop);
        let duration = encoder.duration();
        let data = match tokio::task::spawn_blocking(move || encoder.finish()).await {
            Ok(Ok(data)) => data,
            Ok(Err(e)) => return self.discard(e.to_string()),
            Err(e) => return self.discard(e.to_string()),
        };
        let now = spool::unix_ms();
        let reply = VoiceReply {
            id: format!("reply-{now}"),
            conversation_id: target.meta.conversation_id.clone(),
            in_reply_to: target.meta.id.clone(),
            codec: Codec::OggOpus,
            duration_ms: u32::try_from(duration.as_millis()).unwrap_or(u32::MAX),
            timestamp_ms: now,
            size: 0,
        };
        let id = reply.id.clone();
        let duration_ms = reply.duration_ms;
        if let Err(e) = self
            .shared
            .spool
            .with(move |s| s.outbox().store(reply, &data))
            .await
        {
            return self.discard(format!("cannot store the reply: {e}"));
        }
        publish(
            &self.shared.events,
            DaemonEvent::ReplyRecorded {
                id,
                duration_ms,
                stopped_by,
            },
        );
        self.shared.outbox.send_modify(|n| *n += 1);
        JobOutcome::RecordingEnded
    }

    /// Reads the microphone in 20 ms frames; returns the encoder, what stopped it, and
    /// whether speech was heard.
    async fn capture(
        &self,
        stop: &mut oneshot::Receiver<()>,
    ) -> Result<(OggOpusEncoder, &'static str, bool), String> {
        let rate = RECORD_FORMAT.sample_rate;
        let mut source = self
            .input
            .open(RECORD_FORMAT)
            .await
            .map_err(|e| format!("microphone: {e}"))?;
        let serial = spool::unix_ms() as u32;
        let mut encoder = OggOpusEncoder::new(rate, serial).map_err(|e| e.to_string())?;
        let mut vad = vad::Vad::new(rate);
        let max = self.max.as_millis() as u64 * u64::from(rate) / 1000;
        let mut taken = 0u64;
        let mut buf = vec![0i16; (rate / 50) as usize];
        // Audio since the last loud frame, encoded once speech resumes (or at the end).
        let mut quiet: Vec<i16> = Vec::new();
        let tail = (TRAILING_SILENCE.as_millis() as u64 * u64::from(rate) / 1000) as usize;
        let stopped_by = loop {
            if taken >= max {
                break "max-length";
            }
            let room = usize::try_from(max - taken).unwrap_or(usize::MAX);
            let want = buf.len().min(room);
            let n = tokio::select! {
                biased;
                _ = &mut *stop => break "gesture",
                // Never record over a call or the voice assistant: the microphone is theirs.
                () = self.shared.audio.wait_until_above(Focus::VoiceMessage) => {
                    return Err("a call started".to_owned());
                }
                read = source.read(&mut buf[..want]) => read.map_err(|e| format!("microphone: {e}"))?,
            };
            if n == 0 {
                break "end-of-input";
            }
            taken += n as u64;
            let frame = &buf[..n];
            let verdict = vad.push(frame);
            if vad.last_frame_loud() {
                encoder.push(&quiet).map_err(|e| e.to_string())?;
                quiet.clear();
                encoder.push(frame).map_err(|e| e.to_string())?;
            } else {
                quiet.extend_from_slice(frame);
            }
            match verdict {
                vad::Verdict::Continue => {}
                vad::Verdict::Finished => {
                    // The pause that ended it is not part of the reply: keep a short tail.
                    quiet.truncate(tail);
                    break "silence";
                }
                vad::Verdict::NoSpeech => break "silence",
            }
        };
        encoder.push(&quiet).map_err(|e| e.to_string())?;
        Ok((encoder, stopped_by, vad.heard_speech()))
    }

    fn discard(&self, reason: String) -> JobOutcome {
        tracing::info!(reason, "reply discarded");
        publish(&self.shared.events, DaemonEvent::ReplyDiscarded { reason });
        self.shared.audio.chime(Chime::Error);
        JobOutcome::RecordingEnded
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
