"""case-event-relay on PostgreSQL: a commit in another process wakes an idle relay (LISTEN/NOTIFY, sent by the
outbox's trigger), a rollback notifies nobody, and the relay outlives its listening connection (it reconnects)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from casem.adapters.storage.outbox_wakeup import (
    OUTBOX_NOTIFY_CHANNEL,
    libpq_dsn,
    listener_application_name,
)
from casem.adapters.storage.tables import domain_events
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org
from casem.services.case_event_relay.relay import Relay, RelaySettings
from casem.topology.tenants import CASE_MANAGEMENT
from tests.relay.outbox_support import (
    commit_in_another_process,
    published_within,
    tenant_context,
    unpublished,
)
from tests.support.bus_harness import Harness

pytestmark = pytest.mark.postgres

# Far longer than any test here waits: a publish within PROMPT_S was woken, not polled.
NEVER_POLL = RelaySettings(idle_poll_s=600.0, idle_poll_max_s=600.0)
PROMPT_S = 10.0


@pytest.fixture
async def pg_context(tmp_path: Path) -> AsyncIterator[AppContext]:
    async with tenant_context("postgres", tmp_path) as ctx:
        yield ctx


async def start_idle_relay(ctx: AppContext, harness: Harness) -> tuple[Relay, asyncio.Task[None]]:
    bus = harness.bus()
    topic = await harness.topic(bus, partitions=1)
    relay = Relay(ctx.databases[CASE_MANAGEMENT], harness.producer(bus), topic, NEVER_POLL)
    task = asyncio.create_task(relay.run())
    await asyncio.sleep(0)  # run() made the listener
    assert relay.listener is not None
    await asyncio.wait_for(relay.listener.connected.wait(), PROMPT_S)
    return relay, task


async def test_a_commit_in_another_process_wakes_an_idle_relay(pg_context: AppContext, tmp_path: Path) -> None:
    harness = Harness("embedded", tmp_path)
    relay, task = await start_idle_relay(pg_context, harness)
    try:
        await asyncio.sleep(0.5)  # the first (empty) pass is over: the relay now waits 600 s
        await commit_in_another_process(pg_context, "elsewhere-1")
        assert await published_within(pg_context, PROMPT_S)
        assert not task.done()
    finally:
        relay.stop()
        await asyncio.wait_for(task, 30)
        await harness.aclose()
    assert relay.listener is not None and not relay.listener.connected.is_set()  # closed on stop


async def test_a_commit_with_outbox_rows_notifies_once_and_a_rolled_back_one_nobody(pg_context: AppContext) -> None:
    """The notification comes from the outbox's trigger (no statement of the unit of work sends it): delivered when
    the transaction that wrote outbox rows commits, once per transaction, never when it rolls back."""
    db = pg_context.databases[CASE_MANAGEMENT]
    async with await psycopg.AsyncConnection.connect(libpq_dsn(db.endpoints.master), autocommit=True) as listening:
        await listening.execute(f"LISTEN {OUTBOX_NOTIFY_CHANNEL}")

        sent: list[str] = []
        sa.event.listen(db.writer.sync_engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
        async with pg_context.uow() as uow:  # a creation's outbox rows written, then rolled back
            creds = await bootstrap_org(uow, "rolled-back", "rolled-back@example.com")
            await uow.session.flush()
            await uow.execute(
                sa.insert(domain_events).values(
                    id=str(uuid.uuid4()),
                    type="com.casem.org.created.v1",
                    version=1,
                    org_id=creds.org_id,
                    time=datetime.now(UTC),
                    envelope={},
                )
            )
        assert [n async for n in listening.notifies(timeout=1.0)] == []
        assert await unpublished(pg_context) == 0

        async with pg_context.uow() as uow:  # committed through the unit of work
            await bootstrap_org(uow, "committed", "committed@example.com")
            assert await uow.commit()
        assert [n.payload async for n in listening.notifies(timeout=2.0)] == [""]
        assert not [text for text in sent if "notify" in text.lower()]  # the unit of work sent none itself

        await commit_in_another_process(pg_context, "elsewhere-2")  # two commits with events
        heard = [n.payload async for n in listening.notifies(timeout=2.0)]
        assert heard == ["", ""]  # one per committing transaction with events


async def test_the_relay_outlives_its_listening_connection(pg_context: AppContext, tmp_path: Path) -> None:
    harness = Harness("embedded", tmp_path)
    relay, task = await start_idle_relay(pg_context, harness)
    assert relay.listener is not None
    database = make_url(pg_context.databases[CASE_MANAGEMENT].endpoints.master).database
    try:
        async with pg_context.databases[CASE_MANAGEMENT].writer.connect() as conn:
            killed = await conn.scalar(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = :name AND datname = :db"
                ),
                {"name": listener_application_name(CASE_MANAGEMENT), "db": database},
            )
        assert killed == 1
        for _ in range(int(PROMPT_S / 0.05)):  # reconnects after its first back-off (0.5 s)
            if relay.listener.connections >= 2 and relay.listener.connected.is_set():
                break
            await asyncio.sleep(0.05)
        assert relay.listener.connections == 2 and relay.listener.connected.is_set()
        assert not task.done()

        await asyncio.sleep(0.5)  # the pass the reconnect asked for is over
        await commit_in_another_process(pg_context, "elsewhere-3")
        assert await published_within(pg_context, PROMPT_S)
        assert not task.done()
    finally:
        relay.stop()
        await asyncio.wait_for(task, 30)
        await harness.aclose()
