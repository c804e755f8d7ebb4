"""The tenant outbox read as the relay would publish it: the envelopes after a sequence number, each with its
sequence, in order. Suites that feed flavor runners without a relay and a bus read it through this."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import domain_events
from casem.app.context import AppContext
from casem.domain.events import with_sequence


async def envelopes_after(context: AppContext, after: int) -> list[dict[str, Any]]:
    async with context.uow(read_only=True) as uow:
        rows = (
            await uow.execute(
                sa.select(domain_events.c.seq, domain_events.c.envelope)
                .where(domain_events.c.seq > after)
                .order_by(domain_events.c.seq)
            )
        ).all()
    return [with_sequence(row.envelope, row.seq) for row in rows]
