//! Scriptable mocks of every HAL trait, for tests and `codriverd --simulate`.
//!
//! Each mock records what was done to it and can be told what to expect. Expectations are
//! checked in order: an observed call that matches the oldest outstanding expectation consumes
//! it; other calls are recorded but allowed. A mock dropped with expectations left panics,
//! failing the test (the way embedded-hal-mock's `done()` does); call `done()` to check early.

mod audio;
mod bluetooth;
mod controls;
mod sco;

use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::{Mutex, MutexGuard};

pub use audio::{MockAudioInput, MockAudioOutput, Playback};
pub use bluetooth::{BluetoothCall, MockBluetooth, MockRadio, PairingMethod, RadioError};
pub use controls::{MockAmplifier, MockButtonHandle, MockButtons};
pub use sco::{MOCK_SCO_MTU, MockSco, MockScoPhone, ScoCall};

/// An ordered list of expected calls, shared by the mocks.
#[derive(Debug)]
pub(crate) struct Expectations<T: Debug> {
    name: &'static str,
    pending: Mutex<VecDeque<T>>,
}

impl<T: Debug> Expectations<T> {
    pub(crate) fn new(name: &'static str) -> Self {
        Expectations {
            name,
            pending: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn expect(&self, call: T) {
        lock(&self.pending).push_back(call);
    }

    /// Consumes the oldest expectation if `matches` says the observation fulfils it.
    pub(crate) fn observe(&self, matches: impl Fn(&T) -> bool) {
        let mut pending = lock(&self.pending);
        if pending.front().is_some_and(matches) {
            pending.pop_front();
        }
    }

    /// Panics if expectations remain.
    pub(crate) fn done(&self) {
        let pending = std::mem::take(&mut *lock(&self.pending));
        assert!(
            pending.is_empty(),
            "{}: {} expectation(s) not met, first: {:?}",
            self.name,
            pending.len(),
            pending.front()
        );
    }
}

impl<T: Debug> Drop for Expectations<T> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.done();
        }
    }
}

/// Locks a mock's state. A poisoned lock means a test already panicked while holding it; the
/// state is still the best record of what happened, so keep going.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
