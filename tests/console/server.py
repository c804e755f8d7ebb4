"""A real case-console on a free loopback port, with the outbox relay and the embedded bus behind it, so live
updates travel the way they do in production: commit → outbox → relay → bus → the console's live feed → SSE."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from casem.adapters.blobs import open_blob_store
from casem.adapters.bus.embedded import EmbeddedBus
from casem.app.cases.service import NewCase, create_case
from casem.app.console.accounts import set_password
from casem.app.context import AppContext
from casem.app.identity.service import BootstrapCredentials, bootstrap_org, create_user
from casem.app.outbound.service import OutboundSettings
from casem.app.projects.service import create_project
from casem.services.case_console.app import create_app
from casem.services.case_console.live import LiveFeed
from casem.services.case_event_relay.service import build_relays
from casem.topology.tenants import DatabaseEndpoints
from tests.support.api_client import TEST_HOSTS, table_resolver

PASSWORD = "correct horse battery staple"


@dataclass
class Person:
    org_id: str
    user_id: str
    email: str
    password: str = PASSWORD


@dataclass
class World:
    """One org with a signed-up person and a project."""

    creds: BootstrapCredentials
    person: Person
    project_id: str
    project_key: str


class ConsoleServer:
    def __init__(self, endpoints: dict[str, DatabaseEndpoints], workdir: Path, oidc: Any | None = None) -> None:
        self.endpoints = endpoints  # a case-api on the same databases reads what the console changed
        self.context = AppContext.open(endpoints)
        # Endpoint URLs go through the outbound guard: the test host names resolve from a fixed table.
        self.context.outbound = OutboundSettings(resolver=table_resolver(TEST_HOSTS))
        self.bus = EmbeddedBus(workdir / "bus.db")
        self.live = LiveFeed(self.bus, list(self.context.databases))
        self.app = create_app(self.context, live=self.live, blobs=open_blob_store(str(workdir / "blobs")), oidc=oidc)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, name="case-console-test-server", daemon=True)
        self._relays: list[Any] = []

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        relays, producers = await build_relays(self.context, self.bus, list(self.context.databases))
        tasks = [asyncio.create_task(r.run()) for r in relays]
        try:
            await self.server.serve()
        finally:
            for relay in relays:
                relay.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            for producer in producers:
                await producer.close()
            await self.bus.close()
            await self.context.close()

    def start(self) -> ConsoleServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("case-console test server did not start")
            time.sleep(0.02)
        self.call(asyncio.wait_for(self.live.ready.wait(), 20))
        return self

    @property
    def url(self) -> str:
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    # -- worlds ------------------------------------------------------------------------------------
    def new_world(self, project_key: str | None = None) -> World:
        async def build() -> World:
            tag = uuid.uuid4().hex[:8]
            async with self.context.uow() as uow:
                creds = await bootstrap_org(uow, f"org-{tag}", f"admin-{tag}@example.com")
                await uow.session.flush()
                await set_password(uow, creds.org_id, creds.user_id, PASSWORD)
                key = project_key or ("P" + tag.upper())[:8].replace("0", "Q")
                key = "".join(c if c.isalpha() else "X" for c in key)
                project = await create_project(uow, creds.org_id, creds.user_id, key=key, name=f"Project {key}")
                await uow.commit()
            return World(creds, Person(creds.org_id, creds.user_id, f"admin-{tag}@example.com"), project.id, key)

        return self.call(build())

    def add_person(self, world: World, name: str) -> Person:
        async def build() -> Person:
            email = f"{name.lower()}-{uuid.uuid4().hex[:6]}@example.com"
            async with self.context.uow() as uow:
                user = await create_user(uow, world.creds.org_id, email, name=name)
                await uow.session.flush()
                await set_password(uow, world.creds.org_id, user.id, PASSWORD)
                await uow.commit()
            return Person(world.creds.org_id, user.id, email)

        return self.call(build())


def new_case(server: ConsoleServer, world: World, title: str, **fields: Any) -> tuple[str, str]:
    """Open a case through the use case the API uses; returns (id, key)."""

    async def build() -> tuple[str, str]:
        async with server.context.uow() as uow:
            case = await create_case(
                uow,
                world.creds.org_id,
                world.creds.user_id,
                NewCase(project_id=world.project_id, title=title, **fields),
            )
            await uow.commit()
        return case.id, case.key

    return server.call(build())
