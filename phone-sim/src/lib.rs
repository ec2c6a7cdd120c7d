//! A simulated phone for codriver.
//!
//! It pairs and connects through the mock Bluetooth HAL ([`codriver_hal::mock::MockRadio`])
//! exactly as a real phone would through BlueZ, and plays the phone's side of the Hands-Free
//! Profile ([`ag::AudioGateway`], a sans-IO Audio Gateway with iPhone-like, Android-like and
//! quirky behaviour profiles). Daemon tests and `codriverd --simulate` drive it.

pub mod ag;
pub mod companion;
pub mod discovery;
pub mod phone;
pub mod tone;

pub use phone::{AgCommand, AgLink, AgLinkError, PhoneSpec, SimulatedPhone};
