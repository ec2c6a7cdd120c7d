//! The phone and call objects of the D-Bus API on a private, system-like bus, with
//! `codriverctl` as the client: a known phone reconnects, a call rings, `codriverctl` lists,
//! answers, sends DTMF, holds and turns the volume up, and the call object goes away when the
//! far end hangs up; a text message from the phone's messaging app becomes a message object
//! that `codriverctl messages` lists and plays. Also checks that the introspection XML in `docs/dbus/` matches what the
//! daemon serves (`CODRIVER_BLESS=1` rewrites those files from the live objects).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use codriver_companion::{Event, TextMessage};
use codriver_config::Config;
use codriver_daemon::Daemon;
use codriver_daemon::events::DaemonEvent;
use codriver_hal::mock::{MockAudioInput, MockAudioOutput, MockBluetooth};
use codriver_hal::{DeviceInfo, Hal};
use codriver_phone_sim::ag::{AgEvent, Profile};
use codriver_phone_sim::companion::CompanionPhone;
use codriver_phone_sim::{AgCommand, AgLink, PhoneSpec, SimulatedPhone};
use codriver_tests::private_bus::PrivateBus;

const CTL: &str = env!("CARGO_BIN_EXE_codriverctl");
const STEP: Duration = Duration::from_secs(20);

/// Runs codriverctl; returns (success, stdout, stderr).
fn ctl(bus: &PrivateBus, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(CTL)
        .args(args)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs codriverctl off the runtime's threads (the daemon serves it meanwhile).
async fn ctl_async(bus: &PrivateBus, args: &[&str]) -> (bool, String, String) {
    let address = bus.address.clone();
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(CTL)
            .args(&args)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    })
    .await
    .unwrap()
}

async fn wait_for(
    events: &mut tokio::sync::broadcast::Receiver<DaemonEvent>,
    want: impl Fn(&DaemonEvent) -> bool,
) {
    tokio::time::timeout(STEP, async {
        loop {
            if let Ok(e) = events.recv().await
                && want(&e)
            {
                return;
            }
        }
    })
    .await
    .expect("event in time");
}

async fn phone_did(link: &mut AgLink, what: &str, want: impl Fn(&AgEvent) -> bool) {
    link.wait_for(what, STEP, want).await.unwrap();
}

/// Polls codriverctl until `args` prints something containing `want` (objects follow the
/// daemon's state asynchronously).
async fn until_ctl(bus: &PrivateBus, args: &[&str], want: &str) -> String {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let (ok, out, err) = ctl_async(bus, args).await;
        if ok && out.contains(want) {
            return out;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "codriverctl {args:?} never printed {want:?}: {out}{err}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `<interface name="…">…</interface>` block of `xml`, each line trimmed, blank lines
/// dropped: child `<node>`s and indentation differ between runs, the interface does not.
fn interface_block(xml: &str, interface: &str) -> String {
    let start = xml
        .find(&format!("<interface name=\"{interface}\">"))
        .unwrap_or_else(|| panic!("{interface} not served:\n{xml}"));
    let end = start + xml[start..].find("</interface>").unwrap() + "</interface>".len();
    xml[start..end]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

async fn check_introspection(conn: &zbus::Connection, path: &str, interface: &str) {
    let proxy = zbus::fdo::IntrospectableProxy::builder(conn)
        .destination("org.codriver.Codriver1")
        .unwrap()
        .path(path.to_owned())
        .unwrap()
        .build()
        .await
        .unwrap();
    let live = interface_block(&proxy.introspect().await.unwrap(), interface);
    let file: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "docs",
        "dbus",
        &format!("{interface}.xml"),
    ]
    .iter()
    .collect();
    if std::env::var_os("CODRIVER_BLESS").is_some() {
        std::fs::write(&file, &live).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&file).unwrap_or_default();
    assert_eq!(
        checked_in,
        live,
        "{} is out of date: run `CODRIVER_BLESS=1 cargo test -p codriver-cli --test dbus_objects` and review the diff",
        file.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_and_calls_as_objects_driven_by_codriverctl() {
    let bus = PrivateBus::start();
    // The only test in this binary, so no other thread reads the environment meanwhile.
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", &bus.address) };

    let phone_address = "00:11:22:33:44:55".parse().unwrap();
    let host = MockBluetooth::new();
    host.add_known_device(DeviceInfo {
        address: phone_address,
        name: Some("Test Phone".into()),
        paired: true,
        trusted: true,
        connected: false,
    });
    let mut phone = SimulatedPhone::new(
        host.radio(),
        PhoneSpec {
            address: phone_address,
            name: "Test Phone".into(),
            profile: Profile::AndroidLike,
            passkey: 123_456,
        },
    );
    let hal = Hal {
        bluetooth: Arc::new(host),
        audio_out: Arc::new(MockAudioOutput::new()),
        audio_in: Arc::new(MockAudioInput::new()),
        buttons: Vec::new(),
        amplifier: None,
    };
    let mut config = Config::default();
    // The messages service always runs; keep its spool out of /var/lib.
    let spool = tempfile::tempdir().unwrap();
    config.messages.spool_directory = spool.path().to_owned();
    let companion_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    config.messages.companion_tcp = Some(companion_addr);
    config.messages.tts_command = "/nonexistent/espeak-ng".into();
    let daemon = Daemon::new(config, hal);
    let handle = daemon.handle();
    let mut events = handle.subscribe();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(daemon.run(async move {
        let _ = stopped.await;
    }));
    wait_for(&mut events, |e| matches!(e, DaemonEvent::Ready)).await;
    phone.appear().await;
    let mut link = tokio::time::timeout(STEP, phone.accept_hands_free())
        .await
        .expect("the daemon reconnects the known phone")
        .expect("phone in range");
    wait_for(&mut events, |e| {
        matches!(e, DaemonEvent::HandsFreeReady { .. })
    })
    .await;

    let phones = until_ctl(&bus, &["--json", "phones"], "\"connected\":true").await;
    assert!(
        phones.contains("\"address\":\"00:11:22:33:44:55\""),
        "{phones}"
    );
    assert!(phones.contains("\"name\":\"Test Phone\""), "{phones}");
    assert!(phones.contains("\"active\":true"), "{phones}");
    assert!(phones.contains("\"battery\":5"), "{phones}");
    assert!(phones.contains("\"service\":true"), "{phones}");
    let (ok, text, _) = ctl_async(&bus, &["phones"]).await;
    assert!(ok);
    assert!(
        text.contains("00:11:22:33:44:55 Test Phone (active): battery 5/5, signal 5/5, service"),
        "{text}"
    );

    let (ok, calls, _) = ctl_async(&bus, &["call", "list"]).await;
    assert!(ok && calls.contains("no calls"), "{calls}");

    link.command(AgCommand::IncomingCall {
        number: "+15550100".into(),
        name: Some("Alice".into()),
    })
    .await
    .unwrap();
    let calls = until_ctl(&bus, &["calls"], "call 1: incoming incoming").await;
    assert!(calls.contains("+15550100"), "{calls}");

    // The served interfaces match the checked-in XML.
    let client = zbus::Connection::system().await.unwrap();
    check_introspection(
        &client,
        "/org/codriver/Codriver1",
        "org.codriver.Codriver1.Daemon",
    )
    .await;
    check_introspection(
        &client,
        "/org/codriver/Codriver1/phone/00_11_22_33_44_55",
        "org.codriver.Codriver1.Phone",
    )
    .await;
    check_introspection(
        &client,
        "/org/codriver/Codriver1/call/1",
        "org.codriver.Codriver1.Call",
    )
    .await;

    let (ok, _, err) = ctl_async(&bus, &["call", "answer"]).await;
    assert!(ok, "{err}");
    phone_did(&mut link, "ATA", |e| *e == AgEvent::CallAnswered).await;
    let json = until_ctl(&bus, &["--json", "calls"], "\"state\":\"active\"").await;
    assert!(json.contains("\"number\":\"+15550100\""), "{json}");
    assert!(
        json.contains("\"phone\":\"/org/codriver/Codriver1/phone/00_11_22_33_44_55\""),
        "{json}"
    );

    let (ok, _, err) = ctl_async(&bus, &["call", "dtmf", "1#"]).await;
    assert!(ok, "{err}");
    phone_did(&mut link, "AT+VTS=1", |e| *e == AgEvent::DtmfSent('1')).await;
    phone_did(&mut link, "AT+VTS=#", |e| *e == AgEvent::DtmfSent('#')).await;
    let (ok, _, err) = ctl_async(&bus, &["call", "dtmf", "x"]).await;
    assert!(!ok);
    assert!(
        err.contains("org.codriver.Codriver1.Error.NotPossible"),
        "{err}"
    );
    assert!(err.contains("not a DTMF string"), "{err}");

    let (ok, _, err) = ctl_async(&bus, &["volume", "up"]).await;
    assert!(ok, "{err}");
    phone_did(&mut link, "AT+VGS", |e| {
        matches!(e, AgEvent::SpeakerVolume(_))
    })
    .await;

    let (ok, _, err) = ctl_async(&bus, &["call", "hold"]).await;
    assert!(ok, "{err}");
    phone_did(&mut link, "AT+CHLD=2", |e| *e == AgEvent::Chld("2".into())).await;
    until_ctl(&bus, &["calls"], "held").await;

    link.command(AgCommand::RemoteHangup).await.unwrap();
    until_ctl(&bus, &["calls"], "no calls").await;

    // Nothing in the spool: a typed error that says so.
    let (ok, _, err) = ctl_async(&bus, &["messages", "play"]).await;
    assert!(!ok);
    assert!(err.contains("no message is waiting"), "{err}");

    // A text message from the phone's messaging app becomes a message object.
    let mut app = CompanionPhone::connect(companion_addr).await.unwrap();
    app.handshake(STEP).await.unwrap();
    app.send_text(TextMessage {
        id: "t1".into(),
        sender_id: "bob@sim".into(),
        sender_name: "Bob".into(),
        conversation_id: "conv-2".into(),
        conversation_name: "Bob".into(),
        timestamp_ms: 1_700_000_000_000,
        text: "On my way".into(),
    })
    .await
    .unwrap();
    app.wait_for(
        "t1",
        STEP,
        |e| matches!(e, Event::Delivered { id } if id == "t1"),
    )
    .await
    .unwrap();
    let listed = until_ctl(&bus, &["messages"], "t1: text message from Bob").await;
    assert!(listed.lines().count() == 1, "{listed}");
    let json = until_ctl(&bus, &["--json", "messages", "list"], "\"listened\":true").await;
    assert!(json.contains("\"conversation\":\"Bob\""), "{json}");
    assert!(json.contains("\"received\":"), "{json}");
    check_introspection(
        &client,
        "/org/codriver/Codriver1/message/1",
        "org.codriver.Codriver1.Message",
    )
    .await;
    let (ok, _, err) = ctl_async(&bus, &["messages", "play", "t1"]).await;
    assert!(ok, "{err}");
    wait_for(
        &mut events,
        |e| matches!(e, DaemonEvent::MessagePlayed { id } if id == "t1"),
    )
    .await;
    let (ok, _, err) = ctl_async(&bus, &["messages", "play", "nope"]).await;
    assert!(!ok);
    assert!(err.contains("no message nope"), "{err}");
    let (ok, script, _) = ctl(&bus, &["completions", "bash"]);
    assert!(ok && script.contains("codriverctl"), "{script}");
    let (ok, volume, _) = ctl(&bus, &["--json", "volume"]);
    assert!(ok && volume.starts_with("{\"volume\":"), "{volume}");

    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
