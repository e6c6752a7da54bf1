#!/usr/bin/env bash
# HTTP throughput and latency, wavegate vs Unleash Edge, side by side in one run (run by hand;
# not part of CI). Both servers answer the same toggles (bench/fixtures/: wavegate-flags.yaml
# and its Unleash client-API twin unleash-features.json) for the same per-request context, from
# the same load generator (wrk) with the same connection count. Each server is pinned to the
# same one core (taskset -c $SERVER_CPU), the load generator to another ($LOADGEN_CPU).
#
#   bench/unleash-http.sh                      # 10 s per cell, 64 connections (about 2 minutes)
#   DURATION=30s CONNECTIONS=128 bench/unleash-http.sh
#
# Cells (wavegate | Unleash Edge 20.1.0, offline mode):
#   single   POST /ofrep/v1/evaluate/flags/checkout-rules | POST /api/frontend/features/checkout-rules
#   bulk     POST /ofrep/v1/evaluate/flags                | POST /api/frontend/all
#   frontend GET  /api/frontend?userId=…&properties[…]     (the same request on both)
#   feature  GET  /api/frontend/features/checkout-rules?…  (the same request on both)
# Edge 20.1.0 serves no OFREP endpoint, so the OFREP cells compare against Edge's closest
# equivalents: its frontend API evaluating one toggle / every toggle for a JSON POSTed context.
# A wavegate build without /api/frontend (404) prints "n/a (not available in this build)".
#
# Floor: each cell is also sent to a minimal axum server (crates/wavegate/examples/http_floor.rs:
# the same tokio, hyper and axum, reading the request body and answering a fixed copy of
# wavegate's answer to that cell, so the same bytes go over the wire) on the same core, and
# both servers' throughput is shown as a share of it: how much of the HTTP stack's own cost
# each server adds.
#
# Context: userId (wavegate: targetingKey) cycles through user-0 … user-999 ($USERS), one per
# request; the properties are fixed: country=DE, email=kari@example.com, age=42, plan=pro (so
# all three constraints of checkout-rules are evaluated and the segment matches).
#
# Needs: cargo, taskset, wrk (installed with apt-get when missing and running as root), curl,
# python3 (for the agreement check), 2+ cores. Unleash Edge is installed from crates.io into
# $EDGE_ROOT on first use (`cargo install --locked`, 10 to 30 minutes on 2 busy cores).
#
# Environment (defaults):
#   DURATION=10s  WARMUP=2s  CONNECTIONS=64  WRK_THREADS=1  USERS=1000
#   SERVER_CPU=0  LOADGEN_CPU=1  WG_PORT=18470  EDGE_PORT=13063  FLOOR_PORT=18471
#   REPEAT=1 (rounds; every figure is its median over the rounds)
#   EDGE_VERSION=20.1.0  EDGE_ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/wavegate-bench/unleash-edge
#   WAVEGATE_BIN=<cargo target dir>/release/wavegate and FLOOR_BIN=<…>/release/examples/http_floor
#   (built with `cargo build --release -p wavegate --bin wavegate --example http_floor` unless
#   SKIP_BUILD=1; without a floor binary the floor columns say n/a)   CELLS="single bulk frontend feature"   KEEP_TMP=0
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FIXTURES=$ROOT/bench/fixtures

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-1}
USERS=${USERS:-1000}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
WG_PORT=${WG_PORT:-18470}
EDGE_PORT=${EDGE_PORT:-13063}
FLOOR_PORT=${FLOOR_PORT:-18471}
EDGE_VERSION=${EDGE_VERSION:-20.1.0}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/wavegate-bench
EDGE_ROOT=${EDGE_ROOT:-$CACHE/unleash-edge}
CELLS=${CELLS:-single bulk frontend feature}
REPEAT=${REPEAT:-1}
SINGLE_FLAG=checkout-rules

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

case "${1:-}" in
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) die "unknown argument $1 (settings are environment variables; see --help)" ;;
esac

# ---------- tools ----------
command -v taskset > /dev/null || die "taskset (util-linux) is needed"
command -v curl > /dev/null || die "curl is needed"
if ! command -v wrk > /dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    say "installing wrk (apt-get install -y wrk)"
    apt-get install -y wrk > /dev/null 2>&1 || { apt-get update -qq > /dev/null && apt-get install -y wrk > /dev/null; }
  fi
  command -v wrk > /dev/null || die "wrk is needed (Debian: apt-get install wrk)"
fi
if [ "$(nproc --all)" -lt 2 ]; then
  die "needs at least 2 cores: one for the servers, one for the load generator"
fi

EDGE_BIN=$EDGE_ROOT/bin/unleash-edge
# cargo install records what it installed in $EDGE_ROOT/.crates.toml (Edge has no --version).
if [ ! -x "$EDGE_BIN" ] || ! grep -q "\"unleash-edge $EDGE_VERSION " "$EDGE_ROOT/.crates.toml" 2> /dev/null; then
  say "installing unleash-edge $EDGE_VERSION into $EDGE_ROOT (cargo install --locked; ~10 minutes on 2 cores)"
  mkdir -p "$CACHE"
  CARGO_TARGET_DIR=$CACHE/target-edge nice -n 15 \
    cargo install --locked unleash-edge --version "$EDGE_VERSION" --root "$EDGE_ROOT" >&2
fi
EDGE_REPORTED="unleash-edge $EDGE_VERSION"

if [ -z "${WAVEGATE_BIN:-}" ]; then
  TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
  WAVEGATE_BIN=$TARGET_DIR/release/wavegate
  FLOOR_BIN=${FLOOR_BIN:-$TARGET_DIR/release/examples/http_floor}
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    say "building wavegate and the floor (cargo build --release -p wavegate --bin wavegate --example http_floor)"
    nice -n 10 cargo build --release -p wavegate --bin wavegate --example http_floor --quiet >&2
  fi
fi
FLOOR_BIN=${FLOOR_BIN:-}
[ -n "$FLOOR_BIN" ] && [ ! -x "$FLOOR_BIN" ] && { say "note: no floor binary at $FLOOR_BIN; the floor columns say n/a"; FLOOR_BIN=; }
[ -x "$WAVEGATE_BIN" ] || die "no wavegate binary at $WAVEGATE_BIN"
WG_VERSION=$("$WAVEGATE_BIN" --version 2>/dev/null | head -1)
if [ "$WAVEGATE_BIN" = "${TARGET_DIR:-}/release/wavegate" ]; then
  WG_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  WG_DIRTY=$(git -C "$ROOT" status --porcelain -- crates Cargo.lock 2>/dev/null | head -1)
  [ -n "$WG_DIRTY" ] && WG_COMMIT="$WG_COMMIT+dirty"
else
  # A binary given by WAVEGATE_BIN may be any build: name it, not this checkout's commit.
  WG_COMMIT=$WAVEGATE_BIN
fi

# ---------- servers ----------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/wavegate-unleash-http.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2> /dev/null || true; done
  if [ "${KEEP_TMP:-0}" = 1 ]; then say "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }
port_free "$WG_PORT" || die "port $WG_PORT is in use (set WG_PORT)"
port_free "$EDGE_PORT" || die "port $EDGE_PORT is in use (set EDGE_PORT)"
port_free "$FLOOR_PORT" || die "port $FLOOR_PORT is in use (set FLOOR_PORT)"

wait_http() { # URL LOG PID
  for _ in $(seq 1 200); do
    curl -fsS -o /dev/null "$1" 2> /dev/null && return 0
    kill -0 "$3" 2> /dev/null || { cat "$2" >&2; die "server exited during start ($1)"; }
    sleep 0.05
  done
  cat "$2" >&2
  die "server did not answer $1 in 10 s"
}

# Both servers log at warn (no per-request logging on either side).
WG_URL=http://127.0.0.1:$WG_PORT
WG_ADMIN=bench-admin-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
WAVEGATE_BOOTSTRAP_ADMIN_TOKEN=$WG_ADMIN RUST_LOG=warn taskset -c "$SERVER_CPU" \
  "$WAVEGATE_BIN" serve --db "$TMP/wavegate.db" --listen "127.0.0.1:$WG_PORT" \
  > "$TMP/wavegate.log" 2>&1 &
PIDS+=($!)
WG_PID=$!

# Unleash tokens are `<project>:<environment>.<secret>`; offline mode trusts the listed ones.
EDGE_URL=http://127.0.0.1:$EDGE_PORT
EDGE_CLIENT='*:production.bench-client-token'
EDGE_FRONTEND='*:production.bench-frontend-token'
RUST_LOG=warn taskset -c "$SERVER_CPU" "$EDGE_BIN" --interface 127.0.0.1 --port "$EDGE_PORT" \
  offline --bootstrap-file "$FIXTURES/unleash-features.json" \
  --client-tokens "$EDGE_CLIENT" --frontend-tokens "$EDGE_FRONTEND" \
  > "$TMP/edge.log" 2>&1 &
PIDS+=($!)
EDGE_PID=$!

wait_http "$WG_URL/healthz" "$TMP/wavegate.log" "$WG_PID"
wait_http "$EDGE_URL/internal-backstage/health" "$TMP/edge.log" "$EDGE_PID"

export WAVEGATE_URL=$WG_URL WAVEGATE_TOKEN=$WG_ADMIN
"$WAVEGATE_BIN" flag apply -f "$FIXTURES/wavegate-flags.yaml" --reason "unleash-http bench" > /dev/null
WG_TOKEN=$("$WAVEGATE_BIN" token create --kind client-sdk --env prod --json |
  sed -n 's/.*"token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
[ -n "$WG_TOKEN" ] || die "could not create a wavegate client-sdk token"

# ---------- requests ----------
PROPS_JSON='"country":"DE","email":"kari@example.com","age":"42","plan":"pro"'
PROPS_QS='properties%5Bcountry%5D=DE&properties%5Bemail%5D=kari%40example.com&properties%5Bage%5D=42&properties%5Bplan%5D=pro'
# A cell: METHOD PATH BODY AUTH, with {uid} replaced by user-N per request.
cell_request() { # SERVER CELL
  case "$1:$2" in
    wavegate:single) echo "POST|/ofrep/v1/evaluate/flags/$SINGLE_FLAG|{\"context\":{\"targetingKey\":\"{uid}\",$PROPS_JSON}}|Bearer $WG_TOKEN" ;;
    wavegate:bulk) echo "POST|/ofrep/v1/evaluate/flags|{\"context\":{\"targetingKey\":\"{uid}\",$PROPS_JSON}}|Bearer $WG_TOKEN" ;;
    wavegate:frontend) echo "GET|/api/frontend?userId={uid}&$PROPS_QS||$WG_TOKEN" ;;
    wavegate:feature) echo "GET|/api/frontend/features/$SINGLE_FLAG?userId={uid}&$PROPS_QS||$WG_TOKEN" ;;
    edge:single) echo "POST|/api/frontend/features/$SINGLE_FLAG|{\"userId\":\"{uid}\",\"properties\":{$PROPS_JSON}}|$EDGE_FRONTEND" ;;
    edge:bulk) echo "POST|/api/frontend/all|{\"userId\":\"{uid}\",\"properties\":{$PROPS_JSON}}|$EDGE_FRONTEND" ;;
    edge:frontend) echo "GET|/api/frontend?userId={uid}&$PROPS_QS||$EDGE_FRONTEND" ;;
    edge:feature) echo "GET|/api/frontend/features/$SINGLE_FLAG?userId={uid}&$PROPS_QS||$EDGE_FRONTEND" ;;
    floor:*) cell_request wavegate "$2" ;;
    *) die "unknown cell $2" ;;
  esac
}
cell_title() {
  case "$1" in
    single) echo "one flag: wavegate OFREP POST …/flags/$SINGLE_FLAG | Edge POST /api/frontend/features/$SINGLE_FLAG (Edge $EDGE_VERSION has no OFREP; closest equivalent)" ;;
    bulk) echo "all flags: wavegate OFREP bulk POST /ofrep/v1/evaluate/flags | Edge POST /api/frontend/all (closest equivalent: every toggle evaluated, disabled ones too)" ;;
    frontend) echo "GET /api/frontend?userId=…&properties[…]=… on both (enabled toggles only)" ;;
    feature) echo "GET /api/frontend/features/$SINGLE_FLAG?userId=…&properties[…]=… on both" ;;
  esac
}
FLOOR_URL=http://127.0.0.1:$FLOOR_PORT
base_url() { case "$1" in wavegate) echo "$WG_URL" ;; floor) echo "$FLOOR_URL" ;; *) echo "$EDGE_URL" ;; esac; }

# The floor server for one cell, answering the copy of wavegate's answer to it; stopped by
# floor_stop (one at a time, on the servers' core).
FLOOR_PID=
floor_start() { # CELL
  taskset -c "$SERVER_CPU" "$FLOOR_BIN" "127.0.0.1:$FLOOR_PORT" "$TMP/body-$1.json" > "$TMP/floor.log" 2>&1 &
  FLOOR_PID=$!
  PIDS+=("$FLOOR_PID")
  wait_http "$FLOOR_URL/" "$TMP/floor.log" "$FLOOR_PID"
}
floor_stop() { kill "$FLOOR_PID" 2> /dev/null || true; wait "$FLOOR_PID" 2> /dev/null || true; }

# One request of a cell with curl, for user-0: prints the HTTP status, body in $TMP/probe.
probe() { # SERVER CELL
  local spec method path body auth
  spec=$(cell_request "$1" "$2")
  IFS='|' read -r method path body auth <<< "$spec"
  path=${path//\{uid\}/user-0}
  body=${body//\{uid\}/user-0}
  local args=(-sS -o "$TMP/probe" -w '%{http_code}' -X "$method" -H "Authorization: $auth")
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
  curl "${args[@]}" "$(base_url "$1")$path" || echo 000
}

# ---------- agreement check (outside any timing) ----------
# Per user: wavegate's OFREP bulk vs Edge's /api/frontend/all (every flag's on/off), and, where
# wavegate serves it, the /api/frontend toggle lists of both.
agreement() {
  command -v python3 > /dev/null || { say "note: no python3, agreement check skipped"; return 0; }
  WG_URL=$WG_URL EDGE_URL=$EDGE_URL WG_TOKEN=$WG_TOKEN EDGE_FRONTEND=$EDGE_FRONTEND \
    CHECK_USERS=$((USERS < 200 ? USERS : 200)) WG_FRONTEND=$1 python3 - << 'PY'
import json, os, sys, urllib.request, urllib.parse, urllib.error
props = {"country": "DE", "email": "kari@example.com", "age": "42", "plan": "pro"}
def call(url, token, body=None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)
wg, edge = os.environ["WG_URL"], os.environ["EDGE_URL"]
wt, et = "Bearer " + os.environ["WG_TOKEN"], os.environ["EDGE_FRONTEND"]
n = int(os.environ["CHECK_USERS"]); bad = 0; on = {}
for i in range(n):
    uid = f"user-{i}"
    w = call(wg + "/ofrep/v1/evaluate/flags", wt, {"context": {"targetingKey": uid, **props}})
    e = call(edge + "/api/frontend/all", et, {"userId": uid, "properties": props})
    wmap = {f["key"]: f.get("value") for f in w["flags"]}
    emap = {t["name"]: t["enabled"] for t in e["toggles"]}
    if wmap != emap:
        bad += 1
        if bad <= 3: print(f"  disagreement for {uid}: wavegate {wmap} edge {emap}", file=sys.stderr)
    for k, v in emap.items(): on[k] = on.get(k, 0) + bool(v)
    if os.environ["WG_FRONTEND"] == "1":
        qs = urllib.parse.urlencode({"userId": uid, **{f"properties[{k}]": v for k, v in props.items()}})
        wf = sorted(t["name"] for t in call(f"{wg}/api/frontend?{qs}", os.environ["WG_TOKEN"])["toggles"])
        ef = sorted(t["name"] for t in call(f"{edge}/api/frontend?{qs}", et)["toggles"])
        if wf != ef:
            bad += 1
            if bad <= 3: print(f"  /api/frontend disagreement for {uid}: wavegate {wf} edge {ef}", file=sys.stderr)
summary = ", ".join(f"{k} on for {v}" for k, v in sorted(on.items()))
if bad:
    print(f"agreement: FAILED for {bad} of {n} users ({summary})", file=sys.stderr); sys.exit(1)
print(f"agreement: both servers give the same answers for user-0 … user-{n-1} ({summary})")
PY
}

# ---------- load generator ----------
cat > "$TMP/cell.lua" << 'LUA'
-- One cell: requests cycle through WB_USERS prebuilt requests ({uid} = user-0, user-1, …).
local method, path_t = os.getenv("WB_METHOD"), os.getenv("WB_PATH")
local body_t, auth = os.getenv("WB_BODY") or "", os.getenv("WB_AUTH")
local users = tonumber(os.getenv("WB_USERS"))
local reqs, i, threads = {}, 0, 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args)
  local headers = { ["Authorization"] = auth }
  if body_t ~= "" then headers["Content-Type"] = "application/json" end
  for u = 0, users - 1 do
    local uid = "user-" .. u
    local p = path_t:gsub("{uid}", function() return uid end)
    local b = nil
    if body_t ~= "" then b = body_t:gsub("{uid}", function() return uid end) end
    reqs[u + 1] = wrk.format(method, p, headers, b)
  end
  i = ((tid or 0) * 397) % users
end
function request()
  i = i % users + 1
  return reqs[i]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRKRESULT %d %d %.0f %.0f %.0f %d %d\n", summary.requests,
    summary.duration, latency:percentile(50), latency:percentile(99), latency.max, e.status,
    e.connect + e.read + e.write + e.timeout))
end
LUA

# Busy jiffies and all jiffies of one core (/proc/stat; steal counts as neither).
core_ticks() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }
busy_pct() { # "busy0 all0" "busy1 all1"
  awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ")
    printf "%.0f", (y[2] > x[2]) ? 100 * (y[1] - x[1]) / (y[2] - x[2]) : 0 }'
}

# Runs one cell against one server; prints "rps p50_us p99_us server_core% loadgen_core% non2xx
# errors runnable". Core figures are the whole core's busy time (process, kernel and softirq work), so
# other work on the machine shows up in them too.
run_cell() { # SERVER CELL
  local spec method path body auth
  spec=$(cell_request "$1" "$2")
  IFS='|' read -r method path body auth <<< "$spec"
  local url
  url=$(base_url "$1")
  export WB_METHOD=$method WB_PATH=$path WB_BODY=$body WB_AUTH=$auth WB_USERS=$USERS
  if [ "$WARMUP" != 0 ] && [ "$WARMUP" != 0s ]; then
    taskset -c "$LOADGEN_CPU" wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "$WARMUP" -s "$TMP/cell.lua" "$url" > /dev/null
  fi
  local s0 s1 g0 g1 sampler
  # Runnable tasks, twice a second: the server, wrk and this sampler make about 3; more means
  # other work on the machine.
  (while :; do
    while read -r k v _; do [ "$k" = procs_running ] && echo "$v"; done < /proc/stat
    sleep 0.5
  done) > "$TMP/running" &
  sampler=$!
  s0=$(core_ticks "$SERVER_CPU")
  g0=$(core_ticks "$LOADGEN_CPU")
  taskset -c "$LOADGEN_CPU" wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "$DURATION" \
    -s "$TMP/cell.lua" "$url" > "$TMP/wrk.out" 2> "$TMP/wrk.err"
  s1=$(core_ticks "$SERVER_CPU")
  g1=$(core_ticks "$LOADGEN_CPU")
  kill "$sampler" 2> /dev/null || true
  wait "$sampler" 2> /dev/null || true
  local r
  r=$(grep '^WRKRESULT' "$TMP/wrk.out") || { cat "$TMP/wrk.out" "$TMP/wrk.err" >&2; die "wrk printed no result"; }
  # shellcheck disable=SC2086
  set -- $r
  awk -v req="$2" -v dur="$3" -v p50="$4" -v p99="$5" -v st="$7" -v er="$8" \
    -v sc="$(busy_pct "$s0" "$s1")" -v gc="$(busy_pct "$g0" "$g1")" \
    -v run="$(awk '{ t += $1; n++ } END { printf "%.1f", n ? t / n : 0 }' "$TMP/running")" 'BEGIN {
      printf "%.0f %d %d %d %d %d %d %s\n", req / (dur / 1e6), p50, p99, sc, gc, st, er, run }'
}

# Busy share of both cores over 2 s while nothing of ours runs: other work skews the numbers.
quiet_check() { # WHEN
  local a0 b0 a1 b1 a b
  a0=$(core_ticks "$SERVER_CPU"); b0=$(core_ticks "$LOADGEN_CPU")
  sleep 2
  a1=$(core_ticks "$SERVER_CPU"); b1=$(core_ticks "$LOADGEN_CPU")
  a=$(busy_pct "$a0" "$a1"); b=$(busy_pct "$b0" "$b1")
  if [ "$a" -gt 10 ] || [ "$b" -gt 10 ]; then
    NOTES+=("$1, with no load, cores $SERVER_CPU and $LOADGEN_CPU were $a% and $b% busy with other work: these numbers are skewed by it; rerun on a quiet machine")
  fi
  QUIET+=("$1: $a%/$b%")
}

fmt_ms() { awk -v us="$1" 'BEGIN { printf (us < 10000 ? "%.2f ms" : "%.1f ms"), us / 1000 }'; }
fmt_rps() { awk -v r="$1" 'BEGIN { s = sprintf("%d", r); o = ""
  while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }
  print s o }'; }

# ---------- run ----------
WG_FRONTEND=1
status=$(probe wavegate frontend)
if [ "$status" = 404 ]; then
  WG_FRONTEND=0
elif [ "$status" != 200 ]; then
  die "wavegate GET /api/frontend answered $status: $(head -c 300 "$TMP/probe")"
fi
for c in $CELLS; do
  for s in wavegate edge; do
    [ "$s:$WG_FRONTEND" = wavegate:0 ] && case $c in frontend | feature) continue ;; esac
    st=$(probe "$s" "$c")
    [ "$st" = 200 ] || die "$s $c: the probe request answered $st: $(head -c 300 "$TMP/probe")"
    [ "$s" = wavegate ] && cp "$TMP/probe" "$TMP/body-$c.json"
  done
done
agreement "$WG_FRONTEND"

say "$WG_VERSION ($WG_COMMIT) on :$WG_PORT, $EDGE_REPORTED on :$EDGE_PORT, both on core $SERVER_CPU;"
say "wrk on core $LOADGEN_CPU: $WRK_THREADS thread(s), $CONNECTIONS connections, $WARMUP warm-up + $DURATION per cell, $REPEAT round(s)"

NOTES=()
QUIET=()
quiet_check "before the run"
declare -A RES ROUNDS
for r in $(seq 1 "$REPEAT"); do
  for c in $CELLS; do
    # Edge, then wavegate, then the floor, per cell: all see the same machine state as closely
    # as possible.
    for s in edge wavegate floor; do
      if [ "$s" != edge ] && [ "$WG_FRONTEND" = 0 ] && { [ "$c" = frontend ] || [ "$c" = feature ]; }; then
        RES[$s:$c]=na
        continue
      fi
      if [ "$s" = floor ]; then
        [ -n "$FLOOR_BIN" ] || { RES[$s:$c]=na; continue; }
        floor_start "$c"
      fi
      res=$(run_cell "$s" "$c")
      [ "$s" = floor ] && floor_stop
      say "  round $r, $c, $s: $res  (req/s p50µs p99µs server-core% wrk-core% non2xx errors runnable)"
      ROUNDS[$s:$c]+="$res"$'\n'
    done
  done
done
quiet_check "after the run"

# Each column's median over the rounds (the mean of the middle two for an even count); the
# error counts are summed, and the runnable-task average is the rounds' highest.
median_row() {
  printf '%s' "$1" | awk 'BEGIN { n = 0 } NF { for (i = 1; i <= NF; i++) v[i, n] = $i; n++ }
    END {
      for (i = 1; i <= 8; i++) {
        if (i == 6 || i == 7) { t = 0; for (j = 0; j < n; j++) t += v[i, j]; out[i] = t; continue }
        if (i == 8) { t = 0; for (j = 0; j < n; j++) if (v[i, j] > t) t = v[i, j]; out[i] = t; continue }
        for (j = 0; j < n; j++) a[j] = v[i, j]
        for (j = 1; j < n; j++) { x = a[j]; k = j - 1; while (k >= 0 && a[k] > x) { a[k + 1] = a[k]; k-- } a[k + 1] = x }
        out[i] = (n % 2) ? a[(n - 1) / 2] : (a[n / 2 - 1] + a[n / 2]) / 2
      }
      printf "%.0f %.0f %.0f %.0f %.0f %d %d %.1f\n", out[1], out[2], out[3], out[4], out[5], out[6], out[7], out[8]
    }'
}
for c in $CELLS; do
  for s in edge wavegate floor; do
    if [ "${RES[$s:$c]:-}" != na ]; then RES[$s:$c]=$(median_row "${ROUNDS[$s:$c]}"); fi
  done
done

# ---------- table ----------
echo
echo "## HTTP: wavegate vs Unleash Edge ($(date -u +%F), $(uname -m), $(nproc --all) cores)"
echo
echo "$WG_VERSION ($WG_COMMIT) vs $EDGE_REPORTED (offline mode, bootstrap file), both pinned to core $SERVER_CPU"
echo "(taskset -c $SERVER_CPU; loaded one after the other); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2) pinned to core $LOADGEN_CPU, $WRK_THREADS thread(s),"
echo "$CONNECTIONS connections, $WARMUP warm-up then $DURATION per cell, median of $REPEAT round(s) (Edge, wavegate, per cell); context: userId/targetingKey"
echo "cycles user-0 … user-$((USERS - 1)), properties fixed (country=DE, email=kari@example.com, age=42, plan=pro)."
echo
echo "| cell | wavegate req/s | p50 | p99 | core | Edge req/s | p50 | p99 | core | req/s ratio | p99 ratio | target (≥ 1.5×, p99 no worse) | floor req/s | wavegate ÷ floor | Edge ÷ floor |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"
for c in $CELLS; do
  e=${RES[edge:$c]}
  w=${RES[wavegate:$c]}
  # shellcheck disable=SC2086
  set -- $e
  e_rps=$1 e_p50=$2 e_p99=$3 e_core=$4 e_gen=$5 e_st=$6 e_err=$7 e_run=$8
  if awk -v r="$e_run" 'BEGIN { exit !(r > 3.6) }'; then NOTES+=("$c: other work ran during at least one Edge round (up to $e_run runnable tasks on average; about 3 is quiet: the server, wrk and the sampler)"); fi
  edge_cols="$(fmt_rps "$e_rps") | $(fmt_ms "$e_p50") | $(fmt_ms "$e_p99") | ${e_core}%"
  if [ $((e_st + e_err)) -gt 0 ]; then NOTES+=("$c: Edge had $e_st non-2xx answers and $e_err socket errors"); fi
  if [ "$e_gen" -ge 90 ]; then NOTES+=("$c: core $LOADGEN_CPU (wrk's, with any other work) was ${e_gen}% busy against Edge: the generator may be the limit"); fi
  if [ "$w" = na ]; then
    echo "| $c | n/a (not available in this build) | | | | $edge_cols | | | | | | |"
    continue
  fi
  f=${RES[floor:$c]:-na}
  if [ "$f" = na ]; then
    floor_cols="n/a | |"
  else
    # shellcheck disable=SC2086
    set -- $f
    f_rps=$1
    [ $(($6 + $7)) -gt 0 ] && NOTES+=("$c: the floor had $6 non-2xx answers and $7 socket errors")
    floor_cols="$(fmt_rps "$f_rps") | $(awk -v a="${w:-0}" -v f="$f_rps" 'BEGIN { split(a, x, " "); printf "%.0f%%", 100 * x[1] / f }') | $(awk -v e="$e_rps" -v f="$f_rps" 'BEGIN { printf "%.0f%%", 100 * e / f }')"
  fi
  # shellcheck disable=SC2086
  set -- $w
  w_rps=$1 w_p50=$2 w_p99=$3 w_core=$4 w_gen=$5 w_st=$6 w_err=$7 w_run=$8
  if awk -v r="$w_run" 'BEGIN { exit !(r > 3.6) }'; then NOTES+=("$c: other work ran during at least one wavegate round (up to $w_run runnable tasks on average; about 3 is quiet: the server, wrk and the sampler)"); fi
  if [ $((w_st + w_err)) -gt 0 ]; then NOTES+=("$c: wavegate had $w_st non-2xx answers and $w_err socket errors"); fi
  if [ "$w_gen" -ge 90 ]; then NOTES+=("$c: core $LOADGEN_CPU (wrk's, with any other work) was ${w_gen}% busy against wavegate: the generator may be the limit, and wavegate's figure a lower bound"); fi
  ratio=$(awk -v a="$w_rps" -v b="$e_rps" 'BEGIN { printf "%.2f×", a / b }')
  p99r=$(awk -v a="$w_p99" -v b="$e_p99" 'BEGIN { printf "%.2f×", a / b }')
  verdict=$(awk -v a="$w_rps" -v b="$e_rps" -v pa="$w_p99" -v pb="$e_p99" -v bad="$((w_st + w_err))" \
    'BEGIN { print (bad == 0 && a >= 1.5 * b && pa <= pb) ? "met" : "NOT met" }')
  echo "| $c | $(fmt_rps "$w_rps") | $(fmt_ms "$w_p50") | $(fmt_ms "$w_p99") | ${w_core}% | $edge_cols | $ratio | $p99r | $verdict | $floor_cols |"
done
echo
for c in $CELLS; do echo "- $c: $(cell_title "$c")"; done
echo "- floor: a minimal axum server answering wavegate's bytes for the cell, on the same core (crates/wavegate/examples/http_floor.rs); ÷ floor is each server's req/s as a share of it."
echo "- core: core $SERVER_CPU's busy time during the cell (the server's own work plus the kernel's; 100% = saturated)."
echo "- p50/p99: wrk's closed-loop latency at saturation ($CONNECTIONS connections always busy), so p99 mostly reflects queueing."
echo "- cores $SERVER_CPU/$LOADGEN_CPU busy with no load (other work on the machine): ${QUIET[0]}; ${QUIET[1]}."
for n in "${NOTES[@]}"; do echo "- NOTE $n"; done
