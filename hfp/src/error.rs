//! Errors returned by commands and reported in [`Event::CommandFailed`](crate::Event::CommandFailed).

use std::fmt;

/// Why a command could not be queued, or why the phone did not carry it out.
///
/// The first group are local faults (the caller misused the API); [`Error::Cme`],
/// [`Error::Timeout`] and [`Error::PeerError`] mean the phone refused or did not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service level connection is not up yet (or failed).
    #[error("not connected")]
    NotConnected,
    /// The dial string is empty, too long or has characters other than `0-9*#+A-D,pPwW`.
    #[error("invalid number {0:?}")]
    InvalidNumber(String),
    /// DTMF digits are `0-9`, `*`, `#`, `A-D`.
    #[error("invalid DTMF digit {0:?}")]
    InvalidDtmf(char),
    /// Volume gains are 0 to 15; battery levels 0 to 100.
    #[error("value {0} out of range")]
    OutOfRange(u8),
    /// Too many commands are waiting to be sent; try again after some complete.
    #[error("command queue full")]
    QueueFull,
    /// The phone (or this car's configuration) does not support the feature.
    #[error("not supported: {0}")]
    NotSupported(&'static str),
    /// The phone answered `+CME ERROR: <n>`.
    #[error("cme error {0}")]
    Cme(CmeError),
    /// The phone did not answer within the command timeout.
    #[error("timeout")]
    Timeout,
    /// The phone answered `ERROR`, `NO CARRIER`, `BUSY`, `NO ANSWER`, `DELAYED` or `BLACKLISTED`.
    #[error("peer error {0}")]
    PeerError(String),
}

impl Error {
    /// True when the phone refused or failed to answer, false for local misuse.
    pub const fn is_peer(&self) -> bool {
        matches!(self, Self::Cme(_) | Self::Timeout | Self::PeerError(_))
    }
}

/// Extended error codes from `+CME ERROR: <n>` (3GPP 27.007 9.2.1, as listed by HFP 1.9 4.34.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CmeError {
    /// 0: AG failure.
    AgFailure,
    /// 1: no connection to phone.
    NoConnectionToPhone,
    /// 3: operation not allowed.
    OperationNotAllowed,
    /// 4: operation not supported.
    OperationNotSupported,
    /// 5: PH-SIM PIN required.
    PhSimPinRequired,
    /// 10: SIM not inserted.
    SimNotInserted,
    /// 11: SIM PIN required.
    SimPinRequired,
    /// 12: SIM PUK required.
    SimPukRequired,
    /// 13: SIM failure.
    SimFailure,
    /// 14: SIM busy.
    SimBusy,
    /// 16: incorrect password.
    IncorrectPassword,
    /// 17: SIM PIN2 required.
    SimPin2Required,
    /// 18: SIM PUK2 required.
    SimPuk2Required,
    /// 20: memory full.
    MemoryFull,
    /// 21: invalid index.
    InvalidIndex,
    /// 23: memory failure.
    MemoryFailure,
    /// 24: text string too long.
    TextStringTooLong,
    /// 25: invalid characters in text string.
    InvalidCharactersInText,
    /// 26: dial string too long.
    DialStringTooLong,
    /// 27: invalid characters in dial string.
    InvalidCharactersInDialString,
    /// 30: no network service.
    NoNetworkService,
    /// 31: network timeout.
    NetworkTimeout,
    /// 32: network not allowed, emergency calls only.
    EmergencyCallsOnly,
    /// Any other code.
    Other(u16),
}

impl CmeError {
    /// Maps a numeric code.
    pub const fn from_code(code: u16) -> Self {
        match code {
            0 => Self::AgFailure,
            1 => Self::NoConnectionToPhone,
            3 => Self::OperationNotAllowed,
            4 => Self::OperationNotSupported,
            5 => Self::PhSimPinRequired,
            10 => Self::SimNotInserted,
            11 => Self::SimPinRequired,
            12 => Self::SimPukRequired,
            13 => Self::SimFailure,
            14 => Self::SimBusy,
            16 => Self::IncorrectPassword,
            17 => Self::SimPin2Required,
            18 => Self::SimPuk2Required,
            20 => Self::MemoryFull,
            21 => Self::InvalidIndex,
            23 => Self::MemoryFailure,
            24 => Self::TextStringTooLong,
            25 => Self::InvalidCharactersInText,
            26 => Self::DialStringTooLong,
            27 => Self::InvalidCharactersInDialString,
            30 => Self::NoNetworkService,
            31 => Self::NetworkTimeout,
            32 => Self::EmergencyCallsOnly,
            n => Self::Other(n),
        }
    }

    /// The numeric code.
    pub const fn code(self) -> u16 {
        match self {
            Self::AgFailure => 0,
            Self::NoConnectionToPhone => 1,
            Self::OperationNotAllowed => 3,
            Self::OperationNotSupported => 4,
            Self::PhSimPinRequired => 5,
            Self::SimNotInserted => 10,
            Self::SimPinRequired => 11,
            Self::SimPukRequired => 12,
            Self::SimFailure => 13,
            Self::SimBusy => 14,
            Self::IncorrectPassword => 16,
            Self::SimPin2Required => 17,
            Self::SimPuk2Required => 18,
            Self::MemoryFull => 20,
            Self::InvalidIndex => 21,
            Self::MemoryFailure => 23,
            Self::TextStringTooLong => 24,
            Self::InvalidCharactersInText => 25,
            Self::DialStringTooLong => 26,
            Self::InvalidCharactersInDialString => 27,
            Self::NoNetworkService => 30,
            Self::NetworkTimeout => 31,
            Self::EmergencyCallsOnly => 32,
            Self::Other(n) => n,
        }
    }

    /// Short kebab-case name used in event lines.
    pub const fn name(self) -> &'static str {
        match self {
            Self::AgFailure => "ag-failure",
            Self::NoConnectionToPhone => "no-connection-to-phone",
            Self::OperationNotAllowed => "operation-not-allowed",
            Self::OperationNotSupported => "operation-not-supported",
            Self::PhSimPinRequired => "ph-sim-pin-required",
            Self::SimNotInserted => "sim-not-inserted",
            Self::SimPinRequired => "sim-pin-required",
            Self::SimPukRequired => "sim-puk-required",
            Self::SimFailure => "sim-failure",
            Self::SimBusy => "sim-busy",
            Self::IncorrectPassword => "incorrect-password",
            Self::SimPin2Required => "sim-pin2-required",
            Self::SimPuk2Required => "sim-puk2-required",
            Self::MemoryFull => "memory-full",
            Self::InvalidIndex => "invalid-index",
            Self::MemoryFailure => "memory-failure",
            Self::TextStringTooLong => "text-string-too-long",
            Self::InvalidCharactersInText => "invalid-characters-in-text",
            Self::DialStringTooLong => "dial-string-too-long",
            Self::InvalidCharactersInDialString => "invalid-characters-in-dial-string",
            Self::NoNetworkService => "no-network-service",
            Self::NetworkTimeout => "network-timeout",
            Self::EmergencyCallsOnly => "emergency-calls-only",
            Self::Other(_) => "other",
        }
    }
}

impl fmt::Display for CmeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}
