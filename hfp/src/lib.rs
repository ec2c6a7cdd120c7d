//! Sans-IO Hands-Free Profile engine (HF role, HFP 1.8/1.9).
//!
//! [`HandsFree`] is a pure state machine: it owns no socket, no clock and no task. The caller
//! feeds it bytes read from the RFCOMM channel ([`HandsFree::handle_input`]), the current time
//! when its deadline passes ([`HandsFree::handle_timeout`]) and commands
//! ([`HandsFree::answer`], [`HandsFree::dial`], ...), then drains, in this order:
//!
//! 1. [`HandsFree::poll_transmit`] until `None`: write each AT command line to the channel;
//! 2. [`HandsFree::poll_timeout`]: re-arm the one timer;
//! 3. [`HandsFree::poll_event`] until `None`: act on events.
//!
//! ```
//! use std::time::Instant;
//! use codriver_hfp::{HandsFree, HfConfig};
//!
//! let mut hf = HandsFree::new(HfConfig::default());
//! let now = Instant::now();
//! hf.start(now);
//! assert_eq!(hf.poll_transmit().as_deref(), Some(&b"AT+BRSF=1023\r"[..]));
//! hf.handle_input(now, b"\r\n+BRSF: 0\r\n\r\nOK\r\n");
//! assert_eq!(hf.poll_transmit().as_deref(), Some(&b"AT+CIND=?\r"[..]));
//! ```
//!
//! [`transcript`] runs the text transcripts used by this crate's tests and the `replay` example.

mod at;
mod call;
mod engine;
mod error;
mod event;
mod features;
pub mod transcript;

pub use call::{Call, CallState, Chld, Direction};
pub use engine::{AppleAccessory, HandsFree, HfConfig};
pub use error::{CmeError, Error};
pub use event::{Event, VolumeTarget};
pub use features::{AgFeatures, Codec, HfFeatures};
