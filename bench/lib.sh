# Shared by the bench scripts that start a wavegate server of their own (source it).

# Prints a flags file of flags flag-START … flag-(END-1), each with one rule (a country
# constraint and a 20/80 split): the shape the propagation, memory and write benches use.
bench_flags() {
  echo "flags:"
  for i in $(seq "$1" $(($2 - 1))); do
    printf '  flag-%05d:\n    variants: { "on": true, "off": false }\n    default: "off"\n    environments:\n      prod:\n        enabled: true\n        rules:\n          - { name: r, constraints: [{ attribute: country, op: in, values: [NO, SE, DK] }], split: { "on": 20%%, "off": 80%% } }\n' "$i"
  done
}

# Starts `BIN serve` on a fresh SQLite database in $TMP with admin token ADMIN, any further
# arguments passed before it (e.g. a `valgrind` command line); waits until it listens and sets
# PID and URL. Exits with its log if it does not start within WAIT tenths of a second (300).
bench_serve() {
  local bin=$1 admin=$2
  shift 2
  rm -f "$TMP/db"*
  WAVEGATE_BOOTSTRAP_ADMIN_TOKEN=$admin RUST_LOG=warn "$@" "$bin" serve --db "$TMP/db.sqlite" \
    --listen 127.0.0.1:0 --tick 1h > "$TMP/log" 2>&1 &
  PID=$!
  for _ in $(seq 1 "${WAIT:-300}"); do grep -qs 'wavegate listening on' "$TMP/log" && break; sleep 0.1; done
  URL=$(sed -n 's/.*wavegate listening on \(http:[^ ]*\).*/\1/p' "$TMP/log" | head -1)
  [ -n "$URL" ] || { cat "$TMP/log" >&2; kill "$PID"; exit 1; }
}
