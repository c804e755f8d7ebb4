"""The caseworker's Temporal Schedules, created (or brought up to date) every time the worker starts.

retention sweep: every `CASEM_RETENTION_SWEEP_SECONDS` (default hourly) a RetentionSweepWorkflow starts
the retention workflow of every closed, archived case that lacks one, so a lost `case.archived` event
(or a retention policy set after the archive) still ends in a purge.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta

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

from casem.adapters.workflows.contracts import RETENTION_SWEEP, TASK_QUEUE, RetentionSweepInput

DEFAULT_SWEEP_EVERY = timedelta(hours=1)


def retention_sweep_schedule_id(task_queue: str = TASK_QUEUE) -> str:
    # One schedule per task queue: separate deployments (and tests) sharing a namespace keep their own.
    return f"casem-retention-sweep-{task_queue}"


def sweep_interval(env: dict[str, str] | None = None) -> timedelta:
    env = dict(os.environ) if env is None else env
    seconds = env.get("CASEM_RETENTION_SWEEP_SECONDS")
    return timedelta(seconds=int(seconds)) if seconds else DEFAULT_SWEEP_EVERY


def retention_sweep_schedule(tenants: Sequence[str], task_queue: str, every: timedelta) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RETENTION_SWEEP,
            RetentionSweepInput(list(tenants)),
            id=f"retention-sweep-{task_queue}",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        # A sweep still running when the next is due covers it: skip rather than pile up.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_schedules(
    client: Client, tenants: Sequence[str], *, task_queue: str = TASK_QUEUE, every: timedelta | None = None
) -> ScheduleHandle:
    """Create the retention-sweep schedule, or update it to this worker's settings: safe at every start."""
    schedule = retention_sweep_schedule(tenants, task_queue, every or sweep_interval())
    schedule_id = retention_sweep_schedule_id(task_queue)
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
