//! The simulated phone: appears, pairs and connects through the mock Bluetooth radio, and
//! runs the Audio Gateway side of HFP over the connection.

use std::time::Duration;

use codriver_hal::mock::{MockRadio, PairingMethod, RadioError};
use codriver_hal::{Address, ByteStream, ProfileKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::ag::{ActionError, AgEvent, AudioGateway, Profile};

/// Who the simulated phone is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneSpec {
    /// Its Bluetooth address.
    pub address: Address,
    /// The name it shows.
    pub name: String,
    /// How it behaves on HFP.
    pub profile: Profile,
    /// The six-digit value it shows for numeric comparison.
    pub passkey: u32,
}

/// A phone in the simulated air around the car.
#[derive(Debug)]
pub struct SimulatedPhone {
    radio: MockRadio,
    spec: PhoneSpec,
    /// Connections the car opens to the phone, once it has appeared.
    incoming: Option<mpsc::Receiver<(ProfileKind, DuplexStream)>>,
}

impl SimulatedPhone {
    /// A phone that is not yet in range.
    pub fn new(radio: MockRadio, spec: PhoneSpec) -> Self {
        SimulatedPhone {
            radio,
            spec,
            incoming: None,
        }
    }

    /// Who the phone is.
    pub fn spec(&self) -> &PhoneSpec {
        &self.spec
    }

    /// Comes into range of the car.
    pub async fn appear(&mut self) {
        tracing::info!(phone = %self.spec.address, name = %self.spec.name, "phone: in range");
        self.incoming = Some(self.radio.appear(self.spec.address, &self.spec.name).await);
    }

    /// Goes out of range: every link drops.
    pub async fn vanish(&mut self) {
        tracing::info!(phone = %self.spec.address, "phone: out of range");
        self.incoming = None;
        self.radio.vanish(self.spec.address).await;
    }

    /// Pairs with the car by numeric comparison, as a user tapping "Pair" would.
    pub async fn pair(&self) -> Result<(), RadioError> {
        tracing::info!(phone = %self.spec.address, passkey = self.spec.passkey, "phone: pairing");
        self.radio
            .pair(
                self.spec.address,
                PairingMethod::NumericComparison(self.spec.passkey),
            )
            .await
    }

    /// Opens the Hands-Free connection from the phone side and starts the Audio Gateway.
    pub async fn connect_hands_free(&self) -> Result<AgLink, RadioError> {
        let stream = self
            .radio
            .connect(self.spec.address, ProfileKind::HandsFree)
            .await?;
        Ok(AgLink::spawn(
            self.spec.address,
            Box::new(stream),
            self.spec.profile,
        ))
    }

    /// Waits for the car to open the Hands-Free connection (reconnect) and starts the Audio
    /// Gateway on it. `None` when the phone is out of range.
    pub async fn accept_hands_free(&mut self) -> Option<AgLink> {
        let incoming = self.incoming.as_mut()?;
        while let Some((kind, stream)) = incoming.recv().await {
            if kind == ProfileKind::HandsFree {
                return Some(AgLink::spawn(
                    self.spec.address,
                    Box::new(stream),
                    self.spec.profile,
                ));
            }
        }
        None
    }
}

/// What a test or scenario can make the phone do on its HFP link.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgCommand {
    /// A call comes in from `number` (with a caller name, when the phone has one).
    IncomingCall {
        /// The caller's number.
        number: String,
        /// The caller's name.
        name: Option<String>,
    },
    /// A second call comes in during a call.
    CallWaiting {
        /// The caller's number.
        number: String,
    },
    /// The far end answers our outgoing call.
    RemoteAnswer,
    /// The far end hangs up.
    RemoteHangup,
    /// The user started the voice assistant on the phone.
    StartVoiceRecognition,
    /// The phone proposes a codec (1 CVSD, 2 mSBC).
    CodecSwitch(u8),
    /// The phone changes the speaker volume.
    SpeakerVolume(u8),
}

/// A running Audio Gateway over one HFP connection.
#[derive(Debug)]
pub struct AgLink {
    commands: mpsc::Sender<(AgCommand, oneshot::Sender<Result<(), ActionError>>)>,
    events: mpsc::Receiver<AgEvent>,
    task: JoinHandle<()>,
}

/// Why waiting on the Audio Gateway failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AgLinkError {
    /// The connection closed.
    #[error("the HFP link closed")]
    Closed,
    /// The wait took longer than allowed.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The gateway refused the scripted action.
    #[error(transparent)]
    Action(#[from] ActionError),
}

impl AgLink {
    fn spawn(address: Address, stream: Box<dyn ByteStream>, profile: Profile) -> Self {
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        let (ev_tx, ev_rx) = mpsc::channel(64);
        let task = tokio::spawn(drive(
            address,
            stream,
            AudioGateway::new(profile),
            cmd_rx,
            ev_tx,
        ));
        AgLink {
            commands: cmd_tx,
            events: ev_rx,
            task,
        }
    }

    /// Makes the phone do something.
    pub async fn command(&self, command: AgCommand) -> Result<(), AgLinkError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send((command, tx))
            .await
            .map_err(|_| AgLinkError::Closed)?;
        rx.await
            .map_err(|_| AgLinkError::Closed)?
            .map_err(AgLinkError::Action)
    }

    /// The next thing the car did on the link.
    pub async fn next_event(&mut self) -> Option<AgEvent> {
        self.events.recv().await
    }

    /// Waits (up to `limit` of tokio time) for an event matching `want`; others are skipped.
    pub async fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        want: impl Fn(&AgEvent) -> bool,
    ) -> Result<AgEvent, AgLinkError> {
        let deadline = Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) if want(&e) => return Ok(e),
                Ok(Some(_)) => {}
                Ok(None) => return Err(AgLinkError::Closed),
                Err(_) => return Err(AgLinkError::Timeout(what.to_owned())),
            }
        }
    }

    /// Closes the link from the phone side.
    pub fn close(self) {
        self.task.abort();
    }
}

impl Drop for AgLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn drive(
    address: Address,
    mut stream: Box<dyn ByteStream>,
    mut ag: AudioGateway,
    mut commands: mpsc::Receiver<(AgCommand, oneshot::Sender<Result<(), ActionError>>)>,
    events: mpsc::Sender<AgEvent>,
) {
    let mut buf = [0u8; 512];
    loop {
        while let Some(bytes) = ag.poll_transmit() {
            if stream.write_all(&bytes).await.is_err() {
                return;
            }
        }
        while let Some(event) = ag.poll_event() {
            tracing::debug!(phone = %address, ?event, "phone: car did");
            if events.try_send(event).is_err() {
                tracing::debug!(phone = %address, "phone: event dropped (nobody listening)");
            }
        }
        let deadline = ag.poll_timeout().map(Instant::from_std);
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    tracing::info!(phone = %address, "phone: HFP link closed by the car");
                    return;
                }
                Ok(n) => ag.handle_input(Instant::now().into_std(), &buf[..n]),
            },
            () = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => ag.handle_timeout(Instant::now().into_std()),
            cmd = commands.recv() => match cmd {
                Some((cmd, reply)) => {
                    let _ = reply.send(apply(&mut ag, cmd));
                }
                None => return,
            },
        }
    }
}

fn apply(ag: &mut AudioGateway, command: AgCommand) -> Result<(), ActionError> {
    let now = Instant::now().into_std();
    match command {
        AgCommand::IncomingCall { number, name } => {
            ag.incoming_call(now, &number, name.as_deref()).map(drop)
        }
        AgCommand::CallWaiting { number } => ag.call_waiting(&number, None).map(drop),
        AgCommand::RemoteAnswer => ag.remote_answer(),
        AgCommand::RemoteHangup => ag.remote_hangup(),
        AgCommand::StartVoiceRecognition => ag.start_voice_recognition(),
        AgCommand::CodecSwitch(codec) => ag.codec_switch(codec),
        AgCommand::SpeakerVolume(level) => ag.set_speaker_volume(level),
    }
}
