//! Hands-free controls end to end: gestures from scripted GPIO pin levels (embedded-hal-mock
//! pins, edges timed under paused tokio time) and from the mock buttons, through the daemon's
//! action map in every context that exists today (idle, pairing window, ringing, in call,
//! call waiting), down to the AT command the simulated phone receives.
//!
//! The message contexts (message waiting, playing, recording) arrive with the messages
//! service; their actions give the error tone until then (`replay_is_not_available_yet`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use codriver_config::{Config, Percent};
use codriver_daemon::events::{CallAction, Command};
use codriver_hal::{ButtonSource, EdgeWait, GpioButton, RotaryEncoder};
use codriver_phone_sim::AgCommand;
use codriver_phone_sim::ag::{AgEvent, Profile};
use codriver_tests::{BUTTON, Rig, STEP};
use embedded_hal::digital::{ErrorType, InputPin};
use embedded_hal_mock::eh1::digital::{Edge, Mock as PinMock, State, Transaction};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// An embedded-hal-mock pin whose edges happen at scripted times: before each edge wait
/// resolves (and the mock checks its `wait_for_edge` transaction), it sleeps the next delay of
/// the script, after an optional start signal. With the script used up it never sees another
/// edge, so the mock is not asked for transactions nobody scripted.
struct TimedPin {
    pin: PinMock,
    start: Option<oneshot::Receiver<()>>,
    delays: VecDeque<Duration>,
}

impl TimedPin {
    fn new(pin: &PinMock, delays: impl IntoIterator<Item = Duration>) -> Self {
        TimedPin {
            pin: pin.clone(),
            start: None,
            delays: delays.into_iter().collect(),
        }
    }

    fn gated(mut self, start: oneshot::Receiver<()>) -> Self {
        self.start = Some(start);
        self
    }
}

impl ErrorType for TimedPin {
    type Error = <PinMock as ErrorType>::Error;
}

impl InputPin for TimedPin {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        self.pin.is_high()
    }

    fn is_low(&mut self) -> Result<bool, Self::Error> {
        self.pin.is_low()
    }
}

impl EdgeWait for TimedPin {
    fn wait_edge(&mut self) -> Pin<Box<dyn Future<Output = Result<(), Self::Error>> + Send + '_>> {
        Box::pin(async move {
            if let Some(start) = self.start.take() {
                let _ = start.await;
            }
            let Some(delay) = self.delays.pop_front() else {
                return std::future::pending().await;
            };
            tokio::time::sleep(delay).await;
            embedded_hal_async::digital::Wait::wait_for_any_edge(&mut self.pin).await
        })
    }
}

const MS: fn(u64) -> Duration = Duration::from_millis;

/// A GPIO button (active low) pressed at the given (delay, pressed) steps.
fn scripted_button(steps: &[(u64, bool)]) -> (PinMock, TimedPin) {
    let mut script = vec![Transaction::get(State::High)];
    for &(_, pressed) in steps {
        script.push(Transaction::wait_for_edge(Edge::Any));
        script.push(Transaction::get(if pressed {
            State::Low
        } else {
            State::High
        }));
    }
    let pin = PinMock::new(&script);
    let timed = TimedPin::new(&pin, steps.iter().map(|&(d, _)| MS(d)));
    (pin, timed)
}

/// A rotary encoder turned by whole detents (`true` clockwise), 5 ms per quarter step,
/// starting when `start` fires. Line A's edge wait stands for either line moving (the
/// encoder reads both levels after any edge); line B never reports an edge of its own.
fn scripted_rotary(
    detents: &[bool],
    start: oneshot::Receiver<()>,
) -> (PinMock, PinMock, Box<dyn ButtonSource>) {
    let (h, l) = (State::High, State::Low);
    let cw = [(l, h), (l, l), (h, l), (h, h)];
    let ccw = [(h, l), (l, l), (l, h), (h, h)];
    let mut a = vec![Transaction::get(h)];
    let mut b = vec![Transaction::get(h)];
    for &clockwise in detents {
        for (la, lb) in if clockwise { cw } else { ccw } {
            a.push(Transaction::wait_for_edge(Edge::Any));
            a.push(Transaction::get(la));
            b.push(Transaction::get(lb));
        }
    }
    let (pa, pb) = (PinMock::new(&a), PinMock::new(&b));
    let encoder = RotaryEncoder::new(
        TimedPin::new(&pa, std::iter::repeat_n(MS(5), detents.len() * 4)).gated(start),
        TimedPin::new(&pb, []),
    );
    (pa, pb, Box::new(encoder))
}

async fn phone_did(
    link: &mut codriver_phone_sim::AgLink,
    what: &str,
    want: impl Fn(&AgEvent) -> bool,
) {
    link.wait_for(what, STEP, want).await.unwrap();
}

async fn ring(rig: &mut Rig, link: &codriver_phone_sim::AgLink) {
    link.command(AgCommand::IncomingCall {
        number: "+15550100".into(),
        name: None,
    })
    .await
    .unwrap();
    rig.telephony("call 1 incoming").await;
}

async fn in_call(rig: &mut Rig, link: &codriver_phone_sim::AgLink) {
    ring(rig, link).await;
    rig.handle
        .request(|r| Command::Call(CallAction::Answer, r))
        .await
        .unwrap();
    rig.telephony("call 1 active").await;
}

#[tokio::test(start_paused = true)]
async fn gpio_button_gestures_from_pin_levels_in_idle_and_pairing_window() {
    // Well after boot: a short press, a long press, then a short press in the window.
    let (pin, button) = scripted_button(&[
        (5_000, true),
        (100, false),
        (3_000, true),
        (1_500, false),
        (3_000, true),
        (100, false),
    ]);
    let source = GpioButton::new(BUTTON, button, true);
    let (mut rig, mut link) = Rig::boot_paired_with(
        Config::default(),
        Profile::AndroidLike,
        vec![Box::new(source)],
    )
    .await;
    // Idle short: the voice assistant.
    rig.wait("action voice-assistant").await;
    phone_did(&mut link, "AT+BVRA=1", |e| {
        *e == AgEvent::VoiceRecognition(true)
    })
    .await;
    // Idle long: the pairing window opens (fired while held, not at release).
    rig.wait("pairing-window-opened").await;
    rig.wait("action open-pairing-window").await;
    // Short in the window with no phone asking: nothing to confirm, the error tone.
    rig.wait("action-refused phone short in pairing-window")
        .await;
    rig.shutdown().await;
    let mut pin = pin;
    pin.done();
}

#[tokio::test(start_paused = true)]
async fn replay_is_not_available_yet() {
    let (mut rig, _link) = Rig::boot_paired(Config::default(), Profile::AndroidLike).await;
    rig.double_press().await;
    rig.wait("action-refused phone double in idle").await;
    rig.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn ringing_short_answers_long_rejects() {
    let (mut rig, mut link) = Rig::boot_paired(Config::default(), Profile::AndroidLike).await;
    ring(&mut rig, &link).await;
    rig.press().await;
    rig.wait("action answer").await;
    phone_did(&mut link, "ATA", |e| *e == AgEvent::CallAnswered).await;
    rig.telephony("call 1 active").await;
    link.command(AgCommand::RemoteHangup).await.unwrap();
    rig.telephony("call 1 ended").await;
    ring(&mut rig, &link).await;
    tokio::time::sleep(MS(500)).await;
    rig.long_press().await;
    rig.wait("action reject").await;
    phone_did(&mut link, "AT+CHUP", |e| *e == AgEvent::CallHungUp).await;
    rig.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn in_call_long_holds_and_short_hangs_up_at_release() {
    let (mut rig, mut link) = Rig::boot_paired(Config::default(), Profile::AndroidLike).await;
    in_call(&mut rig, &link).await;
    rig.long_press().await;
    rig.wait("action hold").await;
    phone_did(&mut link, "AT+CHLD=2", |e| *e == AgEvent::Chld("2".into())).await;
    // A moment later (an edge within the debounce time of the last one is contact bounce).
    tokio::time::sleep(MS(500)).await;
    // No double press is bound in a call: the short press acts at its release, without
    // waiting out the 350 ms double-press window.
    rig.buttons.edge(BUTTON, true).await;
    tokio::time::sleep(MS(100)).await;
    rig.buttons.edge(BUTTON, false).await;
    let released = Instant::now();
    rig.wait("action hangup").await;
    assert!(released.elapsed() < MS(50), "{:?}", released.elapsed());
    phone_did(&mut link, "AT+CHUP", |e| *e == AgEvent::CallHungUp).await;
    rig.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn idle_short_press_waits_for_a_possible_double() {
    let (mut rig, _link) = Rig::boot_paired(Config::default(), Profile::AndroidLike).await;
    rig.buttons.edge(BUTTON, true).await;
    tokio::time::sleep(MS(100)).await;
    rig.buttons.edge(BUTTON, false).await;
    let released = Instant::now();
    rig.wait("action voice-assistant").await;
    assert!(released.elapsed() >= MS(350), "{:?}", released.elapsed());
    rig.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn call_waiting_double_press_swaps() {
    let (mut rig, mut link) = Rig::boot_paired(Config::default(), Profile::AndroidLike).await;
    in_call(&mut rig, &link).await;
    link.command(AgCommand::CallWaiting {
        number: "+15550199".into(),
    })
    .await
    .unwrap();
    rig.telephony("call 2 waiting").await;
    rig.double_press().await;
    rig.wait("action swap").await;
    phone_did(&mut link, "AT+CHLD=2", |e| *e == AgEvent::Chld("2".into())).await;
    rig.telephony("call 2 active").await;
    rig.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn rotary_encoder_sets_the_call_volume_with_vgs() {
    let (start, gate) = oneshot::channel();
    let (pa, pb, encoder) = scripted_rotary(&[true, true, false], gate);
    let (mut rig, mut link) =
        Rig::boot_paired_with(Config::default(), Profile::AndroidLike, vec![encoder]).await;
    in_call(&mut rig, &link).await;
    let before = rig.handle.snapshot().borrow().phones[0].speaker_volume;
    let level = before.unwrap_or(8);
    start.send(()).unwrap();
    for want in [level + 1, level + 2, level + 1] {
        rig.wait("action volume-").await;
        phone_did(&mut link, "AT+VGS", |e| *e == AgEvent::SpeakerVolume(want)).await;
    }
    rig.shutdown().await;
    let (mut pa, mut pb) = (pa, pb);
    pa.done();
    pb.done();
}

#[tokio::test(start_paused = true)]
async fn rotary_encoder_sets_the_chime_volume_when_idle_with_an_error_at_the_top() {
    let mut config = Config::default();
    config.audio.volume.chime = Percent::new(90).unwrap();
    let (start, gate) = oneshot::channel();
    let (pa, pb, encoder) = scripted_rotary(&[true, true], gate);
    let (mut rig, _link) = Rig::boot_paired_with(config, Profile::AndroidLike, vec![encoder]).await;
    start.send(()).unwrap();
    rig.wait("action volume-up").await;
    // At 100 % the next step cannot apply: the error tone.
    rig.wait("action-refused rotary-cw short").await;
    assert_eq!(rig.handle.snapshot().borrow().volume, 100);
    rig.shutdown().await;
    let (mut pa, mut pb) = (pa, pb);
    pa.done();
    pb.done();
}
