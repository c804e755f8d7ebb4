"""Server spans for casem's gRPC and HTTP APIs: each call continues the caller's trace (W3C `traceparent`
in the gRPC metadata or the HTTP headers) or starts one. Ingress is where a case's trace begins."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from opentelemetry.trace import SpanKind, Status, StatusCode

from casem.observability import TRACE_KEYS, context_from, tracer

TRACED_PACKAGE = "casem."  # casem's own services; health checks and reflection are not traced


class GrpcTracing(grpc.aio.ServerInterceptor):
    """A SERVER span around each unary call of a casem service."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = (handler_call_details.method or "").lstrip("/")  # "casem.v1.CaseAPI/IngestCase"
        if handler is None or handler.unary_unary is None or not method.startswith(TRACED_PACKAGE):
            return handler
        carrier = {k: v for k, v in handler_call_details.invocation_metadata or () if k in TRACE_KEYS}
        service, _, rpc = method.partition("/")
        behavior = handler.unary_unary

        async def traced(request: Any, context: grpc.aio.ServicerContext) -> Any:
            attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": rpc}
            with tracer().start_as_current_span(
                method, context=context_from(carrier), kind=SpanKind.SERVER, attributes=attributes
            ) as span:
                response = await behavior(request, context)
                code = context.code()
                if code not in (None, grpc.StatusCode.OK):
                    span.set_status(Status(StatusCode.ERROR, str(code)))
                return response

        return grpc.unary_unary_rpc_method_handler(
            traced,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class HttpTracing:
    """ASGI middleware: a SERVER span per API request, named after the matched route."""

    def __init__(self, app: Any, prefix: str = "/api/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        carrier = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope.get("headers", ())
            if k.decode("latin-1") in TRACE_KEYS
        }
        method = scope.get("method", "GET")
        attributes = {"http.request.method": method, "url.path": scope.get("path", "")}
        with tracer().start_as_current_span(
            f"{method} {scope.get('path', '')}",
            context=context_from(carrier),
            kind=SpanKind.SERVER,
            attributes=attributes,
        ) as span:

            async def send_and_observe(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                    if message["status"] >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self.app(scope, receive, send_and_observe)
            finally:
                route = getattr(scope.get("route"), "path", None)  # set by the router once it matched
                if route:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
