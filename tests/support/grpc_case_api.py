"""The case-api gRPC server on a free loopback port in a thread of its own, and orgs to call it as (their keys as
gRPC metadata)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from casem.app.context import AppContext
from casem.app.identity.service import BootstrapCredentials, bootstrap_org
from casem.services.case_api.grpc.server import create_bound_server
from casem.topology.tenants import DatabaseEndpoints

SHUTDOWN_GRACE_SECONDS = 5.0


class GrpcLiveServer:
    """create_server() on a free loopback port, served by its own event loop in a background thread."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="case-api-grpc-test-server", daemon=True)

    @classmethod
    def open(cls, endpoints: dict[str, DatabaseEndpoints]) -> GrpcLiveServer:
        return cls(AppContext.open(endpoints))

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        server, self.port = create_bound_server(self.context, "127.0.0.1:0")
        await server.start()
        self._stopping = asyncio.Event()
        self._ready.set()
        await self._stopping.wait()
        await server.stop(SHUTDOWN_GRACE_SECONDS)
        await self.context.close()

    def start(self) -> GrpcLiveServer:
        self.thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"case-api gRPC test server did not start: {self._error!r}")
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on the server's loop (where its database engines live) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def stop(self) -> None:
        if self._stopping is not None:
            self.loop.call_soon_threadsafe(self._stopping.set)
        self.thread.join(timeout=30)


@dataclass(frozen=True)
class Org:
    creds: BootstrapCredentials

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("dd-api-key", self.creds.api_key), ("dd-application-key", self.creds.app_key))

    @property
    def org_id(self) -> str:
        return self.creds.org_id

    @property
    def user_id(self) -> str:
        return self.creds.user_id


def new_org(server: GrpcLiveServer) -> Org:
    async def _bootstrap() -> BootstrapCredentials:
        async with server.context.uow() as uow:
            creds = await bootstrap_org(uow, f"org-{uuid.uuid4().hex[:6]}", "admin@example.com")
            await uow.commit()
            return creds

    return Org(server.call(_bootstrap()))


def unique_key(prefix: str = "G") -> str:
    return (prefix + uuid.uuid4().hex[:9]).upper()[:10]
