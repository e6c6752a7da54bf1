#!/usr/bin/env bash
# Creates .venv with the real OpenFeature Python SDK and OFREP provider, OpenFeature's
# OpenTelemetry tracing hook with the OpenTelemetry SDK and its OTLP/HTTP exporter, and the
# Unleash Python SDK (UnleashClient, which evaluates with the Yggdrasil engine), that the tests
# drive; and CycloneDX's SBOM generator (cyclonedx-py), whose SBOM of this environment the
# vulnerability-gate test feeds to `wavegate rollout start --sbom`.
# Idempotent: does nothing when the pinned versions are already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
want="openfeature-sdk==0.10.0 openfeature-provider-ofrep==0.3.0 UnleashClient==6.9.1
  openfeature-hooks-opentelemetry==0.3.1 opentelemetry-sdk==1.38.0
  opentelemetry-exporter-otlp-proto-http==1.38.0 cyclonedx-bom==7.5.0"
if [ -x .venv/bin/python ] && .venv/bin/python -c "import openfeature.contrib.provider.ofrep, UnleashClient, openfeature.contrib.hook.opentelemetry, opentelemetry.exporter.otlp.proto.http.trace_exporter, cyclonedx_py" 2>/dev/null; then
  exit 0
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check $want
echo "python test dependencies installed in .venv"
