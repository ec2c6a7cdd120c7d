//! The `codriverd` binary's lifecycle as systemd sees it: READY and watchdog over a real
//! `NOTIFY_SOCKET`, SIGHUP with a good and a broken config, SIGTERM within 2 s; and
//! `--check-config`. The daemon runs `--simulate` (mock Bluetooth, null audio) as a child.
//!
//! These tests wait for what the daemon says (datagrams, log lines), never for fixed times;
//! the timeouts are only upper bounds that turn a hang into a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_codriverd");
const LIMIT: Duration = Duration::from_secs(20);

fn write_config(path: &Path, dir: &Path, window: &str) {
    std::fs::write(
        path,
        format!(
            "[pairing]\nwindow = \"{window}\"\n\n[audio]\noutput_backend = \"null\"\n\n\
             [dbus]\nenabled = false\n\n\
             [simulation]\noutput_directory = \"{}\"\n",
            dir.display()
        ),
    )
    .unwrap();
}

struct Daemon {
    child: Child,
    notify: UnixDatagram,
    lines: mpsc::Receiver<String>,
}

impl Daemon {
    fn start(dir: &Path, config: &Path, extra_env: &[(&str, &str)]) -> Daemon {
        let sock = dir.join("notify.sock");
        let notify = UnixDatagram::bind(&sock).unwrap();
        notify.set_read_timeout(Some(LIMIT)).unwrap();
        // systemd sets WATCHDOG_PID to the daemon's own pid; `exec` keeps the shell's pid.
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg("WATCHDOG_PID=$$ exec \"$0\" \"$@\"")
            .arg(BIN)
            .args(["--simulate", "--config"])
            .arg(config)
            .args(["--log-level", "info"])
            .env("NOTIFY_SOCKET", &sock)
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let lines = spawn_reader(child.stderr.take().unwrap());
        Daemon {
            child,
            notify,
            lines,
        }
    }

    /// Receives notification datagrams until one contains `want`.
    fn notified(&self, want: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            let n = self
                .notify
                .recv(&mut buf)
                .expect("no sd_notify message in time");
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.lines().any(|l| l == want) {
                return msg;
            }
        }
        panic!("no {want} notification");
    }

    /// Reads log lines until one contains `want`; returns it.
    fn logged(&self, want: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(want) => return line,
                Ok(_) => {}
                Err(_) => panic!("the daemon never logged {want:?}"),
            }
        }
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_reader(stderr: ChildStderr) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

#[test]
fn ready_reload_good_and_bad_then_graceful_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("codriver.toml");
    write_config(&config, dir.path(), "120s");
    let daemon = Daemon::start(dir.path(), &config, &[]);

    let ready = daemon.notified("READY=1");
    assert!(ready.contains("STATUS=running"), "{ready}");
    daemon.logged("hands-free-ready");

    // A good file is applied.
    write_config(&config, dir.path(), "45s");
    daemon.signal(Signal::SIGHUP);
    daemon.logged("config-reloaded");

    // A broken file is rejected with file:line:column and key, and the daemon keeps running.
    std::fs::write(&config, "[pairing]\nwindow = \"forever\"\n").unwrap();
    daemon.signal(Signal::SIGHUP);
    let rejected = daemon.logged("configuration rejected");
    assert!(
        rejected.contains("codriver.toml:2:10: pairing.window"),
        "{rejected}"
    );

    // Still alive and still reloading.
    write_config(&config, dir.path(), "30s");
    daemon.signal(Signal::SIGHUP);
    daemon.logged("config-reloaded");

    let mut daemon = daemon;
    let asked = Instant::now();
    daemon.signal(Signal::SIGTERM);
    daemon.notified("STOPPING=1");
    let status = daemon.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "took {:?}",
        asked.elapsed()
    );
}

#[test]
fn watchdog_is_pinged_when_systemd_asks_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("codriver.toml");
    write_config(&config, dir.path(), "120s");
    let daemon = Daemon::start(dir.path(), &config, &[("WATCHDOG_USEC", "200000")]);
    daemon.notified("READY=1");
    daemon.notified("WATCHDOG=1");
    daemon.notified("WATCHDOG=1");
}

#[test]
fn check_config_prints_the_effective_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("codriver.toml");
    write_config(&config, dir.path(), "90s");
    let out = Command::new(BIN)
        .arg("--check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("window = \"90s\""), "{text}");
    assert!(
        text.contains("[hfp]") && text.contains("[controls]"),
        "every section is printed"
    );
}

#[test]
fn check_config_names_file_line_column_and_key_of_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken.toml");
    std::fs::write(&config, "[audio]\noutput_backend = \"pulse\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("--check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    let expected = format!("{}:2:18: audio.output_backend:", config.display());
    assert!(err.starts_with(&expected), "{err}");
    assert!(
        err.contains("\"default\"") && err.contains("\"null\""),
        "lists valid values: {err}"
    );
}

#[test]
fn a_broken_config_stops_the_daemon_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken.toml");
    std::fs::write(&config, "[pairing]\npolicy = \"yes\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["--simulate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("broken.toml:2:10: pairing.policy"), "{err}");
}

#[test]
fn pairing_scenario_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("codriver.toml");
    write_config(&config, dir.path(), "120s");
    let out = Command::new(BIN)
        .args(["--simulate", "--scenario", "pairing", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "scenario pairing: ok"
    );
}
