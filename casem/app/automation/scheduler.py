"""The clock of the time-driven use cases (reminders, SLA breaches): call `tick(context, now)` periodically."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog

from casem.app.context import AppContext

log = structlog.get_logger("casem.scheduler")

Clock = Callable[[], datetime]
TickFn = Callable[[AppContext, datetime], Awaitable[int]]


async def run_scheduler(
    tick_fn: TickFn,
    context: AppContext,
    stop: asyncio.Event,
    *,
    interval_s: float = 30.0,
    clock: Clock = lambda: datetime.now(UTC),
) -> None:
    """Call `tick_fn(context, clock())` every `interval_s` until `stop` is set; a failed tick is retried next time."""
    while not stop.is_set():
        try:
            await tick_fn(context, clock())
        except Exception:  # a database hiccup must not end the loop; the next tick catches up
            log.exception("scheduler tick failed", tick=getattr(tick_fn, "__module__", "?"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
