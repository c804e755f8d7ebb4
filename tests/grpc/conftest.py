"""A live case-api gRPC server per backend (SQLite, PostgreSQL) and fresh orgs to call it as."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from casem.app.context import AppContext
from casem.app.identity.service import BootstrapCredentials, bootstrap_org
from casem.proto_gen.casem.v1 import case_api_pb2_grpc
from casem.services.case_api.grpc.server import create_bound_server
from casem.topology.tenants import DatabaseEndpoints
from tests.support.databases import tenant_endpoints

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


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def grpc_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcLiveServer]:
    workdir: Path = tmp_path_factory.mktemp(f"case-api-grpc-{request.param}")
    with tenant_endpoints(request.param, workdir) as endpoints:
        live = GrpcLiveServer.open(endpoints).start()
        try:
            yield live
        finally:
            live.stop()


@pytest.fixture(scope="session")
def channel(grpc_server: GrpcLiveServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(grpc_server.address) as ch:
        grpc.channel_ready_future(ch).result(timeout=30)
        yield ch


@pytest.fixture(scope="session")
def stub(channel: grpc.Channel) -> case_api_pb2_grpc.CaseAPIStub:
    return case_api_pb2_grpc.CaseAPIStub(channel)


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


@pytest.fixture
def org(grpc_server: GrpcLiveServer) -> Org:
    return new_org(grpc_server)


@pytest.fixture
def other_org(grpc_server: GrpcLiveServer) -> Org:
    return new_org(grpc_server)


def unique_key(prefix: str = "G") -> str:
    return (prefix + uuid.uuid4().hex[:9]).upper()[:10]
