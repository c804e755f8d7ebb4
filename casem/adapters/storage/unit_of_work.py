"""The unit of work: one transaction per use case, and the transactional outbox.

On commit, every domain event recorded by an aggregate touched in this unit of work is written
to the tenant's `domain_events` table, and each case change gets its timeline cell, in the same
transaction as the change itself: a change and its event commit together or not at all.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import UpdateBase

from casem.adapters.storage.database import TenantDatabase
from casem.adapters.storage.set_statements import (
    JsonText,
    driver_insert,
    dumps,
    json_rows_insert,
    json_rows_insert_all,
)
from casem.adapters.storage.tables import cases, domain_events, timeline_cells
from casem.adapters.wakeup import notify, outbox_channel
from casem.domain.errors import NotFound
from casem.domain.events import DomainEvent, EventRecorder
from casem.domain.ids import new_id
from casem.domain.timeline import change_cell_fields
from casem.observability import trace_context

T = TypeVar("T")


_UNSET = object()


def _row(obj: Any, columns: list[tuple[str, str, Any]]) -> dict[str, Any]:
    values = obj.__dict__  # set attributes are plain entries of it: reading them skips the descriptors
    return {
        column: values[attr] if attr in values else (getattr(obj, attr) if default is _UNSET else default)
        for attr, column, default in columns
    }


def stored_envelope(envelope: dict[str, Any]) -> dict[str, Any]:
    """An envelope as the outbox keeps it: without "sequence", which the database assigns and the relay
    puts in front of the stored text when it publishes (so it never has to parse the envelope)."""
    return {name: value for name, value in envelope.items() if name != "sequence"}


def _envelope_text(envelope: dict[str, Any], data: Any, data_text: str) -> Any:
    """The stored envelope as JSON text, `data` (its last attribute) given as its text; the envelope itself when
    its shape is not that (encoded as usual then)."""
    if not envelope or next(reversed(envelope)) != "data" or envelope["data"] is not data:
        return envelope
    head = dumps({name: value for name, value in envelope.items() if name != "data"})
    return JsonText(f'{head[:-1]}, "data": {data_text}}}' if len(head) > 2 else f'{{"data": {data_text}}}')


def _cell_content_text(content: dict[str, Any], event: DomainEvent, data_text: str) -> Any:
    """A change cell's content, `{"event": <type>, **data}`, as JSON text from its data's text; the content itself
    when it is not that shape (encoded as usual then)."""
    data = event.data
    if not isinstance(data, dict) or "event" in data or content != {"event": event.type, **data}:
        return content
    head = f'{{"event": {dumps(event.type)}'
    return JsonText(f"{head}, {data_text[1:]}" if data else f"{head}}}")


@functools.cache
def _defaults(cls: type) -> tuple[dict[str, Any], tuple[tuple[str, Callable[[], Any]], ...]]:
    """A dataclass's init fields with a default: (name -> default value, and (name, factory) of the others)."""
    values, factories = {}, []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default_factory is not dataclasses.MISSING:
            factories.append((f.name, f.default_factory))
        else:
            values[f.name] = f.default
    return values, tuple(factories)


@functools.cache
def _row_shape(cls: type) -> tuple[sa.Table, list[tuple[str, str, Any]]]:
    """The table a mapped class is stored in, and (attribute, column, value when unset) of its columns. A column
    the class does not declare (the case's `revision`) is left unset by `build`: it gets the column's default,
    as the ORM's INSERT would give it."""
    mapper = sa.inspect(cls)
    columns = []
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        default = column.default.arg if column.default is not None and column.default.is_scalar else _UNSET
        columns.append((prop.key, column.key, default))
    return mapper.local_table, columns  # type: ignore[return-value]


class UnitOfWork:
    def __init__(
        self, db: TenantDatabase, *, read_only: bool = False, session_key: str | None = None, primary: bool = False
    ) -> None:
        self.db = db
        self.read_only = read_only
        # A read-only unit of work that must see every commit so far: it reads the master, never a replica.
        self.primary = primary
        # Who is reading or writing (an API caller): reads after its own writes wait for the replica.
        self.session_key = session_key
        self.session: AsyncSession
        self.committed_events: list[DomainEvent] = []
        self._case_traces: dict[str, Mapping[str, str]] = {}
        self._after_commit: list[Callable[[], None]] = []
        self._born_revised: set[str] = set()  # cases `insert_new` wrote with this commit's revision already
        # PostgreSQL: rows `insert_new` has not sent yet, sent with the commit's cells and outbox rows (one statement)
        # or before anything else this unit of work reads or writes.
        self._unsent: list[tuple[sa.Table, list[dict[str, Any]]]] = []

    async def __aenter__(self) -> UnitOfWork:
        engine = None  # the writer
        if self.read_only:
            engine = self.db.primary_reader() if self.primary else await self.db.reader_for(self.session_key)
        self.session = self.db.sessions(read_only=self.read_only, engine=engine)()
        # The session's identity map holds objects weakly: an aggregate loaded (or added and flushed)
        # and then dropped by the caller could be collected before commit, taking its recorded events
        # with it. Keep a strong reference to every aggregate this unit of work has seen (TrackingSession).
        self._seen: dict[int, EventRecorder] = {}
        self.session.sync_session.info["track"] = self._track
        return self

    def _track(self, obj: Any) -> None:
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
            self.session.sync_session.info.pop("track", None)
            await self.session.close()

    # -- generic repository helpers ------------------------------------------------
    def add(self, obj: Any) -> None:
        if self.read_only:
            raise RuntimeError("a read-only unit of work cannot write")
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
        await self._send_unsent()
        obj = await self.session.get(cls, ident, with_for_update=True if lock else None)
        owner = getattr(obj, "org_id", None)
        if obj is None or (org_id is not None and owner is not None and owner != org_id):
            raise NotFound(resource or cls.__name__.lower(), ident)
        if getattr(obj, "deleted_at", None) is not None:
            raise NotFound(resource or cls.__name__.lower(), ident)
        return obj

    async def scalars(self, statement: sa.Select[Any]) -> list[Any]:
        await self._send_unsent()
        return list((await self.session.scalars(statement)).all())

    async def scalar(self, statement: Any) -> Any:
        await self._send_unsent()
        return await self.session.scalar(statement)

    async def execute(self, statement: Any, parameters: Any = None) -> sa.Result[Any]:
        """`parameters`: a list of rows runs the statement once per row (executemany)."""
        if self.read_only and isinstance(statement, UpdateBase):
            # Read-only units of work run in autocommit on PostgreSQL: a write there would stay.
            raise RuntimeError("a read-only unit of work cannot write")
        await self._send_unsent()
        return await self.session.execute(statement, parameters)

    @staticmethod
    def build(cls: type[T], **fields: Any) -> T:
        """A new (transient) domain object of a mapped dataclass, its omitted fields at their defaults, made
        without the mapped constructor's per-attribute change tracking: for objects written by
        `insert_new`, which needs none (batch creation builds thousands)."""
        defaults, factories = _defaults(cls)
        values = {**defaults, **fields}
        for name, factory in factories:
            if name not in fields:
                values[name] = factory()
        obj = sa.inspect(cls).class_manager.new_instance()
        obj.__dict__.update(values)
        return obj

    async def insert_new(self, objects: Sequence[Any]) -> None:
        """Write new aggregates with one multi-row INSERT per table, bypassing the ORM's per-object flush
        (batch creation). They stay detached from the session; their events are still collected at commit.

        On PostgreSQL the rows are sent with the commit's timeline cells and outbox rows, as one statement (a round
        trip fewer per table), or first thing when this unit of work reads or writes before it commits (`execute`,
        `scalar`, `scalars`, `get`): read them back through those, not through `session` directly."""
        if not objects:
            return
        by_class: dict[type, list[Any]] = {}
        for obj in objects:
            by_class.setdefault(type(obj), []).append(obj)
            if isinstance(obj, EventRecorder):
                self._seen[id(obj)] = obj
        await self.session.flush()  # what the ORM holds goes first: the new rows may refer to it
        for cls, group in by_class.items():
            table, columns = _row_shape(cls)
            rows = [_row(o, columns) for o in group]
            if table is cases:
                # A new case with events is born at the revision the commit would give it (see `commit`): one
                # INSERT, instead of an INSERT and then an UPDATE of every row it just wrote.
                for obj, row in zip(group, rows, strict=True):
                    if obj.__dict__.get("_pending_events"):
                        row["revision"] += 1
                        self._born_revised.add(obj.id)
                    obj.__dict__["revision"] = row["revision"]  # as its row says: its search document's version
            if self.db.dialect == "postgresql":
                self._unsent.append((table, rows))
            else:
                await self._insert_rows(table, rows)

    async def _send_unsent(self) -> None:
        if not self._unsent:
            return
        unsent, self._unsent = self._unsent, []
        # Without the ORM's autoflush: what it holds may refer to these rows (it is flushed after them).
        with self.session.no_autoflush:
            for table, rows in unsent:
                await self._insert_rows(table, rows)

    async def _insert_rows(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """One INSERT of many rows: on PostgreSQL one statement over the rows as JSON, on SQLite the driver's
        executemany of rows converted once (set_statements.py; JSON text made by `commit` written as it is),
        without SQLAlchemy's per-row parameter handling."""
        if len(rows) > 1 and self.db.dialect == "postgresql":
            await self.session.execute(*json_rows_insert(table, rows))
        elif self.db.dialect == "sqlite":  # also for one row: it may hold JSON text made by `commit`
            connection = await self.session.connection()
            await connection.exec_driver_sql(*driver_insert(table, rows, connection.dialect))
        else:
            await self.session.execute(sa.insert(table), rows)

    async def _insert_parts(self, parts: list[tuple[sa.Table, list[dict[str, Any]]]]) -> None:
        """Each part's rows into its table, in order: on PostgreSQL one statement for them all (data-modifying CTEs;
        foreign keys are checked at its end, so a row may refer to one of an earlier part)."""
        if len(parts) > 1 and self.db.dialect == "postgresql":
            await self.session.execute(*json_rows_insert_all(parts))
            return
        for table, rows in parts:
            await self._insert_rows(table, rows)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once this unit of work has committed (never if it rolls back): for caches of what it
        changes, which must not be refilled from the old rows while the change is still uncommitted."""
        self._after_commit.append(callback)

    def trace_case(self, case_id: str, trace: Mapping[str, str]) -> None:
        """The trace a case's events were made in, when it is not the current one (one batch creates cases for
        many traced requests): their envelopes carry it instead."""
        self._case_traces[case_id] = trace

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
        if self.session.new or self.session.dirty or self.session.deleted:
            await self._send_unsent()  # the ORM's changes may refer to insert_new's rows: those go first then
        await self.session.flush()  # the changes' rows first: their cells refer to them
        trace = trace_context()  # the request or message this change was made for, when traced
        # On SQLite the envelope and the change cell are written as JSON text made here, an event's data encoded
        # once for both (its case's snapshot, for a creation); PostgreSQL's statement takes them as JSON values.
        as_text = self.db.dialect == "sqlite"
        cells: list[dict[str, Any]] = []
        outbox: list[dict[str, Any]] = []
        for ev in events:
            traced = self._case_traces.get(ev.case_id or "", trace)
            envelope = stored_envelope(ev.envelope(self.db.tenant, trace=traced))
            cell = change_cell_fields(ev, new_id())
            if as_text:
                data_text = dumps(ev.data)
                envelope = _envelope_text(envelope, ev.data, data_text)
                if cell is not None:
                    cell["content"] = _cell_content_text(cell["content"], ev, data_text)
            if cell is not None:
                cells.append(cell)
            outbox.append(
                {
                    "id": ev.id,
                    "type": ev.cloudevent_type,
                    "version": ev.version,
                    "org_id": ev.org_id,
                    "case_id": ev.case_id,
                    "actor_id": ev.actor_id,
                    "time": ev.time,
                    "envelope": envelope,
                }
            )
        # One multi-row INSERT per table, after the flush wrote the cases the cells belong to (on PostgreSQL one
        # statement for all of them, insert_new's rows first).
        parts, self._unsent = [*self._unsent, (timeline_cells, cells), (domain_events, outbox)], []
        await self._insert_parts([(table, rows) for table, rows in parts if rows])
        if events:
            touched = sorted({ev.case_id for ev in events if ev.case_id} - self._born_revised)
            if touched:
                # The cases' revision: what their search documents are versioned by (newer never loses to older).
                await self.session.execute(
                    sa.update(cases).where(cases.c.id.in_(touched)).values(revision=cases.c.revision + 1)
                )
            # Relays in other processes are woken on PostgreSQL by the outbox's trigger (outbox_wakeup.py).
        await self.session.commit()
        self.committed_events = events
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()
        if events:
            notify(outbox_channel(self.db.tenant))  # a relay in this process publishes them now, not at its next poll
            if self.db.dialect == "sqlite":
                self.db.ring_doorbells()  # and one in another process (PostgreSQL: the outbox's trigger)
        await self.db.after_write(self.session_key)
        return events
