"""The retention-sweep Temporal Schedule on the dev server: triggered, it starts the retention workflow of
every closed, archived case under a policy that has none running and is not yet due, purges the due ones in
batches, and touches no other case."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from temporalio.client import Client, ScheduleHandle, WorkflowExecutionStatus

from casem.adapters.storage.tables import case_purges, cases, retention_policies
from casem.adapters.workflows.contracts import retention_batch_workflow_id
from casem.services.caseworker.activities import RetentionSweepReport
from casem.services.caseworker.schedules import ensure_schedules, schedule_ids
from casem.services.caseworker.worker import build_worker
from casem.services.caseworker.workflows import RetentionSweepWorkflow, retention_workflow_id
from casem.topology.tenants import CASE_MANAGEMENT
from tests.backends import engine_address
from tests.support.caseworker_world import World


async def _closed_and_archived(world: World, title: str, days_ago: int) -> str:
    return await world.close_and_archive((await world.new_case(title)).id, days_ago)


async def _sweep(client: Client, handle: ScheduleHandle) -> list[RetentionSweepReport]:
    """Trigger the schedule and wait for the sweep it started."""
    before = len((await handle.describe()).info.recent_actions)
    await handle.trigger()
    for _ in range(300):
        actions = (await handle.describe()).info.recent_actions
        if len(actions) > before:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the schedule did not start a sweep")
    workflow_id = actions[-1].action.workflow_id  # type: ignore[attr-defined]
    return await asyncio.wait_for(client.get_workflow_handle_for(RetentionSweepWorkflow.run, workflow_id).result(), 60)


@pytest.mark.temporal
async def test_triggered_sweep_starts_missing_retention_workflows(world: World) -> None:
    client = await Client.connect(engine_address("temporal"))
    queue = f"sweep-test-{uuid.uuid4().hex[:8]}"
    other_org = str(uuid.uuid4())
    async with world.ctx.uow() as uow:
        now = datetime.now(UTC)
        # The project's 30 days; another org's 1-day policy must not reach this org's cases.
        for org_id, project_id, days in ((world.org_id, world.project_id, 30), (other_org, None, 1)):
            await uow.execute(
                sa.insert(retention_policies).values(
                    id=str(uuid.uuid4()),
                    org_id=org_id,
                    project_id=project_id,
                    closed_case_retention_days=days,
                    created_at=now,
                )
            )
        await uow.commit()
    expired = await _closed_and_archived(world, "expired long ago", days_ago=45)
    waiting = await _closed_and_archived(world, "archived today", days_ago=0)
    still_open = (await world.new_case("open")).id

    async with build_worker(client, world.ctx, world.blobs, task_queue=queue):
        handle = await ensure_schedules(client, ["case-management"], task_queue=queue, every=timedelta(days=1))
        again = await ensure_schedules(client, ["case-management"], task_queue=queue, every=timedelta(days=1))
        try:
            assert again.id == handle.id  # the second start found the schedule and left one
            [report] = await _sweep(client, handle)
            assert report.tenant == "case-management" and report.examined == 2
            # The due case is purged by a batch, without a retention workflow of its own; the other gets one.
            assert report.started == [waiting] and (report.due, report.purged) == (1, 1)
            waiting_wf = client.get_workflow_handle(retention_workflow_id(waiting))
            assert (await waiting_wf.describe()).status == WorkflowExecutionStatus.RUNNING

            # Next sweep: the purged case is gone, the waiting one has its workflow: nothing to start.
            [report] = await _sweep(client, handle)
            assert report.examined == 1 and report.started == []
            async with world.ctx.uow(read_only=True) as uow:
                audits = (await uow.execute(sa.select(case_purges.c.case_id, case_purges.c.workflow_id))).all()
                purged = [row.case_id for row in audits]
                assert await uow.scalar(sa.select(sa.func.count()).select_from(cases).where(cases.c.id == still_open))
            assert purged == [expired] and audits[0].workflow_id == retention_batch_workflow_id(
                CASE_MANAGEMENT, [expired]
            )
            await waiting_wf.terminate("test over")
        finally:
            for schedule_id in schedule_ids(queue):
                await client.get_schedule_handle(schedule_id).delete()
