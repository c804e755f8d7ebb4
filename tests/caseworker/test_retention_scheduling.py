"""The retention-scheduling flavor starts an archived case's retention workflow and stops it on unarchive,
on the real Temporal dev server, from the case's own domain events as they come off the outbox."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import sqlalchemy as sa
from temporalio.client import Client, WorkflowExecutionStatus

from casem.adapters.storage.tables import domain_events
from casem.adapters.workflows.client import TemporalCaseworker
from casem.app.cases.service import get_case
from casem.domain.events import with_sequence
from casem.services.case_event_handler.framework import Event, HandlerServices
from casem.services.case_event_handler.runner import FlavorRunner
from casem.services.case_event_handler.service import load_flavor
from casem.services.caseworker.worker import build_worker
from casem.services.caseworker.workflows import retention_workflow_id
from tests.backends import engine_address
from tests.support.caseworker_world import World


async def _events(world: World, case_id: str, short_type: str) -> list[Event]:
    async with world.ctx.uow(read_only=True) as uow:
        rows = (
            await uow.execute(
                sa.select(domain_events)
                .where(domain_events.c.case_id == case_id, domain_events.c.type == f"com.casem.{short_type}.v1")
                .order_by(domain_events.c.seq)
            )
        ).all()
    return [Event.from_bytes(json.dumps(with_sequence(r.envelope, r.seq)).encode()) for r in rows]


@pytest.mark.temporal
async def test_archive_starts_and_unarchive_stops_the_retention_workflow(world: World) -> None:
    client = await Client.connect(engine_address("temporal"))
    queue = f"caseworker-test-{uuid.uuid4().hex[:8]}"
    caseworker = TemporalCaseworker(client, task_queue=queue)
    runner = FlavorRunner(
        load_flavor("retention-scheduling"),
        world.ctx,
        dead_letters=None,  # type: ignore[arg-type]
        services=HandlerServices(extras={"caseworker": caseworker}),
    )
    case = await world.new_case()
    async with world.ctx.uow() as uow:
        loaded = await get_case(uow, world.org_id, case.id)
        loaded.transition("CLOSED", world.user_id)
        loaded.archive(world.user_id)
        await uow.commit()

    async with build_worker(client, world.ctx, world.blobs, task_queue=queue):
        [archived] = await _events(world, case.id, "case.archived")
        assert await runner.apply(archived) is True
        assert await runner.apply(archived) is False  # a redelivered event starts nothing twice
        handle = client.get_workflow_handle(retention_workflow_id(case.id))
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

        async with world.ctx.uow() as uow:
            (await get_case(uow, world.org_id, case.id)).unarchive(world.user_id)
            await uow.commit()
        [unarchived] = await _events(world, case.id, "case.unarchived")
        assert await runner.apply(unarchived) is True
        await asyncio.wait_for(handle.result(), 60)
        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    async with world.ctx.uow(read_only=True) as uow:
        assert (await get_case(uow, world.org_id, case.id)).archived_at is None  # not purged
