"""Run case-api: the HTTP API and the gRPC API in one asyncio loop, with graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
import uvicorn

from casem.app.context import AppContext
from casem.services.case_api.http.app import create_app
from casem.services.case_api.http.server import server_config
from casem.services.common.listen import bind_tcp, managed_uvicorn, split_address

log = structlog.get_logger("case-api")

SHUTDOWN_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class Listen:
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    grpc_address: str | None = "127.0.0.1:50051"


@dataclass
class RunningCaseApi:
    """case-api serving; `stop()` refuses new requests and lets in-flight ones finish (up to the grace)."""

    url: str
    grpc_address: str | None
    http: uvicorn.Server
    http_task: asyncio.Task[None]
    grpc_server: Any | None

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        log.info("case-api shutting down", grace_seconds=grace)
        self.http.should_exit = True
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace)
        try:
            await asyncio.wait_for(asyncio.shield(self.http_task), grace + 1)
        except TimeoutError:  # uvicorn's own graceful timeout did not end it: stop waiting
            self.http.force_exit = True
            self.http_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.http_task


async def start_case_api(
    context: AppContext, listen: Listen, *, app_state: dict[str, Any] | None = None
) -> RunningCaseApi:
    """Bind both ports (PortInUse names the one that is taken; nothing is left running), then serve."""
    from casem.services.case_api.grpc.server import create_bound_server

    app = create_app(context)
    for name, value in (app_state or {}).items():  # e.g. the blob store and the attachment lifecycle
        setattr(app.state, name, value)
    sock = bind_tcp(listen.http_host, listen.http_port, "case-api HTTP")
    grpc_server, grpc_address = None, None
    try:
        if listen.grpc_address:
            grpc_server, port = create_bound_server(context, listen.grpc_address)
            grpc_address = f"{split_address(listen.grpc_address)[0]}:{port}"
            await grpc_server.start()
    except BaseException:
        sock.close()
        raise
    # server_config: uvicorn with the request-header deadline (casem/services/case_api/http/server.py).
    config = server_config(
        app,
        listen.http_host,
        sock.getsockname()[1],
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=int(SHUTDOWN_GRACE_SECONDS),
    )
    http = managed_uvicorn(config)  # the caller owns the signals
    http_task = asyncio.create_task(http.serve(sockets=[sock]))
    while not http.started:
        if http_task.done():
            if grpc_server is not None:
                await grpc_server.stop(0)
            await http_task  # surfaces the failure
            raise RuntimeError(f"HTTP server failed to start on {listen.http_host}:{listen.http_port}")
        await asyncio.sleep(0.02)
    url = f"http://{listen.http_host}:{sock.getsockname()[1]}"
    log.info("case-api ready", http=url, grpc=grpc_address)
    return RunningCaseApi(url, grpc_address, http, http_task, grpc_server)


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


async def serve(
    context: AppContext,
    listen: Listen,
    on_ready: Callable[[str, str | None], Awaitable[None] | None] | None = None,
    *,
    close_context: bool = True,
    app_state: dict[str, Any] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until `stop` (without one: SIGINT/SIGTERM), then stop taking requests and let in-flight ones finish."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    running = await start_case_api(context, listen, app_state=app_state)
    try:
        if on_ready is not None:
            await _maybe_await(on_ready(running.url, running.grpc_address))
        await stop.wait()
    finally:
        await running.stop()
        if close_context:
            await context.close()
