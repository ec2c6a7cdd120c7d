#!/bin/bash
# The real-Bluetooth-stack test tier: codriverd against bluetoothd 5.66 and the kernel's
# Bluetooth stack (Debian's 6.12), in a qemu VM with two linked virtual controllers from btvirt
# (hci0 "car" for codriverd, hci1 "phone" for phone-standin). One VM per scenario.
#
#   tests/bluez-vm/run.sh [-t SECONDS] [-x] [SCENARIO...]
#
#   SCENARIO   names from tests/bluez-vm/scenarios/ (pairing slc reconnect bluetoothd-restart
#              companion-rfcomm companion-l2cap call-audio);
#              default: all of them, in that order
#   -t SECONDS time limit of one scenario inside the VM (default 90)
#   -x         stop at the first failing scenario (default: run them all)
#   env BIN_DIR=DIR         take codriverd and phone-standin from DIR instead of building
#   env REBUILD_IMAGE=1     rebuild the guest image even when the cached one is current
#   env BTVIRT_SUITE=S      take btvirt from Debian suite S (default forky, 5.87, which carries
#                           SCO); empty keeps bookworm's 5.66
#
# Builds what it needs, cached: host packages (qemu-system-x86, cpio; with sudo when not root),
# the guest image from Debian packages (tests/bluez-vm/cache/, rebuilt only when
# lib/build-image.sh or guest/ change, or with REBUILD_IMAGE=1), and codriverd + phone-standin
# (cargo, release profile, CARGO_TARGET_DIR honoured). Exits 0 when every scenario passed; on a
# failure prints that VM's bluetoothd log, codriverd and stand-in logs and the decoded btsnoop
# trace (btmon -r). Everything of a run stays in tests/bluez-vm/out/<timestamp>/.
set -euo pipefail
VM=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$VM/../.." && pwd)
CACHE=${CACHE:-$VM/cache}
ALL_SCENARIOS=(pairing slc reconnect bluetoothd-restart companion-rfcomm companion-l2cap call-audio)
TIMEOUT=90 STOP_ON_FAIL=
while getopts "t:x" o; do
  case $o in
    t) TIMEOUT=$OPTARG ;;
    x) STOP_ON_FAIL=1 ;;
    *) sed -n '2,23p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=("${ALL_SCENARIOS[@]}")
for s in "${SCENARIOS[@]}"; do
  [ -f "$VM/scenarios/$s.sh" ] || { echo "bluez-vm: no scenario $s (have: ${ALL_SCENARIOS[*]})" >&2; exit 2; }
done
started=$(date +%s)
say() { printf '[bluez-vm %4ss] %s\n' "$(($(date +%s) - started))" "$*" >&2; }
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"

# ---- host packages: only what is missing, apt-get update first --------------------------------
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v cpio >/dev/null || missing+=(cpio)
command -v strip >/dev/null || missing+=(binutils)
command -v sha256sum >/dev/null || missing+=(coreutils)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
"$ROOT/scripts/setup.sh"   # the build's own -dev packages

# ---- guest image (cached) ----------------------------------------------------------------------
key=$( (cat "$VM/lib/build-image.sh" "$VM/guest/init" "$VM/guest/lib.sh" "$VM/guest/main.conf"; echo "btvirt=${BTVIRT_SUITE-forky}") | sha256sum | cut -c1-16)
if [ -n "${REBUILD_IMAGE:-}" ] || [ ! -f "$CACHE/base.cpio" ] || [ ! -f "$CACHE/vmlinuz" ] \
   || [ "$(cat "$CACHE/image.key" 2>/dev/null)" != "$key" ]; then
  if ! apt-cache depends linux-image-6.12-amd64 2>/dev/null | grep -q 'Depends: linux-image-'; then
    say "apt-get update (package lists for the guest image)"
    $sudo apt-get update -qq
  fi
  say "building the guest image"
  CACHE=$CACHE "$VM/lib/build-image.sh"
  cpio -t --quiet < "$CACHE/base.cpio" > "$CACHE/base.files"
  echo "$key" > "$CACHE/image.key"
else
  say "guest image cached ($(cat "$CACHE/kver"))"
fi

# ---- codriverd and the phone stand-in ----------------------------------------------------------
# The release profile, as shipped on the Pi, with the features of scripts/test.sh: call audio is
# real time, and a debug build in a one-vCPU TCG guest starves the link (the call-audio
# scenario measured 60 ms stalls and 23 underruns in 6 s of mSBC with debug, 2 with release).
# The copies in the VM are stripped.
if [ -n "${BIN_DIR:-}" ]; then
  say "using codriverd, codriverctl and phone-standin from $BIN_DIR"
else
  say "cargo build codriverd, codriverctl, phone-standin"
  (cd "$ROOT" && cargo build -q --release --workspace --all-features --locked --bin codriverd --bin codriverctl --bin phone-standin)
  BIN_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/release
fi
OUT=$VM/out/$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
P=$(mktemp -d)
trap 'rm -rf "$P"' EXIT
R=$P/payload   # becomes / in the guest, over the image
mkdir -p "$R/test/dbus"
for b in codriverd codriverctl phone-standin; do strip --strip-debug -o "$R/test/$b" "$BIN_DIR/$b"; done
cp "$VM/codriverd.toml" "$VM/scenarios/common.sh" "$R/test/"
cp "$ROOT/systemd/org.codriver.Codriver1.conf" "$R/test/dbus/"
# Shared libraries the binaries need that the guest image lacks (host and guest are both
# Debian 12, so the host's copies fit the guest's libc).
for b in codriverd codriverctl phone-standin; do
  for so in $(objdump -p "$R/test/$b" | awk '/NEEDED/{print $2}'); do
    grep -q "/$so\$" "$CACHE/base.files" && continue
    [ -e "$R/usr/lib/x86_64-linux-gnu/$so" ] && continue   # another binary needed it too
    # (awk reads all of ldconfig's output: an early exit would SIGPIPE it under pipefail.)
    path=$(ldconfig -p | awk -v so="$so" '$1 == so && /x86-64/ && !p {p = $NF} END {print p}')
    [ -n "$path" ] || { echo "bluez-vm: $b needs $so, in neither the guest image nor the host" >&2; exit 1; }
    say "adding $so (host $path) to the payload"
    mkdir -p "$R/usr/lib/x86_64-linux-gnu"; cp -L "$path" "$R/usr/lib/x86_64-linux-gnu/"
  done
done
(cd "$R" && find . -mindepth 1 -print0 | cpio --null -o -H newc --quiet) > "$P/payload.cpio"

# ---- one VM per scenario -----------------------------------------------------------------------
# qemu TCG (KVM does not work on these machines), 1 vCPU (2 oopsed once in btlab's trials).
run_vm() {  # run_vm SCENARIO OUTDIR -> the scenario's exit code
  local s=$1 out=$2 initrd
  mkdir -p "$out/share"
  initrd=$P/initrd-$s.cpio
  mkdir -p "$P/s-$s/test"; cp "$VM/scenarios/$s.sh" "$P/s-$s/test/run"
  (cd "$P/s-$s" && find test/run -print0 | cpio --null -o -H newc --quiet) > "$P/s-$s.cpio"
  cat "$CACHE/base.cpio" "$P/payload.cpio" "$P/s-$s.cpio" > "$initrd"
  set +e
  timeout -k 5 $((TIMEOUT + 60)) qemu-system-x86_64 -accel tcg,thread=multi,tb-size=128 -cpu max \
    -machine pc -smp 1 -m 512 -nographic -no-reboot -nodefaults -serial stdio -net none \
    -device virtio-rng-pci \
    -virtfs local,path="$out/share",mount_tag=vmshare,security_model=none,id=vmshare \
    -kernel "$CACHE/vmlinuz" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 quiet loglevel=4 rootfstype=ramfs bluezvm.timeout=$TIMEOUT" \
    </dev/null >"$out/console.log" 2>&1
  local qrc=$?
  set -e
  rm -f "$initrd"
  [ "$qrc" = 124 ] || [ "$qrc" = 137 ] && { echo "(qemu killed after $((TIMEOUT + 60))s)" >>"$out/console.log"; return 124; }
  local rc
  rc=$(sed -n 's/.*BLUEZVM-RESULT rc=\([0-9]*\).*/\1/p' "$out/console.log" | tail -1)
  return "${rc:-3}"
}

show_failure() {  # show_failure OUTDIR
  local out=$1 f
  echo "----- console (scenario output) -----"; cat "$out/console.log"
  for f in codriverd.log standin.log bluetoothd.log; do
    [ -f "$out/share/$f" ] && { echo "----- $f -----"; cat "$out/share/$f"; }
  done
  if [ -f "$out/share/btmon.txt" ]; then
    echo "----- btsnoop trace (btmon -r; full file: $out/share/btmon.txt) -----"
    head -n 4000 "$out/share/btmon.txt"
  fi
}

failed=()
for s in "${SCENARIOS[@]}"; do
  t0=$(date +%s%N)
  rc=0; run_vm "$s" "$OUT/$s" || rc=$?
  if [ "$rc" != 0 ] && grep -q 'BLUEZVM-INFRA' "$OUT/$s/console.log"; then
    # The emulator (btvirt) died under the scenario: retry once, keeping the first attempt.
    say "$s: $(grep -a -m1 'BLUEZVM-INFRA' "$OUT/$s/console.log" | tr -d '\r'); retrying once"
    mv "$OUT/$s" "$OUT/$s.infra-failure"
    rc=0; run_vm "$s" "$OUT/$s" || rc=$?
  fi
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  grep -h '^MEASURE ' "$OUT/$s/console.log" | tr -d '\r' | sed "s/^/[bluez-vm] $s: /" >&2 || true
  if [ "$rc" = 0 ]; then
    say "PASS $s ($((ms / 1000)).$((ms % 1000 / 100))s)"
  else
    say "FAIL $s rc=$rc ($((ms / 1000)).$((ms % 1000 / 100))s) output: $OUT/$s"
    show_failure "$OUT/$s"
    failed+=("$s")
    [ -n "$STOP_ON_FAIL" ] && break
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  say "FAILED: ${failed[*]} (of ${SCENARIOS[*]})"
  exit 1
fi
say "all passed: ${SCENARIOS[*]}"
