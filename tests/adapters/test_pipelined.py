"""Statements sent together to PostgreSQL: they run in the SQLAlchemy connection's transaction, a failing one
commits nothing, and the driver's errors leave as SQLAlchemy's (a lost server as a disconnect, its connection
dropped from the pool)."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from casem.adapters.availability import is_unavailable
from casem.adapters.storage.pipelined import (
    execute_commit_then_fetch,
    execute_then_commit,
    fetch_after,
    fetch_then_commit,
)
from casem.adapters.storage.tables import domain_events
from casem.app.context import AppContext
from casem.topology.tenants import CASE_MANAGEMENT
from tests.adapters.test_pooled_reads import single_connection_engine, terminate_backend
from tests.relay.test_relay import make_changes
from tests.support.fixtures.tenants import on_postgres_only


@on_postgres_only  # libpq's pipeline mode is PostgreSQL's
async def test_setup_and_query_share_the_transaction_sqlalchemy_then_commits(context: AppContext) -> None:
    db = context.databases[CASE_MANAGEMENT]
    async with db.writer.connect() as conn:
        transaction = await conn.begin()
        rows = await fetch_after(
            conn,
            ["SELECT set_config('application_name', 'pipelined-test', true)"],
            "SELECT current_setting('application_name') AS name, 7 AS n",
        )
        assert [(row.name, row.n) for row in rows] == [("pipelined-test", 7)]  # the setting applies to the query
        # SQLAlchemy goes on in the driver's transaction: what it writes is committed by its own commit.
        await conn.execute(sa.text("CREATE TEMPORARY TABLE seen (n int) ON COMMIT PRESERVE ROWS"))
        await conn.execute(sa.text("INSERT INTO seen VALUES (1)"))
        await transaction.commit()
        assert (await conn.execute(sa.text("SELECT current_setting('application_name')"))).scalar_one() != (
            "pipelined-test"
        )  # set for the transaction only
        assert (await conn.execute(sa.text("SELECT count(*) FROM seen"))).scalar_one() == 1
        await conn.rollback()


@on_postgres_only  # libpq's pipeline mode is PostgreSQL's
async def test_execute_then_commit_commits_the_statement_and_nothing_when_it_fails(context: AppContext) -> None:
    db = context.databases[CASE_MANAGEMENT]
    total = await make_changes(context, cases=1, changes_per_case=1)
    mark = "UPDATE domain_events SET published_at = now() WHERE seq = ANY(%s::bigint[])"
    async with db.writer.connect() as conn:
        seqs = list((await conn.execute(sa.select(domain_events.c.seq).order_by(domain_events.c.seq))).scalars())
        await conn.rollback()
        assert len(seqs) == total >= 2

        transaction = await conn.begin()
        await conn.execute(sa.update(domain_events).where(domain_events.c.seq == seqs[0]).values(version=2))
        await execute_then_commit(conn, mark, (seqs[:1],))
        await transaction.commit()

        # A failing statement: the earlier write of its transaction is not committed either.
        transaction = await conn.begin()
        await conn.execute(sa.update(domain_events).where(domain_events.c.seq == seqs[1]).values(version=3))
        with pytest.raises(DBAPIError) as failed:
            await execute_then_commit(conn, "UPDATE domain_events SET published_at = 1 / 0 WHERE seq = ANY(%s)", [[1]])
        assert isinstance(failed.value.orig, psycopg.errors.DatatypeMismatch)  # the driver's error, kept
        assert not failed.value.connection_invalidated  # the statement failed, not the connection
        await transaction.rollback()

    async with db.reader.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(domain_events.c.seq, domain_events.c.version, domain_events.c.published_at).where(
                    domain_events.c.seq.in_(seqs[:2])
                )
            )
        ).all()
    state = {row.seq: (row.version, row.published_at is not None) for row in rows}
    assert state == {seqs[0]: (2, True), seqs[1]: (1, False)}


@on_postgres_only  # libpq's pipeline mode is PostgreSQL's
async def test_execute_commit_then_fetch_commits_then_queries_in_a_new_open_transaction(context: AppContext) -> None:
    db = context.databases[CASE_MANAGEMENT]
    await make_changes(context, cases=1, changes_per_case=2)
    mark = "UPDATE domain_events SET published_at = now() WHERE seq = ANY(%s::bigint[])"
    setting = "SELECT set_config('application_name', 'pipelined-test', true)"
    async with db.writer.connect() as conn, db.writer.connect() as other:
        seqs = list((await conn.execute(sa.select(domain_events.c.seq).order_by(domain_events.c.seq))).scalars())
        await conn.rollback()

        async def free(seq: int) -> bool:
            """Whether another transaction may lock the row (it is not held by `conn`'s open transaction)."""
            async with other.begin():
                locking = sa.select(domain_events.c.seq).where(domain_events.c.seq == seq)
                return (await other.execute(locking.with_for_update(skip_locked=True))).first() is not None

        transaction = await conn.begin()
        await conn.execute(sa.update(domain_events).where(domain_events.c.seq == seqs[0]).values(version=2))
        rows = await execute_commit_then_fetch(
            conn,
            mark,
            (seqs[:1],),
            [setting],
            f"SELECT seq, current_setting('application_name') AS name FROM domain_events WHERE seq = {seqs[1]}"
            " FOR UPDATE",
        )
        assert [(row.seq, row.name) for row in rows] == [(seqs[1], "pipelined-test")]
        # The first transaction is committed, its earlier write with the mark; the query's lock is held by the second.
        async with db.reader.connect() as reader:
            first = (await reader.execute(sa.select(domain_events).where(domain_events.c.seq == seqs[0]))).one()
        assert (first.version, first.published_at is not None) == (2, True)
        assert not await free(seqs[1])
        await transaction.rollback()  # SQLAlchemy's transaction ends the new one
        assert await free(seqs[1])

        # A failing statement: nothing after it runs, and its transaction's earlier write is not committed.
        transaction = await conn.begin()
        await conn.execute(sa.update(domain_events).where(domain_events.c.seq == seqs[1]).values(version=3))
        with pytest.raises(DBAPIError) as failed:
            await execute_commit_then_fetch(
                conn, "UPDATE domain_events SET published_at = 1 / 0 WHERE seq = ANY(%s)", [[1]], [], "SELECT 1"
            )
        assert isinstance(failed.value.orig, psycopg.errors.DatatypeMismatch)  # the driver's error, kept
        await transaction.rollback()
    async with db.reader.connect() as reader:
        second = (await reader.execute(sa.select(domain_events).where(domain_events.c.seq == seqs[1]))).one()
    assert (second.version, second.published_at) == (1, None)


@on_postgres_only
async def test_a_server_lost_since_the_connections_last_use_is_a_disconnect_and_the_pool_starts_over(
    context: AppContext,
) -> None:
    # The pool pings only connections that sat idle: a pipeline can be the first to meet a server that went away
    # (CI's outage test saw the shared rate limiter's count do so, and the HTTP layer answer nothing).
    engine = single_connection_engine(context, idle_s=3600)  # never idle long enough to be pinged
    try:
        async with engine.connect() as conn:
            first = int((await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one())
            await conn.rollback()
        terminate_backend(context, first)
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as failed:
                await fetch_then_commit(conn, [], "SELECT %s::int AS n", [1])
        assert failed.value.connection_invalidated
        assert is_unavailable(failed.value)  # answered 503 with Retry-After by HTTP, waited out by workers
        async with engine.connect() as conn:  # the dead connection was dropped: a new one serves
            assert await fetch_then_commit(conn, [], "SELECT pg_backend_pid() AS pid", []) != [(first,)]
    finally:
        await engine.dispose()
