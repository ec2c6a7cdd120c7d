# shellcheck shell=sh source-path=SCRIPTDIR
# Scenario "call-audio": two incoming calls with audio over real kernel SCO sockets, one in
# CVSD and one in mSBC (transparent air mode). For each call the stand-in (the phone's Audio
# Gateway) selects the codec (+BCS), rings; codriverd is told to answer through its D-Bus API
# (codriverctl call answer); the phone opens the SCO link to the car and sends a 1 kHz tone
# while codriverd's microphone (the "wav" input backend) plays a 440 Hz tone. The stand-in
# checks the 440 Hz tone it hears (Goertzel over 100 ms blocks), and the car's speaker output
# (the "wav" output backend, one file per call) is checked for the 1 kHz tone.
# shellcheck source=../guest/lib.sh
. /etc/bluez-vm-lib.sh
# shellcheck source=common.sh
. /test/common.sh
SECONDS_PER_CALL=6
# The tone must be there, in one piece, for most of the call (the link starts and stops
# around it).
MIN_TONE_MS=$((SECONDS_PER_CALL * 1000 * 6 / 10))

# codriverd's config for this scenario: WAV files for speaker and microphone, the audio thread
# under SCHED_FIFO (root in the guest, so it is granted), and no echo
# canceller or noise suppressor (a stationary tone is "noise" to the suppressor; the transport
# is what is tested here).
CONFIG=/tmp/codriverd-call-audio.toml
sed -e 's|^output_backend = .*|output_backend = "wav"\nwav_directory = "/tmp/car-audio"|' \
    -e 's|^input_backend = .*|input_backend = "wav"\ninput_wav = "/tmp/car-mic-440.wav"\nrealtime_priority = 10|' \
    /test/codriverd.toml > "$CONFIG"
printf '\n[hfp]\necho_cancellation = false\n' >> "$CONFIG"
/test/phone-standin write-tone /tmp/car-mic-440.wav 440 8000 8 || fail "cannot write the microphone's tone"

# SCO evidence for a failure: the SCO handshake and data packets in the btsnoop trace (run.sh
# prints the bluetoothd log and the trace without SCO data).
sco_evidence() {
  btmon -S -r /tmp/hci.btsnoop > /tmp/btmon-sco.txt 2>/dev/null
  log "SCO data packets in btsnoop: $(grep -c -E '^(<|>) (SCO Data|BR-E?SCO:)' /tmp/btmon-sco.txt)"
  grep -E -A9 'Synchronous Connect|Setup Synchronous|Accept Synchronous' /tmp/btmon-sco.txt \
    | grep -E 'Synchronous|Status|Handle|Address|Link type|Air mode|Packet len|Voice' | head -40
  grep -E 'call-audio|call audio|SCO' /tmp/codriverd.log | tail -20
  dmesg | grep -i -E 'sco|unknown conn' | tail -10
}
call_fail() {
  sco_evidence
  mkdir -p /share/audio && cp /tmp/car-audio/*.wav /tmp/phone-heard-*.wav /tmp/car-mic-440.wav "$CONFIG" /share/audio/ 2>/dev/null
  log "audio files (the car's speaker, what the phone heard) copied to the run's share/audio/"
  fail "$*"
}

boot_car
grep -q "call audio: real-time thread" /tmp/codriverd.log || fail "codriverd's audio thread did not get SCHED_FIFO"
pair_phone connect --call-audio cvsd,msbc --call-seconds "$SECONDS_PER_CALL"
step "Hands-Free service level connection over RFCOMM"
wait_slc 20 1

n=0
for codec in CVSD mSBC; do
  n=$((n + 1))
  step "call $n: $codec — the phone selects the codec and rings"
  wait_log 20 /tmp/standin.log "STANDIN ringing codec=$codec" || call_fail "the phone did not ring ($codec)"
  wait_log 10 /tmp/codriverd.log "ring" "$n" || call_fail "codriverd did not report the ringing call"
  T0=$(now_ms)
  step "codriverd answers through its D-Bus API (codriverctl call answer)"
  wait_for 10 "/test/codriverctl call answer" || call_fail "codriverctl call answer failed: $(/test/codriverctl call answer 2>&1)"
  wait_log 10 /tmp/standin.log "STANDIN answered codec=$codec" || call_fail "the phone did not see the answer ($codec)"
  wait_log 20 /tmp/standin.log "STANDIN sco-connected codec=$codec\|STANDIN call-audio-result codec=$codec" \
    || call_fail "no SCO link ($codec)"
  wait_log 10 /tmp/codriverd.log "call-audio-started $PHONE $codec" "1" || call_fail "codriverd did not start call audio in $codec"
  echo "MEASURE call_audio_${codec}_answer_to_sco_ms=$(( $(now_ms) - T0 ))"
  wait_log $((SECONDS_PER_CALL + 20)) /tmp/standin.log "STANDIN call-audio-result codec=$codec" \
    || call_fail "the $codec call did not finish"
  grep "STANDIN sco-connected codec=$codec\|STANDIN heard-car codec=$codec\|STANDIN call-audio-error codec=$codec" /tmp/standin.log
  grep -q "STANDIN call-audio-result codec=$codec ok=true" /tmp/standin.log \
    || call_fail "the phone did not hear the car's 440 Hz tone intact ($codec): $(grep "call-audio-result codec=$codec" /tmp/standin.log)"
  ok "$codec: the phone heard the car's 440 Hz tone"
  wait_log 10 /tmp/codriverd.log "call-audio-ended" "$n" || call_fail "codriverd did not end call audio ($codec)"
  grep "call-audio-ended" /tmp/codriverd.log | tail -n 1
  grep "call-audio-ended" /tmp/codriverd.log | tail -n 1 | grep -q "concealed=0" \
    || call_fail "codriverd concealed frames of the phone's $codec audio"
  grep "call audio: SCO link down" /tmp/codriverd.log | tail -n 1 | sed 's/.*\(underruns=[0-9]*\).*\(cushion_ms=[0-9]*\).*/MEASURE call_audio_'"$codec"'_car_\1 call_audio_'"$codec"'_car_\2/'
done

step "the car's speaker: each call's WAV holds the phone's 1 kHz tone"
ls -l /tmp/car-audio
set -- /tmp/car-audio/*-call-call_audio.wav
[ "$#" = 2 ] && [ -f "$1" ] || call_fail "expected two call recordings in /tmp/car-audio, found $#"
rate1=8000; rate2=16000
for f in "$@"; do
  /test/phone-standin tone-check "$f" 1000 "$MIN_TONE_MS" || call_fail "the car did not hear the phone's tone intact in $f"
done
/test/phone-standin tone-check "$1" 1000 0 | grep -q "rate=$rate1" || call_fail "the first (CVSD) call was not played at 8 kHz"
/test/phone-standin tone-check "$2" 1000 0 | grep -q "rate=$rate2" || call_fail "the second (mSBC) call was not played at 16 kHz"
ok "the car heard the phone's 1 kHz tone in CVSD (8 kHz) and mSBC (16 kHz)"
wait_for 10 "grep -q 'STANDIN exit' /tmp/standin.log" || call_fail "the stand-in did not finish"
pass
