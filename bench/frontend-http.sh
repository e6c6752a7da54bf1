#!/usr/bin/env bash
# The wavegate half of bench/unleash-http.sh's `frontend` cell (GET /api/frontend?userId=…&
# properties[…]), for comparing two builds without Unleash Edge (issue 15 re-measure). Same
# fixture (bench/fixtures/wavegate-flags.yaml), same client-sdk token, same wrk Lua request
# cycle (user-0 … user-999), server on core $SERVER_CPU, wrk on core $LOADGEN_CPU.
#
#   bench/frontend-http.sh BIN LABEL            # prints: LABEL rps req_per_server_cpu_s p50_us p99_us server_cpu_s errors
#   MODE=callgrind bench/frontend-http.sh BIN LABEL
#       # the server under callgrind (instrumentation off until set up); then N=2000 requests on one
#       # keep-alive connection (curl) bracketed by callgrind_control -z/-d, and the same wall time
#       # idle; prints: LABEL Ir_phase Ir_idle requests
# Uses wrk when installed, else bench/httpload.py (LOADGEN shows which).
# KEEP_CG=DIR keeps the callgrind dumps (for callgrind_annotate).
# Environment: DURATION=5s WARMUP=2s CONNECTIONS=64 USERS=1000 SERVER_CPU=0 LOADGEN_CPU=1 N=2000
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
BIN=$1 LABEL=$2 MODE=${MODE:-wrk}
DURATION=${DURATION:-5s} WARMUP=${WARMUP:-2s} CONNECTIONS=${CONNECTIONS:-64} USERS=${USERS:-1000}
SERVER_CPU=${SERVER_CPU:-0} LOADGEN_CPU=${LOADGEN_CPU:-1} N=${N:-2000}
ADMIN=bench-frontend-admin-token-0123456789ab
PROPS_QS='properties%5Bcountry%5D=DE&properties%5Bemail%5D=kari%40example.com&properties%5Bage%5D=42&properties%5Bplan%5D=pro'
TMP=$(mktemp -d /tmp/wavegate-frontend.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2> /dev/null; wait 2> /dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
if [ "$MODE" = callgrind ]; then
  WAIT=600 bench_serve "$BIN" "$ADMIN" valgrind --tool=callgrind --dump-instr=no \
    --instr-atstart=no --callgrind-out-file="$TMP/cg.%p"
else
  WAIT=600 bench_serve "$BIN" "$ADMIN" taskset -c "$SERVER_CPU"
fi
export WAVEGATE_URL=$URL WAVEGATE_TOKEN=$ADMIN
"$BIN" flag apply -f bench/fixtures/wavegate-flags.yaml --reason "frontend bench" > /dev/null
TOKEN=$("$BIN" token create --kind client-sdk --env prod --json |
  sed -n 's/.*"token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
[ -n "$TOKEN" ] || { echo "no token" >&2; exit 1; }
code=$(curl -s -o "$TMP/probe" -w '%{http_code}' -H "Authorization: $TOKEN" "$URL/api/frontend?userId=user-0&$PROPS_QS")
[ "$code" = 200 ] || { echo "probe: HTTP $code $(cat "$TMP/probe")" >&2; exit 1; }

cpu_s() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }

if [ "$MODE" = callgrind ]; then
  for u in $(seq 0 $((N - 1))); do
    echo "url = \"$URL/api/frontend?userId=user-$((u % USERS))&$PROPS_QS\""; echo "output = /dev/null"
  done > "$TMP/curl.cfg"
  # warm-up (instrumented, not counted), then the phase, then the same time idle
  callgrind_control -i on "$PID" > /dev/null
  curl -s -H "Authorization: $TOKEN" -K <(head -400 "$TMP/curl.cfg")
  callgrind_control -z "$PID" > /dev/null
  t0=$(date +%s.%N)
  curl -s -H "Authorization: $TOKEN" -K "$TMP/curl.cfg"
  callgrind_control -d phase "$PID" > /dev/null
  t1=$(date +%s.%N)
  callgrind_control -z "$PID" > /dev/null
  sleep "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
  callgrind_control -d idle "$PID" > /dev/null
  sleep 1
  [ -n "${KEEP_CG:-}" ] && mkdir -p "$KEEP_CG" && cp "$TMP"/cg.*.* "$KEEP_CG"/
  ir() { awk -v t="$1" '/^desc: Trigger/ && index($0, t) { f = 1 } f && /^(summary|totals):/ { print $2; exit }' "$TMP"/cg.*.*; }
  echo "$LABEL $(ir phase) $(ir idle) $N"
  exit 0
fi

cat > "$TMP/cell.lua" << 'LUA'
local path_t, auth = os.getenv("WB_PATH"), os.getenv("WB_AUTH")
local users = tonumber(os.getenv("WB_USERS"))
local reqs, i, threads = {}, 0, 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args)
  for u = 0, users - 1 do
    local uid = "user-" .. u
    reqs[u + 1] = wrk.format("GET", path_t:gsub("{uid}", function() return uid end), { ["Authorization"] = auth })
  end
  i = ((tid or 0) * 397) % users
end
function request() i = i % users + 1; return reqs[i] end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRKRESULT %d %d %.0f %.0f %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status + e.connect + e.read + e.write + e.timeout))
end
LUA
export WB_PATH="/api/frontend?userId={uid}&$PROPS_QS" WB_AUTH=$TOKEN WB_USERS=$USERS
if command -v wrk > /dev/null; then
  load() { taskset -c "$LOADGEN_CPU" wrk -t 1 -c "$CONNECTIONS" -d "$1" -s "$TMP/cell.lua" "$URL"; }
else # no wrk on this machine: the same closed loop from bench/httpload.py (slower, same for both sides)
  load() { taskset -c "$LOADGEN_CPU" python3 bench/httpload.py "$URL" "$WB_PATH" "$WB_AUTH" "${1%s}" "$CONNECTIONS" "$USERS"; }
fi
load "$WARMUP" > /dev/null
c0=$(cpu_s "$PID")
load "$DURATION" > "$TMP/wrk.out"
c1=$(cpu_s "$PID")
set -- $(grep '^WRKRESULT' "$TMP/wrk.out")
awk -v label="$LABEL" -v req="$2" -v dur="$3" -v p50="$4" -v p99="$5" -v err="$6" -v c0="$c0" -v c1="$c1" 'BEGIN {
  cpu = c1 - c0; printf "%s %.0f %.0f %d %d %.2f %d\n", label, req / (dur / 1e6), (cpu > 0 ? req / cpu : 0), p50, p99, cpu, err }'
