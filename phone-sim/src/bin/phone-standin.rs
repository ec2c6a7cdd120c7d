//! `phone-standin`: plays the phone on a real BlueZ adapter, for the VM test tier
//! (`tests/bluez-vm/`).
//!
//! It powers its adapter (`hci1`, "phone" in the VM), registers a pairing agent that accepts
//! everything (the phone's user always taps "Pair"), and registers the HFP Audio Gateway
//! profile (UUID 0x111F) with bluetoothd. With `--pair` it pairs with the car by address;
//! with `--connect` it opens the Hands-Free link itself, as a phone does after pairing. Every
//! Audio Gateway connection, whoever opened it, is served by the sans-IO
//! [`AudioGateway`] over the real RFCOMM socket.
//!
//! It prints one line per milestone on standard output, `STANDIN <what> key=value…`, which
//! the scenario scripts wait for (`ready`, `paired`, `hfp-connected`, `slc-established`,
//! `hfp-closed`). It runs until SIGTERM/SIGINT, or exits 0 after the first service level
//! connection with `--exit-after-slc`.
//!
//! In the VM both controllers share one bluetoothd, so every registered profile listens on
//! both adapters; connections whose local end is not this program's adapter are refused.

use std::error::Error;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use bluer::agent::{Agent, AgentHandle};
use bluer::rfcomm::{ConnectRequest, Profile as BluezProfile, ProfileHandle, Stream};
use bluer::{Adapter, AdapterEvent, Address, Device, DiscoveryFilter, DiscoveryTransport};
use codriver_phone_sim::ag::{AgEvent, AudioGateway, Profile};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout};

/// The Hands-Free unit's service class: what the phone connects to on the car.
const HFP_HF_UUID: &str = "0000111e-0000-1000-8000-00805f9b34fb";
/// The Audio Gateway's service class: the phone's own profile.
const HFP_AG_UUID: &str = "0000111f-0000-1000-8000-00805f9b34fb";
/// How long pairing and the outgoing Hands-Free connection may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

type BoxError = Box<dyn Error + Send + Sync>;

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("phone-standin: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("phone-standin: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("STANDIN error {e}");
            eprintln!("phone-standin: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: phone-standin --car ADDRESS [--adapter hci1] [--profile NAME] \
[--pair] [--connect] [--exit-after-slc]
  --car ADDRESS     the car's (codriverd's adapter's) Bluetooth address
  --adapter NAME    the phone's adapter (default hci1)
  --profile NAME    phone behaviour: iphone-like, android-like (default), minimal, ...
  --pair            pair with the car by address (accepting on the phone side)
  --connect         open the Hands-Free link to the car (else wait for the car to connect)
  --exit-after-slc  exit 0 once a service level connection is established";

/// Command-line options.
#[derive(Debug)]
struct Options {
    car: Address,
    adapter: String,
    profile: Profile,
    pair: bool,
    connect: bool,
    exit_after_slc: bool,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut car = None;
        let mut adapter = "hci1".to_owned();
        let mut profile = Profile::AndroidLike;
        let (mut pair, mut connect, mut exit_after_slc) = (false, false, false);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--car" => {
                    let v = value("--car")?;
                    car = Some(Address::from_str(&v).map_err(|e| format!("--car {v}: {e}"))?);
                }
                "--adapter" => adapter = value("--adapter")?,
                "--profile" => {
                    let v = value("--profile")?;
                    profile = v.parse().map_err(|e| format!("--profile: {e}"))?;
                }
                "--pair" => pair = true,
                "--connect" => connect = true,
                "--exit-after-slc" => exit_after_slc = true,
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(Options {
            car: car.ok_or("--car is required")?,
            adapter,
            profile,
            pair,
            connect,
            exit_after_slc,
        })
    }
}

async fn run(options: Options) -> Result<(), BoxError> {
    let session = bluer::Session::new().await?;
    let adapter = session.adapter(&options.adapter)?;
    adapter.set_powered(true).await?;
    adapter.set_pairable(true).await?;
    let own = adapter.address().await?;
    let _agent = register_agent(&session).await?;
    let profile = session
        .register_profile(BluezProfile {
            uuid: HFP_AG_UUID.parse()?,
            name: Some("codriver phone stand-in".to_owned()),
            require_authentication: Some(true),
            require_authorization: Some(false),
            auto_connect: Some(false),
            ..Default::default()
        })
        .await?;
    println!(
        "STANDIN ready adapter={} address={own} profile={}",
        options.adapter, options.profile
    );

    let (slc_tx, mut slc_rx) = mpsc::channel::<()>(4);
    let server = tokio::spawn(serve_profile(
        profile,
        own,
        options.car,
        options.profile,
        slc_tx,
    ));

    let device = if options.pair || options.connect {
        Some(find_car(&adapter, options.car).await?)
    } else {
        None
    };
    if let Some(device) = &device
        && options.pair
    {
        pair(device).await?;
    }
    if let Some(device) = &device
        && options.connect
    {
        connect_hands_free(device).await?;
    }

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            slc = slc_rx.recv() => match slc {
                Some(()) if options.exit_after_slc => break,
                Some(()) => {}
                None => return Err("the profile was released by bluetoothd".into()),
            },
        }
    }
    server.abort();
    println!("STANDIN exit");
    Ok(())
}

/// Registers the phone user's agent: every request is accepted. Not the default agent — the
/// car's codriverd is — but BlueZ asks the agent of whoever started a pairing, so the pairings
/// this program starts are answered here.
async fn register_agent(session: &bluer::Session) -> bluer::Result<AgentHandle> {
    session
        .register_agent(Agent {
            request_default: false,
            request_pin_code: Some(Box::new(|req| {
                Box::pin(async move {
                    println!("STANDIN agent pin-code device={}", req.device);
                    Ok("0000".to_owned())
                })
            })),
            request_confirmation: Some(Box::new(|req| {
                Box::pin(async move {
                    println!(
                        "STANDIN agent confirm device={} passkey={:06}",
                        req.device, req.passkey
                    );
                    Ok(())
                })
            })),
            request_authorization: Some(Box::new(|req| {
                Box::pin(async move {
                    println!("STANDIN agent authorize device={}", req.device);
                    Ok(())
                })
            })),
            authorize_service: Some(Box::new(|req| {
                Box::pin(async move {
                    println!(
                        "STANDIN agent authorize-service device={} uuid={}",
                        req.device, req.service
                    );
                    Ok(())
                })
            })),
            ..Default::default()
        })
        .await
}

/// The car's device object, found by address through a BR/EDR discovery (the car is
/// discoverable inside its pairing window).
///
/// Not `Adapter1.ConnectDevice`: that makes bluetoothd connect every auto-connect profile of
/// the new device, and in the VM the car's own Hands-Free profile is one of them (one
/// bluetoothd serves both adapters), so bluetoothd would start a pairing on its own that the
/// car's agent (the default agent) answers instead of ours.
async fn find_car(adapter: &Adapter, car: Address) -> Result<Device, BoxError> {
    if adapter.device_addresses().await?.contains(&car) {
        return Ok(adapter.device(car)?);
    }
    adapter
        .set_discovery_filter(DiscoveryFilter {
            transport: DiscoveryTransport::BrEdr,
            ..Default::default()
        })
        .await?;
    let started = Instant::now();
    let events = adapter.discover_devices().await?;
    futures_util::pin_mut!(events);
    let found = timeout(STEP_TIMEOUT, async {
        while let Some(event) = events.next().await {
            if matches!(event, AdapterEvent::DeviceAdded(a) if a == car) {
                return true;
            }
        }
        false
    })
    .await;
    if found != Ok(true) {
        return Err(format!("the car {car} was not found").into());
    }
    println!(
        "STANDIN found car={car} ms={}",
        started.elapsed().as_millis()
    );
    Ok(adapter.device(car)?)
}

async fn pair(device: &Device) -> Result<(), BoxError> {
    let started = Instant::now();
    if !device.is_paired().await? {
        timeout(STEP_TIMEOUT, device.pair())
            .await
            .map_err(|_| "pairing timed out")??;
    }
    device.set_trusted(true).await?;
    println!(
        "STANDIN paired car={} ms={}",
        device.address(),
        started.elapsed().as_millis()
    );
    Ok(())
}

/// Opens the Hands-Free link from the phone. bluetoothd hands the socket to our Audio
/// Gateway profile before `ConnectProfile` returns, so the server task must be running.
async fn connect_hands_free(device: &Device) -> Result<(), BoxError> {
    let uuid = HFP_HF_UUID.parse()?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match timeout(STEP_TIMEOUT, device.connect_profile(&uuid)).await {
            Ok(Ok(())) => return Ok(()),
            // Already connected (the car was quicker): fine.
            Ok(Err(e)) if e.kind == bluer::ErrorKind::AlreadyConnected => return Ok(()),
            Ok(Err(e)) if attempt < 3 => {
                println!("STANDIN connect-hfp attempt={attempt} failed: {e}");
                sleep(Duration::from_millis(500)).await;
            }
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err("connecting Hands-Free timed out".into()),
        }
    }
}

/// Accepts Audio Gateway connections from the car and serves each with its own gateway.
async fn serve_profile(
    mut handle: ProfileHandle,
    own: Address,
    car: Address,
    profile: Profile,
    slc: mpsc::Sender<()>,
) {
    while let Some(request) = handle.next().await {
        if let Some(stream) = accept(request, own, car) {
            tokio::spawn(drive(stream, car, AudioGateway::new(profile), slc.clone()));
        }
    }
    println!("STANDIN profile-released");
}

fn accept(request: ConnectRequest, own: Address, car: Address) -> Option<Stream> {
    let device = request.device();
    if device != car {
        println!("STANDIN refused device={device} reason=not-the-car");
        request.reject(bluer::rfcomm::ReqError::Rejected);
        return None;
    }
    let stream = match request.accept() {
        Ok(s) => s,
        Err(e) => {
            println!("STANDIN accept-failed device={device} error={e}");
            return None;
        }
    };
    // One bluetoothd serves both adapters: a link on the car's adapter is not ours.
    match stream.as_ref().local_addr() {
        Ok(local) if local.addr == own => {
            println!("STANDIN hfp-connected car={device}");
            Some(stream)
        }
        Ok(local) => {
            println!(
                "STANDIN refused device={device} reason=other-adapter local={}",
                local.addr
            );
            None
        }
        Err(e) => {
            println!("STANDIN refused device={device} reason=local-address error={e}");
            None
        }
    }
}

/// Pumps bytes between the RFCOMM socket and the gateway until either side closes.
async fn drive(mut stream: Stream, car: Address, mut ag: AudioGateway, slc: mpsc::Sender<()>) {
    let mut buf = [0u8; 512];
    loop {
        while let Some(bytes) = ag.poll_transmit() {
            if let Err(e) = stream.write_all(&bytes).await {
                println!("STANDIN hfp-closed car={car} reason=write-error error={e}");
                return;
            }
        }
        while let Some(event) = ag.poll_event() {
            if event == AgEvent::SlcEstablished {
                println!("STANDIN slc-established car={car}");
                let _ = slc.try_send(());
            }
        }
        let deadline = ag.poll_timeout().map(Instant::from_std);
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) => {
                    println!("STANDIN hfp-closed car={car} reason=closed-by-car");
                    return;
                }
                Ok(n) => ag.handle_input(Instant::now().into_std(), &buf[..n]),
                Err(e) => {
                    println!("STANDIN hfp-closed car={car} reason=read-error error={e}");
                    return;
                }
            },
            () = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => ag.handle_timeout(Instant::now().into_std()),
        }
    }
}
