"""The pending-merge sweep on the Temporal dev server: a merge recorded but never started (the case-api
stopped between its commit and the workflow start) gets its workflow and completes; one whose primary is gone
by then ends FAILED; a merge younger than the grace period is left to its own start."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from temporalio.client import Client

from casem.adapters.storage.tables import case_merges, cases
from casem.adapters.workflows.contracts import PendingMergeSweepInput
from casem.app.case_links.service import delete_link, list_links
from casem.app.merges.service import request_merge
from casem.domain.errors import Conflict
from casem.domain.events import utcnow
from casem.services.caseworker.schedules import ensure_schedules, pending_merge_schedule_id, schedule_ids
from casem.services.caseworker.worker import build_worker
from casem.services.caseworker.workflows import PendingMergeSweepWorkflow
from casem.topology.tenants import CASE_MANAGEMENT
from tests.backends import engine_address
from tests.support.caseworker_world import World


async def _pending(world: World, primary: str, duplicates: list[str], minutes_ago: int) -> str:
    async with world.ctx.uow() as uow:
        merge = await request_merge(uow, CASE_MANAGEMENT, world.org_id, world.user_id, primary, duplicates)
        await uow.execute(
            sa.update(case_merges)
            .where(case_merges.c.id == merge.merge_id)
            .values(created_at=utcnow() - timedelta(minutes=minutes_ago))
        )
        await uow.commit()
    return merge.merge_id


async def _status(world: World, merge_id: str) -> tuple[str, str | None]:
    async with world.ctx.uow(read_only=True) as uow:
        row = (await uow.execute(sa.select(case_merges).where(case_merges.c.id == merge_id))).one()
    return row.status, row.detail


@pytest.mark.temporal
async def test_the_sweep_starts_or_fails_merges_left_pending(world: World) -> None:
    client = await Client.connect(engine_address("temporal"))
    queue = f"pending-merges-{uuid.uuid4().hex[:8]}"
    primary, duplicate = (await world.new_case("primary")).id, (await world.new_case("duplicate")).id
    orphan = await _pending(world, primary, [duplicate], minutes_ago=10)
    gone, gone_dup = (await world.new_case("primary, purged since")).id, (await world.new_case("its duplicate")).id
    doomed = await _pending(world, gone, [gone_dup], minutes_ago=10)
    async with world.ctx.uow() as uow:
        await uow.execute(sa.delete(cases).where(cases.c.id == gone))
        await uow.commit()
    other, other_dup = (await world.new_case("just asked")).id, (await world.new_case("asked too")).id
    fresh = await _pending(world, other, [other_dup], minutes_ago=0)

    async with build_worker(client, world.ctx, world.blobs, task_queue=queue):
        reports = await client.execute_workflow(
            PendingMergeSweepWorkflow.run,
            PendingMergeSweepInput([CASE_MANAGEMENT], grace_seconds=120),
            id=f"sweep-{queue}",
            task_queue=queue,
        )
        [report] = reports
        assert sorted(report.started) == sorted([orphan, doomed]) and report.failed == []

        async def settled() -> bool:
            return (await _status(world, orphan))[0] == "COMPLETED" and (await _status(world, doomed))[0] == "FAILED"

        for _ in range(300):
            if await settled():
                break
            await asyncio.sleep(0.2)
        assert await _status(world, orphan) == ("COMPLETED", None)
        assert (await _status(world, doomed)) == ("FAILED", "the primary case no longer exists")
        assert (await _status(world, fresh))[0] == "PENDING"  # within the grace period: not the sweep's yet
        async with world.ctx.uow(read_only=True) as uow:
            closed = await uow.scalar(sa.select(cases.c.status).where(cases.c.id == duplicate))
            [link] = await list_links(uow, world.org_id, "CASE", duplicate, None)
        assert closed == "CLOSED"
        # The merge's link is a case link like any (Datadog's DUPLICATES), and it cannot be removed.
        assert (link.relationship, link.child_entity_id, link.merge_id) == ("DUPLICATES", primary, orphan)
        with pytest.raises(Conflict):
            async with world.ctx.uow() as uow:
                await delete_link(uow, world.org_id, world.user_id, link.id)

        # The schedule is created beside the others, and a run of it finds nothing left to do but the fresh one.
        await ensure_schedules(client, [CASE_MANAGEMENT], task_queue=queue, every=timedelta(days=1))
        try:
            description = await client.get_schedule_handle(pending_merge_schedule_id(queue)).describe()
            assert description.schedule.action.workflow == "PendingMergeSweepWorkflow"  # type: ignore[attr-defined]
        finally:
            for schedule_id in schedule_ids(queue):
                await client.get_schedule_handle(schedule_id).delete()
