"""A real case-api HTTP server on a free loopback port, in a background thread with its own event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any

import uvicorn

from casem.app.context import AppContext
from casem.services.case_api.http.app import create_app
from casem.services.case_api.http.server import server_config
from casem.topology.tenants import DatabaseEndpoints


class LiveServer:
    def __init__(self, endpoints: dict[str, DatabaseEndpoints]) -> None:
        self.context = AppContext.open(endpoints)
        self.app = create_app(self.context)
        config = server_config(self.app, "127.0.0.1", 0, log_level="warning", lifespan="on")
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
