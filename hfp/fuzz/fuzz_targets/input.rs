//! Fuzz target: arbitrary bytes from the phone, in arbitrary pieces, after `start()`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../drive.rs"]
mod drive;

fuzz_target!(|data: &[u8]| drive::drive(data));
