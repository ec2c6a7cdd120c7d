//! Sans-IO Audio Gateway (the phone side of the Hands-Free Profile).
//!
//! [`AudioGateway`] answers the AT commands a car kit sends over RFCOMM and produces
//! the unsolicited results a phone would (`+CIEV`, `RING`, `+CLIP`, `+CCWA`, `+BCS`,
//! `+BVRA`, `+VGS`). It owns no socket and no clock: bytes go in through
//! [`AudioGateway::handle_input`], time through `now` arguments, and the caller drains
//! the outputs in this order after every input, action or timeout:
//! [`AudioGateway::poll_transmit`] (bytes for the car), [`AudioGateway::poll_timeout`]
//! (when to call [`AudioGateway::handle_timeout`] next), [`AudioGateway::poll_event`]
//! (what the car did).
//!
//! It is deliberately independent of `codriver-hfp` so it can play phones that bend
//! the rules; the quirks are chosen with a [`Profile`].
//!
//! Every queue is bounded: a line longer than [`MAX_LINE_LEN`] is discarded and
//! answered with `ERROR`, pending output is capped at [`MAX_PENDING_TRANSMIT`] bytes
//! and events at [`MAX_PENDING_EVENTS`]; what does not fit is dropped and counted.

mod call;
mod profile;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

pub use call::{Call, CallState, Direction};
pub use profile::{Indicator, Profile, UnknownProfile};

use call::number_type;

/// AG supported-feature bits of `+BRSF` (HFP 1.8 §4.34.1).
pub mod features {
    /// Three-way calling (`AT+CHLD`).
    pub const THREE_WAY_CALLING: u32 = 0x0001;
    /// Echo cancelling and/or noise reduction (`AT+NREC`).
    pub const EC_NR: u32 = 0x0002;
    /// Voice recognition (`AT+BVRA`).
    pub const VOICE_RECOGNITION: u32 = 0x0004;
    /// In-band ring tone.
    pub const IN_BAND_RING: u32 = 0x0008;
    /// Attach a number to a voice tag (`AT+BINP`).
    pub const VOICE_TAG: u32 = 0x0010;
    /// Ability to reject a call.
    pub const REJECT_CALL: u32 = 0x0020;
    /// Enhanced call status (`AT+CLCC`).
    pub const ENHANCED_CALL_STATUS: u32 = 0x0040;
    /// Enhanced call control (`AT+CHLD=1x`, `2x`).
    pub const ENHANCED_CALL_CONTROL: u32 = 0x0080;
    /// Extended error result codes (`+CME ERROR`).
    pub const EXTENDED_ERROR: u32 = 0x0100;
    /// Codec negotiation (`AT+BAC`, `+BCS`).
    pub const CODEC_NEGOTIATION: u32 = 0x0200;
    /// HF indicators (`AT+BIND`, `AT+BIEV`).
    pub const HF_INDICATORS: u32 = 0x0400;
    /// eSCO S4 settings.
    pub const ESCO_S4: u32 = 0x0800;
}

/// HF supported-feature bits of `AT+BRSF=` that change the gateway's behaviour
/// (HFP 1.8 §4.34.1).
pub mod hf_features {
    /// EC and/or NR function.
    pub const EC_NR: u32 = 0x0001;
    /// Three-way calling: the HF sends `AT+CHLD=?` during SLC setup.
    pub const THREE_WAY_CALLING: u32 = 0x0002;
    /// CLI presentation.
    pub const CLI_PRESENTATION: u32 = 0x0004;
    /// Voice recognition activation.
    pub const VOICE_RECOGNITION: u32 = 0x0008;
    /// Remote volume control.
    pub const REMOTE_VOLUME: u32 = 0x0010;
    /// Enhanced call status.
    pub const ENHANCED_CALL_STATUS: u32 = 0x0020;
    /// Enhanced call control.
    pub const ENHANCED_CALL_CONTROL: u32 = 0x0040;
    /// Codec negotiation.
    pub const CODEC_NEGOTIATION: u32 = 0x0080;
    /// HF indicators: the HF sends `AT+BIND` during SLC setup.
    pub const HF_INDICATORS: u32 = 0x0100;
    /// eSCO S4 settings.
    pub const ESCO_S4: u32 = 0x0200;
}

/// Codec id of CVSD, the narrowband default (HFP 1.8 Appendix B).
pub const CODEC_CVSD: u8 = 0x01;
/// Codec id of mSBC, wideband speech.
pub const CODEC_MSBC: u8 = 0x02;

/// Longest command line kept; longer ones are discarded and answered with `ERROR`.
pub const MAX_LINE_LEN: usize = 512;
/// Cap on bytes waiting in [`AudioGateway::poll_transmit`].
pub const MAX_PENDING_TRANSMIT: usize = 64 * 1024;
/// Cap on events waiting in [`AudioGateway::poll_event`]; the oldest is dropped.
pub const MAX_PENDING_EVENTS: usize = 256;
/// Most simultaneous calls (indexes 1..=7, as GSM allows).
pub const MAX_CALLS: usize = 7;
/// Most phonebook memory locations for `ATD>n;`.
pub const MAX_MEMORY_ENTRIES: usize = 64;
/// Time between `RING`s while an incoming call is unanswered.
pub const RING_INTERVAL: Duration = Duration::from_secs(3);

/// Something the car (HF) did, reported by [`AudioGateway::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgEvent {
    /// The service level connection is complete (after `AT+CMER`, plus `AT+CHLD=?`
    /// and `AT+BIND?` when both sides support those features).
    SlcEstablished,
    /// `AT+BRSF=<n>`: the HF's supported features.
    HfFeatures(u32),
    /// `AT+BAC=…`: the codecs the HF supports.
    AvailableCodecs(Vec<u8>),
    /// `AT+CMER`: indicator reporting switched on or off.
    IndicatorReporting(bool),
    /// `ATA` answered the incoming call.
    CallAnswered,
    /// `AT+CHUP` rejected, cancelled or ended a call.
    CallHungUp,
    /// `ATD<number>;`.
    Dialed(String),
    /// `ATD>n;` dialed phonebook memory location `n`.
    MemoryDialed(u32),
    /// `AT+BLDN` redialed the last number.
    Redialed,
    /// `AT+VTS=<c>`.
    DtmfSent(char),
    /// `AT+CHLD=<arg>` was carried out (`0`, `1`, `1x`, `2`, `2x`, `3`, `4`).
    Chld(String),
    /// `AT+BVRA=<0|1>`.
    VoiceRecognition(bool),
    /// `AT+VGS=<n>`: the car's speaker gain.
    SpeakerVolume(u8),
    /// `AT+VGM=<n>`: the car's microphone gain.
    MicVolume(u8),
    /// `AT+BCS=<id>` confirmed the codec the phone proposed.
    CodecSelected(u8),
    /// `AT+BCC`: the car asked the phone to set up audio.
    CodecConnectionRequested,
    /// The car reported its battery, in percent (`AT+BIEV=2,n`, or
    /// `AT+IPHONEACCEV` level `0..=9` scaled to `10..=100`).
    BatteryReported(u8),
    /// `AT+BIEV=<id>,<value>` for an HF indicator other than battery.
    HfIndicator {
        /// Assigned number of the HF indicator (1 = enhanced safety).
        id: u16,
        /// Reported value.
        value: u32,
    },
    /// `AT+NREC=0`: the car does its own echo cancelling.
    NrecDisabled,
    /// `AT+XAPL=<vendor-product-version>,<features>`.
    AppleAccessory {
        /// The `vendor-product-version` descriptor, as sent.
        device: String,
        /// Apple accessory feature bits the car asked for.
        features: u32,
    },
    /// A command the phone does not know; answered with `ERROR`.
    UnknownCommand(String),
    /// A line exceeded [`MAX_LINE_LEN`] and was discarded.
    InputOverflow,
}

/// Why a scripted action could not be carried out; the gateway is left unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActionError {
    /// The profile does not advertise the feature the action needs.
    #[error("the {profile} profile does not support {feature}")]
    NotSupported {
        /// The gateway's profile.
        profile: Profile,
        /// What is missing.
        feature: &'static str,
    },
    /// The car has not enabled or offered what the action needs.
    #[error("the hands-free unit has not enabled {0}")]
    NotEnabledByHf(&'static str),
    /// No call is in a state the action applies to.
    #[error("no call in a state that allows this action")]
    NoSuchCall,
    /// A call is already ringing or being dialed.
    #[error("a call is already being set up")]
    CallSetupInProgress,
    /// The action needs an idle phone but a call exists.
    #[error("a call is already in progress")]
    CallInProgress,
    /// [`MAX_CALLS`] calls exist already.
    #[error("too many calls")]
    TooManyCalls,
    /// [`MAX_MEMORY_ENTRIES`] phonebook locations are in use.
    #[error("phonebook memory full")]
    MemoryFull,
    /// A value is outside what the indicator or setting allows.
    #[error("{what} value {value} out of range 0..={max}")]
    OutOfRange {
        /// The setting.
        what: &'static str,
        /// The rejected value.
        value: u8,
        /// Highest valid value.
        max: u8,
    },
}

/// The phone side of an HFP service level connection. See the [module docs](self).
#[derive(Debug)]
pub struct AudioGateway {
    profile: Profile,
    /// Bytes of the command line received so far (never more than [`MAX_LINE_LEN`]).
    rx: Vec<u8>,
    /// Dropping the rest of an overlong line until its terminator.
    discarding: bool,
    tx: Vec<u8>,
    events: VecDeque<AgEvent>,
    dropped_transmit_bytes: usize,
    dropped_events: usize,
    hf_features: Option<u32>,
    hf_codecs: Vec<u8>,
    /// HF indicators the car said it supports (`AT+BIND=`).
    hf_indicators: Vec<u16>,
    cmer_done: bool,
    chld_test_done: bool,
    bind_read_done: bool,
    slc_established: bool,
    /// `AT+CMER` indicator reporting.
    reporting: bool,
    /// `AT+BIA` activation per position of the profile's indicator list.
    active_indicators: Vec<bool>,
    clip: bool,
    ccwa: bool,
    cmee: bool,
    service: u8,
    signal: u8,
    roam: u8,
    battery: u8,
    calls: Vec<Call>,
    next_ring: Option<Instant>,
    /// Codec proposed with `+BCS` and not yet confirmed.
    pending_codec: Option<u8>,
    selected_codec: u8,
    voice_recognition: bool,
    speaker_volume: u8,
    mic_volume: u8,
    operator: String,
    own_number: Option<String>,
    last_dialed: Option<String>,
    memory: BTreeMap<u32, String>,
}

impl AudioGateway {
    /// A phone with network service, full signal and battery, no calls, volumes at 8.
    pub fn new(profile: Profile) -> Self {
        Self {
            profile,
            rx: Vec::new(),
            discarding: false,
            tx: Vec::new(),
            events: VecDeque::new(),
            dropped_transmit_bytes: 0,
            dropped_events: 0,
            hf_features: None,
            hf_codecs: Vec::new(),
            hf_indicators: Vec::new(),
            cmer_done: false,
            chld_test_done: false,
            bind_read_done: false,
            slc_established: false,
            reporting: false,
            active_indicators: vec![true; profile.indicators().len()],
            clip: false,
            ccwa: false,
            cmee: false,
            service: 1,
            signal: 5,
            roam: 0,
            battery: 5,
            calls: Vec::new(),
            next_ring: None,
            pending_codec: None,
            selected_codec: CODEC_CVSD,
            voice_recognition: false,
            speaker_volume: 8,
            mic_volume: 8,
            operator: "Sim Mobile".to_owned(),
            own_number: Some("+15550100".to_owned()),
            last_dialed: None,
            memory: BTreeMap::new(),
        }
    }

    /// Feeds bytes received from the car. Commands end with CR (a lone LF also ends
    /// one); they may arrive split or joined in any way.
    ///
    /// `now` is accepted for symmetry with the other inputs; no command needs it yet.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        let _ = now;
        for &byte in bytes {
            if byte == b'\r' || byte == b'\n' {
                if self.discarding {
                    self.discarding = false;
                    self.send_error();
                    continue;
                }
                let raw = std::mem::take(&mut self.rx);
                let line = String::from_utf8_lossy(&raw);
                let line = line.trim();
                if !line.is_empty() {
                    self.handle_line(line);
                }
            } else if self.discarding {
                // Still inside an overlong line.
            } else if self.rx.len() >= MAX_LINE_LEN {
                self.rx.clear();
                self.discarding = true;
                self.push_event(AgEvent::InputOverflow);
            } else {
                self.rx.push(byte);
            }
        }
    }

    /// Bytes to send to the car, everything pending in one chunk.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.tx.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.tx))
        }
    }

    /// When [`AudioGateway::handle_timeout`] should run next (the next `RING`).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_ring
    }

    /// Lets time pass: repeats `RING` (and `+CLIP`) while a call is incoming.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_ring.is_some_and(|at| now >= at) {
            self.send_ring(now);
        }
    }

    /// The next thing the car did, oldest first.
    pub fn poll_event(&mut self) -> Option<AgEvent> {
        self.events.pop_front()
    }

    /// The profile this gateway plays.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// Whether the service level connection is complete.
    pub fn is_slc_established(&self) -> bool {
        self.slc_established
    }

    /// The HF's features from `AT+BRSF=`, once received.
    pub fn hf_features(&self) -> Option<u32> {
        self.hf_features
    }

    /// The HF's codecs from `AT+BAC=`.
    pub fn hf_codecs(&self) -> &[u8] {
        &self.hf_codecs
    }

    /// The codec last confirmed with `AT+BCS` (CVSD until then).
    pub fn selected_codec(&self) -> u8 {
        self.selected_codec
    }

    /// The current calls, in index order.
    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// The current value of an indicator, whether or not the profile reports it.
    pub fn indicator(&self, indicator: Indicator) -> u8 {
        match indicator {
            Indicator::Service => self.service,
            Indicator::Signal => self.signal,
            Indicator::Roam => self.roam,
            Indicator::Battery => self.battery,
            Indicator::Call => u8::from(
                self.calls
                    .iter()
                    .any(|c| matches!(c.state, CallState::Active | CallState::Held)),
            ),
            Indicator::CallSetup => {
                if self.has_state(CallState::Incoming) || self.has_state(CallState::Waiting) {
                    1
                } else if self.has_state(CallState::Dialing) {
                    2
                } else if self.has_state(CallState::Alerting) {
                    3
                } else {
                    0
                }
            }
            Indicator::CallHeld => match (
                self.has_state(CallState::Held),
                self.has_state(CallState::Active),
            ) {
                (false, _) => 0,
                (true, true) => 1,
                (true, false) => 2,
            },
        }
    }

    /// Whether voice recognition is on (from either side).
    pub fn is_voice_recognition_active(&self) -> bool {
        self.voice_recognition
    }

    /// The speaker gain last set by either side.
    pub fn speaker_volume(&self) -> u8 {
        self.speaker_volume
    }

    /// The microphone gain last set by either side.
    pub fn mic_volume(&self) -> u8 {
        self.mic_volume
    }

    /// Output bytes dropped because [`MAX_PENDING_TRANSMIT`] was reached.
    pub fn dropped_transmit_bytes(&self) -> usize {
        self.dropped_transmit_bytes
    }

    /// Events dropped because [`MAX_PENDING_EVENTS`] was reached.
    pub fn dropped_events(&self) -> usize {
        self.dropped_events
    }

    /// A call comes in: `+CIEV` callsetup=1, then `RING` (and `+CLIP` if the car
    /// enabled it) now and every [`RING_INTERVAL`]. Returns the call's index.
    pub fn incoming_call(
        &mut self,
        now: Instant,
        number: &str,
        name: Option<&str>,
    ) -> Result<u8, ActionError> {
        if !self.calls.is_empty() {
            return Err(ActionError::CallInProgress);
        }
        let before = self.indicator_values();
        let index = self.add_call(Direction::Incoming, CallState::Incoming, number, name)?;
        self.report_changes(&before);
        self.send_ring(now);
        Ok(index)
    }

    /// Sends `RING` (and `+CLIP`) now and restarts the ring interval.
    pub fn ring(&mut self, now: Instant) -> Result<(), ActionError> {
        if !self.has_state(CallState::Incoming) {
            return Err(ActionError::NoSuchCall);
        }
        self.send_ring(now);
        Ok(())
    }

    /// A second call arrives during a call: `+CCWA` (if the car enabled it) and
    /// callsetup=1. Returns the waiting call's index.
    pub fn call_waiting(&mut self, number: &str, name: Option<&str>) -> Result<u8, ActionError> {
        if self.calls.iter().any(|c| c.state.is_setup()) {
            return Err(ActionError::CallSetupInProgress);
        }
        if self.calls.is_empty() {
            return Err(ActionError::NoSuchCall);
        }
        let before = self.indicator_values();
        let index = self.add_call(Direction::Incoming, CallState::Waiting, number, name)?;
        if self.ccwa {
            self.send_result(&format!("+CCWA: \"{number}\",{},1", number_type(number)));
        }
        self.report_changes(&before);
        Ok(index)
    }

    /// The callee's phone starts ringing: the dialing call becomes alerting.
    pub fn remote_alerting(&mut self) -> Result<(), ActionError> {
        self.transition(CallState::Dialing, CallState::Alerting)
    }

    /// The callee answers: the dialing or alerting call becomes active.
    pub fn remote_answer(&mut self) -> Result<(), ActionError> {
        self.transition(CallState::Alerting, CallState::Active)
            .or_else(|_| self.transition(CallState::Dialing, CallState::Active))
    }

    /// The remote party hangs up: ends the active calls, else the call being set
    /// up, else the held calls. A waiting call stays.
    pub fn remote_hangup(&mut self) -> Result<(), ActionError> {
        let target = [
            CallState::Active,
            CallState::Incoming,
            CallState::Dialing,
            CallState::Alerting,
            CallState::Held,
        ]
        .into_iter()
        .find(|&s| self.has_state(s))
        .ok_or(ActionError::NoSuchCall)?;
        let before = self.indicator_values();
        self.calls.retain(|c| c.state != target);
        self.after_call_change(&before);
        Ok(())
    }

    /// The remote party of call `index` hangs up.
    pub fn remote_hangup_call(&mut self, index: u8) -> Result<(), ActionError> {
        if !self.calls.iter().any(|c| c.index == index) {
            return Err(ActionError::NoSuchCall);
        }
        let before = self.indicator_values();
        self.calls.retain(|c| c.index != index);
        self.after_call_change(&before);
        Ok(())
    }

    /// The user starts the voice assistant on the phone: `+BVRA: 1`.
    pub fn start_voice_recognition(&mut self) -> Result<(), ActionError> {
        self.set_voice_recognition(true)
    }

    /// The voice assistant finishes: `+BVRA: 0`.
    pub fn stop_voice_recognition(&mut self) -> Result<(), ActionError> {
        self.set_voice_recognition(false)
    }

    /// Proposes a codec with `+BCS: <id>`; the car should confirm with `AT+BCS=<id>`,
    /// reported as [`AgEvent::CodecSelected`].
    pub fn codec_switch(&mut self, codec: u8) -> Result<(), ActionError> {
        self.require(features::CODEC_NEGOTIATION, "codec negotiation")?;
        if self.hf_features.unwrap_or(0) & hf_features::CODEC_NEGOTIATION == 0 {
            return Err(ActionError::NotEnabledByHf("codec negotiation"));
        }
        if !self.hf_codecs.contains(&codec) {
            return Err(ActionError::NotEnabledByHf("that codec (not in AT+BAC)"));
        }
        self.propose_codec(codec);
        Ok(())
    }

    /// Sets the signal strength (0..=5), reported with `+CIEV` if it changed.
    pub fn set_signal(&mut self, level: u8) -> Result<(), ActionError> {
        self.set_indicator(Indicator::Signal, level)
    }

    /// Sets the battery level (0..=5), reported with `+CIEV` if it changed.
    pub fn set_battery(&mut self, level: u8) -> Result<(), ActionError> {
        self.set_indicator(Indicator::Battery, level)
    }

    /// Sets network registration, reported with `+CIEV` if it changed.
    pub fn set_service(&mut self, available: bool) {
        let before = self.indicator_values();
        self.service = u8::from(available);
        self.report_changes(&before);
    }

    /// Sets roaming, reported with `+CIEV` if it changed.
    pub fn set_roam(&mut self, roaming: bool) {
        let before = self.indicator_values();
        self.roam = u8::from(roaming);
        self.report_changes(&before);
    }

    /// The user changes the volume on the phone: `+VGS: <n>` (0..=15).
    pub fn set_speaker_volume(&mut self, level: u8) -> Result<(), ActionError> {
        check_range("speaker volume", level, 15)?;
        self.speaker_volume = level;
        let sep = self.profile.volume_separator();
        self.send_result(&format!("+VGS{sep}{level}"));
        Ok(())
    }

    /// The phone changes the microphone gain: `+VGM: <n>` (0..=15).
    pub fn set_mic_volume(&mut self, level: u8) -> Result<(), ActionError> {
        check_range("microphone volume", level, 15)?;
        self.mic_volume = level;
        let sep = self.profile.volume_separator();
        self.send_result(&format!("+VGM{sep}{level}"));
        Ok(())
    }

    /// Network operator name for `AT+COPS?`.
    pub fn set_operator(&mut self, name: &str) {
        name.clone_into(&mut self.operator);
    }

    /// Subscriber number for `AT+CNUM` (`None`: answer with a bare `OK`).
    pub fn set_own_number(&mut self, number: Option<&str>) {
        self.own_number = number.map(str::to_owned);
    }

    /// The number `AT+BLDN` redials.
    pub fn set_last_dialed(&mut self, number: Option<&str>) {
        self.last_dialed = number.map(str::to_owned);
    }

    /// Stores `number` at phonebook `location` for `ATD>location;`. At most
    /// [`MAX_MEMORY_ENTRIES`] locations; beyond that, new locations are refused.
    pub fn store_memory(&mut self, location: u32, number: &str) -> Result<(), ActionError> {
        if self.memory.len() >= MAX_MEMORY_ENTRIES && !self.memory.contains_key(&location) {
            return Err(ActionError::MemoryFull);
        }
        self.memory.insert(location, number.to_owned());
        Ok(())
    }

    fn handle_line(&mut self, line: &str) {
        let upper = line.to_ascii_uppercase();
        let Some(body) = upper.strip_prefix("AT") else {
            self.unknown(line);
            return;
        };
        // Same byte offsets as `upper`: ASCII case mapping keeps lengths.
        let orig = &line[2..];
        if body == "A" {
            self.cmd_answer();
            return;
        }
        if body.starts_with('D') {
            self.cmd_dial(line, &orig[1..]);
            return;
        }
        let split = body.find(['=', '?']).unwrap_or(body.len());
        let name = &body[..split];
        let form = match &body[split..] {
            "" => Form::Exec,
            "=?" => Form::Test,
            "?" => Form::Read,
            _ if body[split..].starts_with('=') => Form::Set(&orig[split + 1..]),
            _ => {
                self.unknown(line);
                return;
            }
        };
        match (name, form) {
            ("+BRSF", Form::Set(a)) => self.cmd_brsf(a),
            ("+BAC", Form::Set(a)) => self.cmd_bac(a),
            ("+CIND", Form::Test) => self.cmd_cind_test(),
            ("+CIND", Form::Read) => self.cmd_cind_read(),
            ("+CMER", Form::Set(a)) => self.cmd_cmer(a),
            ("+BIA", Form::Set(a)) => self.cmd_bia(a),
            ("+CHLD", Form::Test) => self.cmd_chld_test(),
            ("+CHLD", Form::Set(a)) => self.cmd_chld(a),
            ("+BIND", Form::Set(a)) => self.cmd_bind_set(a),
            ("+BIND", Form::Test) => self.cmd_bind_test(),
            ("+BIND", Form::Read) => self.cmd_bind_read(),
            ("+BIEV", Form::Set(a)) => self.cmd_biev(a),
            ("+CMEE", Form::Set(a)) => self.cmd_flag(a, Flag::Cmee),
            ("+CLIP", Form::Set(a)) => self.cmd_flag(a, Flag::Clip),
            ("+CCWA", Form::Set(a)) => self.cmd_flag(a, Flag::Ccwa),
            ("+NREC", Form::Set(a)) => self.cmd_nrec(a),
            ("+XAPL", Form::Set(a)) => self.cmd_xapl(a),
            ("+IPHONEACCEV", Form::Set(a)) => self.cmd_iphoneaccev(a),
            ("+CLCC", Form::Exec) => self.cmd_clcc(),
            ("+COPS", Form::Set(a)) => self.cmd_cops_set(a),
            ("+COPS", Form::Read) => self.cmd_cops_read(),
            ("+CNUM", Form::Exec) => self.cmd_cnum(),
            ("+VGS", Form::Set(a)) => self.cmd_volume(a, true),
            ("+VGM", Form::Set(a)) => self.cmd_volume(a, false),
            ("+BVRA", Form::Set(a)) => self.cmd_bvra(a),
            ("+CHUP", Form::Exec) => self.cmd_chup(),
            ("+BLDN", Form::Exec) => self.cmd_bldn(),
            ("+VTS", Form::Set(a)) => self.cmd_vts(a),
            ("+BCS", Form::Set(a)) => self.cmd_bcs(a),
            ("+BCC", Form::Exec) => self.cmd_bcc(),
            ("+BTRH", Form::Read) => self.send_ok(),
            _ => self.unknown(line),
        }
    }

    fn cmd_brsf(&mut self, args: &str) {
        let Ok(hf) = args.trim().parse::<u32>() else {
            return self.send_error();
        };
        self.hf_features = Some(hf);
        self.push_event(AgEvent::HfFeatures(hf));
        self.send_result(&format!("+BRSF: {}", self.profile.features()));
        self.send_ok();
    }

    fn cmd_bac(&mut self, args: &str) {
        if !self.profile.supports(features::CODEC_NEGOTIATION) {
            return self.send_error();
        }
        let Some(codecs) = parse_list::<u8>(args) else {
            return self.send_error();
        };
        self.hf_codecs = codecs.clone();
        self.push_event(AgEvent::AvailableCodecs(codecs));
        self.send_ok();
        // HFP 1.8 §4.11.3: AT+BAC during codec negotiation restarts it.
        if self.pending_codec.take().is_some() {
            let codec = self.best_codec();
            self.propose_codec(codec);
        }
    }

    fn cmd_cind_test(&mut self) {
        self.send_result(&format!("+CIND: {}", self.profile.cind_test()));
        self.send_ok();
    }

    fn cmd_cind_read(&mut self) {
        let values: Vec<String> = self
            .profile
            .indicators()
            .iter()
            .map(|&i| self.indicator(i).to_string())
            .collect();
        self.send_result(&format!("+CIND: {}", values.join(",")));
        self.send_ok();
    }

    fn cmd_cmer(&mut self, args: &str) {
        let fields: Vec<&str> = args.split(',').map(str::trim).collect();
        let mode = fields.first().copied().unwrap_or("");
        let ind = fields.get(3).copied().unwrap_or("0");
        let enable = match (mode, ind) {
            ("3", "1") => true,
            ("3" | "0", "0" | "") => false,
            _ => return self.send_error(),
        };
        self.reporting = enable;
        self.cmer_done = true;
        self.push_event(AgEvent::IndicatorReporting(enable));
        self.send_ok();
        self.check_slc();
    }

    fn cmd_bia(&mut self, args: &str) {
        let indicators = self.profile.indicators();
        let fields: Vec<&str> = args.split(',').map(str::trim).collect();
        let mut updated = self.active_indicators.clone();
        for (position, field) in fields.iter().enumerate() {
            let value = match *field {
                "" => continue,
                "0" => false,
                "1" => true,
                _ => return self.send_error(),
            };
            // Positions beyond the list are ignored (HFP 1.8 §4.35).
            if let (Some(slot), Some(indicator)) =
                (updated.get_mut(position), indicators.get(position))
            {
                *slot = value || indicator.is_mandatory();
            }
        }
        self.active_indicators = updated;
        self.send_ok();
    }

    fn cmd_chld_test(&mut self) {
        let Some(options) = self.profile.chld_options() else {
            return self.send_error();
        };
        self.send_result(&format!("+CHLD: ({})", options.join(",")));
        self.send_ok();
        self.chld_test_done = true;
        self.check_slc();
    }

    fn cmd_chld(&mut self, args: &str) {
        let arg = args.trim();
        let Some(options) = self.profile.chld_options() else {
            return self.send_error();
        };
        let (op, index) = match arg.as_bytes() {
            [op] => (*op, None),
            [op, rest @ ..] => match std::str::from_utf8(rest).ok().and_then(|r| r.parse().ok()) {
                Some(x) => (*op, Some(x)),
                None => return self.send_error(),
            },
            [] => return self.send_error(),
        };
        let advertised = match index {
            None => options.contains(&arg),
            Some(_) => options
                .iter()
                .any(|o| o.len() == 2 && o.as_bytes()[0] == op),
        };
        if !advertised {
            return self.send_error();
        }
        let before = self.indicator_values();
        let done = match (op, index) {
            (b'0', None) => self.chld_release_held_or_waiting(),
            (b'1', None) => self.chld_release_active_accept_other(),
            (b'1', Some(x)) => self.chld_release_one(x),
            (b'2', None) => self.chld_hold_active_accept_other(),
            (b'2', Some(x)) => self.chld_private(x),
            (b'3', None) => self.chld_conference(),
            (b'4', None) => self.chld_transfer(),
            _ => false,
        };
        if !done {
            return self.send_cme_error(3);
        }
        self.push_event(AgEvent::Chld(arg.to_owned()));
        self.send_ok();
        self.after_call_change(&before);
    }

    fn cmd_bind_set(&mut self, args: &str) {
        if !self.profile.supports(features::HF_INDICATORS) {
            return self.send_error();
        }
        let Some(list) = parse_list::<u16>(args) else {
            return self.send_error();
        };
        self.hf_indicators = list;
        self.send_ok();
    }

    fn cmd_bind_test(&mut self) {
        if !self.profile.supports(features::HF_INDICATORS) {
            return self.send_error();
        }
        self.send_result("+BIND: (1,2)");
        self.send_ok();
    }

    fn cmd_bind_read(&mut self) {
        if !self.profile.supports(features::HF_INDICATORS) {
            return self.send_error();
        }
        self.send_result("+BIND: 1,1");
        self.send_result("+BIND: 2,1");
        self.send_ok();
        self.bind_read_done = true;
        self.check_slc();
    }

    fn cmd_biev(&mut self, args: &str) {
        if !self.profile.supports(features::HF_INDICATORS) {
            return self.send_error();
        }
        let Some(&[id, value]) = parse_list::<u32>(args).as_deref() else {
            return self.send_error();
        };
        let event = match (id, value) {
            (2, 0..=100) => AgEvent::BatteryReported(value as u8),
            (1, 0..=1) => AgEvent::HfIndicator { id: 1, value },
            _ => return self.send_error(),
        };
        self.push_event(event);
        self.send_ok();
    }

    fn cmd_flag(&mut self, args: &str, flag: Flag) {
        let enable = match args.trim() {
            "0" => false,
            "1" => true,
            _ => return self.send_error(),
        };
        match flag {
            Flag::Cmee if !self.profile.supports(features::EXTENDED_ERROR) => {
                return self.send_error();
            }
            Flag::Cmee => self.cmee = enable,
            Flag::Clip => self.clip = enable,
            Flag::Ccwa => self.ccwa = enable,
        }
        self.send_ok();
    }

    fn cmd_nrec(&mut self, args: &str) {
        if args.trim() != "0" || !self.profile.supports(features::EC_NR) {
            return self.send_error();
        }
        self.push_event(AgEvent::NrecDisabled);
        self.send_ok();
    }

    fn cmd_xapl(&mut self, args: &str) {
        let Some(mask) = self.profile.xapl_mask() else {
            return self.send_error();
        };
        let Some((device, requested)) = args.split_once(',') else {
            return self.send_error();
        };
        let Ok(requested) = requested.trim().parse::<u32>() else {
            return self.send_error();
        };
        self.push_event(AgEvent::AppleAccessory {
            device: device.trim().to_owned(),
            features: requested,
        });
        self.send_result(&format!("+XAPL=iPhone,{}", requested & mask));
        self.send_ok();
    }

    fn cmd_iphoneaccev(&mut self, args: &str) {
        if !self.profile.supports_iphoneaccev() {
            return self.send_error();
        }
        let Some(numbers) = parse_list::<u32>(args) else {
            return self.send_error();
        };
        let Some((&count, pairs)) = numbers.split_first() else {
            return self.send_error();
        };
        if pairs.len() != 2 * count as usize {
            return self.send_error();
        }
        for pair in pairs.chunks_exact(2) {
            // Key 1 is the battery level 0..=9; key 2 (dock state) is not reported.
            if let [1, level @ 0..=9] = *pair {
                self.push_event(AgEvent::BatteryReported((level as u8 + 1) * 10));
            }
        }
        self.send_ok();
    }

    fn cmd_clcc(&mut self) {
        let lines: Vec<String> = self.calls.iter().map(Call::clcc_line).collect();
        for line in lines {
            self.send_result(&line);
        }
        if self.profile.ok_after_clcc() {
            self.send_ok();
        }
    }

    fn cmd_cops_set(&mut self, args: &str) {
        if args.trim() == "3,0" {
            self.send_ok();
        } else {
            self.send_error();
        }
    }

    fn cmd_cops_read(&mut self) {
        if self.service == 0 {
            self.send_result("+COPS: 0");
        } else {
            self.send_result(&format!("+COPS: 0,0,\"{}\"", self.operator));
        }
        self.send_ok();
    }

    fn cmd_cnum(&mut self) {
        if let Some(number) = self.own_number.clone() {
            self.send_result(&format!("+CNUM: ,\"{number}\",{},,4", number_type(&number)));
        }
        self.send_ok();
    }

    fn cmd_volume(&mut self, args: &str, speaker: bool) {
        let Some(level) = args.trim().parse::<u8>().ok().filter(|l| *l <= 15) else {
            return self.send_error();
        };
        if speaker {
            self.speaker_volume = level;
            self.push_event(AgEvent::SpeakerVolume(level));
        } else {
            self.mic_volume = level;
            self.push_event(AgEvent::MicVolume(level));
        }
        self.send_ok();
    }

    fn cmd_bvra(&mut self, args: &str) {
        let enable = match args.trim() {
            "0" => false,
            "1" => true,
            _ => return self.send_error(),
        };
        if !self.profile.supports(features::VOICE_RECOGNITION) {
            return self.send_error();
        }
        self.voice_recognition = enable;
        self.push_event(AgEvent::VoiceRecognition(enable));
        self.send_ok();
    }

    fn cmd_answer(&mut self) {
        let target = if self.has_state(CallState::Incoming) {
            CallState::Incoming
        } else if self.has_state(CallState::Waiting)
            && !self.has_state(CallState::Active)
            && !self.has_state(CallState::Held)
        {
            CallState::Waiting
        } else {
            return self.send_cme_error(3);
        };
        let before = self.indicator_values();
        for call in &mut self.calls {
            if call.state == target {
                call.state = CallState::Active;
            }
        }
        self.push_event(AgEvent::CallAnswered);
        self.send_ok();
        self.after_call_change(&before);
    }

    fn cmd_chup(&mut self) {
        let target = [
            CallState::Incoming,
            CallState::Dialing,
            CallState::Alerting,
            CallState::Active,
            CallState::Held,
            CallState::Waiting,
        ]
        .into_iter()
        .find(|&s| self.has_state(s));
        let Some(target) = target else {
            return self.send_cme_error(3);
        };
        let before = self.indicator_values();
        self.calls.retain(|c| c.state != target);
        self.push_event(AgEvent::CallHungUp);
        self.send_ok();
        self.after_call_change(&before);
    }

    fn cmd_dial(&mut self, line: &str, rest: &str) {
        let Some(target) = rest.trim().strip_suffix(';') else {
            // Data calls (no `;`) are not something a car kit may place.
            return self.unknown(line);
        };
        if let Some(location) = target.strip_prefix('>') {
            let Ok(location) = location.trim().parse::<u32>() else {
                return self.send_error();
            };
            let Some(number) = self.memory.get(&location).cloned() else {
                // 21: invalid index.
                return self.send_cme_error(21);
            };
            self.dial(&number, AgEvent::MemoryDialed(location));
        } else {
            let valid = !target.is_empty()
                && target.bytes().all(|b| {
                    b.is_ascii_digit()
                        || matches!(b, b'+' | b'*' | b'#' | b'A'..=b'D' | b'a'..=b'd')
                });
            if !valid {
                return self.send_error();
            }
            self.dial(target, AgEvent::Dialed(target.to_owned()));
        }
    }

    fn cmd_bldn(&mut self) {
        let Some(number) = self.last_dialed.clone() else {
            return self.send_error();
        };
        self.dial(&number, AgEvent::Redialed);
    }

    fn cmd_vts(&mut self, args: &str) {
        let tone = args.trim().trim_matches('"');
        let mut chars = tone.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return self.send_error();
        };
        if !(c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')) {
            return self.send_error();
        }
        if !self.has_state(CallState::Active) {
            return self.send_cme_error(3);
        }
        self.push_event(AgEvent::DtmfSent(c));
        self.send_ok();
    }

    fn cmd_bcs(&mut self, args: &str) {
        let Ok(codec) = args.trim().parse::<u8>() else {
            return self.send_error();
        };
        if self.pending_codec != Some(codec) {
            return self.send_error();
        }
        self.pending_codec = None;
        self.selected_codec = codec;
        self.push_event(AgEvent::CodecSelected(codec));
        self.send_ok();
    }

    fn cmd_bcc(&mut self) {
        if !self.profile.supports(features::CODEC_NEGOTIATION) {
            return self.send_error();
        }
        self.push_event(AgEvent::CodecConnectionRequested);
        self.send_ok();
        let codec = self.best_codec();
        self.propose_codec(codec);
    }

    fn dial(&mut self, number: &str, event: AgEvent) {
        if self.calls.iter().any(|c| c.state.is_setup()) {
            return self.send_cme_error(3);
        }
        if self.calls.len() >= MAX_CALLS {
            return self.send_cme_error(3);
        }
        let before = self.indicator_values();
        // Dialing during a call puts the active call on hold, as phones do.
        self.set_state(CallState::Active, CallState::Held);
        if self
            .add_call(Direction::Outgoing, CallState::Dialing, number, None)
            .is_err()
        {
            // Unreachable: the call count was checked above.
            return self.send_cme_error(3);
        }
        self.last_dialed = Some(number.to_owned());
        self.push_event(event);
        self.send_ok();
        self.report_changes(&before);
    }

    fn chld_release_held_or_waiting(&mut self) -> bool {
        let target = if self.has_state(CallState::Waiting) {
            CallState::Waiting
        } else {
            CallState::Held
        };
        self.remove_state(target)
    }

    fn chld_release_active_accept_other(&mut self) -> bool {
        let released = self.remove_state(CallState::Active);
        let accepted = if self.has_state(CallState::Waiting) {
            self.set_state(CallState::Waiting, CallState::Active)
        } else {
            self.set_state(CallState::Held, CallState::Active)
        };
        released || accepted
    }

    fn chld_release_one(&mut self, index: u8) -> bool {
        let before = self.calls.len();
        self.calls.retain(|c| c.index != index);
        before != self.calls.len()
    }

    fn chld_hold_active_accept_other(&mut self) -> bool {
        if self.has_state(CallState::Waiting) {
            self.set_state(CallState::Active, CallState::Held);
            return self.set_state(CallState::Waiting, CallState::Active);
        }
        let mut changed = false;
        for call in &mut self.calls {
            call.state = match call.state {
                CallState::Active => CallState::Held,
                CallState::Held => CallState::Active,
                other => other,
            };
            changed |= matches!(call.state, CallState::Active | CallState::Held);
        }
        changed
    }

    fn chld_private(&mut self, index: u8) -> bool {
        if !self
            .calls
            .iter()
            .any(|c| c.index == index && matches!(c.state, CallState::Active | CallState::Held))
        {
            return false;
        }
        for call in &mut self.calls {
            if call.index == index {
                call.state = CallState::Active;
                call.multiparty = false;
            } else if call.state == CallState::Active {
                call.state = CallState::Held;
            }
        }
        true
    }

    fn chld_conference(&mut self) -> bool {
        if !(self.has_state(CallState::Active) && self.has_state(CallState::Held)) {
            return false;
        }
        for call in &mut self.calls {
            if matches!(call.state, CallState::Active | CallState::Held) {
                call.state = CallState::Active;
                call.multiparty = true;
            }
        }
        true
    }

    fn chld_transfer(&mut self) -> bool {
        if !(self.has_state(CallState::Active) && self.has_state(CallState::Held)) {
            return false;
        }
        self.calls
            .retain(|c| !matches!(c.state, CallState::Active | CallState::Held));
        true
    }

    fn transition(&mut self, from: CallState, to: CallState) -> Result<(), ActionError> {
        let before = self.indicator_values();
        if !self.set_state(from, to) {
            return Err(ActionError::NoSuchCall);
        }
        self.after_call_change(&before);
        Ok(())
    }

    fn set_voice_recognition(&mut self, on: bool) -> Result<(), ActionError> {
        self.require(features::VOICE_RECOGNITION, "voice recognition")?;
        self.voice_recognition = on;
        self.send_result(&format!("+BVRA: {}", u8::from(on)));
        Ok(())
    }

    fn set_indicator(&mut self, indicator: Indicator, level: u8) -> Result<(), ActionError> {
        check_range(indicator.name(), level, indicator.max())?;
        let before = self.indicator_values();
        match indicator {
            Indicator::Signal => self.signal = level,
            Indicator::Battery => self.battery = level,
            _ => {}
        }
        self.report_changes(&before);
        Ok(())
    }

    fn require(&self, feature: u32, name: &'static str) -> Result<(), ActionError> {
        if self.profile.supports(feature) {
            Ok(())
        } else {
            Err(ActionError::NotSupported {
                profile: self.profile,
                feature: name,
            })
        }
    }

    fn check_slc(&mut self) {
        if self.slc_established || !self.cmer_done {
            return;
        }
        let hf = self.hf_features.unwrap_or(0);
        let three_way = hf & hf_features::THREE_WAY_CALLING != 0
            && self.profile.supports(features::THREE_WAY_CALLING);
        let hf_ind =
            hf & hf_features::HF_INDICATORS != 0 && self.profile.supports(features::HF_INDICATORS);
        if (three_way && !self.chld_test_done) || (hf_ind && !self.bind_read_done) {
            return;
        }
        self.slc_established = true;
        self.push_event(AgEvent::SlcEstablished);
    }

    fn best_codec(&self) -> u8 {
        let hf_negotiates = self.hf_features.unwrap_or(0) & hf_features::CODEC_NEGOTIATION != 0;
        if hf_negotiates && self.hf_codecs.contains(&CODEC_MSBC) {
            CODEC_MSBC
        } else {
            CODEC_CVSD
        }
    }

    fn propose_codec(&mut self, codec: u8) {
        self.pending_codec = Some(codec);
        self.send_result(&format!("+BCS: {codec}"));
    }

    fn send_ring(&mut self, now: Instant) {
        let Some(call) = self
            .calls
            .iter()
            .find(|c| c.state == CallState::Incoming)
            .cloned()
        else {
            self.next_ring = None;
            return;
        };
        self.send_result("RING");
        if self.clip {
            let mut clip = format!("+CLIP: \"{}\",{}", call.number, number_type(&call.number));
            if let Some(name) = &call.name {
                clip.push_str(&format!(",,,\"{name}\""));
            }
            self.send_result(&clip);
        }
        self.next_ring = now.checked_add(RING_INTERVAL);
    }

    fn add_call(
        &mut self,
        direction: Direction,
        state: CallState,
        number: &str,
        name: Option<&str>,
    ) -> Result<u8, ActionError> {
        if self.calls.len() >= MAX_CALLS {
            return Err(ActionError::TooManyCalls);
        }
        let index = (1..=MAX_CALLS as u8)
            .find(|i| !self.calls.iter().any(|c| c.index == *i))
            .ok_or(ActionError::TooManyCalls)?;
        let position = self.calls.partition_point(|c| c.index < index);
        self.calls.insert(
            position,
            Call {
                index,
                direction,
                state,
                number: number.to_owned(),
                name: name.map(str::to_owned),
                multiparty: false,
            },
        );
        Ok(index)
    }

    fn has_state(&self, state: CallState) -> bool {
        self.calls.iter().any(|c| c.state == state)
    }

    fn set_state(&mut self, from: CallState, to: CallState) -> bool {
        let mut changed = false;
        for call in &mut self.calls {
            if call.state == from {
                call.state = to;
                changed = true;
            }
        }
        changed
    }

    fn remove_state(&mut self, state: CallState) -> bool {
        let before = self.calls.len();
        self.calls.retain(|c| c.state != state);
        before != self.calls.len()
    }

    /// Tidies up after the call list changed: a lone conference member is no longer
    /// multiparty, ringing stops once nothing is incoming, indicators are reported.
    fn after_call_change(&mut self, before: &[u8; 7]) {
        if self.calls.iter().filter(|c| c.multiparty).count() < 2 {
            for call in &mut self.calls {
                call.multiparty = false;
            }
        }
        if !self.has_state(CallState::Incoming) {
            self.next_ring = None;
        }
        self.report_changes(before);
    }

    fn indicator_values(&self) -> [u8; 7] {
        let mut values = [0; 7];
        for indicator in Indicator::ALL {
            values[indicator as usize] = self.indicator(indicator);
        }
        values
    }

    /// Sends `+CIEV` for each indicator whose value differs from `before`, in
    /// [`Indicator::ALL`] order.
    fn report_changes(&mut self, before: &[u8; 7]) {
        for indicator in Indicator::ALL {
            let value = self.indicator(indicator);
            if value == before[indicator as usize] || !self.reporting {
                continue;
            }
            let Some(position) = self
                .profile
                .indicators()
                .iter()
                .position(|&i| i == indicator)
            else {
                continue;
            };
            if self.active_indicators.get(position) == Some(&false) {
                continue;
            }
            self.send_result(&format!("+CIEV: {},{value}", position + 1));
        }
    }

    fn unknown(&mut self, line: &str) {
        self.push_event(AgEvent::UnknownCommand(line.to_owned()));
        self.send_error();
    }

    fn send_ok(&mut self) {
        self.send_result("OK");
    }

    fn send_error(&mut self) {
        self.send_result("ERROR");
    }

    /// `+CME ERROR: <code>` once the car enabled it with `AT+CMEE=1`, else `ERROR`.
    fn send_cme_error(&mut self, code: u16) {
        if self.cmee {
            self.send_result(&format!("+CME ERROR: {code}"));
        } else {
            self.send_error();
        }
    }

    fn send_result(&mut self, text: &str) {
        let len = text.len() + 4;
        if self.tx.len() + len > MAX_PENDING_TRANSMIT {
            self.dropped_transmit_bytes += len;
            return;
        }
        self.tx.extend_from_slice(b"\r\n");
        self.tx.extend_from_slice(text.as_bytes());
        self.tx.extend_from_slice(b"\r\n");
    }

    fn push_event(&mut self, event: AgEvent) {
        if self.events.len() >= MAX_PENDING_EVENTS {
            self.events.pop_front();
            self.dropped_events += 1;
        }
        self.events.push_back(event);
    }
}

/// Shape of an extended AT command after its name.
#[derive(Clone, Copy)]
enum Form<'a> {
    /// `AT+X`
    Exec,
    /// `AT+X=?`
    Test,
    /// `AT+X?`
    Read,
    /// `AT+X=<args>`, with the arguments in their original case.
    Set(&'a str),
}

/// Boolean settings switched with `AT+X=0|1`.
#[derive(Clone, Copy)]
enum Flag {
    Cmee,
    Clip,
    Ccwa,
}

fn parse_list<T: std::str::FromStr>(args: &str) -> Option<Vec<T>> {
    args.split(',').map(|v| v.trim().parse().ok()).collect()
}

fn check_range(what: &'static str, value: u8, max: u8) -> Result<(), ActionError> {
    if value <= max {
        Ok(())
    } else {
        Err(ActionError::OutOfRange { what, value, max })
    }
}

#[cfg(test)]
mod tests;
