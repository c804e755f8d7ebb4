"""`casem run case-chat-interactions`: the gRPC service, the Slack/Teams bridges and the inbox worker in one
process, with /healthz, /readyz and /metrics on the ops port."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
import uvicorn
from fastapi import FastAPI

from casem.adapters.chat.slack_web import SlackWebApi
from casem.adapters.secrets import SecretBox, secret_box_from_env
from casem.app.context import AppContext
from casem.services.case_chat_interactions.bridge.app import create_bridge_app
from casem.services.case_chat_interactions.bridge.flows import SlackFlows
from casem.services.case_chat_interactions.bridge.settings import BridgeSettings
from casem.services.case_chat_interactions.bridge.teams import TeamsBridge
from casem.services.case_chat_interactions.bridge.worker import IDLE_POLL_MAX_S, POLL_S, InboxWorker, InboxWriter
from casem.services.case_chat_interactions.server import create_bound_server
from casem.services.common.listen import bind_tcp, managed_uvicorn
from casem.services.common.ops import database_readiness, start_ops

log = structlog.get_logger("case-chat-interactions")
SHUTDOWN_GRACE_S = 10.0


@dataclass
class Bridge:
    app: FastAPI
    worker: InboxWorker
    writer: InboxWriter
    api: SlackWebApi
    box: SecretBox
    settings: BridgeSettings

    async def close(self) -> None:
        await self.writer.close()
        await self.api.close()


def build_bridge(
    ctx: AppContext,
    settings: BridgeSettings | None = None,
    *,
    api: SlackWebApi | None = None,
    box: SecretBox | None = None,
    poll_s: float = POLL_S,
    max_poll_s: float = IDLE_POLL_MAX_S,
) -> Bridge:
    settings = settings or BridgeSettings.from_env()
    api = api or SlackWebApi(settings.slack_api_url)
    box = box or secret_box_from_env()
    worker = InboxWorker(ctx, SlackFlows(ctx, api, box, settings), api, poll_s=poll_s, max_poll_s=max_poll_s)
    writer = InboxWriter(ctx)
    app = create_bridge_app(ctx, settings, worker, writer, api, box, TeamsBridge(ctx, settings))
    return Bridge(app, worker, writer, api, box, settings)


@dataclass
class RunningChat:
    grpc_address: str
    bridge_url: str
    stop: Callable[[], Awaitable[None]]


async def start_chat_interactions(
    ctx: AppContext, host: str, grpc_port: int, http_port: int, stop: asyncio.Event
) -> RunningChat:
    """Bind both ports (a taken one raises PortInUse before anything runs), then serve until `stop`."""
    sock = bind_tcp(host, http_port, "case-chat-interactions bridge HTTP")
    bridge = build_bridge(ctx)
    try:
        server, port = create_bound_server(ctx, f"{host}:{grpc_port}", settings=bridge.settings)
        await server.start()
    except BaseException:
        sock.close()
        await bridge.close()
        raise
    http = managed_uvicorn(uvicorn.Config(bridge.app, host=host, port=sock.getsockname()[1], log_level="warning"))
    tasks = [asyncio.create_task(http.serve(sockets=[sock])), asyncio.create_task(bridge.worker.run(stop))]
    url = f"http://{host}:{sock.getsockname()[1]}"
    log.info("case-chat-interactions serving", grpc_port=port, bridge=url)

    async def halt() -> None:
        stop.set()
        http.should_exit = True
        await server.stop(SHUTDOWN_GRACE_S)
        await asyncio.gather(*tasks, return_exceptions=True)
        await bridge.close()
        sock.close()
        log.info("case-chat-interactions stopped")

    return RunningChat(f"{host}:{port}", url, halt)


async def run_chat_interactions(
    ctx: AppContext,
    host: str,
    grpc_port: int,
    http_port: int,
    ops_port: int,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """`casem run case-chat-interactions`: until `stop` (without one: SIGINT/SIGTERM)."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
    ops = start_ops(database_readiness(ctx.databases), host, ops_port, stop)  # first: a taken port fails early
    running = await start_chat_interactions(ctx, host, grpc_port, http_port, stop)
    try:
        await stop.wait()
    finally:
        await running.stop()
        await ops
