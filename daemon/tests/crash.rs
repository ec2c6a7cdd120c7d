//! Crash safety of the message spool: codriverd runs as a child process (`--simulate`, a
//! temporary spool, the companion TCP transport on a free loopback port) while a phone peer
//! sends voice messages; the child is killed with SIGKILL at pseudo-random points and
//! restarted. No acknowledged message may be lost, and none may be played twice.
//!
//! Waits are bounded; nothing sleeps for timing (the kill points are the randomness under
//! test, not a synchronisation).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use codriver_companion::Event;
use codriver_phone_sim::companion::{CompanionPhone, fixture_pcm, voice_message};

const MESSAGES: usize = 12;
const BOUND: Duration = Duration::from_secs(60);

/// The child and the lines it logged.
struct Daemon {
    child: Child,
    lines: std_mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    fn start(config: &Path) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_codriverd"))
            .args(["--simulate", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("codriverd starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std_mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut daemon = Daemon {
            child,
            lines,
            seen: Vec::new(),
        };
        assert!(
            daemon.wait_line("companion TCP transport listening"),
            "codriverd did not listen: {:?}",
            daemon.seen
        );
        daemon
    }

    /// Reads log lines until one contains `needle` (bounded); false on timeout or exit.
    fn wait_line(&mut self, needle: &str) -> bool {
        let deadline = std::time::Instant::now() + BOUND;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    self.seen.push(line);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// SIGKILL (std's `kill` on Unix), then collect every line it logged.
    fn kill(mut self, log: &mut Vec<String>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        log.append(&mut self.seen);
        log.extend(self.lines.iter());
    }
}

/// Connects to the listening child and completes the handshake (bounded).
async fn connect(addr: SocketAddr) -> Option<CompanionPhone<tokio::net::TcpStream>> {
    let mut p = CompanionPhone::connect(addr).await.ok()?;
    p.handshake(BOUND).await.ok()?;
    Some(p)
}

/// Sends the messages not acknowledged yet, one after another, recording acks, until the
/// link fails.
async fn send_all(addr: SocketAddr, acked: &mut BTreeSet<String>, rng: &mut Rng) {
    let Some(mut phone) = connect(addr).await else {
        return;
    };
    for i in 0..MESSAGES {
        let id = format!("m{i}");
        if acked.contains(&id) {
            continue;
        }
        let duration = 40 + rng.next(400) as u32;
        let message = voice_message(&id, "Alice", duration);
        if phone
            .send_voice(message, fixture_pcm(duration))
            .await
            .is_err()
        {
            return;
        }
        let delivered = phone
            .wait_for(
                &id,
                BOUND,
                |e| matches!(e, Event::Delivered { id: d } if *d == id),
            )
            .await;
        match delivered {
            Ok(_) => {
                acked.insert(id);
            }
            Err(_) => return,
        }
    }
}

/// xorshift64, seeded from the clock and printed, so a failure can be replayed by hand.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn played(log: &[String]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in log {
        if let Some(rest) = line.split("message-played ").nth(1) {
            let id = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            *out.entry(id).or_insert(0) += 1;
        }
    }
    out
}

/// Writes codriverd's config into `dir` (spool and simulation output there, the companion TCP
/// transport on a free loopback port, no audio, speech or D-Bus); returns its path and that
/// port's address.
fn write_config(dir: &std::path::Path) -> (std::path::PathBuf, std::net::SocketAddr) {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = dir.join("codriver.toml");
    std::fs::write(
        &config,
        format!(
            "[audio]\noutput_backend = \"null\"\n\n[messages]\nspool_directory = {:?}\n\
             companion_tcp = \"{addr}\"\ntts_command = \"/nonexistent/tts\"\n\n\
             [logging]\ntarget = \"stderr\"\n\n[dbus]\nenabled = false\n\n\
             [simulation]\noutput_directory = {:?}\n",
            dir.join("spool"),
            dir.join("wav"),
        ),
    )
    .unwrap();
    (config, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_messages_arrive_loses_no_acked_message_and_plays_none_twice() {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let (config, addr) = write_config(dir.path());

    let mut acked = BTreeSet::new();
    let mut log = Vec::new();
    let mut kills = 0;
    // Kill at a random point while messages arrive; the window grows with every run.
    for run in 0..12u64 {
        let daemon = Daemon::start(&config);
        let pid = nix::unistd::Pid::from_raw(daemon.child.id() as i32);
        // The kill point is the randomness under test, not a synchronisation.
        let kill_at = Duration::from_millis(rng.next(60 + 40 * run));
        let killer = tokio::spawn(async move {
            tokio::time::sleep(kill_at).await;
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        });
        send_all(addr, &mut acked, &mut rng).await;
        killer.await.unwrap();
        kills += 1;
        daemon.kill(&mut log);
    }
    // Messages moved to the listened ones by a run killed before it logged their playback:
    // playback starts only after the move, so they were not heard, and are kept (not lost)
    // for the driver to replay; they are never played again by themselves.
    let spool = dir.path().join("spool");
    let before = played(&log);
    let window: BTreeSet<String> = stored(&spool.join("cur"))
        .into_iter()
        .filter(|id| !before.contains_key(id))
        .collect();
    // A last run without kills delivers the rest and plays what is unlistened.
    let mut daemon = Daemon::start(&config);
    send_all(addr, &mut acked, &mut rng).await;
    assert_eq!(acked.len(), MESSAGES, "every message acknowledged at last");
    let to_play: BTreeSet<String> = acked
        .iter()
        .filter(|id| !before.contains_key(*id) && !window.contains(*id))
        .cloned()
        .collect();
    while !to_play
        .iter()
        .all(|id| played(&daemon.seen).contains_key(id))
    {
        assert!(
            daemon.wait_line("message-played"),
            "not all played: {to_play:?} (seed {seed})"
        );
    }
    daemon.kill(&mut log);
    let counts = played(&log);
    println!("seed {seed}: {kills} kills; played {counts:?}; marked but not heard {window:?}");
    let kept: BTreeSet<String> = stored(&spool.join("cur"))
        .into_iter()
        .chain(stored(&spool.join("new")))
        .collect();
    for id in &acked {
        assert!(
            kept.contains(id),
            "{id} was acknowledged but is lost (seed {seed})"
        );
        match counts.get(id) {
            Some(1) => {}
            None if window.contains(id) => {}
            Some(n) => panic!("{id} played {n} times (seed {seed})"),
            None => panic!("{id} was never played (seed {seed})"),
        }
    }
    assert!(stored(&spool.join("new")).is_empty(), "everything played");
}

/// The ids of the messages in a spool directory (directory names are hex-encoded ids).
fn stored(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let bytes: Option<Vec<u8>> = (0..name.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(name.get(i..i + 2)?, 16).ok())
                .collect();
            String::from_utf8(bytes?).ok()
        })
        .collect()
}

/// A transfer interrupted mid-message resumes from the offset the car reports, across a
/// SIGKILL: after a link loss the car checkpointed what it had (two whole chunks) and
/// reports exactly that; bytes received while the link was up but never checkpointed are
/// not claimed after a kill (the transfer restarts from the last checkpoint). Either way the
/// acknowledged message is stored whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_message_resumes_from_the_offset_the_car_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (config, addr) = write_config(dir.path());
    let spool = dir.path().join("spool");
    let audio = fixture_pcm(3125); // 100 000 bytes: 7 chunks of 16 KiB
    let mut log = Vec::new();

    // (id, link lost before the kill, offset the car must report after the restart)
    for (id, link_lost, resume) in [("p1", true, 2 * 0x4000), ("p2", false, 0)] {
        let mut daemon = Daemon::start(&config);
        let mut p = connect(addr).await.unwrap();
        // The offer and two chunks fit; the third and later are never written.
        p.lose_link_after(40_000);
        p.send_voice(voice_message(id, "Alice", 3125), audio.clone())
            .await
            .unwrap();
        // A text after the chunks (written raw: the session's frames are dropped now): its
        // ack proves the car has read them.
        let marker = codriver_companion::Frame::TextMessage(codriver_companion::TextMessage {
            id: format!("marker-{id}"),
            sender_id: "a".into(),
            sender_name: "Alice".into(),
            conversation_id: "c".into(),
            conversation_name: String::new(),
            timestamp_ms: 1,
            text: "x".into(),
        });
        p.send_raw(&marker.to_bytes().unwrap()).await.unwrap();
        let marker = format!("marker-{id}");
        p.wait_for(
            "marker",
            BOUND,
            |e| matches!(e, Event::Delivered { id: d } if *d == marker),
        )
        .await
        .unwrap();
        if link_lost {
            drop(p);
            assert!(
                daemon.wait_line("partial message kept for resume"),
                "no checkpoint: {:?}",
                daemon.seen
            );
        }
        daemon.kill(&mut log);

        let daemon = Daemon::start(&config);
        let mut p = connect(addr).await.unwrap();
        p.send_voice(voice_message(id, "Alice", 3125), audio.clone())
            .await
            .unwrap();
        let accepted = p
            .wait_for("accept", BOUND, |e| {
                matches!(e, Event::OfferAccepted { .. })
            })
            .await
            .unwrap();
        assert_eq!(
            accepted,
            Event::OfferAccepted {
                id: id.into(),
                offset: resume
            },
            "{id}"
        );
        p.wait_for(
            id,
            BOUND,
            |e| matches!(e, Event::Delivered { id: d } if d == id),
        )
        .await
        .unwrap();
        daemon.kill(&mut log);
        let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
        let body = ["new", "cur"]
            .iter()
            .find_map(|sub| std::fs::read(spool.join(sub).join(&hex).join("body")).ok())
            .unwrap_or_else(|| panic!("{id} acknowledged but not stored"));
        assert!(body == audio, "{id} stored whole and in order");
    }
}
