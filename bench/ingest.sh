#!/usr/bin/env bash
# Event ingest: events per second into one real `wavegate serve` (release build) on SQLite,
# and on PostgreSQL when `psql` reaches WAVEGATE_TEST_POSTGRES (default
# postgres://postgres@127.0.0.1:5432), batched requests over several connections, with the
# server's CPU per core and a parse-only baseline (the same bodies through the server's own
# parser, one thread) from the same run. Prints the table docs/benchmarks.md quotes.
#
#   bench/ingest.sh            # the full run (about 45 s)
#   bench/ingest.sh --smoke    # tiny sizes, debug build (what CI runs through cargo test --benches)
#
# INGEST_BATCH (events per request, default 1000), INGEST_CONNECTIONS (default 16),
# INGEST_WINDOWS (measured windows per store, default 5) and
# INGEST_SECS (seconds per window, default 3) change the sizes; WAVEGATE_BENCH_BIN runs
# another build's server binary (to compare builds; the parse-only baseline stays this build's).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--smoke" ]; then
  exec cargo test -p wavegate --bench ingest --quiet
fi
exec cargo bench -p wavegate --bench ingest
