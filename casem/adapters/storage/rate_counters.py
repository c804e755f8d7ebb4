"""Fixed-window request counters in PostgreSQL, shared by every process that counts in them.

`count_requests` is one statement per request (an upsert of each counted caller's row, returning its count);
`uncount_requests` takes a refused request back out. Rows are touched in one order (sorted by scope, then
ident) by both, so two requests of one caller never wait on each other's locks in opposite orders.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from casem.adapters.storage.pipelined import fetch_then_commit
from casem.adapters.storage.tables import rate_limit_counters as counters

Caller = tuple[str, str]  # (scope, ident)


# The upsert of count_requests, in psycopg's placeholders (one row of values per caller).
_UPSERT = (
    "INSERT INTO rate_limit_counters (scope, ident, window_start, used) VALUES {rows} "
    "ON CONFLICT (scope, ident) DO UPDATE SET "
    "used = CASE WHEN rate_limit_counters.window_start >= excluded.window_start "
    "THEN rate_limit_counters.used + 1 ELSE 1 END, "
    "window_start = GREATEST(rate_limit_counters.window_start, excluded.window_start) "
    "RETURNING scope, ident, used"
)
# A counter lost to a crash costs nothing but a few requests' worth of limit: its commit need not wait for the
# write-ahead log to reach the disk, which would make every request of every caller wait for a flush.
_NO_FLUSH_WAIT = "SET LOCAL synchronous_commit TO OFF"


async def count_requests(engine: AsyncEngine, window_start: int, callers: Sequence[Caller]) -> dict[Caller, int]:
    """Count one request for each caller in the window starting at `window_start` (epoch seconds); a caller's
    counter starts over when its stored window is an earlier one. Returns each caller's count, this one
    included. A replica whose clock runs behind counts in the newer window another one already opened.
    BEGIN, the setting, the upsert and COMMIT go to the server in one round trip (libpq's pipeline mode)."""
    ordered = sorted(set(callers))
    params: list[object] = []
    for scope, ident in ordered:
        params += [scope, ident, window_start]
    statement = _UPSERT.format(rows=", ".join(["(%s, %s, %s, 1)"] * len(ordered)))
    async with engine.connect() as conn:
        rows = await fetch_then_commit(conn, [_NO_FLUSH_WAIT], statement, params)
    return {(str(scope), str(ident)): int(used) for scope, ident, used in rows}


async def uncount_requests(engine: AsyncEngine, window_start: int, callers: Sequence[Caller]) -> None:
    """Take back the request `count_requests` counted for `callers` (a refused request uses nothing up)."""
    async with engine.begin() as conn:
        for scope, ident in sorted(set(callers)):
            await conn.execute(
                sa.update(counters)
                .where(
                    counters.c.scope == scope,
                    counters.c.ident == ident,
                    counters.c.window_start == window_start,
                    counters.c.used > 0,
                )
                .values(used=counters.c.used - 1)
            )
