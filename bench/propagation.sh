#!/usr/bin/env bash
# Rollback propagation to 1, 1,000 and 10,000 SSE subscribers (and to an edge relay's answers),
# and the server's resident memory with 10,000 flags and 10,000 subscribers. Real `wavegate
# serve` and `wavegate edge` processes of a release build; the subscribers are one multiplexed
# client process. Prints the tables docs/benchmarks.md quotes.
#
#   bench/propagation.sh            # the full run (a few minutes)
#   bench/propagation.sh --smoke    # 1 and 50 subscribers, 200 flags (what CI runs, debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
# 10,000 subscribers need more than 10,000 descriptors on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10500 ]; then
  echo "note: ulimit -n is $(ulimit -n); 10,000 subscribers need about 10,500 per process (raise the hard limit)" >&2
fi
if [ "${1:-}" = "--smoke" ]; then
  exec cargo test --benches -p wavegate --quiet
fi
exec cargo bench -p wavegate --bench propagation
