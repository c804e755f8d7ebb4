"""How reads use the pool: on PostgreSQL a read-only unit of work runs in autocommit (no transaction left open
around its reads), a read-only unit of work refuses writes on every engine, and a pooled connection is pinged
only when it sat idle (one that died while idle is replaced; one that died since its last use fails its next
statement as a disconnect, and the pool starts over)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
import sqlalchemy as sa
from psycopg.pq import TransactionStatus
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from casem.adapters.storage.database import ping_when_idle
from casem.adapters.storage.tables import cases
from casem.app.context import AppContext
from casem.domain.cases import Case
from casem.topology.tenants import CASE_MANAGEMENT
from tests.support.fixtures.tenants import on_postgres_only


async def _transaction_status(context: AppContext, *, read_only: bool) -> TransactionStatus:
    async with context.uow(read_only=read_only) as uow:
        assert (await uow.scalar(sa.select(sa.func.count()).select_from(cases))) == 0
        conn = await uow.session.connection()
        return (await conn.get_raw_connection()).driver_connection.info.transaction_status


@on_postgres_only  # SQLite reads keep their deferred transaction
async def test_a_read_leaves_no_transaction_open_and_a_write_unit_of_work_still_has_one(context: AppContext) -> None:
    assert await _transaction_status(context, read_only=True) == TransactionStatus.IDLE
    assert await _transaction_status(context, read_only=False) == TransactionStatus.INTRANS


async def test_a_read_only_unit_of_work_refuses_writes(context: AppContext) -> None:
    async with context.uow(read_only=True) as uow:
        with pytest.raises(RuntimeError, match="cannot write"):
            await uow.execute(sa.update(cases).values(title="changed"))
        with pytest.raises(RuntimeError, match="cannot write"):
            uow.add(uow.build(Case, id="c1", org_id="o1", title="never stored"))


def single_connection_engine(context: AppContext, idle_s: float) -> AsyncEngine:
    url = context.databases[CASE_MANAGEMENT].writer.url
    engine = create_async_engine(url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_s=idle_s)
    return engine


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one())


def terminate_backend(context: AppContext, pid: int) -> None:
    url = context.databases[CASE_MANAGEMENT].writer.url.set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


@on_postgres_only
async def test_a_connection_that_died_while_idle_is_replaced_at_checkout(context: AppContext) -> None:
    engine = single_connection_engine(context, idle_s=0.05)
    try:
        first = await _backend_pid(engine)
        terminate_backend(context, first)
        await asyncio.sleep(0.1)  # idle past the threshold: pinged, found dead, replaced
        assert await _backend_pid(engine) != first
    finally:
        await engine.dispose()


@on_postgres_only
async def test_a_connection_that_died_since_its_last_use_fails_once_as_a_disconnect(context: AppContext) -> None:
    engine = single_connection_engine(context, idle_s=3600)  # never idle long enough to be pinged
    try:
        first = await _backend_pid(engine)
        terminate_backend(context, first)
        with pytest.raises(DBAPIError) as failed:
            await _backend_pid(engine)
        assert failed.value.connection_invalidated  # what the HTTP layer answers 503 (Retry-After) for
        assert await _backend_pid(engine) not in (first, None)  # the pool started over
    finally:
        await engine.dispose()
