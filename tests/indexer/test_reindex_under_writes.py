"""A reindex while cases change: the changes made during the build reach the new index too (writes land in
both indices until the alias swaps, versions keep the newest), so `verify` right after the swap is clean.
SQLite and PostgreSQL, embedded search and OpenSearch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa

from casem.adapters.search.port import SearchPort
from casem.adapters.storage.tables import cases as cases_table
from casem.app.cases import service as cases
from casem.app.cases import updates
from casem.app.context import AppContext
from casem.app.search.maintenance import reindex_tenant, verify_tenant
from casem.app.timeline import service as timeline
from casem.domain.cases import Case
from casem.topology.tenants import CASE_MANAGEMENT
from tests.indexer.test_search_indexing_flavor import Outbox
from tests.intake.stack import new_tenant

CASES = 30


class PausingReindex:
    """The port, with its reindex held after the first document until `resume` is set: the build is
    under way (its database read begun) while the test changes cases."""

    def __init__(self, port: SearchPort) -> None:
        self.port = port
        self.building = asyncio.Event()
        self.resume = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.port, name)

    async def reindex(self, tenant: str, docs: Any) -> str:
        async def held() -> AsyncIterator[Any]:
            first = True
            async for doc in docs:
                yield doc
                if first:
                    first = False
                    self.building.set()
                    await self.resume.wait()

        return await self.port.reindex(tenant, held())


async def test_verify_is_clean_right_after_a_reindex_under_writes(context: AppContext, port: SearchPort) -> None:
    tenant = await new_tenant(context)
    org, user = tenant.creds.org_id, tenant.creds.user_id
    ids = []
    for n in range(CASES):
        async with context.uow() as uow:
            case = await cases.create_case(
                uow, org, user, cases.NewCase(project_id=tenant.project_id, title=f"case {n}")
            )
            await uow.commit()
            ids.append(case.id)
    outbox = Outbox(context, port)  # type: ignore[arg-type]
    await port.ensure_index(CASE_MANAGEMENT)
    await outbox.apply_new()
    await port.refresh(CASE_MANAGEMENT)
    assert (await verify_tenant(context, port, CASE_MANAGEMENT, org)).ok

    pausing = PausingReindex(port)
    build = asyncio.create_task(reindex_tenant(context, pausing, CASE_MANAGEMENT))  # type: ignore[arg-type]
    await asyncio.wait_for(pausing.building.wait(), 60)
    # During the build: changes, comments, a new case and a deleted one, indexed as the flavor indexes them.
    async with context.uow() as uow:
        for case_id in ids[:10]:
            await updates.retitle(uow, org, user, case_id, "renamed during the reindex")
        for case_id in ids[10:15]:
            await timeline.add_comment(uow, org, user, case_id, "commented during the reindex")
        new = await cases.create_case(uow, org, user, cases.NewCase(project_id=tenant.project_id, title="born late"))
        gone = await uow.get(Case, org, ids[-1], resource="case")
        gone.record_deleted(user)
        await uow.commit()
    async with context.uow() as uow:
        await uow.execute(sa.delete(cases_table).where(cases_table.c.id == ids[-1]))
        await uow.commit()
    applied = await outbox.apply_new()
    assert applied >= 17
    pausing.resume.set()
    await asyncio.wait_for(build, 120)
    await port.refresh(CASE_MANAGEMENT)

    report = await verify_tenant(context, port, CASE_MANAGEMENT, org)
    assert (report.missing, report.extra, report.stale) == ([], [], [])
    assert report.ok and report.database == report.index == CASES  # 30 - 1 deleted + 1 new
    assert (await port.get(CASE_MANAGEMENT, org, new.id)) is not None
