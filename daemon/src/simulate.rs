//! `codriverd --simulate`: the real daemon against the mock Bluetooth HAL and a simulated phone.
//!
//! The phone (from `codriver-phone-sim`) appears, pairs under the configured policy and
//! connects Hands-Free; a simulated driver presses the steering-wheel button when the daemon
//! asks for it (or approves over the API, under the `dbus` policy). Sound goes to the
//! configured output: the sound card when there is one, otherwise WAV files in a directory the
//! log names. A [`Scenario`] runs a fixed script and ends with success or the step that failed.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use codriver_config::{Config, PairingPolicy, SimulationProfile};
use codriver_hal::mock::{
    MOCK_SCO_MTU, MockAudioInput, MockBluetooth, MockButtonHandle, MockButtons, MockSco,
    MockScoPhone,
};
use codriver_hal::{AudioOutput, Hal};
use codriver_phone_sim::ag::{AgEvent, Profile};
use codriver_phone_sim::{AgCommand, AgLink, PhoneSpec, SimulatedPhone};
use tokio::sync::{broadcast, oneshot};
use tokio::time::Instant;

use crate::events::{Command, DaemonEvent, DaemonHandle, MessageAction};
use crate::{Daemon, DaemonError};

/// The button the simulated driver presses. The default bindings use it.
pub const SIM_BUTTON: &str = "phone";

/// How long the driver holds the button for a short press.
const SHORT_PRESS: Duration = Duration::from_millis(120);

/// How long the driver takes to react to a sound before pressing. Also keeps presses further
/// apart than the debounce time: under paused time everything between two presses can happen
/// in the same instant, and an edge that close to the last one is contact bounce.
const REACTION: Duration = Duration::from_millis(300);

/// How long any one step may take before the scenario fails.
const STEP_LIMIT: Duration = Duration::from_secs(60);

/// A scripted simulation that ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// The phone appears, pairs under the configured policy, connects Hands-Free.
    Pairing,
    /// Pairing, then a call rings, the driver answers with the button, talks, and hangs up
    /// with the button.
    IncomingCall,
    /// Pairing, then the phone's messaging app sends an Ogg Opus voice message over the
    /// companion TCP transport: stored, acknowledged, chime and announcement, played,
    /// listened receipt back; then the driver records a voice reply (the simulated
    /// microphone speaks a fixture, silence ends it), which is sent and acknowledged.
    VoiceMessage,
    /// Pairing, then the phone switches to mSBC, a call rings and is answered with the
    /// button, the phone opens its SCO link (mock, a socket pair) and audio flows both ways
    /// for three seconds: the phone's tone reaches the car's speaker path and the car's
    /// microphone tone reaches the phone, with no frame concealed; then the driver hangs up.
    CallAudio,
}

impl Scenario {
    /// Every scenario, for `--help` and errors.
    pub const ALL: [Scenario; 4] = [
        Scenario::Pairing,
        Scenario::IncomingCall,
        Scenario::VoiceMessage,
        Scenario::CallAudio,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Pairing => "pairing",
            Scenario::IncomingCall => "incoming-call",
            Scenario::VoiceMessage => "voice-message",
            Scenario::CallAudio => "call-audio",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.name() == s)
            .ok_or_else(|| {
                let valid: Vec<_> = Scenario::ALL.iter().map(|s| s.name()).collect();
                format!(
                    "unknown scenario {s:?}; valid scenarios: {}",
                    valid.join(", ")
                )
            })
    }
}

/// Why a simulation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimulationError {
    /// A step did not happen in time.
    #[error("scenario {scenario}: step \"{step}\" did not complete within {limit:?}")]
    StepTimedOut {
        /// The scenario.
        scenario: &'static str,
        /// The step waited for.
        step: String,
        /// How long it waited.
        limit: Duration,
    },
    /// The phone side failed.
    #[error("scenario {scenario}: the simulated phone failed at \"{step}\": {reason}")]
    Phone {
        /// The scenario.
        scenario: &'static str,
        /// The step.
        step: String,
        /// What went wrong.
        reason: String,
    },
    /// The daemon stopped with an error.
    #[error("the daemon failed: {0}")]
    Daemon(#[from] DaemonError),
    /// The daemon stopped before the scenario finished.
    #[error("the daemon stopped before the scenario finished")]
    DaemonStopped,
}

/// What a finished simulation saw, for tests and the log.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every daemon event, in order, as its display line.
    pub events: Vec<String>,
}

/// Prepares `config` for `scenario`: `voice-message` needs the companion TCP transport, so
/// when `[messages] companion_tcp` is unset it gets a free loopback port and a spool under
/// `[simulation] output_directory`.
pub fn prepare(mut config: Config, scenario: Option<Scenario>) -> Config {
    if scenario == Some(Scenario::VoiceMessage) && config.messages.companion_tcp.is_none() {
        let free = std::net::TcpListener::bind(("127.0.0.1", 0)).and_then(|l| l.local_addr());
        match free {
            Ok(addr) => {
                config.messages.companion_tcp = Some(addr);
                config.messages.spool_directory = config.simulation.output_directory.join("spool");
            }
            Err(e) => {
                tracing::warn!(error = %e, "no free loopback port for the companion transport")
            }
        }
    }
    config
}

/// A simulation ready to run: the daemon wired to the mock radio and a simulated phone.
pub struct Simulation {
    /// The companion TCP transport's address, for the phone's messaging app.
    companion: Option<std::net::SocketAddr>,
    daemon: Daemon,
    phone: SimulatedPhone,
    driver: MockButtonHandle,
    policy: PairingPolicy,
    /// The phone's side of the SCO transport.
    sco: MockScoPhone,
    /// The car's microphone.
    mic: MockAudioInput,
}

impl fmt::Debug for Simulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulation")
            .field("phone", self.phone.spec())
            .finish_non_exhaustive()
    }
}

impl Simulation {
    /// Builds the daemon against the mock Bluetooth host, `output` for sound, and a phone
    /// as `[simulation]` describes it.
    ///
    /// The messages service runs in every simulation: a spool left at its default
    /// (`/var/lib/codriver/spool`, the car's) moves under `[simulation] output_directory`.
    pub fn new(mut config: Config, output: Arc<dyn AudioOutput>) -> Self {
        if config.messages.spool_directory == Config::default().messages.spool_directory {
            config.messages.spool_directory = config.simulation.output_directory.join("spool");
        }
        let host = MockBluetooth::new();
        let radio = host.radio();
        let (buttons, driver) = MockButtons::new();
        let spec = PhoneSpec {
            address: config.simulation.phone_address,
            name: config.simulation.phone_name.clone(),
            profile: match config.simulation.profile {
                SimulationProfile::IphoneLike => Profile::IphoneLike,
                SimulationProfile::AndroidLike => Profile::AndroidLike,
                SimulationProfile::Minimal => Profile::Minimal,
            },
            passkey: 482_913,
        };
        tracing::info!(
            output = %output.describe(),
            phone = %spec.name,
            profile = spec.profile.name(),
            "simulation"
        );
        let policy = config.pairing.policy;
        let (car_sco, phone_sco) = MockSco::new(spec.address, MOCK_SCO_MTU);
        // Silence until a scenario queues a recording.
        let mic = MockAudioInput::new();
        let hal = Hal {
            bluetooth: Arc::new(host),
            audio_out: output,
            audio_in: Arc::new(mic.clone()),
            buttons: vec![Box::new(buttons)],
            amplifier: None,
        };
        Simulation {
            companion: config.messages.companion_tcp,
            daemon: Daemon::new(config, hal).with_sco(Arc::new(car_sco)),
            phone: SimulatedPhone::new(radio, spec),
            driver,
            policy,
            sco: phone_sco,
            mic,
        }
    }

    /// A handle to the simulated daemon (reload, commands, events).
    pub fn handle(&self) -> DaemonHandle {
        self.daemon.handle()
    }

    /// Runs the simulation: with a scenario until it ends, without one until `shutdown`.
    pub async fn run(
        self,
        scenario: Option<Scenario>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Report, SimulationError> {
        let Simulation {
            companion,
            daemon,
            phone,
            driver,
            policy,
            sco,
            mic,
        } = self;
        if scenario == Some(Scenario::VoiceMessage) {
            speak_into(&mic);
        }
        let handle = daemon.handle();
        let mut recorder = handle.subscribe();
        let mut events = handle.subscribe();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let daemon_task = tokio::spawn(daemon.run(async move {
            tokio::select! {
                () = shutdown => { let _ = shutdown_tx.send(()); }
                _ = stop_rx => {}
            }
        }));

        let mut driver = Driver {
            handle,
            events: &mut events,
            buttons: driver,
            policy,
            scenario,
            companion,
            sco,
            mic,
        };
        let outcome = match scenario {
            Some(s) => driver.run(s, phone).await.map(drop),
            None => match driver.run(Scenario::Pairing, phone).await {
                Ok(link) => {
                    tracing::info!("simulation running: the phone stays connected until Ctrl-C");
                    let _ = shutdown_rx.await;
                    drop(link);
                    Ok(())
                }
                Err(e) => Err(e),
            },
        };
        let _ = stop_tx.send(());
        let result = daemon_task
            .await
            .map_err(|_| SimulationError::DaemonStopped)?;
        result?;
        outcome?;
        let mut report = Report::default();
        while let Ok(e) = recorder.try_recv() {
            report.events.push(e.to_string());
        }
        Ok(report)
    }
}

/// The simulated driver and phone, stepping through a scenario.
/// The simulated driver's voice for the next recording: 2 s of fixture speech, then
/// silence (so voice activity detection ends it). Only for the scenario: the fixture is
/// 200 KB the idle daemon should not carry.
fn speak_into(mic: &codriver_hal::mock::MockAudioInput) {
    let mut samples = codriver_phone_sim::companion::fixture_speech(2_000);
    samples.resize(samples.len() + 16 * 4_000, 0);
    mic.push_fixture(samples);
}

struct Driver<'a> {
    handle: DaemonHandle,
    events: &'a mut broadcast::Receiver<DaemonEvent>,
    buttons: MockButtonHandle,
    policy: PairingPolicy,
    scenario: Option<Scenario>,
    companion: Option<std::net::SocketAddr>,
    sco: MockScoPhone,
    mic: MockAudioInput,
}

impl Driver<'_> {
    async fn run(
        &mut self,
        scenario: Scenario,
        mut phone: SimulatedPhone,
    ) -> Result<AgLink, SimulationError> {
        let name = scenario.name();
        self.wait("daemon ready", |e| matches!(e, DaemonEvent::Ready))
            .await?;
        phone.appear().await;

        // The phone pairs; the driver confirms when the car asks, as the policy wants.
        let pairing = async {
            phone.pair().await.map_err(|e| SimulationError::Phone {
                scenario: name,
                step: "pair".into(),
                reason: e.to_string(),
            })
        };
        let confirming = async {
            if self.policy == PairingPolicy::Allowlist {
                return Ok(());
            }
            self.wait("pairing request", |e| {
                matches!(e, DaemonEvent::PairingRequested { .. })
            })
            .await?;
            if self.policy == PairingPolicy::Dbus {
                tracing::info!("driver: approving the pairing in the UI");
                self.handle
                    .request(|reply| Command::ConfirmPairing(true, reply))
                    .await
                    .map_err(|reason| SimulationError::Phone {
                        scenario: name,
                        step: "approve pairing over the API".into(),
                        reason,
                    })?;
            } else {
                tracing::info!("driver: pressing the button to confirm pairing");
                tokio::time::sleep(REACTION).await;
                self.buttons.press(SIM_BUTTON, SHORT_PRESS).await;
            }
            Ok::<(), SimulationError>(())
        };
        let (paired, confirmed) = tokio::join!(pairing, confirming);
        confirmed?;
        paired?;
        self.wait("phone paired", |e| {
            matches!(e, DaemonEvent::PhonePaired { .. })
        })
        .await?;

        let mut link = phone
            .connect_hands_free()
            .await
            .map_err(|e| SimulationError::Phone {
                scenario: name,
                step: "connect Hands-Free".into(),
                reason: e.to_string(),
            })?;
        self.wait("Hands-Free service level connection", |e| {
            matches!(e, DaemonEvent::HandsFreeReady { .. })
        })
        .await?;
        let _ = link
            .wait_for("SLC on the phone", STEP_LIMIT, |e| {
                *e == AgEvent::SlcEstablished
            })
            .await;

        if scenario == Scenario::IncomingCall {
            self.incoming_call(&mut link).await?;
        }
        if scenario == Scenario::VoiceMessage {
            self.voice_message().await?;
        }
        if scenario == Scenario::CallAudio {
            self.call_audio(&mut link).await?;
        }
        tracing::info!(scenario = name, "scenario steps complete");
        Ok(link)
    }

    /// Alice calls; the driver answers with the button once it rings.
    async fn ring_and_answer(
        &mut self,
        link: &mut AgLink,
        scenario: &'static str,
    ) -> Result<(), SimulationError> {
        let phone_err = |step: &str, e: codriver_phone_sim::AgLinkError| SimulationError::Phone {
            scenario,
            step: step.to_owned(),
            reason: e.to_string(),
        };
        link.command(AgCommand::IncomingCall {
            number: "+15550100".into(),
            name: Some("Alice".into()),
        })
        .await
        .map_err(|e| phone_err("incoming call", e))?;
        self.wait(
            "ringing",
            |e| matches!(e, DaemonEvent::Telephony { line, .. } if line.starts_with("ring")),
        )
        .await?;
        tracing::info!("driver: pressing the button to answer");
        tokio::time::sleep(REACTION).await;
        self.buttons.press(SIM_BUTTON, SHORT_PRESS).await;
        link.wait_for("ATA from the car", STEP_LIMIT, |e| {
            *e == AgEvent::CallAnswered
        })
        .await
        .map_err(|e| phone_err("answer", e))?;
        Ok(())
    }

    async fn incoming_call(&mut self, link: &mut AgLink) -> Result<(), SimulationError> {
        let name = Scenario::IncomingCall.name();
        let phone_err = |step: &str, e: codriver_phone_sim::AgLinkError| SimulationError::Phone {
            scenario: name,
            step: step.to_owned(),
            reason: e.to_string(),
        };
        self.ring_and_answer(link, name).await?;
        self.wait("call active", |e| {
            matches!(e, DaemonEvent::Telephony { line, .. } if line.starts_with("call ") && line.contains(" active "))
        })
        .await?;
        // Talk for a while.
        tokio::time::sleep(Duration::from_secs(3)).await;
        tracing::info!("driver: pressing the button to hang up");
        tokio::time::sleep(REACTION).await;
        self.buttons.press(SIM_BUTTON, SHORT_PRESS).await;
        link.wait_for("AT+CHUP from the car", STEP_LIMIT, |e| {
            *e == AgEvent::CallHungUp
        })
        .await
        .map_err(|e| phone_err("hang up", e))?;
        self.wait("call ended", |e| {
            matches!(e, DaemonEvent::Telephony { line, .. } if line.starts_with("call ") && line.contains(" ended "))
        })
        .await?;
        Ok(())
    }

    async fn call_audio(&mut self, link: &mut AgLink) -> Result<(), SimulationError> {
        use codriver_callaudio::{CallCodec, CallPipeline, PipelineConfig};
        use codriver_hal::{AirMode, ScoLink};

        const SECONDS: usize = 3;
        let name = Scenario::CallAudio.name();
        let fail = |step: &str, reason: String| SimulationError::Phone {
            scenario: name,
            step: step.to_owned(),
            reason,
        };
        // The phone switches to wide band; the car confirms with AT+BCS=2.
        link.command(AgCommand::CodecSwitch(2))
            .await
            .map_err(|e| fail("propose mSBC", e.to_string()))?;
        link.wait_for("AT+BCS=2 from the car", STEP_LIMIT, |e| {
            *e == AgEvent::CodecSelected(2)
        })
        .await
        .map_err(|e| fail("codec selection", e.to_string()))?;

        // The car's microphone hears the driver: a 440 Hz tone for the whole call.
        self.mic
            .push_fixture(tone(16_000, 440.0, (SECONDS + 4) * 16_000));

        // The phone rings in band (HFP 1.8 §4.13.1): it opens the audio connection in
        // transparent mode (mSBC) before RING, and the car plays no ringtone of its own.
        let mut sco = self
            .sco
            .connect(AirMode::Transparent, MOCK_SCO_MTU)
            .await
            .map_err(|e| fail("open the SCO link", e.to_string()))?;
        self.wait("call audio started", |e| {
            matches!(e, DaemonEvent::CallAudioStarted { codec: "mSBC", .. })
        })
        .await?;

        self.ring_and_answer(link, name).await?;

        // The phone's side: a 1 kHz caller every 7.5 ms, and whatever the car sends back.
        let mut config = PipelineConfig::new(CallCodec::Msbc, 16_000);
        config.dsp.echo_cancellation = false;
        config.dsp.noise_suppression = false;
        let mut phone =
            CallPipeline::new(config).map_err(|e| fail("phone codec", e.to_string()))?;
        let caller = tone(16_000, 1_000.0, SECONDS * 16_000);
        let mut heard = Vec::new();
        let mut buf = [0u8; 256];
        let mut tick = tokio::time::interval(Duration::from_micros(7_500));
        let mut frames = caller.chunks_exact(codriver_callaudio::MSBC_FRAME_SAMPLES);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let Some(frame) = frames.next() else { break };
                    phone.handle_mic(frame).map_err(|e| fail("phone encode", e.to_string()))?;
                    while let Some(p) = phone.poll_transmit() {
                        sco.send(&p).await.map_err(|e| fail("phone SCO send", e.to_string()))?;
                    }
                }
                r = sco.recv(&mut buf) => match r {
                    Ok(0) => return Err(fail("phone SCO receive", "the car closed the link".into())),
                    Ok(n) => {
                        phone.handle_sco_packet(&buf[..n]);
                        phone.take_speaker(&mut heard);
                    }
                    Err(e) => return Err(fail("phone SCO receive", e.to_string())),
                },
            }
        }
        let stats = phone.rx_stats();
        let rms = (heard.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>()
            / heard.len().max(1) as f64)
            .sqrt();
        tracing::info!(
            frames = stats.frames,
            concealed = stats.lost_frames + stats.corrupt_frames,
            rms = format!("{rms:.0}"),
            "phone: heard the car"
        );
        let expected = SECONDS * 16_000 / codriver_callaudio::MSBC_FRAME_SAMPLES;
        if (stats.frames as usize) < expected * 9 / 10
            || stats.lost_frames + stats.corrupt_frames > 0
        {
            return Err(fail(
                "hear the car",
                format!("{} of {expected} frames, {stats:?}", stats.frames),
            ));
        }
        if rms < 100.0 {
            return Err(fail(
                "hear the car",
                format!("the car's audio is silent (RMS {rms:.0})"),
            ));
        }

        tracing::info!("driver: pressing the button to hang up");
        self.buttons.press(SIM_BUTTON, SHORT_PRESS).await;
        link.wait_for("AT+CHUP from the car", STEP_LIMIT, |e| {
            *e == AgEvent::CallHungUp
        })
        .await
        .map_err(|e| fail("hang up", e.to_string()))?;
        // The phone closes the audio connection with the call.
        drop(sco);
        let ended = self
            .wait("call audio ended", |e| {
                matches!(e, DaemonEvent::CallAudioEnded { .. })
            })
            .await?;
        if let DaemonEvent::CallAudioEnded {
            received,
            concealed,
            ..
        } = ended
            && ((received as usize) < expected * 9 / 10 || concealed > 0)
        {
            return Err(fail(
                "car heard the phone",
                format!("{received} packets of {expected}, {concealed} concealed"),
            ));
        }
        Ok(())
    }

    async fn voice_message(&mut self) -> Result<(), SimulationError> {
        use codriver_companion::Event;
        use codriver_phone_sim::companion::{CompanionPhone, opus_voice_message};

        let name = Scenario::VoiceMessage.name();
        let phone_err = |step: &str, e: &dyn fmt::Display| SimulationError::Phone {
            scenario: name,
            step: step.to_owned(),
            reason: e.to_string(),
        };
        let addr = self.companion.ok_or_else(|| {
            phone_err(
                "connect the messaging app",
                &"[messages] companion_tcp is not set",
            )
        })?;
        let mut app = CompanionPhone::connect(addr)
            .await
            .map_err(|e| phone_err("connect the messaging app", &e))?;
        app.handshake(STEP_LIMIT)
            .await
            .map_err(|e| phone_err("companion handshake", &e))?;
        // A fresh id per run: the spool keeps messages across runs and drops duplicates.
        let id = format!("sim-{}", crate::messages::spool::unix_ms());
        tracing::info!(id, "phone: sending an Ogg Opus voice message from Alice");
        let (message, audio) = opus_voice_message(&id, "Alice", 1500);
        app.send_voice(message, audio)
            .await
            .map_err(|e| phone_err("send the voice message", &e))?;
        app.wait_for(
            "delivery ack",
            STEP_LIMIT,
            |e| matches!(e, Event::Delivered { id: d } if *d == id),
        )
        .await
        .map_err(|e| phone_err("delivery ack", &e))?;
        self.wait(
            "message played",
            |e| matches!(e, DaemonEvent::MessagePlayed { id: d } if *d == id),
        )
        .await?;
        app.wait_for(
            "listened receipt",
            STEP_LIMIT,
            |e| matches!(e, Event::Listened { id: d, .. } if *d == id),
        )
        .await
        .map_err(|e| phone_err("listened receipt", &e))?;

        let label = format!("message {id}");
        self.wait(
            "message heard to the end",
            |e| matches!(e, DaemonEvent::SoundPlayed { label: l } if *l == label),
        )
        .await?;
        // The driver answers by voice (the simulated microphone speaks a fixture); the
        // recording stops on the silence after it.
        tracing::info!("driver: recording a voice reply");
        self.handle
            .request(|r| Command::Messages(MessageAction::RecordReply, r))
            .await
            .map_err(|reason| phone_err("record a reply", &reason))?;
        self.wait("reply recorded", |e| {
            matches!(e, DaemonEvent::ReplyRecorded { .. })
        })
        .await?;
        let reply = app
            .wait_for("the voice reply", STEP_LIMIT, |e| {
                matches!(e, Event::ReplyComplete(_))
            })
            .await
            .map_err(|e| phone_err("receive the reply", &e))?;
        if let Event::ReplyComplete(r) = reply {
            tracing::info!(
                id = r.id,
                conversation = r.conversation_id,
                ms = r.duration_ms,
                "phone: reply received and posted"
            );
        }
        self.wait("reply delivered", |e| {
            matches!(e, DaemonEvent::ReplyDelivered { .. })
        })
        .await?;
        Ok(())
    }

    async fn wait(
        &mut self,
        step: &str,
        want: impl Fn(&DaemonEvent) -> bool,
    ) -> Result<DaemonEvent, SimulationError> {
        let deadline = Instant::now() + STEP_LIMIT;
        let scenario = self.scenario.map_or("simulate", Scenario::name);
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Ok(e)) if want(&e) => return Ok(e),
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    return Err(SimulationError::DaemonStopped);
                }
                Err(_) => {
                    return Err(SimulationError::StepTimedOut {
                        scenario,
                        step: step.to_owned(),
                        limit: STEP_LIMIT,
                    });
                }
            }
        }
    }
}

/// A sine tone at half scale.
fn tone(rate: u32, freq: f64, samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            (16_000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
        })
        .collect()
}
