"""The operations endpoint every non-HTTP casem service serves: /healthz, /readyz, /metrics."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from casem.services.common.listen import bind_tcp, managed_uvicorn

ReadinessCheck = Callable[[], Awaitable[dict[str, str]]]  # returns failures by component; empty = ready


def ops_app(readiness: ReadinessCheck) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        failures = await readiness()
        if failures:
            return JSONResponse({"status": "unavailable", "failures": failures}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def start_ops(readiness: ReadinessCheck, host: str, port: int, stop: asyncio.Event) -> asyncio.Task[None]:
    """Bind the port now (a taken one raises PortInUse here, not later in the task), serve until `stop`."""
    sock = bind_tcp(host, port, "ops endpoint")
    return asyncio.create_task(serve_ops(readiness, host, port, stop, sock=sock))


async def serve_ops(
    readiness: ReadinessCheck, host: str, port: int, stop: asyncio.Event, *, sock: socket.socket | None = None
) -> None:
    """Serve until `stop`, on `sock` when given (see start_ops), else on a socket bound here."""
    sock = sock or bind_tcp(host, port, "ops endpoint")
    server = managed_uvicorn(uvicorn.Config(ops_app(readiness), host=host, port=port, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await stop.wait()
    server.should_exit = True
    await task
    sock.close()


def database_readiness(databases: Mapping[str, Any]) -> ReadinessCheck:
    """Ready when every tenant database answers a trivial query; the failures name the tenant."""

    async def check() -> dict[str, str]:
        failures = {}
        for name, db in databases.items():
            try:
                async with db.reader.connect() as conn:
                    await conn.execute(sa.text("SELECT 1"))
            except Exception as exc:  # readiness reports, it does not raise
                failures[name] = str(exc)
        return failures

    return check


def all_of(*checks: ReadinessCheck) -> ReadinessCheck:
    """Ready when every check is: their failures together."""

    async def check() -> dict[str, str]:
        failures: dict[str, str] = {}
        for one in checks:
            failures |= await one()
        return failures

    return check


class EngineWaits:
    """The engines a worker is waiting for right now, for its readiness and its log.

    A worker that waits in place for an engine (rather than exiting) calls `waiting` at each wait and `back` once the
    engine answered; each logs only when the state changes, so a long outage is two lines, not one per retry.
    `readiness` reports the engines still awaited (not ready while any is)."""

    def __init__(self, logger: Any, service: str) -> None:
        self._log = logger
        self._service = service
        self._away: dict[str, str] = {}  # engine -> the last error seen

    def waiting(self, engine: str, error: BaseException) -> None:
        if engine not in self._away:
            self._log.warning("engine unavailable; waiting", service=self._service, engine=engine, error=str(error))
        self._away[engine] = str(error)[:500]

    def back(self, *engines: str) -> None:
        for engine in engines or tuple(self._away):
            if self._away.pop(engine, None) is not None:
                self._log.info("engine back; resuming", service=self._service, engine=engine)

    @property
    def service(self) -> str:
        return self._service

    @property
    def away(self) -> dict[str, str]:
        return dict(self._away)

    async def readiness(self) -> dict[str, str]:
        return {f"{engine} (waiting)": error for engine, error in self._away.items()}
