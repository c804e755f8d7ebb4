"""The chat bridges' durable inbox: a request from Slack or Teams is written here before it is acknowledged,
then applied once by the inbox worker, so an acknowledged request survives a crash and a retried one (same
delivery id: Slack's event_id, an interaction's trigger id) is recognized and not applied twice.

A row is applied in the unit of work that marks it done: the effect and the mark commit together. On
PostgreSQL several workers share the inbox (rows are claimed with FOR UPDATE SKIP LOCKED).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from casem.adapters.storage.tables import chat_inbox
from casem.adapters.storage.unit_of_work import UnitOfWork

PENDING, DONE, FAILED = "pending", "done", "failed"
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class InboxItem:
    id: str
    platform: str
    workspace_id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    received_at: datetime


async def accept(
    uow: UnitOfWork, *, delivery_id: str, platform: str, workspace_id: str, kind: str, payload: dict[str, Any]
) -> bool:
    """Record a request (in the caller's unit of work); False when this delivery id was already recorded."""
    now = datetime.now(UTC)
    values = {
        "id": f"{platform}:{workspace_id}:{delivery_id}"[:512],
        "platform": platform,
        "workspace_id": workspace_id,
        "kind": kind,
        "payload": payload,
        "status": PENDING,
        "attempts": 0,
        "received_at": now,
        "not_before": now,
    }
    insert = postgresql.insert if uow.db.dialect == "postgresql" else sqlite.insert
    result = await uow.execute(insert(chat_inbox).values(**values).on_conflict_do_nothing(index_elements=["id"]))
    return bool(result.rowcount)


async def due(uow: UnitOfWork, limit: int = 100, now: datetime | None = None) -> list[str]:
    now = now or datetime.now(UTC)
    rows = await uow.execute(
        sa.select(chat_inbox.c.id)
        .where(chat_inbox.c.status == PENDING, chat_inbox.c.not_before <= now)
        .order_by(chat_inbox.c.received_at, chat_inbox.c.id)
        .limit(limit)
    )
    return [r.id for r in rows]


async def next_due_in(uow: UnitOfWork, now: datetime | None = None) -> float | None:
    """Seconds until the earliest pending item is due (0 when one is due already; None: nothing is pending)."""
    now = now or datetime.now(UTC)
    earliest = await uow.scalar(sa.select(sa.func.min(chat_inbox.c.not_before)).where(chat_inbox.c.status == PENDING))
    if earliest is None:
        return None
    if earliest.tzinfo is None:
        earliest = earliest.replace(tzinfo=UTC)
    return max(0.0, (earliest - now).total_seconds())


def _item(row: sa.Row) -> InboxItem:
    return InboxItem(row.id, row.platform, row.workspace_id, row.kind, row.payload, row.attempts, row.received_at)


async def load(uow: UnitOfWork, ids: list[str]) -> list[InboxItem]:
    """The pending items among `ids`, in arrival order (a read: nothing is locked)."""
    if not ids:
        return []
    rows = await uow.execute(
        sa.select(chat_inbox)
        .where(chat_inbox.c.id.in_(ids), chat_inbox.c.status == PENDING)
        .order_by(chat_inbox.c.received_at, chat_inbox.c.id)
    )
    return [_item(r) for r in rows]


async def claim(uow: UnitOfWork, item_id: str) -> InboxItem | None:
    """The pending row, locked for this unit of work (None: done meanwhile, or another worker holds it)."""
    query = sa.select(chat_inbox).where(chat_inbox.c.id == item_id, chat_inbox.c.status == PENDING)
    if uow.db.dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = (await uow.execute(query)).first()
    return _item(row) if row is not None else None


async def claim_many(uow: UnitOfWork, ids: list[str]) -> set[str]:
    """Lock the pending rows among `ids` for this unit of work; returns the ids claimed."""
    if not ids:
        return set()
    query = sa.select(chat_inbox.c.id).where(chat_inbox.c.id.in_(ids), chat_inbox.c.status == PENDING)
    if uow.db.dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return {row.id for row in await uow.execute(query)}


async def finish_many(uow: UnitOfWork, ids: list[str]) -> None:
    if ids:
        await uow.execute(
            sa.update(chat_inbox)
            .where(chat_inbox.c.id.in_(ids))
            .values(status=DONE, processed_at=datetime.now(UTC), attempts=chat_inbox.c.attempts + 1)
        )


async def finish(uow: UnitOfWork, item_id: str, error: str | None = None) -> None:
    """Done (the effect commits with this mark). With `error`: done, but with nothing applied (bad input)."""
    await uow.execute(
        sa.update(chat_inbox)
        .where(chat_inbox.c.id == item_id)
        .values(status=DONE, processed_at=datetime.now(UTC), error=error, attempts=chat_inbox.c.attempts + 1)
    )


async def postpone(uow: UnitOfWork, item: InboxItem, error: str, delay_s: float) -> None:
    """A transient failure: try again after `delay_s`, or give up after MAX_ATTEMPTS (failed, kept for operators)."""
    attempts = item.attempts + 1
    status = FAILED if attempts >= MAX_ATTEMPTS else PENDING
    await uow.execute(
        sa.update(chat_inbox)
        .where(chat_inbox.c.id == item.id)
        .values(
            status=status,
            attempts=attempts,
            error=error[:2000],
            not_before=datetime.now(UTC) + timedelta(seconds=delay_s),
        )
    )


async def status_of(uow: UnitOfWork, platform: str, workspace_id: str, delivery_id: str) -> str | None:
    return await uow.scalar(
        sa.select(chat_inbox.c.status).where(chat_inbox.c.id == f"{platform}:{workspace_id}:{delivery_id}"[:512])
    )
