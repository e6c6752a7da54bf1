#!/usr/bin/env bash
# Installs what the dashboard's browser test needs: Debian's Chromium (if missing) and
# playwright-core from npm into tests/browser/node_modules (exact versions from the lockfile).
# The test drives /usr/bin/chromium; playwright's own browser download is never used.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  else
    echo "chromium is missing: install Debian's chromium package" >&2
    exit 1
  fi
fi
if ! command -v node >/dev/null 2>&1; then
  echo "node is missing: install Node.js (20 or newer)" >&2
  exit 1
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
