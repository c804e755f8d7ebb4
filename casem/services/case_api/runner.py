"""Run case-api: the HTTP API and (when available) the gRPC API in one asyncio loop, with graceful shutdown."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
import uvicorn

from casem.app.context import AppContext
from casem.services.case_api.http.app import create_app
from casem.services.case_api.http.server import server_config

log = structlog.get_logger("case-api")

SHUTDOWN_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class Listen:
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    grpc_address: str | None = "127.0.0.1:50051"


async def _start_grpc(context: AppContext, address: str) -> Any | None:
    try:
        from casem.services.case_api.grpc.server import create_server
    except ImportError:  # the gRPC server module is optional until it is built
        log.warning("grpc server not available; serving HTTP only")
        return None
    server = await _maybe_await(create_server(context, address))
    await server.start()
    return server


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


async def serve(
    context: AppContext,
    listen: Listen,
    on_ready: Callable[[str, str | None], Awaitable[None] | None] | None = None,
    *,
    close_context: bool = True,
    app_state: dict[str, Any] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM, then stop taking requests and let in-flight ones finish."""
    app = create_app(context)
    for name, value in (app_state or {}).items():  # e.g. the blob store and the attachment lifecycle
        setattr(app.state, name, value)
    config = server_config(
        app,
        listen.http_host,
        listen.http_port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=int(SHUTDOWN_GRACE_SECONDS),
    )
    http = uvicorn.Server(config)
    http.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # we own the signals
    grpc_server = await _start_grpc(context, listen.grpc_address) if listen.grpc_address else None

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    http_task = asyncio.create_task(http.serve())
    while not http.started:
        if http_task.done():
            await http_task  # surfaces the bind error
            raise RuntimeError(f"HTTP server failed to start on {listen.http_host}:{listen.http_port}")
        await asyncio.sleep(0.05)
    url = f"http://{listen.http_host}:{http.servers[0].sockets[0].getsockname()[1]}"
    log.info("case-api ready", http=url, grpc=listen.grpc_address if grpc_server else None)
    if on_ready is not None:
        await _maybe_await(on_ready(url, listen.grpc_address if grpc_server else None))

    await stop.wait()
    log.info("case-api shutting down", grace_seconds=SHUTDOWN_GRACE_SECONDS)
    http.should_exit = True
    if grpc_server is not None:
        await grpc_server.stop(SHUTDOWN_GRACE_SECONDS)
    await http_task
    if close_context:
        await context.close()
