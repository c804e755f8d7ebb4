"""The unit of work keeps every aggregate it saw until commit, so no recorded event is lost to GC."""

from __future__ import annotations

import gc
from pathlib import Path

import sqlalchemy as sa

from casem.adapters.storage.tables import domain_events
from casem.app.cases.service import NewCase, create_case, get_case
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org
from casem.app.projects.service import create_project
from tests.support.databases import tenant_endpoints


async def test_events_of_an_aggregate_the_caller_dropped_still_commit(tmp_path: Path) -> None:
    with tenant_endpoints("sqlite", tmp_path) as endpoints:
        ctx = AppContext.open(endpoints)
        try:
            async with ctx.uow() as uow:
                creds = await bootstrap_org(uow, "gc", "gc@example.com")
                project = await create_project(uow, creds.org_id, creds.user_id, key="GC", name="GC")
                case_id = (await create_case(uow, creds.org_id, creds.user_id, NewCase(project.id, "t"))).id
                await uow.commit()
            async with ctx.uow() as uow:
                before = await uow.scalar(sa.select(sa.func.count()).select_from(domain_events))
                # Load, record an event, and drop every reference before commit.
                (await get_case(uow, creds.org_id, case_id)).record_deleted(creds.user_id)
                gc.collect()
                await uow.commit()
            async with ctx.uow(read_only=True) as uow:
                after = await uow.scalar(sa.select(sa.func.count()).select_from(domain_events))
                types = await uow.scalars(sa.select(domain_events.c.type).order_by(domain_events.c.seq.desc()))
            assert after == before + 1
            assert types[0] == "com.casem.case.deleted.v1"
        finally:
            await ctx.close()
