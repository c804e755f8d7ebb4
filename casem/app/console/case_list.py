"""The console's case list: the query language over the database, paged by keyset.

The API pages by number (`page[number]`), which costs an OFFSET that grows with the page: fine for a
client that reads a few pages, slow for a person paging deep into 100k cases. The console pages by
position instead: each page carries the sort key of its last (or first) row, and the next query starts
right after it, so page 2,000 costs what page 1 does. The filter and the order are the API's own
(`casem.app.cases.search`), so the list shows what the API answers, from the database, which reads its
own writes at once: a case closed a moment ago is closed on the next render.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import cases, projects, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases import search
from casem.domain.cases import Case
from casem.domain.errors import InvalidInput

PAGE_SIZES = (25, 50, 100)


@dataclass(frozen=True)
class ListRequest:
    query: str = ""
    sort: str = "created_at"  # one of search.SORT_FIELDS
    ascending: bool = False
    size: int = 50
    after: str | None = None  # cursor of the last row of the page before
    before: str | None = None  # cursor of the first row of the page after (going back)


@dataclass(frozen=True)
class CaseListPage:
    cases: list[Case]
    total: int
    next_cursor: str | None
    previous_cursor: str | None
    projects: dict[str, str]  # project id → key
    people: dict[str, str]  # user id → name or e-mail


def _sort_key(sort: str) -> Any:
    if sort == "priority":
        return sa.case(search._PRIORITY_RANK, value=cases.c.priority, else_=len(search._PRIORITY_RANK))
    if sort == "status":
        return sa.case(search._STATUS_RANK, value=cases.c.status, else_=len(search._STATUS_RANK))
    return None  # created_at alone


def _rank(case: Case, sort: str) -> int | None:
    if sort == "priority":
        return search._PRIORITY_RANK.get(case.priority, len(search._PRIORITY_RANK))
    if sort == "status":
        return search._STATUS_RANK.get(case.status, len(search._STATUS_RANK))
    return None


def encode_cursor(case: Case, sort: str) -> str:
    raw = json.dumps([_rank(case, sort), case.created_at.isoformat(), case.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int | None, datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        rank, created, ident = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if rank is not None and not isinstance(rank, int):
            raise ValueError("rank")
        return rank, datetime.fromisoformat(created), str(ident)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise InvalidInput("this page link is out of date: start again from the first page", "/after") from None


def _keyset(sort: str, cursor: str, greater: bool) -> sa.ColumnElement[bool]:
    """Rows whose sort key is greater than the cursor's (`greater`), or smaller."""
    rank, created, ident = decode_cursor(cursor)
    key = _sort_key(sort)
    left = (
        sa.tuple_(key, cases.c.created_at, cases.c.id) if key is not None else sa.tuple_(cases.c.created_at, cases.c.id)
    )
    right = (
        sa.tuple_(sa.literal(rank), sa.literal(created, cases.c.created_at.type), sa.literal(ident))
        if key is not None
        else sa.tuple_(sa.literal(created, cases.c.created_at.type), sa.literal(ident))
    )
    return left > right if greater else left < right


async def list_cases(uow: UnitOfWork, org_id: str, request: ListRequest) -> CaseListPage:
    if request.sort not in search.SORT_FIELDS:
        raise InvalidInput(f"sort by one of {', '.join(search.SORT_FIELDS)}", "/sort")
    if request.size not in PAGE_SIZES:
        raise InvalidInput(f"show {', '.join(map(str, PAGE_SIZES))} cases a page", "/size")
    node = search.parse(request.query, "query")
    where = search.where_clause(uow, org_id, node)
    total = int(await uow.scalar(sa.select(sa.func.count()).select_from(cases).where(where)) or 0)
    # "Later in list order" is ascending in the key when the list is ascending, descending otherwise.
    going_back = request.before is not None and request.after is None
    conditions = [where]
    if request.after:
        conditions.append(_keyset(request.sort, request.after, greater=request.ascending))
    elif request.before:
        conditions.append(_keyset(request.sort, request.before, greater=not request.ascending))
    read_ascending = request.ascending != going_back
    order = search._order(request.sort, read_ascending)
    if request.sort == "created_at":
        order = order[1:]  # the first term repeats created_at
    rows = await uow.scalars(sa.select(Case).where(*conditions).order_by(*order).limit(request.size + 1))
    more = len(rows) > request.size
    rows = rows[: request.size]
    if going_back:
        rows.reverse()
    at_start = (not request.after and not request.before) or (going_back and not more)
    at_end = (not going_back and not more) or not rows
    next_cursor = encode_cursor(rows[-1], request.sort) if rows and not at_end else None
    previous_cursor = encode_cursor(rows[0], request.sort) if rows and not at_start else None
    project_keys = {
        r.id: r.key
        for r in await uow.execute(
            sa.select(projects.c.id, projects.c.key).where(projects.c.id.in_({c.project_id for c in rows}))
        )
    }
    people = await names_of(uow, org_id, {c.assignee_id for c in rows if c.assignee_id})
    return CaseListPage(rows, total, next_cursor, previous_cursor, project_keys, people)


async def names_of(uow: UnitOfWork, org_id: str, user_ids: set[str]) -> dict[str, str]:
    if not user_ids:
        return {}
    rows = await uow.execute(
        sa.select(users.c.id, users.c.name, users.c.email).where(users.c.org_id == org_id, users.c.id.in_(user_ids))
    )
    return {r.id: r.name or r.email for r in rows}
