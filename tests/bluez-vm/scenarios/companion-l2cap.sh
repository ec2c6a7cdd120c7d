# shellcheck shell=sh source-path=SCRIPTDIR
# Scenario "companion-l2cap": after pairing over BR/EDR (Secure Connections, so both sides also hold an LE key),
# the stand-in plays an iOS messaging app: it connects over LE to the car's public address (codriverd advertises
# the companion service while a paired phone is expected), reads the PSM characteristic of the companion GATT
# service, opens an encrypted LE L2CAP channel on that PSM, and sends one voice message that codriverd stores
# and acknowledges.
# shellcheck source=../guest/lib.sh
. /etc/bluez-vm-lib.sh
# shellcheck source=common.sh
. /test/common.sh
boot_car
step "codriverd listens for the companion protocol over LE"
wait_log 10 /tmp/codriverd.log "companion LE L2CAP transport listening" || fail "no companion LE listener"
ok "$(grep -m1 'companion LE L2CAP transport listening' /tmp/codriverd.log | sed 's/.*companion LE/companion LE/')"
companion_exchange l2cap
step "the LE link carrying the channel was encrypted (security level medium), with the derived LE key"
btmon -r /tmp/hci.btsnoop >/tmp/btmon.txt 2>/dev/null
grep -c 'LE Start Encryption' /tmp/btmon.txt | sed 's/^/LE Start Encryption commands in trace: /'
grep -A4 'LE Connection Response\|LE Credit Based Connection Response' /tmp/btmon.txt | grep 'Result' | sort | uniq -c
grep -q 'LE Start Encryption' /tmp/btmon.txt || fail "the LE link was never encrypted"
# The car's agent saw exactly one pairing (over BR/EDR); an LE pairing would have asked it again.
[ "$(count_log /tmp/codriverd.log 'pairing-accepted')" = 1 ] || fail "codriverd's agent was asked more than once: $(grep 'pairing-' /tmp/codriverd.log)"
grep -q 'pairing-rejected' /tmp/codriverd.log && fail "codriverd rejected a pairing: $(grep pairing-rejected /tmp/codriverd.log)"
ok "encrypted LE link, no second pairing"
pass
