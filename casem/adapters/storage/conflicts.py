"""Which integrity errors are conflicts: a row that already exists (a unique or primary key) is one, and is
answered as `Conflict` (409); any other integrity error (a foreign key, a NOT NULL, a check) is a defect of
ours, never the caller's conflict, and stays an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError

from casem.domain.errors import Conflict

UNIQUE_SQLSTATE = "23505"  # PostgreSQL's unique_violation (primary keys included)
SQLITE_UNIQUE = ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")


def is_unique_violation(exc: BaseException) -> bool:
    """Whether `exc` (an IntegrityError, or the driver's error it wraps) says a unique key is already taken."""
    cause = exc.orig if isinstance(exc, IntegrityError) else exc
    if getattr(cause, "sqlstate", None) == UNIQUE_SQLSTATE:
        return True
    if getattr(cause, "sqlite_errorname", None) in SQLITE_UNIQUE:
        return True
    # SQLite builds without extended error names still say which constraint failed.
    return str(cause).startswith("UNIQUE constraint failed")


@contextmanager
def duplicate_is_conflict(detail: str) -> Iterator[None]:
    """Inside: a unique key already taken (a concurrent request won the race) becomes `Conflict(detail)`;
    other integrity errors pass through unchanged."""
    try:
        yield
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise Conflict(detail) from exc
