"""The case-chat-interactions gRPC server on a free loopback port in a thread of its own, orgs with an installed
workspace, and the internal metadata the bridges send."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from casem.app.chat import installations
from casem.app.context import AppContext
from casem.app.identity.service import BootstrapCredentials, bootstrap_org, create_user
from casem.app.projects.service import create_project
from casem.services.case_chat_interactions.bridge.settings import BridgeSettings
from casem.services.case_chat_interactions.server import create_bound_server

INTERNAL_TOKEN = "chat-bridge-test-token-0123456789"
STATE_SECRET = "state-signing-secret-for-tests"


class LiveChatGrpc:
    """create_bound_server() on a free loopback port, served by its own event loop in a background thread."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="chat-grpc-test-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        settings = BridgeSettings(slack_signing_secret=STATE_SECRET, slack_client_id="1111.2222")
        server, self.port = create_bound_server(
            self.context, "127.0.0.1:0", internal_token=INTERNAL_TOKEN, settings=settings
        )
        await server.start()
        self._stopping = asyncio.Event()
        self._ready.set()
        await self._stopping.wait()
        await server.stop(5)
        await self.context.close()

    def start(self) -> LiveChatGrpc:
        self.thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"chat gRPC test server did not start: {self._error!r}")
        return self

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def stop(self) -> None:
        if self._stopping is not None:
            self.loop.call_soon_threadsafe(self._stopping.set)
        self.thread.join(timeout=30)


@dataclass(frozen=True)
class ChatOrg:
    creds: BootstrapCredentials
    project_id: str
    project_key: str
    workspace_id: str
    bob: str  # a second user, bob@<org>.example

    @property
    def org_id(self) -> str:
        return self.creds.org_id

    @property
    def keys(self) -> tuple[tuple[str, str], ...]:
        return (("dd-api-key", self.creds.api_key), ("dd-application-key", self.creds.app_key))


async def make_chat_org(ctx: AppContext, platform: str = "slack") -> ChatOrg:
    tag = uuid.uuid4().hex[:6]
    key = ("C" + tag).upper()
    workspace = f"T{tag.upper()}"
    async with ctx.uow() as uow:
        creds = await bootstrap_org(uow, f"org-{tag}", f"admin@{tag}.example")
        bob = await create_user(uow, creds.org_id, f"bob@{tag}.example", name="Bob")
        project = await create_project(uow, creds.org_id, creds.user_id, key=key, name="Chat")
        await installations.install(
            uow, creds.org_id, creds.user_id, platform=platform, workspace_id=workspace, default_project_id=project.id
        )
        await uow.commit()
    return ChatOrg(creds, project.id, key, workspace, bob.id)


def internal(org: ChatOrg | None = None) -> tuple[tuple[str, str], ...]:
    md: tuple[tuple[str, str], ...] = (("x-casem-internal-token", INTERNAL_TOKEN),)
    return md + ((("x-casem-act-as-org", org.org_id),) if org else ())
