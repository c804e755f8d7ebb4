"""Rate limits hold across case-api replicas on PostgreSQL: two apps, each with its own engine (as two processes
would have), on one database, share each org's and key's window; on embedded SQLite the counter stays in the
process (one process serves everything there)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org
from casem.services.case_api.http.app import create_app
from casem.services.common.rate_limit import RateLimiter, SharedRateLimiter
from casem.topology.datacenters import RateLimits
from tests.support.databases import tenant_endpoints

TIGHT = RateLimits(period_s=3600, per_org=8, per_key=5)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, list[FastAPI], dict]]:
    """Two case-api apps on one set of databases, each with its own context and engines, and an org's keys."""
    with tenant_endpoints(request.param, tmp_path) as endpoints:
        contexts = [AppContext.open(endpoints), AppContext.open(endpoints, migrate=False)]
        try:
            async with contexts[0].uow() as uow:
                creds = await bootstrap_org(uow, "Replicated", "admin@replicated.test")
                await uow.commit()
            apps = [create_app(ctx) for ctx in contexts]
            for app in apps:
                app.state.rate_limiter.limits = TIGHT
            yield request.param, apps, {"DD-API-KEY": creds.api_key, "DD-APPLICATION-KEY": creds.app_key}
        finally:
            for ctx in contexts:
                await ctx.close()


async def _get(app: FastAPI, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://replica") as http:
        return await http.get("/api/v2/cases/projects", headers=headers)


async def test_two_replicas_share_one_window_on_postgresql(replicas: tuple[str, list[FastAPI], dict]) -> None:
    backend, apps, headers = replicas
    if backend == "sqlite":  # one process serves everything: the counter stays in it (test_limits.py tests it)
        assert all(type(app.state.rate_limiter) is RateLimiter for app in apps)
        return
    assert all(isinstance(app.state.rate_limiter, SharedRateLimiter) for app in apps)
    # Alternate between the replicas: the key's 5 requests are counted once, whichever replica serves them.
    answers = [await _get(apps[i % 2], headers) for i in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert [int(a.headers["x-ratelimit-remaining"]) for a in answers] == [4, 3, 2, 1, 0]
    for app in apps:  # the sixth is refused by either replica, as it would be by one process
        refused = await _get(app, headers)
        assert refused.status_code == 429, refused.text
        assert refused.headers["x-ratelimit-name"] == "casem-key" and refused.headers["x-ratelimit-remaining"] == "0"
        assert 0 < int(refused.headers["retry-after"]) <= 3600


# Embedded SQLite is one process: test_limits.py covers its counter.
@pytest.mark.parametrize("replicas", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_refusals_use_nothing_up_across_replicas(replicas: tuple[str, list[FastAPI], dict]) -> None:
    _, apps, headers = replicas
    for i in range(5):
        assert (await _get(apps[i % 2], headers)).status_code == 200
    for app in apps * 3:  # refused on the key: the org's window must not be charged for them
        assert (await _get(app, headers)).status_code == 429
    # A new window for the key alone (as if another key of the org): the org still has 8 - 5 = 3 left.
    for app in apps:
        app.state.rate_limiter.limits = RateLimits(period_s=3600, per_org=8, per_key=0)
    answers = [await _get(apps[i % 2], headers) for i in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].headers["x-ratelimit-name"] == "casem-org"
