//! Voice message benchmarks: the whole daemon in-process (mock Bluetooth, a timing audio
//! output) with phone-sim's companion peer over the loopback TCP transport, in real time.
//!
//! 1. **Transfer throughput**: a `BENCH_MIB` (8) MiB voice message from offer to
//!    `DELIVERY_ACK` (16 KiB chunks written into the spool by its writer thread, fsync'd once
//!    at the commit), with the spool on tmpfs (`/dev/shm`, protocol and transport cost) and on
//!    disk (+ write-back and the commit's fsync), next to a raw TCP copy of the same bytes in
//!    16 KiB writes on the same runtime.
//! 2. **Last chunk to first sample played**: a one-second Ogg Opus message; from the phone
//!    writing its last chunk to the first sample of the message (and of the arrival chime
//!    before it) reaching the audio output. The output is in-process and not paced by a sound
//!    card, so the chime takes no playing time here; announcements are off.
//! 3. **Opus speed**: encoding a minute of fixture speech as Ogg Opus (16 kHz, 24 kbit/s) and
//!    decoding it (to 16 and 48 kHz), as multiples of real time, on one core.
//!
//! `cargo bench -p codriver-daemon --bench messages` (`BENCH_RUNS`, default 5).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use codriver_companion::Event;
use codriver_companion::audio::{decode_ogg_opus, encode_ogg_opus};
use codriver_config::Config;
use codriver_daemon::Daemon;
use codriver_daemon::events::DaemonEvent;
use codriver_hal::mock::{MockAudioInput, MockBluetooth};
use codriver_hal::{AudioError, AudioOutput, Focus, Hal, PcmFormat, PcmSink};
use codriver_phone_sim::companion::{
    CompanionPhone, fixture_speech, opus_voice_message, voice_message,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

const STEP: Duration = Duration::from_secs(60);

fn main() {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let mib = env("BENCH_MIB", 8);
    let runs = env("BENCH_RUNS", 5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            let dir = tempfile::tempdir_in(shm).unwrap();
            throughput("spool on tmpfs", dir.path(), mib, runs).await;
        }
        let dir = tempfile::tempdir().unwrap();
        throughput("spool on disk", dir.path(), mib, runs).await;
        latency(runs.max(10)).await;
    });
    opus_speed();
}

/// A loopback port for the daemon's companion transport.
fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), codriver_daemon::DaemonError>>,
    events: tokio::sync::broadcast::Receiver<DaemonEvent>,
    addr: SocketAddr,
}

async fn boot(spool: &Path, output: Arc<dyn AudioOutput>) -> Running {
    let addr = free_addr();
    let mut config = Config::default();
    config.dbus.enabled = false;
    config.messages.spool_directory = spool.to_owned();
    config.messages.companion_tcp = Some(addr);
    config.messages.announce = false;
    config.messages.tts_command = "/nonexistent/espeak-ng".into();
    let hal = Hal {
        bluetooth: Arc::new(MockBluetooth::new()),
        audio_out: output,
        audio_in: Arc::new(MockAudioInput::new()),
        buttons: Vec::new(),
        amplifier: None,
    };
    let daemon = Daemon::new(config, hal);
    let mut events = daemon.handle().subscribe();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(daemon.run(async move {
        let _ = stopped.await;
    }));
    wait(&mut events, "ready").await;
    Running {
        stop,
        task,
        events,
        addr,
    }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

async fn throughput(what: &str, spool: &Path, mib: usize, runs: usize) {
    let daemon = boot(spool, Arc::new(codriver_hal::mock::MockAudioOutput::new())).await;
    let mut phone = CompanionPhone::connect(daemon.addr).await.unwrap();
    phone.handshake(STEP).await.unwrap();
    // Not Ogg: the player skips it at once instead of decoding 8 MiB in the background.
    let data: Vec<u8> = (0..mib << 20).map(|i| (i * 7 + i / 255) as u8).collect();
    let mut ours = Vec::new();
    let mut raw = Vec::new();
    for run in 0..runs {
        let id = format!("t{run}");
        let mut m = voice_message(&id, "Bench", 1000);
        m.codec = codriver_companion::Codec::OggOpus;
        let t0 = Instant::now();
        phone.send_voice(m, data.clone()).await.unwrap();
        phone
            .wait_for("delivered", STEP, |e| matches!(e, Event::Delivered { .. }))
            .await
            .unwrap();
        ours.push(t0.elapsed());
        raw.push(raw_copy(&data).await);
    }
    drop(phone);
    daemon.stop().await;
    let rate = |d: Duration| (mib as f64) / d.as_secs_f64();
    ours.sort();
    raw.sort();
    let (o, r) = (ours[ours.len() / 2], raw[raw.len() / 2]);
    println!(
        "throughput, {what}: {mib} MiB offer→DELIVERY_ACK median {o:?} ({:.1} MiB/s); raw TCP copy median {r:?} ({:.1} MiB/s); ratio {:.3}",
        rate(o),
        rate(r),
        rate(o) / rate(r)
    );
}

/// Copies `data` over a fresh loopback TCP connection in 16 KiB writes; returns the time
/// until the reader has every byte.
async fn raw_copy(data: &[u8]) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let len = data.len();
    let reader = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 0x4000];
        let mut got = 0;
        while got < len {
            got += s.read(&mut buf).await.unwrap();
        }
    });
    let mut w = TcpStream::connect(addr).await.unwrap();
    w.set_nodelay(true).unwrap();
    let t0 = Instant::now();
    for chunk in data.chunks(0x4000) {
        w.write_all(chunk).await.unwrap();
    }
    w.flush().await.unwrap();
    reader.await.unwrap();
    t0.elapsed()
}

async fn latency(runs: usize) {
    let output = TimedOutput::default();
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = boot(dir.path(), Arc::new(output.clone())).await;
    let mut phone = CompanionPhone::connect(daemon.addr).await.unwrap();
    phone.handshake(STEP).await.unwrap();
    let mut to_message = Vec::new();
    let mut to_chime = Vec::new();
    for run in 0..runs {
        let id = format!("l{run}");
        let (m, data) = opus_voice_message(&id, "Bench", 1000);
        output.clear();
        phone.send_voice(m, data).await.unwrap();
        phone
            .wait_for("delivered", STEP, |e| matches!(e, Event::Delivered { .. }))
            .await
            .unwrap();
        let last_chunk = phone.last_write().unwrap();
        wait(&mut daemon.events, &format!("sound-played message {id}")).await;
        let first = output.first_writes();
        to_message.push(first[&format!("message {id}")] - last_chunk);
        to_chime.push(first["chime-message"] - last_chunk);
    }
    drop(phone);
    daemon.stop().await;
    for (what, mut v) in [
        ("first message sample", to_message),
        ("first chime sample", to_chime),
    ] {
        v.sort();
        println!(
            "last chunk → {what}, one-second Ogg Opus message, {} runs: median {:?}, max {:?}",
            v.len(),
            v[v.len() / 2],
            v[v.len() - 1]
        );
    }
}

fn opus_speed() {
    let seconds = 60;
    let speech = fixture_speech(seconds * 1000);
    let reps = 5;
    let t0 = std::time::Instant::now();
    let mut file = Vec::new();
    for _ in 0..reps {
        file = encode_ogg_opus(&speech, 16_000, 1).unwrap();
    }
    let enc = t0.elapsed() / reps;
    let mut speeds = Vec::new();
    for rate in [16_000, 48_000] {
        let t0 = std::time::Instant::now();
        for _ in 0..reps {
            let pcm = decode_ogg_opus(&file, rate).unwrap();
            assert_eq!(pcm.len(), speech.len() * (rate / 16_000) as usize);
        }
        speeds.push((rate, t0.elapsed() / reps));
    }
    let x = |d: Duration| f64::from(seconds) / d.as_secs_f64();
    println!(
        "Opus encode, {seconds} s of 16 kHz speech → Ogg Opus 24 kbit/s ({} bytes): {enc:?}, {:.0}× real time",
        file.len(),
        x(enc)
    );
    for (rate, d) in speeds {
        println!(
            "Opus decode, {seconds} s Ogg Opus → {} kHz PCM: {d:?}, {:.0}× real time",
            rate / 1000,
            x(d)
        );
    }
}

async fn wait(events: &mut tokio::sync::broadcast::Receiver<DaemonEvent>, what: &str) {
    tokio::time::timeout(STEP, async {
        loop {
            if let Ok(e) = events.recv().await
                && e.to_string().starts_with(what)
            {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what:?}"));
}

/// An audio output that notes when each stream's first sample arrives.
#[derive(Clone, Default)]
struct TimedOutput {
    first: Arc<Mutex<HashMap<String, Instant>>>,
}

impl TimedOutput {
    fn clear(&self) {
        self.first.lock().unwrap().clear();
    }

    fn first_writes(&self) -> HashMap<String, Instant> {
        self.first.lock().unwrap().clone()
    }
}

#[async_trait]
impl AudioOutput for TimedOutput {
    fn describe(&self) -> String {
        "timing output".into()
    }

    async fn open(
        &self,
        format: PcmFormat,
        focus: Focus,
        label: &str,
    ) -> Result<Box<dyn PcmSink>, AudioError> {
        Ok(Box::new(TimedSink {
            first: self.first.clone(),
            label: label.to_owned(),
            format,
            focus,
        }))
    }
}

struct TimedSink {
    first: Arc<Mutex<HashMap<String, Instant>>>,
    label: String,
    format: PcmFormat,
    focus: Focus,
}

#[async_trait]
impl PcmSink for TimedSink {
    fn format(&self) -> PcmFormat {
        self.format
    }

    fn focus(&self) -> Focus {
        self.focus
    }

    fn set_gain(&mut self, _gain: f32) {}

    async fn write(&mut self, samples: &[i16]) -> Result<(), AudioError> {
        if !samples.is_empty() {
            let now = Instant::now();
            self.first
                .lock()
                .unwrap()
                .entry(self.label.clone())
                .or_insert(now);
        }
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<(), AudioError> {
        Ok(())
    }
}
