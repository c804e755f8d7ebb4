"""Index maintenance: rebuild a tenant's index from its database, and compare the two.

Both read every case through the document builder the indexer and the search-indexing flavor use, so
a document written by either has the checksum `verify` computes from the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from casem.adapters.search import SearchPort, document_checksum
from casem.adapters.search.document import CaseDocument
from casem.app.context import AppContext
from casem.app.search.documents import count_documents, iter_documents


async def reindex_tenant(
    context: AppContext,
    search: SearchPort,
    tenant: str,
    on_total: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[str, int]:
    """Build a new index from the database and swap the alias onto it; returns (index, documents)."""
    written = 0
    # One read transaction: the new index is one consistent snapshot of the database.
    async with context.uow(tenant, read_only=True) as uow:
        if on_total is not None:
            on_total(await count_documents(uow))

        async def docs() -> AsyncIterator[CaseDocument]:
            nonlocal written
            async for doc in iter_documents(uow):
                written += 1
                if on_progress is not None:
                    on_progress(1)
                yield doc

        index = await search.reindex(tenant, docs())
    return index, written


@dataclass
class VerifyReport:
    tenant: str
    database: int = 0
    index: int = 0
    missing: list[str] = field(default_factory=list)  # in the database, not in the index
    extra: list[str] = field(default_factory=list)  # in the index, not in the database
    stale: list[str] = field(default_factory=list)  # in both, with different documents

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.stale) and self.database == self.index


async def verify_tenant(
    context: AppContext, search: SearchPort, tenant: str, org_id: str | None = None
) -> VerifyReport:
    """Counts and per-document checksums of the database against the index (one org, or all)."""
    expected: dict[str, str] = {}
    async with context.uow(tenant, read_only=True) as uow:
        async for doc in iter_documents(uow, org_id):
            expected[doc["id"]] = document_checksum(doc)
    if await search.current_index(tenant) is None:
        indexed: dict[str, str] = {}
    else:
        indexed = await search.all_checksums(tenant, org_id)
    return VerifyReport(
        tenant=tenant,
        database=len(expected),
        index=len(indexed),
        missing=sorted(expected.keys() - indexed.keys()),
        extra=sorted(indexed.keys() - expected.keys()),
        stale=sorted(k for k in expected.keys() & indexed.keys() if expected[k] != indexed[k]),
    )
