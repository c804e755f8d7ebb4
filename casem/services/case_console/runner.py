"""Run case-console: the web console on HTTP, its live feed on the bus, and (alone) the ops endpoints."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
import uvicorn

from casem.adapters.bus import Bus
from casem.app.context import AppContext
from casem.services.case_console.app import create_app
from casem.services.case_console.live import LiveFeed
from casem.services.case_console.oidc import oidc_from_env
from casem.services.common.listen import bind_tcp, managed_uvicorn
from casem.services.common.ops import EngineWaits, all_of, database_readiness, start_ops

log = structlog.get_logger("case-console")

SHUTDOWN_GRACE_SECONDS = 10


@dataclass(frozen=True)
class ConsoleOptions:
    host: str = "127.0.0.1"
    port: int = 8081
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto: cookies become Secure and __Host- prefixed.
    trust_forwarded_proto: bool = False


def options_from_env(host: str, port: int) -> ConsoleOptions:
    return ConsoleOptions(host, port, os.environ.get("CASEM_CONSOLE_TRUST_FORWARDED_PROTO") == "1")


def build_app(
    context: AppContext, bus: Bus | None, options: ConsoleOptions, *, waits: EngineWaits | None = None, **state: Any
) -> Any:
    live = LiveFeed(bus, list(context.databases), waits) if bus is not None else None
    return create_app(
        context, live=live, trust_forwarded_proto=options.trust_forwarded_proto, oidc=oidc_from_env(), **state
    )


async def start_console(
    context: AppContext, bus: Bus | None, options: ConsoleOptions, *, waits: EngineWaits | None = None, **state: Any
) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    """Start serving in this loop; returns the server (set should_exit to stop), its task and its URL. `waits`: the
    live feed's (it waits in the background for a bus that is away)."""
    sock = bind_tcp(options.host, options.port, "case-console HTTP")  # a taken port: PortInUse, nothing started
    app = build_app(context, bus, options, waits=waits, **state)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        host=options.host,
        port=port,
        log_level="warning",
        lifespan="on",
        proxy_headers=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    server = managed_uvicorn(config)  # the caller owns the signals
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            raise RuntimeError(f"the console did not start on {options.host}:{options.port}")
        await asyncio.sleep(0.05)
    return server, task, f"http://{options.host}:{port}"


async def run_console(
    context: AppContext,
    bus: Bus | None,
    options: ConsoleOptions,
    *,
    ops_port: int,
    on_ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
    **state: Any,
) -> None:
    """`casem run case-console`: serve until `stop` (without one: SIGTERM/SIGINT), then let in-flight requests
    finish."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    waits = EngineWaits(log, "case-console")  # not ready while the live feed waits for the bus, naming it
    readiness = all_of(database_readiness(context.databases), waits.readiness)
    ops = start_ops(readiness, options.host, ops_port, stop)  # a taken port fails here
    server, task, url = await start_console(context, bus, options, waits=waits, **state)
    log.info("case-console ready", url=url)
    if on_ready is not None:
        on_ready(url)
    await stop.wait()
    server.should_exit = True
    await task
    await ops
    if bus is not None:
        await bus.close()
    await context.close()
