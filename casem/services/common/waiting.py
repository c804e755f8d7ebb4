"""Waiting in place for an engine that is away, instead of exiting (and being restarted again and again).

`ensure_topics_waiting` is how every service makes sure of its topics at start-up: while the bus is away it waits
with back-off, its `EngineWaits` says not ready naming the bus (one log line when the bus goes, one when it is back),
and a stop meanwhile ends the wait at once. A refusal that is not an outage (a bad topic name, authorization) still
fails the start: waiting cannot fix it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from prometheus_client import Counter

from casem.adapters.availability import is_unavailable
from casem.adapters.bus import Bus, BusError
from casem.adapters.bus.strategies import Retry, RetryPolicy
from casem.adapters.search import SearchBackendError
from casem.services.common.ops import EngineWaits

STARTUP_WAITS = Counter(
    "casem_startup_engine_waits_total", "Waits at start-up for an engine that is away", ["service", "engine"]
)

# Only outages are waited for (however long; until stopped); anything else fails the start at once.
STARTUP_WAIT = RetryPolicy(
    max_attempts=1, initial_backoff_s=0.2, max_backoff_s=5.0, retry_on=(), wait_on=is_unavailable
)


def engine_of(error: BaseException) -> str:
    """Which engine an unavailability is about: the search engine, the bus, Temporal, else the database."""
    current: BaseException | None = error
    for _ in range(20):
        if current is None:
            break
        if isinstance(current, SearchBackendError):
            return "search"
        if isinstance(current, BusError):
            return "bus"
        if type(current).__module__.startswith("temporalio"):
            return "temporal"
        current = current.__cause__ or current.__context__
    return "database"


async def ensure_topics_waiting(
    bus: Bus,
    topics: Iterable[tuple[str, int]],
    waits: EngineWaits,
    *,
    stop: asyncio.Event | None = None,
    retry: Retry | None = None,
    policy: RetryPolicy = STARTUP_WAIT,
) -> bool:
    """Make sure each (name, partitions) topic exists, waiting in place while the bus is away.

    True once they all exist; False when stopped while waiting: `stop` set (which also ends an attempt in progress,
    from the caller's side), or `retry` (a caller's own `Retry`, whose waits are then its policy's) stopped.
    Meanwhile `waits` reports the bus as awaited (its readiness: not ready), and logs only when that changes."""
    retry = retry or Retry(policy)

    async def attempt(name: str, partitions: int) -> int:
        try:
            return await bus.ensure_topic(name, partitions)
        except Exception as error:
            if retry.policy.waits_for(error) and not retry.stopped:
                STARTUP_WAITS.labels(waits.service, "bus").inc()
                waits.waiting("bus", error)  # logs once per outage, not once per wait
            raise

    async def all_topics() -> None:
        for name, partitions in topics:
            await retry.call(attempt, name, partitions)

    work = asyncio.create_task(all_topics())
    stopped = asyncio.create_task(stop.wait()) if stop is not None else None
    try:
        if stopped is not None:
            await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():  # stopped while waiting: an attempt in progress is abandoned, not awaited
                retry.stop()
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await work
                return False
        try:
            await work
        except Exception:
            if retry.stopped:
                return False
            raise
    finally:
        if stopped is not None:
            stopped.cancel()
        if not work.done():  # the caller was cancelled
            work.cancel()
    waits.back("bus")
    return True
