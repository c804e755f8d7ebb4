"""Batch retention purges: one workflow purges a set of due cases, some per activity, each case exactly once and
audited as a single purge is; the same batch run again purges nothing. On the time-skipping test server
(embedded) and on the dev server (real Temporal)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from casem.adapters.storage.tables import attachments, case_purges, cases, domain_events, retention_policies
from casem.adapters.workflows.contracts import RetentionBatch, retention_batch_workflow_id
from casem.app.attachments.service import AttachmentLimits, upload_attachment
from casem.app.cases.service import get_case
from casem.domain.attachments import Attachment
from casem.services.caseworker.worker import build_worker
from casem.services.caseworker.workflows import RetentionPurgeBatchWorkflow
from casem.topology.tenants import CASE_MANAGEMENT
from tests.backends import engine_address
from tests.support.caseworker_world import World

pytestmark = pytest.mark.temporal


@pytest.fixture(params=["embedded", "real"])
async def temporal(request: pytest.FixtureRequest, time_skipping: WorkflowEnvironment) -> AsyncIterator[Client]:
    if request.param == "embedded":
        yield time_skipping.client
    else:
        yield await Client.connect(engine_address("temporal"))


async def _policy(world: World, days: int) -> None:
    async with world.ctx.uow() as uow:
        await uow.execute(
            sa.insert(retention_policies).values(
                id=str(uuid.uuid4()),
                org_id=world.org_id,
                project_id=world.project_id,
                closed_case_retention_days=days,
                created_at=datetime.now(UTC),
            )
        )
        await uow.commit()


async def _closed_and_archived(world: World, title: str, days_ago: int, attach: bool = False) -> str:
    case = await world.new_case(title)
    if attach:
        await _attach(world, case.id)
    return await world.close_and_archive(case.id, days_ago)


async def _attach(world: World, case_id: str) -> Attachment:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"\x89PNG\r\n\x1a\n" + bytes(range(256))

    return await upload_attachment(
        world.ctx.uow, world.blobs, org_id=world.org_id, actor_id=world.user_id, case_ref=case_id,
        filename="shot.png", content_type="image/png", chunks=chunks(),
        limits=AttachmentLimits(retention=timedelta(days=30)),
    )  # fmt: skip


async def _audits(world: World) -> dict[str, tuple[str, int, str]]:
    async with world.ctx.uow(read_only=True) as uow:
        rows = (await uow.execute(sa.select(case_purges))).all()
    return {row.case_id: (row.case_key, row.retention_days, row.workflow_id) for row in rows}


async def _purged_events(world: World) -> dict[str, int]:
    async with world.ctx.uow(read_only=True) as uow:
        rows = await uow.execute(
            sa.select(domain_events.c.case_id, sa.func.count())
            .where(domain_events.c.type == "com.casem.case.purged.v1")
            .group_by(domain_events.c.case_id)
        )
        return {case_id: n for case_id, n in rows}


async def _existing(world: World, ids: list[str]) -> set[str]:
    async with world.ctx.uow(read_only=True) as uow:
        return set((await uow.execute(sa.select(cases.c.id).where(cases.c.id.in_(ids)))).scalars())


@pytest.mark.parametrize("per_activity", [1, 2, 500])
async def test_batch_purges_due_cases_once_each_with_their_audit(
    temporal: Client, world: World, per_activity: int
) -> None:
    await _policy(world, 30)
    due = [await _closed_and_archived(world, f"expired {i}", days_ago=45, attach=i == 0) for i in range(3)]
    async with world.ctx.uow(read_only=True) as uow:
        blob_key = (await uow.execute(sa.select(attachments.c.blob_key))).scalar_one()
    keys = {}
    async with world.ctx.uow(read_only=True) as uow:
        for case_id in due:
            keys[case_id] = (await get_case(uow, world.org_id, case_id)).key
    waiting = await _closed_and_archived(world, "archived today", days_ago=0)
    still_open = (await world.new_case("open")).id
    ids = [*due, waiting, still_open, str(uuid.uuid4())]  # and an id no case has
    batch = RetentionBatch(CASE_MANAGEMENT, ids, datetime.now(UTC).isoformat(), per_activity=per_activity)
    batch_id = retention_batch_workflow_id(CASE_MANAGEMENT, ids)

    async with build_worker(temporal, world.ctx, world.blobs, task_queue=f"tq-{uuid.uuid4()}") as worker:
        handle = await temporal.start_workflow(
            RetentionPurgeBatchWorkflow.run, batch, id=batch_id, task_queue=worker.task_queue
        )
        first = await handle.result()
        scheduled = [
            e
            async for e in handle.fetch_history_events()
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        ]
        # Run again, same id, same cases (a retried sweep): nothing is purged twice.
        again = await temporal.execute_workflow(
            RetentionPurgeBatchWorkflow.run, batch, id=batch_id, task_queue=worker.task_queue
        )

    assert sorted(first.purged) == sorted(due) and first.already_purged == []
    assert sorted(first.not_eligible) == sorted(ids[3:])
    assert len(scheduled) == -(-len(ids) // per_activity)  # one activity per `per_activity` cases
    assert first.counts["attachments"] == 1 and first.counts["blobs"] == 1
    assert first.counts["timeline"] >= 3 * 3  # created, status, archive cells of each case at least
    assert again.purged == [] and sorted(again.already_purged) == sorted(due)
    assert sorted(again.not_eligible) == sorted(ids[3:]) and again.counts.get("timeline", 0) == 0

    assert await _existing(world, ids) == {waiting, still_open}
    assert await world.blobs.stat(blob_key) is None
    assert await _audits(world) == {case_id: (keys[case_id], 30, batch_id) for case_id in due}
    assert await _purged_events(world) == dict.fromkeys(due, 1)


async def test_a_case_unarchived_after_the_sweep_is_not_purged(temporal: Client, world: World) -> None:
    """The batch re-checks each case in its transaction: a case unarchived since the sweep found it stays."""
    await _policy(world, 30)
    expired, unarchived = [await _closed_and_archived(world, f"expired {i}", days_ago=45) for i in range(2)]
    async with world.ctx.uow() as uow:
        loaded = await get_case(uow, world.org_id, unarchived)
        loaded.unarchive(world.user_id)
        await uow.commit()
    batch = RetentionBatch(CASE_MANAGEMENT, [expired, unarchived], datetime.now(UTC).isoformat(), per_activity=2)
    async with build_worker(temporal, world.ctx, world.blobs, task_queue=f"tq-{uuid.uuid4()}") as worker:
        result = await temporal.execute_workflow(
            RetentionPurgeBatchWorkflow.run,
            batch,
            id=retention_batch_workflow_id(CASE_MANAGEMENT, batch.case_ids),
            task_queue=worker.task_queue,
        )
    assert (result.purged, result.not_eligible) == ([expired], [unarchived])
    assert await _existing(world, [expired, unarchived]) == {unarchived}


def test_batch_workflow_id_is_the_same_for_the_same_set_of_cases() -> None:
    assert retention_batch_workflow_id("t", ["b", "a"]) == retention_batch_workflow_id("t", ["a", "b"])
    assert retention_batch_workflow_id("t", ["a", "b"]) != retention_batch_workflow_id("t", ["a", "c"])
    assert retention_batch_workflow_id("t", ["a"]) != retention_batch_workflow_id("u", ["a"])
