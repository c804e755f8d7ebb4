"""How a SQLite writer waits for the file's one write lock held by another connection (another process, as the
relay or case-intake would be): in short polls, taking the lock a few milliseconds after it is free (SQLite's own
busy handler slept up to 100 ms at a time), and failing as before ("database is locked") past the busy timeout."""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from casem.adapters.storage import database
from casem.app.context import AppContext
from casem.topology.tenants import CASE_MANAGEMENT
from tests.support.fixtures.tenants import on_sqlite_only


async def _hold_write_lock(context: AppContext) -> sqlite3.Connection:
    """Another connection to the tenant file, holding its write lock as another process's transaction would
    (after a first write here: the pool has its connection open, as a running service's has)."""
    path = context.databases[CASE_MANAGEMENT].writer.url.database
    assert path
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE IF NOT EXISTS lock_probe (id TEXT PRIMARY KEY)")
    await _write(context, f"first-{time.monotonic_ns()}")
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    return holder


async def _write(context: AppContext, value: str) -> None:
    async with context.uow() as uow:
        await uow.execute(sa.text("INSERT INTO lock_probe (id) VALUES (:id)"), {"id": value})
        await uow.commit()


async def _written(context: AppContext) -> set[str]:
    async with context.uow(read_only=True) as uow:
        return set((await uow.execute(sa.text("SELECT id FROM lock_probe"))).scalars())


@on_sqlite_only
async def test_a_writer_waits_for_the_lock_without_stopping_the_event_loop_and_takes_it_soon_after(
    context: AppContext,
) -> None:
    """Five waits, the lock released after 0.6 s plus a few milliseconds each time. SQLite's own busy handler
    sleeps 100 ms at a time by then, so it took the lock 50 ms after the release on average; polls of at most
    4 ms take it within a few milliseconds."""
    delays: list[float] = []
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    ticking = asyncio.create_task(ticker())
    try:
        for attempt in range(5):
            holder = await _hold_write_lock(context)
            released_at: list[float] = []

            def release_later(
                after: float = 0.6 + 0.017 * attempt,
                holder: sqlite3.Connection = holder,
                released_at: list[float] = released_at,
            ) -> None:
                time.sleep(after)
                released_at.append(time.monotonic())
                holder.execute("ROLLBACK")

            releaser = threading.Thread(target=release_later)
            releaser.start()
            try:
                await asyncio.wait_for(_write(context, f"waited-{attempt}"), 10)
                delays.append(time.monotonic() - released_at[0])
            finally:
                releaser.join()
                holder.close()
    finally:
        ticking.cancel()
    # The loop kept running while the writers waited (3 s of 5 ms ticks).
    assert ticks >= 200, ticks
    assert statistics.median(delays) < 0.025, delays
    assert {f"waited-{attempt}" for attempt in range(5)} <= await _written(context)


@on_sqlite_only
async def test_past_the_busy_timeout_the_writer_fails_as_locked(
    context: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 200)
    holder = await _hold_write_lock(context)
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError, match="locked"):
            await asyncio.wait_for(_write(context, "refused"), 10)
        assert 0.15 <= time.monotonic() - started < 5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # Nothing was written, and the next writer gets the lock at once.
    await _write(context, "after")
    written = await _written(context)
    assert "after" in written and "refused" not in written
