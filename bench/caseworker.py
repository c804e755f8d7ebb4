"""caseworker on the Temporal dev server: merge and purge throughput next to Temporal's empty-workflow rate.

usage: .venv/bin/python bench/caseworker.py [--temporal 127.0.0.1:57233] [--duplicates 50] [--cells 20]
           [--purges 10000] [--noop 1000]

Three measurements in one run, with ONE in-process worker (the caseworker's, plus a no-op workflow) on a
fresh task queue and SQLite tenant databases in a temporary directory:
  noop    start + complete --noop empty workflows (50 in flight): the dev server's own workflow rate
  merge   one merge of --duplicates duplicates with --cells comments each: wall time from start to result
  purge   --purges closed, archived, expired cases: the retention-sweep schedule is triggered and the clock
          stops when the last case is purged (sweep → batch workflows of 2,000 → purge activities of 500)
  raw     the same number of the same cases, seeded again, removed by plain multi-row DELETEs on the same
          database: the engine's own figure beside the purge's
--duplicates 0 skips the merge.
Workflows and activities per case are counted by a worker interceptor, not assumed. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

# The sandbox re-imports this module to validate NoopWorkflow: casem's modules pass through unchanged.
with workflow.unsafe.imports_passed_through():
    import sqlalchemy as sa

    from casem.adapters.blobs.filesystem import FilesystemBlobStore
    from casem.adapters.storage.tables import case_purges, cases, retention_policies, timeline_cells
    from casem.adapters.workflows.client import TemporalCaseworker
    from casem.adapters.workflows.contracts import MergeRequest
    from casem.app.cases.service import NewCase, create_case
    from casem.app.context import AppContext
    from casem.app.identity.service import bootstrap_org
    from casem.app.projects.service import create_project
    from casem.app.timeline.service import add_comment
    from casem.domain.cases import STANDARD_TYPE_ID
    from casem.services.caseworker.schedules import ensure_schedules
    from casem.services.caseworker.worker import build_worker
    from casem.topology.tenants import CASE_MANAGEMENT, TENANTS, DatabaseEndpoints

ACTIVITIES: Counter[str] = Counter()
WORKFLOWS: Counter[str] = Counter()


@workflow.defn
class NoopWorkflow:
    @workflow.run
    async def run(self) -> None:
        return None


class _CountActivities(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        ACTIVITIES[input.fn.__name__] += 1
        return await super().execute_activity(input)


class _CountWorkflows(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        if not workflow.unsafe.is_replaying():  # a run counts once, not per replay
            with workflow.unsafe.sandbox_unrestricted():
                WORKFLOWS[workflow.info().workflow_type] += 1
        return await super().execute_workflow(input)


class Counting(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CountActivities(next)

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _CountWorkflows


def _delta(before: Counter[str], after: Counter[str]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after if after[k] - before[k]}


async def bench_noop(client: Client, queue: str, n: int) -> dict[str, Any]:
    limit = asyncio.Semaphore(50)

    async def one() -> None:
        async with limit:
            await client.execute_workflow(NoopWorkflow.run, id=f"noop-{uuid.uuid4()}", task_queue=queue)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    wall = time.perf_counter() - started
    return {"workflows": n, "seconds": round(wall, 2), "workflows_per_s": round(n / wall, 1)}


async def bench_merge(
    ctx: AppContext, caseworker: TemporalCaseworker, org: tuple[str, str, str], n: int, m: int
) -> dict[str, Any]:
    org_id, user_id, project_id = org
    async with ctx.uow() as uow:
        primary = await create_case(uow, org_id, user_id, NewCase(project_id, "primary"))
        await uow.commit()
    dups = []
    for i in range(n):
        async with ctx.uow() as uow:
            dup = await create_case(uow, org_id, user_id, NewCase(project_id, f"dup {i}", attributes={"n": [str(i)]}))
            await uow.commit()
        async with ctx.uow() as uow:
            for c in range(m):
                await add_comment(uow, org_id, user_id, dup.id, f"comment {c}")
            await uow.commit()
        dups.append(dup.id)
    before_a, before_w = Counter(ACTIVITIES), Counter(WORKFLOWS)
    request = MergeRequest(CASE_MANAGEMENT, org_id, str(uuid.uuid4()), primary.id, dups, user_id)
    started = time.perf_counter()
    result = await (await caseworker.start_merge(request)).result()
    wall = time.perf_counter() - started
    activities = _delta(before_a, ACTIVITIES)
    return {
        "duplicates": n,
        "comments_per_duplicate": m,
        "status": result.status,
        "cells_copied": sum(s.cells_copied for s in result.steps),
        "seconds": round(wall, 2),
        "duplicates_per_s": round(n / wall, 1),
        "workflows": _delta(before_w, WORKFLOWS),
        "activities": activities,
        "activities_per_duplicate": round(sum(activities.values()) / n, 2),
    }


async def _seed_expired(ctx: AppContext, org: tuple[str, str, str], n: int, key: str) -> list[str]:
    """n closed, archived cases expired 15 days ago under a 30-day policy of their own project, seeded in bulk (a
    case row and its CASE_CREATED cell): the bench measures the purge, not intake."""
    org_id, user_id, _ = org
    past = datetime.now(UTC) - timedelta(days=45)
    async with ctx.uow() as uow:
        project = await create_project(uow, org_id, user_id, key=key, name=f"Purge bench {key}")
        await uow.commit()
    rows, cells = [], []
    for i in range(n):
        case_id = str(uuid.uuid4())
        rows.append(
            {
                "id": case_id, "org_id": org_id, "project_id": project.id, "number": i + 1, "key": f"{key}-{i + 1}",
                "title": f"expired {i}", "description": "", "type_id": STANDARD_TYPE_ID, "status": "CLOSED",
                "priority": "NOT_DEFINED", "attributes": {}, "custom_attributes": {}, "closed_at": past,
                "archived_at": past, "created_at": past, "created_by_id": user_id,
            }
        )  # fmt: skip
        cells.append(
            {
                "id": str(uuid.uuid4()), "org_id": org_id, "case_id": case_id, "type": "CASE_CREATED",
                "content": {"event": "case.created"}, "author_id": user_id, "created_at": past,
            }
        )  # fmt: skip
    async with ctx.uow() as uow:
        for start in range(0, n, 1000):
            await uow.session.execute(sa.insert(cases), rows[start : start + 1000])
            await uow.session.execute(sa.insert(timeline_cells), cells[start : start + 1000])
        await uow.execute(
            sa.insert(retention_policies).values(
                id=str(uuid.uuid4()),
                org_id=org_id,
                project_id=project.id,
                closed_case_retention_days=30,
                created_at=past,
            )
        )
        await uow.commit()
    return [row["id"] for row in rows]


async def bench_raw_delete(ctx: AppContext, org: tuple[str, str, str], n: int) -> dict[str, Any]:
    """The engine's own figure on the same database: the same shape of n cases removed by plain multi-row DELETEs
    (500 ids per statement, one transaction), with no audit, no events, no workflow."""
    ids = await _seed_expired(ctx, org, n, "RAW")
    started = time.perf_counter()
    async with ctx.uow() as uow:
        for start in range(0, n, 500):
            chunk = ids[start : start + 500]
            await uow.execute(sa.delete(timeline_cells).where(timeline_cells.c.case_id.in_(chunk)))
            await uow.execute(sa.delete(cases).where(cases.c.id.in_(chunk)))
        await uow.commit()
    wall = time.perf_counter() - started
    return {"cases": n, "seconds": round(wall, 3), "cases_per_s": round(n / wall, 1)}


async def bench_purge(ctx: AppContext, client: Client, queue: str, org: tuple[str, str, str], n: int) -> dict[str, Any]:
    await _seed_expired(ctx, org, n, "PURGE")
    schedule = await ensure_schedules(client, [CASE_MANAGEMENT], task_queue=queue, every=timedelta(days=1))
    before_a, before_w = Counter(ACTIVITIES), Counter(WORKFLOWS)
    started = time.perf_counter()
    await schedule.trigger()
    while True:
        async with ctx.uow(read_only=True) as uow:
            done = await uow.scalar(sa.select(sa.func.count()).select_from(case_purges))
        if done >= n:
            break
        await asyncio.sleep(0.5)
    wall = time.perf_counter() - started
    await schedule.delete()
    activities, workflows = _delta(before_a, ACTIVITIES), _delta(before_w, WORKFLOWS)
    return {
        "cases": n,
        "seconds": round(wall, 2),
        "cases_per_s": round(n / wall, 1),
        "workflows": workflows,
        "workflows_per_case": round(sum(workflows.values()) / n, 3),
        "activities": activities,
        "activities_per_case": round(sum(activities.values()) / n, 3),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="casem-bench-caseworker-"))
    endpoints = {t.name: DatabaseEndpoints(master=f"sqlite+aiosqlite:///{workdir / (t.name + '.db')}") for t in TENANTS}
    ctx = AppContext.open(endpoints)
    client = await Client.connect(args.temporal)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    async with ctx.uow() as uow:
        creds = await bootstrap_org(uow, "bench", "bench@example.com")
        project = await create_project(uow, creds.org_id, creds.user_id, key="BENCH", name="Bench")
        await uow.commit()
    org = (creds.org_id, creds.user_id, project.id)
    worker = build_worker(
        client,
        ctx,
        FilesystemBlobStore(workdir / "blobs"),
        task_queue=queue,
        extra_workflows=[NoopWorkflow],
        interceptors=[Counting()],
    )
    try:
        async with worker:
            noop = await bench_noop(client, queue, args.noop)
            merge = (
                await bench_merge(ctx, TemporalCaseworker(client, queue), org, args.duplicates, args.cells)
                if args.duplicates
                else None
            )
            purge = await bench_purge(ctx, client, queue, org, args.purges)
            raw_delete = await bench_raw_delete(ctx, org, args.purges)
    finally:
        await ctx.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "temporal": args.temporal,
        "database": "sqlite",
        "cpus": os.cpu_count(),
        "noop": noop,
        "merge": merge,
        "purge": purge,
        "raw_delete": raw_delete,
        "purge_vs_raw_delete": round(purge["cases_per_s"] / raw_delete["cases_per_s"], 4),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        # How far each is from Temporal's own ceiling, in workflows started and completed per second.
        "purge_vs_noop": round(purge["cases_per_s"] * purge["workflows_per_case"] / noop["workflows_per_s"], 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--temporal", default=os.environ.get("CASEM_TEST_TEMPORAL_ADDRESS", "127.0.0.1:7233"))
    parser.add_argument("--duplicates", type=int, default=50)
    parser.add_argument("--cells", type=int, default=20)
    parser.add_argument("--purges", type=int, default=10_000)
    parser.add_argument("--noop", type=int, default=1000)
    result = asyncio.run(main(parser.parse_args()))
    from _support import memory_column  # here, not at the top: the module's workflows load in Temporal's sandbox

    result["peak_rss_mb"] = memory_column("caseworker worker, casem's activities, the bench's client")
    print(json.dumps(result, indent=2))
