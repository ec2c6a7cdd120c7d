//! Sans-IO companion protocol: how the phone app hands voice and text messages to the car and
//! takes voice replies back. The wire format is specified in `docs/companion-protocol.md`.
//!
//! * [`Frame`], [`Decoder`]: the frame codec. The decoder keeps partial frames until they
//!   complete, rejects oversized frames before buffering them, and skips bad frames without
//!   losing the stream.
//! * [`CarSession`]: the head unit's side (codriverd). [`PhoneSession`]: the phone's side
//!   (phone-sim, tests, and a reference for app developers).
//!
//! Sessions own no socket, no clock and no task. Inputs: `handle_input(now, &[u8])`,
//! `handle_timeout(now)` and commands; outputs, drained in this order after every input:
//! `poll_transmit()` until `None`, `poll_timeout()`, `poll_event()` until `None`.
//!
//! ```
//! use std::time::Instant;
//! use codriver_companion::{CarSession, Event, PhoneSession, SessionConfig};
//!
//! let now = Instant::now();
//! let mut car = CarSession::new(SessionConfig::default());
//! let mut phone = PhoneSession::new(SessionConfig::default());
//! car.start(now);
//! phone.start(now);
//! while let Some(frame) = phone.poll_transmit() {
//!     car.handle_input(now, &frame);
//! }
//! while let Some(frame) = car.poll_transmit() {
//!     phone.handle_input(now, &frame);
//! }
//! assert!(matches!(car.poll_event(), Some(Event::Connected(_))));
//! assert!(phone.is_connected());
//! ```

#[cfg(feature = "opus")]
pub mod audio;
mod car;
mod codec;
mod error;
mod event;
mod frame;
mod link;
mod phone;
mod transfer;

pub use car::CarSession;
pub use codec::Decoder;
pub use error::{Error, ErrorCode, ProtocolError};
pub use event::{Event, PeerInfo};
pub use frame::{
    Capabilities, Chunk, Codec, ErrorFrame, Frame, FrameType, HEADER_LEN, Hello, MAGIC, MAX_CODECS,
    MAX_DEVICE_NAME_LEN, MAX_ERROR_TEXT_LEN, MAX_FRAME_LEN, MAX_ID_LEN, MAX_MESSAGE_SIZE,
    MAX_NAME_LEN, MAX_PAYLOAD_LEN, MAX_TEXT_LEN, Role, TextMessage, VERSION, VoiceMessage,
    VoiceReply,
};
pub use link::SessionConfig;
pub use phone::PhoneSession;
