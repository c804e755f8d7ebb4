"""Tracing set-up: spans are recorded and exported over OTLP only when OTEL_EXPORTER_OTLP_ENDPOINT is set;
without it casem records nothing yet still passes on a trace context that arrives."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import os, sys
from opentelemetry import trace
from casem.observability import configure_tracing, context_from, trace_context, tracer
on = configure_tracing("probe")
provider = trace.get_tracer_provider()
processors = getattr(getattr(provider, "_active_span_processor", None), "_span_processors", ())
exporters = sorted(
    type(getattr(p, "span_exporter", None) or getattr(p, "_exporter", None)).__name__ for p in processors
)
incoming = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
with tracer().start_as_current_span("work", context=context_from(incoming)):
    passed_on = trace_context()["traceparent"]
print(on, type(provider).__name__, ",".join(exporters) or "-", passed_on.split("-")[1])
"""


def _probe(env: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.split()


def test_no_endpoint_no_spans_but_the_context_passes_on() -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    on, provider, _, trace_id = _probe(env)
    assert (on, provider) == ("False", "ProxyTracerProvider")
    assert trace_id == "0af7651916cd43dd8448eb211c80319c"


def test_an_otlp_endpoint_turns_the_exporter_on() -> None:
    import os

    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_BSP_SCHEDULE_DELAY": "60000"}
    on, provider, exporters, trace_id = _probe(env)
    assert (on, provider) == ("True", "TracerProvider")
    assert "OTLPSpanExporter" in exporters
    assert trace_id == "0af7651916cd43dd8448eb211c80319c"  # a new span, in the caller's trace
