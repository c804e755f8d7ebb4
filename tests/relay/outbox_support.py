"""What the relay tests share: a one-tenant context on a chosen engine, the count of unpublished outbox rows, a wait
for the outbox to drain, and a commit made by a separate process (no in-process wake-up reaches the relay)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import sqlalchemy as sa

from casem.adapters.storage.tables import domain_events_pending
from casem.app.context import AppContext
from casem.topology.tenants import CASE_MANAGEMENT
from tests.support.databases import tenant_endpoints


@contextlib.asynccontextmanager
async def tenant_context(backend: str, tmp_path: Path) -> AsyncIterator[AppContext]:
    """The case-management tenant alone, on "sqlite" (a file) or "postgres" (a fresh database)."""
    with tenant_endpoints(backend, tmp_path) as endpoints:
        ctx = AppContext.open({CASE_MANAGEMENT: endpoints[CASE_MANAGEMENT]})
        try:
            yield ctx
        finally:
            await ctx.close()


async def unpublished(ctx: AppContext) -> int:
    async with ctx.uow(read_only=True) as uow:
        return await uow.scalar(sa.select(sa.func.count()).select_from(domain_events_pending))


async def published_within(ctx: AppContext, seconds: float, poll_s: float = 0.01) -> bool:
    """Whether the outbox is empty within `seconds` (looked at every `poll_s`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await unpublished(ctx) == 0:
            return True
        await asyncio.sleep(poll_s)
    return await unpublished(ctx) == 0


async def commit_in_another_process(ctx: AppContext, org: str) -> None:
    """A new org with a case, created by a separate Python process (its own engines and connections)."""
    master = ctx.databases[CASE_MANAGEMENT].endpoints.master
    env = {**os.environ, "CASEM_TEST_ENDPOINTS": json.dumps({CASE_MANAGEMENT: master}), "PYTHONPATH": os.getcwd()}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "tests.relay.commit_elsewhere", org, env=env)
    assert await asyncio.wait_for(process.wait(), 60) == 0
