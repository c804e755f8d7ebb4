"""Database-backed case search and counts: the query language's AST translated to a SQL WHERE clause.

Attribute filters (`service:web-store`) look inside the `attributes` JSON column ({key: [values]}).
Matching text inside serialized JSON with LIKE would break on escaping (SQLite stores `\\uXXXX` for
non-ASCII text, JSONB does not), so each dialect gets its own JSON set-returning functions instead:
`json_each` on SQLite and `jsonb_each` / `jsonb_array_elements_text` on PostgreSQL. Both expand the
object into (key, value) rows and each list into its values, and compare values case-insensitively.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import case_types, cases, projects, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.paging import MAX_PAGE_NUMBER
from casem.domain.cases import Case, Priority, Status
from casem.domain.errors import InvalidInput
from casem.domain.search_query import (
    And,
    Field,
    MatchAll,
    Node,
    Not,
    Or,
    QuerySyntaxError,
    Text,
    fields_in,
    parse_query,
)

PAGE_SIZE_DEFAULT = 10
PAGE_SIZE_MAX = 100
SORT_FIELDS = ("created_at", "priority", "status")
COUNT_LIMIT_DEFAULT = 100
COUNT_LIMIT_MAX = 1000

# Meaningful orders, not alphabetical ones: P1 is the most urgent, an undefined priority the least.
_PRIORITY_RANK = {p.value: n for n, p in enumerate([Priority.P1, Priority.P2, Priority.P3, Priority.P4, Priority.P5])}
_PRIORITY_RANK[Priority.NOT_DEFINED.value] = len(_PRIORITY_RANK)
_STATUS_RANK = {s.value: n for n, s in enumerate([Status.OPEN, Status.IN_PROGRESS, Status.CLOSED])}


def parse(query: str | None, parameter: str) -> Node:
    """Parse a query parameter; a syntax error is a 400 that says where the query goes wrong."""
    try:
        return parse_query(query or "")
    except QuerySyntaxError as exc:
        raise InvalidInput(f"{parameter}: {exc}", None) from None


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _contains(column: Any, value: str) -> sa.ColumnElement[bool]:
    return sa.func.lower(column).like(f"%{_escape_like(value.lower())}%", escape="\\")


@dataclass(frozen=True)
class _Translator:
    org_id: str
    dialect: str

    def where(self, node: Node) -> sa.ColumnElement[bool]:
        if isinstance(node, MatchAll):
            return sa.true()
        if isinstance(node, Text):
            # A quoted phrase is matched as a whole substring; a bare word as well (case-insensitive).
            return sa.or_(*(_contains(c, node.value) for c in (cases.c.title, cases.c.description, cases.c.key)))
        if isinstance(node, Not):
            return sa.not_(self.where(node.child))
        if isinstance(node, And):
            return sa.and_(*(self.where(c) for c in node.children))
        if isinstance(node, Or):
            return sa.or_(*(self.where(c) for c in node.children))
        return self.field(node)

    def field(self, node: Field) -> sa.ColumnElement[bool]:
        value = node.value
        if node.name == "status":
            if value not in _STATUS_RANK:
                raise InvalidInput(f"status:{value} is not a status: use one of {', '.join(_STATUS_RANK)}")
            return cases.c.status == value
        if node.name == "priority":
            if value not in _PRIORITY_RANK:
                raise InvalidInput(f"priority:{value} is not a priority: use one of {', '.join(_PRIORITY_RANK)}")
            return cases.c.priority == value
        if node.name == "archived":
            if value not in ("true", "false"):
                raise InvalidInput(f"archived:{value} must be archived:true or archived:false")
            return cases.c.archived_at.is_not(None) if value == "true" else cases.c.archived_at.is_(None)
        if node.name == "key":
            return cases.c.key == value.upper()
        if node.name == "project":
            found = sa.select(projects.c.id).where(
                projects.c.org_id == self.org_id,
                sa.or_(projects.c.key == value.upper(), projects.c.id == value.lower()),
            )
            return cases.c.project_id.in_(found)
        if node.name == "assignee":
            found = sa.select(users.c.id).where(
                users.c.org_id == self.org_id,
                sa.or_(
                    users.c.id == value.lower(),
                    sa.func.lower(users.c.handle) == value.lower(),
                    sa.func.lower(users.c.email) == value.lower(),
                ),
            )
            # coalesce: `-assignee:x` must keep unassigned cases (NOT IN over NULL is NULL, i.e. dropped).
            return sa.func.coalesce(cases.c.assignee_id, "").in_(found)
        if node.name == "type":
            named = sa.select(case_types.c.id).where(
                sa.or_(case_types.c.org_id == self.org_id, case_types.c.org_id.is_(None)),
                sa.func.lower(case_types.c.name) == value.lower(),
            )
            return sa.or_(cases.c.type_id == value.lower(), cases.c.type_id.in_(named))
        return self.attribute(node.name, value)

    def attribute(self, key: str, value: str) -> sa.ColumnElement[bool]:
        entries, values, value_column = attribute_values(self.dialect)
        return sa.exists(
            sa.select(sa.literal(1))
            .select_from(entries)
            .join(values, sa.true())
            .where(entries.c.key == key, sa.func.lower(value_column) == value.lower())
        )


def attribute_values(dialect: str) -> tuple[Any, Any, Any]:
    """The (key, value) rows of cases.attributes, and each key's list of values, for this dialect."""
    if dialect == "postgresql":
        entries = sa.func.jsonb_each(cases.c.attributes).table_valued("key", "value").alias("attr")
        # A non-list value (never written by casem, but the column is free-form JSON) expands to nothing.
        as_list = sa.case(
            (sa.func.jsonb_typeof(entries.c.value) == "array", entries.c.value),
            else_=sa.text("'[]'::jsonb"),
        )
        values = sa.func.jsonb_array_elements_text(as_list).table_valued("value").alias("val")
        return entries, values, values.c.value
    entries = sa.func.json_each(cases.c.attributes).table_valued("key", "value").alias("attr")
    values = sa.func.json_each(entries.c.value).table_valued("value").alias("val")
    return entries, values, values.c.value


def where_clause(uow: UnitOfWork, org_id: str, node: Node) -> sa.ColumnElement[bool]:
    clause = sa.and_(cases.c.org_id == org_id, _Translator(org_id, uow.db.dialect).where(node))
    if "archived" not in fields_in(node):
        clause = sa.and_(clause, cases.c.archived_at.is_(None))  # archived cases only when asked for
    return clause


def int_param(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}, got {value}")
    return value


def bool_param(raw: str | None, name: str, default: bool) -> bool:
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered not in ("true", "false", "1", "0"):
        raise InvalidInput(f"{name} must be true or false, got {raw!r}")
    return lowered in ("true", "1")


@dataclass(frozen=True)
class SearchParams:
    filter: Node
    query: str  # the filter as written: the search engine parses it its own way
    page_size: int
    page_number: int  # 1-based, as the official client's paginator counts
    sort_field: str
    sort_asc: bool

    @classmethod
    def parse(
        cls,
        *,
        page_size: str | None,
        page_number: str | None,
        sort_field: str | None,
        sort_asc: str | None,
        filter: str | None,
    ) -> SearchParams:
        field = sort_field or "created_at"
        if field not in SORT_FIELDS:
            raise InvalidInput(f"sort[field] must be one of {', '.join(SORT_FIELDS)}, got {field!r}")
        return cls(
            filter=parse(filter, "filter"),
            query=filter or "",
            page_size=int_param(page_size, "page[size]", PAGE_SIZE_DEFAULT, 1, PAGE_SIZE_MAX),
            page_number=int_param(page_number, "page[number]", 1, 1, MAX_PAGE_NUMBER),
            sort_field=field,
            sort_asc=bool_param(sort_asc, "sort[asc]", False),
        )


def _order(field: str, asc: bool) -> list[Any]:
    if field == "priority":
        key: Any = sa.case(_PRIORITY_RANK, value=cases.c.priority, else_=len(_PRIORITY_RANK))
    elif field == "status":
        key = sa.case(_STATUS_RANK, value=cases.c.status, else_=len(_STATUS_RANK))
    else:
        key = cases.c.created_at
    direction = sa.asc if asc else sa.desc
    # Tie-breakers keep pages stable: every case appears on exactly one page.
    return [direction(key), direction(cases.c.created_at), direction(cases.c.id)]


async def search_cases(uow: UnitOfWork, org_id: str, params: SearchParams) -> tuple[list[Case], int]:
    where = where_clause(uow, org_id, params.filter)
    total = await uow.scalar(sa.select(sa.func.count()).select_from(cases).where(where))
    found = await uow.scalars(
        sa.select(Case)
        .where(where)
        .order_by(*_order(params.sort_field, params.sort_asc))
        .limit(params.page_size)
        .offset((params.page_number - 1) * params.page_size)
    )
    return found, int(total or 0)


def parse_group_bys(raw: str | None) -> list[str]:
    if not raw:
        return []
    names = [name.strip() for name in raw.split(",")]
    if any(not name for name in names):
        raise InvalidInput(f"group_bys must be a comma-separated list of field names, got {raw!r}")
    return list(dict.fromkeys(names))


async def count_cases(
    uow: UnitOfWork, org_id: str, node: Node, group_bys: list[str], limit: int
) -> list[dict[str, Any]]:
    """Per field, the number of matching cases for each of its values, most frequent first."""
    where = where_clause(uow, org_id, node)
    columns = {
        "status": cases.c.status,
        "priority": cases.c.priority,
        "project": cases.c.project_id,
        "assignee": cases.c.assignee_id,
        "type": cases.c.type_id,
    }
    groups = []
    for name in group_bys:
        count = sa.func.count(sa.distinct(cases.c.id)).label("n")
        if name in columns:
            column = columns[name]
            statement = sa.select(column.label("v"), count).where(where, column.is_not(None)).group_by(column)
        else:
            # Any other name is an attribute key: a case counts once under each of its values for that key.
            entries, values, value_column = attribute_values(uow.db.dialect)
            statement = (
                sa.select(value_column.label("v"), count)
                .select_from(cases)
                .join(entries, sa.true())
                .join(values, sa.true())
                .where(where, entries.c.key == name)
                .group_by(value_column)
            )
        rows = (await uow.execute(statement.order_by(sa.desc("n"), sa.asc("v")).limit(limit))).all()
        groups.append({"group": name, "group_values": [{"value": str(r.v), "count": int(r.n)} for r in rows]})
    return groups


async def total(uow: UnitOfWork, org_id: str, node: Node) -> int:
    where = where_clause(uow, org_id, node)
    return int(await uow.scalar(sa.select(sa.func.count()).select_from(cases).where(where)) or 0)


async def cases_by_ids(uow: UnitOfWork, org_id: str, ids: list[str]) -> list[Case]:
    """The org's cases with these ids, in the given order; ids no longer in the database are left out
    (the index can trail a delete by a moment)."""
    if not ids:
        return []
    found = {c.id: c for c in await uow.scalars(sa.select(Case).where(cases.c.org_id == org_id, cases.c.id.in_(ids)))}
    return [found[i] for i in ids if i in found]
