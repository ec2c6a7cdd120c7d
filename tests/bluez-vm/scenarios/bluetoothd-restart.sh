# shellcheck shell=sh source-path=SCRIPTDIR
# Scenario "bluetoothd-restart": with the phone connected, bluetoothd is killed and started
# again. codriverd must notice, register its agent and Hands-Free profile again and reconnect the
# phone without being restarted itself. (The phone stand-in shares the bluetoothd, so it is
# restarted alongside, as the phone's own Bluetooth stack would recover.) Then the companion
# transports registered with the new bluetoothd (GATT service, advertisement, LE L2CAP listener)
# carry a voice message over LE.
# shellcheck source=../guest/lib.sh
. /etc/bluez-vm-lib.sh
# shellcheck source=common.sh
. /test/common.sh
boot_car
pair_phone connect
wait_slc 20 1
PID=$(cat /run/codriverd.pid)
step "bluetoothd is killed mid-session"
stop_standin
kill -9 "$(cat /run/bluetoothd.pid)"
wait_for 5 "! has_bluez" || fail "bluetoothd still on the bus"
sleep 1
step "bluetoothd starts again"
T0=$(now_ms)
start_bluetoothd || fail "bluetoothd did not come back"
log "bluetoothd back after $(( $(now_ms) - T0 )) ms"
start_standin
wait_log 10 /tmp/standin.log "STANDIN ready" 2 || fail "the stand-in did not come back"
wait_log 40 /tmp/codriverd.log "hands-free-ready" 2 || fail "codriverd did not recover: no second hands-free-ready within 40 s after bluetoothd restarted"
T1=$(now_ms)
kill -0 "$PID" 2>/dev/null || fail "codriverd exited"
echo "MEASURE bluetoothd_restart_recovery_ms=$((T1 - T0))"
step "the companion transports are back too: a voice message over LE L2CAP (GATT and advertising re-registered)"
stop_standin
start_standin --companion l2cap
wait_log 60 /tmp/standin.log "STANDIN companion-delivered\|STANDIN error" || fail "the stand-in did not finish its companion exchange"
grep -q "STANDIN companion-delivered transport=l2cap" /tmp/standin.log || fail "no delivery ack over LE after the restart: $(grep 'STANDIN error' /tmp/standin.log)"
wait_log 10 /tmp/codriverd.log "message-received vm-l2cap-1" || fail "codriverd did not store the message"
ok "$(grep -m1 'STANDIN companion-delivered' /tmp/standin.log)"
pass
