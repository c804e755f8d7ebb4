"""Per-request metrics and rate-limit headers, as a plain ASGI middleware.

A plain ASGI middleware rather than Starlette's `BaseHTTPMiddleware` (`@app.middleware("http")`): that one runs
the rest of the app in a task of its own and streams the answer back through a memory channel, which cost every
request more CPU than the point select a GET case makes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Histogram

REQUESTS = Counter("casem_http_requests_total", "HTTP requests served", ["method", "route", "status"])
LATENCY = Histogram("casem_http_request_seconds", "HTTP request latency", ["method", "route"])
# Label values come from fixed sets only: any method a client invents is "other", any path no route
# matches is "unmatched", so no request can add series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
RATE_LIMIT_LIMIT = b"x-ratelimit-limit"


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


class ObserveRequests:
    """Counts each answered request and times it (labelled by the matched route), and puts the rate-limit
    decision the request's authentication took (`request.state.rate_limit`) on the answer as Datadog's
    headers, unless the answer already has them (a 429 carries its own). A request whose error escapes the app
    is not counted here (the server's error middleware answers it)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})  # what request.state writes to, further in
        status = 500

        async def send_with_headers(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                decision = state.get("rate_limit")
                if decision is not None:
                    headers = list(message.get("headers", ()))
                    if not any(name.lower() == RATE_LIMIT_LIMIT for name, _ in headers):
                        added = decision.headers().items()
                        headers += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in added]
                        message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
        path = getattr(scope.get("route"), "path", "unmatched")
        method = method_label(scope.get("method", ""))
        REQUESTS.labels(method, path, str(status)).inc()
        LATENCY.labels(method, path).observe(time.perf_counter() - started)
