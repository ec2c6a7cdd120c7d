//! Events reported by the engine.

use std::fmt;

use crate::{AgFeatures, Call, Codec, Error};

/// Something the car's software should know about; drained with
/// [`HandsFree::poll_event`](crate::HandsFree::poll_event).
///
/// `Display` gives the canonical one-line form used by transcripts and logs, e.g.
/// `call 1 incoming +15550100` or `indicator signal 4`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The service level connection is up. `slc-connected features=0x.. codecs=cvsd,msbc`
    SlcConnected {
        /// What the phone supports (`+BRSF`).
        ag_features: AgFeatures,
        /// Codecs both sides can use (only CVSD without codec negotiation).
        codecs: Vec<Codec>,
    },
    /// A mandatory step of the service level connection failed. `slc-failed <reason>`
    SlcFailed {
        /// Why.
        reason: Error,
    },
    /// An indicator changed (or was first read). `indicator <name> <value>`
    Indicator {
        /// Name as the phone sends it, lower-cased (`service`, `call`, `callsetup`, ...).
        name: String,
        /// New value.
        value: u8,
    },
    /// A call appeared. `call <index> <state> <number or ->`
    CallAdded(Call),
    /// A call changed state, number or name. `call <index> <state> <number or ->`
    CallChanged(Call),
    /// A call is gone; its state is [`CallState::Ended`](crate::CallState::Ended).
    /// `call <index> ended <number or ->`
    CallEnded(Call),
    /// The phone rings (`RING`). `ring <number or ->`
    Ring {
        /// Caller number if known (from `+CLIP` or the call list).
        number: Option<String>,
        /// Caller name if known.
        name: Option<String>,
    },
    /// A codec connection was agreed (`+BCS` answered with `AT+BCS`). `codec <name>`
    CodecSelected(Codec),
    /// A volume changed (`+VGS`/`+VGM` from the phone, or our `AT+VGS`/`AT+VGM` accepted).
    /// `volume <speaker|mic> <n>`
    Volume {
        /// Which gain.
        target: VolumeTarget,
        /// Gain 0 to 15.
        level: u8,
    },
    /// Voice recognition started or stopped. `voice-recognition <on|off>`
    VoiceRecognition(bool),
    /// The phone turned in-band ringing on or off (`+BSIR`). `in-band-ring <on|off>`
    InBandRing(bool),
    /// Response-and-hold state from `+BTRH`. `btrh <n>`
    ResponseAndHold(u8),
    /// The phone enabled or disabled one of our HF indicators (`+BIND`). `hf-indicator <id> <on|off>`
    HfIndicator {
        /// Assigned number (1 enhanced safety, 2 battery level).
        id: u16,
        /// Whether the phone wants reports.
        enabled: bool,
    },
    /// Network operator name (`+COPS`). `operator <name or ->`
    Operator(Option<String>),
    /// Own number (`+CNUM`). `subscriber <number>`
    Subscriber(String),
    /// A command failed: refused by the phone, timed out, or the phone misbehaved.
    /// `error <command> <reason>`
    CommandFailed {
        /// The command line as sent, without the trailing `\r`.
        command: String,
        /// Why.
        error: Error,
    },
    /// The phone broke the protocol; the engine ignored the offending input.
    /// `protocol-violation <what>`
    ProtocolViolation(String),
    /// A result code this engine does not know, ignored. `unsolicited <line>`
    Unsolicited(String),
    /// The event queue was full and this many events were dropped; state accessors
    /// ([`HandsFree::calls`](crate::HandsFree::calls) and others) are still accurate.
    /// `events-dropped <n>`
    EventsDropped(u64),
}

/// Which audio gain a [`Event::Volume`] refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VolumeTarget {
    /// Speaker gain (`VGS`).
    Speaker,
    /// Microphone gain (`VGM`).
    Mic,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on_off = |b: bool| if b { "on" } else { "off" };
        match self {
            Self::SlcConnected {
                ag_features,
                codecs,
            } => {
                let codecs: Vec<_> = codecs.iter().map(|c| c.name()).collect();
                write!(
                    f,
                    "slc-connected features={ag_features} codecs={}",
                    codecs.join(",")
                )
            }
            Self::SlcFailed { reason } => write!(f, "slc-failed {reason}"),
            Self::Indicator { name, value } => write!(f, "indicator {name} {value}"),
            Self::CallAdded(c) | Self::CallChanged(c) | Self::CallEnded(c) => {
                write!(f, "call {} {} {}", c.index, c.state, c.number_or_dash())
            }
            Self::Ring { number, .. } => write!(f, "ring {}", number.as_deref().unwrap_or("-")),
            Self::CodecSelected(c) => write!(f, "codec {c}"),
            Self::Volume { target, level } => {
                let t = match target {
                    VolumeTarget::Speaker => "speaker",
                    VolumeTarget::Mic => "mic",
                };
                write!(f, "volume {t} {level}")
            }
            Self::VoiceRecognition(on) => write!(f, "voice-recognition {}", on_off(*on)),
            Self::InBandRing(on) => write!(f, "in-band-ring {}", on_off(*on)),
            Self::ResponseAndHold(n) => write!(f, "btrh {n}"),
            Self::HfIndicator { id, enabled } => {
                write!(f, "hf-indicator {id} {}", on_off(*enabled))
            }
            Self::Operator(name) => write!(f, "operator {}", name.as_deref().unwrap_or("-")),
            Self::Subscriber(number) => write!(f, "subscriber {number}"),
            Self::CommandFailed { command, error } => write!(f, "error {command} {error}"),
            Self::ProtocolViolation(what) => write!(f, "protocol-violation {what}"),
            Self::Unsolicited(line) => write!(f, "unsolicited {line}"),
            Self::EventsDropped(n) => write!(f, "events-dropped {n}"),
        }
    }
}
