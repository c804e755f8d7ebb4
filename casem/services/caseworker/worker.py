"""The caseworker process: one Temporal worker running the workflows and activities on the task queue."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from casem.adapters.blobs import BlobStore
from casem.adapters.workflows.client import TemporalCaseworker, connect_client
from casem.app.context import AppContext
from casem.app.oncall.delivery import Notifier, Senders
from casem.services.caseworker.activities import CaseworkerActivities
from casem.services.caseworker.auto_close import AutoCloseActivities
from casem.services.caseworker.merges import MergeActivities
from casem.services.caseworker.paging import PageActivities
from casem.services.caseworker.pending_merges import PendingMergeActivities
from casem.services.caseworker.scanners import EicarScanner, Scanner
from casem.services.caseworker.workflows import TASK_QUEUE, WORKFLOWS


def build_worker(
    client: Client,
    ctx: AppContext,
    blobs: BlobStore,
    *,
    scanners: Sequence[Scanner] | None = None,
    task_queue: str = TASK_QUEUE,
    extra_workflows: Sequence[type] = (),
    interceptors: Sequence[Any] = (),
    notifier: Notifier | None = None,
) -> Worker:
    """`notifier`: how pages reach people (casem's senders, configured from the environment, unless given)."""
    starter = TemporalCaseworker(client, task_queue)  # the sweeps start workflows on this queue
    activities = CaseworkerActivities(ctx, blobs, [EicarScanner()] if scanners is None else scanners, retention=starter)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[*WORKFLOWS, *extra_workflows],  # extras: e.g. the bench's no-op baseline workflow
        activities=[
            *activities.all(),
            *MergeActivities(ctx).all(),
            *PageActivities(ctx, notifier if notifier is not None else Senders()).all(),
            *AutoCloseActivities(ctx).all(),
            *PendingMergeActivities(ctx, starter).all(),
        ],
        interceptors=list(interceptors),
    )


async def run_worker(address: str, ctx: AppContext, blobs: BlobStore, *, namespace: str = "default") -> None:
    """Run until cancelled (`casem up` and the caseworker deployment call this)."""
    client = await connect_client(address, namespace)
    async with build_worker(client, ctx, blobs):
        await asyncio.Event().wait()  # the worker polls until this task is cancelled
