"""Fixed-window request counters in PostgreSQL, shared by every process that counts in them.

`count_requests` is one statement per request (an upsert of each counted caller's row, returning its count);
`uncount_requests` takes a refused request back out. Rows are touched in one order (sorted by scope, then
ident) by both, so two requests of one caller never wait on each other's locks in opposite orders.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from casem.adapters.storage.tables import rate_limit_counters as counters

Caller = tuple[str, str]  # (scope, ident)


async def count_requests(engine: AsyncEngine, window_start: int, callers: Sequence[Caller]) -> dict[Caller, int]:
    """Count one request for each caller in the window starting at `window_start` (epoch seconds); a caller's
    counter starts over when its stored window is an earlier one. Returns each caller's count, this one
    included. A replica whose clock runs behind counts in the newer window another one already opened."""
    ordered = sorted(set(callers))
    statement = insert(counters).values(
        [{"scope": scope, "ident": ident, "window_start": window_start, "used": 1} for scope, ident in ordered]
    )
    proposed = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[counters.c.scope, counters.c.ident],
        set_={
            "used": sa.case((counters.c.window_start >= proposed.window_start, counters.c.used + 1), else_=1),
            "window_start": sa.func.greatest(counters.c.window_start, proposed.window_start),
        },
    ).returning(counters.c.scope, counters.c.ident, counters.c.used)
    async with engine.begin() as conn:
        rows = (await conn.execute(statement)).all()
    return {(row.scope, row.ident): row.used for row in rows}


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
