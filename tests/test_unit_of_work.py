"""The unit of work keeps every aggregate it saw until commit, so no recorded event is lost to GC."""

from __future__ import annotations

import gc
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from casem.adapters.storage.tables import domain_events
from casem.app.cases.service import NewCase, create_case, get_case
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org
from casem.app.projects.service import create_project
from casem.topology.tenants import CASE_MANAGEMENT
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


@pytest.mark.postgres
async def test_a_batch_commit_writes_cases_cells_and_outbox_in_one_statement_on_postgresql(tmp_path: Path) -> None:
    """insert_new's cases go with the commit's timeline cells and outbox rows as one statement (data-modifying CTEs):
    the cells refer to cases inserted by the same statement (PostgreSQL checks foreign keys at its end), and a cell
    referring to no case still fails the whole statement."""
    from casem.adapters.storage.set_statements import json_rows_insert_all
    from casem.adapters.storage.tables import cases, timeline_cells
    from casem.app.cases.batch import BatchItem, create_cases

    with tenant_endpoints("postgres", tmp_path) as endpoints:
        ctx = AppContext.open(endpoints)
        try:
            async with ctx.uow() as uow:
                creds = await bootstrap_org(uow, "cte", "cte@example.com")
                project = await create_project(uow, creds.org_id, creds.user_id, key="CTE", name="CTE")
                await uow.commit()
            db = ctx.databases[CASE_MANAGEMENT]
            sent: list[str] = []
            sa.event.listen(db.writer.sync_engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
            items = [BatchItem(creds.org_id, creds.user_id, NewCase(project.id, f"case {i}")) for i in range(3)]
            async with ctx.uow() as uow:
                outcomes = await create_cases(uow, items)
                # A read before commit sees them (they are sent first).
                ids = [o.case.id for o in outcomes if o.case is not None]
                assert await uow.scalar(sa.select(sa.func.count()).where(cases.c.id.in_(ids))) == 3
                await uow.commit()
            async with ctx.uow() as uow:
                outcomes = await create_cases(uow, [BatchItem(creds.org_id, creds.user_id, NewCase(project.id, "x"))])
                before = len(sent)
                await uow.commit()
            inserts = [text for text in sent[before:] if "INSERT" in text]
            assert len(inserts) == 1 and inserts[0].startswith("WITH")
            assert all(f"INSERT INTO {t.name} " in inserts[0] for t in (cases, timeline_cells, domain_events))
            case_id = outcomes[0].case.id  # type: ignore[union-attr]
            async with ctx.uow(read_only=True) as uow:
                assert await uow.scalar(sa.select(sa.func.count()).where(timeline_cells.c.case_id == case_id)) == 1
                assert await uow.scalar(sa.select(sa.func.count()).where(domain_events.c.case_id == case_id)) == 1
                total = await uow.scalar(sa.select(sa.func.count()).select_from(cases))
            assert total == 4

            # A cell whose case is in no part: the foreign key still holds, and nothing of the statement stays.
            async with ctx.uow(read_only=True) as uow:
                cell = (await uow.execute(sa.select(timeline_cells).where(timeline_cells.c.case_id == case_id))).one()
            orphan = {**cell._asdict(), "id": str(uuid.uuid4()), "case_id": str(uuid.uuid4())}
            again = {**cell._asdict(), "id": str(uuid.uuid4())}
            with pytest.raises(IntegrityError, match="foreign key"):
                async with db.writer.begin() as conn:
                    await conn.execute(*json_rows_insert_all([(timeline_cells, [again]), (timeline_cells, [orphan])]))
            async with ctx.uow(read_only=True) as uow:
                assert await uow.scalar(sa.select(sa.func.count()).where(timeline_cells.c.case_id == case_id)) == 1
        finally:
            await ctx.close()
