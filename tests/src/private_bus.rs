//! A private, system-like `dbus-daemon` for the D-Bus tier: started from
//! `tests/dbus/system-like.conf`, never the machine's bus.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

/// A dbus-daemon of our own, killed on drop.
#[derive(Debug)]
pub struct PrivateBus {
    child: Child,
    /// The address to put in `DBUS_SYSTEM_BUS_ADDRESS`.
    pub address: String,
}

impl PrivateBus {
    /// Starts the daemon and waits for its address.
    pub fn start() -> PrivateBus {
        let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/dbus/system-like.conf");
        let mut child = Command::new("dbus-daemon")
            .args(["--config-file", conf, "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon (package dbus-daemon) must be installed: scripts/setup.sh");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        PrivateBus {
            child,
            address: line.trim().to_owned(),
        }
    }
}

/// The bus shared by every test of one test binary, and the lock that makes them take turns.
///
/// One per process because libdbus (under bluer) reads `DBUS_SYSTEM_BUS_ADDRESS` once and
/// keeps it; tests take turns because only one mock can own `org.bluez`. The dbus-daemon is
/// started from a thread that lives as long as the process and dies with it
/// (`PR_SET_PDEATHSIG`), so no bus outlives the tests.
pub fn shared_system_bus() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    static ADDRESS: OnceLock<String> = OnceLock::new();
    let turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    ADDRESS.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/dbus/system-like.conf");
            let mut command = Command::new("dbus-daemon");
            command
                .args(["--config-file", conf, "--nofork", "--print-address=1"])
                .stdout(Stdio::piped());
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                command.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let mut child = command
                .spawn()
                .expect("dbus-daemon (package dbus-daemon) must be installed: scripts/setup.sh");
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            tx.send(line.trim().to_owned()).unwrap();
            // Keep this thread (the bus's parent for PR_SET_PDEATHSIG) alive.
            let _ = child.wait();
        });
        let address = rx.recv().unwrap();
        // SAFETY: set once, before any bus client of this process exists; the other tests
        // wait on TURN meanwhile.
        unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", &address) };
        address
    });
    turn
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
