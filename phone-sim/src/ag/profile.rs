//! Behaviour profiles: which phone the gateway pretends to be.

use std::fmt;
use std::str::FromStr;

use super::features::{
    CODEC_NEGOTIATION, EC_NR, ENHANCED_CALL_CONTROL, ENHANCED_CALL_STATUS, ESCO_S4, EXTENDED_ERROR,
    HF_INDICATORS, IN_BAND_RING, REJECT_CALL, THREE_WAY_CALLING, VOICE_RECOGNITION,
};

/// One AG indicator of `+CIND`, identified by name (HFP 1.8 §4.2, §4.33).
///
/// Where an indicator sits in `+CIND`/`+CIEV` depends on the [`Profile`]; the car must
/// match them by name, which is exactly what the differing profiles exercise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Indicator {
    /// `service`: 1 when the phone is registered on a network.
    Service,
    /// `call`: 1 when at least one call is active or held.
    Call,
    /// `callsetup`: 0 none, 1 incoming, 2 outgoing dialing, 3 outgoing alerting.
    CallSetup,
    /// `callheld`: 0 none, 1 active and held, 2 held only.
    CallHeld,
    /// `signal`: signal strength 0..=5.
    Signal,
    /// `roam`: 1 when roaming.
    Roam,
    /// `battchg`: phone battery 0..=5.
    Battery,
}

impl Indicator {
    /// Every indicator, in the order the gateway reports changes (`call` before
    /// `callsetup` before `callheld`, matching the HFP sequence charts).
    pub const ALL: [Indicator; 7] = [
        Indicator::Call,
        Indicator::CallSetup,
        Indicator::CallHeld,
        Indicator::Service,
        Indicator::Signal,
        Indicator::Roam,
        Indicator::Battery,
    ];

    /// The name used in `+CIND=?`.
    pub fn name(self) -> &'static str {
        match self {
            Indicator::Service => "service",
            Indicator::Call => "call",
            Indicator::CallSetup => "callsetup",
            Indicator::CallHeld => "callheld",
            Indicator::Signal => "signal",
            Indicator::Roam => "roam",
            Indicator::Battery => "battchg",
        }
    }

    /// Highest value the indicator may take.
    pub fn max(self) -> u8 {
        match self {
            Indicator::Service | Indicator::Call | Indicator::Roam => 1,
            Indicator::CallSetup => 3,
            Indicator::CallHeld => 2,
            Indicator::Signal | Indicator::Battery => 5,
        }
    }

    /// Mandatory call indicators cannot be deactivated with `AT+BIA` (HFP 1.8 §4.35).
    pub(crate) fn is_mandatory(self) -> bool {
        matches!(
            self,
            Indicator::Call | Indicator::CallSetup | Indicator::CallHeld
        )
    }
}

/// Which phone the gateway imitates: indicator order and notation, features, quirks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// An iPhone: features 0x3EF, indicators in the order an iPhone really sends
    /// (`service, call, callsetup, battchg, signal, roam, callheld`, range notation
    /// `0-1`, from a raw iPhone capture in espressif/esp-idf#6486 and BTstack's
    /// SLC transcripts), Apple `AT+XAPL`/`AT+IPHONEACCEV`, codec negotiation (mSBC).
    IphoneLike,
    /// A stock Android phone: features 0xFEF (codec negotiation, HF indicators, eSCO
    /// S4), indicators `call, callsetup, service, signal, roam, battchg, callheld`
    /// with mixed `(0,1)`/`(0-3)` notation, as AOSP sends them.
    AndroidLike,
    /// An old HFP 1.5-era phone: only `service, call, callsetup`, no three-way
    /// calling, no codec negotiation, no extended errors.
    Minimal,
    /// Android-like, but never sends the final `OK` after `AT+CLCC`.
    NoOkAfterClcc,
    /// Android-like, but sends unsolicited `+VGS=<n>` instead of `+VGS: <n>`.
    VgsEquals,
}

impl Profile {
    /// Every profile, for tests that run a scenario against each of them.
    pub const ALL: [Profile; 5] = [
        Profile::IphoneLike,
        Profile::AndroidLike,
        Profile::Minimal,
        Profile::NoOkAfterClcc,
        Profile::VgsEquals,
    ];

    /// Stable name, as accepted by [`FromStr`] (`iphone-like`, `android-like`, …).
    pub fn name(self) -> &'static str {
        match self {
            Profile::IphoneLike => "iphone-like",
            Profile::AndroidLike => "android-like",
            Profile::Minimal => "minimal",
            Profile::NoOkAfterClcc => "no-ok-after-clcc",
            Profile::VgsEquals => "vgs-equals",
        }
    }

    /// AG supported features sent in `+BRSF` (bits in [`super::features`]).
    pub fn features(self) -> u32 {
        match self {
            // 1007, as captured from an iPhone.
            Profile::IphoneLike => {
                THREE_WAY_CALLING
                    | EC_NR
                    | VOICE_RECOGNITION
                    | IN_BAND_RING
                    | REJECT_CALL
                    | ENHANCED_CALL_STATUS
                    | ENHANCED_CALL_CONTROL
                    | EXTENDED_ERROR
                    | CODEC_NEGOTIATION
            }
            // 4079, as captured from Android phones.
            Profile::AndroidLike | Profile::NoOkAfterClcc | Profile::VgsEquals => {
                THREE_WAY_CALLING
                    | EC_NR
                    | VOICE_RECOGNITION
                    | IN_BAND_RING
                    | REJECT_CALL
                    | ENHANCED_CALL_STATUS
                    | ENHANCED_CALL_CONTROL
                    | EXTENDED_ERROR
                    | CODEC_NEGOTIATION
                    | HF_INDICATORS
                    | ESCO_S4
            }
            Profile::Minimal => VOICE_RECOGNITION | REJECT_CALL,
        }
    }

    /// The indicators, in this profile's `+CIND` order (1-based `+CIEV` index = position + 1).
    pub fn indicators(self) -> &'static [Indicator] {
        match self {
            Profile::IphoneLike => &[
                Indicator::Service,
                Indicator::Call,
                Indicator::CallSetup,
                Indicator::Battery,
                Indicator::Signal,
                Indicator::Roam,
                Indicator::CallHeld,
            ],
            Profile::AndroidLike | Profile::NoOkAfterClcc | Profile::VgsEquals => &[
                Indicator::Call,
                Indicator::CallSetup,
                Indicator::Service,
                Indicator::Signal,
                Indicator::Roam,
                Indicator::Battery,
                Indicator::CallHeld,
            ],
            Profile::Minimal => &[Indicator::Service, Indicator::Call, Indicator::CallSetup],
        }
    }

    /// Whether `feature` (a bit of [`super::features`]) is in [`Profile::features`].
    pub fn supports(self, feature: u32) -> bool {
        self.features() & feature != 0
    }

    /// The `+CIND=?` payload, byte for byte as this phone writes it.
    pub(crate) fn cind_test(self) -> &'static str {
        match self {
            Profile::IphoneLike => {
                "(\"service\",(0-1)),(\"call\",(0-1)),(\"callsetup\",(0-3)),(\"battchg\",(0-5)),\
                 (\"signal\",(0-5)),(\"roam\",(0-1)),(\"callheld\",(0-2))"
            }
            Profile::AndroidLike | Profile::NoOkAfterClcc | Profile::VgsEquals => {
                "(\"call\",(0,1)),(\"callsetup\",(0-3)),(\"service\",(0-1)),(\"signal\",(0-5)),\
                 (\"roam\",(0,1)),(\"battchg\",(0-5)),(\"callheld\",(0-2))"
            }
            Profile::Minimal => "(\"service\",(0,1)),(\"call\",(0,1)),(\"callsetup\",(0,3))",
        }
    }

    /// The `+CHLD=?` options this phone advertises; `None` without three-way calling.
    pub(crate) fn chld_options(self) -> Option<&'static [&'static str]> {
        match self {
            // As in BTstack's transcript next to `+BRSF:1007`: no plain `0`.
            Profile::IphoneLike => Some(&["1", "1x", "2", "2x", "3"]),
            Profile::AndroidLike | Profile::NoOkAfterClcc | Profile::VgsEquals => {
                Some(&["0", "1", "2", "3"])
            }
            Profile::Minimal => None,
        }
    }

    /// Apple accessory features this phone acknowledges in `+XAPL=iPhone,<n>`;
    /// `None` when it answers `AT+XAPL` with `ERROR`.
    pub(crate) fn xapl_mask(self) -> Option<u32> {
        match self {
            // Battery reporting, dock state, Siri status, noise reduction status.
            Profile::IphoneLike => Some(0x1E),
            // AOSP acknowledges battery reporting only.
            Profile::AndroidLike | Profile::NoOkAfterClcc | Profile::VgsEquals => Some(0x02),
            Profile::Minimal => None,
        }
    }

    /// Whether the phone handles `AT+IPHONEACCEV`.
    pub(crate) fn supports_iphoneaccev(self) -> bool {
        self.xapl_mask().is_some()
    }

    /// Whether `AT+CLCC` ends with `OK` (the quirk of [`Profile::NoOkAfterClcc`]).
    pub(crate) fn ok_after_clcc(self) -> bool {
        self != Profile::NoOkAfterClcc
    }

    /// Separator after `+VGS`/`+VGM` in unsolicited results.
    pub(crate) fn volume_separator(self) -> &'static str {
        if self == Profile::VgsEquals {
            "="
        } else {
            ": "
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A profile name that is none of [`Profile::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown phone profile `{0}`; valid: iphone-like, android-like, minimal, no-ok-after-clcc, vgs-equals"
)]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownProfile(s.to_owned()))
    }
}
