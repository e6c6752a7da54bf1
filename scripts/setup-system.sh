#!/usr/bin/env bash
# Installs and starts what the tests need beyond the Rust toolchain, each only when missing, so
# the README's test command passes on a machine that has only the toolchain (CI's `.ci/run`
# just calls that command). Debian packages: python3 with venv (the OpenFeature and Unleash
# Python SDKs go into .venv), prometheus (the Prometheus-sourced guardrail tests start their
# own server on a free port), chromium, nodejs and npm (the dashboard's browser test), minisign (artifact signatures); a running
# PostgreSQL at 127.0.0.1:5432 with trust auth (the store conformance suite and the replica
# tests make their own databases); cargo-nextest. Installing needs root; without it, what is
# missing is named and the script fails.
set -euo pipefail

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# minisign signs artifacts in the signature-gate tests, as a release pipeline would.
command -v minisign >/dev/null 2>&1 || missing+=(minisign)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3 python3-venv python3-pip)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
# A machine with NodeSource's nodejs (which bundles npm) must not be asked for Debian's npm.
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ! command -v pg_ctlcluster >/dev/null 2>&1 && ! (command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432); then
  missing+=(postgresql)
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing: ${missing[*]} (Debian packages); run this script as root, or install them" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# PostgreSQL at 127.0.0.1:5432 with trust auth: start the installed cluster when it is down.
if ! (command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432); then
  cluster="$(ls /etc/postgresql 2>/dev/null | head -n1)"
  if [ -n "$cluster" ]; then
    conf="/etc/postgresql/$cluster/main"
    # A cluster this script just installed asks for passwords over TCP; the tests connect as
    # postgres with trust on loopback, as the CI machines are set up. An existing cluster's
    # authentication is never changed.
    if [[ " ${missing[*]} " == *" postgresql "* ]]; then
      sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf/pg_hba.conf"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$cluster" main start || echo "note: could not start PostgreSQL" >&2
  fi
fi
for _ in $(seq 1 50); do
  pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && break
  sleep 0.2
done

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi
