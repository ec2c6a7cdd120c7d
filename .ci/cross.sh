#!/usr/bin/env bash
# Cross-build the whole workspace for the Raspberry Pi on a plain Debian 12 machine (no cross,
# no docker) and run the unit tests under qemu-user: aarch64 (64-bit Raspberry Pi OS) by
# default, armv7 (32-bit Raspberry Pi OS, armhf) with CROSS_TARGET.
#
#   .ci/cross.sh                      # build + unit tests for aarch64-unknown-linux-gnu
#   CROSS_TARGET=armv7-unknown-linux-gnueabihf .ci/cross.sh   # the same for 32-bit armhf
#   CROSS_SKIP_TESTS=1 .ci/cross.sh   # build only
#   CROSS_NO_APT=1 .ci/cross.sh       # never touch apt (fail if something is missing)
#   CARGO_TARGET_DIR=/somewhere .ci/cross.sh   # honoured if set; default is target/
#   CI_LOCKED=0 .ci/cross.sh          # don't pass --locked (default: build exactly Cargo.lock)
#   eval "$(.ci/cross.sh --env)"      # only set up packages; print the cross environment as
#                                     # shell exports (CROSS_SKIPPED=1 if the target is unavailable)
#
# What it sets up (idempotent; a warm run does no apt work and only cargo's no-op build):
#   - rustup target aarch64-unknown-linux-gnu (if its std can't be installed: loud WARNING, exit 0)
#   - Debian's cross gcc, qemu-user-static, and the arm64 multiarch -dev packages
#     (dpkg --add-architecture arm64; libdbus-1-dev:arm64 libasound2-dev:arm64 libudev-dev:arm64
#     libsbc-dev:arm64 libspeexdsp-dev:arm64 libopus-dev:arm64)
#   - linker, C compiler and pkg-config for the target, scoped to the target triple so that
#     host build scripts keep using the host's pkg-config paths
#   - qemu-aarch64-static as cargo's runner (binfmt_misc is not assumed: containers often lack it).
#     No `-L` and no QEMU_LD_PREFIX: the arm64 glibc comes from the multiarch libc6:arm64, whose
#     loader is at /lib/ld-linux-aarch64.so.1, so the process sees exactly one glibc. A prefix
#     mixes two glibc builds and hangs at the first thread (see `pick_qemu_prefix`).
set -euo pipefail

TARGET=${CROSS_TARGET:-aarch64-unknown-linux-gnu}
case $TARGET in
    aarch64-unknown-linux-gnu)
        DEB_ARCH=arm64 GNU_TRIPLE=aarch64-linux-gnu QEMU=qemu-aarch64-static
        LOADER=/lib/ld-linux-aarch64.so.1 ;;
    armv7-unknown-linux-gnueabihf)
        DEB_ARCH=armhf GNU_TRIPLE=arm-linux-gnueabihf QEMU=qemu-arm-static
        LOADER=/lib/ld-linux-armhf.so.3 ;;
    *) echo "cross.sh: unsupported CROSS_TARGET $TARGET" >&2; exit 2 ;;
esac
# Environment variable spellings of the target: CC_<t>, CARGO_TARGET_<T>_LINKER.
T_LOWER=${TARGET//-/_}
T_UPPER=$(echo "$T_LOWER" | tr '[:lower:]' '[:upper:]')

cd "$(dirname "$0")/.."
MODE="build"
[ "${1:-}" = --env ] && MODE="env"
log() { printf '\n==> %s\n' "$*" >&2; }
t0=$(date +%s)

warn_skip() {
    cat >&2 <<EOF

################################################################################
##  WARNING: the ${TARGET} cross-build and qemu test step is SKIPPED.
##
##  Reason: $1
##
##  Nothing was built or tested for ${TARGET}. This is not a pass: fix the
##  machine (or its network access to static.rust-lang.org) and run
##  .ci/cross.sh again.
################################################################################

EOF
    [ "$MODE" = env ] && echo "export CROSS_SKIPPED=1"
    exit 0
}

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo -n); fi

# --- 1. Rust standard library for the target --------------------------------------------------
sysroot=$(rustc --print sysroot)
if [ ! -d "$sysroot/lib/rustlib/$TARGET/lib" ]; then
    if ! command -v rustup >/dev/null; then
        warn_skip "rustc has no std for $TARGET and rustup is not installed to add it."
    fi
    log "rustup target add $TARGET"
    if ! rustup target add "$TARGET" >&2; then
        warn_skip "'rustup target add $TARGET' failed (the target's standard library could not be downloaded)."
    fi
fi

# --- 2. Debian packages -----------------------------------------------------------------------
installed() { # installed PKG[:ARCH]...  -> true when every package is installed
    local p
    for p in "$@"; do
        dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed || return 1
    done
}
apt_get() {
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3 "$@"
}

host_pkgs=(gcc-"$GNU_TRIPLE" libc6-dev-"$DEB_ARCH"-cross qemu-user-static pkg-config)
# libopus-dev: Opus voice messages and replies (the opus crate links the system libopus).
target_pkgs=(libdbus-1-dev:"$DEB_ARCH" libasound2-dev:"$DEB_ARCH" libudev-dev:"$DEB_ARCH" libc6:"$DEB_ARCH"
    libsbc-dev:"$DEB_ARCH" libspeexdsp-dev:"$DEB_ARCH" # call audio: mSBC, SpeexDSP
    libopus-dev:"$DEB_ARCH")

if ! installed "${host_pkgs[@]}" "${target_pkgs[@]}"; then
    if [ -n "${CROSS_NO_APT:-}" ]; then
        echo "error: missing packages and CROSS_NO_APT is set: ${host_pkgs[*]} ${target_pkgs[*]}" >&2
        exit 1
    fi
    log "installing cross toolchain and $DEB_ARCH -dev packages"
    if ! dpkg --print-foreign-architectures | grep -qx "$DEB_ARCH"; then
        "${SUDO[@]}" dpkg --add-architecture "$DEB_ARCH" >&2
    fi
    # A mirror mid-sync can fail one index (seen: bookworm-security armhf "File has unexpected
    # size"); what matters is whether the packages can then be installed.
    apt_get update -q >&2 || log "apt-get update reported errors; installing from the lists it has"
    # The :arm64 -dev packages are Multi-Arch: same; they co-install with the amd64 ones only at the
    # exact same version, so let apt move the amd64 ones along if the archive has a newer one.
    apt_get install -y -q --no-install-recommends "${host_pkgs[@]}" "${target_pkgs[@]}" \
        libdbus-1-dev libasound2-dev libudev-dev libsbc-dev libspeexdsp-dev libopus-dev >&2
fi

# --- 3. Toolchain environment, scoped to the target -----------------------------------------------
export "CARGO_TARGET_${T_UPPER}_LINKER=$GNU_TRIPLE-gcc"
export "CC_${T_LOWER}=$GNU_TRIPLE-gcc"
export "AR_${T_LOWER}=$GNU_TRIPLE-ar"
# pkg-config crate: target-suffixed variables win over the plain ones and leave host builds alone.
export "PKG_CONFIG_ALLOW_CROSS_${T_LOWER}=1"
export "PKG_CONFIG_LIBDIR_${T_LOWER}=/usr/lib/$GNU_TRIPLE/pkgconfig:/usr/share/pkgconfig"
export "PKG_CONFIG_PATH_${T_LOWER}="
export "PKG_CONFIG_SYSROOT_DIR_${T_LOWER}=/"

pick_qemu_prefix() {
    # Debian's multiarch libc6:arm64 (pulled in by the :arm64 -dev packages) provides
    # /lib/ld-linux-aarch64.so.1 and /lib/aarch64-linux-gnu/libc.so.6 next to libdbus/libasound.
    # With no prefix, qemu uses exactly that one glibc. Measured on Debian 12: with
    # QEMU_LD_PREFIX=/usr/aarch64-linux-gnu (the environment-variable form behaves exactly like
    # `-L`), the loader comes from libc6-arm64-cross but libc.so.6 from libc6:arm64, and every
    # binary hangs when it starts its first thread. So: no prefix whenever the multiarch
    # loader exists.
    if [ -e "$LOADER" ]; then
        unset QEMU_LD_PREFIX
    else
        # Without libc6:arm64 (CROSS_NO_APT on a machine lacking it), the cross toolchain's
        # glibc is the only one, so the prefix cannot mix two builds.
        export QEMU_LD_PREFIX="/usr/$GNU_TRIPLE"
    fi
}
pick_qemu_prefix
export "CARGO_TARGET_${T_UPPER}_RUNNER=$QEMU"

if [ "$MODE" = env ]; then
    export -p | grep -E " (CARGO_TARGET_${T_UPPER}_[A-Z]+|[A-Z_]+_${T_LOWER}|QEMU_LD_PREFIX)="
    [ -n "${QEMU_LD_PREFIX:-}" ] || echo "unset QEMU_LD_PREFIX"
    exit 0
fi

# --- 4. Build and test ----------------------------------------------------------------------------
locked=(--locked)
[ "${CI_LOCKED:-1}" = 0 ] && locked=()
log "cargo build --workspace --all-targets --target $TARGET"
t1=$(date +%s)
cargo build "${locked[@]}" --workspace --all-targets --target "$TARGET"
t2=$(date +%s)

if [ -z "${CROSS_SKIP_TESTS:-}" ]; then
    log "cargo test (unit tests: --lib --bins) under $QEMU${QEMU_LD_PREFIX:+ (QEMU_LD_PREFIX=$QEMU_LD_PREFIX)}"
    cargo test "${locked[@]}" --workspace --target "$TARGET" --lib --bins
fi
t3=$(date +%s)

log "$TARGET done: setup $((t1 - t0))s, build $((t2 - t1))s, tests $((t3 - t2))s, total $((t3 - t0))s"
