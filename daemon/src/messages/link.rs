//! The companion driver: one task per companion connection.
//!
//! The driver is the only code touching its stream. It `select!`s over the stream, the
//! session's deadline and the listened receipts, feeds the sans-IO `CarSession` and drains
//! it (transmissions, timer, events). Chunk data goes to the spool's writer thread without a
//! round trip (the driver waits only while that queue is full: back pressure on the phone)
//! and without an fsync; offers, commits and checkpoints run on the same thread after the
//! chunks queued before them, and are awaited. A message is acknowledged only after the spool
//! committed it (fsync'd and renamed into `new/`). When the link ends mid-transfer, the
//! partial message is checkpointed (fsync'd, its length recorded): that is the offset the next
//! offer resumes from.

use codriver_companion::{CarSession, ErrorCode, Event, SessionConfig, TextMessage, VoiceMessage};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast;
use tokio::sync::watch;

use super::spool::{Lookup, Meta, SpoolError, unix_ms};
use super::{PCM_S16LE_16K, Shared};
use crate::events::{DaemonEvent, publish};
use crate::tones::Chime;

/// Bytes read from the stream at a time; events hold at most this much chunk data (plus one
/// frame the decoder holds): 64 KiB, four default chunks.
const READ_BUFFER: usize = 0x1_0000;

/// The car's companion session settings: every capability, Opus and the development PCM
/// codec.
pub fn session_config() -> SessionConfig {
    let mut config = SessionConfig::default();
    config.codecs.push(PCM_S16LE_16K);
    config
}

/// Drives one companion connection until it closes. `peer` names it in logs.
pub(crate) async fn drive<S>(mut stream: S, peer: String, shared: Shared)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut session = CarSession::new(session_config());
    let mut receipts = shared.receipts.subscribe();
    let mut outbox: watch::Receiver<u64> = shared.outbox.subscribe();
    let mut reply: Option<String> = None;
    // The voice message being received on this link, checkpointed if the link ends.
    let mut receiving: Option<String> = None;
    session.start(now());
    let mut buf = vec![0u8; READ_BUFFER];
    let reason = loop {
        match flush(
            &mut session,
            &mut stream,
            &shared,
            &mut reply,
            &mut receiving,
        )
        .await
        {
            Ok(true) => {}
            Ok(false) => break "protocol session closed".to_owned(),
            Err(e) => break e,
        }
        let deadline = session.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) => break "the phone closed the link".to_owned(),
                Ok(n) => session.handle_input(now(), &buf[..n]),
                Err(e) => break format!("read failed: {e}"),
            },
            () = sleep_until(deadline) => session.handle_timeout(now()),
            id = receipts.recv() => match id {
                Ok(id) => send_listened(&mut session, &shared, &id).await,
                // Fell behind: the spool knows what is still to be told.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    send_pending_receipts(&mut session, &shared).await;
                }
                Err(broadcast::error::RecvError::Closed) => break "shutting down".to_owned(),
            },
            changed = outbox.changed() => match changed {
                Ok(()) => offer_reply(&mut session, &shared, &mut reply).await,
                Err(_) => break "shutting down".to_owned(),
            },
        }
    };
    tracing::info!(peer, reason, "companion link closed");
    if let Some(id) = receiving {
        let owned = id.clone();
        match shared.spool.ordered(move |s| s.checkpoint(&owned)).await {
            Ok(held) => tracing::info!(id, ?held, "partial message kept for resume"),
            Err(e) => tracing::warn!(id, error = %e, "cannot checkpoint a partial message"),
        }
    }
}

/// Writes what the session wants sent, then handles its events; repeats until both are
/// empty (handling an event may queue frames). `Ok(false)`: the session closed.
async fn flush<S>(
    session: &mut CarSession,
    stream: &mut S,
    shared: &Shared,
    reply: &mut Option<String>,
    receiving: &mut Option<String>,
) -> Result<bool, String>
where
    S: AsyncWrite + Unpin,
{
    // An event read ahead while gathering chunks.
    let mut ahead = None;
    loop {
        while let Some(frame) = session.poll_transmit() {
            stream
                .write_all(&frame)
                .await
                .map_err(|e| format!("write failed: {e}"))?;
        }
        let Some(event) = ahead.take().or_else(|| session.poll_event()) else {
            stream
                .flush()
                .await
                .map_err(|e| format!("write failed: {e}"))?;
            return Ok(true);
        };
        if let Event::Closed(e) = &event {
            tracing::warn!(error = %e, "companion session closed");
            while let Some(frame) = session.poll_transmit() {
                let _ = stream.write_all(&frame).await;
            }
            let _ = stream.flush().await;
            return Ok(false);
        }
        // Consecutive chunks of one message (one read holds several) go to the spool's
        // writer as one job: one queue hand-off, one vectored write, no copy.
        if let Event::ChunkReceived { id, offset, data } = event {
            let mut end = u64::from(offset) + data.len() as u64;
            let mut chunks = vec![data];
            loop {
                match session.poll_event() {
                    Some(Event::ChunkReceived {
                        id: next_id,
                        offset: next_offset,
                        data,
                    }) if next_id == id && u64::from(next_offset) == end => {
                        end += data.len() as u64;
                        chunks.push(data);
                    }
                    other => {
                        ahead = other;
                        break;
                    }
                }
            }
            if let Err(e) = shared.spool.append(id.clone(), offset, chunks).await {
                refuse(session, &id, &e);
            }
            continue;
        }
        on_event(session, shared, reply, receiving, event).await;
    }
}

async fn on_event(
    session: &mut CarSession,
    shared: &Shared,
    reply: &mut Option<String>,
    receiving: &mut Option<String>,
    event: Event,
) {
    match event {
        Event::Connected(peer) => {
            tracing::info!(device = peer.device_name, "companion connected");
            publish(
                &shared.events,
                DaemonEvent::CompanionConnected {
                    device_name: peer.device_name,
                },
            );
            send_pending_receipts(session, shared).await;
            offer_reply(session, shared, reply).await;
        }
        Event::ReplyAcked { id } => {
            *reply = None;
            let owned = id.clone();
            if let Err(e) = shared.spool.with(move |s| s.outbox().remove(&owned)).await {
                tracing::error!(id, error = %e, "cannot remove a delivered reply");
            }
            publish(&shared.events, DaemonEvent::ReplyDelivered { id });
            shared.audio.chime(Chime::ReplySent);
            offer_reply(session, shared, reply).await;
        }
        Event::OfferRejected { id, code, message } if reply.as_deref() == Some(id.as_str()) => {
            *reply = None;
            if code == ErrorCode::Busy {
                // Offered again on the next link.
                tracing::info!(id, "the phone is busy; the reply waits for the next link");
                return;
            }
            tracing::warn!(id, ?code, message, "the phone refused the reply");
            let owned = id.clone();
            if let Err(e) = shared.spool.with(move |s| s.outbox().remove(&owned)).await {
                tracing::error!(id, error = %e, "cannot remove a refused reply");
            }
            publish(
                &shared.events,
                DaemonEvent::ReplyFailed {
                    id,
                    reason: format!("{code:?}: {message}"),
                },
            );
            shared.audio.chime(Chime::Error);
            offer_reply(session, shared, reply).await;
        }
        Event::MessageStarted(m) => on_offer(session, shared, receiving, m).await,
        Event::MessageComplete(m) => {
            *receiving = None;
            let id = m.id.clone();
            match shared.spool.ordered(move |s| s.commit(&id)).await {
                Ok(_) => acked(session, shared, &m.id, "voice", &m.sender_name),
                Err(e) => refuse(session, &m.id, &e),
            }
        }
        Event::TextMessage(t) => on_text(session, shared, t).await,
        Event::ProtocolError(e) => tracing::info!(error = %e, "companion peer broke the protocol"),
        Event::PeerError(e) => tracing::info!(?e, "companion peer reported an error"),
        Event::PingTimeout => tracing::info!("companion ping timed out"),
        other => tracing::debug!(?other, "companion event"),
    }
}

/// An offer: ack a message stored complete, otherwise accept from what is held durably.
/// Runs after the chunks already queued (a re-offer on the same link follows them).
async fn on_offer(
    session: &mut CarSession,
    shared: &Shared,
    receiving: &mut Option<String>,
    m: VoiceMessage,
) {
    let meta = Meta::voice(&m);
    let result = shared
        .spool
        .ordered(move |s| match s.lookup(&meta.id) {
            Lookup::Stored { .. } => Ok(None),
            Lookup::Absent => s.begin(&meta).map(Some),
        })
        .await;
    match result {
        Ok(None) => {
            tracing::info!(id = m.id, "duplicate message; acknowledging again");
            log_err(session.ack_delivery(&m.id));
        }
        Ok(Some(offset)) => {
            *receiving = Some(m.id.clone());
            log_err(session.accept(&m.id, offset));
        }
        Err(e) => refuse(session, &m.id, &e),
    }
}

async fn on_text(session: &mut CarSession, shared: &Shared, t: TextMessage) {
    let text = t.clone();
    let result = shared
        .spool
        .with(move |s| match s.lookup(&text.id) {
            Lookup::Stored { .. } => Ok(false),
            Lookup::Absent => s.store_text(&text).map(|_| true),
        })
        .await;
    match result {
        Ok(true) => acked(session, shared, &t.id, "text", &t.sender_name),
        Ok(false) => log_err(session.ack_delivery(&t.id)),
        Err(e) => {
            // A text has no transfer to reject; the phone resends it without an ack.
            tracing::error!(id = t.id, error = %e, "cannot store a text message");
        }
    }
}

/// Acks a message that is now durable and tells the daemon and the player.
fn acked(session: &mut CarSession, shared: &Shared, id: &str, kind: &'static str, from: &str) {
    log_err(session.ack_delivery(id));
    publish(
        &shared.events,
        DaemonEvent::MessageReceived {
            id: id.to_owned(),
            kind,
            from: from.to_owned(),
        },
    );
    shared.arrived.notify_one();
}

fn refuse(session: &mut CarSession, id: &str, e: &SpoolError) {
    tracing::warn!(id, error = %e, "refusing a message");
    let code = match e {
        SpoolError::TooLarge { .. } => ErrorCode::MessageTooLarge,
        SpoolError::BadOffset { .. } => ErrorCode::BadOffset,
        _ => ErrorCode::Internal,
    };
    // The transfer may already be gone from the session (it completed); then there is
    // nothing to reject and the phone, never acked, offers it again.
    let _ = session.reject(id, code, &e.to_string());
}

async fn send_listened(session: &mut CarSession, shared: &Shared, id: &str) {
    if !session.is_connected() {
        return;
    }
    match session.send_listened(id, unix_ms()) {
        Ok(()) => {
            let owned = id.to_owned();
            if let Err(e) = shared.spool.with(move |s| s.mark_receipted(&owned)).await {
                tracing::warn!(id, error = %e, "cannot record the listened receipt");
            }
            publish(
                &shared.events,
                DaemonEvent::ListenedReceiptSent { id: id.to_owned() },
            );
        }
        Err(e) => tracing::debug!(id, error = %e, "no listened receipt"),
    }
}

async fn send_pending_receipts(session: &mut CarSession, shared: &Shared) {
    let pending = shared.spool.with(|s| Ok(s.pending_receipts())).await;
    for entry in pending.unwrap_or_default() {
        send_listened(session, shared, &entry.meta.id).await;
    }
}

/// Offers the oldest reply in the outbox, unless one is already out on this link. It stays
/// in the outbox until the phone acknowledges it: a link lost before that offers it again.
async fn offer_reply(session: &mut CarSession, shared: &Shared, reply: &mut Option<String>) {
    if reply.is_some() || !session.is_connected() {
        return;
    }
    let oldest = match shared.spool.with(|s| s.outbox().oldest()).await {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the outbox");
            return;
        }
    };
    let (meta, data) = oldest;
    let id = meta.id.clone();
    match session.send_reply(meta, data) {
        Ok(()) => {
            tracing::info!(id, "offering a voice reply");
            *reply = Some(id.clone());
            publish(&shared.events, DaemonEvent::ReplyOffered { id });
        }
        // Kept for a phone (or an app version) that takes it.
        Err(e) => tracing::warn!(id, error = %e, "cannot offer the reply on this link"),
    }
}

fn log_err(result: Result<(), codriver_companion::Error>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "companion command failed");
    }
}

/// The session's clock: tokio's, so paused-time tests drive it.
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
