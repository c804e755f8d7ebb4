"""The unit of work: one transaction per use case, and the transactional outbox.

On commit, every domain event recorded by an aggregate touched in this unit of work is written
to the tenant's `domain_events` table, and each case change gets its timeline cell, in the same
transaction as the change itself: a change and its event commit together or not at all.
"""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from casem.adapters.storage.database import TenantDatabase
from casem.adapters.storage.tables import cases, domain_events
from casem.domain.errors import NotFound
from casem.domain.events import DomainEvent, EventRecorder
from casem.domain.timeline import change_cell
from casem.observability import trace_context

T = TypeVar("T")


class UnitOfWork:
    def __init__(self, db: TenantDatabase, *, read_only: bool = False, session_key: str | None = None) -> None:
        self.db = db
        self.read_only = read_only
        # Who is reading or writing (an API caller): reads after its own writes wait for the replica.
        self.session_key = session_key
        self.session: AsyncSession
        self.committed_events: list[DomainEvent] = []

    async def __aenter__(self) -> UnitOfWork:
        engine = await self.db.reader_for(self.session_key) if self.read_only else None
        self.session = self.db.sessions(read_only=self.read_only, engine=engine)()
        # The session's identity map holds objects weakly: an aggregate loaded (or added and flushed)
        # and then dropped by the caller could be collected before commit, taking its recorded events
        # with it. Keep a strong reference to every aggregate this unit of work has seen.
        self._seen: dict[int, EventRecorder] = {}
        sync = self.session.sync_session
        event.listen(sync, "loaded_as_persistent", self._track)
        event.listen(sync, "transient_to_pending", self._track)
        return self

    def _track(self, _session: Any, obj: Any) -> None:
        if isinstance(obj, EventRecorder):
            self._seen[id(obj)] = obj

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            # Detach what was loaded first: a rollback would expire it, and callers still read it.
            self.session.expunge_all()
            if self.session.in_transaction():
                await self.session.rollback()
        finally:
            await self.session.close()

    # -- generic repository helpers ------------------------------------------------
    def add(self, obj: Any) -> None:
        self.session.add(obj)

    def track(self, aggregate: EventRecorder) -> None:
        """Collect the events of an aggregate stored with plain statements (not mapped) at commit."""
        self._seen[id(aggregate)] = aggregate

    async def get(
        self, cls: type[T], org_id: str | None, ident: str, *, resource: str | None = None, lock: bool = False
    ) -> T:
        """Load one aggregate of the org. Another org's id is indistinguishable from a missing one.

        `lock` takes the row's write lock until commit (SELECT ... FOR UPDATE on PostgreSQL; SQLite's write
        transactions already hold the database lock): changes to one aggregate then commit one at a time, in
        the order their events get their outbox sequence.
        """
        obj = await self.session.get(cls, ident, with_for_update=True if lock else None)
        owner = getattr(obj, "org_id", None)
        if obj is None or (org_id is not None and owner is not None and owner != org_id):
            raise NotFound(resource or cls.__name__.lower(), ident)
        if getattr(obj, "deleted_at", None) is not None:
            raise NotFound(resource or cls.__name__.lower(), ident)
        return obj

    async def scalars(self, statement: sa.Select[Any]) -> list[Any]:
        return list((await self.session.scalars(statement)).all())

    async def scalar(self, statement: Any) -> Any:
        return await self.session.scalar(statement)

    async def execute(self, statement: Any, parameters: Any = None) -> sa.Result[Any]:
        """`parameters`: a list of rows runs the statement once per row (executemany)."""
        return await self.session.execute(statement, parameters)

    # -- commit with outbox -----------------------------------------------------------
    def _pending_events(self) -> list[DomainEvent]:
        touched = [
            *self._seen.values(),
            *self.session.new,
            *self.session.dirty,
            *self.session.deleted,
            *self.session.identity_map.values(),
        ]
        events: dict[str, DomainEvent] = {}
        for obj in touched:
            if isinstance(obj, EventRecorder):
                for ev in obj.collect_events():
                    events[ev.id] = ev
        return sorted(events.values(), key=lambda ev: ev.order)

    async def commit(self) -> list[DomainEvent]:
        if self.read_only:
            raise RuntimeError("read-only unit of work cannot commit")
        events = self._pending_events()
        for ev in events:
            cell = change_cell(ev, str(uuid.uuid4()))
            if cell is not None:
                self.session.add(cell)
        await self.session.flush()
        if events:
            trace = trace_context()  # the request or message this change was made for, when traced
            await self.session.execute(
                sa.insert(domain_events),
                [
                    {
                        "id": ev.id,
                        "type": ev.cloudevent_type,
                        "version": ev.version,
                        "org_id": ev.org_id,
                        "case_id": ev.case_id,
                        "actor_id": ev.actor_id,
                        "time": ev.time,
                        "envelope": ev.envelope(self.db.tenant, trace=trace),
                    }
                    for ev in events
                ],
            )
            touched = sorted({ev.case_id for ev in events if ev.case_id})
            if touched:
                # The cases' revision: what their search documents are versioned by (newer never loses to older).
                await self.session.execute(
                    sa.update(cases).where(cases.c.id.in_(touched)).values(revision=cases.c.revision + 1)
                )
        await self.session.commit()
        self.committed_events = events
        await self.db.after_write(self.session_key)
        return events
