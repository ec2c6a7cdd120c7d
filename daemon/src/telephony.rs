//! The Hands-Free driver: one task per HFP RFCOMM link, and the call model the rest of the
//! daemon reads.
//!
//! The driver is the only code that touches the link's socket. It `select!`s over the socket,
//! the engine's deadline and the command channel, feeds the sans-IO `codriver_hfp` engine, and
//! drains it: transmissions first (written to the socket), then events (sent to the daemon's
//! main loop with a snapshot of the call list).

use codriver_hal::{Address, ByteStream};
use codriver_hfp::{Call, CallState, Chld, Event, HandsFree, HfConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::events::CallAction;

/// Capacity of a link's command channel.
const COMMAND_CAPACITY: usize = 8;

/// What a driver reports to the main loop.
#[derive(Debug)]
pub(crate) enum Update {
    /// Engine events from one drain, with the call list after them.
    Events {
        /// The events, in order.
        events: Vec<Event>,
        /// The phone's calls now.
        calls: Vec<Call>,
    },
    /// The link closed (phone gone, socket error, or shutdown).
    Closed {
        /// Why, for the log.
        reason: String,
    },
}

/// A running Hands-Free link.
#[derive(Debug)]
pub(crate) struct HfpLink {
    commands: mpsc::Sender<CallAction>,
    task: JoinHandle<()>,
}

impl HfpLink {
    /// Starts a driver for `stream` to `device`.
    pub(crate) fn spawn(
        device: Address,
        stream: Box<dyn ByteStream>,
        config: HfConfig,
        updates: mpsc::Sender<(Address, Update)>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
        let task = tokio::spawn(drive(device, stream, HandsFree::new(config), rx, updates));
        HfpLink { commands: tx, task }
    }

    /// Queues a call action; fails when the link is busy or gone, or the action is malformed.
    pub(crate) fn command(&self, action: CallAction) -> Result<(), String> {
        if let CallAction::SendDtmf(digits) = &action
            && (digits.is_empty() || !digits.chars().all(is_dtmf))
        {
            return Err(format!(
                "{digits:?} is not a DTMF string: use 0-9, *, # and A-D"
            ));
        }
        self.commands.try_send(action).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => "the phone link is busy".to_owned(),
            mpsc::error::TrySendError::Closed(_) => "the phone link is closed".to_owned(),
        })
    }
}

impl Drop for HfpLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn drive(
    device: Address,
    mut stream: Box<dyn ByteStream>,
    mut engine: HandsFree,
    mut commands: mpsc::Receiver<CallAction>,
    updates: mpsc::Sender<(Address, Update)>,
) {
    engine.start(now());
    let mut buf = [0u8; 512];
    let reason = loop {
        if let Err(e) = flush(&mut engine, &mut stream, device, &updates).await {
            break e;
        }
        let deadline = engine.poll_timeout().map(Instant::from_std);
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) => break "the phone closed the link".to_owned(),
                Ok(n) => engine.handle_input(now(), &buf[..n]),
                Err(e) => break format!("read failed: {e}"),
            },
            () = sleep_until(deadline) => engine.handle_timeout(now()),
            cmd = commands.recv() => match cmd {
                Some(action) => apply(&mut engine, action, device),
                None => break "shutting down".to_owned(),
            },
        }
    };
    tracing::info!(%device, reason, "Hands-Free link closed");
    let _ = updates.send((device, Update::Closed { reason })).await;
}

/// Writes what the engine wants sent and forwards its events.
async fn flush(
    engine: &mut HandsFree,
    stream: &mut Box<dyn ByteStream>,
    device: Address,
    updates: &mpsc::Sender<(Address, Update)>,
) -> Result<(), String> {
    while let Some(bytes) = engine.poll_transmit() {
        tracing::trace!(%device, tx = %String::from_utf8_lossy(&bytes).trim_end(), "HF →");
        stream
            .write_all(&bytes)
            .await
            .map_err(|e| format!("write failed: {e}"))?;
    }
    let mut events = Vec::new();
    while let Some(event) = engine.poll_event() {
        tracing::debug!(%device, "{event}");
        events.push(event);
    }
    if !events.is_empty() {
        let calls = engine.calls().to_vec();
        updates
            .send((device, Update::Events { events, calls }))
            .await
            .map_err(|_| "the daemon stopped".to_owned())?;
    }
    Ok(())
}

fn apply(engine: &mut HandsFree, action: CallAction, device: Address) {
    let now = now();
    let result = match &action {
        CallAction::Answer => engine.answer(now),
        CallAction::Hangup => engine.hangup(now),
        CallAction::Dial(number) => engine.dial(now, number),
        CallAction::Swap => engine.hold(now, Chld::HoldActiveAcceptOther),
        CallAction::RejectWaiting => engine.hold(now, Chld::ReleaseHeld),
        CallAction::VoiceAssistant(on) => engine.set_voice_recognition(now, *on),
        CallAction::SpeakerVolume(level) => engine.set_speaker_volume(now, *level),
        CallAction::ReleaseCall(index) => engine.hold(now, Chld::ReleaseCall(*index)),
        CallAction::SendDtmf(digits) => digits
            .chars()
            .try_for_each(|digit| engine.send_dtmf(now, digit)),
        CallAction::CvsdOnly => engine.set_codecs(now, vec![codriver_hfp::Codec::Cvsd]),
    };
    if let Err(e) = result {
        tracing::warn!(%device, ?action, error = %e, "call command refused");
    }
}

fn is_dtmf(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn now() -> std::time::Instant {
    // tokio's clock, so paused-time tests drive the engine's timeouts too.
    Instant::now().into_std()
}

/// A summary of a phone's calls, for choosing the controls context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CallSummary {
    /// A call rings with no other call.
    pub(crate) ringing: bool,
    /// A call waits while another is in progress.
    pub(crate) waiting: bool,
    /// A call is active, dialling, alerting or held.
    pub(crate) in_call: bool,
}

impl CallSummary {
    pub(crate) fn of(calls: &[Call]) -> Self {
        let has = |s: &[CallState]| calls.iter().any(|c| s.contains(&c.state));
        CallSummary {
            ringing: has(&[CallState::Incoming]),
            waiting: has(&[CallState::Waiting]),
            in_call: has(&[
                CallState::Active,
                CallState::Dialing,
                CallState::Alerting,
                CallState::Held,
            ]),
        }
    }
}
