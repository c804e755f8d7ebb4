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

WRITE_LOCK_POLL_S = (0.0005, 0.004)


def begin_immediate(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, polled while another connection (of this process or another) holds the write lock. Past the
    connection's busy timeout, or on any other error, raises the error BEGIN raised (sqlite3.OperationalError). The
    busy timeout is off meanwhile (each try fails at once instead of entering SQLite's sleeps), on again after."""
    (timeout_ms,) = conn.execute("PRAGMA busy_timeout").fetchone()
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        deadline = None
        pause, longest = WRITE_LOCK_POLL_S
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if not _locked(error):
                    raise
                now = time.monotonic()
                deadline = deadline or now + timeout_ms / 1000
                if now + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, longest)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")


def _locked(error: sqlite3.OperationalError) -> bool:
    return "locked" in str(error) or "busy" in str(error)
