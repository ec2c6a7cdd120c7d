#!/usr/bin/env bash
# Runs codriver's whole test suite: unit, transcript, property, service (mock HAL + simulated
# phone under paused time), private D-Bus and binary lifecycle tests, and the doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo test --workspace --all-features --locked "$@"
