//! Calls as tracked by the engine, and call-hold commands.

use std::fmt;

/// One call known to the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Call index as used by the phone (`+CLCC` `<idx>`, `AT+CHLD=1<idx>`), starting at 1.
    pub index: u8,
    /// Who placed the call.
    pub direction: Direction,
    /// Current state.
    pub state: CallState,
    /// Remote number, when the phone told us.
    pub number: Option<String>,
    /// Remote name (from `+CLIP`, `+CCWA` or `+CLCC` alpha), when the phone told us.
    pub name: Option<String>,
    /// Part of a multiparty (conference) call.
    pub multiparty: bool,
}

impl Call {
    /// The number, or `-` when unknown, as used in canonical event lines.
    pub fn number_or_dash(&self) -> &str {
        self.number.as_deref().unwrap_or("-")
    }
}

/// Direction of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Placed by this side (dialled from the car or the phone).
    Outgoing,
    /// Received.
    Incoming,
}

/// State of a call (3GPP 27.007 `+CLCC` `<stat>`, plus `Ended`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallState {
    /// Ringing, no other call.
    Incoming,
    /// Ringing while another call is in progress.
    Waiting,
    /// Outgoing, not yet ringing at the far end.
    Dialing,
    /// Outgoing, ringing at the far end.
    Alerting,
    /// Connected.
    Active,
    /// Connected and on hold (also used for response-and-hold).
    Held,
    /// Gone; only seen in [`Event::CallEnded`](crate::Event::CallEnded).
    Ended,
}

impl CallState {
    /// Canonical lowercase name used in event lines.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Incoming => "incoming",
            Self::Waiting => "waiting",
            Self::Dialing => "dialing",
            Self::Alerting => "alerting",
            Self::Active => "active",
            Self::Held => "held",
            Self::Ended => "ended",
        }
    }

    /// True for calls still being set up (ringing, dialling, alerting).
    pub const fn is_setup(self) -> bool {
        matches!(
            self,
            Self::Incoming | Self::Waiting | Self::Dialing | Self::Alerting
        )
    }

    /// Maps a `+CLCC` `<stat>` value.
    pub(crate) const fn from_clcc(stat: u8) -> Option<Self> {
        match stat {
            0 => Some(Self::Active),
            1 | 6 => Some(Self::Held),
            2 => Some(Self::Dialing),
            3 => Some(Self::Alerting),
            4 => Some(Self::Incoming),
            5 => Some(Self::Waiting),
            _ => None,
        }
    }
}

impl fmt::Display for CallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Argument of `AT+CHLD` (HFP 1.9, 4.22 and 4.33.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chld {
    /// `0`: release all held calls, or reject the waiting call (user determined user busy).
    ReleaseHeld,
    /// `1`: release all active calls and accept the other (held or waiting) call.
    ReleaseActiveAcceptOther,
    /// `1x`: release call `x` only.
    ReleaseCall(u8),
    /// `2`: place all active calls on hold and accept the other (held or waiting) call.
    HoldActiveAcceptOther,
    /// `2x`: private consultation with call `x`, holding all others.
    PrivateConsultation(u8),
    /// `3`: add the held call to the conversation.
    AddHeldToConversation,
    /// `4`: connect the two calls and disconnect the car (explicit call transfer).
    ExplicitCallTransfer,
}

impl Chld {
    /// Parses the wire form: `0`, `1`, `1x`, `2`, `2x`, `3`, `4` (x a call index).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let index = |rest: &str| rest.parse::<u8>().ok().filter(|&i| i > 0);
        match s {
            "0" => Some(Self::ReleaseHeld),
            "1" => Some(Self::ReleaseActiveAcceptOther),
            "2" => Some(Self::HoldActiveAcceptOther),
            "3" => Some(Self::AddHeldToConversation),
            "4" => Some(Self::ExplicitCallTransfer),
            _ => match s.split_at_checked(1)? {
                ("1", rest) => index(rest).map(Self::ReleaseCall),
                ("2", rest) => index(rest).map(Self::PrivateConsultation),
                _ => None,
            },
        }
    }
}

impl fmt::Display for Chld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReleaseHeld => f.write_str("0"),
            Self::ReleaseActiveAcceptOther => f.write_str("1"),
            Self::ReleaseCall(x) => write!(f, "1{x}"),
            Self::HoldActiveAcceptOther => f.write_str("2"),
            Self::PrivateConsultation(x) => write!(f, "2{x}"),
            Self::AddHeldToConversation => f.write_str("3"),
            Self::ExplicitCallTransfer => f.write_str("4"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chld_round_trips() {
        for s in ["0", "1", "12", "2", "23", "3", "4"] {
            assert_eq!(Chld::parse(s).map(|c| c.to_string()).as_deref(), Some(s));
        }
        assert_eq!(Chld::parse("10"), None);
        assert_eq!(Chld::parse("5"), None);
        assert_eq!(Chld::parse(""), None);
    }
}
