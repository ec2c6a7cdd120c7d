//! Every string choice in the file is one of these enums; an unknown spelling is an error that
//! lists the valid ones.

use std::fmt;
use std::str::FromStr;

use serde::de::{Deserialize, Deserializer};

use crate::error::ParseValueError;
use crate::types::{FromStrVisitor, quoted_list};

/// Adds `ALL`, `as_str`, `Display`, `FromStr` and `Deserialize` to a fieldless enum whose
/// variants are spelled as given in the file.
macro_rules! string_enum {
    ($name:ident, what = $what:literal, { $($variant:ident = $text:literal,)+ }) => {
        impl $name {
            /// Every value, in the order the documentation lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// How the value is spelled in the config file.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseValueError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(ParseValueError::new(format!(
                        concat!("invalid ", $what, " {:?}: expected one of {}"),
                        s,
                        quoted_list(&[$($text),+]),
                    ))),
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(FromStrVisitor::new(format!(
                    "one of {}",
                    quoted_list(&[$($text),+])
                )))
            }
        }
    };
}

/// How a pairing request is approved (`pairing.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum PairingPolicy {
    /// The driver confirms the numeric comparison / passkey with a button press.
    Button,
    /// A head-unit UI approves over D-Bus.
    Dbus,
    /// Whichever comes first: a button press or a D-Bus approval.
    #[default]
    ButtonOrDbus,
    /// Accept without asking, inside the pairing window, devices on `pairing.allowlist`.
    Allowlist,
}

string_enum!(PairingPolicy, what = "pairing policy", {
    Button = "button",
    Dbus = "dbus",
    ButtonOrDbus = "button-or-dbus",
    Allowlist = "allowlist",
});

/// A Hands-Free Profile feature the HF side advertises in `AT+BRSF` (`hfp.features`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HfpFeature {
    /// Echo cancellation and/or noise reduction done by the HF.
    EcNr,
    /// Three-way calling (call waiting, hold, swap).
    ThreeWay,
    /// Calling line identification (caller number) presentation.
    Cli,
    /// Voice recognition activation (the phone's voice assistant).
    VoiceRecognition,
    /// Remote volume control (`+VGS`/`+VGM`).
    RemoteVolume,
    /// Enhanced call status (`AT+CLCC` call list).
    EnhancedCallStatus,
    /// Enhanced call control (release / private consultation of a specific call).
    EnhancedCallControl,
    /// Codec negotiation (`AT+BAC`/`+BCS`), needed for mSBC and LC3-SWB.
    CodecNegotiation,
    /// HF indicators (`AT+BIND`, e.g. battery level).
    HfIndicators,
    /// eSCO S4 settings (HFP 1.7+).
    EscoS4,
}

string_enum!(HfpFeature, what = "HFP feature", {
    EcNr = "ec-nr",
    ThreeWay = "three-way",
    Cli = "cli",
    VoiceRecognition = "voice-recognition",
    RemoteVolume = "remote-volume",
    EnhancedCallStatus = "enhanced-call-status",
    EnhancedCallControl = "enhanced-call-control",
    CodecNegotiation = "codec-negotiation",
    HfIndicators = "hf-indicators",
    EscoS4 = "esco-s4",
});

impl HfpFeature {
    /// The feature's bit in the HF supported features bitmap of `AT+BRSF` (HFP 1.8, 4.34.2).
    pub const fn brsf_bit(self) -> u32 {
        match self {
            HfpFeature::EcNr => 0x001,
            HfpFeature::ThreeWay => 0x002,
            HfpFeature::Cli => 0x004,
            HfpFeature::VoiceRecognition => 0x008,
            HfpFeature::RemoteVolume => 0x010,
            HfpFeature::EnhancedCallStatus => 0x020,
            HfpFeature::EnhancedCallControl => 0x040,
            HfpFeature::CodecNegotiation => 0x080,
            HfpFeature::HfIndicators => 0x100,
            HfpFeature::EscoS4 => 0x200,
        }
    }
}

/// A voice codec for the SCO/eSCO link (`hfp.codecs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Codec {
    /// CVSD, narrowband 8 kHz; mandatory in HFP.
    Cvsd,
    /// mSBC, wideband 16 kHz.
    Msbc,
    /// LC3 super-wideband 32 kHz (HFP 1.9).
    Lc3Swb,
}

string_enum!(Codec, what = "codec", {
    Cvsd = "cvsd",
    Msbc = "msbc",
    Lc3Swb = "lc3-swb",
});

impl Codec {
    /// The codec ID used in `AT+BAC` and `+BCS` (HFP 1.9, Assigned Numbers).
    pub const fn id(self) -> u8 {
        match self {
            Codec::Cvsd => 0x01,
            Codec::Msbc => 0x02,
            Codec::Lc3Swb => 0x03,
        }
    }
}

/// Where audio goes to or comes from (`audio.output_backend`, `audio.input_backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum AudioBackend {
    /// The system's default sound device; the WAV backend when there is none.
    #[default]
    SystemDefault,
    /// The ALSA device named by `audio.output_device` / `audio.input_device`.
    Alsa,
    /// WAV files: output written under `audio.wav_directory`, input read from `audio.input_wav`.
    Wav,
    /// Discard output; record silence.
    Null,
}

string_enum!(AudioBackend, what = "audio backend", {
    SystemDefault = "default",
    Alsa = "alsa",
    Wav = "wav",
    Null = "null",
});

/// What happens to lower-priority audio when higher-priority audio starts (`audio.focus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum LowerPriority {
    /// Keep playing at `audio.focus.duck_level` percent of its volume.
    #[default]
    Duck,
    /// Pause, and resume afterwards.
    Pause,
}

string_enum!(LowerPriority, what = "focus behaviour", {
    Duck = "duck",
    Pause = "pause",
});

/// How a button was pressed (`controls.bindings[].gesture`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Gesture {
    /// Pressed and released before `controls.long_press`, not followed by a second press.
    Short,
    /// Held for `controls.long_press` or longer.
    Long,
    /// Two short presses within `controls.double_press`.
    Double,
}

string_enum!(Gesture, what = "gesture", {
    Short = "short",
    Long = "long",
    Double = "double",
});

/// The state in which a binding applies (`controls.bindings[].context`).
///
/// The daemon uses the binding for the current context, or else the one for `any`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BindingContext {
    /// No call, nothing playing, no message waiting.
    Idle,
    /// An incoming call is ringing.
    Ringing,
    /// A call is active.
    InCall,
    /// A call is active and a second one is waiting.
    CallWaiting,
    /// Idle with unplayed voice messages in the spool.
    MessageWaiting,
    /// A voice message is playing.
    Playing,
    /// A voice reply is being recorded.
    Recording,
    /// The pairing window is open or a pairing request awaits confirmation.
    PairingWindow,
    /// Any state without a more specific binding.
    Any,
}

string_enum!(BindingContext, what = "context", {
    Idle = "idle",
    Ringing = "ringing",
    InCall = "in-call",
    CallWaiting = "call-waiting",
    MessageWaiting = "message-waiting",
    Playing = "playing",
    Recording = "recording",
    PairingWindow = "pairing-window",
    Any = "any",
});

/// What a button gesture does (`controls.bindings[].action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Answer the ringing call (or the waiting one, holding the active call).
    Answer,
    /// Reject the ringing or waiting call.
    Reject,
    /// End the active call.
    Hangup,
    /// Swap the active and the held/waiting call.
    Swap,
    /// Put the active call on hold, or resume it.
    Hold,
    /// Start the phone's voice assistant (voice recognition).
    VoiceAssistant,
    /// Play the oldest unplayed voice message.
    PlayNextMessage,
    /// Play the last message again.
    Replay,
    /// Skip to the next message.
    Skip,
    /// Stop playback.
    Stop,
    /// Record a voice reply to the message just played.
    RecordReply,
    /// Finish and send the reply being recorded.
    SendReply,
    /// Discard the reply being recorded.
    CancelReply,
    /// Raise the volume of what is playing (or of the call).
    VolumeUp,
    /// Lower the volume of what is playing (or of the call).
    VolumeDown,
    /// Open the pairing window for `pairing.window`.
    OpenPairingWindow,
    /// Confirm the pending pairing request.
    ConfirmPairing,
    /// Reject the pending pairing request.
    RejectPairing,
}

string_enum!(Action, what = "action", {
    Answer = "answer",
    Reject = "reject",
    Hangup = "hangup",
    Swap = "swap",
    Hold = "hold",
    VoiceAssistant = "voice-assistant",
    PlayNextMessage = "play-next-message",
    Replay = "replay",
    Skip = "skip",
    Stop = "stop",
    RecordReply = "record-reply",
    SendReply = "send-reply",
    CancelReply = "cancel-reply",
    VolumeUp = "volume-up",
    VolumeDown = "volume-down",
    OpenPairingWindow = "open-pairing-window",
    ConfirmPairing = "confirm-pairing",
    RejectPairing = "reject-pairing",
});

/// Which D-Bus bus the API is served on (`dbus.bus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum BusKind {
    /// The system bus: the daemon as a system service.
    #[default]
    System,
    /// The session bus: development and `--simulate` as a normal user.
    Session,
}

string_enum!(BusKind, what = "bus", {
    System = "system",
    Session = "session",
});

/// Where logs go (`logging.target`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum LogTarget {
    /// The journal when started by systemd (`JOURNAL_STREAM` set), standard error otherwise.
    #[default]
    Auto,
    /// The systemd journal, with structured fields.
    Journald,
    /// Standard error, as text.
    Stderr,
}

string_enum!(LogTarget, what = "log target", {
    Auto = "auto",
    Journald = "journald",
    Stderr = "stderr",
});

/// How the simulated phone of `codriverd --simulate` behaves (`simulation.profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum SimulationProfile {
    /// Behaves like an iPhone's Audio Gateway.
    #[default]
    IphoneLike,
    /// Behaves like a typical Android Audio Gateway.
    AndroidLike,
    /// Only what HFP makes mandatory.
    Minimal,
}

string_enum!(SimulationProfile, what = "simulation profile", {
    IphoneLike = "iphone-like",
    AndroidLike = "android-like",
    Minimal = "minimal",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for action in Action::ALL {
            assert_eq!(action.as_str().parse::<Action>(), Ok(*action));
        }
        for feature in HfpFeature::ALL {
            assert_eq!(feature.to_string().parse::<HfpFeature>(), Ok(*feature));
        }
        assert_eq!(AudioBackend::default().as_str(), "default");
    }

    #[test]
    fn unknown_spelling_lists_the_valid_ones() {
        assert_eq!(
            "magic".parse::<PairingPolicy>().unwrap_err().to_string(),
            "invalid pairing policy \"magic\": expected one of \"button\", \"dbus\", \
             \"button-or-dbus\", \"allowlist\""
        );
    }

    #[test]
    fn brsf_bits_are_distinct() {
        let all = HfpFeature::ALL
            .iter()
            .fold(0, |bits, feature| bits | feature.brsf_bit());
        assert_eq!(all, 0x3ff);
    }
}
