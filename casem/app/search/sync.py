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
from casem.app.search.documents import case_documents, case_revisions


@dataclass(frozen=True)
class SyncReport:
    written: int  # documents written (they were behind the database, or absent)
    current: int  # documents already stored at their case's revision: left alone
    deleted: int  # cases gone from the database, removed from the index


async def sync_documents(
    uow: UnitOfWork, search: SearchPort, tenant: str, refs: Sequence[tuple[str, str]]
) -> SyncReport:
    """`refs`: (org id, case id) pairs, repeats allowed. One read of the cases' revisions, one read of the stored
    versions, then one read and one bulk write of the cases behind. The revision is bumped by every committed change
    of a case, and a document is built from the database at that revision, so an equal stored version means an equal
    document."""
    wanted = list(dict.fromkeys(refs))
    if not wanted:
        return SyncReport(0, 0, 0)
    # Revisions first (one narrow query): most events of a busy stream find their case indexed at its revision
    # already (case-indexer wrote it), and building a document (the case row enriched, its comments) costs more.
    revisions = await case_revisions(uow, wanted)
    existing = [(org_id, case_id) for org_id, case_id in wanted if case_id in revisions]
    stored = await search.versions(tenant, existing) if existing else {}
    behind_refs = [(org_id, case_id) for org_id, case_id in existing if stored.get(case_id, -1) < revisions[case_id]]
    # Built from the database now: a change committed since the revision read only makes the document newer.
    behind = list((await case_documents(uow, behind_refs)).values()) if behind_refs else []
    if behind:
        # Written meanwhile at the same revision (by case-indexer, say): that is this document, left as stored.
        await search.bulk_upsert(tenant, behind, replace_equal=False)
    gone = [(org_id, case_id) for org_id, case_id in wanted if case_id not in revisions]
    for org_id, case_id in gone:
        await search.delete(tenant, org_id, case_id)
    return SyncReport(written=len(behind), current=len(existing) - len(behind_refs), deleted=len(gone))
