"""A flavor whose effect converges on the database (search-indexing) keeps no processed-events record and writes
nothing to the database: on SQLite its apply completes while another connection holds the file's write lock, and
it reads the primary, never a lagging replica (whose stale state it would converge the index on for good)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from casem.adapters.search import EmbeddedSearch, document_checksum
from casem.adapters.storage.migrate import upgrade
from casem.adapters.storage.tables import cases as cases_table
from casem.adapters.storage.tables import domain_events, handler_processed_events
from casem.app.cases import service as cases
from casem.app.context import AppContext
from casem.app.search.documents import case_documents
from casem.domain.events import with_sequence
from casem.services.case_event_handler.framework import Event, HandlerServices, converges
from casem.services.case_event_handler.runner import FlavorRunner
from casem.services.case_event_handler.service import load_flavor
from casem.topology.tenants import CASE_MANAGEMENT, DatabaseEndpoints
from tests.handlers.test_batch_apply import Outbox
from tests.handlers.test_runner import count
from tests.intake.stack import Tenant, new_tenant
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.fixtures.tenants import on_sqlite_only

FLAVOR = "search-indexing"


@pytest.fixture
async def search(tmp_path: Path) -> AsyncIterator[EmbeddedSearch]:
    s = EmbeddedSearch(tmp_path / "search")
    yield s
    await s.close()


def search_indexing(context: AppContext, search: EmbeddedSearch) -> FlavorRunner:
    return FlavorRunner(load_flavor(FLAVOR), context, None, HandlerServices(extras={"search": search}))  # type: ignore[arg-type]


async def new_cases(context: AppContext, tenant: Tenant, titles: list[str]) -> list[str]:
    made = []
    async with context.uow() as uow:
        for title in titles:
            case = await cases.create_case(
                uow, tenant.creds.org_id, tenant.creds.user_id, cases.NewCase(project_id=tenant.project_id, title=title)
            )
            made.append(case.id)
        await uow.commit()
    return made


async def assert_indexed(context: AppContext, search: EmbeddedSearch, org_id: str, case_ids: list[str]) -> None:
    async with context.uow() as uow:  # the master, whatever the context's replica holds
        expected = await case_documents(uow, [(org_id, c) for c in case_ids])
    assert set(expected) == set(case_ids)
    for case_id in case_ids:
        stored = await search.get(CASE_MANAGEMENT, org_id, case_id)
        assert stored is not None, case_id
        assert stored["checksum"] == document_checksum(expected[case_id])


def test_search_indexing_declares_that_its_effect_converges() -> None:
    assert converges(load_flavor(FLAVOR))
    assert not converges(load_flavor("audit-trail"))  # a database effect: it keeps its record


@on_sqlite_only
async def test_on_sqlite_the_flavor_applies_while_another_connection_holds_the_write_lock(
    context: AppContext, search: EmbeddedSearch
) -> None:
    tenant = await new_tenant(context)
    outbox = Outbox(context)
    await outbox.new_messages()  # the tenant's set-up events
    first, second = await new_cases(context, tenant, ["disk full", "fan loud"])
    messages = await outbox.new_messages()
    runner = search_indexing(context, search)

    path = context.databases[CASE_MANAGEMENT].writer.url.database
    assert path
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # what case-api's write transactions take
        # The lock is held: a writer that tries now is refused (no wait).
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            sqlite3.connect(path, timeout=0, isolation_level=None).execute("BEGIN IMMEDIATE")
        # The flavor would wait out the 30 s busy timeout for the lock; it needs none, so it finishes at once.
        await asyncio.wait_for(runner.handle_batch(messages[:1]), 10)
        await asyncio.wait_for(runner.apply(Event.from_bytes(messages[1].value)), 10)
        await asyncio.wait_for(runner.handle_batch(messages), 10)  # a redelivery: still no lock
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    await assert_indexed(context, search, tenant.creds.org_id, [first, second])
    assert await count(context, handler_processed_events, handler_processed_events.c.flavor == FLAVOR) == 0


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def lagging(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AppContext]:
    """The case-management tenant with a master and a replica that never replays anything (an empty database of
    the same schema)."""
    if request.param == "sqlite":
        master, replica = (f"sqlite+aiosqlite:///{tmp_path / name}" for name in ("master.db", "replica.db"))
    else:
        master, replica = create_postgres_database("conv_master"), create_postgres_database("conv_replica")
    try:
        upgrade(master)
        upgrade(replica)
        ctx = AppContext.open({CASE_MANAGEMENT: DatabaseEndpoints(master=master, replica=replica)}, migrate=False)
        try:
            yield ctx
        finally:
            await ctx.close()
    finally:
        if request.param == "postgres":
            drop_postgres_database(master)
            drop_postgres_database(replica)


async def test_the_flavor_reads_the_primary_not_a_lagging_replica(lagging: AppContext, tmp_path: Path) -> None:
    context = lagging
    tenant = await new_tenant(context)
    (case_id,) = await new_cases(context, tenant, ["printer jam"])
    async with context.uow() as uow:  # the outbox, on the master
        rows = (
            await uow.execute(
                sa.select(domain_events.c.seq, domain_events.c.envelope).where(domain_events.c.case_id == case_id)
            )
        ).all()
    assert rows
    events = [Event.from_bytes(json.dumps(with_sequence(row.envelope, row.seq)).encode()) for row in rows]
    # The replica has not seen the case; a read-only unit of work reads there unless told to read the primary.
    async with context.uow(read_only=True) as uow:
        assert await uow.scalar(sa.select(cases_table.c.id).where(cases_table.c.id == case_id)) is None
    async with context.uow(read_only=True, primary=True) as uow:
        assert await uow.scalar(sa.select(cases_table.c.id).where(cases_table.c.id == case_id)) == case_id
        with pytest.raises(RuntimeError, match="read-only"):
            await uow.execute(sa.delete(cases_table).where(cases_table.c.id == case_id))

    # Read on the replica, the case would look deleted and get no document; both paths index it.
    for batched in (False, True):
        search = EmbeddedSearch(tmp_path / f"search-{batched}")
        try:
            runner = search_indexing(context, search)
            if batched:
                assert await runner.apply_batch(CASE_MANAGEMENT, events) == len(events)
            else:
                assert await runner.apply(events[0])
            await assert_indexed(context, search, tenant.creds.org_id, [case_id])
        finally:
            await search.close()
