//! `codriverctl`: talks to codriverd over its D-Bus API (`org.codriver.Codriver1`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use futures_util::StreamExt;

/// Control and watch codriverd, the car head unit's co-driver for your phone.
#[derive(Debug, Parser)]
#[command(name = "codriverctl", version, about)]
struct Cli {
    /// Use the session bus instead of the system bus (development, tests).
    #[arg(long, global = true)]
    session: bool,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Show the daemon's state: version, pairing window, connected phones.
    Status,
    /// Pairing: open or close the window, approve or reject a waiting phone.
    Pair {
        #[command(subcommand)]
        action: PairAction,
    },
    /// Calls on the connected phone.
    Call {
        #[command(subcommand)]
        action: CallAction,
    },
    /// Stop trying to reconnect phones (until one connects by itself or codriverd restarts).
    StopReconnecting,
    /// Print every daemon event as it happens, until interrupted.
    Watch,
}

#[derive(Debug, Subcommand)]
enum PairAction {
    /// Make the car discoverable and pairable for the configured time.
    Open,
    /// Close the pairing window now.
    Close,
    /// Approve the phone waiting to pair.
    Approve,
    /// Reject the phone waiting to pair.
    Reject,
}

#[derive(Debug, Subcommand)]
enum CallAction {
    /// Answer the ringing call.
    Answer,
    /// Reject the ringing call or end the active one.
    Hangup,
    /// Dial a number.
    Dial {
        /// The number, e.g. +15550100.
        number: String,
    },
}

#[zbus::proxy(
    interface = "org.codriver.Codriver1.Daemon",
    default_service = "org.codriver.Codriver1",
    default_path = "/org/codriver/Codriver1"
)]
trait Daemon {
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn pairing_window_open(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn pending_pairing(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn connected_phones(&self) -> zbus::Result<Vec<String>>;
    fn open_pairing_window(&self) -> zbus::Result<()>;
    fn close_pairing_window(&self) -> zbus::Result<()>;
    fn approve_pairing(&self) -> zbus::Result<()>;
    fn reject_pairing(&self) -> zbus::Result<()>;
    fn stop_reconnecting(&self) -> zbus::Result<()>;
    fn answer(&self) -> zbus::Result<()>;
    fn hangup(&self) -> zbus::Result<()>;
    fn dial(&self, number: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    fn event(&self, line: String) -> zbus::Result<()>;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("codriverctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("codriverctl: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let conn = if cli.session {
        zbus::Connection::session().await?
    } else {
        zbus::Connection::system().await?
    };
    let daemon = DaemonProxy::new(&conn).await?;
    match cli.command {
        Cmd::Status => {
            let version = daemon.version().await?;
            let window = daemon.pairing_window_open().await?;
            let pending = daemon.pending_pairing().await?;
            let phones = daemon.connected_phones().await?;
            if cli.json {
                println!(
                    "{{\"version\":{},\"pairing_window_open\":{window},\"pending_pairing\":{},\"connected_phones\":[{}]}}",
                    json_string(&version),
                    if pending.is_empty() {
                        "null".to_owned()
                    } else {
                        json_string(&pending)
                    },
                    phones
                        .iter()
                        .map(|p| json_string(p))
                        .collect::<Vec<_>>()
                        .join(",")
                );
            } else {
                println!("codriverd {version}");
                println!("pairing window: {}", if window { "open" } else { "closed" });
                if !pending.is_empty() {
                    println!("waiting to pair: {pending} (codriverctl pair approve|reject)");
                }
                if phones.is_empty() {
                    println!("phones: none connected");
                } else {
                    println!("phones: {}", phones.join(", "));
                }
            }
        }
        Cmd::Pair { action } => match action {
            PairAction::Open => daemon.open_pairing_window().await?,
            PairAction::Close => daemon.close_pairing_window().await?,
            PairAction::Approve => daemon.approve_pairing().await?,
            PairAction::Reject => daemon.reject_pairing().await?,
        },
        Cmd::Call { action } => match action {
            CallAction::Answer => daemon.answer().await?,
            CallAction::Hangup => daemon.hangup().await?,
            CallAction::Dial { number } => daemon.dial(&number).await?,
        },
        Cmd::StopReconnecting => daemon.stop_reconnecting().await?,
        Cmd::Watch => {
            let mut events = daemon.receive_event().await?;
            if !cli.json {
                // Printed once the subscription is in place: nothing after this line is missed.
                println!(
                    "# watching codriverd {} (Ctrl-C to stop)",
                    daemon.version().await?
                );
            }
            while let Some(signal) = events.next().await {
                let line = signal.args()?.line;
                if cli.json {
                    println!("{{\"event\":{}}}", json_string(&line));
                } else {
                    println!("{line}");
                }
            }
        }
    }
    Ok(())
}

/// A JSON string literal (the output is small and fixed; no JSON library needed).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
