#!/usr/bin/env bash
# The test command (README "Set up"; CI runs exactly this through .ci/run).
# Installs and starts what the tests need (scripts/setup-system.sh: Debian's prometheus,
# chromium, node, python venv and a running PostgreSQL; cargo-nextest), the Python SDKs and the
# browser driver the end-to-end tests use, then runs every test in the workspace:
# unit, property, integration (real SQLite files, real server processes, the real OpenFeature
# Python SDK, the dashboard in headless Chromium), the fuzz seed corpora, doctests, and a smoke run of the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0
export CARGO_PROFILE_DEV_DEBUG=line-tables-only
export CARGO_PROFILE_TEST_DEBUG=line-tables-only

./scripts/setup-system.sh
./scripts/setup-python.sh
./scripts/setup-browser.sh

echo "== the pure crates read no clock =="
# chrono's `clock` feature (`Utc::now`) is enabled only by the crates that read the time, but a
# workspace build unifies features; built alone, wavegate-core has no clock to call. rrule turns
# chrono's default features on for wavegate-rollout, so for both crates clippy also refuses
# Utc::now, Local::now, SystemTime::now and Instant::now (crates/wavegate-{core,rollout}/clippy.toml).
cargo check -p wavegate-core
cargo check -p wavegate-rollout
cargo clippy -p wavegate-core -p wavegate-rollout --lib -- -D clippy::disallowed_methods

echo "== cargo nextest (unit, property, integration) =="
cargo nextest run --workspace --no-fail-fast

echo "== doctests =="
cargo test --workspace --doc --quiet

echo "== benchmark smoke run =="
cargo test --benches -p wavegate-core --quiet
cargo test --benches -p wavegate --quiet   # rollback propagation + RSS (bench/propagation.sh --smoke)
