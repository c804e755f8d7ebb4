"""Structured logs (JSON lines via structlog) and traces (OpenTelemetry) shared by every casem service."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_configured = False


def configure_logging(service: str, level: str | None = None) -> None:
    """JSON logs to stderr, one object per line, with the service name and ISO timestamps."""
    global _configured
    if _configured:
        return
    level_name = (level or os.environ.get("CASEM_LOG_LEVEL", "INFO")).upper()
    logging.basicConfig(stream=sys.stderr, level=level_name, format="%(message)s")
    for chatty in ("alembic", "httpx", "aiosqlite"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # Never render local variables: they may hold secrets, and ORM objects that lazy-load.
            structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level_name)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    _configured = True


# --- traces ----------------------------------------------------------------------------------------
#
# One case is one trace: the span that receives it (gRPC intake, the HTTP or gRPC API) starts it, and its
# context travels as W3C trace context (`traceparent`, `tracestate`) through gRPC metadata, the bus
# message headers and the outbox envelope (CloudEvents' distributed tracing extension), then through
# Temporal's workflow headers. Consumers continue a trace that arrives; they never start one.
#
# Export is off unless OTEL_EXPORTER_OTLP_ENDPOINT is set (then OTLP/gRPC, batched). Without a tracer
# provider the API is a no-op, yet a context that arrives is still passed on unchanged.

TRACE_KEYS: tuple[str, ...] = ("traceparent", "tracestate")
_PROPAGATOR = TraceContextTextMapPropagator()
_tracing_configured = False


def configure_tracing(service: str, *, exporter: Any = None, env: Mapping[str, str] | None = None) -> bool:
    """Install the process's tracer provider when there is somewhere to send spans: OTLP when
    OTEL_EXPORTER_OTLP_ENDPOINT is set, or `exporter` (tests pass an in-memory one, exported at once).
    Returns whether spans are recorded. Once per process: later calls only add an `exporter`."""
    global _tracing_configured
    env = os.environ if env is None else env
    if _tracing_configured:
        if exporter is not None:  # one more destination for the process's spans
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor

            trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[attr-defined]
        return True
    if exporter is None and not env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", service)}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # reads OTEL_EXPORTER_OTLP_*
    trace.set_tracer_provider(provider)
    _tracing_configured = True
    return True


def tracer() -> trace.Tracer:
    return trace.get_tracer("casem")


def trace_context(span: trace.Span | None = None) -> dict[str, str]:
    """The W3C trace context of `span` (default: the current span) as plain strings ({} without a trace)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span) if span is not None else None)
    return {k: v for k, v in carrier.items() if k in TRACE_KEYS}


def context_from(carrier: Mapping[str, str] | None) -> otel_context.Context | None:
    """The context a carrier (metadata, headers, an envelope) holds; None when it holds no trace."""
    if not carrier or not carrier.get("traceparent"):
        return None
    return _PROPAGATOR.extract({k: carrier[k] for k in TRACE_KEYS if carrier.get(k)})


def bus_headers(span: trace.Span | None = None) -> tuple[tuple[str, bytes], ...]:
    """The trace context of `span` (default: the current span) as bus message headers."""
    if span is None and trace.get_current_span() is trace.INVALID_SPAN:
        return ()
    return tuple((k, v.encode()) for k, v in trace_context(span).items())


def start_span(
    name: str, parent: otel_context.Context | None, kind: trace.SpanKind, attributes: Mapping[str, Any] | None = None
) -> trace.Span | None:
    """A span continuing `parent`'s trace, not made current (the caller ends it); None without a trace."""
    if parent is None:
        return None
    return tracer().start_span(name, context=parent, kind=kind, attributes=dict(attributes or {}))


def context_from_headers(headers: Sequence[tuple[str, bytes]]) -> otel_context.Context | None:
    return context_from({k: v.decode(errors="replace") for k, v in headers if k in TRACE_KEYS})


@contextlib.contextmanager
def continued_span(
    name: str, parent: otel_context.Context | None, kind: trace.SpanKind, attributes: Mapping[str, Any] | None = None
) -> Iterator[trace.Span | None]:
    """A span continuing the trace `parent` holds, current while the block runs; no span (None) when the
    work arrived without a trace: consumers do not start traces."""
    if parent is None:
        yield None
        return
    with tracer().start_as_current_span(name, context=parent, kind=kind, attributes=dict(attributes or {})) as span:
        yield span
