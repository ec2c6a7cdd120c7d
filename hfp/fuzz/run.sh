#!/bin/sh
# Runs the `input` fuzz target for a while (default 60 s) on a scratch copy of the committed
# seeds, so new corpus entries do not dirty the tree. Needs `cargo install cargo-fuzz` and a
# nightly toolchain. Usage: hfp/fuzz/run.sh [SECONDS]
set -eu
SECS="${1:-60}"
cd "$(dirname "$0")"
rm -rf seeds-copy
cp -r seeds/input seeds-copy
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}" \
    cargo +nightly fuzz run input seeds-copy -- -max_total_time="$SECS" -max_len=4096
