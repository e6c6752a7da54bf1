#!/usr/bin/env bash
# The test command (README "Run the tests"; CI runs exactly this through .ci/run).
# Installs the Python SDK the end-to-end tests drive, then runs every test in the workspace:
# unit, property, integration (real SQLite files, real server processes, the real OpenFeature
# Python SDK, the dashboard in headless Chromium), the fuzz seed corpora, doctests, and a smoke run of the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0
export CARGO_PROFILE_DEV_DEBUG=line-tables-only
export CARGO_PROFILE_TEST_DEBUG=line-tables-only

./scripts/setup-python.sh
./scripts/setup-browser.sh

echo "== cargo nextest (unit, property, integration) =="
cargo nextest run --workspace --no-fail-fast

echo "== doctests =="
cargo test --workspace --doc --quiet

echo "== benchmark smoke run =="
cargo test --benches -p wavegate-core --quiet
cargo test --benches -p wavegate --quiet   # rollback propagation + RSS (bench/propagation.sh --smoke)
