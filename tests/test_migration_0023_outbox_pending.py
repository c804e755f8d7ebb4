"""Migration 0023_perf_outbox_pending: the outbox rows not published yet are listed in `domain_events_pending` (the
ones stamped `published_at` are not), new rows are listed by the trigger in their own transaction (and not when it
rolls back), and the downgrade stamps what is no longer listed and gives the partial indexes back. SQLite and
PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from casem.adapters.storage.migrate import alembic_config, sync_url, upgrade
from tests.support.databases import create_postgres_database, drop_postgres_database

BEFORE = "0022_perf_outbox_mark"  # the revision this migration follows
INSERT = sa.text(
    "INSERT INTO domain_events (id, type, version, org_id, case_id, time, envelope, published_at) "
    "VALUES (:id, 'com.casem.case.priority_changed.v1', 1, :org, :case, :time, '{}', :published)"
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}"
        return
    dsn = create_postgres_database("outbox")
    try:
        yield dsn
    finally:
        drop_postgres_database(dsn)


def _event(case_id: str | None, published: datetime | None) -> dict[str, object]:
    now = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    return {"id": str(uuid.uuid4()), "org": str(uuid.uuid4()), "case": case_id, "time": now, "published": published}


def _listed(conn: sa.Connection) -> list[tuple[int, str | None]]:
    return [tuple(row) for row in conn.execute(sa.text("SELECT seq, case_id FROM domain_events_pending ORDER BY seq"))]


def test_unpublished_rows_are_listed_new_rows_too_and_the_downgrade_stamps_the_rest(url: str) -> None:
    upgrade(url, BEFORE)
    engine = sa.create_engine(sync_url(url))
    case_id = str(uuid.uuid4())
    stamped = datetime(2026, 1, 2, tzinfo=UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(INSERT, [_event(case_id, stamped), _event(case_id, None), _event(None, None)])
        seqs = list(conn.execute(sa.text("SELECT seq FROM domain_events ORDER BY seq")).scalars())
    upgrade(url, "head")
    with engine.connect() as conn:
        assert _listed(conn) == [(seqs[1], case_id), (seqs[2], None)]
        indexes = {index["name"] for index in sa.inspect(conn).get_indexes("domain_events")}
        assert not indexes & {"ix_domain_events_pending", "ix_domain_events_pending_case"}

    with engine.begin() as conn:  # one multi-row statement: every row listed
        conn.execute(INSERT, [_event(case_id, None), _event(None, None)])
    with engine.connect() as conn:
        newest = list(conn.execute(sa.text("SELECT seq FROM domain_events ORDER BY seq")).scalars())[3:]
        assert _listed(conn) == [(seqs[1], case_id), (seqs[2], None), (newest[0], case_id), (newest[1], None)]
    with pytest.raises(RuntimeError), engine.begin() as conn:  # listed with the row, or neither
        conn.execute(INSERT, [_event(case_id, None)])
        raise RuntimeError("rolled back")
    with engine.begin() as conn:
        assert len(_listed(conn)) == 4
        conn.execute(sa.text("DELETE FROM domain_events_pending WHERE seq = :seq"), {"seq": seqs[1]})  # published

    command.downgrade(alembic_config(url), BEFORE)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT seq, published_at FROM domain_events ORDER BY seq")).all()
        assert [seq for seq, published in rows if published is None] == [seqs[2], *newest]
        assert "domain_events_pending" not in sa.inspect(conn).get_table_names()
        indexes = {index["name"] for index in sa.inspect(conn).get_indexes("domain_events")}
        assert {"ix_domain_events_pending", "ix_domain_events_pending_case"} <= indexes
    with engine.begin() as conn:  # the trigger went with its table
        conn.execute(INSERT, [_event(case_id, None)])
    engine.dispose()
