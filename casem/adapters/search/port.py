"""The search port: what case-api, case-indexer and `casem search` need from a search engine.

Two adapters implement it with the same semantics, checked by one contract suite
(tests/search/test_contract.py): `EmbeddedSearch` (SQLite FTS5, the no-infrastructure default)
and `OpenSearchSearch` (OpenSearch 2 / Elasticsearch 8 over REST).

Semantics shared by both:

- One index per tenant, reached through the tenant's alias (`casem-v8`, `casem-oncall`); the
  concrete index is `<alias>-v<N>` and `reindex` builds `<alias>-v<N+1>` then moves the alias in
  one step, so searches answer throughout.
- Every read is scoped to one org inside the engine's query, never filtered afterwards.
- Matching (see casem/domain/search_query.py for the syntax): free text and phrases match whole
  words, in order for a phrase, in title, description or comments, or the case key exactly;
  `status:`/`priority:` compare canonical values; `project:` matches the project key or id,
  `assignee:` the assignee handle (email) or id, `type:` the type name or id, `key:` the key,
  `archived:` true or false, and any other `name:value` a value of attribute `name`. Every
  comparison of words and values ignores case.
- Sorting by `created_at`, `modified_at`, `priority` or `status`. Ascending priority is P1..P5
  then NOT_DEFINED (most urgent first); ascending status is OPEN, IN_PROGRESS, CLOSED. Ties are
  broken by newest first, then by case id, so paging is stable.
- Pages are numbered from 0; `page_number * page_size + page_size` may not exceed
  MAX_RESULT_WINDOW (OpenSearch's default index.max_result_window).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from casem.adapters.search.document import CaseDocument, StampedDocument
from casem.domain.search_query import Node
from casem.topology.tenants import Tenant, tenant

MAX_RESULT_WINDOW = 10_000
MAX_GROUP_VALUES = 1_000  # values returned per group_by field, most frequent first
SORT_FIELDS = ("created_at", "modified_at", "priority", "status")

# group_by names with a meaning of their own, to the document field counted; any other name is
# an attribute key. The short names count ids, which are stable; ask for *_key/_name/_handle for
# the display values.
GROUP_FIELDS = {
    "status": "status",
    "priority": "priority",
    "project": "project_id",
    "project_id": "project_id",
    "project_key": "project_key",
    "type": "type_id",
    "type_id": "type_id",
    "type_name": "type_name",
    "assignee": "assignee_id",
    "assignee_id": "assignee_id",
    "assignee_handle": "assignee_handle",
    "archived": "archived",
}

Docs = Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]]


class SearchBackendError(RuntimeError):
    """The engine refused or failed a request (its own message is kept). `unavailable`: the engine could not be
    reached or said it cannot serve now (connection errors, 429, 502-504): retry later, the request was fine."""

    def __init__(self, message: str, *, unavailable: bool = False) -> None:
        super().__init__(message)
        self.unavailable = unavailable


class SearchPage(NamedTuple):
    ids: list[str]  # case ids, in sort order
    total: int  # matching cases in the org, over all pages


@dataclass(frozen=True)
class CountResult:
    total: int
    # group_by name -> value -> cases; a None value counts the cases without one (unassigned,
    # no such attribute). A multi-valued attribute counts its case under each of its values.
    groups: dict[str, dict[str | None, int]] = field(default_factory=dict)


def resolve_tenant(name: str | Tenant) -> Tenant:
    return name if isinstance(name, Tenant) else tenant(name)


def check_page(sort_field: str, page_size: int, page_number: int) -> None:
    if sort_field not in SORT_FIELDS:
        raise ValueError(f"cannot sort by {sort_field!r}; sortable: {', '.join(SORT_FIELDS)}")
    if page_size < 1 or page_number < 0:
        raise ValueError("page_size must be at least 1 and page_number at least 0")
    if (page_number + 1) * page_size > MAX_RESULT_WINDOW:
        raise ValueError(f"pages reach only the first {MAX_RESULT_WINDOW} results; narrow the query")


async def iterate(docs: Docs) -> AsyncIterable[Mapping[str, Any]]:
    """Either kind of iterable as an async one (reindex reads from a database cursor or a list)."""
    if isinstance(docs, AsyncIterable):
        async for doc in docs:
            yield doc
    else:
        for doc in docs:
            yield doc


class SearchPort(ABC):
    """Tenant-scoped case search. `tenant` is a tenant name (see casem.topology.tenants)."""

    @abstractmethod
    async def ensure_index(self, tenant: str) -> str:
        """Create the tenant's index and alias unless they exist; returns the concrete index."""

    @abstractmethod
    async def current_index(self, tenant: str) -> str | None:
        """The concrete index behind the tenant's alias, None before ensure_index."""

    @abstractmethod
    async def bulk_upsert(
        self, tenant: str, docs: Iterable[Mapping[str, Any] | StampedDocument], *, replace_equal: bool = True
    ) -> int:
        """Insert or wholly replace cases (by org and id); stamps their checksum (a `StampedDocument` comes stamped,
        and its text is stored as it is). Returns how many.

        A document with a `version` (the case's revision) replaces only a stored one of a lower or equal
        version: an older write arriving late never overwrites a newer one. The version is not part of the
        document's content: not in its checksum, not in what `get` returns.

        `replace_equal=False`: a stored document of the same version is kept, not rewritten (the engine turns the
        write away cheaply instead of indexing it again). For writers whose documents are built from the database
        at that revision, to which an equal stored version is the same document (case-indexer and the
        search-indexing flavor may both write a case a change reached); a repair that must replace what is stored
        keeps the default."""

    @abstractmethod
    async def delete(self, tenant: str, org_id: str, case_id: str) -> bool:
        """Remove a case; False when that org had no such case. A later versioned write of it is refused."""

    @abstractmethod
    async def search(
        self,
        tenant: str,
        org_id: str,
        query: Node,
        sort_field: str = "created_at",
        sort_asc: bool = False,
        page_size: int = 10,
        page_number: int = 0,
    ) -> SearchPage: ...

    @abstractmethod
    async def count(self, tenant: str, org_id: str, query: Node, group_by: list[str]) -> CountResult: ...

    @abstractmethod
    async def get(self, tenant: str, org_id: str, case_id: str) -> CaseDocument | None:
        """The stored document (with its checksum), None when that org has no such case."""

    @abstractmethod
    async def versions(self, tenant: str, refs: Sequence[tuple[str, str]]) -> dict[str, int]:
        """case id -> the version stored for each (org id, case id) of `refs`; a case absent from the index (or
        deleted) is absent from the answer. One request for them all: what a writer reads to leave alone the
        documents that are current already. Meaningful for documents written with a version (every case document
        is): for one written without, the embedded index answers nothing and OpenSearch its own write count."""

    @abstractmethod
    async def all_checksums(self, tenant: str, org_id: str | None = None) -> dict[str, str]:
        """case id -> stored checksum, for one org or all, to compare with the database."""

    @abstractmethod
    async def reindex(self, tenant: str, docs: Docs) -> str:
        """Build a new index from `docs`, then swap the alias onto it atomically and drop the old
        one. Searches keep answering from the old index until the swap. Writes made through the
        port during the build, from any process, land in both indices (and versions keep the newest
        of a build's snapshot and a later write), so `casem search verify` right after is clean.
        Returns the new index's name."""

    @abstractmethod
    async def drop(self, tenant: str) -> None:
        """Delete the tenant's alias and every index behind it."""

    @abstractmethod
    async def refresh(self, tenant: str | None = None) -> None:
        """Make every write so far visible to searches (tests; the engine does it within ~1s)."""

    async def close(self) -> None:  # noqa: B027 - optional hook, adapters with resources override
        """Release connections."""
