"""Case documents from the database: the one builder used by case-indexer, the search-indexing flavor,
`casem search reindex` and `casem search verify`, so all four agree on every byte (and so on checksums).

Enrichment (project key, type name, assignee handle, live comments) is read with set-based queries, a
few per batch of cases rather than per case, so a reindex of a large tenant stays a handful of scans.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from casem.adapters.search.document import CaseDocument
from casem.adapters.storage.tables import case_types, cases, projects, timeline_cells, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.cases import Case
from casem.domain.chat import CHAT_EXCERPT
from casem.domain.timeline import COMMENT

SCAN_BATCH = 500


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    # SQLite hands back naive datetimes; every stored time is UTC.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _select() -> sa.Select[Any]:
    return (
        sa.select(
            cases,
            projects.c.key.label("project_key"),
            case_types.c.name.label("type_name"),
            users.c.handle.label("assignee_handle"),
        )
        .select_from(cases)
        .outerjoin(projects, projects.c.id == cases.c.project_id)
        .outerjoin(case_types, case_types.c.id == cases.c.type_id)
        .outerjoin(users, users.c.id == cases.c.assignee_id)
    )


async def _comments(uow: UnitOfWork, case_ids: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    if not case_ids:
        return found
    rows = await uow.execute(
        sa.select(timeline_cells.c.case_id, timeline_cells.c.content)
        .where(
            timeline_cells.c.case_id.in_(case_ids),
            # Chat excerpts are searched like comments: their text is what was said about the case.
            timeline_cells.c.type.in_((COMMENT, CHAT_EXCERPT)),
            timeline_cells.c.deleted_at.is_(None),
        )
        # Oldest first, ties by id: the same list in the same order on every build.
        .order_by(timeline_cells.c.case_id, timeline_cells.c.created_at, timeline_cells.c.id)
    )
    for case_id, content in rows:
        message = (content or {}).get("message")
        if message:
            found[case_id].append(message)
    return found


def _document(row: Any, comments: list[str]) -> CaseDocument:
    return {
        "id": row.id,
        "org_id": row.org_id,
        "key": row.key,
        "title": row.title,
        "description": row.description or "",
        "status": row.status,
        "priority": row.priority,
        "project_id": row.project_id,
        "project_key": row.project_key,
        "type_id": row.type_id,
        "type_name": row.type_name,
        "assignee_id": row.assignee_id,
        "assignee_handle": row.assignee_handle,
        "created_by_id": row.created_by_id,
        "attributes": {k: list(v) for k, v in sorted((row.attributes or {}).items())},
        "custom_attributes": dict(row.custom_attributes or {}),
        "comments": comments,
        "archived": row.archived_at is not None,
        "created_at": _iso(row.created_at),  # type: ignore[typeddict-item]
        "modified_at": _iso(row.modified_at),  # type: ignore[typeddict-item]
        "closed_at": _iso(row.closed_at),
        "version": int(row.revision or 0),
    }


class _CreatedCaseRow:
    """A case just created in memory, seen as a row of `_select()`: its own columns, and the names the query would
    join to them given by its creator, which had them at hand."""

    def __init__(self, case: Case, project_key: str, type_name: str | None, assignee_handle: str | None) -> None:
        # Its set attributes copied as they are: reading them through the mapped class's descriptors, once per
        # field of thousands of cases a batch, was most of the cost of building their documents.
        self.__dict__.update(case.__dict__)
        self._case = case
        self.project_key = project_key
        self.type_name = type_name
        self.assignee_handle = assignee_handle

    def __getattr__(self, name: str) -> Any:  # only for an attribute the case has not set (its default applies)
        return getattr(self._case, name)


def _stored_as_given(value: Any) -> bool:
    """Whether every number in a JSON value comes back from any database as this very number: PostgreSQL's jsonb
    keeps numbers as `numeric`, which writes 1e+20 back as 100000000000000000000 (an int to Python) and has no
    negative zero."""
    if isinstance(value, float):
        return "e" not in repr(value) and not (value == 0 and math.copysign(1.0, value) < 0)
    if isinstance(value, dict):
        return all(_stored_as_given(v) for v in value.values())
    if isinstance(value, list):
        return all(_stored_as_given(v) for v in value)
    return True


def created_case_document(
    case: Case, *, project_key: str, type_name: str | None, assignee_handle: str | None
) -> CaseDocument | None:
    """The document of a case created in this unit of work, as `case_documents` will read it back once committed
    (a new case has no comments yet), without reading it back: batch creation hands it to case-indexer, which
    then writes it without a read of its own. `case.revision` must be the one it is written with
    (`UnitOfWork.insert_new` sets it). None when a custom attribute holds a number the database may give back
    otherwise (see `_stored_as_given`): such a case's document is read."""
    if not _stored_as_given(case.custom_attributes):
        return None
    return _document(_CreatedCaseRow(case, project_key, type_name, assignee_handle), [])


async def case_document(uow: UnitOfWork, org_id: str, case_id: str) -> CaseDocument | None:
    """The case's document as it is in the database now; None when the case does not exist (deleted)."""
    row = (await uow.execute(_select().where(cases.c.org_id == org_id, cases.c.id == case_id))).one_or_none()
    if row is None:
        return None
    return _document(row, (await _comments(uow, [row.id])).get(row.id, []))


async def iter_documents(uow: UnitOfWork, org_id: str | None = None) -> AsyncIterator[CaseDocument]:
    """Every case of the tenant (or of one org), in id order, by keyset pages of SCAN_BATCH."""
    after: str | None = None
    while True:
        statement = _select().order_by(cases.c.id).limit(SCAN_BATCH)
        if org_id is not None:
            statement = statement.where(cases.c.org_id == org_id)
        if after is not None:
            statement = statement.where(cases.c.id > after)
        rows = (await uow.execute(statement)).all()
        if not rows:
            return
        comments = await _comments(uow, [r.id for r in rows])
        for row in rows:
            yield _document(row, comments.get(row.id, []))
        after = rows[-1].id


async def count_documents(uow: UnitOfWork, org_id: str | None = None) -> int:
    statement = sa.select(sa.func.count()).select_from(cases)
    if org_id is not None:
        statement = statement.where(cases.c.org_id == org_id)
    return int(await uow.scalar(statement) or 0)


async def case_revisions(uow: UnitOfWork, refs: Sequence[tuple[str, str]]) -> dict[str, int]:
    """The revision of each of several cases, given as (org id, case id), from one narrow query: what a document
    at that revision would say is known without building it. A case that does not exist (or is not that org's) is
    absent from the result."""
    if not refs:
        return {}
    wanted = dict((case_id, org_id) for org_id, case_id in refs)
    statement = sa.select(cases.c.id, cases.c.org_id, cases.c.revision).where(cases.c.id.in_(list(wanted)))
    rows = (await uow.execute(statement)).all()
    return {row.id: int(row.revision or 0) for row in rows if wanted.get(row.id) == row.org_id}


async def case_documents(uow: UnitOfWork, refs: Sequence[tuple[str, str]]) -> dict[str, CaseDocument]:
    """Documents of several cases, given as (org id, case id), in two queries; a case that does not
    exist (or is not that org's) is absent from the result."""
    if not refs:
        return {}
    wanted = dict((case_id, org_id) for org_id, case_id in refs)
    rows = [
        row
        for row in (await uow.execute(_select().where(cases.c.id.in_(list(wanted))))).all()
        if wanted.get(row.id) == row.org_id
    ]
    comments = await _comments(uow, [r.id for r in rows])
    return {row.id: _document(row, comments.get(row.id, [])) for row in rows}
