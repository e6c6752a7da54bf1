#!/usr/bin/env bash
# Runs this tree's propagation bench binary (cargo bench --no-run -p wavegate --bench propagation)
# against another build's `wavegate` (WAVEGATE_BENCH_BIN), so two builds are compared with one
# harness (issue 15 re-measure). Extra arguments go to the bench binary (--bench for the full sizes).
#   bench/propagation-ab.sh PROPAGATION_BIN WAVEGATE_BIN [--bench]
set -euo pipefail
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
P=$1 W=$2; shift 2
echo "harness $P; server $W; $(date -u +%FT%TZ); load $(cut -d' ' -f1-3 /proc/loadavg)"
WAVEGATE_BENCH_BIN=$W "$P" "$@"
