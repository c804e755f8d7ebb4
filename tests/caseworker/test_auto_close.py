"""Auto-close of inactive cases (a project's `auto_close_inactive_cases`): the use case on SQLite and PostgreSQL
(closed with a timeline cell saying why, idempotent, a case touched in between spared, other projects left
alone), and the caseworker's auto-close schedule on the Temporal dev server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.client import Client

from casem.adapters.blobs.filesystem import FilesystemBlobStore
from casem.adapters.storage.tables import cases, timeline_cells
from casem.app.automation.auto_close import close_if_inactive, close_inactive_cases, inactive_candidates
from casem.app.cases.service import NewCase, create_case, get_case
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org
from casem.app.projects.service import create_project, update_project
from casem.app.timeline.service import add_comment, list_timeline
from casem.domain.cases import AUTO_CLOSED
from casem.services.caseworker.schedules import auto_close_schedule_id, ensure_schedules, schedule_ids
from casem.services.caseworker.worker import build_worker
from casem.services.caseworker.workflows import AutoCloseSweepWorkflow
from casem.topology.tenants import CASE_MANAGEMENT
from tests.backends import engine_address
from tests.support.databases import tenant_endpoints

HOUR = 3600


@dataclass
class Projects:
    ctx: AppContext
    org_id: str
    user_id: str
    auto: str  # auto-close after an hour
    manual: str  # no auto-close

    async def case(self, project_id: str, title: str, hours_ago: float = 0) -> str:
        async with self.ctx.uow() as uow:
            case = await create_case(uow, self.org_id, self.user_id, NewCase(project_id, title))
            await uow.commit()
        if hours_ago:
            await self.age(case.id, hours_ago)
        return case.id

    async def age(self, case_id: str, hours_ago: float) -> None:
        """Move everything that happened to the case back in time."""
        past = datetime.now(UTC) - timedelta(hours=hours_ago)
        async with self.ctx.uow() as uow:
            await uow.execute(sa.update(cases).where(cases.c.id == case_id).values(created_at=past, modified_at=past))
            await uow.execute(
                sa.update(timeline_cells).where(timeline_cells.c.case_id == case_id).values(created_at=past)
            )
            await uow.commit()

    async def status(self, case_id: str) -> str:
        async with self.ctx.uow(read_only=True) as uow:
            return (await get_case(uow, self.org_id, case_id)).status


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def projects(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Projects]:
    with tenant_endpoints(request.param, tmp_path) as endpoints:
        ctx = AppContext.open(endpoints)
        try:
            async with ctx.uow() as uow:
                creds = await bootstrap_org(uow, f"org-{uuid.uuid4().hex[:6]}", "admin@example.com")
                auto = await create_project(uow, creds.org_id, creds.user_id, key="AUTO", name="Auto-closing")
                manual = await create_project(uow, creds.org_id, creds.user_id, key="MAN", name="Manual")
                await uow.session.flush()
                settings = {"auto_close_inactive_cases": {"enabled": True, "max_inactive_time_in_secs": HOUR}}
                await update_project(uow, creds.org_id, creds.user_id, auto.id, {"settings": settings})
                await uow.commit()
            yield Projects(ctx, creds.org_id, creds.user_id, auto.id, manual.id)
        finally:
            await ctx.close()


async def test_inactive_cases_close_once_with_a_cell_saying_why(projects: Projects) -> None:
    p = projects
    stale = await p.case(p.auto, "Forgotten", hours_ago=3)
    fresh = await p.case(p.auto, "Just opened")
    commented = await p.case(p.auto, "Old but discussed", hours_ago=3)
    async with p.ctx.uow() as uow:
        await add_comment(uow, p.org_id, p.user_id, commented, "still looking")  # activity now
        await uow.commit()
    elsewhere = await p.case(p.manual, "Old, in a project without auto-close", hours_ago=30)
    closed = await p.case(p.auto, "Already closed", hours_ago=3)
    async with p.ctx.uow() as uow:
        (await get_case(uow, p.org_id, closed)).transition("CLOSED", p.user_id)
        await uow.commit()
    await p.age(closed, 3)

    report = await close_inactive_cases(p.ctx, CASE_MANAGEMENT, datetime.now(UTC))
    assert (report.projects, report.candidates, report.closed, report.spared) == (1, 1, 1, 0)
    assert [await p.status(c) for c in (stale, fresh, commented, elsewhere, closed)] == [
        "CLOSED",
        "OPEN",
        "OPEN",
        "OPEN",
        "CLOSED",
    ]
    async with p.ctx.uow(read_only=True) as uow:
        newest = (await list_timeline(uow, p.org_id, stale, page_size=1)).cells[0]
    assert newest.type == "STATUS_CHANGE" and newest.author_id is None
    assert newest.content["reason"] == AUTO_CLOSED
    assert newest.content["message"].startswith("closed automatically: no activity for 1 hour")
    assert newest.content["changes"]["status"] == {"old": "OPEN", "new": "CLOSED"}

    # Idempotent: the next sweep finds nothing, and writes nothing.
    again = await close_inactive_cases(p.ctx, CASE_MANAGEMENT, datetime.now(UTC))
    assert (again.candidates, again.closed) == (0, 0)
    async with p.ctx.uow(read_only=True) as uow:
        cells = await uow.scalar(
            sa.select(sa.func.count()).select_from(timeline_cells).where(timeline_cells.c.case_id == stale)
        )
    assert cells == 2  # created, closed


async def test_a_case_touched_between_pick_and_close_is_spared(projects: Projects) -> None:
    p = projects
    touched = await p.case(p.auto, "Picked, then commented", hours_ago=2)
    reassigned = await p.case(p.auto, "Picked, then reprioritised", hours_ago=2)
    untouched = await p.case(p.auto, "Picked and left alone", hours_ago=2)
    now = datetime.now(UTC)
    async with p.ctx.uow(read_only=True) as uow:
        _, picked = await inactive_candidates(uow, now)
    assert {c.case_id for c in picked} == {touched, reassigned, untouched}

    async with p.ctx.uow() as uow:
        await add_comment(uow, p.org_id, p.user_id, touched, "wait, I am on it")
        (await get_case(uow, p.org_id, reassigned)).prioritize("P2", p.user_id)
        await uow.commit()
    outcomes = {}
    for candidate in picked:
        async with p.ctx.uow() as uow:
            outcomes[candidate.case_id] = await close_if_inactive(uow, candidate, now)
            await uow.commit()
    assert outcomes == {touched: False, reassigned: False, untouched: True}
    assert [await p.status(c) for c in (touched, reassigned, untouched)] == ["OPEN", "OPEN", "CLOSED"]


async def test_turning_auto_close_off_spares_cases_already_picked(projects: Projects) -> None:
    p = projects
    old = await p.case(p.auto, "Old", hours_ago=2)
    now = datetime.now(UTC)
    async with p.ctx.uow(read_only=True) as uow:
        _, [picked] = await inactive_candidates(uow, now)
    async with p.ctx.uow() as uow:
        off = {"auto_close_inactive_cases": {"enabled": False}}
        await update_project(uow, p.org_id, p.user_id, p.auto, {"settings": off})
        await uow.commit()
    async with p.ctx.uow() as uow:
        assert await close_if_inactive(uow, picked, now) is False
    assert await p.status(old) == "OPEN"


@pytest.mark.temporal
async def test_the_caseworker_schedule_closes_inactive_cases(tmp_path: Path) -> None:
    client = await Client.connect(engine_address("temporal"))
    queue = f"auto-close-test-{uuid.uuid4().hex[:8]}"
    with tenant_endpoints("sqlite", tmp_path) as endpoints:
        ctx = AppContext.open(endpoints)
        try:
            async with ctx.uow() as uow:
                creds = await bootstrap_org(uow, "org-auto-close", "admin@example.com")
                project = await create_project(uow, creds.org_id, creds.user_id, key="AUTO", name="Auto")
                await uow.session.flush()
                settings = {"auto_close_inactive_cases": {"enabled": True, "max_inactive_time_in_secs": HOUR}}
                await update_project(uow, creds.org_id, creds.user_id, project.id, {"settings": settings})
                await uow.commit()
            p = Projects(ctx, creds.org_id, creds.user_id, project.id, project.id)
            stale = await p.case(project.id, "Stale", hours_ago=2)
            fresh = await p.case(project.id, "Fresh")
            blobs = FilesystemBlobStore(tmp_path / "blobs")
            async with build_worker(client, ctx, blobs, task_queue=queue):
                await ensure_schedules(
                    client,
                    [CASE_MANAGEMENT],
                    task_queue=queue,
                    every=timedelta(days=1),
                    auto_close_every=timedelta(days=1),
                )
                handle = client.get_schedule_handle(auto_close_schedule_id(queue))
                try:
                    await handle.trigger()
                    for _ in range(300):
                        actions = (await handle.describe()).info.recent_actions
                        if actions:
                            break
                        await asyncio.sleep(0.1)
                    else:
                        raise AssertionError("the schedule did not start an auto-close sweep")
                    workflow_id = actions[-1].action.workflow_id  # type: ignore[attr-defined]
                    run = client.get_workflow_handle_for(AutoCloseSweepWorkflow.run, workflow_id)
                    [report] = await asyncio.wait_for(run.result(), 60)
                finally:
                    for schedule_id in schedule_ids(queue):
                        await client.get_schedule_handle(schedule_id).delete()
            assert (report.tenant, report.closed, report.candidates) == (CASE_MANAGEMENT, 1, 1)
            assert (await p.status(stale), await p.status(fresh)) == ("CLOSED", "OPEN")
        finally:
            await ctx.close()
