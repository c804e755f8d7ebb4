"""What the loopback Jira and ServiceNow servers share: a Starlette app on a free loopback port in a thread,
request validation against the subset specs in tests/integrations/specs/ (JSON Schema), signed webhook
deliveries from a background thread, 429 injection, and a count of writes per remote user."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SPECS = Path(__file__).parent / "specs"


def load_spec(name: str) -> dict[str, Any]:
    return json.loads((SPECS / name).read_text())


class SpecValidator:
    """Validates documents against a named schema of a spec's `$defs`."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def errors(self, schema_name: str, document: Any) -> list[str]:
        schema = {"$ref": f"#/$defs/{schema_name}", "$defs": self.spec["$defs"]}
        validator = jsonschema.Draft202012Validator(schema)
        return [
            f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in validator.iter_errors(document)
        ]

    def check(self, schema_name: str, document: Any) -> None:
        problems = self.errors(schema_name, document)
        if problems:
            raise AssertionError(f"{schema_name}: {problems[:3]}")


@dataclass
class Delivery:
    url: str
    status: int | None
    body: dict[str, Any]
    attempts: int


@dataclass
class WebhookSender:
    """Delivers events to registered URLs from a thread, like the remote does, retrying failures a few times.
    `paused` drops deliveries (a webhook that never arrives), recorded in `dropped`."""

    sign: Callable[[str, bytes], dict[str, str]]
    targets: list[tuple[str, str]] = field(default_factory=list)  # (url, secret)
    delivered: list[Delivery] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    paused: bool = False
    retries: int = 3

    def __post_init__(self) -> None:
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="webhook-sender", daemon=True)
        self._thread.start()
        self._idle = threading.Event()
        self._idle.set()

    def send(self, body: dict[str, Any]) -> None:
        if self.paused or not self.targets:
            if self.paused:
                self.dropped.append(body)
            return
        self._idle.clear()
        self._queue.put(body)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as http:
            while True:
                body = self._queue.get()
                if body is None:
                    return
                raw = json.dumps(body).encode()
                for url, secret in list(self.targets):
                    status = None
                    for attempt in range(1, self.retries + 1):
                        try:
                            status = http.post(url, content=raw, headers=self.sign(secret, raw)).status_code
                        except httpx.HTTPError:
                            status = None
                        if status is not None and status < 500 and status != 429:
                            break
                        time.sleep(0.2 * attempt)
                    self.delivered.append(Delivery(url, status, body, attempt))
                if self._queue.empty():
                    self._idle.set()

    def wait_idle(self, timeout: float = 30) -> None:
        assert self._idle.wait(timeout), "webhook deliveries did not finish"

    def close(self) -> None:
        self._queue.put(None)


class LoopbackServer:
    """A Starlette app on 127.0.0.1:<free port>, in a thread with its own event loop."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.RLock()
        self.writes: Counter[str] = Counter()  # remote user -> write requests
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, user)
        self.rate_limited: list[str] = []
        self._limit_next = 0
        self._retry_after = "1"
        app = Starlette(
            routes=[Route("/{path:path}", self._endpoint, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])]
        )
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve()), name=name, daemon=True)

    def start(self) -> LoopbackServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            assert time.monotonic() < deadline and self._thread.is_alive(), f"{self.name} did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)

    @property
    def url(self) -> str:
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def rate_limit(self, requests: int, retry_after: str = "1") -> None:
        """The next `requests` API calls answer 429 with this Retry-After."""
        with self.lock:
            self._limit_next = requests
            self._retry_after = retry_after

    async def _endpoint(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            if self._limit_next > 0 and not request.url.path.startswith("/oauth"):
                self._limit_next -= 1
                self.rate_limited.append(request.url.path)
                return self.too_many(self._retry_after)
            return self.handle(request.method, request.url.path, dict(request.query_params), request.headers, body)

    def too_many(self, retry_after: str) -> Response:
        return JSONResponse(
            {"errorMessages": ["Rate limit exceeded."]}, status_code=429, headers={"Retry-After": retry_after}
        )

    def handle(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes) -> Response:
        raise NotImplementedError

    def write_count(self, user: str | None = None) -> int:
        with self.lock:
            return self.writes[user] if user is not None else sum(self.writes.values())
