#!/bin/bash
# Builds the guest image of the BlueZ VM tier from Debian bookworm packages, without installing
# anything on the host: `apt-get --download-only` with a private, empty dpkg status (so the
# dependency closure is computed as for an empty system) into $CACHE/debs, `dpkg-deb -x` of
# each package, the Bluetooth/9p/virtio kernel modules of Debian's 6.12 kernel with depmod data,
# and our guest/ files, packed into one uncompressed newc cpio.
#
#   out: $CACHE/vmlinuz    Debian's kernel (linux-image-6.12-amd64; 6.1's ECDH self-test fails
#                          under TCG, which breaks LE pairing)
#        $CACHE/base.cpio  busybox + bluez 5.66 + bluez-test-tools (btmon) + dbus +
#                          libasound2 (codriverd links it) + kernel modules + guest/, and
#                          btvirt from $BTVIRT_SUITE (default forky, 5.87: it carries SCO)
#
# Needs apt-get (with package lists: run apt-get update first), dpkg-deb and cpio on the host.
# Called by run.sh when the image is missing or its inputs changed.
set -euo pipefail
VM=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${CACHE:-$VM/cache}
PKGS="bluez bluez-test-tools dbus-daemon dbus-bin busybox-static kmod libasound2"
# Parts of the closure the guest does not need (pulled in by maintainer-script dependencies).
SKIP_RE='^(perl|perl-base|perl-modules-.*|libperl.*|lib.*-perl|usrmerge|dpkg|debconf|adduser|passwd|libsemanage.*|libpam.*|udev|tar|sysvinit-utils|libgdbm.*|libdb5.3|init-system-helpers|lsb-base|alsa-ucm-conf|alsa-topology-conf)$'
# Kernel modules (their dependencies come along): bluetooth pulls ecdh/ecc/crc16/rfkill.
MODS="bluetooth hci_vhci rfcomm bnep 9p 9pnet_virtio virtio_pci virtio-rng af_alg algif_hash algif_skcipher cmac ecb"
KMETA=${KMETA:-linux-image-6.12-amd64}

t0=$(date +%s)
mkdir -p "$CACHE/debs/partial" "$CACHE/apt"
: > "$CACHE/apt/status"
KPKG=$(apt-cache depends "$KMETA" | awk '/Depends: linux-image-/{print $2; exit}')
[ -n "$KPKG" ] || { echo "build-image: cannot resolve $KMETA (apt-get update?)" >&2; exit 1; }
KVER=${KPKG#linux-image-}
echo "[bluez-vm] downloading the closure of: $PKGS $KPKG" >&2
# shellcheck disable=SC2086 # PKGS is a word list
apt-get -q -y --no-install-recommends --download-only \
  -o Dir::State::status="$CACHE/apt/status" -o Dir::Cache::archives="$CACHE/debs" \
  -o Debug::NoLocking=1 -o APT::Sandbox::User=root \
  install $PKGS "$KPKG" >"$CACHE/apt/download.log" 2>&1 || { cat "$CACHE/apt/download.log" >&2; exit 1; }

# The closure's exact versions: cache/debs may still hold older versions of some packages.
# shellcheck disable=SC2086 # PKGS is a word list
apt-get -q -s --no-install-recommends -o Dir::State::status="$CACHE/apt/status" \
  -o Debug::NoLocking=1 install $PKGS "$KPKG" 2>/dev/null | awk '$1 == "Inst" {print $2 " " substr($3, 2)}' \
  > "$CACHE/apt/closure"
S=$CACHE/stage K=$CACHE/kern
rm -rf "$S" "$K"; mkdir -p "$S" "$K"
for deb in "$CACHE"/debs/*.deb; do
  name=$(dpkg-deb -f "$deb" Package) version=$(dpkg-deb -f "$deb" Version)
  grep -qxF "$name $version" "$CACHE/apt/closure" || continue
  case "$name" in linux-image-*) dpkg-deb -x "$deb" "$K"; continue;; esac
  [[ "$name" =~ $SKIP_RE ]] && continue
  dpkg-deb -x "$deb" "$S"
done
cp "$K/boot/vmlinuz-$KVER" "$CACHE/vmlinuz.new"

# Kernel modules, resolved with the guest's own kmod (it runs on the host too).
export LD_LIBRARY_PATH=$S/lib/x86_64-linux-gnu:$S/usr/lib/x86_64-linux-gnu
T=$CACHE/tools; mkdir -p "$T"; ln -sf "$S/bin/kmod" "$T/depmod"; ln -sf "$S/bin/kmod" "$T/modprobe"
"$T/depmod" -b "$K" "$KVER"
MD=lib/modules/$KVER
mkdir -p "$S/$MD"
for m in $MODS; do
  "$T/modprobe" -d "$K" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | sort -u | while read -r ko; do
  rel=${ko#"$K"/}; mkdir -p "$S/$(dirname "$rel")"; cp "$ko" "$S/$rel"
done
cp "$K/$MD"/modules.{order,builtin,builtin.modinfo} "$S/$MD/"
# 6.12 ships .ko.xz: decompress once here rather than in the kernel at every boot under TCG.
find "$S/$MD" -name '*.ko.xz' -exec "$S/bin/busybox" unxz {} +
sed -i 's/\.ko\.xz/.ko/g' "$S/$MD/modules.order"
"$T/depmod" -b "$S" "$KVER"
unset LD_LIBRARY_PATH

# Prune, then the guest's own files.
rm -rf "$S"/usr/share/{doc,man,info,locale,lintian,bug,zsh,bash-completion,perl5,alsa} \
  "$S"/var/lib/dpkg "$S"/usr/lib/x86_64-linux-gnu/gconv
cd "$S"
mkdir -p proc sys dev run tmp var/lib/bluetooth var/log root etc/bluetooth test bin sbin usr/bin usr/sbin
ln -sfn /run var/run
ln -sf /bin/busybox bin/sh
# busybox applets where the packages have no real program
# (-L too: the packages' own links are absolute, so they dangle on the host)
have() { [ -e "$1" ] || [ -L "$1" ]; }
for a in $(./bin/busybox --list-full); do
  b=$(basename "$a")
  have "$a" || have "bin/$b" || have "usr/bin/$b" || have "sbin/$b" || have "usr/sbin/$b" \
    || ln -s /bin/busybox "$a"
done
cat > etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
messagebus:x:100:101::/nonexistent:/bin/false
PASSWD
cat > etc/group <<'GROUP'
root:x:0:
messagebus:x:101:
bluetooth:x:102:root
codriver:x:103:
GROUP
echo bluez-vm > etc/hostname
echo "127.0.0.1 localhost bluez-vm" > etc/hosts
install -m 755 "$VM/guest/init" init
install -m 644 "$VM/guest/lib.sh" etc/bluez-vm-lib.sh
install -m 644 "$VM/guest/main.conf" etc/bluetooth/main.conf

# btvirt from a newer suite: bookworm's 5.66 emulated controller has no SCO (MTU 0), 5.74-5.85
# never deliver the Connect Request to the accepting side; 5.86 and later carry CVSD and
# transparent eSCO both ways. Only btvirt is taken (from bluez-test-tools); it needs that
# suite's glibc, so it runs under the suite's own loader and libc kept beside it in
# /opt/btvirt, behind /usr/local/bin/btvirt, which comes first in init's PATH. bluetoothd,
# btmon and the kernel stay bookworm's. BTVIRT_SUITE= keeps 5.66.
BTVIRT_SUITE=${BTVIRT_SUITE-forky}
if [ -n "$BTVIRT_SUITE" ]; then
  A=$CACHE/apt-$BTVIRT_SUITE
  mkdir -p "$A/lists/partial" "$A/archives/partial" "$A/pkgs"
  : > "$A/status"
  echo "deb http://deb.debian.org/debian $BTVIRT_SUITE main" > "$A/sources.list"
  apt_suite=(apt-get -q -o Dir::Etc::SourceList="$A/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o Dir::State::Lists="$A/lists" -o Dir::State::status="$A/status" -o Dir::Cache="$A"
    -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  # The suite's package lists, refreshed once a day.
  if [ -z "$(find "$A/lists" -name '*_Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]; then
    "${apt_suite[@]}" update >"$A/update.log" 2>&1 || { cat "$A/update.log" >&2; exit 1; }
  fi
  rm -f "$A"/pkgs/*.deb
  (cd "$A/pkgs" && "${apt_suite[@]}" download bluez-test-tools libc6 >"$A/download.log" 2>&1) \
    || { cat "$A/download.log" >&2; exit 1; }
  U=$CACHE/btvirt-unpacked; rm -rf "$U"; mkdir -p "$U" opt/btvirt usr/local/bin
  for deb in "$A"/pkgs/*.deb; do dpkg-deb -x "$deb" "$U"; done
  install -m 755 "$U/usr/bin/btvirt" opt/btvirt/btvirt
  cp "$U/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$U/usr/lib/x86_64-linux-gnu/libc.so.6" opt/btvirt/
  cat > usr/local/bin/btvirt <<'WRAP'
#!/bin/sh
exec /opt/btvirt/ld-linux-x86-64.so.2 --library-path /opt/btvirt /opt/btvirt/btvirt "$@"
WRAP
  chmod 755 usr/local/bin/btvirt
  rm -rf "$U"
  echo "[bluez-vm] btvirt from $BTVIRT_SUITE: $(cd "$A/pkgs" && echo *.deb)" >&2
fi

find . -print0 | cpio --null -o -H newc --quiet > "$CACHE/base.cpio.new"
mv "$CACHE/base.cpio.new" "$CACHE/base.cpio"; mv "$CACHE/vmlinuz.new" "$CACHE/vmlinuz"
cd "$CACHE"; rm -rf "$K" "$S"   # the full module tree is ~400 MB
echo "$KVER" > "$CACHE/kver"
echo "[bluez-vm] image built in $(( $(date +%s) - t0 ))s: kernel $KVER, initramfs $(du -h "$CACHE/base.cpio" | cut -f1)" >&2
