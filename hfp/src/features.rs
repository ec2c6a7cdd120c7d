//! Supported-feature bitmaps exchanged with `AT+BRSF`, and audio codecs.

use std::fmt;

/// Features of the Hands-Free unit (the car), sent in `AT+BRSF=<n>` (HFP 1.9, 4.34.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HfFeatures(pub u32);

impl HfFeatures {
    /// Echo cancelling and/or noise reduction function.
    pub const EC_NR: Self = Self(0x0001);
    /// Call waiting or three-way calling.
    pub const THREE_WAY: Self = Self(0x0002);
    /// Calling line identification presentation.
    pub const CLI: Self = Self(0x0004);
    /// Voice recognition activation.
    pub const VOICE_RECOGNITION: Self = Self(0x0008);
    /// Remote volume control.
    pub const REMOTE_VOLUME: Self = Self(0x0010);
    /// Enhanced call status (`AT+CLCC`).
    pub const ENHANCED_CALL_STATUS: Self = Self(0x0020);
    /// Enhanced call control (`AT+CHLD=1x`, `2x`).
    pub const ENHANCED_CALL_CONTROL: Self = Self(0x0040);
    /// Codec negotiation (`AT+BAC`, `+BCS`).
    pub const CODEC_NEGOTIATION: Self = Self(0x0080);
    /// HF indicators (`AT+BIND`, `AT+BIEV`).
    pub const HF_INDICATORS: Self = Self(0x0100);
    /// eSCO S4 (and T2) settings.
    pub const ESCO_S4: Self = Self(0x0200);
    /// Enhanced voice recognition status.
    pub const ENHANCED_VR_STATUS: Self = Self(0x0400);
    /// Voice recognition text.
    pub const VR_TEXT: Self = Self(0x0800);
    /// Super wide band speech (LC3-SWB), HFP 1.9.
    pub const SUPER_WIDEBAND: Self = Self(0x1000);

    /// The features this crate implements, which is the default for [`HfConfig`](crate::HfConfig).
    pub const DEFAULT: Self = Self(0x03ff);

    /// Raw bitmap as sent on the wire.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// True when every bit of `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for HfFeatures {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl fmt::Display for HfFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// Features of the Audio Gateway (the phone), received in `+BRSF: <n>` (HFP 1.9, 4.34.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AgFeatures(pub u32);

impl AgFeatures {
    /// Three-way calling.
    pub const THREE_WAY: Self = Self(0x0001);
    /// Echo cancelling and/or noise reduction function.
    pub const EC_NR: Self = Self(0x0002);
    /// Voice recognition function.
    pub const VOICE_RECOGNITION: Self = Self(0x0004);
    /// In-band ring tone capability.
    pub const IN_BAND_RING: Self = Self(0x0008);
    /// Attach a number to a voice tag.
    pub const VOICE_TAG: Self = Self(0x0010);
    /// Ability to reject a call.
    pub const REJECT_CALL: Self = Self(0x0020);
    /// Enhanced call status (`AT+CLCC`).
    pub const ENHANCED_CALL_STATUS: Self = Self(0x0040);
    /// Enhanced call control.
    pub const ENHANCED_CALL_CONTROL: Self = Self(0x0080);
    /// Extended error result codes (`AT+CMEE`).
    pub const EXTENDED_ERRORS: Self = Self(0x0100);
    /// Codec negotiation.
    pub const CODEC_NEGOTIATION: Self = Self(0x0200);
    /// HF indicators.
    pub const HF_INDICATORS: Self = Self(0x0400);
    /// eSCO S4 (and T2) settings.
    pub const ESCO_S4: Self = Self(0x0800);
    /// Enhanced voice recognition status.
    pub const ENHANCED_VR_STATUS: Self = Self(0x1000);
    /// Voice recognition text.
    pub const VR_TEXT: Self = Self(0x2000);

    /// Raw bitmap as received.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// True when every bit of `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for AgFeatures {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl fmt::Display for AgFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// Speech codec, identified on the wire by its HFP codec id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// CVSD narrow band, id 1, mandatory.
    Cvsd,
    /// mSBC wide band, id 2.
    Msbc,
    /// LC3 super wide band, id 3 (HFP 1.9).
    Lc3Swb,
}

impl Codec {
    /// The codec id used in `AT+BAC`, `+BCS` and `AT+BCS`.
    pub const fn id(self) -> u8 {
        match self {
            Self::Cvsd => 0x01,
            Self::Msbc => 0x02,
            Self::Lc3Swb => 0x03,
        }
    }

    /// The codec for a wire id, if known.
    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            0x01 => Some(Self::Cvsd),
            0x02 => Some(Self::Msbc),
            0x03 => Some(Self::Lc3Swb),
            _ => None,
        }
    }

    /// Canonical lowercase name: `cvsd`, `msbc`, `lc3-swb`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Cvsd => "cvsd",
            Self::Msbc => "msbc",
            Self::Lc3Swb => "lc3-swb",
        }
    }

    /// The codec for a canonical name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Cvsd, Self::Msbc, Self::Lc3Swb]
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
