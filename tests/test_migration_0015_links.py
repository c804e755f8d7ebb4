"""Migration 0015_fidelity: the merges' `case_links` rows become DUPLICATES links of `case_entity_links` carrying
their merge's id, none lost, a link stated both ways kept once; the downgrade gives them back. SQLite and
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

BEFORE = "0014_hardening"  # the revision this migration follows


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'links.db'}"
        return
    dsn = create_postgres_database("links")
    try:
        yield dsn
    finally:
        drop_postgres_database(dsn)


def test_merge_links_move_into_the_one_link_table_and_back(url: str) -> None:
    upgrade(url, BEFORE)
    org, dup1, dup2, primary, other = (str(uuid.uuid4()) for _ in range(5))
    merge1, merge2 = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime(2025, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    engine = sa.create_engine(sync_url(url))
    with engine.begin() as conn:
        for case_id, merge_id in ((dup1, merge1), (dup2, merge2)):
            conn.execute(
                sa.text(
                    "INSERT INTO case_links (id, org_id, case_id, linked_case_id, kind, merge_id, created_at) "
                    "VALUES (:id, :org, :case, :primary, 'duplicate_of', :merge, :at)"
                ),
                {
                    "id": str(uuid.uuid4()),
                    "org": org,
                    "case": case_id,
                    "primary": primary,
                    "merge": merge_id,
                    "at": now,
                },
            )
        # Someone had already said dup2 DUPLICATES primary; and dup1 BLOCKS another case.
        for child, relationship, creator in ((primary, "DUPLICATES", str(uuid.uuid4())), (other, "BLOCKS", None)):
            parent = dup2 if relationship == "DUPLICATES" else dup1
            conn.execute(
                sa.text(
                    "INSERT INTO case_entity_links (id, org_id, parent_entity_type, parent_entity_id, "
                    "child_entity_type, child_entity_id, relationship, created_by_id, created_at) "
                    "VALUES (:id, :org, 'CASE', :parent, 'CASE', :child, :rel, :creator, :at)"
                ),
                {
                    "id": str(uuid.uuid4()),
                    "org": org,
                    "parent": parent,
                    "child": child,
                    "rel": relationship,
                    "creator": creator,
                    "at": now,
                },
            )
    upgrade(url, "head")
    with engine.connect() as conn:
        assert "case_links" not in sa.inspect(conn).get_table_names()
        rows = conn.execute(
            sa.text(
                "SELECT parent_entity_id, child_entity_id, relationship, merge_id FROM case_entity_links "
                "ORDER BY relationship, parent_entity_id"
            )
        ).all()
    assert sorted(tuple(r) for r in rows) == sorted(
        [(dup1, other, "BLOCKS", None), (dup1, primary, "DUPLICATES", merge1), (dup2, primary, "DUPLICATES", merge2)]
    )
    # A second merge link for dup1 is refused: a case is merged into one primary.
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO case_entity_links (id, org_id, parent_entity_type, parent_entity_id, child_entity_type, "
                "child_entity_id, relationship, created_at, merge_id) VALUES (:id, :org, 'CASE', :dup, 'CASE', "
                ":other, 'DUPLICATES', :at, :merge)"
            ),
            {"id": str(uuid.uuid4()), "org": org, "dup": dup1, "other": other, "at": now, "merge": str(uuid.uuid4())},
        )

    command.downgrade(alembic_config(url), BEFORE)
    with engine.connect() as conn:
        back = conn.execute(sa.text("SELECT case_id, linked_case_id, kind, merge_id FROM case_links")).all()
        kept = conn.execute(sa.text("SELECT parent_entity_id, relationship FROM case_entity_links")).all()
    engine.dispose()
    assert sorted(tuple(r) for r in back) == sorted(
        [(dup1, primary, "duplicate_of", merge1), (dup2, primary, "duplicate_of", merge2)]
    )
    assert sorted(tuple(r) for r in kept) == sorted([(dup1, "BLOCKS"), (dup2, "DUPLICATES")])
