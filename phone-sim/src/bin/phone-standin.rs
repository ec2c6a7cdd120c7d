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
//! With `--call-audio cvsd,msbc` it also places calls once the service level connection is up,
//! one per codec listed: it selects the codec (`+BCS`), rings (`RING`, `+CLIP`), waits for the
//! car to answer, opens the SCO link to the car as a phone does (kernel SCO sockets; CVSD or
//! transparent air mode for mSBC), sends a 1 kHz tone for `--call-seconds`, checks that what
//! the car sends back is a 440 Hz tone ([`codriver_phone_sim::tone`]), hangs up, and exits 0 if
//! every call's audio was intact (`STANDIN call-audio-result codec=… ok=…`).
//!
//! Two helper commands serve the scenarios, which have no other tools in the guest:
//! `phone-standin write-tone FILE HZ RATE SECONDS` writes a test-tone WAV (the car's
//! microphone), `phone-standin tone-check FILE HZ MIN_MS` checks a WAV the car played.
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
use codriver_callaudio::{CallCodec, CallPipeline, PipelineConfig};
use codriver_companion::Event;
use codriver_hal::linux::KernelSco;
use codriver_hal::{AirMode, ScoTransport};
use codriver_phone_sim::ag::{AgEvent, AudioGateway, Profile};
use codriver_phone_sim::companion::{CompanionPhone, fixture_pcm, voice_message};
use codriver_phone_sim::discovery::{
    ATT_CID, AttIncoming, SDP_PSM, att_classify, att_find_service_request,
    att_read_by_type_request, att_read_by_type_value, att_service_range, psm_from_value,
    sdp_rfcomm_channel, sdp_search_request, uuid_bytes,
};
use codriver_phone_sim::tone;
use futures_util::StreamExt;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Mutex, broadcast, mpsc};
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("write-tone") => return tool(write_tone(&args[1..])),
        Some("tone-check") => return tool(tone_check(&args[1..])),
        _ => {}
    }
    let options = match Options::parse(args.into_iter()) {
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
       [--call-audio cvsd,msbc] [--call-seconds N]
       phone-standin write-tone FILE HZ RATE SECONDS
       phone-standin tone-check FILE HZ MIN_MS
  --car ADDRESS     the car's (codriverd's adapter's) Bluetooth address
  --adapter NAME    the phone's adapter (default hci1)
  --profile NAME    phone behaviour: iphone-like, android-like (default), minimal, ...
  --pair            pair with the car by address (accepting on the phone side)
  --connect         open the Hands-Free link to the car (else wait for the car to connect)
  --exit-after-slc  exit 0 once a service level connection is established
  --companion T     send one voice message over the companion transport T (rfcomm: SDP, then
                    RFCOMM; l2cap: GATT PSM characteristic over LE, then an LE L2CAP channel),
                    wait for the car's delivery ack, and exit 0
  --call-audio LIST after the SLC, one incoming call per codec (cvsd, msbc) with a 1 kHz tone
                    over SCO; checks the car's 440 Hz tone coming back; exits when done
  --call-seconds N  seconds of audio per call (default 4)
  write-tone        writes a half-scale sine WAV (16-bit mono)
  tone-check        checks that FILE holds HZ intact for at least MIN_MS; exit 1 if not";

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
    call_audio: Vec<CallCodec>,
    call_seconds: u32,
    companion: Option<CompanionTransport>,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut car = None;
        let mut adapter = "hci1".to_owned();
        let mut profile = Profile::AndroidLike;
        let (mut pair, mut connect, mut exit_after_slc) = (false, false, false);
        let (mut call_audio, mut call_seconds) = (Vec::new(), 4);
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
                "--call-audio" => {
                    for c in value("--call-audio")?.split(',') {
                        call_audio.push(match c {
                            "cvsd" => CallCodec::Cvsd,
                            "msbc" => CallCodec::Msbc,
                            other => return Err(format!("--call-audio: unknown codec {other:?}")),
                        });
                    }
                }
                "--call-seconds" => {
                    let v = value("--call-seconds")?;
                    call_seconds = v.parse().map_err(|e| format!("--call-seconds {v}: {e}"))?;
                }
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
            call_audio,
            call_seconds,
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
    let (ag_tx, ag_rx) = mpsc::channel::<AgCommand>(4);
    let (events_tx, events) = broadcast::channel::<AgEvent>(64);
    let link = Link {
        commands: Arc::new(Mutex::new(ag_rx)),
        events: events_tx,
        slc: slc_tx,
    };
    let server = tokio::spawn(serve_profile(
        profile,
        own,
        options.car,
        options.profile,
        link,
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
                Some(()) if !options.call_audio.is_empty() => {
                    let calls = CallAudio {
                        own: codriver_hal::Address::new(own.0),
                        car: codriver_hal::Address::new(options.car.0),
                        commands: ag_tx.clone(),
                        events: events.resubscribe(),
                        seconds: options.call_seconds,
                    };
                    let result = calls.run(&options.call_audio).await;
                    server.abort();
                    println!("STANDIN exit");
                    return result;
                }
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
    link: Link,
) {
    while let Some(request) = handle.next().await {
        if let Some(stream) = accept(request, own, car) {
            tokio::spawn(drive(stream, car, AudioGateway::new(profile), link.clone()));
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
async fn drive(mut stream: Stream, car: Address, mut ag: AudioGateway, link: Link) {
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
                let _ = link.slc.try_send(());
            }
            let _ = link.events.send(event);
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
            command = async { link.commands.lock().await.recv().await } => {
                // (`None` cannot happen: the sender lives as long as the program.)
                if let Some(command) = command
                    && let Err(e) = command.apply(&mut ag, Instant::now().into_std())
                {
                    println!("STANDIN ag-command-failed error={e}");
                }
            }
        }
    }
}

/// What the gateway's driver shares with the rest of the program.
#[derive(Clone)]
struct Link {
    /// Commands for the gateway of the current connection (the first driver to take one).
    commands: Arc<Mutex<mpsc::Receiver<AgCommand>>>,
    /// Everything the car did.
    events: broadcast::Sender<AgEvent>,
    /// Each service level connection.
    slc: mpsc::Sender<()>,
}

/// The phone's actions during the call-audio calls.
#[derive(Debug, Clone, Copy)]
enum AgCommand {
    /// `+BCS: <id>`.
    CodecSwitch(u8),
    /// An incoming call: `+CIEV` callsetup, `RING`, `+CLIP`.
    IncomingCall,
    /// The caller hangs up.
    RemoteHangup,
}

impl AgCommand {
    fn apply(
        self,
        ag: &mut AudioGateway,
        now: std::time::Instant,
    ) -> Result<(), codriver_phone_sim::ag::ActionError> {
        match self {
            AgCommand::CodecSwitch(id) => ag.codec_switch(id),
            AgCommand::IncomingCall => ag
                .incoming_call(now, "+15550100", Some("Alice"))
                .map(|_| ()),
            AgCommand::RemoteHangup => ag.remote_hangup(),
        }
    }
}

/// The tone the phone sends (the caller's voice).
const CALLER_HZ: f64 = 1_000.0;
/// The tone the car's microphone plays in the VM (its config's `input_wav`).
const CAR_MIC_HZ: f64 = 440.0;

/// Incoming calls with audio over SCO, one per codec.
struct CallAudio {
    own: codriver_hal::Address,
    car: codriver_hal::Address,
    commands: mpsc::Sender<AgCommand>,
    events: broadcast::Receiver<AgEvent>,
    seconds: u32,
}

impl CallAudio {
    async fn run(mut self, codecs: &[CallCodec]) -> Result<(), BoxError> {
        let mut failed = Vec::new();
        for &codec in codecs {
            let name = codec_name(codec);
            match self.call(codec).await {
                Ok(true) => println!("STANDIN call-audio-result codec={name} ok=true"),
                Ok(false) => {
                    println!("STANDIN call-audio-result codec={name} ok=false");
                    failed.push(name);
                }
                Err(e) => {
                    println!("STANDIN call-audio-result codec={name} ok=false error={e}");
                    failed.push(name);
                }
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!("call audio failed for {}", failed.join(", ")).into())
        }
    }

    /// One call; `Ok(false)` when it ran but the car's audio did not arrive intact.
    async fn call(&mut self, codec: CallCodec) -> Result<bool, BoxError> {
        let name = codec_name(codec);
        let id = match codec {
            CallCodec::Msbc => 2,
            _ => 1,
        };
        // The phone selects the codec; the car confirms with AT+BCS=<id>.
        self.command(AgCommand::CodecSwitch(id)).await?;
        self.wait(&format!("AT+BCS={id}"), |e| {
            *e == AgEvent::CodecSelected(id)
        })
        .await?;
        println!("STANDIN codec-selected codec={name}");

        self.command(AgCommand::IncomingCall).await?;
        let ringing = Instant::now();
        println!("STANDIN ringing codec={name}");
        self.wait("ATA", |e| *e == AgEvent::CallAnswered).await?;
        println!(
            "STANDIN answered codec={name} ms={}",
            ringing.elapsed().as_millis()
        );

        // The phone (Audio Gateway) opens the audio connection.
        let mode = match codec {
            CallCodec::Msbc => AirMode::Transparent,
            _ => AirMode::Cvsd,
        };
        let started = Instant::now();
        let mut sco = timeout(
            STEP_TIMEOUT,
            KernelSco::new().connect(self.own, self.car, mode),
        )
        .await
        .map_err(|_| "SCO connect timed out")??;
        println!(
            "STANDIN sco-connected codec={name} mtu={} ms={}",
            sco.mtu(),
            started.elapsed().as_millis()
        );

        let rate = codec.sample_rate();
        let mut config = PipelineConfig::new(codec, rate);
        config.dsp.echo_cancellation = false;
        config.dsp.noise_suppression = false;
        let mut phone = CallPipeline::new(config)?;
        let frame = codec.frame_samples();
        let total = self.seconds as usize * rate as usize;
        let caller = tone::sine(rate, CALLER_HZ, total);
        let mut frames = caller.chunks_exact(frame);
        let period = Duration::from_micros(frame as u64 * 1_000_000 / u64::from(rate));
        let mut tick = tokio::time::interval(period);
        let mut heard = Vec::new();
        let (mut sent, mut received) = (0u64, 0u64);
        let mut buf = [0u8; 1024];
        let audio_result: Result<(), BoxError> = loop {
            tokio::select! {
                _ = tick.tick() => {
                    let Some(pcm) = frames.next() else { break Ok(()) };
                    phone.handle_mic(pcm)?;
                    let mut send_error = None;
                    while let Some(p) = phone.poll_transmit() {
                        if let Err(e) = sco.send(&p).await {
                            send_error = Some(e);
                            break;
                        }
                        sent += 1;
                    }
                    if let Some(e) = send_error {
                        break Err(format!("SCO send: {e}").into());
                    }
                }
                r = sco.recv(&mut buf) => match r {
                    Ok(0) => break Err("the car closed the SCO link".into()),
                    Ok(n) => {
                        received += 1;
                        phone.handle_sco_packet(&buf[..n]);
                        phone.take_speaker(&mut heard);
                    }
                    Err(e) => break Err(format!("SCO receive: {e}").into()),
                },
            }
        };
        let stats = phone.rx_stats();
        let report = tone::measure(&heard, rate, CAR_MIC_HZ);
        let peak = heard.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        // Kept for a failure's evidence (the scenario copies it to the host).
        let evidence = format!("/tmp/phone-heard-{name}.wav");
        if let Err(e) = write_wav(&evidence, rate, &heard) {
            println!("STANDIN cannot-write file={evidence} error={e}");
        }
        // The car's microphone starts a moment after the link: most of the call must be the
        // tone, in one piece.
        let min_ms = u64::from(self.seconds) * 1000 / 2;
        let intact = audio_result.is_ok() && report.is_intact(min_ms);
        println!(
            "STANDIN heard-car codec={name} packets_sent={sent} packets_received={received} \
             frames={} lost={} corrupt={} peak={peak} {report} min_tone_ms={min_ms} intact={intact}",
            stats.frames, stats.lost_frames, stats.corrupt_frames
        );
        if let Err(e) = &audio_result {
            println!("STANDIN call-audio-error codec={name} error={e}");
        }

        // The caller hangs up; the phone closes the audio connection with the call.
        self.command(AgCommand::RemoteHangup).await?;
        drop(sco);
        // Let the car see the call end before the next one rings.
        sleep(Duration::from_secs(1)).await;
        Ok(intact)
    }

    async fn command(&self, command: AgCommand) -> Result<(), BoxError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| "the Hands-Free link is gone".into())
    }

    async fn wait(&mut self, what: &str, want: impl Fn(&AgEvent) -> bool) -> Result<(), BoxError> {
        let found = timeout(STEP_TIMEOUT, async {
            loop {
                match self.events.recv().await {
                    Ok(e) if want(&e) => return true,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return false,
                }
            }
        })
        .await;
        match found {
            Ok(true) => Ok(()),
            _ => Err(format!("no {what} from the car").into()),
        }
    }
}

fn codec_name(codec: CallCodec) -> &'static str {
    match codec {
        CallCodec::Msbc => "mSBC",
        _ => "CVSD",
    }
}

/// Runs a helper command: prints its error and maps it to an exit code.
fn tool(result: Result<bool, String>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("phone-standin: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// `write-tone FILE HZ RATE SECONDS`.
fn write_tone(args: &[String]) -> Result<bool, String> {
    let [file, hz, rate, seconds] = args else {
        return Err("write-tone needs FILE HZ RATE SECONDS".into());
    };
    let hz: f64 = hz.parse().map_err(|e| format!("HZ {hz}: {e}"))?;
    let rate: u32 = rate.parse().map_err(|e| format!("RATE {rate}: {e}"))?;
    let seconds: usize = seconds
        .parse()
        .map_err(|e| format!("SECONDS {seconds}: {e}"))?;
    write_wav(file, rate, &tone::sine(rate, hz, seconds * rate as usize))?;
    Ok(true)
}

/// Writes 16-bit mono samples to a WAV file.
fn write_wav(file: &str, rate: u32, samples: &[i16]) -> Result<(), String> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(file, spec).map_err(|e| format!("{file}: {e}"))?;
    for &s in samples {
        w.write_sample(s).map_err(|e| format!("{file}: {e}"))?;
    }
    w.finalize().map_err(|e| format!("{file}: {e}"))
}

/// `tone-check FILE HZ MIN_MS`: prints the measure, `Ok(false)` unless intact.
fn tone_check(args: &[String]) -> Result<bool, String> {
    let [file, hz, min_ms] = args else {
        return Err("tone-check needs FILE HZ MIN_MS".into());
    };
    let hz: f64 = hz.parse().map_err(|e| format!("HZ {hz}: {e}"))?;
    let min_ms: u64 = min_ms
        .parse()
        .map_err(|e| format!("MIN_MS {min_ms}: {e}"))?;
    let mut r = hound::WavReader::open(file).map_err(|e| format!("{file}: {e}"))?;
    let rate = r.spec().sample_rate;
    let samples: Vec<i16> = r
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{file}: {e}"))?;
    let report = tone::measure(&samples, rate, hz);
    let intact = report.is_intact(min_ms);
    println!("TONE file={file} rate={rate} {report} min_tone_ms={min_ms} intact={intact}");
    Ok(intact)
}
