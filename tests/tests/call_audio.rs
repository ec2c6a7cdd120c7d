//! Call audio end to end under paused time: the real daemon with the mock SCO transport and
//! the simulated phone's Audio Gateway.

use codriver_config::Config;
use codriver_hal::{AirMode, ScoLink};
use codriver_phone_sim::AgCommand;
use codriver_phone_sim::ag::{AgEvent, Profile};
use codriver_tests::{Rig, STEP};

/// mSBC that never decodes: the car gives up on the link, tells the phone it supports CVSD
/// only (`AT+BAC=1`, seen by the phone as its available codecs), and the phone's next link,
/// after `+BCS: 1`, is CVSD. A later `+BCS: 2` is not accepted.
#[tokio::test(start_paused = true)]
async fn msbc_that_keeps_failing_is_renegotiated_to_cvsd() {
    let (mut rig, mut link, sco) =
        Rig::boot_paired_with_sco(Config::default(), Profile::AndroidLike).await;
    link.command(AgCommand::CodecSwitch(2)).await.unwrap();
    link.wait_for("AT+BCS=2", STEP, |e| *e == AgEvent::CodecSelected(2))
        .await
        .unwrap();
    rig.telephony("codec msbc").await;
    // Let the call-audio task take the codec before the link comes.
    tokio::task::yield_now().await;

    let mut audio = sco.connect(AirMode::Transparent, 60).await.unwrap();
    rig.wait("call-audio-started 00:11:22:33:44:55 mSBC").await;
    // H2 packets whose mSBC frames fail their CRC, every 7.5 ms.
    let mut tick = tokio::time::interval(std::time::Duration::from_micros(7_500));
    let mut buf = [0u8; 128];
    for n in 0..200usize {
        tick.tick().await;
        let mut packet = [0x55u8; 60];
        packet[0] = 0x01;
        packet[1] = [0x08, 0x38, 0xC8, 0xF8][n % 4];
        packet[2] = 0xAD;
        if audio.send(&packet).await.is_err() {
            break;
        }
        match audio.recv(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        assert!(n < 100, "the car kept a failing mSBC link");
    }
    let line = rig.wait("call-audio-fallback 00:11:22:33:44:55 cvsd").await;
    assert!(line.contains("no good mSBC frame"), "{line}");
    link.wait_for("AT+BAC=1", STEP, |e| {
        *e == AgEvent::AvailableCodecs(vec![1])
    })
    .await
    .unwrap();

    // The phone cannot switch back to mSBC on this connection.
    link.command(AgCommand::CodecSwitch(2)).await.unwrap_err();
    // CVSD is confirmed, and the next link is CVSD.
    link.command(AgCommand::CodecSwitch(1)).await.unwrap();
    link.wait_for("AT+BCS=1", STEP, |e| *e == AgEvent::CodecSelected(1))
        .await
        .unwrap();
    drop(audio);
    let _audio = sco.connect(AirMode::Cvsd, 48).await.unwrap();
    rig.wait("call-audio-started 00:11:22:33:44:55 CVSD").await;
}
