# shellcheck shell=sh
# Shared steps of the scenarios (sourced after /etc/bluez-vm-lib.sh). The car is hci0 (codriverd),
# the phone hci1 (phone-standin); one bluetoothd serves both.
CAR=$(bdaddr hci0)
PHONE=$(bdaddr hci1)
CONFIG=/test/codriverd.toml

# count_log FILE PATTERN: how many lines of FILE match PATTERN.
count_log() { grep -c -- "$2" "$1" 2>/dev/null || true; }
# wait_log SECONDS FILE PATTERN [MIN_COUNT]: waits until at least MIN_COUNT (default 1) lines
# of FILE match PATTERN.
wait_log() { wait_for "$1" "[ \$(count_log '$2' '$3') -ge ${4:-1} ]"; }

check_addresses() {
  log "car=hci0 $CAR phone=hci1 $PHONE"
  grep -q "\"$PHONE\"" "$CONFIG" || fail "the phone's address $PHONE is not in $CONFIG's allowlist (btvirt addresses changed?)"
}

start_codriverd() {
  /test/codriverd --config "$CONFIG" >>/tmp/codriverd.log 2>&1 &
  echo $! >/run/codriverd.pid
}

# start_standin ARGS...: the phone stand-in, its output appended to /tmp/standin.log.
start_standin() {
  /test/phone-standin --car "$CAR" --adapter hci1 "$@" >>/tmp/standin.log 2>&1 &
  echo $! >/run/standin.pid
}
stop_standin() {
  kill "$(cat /run/standin.pid)" 2>/dev/null
  wait_for 5 "! kill -0 $(cat /run/standin.pid)" || kill -9 "$(cat /run/standin.pid)" 2>/dev/null
  rm -f /run/standin.pid
}

# Boot codriverd with no phone paired: it opens the pairing window on its own.
boot_car() {
  check_addresses
  step "codriverd starts; no phone paired yet, so the pairing window opens"
  start_codriverd
  wait_log 20 /tmp/codriverd.log "pairing-window-opened" || fail "codriverd did not open the pairing window"
  [ "$(bz_get /org/bluez/hci0 org.bluez.Adapter1 Discoverable)" = true ] || fail "hci0 not discoverable inside the window"
  ok "pairing window open, hci0 discoverable"
}

# pair_phone only|connect [STANDIN_ARGS...]: the phone pairs (and with "connect" also opens Hands-Free; more
# arguments go to the stand-in); codriverd accepts under the allowlist policy without any button. The checks
# wait for each line on its own, so codriverd's phone-paired may come before or after anything else.
pair_phone() {
  _mode=$1; shift
  step "the phone pairs with the car by address ($_mode${1:+ $*})"
  if [ "$_mode" = connect ]; then start_standin --pair --connect "$@"; else start_standin --pair "$@"; fi
  wait_log 40 /tmp/standin.log "STANDIN paired\|STANDIN error"
  grep -q "STANDIN paired" /tmp/standin.log || { cat /tmp/standin.log; fail "the phone did not pair"; }
  wait_log 10 /tmp/codriverd.log "phone-paired" || fail "codriverd did not report phone-paired"
  grep -q "pairing-accepted.*$PHONE" /tmp/codriverd.log || fail "codriverd did not accept the pairing through its policy"
  ok "paired: $(grep -m1 'STANDIN paired' /tmp/standin.log)"
}

# Waits for the Hands-Free service level connection on both sides; N = how many codriverd
# must have reported by now (1 for the first).
wait_slc() {
  wait_log "$1" /tmp/codriverd.log "hands-free-ready" "$2" || fail "codriverd: no hands-free-ready (#$2)"
  wait_log 10 /tmp/standin.log "STANDIN slc-established" "$2" || fail "stand-in: no slc-established (#$2)"
}

# companion_exchange rfcomm|l2cap: pairing, then the stand-in's messaging app finds the car's companion transport,
# sends one voice message (vm-<transport>-1) and waits for the delivery ack; codriverd must have stored it.
companion_exchange() {
  T0=$(now_ms)
  pair_phone only --companion "$1"
  step "companion protocol over $1: one voice message, stored and acknowledged"
  wait_log 90 /tmp/standin.log "STANDIN companion-delivered\|STANDIN error" || fail "the stand-in did not finish its companion exchange"
  grep -q "STANDIN companion-delivered transport=$1" /tmp/standin.log || fail "no delivery ack over $1: $(grep 'STANDIN error' /tmp/standin.log)"
  wait_log 10 /tmp/codriverd.log "message-received vm-$1-1 voice Alice" || fail "codriverd did not log the message as received"
  grep -q "profile-connected $PHONE companion" /tmp/codriverd.log || fail "codriverd did not report the companion connection from $PHONE"
  # The spool keeps one directory per message (new/ until played, cur/ after) with a meta file naming its id.
  # Polled: the player may move it from new/ to cur/ between the glob and the read.
  wait_for 5 "grep -qs 'vm-$1-1' /tmp/codriver/spool/new/*/meta /tmp/codriver/spool/cur/*/meta" \
    || { ls -lR /tmp/codriver/spool; fail "vm-$1-1 is not in the spool"; }
  grep -q "connection-refused" /tmp/codriverd.log && fail "codriverd refused a connection: $(grep connection-refused /tmp/codriverd.log)"
  ok "$(grep -m1 'STANDIN companion-delivered' /tmp/standin.log)"
  grep 'STANDIN companion-' /tmp/standin.log
  _line=$(grep -m1 'STANDIN companion-delivered' /tmp/standin.log)
  echo "MEASURE companion_${1}_pair_to_ack_ms=$(( $(now_ms) - T0 ))"
  echo "MEASURE companion_${1}_voice_bytes=$(echo "$_line" | sed -n 's/.* bytes=\([0-9]*\).*/\1/p')"
  echo "MEASURE companion_${1}_offer_to_ack_ms=$(echo "$_line" | sed -n 's/.* ms=\([0-9]*\).*/\1/p')"
}
