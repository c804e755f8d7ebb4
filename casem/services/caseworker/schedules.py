"""The caseworker's Temporal Schedules, created (or brought up to date) every time the worker starts.

retention sweep: every `CASEM_RETENTION_SWEEP_SECONDS` (default hourly) a RetentionSweepWorkflow starts
the retention workflow of every closed, archived case not yet due that lacks one, and purges the cases already
due in batches (RetentionPurgeBatchWorkflow), so a lost `case.archived` event (or a retention policy set after
the archive) still ends in a purge. `CASEM_RETENTION_PURGE_BATCH` (default 500): due cases per purge activity.

pending-merge sweep: every `CASEM_MERGE_SWEEP_SECONDS` (default every 5 minutes) a PendingMergeSweepWorkflow
starts the workflow of every merge left PENDING (or marks it FAILED when it cannot start).

auto-close sweep: every `CASEM_AUTO_CLOSE_SWEEP_SECONDS` (default every 10 minutes) an AutoCloseSweepWorkflow
closes the inactive cases of projects whose `auto_close_inactive_cases` setting is on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from casem.adapters.workflows.contracts import (
    AUTO_CLOSE_SWEEP,
    PENDING_MERGE_SWEEP,
    PURGE_PER_ACTIVITY,
    RETENTION_SWEEP,
    TASK_QUEUE,
    AutoCloseSweepInput,
    PendingMergeSweepInput,
    RetentionSweepInput,
)

DEFAULT_SWEEP_EVERY = timedelta(hours=1)
DEFAULT_AUTO_CLOSE_EVERY = timedelta(minutes=10)
DEFAULT_MERGE_SWEEP_EVERY = timedelta(minutes=5)


def retention_sweep_schedule_id(task_queue: str = TASK_QUEUE) -> str:
    # One schedule per task queue: separate deployments (and tests) sharing a namespace keep their own.
    return f"casem-retention-sweep-{task_queue}"


def auto_close_schedule_id(task_queue: str = TASK_QUEUE) -> str:
    return f"casem-auto-close-{task_queue}"


def pending_merge_schedule_id(task_queue: str = TASK_QUEUE) -> str:
    return f"casem-pending-merges-{task_queue}"


def schedule_ids(task_queue: str = TASK_QUEUE) -> list[str]:
    """Every schedule `ensure_schedules` keeps for the task queue."""
    return [
        retention_sweep_schedule_id(task_queue),
        auto_close_schedule_id(task_queue),
        pending_merge_schedule_id(task_queue),
    ]


def _interval(env: dict[str, str] | None, name: str, default: timedelta) -> timedelta:
    env = dict(os.environ) if env is None else env
    seconds = env.get(name)
    return timedelta(seconds=int(seconds)) if seconds else default


def sweep_interval(env: dict[str, str] | None = None) -> timedelta:
    return _interval(env, "CASEM_RETENTION_SWEEP_SECONDS", DEFAULT_SWEEP_EVERY)


def auto_close_interval(env: dict[str, str] | None = None) -> timedelta:
    return _interval(env, "CASEM_AUTO_CLOSE_SWEEP_SECONDS", DEFAULT_AUTO_CLOSE_EVERY)


def merge_sweep_interval(env: dict[str, str] | None = None) -> timedelta:
    return _interval(env, "CASEM_MERGE_SWEEP_SECONDS", DEFAULT_MERGE_SWEEP_EVERY)


def _every(workflow: str, argument: Any, workflow_id: str, task_queue: str, every: timedelta) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(workflow, argument, id=workflow_id, task_queue=task_queue),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        # A sweep still running when the next is due covers it: skip rather than pile up.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


def purge_per_activity(env: dict[str, str] | None = None) -> int:
    """CASEM_RETENTION_PURGE_BATCH: due cases one purge activity removes in one transaction (default 500)."""
    env = dict(os.environ) if env is None else env
    value = env.get("CASEM_RETENTION_PURGE_BATCH")
    return max(1, int(value)) if value else PURGE_PER_ACTIVITY


def retention_sweep_schedule(
    tenants: Sequence[str], task_queue: str, every: timedelta, per_activity: int = PURGE_PER_ACTIVITY
) -> Schedule:
    argument = RetentionSweepInput(list(tenants), purge_per_activity=per_activity)
    return _every(RETENTION_SWEEP, argument, f"retention-sweep-{task_queue}", task_queue, every)


def auto_close_schedule(tenants: Sequence[str], task_queue: str, every: timedelta) -> Schedule:
    return _every(AUTO_CLOSE_SWEEP, AutoCloseSweepInput(list(tenants)), f"auto-close-{task_queue}", task_queue, every)


def pending_merge_schedule(tenants: Sequence[str], task_queue: str, every: timedelta) -> Schedule:
    argument = PendingMergeSweepInput(list(tenants))
    return _every(PENDING_MERGE_SWEEP, argument, f"pending-merges-{task_queue}", task_queue, every)


async def _ensure(client: Client, schedule_id: str, schedule: Schedule) -> ScheduleHandle:
    try:
        return await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(schedule_id)

        def replace(current: ScheduleUpdateInput) -> ScheduleUpdate:
            # Keep the operator's state (a paused schedule stays paused); take this worker's action and spec.
            schedule.state = current.description.schedule.state
            return ScheduleUpdate(schedule=schedule)

        await handle.update(replace)
        return handle


async def ensure_schedules(
    client: Client,
    tenants: Sequence[str],
    *,
    task_queue: str = TASK_QUEUE,
    every: timedelta | None = None,
    auto_close_every: timedelta | None = None,
) -> ScheduleHandle:
    """Create the caseworker's schedules, or update them to this worker's settings: safe at every start.
    Returns the retention sweep's handle."""
    await _ensure(
        client,
        pending_merge_schedule_id(task_queue),
        pending_merge_schedule(tenants, task_queue, merge_sweep_interval()),
    )
    await _ensure(
        client,
        auto_close_schedule_id(task_queue),
        auto_close_schedule(tenants, task_queue, auto_close_every or auto_close_interval()),
    )
    return await _ensure(
        client,
        retention_sweep_schedule_id(task_queue),
        retention_sweep_schedule(tenants, task_queue, every or sweep_interval(), purge_per_activity()),
    )
