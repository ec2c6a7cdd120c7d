# shellcheck shell=sh source-path=SCRIPTDIR
# Scenario "slc": after pairing, the phone opens the Hands-Free link; the HFP service level
# connection completes over real RFCOMM between codriverd's HF engine and the stand-in's AG.
# shellcheck source=../guest/lib.sh
. /etc/bluez-vm-lib.sh
# shellcheck source=common.sh
. /test/common.sh
boot_car
pair_phone connect
step "Hands-Free service level connection over RFCOMM"
wait_slc 20 1
grep -q "profile-connected $PHONE" /tmp/codriverd.log || fail "codriverd did not report the profile connection"
ok "$(grep -m1 'hands-free-ready' /tmp/codriverd.log | sed 's/.*hands-free-ready/hands-free-ready/')"
btmon -r /tmp/hci.btsnoop 2>/dev/null | grep -c 'RFCOMM: Unnumbered Info with Header Check' | sed 's/^/RFCOMM UIH frames in trace: /'
pass
