#!/usr/bin/env bash
# Resident memory of an idle `wavegate serve` (issue 15 re-measure): empty SQLite database, after
# `flag apply` of 200 flags (the propagation bench's flag shape), and after a first
# `GET /api/v1/openapi.json`. Prints one line per run:
#   label  VmRSS RssAnon RssFile (empty) | ... (200 flags) | ... (after openapi.json)   all KiB
#
#   bench/rss-idle.sh BIN LABEL [RUNS]        # e.g. bench/rss-idle.sh /work/target-x/release/wavegate after 1
# Run it alternately for two binaries (B A B A ...). Uses the server's own CPU only briefly.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=$1 LABEL=$2 RUNS=${3:-1} NFLAGS=${NFLAGS:-200} SETTLE=${SETTLE:-2}
ADMIN=bench-rss-admin-token-0123456789abcdef
TMP=$(mktemp -d /tmp/wavegate-rss.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
bench_flags 0 "$NFLAGS" > "$TMP/flags.yaml"
rss() { awk '/^VmRSS:|^RssAnon:|^RssFile:/ {printf "%s ", $2}' "/proc/$1/status"; }
for r in $(seq 1 "$RUNS"); do
  bench_serve "$BIN" "$ADMIN"
  sleep "$SETTLE"; E=$(rss "$PID")
  WAVEGATE_URL=$URL WAVEGATE_TOKEN=$ADMIN "$BIN" flag apply -f "$TMP/flags.yaml" --reason "rss bench" > /dev/null
  sleep "$SETTLE"; F=$(rss "$PID")
  curl -sf -o /dev/null "$URL/api/v1/openapi.json" || echo "warn: openapi.json failed" >&2
  sleep "$SETTLE"; O=$(rss "$PID")
  kill "$PID"; wait "$PID" 2> /dev/null || true
  echo "$LABEL $E| $F| $O"
done
