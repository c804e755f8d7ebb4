"""The operations endpoint every non-HTTP casem service serves: /healthz, /readyz, /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

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


async def serve_ops(readiness: ReadinessCheck, host: str, port: int, stop: asyncio.Event) -> None:
    server = uvicorn.Server(uvicorn.Config(ops_app(readiness), host=host, port=port, log_level="warning"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # the service owns signals
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await task


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
