//! Drives the engine with arbitrary bytes; shared by the fuzz target and the stable seed test.

use std::time::{Duration, Instant};

use codriver_hfp::{Chld, HandsFree, HfConfig};

/// Feeds `data` to a started engine in pieces whose sizes come from the data itself,
/// advancing the clock, issuing commands and draining every output as a driver would.
pub(crate) fn drive(data: &[u8]) {
    let mut hf = HandsFree::new(HfConfig::default());
    let mut now = Instant::now();
    hf.start(now);
    let mut rest = data;
    let mut step = 0u32;
    while let Some((&control, tail)) = rest.split_first() {
        let len = usize::from(control % 64) + 1;
        let (piece, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        step += 1;
        hf.handle_input(now, piece);
        match control >> 6 {
            0 => {}
            1 => {
                now += Duration::from_secs(6);
                hf.handle_timeout(now);
                // A handled timeout never leaves a deadline in the past.
                assert!(hf.poll_timeout().is_none_or(|d| d > now));
            }
            2 => {
                let _ = hf.answer(now);
                let _ = hf.query_calls(now);
                let _ = hf.hold(now, Chld::HoldActiveAcceptOther);
            }
            _ => {
                let _ = hf.dial(now, "5550100");
                let _ = hf.set_speaker_volume(now, (step % 16) as u8);
                let _ = hf.set_battery_level(now, (step % 101) as u8);
            }
        }
        while hf.poll_transmit().is_some() {}
        while let Some(event) = hf.poll_event() {
            let _ = event.to_string();
        }
        let _ = hf.calls().len();
    }
}
