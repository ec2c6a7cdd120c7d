//! Buttons → gestures → actions.
//!
//! [`GestureDetector`] is a small sans-IO state machine: it takes debounced press/release
//! edges and its own deadlines, and reports short, long and double presses. A long press fires
//! as soon as the button has been held long enough (the driver feels it take effect); a short
//! press is reported once the double-press window has passed without a second press, or at
//! once on release when the current context binds no double press to that button
//! ([`GestureDetector::on_edge_with`]): nothing is gained by waiting then.
//! [`resolve`] maps a gesture to an action through the configured bindings for the current
//! context.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use codriver_config::{Action, BindingConfig, BindingContext, Gesture};
use tokio::time::Instant;

/// Timing of gestures, from `[controls]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GestureTiming {
    /// Edges closer than this to the previous edge of the same button are contact bounce.
    pub debounce: Duration,
    /// Held at least this long: a long press.
    pub long_press: Duration,
    /// A second press within this long after a release: a double press.
    pub double_press: Duration,
}

/// A recognised gesture of one button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonGesture {
    /// The button's name.
    pub button: String,
    /// What the driver did.
    pub gesture: Gesture,
}

impl fmt::Display for ButtonGesture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.button, self.gesture)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    /// First press held since.
    Down(Instant),
    /// Long press already reported; waiting for release.
    LongFired,
    /// Released after a short press at; a second press may follow.
    Released(Instant),
    /// Second press of a double press held.
    SecondDown,
}

/// Recognises gestures from button edges.
#[derive(Debug)]
pub struct GestureDetector {
    timing: GestureTiming,
    buttons: HashMap<String, (State, Option<Instant>)>,
}

impl GestureDetector {
    /// A detector with no button pressed.
    pub fn new(timing: GestureTiming) -> Self {
        GestureDetector {
            timing,
            buttons: HashMap::new(),
        }
    }

    /// Changes the timing (config reload).
    pub fn set_timing(&mut self, timing: GestureTiming) {
        self.timing = timing;
    }

    /// Feeds one edge; returns a gesture when the edge completes one. A double press may be
    /// bound: a short press waits out the double-press window.
    pub fn on_edge(&mut self, button: &str, pressed: bool, at: Instant) -> Option<ButtonGesture> {
        self.on_edge_with(button, pressed, at, true)
    }

    /// Feeds one edge. `double_bound` says whether a double press of `button` means anything
    /// now; when it does not, a short press is reported at its release instead of after the
    /// double-press window (lower latency), and a quick second press starts a new gesture.
    pub fn on_edge_with(
        &mut self,
        button: &str,
        pressed: bool,
        at: Instant,
        double_bound: bool,
    ) -> Option<ButtonGesture> {
        let timing = self.timing;
        let (state, last_edge) = self
            .buttons
            .entry(button.to_owned())
            .or_insert((State::Idle, None));
        if last_edge.is_some_and(|t| at.saturating_duration_since(t) < timing.debounce) {
            return None;
        }
        *last_edge = Some(at);
        let (next, gesture) = match (*state, pressed) {
            (State::Idle, true) => (State::Down(at), None),
            (State::Down(since), false) if at - since >= timing.long_press => {
                (State::Idle, Some(Gesture::Long))
            }
            (State::Down(_), false) if !double_bound => (State::Idle, Some(Gesture::Short)),
            (State::Down(_), false) => (State::Released(at), None),
            (State::LongFired, false) => (State::Idle, None),
            (State::Released(r), true) if at - r <= timing.double_press => {
                (State::SecondDown, None)
            }
            // The window passed unnoticed (no timeout call in between): the first was short.
            (State::Released(_), true) => (State::Down(at), Some(Gesture::Short)),
            (State::SecondDown, false) => (State::Idle, Some(Gesture::Double)),
            // Repeated edges in the same direction (missed edge): keep the state.
            (s, _) => (s, None),
        };
        *state = next;
        gesture.map(|gesture| ButtonGesture {
            button: button.to_owned(),
            gesture,
        })
    }

    /// The earliest deadline at which [`on_timeout`](Self::on_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.buttons
            .values()
            .filter_map(|(s, _)| match *s {
                State::Down(since) => Some(since + self.timing.long_press),
                State::Released(at) => Some(at + self.timing.double_press),
                _ => None,
            })
            .min()
    }

    /// Reports the gestures whose deadlines passed by `now`.
    pub fn on_timeout(&mut self, now: Instant) -> Vec<ButtonGesture> {
        let timing = self.timing;
        let mut out = Vec::new();
        for (button, (state, _)) in &mut self.buttons {
            match *state {
                State::Down(since) if now >= since + timing.long_press => {
                    *state = State::LongFired;
                    out.push(ButtonGesture {
                        button: button.clone(),
                        gesture: Gesture::Long,
                    });
                }
                State::Released(at) if now >= at + timing.double_press => {
                    *state = State::Idle;
                    out.push(ButtonGesture {
                        button: button.clone(),
                        gesture: Gesture::Short,
                    });
                }
                _ => {}
            }
        }
        out.sort_by(|a, b| a.button.cmp(&b.button));
        out
    }
}

/// Finds the action for `gesture` given the active contexts, most specific first. A binding
/// for a listed context wins over an `any` binding.
pub fn resolve(
    bindings: &[BindingConfig],
    gesture: &ButtonGesture,
    contexts: &[BindingContext],
) -> Option<Action> {
    let matching = |ctx: BindingContext| {
        bindings.iter().find(|b| {
            b.button.as_str() == gesture.button && b.gesture == gesture.gesture && b.context == ctx
        })
    };
    contexts
        .iter()
        .copied()
        .chain(std::iter::once(BindingContext::Any))
        .find_map(matching)
        .map(|b| b.action)
}

/// Whether a double press of `button` has an action in `contexts` (else a short press need
/// not wait for a second one).
pub fn double_bound(bindings: &[BindingConfig], button: &str, contexts: &[BindingContext]) -> bool {
    let double = ButtonGesture {
        button: button.to_owned(),
        gesture: Gesture::Double,
    };
    resolve(bindings, &double, contexts).is_some()
}

/// The action of a rotary encoder detent (see `codriver_hal::RotaryEncoder`): volume up
/// clockwise, down counter-clockwise; `None` for any other button.
pub fn rotary_action(button: &str) -> Option<Action> {
    match button {
        codriver_hal::ROTARY_CLOCKWISE => Some(Action::VolumeUp),
        codriver_hal::ROTARY_COUNTER_CLOCKWISE => Some(Action::VolumeDown),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: GestureTiming = GestureTiming {
        debounce: Duration::from_millis(20),
        long_press: Duration::from_millis(800),
        double_press: Duration::from_millis(350),
    };

    fn ms(base: Instant, n: u64) -> Instant {
        base + Duration::from_millis(n)
    }

    #[test]
    fn short_press_reported_after_the_double_window() {
        let t0 = Instant::now();
        let mut d = GestureDetector::new(T);
        assert_eq!(d.on_edge("phone", true, t0), None);
        assert_eq!(d.on_edge("phone", false, ms(t0, 100)), None);
        assert_eq!(d.poll_timeout(), Some(ms(t0, 450)));
        assert!(d.on_timeout(ms(t0, 449)).is_empty());
        let g = d.on_timeout(ms(t0, 450));
        assert_eq!(
            g,
            vec![ButtonGesture {
                button: "phone".into(),
                gesture: Gesture::Short
            }]
        );
        assert_eq!(d.poll_timeout(), None, "idle detector has no timer");
    }

    #[test]
    fn long_press_fires_while_held() {
        let t0 = Instant::now();
        let mut d = GestureDetector::new(T);
        d.on_edge("phone", true, t0);
        assert_eq!(d.poll_timeout(), Some(ms(t0, 800)));
        assert_eq!(d.on_timeout(ms(t0, 800))[0].gesture, Gesture::Long);
        assert_eq!(
            d.on_edge("phone", false, ms(t0, 2000)),
            None,
            "release after long is silent"
        );
        assert_eq!(d.poll_timeout(), None);
    }

    #[test]
    fn double_press() {
        let t0 = Instant::now();
        let mut d = GestureDetector::new(T);
        d.on_edge("phone", true, t0);
        d.on_edge("phone", false, ms(t0, 80));
        d.on_edge("phone", true, ms(t0, 250));
        let g = d.on_edge("phone", false, ms(t0, 330));
        assert_eq!(g.map(|g| g.gesture), Some(Gesture::Double));
        assert!(d.on_timeout(ms(t0, 5000)).is_empty());
    }

    #[test]
    fn short_press_at_release_when_no_double_is_bound() {
        let t0 = Instant::now();
        let mut d = GestureDetector::new(T);
        assert_eq!(d.on_edge_with("phone", true, t0, false), None);
        let g = d.on_edge_with("phone", false, ms(t0, 100), false);
        assert_eq!(g.map(|g| g.gesture), Some(Gesture::Short));
        assert_eq!(d.poll_timeout(), None, "nothing left to wait for");
        // A quick second press is a gesture of its own, not half of a double press.
        d.on_edge_with("phone", true, ms(t0, 200), false);
        let g = d.on_edge_with("phone", false, ms(t0, 280), false);
        assert_eq!(g.map(|g| g.gesture), Some(Gesture::Short));
        assert!(d.on_timeout(ms(t0, 5000)).is_empty());
    }

    #[test]
    fn long_press_is_unchanged_without_a_double_binding() {
        let t0 = Instant::now();
        let mut d = GestureDetector::new(T);
        d.on_edge_with("phone", true, t0, false);
        assert_eq!(d.on_timeout(ms(t0, 800))[0].gesture, Gesture::Long);
        assert_eq!(d.on_edge_with("phone", false, ms(t0, 900), false), None);
        // Released after the long threshold without a timer turn: still long, not short.
        d.on_edge_with("phone", true, ms(t0, 2000), false);
        let g = d.on_edge_with("phone", false, ms(t0, 2900), false);
        assert_eq!(g.map(|g| g.gesture), Some(Gesture::Long));
    }

    #[test]
    fn bounce_is_ignored() {
        let t0 = Instant::now();
        let mut d = GestureDetector::new(T);
        d.on_edge("phone", true, t0);
        // Contact bounce: release and press again within 20 ms.
        assert_eq!(d.on_edge("phone", false, ms(t0, 5)), None);
        assert_eq!(d.on_edge("phone", true, ms(t0, 9)), None);
        d.on_edge("phone", false, ms(t0, 120));
        assert_eq!(d.on_timeout(ms(t0, 470))[0].gesture, Gesture::Short);
    }

    #[test]
    fn specific_context_wins_over_any() {
        let binding = |ctx, action| BindingConfig {
            button: "phone".parse().unwrap(),
            gesture: Gesture::Short,
            context: ctx,
            action,
        };
        let bindings = vec![
            binding(BindingContext::Any, Action::VoiceAssistant),
            binding(BindingContext::Ringing, Action::Answer),
        ];
        let g = ButtonGesture {
            button: "phone".into(),
            gesture: Gesture::Short,
        };
        assert_eq!(
            resolve(&bindings, &g, &[BindingContext::Ringing]),
            Some(Action::Answer)
        );
        assert_eq!(
            resolve(&bindings, &g, &[BindingContext::Idle]),
            Some(Action::VoiceAssistant)
        );
        let long = ButtonGesture {
            button: "phone".into(),
            gesture: Gesture::Long,
        };
        assert_eq!(resolve(&bindings, &long, &[BindingContext::Idle]), None);
    }
}
