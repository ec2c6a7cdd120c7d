//! Codec throughput for voice chunks: bytes per second through the decoder (whole reads and
//! 4 KiB reads, as RFCOMM and L2CAP deliver them), the encoder, and a car session receiving a
//! 1 MiB message including its events.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers outside #[test] fns may panic.
#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn.

use std::hint::black_box;
use std::time::Instant;

use codriver_companion::{
    CarSession, Chunk, Codec, Decoder, Event, Frame, PhoneSession, SessionConfig, VoiceMessage,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const MESSAGE: usize = 1 << 20;
const CHUNK: usize = 0x4000;

fn chunk_stream() -> Vec<u8> {
    let data: Vec<u8> = (0..MESSAGE).map(|i| (i * 31 % 251) as u8).collect();
    let mut out = Vec::new();
    for (n, piece) in data.chunks(CHUNK).enumerate() {
        Frame::Chunk(Chunk {
            id: "m-0001".into(),
            offset: u32::try_from(n * CHUNK).unwrap(),
            data: piece.to_vec(),
        })
        .encode(&mut out)
        .unwrap();
    }
    out
}

fn decode_all(d: &mut Decoder, stream: &[u8], read: usize) -> usize {
    let mut frames = 0;
    for piece in stream.chunks(read) {
        let mut input = piece;
        while let Some(f) = d.decode(&mut input) {
            black_box(f.unwrap());
            frames += 1;
        }
    }
    frames
}

/// A connected car that has accepted `m-0001` of `MESSAGE` bytes.
fn receiving_car(now: Instant) -> CarSession {
    let mut car = CarSession::new(SessionConfig::default());
    let mut phone = PhoneSession::new(SessionConfig::default());
    car.start(now);
    phone.start(now);
    while let Some(f) = phone.poll_transmit() {
        car.handle_input(now, &f);
    }
    while let Some(f) = car.poll_transmit() {
        phone.handle_input(now, &f);
    }
    let m = VoiceMessage {
        id: "m-0001".into(),
        sender_id: "+15550100".into(),
        sender_name: "Alice".into(),
        conversation_id: "conv-7".into(),
        conversation_name: String::new(),
        codec: Codec::OggOpus,
        duration_ms: 600_000,
        timestamp_ms: 1_700_000_000_000,
        size: 0,
    };
    phone.send_voice(m, vec![0; MESSAGE]).unwrap();
    let offer = phone.poll_transmit().unwrap();
    car.handle_input(now, &offer);
    car.accept("m-0001", 0).unwrap();
    while car.poll_transmit().is_some() {}
    while car.poll_event().is_some() {}
    car
}

fn throughput(c: &mut Criterion) {
    let stream = chunk_stream();
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("decode_16k_chunks_whole_reads", |b| {
        let mut d = Decoder::new();
        b.iter(|| decode_all(&mut d, black_box(&stream), stream.len()));
    });
    group.bench_function("decode_16k_chunks_4k_reads", |b| {
        let mut d = Decoder::new();
        b.iter(|| decode_all(&mut d, black_box(&stream), 4096));
    });
    group.bench_function("encode_16k_chunks", |b| {
        let data = vec![0x5a; MESSAGE];
        let mut out = Vec::with_capacity(stream.len());
        b.iter(|| {
            out.clear();
            for (n, piece) in data.chunks(CHUNK).enumerate() {
                Frame::Chunk(Chunk {
                    id: "m-0001".into(),
                    offset: u32::try_from(n * CHUNK).unwrap(),
                    data: piece.to_vec(),
                })
                .encode(&mut out)
                .unwrap();
            }
            black_box(out.len())
        });
    });
    group.bench_function("phone_session_send_1mib", |b| {
        let now = Instant::now();
        b.iter_batched(
            || {
                let mut phone = PhoneSession::new(SessionConfig::default());
                let mut car = CarSession::new(SessionConfig::default());
                phone.start(now);
                car.start(now);
                while let Some(f) = car.poll_transmit() {
                    phone.handle_input(now, &f);
                }
                while phone.poll_transmit().is_some() {}
                let m = VoiceMessage {
                    id: "m-0001".into(),
                    sender_id: String::new(),
                    sender_name: String::new(),
                    conversation_id: String::new(),
                    conversation_name: String::new(),
                    codec: Codec::OggOpus,
                    duration_ms: 0,
                    timestamp_ms: 0,
                    size: 0,
                };
                phone.send_voice(m, vec![0; MESSAGE]).unwrap();
                while phone.poll_transmit().is_some() {}
                let accept = Frame::Accept {
                    id: "m-0001".into(),
                    offset: 0,
                };
                (phone, accept.to_bytes().unwrap())
            },
            |(mut phone, accept)| {
                phone.handle_input(now, &accept);
                let mut n = 0;
                while let Some(f) = phone.poll_transmit() {
                    n += f.len();
                }
                n
            },
            criterion::BatchSize::LargeInput,
        );
    });
    group.bench_function("car_session_receive_1mib_4k_reads", |b| {
        let now = Instant::now();
        b.iter_batched(
            || receiving_car(now),
            |mut car| {
                let mut bytes = 0;
                for piece in stream.chunks(4096) {
                    car.handle_input(now, piece);
                    while let Some(e) = car.poll_event() {
                        if let Event::ChunkReceived { data, .. } = e {
                            bytes += data.len();
                        }
                    }
                }
                assert_eq!(bytes, MESSAGE);
                car
            },
            criterion::BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
