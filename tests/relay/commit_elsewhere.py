"""Run as a separate process (`python -m tests.relay.commit_elsewhere ORG`): creates one case through the tenants'
databases named in CASEM_TEST_ENDPOINTS (JSON, tenant → master DSN), standing in for a case-api process."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from casem.app.cases.service import NewCase, create_case
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org
from casem.app.projects.service import create_project
from casem.topology.tenants import DatabaseEndpoints


async def one_case(ctx: AppContext, org: str, project_key: str, title: str) -> None:
    """A new org with one project and one case in it (two commits, each with its outbox events)."""
    async with ctx.uow() as uow:
        creds = await bootstrap_org(uow, org, f"{org}@example.com")
        project = await create_project(uow, creds.org_id, creds.user_id, key=project_key, name=project_key.title())
        await uow.commit()
    async with ctx.uow() as uow:
        await create_case(uow, creds.org_id, creds.user_id, NewCase(project.id, title))
        await uow.commit()


async def commit_one_case(org: str) -> None:
    endpoints = {
        name: DatabaseEndpoints(master=dsn) for name, dsn in json.loads(os.environ["CASEM_TEST_ENDPOINTS"]).items()
    }
    ctx = AppContext.open(endpoints, migrate=False)
    try:
        await one_case(ctx, org, "XPR", "from another process")
    finally:
        await ctx.close()


if __name__ == "__main__":
    asyncio.run(commit_one_case(sys.argv[1]))
