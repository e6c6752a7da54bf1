#!/usr/bin/env bash
# Installs what the browser tests need: Debian's Chromium (if missing), and from npm into
# tests/browser/node_modules (exact versions from the lockfile) playwright-core and the browser
# SDKs the tests run (unleash-proxy-client, the OpenFeature web SDK and its OFREP provider,
# unleash-client for Node, oidc-provider, the OpenID provider the sign-in tests run, and
# axe-core, the accessibility checker the dashboard test runs).
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
missing=0
for package in playwright-core unleash-proxy-client unleash-client @openfeature/web-sdk @openfeature/ofrep-web-provider oidc-provider axe-core; do
  [ -d "tests/browser/node_modules/$package" ] || missing=1
done
if [ "$missing" = 1 ]; then
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
