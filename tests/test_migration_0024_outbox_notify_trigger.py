"""Migration 0024_perf_outbox_notify_trigger: on PostgreSQL an INSERT of outbox rows notifies the outbox channel when
its transaction commits (once, with an empty payload), never when it rolls back, and the downgrade takes the trigger
away; on SQLite it changes nothing, both ways."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command

from casem.adapters.storage.migrate import alembic_config, sync_url, upgrade
from casem.adapters.storage.outbox_wakeup import OUTBOX_NOTIFY_CHANNEL, libpq_dsn
from tests.support.databases import create_postgres_database, drop_postgres_database

BEFORE = "0023_perf_outbox_pending"  # the revision this migration follows
INSERT = sa.text(
    "INSERT INTO domain_events (id, type, version, org_id, time, envelope) "
    "VALUES (:id, 'com.casem.org.created.v1', 1, :org, :time, '{}')"
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}"
        return
    dsn = create_postgres_database("notify")
    try:
        yield dsn
    finally:
        drop_postgres_database(dsn)


def _events(n: int) -> list[dict[str, object]]:
    now = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    return [{"id": str(uuid.uuid4()), "org": str(uuid.uuid4()), "time": now} for _ in range(n)]


def _heard(listening: psycopg.Connection) -> list[str]:
    return [note.payload for note in listening.notifies(timeout=1.0)]


def _triggers(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            query = "SELECT tgname FROM pg_trigger WHERE tgrelid = 'domain_events'::regclass AND NOT tgisinternal"
        else:
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'domain_events'"
        return set(conn.execute(sa.text(query)).scalars())


def test_outbox_inserts_notify_at_commit_and_the_downgrade_stops_it(url: str) -> None:
    upgrade(url, "head")
    engine = sa.create_engine(sync_url(url))
    try:
        if engine.dialect.name == "sqlite":  # nothing to notify with: the migration leaves the schema as it was
            assert _triggers(engine) == {"domain_events_list_pending"}
            command.downgrade(alembic_config(url), BEFORE)
            assert _triggers(engine) == {"domain_events_list_pending"}
            upgrade(url, "head")
            return
        assert _triggers(engine) == {"domain_events_list_pending", "domain_events_notify_outbox"}
        with psycopg.connect(libpq_dsn(url), autocommit=True) as listening:
            listening.execute(f"LISTEN {OUTBOX_NOTIFY_CHANNEL}")
            with pytest.raises(RuntimeError), engine.begin() as conn:
                conn.execute(INSERT, _events(1))
                raise RuntimeError("rolled back")
            assert _heard(listening) == []
            with engine.begin() as conn:  # two statements, one of them of three rows: one notification
                conn.execute(INSERT, _events(3))
                conn.execute(INSERT, _events(1))
            assert _heard(listening) == [""]

            command.downgrade(alembic_config(url), BEFORE)
            assert _triggers(engine) == {"domain_events_list_pending"}
            with engine.begin() as conn:
                conn.execute(INSERT, _events(1))
            assert _heard(listening) == []

            upgrade(url, "head")  # and up again
            with engine.begin() as conn:
                conn.execute(INSERT, _events(1))
            assert _heard(listening) == [""]
    finally:
        engine.dispose()
