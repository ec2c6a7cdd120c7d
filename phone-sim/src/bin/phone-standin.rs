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
//! With `--companion rfcomm` or `--companion l2cap` it plays the phone's messaging app: it
//! finds the car's companion transport as a phone does (Android: SDP query for the companion
//! UUID's RFCOMM channel; iOS: the companion GATT service's PSM characteristic, then an LE
//! L2CAP channel to the car's LE public address), sends one voice message with
//! [`CompanionPhone`] and waits for the car's delivery ack.
//!
//! It prints one line per milestone on standard output, `STANDIN <what> key=value…`, which
//! the scenario scripts wait for (`ready`, `paired`, `hfp-connected`, `slc-established`,
//! `hfp-closed`, `companion-delivered`). It runs until SIGTERM/SIGINT, or exits 0 after the
//! first service level connection with `--exit-after-slc`, or after the companion exchange
//! with `--companion`.
//!
//! In the VM both controllers share one bluetoothd, so every registered profile listens on
//! both adapters; connections whose local end is not this program's adapter are refused. For
//! the same reason the companion transports are found and opened with this program's own
//! sockets (SDP and ATT over L2CAP, bound to its adapter): bluetoothd's profile API would
//! hand the car's companion profile back to the car (codriverd registered that UUID), and
//! its GATT client would not pick the LE bearer for a device bonded over BR/EDR.

use std::error::Error;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use bluer::agent::{Agent, AgentHandle};
use bluer::l2cap;
use bluer::rfcomm::{self, ConnectRequest, Profile as BluezProfile, ProfileHandle, Stream};
use bluer::{
    Adapter, AdapterEvent, Address, AddressType, Device, DiscoveryFilter, DiscoveryTransport,
};
use codriver_companion::Event;
use codriver_phone_sim::ag::{AgEvent, AudioGateway, Profile};
use codriver_phone_sim::companion::{CompanionPhone, fixture_pcm, voice_message};
use codriver_phone_sim::discovery::{
    ATT_CID, AttIncoming, SDP_PSM, att_classify, att_find_service_request,
    att_read_by_type_request, att_read_by_type_value, att_service_range, psm_from_value,
    sdp_rfcomm_channel, sdp_search_request, uuid_bytes,
};
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
/// The companion protocol's RFCOMM service class (SDP).
const COMPANION_UUID: &str = "c0d71e00-5a5e-4c61-9b1a-6f8b2a3e0001";
/// The companion GATT service, advertised by the car over LE.
const COMPANION_GATT_SERVICE_UUID: &str = "c0d71e00-5a5e-4c61-9b1a-6f8b2a3e0002";
/// Its PSM characteristic: the LE L2CAP PSM, `u16` little-endian.
const COMPANION_PSM_CHARACTERISTIC_UUID: &str = "c0d71e00-5a5e-4c61-9b1a-6f8b2a3e0003";
/// Length of the voice message sent (s16le 16 kHz mono: 32 bytes per millisecond).
const VOICE_MS: u32 = 4000;

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
[--pair] [--connect] [--exit-after-slc] [--companion rfcomm|l2cap]
  --car ADDRESS     the car's (codriverd's adapter's) Bluetooth address
  --adapter NAME    the phone's adapter (default hci1)
  --profile NAME    phone behaviour: iphone-like, android-like (default), minimal, ...
  --pair            pair with the car by address (accepting on the phone side)
  --connect         open the Hands-Free link to the car (else wait for the car to connect)
  --exit-after-slc  exit 0 once a service level connection is established
  --companion T     send one voice message over the companion transport T (rfcomm: SDP, then
                    RFCOMM; l2cap: GATT PSM characteristic over LE, then an LE L2CAP channel),
                    wait for the car's delivery ack, and exit 0";

/// The companion transport to exercise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CompanionTransport {
    Rfcomm,
    L2cap,
}

/// Command-line options.
#[derive(Debug)]
struct Options {
    car: Address,
    adapter: String,
    profile: Profile,
    pair: bool,
    connect: bool,
    exit_after_slc: bool,
    companion: Option<CompanionTransport>,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut car = None;
        let mut adapter = "hci1".to_owned();
        let mut profile = Profile::AndroidLike;
        let (mut pair, mut connect, mut exit_after_slc) = (false, false, false);
        let mut companion = None;
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
                "--companion" => {
                    companion = Some(match value("--companion")?.as_str() {
                        "rfcomm" => CompanionTransport::Rfcomm,
                        "l2cap" => CompanionTransport::L2cap,
                        other => return Err(format!("--companion {other:?}: rfcomm or l2cap")),
                    });
                }
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
            companion,
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

    let device = if options.pair || options.connect || options.companion.is_some() {
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
    if let Some(transport) = options.companion {
        match transport {
            CompanionTransport::Rfcomm => {
                let stream = open_companion_rfcomm(own, options.car).await?;
                companion_exchange(stream, "rfcomm").await?;
            }
            CompanionTransport::L2cap => {
                // The ATT channel keeps the LE link up until the companion channel is open.
                let (stream, _att) = open_companion_l2cap(own, options.car).await?;
                companion_exchange(stream, "l2cap").await?;
            }
        }
        server.abort();
        println!("STANDIN exit");
        return Ok(());
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

/// Finds the car's companion RFCOMM channel with an SDP query for the companion UUID (what
/// Android's `createRfcommSocketToServiceRecord` does) and connects to it from our adapter,
/// encrypted (security medium: the bond's key).
async fn open_companion_rfcomm(own: Address, car: Address) -> Result<rfcomm::Stream, BoxError> {
    let started = Instant::now();
    let uuid = uuid_bytes(COMPANION_UUID).ok_or("bad companion UUID")?;
    let sdp = l2cap::Socket::<l2cap::SeqPacket>::new_seq_packet()?;
    sdp.bind(l2cap::SocketAddr::new(own, AddressType::BrEdr, 0))?;
    let sdp = timeout(
        STEP_TIMEOUT,
        sdp.connect(l2cap::SocketAddr::new(car, AddressType::BrEdr, SDP_PSM)),
    )
    .await
    .map_err(|_| "SDP connection timed out")??;
    sdp.send(&sdp_search_request(1, uuid)).await?;
    let mut buf = vec![0u8; 2048];
    let n = timeout(STEP_TIMEOUT, sdp.recv(&mut buf))
        .await
        .map_err(|_| "no SDP answer")??;
    let channel = sdp_rfcomm_channel(&buf[..n])?;
    drop(sdp);
    println!(
        "STANDIN companion-sdp channel={channel} ms={}",
        started.elapsed().as_millis()
    );
    let socket = rfcomm::Socket::new()?;
    socket.bind(rfcomm::SocketAddr::new(own, 0))?;
    socket.set_security(rfcomm::Security {
        level: rfcomm::SecurityLevel::Medium,
        key_size: 0,
    })?;
    let stream = timeout(
        STEP_TIMEOUT,
        socket.connect(rfcomm::SocketAddr::new(car, channel)),
    )
    .await
    .map_err(|_| "companion RFCOMM connection timed out")??;
    println!(
        "STANDIN companion-connected transport=rfcomm channel={channel} ms={}",
        started.elapsed().as_millis()
    );
    Ok(stream)
}

/// Reads the companion PSM from the car's GATT service over LE (ATT on the fixed channel,
/// to the car's LE public address: the GATT client an iPhone has) and opens the LE L2CAP
/// channel, encrypted (security medium: the LE key derived when pairing over BR/EDR with
/// Secure Connections). Returns the channel and the ATT socket, which keeps the LE link up.
async fn open_companion_l2cap(
    own: Address,
    car: Address,
) -> Result<(l2cap::Stream, l2cap::SeqPacket), BoxError> {
    let started = Instant::now();
    let service = uuid_bytes(COMPANION_GATT_SERVICE_UUID).ok_or("bad service UUID")?;
    let characteristic =
        uuid_bytes(COMPANION_PSM_CHARACTERISTIC_UUID).ok_or("bad characteristic UUID")?;
    let att_addr = |addr| l2cap::SocketAddr {
        addr,
        addr_type: AddressType::LePublic,
        psm: 0,
        cid: ATT_CID,
    };
    let att = l2cap::Socket::<l2cap::SeqPacket>::new_seq_packet()?;
    att.bind(att_addr(own))?;
    let att = timeout(STEP_TIMEOUT, att.connect(att_addr(car)))
        .await
        .map_err(|_| "LE connection (ATT) timed out: is the car advertising?")??;
    println!(
        "STANDIN companion-le-connected ms={}",
        started.elapsed().as_millis()
    );
    let range =
        att_service_range(&att_request(&att, 0x06, &att_find_service_request(service)).await?)?;
    let value = att_read_by_type_value(
        &att_request(&att, 0x08, &att_read_by_type_request(range, characteristic)).await?,
    )?;
    let psm = psm_from_value(&value)?;
    println!(
        "STANDIN companion-gatt psm={psm:#06x} service={:#06x}-{:#06x} ms={}",
        range.0,
        range.1,
        started.elapsed().as_millis()
    );
    let socket = l2cap::Socket::<l2cap::Stream>::new_stream()?;
    socket.set_security(l2cap::Security {
        level: l2cap::SecurityLevel::Medium,
        key_size: 0,
    })?;
    socket.bind(l2cap::SocketAddr::new(own, AddressType::LePublic, 0))?;
    let stream = timeout(
        STEP_TIMEOUT,
        socket.connect(l2cap::SocketAddr::new(car, AddressType::LePublic, psm)),
    )
    .await
    .map_err(|_| "companion L2CAP connection timed out")??;
    println!(
        "STANDIN companion-connected transport=l2cap psm={psm:#06x} ms={}",
        started.elapsed().as_millis()
    );
    Ok((stream, att))
}

/// Sends one ATT request and waits for its response, answering the car's own requests
/// meanwhile (its GATT client explores every new LE link).
async fn att_request(att: &l2cap::SeqPacket, opcode: u8, pdu: &[u8]) -> Result<Vec<u8>, BoxError> {
    att.send(pdu).await?;
    let mut buf = [0u8; 512];
    let answer = timeout(STEP_TIMEOUT, async {
        loop {
            let n = att.recv(&mut buf).await?;
            match att_classify(&buf[..n]) {
                AttIncoming::Response { request, pdu } if request == opcode => {
                    return Ok::<_, std::io::Error>(pdu);
                }
                AttIncoming::Answer(answer) => {
                    att.send(&answer).await?;
                }
                AttIncoming::Response { .. } | AttIncoming::Ignore => {}
            }
        }
    })
    .await
    .map_err(|_| format!("no answer to ATT request {opcode:#04x}"))??;
    Ok(answer)
}

/// The messaging app's part: handshake, one voice message, the car's delivery ack.
async fn companion_exchange<S>(stream: S, transport: &str) -> Result<(), BoxError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let started = Instant::now();
    let mut phone = CompanionPhone::new(stream, "codriver phone stand-in");
    phone.handshake(STEP_TIMEOUT).await?;
    println!(
        "STANDIN companion-handshake transport={transport} ms={}",
        started.elapsed().as_millis()
    );
    let id = format!("vm-{transport}-1");
    let audio = fixture_pcm(VOICE_MS);
    let bytes = audio.len();
    let sent = Instant::now();
    phone
        .send_voice(voice_message(&id, "Alice", VOICE_MS), audio)
        .await?;
    phone
        .wait_for(
            "the delivery ack",
            STEP_TIMEOUT,
            |e| matches!(e, Event::Delivered { id: i } if *i == id),
        )
        .await?;
    let ms = sent.elapsed().as_millis();
    println!(
        "STANDIN companion-delivered transport={transport} id={id} bytes={bytes} ms={ms} \
         kib_per_s={}",
        (bytes as u128 * 1000 / 1024) / ms.max(1)
    );
    Ok(())
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
