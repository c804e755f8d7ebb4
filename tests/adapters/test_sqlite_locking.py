"""`begin_immediate` (casem/adapters/sqlite_locking.py): the write lock is polled for, not slept for in SQLite's busy
handler, and the connection's busy timeout is what it was afterwards, whatever happened."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from casem.adapters import sqlite_locking
from casem.adapters.sqlite_locking import WRITE_LOCK_POLL_S, begin_immediate


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A connection holding the database's write lock (its BEGIN IMMEDIATE), WAL as casem's files are."""
    conn = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("BEGIN IMMEDIATE")
    yield conn
    conn.close()


def _writer(tmp_path: Path, timeout_s: float) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "locked.db", isolation_level=None, timeout=timeout_s)


def _busy_timeout_ms(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA busy_timeout").fetchone()[0]


def test_an_unheld_lock_is_taken_at_once_and_the_busy_timeout_stays(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "locked.db").close()
    writer = _writer(tmp_path, 7.0)
    begin_immediate(writer)
    assert writer.in_transaction
    assert _busy_timeout_ms(writer) == 7000


def test_a_held_lock_is_polled_for_with_growing_pauses_and_taken_once_free(
    holder: sqlite3.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = _writer(tmp_path, 30.0)
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 6:
            holder.execute("COMMIT")  # the lock is free from the sixth pause on

    monkeypatch.setattr(sqlite_locking.time, "sleep", pause)
    begin_immediate(writer)

    assert writer.in_transaction
    first, longest = WRITE_LOCK_POLL_S
    assert pauses == [first, first * 2, first * 4, longest, longest, longest]
    assert _busy_timeout_ms(writer) == 30_000
    writer.execute("INSERT INTO t VALUES (1)")
    writer.execute("COMMIT")


def test_a_lock_held_past_the_busy_timeout_raises_locked(holder: sqlite3.Connection, tmp_path: Path) -> None:
    writer = _writer(tmp_path, 0.02)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        begin_immediate(writer)
    assert not writer.in_transaction
    assert _busy_timeout_ms(writer) == 20


def test_another_error_is_raised_as_it_is(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "locked.db").close()
    writer = _writer(tmp_path, 5.0)
    writer.execute("BEGIN")
    with pytest.raises(sqlite3.OperationalError, match="within a transaction"):
        begin_immediate(writer)
    assert _busy_timeout_ms(writer) == 5000
