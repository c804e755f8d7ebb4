"""`casem run case-chat-interactions`: the gRPC service, the Slack/Teams bridges and the inbox worker in one
process, with /healthz, /readyz and /metrics on the ops port."""

from __future__ import annotations

import asyncio
import contextlib
import signal
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
from casem.services.case_chat_interactions.bridge.worker import InboxWorker, InboxWriter
from casem.services.case_chat_interactions.server import create_bound_server
from casem.services.common.ops import database_readiness, serve_ops

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
    poll_s: float = 1.0,
) -> Bridge:
    settings = settings or BridgeSettings.from_env()
    api = api or SlackWebApi(settings.slack_api_url)
    box = box or secret_box_from_env()
    worker = InboxWorker(ctx, SlackFlows(ctx, api, box, settings), api, poll_s=poll_s)
    writer = InboxWriter(ctx)
    app = create_bridge_app(ctx, settings, worker, writer, api, box, TeamsBridge(ctx, settings))
    return Bridge(app, worker, writer, api, box, settings)


async def run_chat_interactions(
    ctx: AppContext, host: str, grpc_port: int, http_port: int, ops_port: int, *, stop: asyncio.Event | None = None
) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    bridge = build_bridge(ctx)
    server, port = create_bound_server(ctx, f"{host}:{grpc_port}", settings=bridge.settings)
    await server.start()
    http = uvicorn.Server(uvicorn.Config(bridge.app, host=host, port=http_port, log_level="warning"))
    http.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # this function owns signals
    tasks = [
        asyncio.create_task(http.serve()),
        asyncio.create_task(bridge.worker.run(stop)),
        asyncio.create_task(serve_ops(database_readiness(ctx.databases), host, ops_port, stop)),
    ]
    log.info("case-chat-interactions serving", grpc_port=port, http_port=http_port, ops_port=ops_port)
    try:
        await stop.wait()
    finally:
        http.should_exit = True
        await server.stop(SHUTDOWN_GRACE_S)
        await asyncio.gather(*tasks, return_exceptions=True)
        await bridge.close()
        await ctx.close()
        log.info("case-chat-interactions stopped")
