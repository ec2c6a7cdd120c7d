//! The phone's call list, from which `call`, `callsetup`, `callheld` and `+CLCC` derive.

/// Who started a call (`<dir>` of `+CLCC`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Mobile originated: the phone (or the car through it) dialed.
    Outgoing,
    /// Mobile terminated: the network called the phone.
    Incoming,
}

/// State of one call (`<stat>` of `+CLCC`, 3GPP TS 27.007 §7.18).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallState {
    /// Connected and carrying audio.
    Active,
    /// Connected and on hold.
    Held,
    /// Outgoing, the network has not reached the callee yet.
    Dialing,
    /// Outgoing, the callee's phone is ringing.
    Alerting,
    /// Incoming while no other call exists: the phone rings.
    Incoming,
    /// Incoming while another call exists: call waiting.
    Waiting,
}

impl CallState {
    /// The `<stat>` number in `+CLCC`.
    pub fn clcc_code(self) -> u8 {
        match self {
            CallState::Active => 0,
            CallState::Held => 1,
            CallState::Dialing => 2,
            CallState::Alerting => 3,
            CallState::Incoming => 4,
            CallState::Waiting => 5,
        }
    }

    /// Whether the call is still being set up (counts towards `callsetup`).
    pub fn is_setup(self) -> bool {
        matches!(
            self,
            CallState::Dialing | CallState::Alerting | CallState::Incoming | CallState::Waiting
        )
    }
}

/// One call the phone knows about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// 1-based index (`<idx>` of `+CLCC`, `x` of `AT+CHLD=1x`); lowest free number.
    pub index: u8,
    /// Who started it.
    pub direction: Direction,
    /// Where it is in its life.
    pub state: CallState,
    /// Remote party's number, as shown in `+CLIP`/`+CCWA`/`+CLCC`.
    pub number: String,
    /// Remote party's name from the phone's contacts, if any.
    pub name: Option<String>,
    /// Part of a conference (`<mpty>` of `+CLCC`).
    pub multiparty: bool,
}

impl Call {
    /// The `+CLCC: …` line for this call.
    pub(crate) fn clcc_line(&self) -> String {
        let dir = match self.direction {
            Direction::Outgoing => 0,
            Direction::Incoming => 1,
        };
        format!(
            "+CLCC: {},{},{},0,{},\"{}\",{}",
            self.index,
            dir,
            self.state.clcc_code(),
            u8::from(self.multiparty),
            self.number,
            number_type(&self.number)
        )
    }
}

/// Type of address octet: 145 for international numbers (`+…`), 129 otherwise.
pub(crate) fn number_type(number: &str) -> u8 {
    if number.starts_with('+') { 145 } else { 129 }
}
