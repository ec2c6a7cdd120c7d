//! Voice and text messages end to end: a companion phone over the daemon's TCP transport
//! (loopback, real time: the spool fsyncs on the blocking pool), the in-process daemon with
//! mock audio, and a temporary spool. Every wait has an upper bound and none sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use codriver_companion::{Codec, Event, Frame, TextMessage, VoiceReply};
use codriver_config::Config;
use codriver_daemon::events::{Command, MessageAction};
use codriver_hal::mock::MockBluetooth;
use codriver_phone_sim::ag::Profile;
use codriver_phone_sim::companion::{
    CompanionPhone, fixture_pcm, fixture_speech, opus_voice_message, voice_message,
};
use codriver_tests::Rig;
use tokio::net::TcpStream;

const WITHIN: Duration = Duration::from_secs(30);

/// A free loopback port (bound, then released for the daemon).
fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

async fn boot(spool: &std::path::Path) -> (Rig, SocketAddr) {
    let addr = free_addr();
    let mut config = Config::default();
    config.messages.spool_directory = spool.to_owned();
    config.messages.companion_tcp = Some(addr);
    // No speech program: the chime-only fallback.
    config.messages.tts_command = "/nonexistent/espeak-ng".into();
    let mut rig = Rig::boot(config, MockBluetooth::new(), Profile::IphoneLike);
    rig.wait("ready").await;
    (rig, addr)
}

async fn phone(addr: SocketAddr) -> CompanionPhone<TcpStream> {
    let mut p = CompanionPhone::connect(addr).await.unwrap();
    p.handshake(WITHIN).await.unwrap();
    p
}

async fn delivered(p: &mut CompanionPhone<TcpStream>, id: &str) {
    p.wait_for(
        id,
        WITHIN,
        |e| matches!(e, Event::Delivered { id: i } if i == id),
    )
    .await
    .unwrap();
}

fn text(id: &str, body: &str) -> TextMessage {
    TextMessage {
        id: id.into(),
        sender_id: "bob@sim".into(),
        sender_name: "Bob".into(),
        conversation_id: "conv-2".into(),
        conversation_name: "Bob".into(),
        timestamp_ms: 1_700_000_000_000,
        text: body.into(),
    }
}

fn labels(rig: &Rig) -> Vec<String> {
    rig.audio.playbacks().into_iter().map(|p| p.label).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_message_in_chime_played_listened_receipt_back() {
    let spool = tempfile::tempdir().unwrap();
    let (mut rig, addr) = boot(spool.path()).await;
    let mut p = phone(addr).await;
    rig.wait("companion-connected Simulated Phone").await;

    let audio = fixture_pcm(500);
    p.send_voice(voice_message("m1", "Alice", 500), audio.clone())
        .await
        .unwrap();
    delivered(&mut p, "m1").await;
    rig.wait("message-received m1 voice Alice").await;
    rig.wait("message-played m1").await;
    p.wait_for(
        "listened m1",
        WITHIN,
        |e| matches!(e, Event::Listened { id, .. } if id == "m1"),
    )
    .await
    .unwrap();
    rig.wait("listened-receipt-sent m1").await;

    let played = rig.audio.playbacks();
    let chime = played.iter().position(|p| p.label == "chime-message");
    let message = played.iter().position(|p| p.label == "message m1");
    assert!(chime < message && chime.is_some(), "{:?}", labels(&rig));
    let samples = &played[message.unwrap()].samples;
    assert_eq!(samples.len(), audio.len() / 2, "every sample played");
    // Stored as listened.
    assert_eq!(
        std::fs::read_dir(spool.path().join("cur")).unwrap().count(),
        1
    );
    assert_eq!(
        std::fs::read_dir(spool.path().join("new")).unwrap().count(),
        0
    );

    // A text message is stored, acked and read (chime; no speech program here).
    p.send_text(text("t1", "on my way")).await.unwrap();
    delivered(&mut p, "t1").await;
    rig.wait("message-played t1").await;
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ogg_opus_message_is_decoded_announced_played_and_receipted() {
    let spool = tempfile::tempdir().unwrap();
    let (mut rig, addr) = boot(spool.path()).await;
    let mut p = phone(addr).await;
    let (message, audio) = opus_voice_message("o1", "Alice", 1_200);
    p.send_voice(message, audio).await.unwrap();
    delivered(&mut p, "o1").await;
    rig.wait("message-received o1 voice Alice").await;
    rig.wait("message-played o1").await;
    rig.wait("sound-played message o1").await;
    p.wait_for(
        "listened o1",
        WITHIN,
        |e| matches!(e, Event::Listened { id, .. } if id == "o1"),
    )
    .await
    .unwrap();
    let played = rig.audio.playbacks();
    let chime = played.iter().position(|p| p.label == "chime-message");
    let message = played.iter().position(|p| p.label == "message o1");
    assert!(chime < message && chime.is_some(), "{:?}", labels(&rig));
    let m = &played[message.unwrap()];
    assert_eq!(m.format, codriver_hal::PcmFormat::WIDEBAND);
    let sent = fixture_speech(1_200);
    assert_eq!(m.samples.len(), sent.len(), "decoded to the sample");
    // Lossy, so compare loudness: the message volume is 80 %.
    let rms =
        |s: &[i16]| (s.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / s.len() as f64).sqrt();
    let ratio = rms(&m.samples) / rms(&sent);
    assert!((0.6..1.0).contains(&ratio), "loudness ratio {ratio}");
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_on_a_new_link_is_acked_and_not_played_again() {
    let spool = tempfile::tempdir().unwrap();
    let (mut rig, addr) = boot(spool.path()).await;
    let mut p = phone(addr).await;
    p.send_voice(voice_message("m1", "Alice", 200), fixture_pcm(200))
        .await
        .unwrap();
    delivered(&mut p, "m1").await;
    rig.wait("message-played m1").await;
    drop(p);

    // The phone never saw the ack (say): it offers m1 again on a new link.
    let mut p = phone(addr).await;
    p.send_voice(voice_message("m1", "Alice", 200), fixture_pcm(200))
        .await
        .unwrap();
    delivered(&mut p, "m1").await;
    p.send_voice(voice_message("m2", "Alice", 200), fixture_pcm(200))
        .await
        .unwrap();
    delivered(&mut p, "m2").await;
    rig.wait("message-played m2").await;
    let plays = labels(&rig).iter().filter(|l| *l == "message m1").count();
    assert_eq!(plays, 1, "{:?}", labels(&rig));
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_an_error_reply_and_the_link_stays_up() {
    let spool = tempfile::tempdir().unwrap();
    let (mut rig, addr) = boot(spool.path()).await;
    let mut p = phone(addr).await;

    // Unknown type.
    p.send_raw(&[0xCD, 0x01, 0x7E, 0x00, 0, 0, 0, 0])
        .await
        .unwrap();
    p.wait_for("error (unknown type)", WITHIN, |e| {
        matches!(e, Event::PeerError(_))
    })
    .await
    .unwrap();
    // Truncated: a text message frame whose payload ends inside its first field.
    p.send_raw(&[0xCD, 0x01, 0x11, 0x00, 0, 0, 0, 2, 5, b'a'])
        .await
        .unwrap();
    p.wait_for("error (truncated)", WITHIN, |e| {
        matches!(e, Event::PeerError(_))
    })
    .await
    .unwrap();
    // Invalid UTF-8 in the sender's name.
    let mut bytes = Frame::TextMessage(text("t-bad", "hi")).to_bytes().unwrap();
    let at = bytes.windows(3).position(|w| w == b"Bob").unwrap();
    bytes[at] = 0xFF;
    bytes[at + 1] = 0xFE;
    p.send_raw(&bytes).await.unwrap();
    p.wait_for("error (invalid utf-8)", WITHIN, |e| {
        matches!(e, Event::PeerError(_))
    })
    .await
    .unwrap();
    // Oversized: the header announces more than a frame may hold; the payload is skipped.
    let mut big = vec![0xCD, 0x01, 0x11, 0x00];
    big.extend_from_slice(&0x0002_0000u32.to_be_bytes());
    big.resize(8 + 0x0002_0000, 0);
    p.send_raw(&big).await.unwrap();
    p.wait_for("error (oversized)", WITHIN, |e| {
        matches!(e, Event::PeerError(_))
    })
    .await
    .unwrap();

    // Still up: a good message goes through.
    p.send_text(text("t1", "still here")).await.unwrap();
    delivered(&mut p, "t1").await;
    rig.wait("message-received t1").await;
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_message_scenario_receives_announces_plays_and_receipts() {
    use codriver_daemon::simulate::{Scenario, Simulation, prepare};

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.dbus.enabled = false;
    config.simulation.output_directory = dir.path().to_owned();
    config.messages.tts_command = "/nonexistent/espeak-ng".into();
    let config = prepare(config, Some(Scenario::VoiceMessage));
    assert!(config.messages.companion_tcp.is_some());
    let out = codriver_hal::mock::MockAudioOutput::new();
    let report = Simulation::new(config, std::sync::Arc::new(out.clone()))
        .run(Some(Scenario::VoiceMessage), std::future::pending())
        .await
        .unwrap();
    let wanted = [
        "hands-free-ready",
        "companion-connected",
        "message-received sim-",
        "message-played sim-",
        "listened-receipt-sent sim-",
        "recording-started sim-",
        "reply-recorded reply-",
        "reply-offered reply-",
        "reply-delivered reply-",
    ];
    let mut it = report.events.iter();
    for w in wanted {
        assert!(
            it.any(|e| e.starts_with(w)),
            "{w:?} in {:#?}",
            report.events
        );
    }
    let labels: Vec<String> = out.playbacks().into_iter().map(|p| p.label).collect();
    assert!(labels.contains(&"chime-message".to_owned()), "{labels:?}");
    assert!(
        labels.iter().any(|l| l.starts_with("message sim-")),
        "{labels:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_loss_mid_transfer_resumes_from_the_durable_offset() {
    let spool = tempfile::tempdir().unwrap();
    let (mut rig, addr) = boot(spool.path()).await;
    let audio = fixture_pcm(3125); // 100 000 bytes: 7 chunks of 16 KiB
    let mut p = phone(addr).await;
    // HELLO is out already; the offer and two chunks fit, the third breaks the link.
    p.lose_link_after(40_000);
    p.send_voice(voice_message("r1", "Alice", 3125), audio.clone())
        .await
        .unwrap();
    p.wait_for("accept", WITHIN, |e| {
        matches!(e, Event::OfferAccepted { offset: 0, .. })
    })
    .await
    .unwrap();
    // A text after the chunks: its ack proves the car has read the chunks before it (they
    // become durable at the checkpoint the car takes when the link drops).
    let marker = Frame::TextMessage(text("marker", "x")).to_bytes().unwrap();
    p.send_raw(&marker).await.unwrap();
    delivered(&mut p, "marker").await;
    drop(p);

    let mut p = phone(addr).await;
    p.send_voice(voice_message("r1", "Alice", 3125), audio.clone())
        .await
        .unwrap();
    let accepted = p
        .wait_for("accept", WITHIN, |e| {
            matches!(e, Event::OfferAccepted { .. })
        })
        .await
        .unwrap();
    assert_eq!(
        accepted,
        Event::OfferAccepted {
            id: "r1".into(),
            offset: 2 * 0x4000
        },
        "resumed after the two chunks checkpointed at the link loss"
    );
    delivered(&mut p, "r1").await;
    rig.wait("message-played r1").await;
    rig.wait("listened-receipt-sent r1").await;
    let played = rig.audio.playbacks();
    let message = played.iter().find(|p| p.label == "message r1").unwrap();
    let expected: Vec<i16> = audio
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(message.samples.len(), expected.len(), "whole");
    // In order: each sample is the sent one at the message volume (80 % by default).
    let off = message
        .samples
        .iter()
        .zip(&expected)
        .position(|(&got, &sent)| (f32::from(got) - f32::from(sent) * 0.8).abs() > 2.0);
    assert_eq!(off, None, "first differing sample");
    rig.shutdown().await;
}

/// Asks the daemon for a messages action, as the D-Bus API does.
async fn action(rig: &Rig, action: MessageAction) -> Result<(), String> {
    rig.handle.request(|r| Command::Messages(action, r)).await
}

/// Plays one Ogg Opus message from Alice through the daemon, to have something to reply to.
async fn play_one(rig: &mut Rig, p: &mut CompanionPhone<TcpStream>, id: &str) {
    let (message, audio) = opus_voice_message(id, "Alice", 600);
    p.send_voice(message, audio).await.unwrap();
    delivered(p, id).await;
    rig.wait(&format!("sound-played message {id}")).await;
}

/// `ms` of fixture speech, then `silence_ms` of silence.
fn speech_then_silence(ms: u32, silence_ms: u32) -> Vec<i16> {
    let mut s = fixture_speech(ms);
    s.resize(s.len() + 16 * silence_ms as usize, 0);
    s
}

async fn reply_complete(p: &mut CompanionPhone<TcpStream>) -> VoiceReply {
    match p
        .wait_for("reply", WITHIN, |e| matches!(e, Event::ReplyComplete(_)))
        .await
        .unwrap()
    {
        Event::ReplyComplete(r) => r,
        other => panic!("{other:?}"),
    }
}

fn outbox_len(spool: &std::path::Path) -> usize {
    std::fs::read_dir(spool.join("outbox").join("new"))
        .unwrap()
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_recorded_from_the_mic_is_sent_as_ogg_opus_and_acked() {
    let spool = tempfile::tempdir().unwrap();
    let (mut rig, addr) = boot(spool.path()).await;
    let mut p = phone(addr).await;
    play_one(&mut rig, &mut p, "m1").await;

    rig.mic.push_fixture(speech_then_silence(1_500, 3_000));
    action(&rig, MessageAction::RecordReply).await.unwrap();
    rig.wait("recording-started m1").await;
    let recorded = rig.wait("reply-recorded reply-").await;
    // VAD: speech, then 1.5 s of silence ends it.
    assert!(recorded.ends_with(" silence"), "{recorded}");
    let reply = reply_complete(&mut p).await;
    assert_eq!(reply.conversation_id, "conv-1");
    assert_eq!(reply.in_reply_to, "m1");
    assert_eq!(reply.codec, Codec::OggOpus);
    assert!(
        recorded.contains(&format!("{}ms", reply.duration_ms)),
        "{recorded}"
    );
    assert!(
        (1_780..=1_840).contains(&reply.duration_ms),
        "1.5 s of speech + 0.3 s of the 1.5 s pause that ended it: {}",
        reply.duration_ms
    );
    let data = &p.replies()[0].data;
    let pcm = codriver_companion::audio::decode_ogg_opus(data, 16_000).unwrap();
    assert_eq!(pcm.len(), reply.duration_ms as usize * 16);
    rig.wait(&format!("reply-delivered {}", reply.id)).await;
    rig.wait("sound-played chime-reply-sent").await;
    let labels = labels(&rig);
    let start = labels.iter().position(|l| l == "chime-record-start");
    let stop = labels.iter().position(|l| l == "chime-record-stop");
    assert!(start.is_some() && start < stop, "{labels:?}");
    assert_eq!(
        outbox_len(spool.path()),
        0,
        "acked replies leave the outbox"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_survives_link_loss_and_a_restart_and_is_resent_until_acked() {
    let spool = tempfile::tempdir().unwrap();
    let (mut rig, addr) = boot(spool.path()).await;
    let mut p = phone(addr).await;
    p.auto_ack_replies(false);
    play_one(&mut rig, &mut p, "m1").await;
    rig.mic.push_fixture(speech_then_silence(800, 2_000));
    action(&rig, MessageAction::RecordReply).await.unwrap();
    let first = reply_complete(&mut p).await;
    // The link drops before the app acks.
    drop(p);
    assert_eq!(outbox_len(spool.path()), 1);

    // Offered again on the next link; still not acked.
    let mut p = phone(addr).await;
    p.auto_ack_replies(false);
    let again = reply_complete(&mut p).await;
    assert_eq!(again, first);
    drop(p);

    // The daemon restarts: the reply is still in the outbox and goes out again.
    rig.shutdown().await;
    let (mut rig, addr) = boot(spool.path()).await;
    let mut p = phone(addr).await;
    let third = reply_complete(&mut p).await;
    assert_eq!(third, first);
    rig.wait(&format!("reply-delivered {}", first.id)).await;
    assert_eq!(outbox_len(spool.path()), 0);
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_stops_at_the_configured_maximum() {
    let spool = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut config = Config::default();
    config.messages.spool_directory = spool.path().to_owned();
    config.messages.companion_tcp = Some(addr);
    config.messages.tts_command = "/nonexistent/espeak-ng".into();
    config.messages.max_reply = Duration::from_secs(2);
    let mut rig = Rig::boot(config, MockBluetooth::new(), Profile::IphoneLike);
    rig.wait("ready").await;
    let mut p = phone(addr).await;
    play_one(&mut rig, &mut p, "m1").await;
    rig.mic.push_fixture(fixture_speech(6_000));
    action(&rig, MessageAction::RecordReply).await.unwrap();
    let recorded = rig.wait("reply-recorded").await;
    assert!(recorded.ends_with(" 2000ms max-length"), "{recorded}");
    let reply = reply_complete(&mut p).await;
    assert_eq!(reply.duration_ms, 2_000);
    rig.wait("reply-delivered").await;
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_only_discards_the_recording_and_cancel_throws_it_away() {
    let spool = tempfile::tempdir().unwrap();
    let (mut rig, addr) = boot(spool.path()).await;
    let mut p = phone(addr).await;
    play_one(&mut rig, &mut p, "m1").await;
    // The mock microphone records silence when it has no fixture.
    action(&rig, MessageAction::RecordReply).await.unwrap();
    rig.wait("reply-discarded no speech").await;
    // Recording again, cancelled by the driver.
    rig.mic.push_fixture(fixture_speech(10_000));
    action(&rig, MessageAction::RecordReply).await.unwrap();
    rig.wait("recording-started m1").await;
    action(&rig, MessageAction::CancelReply).await.unwrap();
    rig.wait("reply-discarded cancelled").await;
    assert_eq!(
        action(&rig, MessageAction::SendReply).await,
        Err("no reply is being recorded".to_owned())
    );
    assert_eq!(outbox_len(spool.path()), 0);
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_record_a_reply_after_a_message_and_send_it() {
    let spool = tempfile::tempdir().unwrap();
    let (mut rig, addr) = boot(spool.path()).await;
    let mut p = phone(addr).await;
    // A daemon without paired phones opens the pairing window at boot; its gestures come
    // first. Close it.
    rig.handle
        .request(Command::ClosePairingWindow)
        .await
        .unwrap();
    play_one(&mut rig, &mut p, "m1").await;
    rig.mic.push_fixture(fixture_speech(20_000));
    // Just after the message: the `playing` context, where a long press records a reply.
    // (The recording's events and the action's run concurrently: wait for the former.)
    rig.long_press().await;
    rig.wait("recording-started m1").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A short press in `recording` sends it.
    rig.press().await;
    let recorded = rig.wait("reply-recorded").await;
    assert!(recorded.ends_with(" gesture"), "{recorded}");
    reply_complete(&mut p).await;
    rig.wait("reply-delivered").await;
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_controls_replay_stop_skip_and_play_next() {
    let spool = tempfile::tempdir().unwrap();
    let (mut rig, addr) = boot(spool.path()).await;
    let mut p = phone(addr).await;
    assert_eq!(
        action(&rig, MessageAction::Replay).await,
        Err("no message was played yet".to_owned())
    );
    play_one(&mut rig, &mut p, "m1").await;
    action(&rig, MessageAction::Replay).await.unwrap();
    rig.wait("sound-played message m1").await;
    // The sound is out; let the player see its job end.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let plays = labels(&rig).iter().filter(|l| *l == "message m1").count();
    assert_eq!(plays, 2, "{:?}", labels(&rig));
    // Nothing plays now: skip has nothing to skip, play-next nothing to play.
    assert!(action(&rig, MessageAction::Skip).await.is_err());
    assert_eq!(
        action(&rig, MessageAction::PlayNext).await,
        Err("no message is waiting".to_owned())
    );
    // Stop ends the reply window; then it has nothing to stop.
    action(&rig, MessageAction::Stop).await.unwrap();
    assert!(action(&rig, MessageAction::Stop).await.is_err());
    // After stop, a new message still plays (an arrival resumes playback).
    play_one(&mut rig, &mut p, "m2").await;
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_packets_message_is_played() {
    let spool = tempfile::tempdir().unwrap();
    let (mut rig, addr) = boot(spool.path()).await;
    let mut p = phone(addr).await;
    let mut message = voice_message("op1", "Alice", 800);
    message.codec = Codec::OpusPackets;
    let data =
        codriver_companion::audio::encode_opus_packets(&fixture_speech(800), 16_000).unwrap();
    p.send_voice(message, data).await.unwrap();
    delivered(&mut p, "op1").await;
    rig.wait("sound-played message op1").await;
    let played = rig.audio.playbacks();
    let m = played.iter().find(|p| p.label == "message op1").unwrap();
    // 40 packets of 20 ms, no pre-skip: every decoded sample plays.
    assert_eq!(m.samples.len(), 800 * 16);
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_and_stop_cut_playback_short_and_play_next_resumes() {
    let spool = tempfile::tempdir().unwrap();
    let (mut rig, addr) = boot(spool.path()).await;
    // Played in real time, so there is time to act while a message plays.
    rig.audio.set_paced(true);
    let mut p = phone(addr).await;
    for id in ["s1", "s2", "s3"] {
        let (message, audio) = opus_voice_message(id, "Alice", 3_000);
        p.send_voice(message, audio).await.unwrap();
        delivered(&mut p, id).await;
    }
    rig.wait("message-played s1").await;
    action(&rig, MessageAction::Skip).await.unwrap();
    rig.wait("playback-stopped s1").await;
    rig.wait("message-played s2").await;
    action(&rig, MessageAction::Stop).await.unwrap();
    rig.wait("playback-stopped s2").await;
    // Stopped: s3 waits for the driver.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !labels(&rig).iter().any(|l| l == "message s3"),
        "{:?}",
        labels(&rig)
    );
    action(&rig, MessageAction::PlayNext).await.unwrap();
    rig.wait("message-played s3").await;
    rig.wait("sound-played message s3").await;
    let played = rig.audio.playbacks();
    let whole = |id: &str| {
        played
            .iter()
            .find(|p| p.label == format!("message {id}"))
            .is_some_and(|p| p.finished)
    };
    let finished: Vec<(String, bool)> = played
        .iter()
        .map(|p| (p.label.clone(), p.finished))
        .collect();
    assert!(!whole("s1") && !whole("s2") && whole("s3"), "{finished:?}");
    rig.shutdown().await;
}
