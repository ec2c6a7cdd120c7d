# shellcheck shell=sh source-path=SCRIPTDIR
# Scenario "reconnect": the phone goes away (its adapter powers off: the ACL link drops) and comes
# back; codriverd reconnects Hands-Free by itself with the stored link key (no new pairing).
# Measures the time from the phone reappearing (adapter powered on) to codriverd's
# hands-free-ready.
# shellcheck source=../guest/lib.sh
. /etc/bluez-vm-lib.sh
# shellcheck source=common.sh
. /test/common.sh
boot_car
pair_phone connect
wait_slc 20 1
step "the phone disappears (hci1 powered off)"
bz_set /org/bluez/hci1 org.bluez.Adapter1 Powered boolean:false >/dev/null || fail "power off hci1"
wait_log 15 /tmp/codriverd.log "phone-disconnected $PHONE" || fail "codriverd did not notice the phone leaving"
wait_log 5 /tmp/standin.log "STANDIN hfp-closed" || fail "the stand-in's link did not close"
ok "codriverd: phone-disconnected"
sleep 3   # a few reconnect attempts fail while the phone is away
step "the phone reappears (hci1 powered on, connectable)"
T0=$(now_ms)
bz_set /org/bluez/hci1 org.bluez.Adapter1 Powered boolean:true >/dev/null || fail "power on hci1"
bz_set /org/bluez/hci1 org.bluez.Adapter1 Discoverable boolean:true >/dev/null
wait_log 30 /tmp/codriverd.log "hands-free-ready" 2 || fail "codriverd did not reconnect Hands-Free"
T1=$(now_ms)
wait_log 10 /tmp/standin.log "STANDIN slc-established" 2 || fail "stand-in: no second SLC"
echo "MEASURE reconnect_to_slc_ms=$((T1 - T0))"
[ "$(count_log /tmp/standin.log 'STANDIN agent')" -le 1 ] || fail "the phone was asked to pair again"
[ "$(count_log /tmp/codriverd.log 'pairing-requested\|pairing-accepted')" -le 1 ] || fail "codriverd paired again"
KEYS=$(btmon -r /tmp/hci.btsnoop 2>/dev/null | grep -c 'Link Key Request Reply')
log "Link Key Request Reply (stored key used): $KEYS"
[ "$KEYS" -ge 1 ] || fail "the reconnect did not authenticate with the stored link key"
pass
