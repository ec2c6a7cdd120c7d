# shellcheck shell=sh
# Helpers for the guest's init and the scenarios (busy box sh). Scenarios start with
#   . /etc/bluez-vm-lib.sh
# and end with `pass`, or `fail <why>` on the first thing that goes wrong.

# Uptime in milliseconds (10 ms resolution).
now_ms() { awk '{printf "%d", $1 * 1000}' /proc/uptime; }
log() { echo "VM[$(cut -d' ' -f1 /proc/uptime)] $*"; }
step() { log "STEP $*"; }
ok() { log "OK   $*"; }
fail() { log "FAIL $*"; echo 1 >/tmp/test.rc; exit 1; }
pass() { log "PASS"; echo 0 >/tmp/test.rc; exit 0; }
# wait_for SECONDS COMMAND: polls COMMAND every 50 ms until it succeeds.
wait_for() {
  _end=$(( $(now_ms) + $1 * 1000 )); shift
  while [ "$(now_ms)" -lt "$_end" ]; do eval "$*" >/dev/null 2>&1 && return 0; sleep 0.05; done
  return 1
}
bz() { dbus-send --system --print-reply --dest=org.bluez "$@"; }
bz_set() { bz "$1" org.freedesktop.DBus.Properties.Set string:"$2" string:"$3" variant:"$4"; }
bz_get() { bz "$1" org.freedesktop.DBus.Properties.Get string:"$2" string:"$3" | sed -n '2,$p' | awk '{print $NF}'; }
bdaddr() { hciconfig "$1" | sed -n 's/.*BD Address: \([0-9A-F:]*\).*/\1/p'; }
has_bluez() { dbus-send --system --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner string:org.bluez | grep -q true; }

# Starts bluetoothd (debug log) and waits until both adapters are on the bus. Its log is
# appended to across restarts.
start_bluetoothd() {
  /usr/libexec/bluetooth/bluetoothd -n -d >>/tmp/bluetoothd.log 2>&1 &
  echo $! >/run/bluetoothd.pid
  wait_for 20 has_bluez || return 1
  for _h in hci0 hci1; do
    wait_for 20 "bz /org/bluez/$_h org.freedesktop.DBus.Properties.Get string:org.bluez.Adapter1 string:Address" || return 1
  done
}
