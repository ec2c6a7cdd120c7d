//! `codriverd`: the codriver daemon. A thin `main` over the `codriver_daemon` library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use codriver_config::Config;
use codriver_daemon::Daemon;
use codriver_daemon::events::DaemonHandle;
use codriver_daemon::logging::{self, LogControl};
use codriver_daemon::simulate::{Scenario, Simulation};
use codriver_hal::audio::{OutputOptions, open_output};
use tokio::signal::unix::{SignalKind, signal};

/// Where the packaged config lives.
const DEFAULT_CONFIG: &str = "/etc/codriver/codriver.toml";

/// codriver: the car head unit's co-driver for your phone (hands-free calls, messages,
/// steering-wheel controls).
#[derive(Debug, Parser)]
#[command(name = "codriverd", version, about)]
struct Cli {
    /// Configuration file.
    #[arg(long, short, value_name = "PATH")]
    config: Option<PathBuf>,

    /// Check a configuration file: print the effective configuration, or the error with its
    /// file:line:column, and exit.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["simulate", "scenario"])]
    check_config: Option<PathBuf>,

    /// Run against a simulated phone and mock Bluetooth instead of the real adapter. Sound
    /// goes to the sound card when there is one, otherwise to WAV files (the log says where).
    #[arg(long)]
    simulate: bool,

    /// With --simulate: run this scenario and exit 0 when it completes, non-zero with the
    /// reason when it does not (pairing, incoming-call, voice-message).
    #[arg(long, value_name = "NAME", requires = "simulate")]
    scenario: Option<Scenario>,

    /// Log filter, overriding [logging] level: trace, debug, info, warn, error, or tracing
    /// directives such as "codriver=debug,info".
    #[arg(long, value_name = "LEVEL", env = "CODRIVER_LOG")]
    log_level: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(path) = &cli.check_config {
        return check_config(path);
    }
    let config_path = match (&cli.config, cli.simulate) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => None,
        (None, false) => Some(PathBuf::from(DEFAULT_CONFIG)),
    };
    let config = match &config_path {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("codriverd: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    let log = match logging::init(&config.logging, cli.log_level.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("codriverd: cannot set up logging: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serve(cli, config, config_path, log));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("codriverd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            println!("# effective configuration of {}", path.display());
            print!("{}", config.to_toml());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// Hands the code pages that only set-up needed back to the page cache (see
/// `codriver_daemon::memory`): once after READY and once after each phone's service level
/// connection, each time when the burst of work has settled for two seconds. One-shot, event
/// driven: an idle daemon has no timer.
fn release_startup_code_when_settled(handle: &DaemonHandle) {
    use codriver_daemon::events::DaemonEvent;
    const SETTLE: std::time::Duration = std::time::Duration::from_secs(2);
    let mut events = handle.subscribe();
    tokio::spawn(async move {
        let mut due: Option<tokio::time::Instant> = None;
        loop {
            let wait = async {
                match due {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = events.recv() => match event {
                    Ok(DaemonEvent::Ready | DaemonEvent::HandsFreeReady { .. }) => {
                        due = Some(tokio::time::Instant::now() + SETTLE);
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                () = wait => {
                    due = None;
                    #[cfg(target_os = "linux")]
                    match codriver_daemon::memory::release_startup_code() {
                        Ok(bytes) => tracing::debug!(bytes, "set-up code paged out"),
                        Err(e) => tracing::debug!(error = %e, "set-up code stays resident"),
                    }
                }
            }
        }
    });
}

async fn serve(
    cli: Cli,
    config: Config,
    config_path: Option<PathBuf>,
    log: LogControl,
) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    };

    if cli.simulate {
        let output = simulation_output(&config)?;
        let config = codriver_daemon::simulate::prepare(config, cli.scenario);
        let sim = Simulation::new(config, output);
        release_startup_code_when_settled(&sim.handle());
        spawn_reloader(sim.handle(), config_path, log)?;
        let report = sim.run(cli.scenario, shutdown).await?;
        if let Some(s) = cli.scenario {
            tracing::info!(scenario = %s, events = report.events.len(), "scenario completed");
            println!("scenario {s}: ok");
        }
        return Ok(());
    }

    #[cfg(feature = "linux")]
    let hal = codriver_daemon::hardware::build(&config).await?;
    #[cfg(not(feature = "linux"))]
    let hal: codriver_hal::Hal = anyhow::bail!(
        "this codriverd was built without the `linux` feature: only --simulate is available"
    );
    let daemon = Daemon::new(config, hal);
    // Call audio over the kernel's SCO sockets.
    #[cfg(feature = "linux")]
    let daemon = daemon.with_sco(std::sync::Arc::new(codriver_hal::linux::KernelSco::new()));
    release_startup_code_when_settled(&daemon.handle());
    spawn_reloader(daemon.handle(), config_path, log)?;
    daemon.run(shutdown).await?;
    Ok(())
}

/// Sound for `--simulate`: the configured backend, where `default` falls back to WAV files in
/// `[simulation] output_directory` when there is no sound card.
fn simulation_output(config: &Config) -> anyhow::Result<Arc<dyn codriver_hal::AudioOutput>> {
    let options = OutputOptions {
        device: config.audio.output_device.clone(),
        wav_directory: config.simulation.output_directory.clone(),
    };
    let output = open_output(config.audio.output_backend.as_str(), &options)
        .context("opening the audio output")?;
    tracing::info!("sound goes to {}", output.describe());
    Ok(output)
}

/// SIGHUP re-reads the config file; a broken file is rejected with its error logged and the
/// daemon keeps running on the old configuration.
fn spawn_reloader(
    handle: DaemonHandle,
    path: Option<PathBuf>,
    log: LogControl,
) -> anyhow::Result<()> {
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let Some(path) = &path else {
                tracing::warn!(
                    "SIGHUP: no configuration file to re-read (started without --config)"
                );
                continue;
            };
            tracing::info!(path = %path.display(), "SIGHUP: re-reading configuration");
            match Config::load(path) {
                Ok(config) => {
                    let level = config.logging.level.as_str().to_owned();
                    match handle.reload(config).await {
                        Ok(()) => {
                            if let Err(e) = log.set_level(&level) {
                                tracing::warn!("log level {level:?} not applied: {e}");
                            }
                            tracing::info!("configuration reloaded");
                        }
                        Err(e) => handle.config_rejected(e),
                    }
                }
                Err(e) => handle.config_rejected(e.to_string()),
            }
        }
    });
    Ok(())
}
