"""The caseworker's workflows on Temporal's time-skipping test server, against real tenant databases and blobs."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from casem.adapters.blobs import BlobStore
from casem.adapters.storage.tables import attachments, case_purges, cases, domain_events, retention_policies
from casem.adapters.storage.tables import timeline_cells as cells
from casem.app.attachments.service import AttachmentLimits, upload_attachment
from casem.domain.attachments import Attachment
from casem.domain.cases import Case
from casem.services.caseworker.activities import AttachmentRef, CaseRef, CaseworkerActivities, PurgeInput, SweepInput
from casem.services.caseworker.scanners import EICAR
from casem.services.caseworker.worker import build_worker
from casem.services.caseworker.workflows import (
    AttachmentSweepWorkflow,
    CaseRetentionWorkflow,
    FileLifecycleWorkflow,
    attachment_workflow_id,
    retention_workflow_id,
)
from casem.topology.tenants import CASE_MANAGEMENT
from tests.backends import engine_address
from tests.support.caseworker_world import World

pytestmark = pytest.mark.temporal


@pytest.fixture
async def dev_server() -> Client:
    """The real dev server started by scripts/services/temporal.sh: timers there run on the wall clock."""
    return await Client.connect(engine_address("temporal"))


async def wait_for_timer(handle: WorkflowHandle) -> None:
    """Until the workflow is parked on its retention timer (so the signal is not merely buffered)."""
    for _ in range(200):
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the workflow never started its timer")


HISTORIES = Path(__file__).parent / "histories"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 4096):
        yield data[i : i + 4096]


async def upload(world: World, case: Case, data: bytes, name: str = "shot.png", ctype: str = "image/png",
                 retention: timedelta = timedelta(days=30)) -> Attachment:  # fmt: skip
    return await upload_attachment(
        world.ctx.uow,
        world.blobs,
        org_id=world.org_id,
        actor_id=world.user_id,
        case_ref=case.id,
        filename=name,
        content_type=ctype,
        chunks=chunks(data),
        limits=AttachmentLimits(retention=retention),
    )


async def attachment_cells(world: World, case_id: str) -> list[str]:
    async with world.ctx.uow(read_only=True) as uow:
        rows = await uow.execute(
            sa.select(cells.c.content).where(cells.c.case_id == case_id, cells.c.type == "ATTACHMENT_CHANGE")
        )
        return [r.content["event"] for r in sorted(rows.all(), key=lambda r: r.content["event"] != "x")]


async def cell_events(world: World, case_id: str) -> list[str]:
    async with world.ctx.uow(read_only=True) as uow:
        rows = await uow.execute(
            sa.select(domain_events.c.type)
            .where(domain_events.c.case_id == case_id, domain_events.c.type.like("%attachment%"))
            .order_by(domain_events.c.seq)
        )
        return [r.type.removeprefix("com.casem.").removesuffix(".v1") for r in rows.all()]


async def state_of(world: World, attachment_id: str) -> tuple[str, str | None]:
    async with world.ctx.uow(read_only=True) as uow:
        row = (
            await uow.execute(
                sa.select(attachments.c.state, attachments.c.detail).where(attachments.c.id == attachment_id)
            )
        ).one()
        return row.state, row.detail


def ref(a: Attachment) -> AttachmentRef:
    return AttachmentRef(CASE_MANAGEMENT, a.org_id, a.case_id, a.id)


async def test_file_lifecycle_runs_to_deletion_after_retention(
    time_skipping: WorkflowEnvironment, world: World
) -> None:
    case = await world.new_case()
    attachment = await upload(world, case, PNG, retention=timedelta(days=30))
    started = await time_skipping.get_current_time()
    async with build_worker(time_skipping.client, world.ctx, world.blobs, task_queue=f"tq-{uuid.uuid4()}") as worker:
        result = await time_skipping.client.execute_workflow(
            FileLifecycleWorkflow.run,
            ref(attachment),
            id=attachment_workflow_id(attachment.id),
            task_queue=worker.task_queue,
        )
        if os.environ.get("CASEM_RECORD_HISTORIES") == "1":
            # Regenerates the Replayer fixture after an intended workflow change (see test_replay.py).
            history = await time_skipping.client.get_workflow_handle(
                attachment_workflow_id(attachment.id)
            ).fetch_history()
            (HISTORIES / "file_lifecycle.json").write_text(history.to_json())
    assert result == "deleted"
    # The 30-day timer really ran on the workflow clock.
    assert await time_skipping.get_current_time() - started >= timedelta(days=30)
    assert await cell_events(world, case.id) == [
        f"case.attachment_{s}" for s in ("uploaded", "verified", "available", "expired", "deleted")
    ]
    assert sorted(await attachment_cells(world, case.id)) == sorted(await cell_events(world, case.id))
    assert await world.blobs.stat(attachment.blob_key) is None
    assert await state_of(world, attachment.id) == ("deleted", "retention expired")


@pytest.mark.parametrize(
    ("data", "ctype", "reason"),
    [
        (b"hello " + EICAR + b" bye", "text/plain", "eicar: EICAR test signature found"),
        (b"not a png at all", "image/png", "content does not look like image/png"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 64, "application/octet-stream", "executable content is not accepted"),
    ],
)
async def test_rejected_files_are_deleted_at_once(
    time_skipping: WorkflowEnvironment, world: World, data: bytes, ctype: str, reason: str
) -> None:
    case = await world.new_case()
    attachment = await upload(world, case, data, name="f.bin", ctype=ctype)
    async with build_worker(time_skipping.client, world.ctx, world.blobs, task_queue=f"tq-{uuid.uuid4()}") as worker:
        result = await time_skipping.client.execute_workflow(
            FileLifecycleWorkflow.run,
            ref(attachment),
            id=attachment_workflow_id(attachment.id),
            task_queue=worker.task_queue,
        )
    assert result == "deleted"
    assert await cell_events(world, case.id) == [
        "case.attachment_uploaded",
        "case.attachment_rejected",
        "case.attachment_deleted",
    ]
    assert await state_of(world, attachment.id) == ("deleted", reason)
    assert await world.blobs.stat(attachment.blob_key) is None


async def test_checksum_mismatch_is_rejected(time_skipping: WorkflowEnvironment, world: World) -> None:
    case = await world.new_case()
    attachment = await upload(world, case, PNG)
    # The stored bytes change behind the database's back (bit rot, a tampered bucket).
    await world.blobs.put(attachment.blob_key, chunks(PNG[:-1] + b"\x00"), content_type="image/png")
    async with build_worker(time_skipping.client, world.ctx, world.blobs, task_queue=f"tq-{uuid.uuid4()}") as worker:
        await time_skipping.client.execute_workflow(
            FileLifecycleWorkflow.run,
            ref(attachment),
            id=attachment_workflow_id(attachment.id),
            task_queue=worker.task_queue,
        )
    assert (await state_of(world, attachment.id))[1] == "checksum mismatch: the stored file differs from the upload"


class FlakyBlobs:
    """Fails the first `failures` reads, as a storage outage would: the verify step must retry."""

    def __init__(self, inner: BlobStore, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.reads = 0

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        self.reads += 1
        if self.reads <= self.failures:
            raise ConnectionError("storage unavailable")
        async for chunk in self.inner.read(key):
            yield chunk


async def test_failed_step_is_retried(time_skipping: WorkflowEnvironment, world: World) -> None:
    case = await world.new_case()
    attachment = await upload(world, case, PNG, retention=timedelta(days=1))
    flaky = FlakyBlobs(world.blobs, failures=2)
    async with build_worker(time_skipping.client, world.ctx, flaky, task_queue=f"tq-{uuid.uuid4()}") as worker:  # type: ignore[arg-type]
        result = await time_skipping.client.execute_workflow(
            FileLifecycleWorkflow.run,
            ref(attachment),
            id=attachment_workflow_id(attachment.id),
            task_queue=worker.task_queue,
        )
    assert result == "deleted"
    assert flaky.reads >= 3  # two failed attempts, then the checksum read (and the scanner's)
    # Retries recorded each step once: no duplicate timeline cells.
    assert len(await cell_events(world, case.id)) == 5


async def test_user_delete_signal_ends_the_lifecycle(dev_server: Client, world: World) -> None:
    case = await world.new_case()
    attachment = await upload(world, case, PNG, retention=timedelta(days=30))
    async with build_worker(dev_server, world.ctx, world.blobs, task_queue=f"tq-{uuid.uuid4()}") as worker:
        handle = await dev_server.start_workflow(
            FileLifecycleWorkflow.run,
            ref(attachment),
            id=attachment_workflow_id(attachment.id),
            task_queue=worker.task_queue,
        )
        await wait_for_timer(handle)
        # What the API's delete does: signal the workflow, which stops waiting for the retention timer.
        await handle.signal(FileLifecycleWorkflow.deleted)
        assert await handle.result() == "deleted"
    assert "case.attachment_expired" not in await cell_events(world, case.id)


async def test_sweep_fixes_orphans_and_starts_missing_lifecycles(
    time_skipping: WorkflowEnvironment, world: World
) -> None:
    case = await world.new_case()
    orphan_key = f"{world.org_id}/{case.id}/{uuid.uuid4()}"
    await world.blobs.put(orphan_key, chunks(b"left behind by a crash"), content_type="text/plain")
    missing = await upload(world, case, PNG)
    await world.blobs.delete(missing.blob_key)
    unstarted = await upload(world, case, PNG, retention=timedelta(days=2))
    async with build_worker(time_skipping.client, world.ctx, world.blobs, task_queue=f"tq-{uuid.uuid4()}") as worker:
        report = await time_skipping.client.execute_workflow(
            AttachmentSweepWorkflow.run,
            SweepInput(CASE_MANAGEMENT, grace_seconds=0),
            id=f"sweep-{uuid.uuid4()}",
            task_queue=worker.task_queue,
        )
        assert report.orphan_blobs_deleted == [orphan_key]
        assert report.missing_blobs_marked == [missing.id]
        assert [r.attachment_id for r in report.unstarted] == [unstarted.id]
        # The sweep started the forgotten upload's lifecycle: it runs to its end.
        child = time_skipping.client.get_workflow_handle(attachment_workflow_id(unstarted.id))
        assert await child.result() == "deleted"
    assert await world.blobs.stat(orphan_key) is None
    assert await state_of(world, missing.id) == ("deleted", "the stored file is missing")


# -- case retention --------------------------------------------------------------------------------------
async def closed_and_archived(world: World, retention_days: int, *, project_level: bool = True) -> Case:
    case = await world.new_case("Old incident")
    async with world.ctx.uow() as uow:
        await uow.execute(
            sa.insert(retention_policies).values(
                id=str(uuid.uuid4()),
                org_id=world.org_id,
                project_id=world.project_id if project_level else None,
                closed_case_retention_days=retention_days,
                created_at=datetime.now(UTC),
            )
        )
        loaded = await uow.get(Case, world.org_id, case.id)
        loaded.transition("CLOSED", world.user_id)
        loaded.archive(world.user_id)
        await uow.commit()
    return case


async def case_exists(world: World, case_id: str) -> bool:
    async with world.ctx.uow(read_only=True) as uow:
        return await uow.scalar(sa.select(sa.func.count()).select_from(cases).where(cases.c.id == case_id)) == 1


async def test_retention_purges_case_with_audit(time_skipping: WorkflowEnvironment, world: World) -> None:
    case = await closed_and_archived(world, retention_days=90, project_level=False)
    attachment = await upload(world, case, PNG)
    keep = await world.new_case("Still open")
    async with build_worker(time_skipping.client, world.ctx, world.blobs, task_queue=f"tq-{uuid.uuid4()}") as worker:
        result = await time_skipping.client.execute_workflow(
            CaseRetentionWorkflow.run,
            CaseRef(CASE_MANAGEMENT, world.org_id, case.id),
            id=retention_workflow_id(case.id),
            task_queue=worker.task_queue,
        )
    assert result.outcome == "purged"
    assert result.counts["attachments"] == 1 and result.counts["blobs"] == 1
    assert result.counts["timeline"] >= 4  # created, status, archive, attachment uploaded
    assert not await case_exists(world, case.id)
    assert await case_exists(world, keep.id)
    assert await world.blobs.stat(attachment.blob_key) is None
    async with world.ctx.uow(read_only=True) as uow:
        audit = (await uow.execute(sa.select(case_purges).where(case_purges.c.case_id == case.id))).one()
        left = await uow.scalar(sa.select(sa.func.count()).select_from(cells).where(cells.c.case_id == case.id))
        purged_events = await uow.scalar(
            sa.select(sa.func.count()).where(
                domain_events.c.case_id == case.id, domain_events.c.type == "com.casem.case.purged.v1"
            )
        )
    assert (audit.case_key, audit.retention_days, audit.workflow_id) == (case.key, 90, retention_workflow_id(case.id))
    assert left == 0 and purged_events == 1


async def test_unarchive_signal_cancels_retention(dev_server: Client, world: World) -> None:
    case = await closed_and_archived(world, retention_days=30)
    async with build_worker(dev_server, world.ctx, world.blobs, task_queue=f"tq-{uuid.uuid4()}") as worker:
        handle = await dev_server.start_workflow(
            CaseRetentionWorkflow.run,
            CaseRef(CASE_MANAGEMENT, world.org_id, case.id),
            id=retention_workflow_id(case.id),
            task_queue=worker.task_queue,
        )
        await wait_for_timer(handle)
        await handle.signal(CaseRetentionWorkflow.unarchived)
        assert (await handle.result()).outcome == "cancelled"
    assert await case_exists(world, case.id)


async def test_cancellation_also_stops_retention(dev_server: Client, world: World) -> None:
    case = await closed_and_archived(world, retention_days=30)
    async with build_worker(dev_server, world.ctx, world.blobs, task_queue=f"tq-{uuid.uuid4()}") as worker:
        handle = await dev_server.start_workflow(
            CaseRetentionWorkflow.run,
            CaseRef(CASE_MANAGEMENT, world.org_id, case.id),
            id=retention_workflow_id(case.id),
            task_queue=worker.task_queue,
        )
        await wait_for_timer(handle)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert await case_exists(world, case.id)


async def test_unarchived_case_is_not_purged_even_when_the_signal_is_lost(world: World) -> None:
    """The purge re-checks eligibility in its transaction: a missed signal cannot purge a live case."""
    case = await closed_and_archived(world, retention_days=5)
    async with world.ctx.uow() as uow:  # unarchived without telling the workflow
        loaded = await uow.get(Case, world.org_id, case.id)
        loaded.unarchive(world.user_id)
        await uow.commit()
    activities = CaseworkerActivities(world.ctx, world.blobs)
    far_future = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    result = await ActivityEnvironment().run(
        activities.purge_case, PurgeInput(CaseRef(CASE_MANAGEMENT, world.org_id, case.id), far_future, "wf")
    )
    assert result.outcome == "not-eligible"
    assert await case_exists(world, case.id)


async def test_open_case_or_no_policy_is_not_eligible(time_skipping: WorkflowEnvironment, world: World) -> None:
    case = await world.new_case()  # open, no policy
    async with build_worker(time_skipping.client, world.ctx, world.blobs, task_queue=f"tq-{uuid.uuid4()}") as worker:
        result = await time_skipping.client.execute_workflow(
            CaseRetentionWorkflow.run,
            CaseRef(CASE_MANAGEMENT, world.org_id, case.id),
            id=retention_workflow_id(case.id),
            task_queue=worker.task_queue,
        )
    assert result.outcome == "not-eligible"
