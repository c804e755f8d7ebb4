"""search-indexing: keeps the tenant's search index in sync with every change to a case.

Whatever the event (an update, a comment added, edited or deleted, an archive, a move, a delete, a
purge), the flavor re-reads the case from the database and writes its whole document, or deletes the
document when the case is gone. Writing the current state rather than applying the event's delta makes
the effect idempotent and order-insensitive: a redelivered or late event rewrites what is already
there, and the last event of a case always leaves its current state. The index write is outside the
database transaction, so it is at-least-once (the runner retries it, then dead-letters).

The search port comes from `services.extras["search"]` (set by whoever runs the flavor), else from
the environment (search_from_env), opened once per process.
"""

from __future__ import annotations

from typing import ClassVar

from casem.adapters.search import SearchPort, search_from_env
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.search.documents import case_document
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor

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

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        if event.case_id is None:
            return  # not about a case (projects, types, users): no document changes
        search = _search(services)
        await search.ensure_index(event.tenant)
        doc = await case_document(uow, event.org_id, event.case_id)
        if doc is None:
            await search.delete(event.tenant, event.org_id, event.case_id)
        else:
            await search.bulk_upsert(event.tenant, [doc])
