//! Engine throughput: AT lines per second through `handle_input` plus draining, and the cost
//! of one line that produces one event.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers outside #[test] fns may panic.
#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn.

use std::hint::black_box;
use std::time::Instant;

use codriver_hfp::{HandsFree, HfConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A connected engine talking to a phone without enhanced call status, so no line triggers
/// a command and the stream can be replayed forever.
fn connected() -> (HandsFree, Instant) {
    let now = Instant::now();
    // Room for every event of one iteration, so nothing is dropped and counted instead.
    let config = HfConfig {
        event_queue_capacity: 4096,
        ..HfConfig::default()
    };
    let mut hf = HandsFree::new(config);
    hf.start(now);
    while let Some(tx) = hf.poll_transmit() {
        let answer: &[u8] = match &tx[..] {
            b"AT+BRSF=1023\r" => b"\r\n+BRSF: 0\r\n\r\nOK\r\n",
            b"AT+CIND=?\r" => b"\r\n+CIND: (\"service\",(0,1)),(\"call\",(0,1)),(\"callsetup\",(0-3)),(\"callheld\",(0-2)),(\"signal\",(0-5)),(\"roam\",(0,1)),(\"battchg\",(0-5))\r\n\r\nOK\r\n",
            b"AT+CIND?\r" => b"\r\n+CIND: 1,0,0,0,3,0,4\r\n\r\nOK\r\n",
            _ => b"\r\nOK\r\n",
        };
        hf.handle_input(now, answer);
    }
    while hf.poll_event().is_some() {}
    (hf, now)
}

/// One incoming call that rings, shows its caller and is dropped, plus signal changes:
/// 12 lines.
const CYCLE: &[u8] = b"\r\n+CIEV: 3,1\r\n\r\nRING\r\n\r\n+CLIP: \"+15550100\",145,,,\"Alice\"\r\n\
\r\n+CIEV: 5,4\r\n\r\nRING\r\n\r\n+CLIP: \"+15550100\",145\r\n\r\n+VGS: 7\r\n\r\n+CIEV: 5,3\r\n\
\r\n+CIEV: 7,2\r\n\r\n+CIEV: 3,0\r\n\r\n+CIEV: 7,4\r\n\r\n+VGM: 9\r\n";
const CYCLE_LINES: u64 = 12;

fn drain(hf: &mut HandsFree) -> usize {
    let mut n = 0;
    while hf.poll_transmit().is_some() {}
    while let Some(e) = hf.poll_event() {
        black_box(e);
        n += 1;
    }
    n
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    let stream: Vec<u8> = CYCLE.repeat(100);
    group.throughput(Throughput::Elements(CYCLE_LINES * 100));
    group.bench_function("lines_whole_reads", |b| {
        let (mut hf, now) = connected();
        b.iter(|| {
            hf.handle_input(now, black_box(&stream));
            drain(&mut hf)
        });
    });
    group.bench_function("lines_64_byte_reads", |b| {
        let (mut hf, now) = connected();
        b.iter(|| {
            for piece in stream.chunks(64) {
                hf.handle_input(now, black_box(piece));
            }
            drain(&mut hf)
        });
    });
    group.finish();

    let mut group = c.benchmark_group("event");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_line_one_event", |b| {
        let (mut hf, now) = connected();
        let mut level = 0u8;
        let lines: Vec<Vec<u8>> = (0..16)
            .map(|l| format!("\r\n+VGS: {l}\r\n").into_bytes())
            .collect();
        b.iter(|| {
            level = (level + 1) % 16;
            hf.handle_input(now, black_box(&lines[usize::from(level)]));
            hf.poll_event()
        });
    });
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
