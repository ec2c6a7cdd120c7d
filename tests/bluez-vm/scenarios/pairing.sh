# shellcheck shell=sh source-path=SCRIPTDIR
# Scenario "pairing": codriverd (hci0) opens its pairing window at first boot; the phone stand-in
# (hci1) pairs by address; codriverd accepts under the allowlist policy without a button,
# trusts the phone, closes the window; the link key is stored on both sides.
# shellcheck source=../guest/lib.sh
. /etc/bluez-vm-lib.sh
# shellcheck source=common.sh
. /test/common.sh
boot_car
T0=$(now_ms)
pair_phone only
echo "MEASURE pairing_ms=$(( $(now_ms) - T0 ))"
step "after pairing: trusted, window closed, key stored"
D=/org/bluez/hci0/dev_$(echo "$PHONE" | tr : _)
wait_for 5 "[ \"\$(bz_get $D org.bluez.Device1 Trusted)\" = true ]" || fail "codriverd did not trust the phone"
wait_log 5 /tmp/codriverd.log "pairing-window-closed paired" || fail "the window did not close on success"
[ "$(bz_get /org/bluez/hci0 org.bluez.Adapter1 Discoverable)" = false ] || fail "hci0 still discoverable"
grep -q '^\[LinkKey\]' "/var/lib/bluetooth/$CAR/$PHONE/info" || fail "no link key stored for the phone"
grep -q '^\[LinkKey\]' "/var/lib/bluetooth/$PHONE/$CAR/info" || fail "no link key stored for the car"
ok "trusted=$(bz_get "$D" org.bluez.Device1 Trusted), window closed, link keys stored"
grep -q 'pairing-rejected' /tmp/codriverd.log && fail "codriverd rejected a request: $(grep pairing-rejected /tmp/codriverd.log)"
pass
