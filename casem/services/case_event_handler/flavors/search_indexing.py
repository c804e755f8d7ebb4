"""search-indexing: keeps the tenant's search index in sync with every change to a case.

Whatever the event (an update, a comment added, edited or deleted, an archive, a move, a delete, a
purge), the flavor re-reads the case from the database and writes its whole document, or deletes the
document when the case is gone. Writing the current state rather than applying the event's delta makes
the effect idempotent and order-insensitive: a redelivered or late event rewrites what is already
there, and the last event of a case always leaves its current state. The index write is outside the
database transaction, so it is at-least-once (the runner retries it, then dead-letters).

Events come in batches (`apply_batch`): the cases they name are read once each and written in one bulk request,
and a case whose document is stored at its current revision already is not written again (`sync_documents`).

A case created by intake is indexed by case-indexer, which commits the intake's offset only once the case is created
and its document written: its `case.created` says so (`indexed_by_creator`, recorded by the domain when IngestCases
is called with `indexed_by_caller`) and is skipped here, neither read nor written. It used to cost a version look-up
(a real-time get, which refreshes the shard's reader) and often a write the engine turned away as a version conflict
(11,443 of them in a 60 s sustained phase of bench/intake_e2e.py: case-indexer had written the document meanwhile).
Every later event of such a case is handled as any other.

The effect converges on the database's current state, so a redelivered event or batch is a no-op by construction:
the flavor declares `converges` and the runner keeps no processed-events record for it and applies it in a
read-only unit of work on the primary. It used to record every event, taking SQLite's write lock for each batch in
turn with case-api's writes (125 busy seconds in a 60 s sustained phase of bench/intake_e2e.py), although nearly
every event found its case indexed by case-indexer already.

The search port comes from `services.extras["search"]` (set by whoever runs the flavor), else from
the environment (search_from_env), opened once per process.
"""

from __future__ import annotations

from typing import ClassVar

from prometheus_client import Counter

from casem.adapters.search import SearchPort, search_from_env
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.search.sync import SyncReport, sync_documents
from casem.domain.cases import indexed_by_creator
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor

DOCUMENTS = Counter(
    "casem_search_indexing_documents_total",
    "Documents the search-indexing flavor wrote, found current already (not written), deleted or left to their "
    "creator (a created case case-indexer indexes)",
    ["outcome"],
)

_default_search: SearchPort | None = None


def _search(services: HandlerServices) -> SearchPort:
    global _default_search
    found = services.extras.get("search")
    if found is not None:
        return found  # type: ignore[no-any-return]
    if _default_search is None:
        _default_search = search_from_env()
    return _default_search


@flavor
class SearchIndexing:
    name: ClassVar[str] = "search-indexing"
    handles: ClassVar[frozenset[str]] = frozenset()  # every case event: any of them may change the document
    converges: ClassVar[bool] = True  # writes each case's current state, versioned: no processed-events record

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        await self.apply_batch([event], uow, services)

    async def apply_batch(self, events: list[Event], uow: UnitOfWork, services: HandlerServices) -> None:
        # Events of no case (projects, types, users) change no document; a created case its creator indexes is
        # left to it.
        refs = [
            (e.org_id, e.case_id) for e in events if e.case_id is not None and not indexed_by_creator(e.type, e.data)
        ]
        DOCUMENTS.labels("left_to_creator").inc(sum(indexed_by_creator(e.type, e.data) for e in events))
        if not refs:
            return
        search = _search(services)
        tenant = events[0].tenant  # the runner batches one tenant at a time
        await search.ensure_index(tenant)
        _count(await sync_documents(uow, search, tenant, refs))


def _count(report: SyncReport) -> None:
    DOCUMENTS.labels("written").inc(report.written)
    DOCUMENTS.labels("current").inc(report.current)
    DOCUMENTS.labels("deleted").inc(report.deleted)
