"""Taking SQLite's write lock by polling for it, not through SQLite's busy handler.

SQLite's own handler sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 and then 100 ms between its tries, so a writer
often sleeps on long after the lock was free. A writer here tries BEGIN IMMEDIATE and, while the lock is held, tries
again after 0.5 ms, then doubling up to 4 ms between tries: it takes the lock a few milliseconds at most after it is
free. A try costs a failed BEGIN (microseconds); the wait stays bounded by the connection's busy timeout.

The storage's SQLAlchemy engines poll on the event loop (casem/adapters/storage/database.py); `begin_immediate`
is for plain sqlite3 connections used from a thread of their own (the embedded bus), where sleeping blocks nothing
else.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

WRITE_LOCK_POLL_S = (0.0005, 0.004)


def lock_pauses(timeout_s: float) -> Iterator[float]:
    """The pauses between tries for a held write lock: 0.5 ms, doubling up to 4 ms, for as long as the next try
    still falls within `timeout_s` of the first. Both pollers (this module's and the storage's) take their turns
    from here."""
    deadline = time.monotonic() + timeout_s
    pause, longest = WRITE_LOCK_POLL_S
    while time.monotonic() + pause <= deadline:
        yield pause
        pause = min(pause * 2, longest)


def is_locked(error: Exception) -> bool:
    """Whether a failed BEGIN met another connection's write lock (SQLITE_BUSY), not another error."""
    return "locked" in str(error)


def begin_immediate(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, polled while another connection (of this process or another) holds the write lock. Past the
    connection's busy timeout, or on any other error, raises the error BEGIN raised (sqlite3.OperationalError). The
    busy timeout is off meanwhile (each try fails at once instead of entering SQLite's sleeps), on again after."""
    (timeout_ms,) = conn.execute("PRAGMA busy_timeout").fetchone()
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        for pause in lock_pauses(timeout_ms / 1000):
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if not is_locked(error):
                    raise
            time.sleep(pause)
        conn.execute("BEGIN IMMEDIATE")  # the last try: still held, it raises "database is locked"
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")
