#!/usr/bin/env bash
# Runs codriverd against a simulated phone: it appears, pairs, connects Hands-Free, and stays
# connected until Ctrl-C. Every step is logged and audible: through the sound card when there
# is one, otherwise as WAV files in the directory the log names. Extra arguments go to
# codriverd, e.g. `--scenario incoming-call`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --quiet --release -p codriver-daemon --bin codriverd -- --simulate "$@"
