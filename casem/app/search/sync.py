"""Bring the index's documents of some cases up to the database, writing only those that are behind.

Used by the search-indexing flavor for a batch of events: however many events name a case, it is read once and
written at most once; a case whose stored document already has its revision (case-indexer wrote it a moment ago,
or an earlier event of the same change did) is left alone; a case gone from the database is deleted from the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from casem.adapters.search import SearchPort
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.search.documents import case_documents


@dataclass(frozen=True)
class SyncReport:
    written: int  # documents written (they were behind the database, or absent)
    current: int  # documents already stored at their case's revision: left alone
    deleted: int  # cases gone from the database, removed from the index


async def sync_documents(
    uow: UnitOfWork, search: SearchPort, tenant: str, refs: Sequence[tuple[str, str]]
) -> SyncReport:
    """`refs`: (org id, case id) pairs, repeats allowed. One read of the cases, one read of the stored versions, one
    bulk write of those behind. The revision is bumped by every committed change of a case, and a document is built
    from the database at that revision, so an equal stored version means an equal document."""
    wanted = list(dict.fromkeys(refs))
    if not wanted:
        return SyncReport(0, 0, 0)
    docs = await case_documents(uow, wanted)
    stored = await search.versions(tenant, [(d["org_id"], d["id"]) for d in docs.values()]) if docs else {}
    behind = [doc for doc in docs.values() if stored.get(doc["id"], -1) < int(doc.get("version") or 0)]
    if behind:
        await search.bulk_upsert(tenant, behind)
    gone = [(org_id, case_id) for org_id, case_id in wanted if case_id not in docs]
    for org_id, case_id in gone:
        await search.delete(tenant, org_id, case_id)
    return SyncReport(written=len(behind), current=len(docs) - len(behind), deleted=len(gone))
