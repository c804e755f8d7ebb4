"""A 409 comes from its cause: only a unique key already taken is a conflict; other integrity errors (a foreign
key, a NOT NULL) stay errors, on SQLite and PostgreSQL alike, from the real drivers' errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from casem.adapters.storage.conflicts import duplicate_is_conflict, is_unique_violation
from casem.domain.errors import Conflict
from tests.support.databases import create_postgres_database, drop_postgres_database

metadata = sa.MetaData()
parents = sa.Table("parents", metadata, sa.Column("id", sa.Integer, primary_key=True))
children = sa.Table(
    "children",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(20), nullable=False, unique=True),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("parents.id"), nullable=False),
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        engine = sa.create_engine("sqlite://")
        sa.event.listen(engine, "connect", lambda conn, _: conn.execute("PRAGMA foreign_keys=ON"))
        dsn = None
    else:
        dsn = create_postgres_database("conflicts")
        engine = sa.create_engine(dsn)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(parents).values(id=1))
        conn.execute(sa.insert(children).values(id=1, name="taken", parent_id=1))
    yield engine
    engine.dispose()
    if dsn is not None:
        drop_postgres_database(dsn)


def _fails(engine: sa.Engine, **values: object) -> IntegrityError:
    with pytest.raises(IntegrityError) as raised, engine.begin() as conn:
        conn.execute(sa.insert(children).values(**values))
    return raised.value


def test_only_a_taken_unique_key_is_a_conflict(engine: sa.Engine) -> None:
    assert is_unique_violation(_fails(engine, id=2, name="taken", parent_id=1))  # a unique column
    assert is_unique_violation(_fails(engine, id=1, name="other", parent_id=1))  # the primary key
    assert not is_unique_violation(_fails(engine, id=3, name="orphan", parent_id=99))  # a foreign key
    assert not is_unique_violation(_fails(engine, id=4, name=None, parent_id=1))  # NOT NULL


def test_duplicate_is_conflict_maps_the_cause_not_the_route(engine: sa.Engine) -> None:
    taken = sa.insert(children).values(id=2, name="taken", parent_id=1)
    with pytest.raises(Conflict, match="already there"), duplicate_is_conflict("already there"), engine.begin() as c:
        c.execute(taken)
    orphan = sa.insert(children).values(id=3, name="orphan", parent_id=99)  # not a conflict: stays an error
    with pytest.raises(IntegrityError), duplicate_is_conflict("already there"), engine.begin() as c:
        c.execute(orphan)
