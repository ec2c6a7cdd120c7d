//! Mock buttons and amplifier.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::lock;
use crate::controls::{AmpState, Amplifier, ButtonEvent, ButtonSource, ControlError};

/// A button source driven by a test or the simulator through a [`MockButtonHandle`].
#[derive(Debug)]
pub struct MockButtons {
    rx: mpsc::Receiver<ButtonEvent>,
}

/// Presses and releases buttons of a [`MockButtons`].
#[derive(Debug, Clone)]
pub struct MockButtonHandle {
    tx: mpsc::Sender<ButtonEvent>,
}

impl MockButtons {
    /// A button source and the handle that drives it.
    pub fn new() -> (MockButtons, MockButtonHandle) {
        let (tx, rx) = mpsc::channel(16);
        (MockButtons { rx }, MockButtonHandle { tx })
    }
}

impl MockButtonHandle {
    /// Reports an edge of `button` now.
    pub async fn edge(&self, button: &str, pressed: bool) {
        let event = ButtonEvent {
            button: button.to_owned(),
            pressed,
            at: Instant::now(),
        };
        // The daemon side is gone: the test is ending, nothing to deliver to.
        let _ = self.tx.send(event).await;
    }

    /// Presses `button`, holds it for `hold`, and releases it.
    pub async fn press(&self, button: &str, hold: std::time::Duration) {
        self.edge(button, true).await;
        tokio::time::sleep(hold).await;
        self.edge(button, false).await;
    }
}

#[async_trait]
impl ButtonSource for MockButtons {
    fn describe(&self) -> String {
        "mock buttons".to_owned()
    }

    async fn next_event(&mut self) -> Result<ButtonEvent, ControlError> {
        self.rx.recv().await.ok_or(ControlError::Ended)
    }
}

/// An amplifier that records every state it was set to.
#[derive(Debug, Clone, Default)]
pub struct MockAmplifier {
    states: Arc<Mutex<Vec<AmpState>>>,
}

impl MockAmplifier {
    /// Every state set so far, in order.
    pub fn states(&self) -> Vec<AmpState> {
        lock(&self.states).clone()
    }
}

impl Amplifier for MockAmplifier {
    fn set(&mut self, state: AmpState) -> Result<(), ControlError> {
        lock(&self.states).push(state);
        Ok(())
    }
}
