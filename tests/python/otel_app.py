"""A checkout service instrumented the standard way, with no wavegate code: OpenFeature with its
OFREP provider (wavegate answers), OpenFeature's OpenTelemetry tracing hook (an evaluation event
on the active span), and the OpenTelemetry SDK exporting spans over OTLP/HTTP (to wavegate).

Usage: otel_app.py BASE_URL TOKEN FIRST_USER USERS FAIL_NEW
  Serves users FIRST_USER .. FIRST_USER+USERS-1, one `POST /checkout` span each. With FAIL_NEW=1,
  requests served the new checkout fail (span status ERROR). Prints 'served N on, M off'.
"""

import sys

from openfeature import api
from openfeature.contrib.hook.opentelemetry import TracingHook
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

base_url, token = sys.argv[1], sys.argv[2]
first, users, fail_new = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
auth = {"Authorization": f"Bearer {token}"}

# The ten lines an application needs (README "OpenTelemetry"):
tracing = TracerProvider(resource=Resource.create({"service.name": "checkout-service"}))
tracing.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base_url}/v1/traces", headers=auth)))
trace.set_tracer_provider(tracing)
api.set_provider(OFREPProvider(base_url, headers_factory=lambda: auth))
api.add_hooks([TracingHook()])
flags = api.get_client()
tracer = trace.get_tracer("checkout-service")

on = off = 0
for i in range(first, first + users):
    with tracer.start_as_current_span("POST /checkout") as span:
        new_checkout = flags.get_boolean_value("checkout", False, EvaluationContext(f"user-{i}"))
        if new_checkout:
            on += 1
            if fail_new:
                span.set_status(Status(StatusCode.ERROR, "payment failed"))
        else:
            off += 1

tracing.force_flush()
tracing.shutdown()
print(f"served {on} on, {off} off")
