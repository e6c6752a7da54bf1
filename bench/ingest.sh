#!/usr/bin/env bash
# Ingest: events per second (POST /api/v1/events) and then OTLP spans per second
# (POST /v1/traces, protobuf, 1 span in 10 carrying an OpenFeature evaluation event) into one
# real `wavegate serve` (release build) on SQLite, and on PostgreSQL when `psql` reaches
# WAVEGATE_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432), batched requests over
# several connections, with the server's CPU per core and single-thread baselines from the
# same run (the event bodies through the server's own parser, the OTLP bodies through
# wavegate_protocols::otlp::decode). Afterwards the rollout's stored exposures must equal those
# acknowledged. Prints the two tables docs/benchmarks.md quotes, the targets (1,000,000
# events/s; 200,000 spans/s) and the ratio of spans/s to events/s. The server runs with
# WAVEGATE_EVENT_CLOCK_SKEW=1ms, since the spans' evaluations are timed just after the
# rollout's start.
#
#   bench/ingest.sh            # the full run (about 1.5 min)
#   bench/ingest.sh --smoke    # tiny sizes, debug build (what CI runs through cargo test --benches)
#
# INGEST_BATCH (events per request, default 1000), INGEST_SPANS (spans per OTLP request,
# default 1000), INGEST_CONNECTIONS (default 16), INGEST_WINDOWS (measured windows per store
# and API, default 5) and INGEST_SECS (seconds per window, default 3) change the sizes;
# WAVEGATE_BENCH_BIN runs another build's server binary (to compare builds; the baselines stay
# this build's, and a build without /v1/traces skips the OTLP rows).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--smoke" ]; then
  exec cargo test -p wavegate --bench ingest --quiet
fi
exec cargo bench -p wavegate --bench ingest
