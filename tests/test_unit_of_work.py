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


async def test_every_commit_about_a_case_raises_its_revision_once(tmp_path: Path) -> None:
    from casem.adapters.storage.tables import cases
    from casem.app.timeline.service import add_comment

    with tenant_endpoints("sqlite", tmp_path) as endpoints:
        ctx = AppContext.open(endpoints)
        try:
            async with ctx.uow() as uow:
                creds = await bootstrap_org(uow, "rev", "rev@example.com")
                project = await create_project(uow, creds.org_id, creds.user_id, key="REV", name="Rev")
                case_id = (await create_case(uow, creds.org_id, creds.user_id, NewCase(project.id, "t"))).id
                await uow.commit()

            async def revision() -> int:
                async with ctx.uow(read_only=True) as uow:
                    return await uow.scalar(sa.select(cases.c.revision).where(cases.c.id == case_id))

            assert await revision() == 1  # created
            async with ctx.uow() as uow:  # two changes, one commit: one step
                case = await get_case(uow, creds.org_id, case_id)
                case.retitle("t2", creds.user_id)
                case.prioritize("P1", creds.user_id)
                await uow.commit()
            assert await revision() == 2
            async with ctx.uow() as uow:  # a comment changes no case field, but the case's document
                await add_comment(uow, creds.org_id, creds.user_id, case_id, "hello")
                await uow.commit()
            assert await revision() == 3
            async with ctx.uow() as uow:  # a no-op records nothing: no step
                (await get_case(uow, creds.org_id, case_id)).retitle("t2", creds.user_id)
                await uow.commit()
            assert await revision() == 3
        finally:
            await ctx.close()
