#!/usr/bin/env bash
# Issue 21, item 7: does a single-flag write cost what it changes, or grow with the whole
# configuration? One run starts a fresh `wavegate serve` (SQLite) per size, applies N flags of
# the propagation bench's shape, then times WRITES single-flag PUTs (each a new version of one
# flag, round-robin over 20 of them, one keep-alive connection) and reads the server's resident
# memory. Prints one line per size, and the p99 ratio of the largest size to the smallest:
#   size N  p50 ms  p99 ms  VmRSS KiB  RssAnon KiB
#
#   bench/writes.sh BIN LABEL [SIZES]     # e.g. bench/writes.sh target/release/wavegate after "10 10000"
# Run it alternately for two binaries (B A B A ...) and compare the ratios of the same run.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# WRITES defaults to 1,000: over 200 the p99 is the second-slowest write, which swung between
# 1.2x and 2.6x of the 10-flag figure on a shared machine for the same build.
BIN=$1 LABEL=$2 SIZES=${3:-"10 10000"} WRITES=${WRITES:-1000} SETTLE=${SETTLE:-2}
ADMIN=bench-writes-admin-token-0123456789abcdef
TMP=$(mktemp -d /tmp/wavegate-writes.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
rss() { awk '/^VmRSS:|^RssAnon:/ {printf "%s ", $2}' "/proc/$1/status"; }
for N in $SIZES; do
  # In files of at most 2,000 flags: an API body is at most 1 MiB.
  rm -f "$TMP"/flags-*.yaml
  for start in $(seq 0 2000 $((N - 1))); do
    end=$((start + 2000 < N ? start + 2000 : N))
    bench_flags "$start" "$end" > "$TMP/flags-$start.yaml"
  done
  bench_serve "$BIN" "$ADMIN"
  for f in "$TMP"/flags-*.yaml; do
    WAVEGATE_URL=$URL WAVEGATE_TOKEN=$ADMIN "$BIN" flag apply -f "$f" --reason "writes bench" > /dev/null
  done
  sleep "$SETTLE"
  MEM=$(rss "$PID")
  LAT=$(python3 - "$URL" "$ADMIN" "$N" "$WRITES" <<'PY'
import http.client, json, sys, time, urllib.parse
url, token, n, writes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
u = urllib.parse.urlparse(url)
c = http.client.HTTPConnection(u.hostname, u.port)
times = []
for i in range(writes):
    key = f"flag-{i % min(n, 20):05d}"
    body = json.dumps({"description": f"write {i}", "variants": {"on": True, "off": False}, "default": "off",
        "environments": {"prod": {"enabled": True, "rules": [{"name": "r", "constraints": [{"attribute": "country", "op": "in", "values": ["NO", "SE", "DK"]}], "split": {"on": "20%", "off": "80%"}}]}}})
    t = time.perf_counter()
    c.request("PUT", f"/api/v1/flags/{key}", body, {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "X-Wavegate-Reason": "bench"})
    r = c.getresponse(); r.read()
    times.append((time.perf_counter() - t) * 1000)
    assert r.status == 200, r.status
times.sort()
print(f"{times[len(times) // 2]:.2f} {times[min(len(times) - 1, int(len(times) * 0.99))]:.2f}")
PY
)
  kill "$PID"; wait "$PID" 2> /dev/null || true
  echo "$LABEL size $N  p50/p99 ms $LAT  VmRSS/RssAnon KiB $MEM"
done
