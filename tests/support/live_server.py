"""A real case-api HTTP server on a free loopback port, in a background thread with its own event loop.

It records the status of every answer it gives on a documented route (`answers`), so the suites can check each was
documented for that route (tests/support/fixtures/case_api.py does, after every test that used the server)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any

import uvicorn
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from casem.app.context import AppContext
from casem.services.case_api.http.app import create_app
from casem.services.case_api.http.server import server_config
from casem.topology.tenants import DatabaseEndpoints


class AnswerRecorder:
    """ASGI around the app: (method, documented path, status) of each answer on a route of the OpenAPI document."""

    def __init__(self, app: Any) -> None:
        self.app: ASGIApp = app
        self.answers: list[tuple[str, str, int]] = []
        self._routes = [r for r in app.routes if isinstance(r, APIRoute) and r.include_in_schema]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        asked = dict(scope)  # as it came: routing adds to the scope

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Recorded before the answer leaves: a caller holding the answer finds it recorded (recording once
                # the app returned raced the caller's check, which CI saw fail once).
                route = next((r for r in self._routes if r.matches(asked)[0] == Match.FULL), None)
                if route is not None:
                    self.answers.append((asked["method"], route.path_format, message["status"]))
            await send(message)

        await self.app(scope, receive, sending)

    def undocumented(self, document: dict[str, Any], since: int = 0) -> list[str]:
        """`METHOD /path status` of each answer since the `since`-th whose status the document does not list there."""
        found: dict[str, None] = {}
        for method, path, status in self.answers[since:]:
            responses = document["paths"].get(path, {}).get(method.lower(), {}).get("responses", {})
            if str(status) not in responses:
                found[f"{method} {path} {status}"] = None
        return list(found)


class LiveServer:
    def __init__(self, endpoints: dict[str, DatabaseEndpoints]) -> None:
        self.context = AppContext.open(endpoints)
        self.app = create_app(self.context)
        self.recorder = AnswerRecorder(self.app)
        config = server_config(self.recorder, "127.0.0.1", 0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, name="case-api-test-server", daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve())
        self.loop.run_until_complete(self.context.close())

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("case-api test server did not start")
            time.sleep(0.02)
        return self

    @property
    def url(self) -> str:
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on the server's loop (where its database engines live) and wait for it."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
