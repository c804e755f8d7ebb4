"""Crash test of the caseworker: `casem run caseworker` is killed with SIGKILL in the middle of a merge of
20 duplicates, and again in the middle of purging expired cases, then restarted. Afterwards the merge
completed exactly once (every cell copied once, every duplicate closed once, one `case.merged` each,
watchers and attributes unioned) and every expired case was purged exactly once, completely."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.client import Client

from casem.adapters.blobs.filesystem import FilesystemBlobStore
from casem.adapters.storage.tables import (
    case_merge_progress,
    case_purges,
    cases,
    domain_events,
    retention_policies,
    timeline_cells,
    watchers,
)
from casem.adapters.workflows.client import TemporalCaseworker
from casem.adapters.workflows.contracts import MergeRequest
from casem.app.cases.service import NewCase, create_case, get_case
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org
from casem.app.projects.service import create_project
from casem.app.timeline.service import add_comment
from casem.app.watchers.service import watch
from casem.services.caseworker.schedules import retention_sweep_schedule_id
from casem.topology.tenants import CASE_MANAGEMENT, TENANTS
from tests.backends import engine_address
from tests.caseworker.support import assert_merged_once, seed_merge
from tests.support.databases import tenant_endpoints
from tests.support.ports import free_port

DUPLICATES = 20
COMMENTS = 4
EXPIRED = 40
KILL_AFTER = 3  # steps done before the SIGKILL: the work is under way, and far from over


class Caseworker:
    """`casem run caseworker` as a real process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = open(self.log, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        env = {**self.env, "CASEM_OPS_PORT": str(free_port())}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "casem.cli.main", "run", "caseworker"], env=env, stdout=out, stderr=out
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


async def _count(ctx: AppContext, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    async with ctx.uow(read_only=True) as uow:
        return await uow.scalar(sa.select(sa.func.count()).select_from(table).where(*where))


async def _kill_mid_way(worker: Caseworker, done: Callable[[], Awaitable[int]], total: int) -> int:
    """SIGKILL the worker once KILL_AFTER steps are done; the number done at that moment."""
    deadline = time.monotonic() + 120
    while (n := await done()) < KILL_AFTER:
        assert time.monotonic() < deadline, f"the caseworker made no progress ({n}/{total}); see its log"
        await asyncio.sleep(0.01)
    worker.kill()
    n = await done()
    assert n < total, f"all {total} steps were done before the kill: the crash interrupted nothing"
    return n


async def _wait_for(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.5)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def world(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[AppContext, dict[str, str], Caseworker, TemporalCaseworker]]:
    address = engine_address("temporal")
    queue = f"crash-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEM_TENANT_")}
    env |= {
        "CASEM_DATA_DIR": str(tmp_path),
        "CASEM_BLOBS_URL": str(tmp_path / "blobs"),
        "CASEM_TEMPORAL_ADDRESS": address,
        "CASEM_TEMPORAL_TASK_QUEUE": queue,
        "CASEM_RETENTION_SWEEP_SECONDS": str(24 * 3600),  # the test triggers the sweep itself
        # One case per purge activity (one transaction each): the kill lands between purges, not after them all.
        "CASEM_RETENTION_PURGE_BATCH": "1",
        "CASEM_HOST": "127.0.0.1",
        "CASEM_MIGRATE_ON_START": "0",
    }
    with tenant_endpoints(request.param, tmp_path) as endpoints:
        for t in TENANTS:
            env[f"{t.env_prefix}_DSN"] = endpoints[t.name].master
        ctx = AppContext.open(endpoints)
        worker = Caseworker(env, tmp_path / "caseworker.log")
        client = await Client.connect(address)
        try:
            yield ctx, env, worker, TemporalCaseworker(client, task_queue=queue)
        finally:
            worker.stop()
            await ctx.close()


async def _org(ctx: AppContext) -> tuple[str, str, str]:
    async with ctx.uow() as uow:
        creds = await bootstrap_org(uow, f"crash-{uuid.uuid4().hex[:6]}", "crash@example.com")
        project = await create_project(uow, creds.org_id, creds.user_id, key="CRASH", name="Crash")
        await uow.commit()
    return creds.org_id, creds.user_id, project.id


@pytest.mark.temporal
async def test_kill_9_caseworker_mid_merge(
    world: tuple[AppContext, dict[str, str], Caseworker, TemporalCaseworker],
) -> None:
    ctx, _env, worker, temporal = world
    org_id, user_id, project_id = await _org(ctx)
    fixture = await seed_merge(ctx, org_id, user_id, project_id, duplicates=DUPLICATES, comments=COMMENTS)
    request = MergeRequest(CASE_MANAGEMENT, org_id, str(uuid.uuid4()), fixture.primary_id, fixture.duplicate_ids)
    handle = await temporal.start_merge(request)  # queued: no worker runs yet

    worker.start()
    merged = await _kill_mid_way(
        worker,
        lambda: _count(ctx, case_merge_progress, case_merge_progress.c.merge_id == request.merge_id),
        DUPLICATES,
    )
    closed = await _count(ctx, cases, cases.c.id.in_(fixture.duplicate_ids), cases.c.status == "CLOSED")
    assert closed == merged  # a duplicate is closed in the very transaction that records its step
    worker.start()
    result = await asyncio.wait_for(handle.result(), 240)
    assert result.status == "COMPLETED"
    assert sorted(s.duplicate_id for s in result.steps) == sorted(fixture.duplicate_ids)
    await assert_merged_once(ctx, org_id, fixture, request.merge_id)
    print(
        f"\ncaseworker crash mid-merge [{ctx.databases[CASE_MANAGEMENT].dialect}]: killed after {merged}/{DUPLICATES} "
        f"duplicates, restarted; {len(result.steps)} merged once each"
    )


@pytest.mark.temporal
async def test_kill_9_caseworker_mid_purge(
    world: tuple[AppContext, dict[str, str], Caseworker, TemporalCaseworker],
    tmp_path: Path,
) -> None:
    ctx, _env, worker, temporal = world
    org_id, user_id, project_id = await _org(ctx)
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    ids: list[str] = []
    for n in range(EXPIRED):
        async with ctx.uow() as uow:
            case = await create_case(uow, org_id, user_id, NewCase(project_id, f"expired {n}"))
            await uow.commit()
        async with ctx.uow() as uow:
            await add_comment(uow, org_id, user_id, case.id, "before the purge")
            await watch(uow, org_id, user_id, case.id, user_id)
            loaded = await get_case(uow, org_id, case.id)
            loaded.transition("CLOSED", user_id)
            loaded.archive(user_id)
            await uow.commit()

        async def content() -> AsyncIterator[bytes]:
            yield b"evidence"

        await blobs.put(f"{org_id}/{case.id}/evidence.txt", content(), content_type="text/plain")
        ids.append(case.id)
    past = datetime.now(UTC) - timedelta(days=45)
    async with ctx.uow() as uow:
        await uow.execute(sa.update(cases).where(cases.c.id.in_(ids)).values(closed_at=past, archived_at=past))
        await uow.execute(
            sa.insert(retention_policies).values(
                id=str(uuid.uuid4()), org_id=org_id, project_id=None, closed_case_retention_days=30, created_at=past
            )
        )
        await uow.commit()

    worker.start()
    schedule = temporal.client.get_schedule_handle(retention_sweep_schedule_id(temporal.task_queue))

    async def schedule_exists() -> bool:  # the worker creates it as it starts
        try:
            await schedule.describe()
            return True
        except Exception:
            return False

    await _wait_for(schedule_exists, "the retention-sweep schedule", 60)
    await schedule.trigger()
    killed_at = await _kill_mid_way(worker, lambda: _count(ctx, case_purges, case_purges.c.case_id.in_(ids)), EXPIRED)
    worker.start()

    async def all_purged() -> bool:
        return await _count(ctx, case_purges, case_purges.c.case_id.in_(ids)) == EXPIRED

    await _wait_for(all_purged, "every expired case purged")
    await asyncio.sleep(2)  # a purge still in flight would show up as a second record now

    async with ctx.uow(read_only=True) as uow:
        audit = (await uow.execute(sa.select(case_purges.c.case_id, case_purges.c.counts))).all()
        events = (
            await uow.execute(
                sa.select(domain_events.c.case_id).where(domain_events.c.type == "com.casem.case.purged.v1")
            )
        ).all()
    assert sorted(r.case_id for r in audit) == sorted(ids)  # one audit record per case
    assert all(r.counts == {"attachments": 0, "watchers": 1, "timeline": r.counts["timeline"]} for r in audit)
    assert all(r.counts["timeline"] >= 4 for r in audit)  # created, comment, watcher, status, archive...
    assert sorted(e.case_id for e in events) == sorted(ids)  # one `case.purged` per case
    # Nothing half-deleted: no case row, cell, watcher or blob of a purged case is left.
    assert await _count(ctx, cases, cases.c.id.in_(ids)) == 0
    assert await _count(ctx, timeline_cells, timeline_cells.c.case_id.in_(ids)) == 0
    assert await _count(ctx, watchers, watchers.c.case_id.in_(ids)) == 0

    async def blobs_gone() -> bool:  # blobs go right after the purge commits (a retry finishes them)
        return not await blobs.list(f"{org_id}/")

    await _wait_for(blobs_gone, "the purged cases' blobs deleted", 60)
    print(
        f"\ncaseworker crash mid-purge [{ctx.databases[CASE_MANAGEMENT].dialect}]: killed after {killed_at}/{EXPIRED} "
        f"purges, restarted; {len(audit)} cases purged once each, {len(events)} case.purged events"
    )
