"""case-event-relay on SQLite in a file: a commit with outbox rows made by another process wakes an idle relay
through the database's doorbells (casem.adapters.doorbell), as LISTEN/NOTIFY does on PostgreSQL
(tests/relay/test_relay_listen.py); without FIFOs it still polls."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from casem.adapters.doorbell import doorbell_directory
from casem.app.context import AppContext
from casem.services.case_event_relay.relay import Relay, RelaySettings
from casem.topology.tenants import CASE_MANAGEMENT
from tests.relay.outbox_support import commit_in_another_process, published_within, tenant_context
from tests.support.bus_harness import Harness

# Far longer than any test here waits: a publish within the bound was woken, not polled.
NEVER_POLL = RelaySettings(idle_poll_s=600.0, idle_poll_max_s=600.0)
# Far below the one second an idle relay polls at by default, generous for a loaded two-core machine.
DOORBELL_BOUND_S = 0.25


@pytest.fixture
async def sqlite_context(tmp_path: Path) -> AsyncIterator[AppContext]:
    async with tenant_context("sqlite", tmp_path) as ctx:
        yield ctx


async def test_a_commit_in_another_process_wakes_an_idle_relay(sqlite_context: AppContext, tmp_path: Path) -> None:
    harness = Harness("embedded", tmp_path)
    bus = harness.bus()
    topic = await harness.topic(bus, partitions=1)
    db = sqlite_context.databases[CASE_MANAGEMENT]
    relay = Relay(db, harness.producer(bus), topic, NEVER_POLL)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.5)  # the first (empty) pass is over: the relay now waits 600 s
        assert relay.doorbell is not None and relay.doorbell.active
        passes = relay.passes
        await commit_in_another_process(sqlite_context, "elsewhere-1")
        # Its commits rang before it exited: the relay's pass has started, and soon published them.
        assert await published_within(sqlite_context, DOORBELL_BOUND_S)
        assert relay.passes > passes
        assert not task.done()
    finally:
        relay.stop()
        await asyncio.wait_for(task, 30)
        await harness.aclose()
    assert db.sqlite_file is not None
    assert os.listdir(doorbell_directory(db.sqlite_file)) == []  # the relay's FIFO went when it stopped


async def test_without_fifos_a_commit_in_another_process_is_found_by_polling(
    sqlite_context: AppContext, tmp_path: Path, fifos_refused: None
) -> None:
    harness = Harness("embedded", tmp_path)
    bus = harness.bus()
    topic = await harness.topic(bus, partitions=1)
    relay = Relay(
        sqlite_context.databases[CASE_MANAGEMENT], harness.producer(bus), topic, RelaySettings(idle_poll_max_s=0.2)
    )
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.5)
        assert relay.doorbell is not None and not relay.doorbell.active
        await commit_in_another_process(sqlite_context, "elsewhere-2")
        assert await published_within(sqlite_context, 10.0)  # at the relay's next poll
    finally:
        relay.stop()
        await asyncio.wait_for(task, 30)
        await harness.aclose()
