"""Running the caseworker: the Temporal connection, the blob store, and `casem run caseworker`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import structlog

from casem.adapters.blobs import BlobStore, open_blob_store
from casem.adapters.workflows.client import (
    connect,
    connect_client,
    task_queue,
    temporal_address,
    temporal_namespace,
)
from casem.app.context import AppContext
from casem.services.caseworker.schedules import ensure_schedules
from casem.services.caseworker.worker import build_worker
from casem.services.common.ops import database_readiness, start_ops
from casem.topology.tenants import data_dir

log = structlog.get_logger("caseworker")


def blobs_from_env(env: dict[str, str] | None = None) -> BlobStore:
    """CASEM_BLOBS_URL (file path, file:// or s3://bucket/prefix?endpoint_url=...), else <data dir>/blobs."""
    env = dict(os.environ) if env is None else env
    return open_blob_store(env.get("CASEM_BLOBS_URL") or str(data_dir(env) / "blobs"))


async def run_caseworker(
    context: AppContext,
    address: str,
    *,
    namespace: str = "default",
    ops_host: str = "127.0.0.1",
    ops_port: int = 9090,
    stop: asyncio.Event | None = None,
) -> None:
    """The worker until `stop` (without one: SIGINT/SIGTERM); on shutdown Temporal hands unfinished
    activities to another worker."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    readiness = database_readiness(context.databases)
    ops = start_ops(readiness, ops_host, ops_port, stop)  # first: a taken port fails before anything starts
    try:
        client = await connect_client(address, namespace)
    except BaseException:
        stop.set()
        await ops
        raise
    blobs = blobs_from_env()
    queue = task_queue()
    # Idempotent: every replica's start creates the schedule or brings it up to date.
    await ensure_schedules(client, list(context.databases), task_queue=queue)
    worker = build_worker(client, context, blobs, task_queue=queue)
    run = asyncio.create_task(worker.run())
    log.info("caseworker started", temporal=address, namespace=namespace, task_queue=queue)
    await stop.wait()
    await worker.shutdown()  # stops polling, waits for in-flight activities (graceful timeout applies)
    with contextlib.suppress(asyncio.CancelledError):
        await run
    await ops


__all__ = ["blobs_from_env", "connect", "run_caseworker", "task_queue", "temporal_address", "temporal_namespace"]
