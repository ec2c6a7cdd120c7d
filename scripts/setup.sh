#!/usr/bin/env bash
# Installs what building and testing codriver needs on Debian 12 / Raspberry Pi OS, and only
# what is missing: Debian packages (with sudo when not root) and nothing else. Rust and git are
# assumed (https://rustup.rs).
set -euo pipefail

packages=(
    pkg-config        # finds libdbus and ALSA for the -sys crates
    libdbus-1-dev     # bluer talks to bluetoothd through libdbus
    libasound2-dev    # rodio/cpal playback and capture through ALSA
    libudev-dev       # evdev device discovery
    libsbc-dev        # mSBC (wide-band calls) through libsbc, codriver-callaudio's FFI
    libspeexdsp-dev   # call echo cancellation, noise suppression and resampling (SpeexDSP)
    libopus-dev       # Opus voice messages and replies (the opus crate links the system libopus)
    dbus-daemon       # tests start their own private bus
    python3-dbusmock  # the mock BlueZ those tests run on the private bus
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install Rust first: https://rustup.rs" >&2
    exit 1
fi

if ((${#missing[@]})); then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    echo "setup: installing ${missing[*]}"
    # A mirror mid-sync can fail one index; the install below says whether it mattered.
    $sudo apt-get update -qq || echo "setup: apt-get update reported errors; trying the lists it has" >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
