//! `codriverctl`: talks to codriverd over its D-Bus API (`org.codriver.Codriver1`).
//!
//! Every command that prints has a human-readable form and, with `--json`, one JSON document
//! on one line. Failures print `codriverctl: <error>` on stderr and exit 1; D-Bus errors keep
//! their name (`org.codriver.Codriver1.Error.NotPossible`) so scripts can tell them apart.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use futures_util::StreamExt;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

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
    /// Show the daemon's state: version, pairing window, phones, volume.
    Status,
    /// List the phones with a Hands-Free connection (name, battery, signal, service), or
    /// connect or disconnect a paired one.
    Phones {
        /// What to do; without it, list the phones.
        #[command(subcommand)]
        action: Option<PhoneAction>,
    },
    /// Pairing: open or close the window, approve or reject a waiting phone.
    Pair {
        #[command(subcommand)]
        action: PairAction,
    },
    /// Calls on the active phone: list, answer, hang up, dial, DTMF, hold.
    #[command(alias = "calls")]
    Call {
        /// What to do; without it, list the calls.
        #[command(subcommand)]
        action: Option<CallAction>,
    },
    /// Voice messages and replies: list them, play the next (or one by id), replay, skip,
    /// stop; record, send or cancel a reply to the message last played.
    Messages {
        /// What to do; without it, list the messages.
        #[command(subcommand)]
        action: Option<MessageCmd>,
    },
    /// Show the volume, or turn it up or down one step (the call's volume during a call).
    Volume {
        /// `up` or `down`; without it, show the volume.
        #[arg(value_enum)]
        direction: Option<Direction>,
    },
    /// Start the active phone's voice assistant (Siri, Google Assistant).
    Assistant,
    /// Stop trying to reconnect phones (until one connects by itself or codriverd restarts).
    StopReconnecting,
    /// Print every daemon event as it happens, until interrupted.
    Watch,
    /// Print a shell completion script, e.g. `codriverctl completions bash > /etc/bash_completion.d/codriverctl`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Debug, Subcommand)]
enum PhoneAction {
    /// Connect a paired phone now (it is reconnected after link loss again).
    Connect {
        /// The phone's Bluetooth address, AA:BB:CC:DD:EE:FF.
        address: String,
    },
    /// Disconnect a phone; it is not reconnected until `connect`, or until it connects by
    /// itself. It stays paired.
    Disconnect {
        /// The phone's Bluetooth address, AA:BB:CC:DD:EE:FF.
        address: String,
    },
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
enum MessageCmd {
    /// List the stored messages, oldest first.
    List,
    /// Play the oldest unplayed message now, or the message with this id.
    Play {
        /// A message id from `codriverctl messages list`.
        id: Option<String>,
    },
    /// Play the message last played again.
    Replay,
    /// Cut the message playing short and go on with the next.
    Skip,
    /// Stop playback.
    Stop,
    /// Record a voice reply to the message last played (after the beep; silence ends it).
    Reply,
    /// Finish the recording and send the reply.
    Send,
    /// Throw the recording away.
    Cancel,
}

#[derive(Debug, Subcommand)]
enum CallAction {
    /// List the calls of every connected phone.
    List,
    /// Answer the ringing call.
    Answer,
    /// Reject the ringing call or end the active one.
    Hangup,
    /// Dial a number.
    Dial {
        /// The number, e.g. +15550100.
        number: String,
    },
    /// Send DTMF tones in the active call.
    Dtmf {
        /// Tones: 0-9, *, #, A-D, e.g. 1234#.
        tones: String,
    },
    /// Hold the active call and take the held or waiting one (swap).
    #[command(alias = "swap")]
    Hold,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Direction {
    Up,
    Down,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
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
    #[zbus(property)]
    fn volume(&self) -> zbus::Result<u8>;
    fn open_pairing_window(&self) -> zbus::Result<()>;
    fn close_pairing_window(&self) -> zbus::Result<()>;
    fn approve_pairing(&self) -> zbus::Result<()>;
    fn reject_pairing(&self) -> zbus::Result<()>;
    fn stop_reconnecting(&self) -> zbus::Result<()>;
    fn connect_phone(&self, address: &str) -> zbus::Result<()>;
    fn disconnect_phone(&self, address: &str) -> zbus::Result<()>;
    fn answer(&self) -> zbus::Result<()>;
    fn hangup(&self) -> zbus::Result<()>;
    fn dial(&self, number: &str) -> zbus::Result<()>;
    fn swap(&self) -> zbus::Result<()>;
    fn send_dtmf(&self, tones: &str) -> zbus::Result<()>;
    fn voice_assistant(&self) -> zbus::Result<()>;
    fn volume_up(&self) -> zbus::Result<()>;
    fn volume_down(&self) -> zbus::Result<()>;
    fn play_next_message(&self) -> zbus::Result<()>;
    fn replay_message(&self) -> zbus::Result<()>;
    fn skip_message(&self) -> zbus::Result<()>;
    fn stop_message(&self) -> zbus::Result<()>;
    fn record_reply(&self) -> zbus::Result<()>;
    fn send_reply(&self) -> zbus::Result<()>;
    fn cancel_reply(&self) -> zbus::Result<()>;
    #[zbus(signal)]
    fn event(&self, line: String) -> zbus::Result<()>;
}

const PHONE_INTERFACE: &str = "org.codriver.Codriver1.Phone";
const CALL_INTERFACE: &str = "org.codriver.Codriver1.Call";
const MESSAGE_INTERFACE: &str = "org.codriver.Codriver1.Message";

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::Completions { shell } = cli.command {
        let shell = match shell {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        };
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "codriverctl",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
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
    let json = cli.json;
    match cli.command {
        Cmd::Status => {
            let version = daemon.version().await?;
            let window = daemon.pairing_window_open().await?;
            let pending = daemon.pending_pairing().await?;
            let phones = daemon.connected_phones().await?;
            let volume = daemon.volume().await?;
            if json {
                println!(
                    "{{\"version\":{},\"pairing_window_open\":{window},\"pending_pairing\":{},\"connected_phones\":[{}],\"volume\":{volume}}}",
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
                println!("volume: {volume}%");
            }
        }
        Cmd::Phones {
            action: Some(PhoneAction::Connect { address }),
        } => daemon.connect_phone(&address).await?,
        Cmd::Phones {
            action: Some(PhoneAction::Disconnect { address }),
        } => daemon.disconnect_phone(&address).await?,
        Cmd::Phones { action: None } => {
            let objects = Objects::fetch(&conn).await?;
            let phones = objects.with(PHONE_INTERFACE);
            if json {
                let items: Vec<String> = phones.iter().map(|(_, p)| p.json()).collect();
                println!("[{}]", items.join(","));
            } else if phones.is_empty() {
                println!("no phone connected");
            } else {
                for (_, p) in phones {
                    let level = |name: &str| match p.i64(name) {
                        n if n < 0 => "?".to_owned(),
                        n => format!("{n}/5"),
                    };
                    println!(
                        "{} {}{}{}: battery {}, signal {}, {}",
                        p.str("Address"),
                        p.str("Name"),
                        if p.bool("Active") { " (active)" } else { "" },
                        if p.bool("Connected") {
                            ""
                        } else {
                            " (connecting)"
                        },
                        level("Battery"),
                        level("Signal"),
                        if p.bool("Service") {
                            "service"
                        } else {
                            "no service"
                        },
                    );
                }
            }
        }
        Cmd::Pair { action } => match action {
            PairAction::Open => daemon.open_pairing_window().await?,
            PairAction::Close => daemon.close_pairing_window().await?,
            PairAction::Approve => daemon.approve_pairing().await?,
            PairAction::Reject => daemon.reject_pairing().await?,
        },
        Cmd::Call { action } => match action.unwrap_or(CallAction::List) {
            CallAction::List => {
                let objects = Objects::fetch(&conn).await?;
                let calls = objects.with(CALL_INTERFACE);
                if json {
                    let items: Vec<String> = calls.iter().map(|(_, c)| c.json()).collect();
                    println!("[{}]", items.join(","));
                } else if calls.is_empty() {
                    println!("no calls");
                } else {
                    for (path, c) in calls {
                        let who = match (c.str("Name"), c.str("Number")) {
                            ("", "") => "unknown".to_owned(),
                            ("", number) => number.to_owned(),
                            (name, "") => name.to_owned(),
                            (name, number) => format!("{name} ({number})"),
                        };
                        let n = path.as_str().rsplit('/').next().unwrap_or("?");
                        println!("call {n}: {} {} {who}", c.str("State"), c.str("Direction"));
                    }
                }
            }
            CallAction::Answer => daemon.answer().await?,
            CallAction::Hangup => daemon.hangup().await?,
            CallAction::Dial { number } => daemon.dial(&number).await?,
            CallAction::Dtmf { tones } => daemon.send_dtmf(&tones).await?,
            CallAction::Hold => daemon.swap().await?,
        },
        Cmd::Volume { direction } => {
            match direction {
                Some(Direction::Up) => daemon.volume_up().await?,
                Some(Direction::Down) => daemon.volume_down().await?,
                None => {}
            }
            if direction.is_none() {
                let volume = daemon.volume().await?;
                if json {
                    println!("{{\"volume\":{volume}}}");
                } else {
                    println!("volume: {volume}%");
                }
            }
        }
        Cmd::Messages { action } => match action.unwrap_or(MessageCmd::List) {
            MessageCmd::List => {
                let objects = Objects::fetch(&conn).await?;
                let messages = objects.with(MESSAGE_INTERFACE);
                if json {
                    let items: Vec<String> = messages.iter().map(|(_, m)| m.json()).collect();
                    println!("[{}]", items.join(","));
                } else if messages.is_empty() {
                    println!("no messages");
                } else {
                    for (_, m) in messages {
                        let from = match m.str("From") {
                            "" => "unknown",
                            from => from,
                        };
                        let what = match m.str("Kind") {
                            "voice" => format!(
                                "voice message, {} s",
                                (m.i64("DurationMs").max(0) + 999) / 1000
                            ),
                            kind => format!("{kind} message"),
                        };
                        let state = if m.bool("Playing") {
                            "playing"
                        } else if m.bool("Listened") {
                            "listened"
                        } else {
                            "new"
                        };
                        println!("{}: {what} from {from} ({state})", m.str("Id"));
                    }
                }
            }
            MessageCmd::Play { id: None } => daemon.play_next_message().await?,
            MessageCmd::Play { id: Some(id) } => {
                let objects = Objects::fetch(&conn).await?;
                let path = objects
                    .with(MESSAGE_INTERFACE)
                    .into_iter()
                    .find(|(_, m)| m.str("Id") == id)
                    .map(|(p, _)| p.clone())
                    .ok_or_else(|| {
                        anyhow::anyhow!("no message {id} (codriverctl messages list)")
                    })?;
                conn.call_method(
                    Some("org.codriver.Codriver1"),
                    &path,
                    Some(MESSAGE_INTERFACE),
                    "Play",
                    &(),
                )
                .await?;
            }
            MessageCmd::Replay => daemon.replay_message().await?,
            MessageCmd::Skip => daemon.skip_message().await?,
            MessageCmd::Stop => daemon.stop_message().await?,
            MessageCmd::Reply => daemon.record_reply().await?,
            MessageCmd::Send => daemon.send_reply().await?,
            MessageCmd::Cancel => daemon.cancel_reply().await?,
        },
        Cmd::Assistant => daemon.voice_assistant().await?,
        Cmd::StopReconnecting => daemon.stop_reconnecting().await?,
        Cmd::Watch => {
            let mut events = daemon.receive_event().await?;
            if !json {
                // Printed once the subscription is in place: nothing after this line is missed.
                println!(
                    "# watching codriverd {} (Ctrl-C to stop)",
                    daemon.version().await?
                );
            }
            while let Some(signal) = events.next().await {
                let line = signal.args()?.line;
                if json {
                    println!("{{\"event\":{}}}", json_string(&line));
                } else {
                    println!("{line}");
                }
            }
        }
        // Handled before connecting.
        Cmd::Completions { .. } => {}
    }
    Ok(())
}

/// The managed objects under the daemon's object manager.
struct Objects(Vec<(OwnedObjectPath, String, Props)>);

impl Objects {
    async fn fetch(conn: &zbus::Connection) -> anyhow::Result<Objects> {
        let manager = zbus::fdo::ObjectManagerProxy::builder(conn)
            .destination("org.codriver.Codriver1")?
            .path("/org/codriver/Codriver1")?
            .build()
            .await?;
        let mut out = Vec::new();
        for (path, interfaces) in manager.get_managed_objects().await? {
            for (name, props) in interfaces {
                out.push((path.clone(), name.to_string(), Props(props)));
            }
        }
        // Calls and phones in a stable order: call/2 before call/10.
        out.sort_by_key(|(p, _, _)| {
            let s = p.as_str();
            let n: u64 = s
                .rsplit('/')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            (
                s.rsplit_once('/').map(|(a, _)| a.to_owned()),
                n,
                s.to_owned(),
            )
        });
        Ok(Objects(out))
    }

    fn with(&self, interface: &str) -> Vec<(&OwnedObjectPath, &Props)> {
        self.0
            .iter()
            .filter(|(_, i, _)| i == interface)
            .map(|(p, _, props)| (p, props))
            .collect()
    }
}

/// One object's properties, as `GetManagedObjects` returns them.
struct Props(HashMap<String, OwnedValue>);

impl Props {
    fn str(&self, name: &str) -> &str {
        self.0
            .get(name)
            .and_then(|v| v.downcast_ref::<&str>().ok())
            .unwrap_or("")
    }

    fn bool(&self, name: &str) -> bool {
        self.0
            .get(name)
            .and_then(|v| v.downcast_ref::<bool>().ok())
            .unwrap_or(false)
    }

    fn i64(&self, name: &str) -> i64 {
        let Some(v) = self.0.get(name) else {
            return -1;
        };
        v.downcast_ref::<i16>()
            .map(i64::from)
            .or_else(|_| v.downcast_ref::<u8>().map(i64::from))
            .or_else(|_| v.downcast_ref::<u32>().map(i64::from))
            .or_else(|_| {
                v.downcast_ref::<u64>()
                    .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
            })
            .unwrap_or(-1)
    }

    /// The properties as a JSON object, keys in snake_case, sorted.
    fn json(&self) -> String {
        let mut keys: Vec<&String> = self.0.keys().collect();
        keys.sort();
        let fields: Vec<String> = keys
            .into_iter()
            .map(|k| {
                let v = &self.0[k];
                let value = if let Ok(b) = v.downcast_ref::<bool>() {
                    b.to_string()
                } else if let Ok(s) = v.downcast_ref::<&str>() {
                    json_string(s)
                } else if let Ok(p) = v.downcast_ref::<zbus::zvariant::ObjectPath<'_>>() {
                    json_string(p.as_str())
                } else {
                    self.i64(k).to_string()
                };
                format!("{}:{value}", json_string(&snake_case(k)))
            })
            .collect();
        format!("{{{}}}", fields.join(","))
    }
}

/// `SpeakerVolume` → `speaker_volume`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
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
