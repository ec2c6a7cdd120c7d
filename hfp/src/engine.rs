//! The Hands-Free state machine.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::at::{self, Framed, LineFramer, Response};
use crate::{
    AgFeatures, Call, CallState, Chld, CmeError, Codec, Direction, Error, Event, HfFeatures,
    VolumeTarget,
};

/// Configuration of the car side; [`Default`] gives every feature this crate implements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfConfig {
    /// Features advertised in `AT+BRSF`.
    pub features: HfFeatures,
    /// Codecs offered in `AT+BAC` (CVSD is always added: it is mandatory). Put
    /// [`Codec::Lc3Swb`] here only when the audio path can decode it.
    pub codecs: Vec<Codec>,
    /// The car cancels echo itself, so the phone's echo cancelling is turned off (`AT+NREC=0`).
    pub echo_cancelling: bool,
    /// How long to wait for the final result of a command before failing it with
    /// [`Error::Timeout`] and sending the next one.
    pub command_timeout: Duration,
    /// HF indicators offered in `AT+BIND` (0x01 enhanced safety, 0x02 battery level).
    pub hf_indicators: Vec<u16>,
    /// Identify as an Apple accessory (`AT+XAPL`) so iPhones accept battery reports.
    pub apple: Option<AppleAccessory>,
    /// Longest line accepted from the phone; longer lines are dropped and reported.
    pub max_line_len: usize,
    /// Commands that may wait behind the one in flight before [`Error::QueueFull`].
    pub command_queue_capacity: usize,
    /// Events kept until polled; beyond this new events are dropped and counted, and an
    /// [`Event::EventsDropped`] is delivered once there is room again.
    pub event_queue_capacity: usize,
}

impl Default for HfConfig {
    fn default() -> Self {
        Self {
            features: HfFeatures::DEFAULT,
            codecs: vec![Codec::Cvsd, Codec::Msbc],
            echo_cancelling: true,
            command_timeout: Duration::from_secs(5),
            hf_indicators: vec![HF_INDICATOR_SAFETY, HF_INDICATOR_BATTERY],
            apple: None,
            max_line_len: 1024,
            command_queue_capacity: 16,
            event_queue_capacity: 256,
        }
    }
}

/// Identification sent in `AT+XAPL=<vendor>-<product>-<version>,<features>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppleAccessory {
    /// Bluetooth SIG or USB vendor id.
    pub vendor_id: u16,
    /// Product id.
    pub product_id: u16,
    /// Product version.
    pub version: u16,
    /// Bitmap of [`AppleAccessory::BATTERY`] and friends.
    pub features: u32,
}

impl AppleAccessory {
    /// Reports battery level with `AT+IPHONEACCEV`.
    pub const BATTERY: u32 = 0x02;
    /// Reports dock state.
    pub const DOCK: u32 = 0x04;
    /// Wants Siri status.
    pub const SIRI: u32 = 0x08;
    /// Wants noise reduction status.
    pub const NOISE_REDUCTION: u32 = 0x10;
}

/// HF indicator assigned number for enhanced safety.
const HF_INDICATOR_SAFETY: u16 = 0x0001;
/// HF indicator assigned number for battery level.
const HF_INDICATOR_BATTERY: u16 = 0x0002;

/// The Hands-Free (car) side of one HFP service level connection, without I/O.
///
/// Feed it bytes from the RFCOMM channel with [`handle_input`](Self::handle_input), call
/// [`handle_timeout`](Self::handle_timeout) when [`poll_timeout`](Self::poll_timeout) passes,
/// and after every input drain [`poll_transmit`](Self::poll_transmit) (write each line to the
/// channel), then [`poll_timeout`](Self::poll_timeout) (re-arm the timer), then
/// [`poll_event`](Self::poll_event). Exactly one AT command is in flight at a time; the others
/// wait in a bounded queue.
#[derive(Debug)]
pub struct HandsFree {
    config: HfConfig,
    framer: LineFramer,
    phase: Phase,
    ag_features: AgFeatures,
    /// `AT+CHLD=?` answer, lower-cased items.
    ag_chld: Vec<String>,
    indicators: Vec<Indicator>,
    calls: Vec<Call>,
    queue: VecDeque<Command>,
    in_flight: Option<InFlight>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    /// Events dropped since the queue was last full.
    events_dropped: u64,
    /// `+CLCC` rows collected while `AT+CLCC` is in flight.
    clcc_rows: Vec<Call>,
    /// HF indicators the phone supports (`AT+BIND=?`).
    ag_hf_indicators: Vec<u16>,
    /// HF indicators the phone enabled (`AT+BIND?`, `+BIND`).
    hf_indicators_enabled: Vec<u16>,
    /// `+XAPL` features from an iPhone.
    apple_features: Option<u32>,
    codec: Option<Codec>,
    /// Last caller id from `+CLIP`, kept for calls learnt later from `+CLCC`.
    last_clip: Option<(String, Option<String>)>,
    /// Number of the last `ATD`, for the dialling call without enhanced call status.
    last_dialed: Option<String>,
    /// Last `AT+CHLD` sent, to interpret the indicator changes that follow it.
    last_chld: Option<Chld>,
    /// A call ended by `callsetup=0` just before `call=1` (phones that send these reversed).
    recently_ended: Option<Call>,
    /// `AT+COPS=3,0` has been sent.
    cops_format_set: bool,
}

/// Where the service level connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Slc,
    Connected,
    Failed,
}

/// One indicator from `AT+CIND=?`.
#[derive(Debug, Clone)]
struct Indicator {
    /// Lower-cased name as the phone sends it.
    name: String,
    /// Name without underscores, for lookups (`call_setup` is `callsetup`).
    key: String,
    min: u8,
    max: u8,
    value: u8,
}

/// A queued AT command.
#[derive(Debug, Clone)]
struct Command {
    kind: Kind,
    line: String,
}

/// The command awaiting its final result.
#[derive(Debug, Clone)]
struct InFlight {
    kind: Kind,
    line: String,
    deadline: Instant,
}

/// What a command is, to interpret its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Brsf,
    Bac,
    CindTest,
    CindRead,
    Cmer,
    ChldTest,
    Bind,
    BindTest,
    BindRead,
    Setup,
    Xapl,
    BacUpdate,
    CopsFormat,
    CopsRead,
    Cnum,
    Clcc,
    Answer,
    Hangup,
    Dial,
    Chld(Chld),
    Bvra(bool),
    Vgs(u8),
    Vgm(u8),
    Bcs(Codec),
    Plain,
}

impl Kind {
    /// Part of the service level connection procedure.
    const fn is_slc(self) -> bool {
        matches!(
            self,
            Self::Brsf
                | Self::Bac
                | Self::CindTest
                | Self::CindRead
                | Self::Cmer
                | Self::ChldTest
                | Self::Bind
                | Self::BindTest
                | Self::BindRead
        )
    }

    /// The service level connection cannot be established without it.
    const fn is_mandatory(self) -> bool {
        matches!(
            self,
            Self::Brsf | Self::CindTest | Self::CindRead | Self::Cmer
        )
    }
}

impl HandsFree {
    /// Creates an idle engine; nothing is sent until [`start`](Self::start).
    pub fn new(config: HfConfig) -> Self {
        let framer = LineFramer::new(config.max_line_len);
        Self {
            config,
            framer,
            phase: Phase::Idle,
            ag_features: AgFeatures::default(),
            ag_chld: Vec::new(),
            indicators: Vec::new(),
            calls: Vec::new(),
            queue: VecDeque::new(),
            in_flight: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            events_dropped: 0,
            clcc_rows: Vec::new(),
            ag_hf_indicators: Vec::new(),
            hf_indicators_enabled: Vec::new(),
            apple_features: None,
            codec: None,
            last_clip: None,
            last_dialed: None,
            last_chld: None,
            recently_ended: None,
            cops_format_set: false,
        }
    }

    /// Begins the service level connection by sending `AT+BRSF`. Call once, after the RFCOMM
    /// channel is open; later calls do nothing.
    pub fn start(&mut self, now: Instant) {
        if self.phase != Phase::Idle {
            return;
        }
        self.phase = Phase::Slc;
        let line = format!("AT+BRSF={}", self.config.features.bits());
        self.enqueue(Kind::Brsf, line);
        self.pump(now);
    }

    /// Processes bytes received from the phone; lines may be split or batched arbitrarily.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        for framed in self.framer.feed(bytes) {
            match framed {
                Framed::Line(line) => self.handle_line(line),
                Framed::Overflow => self.violation(format!(
                    "line longer than {} bytes discarded",
                    self.config.max_line_len
                )),
            }
            // Pumping after every line keeps behaviour independent of how input is split.
            self.pump(now);
        }
    }

    /// Fails the command in flight if its deadline has passed, and sends the next one.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.in_flight.as_ref().is_some_and(|f| f.deadline <= now) {
            self.complete(Err(Error::Timeout), "timeout");
        }
        self.pump(now);
    }

    /// The next AT command line to write to the channel, including its trailing `\r`.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.in_flight.as_ref().map(|f| f.deadline)
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        match self.events.pop_front() {
            Some(event) => Some(event),
            None if self.events_dropped > 0 => Some(Event::EventsDropped(std::mem::take(
                &mut self.events_dropped,
            ))),
            None => None,
        }
    }

    /// Answers the incoming call (`ATA`).
    pub fn answer(&mut self, now: Instant) -> Result<(), Error> {
        self.submit(now, Kind::Answer, "ATA".into())
    }

    /// Rejects the incoming call or hangs up the active one (`AT+CHUP`).
    pub fn hangup(&mut self, now: Instant) -> Result<(), Error> {
        self.submit(now, Kind::Hangup, "AT+CHUP".into())
    }

    /// Dials `number` (`ATD<number>;`). Accepts `0-9*#+A-D,pPwW`, 1 to 64 characters.
    pub fn dial(&mut self, now: Instant, number: &str) -> Result<(), Error> {
        let valid = |c: char| c.is_ascii_digit() || "*#+ABCD,pPwW".contains(c);
        if number.is_empty() || number.len() > 64 || !number.chars().all(valid) {
            return Err(Error::InvalidNumber(number.to_owned()));
        }
        self.submit(now, Kind::Dial, format!("ATD{number};"))
    }

    /// Calls the last dialled number again (`AT+BLDN`).
    pub fn redial(&mut self, now: Instant) -> Result<(), Error> {
        self.submit(now, Kind::Dial, "AT+BLDN".into())
    }

    /// Dials the number stored at `location` in the phone's memory (`ATD><n>;`).
    pub fn memory_dial(&mut self, now: Instant, location: u32) -> Result<(), Error> {
        self.submit(now, Kind::Dial, format!("ATD>{location};"))
    }

    /// Sends one DTMF tone during a call (`AT+VTS=<c>`): `0-9`, `*`, `#`, `A-D`.
    pub fn send_dtmf(&mut self, now: Instant, digit: char) -> Result<(), Error> {
        if !(digit.is_ascii_digit() || "*#ABCD".contains(digit)) {
            return Err(Error::InvalidDtmf(digit));
        }
        self.submit(now, Kind::Plain, format!("AT+VTS={digit}"))
    }

    /// Call waiting and three-way calling control (`AT+CHLD=<arg>`).
    pub fn hold(&mut self, now: Instant, chld: Chld) -> Result<(), Error> {
        if !self.ag_features.contains(AgFeatures::THREE_WAY) {
            return Err(Error::NotSupported("three-way calling"));
        }
        self.submit(now, Kind::Chld(chld), format!("AT+CHLD={chld}"))
    }

    /// Starts or stops voice recognition on the phone (`AT+BVRA=1|0`).
    pub fn set_voice_recognition(&mut self, now: Instant, on: bool) -> Result<(), Error> {
        if !self.ag_features.contains(AgFeatures::VOICE_RECOGNITION) {
            return Err(Error::NotSupported("voice recognition"));
        }
        self.submit(now, Kind::Bvra(on), format!("AT+BVRA={}", u8::from(on)))
    }

    /// Reports the car's speaker gain, 0 to 15 (`AT+VGS=<n>`).
    pub fn set_speaker_volume(&mut self, now: Instant, level: u8) -> Result<(), Error> {
        if level > 15 {
            return Err(Error::OutOfRange(level));
        }
        self.submit(now, Kind::Vgs(level), format!("AT+VGS={level}"))
    }

    /// Reports the car's microphone gain, 0 to 15 (`AT+VGM=<n>`).
    pub fn set_mic_volume(&mut self, now: Instant, level: u8) -> Result<(), Error> {
        if level > 15 {
            return Err(Error::OutOfRange(level));
        }
        self.submit(now, Kind::Vgm(level), format!("AT+VGM={level}"))
    }

    /// Asks for the network operator name (`AT+COPS=3,0` once, then `AT+COPS?`); the answer
    /// arrives as [`Event::Operator`].
    pub fn query_operator(&mut self, now: Instant) -> Result<(), Error> {
        if !self.cops_format_set {
            self.submit(now, Kind::CopsFormat, "AT+COPS=3,0".into())?;
            self.cops_format_set = true;
        }
        self.submit(now, Kind::CopsRead, "AT+COPS?".into())
    }

    /// Asks for the phone's own number (`AT+CNUM`); answered by [`Event::Subscriber`].
    pub fn query_subscriber_number(&mut self, now: Instant) -> Result<(), Error> {
        self.submit(now, Kind::Cnum, "AT+CNUM".into())
    }

    /// Refreshes the call list (`AT+CLCC`); changes arrive as call events.
    pub fn query_calls(&mut self, now: Instant) -> Result<(), Error> {
        self.submit(now, Kind::Clcc, "AT+CLCC".into())
    }

    /// Asks the phone to set up the audio connection with codec negotiation (`AT+BCC`).
    pub fn connect_codec(&mut self, now: Instant) -> Result<(), Error> {
        if !self.codec_negotiation() {
            return Err(Error::NotSupported("codec negotiation"));
        }
        self.submit(now, Kind::Plain, "AT+BCC".into())
    }

    /// Changes the codecs offered to the phone and, on a connected link with codec
    /// negotiation, tells it with `AT+BAC` (HFP 1.8 §4.11.3: the phone's next `+BCS` picks
    /// from these). CVSD is always offered. Used to fall back to CVSD when wide band keeps
    /// failing on a link.
    pub fn set_codecs(&mut self, now: Instant, codecs: Vec<Codec>) -> Result<(), Error> {
        self.config.codecs = codecs;
        if !self.codec_negotiation() {
            return Ok(());
        }
        self.queue.retain(|c| !matches!(c.kind, Kind::BacUpdate));
        let line = self.bac_line();
        self.submit(now, Kind::BacUpdate, line)
    }

    /// Reports the car's battery level in percent, with `AT+BIEV=2,<n>` when the phone
    /// enabled the battery HF indicator and/or `AT+IPHONEACCEV` to an iPhone.
    pub fn set_battery_level(&mut self, now: Instant, percent: u8) -> Result<(), Error> {
        if percent > 100 {
            return Err(Error::OutOfRange(percent));
        }
        self.ensure_connected()?;
        let biev = self.hf_indicators_enabled.contains(&HF_INDICATOR_BATTERY);
        let apple = self
            .apple_features
            .is_some_and(|f| f & AppleAccessory::BATTERY != 0)
            && self
                .config
                .apple
                .is_some_and(|a| a.features & AppleAccessory::BATTERY != 0);
        if !biev && !apple {
            return Err(Error::NotSupported("battery reporting"));
        }
        if biev {
            let line = format!("AT+BIEV={HF_INDICATOR_BATTERY},{percent}");
            self.submit(now, Kind::Plain, line)?;
        }
        if apple {
            let level = (percent / 10).min(9);
            self.submit(now, Kind::Plain, format!("AT+IPHONEACCEV=1,1,{level}"))?;
        }
        Ok(())
    }

    /// Calls known to be in progress, by index.
    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// The current value of an indicator by name (`service`, `call`, `callsetup`,
    /// `callheld`, `signal`, `roam`, `battchg`), case and underscores ignored.
    pub fn indicator(&self, name: &str) -> Option<u8> {
        let key = indicator_key(name);
        self.indicators
            .iter()
            .find(|i| i.key == key)
            .map(|i| i.value)
    }

    /// True once the service level connection is established.
    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }

    /// The phone's features from `+BRSF` (empty before it answered).
    pub fn ag_features(&self) -> AgFeatures {
        self.ag_features
    }

    /// The codec agreed in the last codec negotiation.
    pub fn codec(&self) -> Option<Codec> {
        self.codec
    }

    /// The `AT+CHLD` options the phone listed, e.g. `["0", "1", "1x", "2", "2x", "3", "4"]`.
    pub fn chld_options(&self) -> &[String] {
        &self.ag_chld
    }

    // ----- command queue -----

    fn ensure_connected(&self) -> Result<(), Error> {
        if self.phase == Phase::Connected {
            Ok(())
        } else {
            Err(Error::NotConnected)
        }
    }

    /// Queues a caller's command, bounded by the configured capacity.
    fn submit(&mut self, now: Instant, kind: Kind, line: String) -> Result<(), Error> {
        self.ensure_connected()?;
        if self.queue.len() >= self.config.command_queue_capacity {
            return Err(Error::QueueFull);
        }
        self.queue.push_back(Command { kind, line });
        self.pump(now);
        Ok(())
    }

    /// Queues an internal command. These are few by construction (SLC steps, deduplicated
    /// `AT+CLCC` and `AT+BCS`), but a hard bound still protects against a hostile phone.
    fn enqueue(&mut self, kind: Kind, line: String) {
        if self.queue.len() >= self.config.command_queue_capacity.saturating_mul(2).max(16) {
            self.violation(format!("command queue overflow, dropped {line}"));
            return;
        }
        self.queue.push_back(Command { kind, line });
    }

    /// Sends the next queued command if none is in flight.
    fn pump(&mut self, now: Instant) {
        if self.in_flight.is_some() {
            return;
        }
        let Some(cmd) = self.queue.pop_front() else {
            return;
        };
        match cmd.kind {
            Kind::Chld(c) => self.last_chld = Some(c),
            Kind::Dial => {
                self.last_dialed = cmd
                    .line
                    .strip_prefix("ATD")
                    .and_then(|n| n.strip_suffix(';'))
                    .filter(|n| !n.starts_with('>'))
                    .map(str::to_owned);
            }
            Kind::Clcc => self.clcc_rows.clear(),
            _ => {}
        }
        let mut bytes = cmd.line.clone().into_bytes();
        bytes.push(b'\r');
        self.transmit.push_back(bytes);
        let deadline = now + self.config.command_timeout;
        self.in_flight = Some(InFlight {
            kind: cmd.kind,
            line: cmd.line,
            deadline,
        });
    }

    /// Finishes the command in flight with its final result.
    fn complete(&mut self, result: Result<(), Error>, line: &str) {
        let Some(cmd) = self.in_flight.take() else {
            self.violation(format!("final result {line} with no command in flight"));
            return;
        };
        match result {
            Ok(()) => self.on_success(&cmd),
            Err(error) => self.on_failure(&cmd, error),
        }
        if self.phase == Phase::Slc && !self.queue.iter().any(|c| c.kind.is_slc()) {
            self.slc_established();
        }
    }

    fn on_success(&mut self, cmd: &InFlight) {
        match cmd.kind {
            Kind::Brsf => self.queue_slc_steps(),
            Kind::CindTest if self.indicators.is_empty() => {
                self.slc_failed(Error::PeerError("no indicators in +CIND".into()));
            }
            Kind::Bcs(codec) => {
                self.codec = Some(codec);
                self.push_event(Event::CodecSelected(codec));
            }
            Kind::Bvra(on) => self.push_event(Event::VoiceRecognition(on)),
            Kind::Vgs(level) => {
                self.push_event(Event::Volume {
                    target: VolumeTarget::Speaker,
                    level,
                });
            }
            Kind::Vgm(level) => self.push_event(Event::Volume {
                target: VolumeTarget::Mic,
                level,
            }),
            Kind::Clcc => {
                let rows = std::mem::take(&mut self.clcc_rows);
                self.reconcile(rows);
            }
            _ => {}
        }
    }

    fn on_failure(&mut self, cmd: &InFlight, error: Error) {
        self.push_event(Event::CommandFailed {
            command: cmd.line.clone(),
            error: error.clone(),
        });
        match cmd.kind {
            kind if self.phase == Phase::Slc && kind.is_mandatory() => self.slc_failed(error),
            Kind::Clcc => {
                // A phone that never sends the final OK still sent its rows: use them.
                let rows = std::mem::take(&mut self.clcc_rows);
                if rows.is_empty() {
                    self.reconcile_from_indicators();
                } else {
                    self.reconcile(rows);
                }
            }
            Kind::CopsFormat => self.cops_format_set = false,
            Kind::Dial => self.last_dialed = None,
            _ => {}
        }
    }

    // ----- service level connection -----

    fn codec_negotiation(&self) -> bool {
        self.config.features.contains(HfFeatures::CODEC_NEGOTIATION)
            && self.ag_features.contains(AgFeatures::CODEC_NEGOTIATION)
    }

    fn enhanced_call_status(&self) -> bool {
        self.config
            .features
            .contains(HfFeatures::ENHANCED_CALL_STATUS)
            && self.ag_features.contains(AgFeatures::ENHANCED_CALL_STATUS)
    }

    /// Codecs offered: the configured ones, CVSD first if missing.
    fn offered_codecs(&self) -> Vec<Codec> {
        let mut codecs = self.config.codecs.clone();
        if !codecs.contains(&Codec::Cvsd) {
            codecs.insert(0, Codec::Cvsd);
        }
        codecs.dedup();
        codecs
    }

    fn bac_line(&self) -> String {
        let ids: Vec<_> = self
            .offered_codecs()
            .iter()
            .map(|c| c.id().to_string())
            .collect();
        format!("AT+BAC={}", ids.join(","))
    }

    fn queue_slc_steps(&mut self) {
        let hf = self.config.features;
        let ag = self.ag_features;
        if self.codec_negotiation() {
            let line = self.bac_line();
            self.enqueue(Kind::Bac, line);
        }
        self.enqueue(Kind::CindTest, "AT+CIND=?".into());
        self.enqueue(Kind::CindRead, "AT+CIND?".into());
        self.enqueue(Kind::Cmer, "AT+CMER=3,0,0,1".into());
        if hf.contains(HfFeatures::THREE_WAY) && ag.contains(AgFeatures::THREE_WAY) {
            self.enqueue(Kind::ChldTest, "AT+CHLD=?".into());
        }
        if hf.contains(HfFeatures::HF_INDICATORS)
            && ag.contains(AgFeatures::HF_INDICATORS)
            && !self.config.hf_indicators.is_empty()
        {
            let ids: Vec<_> = self
                .config
                .hf_indicators
                .iter()
                .map(u16::to_string)
                .collect();
            self.enqueue(Kind::Bind, format!("AT+BIND={}", ids.join(",")));
            self.enqueue(Kind::BindTest, "AT+BIND=?".into());
            self.enqueue(Kind::BindRead, "AT+BIND?".into());
        }
    }

    fn slc_failed(&mut self, reason: Error) {
        self.phase = Phase::Failed;
        self.queue.clear();
        self.push_event(Event::SlcFailed { reason });
    }

    fn slc_established(&mut self) {
        self.phase = Phase::Connected;
        let codecs = if self.codec_negotiation() {
            self.offered_codecs()
        } else {
            vec![Codec::Cvsd]
        };
        self.push_event(Event::SlcConnected {
            ag_features: self.ag_features,
            codecs,
        });
        let hf = self.config.features;
        let ag = self.ag_features;
        if ag.contains(AgFeatures::EXTENDED_ERRORS) {
            self.enqueue(Kind::Setup, "AT+CMEE=1".into());
        }
        if hf.contains(HfFeatures::CLI) {
            self.enqueue(Kind::Setup, "AT+CLIP=1".into());
        }
        if hf.contains(HfFeatures::THREE_WAY) && ag.contains(AgFeatures::THREE_WAY) {
            self.enqueue(Kind::Setup, "AT+CCWA=1".into());
        }
        if self.config.echo_cancelling && ag.contains(AgFeatures::EC_NR) {
            self.enqueue(Kind::Setup, "AT+NREC=0".into());
        }
        if let Some(a) = self.config.apple {
            let line = format!(
                "AT+XAPL={:04X}-{:04X}-{:04X},{}",
                a.vendor_id, a.product_id, a.version, a.features
            );
            self.enqueue(Kind::Xapl, line);
        }
        let busy = ["call", "callsetup", "callheld"]
            .iter()
            .any(|n| self.indicator(n).unwrap_or(0) != 0);
        if busy {
            if self.enhanced_call_status() {
                self.request_clcc();
            } else {
                self.calls_from_indicators();
            }
        }
    }

    // ----- incoming lines -----

    fn handle_line(&mut self, line: String) {
        match at::parse_response(&line) {
            Response::Ok => self.complete(Ok(()), &line),
            Response::Error => self.complete(Err(Error::PeerError("ERROR".into())), &line),
            Response::CmeError(n) => {
                self.complete(Err(Error::Cme(CmeError::from_code(n))), &line);
            }
            Response::Failure(what) => {
                if self.in_flight.is_some() {
                    self.complete(Err(Error::PeerError(what.to_owned())), &line);
                } else {
                    self.push_event(Event::Unsolicited(line.clone()));
                }
            }
            Response::Ring => self.on_ring(),
            Response::Result { name, value } => self.on_result(&name, value, &line),
            Response::Other(_) => self.push_event(Event::Unsolicited(line.clone())),
        }
    }

    fn in_flight_kind(&self) -> Option<Kind> {
        self.in_flight.as_ref().map(|f| f.kind)
    }

    fn on_result(&mut self, name: &str, value: &str, line: &str) {
        let f = at::fields(value);
        let first = f.first().and_then(|s| at::number::<u32>(s));
        match name {
            "BRSF" => match first {
                Some(bits) => self.ag_features = AgFeatures(bits),
                None => self.violation(format!("bad {line}")),
            },
            "CIND" => self.on_cind(value, line),
            "CIEV" => self.on_ciev(&f, line),
            "CHLD" => self.ag_chld = at::parse_list(value),
            "BIND" => self.on_bind(value, &f),
            "CLCC" => self.on_clcc(&f, line),
            "CLIP" => self.on_caller_id(&f, 4, CallState::Incoming),
            "CCWA" => self.on_caller_id(&f, 3, CallState::Waiting),
            "BCS" => self.on_bcs(first, line),
            "BVRA" => match first {
                Some(v) => self.push_event(Event::VoiceRecognition(v != 0)),
                None => self.violation(format!("bad {line}")),
            },
            "VGS" | "VGM" => match first
                .and_then(|v| u8::try_from(v).ok())
                .filter(|&v| v <= 15)
            {
                Some(level) => {
                    let target = if name == "VGS" {
                        VolumeTarget::Speaker
                    } else {
                        VolumeTarget::Mic
                    };
                    self.push_event(Event::Volume { target, level });
                }
                None => self.violation(format!("bad {line}")),
            },
            "BSIR" => match first {
                Some(v) => self.push_event(Event::InBandRing(v != 0)),
                None => self.violation(format!("bad {line}")),
            },
            "BTRH" => match first.and_then(|v| u8::try_from(v).ok()) {
                Some(v) => self.push_event(Event::ResponseAndHold(v)),
                None => self.violation(format!("bad {line}")),
            },
            "COPS" => {
                let name = f.get(2).filter(|s| !s.is_empty()).cloned();
                self.push_event(Event::Operator(name));
            }
            "CNUM" => match f.get(1).filter(|s| !s.is_empty()) {
                Some(number) => self.push_event(Event::Subscriber(number.clone())),
                None => self.violation(format!("bad {line}")),
            },
            "XAPL" => self.apple_features = f.get(1).and_then(|s| at::number(s)),
            _ => self.push_event(Event::Unsolicited(line.to_owned())),
        }
    }

    fn on_cind(&mut self, value: &str, line: &str) {
        let is_test = value.contains('(') || value.contains('"');
        if is_test {
            if self.in_flight_kind() != Some(Kind::CindTest) {
                self.violation(format!("unexpected {line}"));
                return;
            }
            self.indicators = at::parse_cind_test(value)
                .into_iter()
                .map(|s| Indicator {
                    key: indicator_key(&s.name),
                    name: s.name,
                    min: s.min,
                    max: s.max,
                    value: 0,
                })
                .collect();
            return;
        }
        let values: Vec<Option<u8>> = at::fields(value).iter().map(|s| at::number(s)).collect();
        if values.len() != self.indicators.len() || values.iter().any(Option::is_none) {
            self.violation(format!("+CIND values do not match indicators: {line}"));
        }
        for (i, v) in values.into_iter().enumerate() {
            let Some(v) = v else { continue };
            let Some(ind) = self.indicators.get_mut(i) else {
                break;
            };
            ind.value = v;
            let name = ind.name.clone();
            self.push_event(Event::Indicator { name, value: v });
        }
    }

    fn on_ciev(&mut self, f: &[String], line: &str) {
        let index = f.first().and_then(|s| at::number::<usize>(s));
        let value = f.get(1).and_then(|s| at::number::<u8>(s));
        let (Some(index), Some(value)) = (index, value) else {
            self.violation(format!("bad {line}"));
            return;
        };
        let Some(ind) = index
            .checked_sub(1)
            .and_then(|i| self.indicators.get_mut(i))
        else {
            self.violation(format!("unknown indicator in {line}"));
            return;
        };
        let old = ind.value;
        if value < ind.min || value > ind.max {
            let what = format!("{} value {value} outside {}-{}", ind.name, ind.min, ind.max);
            ind.value = value;
            self.violation(what);
        }
        let Some(ind) = self.indicators.get_mut(index - 1) else {
            return;
        };
        ind.value = value;
        if old == value {
            return;
        }
        let (name, key) = (ind.name.clone(), ind.key.clone());
        self.push_event(Event::Indicator { name, value });
        if self.phase != Phase::Connected
            || !matches!(key.as_str(), "call" | "callsetup" | "callheld")
        {
            return;
        }
        if self.enhanced_call_status() {
            if key == "call" && value == 0 && self.indicator("callsetup") == Some(0) {
                self.end_calls(|c| !c.state.is_setup());
            }
            self.request_clcc();
        } else {
            self.call_indicator_changed(&key, old, value);
        }
    }

    fn on_bind(&mut self, value: &str, f: &[String]) {
        if value.contains('(') {
            self.ag_hf_indicators = at::parse_list(value)
                .iter()
                .filter_map(|s| at::number(s))
                .collect();
            return;
        }
        let id = f.first().and_then(|s| at::number::<u16>(s));
        let state = f.get(1).and_then(|s| at::number::<u8>(s));
        let (Some(id), Some(state)) = (id, state) else {
            self.violation(format!("bad +BIND: {value}"));
            return;
        };
        let enabled = state != 0;
        let was = self.hf_indicators_enabled.contains(&id);
        if enabled && !was {
            self.hf_indicators_enabled.push(id);
        } else if !enabled {
            self.hf_indicators_enabled.retain(|&i| i != id);
        }
        if enabled != was {
            self.push_event(Event::HfIndicator { id, enabled });
        }
    }

    fn on_bcs(&mut self, id: Option<u32>, line: &str) {
        let Some(id) = id.and_then(|id| u8::try_from(id).ok()) else {
            self.violation(format!("bad {line}"));
            return;
        };
        self.queue
            .retain(|c| !matches!(c.kind, Kind::Bcs(_) | Kind::BacUpdate));
        match Codec::from_id(id).filter(|c| self.offered_codecs().contains(c)) {
            Some(codec) => self.enqueue(Kind::Bcs(codec), format!("AT+BCS={id}")),
            // Unknown or not offered: tell the phone again what we support (HFP 4.11.3).
            None => {
                let line = self.bac_line();
                self.enqueue(Kind::BacUpdate, line);
            }
        }
    }

    // ----- calls -----

    /// Queues `AT+CLCC` unless one is already waiting to be sent, or one is in flight and the
    /// phone has not started answering it (its answer will then include this change).
    fn request_clcc(&mut self) {
        let unanswered = self.in_flight_kind() == Some(Kind::Clcc) && self.clcc_rows.is_empty();
        if !unanswered && !self.queue.iter().any(|c| c.kind == Kind::Clcc) {
            self.enqueue(Kind::Clcc, "AT+CLCC".into());
        }
    }

    /// A `+CLCC` answer is on its way; don't invent calls that it will report.
    fn clcc_pending(&self) -> bool {
        self.in_flight_kind() == Some(Kind::Clcc) || self.queue.iter().any(|c| c.kind == Kind::Clcc)
    }

    fn on_clcc(&mut self, f: &[String], line: &str) {
        if self.in_flight_kind() != Some(Kind::Clcc) {
            self.push_event(Event::Unsolicited(line.to_owned()));
            return;
        }
        let num = |i: usize| f.get(i).and_then(|s| at::number::<u8>(s));
        let (Some(index), Some(dir), Some(state)) =
            (num(0), num(1), num(2).and_then(CallState::from_clcc))
        else {
            self.violation(format!("bad {line}"));
            return;
        };
        let text = |i: usize| f.get(i).filter(|s| !s.is_empty()).cloned();
        self.clcc_rows.push(Call {
            index,
            direction: if dir == 0 {
                Direction::Outgoing
            } else {
                Direction::Incoming
            },
            state,
            number: text(5),
            name: text(7),
            multiparty: num(4) == Some(1),
        });
    }

    /// `+CLIP` (name at field 4) or `+CCWA` (name at field 3).
    fn on_caller_id(&mut self, f: &[String], name_field: usize, state: CallState) {
        let number = f.first().filter(|s| !s.is_empty()).cloned();
        let name = f.get(name_field).filter(|s| !s.is_empty()).cloned();
        if let Some(n) = &number {
            self.last_clip = Some((n.clone(), name.clone()));
        }
        let pos = match self.calls.iter().position(|c| c.state == state) {
            Some(pos) => pos,
            None if self.may_invent_call(state) => {
                let pos = self.add_call(state, Direction::Incoming, number.clone());
                if let Some(call) = self.calls.get_mut(pos) {
                    call.name = name;
                }
                return;
            }
            None => return,
        };
        let Some(call) = self.calls.get_mut(pos) else {
            return;
        };
        let mut updated = call.clone();
        updated.number = number.or(updated.number);
        updated.name = name.or(updated.name);
        if updated != *call {
            *call = updated.clone();
            self.push_event(Event::CallChanged(updated));
        }
    }

    /// Whether a `RING`, `+CLIP` or `+CCWA` may create a call not yet seen in indicators.
    fn may_invent_call(&self, state: CallState) -> bool {
        if self.phase != Phase::Connected || self.clcc_pending() {
            return false;
        }
        match state {
            CallState::Incoming => !self.calls.iter().any(|c| !c.state.is_setup()),
            _ => !self.calls.iter().any(|c| c.state == state),
        }
    }

    fn on_ring(&mut self) {
        let pos = match self
            .calls
            .iter()
            .position(|c| c.state == CallState::Incoming)
        {
            Some(pos) => Some(pos),
            None if self.may_invent_call(CallState::Incoming) => {
                Some(self.add_call(CallState::Incoming, Direction::Incoming, None))
            }
            None => None,
        };
        let (number, name) = match pos.and_then(|p| self.calls.get(p)) {
            Some(c) if c.number.is_some() => (c.number.clone(), c.name.clone()),
            _ if self.clcc_pending() => self
                .last_clip
                .clone()
                .map_or((None, None), |(n, m)| (Some(n), m)),
            _ => (None, None),
        };
        self.push_event(Event::Ring { number, name });
    }

    /// Adds a call with the lowest free index; returns its position.
    fn add_call(
        &mut self,
        state: CallState,
        direction: Direction,
        number: Option<String>,
    ) -> usize {
        let index = (1..=u8::MAX)
            .find(|i| !self.calls.iter().any(|c| c.index == *i))
            .unwrap_or(u8::MAX);
        let call = Call {
            index,
            direction,
            state,
            number,
            name: None,
            multiparty: false,
        };
        self.calls.push(call.clone());
        self.push_event(Event::CallAdded(call));
        self.calls.len() - 1
    }

    fn set_state(&mut self, pos: usize, state: CallState) {
        let Some(call) = self.calls.get_mut(pos) else {
            return;
        };
        if call.state != state {
            call.state = state;
            let call = call.clone();
            self.push_event(Event::CallChanged(call));
        }
    }

    /// Sets the state of every call in state `from`.
    fn move_calls(&mut self, from: CallState, to: CallState) {
        for pos in 0..self.calls.len() {
            if self.calls.get(pos).is_some_and(|c| c.state == from) {
                self.set_state(pos, to);
            }
        }
    }

    fn end_calls(&mut self, pred: impl Fn(&Call) -> bool) {
        let (ended, kept): (Vec<Call>, Vec<Call>) = std::mem::take(&mut self.calls)
            .into_iter()
            .partition(|c| pred(c));
        self.calls = kept;
        for mut call in ended {
            call.state = CallState::Ended;
            self.push_event(Event::CallEnded(call));
        }
    }

    fn has_call(&self, state: CallState) -> bool {
        self.calls.iter().any(|c| c.state == state)
    }

    fn find_call(&self, state: CallState) -> Option<usize> {
        self.calls.iter().position(|c| c.state == state)
    }

    /// Applies an `AT+CLCC` answer: it is the phone's complete list.
    fn reconcile(&mut self, rows: Vec<Call>) {
        self.end_calls(|c| !rows.iter().any(|r| r.index == c.index));
        for mut row in rows {
            match self.calls.iter_mut().find(|c| c.index == row.index) {
                Some(call) => {
                    row.number = row.number.or_else(|| call.number.clone());
                    row.name = row.name.or_else(|| call.name.clone());
                    let changed = *call != row;
                    *call = row.clone();
                    if changed {
                        self.push_event(Event::CallChanged(row));
                    }
                }
                None => {
                    if row.name.is_none()
                        && let Some((number, name)) = &self.last_clip
                        && row.number.as_ref() == Some(number)
                    {
                        row.name.clone_from(name);
                    }
                    self.calls.push(row.clone());
                    self.push_event(Event::CallAdded(row));
                }
            }
        }
        self.calls.sort_by_key(|c| c.index);
    }

    /// Without a usable `+CLCC` answer, at least drop calls the indicators say are gone.
    fn reconcile_from_indicators(&mut self) {
        let call = self.indicator("call").unwrap_or(0);
        let setup = self.indicator("callsetup").unwrap_or(0);
        if call == 0 {
            self.end_calls(|c| !c.state.is_setup());
        }
        if setup == 0 {
            self.end_calls(|c| c.state.is_setup());
        }
        if self.calls.is_empty() && (call != 0 || setup != 0) {
            self.calls_from_indicators();
        }
    }

    /// Builds calls from the indicators alone (at connection, without enhanced call status).
    fn calls_from_indicators(&mut self) {
        let call = self.indicator("call").unwrap_or(0);
        let setup = self.indicator("callsetup").unwrap_or(0);
        let held = self.indicator("callheld").unwrap_or(0);
        if call != 0 {
            let state = if held == 2 {
                CallState::Held
            } else {
                CallState::Active
            };
            self.add_call(state, Direction::Incoming, None);
            if held == 1 {
                self.add_call(CallState::Held, Direction::Incoming, None);
            }
        }
        match setup {
            1 if call != 0 => drop(self.add_call(CallState::Waiting, Direction::Incoming, None)),
            1 => drop(self.add_call(CallState::Incoming, Direction::Incoming, None)),
            2 => drop(self.add_call(CallState::Dialing, Direction::Outgoing, None)),
            3 => drop(self.add_call(CallState::Alerting, Direction::Outgoing, None)),
            _ => {}
        }
    }

    /// Follows `call`, `callsetup` and `callheld` when `+CLCC` is not available (HFP 4.13-4.22).
    fn call_indicator_changed(&mut self, key: &str, old: u8, new: u8) {
        use CallState::{Active, Alerting, Dialing, Held, Incoming, Waiting};
        // Only valid for the `call` change that immediately follows the `callsetup` change.
        let recently_ended = self.recently_ended.take();
        match (key, new) {
            ("call", 0) => {
                self.end_calls(|c| !c.state.is_setup());
                self.move_calls(Waiting, Incoming);
            }
            ("call", _) if old == 0 => {
                let setup = self
                    .calls
                    .iter()
                    .position(|c| matches!(c.state, Incoming | Dialing | Alerting));
                if let Some(pos) = setup {
                    self.set_state(pos, Active);
                } else if let Some(mut call) = recently_ended {
                    call.state = Active;
                    self.calls.push(call.clone());
                    self.push_event(Event::CallAdded(call));
                } else if !self.has_call(Active) && !self.has_call(Held) {
                    self.add_call(Active, Direction::Incoming, None);
                }
            }
            ("callsetup", 0) => self.setup_ended(),
            ("callsetup", 1) => {
                self.last_chld = None;
                if !self.has_call(Incoming) && !self.has_call(Waiting) {
                    let busy = self.has_call(Active)
                        || self.has_call(Held)
                        || self.indicator("call") == Some(1);
                    let state = if busy { Waiting } else { Incoming };
                    self.add_call(state, Direction::Incoming, None);
                }
            }
            ("callsetup", 2) if !self.has_call(Dialing) && !self.has_call(Alerting) => {
                let number = self.last_dialed.take();
                self.add_call(Dialing, Direction::Outgoing, number);
            }
            ("callsetup", 3) => {
                if let Some(pos) = self.find_call(Dialing) {
                    self.set_state(pos, Alerting);
                } else if !self.has_call(Alerting) {
                    let number = self.last_dialed.take();
                    self.add_call(Alerting, Direction::Outgoing, number);
                }
            }
            ("callheld", 0) => match self.last_chld {
                Some(Chld::ReleaseActiveAcceptOther) => {
                    self.end_calls(|c| c.state == Active);
                    self.move_calls(Held, Active);
                }
                Some(Chld::AddHeldToConversation) => {
                    self.move_calls(Held, Active);
                    for c in &mut self.calls {
                        c.multiparty = true;
                    }
                }
                _ if !self.has_call(Active) => self.move_calls(Held, Active),
                _ => self.end_calls(|c| c.state == Held),
            },
            ("callheld", 1) => {
                if let Some(waiting) = self.find_call(Waiting) {
                    self.move_calls(Active, Held);
                    self.set_state(waiting, Active);
                }
            }
            ("callheld", 2) => {
                if self.has_call(Held) {
                    self.end_calls(|c| c.state == Active);
                } else {
                    self.move_calls(Active, Held);
                }
            }
            _ => {}
        }
    }

    /// `callsetup` went to 0: calls still being set up were either connected or are gone.
    fn setup_ended(&mut self) {
        use CallState::{Active, Held, Waiting};
        if let Some(waiting) = self.find_call(Waiting) {
            match self.last_chld {
                Some(Chld::HoldActiveAcceptOther) => {
                    self.move_calls(Active, Held);
                    self.set_state(waiting, Active);
                }
                Some(Chld::ReleaseActiveAcceptOther) => {
                    self.end_calls(|c| c.state == Active);
                    if let Some(pos) = self.find_call(Waiting) {
                        self.set_state(pos, Active);
                    }
                }
                _ => self.end_calls(|c| c.state == Waiting),
            }
        }
        let call_up = self.indicator("call") == Some(1);
        let outgoing = |c: &Call| matches!(c.state, CallState::Dialing | CallState::Alerting);
        if call_up && !self.has_call(Active) {
            // An outgoing call placed while another was held got answered.
            if let Some(pos) = self.calls.iter().position(outgoing) {
                self.set_state(pos, Active);
            }
        }
        if !call_up {
            self.recently_ended = self
                .calls
                .iter()
                .rev()
                .find(|c| c.state.is_setup())
                .cloned();
        }
        self.end_calls(|c| c.state.is_setup());
    }

    // ----- events -----

    fn violation(&mut self, what: String) {
        self.push_event(Event::ProtocolViolation(what));
    }

    /// Queues an event. When the queue is full the event is dropped and counted; the count is
    /// delivered as [`Event::EventsDropped`] before the next event that fits.
    fn push_event(&mut self, event: Event) {
        let cap = self.config.event_queue_capacity.max(2);
        if self.events_dropped > 0 && self.events.len() + 1 < cap {
            let n = std::mem::take(&mut self.events_dropped);
            self.events.push_back(Event::EventsDropped(n));
        }
        if self.events.len() >= cap || self.events_dropped > 0 {
            self.events_dropped += 1;
        } else {
            self.events.push_back(event);
        }
    }
}

/// Lookup key of an indicator name: lower case, without underscores.
fn indicator_key(name: &str) -> String {
    name.chars()
        .filter(|&c| c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}
