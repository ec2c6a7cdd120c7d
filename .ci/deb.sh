#!/usr/bin/env bash
# Build the `codriver` .deb with cargo-deb and check what is in it.
#
#   .ci/deb.sh                          # x86_64 (host) and, if available, aarch64
#   DEB_TARGETS=host .ci/deb.sh         # only the host
#   DEB_TARGETS="aarch64-unknown-linux-gnu" .ci/deb.sh
#   CI_LOCKED=0 .ci/deb.sh              # don't pass --locked
#   CARGO_TARGET_DIR is honoured; the .debs land in ${CARGO_TARGET_DIR:-target}/debian/.
#
# For each target: cargo build --release of both binaries (codriverd from codriver-daemon,
# codriverctl from codriver-cli), then `cargo deb -p codriver-daemon --no-build`, then checks
# the file list, conffiles, Depends and maintainer scripts. The aarch64 cross environment comes
# from `.ci/cross.sh --env` (installs the cross toolchain and arm64 -dev packages if missing;
# skipped with a warning if the target's std cannot be installed).
set -euo pipefail
cd "$(dirname "$0")/.."

targets=${DEB_TARGETS:-host aarch64-unknown-linux-gnu}
locked=(--locked)
[ "${CI_LOCKED:-1}" = 0 ] && locked=()
say() { printf '\n==> %s\n' "$*" >&2; }
fail=0
bad() { printf 'FAIL: %s\n' "$*" >&2; fail=1; }

if ! command -v cargo-deb >/dev/null; then
    say "installing cargo-deb"
    cargo install cargo-deb --locked
fi
cargo deb --version >&2

required=(
    ./usr/bin/codriverd
    ./usr/bin/codriverctl
    ./etc/codriver/codriver.toml
    ./usr/lib/systemd/system/codriverd.service
    ./usr/share/dbus-1/system.d/org.codriver.Codriver1.conf
    ./usr/lib/sysusers.d/codriver.conf
    ./usr/lib/tmpfiles.d/codriver.conf
    ./usr/lib/udev/rules.d/60-codriver-gpio.rules
    ./usr/share/doc/codriver/README.md
    ./usr/share/doc/codriver/install-pi.md
    ./usr/share/doc/codriver/copyright
)

check_deb() { # check_deb DEB DEBIAN-ARCH ELF-MACHINE
    local deb=$1 arch=$2 machine=$3 x
    x=$(mktemp -d)
    say "contents of $deb"
    dpkg-deb -I "$deb"
    dpkg-deb -c "$deb"
    dpkg-deb -c "$deb" | awk '{print $6}' >"$x/list"
    for f in "${required[@]}"; do
        grep -qx -- "$f" "$x/list" || bad "$deb lacks $f"
    done
    dpkg-deb -e "$deb" "$x/DEBIAN"
    grep -qx /etc/codriver/codriver.toml "$x/DEBIAN/conffiles" || bad "codriver.toml is not a conffile"
    [ "$(dpkg-deb -f "$deb" Package)" = codriver ] || bad "package name is not codriver"
    [ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || bad "Architecture is not $arch"
    local depends
    depends=$(dpkg-deb -f "$deb" Depends)
    has_dep() { [[ ",$depends" == *[,\ ]$1[\ ,]* || ",$depends" == *[,\ ]$1 ]]; }
    # libc6 shows that $auto (dpkg-shlibdeps) ran; bluez and dbus are declared.
    for d in libc6 bluez dbus; do
        has_dep "$d" || bad "Depends lacks $d: $depends"
    done
    # Libraries come from the binaries' NEEDED entries, so they appear once the code links them
    # (libdbus-1 through bluer, libasound through cpal, libsbc and libspeexdsp through
    # codriver-callaudio). Reported, not enforced.
    for d in libdbus-1-3 libasound2 libsbc1 libspeexdsp1; do
        has_dep "$d" || echo "note: Depends has no $d (the binaries do not link it)" >&2
    done
    [[ "$(dpkg-deb -f "$deb" Recommends)" == *espeak-ng* ]] || bad "Recommends lacks espeak-ng"
    grep -q 'systemd-sysusers' "$x/DEBIAN/postinst" || bad "postinst does not run systemd-sysusers"
    grep -q 'systemd-tmpfiles --create' "$x/DEBIAN/postinst" || bad "postinst does not run systemd-tmpfiles"
    grep -q 'deb-systemd-helper' "$x/DEBIAN/postinst" || bad "postinst does not enable codriverd.service"
    grep -q '#DEBHELPER#' "$x/DEBIAN/postinst" "$x/DEBIAN/postrm" && bad "unreplaced DEBHELPER token"
    for s in postinst postrm prerm; do
        [ -f "$x/DEBIAN/$s" ] && { sh -n "$x/DEBIAN/$s" || bad "$s: shell syntax error"; }
    done
    dpkg-deb -x "$deb" "$x/root"
    for b in codriverd codriverctl; do
        file -b "$x/root/usr/bin/$b" | grep -q "$machine" || bad "$b is not a $machine binary"
    done
    rm -rf "$x"
}

for t in $targets; do
    tflag=()
    if [ "$t" = host ]; then
        arch=$(dpkg --print-architecture)
        machine=$(file -b "$(command -v cargo)" | cut -d, -f2 | sed 's/^ *//')
        [ "$arch" = amd64 ] && machine=x86-64
    else
        # Cross environment for the target (only aarch64 is scripted).
        [ "$t" = aarch64-unknown-linux-gnu ] || { bad "no cross set-up for $t"; continue; }
        env_out=$(.ci/cross.sh --env)
        eval "$env_out"
        if [ -n "${CROSS_SKIPPED:-}" ]; then
            echo "WARNING: aarch64 .deb SKIPPED (see the warning above)" >&2
            continue
        fi
        tflag=(--target "$t")
        arch=arm64
        machine="ARM aarch64"
    fi
    say "cargo build --release ($t)"
    cargo build "${locked[@]}" --release -p codriver-daemon -p codriver-cli "${tflag[@]}"
    say "cargo deb ($t)"
    # cargo-deb strips cross builds with /usr/bin/<debian-triple>-strip (binutils-aarch64-linux-gnu,
    # which gcc-aarch64-linux-gnu pulls in).
    deb=$(cargo deb -p codriver-daemon --no-build "${tflag[@]}" | tail -n1)
    [ -f "$deb" ] || { bad "cargo deb produced no file ($deb)"; continue; }
    check_deb "$deb" "$arch" "$machine"
    echo "built: $deb" >&2
done

if [ "$fail" -ne 0 ]; then
    echo "deb: FAILED" >&2
    exit 1
fi
echo "deb: ok" >&2
