"""The ops endpoints every worker serves: /healthz, /readyz (every tenant database answers), /metrics."""

from __future__ import annotations

from pathlib import Path

import httpx

from casem.adapters.storage.database import open_tenant_database
from casem.services.common.ops import database_readiness, ops_app
from casem.topology.tenants import DatabaseEndpoints


async def test_readyz_names_the_tenant_whose_database_does_not_answer(tmp_path: Path) -> None:
    healthy = open_tenant_database("case-management", DatabaseEndpoints(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"))
    # Nothing listens on port 1: the on-call database is down.
    down = open_tenant_database("on-call", DatabaseEndpoints("postgresql+psycopg://casem@127.0.0.1:1/none"))
    try:
        app = ops_app(database_readiness({"case-management": healthy, "on-call": down}))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ops") as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert list(ready.json()["failures"]) == ["on-call"]
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200 and "python_info" in metrics.text

        app = ops_app(database_readiness({"case-management": healthy}))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ops") as client:
            assert (await client.get("/readyz")).json() == {"status": "ready"}
    finally:
        await healthy.dispose()
        await down.dispose()
