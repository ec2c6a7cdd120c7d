# shellcheck shell=sh source-path=SCRIPTDIR
# Scenario "companion-rfcomm": after pairing, the stand-in plays an Android messaging app: an SDP query for the
# companion UUID gives the RFCOMM channel of codriverd's companion profile; over it, one voice message is offered,
# stored in codriverd's spool and acknowledged (DELIVERY_ACK).
# shellcheck source=../guest/lib.sh
. /etc/bluez-vm-lib.sh
# shellcheck source=common.sh
. /test/common.sh
boot_car
companion_exchange rfcomm
pass
